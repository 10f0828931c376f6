//! The one error type of the crate.
//!
//! Every message says what went wrong and, where a student can do something about it, what to
//! do next. Faults that Python's `multiprocessing` turns into hangs (a killed worker, a child
//! that dies before it starts, a peer that is gone) become values of this type.

use std::{fmt, io, time::Duration};

/// `Result<T, mp::Error>`: what every fallible call in `mp` returns, so `?` works throughout.
///
/// ```
/// fn size_in_bytes(text: &str) -> mp::Result<u64> {
///     Ok(text.parse::<mp::units::Bytes>()?.0)
/// }
/// assert_eq!(size_in_bytes("2 KiB")?, 2048);
/// assert!(size_in_bytes("two").is_err());
/// # Ok::<(), mp::Error>(())
/// ```
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// How a process ended: with an exit code or killed by a signal.
///
/// ```
/// use mp::ExitReason;
/// assert_eq!(ExitReason::Signal(9).to_string(), "killed by signal 9 (SIGKILL)");
/// assert_eq!(ExitReason::Code(3).to_string(), "exited with code 3");
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ExitReason {
    /// The process called `exit` with this code (Python's `exitcode >= 0`).
    Code(i32),
    /// The process was killed by this signal (Python's `exitcode == -signal`).
    Signal(i32),
}

impl ExitReason {
    /// Python's `Process.exitcode` convention: the code, or minus the signal number.
    ///
    /// ```
    /// assert_eq!(mp::ExitReason::Signal(9).python_exitcode(), -9);
    /// ```
    pub fn python_exitcode(self) -> i32 {
        match self {
            ExitReason::Code(code) => code,
            ExitReason::Signal(signal) => -signal,
        }
    }

    /// True for `exit(0)`; any other code or any signal is a failure.
    ///
    /// ```
    /// use mp::ExitReason;
    /// assert!(ExitReason::Code(0).success());
    /// assert!(!ExitReason::Code(1).success());
    /// assert!(!ExitReason::Signal(9).success());
    /// ```
    pub fn success(self) -> bool {
        self == ExitReason::Code(0)
    }
}

impl fmt::Display for ExitReason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match *self {
            ExitReason::Code(code) => write!(f, "exited with code {code}"),
            ExitReason::Signal(signal) => {
                write!(f, "killed by signal {signal} ({})", signal_name(signal))
            }
        }
    }
}

/// The conventional name of a Linux signal number.
pub(crate) fn signal_name(signal: i32) -> &'static str {
    match signal {
        1 => "SIGHUP",
        2 => "SIGINT",
        3 => "SIGQUIT",
        4 => "SIGILL",
        6 => "SIGABRT",
        7 => "SIGBUS",
        8 => "SIGFPE",
        9 => "SIGKILL",
        11 => "SIGSEGV",
        13 => "SIGPIPE",
        14 => "SIGALRM",
        15 => "SIGTERM",
        24 => "SIGXCPU",
        _ => "unknown signal",
    }
}

/// Declares `Error` and writes its structured `{:#?}` form from the same list of variants, so a
/// new variant needs nothing here: declare it in `declare_error! { .. }` below, struct-like
/// (`Name { field: Type, .. }`) or without fields, with fields that implement `Debug` (as
/// `#[derive(Debug)]` would need), and give it its `Display` text. (Tuple variants such as
/// `Name(Type)` are not accepted: give the field a name.)
macro_rules! declare_error {
    (
        $(#[$meta:meta])*
        pub enum Error {
            $(
                $(#[$variant_meta:meta])*
                $variant:ident $({
                    $( $(#[$field_meta:meta])* $field:ident: $type:ty ),* $(,)?
                })?
            ),* $(,)?
        }
    ) => {
        $(#[$meta])*
        pub enum Error {
            $(
                $(#[$variant_meta])*
                $variant $({ $( $(#[$field_meta])* $field: $type ),* })?
            ),*
        }

        impl Error {
            /// What `#[derive(Debug)]` would print: the variant and its fields.
            fn fmt_structured(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                match self {
                    $(
                        Error::$variant $({ $($field),* })? => {
                            let mut fields = f.debug_struct(stringify!($variant));
                            $($( fields.field(stringify!($field), $field); )*)?
                            fields.finish()
                        }
                    )*
                }
            }
        }
    };
}

declare_error! {
/// Everything that can go wrong in `mp`.
///
/// Match on the variant to react to one kind of fault; `Display` gives a message meant for a
/// person, saying what to do next where there is something to do. `Debug` (`{:?}`, and what
/// `fn main() -> mp::Result<()>` prints after `Error: `) gives the same text, so a program that
/// ends with an error reads well; `{:#?}` gives the variant and its fields.
///
/// ```
/// let error = mp::split::split_ranges(10, 0).unwrap_err();
/// assert!(matches!(error, mp::Error::InvalidArgument { .. }));
/// assert!(error.to_string().starts_with("invalid argument:"));
/// assert_eq!(format!("{error:?}"), error.to_string());
/// assert!(format!("{error:#?}").starts_with("InvalidArgument {\n    message: \"cannot split"));
/// let boxed: Box<dyn std::error::Error> = error.into(); // works with `?` in any main
/// assert!(boxed.source().is_none());
/// ```
#[non_exhaustive]
pub enum Error {
    /// A call was given an argument it cannot work with (zero workers, a chunk size of 0, ...).
    InvalidArgument {
        /// What was wrong and what to pass instead.
        message: String,
    },
    /// A task function panicked inside a worker process. The worker itself survives.
    TaskPanicked {
        /// The panic message.
        message: String,
        /// `file:line:column` of the panic, when known.
        location: Option<String>,
        /// The index of the failing item in the input of `map` (None for a single `Process`).
        task_index: Option<usize>,
        /// The process id of the worker that ran it.
        pid: u32,
    },
    /// A worker process ended while it still owed results (killed, aborted, or `exit` called).
    WorkerDied {
        /// The worker's index in its pool, or None for a lone `Process`.
        worker: Option<usize>,
        /// Its process id.
        pid: u32,
        /// How it ended.
        reason: ExitReason,
        /// The input indices whose results were lost with it.
        lost_tasks: Vec<usize>,
    },
    /// A worker process could not be started, or died before it was ready.
    StartupFailed {
        /// What happened and what to check.
        message: String,
    },
    /// The process at the other end of a pipe, queue or connection is gone (Python's `EOFError`).
    Disconnected {
        /// Which endpoint saw it.
        endpoint: String,
    },
    /// A wait ran out of time. Nothing was lost: the operation can be retried.
    Timeout {
        /// What was being waited for.
        what: String,
        /// How long it waited.
        waited: Duration,
    },
    /// A pool that lost a worker refuses further work (Python's `BrokenProcessPool`).
    PoolBroken {
        /// The fault that broke it.
        cause: String,
    },
    /// One rank of a [`launch`](crate::launch)ed group failed; the others were stopped.
    RankFailed {
        /// The rank that failed first (or, of several, the one that did not just see another die).
        rank: usize,
        /// What went wrong there.
        error: Box<Error>,
    },
    /// A message could not be turned into bytes or back.
    Serialization {
        /// What the serializer said.
        message: String,
    },
    /// A message arrived damaged; see the message for the usual cause.
    Corrupted {
        /// What was wrong with it.
        message: String,
    },
    /// A typed message arrived whose type is not the one the receiver asked for: sending an
    /// `f64` and receiving a `usize`, say. Every typed message carries a fingerprint of its
    /// type, checked before it is decoded, so a wrong type is this error rather than a wrong
    /// value. The types must be the same up to references, `Box`/`Rc`/`Arc`/`Cow`, and slices
    /// or `str` against `Vec` or `String` (these are encoded alike).
    ///
    /// ```
    /// # fn main() -> mp::Result<()> {
    /// use mp::{Comm, Communicator};
    ///
    /// // Rank 1 sends an f64, rank 0 asks for a usize.
    /// fn disagree(comm: Comm, _: ()) -> String {
    ///     if comm.rank() == 1 {
    ///         comm.send(0, &2.5f64).unwrap();
    ///         return String::new();
    ///     }
    ///     let error = comm.recv::<usize>(1).unwrap_err();
    ///     assert!(matches!(&error, mp::Error::TypeMismatch { sent: Some(sent), expected }
    ///         if sent == "f64" && expected == "usize"));
    ///     error.to_string()
    /// }
    ///
    /// # mp::init();
    /// let message = mp::launch(2, disagree, ())?.remove(0);
    /// assert!(message.starts_with("received a `f64` but the receiver asked for a `usize`"));
    /// # Ok(()) }
    /// ```
    TypeMismatch {
        /// The sender's type, shortened (`Vec<f64>`, not `alloc::vec::Vec<f64>`); `None` when the
        /// message was too small to carry the name without losing its fast path.
        sent: Option<String>,
        /// The type the receiver asked for, shortened.
        expected: String,
    },
    /// Memory for a message could not be allocated: a message larger than this process may
    /// allocate (a memory limit, `ulimit -v`, or simply too little memory). The process goes
    /// on; where it was a receive, the message was read and dropped, so the connection stays
    /// usable. A send also gets it when the messages queued behind a receiver that is not
    /// reading would take more than half of the memory left: that message is not sent, the
    /// queued ones still go.
    OutOfMemory {
        /// The size of the allocation that failed, in bytes.
        bytes: u64,
        /// What the memory was for.
        what: String,
    },
    /// An operating-system call failed.
    Io {
        /// What `mp` was doing.
        context: String,
        /// The OS error.
        source: io::Error,
    },
}
} // declare_error!

impl Error {
    pub(crate) fn invalid(message: impl Into<String>) -> Error {
        Error::InvalidArgument { message: message.into() }
    }

    pub(crate) fn io(context: impl Into<String>, source: io::Error) -> Error {
        Error::Io { context: context.into(), source }
    }

    pub(crate) fn serialization(message: impl fmt::Display) -> Error {
        Error::Serialization { message: message.to_string() }
    }

    pub(crate) fn disconnected(endpoint: impl Into<String>) -> Error {
        Error::Disconnected { endpoint: endpoint.into() }
    }

    /// True when this error means the peer is gone (Python's `EOFError`).
    ///
    /// ```
    /// # fn main() -> mp::Result<()> {
    /// let (tx, rx) = mp::pipe_simplex::<u8>()?;
    /// drop(tx);
    /// assert!(rx.recv().unwrap_err().is_disconnected());
    /// # Ok(()) }
    /// ```
    pub fn is_disconnected(&self) -> bool {
        matches!(self, Error::Disconnected { .. })
    }

    /// True when this error is a timeout that may be retried.
    ///
    /// ```
    /// # fn main() -> mp::Result<()> {
    /// let (a, b) = mp::pipe::<u8>()?;
    /// assert!(b.recv_timeout(std::time::Duration::from_millis(5)).unwrap_err().is_timeout());
    /// a.send(&1)?; // retrying after a timeout is fine: nothing was lost
    /// assert_eq!(b.recv_timeout(std::time::Duration::from_secs(10))?, 1);
    /// # Ok(()) }
    /// ```
    pub fn is_timeout(&self) -> bool {
        matches!(self, Error::Timeout { .. })
    }
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Error::InvalidArgument { message } => write!(f, "invalid argument: {message}"),
            Error::TaskPanicked { message, location, task_index, pid } => {
                write!(f, "task")?;
                if let Some(index) = task_index {
                    write!(f, " {index}")?;
                }
                write!(f, " panicked in worker process {pid}")?;
                if let Some(location) = location {
                    write!(f, " at {location}")?;
                }
                write!(f, ": {message}")
            }
            Error::WorkerDied { worker, pid, reason, lost_tasks } => {
                match worker {
                    Some(worker) => write!(f, "worker {worker} (pid {pid}) {reason}")?,
                    None => write!(f, "process {pid} {reason}")?,
                }
                if !lost_tasks.is_empty() {
                    write!(f, " while running tasks {}", IndexList(lost_tasks))?;
                }
                write!(f, "; its results are lost")?;
                if worker.is_some() {
                    write!(f, " and the pool has been shut down")?;
                }
                Ok(())
            }
            Error::StartupFailed { message } => {
                write!(f, "could not start a worker process: {message}")
            }
            Error::Disconnected { endpoint } => write!(
                f,
                "{endpoint}: the other end is closed (its process exited or dropped it), so nothing more can arrive"
            ),
            Error::Timeout { what, waited } => {
                write!(f, "timed out after {waited:?} waiting for {what}")
            }
            Error::PoolBroken { cause } => {
                write!(f, "the pool is broken because {cause}; create a new Pool to go on")
            }
            Error::RankFailed { rank, error } => {
                write!(f, "rank {rank} failed, so all ranks were stopped: {error}")
            }
            Error::Serialization { message } => {
                write!(f, "could not (de)serialize a message: {message}")
            }
            Error::Corrupted { message } => write!(f, "a message arrived damaged: {message}"),
            Error::TypeMismatch { sent, expected } => {
                match sent {
                    Some(sent) => write!(f, "received a `{sent}`")?,
                    None => write!(
                        f,
                        "received a value of another type (a message this small travels without \
                         its type's name)"
                    )?,
                }
                write!(
                    f,
                    " but the receiver asked for a `{expected}`: the sender and the receiver must \
                     use the same type"
                )
            }
            Error::OutOfMemory { bytes, what } => write!(
                f,
                "cannot allocate {} for {what}: this process is out of memory or under a memory \
                 limit (ulimit -v, a cgroup); send it in smaller parts, or share it in a \
                 SharedArray",
                crate::units::Bytes(*bytes)
            ),
            Error::Io { context, source } => write!(f, "{context}: {source}"),
        }
    }
}

/// The readable text, as `Display`; `{:#?}` gives the structured form instead.
///
/// Readable because `fn main() -> mp::Result<()>` prints an error that ends the program with
/// `Debug`, and so do `unwrap` and `expect`. A cause that the text does not already include
/// (none of today's variants has one) follows on its own line.
impl fmt::Debug for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if f.alternate() {
            return self.fmt_structured(f);
        }
        let mut shown = self.to_string();
        let mut cause = std::error::Error::source(self);
        while let Some(error) = cause {
            let text = error.to_string();
            if !shown.contains(&text) {
                shown.push_str("\ncaused by: ");
                shown.push_str(&text);
            }
            cause = error.source();
        }
        f.write_str(&shown)
    }
}

impl std::error::Error for Error {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            Error::Io { source, .. } => Some(source),
            Error::RankFailed { error, .. } => Some(error.as_ref()),
            _ => None,
        }
    }
}

/// Formats `[0, 1, 2, ..., 9]` as "0, 1, 2 ... (10 in all)" so huge lists stay readable.
struct IndexList<'a>(&'a [usize]);

impl fmt::Display for IndexList<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        const SHOWN: usize = 8;
        for (position, index) in self.0.iter().take(SHOWN).enumerate() {
            if position > 0 {
                write!(f, ", ")?;
            }
            write!(f, "{index}")?;
        }
        if self.0.len() > SHOWN {
            write!(f, " ... ({} in all)", self.0.len())?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn worker_died_names_worker_signal_and_lost_tasks() {
        let error = Error::WorkerDied {
            worker: Some(1),
            pid: 42,
            reason: ExitReason::Signal(9),
            lost_tasks: (0..12).collect(),
        };
        let text = error.to_string();
        assert!(text.contains("worker 1 (pid 42) killed by signal 9 (SIGKILL)"), "{text}");
        assert!(text.contains("0, 1, 2, 3, 4, 5, 6, 7 ... (12 in all)"), "{text}");
    }

    fn failed_rank() -> Error {
        Error::RankFailed {
            rank: 0,
            error: Box::new(Error::TaskPanicked {
                message: "the input was \"two\"".to_string(),
                location: Some("src/main.rs:4:5".to_string()),
                task_index: None,
                pid: 42,
            }),
        }
    }

    #[test]
    fn debug_reads_as_the_display_text() {
        let error = failed_rank();
        let text = format!("{error:?}");
        assert_eq!(text, error.to_string());
        assert_eq!(
            text,
            "rank 0 failed, so all ranks were stopped: task panicked in worker process 42 at \
             src/main.rs:4:5: the input was \"two\""
        );
        // What `fn main() -> mp::Result<()>` and `unwrap` print: no structure, no escapes.
        let unwrapped = format!("{:?}", Err::<(), _>(error));
        assert!(!unwrapped.contains("RankFailed {") && !unwrapped.contains("\\\""), "{unwrapped}");
        let io = Error::io("opening the pipe", io::Error::from_raw_os_error(24));
        assert_eq!(format!("{io:?}"), io.to_string());
    }

    #[test]
    fn alternate_debug_is_the_structured_form() {
        let text = format!("{:#?}", failed_rank());
        let expected = r#"RankFailed {
    rank: 0,
    error: TaskPanicked {
        message: "the input was \"two\"",
        location: Some(
            "src/main.rs:4:5",
        ),
        task_index: None,
        pid: 42,
    },
}"#;
        assert_eq!(text, expected);
        let io = Error::io("reading", io::Error::from_raw_os_error(2));
        let text = format!("{io:#?}");
        assert!(text.starts_with("Io {\n    context: \"reading\",\n    source: Os {"), "{text}");
    }

    /// An error type whose text leaves its cause out, as a future variant's might.
    #[derive(Debug)]
    struct Outer(io::Error);

    impl fmt::Display for Outer {
        fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
            f.write_str("outer")
        }
    }

    impl std::error::Error for Outer {
        fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
            Some(&self.0)
        }
    }

    #[test]
    fn debug_adds_causes_the_text_leaves_out() {
        let source = io::Error::other(Outer(io::Error::other("innermost")));
        let error = Error::io("context", source);
        // The io::Error's text is Outer's ("outer"), which leaves out "innermost".
        assert_eq!(format!("{error:?}"), "context: outer\ncaused by: innermost");
    }
}
