//! `cargo xtask mpirun`: bad input gets one line and exit code 2 (no MPI needed), and where
//! `mpirun` is installed, one real job of `mp-mpi`'s `mpi-hello`.
//!
//! Every run of xtask has a watchdog (it is killed, and the test fails, past its limit), and
//! the real job checks `/proc` afterwards for processes of the program it ran.

use std::{
    io::Read,
    path::{Path, PathBuf},
    process::{Command, Stdio},
    time::{Duration, Instant},
};

/// mp-mpi's program of MPI scenarios.
const SELFTEST: &str = "mp-mpi-selftest";

/// Long enough for a cold release build of rsmpi (bindgen) on a loaded 2-core machine.
const LIMIT: Duration = Duration::from_secs(1200);

fn workspace_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).parent().unwrap().to_path_buf()
}

/// `xtask mpirun ARGS` from the workspace root, under the watchdog; `path` replaces `PATH`
/// when given. Returns (exit code, stdout, stderr).
fn mpirun(args: &[&str], path: Option<&Path>) -> (Option<i32>, String, String) {
    let mut command = Command::new(env!("CARGO_BIN_EXE_xtask"));
    command.arg("mpirun").args(args);
    xtask(command, path, &[])
}

/// Runs xtask `command` from the workspace root under the watchdog, with `PATH` replaced
/// when `path` is given and `env` set (an empty value removes the variable).
fn xtask(
    mut command: Command,
    path: Option<&Path>,
    env: &[(&str, &str)],
) -> (Option<i32>, String, String) {
    command.current_dir(workspace_root()).env("CARGO", env!("CARGO"));
    if let Some(path) = path {
        command.env("PATH", path);
    }
    for (key, value) in env {
        if value.is_empty() {
            command.env_remove(key);
        } else {
            command.env(key, value);
        }
    }
    // Pipes, not files: Open MPI forwards every rank's output, and writes of two ranks into
    // one file opened without O_APPEND overwrite each other.
    command.stdin(Stdio::null()).stdout(Stdio::piped()).stderr(Stdio::piped());
    let mut child = command.spawn().unwrap();
    // Read by threads that hand the text over a channel: a process left behind that holds a
    // pipe open fails the test after a while instead of hanging it.
    let read = |pipe: Option<Box<dyn Read + Send>>| {
        let (send, receive) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            let mut text = String::new();
            if let Some(mut pipe) = pipe {
                let _ = pipe.read_to_string(&mut text);
            }
            let _ = send.send(text);
        });
        receive
    };
    let stdout = read(child.stdout.take().map(|p| Box::new(p) as Box<dyn Read + Send>));
    let stderr = read(child.stderr.take().map(|p| Box::new(p) as Box<dyn Read + Send>));
    let started = Instant::now();
    let status = loop {
        if let Some(status) = child.try_wait().unwrap() {
            break Some(status);
        }
        if started.elapsed() > LIMIT {
            let _ = child.kill();
            let _ = child.wait();
            break None;
        }
        std::thread::sleep(Duration::from_millis(50));
    };
    let Some(status) = status else {
        panic!("xtask mpirun ran over {LIMIT:?} and was killed");
    };
    let drained = |text: std::sync::mpsc::Receiver<String>| {
        text.recv_timeout(Duration::from_secs(60))
            .expect("the output stays open after xtask ended: a process was left behind")
    };
    let (stdout, stderr) = (drained(stdout), drained(stderr));
    (status.code(), stdout, stderr)
}

/// Exit code 2 and one `error:` line that says `says`, with no panic or backtrace.
fn refused(args: &[&str], path: Option<&Path>, says: &str) {
    let (code, stdout, stderr) = mpirun(args, path);
    assert_eq!(code, Some(2), "{args:?}: {stdout}{stderr}");
    assert!(stderr.starts_with("error: "), "{args:?}: {stderr}");
    assert!(stderr.contains(says), "{args:?} should say {says:?}: {stderr}");
    assert!(!stderr.contains("panicked") && !stderr.contains("RUST_BACKTRACE"), "{stderr}");
    assert!(stdout.is_empty(), "{args:?}: {stdout}");
}

#[test]
fn bad_ranks_and_time_limits_are_refused_in_one_line() {
    refused(&["-p", "mp-mpi", "-n", "0"], None, "-n 0: a job needs at least 1 rank");
    refused(&["-p", "mp-mpi", "-n", "100000"], None, "at most 64 ranks");
    refused(&["-p", "mp-mpi", "-n", "2", "--timeout", "0"], None, "1 to 86400 seconds");
    refused(&["-p", "mp-mpi", "-n", "two"], None, "invalid value 'two'");
    refused(&["-p", "mp-mpi"], None, "-n <N>");
}

#[test]
fn unknown_packages_and_packages_without_mpi_are_refused_naming_those_with_it() {
    refused(&["-p", "no-such-package", "-n", "2"], None, "there is no package `no-such-package`");
    refused(&["-p", "mp", "-n", "2"], None, "`mp` has no `mpi` feature");
    refused(&["-p", "mp", "-n", "2"], None, "packages with an `mpi` feature: ");
    refused(&["-p", "mp", "-n", "2"], None, "mp-mpi");
    refused(&["-p", "mp-mpi", "-n", "2"], None, "several binaries");
    refused(&["-p", "mp-mpi", "--bin", "nope", "-n", "2"], None, "no binary `nope`");
}

#[test]
fn a_machine_without_mpirun_is_told_which_packages_to_install() {
    let empty = tempfile::Builder::new().prefix("xtask-no-mpirun-").tempdir().unwrap();
    refused(&["-p", "solution-4", "-n", "2"], Some(empty.path()), "openmpi-bin libopenmpi-dev");
}

/// Live (not zombie) processes whose executable is `program`.
fn processes_of(program: &Path) -> Vec<String> {
    std::fs::read_dir("/proc")
        .unwrap()
        .flatten()
        .filter_map(|entry| entry.file_name().into_string().ok())
        .filter(|pid| pid.bytes().all(|b| b.is_ascii_digit()))
        .filter(|pid| std::fs::read_link(format!("/proc/{pid}/exe")).is_ok_and(|e| e == program))
        .filter(|pid| {
            std::fs::read_to_string(format!("/proc/{pid}/stat")).is_ok_and(|stat| {
                !stat.rsplit(')').next().unwrap_or("").trim_start().starts_with('Z')
            })
        })
        .collect()
}

#[test]
fn where_mpirun_is_installed_a_real_job_runs_and_leaves_nothing() {
    if let Some(path) = std::env::var_os("PATH") {
        let found = std::env::split_paths(&path).any(|dir| dir.join("mpirun").is_file());
        if !found {
            eprintln!("no mpirun on PATH: only the refusals are tested here");
            return;
        }
    }
    let (code, stdout, stderr) = mpirun(
        &["-p", "mp-mpi", "--bin", SELFTEST, "-n", "2", "--timeout", "120", "--", "messages"],
        None,
    );
    if code == Some(2) && stderr.contains("error: the MPI build failed: ") {
        // mpirun without libclang or MPI's headers: the one-line explanation is the answer,
        // except in CI, where everything must be installed.
        assert!(std::env::var("CI").is_err(), "{stderr}");
        assert_eq!(stderr.lines().filter(|l| l.starts_with("error:")).count(), 1, "{stderr}");
        return;
    }
    assert_eq!(code, Some(0), "{stdout}\n{stderr}");
    // The exact command line comes first, before anything the job prints.
    let line = stderr.lines().find(|l| l.starts_with("mpirun ")).unwrap_or_default();
    assert!(line.starts_with("mpirun -n 2 --timeout 120 "), "{stderr}");
    assert!(line.ends_with("target/release/mp-mpi-selftest messages"), "{line}");
    // Each rank says so once. (Not "rank R: ..." whole: `eprintln!` writes its pieces one by
    // one, and mpirun passes on the pieces of two ranks as they come, interleaved.)
    assert_eq!(stderr.matches("all checks passed").count(), 2, "{stderr}");
    let program = workspace_root().join("target/release/mp-mpi-selftest");
    assert_eq!(processes_of(&program), Vec::<String>::new());
}

#[test]
fn without_mpi_check_lists_its_mpi_rows_as_skipped_and_fails_only_in_ci() {
    let empty = tempfile::Builder::new().prefix("xtask-no-mpi-").tempdir().unwrap();
    let check = || {
        let mut command = Command::new(env!("CARGO_BIN_EXE_xtask"));
        command.args(["check", "--mpi-only"]);
        command
    };
    let (code, stdout, stderr) = xtask(check(), Some(empty.path()), &[("CI", "")]);
    assert_eq!(code, Some(0), "{stdout}{stderr}");
    assert!(stdout.contains("== MPI (week 4)"), "{stdout}");
    let skipped = stdout.lines().filter(|line| line.starts_with("SKIP  ")).count();
    assert!(skipped >= 4, "{stdout}");
    assert!(stdout.contains("not found: mpirun, mpicc"), "{stdout}");
    assert!(stdout.contains("apt-get install openmpi-bin libopenmpi-dev libclang-dev"), "{stdout}");
    assert!(stdout.contains(&format!("0 passed, 0 failed, {skipped} skipped")), "{stdout}");

    let (code, stdout, stderr) = xtask(check(), Some(empty.path()), &[("CI", "true")]);
    assert_eq!(code, Some(1), "{stdout}{stderr}");
    assert!(stdout.contains("CI=true: MPI must be installed here"), "{stdout}");
}
