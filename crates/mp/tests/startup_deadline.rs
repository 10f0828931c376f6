//! A worker that hangs before `mp::init()` must be killed at the start-up deadline, and the
//! caller must get an error instead of waiting forever: the pool's first worker (which
//! `Pool::new` waits for) and a later one (which the dispatcher waits for while the first
//! works).

use std::time::{Duration, Instant};

/// Workers whose number is in this variable start normally; the others hang.
const HEALTHY: &str = "MP_TEST_HEALTHY_WORKERS";
/// A file the first healthy worker creates: the others see it and hang.
const MARKER: &str = "MP_TEST_MARKER";

fn main() {
    if std::env::var_os("MP_WORKER_FD").is_some() && !lucky_worker() {
        // A worker stuck in slow start-up code before it reaches mp::init().
        std::thread::sleep(Duration::from_secs(120));
    }
    mp::init();
    // SAFETY (of the calls): no other thread exists yet in this test's main.
    #[allow(unsafe_code)]
    unsafe {
        std::env::set_var("MP_STARTUP_TIMEOUT_MS", "300");
    }
    let started = Instant::now();
    the_first_worker_hangs();
    a_later_worker_hangs();
    assert!(started.elapsed() < Duration::from_secs(60), "the deadline did not end the waits");
    println!("2 passed, 0 failed");
}

/// True for the one worker that may start, when a test asks for one.
fn lucky_worker() -> bool {
    let Some(marker) = std::env::var_os(MARKER) else { return false };
    std::env::var_os(HEALTHY).is_some()
        && std::fs::OpenOptions::new().write(true).create_new(true).open(marker).is_ok()
}

/// The pid in a "worker process <pid> ..." message; that process must be gone.
fn assert_named_worker_is_gone(text: &str) {
    let pid: u32 =
        text.split("worker process ").nth(1).unwrap().split(' ').next().unwrap().parse().unwrap();
    assert!(!std::path::Path::new(&format!("/proc/{pid}")).exists(), "worker {pid} left behind");
}

fn the_first_worker_hangs() {
    let error = mp::Pool::new(1).unwrap_err();
    let text = error.to_string();
    assert!(matches!(error, mp::Error::StartupFailed { .. }), "{error:?}");
    assert!(
        text.contains("did not report for duty") && text.contains("MP_STARTUP_TIMEOUT_MS"),
        "{text}"
    );
    assert_named_worker_is_gone(&text);
}

fn slow_square(x: u64) -> u64 {
    std::thread::sleep(Duration::from_millis(50));
    x * x
}

fn a_later_worker_hangs() {
    let marker = std::env::temp_dir().join(format!("mp-startup-marker-{}", std::process::id()));
    let _ = std::fs::remove_file(&marker);
    // SAFETY (of the calls): the pool of the first case is gone; no other thread exists.
    #[allow(unsafe_code)]
    unsafe {
        std::env::set_var(HEALTHY, "1");
        std::env::set_var(MARKER, &marker);
    }
    // The first worker starts and works; the second hangs before mp::init().
    let pool = mp::Pool::new(2).unwrap();
    let error = pool.map(slow_square, 0..100u64).unwrap_err();
    let text = error.to_string();
    assert!(text.contains("did not report for duty"), "{error:?}");
    assert_named_worker_is_gone(&text);
    let pids = pool.pids().to_vec();
    drop(pool);
    for pid in pids {
        assert!(!std::path::Path::new(&format!("/proc/{pid}")).exists(), "{pid} left behind");
    }
    let _ = std::fs::remove_file(&marker);
}
