//! Helpers shared by the integration tests: mp's watchdog, so a hang fails fast, and /proc
//! checks.
#![allow(dead_code)]

use std::time::{Duration, Instant};

pub use mp::testing::watchdog;

/// The state letter and parent pid of a process, from /proc (None if there is no such process).
pub fn proc_state(pid: u32) -> Option<(char, u32)> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    let after_name = &stat[stat.rfind(')')? + 2..];
    let mut fields = after_name.split_whitespace();
    let state = fields.next()?.chars().next()?;
    let parent = fields.next()?.parse().ok()?;
    Some((state, parent))
}

/// True while `pid` is a live (non-zombie) process.
pub fn is_running(pid: u32) -> bool {
    matches!(proc_state(pid), Some((state, _)) if state != 'Z')
}

/// True once `pid` is neither running nor an unreaped zombie child of this process.
pub fn is_gone_and_reaped(pid: u32) -> bool {
    match proc_state(pid) {
        None => true,
        Some((_, parent)) => parent != std::process::id(),
    }
}

/// Polls `condition` until it holds or `limit` passes.
pub fn eventually(limit: Duration, mut condition: impl FnMut() -> bool) -> bool {
    let deadline = Instant::now() + limit;
    while Instant::now() < deadline {
        if condition() {
            return true;
        }
        std::thread::sleep(Duration::from_millis(10));
    }
    condition()
}

/// Children of this process that are zombies (exited, never reaped).
pub fn zombie_children() -> Vec<u32> {
    let me = std::process::id();
    std::fs::read_dir("/proc")
        .unwrap()
        .filter_map(|entry| entry.ok()?.file_name().to_str()?.parse::<u32>().ok())
        .filter(|&pid| matches!(proc_state(pid), Some(('Z', parent)) if parent == me))
        .collect()
}

/// The number of open descriptors of this process.
pub fn open_fds() -> usize {
    std::fs::read_dir("/proc/self/fd").unwrap().count()
}
