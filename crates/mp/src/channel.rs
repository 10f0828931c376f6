//! Pipes between processes: Python's `multiprocessing.Pipe`, typed.
//!
//! [`pipe`] gives two [`Connection`]s that both send and receive (Python's `Pipe()`);
//! [`pipe_simplex`] gives a [`Sender`] and a [`Receiver`] (Python's `Pipe(duplex=False)`, which
//! returns them the other way round). Endpoints are handed to other processes by passing them in
//! a [`Process`](crate::Process) argument, a pool task, or a message on another pipe.
//!
//! * `recv` blocks until a message arrives; when the other end is gone it returns
//!   [`Error::Disconnected`] (Python raises `EOFError`).
//! * `send` returns once the message is handed to the operating system, or queued behind it when
//!   the receiver is not reading: two processes that both send before they receive never
//!   deadlock, whatever the message sizes. With more than 64 MiB queued, a send waits while
//!   the receiver takes the queue (up to 50 ms without progress), so a fast sender runs at its
//!   receiver's pace; and a message that would take the queue beyond half the memory this
//!   process has left is refused with [`Error::OutOfMemory`] (the queued ones still go).
//!   Queued messages are still delivered after the sending handle is dropped, and a process
//!   waits for them before it exits. A send never returns `Ok` for a receiving end that closed
//!   before its message was in: it fails with [`Error::Disconnected`]; if the receiver dies
//!   after a message was queued, the next send fails.
//! * An end can be shared by several processes (pass it to each, or clone a [`Sender`] or
//!   [`Receiver`] first): messages from several senders never interleave, and each message goes
//!   to exactly one of several receivers, as in Python's work-queue pattern.
//! * Typed values are encoded with postcard. Bulk data should go through
//!   [`Connection::send_bytes`] or [`Connection::send_slice`], which copy the bytes as they are.
//! * Messages travel through shared memory (a ring per direction, created with the pipe); the
//!   copies in and out of the ring overlap for large messages. A waiting `recv` busy-polls for
//!   50 µs before it sleeps, as MPI does, so a quick reply costs well under a microsecond
//!   instead of a wake-up of the other CPU.
//!   [`Connection::recv_bytes_into`] reuses one buffer for message after message.

use std::{
    borrow::Cow,
    collections::VecDeque,
    fmt,
    io::{Read, Write},
    marker::PhantomData,
    os::fd::{AsFd, OwnedFd},
    os::unix::net::UnixStream,
    sync::{
        Arc, Condvar, Mutex,
        atomic::{AtomicBool, AtomicU32, AtomicUsize, Ordering, fence},
    },
    time::{Duration, Instant},
};

use serde::{Deserialize, Deserializer, Serialize, Serializer, de::DeserializeOwned};

use crate::{
    Error, MessageKind, Peer, Result,
    ring::{self, Poison, Ring, RingFile},
    sys,
    wire::{
        self, BodyKind, Frame, FrameReader, OutFrame, Outbox, PassedFd, ReadOutcome, RingWrite,
    },
};

/// How long `send` keeps writing directly to a full socket or ring before it queues the rest.
const SEND_PATIENCE: Duration = Duration::from_millis(5);
/// With this much queued behind a receiver, a send waits while the receiver takes the queue
/// (see `Link::wait_while_queue_drains`), and looks at how much memory this process has left
/// before it adds to the queue (see `Link::hand_to_flusher`). Below it, neither: a send of a
/// small message never reads /proc nor sleeps.
const QUEUE_SOFT_LIMIT: usize = 64 << 20;
/// How long a send waiting for the queue to drain sleeps between looks.
const DRAIN_NAP: Duration = Duration::from_micros(200);
/// How long a send waits for the queue to move before it queues its message anyway: longer
/// than a receiver's usual pause between two receives, short enough for a rare deadlock
/// avoided (see `Link::wait_while_queue_drains`).
const DRAIN_PATIENCE: Duration = Duration::from_millis(50);
/// How long a receiver (or a sender facing a full ring) busy-polls shared memory before it
/// goes to sleep in the kernel. Waking a sleeping process on another CPU costs about 20 µs on
/// the development machine; a reply that comes sooner than this is caught without that cost.
const SPIN: Duration = Duration::from_micros(50);
/// Among siblings (see [`Waiting::AmongSiblings`]), the first part of [`SPIN`] spins without
/// pause; after it, a spinning process yields its CPU now and then, so that on a machine with
/// more runnable processes than CPUs the sibling with the work can run.
const PURE_SPIN: Duration = Duration::from_micros(10);

/// How the waits of a connection spend their [`SPIN`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Waiting {
    /// One peer process at the other end, which tells through the rings which CPU it runs on
    /// (`Ring::writer_cpu`). The wait spins only while that CPU is another one, and sleeps at
    /// once when the peer shares this CPU: spinning there only keeps the peer from running.
    /// It does not yield either, unless this process is a rank of a group with more ranks
    /// than CPUs ([`note_group`]): a yield on a busy machine hands the CPU to another job for
    /// its whole time slice (about 1 ms a message, measured under `mp-bench --load 2`), while
    /// in a crowded group it hands it to a sibling rank with work (a token ring of 4 ranks on
    /// 2 CPUs takes a third longer per hop without the yields). Pipes, and the `Comm` links
    /// between ranks.
    ForOnePeer,
    /// The control connections between a parent and its workers: a pool has more workers than
    /// CPUs by design, and the worker or parent with the work may be waiting for this CPU.
    /// The wait spins, then yields between looks, which passes the CPU among siblings without
    /// a wake-up (a pool's `map` with chunksize 1 costs twice as much per task when its
    /// workers sleep instead).
    AmongSiblings,
}

/// A bounded busy-wait: call [`Spin::turn`] between looks at shared memory.
struct Spin<'a> {
    started: Instant,
    until: Instant,
    turns: u32,
    /// The ring the awaited peer writes, which says where the peer runs (only for
    /// [`Waiting::ForOnePeer`]).
    peer: Option<&'a Ring>,
}

impl<'a> Spin<'a> {
    /// Spins for [`SPIN`], or until `limit` if that comes first, yielding as
    /// [`Waiting::AmongSiblings`] does.
    fn new(limit: Option<Instant>) -> Spin<'a> {
        let started = Instant::now();
        let until = limit.map_or(started + SPIN, |limit| limit.min(started + SPIN));
        Spin { started, until, turns: 0, peer: None }
    }

    /// A spin waiting for what the writer of `peer` sends, in the manner of `waiting`.
    fn for_writer_of(limit: Option<Instant>, peer: &'a Ring, waiting: Waiting) -> Spin<'a> {
        let mut spin = Spin::new(limit);
        if waiting == Waiting::ForOnePeer {
            spin.peer = Some(peer);
            if shares_this_cpu(peer) {
                spin.until = spin.started;
            }
        }
        spin
    }

    /// Waits a moment; false once the spin is over (the caller then sleeps).
    fn turn(&mut self) -> bool {
        self.turns = self.turns.wrapping_add(1);
        if !self.turns.is_multiple_of(16) {
            std::hint::spin_loop();
            return true;
        }
        let now = Instant::now();
        if now >= self.until {
            return false;
        }
        // The peer may have moved onto this CPU since the spin started.
        if self.peer.is_some_and(shares_this_cpu) {
            return false;
        }
        let yields = self.peer.is_none() || CROWDED_GROUP.load(Ordering::Relaxed);
        if yields && now.duration_since(self.started) >= PURE_SPIN {
            std::thread::yield_now();
        }
        true
    }
}

/// Whether this process is a rank of a group with more ranks than it has CPUs (see
/// [`Waiting::ForOnePeer`]).
static CROWDED_GROUP: AtomicBool = AtomicBool::new(false);

/// Tells the waits of this process that it is one rank of a group of `size` (a rank started by
/// `launch` calls this before the rank's function).
pub(crate) fn note_group(size: usize) {
    let cpus = sys::affinity().map_or(1, |cpus| cpus.len());
    CROWDED_GROUP.store(crowds(size, cpus), Ordering::Relaxed);
}

/// Whether a group of `size` processes crowds `cpus` CPUs.
fn crowds(size: usize, cpus: usize) -> bool {
    size > cpus
}

/// Whether the process writing `ring` last said it runs on the CPU this thread runs on.
fn shares_this_cpu(ring: &Ring) -> bool {
    let here = sys::current_cpu();
    here.is_some() && ring.writer_cpu() == here
}

/// Longest single sleep of a waiting ring reader or writer: between sleeps it checks that the
/// process holding the write lock is still alive.
const CHECK_EVERY: Duration = Duration::from_millis(100);
/// A send on a pipe checks that the receiving end is still open (a system call) only when this
/// long has passed since the last check; in between, a receiver's death shows when the ring is
/// full, or at once once this process has seen the end of the stream.
const HANGUP_CHECK_EVERY: Duration = Duration::from_millis(1);
/// ... and it reads the clock for that only every this many sends.
const SENDS_PER_CLOCK_LOOK: u32 = 16;

/// One end of a stream socket with framing, shared by the typed endpoint types. Pipes also
/// have a shared-memory ring per direction (`ring.rs`) that carries their frames.
pub(crate) struct Link {
    fd: OwnedFd,
    name: &'static str,
    rings: Option<RingEnds>,
    waiting: Waiting,
    /// The other end is known to be closed.
    peer_gone: AtomicBool,
    reader: Mutex<ReadSide>,
    writer: Mutex<WriteSide>,
}

/// This end's view of a pipe's rings.
struct RingEnds {
    file: Arc<RingFile>,
    side: u8,
    outbound: Ring,
    inbound: Ring,
    /// Identifies this `Link` in the write lock: pid << 32 | a number unique in this process.
    token: u64,
}

impl RingEnds {
    /// Gives up sending: poisons the outbound ring if a message was left half written (the
    /// reader could never find the next frame), and frees the write lock.
    fn abandon_message(&self, mid_message: bool) {
        if mid_message {
            self.outbound.poison(Poison::Writer);
        }
        self.outbound.unlock(self.token);
    }
}

#[derive(Default)]
struct ReadSide {
    frames: FrameReader,
    /// Descriptors that arrived on the socket for frames in the ring, in order.
    fds: VecDeque<OwnedFd>,
    /// The socket reached end of stream: nobody can write more.
    peer_closed: bool,
    /// This link holds the inbound ring's read lock (from the start of a receive to the end
    /// of its message; across calls when a receive timed out in the middle of one).
    read_locked: bool,
}

#[derive(Default)]
struct WriteSide {
    outbox: Outbox,
    /// Set once a send (or the flusher finishing one) failed for good; every later send
    /// fails the same way, so a message the flusher could not deliver is never silent.
    broken: Option<Broken>,
    /// When a send last checked that the peer is still there.
    last_hangup_check: Option<Instant>,
    /// Sends since the clock was last read, modulo [`SENDS_PER_CLOCK_LOOK`].
    sends_since_clock: u32,
    /// The outbox's progress when a send last gave up waiting for it to drain: until it
    /// moves, the next sends queue without waiting.
    stalled_at: Option<u64>,
}

impl fmt::Debug for Link {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Link")
            .field("fd", &self.fd)
            .field("name", &self.name)
            .field("shared_memory", &self.rings.is_some())
            .finish()
    }
}

/// Why the sending side of a link is unusable (`Error` is not `Clone`).
#[derive(Clone, Debug)]
enum Broken {
    Disconnected,
    Corrupted(String),
    Failed(String),
}

impl Broken {
    fn of(error: &Error) -> Broken {
        match error {
            Error::Disconnected { .. } => Broken::Disconnected,
            Error::Corrupted { message } => Broken::Corrupted(message.clone()),
            other => Broken::Failed(other.to_string()),
        }
    }

    fn error(&self, name: &str) -> Error {
        match self {
            Broken::Disconnected => Error::disconnected(name),
            Broken::Corrupted(message) => Error::Corrupted { message: message.clone() },
            Broken::Failed(message) => {
                Error::io(format!("sending on {name}"), std::io::Error::other(message.clone()))
            }
        }
    }
}

fn link_token() -> u64 {
    static SERIAL: AtomicU32 = AtomicU32::new(1);
    (u64::from(std::process::id()) << 32) | u64::from(SERIAL.fetch_add(1, Ordering::Relaxed))
}

impl Link {
    pub(crate) fn new(fd: OwnedFd, name: &'static str) -> Result<Arc<Link>> {
        Link::with_rings(fd, None, Waiting::ForOnePeer, name)
    }

    /// A link whose frames travel through the rings of `file`, this being end `side`.
    pub(crate) fn with_rings(
        fd: OwnedFd,
        rings: Option<(Arc<RingFile>, u8)>,
        waiting: Waiting,
        name: &'static str,
    ) -> Result<Arc<Link>> {
        sys::set_nonblocking(fd.as_fd())
            .map_err(|error| Error::io("preparing a connection", error))?;
        let rings = rings.map(|(file, side)| RingEnds {
            outbound: file.ring(side, true),
            inbound: file.ring(side, false),
            file,
            side,
            token: link_token(),
        });
        Ok(Arc::new(Link {
            fd,
            name,
            rings,
            waiting,
            peer_gone: AtomicBool::new(false),
            reader: Mutex::default(),
            writer: Mutex::default(),
        }))
    }

    /// The two ends of a pipe: a socket pair plus shared-memory rings.
    pub(crate) fn pair(name: &'static str) -> Result<(Arc<Link>, Arc<Link>)> {
        let (left, right) = sys::socket_pair(sys::SocketKind::Stream)
            .map_err(|error| Error::io("creating a pipe (socketpair)", error))?;
        let file = RingFile::create()
            .map_err(|error| Error::io("creating a pipe's shared memory (memfd)", error))?;
        Ok((
            Link::with_rings(left, Some((Arc::clone(&file), 0)), Waiting::ForOnePeer, name)?,
            Link::with_rings(right, Some((file, 1)), Waiting::ForOnePeer, name)?,
        ))
    }

    fn lock_writer(&self) -> std::sync::MutexGuard<'_, WriteSide> {
        self.writer.lock().unwrap_or_else(|poison| poison.into_inner())
    }

    fn lock_reader(&self) -> std::sync::MutexGuard<'_, ReadSide> {
        self.reader.lock().unwrap_or_else(|poison| {
            let mut reader = poison.into_inner();
            // A receive that panicked (a bug) may have left its landing in the reader: take it
            // back, with what it held, so that no later body goes into it and is lost.
            drop(reader.frames.take_landing());
            reader
        })
    }

    /// Sends one frame; see the module docs for when this returns.
    pub(crate) fn send_frame(self: &Arc<Self>, frame: OutFrame<'_>) -> Result<()> {
        let mut writer = self.lock_writer();
        if writer.outbox.queued_bytes() >= QUEUE_SOFT_LIMIT {
            writer = self.wait_while_queue_drains(writer);
        }
        if let Some(broken) = &writer.broken {
            return Err(broken.error(self.name));
        }
        if !writer.outbox.is_empty() {
            // A flusher is draining earlier messages: keep the order by queueing behind them.
            return self.hand_to_flusher(writer, frame);
        }
        if let Some(rings) = &self.rings {
            return self.send_frame_ring(rings, writer, frame);
        }
        match wire::write_with_patience(self.fd.as_fd(), frame, SEND_PATIENCE) {
            Ok(None) => Ok(()),
            Ok(Some(rest)) => self.hand_to_flusher(writer, rest),
            Err(error) if is_peer_gone(&error) => {
                writer.broken = Some(Broken::Disconnected);
                Err(Error::disconnected(self.name))
            }
            Err(error) => Err(Error::io(format!("sending on {}", self.name), error)),
        }
    }

    /// Waits while more than [`QUEUE_SOFT_LIMIT`] is queued behind the receiver and the
    /// receiver keeps taking it, as Python's `send` waits for a reader: a loop of large sends
    /// then runs at the receiver's pace instead of copying ever more into the queue. Stops
    /// waiting once nothing went out for [`DRAIN_PATIENCE`]: the receiver may be sending to
    /// us, and waiting then could be a deadlock, so the message is queued as before, and so are
    /// the next ones until the queue moves again (two processes that send to each other before
    /// they receive pay the patience once, not per message).
    fn wait_while_queue_drains<'w>(
        &'w self,
        mut writer: std::sync::MutexGuard<'w, WriteSide>,
    ) -> std::sync::MutexGuard<'w, WriteSide> {
        let mut progress = writer.outbox.progress();
        if writer.stalled_at == Some(progress) {
            return writer;
        }
        let mut last_change = Instant::now();
        while writer.outbox.queued_bytes() >= QUEUE_SOFT_LIMIT && writer.broken.is_none() {
            drop(writer);
            std::thread::sleep(DRAIN_NAP);
            writer = self.lock_writer();
            let now = writer.outbox.progress();
            if now != progress {
                progress = now;
                last_change = Instant::now();
            } else if last_change.elapsed() >= DRAIN_PATIENCE {
                writer.stalled_at = Some(progress);
                break;
            }
        }
        writer
    }

    /// Queues (the rest of) `frame` for a flusher thread and returns `Ok`, but only while the
    /// receiving end is open: a message queued for a dead receiver would be lost after an
    /// `Ok`. If the receiver dies later, the flusher's failure is the error of the next send.
    ///
    /// The queue is bounded by memory, not by a count: a message that would take the queue
    /// beyond half of what this process can still hold ([`sys::memory_headroom`]) is refused
    /// with [`Error::OutOfMemory`], as is one whose copy cannot be allocated. Nothing is lost
    /// then: the messages already queued still go, and the connection stays usable. (Before,
    /// a loop of large sends to a receiver that started reading late grew until the kernel
    /// killed the process: 24 GB here; `send_frame` now also waits while the receiver takes a
    /// queue above [`QUEUE_SOFT_LIMIT`].) The first message is always taken, so that two
    /// processes that send to each other before they receive never wait for each other.
    fn hand_to_flusher(
        self: &Arc<Self>,
        mut writer: std::sync::MutexGuard<'_, WriteSide>,
        frame: OutFrame<'_>,
    ) -> Result<()> {
        if self.peer_hung_up() {
            writer.broken = Some(Broken::Disconnected);
            // (Behind queued messages, the flusher owns the write lock.)
            if writer.outbox.is_empty()
                && let Some(rings) = &self.rings
            {
                rings.abandon_message(!frame.untouched());
            }
            return Err(Error::disconnected(self.name));
        }
        let first = writer.outbox.is_empty();
        let queued = writer.outbox.queued_bytes();
        if !first && queued >= QUEUE_SOFT_LIMIT {
            let headroom = sys::memory_headroom().unwrap_or(u64::MAX);
            if (queued + frame.remaining()) as u64 > headroom / 2 {
                return Err(Error::OutOfMemory {
                    bytes: frame.remaining() as u64,
                    what: format!(
                        "queueing a message on {} behind {} that its receiver has not taken \
                         yet, with room for {} more (the queued messages still go; receive them \
                         on the other side, or in another thread, before sending more)",
                        self.name,
                        crate::units::Bytes(queued as u64),
                        crate::units::Bytes(headroom),
                    ),
                });
            }
        }
        let untouched = frame.untouched();
        if let Err(bytes) = writer.outbox.try_push(frame) {
            let error = Error::OutOfMemory {
                bytes: bytes as u64,
                what: format!(
                    "queueing a message on {} that its receiver has not taken yet",
                    self.name
                ),
            };
            if first {
                // A message already partly written cannot be taken back: its rest is lost, and
                // so is the stream after it.
                if !untouched {
                    writer.broken = Some(Broken::of(&error));
                }
                if let Some(rings) = &self.rings {
                    rings.abandon_message(!untouched);
                }
            }
            return Err(error);
        }
        drop(writer);
        if first {
            start_flusher(Arc::clone(self));
        }
        Ok(())
    }

    fn send_frame_ring(
        self: &Arc<Self>,
        rings: &RingEnds,
        mut writer: std::sync::MutexGuard<'_, WriteSide>,
        mut frame: OutFrame<'_>,
    ) -> Result<()> {
        // Like a socket, a ring refuses messages once the reader is known to be gone.
        if self.peer_gone_lately(&mut writer) {
            writer.broken = Some(Broken::Disconnected);
            return Err(Error::disconnected(self.name));
        }
        match self.take_write_lock(rings, Some(SEND_PATIENCE)) {
            Ok(true) => {}
            // Another holder of this sending end is busy: a flusher sends it later.
            Ok(false) => return self.hand_to_flusher(writer, frame),
            Err(error) => {
                let error = self.ring_error(error);
                writer.broken = Some(Broken::of(&error));
                return Err(error);
            }
        }
        // Read the clock only once the ring is full: a small message never needs it.
        let mut last_progress: Option<Instant> = None;
        loop {
            let outcome = frame.write_ring(&rings.outbound, self.fd.as_fd());
            match outcome {
                Ok(RingWrite::Done) => {
                    rings.outbound.unlock(rings.token);
                    return Ok(());
                }
                Ok(RingWrite::Progress) => last_progress = Some(Instant::now()),
                Ok(RingWrite::Full | RingWrite::SocketFull) => {}
                Err(error) => return self.give_up_send(rings, &mut writer, &frame, error),
            }
            let until = *last_progress.get_or_insert_with(Instant::now) + SEND_PATIENCE;
            let waited = match outcome {
                Ok(RingWrite::SocketFull) => self.wait_socket_writable(until),
                _ => self.wait_for_space(rings, until),
            };
            match waited {
                Ok(true) => {}
                // A reader inside `recv` keeps making room (however slowly it is scheduled):
                // waiting for it cannot deadlock, and spares a copy of the rest of the message.
                Ok(false) if rings.outbound.reader_is_receiving() => {
                    last_progress = Some(Instant::now());
                }
                // The reader has not made room for a while (it may be sending to us): a
                // flusher thread finishes the message, holding the write lock till then.
                Ok(false) => return self.hand_to_flusher(writer, frame),
                Err(error) => return self.give_up_send(rings, &mut writer, &frame, error),
            }
        }
    }

    /// Ends a send that failed: the link stays broken (every later send fails the same way),
    /// and a half-written message poisons the ring.
    fn give_up_send(
        &self,
        rings: &RingEnds,
        writer: &mut WriteSide,
        frame: &OutFrame<'_>,
        error: std::io::Error,
    ) -> Result<()> {
        let error = self.ring_error(error);
        writer.broken = Some(Broken::of(&error));
        rings.abandon_message(!frame.untouched());
        Err(error)
    }

    fn ring_error(&self, error: std::io::Error) -> Error {
        if is_peer_gone(&error) {
            Error::disconnected(self.name)
        } else if error.kind() == std::io::ErrorKind::InvalidData {
            Error::Corrupted { message: error.to_string() }
        } else {
            Error::io(format!("sending on {}", self.name), error)
        }
    }

    /// [`Link::peer_hung_up`], known or checked at most every [`HANGUP_CHECK_EVERY`].
    fn peer_gone_lately(&self, writer: &mut WriteSide) -> bool {
        if self.peer_gone.load(Ordering::Relaxed) {
            return true;
        }
        // Even the clock costs tens of nanoseconds here: look at it every few sends only.
        writer.sends_since_clock = (writer.sends_since_clock + 1) % SENDS_PER_CLOCK_LOOK;
        if writer.sends_since_clock != 1 && writer.last_hangup_check.is_some() {
            return false;
        }
        let now = Instant::now();
        if writer
            .last_hangup_check
            .is_some_and(|last| now.duration_since(last) < HANGUP_CHECK_EVERY)
        {
            return false;
        }
        writer.last_hangup_check = Some(now);
        self.peer_hung_up()
    }

    /// True when the other end of the socket is closed (every process holding it is gone).
    fn peer_hung_up(&self) -> bool {
        let interest = sys::Ready { hangup: true, ..Default::default() };
        let gone = matches!(sys::poll(&[(self.fd.as_fd(), interest)], Some(Duration::ZERO)), Ok(ready) if ready[0].hangup);
        if gone {
            self.peer_gone.store(true, Ordering::Relaxed);
        }
        gone
    }

    /// Takes the ring's write lock, waiting while another process sharing this sending end
    /// writes a message; a holder that died makes the pipe unusable (an error, not a hang).
    /// True once taken; false if `patience` passed first.
    fn take_write_lock(
        &self,
        rings: &RingEnds,
        patience: Option<Duration>,
    ) -> std::io::Result<bool> {
        let mut pause = Duration::from_micros(20);
        let mut until = None;
        loop {
            let Some(owner) = rings.outbound.try_lock(rings.token)? else {
                return Ok(true);
            };
            let now = Instant::now();
            let until = *until.get_or_insert_with(|| patience.map(|patience| now + patience));
            let owner_pid = (owner >> 32) as u32;
            if owner_pid != std::process::id() && !ring::process_alive(owner_pid) {
                rings.outbound.poison(Poison::Writer);
                continue;
            }
            // Before giving up on the lock: a caller that gives up hands its message to a
            // flusher, which is only right for a live receiver.
            if self.peer_hung_up() {
                return Err(std::io::ErrorKind::BrokenPipe.into());
            }
            if until.is_some_and(|until| now >= until) {
                return Ok(false);
            }
            std::thread::sleep(pause);
            pause = (pause * 2).min(Duration::from_millis(1));
        }
    }

    /// Waits until the outbound ring has free space: true, or `until` passes: false. Spins
    /// first, then sleeps on a futex; the reader's death ends the wait with `BrokenPipe`.
    fn wait_for_space(&self, rings: &RingEnds, until: Instant) -> std::io::Result<bool> {
        // The reader frees the space: it writes the other ring.
        rings.outbound.publish_writer_cpu(sys::current_cpu());
        let mut spin = Spin::for_writer_of(Some(until), &rings.inbound, self.waiting);
        while rings.outbound.free()? == 0 {
            if spin.turn() {
                continue;
            }
            // The receiver's death first: `false` makes the caller hand the rest of its
            // message to a flusher (or wait on), which is only right for a live receiver.
            if self.peer_hung_up() {
                return Err(std::io::ErrorKind::BrokenPipe.into());
            }
            let now = Instant::now();
            if now >= until {
                return Ok(false);
            }
            rings.outbound.wait_for_space((until - now).min(CHECK_EVERY))?;
        }
        Ok(true)
    }

    fn wait_socket_writable(&self, until: Instant) -> std::io::Result<bool> {
        let now = Instant::now();
        if now >= until {
            if self.peer_hung_up() {
                return Err(std::io::ErrorKind::BrokenPipe.into());
            }
            return Ok(false);
        }
        let interest = sys::Ready { writable: true, ..Default::default() };
        let ready = sys::poll(&[(self.fd.as_fd(), interest)], Some(until - now))?;
        if ready[0].hangup {
            return Err(std::io::ErrorKind::BrokenPipe.into());
        }
        Ok(true)
    }

    pub(crate) fn send_value<T: Serialize + ?Sized + 'static>(
        self: &Arc<Self>,
        value: &T,
    ) -> Result<()> {
        self.send_encoded(wire::encode(value)?)
    }

    /// Sends a value from [`wire::encode`] or [`wire::encode_postcard`].
    pub(crate) fn send_encoded(
        self: &Arc<Self>,
        (body, fds): (Vec<u8>, Vec<OwnedFd>),
    ) -> Result<()> {
        self.send_frame(OutFrame::new(BodyKind::Value, Vec::new(), Cow::Owned(body), fds)?)
    }

    pub(crate) fn send_bytes(self: &Arc<Self>, bytes: &[u8]) -> Result<()> {
        self.send_frame(OutFrame::new(
            BodyKind::Bytes,
            Vec::new(),
            Cow::Borrowed(bytes),
            Vec::new(),
        )?)
    }

    /// Receives one frame; `Ok(None)` when `timeout` passed first. With `body_buffer`, a body
    /// is received into that buffer (its capacity reused); it is handed back in the frame, or
    /// in `body_buffer` again when no body went into it.
    pub(crate) fn recv_frame_into(
        &self,
        timeout: Option<Duration>,
        body_buffer: &mut Option<Vec<u8>>,
    ) -> Result<Option<Frame>> {
        let mut reader = self.lock_reader();
        if let Some(buffer) = body_buffer.take() {
            reader.frames.offer_body_buffer(buffer);
        }
        let received = self.receive_locked(&mut reader, timeout);
        *body_buffer = reader.frames.take_body_buffer();
        received
    }

    fn receive_locked(
        &self,
        reader: &mut ReadSide,
        timeout: Option<Duration>,
    ) -> Result<Option<Frame>> {
        match &self.rings {
            None => {
                wire::read_frame_blocking(self.fd.as_fd(), &mut reader.frames, timeout, self.name)
            }
            Some(rings) => self.read_frame_ring(rings, reader, timeout),
        }
    }

    /// Receives a message sent with `send_slice` as elements of `E`, straight into `items`'
    /// allocation (grown if it is too small): one copy, and no byte buffer beside the array.
    /// Bytes that are not a whole number of `E`s are an error, as is a typed message.
    pub(crate) fn recv_elements<E: bytemuck::Pod>(
        &self,
        timeout: Option<Duration>,
        items: Vec<E>,
    ) -> Result<Vec<E>> {
        let mut reader = self.lock_reader();
        reader.frames.offer_landing(Box::new(sys::ElementLanding::reusing(items)));
        let received = self.receive_locked(&mut reader, timeout);
        let landing = reader.frames.take_landing();
        drop(reader);
        let frame = match received? {
            Some(frame) => frame,
            None => {
                return Err(Error::Timeout {
                    what: format!("a message on {}", self.name),
                    waited: timeout.unwrap_or_default(),
                });
            }
        };
        let landing: Box<dyn std::any::Any> = landing.expect("offered above");
        let landing = landing.downcast::<sys::ElementLanding<E>>().expect("offered above");
        if frame.kind == BodyKind::Bytes && frame.body.is_empty() {
            // The body is in the landing (or was empty).
            return Ok(landing.into_vec());
        }
        bytes_to_vec(bytes_body(frame)?)
    }

    /// Receives one frame; `Ok(None)` when `timeout` passed first.
    pub(crate) fn recv_frame(&self, timeout: Option<Duration>) -> Result<Option<Frame>> {
        self.recv_frame_into(timeout, &mut None)
    }

    fn read_frame_ring(
        &self,
        rings: &RingEnds,
        reader: &mut ReadSide,
        timeout: Option<Duration>,
    ) -> Result<Option<Frame>> {
        let deadline = timeout.map(|timeout| Instant::now() + timeout);
        if !self.take_read_lock(rings, reader, deadline)? {
            return Ok(None);
        }
        let received = self.read_frame_locked(rings, reader, deadline);
        self.end_read(rings, reader, &received);
        received
    }

    /// Receives one frame, holding the read lock.
    fn read_frame_locked(
        &self,
        rings: &RingEnds,
        reader: &mut ReadSide,
        deadline: Option<Instant>,
    ) -> Result<Option<Frame>> {
        loop {
            match self.read_ring(rings, reader)? {
                ReadOutcome::Frame(mut frame) => {
                    self.take_fds(rings, reader, &mut frame)?;
                    return Ok(Some(frame));
                }
                ReadOutcome::Closed => return Err(Error::disconnected(self.name)),
                ReadOutcome::WouldBlock => {}
            }
            match self.wait_for_data(rings, reader, deadline)? {
                Waited::Data => {}
                Waited::Timeout => return Ok(None),
                Waited::Closed if reader.frames.between_frames() => {
                    return Err(Error::disconnected(self.name));
                }
                Waited::Closed => {
                    return Err(Error::Corrupted {
                        message: "the sending process closed the connection in the middle of a \
                                  message (it probably died while sending)"
                            .into(),
                    });
                }
            }
        }
    }

    /// Takes the inbound ring's read lock for this link, waiting while another process
    /// sharing the receiving end holds it: spinning for [`SPIN`], then asleep on a futex that
    /// the holder bumps when it lets go. A holder that died is taken over (if it had freed
    /// nothing of its message) or poisons the ring (an error, never a hang or a message read
    /// twice). False if `deadline` passed first.
    fn take_read_lock(
        &self,
        rings: &RingEnds,
        reader: &mut ReadSide,
        deadline: Option<Instant>,
    ) -> Result<bool> {
        if reader.read_locked {
            return Ok(true);
        }
        let ring = &rings.inbound;
        let corrupted = |error: std::io::Error| Error::Corrupted { message: error.to_string() };
        // The usual case, and the only one with a single reader: the lock is free. (No clock
        // and no spin set up before this: they would cost as much as the lock.)
        if ring.try_read_lock(rings.token).map_err(corrupted)?.is_none() {
            reader.read_locked = true;
            return Ok(true);
        }
        let mut spin = Spin::new(deadline);
        let mut last_check: Option<Instant> = None;
        loop {
            // Only loads while it is taken: a compare-exchange would pull the holder's cache
            // line (the one of `READ_POS`) away from it each time.
            let owner = match ring.read_lock_holder() {
                0 => match ring.try_read_lock(rings.token).map_err(corrupted)? {
                    None => {
                        reader.read_locked = true;
                        return Ok(true);
                    }
                    Some(holder) => holder,
                },
                holder => holder,
            };
            if spin.turn() {
                continue;
            }
            let now = Instant::now();
            // Is the holder alive? (A look at /proc: at once, then every CHECK_EVERY.)
            if last_check.is_none_or(|last| now.duration_since(last) >= CHECK_EVERY) {
                last_check = Some(now);
                if ring.take_over_dead_reader(owner, rings.token).map_err(corrupted)? {
                    reader.read_locked = true;
                    return Ok(true);
                }
            }
            let nap = match deadline {
                None => CHECK_EVERY,
                Some(deadline) => match deadline.checked_duration_since(now) {
                    Some(left) if !left.is_zero() => left.min(CHECK_EVERY),
                    _ => return Ok(false),
                },
            };
            ring.wait_for_read_unlock(owner, nap);
        }
    }

    /// Ends a receive: frees the read lock, unless it stopped (timed out) in the middle of a
    /// message, which the next receive continues. A receive that failed in the middle of a
    /// message, or found the stream damaged, poisons the ring first: the other readers could
    /// not find the next message.
    fn end_read(&self, rings: &RingEnds, reader: &mut ReadSide, received: &Result<Option<Frame>>) {
        if !reader.read_locked {
            return;
        }
        match received {
            Ok(None) if !reader.frames.between_frames() => return,
            Ok(_) => {}
            Err(Error::Corrupted { .. }) => rings.inbound.poison(Poison::Damaged),
            Err(_) if !reader.frames.between_frames() => rings.inbound.poison(Poison::Reader),
            Err(_) => {}
        }
        rings.inbound.read_unlock(rings.token);
        reader.read_locked = false;
    }

    /// Reads from the inbound ring, holding the read lock. A frame that did not fit in memory
    /// is read and dropped (an error); the descriptors it announced are taken off the socket
    /// and closed here, so that they never reach the next message that carries some.
    fn read_ring(&self, rings: &RingEnds, reader: &mut ReadSide) -> Result<ReadOutcome> {
        let outcome = reader.frames.read_frame_ring(&rings.inbound);
        let dropped = reader.frames.take_dropped_fds();
        if dropped > 0 {
            drop(self.take_announced_fds(rings, reader, dropped)?);
        }
        outcome
    }

    /// Gives `frame` the descriptors its header announced, which travel on the socket.
    fn take_fds(&self, rings: &RingEnds, reader: &mut ReadSide, frame: &mut Frame) -> Result<()> {
        frame.fds = self.take_announced_fds(rings, reader, frame.announced_fds)?;
        Ok(())
    }

    /// The next `announced` descriptors from the socket, waiting for them if they are not all
    /// there yet (they were sent before the frame that announced them).
    fn take_announced_fds(
        &self,
        rings: &RingEnds,
        reader: &mut ReadSide,
        announced: usize,
    ) -> Result<Vec<OwnedFd>> {
        if announced == 0 {
            // Nearly every message: no drain, no allocation.
            return Ok(Vec::new());
        }
        while reader.fds.len() < announced {
            if reader.peer_closed {
                return Err(Error::Corrupted {
                    message: format!(
                        "a message should carry {announced} handles but {} arrived",
                        reader.fds.len()
                    ),
                });
            }
            let interest = sys::Ready { readable: true, hangup: true, ..Default::default() };
            sys::poll(&[(self.fd.as_fd(), interest)], Some(CHECK_EVERY))
                .map_err(|error| Error::io("waiting for handles", error))?;
            self.drain_socket(rings, reader, announced)?;
        }
        Ok(reader.fds.drain(..announced).collect())
    }

    /// Reads the wake-up bytes at the head of the socket, and the descriptors of the frame
    /// this link is reading: of the one whose header announced `wanted` of them, or, between
    /// frames with nothing in the ring, of the next one (it was sent after everything the ring
    /// held). Descriptors of a later frame stay on the socket, for whichever process sharing
    /// this end reads that frame. Returns true when such descriptors wait at the head.
    fn drain_socket(&self, rings: &RingEnds, reader: &mut ReadSide, wanted: usize) -> Result<bool> {
        let mut head = [0u8; 256];
        loop {
            let peeked = match sys::peek(self.fd.as_fd(), &mut head) {
                Ok(0) => {
                    reader.peer_closed = true;
                    self.peer_gone.store(true, Ordering::Relaxed);
                    return Ok(false);
                }
                Ok(n) => n,
                Err(error) if error.kind() == std::io::ErrorKind::WouldBlock => return Ok(false),
                Err(error) if error.kind() == std::io::ErrorKind::Interrupted => continue,
                Err(error) if is_peer_gone(&error) => {
                    reader.peer_closed = true;
                    return Ok(false);
                }
                Err(error) => return Err(Error::io("reading from a connection", error)),
            };
            let wakes = head[..peeked].iter().take_while(|&&byte| byte == b'W').count();
            let take = if wakes > 0 {
                wakes
            } else if head[0] != b'F' {
                return Err(Error::Corrupted {
                    message: "unexpected bytes on a pipe's socket: two processes are using the \
                              same sending end without mp's shared memory"
                        .into(),
                });
            } else if reader.fds.len() < wanted
                || (reader.frames.between_frames()
                    && rings.inbound.available().is_ok_and(|unread| unread == 0))
            {
                1
            } else {
                return Ok(true);
            };
            let mut bytes = Vec::with_capacity(take);
            let mut fds = Vec::new();
            let received = sys::recv_into_spare(self.fd.as_fd(), &mut bytes, take, &mut fds);
            reader.fds.extend(fds);
            match received {
                Ok(_) => {}
                Err(error) if error.kind() == std::io::ErrorKind::Interrupted => {}
                Err(error) => return Err(Error::io("reading from a connection", error)),
            }
        }
    }

    /// Reads everything the socket holds: wake-up bytes, and descriptors for frames in the
    /// ring, however far ahead (for the links of the pool and of ranks, never shared between
    /// processes, which wait on many links at once and must not find a socket readable again
    /// and again).
    fn drain_socket_all(&self, reader: &mut ReadSide) -> Result<()> {
        let mut bytes = Vec::with_capacity(256);
        loop {
            bytes.clear();
            let mut fds = Vec::new();
            let received = sys::recv_into_spare(self.fd.as_fd(), &mut bytes, 256, &mut fds);
            reader.fds.extend(fds);
            match received {
                Ok(0) => {
                    reader.peer_closed = true;
                    self.peer_gone.store(true, Ordering::Relaxed);
                    return Ok(());
                }
                Ok(_) if bytes.iter().all(|byte| matches!(byte, b'W' | b'F')) => {}
                Ok(_) => {
                    return Err(Error::Corrupted {
                        message: "unexpected bytes on a pipe's socket: two processes are using \
                                  the same sending end without mp's shared memory"
                            .into(),
                    });
                }
                Err(error) if error.kind() == std::io::ErrorKind::WouldBlock => return Ok(()),
                Err(error) if error.kind() == std::io::ErrorKind::Interrupted => {}
                Err(error) if is_peer_gone(&error) => {
                    reader.peer_closed = true;
                    return Ok(());
                }
                Err(error) => return Err(Error::io("reading from a connection", error)),
            }
        }
    }

    /// Waits until the inbound ring has unread bytes, the writer is gone, or `deadline`.
    ///
    /// Busy-polls for [`SPIN`] (bounded by the deadline), then announces that it sleeps and
    /// sleeps in `poll` on the socket: the writer sends a wake-up byte, and the socket's
    /// hang-up ends the wait when the last process holding the other end is gone. Every
    /// [`CHECK_EVERY`] it also checks that a writer holding the write lock is still alive.
    fn wait_for_data(
        &self,
        rings: &RingEnds,
        reader: &mut ReadSide,
        deadline: Option<Instant>,
    ) -> Result<Waited> {
        let ring = &rings.inbound;
        let corrupted = |error: std::io::Error| Error::Corrupted { message: error.to_string() };
        // Where this process waits, for the peer's own waits.
        rings.outbound.publish_writer_cpu(sys::current_cpu());
        let mut spin = Spin::for_writer_of(deadline, ring, self.waiting);
        loop {
            if ring.available().map_err(corrupted)? > 0 {
                return Ok(Waited::Data);
            }
            if !spin.turn() {
                break;
            }
        }
        // Descriptors of a frame this link will not read wait at the head of the socket: then
        // the socket stays readable, and the wait naps instead (the frame they belong to is
        // on its way into the ring).
        let mut handles_pending = false;
        let mut pause = Duration::from_micros(20);
        loop {
            let unread = ring.reader_sleeps();
            let nap = match unread {
                Ok(0) if reader.peer_closed => {
                    ring.reader_wakes();
                    return Ok(Waited::Closed);
                }
                Ok(0) => match deadline {
                    None => Some(CHECK_EVERY),
                    Some(deadline) => {
                        let left = deadline.saturating_duration_since(Instant::now());
                        if left.is_zero() { None } else { Some(left.min(CHECK_EVERY)) }
                    }
                },
                Ok(_) => {
                    ring.reader_wakes();
                    return Ok(Waited::Data);
                }
                Err(error) => {
                    ring.reader_wakes();
                    return Err(corrupted(error));
                }
            };
            let Some(mut nap) = nap else {
                ring.reader_wakes();
                return Ok(Waited::Timeout);
            };
            if handles_pending {
                nap = nap.min(pause);
                pause = (pause * 2).min(Duration::from_millis(1));
            }
            let interest =
                sys::Ready { readable: !handles_pending, hangup: true, ..Default::default() };
            let polled = sys::poll(&[(self.fd.as_fd(), interest)], Some(nap));
            ring.reader_wakes();
            let ready = polled.map_err(|error| Error::io("waiting for a message", error))?;
            if ready[0].readable || ready[0].hangup || handles_pending {
                let wanted = reader.frames.announced_fds();
                handles_pending = self.drain_socket(rings, reader, wanted)?;
            } else if let Some(owner) = rings.inbound.lock_owner_pid()
                && !ring::process_alive(owner)
            {
                ring.poison(Poison::Writer);
            }
        }
    }

    /// Receives one frame if a whole one is there now; never waits (except for the
    /// descriptors of a frame already read, which are on their way). A closed peer is
    /// `Disconnected` once everything it sent has been received.
    pub(crate) fn try_recv_frame(&self) -> Result<Option<Frame>> {
        let mut reader = self.lock_reader();
        let Some(rings) = &self.rings else {
            return match reader.frames.read_frame(self.fd.as_fd())? {
                ReadOutcome::Frame(frame) => Ok(Some(frame)),
                ReadOutcome::WouldBlock => Ok(None),
                ReadOutcome::Closed => Err(Error::disconnected(self.name)),
            };
        };
        let corrupted = |error: std::io::Error| Error::Corrupted { message: error.to_string() };
        if !reader.read_locked {
            // Nothing to read: no need for the lock.
            if !reader.peer_closed && rings.inbound.available().map_err(corrupted)? == 0 {
                return Ok(None);
            }
            match rings.inbound.try_read_lock(rings.token).map_err(corrupted)? {
                None => reader.read_locked = true,
                Some(owner) => {
                    if !rings
                        .inbound
                        .take_over_dead_reader(owner, rings.token)
                        .map_err(corrupted)?
                    {
                        // Another process sharing this end is receiving.
                        return Ok(None);
                    }
                    reader.read_locked = true;
                }
            }
        }
        let received = self.try_read_frame_locked(rings, &mut reader);
        self.end_read(rings, &mut reader, &received);
        received
    }

    fn try_read_frame_locked(
        &self,
        rings: &RingEnds,
        reader: &mut ReadSide,
    ) -> Result<Option<Frame>> {
        match self.read_ring(rings, reader)? {
            ReadOutcome::Frame(mut frame) => {
                self.take_fds(rings, reader, &mut frame)?;
                Ok(Some(frame))
            }
            ReadOutcome::Closed => Err(Error::disconnected(self.name)),
            ReadOutcome::WouldBlock if !reader.peer_closed => Ok(None),
            // Everything written before the close is in the ring: nothing more can come.
            ReadOutcome::WouldBlock if reader.frames.between_frames() => {
                Err(Error::disconnected(self.name))
            }
            ReadOutcome::WouldBlock => Err(Error::Corrupted {
                message: "the sending process closed the connection in the middle of a message \
                          (it probably died while sending)"
                    .into(),
            }),
        }
    }

    /// True when a receive would not wait: ring data, or the peer is known to be gone.
    fn ready_now(&self) -> bool {
        if self.peer_gone.load(Ordering::Relaxed) {
            return true;
        }
        match &self.rings {
            Some(rings) => !matches!(rings.inbound.available(), Ok(0)),
            None => false,
        }
    }

    /// Reads the socket's wake-up bytes and descriptors, and notices a closed peer.
    fn drain_socket_now(&self) -> Result<()> {
        if self.rings.is_none() {
            return Ok(());
        }
        let mut reader = self.lock_reader();
        self.drain_socket_all(&mut reader)
    }

    pub(crate) fn recv_value<T: DeserializeOwned + 'static>(
        &self,
        timeout: Option<Duration>,
    ) -> Result<T> {
        let frame = self.recv_value_frame(timeout)?;
        wire::decode(&frame.body, frame.fds)
    }

    /// The next frame holding a typed value, for [`wire::decode`] or [`wire::decode_postcard`].
    pub(crate) fn recv_value_frame(&self, timeout: Option<Duration>) -> Result<Frame> {
        let frame = self.recv_or_timeout(timeout, &mut None)?;
        if frame.kind != BodyKind::Value {
            return Err(expected_typed());
        }
        Ok(frame)
    }

    pub(crate) fn recv_bytes(&self, timeout: Option<Duration>) -> Result<Vec<u8>> {
        let frame = self.recv_or_timeout(timeout, &mut None)?;
        bytes_body(frame)
    }

    /// Receives a bytes message into `buffer`, reusing its allocation.
    pub(crate) fn recv_bytes_into(&self, buffer: &mut Vec<u8>) -> Result<()> {
        let mut offered = Some(std::mem::take(buffer));
        let received = self.recv_or_timeout(None, &mut offered);
        if let Some(unused) = offered {
            *buffer = unused;
        }
        *buffer = bytes_body(received?)?;
        Ok(())
    }

    fn recv_or_timeout(
        &self,
        timeout: Option<Duration>,
        body_buffer: &mut Option<Vec<u8>>,
    ) -> Result<Frame> {
        match self.recv_frame_into(timeout, body_buffer)? {
            Some(frame) => Ok(frame),
            None => Err(Error::Timeout {
                what: format!("a message on {}", self.name),
                waited: timeout.unwrap_or_default(),
            }),
        }
    }

    /// True when a message (or the end of the stream) is ready to be received.
    pub(crate) fn poll(&self, timeout: Duration) -> Result<bool> {
        let Some(rings) = &self.rings else {
            let ready = sys::poll(
                &[(self.fd.as_fd(), sys::Ready { readable: true, ..Default::default() })],
                Some(timeout),
            )
            .map_err(|error| Error::io("polling a connection", error))?;
            return Ok(ready[0].readable);
        };
        let mut reader = self.lock_reader();
        if !reader.frames.between_frames() {
            return Ok(true);
        }
        let deadline = Instant::now() + timeout;
        // Only the holder of the read lock waits on the socket (see `drain_socket`).
        if !self.take_read_lock(rings, &mut reader, Some(deadline))? {
            return Ok(false);
        }
        let waited = self.wait_for_data(rings, &mut reader, Some(deadline));
        rings.inbound.read_unlock(rings.token);
        reader.read_locked = false;
        match waited? {
            Waited::Data | Waited::Closed => Ok(true),
            Waited::Timeout => Ok(false),
        }
    }

    /// What an endpoint sends when it travels: its socket, and its pipe's shared memory.
    fn to_passed(&self) -> std::io::Result<PassedEndpoint> {
        let rings = match &self.rings {
            Some(rings) => Some((PassedFd(rings.file.fd().try_clone()?), rings.side)),
            None => None,
        };
        Ok(PassedEndpoint { socket: PassedFd(self.fd.try_clone()?), rings })
    }

    fn from_passed(passed: PassedEndpoint, name: &'static str) -> Result<Arc<Link>> {
        let rings = match passed.rings {
            Some((PassedFd(fd), side)) if side <= 1 => Some((
                RingFile::adopt(fd)
                    .map_err(|error| Error::io("mapping a pipe's shared memory", error))?,
                side,
            )),
            Some(_) => {
                return Err(Error::Corrupted { message: "a pipe end names no valid side".into() });
            }
            None => None,
        };
        Link::with_rings(passed.socket.0, rings, Waiting::ForOnePeer, name)
    }
}

impl Drop for Link {
    fn drop(&mut self) {
        if let Some(rings) = &self.rings {
            // Normally free already; after an error in the middle of a message it may not be.
            rings.outbound.unlock(rings.token);
            // Held only after a receive timed out in the middle of a message: its first part
            // is gone with this link, so the others sharing the end could not go on.
            let reader = self.reader.get_mut().unwrap_or_else(|poison| poison.into_inner());
            if reader.read_locked {
                if !reader.frames.between_frames() {
                    rings.inbound.poison(Poison::Reader);
                }
                rings.inbound.read_unlock(rings.token);
            }
        }
    }
}

/// How a wait for ring data ended.
enum Waited {
    Data,
    Timeout,
    /// The socket is closed and the ring holds nothing more.
    Closed,
}

/// An endpoint inside a message: the socket, and the pipe's memfd with this end's side.
#[derive(Serialize, Deserialize)]
struct PassedEndpoint {
    socket: PassedFd,
    rings: Option<(PassedFd, u8)>,
}

fn bytes_body(frame: Frame) -> Result<Vec<u8>> {
    if frame.kind != BodyKind::Bytes {
        return Err(expected_bytes());
    }
    Ok(frame.body)
}

/// A raw-bytes message where a typed one was expected (on a pipe or from a peer).
#[cold]
pub(crate) fn expected_typed() -> Error {
    Error::serialization(
        "expected a typed message but the sender used send_bytes/send_slice; \
         receive it with recv_bytes or recv_vec",
    )
}

/// A typed message where raw bytes were expected (on a pipe or from a peer).
#[cold]
pub(crate) fn expected_bytes() -> Error {
    Error::serialization(
        "expected raw bytes but the sender used send (a typed message); receive it with recv",
    )
}

fn is_peer_gone(error: &std::io::Error) -> bool {
    matches!(error.kind(), std::io::ErrorKind::BrokenPipe | std::io::ErrorKind::ConnectionReset)
}

// ---------------------------------------------------------------------------------------------
// Waiting on many links at once (the pool's dispatcher, `launch` joining its ranks).

/// Lets other threads of this process wake a thread waiting in [`wait_for_any`]: an atomic
/// while it busy-polls, a byte on a socket only when it sleeps in `poll`.
#[derive(Debug)]
pub(crate) struct Doorbell {
    rung: AtomicUsize,
    sleeping: AtomicBool,
    sender: UnixStream,
    receiver: UnixStream,
}

impl Doorbell {
    pub(crate) fn new() -> Result<Doorbell> {
        let (sender, receiver) =
            UnixStream::pair().map_err(|error| Error::io("creating a wake-up socket", error))?;
        for end in [&sender, &receiver] {
            end.set_nonblocking(true)
                .map_err(|error| Error::io("creating a wake-up socket", error))?;
        }
        Ok(Doorbell {
            rung: AtomicUsize::new(0),
            sleeping: AtomicBool::new(false),
            sender,
            receiver,
        })
    }

    /// Wakes the waiter; call it after making the new work visible (e.g. after a channel send).
    pub(crate) fn ring(&self) {
        self.rung.fetch_add(1, Ordering::SeqCst);
        // Pairs with the waiter's store of `sleeping` and its look at `rung`: either it sees
        // the ring or we see that it sleeps.
        fence(Ordering::SeqCst);
        if self.sleeping.load(Ordering::SeqCst) {
            // A full socket already holds a wake-up.
            let _ = (&self.sender).write(&[1]);
        }
    }

    /// Forgets the rings so far: the waiter is about to look at all the work there is.
    pub(crate) fn answer(&self) {
        self.rung.store(0, Ordering::SeqCst);
    }

    fn rung(&self) -> bool {
        self.rung.load(Ordering::SeqCst) != 0
    }

    fn drain(&self) {
        let mut bytes = [0u8; 64];
        while matches!((&self.receiver).read(&mut bytes), Ok(n) if n > 0) {}
    }
}

/// Waits until one of `links` has something to receive (or lost its peer), `doorbell` rings,
/// or `deadline` passes. May return early; the caller then tries every link without waiting.
///
/// Like a single receive, it busy-polls the rings first ([`SPIN`]) and only then sleeps in
/// `poll` on all the sockets at once (each ring told that its reader sleeps).
pub(crate) fn wait_for_any(
    links: &[&Link],
    doorbell: Option<&Doorbell>,
    deadline: Option<Instant>,
) -> Result<()> {
    let anything =
        || links.iter().any(|link| link.ready_now()) || doorbell.is_some_and(Doorbell::rung);
    let mut spin = Spin::new(deadline);
    loop {
        if anything() {
            return Ok(());
        }
        if !spin.turn() {
            break;
        }
    }
    let rings: Vec<&Ring> =
        links.iter().filter_map(|link| link.rings.as_ref().map(|rings| &rings.inbound)).collect();
    for ring in &rings {
        // Its result is checked below with every other source.
        let _ = ring.reader_sleeps();
    }
    if let Some(doorbell) = doorbell {
        doorbell.sleeping.store(true, Ordering::SeqCst);
    }
    fence(Ordering::SeqCst);
    let timeout = match deadline {
        _ if anything() => Some(Duration::ZERO),
        None => None,
        Some(deadline) => Some(deadline.saturating_duration_since(Instant::now())),
    };
    let readable = sys::Ready { readable: true, hangup: true, ..Default::default() };
    let mut interest: Vec<_> = links.iter().map(|link| (link.fd.as_fd(), readable)).collect();
    if let Some(doorbell) = doorbell {
        interest.push((doorbell.receiver.as_fd(), readable));
    }
    let polled = sys::poll(&interest, timeout);
    if let Some(doorbell) = doorbell {
        doorbell.sleeping.store(false, Ordering::SeqCst);
    }
    for ring in &rings {
        ring.reader_wakes();
    }
    let ready = polled.map_err(|error| Error::io("waiting for messages", error))?;
    drain_ready(links, &ready)?;
    if let Some(doorbell) = doorbell
        && ready.last().is_some_and(|ready| ready.readable)
    {
        doorbell.drain();
    }
    Ok(())
}

/// Notices closed peers among `links` without waiting (their sockets hang up).
pub(crate) fn check_hangups(links: &[&Link]) -> Result<()> {
    let readable = sys::Ready { readable: true, hangup: true, ..Default::default() };
    let interest: Vec<_> = links.iter().map(|link| (link.fd.as_fd(), readable)).collect();
    let ready = sys::poll(&interest, Some(Duration::ZERO))
        .map_err(|error| Error::io("checking connections", error))?;
    drain_ready(links, &ready)
}

/// Reads the sockets that `poll` found readable or hung up (wake-up bytes, descriptors, ends).
fn drain_ready(links: &[&Link], ready: &[sys::Ready]) -> Result<()> {
    for (link, ready) in links.iter().zip(ready) {
        if ready.readable || ready.hangup {
            link.drain_socket_now()?;
        }
    }
    Ok(())
}

// ---------------------------------------------------------------------------------------------
// Flushers: one thread per link with queued messages, alive only while the queue is non-empty.

static FLUSHERS: Mutex<usize> = Mutex::new(0);
static FLUSHERS_DONE: Condvar = Condvar::new();

fn start_flusher(link: Arc<Link>) {
    static FLUSH_AT_EXIT: std::sync::Once = std::sync::Once::new();
    FLUSH_AT_EXIT.call_once(|| sys::at_exit(flush_at_exit));
    *FLUSHERS.lock().unwrap_or_else(|poison| poison.into_inner()) += 1;
    let spawned = std::thread::Builder::new().name("mp-flusher".into()).spawn(move || {
        flush_until_empty(&link);
        let mut count = FLUSHERS.lock().unwrap_or_else(|poison| poison.into_inner());
        *count -= 1;
        FLUSHERS_DONE.notify_all();
    });
    if spawned.is_err() {
        // No thread to spare: the messages stay queued and the next send or exit flushes them.
        *FLUSHERS.lock().unwrap_or_else(|poison| poison.into_inner()) -= 1;
    }
}

fn flush_until_empty(link: &Link) {
    loop {
        let mut socket_full = true;
        {
            let mut writer = link.lock_writer();
            let flushed = match &link.rings {
                None => writer.outbox.flush_some(link.fd.as_fd()),
                Some(rings) => link
                    .take_write_lock(rings, None)
                    .and_then(|_| writer.outbox.flush_some_ring(&rings.outbound, link.fd.as_fd()))
                    .map(|outcome| {
                        socket_full = outcome == RingWrite::SocketFull;
                        outcome == RingWrite::Done
                    }),
            };
            match flushed {
                Ok(true) => {
                    if let Some(rings) = &link.rings {
                        rings.outbound.unlock(rings.token);
                    }
                    return;
                }
                Ok(false) => {}
                Err(error) => {
                    // What the receiver never read cannot be delivered: the next send says so.
                    writer.broken = Some(Broken::of(&link.ring_error(error)));
                    if let Some(rings) = &link.rings {
                        rings.abandon_message(writer.outbox.mid_frame());
                    }
                    writer.outbox = Outbox::default();
                    return;
                }
            }
        }
        let until = Instant::now() + CHECK_EVERY;
        let waited = match &link.rings {
            Some(rings) if !socket_full => link.wait_for_space(rings, until).map(drop),
            _ => link.wait_socket_writable(until).map(drop),
        };
        if let Err(error) = waited {
            let mut writer = link.lock_writer();
            writer.broken = Some(Broken::of(&link.ring_error(error)));
            if let Some(rings) = &link.rings {
                rings.abandon_message(writer.outbox.mid_frame());
            }
            writer.outbox = Outbox::default();
            return;
        }
    }
}

extern "C" fn flush_at_exit() {
    wait_for_queued_messages(Duration::from_secs(10));
}

/// Waits until every queued message of this process has been delivered (or its receiver is
/// gone). Called before a worker reports its result and when a process exits, so nothing
/// handed to `send` is lost. Gives up after `patience` without progress, saying so on stderr.
pub(crate) fn wait_for_queued_messages(patience: Duration) {
    let mut count = FLUSHERS.lock().unwrap_or_else(|poison| poison.into_inner());
    let mut last_change = Instant::now();
    let mut last_count = *count;
    while *count > 0 {
        let (guard, _) = FLUSHERS_DONE
            .wait_timeout(count, Duration::from_millis(50))
            .unwrap_or_else(|p| p.into_inner());
        count = guard;
        if *count != last_count {
            last_count = *count;
            last_change = Instant::now();
        } else if last_change.elapsed() > patience {
            eprintln!(
                "mp: process {} is exiting with messages that no process has received after {patience:?}; \
                 make sure every message sent is also received",
                std::process::id()
            );
            return;
        }
    }
}

// ---------------------------------------------------------------------------------------------
// The typed endpoints.

/// Creates a two-way pipe: Python's `a, b = multiprocessing.Pipe()`.
///
/// Both ends can send and receive messages of type `T`.
///
/// ```
/// # fn main() -> mp::Result<()> {
/// let (a, b) = mp::pipe::<String>()?;
/// a.send(&"ping".to_string())?;
/// assert_eq!(b.recv()?, "ping");
/// b.send(&"pong".to_string())?;
/// assert_eq!(a.recv()?, "pong");
/// # Ok(()) }
/// ```
pub fn pipe<T>() -> Result<(Connection<T>, Connection<T>)> {
    let (left, right) = Link::pair("pipe")?;
    Ok((Connection::from_link(left), Connection::from_link(right)))
}

/// Creates a one-way pipe: a send-only end and a receive-only end.
///
/// Python's `Pipe(duplex=False)` returns `(receiver, sender)`; Rust's convention (as in
/// `std::sync::mpsc::channel`) is sender first.
///
/// ```
/// # fn main() -> mp::Result<()> {
/// let (tx, rx) = mp::pipe_simplex::<u64>()?;
/// tx.send(&7)?;
/// drop(tx);
/// assert_eq!(rx.recv()?, 7);
/// assert!(rx.recv().unwrap_err().is_disconnected()); // Python's EOFError
/// # Ok(()) }
/// ```
pub fn pipe_simplex<T>() -> Result<(Sender<T>, Receiver<T>)> {
    let (left, right) = Link::pair("pipe")?;
    Ok((
        Sender { end: End::Local(left), _type: PhantomData },
        Receiver { end: End::Local(right), _type: PhantomData },
    ))
}

/// What an endpoint stands on: one of mp's links (a pipe), or a [`Peer`] outside mp. The
/// local case comes first and is the hot path: one predictable branch per call; the peer's
/// side is out of line (`peer.rs`).
#[derive(Clone)]
pub(crate) enum End {
    Local(Arc<Link>),
    Peer(Arc<dyn Peer>),
}

impl End {
    #[inline]
    pub(crate) fn send_value<T: Serialize + ?Sized + 'static>(&self, value: &T) -> Result<()> {
        match self {
            End::Local(link) => link.send_value(value),
            End::Peer(peer) => peer_send_value(&**peer, value),
        }
    }

    /// Sends a value from [`wire::encode`] or [`wire::encode_postcard`].
    #[inline]
    pub(crate) fn send_encoded(&self, encoded: (Vec<u8>, Vec<OwnedFd>)) -> Result<()> {
        match self {
            End::Local(link) => link.send_encoded(encoded),
            End::Peer(peer) => crate::peer::send_encoded(&**peer, encoded),
        }
    }

    #[inline]
    pub(crate) fn send_bytes(&self, bytes: &[u8]) -> Result<()> {
        match self {
            End::Local(link) => link.send_bytes(bytes),
            End::Peer(peer) => peer.send_borrowed(MessageKind::Bytes, bytes),
        }
    }

    #[inline]
    pub(crate) fn recv_value<T: DeserializeOwned + 'static>(
        &self,
        timeout: Option<Duration>,
    ) -> Result<T> {
        match self {
            End::Local(link) => link.recv_value(timeout),
            End::Peer(peer) => peer_recv_value(&**peer, timeout),
        }
    }

    /// As [`End::recv_value`], through serde only ([`wire::decode_postcard`]), for types that
    /// may borrow.
    pub(crate) fn recv_postcard<T: DeserializeOwned>(
        &self,
        timeout: Option<Duration>,
    ) -> Result<T> {
        match self {
            End::Local(link) => {
                let frame = link.recv_value_frame(timeout)?;
                wire::decode_postcard(&frame.body, frame.fds)
            }
            End::Peer(peer) => crate::peer::recv_typed(&**peer, timeout, wire::decode_postcard),
        }
    }

    pub(crate) fn recv_bytes(&self, timeout: Option<Duration>) -> Result<Vec<u8>> {
        match self {
            End::Local(link) => link.recv_bytes(timeout),
            End::Peer(peer) => {
                let mut buffer = Vec::new();
                crate::peer::recv_bytes_into(&**peer, &mut buffer, timeout)?;
                Ok(buffer)
            }
        }
    }

    pub(crate) fn recv_bytes_into(&self, buffer: &mut Vec<u8>) -> Result<()> {
        match self {
            End::Local(link) => link.recv_bytes_into(buffer),
            End::Peer(peer) => crate::peer::recv_bytes_into(&**peer, buffer, None),
        }
    }

    /// A message sent with `send_slice`, as elements of `E` in `items`' allocation (mp's own
    /// connections receive straight into it; a peer's bytes are copied).
    pub(crate) fn recv_elements<E: bytemuck::Pod>(&self, items: Vec<E>) -> Result<Vec<E>> {
        match self {
            End::Local(link) => link.recv_elements(None, items),
            End::Peer(_) => {
                let mut items = items;
                crate::ends::recv_into_reusing(&mut items, |buffer| self.recv_bytes_into(buffer))?;
                Ok(items)
            }
        }
    }

    pub(crate) fn poll(&self, timeout: Duration) -> Result<bool> {
        match self {
            End::Local(link) => link.poll(timeout),
            End::Peer(peer) => peer.poll(timeout),
        }
    }
}

// The peer's side of the typed calls, out of line so that the local path inlines to a test
// and a branch.
#[cold]
#[inline(never)]
fn peer_send_value<T: Serialize + ?Sized + 'static>(peer: &dyn Peer, value: &T) -> Result<()> {
    crate::peer::send_encoded(peer, wire::encode(value)?)
}

#[cold]
#[inline(never)]
fn peer_recv_value<T: DeserializeOwned + 'static>(
    peer: &dyn Peer,
    timeout: Option<Duration>,
) -> Result<T> {
    crate::peer::recv_typed(peer, timeout, wire::decode)
}

/// One end of a two-way pipe: sends and receives messages of type `T`.
///
/// Pass it to another process in the argument of [`Process::spawn`](crate::Process::spawn)
/// (or a pool task) to talk to that process. An end handed to several processes is shared:
/// their messages never interleave, and each message sent to it is received by exactly one of
/// them (see [`Receiver`]).
///
/// ```
/// # fn main() -> mp::Result<()> {
/// # mp::init();
/// fn echo_twice(conn: mp::Connection<String>) {
///     let text = conn.recv().unwrap();
///     conn.send(&format!("{text}{text}")).unwrap();
/// }
///
/// let (here, there) = mp::pipe::<String>()?;
/// let mut child = mp::Process::spawn(echo_twice, there)?;
/// here.send(&"ab".to_string())?;
/// assert_eq!(here.recv()?, "abab");
/// child.join()?;
/// # Ok(()) }
/// ```
pub struct Connection<T> {
    end: End,
    _type: PhantomData<fn(T) -> T>,
}

/// The sending end of a one-way pipe.
///
/// ```
/// # fn main() -> mp::Result<()> {
/// # mp::init();
/// fn count_up((tx, n): (mp::Sender<u32>, u32)) {
///     for i in 0..n {
///         tx.send(&i).unwrap();
///     }
/// }
///
/// let (tx, rx) = mp::pipe_simplex::<u32>()?;
/// mp::Process::spawn(count_up, (tx, 3))?.join()?;
/// assert_eq!([rx.recv()?, rx.recv()?, rx.recv()?], [0, 1, 2]);
/// assert!(rx.recv().unwrap_err().is_disconnected()); // the only sender is gone
/// # Ok(()) }
/// ```
pub struct Sender<T> {
    end: End,
    _type: PhantomData<fn(T)>,
}

/// The receiving end of a one-way pipe.
///
/// It can be shared: clones, and copies handed to other processes, are the same receiving end,
/// and each message goes to exactly one of them (a work queue). A process that dies while it
/// waits for a message takes none with it; one killed in the middle of receiving a message
/// loses that message and leaves the pipe unusable: the others get [`Error::Corrupted`] saying
/// so, never a message twice or a hang.
///
/// ```
/// # fn main() -> mp::Result<()> {
/// # mp::init();
/// fn total(rx: mp::Receiver<u64>) -> u64 {
///     (0..3).map(|_| rx.recv().unwrap()).sum()
/// }
///
/// let (tx, rx) = mp::pipe_simplex::<u64>()?;
/// let mut child = mp::Process::spawn(total, rx)?;
/// for value in [10, 20, 30] {
///     tx.send(&value)?;
/// }
/// assert_eq!(child.join()?, 60);
/// # Ok(()) }
/// ```
pub struct Receiver<T> {
    end: End,
    _type: PhantomData<fn() -> T>,
}

macro_rules! endpoint_common {
    ($endpoint:ident, $what:literal) => {
        impl<T> fmt::Debug for $endpoint<T> {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                let mut fields = f.debug_struct(stringify!($endpoint));
                match &self.end {
                    End::Local(link) => fields.field("fd", &link.fd),
                    End::Peer(peer) => fields.field("peer", &peer.describe()),
                };
                fields.field("message", &std::any::type_name::<T>()).finish()
            }
        }

        impl<T> Serialize for $endpoint<T> {
            fn serialize<S: Serializer>(
                &self,
                serializer: S,
            ) -> std::result::Result<S::Ok, S::Error> {
                match &self.end {
                    End::Local(link) => {
                        link.to_passed().map_err(serde::ser::Error::custom)?.serialize(serializer)
                    }
                    End::Peer(peer) => Err(wire::refuse(crate::peer::cannot_travel(&**peer))),
                }
            }
        }

        impl<'de, T> Deserialize<'de> for $endpoint<T> {
            fn deserialize<D: Deserializer<'de>>(
                deserializer: D,
            ) -> std::result::Result<Self, D::Error> {
                let passed = PassedEndpoint::deserialize(deserializer)?;
                let link = Link::from_passed(passed, $what).map_err(serde::de::Error::custom)?;
                Ok($endpoint { end: End::Local(link), _type: PhantomData })
            }
        }
    };
}

impl<T> Connection<T> {
    /// An end whose messages travel through `peer`, a transport outside mp (for example an
    /// MPI rank, through the `mp-mpi` crate): see [`crate::peer`]. It behaves as one of a pipe,
    /// with the same encoding and errors, except that it cannot be handed to another process,
    /// and what it sends cannot carry pipe ends, queues or shared arrays.
    ///
    /// ```
    /// # use std::{sync::Arc, time::Duration};
    /// # #[derive(Debug)]
    /// # struct Nowhere;
    /// # impl mp::Peer for Nowhere {
    /// #     fn describe(&self) -> String { "nowhere".into() }
    /// #     fn send_owned(&self, _: mp::MessageKind, _: Vec<u8>) -> mp::Result<()> { Ok(()) }
    /// #     fn send_borrowed(&self, _: mp::MessageKind, _: &[u8]) -> mp::Result<()> { Ok(()) }
    /// #     fn recv_into(&self, _: &mut Vec<u8>, t: Option<Duration>) -> mp::Result<mp::MessageKind> {
    /// #         Err(mp::Error::Timeout { what: "a message".into(), waited: t.unwrap_or_default() })
    /// #     }
    /// #     fn poll(&self, _: Duration) -> mp::Result<bool> { Ok(false) }
    /// # }
    /// // `Nowhere` is a `Peer` that drops what it is sent (see `mp::Peer` for a real one).
    /// let end = mp::Connection::<u32>::from_peer(Arc::new(Nowhere));
    /// assert!(format!("{end:?}").contains("nowhere"));
    /// end.send(&7)?;
    /// # Ok::<(), mp::Error>(())
    /// ```
    pub fn from_peer(peer: Arc<dyn Peer>) -> Connection<T> {
        Connection { end: End::Peer(peer), _type: PhantomData }
    }
}

impl<T> Sender<T> {
    /// A sending end whose messages travel through `peer`, a transport outside mp (for example an
    /// MPI rank, through the `mp-mpi` crate): see [`crate::peer`]. It behaves as one of a pipe,
    /// with the same encoding and errors, except that it cannot be handed to another process,
    /// and what it sends cannot carry pipe ends, queues or shared arrays.
    ///
    /// ```
    /// # use std::{sync::Arc, time::Duration};
    /// # #[derive(Debug)]
    /// # struct Nowhere;
    /// # impl mp::Peer for Nowhere {
    /// #     fn describe(&self) -> String { "nowhere".into() }
    /// #     fn send_owned(&self, _: mp::MessageKind, _: Vec<u8>) -> mp::Result<()> { Ok(()) }
    /// #     fn send_borrowed(&self, _: mp::MessageKind, _: &[u8]) -> mp::Result<()> { Ok(()) }
    /// #     fn recv_into(&self, _: &mut Vec<u8>, t: Option<Duration>) -> mp::Result<mp::MessageKind> {
    /// #         Err(mp::Error::Timeout { what: "a message".into(), waited: t.unwrap_or_default() })
    /// #     }
    /// #     fn poll(&self, _: Duration) -> mp::Result<bool> { Ok(false) }
    /// # }
    /// // `Nowhere` is a `Peer` that drops what it is sent (see `mp::Peer` for a real one).
    /// let end = mp::Sender::<u32>::from_peer(Arc::new(Nowhere));
    /// assert!(format!("{end:?}").contains("nowhere"));
    /// end.send(&7)?;
    /// # Ok::<(), mp::Error>(())
    /// ```
    pub fn from_peer(peer: Arc<dyn Peer>) -> Sender<T> {
        Sender { end: End::Peer(peer), _type: PhantomData }
    }
}

impl<T> Receiver<T> {
    /// A receiving end whose messages travel through `peer`, a transport outside mp (for example an
    /// MPI rank, through the `mp-mpi` crate): see [`crate::peer`]. It behaves as one of a pipe,
    /// with the same encoding and errors, except that it cannot be handed to another process,
    /// and what it sends cannot carry pipe ends, queues or shared arrays.
    ///
    /// ```
    /// # use std::{sync::Arc, time::Duration};
    /// # #[derive(Debug)]
    /// # struct Nowhere;
    /// # impl mp::Peer for Nowhere {
    /// #     fn describe(&self) -> String { "nowhere".into() }
    /// #     fn send_owned(&self, _: mp::MessageKind, _: Vec<u8>) -> mp::Result<()> { Ok(()) }
    /// #     fn send_borrowed(&self, _: mp::MessageKind, _: &[u8]) -> mp::Result<()> { Ok(()) }
    /// #     fn recv_into(&self, _: &mut Vec<u8>, t: Option<Duration>) -> mp::Result<mp::MessageKind> {
    /// #         Err(mp::Error::Timeout { what: "a message".into(), waited: t.unwrap_or_default() })
    /// #     }
    /// #     fn poll(&self, _: Duration) -> mp::Result<bool> { Ok(false) }
    /// # }
    /// // `Nowhere` is a `Peer` that drops what it is sent (see `mp::Peer` for a real one).
    /// let end = mp::Receiver::<u32>::from_peer(Arc::new(Nowhere));
    /// assert!(format!("{end:?}").contains("nowhere"));
    /// assert!(end.poll(Duration::ZERO).is_ok());
    /// ```
    pub fn from_peer(peer: Arc<dyn Peer>) -> Receiver<T> {
        Receiver { end: End::Peer(peer), _type: PhantomData }
    }
}

endpoint_common!(Connection, "pipe");
endpoint_common!(Sender, "pipe");
endpoint_common!(Receiver, "pipe");

impl<T: Serialize + 'static> Connection<T> {
    /// Sends a message (Python's `conn.send(obj)`). See the module docs for when it returns.
    ///
    /// The message carries a fingerprint of `T` (see [`Connection::recv`]). A value too large
    /// to encode in this process's memory is [`Error::OutOfMemory`], and nothing is sent.
    ///
    /// ```
    /// # fn main() -> mp::Result<()> {
    /// let (a, b) = mp::pipe::<Vec<i32>>()?;
    /// a.send(&vec![1, 2, 3])?;
    /// assert_eq!(b.recv()?, [1, 2, 3]);
    /// # Ok(()) }
    /// ```
    pub fn send(&self, value: &T) -> Result<()> {
        self.end.send_value(value)
    }
}

impl<T: DeserializeOwned + 'static> Connection<T> {
    /// Waits for the next message (Python's `conn.recv()`); `Error::Disconnected` once the
    /// other end is closed and everything it sent has been received.
    ///
    /// Every typed message carries a fingerprint of the sender's type, checked here before
    /// anything is decoded: a message of another type is [`Error::TypeMismatch`] naming both
    /// types (never a wrong value), and only that message is lost. A message too large for this
    /// process's memory is [`Error::OutOfMemory`]; it is read and dropped, and the connection
    /// goes on.
    ///
    /// ```
    /// # fn main() -> mp::Result<()> {
    /// let (a, b) = mp::pipe::<f64>()?;
    /// a.send(&2.5)?;
    /// // Only to show the error: the compiler keeps both ends of a pipe to one type.
    /// let b: mp::Connection<usize> = mp::testing::retype(b);
    /// let error = b.recv().unwrap_err();
    /// assert_eq!(
    ///     error.to_string(),
    ///     "received a `f64` but the receiver asked for a `usize`: the sender and the receiver \
    ///      must use the same type"
    /// );
    /// # Ok(()) }
    /// ```
    ///
    /// ```
    /// # fn main() -> mp::Result<()> {
    /// let (a, b) = mp::pipe::<u8>()?;
    /// a.send(&1)?;
    /// drop(a);
    /// assert_eq!(b.recv()?, 1); // sent before the close: still delivered
    /// assert!(b.recv().unwrap_err().is_disconnected());
    /// # Ok(()) }
    /// ```
    pub fn recv(&self) -> Result<T> {
        self.end.recv_value(None)
    }

    /// As [`Connection::recv`], but gives up with `Error::Timeout` after `timeout`.
    ///
    /// ```
    /// # fn main() -> mp::Result<()> {
    /// let (a, _b) = mp::pipe::<u8>()?;
    /// let error = a.recv_timeout(std::time::Duration::from_millis(10)).unwrap_err();
    /// assert!(error.is_timeout());
    /// # Ok(()) }
    /// ```
    pub fn recv_timeout(&self, timeout: Duration) -> Result<T> {
        self.end.recv_value(Some(timeout))
    }
}

impl<T> Connection<T> {
    /// Sends raw bytes as one message, copied as they are (Python's `send_bytes`).
    ///
    /// ```
    /// # fn main() -> mp::Result<()> {
    /// let (a, b) = mp::pipe::<()>()?;
    /// a.send_bytes(b"hello")?;
    /// assert_eq!(b.recv_bytes()?, b"hello");
    /// # Ok(()) }
    /// ```
    pub fn send_bytes(&self, bytes: &[u8]) -> Result<()> {
        self.end.send_bytes(bytes)
    }

    /// Receives one message sent with [`Connection::send_bytes`] (Python's `recv_bytes`).
    ///
    /// A typed message sent with [`Connection::send`] is an error here: receive it with `recv`.
    ///
    /// ```
    /// # fn main() -> mp::Result<()> {
    /// let (a, b) = mp::pipe::<u32>()?;
    /// a.send_bytes(&[0xff, 0])?;
    /// assert_eq!(b.recv_bytes()?, [0xff, 0]);
    /// a.send(&7)?;
    /// assert!(b.recv_bytes().is_err());
    /// # Ok(()) }
    /// ```
    pub fn recv_bytes(&self) -> Result<Vec<u8>> {
        self.end.recv_bytes(None)
    }

    /// As [`Connection::recv_bytes`], but into `buffer`, whose allocation is reused: the fast
    /// way to receive large messages again and again (a fresh allocation of many megabytes
    /// costs more than the transfer, as the operating system must supply zeroed pages).
    ///
    /// On success `buffer` holds exactly the message. After an error its contents are
    /// unspecified.
    ///
    /// ```
    /// # fn main() -> mp::Result<()> {
    /// let (a, b) = mp::pipe::<()>()?;
    /// let mut buffer = Vec::new();
    /// for message in [&b"first"[..], b"2nd"] {
    ///     a.send_bytes(message)?;
    ///     b.recv_bytes_into(&mut buffer)?;
    ///     assert_eq!(buffer, message);
    /// }
    /// # Ok(()) }
    /// ```
    pub fn recv_bytes_into(&self, buffer: &mut Vec<u8>) -> Result<()> {
        self.end.recv_bytes_into(buffer)
    }

    /// Sends a slice of plain numbers as its bytes: the fast path for arrays.
    ///
    /// ```
    /// # fn main() -> mp::Result<()> {
    /// let (a, b) = mp::pipe::<()>()?;
    /// a.send_slice(&[1.5f64, 2.5])?;
    /// assert_eq!(b.recv_vec::<f64>()?, [1.5, 2.5]);
    /// # Ok(()) }
    /// ```
    pub fn send_slice<E: bytemuck::Pod>(&self, items: &[E]) -> Result<()> {
        self.end.send_bytes(bytemuck::cast_slice(items))
    }

    /// Receives a message sent with [`Connection::send_slice`], as elements of type `E`.
    ///
    /// The bytes are copied straight into the vector returned (one copy; the receiver's peak
    /// memory is the array, once). Fails if they are not a whole number of `E`s (the sender
    /// used another type).
    ///
    /// ```
    /// # fn main() -> mp::Result<()> {
    /// let (a, b) = mp::pipe::<()>()?;
    /// a.send_slice(&[1u32, 2, 3])?;
    /// assert_eq!(b.recv_vec::<u32>()?, [1, 2, 3]);
    /// a.send_slice(&[1u8, 2, 3])?;
    /// assert!(b.recv_vec::<u32>().is_err());
    /// # Ok(()) }
    /// ```
    pub fn recv_vec<E: bytemuck::Pod>(&self) -> Result<Vec<E>> {
        self.end.recv_elements(Vec::new())
    }

    /// True if a message is ready, waiting at most `timeout` (Python's `conn.poll(timeout)`).
    ///
    /// ```
    /// # fn main() -> mp::Result<()> {
    /// use std::time::Duration;
    /// let (a, b) = mp::pipe::<u8>()?;
    /// assert!(!b.poll(Duration::ZERO)?);
    /// a.send(&1)?;
    /// assert!(b.poll(Duration::from_secs(10))?);
    /// assert_eq!(b.recv()?, 1);
    /// # Ok(()) }
    /// ```
    pub fn poll(&self, timeout: Duration) -> Result<bool> {
        self.end.poll(timeout)
    }

    /// Splits this end into its sending and receiving halves, which can go to different threads.
    ///
    /// ```
    /// # fn main() -> mp::Result<()> {
    /// let (a, b) = mp::pipe::<u8>()?;
    /// let (a_tx, a_rx) = a.split();
    /// let listener = std::thread::spawn(move || a_rx.recv());
    /// b.send(&9)?;
    /// assert_eq!(listener.join().unwrap()?, 9);
    /// a_tx.send(&1)?;
    /// assert_eq!(b.recv()?, 1);
    /// # Ok(()) }
    /// ```
    pub fn split(self) -> (Sender<T>, Receiver<T>) {
        (
            Sender { end: self.end.clone(), _type: PhantomData },
            Receiver { end: self.end, _type: PhantomData },
        )
    }

    pub(crate) fn from_link(link: Arc<Link>) -> Connection<T> {
        Connection { end: End::Local(link), _type: PhantomData }
    }

    pub(crate) fn from_end(end: End) -> Connection<T> {
        Connection { end, _type: PhantomData }
    }

    pub(crate) fn end(&self) -> &End {
        &self.end
    }
}

/// How many `E` elements `bytes` received bytes hold; an error if they are not a whole number.
pub(crate) fn element_count<E: bytemuck::Pod>(bytes: usize) -> Result<usize> {
    let size = std::mem::size_of::<E>();
    if size == 0 || !bytes.is_multiple_of(size) {
        return Err(Error::serialization(format!(
            "received {bytes} bytes, which is not a whole number of {size}-byte elements; \
             the sender used a different element type"
        )));
    }
    Ok(bytes / size)
}

pub(crate) fn bytes_to_vec<E: bytemuck::Pod>(bytes: Vec<u8>) -> Result<Vec<E>> {
    element_count::<E>(bytes.len())?;
    sys::vec_from_bytes(&bytes).map_err(|_| {
        wire::out_of_memory(
            bytes.len(),
            format!("an array received as {}", crate::units::Bytes(bytes.len() as u64)),
        )
    })
}

impl<T: Serialize + 'static> Sender<T> {
    /// Sends a message. See the module docs for when it returns, and [`Connection::send`] for
    /// its type fingerprint and [`Error::OutOfMemory`].
    ///
    /// ```
    /// # fn main() -> mp::Result<()> {
    /// let (tx, rx) = mp::pipe_simplex::<(u8, String)>()?;
    /// tx.send(&(1, "one".to_string()))?;
    /// assert_eq!(rx.recv()?, (1, "one".to_string()));
    /// # Ok(()) }
    /// ```
    pub fn send(&self, value: &T) -> Result<()> {
        self.end.send_value(value)
    }
}

impl<T> Sender<T> {
    /// Sends raw bytes as one message, copied as they are.
    ///
    /// ```
    /// # fn main() -> mp::Result<()> {
    /// let (tx, rx) = mp::pipe_simplex::<()>()?;
    /// tx.send_bytes(b"raw")?;
    /// assert_eq!(rx.recv_bytes()?, b"raw");
    /// # Ok(()) }
    /// ```
    pub fn send_bytes(&self, bytes: &[u8]) -> Result<()> {
        self.end.send_bytes(bytes)
    }

    /// Sends a slice of plain numbers as its bytes.
    ///
    /// ```
    /// # fn main() -> mp::Result<()> {
    /// let (tx, rx) = mp::pipe_simplex::<()>()?;
    /// tx.send_slice(&[0.5f32, -1.0])?;
    /// assert_eq!(rx.recv_vec::<f32>()?, [0.5, -1.0]);
    /// # Ok(()) }
    /// ```
    pub fn send_slice<E: bytemuck::Pod>(&self, items: &[E]) -> Result<()> {
        self.end.send_bytes(bytemuck::cast_slice(items))
    }
}

/// Clones share one connection: messages from clones in one process never interleave.
impl<T> Clone for Sender<T> {
    fn clone(&self) -> Self {
        Sender { end: self.end.clone(), _type: PhantomData }
    }
}

/// Clones share one receiving end: each message goes to exactly one of them, whichever
/// process they were handed to (Python's pattern of one pipe feeding several workers).
///
/// ```
/// # fn main() -> mp::Result<()> {
/// # mp::init();
/// fn take_two(rx: mp::Receiver<u32>) -> u32 {
///     rx.recv().unwrap() + rx.recv().unwrap()
/// }
///
/// let (tx, rx) = mp::pipe_simplex::<u32>()?;
/// let mut first = mp::Process::spawn(take_two, rx.clone())?;
/// let mut second = mp::Process::spawn(take_two, rx)?;
/// for value in [1, 2, 3, 4] {
///     tx.send(&value)?;
/// }
/// assert_eq!(first.join()? + second.join()?, 10);
/// # Ok(()) }
/// ```
impl<T> Clone for Receiver<T> {
    fn clone(&self) -> Self {
        Receiver { end: self.end.clone(), _type: PhantomData }
    }
}

impl<T: DeserializeOwned + 'static> Receiver<T> {
    /// Waits for the next message; `Error::Disconnected` once every sender is gone. A message
    /// of another type is [`Error::TypeMismatch`], one too large for memory
    /// [`Error::OutOfMemory`] (see [`Connection::recv`]).
    ///
    /// ```
    /// # fn main() -> mp::Result<()> {
    /// let (tx, rx) = mp::pipe_simplex::<u8>()?;
    /// let tx2 = tx.clone();
    /// tx.send(&1)?;
    /// drop(tx);
    /// assert_eq!(rx.recv()?, 1);
    /// drop(tx2); // the last sender
    /// assert!(rx.recv().unwrap_err().is_disconnected());
    /// # Ok(()) }
    /// ```
    pub fn recv(&self) -> Result<T> {
        self.end.recv_value(None)
    }

    /// As [`Receiver::recv`], but gives up with `Error::Timeout` after `timeout`.
    ///
    /// ```
    /// # fn main() -> mp::Result<()> {
    /// use std::time::Duration;
    /// let (tx, rx) = mp::pipe_simplex::<u8>()?;
    /// assert!(rx.recv_timeout(Duration::from_millis(5)).unwrap_err().is_timeout());
    /// tx.send(&3)?;
    /// assert_eq!(rx.recv_timeout(Duration::from_secs(10))?, 3);
    /// # Ok(()) }
    /// ```
    pub fn recv_timeout(&self, timeout: Duration) -> Result<T> {
        self.end.recv_value(Some(timeout))
    }
}

impl<T> Receiver<T> {
    /// Receives one message sent with `send_bytes`.
    ///
    /// ```
    /// # fn main() -> mp::Result<()> {
    /// let (tx, rx) = mp::pipe_simplex::<()>()?;
    /// tx.send_bytes(&[1, 2, 3])?;
    /// assert_eq!(rx.recv_bytes()?, [1, 2, 3]);
    /// # Ok(()) }
    /// ```
    pub fn recv_bytes(&self) -> Result<Vec<u8>> {
        self.end.recv_bytes(None)
    }

    /// Receives one message sent with `send_bytes` into `buffer`, reusing its allocation (see
    /// [`Connection::recv_bytes_into`]).
    ///
    /// ```
    /// # fn main() -> mp::Result<()> {
    /// let (tx, rx) = mp::pipe_simplex::<()>()?;
    /// let mut buffer = Vec::with_capacity(1 << 20);
    /// tx.send_bytes(&[9; 1000])?;
    /// rx.recv_bytes_into(&mut buffer)?;
    /// assert_eq!(buffer, [9; 1000]);
    /// # Ok(()) }
    /// ```
    pub fn recv_bytes_into(&self, buffer: &mut Vec<u8>) -> Result<()> {
        self.end.recv_bytes_into(buffer)
    }

    /// Receives a message sent with `send_slice`, as elements of type `E`.
    ///
    /// ```
    /// # fn main() -> mp::Result<()> {
    /// let (tx, rx) = mp::pipe_simplex::<()>()?;
    /// tx.send_slice(&[u64::MAX, 0])?;
    /// assert_eq!(rx.recv_vec::<u64>()?, [u64::MAX, 0]);
    /// # Ok(()) }
    /// ```
    pub fn recv_vec<E: bytemuck::Pod>(&self) -> Result<Vec<E>> {
        self.end.recv_elements(Vec::new())
    }

    pub(crate) fn end(&self) -> &End {
        &self.end
    }

    /// True if a message is ready, waiting at most `timeout`.
    ///
    /// ```
    /// # fn main() -> mp::Result<()> {
    /// use std::time::Duration;
    /// let (tx, rx) = mp::pipe_simplex::<u8>()?;
    /// assert!(!rx.poll(Duration::ZERO)?);
    /// tx.send(&1)?;
    /// assert!(rx.poll(Duration::from_secs(10))?);
    /// # Ok(()) }
    /// ```
    pub fn poll(&self, timeout: Duration) -> Result<bool> {
        self.end.poll(timeout)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Runs `f` on a thread bound to one CPU (the first this process may use), so that the
    /// CPU it runs on cannot change under it; `f` gets that CPU.
    fn on_one_cpu<T: Send>(f: impl FnOnce(u32) -> T + Send) -> T {
        std::thread::scope(|scope| {
            scope
                .spawn(|| {
                    let cpu = crate::affinity::get().unwrap()[0];
                    crate::affinity::set(&[cpu]).unwrap();
                    assert_eq!(sys::current_cpu(), Some(cpu as u32));
                    f(cpu as u32)
                })
                .join()
                .unwrap()
        })
    }

    #[test]
    fn a_landing_left_behind_by_a_panicked_receive_takes_no_later_body() {
        let (left, right) = Link::pair("pipe").unwrap();
        // A receive that panicked after offering its landing (never in mp: a bug would be
        // needed) leaves the landing in the reader and the lock poisoned.
        let panicked = std::thread::scope(|scope| {
            scope
                .spawn(|| {
                    let mut reader = right.lock_reader();
                    let landing = sys::ElementLanding::<u64>::reusing(Vec::new());
                    reader.frames.offer_landing(Box::new(landing));
                    panic!("in the middle of a receive");
                })
                .join()
        });
        assert!(panicked.is_err() && right.reader.is_poisoned());
        // Eight bytes are one u64: a landing still there would take them from this receive.
        left.send_bytes(&[1, 2, 3, 4, 5, 6, 7, 8]).unwrap();
        assert_eq!(right.recv_bytes(None).unwrap(), [1, 2, 3, 4, 5, 6, 7, 8]);
    }

    /// The two views of one direction of a fresh pipe: end 0 writes what end 1 reads.
    fn one_direction() -> (Ring, Ring) {
        let file = RingFile::create().unwrap();
        (file.ring(0, true), file.ring(1, false))
    }

    #[test]
    fn a_push_tells_the_reader_which_cpu_the_writer_runs_on() {
        on_one_cpu(|cpu| {
            let (writer, reader) = one_direction();
            assert_eq!(reader.writer_cpu(), None, "nothing is known before the first push");
            writer.push(&[b"x"]);
            assert_eq!(reader.writer_cpu(), Some(cpu));
            writer.publish_writer_cpu(None);
            assert_eq!(reader.writer_cpu(), None);
        });
    }

    #[test]
    fn a_wait_for_one_peer_on_this_cpu_does_not_spin() {
        on_one_cpu(|cpu| {
            let (writer, reader) = one_direction();
            writer.publish_writer_cpu(Some(cpu));
            assert!(shares_this_cpu(&reader));
            let mut spin = Spin::for_writer_of(None, &reader, Waiting::ForOnePeer);
            assert_eq!(spin.until, spin.started, "a spin that cannot help is over at once");
            // The first look at the clock ends it (every 16th turn looks).
            assert!((0..16).any(|_| !spin.turn()));
        });
    }

    #[test]
    fn a_wait_for_one_peer_elsewhere_spins_and_stops_when_the_peer_moves_here() {
        on_one_cpu(|cpu| {
            let (writer, reader) = one_direction();
            writer.publish_writer_cpu(Some(cpu + 1));
            assert!(!shares_this_cpu(&reader));
            let mut spin = Spin::for_writer_of(None, &reader, Waiting::ForOnePeer);
            assert!(spin.until > spin.started);
            writer.publish_writer_cpu(Some(cpu));
            assert!((0..16).any(|_| !spin.turn()), "the peer came onto this CPU");
        });
    }

    #[test]
    fn siblings_never_look_at_where_the_peer_runs() {
        on_one_cpu(|cpu| {
            let (writer, reader) = one_direction();
            writer.publish_writer_cpu(Some(cpu));
            let spin = Spin::for_writer_of(None, &reader, Waiting::AmongSiblings);
            assert!(spin.peer.is_none());
            assert!(spin.until > spin.started, "siblings spin, then yield (see Spin::turn)");
        });
    }

    #[test]
    fn a_group_crowds_its_cpus_only_with_more_ranks_than_cpus() {
        assert!(!crowds(2, 2));
        assert!(!crowds(1, 4));
        assert!(crowds(3, 2));
        assert!(crowds(8, 2));
    }

    #[test]
    fn an_unknown_cpu_is_never_this_one() {
        let (_writer, reader) = one_direction();
        assert_eq!(reader.writer_cpu(), None);
        assert!(!shares_this_cpu(&reader));
    }
}
