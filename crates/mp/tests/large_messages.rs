//! Messages of 1 GiB through a pipe to another process. Alone in its binary: it needs memory.

mod common;

use std::time::Duration;

use common::watchdog;
use mp::{Process, Receiver};

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
    let _guard = watchdog("a_one_gib_message_arrives_whole", Duration::from_secs(300));
    let n_bytes = (1usize << 30) + 7;
    let message: Vec<u8> = (0..n_bytes).map(|index| (index % 253) as u8).collect();
    let expected = checksum(&message);
    let (sender, receiver) = mp::pipe_simplex::<()>().unwrap();
    let mut child = Process::spawn(length_and_checksum, receiver).unwrap();
    sender.send_bytes(&message).unwrap();
    assert_eq!(child.join().unwrap(), (n_bytes, expected));
}
