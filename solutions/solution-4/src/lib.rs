//! Reference solution of exercise 4: broadcast, reduce and allreduce over a `Communicator`.
//!
//! Every function is called by every rank of the group with its own `value`; the root is
//! always rank 0. Only `send` and `recv` are used, so the same code runs on MPI later.

#[path = "../../../exercises/exercise-4/src/given.rs"]
mod given;
pub use given::*;

use mp::Communicator;

/// Linear broadcast: rank 0 sends its value to rank 1, then rank 2, ... (`P - 1` steps, all
/// on rank 0's sending side).
pub fn broadcast_linear<C: Communicator, T: Value>(comm: &C, value: T) -> mp::Result<T> {
    if comm.rank() == 0 {
        for dest in 1..comm.size() {
            comm.send(dest, &value)?;
        }
        return Ok(value);
    }
    comm.recv(0)
}

/// Chain broadcast: rank 0 sends to rank 1, which passes it to rank 2, ... (`P - 1` steps,
/// but each rank sends only once: good for long messages cut into pieces, bad for latency).
pub fn broadcast_chain<C: Communicator, T: Value>(comm: &C, value: T) -> mp::Result<T> {
    let rank = comm.rank();
    let value = if rank == 0 { value } else { comm.recv(rank - 1)? };
    if rank + 1 < comm.size() {
        comm.send(rank + 1, &value)?;
    }
    Ok(value)
}

/// Binomial-tree broadcast: in round `k` (distance `d = 2^k`) every rank below `d` already has
/// the value and sends it to `rank + d`. The number of ranks with the value doubles each
/// round: `ceil(log2 P)` rounds.
pub fn broadcast_tree<C: Communicator, T: Value>(comm: &C, value: T) -> mp::Result<T> {
    let (rank, size) = (comm.rank(), comm.size());
    let mut value = value;
    let mut distance = 1;
    while distance < size {
        if rank < distance {
            if rank + distance < size {
                comm.send(rank + distance, &value)?;
            }
        } else if rank < 2 * distance {
            // This round's receivers: ranks distance..2*distance, each from rank - distance.
            value = comm.recv(rank - distance)?;
        }
        distance *= 2;
    }
    Ok(value)
}

/// Linear reduce: rank 0 receives from rank 1, 2, ... and adds in rank order:
/// `((v0 + v1) + v2) + ...`. `P - 1` steps, all on rank 0's receiving side.
pub fn reduce_linear<C: Communicator, T: Value>(comm: &C, value: T) -> mp::Result<Option<T>> {
    if comm.rank() != 0 {
        comm.send(0, &value)?;
        return Ok(None);
    }
    let mut sum = value;
    for source in 1..comm.size() {
        sum = sum + comm.recv(source)?;
    }
    Ok(Some(sum))
}

/// Binary-tree reduce: in round `k` (distance `d = 2^k`), a rank whose bit `k` is set sends
/// its partial sum to `rank - d` and is done; the receiver adds it (its own partial sum on
/// the left, the higher ranks' on the right). `ceil(log2 P)` rounds; the sum ends on rank 0.
pub fn reduce_tree<C: Communicator, T: Value>(comm: &C, value: T) -> mp::Result<Option<T>> {
    let (rank, size) = (comm.rank(), comm.size());
    let mut partial = value;
    let mut distance = 1;
    while distance < size {
        if rank & distance != 0 {
            comm.send(rank - distance, &partial)?;
            return Ok(None);
        }
        if rank + distance < size {
            partial = partial + comm.recv(rank + distance)?;
        }
        distance *= 2;
    }
    Ok(Some(partial))
}

/// Recursive-doubling ("butterfly") allreduce: in round `k` each rank exchanges its partial sum
/// with `rank XOR 2^k` and both add, so after `log2 P` rounds everyone has the total.
///
/// For `P` not a power of two, with `p` the largest power of two below `P`: ranks `p..P` first
/// hand their value to `rank - p` and wait; ranks `0..p` run the butterfly; then each sends
/// the total back to its helper. That costs two extra steps.
pub fn allreduce_butterfly<C: Communicator, T: Value>(comm: &C, value: T) -> mp::Result<T> {
    let (rank, size) = (comm.rank(), comm.size());
    let p = 1 << size.ilog2(); // the largest power of two <= size
    if rank >= p {
        comm.send(rank - p, &value)?;
        return comm.recv(rank - p);
    }
    let mut partial = value;
    if rank + p < size {
        partial = partial + comm.recv(rank + p)?;
    }
    let mut distance = 1;
    while distance < p {
        let partner = rank ^ distance;
        // mp's send never waits for the receiver, so both partners may send first. (On MPI,
        // use a combined send-receive for this exchange.)
        comm.send(partner, &partial)?;
        let theirs: T = comm.recv(partner)?;
        // Both partners add the lower ranks' part first: the same operands in the same order
        // on both sides, so every rank ends with the same bits.
        partial = if partner > rank { partial + theirs } else { theirs + partial };
        distance *= 2;
    }
    if rank + p < size {
        comm.send(rank + p, &partial)?;
    }
    Ok(partial)
}
