//! Given code for exercise 3 (you do not need to change it): what each rank computes, and
//! the types the gathers return.

use serde::{Deserialize, Serialize};

/// The most ranks the gathers accept (each rank is a process; a 2-core machine shows
/// everything with far fewer).
pub const MAX_RANKS: usize = 64;

/// What rank `rank` computes: `len` numbers that carry their origin. Element `i` of rank `r`
/// is `r + i / 2^20` (exact in `f64`), so a glance at a value tells which rank and which
/// position it came from, and any mix-up shows.
///
/// ```
/// assert_eq!(gather::rank_value(3, 2), [3.0, 3.0 + 1.0 / 1048576.0]);
/// ```
pub fn rank_value(rank: usize, len: usize) -> Vec<f64> {
    (0..len).map(|i| rank as f64 + i as f64 / 1_048_576.0).collect()
}

/// What every rank sends to rank 0 when the channel alone cannot say who sent it: its rank
/// and its vector.
pub type Tagged = (usize, Vec<f64>);

/// The result of a gather through a queue: the vectors in rank order, and the order in
/// which the ranks' items arrived (which changes from run to run).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct QueueGather {
    /// `values[r]` is rank `r`'s vector, for every rank `0..n_ranks`.
    pub values: Vec<Vec<f64>>,
    /// The ranks (1 to `n_ranks - 1`) in the order their items came off the queue.
    pub arrival: Vec<usize>,
}

/// `Ok` for 1 to [`MAX_RANKS`] ranks; otherwise an [`mp::Error::InvalidArgument`] that says
/// what to pass. Call it first in every gather that starts its own processes.
///
/// ```
/// assert!(gather::check_n_ranks(4).is_ok());
/// assert!(gather::check_n_ranks(0).is_err());
/// ```
pub fn check_n_ranks(n_ranks: usize) -> mp::Result<()> {
    if (1..=MAX_RANKS).contains(&n_ranks) {
        return Ok(());
    }
    Err(mp::Error::InvalidArgument {
        message: format!("a gather needs 1 to {MAX_RANKS} ranks (rank 0 included), not {n_ranks}"),
    })
}
