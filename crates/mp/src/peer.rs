//! Endpoints backed by a transport outside mp: a [`Peer`].
//!
//! mp's own endpoints ([`Connection`](crate::Connection), [`Sender`](crate::Sender),
//! [`Receiver`](crate::Receiver)) and [`Comm`](crate::Comm) normally sit on mp's pipes. Built
//! with `from_peer` (or [`Comm::from_peers`](crate::Comm::from_peers)), they carry their
//! messages through a `Peer` instead: another transport that moves one connection's messages,
//! in order, to and from one other process, for example one MPI rank (the `mp-mpi` crate).
//! mp still does the encoding, so a typed message is the same bytes (type fingerprint, then
//! postcard) as on a pipe, and a student's code that takes a `Connection`, a `Receiver` or
//! `&impl Communicator` runs unchanged on either. mp itself knows nothing of MPI.
//!
//! A peer-backed end behaves like a local one, with one exception: it cannot travel to another
//! process (in a [`Process`](crate::Process) argument, a pool task or a message), and a value
//! sent through it cannot carry pipe ends, queues or shared arrays, only plain data.

use std::{os::fd::OwnedFd, time::Duration};

use crate::{Error, Result};

/// What a message is: mp's typed encoding (4-byte type fingerprint + postcard) or raw bytes.
///
/// A typed message is what `send` produces and `recv` expects; raw bytes are what
/// `send_bytes`/`send_slice` produce and `recv_bytes`/`recv_vec` expect. A peer carries the
/// kind beside the body (an MPI peer might use two tags).
///
/// ```
/// use mp::MessageKind;
/// assert_ne!(MessageKind::Typed, MessageKind::Bytes);
/// ```
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum MessageKind {
    /// mp's typed encoding: a type fingerprint and the postcard bytes of the value.
    Typed,
    /// Raw bytes, as they were sent.
    Bytes,
}

/// A transport outside mp that carries one connection's messages, in order, to and from one
/// other process (for example one MPI rank). mp does the encoding; the peer moves bodies.
///
/// An endpoint built on a peer ([`Connection::from_peer`](crate::Connection::from_peer),
/// [`Sender::from_peer`](crate::Sender::from_peer),
/// [`Receiver::from_peer`](crate::Receiver::from_peer),
/// [`Comm::from_peers`](crate::Comm::from_peers)) sends typed values with
/// [`Peer::send_owned`] and raw bytes with [`Peer::send_borrowed`], receives both with
/// [`Peer::recv_into`], and checks the kind and the type fingerprint itself, with the same
/// errors as on a pipe.
///
/// Here, two peers that hand messages to each other in memory (a real one would talk to
/// another process):
///
/// ```
/// use std::{collections::VecDeque, sync::{Arc, Condvar, Mutex}, time::{Duration, Instant}};
/// use mp::{MessageKind, Peer};
///
/// type Mailbox = Arc<(Mutex<VecDeque<(MessageKind, Vec<u8>)>>, Condvar)>;
///
/// #[derive(Debug)]
/// struct InMemory { name: &'static str, inbox: Mailbox, outbox: Mailbox }
///
/// impl InMemory {
///     fn pair() -> (InMemory, InMemory) {
///         let (left, right) = (Mailbox::default(), Mailbox::default());
///         (
///             InMemory { name: "left", inbox: left.clone(), outbox: right.clone() },
///             InMemory { name: "right", inbox: right, outbox: left },
///         )
///     }
///
///     /// Waits until the inbox has a message or `timeout` passed; true if it has one.
///     fn wait(&self, timeout: Option<Duration>) -> bool {
///         let deadline = timeout.map(|timeout| Instant::now() + timeout);
///         let mut inbox = self.inbox.0.lock().unwrap();
///         while inbox.is_empty() {
///             let left = deadline.map(|deadline| deadline.saturating_duration_since(Instant::now()));
///             match left {
///                 None => inbox = self.inbox.1.wait(inbox).unwrap(),
///                 Some(left) if left.is_zero() => return false,
///                 Some(left) => inbox = self.inbox.1.wait_timeout(inbox, left).unwrap().0,
///             }
///         }
///         true
///     }
/// }
///
/// impl Peer for InMemory {
///     fn describe(&self) -> String {
///         format!("the in-memory peer {}", self.name)
///     }
///     fn send_owned(&self, kind: MessageKind, body: Vec<u8>) -> mp::Result<()> {
///         self.outbox.0.lock().unwrap().push_back((kind, body));
///         self.outbox.1.notify_all();
///         Ok(())
///     }
///     fn send_borrowed(&self, kind: MessageKind, body: &[u8]) -> mp::Result<()> {
///         self.send_owned(kind, body.to_vec())
///     }
///     fn recv_into(&self, buffer: &mut Vec<u8>, timeout: Option<Duration>) -> mp::Result<MessageKind> {
///         if !self.wait(timeout) {
///             let waited = timeout.unwrap_or_default();
///             return Err(mp::Error::Timeout { what: format!("a message from {}", self.describe()), waited });
///         }
///         let (kind, body) = self.inbox.0.lock().unwrap().pop_front().expect("one is waiting");
///         buffer.clear();
///         buffer.extend_from_slice(&body);
///         Ok(kind)
///     }
///     fn poll(&self, timeout: Duration) -> mp::Result<bool> {
///         Ok(self.wait(Some(timeout)))
///     }
/// }
///
/// # fn main() -> mp::Result<()> {
/// # mp::init();
/// let (left, right) = InMemory::pair();
/// let a = mp::Connection::<(u32, String)>::from_peer(Arc::new(left));
/// let b = mp::Connection::<(u32, String)>::from_peer(Arc::new(right));
/// a.send(&(1, "one".to_string()))?;
/// assert_eq!(b.recv()?, (1, "one".to_string()));
/// b.send_slice(&[1.5f64, 2.5])?;
/// assert_eq!(a.recv_vec::<f64>()?, [1.5, 2.5]);
/// assert!(a.recv_timeout(Duration::from_millis(1)).unwrap_err().is_timeout());
/// // It cannot be handed to another process:
/// fn first(conn: mp::Connection<(u32, String)>) -> u32 { conn.recv().unwrap().0 }
/// let error = mp::Process::spawn(first, b).unwrap_err();
/// assert!(error.to_string().contains("connected to the in-memory peer right cannot be handed"));
/// # Ok(()) }
/// ```
pub trait Peer: std::fmt::Debug + Send + Sync + 'static {
    /// Names the other end in error messages, e.g. "MPI rank 3".
    fn describe(&self) -> String;
    /// Sends one message whose body the peer may keep. Must return without waiting for the
    /// receiver.
    fn send_owned(&self, kind: MessageKind, body: Vec<u8>) -> Result<()>;
    /// Sends one message from a borrowed body. May wait until the receiver has taken it.
    fn send_borrowed(&self, kind: MessageKind, body: &[u8]) -> Result<()>;
    /// Waits for the next message from this peer (at most `timeout` if given: then
    /// `Error::Timeout`, nothing lost), replaces `buffer`'s contents with its body (reusing the
    /// allocation) and returns its kind.
    fn recv_into(&self, buffer: &mut Vec<u8>, timeout: Option<Duration>) -> Result<MessageKind>;
    /// Whether a message is waiting, waiting up to `timeout` for one.
    fn poll(&self, timeout: Duration) -> Result<bool>;
}

/// Sends a value from `wire::encode` or `wire::encode_postcard` to `peer`; a value with
/// descriptors inside (pipe ends, queues, shared arrays) is refused, and nothing is sent.
#[cold]
#[inline(never)]
pub(crate) fn send_encoded(peer: &dyn Peer, (body, fds): (Vec<u8>, Vec<OwnedFd>)) -> Result<()> {
    if !fds.is_empty() {
        return Err(Error::invalid(format!(
            "pipe ends, queues and shared arrays cannot travel to {}, only plain values",
            peer.describe()
        )));
    }
    peer.send_owned(MessageKind::Typed, body)
}

/// Receives the next message from `peer`, which must be typed, and decodes it with `decode`
/// (`wire::decode` or `wire::decode_postcard`: the fingerprint check is theirs).
#[inline(never)]
pub(crate) fn recv_typed<R>(
    peer: &dyn Peer,
    timeout: Option<Duration>,
    decode: impl FnOnce(&[u8], Vec<OwnedFd>) -> Result<R>,
) -> Result<R> {
    let mut body = Vec::new();
    match peer.recv_into(&mut body, timeout)? {
        MessageKind::Typed => decode(&body, Vec::new()),
        MessageKind::Bytes => Err(crate::channel::expected_typed()),
    }
}

/// Receives the next message from `peer`, which must be raw bytes, into `buffer`.
#[cold]
#[inline(never)]
pub(crate) fn recv_bytes_into(
    peer: &dyn Peer,
    buffer: &mut Vec<u8>,
    timeout: Option<Duration>,
) -> Result<()> {
    match peer.recv_into(buffer, timeout)? {
        MessageKind::Bytes => Ok(()),
        MessageKind::Typed => Err(crate::channel::expected_bytes()),
    }
}

/// Why a peer-backed end cannot be serialized.
pub(crate) fn cannot_travel(peer: &dyn Peer) -> String {
    format!(
        "an end connected to {} cannot be handed to another process: only mp's own pipe ends \
         can travel; create the connection in the process that uses it",
        peer.describe()
    )
}
