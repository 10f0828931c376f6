//! `cargo xtask mpirun`: bad input gets one line and exit code 2 (no MPI needed), and where
//! `mpirun` is installed, one real job of `mp-mpi`'s `mpi-hello`.
//!
//! Every run of xtask has a watchdog (it is killed, and the test fails, past its limit), and
//! the real job checks `/proc` afterwards for processes of the program it ran.

use std::{
    path::{Path, PathBuf},
    process::{Command, Stdio},
    time::{Duration, Instant},
};

/// Long enough for a cold release build of rsmpi (bindgen) on a loaded 2-core machine.
const LIMIT: Duration = Duration::from_secs(1200);

fn workspace_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).parent().unwrap().to_path_buf()
}

/// `xtask mpirun ARGS` from the workspace root, under the watchdog; `path` replaces `PATH`
/// when given. Returns (exit code, stdout, stderr).
fn mpirun(args: &[&str], path: Option<&Path>) -> (Option<i32>, String, String) {
    let mut command = Command::new(env!("CARGO_BIN_EXE_xtask"));
    command.arg("mpirun").args(args).current_dir(workspace_root()).env("CARGO", env!("CARGO"));
    if let Some(path) = path {
        command.env("PATH", path);
    }
    let logs = tempfile::Builder::new().prefix("xtask-mpirun-").tempdir().unwrap();
    let stdout = std::fs::File::create(logs.path().join("stdout")).unwrap();
    let stderr = std::fs::File::create(logs.path().join("stderr")).unwrap();
    let mut child = command.stdin(Stdio::null()).stdout(stdout).stderr(stderr).spawn().unwrap();
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
    let stdout = std::fs::read_to_string(logs.path().join("stdout")).unwrap_or_default();
    let stderr = std::fs::read_to_string(logs.path().join("stderr")).unwrap_or_default();
    let status = status.unwrap_or_else(|| panic!("xtask mpirun ran over {LIMIT:?}:\n{stderr}"));
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
    refused(&["-p", "mp", "-n", "2"], None, "packages that have one: ");
    refused(&["-p", "mp", "-n", "2"], None, "mp-mpi");
}

#[test]
fn a_machine_without_mpirun_is_told_which_packages_to_install() {
    let empty = tempfile::Builder::new().prefix("xtask-no-mpirun-").tempdir().unwrap();
    refused(&["-p", "mp-mpi", "-n", "2"], Some(empty.path()), "openmpi-bin libopenmpi-dev");
}
