#![allow(unsafe_code)]
//! Starting a worker with `posix_spawn`, and waiting for it.
//!
//! `std::process::Command` forks when it has to run code in the child before `exec` (a
//! `pre_exec` closure, which is the only way it offers to place a descriptor at a given
//! number). Forking a multithreaded parent copies its page tables, which cost about 0.3 ms per
//! worker here against 0.08 ms for `posix_spawn`, whose glibc implementation shares the
//! parent's memory until the child's `exec` (`CLONE_VM | CLONE_VFORK`). The descriptor goes to
//! its number through a spawn file action instead, and what the closure did besides (asking
//! for a signal at the parent's death) the worker does itself in `mp::init`.

use std::{
    ffi::{CString, OsString},
    io,
    mem::MaybeUninit,
    os::{
        fd::{AsRawFd, FromRawFd, OwnedFd, RawFd},
        unix::{ffi::OsStringExt, process::ExitStatusExt},
    },
    path::Path,
    process::ExitStatus,
    ptr,
};

/// Everything a launch needs, prepared on the caller's thread so that the thread that spawns
/// (see `process::spawner`) only makes the one call.
#[derive(Debug)]
pub(crate) struct Launch {
    program: CString,
    argv: Vec<CString>,
    envp: Vec<CString>,
    /// The caller's descriptor, and the number the child gets it as.
    pass: (RawFd, RawFd),
}

impl Launch {
    /// `program` with `args` (its `argv[0]` is `program`), this process's environment with
    /// `overrides` applied, standard input from `/dev/null`, and `pass.0` placed at `pass.1` in
    /// the child (without close-on-exec there; the caller's copy keeps its flags).
    pub(crate) fn new(
        program: &Path,
        args: &[&str],
        overrides: &[(&str, String)],
        pass: (RawFd, RawFd),
    ) -> io::Result<Launch> {
        let program = c_string(program.as_os_str().to_owned())?;
        let mut argv = vec![program.clone()];
        for arg in args {
            argv.push(c_string((*arg).into())?);
        }
        let mut envp = Vec::new();
        for (name, value) in std::env::vars_os() {
            if overrides.iter().any(|(overridden, _)| name == *overridden) {
                continue;
            }
            envp.push(env_entry(name, value)?);
        }
        for (name, value) in overrides {
            envp.push(env_entry((*name).into(), value.into())?);
        }
        Ok(Launch { program, argv, envp, pass })
    }
}

fn c_string(text: OsString) -> io::Result<CString> {
    CString::new(text.into_vec()).map_err(|_| {
        io::Error::new(io::ErrorKind::InvalidInput, "an argument or variable contains a NUL byte")
    })
}

fn env_entry(name: OsString, value: OsString) -> io::Result<CString> {
    let mut entry = name.into_vec();
    entry.push(b'=');
    entry.extend(value.into_vec());
    c_string(OsString::from_vec(entry))
}

fn check_spawn(code: libc::c_int) -> io::Result<()> {
    // The posix_spawn family returns its error instead of setting errno.
    if code == 0 { Ok(()) } else { Err(io::Error::from_raw_os_error(code)) }
}

/// Owns a `posix_spawn_file_actions_t` (destroyed on drop).
struct FileActions(MaybeUninit<libc::posix_spawn_file_actions_t>);

impl FileActions {
    fn new() -> io::Result<FileActions> {
        let mut actions = FileActions(MaybeUninit::uninit());
        // SAFETY: init fills the structure it is given.
        check_spawn(unsafe { libc::posix_spawn_file_actions_init(actions.0.as_mut_ptr()) })?;
        Ok(actions)
    }

    fn as_mut_ptr(&mut self) -> *mut libc::posix_spawn_file_actions_t {
        self.0.as_mut_ptr()
    }
}

impl Drop for FileActions {
    fn drop(&mut self) {
        // SAFETY: initialised in `new`, destroyed once.
        unsafe { libc::posix_spawn_file_actions_destroy(self.0.as_mut_ptr()) };
    }
}

/// Owns a `posix_spawnattr_t` (destroyed on drop).
struct Attributes(MaybeUninit<libc::posix_spawnattr_t>);

impl Attributes {
    fn new() -> io::Result<Attributes> {
        let mut attributes = Attributes(MaybeUninit::uninit());
        // SAFETY: init fills the structure it is given.
        check_spawn(unsafe { libc::posix_spawnattr_init(attributes.0.as_mut_ptr()) })?;
        Ok(attributes)
    }

    fn as_mut_ptr(&mut self) -> *mut libc::posix_spawnattr_t {
        self.0.as_mut_ptr()
    }
}

impl Drop for Attributes {
    fn drop(&mut self) {
        // SAFETY: initialised in `new`, destroyed once.
        unsafe { libc::posix_spawnattr_destroy(self.0.as_mut_ptr()) };
    }
}

/// Starts `launch` and returns the child's pid. An `exec` that fails (a missing or
/// non-executable program) is this call's error: glibc reports it back from the child.
pub(crate) fn spawn(launch: &Launch) -> io::Result<ChildPid> {
    let (passed, target) = launch.pass;
    // A descriptor already at its target would keep its close-on-exec flag through a dup2
    // onto itself on older C libraries: hand over a copy at another number instead.
    let copy = if passed == target {
        // SAFETY: F_DUPFD_CLOEXEC makes a new descriptor, which `copy` closes below.
        let fd = unsafe { libc::fcntl(passed, libc::F_DUPFD_CLOEXEC, target + 1) };
        if fd < 0 {
            return Err(io::Error::last_os_error());
        }
        // SAFETY: the new descriptor is ours alone.
        Some(unsafe { OwnedFd::from_raw_fd(fd) })
    } else {
        None
    };
    let source = copy.as_ref().map_or(passed, AsRawFd::as_raw_fd);
    let mut actions = FileActions::new()?;
    let mut attributes = Attributes::new()?;
    let mut argv: Vec<*mut libc::c_char> =
        launch.argv.iter().map(|arg| arg.as_ptr().cast_mut()).collect();
    argv.push(ptr::null_mut());
    let mut envp: Vec<*mut libc::c_char> =
        launch.envp.iter().map(|entry| entry.as_ptr().cast_mut()).collect();
    envp.push(ptr::null_mut());
    let mut pid: libc::pid_t = 0;
    // SAFETY: every pointer points into `launch`, `argv` and `envp`, which outlive the call;
    // the sigset functions fill the sets they are given; the attribute and action objects
    // were initialised above.
    unsafe {
        check_spawn(libc::posix_spawn_file_actions_addopen(
            actions.as_mut_ptr(),
            libc::STDIN_FILENO,
            c"/dev/null".as_ptr(),
            libc::O_RDONLY,
            0,
        ))?;
        check_spawn(libc::posix_spawn_file_actions_adddup2(actions.as_mut_ptr(), source, target))?;
        // As `Command` does: the child starts with no signal blocked, and with SIGPIPE back at
        // its default (Rust's runtime ignores it in this process; the child's sets it again).
        let mut no_signals = MaybeUninit::<libc::sigset_t>::uninit();
        libc::sigemptyset(no_signals.as_mut_ptr());
        let mut sigpipe = MaybeUninit::<libc::sigset_t>::uninit();
        libc::sigemptyset(sigpipe.as_mut_ptr());
        libc::sigaddset(sigpipe.as_mut_ptr(), libc::SIGPIPE);
        check_spawn(libc::posix_spawnattr_setsigmask(
            attributes.as_mut_ptr(),
            no_signals.as_ptr(),
        ))?;
        check_spawn(libc::posix_spawnattr_setsigdefault(
            attributes.as_mut_ptr(),
            sigpipe.as_ptr(),
        ))?;
        check_spawn(libc::posix_spawnattr_setflags(
            attributes.as_mut_ptr(),
            (libc::POSIX_SPAWN_SETSIGMASK | libc::POSIX_SPAWN_SETSIGDEF) as libc::c_short,
        ))?;
        check_spawn(libc::posix_spawn(
            &mut pid,
            launch.program.as_ptr(),
            actions.as_mut_ptr(),
            attributes.as_mut_ptr(),
            argv.as_ptr(),
            envp.as_ptr(),
        ))?;
    }
    Ok(ChildPid { pid, status: None })
}

/// A child started by [`spawn`]. Its pid stays valid (a zombie at worst) until it is reaped,
/// and nothing here signals it after that.
#[derive(Debug)]
pub(crate) struct ChildPid {
    pid: libc::pid_t,
    status: Option<ExitStatus>,
}

impl ChildPid {
    pub(crate) fn id(&self) -> u32 {
        self.pid as u32
    }

    /// Reaps the child if it has ended.
    pub(crate) fn try_wait(&mut self) -> io::Result<Option<ExitStatus>> {
        self.wait_with(libc::WNOHANG)
    }

    /// Waits for the child to end and reaps it.
    pub(crate) fn wait(&mut self) -> io::Result<ExitStatus> {
        self.wait_with(0)?.ok_or_else(|| io::Error::other("waitpid returned without a status"))
    }

    /// SIGKILL, unless the child was already reaped (its pid may belong to another process).
    pub(crate) fn kill(&mut self) -> io::Result<()> {
        if self.status.is_some() {
            return Ok(());
        }
        // SAFETY: kill takes integers; the pid is our unreaped child's.
        super::check(unsafe { libc::kill(self.pid, libc::SIGKILL) }).map(drop)
    }

    fn wait_with(&mut self, flags: libc::c_int) -> io::Result<Option<ExitStatus>> {
        if let Some(status) = self.status {
            return Ok(Some(status));
        }
        let mut raw: libc::c_int = 0;
        loop {
            // SAFETY: waitpid writes one int through the pointer, which points at `raw`.
            let result = unsafe { libc::waitpid(self.pid, &mut raw, flags) };
            if result == self.pid {
                let status = ExitStatus::from_raw(raw);
                self.status = Some(status);
                return Ok(Some(status));
            }
            if result == 0 {
                return Ok(None);
            }
            let error = io::Error::last_os_error();
            if error.kind() != io::ErrorKind::Interrupted {
                return Err(error);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use std::{io::Read, os::unix::net::UnixStream};

    use super::*;

    /// A connected pair; the test keeps `.0` and hands `.1` over.
    fn pair() -> (UnixStream, UnixStream) {
        let (here, there) = super::super::socket_pair(super::super::SocketKind::Stream).unwrap();
        let (here, there) = (UnixStream::from(here), UnixStream::from(there));
        here.set_nonblocking(false).unwrap();
        (here, there)
    }

    /// `script` under `/bin/sh`, with `there` at descriptor `target`.
    fn run(script: &str, overrides: &[(&str, String)], there: RawFd, target: RawFd) -> Launch {
        Launch::new(Path::new("/bin/sh"), &["-c", script], overrides, (there, target)).unwrap()
    }

    /// What the child wrote to its end, once it has ended, and how it ended.
    fn output(mut here: UnixStream, child: &mut ChildPid) -> (String, ExitStatus) {
        let status = child.wait().unwrap();
        let mut text = String::new();
        here.read_to_string(&mut text).unwrap();
        (text, status)
    }

    #[test]
    fn the_descriptor_arrives_at_its_number_and_standard_input_is_dev_null() {
        let (here, there) = pair();
        let launch = run("readlink /proc/self/fd/0 >&7", &[], there.as_raw_fd(), 7);
        let mut child = spawn(&launch).unwrap();
        drop(there);
        let (text, status) = output(here, &mut child);
        assert_eq!((text.as_str(), status.code()), ("/dev/null\n", Some(0)));
    }

    #[test]
    fn a_descriptor_already_at_its_number_arrives_too() {
        let (here, there) = pair();
        // Put our end at the target number itself, close-on-exec as every mp descriptor is.
        let target = 200;
        // SAFETY (test): dup3 onto a number nothing else in this test binary uses.
        let moved = unsafe { libc::dup3(there.as_raw_fd(), target, libc::O_CLOEXEC) };
        assert_eq!(moved, target);
        drop(there);
        // SAFETY (test): the descriptor was just made and is owned here alone.
        let there = unsafe { OwnedFd::from_raw_fd(target) };
        // The shell writes only to descriptors 0 to 9: it answers with its exit code.
        let launch = run("[ -S /proc/self/fd/200 ]", &[], there.as_raw_fd(), target);
        let mut child = spawn(&launch).unwrap();
        drop(there);
        assert_eq!(output(here, &mut child).1.code(), Some(0));
    }

    #[test]
    fn the_environment_is_ours_with_the_overrides() {
        let (here, there) = pair();
        let overrides = [("MP_SPAWN_TEST_VALUE", "one two".to_string())];
        let script = "printf '%s|%s' \"$MP_SPAWN_TEST_VALUE\" \"${PATH:+path}\" >&5";
        let mut child = spawn(&run(script, &overrides, there.as_raw_fd(), 5)).unwrap();
        drop(there);
        assert_eq!(output(here, &mut child).0, "one two|path");
    }

    #[test]
    fn the_child_blocks_no_signal_and_does_not_ignore_sigpipe() {
        let (here, there) = pair();
        let script = "grep -E '^Sig(Blk|Ign)' /proc/self/status >&5";
        let mut child = spawn(&run(script, &[], there.as_raw_fd(), 5)).unwrap();
        drop(there);
        let (text, _) = output(here, &mut child);
        let mask = |name: &str| {
            let line = text.lines().find(|line| line.starts_with(name)).unwrap();
            u64::from_str_radix(line.split_whitespace().nth(1).unwrap(), 16).unwrap()
        };
        assert_eq!(mask("SigBlk:"), 0, "{text}");
        assert_eq!(mask("SigIgn:") & (1 << (libc::SIGPIPE - 1)), 0, "{text}");
    }

    #[test]
    fn a_program_that_cannot_run_is_the_spawns_error() {
        let (_here, there) = pair();
        let launch =
            Launch::new(Path::new("/nonexistent/mp-worker"), &[], &[], (there.as_raw_fd(), 3))
                .unwrap();
        let error = spawn(&launch).unwrap_err();
        assert_eq!(error.kind(), io::ErrorKind::NotFound, "{error}");
    }

    #[test]
    fn a_killed_child_is_reaped_once_and_never_signalled_after() {
        let (_here, there) = pair();
        let mut child = spawn(&run("sleep 60", &[], there.as_raw_fd(), 5)).unwrap();
        assert!(child.try_wait().unwrap().is_none());
        child.kill().unwrap();
        let status = child.wait().unwrap();
        assert_eq!(status.signal(), Some(libc::SIGKILL));
        // Reaped: the pid is free for others, so these must not touch it.
        child.kill().unwrap();
        assert_eq!(child.try_wait().unwrap(), Some(status));
    }

    #[test]
    fn a_nul_byte_in_an_argument_is_refused_before_anything_starts() {
        let error = Launch::new(Path::new("/bin/sh"), &["a\0b"], &[], (0, 3)).unwrap_err();
        assert_eq!(error.kind(), io::ErrorKind::InvalidInput);
    }
}
