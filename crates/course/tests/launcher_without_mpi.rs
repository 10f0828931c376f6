//! A course program built without MPI but started by a launcher (faked here with Open MPI's
//! variables, so no MPI is needed) must not run: one line, exit code 2.

use std::process::{Command, ExitCode};

/// Any flags, so that the test harness's own arguments parse.
#[derive(clap::Parser)]
struct Args {
    #[arg(trailing_var_arg = true, allow_hyphen_values = true)]
    _rest: Vec<String>,
}

fn program(_: Args) -> course::Result {
    println!("the program ran");
    Ok(())
}

/// The child: runs `course::run` and exits with its code.
#[test]
fn child_entry() {
    if std::env::var_os("COURSE_LAUNCHER_CHILD").is_none() {
        return;
    }
    let code = course::run(program);
    let code = if code == ExitCode::from(2) {
        2
    } else if code == ExitCode::SUCCESS {
        0
    } else {
        1
    };
    std::process::exit(code);
}

fn run_child(env: &[(&str, &str)]) -> std::process::Output {
    let _watchdog = course::watchdog(std::time::Duration::from_secs(60));
    let mut command = Command::new(std::env::current_exe().unwrap());
    command.args(["--exact", "child_entry", "--nocapture", "--test-threads", "1"]);
    command.env("COURSE_LAUNCHER_CHILD", "1");
    for variable in ["OMPI_COMM_WORLD_RANK", "OMPI_COMM_WORLD_SIZE", "PMIX_RANK", "PMI_RANK"] {
        command.env_remove(variable);
    }
    command.envs(env.iter().copied());
    command.output().unwrap()
}

#[test]
fn started_by_mpirun_but_built_without_mpi_exits_2_with_one_line() {
    if mp_mpi::built_with_mpi() {
        return; // this build would start MPI for real: tests/mpirun.rs in mp-mpi covers it
    }
    let output = run_child(&[("OMPI_COMM_WORLD_RANK", "0"), ("OMPI_COMM_WORLD_SIZE", "2")]);
    let stderr = String::from_utf8_lossy(&output.stderr);
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert_eq!(output.status.code(), Some(2), "{stdout}\n{stderr}");
    assert!(!stdout.contains("the program ran"), "{stdout}");
    let lines: Vec<&str> =
        stderr.lines().filter(|line| line.contains("built without MPI")).collect();
    assert_eq!(lines.len(), 1, "{stderr}");
    assert!(lines[0].contains("Open MPI's mpirun (rank 0 of 2)"), "{stderr}");
    assert!(lines[0].contains("--features mpi"), "{stderr}");
    assert!(lines[0].contains("-n 2"), "{stderr}");

    // Rank 1 says nothing (rank 0 speaks for the job) but does not run either.
    let output = run_child(&[("OMPI_COMM_WORLD_RANK", "1"), ("OMPI_COMM_WORLD_SIZE", "2")]);
    assert_eq!(output.status.code(), Some(2));
    assert!(!String::from_utf8_lossy(&output.stderr).contains("built without MPI"));
    assert!(!String::from_utf8_lossy(&output.stdout).contains("the program ran"));
}

#[test]
fn without_a_launcher_the_program_runs() {
    let output = run_child(&[]);
    assert_eq!(output.status.code(), Some(0));
    assert!(String::from_utf8_lossy(&output.stdout).contains("the program ran"));
    assert!(course::mpi_world().is_none());
    assert_eq!(course::with_mpi_session(|session| session.rank()), None);
}
