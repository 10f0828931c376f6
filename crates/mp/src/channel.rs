//! Pipes between processes: Python's `multiprocessing.Pipe`, typed.
//!
//! [`pipe`] gives two [`Connection`]s that both send and receive (Python's `Pipe()`);
//! [`pipe_simplex`] gives a [`Sender`] and a [`Receiver`] (Python's `Pipe(duplex=False)`, which
//! returns them the other way round). Endpoints are handed to other processes by passing them in
//! a [`Process`](crate::Process) argument, a pool task, or a message on another pipe.
//!
//! * `recv` blocks until a message arrives; when the other end is gone it returns
//!   [`Error::Disconnected`] (Python raises `EOFError`).
//! * `send` returns once the message is handed to the operating system, or queued behind it when
//!   the receiver is not reading: two processes that both send before they receive never
//!   deadlock, whatever the message sizes. Queued messages are still delivered after the sending
//!   handle is dropped, and a process waits for them before it exits.
//! * Typed values are encoded with postcard. Bulk data should go through
//!   [`Connection::send_bytes`] or [`Connection::send_slice`], which copy the bytes as they are.

use std::{
    borrow::Cow,
    fmt,
    marker::PhantomData,
    os::fd::{AsFd, OwnedFd},
    sync::{Arc, Condvar, Mutex},
    time::{Duration, Instant},
};

use serde::{Deserialize, Deserializer, Serialize, Serializer, de::DeserializeOwned};

use crate::{
    Error, Result, sys,
    wire::{self, BodyKind, Frame, FrameReader, OutFrame, Outbox, PassedFd},
};

/// How long `send` keeps writing directly to a full socket before it queues the rest.
const SEND_PATIENCE: Duration = Duration::from_millis(5);

/// One end of a stream socket with framing, shared by the typed endpoint types.
pub(crate) struct Link {
    fd: OwnedFd,
    name: &'static str,
    reader: Mutex<FrameReader>,
    writer: Mutex<WriteSide>,
}

#[derive(Default)]
struct WriteSide {
    outbox: Outbox,
    /// Set once the peer is gone; every later send fails.
    broken: bool,
}

impl fmt::Debug for Link {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Link").field("fd", &self.fd).field("name", &self.name).finish()
    }
}

impl Link {
    pub(crate) fn new(fd: OwnedFd, name: &'static str) -> Result<Arc<Link>> {
        sys::set_nonblocking(fd.as_fd())
            .map_err(|error| Error::io("preparing a connection", error))?;
        Ok(Arc::new(Link { fd, name, reader: Mutex::default(), writer: Mutex::default() }))
    }

    pub(crate) fn pair(name: &'static str) -> Result<(Arc<Link>, Arc<Link>)> {
        let (left, right) = sys::socket_pair(sys::SocketKind::Stream)
            .map_err(|error| Error::io("creating a pipe (socketpair)", error))?;
        Ok((Link::new(left, name)?, Link::new(right, name)?))
    }

    pub(crate) fn fd(&self) -> &OwnedFd {
        &self.fd
    }

    /// Sends one frame; see the module docs for when this returns.
    pub(crate) fn send_frame(self: &Arc<Self>, frame: OutFrame<'_>) -> Result<()> {
        let mut writer = self.writer.lock().unwrap_or_else(|poison| poison.into_inner());
        if writer.broken {
            return Err(Error::disconnected(self.name));
        }
        if !writer.outbox.is_empty() {
            // A flusher is draining earlier messages: keep the order by queueing behind them.
            writer.outbox.push(frame);
            return Ok(());
        }
        match wire::write_with_patience(self.fd.as_fd(), frame, SEND_PATIENCE) {
            Ok(None) => Ok(()),
            Ok(Some(rest)) => {
                writer.outbox.push(rest);
                drop(writer);
                start_flusher(Arc::clone(self));
                Ok(())
            }
            Err(error) if is_peer_gone(&error) => {
                writer.broken = true;
                Err(Error::disconnected(self.name))
            }
            Err(error) => Err(Error::io(format!("sending on {}", self.name), error)),
        }
    }

    pub(crate) fn send_value<T: Serialize + ?Sized>(self: &Arc<Self>, value: &T) -> Result<()> {
        let (body, fds) = wire::encode(value)?;
        self.send_frame(OutFrame::new(BodyKind::Value, Vec::new(), Cow::Owned(body), fds)?)
    }

    pub(crate) fn send_bytes(self: &Arc<Self>, bytes: &[u8]) -> Result<()> {
        self.send_frame(OutFrame::new(
            BodyKind::Bytes,
            Vec::new(),
            Cow::Borrowed(bytes),
            Vec::new(),
        )?)
    }

    /// Receives one frame; `Ok(None)` when `timeout` passed first.
    pub(crate) fn recv_frame(&self, timeout: Option<Duration>) -> Result<Option<Frame>> {
        let mut reader = self.reader.lock().unwrap_or_else(|poison| poison.into_inner());
        wire::read_frame_blocking(self.fd.as_fd(), &mut reader, timeout, self.name)
    }

    pub(crate) fn recv_value<T: DeserializeOwned>(&self, timeout: Option<Duration>) -> Result<T> {
        let frame = self.recv_or_timeout(timeout)?;
        if frame.kind != BodyKind::Value {
            return Err(Error::serialization(
                "expected a typed message but the sender used send_bytes/send_slice; \
                 receive it with recv_bytes or recv_vec",
            ));
        }
        wire::decode(&frame.body, frame.fds)
    }

    pub(crate) fn recv_bytes(&self, timeout: Option<Duration>) -> Result<Vec<u8>> {
        let frame = self.recv_or_timeout(timeout)?;
        if frame.kind != BodyKind::Bytes {
            return Err(Error::serialization(
                "expected raw bytes but the sender used send (a typed message); receive it with recv",
            ));
        }
        Ok(frame.body)
    }

    fn recv_or_timeout(&self, timeout: Option<Duration>) -> Result<Frame> {
        match self.recv_frame(timeout)? {
            Some(frame) => Ok(frame),
            None => Err(Error::Timeout {
                what: format!("a message on {}", self.name),
                waited: timeout.unwrap_or_default(),
            }),
        }
    }

    /// True when a message (or the end of the stream) is ready to be received.
    pub(crate) fn poll(&self, timeout: Duration) -> Result<bool> {
        let ready = sys::poll(
            &[(self.fd.as_fd(), sys::Ready { readable: true, ..Default::default() })],
            Some(timeout),
        )
        .map_err(|error| Error::io("polling a connection", error))?;
        Ok(ready[0].readable)
    }
}

fn is_peer_gone(error: &std::io::Error) -> bool {
    matches!(error.kind(), std::io::ErrorKind::BrokenPipe | std::io::ErrorKind::ConnectionReset)
}

// ---------------------------------------------------------------------------------------------
// Flushers: one thread per link with queued messages, alive only while the queue is non-empty.

static FLUSHERS: Mutex<usize> = Mutex::new(0);
static FLUSHERS_DONE: Condvar = Condvar::new();

fn start_flusher(link: Arc<Link>) {
    static FLUSH_AT_EXIT: std::sync::Once = std::sync::Once::new();
    FLUSH_AT_EXIT.call_once(|| sys::at_exit(flush_at_exit));
    *FLUSHERS.lock().unwrap_or_else(|poison| poison.into_inner()) += 1;
    let spawned = std::thread::Builder::new().name("mp-flusher".into()).spawn(move || {
        flush_until_empty(&link);
        let mut count = FLUSHERS.lock().unwrap_or_else(|poison| poison.into_inner());
        *count -= 1;
        FLUSHERS_DONE.notify_all();
    });
    if spawned.is_err() {
        // No thread to spare: the messages stay queued and the next send or exit flushes them.
        *FLUSHERS.lock().unwrap_or_else(|poison| poison.into_inner()) -= 1;
    }
}

fn flush_until_empty(link: &Link) {
    loop {
        {
            let mut writer = link.writer.lock().unwrap_or_else(|poison| poison.into_inner());
            match writer.outbox.flush_some(link.fd.as_fd()) {
                Ok(true) => return,
                Ok(false) => {}
                Err(_) => {
                    // The receiver is gone; what it never read cannot be delivered.
                    writer.broken = true;
                    writer.outbox = Outbox::default();
                    return;
                }
            }
        }
        let interest = sys::Ready { writable: true, ..Default::default() };
        let _ = sys::poll(&[(link.fd.as_fd(), interest)], Some(Duration::from_millis(100)));
    }
}

extern "C" fn flush_at_exit() {
    wait_for_queued_messages(Duration::from_secs(10));
}

/// Waits until every queued message of this process has been delivered (or its receiver is
/// gone). Called before a worker reports its result and when a process exits, so nothing
/// handed to `send` is lost. Gives up after `patience` without progress, saying so on stderr.
pub(crate) fn wait_for_queued_messages(patience: Duration) {
    let mut count = FLUSHERS.lock().unwrap_or_else(|poison| poison.into_inner());
    let mut last_change = Instant::now();
    let mut last_count = *count;
    while *count > 0 {
        let (guard, _) = FLUSHERS_DONE
            .wait_timeout(count, Duration::from_millis(50))
            .unwrap_or_else(|p| p.into_inner());
        count = guard;
        if *count != last_count {
            last_count = *count;
            last_change = Instant::now();
        } else if last_change.elapsed() > patience {
            eprintln!(
                "mp: process {} is exiting with messages that no process has received after {patience:?}; \
                 make sure every message sent is also received",
                std::process::id()
            );
            return;
        }
    }
}

// ---------------------------------------------------------------------------------------------
// The typed endpoints.

/// Creates a two-way pipe: Python's `a, b = multiprocessing.Pipe()`.
///
/// Both ends can send and receive messages of type `T`.
///
/// ```
/// # fn main() -> mp::Result<()> {
/// let (a, b) = mp::pipe::<String>()?;
/// a.send(&"ping".to_string())?;
/// assert_eq!(b.recv()?, "ping");
/// b.send(&"pong".to_string())?;
/// assert_eq!(a.recv()?, "pong");
/// # Ok(()) }
/// ```
pub fn pipe<T>() -> Result<(Connection<T>, Connection<T>)> {
    let (left, right) = Link::pair("pipe")?;
    Ok((Connection::from_link(left), Connection::from_link(right)))
}

/// Creates a one-way pipe: a send-only end and a receive-only end.
///
/// Python's `Pipe(duplex=False)` returns `(receiver, sender)`; Rust's convention (as in
/// `std::sync::mpsc::channel`) is sender first.
///
/// ```
/// # fn main() -> mp::Result<()> {
/// let (tx, rx) = mp::pipe_simplex::<u64>()?;
/// tx.send(&7)?;
/// drop(tx);
/// assert_eq!(rx.recv()?, 7);
/// assert!(rx.recv().unwrap_err().is_disconnected()); // Python's EOFError
/// # Ok(()) }
/// ```
pub fn pipe_simplex<T>() -> Result<(Sender<T>, Receiver<T>)> {
    let (left, right) = Link::pair("pipe")?;
    Ok((Sender { link: left, _type: PhantomData }, Receiver { link: right, _type: PhantomData }))
}

/// One end of a two-way pipe: sends and receives messages of type `T`.
///
/// Pass it to another process in the argument of [`Process::spawn`](crate::Process::spawn)
/// (or a pool task) to talk to that process.
///
/// ```
/// # fn main() -> mp::Result<()> {
/// # mp::init();
/// fn echo_twice(conn: mp::Connection<String>) {
///     let text = conn.recv().unwrap();
///     conn.send(&format!("{text}{text}")).unwrap();
/// }
///
/// let (here, there) = mp::pipe::<String>()?;
/// let mut child = mp::Process::spawn(echo_twice, there)?;
/// here.send(&"ab".to_string())?;
/// assert_eq!(here.recv()?, "abab");
/// child.join()?;
/// # Ok(()) }
/// ```
pub struct Connection<T> {
    link: Arc<Link>,
    _type: PhantomData<fn(T) -> T>,
}

/// The sending end of a one-way pipe.
///
/// ```
/// # fn main() -> mp::Result<()> {
/// # mp::init();
/// fn count_up((tx, n): (mp::Sender<u32>, u32)) {
///     for i in 0..n {
///         tx.send(&i).unwrap();
///     }
/// }
///
/// let (tx, rx) = mp::pipe_simplex::<u32>()?;
/// mp::Process::spawn(count_up, (tx, 3))?.join()?;
/// assert_eq!([rx.recv()?, rx.recv()?, rx.recv()?], [0, 1, 2]);
/// assert!(rx.recv().unwrap_err().is_disconnected()); // the only sender is gone
/// # Ok(()) }
/// ```
pub struct Sender<T> {
    link: Arc<Link>,
    _type: PhantomData<fn(T)>,
}

/// The receiving end of a one-way pipe.
///
/// ```
/// # fn main() -> mp::Result<()> {
/// # mp::init();
/// fn total(rx: mp::Receiver<u64>) -> u64 {
///     (0..3).map(|_| rx.recv().unwrap()).sum()
/// }
///
/// let (tx, rx) = mp::pipe_simplex::<u64>()?;
/// let mut child = mp::Process::spawn(total, rx)?;
/// for value in [10, 20, 30] {
///     tx.send(&value)?;
/// }
/// assert_eq!(child.join()?, 60);
/// # Ok(()) }
/// ```
pub struct Receiver<T> {
    link: Arc<Link>,
    _type: PhantomData<fn() -> T>,
}

macro_rules! endpoint_common {
    ($endpoint:ident, $what:literal) => {
        impl<T> fmt::Debug for $endpoint<T> {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.debug_struct(stringify!($endpoint))
                    .field("fd", &self.link.fd)
                    .field("message", &std::any::type_name::<T>())
                    .finish()
            }
        }

        impl<T> Serialize for $endpoint<T> {
            fn serialize<S: Serializer>(
                &self,
                serializer: S,
            ) -> std::result::Result<S::Ok, S::Error> {
                let duplicate = self.link.fd.try_clone().map_err(serde::ser::Error::custom)?;
                PassedFd(duplicate).serialize(serializer)
            }
        }

        impl<'de, T> Deserialize<'de> for $endpoint<T> {
            fn deserialize<D: Deserializer<'de>>(
                deserializer: D,
            ) -> std::result::Result<Self, D::Error> {
                let PassedFd(fd) = PassedFd::deserialize(deserializer)?;
                let link = Link::new(fd, $what).map_err(serde::de::Error::custom)?;
                Ok($endpoint { link, _type: PhantomData })
            }
        }
    };
}

endpoint_common!(Connection, "pipe");
endpoint_common!(Sender, "pipe");
endpoint_common!(Receiver, "pipe");

impl<T: Serialize> Connection<T> {
    /// Sends a message (Python's `conn.send(obj)`). See the module docs for when it returns.
    ///
    /// ```
    /// # fn main() -> mp::Result<()> {
    /// let (a, b) = mp::pipe::<Vec<i32>>()?;
    /// a.send(&vec![1, 2, 3])?;
    /// assert_eq!(b.recv()?, [1, 2, 3]);
    /// # Ok(()) }
    /// ```
    pub fn send(&self, value: &T) -> Result<()> {
        self.link.send_value(value)
    }
}

impl<T: DeserializeOwned> Connection<T> {
    /// Waits for the next message (Python's `conn.recv()`); `Error::Disconnected` once the
    /// other end is closed and everything it sent has been received.
    ///
    /// ```
    /// # fn main() -> mp::Result<()> {
    /// let (a, b) = mp::pipe::<u8>()?;
    /// a.send(&1)?;
    /// drop(a);
    /// assert_eq!(b.recv()?, 1); // sent before the close: still delivered
    /// assert!(b.recv().unwrap_err().is_disconnected());
    /// # Ok(()) }
    /// ```
    pub fn recv(&self) -> Result<T> {
        self.link.recv_value(None)
    }

    /// As [`Connection::recv`], but gives up with `Error::Timeout` after `timeout`.
    ///
    /// ```
    /// # fn main() -> mp::Result<()> {
    /// let (a, _b) = mp::pipe::<u8>()?;
    /// let error = a.recv_timeout(std::time::Duration::from_millis(10)).unwrap_err();
    /// assert!(error.is_timeout());
    /// # Ok(()) }
    /// ```
    pub fn recv_timeout(&self, timeout: Duration) -> Result<T> {
        self.link.recv_value(Some(timeout))
    }
}

impl<T> Connection<T> {
    /// Sends raw bytes as one message, copied as they are (Python's `send_bytes`).
    ///
    /// ```
    /// # fn main() -> mp::Result<()> {
    /// let (a, b) = mp::pipe::<()>()?;
    /// a.send_bytes(b"hello")?;
    /// assert_eq!(b.recv_bytes()?, b"hello");
    /// # Ok(()) }
    /// ```
    pub fn send_bytes(&self, bytes: &[u8]) -> Result<()> {
        self.link.send_bytes(bytes)
    }

    /// Receives one message sent with [`Connection::send_bytes`] (Python's `recv_bytes`).
    ///
    /// A typed message sent with [`Connection::send`] is an error here: receive it with `recv`.
    ///
    /// ```
    /// # fn main() -> mp::Result<()> {
    /// let (a, b) = mp::pipe::<u32>()?;
    /// a.send_bytes(&[0xff, 0])?;
    /// assert_eq!(b.recv_bytes()?, [0xff, 0]);
    /// a.send(&7)?;
    /// assert!(b.recv_bytes().is_err());
    /// # Ok(()) }
    /// ```
    pub fn recv_bytes(&self) -> Result<Vec<u8>> {
        self.link.recv_bytes(None)
    }

    /// Sends a slice of plain numbers as its bytes: the fast path for arrays.
    ///
    /// ```
    /// # fn main() -> mp::Result<()> {
    /// let (a, b) = mp::pipe::<()>()?;
    /// a.send_slice(&[1.5f64, 2.5])?;
    /// assert_eq!(b.recv_vec::<f64>()?, [1.5, 2.5]);
    /// # Ok(()) }
    /// ```
    pub fn send_slice<E: bytemuck::Pod>(&self, items: &[E]) -> Result<()> {
        self.link.send_bytes(bytemuck::cast_slice(items))
    }

    /// Receives a message sent with [`Connection::send_slice`], as elements of type `E`.
    ///
    /// Fails if the bytes are not a whole number of `E`s (the sender used another type).
    ///
    /// ```
    /// # fn main() -> mp::Result<()> {
    /// let (a, b) = mp::pipe::<()>()?;
    /// a.send_slice(&[1u32, 2, 3])?;
    /// assert_eq!(b.recv_vec::<u32>()?, [1, 2, 3]);
    /// a.send_slice(&[1u8, 2, 3])?;
    /// assert!(b.recv_vec::<u32>().is_err());
    /// # Ok(()) }
    /// ```
    pub fn recv_vec<E: bytemuck::Pod>(&self) -> Result<Vec<E>> {
        bytes_to_vec(self.link.recv_bytes(None)?)
    }

    /// True if a message is ready, waiting at most `timeout` (Python's `conn.poll(timeout)`).
    ///
    /// ```
    /// # fn main() -> mp::Result<()> {
    /// use std::time::Duration;
    /// let (a, b) = mp::pipe::<u8>()?;
    /// assert!(!b.poll(Duration::ZERO)?);
    /// a.send(&1)?;
    /// assert!(b.poll(Duration::from_secs(10))?);
    /// assert_eq!(b.recv()?, 1);
    /// # Ok(()) }
    /// ```
    pub fn poll(&self, timeout: Duration) -> Result<bool> {
        self.link.poll(timeout)
    }

    /// Splits this end into its sending and receiving halves, which can go to different threads.
    ///
    /// ```
    /// # fn main() -> mp::Result<()> {
    /// let (a, b) = mp::pipe::<u8>()?;
    /// let (a_tx, a_rx) = a.split();
    /// let listener = std::thread::spawn(move || a_rx.recv());
    /// b.send(&9)?;
    /// assert_eq!(listener.join().unwrap()?, 9);
    /// a_tx.send(&1)?;
    /// assert_eq!(b.recv()?, 1);
    /// # Ok(()) }
    /// ```
    pub fn split(self) -> (Sender<T>, Receiver<T>) {
        (
            Sender { link: Arc::clone(&self.link), _type: PhantomData },
            Receiver { link: self.link, _type: PhantomData },
        )
    }

    pub(crate) fn from_link(link: Arc<Link>) -> Connection<T> {
        Connection { link, _type: PhantomData }
    }

    pub(crate) fn link(&self) -> &Arc<Link> {
        &self.link
    }
}

pub(crate) fn bytes_to_vec<E: bytemuck::Pod>(bytes: Vec<u8>) -> Result<Vec<E>> {
    let size = std::mem::size_of::<E>();
    if size == 0 || !bytes.len().is_multiple_of(size) {
        return Err(Error::serialization(format!(
            "received {} bytes, which is not a whole number of {}-byte elements; \
             the sender used a different element type",
            bytes.len(),
            size
        )));
    }
    Ok(bytemuck::pod_collect_to_vec(&bytes))
}

impl<T: Serialize> Sender<T> {
    /// Sends a message. See the module docs for when it returns.
    ///
    /// ```
    /// # fn main() -> mp::Result<()> {
    /// let (tx, rx) = mp::pipe_simplex::<(u8, String)>()?;
    /// tx.send(&(1, "one".to_string()))?;
    /// assert_eq!(rx.recv()?, (1, "one".to_string()));
    /// # Ok(()) }
    /// ```
    pub fn send(&self, value: &T) -> Result<()> {
        self.link.send_value(value)
    }
}

impl<T> Sender<T> {
    /// Sends raw bytes as one message, copied as they are.
    ///
    /// ```
    /// # fn main() -> mp::Result<()> {
    /// let (tx, rx) = mp::pipe_simplex::<()>()?;
    /// tx.send_bytes(b"raw")?;
    /// assert_eq!(rx.recv_bytes()?, b"raw");
    /// # Ok(()) }
    /// ```
    pub fn send_bytes(&self, bytes: &[u8]) -> Result<()> {
        self.link.send_bytes(bytes)
    }

    /// Sends a slice of plain numbers as its bytes.
    ///
    /// ```
    /// # fn main() -> mp::Result<()> {
    /// let (tx, rx) = mp::pipe_simplex::<()>()?;
    /// tx.send_slice(&[0.5f32, -1.0])?;
    /// assert_eq!(rx.recv_vec::<f32>()?, [0.5, -1.0]);
    /// # Ok(()) }
    /// ```
    pub fn send_slice<E: bytemuck::Pod>(&self, items: &[E]) -> Result<()> {
        self.link.send_bytes(bytemuck::cast_slice(items))
    }
}

/// Clones share one connection: messages from clones in one process never interleave.
impl<T> Clone for Sender<T> {
    fn clone(&self) -> Self {
        Sender { link: Arc::clone(&self.link), _type: PhantomData }
    }
}

impl<T: DeserializeOwned> Receiver<T> {
    /// Waits for the next message; `Error::Disconnected` once every sender is gone.
    ///
    /// ```
    /// # fn main() -> mp::Result<()> {
    /// let (tx, rx) = mp::pipe_simplex::<u8>()?;
    /// let tx2 = tx.clone();
    /// tx.send(&1)?;
    /// drop(tx);
    /// assert_eq!(rx.recv()?, 1);
    /// drop(tx2); // the last sender
    /// assert!(rx.recv().unwrap_err().is_disconnected());
    /// # Ok(()) }
    /// ```
    pub fn recv(&self) -> Result<T> {
        self.link.recv_value(None)
    }

    /// As [`Receiver::recv`], but gives up with `Error::Timeout` after `timeout`.
    ///
    /// ```
    /// # fn main() -> mp::Result<()> {
    /// use std::time::Duration;
    /// let (tx, rx) = mp::pipe_simplex::<u8>()?;
    /// assert!(rx.recv_timeout(Duration::from_millis(5)).unwrap_err().is_timeout());
    /// tx.send(&3)?;
    /// assert_eq!(rx.recv_timeout(Duration::from_secs(10))?, 3);
    /// # Ok(()) }
    /// ```
    pub fn recv_timeout(&self, timeout: Duration) -> Result<T> {
        self.link.recv_value(Some(timeout))
    }
}

impl<T> Receiver<T> {
    /// Receives one message sent with `send_bytes`.
    ///
    /// ```
    /// # fn main() -> mp::Result<()> {
    /// let (tx, rx) = mp::pipe_simplex::<()>()?;
    /// tx.send_bytes(&[1, 2, 3])?;
    /// assert_eq!(rx.recv_bytes()?, [1, 2, 3]);
    /// # Ok(()) }
    /// ```
    pub fn recv_bytes(&self) -> Result<Vec<u8>> {
        self.link.recv_bytes(None)
    }

    /// Receives a message sent with `send_slice`, as elements of type `E`.
    ///
    /// ```
    /// # fn main() -> mp::Result<()> {
    /// let (tx, rx) = mp::pipe_simplex::<()>()?;
    /// tx.send_slice(&[u64::MAX, 0])?;
    /// assert_eq!(rx.recv_vec::<u64>()?, [u64::MAX, 0]);
    /// # Ok(()) }
    /// ```
    pub fn recv_vec<E: bytemuck::Pod>(&self) -> Result<Vec<E>> {
        bytes_to_vec(self.link.recv_bytes(None)?)
    }

    /// True if a message is ready, waiting at most `timeout`.
    ///
    /// ```
    /// # fn main() -> mp::Result<()> {
    /// use std::time::Duration;
    /// let (tx, rx) = mp::pipe_simplex::<u8>()?;
    /// assert!(!rx.poll(Duration::ZERO)?);
    /// tx.send(&1)?;
    /// assert!(rx.poll(Duration::from_secs(10))?);
    /// # Ok(()) }
    /// ```
    pub fn poll(&self, timeout: Duration) -> Result<bool> {
        self.link.poll(timeout)
    }
}
