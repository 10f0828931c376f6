//! The worker side: how a re-executed copy of the program becomes a worker, and how it finds
//! and runs the task function the parent asked for.
//!
//! A task function is a zero-sized type (a `fn` item or a closure that captures nothing), so it
//! carries no data: the parent only tells the worker which monomorphised trampoline to call,
//! as an offset from an anchor function (the same in every process running this executable).

use std::{
    cell::RefCell,
    os::fd::{AsFd, OwnedFd},
    panic::{self, AssertUnwindSafe},
    sync::Arc,
    time::Duration,
};

use serde::{Deserialize, Serialize, de::DeserializeOwned};

use crate::{
    Error, Result, SharedArray,
    channel::{self, Link, Waiting},
    ring::RingFile,
    sys,
    wire::{self, BodyKind, OutFrame},
};

/// The variable that tells a re-executed program which descriptor is its control connection.
pub(crate) const WORKER_FD_VAR: &str = "MP_WORKER_FD";
/// The descriptor number the control connection gets in a worker.
pub(crate) const WORKER_FD: i32 = 3;
/// Bumped whenever the parent-worker messages change.
pub(crate) const PROTOCOL: u32 = 2;
/// The first byte a worker reads on its control socket; it carries the memfd of the control
/// connection's rings.
pub(crate) const RINGS_BYTE: &[u8] = b"R";

/// Parent to worker.
#[derive(Debug, Serialize, Deserialize)]
pub(crate) enum ToWorker {
    Run(RunHeader),
    /// The pool's claim words (the body: a `SharedArray<u64>`) and which one is this worker's.
    /// Sent before any `Run`.
    Claims {
        slot: u32,
    },
    Shutdown,
}

#[derive(Debug, Clone, Copy, Serialize, Deserialize)]
pub(crate) struct RunHeader {
    pub(crate) job: u64,
    pub(crate) chunk: u64,
    pub(crate) trampoline: i64,
    /// Record start and end times of each item.
    pub(crate) trace: bool,
    /// The chunk's number on this worker's connection, from 1 (0: no claim words), and whether
    /// the parent may take the chunk back before it starts. See [`claim`].
    pub(crate) seq: u64,
    pub(crate) revocable: bool,
}

/// Worker to parent.
#[derive(Debug, Serialize, Deserialize)]
pub(crate) enum FromWorker {
    Hello { pid: u32, protocol: u32, anchor_check: i64 },
    Done(DoneHeader),
}

#[derive(Debug, Serialize, Deserialize)]
pub(crate) struct DoneHeader {
    pub(crate) job: u64,
    pub(crate) chunk: u64,
    pub(crate) failure: Option<Failure>,
    /// (start, end) of each item on the machine's monotonic clock, in nanoseconds.
    pub(crate) timings: Vec<(u64, u64)>,
}

/// Why a chunk produced no results.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub(crate) enum Failure {
    Panic { message: String, location: Option<String>, item: u64 },
    Decode(String),
    Encode(String),
}

/// What a trampoline gets: the encoded chunk of arguments.
pub(crate) struct TaskInput {
    pub(crate) body: Vec<u8>,
    pub(crate) fds: Vec<OwnedFd>,
    pub(crate) trace: bool,
}

/// What a trampoline gives back: the encoded results, or why there are none.
pub(crate) struct TaskOutput {
    pub(crate) body: Vec<u8>,
    pub(crate) fds: Vec<OwnedFd>,
    pub(crate) failure: Option<Failure>,
    pub(crate) timings: Vec<(u64, u64)>,
}

type Trampoline = fn(TaskInput) -> TaskOutput;

/// The offset the parent sends for "run `F` over a chunk of `A`s".
pub(crate) fn trampoline_offset<F, A, R>() -> i64
where
    F: Fn(A) -> R + Copy + 'static,
    A: DeserializeOwned + 'static,
    R: Serialize + 'static,
{
    assert_task_is_plain_fn::<F>();
    let trampoline: Trampoline = run_chunk::<F, A, R>;
    sys::code_offset(trampoline as usize)
}

/// Rejects, when the program is built, task functions that carry data.
pub(crate) fn assert_task_is_plain_fn<F>() {
    let () = PlainFn::<F>::CHECK;
}

/// `PlainFn::<F>::CHECK` fails the build unless the task type `F` is zero-sized: a `fn` item
/// (`double`, named directly) or a closure that captures nothing. A function pointer
/// (`double as fn(u32) -> u32`, or any value of a `fn(..) -> ..` type, such as one taken out
/// of an array) or a capturing closure is rejected.
///
/// Write `let () = worker::PlainFn::<F>::CHECK;` in the body of each public function that takes
/// a task, not in a helper it calls: rustc then ends the error with "the above error was
/// encountered while instantiating `fn mp::launch::<..>`" pointing at the caller's own line
/// (from a helper, it would point at the helper's call inside `mp`). It is evaluated once per
/// type, so the other places that name it (the trampolines) add notes, not more errors.
///
/// Why not earlier, at `cargo check`: `cargo check` does not monomorphise, so it never evaluates
/// this constant (`cargo build`, `run` and `test` do), and no trait bound can say "zero-sized":
/// a `fn` item, a function pointer and a closure with `Copy` captures are all
/// `Fn + Copy + 'static`, and stable Rust has no negative bounds and no bound on a type's size.
/// (Function pointers alone could be caught by a second, overlapping impl for `F: PartialEq`,
/// which they implement and `fn` items and closures do not, but the error would be "type
/// annotations needed", every entry point would gain a type parameter, and capturing closures
/// would still pass.)
///
/// ```compile_fail,E0080
/// fn double(x: u32) -> u32 { 2 * x }
/// let pool = mp::Pool::new(2)?;
/// let tasks = [double as fn(u32) -> u32];
/// pool.map(tasks[0], [1, 2, 3])?; // a function pointer: fails to build
/// # Ok::<(), mp::Error>(())
/// ```
///
/// ```compile_fail,E0080
/// let offset = 10;
/// mp::Process::spawn(move |x: u32| x + offset, 1)?; // captures `offset`: fails to build
/// # Ok::<(), mp::Error>(())
/// ```
///
/// ```no_run
/// fn double(x: u32) -> u32 { 2 * x }
/// let pool = mp::Pool::new(2)?;
/// pool.map(double, [1, 2, 3])?; // the `fn` item itself: builds
/// pool.map(|x: u32| x + 10, [1, 2, 3])?; // captures nothing: builds
/// # Ok::<(), mp::Error>(())
/// ```
pub(crate) struct PlainFn<F>(std::marker::PhantomData<F>);

impl<F> PlainFn<F> {
    pub(crate) const CHECK: () = assert!(
        std::mem::size_of::<F>() == 0,
        "mp cannot send this task to a worker process: it is not a zero-sized `fn` item.
Its type is in `PlainFn::<..>` just below: `fn(..) -> ..` is a function pointer, `{{closure@..}}`
a closure. The call to change is in the note \"the above error was encountered while
instantiating\" further down.
- A function pointer (`fn(..) -> ..`, as in `f as fn(Comm, ()) -> u32`, or a `fn` taken out
  of an array, a `Vec` or a variable) is an address, which means nothing in another process.
  Name the `fn` item itself: call `launch` (or `map`, `spawn`, ..) once per function, or pass
  a tag in the argument and `match` on it inside one function.
- A closure that captures variables holds data that a worker process cannot see: pass the
  data in the argument instead."
    );
}

fn run_chunk<F, A, R>(input: TaskInput) -> TaskOutput
where
    F: Fn(A) -> R + Copy + 'static,
    A: DeserializeOwned + 'static,
    R: Serialize + 'static,
{
    let task: F = sys::conjure_zero_sized();
    let mut output =
        TaskOutput { body: Vec::new(), fds: Vec::new(), failure: None, timings: Vec::new() };
    let items: Vec<A> = match wire::decode(&input.body, input.fds) {
        Ok(items) => items,
        Err(error) => {
            output.failure = Some(Failure::Decode(error.to_string()));
            return output;
        }
    };
    let mut results = Vec::with_capacity(items.len());
    for (position, item) in items.into_iter().enumerate() {
        let start = if input.trace { sys::clock::monotonic_ns() } else { 0 };
        match panic::catch_unwind(AssertUnwindSafe(|| task(item))) {
            Ok(result) => results.push(result),
            Err(payload) => {
                let (message, location) = take_panic_report(payload.as_ref());
                output.failure = Some(Failure::Panic { message, location, item: position as u64 });
                return output;
            }
        }
        if input.trace {
            output.timings.push((start, sys::clock::monotonic_ns()));
        }
    }
    match wire::encode(&results) {
        Ok((body, fds)) => {
            output.body = body;
            output.fds = fds;
        }
        Err(error) => output.failure = Some(Failure::Encode(error.to_string())),
    }
    output
}

thread_local! {
    /// Location of the last panic on this thread, recorded by the worker's panic hook.
    static LAST_PANIC_LOCATION: RefCell<Option<String>> = const { RefCell::new(None) };
}

fn take_panic_report(payload: &(dyn std::any::Any + Send)) -> (String, Option<String>) {
    let message = payload
        .downcast_ref::<&str>()
        .map(|text| text.to_string())
        .or_else(|| payload.downcast_ref::<String>().cloned())
        .unwrap_or_else(|| "a panic with a non-string payload".to_string());
    let location = LAST_PANIC_LOCATION.with(|slot| slot.borrow_mut().take());
    (message, location)
}

/// Turns this process into a worker if it was started as one; otherwise returns at once.
///
/// Call it as the first line of `main`: a worker re-executes the whole program, and anything
/// before this call runs again in every worker.
///
/// A process is a worker when mp started it with `MP_WORKER_FD` in its environment. That
/// variable is mp's own: a program started by hand with it set (to anything) is not a worker,
/// and `init` ends it with exit code 2 and a message saying to unset it, at the latest after
/// the start-up deadline (`MP_STARTUP_TIMEOUT_MS`, 30 s by default) when the descriptor it
/// names looks like a connection from the parent but nothing comes.
///
/// ```
/// fn main() {
///     mp::init();
///     // ... the program, which may now create pools and processes ...
/// }
/// ```
pub fn init() {
    let Some(value) = std::env::var_os(WORKER_FD_VAR) else {
        return;
    };
    // Remove it at once so that processes this worker starts are not mistaken for workers.
    remove_worker_variables();
    match adopt_control(&value) {
        Ok((control, rings)) => serve(control, rings),
        Err(why) => {
            eprintln!(
                "mp: {WORKER_FD_VAR}={value:?} is set, but this process was not started by mp as \
                 a worker ({why}). mp sets this variable only in the worker processes it \
                 starts; do not set it by hand: unset it (`unset {WORKER_FD_VAR}`) and run the \
                 program again"
            );
            std::process::exit(2);
        }
    }
}

/// Checks that `MP_WORKER_FD` names the control connection of a worker mp started, and
/// receives the connection's rings. Whatever else the variable names (a file, a pipe, a
/// terminal, a socket from elsewhere, a descriptor that is not open, garbage) is an error
/// saying what it is, found at once or, for a silent socket, at the start-up deadline.
fn adopt_control(value: &std::ffi::OsStr) -> std::result::Result<(OwnedFd, Arc<RingFile>), String> {
    if value.to_str() != Some(WORKER_FD.to_string().as_str()) {
        return Err(format!("mp always passes descriptor {WORKER_FD}"));
    }
    let control = sys::adopt_inherited_fd(WORKER_FD)
        .ok_or_else(|| format!("descriptor {WORKER_FD} is not open"))?;
    match sys::fd_kind(control.as_fd()) {
        // The parent created the socket pair; a stray socket leads elsewhere.
        Ok(sys::FdKind::UnixStream { peer_pid }) if peer_pid == sys::parent_pid() => {
            // The kernel's guard against orphans, which also reaches a stopped worker: SIGKILL
            // at the parent's death. It comes first, before anything here can block.
            sys::die_with_parent(peer_pid).map_err(|error| error.to_string())?;
        }
        Ok(sys::FdKind::UnixStream { .. }) => {
            return Err(format!(
                "descriptor {WORKER_FD} is a socket that does not lead to this process's parent"
            ));
        }
        Ok(sys::FdKind::OtherSocket) => {
            return Err(format!("descriptor {WORKER_FD} is not a Unix stream socket"));
        }
        Ok(sys::FdKind::NotASocket) => {
            return Err(format!(
                "descriptor {WORKER_FD} is not a socket but a file, pipe or terminal"
            ));
        }
        Err(error) => return Err(format!("descriptor {WORKER_FD} cannot be examined: {error}")),
    }
    let rings = receive_rings(&control)?;
    Ok((control, rings))
}

/// True when this process was started as a worker but has not reached [`init`]: starting
/// processes then would re-execute the program again and again.
pub(crate) fn started_as_worker_without_init() -> bool {
    std::env::var_os(WORKER_FD_VAR).is_some()
}

fn remove_worker_variables() {
    // SAFETY (of the call): `remove_var` is unsafe in edition 2024 because other threads might
    // read the environment. `init` runs first in main, or before main through `test_support!`,
    // when a worker has no other thread yet.
    #[allow(unsafe_code)]
    unsafe {
        std::env::remove_var(WORKER_FD_VAR);
    }
}

fn serve(control: OwnedFd, rings: Arc<RingFile>) -> ! {
    panic::set_hook(Box::new(|info| {
        let location = info.location().map(|location| location.to_string());
        LAST_PANIC_LOCATION.with(|slot| *slot.borrow_mut() = location);
    }));
    watch_parent(&control);
    let Ok(parent) =
        Link::with_rings(control, Some((rings, 1)), Waiting::AmongSiblings, "the parent")
    else {
        sys::exit_immediately(3);
    };

    let hello = FromWorker::Hello {
        pid: std::process::id(),
        protocol: PROTOCOL,
        anchor_check: sys::code_offset(init as fn() as usize),
    };
    if send_to_parent(&parent, &hello, Vec::new(), Vec::new()).is_err() {
        sys::exit_immediately(3);
    }
    let mut any_failed = false;
    let mut claims: Option<(SharedArray<u64>, usize)> = None;
    loop {
        let frame = match parent.recv_frame(None) {
            Ok(Some(frame)) => frame,
            // The parent is gone or the connection is damaged: nobody is waiting for results.
            _ => sys::exit_immediately(4),
        };
        let Ok(message) = postcard::from_bytes::<ToWorker>(&frame.meta) else {
            sys::exit_immediately(5);
        };
        let header = match message {
            ToWorker::Run(header) => header,
            ToWorker::Claims { slot } => {
                match wire::decode::<SharedArray<u64>>(&frame.body, frame.fds) {
                    Ok(words) if (slot as usize) < words.len() => {
                        claims = Some((words, slot as usize))
                    }
                    _ => sys::exit_immediately(5),
                }
                continue;
            }
            ToWorker::Shutdown => break,
        };
        if !claim(claims.as_ref(), &header) {
            // Taken back by the parent (for an idle worker) before we got to it.
            continue;
        }
        // SAFETY: the parent runs this same executable (/proc/self/exe) and computed the
        // offset from a `Trampoline` with `trampoline_offset`.
        #[allow(unsafe_code)]
        let trampoline: Trampoline = unsafe { sys::function_at(header.trampoline) };
        let output =
            trampoline(TaskInput { body: frame.body, fds: frame.fds, trace: header.trace });
        any_failed |= output.failure.is_some();
        // Messages the task sent must be on their way before its result is.
        channel::wait_for_queued_messages(Duration::from_secs(60));
        let done = FromWorker::Done(DoneHeader {
            job: header.job,
            chunk: header.chunk,
            failure: output.failure,
            timings: output.timings,
        });
        if send_to_parent(&parent, &done, output.body, output.fds).is_err() {
            sys::exit_immediately(4);
        }
    }
    channel::wait_for_queued_messages(Duration::from_secs(60));
    std::process::exit(if any_failed { 1 } else { 0 })
}

/// Marks the chunk as started in this worker's claim word, unless the parent took it back
/// first; false if it did.
///
/// A pool may queue a chunk on a worker behind the one it runs, and take it back when another
/// worker falls idle. Both sides move the word up with `fetch_max`, the worker to the chunk's
/// number when it starts the chunk, the parent to the number of the last chunk it takes back;
/// whoever moves it past a chunk's number first decides, so a chunk runs exactly once.
fn claim(claims: Option<&(SharedArray<u64>, usize)>, header: &RunHeader) -> bool {
    let Some((words, slot)) = claims else {
        return true;
    };
    if header.seq == 0 {
        return true;
    }
    let before = words.word(*slot).fetch_max(header.seq, std::sync::atomic::Ordering::AcqRel);
    // A chunk sent to an idle worker is never taken back: it runs even when the parent has
    // moved the word past it (taking back the chunks queued behind it).
    before < header.seq || !header.revocable
}

/// Reads the memfd the parent sent first (see [`RINGS_BYTE`]). The parent sends it right
/// after starting this process, so it is there at once; the start-up deadline bounds the wait
/// for a socket that is not mp's.
fn receive_rings(control: &OwnedFd) -> std::result::Result<Arc<RingFile>, String> {
    let deadline = crate::process::startup_deadline();
    let give_up = std::time::Instant::now() + deadline;
    let interest = sys::Ready { readable: true, hangup: true, ..Default::default() };
    let mut byte = Vec::with_capacity(1);
    let mut fds = Vec::new();
    while byte.is_empty() {
        let remaining = give_up.saturating_duration_since(std::time::Instant::now());
        if remaining.is_zero() {
            return Err(format!(
                "nothing arrived on descriptor {WORKER_FD} within the start-up deadline of \
                 {deadline:?}"
            ));
        }
        sys::poll(&[(control.as_fd(), interest)], Some(remaining))
            .map_err(|error| format!("waiting on descriptor {WORKER_FD} failed: {error}"))?;
        match sys::recv_into_spare(control.as_fd(), &mut byte, 1, &mut fds) {
            Ok(0) => {
                // A parent that dies closes its descriptors just before the kernel sends this
                // worker its SIGKILL: let the signal arrive rather than blame the environment.
                std::thread::sleep(Duration::from_millis(100));
                return Err(format!(
                    "descriptor {WORKER_FD} was closed before mp's first message arrived"
                ));
            }
            Ok(_) => {}
            Err(error) if error.kind() == std::io::ErrorKind::WouldBlock => {}
            Err(error) if error.kind() == std::io::ErrorKind::Interrupted => {}
            Err(error) => return Err(format!("reading descriptor {WORKER_FD} failed: {error}")),
        }
    }
    match (byte == RINGS_BYTE, fds.pop(), fds.is_empty()) {
        (true, Some(memfd), true) => RingFile::adopt(memfd)
            .map_err(|error| format!("the connection's shared memory cannot be mapped: {error}")),
        _ => Err(format!("what arrived on descriptor {WORKER_FD} is not mp's first message")),
    }
}

fn send_to_parent(
    parent: &Arc<Link>,
    message: &FromWorker,
    body: Vec<u8>,
    fds: Vec<OwnedFd>,
) -> Result<()> {
    let meta = postcard::to_stdvec(message).map_err(Error::serialization)?;
    parent.send_frame(OutFrame::new(BodyKind::Value, meta, body.into(), fds)?)
}

/// Ends this worker as soon as the parent's end of the control connection closes, even in the
/// middle of a long task.
///
/// The kernel is the first guard against orphans: the parent asked for SIGKILL at its death
/// (`PR_SET_PDEATHSIG`, first thing in `init`), which also reaches a stopped worker, whose threads
/// cannot run. This thread is the second: it also ends a worker whose connection closes while
/// the parent lives. If it cannot start (a process limit, no descriptor left), the worker goes
/// on under the kernel's guard alone; it refuses to run unguarded.
fn watch_parent(control: &OwnedFd) {
    let started = control.try_clone().map_err(|error| error.to_string()).and_then(|watched| {
        std::thread::Builder::new()
            .name("mp-parent-watch".into())
            .stack_size(64 * 1024)
            .spawn(move || {
                loop {
                    let interest = sys::Ready { hangup: true, ..Default::default() };
                    match sys::poll(&[(watched.as_fd(), interest)], None) {
                        Ok(ready) if ready[0].hangup => sys::exit_immediately(6),
                        Ok(_) => {}
                        Err(_) => sys::exit_immediately(6),
                    }
                }
            })
            .map(drop)
            .map_err(|error| error.to_string())
    });
    if let Err(error) = started
        && sys::parent_death_signal() != libc::SIGKILL
    {
        eprintln!(
            "mp worker {}: cannot watch the parent process ({error}), and the kernel was not \
             asked to end this worker with it; exiting rather than risk an orphan",
            std::process::id()
        );
        sys::exit_immediately(6);
    }
}
