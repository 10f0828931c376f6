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
    channel::{self, Link},
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

/// Rejects, at compile time, task functions that carry data.
pub(crate) fn assert_task_is_plain_fn<F>() {
    struct Check<F>(std::marker::PhantomData<F>);
    impl<F> Check<F> {
        const IS_PLAIN_FN: () = assert!(
            std::mem::size_of::<F>() == 0,
            "mp: a task must be a plain `fn` item or a closure that captures nothing, because a \
             worker process cannot see the parent's variables. Pass the data in the argument instead."
        );
    }
    let () = Check::<F>::IS_PLAIN_FN;
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
    let Some(control) =
        value.to_str().and_then(|text| text.parse().ok()).and_then(sys::adopt_inherited_fd)
    else {
        eprintln!(
            "mp: {WORKER_FD_VAR}={value:?} does not name an open connection; this process is not a worker"
        );
        std::process::exit(2);
    };
    serve(control)
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

fn serve(control: OwnedFd) -> ! {
    panic::set_hook(Box::new(|info| {
        let location = info.location().map(|location| location.to_string());
        LAST_PANIC_LOCATION.with(|slot| *slot.borrow_mut() = location);
    }));
    watch_parent(&control);
    let Some(rings) = receive_rings(&control) else {
        sys::exit_immediately(3);
    };
    let Ok(parent) = Link::with_rings(control, Some((rings, 1)), "the parent") else {
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

/// Reads the memfd the parent sent first (see [`RINGS_BYTE`]); None if it never comes.
fn receive_rings(control: &OwnedFd) -> Option<Arc<RingFile>> {
    let interest = sys::Ready { readable: true, hangup: true, ..Default::default() };
    let mut byte = Vec::with_capacity(1);
    let mut fds = Vec::new();
    while byte.is_empty() {
        sys::poll(&[(control.as_fd(), interest)], None).ok()?;
        match sys::recv_into_spare(control.as_fd(), &mut byte, 1, &mut fds) {
            Ok(0) => return None,
            Ok(_) => {}
            Err(error) if error.kind() == std::io::ErrorKind::WouldBlock => {}
            Err(error) if error.kind() == std::io::ErrorKind::Interrupted => {}
            Err(_) => return None,
        }
    }
    if byte != RINGS_BYTE || fds.len() != 1 {
        return None;
    }
    RingFile::adopt(fds.pop()?).ok()
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
/// middle of a long task: a parent killed with SIGKILL leaves no orphans behind.
fn watch_parent(control: &OwnedFd) {
    let Ok(watched) = control.try_clone() else {
        return;
    };
    let _ = std::thread::Builder::new().name("mp-parent-watch".into()).stack_size(64 * 1024).spawn(
        move || {
            loop {
                let interest = sys::Ready { hangup: true, ..Default::default() };
                match sys::poll(&[(watched.as_fd(), interest)], None) {
                    Ok(ready) if ready[0].hangup => sys::exit_immediately(6),
                    Ok(_) => {}
                    Err(_) => sys::exit_immediately(6),
                }
            }
        },
    );
}
