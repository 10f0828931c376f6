//! A worker that hangs before `mp::init()` must be killed at the start-up deadline, and the
//! caller must get an error instead of waiting forever.

use std::time::{Duration, Instant};

fn main() {
    if std::env::var_os("MP_WORKER_FD").is_some() {
        // A worker stuck in slow start-up code before it reaches mp::init().
        std::thread::sleep(Duration::from_secs(120));
    }
    mp::init();
    // SAFETY (of the call): no other thread exists yet in this test's main.
    #[allow(unsafe_code)]
    unsafe {
        std::env::set_var("MP_STARTUP_TIMEOUT_MS", "300");
    }
    let started = Instant::now();
    let error = mp::Pool::new(1).unwrap_err();
    let text = error.to_string();
    assert!(matches!(error, mp::Error::StartupFailed { .. }), "{error:?}");
    assert!(
        text.contains("did not report for duty") && text.contains("MP_STARTUP_TIMEOUT_MS"),
        "{text}"
    );
    // The error names the worker; it must have been killed and reaped.
    let pid: u32 =
        text.split("worker process ").nth(1).unwrap().split(' ').next().unwrap().parse().unwrap();
    assert!(!std::path::Path::new(&format!("/proc/{pid}")).exists(), "worker {pid} left behind");
    assert!(started.elapsed() < Duration::from_secs(60), "the deadline did not end the wait");
    println!("1 passed, 0 failed");
}
