//! An idle pool sleeps: its busy-polling (workers and dispatcher) ends within microseconds of
//! the last message. Alone in its binary, so that the only pool thread here is this test's.

mod common;

use std::time::Duration;

use common::watchdog;
use mp::Pool;

mp::test_support!();

fn square(x: u64) -> u64 {
    x * x
}

/// CPU time (user + system) a process or thread has used, in clock ticks, from its stat file.
fn cpu_ticks(stat_path: &str) -> u64 {
    let stat = std::fs::read_to_string(stat_path).unwrap();
    let after_name = &stat[stat.rfind(')').unwrap() + 2..];
    let fields: Vec<&str> = after_name.split_whitespace().collect();
    // utime and stime are fields 14 and 15 of the stat line; 12 and 13 after the name.
    fields[11].parse::<u64>().unwrap() + fields[12].parse::<u64>().unwrap()
}

/// The stat files of the pool's dispatcher thread (in this process) and of its workers.
fn pool_stat_paths(pool: &Pool) -> Vec<String> {
    let mut paths: Vec<String> =
        pool.pids().iter().map(|pid| format!("/proc/{pid}/stat")).collect();
    for task in std::fs::read_dir("/proc/self/task").unwrap() {
        let task = task.unwrap().path();
        let name = std::fs::read_to_string(task.join("comm")).unwrap_or_default();
        if name.trim() == "mp-pool" {
            paths.push(task.join("stat").to_string_lossy().into_owned());
        }
    }
    paths
}

#[test]
fn busy_polling_stops_when_a_pool_is_idle() {
    let _guard = watchdog(Duration::from_secs(120));
    let pool = Pool::new(2).unwrap();
    assert_eq!(pool.map_chunked(square, 0..2000u64, 1).unwrap().len(), 2000);
    let paths = pool_stat_paths(&pool);
    assert_eq!(paths.len(), 3, "two workers and one dispatcher thread: {paths:?}");
    let before: Vec<u64> = paths.iter().map(|path| cpu_ticks(path)).collect();
    // One second idle: a process that kept spinning would use most of it (100 ticks).
    std::thread::sleep(Duration::from_secs(1));
    for (path, before) in paths.iter().zip(before) {
        let used = cpu_ticks(path) - before;
        assert!(used <= 10, "{path} used {used} ticks of CPU in 1 s while its pool was idle");
    }
}
