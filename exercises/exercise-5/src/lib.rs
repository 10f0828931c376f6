//! Exercise 5: how fast is a pipe? Ping-pong between two processes, measured carefully.
//!
//! One process (the child, running [`echo`]) sends back every message it gets; the other
//! ([`ping_pong`]) times round trips for message sizes from 1 B to 64 MiB. From the round
//! trips you compute the statistics ([`summarize`]), the one-way time and the bandwidth
//! ([`one_way`], [`bandwidth`]), and fit the model T(s) = latency + s / bandwidth ([`fit`]).
//! The program (`src/main.rs`, given) prints the table, writes the CSV and draws the plots.
//!
//! Write the six functions below, in this order; `cargo test -p exercise-5` checks them.
//! Units: sizes in bytes, times in seconds or as [`Duration`]; 1 MB = 10^6 B, 1 MiB = 2^20 B,
//! 1 Gb = 10^9 bits (see [`mp::units`]).

use std::time::Duration;

use mp::{
    Connection,
    units::{Bandwidth, Bytes},
};

pub mod given;
pub use given::{FitError, Model, PingPongError, Summary};

/// The echo side, run in the child process: sends every message back, unchanged.
///
/// Receive a message with [`Connection::recv_bytes`] and send the same bytes back with
/// [`Connection::send_bytes`], again and again. When `recv_bytes` fails with an error for
/// which [`mp::Error::is_disconnected`] is true, the measuring side has closed its end (Python's
/// `EOFError`): return how many messages you echoed. Any other error is a bug: panic with it.
pub fn echo(conn: Connection<()>) -> u64 {
    todo!(
        "echo(): receive every message with recv_bytes, send it back with send_bytes, and \
         return how many you echoed once recv_bytes reports a disconnect; the pipe end is \
         {conn:?}"
    )
}

/// The measuring side: `warmup` untimed round trips, then `reps` timed round trips of a
/// `size`-byte message, returning the `reps` round-trip times in the order measured.
///
/// * Build the message once, before any timing: [`given::message`]`(size)`.
/// * Warm-up: send it and receive the reply `warmup` times without timing. The first round
///   trips pay for things a steady stream does not: the child starting up, memory faulted in
///   for the first buffer of this size, caches and CPU clocks warming up.
/// * Each timed repetition: take [`std::time::Instant::now`] right before
///   [`Connection::send_bytes`], and the elapsed time right after
///   [`Connection::recv_bytes`] has returned the reply. Nothing else inside the timer.
/// * After stopping the timer, check the reply with [`given::check_reply`] and return its
///   error if the reply differs; pipe errors go back with `?`.
///
/// Keep every sample: the caller computes the statistics, and writes them all to a CSV.
pub fn ping_pong(
    conn: &Connection<()>,
    size: usize,
    warmup: u32,
    reps: u32,
) -> Result<Vec<Duration>, PingPongError> {
    todo!(
        "ping_pong(): {warmup} untimed round trips of {size} B, then {reps} timed ones \
         (Instant::now() right before send_bytes, elapsed() right after recv_bytes), checking \
         each reply after the timer; the pipe end is {conn:?}"
    )
}

/// The statistics of `samples`: how many, the smallest, and the median. `None` if empty.
///
/// The median of an odd count is the middle value once sorted; of an even count, the mean of
/// the two middle values. Do not reorder the caller's slice: sort a copy.
///
/// Why the median and the minimum, not the mean? A machine shared with others adds delays
/// (another process ran, an interrupt came) but never removes them: the distribution has a
/// long tail to the right. The median ignores the tail; the minimum is the best case.
pub fn summarize(samples: &[Duration]) -> Option<Summary> {
    todo!("summarize(): the count, minimum and median of the {} samples", samples.len())
}

/// The one-way time of a message, from the time of its round trip.
///
/// The lecture times a round trip, because one clock can time it: the start and the end are
/// both in this process. There and back are the same transfer, so one way takes half.
pub fn one_way(rtt: Duration) -> Duration {
    todo!("one_way(): the one-way time of a {rtt:?} round trip")
}

/// The bandwidth of a `size`-byte message that took `one_way` to arrive: size / one-way time.
///
/// Build it with [`Bandwidth::new`], which refuses a zero time. Note that size / one-way
/// equals 2 × size / round trip (the bytes went both ways): size / round trip would count
/// the bytes once but the time twice, and report half the bandwidth.
pub fn bandwidth(size: Bytes, one_way: Duration) -> mp::Result<Bandwidth> {
    todo!("bandwidth(): {size} moved in {one_way:?}, as an mp::units::Bandwidth")
}

/// Fits T(s) = latency + s / bandwidth to `points`, each (size in bytes, one-way time in
/// seconds), by weighted least squares on the line T = a + b·s with weights 1 / T²:
/// minimise Σ ((a + b·sᵢ − Tᵢ) / Tᵢ)². Then latency = a, bandwidth = 1 / b.
///
/// Why the weights: the times span four decades. Plain least squares minimises absolute
/// errors, so a 1 % wobble of a 50 ms transfer (500 µs) outweighs every 20 µs small message
/// put together, and the fitted latency is noise. Dividing each residual by Tᵢ minimises
/// relative errors instead: every size counts alike.
///
/// Errors, checked in this order: a point with a negative or non-finite size, or a time that
/// is not above zero and finite ([`FitError::NotPositive`]); fewer than two different sizes
/// ([`FitError::TooFewSizes`]); a slope b ≤ 0 ([`FitError::NotGrowing`]). The latency may
/// come out negative if the model does not fit the data: return it as it is.
pub fn fit(points: &[(f64, f64)]) -> Result<Model, FitError> {
    todo!("fit(): weighted least squares of T = a + b*s over {} points", points.len())
}
