//! A message larger than a process may allocate is `Error::OutOfMemory` naming the size, not
//! an abort (issue 10): in a sender, in a worker that receives, and in a parent that receives.
//! Each process under test is limited for real (`prlimit --as` on its pid, once it is
//! running), and goes on working after the error.
//!
//! Alone in its binary: it moves 1 GiB messages. The tests take turns (one lock), so the binary
//! never holds more than one of them at a time.

mod common;

use std::{process::Command, sync::Mutex, time::Duration};

use common::watchdog;
use mp::{Connection, Error, Process};

mp::test_support!();

const LIMIT: Duration = Duration::from_secs(300);
const GIB: usize = 1 << 30;
/// Address space left to a limited process beyond what it has: room for its small
/// allocations and threads, not for a 1 GiB message.
const HEADROOM: u64 = 768 << 20;

static ONE_AT_A_TIME: Mutex<()> = Mutex::new(());

/// Limits the address space of process `pid` to what it uses now plus [`HEADROOM`].
fn limit_memory(pid: u32) {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap();
    let kib: u64 = status
        .lines()
        .find_map(|line| line.strip_prefix("VmSize:"))
        .and_then(|size| size.trim().trim_end_matches("kB").trim().parse().ok())
        .expect("VmSize in /proc/PID/status");
    let limit = kib * 1024 + HEADROOM;
    let status = Command::new("prlimit")
        .arg(format!("--pid={pid}"))
        .arg(format!("--as={limit}"))
        .status()
        .expect("prlimit (util-linux) runs");
    assert!(status.success(), "prlimit failed");
}

/// The text of an out-of-memory error, or a panic naming what came instead.
fn out_of_memory<T: std::fmt::Debug>(outcome: mp::Result<T>) -> String {
    match outcome {
        Err(error @ Error::OutOfMemory { .. }) => error.to_string(),
        other => panic!("expected Error::OutOfMemory, got {other:?}"),
    }
}

/// Holds 1 GiB (reserved, not touched), waits to be limited, then sends it: typed as bytes
/// (the bulk path), then as 16-byte arrays (postcard). Returns the two errors.
fn big_sender(connection: Connection<Vec<u8>>) -> (String, String) {
    let bytes = vec![0u8; GIB];
    let arrays = vec![[0u8; 16]; GIB / 16];
    connection.send(&Vec::new()).unwrap(); // ready
    connection.recv().unwrap(); // limited
    let bulk = out_of_memory(connection.send(&bytes));
    let arrays_end: Connection<Vec<[u8; 16]>> = mp::testing::retype(connection);
    let postcard = out_of_memory(arrays_end.send(&arrays));
    // Nothing was sent; the connection is fine.
    arrays_end.send(&vec![[7; 16]]).unwrap();
    (bulk, postcard)
}

#[test]
fn a_sender_out_of_memory_gets_an_error() {
    let _turn = ONE_AT_A_TIME.lock().unwrap_or_else(|poison| poison.into_inner());
    let _guard = watchdog(LIMIT);
    let (here, there) = mp::pipe::<Vec<u8>>().unwrap();
    let mut sender = Process::spawn(big_sender, there).unwrap();
    here.recv().unwrap();
    limit_memory(sender.pid());
    here.send(&Vec::new()).unwrap();
    let arrays: Connection<Vec<[u8; 16]>> = mp::testing::retype(here);
    assert_eq!(arrays.recv().unwrap(), [[7; 16]]);
    let (bulk, postcard) = sender.join().expect("the sender survives its error");
    assert!(bulk.starts_with("cannot allocate 1.00 GiB for encoding a message"), "{bulk}");
    assert!(postcard.contains("for encoding a message"), "{postcard}");
}

/// Waits to be limited, then receives a 1 GiB message (raw bytes), a 512 MiB `Vec<f64>` that
/// fits as a message but not again as a decoded vector, a 1 GiB slice, a 512 MiB slice (which
/// fits: it lands straight in its vector) and a small one. Returns the three errors, the
/// length of the 512 MiB slice and the small message.
fn big_receiver(connection: Connection<Vec<f64>>) -> ([String; 3], usize, Vec<f64>) {
    connection.send(&Vec::new()).unwrap(); // ready
    connection.recv().unwrap(); // limited
    let received = out_of_memory(connection.recv_bytes());
    let decoded = out_of_memory(connection.recv());
    let as_slice = out_of_memory(connection.recv_vec::<f64>());
    let fitting = connection.recv_vec::<f64>().map(|floats| floats.len());
    ([received, decoded, as_slice], fitting.unwrap(), connection.recv().unwrap())
}

#[test]
fn a_worker_out_of_memory_gets_an_error_and_its_connection_goes_on() {
    let _turn = ONE_AT_A_TIME.lock().unwrap_or_else(|poison| poison.into_inner());
    let _guard = watchdog(LIMIT);
    let (here, there) = mp::pipe::<Vec<f64>>().unwrap();
    let mut receiver = Process::spawn(big_receiver, there).unwrap();
    here.recv().unwrap();
    limit_memory(receiver.pid());
    here.send(&Vec::new()).unwrap();
    here.send_bytes(&vec![0u8; GIB]).unwrap();
    let floats = vec![0.0; (512 << 20) / 8];
    here.send(&floats).unwrap();
    here.send_slice(&vec![0.0f64; GIB / 8]).unwrap();
    here.send_slice(&floats).unwrap();
    here.send(&vec![1.0, 2.0]).unwrap();
    let ([received, decoded, as_slice], fitting, small) =
        receiver.join().expect("the worker survives its errors");
    assert!(
        received.starts_with(
            "cannot allocate 1.00 GiB for receiving a message of 1.00 GiB (it was read and dropped)"
        ),
        "{received}"
    );
    assert!(
        decoded.starts_with("cannot allocate 512.00 MiB for decoding a message of 512.00 MiB"),
        "{decoded}"
    );
    assert!(
        as_slice.starts_with(
            "cannot allocate 1.00 GiB for receiving a message of 1.00 GiB (it was read and dropped)"
        ),
        "{as_slice}"
    );
    // 512 MiB twice (a byte buffer, then the vector) would not fit in the headroom.
    assert_eq!(fitting, floats.len());
    assert_eq!(small, [1.0, 2.0]);
}

/// A worker of the limited parent: sends 1 GiB on a pipe, then a small message, and returns
/// 1 GiB as its result.
fn big_child(connection: Connection<Vec<u8>>) -> Vec<u8> {
    connection.recv().unwrap(); // go
    connection.send_bytes(&vec![0u8; GIB]).unwrap();
    connection.send(&vec![3]).unwrap();
    vec![0u8; GIB]
}

/// Starts its worker, waits to be limited, then receives 1 GiB from it on a pipe and as its
/// result. Returns the errors and the small message between them.
fn limited_parent(test: Connection<Vec<u8>>) -> (String, Vec<u8>, String) {
    let (here, there) = mp::pipe::<Vec<u8>>().unwrap();
    let mut child = Process::spawn(big_child, there).unwrap();
    test.send(&Vec::new()).unwrap(); // ready
    test.recv().unwrap(); // limited
    here.send(&Vec::new()).unwrap();
    let on_pipe = out_of_memory(here.recv_bytes());
    let small = here.recv().unwrap();
    let result = out_of_memory(child.join());
    (on_pipe, small, result)
}

#[test]
fn a_parent_out_of_memory_gets_an_error() {
    let _turn = ONE_AT_A_TIME.lock().unwrap_or_else(|poison| poison.into_inner());
    let _guard = watchdog(LIMIT);
    let (here, there) = mp::pipe::<Vec<u8>>().unwrap();
    let mut parent = Process::spawn(limited_parent, there).unwrap();
    here.recv().unwrap();
    // Only the parent: its worker, started already, is not limited.
    limit_memory(parent.pid());
    here.send(&Vec::new()).unwrap();
    let (on_pipe, small, result) = parent.join().expect("the parent survives its errors");
    assert!(on_pipe.starts_with("cannot allocate 1.00 GiB for receiving a message"), "{on_pipe}");
    assert_eq!(small, [3]);
    assert!(result.starts_with("cannot allocate 1.00 GiB for receiving a message"), "{result}");
}

/// Waits to be limited, then receives a message too large for it that carries a pipe end,
/// and a small one that carries another: returns what the second pipe end delivers.
fn receiver_of_ends(connection: Connection<(Vec<f64>, mp::Receiver<u32>)>) -> (String, u32) {
    let ready: Connection<u32> = mp::testing::retype(connection);
    ready.send(&0).unwrap();
    ready.recv().unwrap(); // limited
    let connection: Connection<(Vec<f64>, mp::Receiver<u32>)> = mp::testing::retype(ready);
    let error = out_of_memory(connection.recv());
    let (_, end) = connection.recv().unwrap();
    (error, end.recv().unwrap())
}

#[test]
fn the_pipe_ends_of_a_dropped_message_never_reach_the_next_message() {
    let _turn = ONE_AT_A_TIME.lock().unwrap_or_else(|poison| poison.into_inner());
    let _guard = watchdog(LIMIT);
    let (here, there) = mp::pipe::<(Vec<f64>, mp::Receiver<u32>)>().unwrap();
    let mut receiver = Process::spawn(receiver_of_ends, there).unwrap();
    let ready: Connection<u32> = mp::testing::retype(here);
    ready.recv().unwrap();
    limit_memory(receiver.pid());
    ready.send(&0).unwrap();
    let here: Connection<(Vec<f64>, mp::Receiver<u32>)> = mp::testing::retype(ready);
    let (dropped_tx, dropped_rx) = mp::pipe_simplex::<u32>().unwrap();
    let (kept_tx, kept_rx) = mp::pipe_simplex::<u32>().unwrap();
    here.send(&(vec![0.5; GIB / 8], dropped_rx)).unwrap();
    here.send(&(Vec::new(), kept_rx)).unwrap();
    // Whichever end the worker got, it hears from it: 1 would be the dropped message's.
    let _ = dropped_tx.send(&1);
    kept_tx.send(&2).unwrap();
    let (error, heard) = receiver.join().expect("the worker survives its error");
    assert!(error.starts_with("cannot allocate 1.00 GiB for receiving a message"), "{error}");
    assert_eq!(heard, 2, "the second message carried the first one's pipe end");
}

/// The messages of the flooding sender: 64 MiB each, every byte the message's number.
const FLOOD_MESSAGE: usize = 64 << 20;

/// Waits to be limited, then sends numbered 64 MiB messages to a receiver that does not read,
/// until a send fails; says on `status` how many went, and returns the error.
fn flooding_sender((data, status): (Connection<()>, Connection<u64>)) -> String {
    let mut message = vec![0u8; FLOOD_MESSAGE];
    status.send(&0).unwrap(); // ready
    status.recv().unwrap(); // limited
    let mut sent = 0u64;
    let error = loop {
        message.fill(sent as u8);
        match data.send_bytes(&message) {
            Ok(()) => sent += 1,
            Err(error) => break out_of_memory::<()>(Err(error)),
        }
        assert!(sent < 64, "4 GiB queued within 768 MiB: the queue is not bounded");
    };
    status.send(&sent).unwrap();
    error
}

#[test]
fn a_sender_that_outruns_its_receiver_gets_an_error_and_loses_nothing() {
    let _turn = ONE_AT_A_TIME.lock().unwrap_or_else(|poison| poison.into_inner());
    let _guard = watchdog(LIMIT);
    let (data_here, data_there) = mp::pipe::<()>().unwrap();
    let (status_here, status_there) = mp::pipe::<u64>().unwrap();
    let mut sender = Process::spawn(flooding_sender, (data_there, status_there)).unwrap();
    status_here.recv().unwrap();
    limit_memory(sender.pid());
    status_here.send(&0).unwrap();
    // Nothing is read on `data` until the sender has had its error.
    let sent = status_here.recv().unwrap();
    assert!(sent >= 2, "only {sent} messages went before the error");
    let mut buffer = Vec::new();
    for number in 0..sent {
        data_here.recv_bytes_into(&mut buffer).unwrap();
        assert_eq!(buffer.len(), FLOOD_MESSAGE);
        assert!(
            buffer.iter().all(|&byte| byte == number as u8),
            "message {number} arrived damaged or out of order"
        );
    }
    let error = sender.join().expect("the sender survives its error");
    assert!(error.contains("that its receiver has not taken yet"), "{error}");
    assert!(error.contains("the queued messages still go"), "{error}");
    assert!(
        matches!(data_here.recv_bytes(), Err(Error::Disconnected { .. })),
        "a message after the refused one arrived"
    );
}

/// Peak resident memory of this process (`VmHWM`), in bytes.
fn peak_memory() -> u64 {
    let status = std::fs::read_to_string("/proc/self/status").unwrap();
    let kib: u64 = status
        .lines()
        .find_map(|line| line.strip_prefix("VmHWM:"))
        .and_then(|size| size.trim().trim_end_matches("kB").trim().parse().ok())
        .expect("VmHWM in /proc/self/status");
    kib * 1024
}

/// Sends 24 numbered 64 MiB messages as fast as it can; returns how far its peak memory rose.
fn fast_sender(data: Connection<()>) -> u64 {
    let mut message = vec![0u8; FLOOD_MESSAGE];
    let before = peak_memory();
    for number in 0..24u8 {
        message.fill(number);
        data.send_bytes(&message).unwrap();
    }
    peak_memory() - before
}

#[test]
fn a_sender_faster_than_its_receiver_waits_instead_of_queueing_without_end() {
    let _turn = ONE_AT_A_TIME.lock().unwrap_or_else(|poison| poison.into_inner());
    let _guard = watchdog(LIMIT);
    let (here, there) = mp::pipe::<()>().unwrap();
    let mut sender = Process::spawn(fast_sender, there).unwrap();
    let mut buffer = Vec::new();
    for number in 0..24u8 {
        // A receiver with work between its receives (well under the sender's patience).
        std::thread::sleep(Duration::from_millis(20));
        here.recv_bytes_into(&mut buffer).unwrap();
        assert!(buffer.len() == FLOOD_MESSAGE && buffer.iter().all(|&byte| byte == number));
    }
    let grown = sender.join().unwrap();
    // Without waiting, the queue held most of the 1.5 GiB sent (the sender copies a message
    // in a few milliseconds, the receiver takes one every 20 ms or more).
    assert!(grown < 640 << 20, "the sender's peak memory rose by {} MiB", grown >> 20);
}
