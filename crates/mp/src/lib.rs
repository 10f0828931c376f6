//! mp: front page written later.

mod channel;
mod error;
mod pool;
mod process;
pub mod split;
mod sys;
pub mod threads;
pub mod timing;
pub mod units;
mod wire;
mod worker;

pub use channel::{Connection, Receiver, Sender, pipe, pipe_simplex};
pub use error::{Error, ExitReason, Result};
pub use pool::{AsyncResult, CHUNKS_IN_FLIGHT, Imap, Pool, StarFn, TaskRecord, Traced, cpu_count};
pub use process::Process;
pub use split::array_split;
pub use worker::init;

/// Lets the worker processes of an integration test binary start.
#[macro_export]
macro_rules! test_support {
    () => {
        /// Not a test: the entry point of worker processes re-executed from this test binary.
        #[test]
        fn mp_worker_entry() {
            $crate::init();
        }
    };
}

#[cfg(test)]
test_support!();
