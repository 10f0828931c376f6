//! Given code for exercise 4 (you do not need to change it): the values each rank holds, a
//! communicator that counts steps and messages, and the launch that runs one algorithm.

use std::{cell::Cell, fmt, ops::Add};

use mp::{Comm, Communicator};
use serde::{Deserialize, Serialize, de::DeserializeOwned};

/// What the collectives move and add up: integers (`u64`, exact) and floats (`f64`, rounded).
pub trait Value: Copy + Add<Output = Self> + Serialize + DeserializeOwned + fmt::Debug {}

impl<T: Copy + Add<Output = T> + Serialize + DeserializeOwned + fmt::Debug> Value for T {}

/// Rank `rank`'s integer: `rank + 1`, so the sum over `n` ranks is `n (n + 1) / 2`.
///
/// ```
/// assert_eq!(reduction::int_value(0), 1);
/// ```
pub fn int_value(rank: usize) -> u64 {
    rank as u64 + 1
}

/// Rank `rank`'s float: `1e16` on rank 0 (a big running total), `1 + rank / 8` elsewhere
/// (small corrections). Near `1e16` neighbouring f64 are 2 apart, so how the small ones are
/// grouped before they meet the big one changes the rounded sum.
///
/// ```
/// assert_eq!(reduction::float_value(0), 1e16);
/// assert_eq!(reduction::float_value(4), 1.5);
/// ```
pub fn float_value(rank: usize) -> f64 {
    if rank == 0 { 1e16 } else { 1.0 + rank as f64 / 8.0 }
}

/// The exact sum of `float_value(0..n_ranks)`, rounded once to the nearest f64. Every
/// `float_value` is a whole number of eighths, so the sum is exact in integer eighths.
///
/// ```
/// assert_eq!(reduction::exact_float_sum(2), 1e16 + 2.0); // 1e16 + 1.125, rounded once
/// ```
pub fn exact_float_sum(n_ranks: usize) -> f64 {
    let eighths: i128 = (0..n_ranks).map(|rank| (float_value(rank) * 8.0) as i128).sum();
    // i128 -> f64 rounds to nearest; dividing by 8 is exact.
    eighths as f64 / 8.0
}

/// The algorithms of the exercise, each run by every rank.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum Algorithm {
    /// [`crate::broadcast_linear`]: rank 0 sends to each rank in turn.
    LinearBcast,
    /// [`crate::broadcast_chain`]: rank 0 to 1, 1 to 2, ...
    ChainBcast,
    /// [`crate::broadcast_tree`]: binomial tree, the number of ranks that have it doubles.
    TreeBcast,
    /// [`crate::reduce_linear`]: rank 0 receives from each rank in turn.
    LinearReduce,
    /// [`crate::reduce_tree`]: pairs, then pairs of pairs, ... onto rank 0.
    TreeReduce,
    /// [`crate::reduce_tree`] then [`crate::broadcast_tree`]: an allreduce from the two.
    TreeAllreduce,
    /// [`crate::allreduce_butterfly`]: recursive doubling, everyone ends with the sum.
    ButterflyAllreduce,
}

impl Algorithm {
    /// Every algorithm, in the order the program shows them.
    pub const ALL: [Algorithm; 7] = [
        Algorithm::LinearBcast,
        Algorithm::ChainBcast,
        Algorithm::TreeBcast,
        Algorithm::LinearReduce,
        Algorithm::TreeReduce,
        Algorithm::TreeAllreduce,
        Algorithm::ButterflyAllreduce,
    ];

    /// The name used on the command line.
    ///
    /// ```
    /// assert_eq!(reduction::Algorithm::TreeBcast.name(), "tree-bcast");
    /// ```
    pub fn name(self) -> &'static str {
        match self {
            Algorithm::LinearBcast => "linear-bcast",
            Algorithm::ChainBcast => "chain-bcast",
            Algorithm::TreeBcast => "tree-bcast",
            Algorithm::LinearReduce => "linear-reduce",
            Algorithm::TreeReduce => "tree-reduce",
            Algorithm::TreeAllreduce => "tree-allreduce",
            Algorithm::ButterflyAllreduce => "butterfly-allreduce",
        }
    }

    /// True for the broadcasts (which deliver rank 0's value rather than a sum).
    pub fn is_broadcast(self) -> bool {
        matches!(self, Algorithm::LinearBcast | Algorithm::ChainBcast | Algorithm::TreeBcast)
    }

    /// True when every rank ends with the result (broadcasts and allreduces); the reduces
    /// leave it on rank 0 only.
    pub fn everyone_gets_it(self) -> bool {
        !matches!(self, Algorithm::LinearReduce | Algorithm::TreeReduce)
    }
}

/// What one rank did during one collective.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Tally {
    /// The step in which this rank finished its last send or receive (0: it did nothing).
    pub steps: u64,
    /// Messages this rank sent.
    pub sent: u64,
    /// Messages this rank received.
    pub received: u64,
}

/// A [`Communicator`] that counts, around any other: each message carries the step in which
/// it was sent, so every rank knows in which step it finished.
///
/// The model: in one step a rank can send one message and receive one message (at the same
/// time). A message sent in step `s` is received in step `s` at the earliest; a rank sends
/// in the step after the last message it received (it may need that message's data). So the
/// steps count the longest chain of messages that had to happen one after another: what
/// latency costs.
#[derive(Debug)]
pub struct Counting<'a, C> {
    comm: &'a C,
    last_send: Cell<u64>,
    last_receive: Cell<u64>,
    sent: Cell<u64>,
    received: Cell<u64>,
}

impl<'a, C: Communicator> Counting<'a, C> {
    /// Starts counting at step 0 with no messages.
    pub fn new(comm: &'a C) -> Counting<'a, C> {
        Counting {
            comm,
            last_send: Cell::new(0),
            last_receive: Cell::new(0),
            sent: Cell::new(0),
            received: Cell::new(0),
        }
    }

    /// What this rank did so far.
    pub fn tally(&self) -> Tally {
        Tally {
            steps: self.last_send.get().max(self.last_receive.get()),
            sent: self.sent.get(),
            received: self.received.get(),
        }
    }

    fn next_send_step(&self) -> u64 {
        let step = (self.last_send.get() + 1).max(self.last_receive.get() + 1);
        self.last_send.set(step);
        self.sent.set(self.sent.get() + 1);
        step
    }

    fn receive_step(&self, sent_in: u64) {
        self.last_receive.set((self.last_receive.get() + 1).max(sent_in));
        self.received.set(self.received.get() + 1);
    }
}

impl<C: Communicator> Communicator for Counting<'_, C> {
    fn rank(&self) -> usize {
        self.comm.rank()
    }

    fn size(&self) -> usize {
        self.comm.size()
    }

    fn send<T: Serialize>(&self, dest: usize, value: &T) -> mp::Result<()> {
        let step = self.next_send_step();
        self.comm.send(dest, &(step, value))
    }

    fn recv<T: DeserializeOwned>(&self, source: usize) -> mp::Result<T> {
        let (step, value): (u64, T) = self.comm.recv(source)?;
        self.receive_step(step);
        Ok(value)
    }

    fn send_bytes(&self, dest: usize, bytes: &[u8]) -> mp::Result<()> {
        let step = self.next_send_step();
        self.comm.send_bytes(dest, &[&step.to_le_bytes()[..], bytes].concat())
    }

    fn recv_bytes(&self, source: usize) -> mp::Result<Vec<u8>> {
        let mut bytes = self.comm.recv_bytes(source)?;
        if bytes.len() < 8 {
            return Err(mp::Error::Corrupted {
                message: "a message without its step number (sent around the Counting wrapper?)"
                    .into(),
            });
        }
        let step = u64::from_le_bytes(bytes[..8].try_into().unwrap_or_default());
        self.receive_step(step);
        bytes.drain(..8);
        Ok(bytes)
    }
}

/// What one rank ended with after one algorithm: the integer and float results (`None` on the
/// ranks a reduce leaves without the result), and its tally for each.
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
pub struct RankReport {
    /// The integer result on this rank.
    pub int: Option<u64>,
    /// The float result on this rank.
    pub float: Option<f64>,
    /// Steps and messages of the integer collective.
    pub int_tally: Tally,
    /// Steps and messages of the float collective.
    pub float_tally: Tally,
}

/// Runs `algorithm` on every rank of `comm` with the value `mine`, counting.
fn run_one<C: Communicator, T: Value>(
    comm: &C,
    algorithm: Algorithm,
    mine: T,
) -> mp::Result<(Option<T>, Tally)> {
    let counting = Counting::new(comm);
    let comm = &counting;
    let result = match algorithm {
        Algorithm::LinearBcast => Some(crate::broadcast_linear(comm, mine)?),
        Algorithm::ChainBcast => Some(crate::broadcast_chain(comm, mine)?),
        Algorithm::TreeBcast => Some(crate::broadcast_tree(comm, mine)?),
        Algorithm::LinearReduce => crate::reduce_linear(comm, mine)?,
        Algorithm::TreeReduce => crate::reduce_tree(comm, mine)?,
        Algorithm::TreeAllreduce => {
            // Off rank 0 the value passed to the broadcast is not used: it is overwritten.
            let sum = crate::reduce_tree(comm, mine)?.unwrap_or(mine);
            Some(crate::broadcast_tree(comm, sum)?)
        }
        Algorithm::ButterflyAllreduce => Some(crate::allreduce_butterfly(comm, mine)?),
    };
    Ok((result, counting.tally()))
}

/// What every rank runs: the algorithm on its integer, then on its float.
fn rank_task(comm: Comm, algorithm: Algorithm) -> RankReport {
    let rank = comm.rank();
    let fail =
        |error: mp::Error| -> ! { panic!("rank {rank} failed in {}: {error}", algorithm.name()) };
    let (int, int_tally) =
        run_one(&comm, algorithm, int_value(rank)).unwrap_or_else(|error| fail(error));
    let (float, float_tally) =
        run_one(&comm, algorithm, float_value(rank)).unwrap_or_else(|error| fail(error));
    RankReport { int, float, int_tally, float_tally }
}

/// Launches `n_ranks` ranks, all connected ([`mp::launch`]), runs `algorithm` on each rank's
/// [`int_value`] and then its [`float_value`], and returns every rank's report in rank order.
///
/// 0 ranks is an [`mp::Error::InvalidArgument`]; a rank that fails stops the others, and the
/// error says which rank and why.
pub fn run_collective(n_ranks: usize, algorithm: Algorithm) -> mp::Result<Vec<RankReport>> {
    mp::launch(n_ranks, rank_task, algorithm)
}
