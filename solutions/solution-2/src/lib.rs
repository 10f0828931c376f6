//! Exercise 2, solved: a ring of processes launched by hand, and the lecture's overhead
//! experiment (no processes, `Pool(1)`, one `Process` with a `Queue`) with marks t0..t3.

#[path = "../../../exercises/exercise-2/src/given.rs"]
mod given;

pub use given::{Overhead, RingPlace, Token, Visit, get_while_alive, sum_list};

use mp::{Pool, Process, Queue, Receiver, Sender, timing::Phases};

/// The one-way connections of a ring: rank r to r + 1, and the last back to 0.
pub fn ring_links(n_ranks: usize) -> Vec<(usize, usize)> {
    // n_ranks pipes: each rank needs one way in and one way out. With one rank, (0, 0).
    (0..n_ranks).map(|rank| (rank, (rank + 1) % n_ranks)).collect()
}

/// What each process of the ring runs.
pub fn ring_rank(place: RingPlace) -> Token {
    let me = Visit { rank: place.rank, pid: std::process::id() };
    let RingPlace { rank, from_previous, to_next, .. } = place;
    if rank == 0 {
        // Rank 0 starts the token, then waits for it to come all the way round.
        to_next.send(&vec![me]).expect("rank 0 could not send the token to rank 1");
        return from_previous.recv().expect("rank 0 never got the token back");
    }
    let mut token = from_previous
        .recv()
        .unwrap_or_else(|error| panic!("rank {rank} got no token from rank {}: {error}", rank - 1));
    token.push(me);
    to_next
        .send(&token)
        .unwrap_or_else(|error| panic!("rank {rank} could not pass the token on: {error}"));
    token
}

/// Starts a ring of `n_ranks` processes by hand and sends a token once round it.
pub fn ring_by_hand(n_ranks: usize) -> mp::Result<Token> {
    if n_ranks == 0 {
        return Err(mp::Error::InvalidArgument {
            message: "a ring needs at least 1 rank, not 0".into(),
        });
    }
    // One pipe per link; each rank gets the sending end of its outgoing pipe and the receiving
    // end of its incoming one.
    let mut outgoing: Vec<Option<Sender<Token>>> = (0..n_ranks).map(|_| None).collect();
    let mut incoming: Vec<Option<Receiver<Token>>> = (0..n_ranks).map(|_| None).collect();
    for (from, to) in ring_links(n_ranks) {
        let (sender, receiver) = mp::pipe_simplex()?;
        outgoing[from] = Some(sender);
        incoming[to] = Some(receiver);
    }

    // Start every rank before joining any: rank 0 waits for the last rank, which waits for the
    // one before it, ... The endpoints move into the argument, so this process keeps no copy
    // and a rank that dies shows up as a closed pipe at its neighbour, not a hang.
    let mut ranks = Vec::with_capacity(n_ranks);
    for (rank, (to_next, from_previous)) in outgoing.into_iter().zip(incoming).enumerate() {
        let (Some(to_next), Some(from_previous)) = (to_next, from_previous) else {
            unreachable!("ring_links gives every rank one link in and one out");
        };
        let place = RingPlace { rank, n_ranks, from_previous, to_next };
        ranks.push(Process::spawn(ring_rank, place)?);
    }

    let mut tokens = Vec::with_capacity(n_ranks);
    for process in &mut ranks {
        tokens.push(process.join()?);
    }
    Ok(tokens.swap_remove(0))
}

/// The work without any process.
pub fn without_processes(lists: Vec<Vec<u64>>) -> Overhead {
    let mut phases = Phases::start(); // t0
    phases.mark("t1"); // nothing to start
    let sums = lists.into_iter().map(sum_list).collect();
    phases.mark("t2");
    phases.mark("t3"); // nothing to join
    Overhead { sums, phases }
}

/// The same work with `Pool(1)`.
pub fn with_pool_of_one(lists: Vec<Vec<u64>>) -> mp::Result<Overhead> {
    let mut phases = Phases::start();
    let pool = Pool::new(1)?;
    phases.mark("t1");
    // The lists are copied to the worker and the sums copied back: on top of the start-up,
    // that is the cost of a process for work this cheap.
    let sums = pool.map(sum_list, lists)?;
    phases.mark("t2");
    drop(pool); // Python's close() and join(): the worker ends and is reaped.
    phases.mark("t3");
    Ok(Overhead { sums, phases })
}

/// What the process of [`with_process_and_queue`] runs.
pub fn sums_into_queue((lists, queue): (Vec<Vec<u64>>, Queue<Vec<u64>>)) {
    let sums: Vec<u64> = lists.into_iter().map(sum_list).collect();
    queue.put(&sums).expect("could not put the sums on the queue");
}

/// The same work with one `Process` returning its result through a `Queue`.
pub fn with_process_and_queue(lists: Vec<Vec<u64>>) -> mp::Result<Overhead> {
    let mut phases = Phases::start();
    let queue = Queue::new()?;
    // The lists travel in the argument, so here they are copied before t1, while starting.
    let mut process = Process::spawn(sums_into_queue, (lists, queue.clone()))?;
    phases.mark("t1");
    // queue.get(), but an error instead of a hang if the process dies before it puts.
    let sums = get_while_alive(&queue, &mut process)?;
    phases.mark("t2");
    process.join()?;
    phases.mark("t3");
    Ok(Overhead { sums, phases })
}
