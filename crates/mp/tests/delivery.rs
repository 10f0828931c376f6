//! No lost or duplicated message (issue 10): a send that returns `Ok` had a live receiver, and a
//! receiving end shared by several processes gives each message to exactly one of them.
//! Real processes, stopped and killed with signals; every wait is bounded by the watchdog.

mod common;

use std::time::Duration;

use common::{eventually, is_gone_and_reaped, proc_state, watchdog};
use mp::{Error, Process, Receiver, Sender};

mp::test_support!();

const LIMIT: Duration = Duration::from_secs(120);
/// One ring's capacity (crates/mp/src/ring.rs): larger messages cross it in several parts.
const RING: usize = 1 << 20;
/// A receive that should end at once, but might hang without the fix, gives up after this
/// (so that the old code fails with an assertion, within the watchdog's limit).
const WAIT: Duration = Duration::from_secs(20);

/// Every process this test started is gone and reaped (other tests run at the same time, so
/// only these are looked at).
fn all_reaped(pids: &[u32]) {
    let left: Vec<u32> = pids.iter().copied().filter(|&pid| !is_gone_and_reaped(pid)).collect();
    assert!(left.is_empty(), "processes left over: {left:?}");
}

fn signal(pid: u32, name: &str) {
    let status = std::process::Command::new("kill")
        .args([&format!("-{name}"), &pid.to_string()])
        .status()
        .unwrap();
    assert!(status.success(), "kill -{name} {pid}");
}

/// Waits until the main thread of `pid` is in state `state` (from /proc).
fn wait_for_state(pid: u32, state: char) {
    assert!(
        eventually(LIMIT, || matches!(proc_state(pid), Some((now, _)) if now == state)),
        "process {pid} never reached state {state}"
    );
}

/// Another handle on the same receiving end, as a second process would get it: the end
/// travels through a pipe (its socket and shared memory are duplicated, nothing else).
fn share<T: 'static>(receiver: &Receiver<T>) -> Receiver<T> {
    let (tx, rx) = mp::pipe_simplex::<Receiver<T>>().unwrap();
    tx.send(receiver).unwrap();
    rx.recv().unwrap()
}

// ---- A send whose receiver dies.

fn enter_recv_after_ready((ready, receiver): (Sender<()>, Receiver<()>)) {
    ready.send(&()).unwrap();
    // Stopped and killed in here: it never returns.
    let _ = receiver.recv_bytes();
}

#[test]
fn a_send_blocked_on_a_receiver_that_is_killed_is_an_error_never_ok() {
    let _guard = watchdog(LIMIT);
    let (ready_tx, ready_rx) = mp::pipe_simplex::<()>().unwrap();
    let (tx, rx) = mp::pipe_simplex::<()>().unwrap();
    let mut child = Process::spawn(enter_recv_after_ready, (ready_tx, rx)).unwrap();
    let pid = child.pid();
    ready_rx.recv().unwrap();
    // Asleep means inside the receive, waiting for a message that is not there yet.
    wait_for_state(pid, 'S');
    // A receiver that never reads again, but is inside recv: the sender must wait for it
    // rather than hand the rest of its message to a flusher thread.
    signal(pid, "STOP");
    wait_for_state(pid, 'T');
    let message = vec![7u8; 64 << 20];
    let killer = std::thread::spawn(move || {
        // Whenever it lands (before the send, or while it waits for room), the message cannot
        // have reached the receiver: 64 MiB do not fit in the ring, and it reads nothing.
        std::thread::sleep(Duration::from_millis(100));
        signal(pid, "KILL");
    });
    let sent = tx.send_bytes(&message);
    killer.join().unwrap();
    match sent {
        Err(Error::Disconnected { .. } | Error::Corrupted { .. }) => {}
        other => panic!("a send to a receiver killed before it read anything returned {other:?}"),
    }
    assert!(tx.send_bytes(b"after").is_err(), "a later send must fail too");
    assert!(child.join().is_err(), "the receiver was killed");
    all_reaped(&[pid]);
}

// ---- Several processes on one receiving end.

/// Message `index`: its number, then bytes that depend on it. Mostly small (the inline copy
/// beside the ring's write position), some larger than a publishing step, some larger than
/// the whole ring.
fn sequenced(index: u64) -> Vec<u8> {
    let len = if index % 997 == 500 {
        RING + 4099 + (index % 7) as usize * 1000
    } else if index % 89 == 3 {
        (70 << 10) + (index % 13) as usize
    } else {
        8 + (index % 17) as usize
    };
    let mut message = Vec::with_capacity(len);
    message.extend_from_slice(&index.to_le_bytes());
    message.extend((8..len).map(|position| (index as usize * 31 + position * 7) as u8));
    message
}

/// Receives until the sender is gone; returns the numbers of the messages it got, each
/// checked byte for byte.
fn collect(receiver: Receiver<()>) -> Result<Vec<u64>, String> {
    let mut got = Vec::new();
    let mut buffer = Vec::new();
    loop {
        match receiver.recv_bytes_into(&mut buffer) {
            Ok(()) => {
                let index = u64::from_le_bytes(buffer[..8].try_into().unwrap());
                if buffer != sequenced(index) {
                    return Err(format!(
                        "message {index} ({} bytes) arrived changed",
                        buffer.len()
                    ));
                }
                got.push(index);
            }
            Err(error) if error.is_disconnected() => return Ok(got),
            Err(error) => return Err(format!("after {} messages: {error}", got.len())),
        }
    }
}

#[test]
fn processes_sharing_one_receiving_end_each_get_distinct_messages_and_together_all() {
    let _guard = watchdog(LIMIT);
    let count = 12_000u64;
    let mut pids = Vec::new();
    for readers in [2, 3] {
        let (tx, rx) = mp::pipe_simplex::<()>().unwrap();
        let mut processes: Vec<_> =
            (0..readers).map(|_| Process::spawn(collect, share(&rx)).unwrap()).collect();
        pids.extend(processes.iter().map(Process::pid));
        drop(rx);
        let sent = (0..count).try_for_each(|index| tx.send_bytes(&sequenced(index)));
        drop(tx);
        let mut all = Vec::new();
        for (reader, process) in processes.iter_mut().enumerate() {
            let got = process.join().unwrap();
            let got =
                got.unwrap_or_else(|error| panic!("{readers} readers, reader {reader}: {error}"));
            eprintln!("{readers} readers: reader {reader} got {} messages", got.len());
            all.extend(got);
        }
        sent.unwrap();
        all.sort_unstable();
        let duplicates = all.windows(2).filter(|pair| pair[0] == pair[1]).count();
        all.dedup();
        let missing = count as usize - all.len();
        assert_eq!(
            (duplicates, missing),
            (0, 0),
            "{readers} readers: duplicated and missing messages"
        );
        assert_eq!(all, (0..count).collect::<Vec<_>>());
    }
    all_reaped(&pids);
}

// ---- A reader that dies holding the read lock.

/// Sends one message larger than the ring while nobody receives: the first ring-full goes in,
/// the rest is queued for this process's flusher, and `send` returns.
fn send_one_large((tx, sent): (Sender<Vec<u8>>, Sender<()>)) {
    tx.send(&vec![5u8; 16 << 20]).unwrap();
    sent.send(&()).unwrap();
    std::thread::sleep(LIMIT);
}

/// Reads what there is of a message whose sender has stopped, gives up waiting for the rest
/// (in the middle of the message), says so, and waits to be killed.
fn read_part((rx, report): (Receiver<Vec<u8>>, Sender<String>)) {
    let outcome = match rx.recv_timeout(Duration::from_millis(300)) {
        Ok(message) => format!("received {} bytes", message.len()),
        Err(error) => error.to_string(),
    };
    report.send(&outcome).unwrap();
    std::thread::sleep(LIMIT);
}

fn recv_one(rx: Receiver<Vec<u8>>) -> Result<usize, String> {
    rx.recv_timeout(WAIT).map(|message| message.len()).map_err(|error| error.to_string())
}

#[test]
fn a_reader_killed_in_the_middle_of_a_message_is_a_clear_error_for_the_other_readers() {
    let _guard = watchdog(LIMIT);
    let (tx, rx) = mp::pipe_simplex::<Vec<u8>>().unwrap();
    let (sent_tx, sent_rx) = mp::pipe_simplex::<()>().unwrap();
    let mut writer = Process::spawn(send_one_large, (tx, sent_tx)).unwrap();
    sent_rx.recv().unwrap();
    // The ring holds the first part of the message and nothing more will come.
    signal(writer.pid(), "STOP");
    wait_for_state(writer.pid(), 'T');
    let (report_tx, report_rx) = mp::pipe_simplex::<String>().unwrap();
    let mut victim = Process::spawn(read_part, (share(&rx), report_tx)).unwrap();
    let outcome = report_rx.recv().unwrap();
    assert!(outcome.contains("timed out"), "{outcome}");
    // The victim is in the middle of the message. Another reader waits for its turn.
    let mut other = Process::spawn(recv_one, share(&rx)).unwrap();
    signal(victim.pid(), "KILL");
    assert!(victim.join().is_err());
    // Neither the waiting reader nor this one may hang, take the rest as a message, or blame
    // a sender.
    let theirs = other.join().unwrap();
    let ours = rx.recv_timeout(WAIT);
    for outcome in [theirs.map_err(Some), ours.map(|m| m.len()).map_err(|e| Some(e.to_string()))] {
        match outcome {
            Err(Some(message)) => {
                assert!(message.contains("receiv") && message.contains("died"), "{message}");
                assert!(!message.contains("sending end"), "{message}");
            }
            other => panic!("expected an error naming the dead reader, got {other:?}"),
        }
    }
    signal(writer.pid(), "KILL");
    let _ = writer.join();
    all_reaped(&[writer.pid(), victim.pid(), other.pid()]);
}

fn recv_after_ready((ready, rx): (Sender<()>, Receiver<u64>)) {
    ready.send(&()).unwrap();
    let _ = rx.recv();
}

#[test]
fn a_reader_killed_while_it_waits_for_a_message_takes_none_with_it() {
    let _guard = watchdog(LIMIT);
    let (tx, rx) = mp::pipe_simplex::<u64>().unwrap();
    let (ready_tx, ready_rx) = mp::pipe_simplex::<()>().unwrap();
    let mut idle = Process::spawn(recv_after_ready, (ready_tx, share(&rx))).unwrap();
    ready_rx.recv().unwrap();
    // Asleep: waiting in recv (holding the end's read lock, nothing read yet).
    wait_for_state(idle.pid(), 'S');
    signal(idle.pid(), "KILL");
    assert!(idle.join().is_err());
    for value in 0..3 {
        tx.send(&value).unwrap();
    }
    for value in 0..3 {
        assert_eq!(rx.recv_timeout(WAIT).unwrap(), value);
    }
    all_reaped(&[idle.pid()]);
}

type WithHandle = (u64, Option<Sender<u64>>);

/// Receives until the sender is gone, answering through the handles that come with some
/// messages; returns the numbers it got.
fn answer(receiver: Receiver<WithHandle>) -> Result<Vec<u64>, String> {
    let mut got = Vec::new();
    loop {
        match receiver.recv() {
            Ok((index, reply_to)) => {
                if let Some(reply_to) = reply_to {
                    reply_to.send(&index).map_err(|error| error.to_string())?;
                }
                got.push(index);
            }
            Err(error) if error.is_disconnected() => return Ok(got),
            Err(error) => return Err(format!("after {} messages: {error}", got.len())),
        }
    }
}

#[test]
fn handles_go_with_their_message_to_whichever_process_sharing_the_end_receives_it() {
    let _guard = watchdog(LIMIT);
    let count = 300u64;
    let (tx, rx) = mp::pipe_simplex::<WithHandle>().unwrap();
    let mut processes: Vec<_> =
        (0..2).map(|_| Process::spawn(answer, share(&rx)).unwrap()).collect();
    drop(rx);
    let mut replies = Vec::new();
    for index in 0..count {
        // Every third message carries a pipe end (a descriptor on the socket, beside the ring).
        if index % 3 == 0 {
            let (reply_to, reply) = mp::pipe_simplex::<u64>().unwrap();
            tx.send(&(index, Some(reply_to))).unwrap();
            replies.push((index, reply));
        } else {
            tx.send(&(index, None)).unwrap();
        }
    }
    drop(tx);
    let mut all = Vec::new();
    for process in &mut processes {
        all.extend(process.join().unwrap().unwrap());
    }
    let pids: Vec<u32> = processes.iter().map(Process::pid).collect();
    all.sort_unstable();
    assert_eq!(all, (0..count).collect::<Vec<_>>());
    for (index, reply) in replies {
        assert_eq!(reply.recv_timeout(WAIT).unwrap(), index, "the handle of message {index}");
    }
    all_reaped(&pids);
}
