//! `cargo xtask watch`, as a student runs it: in a fresh handout (`cargo xtask handout DIR`),
//! with `--once` and driven through its standard input.
//!
//! The tests take turns with one handout, target/tmp/watch/handout, refreshed file by file (a
//! file whose contents did not change keeps its modification time), and one target directory
//! of its own: after the first run only what changed is built again. (Not a target directory
//! shared with another copy of the course: artifacts of files at the same place in two copies
//! count as one, so the older copy's files would look built when they are not, and the xtask
//! binary names the copy it was built from as its root.)

use std::{
    io::{Read, Write},
    os::unix::process::CommandExt,
    path::{Path, PathBuf},
    process::{Child, Command, Stdio},
    sync::{Arc, Mutex, MutexGuard},
    time::{Duration, Instant},
};

/// Long enough for a cold build of the handout on a loaded 2-core machine.
const LIMIT: Duration = Duration::from_secs(1200);

fn workspace_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).parent().unwrap().to_path_buf()
}

fn base() -> PathBuf {
    Path::new(env!("CARGO_TARGET_TMPDIR")).join("watch")
}

/// One test at a time: they share the handout.
static HANDOUT: Mutex<()> = Mutex::new(());

/// A handout of this repository in target/tmp/watch/handout, as `cargo xtask handout` writes
/// it, for this test alone while the guard lives.
fn handout() -> (PathBuf, MutexGuard<'static, ()>) {
    let guard = HANDOUT.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
    let fresh = base().join("handout.new");
    let dir = base().join("handout");
    let _ = std::fs::remove_dir_all(&fresh);
    std::fs::create_dir_all(base()).unwrap();
    let output = Command::new(env!("CARGO_BIN_EXE_xtask"))
        .arg("handout")
        .arg(&fresh)
        .stdin(Stdio::null())
        .output()
        .unwrap();
    assert!(output.status.success(), "handout: {}", String::from_utf8_lossy(&output.stderr));
    sync(&fresh, &dir);
    std::fs::remove_dir_all(&fresh).unwrap();
    (dir, guard)
}

/// Makes `to` hold what `from` holds (but `target/`), rewriting only the files that differ.
fn sync(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).unwrap();
    for entry in std::fs::read_dir(to).unwrap() {
        let entry = entry.unwrap();
        let name = entry.file_name();
        if name != "target" && !from.join(&name).exists() {
            let path = entry.path();
            if entry.file_type().unwrap().is_dir() {
                std::fs::remove_dir_all(path).unwrap();
            } else {
                std::fs::remove_file(path).unwrap();
            }
        }
    }
    for entry in std::fs::read_dir(from).unwrap() {
        let entry = entry.unwrap();
        let target = to.join(entry.file_name());
        if entry.file_type().unwrap().is_dir() {
            if target.is_file() {
                std::fs::remove_file(&target).unwrap();
            }
            sync(&entry.path(), &target);
        } else {
            let new = std::fs::read(entry.path()).unwrap();
            if std::fs::read(&target).ok().as_ref() != Some(&new) {
                if target.is_dir() {
                    std::fs::remove_dir_all(&target).unwrap();
                }
                std::fs::write(&target, new).unwrap();
            }
        }
    }
}

/// The reference solution of exercise 1, as the student's `src/lib.rs`.
fn solve_exercise_1(handout: &Path) {
    let solution =
        std::fs::read_to_string(workspace_root().join("solutions/solution-1/src/lib.rs")).unwrap();
    let solution =
        solution.replace("#[path = \"../../../exercises/exercise-1/src/given.rs\"]\n", "");
    assert!(!solution.contains("#[path"), "solution-1 includes given.rs another way now");
    write_if_changed(&handout.join("exercises/exercise-1/src/lib.rs"), &solution);
}

fn write_if_changed(path: &Path, text: &str) {
    if std::fs::read_to_string(path).ok().as_deref() != Some(text) {
        std::fs::write(path, text).unwrap();
    }
}

/// `cargo xtask watch ARGS` in `handout`, as the README says, in its own process group.
fn watch(handout: &Path, args: &[&str]) -> Command {
    let mut command = Command::new(std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into()));
    command
        .args(["xtask", "watch"])
        .args(args)
        .current_dir(handout)
        .env("CARGO_TARGET_DIR", base().join("target"))
        .env_remove("XTASK_WATCH_POLL")
        .process_group(0);
    command
}

/// Output read by a thread as it comes.
#[derive(Clone, Default)]
struct Output(Arc<Mutex<String>>);

impl Output {
    fn collect(mut pipe: impl Read + Send + 'static) -> Output {
        let output = Output::default();
        let shared = output.clone();
        std::thread::spawn(move || {
            let mut buffer = [0u8; 4096];
            while let Ok(n) = pipe.read(&mut buffer) {
                if n == 0 {
                    break;
                }
                shared.0.lock().unwrap().push_str(&String::from_utf8_lossy(&buffer[..n]));
            }
        });
        output
    }

    fn text(&self) -> String {
        self.0.lock().unwrap().clone()
    }
}

/// A running `watch`, killed with its process group if the test ends early (a failure).
struct Watched {
    child: Child,
    stdout: Output,
    stderr: Output,
    started: Instant,
}

impl Watched {
    fn start(mut command: Command) -> Watched {
        let mut child = command
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        let stdout = Output::collect(child.stdout.take().unwrap());
        let stderr = Output::collect(child.stderr.take().unwrap());
        Watched { child, stdout, stderr, started: Instant::now() }
    }

    /// Waits until stdout has `count` occurrences of `text`; fails the test past the limit or
    /// when `watch` ends first.
    fn wait_for(&mut self, text: &str, count: usize) -> String {
        loop {
            let out = self.stdout.text();
            if out.matches(text).count() >= count {
                return out;
            }
            let ended = self.child.try_wait().unwrap();
            assert!(
                ended.is_none() && self.started.elapsed() < LIMIT,
                "waited for {text:?} (x{count}); watch {}:\n{out}\n--- stderr\n{}",
                if ended.is_some() { "ended" } else { "ran over the limit" },
                self.stderr.text()
            );
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    fn type_line(&mut self, line: &str) {
        let stdin = self.child.stdin.as_mut().unwrap();
        stdin.write_all(format!("{line}\n").as_bytes()).unwrap();
        stdin.flush().unwrap();
    }

    /// Waits for the end (under the limit; standard input stays open) and returns the exit
    /// code and stdout.
    fn finish(mut self) -> (Option<i32>, String) {
        let status = loop {
            if let Some(status) = self.child.try_wait().unwrap() {
                break status;
            }
            assert!(
                self.started.elapsed() < LIMIT,
                "watch ran over {LIMIT:?}:\n{}\n--- stderr\n{}",
                self.stdout.text(),
                self.stderr.text()
            );
            std::thread::sleep(Duration::from_millis(50));
        };
        // The pipes close once nothing holds them any more.
        let closed = Instant::now();
        while closed.elapsed() < Duration::from_secs(5) && Arc::strong_count(&self.stdout.0) > 1 {
            std::thread::sleep(Duration::from_millis(20));
        }
        (status.code(), self.stdout.text())
    }
}

impl Drop for Watched {
    fn drop(&mut self) {
        if self.child.try_wait().ok().flatten().is_none() {
            let _ = Command::new("kill")
                .args(["-KILL", "--", &format!("-{}", self.child.id())])
                .status();
            let _ = self.child.wait();
        }
    }
}

/// Processes (not zombies) whose working directory is inside `dir`: cargo, the tests and
/// their workers all run in the handout.
fn processes_in(dir: &Path) -> Vec<String> {
    std::fs::read_dir("/proc")
        .unwrap()
        .flatten()
        .filter_map(|entry| entry.file_name().into_string().ok())
        .filter(|pid| pid.bytes().all(|b| b.is_ascii_digit()))
        .filter(|pid| {
            std::fs::read_link(format!("/proc/{pid}/cwd")).is_ok_and(|d| d.starts_with(dir))
        })
        .filter(|pid| {
            std::fs::read_to_string(format!("/proc/{pid}/stat")).is_ok_and(|stat| {
                !stat.rsplit(')').next().unwrap_or("").trim_start().starts_with('Z')
            })
        })
        .map(|pid| {
            let cmdline = std::fs::read(format!("/proc/{pid}/cmdline")).unwrap_or_default();
            format!("{pid}: {}", String::from_utf8_lossy(&cmdline).replace('\0', " "))
        })
        .collect()
}

/// Killed processes take a moment to go: nothing may be left once they had it.
fn assert_nothing_left(dir: &Path) {
    let since = Instant::now();
    let mut left = processes_in(dir);
    while !left.is_empty() && since.elapsed() < Duration::from_secs(10) {
        std::thread::sleep(Duration::from_millis(100));
        left = processes_in(dir);
    }
    assert!(left.is_empty(), "left running: {left:?}");
}

fn first_hint_title(handout: &Path) -> String {
    let readme = std::fs::read_to_string(handout.join("exercises/exercise-1/README.md")).unwrap();
    let summary = readme.split("<summary>").nth(1).expect("exercise 1 has <details> hints");
    let summary = summary.split("</summary>").next().unwrap();
    summary.split_once(": ").map(|(_, title)| title).unwrap_or(summary).to_string()
}

#[test]
fn a_fresh_handout_shows_the_first_failure_and_a_hint_and_ends_on_ctrl_c() {
    let (dir, _turn) = handout();
    let watched = Watched::start(watch(&dir, &["--once"]));
    let (code, out) = watched.finish();
    assert_eq!(code, Some(1), "{out}");
    for expected in [
        "== exercise-1: ",
        "\n0 of ",
        "graded tests pass:\n  FAIL  ",
        // The first test of the file, whatever order the tests ended in.
        "First failure: serial_returns_hard_work_of_every_item_in_order\n",
        "  panicked at exercises/exercise-1/src/lib.rs:",
        "not yet implemented",
        "Hint 1 of ",
        &first_hint_title(&dir),
        "Next: fix exercises/exercise-1/src/lib.rs",
    ] {
        assert!(out.contains(expected), "{expected:?} is missing:\n{out}");
    }
    // No build noise, no backtrace.
    for noise in ["Compiling", "stack backtrace", "{\"reason\""] {
        assert!(!out.contains(noise), "{noise:?} in:\n{out}");
    }
    assert_nothing_left(&dir);
    // Ctrl-C while the tests run (or just after): exit code 130, and nothing is left.
    let mut watched = Watched::start(watch(&dir, &[]));
    watched.wait_for("Running the graded tests of exercise-1", 1);
    let status =
        Command::new("kill").args(["-INT", &watched.child.id().to_string()]).status().unwrap();
    assert!(status.success());
    let (code, out) = watched.finish();
    assert_eq!(code, Some(130), "{out}");
    assert!(out.contains("Stopped (Ctrl-C)."), "{out}");
    assert_nothing_left(&dir);
}

#[test]
fn once_moves_on_from_a_solved_exercise_to_the_next() {
    let (dir, _turn) = handout();
    solve_exercise_1(&dir);
    let watched = Watched::start(watch(&dir, &["--once"]));
    let (code, out) = watched.finish();
    assert_eq!(code, Some(1), "exercise 2 is not solved:\n{out}");
    assert!(out.contains("exercise-1 passes: all "), "{out}");
    let after = out.split("exercise-1 passes").nth(1).unwrap();
    assert!(after.contains("Running the graded tests of exercise-2"), "{out}");
    assert!(after.contains("== exercise-2: ") && after.contains("First failure: "), "{out}");
    assert!(!after.contains("== exercise-1"), "{out}");
    // Named, and solved: it passes, and names the next one.
    let watched = Watched::start(watch(&dir, &["--once", "1"]));
    let (code, out) = watched.finish();
    assert_eq!(code, Some(0), "{out}");
    assert!(out.contains("exercise-1 passes") && out.contains("Next: exercise-2"), "{out}");
    assert_nothing_left(&dir);
}

#[test]
fn watch_reruns_on_save_gives_hints_moves_on_and_quits_on_q() {
    let (dir, _turn) = handout();
    let lib = dir.join("exercises/exercise-1/src/lib.rs");
    let unsolved = std::fs::read_to_string(&lib).unwrap();
    let mut watched = Watched::start(watch(&dir, &[]));
    watched.wait_for("First failure: ", 1);
    watched.type_line("h");
    watched.wait_for("Hint 1 of ", 1);
    watched.type_line("h");
    watched.wait_for("Hint 2 of ", 1);
    // A save that breaks the build: the compiler's error, pointing at the student's file.
    std::fs::write(&lib, format!("{unsolved}\npub fn broken() -> u32 {{\n    \"text\"\n}}\n"))
        .unwrap();
    let out = watched.wait_for("does not compile", 1);
    let report = out.rsplit("does not compile").next().unwrap();
    assert!(report.contains("exercises/exercise-1/src/lib.rs:"), "{out}");
    assert!(report.contains("mismatched types"), "{out}");
    // Solved: it says so and goes on with exercise 2 (its tests then start).
    solve_exercise_1(&dir);
    watched.wait_for("exercise-1 passes: all ", 1);
    watched.wait_for("Running the graded tests of exercise-2", 1);
    // `q` while exercise 2's tests build or run: they are stopped, nothing is left.
    watched.type_line("q");
    let (code, out) = watched.finish();
    assert_eq!(code, Some(0), "{out}");
    assert!(out.contains("Bye."), "{out}");
    assert_nothing_left(&dir);
}
