//! Building one exercise's graded tests and running each test in its own limited process.

use std::{
    ffi::OsString,
    path::{Path, PathBuf},
    time::{Duration, Instant},
};

use serde::Serialize;

use crate::workspace::{self, Confined, Exercise, Limits, Outcome, Result, Sandbox};

/// How a test ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Status {
    Pass,
    Fail,
    Error,
}

impl Status {
    pub fn as_str(self) -> &'static str {
        match self {
            Status::Pass => "pass",
            Status::Fail => "fail",
            Status::Error => "error",
        }
    }
}

/// One graded test's result.
#[derive(Debug, Clone)]
pub struct TestRun {
    /// The test's name in the test file (`module::name` when nested).
    pub name: String,
    pub status: Status,
    /// What happened and what to do; `None` when it passed cleanly.
    pub message: Option<String>,
    /// What the test and the student's code printed (harness lines and panic text removed).
    pub output: String,
    pub test_code: Option<String>,
    /// Processes the test left running, which the grader's sandbox ended.
    pub leftovers: usize,
    pub elapsed: Duration,
}

/// One exercise's results.
#[derive(Debug, Clone)]
pub struct ExerciseRun {
    pub name: String,
    /// Set when the tests could not run at all (compile error, no test binary, ...).
    pub message: Option<String>,
    /// Whether a judge without the student's code decided (see [`Prepared::Ready`]).
    pub judged: bool,
    pub tests: Vec<TestRun>,
    pub elapsed: Duration,
}

/// The limits grading works under.
#[derive(Debug, Clone, Copy)]
pub struct Budget {
    /// All the builds together.
    pub build: Duration,
    pub test: Duration,
    pub exercise: Duration,
}

/// Bytes kept of a test's stdout and of its stderr.
const TEST_OUTPUT_CAP: usize = 64 * 1024;
/// Bytes kept of a build's JSON messages (one line per artifact) and of its stderr.
const BUILD_OUTPUT_CAP: usize = 16 * 1024 * 1024;
/// Characters of compiler errors kept in each test's message.
const COMPILE_MESSAGE_CAP: usize = 4000;
/// How long the judge may take to check one test's observations.
const JUDGE_LIMIT: Duration = Duration::from_secs(30);

/// A test binary copied where the code under test cannot write (as `nobody`, in the grader's
/// private directory), with what it looked like then; [`Protected::verify`] refuses it if it
/// changed since (any write, rename or replacement changes its inode or change time).
#[derive(Debug, Clone)]
pub struct Protected {
    pub path: PathBuf,
    stamp: (u64, u64, u64, i64, i64),
}

impl Protected {
    pub fn copy(from: &Path, to: &Path) -> Result<Protected> {
        use std::os::unix::fs::PermissionsExt;

        if let Some(parent) = to.parent() {
            std::fs::create_dir_all(parent)?;
        }
        let _ = std::fs::remove_file(to);
        std::fs::copy(from, to)
            .map_err(|e| format!("cannot copy {} to {}: {e}", from.display(), to.display()))?;
        std::fs::set_permissions(to, std::fs::Permissions::from_mode(0o755))?;
        Ok(Protected { path: to.to_path_buf(), stamp: stamp(to)? })
    }

    pub fn verify(&self) -> std::result::Result<(), String> {
        match stamp(&self.path) {
            Ok(now) if now == self.stamp => Ok(()),
            _ => Err(format!(
                "{} changed after it was built, so it was not run again: something in the tests \
                 wrote to it",
                self.path.display()
            )),
        }
    }
}

fn stamp(path: &Path) -> Result<(u64, u64, u64, i64, i64)> {
    use std::os::unix::fs::MetadataExt;

    let meta = std::fs::symlink_metadata(path)
        .map_err(|e| format!("cannot read {}: {e}", path.display()))?;
    Ok((meta.dev(), meta.ino(), meta.size(), meta.ctime(), meta.ctime_nsec()))
}

/// One exercise, built and listed, ready to run; or why it cannot run.
#[derive(Debug)]
pub enum Prepared {
    Ready {
        /// The graded test built against the student's crate.
        subject: Protected,
        /// The same test built against the template's own crate (template mode), which
        /// decides; in manifest mode, the subject again.
        judge: Protected,
        /// The tests, from the judge (the template), in the order of the test file.
        names: Vec<String>,
        /// Whether the test file observes the student's values (`judge::observe!`); if not,
        /// the verdict can only come from the test process itself.
        judged: bool,
    },
    Failed {
        message: String,
        names: Vec<String>,
    },
}

/// Builds and runs the graded tests of `exercise` in the workspace `work`.
pub fn grade_exercise(
    exercise: &Exercise,
    source: &str,
    prepared: &Prepared,
    sandbox: &Sandbox,
    budget: Budget,
    deadline: Instant,
) -> Result<ExerciseRun> {
    let started = Instant::now();
    let (subject, judge, names, judged) = match prepared {
        Prepared::Failed { message, names } => {
            return Ok(failed(exercise, source, message, names.clone(), started));
        }
        Prepared::Ready { subject, judge, names, judged } => (subject, judge, names, *judged),
    };
    let mut tests = Vec::new();
    let testing = Instant::now();
    for name in names {
        let left = budget
            .exercise
            .saturating_sub(testing.elapsed())
            .min(deadline.saturating_duration_since(Instant::now()));
        let not_run = |why: String| TestRun {
            name: name.clone(),
            status: Status::Error,
            message: Some(why),
            output: String::new(),
            test_code: None,
            leftovers: 0,
            elapsed: Duration::ZERO,
        };
        let mut run = if left.is_zero() {
            not_run(if Instant::now() >= deadline {
                "not run: the whole grading's time limit was used up before it".to_string()
            } else {
                format!(
                    "not run: the exercise's time budget of {} s was used up by the tests \
                     before it; make the slow ones faster",
                    budget.exercise.as_secs()
                )
            })
        } else if let Err(why) = subject.verify().and_then(|()| judge.verify()) {
            not_run(why)
        } else {
            run_test(subject, judge, judged, exercise, name, budget.test.min(left), sandbox)?
        };
        run.test_code = test_code(source, name);
        tests.push(run);
    }
    Ok(ExerciseRun {
        name: exercise.name.clone(),
        message: None,
        judged,
        tests,
        elapsed: started.elapsed(),
    })
}

/// Every test of an exercise that could not run: an error, with the exercise's message.
fn failed(
    exercise: &Exercise,
    source: &str,
    message: &str,
    names: Vec<String>,
    started: Instant,
) -> ExerciseRun {
    let names = if names.is_empty() { declared_tests(source) } else { names };
    // Each test says why in short; the exercise's message has the whole story.
    let short = short_message(message);
    let tests = names
        .into_iter()
        .map(|name| TestRun {
            test_code: test_code(source, &name),
            name,
            status: Status::Error,
            message: Some(short.clone()),
            output: String::new(),
            leftovers: 0,
            elapsed: Duration::ZERO,
        })
        .collect();
    ExerciseRun {
        name: exercise.name.clone(),
        message: Some(message.to_string()),
        judged: false,
        tests,
        elapsed: started.elapsed(),
    }
}

/// `cargo test -p exercise-N --test graded --no-run`: the test binary, or what went wrong.
pub fn build(
    work: &Path,
    target_dir: Option<&Path>,
    exercise: &Exercise,
    limit: Duration,
) -> Result<std::result::Result<PathBuf, String>> {
    if !exercise.dir.join("tests/graded.rs").is_file() {
        return Ok(Err(format!(
            "{} has no tests/graded.rs: restore it from the course template",
            exercise.name
        )));
    }
    let mut command = workspace::cargo(work);
    command
        .args(["test", "--package", &exercise.name, "--test", "graded", "--no-run"])
        .args(["--message-format=json", "--color=never"])
        .env("CARGO_TERM_COLOR", "never")
        .env("CARGO_TERM_PROGRESS_WHEN", "never");
    if let Some(target_dir) = target_dir {
        command.env("CARGO_TARGET_DIR", target_dir);
    }
    let outcome = workspace::run_limited(
        command,
        Limits { wall_clock: limit, output_cap: BUILD_OUTPUT_CAP },
    )?;
    let mut binary = None;
    let mut errors = Vec::new();
    for line in outcome.stdout.lines().filter(|l| l.starts_with('{')) {
        let Ok(message) = serde_json::from_str::<serde_json::Value>(line) else { continue };
        match message["reason"].as_str() {
            Some("compiler-artifact")
                if message["target"]["name"] == "graded"
                    && message["target"]["kind"]
                        .as_array()
                        .is_some_and(|kinds| kinds.iter().any(|kind| kind == "test")) =>
            {
                binary = message["executable"].as_str().map(PathBuf::from);
            }
            Some("compiler-message") if message["message"]["level"] == "error" => {
                if let Some(rendered) = message["message"]["rendered"].as_str() {
                    errors.push(rendered.trim_end().to_string());
                }
            }
            _ => {}
        }
    }
    if outcome.timed_out {
        return Ok(Err(format!(
            "building {} took longer than {} s and was stopped; try `cargo test -p {0} \
             --no-run` yourself (a build script or a huge constant?)",
            exercise.name,
            limit.as_secs()
        )));
    }
    match binary {
        Some(binary) if outcome.success() => Ok(Ok(binary)),
        _ => {
            let details = if errors.is_empty() {
                // Not the compiler: cargo itself (a manifest, a missing dependency, ...).
                outcome
                    .stderr
                    .lines()
                    .filter(|l| !l.trim_start().starts_with("Compiling"))
                    .collect::<Vec<_>>()
                    .join("\n")
            } else {
                errors.join("\n\n")
            };
            Ok(Err(format!(
                "{} does not compile, so none of its tests could run.\nFix the errors that \
                 `cargo test -p {0}` shows:\n\n{}",
                exercise.name,
                details.trim()
            )))
        }
    }
}

/// The first line of `message`, and the headline and place of each compiler error in it.
fn short_message(message: &str) -> String {
    let mut lines: Vec<&str> = message.lines().take(1).collect();
    let mut previous = "";
    for line in message.lines().skip(1) {
        if previous.starts_with("error") && line.trim_start().starts_with("--> ") {
            lines.push(previous);
            lines.push(line);
        }
        previous = line;
    }
    lines.push("(the exercise's message has the compiler's whole report)");
    cap_chars(&lines.join("\n"), COMPILE_MESSAGE_CAP)
}

/// `<judge> --list --format terse`: the names of the tests, from the template's own build, in
/// the order of the test file.
pub fn list(
    judge: &Protected,
    exercise: &Exercise,
    source: &str,
    sandbox: &Sandbox,
) -> Result<std::result::Result<Vec<String>, String>> {
    if let Err(why) = judge.verify() {
        return Ok(Err(why));
    }
    let mut command = test_command(&judge.path, exercise);
    command.args.extend(["--list", "--format", "terse"].map(OsString::from));
    let limits = Limits { wall_clock: Duration::from_secs(60), output_cap: 1024 * 1024 };
    let outcome = sandbox.run(&command, limits)?;
    if !outcome.success() {
        return Ok(Err(format!(
            "the course's tests of {} did not list themselves (exit {:?}, signal {:?}):\n{}",
            exercise.name,
            outcome.code,
            outcome.signal,
            cap_chars(outcome.stderr.trim(), COMPILE_MESSAGE_CAP)
        )));
    }
    let mut names: Vec<String> = outcome
        .stdout
        .lines()
        .filter_map(|line| line.strip_suffix(": test"))
        .map(str::to_string)
        .collect();
    if names.is_empty() {
        return Ok(Err(format!("{} has no graded tests", exercise.name)));
    }
    // In the order of the test file, as results.json wants; unknown positions last.
    names.sort_by_key(|name| (position(source, name).unwrap_or(usize::MAX), name.clone()));
    Ok(Ok(names))
}

/// The test binary as `cargo test` runs it, with nothing of the grader's environment: what
/// cargo gives a test at run time, a plain PATH, and short, reproducible panic messages.
pub(crate) fn test_command(binary: &Path, exercise: &Exercise) -> Confined {
    let env = [
        ("PATH", OsString::from("/usr/local/bin:/usr/bin:/bin")),
        ("LANG", "C.UTF-8".into()),
        ("RUST_BACKTRACE", "0".into()),
        ("CARGO_MANIFEST_DIR", exercise.dir.clone().into()),
        ("CARGO_PKG_NAME", exercise.name.clone().into()),
    ];
    Confined {
        program: binary.to_path_buf(),
        args: Vec::new(),
        dir: exercise.dir.clone(),
        env: env.into_iter().map(|(key, value)| (key.to_string(), value)).collect(),
        stdin: None,
    }
}

/// Runs one test alone in the sandbox under `limit`; if it passed there, the judge checks the
/// values it observed.
fn run_test(
    subject: &Protected,
    judge: &Protected,
    judged: bool,
    exercise: &Exercise,
    name: &str,
    limit: Duration,
    sandbox: &Sandbox,
) -> Result<TestRun> {
    let args = ["--exact", name, "--include-ignored", "--test-threads=1", "--nocapture"];
    let mut command = test_command(&subject.path, exercise);
    command.args.extend(args.map(OsString::from));
    command.args.push("--color=never".into());
    let outcome =
        sandbox.run(&command, Limits { wall_clock: limit, output_cap: TEST_OUTPUT_CAP })?;
    let stderr = strip_pids(&strip_thread_ids(&outcome.stderr));
    let (panic, other_stderr) = split_panic(&stderr);
    let stdout = strip_pids(&strip_harness(&outcome.stdout, name));
    let output = [stdout.trim_end(), other_stderr.trim_end()]
        .iter()
        .filter(|s| !s.is_empty())
        .copied()
        .collect::<Vec<_>>()
        .join("\n");
    let (mut status, mut message) = verdict(&outcome, &stderr, &panic, name, limit, exercise);
    if status == Status::Pass && judged {
        // What the test process says is only a claim: the judge, built without the student's
        // code, checks the values it observed.
        let mut command = test_command(&judge.path, exercise);
        command.args.extend(args.map(OsString::from));
        command.args.push("--color=never".into());
        command.env.push((judge::REPLAY.to_string(), "1".into()));
        let observations: String =
            outcome.observations.iter().map(|line| format!("{line}\n")).collect();
        command.stdin = Some(observations.into_bytes());
        let checked = sandbox
            .run(&command, Limits { wall_clock: JUDGE_LIMIT, output_cap: TEST_OUTPUT_CAP })?;
        let judge_stderr = strip_pids(&strip_thread_ids(&checked.stderr));
        let (judge_panic, _) = split_panic(&judge_stderr);
        if !(checked.success() && checked.stdout.contains("test result: ok. 1 passed")) {
            status = Status::Fail;
            message = Some(format!(
                "the values your code returned, checked apart from your code, do not pass this \
                 test{}",
                match judge_panic.trim() {
                    "" => ".".to_string(),
                    text => format!(":\n{text}"),
                }
            ));
        }
    }
    let mut notes = Vec::new();
    if outcome.truncated {
        notes.push(format!(
            "It printed more than {} KiB; the middle of its output was dropped.",
            TEST_OUTPUT_CAP / 1024
        ));
    }
    if !outcome.leftovers.is_empty() {
        let n = outcome.leftovers.len();
        notes.push(format!(
            "It left {n} process{} running when it ended; the grader's sandbox ended {}. Wait \
             for (join) every process your code starts.",
            if n == 1 { "" } else { "es" },
            if n == 1 { "it" } else { "them" },
        ));
    }
    if !notes.is_empty() {
        let note = notes.join(" ");
        message = Some(match message {
            Some(message) => format!("{message}\n{note}"),
            None => note,
        });
    }
    Ok(TestRun {
        name: name.to_string(),
        status,
        message,
        output,
        test_code: None,
        leftovers: outcome.leftovers.len(),
        elapsed: outcome.elapsed,
    })
}

/// What the test process's own ending says: pass (a claim the judge checks), fail, or error.
fn verdict(
    outcome: &Outcome,
    stderr: &str,
    panic: &str,
    name: &str,
    limit: Duration,
    exercise: &Exercise,
) -> (Status, Option<String>) {
    let finished_ok = outcome.stdout.contains("test result: ok. 1 passed");
    let finished_failed = outcome.stdout.contains("test result: FAILED. 0 passed; 1 failed");
    let panic_text = panic.trim().to_string();
    let with_panic = |text: String| {
        if panic_text.is_empty() { text } else { format!("{text}\n{panic_text}") }
    };
    let too_long = |seconds: u64, by: &str| {
        format!(
            "took longer than {seconds} s and was stopped ({by}): an infinite loop, a deadlock, \
             or a recv that nobody sends to? Run `cargo test -p {} -- --exact {name}` to see \
             where it hangs",
            exercise.name
        )
    };
    // The graded tests' own watchdog: exit 97 after its limit, with a line on stderr.
    let watchdog = stderr.lines().find_map(|line| {
        let rest = line.strip_prefix("WATCHDOG: ")?;
        let seconds = rest.split("after ").nth(1)?.split(' ').next()?;
        seconds.parse::<u64>().ok()
    });
    if outcome.timed_out {
        (Status::Error, Some(too_long(limit.as_secs(), "the grader's limit for one test")))
    } else if let (Some(97), Some(seconds)) = (outcome.code, watchdog) {
        (Status::Error, Some(too_long(seconds, "the test's own watchdog")))
    } else if outcome.code == Some(0) && finished_ok {
        (Status::Pass, None)
    } else if outcome.code == Some(101) && finished_failed {
        let text = if panic_text.is_empty() {
            "the test failed (see its output)".to_string()
        } else {
            panic_text.clone()
        };
        (Status::Fail, Some(text))
    } else if let Some(signal) = outcome.signal {
        let what = if stderr.contains("has overflowed its stack") {
            "a stack overflow (unbounded recursion?)".to_string()
        } else {
            signal_name(signal)
        };
        (
            Status::Error,
            Some(with_panic(format!(
                "the test process crashed: killed by signal {signal}, {what}, before the test \
                 finished"
            ))),
        )
    } else {
        let code = outcome.code.unwrap_or(-1);
        (
            Status::Error,
            Some(with_panic(format!(
                "the test process exited with status {code} before the test finished: does \
                 your code call std::process::exit, or panic outside the test?"
            ))),
        )
    }
}

fn signal_name(signal: i32) -> String {
    match signal {
        4 => "SIGILL (an illegal instruction)".into(),
        6 => "SIGABRT (an abort: std::process::abort, a panic while panicking, or a failed \
              allocation)"
            .into(),
        7 => "SIGBUS (a bad memory access)".into(),
        8 => "SIGFPE (an arithmetic error)".into(),
        9 => "SIGKILL (killed from outside, maybe for using too much memory)".into(),
        11 => "SIGSEGV (a bad memory access)".into(),
        13 => "SIGPIPE (a write to a closed pipe)".into(),
        15 => "SIGTERM (asked to stop from outside)".into(),
        other => format!("signal {other}"),
    }
}

/// `thread 'name' (12345) panicked` → `thread 'name' panicked`: thread ids change every run.
fn strip_thread_ids(text: &str) -> String {
    let mut result = String::with_capacity(text.len());
    let mut rest = text;
    while let Some(at) = rest.find("' (") {
        let (before, after) = rest.split_at(at + 1);
        result.push_str(before);
        let digits = after[2..].bytes().take_while(u8::is_ascii_digit).count();
        if digits > 0 && after[2 + digits..].starts_with(") panicked") {
            rest = &after[2 + digits + 1..];
        } else {
            result.push_str(&after[..2]);
            rest = &after[2..];
        }
    }
    result.push_str(rest);
    result
}

/// `worker process 4242`, `(pid 4242)`, `pid: 4242` → `<pid>`: process ids change every run
/// (mp's error messages name the worker's).
fn strip_pids(text: &str) -> String {
    let mut result = String::with_capacity(text.len());
    let mut rest = text;
    loop {
        let found = ["worker process ", "pid: ", "pid "]
            .iter()
            .filter_map(|marker| rest.find(marker).map(|at| (at, marker.len())))
            .min();
        let Some((at, len)) = found else { break };
        let after = &rest[at + len..];
        let digits = after.bytes().take_while(u8::is_ascii_digit).count();
        result.push_str(&rest[..at + len]);
        if digits > 0 {
            result.push_str("<pid>");
        }
        rest = &after[digits..];
    }
    result.push_str(rest);
    result
}

/// Splits stderr into the panic report (from `thread '...' panicked at` on, without the
/// backtrace hint) and everything else.
fn split_panic(stderr: &str) -> (String, String) {
    let mut panic = String::new();
    let mut other = String::new();
    let mut in_panic = false;
    for line in stderr.lines() {
        if line.starts_with("thread '") && line.contains("panicked at") {
            in_panic = true;
        } else if line.starts_with("note: run with `RUST_BACKTRACE=1`") {
            in_panic = false;
            continue;
        }
        let into = if in_panic { &mut panic } else { &mut other };
        into.push_str(line);
        into.push('\n');
    }
    (panic, other)
}

/// The test's own output: stdout without libtest's lines.
fn strip_harness(stdout: &str, name: &str) -> String {
    let start = format!("test {name} ... ");
    let mut kept = Vec::new();
    for line in stdout.lines() {
        let line = line.strip_prefix(&start).unwrap_or(line);
        let harness = line == "running 1 test"
            || line == "ok"
            || line == "FAILED"
            || line == "failures:"
            || line == format!("    {name}")
            || line.starts_with("test result: ")
            || line.starts_with("---- ")
            || line.starts_with(judge::PREFIX);
        if !harness {
            kept.push(line);
        }
    }
    // A test's own output ends without a newline before libtest's "ok": "hellook".
    let mut text = kept.join("\n").trim_end().to_string();
    for verdict in ["ok", "FAILED"] {
        if let Some(cut) = text.strip_suffix(verdict) {
            text = cut.to_string();
        }
    }
    text.trim_matches('\n').to_string()
}

/// Test names declared in the file (`#[test]` then `fn name`), for when the binary can't say.
fn declared_tests(source: &str) -> Vec<String> {
    let mut names = Vec::new();
    let mut after_test = false;
    for line in source.lines().map(str::trim) {
        if line.starts_with("#[test]") {
            after_test = true;
        }
        if after_test && let Some(name) = fn_name(line) {
            names.push(name);
            after_test = false;
        }
    }
    names
}

fn fn_name(line: &str) -> Option<String> {
    let rest = line.split("fn ").nth(1)?;
    let name: String = rest.chars().take_while(|c| c.is_alphanumeric() || *c == '_').collect();
    (!name.is_empty() && line.contains(&format!("fn {name}("))).then_some(name)
}

/// Byte offset of `fn <last segment of name>(` in the test file.
fn position(source: &str, name: &str) -> Option<usize> {
    let short = name.rsplit("::").next()?;
    source.find(&format!("fn {short}("))
}

/// The test's source, from its `fn` line to the matching closing brace.
pub fn test_code(source: &str, name: &str) -> Option<String> {
    let start = position(source, name)?;
    let line_start = source[..start].rfind('\n').map_or(0, |i| i + 1);
    let mut depth = 0usize;
    for (offset, c) in source[start..].char_indices() {
        match c {
            '{' => depth += 1,
            '}' => {
                depth = depth.checked_sub(1)?;
                if depth == 0 {
                    return Some(source[line_start..start + offset + 1].to_string());
                }
            }
            _ => {}
        }
    }
    None
}

/// At most `cap` characters of `text`, marked when cut.
pub fn cap_chars(text: &str, cap: usize) -> String {
    if text.chars().count() <= cap {
        return text.to_string();
    }
    let mut kept: String = text.chars().take(cap).collect();
    kept.push_str("\n[cut: too long]");
    kept
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn thread_ids_are_stripped_from_panic_reports() {
        let text = "thread 'adds' (4242) panicked at tests/graded.rs:3:5:\nit's (1) thing";
        assert_eq!(
            strip_thread_ids(text),
            "thread 'adds' panicked at tests/graded.rs:3:5:\nit's (1) thing"
        );
    }

    #[test]
    fn pids_are_stripped_from_messages() {
        let text = "task 3 panicked in worker process 4242: boom\nworker 1 (pid 77) died; \
                    TaskPanicked { pid: 9, .. }; pid of nothing";
        assert_eq!(
            strip_pids(text),
            "task 3 panicked in worker process <pid>: boom\nworker 1 (pid <pid>) died; \
             TaskPanicked { pid: <pid>, .. }; pid of nothing"
        );
    }

    #[test]
    fn harness_lines_are_not_the_students_output() {
        let stdout = "\nrunning 1 test\ntest a::b ... hello\nworldok\n\ntest result: ok. 1 \
                      passed; 0 failed\n\n";
        assert_eq!(strip_harness(stdout, "a::b"), "hello\nworld");
        assert_eq!(strip_harness("\nrunning 1 test\ntest t ... ok\n", "t"), "");
    }

    #[test]
    fn test_code_is_the_function_in_the_file() {
        let source = "use x;\n\n#[test]\nfn adds() {\n    assert_eq!(add(1, 1), 2);\n}\n\n\
                      #[test]\nfn subs() { let v = vec![{ 1 }]; }\n";
        assert_eq!(
            test_code(source, "adds").unwrap(),
            "fn adds() {\n    assert_eq!(add(1, 1), 2);\n}"
        );
        assert_eq!(test_code(source, "m::subs").unwrap(), "fn subs() { let v = vec![{ 1 }]; }");
        assert_eq!(declared_tests(source), ["adds", "subs"]);
        assert!(position(source, "adds") < position(source, "subs"));
    }
}
