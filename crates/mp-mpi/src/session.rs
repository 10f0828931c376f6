//! The MPI session (init, finalize, the panic hook) and the peer that carries mp's messages
//! over MPI. Built with the `mpi` feature only; `without.rs` has the same names without MPI.

use std::{
    cell::{Cell, RefCell},
    collections::BTreeMap,
    marker::PhantomData,
    sync::{Arc, Mutex},
    thread::ThreadId,
    time::{Duration, Instant},
};

use mp::{Error, MessageKind, Peer, Result};
use mpi::{
    Tag, Threading,
    environment::Universe,
    topology::Process,
    topology::SimpleCommunicator,
    traits::{Communicator as _, Destination, Equivalence, Source},
};

use crate::{check_count, owned_send::OwnedSend};

/// The MPI tag of a typed message (mp's encoding: type fingerprint, then postcard).
const TAG_TYPED: Tag = 1;
/// The MPI tag of a raw-bytes message.
const TAG_BYTES: Tag = 2;
/// The MPI tag of a hang-up ([`Session::hang_up`]): an empty message that the receiving peer
/// turns into `Error::Disconnected`, as a closed pipe.
const TAG_HANG_UP: Tag = 3;
/// The MPI tag of the hang-up a session sends every other rank as it finalizes: a rank that
/// waits for a message from a rank that has finished gets `Error::Disconnected`, as from a
/// process that exited, instead of waiting until mpirun's time limit.
const TAG_FINISHED: Tag = 4;

/// What the process has done with MPI.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Phase {
    Never,
    Live { owner: ThreadId },
    Finalized,
}

static PHASE: Mutex<Phase> = Mutex::new(Phase::Never);

/// The session's state, on the thread that initialised MPI only.
struct Live {
    /// A duplicate of `MPI_COMM_WORLD`: mp's messages never match anything the program sends
    /// on the world itself with rsmpi.
    comm: SimpleCommunicator,
    rank: usize,
    size: usize,
    /// `MPI_Isend`s of owned bodies not yet known to be complete.
    pending: Vec<OwnedSend>,
}

thread_local! {
    static LIVE: RefCell<Option<Live>> = const { RefCell::new(None) };
    /// True on the thread that initialised MPI while the session lives (read by the panic
    /// hook, which must not borrow `LIVE`: the panic may come from inside a borrow).
    static MPI_THREAD: Cell<bool> = const { Cell::new(false) };
}

fn phase() -> Phase {
    *PHASE.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
}

/// Why MPI cannot be used from here.
fn unusable() -> Error {
    let message = match phase() {
        Phase::Never => "MPI is not initialised in this process: create an mp_mpi::Session \
                         first (course::run does it when mpirun starts the program)"
            .to_string(),
        Phase::Live { owner } => format!(
            "MPI here is initialised for one thread (thread {owner:?}, which created the \
             Session), and this call came from thread {:?}: make MPI calls on that thread",
            std::thread::current().id()
        ),
        Phase::Finalized => {
            "the MPI session has ended (its Session was dropped, MPI is finalized)".to_string()
        }
    };
    Error::InvalidArgument { message }
}

/// Runs `f` on the live session, after freeing the sends that completed; the error of
/// [`unusable`] on any other thread or when no session lives.
fn with_live<R>(f: impl FnOnce(&mut Live) -> Result<R>) -> Result<R> {
    LIVE.with(|cell| {
        let mut borrowed = cell.try_borrow_mut().map_err(|_| Error::InvalidArgument {
            message: "an MPI call was made from inside another one on this thread".into(),
        })?;
        let live = borrowed.as_mut().ok_or_else(unusable)?;
        progress(&mut live.pending);
        f(live)
    })
}

/// Tests every pending send once; frees the completed ones.
fn progress(pending: &mut Vec<OwnedSend>) {
    if pending.is_empty() {
        return;
    }
    let mut still = Vec::with_capacity(pending.len());
    for send in pending.drain(..) {
        if let Err(send) = send.test() {
            still.push(send);
        }
    }
    *pending = still;
}

/// Ends the whole MPI job with `code` (`MPI_Abort`) when called on the thread of a live
/// session; otherwise ends this process with `code`.
pub fn abort(code: i32) -> ! {
    if MPI_THREAD.with(Cell::get) {
        SimpleCommunicator::world().abort(code)
    }
    std::process::exit(code)
}

/// How long a finalizing session waits for its sends to be received.
const DEFAULT_FINALIZE_TIMEOUT: Duration = Duration::from_secs(10);

/// This process's part of an MPI job: MPI initialised (once per process) and finalized when
/// the session is dropped.
///
/// * [`Session::init`] initialises MPI for the calling thread (`MPI_THREAD_FUNNELED`: only
///   that thread calls MPI; a call from another thread is an error, never undefined
///   behaviour) and installs a panic hook: after the previous hook has printed the message, a
///   panic on this thread ends the whole job (`MPI_Abort`, code 101), where the other ranks
///   would otherwise wait forever and the panicking one would hang in `MPI_Finalize`.
/// * [`Session::world`] is an [`mp::Comm`] over MPI: the same [`mp::Communicator`] as
///   `mp::launch` gives, so the same code runs on both.
/// * Dropping it waits (up to 10 s, see [`Session::set_finalize_timeout`]) until the typed
///   messages it sent have been received, then finalizes. If some never are, it prints one
///   line per destination and ends the job (`MPI_Abort`, code 1) rather than hang.
///
/// The session is not `Send`: it stays on (and is dropped on) the thread that made it.
///
/// ```no_run
/// use mp::Communicator;
///
/// fn main() -> mp::Result<()> {
///     mp::init();
///     let session = mp_mpi::Session::init()?; // under `mpirun -n 4`
///     let world = session.world()?;
///     if world.rank() == 0 {
///         let total: usize = (1..world.size()).map(|r| world.recv::<usize>(r).unwrap()).sum();
///         println!("sum of ranks: {total}");
///     } else {
///         world.send(0, &world.rank())?;
///     }
///     Ok(())
/// } // the session is dropped here: MPI_Finalize
/// ```
pub struct Session {
    universe: Option<Universe>,
    rank: usize,
    size: usize,
    finalize_timeout: Duration,
    /// Not `Send` or `Sync`: MPI is initialised for this thread.
    _here: PhantomData<*const ()>,
}

impl std::fmt::Debug for Session {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Session").field("rank", &self.rank).field("size", &self.size).finish()
    }
}

impl Session {
    /// Initialises MPI for this thread. A second call in the same process (MPI allows one
    /// initialisation per process, even after finalize) is [`Error::InvalidArgument`].
    ///
    /// ```no_run
    /// let session = mp_mpi::Session::init()?;
    /// assert!(mp_mpi::Session::init().is_err());
    /// println!("rank {} of {} on {}", session.rank(), session.size(), session.processor_name()?);
    /// # Ok::<(), mp::Error>(())
    /// ```
    pub fn init() -> Result<Session> {
        let mut phase = PHASE.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
        if *phase != Phase::Never || mpi::is_initialized() {
            return Err(Error::InvalidArgument {
                message: "MPI is already initialised in this process (MPI allows one \
                          initialisation per process): use the existing Session"
                    .into(),
            });
        }
        let Some((universe, _provided)) = mpi::initialize_with_threading(Threading::Funneled)
        else {
            return Err(Error::InvalidArgument {
                message: "MPI could not be initialised (it was initialised before)".into(),
            });
        };
        let world = universe.world();
        let comm = world.duplicate();
        let (rank, size) = (comm.rank() as usize, comm.size() as usize);
        LIVE.with(|cell| {
            *cell.borrow_mut() = Some(Live { comm, rank, size, pending: Vec::new() });
        });
        MPI_THREAD.with(|flag| flag.set(true));
        *phase = Phase::Live { owner: std::thread::current().id() };
        drop(phase);
        install_panic_hook();
        Ok(Session {
            universe: Some(universe),
            rank,
            size,
            finalize_timeout: DEFAULT_FINALIZE_TIMEOUT,
            _here: PhantomData,
        })
    }

    /// This process's rank in the job, from 0 to `size() - 1`.
    pub fn rank(&self) -> usize {
        self.rank
    }

    /// The number of ranks in the job (mpirun's `-n`).
    pub fn size(&self) -> usize {
        self.size
    }

    /// The whole job as an [`mp::Comm`]: every rank connected to every other (MPI's world),
    /// typed and raw messages as with `mp::launch`. It may be made any number of times; all
    /// share one MPI communicator.
    pub fn world(&self) -> Result<mp::Comm> {
        world_comm()
    }

    /// The peer for `rank`, for mp's endpoints (`mp::Connection::from_peer`). The own rank is
    /// allowed: MPI can send to itself (a typed send never waits, so a ring of one rank works).
    pub fn peer(&self, rank: usize) -> Result<Arc<dyn Peer>> {
        Ok(Arc::new(MpiPeer { rank: self.existing(rank)? }))
    }

    /// Tells `rank` that this rank will send it nothing more on mp's endpoints, as dropping a
    /// pipe end does: `rank`'s next receive from this rank (through [`Session::peer`],
    /// [`Session::world`] or an endpoint built on them) returns [`Error::Disconnected`] naming
    /// this rank, once the messages sent before it have been received (MPI keeps their
    /// order). An MPI rank has no end to drop, so a loop that stops on `is_disconnected()`,
    /// like a pipe's `echo`, needs this to stop.
    ///
    /// The hang-up is an empty message with a tag of its own, sent without waiting for the
    /// receiver (like a typed send, it must be received before the session finalizes). It ends
    /// one conversation, not the link: after that `Disconnected`, the two ranks may talk again.
    ///
    /// ```no_run
    /// // rank 0: measure, then let rank 1's echo loop return its count.
    /// # let session = mp_mpi::Session::init()?;
    /// let conn = mp::Connection::<()>::from_peer(session.peer(1)?);
    /// conn.send_bytes(b"ping")?;
    /// let _reply = conn.recv_bytes()?;
    /// session.hang_up(1)?;
    /// # Ok::<(), mp::Error>(())
    /// ```
    pub fn hang_up(&self, rank: usize) -> Result<()> {
        let peer = MpiPeer { rank: self.existing(rank)? };
        with_live(|live| {
            let send = OwnedSend::start(&peer.process(live), rank, Vec::new(), TAG_HANG_UP);
            live.pending.push(send);
            progress(&mut live.pending);
            Ok(())
        })
    }

    /// The MPI library's own description of itself (`MPI_Get_library_version`), its first
    /// line: "Open MPI v4.1.4, package: ...", "MPICH Version: 4.0 ...".
    pub fn library_version(&self) -> Result<String> {
        with_live(|_| {
            let text = mpi::environment::library_version().map_err(|error| Error::Corrupted {
                message: format!("MPI library version: {error}"),
            })?;
            Ok(text.lines().next().unwrap_or_default().trim().to_string())
        })
    }

    /// `rank` when the job has it, else the error naming the job's ranks.
    fn existing(&self, rank: usize) -> Result<usize> {
        if rank >= self.size {
            return Err(Error::InvalidArgument {
                message: format!(
                    "rank {rank} does not exist: the MPI job has ranks 0 to {}",
                    self.size - 1
                ),
            });
        }
        Ok(rank)
    }

    /// Waits until every rank has called `barrier` (`MPI_Barrier`).
    pub fn barrier(&self) -> Result<()> {
        with_live(|live| {
            mpi::collective::CommunicatorCollectives::barrier(&live.comm);
            Ok(())
        })
    }

    /// The name of the machine this rank runs on (`MPI_Get_processor_name`), for "rank 2 on
    /// node7".
    pub fn processor_name(&self) -> Result<String> {
        with_live(|_| {
            mpi::environment::processor_name()
                .map_err(|error| Error::Corrupted { message: format!("processor name: {error}") })
        })
    }

    /// How long dropping the session waits for its sent messages to be received before it
    /// gives up and ends the job (10 s unless set).
    pub fn set_finalize_timeout(&mut self, timeout: Duration) {
        self.finalize_timeout = timeout;
    }
}

impl Drop for Session {
    fn drop(&mut self) {
        let live = LIVE.with(|cell| cell.borrow_mut().take());
        if let Some(mut live) = live {
            // Behind everything this rank sent (MPI keeps the order between two ranks), so a
            // peer receives those first and then learns that this rank is gone.
            for rank in (0..live.size).filter(|&rank| rank != live.rank) {
                let peer = MpiPeer { rank };
                let send = OwnedSend::start(&peer.process(&live), rank, Vec::new(), TAG_FINISHED);
                live.pending.push(send);
            }
            let deadline = Instant::now() + self.finalize_timeout;
            let mut pause = Duration::from_micros(50);
            while !live.pending.is_empty() && Instant::now() < deadline {
                progress(&mut live.pending);
                if !live.pending.is_empty() {
                    std::thread::sleep(pause);
                    pause = (pause * 2).min(Duration::from_millis(20));
                }
            }
            // Hang-ups nobody waited for are not a fault: only messages are.
            if live.pending.iter().any(|send| send.tag != TAG_HANG_UP && send.tag != TAG_FINISHED) {
                let mut by_dest: BTreeMap<usize, usize> = BTreeMap::new();
                for send in live.pending.iter().filter(|send| send.tag == TAG_TYPED) {
                    *by_dest.entry(send.dest).or_default() += 1;
                }
                for (dest, count) in by_dest {
                    let (noun, verb) =
                        if count == 1 { ("message", "was") } else { ("messages", "were") };
                    eprintln!(
                        "rank {}: {count} {noun} to rank {dest} {verb} never received; ending \
                         the job",
                        live.rank
                    );
                }
                abort(1);
            }
            // Left: hang-ups to ranks that stopped receiving. They hold no memory, and rsmpi
            // panics on dropping a request that is not complete: let the process end keep them.
            std::mem::forget(std::mem::take(&mut live.pending));
            drop(live.comm); // MPI_Comm_free, before MPI_Finalize
        }
        MPI_THREAD.with(|flag| flag.set(false));
        *PHASE.lock().unwrap_or_else(|poisoned| poisoned.into_inner()) = Phase::Finalized;
        drop(self.universe.take()); // MPI_Finalize
    }
}

/// The world of the session live on this thread, if any.
pub(crate) fn world_comm() -> Result<mp::Comm> {
    let (rank, size) = with_live(|live| Ok((live.rank, live.size)))?;
    let peers = (0..size)
        .map(|peer| (peer != rank).then(|| Arc::new(MpiPeer { rank: peer }) as Arc<dyn Peer>))
        .collect();
    mp::Comm::from_peers(rank, peers)
}

/// After the previous hook has printed the panic, a panic on the MPI thread ends the job.
fn install_panic_hook() {
    let previous = std::panic::take_hook();
    std::panic::set_hook(Box::new(move |info| {
        previous(info);
        if MPI_THREAD.with(Cell::get) {
            abort(101);
        }
    }));
}

/// One other rank (or this one) as an mp [`Peer`]: the message kind travels as the MPI tag.
#[derive(Debug)]
struct MpiPeer {
    rank: usize,
}

impl MpiPeer {
    fn process<'a>(&self, live: &'a Live) -> Process<'a> {
        live.comm.process_at_rank(self.rank as mpi::Rank)
    }

    fn timeout_error(&self, waited: Duration) -> Error {
        Error::Timeout { what: format!("a message from {}", self.describe()), waited }
    }
}

fn tag_of(kind: MessageKind) -> Tag {
    match kind {
        MessageKind::Typed => TAG_TYPED,
        MessageKind::Bytes => TAG_BYTES,
    }
}

/// Sleeps a little longer each time: spins first (MPI's own latency is below a microsecond),
/// then yields, then sleeps from 10 µs up to 1 ms, so a long wait does not burn a core.
struct Backoff {
    rounds: u32,
}

impl Backoff {
    fn pause(&mut self) {
        self.rounds += 1;
        match self.rounds {
            0..=100 => std::hint::spin_loop(),
            101..=200 => std::thread::yield_now(),
            n => std::thread::sleep(
                Duration::from_micros(10u64 << (n - 200).min(7)).min(Duration::from_millis(1)),
            ),
        }
    }
}

impl Peer for MpiPeer {
    fn describe(&self) -> String {
        format!("MPI rank {}", self.rank)
    }

    /// `MPI_Isend` of the body, kept until complete: never waits for the receiver.
    fn send_owned(&self, kind: MessageKind, body: Vec<u8>) -> Result<()> {
        check_count(body.len(), &self.describe())?;
        with_live(|live| {
            let send = OwnedSend::start(&self.process(live), self.rank, body, tag_of(kind));
            live.pending.push(send);
            progress(&mut live.pending);
            Ok(())
        })
    }

    /// `MPI_Send`: above MPI's eager limit (4 KiB in shared memory with Open MPI) it waits
    /// until the receiver takes the message, as mpi4py's `Send` does.
    fn send_borrowed(&self, kind: MessageKind, body: &[u8]) -> Result<()> {
        check_count(body.len(), &self.describe())?;
        with_live(|live| {
            self.process(live).send_with_tag(body, tag_of(kind));
            Ok(())
        })
    }

    /// `MPI_Mprobe` (or `MPI_Improbe` in a loop, with a timeout) from this rank with any tag,
    /// then `MPI_Mrecv` into the reused buffer. A hang-up ([`Session::hang_up`]) is received
    /// and returned as `Error::Disconnected`.
    fn recv_into(&self, buffer: &mut Vec<u8>, timeout: Option<Duration>) -> Result<MessageKind> {
        with_live(|live| {
            let process = self.process(live);
            let (message, status) = match timeout {
                None => process.matched_probe(),
                Some(timeout) => {
                    let deadline = Instant::now() + timeout;
                    let mut backoff = Backoff { rounds: 0 };
                    loop {
                        if let Some(found) = process.immediate_matched_probe() {
                            break found;
                        }
                        if Instant::now() >= deadline {
                            return Err(self.timeout_error(timeout));
                        }
                        backoff.pause();
                    }
                }
            };
            let kind = match status.tag() {
                TAG_TYPED => MessageKind::Typed,
                TAG_BYTES => MessageKind::Bytes,
                TAG_HANG_UP | TAG_FINISHED => {
                    message.matched_receive_into(&mut [0u8; 0][..]);
                    let why = if status.tag() == TAG_HANG_UP {
                        "it hung up: Session::hang_up"
                    } else {
                        "it has finished: its MPI session ended, and it sends nothing more"
                    };
                    return Err(Error::Disconnected {
                        endpoint: format!("the connection to {} ({why})", self.describe()),
                    });
                }
                other => {
                    return Err(Error::Corrupted {
                        message: format!(
                            "a message from {} has the MPI tag {other}, which mp does not use",
                            self.describe()
                        ),
                    });
                }
            };
            let count = usize::try_from(status.count(u8::equivalent_datatype())).unwrap_or(0);
            if count > buffer.len() {
                buffer.try_reserve(count - buffer.len()).map_err(|_| Error::OutOfMemory {
                    bytes: count as u64,
                    what: format!("a message from {}", self.describe()),
                })?;
            }
            buffer.resize(count, 0);
            message.matched_receive_into(&mut buffer[..]);
            Ok(kind)
        })
    }

    /// `MPI_Iprobe` from this rank with any tag, until `timeout`.
    fn poll(&self, timeout: Duration) -> Result<bool> {
        with_live(|live| {
            let process = self.process(live);
            let deadline = Instant::now() + timeout;
            let mut backoff = Backoff { rounds: 0 };
            loop {
                if process.immediate_probe().is_some() {
                    return Ok(true);
                }
                if Instant::now() >= deadline {
                    return Ok(false);
                }
                backoff.pause();
            }
        })
    }
}

/// MPI's collectives on the live session's communicator.
pub(crate) mod collectives {
    use mpi::{collective::SystemOperation, traits::*};

    use super::with_live;
    use crate::native::Number;

    pub(crate) fn broadcast<T: Number>(mut value: T) -> mp::Result<T> {
        with_live(|live| {
            live.comm.process_at_rank(0).broadcast_into(&mut value);
            Ok(value)
        })
    }

    pub(crate) fn reduce_sum<T: Number>(value: T) -> mp::Result<Option<T>> {
        with_live(|live| {
            let root = live.comm.process_at_rank(0);
            if live.rank == 0 {
                let mut sum = value;
                root.reduce_into_root(&value, &mut sum, SystemOperation::sum());
                Ok(Some(sum))
            } else {
                root.reduce_into(&value, SystemOperation::sum());
                Ok(None)
            }
        })
    }

    pub(crate) fn allreduce_sum<T: Number>(value: T) -> mp::Result<T> {
        with_live(|live| {
            let mut sum = value;
            live.comm.all_reduce_into(&value, &mut sum, SystemOperation::sum());
            Ok(sum)
        })
    }
}
