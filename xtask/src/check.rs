//! `cargo xtask check`: everything an instructor needs to trust before handing the course out.
//!
//! One row per check, then `N passed, N failed`; the exit code is 1 when anything failed.
//! Per exercise: the solution passes the graded tests, the unsolved exercise fails every one
//! of them (so each test tests something), the judge passes every test on the solution's
//! observed values (as `cargo xtask grade` runs them), and the solution binary runs with small
//! arguments and writes what it should (a Markdown table on stdout that parses, CSV files
//! whose rows have the header's width, SVG files that are well-formed XML documents with
//! labelled axes). Then the rest of the workspace: tidy rules, formatting, clippy with
//! warnings denied, the other crates' tests. Last, in a section of its own, the MPI rows
//! (`check/mpi.rs`): skipped, with what to install, where MPI is missing, which fails the
//! check only under `CI=true`.

mod mpi;

use std::{
    path::{Path, PathBuf},
    process::{Command, ExitCode},
    time::Duration,
};

use crate::workspace::{self, Exercise, Limits, Outcome, Result};

#[derive(clap::Args, Debug)]
pub struct CheckArgs {
    /// Check only this exercise (repeat for several); skips the workspace-wide checks.
    #[arg(long = "exercise", value_name = "N")]
    exercises: Vec<u32>,
    /// Only the MPI section (week 4): its workspace rows, or with --exercise those exercises'.
    #[arg(long)]
    mpi_only: bool,
}

/// How long one step may take before it counts as hung; builds share this budget.
const STEP_LIMIT: Duration = Duration::from_secs(30 * 60);
/// Output kept per step, for the failure details.
const OUTPUT_CAP: usize = 256 * 1024;

pub fn run(root: &Path, args: &CheckArgs) -> Result<ExitCode> {
    let all = workspace::exercises(root)?;
    if all.iter().all(|exercise| exercise.solution_dir.is_none()) {
        return Err("this repository has no solutions/ (a student handout?): use \
                    `cargo xtask progress` to see where you are, or `cargo xtask grade`"
            .into());
    }
    let chosen: Vec<&Exercise> = if args.exercises.is_empty() {
        all.iter().collect()
    } else {
        let mut chosen = Vec::new();
        for number in &args.exercises {
            let exercise = all.iter().find(|e| e.number == *number).ok_or_else(|| {
                format!("there is no exercise {number}; the course has {}", numbers(&all))
            })?;
            chosen.push(exercise);
        }
        chosen
    };
    let mut report = Report::default();
    let whole = args.exercises.is_empty();
    if args.mpi_only {
        mpi::section(root, &chosen, whole, &mut report);
        return Ok(report.finish());
    }
    if whole {
        report.record("workspace", "no `todo!` outside exercises/, no ignored tests", tidy(root));
        let fmt = limited(
            workspace::cargo(root).args(["fmt", "--all", "--", "--check", "--color", "never"]),
        );
        report.record("workspace", "cargo fmt --check", fmt.and_then(|o| succeeded(&o)));
        let clippy = limited(workspace::cargo(root).args([
            "clippy",
            "--workspace",
            "--all-targets",
            "--locked",
            "--",
            "-D",
            "warnings",
        ]));
        report.record("workspace", "clippy, warnings denied", clippy.and_then(|o| succeeded(&o)));
        let tests = limited(workspace::cargo(root).args([
            "test",
            "--workspace",
            "--locked",
            "--exclude",
            "exercise-*",
            "--exclude",
            "solution-*",
        ]));
        report.record(
            "workspace",
            "tests of the crates and xtask",
            tests.and_then(|o| succeeded(&o)),
        );
    }
    for exercise in &chosen {
        check_exercise(root, exercise, &mut report);
    }
    if whole {
        report.record(
            "handout",
            "the handout builds, and grades every unsolved exercise 0 points",
            handout_grades(root, &all),
        );
    }
    mpi::section(root, &chosen, whole, &mut report);
    Ok(report.finish())
}

fn check_exercise(root: &Path, exercise: &Exercise, report: &mut Report) {
    let name = exercise.name.as_str();
    if exercise.solution_dir.is_none() {
        report.record(
            name,
            "has a solution",
            Err(format!("solutions/{} is missing", exercise.solution_name())),
        );
        return;
    }
    let solution = exercise.solution_name();
    let solved = graded_tests(root, &solution);
    report.record(
        name,
        "the solution passes the graded tests",
        solved.and_then(|counts| match counts {
            Counts { passed, failed: 0 } if passed > 0 => Ok(format!("{passed} tests")),
            Counts { passed: 0, failed: 0 } => Err("no graded tests ran".to_string()),
            Counts { passed, failed } => Err(format!("{failed} of {} tests fail", passed + failed)),
        }),
    );
    let unsolved = graded_tests(root, name);
    report.record(
        name,
        "the unsolved exercise fails every graded test",
        unsolved.and_then(|counts| match counts {
            Counts { passed: 0, failed } if failed > 0 => Ok(format!("{failed} tests fail")),
            Counts { passed: 0, failed: 0 } => Err("no graded tests ran".to_string()),
            Counts { passed, failed } => Err(format!(
                "{passed} of {} tests pass without the student's code: they test nothing",
                passed + failed
            )),
        }),
    );
    report.record(
        name,
        "the judge (the tests without the student's code) passes the solution's observed values",
        judge_accepts_the_solution(root, exercise),
    );
    match smoke_run(exercise.number) {
        None => report.record(name, "the solution binary runs", Err(no_smoke_run(exercise.number))),
        Some(smoke) => report.record(
            name,
            "the solution binary runs and writes its results",
            run_smoke(root, exercise, smoke),
        ),
    }
}

/// What `cargo xtask grade` does for each test, with the solution as the student's code: the
/// solution's graded test runs and observes its values, and the exercise's own build of the
/// tests (the judge, with the unsolved stubs) replays them and must pass every test. This
/// catches a test that checks something outside `judge::observe!` that the judge cannot see.
fn judge_accepts_the_solution(
    root: &Path,
    exercise: &Exercise,
) -> std::result::Result<String, String> {
    use crate::grade::runner;

    let text = |error: Box<dyn std::error::Error>| error.to_string();
    let source = std::fs::read_to_string(exercise.dir.join("tests/graded.rs"))
        .map_err(|e| format!("{}: {e}", exercise.dir.display()))?;
    if !source.contains("observe!(") {
        return Err("the graded tests do not use judge::observe!".into());
    }
    let build = |package: &str| {
        let as_package = Exercise { name: package.to_string(), ..exercise.clone() };
        runner::build(root, None, &as_package, STEP_LIMIT).map_err(text)?
    };
    let judge = build(&exercise.name)?;
    let subject = build(&exercise.solution_name())?;
    /// Removes the sandbox's directory however the check ends.
    struct Scratch(std::path::PathBuf);
    impl Drop for Scratch {
        fn drop(&mut self) {
            let _ = std::fs::remove_dir_all(&self.0);
        }
    }
    let scratch = Scratch(workspace::fresh_private_dir("xtask-check-judge").map_err(text)?);
    // As the grader does: the sandbox's user runs copies in the private directory, since it
    // may not reach the build directory (a checkout under a directory of mode 700).
    let copy = |binary: &Path, name: &str| {
        runner::Protected::copy(binary, &scratch.0.join("bin").join(name))
            .map(|protected| protected.path)
            .map_err(text)
    };
    let judge = copy(&judge, "judge")?;
    let subject = copy(&subject, "subject")?;
    let sandbox = workspace::Sandbox::probe(&scratch.0).map_err(text)?;
    let limits = Limits { wall_clock: Duration::from_secs(120), output_cap: OUTPUT_CAP };
    let mut list = runner::test_command(&judge, exercise);
    list.args.extend(["--list", "--format", "terse"].map(Into::into));
    let listed = sandbox.run(&list, limits).map_err(text)?;
    let names: Vec<&str> =
        listed.stdout.lines().filter_map(|line| line.strip_suffix(": test")).collect();
    let mut refused = Vec::new();
    for name in &names {
        let args = ["--exact", name, "--test-threads=1", "--nocapture"];
        let mut run = runner::test_command(&subject, exercise);
        run.args.extend(args.map(Into::into));
        let observed = sandbox.run(&run, limits).map_err(text)?;
        let mut replay = runner::test_command(&judge, exercise);
        replay.args.extend(args.map(Into::into));
        replay.env.push((judge::REPLAY.to_string(), "1".into()));
        replay.stdin = Some(
            observed.observations.iter().map(|l| format!("{l}\n")).collect::<String>().into_bytes(),
        );
        let judged = sandbox.run(&replay, limits).map_err(text)?;
        if !(observed.success() && judged.success()) {
            refused.push(format!("{name}:\n{}", judged.stderr.trim()));
        }
    }
    match (names.len(), refused.is_empty()) {
        (0, _) => Err("no graded tests were listed".into()),
        (n, true) => Ok(format!("{n} tests judged, all pass ({})", sandbox.describe())),
        (_, false) => Err(refused.join("\n\n")),
    }
}

fn no_smoke_run(number: u32) -> String {
    format!("xtask/src/check.rs has no smoke run for exercise {number}: add one to SMOKE_RUNS")
}

/// How to run a solution binary quickly, and what it must produce.
struct SmokeRun {
    /// The arguments, split at spaces; `{out}` is replaced by a fresh directory.
    args: &'static str,
    /// Files it writes, relative to that directory.
    files: &'static [&'static str],
}

/// Small arguments for each solution binary, and the files they write.
const SMOKE_RUNS: &[(u32, SmokeRun)] = &[
    (
        1,
        SmokeRun {
            args: "--workers 2 --items 8 --timeline {out}/timeline.svg --csv {out}/speedup.csv",
            files: &["timeline.svg", "speedup.csv"],
        },
    ),
    (
        2,
        SmokeRun {
            args: "--ranks 3 --work 1000 --lists 4 --csv {out}/overhead.csv",
            files: &["overhead.csv"],
        },
    ),
    (3, SmokeRun { args: "--ranks 3 --len 1000 --repeat 2", files: &[] }),
    (4, SmokeRun { args: "--ranks 5", files: &[] }),
    (
        5,
        SmokeRun {
            args: "--max-size 1MiB --reps 5 --budget 4MiB --csv {out}/bandwidth.csv \
                   --samples-csv {out}/samples.csv --time-plot {out}/time.svg \
                   --bandwidth-plot {out}/bandwidth.svg",
            files: &["bandwidth.csv", "samples.csv", "time.svg", "bandwidth.svg"],
        },
    ),
];

fn smoke_run(number: u32) -> Option<&'static SmokeRun> {
    SMOKE_RUNS.iter().find(|(n, _)| *n == number).map(|(_, smoke)| smoke)
}

fn run_smoke(
    root: &Path,
    exercise: &Exercise,
    smoke: &SmokeRun,
) -> std::result::Result<String, String> {
    let out = root.join("target/xtask-check").join(&exercise.name);
    let _ = std::fs::remove_dir_all(&out);
    std::fs::create_dir_all(&out).map_err(|e| format!("cannot create {}: {e}", out.display()))?;
    let out_text = out.to_string_lossy().into_owned();
    let args: Vec<String> =
        smoke.args.split_whitespace().map(|arg| arg.replace("{out}", &out_text)).collect();
    let mut command = workspace::cargo(root);
    command.args(["run", "--quiet", "--locked", "-p", &exercise.solution_name(), "--"]).args(&args);
    let outcome = limited(&mut command)?;
    succeeded(&outcome)?;
    let tables = validate::markdown_tables(&outcome.stdout)?;
    let mut checked = vec![format!("{tables} tables on stdout")];
    for file in smoke.files {
        let path = out.join(file);
        checked.push(validate::output_file(&path)?);
    }
    Ok(checked.join(", "))
}

/// Writes the handout, grades it as CI would, and checks the results: every exercise graded,
/// every test a plain failure (a `todo!`), nothing flagged as changed, 0 points, unverified
/// (graded in place).
fn handout_grades(root: &Path, exercises: &[Exercise]) -> std::result::Result<String, String> {
    let base = root.join("target/xtask-check");
    let dir = base.join("handout");
    let _ = std::fs::remove_dir_all(&dir);
    crate::handout::run(root, &dir)
        .map_err(|e| format!("the handout could not be written: {e}"))?;
    let results_dir = base.join("handout-grade");
    let mut command = workspace::cargo(&dir);
    command
        .args(["xtask", "grade", "--out"])
        .arg(&results_dir)
        // Its own target directory: the handout's xtask binary must not replace this one.
        .env("CARGO_TARGET_DIR", base.join("handout-target"));
    let outcome = limited(&mut command)?;
    succeeded(&outcome)?;
    let path = results_dir.join("results.json");
    let text = std::fs::read_to_string(&path)
        .map_err(|e| format!("{} was not written: {e}", path.display()))?;
    let results: serde_json::Value =
        serde_json::from_str(&text).map_err(|e| format!("{}: {e}", path.display()))?;
    let graded: Vec<&str> = results["exercises"]
        .as_array()
        .map(|list| list.iter().filter_map(|e| e["name"].as_str()).collect())
        .unwrap_or_default();
    let expected: Vec<&str> = exercises.iter().map(|e| e.name.as_str()).collect();
    if graded != expected {
        return Err(format!("graded {graded:?}, expected {expected:?}"));
    }
    let tests = results["tests"].as_array().cloned().unwrap_or_default();
    if let Some(test) = tests.iter().find(|t| t["status"] != "fail") {
        return Err(format!("a test of the unsolved handout did not simply fail: {test}"));
    }
    // Graded in place: never verified, but nothing may differ from the manifest.
    let unchanged = results["integrity"]["changes"].as_array().is_some_and(Vec::is_empty);
    if results["score"] != 0 || results["integrity"]["verified"] != false || !unchanged {
        return Err(format!(
            "expected 0 points and no changed files, got score {} and integrity {}",
            results["score"], results["integrity"]
        ));
    }
    Ok(format!("0/{} points over {} exercises", results["max_score"], graded.len()))
}

/// Passed and failed counts of a package's `graded` test target.
#[derive(Debug, Clone, Copy)]
struct Counts {
    passed: usize,
    failed: usize,
}

fn graded_tests(root: &Path, package: &str) -> std::result::Result<Counts, String> {
    let outcome = limited(
        workspace::cargo(root).args(["test", "--locked", "-p", package, "--test", "graded"]),
    )?;
    if outcome.timed_out {
        return Err(format!("timed out after {} s", outcome.elapsed.as_secs()));
    }
    let counts = parse_counts(&outcome.stdout);
    if counts.is_none() && outcome.code != Some(0) {
        return Err(format!("did not build or run:\n{}", tail(&outcome.stderr, 40)));
    }
    Ok(counts.unwrap_or(Counts { passed: 0, failed: 0 }))
}

/// Reads `test result: FAILED. 3 passed; 9 failed; ...` lines.
fn parse_counts(stdout: &str) -> Option<Counts> {
    let mut total: Option<Counts> = None;
    for line in stdout.lines() {
        let Some(rest) = line.strip_prefix("test result: ") else { continue };
        let number_before = |word: &str| -> usize {
            rest.split(';')
                .find_map(|part| {
                    part.trim().trim_start_matches(|c: char| !c.is_ascii_digit()).strip_suffix(word)
                })
                .and_then(|n| n.trim().parse().ok())
                .unwrap_or(0)
        };
        let counts = total.get_or_insert(Counts { passed: 0, failed: 0 });
        counts.passed += number_before("passed");
        counts.failed += number_before("failed");
    }
    total
}

/// The stub macros, spelled so that this file does not contain them.
const STUBS: [&str; 2] = [concat!("todo", "!("), concat!("unimplemented", "!(")];
/// The attribute that switches a test off, spelled likewise.
const IGNORE_ATTRIBUTE: &str = concat!("#[", "ignore");

fn tidy(root: &Path) -> std::result::Result<String, String> {
    let mut problems = Vec::new();
    let mut n_files = 0;
    for path in rust_files(root) {
        let relative = path.strip_prefix(root).unwrap_or(&path);
        let in_exercises = relative.starts_with("exercises");
        let in_fixtures = relative.starts_with("xtask/tests/fixtures");
        let Ok(text) = std::fs::read_to_string(&path) else { continue };
        n_files += 1;
        for (index, line) in text.lines().enumerate() {
            let place = format!("{}:{}", relative.display(), index + 1);
            let code = line.split("//").next().unwrap_or("");
            if !in_exercises && !in_fixtures && STUBS.iter().any(|stub| code.contains(stub)) {
                problems.push(format!("{place}: a stub outside exercises/"));
            }
            if code.trim_start().starts_with(IGNORE_ATTRIBUTE) {
                problems.push(format!("{place}: an ignored test never runs"));
            }
        }
    }
    if problems.is_empty() { Ok(format!("{n_files} files")) } else { Err(problems.join("\n")) }
}

fn rust_files(root: &Path) -> Vec<PathBuf> {
    let mut found = Vec::new();
    let mut pending = vec![root.to_path_buf()];
    while let Some(dir) = pending.pop() {
        let Ok(entries) = std::fs::read_dir(&dir) else { continue };
        for entry in entries.flatten() {
            let path = entry.path();
            let name = entry.file_name();
            if name == "target" || name.to_string_lossy().starts_with('.') {
                continue;
            }
            if path.is_dir() {
                pending.push(path);
            } else if path.extension().is_some_and(|e| e == "rs") {
                found.push(path);
            }
        }
    }
    found.sort();
    found
}

fn limited(command: &mut Command) -> std::result::Result<Outcome, String> {
    let command = std::mem::replace(command, Command::new("true"));
    workspace::run_limited(command, Limits { wall_clock: STEP_LIMIT, output_cap: OUTPUT_CAP })
        .map_err(|e| format!("could not start: {e}"))
}

fn succeeded(outcome: &Outcome) -> std::result::Result<String, String> {
    if outcome.success() {
        return Ok(format!("{:.0} s", outcome.elapsed.as_secs_f64()));
    }
    if outcome.timed_out {
        return Err(format!("timed out after {} s", outcome.elapsed.as_secs()));
    }
    Err(format!(
        "exit code {:?}; the end of its output:\n{}\n{}",
        outcome.code,
        tail(&outcome.stdout, 30),
        tail(&outcome.stderr, 30)
    ))
}

fn tail(text: &str, n_lines: usize) -> String {
    let lines: Vec<&str> = text.lines().collect();
    lines[lines.len().saturating_sub(n_lines)..].join("\n")
}

fn numbers(exercises: &[Exercise]) -> String {
    let numbers: Vec<String> = exercises.iter().map(|e| e.number.to_string()).collect();
    numbers.join(", ")
}

/// The rows printed so far and the tally.
#[derive(Default)]
struct Report {
    passed: usize,
    failed: usize,
    /// Why rows were skipped (each reason once).
    skipped: Vec<String>,
    n_skipped: usize,
}

/// True under `CI=true` (GitHub Actions, `.ci/run`): there, a skipped row is a failure.
fn in_ci() -> bool {
    std::env::var("CI").is_ok_and(|value| value == "true" || value == "1")
}

impl Report {
    /// A heading for the rows that follow.
    fn section(&self, title: &str) {
        println!("== {title}");
    }

    /// A row that could not run here, and why (with what to install).
    fn skip(&mut self, area: &str, check: &str, reason: &str) {
        self.n_skipped += 1;
        if !self.skipped.iter().any(|r| r == reason) {
            self.skipped.push(reason.to_string());
        }
        println!("SKIP  {area:<12} {check}");
        println!("        {reason}");
    }

    fn record(&mut self, area: &str, check: &str, result: std::result::Result<String, String>) {
        match result {
            Ok(detail) => {
                self.passed += 1;
                println!("ok    {area:<12} {check} ({detail})");
            }
            Err(detail) => {
                self.failed += 1;
                println!("FAIL  {area:<12} {check}");
                for line in detail.lines() {
                    println!("        {line}");
                }
            }
        }
    }

    fn finish(self) -> ExitCode {
        if self.n_skipped == 0 {
            println!("{} passed, {} failed", self.passed, self.failed);
        } else {
            println!("{} passed, {} failed, {} skipped", self.passed, self.failed, self.n_skipped);
            for reason in &self.skipped {
                println!("skipped: {reason}");
            }
        }
        let skipped_in_ci = self.n_skipped > 0 && in_ci();
        if skipped_in_ci {
            println!("CI=true: MPI must be installed here, so skipped rows fail the check");
        }
        if self.failed == 0 && !skipped_in_ci { ExitCode::SUCCESS } else { ExitCode::FAILURE }
    }
}

/// Checks that what a solution produced is well-formed.
mod validate {
    use std::path::Path;

    use quick_xml::{Reader, events::Event};

    /// Counts the Markdown tables in `text`; each must have a separator line and rows of the
    /// header's width.
    pub fn markdown_tables(text: &str) -> Result<usize, String> {
        let lines: Vec<&str> = text.lines().map(str::trim).collect();
        let mut n_tables = 0;
        let mut index = 0;
        while index < lines.len() {
            if !(lines[index].starts_with('|')
                && lines.get(index + 1).is_some_and(|l| is_separator(l)))
            {
                index += 1;
                continue;
            }
            let width = cells(lines[index]).len();
            let mut row = index + 2;
            while row < lines.len() && lines[row].starts_with('|') {
                if cells(lines[row]).len() != width {
                    return Err(format!("table row `{}` does not have {width} cells", lines[row]));
                }
                row += 1;
            }
            if row == index + 2 {
                return Err(format!("the table headed `{}` has no rows", lines[index]));
            }
            n_tables += 1;
            index = row;
        }
        if n_tables == 0 {
            return Err("no Markdown table on stdout".to_string());
        }
        Ok(n_tables)
    }

    fn is_separator(line: &str) -> bool {
        line.starts_with('|') && line.chars().all(|c| matches!(c, '|' | '-' | ':' | ' '))
    }

    fn cells(line: &str) -> Vec<&str> {
        line.trim_matches('|').split('|').collect()
    }

    /// Checks one output file by its extension.
    pub fn output_file(path: &Path) -> Result<String, String> {
        let text = std::fs::read_to_string(path)
            .map_err(|e| format!("{} was not written: {e}", path.display()))?;
        let name = path.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default();
        match path.extension().and_then(|e| e.to_str()) {
            Some("csv") => csv(&text).map(|rows| format!("{name}: {rows} rows")),
            Some("svg") => svg(&text).map(|texts| format!("{name}: {texts} labels")),
            _ => Ok(format!("{name}: {} bytes", text.len())),
        }
        .map_err(|e| format!("{}: {e}", path.display()))
    }

    fn csv(text: &str) -> Result<usize, String> {
        let mut lines = text.lines();
        let header = lines.next().ok_or("the file is empty")?;
        let width = header.split(',').count();
        let mut n_rows = 0;
        for line in lines {
            // Quoted cells with commas are not used by the course's CSV files.
            if line.split(',').count() != width {
                return Err(format!("the row `{line}` does not have {width} cells"));
            }
            n_rows += 1;
        }
        if n_rows == 0 {
            return Err("no rows under the header".to_string());
        }
        Ok(n_rows)
    }

    /// A whole SVG document: well-formed XML (read with quick-xml) whose one root element is
    /// `<svg>`, with at least 3 `<text>` elements. Returns how many.
    fn svg(text: &str) -> Result<usize, String> {
        let mut reader = Reader::from_str(text);
        let mut depth = 0usize;
        let mut root = None;
        let mut n_texts = 0;
        loop {
            let event = reader.read_event().map_err(|e| {
                format!("not well-formed XML (at byte {}): {e}", reader.error_position())
            })?;
            let element = match &event {
                Event::Start(element) | Event::Empty(element) => element,
                // quick-xml checks that it closes the element last opened.
                Event::End(_) => {
                    depth -= 1;
                    continue;
                }
                Event::Text(text) if depth == 0 && !text.iter().all(u8::is_ascii_whitespace) => {
                    return Err("text outside the root element".to_string());
                }
                Event::Eof => break,
                _ => continue,
            };
            if depth == 0 && root.replace(element.local_name().as_ref().to_vec()).is_some() {
                return Err("more than one root element".to_string());
            }
            if let Some(Err(e)) = element.attributes().find(Result::is_err) {
                return Err(format!("not well-formed XML: {e}"));
            }
            if element.local_name().as_ref() == b"text" {
                n_texts += 1;
            }
            if matches!(event, Event::Start(_)) {
                depth += 1;
            }
        }
        if depth != 0 {
            return Err("not well-formed XML: an element is not closed".to_string());
        }
        if root.as_deref() != Some(b"svg") {
            return Err("not a whole SVG document: the root element is not <svg>".to_string());
        }
        if n_texts < 3 {
            return Err(
                "fewer than 3 text labels: a plot needs a title and labelled axes".to_string()
            );
        }
        Ok(n_texts)
    }

    #[cfg(test)]
    mod tests {
        use super::*;

        #[test]
        fn markdown_tables_must_have_rows_of_the_headers_width() {
            let good = "intro\n| a | b |\n|--:|--:|\n| 1 | 2 |\n\n| c |\n|---|\n| 3 |\n";
            assert_eq!(markdown_tables(good), Ok(2));
            assert!(markdown_tables("| a | b |\n|---|---|\n| 1 |\n").is_err());
            assert!(markdown_tables("| a |\n|---|\n").is_err());
            assert!(markdown_tables("no table").is_err());
        }

        #[test]
        fn csv_rows_must_match_the_header() {
            assert_eq!(csv("a,b\n1,2\n3,4\n"), Ok(2));
            assert!(csv("a,b\n1\n").is_err());
            assert!(csv("a,b\n").is_err());
        }

        #[test]
        fn svg_must_be_whole_and_labelled() {
            let labelled = "<svg><text>t</text><text>x</text><text>y</text></svg>";
            assert_eq!(svg(labelled), Ok(3));
            assert!(svg("<svg><text>t</text>").is_err());
            assert!(svg("<svg></svg>").is_err());
            let declared = "<?xml version=\"1.0\"?>\n<svg xmlns=\"http://www.w3.org/2000/svg\">\
                            <text x=\"1\">t</text><text>x</text><text/></svg>\n";
            assert_eq!(svg(declared), Ok(3));
            for broken in [
                "<svg><text>t</text><text>x</text><text>y</svg>",
                "<svg><text>t</text><text>x</text><text>y</text>",
                "<svg><text/><text/><text/></svg><svg/>",
                "<svg><text a=\"1\" a=\"2\"/><text/><text/></svg>",
                "<svg><text/><text/><text/></svg> trailing",
                "<g><text/><text/><text/></g>",
            ] {
                assert!(svg(broken).is_err(), "{broken}");
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn test_counts_add_up_over_all_result_lines() {
        let output = "running 3 tests\ntest result: FAILED. 1 passed; 2 failed; 0 ignored; \
                      0 measured; 0 filtered out; finished in 0.1s\n\
                      test result: ok. 4 passed; 0 failed; 0 ignored\n";
        let counts = parse_counts(output).unwrap();
        assert_eq!((counts.passed, counts.failed), (5, 2));
        assert!(parse_counts("error: could not compile").is_none());
    }
}
