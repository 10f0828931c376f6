//! The graded tests of exercise 5. Run them with `cargo test -p exercise-5`.
//!
//! The ping-pong tests run your `ping_pong` against echo processes written here (one that
//! counts, one that damages the reply, one that hangs up), so each function is graded alone.
mp::test_support!();

use std::time::Duration;

use bandwidth::*;
use mp::{
    Connection, Process,
    units::{Bytes, Unit},
};

fn watchdog() -> course::Watchdog {
    course::watchdog(Duration::from_secs(60))
}

/// An echo written for the tests: sends back every message and counts them.
fn counting_echo(conn: Connection<()>) -> u64 {
    let mut count = 0;
    while let Ok(message) = conn.recv_bytes() {
        conn.send_bytes(&message).unwrap();
        count += 1;
    }
    count
}

/// Flips one bit in the middle of every non-empty reply.
fn damaging_echo(conn: Connection<()>) {
    while let Ok(mut message) = conn.recv_bytes() {
        if !message.is_empty() {
            let middle = message.len() / 2;
            message[middle] ^= 0x10;
        }
        conn.send_bytes(&message).unwrap();
    }
}

/// Sends back every message without its last byte.
fn truncating_echo(conn: Connection<()>) {
    while let Ok(mut message) = conn.recv_bytes() {
        message.pop();
        conn.send_bytes(&message).unwrap();
    }
}

/// Hangs up without answering.
fn silent_echo(conn: Connection<()>) {
    drop(conn);
}

fn micros(us: u64) -> Duration {
    Duration::from_micros(us)
}

fn assert_close(actual: f64, expected: f64, relative: f64, what: &str) {
    let error = ((actual - expected) / expected).abs();
    assert!(
        error <= relative,
        "{what}: got {actual:e}, expected {expected:e} (relative error {error:e})"
    );
}

#[test]
fn echo_sends_back_every_message_unchanged_and_returns_how_many_once_the_pipe_closes() {
    let _watchdog = watchdog();
    let (here, there) = mp::pipe::<()>().unwrap();
    let mut child = Process::spawn(echo, there).unwrap();
    let sizes = [0, 1, 1000, 1_000_003];
    for size in sizes {
        let message = given::message(size);
        here.send_bytes(&message).unwrap();
        let reply = here.recv_bytes().unwrap_or_else(|error| {
            let ended = match child.join_timeout(Duration::from_secs(20)) {
                Ok(count) => format!("echo() returned {count}"),
                Err(child_error) => format!("echo() failed: {child_error}"),
            };
            panic!("no reply to a {size} B message ({error}); {ended}")
        });
        assert_eq!(reply.len(), size, "the echo of a {size} B message has the wrong length");
        assert!(reply == message, "the echo of a {size} B message has different bytes");
    }
    drop(here);
    let echoed = child.join_timeout(Duration::from_secs(20)).unwrap();
    assert_eq!(echoed, sizes.len() as u64, "echo() must return how many messages it echoed");
}

#[test]
fn ping_pong_makes_warmup_plus_reps_round_trips_and_keeps_one_positive_sample_per_rep() {
    let _watchdog = watchdog();
    let (here, there) = mp::pipe::<()>().unwrap();
    let mut child = Process::spawn(counting_echo, there).unwrap();
    let runs = [(0, 2, 5), (1, 0, 7), (1_000_003, 1, 3), (64, 3, 1)];
    for (size, warmup, reps) in runs {
        let samples = ping_pong(&here, size, warmup, reps)
            .unwrap_or_else(|error| panic!("ping_pong at {size} B failed: {error}"));
        assert_eq!(samples.len(), reps as usize, "one sample per timed round trip, at {size} B");
        assert!(samples.iter().all(|sample| !sample.is_zero()), "a sample of 0 at {size} B");
    }
    drop(here);
    let round_trips: u32 = runs.iter().map(|&(_, warmup, reps)| warmup + reps).sum();
    assert_eq!(
        child.join_timeout(Duration::from_secs(20)).unwrap(),
        u64::from(round_trips),
        "the echo counted a different number of round trips than warm-up + reps"
    );
}

#[test]
fn ping_pong_checks_every_reply_byte_for_byte() {
    let _watchdog = watchdog();
    for size in [1, 1_000_003] {
        let (here, there) = mp::pipe::<()>().unwrap();
        let _child = Process::spawn(damaging_echo, there).unwrap();
        match ping_pong(&here, size, 0, 3) {
            Err(PingPongError::WrongReply { sent, received, .. }) => {
                assert_eq!((sent, received), (size, size));
            }
            other => panic!("a damaged {size} B reply must give WrongReply, got {other:?}"),
        }
    }
    let (here, there) = mp::pipe::<()>().unwrap();
    let _child = Process::spawn(truncating_echo, there).unwrap();
    match ping_pong(&here, 1000, 2, 3) {
        Err(PingPongError::WrongReply { sent: 1000, received: 999, .. }) => {}
        other => panic!("a reply one byte short must give WrongReply, got {other:?}"),
    }
}

#[test]
fn ping_pong_reports_an_echo_that_hung_up_as_a_pipe_error() {
    let _watchdog = watchdog();
    let (here, there) = mp::pipe::<()>().unwrap();
    let mut child = Process::spawn(silent_echo, there).unwrap();
    child.join_timeout(Duration::from_secs(20)).unwrap();
    match ping_pong(&here, 10, 1, 5) {
        Err(PingPongError::Pipe(error)) => assert!(error.is_disconnected(), "{error}"),
        other => panic!("expected PingPongError::Pipe(Disconnected), got {other:?}"),
    }
}

#[test]
fn summary_of_an_odd_count_takes_the_middle_value_whatever_the_order() {
    let _watchdog = watchdog();
    let samples = [micros(30), micros(10), micros(50), micros(20), micros(900)];
    let summary = summarize(&samples).expect("five samples have a summary");
    assert_eq!(summary, Summary { count: 5, min: micros(10), median: micros(30) });
    assert_eq!(samples[0], micros(30), "summarize() must not reorder the caller's samples");
    let one = summarize(&[micros(7)]).unwrap();
    assert_eq!(one, Summary { count: 1, min: micros(7), median: micros(7) });
}

#[test]
fn summary_of_an_even_count_averages_the_two_middle_values() {
    let _watchdog = watchdog();
    let samples = [micros(40), micros(10), micros(1000), micros(20)];
    let summary = summarize(&samples).unwrap();
    assert_eq!(summary, Summary { count: 4, min: micros(10), median: micros(30) });
    let odd_nanos = [Duration::from_nanos(3), Duration::from_nanos(2)];
    assert_eq!(summarize(&odd_nanos).unwrap().median, Duration::from_nanos(2));
    let huge = [Duration::MAX, Duration::MAX];
    assert_eq!(summarize(&huge).unwrap().median, Duration::MAX, "no overflow on adding");
}

#[test]
fn summary_of_no_samples_is_none() {
    let _watchdog = watchdog();
    assert_eq!(summarize(&[]), None);
}

#[test]
fn one_way_time_is_half_the_round_trip() {
    let _watchdog = watchdog();
    assert_eq!(one_way(micros(20)), micros(10));
    assert_eq!(one_way(Duration::from_nanos(3)), Duration::from_nanos(1));
    assert_eq!(one_way(Duration::ZERO), Duration::ZERO);
}

#[test]
fn one_megabyte_with_a_20_us_round_trip_is_100_gigabytes_per_second() {
    let _watchdog = watchdog();
    let one_megabyte = Bytes(1_000_000);
    let rate = bandwidth(one_megabyte, one_way(micros(20))).unwrap();
    assert_close(rate.bytes_per_second(), 1e11, 1e-12, "B/s");
    assert_close(rate.in_unit_per_second(Unit::MB), 100_000.0, 1e-12, "MB/s");
    assert_close(rate.in_unit_per_second(Unit::MiB), 95_367.431_640_625, 1e-12, "MiB/s");
    assert_close(rate.in_unit_per_second(Unit::Gb), 800.0, 1e-12, "Gb/s");
    // size / one-way = 2 x size / round trip: both directions' bytes over the whole trip.
    let one_mebibyte = Bytes(1 << 20);
    let rate = bandwidth(one_mebibyte, one_way(Duration::from_millis(2))).unwrap();
    assert_close(rate.in_unit_per_second(Unit::MiB), 1000.0, 1e-12, "1 MiB in 1 ms, MiB/s");
}

#[test]
fn bandwidth_refuses_a_zero_time() {
    let _watchdog = watchdog();
    assert!(bandwidth(Bytes(1), Duration::ZERO).is_err());
}

fn model_time(size: f64) -> f64 {
    5e-6 + size / 2e9
}

#[test]
fn fit_recovers_latency_and_bandwidth_from_exact_data() {
    let _watchdog = watchdog();
    let points: Vec<(f64, f64)> = given::log_sizes(1, 64 << 20, 4)
        .into_iter()
        .map(|s| (s as f64, model_time(s as f64)))
        .collect();
    let model = fit(&points).unwrap();
    assert_close(model.latency_seconds, 5e-6, 1e-9, "latency [s]");
    assert_close(model.bytes_per_second, 2e9, 1e-9, "bandwidth [B/s]");
    let two = fit(&[(0.0, 1.0), (4.0, 3.0)]).unwrap();
    assert_close(two.latency_seconds, 1.0, 1e-12, "latency from two points");
    assert_close(two.bytes_per_second, 2.0, 1e-12, "bandwidth from two points");
}

#[test]
fn fit_weighs_relative_errors_so_noisy_data_still_gives_both_within_a_few_percent() {
    let _watchdog = watchdog();
    // Up to ±10 % of multiplicative noise, fixed seed. Unweighted least squares misses the
    // latency by about 60 % here: the noise of the large sizes swamps it.
    let mut state = 12345u64;
    let mut noise = || {
        state =
            state.wrapping_mul(6_364_136_223_846_793_005).wrapping_add(1_442_695_040_888_963_407);
        ((state >> 11) as f64 / (1u64 << 53) as f64 - 0.5) * 0.2
    };
    let mut points = Vec::new();
    for size in given::log_sizes(1, 64 << 20, 4) {
        for _ in 0..3 {
            points.push((size as f64, model_time(size as f64) * (1.0 + noise())));
        }
    }
    let model = fit(&points).unwrap();
    assert_close(model.latency_seconds, 5e-6, 0.03, "latency [s] from noisy data");
    assert_close(model.bytes_per_second, 2e9, 0.05, "bandwidth [B/s] from noisy data");
}

#[test]
fn fit_refuses_bad_points_too_few_sizes_and_times_that_do_not_grow() {
    let _watchdog = watchdog();
    assert_eq!(fit(&[]), Err(FitError::TooFewSizes { distinct: 0 }));
    assert_eq!(fit(&[(8.0, 1e-5), (8.0, 2e-5)]), Err(FitError::TooFewSizes { distinct: 1 }));
    for bad in [(10.0, 0.0), (10.0, -1e-6), (-1.0, 1e-6), (10.0, f64::NAN), (f64::INFINITY, 1.0)] {
        match fit(&[(1.0, 1e-5), bad, (100.0, 2e-5)]) {
            Err(FitError::NotPositive { .. }) => {}
            other => panic!("the point {bad:?} must give NotPositive, got {other:?}"),
        }
    }
    match fit(&[(1.0, 3e-5), (1000.0, 2e-5), (1e6, 1e-5)]) {
        Err(FitError::NotGrowing { seconds_per_byte }) => assert!(seconds_per_byte < 0.0),
        other => panic!("times falling with size must give NotGrowing, got {other:?}"),
    }
}
