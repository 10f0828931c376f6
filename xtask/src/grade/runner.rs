//! Building one exercise's graded tests and running each test in its own limited process.

use std::{
    path::{Path, PathBuf},
    process::Command,
    time::{Duration, Instant},
};

use serde::Serialize;

use crate::workspace::{self, Exercise, Limits, Result};

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
    /// Processes the test left running, which the grader killed.
    pub leftovers: usize,
    pub elapsed: Duration,
}

/// One exercise's results.
#[derive(Debug, Clone)]
pub struct ExerciseRun {
    pub name: String,
    /// Set when the tests could not run at all (compile error, no test binary, ...).
    pub message: Option<String>,
    pub tests: Vec<TestRun>,
    pub elapsed: Duration,
}

/// The limits grading works under.
#[derive(Debug, Clone, Copy)]
pub struct Budget {
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

/// Builds and runs the graded tests of `exercise` in the workspace `work`.
pub fn grade_exercise(
    work: &Path,
    target_dir: Option<&Path>,
    exercise: &Exercise,
    budget: Budget,
) -> Result<ExerciseRun> {
    let started = Instant::now();
    let test_file = exercise.dir.join("tests/graded.rs");
    let source = std::fs::read_to_string(&test_file).unwrap_or_default();
    let failed = |message: String, names: Vec<String>| {
        let names = if names.is_empty() { declared_tests(&source) } else { names };
        // Each test says why in short; the exercise's message has the whole story.
        let short = short_message(&message);
        let tests = names
            .into_iter()
            .map(|name| TestRun {
                test_code: test_code(&source, &name),
                name,
                status: Status::Error,
                message: Some(short.clone()),
                output: String::new(),
                leftovers: 0,
                elapsed: Duration::ZERO,
            })
            .collect();
        Ok(ExerciseRun {
            name: exercise.name.clone(),
            message: Some(message),
            tests,
            elapsed: started.elapsed(),
        })
    };
    if !test_file.is_file() {
        return failed(
            format!(
                "{} has no tests/graded.rs: restore it from the course template",
                exercise.name
            ),
            Vec::new(),
        );
    }
    let binary = match build(work, target_dir, exercise, budget.build)? {
        Ok(binary) => binary,
        Err(message) => return failed(message, Vec::new()),
    };
    let names = match list(&binary, exercise)? {
        Ok(names) => names,
        Err(message) => return failed(message, Vec::new()),
    };
    let mut names = names;
    // In the order of the test file, as results.json wants; unknown positions last.
    names.sort_by_key(|name| (position(&source, name).unwrap_or(usize::MAX), name.clone()));
    let mut tests = Vec::new();
    // The budget is for the tests: the build had its own limit.
    let testing = Instant::now();
    for name in names {
        let left = budget.exercise.saturating_sub(testing.elapsed());
        let mut run = if left.is_zero() {
            TestRun {
                name: name.clone(),
                status: Status::Error,
                message: Some(format!(
                    "not run: the exercise's time budget of {} s was used up by the tests \
                     before it; make the slow ones faster",
                    budget.exercise.as_secs()
                )),
                output: String::new(),
                test_code: None,
                leftovers: 0,
                elapsed: Duration::ZERO,
            }
        } else {
            run_test(&binary, exercise, &name, budget.test.min(left))?
        };
        run.test_code = test_code(&source, &name);
        tests.push(run);
    }
    Ok(ExerciseRun {
        name: exercise.name.clone(),
        message: None,
        tests,
        elapsed: started.elapsed(),
    })
}

/// `cargo test -p exercise-N --test graded --no-run`: the test binary, or what went wrong.
fn build(
    work: &Path,
    target_dir: Option<&Path>,
    exercise: &Exercise,
    limit: Duration,
) -> Result<std::result::Result<PathBuf, String>> {
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

/// `<test binary> --list --format terse`: the names of the tests.
fn list(binary: &Path, exercise: &Exercise) -> Result<std::result::Result<Vec<String>, String>> {
    let mut command = test_command(binary, exercise);
    command.args(["--list", "--format", "terse"]);
    let limits = Limits { wall_clock: Duration::from_secs(60), output_cap: 1024 * 1024 };
    let outcome = workspace::run_limited(command, limits)?;
    if !outcome.success() {
        return Ok(Err(format!(
            "the test binary of {} did not list its tests (exit {:?}, signal {:?}); it \
             crashed before any test ran:\n{}",
            exercise.name,
            outcome.code,
            outcome.signal,
            cap_chars(outcome.stderr.trim(), COMPILE_MESSAGE_CAP)
        )));
    }
    let names: Vec<String> = outcome
        .stdout
        .lines()
        .filter_map(|line| line.strip_suffix(": test"))
        .map(str::to_string)
        .collect();
    if names.is_empty() {
        return Ok(Err(format!("{} has no graded tests", exercise.name)));
    }
    Ok(Ok(names))
}

fn test_command(binary: &Path, exercise: &Exercise) -> Command {
    let mut command = Command::new(binary);
    // What `cargo test` gives a test at run time, and short, reproducible panic messages.
    command
        .current_dir(&exercise.dir)
        .env("CARGO_MANIFEST_DIR", &exercise.dir)
        .env("CARGO_PKG_NAME", &exercise.name)
        .env("RUST_BACKTRACE", "0")
        .env_remove("RUST_TEST_THREADS")
        .env_remove("RUST_TEST_NOCAPTURE");
    command
}

/// Runs one test alone, in its own process group, under `limit`.
fn run_test(binary: &Path, exercise: &Exercise, name: &str, limit: Duration) -> Result<TestRun> {
    let mut command = test_command(binary, exercise);
    command.args(["--exact", name, "--include-ignored", "--test-threads=1", "--nocapture"]);
    command.arg("--color=never");
    let outcome =
        workspace::run_limited(command, Limits { wall_clock: limit, output_cap: TEST_OUTPUT_CAP })?;
    let stderr = strip_thread_ids(&outcome.stderr);
    let (panic, other_stderr) = split_panic(&stderr);
    let stdout = strip_harness(&outcome.stdout, name);
    let output = [stdout.trim_end(), other_stderr.trim_end()]
        .iter()
        .filter(|s| !s.is_empty())
        .copied()
        .collect::<Vec<_>>()
        .join("\n");
    let finished_ok = outcome.stdout.contains("test result: ok. 1 passed");
    let finished_failed = outcome.stdout.contains("test result: FAILED. 0 passed; 1 failed");
    let panic_text = panic.trim().to_string();
    let with_panic = |text: String| {
        if panic_text.is_empty() { text } else { format!("{text}\n{panic_text}") }
    };
    let (status, mut message) = if outcome.timed_out {
        (
            Status::Error,
            Some(format!(
                "timed out after {} s and was stopped: an infinite loop, a deadlock, or a recv \
                 that nobody sends to? Run `cargo test -p {} -- --exact {name}` to see where it \
                 hangs",
                limit.as_secs(),
                exercise.name
            )),
        )
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
    };
    let mut notes = Vec::new();
    if outcome.truncated {
        notes.push(format!(
            "It printed more than {} KiB; the middle of its output was dropped.",
            TEST_OUTPUT_CAP / 1024
        ));
    }
    if outcome.leftovers > 0 && !outcome.timed_out {
        notes.push(format!(
            "It left {} process{} running after it ended; the grader killed {}. Wait for \
             (join) every process your code starts.",
            outcome.leftovers,
            if outcome.leftovers == 1 { "" } else { "es" },
            if outcome.leftovers == 1 { "it" } else { "them" },
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
        leftovers: if outcome.timed_out { 0 } else { outcome.leftovers },
        elapsed: outcome.elapsed,
    })
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
            || line.starts_with("---- ");
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
