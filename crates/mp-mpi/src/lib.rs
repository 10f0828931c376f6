//! # mp-mpi: mp's `Communicator` on MPI
//!
//! (front page written below)

pub mod mpirun;

pub use mpirun::{Launcher, Mpirun, launcher, mpirun_missing};
