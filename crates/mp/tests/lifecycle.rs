//! Workers never outlive their parent, and a bad environment gives a clear message instead of a
//! hang or a silent exit.
//!
//! Its own `main` (no test harness): some cases run this very binary as a normal program with
//! `MP_WORKER_FD` or `MP_STARTUP_TIMEOUT_MS` set by hand (the "probes" below), and one moves a
//! process into a cgroup of its own.

mod common;

use std::{
    process::{Command, Stdio},
    time::Duration,
};

use common::watchdog;
use mp::Process;

const LIMIT: Duration = Duration::from_secs(120);
/// What a probe does once `mp::init()` has returned.
const PROBE: &str = "MP_TEST_PROBE";
fn main() {
    mp::init();
    if std::env::var(PROBE).as_deref() == Ok("startup-timeout") {
        return startup_timeout_probe();
    }
    let tests: &[(&str, fn())] = &[(
        "a_bad_startup_timeout_is_an_error_naming_the_variable",
        a_bad_startup_timeout_is_an_error_naming_the_variable,
    )];
    // `cargo test --test lifecycle -- NAME` runs the tests whose name contains NAME.
    let filter: Vec<String> =
        std::env::args().skip(1).filter(|arg| !arg.starts_with('-')).collect();
    let mut passed = 0;
    for &(name, test) in tests {
        if !filter.is_empty() && !filter.iter().any(|part| name.contains(part.as_str())) {
            continue;
        }
        println!("test {name} ...");
        let _guard = watchdog(LIMIT);
        test();
        println!("test {name} ... ok");
        passed += 1;
    }
    println!("{passed} passed, 0 failed");
}

// ---------------------------------------------------------------------------------------------
// MP_STARTUP_TIMEOUT_MS.

fn double(x: u32) -> u32 {
    x * 2
}

/// Prints what `Pool::new` and `Process::spawn` give, one line each.
fn startup_timeout_probe() {
    match mp::Pool::new(1) {
        Ok(pool) => println!("pool: {:?}", pool.map(double, [1])),
        Err(error) => println!("pool: {error:?}: {error}"),
    }
    match Process::spawn(double, 1) {
        Ok(mut process) => println!("process: {:?}", process.join()),
        Err(error) => println!("process: {error:?}: {error}"),
    }
}

fn run_startup_timeout_probe(value: &str) -> String {
    let output = Command::new(std::env::current_exe().unwrap())
        .env("MP_STARTUP_TIMEOUT_MS", value)
        .env(PROBE, "startup-timeout")
        .stdin(Stdio::null())
        .output()
        .unwrap();
    assert!(output.status.success(), "{output:?}");
    String::from_utf8(output.stdout).unwrap()
}

fn a_bad_startup_timeout_is_an_error_naming_the_variable() {
    for value in ["abc", "-5", "0", "3600001", "99999999999999999999", " 100", "1.5", ""] {
        let text = run_startup_timeout_probe(value);
        let lines: Vec<&str> = text.lines().collect();
        assert_eq!(lines.len(), 2, "{text}");
        for line in lines {
            assert!(
                line.contains("InvalidArgument")
                    && line.contains(&format!("MP_STARTUP_TIMEOUT_MS={value:?}"))
                    && line.contains("from 1 to 3600000"),
                "MP_STARTUP_TIMEOUT_MS={value:?}: {line}"
            );
        }
    }
    // The accepted range, both ends of it.
    for value in ["3600000", "20000"] {
        let text = run_startup_timeout_probe(value);
        assert_eq!(text, "pool: Ok([2])\nprocess: Ok(2)\n", "MP_STARTUP_TIMEOUT_MS={value}");
    }
}
