//! A pool of worker processes: Python's `multiprocessing.Pool`.
//!
//! Workers are started once and live as long as the [`Pool`]. [`Pool::new`] returns as soon
//! as the first worker reports for duty; the others are started by a launcher thread and get
//! work as they report (each start costs about a millisecond of a CPU). Work goes to them in
//! chunks of consecutive items, an idle worker first; the next chunk goes to whichever worker
//! finishes first. So the split of work over workers is dynamic and uneven, which
//! [`Pool::map_traced`] records. When every worker is busy, each also gets a next chunk ahead
//! ([`CHUNKS_IN_FLIGHT`]), so that it never idles while the parent sends one; a chunk queued
//! like this is taken back if another worker falls idle first (see [`Pool`] for when tasks
//! wait on each other).
//!
//! One dispatcher thread per pool owns the workers' connections and runs an event loop over
//! them: it never waits on one worker while another has results for it, so large arguments
//! and results cannot deadlock. Chunks and results travel through shared memory; the
//! dispatcher and an idle worker busy-poll for 50 µs before they sleep, so with chunksize 1 a
//! worker finds its next item without a wake-up of another CPU. When a worker dies, the call that lost tasks with it
//! gets [`Error::WorkerDied`] (within milliseconds; Python's `Pool` hangs forever), the other
//! workers are shut down, and the pool answers every later call with [`Error::PoolBroken`].

use std::{
    collections::{BTreeMap, HashMap, VecDeque},
    fmt,
    marker::PhantomData,
    os::fd::OwnedFd,
    sync::{Arc, Mutex, OnceLock, atomic::AtomicBool, mpsc},
    thread::JoinHandle,
    time::{Duration, Instant},
};

use serde::{Serialize, de::DeserializeOwned};

use crate::{
    Error, Message, Result, SharedArray,
    channel::{self, Doorbell, Link},
    process::{self, WorkerProcess},
    split, sys, wire,
    worker::{self, RunHeader, ToWorker},
};

/// How often a busy dispatcher (one that never sleeps in `poll`) looks for dead workers.
const HANGUP_CHECK_EVERY: Duration = Duration::from_millis(10);

/// How many chunks a worker holds at once: one it runs and one waiting, so it never idles
/// while the parent sends the next.
///
/// A worker gets the waiting one only while every worker of the pool is busy, and only a
/// chunk that carries no pipes, queues or shared arrays; it is taken back (and given to the
/// other worker) if another worker falls idle before this one starts it.
///
/// ```
/// assert_eq!(mp::CHUNKS_IN_FLIGHT, 2);
/// ```
pub const CHUNKS_IN_FLIGHT: usize = 2;

/// The most workers one pool may have.
const MAX_WORKERS: usize = 1024;

/// A pool of worker processes (Python's `multiprocessing.Pool`).
///
/// # When tasks wait on each other
///
/// A worker runs one task at a time, from start to end; the items of one chunk run one after
/// the other in one worker. Beyond that:
///
/// * **No more tasks than workers** (in one call, or in several pending calls together, such
///   as a few [`apply_async`](Pool::apply_async)): every task runs in a worker of its own, at
///   once, whatever their order, even right after [`Pool::new`] (the pool waits for a worker
///   that is still starting, within its start-up deadline, rather than queue a task behind
///   another). With no more items than workers, every item is a chunk of its own, whatever the
///   chunk size. So tasks may talk to each other (the receiving end of a pipe in one, the
///   sending end in another), as in Python.
/// * **More tasks than workers**: a task waits only while every worker is busy, and never
///   behind a running task while another worker is idle (a chunk queued ahead on a busy worker
///   is taken back for the idle one). A task that waits for a later one (through a pipe, a
///   queue, a shared array) holds its worker until that one runs: fine while another worker
///   is free to run it, a deadlock once every worker holds such a waiting task (as in Python).
/// * **Tasks that must all run at the same time**, however many (ranks that exchange
///   messages, as in MPI): use [`launch`](crate::launch), which starts one process per rank
///   and connects them, instead of a pool.
///
/// # Waiting with a bound
///
/// [`map`](Pool::map), [`starmap`](Pool::starmap), [`apply`](Pool::apply) and the
/// iterators' `next` wait as long as the tasks take; a task that never ends (a deadlock, a
/// stopped worker) makes them wait forever. Each has a bounded variant that returns
/// [`Error::Timeout`] when the time is up: [`map_async`](Pool::map_async) or
/// [`starmap_async`](Pool::starmap_async) then [`MapResult::get_timeout`],
/// [`apply_async`](Pool::apply_async) then [`AsyncResult::get_timeout`], and
/// [`Imap::next_timeout`]. The pool stays usable after a time-out: the tasks go on, and one
/// may wait again. A call given up after a time-out (its pending result dropped before its
/// outcome) while a worker still holds one of its tasks breaks the pool: the pool kills all its
/// workers, and every later call fails at once with [`Error::PoolBroken`] (a stuck or stopped
/// worker would otherwise hold the pool forever).
///
/// ```
/// # fn main() -> mp::Result<()> {
/// # mp::init();
/// fn square(x: u64) -> u64 { x * x }
///
/// let pool = mp::Pool::new(2)?;
/// assert_eq!(pool.map(square, 0..5)?, [0, 1, 4, 9, 16]);
/// # Ok(()) }
/// ```
pub struct Pool {
    n_workers: usize,
    pids: Arc<OnceLock<Vec<u32>>>,
    /// Set when the pool is dropped: the launcher starts no more workers.
    closing: Arc<AtomicBool>,
    commands: mpsc::Sender<Command>,
    doorbell: Arc<Doorbell>,
    broken: Arc<Mutex<Option<String>>>,
    next_job: std::sync::atomic::AtomicU64,
    dispatcher: Option<JoinHandle<()>>,
}

impl fmt::Debug for Pool {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Pool")
            .field("n_workers", &self.n_workers)
            .field("pids", &self.pids)
            .finish()
    }
}

/// When and where one item of a traced map ran. Times are measured from the start of the call.
///
/// ```
/// # fn main() -> mp::Result<()> {
/// # mp::init();
/// let pool = mp::Pool::new(2)?;
/// let traced = pool.map_traced(|x: u32| x * 2, 0..4u32, Some(1))?;
/// let record = &traced.tasks[2];
/// assert_eq!(record.index, 2);
/// assert_eq!(pool.pids()[record.worker], record.pid);
/// assert!(record.start <= record.end);
/// # Ok(()) }
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TaskRecord {
    /// The item's index in the input.
    pub index: usize,
    /// Which worker of the pool ran it (0-based).
    pub worker: usize,
    /// That worker's process id.
    pub pid: u32,
    /// When the worker started the item.
    pub start: Duration,
    /// When it finished it.
    pub end: Duration,
}

/// The results of [`Pool::map_traced`], with a record of which worker ran each item when.
///
/// ```
/// # fn main() -> mp::Result<()> {
/// # mp::init();
/// let pool = mp::Pool::new(2)?;
/// let traced = pool.map_traced(|x: u64| x + 100, 0..5u64, None)?;
/// assert_eq!(traced.results, [100, 101, 102, 103, 104]);
/// let indices: Vec<usize> = traced.tasks.iter().map(|task| task.index).collect();
/// assert_eq!(indices, [0, 1, 2, 3, 4]);
/// # Ok(()) }
/// ```
#[derive(Debug, Clone)]
pub struct Traced<R> {
    /// `f(item)` for each item, in input order.
    pub results: Vec<R>,
    /// One record per item, in input order.
    pub tasks: Vec<TaskRecord>,
}

/// The number of CPUs this process may run on (Python's `os.process_cpu_count()`), the default
/// size of a pool.
///
/// ```
/// assert!(mp::cpu_count() >= 1);
/// ```
pub fn cpu_count() -> usize {
    std::thread::available_parallelism().map(|count| count.get()).unwrap_or(1)
}

impl Pool {
    /// Starts `n_workers` worker processes. Zero is an error.
    ///
    /// Returns once the first worker is ready, with the others starting in the background;
    /// a worker that cannot start (the program does not call [`mp::init()`](crate::init), or
    /// it takes longer than `MP_STARTUP_TIMEOUT_MS`, 30 s by default) is an
    /// [`Error::StartupFailed`], from `new` or from the call that was running at the time.
    /// `MP_STARTUP_TIMEOUT_MS` must be a whole number of milliseconds from 1 to 3,600,000 (an
    /// hour); another value is an [`Error::InvalidArgument`] from `new` that names it.
    ///
    /// ```
    /// # mp::init();
    /// let error = mp::Pool::new(0).unwrap_err();
    /// assert!(error.to_string().contains("at least 1"));
    /// ```
    pub fn new(n_workers: usize) -> Result<Pool> {
        if n_workers == 0 {
            return Err(Error::invalid("a pool needs at least 1 worker process, not 0"));
        }
        if n_workers > MAX_WORKERS {
            return Err(Error::invalid(format!(
                "{n_workers} workers is more than the {MAX_WORKERS} a pool may have; \
                 more processes than cores only adds overhead (this machine has {})",
                cpu_count()
            )));
        }
        // The pool is ready once its first worker reports for duty (which also proves that
        // the program calls `mp::init()`). Starting a process costs about a millisecond of a
        // CPU here, so the others are started meanwhile by a launcher thread, and the
        // dispatcher gives them work as they report in turn.
        let mut first = WorkerProcess::launch()?;
        first.await_hello()?;
        let pids = Arc::new(OnceLock::new());
        let (commands, command_receiver) = mpsc::channel();
        let doorbell = Arc::new(Doorbell::new()?);
        let first_pid = first.pid();
        let closing = Arc::new(AtomicBool::new(false));
        let launcher = Launcher {
            n_workers,
            pids: Arc::clone(&pids),
            closing: Arc::clone(&closing),
            commands: commands.clone(),
            doorbell: Arc::clone(&doorbell),
        };
        std::thread::Builder::new()
            .name("mp-launcher".into())
            .spawn(move || launcher.run(first_pid))
            .map_err(|error| Error::io("starting the pool's launcher thread", error))?;
        let broken = Arc::new(Mutex::new(None));
        let mut dispatcher = Dispatcher {
            n_workers,
            slots: Vec::new(),
            claims: SharedArray::new(n_workers)?,
            commands: command_receiver,
            doorbell: Arc::clone(&doorbell),
            queue: VecDeque::new(),
            jobs: HashMap::new(),
            broken: Arc::clone(&broken),
        };
        dispatcher.add_worker(first, true)?;
        let dispatcher = std::thread::Builder::new()
            .name("mp-pool".into())
            .spawn(move || dispatcher.run())
            .map_err(|error| Error::io("starting the pool's dispatcher thread", error))?;
        Ok(Pool {
            n_workers,
            pids,
            closing,
            commands,
            doorbell,
            broken,
            next_job: std::sync::atomic::AtomicU64::new(0),
            dispatcher: Some(dispatcher),
        })
    }

    /// A pool with one worker per CPU ([`cpu_count`]): Python's `Pool()`.
    ///
    /// ```
    /// # fn main() -> mp::Result<()> {
    /// # mp::init();
    /// let pool = mp::Pool::with_all_cpus()?;
    /// assert_eq!(pool.n_workers(), mp::cpu_count());
    /// # Ok(()) }
    /// ```
    pub fn with_all_cpus() -> Result<Pool> {
        Pool::new(cpu_count())
    }

    /// How many worker processes the pool has.
    ///
    /// ```
    /// # fn main() -> mp::Result<()> {
    /// # mp::init();
    /// let pool = mp::Pool::new(3)?;
    /// assert_eq!(pool.n_workers(), 3);
    /// # Ok(()) }
    /// ```
    pub fn n_workers(&self) -> usize {
        self.n_workers
    }

    /// The process ids of the workers, by worker index.
    ///
    /// ```
    /// # fn main() -> mp::Result<()> {
    /// # mp::init();
    /// fn my_pid(_: ()) -> u32 { std::process::id() }
    ///
    /// let pool = mp::Pool::new(2)?;
    /// assert_eq!(pool.pids().len(), 2);
    /// assert!(!pool.pids().contains(&std::process::id()));
    /// assert!(pool.pids().contains(&pool.apply(my_pid, ())?));
    /// # Ok(()) }
    /// ```
    pub fn pids(&self) -> &[u32] {
        // Set by the launcher once every worker is started (a few milliseconds after `new`).
        self.pids.wait()
    }

    /// `f(item)` for every item, in order, computed by the workers (Python's `pool.map`).
    ///
    /// Items go out in chunks of Python's default size, `ceil(len / (4 * n_workers))`. The
    /// first task to fail makes the whole call fail. It waits as long as the tasks take: to
    /// wait at most a given time, use [`Pool::map_async`] and [`MapResult::get_timeout`].
    ///
    /// ```
    /// # fn main() -> mp::Result<()> {
    /// # mp::init();
    /// fn checked_half(x: u32) -> u32 { assert!(x % 2 == 0, "odd input"); x / 2 }
    ///
    /// let pool = mp::Pool::new(2)?;
    /// assert_eq!(pool.map(checked_half, [2, 4, 6])?, [1, 2, 3]);
    /// let error = pool.map(checked_half, [2, 3]).unwrap_err();
    /// assert!(matches!(error, mp::Error::TaskPanicked { task_index: Some(1), .. }));
    /// # Ok(()) }
    /// ```
    pub fn map<A, R, F>(&self, f: F, items: impl IntoIterator<Item = A>) -> Result<Vec<R>>
    where
        F: Fn(A) -> R + Copy + 'static,
        A: Message,
        R: Message,
    {
        let () = worker::PlainFn::<F>::CHECK; // so that a build error names the caller's line
        let items: Vec<A> = items.into_iter().collect();
        let chunksize = split::default_chunksize(items.len(), self.n_workers)?;
        self.map_chunked(f, items, chunksize)
    }

    /// As [`Pool::map`], with an explicit chunk size (Python's `chunksize=`). A chunk size of 1
    /// balances best and costs one round trip per item. With no more items than workers, every
    /// item is a chunk of its own (so each runs in a worker of its own), whatever `chunksize`.
    ///
    /// ```
    /// # fn main() -> mp::Result<()> {
    /// # mp::init();
    /// let pool = mp::Pool::new(2)?;
    /// assert_eq!(pool.map_chunked(|x: i32| -x, vec![1, 2, 3], 1)?, [-1, -2, -3]);
    /// assert!(pool.map_chunked(|x: i32| x, vec![1], 0).is_err());
    /// # Ok(()) }
    /// ```
    pub fn map_chunked<A, R, F>(
        &self,
        f: F,
        items: impl IntoIterator<Item = A>,
        chunksize: usize,
    ) -> Result<Vec<R>>
    where
        F: Fn(A) -> R + Copy + 'static,
        A: Message,
        R: Message,
    {
        let _ = f;
        let () = worker::PlainFn::<F>::CHECK; // so that a build error names the caller's line
        let stream =
            Stream::<A, R, _>::start::<F>(self, items.into_iter(), chunksize, StreamConfig::map())?;
        stream.collect()
    }

    /// Starts [`Pool::map`] and returns at once (Python's `pool.map_async`): the results are
    /// collected with [`MapResult::get`], or with [`MapResult::get_timeout`], which waits at
    /// most a given time. Items go out in chunks as for [`Pool::map`].
    ///
    /// ```
    /// # fn main() -> mp::Result<()> {
    /// # mp::init();
    /// use std::time::Duration;
    /// fn double(x: u32) -> u32 { x * 2 }
    /// fn wait_for(rx: mp::Receiver<u32>) -> u32 { rx.recv().unwrap() }
    ///
    /// let pool = mp::Pool::new(2)?;
    /// let pending = pool.map_async(double, 0..4)?;
    /// assert_eq!(pending.get()?, [0, 2, 4, 6]);
    ///
    /// // A wait that runs out loses nothing: the tasks go on, and one can wait again.
    /// let (tx, rx) = mp::pipe_simplex::<u32>()?;
    /// let mut pending = pool.map_async(wait_for, vec![rx])?;
    /// let error = pending.get_timeout(Duration::from_millis(10)).unwrap_err();
    /// assert!(matches!(error, mp::Error::Timeout { .. }));
    /// tx.send(&7)?;
    /// assert_eq!(pending.get_timeout(Duration::from_secs(30))?, [7]);
    /// # Ok(()) }
    /// ```
    pub fn map_async<A, R, F>(
        &self,
        f: F,
        items: impl IntoIterator<Item = A>,
    ) -> Result<MapResult<'_, R>>
    where
        F: Fn(A) -> R + Copy + 'static,
        A: Message,
        R: Message,
    {
        let _ = f;
        let () = worker::PlainFn::<F>::CHECK; // so that a build error names the caller's line
        let items: Vec<A> = items.into_iter().collect();
        let n_items = items.len();
        let chunksize = split::default_chunksize(n_items, self.n_workers)?;
        let stream =
            Stream::<A, R, _>::start::<F>(self, items.into_iter(), chunksize, StreamConfig::map())?;
        Ok(MapResult { stream: Box::new(stream), n_items, results: Vec::new(), done: false })
    }

    /// [`Pool::starmap`] started as [`Pool::map_async`] is (Python's `pool.starmap_async`).
    ///
    /// ```
    /// # fn main() -> mp::Result<()> {
    /// # mp::init();
    /// fn power(base: u64, exponent: u32) -> u64 { base.pow(exponent) }
    ///
    /// let pool = mp::Pool::new(2)?;
    /// let mut pending = pool.starmap_async(power, vec![(2, 10), (3, 3)])?;
    /// assert_eq!(pending.get_timeout(std::time::Duration::from_secs(30))?, [1024, 27]);
    /// # Ok(()) }
    /// ```
    pub fn starmap_async<Args, R, F>(
        &self,
        f: F,
        items: impl IntoIterator<Item = Args>,
    ) -> Result<MapResult<'_, R>>
    where
        F: StarFn<Args, Output = R>,
        Args: Message,
        R: Message,
    {
        let _ = f;
        let () = worker::PlainFn::<F>::CHECK; // so that a build error names the caller's line
        self.map_async(unpack::<F, Args>, items)
    }

    /// As [`Pool::map`], and records which worker ran each item, and when.
    ///
    /// `chunksize` None uses Python's default.
    ///
    /// ```
    /// # fn main() -> mp::Result<()> {
    /// # mp::init();
    /// let pool = mp::Pool::new(2)?;
    /// let traced = pool.map_traced(|x: u32| x + 1, 0..6u32, Some(1))?;
    /// assert_eq!(traced.results, [1, 2, 3, 4, 5, 6]);
    /// assert!(traced.tasks.iter().all(|task| task.start <= task.end && task.worker < 2));
    /// # Ok(()) }
    /// ```
    pub fn map_traced<A, R, F>(
        &self,
        f: F,
        items: impl IntoIterator<Item = A>,
        chunksize: Option<usize>,
    ) -> Result<Traced<R>>
    where
        F: Fn(A) -> R + Copy + 'static,
        A: Message,
        R: Message,
    {
        let _ = f;
        let () = worker::PlainFn::<F>::CHECK; // so that a build error names the caller's line
        let items: Vec<A> = items.into_iter().collect();
        let chunksize = match chunksize {
            Some(chunksize) => chunksize,
            None => split::default_chunksize(items.len(), self.n_workers)?,
        };
        let config = StreamConfig { trace: true, ..StreamConfig::map() };
        let mut stream = Stream::<A, R, _>::start::<F>(self, items.into_iter(), chunksize, config)?;
        let mut results = Vec::new();
        while let Some(result) = stream.next() {
            results.push(result?);
        }
        let mut tasks = std::mem::take(&mut stream.records);
        tasks.sort_by_key(|task| task.index);
        Ok(Traced { results, tasks })
    }

    /// `f(a, b)` for every pair (or triple, or quadruple) of arguments, in order: Python's
    /// `pool.starmap`.
    ///
    /// ```
    /// # fn main() -> mp::Result<()> {
    /// # mp::init();
    /// fn power(base: u64, exponent: u32) -> u64 { base.pow(exponent) }
    ///
    /// let pool = mp::Pool::new(2)?;
    /// assert_eq!(pool.starmap(power, vec![(2, 10), (3, 3)])?, [1024, 27]);
    /// # Ok(()) }
    /// ```
    pub fn starmap<Args, R, F>(&self, f: F, items: impl IntoIterator<Item = Args>) -> Result<Vec<R>>
    where
        F: StarFn<Args, Output = R>,
        Args: Message,
        R: Message,
    {
        let _ = f;
        let () = worker::PlainFn::<F>::CHECK; // so that a build error names the caller's line
        self.map(unpack::<F, Args>, items)
    }

    /// Results in input order as they become ready, without holding them all: Python's
    /// `pool.imap`. Items are taken from `items` only as results are consumed.
    ///
    /// ```
    /// # fn main() -> mp::Result<()> {
    /// # mp::init();
    /// let pool = mp::Pool::new(2)?;
    /// let mut total = 0;
    /// for result in pool.imap(|x: u64| x * 2, 0..1000u64, 10)? {
    ///     total += result?;
    /// }
    /// assert_eq!(total, 999_000);
    /// # Ok(()) }
    /// ```
    pub fn imap<A, R, F, I>(
        &self,
        f: F,
        items: I,
        chunksize: usize,
    ) -> Result<Imap<'_, A, R, I::IntoIter>>
    where
        F: Fn(A) -> R + Copy + 'static,
        I: IntoIterator<Item = A>,
        A: Message,
        R: Message,
    {
        let _ = f;
        let () = worker::PlainFn::<F>::CHECK; // so that a build error names the caller's line
        self.stream::<A, R, F, I>(
            items,
            chunksize,
            StreamConfig { ordered: true, trace: false, window: self.streaming_window() },
        )
    }

    /// As [`Pool::imap`], but results come in the order they finish (Python's
    /// `imap_unordered`), which differs from run to run.
    ///
    /// ```
    /// # fn main() -> mp::Result<()> {
    /// # mp::init();
    /// let pool = mp::Pool::new(2)?;
    /// let mut results: Vec<u64> = pool.imap_unordered(|x: u64| x * x, 0..10u64, 1)?.collect::<mp::Result<_>>()?;
    /// results.sort();
    /// assert_eq!(results, [0, 1, 4, 9, 16, 25, 36, 49, 64, 81]);
    /// # Ok(()) }
    /// ```
    pub fn imap_unordered<A, R, F, I>(
        &self,
        f: F,
        items: I,
        chunksize: usize,
    ) -> Result<Imap<'_, A, R, I::IntoIter>>
    where
        F: Fn(A) -> R + Copy + 'static,
        I: IntoIterator<Item = A>,
        A: Message,
        R: Message,
    {
        let _ = f;
        let () = worker::PlainFn::<F>::CHECK; // so that a build error names the caller's line
        self.stream::<A, R, F, I>(
            items,
            chunksize,
            StreamConfig { ordered: false, trace: false, window: self.streaming_window() },
        )
    }

    /// Starts `f(arg)` on a worker and returns at once (Python's `pool.apply_async`).
    ///
    /// ```
    /// # fn main() -> mp::Result<()> {
    /// # mp::init();
    /// fn add_one(x: i64) -> i64 { x + 1 }
    ///
    /// let pool = mp::Pool::new(2)?;
    /// let pending = pool.apply_async(add_one, 41)?;
    /// assert_eq!(pending.get()?, 42);
    /// # Ok(()) }
    /// ```
    pub fn apply_async<A, R, F>(&self, f: F, arg: A) -> Result<AsyncResult<'_, R>>
    where
        F: Fn(A) -> R + Copy + 'static,
        A: Message,
        R: Message,
    {
        let _ = f;
        let () = worker::PlainFn::<F>::CHECK; // so that a build error names the caller's line
        let job = self.open_job::<F, A, R>(false)?;
        job.submit(vec![encode_chunk(0, std::slice::from_ref(&arg))?])?;
        Ok(AsyncResult { job, outcome: None, _result: PhantomData })
    }

    /// `f(arg)` on a worker, waiting for the result (Python's `pool.apply`).
    ///
    /// ```
    /// # fn main() -> mp::Result<()> {
    /// # mp::init();
    /// fn shout(text: String) -> String { text.to_uppercase() }
    ///
    /// let pool = mp::Pool::new(1)?;
    /// assert_eq!(pool.apply(shout, "hi".to_string())?, "HI");
    /// # Ok(()) }
    /// ```
    pub fn apply<A, R, F>(&self, f: F, arg: A) -> Result<R>
    where
        F: Fn(A) -> R + Copy + 'static,
        A: Message,
        R: Message,
    {
        let () = worker::PlainFn::<F>::CHECK; // so that a build error names the caller's line
        self.apply_async(f, arg)?.get()
    }

    fn stream<A, R, F, I>(
        &self,
        items: I,
        chunksize: usize,
        config: StreamConfig,
    ) -> Result<Imap<'_, A, R, I::IntoIter>>
    where
        F: Fn(A) -> R + Copy + 'static,
        I: IntoIterator<Item = A>,
        A: Message,
        R: Message,
    {
        Ok(Imap {
            stream: Stream::<A, R, _>::start::<F>(self, items.into_iter(), chunksize, config)?,
        })
    }

    fn streaming_window(&self) -> usize {
        self.n_workers * CHUNKS_IN_FLIGHT * 2
    }

    fn open_job<F, A, R>(&self, trace: bool) -> Result<JobHandle<'_>>
    where
        F: Fn(A) -> R + Copy + 'static,
        A: DeserializeOwned + 'static,
        R: Serialize + 'static,
    {
        let trampoline = worker::trampoline_offset::<F, A, R>();
        let id = self.next_job.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        let (events, receiver) = mpsc::channel();
        self.command(Command::Open { job: id, trampoline, trace, events })?;
        Ok(JobHandle { pool: self, id, events: receiver, timed_out: None })
    }

    fn command(&self, command: Command) -> Result<()> {
        if self.broken.lock().unwrap_or_else(|poison| poison.into_inner()).is_some() {
            return Err(self.broken_error());
        }
        if self.commands.send(command).is_err() {
            return Err(self.broken_error());
        }
        self.doorbell.ring();
        Ok(())
    }

    fn broken_error(&self) -> Error {
        let cause = self.broken.lock().unwrap_or_else(|poison| poison.into_inner()).clone();
        Error::PoolBroken { cause: cause.unwrap_or_else(|| "its dispatcher thread stopped".into()) }
    }
}

impl Drop for Pool {
    /// Stops the workers (waiting up to two seconds for running tasks, then killing) and reaps
    /// them: no process outlives its pool.
    fn drop(&mut self) {
        self.closing.store(true, std::sync::atomic::Ordering::Relaxed);
        let (closed, _) = mpsc::channel();
        drop(std::mem::replace(&mut self.commands, closed));
        self.doorbell.ring();
        if let Some(dispatcher) = self.dispatcher.take() {
            let _ = dispatcher.join();
        }
    }
}

/// Functions of several arguments that [`Pool::starmap`] can call with a tuple.
///
/// Every `fn` item or capture-free closure of 2, 3 or 4 arguments implements it.
///
/// ```
/// # fn main() -> mp::Result<()> {
/// # mp::init();
/// fn volume(x: u32, y: u32, z: u32) -> u32 { x * y * z }
///
/// let pool = mp::Pool::new(2)?;
/// assert_eq!(pool.starmap(volume, vec![(1, 2, 3), (2, 2, 2)])?, [6, 8]);
/// # Ok(()) }
/// ```
pub trait StarFn<Args>: Copy + 'static {
    /// What the function returns.
    type Output;
    /// Calls the function with the tuple's fields as arguments.
    ///
    /// ```
    /// use mp::StarFn;
    /// fn add(a: i32, b: i32) -> i32 { a + b }
    /// assert_eq!(add.call_with((2, 3)), 5);
    /// ```
    fn call_with(self, args: Args) -> Self::Output;
}

macro_rules! star_fn {
    ($($arg:ident),+) => {
        impl<Func, $($arg,)+ Out> StarFn<($($arg,)+)> for Func
        where
            Func: Fn($($arg),+) -> Out + Copy + 'static,
        {
            type Output = Out;
            #[allow(non_snake_case)]
            fn call_with(self, ($($arg,)+): ($($arg,)+)) -> Out {
                self($($arg),+)
            }
        }
    };
}

star_fn!(A, B);
star_fn!(A, B, C);
star_fn!(A, B, C, D);

pub(crate) fn unpack<F: StarFn<Args>, Args>(args: Args) -> F::Output {
    sys::conjure_zero_sized::<F>().call_with(args)
}

/// A task started with [`Pool::apply_async`] (Python's `AsyncResult`).
///
/// Several can be pending at once; each is collected with [`AsyncResult::get`].
///
/// ```
/// # fn main() -> mp::Result<()> {
/// # mp::init();
/// fn square(x: u64) -> u64 { x * x }
///
/// let pool = mp::Pool::new(2)?;
/// let first = pool.apply_async(square, 3)?;
/// let second = pool.apply_async(square, 4)?;
/// assert_eq!(first.get()? + second.get()?, 25);
/// # Ok(()) }
/// ```
pub struct AsyncResult<'pool, R> {
    job: JobHandle<'pool>,
    outcome: Option<Event>,
    _result: PhantomData<fn() -> R>,
}

impl<R> fmt::Debug for AsyncResult<'_, R> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("AsyncResult")
            .field("job", &self.job.id)
            .field("ready", &self.outcome.is_some())
            .finish()
    }
}

impl<R: DeserializeOwned + 'static> AsyncResult<'_, R> {
    /// Waits for the result (Python's `get()`); a panic in the task comes back as
    /// [`Error::TaskPanicked`].
    ///
    /// ```
    /// # fn main() -> mp::Result<()> {
    /// # mp::init();
    /// fn invert(x: i32) -> i32 { 100 / x }
    ///
    /// let pool = mp::Pool::new(1)?;
    /// assert_eq!(pool.apply_async(invert, 4)?.get()?, 25);
    /// let error = pool.apply_async(invert, 0)?.get().unwrap_err();
    /// assert!(matches!(error, mp::Error::TaskPanicked { .. }));
    /// # Ok(()) }
    /// ```
    pub fn get(mut self) -> Result<R> {
        let event = match self.outcome.take() {
            Some(event) => event,
            None => self.job.next_event(None)?,
        };
        self.job.finished();
        single_result(event)
    }

    /// Waits at most `timeout` for the result; on `Error::Timeout` the task goes on and
    /// `get_timeout` can be called again (Python's `get(timeout)`).
    ///
    /// Dropping the `AsyncResult` after a time-out, without its result, gives the task up: if
    /// a worker still runs it (or holds it without starting it, as a stopped process does),
    /// that worker is killed and the pool is broken, so later calls fail at once with
    /// [`Error::PoolBroken`] instead of waiting for a worker that may never be free again.
    ///
    /// ```
    /// # fn main() -> mp::Result<()> {
    /// # mp::init();
    /// use std::time::Duration;
    /// fn wait_for(rx: mp::Receiver<u8>) -> u8 { rx.recv().unwrap() }
    ///
    /// let pool = mp::Pool::new(1)?;
    /// let (tx, rx) = mp::pipe_simplex::<u8>()?;
    /// let mut pending = pool.apply_async(wait_for, rx)?;
    /// assert!(pending.get_timeout(Duration::from_millis(10)).unwrap_err().is_timeout());
    /// tx.send(&7)?; // now the task can finish
    /// assert_eq!(pending.get_timeout(Duration::from_secs(30))?, 7);
    /// # Ok(()) }
    /// ```
    pub fn get_timeout(&mut self, timeout: Duration) -> Result<R> {
        let event = match self.outcome.take() {
            Some(event) => event,
            None => self.job.next_event(Some(timeout))?,
        };
        self.job.finished();
        single_result(event)
    }

    /// True once the result is there (Python's `ready()`). Never waits.
    ///
    /// ```
    /// # fn main() -> mp::Result<()> {
    /// # mp::init();
    /// fn wait_for(rx: mp::Receiver<u8>) -> u8 { rx.recv().unwrap() }
    ///
    /// let pool = mp::Pool::new(1)?;
    /// let (tx, rx) = mp::pipe_simplex::<u8>()?;
    /// let mut pending = pool.apply_async(wait_for, rx)?;
    /// assert!(!pending.ready());
    /// tx.send(&5)?;
    /// while !pending.ready() {
    ///     std::thread::sleep(std::time::Duration::from_millis(1));
    /// }
    /// assert_eq!(pending.get()?, 5);
    /// # Ok(()) }
    /// ```
    pub fn ready(&mut self) -> bool {
        if self.outcome.is_none() {
            // A look, not a wait that ran out: it gives nothing up.
            let timed_out = self.job.timed_out;
            self.outcome = self.job.next_event(Some(Duration::ZERO)).ok();
            self.job.timed_out = timed_out;
        }
        self.outcome.is_some()
    }
}

/// The pending results of [`Pool::map_async`] or [`Pool::starmap_async`] (Python's
/// `MapResult`).
///
/// Its outcome is given once: all the results in input order, or the first error. Dropped
/// without waiting, it lets the tasks run to their end and discards their results (but see
/// [`MapResult::get_timeout`] for a call dropped after a time-out).
///
/// ```
/// # fn main() -> mp::Result<()> {
/// # mp::init();
/// fn square(x: u64) -> u64 { x * x }
///
/// let pool = mp::Pool::new(2)?;
/// let squares = pool.map_async(square, 0..4)?;
/// let cubes = pool.map_async(|x: u64| x * x * x, 0..4)?; // both calls run at once
/// assert_eq!(squares.get()?, [0, 1, 4, 9]);
/// assert_eq!(cubes.get()?, [0, 1, 8, 27]);
/// # Ok(()) }
/// ```
pub struct MapResult<'pool, R> {
    stream: Box<dyn PendingResults<R> + 'pool>,
    n_items: usize,
    /// The results so far, in input order.
    results: Vec<R>,
    /// The outcome was given out.
    done: bool,
}

impl<R> fmt::Debug for MapResult<'_, R> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("MapResult")
            .field("n_items", &self.n_items)
            .field("results_in", &self.results.len())
            .field("done", &self.done)
            .finish()
    }
}

impl<R: DeserializeOwned + 'static> MapResult<'_, R> {
    /// Waits for all the results (Python's `get()`); the first task that fails makes it fail.
    ///
    /// ```
    /// # fn main() -> mp::Result<()> {
    /// # mp::init();
    /// fn checked_half(x: u32) -> u32 { assert!(x % 2 == 0, "odd input"); x / 2 }
    ///
    /// let pool = mp::Pool::new(2)?;
    /// assert_eq!(pool.map_async(checked_half, [2, 4])?.get()?, [1, 2]);
    /// let error = pool.map_async(checked_half, [2, 3])?.get().unwrap_err();
    /// assert!(matches!(error, mp::Error::TaskPanicked { task_index: Some(1), .. }));
    /// # Ok(()) }
    /// ```
    pub fn get(mut self) -> Result<Vec<R>> {
        self.wait(None, Duration::ZERO)
    }

    /// Waits at most `timeout` for all the results (Python's `get(timeout)`).
    ///
    /// A wait that runs out is [`Error::Timeout`] and loses nothing: the tasks go on and
    /// `get_timeout` (or [`MapResult::get`]) can be called again. Dropping the `MapResult`
    /// after a time-out without its outcome gives the call up: if a worker still runs one of
    /// its tasks (or holds one without starting it, as a stopped process does), that worker is
    /// killed and the pool is broken, so later calls fail at once with [`Error::PoolBroken`]
    /// instead of waiting for a worker that may never be free again. Once the outcome is given,
    /// a further call is an [`Error::InvalidArgument`].
    ///
    /// ```
    /// # fn main() -> mp::Result<()> {
    /// # mp::init();
    /// use std::time::Duration;
    /// fn wait_for(rx: mp::Receiver<u32>) -> u32 { rx.recv().unwrap() }
    ///
    /// let pool = mp::Pool::new(1)?;
    /// let (_tx, rx) = mp::pipe_simplex::<u32>()?;
    /// let mut stuck = pool.map_async(wait_for, vec![rx])?;
    /// assert!(stuck.get_timeout(Duration::from_millis(10)).unwrap_err().is_timeout());
    /// drop(stuck); // given up while its task runs: the worker is killed
    /// let error = pool.apply(|x: u32| x + 1, 1).unwrap_err();
    /// assert!(matches!(error, mp::Error::PoolBroken { .. }));
    /// # Ok(()) }
    /// ```
    pub fn get_timeout(&mut self, timeout: Duration) -> Result<Vec<R>> {
        self.wait(Instant::now().checked_add(timeout), timeout)
    }

    fn wait(&mut self, deadline: Option<Instant>, timeout: Duration) -> Result<Vec<R>> {
        if self.done {
            return Err(Error::invalid("this MapResult has already given its outcome"));
        }
        loop {
            match self.stream.next_until(deadline) {
                None => {
                    self.done = true;
                    return Ok(std::mem::take(&mut self.results));
                }
                Some(Ok(result)) => self.results.push(result),
                Some(Err(error)) if error.is_timeout() => {
                    return Err(Error::Timeout {
                        what: format!(
                            "the results of a map ({} of {} in so far)",
                            self.results.len(),
                            self.n_items
                        ),
                        waited: timeout,
                    });
                }
                Some(Err(error)) => {
                    self.done = true;
                    self.results.clear();
                    return Err(error);
                }
            }
        }
    }
}

/// A stream of results with its item type hidden, for [`MapResult`].
trait PendingResults<R> {
    fn next_until(&mut self, deadline: Option<Instant>) -> Option<Result<R>>;
}

impl<A, R, I> PendingResults<R> for Stream<'_, A, R, I>
where
    A: Serialize + 'static,
    R: DeserializeOwned + 'static,
    I: Iterator<Item = A>,
{
    fn next_until(&mut self, deadline: Option<Instant>) -> Option<Result<R>> {
        Stream::next_until(self, deadline)
    }
}

fn single_result<R: DeserializeOwned + 'static>(event: Event) -> Result<R> {
    match event {
        Event::Done { body, fds, .. } => wire::decode::<Vec<R>>(&body, fds)?
            .into_iter()
            .next()
            .ok_or_else(|| Error::serialization("a worker sent no result")),
        Event::Failed(error) => Err(error),
    }
}

/// The iterator of [`Pool::imap`] and [`Pool::imap_unordered`]: yields `Result<R>` per item.
/// After an error it ends.
///
/// ```
/// # fn main() -> mp::Result<()> {
/// # mp::init();
/// fn not_two(x: u32) -> u32 { assert_ne!(x, 2); x }
///
/// let pool = mp::Pool::new(2)?;
/// let results: Vec<mp::Result<u32>> = pool.imap(not_two, 0..5u32, 1)?.collect();
/// let last = results.last().unwrap();
/// assert!(matches!(last, Err(mp::Error::TaskPanicked { task_index: Some(2), .. })));
/// # Ok(()) }
/// ```
pub struct Imap<'pool, A, R, I> {
    stream: Stream<'pool, A, R, I>,
}

impl<A, R, I> fmt::Debug for Imap<'_, A, R, I> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Imap").field("job", &self.stream.job.id).finish()
    }
}

impl<A, R, I> Imap<'_, A, R, I>
where
    A: Serialize + 'static,
    R: DeserializeOwned + 'static,
    I: Iterator<Item = A>,
{
    /// As `next()`, waiting at most `timeout` (Python's `next(timeout)` on `imap`'s iterator):
    /// `Some(Err(Error::Timeout))` when the wait runs out, which loses nothing (the iterator
    /// goes on). As for [`MapResult::get_timeout`], dropping the iterator after a time-out,
    /// before its end, while a worker still holds one of its tasks breaks the pool.
    ///
    /// ```
    /// # fn main() -> mp::Result<()> {
    /// # mp::init();
    /// use std::time::Duration;
    /// fn wait_for(rx: mp::Receiver<u32>) -> u32 { rx.recv().unwrap() }
    ///
    /// let pool = mp::Pool::new(1)?;
    /// let (tx, rx) = mp::pipe_simplex::<u32>()?;
    /// let mut results = pool.imap(wait_for, vec![rx], 1)?;
    /// assert!(results.next_timeout(Duration::from_millis(10)).unwrap().unwrap_err().is_timeout());
    /// tx.send(&3)?;
    /// assert_eq!(results.next_timeout(Duration::from_secs(30)).unwrap()?, 3);
    /// assert!(results.next_timeout(Duration::from_secs(30)).is_none());
    /// # Ok(()) }
    /// ```
    pub fn next_timeout(&mut self, timeout: Duration) -> Option<Result<R>> {
        self.stream.next_until(Instant::now().checked_add(timeout))
    }
}

impl<A, R, I> Iterator for Imap<'_, A, R, I>
where
    A: Serialize + 'static,
    R: DeserializeOwned + 'static,
    I: Iterator<Item = A>,
{
    type Item = Result<R>;

    fn next(&mut self) -> Option<Result<R>> {
        self.stream.next()
    }
}

/// Starts a pool's workers after the first, in order, and hands each to the dispatcher.
struct Launcher {
    n_workers: usize,
    pids: Arc<OnceLock<Vec<u32>>>,
    closing: Arc<AtomicBool>,
    commands: mpsc::Sender<Command>,
    doorbell: Arc<Doorbell>,
}

impl Launcher {
    fn run(self, first_pid: u32) {
        let mut pids = vec![first_pid];
        for _ in 1..self.n_workers {
            if self.closing.load(std::sync::atomic::Ordering::Relaxed) {
                break;
            }
            let command = match WorkerProcess::launch() {
                Ok(worker) => {
                    pids.push(worker.pid());
                    Command::Joined(worker)
                }
                Err(error) => Command::LaunchFailed(error),
            };
            let failed = matches!(command, Command::LaunchFailed(_));
            // A dispatcher that is gone drops the worker in the message: it is killed.
            let delivered = self.commands.send(command).is_ok();
            self.doorbell.ring();
            if failed || !delivered {
                break;
            }
        }
        let _ = self.pids.set(pids);
        // Dropping our sender lets the dispatcher see that the pool is closed once the
        // caller's is gone too (it never stops while a worker may still be on its way); it
        // must be woken to see it, as for any command.
        let Launcher { commands, doorbell, .. } = self;
        drop(commands);
        doorbell.ring();
    }
}

// ---------------------------------------------------------------------------------------------
// The caller's side of a job: feeding chunks and reassembling results.

#[derive(Clone, Copy)]
struct StreamConfig {
    ordered: bool,
    trace: bool,
    /// Most chunks submitted and not yet consumed.
    window: usize,
}

impl StreamConfig {
    fn map() -> StreamConfig {
        StreamConfig { ordered: true, trace: false, window: usize::MAX }
    }
}

struct Stream<'pool, A, R, I> {
    job: JobHandle<'pool>,
    /// Items read ahead of `input` (see `start`), sent first.
    head: std::vec::IntoIter<A>,
    input: I,
    chunksize: usize,
    config: StreamConfig,
    next_chunk: u64,
    next_index: usize,
    input_done: bool,
    in_flight: usize,
    /// Chunks that finished ahead of their turn (ordered streams only): chunk id to results.
    ready: BTreeMap<u64, VecDeque<R>>,
    next_expected: u64,
    current: VecDeque<R>,
    failed: bool,
    /// The machine's monotonic clock at the start, for trace records.
    started_ns: u64,
    records: Vec<TaskRecord>,
    /// First input index of each chunk in flight (for trace records).
    chunk_starts: HashMap<u64, usize>,
    _item: PhantomData<fn(A)>,
}

impl<'pool, A, R, I> Stream<'pool, A, R, I>
where
    A: Serialize + 'static,
    R: DeserializeOwned + 'static,
    I: Iterator<Item = A>,
{
    fn start<F>(
        pool: &'pool Pool,
        mut input: I,
        mut chunksize: usize,
        config: StreamConfig,
    ) -> Result<Self>
    where
        F: Fn(A) -> R + Copy + 'static,
        A: DeserializeOwned + 'static,
        R: Serialize + 'static,
    {
        if chunksize == 0 {
            return Err(Error::invalid(
                "chunksize must be at least 1 (1 sends every item on its own)",
            ));
        }
        // No more items than workers: each item is a chunk of its own, so each gets a worker
        // of its own and items that wait on each other all run at once.
        let mut head = Vec::new();
        if chunksize > 1 {
            head.extend(input.by_ref().take(pool.n_workers + 1));
            if head.len() <= pool.n_workers {
                chunksize = 1;
            }
        }
        let job = pool.open_job::<F, A, R>(config.trace)?;
        let mut stream = Stream {
            job,
            head: head.into_iter(),
            input,
            chunksize,
            config,
            next_chunk: 0,
            next_index: 0,
            input_done: false,
            in_flight: 0,
            ready: BTreeMap::new(),
            next_expected: 0,
            current: VecDeque::new(),
            failed: false,
            started_ns: sys::clock::monotonic_ns(),
            records: Vec::new(),
            chunk_starts: HashMap::new(),
            _item: PhantomData,
        };
        stream.top_up()?;
        Ok(stream)
    }

    /// Submits chunks until the window is full or the input runs out.
    fn top_up(&mut self) -> Result<()> {
        let mut batch = Vec::new();
        while !self.input_done && self.in_flight + batch.len() < self.config.window {
            let items: Vec<A> =
                self.head.by_ref().chain(self.input.by_ref()).take(self.chunksize).collect();
            if items.is_empty() {
                self.input_done = true;
                break;
            }
            let mut chunk = encode_chunk(self.next_chunk, &items)?;
            chunk.first_index = self.next_index;
            self.chunk_starts.insert(self.next_chunk, self.next_index);
            self.next_index += items.len();
            self.next_chunk += 1;
            batch.push(chunk);
        }
        self.in_flight += batch.len();
        if batch.is_empty() {
            return Ok(());
        }
        self.job.submit(batch)
    }

    fn next(&mut self) -> Option<Result<R>> {
        self.next_until(None)
    }

    /// The next result, waiting until `deadline` at most: a wait that runs out is an
    /// `Error::Timeout` that loses nothing (call again).
    fn next_until(&mut self, deadline: Option<Instant>) -> Option<Result<R>> {
        loop {
            if let Some(result) = self.current.pop_front() {
                return Some(Ok(result));
            }
            if self.failed {
                return None;
            }
            if let Some(results) = self.ready.remove(&self.next_expected) {
                self.next_expected += 1;
                self.current = results;
                continue;
            }
            if let Err(error) = self.top_up() {
                return Some(Err(self.fail(error)));
            }
            if self.in_flight == 0 {
                self.job.finished();
                return None;
            }
            let timeout =
                deadline.map(|deadline| deadline.saturating_duration_since(Instant::now()));
            let event = match self.job.next_event(timeout) {
                Ok(event) => event,
                Err(error) if error.is_timeout() => return Some(Err(error)),
                Err(error) => return Some(Err(self.fail(error))),
            };
            match self.accept(event) {
                Ok(()) => {}
                Err(error) => return Some(Err(self.fail(error))),
            }
        }
    }

    fn accept(&mut self, event: Event) -> Result<()> {
        let (chunk, body, fds, worker, pid, timings) = match event {
            Event::Done { chunk, body, fds, worker, pid, timings } => {
                (chunk, body, fds, worker, pid, timings)
            }
            Event::Failed(error) => return Err(error),
        };
        self.in_flight -= 1;
        let first_index = self.chunk_starts.remove(&chunk).unwrap_or(0);
        for (offset, (start, end)) in timings.into_iter().enumerate() {
            self.records.push(TaskRecord {
                index: first_index + offset,
                worker,
                pid,
                start: Duration::from_nanos(start.saturating_sub(self.started_ns)),
                end: Duration::from_nanos(end.saturating_sub(self.started_ns)),
            });
        }
        let results: VecDeque<R> = wire::decode::<Vec<R>>(&body, fds)?.into();
        if self.config.ordered {
            self.ready.insert(chunk, results);
        } else {
            self.current.extend(results);
        }
        Ok(())
    }

    fn fail(&mut self, error: Error) -> Error {
        self.failed = true;
        self.job.finished();
        self.current.clear();
        self.ready.clear();
        error
    }

    fn collect(mut self) -> Result<Vec<R>> {
        let mut results = Vec::with_capacity(self.next_index);
        while let Some(result) = self.next() {
            results.push(result?);
        }
        Ok(results)
    }
}

fn encode_chunk<A: Serialize + 'static>(id: u64, items: &[A]) -> Result<ChunkOut> {
    let (body, fds) = wire::encode(items)?;
    Ok(ChunkOut { id, first_index: 0, n_items: items.len(), body, fds })
}

/// An open job; closing it (drop) tells the dispatcher to forget it and skip its queued chunks.
struct JobHandle<'pool> {
    pool: &'pool Pool,
    id: u64,
    events: mpsc::Receiver<Event>,
    /// Set when a bounded wait for this job ran out, cleared once its outcome is known: a job
    /// dropped in between is given up (see [`Command::Close`]).
    timed_out: Option<Duration>,
}

impl JobHandle<'_> {
    fn submit(&self, chunks: Vec<ChunkOut>) -> Result<()> {
        self.pool.command(Command::Chunks { job: self.id, chunks })
    }

    fn next_event(&mut self, timeout: Option<Duration>) -> Result<Event> {
        let received = match timeout {
            None => self.events.recv().map_err(|_| mpsc::RecvTimeoutError::Disconnected),
            Some(timeout) => self.events.recv_timeout(timeout),
        };
        match received {
            Ok(event) => Ok(event),
            Err(mpsc::RecvTimeoutError::Timeout) => {
                let waited = timeout.unwrap_or_default();
                self.timed_out = Some(waited);
                Err(Error::Timeout { what: "a result from the pool".into(), waited })
            }
            Err(mpsc::RecvTimeoutError::Disconnected) => Err(self.pool.broken_error()),
        }
    }

    /// The job's outcome is known: dropping it now gives nothing up.
    fn finished(&mut self) {
        self.timed_out = None;
    }
}

impl Drop for JobHandle<'_> {
    fn drop(&mut self) {
        let _ = self.pool.command(Command::Close { job: self.id, given_up: self.timed_out });
    }
}

// ---------------------------------------------------------------------------------------------
// The dispatcher thread.

enum Command {
    /// A worker the launcher started (not yet ready).
    Joined(WorkerProcess),
    LaunchFailed(Error),
    Open {
        job: u64,
        trampoline: i64,
        trace: bool,
        events: mpsc::Sender<Event>,
    },
    Chunks {
        job: u64,
        chunks: Vec<ChunkOut>,
    },
    /// The caller dropped the job. `given_up` (how long its last wait was) when that wait
    /// timed out and the outcome was never taken: workers still holding its chunks are then
    /// killed, which breaks the pool (a stuck or stopped worker must not hold a pool forever).
    Close {
        job: u64,
        given_up: Option<Duration>,
    },
}

struct ChunkOut {
    id: u64,
    first_index: usize,
    n_items: usize,
    body: Vec<u8>,
    fds: Vec<OwnedFd>,
}

enum Event {
    Done {
        chunk: u64,
        body: Vec<u8>,
        fds: Vec<OwnedFd>,
        worker: usize,
        pid: u32,
        timings: Vec<(u64, u64)>,
    },
    Failed(Error),
}

struct Job {
    trampoline: i64,
    trace: bool,
    events: mpsc::Sender<Event>,
}

struct InFlight {
    job: u64,
    chunk: u64,
    first_index: usize,
    n_items: usize,
    /// Its number on the worker's connection (see `worker::claim`).
    seq: u64,
    /// The encoded chunk, if it was queued ahead on a busy worker (until its result comes):
    /// it may be taken back before the worker starts it, and sent again.
    kept: Option<Vec<u8>>,
}

struct Slot {
    process: WorkerProcess,
    in_flight: VecDeque<InFlight>,
    /// The worker has said hello: it gets work from now on.
    ready: bool,
    /// The number of the last chunk sent to it.
    last_seq: u64,
}

struct Dispatcher {
    n_workers: usize,
    slots: Vec<Slot>,
    /// One claim word per worker: the number of the last chunk it started or the dispatcher
    /// took back (see `worker::claim`).
    claims: SharedArray<u64>,
    commands: mpsc::Receiver<Command>,
    doorbell: Arc<Doorbell>,
    /// Chunks waiting for a worker, oldest first.
    queue: VecDeque<(u64, ChunkOut)>,
    jobs: HashMap<u64, Job>,
    broken: Arc<Mutex<Option<String>>>,
}

impl Dispatcher {
    fn run(mut self) {
        let mut last_hangup_check = Instant::now();
        loop {
            self.doorbell.answer();
            match self.take_commands() {
                Ok(true) => {}
                Ok(false) => break,
                Err(error) => {
                    self.break_pool(error);
                    return;
                }
            }
            if let Err(error) = self.assign() {
                self.break_pool(error);
                return;
            }
            let received = match self.receive() {
                Ok(received) => received,
                Err(error) => {
                    self.break_pool(error);
                    return;
                }
            };
            // While results keep coming the loop never sleeps in `poll`, which is where dead
            // workers show: look for them now and then.
            let now = Instant::now();
            let waited = if received {
                if now.duration_since(last_hangup_check) < HANGUP_CHECK_EVERY {
                    continue;
                }
                last_hangup_check = now;
                channel::check_hangups(&self.links())
            } else {
                last_hangup_check = now;
                let deadline = self.startup_deadline();
                channel::wait_for_any(&self.links(), Some(&self.doorbell), deadline)
            };
            if let Err(error) = waited.and_then(|()| self.check_startup_deadlines()) {
                self.break_pool(error);
                return;
            }
        }
        self.stop_all();
    }

    /// When the first worker still starting up runs out of time, if any is.
    fn startup_deadline(&self) -> Option<Instant> {
        let limit = process::startup_deadline();
        let starting = self.slots.iter().filter(|slot| !slot.ready);
        starting.map(|slot| slot.process.launched_at() + limit).min()
    }

    /// Kills a worker that has not reported for duty in time: a startup failure.
    fn check_startup_deadlines(&mut self) -> Result<()> {
        let limit = process::startup_deadline();
        let now = Instant::now();
        for slot in &mut self.slots {
            if !slot.ready && now >= slot.process.launched_at() + limit {
                return Err(slot.process.startup_timed_out(limit));
            }
        }
        Ok(())
    }

    fn links(&self) -> Vec<&Link> {
        self.slots.iter().map(|slot| &*slot.process.control).collect()
    }

    /// Asks every worker to stop, then reaps them all; a worker that does not stop within the
    /// grace period (a task still running) is killed.
    fn stop_all(&mut self) {
        let deadline = Instant::now() + process::STOP_GRACE;
        for slot in &mut self.slots {
            // A worker still starting up has no work: no need to wait for it.
            if !slot.ready {
                slot.process.kill_and_reap();
                continue;
            }
            // Queued behind any work still on its way, as every message on a link is.
            if slot.process.send_control(&ToWorker::Shutdown, Vec::new(), Vec::new()).is_err() {
                slot.process.kill_and_reap();
            }
        }
        for slot in &mut self.slots {
            let remaining = deadline.saturating_duration_since(Instant::now());
            slot.process.reap_within(remaining);
        }
    }

    /// Applies queued commands; false once the pool is dropped.
    fn take_commands(&mut self) -> Result<bool> {
        loop {
            match self.commands.try_recv() {
                Ok(Command::Joined(process)) => self.add_worker(process, false)?,
                Ok(Command::LaunchFailed(error)) => return Err(error),
                Ok(Command::Open { job, trampoline, trace, events }) => {
                    self.jobs.insert(job, Job { trampoline, trace, events });
                }
                Ok(Command::Chunks { job, chunks }) => {
                    self.queue.extend(chunks.into_iter().map(|chunk| (job, chunk)));
                }
                Ok(Command::Close { job, given_up }) => {
                    self.jobs.remove(&job);
                    self.queue.retain(|(queued_job, _)| *queued_job != job);
                    if let Some(waited) = given_up {
                        self.stop_given_up(job, waited)?;
                    }
                }
                Err(mpsc::TryRecvError::Empty) => return Ok(true),
                Err(mpsc::TryRecvError::Disconnected) => return Ok(false),
            }
        }
    }

    /// Adds a worker (the first one ready, the others as the launcher starts them) and sends
    /// it its claim word, ahead of any work.
    fn add_worker(&mut self, process: WorkerProcess, ready: bool) -> Result<()> {
        let index = self.slots.len();
        if index >= self.n_workers {
            return Err(Error::Corrupted {
                message: "a pool got more workers than it asked for".into(),
            });
        }
        let (body, fds) = wire::encode(&self.claims)?;
        match process.send_control(&ToWorker::Claims { slot: index as u32 }, body, fds) {
            // A worker that is already gone shows when its connection is read.
            Ok(()) | Err(Error::Disconnected { .. }) => {}
            Err(error) => return Err(error),
        }
        self.slots.push(Slot { process, in_flight: VecDeque::new(), ready, last_seq: 0 });
        Ok(())
    }

    /// Gives queued chunks to workers, so that a chunk never waits behind a running one while
    /// another worker is idle or still starting.
    ///
    /// Idle workers come first, one chunk each, oldest chunk first. A busy worker gets a second
    /// chunk (so that it finds its next chunk at once) only while every worker of the pool is
    /// up and busy, and only a chunk without descriptors, which can be taken back: when a
    /// worker falls idle while chunks wait behind others elsewhere, the ones not started yet
    /// are taken back and given out again.
    fn assign(&mut self) -> Result<()> {
        loop {
            for index in 0..self.slots.len() {
                // A loop: a chunk of a job closed meanwhile is dropped, not sent.
                while self.is_idle(index) {
                    let Some((job, chunk)) = self.queue.pop_front() else { break };
                    self.send_chunk(index, job, chunk, false)?;
                }
            }
            let idle = (0..self.slots.len()).filter(|&index| self.is_idle(index)).count();
            if self.queue.is_empty() {
                if idle > 0 && self.take_back(idle) {
                    continue;
                }
                return Ok(());
            }
            let all_up =
                self.slots.len() == self.n_workers && self.slots.iter().all(|slot| slot.ready);
            if idle > 0 || !all_up {
                // Chunks wait here for a worker that is starting or about to be free.
                return Ok(());
            }
            for index in 0..self.slots.len() {
                while self.slots[index].in_flight.len() < CHUNKS_IN_FLIGHT {
                    // A chunk with descriptors (pipes, queues, shared arrays) cannot be taken
                    // back; it waits for an idle worker, and later chunks wait behind it.
                    match self.queue.front() {
                        Some((_, chunk)) if chunk.fds.is_empty() => {}
                        _ => return Ok(()),
                    }
                    let Some((job, chunk)) = self.queue.pop_front() else { return Ok(()) };
                    self.send_chunk(index, job, chunk, true)?;
                }
            }
            return Ok(());
        }
    }

    fn is_idle(&self, index: usize) -> bool {
        let slot = &self.slots[index];
        slot.ready && slot.in_flight.is_empty()
    }

    /// Sends a chunk to worker `index`; one that may wait behind another (`behind`) is kept,
    /// to be taken back if another worker falls idle first.
    fn send_chunk(
        &mut self,
        index: usize,
        job_id: u64,
        chunk: ChunkOut,
        behind: bool,
    ) -> Result<()> {
        let Some(job) = self.jobs.get(&job_id) else { return Ok(()) };
        let slot = &mut self.slots[index];
        slot.last_seq += 1;
        let header = RunHeader {
            job: job_id,
            chunk: chunk.id,
            trampoline: job.trampoline,
            trace: job.trace,
            seq: slot.last_seq,
            revocable: behind,
        };
        let ChunkOut { id, first_index, n_items, body, fds } = chunk;
        let (sent, kept) = if behind {
            let meta = postcard::to_stdvec(&ToWorker::Run(header)).map_err(Error::serialization)?;
            let frame =
                wire::OutFrame::new(wire::BodyKind::Value, meta, body.as_slice().into(), fds)?;
            (slot.process.control.send_frame(frame), Some(body))
        } else {
            (slot.process.send_control(&ToWorker::Run(header), body, fds), None)
        };
        slot.in_flight.push_back(InFlight {
            job: job_id,
            chunk: id,
            first_index,
            n_items,
            seq: header.seq,
            kept,
        });
        match sent {
            Ok(()) => Ok(()),
            Err(Error::Disconnected { .. }) => Err(self.worker_died(index)),
            Err(error) => Err(error),
        }
    }

    /// Takes back chunks waiting behind running ones, for `wanted` idle workers: they go back to
    /// the front of the queue. True if any did.
    fn take_back(&mut self, wanted: usize) -> bool {
        let mut taken = Vec::new();
        for index in 0..self.slots.len() {
            if taken.len() >= wanted {
                break;
            }
            taken.extend(self.take_back_from(index));
        }
        let any = !taken.is_empty();
        self.requeue(taken);
        any
    }

    /// Takes back the chunks worker `index` holds queued one behind the other and has not
    /// started (the first too, if it was queued ahead and the worker has not reached it).
    fn take_back_from(&mut self, index: usize) -> Vec<InFlight> {
        let slot = &mut self.slots[index];
        if slot.in_flight.len() < 2 {
            return Vec::new();
        }
        let Some(last) = slot.in_flight.back() else { return Vec::new() };
        // From here on the worker skips every chunk up to `last` that it has not started and
        // that was queued ahead (`kept`); it runs the others, the first of which may be one.
        let started =
            self.claims.word(index).fetch_max(last.seq, std::sync::atomic::Ordering::AcqRel);
        let mut taken = Vec::new();
        while slot.in_flight.back().is_some_and(|last| last.seq > started && last.kept.is_some()) {
            taken.extend(slot.in_flight.pop_back());
        }
        taken.reverse();
        taken
    }

    /// Puts taken-back chunks of open jobs back at the front of the queue, oldest first.
    fn requeue(&mut self, mut taken: Vec<InFlight>) {
        taken.sort_by_key(|in_flight| (in_flight.job, in_flight.chunk));
        for in_flight in taken.into_iter().rev() {
            let (Some(body), true) = (in_flight.kept, self.jobs.contains_key(&in_flight.job))
            else {
                continue;
            };
            let chunk = ChunkOut {
                id: in_flight.chunk,
                first_index: in_flight.first_index,
                n_items: in_flight.n_items,
                body,
                fds: Vec::new(),
            };
            self.queue.push_front((in_flight.job, chunk));
        }
    }

    /// A caller gave up on job `job` after waiting `waited` in vain: its chunks that wait behind
    /// others are taken back; if a worker still runs one (or holds one it does not start: a
    /// stopped process), the pool is broken, which kills its workers.
    fn stop_given_up(&mut self, job: u64, waited: Duration) -> Result<()> {
        let mut holders = Vec::new();
        for index in 0..self.slots.len() {
            if !self.slots[index].in_flight.iter().any(|in_flight| in_flight.job == job) {
                continue;
            }
            let taken = self.take_back_from(index);
            self.requeue(taken);
            let slot = &self.slots[index];
            if slot.in_flight.iter().any(|in_flight| in_flight.job == job) {
                holders.push(format!("worker {index} (pid {})", slot.process.pid()));
            }
        }
        if holders.is_empty() {
            return Ok(());
        }
        Err(Error::Timeout {
            what: format!(
                "the results of a pool call, which was then given up while {} still held its \
                 tasks, so the workers were killed",
                holders.join(" and ")
            ),
            waited,
        })
    }

    /// Takes every result that has arrived; true if there was any.
    fn receive(&mut self) -> Result<bool> {
        let mut received = false;
        for index in 0..self.slots.len() {
            received |= self.read_worker(index)?;
        }
        Ok(received)
    }

    /// Takes the results worker `index` has sent; true if there was any.
    fn read_worker(&mut self, index: usize) -> Result<bool> {
        let mut received = false;
        loop {
            let slot = &mut self.slots[index];
            let frame = match slot.process.control.try_recv_frame() {
                Ok(Some(frame)) => frame,
                Ok(None) => return Ok(received),
                Err(Error::Disconnected { .. } | Error::Corrupted { .. }) if !slot.ready => {
                    return Err(slot.process.died_before_ready());
                }
                Err(Error::Disconnected { .. } | Error::Corrupted { .. }) => {
                    return Err(self.worker_died(index));
                }
                Err(error) => return Err(error),
            };
            received = true;
            if !slot.ready {
                slot.process.check_hello(&frame)?;
                slot.ready = true;
                continue;
            }
            let done = process::parse_done(&frame)?;
            let Some(in_flight) = slot.in_flight.pop_front() else {
                return Err(Error::Corrupted {
                    message: "a worker reported a task it was never given".into(),
                });
            };
            let pid = slot.process.pid();
            let Some(job) = self.jobs.get(&in_flight.job) else { continue };
            let event = match done.failure {
                Some(failure) => {
                    Event::Failed(process::failure_error(failure, Some(in_flight.first_index), pid))
                }
                None => Event::Done {
                    chunk: in_flight.chunk,
                    body: frame.body,
                    fds: frame.fds,
                    worker: index,
                    pid,
                    timings: done.timings,
                },
            };
            let failed = matches!(event, Event::Failed(_));
            if job.events.send(event).is_err() || failed {
                // The caller is gone, or the job failed: its remaining chunks are not wanted.
                self.jobs.remove(&in_flight.job);
                self.queue.retain(|(queued_job, _)| *queued_job != in_flight.job);
            }
        }
    }

    /// Reaps a worker whose connection closed and describes its death.
    fn worker_died(&mut self, index: usize) -> Error {
        let slot = &mut self.slots[index];
        let reason = slot.process.reap_within(Duration::from_secs(1));
        let lost_tasks: Vec<usize> = slot
            .in_flight
            .iter()
            .flat_map(|in_flight| in_flight.first_index..in_flight.first_index + in_flight.n_items)
            .collect();
        Error::WorkerDied { worker: Some(index), pid: slot.process.pid(), reason, lost_tasks }
    }

    /// Fails every open job, stops the remaining workers, and marks the pool broken.
    fn break_pool(mut self, error: Error) {
        let cause = error.to_string();
        *self.broken.lock().unwrap_or_else(|poison| poison.into_inner()) = Some(cause.clone());
        // The jobs that lost tasks on the dead worker get its error; the others a broken pool.
        let losing_jobs: Vec<u64> = match &error {
            Error::WorkerDied { worker: Some(index), .. } => {
                self.slots[*index].in_flight.iter().map(|in_flight| in_flight.job).collect()
            }
            _ => Vec::new(),
        };
        let mut error = Some(error);
        for (job_id, job) in self.jobs.drain() {
            let event = if losing_jobs.contains(&job_id)
                && let Some(error) = error.take()
            {
                Event::Failed(error)
            } else {
                Event::Failed(Error::PoolBroken { cause: cause.clone() })
            };
            let _ = job.events.send(event);
        }
        // Whatever the other workers run belongs to failed jobs: stop them now.
        for slot in &mut self.slots {
            slot.process.kill_and_reap();
        }
    }
}
