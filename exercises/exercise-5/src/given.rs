//! Given code: the types your functions return, the message pattern and its check, and the
//! sizes to measure. You do not need to change anything here.

use std::{error::Error as StdError, fmt, time::Duration};

/// The bytes of a test message of `size` bytes: 0, 1, ..., 250, 0, 1, ... (a period of 251,
/// a prime, so a reply that is shifted, truncated or mixed up with another size is noticed).
///
/// ```
/// let m = bandwidth::given::message(253);
/// assert_eq!((m.len(), m[0], m[250], m[251], m[252]), (253, 0, 250, 0, 1));
/// ```
pub fn message(size: usize) -> Vec<u8> {
    let period: Vec<u8> = (0..=250).collect();
    // `repeat` copies block by block: quick even in a debug build, unlike a loop per byte.
    let mut bytes = period.repeat(size.div_ceil(period.len()));
    bytes.truncate(size);
    bytes
}

/// Checks that `reply` is exactly `sent`. Call it after you stop the timer: checking 64 MiB
/// takes time too, and it is not part of the transfer.
///
/// ```
/// use bandwidth::given::check_reply;
/// assert!(check_reply(b"abc", b"abc").is_ok());
/// assert!(check_reply(b"abc", b"abd").is_err());
/// ```
pub fn check_reply(sent: &[u8], reply: &[u8]) -> Result<(), PingPongError> {
    if sent == reply {
        return Ok(());
    }
    let first_difference =
        sent.iter().zip(reply).position(|(a, b)| a != b).unwrap_or(sent.len().min(reply.len()));
    Err(PingPongError::WrongReply { sent: sent.len(), received: reply.len(), first_difference })
}

/// Why a ping-pong measurement failed.
///
/// `?` turns an [`mp::Error`] into [`PingPongError::Pipe`].
#[derive(Debug)]
pub enum PingPongError {
    /// Sending or receiving failed, for example because the echo process is gone.
    Pipe(mp::Error),
    /// The reply is not the message that was sent.
    WrongReply {
        /// Bytes sent.
        sent: usize,
        /// Bytes received back.
        received: usize,
        /// Index of the first byte that differs (the shorter length if one is a prefix).
        first_difference: usize,
    },
}

impl From<mp::Error> for PingPongError {
    fn from(error: mp::Error) -> PingPongError {
        PingPongError::Pipe(error)
    }
}

impl fmt::Display for PingPongError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            PingPongError::Pipe(error) if error.is_disconnected() => write!(
                f,
                "the echo process closed its end of the pipe during the ping-pong ({error}); \
                 echo() must keep answering until the measuring side closes the pipe"
            ),
            PingPongError::Pipe(error) => write!(f, "the ping-pong pipe failed: {error}"),
            PingPongError::WrongReply { sent, received, first_difference } => write!(
                f,
                "the reply to a {sent} B message had {received} B and differs from byte \
                 {first_difference} on; echo() must send back exactly the bytes it received"
            ),
        }
    }
}

impl StdError for PingPongError {
    fn source(&self) -> Option<&(dyn StdError + 'static)> {
        match self {
            PingPongError::Pipe(error) => Some(error),
            PingPongError::WrongReply { .. } => None,
        }
    }
}

/// The statistics of the round trips measured at one size.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Summary {
    /// How many samples there were.
    pub count: usize,
    /// The fastest sample.
    pub min: Duration,
    /// The median: the middle sample, or the mean of the two middle ones for an even count.
    pub median: Duration,
}

/// The model T(s) = latency + s / bandwidth of the one-way time of an `s`-byte message.
///
/// ```
/// let model = bandwidth::Model { latency_seconds: 5e-6, bytes_per_second: 2e9 };
/// assert_eq!(model.time(2e9), 1.000005);
/// assert_eq!(model.half_bandwidth_size(), 10_000.0);
/// ```
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Model {
    /// The intercept: the time of a message of 0 bytes, in seconds.
    pub latency_seconds: f64,
    /// The asymptotic bandwidth (1 / slope), in bytes per second.
    pub bytes_per_second: f64,
}

impl Model {
    /// T(s) in seconds for a message of `size` bytes.
    pub fn time(&self, size: f64) -> f64 {
        self.latency_seconds + size / self.bytes_per_second
    }

    /// The bandwidth the model predicts at `size` bytes: size / T(size), in bytes per second.
    pub fn bandwidth_at(&self, size: f64) -> f64 {
        size / self.time(size)
    }

    /// The size at which half the asymptotic bandwidth is reached (Hockney's n½): there the
    /// transfer takes as long as the latency, s = latency × bandwidth, in bytes.
    pub fn half_bandwidth_size(&self) -> f64 {
        self.latency_seconds * self.bytes_per_second
    }
}

/// Why [`fit`](crate::fit) found no model.
#[derive(Debug, Clone, PartialEq)]
pub enum FitError {
    /// A line needs at least two different sizes.
    TooFewSizes {
        /// How many different sizes there were.
        distinct: usize,
    },
    /// A size or a time is negative, zero (times only), or not a finite number.
    NotPositive {
        /// The size of the offending point, in bytes.
        size: f64,
        /// Its time, in seconds.
        seconds: f64,
    },
    /// The fitted slope is not positive: the times do not grow with the size.
    NotGrowing {
        /// The fitted slope, in seconds per byte.
        seconds_per_byte: f64,
    },
}

impl fmt::Display for FitError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            FitError::TooFewSizes { distinct } => write!(
                f,
                "fitting a latency and a bandwidth needs at least 2 different message sizes, \
                 got {distinct}; widen the range between --min-size and --max-size"
            ),
            FitError::NotPositive { size, seconds } => write!(
                f,
                "the point ({size} B, {seconds} s) cannot be fitted: sizes must be 0 or more \
                 and times above 0, both finite"
            ),
            FitError::NotGrowing { seconds_per_byte } => write!(
                f,
                "the times do not grow with the message size (slope {seconds_per_byte:e} s/B), \
                 so there is no bandwidth to fit; measure larger messages (--max-size)"
            ),
        }
    }
}

impl StdError for FitError {}

/// Log-spaced sizes from `min` to `max` bytes (both included, `1 <= min <= max`): the ends,
/// and between them the sizes 10^(k / per_decade) rounded to whole bytes, so every decade
/// gets the same number of points and most sizes are not powers of two. A size less than half
/// a step from an end is left out. Sorted, no repeats.
///
/// ```
/// let sizes = bandwidth::given::log_sizes(1, 1000, 2);
/// assert_eq!(sizes, [1, 3, 10, 32, 100, 316, 1000]);
/// ```
pub fn log_sizes(min: u64, max: u64, per_decade: u32) -> Vec<u64> {
    assert!(1 <= min && min <= max && per_decade >= 1, "log_sizes needs 1 <= min <= max");
    let step = 1.0 / f64::from(per_decade);
    let half_step = 10f64.powf(step / 2.0);
    let (low, high) = (min as f64 * half_step, max as f64 / half_step);
    let first = ((min as f64).log10() / step).floor() as i64;
    let grid = (first..)
        .map(|k| 10f64.powf(k as f64 * step))
        .take_while(|&size| size < high)
        .filter(|&size| size > low)
        .map(|size| size.round() as u64);
    ends_and(min, max, grid)
}

/// The powers of two between `min` and `max` bytes, and both ends (`1 <= min <= max`).
///
/// ```
/// assert_eq!(bandwidth::given::powers_of_two(3, 40), [3, 4, 8, 16, 32, 40]);
/// ```
pub fn powers_of_two(min: u64, max: u64) -> Vec<u64> {
    assert!(1 <= min && min <= max, "powers_of_two needs 1 <= min <= max");
    let grid = (0..64).map(|k| 1u64 << k).take_while(|&size| size < max).filter(|&s| s > min);
    ends_and(min, max, grid)
}

fn ends_and(min: u64, max: u64, between: impl Iterator<Item = u64>) -> Vec<u64> {
    let mut sizes: Vec<u64> = std::iter::once(min).chain(between).chain([max]).collect();
    sizes.dedup();
    sizes
}

#[cfg(test)]
mod tests {
    use super::*;

    fn assert_sorted_unique_with_ends(sizes: &[u64], min: u64, max: u64) {
        assert_eq!((sizes[0], sizes[sizes.len() - 1]), (min, max), "{sizes:?}");
        assert!(sizes.windows(2).all(|pair| pair[0] < pair[1]), "{sizes:?}");
    }

    #[test]
    fn log_sizes_are_sorted_unique_log_spaced_and_include_both_ends() {
        for (min, max, per_decade) in [(1, 64 << 20, 4), (1, 1, 3), (7, 7_000_003, 5), (2, 3, 10)] {
            let sizes = log_sizes(min, max, per_decade);
            assert_sorted_unique_with_ends(&sizes, min, max);
            // Away from the rounding of tiny sizes, neighbours are one step apart in log scale,
            // at most one and a half next to an end.
            let step = 10f64.powf(1.0 / f64::from(per_decade));
            let inner = &sizes[1..sizes.len().saturating_sub(1).max(1)];
            for pair in inner.windows(2).filter(|pair| pair[0] >= 100) {
                let ratio = pair[1] as f64 / pair[0] as f64;
                assert!(ratio <= step * 1.01 && ratio >= step / 1.01, "{pair:?}");
            }
            for pair in sizes.windows(2).filter(|pair| pair[0] >= 100) {
                assert!(pair[1] as f64 / pair[0] as f64 <= step.powf(1.5) * 1.01, "{pair:?}");
            }
        }
        let default = log_sizes(1, 64 << 20, 4);
        assert_eq!(&default[..9], [1, 2, 3, 6, 10, 18, 32, 56, 100]);
        assert!(default.iter().any(|size| !size.is_power_of_two() && *size > 1000));
    }

    #[test]
    fn powers_of_two_include_both_ends() {
        assert_eq!(powers_of_two(1, 1), [1]);
        assert_eq!(powers_of_two(1, 8), [1, 2, 4, 8]);
        let sizes = powers_of_two(1000, 1_000_003);
        assert_sorted_unique_with_ends(&sizes, 1000, 1_000_003);
        assert_eq!(sizes.len(), 12);
    }

    #[test]
    fn a_reply_that_differs_is_reported_with_its_first_difference() {
        let sent = message(1000);
        let mut wrong = sent.clone();
        wrong[700] ^= 1;
        assert!(matches!(
            check_reply(&sent, &wrong),
            Err(PingPongError::WrongReply { sent: 1000, received: 1000, first_difference: 700 })
        ));
        assert!(matches!(
            check_reply(&sent, &sent[..10]),
            Err(PingPongError::WrongReply { received: 10, first_difference: 10, .. })
        ));
        assert!(check_reply(&[], &[]).is_ok());
    }
}
