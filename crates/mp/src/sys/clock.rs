#![allow(unsafe_code)]
//! Clocks and CPU-time counters from libc, behind safe functions.
//!
//! Everything here is Linux-specific: `CLOCK_BOOTTIME` and `/proc/self/stat` do not exist
//! elsewhere.

use std::{fs, mem::MaybeUninit, time::Duration};

/// CPU time charged to a process (or to its reaped children), split like `time` splits it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub(crate) struct CpuTimes {
    /// Time spent running the program's own code.
    pub user: Duration,
    /// Time the kernel spent working on the program's behalf (system calls, page faults).
    pub sys: Duration,
}

/// Nanoseconds on `CLOCK_MONOTONIC`.
///
/// The clock is shared by all processes on one machine, so values taken in different
/// processes can be subtracted. It does not advance while the machine is suspended.
pub(crate) fn monotonic_ns() -> u64 {
    // CLOCK_MONOTONIC exists on every Linux, so the call cannot fail; 0 would only show up if
    // the kernel broke that promise.
    let Some(now) = clock_time(libc::CLOCK_MONOTONIC) else { return 0 };
    u64::try_from(now.as_nanos()).unwrap_or(u64::MAX)
}

/// CPU time used so far by all threads of this process.
pub(crate) fn cpu_times_self() -> CpuTimes {
    cpu_times(libc::RUSAGE_SELF)
}

/// CPU time used by the children of this process that have been waited for (reaped).
///
/// A child that is still running, or has exited but is not yet reaped, is not included.
pub(crate) fn cpu_times_children() -> CpuTimes {
    cpu_times(libc::RUSAGE_CHILDREN)
}

/// Wall-clock time since this process was created (forked), or None without `/proc`.
///
/// The kernel records the start in clock ticks since boot (field 22 of `/proc/self/stat`),
/// so the age is overstated by less than one tick (10 ms with the usual 100 ticks per
/// second). The start is fixed, so the difference between two ages is exact.
pub(crate) fn process_age() -> Option<Duration> {
    let stat = fs::read_to_string("/proc/self/stat").ok()?;
    let start_ticks = start_time_ticks(&stat)?;
    let ticks_per_second = clock_ticks_per_second()?;
    let started_after_boot = ticks_to_duration(start_ticks, ticks_per_second);
    // The start time is measured on the boot-time clock, which keeps counting during suspend.
    let now_after_boot = clock_time(libc::CLOCK_BOOTTIME)?;
    now_after_boot.checked_sub(started_after_boot)
}

/// Field 22 (`starttime`) of a `/proc/<pid>/stat` line.
fn start_time_ticks(stat: &str) -> Option<u64> {
    // Field 2 is the command name in parentheses; it may contain spaces and ')' itself, so
    // fields are counted from the last ')'.
    let name_end = stat.rfind(')')?;
    let after_name = stat.get(name_end + 1..)?;
    const FIRST_FIELD_AFTER_NAME: usize = 3;
    const START_TIME_FIELD: usize = 22;
    after_name.split_ascii_whitespace().nth(START_TIME_FIELD - FIRST_FIELD_AFTER_NAME)?.parse().ok()
}

fn clock_ticks_per_second() -> Option<u64> {
    // SAFETY: sysconf takes no pointers and only reads a configuration value.
    let ticks = unsafe { libc::sysconf(libc::_SC_CLK_TCK) };
    u64::try_from(ticks).ok().filter(|&ticks| ticks > 0)
}

fn ticks_to_duration(ticks: u64, ticks_per_second: u64) -> Duration {
    let whole_seconds = ticks / ticks_per_second;
    let remaining_ticks = u128::from(ticks % ticks_per_second);
    // remaining_ticks < ticks_per_second, so the quotient is below one second.
    let nanos = remaining_ticks * 1_000_000_000 / u128::from(ticks_per_second);
    Duration::new(whole_seconds, u32::try_from(nanos).unwrap_or(0))
}

fn clock_time(clock: libc::clockid_t) -> Option<Duration> {
    let mut now = libc::timespec { tv_sec: 0, tv_nsec: 0 };
    // SAFETY: `now` is a valid, writable timespec for the whole call.
    let result = unsafe { libc::clock_gettime(clock, &mut now) };
    if result != 0 {
        return None;
    }
    let seconds = u64::try_from(now.tv_sec).ok()?;
    let nanos = u32::try_from(now.tv_nsec).ok()?;
    Some(Duration::new(seconds, nanos))
}

fn cpu_times(who: libc::c_int) -> CpuTimes {
    let mut usage = MaybeUninit::<libc::rusage>::zeroed();
    // SAFETY: `usage` is writable memory of the size and alignment of a rusage.
    let result = unsafe { libc::getrusage(who, usage.as_mut_ptr()) };
    if result != 0 {
        // Only a bad `who` or pointer makes getrusage fail, and both are fixed here.
        return CpuTimes::default();
    }
    // SAFETY: the struct was zeroed (a valid rusage, all integers) and getrusage filled it.
    let usage = unsafe { usage.assume_init() };
    CpuTimes { user: timeval_to_duration(usage.ru_utime), sys: timeval_to_duration(usage.ru_stime) }
}

fn timeval_to_duration(time: libc::timeval) -> Duration {
    let seconds = u64::try_from(time.tv_sec).unwrap_or(0);
    let micros = u64::try_from(time.tv_usec).unwrap_or(0);
    Duration::from_secs(seconds).saturating_add(Duration::from_micros(micros))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn monotonic_clock_does_not_go_back() {
        let first = monotonic_ns();
        let second = monotonic_ns();
        assert!(first > 0);
        assert!(second >= first);
    }

    #[test]
    fn start_time_is_found_after_a_name_with_spaces_and_parentheses() {
        // Fields 3 to 21 are filler; field 22 is 4242.
        let filler: Vec<String> = (3..22).map(|field| field.to_string()).collect();
        let stat = format!("1234 (odd) name (x)) {} 4242 99 100\n", filler.join(" "));
        assert_eq!(start_time_ticks(&stat), Some(4242));
        assert_eq!(start_time_ticks("1234 no parenthesis"), None);
        assert_eq!(start_time_ticks("1234 (short) S 1 2"), None);
    }

    #[test]
    fn ticks_convert_to_exact_durations() {
        assert_eq!(ticks_to_duration(250, 100), Duration::from_millis(2500));
        assert_eq!(ticks_to_duration(1, 3), Duration::from_nanos(333_333_333));
    }

    #[test]
    fn this_process_has_a_positive_age_that_grows() {
        let first = process_age().expect("Linux test machines have /proc");
        let second = process_age().expect("Linux test machines have /proc");
        assert!(first > Duration::ZERO);
        assert!(second >= first);
    }

    #[test]
    fn cpu_times_do_not_decrease() {
        let before = cpu_times_self();
        let mut sum = 0u64;
        for value in 0..2_000_000u64 {
            sum = sum.wrapping_add(std::hint::black_box(value));
        }
        std::hint::black_box(sum);
        let after = cpu_times_self();
        assert!(after.user >= before.user);
        assert!(after.sys >= before.sys);
        // Reaped children only ever add to the totals.
        let children_before = cpu_times_children();
        let children_after = cpu_times_children();
        assert!(children_after.user >= children_before.user);
        assert!(children_after.sys >= children_before.sys);
    }
}
