//! Am I running under an MPI launcher, and the `mpirun` command line that starts a job.
//!
//! Plain `std`, in every build (with or without the `mpi` feature): a program built without
//! MPI still needs to notice that `mpirun` started it (otherwise each of the N copies would
//! quietly run the whole program on its own), and tools and tests need the command line.
//!
//! ```
//! use mp_mpi::Mpirun;
//!
//! let job = Mpirun::new("target/release/exercise-4", 4).arg("--rounds").arg("10");
//! println!("run it yourself: {}", job.display());
//! let command: std::process::Command = job.command();
//! assert_eq!(command.get_program(), "mpirun");
//! ```

use std::{
    ffi::{OsStr, OsString},
    fmt,
    path::PathBuf,
    process::Command,
    time::Duration,
};

/// The prefixes of the environment variables through which an MPI launcher (Open MPI's
/// mpirun, PMIx, PRRTE, MPICH's Hydra) tells a rank which job it belongs to. A job started
/// from inside a rank must not see them, or its mpirun and its ranks take themselves for
/// parts of the outer job; see [`Mpirun::outside_this_job`].
pub const LAUNCHER_VARIABLE_PREFIXES: &[&str] = &["OMPI_", "PMIX_", "OPAL_", "PRTE_", "PMI_"];

/// True when `name` is a variable an MPI launcher sets for its ranks (it starts with one of
/// [`LAUNCHER_VARIABLE_PREFIXES`]).
///
/// ```
/// use mp_mpi::mpirun::is_launcher_variable;
/// assert!(is_launcher_variable("OMPI_COMM_WORLD_RANK".as_ref()));
/// assert!(is_launcher_variable("PMIX_NAMESPACE".as_ref()));
/// assert!(!is_launcher_variable("PATH".as_ref()));
/// assert!(!is_launcher_variable("PMIXED".as_ref()));
/// ```
pub fn is_launcher_variable(name: &OsStr) -> bool {
    let name = name.as_encoded_bytes();
    LAUNCHER_VARIABLE_PREFIXES.iter().any(|prefix| name.starts_with(prefix.as_bytes()))
}

/// The Debian/Ubuntu packages that give `mpirun`, `mpicc` and what the `mpi` feature's build
/// needs (libclang for bindgen).
pub const INSTALL_HINT: &str = "apt-get install openmpi-bin libopenmpi-dev libclang-dev";

/// The launcher that started this process as one rank of an MPI job, and what it said about
/// the job.
///
/// ```
/// let launcher = mp_mpi::Launcher { name: "Open MPI's mpirun", rank: Some(2), size: Some(4) };
/// assert_eq!(launcher.to_string(), "Open MPI's mpirun (rank 2 of 4)");
/// ```
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Launcher {
    /// Who started us: "Open MPI's mpirun", "a PMIx launcher", "MPICH's mpiexec (Hydra)".
    pub name: &'static str,
    /// This process's rank, if the launcher's variable held a number.
    pub rank: Option<usize>,
    /// The number of ranks, if the launcher said and it is a number.
    pub size: Option<usize>,
}

impl fmt::Display for Launcher {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match (self.rank, self.size) {
            (Some(rank), Some(size)) => write!(f, "{} (rank {rank} of {size})", self.name),
            (Some(rank), None) => write!(f, "{} (rank {rank})", self.name),
            (None, Some(size)) => write!(f, "{} (one of {size} ranks)", self.name),
            (None, None) => write!(f, "{}", self.name),
        }
    }
}

/// The MPI launcher that started this process, from its environment; `None` when no launcher
/// did (a plain `cargo run`).
///
/// Checked in order: Open MPI (`OMPI_COMM_WORLD_RANK`, `OMPI_COMM_WORLD_SIZE`), PMIx
/// (`PMIX_RANK`, the size from `OMPI_COMM_WORLD_SIZE` if set), MPICH's Hydra (`PMI_RANK`,
/// `PMI_SIZE`). Slurm's `SLURM_PROCID` alone does not count: Slurm sets it for every job,
/// MPI or not. A variable that is set but holds no number still means a launcher started us;
/// the rank is then `None`.
///
/// ```
/// // Under `cargo test` no launcher is involved (unless the tests themselves run under mpirun).
/// if std::env::var_os("OMPI_COMM_WORLD_RANK").is_none()
///     && std::env::var_os("PMIX_RANK").is_none()
///     && std::env::var_os("PMI_RANK").is_none()
/// {
///     assert_eq!(mp_mpi::launcher(), None);
/// }
/// ```
pub fn launcher() -> Option<Launcher> {
    launcher_from(|name| std::env::var_os(name))
}

/// As [`launcher`], but reading variables through `var` instead of the environment.
///
/// ```
/// use mp_mpi::mpirun::launcher_from;
/// let env = |name: &str| match name {
///     "PMI_RANK" => Some("1".into()),
///     "PMI_SIZE" => Some("3".into()),
///     _ => None,
/// };
/// let found = launcher_from(env).unwrap();
/// assert_eq!(found.to_string(), "MPICH's mpiexec (Hydra) (rank 1 of 3)");
/// ```
pub fn launcher_from(var: impl Fn(&str) -> Option<OsString>) -> Option<Launcher> {
    let number = |name: &str| -> Option<usize> { var(name)?.to_str()?.trim().parse().ok() };
    if var("OMPI_COMM_WORLD_RANK").is_some() {
        return Some(Launcher {
            name: "Open MPI's mpirun",
            rank: number("OMPI_COMM_WORLD_RANK"),
            size: number("OMPI_COMM_WORLD_SIZE"),
        });
    }
    if var("PMIX_RANK").is_some() {
        return Some(Launcher {
            name: "a PMIx launcher",
            rank: number("PMIX_RANK"),
            size: number("OMPI_COMM_WORLD_SIZE"),
        });
    }
    if var("PMI_RANK").is_some() {
        return Some(Launcher {
            name: "MPICH's mpiexec (Hydra)",
            rank: number("PMI_RANK"),
            size: number("PMI_SIZE"),
        });
    }
    None
}

/// `None` when `mpirun` is on `PATH`, else one line saying which packages to install.
///
/// ```
/// match mp_mpi::mpirun_missing() {
///     None => println!("mpirun is there"),
///     Some(line) => assert!(line.contains("apt-get install openmpi-bin")),
/// }
/// ```
pub fn mpirun_missing() -> Option<String> {
    if find_on_path("mpirun").is_some() {
        return None;
    }
    Some(format!("mpirun is not on PATH: install Open MPI (Debian/Ubuntu: `{INSTALL_HINT}`)"))
}

/// The first executable file called `program` in a directory of `PATH`.
fn find_on_path(program: &str) -> Option<PathBuf> {
    use std::os::unix::fs::PermissionsExt;
    let path = std::env::var_os("PATH")?;
    std::env::split_paths(&path).map(|dir| dir.join(program)).find(|candidate| {
        std::fs::metadata(candidate)
            .is_ok_and(|meta| meta.is_file() && meta.permissions().mode() & 0o111 != 0)
    })
}

/// The effective user id in the text of `/proc/self/status` (the second number of `Uid:`).
///
/// ```
/// use mp_mpi::mpirun::effective_uid;
/// assert_eq!(effective_uid("Name:\tx\nUid:\t1000\t0\t0\t0\n"), Some(0));
/// assert_eq!(effective_uid("Name:\tx\n"), None);
/// ```
pub fn effective_uid(status: &str) -> Option<u32> {
    let line = status.lines().find(|line| line.starts_with("Uid:"))?;
    line.split_whitespace().nth(2)?.parse().ok()
}

/// True when this process runs as root (Open MPI then refuses to start without
/// `--allow-run-as-root`).
fn running_as_root() -> bool {
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    effective_uid(&status) == Some(0)
}

/// Where the ranks may run.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Binding {
    /// `--bind-to none`: the kernel moves ranks between cores as it likes. Right when ranks
    /// outnumber the cores, or share the machine with other work.
    None,
    /// `--bind-to core`: each rank stays on one core (stable latency; what the benchmarks use).
    Core,
}

/// When to pass `--oversubscribe`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Oversubscribe {
    /// Only when the ranks outnumber the available cores (the default). Open MPI refuses to
    /// start more ranks than it has slots ("There are not enough slots available"); but an
    /// oversubscribed node also makes Open MPI yield the CPU while it waits, which costs
    /// latency, so it is not asked for when every rank has a core of its own.
    WhenNeeded,
    /// Always (the same command line on every machine).
    Always,
    /// Never (the job fails to start if ranks outnumber the slots).
    Never,
}

/// An `mpirun` command line: a builder for a [`Command`], and [`Mpirun::display`], the same
/// command as text for people to copy.
///
/// What it passes, in this order: `-n N`; `--timeout SECS` (mpirun ends a job that runs
/// longer, exit code 110 with Open MPI; wrapping mpirun in a plain `timeout` instead can leave
/// it hanging after an abort); `--oversubscribe` (see [`Oversubscribe`]);
/// `--allow-run-as-root` only when this process runs as root; `--bind-to` if set; each
/// `--mca KEY VALUE`; then the program and its arguments.
///
/// ```
/// use std::time::Duration;
/// use mp_mpi::{Mpirun, mpirun::Binding};
///
/// let job = Mpirun::new("./ring", 2)
///     .timeout(Duration::from_secs(60))
///     .bind_to(Binding::None)
///     .mca("btl", "self,tcp")
///     .arg("--message")
///     .arg("hello world");
/// let text = job.display();
/// assert!(text.starts_with("mpirun -n 2 --timeout 60 "));
/// assert!(text.ends_with("--bind-to none --mca btl self,tcp ./ring --message 'hello world'"));
/// ```
#[derive(Clone, Debug)]
pub struct Mpirun {
    ranks: usize,
    program: PathBuf,
    args: Vec<OsString>,
    timeout: Duration,
    oversubscribe: Oversubscribe,
    binding: Option<Binding>,
    mca: Vec<(String, String)>,
    cores: usize,
    root: bool,
    outside: bool,
}

impl Mpirun {
    /// The default time limit of a job: 10 minutes.
    pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(600);

    /// `mpirun -n ranks program`, with the defaults: a 10-minute time limit,
    /// `--oversubscribe` when needed, `--allow-run-as-root` when root, mpirun's own binding.
    ///
    /// ```
    /// let job = mp_mpi::Mpirun::new("a.out", 1);
    /// assert!(job.display().starts_with("mpirun -n 1 --timeout 600"));
    /// ```
    pub fn new(program: impl Into<PathBuf>, ranks: usize) -> Mpirun {
        Mpirun {
            ranks,
            program: program.into(),
            args: Vec::new(),
            timeout: Self::DEFAULT_TIMEOUT,
            oversubscribe: Oversubscribe::WhenNeeded,
            binding: None,
            mca: Vec::new(),
            cores: std::thread::available_parallelism().map_or(1, usize::from),
            root: running_as_root(),
            outside: false,
        }
    }

    /// Starts the job as a job of its own even when this process is a rank of another one
    /// (a *nested* job): [`Mpirun::command`] then removes every launcher variable of this
    /// process's environment ([`is_launcher_variable`]: `OMPI_*`, `PMIX_*`, `OPAL_*`,
    /// `PRTE_*`, `PMI_*`) and keeps the rest (`PATH`, `HOME`...). The display does not change.
    /// MCA settings that came through the environment (`OMPI_MCA_*`) are removed too: pass
    /// them with [`Mpirun::mca`].
    ///
    /// ```
    /// let command = mp_mpi::Mpirun::new("a.out", 2).outside_this_job().command();
    /// // Under mpirun, `command.get_envs()` lists OMPI_COMM_WORLD_RANK and the others as removed.
    /// # drop(command);
    /// ```
    pub fn outside_this_job(mut self) -> Mpirun {
        self.outside = true;
        self
    }

    /// Adds `--mca plm isolated` when neither `ssh` nor `rsh` is on `PATH`: Open MPI's
    /// launcher looks for one even to start ranks on this machine alone, and fails without.
    /// The job's ranks then all run here.
    ///
    /// ```
    /// let job = mp_mpi::Mpirun::new("a.out", 2).isolated_without_remote_shell();
    /// # drop(job);
    /// ```
    pub fn isolated_without_remote_shell(self) -> Mpirun {
        if find_on_path("ssh").is_none() && find_on_path("rsh").is_none() {
            self.mca("plm", "isolated")
        } else {
            self
        }
    }

    /// Adds one argument for the program.
    ///
    /// ```
    /// let job = mp_mpi::Mpirun::new("a.out", 2).arg("--size").arg("8");
    /// assert!(job.display().ends_with("a.out --size 8"));
    /// ```
    pub fn arg(mut self, arg: impl AsRef<OsStr>) -> Mpirun {
        self.args.push(arg.as_ref().to_owned());
        self
    }

    /// Adds arguments for the program.
    ///
    /// ```
    /// let job = mp_mpi::Mpirun::new("a.out", 2).args(["-v", "x y"]);
    /// assert!(job.display().ends_with("a.out -v 'x y'"));
    /// ```
    pub fn args<I: IntoIterator<Item = S>, S: AsRef<OsStr>>(mut self, args: I) -> Mpirun {
        self.args.extend(args.into_iter().map(|arg| arg.as_ref().to_owned()));
        self
    }

    /// The job's time limit, `--timeout SECS` (whole seconds, rounded up, at least 1).
    ///
    /// ```
    /// let job = mp_mpi::Mpirun::new("a.out", 2).timeout(std::time::Duration::from_millis(1500));
    /// assert!(job.display().contains("--timeout 2 "));
    /// ```
    pub fn timeout(mut self, limit: Duration) -> Mpirun {
        self.timeout = limit;
        self
    }

    /// When to pass `--oversubscribe`; see [`Oversubscribe`].
    ///
    /// ```
    /// use mp_mpi::mpirun::Oversubscribe;
    /// let job = mp_mpi::Mpirun::new("a.out", 1).oversubscribe(Oversubscribe::Always);
    /// assert!(job.display().contains("--oversubscribe"));
    /// ```
    pub fn oversubscribe(mut self, when: Oversubscribe) -> Mpirun {
        self.oversubscribe = when;
        self
    }

    /// `--bind-to none` or `--bind-to core`; unset, mpirun decides (Open MPI 4 binds to cores
    /// for up to 2 ranks, to sockets above).
    ///
    /// ```
    /// use mp_mpi::mpirun::Binding;
    /// let job = mp_mpi::Mpirun::new("a.out", 2).bind_to(Binding::Core);
    /// assert!(job.display().contains("--bind-to core"));
    /// ```
    pub fn bind_to(mut self, binding: Binding) -> Mpirun {
        self.binding = Some(binding);
        self
    }

    /// An MCA parameter, `--mca KEY VALUE`: `mca("btl", "self,tcp")` makes Open MPI use TCP
    /// even between ranks on one machine; `mca("btl_vader_single_copy_mechanism", "none")` is
    /// the fix for containers that forbid `process_vm_readv`.
    ///
    /// ```
    /// let job = mp_mpi::Mpirun::new("a.out", 2).mca("btl", "self,tcp");
    /// assert!(job.display().contains("--mca btl self,tcp"));
    /// ```
    pub fn mca(mut self, key: impl Into<String>, value: impl Into<String>) -> Mpirun {
        self.mca.push((key.into(), value.into()));
        self
    }

    /// The number of ranks.
    ///
    /// ```
    /// assert_eq!(mp_mpi::Mpirun::new("a.out", 3).ranks(), 3);
    /// ```
    pub fn ranks(&self) -> usize {
        self.ranks
    }

    /// Everything after `mpirun`: the flags, the program, its arguments.
    fn words(&self) -> Vec<OsString> {
        let mut words: Vec<OsString> = vec!["-n".into(), self.ranks.to_string().into()];
        let seconds = self.timeout.as_secs() + u64::from(self.timeout.subsec_nanos() > 0);
        words.push("--timeout".into());
        words.push(seconds.max(1).to_string().into());
        let oversubscribe = match self.oversubscribe {
            Oversubscribe::Always => true,
            Oversubscribe::Never => false,
            Oversubscribe::WhenNeeded => self.ranks > self.cores,
        };
        if oversubscribe {
            words.push("--oversubscribe".into());
        }
        if self.root {
            words.push("--allow-run-as-root".into());
        }
        if let Some(binding) = self.binding {
            words.push("--bind-to".into());
            words.push(match binding {
                Binding::None => "none".into(),
                Binding::Core => "core".into(),
            });
        }
        for (key, value) in &self.mca {
            words.extend(["--mca".into(), key.into(), value.into()]);
        }
        words.push(self.program.clone().into_os_string());
        words.extend(self.args.iter().cloned());
        words
    }

    /// The command to run: `mpirun` (found on `PATH` when it runs) with [`Mpirun::display`]'s
    /// words.
    ///
    /// ```
    /// let command = mp_mpi::Mpirun::new("a.out", 2).command();
    /// assert_eq!(command.get_args().next().unwrap(), "-n");
    /// ```
    pub fn command(&self) -> Command {
        let mut command = Command::new("mpirun");
        command.args(self.words());
        if self.outside {
            for (name, _) in std::env::vars_os().filter(|(name, _)| is_launcher_variable(name)) {
                command.env_remove(name);
            }
        }
        command
    }

    /// The command line as one line of shell, for people to copy: words with spaces or shell
    /// characters are single-quoted.
    ///
    /// ```
    /// let job = mp_mpi::Mpirun::new("/tmp/my dir/a.out", 2).arg("it's");
    /// assert!(job.display().ends_with("'/tmp/my dir/a.out' 'it'\\''s'"));
    /// ```
    pub fn display(&self) -> String {
        std::iter::once(OsString::from("mpirun"))
            .chain(self.words())
            .map(|word| shell_quote(&word))
            .collect::<Vec<_>>()
            .join(" ")
    }

    #[cfg(test)]
    fn on(mut self, cores: usize, root: bool) -> Mpirun {
        self.cores = cores;
        self.root = root;
        self
    }
}

/// `word` as the shell reads it back: as is when it holds only safe characters, else in
/// single quotes (a quote inside becomes `'\''`).
fn shell_quote(word: &OsStr) -> String {
    let text = word.to_string_lossy();
    let safe = !text.is_empty()
        && text.chars().all(|c| c.is_ascii_alphanumeric() || "-_./,:=+@%".contains(c));
    if safe { text.into_owned() } else { format!("'{}'", text.replace('\'', "'\\''")) }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn env(pairs: &[(&str, &str)]) -> impl Fn(&str) -> Option<OsString> {
        let pairs: Vec<(String, String)> =
            pairs.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect();
        move |name| pairs.iter().find(|(k, _)| k == name).map(|(_, v)| v.into())
    }

    #[test]
    fn open_mpi_is_found_with_rank_and_size() {
        let found =
            launcher_from(env(&[("OMPI_COMM_WORLD_RANK", "2"), ("OMPI_COMM_WORLD_SIZE", "4")]))
                .unwrap();
        assert_eq!(found, Launcher { name: "Open MPI's mpirun", rank: Some(2), size: Some(4) });
        assert_eq!(found.to_string(), "Open MPI's mpirun (rank 2 of 4)");
    }

    #[test]
    fn pmix_takes_the_size_from_open_mpi_if_there() {
        let found = launcher_from(env(&[("PMIX_RANK", "1")])).unwrap();
        assert_eq!((found.name, found.rank, found.size), ("a PMIx launcher", Some(1), None));
        let found =
            launcher_from(env(&[("PMIX_RANK", "1"), ("OMPI_COMM_WORLD_SIZE", "3")])).unwrap();
        assert_eq!(found.size, Some(3));
    }

    #[test]
    fn hydra_is_found() {
        let found = launcher_from(env(&[("PMI_RANK", "0"), ("PMI_SIZE", "2")])).unwrap();
        assert_eq!(found.to_string(), "MPICH's mpiexec (Hydra) (rank 0 of 2)");
    }

    #[test]
    fn slurm_alone_is_not_mpi_and_nothing_is_nothing() {
        assert_eq!(launcher_from(env(&[("SLURM_PROCID", "0"), ("SLURM_NTASKS", "4")])), None);
        assert_eq!(launcher_from(env(&[])), None);
    }

    #[test]
    fn junk_values_still_mean_a_launcher() {
        let found =
            launcher_from(env(&[("OMPI_COMM_WORLD_RANK", "x"), ("OMPI_COMM_WORLD_SIZE", "")]))
                .unwrap();
        assert_eq!((found.rank, found.size), (None, None));
        assert_eq!(found.to_string(), "Open MPI's mpirun");
    }

    #[test]
    fn root_is_read_from_the_effective_uid() {
        assert_eq!(effective_uid("Name:\tx\nUid:\t1000\t0\t0\t0\n"), Some(0));
        assert_eq!(effective_uid("Uid:\t0\t1000\t1000\t1000\n"), Some(1000));
        assert_eq!(effective_uid("Uid:\tjunk\n"), None);
        assert_eq!(effective_uid(""), None);
    }

    #[test]
    fn oversubscribe_only_when_ranks_outnumber_cores() {
        let flags = |ranks, cores| Mpirun::new("a.out", ranks).on(cores, false).display();
        assert!(!flags(2, 2).contains("--oversubscribe"));
        assert!(flags(4, 2).contains("--oversubscribe"));
        let always = Mpirun::new("a.out", 1).on(8, false).oversubscribe(Oversubscribe::Always);
        assert!(always.display().contains("--oversubscribe"));
        let never = Mpirun::new("a.out", 9).on(8, false).oversubscribe(Oversubscribe::Never);
        assert!(!never.display().contains("--oversubscribe"));
    }

    #[test]
    fn allow_run_as_root_only_for_root() {
        assert!(Mpirun::new("a.out", 2).on(2, true).display().contains("--allow-run-as-root"));
        assert!(!Mpirun::new("a.out", 2).on(2, false).display().contains("--allow-run-as-root"));
    }

    #[test]
    fn the_whole_line_in_order() {
        let job = Mpirun::new("./prog", 4)
            .on(2, true)
            .timeout(Duration::from_secs(30))
            .bind_to(Binding::None)
            .mca("btl", "self,tcp")
            .args(["--label", "two words", ""]);
        assert_eq!(
            job.display(),
            "mpirun -n 4 --timeout 30 --oversubscribe --allow-run-as-root --bind-to none \
             --mca btl self,tcp ./prog --label 'two words' ''"
        );
        let command = job.command();
        let args: Vec<&OsStr> = command.get_args().collect();
        assert_eq!(args.len(), 15);
        assert_eq!(args[12], "--label");
        assert_eq!(args[13], "two words"); // one argument, no quotes: the Command needs none
    }

    #[test]
    fn launcher_variables_are_the_five_prefixes_only() {
        for name in [
            "OMPI_COMM_WORLD_RANK",
            "OMPI_MCA_orte_hnp_uri",
            "PMIX_RANK",
            "PMIX_SERVER_URI41",
            "OPAL_PREFIX",
            "PRTE_MCA_x",
            "PMI_FD",
            "PMI_RANK",
        ] {
            assert!(is_launcher_variable(OsStr::new(name)), "{name}");
        }
        for name in ["PATH", "HOME", "LD_LIBRARY_PATH", "OMPI", "PMI", "PMIXED", "ompi_x", "TMPDIR"]
        {
            assert!(!is_launcher_variable(OsStr::new(name)), "{name}");
        }
    }

    #[test]
    fn a_nested_job_removes_the_launcher_variables_this_process_has() {
        // The test's own environment: whatever launcher variables it has are removed, and
        // nothing else is touched.
        let command = Mpirun::new("a.out", 2).outside_this_job().command();
        let removed: Vec<&OsStr> = command
            .get_envs()
            .map(|(name, value)| {
                assert_eq!(value, None, "{name:?} is removed, never set");
                name
            })
            .collect();
        let expected: Vec<OsString> = std::env::vars_os()
            .map(|(name, _)| name)
            .filter(|name| is_launcher_variable(name))
            .collect();
        assert_eq!(removed.len(), expected.len());
        assert!(removed.iter().all(|name| is_launcher_variable(name)));
        assert_eq!(Mpirun::new("a.out", 2).command().get_envs().count(), 0);
    }

    #[test]
    fn quoting() {
        assert_eq!(shell_quote(OsStr::new("a$b")), "'a$b'");
        assert_eq!(shell_quote(OsStr::new("it's")), "'it'\\''s'");
        assert_eq!(shell_quote(OsStr::new("--x=1,2")), "--x=1,2");
    }
}
