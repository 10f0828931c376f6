//! `--load N`: N busy processes at normal priority, started for the loaded part of a run and
//! stopped when it ends, on every path.
//!
//! Each busy process is a copy of this executable started with [`BUSY_FLAG`]: it spins on
//! its CPU and holds the read end of a pipe whose write end only this process has. A busy
//! process ends when that pipe reaches its end, which happens when [`Load`] is dropped (after
//! an error or a panic too) and when this process dies in any way (Ctrl-C, a kill, an abort):
//! the kernel closes the write end. [`Load`]'s drop also kills and reaps each one, so none is
//! left running or as a zombie. The busy processes stay in the bench's process group, so a
//! Ctrl-C at the terminal reaches them as well.

use std::{
    io::Read,
    path::Path,
    process::{Child, ChildStdin, Command, Stdio},
};

/// The hidden first argument that turns this executable into a busy process.
pub const BUSY_FLAG: &str = "--busy-loop";
/// The largest `--load`.
pub const MAX_LOAD: usize = 64;

/// Spins on the CPU until standard input reaches its end (the parent closed it or died),
/// then exits. Never returns.
pub fn busy_loop() -> ! {
    std::thread::spawn(|| {
        let mut sink = [0u8; 64];
        // Returns 0 (end of file) or an error once the parent's end is closed.
        while matches!(std::io::stdin().read(&mut sink), Ok(n) if n > 0) {}
        std::process::exit(0);
    });
    let mut x = 0u64;
    loop {
        x = std::hint::black_box(x.wrapping_mul(6364136223846793005).wrapping_add(1));
    }
}

/// The running busy processes.
#[derive(Debug)]
pub struct Load {
    children: Vec<(Child, Option<ChildStdin>)>,
}

impl Load {
    /// Starts `n` busy copies of this executable.
    pub fn start(n: usize) -> Result<Load, String> {
        let exe = std::env::current_exe()
            .map_err(|error| format!("finding this program to start the load: {error}"))?;
        Load::start_with(&exe, &[BUSY_FLAG], &[], n)
    }

    /// Starts `n` copies of `program args` (with the environment `env` added), each of which
    /// must run [`busy_loop`]. On an error the ones started so far are stopped.
    pub fn start_with(
        program: &Path,
        args: &[&str],
        env: &[(&str, &str)],
        n: usize,
    ) -> Result<Load, String> {
        let mut load = Load { children: Vec::with_capacity(n) };
        for _ in 0..n {
            let mut command = Command::new(program);
            command
                .args(args)
                .envs(env.iter().copied())
                .stdin(Stdio::piped())
                .stdout(Stdio::null())
                .stderr(Stdio::null());
            let mut child = command.spawn().map_err(|error| {
                format!("starting a busy process ({}): {error}", program.display())
            })?;
            let stdin = child.stdin.take();
            load.children.push((child, stdin));
        }
        Ok(load)
    }

    /// The process ids of the busy processes.
    pub fn pids(&self) -> Vec<u32> {
        self.children.iter().map(|(child, _)| child.id()).collect()
    }

    /// Stops every busy process and reaps it.
    pub fn stop(mut self) {
        self.stop_all();
    }

    fn stop_all(&mut self) {
        for (child, stdin) in &mut self.children {
            drop(stdin.take());
            let _ = child.kill();
        }
        for (child, _) in &mut self.children {
            let _ = child.wait();
        }
        self.children.clear();
    }
}

impl Drop for Load {
    fn drop(&mut self) {
        self.stop_all();
    }
}

/// Checks a `--load` value: a number of busy processes from 0 to [`MAX_LOAD`].
pub fn parse_load(text: &str) -> Result<usize, String> {
    match text.parse::<usize>() {
        Ok(n) if n <= MAX_LOAD => Ok(n),
        _ => Err(format!(
            "--load takes a number of busy processes from 0 to {MAX_LOAD}, not `{text}`"
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::{Duration, Instant};

    const CHILD_ENV: &str = "MP_BENCH_BUSY_CHILD";

    /// The busy process of these tests: this test binary, started with `--exact` on this test
    /// and the variable set. Without it (the normal test run) it does nothing.
    #[test]
    fn busy_child_entry() {
        if std::env::var_os(CHILD_ENV).is_some() {
            busy_loop();
        }
    }

    fn start(n: usize) -> Load {
        let exe = std::env::current_exe().unwrap();
        Load::start_with(
            &exe,
            &["--exact", "load::tests::busy_child_entry", "--nocapture"],
            &[(CHILD_ENV, "1")],
            n,
        )
        .unwrap()
    }

    /// The process's state letter from /proc, or None once it is gone (reaped).
    fn state(pid: u32) -> Option<char> {
        let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
        stat[stat.rfind(')')? + 2..].chars().next()
    }

    /// Waits (under the watchdog) until `done` holds, looking every 10 ms.
    fn eventually(what: &str, limit: Duration, mut done: impl FnMut() -> bool) {
        let started = Instant::now();
        while !done() {
            assert!(started.elapsed() < limit, "{what} after {limit:?}");
            std::thread::sleep(Duration::from_millis(10));
        }
    }

    #[test]
    fn busy_processes_run_and_are_reaped_when_stopped_or_dropped() {
        let _guard = mp::testing::watchdog(Duration::from_secs(60));
        let load = start(2);
        let pids = load.pids();
        assert_eq!(pids.len(), 2);
        for &pid in &pids {
            assert!(matches!(state(pid), Some('R' | 'S' | 'D')), "{pid}: {:?}", state(pid));
        }
        load.stop();
        for &pid in &pids {
            assert_eq!(state(pid), None, "busy process {pid} is left after stop");
        }
        // Dropped on an error path (here: a panic unwinding through the frame that holds it).
        let pids = std::panic::catch_unwind(|| {
            let load = start(1);
            let pids = load.pids();
            assert!(state(pids[0]).is_some());
            std::panic::panic_any(pids);
        })
        .unwrap_err();
        let pids = pids.downcast::<Vec<u32>>().unwrap();
        assert_eq!(state(pids[0]), None, "busy process {} is left after a panic", pids[0]);
    }

    #[test]
    fn busy_processes_end_when_their_parent_dies_without_cleaning_up() {
        let _guard = mp::testing::watchdog(Duration::from_secs(60));
        let mut load = start(1);
        let pid = load.pids()[0];
        // What the kernel does when this process dies however it dies: its end of the pipe
        // closes. The busy process must end on its own (then it is a zombie until reaped).
        drop(load.children[0].1.take());
        eventually("the busy process still runs", Duration::from_secs(30), || {
            !matches!(state(pid), Some('R' | 'S' | 'D'))
        });
        load.stop();
        assert_eq!(state(pid), None);
    }

    #[test]
    fn load_values_are_checked() {
        assert_eq!(parse_load("0"), Ok(0));
        assert_eq!(parse_load("2"), Ok(2));
        assert_eq!(parse_load("64"), Ok(64));
        for bad in ["65", "-1", "two", "", "1.5"] {
            let error = parse_load(bad).unwrap_err();
            assert!(error.contains("from 0 to 64") && error.contains(bad), "{error}");
        }
    }

    #[test]
    fn starting_a_missing_program_fails_cleanly() {
        let error = Load::start_with(Path::new("/nonexistent/busy"), &[], &[], 2).unwrap_err();
        assert!(error.contains("/nonexistent/busy"), "{error}");
    }
}
