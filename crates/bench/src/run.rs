//! One whole run: every experiment in turn, then the report, the JSON and the chart.

use std::{
    path::{Path, PathBuf},
    time::{Duration, Instant},
};

use serde_json::json;

use crate::{
    chart,
    cli::Options,
    ipc, limit,
    load::Load,
    machine::Machine,
    memory, mpi, ours,
    python::{self, Python},
    report,
    results::{IpcChannel, Loaded, LoadedPass, Outcome, PerTask, Results, Settings, Side},
    stats::Summary,
    sweep::{Point, RawPoint, SweepPlan},
};

/// Where the report went.
#[derive(Debug)]
pub struct Written {
    /// `report.md`.
    pub report: PathBuf,
    /// `results.json`.
    pub json: PathBuf,
    /// `bandwidth.svg`, or why it could not be drawn.
    pub chart: Result<PathBuf, String>,
}

/// Runs `f`, saying on standard error what it does and how long it took.
fn step<T>(what: &str, f: impl FnOnce() -> Result<T, String>) -> Outcome<T> {
    eprint!("mp-bench: {what} ... ");
    let started = Instant::now();
    let outcome = Outcome::from_result(f());
    let took = report::time(started.elapsed().as_secs_f64());
    match outcome.why_not() {
        None => eprintln!("{took}"),
        Some(error) => eprintln!("FAILED after {took}: {error}"),
    }
    outcome
}

fn summary(samples: Vec<f64>) -> Result<Summary, String> {
    Summary::of(&samples).ok_or_else(|| "no valid samples".to_string())
}

fn summarise(raw: Result<Vec<RawPoint>, String>) -> Result<Vec<Point>, String> {
    Point::all_from_raw(&raw?)
}

fn measure_ours(settings: &Settings) -> (Side, Outcome<Vec<Point>>, Outcome<Vec<Point>>) {
    let sweep = &settings.sweep;
    let (warm, reps) = (settings.startup_warm_up, settings.startup_reps);
    let n_tasks = settings.map_tasks;
    let default_chunk = mp::split::default_chunksize(n_tasks as usize, ours::POOL_WORKERS)
        .map_or(0, |chunk| chunk as u64);
    let pool_start_s =
        step("mp: Pool(4) ready + first map", || summary(ours::pool_start(warm, reps)?));
    let process_start_s =
        step("mp: process start + join", || summary(ours::process_start(warm, reps)?));
    let map_chunksize_1 = step(&format!("mp: map of {n_tasks} tasks, chunksize 1"), || {
        Ok(PerTask::new(
            n_tasks,
            1,
            summary(ours::map_times(n_tasks, Some(1), settings.map_reps)?)?,
        ))
    });
    let map_default = step(&format!("mp: map of {n_tasks} tasks, default chunksize"), || {
        let times = ours::map_times(n_tasks, None, settings.map_reps)?;
        Ok(PerTask::new(n_tasks, default_chunk, summary(times)?))
    });
    let pipe = step("mp: pipe ping-pong", || summarise(ours::pipe_sweep(sweep)));
    let comm = step("mp: Comm ping-pong", || summarise(ours::comm_sweep(sweep)));
    let threads = step("threads: rayon + mpsc ping-pong", || summarise(ours::threads_sweep(sweep)));
    let gather_pool_s = step("mp: gather with pool.map", || {
        summary(ours::gather_pool(settings.gather_len, settings.gather_reps)?)
    });
    let gather_pipes_s = step("mp: gather over pipes", || {
        summary(ours::gather_pipes(settings.gather_len, settings.gather_reps)?)
    });
    let memory =
        step("mp: peak memory of one large message", || memory::ours(settings.memory_bytes));
    let side = Side {
        pool_start_s,
        process_start_s,
        map_chunksize_1,
        map_default,
        pipe,
        gather_pool_s,
        gather_pipes_s,
        memory,
    };
    (side, comm, threads)
}

fn measure_ipc_channel(settings: &Settings) -> IpcChannel {
    let version = ipc_pingpong::IPC_CHANNEL_VERSION;
    let measure = |kind: ipc_pingpong::Kind| {
        step(&format!("ipc-channel {version}: {} ping-pong", kind.describe()), || {
            summarise(ipc::ipc_sweep(kind, &settings.sweep))
        })
    };
    IpcChannel {
        version: version.into(),
        bytes: measure(ipc_pingpong::Kind::Bytes),
        typed: measure(ipc_pingpong::Kind::Typed),
        shared_memory: measure(ipc_pingpong::Kind::SharedMemory),
    }
}

fn measure_python(options: &Options, settings: &Settings, machine: &mut Machine) -> Side {
    if options.no_python {
        return Side::skipped("left out with --no-python");
    }
    let python = match Python::set_up(&options.python, &options.out.join("scripts")) {
        Ok(python) => python,
        Err(reason) => return Side::skipped(&reason),
    };
    let info = match python.info() {
        Ok(info) => info,
        Err(error) => {
            let error = format!("{error}; {}", python::PYTHON_HINT);
            eprintln!("mp-bench: Python does not run: {error}");
            return Side::skipped(&error);
        }
    };
    machine.python = Some(format!("{} ({})", info.python, info.implementation));
    if info.implementation != "cpython" {
        eprintln!("mp-bench: note: {} is not CPython", python.interpreter.display());
    }
    machine.numpy = info.numpy.clone();
    machine.mpi4py = info.mpi4py.clone();
    let (warm, reps, n_tasks) =
        (settings.startup_warm_up, settings.startup_reps, settings.map_tasks);
    let minutes = |n: u64| Duration::from_secs(60 * n);
    let (pool_start_s, process_start_s) =
        both(step("Python: Pool(4) and Process start-up", || {
            let settings = json!({"warm_up": warm, "reps": reps});
            let startup: python::Startup = python.run("startup", &settings, minutes(3))?;
            Ok((startup.pool_start_s, startup.process_start_s))
        }));
    let map = |chunksize: Option<u64>| -> Result<PerTask, String> {
        let settings =
            json!({"n_tasks": n_tasks, "reps": settings.map_reps, "chunksize": chunksize});
        let times: python::MapTimes = python.run("map", &settings, minutes(8))?;
        Ok(PerTask::new(times.n_tasks, times.chunksize, summary(times.seconds)?))
    };
    let map_chunksize_1 =
        step(&format!("Python: map of {n_tasks} tasks, chunksize 1"), || map(Some(1)));
    let map_default =
        step(&format!("Python: map of {n_tasks} tasks, default chunksize"), || map(None));
    let sweep = &settings.sweep;
    let limit = Duration::from_secs_f64(120.0 + 4.0 * sweep.budget_s * sweep.sizes.len() as f64);
    let pipe = step("Python: Pipe ping-pong", || {
        let ping: python::PingPong = python.run("pingpong", sweep, limit)?;
        Point::all_from_raw(&ping.points)
    });
    let (gather_pool_s, gather_pipes_s) = if info.numpy.is_none() {
        let reason = format!(
            "numpy is missing for {}; {}",
            python.interpreter.display(),
            python::numpy_hint(&options.python)
        );
        (Outcome::skipped(&reason), Outcome::skipped(reason))
    } else {
        both(step("Python: gather (numpy)", || {
            let settings = json!({"len": settings.gather_len, "reps": settings.gather_reps});
            let gather: python::Gather = python.run("gather", &settings, minutes(5))?;
            Ok((gather.pool_s, gather.pipes_s))
        }))
    };
    let memory =
        step("Python: peak memory of one large message", || python.memory(settings.memory_bytes));
    Side {
        pool_start_s,
        process_start_s,
        map_chunksize_1,
        map_default,
        pipe,
        gather_pool_s,
        gather_pipes_s,
        memory,
    }
}

/// Two sets of samples measured together, summarised apart (a failure fails both).
fn both(outcome: Outcome<(Vec<f64>, Vec<f64>)>) -> (Outcome<Summary>, Outcome<Summary>) {
    match outcome {
        Outcome::Measured { value: (first, second) } => {
            (Outcome::from_result(summary(first)), Outcome::from_result(summary(second)))
        }
        Outcome::Skipped { reason } => (Outcome::skipped(reason.clone()), Outcome::skipped(reason)),
        Outcome::Failed { error } => {
            (Outcome::Failed { error: error.clone() }, Outcome::Failed { error })
        }
    }
}

fn measure_mpi(options: &Options, settings: &Settings, machine: &mut Machine) -> MpiOutcomes {
    if options.no_mpi {
        let reason = "left out with --no-mpi";
        let skipped = || Outcome::skipped(reason);
        return MpiOutcomes { c: skipped(), mpi4py: skipped(), mp: skipped(), mpirun: None };
    }
    if let Some(reason) = mpi::missing() {
        let needs = || Outcome::skipped("needs MPI (see C MPI)");
        let c = Outcome::skipped(reason);
        return MpiOutcomes { c, mpi4py: needs(), mp: needs(), mpirun: None };
    }
    machine.mpi = mpi::version();
    let sweep = &settings.sweep;
    let c = step("MPI: C ping-pong (built with mpicc)", || {
        let output = mpi::c_pingpong(&options.out.join("mpi"), sweep, mpi::Binding::CoreEach)?;
        Ok((output.library, Point::all_from_raw(&output.points)?))
    });
    let c = match c {
        Outcome::Measured { value: (library, points) } => {
            machine.mpi.get_or_insert(library);
            Outcome::Measured { value: points }
        }
        Outcome::Skipped { reason } => Outcome::Skipped { reason },
        Outcome::Failed { error } => Outcome::Failed { error },
    };
    let mp = match mpi::mp_missing() {
        Some(reason) => Outcome::skipped(reason),
        None => step("MPI: mp's Communicator on MPI (mp-mpi-pingpong, built with cargo)", || {
            Point::all_from_raw(&mpi::mp_pingpong(sweep)?.points)
        }),
    };
    let mpi4py = if options.no_python {
        Outcome::skipped("left out with --no-python")
    } else if machine.mpi4py.is_none() {
        Outcome::skipped(format!(
            "mpi4py is not installed (optional; the C MPI figures are the reference): `{} -m pip install mpi4py`",
            options.python
        ))
    } else {
        step("MPI: mpi4py ping-pong", || {
            let python = Python::set_up(&options.python, &options.out.join("scripts"))?;
            let output = mpi::mpi4py_pingpong(&python.interpreter, &python.script, sweep)?;
            Point::all_from_raw(&output.points)
        })
    };
    MpiOutcomes { c, mpi4py, mp, mpirun: Some(mpi::describe_mpirun()) }
}

/// What `measure_mpi` measured.
struct MpiOutcomes {
    c: Outcome<Vec<Point>>,
    mpi4py: Outcome<Vec<Point>>,
    mp: Outcome<Vec<Point>>,
    mpirun: Option<String>,
}

/// The loaded part: starts `options.load` busy processes, measures the small-message
/// ping-pongs under them twice (each side bound to a CPU of its own, then unbound), and stops
/// them (also when a measurement fails or panics: [`Load`] stops them when dropped, and they
/// end by themselves if this process dies).
fn measure_loaded(options: &Options, settings: &Settings) -> Loaded {
    let busy = options.load;
    let plan = Loaded::plan(&settings.sweep);
    let bound_to = two_cpus();
    eprintln!("mp-bench: loaded part: starting {busy} busy processes");
    let load = match Load::start(busy) {
        Ok(load) => load,
        Err(error) => {
            eprintln!("mp-bench: loaded part FAILED: {error}");
            return Loaded {
                busy,
                sweep: plan,
                load_before: None,
                load_after: None,
                bound_to,
                bound: LoadedPass::failed(&error),
                unbound: LoadedPass::failed(&error),
            };
        }
    };
    eprintln!("mp-bench: busy processes: {:?}", load.pids());
    // Let the scheduler spread them and the load average start to climb.
    std::thread::sleep(Duration::from_secs(1));
    let load_before = crate::machine::load_average();
    let bound = match bound_to {
        Some(cpus) => loaded_pass(
            options,
            &SweepPlan { cpus: Some(cpus), ..plan.clone() },
            mpi::Binding::CoreEach,
        ),
        None => LoadedPass::skipped("this process may use fewer than two CPUs"),
    };
    let unbound = loaded_pass(options, &plan, mpi::Binding::Unbound);
    let load_after = crate::machine::load_average();
    load.stop();
    Loaded { busy, sweep: plan, load_before, load_after, bound_to, bound, unbound }
}

/// The first two CPUs this process may use, for the bound pass (those `mpirun --bind-to core`
/// gives two ranks), or `None` if it may use fewer.
fn two_cpus() -> Option<[usize; 2]> {
    match mp::affinity::get().ok()?.as_slice() {
        [first, second, ..] => Some([*first, *second]),
        _ => None,
    }
}

/// How many times each transport of a loaded pass runs, in turn with the others, each time
/// with this share of the budget and of the batches. On a shared machine the conditions change
/// within seconds (other jobs, and the host moving the virtual CPUs between cores that share a
/// cache or not); taken in turns, the four transports see the same mix of them.
pub const LOADED_ROUNDS: usize = 3;

/// One ping-pong of a loaded pass, run over a plan: its raw points, or why not.
type Runner<'a> = Box<dyn Fn(&SweepPlan) -> Result<Vec<RawPoint>, String> + 'a>;

/// One loaded pass: mp pipe, mp Comm, Python Pipe and C MPI over `plan` (bound to
/// `plan.cpus` if it has them; C MPI as `binding` says), in [`LOADED_ROUNDS`] rounds.
fn loaded_pass(options: &Options, plan: &SweepPlan, binding: mpi::Binding) -> LoadedPass {
    let pass = if plan.cpus.is_some() { "bound" } else { "unbound" };
    let python: Result<Runner, String> = if options.no_python {
        Err("left out with --no-python".into())
    } else {
        Ok(Box::new(|plan: &SweepPlan| {
            let python = Python::set_up(&options.python, &options.out.join("scripts"))?;
            let limit =
                Duration::from_secs_f64(120.0 + 4.0 * plan.budget_s * plan.sizes.len() as f64);
            let ping: python::PingPong = python.run("pingpong", plan, limit)?;
            Ok(ping.points)
        }))
    };
    let mpi_c: Result<Runner, String> = if options.no_mpi {
        Err("left out with --no-mpi".into())
    } else if let Some(reason) = mpi::missing() {
        Err(reason)
    } else {
        Ok(Box::new(move |plan: &SweepPlan| {
            Ok(mpi::c_pingpong(&options.out.join("mpi"), plan, binding)?.points)
        }))
    };
    let transports: [(&str, Result<Runner, String>); 4] = [
        ("mp pipe", Ok(Box::new(ours::pipe_sweep))),
        ("mp Comm", Ok(Box::new(ours::comm_sweep))),
        ("Python Pipe", python),
        ("C MPI", mpi_c),
    ];
    let round_plan = SweepPlan {
        budget_s: plan.budget_s / LOADED_ROUNDS as f64,
        samples: plan.samples.div_ceil(LOADED_ROUNDS),
        ..plan.clone()
    };
    let mut rounds: Vec<Result<Vec<Vec<RawPoint>>, String>> =
        transports.iter().map(|_| Ok(Vec::new())).collect();
    for round in 1..=LOADED_ROUNDS {
        for ((name, runner), raw) in transports.iter().zip(&mut rounds) {
            let (Ok(runner), Ok(done)) = (runner, raw.as_mut()) else { continue };
            let what = format!("loaded, {pass}, round {round}/{LOADED_ROUNDS}: {name} ping-pong");
            match step(&what, || runner(&round_plan)) {
                Outcome::Measured { value } => done.push(value),
                outcome => *raw = Err(outcome.why_not().unwrap_or_default().to_string()),
            }
        }
    }
    let mut outcomes = transports.iter().zip(rounds).map(|((_, runner), raw)| match runner {
        Err(reason) => Outcome::skipped(reason.clone()),
        Ok(_) => Outcome::from_result(
            raw.and_then(|rounds| Point::all_from_raw(&merge_rounds(rounds, &plan.sizes)?)),
        ),
    });
    let mut next = || outcomes.next().expect("four transports");
    LoadedPass { pipe: next(), comm: next(), python_pipe: next(), mpi_c: next() }
}

/// The samples of every round, per size, as one raw point each (the batch size of the first
/// round; later rounds may have picked others, each sample is a one-way time all the same).
fn merge_rounds(rounds: Vec<Vec<RawPoint>>, sizes: &[u64]) -> Result<Vec<RawPoint>, String> {
    sizes
        .iter()
        .map(|&bytes| {
            let mut merged: Option<RawPoint> = None;
            for point in rounds.iter().flatten().filter(|point| point.bytes == bytes) {
                match &mut merged {
                    None => merged = Some(point.clone()),
                    Some(merged) => merged.one_way_s.extend_from_slice(&point.one_way_s),
                }
            }
            merged.ok_or_else(|| format!("no round measured {bytes} B"))
        })
        .collect()
}

/// Measures everything and writes the report into `options.out`.
pub fn run(options: &Options) -> Result<Written, String> {
    let started = Instant::now();
    std::fs::create_dir_all(&options.out)
        .map_err(|error| format!("cannot create {}: {error}", options.out.display()))?;
    let settings = Settings::new(options.quick);
    let mut machine = Machine::describe();
    eprintln!("mp-bench: {} -> {}", machine.summary(), options.out.display());

    let memcpy = step("limit: memcpy", || summarise(limit::memcpy_sweep(&settings.sweep)));
    let shared_flag_s = step("limit: shared-memory flag ping-pong", || {
        summary(limit::shared_flag(settings.flag_batch, settings.flag_samples)?)
    });
    let (ours, ours_comm, threads) = measure_ours(&settings);
    let ipc_channel = measure_ipc_channel(&settings);
    let python = measure_python(options, &settings, &mut machine);
    let MpiOutcomes { c: mpi_c, mpi4py, mp: mpi_mp, mpirun } =
        measure_mpi(options, &settings, &mut machine);
    machine.load_after = crate::machine::load_average();
    let loaded = match options.load {
        0 => None,
        _ => Some(measure_loaded(options, &settings)),
    };

    let results = Results {
        machine,
        settings,
        ours,
        ours_comm,
        threads,
        ipc_channel,
        python,
        mpi_c,
        mpi4py,
        mpi_mp,
        mpirun,
        memcpy,
        shared_flag_s,
        loaded,
        wall_s: started.elapsed().as_secs_f64(),
    };
    write_all(&results, &options.out)
}

/// Writes `report.md`, `results.json` and `bandwidth.svg` into `dir`.
pub fn write_all(results: &Results, dir: &Path) -> Result<Written, String> {
    let json_path = dir.join("results.json");
    let json = serde_json::to_string_pretty(results).map_err(|error| error.to_string())?;
    std::fs::write(&json_path, json + "\n")
        .map_err(|error| format!("writing {}: {error}", json_path.display()))?;
    let chart_path = dir.join("bandwidth.svg");
    let chart = chart::write(results, &chart_path).map(|()| chart_path);
    let mut text = report::render(results);
    if let Err(error) = &chart {
        text.push_str(&format!("\nThe chart could not be drawn: {error}\n"));
    }
    let report_path = dir.join("report.md");
    std::fs::write(&report_path, text)
        .map_err(|error| format!("writing {}: {error}", report_path.display()))?;
    Ok(Written { report: report_path, json: json_path, chart })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::report::tests::sample_results;

    #[test]
    fn the_rounds_of_a_loaded_pass_merge_per_size_and_a_missing_size_is_an_error() {
        let round = |offset: f64| {
            vec![
                RawPoint { bytes: 1, batch: 10, one_way_s: vec![1.0 + offset, 2.0 + offset] },
                RawPoint { bytes: 8, batch: 20, one_way_s: vec![3.0 + offset] },
            ]
        };
        let merged = merge_rounds(vec![round(0.0), round(10.0), round(20.0)], &[1, 8]).unwrap();
        assert_eq!(merged[0].one_way_s, [1.0, 2.0, 11.0, 12.0, 21.0, 22.0]);
        assert_eq!((merged[0].bytes, merged[0].batch), (1, 10));
        assert_eq!(merged[1].one_way_s, [3.0, 13.0, 23.0]);
        let error = merge_rounds(vec![round(0.0)], &[1, 64]).unwrap_err();
        assert_eq!(error, "no round measured 64 B");
    }

    #[test]
    fn writes_the_three_files_and_the_json_reads_back() {
        let dir = std::env::temp_dir().join(format!("mp-bench-test-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let results = sample_results();
        let written = write_all(&results, &dir).unwrap();
        let json = std::fs::read_to_string(&written.json).unwrap();
        let back: Results = serde_json::from_str(&json).unwrap();
        // Floats may lose their last bit in JSON; everything shown must read back the same.
        assert_eq!((&back.settings, &back.machine), (&results.settings, &results.machine));
        assert_eq!(report::render(&back), report::render(&results));
        assert!(json.contains("\"status\": \"skipped\""));
        assert!(std::fs::read_to_string(&written.report).unwrap().contains("## Targets"));
        assert!(std::fs::read_to_string(written.chart.unwrap()).unwrap().starts_with("<svg"));
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
