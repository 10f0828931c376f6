//! Running other programs (python3, mpicc, mpirun) with a time limit, and finding them.

use std::{
    io::Read,
    path::{Path, PathBuf},
    process::{Command, Stdio},
    thread,
    time::{Duration, Instant},
};

/// What a finished program printed on its standard output (its standard error only shows
/// in errors).
#[derive(Debug)]
pub struct Finished {
    /// Its standard output.
    pub stdout: String,
}

/// The full path of `program` if it is on `PATH` (or is itself a path to a file).
pub fn which(program: &str) -> Option<PathBuf> {
    if program.contains('/') {
        let path = PathBuf::from(program);
        return path.is_file().then_some(path);
    }
    let path = std::env::var_os("PATH")?;
    std::env::split_paths(&path)
        .map(|dir| dir.join(program))
        .find(|candidate| is_executable(candidate))
}

fn is_executable(path: &Path) -> bool {
    use std::os::unix::fs::PermissionsExt;
    path.metadata().is_ok_and(|meta| meta.is_file() && meta.permissions().mode() & 0o111 != 0)
}

/// Runs `command` in its own process group and waits at most `limit`. A program that exits
/// non-zero, or runs too long (its whole group is then stopped with SIGTERM, then SIGKILL),
/// is an error that says so and quotes the end of its standard error.
pub fn run(mut command: Command, limit: Duration) -> Result<Finished, String> {
    use std::os::unix::process::CommandExt;
    let shown = describe(&command);
    command.stdin(Stdio::null()).stdout(Stdio::piped()).stderr(Stdio::piped()).process_group(0);
    let mut child =
        command.spawn().map_err(|error| format!("could not start `{shown}`: {error}"))?;
    let mut stdout = child.stdout.take().expect("stdout is piped");
    let mut stderr = child.stderr.take().expect("stderr is piped");
    let out_reader = thread::spawn(move || {
        let mut text = String::new();
        let _ = stdout.read_to_string(&mut text);
        text
    });
    let err_reader = thread::spawn(move || {
        let mut text = String::new();
        let _ = stderr.read_to_string(&mut text);
        text
    });
    let started = Instant::now();
    let mut timed_out = false;
    let status = loop {
        match child.try_wait() {
            Ok(Some(status)) => break status,
            Ok(None) => {}
            Err(error) => return Err(format!("waiting for `{shown}`: {error}")),
        }
        if started.elapsed() > limit && !timed_out {
            timed_out = true;
            stop_group(child.id(), "TERM");
            // Two seconds to end cleanly (mpirun stops its ranks on SIGTERM), then SIGKILL.
            let terminated = Instant::now();
            while terminated.elapsed() < Duration::from_secs(2) {
                if matches!(child.try_wait(), Ok(Some(_))) {
                    break;
                }
                thread::sleep(Duration::from_millis(20));
            }
            stop_group(child.id(), "KILL");
        }
        thread::sleep(Duration::from_millis(20));
    };
    let stdout = out_reader.join().unwrap_or_default();
    let stderr = err_reader.join().unwrap_or_default();
    if timed_out {
        return Err(format!(
            "`{shown}` took longer than {limit:?} and was stopped{}",
            tail(&stderr)
        ));
    }
    if !status.success() {
        return Err(format!("`{shown}` failed ({status}){}", tail(&stderr)));
    }
    Ok(Finished { stdout })
}

/// Sends `signal` to the process group `group` (which this program created) with kill(1).
fn stop_group(group: u32, signal: &str) {
    let _ = Command::new("kill")
        .args([format!("-{signal}"), "--".to_string(), format!("-{group}")])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status();
}

/// The command line, for messages.
fn describe(command: &Command) -> String {
    let mut words = vec![command.get_program().to_string_lossy().into_owned()];
    words.extend(command.get_args().map(|arg| {
        let arg = arg.to_string_lossy();
        if arg.chars().count() > 60 {
            format!("{}...", arg.chars().take(57).collect::<String>())
        } else {
            arg.into_owned()
        }
    }));
    words.join(" ")
}

/// The last lines of a program's standard error, for an error message.
pub fn tail(stderr: &str) -> String {
    let lines: Vec<&str> = stderr.lines().filter(|line| !line.trim().is_empty()).collect();
    if lines.is_empty() {
        return String::new();
    }
    let start = lines.len().saturating_sub(6);
    format!(":\n    {}", lines[start..].join("\n    "))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn finds_a_shell_and_not_a_made_up_program() {
        assert!(which("sh").is_some());
        assert!(which("no-such-program-mp-bench").is_none());
        assert!(which("/no/such/file").is_none());
    }

    #[test]
    fn output_and_failures_are_reported() {
        let mut ok = Command::new("sh");
        ok.args(["-c", "echo out; echo err >&2"]);
        assert_eq!(run(ok, Duration::from_secs(10)).unwrap().stdout, "out\n");

        let mut failing = Command::new("sh");
        failing.args(["-c", "echo broken >&2; exit 3"]);
        let error = run(failing, Duration::from_secs(10)).unwrap_err();
        assert!(error.contains("failed") && error.contains("broken"), "{error}");

        let error = run(Command::new("no-such-program-mp-bench"), Duration::from_secs(1));
        assert!(error.unwrap_err().contains("could not start"));
    }

    #[test]
    fn a_program_over_its_limit_is_stopped() {
        let mut slow = Command::new("sh");
        slow.args(["-c", "sleep 30"]);
        let error = run(slow, Duration::from_millis(100)).unwrap_err();
        assert!(error.contains("took longer"), "{error}");
    }

    #[test]
    fn the_tail_keeps_the_last_lines() {
        assert_eq!(tail(""), "");
        let many: String = (1..=10).map(|n| format!("line {n}\n")).collect();
        assert!(tail(&many).ends_with("line 10") && !tail(&many).contains("line 4\n"));
    }
}
