//! Real faults: workers and parents killed, aborted or exiting. None of them may hang the
//! caller, leave a zombie, or leave an orphan running.

mod common;

use std::time::Duration;

use common::{eventually, is_gone_and_reaped, is_running, watchdog};
use mp::{Error, ExitReason, Pool, Process, Sender};

mp::test_support!();

const LIMIT: Duration = Duration::from_secs(60);

fn nap(millis: u64) -> u64 {
    std::thread::sleep(Duration::from_millis(millis));
    millis
}

fn abort_on_three(x: u32) -> u32 {
    if x == 3 {
        std::process::abort();
    }
    x
}

fn exit_on_three(x: u32) -> u32 {
    if x == 3 {
        std::process::exit(3);
    }
    x
}

#[test]
fn a_killed_worker_fails_the_map_and_breaks_the_pool_instead_of_hanging() {
    let _guard = watchdog(LIMIT);
    let pool = Pool::new(2).unwrap();
    let pids = pool.pids().to_vec();
    let victim = pids[0];
    let killer = std::thread::spawn(move || {
        std::thread::sleep(Duration::from_millis(300));
        std::process::Command::new("kill").args(["-KILL", &victim.to_string()]).status().unwrap();
    });
    // Tasks of 20 s: the map can only end early through the kill.
    let error = pool.map_chunked(nap, vec![20_000u64; 4], 1).unwrap_err();
    killer.join().unwrap();
    match &error {
        Error::WorkerDied { worker: Some(0), pid, reason: ExitReason::Signal(9), lost_tasks } => {
            assert_eq!(*pid, victim);
            assert!(
                !lost_tasks.is_empty() && lost_tasks.iter().all(|&task| task < 4),
                "{lost_tasks:?}"
            );
        }
        other => panic!("expected worker 0 killed by SIGKILL, got {other:?}"),
    }
    let text = error.to_string();
    assert!(
        text.contains("worker 0") && text.contains("SIGKILL") && text.contains("shut down"),
        "{text}"
    );
    assert!(matches!(pool.map(nap, vec![1u64]), Err(Error::PoolBroken { .. })));
    // Dropping the pool waits for its dispatcher: by then the survivor is killed and reaped.
    drop(pool);
    assert!(pids.iter().all(|&pid| is_gone_and_reaped(pid)));
}

#[test]
fn abort_and_exit_inside_a_task_are_reported_with_the_lost_task() {
    let _guard = watchdog(LIMIT);
    let pool = Pool::new(2).unwrap();
    match pool.map_chunked(abort_on_three, 0..8u32, 1) {
        Err(Error::WorkerDied { reason: ExitReason::Signal(6), lost_tasks, .. }) => {
            assert!(lost_tasks.contains(&3))
        }
        other => panic!("expected SIGABRT, got {other:?}"),
    }
    let pool = Pool::new(2).unwrap();
    match pool.map_chunked(exit_on_three, 0..8u32, 1) {
        Err(Error::WorkerDied { reason: ExitReason::Code(3), lost_tasks, .. }) => {
            assert!(lost_tasks.contains(&3))
        }
        other => panic!("expected exit code 3, got {other:?}"),
    }
}

/// Whether the parent in the tests below moves into a process group of its own.
#[derive(serde::Serialize, serde::Deserialize)]
enum Group {
    Inherited,
    /// So the test can send it Ctrl-C (SIGINT to a whole group) without hitting the harness.
    OwnGroup,
}

/// A parent process with a pool: reports its workers' pids, then its own, and waits.
fn parent_with_pool((report, group): (Sender<Vec<u32>>, Group)) {
    if let Group::OwnGroup = group {
        #[allow(unsafe_code)]
        // SAFETY: setpgid and signal with integer arguments and the default handler.
        unsafe {
            libc::setpgid(0, 0);
            // A terminal's foreground job gets Ctrl-C; a job a script put in the background
            // starts with SIGINT ignored, and that would be inherited. Be the foreground job.
            libc::signal(libc::SIGINT, libc::SIG_DFL);
        }
    }
    let pool = Pool::new(2).unwrap();
    let mut pids = pool.pids().to_vec();
    pids.push(std::process::id());
    report.send(&pids).unwrap();
    std::thread::sleep(Duration::from_secs(60));
}

#[test]
fn workers_die_with_a_parent_killed_by_sigkill() {
    let _guard = watchdog(LIMIT);
    let (report, reports) = mp::pipe_simplex::<Vec<u32>>().unwrap();
    let mut parent = Process::spawn(parent_with_pool, (report, Group::Inherited)).unwrap();
    let mut workers = reports.recv().unwrap();
    workers.pop(); // the parent itself
    assert!(workers.iter().all(|&pid| is_running(pid)));
    parent.kill().unwrap();
    // Orphaned workers notice their parent's connection close and exit by themselves.
    assert!(
        eventually(Duration::from_secs(20), || workers.iter().all(|&pid| !is_running(pid))),
        "orphans left"
    );
}

#[test]
fn ctrl_c_stops_the_parent_and_its_workers() {
    let _guard = watchdog(LIMIT);
    let (report, reports) = mp::pipe_simplex::<Vec<u32>>().unwrap();
    let mut leader = Process::spawn(parent_with_pool, (report, Group::OwnGroup)).unwrap();
    let pids = reports.recv().unwrap();
    let group = format!("-{}", leader.pid());
    let status = std::process::Command::new("kill").args(["-INT", "--", &group]).status().unwrap();
    assert!(status.success());
    match leader.join() {
        Err(Error::WorkerDied { reason: ExitReason::Signal(2), .. }) => {}
        other => panic!("expected the leader to die of SIGINT, got {other:?}"),
    }
    assert!(
        eventually(Duration::from_secs(20), || pids.iter().all(|&pid| !is_running(pid))),
        "survivors"
    );
}
