//! The data path of pipes and ranks (shared-memory rings beside a socket): every byte of every
//! message arrives, in order, whatever its size, between threads, processes and ranks; handles
//! travel in order with the bytes; a peer killed in the middle of a transfer is an error.

mod common;

use std::time::Duration;

use common::watchdog;
use mp::{Comm, Communicator, Connection, Error, Process, Receiver, Sender};

mp::test_support!();

const LIMIT: Duration = Duration::from_secs(120);

/// One ring's capacity (crates/mp/src/ring.rs) and the step its writer publishes in: the sizes
/// around them are where a ring implementation would go wrong.
const RING: usize = 1 << 20;
const STEP: usize = 64 << 10;

fn sizes() -> Vec<usize> {
    vec![
        0,
        1,
        7,
        23,
        24,
        25,
        4093,
        STEP - 25,
        STEP - 24,
        STEP - 1,
        STEP,
        STEP + 1,
        RING - 25,
        RING - 24,
        RING - 1,
        RING,
        RING + 1,
        3 * RING + 4099,
        64 << 20,
    ]
}

/// A message of `len` bytes whose every byte depends on its size and position.
fn pattern(len: usize) -> Vec<u8> {
    (0..len).map(|index| (index.wrapping_mul(131) ^ len.wrapping_mul(7)) as u8).collect()
}

fn echo_bytes(connection: Connection<()>) -> usize {
    let mut echoed = 0;
    let mut buffer = Vec::new();
    while connection.recv_bytes_into(&mut buffer).is_ok() {
        connection.send_bytes(&buffer).unwrap();
        echoed += 1;
    }
    echoed
}

#[test]
fn every_size_arrives_whole_and_in_order_through_a_process() {
    let _guard = watchdog(LIMIT);
    let (here, there) = mp::pipe::<()>().unwrap();
    let mut child = Process::spawn(echo_bytes, there).unwrap();
    let mut reply = Vec::new();
    for len in sizes() {
        let message = pattern(len);
        here.send_bytes(&message).unwrap();
        here.recv_bytes_into(&mut reply).unwrap();
        assert!(reply == message, "a message of {len} bytes came back changed");
        // The allocating receive gives the same bytes.
        here.send_bytes(&message).unwrap();
        assert!(here.recv_bytes().unwrap() == message, "{len} bytes, recv_bytes");
    }
    drop(here);
    assert_eq!(child.join().unwrap(), 2 * sizes().len());
}

#[test]
fn many_messages_queued_at_once_arrive_in_order_between_threads() {
    let _guard = watchdog(LIMIT);
    let (tx, rx) = mp::pipe_simplex::<()>().unwrap();
    // Sent before anyone reads: more than a ring holds, so the rest waits for a flusher.
    let all: Vec<usize> = sizes().into_iter().chain(sizes()).collect();
    for &len in &all {
        tx.send_bytes(&pattern(len)).unwrap();
    }
    let reader = std::thread::spawn(move || {
        let mut buffer = Vec::new();
        let mut lengths = Vec::new();
        while rx.recv_bytes_into(&mut buffer).is_ok() {
            assert!(buffer == pattern(buffer.len()), "{} bytes changed", buffer.len());
            lengths.push(buffer.len());
        }
        lengths
    });
    drop(tx);
    assert_eq!(reader.join().unwrap(), all);
}

fn exchange_every_size(comm: Comm, _: ()) -> usize {
    let peer = 1 - comm.rank();
    let mut buffer = Vec::new();
    let mut checked = 0;
    for len in sizes() {
        // Both ranks send first: neither may wait for the other to receive.
        comm.send_bytes(peer, &pattern(len + comm.rank())).unwrap();
        comm.recv_bytes_into(peer, &mut buffer).unwrap();
        assert!(buffer == pattern(len + peer), "rank {} got {len} bytes changed", comm.rank());
        comm.send(peer, &(len as u64)).unwrap();
        assert_eq!(comm.recv::<u64>(peer).unwrap(), len as u64);
        checked += 1;
    }
    checked
}

#[test]
fn ranks_exchange_every_size_both_sending_first() {
    let _guard = watchdog(LIMIT);
    let results = mp::launch(2, exchange_every_size, ()).unwrap();
    assert_eq!(results, [sizes().len(), sizes().len()]);
}

/// Typed messages, bytes and pipe ends (descriptors) mixed in one stream.
fn mixed_receiver(connection: Connection<(u64, Option<Sender<u64>>)>) -> u64 {
    let mut total = 0;
    for round in 0..50u64 {
        let (value, reply_to) = connection.recv().unwrap();
        assert_eq!(value, round);
        let bytes = connection.recv_bytes().unwrap();
        assert!(bytes == pattern(round as usize * 997), "round {round}");
        if let Some(reply_to) = reply_to {
            reply_to.send(&(round * 2)).unwrap();
        }
        total += value;
    }
    total
}

#[test]
fn typed_messages_bytes_and_handles_keep_their_order() {
    let _guard = watchdog(LIMIT);
    let (here, there) = mp::pipe::<(u64, Option<Sender<u64>>)>().unwrap();
    let mut child = Process::spawn(mixed_receiver, there).unwrap();
    let mut replies = Vec::new();
    for round in 0..50u64 {
        if round % 3 == 0 {
            let (reply_to, reply) = mp::pipe_simplex::<u64>().unwrap();
            here.send(&(round, Some(reply_to))).unwrap();
            replies.push((round, reply));
        } else {
            here.send(&(round, None)).unwrap();
        }
        here.send_bytes(&pattern(round as usize * 997)).unwrap();
    }
    assert_eq!(child.join().unwrap(), (0..50).sum::<u64>());
    for (round, reply) in replies {
        assert_eq!(reply.recv().unwrap(), round * 2);
    }
}

fn receive_rest(receiver: Receiver<u64>) -> Vec<u64> {
    let mut values = Vec::new();
    while let Ok(value) = receiver.recv() {
        values.push(value);
    }
    values
}

#[test]
fn an_end_used_here_keeps_its_unread_messages_when_it_travels() {
    let _guard = watchdog(LIMIT);
    let (tx, rx) = mp::pipe_simplex::<u64>().unwrap();
    tx.send(&1).unwrap();
    tx.send(&2).unwrap();
    assert_eq!(rx.recv().unwrap(), 1);
    let mut child = Process::spawn(receive_rest, rx).unwrap();
    for value in 3..=5 {
        tx.send(&value).unwrap();
    }
    drop(tx);
    assert_eq!(child.join().unwrap(), [2, 3, 4, 5]);
}

fn send_forever((sender, len): (Sender<()>, usize)) {
    let message = pattern(len);
    while sender.send_bytes(&message).is_ok() {}
}

fn receive_forever(receiver: Receiver<()>) {
    let mut buffer = Vec::new();
    while receiver.recv_bytes_into(&mut buffer).is_ok() {}
}

fn kill_soon(pid: u32) -> std::thread::JoinHandle<()> {
    std::thread::spawn(move || {
        std::thread::sleep(Duration::from_millis(50));
        std::process::Command::new("kill").args(["-KILL", &pid.to_string()]).status().unwrap();
    })
}

#[test]
fn a_sender_killed_mid_transfer_is_an_error_for_the_receiver() {
    let _guard = watchdog(LIMIT);
    for len in [7, RING + 1, 64 << 20] {
        let (tx, rx) = mp::pipe_simplex::<()>().unwrap();
        let mut child = Process::spawn(send_forever, (tx, len)).unwrap();
        let mut buffer = Vec::new();
        rx.recv_bytes_into(&mut buffer).unwrap();
        assert!(buffer == pattern(len));
        let killer = kill_soon(child.pid());
        let error = loop {
            match rx.recv_bytes_into(&mut buffer) {
                Ok(()) => assert!(buffer == pattern(len), "a message of {len} bytes changed"),
                Err(error) => break error,
            }
        };
        killer.join().unwrap();
        assert!(
            matches!(error, Error::Disconnected { .. } | Error::Corrupted { .. }),
            "{len} bytes: {error:?}"
        );
        let _ = child.join();
    }
}

/// Sends `len` numbers, 0 to len - 1, with `send_slice` for every request. (On request, so
/// that arrays are not queued for the flusher faster than they are read.)
fn serve_arrays((connection, len): (Connection<()>, usize)) {
    let numbers: Vec<u64> = (0..len as u64).collect();
    while connection.recv().is_ok() && connection.send_slice(&numbers).is_ok() {}
}

#[test]
fn a_sender_killed_mid_array_is_an_error_for_recv_vec_never_a_short_array() {
    let _guard = watchdog(LIMIT);
    // recv_vec and recv_into receive straight into the vector they return: a half-received
    // array must be an error, whatever its size, never an `Ok` holding part of it.
    for len in [1, RING / 8 + 1, 8 << 20] {
        let expected: Vec<u64> = (0..len as u64).collect();
        let (here, there) = mp::pipe::<()>().unwrap();
        let mut child = Process::spawn(serve_arrays, (there, len)).unwrap();
        here.send(&()).unwrap();
        assert!(here.recv_vec::<u64>().unwrap() == expected);
        let killer = kill_soon(child.pid());
        let mut reused = Vec::new();
        let error = loop {
            let received = here
                .send(&())
                .and_then(|()| here.recv_into::<u64>(&mut reused))
                .and_then(|()| here.send(&()))
                .and_then(|()| here.recv_vec::<u64>());
            match received {
                Ok(fresh) => {
                    assert!(reused == expected && fresh == expected, "an array of {len} changed")
                }
                Err(error) => break error,
            }
        };
        killer.join().unwrap();
        assert!(
            matches!(error, Error::Disconnected { .. } | Error::Corrupted { .. }),
            "{len} numbers: {error:?}"
        );
        let _ = child.join();
    }
}

#[test]
fn a_receiver_killed_mid_transfer_is_an_error_for_the_sender() {
    let _guard = watchdog(LIMIT);
    for len in [7, RING + 1, 64 << 20] {
        let (tx, rx) = mp::pipe_simplex::<()>().unwrap();
        let mut child = Process::spawn(receive_forever, rx).unwrap();
        let killer = kill_soon(child.pid());
        let message = pattern(len);
        // Sends succeed while the receiver lives (or their rest is queued); then they fail.
        while tx.send_bytes(&message).is_ok() {}
        killer.join().unwrap();
        assert!(tx.send_bytes(&message).unwrap_err().is_disconnected());
        let _ = child.join();
    }
}

#[test]
fn pipes_leave_nothing_in_dev_shm() {
    let _guard = watchdog(LIMIT);
    let count = || std::fs::read_dir("/dev/shm").map(|entries| entries.count()).unwrap_or(0);
    let before = count();
    let (here, there) = mp::pipe::<()>().unwrap();
    let mut child = Process::spawn(echo_bytes, there).unwrap();
    here.send_bytes(&pattern(RING + 1)).unwrap();
    assert_eq!(here.recv_bytes().unwrap().len(), RING + 1);
    assert_eq!(count(), before, "a pipe in use");
    drop(here);
    child.join().unwrap();
    assert_eq!(count(), before, "after the pipe");
}

/// The bytes of small message `index`: 0 to 16 bytes (frames that fit the inline copy beside
/// the ring's write position, and some that do not), all depending on `index`.
fn small_message(index: u64) -> Vec<u8> {
    let len = (index % 20) as usize;
    (0..len)
        .map(|position| (index as usize).wrapping_mul(31).wrapping_add(position) as u8)
        .collect()
}

fn send_small_messages((sender, count): (Sender<()>, u64)) {
    for index in 0..count {
        sender.send_bytes(&small_message(index)).unwrap();
    }
}

#[test]
fn a_stream_of_small_messages_is_never_torn_when_the_writer_outruns_the_reader() {
    let _guard = watchdog(LIMIT);
    let count = 200_000;
    let (sender, receiver) = mp::pipe_simplex::<()>().unwrap();
    let mut writer = Process::spawn(send_small_messages, (sender, count)).unwrap();
    let mut buffer = Vec::new();
    for index in 0..count {
        receiver.recv_bytes_into(&mut buffer).unwrap();
        assert_eq!(buffer, small_message(index), "message {index}");
        if index % 1000 == 0 {
            // Let the writer run ahead, so that it rewrites the inline copy while we read.
            std::thread::yield_now();
        }
    }
    writer.join().unwrap();
}

/// Each rank records its pid, then waits for its left neighbour, which never sends.
fn deadlocked_rank(comm: Comm, pids: mp::SharedArray<u64>) -> u64 {
    pids.set(comm.rank(), u64::from(std::process::id()));
    let left = (comm.rank() + comm.size() - 1) % comm.size();
    comm.recv(left).unwrap()
}

#[test]
fn a_deadlocked_group_ends_at_its_time_limit_with_every_rank_stopped() {
    let _guard = watchdog(LIMIT);
    let pids = mp::SharedArray::<u64>::new(3).unwrap();
    let ring = mp::Launch { n_ranks: 3, topology: mp::Topology::Ring };
    let error = ring.run_timeout(deadlocked_rank, pids.clone(), Duration::from_millis(500));
    let error = error.unwrap_err();
    assert!(error.is_timeout(), "{error}");
    assert!(error.to_string().contains("ranks 0, 1, 2 of 3"), "{error}");
    for rank in 0..3 {
        let pid = pids.get(rank) as u32;
        if pid == 0 {
            continue; // stopped before it got that far
        }
        // Gone, and not a zombie of this process: reaped. (Other tests of this binary run
        // beside it, so only this group's own pids are checked.)
        assert!(common::eventually(Duration::from_secs(10), || common::is_gone_and_reaped(pid)));
    }
}
