//! Real MPI jobs: `mp-mpi-selftest` (src/bin) started with `mpirun` through [`Mpirun`].
#![cfg(feature = "mpi")]

use std::{
    path::Path,
    process::Output,
    time::{Duration, Instant},
};

use mp_mpi::{Mpirun, mpirun::Binding};

const SELFTEST: &str = env!("CARGO_BIN_EXE_mp-mpi-selftest");

fn mpirun(ranks: usize, scenario: &str) -> (Output, Duration) {
    if let Some(missing) = mp_mpi::mpirun_missing() {
        panic!("the `mpi` feature's tests need mpirun: {missing}");
    }
    // One job at a time: the test harness runs tests in parallel, and concurrent jobs on a
    // small machine make Open MPI drop its own messages ("ORTE_ERROR_LOG: Out of resource in
    // show_help.c"), which the tests look for.
    static ONE_JOB: std::sync::Mutex<()> = std::sync::Mutex::new(());
    let _alone = ONE_JOB.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
    let job = Mpirun::new(SELFTEST, ranks)
        .timeout(Duration::from_secs(60))
        .bind_to(Binding::None)
        .arg(scenario);
    let started = Instant::now();
    let output = job.command().output().expect("mpirun starts");
    (output, started.elapsed())
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

/// Pids of live (not zombie) processes running `program`.
fn live_processes_of(program: &Path) -> Vec<u32> {
    let mut found = Vec::new();
    for entry in std::fs::read_dir("/proc").into_iter().flatten().flatten() {
        let Some(pid) = entry.file_name().to_str().and_then(|name| name.parse::<u32>().ok()) else {
            continue;
        };
        let exe = std::fs::read_link(entry.path().join("exe"));
        let stat = std::fs::read_to_string(entry.path().join("stat")).unwrap_or_default();
        let state = stat.rsplit_once(')').and_then(|(_, rest)| rest.split_whitespace().next());
        if exe.is_ok_and(|exe| exe == program) && !matches!(state, Some("Z" | "X") | None) {
            found.push(pid);
        }
    }
    found
}

/// Runs `scenario` on `ranks` ranks: the job succeeds and every rank says `passed`.
fn every_rank_passes(ranks: usize, scenario: &str, passed: &str) {
    let (output, _) = mpirun(ranks, scenario);
    let stderr = text(&output.stderr);
    assert!(output.status.success(), "{:?}\n{stderr}", output.status);
    for rank in 0..ranks {
        assert!(stderr.contains(&format!("rank {rank}: {passed}")), "{stderr}");
    }
}

#[test]
fn four_ranks_exchange_typed_and_raw_messages_through_a_comm() {
    let _watchdog = mp::testing::watchdog(Duration::from_secs(120));
    every_rank_passes(4, "messages", "all checks passed");
}

#[test]
fn a_hang_up_ends_an_echo_loop_as_a_closed_pipe_does() {
    let _watchdog = mp::testing::watchdog(Duration::from_secs(120));
    every_rank_passes(2, "hang-up", "hang-up checks passed");
}

#[test]
fn waiting_for_a_rank_that_has_finished_is_a_disconnect_not_a_hang() {
    let _watchdog = mp::testing::watchdog(Duration::from_secs(120));
    let (output, _) = mpirun(2, "finished");
    let stderr = text(&output.stderr);
    assert!(output.status.success(), "{:?}\n{stderr}", output.status);
    assert!(
        stderr.contains("rank 0: disconnected: ") && stderr.contains("MPI rank 1 (it has finished"),
        "{stderr}"
    );
}

#[test]
fn a_panicking_rank_ends_the_job_with_its_message_once() {
    let _watchdog = mp::testing::watchdog(Duration::from_secs(120));
    let (output, took) = mpirun(4, "panic");
    let stderr = text(&output.stderr);
    // MPI_Abort(101): mpirun's own code is the abort's. (Open MPI's banner about the abort
    // is not asserted: when other ranks finalize at that moment, mpirun sometimes loses it
    // with "ORTE_ERROR_LOG: Out of resource in show_help.c".)
    assert_eq!(output.status.code(), Some(101), "{stderr}");
    assert_eq!(stderr.matches("deliberate panic on rank 1").count(), 1, "{stderr}");
    eprintln!("a 4-rank job with a panicking rank ended in {:.2} s", took.as_secs_f64());
    // No rank process survives mpirun (zombies waiting for their new parent do not count).
    let deadline = Instant::now() + Duration::from_secs(10);
    let program = Path::new(SELFTEST).canonicalize().unwrap();
    loop {
        let live = live_processes_of(&program);
        if live.is_empty() {
            break;
        }
        assert!(Instant::now() < deadline, "ranks still running: {live:?}");
        std::thread::sleep(Duration::from_millis(50));
    }
}

#[test]
fn typed_messages_never_received_end_the_job_at_finalize_with_a_line() {
    let _watchdog = mp::testing::watchdog(Duration::from_secs(120));
    let (output, _) = mpirun(2, "unreceived");
    let stderr = text(&output.stderr);
    assert!(!output.status.success(), "{stderr}");
    assert!(
        stderr.contains("rank 0: 1 message to rank 1 was never received; ending the job"),
        "{stderr}"
    );
}
