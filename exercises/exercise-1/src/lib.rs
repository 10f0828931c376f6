//! Exercise 1: `pool.map(hard_work, range(20))` three ways: with a `Pool`, by hand with
//! `array_split` and one `Process` per part, and with threads. Every version must return
//! exactly what the serial run returns, in the same order.
//!
//! Items are the numbers `0..n_items` (as `u64`); the work is the given [`hard_work`].

mod given;

pub use given::{STEPS_PER_UNIT, hard_work, work_units};
pub use mp::{TaskRecord, Traced};

/// The serial baseline: `[hard_work(i) for i in range(n_items)]`.
///
/// Every speed-up of the exercise is measured against this.
pub fn serial(n_items: u64) -> Vec<u64> {
    todo!("return hard_work(i) for every i in 0..{n_items}, in order, without any process")
}

/// `Pool(n_workers).map(hard_work, range(n_items), chunksize)`, recording which worker ran
/// which item when.
///
/// Start an [`mp::Pool`] of `n_workers` worker processes and map [`hard_work`] over
/// `0..n_items` with [`mp::Pool::map_traced`] (it is `pool.map` plus a record per item).
/// `chunksize` None means Python's default. Errors (0 workers, for instance) are returned,
/// not unwrapped.
pub fn with_pool(
    n_workers: usize,
    n_items: u64,
    chunksize: Option<usize>,
) -> mp::Result<Traced<u64>> {
    todo!(
        "start a Pool of {n_workers} workers and return pool.map_traced(hard_work, 0..{n_items}, \
         {chunksize:?})"
    )
}

/// What one process of [`by_hand`] runs: `hard_work` of every item of its part, in order.
///
/// It runs in another process, so it gets its part as an owned `Vec` (a copy sent to it),
/// not as a reference into the parent's memory.
pub fn one_part(part: Vec<u64>) -> Vec<u64> {
    todo!("return hard_work(i) for each i of the part {part:?}, in order")
}

/// The same map by hand, with a static split: `np.array_split(range(n_items), n_processes)`,
/// one `Process` per part running [`one_part`], then join them all and concatenate their
/// results in part order.
///
/// Start every process before you join the first, or they run one after another. Use
/// [`mp::array_split`] and [`mp::Process::spawn`]; return errors (0 processes, for
/// instance) instead of unwrapping them.
pub fn by_hand(n_processes: usize, n_items: u64) -> mp::Result<Vec<u64>> {
    todo!(
        "array_split 0..{n_items} into {n_processes} parts, spawn one Process per part running \
         one_part, then join them in order and concatenate the results"
    )
}

/// The same map on `n_threads` threads of one process, with [`mp::threads::map`] (rayon).
///
/// Errors (0 threads, for instance) are returned, not unwrapped.
pub fn with_threads(n_threads: usize, n_items: u64) -> mp::Result<Vec<u64>> {
    todo!("map hard_work over 0..{n_items} on {n_threads} threads with mp::threads::map")
}
