//! Given code (you do not change it): the types of the ring and of the overhead experiment,
//! the experiment's work, and a `queue.get()` that cannot hang.

use mp::{Receiver, Sender, timing::Phases};
use serde::{Deserialize, Serialize};

/// One stop of the token: which rank it reached, in which process.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Visit {
    /// The rank the token reached.
    pub rank: usize,
    /// The process id of that rank (`std::process::id()` there).
    pub pid: u32,
}

/// What goes round the ring: every visit so far, in order.
pub type Token = Vec<Visit>;

/// What one process of the ring gets in its argument: its rank and its two ends of the ring.
#[derive(Debug, Serialize, Deserialize)]
pub struct RingPlace {
    /// This process's rank, 0 to `n_ranks - 1`.
    pub rank: usize,
    /// How many ranks the ring has.
    pub n_ranks: usize,
    /// The receiving end of the pipe from the previous rank (`rank - 1`; rank 0 hears from the
    /// last rank).
    pub from_previous: Receiver<Token>,
    /// The sending end of the pipe to the next rank (`rank + 1`; the last rank sends to 0).
    pub to_next: Sender<Token>,
}

/// The result of one way of doing the overhead experiment's work, with its phase marks.
#[derive(Debug, Clone)]
pub struct Overhead {
    /// `sum_list` of every list, in order.
    pub sums: Vec<u64>,
    /// The marks t0, t1, t2, t3 (see `without_processes`).
    pub phases: Phases,
}

/// The work of the overhead experiment, as in the lecture's `pool.map(sum, lists)`: the sum
/// of one list. It is cheap: what the experiment measures is what it costs to start
/// processes and to send them the lists.
///
/// ```
/// assert_eq!(process_launch::sum_list(vec![1, 2, 3]), 6);
/// ```
pub fn sum_list(list: Vec<u64>) -> u64 {
    list.iter().sum()
}

/// Python's `queue.get()` for a result that one process will put: waits for the next item,
/// and if `process` ends without putting one, returns why instead of waiting forever (where
/// Python's `q.get()` hangs).
///
/// It returns an error if the process panicked or was killed (the error of its `join`), or if
/// it ended normally without putting anything. The process is joined only in those cases, so
/// after an `Ok` you still `join` it yourself.
///
/// ```
/// # fn main() -> mp::Result<()> {
/// # mp::init();
/// fn put_42(queue: mp::Queue<u32>) { queue.put(&42).unwrap() }
/// fn put_nothing(_: mp::Queue<u32>) {}
///
/// let queue = mp::Queue::new()?;
/// let mut process = mp::Process::spawn(put_42, queue.clone())?;
/// assert_eq!(process_launch::get_while_alive(&queue, &mut process)?, 42);
/// process.join()?;
///
/// let mut silent = mp::Process::spawn(put_nothing, queue.clone())?;
/// assert!(process_launch::get_while_alive(&queue, &mut silent).is_err());
/// # Ok(()) }
/// ```
pub fn get_while_alive<T, R>(queue: &mp::Queue<T>, process: &mut mp::Process<R>) -> mp::Result<T>
where
    T: serde::de::DeserializeOwned + 'static,
    R: serde::de::DeserializeOwned + 'static,
{
    use std::time::Duration;
    loop {
        match queue.get_timeout(Duration::from_millis(20)) {
            Err(error) if error.is_timeout() => {}
            done => return done,
        }
        if !process.is_alive() {
            break;
        }
    }
    // The process has ended; what it put may still be on its way to this process.
    match queue.get_timeout(Duration::from_secs(1)) {
        Err(error) if error.is_timeout() => {}
        done => return done,
    }
    process.join()?;
    Err(mp::Error::Disconnected {
        endpoint: format!(
            "the queue: process {} ended without putting anything on it",
            process.pid()
        ),
    })
}
