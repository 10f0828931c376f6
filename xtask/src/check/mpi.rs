//! The MPI section of `cargo xtask check` (week 4), after every other row.
//!
//! Without `mpirun`, `mpicc` or libclang every MPI row is listed as skipped, with what is
//! missing and the install line; the check then fails only under `CI=true`, where MPI must be
//! there. Every job runs under `mpirun --timeout` ([`JOB_LIMIT`]; Open MPI ends it with exit
//! code 110), with `run_limited`'s kill of the whole process group only as a backstop a little
//! later, and after each job no process of the row's binary may be left in `/proc`.
//!
//! # Adding rows
//!
//! A row is an [`MpiRow`]: a release build ([`Build`]: a package, with or without its `mpi`
//! feature), a list of [`Run`]s of the binary (on its own, or under `mpirun -n N`), and
//! `expect`, which decides from what the runs did ([`Ran`]). The two rows every exercise with
//! an MPI path should have are one line each, in [`EXERCISE_ROWS`]:
//!
//! ```text
//! (4, |exercise| vec![
//!     // solution-4: `--ranks 4` locally, `mpirun -n 4`, `--ranks 5`, `mpirun -n 5`: same tables
//!     MpiRow::same_as_local(exercise, &[4, 5], &["--calls", "20"], deterministic::before_mpi_heading),
//!     // exercise-4: fails under `mpirun -n 4` with the same "not written yet" place as locally
//!     MpiRow::fails_as_locally(exercise, 4, &[]),
//! ]),
//! ```
//!
//! What "the same" means is a function of the output in [`deterministic`]: what does not
//! depend on timing, process ids or the machine. When the first function the MPI path reaches
//! is not the one a local run reaches first (exercise 3's MPI path runs only `gather`, a
//! local run stops first in `gather_shared_end`), [`MpiRow::fails_in`] names it.

use std::{
    path::{Path, PathBuf},
    time::Duration,
};

use super::{Report, limited, succeeded};
use crate::{
    mpi::{self, Build},
    workspace::{self, Exercise, Limits, Outcome},
};

/// The time limit of every job (`mpirun --timeout`): a hung row ends with exit code 110.
pub const JOB_LIMIT: Duration = Duration::from_secs(120);
/// How long after [`JOB_LIMIT`] the whole process group is killed, if mpirun has not ended.
const BACKSTOP: Duration = Duration::from_secs(30);
/// Output kept per run.
const OUTPUT_CAP: usize = 256 * 1024;
/// The area of the rows that are not about one exercise.
const AREA: &str = "mpi";

/// What a binary built without MPI prints when mpirun starts it (`course::run`, `mp-mpi`).
pub const BUILT_WITHOUT_MPI: &str = "built without MPI";
/// `mp-mpi`'s program of MPI scenarios; `panic`: rank 1 panics while the others wait for it.
const SELFTEST: &str = "mp-mpi-selftest";
/// What its rank 1 says when it panics.
const PANIC_MESSAGE: &str = "deliberate panic on rank 1";

/// A row's verdict on its runs: `Ok(detail)` or `Err(why)`.
pub type Expect = Box<dyn Fn(&[Ran]) -> Result<String, String>>;

/// An exercise's MPI rows, made from the exercise.
type ExerciseRows = fn(&Exercise) -> Vec<MpiRow>;

/// One MPI row of `check`: build, run, judge.
pub struct MpiRow {
    /// The first column: `mpi`, or the exercise's name.
    pub area: String,
    /// What the row checks, as the summary prints it.
    pub check: String,
    /// The release build whose binary the runs start.
    pub build: Build,
    /// The runs, in order; each under [`JOB_LIMIT`].
    pub runs: Vec<Run>,
    /// The verdict on the runs (in the order of `runs`): `Ok(detail)` or `Err(why)`. A run
    /// that leaves a process of the binary behind fails the row whatever `expect` says.
    pub expect: Expect,
}

/// One run of a row's binary.
#[derive(Debug, Clone)]
pub enum Run {
    /// The binary on its own (its local path: `mp::launch`), with these arguments.
    Local(Vec<String>),
    /// `mpirun -n ranks` with this machine's flags (`mpi::job`) and these arguments.
    Mpirun { ranks: usize, args: Vec<String> },
}

/// What a run did.
#[derive(Debug)]
pub struct Ran {
    /// The command line, for messages (`mpirun -n 4 ... target/release/solution-4`).
    pub command: String,
    pub outcome: Outcome,
}

impl Ran {
    /// "exit code 2", "killed by signal 9", "timed out (mpirun's limit)"...
    pub fn status(&self) -> String {
        match (self.outcome.code, self.outcome.signal) {
            (Some(mpi::TIMED_OUT), _) => format!(
                "exit code {} (mpirun's time limit of {} s)",
                mpi::TIMED_OUT,
                JOB_LIMIT.as_secs()
            ),
            (Some(code), _) => format!("exit code {code}"),
            (None, Some(signal)) if self.outcome.timed_out => {
                format!(
                    "killed (signal {signal}) by check's backstop: mpirun's limit did not end it"
                )
            }
            (None, Some(signal)) => format!("killed by signal {signal}"),
            (None, None) => "no exit status".to_string(),
        }
    }

    /// The command, its status and the end of its output: the detail of a failed row.
    pub fn describe(&self) -> String {
        format!(
            "`{}`: {}\n{}\n{}",
            self.command,
            self.status(),
            super::tail(&self.outcome.stdout, 15),
            super::tail(&self.outcome.stderr, 15)
        )
    }
}

impl MpiRow {
    /// The solution's binary, built with MPI, prints the same thing (after `deterministic`,
    /// which keeps what does not depend on timing) with `--ranks N` on its own and under
    /// `mpirun -n N`, for each N of `ranks`. `args` go to both.
    pub fn same_as_local(
        exercise: &Exercise,
        ranks: &[usize],
        args: &[&str],
        deterministic: fn(&str) -> String,
    ) -> MpiRow {
        let args: Vec<String> = args.iter().map(|a| a.to_string()).collect();
        let mut runs = Vec::new();
        for &n in ranks {
            let mut local = args.clone();
            local.extend(["--ranks".to_string(), n.to_string()]);
            runs.push(Run::Local(local));
            runs.push(Run::Mpirun { ranks: n, args: args.clone() });
        }
        let shown: Vec<String> = ranks.iter().map(|n| n.to_string()).collect();
        MpiRow {
            area: exercise.name.clone(),
            check: format!(
                "the solution prints the same under `mpirun -n N` as with `--ranks N` (N = {})",
                shown.join(", ")
            ),
            build: Build { package: exercise.solution_name(), mpi: true, bin: None },
            runs,
            expect: Box::new(move |ran| {
                let mut compared = Vec::new();
                for pair in ran.chunks(2) {
                    let [local, under_mpi] = pair else { return Err("a run is missing".into()) };
                    for run in pair {
                        if !run.outcome.success() {
                            return Err(run.describe());
                        }
                    }
                    let (want, got) = (
                        deterministic(&local.outcome.stdout),
                        deterministic(&under_mpi.outcome.stdout),
                    );
                    if want.trim().is_empty() {
                        return Err(format!("`{}` printed nothing to compare", local.command));
                    }
                    if want != got {
                        return Err(format!(
                            "`{}` and `{}` differ:\n{}",
                            local.command,
                            under_mpi.command,
                            first_difference(&want, &got)
                        ));
                    }
                    compared.push(format!("{} lines", want.lines().count()));
                }
                Ok(format!("same output: {}", compared.join(", ")))
            }),
        }
    }

    /// The unsolved exercise's binary, built with MPI, fails under `mpirun -n ranks` as it
    /// does on its own with `--ranks ranks`: a non-zero exit that is not mpirun's time limit,
    /// and the same "not written yet" place (the student's file and line).
    pub fn fails_as_locally(exercise: &Exercise, ranks: usize, args: &[&str]) -> MpiRow {
        let args: Vec<String> = args.iter().map(|a| a.to_string()).collect();
        let mut local = args.clone();
        local.extend(["--ranks".to_string(), ranks.to_string()]);
        MpiRow {
            area: exercise.name.clone(),
            check: format!(
                "the unsolved exercise fails under `mpirun -n {ranks}` as it does locally"
            ),
            build: Build { package: exercise.name.clone(), mpi: true, bin: None },
            runs: vec![Run::Local(local), Run::Mpirun { ranks, args }],
            expect: Box::new(|ran| {
                let mut places = Vec::new();
                for run in ran {
                    let failed_itself =
                        run.outcome.code.is_some_and(|code| code != 0 && code != mpi::TIMED_OUT);
                    if !failed_itself {
                        return Err(format!("expected it to fail by itself: {}", run.describe()));
                    }
                    let place = unwritten_places(&run.outcome.stderr);
                    if place.is_empty() {
                        return Err(format!("no \"not written yet\" message: {}", run.describe()));
                    }
                    places.push(place);
                }
                if places.windows(2).any(|pair| pair[0] != pair[1]) {
                    return Err(format!("not the same place: {places:?}"));
                }
                Ok(format!("not written yet at {}", places[0].join(", ")))
            }),
        }
    }

    /// The unsolved exercise's binary, built with MPI, fails under `mpirun -n ranks` by itself
    /// (non-zero, not mpirun's time limit) with the "not written yet" message at the `todo!`
    /// of `function` in its `src/lib.rs`: for an MPI path whose first call to the student's
    /// code is not the local run's.
    pub fn fails_in(exercise: &Exercise, ranks: usize, args: &[&str], function: &str) -> MpiRow {
        let args: Vec<String> = args.iter().map(|a| a.to_string()).collect();
        let lib = exercise.dir.join("src/lib.rs");
        let place = std::fs::read_to_string(&lib)
            .map_err(|e| format!("cannot read {}: {e}", lib.display()))
            .and_then(|source| {
                todo_place(&source, function)
                    .ok_or_else(|| format!("no `todo!` in `fn {function}` of {}", lib.display()))
            })
            .map(|(line, column)| {
                format!("exercises/{}/src/lib.rs:{line}:{column}", exercise.name)
            });
        MpiRow {
            area: exercise.name.clone(),
            check: format!(
                "the unsolved exercise fails under `mpirun -n {ranks}` at the `todo!` of `{function}`"
            ),
            build: Build { package: exercise.name.clone(), mpi: true, bin: None },
            runs: vec![Run::Mpirun { ranks, args }],
            expect: Box::new(move |ran| {
                let expected = place.clone()?;
                let run = &ran[0];
                if !run.outcome.code.is_some_and(|code| code != 0 && code != mpi::TIMED_OUT) {
                    return Err(format!("expected it to fail by itself: {}", run.describe()));
                }
                let places = unwritten_places(&run.outcome.stderr);
                if places != [expected.clone()] {
                    return Err(format!(
                        "expected \"not written yet\" at {expected} only, saw {places:?}: {}",
                        run.describe()
                    ));
                }
                Ok(format!("{}, not written yet at {expected}", run.status()))
            }),
        }
    }
}

/// The line and column (both from 1) of the first `todo!` in `fn function` of `source`.
fn todo_place(source: &str, function: &str) -> Option<(usize, usize)> {
    let lines: Vec<&str> = source.lines().collect();
    let start = lines.iter().position(|line| {
        let line = line.trim_start();
        let line = line.strip_prefix("pub ").unwrap_or(line);
        line.strip_prefix("fn ")
            .and_then(|rest| rest.strip_prefix(function))
            .is_some_and(|rest| rest.starts_with(['(', '<']))
    })?;
    // Spelled in two pieces so that check's own scan for stubs does not flag this file.
    let todo = concat!("todo", "!(");
    let (index, line) = lines.iter().enumerate().skip(start).find(|(_, l)| l.contains(todo))?;
    let column = line[..line.find(todo)?].chars().count() + 1;
    Some((index + 1, column))
}

/// The rows of each exercise whose binary has an MPI path, by exercise number (see the
/// module's documentation). Arguments keep each run to a few seconds.
const EXERCISE_ROWS: &[(u32, ExerciseRows)] = &[
    (2, |exercise| {
        vec![
            // The overhead experiment (local only) kept small for the local runs.
            MpiRow::same_as_local(
                exercise,
                &[4, 5],
                &["--lists", "2", "--work", "1000"],
                deterministic::ring_tokens,
            ),
            MpiRow::fails_as_locally(exercise, 4, &[]),
        ]
    }),
    (3, |exercise| {
        vec![
            MpiRow::same_as_local(
                exercise,
                &[4, 5],
                &["--len", "1000", "--repeat", "1"],
                deterministic::gathered_table,
            ),
            // Under MPI only (b) runs: the student's `gather` is the first function reached.
            MpiRow::fails_in(exercise, 4, &[], "gather"),
        ]
    }),
    (4, |exercise| {
        vec![
            MpiRow::same_as_local(
                exercise,
                &[4, 5],
                &["--calls", "20"],
                deterministic::before_mpi_heading,
            ),
            MpiRow::fails_as_locally(exercise, 4, &[]),
        ]
    }),
    (5, exercise_5::rows),
];

/// What of an exercise's output must be the same under mpirun as locally: the parts that do
/// not depend on timing, process ids or the machine.
pub mod deterministic {
    /// Exercise 2: the token's way round (`rank 2 (pid _)`, process ids hidden) and the token
    /// of the ring written against `Comm` (`token [0, 1, 2, 3]`).
    pub fn ring_tokens(output: &str) -> String {
        let mut kept = Vec::new();
        for line in output.lines() {
            if line.contains("the token went") {
                kept.push(hide_pids(line));
            } else if let Some(start) = line.find("token [") {
                let token = &line[start..];
                kept.push(token[..token.find(']').map_or(token.len(), |end| end + 1)].to_string());
            }
        }
        kept.join("\n")
    }

    /// `(pid 1234)` as `(pid _)`.
    fn hide_pids(line: &str) -> String {
        let mut out = String::new();
        let mut rest = line;
        while let Some(at) = rest.find("(pid ") {
            out.push_str(&rest[..at + "(pid ".len()]);
            rest = rest[at + "(pid ".len()..].trim_start_matches(|c: char| c.is_ascii_digit());
            out.push('_');
        }
        out.push_str(rest);
        out
    }

    /// Exercise 3: what rank 0 gathered, from its heading to the end.
    pub fn gathered_table(output: &str) -> String {
        output.find("What rank 0 gathered").map_or_else(String::new, |at| output[at..].to_string())
    }

    /// Exercise 4's heading of what only a run under mpirun prints (its `MPI_HEADING`).
    pub const MPI_HEADING: &str = "## Under MPI: MPI's own collectives beside yours";

    /// Exercise 4: everything before the heading of the MPI-only section (all of a local run).
    pub fn before_mpi_heading(output: &str) -> String {
        let end = output.find(MPI_HEADING).unwrap_or(output.len());
        output[..end].trim_end().to_string()
    }
}

/// Exercise 5 (ping-pong bandwidth) under `mpirun -n 2`: rank 0 measures the `mp` pipe, MPI
/// through the job's shared memory and MPI through TCP (a nested `mpirun` it starts), and
/// draws the three on one plot. Its binary has no `--ranks`: the rows are its own.
mod exercise_5 {
    use std::path::{Path, PathBuf};

    use super::{MpiRow, Ran, Run, unwritten_places};
    use crate::{
        mpi::{self, Build},
        workspace::Exercise,
    };

    /// The transports of the CSV's `transport` column and their labels on the plots (the
    /// shared-memory one also names the MPI library: "MPI (Open MPI 4.1, shared memory)").
    const TRANSPORTS: [(&str, &str); 3] =
        [("mp", "mp pipe"), ("mpi-shm", "shared memory)"), ("mpi-tcp", "MPI (TCP)")];
    /// Small sizes and few round trips: seconds, not minutes.
    const QUICK: [&str; 8] =
        ["--max-size", "100kB", "--per-decade", "2", "--reps", "20", "--warmup", "2"];

    pub(super) fn rows(exercise: &Exercise) -> Vec<MpiRow> {
        let dir = |what: &str| {
            std::env::temp_dir().join(format!("xtask-check-mpi-5-{what}-{}", std::process::id()))
        };
        vec![
            solution_draws_three_transports(exercise, dir("solution")),
            unsolved_fails(exercise, dir("exercise")),
        ]
    }

    /// The program's flags: the quick sizes, every output in `dir`.
    fn args(dir: &Path) -> Vec<String> {
        let mut args: Vec<String> = QUICK.iter().map(|arg| arg.to_string()).collect();
        for (flag, file) in [
            ("--csv", "bandwidth.csv"),
            ("--samples-csv", "samples.csv"),
            ("--time-plot", "time.svg"),
            ("--bandwidth-plot", "bandwidth.svg"),
        ] {
            args.extend([flag.to_string(), dir.join(file).display().to_string()]);
        }
        args
    }

    fn solution_draws_three_transports(exercise: &Exercise, dir: PathBuf) -> MpiRow {
        MpiRow {
            area: exercise.name.clone(),
            check: "the solution under `mpirun -n 2` draws mp, MPI shared memory and MPI TCP \
                    (a nested mpirun) on one plot, each with its fitted model"
                .into(),
            build: Build { package: exercise.solution_name(), mpi: true, bin: None },
            runs: vec![Run::Mpirun { ranks: 2, args: args(&dir) }],
            expect: Box::new(move |ran| {
                let verdict = three_transports(&ran[0], &dir);
                let _ = std::fs::remove_dir_all(&dir);
                verdict
            }),
        }
    }

    /// Exit 0, and each transport in the CSV (with the model's time) and in both plots (with
    /// its model's legend).
    pub(super) fn three_transports(run: &Ran, dir: &Path) -> Result<String, String> {
        if !run.outcome.success() {
            return Err(run.describe());
        }
        let read = |file: &str| {
            std::fs::read_to_string(dir.join(file))
                .map_err(|e| format!("{} was not written ({e}): {}", file, run.describe()))
        };
        let csv = read("bandwidth.csv")?;
        let time_plot = read("time.svg")?;
        let bandwidth_plot = read("bandwidth.svg")?;
        let mut models = Vec::new();
        for (name, label) in TRANSPORTS {
            let rows: Vec<Vec<&str>> = csv
                .lines()
                .map(|line| line.split(',').collect::<Vec<_>>())
                .filter(|cells| cells.first() == Some(&name))
                .collect();
            if rows.is_empty() {
                return Err(format!("bandwidth.csv has no row of `{name}`: {}", run.describe()));
            }
            // The 8th column is the fitted model's one-way time: empty without a model.
            if rows.iter().any(|cells| cells.get(7).is_none_or(|cell| cell.is_empty())) {
                return Err(format!("bandwidth.csv has `{name}` rows without the fitted model"));
            }
            for (plot, text) in [("time.svg", &time_plot), ("bandwidth.svg", &bandwidth_plot)] {
                let legend = legend_of(text, label).ok_or_else(|| {
                    format!("{plot} has no fitted model for `{label}`: {}", run.describe())
                })?;
                if plot == "bandwidth.svg" {
                    models.push(legend);
                }
            }
        }
        Ok(models.join("; "))
    }

    /// The legend `LABEL: model T(s) = ... us + s / (... GB/s)` of the transport whose label
    /// contains `label`, in an SVG's text.
    fn legend_of(svg: &str, label: &str) -> Option<String> {
        svg.split(['<', '>'])
            .find(|text| text.contains(label) && text.contains(": model T(s) = "))
            .map(|text| text.trim().to_string())
    }

    fn unsolved_fails(exercise: &Exercise, dir: PathBuf) -> MpiRow {
        let args = args(&dir);
        MpiRow {
            area: exercise.name.clone(),
            check: "the unsolved exercise fails under `mpirun -n 2` as it does locally".into(),
            build: Build { package: exercise.name.clone(), mpi: true, bin: None },
            runs: vec![Run::Local(args.clone()), Run::Mpirun { ranks: 2, args }],
            expect: Box::new(move |ran| {
                let _ = std::fs::remove_dir_all(&dir); // the outputs it created, empty
                let mut places = Vec::new();
                for run in ran {
                    let failed_itself =
                        run.outcome.code.is_some_and(|code| code != 0 && code != mpi::TIMED_OUT);
                    let place = unwritten_places(&run.outcome.stderr);
                    if !failed_itself || place.is_empty() {
                        return Err(format!(
                            "expected a non-zero exit and the \"not written yet\" place: {}",
                            run.describe()
                        ));
                    }
                    places.push(place);
                }
                if places.windows(2).any(|pair| pair[0] != pair[1]) {
                    return Err(format!("not the same place: {places:?}"));
                }
                Ok(format!("not written yet at {}", places[0].join(", ")))
            }),
        }
    }
}

fn exercise_rows(exercise: &Exercise) -> Vec<MpiRow> {
    EXERCISE_ROWS
        .iter()
        .filter(|(number, _)| *number == exercise.number)
        .flat_map(|(_, rows)| rows(exercise))
        .collect()
}

/// The `where: FILE:LINE` lines of `course`'s "not written yet" message, each once.
fn unwritten_places(stderr: &str) -> Vec<String> {
    let mut places: Vec<String> = stderr
        .lines()
        .filter_map(|line| line.trim().strip_prefix("where:"))
        .map(|place| place.trim().to_string())
        .collect();
    places.sort();
    places.dedup();
    places
}

/// The first line where two texts differ, with its number.
fn first_difference(want: &str, got: &str) -> String {
    let (mut want_lines, mut got_lines) = (want.lines(), got.lines());
    for number in 1.. {
        match (want_lines.next(), got_lines.next()) {
            (None, None) => break,
            (a, b) if a == b => continue,
            (a, b) => {
                return format!(
                    "line {number}: locally {:?}, under mpirun {:?}",
                    a.unwrap_or("(end)"),
                    b.unwrap_or("(end)")
                );
            }
        }
    }
    "no line differs".to_string()
}

/// The rows that are not about one exercise: the workspace's MPI code and what every MPI
/// program must do.
fn workspace_rows() -> Vec<MpiRow> {
    vec![
        MpiRow {
            area: AREA.into(),
            check: "a binary built without MPI, started by `mpirun -n 2`, exits 2 with its line"
                .into(),
            build: Build { package: "solution-4".into(), mpi: false, bin: None },
            runs: vec![Run::Mpirun { ranks: 2, args: Vec::new() }],
            expect: Box::new(|ran| {
                let run = &ran[0];
                let said = run.outcome.stderr.lines().find(|l| l.contains(BUILT_WITHOUT_MPI));
                match (run.outcome.code, said) {
                    (Some(2), Some(line)) => Ok(format!("exit code 2: {}", line.trim())),
                    _ => Err(format!(
                        "expected exit code 2 and a line saying \"{BUILT_WITHOUT_MPI}\": {}",
                        run.describe()
                    )),
                }
            }),
        },
        MpiRow {
            area: AREA.into(),
            check: "a rank that panics ends the job within the time limit, with its message once"
                .into(),
            build: Build { package: "mp-mpi".into(), mpi: true, bin: Some(SELFTEST.into()) },
            runs: vec![Run::Mpirun { ranks: 3, args: vec!["panic".into()] }],
            expect: Box::new(|ran| {
                let run = &ran[0];
                let output = format!("{}\n{}", run.outcome.stdout, run.outcome.stderr);
                let times = output.matches(PANIC_MESSAGE).count();
                let ended_itself =
                    run.outcome.code.is_some_and(|code| code != 0 && code != mpi::TIMED_OUT);
                if ended_itself && times == 1 {
                    Ok(format!("{}, the message once", run.status()))
                } else {
                    Err(format!(
                        "expected a non-zero exit that is not the time limit, and \
                         \"{PANIC_MESSAGE}\" once (seen {times} times): {}",
                        run.describe()
                    ))
                }
            }),
        },
    ]
}

/// The MPI section: the workspace's rows when `whole` (a check of everything), then the
/// rows of `exercises`. Returns the reason the rows were skipped, if they were.
pub fn section(root: &Path, exercises: &[&Exercise], whole: bool, report: &mut Report) {
    report.section("MPI (week 4)");
    let mut rows = Vec::new();
    if whole {
        rows.extend(workspace_rows());
    }
    for exercise in exercises {
        rows.extend(exercise_rows(exercise));
    }
    let cargo_rows: &[(&str, &[&str])] = if whole {
        &[
            (
                "clippy of mp-mpi and course with MPI, warnings denied",
                &[
                    "clippy",
                    "--locked",
                    "-p",
                    "mp-mpi",
                    "-p",
                    "course",
                    "--all-targets",
                    "--features",
                    "mp-mpi/mpi",
                    "--",
                    "-D",
                    "warnings",
                ],
            ),
            (
                "tests of mp-mpi with MPI",
                &["test", "--locked", "-p", "mp-mpi", "--features", "mpi"],
            ),
        ]
    } else {
        &[]
    };
    if let Some(reason) = mpi::missing() {
        for (check, _) in cargo_rows {
            report.skip(AREA, check, &reason);
        }
        for row in &rows {
            report.skip(&row.area, &row.check, &reason);
        }
        return;
    }
    for (check, args) in cargo_rows {
        let outcome = limited(workspace::cargo(root).args(*args));
        report.record(AREA, check, outcome.and_then(|o| succeeded(&o)));
    }
    for row in rows {
        let verdict = run_row(root, &row);
        report.record(&row.area, &row.check, verdict);
    }
}

/// Builds the row's binary, runs it as the row says, and asks `expect`.
fn run_row(root: &Path, row: &MpiRow) -> Result<String, String> {
    let binary = row.build.run(root)?;
    let mut ran = Vec::new();
    for run in &row.runs {
        let (command, shown) = match run {
            Run::Local(args) => {
                let mut command = std::process::Command::new(&binary);
                command.args(args);
                let shown = std::iter::once(relative(root, &binary))
                    .chain(args.iter().cloned())
                    .collect::<Vec<_>>()
                    .join(" ");
                (command, shown)
            }
            Run::Mpirun { ranks, args } => {
                let job = mpi::job(&binary, *ranks, JOB_LIMIT).args(args);
                let shown = mpi::job(Path::new(&relative(root, &binary)), *ranks, JOB_LIMIT)
                    .args(args)
                    .display();
                (job.command(), shown)
            }
        };
        let limits = Limits { wall_clock: JOB_LIMIT + BACKSTOP, output_cap: OUTPUT_CAP };
        let outcome = workspace::run_limited(command, limits)
            .map_err(|e| format!("`{shown}` could not start: {e}"))?;
        let left = leftovers(&binary);
        if !left.is_empty() {
            return Err(format!(
                "`{shown}` left {} process(es) of {} running (pids {}; now killed)",
                left.len(),
                relative(root, &binary),
                left.join(", ")
            ));
        }
        ran.push(Ran { command: shown, outcome });
    }
    (row.expect)(&ran)
}

fn relative(root: &Path, path: &Path) -> String {
    path.strip_prefix(root).unwrap_or(path).display().to_string()
}

/// Processes (not zombies) running `binary`, after a short grace for the ones that are
/// ending; those still there are killed, and their pids returned.
fn leftovers(binary: &Path) -> Vec<String> {
    let binary = std::fs::canonicalize(binary).unwrap_or_else(|_| binary.to_path_buf());
    let running = || -> Vec<String> {
        std::fs::read_dir("/proc")
            .into_iter()
            .flatten()
            .flatten()
            .filter_map(|entry| entry.file_name().into_string().ok())
            .filter(|pid| pid.bytes().all(|b| b.is_ascii_digit()))
            .filter(|pid| {
                let exe = std::fs::read_link(format!("/proc/{pid}/exe")).unwrap_or_default();
                let exe =
                    PathBuf::from(exe.to_string_lossy().trim_end_matches(" (deleted)").to_string());
                exe == binary && workspace::state(pid).is_some_and(|state| state != 'Z')
            })
            .collect()
    };
    for _ in 0..20 {
        if running().is_empty() {
            return Vec::new();
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    let left = running();
    for pid in &left {
        let _ = std::process::Command::new("kill").args(["-KILL", pid]).status();
    }
    left
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_not_written_yet_place_is_read_once_per_place() {
        let stderr = "exercise-4: this part of the exercise is not written yet.\n  \
                      where: exercises/exercise-4/src/lib.rs:42:5\n  what:  the sum\n\
                      exercise-4: this part of the exercise is not written yet.\n  \
                      where: exercises/exercise-4/src/lib.rs:42:5\n";
        assert_eq!(unwritten_places(stderr), ["exercises/exercise-4/src/lib.rs:42:5"]);
        assert!(unwritten_places("error: something else").is_empty());
    }

    #[test]
    fn the_place_of_a_function_s_todo_is_its_line_and_column() {
        let source = "pub fn gather_star() {\n    TODO\"a\")\n}\n\npub fn gather<C>(c: C) {\n    \
                      let x = 1;\n    TODO\n        \"b\"\n    )\n}\n"
            .replace("TODO", concat!("todo", "!("));
        assert_eq!(todo_place(&source, "gather"), Some((7, 5)));
        assert_eq!(todo_place(&source, "gather_star"), Some((2, 5)));
        assert_eq!(todo_place(&source, "missing"), None);
    }

    #[test]
    fn the_deterministic_parts_leave_out_pids_times_and_the_mpi_section() {
        let local = "A ring of 2 processes by hand: 2 one-way pipes (0->1, 1->0)\n  the token went \
                     rank 0 (pid 11) -> rank 1 (pid 12) -> back to rank 0\n  1.0 ms\nThe same \
                     with mp::Launch: 2 two-way connections, token [0, 1], 3.1 ms\n";
        let mpi = "A ring of 2 MPI ranks: 2 one-way links (0->1, 1->0)\n  the token went rank 0 \
                   (pid 7) -> rank 1 (pid 8) -> back to rank 0\n| 0 | vm | 7 |\nThe same with \
                   the MPI world: token [0, 1], 0.2 ms\n";
        let kept = deterministic::ring_tokens(local);
        assert_eq!(
            kept,
            "  the token went rank 0 (pid _) -> rank 1 (pid _) -> back to rank 0\ntoken [0, 1]"
        );
        assert_eq!(deterministic::ring_tokens(mpi), kept);

        let gathered = "(a) skipped\nWhat rank 0 gathered:\n| rank |\n| 0 |\n";
        assert_eq!(
            deterministic::gathered_table(gathered),
            "What rank 0 gathered:\n| rank |\n| 0 |\n"
        );

        let heading = deterministic::MPI_HEADING;
        let with_mpi = format!("tables\nlast line\n\n{heading}\n\n| MPI_Bcast | 3.1 |\n");
        assert_eq!(deterministic::before_mpi_heading(&with_mpi), "tables\nlast line");
        assert_eq!(deterministic::before_mpi_heading("tables\nlast line\n"), "tables\nlast line");
    }

    #[test]
    fn the_first_difference_is_named_by_line() {
        assert_eq!(
            first_difference("a\nb\n", "a\nc\n"),
            "line 2: locally \"b\", under mpirun \"c\""
        );
        assert!(first_difference("a\n", "a\nb\n").contains("(end)"));
    }

    fn ran(code: Option<i32>, stderr: &str) -> Ran {
        let outcome = Outcome { code, stderr: stderr.into(), ..Outcome::default() };
        Ran { command: "x".into(), outcome }
    }

    #[test]
    fn an_exercise_fails_as_locally_only_with_the_same_place_and_not_at_the_time_limit() {
        let exercise = Exercise {
            number: 4,
            name: "exercise-4".into(),
            dir: PathBuf::from("exercises/exercise-4"),
            solution_dir: None,
        };
        let row = MpiRow::fails_as_locally(&exercise, 4, &[]);
        assert!(matches!(&row.runs[1], Run::Mpirun { ranks: 4, .. }));
        let at = |line: u32| format!("  where: exercises/exercise-4/src/lib.rs:{line}:5\n");
        assert!((row.expect)(&[ran(Some(1), &at(7)), ran(Some(1), &(at(7) + &at(7)))]).is_ok());
        assert!((row.expect)(&[ran(Some(1), &at(7)), ran(Some(1), &at(8))]).is_err());
        assert!((row.expect)(&[ran(Some(1), &at(7)), ran(Some(110), &at(7))]).is_err());
        assert!((row.expect)(&[ran(Some(1), &at(7)), ran(Some(0), "")]).is_err());
    }

    #[test]
    fn exercise_5s_row_wants_each_transport_in_the_csv_and_both_plots() {
        let dir = std::env::temp_dir().join(format!("xtask-mpi-5-test-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let csv = "transport,size [B],size,round trips,min,median,one-way,model one-way [us],x\n\
                   mp,1,1 B,20,1,1,1,12.3,1\nmpi-shm,1,1 B,20,1,1,1,0.4,1\n\
                   mpi-tcp,1,1 B,20,1,1,1,5.0,1\n";
        let svg = "<svg><text>mp pipe: model T(s) = 12.3 us + s / (20 GB/s)</text>\
                   <text>MPI (Open MPI 4.1, shared memory): model T(s) = 0.4 us + s / (9 GB/s)</text>\
                   <text>MPI (TCP): model T(s) = 5 us + s / (6 GB/s)</text></svg>";
        std::fs::write(dir.join("bandwidth.csv"), csv).unwrap();
        std::fs::write(dir.join("time.svg"), svg).unwrap();
        std::fs::write(dir.join("bandwidth.svg"), svg).unwrap();
        let ok = ran(Some(0), "");
        let detail = exercise_5::three_transports(&ok, &dir).unwrap();
        assert!(detail.contains("MPI (TCP): model T(s) = 5 us"), "{detail}");
        assert!(exercise_5::three_transports(&ran(Some(1), ""), &dir).is_err());
        std::fs::write(dir.join("bandwidth.svg"), svg.replace("MPI (TCP)", "TCP?")).unwrap();
        let error = exercise_5::three_transports(&ok, &dir).unwrap_err();
        assert!(error.contains("bandwidth.svg has no fitted model for `MPI (TCP)`"), "{error}");
        std::fs::write(dir.join("bandwidth.csv"), csv.replace(",5.0,", ",,")).unwrap();
        let error = exercise_5::three_transports(&ok, &dir).unwrap_err();
        assert!(error.contains("`mpi-tcp` rows without the fitted model"), "{error}");
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn a_solution_matches_when_the_deterministic_parts_do() {
        let exercise = Exercise {
            number: 4,
            name: "exercise-4".into(),
            dir: PathBuf::from("exercises/exercise-4"),
            solution_dir: None,
        };
        fn no_times(text: &str) -> String {
            text.lines().filter(|l| !l.contains("ms")).collect::<Vec<_>>().join("\n")
        }
        let row = MpiRow::same_as_local(&exercise, &[4, 5], &["--quick"], no_times);
        assert_eq!(row.runs.len(), 4);
        assert!(matches!(&row.runs[0], Run::Local(args) if args == &["--quick", "--ranks", "4"]));
        let out = |stdout: &str| Ran {
            command: "x".into(),
            outcome: Outcome { code: Some(0), stdout: stdout.into(), ..Outcome::default() },
        };
        let same = [out("sum 10\n1 ms"), out("sum 10\n2 ms"), out("sum 15"), out("sum 15\n9 ms")];
        assert!((row.expect)(&same).is_ok());
        let differ = [out("sum 10"), out("sum 11"), out("sum 15"), out("sum 15")];
        assert!((row.expect)(&differ).unwrap_err().contains("line 1"));
    }
}
