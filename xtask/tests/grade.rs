//! `cargo xtask grade` against fixture submissions of a tiny course template
//! (`tests/fixtures/template`: exercise 1 adds numbers, exercise 2 starts a child process).
//!
//! Each submission in `tests/fixtures/submissions/NAME` is `files/` (laid over a copy of the
//! template, as a student's repository) and `expected_results.json` (the golden results); a
//! few also have `expected_junit.xml` (the JUnit report of the old hand-written writer, times
//! normalised, compared element by element). `UPDATE_GOLDEN=1 cargo test -p xtask --test grade`
//! rewrites the golden results.

use std::{
    path::{Path, PathBuf},
    process::{Command, Stdio},
    time::{Duration, Instant},
};

use serde_json::Value;

#[path = "support/junit.rs"]
mod junit_xml;

fn fixtures() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures")
}

/// How a submission is graded.
#[derive(Clone, Copy, PartialEq)]
enum Mode {
    /// `--template`: the pristine template's tests, the student's sources.
    Template,
    /// `--template`, with `--out` left to its default inside the submission.
    TemplateDefaultOut,
    /// In place, checked against a `.course/protected.sha256` written before the student's
    /// changes.
    InPlace,
    /// `--template`, with the sandbox's fallback forced (no namespaces: the grader as a child
    /// subreaper).
    TemplateWithoutNamespaces,
}

struct Graded {
    results: Value,
    out: PathBuf,
    stdout: String,
    /// Files named by the GITHUB_* variables the grader was given (as in a workflow step).
    github_files: Vec<PathBuf>,
}

/// The sandbox depends on the machine (root or not): golden files say `SANDBOX`.
fn normalise(results: &str) -> String {
    results
        .lines()
        .map(|line| match line.strip_prefix("  \"sandbox\": ") {
            Some(_) => "  \"sandbox\": \"SANDBOX\",".to_string(),
            None => line.to_string(),
        })
        .map(|line| line + "\n")
        .collect()
}

/// Every file of the template and its contents, to check that grading never changes it.
fn snapshot(root: &Path) -> Vec<(String, Vec<u8>)> {
    let mut files = Vec::new();
    list_files(root, Path::new(""), &mut files);
    files.sort();
    files.into_iter().map(|f| (f.clone(), std::fs::read(root.join(&f)).unwrap())).collect()
}

/// Builds the submission (template + `files/`), grades it, and compares `results.json` with
/// the golden file.
fn grade(name: &str, mode: Mode) -> Graded {
    // In place, a fixture other than in-place-tampered has its own golden file and scratch.
    let suffix = match mode {
        Mode::InPlace if name != "in-place-tampered" => ".in-place",
        Mode::TemplateWithoutNamespaces => ".process-group",
        _ => "",
    };
    let scratch =
        Path::new(env!("CARGO_TARGET_TMPDIR")).join("grade").join(format!("{name}{suffix}"));
    let submission = scratch.join("submission");
    let out = match mode {
        Mode::TemplateDefaultOut => submission.join("target/grade"),
        _ => scratch.join("out"),
    };
    let _ = std::fs::remove_dir_all(&submission);
    let _ = std::fs::remove_file(out.join("results.json"));
    let _ = std::fs::remove_dir_all(out.join("results.json"));
    let template = fixtures().join("template");
    let before = snapshot(&template);
    copy_tree(&template, &submission, true);
    if mode == Mode::InPlace {
        write_manifest(&submission);
    }
    let fixture = fixtures().join("submissions").join(name);
    copy_tree(&fixture.join("files"), &submission, false);
    if name == "odd-files" {
        // A directory where the grader writes its results.
        std::fs::create_dir_all(out.join("results.json/inside")).unwrap();
    }

    let mut command = Command::new(env!("CARGO_BIN_EXE_xtask"));
    command.arg("grade").arg("--submission").arg(&submission);
    if mode != Mode::TemplateDefaultOut {
        command.arg("--out").arg(&out);
    }
    command.arg("--junit").arg(out.join("junit.xml"));
    // Only the infinite loop needs a short limit (its other test has a 2 s watchdog); the
    // others have room to spare under load.
    let test_timeout = if name == "infinite-loop" { "3" } else { "60" };
    command.args(["--test-timeout", test_timeout, "--timeout", "120", "--build-timeout", "300"]);
    if mode != Mode::InPlace {
        command.arg("--template").arg(&template).arg("--work-dir").arg(scratch.join("work"));
    } else {
        // In place, the build goes to the submission's own target/; keep it out of the tree.
        command.env("CARGO_TARGET_DIR", scratch.join("target"));
    }
    // As in a workflow step: files that would let the code under test change later steps.
    let github = scratch.join("github");
    let _ = std::fs::remove_dir_all(&github);
    std::fs::create_dir_all(&github).unwrap();
    let mut github_files = Vec::new();
    for key in ["GITHUB_ENV", "GITHUB_PATH", "GITHUB_OUTPUT", "GITHUB_STEP_SUMMARY"] {
        let file = github.join(key);
        std::fs::write(&file, "").unwrap();
        command.env(key, &file);
        github_files.push(file);
    }
    if mode == Mode::TemplateWithoutNamespaces {
        command.env("XTASK_SANDBOX", "process-group");
    }
    let (code, stdout, stderr) = run_with_watchdog(command, Duration::from_secs(300));
    assert_eq!(code, Some(0), "the grader failed on {name}:\n{stdout}\n{stderr}");
    assert!(snapshot(&template) == before, "grading {name} changed the template");
    for file in &github_files {
        let text = std::fs::read_to_string(file).unwrap();
        assert!(!text.contains("fake-jq"), "{name}: the code under test wrote {}", file.display());
    }

    let text = std::fs::read_to_string(out.join("results.json")).unwrap();
    let results: Value = serde_json::from_str(&text).unwrap();
    let golden = fixture.join(format!("expected_results{suffix}.json"));
    // Nothing else to normalise: results.json has no times, pids or absolute paths.
    let actual = normalise(&text);
    if std::env::var_os("UPDATE_GOLDEN").is_some() {
        std::fs::write(&golden, &actual).unwrap();
    }
    let expected = std::fs::read_to_string(&golden)
        .unwrap_or_else(|e| panic!("{}: {e}; write it with UPDATE_GOLDEN=1", golden.display()));
    assert!(
        actual == expected,
        "results.json of {name} differs from {}:\n--- actual\n{actual}\n--- stderr\n{stderr}\n\
         (UPDATE_GOLDEN=1 rewrites it after a deliberate change)",
        golden.display()
    );
    check_summary_and_junit(&results, &out);
    if JUNIT_GOLDEN.contains(&name) && mode == Mode::Template {
        check_junit_golden(&fixture, &out);
    }
    Graded { results, out, stdout, github_files }
}

/// The fixtures whose `junit.xml` is compared with a golden `expected_junit.xml` (times
/// normalised): those whose test output says nothing that changes from run to run.
const JUNIT_GOLDEN: &[&str] = &["all-pass", "some-fail", "compile-error", "panic"];

/// `time="1.234"` becomes `time="TIME"`.
fn normalise_times(xml: &str) -> String {
    let mut normalised = String::with_capacity(xml.len());
    let mut rest = xml;
    while let Some(at) = rest.find(" time=\"") {
        let (before, after) = rest.split_at(at + " time=\"".len());
        normalised.push_str(before);
        normalised.push_str("TIME");
        rest = &after[after.find('"').unwrap()..];
    }
    normalised.push_str(rest);
    normalised
}

/// The golden files were written by the hand-written writer; quick-junit's report must say the
/// same, element by element.
fn check_junit_golden(fixture: &Path, out: &Path) {
    let actual = normalise_times(&std::fs::read_to_string(out.join("junit.xml")).unwrap());
    let golden = fixture.join("expected_junit.xml");
    let expected =
        std::fs::read_to_string(&golden).unwrap_or_else(|e| panic!("{}: {e}", golden.display()));
    let expected = junit_xml::parse(&expected).unwrap();
    junit_xml::same_report(&expected, &junit_xml::parse(&actual).unwrap())
        .unwrap_or_else(|e| panic!("junit.xml differs from {}: {e}\n{actual}", golden.display()));
}

fn check_summary_and_junit(results: &Value, out: &Path) {
    let points = if results["integrity"]["verified"] == true {
        format!("Points {}/{}", results["score"], results["max_score"])
    } else {
        format!("UNVERIFIED: {}/{} tests passed", results["score"], results["max_score"])
    };
    let summary = std::fs::read_to_string(out.join("summary.md")).unwrap();
    assert!(summary.contains(&points), "{summary}");
    let junit = std::fs::read_to_string(out.join("junit.xml")).unwrap();
    assert!(junit.starts_with("<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<testsuites"));
    let tests = results["tests"].as_array().unwrap();
    assert_eq!(junit.matches("<testcase ").count(), tests.len(), "{junit}");
    let failing = tests.iter().filter(|t| t["status"] == "fail").count();
    let erring = tests.iter().filter(|t| t["status"] == "error").count();
    assert_eq!(junit.matches("<failure ").count(), failing, "{junit}");
    assert_eq!(junit.matches("<error ").count(), erring, "{junit}");
    assert!(junit.ends_with("</testsuites>\n"));
    let report = junit_xml::parse(&junit).unwrap_or_else(|e| panic!("{e}\n{junit}"));
    junit_xml::check_schema(&report).unwrap_or_else(|e| panic!("{e}\n{junit}"));
}

/// Held by the tests that grade escape-and-daemon: each checks that its sleepers are gone, so
/// none may run while another one's grader is still at work.
static DAEMONS: std::sync::Mutex<()> = std::sync::Mutex::new(());

fn daemons() -> std::sync::MutexGuard<'static, ()> {
    DAEMONS.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
}

/// The escape-and-daemon fixture's sleepers (`sleep 987661` ...) are all gone.
fn assert_no_daemon_survives() {
    let survivors: Vec<String> = ["987661", "987662", "987663"]
        .iter()
        .flat_map(|n| processes_with_args(&["sleep", n]))
        .collect();
    assert!(survivors.is_empty(), "the grader left these running: {survivors:?}");
}

fn message_of<'a>(results: &'a Value, test: &str) -> &'a str {
    let tests = results["tests"].as_array().unwrap();
    let test = tests.iter().find(|t| t["name"] == test).unwrap();
    test["message"].as_str().unwrap_or("")
}

#[test]
fn all_pass_scores_every_point() {
    let graded = grade("all-pass", Mode::Template);
    assert_eq!(graded.results["status"], "pass");
    assert_eq!(
        (graded.results["score"].as_u64(), graded.results["max_score"].as_u64()),
        (Some(6), Some(6))
    );
    assert!(graded.stdout.contains("Points 6/6"), "{}", graded.stdout);
}

#[test]
fn some_fail_scores_the_passing_tests() {
    let graded = grade("some-fail", Mode::Template);
    assert_eq!(graded.results["status"], "fail");
    assert_eq!(graded.results["score"], 2);
    let message = message_of(&graded.results, "exercise-1 / sums_a_slice");
    assert!(message.contains("assertion `left == right` failed"), "{message}");
    let todo = message_of(&graded.results, "exercise-2 / echo_prints_one_word");
    assert!(todo.contains("not yet implemented"), "{todo}");
}

#[test]
fn a_compile_error_fails_its_exercise_only() {
    let graded = grade("compile-error", Mode::Template);
    assert_eq!(graded.results["exercises"][0]["status"], "error");
    assert_eq!(graded.results["exercises"][0]["max_score"], 4);
    assert_eq!(graded.results["exercises"][1]["status"], "pass");
    let message = message_of(&graded.results, "exercise-1 / adds_small_numbers");
    assert!(message.contains("does not compile") && message.contains("error[E"), "{message}");
}

#[test]
fn panics_aborts_and_exits_are_failures_and_errors() {
    let graded = grade("panic", Mode::Template);
    let results = &graded.results;
    assert!(message_of(results, "exercise-1 / adds_negative_numbers").contains("negative numbers"));
    assert!(message_of(results, "exercise-1 / sums_a_long_slice").contains("signal 6"));
    let exit = message_of(results, "exercise-2 / echo_separates_words_with_spaces");
    assert!(exit.contains("std::process::exit"), "{exit}");
}

#[test]
fn an_infinite_loop_times_out_and_the_rest_is_graded() {
    let graded = grade("infinite-loop", Mode::Template);
    // The test's own watchdog (2 s) stops it before the grader's limit.
    let message = message_of(&graded.results, "exercise-1 / adds_negative_numbers");
    assert!(message.contains("took longer than 2 s"), "{message}");
    assert!(message.contains("the test's own watchdog"), "{message}");
    let message = message_of(&graded.results, "exercise-1 / sums_a_long_slice");
    assert!(message.contains("took longer than 3 s"), "{message}");
    assert!(message.contains("the grader's limit for one test"), "{message}");
    assert_eq!(graded.results["exercises"][0]["score"], 2);
}

#[test]
fn leftover_processes_are_killed_and_reported() {
    let graded = grade("leftover-child", Mode::Template);
    let message = message_of(&graded.results, "exercise-2 / echo_prints_one_word");
    assert!(message.contains("left 2 processes running"), "{message}");
    assert_eq!(graded.results["score"], 6, "leftovers are noted, not failed");
    let survivors = processes_with_args(&["sleep", "987653"])
        .into_iter()
        .chain(processes_with_args(&["sleep", "987654"]))
        .collect::<Vec<_>>();
    assert!(survivors.is_empty(), "the grader left these running: {survivors:?}");
}

#[test]
fn a_forged_pass_line_a_lying_list_and_a_grader_check_score_nothing() {
    // Before the judge: 20/22 (the constructor's 20 listed tests "passed", exercise 2's
    // forgery saw COURSE_XTASK_RUN); an honest submission of this code scores 0.
    let graded = grade("forged-verdict", Mode::Template);
    let results = &graded.results;
    assert_eq!((results["score"].as_u64(), results["max_score"].as_u64()), (Some(0), Some(6)));
    let message = message_of(results, "exercise-1 / adds_small_numbers");
    assert!(message.contains("checked apart from your code"), "{message}");
}

#[test]
fn a_test_cannot_change_other_tests_its_binary_or_the_template() {
    // Before: exercise 2's tests rewritten before they were built and the binary replaced by
    // a script: 6/6. Honest: 2 (add is right, sum and echo are not written).
    let graded = grade("tamper-others", Mode::Template);
    assert_eq!(graded.results["score"], 2);
    assert_eq!(graded.results["max_score"], 6);
}

#[test]
fn nothing_the_tests_start_outlives_them_or_reaches_the_workflow() {
    let _daemons = daemons();
    let graded = grade("escape-and-daemon", Mode::Template);
    assert_eq!(graded.results["score"], 6);
    let message = message_of(&graded.results, "exercise-2 / echo_prints_one_word");
    assert!(message.contains("left 2 processes running"), "{message}");
    assert_no_daemon_survives();
    let summary = std::fs::read_to_string(&graded.github_files[3]).unwrap();
    assert!(summary.starts_with("# Grade: 6/6 points"), "{summary}");
}

#[test]
fn without_namespaces_the_grader_still_ends_everything_the_tests_start() {
    let _daemons = daemons();
    let graded = grade("escape-and-daemon", Mode::TemplateWithoutNamespaces);
    assert_eq!(graded.results["score"], 6);
    assert_eq!(graded.results["sandbox"], "process group, the grader as subreaper");
    let message = message_of(&graded.results, "exercise-2 / echo_prints_one_word");
    assert!(message.contains("left 2 processes running"), "{message}");
    let message = message_of(&graded.results, "exercise-1 / adds_small_numbers");
    assert!(message.contains("left 1 process running"), "{message}");
    assert_no_daemon_survives();
}

#[test]
fn odd_files_are_reported_by_path_and_never_stop_the_grader() {
    let graded = grade("odd-files", Mode::Template);
    let results = &graded.results;
    assert_eq!((results["score"].as_u64(), results["max_score"].as_u64()), (Some(4), Some(6)));
    let message = results["message"].as_str().unwrap();
    for expected in [
        "exercises/exercise-1/tests/graded.rs (changed: a symbolic link)",
        "exercises/exercise-2/tests/graded.rs (deleted)",
        "exercises/scratch/Cargo.toml (added)",
        "exercises/scratch/src/lib.rs (exercises/scratch is not an exercise of the course",
        "exercises/exercise-2/src/lib.rs (a symbolic link or special file",
    ] {
        assert!(message.contains(expected), "{expected}\n{message}");
    }
}

#[test]
fn test_output_cannot_end_the_summary_s_code_blocks() {
    let graded = grade("fence-forging", Mode::Template);
    assert_eq!(graded.results["score"], 2);
    let summary = std::fs::read_to_string(graded.out.join("summary.md")).unwrap();
    // Outside code blocks (CommonMark: a fence closes with at least as many of its character).
    let mut open: Option<String> = None;
    let mut outside = Vec::new();
    for line in summary.lines() {
        let run: String = line.chars().take_while(|c| *c == '`' || *c == '~').collect();
        match &open {
            None if run.len() >= 3 => open = Some(run),
            Some(fence)
                if run.len() >= fence.len()
                    && run.starts_with(&fence[..1])
                    && line.trim_end() == run =>
            {
                open = None
            }
            None => outside.push(line),
            Some(_) => {}
        }
    }
    assert!(!outside.iter().any(|line| line.contains("50/50")), "{summary}");
}

#[test]
fn in_place_every_adversarial_submission_is_unverified_and_leaves_nothing_behind() {
    let _daemons = daemons();
    // Without a template the student's own build is the judge: a forged score is possible,
    // so it must never read as a grade.
    for name in ["forged-verdict", "tamper-others", "escape-and-daemon", "odd-files"] {
        let graded = grade(name, Mode::InPlace);
        assert_eq!(graded.results["integrity"]["verified"], false, "{name}");
        let points = format!("Points {}/", graded.results["score"]);
        assert!(!graded.stdout.contains(&points), "{name}: {}", graded.stdout);
    }
    assert_no_daemon_survives();
}

#[test]
fn a_tampered_test_file_is_replaced_and_reported() {
    // Its `.cargo/config.toml` would break every build if grading picked it up.
    let graded = grade("tampered-test", Mode::TemplateDefaultOut);
    let results = &graded.results;
    assert_eq!(results["integrity"]["verified"], true);
    assert_eq!(results["exercises"][0]["score"], 0, "graded with the template's tests");
    let message = results["message"].as_str().unwrap();
    assert!(message.contains("exercises/exercise-1/tests/graded.rs (changed)"), "{message}");
    assert!(message.contains("exercises/exercise-2/build.rs (added)"), "{message}");
    assert!(message.contains(".cargo/config.toml (added)"), "{message}");
    assert_eq!(results["exercises"][1]["score"], 2, "built without the student's config");
    let summary = std::fs::read_to_string(graded.out.join("summary.md")).unwrap();
    assert!(summary.contains("exercises/exercise-1/tests/graded.rs (changed)"), "{summary}");
}

#[test]
fn in_place_a_tampered_test_file_makes_the_grade_unverified() {
    let graded = grade("in-place-tampered", Mode::InPlace);
    let results = &graded.results;
    assert_eq!(results["integrity"]["mode"], "manifest");
    assert_eq!(results["integrity"]["verified"], false);
    let message = results["message"].as_str().unwrap();
    assert!(message.starts_with("UNVERIFIED") && message.contains("tests/graded.rs"), "{message}");
    assert!(graded.stdout.contains("UNVERIFIED"), "{}", graded.stdout);
    // Never a plain `Points X/Y`, which GitHub Classroom would read as the grade.
    assert!(!graded.stdout.contains("Points 6/6"), "{}", graded.stdout);
    let summary = std::fs::read_to_string(graded.out.join("summary.md")).unwrap();
    assert!(!summary.contains("Points 6/6") && summary.contains("verified: false"), "{summary}");
}

#[test]
fn huge_output_is_capped_and_the_test_still_passes() {
    let graded = grade("huge-output", Mode::Template);
    let results = &graded.results;
    assert_eq!(results["score"], 6, "{results:#}");
    let test = &results["tests"][0];
    assert!(test["output"].as_str().unwrap().chars().count() <= 500);
    assert!(test["message"].as_str().unwrap().contains("the middle of its output was dropped"));
}

/// `sha256sum` lines for every file but the students' own (the grader's rule, restated).
fn write_manifest(root: &Path) {
    let mut files = Vec::new();
    list_files(root, Path::new(""), &mut files);
    files.retain(|f| !(f.starts_with("exercises/") && f.ends_with("src/lib.rs")));
    files.retain(|f| f != "Cargo.lock");
    files.sort();
    let output = Command::new("sha256sum").args(&files).current_dir(root).output().unwrap();
    assert!(output.status.success());
    std::fs::create_dir_all(root.join(".course")).unwrap();
    std::fs::write(root.join(".course/protected.sha256"), output.stdout).unwrap();
}

fn list_files(root: &Path, relative: &Path, files: &mut Vec<String>) {
    for entry in std::fs::read_dir(root.join(relative)).unwrap() {
        let entry = entry.unwrap();
        let path = relative.join(entry.file_name());
        if entry.file_type().unwrap().is_dir() {
            list_files(root, &path, files);
        } else {
            files.push(path.to_string_lossy().into_owned());
        }
    }
}

/// Copies a tree; symbolic links are followed (the template's) or copied as links (a
/// submission's).
fn copy_tree(from: &Path, to: &Path, follow_links: bool) {
    for entry in std::fs::read_dir(from).unwrap() {
        let entry = entry.unwrap();
        let target = to.join(entry.file_name());
        let kind = entry.file_type().unwrap();
        if kind.is_dir() {
            if entry.file_name() != "target" {
                if target.is_file() {
                    std::fs::remove_file(&target).unwrap();
                }
                copy_tree(&entry.path(), &target, follow_links);
            }
        } else if kind.is_symlink() && !follow_links {
            std::fs::create_dir_all(to).unwrap();
            let _ = std::fs::remove_file(&target);
            std::os::unix::fs::symlink(std::fs::read_link(entry.path()).unwrap(), &target).unwrap();
        } else {
            std::fs::create_dir_all(to).unwrap();
            std::fs::copy(entry.path(), &target).unwrap();
        }
    }
}

/// Runs the grader with a bound on its time: it is killed, and the test fails, past `limit`.
fn run_with_watchdog(mut command: Command, limit: Duration) -> (Option<i32>, String, String) {
    let logs = tempfile::Builder::new().prefix("xtask-grade-").tempdir().unwrap();
    let logs = logs.path();
    let stdout = std::fs::File::create(logs.join("stdout")).unwrap();
    let stderr = std::fs::File::create(logs.join("stderr")).unwrap();
    let mut child = command.stdin(Stdio::null()).stdout(stdout).stderr(stderr).spawn().unwrap();
    let started = Instant::now();
    let status = loop {
        if let Some(status) = child.try_wait().unwrap() {
            break Some(status);
        }
        if started.elapsed() > limit {
            let _ = child.kill();
            let _ = child.wait();
            break None;
        }
        std::thread::sleep(Duration::from_millis(50));
    };
    let stdout = std::fs::read_to_string(logs.join("stdout")).unwrap_or_default();
    let stderr = std::fs::read_to_string(logs.join("stderr")).unwrap_or_default();
    let status =
        status.unwrap_or_else(|| panic!("the grader ran over {limit:?}:\n{stdout}\n{stderr}"));
    (status.code(), stdout, stderr)
}

/// Pids of processes whose command line is exactly `args`.
fn processes_with_args(args: &[&str]) -> Vec<String> {
    let wanted: Vec<u8> = args.iter().flat_map(|a| a.bytes().chain([0])).collect();
    std::fs::read_dir("/proc")
        .unwrap()
        .flatten()
        .filter_map(|entry| entry.file_name().into_string().ok())
        .filter(|pid| pid.bytes().all(|b| b.is_ascii_digit()))
        .filter(|pid| std::fs::read(format!("/proc/{pid}/cmdline")).is_ok_and(|c| c == wanted))
        .filter(|pid| {
            // A zombie waiting for its parent is not running.
            std::fs::read_to_string(format!("/proc/{pid}/stat")).is_ok_and(|stat| {
                !stat.rsplit(')').next().unwrap_or("").trim_start().starts_with('Z')
            })
        })
        .collect()
}
