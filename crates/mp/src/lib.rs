//! # mp: Python's `multiprocessing`, in Rust, on real OS processes
//!
//! `mp` is the library behind a course on process-level parallelism: pools of worker
//! processes, processes launched by hand, pipes and queues between them, shared memory, and the
//! tools to measure what all that costs. Workers are real processes (a fresh copy of your
//! program, started with `exec`), as with Python's `multiprocessing`; where Python hangs or
//! surprises, `mp` returns an [`Error`] that says what happened.
//!
//! ```
//! fn hard_work(i: u64) -> u64 {
//!     (0..1_000 * i).sum()
//! }
//!
//! fn main() -> mp::Result<()> {
//!     mp::init(); // first line of main: turns the copies started by mp into workers
//!
//!     let pool = mp::Pool::new(2)?;
//!     let results = pool.map(hard_work, 0..20)?;
//!     assert_eq!(results, (0..20).map(hard_work).collect::<Vec<_>>());
//!     Ok(())
//! }
//! ```
//!
//! ## From Python to Rust
//!
//! | Python | Rust (`mp`) |
//! |---|---|
//! | `if __name__ == "__main__":` guard | [`mp::init()`](init) as the first line of `main` |
//! | `Pool(n)`, `Pool()` | [`Pool::new(n)`](Pool::new), [`Pool::with_all_cpus()`](Pool::with_all_cpus) |
//! | `pool.map(f, xs)`, `chunksize=k` | [`pool.map(f, xs)`](Pool::map), [`pool.map_chunked(f, xs, k)`](Pool::map_chunked) |
//! | `pool.starmap(f, [(a, b), ...])` | [`pool.starmap(f, vec![(a, b), ...])`](Pool::starmap) |
//! | `pool.imap(f, xs)`, `imap_unordered`, `it.next(timeout)` | [`pool.imap(f, xs, k)`](Pool::imap), [`pool.imap_unordered(f, xs, k)`](Pool::imap_unordered), [`next_timeout(t)`](Imap::next_timeout) |
//! | `pool.map_async(f, xs).get(timeout)`, `starmap_async` | [`pool.map_async(f, xs)?.get_timeout(t)`](MapResult::get_timeout), [`starmap_async`](Pool::starmap_async) |
//! | `pool.apply_async(f, (x,)).get(timeout)` | [`pool.apply_async(f, x)?.get_timeout(t)`](AsyncResult::get_timeout) |
//! | `pool.close(); pool.join()` | nothing to do: [`map`](Pool::map) and its kin return once their results are in, and [`get`](AsyncResult::get) waits for an async task's; then dropping the [`Pool`] (the end of its scope, or `drop(pool)`) stops its workers and reaps them |
//! | `pool.terminate()`, `with Pool(n) as pool:` | `drop(pool)`, or the end of the pool's scope: workers still running a task get 2 s, then SIGKILL |
//! | which worker ran what (by hand, with `os.getpid()`) | [`pool.map_traced(f, xs, k)`](Pool::map_traced) |
//! | `np.array_split(xs, k)` | [`array_split(&xs, k)`](array_split) |
//! | `p = Process(target=f, args=(x,)); p.start()` | [`let mut p = Process::spawn(f, x)?`](Process::spawn) |
//! | `Process(target=f, args=(a, b))` | [`Process::spawn_star(f, (a, b))?`](Process::spawn_star) (2 to 4 arguments, as [`starmap`](Pool::starmap)) |
//! | `p.start()` as a step of its own | none: `spawn` starts the process; to start it later, keep `f` and its argument and call `spawn` then |
//! | `p.join()` (result through a Queue) | [`p.join()?`](Process::join) returns `f(x)` |
//! | `p.join(timeout)`, `p.is_alive()`, `p.pid`, `p.exitcode`, `p.kill()` | [`join_timeout`](Process::join_timeout), [`is_alive`](Process::is_alive), [`pid`](Process::pid), [`exit_reason`](Process::exit_reason), [`kill`](Process::kill) |
//! | `a, b = Pipe()` | [`let (a, b) = pipe::<T>()?`](pipe) |
//! | `r, w = Pipe(duplex=False)` | [`let (w, r) = pipe_simplex::<T>()?`](pipe_simplex) (sender first) |
//! | `conn.send(x)`, `conn.recv()`, `EOFError` | [`send(&x)`](Connection::send), [`recv()`](Connection::recv), [`Error::Disconnected`] |
//! | `conn.send_bytes(b)`, `conn.recv_bytes()`, `recv_bytes_into(buf)` | [`send_bytes`](Connection::send_bytes), [`recv_bytes`](Connection::recv_bytes), [`recv_bytes_into`](Connection::recv_bytes_into) |
//! | `conn.send_bytes(a)` of a NumPy array, `np.frombuffer(conn.recv_bytes(), dtype)` | [`send_slice(&a)`](Connection::send_slice), [`recv_vec::<f64>()`](Connection::recv_vec), or into a reused vector: [`recv_into(&mut v)`](Connection::recv_into); elements are [`bytemuck`]`::Pod` |
//! | a function taking any object with `send` (or `recv`) | [`fn f(out: &impl SendEnd<T>)`](SendEnd), [`RecvEnd`]: [`Connection`] is both, [`Sender`] sends, [`Receiver`] receives |
//! | `Queue()`, `Manager().Queue()` | [`Queue::new()`](Queue::new) (works from pool workers too) |
//! | `q.put(x)`, `q.get()`, `q.get(timeout=t)` | [`put(&x)`](Queue::put), [`get()`](Queue::get), [`get_timeout(t)`](Queue::get_timeout) |
//! | `q.empty()`, `q.qsize()`, `q.get_nowait()` | none: [`q.get_timeout(Duration::ZERO)`](Queue::get_timeout) takes an item if one is there ([`Error::Timeout`] if not). As Python's docs say of `empty` and `qsize`, any answer may be wrong by the time you act on it: other processes put and get meanwhile, and an item just put may still be on its way. For a pipe: [`conn.poll(Duration::ZERO)`](Connection::poll) |
//! | `pool.starmap(run, [(rank, conns_for_rank), ...])` | [`launch_each(run, args)`](launch_each) (rank `i` gets `args[i]`, pipe ends included) or [`launch(n, run, arg)`](launch) (the same `arg` for all), with [`Comm`] (MPI's rank/size/send/recv) |
//! | (no bound in Python or MPI: a deadlocked group hangs) | [`Launch::run_timeout`], [`Comm::recv_timeout`] |
//! | mpi4py's `comm.sendrecv(x, dest=d, source=s)` | [`comm.sendrecv(d, &x, s)`](Communicator::sendrecv) |
//! | `RawArray('d', n)`, `shared_memory.SharedMemory` | [`SharedArray::<f64>::new(n)`](SharedArray::new) |
//! | threads: `ThreadPool(n).map` | [`threads::ThreadPool::new(n)?.map(f, xs)`](threads::ThreadPool::map) (rayon) |
//! | `os.sched_getaffinity(0)`, `os.sched_setaffinity(0, {c})`, `mpirun --bind-to core` | [`affinity::get()`](affinity::get), [`affinity::set(&[c])`](affinity::set) |
//! | `time.perf_counter()` marks t0..t3 | [`timing::Phases`] (all intervals between marks) |
//! | shell `time python3 prog.py` | [`timing::ProcessTimes::now()`](timing::ProcessTimes::now) (real/user/sys incl. children) |
//! | "MB" vs "MiB" vs "Mb" | [`units::Bytes`], [`units::Bandwidth`], [`units::Unit`] |
//! | `np.logspace(a, b, n)`, `np.unique(np.logspace(a, b, n).astype(int))` | [`mp::logspace(a, b, n)`](logspace), [`units::logspace_sizes(a, b, n)`](units::logspace_sizes) |
//!
//! ## Other transports
//!
//! For other transports, e.g. MPI via the mp-mpi crate, [`mp::peer`](peer): a [`Peer`] moves
//! the messages of one connection, and [`Connection::from_peer`], [`Sender::from_peer`],
//! [`Receiver::from_peer`] and [`Comm::from_peers`] build the same endpoints on it, so code
//! written for pipes and [`Communicator`] runs unchanged across MPI ranks. mp does not depend
//! on MPI.
//!
//! ## Task functions
//!
//! What a pool or process runs is a `fn` item or a closure that captures nothing: a worker is
//! a separate process and cannot see the parent's variables, so data goes in the argument.
//! A closure that captures something is rejected when you build the program (`cargo build`, not
//! `cargo check`), and so is a function pointer (`f as fn(u32) -> u32`, or a `fn` taken out of
//! an array): to run several functions, call `map` or `launch` once per function, or pass a tag
//! in the argument and `match` on it inside one function. Arguments and
//! results must be a [`Message`]: implement serde's `Serialize` and `Deserialize` (derive
//! them). They travel encoded with postcard, which cannot encode serde's `flatten` or `untagged`. Bulk numbers are faster as
//! bytes: [`Connection::send_slice`], or a [`SharedArray`].
//!
//! ## Starting workers: `mp::init()`
//!
//! A worker is a fresh copy of the running executable. Call [`init`] on the first line of
//! `main`: in a worker it takes over and never returns; in your program it returns at once.
//! Code before it runs again in every worker. A program that forgot it gets
//! [`Error::StartupFailed`] saying so, never a fork bomb or a hang.
//!
//! * **Integration tests**: put `mp::test_support!();` at the top of the test file, and arm
//!   a [`testing::watchdog`] in every test that starts processes.
//! * **Doctests**: start the example with a hidden `# mp::init();`.
//! * **Criterion benches** (`harness = false`): call `mp::init()` first in your own `main`,
//!   before criterion parses the arguments.
//!
//! ## Faults
//!
//! * A task that panics gives [`Error::TaskPanicked`] with the message, location and input
//!   index; the worker survives. (With `panic = "abort"` the worker dies instead.)
//! * A worker that dies (killed, aborted, `exit`) gives [`Error::WorkerDied`] naming the worker,
//!   the signal or exit code and the lost inputs; the rest of the pool is shut down and later
//!   calls get [`Error::PoolBroken`]. Python's `Pool` hangs forever here.
//! * A typed message received as another type gives [`Error::TypeMismatch`] naming both types
//!   (every typed message carries a fingerprint of its type), not a wrong value; a message too
//!   large for memory gives [`Error::OutOfMemory`] naming its size, not an abort.
//! * A parent that dies, even by SIGKILL, takes its workers with it; Ctrl-C stops everyone.
//!   Dropping a [`Pool`] or [`Process`] stops and reaps its processes: no zombies.
//!
//! Linux only: `mp` uses Unix sockets, `memfd` and `/proc`.

mod channel;
mod ends;
mod error;
mod pool;
mod process;
mod queue;
mod ranks;
mod ring;
mod shm;
mod sys;
mod wire;
mod worker;

pub mod affinity;
pub mod peer;
pub mod plot;
pub mod split;
pub mod testing;
pub mod threads;
pub mod timing;
pub mod units;

/// The crate behind [`Connection::send_slice`] and `recv_vec`/`recv_into`: their elements are
/// `bytemuck::Pod`: plain numbers, and fixed-size arrays of them. Re-exported, so that code
/// generic over those elements can name the bound (`T: mp::bytemuck::Pod`) without a
/// dependency of its own, whose version would have to match mp's.
///
/// ```
/// # fn main() -> mp::Result<()> {
/// use mp::bytemuck;
///
/// fn send_all<T: bytemuck::Pod>(end: &mp::Sender<()>, items: &[T]) -> mp::Result<()> {
///     end.send_slice(items)
/// }
///
/// let (tx, rx) = mp::pipe_simplex::<()>()?;
/// send_all(&tx, &[1u16, 2])?;
/// assert_eq!(rx.recv_vec::<u16>()?, [1, 2]);
/// # Ok(()) }
/// ```
pub use bytemuck;
pub use channel::{Connection, Receiver, Sender, pipe, pipe_simplex};
pub use ends::{RecvEnd, SendEnd};
pub use error::{Error, ExitReason, Result};
pub use peer::{MessageKind, Peer};
pub use pool::{
    AsyncResult, CHUNKS_IN_FLIGHT, Imap, MapResult, Pool, StarFn, TaskRecord, Traced, cpu_count,
};
pub use process::Process;
pub use queue::Queue;
pub use ranks::{Comm, Communicator, Launch, Topology, launch, launch_each};
pub use shm::{Element, SharedArray};
pub use split::array_split;
pub use units::logspace;
pub use worker::init;

/// What can travel between processes: task arguments, results and messages.
///
/// Every type that implements serde's `Serialize` and `Deserialize` (and owns its data) is a
/// `Message`: numbers, strings, vectors, tuples, your own structs with
/// `#[derive(serde::Serialize, serde::Deserialize)]`, and mp's pipes, queues and shared
/// arrays themselves.
///
/// ```
/// fn travels<T: mp::Message>() {}
/// travels::<(u64, Vec<f64>, String)>();
/// travels::<mp::Queue<u32>>();
/// ```
#[diagnostic::on_unimplemented(
    message = "`{Self}` cannot be sent to another process",
    note = "add `#[derive(serde::Serialize, serde::Deserialize)]` to it; references and closures cannot travel"
)]
pub trait Message: serde::Serialize + serde::de::DeserializeOwned + 'static {}

impl<T: serde::Serialize + serde::de::DeserializeOwned + 'static> Message for T {}

/// Lets an integration test file start worker processes.
///
/// A test binary's `main` belongs to the test harness, so [`init`] cannot be its first line.
/// This macro registers [`init`] to run before `main` (in the executable's `.init_array`), so
/// a worker started from the test binary takes over before the harness starts, and the
/// harness never runs in it. Put it once at the top level of each integration test file that
/// uses processes:
///
/// ```no_run
/// mp::test_support!();
///
/// fn square(x: u32) -> u32 {
///     x * x
/// }
///
/// #[test]
/// fn squares() {
///     let pool = mp::Pool::new(2).unwrap();
///     assert_eq!(pool.map(square, 0..4).unwrap(), [0, 1, 4, 9]);
/// }
/// ```
#[macro_export]
macro_rules! test_support {
    () => {
        // Runs before main in every process of this binary; returns at once except in workers.
        #[used]
        #[allow(unsafe_code)]
        #[unsafe(link_section = ".init_array")]
        static MP_WORKER_ENTRY: extern "C" fn() = {
            extern "C" fn mp_worker_entry() {
                $crate::init();
            }
            mp_worker_entry
        };
    };
}

#[cfg(test)]
test_support!();
