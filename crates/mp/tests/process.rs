//! Process: results, exit reasons, panics, timeouts, kills, nesting.

mod common;

use std::time::Duration;

use common::{is_gone_and_reaped, watchdog};
use mp::{Error, ExitReason, Pool, Process};

mp::test_support!();

const LIMIT: Duration = Duration::from_secs(60);

fn describe(numbers: Vec<i64>) -> (i64, usize, String) {
    (numbers.iter().sum(), numbers.len(), format!("pid {}", std::process::id()))
}

fn panics(message: String) -> u8 {
    panic!("{message}");
}

fn exits_with(code: i32) -> u8 {
    std::process::exit(code);
}

fn aborts(_: ()) -> u8 {
    std::process::abort();
}

fn sleeps(millis: u64) -> u64 {
    std::thread::sleep(Duration::from_millis(millis));
    millis
}

fn map_in_a_nested_pool(n: u64) -> Vec<u64> {
    let pool = Pool::new(2).unwrap();
    pool.map(|x: u64| x + 1, 0..n).unwrap()
}

#[test]
fn join_returns_the_result_from_another_process() {
    let _guard = watchdog(LIMIT);
    let mut process = Process::spawn(describe, vec![1, 2, 3]).unwrap();
    let child_pid = process.pid();
    let (sum, len, seen_by) = process.join().unwrap();
    assert_eq!((sum, len), (6, 3));
    assert_eq!(seen_by, format!("pid {child_pid}"));
    assert_ne!(child_pid, std::process::id());
    assert_eq!(process.exit_reason(), Some(ExitReason::Code(0)));
    assert!(!process.is_alive());
    assert!(is_gone_and_reaped(child_pid));
    assert!(
        matches!(process.join(), Err(Error::InvalidArgument { .. })),
        "a second join is an error"
    );
}

#[test]
fn a_panic_is_reported_with_its_message_and_location() {
    let _guard = watchdog(LIMIT);
    let mut process = Process::spawn(panics, "index out of range".to_string()).unwrap();
    match process.join() {
        Err(Error::TaskPanicked { message, location, task_index: None, pid }) => {
            assert_eq!(message, "index out of range");
            assert!(location.unwrap().contains("process.rs"));
            assert_eq!(pid, process.pid());
        }
        other => panic!("expected TaskPanicked, got {other:?}"),
    }
    // Like Python, a process whose target failed exits with code 1.
    assert_eq!(process.exit_reason(), Some(ExitReason::Code(1)));
}

#[test]
fn exit_and_abort_are_reported_as_a_died_process() {
    let _guard = watchdog(LIMIT);
    let mut exits = Process::spawn(exits_with, 7).unwrap();
    match exits.join() {
        Err(Error::WorkerDied { worker: None, reason: ExitReason::Code(7), .. }) => {}
        other => panic!("expected WorkerDied with code 7, got {other:?}"),
    }
    let mut aborts = Process::spawn(aborts, ()).unwrap();
    let error = aborts.join().unwrap_err();
    assert!(matches!(error, Error::WorkerDied { reason: ExitReason::Signal(6), .. }), "{error:?}");
    assert!(error.to_string().contains("SIGABRT"), "{error}");
    assert_eq!(ExitReason::Signal(6).python_exitcode(), -6);
}

#[test]
fn join_timeout_leaves_it_running_and_kill_ends_it() {
    let _guard = watchdog(LIMIT);
    let mut process = Process::spawn(sleeps, 60_000).unwrap();
    assert!(process.join_timeout(Duration::from_millis(50)).unwrap_err().is_timeout());
    assert!(process.is_alive());
    assert_eq!(process.exit_reason(), None);
    process.kill().unwrap();
    assert_eq!(process.exit_reason(), Some(ExitReason::Signal(libc::SIGKILL)));
    assert!(is_gone_and_reaped(process.pid()));

    let mut quick = Process::spawn(sleeps, 10).unwrap();
    assert_eq!(quick.join_timeout(Duration::from_secs(30)).unwrap(), 10);
}

#[test]
fn dropping_an_unjoined_process_kills_and_reaps_it() {
    let _guard = watchdog(LIMIT);
    let process = Process::spawn(sleeps, 60_000).unwrap();
    let pid = process.pid();
    assert!(common::is_running(pid));
    drop(process);
    assert!(is_gone_and_reaped(pid));
}

/// What a worker sees of how it was started: its standard input, and the signal the kernel
/// sends it when its parent dies (asked for by `mp::init`).
fn how_started(_: ()) -> (String, i32) {
    let stdin = std::fs::read_link("/proc/self/fd/0").unwrap().display().to_string();
    let mut signal: libc::c_int = 0;
    // SAFETY (test): PR_GET_PDEATHSIG writes one int through the pointer.
    #[allow(unsafe_code)]
    let got = unsafe { libc::prctl(libc::PR_GET_PDEATHSIG, &mut signal as *mut libc::c_int) };
    assert_eq!(got, 0);
    (stdin, signal)
}

#[test]
fn a_worker_reads_from_dev_null_and_dies_with_its_parent() {
    let _guard = watchdog(LIMIT);
    let mut process = Process::spawn(how_started, ()).unwrap();
    assert_eq!(process.join().unwrap(), ("/dev/null".to_string(), libc::SIGKILL));
}

#[test]
fn a_process_can_run_its_own_pool() {
    let _guard = watchdog(LIMIT);
    let mut process = Process::spawn(map_in_a_nested_pool, 5).unwrap();
    assert_eq!(process.join().unwrap(), [1, 2, 3, 4, 5]);
}

#[test]
fn many_processes_leave_no_zombies() {
    let _guard = watchdog(LIMIT);
    let mut pids = Vec::new();
    for round in 0..20i64 {
        let mut process = Process::spawn(describe, vec![round]).unwrap();
        pids.push(process.pid());
        assert_eq!(process.join().unwrap().0, round);
    }
    assert!(pids.into_iter().all(is_gone_and_reaped));
}

#[test]
fn terminate_and_kill_end_it_and_join_says_which_signal() {
    let _guard = watchdog(LIMIT);
    type Stop = fn(&mut Process<u64>) -> mp::Result<()>;
    let stops: [(Stop, i32); 2] =
        [(Process::terminate, libc::SIGTERM), (Process::kill, libc::SIGKILL)];
    for (stop, signal) in stops {
        let mut process = Process::spawn(sleeps, 60_000).unwrap();
        stop(&mut process).unwrap();
        let error = process.join().unwrap_err();
        assert!(
            matches!(error, Error::WorkerDied { reason: ExitReason::Signal(s), .. } if s == signal),
            "{error:?}"
        );
    }
}

/// The worker's view of the settings mp gives every worker it starts.
fn worker_settings(_: ()) -> (Option<String>, Option<String>) {
    (std::env::var("GLIBC_TUNABLES").ok(), std::env::var("RAYON_NUM_THREADS").ok())
}

#[test]
fn workers_get_huge_page_malloc_and_one_rayon_thread_unless_told_otherwise() {
    let (tunables, rayon_threads) = Process::spawn(worker_settings, ()).unwrap().join().unwrap();
    // What the test's own environment says wins; otherwise mp's defaults apply.
    let expected_tunables =
        std::env::var("GLIBC_TUNABLES").unwrap_or_else(|_| "glibc.malloc.hugetlb=1".to_string());
    assert_eq!(tunables.as_deref(), Some(expected_tunables.as_str()));
    let expected_threads = std::env::var("RAYON_NUM_THREADS").unwrap_or_else(|_| "1".into());
    assert_eq!(rayon_threads.as_deref(), Some(expected_threads.as_str()));
}
