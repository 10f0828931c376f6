//! Ranks: a group of processes that each know their rank, the group's size and their
//! connections, in the shape of MPI (`rank`, `size`, `send`, `recv`).
//!
//! [`launch`] starts `n_ranks` processes running `f(comm, arg)` and returns their results in
//! rank order: Python's `pool.starmap(run, [(rank, connections), ...])` with the wiring done for
//! you. Code written against the [`Communicator`] trait runs unchanged on a later MPI backend.
//!
//! ```
//! # fn main() -> mp::Result<()> {
//! # mp::init();
//! use mp::{Comm, Communicator};
//!
//! // Every rank sends its rank to rank 0, which adds them up.
//! fn sum_of_ranks(comm: Comm, _: ()) -> usize {
//!     if comm.rank() != 0 {
//!         comm.send(0, &comm.rank()).unwrap();
//!         return 0;
//!     }
//!     (1..comm.size()).map(|source| comm.recv::<usize>(source).unwrap()).sum()
//! }
//!
//! let results = mp::launch(4, sum_of_ranks, ())?;
//! assert_eq!(results, [6, 0, 0, 0]);
//! # Ok(()) }
//! ```

use std::{fmt, sync::Arc, time::Duration};

use serde::{Deserialize, Serialize, de::DeserializeOwned};

use crate::{
    Connection, Error, Message, Peer, Process, Result,
    channel::{self, End, bytes_to_vec},
    sys, wire,
};

/// The most ranks one launch may start.
const MAX_RANKS: usize = 256;

/// Point-to-point messages between the ranks of a group: what MPI's `MPI_Comm` offers.
///
/// [`Comm`] implements it over pipes between processes on one machine; an MPI backend can
/// implement it across machines, and code written against the trait runs on both.
///
/// ```
/// # fn main() -> mp::Result<()> {
/// # mp::init();
/// use mp::{Comm, Communicator};
///
/// // Each rank sends a greeting to the next one round the ring and returns what it got.
/// fn greet_next(comm: Comm, _: ()) -> String {
///     let (rank, size) = (comm.rank(), comm.size());
///     comm.send((rank + 1) % size, &format!("hello from {rank}")).unwrap();
///     comm.recv((rank + size - 1) % size).unwrap()
/// }
///
/// let results = mp::launch(3, greet_next, ())?;
/// assert_eq!(results, ["hello from 2", "hello from 0", "hello from 1"]);
/// # Ok(()) }
/// ```
pub trait Communicator {
    /// This process's rank, from 0 to `size() - 1`.
    fn rank(&self) -> usize;
    /// The number of ranks in the group.
    fn size(&self) -> usize;
    /// Sends a typed message to rank `dest`. With [`Comm`] it carries a fingerprint of `T`.
    fn send<T: Serialize>(&self, dest: usize, value: &T) -> Result<()>;
    /// Waits for the next typed message from rank `source`. With [`Comm`], a message sent
    /// with another type is [`Error::TypeMismatch`] naming both (MPI leaves it undefined);
    /// references, `Box` and slices count as the type they point to, so a wrapper may send
    /// `&(step, value)` for a `recv` of `(u64, T)`.
    ///
    /// ```
    /// # fn main() -> mp::Result<()> {
    /// # mp::init();
    /// use mp::{Comm, Communicator};
    ///
    /// fn mixed_up(comm: Comm, _: ()) -> String {
    ///     if comm.rank() == 0 {
    ///         comm.send(1, &vec![1.0f64, 2.0, 3.0]).unwrap();
    ///         return String::new();
    ///     }
    ///     comm.recv::<u64>(0).unwrap_err().to_string()
    /// }
    ///
    /// let errors = mp::launch(2, mixed_up, ())?;
    /// assert!(errors[1].starts_with("received a `Vec<f64>` but the receiver asked for a `u64`"));
    /// # Ok(()) }
    /// ```
    fn recv<T: DeserializeOwned>(&self, source: usize) -> Result<T>;
    /// Sends raw bytes to rank `dest`.
    fn send_bytes(&self, dest: usize, bytes: &[u8]) -> Result<()>;
    /// Waits for the next raw-bytes message from rank `source`.
    fn recv_bytes(&self, source: usize) -> Result<Vec<u8>>;

    /// Sends `value` to rank `dest`, then waits for the next typed message from rank `source`
    /// (mpi4py's `comm.sendrecv`, MPI's `MPI_Sendrecv`): the exchange step of a ring shift or
    /// a halo swap.
    ///
    /// Partners may call it at the same time, each sending to the other first, whatever the
    /// message sizes: it cannot deadlock, because a typed send never waits for the receiver,
    /// on every backend (mp's pipes hand what the receiver has not taken to a flusher thread;
    /// a [`Peer`](crate::Peer) must return from `send_owned` without waiting). Raw bytes are
    /// not covered: a peer's `send_borrowed` may wait for the receiver.
    ///
    /// ```
    /// # fn main() -> mp::Result<()> {
    /// # mp::init();
    /// use mp::{Comm, Communicator};
    ///
    /// // Every rank passes a large vector to the next one round the ring, all at once.
    /// fn shift(comm: Comm, _: ()) -> usize {
    ///     let (rank, size) = (comm.rank(), comm.size());
    ///     let mine = vec![rank as f64; 1 << 20]; // 8 MiB: far more than a pipe holds
    ///     let got: Vec<f64> = comm.sendrecv((rank + 1) % size, &mine, (rank + size - 1) % size).unwrap();
    ///     got[0] as usize
    /// }
    ///
    /// assert_eq!(mp::launch(3, shift, ())?, [2, 0, 1]);
    /// # Ok(()) }
    /// ```
    fn sendrecv<S: Serialize, R: DeserializeOwned>(
        &self,
        dest: usize,
        value: &S,
        source: usize,
    ) -> Result<R> {
        self.send(dest, value)?;
        self.recv(source)
    }

    /// As [`Communicator::recv_bytes`], but into `buffer`, reusing its allocation (the fast
    /// way to receive large messages repeatedly). After an error its contents are unspecified.
    ///
    /// ```
    /// # fn main() -> mp::Result<()> {
    /// # mp::init();
    /// use mp::{Comm, Communicator};
    ///
    /// fn exchange(comm: Comm, _: ()) -> usize {
    ///     let peer = 1 - comm.rank();
    ///     let mut buffer = Vec::new();
    ///     for round in 0..3 {
    ///         comm.send_bytes(peer, &vec![round as u8; 1000]).unwrap();
    ///         comm.recv_bytes_into(peer, &mut buffer).unwrap();
    ///         assert_eq!(buffer, vec![round as u8; 1000]);
    ///     }
    ///     buffer.len()
    /// }
    ///
    /// assert_eq!(mp::launch(2, exchange, ())?, [1000, 1000]);
    /// # Ok(()) }
    /// ```
    fn recv_bytes_into(&self, source: usize, buffer: &mut Vec<u8>) -> Result<()> {
        *buffer = self.recv_bytes(source)?;
        Ok(())
    }

    /// Sends a slice of plain numbers as its bytes (no per-element encoding).
    ///
    /// ```
    /// # fn main() -> mp::Result<()> {
    /// # mp::init();
    /// use mp::{Comm, Communicator};
    ///
    /// fn exchange(comm: Comm, _: ()) -> Vec<f64> {
    ///     let peer = 1 - comm.rank();
    ///     comm.send_slice(peer, &[comm.rank() as f64; 3]).unwrap();
    ///     comm.recv_vec(peer).unwrap()
    /// }
    ///
    /// assert_eq!(mp::launch(2, exchange, ())?, [[1.0; 3], [0.0; 3]]);
    /// # Ok(()) }
    /// ```
    fn send_slice<E: bytemuck::Pod>(&self, dest: usize, items: &[E]) -> Result<()> {
        self.send_bytes(dest, bytemuck::cast_slice(items))
    }

    /// Receives a message sent with [`Communicator::send_slice`], as elements of type `E`.
    ///
    /// Bytes that are not a whole number of `E`s are an error.
    ///
    /// ```
    /// # fn main() -> mp::Result<()> {
    /// # mp::init();
    /// use mp::{Comm, Communicator};
    ///
    /// fn wrong_type(comm: Comm, _: ()) -> bool {
    ///     if comm.rank() == 0 {
    ///         return comm.send_slice(1, &[1u8, 2, 3]).is_ok();
    ///     }
    ///     comm.recv_vec::<u32>(0).is_err()
    /// }
    ///
    /// assert_eq!(mp::launch(2, wrong_type, ())?, [true, true]);
    /// # Ok(()) }
    /// ```
    fn recv_vec<E: bytemuck::Pod>(&self, source: usize) -> Result<Vec<E>> {
        bytes_to_vec(self.recv_bytes(source)?)
    }

    /// Receives a message sent with [`Communicator::send_slice`] into `items`, reusing its
    /// allocation (see [`Connection::recv_into`]): the typed
    /// [`Communicator::recv_bytes_into`]. Bytes that are not a whole number of `E`s are an
    /// error; after an error the contents of `items` are unspecified.
    ///
    /// ```
    /// # fn main() -> mp::Result<()> {
    /// # mp::init();
    /// use mp::{Comm, Communicator};
    ///
    /// fn exchange(comm: Comm, _: ()) -> (Vec<f64>, usize) {
    ///     let peer = 1 - comm.rank();
    ///     let mut items = Vec::with_capacity(1000);
    ///     for round in 0..3 {
    ///         comm.send_slice(peer, &vec![round as f64; 1000]).unwrap();
    ///         comm.recv_into(peer, &mut items).unwrap();
    ///     }
    ///     (items[..2].to_vec(), items.capacity())
    /// }
    ///
    /// let expected = (vec![2.0, 2.0], 1000);
    /// assert_eq!(mp::launch(2, exchange, ())?, [expected.clone(), expected]);
    /// # Ok(()) }
    /// ```
    fn recv_into<E: bytemuck::Pod>(&self, source: usize, items: &mut Vec<E>) -> Result<()> {
        crate::ends::recv_into_reusing(items, |buffer| self.recv_bytes_into(source, buffer))
    }
}

/// Which ranks of a group are connected to each other.
///
/// ```
/// use mp::Topology;
/// assert_eq!(Topology::default(), Topology::AllToAll);
/// assert_eq!(Topology::Star { root: 0 }.n_connections(5), 4);
/// ```
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize, Default)]
pub enum Topology {
    /// Every rank to every other: `n (n - 1) / 2` connections.
    #[default]
    AllToAll,
    /// Each rank to `rank - 1` and `rank + 1`, and the last to the first: `n` connections
    /// (one for 2 ranks).
    Ring,
    /// The root to every other rank: `n - 1` connections.
    Star {
        /// The centre of the star.
        root: usize,
    },
}

impl Topology {
    /// True when ranks `a` and `b` of a group of `size` have a connection.
    ///
    /// ```
    /// use mp::Topology;
    /// assert!(Topology::Ring.connects(0, 3, 4));
    /// assert!(!Topology::Ring.connects(0, 2, 4));
    /// assert!(Topology::Star { root: 0 }.connects(2, 0, 4));
    /// ```
    pub fn connects(self, a: usize, b: usize, size: usize) -> bool {
        if a == b || a >= size || b >= size {
            return false;
        }
        match self {
            Topology::AllToAll => true,
            Topology::Ring => (a + 1) % size == b || (b + 1) % size == a,
            Topology::Star { root } => a == root || b == root,
        }
    }

    /// How many connections a group of `size` ranks needs in this topology.
    ///
    /// ```
    /// assert_eq!(mp::Topology::AllToAll.n_connections(4), 6);
    /// assert_eq!(mp::Topology::Ring.n_connections(4), 4);
    /// ```
    pub fn n_connections(self, size: usize) -> usize {
        (0..size)
            .flat_map(|a| (a + 1..size).map(move |b| (a, b)))
            .filter(|&(a, b)| self.connects(a, b, size))
            .count()
    }
}

/// One rank's view of its group: its rank, the size, and a connection to each neighbour.
///
/// [`launch`] and [`Launch::run`] give one to each rank; use it through [`Communicator`].
///
/// ```
/// # fn main() -> mp::Result<()> {
/// # mp::init();
/// use mp::{Comm, Communicator};
///
/// fn whoami(comm: Comm, _: ()) -> (usize, usize) { (comm.rank(), comm.size()) }
///
/// assert_eq!(mp::launch(3, whoami, ())?, [(0, 3), (1, 3), (2, 3)]);
/// # Ok(()) }
/// ```
#[derive(Serialize, Deserialize)]
pub struct Comm {
    rank: usize,
    size: usize,
    topology: Topology,
    /// Indexed by peer rank; None where the topology has no connection.
    links: Vec<Option<Connection<()>>>,
}

impl fmt::Debug for Comm {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Comm")
            .field("rank", &self.rank)
            .field("size", &self.size)
            .field("topology", &self.topology)
            .finish()
    }
}

impl Comm {
    /// Rank `rank` of a group whose messages travel through [`Peer`]s, transports outside mp
    /// (for example MPI, through the `mp-mpi` crate): `peers[r]` carries this rank's messages
    /// to and from rank `r`. The group's size is `peers.len()`, its topology all-to-all.
    ///
    /// `peers[rank]` must be `None` (a rank sends nothing to itself: a send to itself is the
    /// same error as in a launched group); any other `None` means no connection to that rank,
    /// with the same error as a launched group that lacks it. A `rank` outside the group is
    /// [`Error::InvalidArgument`]. It behaves as a launched rank's `Comm`, except that it
    /// cannot be handed to another process.
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
    /// use mp::{Comm, Communicator, Peer};
    ///
    /// // `Nowhere` is a `Peer` that drops what it is sent (see `mp::Peer` for a real one).
    /// let peer = || Some(Arc::new(Nowhere) as Arc<dyn Peer>);
    /// let comm = Comm::from_peers(1, vec![peer(), None, peer()])?;
    /// assert_eq!((comm.rank(), comm.size(), comm.neighbours()), (1, 3, vec![0, 2]));
    /// comm.send(2, &"hello")?;
    /// assert!(comm.send(1, &0).is_err()); // itself
    /// assert!(Comm::from_peers(3, vec![peer(), None, peer()]).is_err());
    /// # Ok::<(), mp::Error>(())
    /// ```
    pub fn from_peers(rank: usize, peers: Vec<Option<Arc<dyn Peer>>>) -> Result<Comm> {
        let size = peers.len();
        if rank >= size {
            return Err(Error::invalid(format!(
                "rank {rank} is not a rank of a group of {size}: ranks go from 0 to size - 1"
            )));
        }
        if peers[rank].is_some() {
            return Err(Error::invalid(format!(
                "rank {rank} was given a peer for itself: entry {rank} of the peers must be None"
            )));
        }
        let links = peers
            .into_iter()
            .map(|peer| peer.map(|peer| Connection::from_end(End::Peer(peer))))
            .collect();
        Ok(Comm { rank, size, topology: Topology::AllToAll, links })
    }

    /// The ranks this rank has a connection to.
    ///
    /// ```
    /// # fn main() -> mp::Result<()> {
    /// # mp::init();
    /// fn neighbours(comm: mp::Comm, _: ()) -> Vec<usize> { comm.neighbours() }
    ///
    /// let ring = mp::Launch { n_ranks: 4, topology: mp::Topology::Ring };
    /// assert_eq!(ring.run(neighbours, ())?[0], [1, 3]);
    /// # Ok(()) }
    /// ```
    pub fn neighbours(&self) -> Vec<usize> {
        (0..self.size).filter(|&peer| self.links[peer].is_some()).collect()
    }

    /// How the group is wired.
    ///
    /// ```
    /// # fn main() -> mp::Result<()> {
    /// # mp::init();
    /// use mp::Topology;
    /// fn topology(comm: mp::Comm, _: ()) -> Topology { comm.topology() }
    ///
    /// let star = mp::Launch { n_ranks: 3, topology: Topology::Star { root: 1 } };
    /// assert_eq!(star.run(topology, ())?, [Topology::Star { root: 1 }; 3]);
    /// # Ok(()) }
    /// ```
    pub fn topology(&self) -> Topology {
        self.topology
    }

    /// As [`Communicator::recv`], but gives up after `timeout` with [`Error::Timeout`]; nothing
    /// is lost, and the message can still be received later.
    ///
    /// ```
    /// # fn main() -> mp::Result<()> {
    /// # mp::init();
    /// use mp::{Comm, Communicator};
    /// use std::time::Duration;
    /// fn late(comm: Comm, _: ()) -> bool {
    ///     if comm.rank() == 1 {
    ///         let early = comm.recv_timeout::<u32>(0, Duration::from_millis(10));
    ///         let timed_out = early.unwrap_err().is_timeout();
    ///         comm.send(0, &()).unwrap(); // now rank 0 may send
    ///         return timed_out && comm.recv_timeout::<u32>(0, Duration::from_secs(30)).unwrap() == 7;
    ///     }
    ///     let () = comm.recv(1).unwrap();
    ///     comm.send(1, &7u32).unwrap();
    ///     true
    /// }
    ///
    /// assert_eq!(mp::launch(2, late, ())?, [true, true]);
    /// # Ok(()) }
    /// ```
    pub fn recv_timeout<T: DeserializeOwned>(&self, source: usize, timeout: Duration) -> Result<T> {
        self.link(source)?.recv_postcard(Some(timeout))
    }

    fn link(&self, peer: usize) -> Result<&End> {
        if peer >= self.size {
            return Err(Error::invalid(format!(
                "rank {peer} does not exist: the group has ranks 0 to {}",
                self.size - 1
            )));
        }
        match &self.links[peer] {
            Some(connection) => Ok(connection.end()),
            None if peer == self.rank => {
                Err(Error::invalid(format!("rank {peer} tried to send to or receive from itself")))
            }
            None => Err(Error::invalid(format!(
                "rank {} has no connection to rank {peer} in a {:?} topology; its neighbours are {:?}",
                self.rank,
                self.topology,
                self.neighbours()
            ))),
        }
    }
}

impl Communicator for Comm {
    fn rank(&self) -> usize {
        self.rank
    }

    fn size(&self) -> usize {
        self.size
    }

    // The trait does not ask for `'static` (a wrapper may send a borrowing `&(step, value)`), so
    // no bulk fast path here: plain postcard, whose bytes the fast path reads alike.
    fn send<T: Serialize>(&self, dest: usize, value: &T) -> Result<()> {
        self.link(dest)?.send_encoded(wire::encode_postcard(value)?)
    }

    fn recv<T: DeserializeOwned>(&self, source: usize) -> Result<T> {
        self.link(source)?.recv_postcard(None)
    }

    fn send_bytes(&self, dest: usize, bytes: &[u8]) -> Result<()> {
        self.link(dest)?.send_bytes(bytes)
    }

    fn recv_bytes(&self, source: usize) -> Result<Vec<u8>> {
        self.link(source)?.recv_bytes(None)
    }

    fn recv_bytes_into(&self, source: usize, buffer: &mut Vec<u8>) -> Result<()> {
        self.link(source)?.recv_bytes_into(buffer)
    }

    fn recv_vec<E: bytemuck::Pod>(&self, source: usize) -> Result<Vec<E>> {
        self.link(source)?.recv_elements(Vec::new())
    }

    fn recv_into<E: bytemuck::Pod>(&self, source: usize, items: &mut Vec<E>) -> Result<()> {
        *items = self.link(source)?.recv_elements(std::mem::take(items))?;
        Ok(())
    }
}

/// How to launch a group of ranks: how many, and which pairs get a connection. [`launch`] is
/// the short form for all-to-all.
///
/// ```
/// # fn main() -> mp::Result<()> {
/// # mp::init();
/// fn n_neighbours(comm: mp::Comm, _: ()) -> usize { comm.neighbours().len() }
///
/// let star = mp::Launch { n_ranks: 4, topology: mp::Topology::Star { root: 0 } };
/// assert_eq!(star.run(n_neighbours, ())?, [3, 1, 1, 1]);
/// # Ok(()) }
/// ```
#[derive(Clone, Copy, Debug)]
pub struct Launch {
    /// How many processes to start.
    pub n_ranks: usize,
    /// Which of them get connected.
    pub topology: Topology,
}

impl Launch {
    /// Starts the group, each rank running `f(comm, arg.clone())`, and waits for all.
    ///
    /// Returns the results in rank order. If one rank fails, the others are killed and the
    /// error says which rank failed and why (an MPI program would hang or abort).
    ///
    /// ```
    /// # fn main() -> mp::Result<()> {
    /// # mp::init();
    /// use mp::{Comm, Communicator};
    /// fn plus_rank(comm: Comm, offset: usize) -> usize { offset + comm.rank() }
    /// fn fails_on_one(comm: Comm, _: ()) { assert_ne!(comm.rank(), 1) }
    ///
    /// let ring = mp::Launch { n_ranks: 3, topology: mp::Topology::Ring };
    /// assert_eq!(ring.run(plus_rank, 10)?, [10, 11, 12]);
    /// let error = ring.run(fails_on_one, ()).unwrap_err();
    /// assert!(matches!(error, mp::Error::RankFailed { rank: 1, .. }));
    /// # Ok(()) }
    /// ```
    pub fn run<A, R, F>(&self, f: F, arg: A) -> Result<Vec<R>>
    where
        F: Fn(Comm, A) -> R + Copy + 'static,
        A: Clone + Message,
        R: Message,
    {
        let _ = f;
        let () = crate::worker::PlainFn::<F>::CHECK; // so that a build error names the caller's line
        self.start(f, std::iter::repeat_n(arg, self.n_ranks))
            .and_then(|ranks| wait_for_all(ranks, None))
    }

    /// As [`Launch::run`], but gives up after `timeout`: the ranks still running are killed and
    /// the error is [`Error::Timeout`], naming them. A group whose ranks wait for each other
    /// forever (a receive that no rank sends to: a deadlock) ends here instead of hanging.
    ///
    /// ```
    /// # fn main() -> mp::Result<()> {
    /// # mp::init();
    /// use mp::{Comm, Communicator};
    /// use std::time::Duration;
    /// // Every rank waits for its left neighbour first: nobody ever sends.
    /// fn deadlock(comm: Comm, _: ()) -> u64 {
    ///     let left = (comm.rank() + comm.size() - 1) % comm.size();
    ///     let value: u64 = comm.recv(left).unwrap();
    ///     comm.send((comm.rank() + 1) % comm.size(), &value).unwrap();
    ///     value
    /// }
    ///
    /// let ring = mp::Launch { n_ranks: 3, topology: mp::Topology::Ring };
    /// let error = ring.run_timeout(deadlock, (), Duration::from_millis(200)).unwrap_err();
    /// assert!(error.is_timeout());
    /// assert!(error.to_string().contains("ranks 0, 1, 2 of 3"), "{error}");
    /// # Ok(()) }
    /// ```
    pub fn run_timeout<A, R, F>(&self, f: F, arg: A, timeout: Duration) -> Result<Vec<R>>
    where
        F: Fn(Comm, A) -> R + Copy + 'static,
        A: Clone + Message,
        R: Message,
    {
        let _ = f;
        let () = crate::worker::PlainFn::<F>::CHECK; // so that a build error names the caller's line
        let deadline = std::time::Instant::now() + timeout;
        let args = std::iter::repeat_n(arg, self.n_ranks);
        self.start(f, args).and_then(|ranks| wait_for_all(ranks, Some((deadline, timeout))))
    }

    /// Connects the ranks and starts one process for each, rank `i` with `args[i]`.
    fn start<A, R, F>(&self, _: F, args: impl IntoIterator<Item = A>) -> Result<Vec<Process<R>>>
    where
        F: Fn(Comm, A) -> R + Copy + 'static,
        A: Message,
        R: Message,
    {
        let comms = self.wire()?;
        let mut ranks = Vec::with_capacity(self.n_ranks);
        for (comm, arg) in comms.into_iter().zip(args) {
            ranks.push(Process::spawn(run_rank::<F, A, R>, (comm, arg))?);
        }
        Ok(ranks)
    }

    /// Starts the group, rank `i` running `f(comm, args[i])`: each rank gets its own argument
    /// (Python's `pool.starmap(run, [(rank, conns_for_rank), ...])`), and waits for all.
    ///
    /// `args` must give exactly `n_ranks` values (otherwise [`Error::InvalidArgument`], before
    /// anything starts). They are taken in rank order and each is moved to its rank, so an
    /// argument may carry pipe ends, queues or shared arrays meant for that rank alone: this
    /// process keeps no copy. Results and failures as [`Launch::run`].
    ///
    /// ```
    /// # fn main() -> mp::Result<()> {
    /// # mp::init();
    /// use mp::{Comm, Communicator};
    /// fn scaled(comm: Comm, factor: usize) -> usize { factor * comm.neighbours().len() }
    ///
    /// let star = mp::Launch { n_ranks: 3, topology: mp::Topology::Star { root: 0 } };
    /// assert_eq!(star.run_each(scaled, [100, 10, 1])?, [200, 10, 1]);
    /// assert!(star.run_each(scaled, [1, 2]).unwrap_err().to_string().contains("3 ranks"));
    /// # Ok(()) }
    /// ```
    pub fn run_each<A, R, F>(&self, f: F, args: impl IntoIterator<Item = A>) -> Result<Vec<R>>
    where
        F: Fn(Comm, A) -> R + Copy + 'static,
        A: Message,
        R: Message,
    {
        let _ = f;
        let () = crate::worker::PlainFn::<F>::CHECK; // so that a build error names the caller's line
        let args: Vec<A> = args.into_iter().collect();
        if args.len() != self.n_ranks {
            return Err(Error::invalid(format!(
                "run_each was given {} arguments for {} ranks: give one per rank",
                args.len(),
                self.n_ranks
            )));
        }
        self.start(f, args).and_then(|ranks| wait_for_all(ranks, None))
    }

    fn wire(&self) -> Result<Vec<Comm>> {
        let size = self.n_ranks;
        if size == 0 || size > MAX_RANKS {
            return Err(Error::invalid(format!(
                "a group needs 1 to {MAX_RANKS} ranks, not {size}"
            )));
        }
        if let Topology::Star { root } = self.topology
            && root >= size
        {
            return Err(Error::invalid(format!(
                "the star's root {root} is not a rank of a group of {size}"
            )));
        }
        let mut links: Vec<Vec<Option<Connection<()>>>> =
            (0..size).map(|_| (0..size).map(|_| None).collect()).collect();
        for a in 0..size {
            for b in a + 1..size {
                if self.topology.connects(a, b, size) {
                    let (end_a, end_b) = crate::pipe::<()>()?;
                    links[a][b] = Some(end_a);
                    links[b][a] = Some(end_b);
                }
            }
        }
        Ok(links
            .into_iter()
            .enumerate()
            .map(|(rank, links)| Comm { rank, size, topology: self.topology, links })
            .collect())
    }
}

/// Starts `n_ranks` processes, all connected to each other, each running `f(comm, arg)`;
/// returns their results in rank order. See [`Launch`] for other topologies.
///
/// All ranks run at once, however many there are: the tool for programs whose tasks must all
/// be running for any to finish. A [`Pool`](crate::Pool) runs at most one task per worker at a
/// time, and more tasks than workers wait their turn.
///
/// ```
/// # fn main() -> mp::Result<()> {
/// # mp::init();
/// fn n_neighbours(comm: mp::Comm, _: ()) -> usize { comm.neighbours().len() }
///
/// assert_eq!(mp::launch(4, n_neighbours, ())?, [3, 3, 3, 3]); // everyone sees everyone
/// assert!(mp::launch(0, n_neighbours, ()).is_err());
/// # Ok(()) }
/// ```
pub fn launch<A, R, F>(n_ranks: usize, f: F, arg: A) -> Result<Vec<R>>
where
    F: Fn(Comm, A) -> R + Copy + 'static,
    A: Clone + Message,
    R: Message,
{
    let () = crate::worker::PlainFn::<F>::CHECK; // so that a build error names the caller's line
    Launch { n_ranks, topology: Topology::AllToAll }.run(f, arg)
}

/// Starts one rank per argument, all connected to each other, rank `i` running
/// `f(comm, args[i])`; returns their results in rank order. Python's
/// `pool.starmap(run, [(rank, conns_for_rank), ...])`, where every rank gets its own argument;
/// [`launch`] gives all the same one. See [`Launch::run_each`] for other topologies.
///
/// Each argument is moved to its rank (this process keeps no copy), so it may carry a pipe
/// end for that rank alone: the sheet's pattern of wiring the ranks by hand.
///
/// ```
/// # fn main() -> mp::Result<()> {
/// # mp::init();
/// use mp::{Comm, Communicator};
///
/// // Rank i gets its own number and its own pipe end, and reports back on it.
/// fn report(comm: Comm, (value, out): (u64, mp::Sender<String>)) -> u64 {
///     out.send(&format!("rank {} got {value}", comm.rank())).unwrap();
///     value * 2
/// }
///
/// let mut receivers = Vec::new();
/// let mut args = Vec::new();
/// for rank in 0..3u64 {
///     let (tx, rx) = mp::pipe_simplex::<String>()?;
///     args.push((10 * rank, tx));
///     receivers.push(rx);
/// }
/// assert_eq!(mp::launch_each(report, args)?, [0, 20, 40]);
/// assert_eq!(receivers[2].recv()?, "rank 2 got 20");
///
/// // One argument computed per rank, as in `launch_each(n, f, |rank| arg)`:
/// fn square(_: Comm, x: usize) -> usize { x * x }
/// assert_eq!(mp::launch_each(square, (0..4).map(|rank| rank + 1))?, [1, 4, 9, 16]);
/// # Ok(()) }
/// ```
pub fn launch_each<A, R, F>(f: F, args: impl IntoIterator<Item = A>) -> Result<Vec<R>>
where
    F: Fn(Comm, A) -> R + Copy + 'static,
    A: Message,
    R: Message,
{
    let () = crate::worker::PlainFn::<F>::CHECK; // so that a build error names the caller's line
    let args: Vec<A> = args.into_iter().collect();
    Launch { n_ranks: args.len(), topology: Topology::AllToAll }.run_each(f, args)
}

fn run_rank<F, A, R>((comm, arg): (Comm, A)) -> R
where
    F: Fn(Comm, A) -> R + Copy + 'static,
{
    crate::channel::note_group(comm.size());
    sys::conjure_zero_sized::<F>()(comm, arg)
}

/// Joins every rank as it finishes; on the first failure, stops the rest. With a `limit`
/// (deadline, and the time it stands for), the ranks still running then are killed.
fn wait_for_all<R: DeserializeOwned + 'static>(
    mut ranks: Vec<Process<R>>,
    limit: Option<(std::time::Instant, Duration)>,
) -> Result<Vec<R>> {
    let mut results: Vec<Option<R>> = (0..ranks.len()).map(|_| None).collect();
    let mut failures: Vec<(usize, Error)> = Vec::new();
    let mut pending: Vec<usize> = (0..ranks.len()).collect();
    let mut stop_deadline = None;
    while !pending.is_empty() {
        if let Some((deadline, waited)) = limit
            && failures.is_empty()
            && std::time::Instant::now() >= deadline
        {
            for &rank in &pending {
                let _ = ranks[rank].kill();
            }
            let still: Vec<String> = pending.iter().map(usize::to_string).collect();
            return Err(Error::Timeout {
                what: format!(
                    "ranks {} of {} to finish, so they were stopped (do they wait for a \
                     message that no rank sends?)",
                    still.join(", "),
                    ranks.len()
                ),
                waited,
            });
        }
        let wake = match (stop_deadline, limit) {
            (Some(stop), _) => Some(stop),
            (None, Some((deadline, _))) => Some(deadline),
            (None, None) => None,
        };
        let links: Vec<_> = pending.iter().map(|&rank| ranks[rank].control()).collect();
        channel::wait_for_any(&links, None, wake)?;
        let mut still_pending = Vec::new();
        for &rank in &pending {
            match ranks[rank].join_timeout(Duration::ZERO) {
                Ok(result) => results[rank] = Some(result),
                Err(error) if error.is_timeout() => still_pending.push(rank),
                Err(error) => failures.push((rank, error)),
            }
        }
        pending = still_pending;
        if !failures.is_empty() && stop_deadline.is_none() {
            // Give the others a moment to report their own errors (the first to be noticed may
            // only be a rank that saw the real culprit disappear), then stop them.
            stop_deadline = Some(std::time::Instant::now() + Duration::from_millis(200));
        }
        if let Some(deadline) = stop_deadline
            && std::time::Instant::now() >= deadline
        {
            for &rank in &pending {
                let _ = ranks[rank].kill();
            }
            break;
        }
    }
    if !failures.is_empty() {
        let culprit =
            failures.iter().position(|(_, error)| !mentions_disconnection(error)).unwrap_or(0);
        let (rank, error) = failures.swap_remove(culprit);
        return Err(Error::RankFailed { rank, error: Box::new(error) });
    }
    Ok(results.into_iter().map(|result| result.expect("every rank joined")).collect())
}

fn mentions_disconnection(error: &Error) -> bool {
    match error {
        // A rank that unwrapped a receive from a dead peer: its panic shows either form.
        Error::TaskPanicked { message, .. } => {
            message.contains("the other end is closed") || message.contains("Disconnected")
        }
        other => other.is_disconnected(),
    }
}
