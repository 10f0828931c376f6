//! The same names as `session.rs`, in a build without the `mpi` feature: nothing can be
//! initialised, so every call is the "built without MPI" error and no `Session` can exist.

use std::{sync::Arc, time::Duration};

use mp::{Peer, Result};

use crate::without_mpi;

/// Ends this process with `code` (without MPI there is no job to end).
pub fn abort(code: i32) -> ! {
    std::process::exit(code)
}

#[derive(Debug, Clone, Copy)]
enum Never {}

/// This process's part of an MPI job. Built without the `mpi` feature, [`Session::init`]
/// always fails with the "built without MPI" error, so no `Session` exists and its methods
/// are never called.
///
/// ```
/// let error = mp_mpi::Session::init().unwrap_err();
/// assert!(error.to_string().contains("built without MPI"));
/// ```
#[derive(Debug)]
pub struct Session {
    never: Never,
}

impl Session {
    /// Always the "built without MPI" error in this build.
    pub fn init() -> Result<Session> {
        Err(without_mpi())
    }

    /// This process's rank in the job.
    pub fn rank(&self) -> usize {
        match self.never {}
    }

    /// The number of ranks in the job.
    pub fn size(&self) -> usize {
        match self.never {}
    }

    /// The whole job as an [`mp::Comm`].
    pub fn world(&self) -> Result<mp::Comm> {
        match self.never {}
    }

    /// The peer for `rank`.
    pub fn peer(&self, _rank: usize) -> Result<Arc<dyn Peer>> {
        match self.never {}
    }

    /// Tells `rank` that this rank will send it nothing more.
    pub fn hang_up(&self, _rank: usize) -> Result<()> {
        match self.never {}
    }

    /// The MPI library's description of itself.
    pub fn library_version(&self) -> Result<String> {
        match self.never {}
    }

    /// Waits until every rank has called `barrier`.
    pub fn barrier(&self) -> Result<()> {
        match self.never {}
    }

    /// The name of the machine this rank runs on.
    pub fn processor_name(&self) -> Result<String> {
        match self.never {}
    }

    /// How long dropping the session waits for its sent messages to be received.
    pub fn set_finalize_timeout(&mut self, _timeout: Duration) {
        match self.never {}
    }
}

pub(crate) fn world_comm() -> Result<mp::Comm> {
    Err(without_mpi())
}

pub(crate) mod collectives {
    use crate::{native::Number, without_mpi};

    pub(crate) fn broadcast<T: Number>(_: T) -> mp::Result<T> {
        Err(without_mpi())
    }

    pub(crate) fn reduce_sum<T: Number>(_: T) -> mp::Result<Option<T>> {
        Err(without_mpi())
    }

    pub(crate) fn allreduce_sum<T: Number>(_: T) -> mp::Result<T> {
        Err(without_mpi())
    }
}
