//! Byte counts and bandwidths that always say which unit they are in.
//!
//! Three look-alike units differ: 1 MB (megabyte) is 10^6 bytes; 1 MiB (mebibyte) is
//! 2^20 bytes = 1.048576 MB; 1 Mb (megabit) is 10^6 bits = 0.125 MB. Memory is usually sized
//! in MiB, disks in MB and networks in Mb/s, so a mix-up costs 5 % or a factor of 8.
//!
//! ```
//! use mp::units::{Bytes, Unit};
//! let size: Bytes = "1 MiB".parse()?;
//! assert_eq!(size.in_unit(Unit::MB), 1.048576);
//! assert_eq!(size.in_unit(Unit::Mb), 8.388608);
//! # Ok::<(), mp::Error>(())
//! ```

use std::{fmt, str::FromStr, time::Duration};

use crate::{Error, Result};

/// A unit of data: decimal (SI) bytes, binary (IEC) bytes, or decimal bits.
///
/// ```
/// use mp::units::Unit;
/// assert_eq!(Unit::KB.symbol(), "kB");
/// assert_eq!(Unit::KiB.bytes_per_unit(), 1024.0);
/// assert_eq!(Unit::Mb.bytes_per_unit(), 125_000.0);
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Unit {
    /// One byte.
    B,
    /// Kilobyte, 1000 bytes (written "kB").
    KB,
    /// Kibibyte, 1024 bytes.
    KiB,
    /// Megabyte, 10^6 bytes.
    MB,
    /// Mebibyte, 2^20 bytes.
    MiB,
    /// Gigabyte, 10^9 bytes.
    GB,
    /// Gibibyte, 2^30 bytes.
    GiB,
    /// Kilobit, 1000 bits = 125 bytes (written "kb").
    Kb,
    /// Megabit, 10^6 bits = 125 000 bytes.
    Mb,
    /// Gigabit, 10^9 bits = 125 000 000 bytes.
    Gb,
}

const UNIT_HINT: &str = "use one of B, kB, KiB, MB, MiB, GB, GiB (bytes) or kb, Mb, Gb (bits)";

impl Unit {
    /// How many bytes one of this unit is. Every factor is an exact `f64`.
    ///
    /// ```
    /// use mp::units::Unit;
    /// assert_eq!(Unit::MiB.bytes_per_unit() / Unit::MB.bytes_per_unit(), 1.048576);
    /// ```
    pub fn bytes_per_unit(self) -> f64 {
        match self {
            Unit::B => 1.0,
            Unit::KB => 1e3,
            Unit::KiB => 1024.0,
            Unit::MB => 1e6,
            Unit::MiB => 1_048_576.0,
            Unit::GB => 1e9,
            Unit::GiB => 1_073_741_824.0,
            Unit::Kb => 125.0,
            Unit::Mb => 125_000.0,
            Unit::Gb => 125_000_000.0,
        }
    }

    /// The symbol used when printing and parsing, e.g. "MiB" or "Gb".
    ///
    /// ```
    /// use mp::units::Unit;
    /// assert_eq!(Unit::Gb.symbol(), "Gb");
    /// assert_eq!(Unit::GB.symbol(), "GB");
    /// ```
    pub fn symbol(self) -> &'static str {
        match self {
            Unit::B => "B",
            Unit::KB => "kB",
            Unit::KiB => "KiB",
            Unit::MB => "MB",
            Unit::MiB => "MiB",
            Unit::GB => "GB",
            Unit::GiB => "GiB",
            Unit::Kb => "kb",
            Unit::Mb => "Mb",
            Unit::Gb => "Gb",
        }
    }

    /// True for the bit units (kb, Mb, Gb).
    ///
    /// ```
    /// use mp::units::Unit;
    /// assert!(Unit::Mb.is_bits());
    /// assert!(!Unit::MB.is_bits());
    /// ```
    pub fn is_bits(self) -> bool {
        matches!(self, Unit::Kb | Unit::Mb | Unit::Gb)
    }

    /// The exact size as an integer: in bytes for byte units, in bits for bit units.
    fn exact_size(self) -> u128 {
        match self {
            Unit::B => 1,
            Unit::KB | Unit::Kb => 1_000,
            Unit::KiB => 1 << 10,
            Unit::MB | Unit::Mb => 1_000_000,
            Unit::MiB => 1 << 20,
            Unit::GB | Unit::Gb => 1_000_000_000,
            Unit::GiB => 1 << 30,
        }
    }
}

impl fmt::Display for Unit {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.pad(self.symbol())
    }
}

/// Parses a unit symbol. Case matters where it changes the meaning ("MB" is not "Mb"); the
/// kilo prefix is accepted as "k" or "K".
///
/// ```
/// use mp::units::Unit;
/// assert_eq!("Mb".parse::<Unit>()?, Unit::Mb);
/// assert_eq!("KB".parse::<Unit>()?, Unit::KB);
/// assert!("mb".parse::<Unit>().is_err());
/// # Ok::<(), mp::Error>(())
/// ```
impl FromStr for Unit {
    type Err = Error;

    fn from_str(text: &str) -> Result<Unit> {
        let unit = match text {
            "B" => Unit::B,
            "kB" | "KB" => Unit::KB,
            "KiB" => Unit::KiB,
            "MB" => Unit::MB,
            "MiB" => Unit::MiB,
            "GB" => Unit::GB,
            "GiB" => Unit::GiB,
            "kb" | "Kb" => Unit::Kb,
            "Mb" => Unit::Mb,
            "Gb" => Unit::Gb,
            _ => return Err(Error::invalid(format!("unknown unit {text:?}; {UNIT_HINT}"))),
        };
        Ok(unit)
    }
}

/// A number of bytes.
///
/// `Display` picks the largest of B, KiB, MiB, GiB that keeps the number at least 1.
///
/// ```
/// use mp::units::{Bytes, Unit};
/// assert_eq!(Bytes(512).to_string(), "512 B");
/// assert_eq!(Bytes(64 << 20).to_string(), "64.00 MiB");
/// assert_eq!("1.5 MiB".parse::<Bytes>()?, Bytes(1_572_864));
/// assert_eq!(Bytes(1_500_000).display_in(Unit::MB).to_string(), "1.50 MB");
/// # Ok::<(), mp::Error>(())
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Default)]
pub struct Bytes(pub u64);

impl Bytes {
    /// The size counted in `unit`; for bit units, the number of bits divided by the unit.
    ///
    /// ```
    /// use mp::units::{Bytes, Unit};
    /// assert_eq!(Bytes(1 << 20).in_unit(Unit::MB), 1.048576);
    /// assert_eq!(Bytes(1_000_000).in_unit(Unit::Mb), 8.0);
    /// ```
    pub fn in_unit(self, unit: Unit) -> f64 {
        self.0 as f64 / unit.bytes_per_unit()
    }

    /// Shows the size in `unit` with two decimals, or as many as the format string asks for.
    /// Plain bytes are always a whole number.
    ///
    /// ```
    /// use mp::units::{Bytes, Unit};
    /// let size = Bytes(1_572_864);
    /// assert_eq!(size.display_in(Unit::MiB).to_string(), "1.50 MiB");
    /// assert_eq!(format!("{:.1}", size.display_in(Unit::MiB)), "1.5 MiB");
    /// assert_eq!(format!("{:>12}", size.display_in(Unit::B)), "   1572864 B");
    /// ```
    pub fn display_in(self, unit: Unit) -> impl fmt::Display {
        BytesInUnit { bytes: self, unit }
    }
}

#[derive(Debug)]
struct BytesInUnit {
    bytes: Bytes,
    unit: Unit,
}

impl fmt::Display for BytesInUnit {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let text = if self.unit == Unit::B {
            format!("{} B", self.bytes.0)
        } else {
            let decimals = f.precision().unwrap_or(2);
            format!("{:.*} {}", decimals, self.bytes.in_unit(self.unit), self.unit)
        };
        write_padded(f, &text)
    }
}

impl fmt::Display for Bytes {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let unit = [Unit::GiB, Unit::MiB, Unit::KiB]
            .into_iter()
            .find(|unit| u128::from(self.0) >= unit.exact_size())
            .unwrap_or(Unit::B);
        fmt::Display::fmt(&self.display_in(unit), f)
    }
}

/// Parses a size such as "4096", "64MiB", "64 MiB", "1kB", "1.5 MiB" or "8Mb".
///
/// The size must come out as a whole number of bytes: "1.5 B" and "0.1 kb" (100 bits) are
/// errors, not silently rounded.
///
/// ```
/// use mp::units::Bytes;
/// assert_eq!("64MiB".parse::<Bytes>()?, Bytes(64 << 20));
/// assert_eq!("8Mb".parse::<Bytes>()?, Bytes(1_000_000));
/// assert!("1.5 B".parse::<Bytes>().is_err());
/// # Ok::<(), mp::Error>(())
/// ```
impl FromStr for Bytes {
    type Err = Error;

    fn from_str(text: &str) -> Result<Bytes> {
        const EXAMPLES: &str = "write a size such as \"4096\", \"64 MiB\" or \"1.5kB\"";
        let trimmed = text.trim();
        if trimmed.is_empty() {
            return Err(Error::invalid(format!("an empty string is not a size; {EXAMPLES}")));
        }
        let number_end =
            trimmed.find(|c: char| !(c.is_ascii_digit() || c == '.')).unwrap_or(trimmed.len());
        let (number_text, unit_text) = trimmed.split_at(number_end);
        let unit_text = unit_text.trim_start();

        let Some(number) = Decimal::parse(number_text) else {
            return Err(Error::invalid(format!(
                "{text:?} does not start with a non-negative number; {EXAMPLES}"
            )));
        };
        let unit = if unit_text.is_empty() {
            Unit::B
        } else {
            match unit_text.parse::<Unit>() {
                Ok(unit) => unit,
                Err(_) => {
                    return Err(Error::invalid(format!(
                        "{text:?} has the unknown unit {unit_text:?}; {UNIT_HINT}"
                    )));
                }
            }
        };

        let too_large = || {
            Error::invalid(format!(
                "{text:?} is more bytes than fit in 64 bits (about 16 EiB); use a smaller size"
            ))
        };
        let quantity = if unit.is_bits() { "bits" } else { "bytes" };
        let not_whole = || {
            Error::invalid(format!(
                "{text:?} is not a whole number of {quantity}; use fewer decimals or a smaller unit"
            ))
        };

        let Some(mantissa) = number.mantissa else { return Err(too_large()) };
        let scaled = mantissa.checked_mul(unit.exact_size()).ok_or_else(too_large)?;
        // More than 38 decimals cannot be cancelled by any unit, so the value is fractional.
        let denominator = 10u128.checked_pow(number.decimals).ok_or_else(not_whole)?;
        if scaled % denominator != 0 {
            return Err(not_whole());
        }
        let smallest_units = scaled / denominator;

        let byte_count = if unit.is_bits() {
            if smallest_units % 8 != 0 {
                return Err(Error::invalid(format!(
                    "{text:?} is {smallest_units} bits, which is not a whole number of bytes; \
                     use a multiple of 8 bits"
                )));
            }
            smallest_units / 8
        } else {
            smallest_units
        };
        let byte_count = u64::try_from(byte_count).map_err(|_| too_large())?;
        Ok(Bytes(byte_count))
    }
}

/// A non-negative decimal number read exactly: `mantissa / 10^decimals`.
struct Decimal {
    /// None when the digits do not fit in 128 bits.
    mantissa: Option<u128>,
    decimals: u32,
}

impl Decimal {
    /// Reads digits with at most one '.', needing at least one digit; None otherwise.
    fn parse(text: &str) -> Option<Decimal> {
        let (whole_digits, fraction_digits) = match text.split_once('.') {
            Some((whole, fraction)) => (whole, fraction),
            None => (text, ""),
        };
        let all_digits = |part: &str| part.bytes().all(|byte| byte.is_ascii_digit());
        if !all_digits(whole_digits) || !all_digits(fraction_digits) {
            return None;
        }
        if whole_digits.is_empty() && fraction_digits.is_empty() {
            return None;
        }
        // Trailing zeros after the point change nothing but would inflate the denominator.
        let fraction_digits = fraction_digits.trim_end_matches('0');
        let decimals = u32::try_from(fraction_digits.len()).unwrap_or(u32::MAX);
        let mut mantissa = Some(0u128);
        for byte in whole_digits.bytes().chain(fraction_digits.bytes()) {
            let digit = u128::from(byte - b'0');
            mantissa = mantissa.and_then(|value| value.checked_mul(10)?.checked_add(digit));
        }
        Some(Decimal { mantissa, decimals })
    }
}

/// An amount of data moved in some time.
///
/// `Display` uses decimal bytes per second (B/s, kB/s, MB/s or GB/s), as network and disk
/// vendors do; `display_in` picks any other unit.
///
/// ```
/// use std::time::Duration;
/// use mp::units::{Bandwidth, Bytes, Unit};
/// let rate = Bandwidth::new(Bytes(2_500_000_000), Duration::from_secs(2))?;
/// assert_eq!(rate.to_string(), "1.25 GB/s");
/// assert_eq!(rate.display_in(Unit::Gb).to_string(), "10.00 Gb/s");
/// # Ok::<(), mp::Error>(())
/// ```
#[derive(Debug, Clone, Copy)]
pub struct Bandwidth {
    bytes: Bytes,
    elapsed: Duration,
}

impl Bandwidth {
    /// `bytes` moved in `elapsed`. A zero duration is an error, not an infinite rate.
    ///
    /// ```
    /// use std::time::Duration;
    /// use mp::units::{Bandwidth, Bytes};
    /// assert!(Bandwidth::new(Bytes(1), Duration::ZERO).is_err());
    /// assert!(Bandwidth::new(Bytes(1), Duration::from_nanos(1)).is_ok());
    /// ```
    pub fn new(bytes: Bytes, elapsed: Duration) -> Result<Bandwidth> {
        if elapsed.is_zero() {
            return Err(Error::invalid(
                "a bandwidth needs a duration above zero; time a larger transfer or repeat it",
            ));
        }
        Ok(Bandwidth { bytes, elapsed })
    }

    /// The data moved.
    ///
    /// ```
    /// use std::time::Duration;
    /// use mp::units::{Bandwidth, Bytes};
    /// let rate = Bandwidth::new(Bytes(10), Duration::from_secs(1))?;
    /// assert_eq!(rate.bytes(), Bytes(10));
    /// # Ok::<(), mp::Error>(())
    /// ```
    pub fn bytes(&self) -> Bytes {
        self.bytes
    }

    /// The time it took.
    ///
    /// ```
    /// use std::time::Duration;
    /// use mp::units::{Bandwidth, Bytes};
    /// let rate = Bandwidth::new(Bytes(10), Duration::from_secs(1))?;
    /// assert_eq!(rate.elapsed(), Duration::from_secs(1));
    /// # Ok::<(), mp::Error>(())
    /// ```
    pub fn elapsed(&self) -> Duration {
        self.elapsed
    }

    /// Bytes per second.
    ///
    /// ```
    /// use std::time::Duration;
    /// use mp::units::{Bandwidth, Bytes};
    /// let rate = Bandwidth::new(Bytes(3000), Duration::from_millis(1500))?;
    /// assert_eq!(rate.bytes_per_second(), 2000.0);
    /// # Ok::<(), mp::Error>(())
    /// ```
    pub fn bytes_per_second(&self) -> f64 {
        self.bytes.0 as f64 / self.elapsed.as_secs_f64()
    }

    /// The rate in `unit` per second: MB/s, MiB/s, or bits per second for bit units.
    ///
    /// ```
    /// use std::time::Duration;
    /// use mp::units::{Bandwidth, Bytes, Unit};
    /// let rate = Bandwidth::new(Bytes(1_000_000_000), Duration::from_secs(1))?;
    /// assert_eq!(rate.in_unit_per_second(Unit::Gb), 8.0);
    /// # Ok::<(), mp::Error>(())
    /// ```
    pub fn in_unit_per_second(&self, unit: Unit) -> f64 {
        self.bytes_per_second() / unit.bytes_per_unit()
    }

    /// Shows the rate in `unit` per second with two decimals, or the precision asked for.
    ///
    /// ```
    /// use std::time::Duration;
    /// use mp::units::{Bandwidth, Bytes, Unit};
    /// let rate = Bandwidth::new(Bytes(1 << 30), Duration::from_secs(1))?;
    /// assert_eq!(rate.display_in(Unit::GiB).to_string(), "1.00 GiB/s");
    /// assert_eq!(format!("{:.3}", rate.display_in(Unit::Gb)), "8.590 Gb/s");
    /// # Ok::<(), mp::Error>(())
    /// ```
    pub fn display_in(&self, unit: Unit) -> impl fmt::Display {
        BandwidthInUnit { bandwidth: *self, unit }
    }
}

#[derive(Debug)]
struct BandwidthInUnit {
    bandwidth: Bandwidth,
    unit: Unit,
}

impl fmt::Display for BandwidthInUnit {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let decimals = f.precision().unwrap_or(2);
        let value = self.bandwidth.in_unit_per_second(self.unit);
        let text = format!("{value:.decimals$} {}/s", self.unit);
        write_padded(f, &text)
    }
}

impl fmt::Display for Bandwidth {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let unit = [Unit::GB, Unit::MB, Unit::KB]
            .into_iter()
            .find(|unit| self.in_unit_per_second(*unit) >= 1.0)
            .unwrap_or(Unit::B);
        fmt::Display::fmt(&self.display_in(unit), f)
    }
}

/// `num` numbers evenly spaced on a log scale from `10^start_exp` to `10^stop_exp`, both
/// included: numpy's `np.logspace(start_exp, stop_exp, num)` (base 10, `endpoint=True`), the
/// x axis of every bandwidth sheet.
///
/// The exponents are numpy's `linspace` (`start + i * step`, the last exactly `stop_exp`), so
/// the values are numpy's. `num` 0 gives an empty vector, 1 gives `[10^start_exp]`. Also at
/// the crate root: `mp::logspace`. For message sizes in bytes, see [`logspace_sizes`].
///
/// ```
/// // numpy's documentation: np.logspace(2.0, 3.0, num=4)
/// // array([ 100.        ,  215.443469  ,  464.15888336, 1000.        ])
/// let xs = mp::logspace(2.0, 3.0, 4);
/// let numpy = [100.0, 215.443469, 464.15888336, 1000.0];
/// assert_eq!(xs.len(), 4);
/// for (x, expected) in xs.iter().zip(numpy) {
///     assert!((x - expected).abs() < 1e-6, "{x} vs {expected}");
/// }
/// assert_eq!(mp::logspace(0.0, 6.0, 7), [1.0, 10.0, 100.0, 1e3, 1e4, 1e5, 1e6]);
/// assert_eq!(mp::logspace(1.0, 2.0, 1), [10.0]);
/// assert!(mp::logspace(1.0, 2.0, 0).is_empty());
/// ```
pub fn logspace(start_exp: f64, stop_exp: f64, num: usize) -> Vec<f64> {
    let step = if num > 1 { (stop_exp - start_exp) / (num - 1) as f64 } else { 0.0 };
    (0..num)
        .map(|i| {
            let exponent =
                if i + 1 == num && num > 1 { stop_exp } else { i as f64 * step + start_exp };
            10f64.powf(exponent)
        })
        .collect()
}

/// Message sizes in bytes for a sweep: [`logspace`]'s values cut to whole numbers, sorted,
/// without repeats. Python's `np.unique(np.logspace(start_exp, stop_exp, num).astype(int))`.
///
/// Small sizes repeat once cut (1.0, 1.27, 1.62... are all 1 byte), so the result may be
/// shorter than `num`.
///
/// ```
/// use mp::units::logspace_sizes;
/// // np.unique(np.logspace(0, 3, 10).astype(int))
/// assert_eq!(logspace_sizes(0.0, 3.0, 10), [1, 2, 4, 10, 21, 46, 100, 215, 464, 1000]);
/// // np.unique(np.logspace(0, 7, 15).astype(int)): 1 B to 10 MB, two points a decade
/// assert_eq!(
///     logspace_sizes(0.0, 7.0, 15),
///     [1, 3, 10, 31, 100, 316, 1000, 3162, 10_000, 31_622, 100_000, 316_227, 1_000_000,
///      3_162_277, 10_000_000]
/// );
/// assert_eq!(logspace_sizes(0.0, 2.0, 30).len(), 23); // 30 points, 7 repeats below 10
/// ```
pub fn logspace_sizes(start_exp: f64, stop_exp: f64, num: usize) -> Vec<usize> {
    // `as` cuts toward zero (numpy's astype(int)) and saturates instead of wrapping.
    let mut sizes: Vec<usize> =
        logspace(start_exp, stop_exp, num).into_iter().map(|x| x as usize).collect();
    sizes.sort_unstable();
    sizes.dedup();
    sizes
}

/// Writes `text` honouring the width, fill and alignment of `f` (right-aligned by default,
/// like numbers). `Formatter::pad` would not do: it reads the precision as a maximum length.
fn write_padded(f: &mut fmt::Formatter<'_>, text: &str) -> fmt::Result {
    let text_width = text.chars().count();
    let Some(width) = f.width().filter(|&width| width > text_width) else {
        return f.write_str(text);
    };
    let padding = width - text_width;
    let (before, after) = match f.align() {
        Some(fmt::Alignment::Left) => (0, padding),
        Some(fmt::Alignment::Center) => (padding / 2, padding - padding / 2),
        Some(fmt::Alignment::Right) | None => (padding, 0),
    };
    let fill = f.fill();
    for _ in 0..before {
        write!(f, "{fill}")?;
    }
    f.write_str(text)?;
    for _ in 0..after {
        write!(f, "{fill}")?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    const ALL_UNITS: [Unit; 10] = [
        Unit::B,
        Unit::KB,
        Unit::KiB,
        Unit::MB,
        Unit::MiB,
        Unit::GB,
        Unit::GiB,
        Unit::Kb,
        Unit::Mb,
        Unit::Gb,
    ];

    fn invalid_message<T: fmt::Debug>(result: Result<T>) -> String {
        match result {
            Err(Error::InvalidArgument { message }) => message,
            other => panic!("expected Error::InvalidArgument, got {other:?}"),
        }
    }

    fn bytes(text: &str) -> Bytes {
        match text.parse::<Bytes>() {
            Ok(bytes) => bytes,
            Err(error) => panic!("{text:?} should parse: {error}"),
        }
    }

    #[test]
    fn conversions_are_exact() {
        assert_eq!(Bytes(1 << 20).in_unit(Unit::MB), 1.048576);
        assert_eq!(Bytes(1 << 30).in_unit(Unit::GB), 1.073741824);
        assert_eq!(Bytes(125_000).in_unit(Unit::Mb), 1.0);
        assert_eq!(Unit::Mb.bytes_per_unit() / Unit::MB.bytes_per_unit(), 0.125);
        assert_eq!(Bytes(1000).in_unit(Unit::KB), 1.0);
        assert_eq!(Bytes(1000).in_unit(Unit::Kb), 8.0);
    }

    #[test]
    fn float_and_integer_factors_agree() {
        for unit in ALL_UNITS {
            let exact_bytes = if unit.is_bits() {
                unit.exact_size() as f64 / 8.0
            } else {
                unit.exact_size() as f64
            };
            assert_eq!(unit.bytes_per_unit(), exact_bytes, "{unit:?}");
        }
    }

    #[test]
    fn bandwidth_conversions_are_exact() {
        let one_second = Duration::from_secs(1);
        let gigabyte_per_second = Bandwidth::new(Bytes(1_000_000_000), one_second).unwrap();
        assert_eq!(gigabyte_per_second.in_unit_per_second(Unit::Gb), 8.0);
        assert_eq!(gigabyte_per_second.in_unit_per_second(Unit::GB), 1.0);
        let mebibyte_per_second = Bandwidth::new(Bytes(1 << 20), one_second).unwrap();
        assert_eq!(mebibyte_per_second.in_unit_per_second(Unit::MB), 1.048576);
        assert_eq!(mebibyte_per_second.in_unit_per_second(Unit::MiB), 1.0);
    }

    #[test]
    fn bandwidth_display_picks_decimal_byte_units() {
        let rate =
            |byte_count: u64| Bandwidth::new(Bytes(byte_count), Duration::from_secs(1)).unwrap();
        assert_eq!(rate(0).to_string(), "0.00 B/s");
        assert_eq!(rate(999).to_string(), "999.00 B/s");
        assert_eq!(rate(1500).to_string(), "1.50 kB/s");
        assert_eq!(rate(2_000_000).to_string(), "2.00 MB/s");
        assert_eq!(rate(1_250_000_000).to_string(), "1.25 GB/s");
        assert_eq!(format!("{:.1}", rate(1_250_000_000)), "1.2 GB/s");
        assert_eq!(rate(1_163_750_000).display_in(Unit::Gb).to_string(), "9.31 Gb/s");
    }

    #[test]
    fn bytes_display_picks_binary_units() {
        assert_eq!(Bytes(0).to_string(), "0 B");
        assert_eq!(Bytes(1023).to_string(), "1023 B");
        assert_eq!(Bytes(1024).to_string(), "1.00 KiB");
        assert_eq!(Bytes(1536).to_string(), "1.50 KiB");
        assert_eq!(Bytes(3 << 30).to_string(), "3.00 GiB");
        assert_eq!(format!("{:.0}", Bytes(64 << 20)), "64 MiB");
        assert_eq!(format!("{:<10}|", Bytes(512)), "512 B     |");
        assert_eq!(format!("{:*^9}", Bytes(512)), "**512 B**");
    }

    #[test]
    fn parses_sizes_with_and_without_units() {
        assert_eq!(bytes("4096"), Bytes(4096));
        assert_eq!(bytes("64MiB"), Bytes(64 << 20));
        assert_eq!(bytes("64 MiB"), Bytes(64 << 20));
        assert_eq!(bytes("  2 GiB \n"), Bytes(2 << 30));
        assert_eq!(bytes("1kB"), Bytes(1000));
        assert_eq!(bytes("1KB"), Bytes(1000));
        assert_eq!(bytes("1.5 MiB"), Bytes(1_572_864));
        assert_eq!(bytes(".5KiB"), Bytes(512));
        assert_eq!(bytes("3."), Bytes(3));
        assert_eq!(bytes("1.2500000000000000000000000000000000000000000 kB"), Bytes(1250));
        assert_eq!(bytes("8Mb"), Bytes(1_000_000));
        assert_eq!(bytes("1 Gb"), Bytes(125_000_000));
        assert_eq!(bytes("0.008 kb"), Bytes(1));
        assert_eq!(bytes("18446744073709551615"), Bytes(u64::MAX));
    }

    #[test]
    fn units_round_trip_through_their_symbols() {
        for unit in ALL_UNITS {
            assert_eq!(unit.symbol().parse::<Unit>().unwrap(), unit);
            assert_eq!(unit.to_string(), unit.symbol());
        }
    }

    #[test]
    fn sizes_round_trip_through_text() {
        for unit in ALL_UNITS {
            for count in [0u64, 1, 8, 1000, 4096] {
                let text = format!("{count} {unit}");
                let expected = u128::from(count) * unit.exact_size();
                let expected = if unit.is_bits() { expected / 8 } else { expected };
                assert_eq!(u128::from(bytes(&text).0), expected, "{text}");
            }
        }
        for size in [Bytes(0), Bytes(512), Bytes(1 << 10), Bytes(64 << 20), Bytes(5 << 30)] {
            assert_eq!(bytes(&size.to_string()), size);
        }
        let odd = Bytes(1_572_864);
        assert_eq!(bytes(&format!("{:.6}", odd.display_in(Unit::MB))), odd);
    }

    #[test]
    fn every_parse_error_says_what_was_wrong() {
        assert!(invalid_message("".parse::<Bytes>()).contains("empty"));
        assert!(invalid_message("   ".parse::<Bytes>()).contains("empty"));
        assert!(invalid_message("MiB".parse::<Bytes>()).contains("does not start with"));
        assert!(invalid_message("-1 MiB".parse::<Bytes>()).contains("non-negative"));
        assert!(invalid_message(". MiB".parse::<Bytes>()).contains("does not start with"));
        assert!(invalid_message("1.2.3 kB".parse::<Bytes>()).contains("does not start with"));
        assert!(invalid_message("1 XB".parse::<Bytes>()).contains("unknown unit \"XB\""));
        assert!(invalid_message("1e6".parse::<Bytes>()).contains("unknown unit \"e6\""));
        assert!(invalid_message("1 b".parse::<Bytes>()).contains("unknown unit"));
        assert!(invalid_message("1.5 B".parse::<Bytes>()).contains("whole number of bytes"));
        assert!(invalid_message("0.0001 kb".parse::<Bytes>()).contains("whole number of bits"));
        let bits = invalid_message("0.1 kb".parse::<Bytes>());
        assert!(bits.contains("100 bits") && bits.contains("multiple of 8 bits"), "{bits}");
        let tiny = format!("0.{}1 GiB", "0".repeat(40));
        assert!(invalid_message(tiny.parse::<Bytes>()).contains("whole number"));
        assert!(invalid_message("18446744073709551616".parse::<Bytes>()).contains("64 bits"));
        assert!(invalid_message("20000000000 GiB".parse::<Bytes>()).contains("64 bits"));
        let many_digits = "9".repeat(45);
        assert!(invalid_message(many_digits.parse::<Bytes>()).contains("64 bits"));
        assert!(invalid_message("mb".parse::<Unit>()).contains("unknown unit"));
        assert!(invalid_message("kib".parse::<Unit>()).contains("use one of"));
    }

    #[test]
    fn zero_duration_has_no_bandwidth() {
        let message = invalid_message(Bandwidth::new(Bytes(1), Duration::ZERO));
        assert!(message.contains("above zero"), "{message}");
    }
}
