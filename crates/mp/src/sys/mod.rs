//! Thin, safe wrappers over the Linux calls `mp` needs. All `unsafe` code of the crate lives
//! under this module, so the rest of the crate can be read without it.
#![allow(unsafe_code)]

pub(crate) mod clock;
pub(crate) mod spawn;

use std::{
    io::{self, IoSlice},
    mem::{self, MaybeUninit},
    os::fd::{AsRawFd, BorrowedFd, FromRawFd, OwnedFd, RawFd},
    ptr::{self, NonNull},
    time::Duration,
};

/// The most descriptors one message may carry (Linux's `SCM_MAX_FD`).
pub(crate) const MAX_FDS_PER_MESSAGE: usize = 253;

fn check(result: libc::c_int) -> io::Result<libc::c_int> {
    if result < 0 { Err(io::Error::last_os_error()) } else { Ok(result) }
}

fn check_size(result: libc::ssize_t) -> io::Result<usize> {
    if result < 0 { Err(io::Error::last_os_error()) } else { Ok(result as usize) }
}

/// Which kind of Unix socket pair to create.
#[derive(Clone, Copy, Debug)]
pub(crate) enum SocketKind {
    /// A byte stream: `mp` frames messages on it.
    Stream,
    /// Record boundaries kept; each send is delivered whole or not at all.
    SeqPacket,
}

/// A connected pair of non-blocking, close-on-exec Unix sockets.
pub(crate) fn socket_pair(kind: SocketKind) -> io::Result<(OwnedFd, OwnedFd)> {
    let kind = match kind {
        SocketKind::Stream => libc::SOCK_STREAM,
        SocketKind::SeqPacket => libc::SOCK_SEQPACKET,
    };
    let mut fds = [0 as RawFd; 2];
    // SAFETY: `fds` has room for the two descriptors socketpair writes.
    check(unsafe {
        libc::socketpair(
            libc::AF_UNIX,
            kind | libc::SOCK_CLOEXEC | libc::SOCK_NONBLOCK,
            0,
            fds.as_mut_ptr(),
        )
    })?;
    // SAFETY: socketpair succeeded, so both descriptors are open and owned by nobody else.
    Ok(unsafe { (OwnedFd::from_raw_fd(fds[0]), OwnedFd::from_raw_fd(fds[1])) })
}

/// Sets `O_NONBLOCK` on a descriptor (received descriptors arrive in blocking mode).
pub(crate) fn set_nonblocking(fd: BorrowedFd<'_>) -> io::Result<()> {
    // SAFETY: fcntl on a valid descriptor with integer arguments.
    unsafe {
        let flags = check(libc::fcntl(fd.as_raw_fd(), libc::F_GETFL))?;
        check(libc::fcntl(fd.as_raw_fd(), libc::F_SETFL, flags | libc::O_NONBLOCK))?;
    }
    Ok(())
}

/// Sends `bufs` without blocking, with `fds` attached as `SCM_RIGHTS` to the first byte.
/// Never raises SIGPIPE: a closed peer is `BrokenPipe`.
pub(crate) fn send_vectored(
    fd: BorrowedFd<'_>,
    bufs: &[IoSlice<'_>],
    fds: &[RawFd],
) -> io::Result<usize> {
    if fds.len() > MAX_FDS_PER_MESSAGE {
        return Err(io::Error::new(
            io::ErrorKind::InvalidInput,
            format!(
                "one message can carry at most {MAX_FDS_PER_MESSAGE} handles, this one has {}",
                fds.len()
            ),
        ));
    }
    // SAFETY: msghdr is plain data; all-zero is a valid empty header.
    let mut header: libc::msghdr = unsafe { mem::zeroed() };
    header.msg_iov = bufs.as_ptr() as *mut libc::iovec;
    header.msg_iovlen = bufs.len() as _;
    let fd_bytes = mem::size_of_val(fds);
    // SAFETY: CMSG_SPACE only computes a size.
    let space = unsafe { libc::CMSG_SPACE(fd_bytes as u32) } as usize;
    let mut control = vec![0u8; if fds.is_empty() { 0 } else { space }];
    if !fds.is_empty() {
        header.msg_control = control.as_mut_ptr().cast();
        header.msg_controllen = space as _;
        // SAFETY: the control buffer is CMSG_SPACE(fd_bytes) long, so the first header and
        // fd_bytes of data fit in it; CMSG_DATA points inside it.
        unsafe {
            let cmsg = libc::CMSG_FIRSTHDR(&header);
            (*cmsg).cmsg_level = libc::SOL_SOCKET;
            (*cmsg).cmsg_type = libc::SCM_RIGHTS;
            (*cmsg).cmsg_len = libc::CMSG_LEN(fd_bytes as u32) as _;
            ptr::copy_nonoverlapping(fds.as_ptr().cast::<u8>(), libc::CMSG_DATA(cmsg), fd_bytes);
        }
    }
    // SAFETY: header points at live iovecs (IoSlice is ABI-compatible with iovec) and control.
    let sent =
        unsafe { libc::sendmsg(fd.as_raw_fd(), &header, libc::MSG_NOSIGNAL | libc::MSG_DONTWAIT) };
    check_size(sent)
}

/// Receives into the spare capacity of `buf` (at most `max` bytes) without blocking, and
/// appends any descriptors that came with these bytes to `fds`. `Ok(0)` means end of stream.
pub(crate) fn recv_into_spare(
    fd: BorrowedFd<'_>,
    buf: &mut (impl Landing + ?Sized),
    max: usize,
    fds: &mut Vec<OwnedFd>,
) -> io::Result<usize> {
    let spare = buf.spare();
    let want = spare.len().min(max);
    if want == 0 {
        return Ok(0);
    }
    let mut iov = libc::iovec { iov_base: spare.as_mut_ptr().cast(), iov_len: want };
    // Room for the most descriptors Linux passes in one message.
    let mut control = [0u64; 256];
    // SAFETY: msghdr is plain data; all-zero is a valid empty header.
    let mut header: libc::msghdr = unsafe { mem::zeroed() };
    header.msg_iov = &mut iov;
    header.msg_iovlen = 1;
    header.msg_control = control.as_mut_ptr().cast();
    header.msg_controllen = mem::size_of_val(&control) as _;
    // SAFETY: the iovec points at `want` bytes of spare capacity we own; control is ours.
    let received = check_size(unsafe {
        libc::recvmsg(fd.as_raw_fd(), &mut header, libc::MSG_CMSG_CLOEXEC | libc::MSG_DONTWAIT)
    })?;
    // SAFETY: recvmsg initialised `received` bytes of the spare capacity.
    unsafe { buf.fill(received) };
    // SAFETY: walking the control messages recvmsg filled in, within msg_controllen.
    unsafe {
        let mut cmsg = libc::CMSG_FIRSTHDR(&header);
        while !cmsg.is_null() {
            if (*cmsg).cmsg_level == libc::SOL_SOCKET && (*cmsg).cmsg_type == libc::SCM_RIGHTS {
                let data = libc::CMSG_DATA(cmsg);
                let n_bytes = (*cmsg).cmsg_len as usize - (data as usize - cmsg as usize);
                for index in 0..n_bytes / mem::size_of::<RawFd>() {
                    let raw = ptr::read_unaligned(data.cast::<RawFd>().add(index));
                    fds.push(OwnedFd::from_raw_fd(raw));
                }
            }
            cmsg = libc::CMSG_NXTHDR(&header, cmsg);
        }
    }
    if header.msg_flags & libc::MSG_CTRUNC != 0 {
        return Err(io::Error::other(
            "a message carried more handles than this process could receive",
        ));
    }
    Ok(received)
}

/// Copies up to `buf.len()` bytes from the head of a socket's stream without taking them (nor
/// any descriptors that came with them), without blocking. `Ok(0)` means end of stream.
pub(crate) fn peek(fd: BorrowedFd<'_>, buf: &mut [u8]) -> io::Result<usize> {
    // SAFETY: `buf` is a live, writable buffer of the given length.
    check_size(unsafe {
        libc::recv(
            fd.as_raw_fd(),
            buf.as_mut_ptr().cast(),
            buf.len(),
            libc::MSG_PEEK | libc::MSG_DONTWAIT,
        )
    })
}

/// Interest and readiness of one descriptor in [`poll`].
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub(crate) struct Ready {
    pub(crate) readable: bool,
    pub(crate) writable: bool,
    /// The peer closed its end (or the descriptor is in error).
    pub(crate) hangup: bool,
}

/// Waits until one of `fds` is ready as asked, or `timeout` passes (None waits forever).
/// Returns readiness per descriptor; all-default on timeout. Retries on EINTR.
pub(crate) fn poll(
    fds: &[(BorrowedFd<'_>, Ready)],
    timeout: Option<Duration>,
) -> io::Result<Vec<Ready>> {
    let mut entries: Vec<libc::pollfd> = fds
        .iter()
        .map(|(fd, interest)| {
            let mut events = 0;
            if interest.readable {
                events |= libc::POLLIN;
            }
            if interest.writable {
                events |= libc::POLLOUT;
            }
            if interest.hangup {
                events |= libc::POLLRDHUP;
            }
            libc::pollfd { fd: fd.as_raw_fd(), events, revents: 0 }
        })
        .collect();
    let millis = match timeout {
        None => -1,
        // Round up so a short timeout never turns into a busy loop of zero-length polls.
        Some(timeout) => timeout.as_micros().div_ceil(1000).min(i32::MAX as u128) as libc::c_int,
    };
    loop {
        // SAFETY: entries is a live array of pollfd of the given length.
        let result =
            unsafe { libc::poll(entries.as_mut_ptr(), entries.len() as libc::nfds_t, millis) };
        if result >= 0 {
            break;
        }
        let error = io::Error::last_os_error();
        if error.kind() != io::ErrorKind::Interrupted {
            return Err(error);
        }
    }
    Ok(entries
        .iter()
        .map(|entry| Ready {
            readable: entry.revents & (libc::POLLIN | libc::POLLHUP | libc::POLLERR) != 0,
            writable: entry.revents & (libc::POLLOUT | libc::POLLERR) != 0,
            hangup: entry.revents
                & (libc::POLLHUP | libc::POLLRDHUP | libc::POLLERR | libc::POLLNVAL)
                != 0,
        })
        .collect())
}

/// Takes ownership of a descriptor number inherited through `exec`.
///
/// Returns None when `raw` is not an open descriptor.
pub(crate) fn adopt_inherited_fd(raw: RawFd) -> Option<OwnedFd> {
    // SAFETY: F_GETFD only asks whether the descriptor exists.
    if unsafe { libc::fcntl(raw, libc::F_GETFD) } < 0 {
        return None;
    }
    // SAFETY: the parent placed this descriptor here for us and nothing else in this process
    // refers to it; we take it over exactly once (the caller removes the variable naming it).
    let fd = unsafe { OwnedFd::from_raw_fd(raw) };
    // SAFETY: set close-on-exec so grandchildren do not inherit it.
    unsafe { libc::fcntl(raw, libc::F_SETFD, libc::FD_CLOEXEC) };
    Some(fd)
}

/// Asks the kernel to SIGKILL this process when its parent dies, then checks that the parent
/// is still `expected_parent` (if it died before the request took effect, nobody would send
/// the signal). A worker calls it in `mp::init`, as soon as it knows its parent's pid.
///
/// The kernel sends the signal when the *thread* that started this process exits, not the
/// whole parent process: see `process.rs`, which spawns from a thread that never ends.
pub(crate) fn die_with_parent(expected_parent: u32) -> io::Result<()> {
    // SAFETY: prctl and getppid take and return integers; both are async-signal-safe.
    unsafe {
        check(libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL as libc::c_ulong, 0, 0, 0))?;
        if libc::getppid() as u32 != expected_parent {
            return Err(io::Error::other("the parent process died while starting this worker"));
        }
    }
    Ok(())
}

/// The signal this process gets when its parent dies (0 for none), as `die_with_parent` set it.
pub(crate) fn parent_death_signal() -> i32 {
    let mut signal: libc::c_int = 0;
    // SAFETY: PR_GET_PDEATHSIG writes one int through the pointer, which points at `signal`.
    let result = unsafe { libc::prctl(libc::PR_GET_PDEATHSIG, &mut signal as *mut libc::c_int) };
    if result < 0 { 0 } else { signal }
}

/// The process id of this process's parent.
pub(crate) fn parent_pid() -> u32 {
    // SAFETY: getppid cannot fail.
    unsafe { libc::getppid() as u32 }
}

/// What kind of descriptor `fd` is, as far as telling a worker's control connection apart
/// from anything else goes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum FdKind {
    /// A Unix stream socket, and the process that created it (`SO_PEERCRED`; for a socket
    /// pair, the process that called `socketpair`).
    UnixStream { peer_pid: u32 },
    /// Any other socket.
    OtherSocket,
    /// A file, pipe, terminal, device...
    NotASocket,
}

/// Classifies an open descriptor (see [`FdKind`]).
pub(crate) fn fd_kind(fd: BorrowedFd<'_>) -> io::Result<FdKind> {
    let mut stat = MaybeUninit::<libc::stat>::uninit();
    // SAFETY: fstat fills `stat` on success.
    check(unsafe { libc::fstat(fd.as_raw_fd(), stat.as_mut_ptr()) })?;
    // SAFETY: fstat succeeded, so stat is initialised.
    let mode = unsafe { stat.assume_init() }.st_mode;
    if mode & libc::S_IFMT != libc::S_IFSOCK {
        return Ok(FdKind::NotASocket);
    }
    let int_option = |option| -> io::Result<libc::c_int> {
        let mut value: libc::c_int = 0;
        let mut len = mem::size_of::<libc::c_int>() as libc::socklen_t;
        // SAFETY: getsockopt writes at most `len` bytes into `value`, an int.
        check(unsafe {
            libc::getsockopt(
                fd.as_raw_fd(),
                libc::SOL_SOCKET,
                option,
                (&mut value as *mut libc::c_int).cast(),
                &mut len,
            )
        })?;
        Ok(value)
    };
    if int_option(libc::SO_DOMAIN)? != libc::AF_UNIX
        || int_option(libc::SO_TYPE)? != libc::SOCK_STREAM
    {
        return Ok(FdKind::OtherSocket);
    }
    let mut credentials = libc::ucred { pid: 0, uid: 0, gid: 0 };
    let mut len = mem::size_of::<libc::ucred>() as libc::socklen_t;
    // SAFETY: SO_PEERCRED writes at most `len` bytes, one ucred, into `credentials`.
    check(unsafe {
        libc::getsockopt(
            fd.as_raw_fd(),
            libc::SOL_SOCKET,
            libc::SO_PEERCRED,
            (&mut credentials as *mut libc::ucred).cast(),
            &mut len,
        )
    })?;
    Ok(FdKind::UnixStream { peer_pid: credentials.pid.max(0) as u32 })
}

/// Sends `signal` to process `pid`.
pub(crate) fn send_signal(pid: u32, signal: i32) -> io::Result<()> {
    // SAFETY: kill takes integer arguments.
    check(unsafe { libc::kill(pid as libc::pid_t, signal) }).map(drop)
}

/// Ends this process at once, without running destructors or `atexit` handlers.
pub(crate) fn exit_immediately(code: i32) -> ! {
    // SAFETY: _exit never returns and is always safe to call.
    unsafe { libc::_exit(code) }
}

/// Runs `handler` at normal process exit (`exit`, or returning from `main`).
pub(crate) fn at_exit(handler: extern "C" fn()) {
    // SAFETY: registering a plain function pointer.
    unsafe { libc::atexit(handler) };
}

/// How many more bytes this process could take in memory before something stops it, as far
/// as it can tell: the least of the memory the kernel calls available (`MemAvailable`), what
/// its cgroup allows beyond its current use (`memory.max` - `memory.current`, cgroup v2), and
/// the address space left under `RLIMIT_AS`. None when none of them can be read.
pub(crate) fn memory_headroom() -> Option<u64> {
    let kib = |text: &str, key: &str| -> Option<u64> {
        let line = text.lines().find_map(|line| line.strip_prefix(key))?;
        Some(line.trim().trim_end_matches("kB").trim().parse::<u64>().ok()? * 1024)
    };
    let available = std::fs::read_to_string("/proc/meminfo")
        .ok()
        .and_then(|meminfo| kib(&meminfo, "MemAvailable:"));
    let cgroup = std::fs::read_to_string("/proc/self/cgroup").ok().and_then(|cgroups| {
        let path = cgroups.lines().find_map(|line| line.strip_prefix("0::"))?;
        let dir = format!("/sys/fs/cgroup{}", path.trim());
        let read = |name: &str| std::fs::read_to_string(format!("{dir}/{name}")).ok();
        let max = read("memory.max")?.trim().parse::<u64>().ok()?;
        let current = read("memory.current")?.trim().parse::<u64>().ok()?;
        Some(max.saturating_sub(current))
    });
    let address_space = address_space_left(|status| kib(status, "VmSize:"));
    [available, cgroup, address_space].into_iter().flatten().min()
}

/// The address space left under `RLIMIT_AS` (None without a limit), given how to read
/// `VmSize` from /proc/self/status.
fn address_space_left(vm_size: impl Fn(&str) -> Option<u64>) -> Option<u64> {
    let mut limit = MaybeUninit::<libc::rlimit>::uninit();
    // SAFETY: getrlimit fills `limit` on success.
    if unsafe { libc::getrlimit(libc::RLIMIT_AS, limit.as_mut_ptr()) } != 0 {
        return None;
    }
    // SAFETY: getrlimit succeeded, so `limit` is initialised.
    let limit = unsafe { limit.assume_init() }.rlim_cur;
    if limit == libc::RLIM_INFINITY {
        return None;
    }
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    Some(limit.saturating_sub(vm_size(&status)?))
}

/// An anonymous memory file (memfd) of `len` bytes: it has no name in /dev/shm, and the kernel
/// frees it when the last descriptor and mapping are gone, even after a crash.
pub(crate) fn memfd(name: &str, len: usize) -> io::Result<OwnedFd> {
    let name = std::ffi::CString::new(name).map_err(io::Error::other)?;
    // SAFETY: name is a valid C string.
    let raw = check(unsafe { libc::memfd_create(name.as_ptr(), libc::MFD_CLOEXEC) })?;
    // SAFETY: memfd_create returned a fresh descriptor we own.
    let fd = unsafe { OwnedFd::from_raw_fd(raw) };
    // SAFETY: ftruncate on our descriptor.
    check(unsafe { libc::ftruncate(fd.as_raw_fd(), len as libc::off_t) })?;
    Ok(fd)
}

/// The size in bytes of the file behind `fd`.
pub(crate) fn file_size(fd: BorrowedFd<'_>) -> io::Result<usize> {
    let mut stat = MaybeUninit::<libc::stat>::uninit();
    // SAFETY: fstat fills `stat` on success.
    check(unsafe { libc::fstat(fd.as_raw_fd(), stat.as_mut_ptr()) })?;
    // SAFETY: fstat succeeded, so stat is initialised.
    Ok(unsafe { stat.assume_init() }.st_size as usize)
}

/// A shared, read-write mapping of a whole memory file.
///
/// `pub` (in a private module) because the sealed element trait of `shm` names it.
#[derive(Debug)]
pub struct SharedMapping {
    ptr: NonNull<u8>,
    len: usize,
}

// SAFETY: the mapping is plain memory; every access through it is atomic (see shm.rs).
unsafe impl Send for SharedMapping {}
// SAFETY: as above.
unsafe impl Sync for SharedMapping {}

impl SharedMapping {
    pub(crate) fn new(fd: BorrowedFd<'_>, len: usize) -> io::Result<SharedMapping> {
        if len == 0 {
            return Ok(SharedMapping { ptr: NonNull::dangling(), len: 0 });
        }
        // SAFETY: mapping a file we hold open; the kernel picks the address.
        let ptr = unsafe {
            libc::mmap(
                ptr::null_mut(),
                len,
                libc::PROT_READ | libc::PROT_WRITE,
                libc::MAP_SHARED,
                fd.as_raw_fd(),
                0,
            )
        };
        if ptr == libc::MAP_FAILED {
            return Err(io::Error::last_os_error());
        }
        Ok(SharedMapping {
            ptr: NonNull::new(ptr.cast()).expect("mmap never returns null on success"),
            len,
        })
    }

    /// The mapping as atomic words: all cross-process access goes through atomics, so
    /// concurrent readers and writers in several processes are data-race free.
    pub(crate) fn atomic_u64(&self, index: usize) -> &std::sync::atomic::AtomicU64 {
        assert!(index < self.len / 8, "index checked by the caller");
        // SAFETY: in bounds (asserted), 8-aligned (page-aligned base), and only ever accessed
        // atomically, by every process that maps it.
        unsafe { &*self.ptr.as_ptr().add(index * 8).cast::<std::sync::atomic::AtomicU64>() }
    }

    /// As [`SharedMapping::atomic_u64`], for 4-byte elements.
    pub(crate) fn atomic_u32(&self, index: usize) -> &std::sync::atomic::AtomicU32 {
        assert!(index < self.len / 4, "index checked by the caller");
        // SAFETY: in bounds, 4-aligned, accessed atomically only.
        unsafe { &*self.ptr.as_ptr().add(index * 4).cast::<std::sync::atomic::AtomicU32>() }
    }
}

/// Copies `len` bytes with non-temporal stores: the destination goes to memory without first
/// being read into the caches (a normal store reads each cache line before writing it). For
/// destinations larger than the caches only: a received body of 16 MiB or more (out of a
/// pipe's ring; into the ring, plain stores are faster, see `Ring::push`) and a fresh array of
/// 4 MiB or more. The data is not in the caches afterwards.
///
/// # Safety
/// `source` must be valid for reading and `destination` for writing `len` bytes, and the two
/// ranges must not overlap.
#[cfg(target_arch = "x86_64")]
unsafe fn copy_streaming(source: *const u8, destination: *mut u8, len: usize) {
    use std::arch::x86_64::{__m128i, _mm_loadu_si128, _mm_sfence, _mm_stream_si128};
    const LANE: usize = 16;
    const BLOCK: usize = 4 * LANE;
    // SAFETY: every access stays inside the two ranges (the caller's contract): the head up to
    // the first 16-byte boundary of the destination and the tail are plain copies, the middle
    // is whole blocks. SSE2 is part of every x86_64 CPU.
    unsafe {
        let head = (destination as usize).wrapping_neg() % LANE;
        let head = head.min(len);
        ptr::copy_nonoverlapping(source, destination, head);
        let mut done = head;
        while len - done >= BLOCK {
            let from = source.add(done).cast::<__m128i>();
            let to = destination.add(done).cast::<__m128i>();
            let lanes = [
                _mm_loadu_si128(from),
                _mm_loadu_si128(from.add(1)),
                _mm_loadu_si128(from.add(2)),
                _mm_loadu_si128(from.add(3)),
            ];
            for (index, lane) in lanes.into_iter().enumerate() {
                _mm_stream_si128(to.add(index), lane);
            }
            done += BLOCK;
        }
        ptr::copy_nonoverlapping(source.add(done), destination.add(done), len - done);
        // Streaming stores are weakly ordered: make them visible before the caller publishes.
        _mm_sfence();
    }
}

#[cfg(not(target_arch = "x86_64"))]
unsafe fn copy_streaming(source: *const u8, destination: *mut u8, len: usize) {
    // SAFETY: the caller's contract is `copy_nonoverlapping`'s.
    unsafe { ptr::copy_nonoverlapping(source, destination, len) }
}

/// Where received bytes go: room after the bytes already there, filled by a socket read or a
/// copy out of a ring. A `Vec<u8>` is one; an [`ElementLanding`] lets an array of plain-data
/// elements arrive in its final vector.
pub(crate) trait Landing {
    /// The bytes received so far.
    fn filled(&self) -> usize;
    /// The room after them, not yet initialised.
    fn spare(&mut self) -> &mut [MaybeUninit<u8>];
    /// Counts the next `n` bytes of [`Landing::spare`] as received.
    ///
    /// # Safety
    /// Those bytes must have been written.
    unsafe fn fill(&mut self, n: usize);
    /// Forgets what was received from byte `len` on.
    fn truncate(&mut self, len: usize);
    /// The bytes received so far.
    fn received(&self) -> &[u8];
}

/// A [`Landing`] a receive can be offered for a whole message body, and take back.
pub(crate) trait BodyLanding: Landing + std::any::Any + Send + std::fmt::Debug {
    /// Makes room for exactly `bytes` bytes (what was received is forgotten). False when this
    /// landing does not take a body of that size.
    fn reserve(&mut self, bytes: usize) -> Result<bool, std::collections::TryReserveError>;
}

impl Landing for Vec<u8> {
    fn filled(&self) -> usize {
        self.len()
    }

    fn spare(&mut self) -> &mut [MaybeUninit<u8>] {
        self.spare_capacity_mut()
    }

    unsafe fn fill(&mut self, n: usize) {
        debug_assert!(n <= self.capacity() - self.len());
        // SAFETY: the caller wrote the next `n` bytes of the spare capacity.
        unsafe { self.set_len(self.len() + n) }
    }

    fn truncate(&mut self, len: usize) {
        Vec::truncate(self, len);
    }

    fn received(&self) -> &[u8] {
        self
    }
}

/// A few bytes on the stack, filled as a [`Landing`]: the start of a frame looked at where it
/// lies in a ring. Every byte starts initialised (to 0), so reading any of them is sound.
pub(crate) struct FewBytes<const N: usize> {
    bytes: [MaybeUninit<u8>; N],
    filled: usize,
}

impl<const N: usize> FewBytes<N> {
    pub(crate) fn new() -> FewBytes<N> {
        FewBytes { bytes: [MaybeUninit::new(0); N], filled: 0 }
    }

    pub(crate) fn into_bytes(self) -> [u8; N] {
        // SAFETY: all bytes were initialised by `new`, and copies only write bytes.
        self.bytes.map(|byte| unsafe { byte.assume_init() })
    }
}

impl<const N: usize> Landing for FewBytes<N> {
    fn filled(&self) -> usize {
        self.filled
    }

    fn spare(&mut self) -> &mut [MaybeUninit<u8>] {
        &mut self.bytes[self.filled..]
    }

    unsafe fn fill(&mut self, n: usize) {
        self.filled += n;
    }

    fn truncate(&mut self, len: usize) {
        self.filled = self.filled.min(len);
    }

    fn received(&self) -> &[u8] {
        // SAFETY: all bytes were initialised by `new` (see the type's doc).
        unsafe { std::slice::from_raw_parts(self.bytes.as_ptr().cast::<u8>(), self.filled) }
    }
}

/// The allocation of a `Vec<E>`, filled as bytes: a received array lands in the vector it is
/// returned in, with one copy and no byte buffer beside it (which would double the peak
/// memory of a large array). Any bytes are valid elements (`Pod`); only a whole number of them
/// becomes the vector.
pub(crate) struct ElementLanding<E: bytemuck::Pod> {
    /// Length 0 until [`ElementLanding::into_vec`]: the bytes are counted in `filled`.
    items: Vec<E>,
    filled: usize,
}

// SAFETY: a landing sits in a connection's reader only during one receive, made and taken back
// by the thread that receives, which holds the reader's lock meanwhile; and its elements are
// plain bytes (`Pod`), which no other thread refers to. (`Pod` allows raw pointers, which are
// not `Send`; as bytes received from another process they point at nothing here anyway.)
unsafe impl<E: bytemuck::Pod> Send for ElementLanding<E> {}

impl<E: bytemuck::Pod> std::fmt::Debug for ElementLanding<E> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ElementLanding")
            .field("capacity", &self.items.capacity())
            .field("filled", &self.filled)
            .finish()
    }
}

impl<E: bytemuck::Pod> ElementLanding<E> {
    /// Lands in `items`' allocation (its elements are dropped), which grows when it is smaller
    /// than [`BodyLanding::reserve`] asks.
    pub(crate) fn reusing(mut items: Vec<E>) -> ElementLanding<E> {
        items.clear();
        ElementLanding { items, filled: 0 }
    }

    /// The vector, holding the whole elements received.
    pub(crate) fn into_vec(mut self) -> Vec<E> {
        let len = self.filled / mem::size_of::<E>().max(1);
        // SAFETY: `filled` bytes of the allocation were written (`fill`'s contract), which
        // cover `len` whole elements, and every bit pattern is a valid `E` (`Pod`).
        unsafe { self.items.set_len(len) };
        self.items
    }
}

impl<E: bytemuck::Pod> BodyLanding for ElementLanding<E> {
    /// Room for a whole number of elements (huge pages behind a large fresh allocation).
    fn reserve(&mut self, bytes: usize) -> Result<bool, std::collections::TryReserveError> {
        let size = mem::size_of::<E>();
        if size == 0 || !bytes.is_multiple_of(size) {
            return Ok(false);
        }
        self.items.clear();
        self.filled = 0;
        if self.items.capacity() < bytes / size {
            self.items.try_reserve_exact(bytes / size)?;
            if bytes >= HUGE_PAGES_FROM {
                advise_huge_pages(&mut self.items);
            }
        }
        Ok(true)
    }
}

impl<E: bytemuck::Pod> Landing for ElementLanding<E> {
    fn filled(&self) -> usize {
        self.filled
    }

    fn spare(&mut self) -> &mut [MaybeUninit<u8>] {
        let capacity = self.items.capacity() * mem::size_of::<E>();
        // SAFETY: the allocation holds `capacity` bytes; the first `filled` are received, the
        // rest is spare. Uninitialised bytes behind a `MaybeUninit<u8>` slice are fine, and
        // the vector's length stays 0, so nothing reads them as elements meanwhile.
        unsafe {
            std::slice::from_raw_parts_mut(
                self.items.as_mut_ptr().cast::<MaybeUninit<u8>>().add(self.filled),
                capacity - self.filled,
            )
        }
    }

    unsafe fn fill(&mut self, n: usize) {
        debug_assert!(self.filled + n <= self.items.capacity() * mem::size_of::<E>());
        self.filled += n;
    }

    fn truncate(&mut self, len: usize) {
        self.filled = self.filled.min(len);
    }

    fn received(&self) -> &[u8] {
        // SAFETY: the first `filled` bytes of the allocation were written (`fill`'s contract).
        unsafe { std::slice::from_raw_parts(self.items.as_ptr().cast::<u8>(), self.filled) }
    }
}

/// Fresh receive buffers at least this large ask for huge pages.
pub(crate) const HUGE_PAGES_FROM: usize = 4 << 20;

/// A fresh vector holding the elements whose bytes are `bytes` (a whole number of them): one
/// allocation, huge pages when it is large, and streaming stores from 4 MiB on, where the
/// copy would otherwise read every destination line into the caches first. Its size comes
/// from a message, so an allocation that fails is an error, not an abort.
pub(crate) fn vec_from_bytes<E: bytemuck::Pod>(
    bytes: &[u8],
) -> Result<Vec<E>, std::collections::TryReserveError> {
    const LARGE: usize = 4 << 20;
    let size = std::mem::size_of::<E>().max(1);
    assert!(bytes.len().is_multiple_of(size), "checked by the caller");
    let len = bytes.len() / size;
    let mut items = Vec::<E>::new();
    items.try_reserve_exact(len)?;
    if bytes.len() >= LARGE {
        advise_huge_pages(&mut items);
    }
    // SAFETY: `items` has room for `len` elements, which are exactly the bytes of `bytes` (a
    // separate allocation, so no overlap); any bytes are a valid `E` (`Pod`), so all `len`
    // elements are initialized.
    unsafe {
        let destination = items.as_mut_ptr().cast::<u8>();
        if bytes.len() >= LARGE {
            copy_streaming(bytes.as_ptr(), destination, bytes.len());
        } else {
            ptr::copy_nonoverlapping(bytes.as_ptr(), destination, bytes.len());
        }
        items.set_len(len);
    }
    Ok(items)
}

/// Asks for huge pages behind the spare capacity of `buffer` (the 2 MiB-aligned part of it):
/// filling many megabytes of fresh memory then takes one page fault per 2 MiB instead of one
/// per 4 KiB, which on a virtual machine is most of the cost of receiving into a new buffer.
/// Only advice: the kernel may ignore it, and nothing else changes. Any element type will do:
/// a received `Vec<f64>` is as fresh as a receive buffer.
pub(crate) fn advise_huge_pages<E>(buffer: &mut Vec<E>) {
    const HUGE: usize = 2 << 20;
    let spare = buffer.spare_capacity_mut();
    let start = (spare.as_ptr() as usize).next_multiple_of(HUGE);
    let end = (spare.as_ptr() as usize + mem::size_of_val(spare)) & !(HUGE - 1);
    if end > start {
        // SAFETY: the range lies inside memory this process owns (the Vec's allocation);
        // MADV_HUGEPAGE changes no contents and no access rights, only how faults are served.
        unsafe { libc::madvise(start as *mut libc::c_void, end - start, libc::MADV_HUGEPAGE) };
    }
}

/// Sleeps while `word` (in memory shared between processes) still holds `expected`, at most
/// `timeout`; returns early on a [`futex_wake`], a signal, or if the word already differs.
pub(crate) fn futex_wait(word: &std::sync::atomic::AtomicU32, expected: u32, timeout: Duration) {
    let timeout = libc::timespec {
        tv_sec: timeout.as_secs().min(i64::MAX as u64) as libc::time_t,
        tv_nsec: timeout.subsec_nanos() as libc::c_long,
    };
    // SAFETY: the address is a live, aligned u32 (an AtomicU32 reference) and `timeout` a
    // valid timespec; FUTEX_WAIT only reads them. Not FUTEX_PRIVATE: the word is shared with
    // other processes. Every outcome (woken, timed out, EAGAIN, EINTR) is fine for the caller.
    unsafe {
        libc::syscall(
            libc::SYS_futex,
            word.as_ptr(),
            libc::FUTEX_WAIT,
            expected,
            &timeout as *const libc::timespec,
            ptr::null::<u32>(),
            0u32,
        );
    }
}

/// Wakes every process sleeping in [`futex_wait`] on `word`.
pub(crate) fn futex_wake(word: &std::sync::atomic::AtomicU32) {
    // SAFETY: the address is a live, aligned u32; FUTEX_WAKE does not access memory.
    unsafe {
        libc::syscall(
            libc::SYS_futex,
            word.as_ptr(),
            libc::FUTEX_WAKE,
            i32::MAX,
            ptr::null::<libc::timespec>(),
            ptr::null::<u32>(),
            0u32,
        );
    }
}

/// Bytes at the start of a [`MappedSide`] that hold its control words.
pub(crate) const CONTROL_BYTES: usize = 4096;

/// One side of a pipe's ring (see `ring.rs`): a page of control words, then the data, inside a
/// [`SharedMapping`] that it keeps alive. The bounds are checked once, when it is made; a
/// control word's offset is checked when the program is compiled. A message touches a dozen
/// control words, and a check on each cost about a tenth of its instructions (callgrind).
#[derive(Debug)]
pub(crate) struct MappedSide {
    /// Never read: it keeps the mapping that `start` points into alive.
    _map: std::sync::Arc<SharedMapping>,
    /// The side's first byte, page-aligned, inside `_map`.
    start: NonNull<u8>,
    len: usize,
}

// SAFETY: as for `SharedMapping`: plain memory, read and written atomically or by copies whose
// bytes are validated before use.
unsafe impl Send for MappedSide {}
// SAFETY: as above.
unsafe impl Sync for MappedSide {}

impl MappedSide {
    /// The `len` bytes of `map` from `offset` on (page-aligned, at least [`CONTROL_BYTES`]).
    pub(crate) fn new(map: std::sync::Arc<SharedMapping>, offset: usize, len: usize) -> MappedSide {
        assert!(
            offset.is_multiple_of(CONTROL_BYTES)
                && len >= CONTROL_BYTES
                && offset <= map.len
                && len <= map.len - offset,
            "a side lies inside its mapping"
        );
        // SAFETY: in bounds (asserted).
        let start = unsafe { NonNull::new_unchecked(map.ptr.as_ptr().add(offset)) };
        MappedSide { _map: map, start, len }
    }

    /// The 8-byte control word at byte `OFFSET`.
    pub(crate) fn u64_at<const OFFSET: usize>(&self) -> &std::sync::atomic::AtomicU64 {
        const { assert!(OFFSET.is_multiple_of(8) && OFFSET + 8 <= CONTROL_BYTES) };
        // SAFETY: inside the control page (checked above and in `new`), 8-aligned (the side is
        // page-aligned), and only ever accessed atomically, as this size, by every process.
        unsafe { &*self.start.as_ptr().add(OFFSET).cast::<std::sync::atomic::AtomicU64>() }
    }

    /// The 4-byte control word at byte `OFFSET`.
    pub(crate) fn u32_at<const OFFSET: usize>(&self) -> &std::sync::atomic::AtomicU32 {
        const { assert!(OFFSET.is_multiple_of(4) && OFFSET + 4 <= CONTROL_BYTES) };
        // SAFETY: as for `u64_at`, 4-aligned.
        unsafe { &*self.start.as_ptr().add(OFFSET).cast::<std::sync::atomic::AtomicU32>() }
    }

    /// Copies `bytes` in at byte `offset` of the side: into a region the other process does
    /// not read until it is published through an atomic position (see `ring.rs`).
    pub(crate) fn copy_in(&self, offset: usize, bytes: &[u8]) {
        assert!(offset <= self.len && bytes.len() <= self.len - offset, "checked by the caller");
        // SAFETY: the destination lies inside the side (asserted), so inside the mapping, and
        // cannot overlap the caller's slice, which is process-private memory. No Rust reference
        // to the mapped bytes exists; they are plain bytes, so any value a misbehaving peer
        // writes meanwhile is valid.
        unsafe {
            ptr::copy_nonoverlapping(bytes.as_ptr(), self.start.as_ptr().add(offset), bytes.len());
        }
    }

    /// Appends `len` bytes of the side, from byte `offset`, to `out`, which must have that
    /// much spare capacity. With `streaming`, the stores bypass the caches (see
    /// [`copy_streaming`]).
    pub(crate) fn copy_out(
        &self,
        offset: usize,
        len: usize,
        out: &mut (impl Landing + ?Sized),
        streaming: bool,
    ) {
        assert!(offset <= self.len && len <= self.len - offset, "checked by the caller");
        let destination = out.spare();
        assert!(destination.len() >= len, "checked by the caller");
        let destination = destination.as_mut_ptr().cast::<u8>();
        // SAFETY: the source lies inside the side, so inside the mapping, and the destination
        // inside `out`'s spare capacity (both asserted); they cannot overlap. The bytes are
        // copied through raw pointers, never referenced: a peer that writes them concurrently
        // (it must not) can only make us copy other byte values, all valid `u8`s, which the
        // caller validates.
        unsafe {
            let source = self.start.as_ptr().add(offset);
            if streaming {
                copy_streaming(source, destination, len);
            } else {
                ptr::copy_nonoverlapping(source, destination, len);
            }
            out.fill(len);
        }
    }
}

impl Drop for SharedMapping {
    fn drop(&mut self) {
        if self.len > 0 {
            // SAFETY: unmapping exactly the region we mapped; no references outlive self.
            unsafe { libc::munmap(self.ptr.as_ptr().cast(), self.len) };
        }
    }
}

/// Conjures the value of a zero-sized function type: the only value such a type has.
///
/// This is how a worker process gets hold of the task function: the parent sends which
/// monomorphised trampoline to run, and the function type it is generic over has no data.
pub(crate) fn conjure_zero_sized<F: Copy>() -> F {
    let () = crate::worker::PlainFn::<F>::CHECK;
    // SAFETY: F is zero-sized (checked at compile time) and Copy, so it has no bytes, no
    // invariants on bytes and no destructor: the one value of the type is the zeroed one.
    unsafe { mem::zeroed() }
}

/// The address of a function, relative to an anchor in this crate: the same in every process
/// running the same executable, even though address-space randomisation moves the base.
pub(crate) fn code_offset(function: usize) -> i64 {
    function as i64 - anchor as fn() as usize as i64
}

/// The inverse of [`code_offset`].
///
/// # Safety
/// `offset` must come from `code_offset` of a function of type `T` in a process running this
/// very executable (mp only exec's `/proc/self/exe`, which guarantees that).
pub(crate) unsafe fn function_at<T: Copy>(offset: i64) -> T {
    const { assert!(mem::size_of::<T>() == mem::size_of::<usize>()) };
    let address = (anchor as fn() as usize as i64 + offset) as usize;
    // SAFETY: per the contract, `address` is a function of type T in this executable.
    unsafe { mem::transmute_copy::<usize, T>(&address) }
}

#[inline(never)]
fn anchor() {}

/// The CPU this thread runs on, as the kernel last told it (glibc reads it from the thread's
/// rseq area, so this costs no system call); None where the kernel does not say.
pub(crate) fn current_cpu() -> Option<u32> {
    // SAFETY: sched_getcpu takes no arguments and touches no memory of ours.
    let cpu = unsafe { libc::sched_getcpu() };
    u32::try_from(cpu).ok()
}

/// The CPUs this thread may run on (`sched_getaffinity`), in increasing order.
pub(crate) fn affinity() -> io::Result<Vec<usize>> {
    // SAFETY: an all-zero cpu_set_t is a valid empty set.
    let mut set: libc::cpu_set_t = unsafe { std::mem::zeroed() };
    // SAFETY: `set` is a live cpu_set_t of the size passed.
    check(unsafe { libc::sched_getaffinity(0, std::mem::size_of::<libc::cpu_set_t>(), &mut set) })?;
    // SAFETY: CPU_ISSET reads `set`, with every index below CPU_SETSIZE.
    Ok((0..libc::CPU_SETSIZE as usize)
        .filter(|&cpu| unsafe { libc::CPU_ISSET(cpu, &set) })
        .collect())
}

/// Lets this thread run only on `cpus` (`sched_setaffinity`); each must be below
/// `CPU_SETSIZE`, which the caller checks.
pub(crate) fn set_affinity(cpus: &[usize]) -> io::Result<()> {
    // SAFETY: an all-zero cpu_set_t is a valid empty set.
    let mut set: libc::cpu_set_t = unsafe { std::mem::zeroed() };
    for &cpu in cpus {
        // SAFETY: `set` is a live cpu_set_t; CPU_SET ignores an index beyond it, and the
        // caller checked that there is none.
        unsafe { libc::CPU_SET(cpu, &mut set) };
    }
    // SAFETY: `set` is a live cpu_set_t of the size passed.
    check(unsafe { libc::sched_setaffinity(0, std::mem::size_of::<libc::cpu_set_t>(), &set) })?;
    Ok(())
}

/// How many CPUs an affinity set can name.
pub(crate) const CPU_SET_SIZE: usize = libc::CPU_SETSIZE as usize;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn streaming_copies_every_byte_whatever_the_alignment_and_length() {
        let source: Vec<u8> = (0..4096u32).map(|index| (index % 251) as u8).collect();
        for source_offset in 0..17 {
            for destination_offset in 0..17 {
                for len in (0..300).chain([1000, 2049, 4096 - 17]) {
                    let mut destination = vec![0xAAu8; 4096 + 64];
                    // SAFETY: both ranges lie inside their vectors and the vectors are distinct.
                    unsafe {
                        copy_streaming(
                            source.as_ptr().add(source_offset),
                            destination.as_mut_ptr().add(destination_offset),
                            len,
                        );
                    }
                    let copied = &destination[destination_offset..destination_offset + len];
                    assert_eq!(copied, &source[source_offset..source_offset + len]);
                    assert!(destination[..destination_offset].iter().all(|&byte| byte == 0xAA));
                    let after = &destination[destination_offset + len..];
                    assert!(after.iter().all(|&byte| byte == 0xAA), "wrote past the end");
                }
            }
        }
    }
}
