//! The ring on MPI (week 4), given code: the program's MPI path hands your `ring_rank` pipe
//! ends whose other ends are MPI ranks. Nothing here is yours to write.

use std::time::{Duration, Instant};

use mp::{Communicator, Receiver, Sender};
use process_launch::{RingPlace, Token, ring_rank};
use serde::{Deserialize, Serialize};

/// Where one rank of an MPI job ran: its machine (`MPI_Get_processor_name`) and process id.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Placement {
    /// The rank.
    pub rank: usize,
    /// The name of the machine it ran on.
    pub processor: String,
    /// Its process id there.
    pub pid: u32,
}

/// What rank 0 knows once the token has gone round a ring of MPI ranks.
#[derive(Debug, Clone)]
pub struct MpiRing {
    /// The token as it came back to rank 0.
    pub token: Token,
    /// From rank 0's first send until the token came back.
    pub elapsed: Duration,
    /// Where each rank ran, in rank order (gathered on rank 0 through the MPI world).
    pub placements: Vec<Placement>,
}

/// The ring on MPI (week 4): when `mpirun` started this program (built with `--features
/// mpi`), every rank runs your [`ring_rank`] with a [`RingPlace`] whose ends
/// are connected to the MPI ranks before and after it (`Receiver::from_peer`,
/// `Sender::from_peer`; with one rank, both to itself), then sends where it ran to rank 0.
///
/// Returns `None` when the program does not run under MPI; under MPI, `Some(Ok(Some(ring)))`
/// on rank 0 and `Some(Ok(None))` on the other ranks. A rank whose `ring_rank` panics ends
/// the whole job with its message.
pub fn ring_on_mpi() -> Option<mp::Result<Option<MpiRing>>> {
    course::with_mpi_session(|session| {
        let (rank, n_ranks) = (session.rank(), session.size());
        let (previous, next) = ((rank + n_ranks - 1) % n_ranks, (rank + 1) % n_ranks);
        let place = RingPlace {
            rank,
            n_ranks,
            from_previous: Receiver::from_peer(session.peer(previous)?),
            to_next: Sender::from_peer(session.peer(next)?),
        };
        session.barrier()?; // every rank is ready: the time is the ring's alone
        let started = Instant::now();
        let token = ring_rank(place);
        let elapsed = started.elapsed();

        let here =
            Placement { rank, processor: session.processor_name()?, pid: std::process::id() };
        let world = session.world()?;
        if rank != 0 {
            world.send(0, &here)?;
            return Ok(None);
        }
        let mut placements = vec![here];
        for source in 1..n_ranks {
            placements.push(world.recv(source)?);
        }
        Ok(Some(MpiRing { token, elapsed, placements }))
    })
}
