//! Everything one run measured, as written to `results.json`. Times are in seconds, sizes in
//! bytes, bandwidths in bytes per second.

use serde::{Deserialize, Serialize};

use crate::{
    machine::Machine,
    memory::MemoryPeak,
    stats::Summary,
    sweep::{Point, SweepPlan},
};

/// A measurement that was made, skipped (a tool is missing) or failed (with the error).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(tag = "status", rename_all = "snake_case")]
pub enum Outcome<T> {
    /// It was measured.
    Measured {
        /// The figures.
        value: T,
    },
    /// It was not attempted.
    Skipped {
        /// Why, and how to make it possible.
        reason: String,
    },
    /// It was attempted and failed.
    Failed {
        /// What went wrong.
        error: String,
    },
}

impl<T> Outcome<T> {
    /// `Measured` for `Ok`, `Failed` for `Err`.
    pub fn from_result(result: Result<T, String>) -> Outcome<T> {
        match result {
            Ok(value) => Outcome::Measured { value },
            Err(error) => Outcome::Failed { error },
        }
    }

    /// Skipped, for `reason`.
    pub fn skipped(reason: impl Into<String>) -> Outcome<T> {
        Outcome::Skipped { reason: reason.into() }
    }

    /// The figures, if measured.
    pub fn value(&self) -> Option<&T> {
        match self {
            Outcome::Measured { value } => Some(value),
            _ => None,
        }
    }

    /// A short word for a table cell when there is no value: `skipped` or `failed`.
    pub fn absence(&self) -> &'static str {
        match self {
            Outcome::Measured { .. } => "",
            Outcome::Skipped { .. } => "skipped",
            Outcome::Failed { .. } => "failed",
        }
    }

    /// Why there is no value, if there is none.
    pub fn why_not(&self) -> Option<&str> {
        match self {
            Outcome::Measured { .. } => None,
            Outcome::Skipped { reason } => Some(reason),
            Outcome::Failed { error } => Some(error),
        }
    }
}

/// Per-task cost of one `map` configuration.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct PerTask {
    /// Tasks per map.
    pub n_tasks: u64,
    /// The chunk size.
    pub chunksize: u64,
    /// Seconds per whole map.
    pub map_s: Summary,
    /// Seconds per task: the map's time over `n_tasks`.
    pub per_task_s: Summary,
}

impl PerTask {
    /// From the times of whole maps.
    pub fn new(n_tasks: u64, chunksize: u64, map_s: Summary) -> PerTask {
        let per_task_s = map_s.scaled(1.0 / n_tasks.max(1) as f64);
        PerTask { n_tasks, chunksize, map_s, per_task_s }
    }
}

/// The experiments that both mp and Python's multiprocessing run.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Side {
    /// `Pool(4)` until a first one-item `map` returned, seconds.
    pub pool_start_s: Outcome<Summary>,
    /// One process started, run and joined with a value back, seconds.
    pub process_start_s: Outcome<Summary>,
    /// `map` with chunksize 1.
    pub map_chunksize_1: Outcome<PerTask>,
    /// `map` with the default chunk size.
    pub map_default: Outcome<PerTask>,
    /// Pipe ping-pong, `send_bytes` / `recv_bytes`.
    pub pipe: Outcome<Vec<Point>>,
    /// Gather of 4 arrays of f64 with `pool.map`, seconds.
    pub gather_pool_s: Outcome<Summary>,
    /// Gather of 4 arrays of f64 over 4 pipes, seconds.
    pub gather_pipes_s: Outcome<Summary>,
    /// Peak memory for one large message.
    pub memory: Outcome<MemoryPeak>,
}

impl Side {
    /// Every experiment skipped for `reason`.
    pub fn skipped(reason: &str) -> Side {
        Side {
            pool_start_s: Outcome::skipped(reason),
            process_start_s: Outcome::skipped(reason),
            map_chunksize_1: Outcome::skipped(reason),
            map_default: Outcome::skipped(reason),
            pipe: Outcome::skipped(reason),
            gather_pool_s: Outcome::skipped(reason),
            gather_pipes_s: Outcome::skipped(reason),
            memory: Outcome::skipped(reason),
        }
    }
}

/// ipc-channel's three ways of sending bytes, each with the same ping-pong as mp's pipe.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct IpcChannel {
    /// The ipc-channel release measured.
    pub version: String,
    /// `IpcBytesSender` / `IpcBytesReceiver`.
    pub bytes: Outcome<Vec<Point>>,
    /// `IpcSender<Vec<u8>>` / `IpcReceiver<Vec<u8>>` (serde, postcard).
    pub typed: Outcome<Vec<Point>>,
    /// `IpcSender<IpcSharedMemory>`, a new region per message.
    pub shared_memory: Outcome<Vec<Point>>,
}

impl IpcChannel {
    /// The three sweeps with their short names, in report order.
    pub fn kinds(&self) -> [(&'static str, &Outcome<Vec<Point>>); 3] {
        [("bytes", &self.bytes), ("typed", &self.typed), ("IpcSharedMemory", &self.shared_memory)]
    }
}

/// How much was measured: the knobs of one run.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Settings {
    /// `--quick` was given.
    pub quick: bool,
    /// Sizes, time budget and samples of every ping-pong.
    pub sweep: SweepPlan,
    /// Untimed start-ups before the timed ones.
    pub startup_warm_up: usize,
    /// Timed start-ups.
    pub startup_reps: usize,
    /// Tasks per `map` for the per-task figures.
    pub map_tasks: u64,
    /// Timed maps per configuration (after one untimed).
    pub map_reps: usize,
    /// f64 values per gathered array.
    pub gather_len: usize,
    /// Timed gathers (after one untimed).
    pub gather_reps: usize,
    /// Size of the peak-memory message, bytes.
    pub memory_bytes: u64,
    /// Round trips per timed batch of the shared-memory flag.
    pub flag_batch: u64,
    /// Timed batches of the shared-memory flag.
    pub flag_samples: usize,
}

impl Settings {
    /// The full run, or the short smoke run.
    pub fn new(quick: bool) -> Settings {
        let sizes = if quick {
            vec![1, 8, 1 << 10, 4 << 10, 64 << 10, 1 << 20, 64 << 20]
        } else {
            // Every power of 4 from 1 B to 64 MiB, and 8 B for the small-message target.
            let mut sizes: Vec<u64> = (0..=13).map(|k| 1u64 << (2 * k)).collect();
            sizes.insert(2, 8);
            sizes
        };
        Settings {
            quick,
            sweep: SweepPlan {
                sizes,
                budget_s: if quick { 0.04 } else { 0.5 },
                samples: if quick { 5 } else { 11 },
                cpus: None,
            },
            startup_warm_up: if quick { 1 } else { 2 },
            startup_reps: if quick { 5 } else { 15 },
            map_tasks: if quick { 10_000 } else { 100_000 },
            map_reps: if quick { 2 } else { 5 },
            gather_len: 1_000_000,
            gather_reps: if quick { 3 } else { 11 },
            memory_bytes: 256 << 20,
            flag_batch: if quick { 2_000 } else { 20_000 },
            flag_samples: if quick { 3 } else { 11 },
        }
    }
}

/// The sizes of the loaded part: every power of 4 from 1 B to 4 KiB, and 8 B.
pub const LOADED_SIZES: [u64; 8] = [1, 4, 8, 16, 64, 256, 1024, 4096];

/// The loaded part of a run (`--load N`): the small-message ping-pongs again while N busy
/// processes share the CPUs.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Loaded {
    /// Busy processes running during these measurements.
    pub busy: usize,
    /// Sizes, time budget and samples of these ping-pongs.
    pub sweep: SweepPlan,
    /// 1-, 5- and 15-minute load averages when the busy processes had started.
    pub load_before: Option<[f64; 3]>,
    /// The same when the loaded measurements ended.
    pub load_after: Option<[f64; 3]>,
    /// The two CPUs of the bound pass; `None` when this process may use fewer than two.
    pub bound_to: Option<[usize; 2]>,
    /// Each side of every ping-pong bound to a CPU of its own, as `mpirun --bind-to core`
    /// binds C MPI's ranks: like against like, the pass the issue-14 target is judged on.
    pub bound: LoadedPass,
    /// Every side where the kernel puts it (C MPI with `--bind-to none`), as a program that
    /// does not bind runs: often both sides of a ping-pong on one CPU.
    pub unbound: LoadedPass,
}

/// One pass of the loaded ping-pongs.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct LoadedPass {
    /// `mp::pipe` to an echoing `Process`.
    pub pipe: Outcome<Vec<Point>>,
    /// `Comm` between two ranks of `mp::launch`.
    pub comm: Outcome<Vec<Point>>,
    /// Python's `Pipe()`.
    pub python_pipe: Outcome<Vec<Point>>,
    /// MPI in C.
    pub mpi_c: Outcome<Vec<Point>>,
}

impl LoadedPass {
    /// A pass where every figure failed for the same reason.
    pub fn failed(error: &str) -> LoadedPass {
        let failed = || Outcome::Failed { error: error.to_string() };
        LoadedPass { pipe: failed(), comm: failed(), python_pipe: failed(), mpi_c: failed() }
    }

    /// A pass that was not run, and why.
    pub fn skipped(reason: &str) -> LoadedPass {
        let skipped = || Outcome::skipped(reason);
        LoadedPass { pipe: skipped(), comm: skipped(), python_pipe: skipped(), mpi_c: skipped() }
    }
}

impl Loaded {
    /// The loaded ping-pong's plan: [`LOADED_SIZES`], with at least 0.2 s and 11 samples per
    /// size even in a quick run: under load one lost time slice (milliseconds) swamps a
    /// short batch, and only a longer run gives a median that a second run repeats.
    pub fn plan(quiet: &SweepPlan) -> SweepPlan {
        SweepPlan {
            sizes: LOADED_SIZES.to_vec(),
            budget_s: quiet.budget_s.max(0.2),
            samples: quiet.samples.max(11),
            cpus: None,
        }
    }
}

/// For results written before a row existed.
fn not_measured() -> Outcome<Vec<Point>> {
    Outcome::skipped("not measured in this run")
}

/// Everything one run measured.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Results {
    /// What it ran on.
    pub machine: Machine,
    /// How much it measured.
    pub settings: Settings,
    /// mp, through its public API.
    pub ours: Side,
    /// mp's `Comm` between two ranks started by `mp::launch`.
    pub ours_comm: Outcome<Vec<Point>>,
    /// Two rayon threads and std channels: the threads baseline.
    pub threads: Outcome<Vec<Point>>,
    /// ipc-channel between this process and a child.
    pub ipc_channel: IpcChannel,
    /// Python's multiprocessing.
    pub python: Side,
    /// MPI in C.
    pub mpi_c: Outcome<Vec<Point>>,
    /// MPI through mpi4py.
    pub mpi4py: Outcome<Vec<Point>>,
    /// mp's `Communicator` on MPI (`mp-mpi`'s `Session::world()`), the same ping-pong.
    #[serde(default = "not_measured")]
    pub mpi_mp: Outcome<Vec<Point>>,
    /// The mpirun command line used.
    pub mpirun: Option<String>,
    /// One thread's memcpy at each size.
    pub memcpy: Outcome<Vec<Point>>,
    /// One-way latency of a busy-waited flag in shared memory, seconds.
    pub shared_flag_s: Outcome<Summary>,
    /// The loaded part, with `--load N` (N > 0).
    #[serde(default)]
    pub loaded: Option<Loaded>,
    /// Seconds the whole run took.
    pub wall_s: f64,
}
