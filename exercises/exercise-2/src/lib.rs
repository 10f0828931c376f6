//! Exercise 2: processes launched by hand. First a ring: every process gets the receiving end
//! of a pipe from the rank before it and the sending end of a pipe to the rank after it, and a
//! token goes once round. Then the lecture's overhead experiment: the same work without
//! processes, with `Pool(1)`, and with one `Process` that returns its result through a `Queue`,
//! with the phase marks t0..t3.

mod given;

pub use given::{Overhead, RingPlace, Token, Visit, get_while_alive, sum_list};

use mp::Queue;

/// The one-way connections a ring of `n_ranks` needs, as `(from, to)` rank pairs, one per
/// pipe: rank 0 to 1, 1 to 2, ..., and the last rank back to 0, in that order. A ring of one
/// rank is one pipe from rank 0 to itself. No ranks, no connections.
pub fn ring_links(n_ranks: usize) -> Vec<(usize, usize)> {
    todo!("list the (from, to) pairs of a ring of {n_ranks} ranks: r to r + 1, the last to 0")
}

/// What each process of the ring runs.
///
/// Rank 0 starts: it sends a token holding its own [`Visit`] to the next rank, then waits for
/// the token to come back and returns it. Every other rank waits for the token from the
/// previous rank, appends its own visit, sends it on to the next rank and returns it as it
/// sent it. A visit records the rank and `std::process::id()`. This runs in another process:
/// if a send or receive fails, panic with a message that says which rank failed and why
/// (`expect`); the parent's `join` turns that into an error.
pub fn ring_rank(place: RingPlace) -> Token {
    todo!(
        "as rank {} of {}: receive the token from_previous (rank 0: start it), add your Visit, \
         send it to_next",
        place.rank,
        place.n_ranks
    )
}

/// Starts a ring of `n_ranks` processes by hand and sends a token once round it; returns the
/// token as it came back to rank 0.
///
/// Create one [`mp::pipe_simplex`] per link of [`ring_links`]; start one [`mp::Process`] per
/// rank running [`ring_rank`], whose [`RingPlace`] holds the receiving end of the pipe into
/// that rank and the sending end of the pipe out of it; join every process; return rank 0's
/// result. Start all ranks before joining any: each one waits for the one before it.
/// `n_ranks` 0 is an [`mp::Error::InvalidArgument`].
pub fn ring_by_hand(n_ranks: usize) -> mp::Result<Token> {
    todo!("make the pipes of ring_links({n_ranks}), start one Process per rank, join them all")
}

/// The work without any process: `[sum(l) for l in lists]`, with the lecture's marks.
///
/// Take the marks in this order, with [`Phases::start`](mp::timing::Phases::start) for t0 and [`Phases::mark`](mp::timing::Phases::mark) for the
/// others, in every way of doing the work:
/// t0 before anything starts; t1 once the processes are started (here there are none: mark
/// it at once); t2 once the results are here; t3 once the processes are joined (again at once
/// here).
pub fn without_processes(lists: Vec<Vec<u64>>) -> Overhead {
    todo!("mark t0 and t1, sum each of the {} lists, mark t2 and t3", lists.len())
}

/// The same work with `Pool(1)`: t0, start the pool, t1, `pool.map(sum_list, lists)`, t2,
/// close the pool and wait for its worker to end (drop it), t3.
pub fn with_pool_of_one(lists: Vec<Vec<u64>>) -> mp::Result<Overhead> {
    todo!("time Pool(1), its map of sum_list over {} lists, and dropping it", lists.len())
}

/// What the process of [`with_process_and_queue`] runs: puts the sums of its lists (all in one
/// `Vec`) on the queue. It returns nothing: as in Python, the result goes back through the
/// queue.
pub fn sums_into_queue((lists, queue): (Vec<Vec<u64>>, Queue<Vec<u64>>)) {
    todo!("put the sums of the {} lists, as one Vec, on the {queue:?}", lists.len())
}

/// The same work with one `Process` that returns its result through a `Queue`: t0, make the
/// queue and start the process running [`sums_into_queue`], t1, get the sums from the queue,
/// t2, join the process, t3.
///
/// Get with the given [`get_while_alive`] rather than `queue.get()`: if the process fails
/// before it puts the sums, `get` would wait forever, as Python's does.
pub fn with_process_and_queue(lists: Vec<Vec<u64>>) -> mp::Result<Overhead> {
    todo!("time one Process summing {} lists into a Queue: start, get, join", lists.len())
}
