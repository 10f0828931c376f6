//! The same `map` on threads (via rayon), to compare with worker processes.
//!
//! Threads share one address space: `f` reads its inputs where they are, with no copying and
//! no serialization, so threads start faster and cost less to feed than worker processes. The
//! price is isolation: a thread that aborts, overflows its stack, corrupts memory or is killed
//! (by the OOM killer, say) takes every other thread and the whole program down, while a dead
//! worker process leaves its parent standing. Panics are the one failure a thread can
//! contain, and `map` turns them into errors.
//!
//! ```
//! let squares = mp::threads::map(2, |x: u64| x * x, (1..=4).collect())?;
//! assert_eq!(squares, [1, 4, 9, 16]);
//! # Ok::<(), mp::Error>(())
//! ```

use std::{
    any::Any,
    fmt, io,
    panic::{self, AssertUnwindSafe},
    process,
};

use rayon::iter::{IntoParallelIterator, ParallelIterator};

use crate::{Error, Result};

/// A fixed set of threads that run `map` calls in parallel.
///
/// ```
/// let pool = mp::threads::ThreadPool::new(2)?;
/// assert_eq!(pool.n_threads(), 2);
/// assert_eq!(format!("{pool:?}"), "ThreadPool { n_threads: 2 }");
/// # Ok::<(), mp::Error>(())
/// ```
pub struct ThreadPool {
    pool: rayon::ThreadPool,
}

impl ThreadPool {
    /// Starts `n_threads` threads (at least 1, at most what rayon supports).
    ///
    /// ```
    /// use mp::threads::ThreadPool;
    /// assert!(ThreadPool::new(1).is_ok());
    /// assert!(ThreadPool::new(0).is_err());
    /// ```
    pub fn new(n_threads: usize) -> Result<ThreadPool> {
        if n_threads == 0 {
            return Err(Error::invalid("a pool needs at least one thread; pass 1 or more"));
        }
        // rayon silently caps larger counts; say so instead of handing back a smaller pool.
        let max_threads = rayon::max_num_threads();
        if n_threads > max_threads {
            return Err(Error::invalid(format!(
                "{n_threads} threads is more than rayon supports; pass at most {max_threads}"
            )));
        }
        let pool = rayon::ThreadPoolBuilder::new()
            .num_threads(n_threads)
            .thread_name(|index| format!("mp-thread-{index}"))
            .build()
            .map_err(|error| {
                Error::io(
                    format!(
                        "could not start {n_threads} threads (check `ulimit -u` and free memory)"
                    ),
                    io::Error::other(error),
                )
            })?;
        Ok(ThreadPool { pool })
    }

    /// The number of threads in the pool.
    ///
    /// ```
    /// let pool = mp::threads::ThreadPool::new(3)?;
    /// assert_eq!(pool.n_threads(), 3);
    /// # Ok::<(), mp::Error>(())
    /// ```
    pub fn n_threads(&self) -> usize {
        self.pool.current_num_threads()
    }

    /// Applies `f` to every item on the pool's threads and returns the results in input order.
    ///
    /// Every item runs even if some panic. If any did, the result is
    /// [`Error::TaskPanicked`] for the lowest failing index. The panic message is still printed
    /// to stderr by the panic hook, as for any panic.
    ///
    /// ```
    /// use mp::{Error, threads::ThreadPool};
    /// let pool = ThreadPool::new(2)?;
    /// assert_eq!(pool.map(|word: &str| word.len(), vec!["a", "bcd", "ef"])?, [1, 3, 2]);
    ///
    /// let failed = pool.map(|x: i32| if x == 2 { panic!("two") } else { x }, vec![1, 2, 3]);
    /// assert!(matches!(failed, Err(Error::TaskPanicked { task_index: Some(1), .. })));
    /// # Ok::<(), mp::Error>(())
    /// ```
    pub fn map<A, R, F>(&self, f: F, items: Vec<A>) -> Result<Vec<R>>
    where
        F: Fn(A) -> R + Sync + Send,
        A: Send,
        R: Send,
    {
        // `f` is only shared by reference, and a panicking call leaves no half-updated state
        // behind that later items could observe, so asserting unwind safety is sound.
        let outcomes: Vec<std::thread::Result<R>> = self.pool.install(|| {
            items
                .into_par_iter()
                .map(|item| panic::catch_unwind(AssertUnwindSafe(|| f(item))))
                .collect()
        });

        let mut results = Vec::with_capacity(outcomes.len());
        for (index, outcome) in outcomes.into_iter().enumerate() {
            match outcome {
                Ok(result) => results.push(result),
                Err(payload) => {
                    return Err(Error::TaskPanicked {
                        message: panic_message(payload.as_ref()),
                        location: None,
                        task_index: Some(index),
                        pid: process::id(),
                    });
                }
            }
        }
        Ok(results)
    }
}

impl fmt::Debug for ThreadPool {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ThreadPool").field("n_threads", &self.n_threads()).finish()
    }
}

/// Builds a pool of `n_threads` threads, maps `f` over `items` on it, and shuts it down.
///
/// ```
/// let lengths = mp::threads::map(2, |text: String| text.len(), vec!["ab".to_owned()])?;
/// assert_eq!(lengths, [2]);
/// assert!(mp::threads::map(0, |x: u8| x, vec![1]).is_err());
/// # Ok::<(), mp::Error>(())
/// ```
pub fn map<A, R, F>(n_threads: usize, f: F, items: Vec<A>) -> Result<Vec<R>>
where
    F: Fn(A) -> R + Sync + Send,
    A: Send,
    R: Send,
{
    ThreadPool::new(n_threads)?.map(f, items)
}

/// The text of a panic: `panic!` with a literal gives a `&str`, with formatting a `String`.
fn panic_message(payload: &(dyn Any + Send)) -> String {
    if let Some(text) = payload.downcast_ref::<&str>() {
        return (*text).to_owned();
    }
    if let Some(text) = payload.downcast_ref::<String>() {
        return text.clone();
    }
    "the panic payload is not a string (panic_any with another type)".to_owned()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn results_match_a_serial_map_in_order() {
        let items: Vec<u64> = (0..1000).collect();
        let expected: Vec<u64> = items.iter().map(|x| x * x + 1).collect();
        for n_threads in 1..=4 {
            let pool = ThreadPool::new(n_threads).unwrap();
            assert_eq!(pool.n_threads(), n_threads);
            assert_eq!(pool.map(|x| x * x + 1, items.clone()).unwrap(), expected);
            assert_eq!(map(n_threads, |x| x * x + 1, items.clone()).unwrap(), expected);
        }
        let nothing: Vec<u64> = Vec::new();
        assert_eq!(map(2, |x: u64| x, nothing).unwrap(), Vec::<u64>::new());
    }

    #[test]
    fn a_panic_becomes_task_panicked_with_index_and_message() {
        let pool = ThreadPool::new(2).unwrap();
        let literal =
            pool.map(|x: u32| if x == 3 { panic!("bad item") } else { x }, (0..8).collect());
        match literal {
            Err(Error::TaskPanicked { message, task_index, pid, .. }) => {
                assert_eq!(message, "bad item");
                assert_eq!(task_index, Some(3));
                assert_eq!(pid, process::id());
            }
            other => panic!("expected TaskPanicked, got {other:?}"),
        }

        let formatted = pool.map(
            |x: u32| if x % 5 == 4 { panic!("item {x} failed") } else { x },
            (0..20).collect(),
        );
        match formatted {
            Err(Error::TaskPanicked { message, task_index, .. }) => {
                // Items 4, 9, 14 and 19 all panic; the lowest index is reported.
                assert_eq!(message, "item 4 failed");
                assert_eq!(task_index, Some(4));
            }
            other => panic!("expected TaskPanicked, got {other:?}"),
        }

        // The pool still works after a panic.
        assert_eq!(pool.map(|x: u32| x + 1, vec![1, 2]).unwrap(), [2, 3]);
    }

    #[test]
    fn non_string_panic_payloads_are_named() {
        let payload: Box<dyn Any + Send> = Box::new(42u8);
        assert!(panic_message(payload.as_ref()).contains("not a string"));
        let payload: Box<dyn Any + Send> = Box::new("plain");
        assert_eq!(panic_message(payload.as_ref()), "plain");
    }

    #[test]
    fn zero_or_too_many_threads_are_invalid_arguments() {
        match ThreadPool::new(0) {
            Err(Error::InvalidArgument { message }) => {
                assert!(message.contains("at least one thread"), "{message}")
            }
            other => panic!("expected InvalidArgument, got {other:?}"),
        }
        match map(0, |x: u8| x, vec![1]) {
            Err(Error::InvalidArgument { .. }) => {}
            other => panic!("expected InvalidArgument, got {other:?}"),
        }
        match ThreadPool::new(usize::MAX) {
            Err(Error::InvalidArgument { message }) => assert!(message.contains("at most")),
            other => panic!("expected InvalidArgument, got {other:?}"),
        }
    }
}
