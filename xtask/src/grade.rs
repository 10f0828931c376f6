//! `cargo xtask grade`: grades the exercises of a student repository, for CI.
//!
//! # What is graded, and with which tests
//!
//! A student writes `exercises/*/src/**/*.rs`, except `src/main.rs` and `src/given.rs`
//! (the *editable* files). Markdown under `exercises/` (answers), `Cargo.lock` and the
//! manifest itself are ignored. Every other file is *protected*: tests, manifests, the core
//! crates, this xtask, CI configuration.
//!
//! * `--template DIR` (what CI should use): DIR is a pristine checkout of the course
//!   template. It is copied to `WORK/workspace` (without `.git` and `target`; WORK is
//!   `--work-dir`, by default `TEMPLATE/target/grade-work`, never inside the submission, so
//!   that no `.cargo/config.toml` or `rust-toolchain.toml` of the student's applies; its
//!   `WORK/target` is kept from run to run), the
//!   submission's editable files are copied on top, and grading happens there, so edited
//!   tests or manifests cannot change the grade. Every protected file that differs is still
//!   reported (changed, deleted or added) in `results.json` (`integrity`, `message`), the
//!   summary and the terminal; the grade stays valid (`integrity.verified: true`). Run the
//!   grader *from the template*, so that a student's edits to the xtask don't run either:
//!   `cd template && cargo xtask grade --submission ../student --template . --out ../grade`.
//! * Without `--template`, the submission is graded in place, and its protected files are
//!   checked against `.course/protected.sha256` (`sha256sum` format, written by
//!   `cargo xtask handout` through [`protected_files`] and [`write_manifest`]), and every
//!   difference is reported. Such a grade is never verified (`integrity.verified: false`, an
//!   `UNVERIFIED` message everywhere, no `Points X/Y` line): the manifest lives in the same
//!   repository, and the judge is built from the student's own workspace. This mode is for
//!   students checking their work; it catches mistakes, not cheats.
//!
//! # How each exercise is run
//!
//! 1. Builds, before any student code runs: in template mode the graded tests against the
//!    pristine template (the *judge*), then, with the student's files laid over it, against
//!    the student's crate (the *subject*), each `cargo test -p exercise-N --test graded
//!    --no-run` within what is left of `--build-timeout` (all builds together). A build
//!    failure makes every test of the exercise `error`, with the compiler's errors. Binaries
//!    are copied into the grader's private directory and checked before each use.
//! 2. `<judge> --list --format terse` gives the tests (the template's), in file order.
//! 3. Each test runs alone in the sandbox (`workspace::Sandbox`: as `nobody` in a PID
//!    namespace when the grader is root, with an explicit environment): `<subject> --exact
//!    NAME --include-ignored --test-threads=1 --nocapture`, under `--test-timeout` and what is
//!    left of the exercise's budget `--timeout` and of the run's `--deadline`. Output is
//!    capped (64 KiB per stream kept, the rest read and dropped; `observed:` lines are kept
//!    apart).
//! 4. If the subject passed, the judge runs the same test with `JUDGE_REPLAY=1` and the
//!    subject's observations on stdin; the test passes only if the judge passes it. (Tests
//!    that do not use `judge::observe!` are graded on the subject's report: `judged: false`.)
//!
//! The subject *fails* on libtest's own failure report; anything else is an *error*: a
//! time-out (the grader's limit, or the graded test's own watchdog), a crash (a signal), or an
//! exit before the test finished (`std::process::exit`). Processes a test leaves running are
//! ended with its namespace; the test keeps its status, and its message and
//! `leftover_processes` say how many there were. Panic reports lose their thread ids, and
//! `RUST_BACKTRACE=0`, so messages are the same from run to run.
//!
//! # Scores and outputs
//!
//! One point per test; an exercise's maximum is its number of tests. In `--out` (default
//! `SUBMISSION/target/grade`):
//!
//! * `results.json`: Exercism's test-runner format, version 2 (`version`, `status`
//!   pass|fail|error, `message`, `tests[]` with `name` ("exercise-1 / test_name"), `status`,
//!   `message`, `output` (at most 500 characters), `test_code`), plus `score`, `max_score`,
//!   `exercises[]` (`name`, `status`, `score`, `max_score`, `message`) and `integrity`
//!   (`mode` template|manifest|none, `verified`, `changes[]` of `path` and `change`). The
//!   status is `error` only when no exercise compiled.
//! * `summary.md`: a table per exercise, details of what failed, and `Points X/Y`; appended
//!   to `$GITHUB_STEP_SUMMARY` when that is set. (The workflow turns `score`/`max_score`
//!   into the `Points X/Y` annotation that GitHub Classroom reads.)
//! * `--junit PATH`: JUnit XML, one `testsuite` per exercise.
//!
//! The exit code is 0 whenever grading ran, whatever the score (Exercism's convention), and 2
//! when the grader itself could not run (a missing template, an unknown exercise, ...).

mod integrity;
mod report;
pub(crate) mod runner;

use std::{
    path::{Path, PathBuf},
    process::ExitCode,
    time::{Duration, Instant},
};

pub use integrity::{protected_files, write_manifest};

use crate::workspace::{self, Result, Sandbox};

/// Grade the exercises of a student repository and write the results.
#[derive(Debug, clap::Args)]
pub struct GradeArgs {
    /// The student's repository [default: this project].
    #[arg(long, value_name = "DIR")]
    pub submission: Option<PathBuf>,
    /// A pristine checkout of the course template: its tests, manifests and crates are
    /// used, and only the submission's exercises/*/src/**/*.rs (but main.rs and given.rs).
    #[arg(long, value_name = "DIR")]
    pub template: Option<PathBuf>,
    /// Where to write results.json and summary.md [default: SUBMISSION/target/grade].
    #[arg(long, value_name = "DIR")]
    pub out: Option<PathBuf>,
    /// With --template: where to build the grading workspace (the template with the
    /// student's files) and its target directory [default: TEMPLATE/target/grade-work].
    #[arg(long, value_name = "DIR", requires = "template")]
    pub work_dir: Option<PathBuf>,
    /// Also write JUnit XML to this file.
    #[arg(long, value_name = "PATH")]
    pub junit: Option<PathBuf>,
    /// Grade only this exercise (repeatable): `--exercise 1 --exercise 3`.
    #[arg(long = "exercise", value_name = "N")]
    pub exercises: Vec<u32>,
    /// Seconds all the tests of one exercise may take together (builds not included).
    #[arg(long, value_name = "SECS", default_value_t = 240)]
    pub timeout: u64,
    /// Seconds one test may take (the graded tests' own watchdog stops them after 60 s).
    #[arg(long, value_name = "SECS", default_value_t = 90)]
    pub test_timeout: u64,
    /// Seconds all the builds may take together (the course's tests and the student's).
    #[arg(long, value_name = "SECS", default_value_t = 900)]
    pub build_timeout: u64,
    /// Seconds the whole grading may take; tests not run by then are errors. Keep it below
    /// the CI job's limit (`timeout-minutes` in classroom.yml).
    #[arg(long, value_name = "SECS", default_value_t = 2100)]
    pub deadline: u64,
}

pub fn run(root: &Path, args: &GradeArgs) -> Result<ExitCode> {
    let started = Instant::now();
    let deadline = started + Duration::from_secs(args.deadline);
    let cwd = std::env::current_dir()?;
    let absolute = |path: &Path| -> Result<PathBuf> {
        let path = cwd.join(path);
        path.canonicalize().map_err(|e| format!("{}: {e}", path.display()).into())
    };
    let submission = match &args.submission {
        Some(dir) => absolute(dir)?,
        None => root.to_path_buf(),
    };
    let out = match &args.out {
        Some(dir) => cwd.join(dir),
        None => submission.join("target/grade"),
    };
    std::fs::create_dir_all(&out).map_err(|e| format!("cannot create {}: {e}", out.display()))?;
    let out = out.canonicalize().map_err(|e| format!("{}: {e}", out.display()))?;
    let budget = runner::Budget {
        build: Duration::from_secs(args.build_timeout),
        test: Duration::from_secs(args.test_timeout),
        exercise: Duration::from_secs(args.timeout),
    };

    // The grader's own directory: test binaries, the sandbox's reports and homes. Student code
    // runs as another user (or in a namespace) and cannot write here.
    let private = Private::create()?;
    let sandbox = Sandbox::probe(&private.0)?;
    let bin = private.0.join("bin");
    let building = Instant::now();
    let build_left = || budget.build.saturating_sub(building.elapsed());

    let (work, target_dir, integrity, exercises, mut prepared) = match &args.template {
        Some(template) => {
            let template = absolute(template)?;
            if !template.join("exercises").is_dir() {
                return Err(format!(
                    "{} is not a course template: it has no exercises/",
                    template.display()
                )
                .into());
            }
            // Not inside the submission: cargo and rustup read `.cargo/config.toml` and
            // `rust-toolchain.toml` from every parent directory, and those are the student's.
            let base = match &args.work_dir {
                Some(dir) => cwd.join(dir),
                None => template.join("target/grade-work"),
            };
            std::fs::create_dir_all(&base)
                .map_err(|e| format!("cannot create {}: {e}", base.display()))?;
            let base = base.canonicalize()?;
            if base.starts_with(&submission) && submission != template {
                return Err(format!(
                    "the work directory {} is inside the submission, whose .cargo/config.toml \
                     and rust-toolchain.toml would apply to it: choose another --work-dir",
                    base.display()
                )
                .into());
            }
            let work = base.join("workspace");
            let target_dir = base.join("target");
            // First the judges: the graded tests built against the template's own crates,
            // before any file of the student's is in the workspace.
            integrity::copy_template(&template, &work, &out)?;
            let exercises = chosen(&work, &args.exercises)?;
            let mut judges = Vec::new();
            for exercise in &exercises {
                eprintln!("building the course's tests of {} ...", exercise.name);
                let built = runner::build(&work, Some(&target_dir), exercise, build_left())?;
                judges.push(match built {
                    Ok(binary) => Ok(runner::Protected::copy(
                        &binary,
                        &bin.join(format!("judge-{}", exercise.name)),
                    )?),
                    Err(message) => Err(format!(
                        "the course template's own tests of {} do not build (a problem of the \
                         course, not yours):\n{message}",
                        exercise.name
                    )),
                });
            }
            let integrity = integrity::overlay(&template, &submission, &work, &out)?;
            let mut prepared = Vec::new();
            for (exercise, judge) in exercises.iter().zip(judges) {
                eprintln!("building {} ...", exercise.name);
                let source = read_source(exercise);
                prepared.push(match judge {
                    Err(message) => runner::Prepared::Failed { message, names: Vec::new() },
                    Ok(judge) => {
                        let names = runner::list(&judge, exercise, &source, &sandbox)?;
                        let built =
                            runner::build(&work, Some(&target_dir), exercise, build_left())?;
                        ready(exercise, &bin, &source, judge, names, built)?
                    }
                });
            }
            (work, Some(target_dir), integrity, exercises, prepared)
        }
        None => {
            let integrity = integrity::verify_manifest(&submission, &out)?;
            let exercises = chosen(&submission, &args.exercises)?;
            let mut prepared = Vec::new();
            for exercise in &exercises {
                eprintln!("building {} ...", exercise.name);
                let source = read_source(exercise);
                let built = runner::build(&submission, None, exercise, build_left())?;
                // No template: the judge is the student's own build (the grade is unverified).
                prepared.push(match built {
                    Err(message) => runner::Prepared::Failed { message, names: Vec::new() },
                    Ok(binary) => {
                        let judge = runner::Protected::copy(
                            &binary,
                            &bin.join(format!("judge-{}", exercise.name)),
                        )?;
                        let names = runner::list(&judge, exercise, &source, &sandbox)?;
                        ready(exercise, &bin, &source, judge, names, Ok(binary))?
                    }
                });
            }
            (submission.clone(), None, integrity, exercises, prepared)
        }
    };
    let _ = &target_dir;

    // Every binary is built: only now does any student code run.
    let mut runs = Vec::new();
    for (exercise, prepared) in exercises.iter().zip(prepared.iter_mut()) {
        eprintln!("grading {} ...", exercise.name);
        let source = read_source(exercise);
        let mut run =
            runner::grade_exercise(exercise, &source, prepared, &sandbox, budget, deadline)?;
        // Absolute paths of the grading workspace say nothing to the student.
        let prefix = format!("{}/", work.display());
        let strip = |text: &mut String| *text = text.replace(&prefix, "");
        if let Some(message) = &mut run.message {
            strip(message);
        }
        for test in &mut run.tests {
            test.message.as_mut().map(strip);
            strip(&mut test.output);
        }
        runs.push(run);
    }

    let results = report::results(&runs, &integrity, sandbox.describe());
    let json = serde_json::to_string_pretty(&results)? + "\n";
    write(&out.join("results.json"), &json)?;
    let markdown = report::markdown(&results, &runs);
    write(&out.join("summary.md"), &markdown)?;
    if let Some(step_summary) = std::env::var_os("GITHUB_STEP_SUMMARY").filter(|s| !s.is_empty()) {
        use std::io::Write;
        let path = PathBuf::from(step_summary);
        let appended = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&path)
            .and_then(|mut file| file.write_all(markdown.as_bytes()));
        if let Err(e) = appended {
            eprintln!("warning: cannot append the summary to {}: {e}", path.display());
        }
    }
    if let Some(junit) = &args.junit {
        write(&cwd.join(junit), &report::junit(&runs)?)?;
    }
    print!("{}", report::terminal(&results, &runs));
    println!(
        "Results: {} ({:.0} s)",
        out.join("results.json").display(),
        started.elapsed().as_secs_f64()
    );
    Ok(ExitCode::SUCCESS)
}

/// The exercises of `root`, or only the `wanted` ones.
fn chosen(root: &Path, wanted: &[u32]) -> Result<Vec<workspace::Exercise>> {
    let mut exercises = workspace::exercises(root)?;
    for number in wanted {
        if !exercises.iter().any(|e| e.number == *number) {
            return Err(format!("there is no exercise {number} in {}", root.display()).into());
        }
    }
    if !wanted.is_empty() {
        exercises.retain(|e| wanted.contains(&e.number));
    }
    Ok(exercises)
}

/// The graded test file as the course wrote it (in template mode, the template's).
fn read_source(exercise: &workspace::Exercise) -> String {
    std::fs::read_to_string(exercise.dir.join("tests/graded.rs")).unwrap_or_default()
}

/// An exercise whose judge listed its tests and whose subject built.
fn ready(
    exercise: &workspace::Exercise,
    bin: &Path,
    source: &str,
    judge: runner::Protected,
    names: std::result::Result<Vec<String>, String>,
    built: std::result::Result<PathBuf, String>,
) -> Result<runner::Prepared> {
    let names = match names {
        Ok(names) => names,
        Err(message) => return Ok(runner::Prepared::Failed { message, names: Vec::new() }),
    };
    Ok(match built {
        Err(message) => runner::Prepared::Failed { message, names },
        Ok(binary) => runner::Prepared::Ready {
            subject: runner::Protected::copy(
                &binary,
                &bin.join(format!("subject-{}", exercise.name)),
            )?,
            judge,
            names,
            judged: source.contains("observe!("),
        },
    })
}

/// The grader's private directory, under the system's temporary directory, removed at the
/// end: readable (its binaries run as `nobody`) but writable only by the grader.
struct Private(PathBuf);

impl Private {
    fn create() -> Result<Private> {
        // Never a fixed name: as root in a shared /tmp, a name another user can guess could be
        // a symbolic link planted there, and the test binaries would be written through it.
        workspace::fresh_private_dir("course-grade").map(Private)
    }
}

impl Drop for Private {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// Writes `text` to `path`, replacing whatever is there (a directory too: the output must be
/// the grader's file).
fn write(path: &Path, text: &str) -> Result<()> {
    if let Some(parent) = path.parent() {
        std::fs::create_dir_all(parent)
            .map_err(|e| format!("cannot create {}: {e}", parent.display()))?;
    }
    if let Ok(meta) = std::fs::symlink_metadata(path)
        && !meta.is_file()
    {
        eprintln!("warning: {} was not a file; it is replaced", path.display());
        let removed =
            if meta.is_dir() { std::fs::remove_dir_all(path) } else { std::fs::remove_file(path) };
        removed.map_err(|e| format!("cannot replace {}: {e}", path.display()))?;
    }
    std::fs::write(path, text).map_err(|e| format!("cannot write {}: {e}", path.display()).into())
}
