//! ipc-channel, measured beside `mp`: an echoing child process reached through ipc-channel,
//! for `mp-bench` and exercise 5. ipc-channel is what a Rust user would pick for processes
//! that talk to each other; ARCHITECTURE.md ("Why not ipc-channel") says why `mp` has its own
//! transport, and this crate lets both be measured the same way. `mp` does not depend on it.
//!
//! How a ping-pong peer is set up, from ipc-channel's documented API:
//! 1. The parent makes an [`IpcOneShotServer`] and starts a child (normally this same
//!    program, see [`this_program`]) with the server's name in [`CHILD_ENV`].
//! 2. The child's `main` calls [`serve_if_child`] first. It connects with
//!    [`IpcSender::connect`], makes the two channels of the ping-pong, keeps the receiving end
//!    of one and the sending end of the other, sends the other two ends to the parent through
//!    the one-shot server, and then sends back every message until the parent closes its end.
//! 3. The parent's [`Peer::round_trip`] sends a message and waits for it to come back.
//!
//! ipc-channel has no time limits of its own: `IpcOneShotServer::accept` waits forever for a
//! child that died before connecting (servo/ipc-channel#201, #261), and `send`/`recv` wait
//! forever for a child that stopped reading or answering. So [`Peer::spawn`] accepts on a
//! helper thread while it watches the child and a deadline, and every peer has a watchdog
//! that kills its child when the time limit passes: a blocked call then fails with
//! "disconnected" and the caller gets an error that says what happened, not a hang.

use std::{
    process::{Child, Command, ExitCode, ExitStatus, Stdio},
    sync::{
        Arc, Mutex,
        atomic::{AtomicBool, Ordering},
        mpsc::{self, RecvTimeoutError},
    },
    thread::{self, JoinHandle},
    time::{Duration, Instant},
};

use ipc_channel::IpcError;
use ipc_channel::ipc::{
    self, IpcBytesReceiver, IpcBytesSender, IpcOneShotServer, IpcReceiver, IpcSender,
    IpcSharedMemory,
};
use serde::{Deserialize, Serialize};

/// The ipc-channel release this workspace measures (its `Cargo.lock` entry; a test checks).
pub const IPC_CHANNEL_VERSION: &str = "0.23.1";

/// The environment variable that makes a program an echoing child: `KIND:SERVER_NAME`.
pub const CHILD_ENV: &str = "IPC_PINGPONG_CHILD";

/// How long a child may take to connect to the one-shot server.
pub const CONNECT_LIMIT: Duration = Duration::from_secs(20);

/// How long a child may take to exit once its parent closed the channel.
const EXIT_LIMIT: Duration = Duration::from_secs(10);

/// Which of ipc-channel's ways of sending bytes a peer uses.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum Kind {
    /// `ipc::bytes_channel()`: `IpcBytesSender::send(&[u8])`, `IpcBytesReceiver::recv() ->
    /// Vec<u8>`, no serialization.
    Bytes,
    /// `ipc::channel::<Vec<u8>>()`: typed, serialized by ipc-channel (postcard).
    Typed,
    /// `IpcSender<IpcSharedMemory>`: every message is a new shared-memory region
    /// (`IpcSharedMemory::from_bytes`, one copy), whose descriptor travels over the channel;
    /// the receiver maps it and reads the bytes.
    SharedMemory,
}

impl Kind {
    /// All three, in report order.
    pub const ALL: [Kind; 3] = [Kind::Bytes, Kind::Typed, Kind::SharedMemory];

    /// A short name, as in [`CHILD_ENV`] and file names: `bytes`, `typed`, `shmem`.
    pub fn name(self) -> &'static str {
        match self {
            Kind::Bytes => "bytes",
            Kind::Typed => "typed",
            Kind::SharedMemory => "shmem",
        }
    }

    /// What is sent, in ipc-channel's words.
    pub fn describe(self) -> &'static str {
        match self {
            Kind::Bytes => "IpcBytesSender / IpcBytesReceiver",
            Kind::Typed => "IpcSender<Vec<u8>> (serde, postcard)",
            Kind::SharedMemory => "IpcSharedMemory, a new region per message",
        }
    }

    fn from_name(name: &str) -> Option<Kind> {
        Kind::ALL.into_iter().find(|kind| kind.name() == name)
    }
}

/// What the child sends through the one-shot server: the parent's two ends of the ping-pong.
#[derive(Serialize, Deserialize)]
enum Hello {
    Bytes(IpcBytesSender, IpcBytesReceiver),
    Typed(IpcSender<Vec<u8>>, IpcReceiver<Vec<u8>>),
    SharedMemory(IpcSender<IpcSharedMemory>, IpcReceiver<IpcSharedMemory>),
}

/// This program, to be started again as a child: `/proc/self/exe` (or `current_exe`).
pub fn this_program() -> Command {
    let proc_exe = std::path::Path::new("/proc/self/exe");
    if proc_exe.exists() {
        return Command::new(proc_exe);
    }
    Command::new(std::env::current_exe().unwrap_or_else(|_| "/proc/self/exe".into()))
}

/// This test binary, started to run only the test `entry` (a test that calls [`child_role`]
/// and exits): how a test starts the echoing child without a `main` of its own.
pub fn test_child(entry: &str) -> Command {
    let mut command =
        Command::new(std::env::current_exe().unwrap_or_else(|_| "/proc/self/exe".into()));
    command.args(["--exact", entry, "--test-threads=1", "-q"]).stdout(Stdio::null());
    command
}

/// If this process was started as an echoing child ([`CHILD_ENV`] is set), serves the
/// ping-pong and returns how it ended: `Some(Ok(messages echoed))` or `Some(Err(why))`.
/// `None` for any other process. Call it at the top of `main`.
pub fn child_role() -> Option<Result<u64, String>> {
    let value = std::env::var(CHILD_ENV).ok()?;
    let (kind, name) = value.split_once(':').unwrap_or((value.as_str(), ""));
    Some(match kind {
        // For the tests of the guards: a child that dies first, or one that never answers.
        "exit-before-connect" => Err("exiting before connecting, as asked".into()),
        "connect-then-hang" => {
            let _kept = connect(Kind::Bytes, name.to_string());
            thread::sleep(Duration::from_secs(3600));
            Ok(0)
        }
        _ => match Kind::from_name(kind) {
            Some(kind) => serve(kind, name.to_string()),
            None => Err(format!("{CHILD_ENV}: unknown kind `{kind}`")),
        },
    })
}

/// [`child_role`] as an exit code: `Some(code)` if this process is an echoing child, which
/// `main` then returns at once.
pub fn serve_if_child() -> Option<ExitCode> {
    child_role().map(|outcome| match outcome {
        Ok(_) => ExitCode::SUCCESS,
        Err(error) => {
            eprintln!("ipc-channel echo child: {error}");
            ExitCode::FAILURE
        }
    })
}

/// The body of the test that [`test_child`] names: in a test binary started as an echoing
/// child, serves the ping-pong and exits (1 if it failed); in any other run of the tests,
/// returns at once.
///
/// ```
/// // The test `tests::child_entry` of a crate whose tests start the child with
/// // `ipc_pingpong::test_child("tests::child_entry")`:
/// fn child_entry() {
///     ipc_pingpong::exit_if_test_child();
/// }
/// child_entry(); // not a child here: nothing happens
/// ```
pub fn exit_if_test_child() {
    if let Some(outcome) = child_role() {
        std::process::exit(i32::from(outcome.is_err()));
    }
}

/// The child's ends of a ping-pong.
enum ChildEnds {
    Bytes(IpcBytesReceiver, IpcBytesSender),
    Typed(IpcReceiver<Vec<u8>>, IpcSender<Vec<u8>>),
    SharedMemory(IpcReceiver<IpcSharedMemory>, IpcSender<IpcSharedMemory>),
}

fn io_text(what: &str) -> impl Fn(std::io::Error) -> String + '_ {
    move |error| format!("{what}: {error}")
}

fn ipc_text(what: &str) -> impl Fn(IpcError) -> String + '_ {
    move |error| format!("{what}: {error}")
}

/// Connects to the parent's one-shot server and hands over the parent's ends.
fn connect(kind: Kind, name: String) -> Result<ChildEnds, String> {
    let bootstrap = IpcSender::<Hello>::connect(name).map_err(io_text("connecting"))?;
    let (hello, ends) = match kind {
        Kind::Bytes => {
            let (to_child, inbox) = ipc::bytes_channel().map_err(io_text("bytes channel"))?;
            let (outbox, from_child) = ipc::bytes_channel().map_err(io_text("bytes channel"))?;
            (Hello::Bytes(to_child, from_child), ChildEnds::Bytes(inbox, outbox))
        }
        Kind::Typed => {
            let (to_child, inbox) = ipc::channel().map_err(io_text("channel"))?;
            let (outbox, from_child) = ipc::channel().map_err(io_text("channel"))?;
            (Hello::Typed(to_child, from_child), ChildEnds::Typed(inbox, outbox))
        }
        Kind::SharedMemory => {
            let (to_child, inbox) = ipc::channel().map_err(io_text("channel"))?;
            let (outbox, from_child) = ipc::channel().map_err(io_text("channel"))?;
            (Hello::SharedMemory(to_child, from_child), ChildEnds::SharedMemory(inbox, outbox))
        }
    };
    bootstrap.send(hello).map_err(ipc_text("sending the channels to the parent"))?;
    Ok(ends)
}

/// Echoes until the parent closes its sending end; returns how many messages it echoed.
fn serve(kind: Kind, name: String) -> Result<u64, String> {
    let mut echoed = 0;
    let ended = |error: IpcError| match error {
        IpcError::Disconnected => None,
        other => Some(format!("receiving: {other}")),
    };
    match connect(kind, name)? {
        ChildEnds::Bytes(inbox, outbox) => loop {
            match inbox.recv() {
                Ok(message) => outbox.send(&message).map_err(io_text("sending back"))?,
                Err(error) => return ended(error).map_or(Ok(echoed), Err),
            }
            echoed += 1;
        },
        ChildEnds::Typed(inbox, outbox) => loop {
            match inbox.recv() {
                Ok(message) => outbox.send(message).map_err(ipc_text("sending back"))?,
                Err(error) => return ended(error).map_or(Ok(echoed), Err),
            }
            echoed += 1;
        },
        ChildEnds::SharedMemory(inbox, outbox) => loop {
            match inbox.recv() {
                // A new region with the bytes read from the received one, as a sender would
                // make for a message of its own.
                Ok(region) => outbox
                    .send(IpcSharedMemory::from_bytes(&region))
                    .map_err(ipc_text("sending back"))?,
                Err(error) => return ended(error).map_or(Ok(echoed), Err),
            }
            echoed += 1;
        },
    }
}

/// The parent's ends of a ping-pong.
enum Link {
    Bytes(IpcBytesSender, IpcBytesReceiver),
    Typed(IpcSender<Vec<u8>>, IpcReceiver<Vec<u8>>),
    SharedMemory(IpcSender<IpcSharedMemory>, IpcReceiver<IpcSharedMemory>),
}

/// Kills the child when the time limit passes, unless stopped first.
struct Watchdog {
    stop: Option<mpsc::Sender<()>>,
    fired: Arc<AtomicBool>,
    thread: Option<JoinHandle<()>>,
}

impl Watchdog {
    fn start(child: Arc<Mutex<Child>>, limit: Duration) -> Watchdog {
        let (stop, stopped) = mpsc::channel::<()>();
        let fired = Arc::new(AtomicBool::new(false));
        let flag = Arc::clone(&fired);
        let thread = thread::spawn(move || {
            if let Err(RecvTimeoutError::Timeout) = stopped.recv_timeout(limit) {
                flag.store(true, Ordering::SeqCst);
                if let Ok(mut child) = child.lock() {
                    let _ = child.kill();
                }
            }
        });
        Watchdog { stop: Some(stop), fired, thread: Some(thread) }
    }

    fn fired(&self) -> bool {
        self.fired.load(Ordering::SeqCst)
    }

    fn stop(&mut self) {
        drop(self.stop.take());
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

/// An echoing child process reached through ipc-channel. Dropping it without
/// [`finish`](Peer::finish) kills and reaps the child.
pub struct Peer {
    kind: Kind,
    link: Option<Link>,
    child: Arc<Mutex<Child>>,
    limit: Duration,
    watchdog: Watchdog,
    reaped: bool,
}

impl std::fmt::Debug for Peer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Peer").field("kind", &self.kind).field("limit", &self.limit).finish()
    }
}

impl Peer {
    /// Starts `command` as an echoing child of `kind` and connects to it. The child gets
    /// [`CONNECT_LIMIT`] to connect and `limit` in all (then the watchdog kills it). A child
    /// that exits or does not connect in time is killed, reaped, and an error says so.
    ///
    /// `command` must run a program whose `main` calls [`serve_if_child`] (or
    /// [`child_role`]) first: usually [`this_program`].
    pub fn spawn(kind: Kind, mut command: Command, limit: Duration) -> Result<Peer, String> {
        let (server, name) =
            IpcOneShotServer::<Hello>::new().map_err(io_text("making the one-shot server"))?;
        command.env(CHILD_ENV, format!("{}:{name}", kind.name())).stdin(Stdio::null());
        let mut child = command.spawn().map_err(io_text("starting the echo child"))?;
        let (accepted, acceptance) = mpsc::channel();
        let acceptor = thread::spawn(move || {
            let _ = accepted.send(server.accept().map(|(_, hello)| hello));
        });
        let deadline = Instant::now() + CONNECT_LIMIT.min(limit);
        let hello = loop {
            match acceptance.recv_timeout(Duration::from_millis(2)) {
                Ok(Ok(hello)) => break Ok(hello),
                Ok(Err(error)) => break Err(format!("accepting the child's connection: {error}")),
                Err(RecvTimeoutError::Disconnected) => {
                    break Err("the accepting thread ended without an answer".into());
                }
                Err(RecvTimeoutError::Timeout) => {}
            }
            match child.try_wait() {
                Ok(Some(status)) => {
                    break Err(format!(
                        "the echo child exited ({status}) before it connected; \
                         IpcOneShotServer::accept would have waited for it forever \
                         (servo/ipc-channel#201), so the accept was abandoned"
                    ));
                }
                Ok(None) => {}
                Err(error) => break Err(format!("waiting for the echo child: {error}")),
            }
            if Instant::now() > deadline {
                break Err(format!(
                    "the echo child did not connect within {:?}; it was killed",
                    CONNECT_LIMIT.min(limit)
                ));
            }
        };
        let hello = match hello {
            Ok(hello) => {
                let _ = acceptor.join();
                hello
            }
            Err(error) => {
                let _ = child.kill();
                let _ = child.wait();
                // Unblock the accepting thread: connect to the server and hang up at once.
                drop(IpcSender::<Hello>::connect(name));
                if acceptance.recv_timeout(Duration::from_secs(2)).is_ok() {
                    let _ = acceptor.join();
                }
                return Err(error);
            }
        };
        let link = match hello {
            Hello::Bytes(to_child, from_child) => Link::Bytes(to_child, from_child),
            Hello::Typed(to_child, from_child) => Link::Typed(to_child, from_child),
            Hello::SharedMemory(to_child, from_child) => Link::SharedMemory(to_child, from_child),
        };
        let child = Arc::new(Mutex::new(child));
        let watchdog = Watchdog::start(Arc::clone(&child), limit);
        Ok(Peer { kind, link: Some(link), child, limit, watchdog, reaped: false })
    }

    /// Which way of sending this peer uses.
    pub fn kind(&self) -> Kind {
        self.kind
    }

    /// An error for `what`, or for the watchdog if it killed the child.
    fn failed(&self, what: &str, error: impl std::fmt::Display) -> String {
        if self.watchdog.fired() {
            format!(
                "the echo child was killed after the time limit of {:?} ({what}: {error})",
                self.limit
            )
        } else {
            format!("{what}: {error}")
        }
    }

    /// Sends `message` to the child and waits until it has come back into `reply`.
    ///
    /// Bytes and typed: `reply` becomes the received `Vec` (ipc-channel allocates it). Typed
    /// sends take the message by value, so it is copied into a `Vec` first, as a user would.
    /// Shared memory: the message is copied into a new region, sent, and the region that
    /// comes back is copied into `reply`.
    pub fn round_trip(&self, message: &[u8], reply: &mut Vec<u8>) -> Result<(), String> {
        let link = self.link.as_ref().ok_or("the peer is closed")?;
        match link {
            Link::Bytes(to_child, from_child) => {
                to_child.send(message).map_err(|e| self.failed("sending", e))?;
                *reply = from_child.recv().map_err(|e| self.failed("receiving", e))?;
            }
            Link::Typed(to_child, from_child) => {
                to_child.send(message.to_vec()).map_err(|e| self.failed("sending", e))?;
                *reply = from_child.recv().map_err(|e| self.failed("receiving", e))?;
            }
            Link::SharedMemory(to_child, from_child) => {
                let region = IpcSharedMemory::from_bytes(message);
                to_child.send(region).map_err(|e| self.failed("sending", e))?;
                let back = from_child.recv().map_err(|e| self.failed("receiving", e))?;
                reply.clear();
                reply.extend_from_slice(&back);
            }
        }
        Ok(())
    }

    /// Closes the channel (the child sees it and exits) and waits for the child: an error if
    /// it does not exit cleanly within a few seconds (it is then killed) or the watchdog had
    /// to kill it.
    pub fn finish(mut self) -> Result<(), String> {
        self.link = None;
        let status = self.reap(EXIT_LIMIT);
        self.watchdog.stop();
        if self.watchdog.fired() {
            return Err(format!(
                "the echo child was killed after the time limit of {:?}",
                self.limit
            ));
        }
        match status {
            Some(status) if status.success() => Ok(()),
            Some(status) => Err(format!("the echo child ended with {status}")),
            None => {
                Err(format!("the echo child did not exit within {EXIT_LIMIT:?}; it was killed"))
            }
        }
    }

    /// Waits up to `patience` for the child, then kills it; `None` if it had to be killed.
    fn reap(&mut self, patience: Duration) -> Option<ExitStatus> {
        if self.reaped {
            return None;
        }
        self.reaped = true;
        let started = Instant::now();
        let Ok(mut child) = self.child.lock() else { return None };
        loop {
            match child.try_wait() {
                Ok(Some(status)) => return Some(status),
                Ok(None) if started.elapsed() < patience => thread::sleep(Duration::from_millis(2)),
                _ => {
                    let _ = child.kill();
                    let _ = child.wait();
                    return None;
                }
            }
        }
    }
}

impl Drop for Peer {
    fn drop(&mut self) {
        self.link = None;
        self.reap(Duration::ZERO);
        self.watchdog.stop();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The child side when this test binary is started as a peer; otherwise it does nothing.
    #[test]
    fn child_entry() {
        exit_if_test_child();
    }

    #[test]
    fn every_kind_echoes_small_and_fragmented_messages() {
        for kind in Kind::ALL {
            let peer = Peer::spawn(kind, test_child("tests::child_entry"), Duration::from_secs(60))
                .unwrap();
            let mut reply = Vec::new();
            // 300 000 B is above the largest single fragment (about 212 KiB here).
            for size in [1usize, 1000, 300_000] {
                let message: Vec<u8> = (0..size).map(|i| (i % 251) as u8).collect();
                peer.round_trip(&message, &mut reply).unwrap();
                assert!(reply == message, "{kind:?}, {size} B");
            }
            peer.finish().unwrap();
        }
    }

    /// This test binary as a child whose role replaces the kind `spawn` puts in CHILD_ENV
    /// (`sh` rewrites the variable, keeping the server's name).
    fn child_in_role(role: &str) -> Command {
        let exe = std::env::current_exe().unwrap();
        let mut command = Command::new("sh");
        command
            .arg("-c")
            .arg(format!(
                "{CHILD_ENV}={role}:${{{CHILD_ENV}#*:}} exec '{}' \
                 --exact tests::child_entry --test-threads=1 -q",
                exe.display()
            ))
            .stdout(Stdio::null());
        command
    }

    #[test]
    fn a_child_that_dies_before_connecting_is_an_error_not_a_hang() {
        let error =
            Peer::spawn(Kind::Bytes, child_in_role("exit-before-connect"), Duration::from_secs(60))
                .unwrap_err();
        assert!(error.contains("before it connected"), "{error}");
    }

    #[test]
    fn a_child_that_stops_answering_is_killed_by_the_watchdog() {
        let peer =
            Peer::spawn(Kind::Bytes, child_in_role("connect-then-hang"), Duration::from_secs(2))
                .unwrap();
        let error = peer.round_trip(b"hello", &mut Vec::new()).unwrap_err();
        assert!(error.contains("time limit"), "{error}");
        assert!(peer.finish().unwrap_err().contains("time limit"));
    }

    #[test]
    fn the_version_is_the_locked_one() {
        let lock =
            std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/../../Cargo.lock"))
                .unwrap();
        let entry = format!("name = \"ipc-channel\"\nversion = \"{IPC_CHANNEL_VERSION}\"");
        assert!(
            lock.contains(&entry),
            "Cargo.lock has another ipc-channel than {IPC_CHANNEL_VERSION}"
        );
    }
}
