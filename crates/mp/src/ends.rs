//! What the ends of a pipe have in common: [`SendEnd`] (anything you can send on) and
//! [`RecvEnd`] (anything you can receive from), and typed receives into a reused vector
//! (`recv_into`).
//!
//! A [`Connection`] is both, a [`Sender`] a `SendEnd`, a [`Receiver`] a `RecvEnd`, so a
//! function that only sends (or only receives) can take either end of either kind of pipe, as
//! a Python function takes any object with a `send` method. The methods are the endpoints' own
//! methods, which work without importing the traits; import them (`use mp::{RecvEnd,
//! SendEnd};`) to write such functions.

use std::{cell::Cell, time::Duration};

use serde::{Serialize, de::DeserializeOwned};

use crate::{Connection, Receiver, Result, Sender, wire};

/// Anything you can send on: a [`Connection`] or a [`Sender`].
///
/// ```
/// # fn main() -> mp::Result<()> {
/// # mp::init();
/// use mp::SendEnd;
///
/// // Works with either end that can send: it is generic over "anything I can send on".
/// fn countdown(out: &impl SendEnd<u32>, from: u32) -> mp::Result<()> {
///     for i in (0..=from).rev() {
///         out.send(&i)?;
///     }
///     Ok(())
/// }
///
/// fn countdown_task(tx: mp::Sender<u32>) { countdown(&tx, 2).unwrap() }
///
/// let (tx, rx) = mp::pipe_simplex::<u32>()?;
/// mp::Process::spawn(countdown_task, tx)?.join()?; // a Sender, in another process
/// assert_eq!([rx.recv()?, rx.recv()?, rx.recv()?], [2, 1, 0]);
///
/// let (a, b) = mp::pipe::<u32>()?;
/// countdown(&a, 1)?; // a Connection
/// assert_eq!([b.recv()?, b.recv()?], [1, 0]);
/// # Ok(()) }
/// ```
pub trait SendEnd<T> {
    /// Sends a typed message: [`Connection::send`], [`Sender::send`].
    ///
    /// ```
    /// # fn main() -> mp::Result<()> {
    /// use mp::SendEnd;
    /// fn hello(out: &impl SendEnd<String>) -> mp::Result<()> { out.send(&"hi".to_string()) }
    ///
    /// let (tx, rx) = mp::pipe_simplex::<String>()?;
    /// hello(&tx)?;
    /// assert_eq!(rx.recv()?, "hi");
    /// # Ok(()) }
    /// ```
    fn send(&self, value: &T) -> Result<()>
    where
        T: Serialize + 'static;

    /// Sends raw bytes as one message: [`Connection::send_bytes`], [`Sender::send_bytes`].
    ///
    /// ```
    /// # fn main() -> mp::Result<()> {
    /// use mp::SendEnd;
    /// fn raw<T>(out: &impl SendEnd<T>) -> mp::Result<()> { out.send_bytes(b"raw") }
    ///
    /// let (a, b) = mp::pipe::<()>()?;
    /// raw(&a)?;
    /// assert_eq!(b.recv_bytes()?, b"raw");
    /// # Ok(()) }
    /// ```
    fn send_bytes(&self, bytes: &[u8]) -> Result<()>;

    /// Sends a slice of plain numbers as its bytes: [`Connection::send_slice`],
    /// [`Sender::send_slice`].
    ///
    /// ```
    /// # fn main() -> mp::Result<()> {
    /// use mp::SendEnd;
    /// fn ones<T>(out: &impl SendEnd<T>, n: usize) -> mp::Result<()> {
    ///     out.send_slice(&vec![1.0f64; n])
    /// }
    ///
    /// let (tx, rx) = mp::pipe_simplex::<()>()?;
    /// ones(&tx, 3)?;
    /// assert_eq!(rx.recv_vec::<f64>()?, [1.0; 3]);
    /// # Ok(()) }
    /// ```
    fn send_slice<E: bytemuck::Pod>(&self, items: &[E]) -> Result<()>;
}

/// Anything you can receive from: a [`Connection`] or a [`Receiver`].
///
/// ```
/// # fn main() -> mp::Result<()> {
/// # mp::init();
/// use mp::RecvEnd;
///
/// // Adds up messages until the senders are gone, from either end that can receive.
/// fn total(input: &impl RecvEnd<u64>) -> u64 {
///     let mut sum = 0;
///     while let Ok(value) = input.recv() {
///         sum += value;
///     }
///     sum
/// }
///
/// fn total_task(rx: mp::Receiver<u64>) -> u64 { total(&rx) }
///
/// let (tx, rx) = mp::pipe_simplex::<u64>()?;
/// let mut child = mp::Process::spawn(total_task, rx)?; // a Receiver, in another process
/// for value in [1, 2, 3] {
///     tx.send(&value)?;
/// }
/// drop(tx);
/// assert_eq!(child.join()?, 6);
///
/// let (a, b) = mp::pipe::<u64>()?;
/// a.send(&40)?;
/// a.send(&2)?;
/// drop(a);
/// assert_eq!(total(&b), 42); // a Connection
/// # Ok(()) }
/// ```
pub trait RecvEnd<T> {
    /// Waits for the next typed message: [`Connection::recv`], [`Receiver::recv`].
    ///
    /// ```
    /// # fn main() -> mp::Result<()> {
    /// use mp::RecvEnd;
    /// fn next_word(input: &impl RecvEnd<String>) -> String { input.recv().unwrap() }
    ///
    /// let (a, b) = mp::pipe::<String>()?;
    /// a.send(&"word".to_string())?;
    /// assert_eq!(next_word(&b), "word");
    /// # Ok(()) }
    /// ```
    fn recv(&self) -> Result<T>
    where
        T: DeserializeOwned + 'static;

    /// As [`RecvEnd::recv`], but gives up with [`Error::Timeout`](crate::Error::Timeout) after `timeout`.
    ///
    /// ```
    /// # fn main() -> mp::Result<()> {
    /// use mp::RecvEnd;
    /// use std::time::Duration;
    /// fn quick(input: &impl RecvEnd<u8>) -> mp::Result<u8> {
    ///     input.recv_timeout(Duration::from_millis(5))
    /// }
    ///
    /// let (_tx, rx) = mp::pipe_simplex::<u8>()?;
    /// assert!(quick(&rx).unwrap_err().is_timeout());
    /// # Ok(()) }
    /// ```
    fn recv_timeout(&self, timeout: Duration) -> Result<T>
    where
        T: DeserializeOwned + 'static;

    /// Receives one message sent with `send_bytes`: [`Connection::recv_bytes`],
    /// [`Receiver::recv_bytes`].
    ///
    /// ```
    /// # fn main() -> mp::Result<()> {
    /// use mp::RecvEnd;
    /// fn bytes<T>(input: &impl RecvEnd<T>) -> Vec<u8> { input.recv_bytes().unwrap() }
    ///
    /// let (tx, rx) = mp::pipe_simplex::<()>()?;
    /// tx.send_bytes(&[1, 2])?;
    /// assert_eq!(bytes(&rx), [1, 2]);
    /// # Ok(()) }
    /// ```
    fn recv_bytes(&self) -> Result<Vec<u8>>;

    /// As [`RecvEnd::recv_bytes`], into `buffer`, reusing its allocation:
    /// [`Connection::recv_bytes_into`], [`Receiver::recv_bytes_into`].
    ///
    /// ```
    /// # fn main() -> mp::Result<()> {
    /// use mp::RecvEnd;
    /// fn into<T>(input: &impl RecvEnd<T>, buffer: &mut Vec<u8>) { input.recv_bytes_into(buffer).unwrap() }
    ///
    /// let (a, b) = mp::pipe::<()>()?;
    /// let mut buffer = Vec::new();
    /// a.send_bytes(b"abc")?;
    /// into(&b, &mut buffer);
    /// assert_eq!(buffer, b"abc");
    /// # Ok(()) }
    /// ```
    fn recv_bytes_into(&self, buffer: &mut Vec<u8>) -> Result<()>;

    /// Receives a message sent with `send_slice` as a new vector of `E`:
    /// [`Connection::recv_vec`], [`Receiver::recv_vec`].
    ///
    /// ```
    /// # fn main() -> mp::Result<()> {
    /// use mp::RecvEnd;
    /// fn floats<T>(input: &impl RecvEnd<T>) -> Vec<f32> { input.recv_vec().unwrap() }
    ///
    /// let (a, b) = mp::pipe::<()>()?;
    /// a.send_slice(&[0.5f32, 1.5])?;
    /// assert_eq!(floats(&b), [0.5, 1.5]);
    /// # Ok(()) }
    /// ```
    fn recv_vec<E: bytemuck::Pod>(&self) -> Result<Vec<E>>;

    /// Receives a message sent with `send_slice` into `items`, reusing its allocation:
    /// [`Connection::recv_into`], [`Receiver::recv_into`].
    ///
    /// ```
    /// # fn main() -> mp::Result<()> {
    /// use mp::RecvEnd;
    /// fn refill<T>(input: &impl RecvEnd<T>, items: &mut Vec<u64>) { input.recv_into(items).unwrap() }
    ///
    /// let (tx, rx) = mp::pipe_simplex::<()>()?;
    /// let mut items = Vec::new();
    /// tx.send_slice(&[7u64, 8])?;
    /// refill(&rx, &mut items);
    /// assert_eq!(items, [7, 8]);
    /// # Ok(()) }
    /// ```
    fn recv_into<E: bytemuck::Pod>(&self, items: &mut Vec<E>) -> Result<()>;

    /// True if a message is ready, waiting at most `timeout`: [`Connection::poll`],
    /// [`Receiver::poll`].
    ///
    /// ```
    /// # fn main() -> mp::Result<()> {
    /// use mp::RecvEnd;
    /// use std::time::Duration;
    /// fn ready<T>(input: &impl RecvEnd<T>) -> bool { input.poll(Duration::ZERO).unwrap() }
    ///
    /// let (tx, rx) = mp::pipe_simplex::<u8>()?;
    /// assert!(!ready(&rx));
    /// tx.send(&1)?;
    /// assert!(rx.poll(Duration::from_secs(10))?);
    /// # Ok(()) }
    /// ```
    fn poll(&self, timeout: Duration) -> Result<bool>;
}

// Each method calls the endpoint's own (inherent) method of the same name: `Type::method`
// resolves to an inherent method before a trait's.
macro_rules! send_end {
    ($endpoint:ident) => {
        impl<T> SendEnd<T> for $endpoint<T> {
            fn send(&self, value: &T) -> Result<()>
            where
                T: Serialize + 'static,
            {
                $endpoint::send(self, value)
            }

            fn send_bytes(&self, bytes: &[u8]) -> Result<()> {
                $endpoint::send_bytes(self, bytes)
            }

            fn send_slice<E: bytemuck::Pod>(&self, items: &[E]) -> Result<()> {
                $endpoint::send_slice(self, items)
            }
        }
    };
}

macro_rules! recv_end {
    ($endpoint:ident) => {
        impl<T> RecvEnd<T> for $endpoint<T> {
            fn recv(&self) -> Result<T>
            where
                T: DeserializeOwned + 'static,
            {
                $endpoint::recv(self)
            }

            fn recv_timeout(&self, timeout: Duration) -> Result<T>
            where
                T: DeserializeOwned + 'static,
            {
                $endpoint::recv_timeout(self, timeout)
            }

            fn recv_bytes(&self) -> Result<Vec<u8>> {
                $endpoint::recv_bytes(self)
            }

            fn recv_bytes_into(&self, buffer: &mut Vec<u8>) -> Result<()> {
                $endpoint::recv_bytes_into(self, buffer)
            }

            fn recv_vec<E: bytemuck::Pod>(&self) -> Result<Vec<E>> {
                $endpoint::recv_vec(self)
            }

            fn recv_into<E: bytemuck::Pod>(&self, items: &mut Vec<E>) -> Result<()> {
                $endpoint::recv_into(self, items)
            }

            fn poll(&self, timeout: Duration) -> Result<bool> {
                $endpoint::poll(self, timeout)
            }
        }
    };
}

send_end!(Connection);
send_end!(Sender);
recv_end!(Connection);
recv_end!(Receiver);

impl<T> Connection<T> {
    /// Receives a message sent with [`Connection::send_slice`] into `items`, whose allocation
    /// is reused: the typed [`Connection::recv_bytes_into`], for arrays received again and
    /// again (a fresh vector of many megabytes costs more than the transfer).
    ///
    /// On success `items` holds exactly the message's elements; its capacity grows only when
    /// a message is larger than any before (that allocation is fallible: too large for memory
    /// is [`Error::OutOfMemory`](crate::Error::OutOfMemory)). Bytes that are not a whole number of `E`s (the sender used
    /// another element type) are an error, as with [`Connection::recv_vec`]; a typed message
    /// (sent with `send`) is an error too. After an error the contents of `items` are
    /// unspecified.
    ///
    /// The bytes are copied from the pipe straight into `items`' allocation: one copy, as
    /// with [`Connection::recv_bytes_into`], and no byte buffer beside the array. (On a pipe
    /// end carried by MPI they go through a buffer this thread keeps, then into `items`.)
    ///
    /// ```
    /// # fn main() -> mp::Result<()> {
    /// let (a, b) = mp::pipe::<()>()?;
    /// let mut items: Vec<f64> = Vec::new();
    /// a.send_slice(&[1.0f64; 1000])?;
    /// b.recv_into(&mut items)?;
    /// assert_eq!(items, [1.0; 1000]);
    /// let capacity = items.capacity();
    /// a.send_slice(&[2.0f64, 3.0])?;
    /// b.recv_into(&mut items)?;
    /// assert_eq!(items, [2.0, 3.0]);
    /// assert_eq!(items.capacity(), capacity); // the same allocation
    /// a.send_slice(&[1u8, 2, 3])?; // 3 bytes are no whole f64
    /// assert!(b.recv_into(&mut items).is_err());
    /// # Ok(()) }
    /// ```
    pub fn recv_into<E: bytemuck::Pod>(&self, items: &mut Vec<E>) -> Result<()> {
        *items = self.end().recv_elements(std::mem::take(items))?;
        Ok(())
    }
}

impl<T> Receiver<T> {
    /// Receives a message sent with `send_slice` into `items`, reusing its allocation (see
    /// [`Connection::recv_into`]).
    ///
    /// ```
    /// # fn main() -> mp::Result<()> {
    /// let (tx, rx) = mp::pipe_simplex::<()>()?;
    /// let mut items: Vec<u32> = Vec::with_capacity(1 << 16);
    /// for round in 0..3u32 {
    ///     tx.send_slice(&[round; 100])?;
    ///     rx.recv_into(&mut items)?;
    ///     assert_eq!(items, [round; 100]);
    /// }
    /// assert_eq!(items.capacity(), 1 << 16);
    /// # Ok(()) }
    /// ```
    pub fn recv_into<E: bytemuck::Pod>(&self, items: &mut Vec<E>) -> Result<()> {
        *items = self.end().recv_elements(std::mem::take(items))?;
        Ok(())
    }
}

thread_local! {
    /// The byte buffer a peer's `recv_into` receives into before the copy into the caller's
    /// vector.
    static RECEIVE_BUFFER: Cell<Vec<u8>> = const { Cell::new(Vec::new()) };
}

/// Receives bytes with `receive` into this thread's reused buffer, then copies them into
/// `items` as elements of `E`.
pub(crate) fn recv_into_reusing<E: bytemuck::Pod>(
    items: &mut Vec<E>,
    receive: impl FnOnce(&mut Vec<u8>) -> Result<()>,
) -> Result<()> {
    let mut buffer = RECEIVE_BUFFER.take();
    let result = receive(&mut buffer).and_then(|()| copy_into(&buffer, items));
    RECEIVE_BUFFER.set(buffer);
    result
}

/// Makes `items` exactly the elements of `bytes`, growing it (fallibly) only if needed.
fn copy_into<E: bytemuck::Pod>(bytes: &[u8], items: &mut Vec<E>) -> Result<()> {
    // The same error as `recv_vec`'s.
    let len = crate::channel::element_count::<E>(bytes.len())?;
    if len > items.len() {
        items.try_reserve_exact(len - items.len()).map_err(|_| {
            wire::out_of_memory(
                bytes.len(),
                format!("an array received as {}", crate::units::Bytes(bytes.len() as u64)),
            )
        })?;
    }
    // Only elements past the old length are written twice (zeroed, then copied over).
    items.resize(len, E::zeroed());
    bytemuck::cast_slice_mut::<E, u8>(items).copy_from_slice(bytes);
    Ok(())
}
