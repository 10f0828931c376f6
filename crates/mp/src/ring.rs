//! The shared-memory data path of a pipe: one ring of bytes per direction, in a memfd that both
//! ends map.
//!
//! A ring carries exactly the frames a socket would (header, meta, body; see `wire.rs`), as a
//! byte stream: the writer copies bytes in at `write_pos` and publishes them by storing the new
//! position (release); the reader copies them out and publishes `read_pos`. Positions are byte
//! counts since the pipe was created (they never wrap), so `write_pos - read_pos` is the number
//! of unread bytes and must lie in `0..=CAPACITY`: anything else is a damaged or hostile peer,
//! reported as `Error::Corrupted`, never trusted.
//!
//! The socket of the pipe stays: it carries descriptors (a byte `F` with `SCM_RIGHTS`), wake-up
//! bytes (`W`, written only when the reader said it is going to sleep), and above all the
//! peer's death, which every wait observes as a hang-up.
//!
//! Layout of the mapping: two sides of `SIDE_BYTES` each (side 0: end 0 writes, end 1 reads;
//! side 1 the other way). A side starts with a 4 KiB header page of control words, each on its
//! own cache line, followed by `CAPACITY` bytes of data.

use std::{
    io,
    os::fd::{AsFd, OwnedFd},
    sync::{
        Arc,
        atomic::{AtomicU64, Ordering, fence},
    },
    time::Duration,
};

use crate::sys::{self, Landing, SharedMapping};

/// Bytes of data per direction. The first pages are touched by every message, the rest only
/// by messages that fill the ring; 1 MiB keeps a large transfer inside the caches.
pub(crate) const CAPACITY: usize = 1 << 20;
/// The writer publishes (and the reader frees) at least every this many bytes, so the two
/// copies of a large message overlap.
pub(crate) const STEP: usize = 64 << 10;
const HEADER_BYTES: usize = sys::CONTROL_BYTES;
const SIDE_BYTES: usize = HEADER_BYTES + CAPACITY;
const MAPPING_BYTES: usize = 2 * SIDE_BYTES;

// Byte offsets of the control words within a side's header page.
const WRITE_POS: usize = 0;
/// A copy of the last small push, on the cache line of `WRITE_POS`: the position of its first
/// byte, its length, and the bytes. A reader that has just seen `WRITE_POS` move has this line
/// already, so a small message costs one transfer between CPUs instead of two (the position,
/// then the ring's data). `INLINE_START` changes before the bytes do (a seqlock): a reader
/// that finds it changed after copying falls back to the ring.
const INLINE_START: usize = 8;
const INLINE_LEN: usize = 16;
const INLINE_BYTES: usize = 24;
/// How many bytes a push may have to be copied inline: a frame header (24 bytes) and 16 more.
pub(crate) const INLINE_CAPACITY: usize = 64 - INLINE_BYTES;
const READ_POS: usize = 64;
/// Who is receiving from this ring: 0, or the token of one `Link` (pid << 32 | serial). Held
/// from the start of a receive to the end of the message it returns, so that each message goes
/// to exactly one of the processes sharing the receiving end, and only the holder touches the
/// socket (the descriptors on it belong to the frames in order). On the line of `READ_POS`,
/// which a lone reader owns: taking and freeing it costs no transfer between CPUs.
const READ_LOCK: usize = 72;
/// `READ_POS` when the read lock was taken. A holder that died before freeing any byte of its
/// message left the ring intact (the next reader takes over); one that freed some of it leaves
/// a stream whose next frame cannot be found (the ring is poisoned).
const READ_LOCKED_AT: usize = 80;
/// How many readers sleep on `READ_EVENT`, waiting for the read lock.
const READ_WAITERS: usize = 88;
/// Futex word, bumped when the read lock is freed while readers wait for it.
const READ_EVENT: usize = 92;
/// How many readers are (about to be) asleep in `poll` on the socket.
const READER_SLEEPING: usize = 128;
/// How many writers are (about to be) asleep on `SPACE_EVENT`.
const WRITER_SLEEPING: usize = 192;
/// Futex word, bumped whenever a reader frees space while a writer sleeps.
const SPACE_EVENT: usize = 196;
/// Who is writing a message: 0, or the token of one `Link` (pid << 32 | serial).
const WRITE_LOCK: usize = 256;
/// Why the stream is unusable (0: it is fine; see [`Poison`]).
const POISONED: usize = 320;
/// The CPU, plus one (0: not known), that the process at this side's writing end ran on at
/// its latest send or wait on the pipe. Stored only when it changes, so the line stays in
/// both CPUs' caches; a waiting reader compares it with its own CPU (see `channel::Spin`).
const WRITER_CPU: usize = 384;

/// Why a ring was made unusable: a message was left half written or half read, so nobody can
/// find where the next one starts. The first cause stays.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[repr(u32)]
pub(crate) enum Poison {
    /// A sending process died or gave up in the middle of a message.
    Writer = 1,
    /// A receiving process died or gave up in the middle of a message.
    Reader = 2,
    /// A frame arrived damaged or cut short.
    Damaged = 3,
}

impl Poison {
    fn message(code: u32) -> &'static str {
        match code {
            1 => {
                "a process sending on this pipe died or gave up in the middle of a message, \
                 leaving it half written (several processes were sharing the same sending end, \
                 or a send failed); the messages after it are lost"
            }
            2 => {
                "a process receiving on this pipe died or gave up in the middle of a message, \
                 which is lost with it (several processes were sharing the receiving end); the \
                 messages after it cannot be found"
            }
            _ => {
                "a message on this pipe arrived damaged or cut short, so the messages after it \
                 cannot be found"
            }
        }
    }
}

/// The memfd of one pipe and its mapping, shared by the endpoints that live in this process.
#[derive(Debug)]
pub(crate) struct RingFile {
    fd: OwnedFd,
    map: Arc<SharedMapping>,
}

impl RingFile {
    /// A fresh pair of empty rings (all-zero memory is the initial state).
    pub(crate) fn create() -> io::Result<Arc<RingFile>> {
        let fd = sys::memfd("mp-pipe", MAPPING_BYTES)?;
        let map = Arc::new(SharedMapping::new(fd.as_fd(), MAPPING_BYTES)?);
        Ok(Arc::new(RingFile { fd, map }))
    }

    /// Maps the rings of a pipe whose endpoint arrived from another process.
    pub(crate) fn adopt(fd: OwnedFd) -> io::Result<Arc<RingFile>> {
        let len = sys::file_size(fd.as_fd())?;
        if len != MAPPING_BYTES {
            return Err(io::Error::new(
                io::ErrorKind::InvalidData,
                format!("a pipe's shared memory has {len} bytes instead of {MAPPING_BYTES}"),
            ));
        }
        let map = Arc::new(SharedMapping::new(fd.as_fd(), MAPPING_BYTES)?);
        Ok(Arc::new(RingFile { fd, map }))
    }

    pub(crate) fn fd(&self) -> &OwnedFd {
        &self.fd
    }

    /// The ring that end `side` writes, or reads when `outbound` is false.
    pub(crate) fn ring(self: &Arc<Self>, side: u8, outbound: bool) -> Ring {
        let index = usize::from((side == 1) != outbound);
        Ring {
            side: sys::MappedSide::new(Arc::clone(&self.map), index * SIDE_BYTES, SIDE_BYTES),
            seen_read: AtomicU64::new(0),
            unpublished: AtomicU64::new(0),
        }
    }
}

/// One direction of a pipe.
#[derive(Debug)]
pub(crate) struct Ring {
    side: sys::MappedSide,
    /// The writer's last look at `read_pos` (private to this process): positions only grow,
    /// so it under-estimates the free space, and re-reading the reader's cache line only when
    /// it seems full spares a transfer between CPUs per message.
    seen_read: AtomicU64,
    /// Bytes the reader has copied out but not yet freed (private to this process): freeing
    /// costs an atomic read-modify-write and a fence, so it happens once per frame (see
    /// [`Ring::publish_read`]) rather than for each part of it.
    unpublished: AtomicU64,
}

fn corrupted(what: &str) -> io::Error {
    io::Error::new(io::ErrorKind::InvalidData, what.to_string())
}

impl Ring {
    fn check_poison(&self) -> io::Result<()> {
        match self.side.u32_at::<POISONED>().load(Ordering::Acquire) {
            0 => Ok(()),
            code => Err(corrupted(Poison::message(code))),
        }
    }

    /// Marks the stream unusable, for `cause` unless it already was for another.
    pub(crate) fn poison(&self, cause: Poison) {
        let _ = self.side.u32_at::<POISONED>().compare_exchange(
            0,
            cause as u32,
            Ordering::AcqRel,
            Ordering::Acquire,
        );
    }

    /// Copies `bytes` into the ring at position `at`, wrapping round the end. Always with
    /// plain stores, whatever the message's size: the ring (1 MiB) stays in the caches and the
    /// reader takes its lines from there (see [`Ring::push`]).
    fn copy_in(&self, at: u64, bytes: &[u8]) {
        let start = (at % CAPACITY as u64) as usize;
        let first = bytes.len().min(CAPACITY - start);
        self.side.copy_in(HEADER_BYTES + start, &bytes[..first]);
        if first < bytes.len() {
            self.side.copy_in(HEADER_BYTES, &bytes[first..]);
        }
    }

    /// Tells the reader of this side that its writer runs on `cpu` now.
    pub(crate) fn publish_writer_cpu(&self, cpu: Option<u32>) {
        let value = cpu.map_or(0, |cpu| cpu.wrapping_add(1));
        let word = self.side.u32_at::<WRITER_CPU>();
        if word.load(Ordering::Relaxed) != value {
            word.store(value, Ordering::Relaxed);
        }
    }

    /// The CPU the writer of this side last said it runs on.
    pub(crate) fn writer_cpu(&self) -> Option<u32> {
        self.side.u32_at::<WRITER_CPU>().load(Ordering::Relaxed).checked_sub(1)
    }

    // ---- The writer's side. The caller holds the write lock.

    /// Free bytes in the ring.
    pub(crate) fn free(&self) -> io::Result<usize> {
        self.check_poison()?;
        let written = self.side.u64_at::<WRITE_POS>().load(Ordering::Relaxed);
        let used = written.wrapping_sub(self.seen_read.load(Ordering::Relaxed));
        if used < CAPACITY as u64 {
            return Ok(CAPACITY - used as usize);
        }
        let read = self.side.u64_at::<READ_POS>().load(Ordering::Acquire);
        self.seen_read.store(read, Ordering::Relaxed);
        let used = written.wrapping_sub(read);
        if used > CAPACITY as u64 {
            return Err(corrupted("the reader of a pipe reported an impossible position"));
        }
        Ok(CAPACITY - used as usize)
    }

    /// Copies `bytes` (at most [`Ring::free`] of them) in after the published ones and
    /// publishes them. Returns true when a reader is asleep and must be woken.
    ///
    /// Large bodies go in with plain stores too: the ring's lines pass from this CPU's caches
    /// to the reader's, and the body goes through memory once (read here, written by the
    /// reader). With stores that bypass the caches it went through memory twice more. Measured
    /// on this machine, alternating builds, 4 runs each, one way: 4 MiB 0.35-0.45 ms with them
    /// against 0.10-0.12 ms now, 64 MiB 6.5-7.2 against 3.7-4.7 ms; the gather of 4 × 8 MB into
    /// fresh vectors 9.2-10.5 against 7.7-8.3 ms.
    pub(crate) fn push(&self, bytes: &[&[u8]]) -> bool {
        self.publish_writer_cpu(sys::current_cpu());
        let start = self.side.u64_at::<WRITE_POS>().load(Ordering::Relaxed);
        let total: usize = bytes.iter().map(|part| part.len()).sum();
        if total <= INLINE_CAPACITY {
            // A small push is put together here first: one copy into the inline line and one
            // into the ring, instead of one of each per part (a header and a byte are three
            // parts: a tenth of a small message's instructions went to the copy calls).
            let mut small = [0u8; INLINE_CAPACITY];
            let mut filled = 0;
            for part in bytes {
                small[filled..filled + part.len()].copy_from_slice(part);
                filled += part.len();
            }
            self.side.u64_at::<INLINE_START>().store(start, Ordering::Relaxed);
            // The new start is visible before any of the new bytes (see `copy_inline`).
            fence(Ordering::Release);
            // All of the line, whatever the push's length (`INLINE_LEN` says how much counts):
            // a copy of a fixed size is a few moves, where one of `total` bytes is a call.
            self.side.copy_in(INLINE_BYTES, &small);
            self.side.u32_at::<INLINE_LEN>().store(total as u32, Ordering::Relaxed);
            self.copy_in(start, &small[..total]);
            self.side.u64_at::<WRITE_POS>().store(start + total as u64, Ordering::SeqCst);
        } else {
            let mut at = start;
            for part in bytes {
                self.copy_in(at, part);
                at += part.len() as u64;
            }
            self.side.u64_at::<WRITE_POS>().store(at, Ordering::SeqCst);
        }
        // The store above and this load are sequentially consistent, and pair with the fence in
        // `reader_sleeps`: either the reader sees the new position or we see that it sleeps.
        // (Cheaper than a release store and a fence: on x86 the store is one `xchg`, where the
        // fence was an `mfence` on every message.)
        self.side.u32_at::<READER_SLEEPING>().load(Ordering::SeqCst) != 0
    }

    /// Tries to take the write lock for the `Link` with this token.
    pub(crate) fn try_lock(&self, token: u64) -> io::Result<Option<u64>> {
        self.check_poison()?;
        match self.side.u64_at::<WRITE_LOCK>().compare_exchange(
            0,
            token,
            Ordering::Acquire,
            Ordering::Relaxed,
        ) {
            Ok(_) => Ok(None),
            Err(owner) if owner == token => Ok(None),
            Err(owner) => Ok(Some(owner)),
        }
    }

    pub(crate) fn unlock(&self, token: u64) {
        let _ = self.side.u64_at::<WRITE_LOCK>().compare_exchange(
            token,
            0,
            Ordering::Release,
            Ordering::Relaxed,
        );
    }

    /// The writer that holds the lock, if any, as a process id.
    pub(crate) fn lock_owner_pid(&self) -> Option<u32> {
        match self.side.u64_at::<WRITE_LOCK>().load(Ordering::Relaxed) {
            0 => None,
            token => Some((token >> 32) as u32),
        }
    }

    /// Sleeps until the reader frees space, at most `timeout`. The caller re-checks.
    pub(crate) fn wait_for_space(&self, timeout: Duration) -> io::Result<()> {
        let event = self.side.u32_at::<SPACE_EVENT>().load(Ordering::Acquire);
        self.side.u32_at::<WRITER_SLEEPING>().fetch_add(1, Ordering::SeqCst);
        fence(Ordering::SeqCst);
        if self.free()? == 0 {
            sys::futex_wait(self.side.u32_at::<SPACE_EVENT>(), event, timeout);
        }
        self.side.u32_at::<WRITER_SLEEPING>().fetch_sub(1, Ordering::SeqCst);
        Ok(())
    }

    // ---- The reader's side.

    /// Where this reader is: the published position plus what it copied out since.
    fn read_cursor(&self) -> u64 {
        self.side.u64_at::<READ_POS>().load(Ordering::Relaxed)
            + self.unpublished.load(Ordering::Relaxed)
    }

    /// Unread bytes in the ring.
    pub(crate) fn available(&self) -> io::Result<usize> {
        self.check_poison()?;
        let written = self.side.u64_at::<WRITE_POS>().load(Ordering::Acquire);
        let read = self.read_cursor();
        let unread = written.wrapping_sub(read);
        if unread > CAPACITY as u64 {
            return Err(corrupted("the writer of a pipe reported an impossible position"));
        }
        Ok(unread as usize)
    }

    /// Moves up to `max` unread bytes (bounded by `out`'s spare capacity) to the end of `out`.
    /// `WouldBlock` when there are none. `streaming` bypasses the caches for `out` (large
    /// bodies). The bytes are freed by [`Ring::publish_read`], which the caller must call
    /// before it returns to its own caller; large reads free their space every [`STEP`] bytes.
    pub(crate) fn pop_into(
        &self,
        out: &mut (impl Landing + ?Sized),
        max: usize,
        streaming: bool,
    ) -> io::Result<usize> {
        let unread = self.available()?;
        let n = unread.min(max).min(out.spare().len());
        if n == 0 {
            return Err(io::ErrorKind::WouldBlock.into());
        }
        self.copy_at(self.read_cursor(), n, out, streaming);
        self.skip(n)?;
        Ok(n)
    }

    /// Copies up to [`INLINE_CAPACITY`] unread bytes without taking them, if at least
    /// `at_least` are there: `None` otherwise (or when the ring is unusable: the caller's
    /// general path reports why). Also returns how many bytes are unread in all; the copy
    /// holds the first `unread.min(INLINE_CAPACITY)` of them. A small frame that is the last
    /// push comes whole, from the inline copy.
    pub(crate) fn peek(&self, at_least: usize) -> Option<([u8; INLINE_CAPACITY], usize)> {
        let unread = self.available().ok()?;
        if unread < at_least {
            return None;
        }
        let mut few = sys::FewBytes::<INLINE_CAPACITY>::new();
        self.copy_at(self.read_cursor(), unread.min(INLINE_CAPACITY), &mut few, false);
        Some((few.into_bytes(), unread))
    }

    /// Takes `n` unread bytes (already copied out, or passed over): the caller's cursor moves
    /// on, and every [`STEP`] bytes the space is freed for the writer.
    pub(crate) fn skip(&self, n: usize) -> io::Result<()> {
        // A load and a store, not a read-modify-write: only the holder of the reader's mutex
        // and of the read lock moves it, and a locked instruction costs a few nanoseconds on
        // every message.
        let unpublished = self.unpublished.load(Ordering::Relaxed) + n as u64;
        self.unpublished.store(unpublished, Ordering::Relaxed);
        if unpublished >= STEP as u64 {
            self.publish_read()?;
        }
        Ok(())
    }

    /// Appends the `n` bytes at position `cursor` (unread, checked by the caller) to `out`.
    fn copy_at(&self, cursor: u64, n: usize, out: &mut (impl Landing + ?Sized), streaming: bool) {
        if self.copy_inline(cursor, n, out) {
            return;
        }
        let start = (cursor % CAPACITY as u64) as usize;
        let first = n.min(CAPACITY - start);
        self.side.copy_out(HEADER_BYTES + start, first, out, streaming);
        self.side.copy_out(HEADER_BYTES, n - first, out, streaming);
    }

    /// Appends the `n` bytes at position `cursor` from the inline copy of the last small push,
    /// if it holds them (and was not being replaced meanwhile); false otherwise.
    fn copy_inline(&self, cursor: u64, n: usize, out: &mut (impl Landing + ?Sized)) -> bool {
        let start = self.side.u64_at::<INLINE_START>().load(Ordering::Acquire);
        let len = self.side.u32_at::<INLINE_LEN>().load(Ordering::Relaxed) as usize;
        let Some(offset) = cursor.checked_sub(start) else { return false };
        if len > INLINE_CAPACITY || offset.saturating_add(n as u64) > len as u64 {
            return false;
        }
        let before = out.filled();
        self.side.copy_out(INLINE_BYTES + offset as usize, n, out, false);
        // Pairs with the writer's fence: bytes of a newer push imply a newer start.
        fence(Ordering::Acquire);
        if self.side.u64_at::<INLINE_START>().load(Ordering::Relaxed) != start {
            out.truncate(before);
            return false;
        }
        true
    }

    /// Frees the bytes copied out so far, and wakes a writer waiting for the space.
    pub(crate) fn publish_read(&self) -> io::Result<()> {
        // A load and a store, like `skip`'s.
        let unpublished = self.unpublished.load(Ordering::Relaxed);
        if unpublished == 0 {
            return Ok(());
        }
        self.unpublished.store(0, Ordering::Relaxed);
        let read = self.side.u64_at::<READ_POS>().load(Ordering::Relaxed);
        // A compare-exchange, not a store: under the read lock nobody else moves it, so a
        // failure means damaged shared memory. Sequentially consistent, like the load
        // after it, so that either we see a writer going to sleep or it sees the space (it
        // announces itself, then fences, then looks); on x86 this costs no extra fence.
        if self
            .side
            .u64_at::<READ_POS>()
            .compare_exchange(read, read + unpublished, Ordering::SeqCst, Ordering::Relaxed)
            .is_err()
        {
            self.poison(Poison::Damaged);
            return Err(corrupted(
                "the read position of a pipe moved while this process held its read lock (its \
                 shared memory was changed from outside mp)",
            ));
        }
        if self.side.u32_at::<WRITER_SLEEPING>().load(Ordering::SeqCst) != 0 {
            self.side.u32_at::<SPACE_EVENT>().fetch_add(1, Ordering::Release);
            sys::futex_wake(self.side.u32_at::<SPACE_EVENT>());
        }
        Ok(())
    }

    /// Announces that the reader is about to sleep; returns the unread bytes seen afterwards
    /// (if any, it must not sleep). Every call is followed by [`Ring::reader_wakes`].
    pub(crate) fn reader_sleeps(&self) -> io::Result<usize> {
        self.side.u32_at::<READER_SLEEPING>().fetch_add(1, Ordering::SeqCst);
        fence(Ordering::SeqCst);
        self.available()
    }

    pub(crate) fn reader_wakes(&self) {
        self.side.u32_at::<READER_SLEEPING>().fetch_sub(1, Ordering::SeqCst);
    }

    // ---- The read lock (see `READ_LOCK`).

    /// Tries to take the read lock for the `Link` with this token: None once it holds it, or
    /// the token of the holder.
    pub(crate) fn try_read_lock(&self, token: u64) -> io::Result<Option<u64>> {
        self.check_poison()?;
        match self.side.u64_at::<READ_LOCK>().compare_exchange(
            0,
            token,
            Ordering::Acquire,
            Ordering::Relaxed,
        ) {
            Ok(_) => {
                let at = self.side.u64_at::<READ_POS>().load(Ordering::Relaxed);
                self.side.u64_at::<READ_LOCKED_AT>().store(at, Ordering::Relaxed);
                Ok(None)
            }
            Err(owner) if owner == token => Ok(None),
            Err(owner) => Ok(Some(owner)),
        }
    }

    /// The token of the read lock's holder (0: free).
    pub(crate) fn read_lock_holder(&self) -> u64 {
        self.side.u64_at::<READ_LOCK>().load(Ordering::Relaxed)
    }

    /// Frees the read lock (after the holder published what it read), and wakes the readers
    /// waiting for it.
    pub(crate) fn read_unlock(&self, token: u64) {
        // Sequentially consistent, like the waiters' announcement and look at the lock: either
        // we see a waiter or it sees the lock free.
        if self
            .side
            .u64_at::<READ_LOCK>()
            .compare_exchange(token, 0, Ordering::SeqCst, Ordering::Relaxed)
            .is_ok()
            && self.side.u32_at::<READ_WAITERS>().load(Ordering::SeqCst) != 0
        {
            self.side.u32_at::<READ_EVENT>().fetch_add(1, Ordering::Release);
            sys::futex_wake(self.side.u32_at::<READ_EVENT>());
        }
    }

    /// Sleeps while the read lock is held by `owner`, at most `timeout`. The caller re-checks.
    pub(crate) fn wait_for_read_unlock(&self, owner: u64, timeout: Duration) {
        let event = self.side.u32_at::<READ_EVENT>().load(Ordering::Acquire);
        self.side.u32_at::<READ_WAITERS>().fetch_add(1, Ordering::SeqCst);
        if self.side.u64_at::<READ_LOCK>().load(Ordering::SeqCst) == owner {
            sys::futex_wait(self.side.u32_at::<READ_EVENT>(), event, timeout);
        }
        self.side.u32_at::<READ_WAITERS>().fetch_sub(1, Ordering::SeqCst);
    }

    /// Deals with a read lock held by `owner` if that process is dead: true when this `Link`
    /// (`token`) took its place, because it had freed nothing of the message it was reading
    /// (the message is still whole in the ring and goes to us); the poison error when it had
    /// (the rest of its message is there, but not where it starts); false while it lives.
    pub(crate) fn take_over_dead_reader(&self, owner: u64, token: u64) -> io::Result<bool> {
        if process_alive((owner >> 32) as u32) {
            return Ok(false);
        }
        // Only a holder moves these, and the dead one cannot: they are stable while the lock
        // still names it, which the compare-exchange below checks.
        let intact = self.side.u64_at::<READ_POS>().load(Ordering::Acquire)
            == self.side.u64_at::<READ_LOCKED_AT>().load(Ordering::Relaxed);
        let replacement = if intact { token } else { 0 };
        if self
            .side
            .u64_at::<READ_LOCK>()
            .compare_exchange(owner, replacement, Ordering::Acquire, Ordering::Relaxed)
            .is_err()
        {
            // Someone else dealt with it first.
            return Ok(false);
        }
        if !intact {
            self.poison(Poison::Reader);
            self.check_poison()?;
        }
        Ok(true)
    }

    /// True when a live process holds the read lock, i.e. is inside a receive call: it keeps
    /// reading, so a writer may wait for room without risking a deadlock.
    pub(crate) fn reader_is_receiving(&self) -> bool {
        match self.side.u64_at::<READ_LOCK>().load(Ordering::Acquire) {
            0 => false,
            token => process_alive((token >> 32) as u32),
        }
    }
}

/// False once process `pid` has exited (a zombie counts as exited) and closed its descriptors.
pub(crate) fn process_alive(pid: u32) -> bool {
    if let Err(error) = sys::send_signal(pid, 0)
        && error.raw_os_error() == Some(libc::ESRCH)
    {
        return false;
    }
    match std::fs::read_to_string(format!("/proc/{pid}/stat")) {
        Ok(stat) => match stat.rfind(')') {
            Some(end) if matches!(stat.as_bytes().get(end + 2), Some(b'Z' | b'X')) => {
                other_threads_alive(pid)
            }
            _ => true,
        },
        Err(_) => false,
    }
}

/// The main thread of a killed process shows as a zombie while its other threads are still
/// exiting, and they hold its descriptors: until the last is gone, its end of a socket is
/// open, so "dead" would be read as "dead, yet its socket is open" (another holder).
fn other_threads_alive(pid: u32) -> bool {
    let Ok(status) = std::fs::read_to_string(format!("/proc/{pid}/status")) else {
        return false;
    };
    status
        .lines()
        .find_map(|line| line.strip_prefix("Threads:"))
        .and_then(|count| count.trim().parse::<u32>().ok())
        .is_some_and(|threads| threads > 1)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{
        Error,
        wire::{FrameReader, ReadOutcome},
    };

    /// A peer that scribbles on the control words a reader trusts least (the write position
    /// and the inline copy of the last push) gets its reader an error or a frame, never a
    /// panic, a read outside the ring or a hang.
    #[test]
    fn scribbled_control_words_give_errors_not_panics() {
        let mut state = 0x2545_f491_4f6c_dd1du64;
        let mut random = move || {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            state
        };
        let (mut frames, mut errors) = (0, 0);
        for _ in 0..200 {
            let file = RingFile::create().unwrap();
            let (outbound, inbound) = (file.ring(0, true), file.ring(1, false));
            let mut reader = FrameReader::default();
            for _ in 0..50 {
                // A valid small frame: header, then up to 16 bytes of body.
                let body_len = (random() % 17) as usize;
                let body = vec![7u8; body_len];
                let mut frame = crate::wire::OutFrame::new(
                    crate::wire::BodyKind::Bytes,
                    Vec::new(),
                    std::borrow::Cow::Borrowed(&body),
                    Vec::new(),
                )
                .unwrap();
                let (socket, _peer) =
                    sys::socket_pair(sys::SocketKind::Stream).expect("a socket pair");
                frame.write_ring(&outbound, std::os::fd::AsFd::as_fd(&socket)).unwrap();
                let written = outbound.side.u64_at::<WRITE_POS>().load(Ordering::Relaxed);
                match random() % 4 {
                    0 => outbound
                        .side
                        .u32_at::<INLINE_LEN>()
                        .store(random() as u32, Ordering::Relaxed),
                    1 => {
                        let near = written.wrapping_sub(random() % 64);
                        outbound.side.u64_at::<INLINE_START>().store(near, Ordering::Relaxed);
                    }
                    2 => {
                        let moved = written.wrapping_add(random() % 128).wrapping_sub(64);
                        outbound.side.u64_at::<WRITE_POS>().store(moved, Ordering::Relaxed);
                    }
                    _ => {}
                }
                match reader.read_frame_ring(&inbound) {
                    Ok(ReadOutcome::Frame(_)) => frames += 1,
                    Ok(_) => {}
                    Err(Error::Corrupted { .. }) => {
                        errors += 1;
                        break;
                    }
                    Err(other) => panic!("a damaged ring gave {other:?}"),
                }
            }
        }
        // Both outcomes happen: the test did reach the damaged paths.
        assert!(frames > 0 && errors > 0, "{frames} frames, {errors} errors");
    }
}
