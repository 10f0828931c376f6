//! What a program whose `main` returns `mp::Result<()>` (as the README recommends) prints when
//! a rank fails: the readable message, not `RankFailed { .. }` with escaped quotes.
//!
//! Its own `main`, because the text under test is what the standard library prints when `main`
//! returns an error: the test runs this same binary again as that program and reads its stderr.

use std::{process::Command, time::Duration};

/// Set in the copy of this binary that plays the failing program.
const FAILING_PROGRAM: &str = "MP_TEST_FAILING_PROGRAM";

fn refuses_on_rank_0(comm: mp::Comm, _: ()) -> usize {
    use mp::Communicator as _;
    assert!(comm.rank() != 0, "rank 0 was given \"bad\" input");
    comm.rank()
}

fn main() -> mp::Result<()> {
    mp::init();
    if std::env::var_os(FAILING_PROGRAM).is_some() {
        mp::launch(2, refuses_on_rank_0, ())?;
        return Ok(());
    }
    let _guard = mp::testing::watchdog(Duration::from_secs(120));
    a_failed_rank_ends_main_with_the_readable_message();
    println!("1 passed, 0 failed");
    Ok(())
}

fn a_failed_rank_ends_main_with_the_readable_message() {
    let output =
        Command::new(std::env::current_exe().unwrap()).env(FAILING_PROGRAM, "1").output().unwrap();
    assert_eq!(output.status.code(), Some(1), "{output:?}");
    let stderr = String::from_utf8_lossy(&output.stderr);
    // The last line is what `main` returned (a worker reports its panic only to its parent).
    let ending = stderr.lines().last().unwrap_or_default();
    assert!(
        ending.starts_with(
            "Error: rank 0 failed, so all ranks were stopped: task panicked in worker process"
        ) && ending.ends_with(": rank 0 was given \"bad\" input"),
        "{stderr}"
    );
    assert!(!stderr.contains("RankFailed {") && !stderr.contains("\\\""), "{stderr}");
}
