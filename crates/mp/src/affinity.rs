//! Which CPUs a process may run on: Python's `os.sched_getaffinity(0)` and
//! `os.sched_setaffinity(0, cpus)`, and what `mpirun --bind-to core` does for each rank.
//!
//! Binding matters when you measure: two processes that exchange messages and share one CPU
//! take turns on it (each message waits for a switch of a few microseconds), while on two CPUs
//! they can answer each other in well under one. The kernel decides where an unbound process
//! runs, and on a busy machine it often puts both on the same CPU. MPI binds its ranks one per
//! core by default; `mp-bench` binds both sides of every ping-pong it compares with MPI's.
//!
//! ```
//! fn main() -> mp::Result<()> {
//!     mp::init();
//!     let allowed = mp::affinity::get()?;
//!     // Run only on the first CPU allowed, then as before.
//!     mp::affinity::set(&allowed[..1])?;
//!     assert_eq!(mp::affinity::get()?, allowed[..1]);
//!     mp::affinity::set(&allowed)?;
//!     Ok(())
//! }
//! ```
//!
//! Both act on the calling thread, as Python's do with pid 0; threads it starts later inherit
//! the set, as do processes it starts ([`Process`](crate::Process), [`Pool`](crate::Pool)
//! workers, [`launch`](crate::launch)ed ranks). In a single-threaded program that is the
//! process.

use crate::{Error, Result, sys};

/// The CPUs the calling thread may run on, in increasing order: `os.sched_getaffinity(0)`.
///
/// ```
/// let cpus = mp::affinity::get().unwrap();
/// assert!(!cpus.is_empty());
/// ```
pub fn get() -> Result<Vec<usize>> {
    sys::affinity().map_err(|error| Error::io("asking which CPUs this thread may use", error))
}

/// Lets the calling thread run only on `cpus`: `os.sched_setaffinity(0, cpus)`.
///
/// An empty list, a CPU number the kernel cannot name, or a set that contains no CPU this
/// machine has (or this process may use, under a container's or batch system's limit) is an
/// [`Error::InvalidArgument`] that says which CPUs are allowed.
///
/// ```
/// let first = mp::affinity::get().unwrap()[0];
/// mp::affinity::set(&[first]).unwrap();
/// assert_eq!(mp::affinity::get().unwrap(), [first]);
/// let error = mp::affinity::set(&[]).unwrap_err();
/// assert!(error.to_string().contains("no CPU"));
/// ```
pub fn set(cpus: &[usize]) -> Result<()> {
    let allowed = || match get() {
        Ok(allowed) => format!("this thread may use CPUs {allowed:?}"),
        Err(error) => format!("the CPUs this thread may use are unknown ({error})"),
    };
    if cpus.is_empty() {
        return Err(Error::InvalidArgument {
            message: format!("mp::affinity::set: no CPU given; {}", allowed()),
        });
    }
    if let Some(&cpu) = cpus.iter().find(|&&cpu| cpu >= sys::CPU_SET_SIZE) {
        return Err(Error::InvalidArgument {
            message: format!(
                "mp::affinity::set: CPU {cpu} is beyond the {} CPUs an affinity set can name; {}",
                sys::CPU_SET_SIZE,
                allowed()
            ),
        });
    }
    sys::set_affinity(cpus).map_err(|error| match error.raw_os_error() {
        Some(libc::EINVAL) => Error::InvalidArgument {
            message: format!(
                "mp::affinity::set: none of CPUs {cpus:?} is one this thread may use; {}",
                allowed()
            ),
        },
        _ => Error::io("setting which CPUs this thread may use", error),
    })
}
