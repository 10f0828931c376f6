//! # course: what every exercise binary shares
//!
//! The exercises of the course are small binaries whose code is about the lesson only. This
//! crate carries the rest, once:
//!
//! * [`run`]: the whole `main` of an exercise: starts [`mp`], parses the command line with
//!   clap, and turns every way a run can fail into a short message and an exit code (2 for
//!   bad flags, 1 for everything else). A function the student has not written yet (a
//!   `todo!`) is reported as such, with its file and line, even when it ran in a worker.
//! * [`usage`]: an error about the command line (exit code 2).
//! * [`writable_path`]: a clap value parser that refuses an output path that cannot be
//!   written, before any measuring starts.
//! * [`Table`]: a table with units in its header, printed as Markdown and written as CSV.
//! * [`progress`]: a progress bar on the terminal, hidden when the output is not one.
//! * [`watchdog`]: ends a test binary that hangs, with a message.
//!
//! ```no_run
//! use clap::Parser;
//!
//! /// Adds up 0..n with a pool.
//! #[derive(Parser)]
//! struct Args {
//!     /// Number of worker processes.
//!     #[arg(long, default_value_t = 2, value_parser = clap::value_parser!(u32).range(1..=64))]
//!     workers: u32,
//! }
//!
//! fn square(i: u64) -> u64 { i * i }
//!
//! fn run(args: Args) -> course::Result {
//!     let pool = mp::Pool::new(args.workers as usize)?;
//!     println!("{}", pool.map(square, 0..10)?.iter().sum::<u64>());
//!     Ok(())
//! }
//!
//! fn main() -> std::process::ExitCode {
//!     course::run(run)
//! }
//! ```

use std::{
    error::Error as StdError,
    fmt,
    path::{Path, PathBuf},
    process::ExitCode,
};

/// What an exercise's `run` returns: any error converts with `?`.
///
/// ```
/// fn parse(text: &str) -> course::Result<u32> {
///     Ok(text.parse::<u32>()?)
/// }
/// assert!(parse("x").is_err());
/// ```
pub type Result<T = ()> = std::result::Result<T, Box<dyn StdError + Send + Sync>>;

/// Exit code for a bad command line, as clap uses.
pub const USAGE_EXIT_CODE: u8 = 2;

/// The start of the message of every `todo!` panic.
const NOT_WRITTEN_YET: &str = "not yet implemented";

/// Runs an exercise's `run` function as the whole program and returns its exit code.
///
/// In order: [`mp::init`] (so the program's worker processes start), clap parses the command
/// line (`--help` explains each flag; a bad flag exits with code 2), then `program` runs.
/// Errors are printed as one message with their causes, never as a backtrace:
///
/// * a [`usage`] error exits with code 2;
/// * a `todo!` reached in this process or in a worker says which function to write and where;
/// * any other error or panic exits with code 1 or 101.
///
/// Started by `mpirun` (or another MPI launcher, see [`mp_mpi::launcher`]):
///
/// * built without MPI (no `--features mpi`): one line on standard error (rank 0's, when the
///   rank is known) says so and how to rebuild, and every copy exits with code 2, instead of
///   each running the whole program alone;
/// * built with MPI: an [`mp_mpi::Session`] lives while `program` runs ([`mpi_world`],
///   [`with_mpi_session`]) and is finalized on return; ranks other than 0 write their
///   standard output to `/dev/null` (standard error stays). A [`usage`] error is printed by
///   rank 0 and every rank exits with 2; any other error is printed as `rank R: error: ...`
///   and ends the whole job (`MPI_Abort`, code 1), since other ranks may wait for this one;
///   a panic prints its message once, with the rank, and ends the job (code 101). A failing
///   rank other than 0 waits 0.3 s per rank (at most 3 s) before it speaks, so that when
///   every rank fails alike (a `todo!` they all reach) the lowest one's message is the only one.
///
/// ```no_run
/// #[derive(clap::Parser)]
/// struct Args {}
///
/// fn run(_: Args) -> course::Result {
///     Err(course::usage("--size must be at least 1 byte"))
/// }
///
/// fn main() -> std::process::ExitCode {
///     course::run(run) // prints "error: --size must be at least 1 byte" and exits with 2
/// }
/// ```
pub fn run<A: clap::Parser>(program: fn(A) -> Result) -> ExitCode {
    mp::init();
    let launcher = mp_mpi::launcher();
    // Under mpirun every rank parses the same flags: one message (rank 0's) is enough.
    let quiet = launcher.and_then(|launcher| launcher.rank).is_some_and(|rank| rank != 0);
    let args = match A::try_parse() {
        Ok(args) => args,
        Err(error) if quiet => return ExitCode::from(error.exit_code().clamp(0, 255) as u8),
        Err(error) => error.exit(),
    };
    let name = program_name();
    let Some(launcher) = launcher else {
        install_panic_hook(name.clone(), None);
        return match program(args) {
            Ok(()) => ExitCode::SUCCESS,
            Err(error) => report(&name, error.as_ref()),
        };
    };
    if !mp_mpi::built_with_mpi() {
        if !quiet {
            eprintln!("{}", without_mpi_message(&name, &launcher));
        }
        return ExitCode::from(USAGE_EXIT_CODE);
    }
    run_on_mpi(program, args, &name, launcher)
}

/// What a program built without MPI says when a launcher started it.
fn without_mpi_message(program: &str, launcher: &mp_mpi::Launcher) -> String {
    let size = launcher.size.map_or_else(|| "N".to_string(), |size| size.to_string());
    format!(
        "error: {program} was started by {launcher} but built without MPI, so each copy would \
         run alone. Rebuild it with MPI: `cargo xtask mpirun -p {program} -n {size}`, or \
         `cargo build --release -p {program} --features mpi` and mpirun that binary."
    )
}

/// [`run`] under a launcher, built with MPI: one MPI session for the whole program.
fn run_on_mpi<A>(
    program: fn(A) -> Result,
    args: A,
    name: &str,
    launcher: mp_mpi::Launcher,
) -> ExitCode {
    let prefix = launcher.rank.map_or_else(String::new, |rank| format!("rank {rank}: "));
    // Before the session's hook, which prints through this one and then ends the job.
    install_panic_hook(name.to_string(), launcher.rank);
    let session = match mp_mpi::Session::init() {
        Ok(session) => session,
        Err(error) => {
            eprintln!("{prefix}error: {name} could not start MPI: {error}");
            return ExitCode::FAILURE;
        }
    };
    let rank = session.rank();
    let prefix = format!("rank {rank}: ");
    if rank != 0 {
        // Every rank runs the same program; rank 0 speaks for them (stderr stays).
        if let Err(error) = silence_stdout() {
            eprintln!("{prefix}warning: could not silence standard output: {error}");
        }
    }
    let _guard = SessionGuard::hold(session);
    match program(args) {
        Ok(()) => ExitCode::SUCCESS, // the guard finalizes
        Err(error) if error.downcast_ref::<UsageError>().is_some() => {
            if rank == 0 {
                report(name, error.as_ref());
            }
            ExitCode::from(USAGE_EXIT_CODE)
        }
        Err(error) => {
            // Other ranks may wait for this one in a receive: end the whole job.
            let_lower_ranks_speak_first(Some(rank));
            if let Some((message, location)) = unwritten_in_worker(error.as_ref()) {
                eprint!("{prefix}");
                explain_unwritten(name, &message, location.as_deref());
            } else {
                eprintln!("{prefix}{}", error_report(error.as_ref()));
            }
            mp_mpi::abort(1)
        }
    }
}

/// `/dev/null` over standard output.
fn silence_stdout() -> std::io::Result<()> {
    use std::io::Write;
    std::io::stdout().flush()?;
    let null = std::fs::OpenOptions::new().write(true).open("/dev/null")?;
    rustix::stdio::dup2_stdout(&null)?;
    Ok(())
}

thread_local! {
    /// The MPI session of [`run`], on its thread, while the program runs.
    static SESSION: std::cell::RefCell<Option<mp_mpi::Session>> =
        const { std::cell::RefCell::new(None) };
}

/// Holds the session for [`run`] and finalizes it on every way out of the program.
struct SessionGuard;

impl SessionGuard {
    fn hold(session: mp_mpi::Session) -> SessionGuard {
        SESSION.with(|cell| *cell.borrow_mut() = Some(session));
        SessionGuard
    }
}

impl Drop for SessionGuard {
    fn drop(&mut self) {
        // Dropping the session: MPI_Finalize (after its typed sends are received).
        SESSION.with(|cell| *cell.borrow_mut() = None);
    }
}

/// The MPI world when `mpirun` started this program (built with `--features mpi`) and
/// [`run`] runs it: an [`mp::Comm`] for the same code that `mp::launch`'s ranks run. `None`
/// otherwise, so exercise code needs no `cfg`:
///
/// ```
/// use mp::Communicator;
/// match course::mpi_world() {
///     Some(world) => println!("MPI rank {} of {}", world.rank(), world.size()),
///     None => println!("not under mpirun: the local engine (mp::launch)"),
/// }
/// ```
pub fn mpi_world() -> Option<mp::Comm> {
    mp_mpi::world()
}

/// Runs `f` with [`run`]'s MPI session (rank, size, barrier, processor name), or returns
/// `None` when the program does not run under MPI.
///
/// ```
/// let where_ = course::with_mpi_session(|session| {
///     format!("rank {} on {}", session.rank(), session.processor_name().unwrap_or_default())
/// });
/// assert_eq!(where_, None); // not under mpirun
/// ```
pub fn with_mpi_session<R>(f: impl FnOnce(&mp_mpi::Session) -> R) -> Option<R> {
    SESSION.with(|cell| cell.try_borrow().ok()?.as_ref().map(f))
}

/// How many ranks the program runs: under `mpirun`, the size of the MPI job (mpirun's `-n`);
/// otherwise `flag` (a `--ranks` given on the command line) or `default`.
///
/// Under `mpirun` a `--ranks` that differs from the job's size is a [`usage`] error (rank 0
/// prints it, every rank exits with 2): the ranks are the processes mpirun started, and no
/// flag can change their number. Declare the flag as an `Option` so that its absence shows:
///
/// ```
/// #[derive(clap::Parser)]
/// struct Args {
///     /// Number of ranks (default 4). Under mpirun: mpirun's `-n`.
///     #[arg(long)]
///     ranks: Option<usize>,
/// }
///
/// fn run(args: Args) -> course::Result {
///     let n_ranks = course::ranks(args.ranks, 4)?;
///     println!("{n_ranks} ranks");
///     Ok(())
/// }
/// # assert_eq!(course::ranks(None, 4).unwrap(), 4); // not under mpirun
/// # assert_eq!(course::ranks(Some(6), 4).unwrap(), 6);
/// ```
pub fn ranks(flag: Option<usize>, default: usize) -> Result<usize> {
    ranks_in_job(flag, default, with_mpi_session(mp_mpi::Session::size))
}

/// [`ranks`], given the size of the MPI job (`None`: not under MPI).
fn ranks_in_job(flag: Option<usize>, default: usize, job: Option<usize>) -> Result<usize> {
    match (flag, job) {
        (flag, None) => Ok(flag.unwrap_or(default)),
        (Some(ranks), Some(size)) if ranks != size => Err(usage(format!(
            "--ranks {ranks} does not match the MPI job, which has {size} rank{}: under mpirun \
             the number of ranks is mpirun's -n. Leave --ranks out, or start {ranks} with \
             `mpirun -n {ranks}`",
            if size == 1 { "" } else { "s" }
        ))),
        (_, Some(size)) => Ok(size),
    }
}

/// An error in how the program was called: a flag that is out of range, a size range that is
/// empty. [`run`] prints it and exits with code 2.
///
/// ```
/// let error = course::usage("--from must not exceed --to");
/// assert_eq!(error.to_string(), "--from must not exceed --to");
/// ```
pub fn usage(message: impl Into<String>) -> Box<dyn StdError + Send + Sync> {
    Box::new(UsageError(message.into()))
}

#[derive(Debug)]
struct UsageError(String);

impl fmt::Display for UsageError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl StdError for UsageError {}

fn program_name() -> String {
    std::env::args()
        .next()
        .and_then(|arg| Path::new(&arg).file_name().map(|n| n.to_string_lossy().into_owned()))
        .unwrap_or_else(|| "the exercise".to_string())
}

fn report(program: &str, error: &(dyn StdError + 'static)) -> ExitCode {
    if error.downcast_ref::<UsageError>().is_some() {
        eprintln!("error: {error}");
        eprintln!("Run `cargo run -p {program} -- --help` to see every flag.");
        return ExitCode::from(USAGE_EXIT_CODE);
    }
    if let Some((message, location)) = unwritten_in_worker(error) {
        explain_unwritten(program, &message, location.as_deref());
        return ExitCode::FAILURE;
    }
    eprintln!("{}", error_report(error));
    ExitCode::FAILURE
}

/// "error: " and the message, then one "caused by" line per cause that the text does not
/// already include (an `mp::Error` names its cause in its own text).
fn error_report(error: &(dyn StdError + 'static)) -> String {
    let mut report = format!("error: {error}");
    let mut source = error.source();
    while let Some(cause) = source {
        let text = cause.to_string();
        if !report.contains(&text) {
            report.push_str("\n  caused by: ");
            report.push_str(&text);
        }
        source = cause.source();
    }
    report
}

/// A `todo!` that panicked in a worker reaches the parent as an `mp::Error`, maybe wrapped.
fn unwritten_in_worker(error: &(dyn StdError + 'static)) -> Option<(String, Option<String>)> {
    let mut current = Some(error);
    while let Some(error) = current {
        if let Some(mp::Error::TaskPanicked { message, location, .. }) =
            error.downcast_ref::<mp::Error>()
            && message.starts_with(NOT_WRITTEN_YET)
        {
            return Some((message.clone(), location.clone()));
        }
        current = error.source();
    }
    None
}

fn explain_unwritten(program: &str, message: &str, location: Option<&str>) {
    let what = message.trim_start_matches(NOT_WRITTEN_YET).trim_start_matches(':').trim();
    eprintln!("{program}: this part of the exercise is not written yet.");
    if let Some(location) = location {
        eprintln!("  where: {location}");
    }
    if !what.is_empty() {
        eprintln!("  what:  {what}");
    }
    eprintln!(
        "Replace the `todo!` there with your code, then check it with `cargo test -p {program}`."
    );
}

/// How long a failing MPI rank waits, per rank above 0, before it prints its failure and ends
/// the job (see [`let_lower_ranks_speak_first`]).
const SPEAK_AFTER: std::time::Duration = std::time::Duration::from_millis(300);

/// Under MPI, a failing rank other than 0 waits a moment ([`SPEAK_AFTER`] times its rank, at
/// most 10 times) before it prints why and ends the job. When several ranks fail alike (every
/// rank reaches the same `todo!`), the lowest one's `MPI_Abort` ends the others while they
/// wait, so the message is printed once; a rank that fails alone still speaks, a little later.
/// Nothing waits outside MPI (`rank` is `None`).
fn let_lower_ranks_speak_first(rank: Option<usize>) {
    if let Some(rank) = rank.filter(|&rank| rank > 0) {
        std::thread::sleep(SPEAK_AFTER * rank.min(10) as u32);
    }
}

/// Prints panics as one message (a `todo!` as "not written yet"); under MPI (`rank` known)
/// prefixed with the rank, after [`let_lower_ranks_speak_first`].
fn install_panic_hook(program: String, rank: Option<usize>) {
    let prefix = rank.map_or_else(String::new, |rank| format!("rank {rank}: "));
    let default_hook = std::panic::take_hook();
    std::panic::set_hook(Box::new(move |info| {
        let message = info
            .payload()
            .downcast_ref::<&str>()
            .map(|s| s.to_string())
            .or_else(|| info.payload().downcast_ref::<String>().cloned())
            .unwrap_or_default();
        // file:line:column, as a panic in a worker reports it (`mp::Error::TaskPanicked`).
        let location = info.location().map(|location| location.to_string());
        if message.contains("failed printing to stdout") && message.contains("Broken pipe") {
            // `cargo run -p exercise-1 | head`: the reader has all it wanted; stop quietly.
            std::process::exit(0);
        }
        let_lower_ranks_speak_first(rank);
        if message.starts_with(NOT_WRITTEN_YET) {
            eprint!("{prefix}");
            explain_unwritten(&program, &message, location.as_deref());
            // Nothing else can be done without this function: stop here, not after unwinding
            // (under MPI: the whole job, whose other ranks may wait for this one).
            mp_mpi::abort(1);
        }
        if std::env::var_os("RUST_BACKTRACE").is_some() {
            default_hook(info);
            return;
        }
        let location = location.unwrap_or_else(|| "an unknown place".to_string());
        eprintln!("{prefix}{program} stopped: it panicked at {location}: {message}");
        eprintln!("Run it again with RUST_BACKTRACE=1 to see how it got there.");
    }));
}

/// A clap value parser for output files: refuses a path that cannot be written, so the
/// mistake shows before any measurement runs, as a usage error (exit code 2).
///
/// Missing parent directories are created. The file itself is created (empty) as the check.
///
/// ```
/// let dir = std::env::temp_dir().join("course-doc-writable");
/// let ok = course::writable_path(dir.join("sub/out.csv").to_str().unwrap());
/// assert!(ok.is_ok());
/// let refused = course::writable_path("/proc/version/out.csv").unwrap_err();
/// assert!(refused.contains("/proc/version/out.csv"));
/// ```
pub fn writable_path(text: &str) -> std::result::Result<PathBuf, String> {
    let path = PathBuf::from(text);
    if text.is_empty() || text.ends_with('/') {
        return Err(format!("`{text}` is not a file name"));
    }
    if let Some(parent) = path.parent().filter(|p| !p.as_os_str().is_empty()) {
        std::fs::create_dir_all(parent).map_err(|e| {
            format!("cannot write {text}: cannot create the directory {}: {e}", parent.display())
        })?;
    }
    std::fs::OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(false)
        .open(&path)
        .map_err(|e| format!("cannot write {}: {e}", path.display()))?;
    Ok(path)
}

/// A table of results, with the unit of each column in its header (`time [ms]`).
///
/// `Display` prints it as a Markdown table with aligned columns; [`Table::to_csv`] gives CSV.
///
/// ```
/// let mut table = course::Table::new(&["workers", "time [ms]"]);
/// table.row(["1", "20.0"]);
/// table.row(["2", "10.5"]);
/// assert_eq!(
///     table.to_string(),
///     "| workers | time [ms] |\n|--------:|----------:|\n|       1 |      20.0 |\n|       2 |      10.5 |\n"
/// );
/// assert_eq!(table.to_csv(), "workers,time [ms]\n1,20.0\n2,10.5\n");
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Table {
    headers: Vec<String>,
    rows: Vec<Vec<String>>,
}

impl Table {
    /// A table with these column headers and no rows.
    ///
    /// ```
    /// assert_eq!(course::Table::new(&["a", "b"]).headers(), ["a", "b"]);
    /// ```
    pub fn new(headers: &[&str]) -> Table {
        Table { headers: headers.iter().map(|h| h.to_string()).collect(), rows: Vec::new() }
    }

    /// Appends a row. It must have one cell per column.
    ///
    /// ```
    /// let mut table = course::Table::new(&["n", "n squared"]);
    /// for n in 1..=3 {
    ///     table.row([n.to_string(), (n * n).to_string()]);
    /// }
    /// assert_eq!(table.rows().len(), 3);
    /// ```
    pub fn row<S: ToString>(&mut self, cells: impl IntoIterator<Item = S>) {
        let cells: Vec<String> = cells.into_iter().map(|c| c.to_string()).collect();
        assert_eq!(
            cells.len(),
            self.headers.len(),
            "a row of the table {:?} needs one cell per column",
            self.headers
        );
        self.rows.push(cells);
    }

    /// The column headers.
    ///
    /// ```
    /// assert_eq!(course::Table::new(&["x"]).headers().len(), 1);
    /// ```
    pub fn headers(&self) -> &[String] {
        &self.headers
    }

    /// The rows so far.
    ///
    /// ```
    /// assert!(course::Table::new(&["x"]).rows().is_empty());
    /// ```
    pub fn rows(&self) -> &[Vec<String>] {
        &self.rows
    }

    /// The table as CSV: a header line, then one line per row. Cells with commas or quotes
    /// are quoted.
    ///
    /// ```
    /// let mut table = course::Table::new(&["name", "size"]);
    /// table.row(["a, b", "1"]);
    /// assert_eq!(table.to_csv(), "name,size\n\"a, b\",1\n");
    /// ```
    pub fn to_csv(&self) -> String {
        let mut out = String::new();
        for line in std::iter::once(&self.headers).chain(&self.rows) {
            let cells: Vec<String> = line.iter().map(|cell| csv_cell(cell)).collect();
            out.push_str(&cells.join(","));
            out.push('\n');
        }
        out
    }

    /// Writes [`Table::to_csv`] to a file, creating or replacing it.
    ///
    /// ```
    /// let path = std::env::temp_dir().join("course-doc-table.csv");
    /// course::Table::new(&["x"]).write_csv(&path)?;
    /// assert_eq!(std::fs::read_to_string(&path)?, "x\n");
    /// # Ok::<(), Box<dyn std::error::Error + Send + Sync>>(())
    /// ```
    pub fn write_csv(&self, path: &Path) -> Result {
        std::fs::write(path, self.to_csv())
            .map_err(|e| format!("could not write {}: {e}", path.display()).into())
    }
}

fn csv_cell(cell: &str) -> String {
    if cell.contains([',', '"', '\n']) {
        return format!("\"{}\"", cell.replace('"', "\"\""));
    }
    cell.to_string()
}

impl fmt::Display for Table {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let widths: Vec<usize> = (0..self.headers.len())
            .map(|column| {
                std::iter::once(&self.headers)
                    .chain(&self.rows)
                    .map(|line| line[column].chars().count())
                    .max()
                    .unwrap_or(0)
            })
            .collect();
        let line = |f: &mut fmt::Formatter<'_>, cells: &[String]| -> fmt::Result {
            for (cell, width) in cells.iter().zip(&widths) {
                write!(f, "| {cell:>width$} ")?;
            }
            writeln!(f, "|")
        };
        line(f, &self.headers)?;
        for width in &widths {
            write!(f, "|{}:", "-".repeat(width + 1))?;
        }
        writeln!(f, "|")?;
        for row in &self.rows {
            line(f, row)?;
        }
        Ok(())
    }
}

/// A progress bar on standard error for `len` steps, hidden when standard error is not a
/// terminal (in tests, in CI, in a pipe).
///
/// ```
/// let bar = course::progress(3, "measuring");
/// for _ in 0..3 {
///     bar.inc(1);
/// }
/// bar.finish_and_clear();
/// ```
pub fn progress(len: u64, message: &str) -> indicatif::ProgressBar {
    let bar = indicatif::ProgressBar::new(len);
    let style = indicatif::ProgressStyle::with_template(
        "{msg} [{bar:32}] {pos}/{len} ({elapsed}, about {eta} left)",
    )
    .map(|style| style.progress_chars("=> "))
    .unwrap_or_else(|_| indicatif::ProgressStyle::default_bar());
    bar.set_style(style);
    bar.set_message(message.to_string());
    bar
}

/// Ends a test binary that hangs, with a message: mp's [`mp::testing::watchdog`].
///
/// ```
/// let guard = course::watchdog(std::time::Duration::from_secs(60));
/// // ... the test ...
/// drop(guard);
/// ```
pub use mp::testing::{Watchdog, watchdog};

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn usage_errors_are_recognised_through_the_box() {
        let error = usage("bad");
        assert!(error.downcast_ref::<UsageError>().is_some());
    }

    #[test]
    fn unwritten_functions_are_found_inside_wrapped_worker_errors() {
        let panicked = mp::Error::TaskPanicked {
            message: "not yet implemented: sum the items".into(),
            location: Some("exercises/exercise-4/src/lib.rs:10:5".into()),
            task_index: Some(0),
            pid: 1,
        };
        let wrapped = mp::Error::RankFailed { rank: 2, error: Box::new(panicked) };
        let (message, location) = unwritten_in_worker(&wrapped).unwrap();
        assert_eq!(message, "not yet implemented: sum the items");
        assert_eq!(location.as_deref(), Some("exercises/exercise-4/src/lib.rs:10:5"));
        assert!(
            unwritten_in_worker(&mp::Error::Timeout {
                what: "x".into(),
                waited: std::time::Duration::ZERO
            })
            .is_none()
        );
    }

    #[test]
    fn a_cause_already_in_the_message_is_not_repeated() {
        let panicked = mp::Error::TaskPanicked {
            message: "boom".into(),
            location: None,
            task_index: None,
            pid: 7,
        };
        let wrapped = mp::Error::RankFailed { rank: 1, error: Box::new(panicked) };
        assert_eq!(
            error_report(&wrapped),
            "error: rank 1 failed, so all ranks were stopped: task panicked in worker process 7: boom"
        );
        assert_eq!(error_report(&Wrapper(usage("bad"))), "error: wrapper\n  caused by: bad");
    }

    /// An error whose message leaves its cause out.
    #[derive(Debug)]
    struct Wrapper(Box<dyn StdError + Send + Sync>);

    impl fmt::Display for Wrapper {
        fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
            f.write_str("wrapper")
        }
    }

    impl StdError for Wrapper {
        fn source(&self) -> Option<&(dyn StdError + 'static)> {
            Some(self.0.as_ref())
        }
    }

    #[test]
    fn ranks_come_from_the_flag_locally_and_from_the_mpi_job_under_mpirun() {
        assert_eq!(ranks_in_job(None, 4, None).unwrap(), 4);
        assert_eq!(ranks_in_job(Some(7), 4, None).unwrap(), 7);
        assert_eq!(ranks_in_job(None, 4, Some(6)).unwrap(), 6);
        assert_eq!(ranks_in_job(Some(6), 4, Some(6)).unwrap(), 6);
        let error = ranks_in_job(Some(3), 4, Some(5)).unwrap_err();
        assert!(error.downcast_ref::<UsageError>().is_some());
        let text = error.to_string();
        assert!(text.contains("--ranks 3 does not match the MPI job, which has 5 ranks"), "{text}");
        assert!(text.contains("mpirun's -n"), "{text}");
        assert!(ranks_in_job(Some(2), 4, Some(1)).unwrap_err().to_string().contains("1 rank:"));
    }

    #[test]
    fn writable_path_refuses_directories_and_empty_names() {
        assert!(writable_path("").is_err());
        assert!(writable_path("some/dir/").is_err());
        assert!(writable_path("/").is_err());
    }
}
