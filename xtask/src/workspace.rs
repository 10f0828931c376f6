//! What every task needs: where the project is, which exercises it has, and a way to run a
//! command under a wall-clock limit that leaves no process behind.

use std::{
    ffi::OsString,
    io::Read,
    path::{Path, PathBuf},
    process::{Command, ExitCode, Stdio},
    sync::{
        Arc, Mutex,
        atomic::{AtomicBool, AtomicU64, Ordering},
    },
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

/// A new directory under the system's temporary directory, `PREFIX-PID-RANDOM`, made by this
/// call and by nothing else: `create_dir` fails on anything already there (a directory, or a
/// symbolic link planted by another user of a shared `/tmp`), so a name taken is skipped, never
/// reused. Mode 755: the sandbox's user `nobody` runs binaries from it but cannot write there.
pub fn fresh_private_dir(prefix: &str) -> Result<PathBuf> {
    use std::{
        hash::{BuildHasher, Hasher},
        os::unix::fs::DirBuilderExt,
    };

    let mut last_error = None;
    for attempt in 0u64..16 {
        // Unpredictable: std seeds these hashers' keys from the OS's randomness.
        let mut hasher = std::collections::hash_map::RandomState::new().build_hasher();
        hasher.write_u64(attempt);
        let name = format!("{prefix}-{}-{:016x}", std::process::id(), hasher.finish());
        let dir = std::env::temp_dir().join(name);
        match std::fs::DirBuilder::new().mode(0o755).create(&dir) {
            Ok(()) => {
                // The mode passed to mkdir is cut by the umask: set it exactly.
                use std::os::unix::fs::PermissionsExt;
                std::fs::set_permissions(&dir, std::fs::Permissions::from_mode(0o755))
                    .map_err(|e| format!("cannot set the mode of {}: {e}", dir.display()))?;
                return Ok(dir);
            }
            Err(error) if error.kind() == std::io::ErrorKind::AlreadyExists => {
                last_error = Some(error);
            }
            Err(error) => return Err(format!("cannot create {}: {error}", dir.display()).into()),
        }
    }
    Err(format!(
        "cannot create a private directory in {}: every name tried was taken ({})",
        std::env::temp_dir().display(),
        last_error.map(|e| e.to_string()).unwrap_or_default()
    )
    .into())
}

/// What a limited run produced.
#[derive(Debug, Default)]
pub struct Outcome {
    /// The exit code; `None` when it was killed (by a signal or by the time limit).
    pub code: Option<i32>,
    /// The signal that ended it, when one did (`SIGKILL` after a time-out).
    pub signal: Option<i32>,
    pub timed_out: bool,
    /// True when it was stopped on request (see [`run_cancellable`]).
    pub cancelled: bool,
    pub stdout: String,
    pub stderr: String,
    /// True when the output was longer than the cap and was cut.
    pub truncated: bool,
    /// The `observed: ` lines of stdout (see the `judge` crate), read from the whole stream,
    /// even from the part of it that the cap dropped.
    pub observations: Vec<String>,
    /// Processes it started that were still running when it ended (and were killed), by
    /// name; only known in a sandbox with a PID namespace.
    pub leftovers: Vec<String>,
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

/// How long the output of a run that ended is still read: a process it left behind (outside
/// a sandbox) may keep its pipes open forever.
const DRAIN_LIMIT: Duration = Duration::from_secs(2);

/// Runs `command` (our own tools: cargo, never student code) in a new process group under
/// `limits`; on time-out the whole group is killed. Output beyond the cap is dropped, not
/// buffered, except for its last quarter-cap bytes (where compilers put verdicts).
pub fn run_limited(mut command: Command, limits: Limits) -> Result<Outcome> {
    use std::os::unix::process::CommandExt;

    command.stdin(Stdio::null()).process_group(0);
    let outcome = supervise(command, None, limits, None, Vec::new)?;
    Ok(outcome.0)
}

/// [`run_limited`], also ended (its whole process group killed, then waited for) as soon as
/// `cancel` becomes true: `cargo xtask watch` stops a test run on Ctrl-C, `q` or a new save.
pub fn run_cancellable(
    mut command: Command,
    limits: Limits,
    cancel: &AtomicBool,
) -> Result<Outcome> {
    use std::os::unix::process::CommandExt;

    command.stdin(Stdio::null()).process_group(0);
    let outcome = supervise(command, None, limits, Some(cancel), Vec::new)?;
    Ok(outcome.0)
}

/// A command that runs student code: program, arguments, working directory and the whole
/// environment (nothing of the grader's own environment is passed on).
#[derive(Debug, Clone)]
pub struct Confined {
    pub program: PathBuf,
    pub args: Vec<OsString>,
    pub dir: PathBuf,
    pub env: Vec<(String, OsString)>,
    /// Written to its stdin, which is then closed (empty when `None`).
    pub stdin: Option<Vec<u8>>,
}

/// Where student code runs.
#[derive(Debug)]
pub struct Sandbox {
    pub kind: SandboxKind,
    /// A private directory of the grader (reports, homes).
    dir: PathBuf,
    runs: AtomicU64,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SandboxKind {
    /// Root: a PID and mount namespace, the code as user `nobody` (65534).
    Namespace,
    /// Not root, but user namespaces work: a PID namespace, the code as the same user.
    UserNamespace,
    /// Neither: the grader is a child subreaper, so that whatever the code leaves (in a new
    /// session, double-forked) is adopted by the grader, which ends it after each run.
    ProcessGroup,
}

/// The user student code runs as, when the grader is root.
pub const SANDBOX_UID: u32 = 65534;

impl Sandbox {
    /// Picks the strongest sandbox this machine allows; `dir` must be private to the grader.
    pub fn probe(dir: &Path) -> Result<Sandbox> {
        let works = |args: &[&str]| {
            Command::new("unshare")
                .args(args)
                .args(["--pid", "--fork", "--kill-child", "--mount-proc", "true"])
                .stdin(Stdio::null())
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .status()
                .is_ok_and(|status| status.success())
        };
        // `XTASK_SANDBOX=process-group` (the grader's environment, never the tests') forces
        // the fallback, for the grader's own tests.
        let forced = std::env::var_os("XTASK_SANDBOX").is_some_and(|v| v == "process-group");
        let kind = if forced {
            SandboxKind::ProcessGroup
        } else if is_root() && works(&[]) {
            SandboxKind::Namespace
        } else if works(&["--user", "--map-root-user"]) {
            SandboxKind::UserNamespace
        } else {
            SandboxKind::ProcessGroup
        };
        Sandbox::with_kind(dir, kind)
    }

    fn with_kind(dir: &Path, kind: SandboxKind) -> Result<Sandbox> {
        if kind == SandboxKind::ProcessGroup && !reaper::become_subreaper() {
            return Err("cannot make the grader a child subreaper (prctl)".into());
        }
        for sub in ["reports", "homes"] {
            std::fs::create_dir_all(dir.join(sub))
                .map_err(|e| format!("cannot create {}: {e}", dir.join(sub).display()))?;
        }
        if kind != SandboxKind::ProcessGroup {
            // The namespace's first process is this very program, copied: the file it was
            // started from may be rebuilt while it runs (`cargo xtask check` builds xtask).
            let init = dir.join("sandbox-init");
            std::fs::copy("/proc/self/exe", &init)
                .map_err(|e| format!("cannot copy this program to {}: {e}", init.display()))?;
        }
        Ok(Sandbox { kind, dir: dir.to_path_buf(), runs: AtomicU64::new(0) })
    }

    /// One line for the results: what isolated the code under test.
    pub fn describe(&self) -> &'static str {
        match self.kind {
            SandboxKind::Namespace => "pid-namespace, user nobody",
            SandboxKind::UserNamespace => "pid-namespace, same user",
            SandboxKind::ProcessGroup => "process group, the grader as subreaper",
        }
    }

    /// Runs `what` under `limits` in the sandbox: when it ends (or is stopped), everything it
    /// started ends too (the namespace goes with its first process), and what was still
    /// running is reported by name.
    pub fn run(&self, what: &Confined, limits: Limits) -> Result<Outcome> {
        use std::os::unix::process::CommandExt;

        let n = self.runs.fetch_add(1, Ordering::Relaxed);
        let report = self.dir.join("reports").join(format!("{n}"));
        let home = self.dir.join("homes").join(format!("{n}"));
        std::fs::create_dir_all(&home)?;
        let mut command = match self.kind {
            SandboxKind::ProcessGroup => {
                let mut command = Command::new(&what.program);
                command.args(&what.args);
                command
            }
            kind => {
                let mut command = Command::new("unshare");
                if kind == SandboxKind::UserNamespace {
                    command.args(["--user", "--map-root-user"]);
                }
                command
                    .args(["--pid", "--fork", "--kill-child", "--mount-proc", "--"])
                    .arg(self.dir.join("sandbox-init"))
                    .arg("sandbox-init")
                    .arg("--report")
                    .arg(&report);
                if kind == SandboxKind::Namespace {
                    std::os::unix::fs::chown(&home, Some(SANDBOX_UID), Some(SANDBOX_UID))?;
                    command.arg("--uid").arg(SANDBOX_UID.to_string());
                }
                command.arg("--").arg(&what.program).args(&what.args);
                command
            }
        };
        // As `nobody`, a working directory under a home that others cannot enter (a CI runner's
        // checkout, say) would stop every test: the private home is the fallback.
        let dir = if self.kind != SandboxKind::Namespace || others_can_enter(&what.dir) {
            what.dir.as_path()
        } else {
            home.as_path()
        };
        command.current_dir(dir).env_clear().process_group(0);
        command.env("HOME", &home).env("TMPDIR", &home);
        for (key, value) in &what.env {
            command.env(key, value);
        }
        command.stdin(if what.stdin.is_some() { Stdio::piped() } else { Stdio::null() });
        let sweep = || match self.kind {
            SandboxKind::ProcessGroup => reaper::end_orphans(),
            _ => Vec::new(),
        };
        let (mut outcome, status) = supervise(command, what.stdin.clone(), limits, None, sweep)?;
        if self.kind != SandboxKind::ProcessGroup && !outcome.timed_out {
            // The report of the sandbox's first process: the code's own exit status (not
            // unshare's), and what was still running when it ended.
            match std::fs::read_to_string(&report) {
                Ok(text) => {
                    outcome.code = None;
                    outcome.signal = None;
                    for line in text.lines() {
                        match line.split_once(' ') {
                            Some(("code", code)) => outcome.code = code.parse().ok(),
                            Some(("signal", signal)) => outcome.signal = signal.parse().ok(),
                            Some(("leftover", name)) => outcome.leftovers.push(name.to_string()),
                            _ => {}
                        }
                    }
                }
                Err(e) => {
                    return Err(format!(
                        "the sandbox did not report ({e}); unshare exited with {status:?}:\n{}",
                        outcome.stderr
                    )
                    .into());
                }
            }
        }
        let _ = std::fs::remove_file(&report);
        let _ = std::fs::remove_dir_all(&home);
        Ok(outcome)
    }
}

/// `xtask sandbox-init`: the first process of a sandbox's PID namespace. Runs `program` (as
/// `uid` when given), waits for it, writes its exit status and the processes still running
/// to `report`, and exits, which ends every other process of the namespace.
pub fn sandbox_init(report: &Path, uid: Option<u32>, program: &[OsString]) -> ExitCode {
    use std::os::unix::process::{CommandExt, ExitStatusExt};

    let Some((first, rest)) = program.split_first() else { return ExitCode::from(2) };
    let mut command = Command::new(first);
    command.args(rest);
    if let Some(uid) = uid {
        command.uid(uid).gid(uid);
    }
    let mut text = String::new();
    match command.status() {
        Ok(status) => {
            if let Some(code) = status.code() {
                text.push_str(&format!("code {code}\n"));
            }
            if let Some(signal) = status.signal() {
                text.push_str(&format!("signal {signal}\n"));
            }
        }
        Err(e) => {
            eprintln!("cannot run {}: {e}", Path::new(first).display());
            text.push_str("code 127\n");
        }
    }
    let me = std::process::id().to_string();
    for pid in live_processes().into_iter().filter(|pid| *pid != me) {
        let name = std::fs::read_to_string(format!("/proc/{pid}/comm")).unwrap_or_default();
        text.push_str(&format!("leftover {}\n", name.trim()));
    }
    match std::fs::write(report, text) {
        Ok(()) => ExitCode::SUCCESS,
        Err(_) => ExitCode::from(2),
    }
}

/// Pids of the processes in /proc that are not zombies.
fn live_processes() -> Vec<String> {
    std::fs::read_dir("/proc")
        .into_iter()
        .flatten()
        .flatten()
        .filter_map(|entry| entry.file_name().into_string().ok())
        .filter(|name| name.bytes().all(|b| b.is_ascii_digit()))
        .filter(|pid| state(pid).is_some_and(|state| state != 'Z'))
        .collect()
}

/// True when users other than the owner may enter `dir` and every directory above it.
fn others_can_enter(dir: &Path) -> bool {
    use std::os::unix::fs::PermissionsExt;

    dir.ancestors()
        .all(|dir| std::fs::metadata(dir).is_ok_and(|meta| meta.permissions().mode() & 0o001 != 0))
}

fn is_root() -> bool {
    std::fs::read_to_string("/proc/self/status").is_ok_and(|status| {
        status.lines().any(|line| {
            line.strip_prefix("Uid:").is_some_and(|ids| ids.split_whitespace().nth(1) == Some("0"))
        })
    })
}

/// Spawns `command` (stdout and stderr piped here), feeds `stdin`, waits under the wall-clock
/// limit (killing its process group on time-out, or when `cancel` turns true) and collects
/// the output, waiting at most [`DRAIN_LIMIT`] for pipes that something else still holds open.
fn supervise(
    mut command: Command,
    stdin: Option<Vec<u8>>,
    limits: Limits,
    cancel: Option<&AtomicBool>,
    after_exit: impl FnOnce() -> Vec<String>,
) -> Result<(Outcome, std::process::ExitStatus)> {
    command.stdout(Stdio::piped()).stderr(Stdio::piped());
    let started = Instant::now();
    let mut child = command.spawn()?;
    let group = child.id() as i32;
    reaper::register(child.id());
    if let (Some(mut pipe), Some(data)) = (child.stdin.take(), stdin) {
        std::thread::spawn(move || {
            use std::io::Write;
            let _ = pipe.write_all(&data);
        });
    }
    let stdout = Captured::read(child.stdout.take(), limits.output_cap);
    let stderr = Captured::read(child.stderr.take(), limits.output_cap);
    let mut timed_out = false;
    let mut cancelled = false;
    let status = loop {
        if let Some(status) = child.try_wait()? {
            break status;
        }
        if started.elapsed() > limits.wall_clock {
            timed_out = true;
            kill_group(group);
            break child.wait()?;
        }
        if cancel.is_some_and(|cancel| cancel.load(Ordering::SeqCst)) {
            cancelled = true;
            kill_group(group);
            break child.wait()?;
        }
        std::thread::sleep(Duration::from_millis(20));
    };
    reaper::unregister(child.id());
    // What it left: counted and ended by the sandbox (its group too, so before the group goes).
    let leftovers = after_exit();
    // Whatever is left in the group goes now (in a sandbox, the namespace already went).
    kill_group(group);
    let drained = Instant::now() + DRAIN_LIMIT;
    while !(stdout.done() && stderr.done()) && Instant::now() < drained {
        std::thread::sleep(Duration::from_millis(10));
    }
    let (stdout, stdout_cut, observations) = stdout.take();
    let (stderr, stderr_cut, _) = stderr.take();
    let outcome = Outcome {
        code: status.code(),
        signal: std::os::unix::process::ExitStatusExt::signal(&status),
        timed_out,
        cancelled,
        stdout,
        stderr,
        truncated: stdout_cut || stderr_cut,
        observations,
        leftovers,
        elapsed: started.elapsed(),
    };
    Ok((outcome, status))
}

/// Bytes of observation lines kept per run (exercise 3's gathers observe 16 MB of floats).
const OBSERVATIONS_CAP: usize = 256 * 1024 * 1024;

/// The output of one pipe as a reader thread collects it: shared, so that the run can end
/// without waiting for the thread (a pipe held open by a leftover never ends).
#[derive(Default)]
struct Capture {
    head: Vec<u8>,
    tail: std::collections::VecDeque<u8>,
    dropped: usize,
    line: Vec<u8>,
    observations: Vec<String>,
    observed_bytes: usize,
    done: bool,
}

struct Captured(Arc<Mutex<Capture>>);

impl Captured {
    fn read(pipe: Option<impl Read + Send + 'static>, cap: usize) -> Captured {
        let shared = Arc::new(Mutex::new(Capture::default()));
        let capture = Arc::clone(&shared);
        std::thread::spawn(move || {
            let Some(mut pipe) = pipe else {
                lock(&capture).done = true;
                return;
            };
            // The first three quarters of the cap from the start, the last quarter from the end.
            let tail_cap = cap / 4;
            let head_cap = cap - tail_cap;
            let mut buffer = [0u8; 64 * 1024];
            loop {
                let n = match pipe.read(&mut buffer) {
                    Ok(0) | Err(_) => break,
                    Ok(n) => n,
                };
                let mut c = lock(&capture);
                let room = head_cap.saturating_sub(c.head.len());
                c.head.extend_from_slice(&buffer[..n.min(room)]);
                c.tail.extend(&buffer[n.min(room)..n]);
                if c.tail.len() > tail_cap {
                    let excess = c.tail.len() - tail_cap;
                    c.tail.drain(..excess);
                    c.dropped += excess;
                }
                for &byte in &buffer[..n] {
                    if byte == b'\n' {
                        c.end_line();
                    } else if c.line.len() < OBSERVATIONS_CAP {
                        c.line.push(byte);
                    }
                }
            }
            let mut c = lock(&capture);
            c.end_line();
            c.done = true;
        });
        Captured(shared)
    }

    fn done(&self) -> bool {
        lock(&self.0).done
    }

    fn take(&self) -> (String, bool, Vec<String>) {
        let mut c = lock(&self.0);
        let mut text = String::from_utf8_lossy(&c.head).into_owned();
        if c.dropped > 0 {
            text.push_str(&format!(
                "\n[output cut here: it was too long; {} bytes were dropped]\n",
                c.dropped
            ));
        }
        text.push_str(&String::from_utf8_lossy(c.tail.make_contiguous()));
        (text, c.dropped > 0, std::mem::take(&mut c.observations))
    }
}

impl Capture {
    fn end_line(&mut self) {
        let line = String::from_utf8_lossy(&self.line).into_owned();
        self.line.clear();
        if let Some(at) = line.rfind(judge::PREFIX)
            && self.observed_bytes + line.len() - at <= OBSERVATIONS_CAP
        {
            self.observed_bytes += line.len() - at;
            self.observations.push(line[at..].to_string());
        }
    }
}

fn lock<T>(mutex: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
}

fn kill_group(group: i32) {
    // `kill -KILL -<pgid>`: no unsafe code, and the group may well be gone already.
    let _ = Command::new("kill")
        .args(["-KILL", "--", &format!("-{group}")])
        .stderr(Stdio::null())
        .status();
}

/// A process's state letter, from `/proc/PID/stat` (field 3).
pub fn state(pid: &str) -> Option<char> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    stat[stat.rfind(')')? + 1..].split_whitespace().next()?.chars().next()
}

/// The fallback without namespaces: the grader adopts every orphan of the code under test
/// (`PR_SET_CHILD_SUBREAPER`) and ends what it adopted after each run. The only unsafe code of
/// xtask: three system calls.
mod reaper {
    use std::{
        collections::{HashMap, HashSet},
        sync::Mutex,
    };

    /// Direct children of the grader that are still running (other runs' in other threads),
    /// which a sweep leaves alone.
    static RUNNING: Mutex<Vec<u32>> = Mutex::new(Vec::new());

    pub fn register(pid: u32) {
        super::lock(&RUNNING).push(pid);
    }

    pub fn unregister(pid: u32) {
        super::lock(&RUNNING).retain(|&running| running != pid);
    }

    #[allow(unsafe_code)]
    pub fn become_subreaper() -> bool {
        // SAFETY: prctl with PR_SET_CHILD_SUBREAPER takes one integer and touches no memory.
        unsafe { libc::prctl(libc::PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0) == 0 }
    }

    #[allow(unsafe_code)]
    fn kill(pid: u32) {
        // SAFETY: kill takes two integers and touches no memory.
        unsafe {
            libc::kill(pid as libc::pid_t, libc::SIGKILL);
        }
    }

    /// Reaps `pid` if it is a dead child of the grader; true when it was reaped.
    #[allow(unsafe_code)]
    fn reap(pid: u32) -> bool {
        let mut status = 0;
        // SAFETY: `status` is a valid, writable int for the duration of the call.
        unsafe { libc::waitpid(pid as libc::pid_t, &mut status, libc::WNOHANG) == pid as i32 }
    }

    /// Every process below the grader but under its running children: what the code under
    /// test left behind, whatever its session, group or environment. Each is killed (and
    /// reaped when the grader adopted it); returns the names of those that were running.
    pub fn end_orphans() -> Vec<String> {
        let me = std::process::id();
        let mut names = Vec::new();
        let mut seen = HashSet::new();
        for _round in 0..50 {
            let running: Vec<u32> = super::lock(&RUNNING).clone();
            let mut children: HashMap<u32, Vec<u32>> = HashMap::new();
            for (pid, parent) in parents() {
                children.entry(parent).or_default().push(pid);
            }
            let mut found = Vec::new();
            let mut pending: Vec<u32> = children.get(&me).cloned().unwrap_or_default();
            while let Some(pid) = pending.pop() {
                if running.contains(&pid) {
                    continue;
                }
                found.push(pid);
                pending.extend(children.get(&pid).cloned().unwrap_or_default());
            }
            if found.is_empty() {
                break;
            }
            for &pid in &found {
                let pid_text = pid.to_string();
                let alive = super::state(&pid_text).is_some_and(|state| state != 'Z');
                if alive && seen.insert(pid) {
                    let name = std::fs::read_to_string(format!("/proc/{pid}/comm"));
                    names.push(name.unwrap_or_default().trim().to_string());
                }
                kill(pid);
            }
            std::thread::sleep(std::time::Duration::from_millis(10));
            for &pid in &found {
                reap(pid);
            }
        }
        names
    }

    /// (pid, parent pid) of every process.
    fn parents() -> Vec<(u32, u32)> {
        std::fs::read_dir("/proc")
            .into_iter()
            .flatten()
            .flatten()
            .filter_map(|entry| entry.file_name().to_str()?.parse::<u32>().ok())
            .filter_map(|pid| {
                let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
                let parent =
                    stat[stat.rfind(')')? + 1..].split_whitespace().nth(1)?.parse().ok()?;
                Some((pid, parent))
            })
            .collect()
    }
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
    fn a_run_over_its_limit_is_killed() {
        let mut command = Command::new("sh");
        command.args(["-c", "echo started; sleep 300"]);
        let limits = Limits { wall_clock: Duration::from_millis(500), output_cap: 1024 };
        let outcome = run_limited(command, limits).unwrap();
        assert!(outcome.timed_out && !outcome.success());
        assert_eq!(outcome.stdout.trim(), "started");
    }

    #[test]
    fn a_directory_under_a_closed_one_cannot_be_entered_by_others() {
        use std::os::unix::fs::PermissionsExt;

        let closed = std::env::temp_dir().join(format!("xtask-closed-{}", std::process::id()));
        std::fs::create_dir_all(closed.join("inside")).unwrap();
        std::fs::set_permissions(&closed, std::fs::Permissions::from_mode(0o755)).unwrap();
        assert!(others_can_enter(&closed.join("inside")));
        std::fs::set_permissions(&closed, std::fs::Permissions::from_mode(0o700)).unwrap();
        assert!(!others_can_enter(&closed.join("inside")));
        std::fs::remove_dir_all(&closed).unwrap();
    }

    #[test]
    fn a_private_directory_is_new_and_never_a_planted_link() {
        let first = fresh_private_dir("xtask-private-test").unwrap();
        let second = fresh_private_dir("xtask-private-test").unwrap();
        assert_ne!(first, second);
        let meta = std::fs::symlink_metadata(&first).unwrap();
        assert!(meta.is_dir() && !meta.file_type().is_symlink());
        use std::os::unix::fs::PermissionsExt;
        assert_eq!(meta.permissions().mode() & 0o777, 0o755);
        std::fs::remove_dir(&first).unwrap();
        std::fs::remove_dir(&second).unwrap();
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
