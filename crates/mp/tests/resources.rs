//! Descriptors and zombies over many operations. Alone in its binary, so that no other test
//! opens descriptors or starts processes meanwhile.

mod common;

use std::time::Duration;

use common::{open_fds, watchdog, zombie_children};
use mp::{Pool, Process};

mp::test_support!();

fn square(x: u64) -> u64 {
    x * x
}

fn echo_once(connection: mp::Connection<u64>) {
    let bytes = connection.recv_bytes().unwrap();
    connection.send_bytes(&bytes).unwrap();
}

#[test]
fn descriptors_stay_flat_and_no_zombies_remain() {
    let _guard = watchdog(Duration::from_secs(120));
    let pool = Pool::new(2).unwrap();
    assert_eq!(pool.map(square, 0..10u64).unwrap().len(), 10);
    // Every worker launched (the launcher thread has opened all their connections).
    assert_eq!(pool.pids().len(), 2);
    let before = open_fds();
    for round in 0..1000u64 {
        assert_eq!(pool.map(square, round..round + 8).unwrap()[0], round * round);
    }
    let (a, b) = mp::pipe::<u64>().unwrap();
    a.send(&1).unwrap();
    assert_eq!(b.recv().unwrap(), 1);
    drop((a, b));
    assert_eq!(open_fds(), before, "1000 maps must not leak descriptors");
    // Pipes with shared memory, used here and in another process, ends sent on as messages.
    for round in 0..100u64 {
        let (here, there) = mp::pipe::<u64>().unwrap();
        let (tx, rx) = mp::pipe_simplex::<mp::Connection<u64>>().unwrap();
        tx.send(&there).unwrap();
        drop(there);
        let there = rx.recv().unwrap();
        here.send(&round).unwrap();
        assert_eq!(there.recv().unwrap(), round);
        if round % 10 == 0 {
            let mut echo = Process::spawn(echo_once, there).unwrap();
            here.send_bytes(&vec![1u8; 3 << 20]).unwrap();
            assert_eq!(here.recv_bytes().unwrap().len(), 3 << 20);
            echo.join().unwrap();
        }
    }
    assert_eq!(open_fds(), before, "pipes must close every descriptor");
    drop(pool);
    for round in 0..50u64 {
        let mut process = Process::spawn(square, round).unwrap();
        assert_eq!(process.join().unwrap(), round * round);
    }
    assert!(open_fds() <= before, "pools and processes must close every descriptor");
    assert_eq!(zombie_children(), Vec::<u32>::new());
}
