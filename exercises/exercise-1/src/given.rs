//! Given code (you do not change it): the work that every version of the exercise maps.

/// Steps of [`hard_work`] per unit of work: `hard_work(i)` takes `i + 1` units.
pub const STEPS_PER_UNIT: u64 = 70_000;

/// Real CPU work whose cost grows with `i`, like the lecture's `hard_work`: `hard_work(19)`
/// takes 20 times as long as `hard_work(0)`.
///
/// It runs a chain of `(i + 1) * STEPS_PER_UNIT` steps of a random-number generator, each
/// step needing the one before, so it cannot be skipped or shortened. The result depends
/// only on `i`: every correct version of the exercise returns exactly the same numbers.
///
/// ```
/// use pool_map::hard_work;
/// assert_eq!(hard_work(3), hard_work(3));
/// assert_ne!(hard_work(3), hard_work(4));
/// ```
pub fn hard_work(i: u64) -> u64 {
    // A modulus the compiler cannot see, so each step is a real division: a debug build is
    // then less than twice as slow as --release, and the figures keep their shape in both.
    let modulus = std::hint::black_box(1_000_000_007);
    let mut x = i;
    for step in 0..work_units(i) * STEPS_PER_UNIT {
        x = x.wrapping_mul(6_364_136_223_846_793_005).wrapping_add(step) % modulus;
    }
    x
}

/// How many units of work `hard_work(i)` takes: `i + 1`. Items 0..20 take 210 units in all.
///
/// ```
/// assert_eq!((0..20).map(pool_map::work_units).sum::<u64>(), 210);
/// ```
pub fn work_units(i: u64) -> u64 {
    i + 1
}
