//! Exercise 1, solved: `pool.map(hard_work, range(20))` with a `Pool`, by hand with
//! `array_split` and one `Process` per part, and with threads.

#[path = "../../../exercises/exercise-1/src/given.rs"]
mod given;

pub use given::{STEPS_PER_UNIT, hard_work, work_units};
pub use mp::{TaskRecord, Traced};

use mp::{Pool, Process};

/// The serial baseline: `[hard_work(i) for i in range(n_items)]`.
pub fn serial(n_items: u64) -> Vec<u64> {
    (0..n_items).map(hard_work).collect()
}

/// `Pool(n_workers).map(hard_work, range(n_items), chunksize)`, with a record per item.
pub fn with_pool(
    n_workers: usize,
    n_items: u64,
    chunksize: Option<usize>,
) -> mp::Result<Traced<u64>> {
    // Starting the pool is part of the cost: the workers are new processes.
    let pool = Pool::new(n_workers)?;
    // The pool hands out chunks as workers become free (a dynamic split): a worker that got
    // cheap items early comes back for more.
    pool.map_traced(hard_work, 0..n_items, chunksize)
    // Dropping the pool here stops its workers (Python's `with Pool(...)` block ending).
}

/// What one process of [`by_hand`] runs: `hard_work` of every item of its part, in order.
pub fn one_part(part: Vec<u64>) -> Vec<u64> {
    part.into_iter().map(hard_work).collect()
}

/// The same map by hand: `np.array_split`, one `Process` per part, join, concatenate.
pub fn by_hand(n_processes: usize, n_items: u64) -> mp::Result<Vec<u64>> {
    let items: Vec<u64> = (0..n_items).collect();
    // A static split: each process gets its part up front, whatever it costs. hard_work grows
    // with i, so the last part is the most expensive one and everyone else waits for it.
    let parts = mp::array_split(&items, n_processes)?;

    // Start them all first: a join right after each spawn would run the parts one by one.
    let mut processes = Vec::with_capacity(parts.len());
    for part in parts {
        processes.push(Process::spawn(one_part, part.to_vec())?);
    }

    // Joining in part order gives the results in input order, however the processes finish.
    let mut results = Vec::with_capacity(items.len());
    for process in &mut processes {
        results.extend(process.join()?);
    }
    Ok(results)
}

/// The same map on `n_threads` threads of one process (rayon).
pub fn with_threads(n_threads: usize, n_items: u64) -> mp::Result<Vec<u64>> {
    // Threads share memory: no process to start, nothing to serialize.
    mp::threads::map(n_threads, hard_work, (0..n_items).collect())
}
