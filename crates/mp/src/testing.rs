//! Help for tests that start processes: a hang must fail the test, not stall CI.

use std::{
    io::Write as _,
    sync::{
        Arc,
        atomic::{AtomicBool, Ordering},
    },
    time::{Duration, Instant},
};

/// Ends the whole test binary with a message (and exit code 97) if the returned guard is
/// still alive after `limit`: a test that hangs (a `recv` nobody sends to, a `join` on a
/// process that never ends) fails in seconds instead of stalling CI or the grader. The
/// message names the test by its thread's name, which the test harness sets.
///
/// ```
/// let guard = mp::testing::watchdog(std::time::Duration::from_secs(60));
/// // ... the test ...
/// drop(guard); // disarmed
/// ```
pub fn watchdog(limit: Duration) -> Watchdog {
    let done = Arc::new(AtomicBool::new(false));
    let flag = Arc::clone(&done);
    let test = std::thread::current().name().unwrap_or("a test").to_string();
    std::thread::spawn(move || {
        let deadline = Instant::now() + limit;
        while Instant::now() < deadline {
            if flag.load(Ordering::Relaxed) {
                return;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        // Straight to stderr: `eprintln!` in a thread spawned by a test is captured by the
        // harness, and the capture is lost when the process exits.
        let _ = writeln!(
            std::io::stderr(),
            "WATCHDOG: `{test}` is still running after {} s, so it was stopped. Something \
             waits forever: a recv that nobody sends to, or a process that never returns?",
            limit.as_secs()
        );
        std::process::exit(97);
    });
    Watchdog { done }
}

/// The guard returned by [`watchdog`]; dropping it disarms the watchdog.
///
/// ```
/// let _guard = mp::testing::watchdog(std::time::Duration::from_secs(60));
/// ```
#[derive(Debug)]
pub struct Watchdog {
    done: Arc<AtomicBool>,
}

impl Drop for Watchdog {
    fn drop(&mut self) {
        self.done.store(true, Ordering::Relaxed);
    }
}

/// The same connection, declared to carry `U` instead of `T`: for tests of the type check on
/// typed messages only. A program keeps one type per pipe, and the compiler holds it to that;
/// this is how a test builds the mistake the check must catch (as `Comm`, whose `send` and
/// `recv` take any type, allows it without help).
///
/// ```
/// # fn main() -> mp::Result<()> {
/// let (a, b) = mp::pipe::<f64>()?;
/// let b: mp::Connection<usize> = mp::testing::retype(b);
/// a.send(&2.5)?;
/// assert!(matches!(b.recv(), Err(mp::Error::TypeMismatch { .. })));
/// # Ok(()) }
/// ```
pub fn retype<T, U>(connection: crate::Connection<T>) -> crate::Connection<U> {
    crate::Connection::from_end(connection.end().clone())
}

/// The same queue, declared to carry `U` instead of `T`: as [`retype`], for tests only.
///
/// ```
/// # fn main() -> mp::Result<()> {
/// let queue = mp::Queue::<f64>::new()?;
/// queue.put(&2.5)?;
/// let queue: mp::Queue<usize> = mp::testing::retype_queue(queue);
/// assert!(matches!(queue.get(), Err(mp::Error::TypeMismatch { .. })));
/// # Ok(()) }
/// ```
pub fn retype_queue<T, U>(queue: crate::Queue<T>) -> crate::Queue<U> {
    queue.retyped()
}
