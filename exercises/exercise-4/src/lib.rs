//! Exercise 4: broadcast, reduce and allreduce, by hand, over any [`Communicator`].
//!
//! Every function below is called by EVERY rank of the group, each with its own `value`
//! (like MPI's collectives); the root is always rank 0. Use only `comm.rank()`,
//! `comm.size()`, `comm.send(dest, &value)` and `comm.recv::<T>(source)`: the same code will
//! run across machines on MPI later. `T` is `u64` or `f64` (see [`Value`]).
//!
//! The program counts the steps and messages of your code for you ([`Counting`]): in one
//! step a rank can send one message and receive one. Linear algorithms take `P - 1` steps,
//! trees `ceil(log2 P)`.
//!
//! `given.rs` has what you use but do not write: [`Value`], [`int_value`], [`float_value`],
//! [`exact_float_sum`], [`Counting`], [`run_collective`].

mod given;
pub use given::*;

use mp::Communicator;

/// Linear broadcast: rank 0 sends its `value` to rank 1, then to rank 2, ... Every rank
/// returns rank 0's value (the `value` passed on other ranks is not used).
pub fn broadcast_linear<C: Communicator, T: Value>(comm: &C, value: T) -> mp::Result<T> {
    todo!(
        "rank {} of {}: on rank 0 send {value:?} to every other rank; elsewhere receive from rank 0",
        comm.rank(),
        comm.size()
    )
}

/// Chain broadcast: rank 0 sends to rank 1, rank 1 passes it on to rank 2, and so on to the
/// last rank. Every rank returns rank 0's value.
pub fn broadcast_chain<C: Communicator, T: Value>(comm: &C, value: T) -> mp::Result<T> {
    todo!(
        "rank {} of {}: receive from rank - 1 (rank 0 starts with {value:?}), then send to \
         rank + 1 if there is one",
        comm.rank(),
        comm.size()
    )
}

/// Binomial-tree broadcast in `ceil(log2 P)` rounds. In round `k` (distance `d = 2^k`:
/// 1, 2, 4, ...) the ranks below `d` already have the value: each sends it to `rank + d`
/// (if that rank exists), and the ranks `d..2d` receive it from `rank - d`. Every rank returns
/// rank 0's value; with `P = 1` nothing is sent.
pub fn broadcast_tree<C: Communicator, T: Value>(comm: &C, value: T) -> mp::Result<T> {
    todo!(
        "rank {} of {}: in rounds d = 1, 2, 4, ... < size, send {value:?} to rank + d if \
         rank < d, or receive from rank - d if d <= rank < 2d",
        comm.rank(),
        comm.size()
    )
}

/// Linear reduce: every rank sends its `value` to rank 0, which adds them in rank order,
/// `((v0 + v1) + v2) + ...`, and returns `Some(sum)`. The other ranks return `None`.
pub fn reduce_linear<C: Communicator, T: Value>(comm: &C, value: T) -> mp::Result<Option<T>> {
    todo!(
        "rank {} of {}: send {value:?} to rank 0, or, on rank 0, receive from ranks 1, 2, ... \
         and add in rank order",
        comm.rank(),
        comm.size()
    )
}

/// Binary-tree reduce in `ceil(log2 P)` rounds. Keep a partial sum, starting with `value`. In
/// round `k` (distance `d = 2^k`), a rank whose bit `k` is set (`rank & d != 0`) sends its
/// partial sum to `rank - d` and returns `None`; a rank that stays receives from `rank + d`
/// (if that rank exists) and adds it: `partial + received`. Rank 0 returns `Some(sum)`.
pub fn reduce_tree<C: Communicator, T: Value>(comm: &C, value: T) -> mp::Result<Option<T>> {
    todo!(
        "rank {} of {}: in rounds d = 1, 2, 4, ... < size, send the partial sum (starting at \
         {value:?}) to rank - d if rank & d != 0, else add what rank + d sends",
        comm.rank(),
        comm.size()
    )
}

/// Recursive-doubling ("butterfly") allreduce: every rank returns the sum of all values.
///
/// For `P` a power of two: in round `k` (distance `d = 2^k`) exchange the partial sum with
/// `rank ^ d` (XOR) and add: after `log2 P` rounds every rank has the total. Send first, then
/// receive: `mp`'s send never waits for the receiver, so two partners that both send first do
/// not block each other. Add the lower rank's part first (`low + high`) on both sides, so
/// every rank ends with the same bits.
///
/// For other `P`, let `p` be the largest power of two not above `P` (`1 << P.ilog2()`). Ranks
/// `p..P` send their value to `rank - p` and then receive the total from it; ranks `0..p` add
/// their helper's value first (if they have one), run the butterfly among themselves, and
/// finally send the total to `rank + p` (if it exists).
pub fn allreduce_butterfly<C: Communicator, T: Value>(comm: &C, value: T) -> mp::Result<T> {
    todo!(
        "rank {} of {}: exchange the partial sum (starting at {value:?}) with rank ^ d for \
         d = 1, 2, 4, ... and add; fold ranks beyond the largest power of two in and out",
        comm.rank(),
        comm.size()
    )
}
