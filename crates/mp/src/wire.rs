//! Frames on a Unix stream socket: how every byte between two `mp` processes travels.
//!
//! A frame is a 24-byte header, a small serialized `meta` part and a raw `body`. Typed messages
//! put their postcard encoding in the body; bulk bytes go in the body as they are, never
//! serialized element by element. Handles (pipes, queues, shared arrays) travel as descriptors
//! attached to the header with `SCM_RIGHTS`.
//!
//! Sockets are non-blocking. [`FrameReader`] assembles frames from whatever bytes are there;
//! [`Outbox`] writes queued frames as far as the socket takes them. Blocking calls are built on
//! these with `poll`, so one code path serves the blocking API and the pool's event loop.

use std::{
    borrow::Cow,
    cell::RefCell,
    collections::VecDeque,
    io::{self, IoSlice},
    os::fd::{AsFd, AsRawFd, BorrowedFd, OwnedFd, RawFd},
};

use serde::{Deserialize, Deserializer, Serialize, Serializer, de::DeserializeOwned};

use crate::{Error, Result, ring::Ring, sys};

const MAGIC: u32 = 0x6d70_4652; // "mpFR"
const HEADER_LEN: usize = 24;
/// Meta parts are small control records; anything larger is a damaged header.
const MAX_META_LEN: u32 = 16 << 20;
/// 1 TiB: a larger body length can only be a damaged header.
const MAX_BODY_LEN: u64 = 1 << 40;
/// Fresh receive buffers at least this large ask for huge pages.
pub(crate) const HUGE_PAGES_FROM: usize = 4 << 20;
/// Frames whose body is at least this large are copied into a ring and out of it with stores
/// that bypass the caches (`sys::copy_streaming`): they do not fit in them anyway.
const STREAMING_FROM: usize = 4 << 20;
/// Bytes read per `recv` call for large bodies.
const READ_STEP: usize = 4 << 20;

/// What the body of a frame holds.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[repr(u8)]
pub(crate) enum BodyKind {
    /// A postcard-encoded value.
    Value = 1,
    /// Raw bytes from `send_bytes` or `send_slice`.
    Bytes = 2,
}

impl BodyKind {
    fn from_byte(byte: u8) -> Option<BodyKind> {
        match byte {
            1 => Some(BodyKind::Value),
            2 => Some(BodyKind::Bytes),
            _ => None,
        }
    }
}

fn header_check(words: &[u8]) -> u32 {
    // A multiply-xor mix of the first 20 header bytes, read as three words: a few cycles, and
    // bytes from an interleaved write change it but for a chance in 2^32.
    let word = |range: std::ops::Range<usize>| {
        let mut bytes = [0u8; 8];
        bytes[..range.len()].copy_from_slice(&words[range]);
        u64::from_le_bytes(bytes)
    };
    let mut hash = word(0..8).wrapping_mul(0x9e37_79b9_7f4a_7c15);
    hash = (hash ^ word(8..16)).wrapping_mul(0xc2b2_ae3d_27d4_eb4f);
    hash = (hash ^ word(16..20)).wrapping_mul(0x1656_67b1_9e37_79f9);
    (hash >> 32) as u32 ^ hash as u32
}

fn encode_header(
    kind: BodyKind,
    meta_len: usize,
    body_len: usize,
    n_fds: usize,
) -> [u8; HEADER_LEN] {
    let mut header = [0u8; HEADER_LEN];
    header[0..4].copy_from_slice(&MAGIC.to_le_bytes());
    header[4..8].copy_from_slice(&(meta_len as u32).to_le_bytes());
    header[8..16].copy_from_slice(&(body_len as u64).to_le_bytes());
    header[16] = kind as u8;
    header[17] = n_fds as u8;
    let check = header_check(&header[..20]);
    header[20..24].copy_from_slice(&check.to_le_bytes());
    header
}

struct Header {
    kind: BodyKind,
    meta_len: usize,
    body_len: usize,
    n_fds: usize,
}

fn decode_header(header: &[u8; HEADER_LEN]) -> Result<Header> {
    let word =
        |range: std::ops::Range<usize>| u32::from_le_bytes(header[range].try_into().unwrap());
    let body_len = u64::from_le_bytes(header[8..16].try_into().unwrap());
    let meta_len = word(4..8);
    let intact = word(0..4) == MAGIC
        && word(20..24) == header_check(&header[..20])
        && meta_len <= MAX_META_LEN
        && body_len <= MAX_BODY_LEN;
    let kind = BodyKind::from_byte(header[16]);
    match kind {
        Some(kind) if intact => Ok(Header {
            kind,
            meta_len: meta_len as usize,
            body_len: body_len as usize,
            n_fds: header[17] as usize,
        }),
        _ => Err(Error::Corrupted {
            message: "the frame header is not valid. The usual cause is two processes (or threads \
                      without mp's locking) writing into the same sending end at once, so their \
                      bytes interleave; give each sender its own pipe, or use a Queue"
                .into(),
        }),
    }
}

/// A frame as it arrives.
#[derive(Debug)]
pub(crate) struct Frame {
    pub(crate) kind: BodyKind,
    pub(crate) meta: Vec<u8>,
    pub(crate) body: Vec<u8>,
    pub(crate) fds: Vec<OwnedFd>,
    /// How many descriptors the header announced (on a ring they come separately).
    pub(crate) announced_fds: usize,
}

/// What one attempt to write a frame into a ring achieved.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum RingWrite {
    /// The whole frame is in the ring.
    Done,
    /// Some bytes went in; the ring is full now.
    Progress,
    /// The ring is full.
    Full,
    /// The socket cannot take the frame's descriptors yet.
    SocketFull,
}

/// Wakes a reader asleep on `fd` (one byte: never torn, whoever else writes there).
pub(crate) fn send_wake(fd: BorrowedFd<'_>) -> io::Result<()> {
    match sys::send_vectored(fd, &[IoSlice::new(b"W")], &[]) {
        // A full socket holds unread wake-ups already.
        Err(error) if error.kind() == io::ErrorKind::WouldBlock => Ok(()),
        other => other.map(drop),
    }
}

/// A frame on its way out. The body may borrow the caller's buffer until it must be queued.
#[derive(Debug)]
pub(crate) struct OutFrame<'a> {
    header: [u8; HEADER_LEN],
    meta: Vec<u8>,
    body: Cow<'a, [u8]>,
    fds: Vec<OwnedFd>,
    /// Bytes of header + meta + body already written.
    written: usize,
}

impl<'a> OutFrame<'a> {
    pub(crate) fn new(
        kind: BodyKind,
        meta: Vec<u8>,
        body: Cow<'a, [u8]>,
        fds: Vec<OwnedFd>,
    ) -> Result<OutFrame<'a>> {
        if fds.len() > sys::MAX_FDS_PER_MESSAGE {
            return Err(Error::invalid(format!(
                "one message can carry at most {} pipes, queues or shared arrays, this one has {}; \
                 send them in several messages",
                sys::MAX_FDS_PER_MESSAGE,
                fds.len()
            )));
        }
        let header = encode_header(kind, meta.len(), body.len(), fds.len());
        Ok(OutFrame { header, meta, body, fds, written: 0 })
    }

    fn total_len(&self) -> usize {
        HEADER_LEN + self.meta.len() + self.body.len()
    }

    /// Writes as much as the socket takes now. Returns true when the frame is complete.
    fn write_some(&mut self, fd: BorrowedFd<'_>) -> io::Result<bool> {
        while self.written < self.total_len() {
            let mut parts = [&self.header[..], &self.meta[..], &self.body[..]];
            let mut skip = self.written;
            for part in parts.iter_mut() {
                let cut = skip.min(part.len());
                *part = &part[cut..];
                skip -= cut;
            }
            let slices = parts.map(IoSlice::new);
            let raw_fds: Vec<RawFd> = if self.written == 0 {
                self.fds.iter().map(AsRawFd::as_raw_fd).collect()
            } else {
                Vec::new()
            };
            match sys::send_vectored(fd, &slices, &raw_fds) {
                Ok(n) => {
                    self.written += n;
                    if self.written > 0 {
                        // The kernel holds its own references to sent descriptors now.
                        self.fds.clear();
                    }
                }
                Err(error) if error.kind() == io::ErrorKind::WouldBlock => return Ok(false),
                Err(error) if error.kind() == io::ErrorKind::Interrupted => {}
                Err(error) => return Err(error),
            }
        }
        Ok(true)
    }

    /// Writes as much as `ring` takes now, in steps of [`crate::ring::STEP`] bytes, each
    /// published at once. The descriptors go first, on the socket `fd`, with one `F` byte.
    pub(crate) fn write_ring(&mut self, ring: &Ring, fd: BorrowedFd<'_>) -> io::Result<RingWrite> {
        if self.written == 0 && !self.fds.is_empty() {
            let raw_fds: Vec<RawFd> = self.fds.iter().map(AsRawFd::as_raw_fd).collect();
            match sys::send_vectored(fd, &[IoSlice::new(b"F")], &raw_fds) {
                Ok(_) => self.fds.clear(),
                Err(error) if error.kind() == io::ErrorKind::WouldBlock => {
                    return Ok(RingWrite::SocketFull);
                }
                Err(error) => return Err(error),
            }
        }
        let mut progress = false;
        while self.written < self.total_len() {
            let free = ring.free()?;
            if free == 0 {
                return Ok(if progress { RingWrite::Progress } else { RingWrite::Full });
            }
            let mut budget = free.min(crate::ring::STEP);
            let mut parts: [&[u8]; 3] = [&self.header[..], &self.meta[..], &self.body[..]];
            let mut skip = self.written;
            for part in parts.iter_mut() {
                let cut = skip.min(part.len());
                *part = &part[cut..];
                skip -= cut;
                let take = part.len().min(budget);
                *part = &part[..take];
                budget -= take;
            }
            let n: usize = parts.iter().map(|part| part.len()).sum();
            if ring.push(&parts, self.body.len() >= STREAMING_FROM) {
                send_wake(fd)?;
            }
            self.written += n;
            progress = true;
        }
        Ok(RingWrite::Done)
    }

    /// True while no byte of the frame has gone out.
    pub(crate) fn untouched(&self) -> bool {
        self.written == 0
    }

    /// Detaches the frame from the caller's buffer, copying only the part not yet written.
    fn into_owned(self) -> OutFrame<'static> {
        let body_start = HEADER_LEN + self.meta.len();
        let (body, written) = match self.body {
            Cow::Owned(body) => (body, self.written),
            Cow::Borrowed(body) if self.written > body_start => {
                let done = self.written - body_start;
                // Keep the frame's arithmetic: pretend the copied tail starts where we are.
                let mut tail = Vec::with_capacity(body.len() - done);
                tail.extend_from_slice(&body[done..]);
                return OutFrame {
                    header: self.header,
                    meta: self.meta,
                    body: Cow::Owned(tail),
                    fds: self.fds,
                    written: body_start,
                };
            }
            Cow::Borrowed(body) => (body.to_vec(), self.written),
        };
        OutFrame {
            header: self.header,
            meta: self.meta,
            body: Cow::Owned(body),
            fds: self.fds,
            written,
        }
    }
}

/// Frames waiting to be written to one socket, in order.
#[derive(Debug, Default)]
pub(crate) struct Outbox {
    frames: VecDeque<OutFrame<'static>>,
}

impl Outbox {
    pub(crate) fn is_empty(&self) -> bool {
        self.frames.is_empty()
    }

    pub(crate) fn push(&mut self, frame: OutFrame<'_>) {
        self.frames.push_back(frame.into_owned());
    }

    /// Writes queued frames into `ring` until it is full. Returns how far it got.
    pub(crate) fn flush_some_ring(
        &mut self,
        ring: &Ring,
        fd: BorrowedFd<'_>,
    ) -> io::Result<RingWrite> {
        let mut progress = false;
        while let Some(front) = self.frames.front_mut() {
            match front.write_ring(ring, fd)? {
                RingWrite::Done => {
                    self.frames.pop_front();
                    progress = true;
                }
                RingWrite::Progress => return Ok(RingWrite::Progress),
                stuck => return Ok(if progress { RingWrite::Progress } else { stuck }),
            }
        }
        Ok(RingWrite::Done)
    }

    /// True when the first queued frame has been partly written.
    pub(crate) fn mid_frame(&self) -> bool {
        self.frames.front().is_some_and(|front| !front.untouched())
    }

    /// Writes queued frames until the socket would block. Returns true when all are out.
    pub(crate) fn flush_some(&mut self, fd: BorrowedFd<'_>) -> io::Result<bool> {
        while let Some(front) = self.frames.front_mut() {
            if !front.write_some(fd)? {
                return Ok(false);
            }
            self.frames.pop_front();
        }
        Ok(true)
    }
}

/// Writes `frame` directly while the peer keeps reading; returns the unwritten rest (if any) when
/// the socket stayed full for `patience`, so the caller can queue it instead of blocking.
pub(crate) fn write_with_patience<'a>(
    fd: BorrowedFd<'_>,
    mut frame: OutFrame<'a>,
    patience: std::time::Duration,
) -> io::Result<Option<OutFrame<'a>>> {
    loop {
        if frame.write_some(fd)? {
            return Ok(None);
        }
        let ready = sys::poll(
            &[(fd, sys::Ready { writable: true, ..Default::default() })],
            Some(patience),
        )?;
        if !ready[0].writable {
            return Ok(Some(frame));
        }
    }
}

/// What one read attempt gave.
#[derive(Debug)]
pub(crate) enum ReadOutcome {
    Frame(Frame),
    /// No complete frame yet: wait for the socket to become readable.
    WouldBlock,
    /// The peer closed the connection between frames.
    Closed,
}

#[derive(Debug, Default)]
enum ReadState {
    #[default]
    Header,
    Meta {
        header: HeaderParts,
    },
    Body {
        header: HeaderParts,
        meta: Vec<u8>,
    },
}

#[derive(Debug, Clone, Copy)]
struct HeaderParts {
    kind: BodyKind,
    meta_len: usize,
    body_len: usize,
    n_fds: usize,
}

/// Appends at most `max` bytes to the spare capacity of a buffer (and any descriptors that came
/// with them to a list): `Ok(0)` at end of stream, `WouldBlock` when nothing is there yet,
/// `InvalidData` for a damaged source.
/// The `bool` says the bytes belong to a large body (see [`STREAMING_FROM`]).
type ReadSource<'a> =
    dyn FnMut(&mut Vec<u8>, usize, bool, &mut Vec<OwnedFd>) -> io::Result<usize> + 'a;

/// Assembles frames from a non-blocking socket (or a ring), keeping partial frames between
/// calls.
#[derive(Debug, Default)]
pub(crate) struct FrameReader {
    state: ReadState,
    buf: Vec<u8>,
    fds: Vec<OwnedFd>,
    /// A buffer to receive the next body into (its capacity is reused).
    body_buffer: Option<Vec<u8>>,
}

impl FrameReader {
    /// Reads until a whole frame is in, or the socket has nothing more for now.
    pub(crate) fn read_frame(&mut self, fd: BorrowedFd<'_>) -> Result<ReadOutcome> {
        self.read_frame_with(
            &mut |buf, max, _, fds| sys::recv_into_spare(fd, buf, max, fds),
            READ_STEP,
            false,
        )
    }

    /// Reads a frame from `ring`; its descriptors come separately (`Frame::announced_fds`).
    pub(crate) fn read_frame_ring(&mut self, ring: &Ring) -> Result<ReadOutcome> {
        let outcome = self.read_frame_with(
            &mut |buf, max, streaming, _| ring.pop_into(buf, max, streaming),
            crate::ring::STEP,
            true,
        );
        // Once per frame (or per pause in one): what was read is freed for the writer.
        ring.publish_read().map_err(|error| Error::Corrupted { message: error.to_string() })?;
        outcome
    }

    /// How many descriptors the frame being read announced (0 before its header is in).
    pub(crate) fn announced_fds(&self) -> usize {
        match &self.state {
            ReadState::Header => 0,
            ReadState::Meta { header } | ReadState::Body { header, .. } => header.n_fds,
        }
    }

    /// True when no part of a frame has been read.
    pub(crate) fn between_frames(&self) -> bool {
        matches!(self.state, ReadState::Header) && self.buf.is_empty()
    }

    /// Receive the next body into `buffer` (cleared first), reusing its capacity.
    pub(crate) fn offer_body_buffer(&mut self, buffer: Vec<u8>) {
        self.body_buffer = Some(buffer);
    }

    /// The buffer given to [`FrameReader::offer_body_buffer`], if no body went into it.
    pub(crate) fn take_body_buffer(&mut self) -> Option<Vec<u8>> {
        self.body_buffer.take()
    }

    /// Reads a frame from `read`, at most `read_step` bytes per call. With `external_fds` the
    /// frame's descriptors are the caller's business.
    fn read_frame_with(
        &mut self,
        read: &mut ReadSource<'_>,
        read_step: usize,
        external_fds: bool,
    ) -> Result<ReadOutcome> {
        loop {
            let want = match &self.state {
                ReadState::Header => HEADER_LEN,
                ReadState::Meta { header } => header.meta_len,
                ReadState::Body { header, .. } => header.body_len,
            };
            if self.buf.len() < want {
                if self.buf.capacity() < want {
                    self.buf.reserve_exact(want - self.buf.len());
                    if want >= HUGE_PAGES_FROM {
                        sys::advise_huge_pages(&mut self.buf);
                    }
                }
                let step = (want - self.buf.len()).min(read_step);
                let streaming =
                    matches!(self.state, ReadState::Body { .. }) && want >= STREAMING_FROM;
                match read(&mut self.buf, step, streaming, &mut self.fds) {
                    Ok(0) => {
                        let between_frames =
                            matches!(self.state, ReadState::Header) && self.buf.is_empty();
                        if between_frames {
                            return Ok(ReadOutcome::Closed);
                        }
                        return Err(Error::Corrupted {
                            message:
                                "the sending process closed the connection in the middle of a \
                                      message (it probably died while sending)"
                                    .into(),
                        });
                    }
                    Ok(_) => continue,
                    Err(error) if error.kind() == io::ErrorKind::WouldBlock => {
                        return Ok(ReadOutcome::WouldBlock);
                    }
                    Err(error) if error.kind() == io::ErrorKind::Interrupted => continue,
                    Err(error) if error.kind() == io::ErrorKind::ConnectionReset => {
                        return Ok(ReadOutcome::Closed);
                    }
                    Err(error) if error.kind() == io::ErrorKind::InvalidData => {
                        return Err(Error::Corrupted { message: error.to_string() });
                    }
                    Err(error) => return Err(Error::io("reading from a connection", error)),
                }
            }
            match std::mem::take(&mut self.state) {
                ReadState::Header => {
                    let bytes: [u8; HEADER_LEN] = self.buf[..HEADER_LEN].try_into().unwrap();
                    self.buf.clear();
                    let header = decode_header(&bytes)?;
                    let parts = HeaderParts {
                        kind: header.kind,
                        meta_len: header.meta_len,
                        body_len: header.body_len,
                        n_fds: header.n_fds,
                    };
                    self.state = ReadState::Meta { header: parts };
                }
                ReadState::Meta { header } => {
                    let meta = std::mem::take(&mut self.buf);
                    if let Some(mut body) = self.body_buffer.take() {
                        body.clear();
                        self.buf = body;
                    }
                    self.state = ReadState::Body { header, meta };
                }
                ReadState::Body { header, meta } => {
                    let body = std::mem::take(&mut self.buf);
                    let fds = std::mem::take(&mut self.fds);
                    if !external_fds && fds.len() != header.n_fds {
                        return Err(Error::Corrupted {
                            message: format!(
                                "a message should carry {} handles but {} arrived",
                                header.n_fds,
                                fds.len()
                            ),
                        });
                    }
                    return Ok(ReadOutcome::Frame(Frame {
                        kind: header.kind,
                        meta,
                        body,
                        fds,
                        announced_fds: header.n_fds,
                    }));
                }
            }
        }
    }
}

/// Reads one frame, waiting up to `timeout` (None: forever) for it to start.
///
/// Returns `Ok(None)` on timeout. `Closed` becomes `Error::Disconnected` named after `endpoint`.
pub(crate) fn read_frame_blocking(
    fd: BorrowedFd<'_>,
    reader: &mut FrameReader,
    timeout: Option<std::time::Duration>,
    endpoint: &str,
) -> Result<Option<Frame>> {
    let deadline = timeout.map(|timeout| std::time::Instant::now() + timeout);
    loop {
        match reader.read_frame(fd)? {
            ReadOutcome::Frame(frame) => return Ok(Some(frame)),
            ReadOutcome::Closed => return Err(Error::disconnected(endpoint)),
            ReadOutcome::WouldBlock => {}
        }
        let remaining = match deadline {
            None => None,
            Some(deadline) => match deadline.checked_duration_since(std::time::Instant::now()) {
                Some(remaining) if !remaining.is_zero() => Some(remaining),
                _ => return Ok(None),
            },
        };
        sys::poll(&[(fd, sys::Ready { readable: true, ..Default::default() })], remaining)
            .map_err(|error| Error::io("waiting for a message", error))?;
    }
}

// ---------------------------------------------------------------------------------------------
// Serialization with handles.
//
// Pipes, queues and shared arrays are descriptors. When a value containing them is encoded,
// each one is duplicated into a thread-local list and the message carries its index; the list
// travels as SCM_RIGHTS with the frame. Decoding hands the received descriptors back by index.

thread_local! {
    static OUTGOING_FDS: RefCell<Option<Vec<OwnedFd>>> = const { RefCell::new(None) };
    static INCOMING_FDS: RefCell<Option<Vec<Option<OwnedFd>>>> = const { RefCell::new(None) };
}

/// Encodes `value` with postcard, collecting the descriptors of any handles inside it.
///
/// Vectors of floats and bytes take the [`bulk`] fast path: the same bytes, copied whole.
pub(crate) fn encode<T: Serialize + ?Sized + 'static>(
    value: &T,
) -> Result<(Vec<u8>, Vec<OwnedFd>)> {
    if let Some(bytes) = bulk::encode(value) {
        bulk::count_use();
        return Ok((bytes, Vec::new()));
    }
    encode_postcard(value)
}

/// As [`encode`] but always through serde, for types that may borrow (not `'static`).
pub(crate) fn encode_postcard<T: Serialize + ?Sized>(value: &T) -> Result<(Vec<u8>, Vec<OwnedFd>)> {
    let previous = OUTGOING_FDS.with(|slot| slot.borrow_mut().replace(Vec::new()));
    let encoded = postcard::to_stdvec(value);
    let fds = OUTGOING_FDS
        .with(|slot| std::mem::replace(&mut *slot.borrow_mut(), previous))
        .unwrap_or_default();
    let bytes = encoded.map_err(Error::serialization)?;
    Ok((bytes, fds))
}

/// Decodes a postcard message, handing out the descriptors that came with it.
///
/// Vectors of floats and bytes take the [`bulk`] fast path, with postcard's errors.
pub(crate) fn decode<T: DeserializeOwned + 'static>(bytes: &[u8], fds: Vec<OwnedFd>) -> Result<T> {
    if let Some(decoded) = bulk::decode(bytes) {
        bulk::count_use();
        return decoded.map_err(decode_error);
    }
    decode_postcard(bytes, fds)
}

/// As [`decode`] but always through serde, for types that may borrow (not `'static`).
pub(crate) fn decode_postcard<T: DeserializeOwned>(bytes: &[u8], fds: Vec<OwnedFd>) -> Result<T> {
    let previous =
        INCOMING_FDS.with(|slot| slot.borrow_mut().replace(fds.into_iter().map(Some).collect()));
    let decoded = postcard::from_bytes(bytes);
    INCOMING_FDS.with(|slot| *slot.borrow_mut() = previous);
    decoded.map_err(decode_error)
}

fn decode_error(error: postcard::Error) -> Error {
    Error::serialization(format!(
        "{error} (the sender and receiver must agree on the message type, \
         and postcard cannot encode serde's `flatten` or `untagged`)"
    ))
}

/// Bulk data as bytes: `Vec<E>`, `[E]`, `Vec<Vec<E>>` and `[Vec<E>]` for `E` in `f64`, `f32`,
/// `u8` and `i8`, encoded and decoded with one copy instead of serde's element-by-element
/// loop.
///
/// Postcard writes a sequence as the varint of its length followed by its elements, and these
/// elements as their little-endian bytes, so on a little-endian machine a vector's postcard
/// encoding is its length and then its memory. This module produces and accepts exactly those
/// bytes (and postcard's errors), so either side of a connection may use either path.
mod bulk {
    use std::any::{Any, TypeId};

    use postcard::Error;

    use super::HUGE_PAGES_FROM;
    use crate::sys;

    /// The element types copied as bytes: plain numbers whose postcard encoding is their
    /// little-endian bytes.
    trait Element: bytemuck::Pod {}
    impl Element for f64 {}
    impl Element for f32 {}
    impl Element for u8 {}
    impl Element for i8 {}

    /// The postcard encoding of `value`, or `None` when `T` is not a covered type.
    pub(super) fn encode<T: ?Sized + 'static>(value: &T) -> Option<Vec<u8>> {
        if cfg!(target_endian = "big") {
            return None;
        }
        encode_as::<T, f64>(value)
            .or_else(|| encode_as::<T, f32>(value))
            .or_else(|| encode_as::<T, u8>(value))
            .or_else(|| encode_as::<T, i8>(value))
    }

    /// `bytes` decoded as postcard would, or `None` when `T` is not a covered type.
    pub(super) fn decode<T: 'static>(bytes: &[u8]) -> Option<Result<T, Error>> {
        if cfg!(target_endian = "big") {
            return None;
        }
        decode_as::<T, f64>(bytes)
            .or_else(|| decode_as::<T, f32>(bytes))
            .or_else(|| decode_as::<T, u8>(bytes))
            .or_else(|| decode_as::<T, i8>(bytes))
    }

    fn encode_as<T: ?Sized + 'static, E: Element>(value: &T) -> Option<Vec<u8>> {
        if let Some(items) = same_ref::<T, Vec<E>>(value) {
            Some(encode_flat(items))
        } else if let Some(items) = same_ref::<T, [E]>(value) {
            Some(encode_flat(items))
        } else if let Some(vectors) = same_ref::<T, Vec<Vec<E>>>(value) {
            Some(encode_nested(vectors))
        } else {
            same_ref::<T, [Vec<E>]>(value).map(encode_nested)
        }
    }

    fn decode_as<T: 'static, E: Element>(mut bytes: &[u8]) -> Option<Result<T, Error>> {
        if is::<T, Vec<E>>() {
            same_value(take_flat::<E>(&mut bytes))
        } else if is::<T, Vec<Vec<E>>>() {
            same_value(take_nested::<E>(&mut bytes))
        } else {
            None
        }
    }

    fn encode_flat<E: Element>(items: &[E]) -> Vec<u8> {
        let mut out = fresh_buffer(flat_len(items));
        push_flat(&mut out, items);
        out
    }

    fn encode_nested<E: Element>(vectors: &[Vec<E>]) -> Vec<u8> {
        let len = varint_len(vectors.len()) + vectors.iter().map(|v| flat_len(v)).sum::<usize>();
        let mut out = fresh_buffer(len);
        push_varint(&mut out, vectors.len());
        for items in vectors {
            push_flat(&mut out, items);
        }
        debug_assert_eq!(out.len(), len);
        out
    }

    /// An empty buffer with room for exactly `len` bytes, so that it never grows.
    fn fresh_buffer(len: usize) -> Vec<u8> {
        let mut out = Vec::with_capacity(len);
        if len >= HUGE_PAGES_FROM {
            sys::advise_huge_pages(&mut out);
        }
        out
    }

    fn flat_len<E: Element>(items: &[E]) -> usize {
        varint_len(items.len()) + size_of_val(items)
    }

    fn push_flat<E: Element>(out: &mut Vec<u8>, items: &[E]) {
        push_varint(out, items.len());
        out.extend_from_slice(bytemuck::cast_slice(items));
    }

    fn varint_len(n: usize) -> usize {
        (usize::BITS - (n | 1).leading_zeros()).div_ceil(7) as usize
    }

    fn push_varint(out: &mut Vec<u8>, mut n: usize) {
        while n >= 0x80 {
            out.push(n as u8 | 0x80);
            n >>= 7;
        }
        out.push(n as u8);
    }

    /// Takes a varint `usize` off the front of `input` exactly as postcard does: at most as
    /// many bytes as a `usize` needs, and a last one with no bits beyond the `usize`.
    fn take_varint(input: &mut &[u8]) -> Result<usize, Error> {
        const MAX_BYTES: u32 = usize::BITS.div_ceil(7);
        const MAX_LAST_BYTE: u8 = (1 << (usize::BITS % 7)) - 1;
        let mut n = 0;
        for i in 0..MAX_BYTES {
            let (&byte, rest) = input.split_first().ok_or(Error::DeserializeUnexpectedEnd)?;
            *input = rest;
            n |= usize::from(byte & 0x7f) << (7 * i);
            if byte & 0x80 == 0 {
                if i == MAX_BYTES - 1 && byte > MAX_LAST_BYTE {
                    return Err(Error::DeserializeBadVarint);
                }
                return Ok(n);
            }
        }
        Err(Error::DeserializeBadVarint)
    }

    fn take_flat<E: Element>(input: &mut &[u8]) -> Result<Vec<E>, Error> {
        let len = take_varint(input)?;
        // Postcard would run out of input reading the elements; so do we, before allocating.
        let n_bytes = len
            .checked_mul(size_of::<E>())
            .filter(|&n_bytes| n_bytes <= input.len())
            .ok_or(Error::DeserializeUnexpectedEnd)?;
        let (bytes, rest) = input.split_at(n_bytes);
        *input = rest;
        Ok(sys::vec_from_bytes(bytes))
    }

    fn take_nested<E: Element>(input: &mut &[u8]) -> Result<Vec<Vec<E>>, Error> {
        let len = take_varint(input)?;
        // Each vector takes at least one byte (its length), so a hostile count reserves at most
        // one slot per input byte; a valid one, exactly its count.
        let mut vectors = Vec::with_capacity(len.min(input.len()));
        for _ in 0..len {
            vectors.push(take_flat(input)?);
        }
        Ok(vectors)
    }

    fn is<T: ?Sized + 'static, U: ?Sized + 'static>() -> bool {
        TypeId::of::<T>() == TypeId::of::<U>()
    }

    /// `value` as a `&U`, when `T` is `U`.
    fn same_ref<T: ?Sized + 'static, U: ?Sized + 'static>(value: &T) -> Option<&U> {
        if !is::<T, U>() {
            return None;
        }
        // SAFETY: `T` and `U` are one type (their `TypeId`s are equal), so `&T` and `&U` are one
        // type too, and this copies a reference into a variable of its own type. (`Any` would
        // do it without `unsafe`, but cannot take an unsized `T` such as `[f64]`.)
        #[allow(unsafe_code)]
        Some(unsafe { std::mem::transmute_copy::<&T, &U>(&value) })
    }

    /// `value` as a `U`, when it is one.
    fn same_value<T: 'static, U: 'static>(value: T) -> Option<U> {
        let mut value = Some(value);
        (&mut value as &mut dyn Any).downcast_mut::<Option<U>>()?.take()
    }

    #[cfg(test)]
    thread_local! {
        pub(super) static USES: std::cell::Cell<usize> = const { std::cell::Cell::new(0) };
    }

    /// Counts fast-path encodings and decodings on this thread, for the tests.
    pub(super) fn count_use() {
        #[cfg(test)]
        USES.with(|uses| uses.set(uses.get() + 1));
    }
}

/// A descriptor inside a serialized value. Only `mp`'s own channels can carry it.
#[derive(Debug)]
pub(crate) struct PassedFd(pub(crate) OwnedFd);

impl Serialize for PassedFd {
    fn serialize<S: Serializer>(&self, serializer: S) -> std::result::Result<S::Ok, S::Error> {
        let duplicate = self.0.try_clone().map_err(serde::ser::Error::custom)?;
        let index = OUTGOING_FDS.with(|slot| {
            let mut slot = slot.borrow_mut();
            let list = slot.as_mut()?;
            list.push(duplicate);
            Some(list.len() - 1)
        });
        match index {
            Some(index) => serializer.serialize_u32(index as u32),
            None => Err(serde::ser::Error::custom(
                "mp handles (pipes, queues, shared arrays) can only be sent through mp's own \
                 channels and process arguments, not written with another serializer",
            )),
        }
    }
}

impl<'de> Deserialize<'de> for PassedFd {
    fn deserialize<D: Deserializer<'de>>(
        deserializer: D,
    ) -> std::result::Result<PassedFd, D::Error> {
        let index = u32::deserialize(deserializer)? as usize;
        let fd = INCOMING_FDS.with(|slot| slot.borrow_mut().as_mut()?.get_mut(index)?.take());
        fd.map(PassedFd).ok_or_else(|| {
            serde::de::Error::custom("a message refers to a handle that did not arrive with it")
        })
    }
}

impl AsFd for PassedFd {
    fn as_fd(&self) -> BorrowedFd<'_> {
        self.0.as_fd()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sys::{SocketKind, socket_pair};

    /// Writes `frame` completely, waiting as long as the socket needs.
    fn write_blocking(fd: BorrowedFd<'_>, mut frame: OutFrame<'_>) -> io::Result<()> {
        while !frame.write_some(fd)? {
            sys::poll(&[(fd, sys::Ready { writable: true, ..Default::default() })], None)?;
        }
        Ok(())
    }

    fn round_trip(body_len: usize) {
        let (left, right) = socket_pair(SocketKind::Stream).unwrap();
        let body: Vec<u8> = (0..body_len).map(|index| (index % 251) as u8).collect();
        let writer = {
            let body = body.clone();
            std::thread::spawn(move || {
                let frame =
                    OutFrame::new(BodyKind::Bytes, vec![7, 8], Cow::Borrowed(&body), Vec::new())
                        .unwrap();
                write_blocking(left.as_fd(), frame).unwrap();
                left
            })
        };
        let mut reader = FrameReader::default();
        let frame = read_frame_blocking(right.as_fd(), &mut reader, None, "test").unwrap().unwrap();
        assert_eq!(frame.meta, vec![7, 8]);
        assert_eq!(frame.body, body);
        drop(writer.join().unwrap());
        let closed = read_frame_blocking(right.as_fd(), &mut reader, None, "test");
        assert!(matches!(closed, Err(Error::Disconnected { .. })));
    }

    #[test]
    fn frames_survive_every_size() {
        for body_len in [0, 1, 23, 24, 25, 4095, 4096, 212_993, 3 << 20] {
            round_trip(body_len);
        }
    }

    // The bulk fast path. Each check compares with postcard's own bytes, so a fast path that
    // wrote anything else (big-endian floats, a wrong length) fails here.

    /// Element values with every byte varying (for floats: NaNs, infinities, subnormals).
    fn sample<E: bytemuck::Pod>(len: usize, seed: u64) -> Vec<E> {
        let mut state = seed.wrapping_mul(0x9e37_79b9_7f4a_7c15) | 1;
        let mut bytes = vec![0u8; len * size_of::<E>()];
        for byte in &mut bytes {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            *byte = (state >> 24) as u8;
        }
        bytemuck::pod_collect_to_vec(&bytes)
    }

    /// Checks that `value` takes the fast path both ways and gives postcard's bytes, and that
    /// each path decodes the other's bytes to the same bits (postcard re-encodes them).
    fn agrees_with_postcard<T>(value: &T)
    where
        T: Serialize + DeserializeOwned + 'static,
    {
        let postcard_bytes = postcard::to_stdvec(value).unwrap();
        let fast_bytes = bulk::encode(value).expect("the fast path covers this type");
        assert!(fast_bytes == postcard_bytes, "{} bytes differ from postcard's", fast_bytes.len());
        assert_eq!(fast_bytes.capacity(), fast_bytes.len(), "one exact allocation");

        let fast_decoded: T = bulk::decode(&postcard_bytes).expect("covered").unwrap();
        assert!(postcard::to_stdvec(&fast_decoded).unwrap() == postcard_bytes, "fast decode");
        let postcard_decoded: T = postcard::from_bytes(&fast_bytes).unwrap();
        assert!(postcard::to_stdvec(&postcard_decoded).unwrap() == postcard_bytes);
    }

    /// `Vec<E>`, `[E]`, `Vec<Vec<E>>` and `[Vec<E>]` at the varint boundaries and beyond
    /// `HUGE_PAGES_FROM`.
    fn bulk_matches_postcard<E>()
    where
        E: bytemuck::Pod + Serialize + DeserializeOwned + 'static,
    {
        let huge = HUGE_PAGES_FROM / size_of::<E>() + 3;
        let lengths = [0, 1, 127, 128, 16384, huge];
        for (seed, &len) in lengths.iter().enumerate() {
            let items = sample::<E>(len, seed as u64);
            agrees_with_postcard(&items);
            assert!(
                bulk::encode(items.as_slice()).unwrap() == postcard::to_stdvec(&items).unwrap()
            );

            // As many vectors as `len`, of mixed lengths; and one holding a long vector.
            let many: Vec<Vec<E>> =
                (0..len.min(16384)).map(|i| sample(i % 200, (seed + i) as u64)).collect();
            let one_long = vec![items, Vec::new(), sample(5, 7)];
            for vectors in [many, one_long] {
                agrees_with_postcard(&vectors);
                let slice = vectors.as_slice();
                assert!(bulk::encode(slice).unwrap() == postcard::to_stdvec(slice).unwrap());
            }
        }
    }

    #[test]
    fn bulk_f64_is_postcard_byte_for_byte() {
        bulk_matches_postcard::<f64>();
    }

    #[test]
    fn bulk_f32_is_postcard_byte_for_byte() {
        bulk_matches_postcard::<f32>();
    }

    #[test]
    fn bulk_u8_is_postcard_byte_for_byte() {
        bulk_matches_postcard::<u8>();
    }

    #[test]
    fn bulk_i8_is_postcard_byte_for_byte() {
        bulk_matches_postcard::<i8>();
    }

    #[test]
    fn bulk_keeps_float_bits() {
        let payload_nan = f64::from_bits(0x7ff4_dead_beef_0001);
        let negative_nan = f64::from_bits(0xfff8_0000_0000_0042);
        let floats = vec![-0.0, payload_nan, negative_nan, f64::INFINITY, f64::MIN_POSITIVE / 2.0];
        let (bytes, fds) = encode(&floats).unwrap();
        assert!(fds.is_empty());
        let back: Vec<f64> = decode(&bytes, Vec::new()).unwrap();
        let bits = |values: &[f64]| values.iter().map(|value| value.to_bits()).collect::<Vec<_>>();
        assert_eq!(bits(&back), bits(&floats));
        let nested: Vec<Vec<f32>> =
            decode(&encode(&[vec![-0.0f32, f32::NAN]][..]).unwrap().0, Vec::new()).unwrap();
        assert_eq!(nested[0][0].to_bits(), (-0.0f32).to_bits());
        assert_eq!(nested[0][1].to_bits(), f32::NAN.to_bits());
    }

    #[test]
    fn wire_takes_the_bulk_path_for_covered_types_only() {
        let uses = || bulk::USES.with(std::cell::Cell::get);
        let before = uses();
        let (bytes, _) = encode(&vec![1.5f64, 2.5]).unwrap();
        let _: Vec<f64> = decode(&bytes, Vec::new()).unwrap();
        let (bytes, _) = encode(&[vec![1u8], vec![2, 3]][..]).unwrap();
        let _: Vec<Vec<u8>> = decode(&bytes, Vec::new()).unwrap();
        assert_eq!(uses(), before + 4);
        let (bytes, _) = encode(&vec![1u32, 2]).unwrap();
        let _: Vec<u32> = decode(&bytes, Vec::new()).unwrap();
        assert_eq!(uses(), before + 4);
    }

    /// `bytes` decoded as `T` by both paths: the same value or the same postcard error.
    fn decodes_like_postcard<T>(bytes: &[u8]) -> std::result::Result<T, postcard::Error>
    where
        T: Serialize + DeserializeOwned + 'static,
    {
        let fast = bulk::decode::<T>(bytes).expect("covered");
        let slow = postcard::from_bytes::<T>(bytes);
        match (&fast, &slow) {
            (Ok(fast), Ok(slow)) => {
                assert_eq!(postcard::to_stdvec(fast).unwrap(), postcard::to_stdvec(slow).unwrap())
            }
            (Err(fast), Err(slow)) => assert_eq!(fast, slow),
            _ => panic!(
                "the fast path gave {:?}, postcard {:?} (None: a value)",
                fast.as_ref().err(),
                slow.as_ref().err()
            ),
        }
        fast
    }

    #[test]
    fn truncated_bulk_input_is_postcards_error() {
        let flat = postcard::to_stdvec(&sample::<f64>(200, 1)).unwrap();
        let nested =
            postcard::to_stdvec(&vec![sample::<f32>(3, 2), vec![], sample(130, 3)]).unwrap();
        for cut in 0..flat.len() {
            let error = decodes_like_postcard::<Vec<f64>>(&flat[..cut]).unwrap_err();
            assert_eq!(error, postcard::Error::DeserializeUnexpectedEnd, "cut at {cut}");
        }
        for cut in 0..nested.len() {
            decodes_like_postcard::<Vec<Vec<f32>>>(&nested[..cut]).unwrap_err();
        }
        // What the user reads: the same message as for any other type.
        let fast = decode::<Vec<f64>>(&flat[..5], Vec::new()).unwrap_err().to_string();
        let slow = decode::<(u8, Vec<f64>)>(&[0, 9], Vec::new()).unwrap_err().to_string();
        assert_eq!(fast, slow);
        assert!(fast.contains("Hit the end of buffer"), "{fast}");
        // Trailing bytes are ignored, as postcard ignores them.
        let mut longer = flat.clone();
        longer.extend_from_slice(&[1, 2, 3]);
        assert_eq!(decodes_like_postcard::<Vec<f64>>(&longer).unwrap().len(), 200);
    }

    #[test]
    fn hostile_bulk_lengths_are_errors_not_allocations() {
        let varint = |n: u64| postcard::to_stdvec(&n).unwrap();
        // Trusted, these lengths would ask for up to 2^64 bytes: the test would abort, not fail.
        for len in [u64::MAX, u64::MAX / 8 + 1, 1 << 40, 1 << 20] {
            let mut bytes = varint(len);
            bytes.extend_from_slice(&[0u8; 64]);
            decodes_like_postcard::<Vec<f64>>(&bytes).unwrap_err();
            decodes_like_postcard::<Vec<u8>>(&bytes).unwrap_err();
            decodes_like_postcard::<Vec<Vec<i8>>>(&bytes).unwrap_err();
            decodes_like_postcard::<Vec<Vec<f64>>>(&bytes).unwrap_err();
        }
        // Varints: a tenth byte with more than u64's last bit, eleven bytes, and an overlong
        // but valid zero (postcard accepts it; so must we).
        let mut too_big = vec![0xff; 9];
        too_big.push(0x02);
        let error = decodes_like_postcard::<Vec<u8>>(&too_big).unwrap_err();
        assert_eq!(error, postcard::Error::DeserializeBadVarint);
        let error = decodes_like_postcard::<Vec<Vec<u8>>>(&[0xff; 11]).unwrap_err();
        assert_eq!(error, postcard::Error::DeserializeBadVarint);
        assert!(decodes_like_postcard::<Vec<f32>>(&[0x80, 0x00]).unwrap().is_empty());
        // A bad varint inside a long announced list: postcard's error, not "unexpected end".
        let error = decodes_like_postcard::<Vec<Vec<f64>>>(&[
            0x7f, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x7f,
        ])
        .unwrap_err();
        assert_eq!(error, postcard::Error::DeserializeBadVarint);
    }

    #[test]
    fn other_types_take_postcard() {
        assert!(bulk::encode(&vec![1u32, 2]).is_none());
        assert!(bulk::encode(&(1u8, vec![1.0f64])).is_none());
        assert!(bulk::encode(&vec![vec![vec![1.0f64]]]).is_none());
        assert!(bulk::encode("text").is_none());
        assert!(bulk::decode::<Vec<u32>>(&[0]).is_none());
        assert!(bulk::decode::<(u8, Vec<f64>)>(&[0, 0]).is_none());
        let value = (7u8, vec![1.0f64, -0.0], vec![3u32; 300]);
        let (bytes, _) = encode(&value).unwrap();
        assert_eq!(bytes, postcard::to_stdvec(&value).unwrap());
        assert_eq!(decode::<(u8, Vec<f64>, Vec<u32>)>(&bytes, Vec::new()).unwrap(), value);
    }

    #[test]
    fn damaged_header_is_reported_not_trusted() {
        let (left, right) = socket_pair(SocketKind::Stream).unwrap();
        let garbage = [0xAAu8; 64];
        sys::send_vectored(left.as_fd(), &[IoSlice::new(&garbage)], &[]).unwrap();
        let mut reader = FrameReader::default();
        let outcome = read_frame_blocking(right.as_fd(), &mut reader, None, "test");
        assert!(matches!(outcome, Err(Error::Corrupted { .. })), "{outcome:?}");
    }
}
