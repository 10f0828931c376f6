//! Phase timings (the lecture's t0, t1, t2 ... marks) and the process times that the shell's
//! `time` prints.
//!
//! ```
//! use mp::timing::{Phases, ProcessTimes};
//! let mut phases = Phases::start();
//! let data: Vec<u64> = (0..1000).collect();
//! phases.mark("t1");
//! let total: u64 = data.iter().sum();
//! phases.mark("t2");
//! assert_eq!(total, 499_500);
//! assert_eq!(phases.intervals().len(), 3);
//! println!("{phases}");
//! println!("{}", ProcessTimes::now());
//! ```

use std::{
    fmt,
    time::{Duration, Instant},
};

use crate::sys::clock;

/// Named instants of a run, starting with "t0", for timing the phases of a program.
///
/// `Display` prints every interval as a table in milliseconds.
///
/// ```
/// use mp::timing::Phases;
/// let mut phases = Phases::start();
/// phases.mark("t1");
/// phases.mark("t2");
/// let names: Vec<&str> = phases.marks().iter().map(|mark| mark.name.as_str()).collect();
/// assert_eq!(names, ["t0", "t1", "t2"]);
/// assert!(phases.to_string().starts_with("from  to   "));
/// ```
#[derive(Debug, Clone)]
pub struct Phases {
    origin: Instant,
    marks: Vec<Mark>,
}

/// One named instant of a [`Phases`].
///
/// ```
/// use std::time::Duration;
/// use mp::timing::Phases;
/// let phases = Phases::start();
/// assert_eq!(phases.marks()[0].name, "t0");
/// assert_eq!(phases.marks()[0].at, Duration::ZERO);
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Mark {
    /// The name given to [`Phases::mark`] ("t0" for the first).
    pub name: String,
    /// When it was taken, counted from "t0".
    pub at: Duration,
}

/// The time between two marks of a [`Phases`].
///
/// ```
/// use mp::timing::Phases;
/// let mut phases = Phases::start();
/// phases.mark("t1");
/// let interval = &phases.intervals()[0];
/// assert_eq!((interval.from.as_str(), interval.to.as_str()), ("t0", "t1"));
/// assert_eq!(interval.duration, phases.marks()[1].at);
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Interval {
    /// The name of the earlier mark.
    pub from: String,
    /// The name of the later mark.
    pub to: String,
    /// The time from `from` to `to`.
    pub duration: Duration,
}

impl Phases {
    /// Starts timing now, recording the mark "t0".
    ///
    /// ```
    /// let phases = mp::timing::Phases::start();
    /// assert_eq!(phases.marks().len(), 1);
    /// ```
    pub fn start() -> Phases {
        let origin = Instant::now();
        Phases { origin, marks: vec![Mark { name: "t0".to_owned(), at: Duration::ZERO }] }
    }

    /// Records the mark `name` now.
    ///
    /// ```
    /// let mut phases = mp::timing::Phases::start();
    /// phases.mark("t1");
    /// assert_eq!(phases.marks()[1].name, "t1");
    /// ```
    pub fn mark(&mut self, name: &str) {
        let at = self.origin.elapsed();
        self.marks.push(Mark { name: name.to_owned(), at });
    }

    /// All marks in the order they were taken.
    ///
    /// ```
    /// let mut phases = mp::timing::Phases::start();
    /// phases.mark("t1");
    /// assert!(phases.marks()[1].at >= phases.marks()[0].at);
    /// ```
    pub fn marks(&self) -> &[Mark] {
        &self.marks
    }

    /// Every interval between two marks, earlier mark first: for t0..t3 that is t0→t1, t0→t2,
    /// t0→t3, t1→t2, t1→t3, t2→t3.
    ///
    /// ```
    /// let mut phases = mp::timing::Phases::start();
    /// for name in ["t1", "t2", "t3"] {
    ///     phases.mark(name);
    /// }
    /// let pairs: Vec<String> =
    ///     phases.intervals().iter().map(|i| format!("{}-{}", i.from, i.to)).collect();
    /// assert_eq!(pairs, ["t0-t1", "t0-t2", "t0-t3", "t1-t2", "t1-t3", "t2-t3"]);
    /// ```
    pub fn intervals(&self) -> Vec<Interval> {
        let mut intervals = Vec::new();
        for (position, from) in self.marks.iter().enumerate() {
            for to in &self.marks[position + 1..] {
                intervals.push(Interval {
                    from: from.name.clone(),
                    to: to.name.clone(),
                    duration: to.at.saturating_sub(from.at),
                });
            }
        }
        intervals
    }
}

impl fmt::Display for Phases {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let intervals = self.intervals();
        let millis: Vec<String> =
            intervals.iter().map(|interval| format_millis(interval.duration)).collect();
        let from_width = column_width("from", intervals.iter().map(|i| i.from.as_str()));
        let to_width = column_width("to", intervals.iter().map(|i| i.to.as_str()));
        let ms_width = column_width("ms", millis.iter().map(String::as_str));

        write!(f, "{:<from_width$}  {:<to_width$}  {:>ms_width$}", "from", "to", "ms")?;
        for (interval, millis) in intervals.iter().zip(&millis) {
            write!(
                f,
                "\n{:<from_width$}  {:<to_width$}  {millis:>ms_width$}",
                interval.from, interval.to
            )?;
        }
        Ok(())
    }
}

/// The width of a table column: its widest cell or its header.
fn column_width<'a>(header: &str, cells: impl Iterator<Item = &'a str>) -> usize {
    cells.map(|cell| cell.chars().count()).fold(header.chars().count(), usize::max)
}

/// Milliseconds with three decimals, truncated to the microsecond so no float rounding shows.
fn format_millis(duration: Duration) -> String {
    let micros = duration.as_micros();
    format!("{}.{:03}", micros / 1000, micros % 1000)
}

/// Wall-clock and CPU time of this process, as the shell's `time` reports them.
///
/// `user` and `sys` include the child processes that have been waited for (reaped). A child
/// that is still running, or exited but not yet reaped, is not counted; mp reaps a child when
/// it is joined and a pool's workers when the pool is dropped. Use [`ProcessTimes::since`] to
/// time one part of a program.
///
/// Under `cargo run` the figures include cargo's own work: on Unix cargo *replaces itself* with
/// your program (`exec`), so the process started as cargo, and its age and CPU times count the
/// build check too. Run the binary directly (`./target/release/NAME`) to compare with `time`.
///
/// ```
/// use mp::timing::ProcessTimes;
/// let before = ProcessTimes::now();
/// let total: u64 = (0..100_000u64).map(std::hint::black_box).sum();
/// let spent = ProcessTimes::now().since(&before);
/// assert_eq!(total, 4_999_950_000);
/// assert!(spent.to_string().starts_with("real\t0m"));
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct ProcessTimes {
    /// Wall-clock time since the process was created; zero where `/proc` is not available.
    pub real: Duration,
    /// CPU time in the program's own code, summed over threads and reaped children.
    pub user: Duration,
    /// CPU time the kernel spent on the program's behalf, summed the same way.
    pub sys: Duration,
}

impl ProcessTimes {
    /// The times so far. `real` comes from the start time the kernel records (in clock ticks),
    /// so it may be up to one tick (usually 10 ms) too large; differences are exact.
    ///
    /// ```
    /// let times = mp::timing::ProcessTimes::now();
    /// assert!(times.real > std::time::Duration::ZERO);
    /// ```
    pub fn now() -> ProcessTimes {
        let own = clock::cpu_times_self();
        let children = clock::cpu_times_children();
        ProcessTimes {
            real: clock::process_age().unwrap_or(Duration::ZERO),
            user: own.user.saturating_add(children.user),
            sys: own.sys.saturating_add(children.sys),
        }
    }

    /// The times spent between `earlier` and `self`, field by field (never negative).
    ///
    /// ```
    /// use std::time::Duration;
    /// use mp::timing::ProcessTimes;
    /// let earlier = ProcessTimes { real: Duration::from_secs(1), ..ProcessTimes::default() };
    /// let later = ProcessTimes { real: Duration::from_secs(3), ..ProcessTimes::default() };
    /// assert_eq!(later.since(&earlier).real, Duration::from_secs(2));
    /// assert_eq!(earlier.since(&later).real, Duration::ZERO);
    /// ```
    pub fn since(&self, earlier: &ProcessTimes) -> ProcessTimes {
        ProcessTimes {
            real: self.real.saturating_sub(earlier.real),
            user: self.user.saturating_sub(earlier.user),
            sys: self.sys.saturating_sub(earlier.sys),
        }
    }
}

/// Three lines laid out like bash's `time`: `real\t0m1.500s`, then `user` and `sys`.
impl fmt::Display for ProcessTimes {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "real\t{}\nuser\t{}\nsys\t{}",
            MinutesSeconds(self.real),
            MinutesSeconds(self.user),
            MinutesSeconds(self.sys)
        )
    }
}

/// `1m15.500s`: whole minutes, then seconds to the millisecond (truncated, as bash does).
struct MinutesSeconds(Duration);

impl fmt::Display for MinutesSeconds {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let total_millis = self.0.as_millis();
        let minutes = total_millis / 60_000;
        let seconds = total_millis / 1000 % 60;
        let millis = total_millis % 1000;
        write!(f, "{minutes}m{seconds}.{millis:03}s")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn phases_with(names: &[&str]) -> Phases {
        let mut phases = Phases::start();
        for name in names {
            phases.mark(name);
        }
        phases
    }

    #[test]
    fn every_pair_of_marks_is_an_interval() {
        let names = ["t1", "t2", "t3", "t4", "t5"];
        for count in 0..=names.len() {
            let phases = phases_with(&names[..count]);
            let marks = phases.marks();
            let intervals = phases.intervals();
            assert_eq!(marks.len(), count + 1);
            assert_eq!(intervals.len(), marks.len() * (marks.len() - 1) / 2);

            let mut expected = intervals.iter();
            for (position, from) in marks.iter().enumerate() {
                for to in &marks[position + 1..] {
                    let interval = expected.next().unwrap();
                    assert_eq!(interval.from, from.name);
                    assert_eq!(interval.to, to.name);
                    assert_eq!(interval.duration, to.at - from.at);
                }
            }
        }
    }

    #[test]
    fn marks_are_in_time_order() {
        let phases = phases_with(&["t1", "t2", "t3"]);
        for pair in phases.marks().windows(2) {
            assert!(pair[1].at >= pair[0].at);
        }
    }

    #[test]
    fn table_is_aligned_with_a_unit_header() {
        let phases = Phases {
            origin: Instant::now(),
            marks: vec![
                Mark { name: "t0".to_owned(), at: Duration::ZERO },
                Mark { name: "load".to_owned(), at: Duration::from_micros(1500) },
                Mark { name: "t2".to_owned(), at: Duration::from_micros(12_345_678) },
            ],
        };
        let expected = [
            "from  to           ms",
            "t0    load      1.500",
            "t0    t2    12345.678",
            "load  t2    12344.178",
        ]
        .join("\n");
        assert_eq!(phases.to_string(), expected);
        assert_eq!(Phases::start().to_string(), "from  to  ms");
    }

    #[test]
    fn times_grow_after_busy_work() {
        let before = ProcessTimes::now();
        let mut sum = 0u64;
        for value in 0..5_000_000u64 {
            sum = sum.wrapping_add(std::hint::black_box(value));
        }
        std::hint::black_box(sum);
        let after = ProcessTimes::now();
        assert!(before.real > Duration::ZERO);
        assert!(after.real >= before.real);
        assert!(after.user >= before.user);
        assert!(after.sys >= before.sys);
        let spent = after.since(&before);
        assert_eq!(spent.user, after.user - before.user);
    }

    #[test]
    fn display_matches_the_time_builtin() {
        let times = ProcessTimes {
            real: Duration::from_millis(123),
            user: Duration::from_micros(45_999),
            sys: Duration::from_millis(75_500),
        };
        assert_eq!(times.to_string(), "real\t0m0.123s\nuser\t0m0.045s\nsys\t1m15.500s");
        let long = ProcessTimes { real: Duration::from_secs(3725), ..ProcessTimes::default() };
        assert_eq!(long.to_string(), "real\t62m5.000s\nuser\t0m0.000s\nsys\t0m0.000s");
    }
}
