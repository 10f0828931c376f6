//! The graded tests of exercise 5. Run them with `cargo test -p exercise-5`.
//!
//! The ping-pong tests run your `ping_pong` against echo processes written here (one that
//! counts, one that damages the reply, one that hangs up), so each function is graded alone.
//!
//! Every call to your code is wrapped in `observe!`: its value is printed as plain data, and
//! `cargo xtask grade` checks it again in a process without your code (see the `judge` crate).
mp::test_support!();

use std::time::Duration;

use bandwidth::*;
use judge::observe;
use mp::{
    Connection, Process,
    units::{Bytes, Unit},
};

/// FNV-1a: a reply's fingerprint, so that a megabyte crosses to the judge as one number.
fn fnv(bytes: &[u8]) -> u64 {
    bytes.iter().fold(0xcbf2_9ce4_8422_2325, |hash, &byte| {
        (hash ^ u64::from(byte)).wrapping_mul(0x0100_0000_01b3)
    })
}

/// Your `echo` in a process of its own: for each size, the reply's length and fingerprint;
/// then what `echo` returned once the pipe closed.
fn echo_session(sizes: &[usize]) -> Result<(Vec<(usize, u64)>, u64), String> {
    let text = |error: mp::Error| error.to_string();
    let (here, there) = mp::pipe::<()>().map_err(text)?;
    let mut child = Process::spawn(echo, there).map_err(text)?;
    let mut replies = Vec::new();
    for &size in sizes {
        here.send_bytes(&given::message(size)).map_err(text)?;
        match here.recv_bytes() {
            Ok(reply) => replies.push((reply.len(), fnv(&reply))),
            Err(error) => {
                let ended = match child.join_timeout(Duration::from_secs(20)) {
                    Ok(count) => format!("echo() returned {count}"),
                    Err(child_error) => format!("echo() failed: {child_error}"),
                };
                return Err(format!("no reply to a {size} B message ({error}); {ended}"));
            }
        }
    }
    drop(here);
    Ok((replies, child.join_timeout(Duration::from_secs(20)).map_err(text)?))
}

/// A ping-pong error as plain data: ("WrongReply", sent, received, false) or ("Pipe", 0, 0,
/// whether the pipe was disconnected), with the error's text.
type PlainError = (String, usize, usize, bool, String);

fn plain_ping_pong(
    here: &Connection<()>,
    size: usize,
    warmup: u32,
    reps: u32,
) -> Result<Vec<Duration>, PlainError> {
    ping_pong(here, size, warmup, reps).map_err(|error| match &error {
        PingPongError::WrongReply { sent, received, .. } => {
            ("WrongReply".into(), *sent, *received, false, format!("{error:?}"))
        }
        PingPongError::Pipe(pipe) => {
            ("Pipe".into(), 0, 0, pipe.is_disconnected(), format!("{error:?}"))
        }
    })
}

/// A summary as plain data: (count, min, median).
fn plain_summary(samples: &[Duration]) -> Option<(usize, Duration, Duration)> {
    summarize(samples).map(|summary| (summary.count, summary.min, summary.median))
}

/// A fit as plain data: (latency, bandwidth), or the error's kind and its number (distinct
/// sizes, or seconds per byte).
fn plain_fit(points: &[(f64, f64)]) -> Result<(f64, f64), (String, f64)> {
    fit(points).map(|model| (model.latency_seconds, model.bytes_per_second)).map_err(|error| {
        match error {
            FitError::TooFewSizes { distinct } => ("TooFewSizes".into(), distinct as f64),
            FitError::NotPositive { .. } => ("NotPositive".into(), 0.0),
            FitError::NotGrowing { seconds_per_byte } => ("NotGrowing".into(), seconds_per_byte),
        }
    })
}

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
    let sizes = [0, 1, 1000, 1_000_003];
    let (replies, echoed) =
        observe!(echo_session(&sizes)).unwrap_or_else(|error| panic!("{error}"));
    assert_eq!(replies.len(), sizes.len(), "one reply per message");
    for (&size, &(length, fingerprint)) in sizes.iter().zip(&replies) {
        assert_eq!(length, size, "the echo of a {size} B message has the wrong length");
        let same = fingerprint == fnv(&given::message(size));
        assert!(same, "the echo of a {size} B message has different bytes");
    }
    assert_eq!(echoed, sizes.len() as u64, "echo() must return how many messages it echoed");
}

#[test]
fn ping_pong_makes_warmup_plus_reps_round_trips_and_keeps_one_positive_sample_per_rep() {
    let _watchdog = watchdog();
    let (here, there) = mp::pipe::<()>().unwrap();
    let mut child = Process::spawn(counting_echo, there).unwrap();
    let runs = [(0, 2, 5), (1, 0, 7), (1_000_003, 1, 3), (64, 3, 1)];
    for (size, warmup, reps) in runs {
        let samples = observe!(plain_ping_pong(&here, size, warmup, reps))
            .unwrap_or_else(|error| panic!("ping_pong at {size} B failed: {}", error.4));
        assert_eq!(samples.len(), reps as usize, "one sample per timed round trip, at {size} B");
        assert!(samples.iter().all(|sample| !sample.is_zero()), "a sample of 0 at {size} B");
    }
    drop(here);
    let round_trips: u32 = runs.iter().map(|&(_, warmup, reps)| warmup + reps).sum();
    // What the echo counted, observed like the samples (it counts in the test process's run).
    let counted = observe!(child.join_timeout(Duration::from_secs(20)).map_err(|e| e.to_string()));
    assert_eq!(
        counted,
        Ok(u64::from(round_trips)),
        "the echo counted a different number of round trips than warm-up + reps"
    );
}

#[test]
fn ping_pong_checks_every_reply_byte_for_byte() {
    let _watchdog = watchdog();
    for size in [1, 1_000_003] {
        let (here, there) = mp::pipe::<()>().unwrap();
        let _child = Process::spawn(damaging_echo, there).unwrap();
        match observe!(plain_ping_pong(&here, size, 0, 3)) {
            Err((kind, sent, received, ..)) if kind == "WrongReply" => {
                assert_eq!((sent, received), (size, size));
            }
            other => panic!("a damaged {size} B reply must give WrongReply, got {other:?}"),
        }
    }
    let (here, there) = mp::pipe::<()>().unwrap();
    let _child = Process::spawn(truncating_echo, there).unwrap();
    match observe!(plain_ping_pong(&here, 1000, 2, 3)) {
        Err((kind, 1000, 999, ..)) if kind == "WrongReply" => {}
        other => panic!("a reply one byte short must give WrongReply, got {other:?}"),
    }
}

#[test]
fn ping_pong_reports_an_echo_that_hung_up_as_a_pipe_error() {
    let _watchdog = watchdog();
    let (here, there) = mp::pipe::<()>().unwrap();
    let mut child = Process::spawn(silent_echo, there).unwrap();
    child.join_timeout(Duration::from_secs(20)).unwrap();
    match observe!(plain_ping_pong(&here, 10, 1, 5)) {
        Err((kind, _, _, disconnected, text)) if kind == "Pipe" => assert!(disconnected, "{text}"),
        other => panic!("expected PingPongError::Pipe(Disconnected), got {other:?}"),
    }
}

#[test]
fn summary_of_an_odd_count_takes_the_middle_value_whatever_the_order() {
    let _watchdog = watchdog();
    let samples = [micros(30), micros(10), micros(50), micros(20), micros(900)];
    let summary = observe!(plain_summary(&samples)).expect("five samples have a summary");
    assert_eq!(summary, (5, micros(10), micros(30)), "(count, min, median)");
    assert_eq!(samples[0], micros(30), "summarize() must not reorder the caller's samples");
    let one = observe!(plain_summary(&[micros(7)]));
    assert_eq!(one, Some((1, micros(7), micros(7))), "(count, min, median)");
}

#[test]
fn summary_of_an_even_count_averages_the_two_middle_values() {
    let _watchdog = watchdog();
    let samples = [micros(40), micros(10), micros(1000), micros(20)];
    let summary = observe!(plain_summary(&samples));
    assert_eq!(summary, Some((4, micros(10), micros(30))), "(count, min, median)");
    let odd_nanos = [Duration::from_nanos(3), Duration::from_nanos(2)];
    let odd = observe!(plain_summary(&odd_nanos)).map(|summary| summary.2);
    assert_eq!(odd, Some(Duration::from_nanos(2)));
    let huge = [Duration::MAX, Duration::MAX];
    let huge = observe!(plain_summary(&huge)).map(|summary| summary.2);
    assert_eq!(huge, Some(Duration::MAX), "no overflow on adding");
}

#[test]
fn summary_of_no_samples_is_none() {
    let _watchdog = watchdog();
    assert_eq!(observe!(plain_summary(&[])), None);
}

#[test]
fn one_way_time_is_half_the_round_trip() {
    let _watchdog = watchdog();
    assert_eq!(observe!(one_way(micros(20))), micros(10));
    assert_eq!(observe!(one_way(Duration::from_nanos(3))), Duration::from_nanos(1));
    assert_eq!(observe!(one_way(Duration::ZERO)), Duration::ZERO);
}

#[test]
fn one_megabyte_with_a_20_us_round_trip_is_100_gigabytes_per_second() {
    let _watchdog = watchdog();
    // (B/s, MB/s, MiB/s, Gb/s) of a rate.
    let rates = |size: Bytes, round_trip: Duration| {
        bandwidth(size, one_way(round_trip))
            .map(|rate| {
                let unit = |unit| rate.in_unit_per_second(unit);
                (rate.bytes_per_second(), unit(Unit::MB), unit(Unit::MiB), unit(Unit::Gb))
            })
            .map_err(|error| error.to_string())
    };
    let one_megabyte = Bytes(1_000_000);
    let rate = observe!(rates(one_megabyte, micros(20))).unwrap_or_else(|error| panic!("{error}"));
    assert_close(rate.0, 1e11, 1e-12, "B/s");
    assert_close(rate.1, 100_000.0, 1e-12, "MB/s");
    assert_close(rate.2, 95_367.431_640_625, 1e-12, "MiB/s");
    assert_close(rate.3, 800.0, 1e-12, "Gb/s");
    // size / one-way = 2 x size / round trip: both directions' bytes over the whole trip.
    let one_mebibyte = Bytes(1 << 20);
    let rate = observe!(rates(one_mebibyte, Duration::from_millis(2)));
    let rate = rate.unwrap_or_else(|error| panic!("{error}"));
    assert_close(rate.2, 1000.0, 1e-12, "1 MiB in 1 ms, MiB/s");
}

#[test]
fn bandwidth_refuses_a_zero_time() {
    let _watchdog = watchdog();
    assert!(observe!(bandwidth(Bytes(1), Duration::ZERO).is_err()));
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
    let model = observe!(plain_fit(&points)).unwrap_or_else(|error| panic!("{error:?}"));
    assert_close(model.0, 5e-6, 1e-9, "latency [s]");
    assert_close(model.1, 2e9, 1e-9, "bandwidth [B/s]");
    let two = observe!(plain_fit(&[(0.0, 1.0), (4.0, 3.0)]));
    let two = two.unwrap_or_else(|error| panic!("{error:?}"));
    assert_close(two.0, 1.0, 1e-12, "latency from two points");
    assert_close(two.1, 2.0, 1e-12, "bandwidth from two points");
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
    let model = observe!(plain_fit(&points)).unwrap_or_else(|error| panic!("{error:?}"));
    assert_close(model.0, 5e-6, 0.03, "latency [s] from noisy data");
    assert_close(model.1, 2e9, 0.05, "bandwidth [B/s] from noisy data");
}

#[test]
fn fit_refuses_bad_points_too_few_sizes_and_times_that_do_not_grow() {
    let _watchdog = watchdog();
    let too_few = |distinct: f64| Err(("TooFewSizes".to_string(), distinct));
    assert_eq!(observe!(plain_fit(&[])), too_few(0.0));
    assert_eq!(observe!(plain_fit(&[(8.0, 1e-5), (8.0, 2e-5)])), too_few(1.0));
    for bad in [(10.0, 0.0), (10.0, -1e-6), (-1.0, 1e-6), (10.0, f64::NAN), (f64::INFINITY, 1.0)] {
        match observe!(plain_fit(&[(1.0, 1e-5), bad, (100.0, 2e-5)])) {
            Err((kind, _)) if kind == "NotPositive" => {}
            other => panic!("the point {bad:?} must give NotPositive, got {other:?}"),
        }
    }
    match observe!(plain_fit(&[(1.0, 3e-5), (1000.0, 2e-5), (1e6, 1e-5)])) {
        Err((kind, seconds_per_byte)) if kind == "NotGrowing" => assert!(seconds_per_byte < 0.0),
        other => panic!("times falling with size must give NotGrowing, got {other:?}"),
    }
}
