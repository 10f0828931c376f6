//! Exercise 3: gather a value from every rank on rank 0, three ways.
//!
//! Every rank `r` computes [`rank_value(r, len)`](rank_value), a vector of `len` f64, and
//! rank 0 must end with all of them in rank order. You write:
//!
//! * (a) [`gather_shared_end`]: every rank writes into ONE shared sending end. See what goes
//!   wrong with large messages.
//! * (b) [`gather`] and [`gather_star`]: one connection per rank, a star around rank 0.
//! * (c) [`gather_queue`]: through a [`mp::Queue`], where items arrive in any order and the
//!   rank tag restores it.
//!
//! `given.rs` has what you use but do not write: [`rank_value`], [`Tagged`],
//! [`QueueGather`], [`check_n_ranks`].

mod given;
pub use given::*;

use mp::Communicator;

/// (a) Gather through one shared sending end, as with one `Pipe(duplex=False)` whose sending
/// end is handed to every process.
///
/// Check `n_ranks` with [`check_n_ranks`]. Make one `mp::pipe_simplex::<Tagged>()`. Start
/// ranks 1 to `n_ranks - 1` as [`mp::Process`]es, each given a clone of the one `Sender`, its
/// rank and `len`; each computes [`rank_value`] and sends `(rank, vector)`. Start them all
/// before receiving anything. This process is rank 0: it computes its own vector, receives
/// `n_ranks - 1` messages, puts each in its rank's place, joins the processes, and returns
/// the vectors in rank order.
///
/// Pass every error on with `?`: when the writers' bytes interleave, `recv` gives
/// `mp::Error::Corrupted`, and that error is the right answer. Never return data you have not
/// checked: a rank that is out of range, arrives twice or sends the wrong length is an
/// `mp::Error::Corrupted` with a message saying so.
pub fn gather_shared_end(n_ranks: usize, len: usize) -> mp::Result<Vec<Vec<f64>>> {
    todo!(
        "(a) start ranks 1..{n_ranks} as processes that send (rank, rank_value(rank, {len})) \
         through clones of ONE Sender; receive them on rank 0 and return all in rank order"
    )
}

/// (b) The gather collective (MPI's `MPI_Gather` to root 0), for any [`Communicator`]: every
/// rank calls it with its own `value`.
///
/// A rank other than 0 sends its `value` to rank 0 (`send_slice` is the fast way for numbers)
/// and returns `Ok(None)`. Rank 0 receives from rank 1, then rank 2, ... (`recv_vec`) and
/// returns `Ok(Some(vectors))` with its own `value` first, in rank order. Each rank has its
/// own connection to rank 0, so no tags are needed.
pub fn gather<C: Communicator>(comm: &C, value: &[f64]) -> mp::Result<Option<Vec<Vec<f64>>>> {
    todo!(
        "(b) rank {} of {}: send these {} numbers to rank 0, or, on rank 0, receive every \
         other rank's vector in rank order",
        comm.rank(),
        comm.size(),
        value.len()
    )
}

/// (b) Launch `n_ranks` ranks wired as a star around rank 0
/// (`mp::Launch { n_ranks, topology: mp::Topology::Star { root: 0 } }`), each computing
/// [`rank_value`] for its rank and calling [`gather`]; return what rank 0 gathered.
///
/// The function each rank runs is yours to write: a `fn` taking `(mp::Comm, usize)` (the
/// communicator and `len`). It must return something that can travel back (an
/// `Option<Vec<Vec<f64>>>`, not an `mp::Result`): panic with a clear message if the gather
/// fails, and the launch reports it as that rank's failure. 0 ranks is an error from the
/// launch itself.
pub fn gather_star(n_ranks: usize, len: usize) -> mp::Result<Vec<Vec<f64>>> {
    todo!(
        "(b) launch {n_ranks} ranks in a star around rank 0, each gathering \
         rank_value(rank, {len}); return rank 0's result"
    )
}

/// (c) Gather through one [`mp::Queue<Tagged>`](mp::Queue).
///
/// Check `n_ranks` with [`check_n_ranks`]. Start ranks 1 to `n_ranks - 1` as processes, each
/// given a clone of the queue, its rank and `len`; each puts `(rank, rank_value(rank, len))`.
/// Join them (safe with mp's queue: it takes items in while you wait, so a failed process is
/// reported instead of a `get` that waits forever), then `get` `n_ranks - 1` items. Record
/// the order in which the ranks arrived, put each vector in its rank's place (with the same
/// checks as in (a)), and return both in a [`QueueGather`].
pub fn gather_queue(n_ranks: usize, len: usize) -> mp::Result<QueueGather> {
    todo!(
        "(c) start ranks 1..{n_ranks} as processes that put (rank, rank_value(rank, {len})) on \
         one Queue; get them, note the arrival order, and restore rank order"
    )
}
