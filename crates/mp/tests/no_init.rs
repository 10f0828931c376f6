//! A test binary that does NOT call `mp::test_support!()`: its workers cannot start, and mp
//! must say so quickly instead of hanging or starting workers without end.

use std::time::{Duration, Instant};

fn double(x: u32) -> u32 {
    x * 2
}

#[test]
fn a_binary_without_init_gets_a_clear_startup_error() {
    let started = Instant::now();
    let error = mp::Pool::new(2).unwrap_err();
    let text = error.to_string();
    assert!(matches!(error, mp::Error::StartupFailed { .. }), "{error:?}");
    assert!(text.contains("mp::init()") && text.contains("mp::test_support!()"), "{text}");
    let error = mp::Process::spawn(double, 1).unwrap_err();
    assert!(matches!(error, mp::Error::StartupFailed { .. }), "{error:?}");
    // Bounded by the start-up deadline, not a hang (generous: machines are shared).
    assert!(started.elapsed() < Duration::from_secs(60));
}
