//! Messages of 1 GiB through a pipe to another process. Alone in its binary: it needs memory.

mod common;

use std::time::Duration;

use common::{eventually, watchdog};
use mp::{Process, Receiver, Sender};

mp::test_support!();

fn length_and_checksum(receiver: Receiver<()>) -> (usize, u64) {
    let bytes = receiver.recv_bytes().unwrap();
    (bytes.len(), checksum(&bytes))
}

fn checksum(bytes: &[u8]) -> u64 {
    bytes.chunks(8).fold(0u64, |sum, chunk| {
        let mut word = [0u8; 8];
        word[..chunk.len()].copy_from_slice(chunk);
        sum.wrapping_mul(31).wrapping_add(u64::from_le_bytes(word))
    })
}

#[test]
fn a_one_gib_message_arrives_whole() {
    let _guard = watchdog(Duration::from_secs(300));
    let n_bytes = (1usize << 30) + 7;
    let message: Vec<u8> = (0..n_bytes).map(|index| (index % 253) as u8).collect();
    let expected = checksum(&message);
    let (sender, receiver) = mp::pipe_simplex::<()>().unwrap();
    let mut child = Process::spawn(length_and_checksum, receiver).unwrap();
    sender.send_bytes(&message).unwrap();
    assert_eq!(child.join().unwrap(), (n_bytes, expected));
}

/// The peak resident memory of this process, in bytes.
fn own_peak() -> u64 {
    let status = std::fs::read_to_string("/proc/self/status").unwrap();
    let line = status.lines().find(|line| line.starts_with("VmHWM:")).unwrap();
    let kib: u64 = line.split_whitespace().nth(1).unwrap().parse().unwrap();
    kib * 1024
}

/// What the main thread of `pid` sleeps in (the kernel function), or "" if it runs.
fn sleeps_in(pid: u32) -> String {
    std::fs::read_to_string(format!("/proc/{pid}/wchan")).unwrap_or_default()
}

fn signal(pid: u32, which: &str) {
    let status = std::process::Command::new("kill").args([which, &pid.to_string()]).status();
    assert!(status.unwrap().success(), "kill {which} {pid} failed");
}

/// Says its pid, then receives one message.
fn announced_reader((receiver, ready): (Receiver<()>, Sender<u32>)) -> (usize, u64) {
    ready.send(&std::process::id()).unwrap();
    length_and_checksum(receiver)
}

/// Sends `n_bytes` and reports how much the peak resident memory grew meanwhile.
fn measured_sender((sender, n_bytes): (Sender<()>, usize)) -> (u64, u64) {
    let before = own_peak();
    let message: Vec<u8> = (0..n_bytes).map(|index| (index % 251) as u8).collect();
    sender.send_bytes(&message).unwrap();
    let checksum = checksum(&message);
    drop(message);
    (own_peak() - before, checksum)
}

#[test]
fn a_stalled_receiver_inside_recv_costs_the_sender_no_copy() {
    let _guard = watchdog(Duration::from_secs(120));
    let n_bytes = 64 << 20;
    let (sender, receiver) = mp::pipe_simplex::<()>().unwrap();
    let (ready_tx, ready_rx) = mp::pipe_simplex::<u32>().unwrap();
    let mut reader = Process::spawn(announced_reader, (receiver, ready_tx)).unwrap();
    let reader_pid = ready_rx.recv().unwrap();
    // Asleep in poll: inside recv, past its busy-polling. Then it stops being scheduled at all.
    assert!(eventually(Duration::from_secs(30), || sleeps_in(reader_pid).contains("poll")));
    signal(reader_pid, "-STOP");

    let mut writer = Process::spawn(measured_sender, (sender, n_bytes)).unwrap();
    // The writer fills the ring and waits on a futex, far longer than its 5 ms of patience.
    assert!(eventually(Duration::from_secs(30), || sleeps_in(writer.pid()).contains("futex")));
    std::thread::sleep(Duration::from_millis(100));
    signal(reader_pid, "-CONT");

    let (added, sent_checksum) = writer.join().unwrap();
    assert_eq!(reader.join().unwrap(), (n_bytes, sent_checksum));
    let budget = n_bytes as u64 * 5 / 4;
    assert!(
        added <= budget,
        "the sender's peak grew by {added} B for a {n_bytes} B message (budget {budget} B): \
         it copied the message aside although the receiver was inside recv"
    );
}
