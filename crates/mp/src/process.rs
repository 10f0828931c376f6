//! One process launched by hand: Python's `multiprocessing.Process`, with a return value.
//!
//! [`Process::spawn`] starts a real OS process running `f(arg)`; [`Process::join`] waits for it
//! and returns what `f` returned (Python needs a Queue for that). The same machinery starts
//! the workers of a [`Pool`](crate::Pool).

use std::{
    fmt,
    marker::PhantomData,
    os::{
        fd::{AsFd, AsRawFd},
        unix::process::ExitStatusExt,
    },
    sync::Arc,
    time::{Duration, Instant},
};

use serde::de::DeserializeOwned;

use crate::{
    Error, ExitReason, Message, Result,
    channel::{Link, Waiting},
    ring::RingFile,
    sys,
    wire::{self, BodyKind, Frame, OutFrame},
    worker::{self, DoneHeader, Failure, FromWorker, RunHeader, ToWorker},
};

/// How long a new worker may take to report for duty before it counts as failed, unless the
/// environment variable `MP_STARTUP_TIMEOUT_MS` says otherwise.
const STARTUP_DEADLINE: Duration = Duration::from_secs(30);
/// The variable that overrides [`STARTUP_DEADLINE`], in milliseconds.
pub(crate) const STARTUP_TIMEOUT_VAR: &str = "MP_STARTUP_TIMEOUT_MS";
/// The values it may have: from a millisecond (tests) to an hour (anything longer is a typo).
const STARTUP_TIMEOUT_MILLIS: std::ops::RangeInclusive<u64> = 1..=3_600_000;

/// The start-up deadline: `MP_STARTUP_TIMEOUT_MS` (1 ms to 1 hour) or 30 s when it is unset.
/// A value that is not a whole number in that range is an `Error::InvalidArgument` naming the
/// variable: ignoring it would silently run with a deadline the user did not ask for.
pub(crate) fn checked_startup_deadline() -> Result<Duration> {
    let Some(value) = std::env::var_os(STARTUP_TIMEOUT_VAR) else {
        return Ok(STARTUP_DEADLINE);
    };
    value
        .to_str()
        .and_then(|text| text.parse::<u64>().ok())
        .filter(|millis| STARTUP_TIMEOUT_MILLIS.contains(millis))
        .map(Duration::from_millis)
        .ok_or_else(|| {
            Error::invalid(format!(
                "{STARTUP_TIMEOUT_VAR}={value:?} is not a start-up deadline mp accepts: give a \
                 whole number of milliseconds from {} to {} (1 hour), or unset it for the \
                 default of {} s",
                STARTUP_TIMEOUT_MILLIS.start(),
                STARTUP_TIMEOUT_MILLIS.end(),
                STARTUP_DEADLINE.as_secs()
            ))
        })
}

/// As [`checked_startup_deadline`], for waits that cannot fail on it: every launch checked the
/// variable first, so the default only stands in for a value changed since then.
pub(crate) fn startup_deadline() -> Duration {
    checked_startup_deadline().unwrap_or(STARTUP_DEADLINE)
}
/// How long a worker that was asked to stop may take before it is killed.
pub(crate) const STOP_GRACE: Duration = Duration::from_secs(2);

/// Arguments given to every worker. A program that calls `mp::init()` never looks at them. One
/// that forgot it must not run its whole `main` again as a worker: these make a test harness
/// run no test, and most command-line parsers stop with a usage error, so the worker exits at
/// once and its parent reports `StartupFailed`.
const WORKER_ARGS: [&str; 2] = ["__mp_worker_without_init__", "--exact"];

/// A started worker process and its control connection. Killed and reaped when dropped.
pub(crate) struct WorkerProcess {
    child: sys::spawn::ChildPid,
    pub(crate) control: Arc<Link>,
    pid: u32,
    exit: Option<ExitReason>,
    launched_at: Instant,
}

impl fmt::Debug for WorkerProcess {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("WorkerProcess").field("pid", &self.pid).field("exit", &self.exit).finish()
    }
}

impl WorkerProcess {
    /// Starts a copy of this executable as a worker and waits until it reports for duty.
    pub(crate) fn start() -> Result<WorkerProcess> {
        let mut worker = WorkerProcess::launch()?;
        worker.await_hello()?;
        Ok(worker)
    }

    /// Starts a copy of this executable as a worker; [`WorkerProcess::await_hello`] must follow.
    pub(crate) fn launch() -> Result<WorkerProcess> {
        if worker::started_as_worker_without_init() {
            return Err(Error::StartupFailed {
                message: "this process was itself started as an mp worker but never called \
                          mp::init(), so it may not start more workers. Put `mp::init();` on the \
                          first line of main (in a test file: `mp::test_support!();`)"
                    .into(),
            });
        }
        // Checked before anything starts, so a bad value fails `Pool::new` and `Process::spawn`.
        checked_startup_deadline()?;
        let (parent_end, child_end) = sys::socket_pair(sys::SocketKind::Stream)
            .map_err(|error| Error::io("creating a worker's control connection", error))?;
        let rings = RingFile::create()
            .map_err(|error| Error::io("creating a worker's control connection (memfd)", error))?;
        let launched_at = Instant::now();
        let mut overrides = vec![(worker::WORKER_FD_VAR, worker::WORKER_FD.to_string())];
        if std::env::var_os("RAYON_NUM_THREADS").is_none() {
            // Workers already use the cores; a rayon pool per worker would oversubscribe them.
            overrides.push(("RAYON_NUM_THREADS", "1".into()));
        }
        if std::env::var_os("GLIBC_TUNABLES").is_none() {
            // Workers build and send large arrays: glibc's malloc then asks for transparent
            // huge pages, so filling fresh megabytes costs one page fault per 2 MiB instead of
            // one per 4 KiB (most of the cost of a fresh array on a virtual machine).
            overrides.push(("GLIBC_TUNABLES", "glibc.malloc.hugetlb=1".into()));
        }
        let refused = |error: std::io::Error| Error::StartupFailed {
            message: format!("the operating system refused to start {:?}: {error}", executable()),
        };
        // No orphans: the worker asks the kernel for SIGKILL at its parent's death as the first
        // thing `mp::init` does (`sys::die_with_parent`), before it reads anything.
        let launch = sys::spawn::Launch::new(
            &executable(),
            &WORKER_ARGS,
            &overrides,
            (child_end.as_raw_fd(), worker::WORKER_FD),
        )
        .map_err(refused)?;
        let child = spawner::spawn(launch).map_err(refused)?;
        // Our copy must go, so that the child's death reads as end-of-stream at once.
        drop(child_end);
        let pid = child.id();
        // The control messages travel through shared memory too: the worker's first read is
        // this byte with the rings' memfd. An empty socket always takes one byte; a worker
        // that is already gone (no `mp::init()`) is reported by `await_hello`.
        let handed = sys::send_vectored(
            parent_end.as_fd(),
            &[std::io::IoSlice::new(worker::RINGS_BYTE)],
            &[rings.fd().as_raw_fd()],
        );
        match handed {
            Err(error)
                if !matches!(
                    error.kind(),
                    std::io::ErrorKind::BrokenPipe | std::io::ErrorKind::ConnectionReset
                ) =>
            {
                return Err(Error::io("handing a worker its control connection", error));
            }
            _ => {}
        }
        let control = Link::with_rings(
            parent_end,
            Some((rings, 0)),
            Waiting::AmongSiblings,
            "worker connection",
        )?;
        Ok(WorkerProcess { child, control, pid, exit: None, launched_at })
    }

    /// Waits until the worker reports for duty: its death or a deadline ends the wait, so a
    /// worker that dies early can never hang its parent.
    pub(crate) fn await_hello(&mut self) -> Result<()> {
        let deadline = startup_deadline();
        match self.control.recv_frame(Some(deadline)) {
            Ok(Some(frame)) => self.check_hello(&frame),
            Ok(None) => Err(self.startup_timed_out(deadline)),
            Err(_) => Err(self.died_before_ready()),
        }
    }

    /// When this worker was launched: its start-up deadline counts from here.
    pub(crate) fn launched_at(&self) -> Instant {
        self.launched_at
    }

    /// Checks the worker's first frame, its hello; a mismatch kills it.
    pub(crate) fn check_hello(&mut self, frame: &Frame) -> Result<()> {
        match postcard::from_bytes::<FromWorker>(&frame.meta) {
            Ok(FromWorker::Hello { protocol, anchor_check, .. })
                if protocol == worker::PROTOCOL
                    && anchor_check == sys::code_offset(worker::init as fn() as usize) =>
            {
                Ok(())
            }
            _ => {
                self.kill_and_reap();
                Err(Error::StartupFailed {
                    message: "the worker runs a different build of this program than its parent"
                        .into(),
                })
            }
        }
    }

    /// Kills a worker that did not report for duty within `deadline`, and says so.
    pub(crate) fn startup_timed_out(&mut self, deadline: Duration) -> Error {
        self.kill_and_reap();
        Error::StartupFailed {
            message: format!(
                "worker process {} did not report for duty within {deadline:?}; it was killed. Is the \
                 machine overloaded (raise MP_STARTUP_TIMEOUT_MS), or does main do slow \
                 work before mp::init()?",
                self.pid
            ),
        }
    }

    /// Reaps a worker whose connection closed before its hello, and says why that happens.
    pub(crate) fn died_before_ready(&mut self) -> Error {
        let reason = self.reap_within(STOP_GRACE);
        Error::StartupFailed {
            message: format!(
                "worker process {} {reason} before it was ready. The usual cause: the program \
                 does not call `mp::init();` as the first line of main (in an integration \
                 test file: `mp::test_support!();`), so the worker ran the program instead",
                self.pid
            ),
        }
    }

    pub(crate) fn pid(&self) -> u32 {
        self.pid
    }

    pub(crate) fn send_control(
        &self,
        message: &ToWorker,
        body: Vec<u8>,
        fds: Vec<std::os::fd::OwnedFd>,
    ) -> Result<()> {
        self.control.send_frame(control_frame(message, body, fds)?)
    }

    /// How the process ended, if it has (reaps it).
    pub(crate) fn try_reap(&mut self) -> Option<ExitReason> {
        if self.exit.is_none()
            && let Ok(Some(status)) = self.child.try_wait()
        {
            self.exit = Some(exit_reason(status));
        }
        self.exit
    }

    /// Waits up to `grace` for the process to end, then kills it; always reaps it.
    pub(crate) fn reap_within(&mut self, grace: Duration) -> ExitReason {
        let deadline = Instant::now() + grace;
        let mut pause = Duration::from_micros(50);
        while Instant::now() < deadline {
            if let Some(reason) = self.try_reap() {
                return reason;
            }
            std::thread::sleep(pause);
            pause = (pause * 2).min(Duration::from_millis(10));
        }
        self.kill_and_reap()
    }

    /// SIGKILL, then reap. Returns how it ended (which may be a normal exit that won the race).
    pub(crate) fn kill_and_reap(&mut self) -> ExitReason {
        if let Some(reason) = self.try_reap() {
            return reason;
        }
        let _ = self.child.kill();
        let reason = match self.child.wait() {
            Ok(status) => exit_reason(status),
            Err(_) => ExitReason::Signal(libc::SIGKILL),
        };
        self.exit = Some(reason);
        reason
    }
}

impl Drop for WorkerProcess {
    fn drop(&mut self) {
        self.kill_and_reap();
    }
}

pub(crate) fn control_frame(
    message: &ToWorker,
    body: Vec<u8>,
    fds: Vec<std::os::fd::OwnedFd>,
) -> Result<OutFrame<'static>> {
    let meta = postcard::to_stdvec(message).map_err(Error::serialization)?;
    OutFrame::new(BodyKind::Value, meta, body.into(), fds)
}

/// Parses a worker's `Done` frame.
pub(crate) fn parse_done(frame: &Frame) -> Result<DoneHeader> {
    match postcard::from_bytes::<FromWorker>(&frame.meta) {
        Ok(FromWorker::Done(done)) => Ok(done),
        _ => Err(Error::Corrupted {
            message: "a worker sent a report mp does not understand".into(),
        }),
    }
}

/// Turns a failed chunk into the error the caller sees.
pub(crate) fn failure_error(failure: Failure, first_index: Option<usize>, pid: u32) -> Error {
    match failure {
        Failure::Panic { message, location, item } => Error::TaskPanicked {
            message,
            location,
            task_index: first_index.map(|first| first + item as usize),
            pid,
        },
        Failure::Decode(message) => {
            Error::serialization(format!("a worker could not decode its arguments: {message}"))
        }
        Failure::Encode(message) => {
            Error::serialization(format!("a worker could not encode its result: {message}"))
        }
    }
}

fn exit_reason(status: std::process::ExitStatus) -> ExitReason {
    match (status.code(), status.signal()) {
        (Some(code), _) => ExitReason::Code(code),
        (None, Some(signal)) => ExitReason::Signal(signal),
        (None, None) => ExitReason::Code(-1),
    }
}

/// The one thread of a process that starts its workers.
///
/// A worker asks the kernel for SIGKILL when its parent dies (`PR_SET_PDEATHSIG`), but the
/// kernel counts as the parent the *thread* that spawned it: a worker spawned by a pool's
/// launcher thread (which ends once every worker is started), or by a short-lived user thread
/// calling `Process::spawn`, would be killed when that thread ends. So every spawn happens on
/// this thread, which is started at the first launch and lives as long as the process.
mod spawner {
    use std::{
        io,
        sync::{Mutex, mpsc},
    };

    use crate::sys::spawn::{self, ChildPid, Launch};

    type Request = (Launch, mpsc::Sender<io::Result<ChildPid>>);

    static SPAWNER: Mutex<Option<mpsc::Sender<Request>>> = Mutex::new(None);

    /// `spawn::spawn(&launch)`, run on the spawner thread.
    pub(super) fn spawn(launch: Launch) -> io::Result<ChildPid> {
        let (reply, answer) = mpsc::channel();
        {
            let mut spawner = SPAWNER.lock().unwrap_or_else(|poison| poison.into_inner());
            let requests = match spawner.as_ref() {
                Some(requests) => requests.clone(),
                None => {
                    // Not started yet: start it now (a failure is reported, and the next
                    // launch tries again).
                    let (requests, incoming) = mpsc::channel::<Request>();
                    std::thread::Builder::new()
                        .name("mp-spawner".into())
                        .stack_size(256 * 1024)
                        .spawn(move || {
                            for (launch, reply) in incoming {
                                let _ = reply.send(spawn::spawn(&launch));
                            }
                        })?;
                    spawner.insert(requests).clone()
                }
            };
            if requests.send((launch, reply)).is_err() {
                // The thread never ends; should it be gone all the same, say so, and let the
                // next launch start another.
                *spawner = None;
                return Err(io::Error::other("mp's spawner thread is gone"));
            }
        }
        answer.recv().unwrap_or_else(|_| Err(io::Error::other("mp's spawner thread is gone")))
    }
}

fn executable() -> std::path::PathBuf {
    // /proc/self/exe opens the very file this process runs, even if a rebuild replaced it.
    let proc_self = std::path::PathBuf::from("/proc/self/exe");
    if proc_self.exists() {
        return proc_self;
    }
    std::env::current_exe().unwrap_or(proc_self)
}

/// A process running `f(arg)`: Python's `Process(target=f, args=(arg,))`, already started.
///
/// The process is a fresh copy of this program (so `main` must start with [`mp::init()`](crate::init)).
/// `f` must be a `fn` item or a closure that captures nothing; its argument and result travel
/// serialized, and may contain pipes, queues and shared arrays.
///
/// Dropping a `Process` that was not joined kills it.
///
/// ```
/// # fn main() -> mp::Result<()> {
/// # mp::init();
/// fn square(x: u64) -> u64 { x * x }
///
/// let mut process = mp::Process::spawn(square, 12)?;
/// assert_ne!(process.pid(), std::process::id());
/// assert_eq!(process.join()?, 144);
/// assert_eq!(process.exit_reason(), Some(mp::ExitReason::Code(0)));
/// # Ok(()) }
/// ```
#[must_use = "a Process is killed when its handle is dropped: call join()"]
pub struct Process<R> {
    worker: WorkerProcess,
    joined: bool,
    _result: PhantomData<fn() -> R>,
}

impl<R> fmt::Debug for Process<R> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Process")
            .field("pid", &self.worker.pid)
            .field("exit", &self.worker.exit)
            .finish()
    }
}

impl<R: Message> Process<R> {
    /// Starts a new process running `f(arg)` and returns at once (Python's `Process(...)`
    /// followed by `p.start()`).
    ///
    /// Errors: [`Error::StartupFailed`] if the process does not report for duty within the
    /// start-up deadline (`MP_STARTUP_TIMEOUT_MS`, 30 s by default), and
    /// [`Error::InvalidArgument`] if that variable is not a whole number of milliseconds from 1
    /// to 3,600,000 (an hour).
    ///
    /// The process dies with this one, even by SIGKILL, whichever thread started it.
    ///
    /// ```
    /// # fn main() -> mp::Result<()> {
    /// # mp::init();
    /// fn greet(name: String) -> String { format!("hello, {name}") }
    ///
    /// let mut process = mp::Process::spawn(greet, "Ada".to_string())?;
    /// assert_eq!(process.join()?, "hello, Ada");
    /// # Ok(()) }
    /// ```
    pub fn spawn<A, F>(f: F, arg: A) -> Result<Process<R>>
    where
        F: Fn(A) -> R + Copy + 'static,
        A: Message,
    {
        // `f` has no data: its type alone tells the worker what to run.
        let _ = f;
        let () = worker::PlainFn::<F>::CHECK; // so that a build error names the caller's line
        let trampoline = worker::trampoline_offset::<F, A, R>();
        let (body, fds) = wire::encode(std::slice::from_ref(&arg))?;
        drop(arg);
        let worker = WorkerProcess::start()?;
        let run =
            RunHeader { job: 0, chunk: 0, trampoline, trace: false, seq: 0, revocable: false };
        worker.send_control(&ToWorker::Run(run), body, fds)?;
        // Queued behind the task: the worker exits by itself once it has reported.
        worker.send_control(&ToWorker::Shutdown, Vec::new(), Vec::new())?;
        Ok(Process { worker, joined: false, _result: PhantomData })
    }
}

impl<R: Message> Process<R> {
    /// Starts a new process running `f(a, b, ...)` with the fields of the tuple `args` as its
    /// arguments: Python's `Process(target=f, args=(a, b))`, as [`Pool::starmap`] does for a
    /// pool. Functions of 2, 3 or 4 arguments ([`StarFn`]); for one argument use
    /// [`Process::spawn`]. Otherwise as [`Process::spawn`].
    ///
    /// [`Pool::starmap`]: crate::Pool::starmap
    /// [`StarFn`]: crate::StarFn
    ///
    /// ```
    /// # fn main() -> mp::Result<()> {
    /// # mp::init();
    /// fn fill(tx: mp::Sender<u32>, n: u32) -> u32 {
    ///     (0..n).for_each(|i| tx.send(&i).unwrap());
    ///     n
    /// }
    /// fn power(base: u64, exponent: u32) -> u64 { base.pow(exponent) }
    ///
    /// let (tx, rx) = mp::pipe_simplex::<u32>()?;
    /// let mut filler = mp::Process::spawn_star(fill, (tx, 2))?;
    /// assert_eq!(filler.join()?, 2);
    /// assert_eq!([rx.recv()?, rx.recv()?], [0, 1]);
    /// assert_eq!(mp::Process::spawn_star(power, (2, 10))?.join()?, 1024);
    /// # Ok(()) }
    /// ```
    pub fn spawn_star<Args, F>(f: F, args: Args) -> Result<Process<R>>
    where
        F: crate::StarFn<Args, Output = R>,
        Args: Message,
    {
        let _ = f;
        let () = worker::PlainFn::<F>::CHECK; // so that a build error names the caller's line
        Process::spawn(crate::pool::unpack::<F, Args>, args)
    }
}

impl<R: DeserializeOwned + 'static> Process<R> {
    /// Waits for the process to finish and returns `f(arg)`.
    ///
    /// Errors: [`Error::TaskPanicked`] if `f` panicked, [`Error::WorkerDied`] if the process was
    /// killed or exited before returning.
    ///
    /// ```
    /// # fn main() -> mp::Result<()> {
    /// # mp::init();
    /// fn divide((a, b): (u32, u32)) -> u32 { a / b }
    ///
    /// let mut good = mp::Process::spawn(divide, (6, 3))?;
    /// assert_eq!(good.join()?, 2);
    /// let mut bad = mp::Process::spawn(divide, (1, 0))?;
    /// assert!(matches!(bad.join(), Err(mp::Error::TaskPanicked { .. })));
    /// # Ok(()) }
    /// ```
    pub fn join(&mut self) -> Result<R> {
        self.join_inner(None)
    }

    /// As [`Process::join`], but gives up with [`Error::Timeout`] after `timeout`; the process
    /// keeps running and can be joined again.
    ///
    /// ```
    /// # fn main() -> mp::Result<()> {
    /// # mp::init();
    /// fn nap(millis: u64) -> u64 { std::thread::sleep(std::time::Duration::from_millis(millis)); millis }
    ///
    /// let mut process = mp::Process::spawn(nap, 60_000)?;
    /// let error = process.join_timeout(std::time::Duration::from_millis(20)).unwrap_err();
    /// assert!(error.is_timeout());
    /// assert!(process.is_alive());
    /// process.kill()?;
    /// assert_eq!(process.exit_reason(), Some(mp::ExitReason::Signal(9)));
    /// # Ok(()) }
    /// ```
    pub fn join_timeout(&mut self, timeout: Duration) -> Result<R> {
        self.join_inner(Some(timeout))
    }

    fn join_inner(&mut self, timeout: Option<Duration>) -> Result<R> {
        if self.joined {
            return Err(Error::invalid(
                "this process was already joined; its result went to the first join",
            ));
        }
        let frame = match self.worker.control.recv_frame(timeout) {
            Ok(Some(frame)) => frame,
            Ok(None) => {
                return Err(Error::Timeout {
                    what: format!("process {} to finish", self.worker.pid),
                    waited: timeout.unwrap_or_default(),
                });
            }
            // The result did not fit in memory here: the process is fine, and said so.
            Err(error @ Error::OutOfMemory { .. }) => {
                self.joined = true;
                self.worker.reap_within(STOP_GRACE);
                return Err(error);
            }
            Err(_) => {
                self.joined = true;
                let reason = self.worker.reap_within(STOP_GRACE);
                return Err(Error::WorkerDied {
                    worker: None,
                    pid: self.worker.pid,
                    reason,
                    lost_tasks: Vec::new(),
                });
            }
        };
        self.joined = true;
        let done = parse_done(&frame)?;
        let outcome = match done.failure {
            Some(failure) => Err(failure_error(failure, None, self.worker.pid)),
            None => wire::decode::<Vec<R>>(&frame.body, frame.fds).and_then(|results| {
                results.into_iter().next().ok_or_else(|| Error::serialization("empty result"))
            }),
        };
        self.worker.reap_within(STOP_GRACE);
        outcome
    }
}

impl<R> Process<R> {
    /// The control connection, on which the result (or the process's death) arrives.
    pub(crate) fn control(&self) -> &Link {
        &self.worker.control
    }

    /// The operating system's id of the process (Python's `p.pid`).
    ///
    /// ```
    /// # fn main() -> mp::Result<()> {
    /// # mp::init();
    /// fn my_pid(_: ()) -> u32 { std::process::id() }
    ///
    /// let mut process = mp::Process::spawn(my_pid, ())?;
    /// let pid = process.pid();
    /// assert_eq!(process.join()?, pid);
    /// # Ok(()) }
    /// ```
    pub fn pid(&self) -> u32 {
        self.worker.pid()
    }

    /// True while the process runs (Python's `p.is_alive()`).
    ///
    /// ```
    /// # fn main() -> mp::Result<()> {
    /// # mp::init();
    /// fn wait_for(rx: mp::Receiver<u8>) -> u8 { rx.recv().unwrap() }
    ///
    /// let (tx, rx) = mp::pipe_simplex::<u8>()?;
    /// let mut process = mp::Process::spawn(wait_for, rx)?;
    /// assert!(process.is_alive()); // blocked in recv
    /// tx.send(&1)?;
    /// assert_eq!(process.join()?, 1);
    /// assert!(!process.is_alive());
    /// # Ok(()) }
    /// ```
    pub fn is_alive(&mut self) -> bool {
        self.worker.try_reap().is_none()
    }

    /// How the process ended, or None while it runs (Python's `p.exitcode`; see
    /// [`ExitReason::python_exitcode`]).
    ///
    /// ```
    /// # fn main() -> mp::Result<()> {
    /// # mp::init();
    /// fn wait_for(rx: mp::Receiver<u8>) -> u8 { rx.recv().unwrap() }
    ///
    /// let (tx, rx) = mp::pipe_simplex::<u8>()?;
    /// let mut process = mp::Process::spawn(wait_for, rx)?;
    /// assert_eq!(process.exit_reason(), None);
    /// tx.send(&1)?;
    /// process.join()?;
    /// assert_eq!(process.exit_reason(), Some(mp::ExitReason::Code(0)));
    /// # Ok(()) }
    /// ```
    pub fn exit_reason(&mut self) -> Option<ExitReason> {
        self.worker.try_reap()
    }

    /// Kills the process with SIGKILL and reaps it (Python's `p.kill()`).
    ///
    /// ```
    /// # fn main() -> mp::Result<()> {
    /// # mp::init();
    /// fn wait_for(rx: mp::Receiver<u8>) -> u8 { rx.recv().unwrap() }
    ///
    /// let (_tx, rx) = mp::pipe_simplex::<u8>()?;
    /// let mut process = mp::Process::spawn(wait_for, rx)?;
    /// process.kill()?;
    /// assert!(!process.is_alive());
    /// assert_eq!(process.exit_reason().map(mp::ExitReason::python_exitcode), Some(-9));
    /// # Ok(()) }
    /// ```
    pub fn kill(&mut self) -> Result<()> {
        // Not "joined": a later join reports how the process ended.
        self.worker.kill_and_reap();
        Ok(())
    }

    /// Sends SIGTERM (Python's `p.terminate()`); the process ends unless it handles the signal.
    ///
    /// ```
    /// # fn main() -> mp::Result<()> {
    /// # mp::init();
    /// fn wait_for(rx: mp::Receiver<u8>) -> u8 { rx.recv().unwrap() }
    ///
    /// let (_tx, rx) = mp::pipe_simplex::<u8>()?;
    /// let mut process = mp::Process::spawn(wait_for, rx)?;
    /// process.terminate()?;
    /// let error = process.join().unwrap_err();
    /// assert!(matches!(error, mp::Error::WorkerDied { reason: mp::ExitReason::Signal(15), .. }));
    /// # Ok(()) }
    /// ```
    pub fn terminate(&mut self) -> Result<()> {
        if self.worker.try_reap().is_some() {
            return Ok(());
        }
        sys::send_signal(self.worker.pid(), libc::SIGTERM)
            .map_err(|error| Error::io("sending SIGTERM", error))
    }
}
