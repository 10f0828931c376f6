//! # mp-mpi: mp's `Communicator` on MPI
//!
//! The same program, two engines: started normally, an exercise runs its ranks with
//! `mp::launch` (processes and pipes on one machine); started by `mpirun`, the same code runs
//! on MPI ranks (rsmpi over Open MPI or MPICH, on one machine or many). What makes this work
//! is [`Session::world`]: an [`mp::Comm`] whose messages travel through MPI, so every
//! function written against [`mp::Communicator`] runs unchanged.
//!
//! MPI is optional. Without the `mpi` feature this crate has the same names, and everything
//! that needs MPI returns the error "built without MPI" (or `None`); [`launcher`] and
//! [`Mpirun`] (plain `std`) work in every build. Building with the feature needs Open MPI,
//! `mpicc` and libclang (Debian/Ubuntu: `apt-get install openmpi-bin libopenmpi-dev
//! libclang-dev`):
//!
//! ```text
//! cargo build --release -p solution-4 --features mpi
//! mpirun -n 4 --timeout 600 --oversubscribe target/release/solution-4
//! ```
//!
//! ## From mpi4py
//!
//! | mpi4py | mp (here `world` = [`Session::world`], or the `Comm` of `mp::launch`) |
//! |---|---|
//! | `MPI.Init()` (on import), `MPI.Finalize()` (at exit) | [`Session::init`], dropping the [`Session`] (`course::run` does both) |
//! | `comm.Get_rank()`, `comm.Get_size()` | `world.rank()`, `world.size()` |
//! | `comm.send(obj, dest=1)` (pickle) | `world.send(1, &obj)` (postcard; note the order) |
//! | `obj = comm.recv(source=0)` | `let obj: T = world.recv(0)?` (a wrong `T` is `Error::TypeMismatch`) |
//! | `comm.Send(array, dest=1)` | `world.send_slice(1, &array)` or `world.send_bytes(1, &bytes)` |
//! | `comm.Recv(buffer, source=0)` | `world.recv_into(0, &mut vec)` or `world.recv_bytes_into(0, &mut bytes)` |
//! | `comm.sendrecv(obj, dest, source=source)` | `world.sendrecv(dest, &obj, source)` |
//! | `comm.bcast(x, root=0)` | [`native::broadcast`]`(x)` |
//! | `comm.reduce(x, op=MPI.SUM, root=0)` | [`native::reduce_sum`]`(x)` (`Some` on rank 0) |
//! | `comm.allreduce(x, op=MPI.SUM)` | [`native::allreduce_sum`]`(x)` |
//! | `comm.Barrier()` | [`Session::barrier`] |
//! | `MPI.Get_processor_name()` | [`Session::processor_name`] |
//! | `comm.Abort(1)` | [`abort`]`(1)` |
//!
//! ## How the messages travel
//!
//! * A typed message (`send`) is mp's encoding (type fingerprint, postcard) sent with
//!   `MPI_Isend` from a buffer the session keeps until MPI is done with it: **a typed send
//!   never waits for the receiver**, as on mp's pipes, so two ranks that both send first and
//!   then receive do not deadlock (with a plain `MPI_Send` of a large message they would).
//! * Raw bytes (`send_bytes`, `send_slice`) go with `MPI_Send` from the caller's slice: no
//!   copy, but above MPI's eager limit (4 KiB in shared memory with Open MPI) the call waits
//!   for the receiver, exactly like mpi4py's uppercase `Send`.
//! * Receives are `MPI_Mprobe` then `MPI_Mrecv` (size from the probe), into a reused buffer.
//!   The message kind travels as the MPI tag, so a typed receive of raw bytes is an error.
//! * MPI counts are 32-bit: a message of 2 GiB or more is refused with
//!   `Error::InvalidArgument` before MPI sees it. A rank outside the world is an `Error`, not
//!   an abort of the job.
//! * MPI is initialised for one thread (`MPI_THREAD_FUNNELED`); calls from another thread
//!   are `Error::InvalidArgument`.
//! * A panic on that thread ends the whole job (`MPI_Abort` with 101) once its message is
//!   printed; a finalizing session whose typed messages were never received ends the job
//!   with 1, naming them, instead of hanging.
//! * A rank that finishes tells every other rank, behind its last message: waiting for a
//!   message from a rank that has ended is `Error::Disconnected`, as from a process that
//!   exited, not a wait until mpirun's time limit.

pub mod mpirun;

pub use mpirun::{Launcher, Mpirun, launcher, mpirun_missing};

#[cfg(feature = "mpi")]
mod owned_send;
#[cfg(feature = "mpi")]
mod session;
#[cfg(not(feature = "mpi"))]
mod without;

#[cfg(feature = "mpi")]
use session as engine;
#[cfg(not(feature = "mpi"))]
use without as engine;

pub use engine::{Session, abort};

/// True when this build has the MPI transport (the `mpi` feature).
///
/// ```
/// if !mp_mpi::built_with_mpi() {
///     assert!(mp_mpi::Session::init().is_err());
/// }
/// ```
pub fn built_with_mpi() -> bool {
    cfg!(feature = "mpi")
}

/// The world of the [`Session`] that lives on this thread, as an [`mp::Comm`]; `None` when no
/// session lives here (no `mpirun`, a build without MPI, another thread).
///
/// ```
/// // Not under mpirun: no session, no world.
/// assert!(mp_mpi::world().is_none());
/// ```
pub fn world() -> Option<mp::Comm> {
    engine::world_comm().ok()
}

/// Runs `f` with the calling thread allowed on every CPU of the machine, then gives the thread
/// back the CPUs it had.
///
/// `mpirun` binds each rank to one core (Open MPI does for up to two ranks), and a process or
/// thread started from a rank inherits that core. Work that a rank does on its own with
/// processes of its own (exercise 5's local `mp` ping-pong, with its echoing child) would then
/// share one core with them; started inside `f`, they get the whole machine, as without
/// mpirun. What `f` starts keeps the wider set (so does mp's spawner thread, if `f` starts it).
/// When the affinity cannot be read or changed, `f` still runs, where the thread is.
///
/// ```
/// let cpus = mp_mpi::with_every_cpu(|| std::thread::available_parallelism().map_or(1, usize::from));
/// assert!(cpus >= 1);
/// ```
pub fn with_every_cpu<R>(f: impl FnOnce() -> R) -> R {
    use rustix::thread::{CpuSet, sched_getaffinity, sched_setaffinity};
    let before = sched_getaffinity(None).ok();
    let mut every = CpuSet::new();
    for cpu in 0..CpuSet::MAX_CPU {
        every.set(cpu);
    }
    // The kernel keeps the CPUs of this set that exist and that the cgroup allows.
    let widened = before.is_some() && sched_setaffinity(None, &every).is_ok();
    let result = f();
    if let (true, Some(before)) = (widened, before) {
        let _ = sched_setaffinity(None, &before);
    }
    result
}

/// The largest message MPI can carry in one call: counts are `i32`.
pub const MAX_MESSAGE_BYTES: usize = i32::MAX as usize;

/// Refuses a body MPI cannot count (2 GiB or more) before MPI sees it.
#[cfg_attr(not(feature = "mpi"), allow(dead_code))]
pub(crate) fn check_count(len: usize, to: &str) -> mp::Result<i32> {
    i32::try_from(len).map_err(|_| mp::Error::InvalidArgument {
        message: format!(
            "a message of {len} bytes to {to} is too large for MPI, whose counts are 32-bit: \
             at most {MAX_MESSAGE_BYTES} bytes (2 GiB - 1) per message; send it in parts"
        ),
    })
}

/// The error of everything that needs MPI in a build without it.
#[cfg_attr(feature = "mpi", allow(dead_code))]
pub(crate) fn without_mpi() -> mp::Error {
    mp::Error::InvalidArgument {
        message: "this program was built without MPI; rebuild it with `--features mpi` (needs \
                  Open MPI, mpicc and libclang: `apt-get install openmpi-bin libopenmpi-dev \
                  libclang-dev`)"
            .into(),
    }
}

/// MPI's own collectives on one number, for exercise 4's comparison with the hand-written
/// ones: every rank calls the same function, as in MPI.
///
/// Each needs a live [`Session`] on this thread; without one (or built without MPI) it is an
/// error.
///
/// ```
/// // Not under mpirun here:
/// assert!(mp_mpi::native::allreduce_sum(1u64).is_err());
/// ```
///
/// ```no_run
/// // Under `mpirun -n 4`, after Session::init():
/// let sum = mp_mpi::native::allreduce_sum(1.5f64)?; // 6.0 on every rank
/// let total = mp_mpi::native::reduce_sum(1u64)?; // Some(4) on rank 0, None elsewhere
/// let seed = mp_mpi::native::broadcast(42u64)?; // rank 0's value everywhere
/// # Ok::<(), mp::Error>(())
/// ```
pub mod native {
    use crate::engine::collectives;

    mod sealed {
        #[cfg(feature = "mpi")]
        pub trait Sealed: mpi::traits::Equivalence {}
        #[cfg(not(feature = "mpi"))]
        pub trait Sealed {}
        impl Sealed for u64 {}
        impl Sealed for f64 {}
    }

    /// A number MPI's collectives take here: `u64` or `f64`.
    pub trait Number: sealed::Sealed + Copy + std::fmt::Debug + 'static {}
    impl Number for u64 {}
    impl Number for f64 {}

    /// `MPI_Bcast` from rank 0: rank 0's `value` on every rank.
    pub fn broadcast<T: Number>(value: T) -> mp::Result<T> {
        collectives::broadcast(value)
    }

    /// `MPI_Reduce` with `MPI_SUM` onto rank 0: `Some(sum)` there, `None` on the others.
    pub fn reduce_sum<T: Number>(value: T) -> mp::Result<Option<T>> {
        collectives::reduce_sum(value)
    }

    /// `MPI_Allreduce` with `MPI_SUM`: the sum on every rank.
    pub fn allreduce_sum<T: Number>(value: T) -> mp::Result<T> {
        collectives::allreduce_sum(value)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn two_gib_is_refused_with_the_size_and_the_limit() {
        assert_eq!(check_count(0, "MPI rank 1").unwrap(), 0);
        assert_eq!(check_count(MAX_MESSAGE_BYTES, "MPI rank 1").unwrap(), i32::MAX);
        let error = check_count(1 << 31, "MPI rank 1").unwrap_err();
        assert!(matches!(error, mp::Error::InvalidArgument { .. }));
        let text = error.to_string();
        assert!(text.contains("2147483648 bytes to MPI rank 1"), "{text}");
        assert!(text.contains("at most 2147483647"), "{text}");
    }

    #[test]
    fn without_a_session_there_is_no_world_and_no_collective() {
        assert!(world().is_none());
        assert!(native::broadcast(1u64).is_err());
        assert!(native::reduce_sum(1.0f64).is_err());
    }
}
