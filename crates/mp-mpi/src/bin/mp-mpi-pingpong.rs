//! mp-bench's MPI ping-pong (crates/bench/mpi/pingpong.c), through mp's `Communicator` on
//! MPI: `Session::world()`'s `send_bytes` / `recv_bytes_into` between ranks 0 and 1, with the
//! same method (per size: warm up, pick a batch of round trips so that SAMPLES batches fill
//! BUDGET seconds; a sample is the batch time / (2 x round trips)) and the same JSON.
//!
//! Usage: `mpirun -n 2 mp-mpi-pingpong BUDGET_SECONDS SAMPLES SIZE...`

use std::{process::ExitCode, time::Instant};

use mp::Communicator;
use mp_mpi::{Session, native};

const WARM_MIN: u64 = 2;
const WARM_MAX: u64 = 1000;
const WARM_FRACTION: f64 = 0.1;

/// Rank 0 tells rank 1 how many round trips come next (MPI_Bcast, as the C program); 0 means
/// the next size.
fn announce(n: u64) -> mp::Result<u64> {
    native::broadcast(n)
}

fn round_trips(world: &mp::Comm, buffer: &mut Vec<u8>, n: u64) -> mp::Result<()> {
    let rank = world.rank();
    for _ in 0..n {
        if rank == 0 {
            world.send_bytes(1, buffer)?;
            world.recv_bytes_into(1, buffer)?;
        } else {
            world.recv_bytes_into(0, buffer)?;
            world.send_bytes(0, buffer)?;
        }
    }
    Ok(())
}

fn run(session: &Session, budget: f64, samples: usize, sizes: &[usize]) -> mp::Result<()> {
    let world = session.world()?;
    let rank = world.rank();
    let mut points = Vec::new();
    for &size in sizes {
        let mut buffer = vec![0xa5u8; size];
        if rank == 1 {
            loop {
                let n = announce(0)?;
                if n == 0 {
                    break;
                }
                round_trips(&world, &mut buffer, n)?;
            }
            continue;
        }
        let (mut warm, mut step) = (0u64, 1u64);
        let started = Instant::now();
        while warm < WARM_MIN
            || (warm < WARM_MAX && started.elapsed().as_secs_f64() < WARM_FRACTION * budget)
        {
            round_trips(&world, &mut buffer, announce(step)?)?;
            warm += step;
            if step < 64 {
                step *= 2;
            }
        }
        let per_round_trip = started.elapsed().as_secs_f64() / warm as f64;
        let per_batch = budget / samples as f64;
        let batch = if per_round_trip > 0.0 { (per_batch / per_round_trip) as u64 } else { 1 };
        let batch = batch.clamp(1, 10_000_000);
        let mut one_way = Vec::with_capacity(samples);
        for _ in 0..samples {
            announce(batch)?;
            let t0 = Instant::now();
            round_trips(&world, &mut buffer, batch)?;
            one_way.push(t0.elapsed().as_secs_f64() / (2.0 * batch as f64));
        }
        announce(0)?;
        let times: Vec<String> = one_way.iter().map(|t| format!("{t:.9e}")).collect();
        points.push(format!(
            "{{\"bytes\": {size}, \"batch\": {batch}, \"one_way_s\": [{}]}}",
            times.join(", ")
        ));
    }
    if rank == 0 {
        let library = mpi::environment::library_version().unwrap_or_default();
        let library: String = library
            .chars()
            .map(|c| if c == '"' || c == '\\' || c < ' ' { ' ' } else { c })
            .collect();
        let library = library.trim();
        println!("{{\"library\": \"mp on MPI ({library})\", \"points\": [{}]}}", points.join(", "));
    }
    Ok(())
}

fn main() -> ExitCode {
    mp::init();
    let args: Vec<String> = std::env::args().skip(1).collect();
    let session = match Session::init() {
        Ok(session) => session,
        Err(error) => {
            eprintln!("error: {error}");
            return ExitCode::FAILURE;
        }
    };
    let budget = args.first().and_then(|a| a.parse::<f64>().ok());
    let samples = args.get(1).and_then(|a| a.parse::<usize>().ok()).map(|s| s.max(1));
    let sizes: Option<Vec<usize>> = args
        .get(2..)
        .filter(|sizes| !sizes.is_empty())
        .map(|sizes| sizes.iter().map(|s| s.parse().ok().filter(|&s| s >= 1)).collect())
        .and_then(|sizes: Vec<Option<usize>>| sizes.into_iter().collect());
    let (Some(budget), Some(samples), Some(sizes)) = (budget, samples, sizes) else {
        if session.rank() == 0 {
            eprintln!("usage: mpirun -n 2 mp-mpi-pingpong BUDGET_SECONDS SAMPLES SIZE...");
        }
        mp_mpi::abort(2)
    };
    if session.size() != 2 {
        if session.rank() == 0 {
            eprintln!("mp-mpi-pingpong needs exactly 2 ranks (mpirun -n 2)");
        }
        mp_mpi::abort(2)
    }
    if let Err(error) = run(&session, budget, samples, &sizes) {
        eprintln!("rank {}: error: {error}", session.rank());
        mp_mpi::abort(1)
    }
    drop(session);
    ExitCode::SUCCESS
}
