//! A queue with many producer processes and one consumer: Python's `multiprocessing.Queue`
//! (and what Python needs a `Manager().Queue()` for: it can be passed to pool workers).
//!
//! The process that creates a [`Queue`] owns it and is the only one that can `get`; every
//! process holding a copy can `put`. Each producing process gets its own connection, so items
//! from one producer arrive in the order it put them, but **the interleaving of different
//! producers is not deterministic**: it changes from run to run. Restore an order by sending an
//! index with each item.
//!
//! A thread in the owning process receives items as they come, so `put` never waits for the
//! consumer, and a producer can finish and exit before anyone calls `get`.

use std::{
    collections::VecDeque,
    fmt,
    io::{self, IoSlice, Read, Write},
    marker::PhantomData,
    os::{
        fd::{AsFd, AsRawFd, OwnedFd},
        unix::net::UnixStream,
    },
    sync::{Arc, Condvar, Mutex},
    thread::JoinHandle,
    time::{Duration, Instant},
};

use serde::{Deserialize, Deserializer, Serialize, Serializer, de::DeserializeOwned};

use crate::{
    Error, Result,
    channel::Link,
    sys,
    wire::{self, BodyKind, Frame, FrameReader, PassedFd, ReadOutcome},
};

/// A many-producer, one-consumer queue of `T` between processes.
///
/// [`Queue::get`] waits like Python's `q.get()`, as long as it takes, even after every other
/// process holding the queue has died: mp cannot know that no item will come, since the owner
/// itself (any of its threads, with any handle) can always still put. Bound the wait with
/// [`Queue::get_timeout`] wherever a producer may die.
///
/// ```
/// # fn main() -> mp::Result<()> {
/// # mp::init();
/// fn produce(queue: mp::Queue<u32>) -> () {
///     for item in 0..3 {
///         queue.put(&item).unwrap();
///     }
/// }
///
/// let queue = mp::Queue::<u32>::new()?;
/// let mut producer = mp::Process::spawn(produce, queue.clone())?;
/// producer.join()?;
/// let items: Vec<u32> = (0..3).map(|_| queue.get()).collect::<mp::Result<_>>()?;
/// assert_eq!(items, [0, 1, 2]); // one producer: its order is kept
/// # Ok(()) }
/// ```
pub struct Queue<T> {
    shared: Arc<Shared>,
    _type: PhantomData<fn(T) -> T>,
}

struct Shared {
    /// Where producers hand in the receiving end of a new connection.
    connector: OwnedFd,
    /// This process's connection to the owner, made at the first `put`.
    producer: Mutex<Option<Arc<Link>>>,
    /// Present only in the process that created the queue.
    owner: Option<Owner>,
}

struct Owner {
    inbox: Arc<Inbox>,
    stop: UnixStream,
    receiver: Option<JoinHandle<()>>,
}

#[derive(Default)]
struct Inbox {
    frames: Mutex<VecDeque<Frame>>,
    arrived: Condvar,
}

impl<T> Queue<T> {
    /// Creates a queue owned by this process (Python's `Queue()`). A thread of this process
    /// receives the items put by every process.
    ///
    /// ```
    /// # fn main() -> mp::Result<()> {
    /// # mp::init();
    /// let queue = mp::Queue::<String>::new()?;
    /// queue.put(&"hi".to_string())?;
    /// assert_eq!(queue.get()?, "hi");
    /// # Ok(()) }
    /// ```
    pub fn new() -> Result<Queue<T>> {
        let (connector, accept_end) = sys::socket_pair(sys::SocketKind::SeqPacket)
            .map_err(|error| Error::io("creating a queue (socketpair)", error))?;
        let (stop, stop_receiver) = UnixStream::pair()
            .map_err(|error| Error::io("creating a queue's stop signal", error))?;
        stop_receiver
            .set_nonblocking(true)
            .map_err(|error| Error::io("creating a queue's stop signal", error))?;
        let inbox = Arc::new(Inbox::default());
        let receiver = {
            let inbox = Arc::clone(&inbox);
            std::thread::Builder::new()
                .name("mp-queue".into())
                .spawn(move || receive_items(&accept_end, &stop_receiver, &inbox))
                .map_err(|error| Error::io("starting a queue's receiving thread", error))?
        };
        let owner = Owner { inbox, stop, receiver: Some(receiver) };
        Ok(Queue {
            shared: Arc::new(Shared { connector, producer: Mutex::new(None), owner: Some(owner) }),
            _type: PhantomData,
        })
    }

    /// True in the process that created the queue, the only one that can `get`.
    ///
    /// ```
    /// # fn main() -> mp::Result<()> {
    /// # mp::init();
    /// fn owns(queue: mp::Queue<u8>) -> bool { queue.is_owner() }
    ///
    /// let queue = mp::Queue::<u8>::new()?;
    /// assert!(queue.is_owner());
    /// assert!(!mp::Process::spawn(owns, queue.clone())?.join()?);
    /// # Ok(()) }
    /// ```
    pub fn is_owner(&self) -> bool {
        self.shared.owner.is_some()
    }

    fn producer(&self) -> Result<Arc<Link>> {
        let mut producer = self.shared.producer.lock().unwrap_or_else(|poison| poison.into_inner());
        if let Some(link) = producer.as_ref() {
            return Ok(Arc::clone(link));
        }
        let (ours, theirs) = sys::socket_pair(sys::SocketKind::Stream)
            .map_err(|error| Error::io("connecting to a queue (socketpair)", error))?;
        hand_over(&self.shared.connector, &theirs)?;
        let link = Link::new(ours, "queue")?;
        *producer = Some(Arc::clone(&link));
        Ok(link)
    }

    fn inbox(&self) -> Result<&Inbox> {
        match &self.shared.owner {
            Some(owner) => Ok(&owner.inbox),
            None => Err(Error::invalid(
                "Queue::get works only in the process that created the queue; other processes can \
                 only put. To send work to many processes, use a Pool or one pipe per process",
            )),
        }
    }

    fn take_frame(&self, timeout: Option<Duration>) -> Result<Frame> {
        let inbox = self.inbox()?;
        let deadline = timeout.map(|timeout| Instant::now() + timeout);
        let mut frames = inbox.frames.lock().unwrap_or_else(|poison| poison.into_inner());
        loop {
            if let Some(frame) = frames.pop_front() {
                return Ok(frame);
            }
            frames = match deadline {
                None => inbox.arrived.wait(frames).unwrap_or_else(|poison| poison.into_inner()),
                Some(deadline) => {
                    let remaining = deadline.saturating_duration_since(Instant::now());
                    if remaining.is_zero() {
                        return Err(Error::Timeout {
                            what: "an item on the queue".into(),
                            waited: timeout.unwrap_or_default(),
                        });
                    }
                    inbox
                        .arrived
                        .wait_timeout(frames, remaining)
                        .unwrap_or_else(|poison| poison.into_inner())
                        .0
                }
            };
        }
    }
}

impl<T> Queue<T> {
    /// The same queue, declared to carry `U` (for [`crate::testing::retype_queue`]).
    pub(crate) fn retyped<U>(self) -> Queue<U> {
        Queue { shared: self.shared, _type: PhantomData }
    }
}

impl<T: Serialize + 'static> Queue<T> {
    /// Adds an item (Python's `q.put(item)`). Returns without waiting for the consumer.
    ///
    /// Any process holding a copy of the queue can put, pool workers included.
    ///
    /// ```
    /// # fn main() -> mp::Result<()> {
    /// # mp::init();
    /// fn report((queue, x): (mp::Queue<u32>, u32)) { queue.put(&(x * 10)).unwrap() }
    ///
    /// let queue = mp::Queue::<u32>::new()?;
    /// let pool = mp::Pool::new(2)?;
    /// pool.map(report, (0..3).map(|x| (queue.clone(), x)))?;
    /// let mut items: Vec<u32> = (0..3).map(|_| queue.get()).collect::<mp::Result<_>>()?;
    /// items.sort(); // producers interleave differently from run to run
    /// assert_eq!(items, [0, 10, 20]);
    /// # Ok(()) }
    /// ```
    pub fn put(&self, item: &T) -> Result<()> {
        self.producer()?.send_value(item)
    }
}

impl<T: DeserializeOwned + 'static> Queue<T> {
    /// Takes the next item, waiting for one (Python's `q.get()`). Owner only: elsewhere it is
    /// an error. An item put with another type is [`Error::TypeMismatch`] naming both.
    ///
    /// It waits as long as it takes: a producer that died is not an error here, and neither is
    /// the death of every producer, because mp cannot know that no item will come (the owner
    /// can always still put, from any thread). Where producers may die, use
    /// [`Queue::get_timeout`].
    ///
    /// ```
    /// # fn main() -> mp::Result<()> {
    /// # mp::init();
    /// fn get_fails(queue: mp::Queue<u8>) -> bool { queue.get().is_err() }
    ///
    /// let queue = mp::Queue::<u8>::new()?;
    /// queue.put(&1)?;
    /// queue.put(&2)?;
    /// assert_eq!((queue.get()?, queue.get()?), (1, 2));
    /// assert!(mp::Process::spawn(get_fails, queue.clone())?.join()?);
    /// # Ok(()) }
    /// ```
    pub fn get(&self) -> Result<T> {
        let frame = self.take_frame(None)?;
        decode_item(frame)
    }

    /// As [`Queue::get`], but gives up with `Error::Timeout` after `timeout`.
    ///
    /// With `Duration::ZERO` it is Python's `q.get_nowait()`, and what to use for `q.empty()`
    /// or `q.qsize()`, which mp does not have: take an item if one is there. As Python's docs
    /// warn of those, the answer may be out of date at once: other processes put and get
    /// meanwhile, and an item just put may still be on its way.
    ///
    /// ```
    /// # fn main() -> mp::Result<()> {
    /// use std::time::Duration;
    /// let queue = mp::Queue::<u8>::new()?;
    /// assert!(queue.get_timeout(Duration::ZERO).unwrap_err().is_timeout()); // empty for now
    /// assert!(queue.get_timeout(std::time::Duration::from_millis(10)).unwrap_err().is_timeout());
    /// queue.put(&1)?;
    /// assert_eq!(queue.get_timeout(std::time::Duration::from_secs(10))?, 1);
    /// # Ok(()) }
    /// ```
    pub fn get_timeout(&self, timeout: Duration) -> Result<T> {
        let frame = self.take_frame(Some(timeout))?;
        decode_item(frame)
    }
}

fn decode_item<T: DeserializeOwned + 'static>(frame: Frame) -> Result<T> {
    if frame.kind != BodyKind::Value {
        return Err(Error::serialization("a queue item arrived in a form mp does not expect"));
    }
    wire::decode(&frame.body, frame.fds)
}

/// Sends the receiving end of a new connection to the queue's owner.
fn hand_over(connector: &OwnedFd, end: &OwnedFd) -> Result<()> {
    let marker = [1u8];
    loop {
        match sys::send_vectored(connector.as_fd(), &[IoSlice::new(&marker)], &[end.as_raw_fd()]) {
            Ok(_) => return Ok(()),
            Err(error) if error.kind() == io::ErrorKind::WouldBlock => {
                let interest = sys::Ready { writable: true, ..Default::default() };
                sys::poll(&[(connector.as_fd(), interest)], Some(Duration::from_millis(100)))
                    .map_err(|error| Error::io("connecting to a queue", error))?;
            }
            Err(error)
                if matches!(
                    error.kind(),
                    io::ErrorKind::BrokenPipe | io::ErrorKind::ConnectionReset
                ) =>
            {
                return Err(Error::disconnected("queue (its owner process is gone)"));
            }
            Err(error) => return Err(Error::io("connecting to a queue", error)),
        }
    }
}

/// The owner's receiving thread: accepts producer connections and reads their items.
fn receive_items(accept_end: &OwnedFd, stop: &UnixStream, inbox: &Inbox) {
    let mut producers: Vec<(OwnedFd, FrameReader)> = Vec::new();
    loop {
        let mut interest = vec![
            (stop.as_fd(), sys::Ready { readable: true, ..Default::default() }),
            (accept_end.as_fd(), sys::Ready { readable: true, ..Default::default() }),
        ];
        interest.extend(
            producers
                .iter()
                .map(|(fd, _)| (fd.as_fd(), sys::Ready { readable: true, ..Default::default() })),
        );
        let Ok(ready) = sys::poll(&interest, None) else { return };
        if ready[0].readable {
            let mut byte = [0u8; 1];
            // Data or end-of-stream on the stop socket both mean: the owner is gone.
            if !matches!((&*stop).read(&mut byte), Err(ref error) if error.kind() == io::ErrorKind::WouldBlock)
            {
                return;
            }
        }
        // Only the producers that were polled; ones accepted now are polled next round.
        let n_polled = producers.len();
        if ready[1].readable {
            accept_producers(accept_end, &mut producers);
        }
        let mut closed = Vec::new();
        for (position, (fd, reader)) in producers.iter_mut().enumerate().take(n_polled) {
            if !ready[position + 2].readable {
                continue;
            }
            loop {
                match reader.read_frame(fd.as_fd()) {
                    Ok(ReadOutcome::Frame(frame)) => {
                        inbox
                            .frames
                            .lock()
                            .unwrap_or_else(|poison| poison.into_inner())
                            .push_back(frame);
                        inbox.arrived.notify_one();
                    }
                    Ok(ReadOutcome::WouldBlock) => break,
                    // A producer that is gone (or garbled its stream) is dropped; others go on.
                    Ok(ReadOutcome::Closed) | Err(_) => {
                        closed.push(position);
                        break;
                    }
                }
            }
        }
        for position in closed.into_iter().rev() {
            producers.swap_remove(position);
        }
    }
}

fn accept_producers(accept_end: &OwnedFd, producers: &mut Vec<(OwnedFd, FrameReader)>) {
    loop {
        let mut marker = Vec::with_capacity(16);
        let mut fds = Vec::new();
        match sys::recv_into_spare(accept_end.as_fd(), &mut marker, 16, &mut fds) {
            Ok(0) => return,
            Ok(_) => {
                for fd in fds {
                    if sys::set_nonblocking(fd.as_fd()).is_ok() {
                        producers.push((fd, FrameReader::default()));
                    }
                }
            }
            Err(_) => return,
        }
    }
}

impl Drop for Owner {
    fn drop(&mut self) {
        let _ = self.stop.write(&[1]);
        if let Some(receiver) = self.receiver.take() {
            let _ = receiver.join();
        }
    }
}

/// Clones in one process share one connection, so their items stay in order.
impl<T> Clone for Queue<T> {
    fn clone(&self) -> Self {
        Queue { shared: Arc::clone(&self.shared), _type: PhantomData }
    }
}

impl<T> fmt::Debug for Queue<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Queue")
            .field("item", &std::any::type_name::<T>())
            .field("owner", &self.is_owner())
            .finish()
    }
}

/// A queue travels as its connector: the receiving process can put, not get.
impl<T> Serialize for Queue<T> {
    fn serialize<S: Serializer>(&self, serializer: S) -> std::result::Result<S::Ok, S::Error> {
        let duplicate = self.shared.connector.try_clone().map_err(serde::ser::Error::custom)?;
        PassedFd(duplicate).serialize(serializer)
    }
}

impl<'de, T> Deserialize<'de> for Queue<T> {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> std::result::Result<Self, D::Error> {
        let PassedFd(connector) = PassedFd::deserialize(deserializer)?;
        Ok(Queue {
            shared: Arc::new(Shared { connector, producer: Mutex::new(None), owner: None }),
            _type: PhantomData,
        })
    }
}
