//! Exercise 5: how fast is a pipe? Reference solution.

use std::time::{Duration, Instant};

use mp::{
    Connection,
    units::{Bandwidth, Bytes},
};

#[path = "../../../exercises/exercise-5/src/given.rs"]
pub mod given;
pub use given::{FitError, Model, PingPongError, Summary};

/// The echo side, run in the child process: sends every message back, unchanged.
pub fn echo(conn: Connection<()>) -> u64 {
    let mut echoed = 0;
    loop {
        match conn.recv_bytes() {
            Ok(message) => {
                conn.send_bytes(&message).expect("echo could not send the reply");
                echoed += 1;
            }
            // The measuring side dropped its end: Python's EOFError, the normal way to stop.
            Err(error) if error.is_disconnected() => return echoed,
            Err(error) => panic!("echo could not receive: {error}"),
        }
    }
}

/// The measuring side: `warmup` untimed round trips, then `reps` timed ones.
pub fn ping_pong(
    conn: &Connection<()>,
    size: usize,
    warmup: u32,
    reps: u32,
) -> Result<Vec<Duration>, PingPongError> {
    // Built once, outside every timer: filling 64 MiB is not part of the transfer.
    let message = given::message(size);

    for _ in 0..warmup {
        conn.send_bytes(&message)?;
        let reply = conn.recv_bytes()?;
        given::check_reply(&message, &reply)?;
    }

    let mut samples = Vec::with_capacity(reps as usize);
    for _ in 0..reps {
        // The lecture's question "where do you start and stop timing?": the round trip is
        // from the moment the message is handed over until the reply is in our hands.
        let start = Instant::now();
        conn.send_bytes(&message)?;
        let reply = conn.recv_bytes()?;
        let rtt = start.elapsed();
        // Checking is outside the timer (comparing 64 MiB takes milliseconds), but it is done
        // every time: a fast wrong answer is not a measurement.
        given::check_reply(&message, &reply)?;
        samples.push(rtt);
    }
    Ok(samples)
}

/// The count, minimum and median of `samples`; `None` if empty.
pub fn summarize(samples: &[Duration]) -> Option<Summary> {
    let mut sorted = samples.to_vec();
    sorted.sort_unstable();
    let count = sorted.len();
    let min = *sorted.first()?;
    let middle = count / 2;
    let median = if count % 2 == 1 {
        sorted[middle]
    } else {
        // Mean of the two middle values, without the overflow risk of adding them first.
        sorted[middle - 1] + (sorted[middle] - sorted[middle - 1]) / 2
    };
    Some(Summary { count, min, median })
}

/// Half the round trip: there and back are the same transfer.
pub fn one_way(rtt: Duration) -> Duration {
    rtt / 2
}

/// size / one-way time (= 2 × size / round trip).
pub fn bandwidth(size: Bytes, one_way: Duration) -> mp::Result<Bandwidth> {
    Bandwidth::new(size, one_way)
}

/// Weighted least squares of T = a + b·s with weights 1 / T² (relative errors).
pub fn fit(points: &[(f64, f64)]) -> Result<Model, FitError> {
    for &(size, seconds) in points {
        let size_ok = size.is_finite() && size >= 0.0;
        let time_ok = seconds.is_finite() && seconds > 0.0;
        if !(size_ok && time_ok) {
            return Err(FitError::NotPositive { size, seconds });
        }
    }
    let mut sizes: Vec<f64> = points.iter().map(|&(size, _)| size).collect();
    sizes.sort_by(f64::total_cmp);
    sizes.dedup();
    if sizes.len() < 2 {
        return Err(FitError::TooFewSizes { distinct: sizes.len() });
    }

    // Weighted means first, then sums of centred products: the textbook form
    // (Σw·Σws² − (Σws)²) cancels catastrophically when sizes reach 10^7 and times 10^-5.
    let weight = |seconds: f64| 1.0 / (seconds * seconds);
    let total_weight: f64 = points.iter().map(|&(_, t)| weight(t)).sum();
    let mean_size = points.iter().map(|&(s, t)| weight(t) * s).sum::<f64>() / total_weight;
    let mean_time = points.iter().map(|&(_, t)| weight(t) * t).sum::<f64>() / total_weight;
    let (mut covariance, mut variance) = (0.0, 0.0);
    for &(size, seconds) in points {
        let w = weight(seconds);
        covariance += w * (size - mean_size) * (seconds - mean_time);
        variance += w * (size - mean_size) * (size - mean_size);
    }
    let slope = covariance / variance;
    if slope.is_nan() || slope <= 0.0 {
        return Err(FitError::NotGrowing { seconds_per_byte: slope });
    }
    let intercept = mean_time - slope * mean_size;
    Ok(Model { latency_seconds: intercept, bytes_per_second: 1.0 / slope })
}
