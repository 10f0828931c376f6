//! What every task needs: where the project is, which exercises it has, and a way to run a
//! command under a wall-clock limit that leaves no process behind.

use std::{
    io::Read,
    path::{Path, PathBuf},
    process::{Command, Stdio},
    sync::atomic::{AtomicU64, Ordering},
    time::{Duration, Instant},
};

pub type Result<T> = std::result::Result<T, Box<dyn std::error::Error>>;

/// The workspace root: the parent of this crate's directory.
pub fn project_root() -> PathBuf {
    let manifest_dir = PathBuf::from(env!("CARGO_MANIFEST_DIR"));
    manifest_dir.parent().map(Path::to_path_buf).unwrap_or(manifest_dir)
}

/// One exercise of the course: `exercises/exercise-N`, and its solution if this repository
/// has one.
#[derive(Debug, Clone)]
pub struct Exercise {
    pub number: u32,
    /// The package name, `exercise-N`.
    pub name: String,
    pub dir: PathBuf,
    /// `solutions/solution-N`, when it exists (not in a student's repository).
    pub solution_dir: Option<PathBuf>,
}

impl Exercise {
    /// The package name of the solution, `solution-N`.
    pub fn solution_name(&self) -> String {
        format!("solution-{}", self.number)
    }
}

/// The exercises under `root/exercises`, in numeric order (exercise-10 after exercise-9).
pub fn exercises(root: &Path) -> Result<Vec<Exercise>> {
    let dir = root.join("exercises");
    let entries = std::fs::read_dir(&dir)
        .map_err(|e| format!("cannot read the exercises in {}: {e}", dir.display()))?;
    let mut found = Vec::new();
    for entry in entries {
        let path = entry?.path();
        let Some(name) = path.file_name().and_then(|n| n.to_str()).map(str::to_string) else {
            continue;
        };
        let Some(number) = name.strip_prefix("exercise-").and_then(|n| n.parse::<u32>().ok())
        else {
            continue;
        };
        if !path.join("Cargo.toml").is_file() {
            continue;
        }
        let solution = root.join("solutions").join(format!("solution-{number}"));
        let solution_dir = solution.join("Cargo.toml").is_file().then_some(solution);
        found.push(Exercise { number, name, dir: path, solution_dir });
    }
    found.sort_by_key(|exercise| exercise.number);
    Ok(found)
}

/// `cargo`, as the one that runs this xtask (so toolchain overrides carry over).
pub fn cargo(root: &Path) -> Command {
    let mut command = Command::new(std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into()));
    command.current_dir(root);
    command
}

/// What a limited run produced.
#[derive(Debug)]
pub struct Outcome {
    /// The exit code; `None` when it was killed (by a signal or by the time limit).
    pub code: Option<i32>,
    /// The signal that ended it, when one did (`SIGKILL` after a time-out).
    pub signal: Option<i32>,
    pub timed_out: bool,
    pub stdout: String,
    pub stderr: String,
    /// True when the output was longer than the cap and was cut.
    pub truncated: bool,
    /// Processes it started that were still alive afterwards (and were killed).
    pub leftovers: usize,
    pub elapsed: Duration,
}

impl Outcome {
    pub fn success(&self) -> bool {
        self.code == Some(0) && !self.timed_out
    }
}

/// Limits for [`run_limited`].
#[derive(Debug, Clone, Copy)]
pub struct Limits {
    pub wall_clock: Duration,
    /// Bytes kept of each of stdout and stderr; the rest is read and dropped.
    pub output_cap: usize,
}

/// Runs `command` in a new process group under `limits`: on time-out the whole group is
/// killed; afterwards every process that carries this run's marker in its environment (the
/// ones that left the group too) is killed. Output beyond the cap is dropped, not buffered,
/// except for its last quarter-cap bytes (where test harnesses and compilers put verdicts).
pub fn run_limited(mut command: Command, limits: Limits) -> Result<Outcome> {
    use std::os::unix::process::CommandExt;

    static RUNS: AtomicU64 = AtomicU64::new(0);
    let marker = format!("{}-{}", std::process::id(), RUNS.fetch_add(1, Ordering::Relaxed));
    command
        .env(RUN_MARKER, &marker)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .process_group(0);
    let started = Instant::now();
    let mut child = command.spawn()?;
    let group = child.id() as i32;
    let stdout = read_capped(child.stdout.take(), limits.output_cap);
    let stderr = read_capped(child.stderr.take(), limits.output_cap);
    let mut timed_out = false;
    let (status, leftovers) = loop {
        if let Some(status) = child.try_wait()? {
            // Everything still alive once the command ended is left over, in its group or not.
            break (status, marked_processes(&marker).len());
        }
        if started.elapsed() > limits.wall_clock {
            timed_out = true;
            // Counted before anything is killed, so that a process that is dying is never
            // mistaken for one that lives on: the group is the run itself and goes with the
            // time-out; what left the group was left over.
            let escaped =
                marked_processes(&marker).iter().filter(|process| process.group != group).count();
            kill_group(group);
            break (child.wait()?, escaped);
        }
        std::thread::sleep(Duration::from_millis(20));
    };
    kill_group(group);
    kill_marked(&marker);
    let (stdout, stdout_cut) = stdout.join().unwrap_or_default();
    let (stderr, stderr_cut) = stderr.join().unwrap_or_default();
    Ok(Outcome {
        code: status.code(),
        signal: std::os::unix::process::ExitStatusExt::signal(&status),
        timed_out,
        stdout,
        stderr,
        truncated: stdout_cut || stderr_cut,
        leftovers,
        elapsed: started.elapsed(),
    })
}

/// The environment variable that marks every process of one limited run.
const RUN_MARKER: &str = "COURSE_XTASK_RUN";

fn read_capped(
    pipe: Option<impl Read + Send + 'static>,
    cap: usize,
) -> std::thread::JoinHandle<(String, bool)> {
    std::thread::spawn(move || {
        let Some(mut pipe) = pipe else { return (String::new(), false) };
        // The first three quarters of the cap from the start, the last quarter from the end.
        let tail_cap = cap / 4;
        let head_cap = cap - tail_cap;
        let mut head = Vec::new();
        let mut tail = std::collections::VecDeque::new();
        let mut dropped = 0usize;
        let mut buffer = [0u8; 64 * 1024];
        loop {
            match pipe.read(&mut buffer) {
                Ok(0) | Err(_) => break,
                Ok(n) => {
                    let room = head_cap.saturating_sub(head.len());
                    head.extend_from_slice(&buffer[..n.min(room)]);
                    tail.extend(&buffer[n.min(room)..n]);
                    if tail.len() > tail_cap {
                        let excess = tail.len() - tail_cap;
                        tail.drain(..excess);
                        dropped += excess;
                    }
                }
            }
        }
        let mut text = String::from_utf8_lossy(&head).into_owned();
        if dropped > 0 {
            text.push_str(&format!(
                "\n[output cut here: it was too long; {dropped} bytes were dropped]\n"
            ));
        }
        text.push_str(&String::from_utf8_lossy(tail.make_contiguous()));
        (text, dropped > 0)
    })
}

fn kill_group(group: i32) {
    // `kill -KILL -<pgid>`: no unsafe code, and the group may well be gone already.
    let _ = Command::new("kill")
        .args(["-KILL", "--", &format!("-{group}")])
        .stderr(Stdio::null())
        .status();
}

/// A live process of one limited run.
struct Marked {
    pid: String,
    group: i32,
}

/// The processes that carry `marker` in their environment and have not exited (zombies are
/// dead and only wait to be reaped).
fn marked_processes(marker: &str) -> Vec<Marked> {
    let needle = format!("{RUN_MARKER}={marker}\0");
    std::fs::read_dir("/proc")
        .into_iter()
        .flatten()
        .flatten()
        .filter_map(|entry| entry.file_name().into_string().ok())
        .filter(|name| name.bytes().all(|b| b.is_ascii_digit()))
        .filter(|pid| {
            std::fs::read(format!("/proc/{pid}/environ"))
                .map(|environ| contains(&environ, needle.as_bytes()))
                .unwrap_or(false)
        })
        .filter_map(|pid| {
            let (state, group) = state_and_group(&pid)?;
            (state != 'Z').then_some(Marked { pid, group })
        })
        .collect()
}

/// Kills every process whose environment carries `marker`, until none is left.
fn kill_marked(marker: &str) {
    for _round in 0..5 {
        let pids: Vec<String> =
            marked_processes(marker).into_iter().map(|process| process.pid).collect();
        if pids.is_empty() {
            break;
        }
        let _ = Command::new("kill").arg("-KILL").args(&pids).stderr(Stdio::null()).status();
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// A process's state letter and process group, from `/proc/PID/stat` (fields 3 and 5).
fn state_and_group(pid: &str) -> Option<(char, i32)> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    let mut fields = stat[stat.rfind(')')? + 1..].split_whitespace();
    let state = fields.next()?.chars().next()?;
    let group = fields.nth(1)?.parse().ok()?;
    Some((state, group))
}

fn contains(haystack: &[u8], needle: &[u8]) -> bool {
    haystack.windows(needle.len()).any(|window| window == needle)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn exercises_sort_numerically() {
        let root = std::env::temp_dir().join(format!("xtask-sort-{}", std::process::id()));
        for n in [10, 2, 1] {
            let dir = root.join("exercises").join(format!("exercise-{n}"));
            std::fs::create_dir_all(&dir).unwrap();
            std::fs::write(dir.join("Cargo.toml"), "").unwrap();
        }
        std::fs::create_dir_all(root.join("exercises/notes")).unwrap();
        let numbers: Vec<u32> = exercises(&root).unwrap().iter().map(|e| e.number).collect();
        assert_eq!(numbers, [1, 2, 10]);
        std::fs::remove_dir_all(&root).unwrap();
    }

    #[test]
    fn a_run_over_its_limit_is_killed_with_everything_it_started() {
        let mut command = Command::new("sh");
        // A child that leaves the process group, and a parent that never ends.
        command.args(["-c", "setsid sleep 300 & echo started; sleep 300"]);
        let limits = Limits { wall_clock: Duration::from_millis(500), output_cap: 1024 };
        let outcome = run_limited(command, limits).unwrap();
        assert!(outcome.timed_out && !outcome.success());
        assert_eq!(outcome.stdout.trim(), "started");
        assert_eq!(outcome.leftovers, 1, "the setsid sleep escaped the group: {outcome:?}");
    }

    #[test]
    fn output_beyond_the_cap_is_dropped_and_marked() {
        let mut command = Command::new("sh");
        command.args(["-c", "yes | head -c 1000000; exit 3"]);
        let limits = Limits { wall_clock: Duration::from_secs(30), output_cap: 100 };
        let outcome = run_limited(command, limits).unwrap();
        assert_eq!(outcome.code, Some(3));
        assert!(outcome.truncated);
        assert!(outcome.stdout.len() < 200);
    }
}
