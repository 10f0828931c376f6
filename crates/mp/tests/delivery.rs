//! No lost or duplicated message (issue 10): a send that returns `Ok` had a live receiver, and a
//! receiving end shared by several processes gives each message to exactly one of them.
//! Real processes, stopped and killed with signals; every wait is bounded by the watchdog.

mod common;

use std::time::Duration;

use common::{eventually, proc_state, watchdog, zombie_children};
use mp::{Error, Process, Receiver, Sender};

mp::test_support!();

const LIMIT: Duration = Duration::from_secs(120);
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
    assert!(zombie_children().is_empty(), "{:?}", zombie_children());
}
