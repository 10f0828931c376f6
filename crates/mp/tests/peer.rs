//! Endpoints and `Comm` backed by a `Peer` (a transport outside mp, such as MPI) behave like
//! local ones: same encoding, same errors, same receives; except that they cannot travel to
//! another process. The peer here hands messages to its partner in memory.

mod common;

use std::{
    collections::VecDeque,
    sync::{
        Arc, Condvar, Mutex,
        atomic::{AtomicUsize, Ordering},
    },
    time::{Duration, Instant},
};

use common::watchdog;
use mp::{
    Comm, Communicator, Connection, Error, MessageKind, Peer, Process, Receiver, RecvEnd, SendEnd,
    Sender,
};

mp::test_support!();

const LIMIT: Duration = Duration::from_secs(60);

type Mailbox = Arc<(Mutex<VecDeque<(MessageKind, Vec<u8>)>>, Condvar)>;

/// One end of an in-memory connection: what it sends goes to its partner's inbox.
#[derive(Debug)]
struct TestPeer {
    name: String,
    inbox: Mailbox,
    outbox: Mailbox,
    owned_sends: AtomicUsize,
    borrowed_sends: AtomicUsize,
}

impl TestPeer {
    fn pair(left: &str, right: &str) -> (Arc<TestPeer>, Arc<TestPeer>) {
        let (a, b) = (Mailbox::default(), Mailbox::default());
        let end = |name: &str, inbox: &Mailbox, outbox: &Mailbox| {
            Arc::new(TestPeer {
                name: name.to_string(),
                inbox: Arc::clone(inbox),
                outbox: Arc::clone(outbox),
                owned_sends: AtomicUsize::new(0),
                borrowed_sends: AtomicUsize::new(0),
            })
        };
        (end(left, &a, &b), end(right, &b, &a))
    }

    fn push(&self, kind: MessageKind, body: Vec<u8>) {
        self.outbox.0.lock().unwrap().push_back((kind, body));
        self.outbox.1.notify_all();
    }

    /// Waits until a message is in the inbox or `timeout` passed; true if there is one.
    fn wait(&self, timeout: Option<Duration>) -> bool {
        let deadline = timeout.map(|timeout| Instant::now() + timeout);
        let mut inbox = self.inbox.0.lock().unwrap();
        while inbox.is_empty() {
            match deadline.map(|deadline| deadline.saturating_duration_since(Instant::now())) {
                None => inbox = self.inbox.1.wait(inbox).unwrap(),
                Some(left) if left.is_zero() => return false,
                Some(left) => inbox = self.inbox.1.wait_timeout(inbox, left).unwrap().0,
            }
        }
        true
    }

    /// The messages waiting in this end's inbox.
    fn waiting(&self) -> usize {
        self.inbox.0.lock().unwrap().len()
    }
}

impl Peer for TestPeer {
    fn describe(&self) -> String {
        format!("test peer {}", self.name)
    }

    fn send_owned(&self, kind: MessageKind, body: Vec<u8>) -> mp::Result<()> {
        self.owned_sends.fetch_add(1, Ordering::Relaxed);
        self.push(kind, body);
        Ok(())
    }

    fn send_borrowed(&self, kind: MessageKind, body: &[u8]) -> mp::Result<()> {
        self.borrowed_sends.fetch_add(1, Ordering::Relaxed);
        self.push(kind, body.to_vec());
        Ok(())
    }

    fn recv_into(
        &self,
        buffer: &mut Vec<u8>,
        timeout: Option<Duration>,
    ) -> mp::Result<MessageKind> {
        if !self.wait(timeout) {
            return Err(Error::Timeout {
                what: format!("a message from {}", self.describe()),
                waited: timeout.unwrap_or_default(),
            });
        }
        let (kind, body) = self.inbox.0.lock().unwrap().pop_front().expect("one is waiting");
        buffer.clear();
        buffer.extend_from_slice(&body);
        Ok(kind)
    }

    fn poll(&self, timeout: Duration) -> mp::Result<bool> {
        Ok(self.wait(Some(timeout)))
    }
}

fn connections<T>() -> (Connection<T>, Connection<T>, Arc<TestPeer>, Arc<TestPeer>) {
    let (left, right) = TestPeer::pair("left", "right");
    (
        Connection::from_peer(Arc::clone(&left) as Arc<dyn Peer>),
        Connection::from_peer(Arc::clone(&right) as Arc<dyn Peer>),
        left,
        right,
    )
}

/// A group of `size` ranks connected all-to-all through test peers.
fn peer_group(size: usize) -> Vec<Comm> {
    let mut peers: Vec<Vec<Option<Arc<dyn Peer>>>> =
        (0..size).map(|_| (0..size).map(|_| None).collect()).collect();
    for a in 0..size {
        for b in a + 1..size {
            let (end_a, end_b) = TestPeer::pair(&format!("{a}->{b}"), &format!("{b}->{a}"));
            peers[a][b] = Some(end_a);
            peers[b][a] = Some(end_b);
        }
    }
    peers.into_iter().enumerate().map(|(rank, row)| Comm::from_peers(rank, row).unwrap()).collect()
}

#[derive(Debug, PartialEq, serde::Serialize, serde::Deserialize)]
struct Reading {
    sensor: String,
    values: Vec<f64>,
    at: (u32, Option<i64>),
}

#[test]
fn typed_round_trip_through_connection_peers() {
    let (a, b, _, _) = connections::<Reading>();
    let reading =
        Reading { sensor: "t1".into(), values: vec![1.5, -2.0, f64::MAX], at: (7, Some(-3)) };
    a.send(&reading).unwrap();
    assert!(b.poll(Duration::from_secs(10)).unwrap());
    assert_eq!(b.recv().unwrap(), reading);
    assert!(!a.poll(Duration::ZERO).unwrap());
    b.send(&reading).unwrap();
    assert_eq!(a.recv().unwrap(), reading);

    // The bulk fast path (a vector of floats) and the generic traits.
    let (a, b, _, _) = connections::<Vec<f64>>();
    SendEnd::send(&a, &vec![0.25; 1000]).unwrap();
    assert_eq!(RecvEnd::recv(&b).unwrap(), vec![0.25; 1000]);

    // Raw bytes and slices, and split halves that share the peer.
    let (a, b, _, _) = connections::<()>();
    a.send_bytes(b"hello").unwrap();
    assert_eq!(b.recv_bytes().unwrap(), b"hello");
    a.send_slice(&[1u32, 2, 3]).unwrap();
    assert_eq!(b.recv_vec::<u32>().unwrap(), [1, 2, 3]);
    let (b_tx, b_rx) = b.split();
    b_tx.send(&()).unwrap();
    a.send_slice(&[9u16]).unwrap();
    let () = a.recv().unwrap();
    assert_eq!(b_rx.recv_vec::<u16>().unwrap(), [9]);
}

#[test]
fn sender_and_receiver_from_peer_and_their_clones() {
    let (left, right) = TestPeer::pair("tx", "rx");
    let tx = Sender::<(u8, String)>::from_peer(left);
    let rx = Receiver::<(u8, String)>::from_peer(right);
    let (tx2, rx2) = (tx.clone(), rx.clone());
    tx.send(&(1, "one".into())).unwrap();
    tx2.send(&(2, "two".into())).unwrap();
    assert_eq!(rx.recv().unwrap(), (1, "one".into()));
    assert_eq!(rx2.recv().unwrap(), (2, "two".into()));
    tx.send_slice(&[0.5f32]).unwrap();
    assert_eq!(rx.recv_vec::<f32>().unwrap(), [0.5]);
    tx.send_bytes(&[]).unwrap();
    assert!(rx2.poll(Duration::from_secs(10)).unwrap());
    assert_eq!(rx2.recv_bytes().unwrap(), b"");
    assert!(format!("{tx:?}").contains("test peer tx"), "{tx:?}");
    assert!(format!("{rx:?}").contains("test peer rx"), "{rx:?}");
}

/// The ring pattern of the exercises, written once for any group, and a sum at rank 0.
fn ring_then_sum(comm: &impl Communicator) -> (u64, Option<u64>, Vec<f64>) {
    let (rank, size) = (comm.rank(), comm.size());
    let (next, previous) = ((rank + 1) % size, (rank + size - 1) % size);
    // A token round the ring, each rank adding its rank.
    let token = if rank == 0 {
        comm.send(next, &1000u64).unwrap();
        comm.recv::<u64>(previous).unwrap()
    } else {
        let token: u64 = comm.recv(previous).unwrap();
        comm.send(next, &(token + rank as u64)).unwrap();
        token
    };
    // A sum of squares at rank 0.
    let sum = if rank == 0 {
        Some((1..size).map(|source| comm.recv::<u64>(source).unwrap()).sum::<u64>())
    } else {
        comm.send(0, &((rank * rank) as u64)).unwrap();
        None
    };
    // Everyone at once: a large vector to the next rank, with sendrecv.
    let shifted: Vec<f64> = comm.sendrecv(next, &vec![rank as f64; 100_000], previous).unwrap();
    (token, sum, shifted[..2].to_vec())
}

#[test]
fn comm_from_peers_runs_a_ring_a_sum_and_sendrecv_on_three_threads() {
    let _guard = watchdog(LIMIT);
    let threads: Vec<_> = peer_group(3)
        .into_iter()
        .map(|comm| std::thread::spawn(move || (comm.rank(), comm.size(), ring_then_sum(&comm))))
        .collect();
    let results: Vec<_> = threads.into_iter().map(|thread| thread.join().unwrap()).collect();
    assert_eq!(
        results,
        [
            (0, 3, (1003, Some(5), vec![2.0, 2.0])),
            (1, 3, (1000, None, vec![0.0, 0.0])),
            (2, 3, (1001, None, vec![1.0, 1.0])),
        ]
    );
}

fn ring_then_sum_rank(comm: Comm, _: ()) -> (u64, Option<u64>, Vec<f64>) {
    ring_then_sum(&comm)
}

#[test]
fn sendrecv_on_launched_ranks_matches_the_peer_group() {
    let _guard = watchdog(LIMIT);
    let results = mp::launch(3, ring_then_sum_rank, ()).unwrap();
    assert_eq!(
        results,
        [
            (1003, Some(5), vec![2.0, 2.0]),
            (1000, None, vec![0.0, 0.0]),
            (1001, None, vec![1.0, 1.0])
        ]
    );
}

#[test]
fn typed_sends_never_wait_and_raw_bytes_are_borrowed() {
    let (left, right) = TestPeer::pair("0", "1");
    let comm = Comm::from_peers(0, vec![None, Some(Arc::clone(&left) as Arc<dyn Peer>)]).unwrap();
    comm.send(1, &(1u8, "x")).unwrap();
    comm.send_bytes(1, b"raw").unwrap();
    let connection = Connection::<u64>::from_peer(Arc::clone(&left) as Arc<dyn Peer>);
    connection.send(&5).unwrap();
    connection.send_slice(&[1u64]).unwrap();
    assert_eq!(left.owned_sends.load(Ordering::Relaxed), 2);
    assert_eq!(left.borrowed_sends.load(Ordering::Relaxed), 2);
    assert_eq!(right.waiting(), 4);
}

#[test]
fn typed_bodies_are_the_local_encoding() {
    // The same value through Connection::send (which may take the bulk fast path) and
    // Comm::send (postcard only) gives the same body: the 4-byte fingerprint, then postcard.
    let (left, right) = TestPeer::pair("a", "b");
    let connection = Connection::<Vec<f64>>::from_peer(Arc::clone(&left) as Arc<dyn Peer>);
    let comm = Comm::from_peers(0, vec![None, Some(Arc::clone(&left) as Arc<dyn Peer>)]).unwrap();
    let value = vec![1.5f64, -2.0];
    connection.send(&value).unwrap();
    comm.send(1, &value).unwrap();
    let mut bodies = Vec::new();
    for _ in 0..2 {
        let mut body = Vec::new();
        assert_eq!(right.recv_into(&mut body, None).unwrap(), MessageKind::Typed);
        bodies.push(body);
    }
    assert_eq!(bodies[0], bodies[1]);
    let postcard = postcard_of(&value);
    assert_eq!(&bodies[0][4..4 + postcard.len()], &postcard[..], "{bodies:?}");
}

/// Postcard's bytes for a vector of `f64`: its length as a varint, then each as 8 LE bytes.
fn postcard_of(values: &[f64]) -> Vec<u8> {
    assert!(values.len() < 128);
    let mut bytes = vec![values.len() as u8];
    for value in values {
        bytes.extend_from_slice(&value.to_le_bytes());
    }
    bytes
}

#[test]
fn type_mismatch_names_both_types_as_on_a_pipe() {
    let (a, b, _, _) = connections::<f64>();
    a.send(&2.5).unwrap();
    let b: Connection<usize> = mp::testing::retype(b);
    let error = b.recv().unwrap_err();
    assert!(matches!(&error, Error::TypeMismatch { expected, .. } if expected == "usize"));
    let (pipe_a, pipe_b) = mp::pipe::<f64>().unwrap();
    pipe_a.send(&2.5).unwrap();
    let pipe_b: Connection<usize> = mp::testing::retype(pipe_b);
    assert_eq!(error.to_string(), pipe_b.recv().unwrap_err().to_string());
    // Only that message is lost.
    a.send(&1.0).unwrap();
    let b: Connection<f64> = mp::testing::retype(b);
    assert_eq!(b.recv().unwrap(), 1.0);

    // Comm's typed receive too.
    let mut group = peer_group(2);
    let one = group.pop().unwrap();
    group[0].send(1, &vec![1.0f64, 2.0, 3.0]).unwrap();
    let error = one.recv::<u64>(0).unwrap_err();
    assert!(
        error.to_string().starts_with("received a `Vec<f64>` but the receiver asked for a `u64`"),
        "{error}"
    );
}

#[test]
fn bytes_where_typed_expected_and_back_are_the_errors_of_a_pipe() {
    let (pipe_a, pipe_b) = mp::pipe::<u32>().unwrap();
    let (a, b, _, _) = connections::<u32>();
    for sender in [&pipe_a, &a] {
        sender.send_bytes(&[1, 2, 3, 4]).unwrap();
        sender.send(&7).unwrap();
    }
    let typed_expected = pipe_b.recv().unwrap_err().to_string();
    let bytes_expected = pipe_b.recv_bytes().unwrap_err().to_string();
    assert!(typed_expected.contains("expected a typed message"), "{typed_expected}");
    assert!(bytes_expected.contains("expected raw bytes"), "{bytes_expected}");
    assert_eq!(b.recv().unwrap_err().to_string(), typed_expected);
    assert_eq!(b.recv_bytes().unwrap_err().to_string(), bytes_expected);

    // The same through recv_bytes_into, recv_vec, recv_into and Comm.
    a.send(&7).unwrap();
    assert_eq!(b.recv_bytes_into(&mut Vec::new()).unwrap_err().to_string(), bytes_expected);
    a.send(&7).unwrap();
    assert_eq!(b.recv_vec::<u8>().unwrap_err().to_string(), bytes_expected);
    a.send(&7).unwrap();
    assert_eq!(b.recv_into::<u8>(&mut Vec::new()).unwrap_err().to_string(), bytes_expected);
    let mut group = peer_group(2);
    let one = group.pop().unwrap();
    group[0].send_bytes(1, b"raw").unwrap();
    group[0].send(1, &7u32).unwrap();
    assert_eq!(one.recv::<u32>(0).unwrap_err().to_string(), typed_expected);
    assert_eq!(one.recv_bytes(0).unwrap_err().to_string(), bytes_expected);
}

#[test]
fn a_value_holding_a_pipe_end_or_queue_is_refused_and_nothing_is_sent() {
    let (a, _b, _, right) = connections::<mp::Sender<u8>>();
    let (tx, rx) = mp::pipe_simplex::<u8>().unwrap();
    let error = a.send(&tx).unwrap_err();
    assert!(matches!(error, Error::InvalidArgument { .. }), "{error:?}");
    assert!(
        error.to_string().contains(
            "pipe ends, queues and shared arrays cannot travel to test peer left, only plain \
             values"
        ),
        "{error}"
    );
    let comm = Comm::from_peers(0, vec![None, Some(Arc::clone(&right) as Arc<dyn Peer>)]).unwrap();
    let error = comm.send(1, &mp::Queue::<u8>::new().unwrap()).unwrap_err();
    assert!(error.to_string().contains("cannot travel to test peer right"), "{error}");
    assert_eq!(right.waiting(), 0);
    // The pipe end itself still works.
    tx.send(&1).unwrap();
    assert_eq!(rx.recv().unwrap(), 1);
}

fn first_message(connection: Connection<u32>) -> u32 {
    connection.recv().unwrap()
}

fn rank_of(comm: Comm) -> usize {
    comm.rank()
}

#[test]
fn a_peer_backed_end_or_comm_cannot_be_handed_to_another_process() {
    let _guard = watchdog(LIMIT);
    let (a, b, _, _) = connections::<u32>();
    let error = Process::spawn(first_message, b).unwrap_err();
    assert!(matches!(error, Error::Serialization { .. }), "{error:?}");
    assert!(
        error
            .to_string()
            .contains("an end connected to test peer right cannot be handed to another process"),
        "{error}"
    );
    // Inside a message on a pipe, too; the pipe goes on.
    let (pipe_a, pipe_b) = mp::pipe::<Connection<u32>>().unwrap();
    let error = pipe_a.send(&a).unwrap_err();
    assert!(error.to_string().contains("an end connected to test peer left"), "{error}");
    let (local, _other) = mp::pipe::<u32>().unwrap();
    pipe_a.send(&local).unwrap();
    assert!(pipe_b.recv().is_ok());

    let comm = peer_group(2).remove(0);
    let error = Process::spawn(rank_of, comm).unwrap_err();
    assert!(error.to_string().contains("cannot be handed to another process"), "{error}");
    // Debug names the peer.
    assert!(format!("{a:?}").contains("peer: \"test peer left\""), "{a:?}");
}

fn bad_addresses(comm: Comm, _: ()) -> Vec<String> {
    if comm.rank() != 0 {
        return Vec::new();
    }
    vec![
        comm.send(5, &1u8).unwrap_err().to_string(),
        comm.send(0, &1u8).unwrap_err().to_string(),
        comm.recv::<u8>(0).unwrap_err().to_string(),
        comm.recv_bytes(3).unwrap_err().to_string(),
    ]
}

fn no_connection(comm: Comm, _: ()) -> String {
    match comm.rank() {
        1 => comm.send(3, &1u8).unwrap_err().to_string(),
        _ => String::new(),
    }
}

#[test]
fn bad_ranks_and_self_sends_are_the_errors_of_a_launched_comm() {
    let _guard = watchdog(LIMIT);
    let local = mp::launch(3, bad_addresses, ()).unwrap().remove(0);
    let group = peer_group(3);
    assert_eq!(bad_addresses(group.into_iter().next().unwrap(), ()), local);

    // A `None` beyond this rank's own entry: no connection, as in a topology without it.
    let (left, _right) = TestPeer::pair("0", "1");
    let star_leaf = Comm::from_peers(1, vec![Some(left as Arc<dyn Peer>), None, None]).unwrap();
    assert_eq!(star_leaf.neighbours(), [0]);
    let error = star_leaf.send(2, &1u8).unwrap_err();
    assert!(matches!(error, Error::InvalidArgument { .. }));
    assert!(error.to_string().contains("rank 1 has no connection to rank 2"), "{error}");
    let ring = mp::Launch { n_ranks: 4, topology: mp::Topology::Ring };
    let ring_error = &ring.run(no_connection, ()).unwrap()[1];
    assert!(ring_error.contains("rank 1 has no connection to rank 3 in a Ring"), "{ring_error}");
    let error = error.to_string();
    assert_eq!(
        error,
        "invalid argument: rank 1 has no connection to rank 2 in a AllToAll \
                       topology; its neighbours are [0]"
    );

    // Bad arguments to from_peers.
    let peer = || Some(TestPeer::pair("x", "y").0 as Arc<dyn Peer>);
    for (rank, peers) in [(2, vec![None, peer()]), (0, Vec::new()), (0, vec![peer(), peer()])] {
        let error = Comm::from_peers(rank, peers).unwrap_err();
        assert!(matches!(error, Error::InvalidArgument { .. }), "{error:?}");
    }
    assert!(Comm::from_peers(0, vec![None]).is_ok()); // a group of one
}

#[test]
fn recv_timeout_times_out_and_nothing_is_lost() {
    let (a, b, _, _) = connections::<u8>();
    assert!(b.recv_timeout(Duration::from_millis(1)).unwrap_err().is_timeout());
    a.send(&4).unwrap();
    assert_eq!(b.recv_timeout(Duration::from_secs(10)).unwrap(), 4);

    let (left, right) = TestPeer::pair("tx", "rx");
    let (tx, rx) = (Sender::<u8>::from_peer(left), Receiver::<u8>::from_peer(right));
    assert!(rx.recv_timeout(Duration::from_millis(1)).unwrap_err().is_timeout());
    tx.send(&5).unwrap();
    assert_eq!(RecvEnd::recv_timeout(&rx, Duration::from_secs(10)).unwrap(), 5);

    let mut group = peer_group(2);
    let one = group.pop().unwrap();
    assert!(one.recv_timeout::<u8>(0, Duration::from_millis(1)).unwrap_err().is_timeout());
    group[0].send(1, &6u8).unwrap();
    assert_eq!(one.recv_timeout::<u8>(0, Duration::from_secs(10)).unwrap(), 6);
}

#[test]
fn recv_into_and_recv_bytes_into_reuse_the_buffer() {
    let (a, b, _, _) = connections::<()>();
    let mut buffer = Vec::with_capacity(4096);
    let address = buffer.as_ptr();
    for message in [&b"first"[..], b"2nd", &[7; 4000]] {
        a.send_bytes(message).unwrap();
        b.recv_bytes_into(&mut buffer).unwrap();
        assert_eq!(buffer, message);
        assert_eq!((buffer.as_ptr(), buffer.capacity()), (address, 4096));
    }
    let mut items: Vec<f64> = Vec::with_capacity(1000);
    let address = items.as_ptr();
    for round in 0..3 {
        a.send_slice(&vec![round as f64; 1000 - round]).unwrap();
        b.recv_into(&mut items).unwrap();
        assert_eq!(items, vec![round as f64; 1000 - round]);
        assert_eq!((items.as_ptr(), items.capacity()), (address, 1000));
    }
    let mut group = peer_group(2);
    let one = group.pop().unwrap();
    let mut buffer = Vec::with_capacity(100);
    let address = buffer.as_ptr();
    group[0].send_slice(1, &[3u8; 50]).unwrap();
    one.recv_bytes_into(0, &mut buffer).unwrap();
    assert_eq!((buffer.as_slice(), buffer.as_ptr()), (&[3u8; 50][..], address));
}
