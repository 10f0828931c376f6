//! The `mp` side: every experiment through mp's public API only, so whatever mp's transports
//! become, this measures them.
//!
//! Each function returns raw samples in seconds; `run` summarises them.

use std::{hint::black_box, sync::mpsc, time::Instant};

use mp::{Comm, Communicator, Connection, Pool, Process};

use crate::sweep::{RawPoint, SweepPlan, sweep};

/// Workers in every pool, as in the lecture's `Pool(4)`.
pub const POOL_WORKERS: usize = 4;

/// The trivial task: gives its argument back.
fn nothing(x: u64) -> u64 {
    x
}

fn text(error: mp::Error) -> String {
    error.to_string()
}

/// Seconds from before `Pool::new(4)` until a first one-item `map` has returned; the pool's
/// shutdown (its drop) is outside the timer. `warm_up` runs first and are not kept.
pub fn pool_start(warm_up: usize, reps: usize) -> Result<Vec<f64>, String> {
    let mut samples = Vec::with_capacity(reps);
    for rep in 0..warm_up + reps {
        let started = Instant::now();
        let pool = Pool::new(POOL_WORKERS).map_err(text)?;
        black_box(pool.map(nothing, [1u64]).map_err(text)?);
        let elapsed = started.elapsed().as_secs_f64();
        drop(pool);
        if rep >= warm_up {
            samples.push(elapsed);
        }
    }
    Ok(samples)
}

/// Seconds to start one process, run the trivial task in it and join it (its result comes
/// back through `join`; Python's counterpart is `Process` + `Queue`).
pub fn process_start(warm_up: usize, reps: usize) -> Result<Vec<f64>, String> {
    let mut samples = Vec::with_capacity(reps);
    for rep in 0..warm_up + reps {
        let started = Instant::now();
        let result = Process::spawn(nothing, 7u64).map_err(text)?.join().map_err(text)?;
        let elapsed = started.elapsed().as_secs_f64();
        if result != 7 {
            return Err(format!("the process returned {result}, not 7"));
        }
        if rep >= warm_up {
            samples.push(elapsed);
        }
    }
    Ok(samples)
}

/// Seconds for `map` of the trivial task over `0..n_tasks` on a started `Pool(4)`, with
/// `chunksize` (None: mp's default, which is Python's). One untimed warm-up map of a tenth of
/// the tasks first.
pub fn map_times(n_tasks: u64, chunksize: Option<usize>, reps: usize) -> Result<Vec<f64>, String> {
    let pool = Pool::new(POOL_WORKERS).map_err(text)?;
    let run = |pool: &Pool, n_tasks: u64| -> Result<(), String> {
        let results = match chunksize {
            Some(chunksize) => pool.map_chunked(nothing, 0..n_tasks, chunksize),
            None => pool.map(nothing, 0..n_tasks),
        }
        .map_err(text)?;
        if results.len() as u64 != n_tasks {
            return Err(format!("map returned {} results for {n_tasks} tasks", results.len()));
        }
        black_box(results);
        Ok(())
    };
    run(&pool, n_tasks.div_ceil(10))?;
    let mut samples = Vec::with_capacity(reps);
    for _ in 0..reps {
        let started = Instant::now();
        run(&pool, n_tasks)?;
        samples.push(started.elapsed().as_secs_f64());
    }
    Ok(samples)
}

/// An error unless every CPU of `cpus` is one this process may use: checked before any
/// process starts, so that a bad plan fails with its reason, not as a lost echo.
fn check_cpus(cpus: Option<[usize; 2]>) -> Result<(), String> {
    let Some(cpus) = cpus else { return Ok(()) };
    let allowed = mp::affinity::get().map_err(text)?;
    match cpus.iter().find(|cpu| !allowed.contains(cpu)) {
        Some(cpu) => Err(format!(
            "cannot bind a side of the ping-pong to CPU {cpu}: this process may use CPUs \
             {allowed:?}"
        )),
        None => Ok(()),
    }
}

/// Binds this thread to `cpu` if there is one (see [`SweepPlan::cpus`]); what it was bound
/// to before, to put back.
fn bind(cpu: Option<usize>) -> Result<Option<Vec<usize>>, String> {
    let Some(cpu) = cpu else { return Ok(None) };
    let before = mp::affinity::get().map_err(text)?;
    mp::affinity::set(&[cpu]).map_err(text)?;
    Ok(Some(before))
}

/// Puts back what [`bind`] changed.
fn unbind(before: Option<Vec<usize>>) -> Result<(), String> {
    before.map_or(Ok(()), |cpus| mp::affinity::set(&cpus).map_err(text))
}

/// Sends back every bytes message until the other end closes (bound to `cpu` if given).
fn echo((connection, cpu): (Connection<()>, Option<usize>)) -> u64 {
    if bind(cpu).is_err() {
        return 0;
    }
    let mut echoed = 0;
    let mut bytes = Vec::new();
    while connection.recv_bytes_into(&mut bytes).is_ok() {
        if connection.send_bytes(&bytes).is_err() {
            break;
        }
        echoed += 1;
    }
    echoed
}

/// `mp::pipe` between this process and an echoing child: `send_bytes`, then
/// `recv_bytes_into` a buffer reused from one message to the next (as MPI receives into the
/// caller's buffer).
pub fn pipe_sweep(plan: &SweepPlan) -> Result<Vec<RawPoint>, String> {
    check_cpus(plan.cpus)?;
    let (here, there) = mp::pipe::<()>().map_err(text)?;
    let mut echoer = Process::spawn(echo, (there, plan.cpus.map(|cpus| cpus[1]))).map_err(text)?;
    let before = bind(plan.cpus.map(|cpus| cpus[0]))?;
    let mut reply = Vec::new();
    let points = sweep(plan, |message| {
        here.send_bytes(message).map_err(text)?;
        here.recv_bytes_into(&mut reply).map_err(text)?;
        check_reply(message.len(), reply.len())
    });
    unbind(before)?;
    drop(here);
    echoer.join().map_err(text)?;
    points
}

fn check_reply(sent: usize, received: usize) -> Result<(), String> {
    if sent == received { Ok(()) } else { Err(format!("sent {sent} B but {received} B came back")) }
}

/// What rank 0 of the `Comm` ping-pong returns: its sweep, or why it failed.
type RankOutcome = Option<Result<Vec<RawPoint>, String>>;

/// Rank 0 measures against rank 1, which echoes until an empty message says stop.
fn comm_rank(comm: Comm, plan: SweepPlan) -> RankOutcome {
    if let Err(error) = bind(plan.cpus.map(|cpus| cpus[comm.rank()])) {
        return Some(Err(format!("rank {}: {error}", comm.rank())));
    }
    let mut buffer = Vec::new();
    if comm.rank() == 1 {
        while comm.recv_bytes_into(0, &mut buffer).is_ok() {
            if buffer.is_empty() || comm.send_bytes(0, &buffer).is_err() {
                break;
            }
        }
        return None;
    }
    let points = sweep(&plan, |message| {
        comm.send_bytes(1, message).map_err(text)?;
        comm.recv_bytes_into(1, &mut buffer).map_err(text)?;
        check_reply(message.len(), buffer.len())
    });
    let stopped = comm.send_bytes(1, &[]);
    Some(points.and_then(|points| stopped.map(|()| points).map_err(text)))
}

/// Two ranks started by `mp::launch`, `Comm::send_bytes` / `recv_bytes_into` between them.
pub fn comm_sweep(plan: &SweepPlan) -> Result<Vec<RawPoint>, String> {
    check_cpus(plan.cpus)?;
    let results = mp::launch(2, comm_rank, plan.clone()).map_err(text)?;
    results
        .into_iter()
        .next()
        .flatten()
        .unwrap_or_else(|| Err("rank 0 returned no measurement".into()))
}

/// Two rayon threads and two std channels: the message moves without a copy, and the receiver
/// copies it into its own buffer (one memcpy per hop, into warm memory), as a one-copy
/// transport would.
pub fn threads_sweep(plan: &SweepPlan) -> Result<Vec<RawPoint>, String> {
    let pool = rayon::ThreadPoolBuilder::new()
        .num_threads(2)
        .build()
        .map_err(|error| format!("starting 2 rayon threads: {error}"))?;
    let (to_echo, echo_inbox) = mpsc::channel::<Vec<u8>>();
    let (to_main, main_inbox) = mpsc::channel::<Vec<u8>>();
    pool.scope(move |scope| {
        scope.spawn(move |_| {
            let mut landing = Vec::new();
            while let Ok(message) = echo_inbox.recv() {
                copy_into(&mut landing, &message);
                if to_main.send(message).is_err() {
                    break;
                }
            }
        });
        let mut travelling: Vec<u8> = Vec::new();
        let mut landing = Vec::new();
        let points = sweep(plan, |message| {
            if travelling.len() != message.len() {
                travelling = message.to_vec();
            }
            to_echo
                .send(std::mem::take(&mut travelling))
                .map_err(|_| "the echo thread is gone".to_string())?;
            let reply = main_inbox.recv().map_err(|_| "the echo thread is gone".to_string())?;
            copy_into(&mut landing, &reply);
            travelling = reply;
            check_reply(message.len(), landing.len())
        });
        drop(to_echo);
        points
    })
}

fn copy_into(landing: &mut Vec<u8>, message: &[u8]) {
    landing.clear();
    landing.extend_from_slice(message);
    black_box(landing.as_slice());
}

/// One worker's part of the gather: `len` float64 values, all equal to `index + 1` (not
/// zero, so the memory is really written).
fn make_array((index, len): (u64, usize)) -> Vec<f64> {
    vec![index as f64 + 1.0; len]
}

/// Seconds for `pool.map` on a started `Pool(4)` to return 4 arrays of `len` f64.
pub fn gather_pool(len: usize, reps: usize) -> Result<Vec<f64>, String> {
    let pool = Pool::new(POOL_WORKERS).map_err(text)?;
    let tasks: Vec<(u64, usize)> = (0..POOL_WORKERS as u64).map(|index| (index, len)).collect();
    let mut samples = Vec::with_capacity(reps);
    for rep in 0..reps + 1 {
        let started = Instant::now();
        let arrays = pool.map(make_array, tasks.clone()).map_err(text)?;
        let elapsed = started.elapsed().as_secs_f64();
        check_arrays(&arrays, len)?;
        if rep > 0 {
            samples.push(elapsed);
        }
    }
    Ok(samples)
}

fn check_arrays(arrays: &[Vec<f64>], len: usize) -> Result<(), String> {
    for (index, array) in arrays.iter().enumerate() {
        if array.len() != len || array.first() != Some(&(index as f64 + 1.0)) {
            return Err(format!("array {index} came back wrong ({} values)", array.len()));
        }
    }
    Ok(())
}

/// A started process that, for every request, makes its array and sends it with
/// `send_slice`, until the parent closes the pipe.
fn array_server((connection, index, len): (Connection<u8>, u64, usize)) -> u64 {
    let mut served = 0;
    while connection.recv().is_ok() {
        if connection.send_slice(&make_array((index, len))).is_err() {
            break;
        }
        served += 1;
    }
    served
}

/// Seconds for 4 started processes to each make an array of `len` f64 and send it to this
/// process over its own pipe (`send_slice` / `recv_vec`), from the requests to the last array.
pub fn gather_pipes(len: usize, reps: usize) -> Result<Vec<f64>, String> {
    let mut connections = Vec::new();
    let mut servers = Vec::new();
    for index in 0..POOL_WORKERS as u64 {
        let (here, there) = mp::pipe::<u8>().map_err(text)?;
        servers.push(Process::spawn(array_server, (there, index, len)).map_err(text)?);
        connections.push(here);
    }
    let mut samples = Vec::with_capacity(reps);
    for rep in 0..reps + 1 {
        let started = Instant::now();
        for connection in &connections {
            connection.send(&1).map_err(text)?;
        }
        let arrays = connections
            .iter()
            .map(|connection| connection.recv_vec::<f64>())
            .collect::<mp::Result<Vec<_>>>()
            .map_err(text)?;
        let elapsed = started.elapsed().as_secs_f64();
        check_arrays(&arrays, len)?;
        if rep > 0 {
            samples.push(elapsed);
        }
    }
    drop(connections);
    for server in &mut servers {
        server.join().map_err(text)?;
    }
    Ok(samples)
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;

    mp::test_support!();

    fn tiny(cpus: Option<[usize; 2]>) -> SweepPlan {
        SweepPlan { sizes: vec![1, 64], budget_s: 0.002, samples: 3, cpus }
    }

    /// Runs `f` on a thread of its own: binding changes only the calling thread.
    fn on_a_thread<T: Send>(f: impl FnOnce() -> T + Send) -> T {
        std::thread::scope(|scope| scope.spawn(f).join().unwrap())
    }

    #[test]
    fn bound_sweeps_measure_and_put_the_threads_cpus_back() {
        let _guard = mp::testing::watchdog(Duration::from_secs(60));
        on_a_thread(|| {
            let allowed = mp::affinity::get().unwrap();
            let cpus = [allowed[0], *allowed.last().unwrap()];
            for (name, sweep) in [("pipe", pipe_sweep as fn(&_) -> _), ("Comm", comm_sweep)] {
                let points = sweep(&tiny(Some(cpus))).unwrap();
                assert_eq!(points.len(), 2, "{name}");
                assert_eq!(mp::affinity::get().unwrap(), allowed, "{name} unbinds");
            }
        });
    }

    #[test]
    fn a_cpu_this_process_may_not_use_fails_the_sweep_with_its_number() {
        let _guard = mp::testing::watchdog(Duration::from_secs(60));
        on_a_thread(|| {
            let allowed = mp::affinity::get().unwrap();
            let missing = (0..1024).find(|cpu| !allowed.contains(cpu)).unwrap();
            for sweep in [pipe_sweep as fn(&_) -> _, comm_sweep] {
                for cpus in [[allowed[0], missing], [missing, allowed[0]]] {
                    let error = sweep(&tiny(Some(cpus))).unwrap_err();
                    assert!(error.contains(&format!("CPU {missing}")), "{error}");
                    assert!(error.contains(&format!("{allowed:?}")), "{error}");
                }
            }
            assert_eq!(mp::affinity::get().unwrap(), allowed);
        });
    }
}
