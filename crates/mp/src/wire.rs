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
    cell::{Cell, RefCell},
    collections::VecDeque,
    io::{self, IoSlice},
    os::fd::{AsFd, AsRawFd, BorrowedFd, OwnedFd, RawFd},
};

use serde::{Deserialize, Deserializer, Serialize, Serializer, de::DeserializeOwned};

use crate::{
    Error, Result,
    ring::Ring,
    sys::{self, BodyLanding, Landing},
};

const MAGIC: u32 = 0x6d70_4652; // "mpFR"
const HEADER_LEN: usize = 24;
/// Meta parts are small control records; anything larger is a damaged header.
const MAX_META_LEN: u32 = 16 << 20;
/// 1 TiB: a larger body length can only be a damaged header.
const MAX_BODY_LEN: u64 = 1 << 40;
pub(crate) use crate::sys::HUGE_PAGES_FROM;
/// Bodies at least this large are copied out of a ring with stores that bypass the caches
/// (`sys::copy_streaming`): half of this machine's last-level cache (32 MiB), beyond which the
/// receiver's buffer would only push everything else out of it. Below, plain stores leave the
/// body in the caches for whoever reads it next: streaming from 4 MiB, a 4 MiB message took
/// 0.18-0.21 ms one way, from 16 MiB 0.10-0.12 ms (alternating builds, 4 runs each).
const STREAMING_FROM: usize = 16 << 20;
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
            if ring.push(&parts) {
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

    /// Bytes of the frame not written yet.
    pub(crate) fn remaining(&self) -> usize {
        self.total_len() - self.written
    }

    /// Detaches the frame from the caller's buffer, copying only the part not yet written.
    /// The copy is as large as the message, so an allocation that fails is `Err` with the
    /// bytes it asked for (the frame is dropped), never an abort.
    fn try_into_owned(self) -> Result<OutFrame<'static>, usize> {
        let body_start = HEADER_LEN + self.meta.len();
        let (body, written) = match self.body {
            Cow::Owned(body) => (body, self.written),
            Cow::Borrowed(body) => {
                // Keep the frame's arithmetic: a copied tail starts where we are.
                let done = self.written.saturating_sub(body_start);
                let mut tail = Vec::new();
                tail.try_reserve_exact(body.len() - done).map_err(|_| body.len() - done)?;
                tail.extend_from_slice(&body[done..]);
                (tail, self.written.min(body_start))
            }
        };
        Ok(OutFrame {
            header: self.header,
            meta: self.meta,
            body: Cow::Owned(body),
            fds: self.fds,
            written,
        })
    }
}

/// Frames waiting to be written to one socket, in order.
#[derive(Debug, Default)]
pub(crate) struct Outbox {
    frames: VecDeque<OutFrame<'static>>,
    /// The sum of the queued frames' lengths (a frame counts whole until it is out).
    queued: usize,
    /// The lengths of the frames written out so far.
    delivered: u64,
}

impl Outbox {
    pub(crate) fn is_empty(&self) -> bool {
        self.frames.is_empty()
    }

    /// Bytes in the queue, the part of its first frame already written included.
    pub(crate) fn queued_bytes(&self) -> usize {
        self.queued
    }

    /// Queues a copy of (the rest of) `frame`; `Err` with the bytes the copy needed when they
    /// could not be allocated (nothing is queued then).
    pub(crate) fn try_push(&mut self, frame: OutFrame<'_>) -> Result<(), usize> {
        let frame = frame.try_into_owned()?;
        self.queued += frame.total_len();
        self.frames.push_back(frame);
        Ok(())
    }

    fn pop_front(&mut self) {
        if let Some(frame) = self.frames.pop_front() {
            self.queued -= frame.total_len();
            self.delivered += frame.total_len() as u64;
        }
    }

    /// Grows whenever bytes of the queue go out: a sender waiting for the queue to drain
    /// sees whether the receiver is taking it.
    pub(crate) fn progress(&self) -> u64 {
        self.delivered + self.frames.front().map_or(0, |front| front.written as u64)
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
                    self.pop_front();
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
            self.pop_front();
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
        /// The body goes into the offered landing, not into `buf`.
        landed: bool,
    },
    /// The frame's meta or body could not be allocated: its `left` bytes are read and dropped,
    /// so that the stream stays in step, and then the error is returned.
    Skip {
        left: usize,
        failed: usize,
        frame_len: usize,
        n_fds: usize,
    },
}

/// Bytes read at a time while dropping a frame that could not be allocated.
const SKIP_STEP: usize = 64 << 10;

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
    dyn FnMut(ReadInto<'_>, usize, bool, &mut Vec<OwnedFd>) -> io::Result<usize> + 'a;

/// The error for a stream that ended inside a frame.
fn closed_mid_message() -> Error {
    Error::Corrupted {
        message: "the sending process closed the connection in the middle of a message (it \
                  probably died while sending)"
            .into(),
    }
}

/// What a failed read means for the frame being read: `None` to try again (a signal).
fn read_failure(error: io::Error) -> Option<Result<ReadOutcome>> {
    match error.kind() {
        io::ErrorKind::WouldBlock => Some(Ok(ReadOutcome::WouldBlock)),
        io::ErrorKind::Interrupted => None,
        io::ErrorKind::ConnectionReset => Some(Ok(ReadOutcome::Closed)),
        io::ErrorKind::InvalidData => Some(Err(Error::Corrupted { message: error.to_string() })),
        _ => Some(Err(Error::io("reading from a connection", error))),
    }
}

/// Where a read puts its bytes: the reader's own buffer (the usual case, kept free of dynamic
/// calls: a small message's path is measured in instructions), or an offered landing.
enum ReadInto<'a> {
    Buffer(&'a mut Vec<u8>),
    Landing(&'a mut dyn Landing),
}

/// Assembles frames from a non-blocking socket (or a ring), keeping partial frames between
/// calls.
#[derive(Debug, Default)]
pub(crate) struct FrameReader {
    state: ReadState,
    buf: Vec<u8>,
    /// The buffer headers are read into, kept aside while a meta and a body are read (they
    /// leave with the frame), so that a frame without meta allocates nothing of its own.
    header_buf: Vec<u8>,
    fds: Vec<OwnedFd>,
    /// A buffer to receive the next body into (its capacity is reused).
    body_buffer: Option<Vec<u8>>,
    /// Where the next bytes body goes instead, if it fits (see [`FrameReader::offer_landing`]).
    landing: Option<Box<dyn BodyLanding>>,
    /// Descriptors announced by a frame that was read and dropped (it did not fit in memory)
    /// and that travel separately (the rings): the caller takes them off the socket and closes
    /// them, or the next frame that carries descriptors would get them.
    dropped_fds: usize,
}

impl FrameReader {
    /// Reads until a whole frame is in, or the socket has nothing more for now.
    pub(crate) fn read_frame(&mut self, fd: BorrowedFd<'_>) -> Result<ReadOutcome> {
        self.read_frame_with(
            &mut |into, max, _, fds| match into {
                ReadInto::Buffer(buffer) => sys::recv_into_spare(fd, buffer, max, fds),
                ReadInto::Landing(landing) => sys::recv_into_spare(fd, landing, max, fds),
            },
            READ_STEP,
            false,
        )
    }

    /// Reads a frame from `ring`; its descriptors come separately (`Frame::announced_fds`).
    pub(crate) fn read_frame_ring(&mut self, ring: &Ring) -> Result<ReadOutcome> {
        let outcome = match self.take_whole_frame(ring) {
            Some(taken) => taken.map(ReadOutcome::Frame),
            None => self.read_frame_with(
                &mut |into, max, streaming, _| match into {
                    ReadInto::Buffer(buffer) => ring.pop_into(buffer, max, streaming),
                    ReadInto::Landing(landing) => ring.pop_into(landing, max, streaming),
                },
                crate::ring::STEP,
                true,
            ),
        };
        // Once per frame (or per pause in one): what was read is freed for the writer.
        ring.publish_read().map_err(|error| Error::Corrupted { message: error.to_string() })?;
        outcome
    }

    /// The usual case on a ring, in one go: a whole frame is there, and no part of it was
    /// read yet, nor is a landing offered. `None` (nothing taken) for anything else, and for
    /// everything that is an error (a damaged header, a ring that is unusable, a meta or body
    /// that does not fit in memory): the general path ([`FrameReader::read_frame_with`]) deals
    /// with those, and reports them. The general path reads a header, a meta and a body in
    /// three rounds, each asking the ring what it holds; this is one look, and for a frame of
    /// up to 40 bytes one copy.
    fn take_whole_frame(&mut self, ring: &Ring) -> Option<Result<Frame>> {
        if !matches!(self.state, ReadState::Header)
            || !self.buf.is_empty()
            || self.landing.is_some()
        {
            return None;
        }
        let (first_bytes, unread) = ring.peek(HEADER_LEN)?;
        let header = decode_header(first_bytes[..HEADER_LEN].try_into().expect("40 > 24")).ok()?;
        let frame_len = HEADER_LEN + header.meta_len + header.body_len;
        // A larger frame is freed for the writer as it is read, step by step.
        if frame_len > unread || frame_len > crate::ring::STEP {
            return None;
        }
        let mut meta = Vec::new();
        meta.try_reserve_exact(header.meta_len).ok()?;
        let mut body = self.body_buffer.take().unwrap_or_default();
        body.clear();
        if body.try_reserve_exact(header.body_len).is_err() {
            self.body_buffer = Some(body);
            return None;
        }
        // From here on the frame is taken: bytes that are not there now (the writer moved its
        // position back: shared memory changed from outside) are an error, and the ring is
        // poisoned.
        let taken = if frame_len <= unread.min(crate::ring::INLINE_CAPACITY) {
            // All of it came with the look at the header (the usual small message).
            let body_start = HEADER_LEN + header.meta_len;
            meta.extend_from_slice(&first_bytes[HEADER_LEN..body_start]);
            body.extend_from_slice(&first_bytes[body_start..frame_len]);
            ring.skip(frame_len)
        } else {
            ring.skip(HEADER_LEN)
                .and_then(|()| pop_exactly(ring, &mut meta, header.meta_len))
                .and_then(|()| pop_exactly(ring, &mut body, header.body_len))
        };
        if let Err(error) = taken {
            return Some(Err(Error::Corrupted { message: error.to_string() }));
        }
        Some(Ok(Frame {
            kind: header.kind,
            meta,
            body,
            fds: Vec::new(),
            announced_fds: header.n_fds,
        }))
    }

    /// How many descriptors the frame being read announced (0 before its header is in).
    pub(crate) fn announced_fds(&self) -> usize {
        match &self.state {
            ReadState::Header => self.dropped_fds,
            ReadState::Meta { header } | ReadState::Body { header, .. } => header.n_fds,
            ReadState::Skip { n_fds, .. } => *n_fds,
        }
    }

    /// How many descriptors a frame that was just read and dropped announced (see
    /// `dropped_fds`); the caller now owns the job of closing them.
    pub(crate) fn take_dropped_fds(&mut self) -> usize {
        std::mem::take(&mut self.dropped_fds)
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

    /// Receive the next body, if it is bytes that the landing takes (a whole number of its
    /// elements), into `landing`: the frame then comes with an empty body, and the bytes are
    /// in the landing that [`FrameReader::take_landing`] gives back.
    pub(crate) fn offer_landing(&mut self, landing: Box<dyn BodyLanding>) {
        self.landing = Some(landing);
    }

    /// The landing given to [`FrameReader::offer_landing`]. A body only partly received into
    /// it (the receive stopped in the middle: a timeout, an error) moves into this reader's own
    /// buffer first, so that the next receive, whoever makes it, goes on with it.
    pub(crate) fn take_landing(&mut self) -> Option<Box<dyn BodyLanding>> {
        let mut landing = self.landing.take()?;
        let ReadState::Body { header, landed, .. } = &mut self.state else {
            return Some(landing);
        };
        if !*landed {
            return Some(landing);
        }
        *landed = false;
        let body_len = header.body_len;
        let received = landing.received();
        if self.buf.try_reserve_exact(body_len).is_ok() {
            self.buf.extend_from_slice(received);
        } else {
            // Dropped with the rest of the frame, like a body that never fitted.
            let partial = received.len();
            self.skip_frame(body_len);
            if let ReadState::Skip { left, .. } = &mut self.state {
                *left -= partial;
            }
        }
        landing.truncate(0);
        Some(landing)
    }

    /// Goes on to drop the rest of the current frame: `want` bytes for its meta or body could
    /// not be allocated. False (and nothing changed) outside a meta or a body.
    fn skip_frame(&mut self, want: usize) -> bool {
        let (header, read) = match std::mem::take(&mut self.state) {
            ReadState::Meta { header } => (header, 0),
            ReadState::Body { header, .. } => (header, header.meta_len),
            other => {
                self.state = other;
                return false;
            }
        };
        let frame_len = header.meta_len + header.body_len;
        // What was read of the part that failed is dropped with the rest.
        let left = frame_len - read - self.buf.len();
        self.buf = Vec::new();
        self.buf.reserve_exact(SKIP_STEP.min(left));
        self.state = ReadState::Skip { left, failed: want, frame_len, n_fds: header.n_fds };
        true
    }

    /// Reads the rest of the current body into the offered landing: `None` once all of it is
    /// in, or what the read must return meanwhile.
    fn fill_landing(
        &mut self,
        read: &mut ReadSource<'_>,
        read_step: usize,
    ) -> Result<Option<ReadOutcome>> {
        let ReadState::Body { header, .. } = &self.state else {
            unreachable!("called for a body");
        };
        let body_len = header.body_len;
        let streaming = body_len >= STREAMING_FROM;
        let landing = self.landing.as_deref_mut().expect("a body lands only while offered");
        while landing.filled() < body_len {
            let step = (body_len - landing.filled()).min(read_step);
            match read(ReadInto::Landing(landing), step, streaming, &mut self.fds) {
                Ok(0) => return Err(closed_mid_message()),
                Ok(_) => {}
                Err(error) => {
                    if let Some(outcome) = read_failure(error) {
                        return outcome.map(Some);
                    }
                }
            }
        }
        Ok(None)
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
                // All of it goes into the landing, none into the buffer.
                ReadState::Body { landed: true, .. } => match self.fill_landing(read, read_step)? {
                    Some(outcome) => return Ok(outcome),
                    None => 0,
                },
                ReadState::Body { header, .. } => header.body_len,
                ReadState::Skip { left, .. } => (*left).min(SKIP_STEP),
            };
            if self.buf.len() < want {
                if self.buf.capacity() < want {
                    // Sized by the sender: a failure is an error for this message, not an abort.
                    if self.buf.try_reserve_exact(want - self.buf.len()).is_err() {
                        if self.skip_frame(want) {
                            continue;
                        }
                        // A header or a skip step: small and fixed, not sized by a message.
                        self.buf.reserve_exact(want - self.buf.len());
                    }
                    if want >= HUGE_PAGES_FROM {
                        sys::advise_huge_pages(&mut self.buf);
                    }
                }
                let step = (want - self.buf.len()).min(read_step);
                let streaming =
                    matches!(self.state, ReadState::Body { .. }) && want >= STREAMING_FROM;
                match read(ReadInto::Buffer(&mut self.buf), step, streaming, &mut self.fds) {
                    Ok(0) => {
                        let between_frames =
                            matches!(self.state, ReadState::Header) && self.buf.is_empty();
                        if between_frames {
                            return Ok(ReadOutcome::Closed);
                        }
                        return Err(closed_mid_message());
                    }
                    Ok(_) => continue,
                    Err(error) => match read_failure(error) {
                        Some(outcome) => return outcome,
                        None => continue,
                    },
                }
            }
            match std::mem::take(&mut self.state) {
                ReadState::Header => {
                    let bytes: [u8; HEADER_LEN] = self.buf[..HEADER_LEN].try_into().unwrap();
                    self.buf.clear();
                    self.header_buf = std::mem::take(&mut self.buf);
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
                    // A landing that cannot have the body (another size, no memory) leaves it
                    // to the buffer, which reports what does not fit.
                    let landed = header.kind == BodyKind::Bytes
                        && header.body_len > 0
                        && self
                            .landing
                            .as_mut()
                            .is_some_and(|landing| landing.reserve(header.body_len) == Ok(true));
                    if !landed && let Some(mut body) = self.body_buffer.take() {
                        body.clear();
                        self.buf = body;
                    }
                    self.state = ReadState::Body { header, meta, landed };
                }
                ReadState::Skip { left, failed, frame_len, n_fds } => {
                    let left = left - self.buf.len();
                    self.buf.clear();
                    if left > 0 {
                        self.state = ReadState::Skip { left, failed, frame_len, n_fds };
                        continue;
                    }
                    // Its descriptors, if any, are closed with it.
                    if external_fds {
                        self.dropped_fds = n_fds;
                    } else {
                        self.fds.clear();
                    }
                    return Err(out_of_memory(
                        failed,
                        format!(
                            "receiving a message of {} (it was read and dropped)",
                            crate::units::Bytes(frame_len as u64)
                        ),
                    ));
                }
                ReadState::Body { header, meta, .. } => {
                    let body =
                        std::mem::replace(&mut self.buf, std::mem::take(&mut self.header_buf));
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

/// Moves exactly `len` unread bytes of `ring` to `out` (which has the room).
fn pop_exactly(ring: &Ring, out: &mut Vec<u8>, len: usize) -> io::Result<()> {
    if len == 0 {
        return Ok(());
    }
    match ring.pop_into(out, len, false)? {
        popped if popped == len => Ok(()),
        _ => Err(io::Error::new(
            io::ErrorKind::InvalidData,
            "the write position of a pipe moved back (its shared memory was changed from outside \
             mp)",
        )),
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
    /// The descriptors met while encoding on this thread, the innermost encoding's last.
    static OUTGOING_FDS: RefCell<Vec<OwnedFd>> = const { RefCell::new(Vec::new()) };
    /// Where the innermost encoding's descriptors start in `OUTGOING_FDS` (`None`: no encoding
    /// here), and the list's length. Plain `Copy` cells, cheap to reach on every message; the
    /// list has a destructor, and reaching it cost about 40 instructions per access once the
    /// compiler stopped inlining it (callgrind), so a value without handles never touches it.
    static OUTGOING_START: Cell<Option<usize>> = const { Cell::new(None) };
    static OUTGOING_LEN: Cell<usize> = const { Cell::new(0) };
    static INCOMING_FDS: RefCell<Option<Vec<Option<OwnedFd>>>> = const { RefCell::new(None) };
    /// Why a value refused to be encoded by [`encode`] ([`refuse`]): postcard drops the text of
    /// a `custom` error, so it waits here for `encode` to report it. Touched only on that
    /// error path.
    static REFUSAL: Cell<Option<String>> = const { Cell::new(None) };
}

/// The error a `Serialize` impl returns when its value cannot travel, saying why; inside
/// [`encode`] the text reaches the caller's [`Error::Serialization`] (postcard alone would
/// report only "Serde Serialization Error").
pub(crate) fn refuse<E: serde::ser::Error>(message: String) -> E {
    if OUTGOING_START.get().is_some() {
        REFUSAL.set(Some(message.clone()));
    }
    E::custom(message)
}

/// Encodes `value` with postcard, collecting the descriptors of any handles inside it, behind
/// its type's [`tag`].
///
/// Vectors of floats and bytes take the [`bulk`] fast path: the same bytes, copied whole.
pub(crate) fn encode<T: Serialize + ?Sized + 'static>(
    value: &T,
) -> Result<(Vec<u8>, Vec<OwnedFd>)> {
    let tag = tag::of::<T>();
    if let Some(bytes) = bulk::encode(value, Some(tag)) {
        bulk::count_use();
        return Ok((bytes?, Vec::new()));
    }
    encode_tagged(value, tag)
}

/// As [`encode`] but always through serde, for types that may borrow (not `'static`).
pub(crate) fn encode_postcard<T: Serialize + ?Sized>(value: &T) -> Result<(Vec<u8>, Vec<OwnedFd>)> {
    encode_tagged(value, tag::of::<T>())
}

fn encode_tagged<T: Serialize + ?Sized>(
    value: &T,
    tag: tag::TypeTag,
) -> Result<(Vec<u8>, Vec<OwnedFd>)> {
    // Room for a small value and its name at once (a fixed size, not the message's: plain
    // allocation); larger values grow fallibly from there.
    let mut bytes = Vec::with_capacity(64);
    tag::push_word(&mut bytes, tag);
    let mut failed = None;
    let start = OUTGOING_LEN.get();
    let outer = OUTGOING_START.replace(Some(start));
    let encoded = postcard::serialize_with_flavor(
        value,
        TryExtend { bytes: &mut bytes, failed: &mut failed },
    );
    OUTGOING_START.set(outer);
    // Also after an error: the descriptors collected so far are dropped with the message.
    let fds = if OUTGOING_LEN.get() == start { Vec::new() } else { take_outgoing(start) };
    if let Some(wanted) = failed {
        return Err(out_of_memory(wanted, "encoding a message"));
    }
    encoded.map_err(|error| match REFUSAL.take() {
        Some(refusal) => Error::serialization(refusal),
        None => Error::serialization(error),
    })?;
    tag::push_name(&mut bytes, tag);
    Ok((bytes, fds))
}

/// An empty buffer with room for `len` bytes, or the error that names the size.
fn try_buffer(len: usize, what: &str) -> Result<Vec<u8>> {
    let mut buffer = Vec::new();
    buffer.try_reserve_exact(len).map_err(|_| out_of_memory(len, what))?;
    Ok(buffer)
}

/// [`Error::OutOfMemory`] for `bytes` of `what`.
pub(crate) fn out_of_memory(bytes: usize, what: impl Into<String>) -> Error {
    Error::OutOfMemory { bytes: bytes as u64, what: what.into() }
}

/// Postcard's output as a growing vector whose growth may fail: postcard's own `to_stdvec`
/// aborts the process when a large value does not fit in memory.
struct TryExtend<'a> {
    bytes: &'a mut Vec<u8>,
    /// The size that could not be allocated; postcard's error type has no room for it.
    failed: &'a mut Option<usize>,
}

impl TryExtend<'_> {
    #[cold]
    fn grow(&mut self, additional: usize) -> postcard::Result<()> {
        if self.bytes.try_reserve(additional).is_err() {
            // What `Vec` asked for: double, or what is needed if that is more.
            *self.failed = Some((self.bytes.capacity() * 2).max(self.bytes.len() + additional));
            return Err(postcard::Error::SerializeBufferFull);
        }
        Ok(())
    }
}

impl postcard::ser_flavors::Flavor for TryExtend<'_> {
    type Output = ();

    // Both check the room themselves and grow out of line: these run once per byte or field.
    #[inline]
    fn try_extend(&mut self, data: &[u8]) -> postcard::Result<()> {
        if self.bytes.capacity() - self.bytes.len() < data.len() {
            self.grow(data.len())?;
        }
        self.bytes.extend_from_slice(data);
        Ok(())
    }

    #[inline]
    fn try_push(&mut self, data: u8) -> postcard::Result<()> {
        if self.bytes.len() == self.bytes.capacity() {
            self.grow(1)?;
        }
        self.bytes.push(data);
        Ok(())
    }

    fn finalize(self) -> postcard::Result<()> {
        Ok(())
    }
}

/// Decodes a message from [`encode`], handing out the descriptors that came with it. A message
/// of another type is [`Error::TypeMismatch`].
///
/// Vectors of floats and bytes take the [`bulk`] fast path, with postcard's errors.
pub(crate) fn decode<T: DeserializeOwned + 'static>(bytes: &[u8], fds: Vec<OwnedFd>) -> Result<T> {
    let value = tag::check::<T>(bytes)?;
    if let Some(decoded) = bulk::decode(value) {
        bulk::count_use();
        return decoded.map_err(|failure| failure.into_error(value.len()));
    }
    decode_untagged(value, fds)
}

/// As [`decode`] but always through serde, for types that may borrow (not `'static`).
pub(crate) fn decode_postcard<T: DeserializeOwned>(bytes: &[u8], fds: Vec<OwnedFd>) -> Result<T> {
    decode_untagged(tag::check::<T>(bytes)?, fds)
}

fn decode_untagged<T: DeserializeOwned>(bytes: &[u8], fds: Vec<OwnedFd>) -> Result<T> {
    if fds.is_empty() {
        // Nothing to hand out (the usual case): a handle in the value finds no list, which is
        // the same error as an index beyond an empty one, and the thread-local is left alone.
        return postcard::from_bytes(bytes).map_err(decode_error);
    }
    let previous = swap_incoming(Some(fds.into_iter().map(Some).collect()));
    // Not covered by fallible allocation: serde's own `Vec` and `String` grow infallibly (postcard
    // caps their first reservation, so a lying length costs nothing, but a real 1 GiB `Vec<u32>`
    // beyond the memory limit still aborts). The bulk types above are covered.
    let decoded = postcard::from_bytes(bytes);
    swap_incoming(previous);
    decoded.map_err(decode_error)
}

/// The descriptors collected from `start` on, removed from the list.
fn take_outgoing(start: usize) -> Vec<OwnedFd> {
    OUTGOING_LEN.set(start);
    OUTGOING_FDS.with(|list| list.borrow_mut().split_off(start))
}

fn swap_incoming(list: Option<Vec<Option<OwnedFd>>>) -> Option<Vec<Option<OwnedFd>>> {
    INCOMING_FDS.with(|slot| std::mem::replace(&mut *slot.borrow_mut(), list))
}

fn decode_error(error: postcard::Error) -> Error {
    Error::serialization(format!(
        "{error} (the sender and receiver must agree on the message type, \
         and postcard cannot encode serde's `flatten` or `untagged`)"
    ))
}

/// Type fingerprints: every typed body is `[tag word][value][name][name length]`.
///
/// The word (a little-endian `u32`) holds a 31-bit fingerprint of the value's type and, in its
/// top bit, whether the sender's type name follows the value (then its last byte is the
/// name's length). The receiver compares fingerprints before it decodes anything, so a wrong
/// type is [`Error::TypeMismatch`] instead of a wrong value, and the name lets the error say
/// both types.
///
/// The fingerprint hashes [`std::any::type_name`], which Rust promises neither unique nor
/// stable between compilations. Both ends here are one executable (workers `exec`
/// `/proc/self/exe`), so they hash the same strings; and the name is only for the message.
/// Types that serde encodes alike count as one: `&T` and `T`, `Box`/`Rc`/`Arc`/`Cow` of `T`
/// and `T`, `[T]` and `Vec<T>`, `str` and `String` (the pool sends `[A]` and decodes
/// `Vec<A>`, and `Comm::send` of `&(step, &value)` meets a `recv` of `(u64, T)`).
///
/// Cost: 4 bytes per message, and a look-up in a per-thread cache keyed by the address of the
/// type's name (the canonical form and its hash are computed once per type and process). The
/// name travels unless it would push a frame that fits the ring's inline copy (40 bytes with
/// the header, `ring.rs`) past it: a small message would then cost a second transfer between
/// CPUs, for a name that is only read on a mismatch. So the smallest messages of long-named
/// types (a 12-character `String`, a struct of two `f64`) go without it, and their mismatch
/// names the receiver's type only.
mod tag {
    use std::{cell::Cell, sync::Mutex};

    use super::HEADER_LEN;
    use crate::{Error, Result};

    /// Bytes of the tag word.
    pub(super) const LEN: usize = 4;
    /// The tag word's flag: the sender's type name follows the value.
    const NAMED: u32 = 1 << 31;
    /// The largest frame a ring also copies beside its write position (`INLINE_CAPACITY` in
    /// `ring.rs`).
    const INLINE_FRAME: usize = 40;
    /// Slots of the per-thread cache of recent types (direct-mapped).
    const RECENT_SLOTS: usize = 16;

    #[derive(Clone, Copy, Debug, PartialEq, Eq)]
    pub(crate) struct TypeTag {
        /// 31 bits of a hash of the canonical type name.
        pub(super) fingerprint: u32,
        /// The canonical name without paths (`Vec<String>`), at most 255 bytes.
        pub(super) name: &'static str,
    }

    /// A type's name, by the address and length of its `type_name` string, and its tag.
    #[derive(Clone, Copy)]
    struct Known {
        key: (usize, usize),
        tag: TypeTag,
    }

    thread_local! {
        // Plain `Copy` cells: no destructor to register, so a look-up is a few instructions
        // (a `RefCell<Vec>` here cost about 60 per call, measured with callgrind).
        static RECENT: [Cell<Option<Known>>; RECENT_SLOTS] =
            const { [const { Cell::new(None) }; RECENT_SLOTS] };
    }

    /// Every type described so far, for the threads whose cache slot another type took.
    static DESCRIBED: Mutex<Vec<Known>> = Mutex::new(Vec::new());

    /// `T`'s tag.
    #[inline]
    pub(crate) fn of<T: ?Sized>() -> TypeTag {
        let raw = std::any::type_name::<T>();
        // Within one process the name of one type is one string: its address is a key. (Two
        // copies of it in two codegen units are two keys for one tag: only a cache miss.)
        let key = (raw.as_ptr() as usize, raw.len());
        let slot = (key.0 >> 3 ^ key.1) % RECENT_SLOTS;
        let cached = RECENT.try_with(|recent| match recent[slot].get() {
            Some(known) if known.key == key => known.tag,
            _ => {
                let tag = look_up(key, raw);
                recent[slot].set(Some(Known { key, tag }));
                tag
            }
        });
        // During thread exit the cache may be gone.
        cached.unwrap_or_else(|_| look_up(key, raw))
    }

    #[cold]
    fn look_up(key: (usize, usize), raw: &str) -> TypeTag {
        let mut described = DESCRIBED.lock().unwrap_or_else(|poison| poison.into_inner());
        if let Some(known) = described.iter().find(|known| known.key == key) {
            return known.tag;
        }
        let tag = describe(raw);
        described.push(Known { key, tag });
        tag
    }

    fn describe(raw: &str) -> TypeTag {
        let canonical = canonical(raw);
        // FNV-1a, folded to 31 bits.
        let mut hash: u64 = 0xcbf2_9ce4_8422_2325;
        for byte in canonical.bytes() {
            hash = (hash ^ u64::from(byte)).wrapping_mul(0x0100_0000_01b3);
        }
        let fingerprint = ((hash >> 32) as u32 ^ hash as u32) & !NAMED;
        // Kept for the life of the process: once per type (and per copy of its name string).
        TypeTag { fingerprint, name: Box::leak(short(&canonical).into_boxed_str()) }
    }

    /// The one name of all the types that serde encodes alike (see the module docs).
    pub(super) fn canonical(ty: &str) -> String {
        const TRANSPARENT: [&str; 4] =
            ["alloc::boxed::Box", "alloc::rc::Rc", "alloc::sync::Arc", "alloc::borrow::Cow"];
        let ty = ty.trim();
        if let Some(rest) = ty.strip_prefix('&') {
            let rest = rest.trim_start();
            return canonical(rest.strip_prefix("mut ").unwrap_or(rest));
        }
        if ty == "str" {
            return "alloc::string::String".into();
        }
        if let Some(inner) = ty.strip_prefix('[').and_then(|ty| ty.strip_suffix(']')) {
            return match split_top(inner, ';').as_slice() {
                [element] => format!("alloc::vec::Vec<{}>", canonical(element)),
                [element, len] => format!("[{}; {}]", canonical(element), len.trim()),
                _ => ty.to_string(),
            };
        }
        if let Some(inner) = ty.strip_prefix('(').and_then(|ty| ty.strip_suffix(')')) {
            let items: Vec<String> = split_top(inner, ',')
                .into_iter()
                .filter(|item| !item.trim().is_empty())
                .map(canonical)
                .collect();
            let one = if items.len() == 1 { "," } else { "" };
            return format!("({}{one})", items.join(", "));
        }
        if let Some(open) = ty.find('<')
            && let Some(args) = ty[open + 1..].strip_suffix('>')
        {
            let path = &ty[..open];
            let args: Vec<String> = split_top(args, ',')
                .into_iter()
                .map(str::trim)
                .filter(|arg| !arg.starts_with('\''))
                .map(canonical)
                .collect();
            if TRANSPARENT.contains(&path)
                && let Some(inner) = args.first()
            {
                return inner.clone();
            }
            return format!("{path}<{}>", args.join(", "));
        }
        ty.to_string()
    }

    /// `text` split at `separator`s outside brackets.
    fn split_top(text: &str, separator: char) -> Vec<&str> {
        let mut parts = Vec::new();
        let (mut depth, mut start, mut previous) = (0usize, 0, ' ');
        for (at, c) in text.char_indices() {
            match c {
                '<' | '(' | '[' => depth += 1,
                // `->` in a function pointer type closes nothing.
                '>' if previous == '-' => {}
                '>' | ')' | ']' => depth = depth.saturating_sub(1),
                _ if c == separator && depth == 0 => {
                    parts.push(&text[start..at]);
                    start = at + c.len_utf8();
                }
                _ => {}
            }
            previous = c;
        }
        parts.push(&text[start..]);
        parts
    }

    /// `ty` without paths: `Vec<String>` for `alloc::vec::Vec<alloc::string::String>`, cut to
    /// 255 bytes.
    pub(super) fn short(ty: &str) -> String {
        let mut out = String::with_capacity(ty.len());
        let mut rest = ty;
        while let Some(at) = rest.find("::") {
            out.push_str(&rest[..at]);
            let segment = out.trim_end_matches(|c: char| c.is_alphanumeric() || c == '_').len();
            out.truncate(segment);
            rest = &rest[at + 2..];
        }
        out.push_str(rest);
        let mut end = out.len().min(usize::from(u8::MAX));
        while !out.is_char_boundary(end) {
            end -= 1;
        }
        out.truncate(end);
        out
    }

    #[inline]
    pub(super) fn push_word(out: &mut Vec<u8>, tag: TypeTag) {
        out.extend_from_slice(&tag.fingerprint.to_le_bytes());
    }

    /// Bytes the name adds after a value of `value_len` bytes: its length and one, or 0 where
    /// it would push an inline frame out of the inline copy.
    #[inline]
    pub(super) fn name_len(tag: TypeTag, value_len: usize) -> usize {
        let bare = HEADER_LEN + LEN + value_len;
        let named = bare + tag.name.len() + 1;
        if bare > INLINE_FRAME || named <= INLINE_FRAME { tag.name.len() + 1 } else { 0 }
    }

    /// Appends the name to a body that holds the word and the value (if room was reserved or
    /// can be had: without it the message goes unnamed rather than not at all).
    #[inline]
    pub(super) fn push_name(out: &mut Vec<u8>, tag: TypeTag) {
        let len = name_len(tag, out.len() - LEN);
        if len == 0 || (out.capacity() - out.len() < len && out.try_reserve(len).is_err()) {
            return;
        }
        out.extend_from_slice(tag.name.as_bytes());
        out.push(tag.name.len() as u8);
        out[LEN - 1] |= (NAMED >> 24) as u8;
    }

    /// The value's bytes in a typed body, once its fingerprint is `T`'s.
    #[inline]
    pub(crate) fn check<T: ?Sized>(body: &[u8]) -> Result<&[u8]> {
        let (word, rest) = body.split_first_chunk::<LEN>().ok_or_else(damaged)?;
        let word = u32::from_le_bytes(*word);
        let (value, sent) = if word & NAMED == 0 {
            (rest, None)
        } else {
            let (&len, rest) = rest.split_last().ok_or_else(damaged)?;
            let at = rest.len().checked_sub(usize::from(len)).ok_or_else(damaged)?;
            (&rest[..at], Some(&rest[at..]))
        };
        let expected = of::<T>();
        if word & !NAMED != expected.fingerprint {
            return Err(mismatch(sent, expected));
        }
        Ok(value)
    }

    #[cold]
    fn damaged() -> Error {
        Error::Corrupted {
            message: "a typed message has no valid type fingerprint (was it sent with \
                      send_bytes?)"
                .into(),
        }
    }

    #[cold]
    fn mismatch(sent: Option<&[u8]>, expected: TypeTag) -> Error {
        Error::TypeMismatch {
            sent: sent.map(|name| String::from_utf8_lossy(name).into_owned()),
            expected: expected.name.to_string(),
        }
    }
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

    use super::{HUGE_PAGES_FROM, tag};
    use crate::sys;

    /// Why a bulk decode failed: postcard's error for bad input, or memory.
    #[derive(Debug, PartialEq, Eq)]
    pub(super) enum Failure {
        Postcard(Error),
        /// This many bytes could not be allocated.
        OutOfMemory(usize),
    }

    impl From<Error> for Failure {
        fn from(error: Error) -> Failure {
            Failure::Postcard(error)
        }
    }

    impl Failure {
        /// The crate's error, for a message of `message_len` bytes.
        pub(super) fn into_error(self, message_len: usize) -> crate::Error {
            match self {
                Failure::Postcard(error) => super::decode_error(error),
                Failure::OutOfMemory(bytes) => super::out_of_memory(
                    bytes,
                    format!("decoding a message of {}", crate::units::Bytes(message_len as u64)),
                ),
            }
        }
    }

    /// The element types copied as bytes: plain numbers whose postcard encoding is their
    /// little-endian bytes.
    trait Element: bytemuck::Pod {}
    impl Element for f64 {}
    impl Element for f32 {}
    impl Element for u8 {}
    impl Element for i8 {}

    /// The postcard encoding of `value` (behind `tag`'s word and before its name, with a
    /// tag), or `None` when `T` is not a covered type.
    pub(super) fn encode<T: ?Sized + 'static>(
        value: &T,
        tag: Option<tag::TypeTag>,
    ) -> Option<crate::Result<Vec<u8>>> {
        if cfg!(target_endian = "big") {
            return None;
        }
        encode_as::<T, f64>(value, tag)
            .or_else(|| encode_as::<T, f32>(value, tag))
            .or_else(|| encode_as::<T, u8>(value, tag))
            .or_else(|| encode_as::<T, i8>(value, tag))
    }

    /// `bytes` decoded as postcard would, or `None` when `T` is not a covered type.
    pub(super) fn decode<T: 'static>(bytes: &[u8]) -> Option<Result<T, Failure>> {
        if cfg!(target_endian = "big") {
            return None;
        }
        decode_as::<T, f64>(bytes)
            .or_else(|| decode_as::<T, f32>(bytes))
            .or_else(|| decode_as::<T, u8>(bytes))
            .or_else(|| decode_as::<T, i8>(bytes))
    }

    fn encode_as<T: ?Sized + 'static, E: Element>(
        value: &T,
        tag: Option<tag::TypeTag>,
    ) -> Option<crate::Result<Vec<u8>>> {
        if let Some(items) = same_ref::<T, Vec<E>>(value) {
            Some(encode_flat(items, tag))
        } else if let Some(items) = same_ref::<T, [E]>(value) {
            Some(encode_flat(items, tag))
        } else if let Some(vectors) = same_ref::<T, Vec<Vec<E>>>(value) {
            Some(encode_nested(vectors, tag))
        } else {
            same_ref::<T, [Vec<E>]>(value).map(|vectors| encode_nested(vectors, tag))
        }
    }

    fn decode_as<T: 'static, E: Element>(mut bytes: &[u8]) -> Option<Result<T, Failure>> {
        if is::<T, Vec<E>>() {
            same_value(take_flat::<E>(&mut bytes))
        } else if is::<T, Vec<Vec<E>>>() {
            same_value(take_nested::<E>(&mut bytes))
        } else {
            None
        }
    }

    fn encode_flat<E: Element>(items: &[E], tag: Option<tag::TypeTag>) -> crate::Result<Vec<u8>> {
        let mut out = fresh_buffer(flat_len(items), tag)?;
        push_flat(&mut out, items);
        finish(out, tag)
    }

    fn encode_nested<E: Element>(
        vectors: &[Vec<E>],
        tag: Option<tag::TypeTag>,
    ) -> crate::Result<Vec<u8>> {
        let len = varint_len(vectors.len()) + vectors.iter().map(|v| flat_len(v)).sum::<usize>();
        let mut out = fresh_buffer(len, tag)?;
        push_varint(&mut out, vectors.len());
        for items in vectors {
            push_flat(&mut out, items);
        }
        finish(out, tag)
    }

    /// An empty buffer with room for exactly a value of `len` bytes and its tag, so that it
    /// never grows; the tag word is in it already.
    fn fresh_buffer(len: usize, tag: Option<tag::TypeTag>) -> crate::Result<Vec<u8>> {
        let total = match tag {
            Some(tag) => tag::LEN + len + tag::name_len(tag, len),
            None => len,
        };
        let mut out = super::try_buffer(total, "encoding a message")?;
        if total >= HUGE_PAGES_FROM {
            sys::advise_huge_pages(&mut out);
        }
        if let Some(tag) = tag {
            tag::push_word(&mut out, tag);
        }
        Ok(out)
    }

    fn finish(mut out: Vec<u8>, tag: Option<tag::TypeTag>) -> crate::Result<Vec<u8>> {
        if let Some(tag) = tag {
            tag::push_name(&mut out, tag);
        }
        debug_assert_eq!(out.len(), out.capacity(), "one exact allocation");
        Ok(out)
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

    fn take_flat<E: Element>(input: &mut &[u8]) -> Result<Vec<E>, Failure> {
        let len = take_varint(input)?;
        // Postcard would run out of input reading the elements; so do we, before allocating.
        let n_bytes = len
            .checked_mul(size_of::<E>())
            .filter(|&n_bytes| n_bytes <= input.len())
            .ok_or(Error::DeserializeUnexpectedEnd)?;
        let (bytes, rest) = input.split_at(n_bytes);
        *input = rest;
        sys::vec_from_bytes(bytes).map_err(|_| Failure::OutOfMemory(n_bytes))
    }

    fn take_nested<E: Element>(input: &mut &[u8]) -> Result<Vec<Vec<E>>, Failure> {
        let len = take_varint(input)?;
        // Each vector takes at least one byte (its length), so a hostile count reserves at most
        // one slot per input byte; a valid one, exactly its count. Still 24 bytes per input
        // byte: fallible.
        let slots = len.min(input.len());
        let mut vectors = Vec::new();
        vectors
            .try_reserve_exact(slots)
            .map_err(|_| Failure::OutOfMemory(slots * size_of::<Vec<E>>()))?;
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
        let Some(start) = OUTGOING_START.get() else {
            return Err(serde::ser::Error::custom(
                "mp handles (pipes, queues, shared arrays) can only be sent through mp's own \
                 channels and process arguments, not written with another serializer",
            ));
        };
        let duplicate = self.0.try_clone().map_err(serde::ser::Error::custom)?;
        let len = OUTGOING_FDS.with(|list| {
            let mut list = list.borrow_mut();
            list.push(duplicate);
            list.len()
        });
        OUTGOING_LEN.set(len);
        serializer.serialize_u32((len - 1 - start) as u32)
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

    /// The bytes of a whole `Bytes` frame carrying `body`, as they travel.
    fn frame_bytes(body: &[u8]) -> Vec<u8> {
        let (left, right) = socket_pair(SocketKind::Stream).unwrap();
        let body = body.to_vec();
        let writer = std::thread::spawn(move || {
            let frame =
                OutFrame::new(BodyKind::Bytes, Vec::new(), Cow::Borrowed(&body), Vec::new())
                    .unwrap();
            write_blocking(left.as_fd(), frame).unwrap();
        });
        let mut stream = std::os::unix::net::UnixStream::from(right);
        stream.set_nonblocking(false).unwrap();
        writer.join().unwrap();
        let mut bytes = Vec::new();
        stream.shutdown(std::net::Shutdown::Write).unwrap();
        std::io::Read::read_to_end(&mut stream, &mut bytes).unwrap();
        bytes
    }

    /// A reader that reads from the end of a socket pair whose other end the caller writes.
    fn socket_reader() -> (std::os::unix::net::UnixStream, OwnedFd) {
        let (left, right) = socket_pair(SocketKind::Stream).unwrap();
        let writer = std::os::unix::net::UnixStream::from(left);
        writer.set_nonblocking(false).unwrap();
        (writer, right)
    }

    #[test]
    fn a_body_lands_in_the_offered_vector_and_the_frame_carries_none() {
        let numbers: Vec<u64> = (0..10_000).collect();
        let (mut writer, right) = socket_reader();
        std::io::Write::write_all(&mut writer, &frame_bytes(bytemuck::cast_slice(&numbers)))
            .unwrap();
        let mut reader = FrameReader::default();
        let reused = Vec::<u64>::with_capacity(20_000);
        let allocation = reused.as_ptr();
        reader.offer_landing(Box::new(sys::ElementLanding::reusing(reused)));
        let frame = read_frame_blocking(right.as_fd(), &mut reader, None, "test").unwrap().unwrap();
        assert!(frame.body.is_empty() && frame.kind == BodyKind::Bytes);
        let landing: Box<dyn std::any::Any> = reader.take_landing().unwrap();
        let received = landing.downcast::<sys::ElementLanding<u64>>().unwrap().into_vec();
        assert_eq!(received, numbers);
        assert_eq!(received.as_ptr(), allocation, "the offered allocation, not a new one");
    }

    #[test]
    fn a_body_that_is_no_whole_number_of_elements_stays_bytes() {
        let (mut writer, right) = socket_reader();
        std::io::Write::write_all(&mut writer, &frame_bytes(&[1, 2, 3])).unwrap();
        let mut reader = FrameReader::default();
        reader.offer_landing(Box::new(sys::ElementLanding::<u64>::reusing(Vec::new())));
        let frame = read_frame_blocking(right.as_fd(), &mut reader, None, "test").unwrap().unwrap();
        assert_eq!(frame.body, [1, 2, 3]);
        assert_eq!(reader.take_landing().unwrap().filled(), 0);
    }

    #[test]
    fn a_body_interrupted_in_its_landing_goes_on_in_the_next_receive() {
        let numbers: Vec<u32> = (0..50_000).collect();
        let bytes = frame_bytes(bytemuck::cast_slice(&numbers));
        let (mut writer, right) = socket_reader();
        // The header and part of the body, then a receive that times out meanwhile.
        let cut = HEADER_LEN + 4 * 1000 + 3;
        std::io::Write::write_all(&mut writer, &bytes[..cut]).unwrap();
        let mut reader = FrameReader::default();
        reader.offer_landing(Box::new(sys::ElementLanding::<u32>::reusing(Vec::new())));
        let waited = std::time::Duration::from_millis(20);
        let none = read_frame_blocking(right.as_fd(), &mut reader, Some(waited), "test").unwrap();
        assert!(none.is_none());
        let landing = reader.take_landing().unwrap();
        assert_eq!(landing.filled(), 0, "what it held moved into the reader");
        // The next receive, offering nothing, gets the whole body as bytes.
        std::io::Write::write_all(&mut writer, &bytes[cut..]).unwrap();
        let frame = read_frame_blocking(right.as_fd(), &mut reader, None, "test").unwrap().unwrap();
        assert_eq!(frame.body, bytemuck::cast_slice::<u32, u8>(&numbers));
    }

    /// `value_bytes` behind `T`'s tag word (unnamed), as a typed body.
    fn tagged<T: ?Sized>(value_bytes: &[u8]) -> Vec<u8> {
        let mut body = Vec::new();
        tag::push_word(&mut body, tag::of::<T>());
        body.extend_from_slice(value_bytes);
        body
    }

    /// Writes `frame` whole into `ring` (it has the room).
    fn write_into_ring(ring: &Ring, socket: BorrowedFd<'_>, mut frame: OutFrame<'_>) {
        assert_eq!(frame.write_ring(ring, socket).unwrap(), RingWrite::Done);
    }

    #[test]
    fn frames_from_a_ring_arrive_whole_wherever_they_lie_in_it() {
        use crate::ring::{CAPACITY, RingFile, STEP};
        let file = RingFile::create().unwrap();
        let (outbound, inbound) = (file.ring(0, true), file.ring(1, false));
        let (socket, _peer) = socket_pair(SocketKind::Stream).unwrap();
        let mut reader = FrameReader::default();
        // Taken whole in one go (up to STEP bytes) or by the general path (larger), with and
        // without meta, both kinds, into an offered buffer or not; three times round the ring,
        // so that frames and headers are cut by its end at many places.
        let sizes = [0, 1, 15, 16, 17, 40, 1000, 4096, STEP - HEADER_LEN, STEP, 100_000, 333];
        let mut written = 0;
        let mut round = 0u8;
        while written < 3 * CAPACITY {
            round = round.wrapping_add(1);
            for (index, &size) in sizes.iter().enumerate() {
                let body: Vec<u8> = (0..size).map(|byte| (byte % 251) as u8 ^ round).collect();
                let meta = if index % 2 == 0 { Vec::new() } else { vec![round, 9, 8] };
                let kind = if index % 3 == 0 { BodyKind::Value } else { BodyKind::Bytes };
                let frame =
                    OutFrame::new(kind, meta.clone(), Cow::Borrowed(&body), Vec::new()).unwrap();
                written += frame.total_len();
                write_into_ring(&outbound, socket.as_fd(), frame);
                if index % 4 == 1 {
                    // Holding bytes of an earlier message, which must not show.
                    reader.offer_body_buffer(vec![round; size / 2]);
                }
                let ReadOutcome::Frame(frame) = reader.read_frame_ring(&inbound).unwrap() else {
                    panic!("a whole frame of {size} bytes is in the ring");
                };
                assert_eq!((frame.kind, frame.announced_fds), (kind, 0));
                assert_eq!(frame.meta, meta);
                assert!(frame.body == body, "{size} bytes, round {round}");
                // All of it was taken (and freed: three rings' worth go through).
                assert_eq!(inbound.available().unwrap(), 0);
                assert!(reader.between_frames());
            }
        }
    }

    #[test]
    fn a_frame_only_partly_in_a_ring_waits_for_the_rest() {
        use crate::ring::RingFile;
        let file = RingFile::create().unwrap();
        let (outbound, inbound) = (file.ring(0, true), file.ring(1, false));
        let body: Vec<u8> = (0..100).collect();
        let bytes = frame_bytes(&body);
        // Cut inside the header, at its end, inside the body, one byte short.
        for cut in [1, HEADER_LEN - 1, HEADER_LEN, HEADER_LEN + 50, bytes.len() - 1] {
            let mut reader = FrameReader::default();
            outbound.push(&[&bytes[..cut]]);
            assert!(matches!(reader.read_frame_ring(&inbound), Ok(ReadOutcome::WouldBlock)));
            outbound.push(&[&bytes[cut..]]);
            let ReadOutcome::Frame(frame) = reader.read_frame_ring(&inbound).unwrap() else {
                panic!("the rest arrived (cut at {cut})");
            };
            assert_eq!(frame.body, body, "cut at {cut}");
            assert_eq!(inbound.available().unwrap(), 0);
        }
    }

    #[test]
    fn a_damaged_header_in_a_ring_is_an_error_not_a_frame() {
        use crate::ring::RingFile;
        let file = RingFile::create().unwrap();
        let (outbound, inbound) = (file.ring(0, true), file.ring(1, false));
        let mut bytes = frame_bytes(&[1, 2, 3]);
        bytes[9] ^= 1; // The body length, which the check word covers.
        outbound.push(&[&bytes]);
        let mut reader = FrameReader::default();
        assert!(matches!(reader.read_frame_ring(&inbound), Err(Error::Corrupted { .. })));
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
        let fast_bytes =
            bulk::encode(value, None).expect("the fast path covers this type").unwrap();
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
            let slice_bytes = bulk::encode(items.as_slice(), None).unwrap().unwrap();
            assert!(slice_bytes == postcard::to_stdvec(&items).unwrap());

            // As many vectors as `len`, of mixed lengths; and one holding a long vector.
            let many: Vec<Vec<E>> =
                (0..len.min(16384)).map(|i| sample(i % 200, (seed + i) as u64)).collect();
            let one_long = vec![items, Vec::new(), sample(5, 7)];
            for vectors in [many, one_long] {
                agrees_with_postcard(&vectors);
                let slice = vectors.as_slice();
                let slice_bytes = bulk::encode(slice, None).unwrap().unwrap();
                assert!(slice_bytes == postcard::to_stdvec(slice).unwrap());
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
        let fast = bulk::decode::<T>(bytes).expect("covered").map_err(|failure| match failure {
            bulk::Failure::Postcard(error) => error,
            other => panic!("{other:?}"),
        });
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
        let fast = decode::<Vec<f64>>(&tagged::<Vec<f64>>(&flat[..5]), Vec::new());
        let slow = decode::<(u8, Vec<f64>)>(&tagged::<(u8, Vec<f64>)>(&[0, 9]), Vec::new());
        let (fast, slow) = (fast.unwrap_err().to_string(), slow.unwrap_err().to_string());
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
        assert!(bulk::encode(&vec![1u32, 2], None).is_none());
        assert!(bulk::encode(&(1u8, vec![1.0f64]), None).is_none());
        assert!(bulk::encode(&vec![vec![vec![1.0f64]]], None).is_none());
        assert!(bulk::encode("text", None).is_none());
        assert!(bulk::decode::<Vec<u32>>(&[0]).is_none());
        assert!(bulk::decode::<(u8, Vec<f64>)>(&[0, 0]).is_none());
        let value = (7u8, vec![1.0f64, -0.0], vec![3u32; 300]);
        let (bytes, _) = encode(&value).unwrap();
        let untagged = tag::check::<(u8, Vec<f64>, Vec<u32>)>(&bytes).unwrap();
        assert_eq!(untagged, postcard::to_stdvec(&value).unwrap());
        assert_eq!(decode::<(u8, Vec<f64>, Vec<u32>)>(&bytes, Vec::new()).unwrap(), value);
    }

    #[test]
    fn types_that_serde_encodes_alike_share_a_tag() {
        use std::{borrow::Cow, collections::HashMap, sync::Arc};
        assert_eq!(tag::of::<Vec<f64>>(), tag::of::<[f64]>());
        assert_eq!(tag::of::<Vec<f64>>(), tag::of::<&mut [f64]>());
        assert_eq!(tag::of::<(u64, Vec<f64>)>(), tag::of::<(u64, &Vec<f64>)>());
        assert_eq!(tag::of::<(u64, String)>(), tag::of::<(u64, &&str)>());
        assert_eq!(tag::of::<Vec<u8>>(), tag::of::<Box<[u8]>>());
        assert_eq!(tag::of::<String>(), tag::of::<Cow<'static, str>>());
        assert_eq!(tag::of::<Vec<String>>(), tag::of::<Vec<Arc<str>>>());
        let fingerprint = |tag: tag::TypeTag| tag.fingerprint;
        for (one, other) in [
            (tag::of::<f64>(), tag::of::<usize>()),
            (tag::of::<u64>(), tag::of::<usize>()),
            (tag::of::<[f64; 3]>(), tag::of::<Vec<f64>>()),
            (tag::of::<Vec<Vec<f64>>>(), tag::of::<Vec<f64>>()),
            (tag::of::<(u8,)>(), tag::of::<u8>()),
            (tag::of::<Option<u8>>(), tag::of::<u8>()),
        ] {
            assert_ne!(fingerprint(one), fingerprint(other), "{} and {}", one.name, other.name);
        }
        assert_eq!(tag::of::<Vec<String>>().name, "Vec<String>");
        assert_eq!(tag::of::<(u8,)>().name, "(u8,)");
        assert_eq!(tag::of::<&[f64]>().name, "Vec<f64>");
        assert_eq!(tag::of::<HashMap<u8, Option<String>>>().name, "HashMap<u8, Option<String>>");
        assert_eq!(tag::canonical("fn(u8) -> u8"), "fn(u8) -> u8");
        assert_eq!(tag::short(&"a::".repeat(200)), "");
        assert_eq!(tag::short(&"x".repeat(300)).len(), 255);
    }

    #[test]
    fn a_wrong_type_is_an_error_naming_both() {
        let mismatch = |body: &[u8]| match decode::<u64>(body, Vec::new()) {
            Err(Error::TypeMismatch { sent, expected }) => {
                assert_eq!(expected, "u64");
                sent
            }
            other => panic!("{other:?}"),
        };
        let float = encode(&2.5f64).unwrap().0;
        assert_eq!(mismatch(&float).as_deref(), Some("f64"));
        assert_eq!(decode::<f64>(&float, Vec::new()).unwrap(), 2.5);
        let floats = encode(&vec![1.0f64, 2.0, 3.0]).unwrap().0;
        assert_eq!(mismatch(&floats).as_deref(), Some("Vec<f64>"));
        assert_eq!(decode::<Vec<f64>>(&floats, Vec::new()).unwrap(), [1.0, 2.0, 3.0]);
        // A frame of 40 bytes (24 of header, 4 of tag, 12 of string) stays in the ring's
        // inline copy: its name is left out.
        let text = encode(&"eleven char".to_string()).unwrap().0;
        assert_eq!(text.len(), 16);
        assert_eq!(mismatch(&text), None);
        assert_eq!(decode::<String>(&text, Vec::new()).unwrap(), "eleven char");
        let error = decode::<u64>(&text, Vec::new()).unwrap_err().to_string();
        assert!(error.contains("received a value of another type"), "{error}");
        // One byte more is past the inline copy anyway: named.
        let text = encode(&"twelve chars".to_string()).unwrap().0;
        assert_eq!(mismatch(&text).as_deref(), Some("String"));
        // A 1-byte value with its name fits: 24 + 4 + 1 + 3 bytes.
        assert_eq!(encode(&1u8).unwrap().0.len(), 8);
        // A body without a valid tag is damaged, not trusted.
        assert!(matches!(decode::<u64>(&[1, 2], Vec::new()), Err(Error::Corrupted { .. })));
        assert!(matches!(
            decode::<u64>(&[0, 0, 0, 0x80, 9], Vec::new()),
            Err(Error::Corrupted { .. })
        ));
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
