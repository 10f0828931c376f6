//! Pipes, ranks and shared memory between real processes.

mod common;

use std::time::Duration;

use common::watchdog;
use mp::{
    Comm, Communicator, Connection, Error, Launch, Process, Receiver, Sender, SharedArray, Topology,
};

mp::test_support!();

const LIMIT: Duration = Duration::from_secs(60);

fn echo_until_zero(connection: Connection<u64>) -> u64 {
    let mut echoed = 0;
    loop {
        let value = connection.recv().unwrap();
        if value == 0 {
            return echoed;
        }
        connection.send(&(value * 10)).unwrap();
        echoed += 1;
    }
}

#[test]
fn ping_pong_with_a_child_process() {
    let _guard = watchdog(LIMIT);
    let (here, there) = mp::pipe::<u64>().unwrap();
    let mut child = Process::spawn(echo_until_zero, there).unwrap();
    for value in 1..=100 {
        here.send(&value).unwrap();
        assert_eq!(here.recv().unwrap(), value * 10);
    }
    here.send(&0).unwrap();
    assert_eq!(child.join().unwrap(), 100);
    // The child is gone and held the only other end: Python's EOFError.
    assert!(here.recv().unwrap_err().is_disconnected());
    assert!(here.send(&1).unwrap_err().is_disconnected());
}

fn forward_around_the_ring(
    (rank, n_ranks, from_left, to_right): (u64, u64, Receiver<u64>, Sender<u64>),
) -> u64 {
    if rank == 0 {
        to_right.send(&0).unwrap();
        return from_left.recv().unwrap();
    }
    let token = from_left.recv().unwrap();
    to_right.send(&(token + rank)).unwrap();
    n_ranks
}

#[test]
fn a_token_travels_around_a_ring_of_processes_wired_by_hand() {
    let _guard = watchdog(LIMIT);
    let n_ranks = 5u64;
    // Pipe i goes from rank i to rank i + 1: n pipes for n ranks.
    let mut senders = Vec::new();
    let mut receivers = Vec::new();
    for _ in 0..n_ranks {
        let (sender, receiver) = mp::pipe_simplex::<u64>().unwrap();
        senders.push(Some(sender));
        receivers.push(Some(receiver));
    }
    let mut ranks = Vec::new();
    for rank in 0..n_ranks as usize {
        let left = (rank + n_ranks as usize - 1) % n_ranks as usize;
        let from_left = receivers[left].take().unwrap();
        let to_right = senders[rank].take().unwrap();
        ranks.push(
            Process::spawn(forward_around_the_ring, (rank as u64, n_ranks, from_left, to_right))
                .unwrap(),
        );
    }
    let results: Vec<u64> = ranks.iter_mut().map(|process| process.join().unwrap()).collect();
    assert_eq!(results[0], 1 + 2 + 3 + 4);
}

fn send_then_receive((connection, n_bytes): (Connection<()>, usize)) -> usize {
    connection.send_bytes(&vec![7u8; n_bytes]).unwrap();
    connection.recv_bytes().unwrap().len()
}

#[test]
fn both_sides_sending_large_messages_first_do_not_deadlock() {
    let _guard = watchdog(LIMIT);
    let n_bytes = 16 << 20;
    let (here, there) = mp::pipe::<()>().unwrap();
    let mut child = Process::spawn(send_then_receive, (there, n_bytes)).unwrap();
    here.send_bytes(&vec![1u8; n_bytes]).unwrap();
    let received = here.recv_bytes().unwrap();
    assert_eq!(received.len(), n_bytes);
    assert!(received.iter().all(|&byte| byte == 7));
    assert_eq!(child.join().unwrap(), n_bytes);
}

#[test]
fn many_messages_with_nobody_reading_do_not_block_the_sender() {
    let _guard = watchdog(LIMIT);
    let (sender, receiver) = mp::pipe_simplex::<u64>().unwrap();
    for value in 0..100_000u64 {
        sender.send(&value).unwrap();
    }
    for _ in 0..8 {
        sender.send_bytes(&vec![3u8; 1 << 20]).unwrap();
    }
    drop(sender);
    for value in 0..100_000u64 {
        assert_eq!(receiver.recv().unwrap(), value);
    }
    for _ in 0..8 {
        assert_eq!(receiver.recv_bytes().unwrap().len(), 1 << 20);
    }
    assert!(receiver.recv().unwrap_err().is_disconnected());
}

#[test]
fn bytes_and_slices_arrive_exactly_and_kinds_are_not_confused() {
    let _guard = watchdog(LIMIT);
    let (a, b) = mp::pipe::<String>().unwrap();
    for n_bytes in [0usize, 1, 4095, 4096, 212_993, 1 << 22] {
        let bytes: Vec<u8> = (0..n_bytes).map(|index| (index * 31 % 256) as u8).collect();
        a.send_bytes(&bytes).unwrap();
        assert_eq!(b.recv_bytes().unwrap(), bytes);
    }
    let numbers: Vec<f64> = (0..1000).map(|index| index as f64 * 0.5).collect();
    a.send_slice(&numbers).unwrap();
    assert_eq!(b.recv_vec::<f64>().unwrap(), numbers);
    a.send_bytes(b"raw").unwrap();
    assert!(matches!(b.recv(), Err(Error::Serialization { .. })));
    a.send(&"typed".to_string()).unwrap();
    assert!(matches!(b.recv_bytes(), Err(Error::Serialization { .. })));
    a.send_bytes(&[1, 2, 3]).unwrap();
    assert!(matches!(b.recv_vec::<f64>(), Err(Error::Serialization { .. })));
}

fn sum_to_root(comm: Comm, values_per_rank: usize) -> Option<Vec<u64>> {
    let mine: Vec<u64> =
        (0..values_per_rank).map(|index| (comm.rank() * 1000 + index) as u64).collect();
    if comm.rank() != 0 {
        comm.send_slice(0, &mine).unwrap();
        return None;
    }
    let mut gathered = vec![mine];
    for source in 1..comm.size() {
        gathered.push(comm.recv_vec::<u64>(source).unwrap());
    }
    Some(gathered.into_iter().flatten().collect())
}

#[test]
fn launch_gives_ranks_in_order_and_gathers_to_root() {
    let _guard = watchdog(LIMIT);
    let results = mp::launch(4, sum_to_root, 3).unwrap();
    assert_eq!(results.len(), 4);
    let expected: Vec<u64> =
        (0..4).flat_map(|rank| (0..3).map(move |index| rank * 1000 + index)).collect();
    assert_eq!(results[0].as_ref().unwrap(), &expected);
    assert!(results[1..].iter().all(Option::is_none));
}

fn neighbours(comm: Comm, _: ()) -> (Vec<usize>, bool) {
    let far = (comm.rank() + 2) % comm.size();
    let error = comm.send(far, &1u8).unwrap_err();
    (comm.neighbours(), error.to_string().contains("no connection"))
}

#[test]
fn a_ring_topology_connects_only_neighbours() {
    let _guard = watchdog(LIMIT);
    assert_eq!(Topology::Ring.n_connections(5), 5);
    assert_eq!(Topology::AllToAll.n_connections(5), 10);
    assert_eq!(Topology::Star { root: 0 }.n_connections(5), 4);
    let results = Launch { n_ranks: 5, topology: Topology::Ring }.run(neighbours, ()).unwrap();
    assert_eq!(results[0], (vec![1, 4], true));
    assert_eq!(results[2], (vec![1, 3], true));
    assert!(Launch { n_ranks: 0, topology: Topology::Ring }.run(neighbours, ()).is_err());
    assert!(
        Launch { n_ranks: 3, topology: Topology::Star { root: 3 } }.run(neighbours, ()).is_err()
    );
}

fn rank_two_fails(comm: Comm, _: ()) -> u8 {
    if comm.rank() == 2 {
        panic!("rank 2 gives up");
    }
    // Everyone else waits for a message from rank 2 that never comes.
    comm.recv::<u8>(2).unwrap()
}

#[test]
fn one_failing_rank_stops_the_group_with_a_clear_error() {
    let _guard = watchdog(LIMIT);
    let error = mp::launch(4, rank_two_fails, ()).unwrap_err();
    match &error {
        Error::RankFailed { rank: 2, error } => {
            assert!(
                matches!(**error, Error::TaskPanicked { ref message, .. } if message == "rank 2 gives up")
            );
        }
        other => panic!("expected rank 2 to be blamed, got {other:?}"),
    }
}

fn add_to_shared((array, rank, n_ranks): (SharedArray<u64>, usize, usize)) -> u64 {
    for index in (rank..array.len()).step_by(n_ranks) {
        array.set(index, index as u64 * 2);
    }
    for _ in 0..1000 {
        array.fetch_add(0, 1);
    }
    array.len() as u64
}

#[test]
fn processes_write_shared_memory_in_place() {
    let _guard = watchdog(LIMIT);
    let shm_before = std::fs::read_dir("/dev/shm").map(|entries| entries.count()).unwrap_or(0);
    let array = SharedArray::<u64>::new(1000).unwrap();
    let mut processes: Vec<_> = (0..3)
        .map(|rank| Process::spawn(add_to_shared, (array.clone(), rank, 3)).unwrap())
        .collect();
    for process in &mut processes {
        assert_eq!(process.join().unwrap(), 1000);
    }
    let values = array.to_vec();
    // Element 0 was set to 0 by its owner, possibly after some increments: at most 3000.
    assert!(values[0] <= 3000);
    assert_eq!(&values[1..], &(1..1000).map(|index| index * 2).collect::<Vec<u64>>()[..]);
    drop(array);
    let shm_after = std::fs::read_dir("/dev/shm").map(|entries| entries.count()).unwrap_or(0);
    assert_eq!(shm_before, shm_after, "nothing may be left in /dev/shm");
}

fn hold_and_die(array: SharedArray<f64>) -> u8 {
    array.set(0, 42.0);
    std::process::abort();
}

#[test]
fn shared_memory_survives_a_crashed_user_and_leaves_nothing_behind() {
    let _guard = watchdog(LIMIT);
    let array = SharedArray::<f64>::from_slice(&[1.0, 2.0]).unwrap();
    let mut process = Process::spawn(hold_and_die, array.clone()).unwrap();
    assert!(process.join().is_err());
    assert_eq!(array.to_vec(), [42.0, 2.0]);
    // Out-of-range writes are refused with a message, even when offset + len overflows.
    let refused = std::panic::catch_unwind(|| array.write_slice(usize::MAX, &[1.0, 2.0]));
    assert!(refused.is_err());
    let atomic_increments = SharedArray::<i32>::new(1).unwrap();
    atomic_increments.fetch_add(0, -5);
    assert_eq!(atomic_increments.get(0), -5);
}

fn send_large_messages((shared_end, writer): (Sender<()>, u8)) -> u8 {
    for _ in 0..20 {
        // Larger than the socket buffer, so one message takes several writes.
        if shared_end.send_bytes(&vec![writer; 600_000]).is_err() {
            break;
        }
    }
    writer
}

#[test]
fn processes_sharing_one_sending_end_end_in_data_or_a_clear_error_never_a_hang() {
    let _guard = watchdog(LIMIT);
    let (shared_end, receiver) = mp::pipe_simplex::<()>().unwrap();
    let mut writers: Vec<_> = (1..=3u8)
        .map(|writer| Process::spawn(send_large_messages, (shared_end.clone(), writer)).unwrap())
        .collect();
    drop(shared_end);
    let mut intact = 0;
    let outcome = loop {
        match receiver.recv_bytes() {
            Ok(message)
                if message.len() == 600_000 && message.iter().all(|&byte| byte == message[0]) =>
            {
                intact += 1
            }
            Ok(_) => {}
            Err(error) => break error,
        }
    };
    eprintln!("three writers on one sending end: {intact} intact messages, then: {outcome}");
    // Either every message came through whole and the writers finished (end of stream), or
    // their bytes interleaved and mp said so instead of trusting a damaged header.
    match outcome {
        Error::Disconnected { .. } => assert_eq!(intact, 60),
        Error::Corrupted { message } => assert!(message.contains("same sending end"), "{message}"),
        other => panic!("expected all messages or a Corrupted error, got {other:?}"),
    }
    drop(receiver);
    for writer in &mut writers {
        let _ = writer.join();
    }
}
