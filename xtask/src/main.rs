//! `cargo xtask`: the course's automation, run through the alias in `.cargo/config.toml`.
//!
//! * `check` (instructors): every solution passes its exercise's tests, every unsolved exercise
//!   fails them, every solution binary runs and writes what it should, formatting, lints.
//! * `grade` (CI on a student's repository): the graded tests of every exercise, under time
//!   limits, scored, written as `results.json`, a Markdown summary and JUnit XML.
//! * `handout DIR`: the student repository, without solutions.
//! * `mpirun -p PACKAGE -n N` (week 4): builds the package with its `mpi` feature and runs it
//!   under `mpirun`, printing the exact command line first.
//! * `progress` (students): which exercises pass right now, with hints.
//! * `watch [N]` (students): reruns the current exercise's tests each time a file of it is
//!   saved, with hints on a key, and moves on when they pass.

mod check;
mod grade;
mod handout;
mod mpi;
mod progress;
mod watch;
mod workspace;

use std::{path::PathBuf, process::ExitCode};

use clap::{Parser, Subcommand};

/// The course's automation. Run as `cargo xtask <command>`.
#[derive(Parser)]
#[command(name = "cargo xtask", version)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Instructors: check solutions pass, exercises fail, binaries run, format and lints.
    Check(check::CheckArgs),
    /// CI: grade the exercises of a student repository and write the results.
    Grade(grade::GradeArgs),
    /// Write the student repository (everything but the solutions) into DIR.
    Handout {
        /// The directory to create; it must not exist yet, or be empty.
        dir: PathBuf,
    },
    /// Week 4: build PACKAGE with its `mpi` feature and run it under `mpirun -n N`.
    Mpirun(mpi::MpirunArgs),
    /// Students: which exercises pass right now, and a hint for the next one.
    Progress(progress::ProgressArgs),
    /// Students: reruns the first unsolved exercise's tests each time you save (h: hint, q: quit).
    Watch(watch::WatchArgs),
    /// Internal: the first process of the grader's sandbox (see `workspace::sandbox_init`).
    #[command(hide = true)]
    SandboxInit {
        #[arg(long)]
        report: PathBuf,
        #[arg(long)]
        uid: Option<u32>,
        #[arg(last = true, required = true)]
        program: Vec<std::ffi::OsString>,
    },
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    if let Command::SandboxInit { report, uid, program } = &cli.command {
        return workspace::sandbox_init(report, *uid, program);
    }
    let root = workspace::project_root();
    let result = match cli.command {
        Command::Check(args) => check::run(&root, &args),
        Command::Grade(args) => grade::run(&root, &args),
        Command::Handout { dir } => handout::run(&root, &dir),
        Command::Mpirun(args) => mpi::run(&root, &args),
        Command::Progress(args) => progress::run(&root, &args),
        Command::Watch(args) => watch::run(&root, &args),
        Command::SandboxInit { .. } => unreachable!("handled above"),
    };
    match result {
        Ok(code) => code,
        Err(error) => {
            eprintln!("error: {error}");
            ExitCode::from(2)
        }
    }
}
