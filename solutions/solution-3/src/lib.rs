//! Reference solution of exercise 3: gather a value from every rank on rank 0, three ways.

#[path = "../../../exercises/exercise-3/src/given.rs"]
mod given;
pub use given::*;

use mp::{Comm, Communicator, Launch, Process, Queue, Sender, Topology};

/// (a) Ranks 1 to `n_ranks - 1` are processes that all send through ONE sending end (clones
/// of one `Sender`); the calling process is rank 0 and returns every rank's vector in rank
/// order. With large messages the writers' bytes interleave in the pipe, and then this
/// returns the error mp reports (`Error::Corrupted`), never mixed-up data.
pub fn gather_shared_end(n_ranks: usize, len: usize) -> mp::Result<Vec<Vec<f64>>> {
    check_n_ranks(n_ranks)?;
    let (shared_end, receiver) = mp::pipe_simplex::<Tagged>()?;
    // Start every writer before reading anything: the first fills the pipe, the others wait
    // to write, and once rank 0 reads they all push their bytes into the same stream.
    let mut writers = Vec::with_capacity(n_ranks - 1);
    for rank in 1..n_ranks {
        writers.push(Process::spawn(send_tagged, (shared_end.clone(), rank, len))?);
    }
    // Our copy must go, or the receiver would wait for it forever if a writer died.
    drop(shared_end);

    let mut slots = Slots::new(n_ranks, len);
    slots.fill(0, rank_value(0, len))?;
    for _ in 1..n_ranks {
        // An interleaved stream makes one of these fail (damaged header or body): the `?`
        // passes that error on. A message that decoded but names an impossible rank or has
        // the wrong length is refused by `fill`.
        let (rank, values) = receiver.recv()?;
        slots.fill(rank, values)?;
    }
    for writer in &mut writers {
        writer.join()?;
    }
    slots.into_rank_order()
}

/// What a writer process of (a) runs: compute, then send through the shared end.
/// A failed send panics: `join` reports the panic and its message.
fn send_tagged((shared_end, rank, len): (Sender<Tagged>, usize, usize)) {
    let sent = shared_end.send(&(rank, rank_value(rank, len)));
    sent.unwrap_or_else(|error| panic!("rank {rank} could not send: {error}"));
}

/// (b) The collective itself, written against [`Communicator`] so it runs on MPI later:
/// every rank passes its `value`; rank 0 gets `Some(values in rank order)`, the others
/// `None`. Each rank has its own connection to rank 0, so rank 0 receives from rank 1, then
/// rank 2, ...: the order comes from the connections, no tags needed.
pub fn gather<C: Communicator>(comm: &C, value: &[f64]) -> mp::Result<Option<Vec<Vec<f64>>>> {
    if comm.rank() != 0 {
        comm.send_slice(0, value)?;
        return Ok(None);
    }
    let mut values = Vec::with_capacity(comm.size());
    values.push(value.to_vec());
    for source in 1..comm.size() {
        values.push(comm.recv_vec(source)?);
    }
    Ok(Some(values))
}

/// (b) Launches `n_ranks` ranks wired as a star around rank 0 (one connection per rank, the
/// `n_ranks - 1` connections a gather needs), each computing `rank_value(rank, len)` and
/// calling [`gather`]; returns what rank 0 gathered.
pub fn gather_star(n_ranks: usize, len: usize) -> mp::Result<Vec<Vec<f64>>> {
    let star = Launch { n_ranks, topology: Topology::Star { root: 0 } };
    let mut results = star.run(star_rank, len)?;
    // launch refused 0 ranks above, so there is a rank 0, and it returned Some.
    Ok(results.swap_remove(0).unwrap_or_default())
}

/// What each rank of (b) runs. A failed gather panics: launch reports it as that rank's
/// failure (with the message) and stops the others.
fn star_rank(comm: Comm, len: usize) -> Option<Vec<Vec<f64>>> {
    let value = rank_value(comm.rank(), len);
    gather(&comm, &value).unwrap_or_else(|error| panic!("rank {}: {error}", comm.rank()))
}

/// (c) Ranks 1 to `n_ranks - 1` are processes that put `(rank, vector)` on one [`Queue`];
/// the calling process is rank 0. Items arrive in whatever order the processes finish; the
/// rank tag puts each vector back in its place.
pub fn gather_queue(n_ranks: usize, len: usize) -> mp::Result<QueueGather> {
    check_n_ranks(n_ranks)?;
    let queue = Queue::<Tagged>::new()?;
    let mut producers = Vec::with_capacity(n_ranks - 1);
    for rank in 1..n_ranks {
        producers.push(Process::spawn(put_tagged, (queue.clone(), rank, len))?);
    }
    // Joining first is safe with mp's queue (a thread of this process takes the items in as
    // they come; Python's Queue can deadlock here), and it means a producer that failed is
    // reported instead of a `get` that waits forever for its item.
    for producer in &mut producers {
        producer.join()?;
    }

    let mut slots = Slots::new(n_ranks, len);
    slots.fill(0, rank_value(0, len))?;
    let mut arrival = Vec::with_capacity(n_ranks - 1);
    for _ in 1..n_ranks {
        let (rank, values) = queue.get()?;
        arrival.push(rank);
        slots.fill(rank, values)?;
    }
    Ok(QueueGather { values: slots.into_rank_order()?, arrival })
}

/// What a producer process of (c) runs: compute, then put the tagged vector on the queue.
fn put_tagged((queue, rank, len): (Queue<Tagged>, usize, usize)) {
    let put = queue.put(&(rank, rank_value(rank, len)));
    put.unwrap_or_else(|error| panic!("rank {rank} could not put its item: {error}"));
}

/// One slot per rank, filled in any order; every rank exactly once, with the right length.
struct Slots {
    slots: Vec<Option<Vec<f64>>>,
    len: usize,
}

impl Slots {
    fn new(n_ranks: usize, len: usize) -> Slots {
        Slots { slots: vec![None; n_ranks], len }
    }

    fn fill(&mut self, rank: usize, values: Vec<f64>) -> mp::Result<()> {
        let problem = match self.slots.get(rank) {
            None => Some(format!("rank {rank} does not exist (there are {})", self.slots.len())),
            Some(Some(_)) => Some(format!("rank {rank} arrived twice")),
            Some(None) if values.len() != self.len => {
                Some(format!("rank {rank} sent {} numbers, not {}", values.len(), self.len))
            }
            Some(None) => None,
        };
        if let Some(problem) = problem {
            return Err(mp::Error::Corrupted { message: problem });
        }
        self.slots[rank] = Some(values);
        Ok(())
    }

    fn into_rank_order(self) -> mp::Result<Vec<Vec<f64>>> {
        let n_ranks = self.slots.len();
        self.slots
            .into_iter()
            .enumerate()
            .map(|(rank, slot)| {
                slot.ok_or_else(|| mp::Error::Corrupted {
                    message: format!("rank {rank} of {n_ranks} never arrived"),
                })
            })
            .collect()
    }
}
