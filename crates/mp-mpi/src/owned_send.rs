//! A nonblocking send (`MPI_Isend`) of a body that the send owns until MPI is done with it.
//!
//! rsmpi's `immediate_send` borrows its buffer for the request's lifetime; a request that
//! outlives the call needs a `'static` borrow. So the body's allocation is taken apart here,
//! lent to MPI as `&'static [u8]`, and put back together (and freed) only once `MPI_Test`
//! says the send is complete. The only unsafe code of this crate.
#![allow(unsafe_code)]

use std::mem::ManuallyDrop;

use mpi::{
    Tag,
    request::{Request, StaticScope},
    topology::Process,
    traits::Destination,
};

/// A send in flight and the body it owns.
pub(crate) struct OwnedSend {
    /// The destination rank, for the report of sends never received.
    pub(crate) dest: usize,
    /// The MPI tag: the report counts messages, not hang-ups.
    pub(crate) tag: Tag,
    request: Request<'static, [u8], StaticScope>,
    /// The body's allocation: pointer, length, capacity, as `Vec::from_raw_parts` wants them.
    parts: (*mut u8, usize, usize),
}

impl OwnedSend {
    /// Starts `MPI_Isend` of `body` to `process`.
    pub(crate) fn start(process: &Process<'_>, dest: usize, body: Vec<u8>, tag: Tag) -> OwnedSend {
        let mut body = ManuallyDrop::new(body);
        let parts = (body.as_mut_ptr(), body.len(), body.capacity());
        // SAFETY: the pointer and length come from a live `Vec<u8>` whose ownership this
        // struct takes over (`ManuallyDrop`: nothing frees it) and that nobody else can reach.
        // The allocation stays valid and unchanged until `test` sees the send complete and
        // rebuilds the `Vec`; the `'static` borrow is held only by the request, which is
        // consumed at that moment. A send still in flight when the process ends is never
        // freed (the session aborts the job instead of finalizing), which is sound.
        let lent: &'static [u8] = unsafe { std::slice::from_raw_parts(parts.0, parts.1) };
        let request = process.immediate_send_with_tag(StaticScope, lent, tag);
        OwnedSend { dest, tag, request, parts }
    }

    /// `Ok` (and the body freed) if the send is complete, else the send still in flight.
    pub(crate) fn test(self) -> Result<(), OwnedSend> {
        let OwnedSend { dest, tag, request, parts } = self;
        match request.test() {
            Ok(_status) => {
                // SAFETY: MPI has completed the send, so it no longer reads the buffer, and
                // the request that held the only borrow was consumed by `test`. The parts are
                // those of the `Vec` taken apart in `start`, rebuilt exactly once.
                drop(unsafe { Vec::from_raw_parts(parts.0, parts.1, parts.2) });
                Ok(())
            }
            Err(request) => Err(OwnedSend { dest, tag, request, parts }),
        }
    }
}
