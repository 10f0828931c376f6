//! Given code for exercise 4 (you do not need to change it): the values each rank holds, a
//! communicator that counts steps and messages, the launch that runs one algorithm (on MPI's
//! ranks under `mpirun`), and under `mpirun` MPI's own collectives timed beside yours.

use std::{
    cell::Cell,
    fmt,
    ops::Add,
    time::{Duration, Instant},
};

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
    let result = call(&counting, algorithm, mine)?;
    Ok((result, counting.tally()))
}

/// Calls your function(s) of `algorithm` on this rank of `comm` with the value `mine`.
fn call<C: Communicator, T: Value>(
    comm: &C,
    algorithm: Algorithm,
    mine: T,
) -> mp::Result<Option<T>> {
    Ok(match algorithm {
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
    })
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
///
/// Under `mpirun` (built with `--features mpi`) nothing is launched: this process is one rank
/// of MPI's world, which must have `n_ranks` ranks. It runs the same `rank_task` on the world
/// (every rank calls `run_collective` with the same arguments, as with an MPI collective),
/// then the reports of all ranks are gathered on rank 0 and sent back to every rank, so every
/// rank returns the same reports, as a local run does. A rank that fails ends the whole job.
pub fn run_collective(n_ranks: usize, algorithm: Algorithm) -> mp::Result<Vec<RankReport>> {
    let Some(world) = course::mpi_world() else {
        return mp::launch(n_ranks, rank_task, algorithm);
    };
    if world.size() != n_ranks {
        return Err(mp::Error::InvalidArgument {
            message: format!(
                "run_collective was asked for {n_ranks} ranks, but the MPI job has {}: under \
                 mpirun the ranks are mpirun's -n",
                world.size()
            ),
        });
    }
    let mine = rank_task(world, algorithm);
    // Done on this rank, every message of the algorithm received: now the reports.
    let world = course::mpi_world().ok_or_else(|| mp::Error::InvalidArgument {
        message: "the MPI session ended during run_collective".into(),
    })?;
    all_to_every_rank(&world, mine)
}

/// Every rank's `mine`, in rank order, on every rank: gathered on rank 0, then sent from there
/// to each rank (plain `send` and `recv` on the world, as a gather and a broadcast).
fn all_to_every_rank<T: Serialize + DeserializeOwned>(world: &Comm, mine: T) -> mp::Result<Vec<T>> {
    let (rank, size) = (world.rank(), world.size());
    if rank != 0 {
        world.send(0, &mine)?;
        return world.recv(0);
    }
    let mut all = Vec::with_capacity(size);
    all.push(mine);
    for source in 1..size {
        all.push(world.recv(source)?);
    }
    for dest in 1..size {
        world.send(dest, &all)?;
    }
    Ok(all)
}

/// One of MPI's own collectives, which your algorithms are compared with under `mpirun`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum MpiCollective {
    /// `MPI_Bcast` from rank 0.
    Bcast,
    /// `MPI_Reduce` with `MPI_SUM` onto rank 0.
    Reduce,
    /// `MPI_Allreduce` with `MPI_SUM`.
    Allreduce,
}

impl MpiCollective {
    /// All three, in the order the program shows them.
    pub const ALL: [MpiCollective; 3] =
        [MpiCollective::Bcast, MpiCollective::Reduce, MpiCollective::Allreduce];

    /// MPI's name for it.
    ///
    /// ```
    /// assert_eq!(reduction::MpiCollective::Allreduce.name(), "MPI_Allreduce");
    /// ```
    pub fn name(self) -> &'static str {
        match self {
            MpiCollective::Bcast => "MPI_Bcast",
            MpiCollective::Reduce => "MPI_Reduce",
            MpiCollective::Allreduce => "MPI_Allreduce",
        }
    }

    /// The MPI collective that does what `algorithm` does.
    ///
    /// ```
    /// use reduction::{Algorithm, MpiCollective};
    /// assert_eq!(MpiCollective::of(Algorithm::ButterflyAllreduce), MpiCollective::Allreduce);
    /// ```
    pub fn of(algorithm: Algorithm) -> MpiCollective {
        match algorithm {
            Algorithm::LinearBcast | Algorithm::ChainBcast | Algorithm::TreeBcast => {
                MpiCollective::Bcast
            }
            Algorithm::LinearReduce | Algorithm::TreeReduce => MpiCollective::Reduce,
            Algorithm::TreeAllreduce | Algorithm::ButterflyAllreduce => MpiCollective::Allreduce,
        }
    }

    /// Calls it on this rank with `value` (every rank must): the result on this rank.
    fn call<T: mp_mpi::native::Number>(self, value: T) -> mp::Result<Option<T>> {
        match self {
            MpiCollective::Bcast => mp_mpi::native::broadcast(value).map(Some),
            MpiCollective::Reduce => mp_mpi::native::reduce_sum(value),
            MpiCollective::Allreduce => mp_mpi::native::allreduce_sum(value).map(Some),
        }
    }
}

/// What one of MPI's collectives gave rank 0 on the ranks' [`int_value`]s and
/// [`float_value`]s, and its time per call.
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
pub struct NativeOutcome {
    /// Which collective.
    pub collective: MpiCollective,
    /// Its integer result on rank 0.
    pub int: u64,
    /// Its float result on rank 0.
    pub float: f64,
    /// The time of one call on the floats (see [`MpiComparison`]).
    pub per_call: Duration,
}

/// Under `mpirun`: MPI's own collectives beside yours, on MPI's world.
///
/// A time per call is the median of [`calls`](Self::calls) calls, after
/// [`warm_up`](Self::warm_up) calls that are not counted. Every call starts after an
/// `MPI_Barrier`, and its time is the longest that any rank spent in it (from leaving the
/// barrier until its own part was done). Your algorithms are timed the same way, called on the
/// world itself (without the [`Counting`] wrapper) with the float values.
#[derive(Clone, Debug, PartialEq)]
pub struct MpiComparison {
    /// The timed calls per collective.
    pub calls: usize,
    /// The calls before those, not timed.
    pub warm_up: usize,
    /// `MPI_Bcast`, `MPI_Reduce`, `MPI_Allreduce`: what rank 0 got, and the time per call.
    pub native: Vec<NativeOutcome>,
    /// Each of your algorithms that ran, with its time per call.
    pub yours: Vec<(Algorithm, Duration)>,
    /// The names of the machines the ranks ran on, each once.
    pub processors: Vec<String>,
}

/// Under `mpirun`: runs MPI's own `MPI_Bcast`, `MPI_Reduce` and `MPI_Allreduce` on the same
/// values as your algorithms, checks their results, and times them and your `algorithms` on
/// MPI's world, `calls` calls each (see [`MpiComparison`]). Every rank calls it, and every rank
/// gets the same comparison. `None` when the program does not run under MPI.
pub fn compare_with_mpi(
    algorithms: &[Algorithm],
    calls: usize,
) -> Option<mp::Result<MpiComparison>> {
    course::with_mpi_session(|session| compare_on(session, algorithms, calls.max(1)))
}

/// What one rank sends to rank 0 after the comparison: its native results, the time of each of
/// its timed calls (one list per collective), where it ran.
type RankTimes = (Vec<(Option<u64>, Option<f64>)>, Vec<Vec<Duration>>, String);

fn compare_on(
    session: &mp_mpi::Session,
    algorithms: &[Algorithm],
    calls: usize,
) -> mp::Result<MpiComparison> {
    let world = session.world()?;
    let (rank, size) = (session.rank(), session.size());
    let (int, float) = (int_value(rank), float_value(rank));
    let warm_up = (calls / 10).max(3);
    let time = |call: &mut dyn FnMut() -> mp::Result<()>| -> mp::Result<Vec<Duration>> {
        for _ in 0..warm_up {
            session.barrier()?;
            call()?;
        }
        let mut times = Vec::with_capacity(calls);
        for _ in 0..calls {
            session.barrier()?;
            let started = Instant::now();
            call()?;
            times.push(started.elapsed());
        }
        Ok(times)
    };

    let mut results = Vec::new();
    let mut times = Vec::new();
    for collective in MpiCollective::ALL {
        let (int_result, float_result) = (collective.call(int)?, collective.call(float)?);
        check_native(collective, rank, size, int_result, float_result)?;
        results.push((int_result, float_result));
        times.push(time(&mut || collective.call(float).map(drop))?);
    }
    for &algorithm in algorithms {
        times.push(time(&mut || call(&world, algorithm, float).map(drop))?);
    }

    // Rank 0's results, every rank's times and machine, on every rank.
    let all: Vec<RankTimes> =
        all_to_every_rank(&world, (results, times, session.processor_name()?))?;
    // The median over the calls of the longest time any rank spent in the call.
    let slowest = |index: usize| {
        let longest = (0..calls).map(|call| {
            all.iter().map(|(_, times, _)| times[index][call]).max().unwrap_or_default()
        });
        median(longest.collect())
    };
    let native = MpiCollective::ALL
        .iter()
        .enumerate()
        .map(|(index, &collective)| {
            let (int, float) = all[0].0[index];
            NativeOutcome {
                collective,
                int: int.unwrap_or_default(),
                float: float.unwrap_or(f64::NAN),
                per_call: slowest(index),
            }
        })
        .collect();
    let yours = algorithms
        .iter()
        .enumerate()
        .map(|(index, &algorithm)| (algorithm, slowest(MpiCollective::ALL.len() + index)))
        .collect();
    let mut processors: Vec<String> = Vec::new();
    for (_, _, processor) in all {
        if !processors.contains(&processor) {
            processors.push(processor);
        }
    }
    Ok(MpiComparison { calls, warm_up, native, yours, processors })
}

/// Refuses a result of MPI's own collective that is not what it must be on this rank.
fn check_native(
    collective: MpiCollective,
    rank: usize,
    size: usize,
    int: Option<u64>,
    float: Option<f64>,
) -> mp::Result<()> {
    let has_it = rank == 0 || collective != MpiCollective::Reduce;
    let int_sum = (1..=size as u64).sum::<u64>();
    let expected_int = match collective {
        MpiCollective::Bcast => int_value(0),
        MpiCollective::Reduce | MpiCollective::Allreduce => int_sum,
    };
    let float_right = match collective {
        MpiCollective::Bcast => float.map(f64::to_bits) == Some(float_value(0).to_bits()),
        _ => float.is_some() == has_it,
    };
    if int != has_it.then_some(expected_int) || !float_right {
        return Err(mp::Error::Corrupted {
            message: format!(
                "{} gave rank {rank} {int:?} and {float:?}; expected {:?}{}",
                collective.name(),
                has_it.then_some(expected_int),
                if collective == MpiCollective::Bcast { " and 1e16" } else { "" }
            ),
        });
    }
    Ok(())
}

/// The median of some times (the mean of the middle two for an even number).
fn median(mut times: Vec<Duration>) -> Duration {
    times.sort_unstable();
    let middle = times.len() / 2;
    match times.len() {
        0 => Duration::ZERO,
        n if n % 2 == 1 => times[middle],
        _ => (times[middle - 1] + times[middle]) / 2,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_median_is_the_middle_time_or_the_mean_of_the_middle_two() {
        let ms = Duration::from_millis;
        assert_eq!(median(vec![ms(9), ms(1), ms(5)]), ms(5));
        assert_eq!(median(vec![ms(4), ms(1), ms(2), ms(100)]), ms(3));
        assert_eq!(median(Vec::new()), Duration::ZERO);
    }

    #[test]
    fn every_algorithm_is_compared_with_the_mpi_collective_that_does_the_same() {
        for algorithm in Algorithm::ALL {
            let collective = MpiCollective::of(algorithm);
            assert_eq!(algorithm.is_broadcast(), collective == MpiCollective::Bcast);
            assert_eq!(algorithm.everyone_gets_it(), collective != MpiCollective::Reduce);
        }
    }

    #[test]
    fn a_wrong_result_of_mpi_s_own_collective_is_refused() {
        assert!(check_native(MpiCollective::Bcast, 2, 4, Some(1), Some(1e16)).is_ok());
        assert!(check_native(MpiCollective::Bcast, 2, 4, Some(1), Some(1.25)).is_err());
        assert!(check_native(MpiCollective::Reduce, 0, 4, Some(10), Some(1e16)).is_ok());
        assert!(check_native(MpiCollective::Reduce, 1, 4, None, None).is_ok());
        assert!(check_native(MpiCollective::Reduce, 1, 4, Some(10), None).is_err());
        assert!(check_native(MpiCollective::Allreduce, 3, 4, Some(11), Some(1e16)).is_err());
    }
}
