//! The command line: `--quick`, `--out DIR`, `--python PATH`, `--no-python`, `--no-mpi`,
//! `--load N`, `--help`.

use std::path::PathBuf;

/// What `--help` prints.
pub const HELP: &str = "\
mp-bench: mp side by side with Python's multiprocessing, MPI and the hardware, in one run.

Usage: cargo run --release -p mp-bench -- [FLAGS]

Measures on this machine: Pool(4) start-up, map's per-task overhead (chunksize 1 and the
default), one-way latency and bandwidth from 1 B to 64 MiB (mp pipe, mp Comm, threads with a
channel, ipc-channel's bytes, typed and IpcSharedMemory channels, Python Pipe, C MPI, mp's
Communicator on MPI, mpi4py, memcpy), a gather of 4 arrays of 1e6 f64, the peak memory of one 256 MiB message and a
shared-memory flag's latency. Writes DIR/report.md (targets, met or not), DIR/results.json
(every raw figure) and DIR/bandwidth.svg.

Flags:
  --quick          short smoke run (under 30 s): fewer sizes, repetitions and tasks
  --out DIR        where the report goes (default: target/bench-report)
  --python PATH    the Python interpreter to compare with (default: python3); it needs numpy
                   for the gather (python3 -m pip install numpy)
  --no-python      skip Python's multiprocessing
  --no-mpi         skip MPI (otherwise measured when mpirun and mpicc are on PATH; Debian:
                   apt-get install -y openmpi-bin libopenmpi-dev; mp on MPI also needs
                   libclang-dev and this workspace's source, built with cargo)
  --load N         after the quiet comparison, start N busy processes (0 to 64; 2 on a
                   2-core machine makes it as busy as a shared login node) and measure the
                   one-way latency from 1 B to 4 KiB again under that load, twice: with both
                   sides of every ping-pong bound to a CPU each (as mpirun --bind-to core
                   binds MPI's ranks), then unbound: mp pipe, mp Comm, Python Pipe and C MPI,
                   with verdicts in a loaded section of the report. The busy processes are
                   stopped when the bench ends, however it ends (default 0: no loaded part)
  -h, --help       this text
";

/// The options of one run.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Options {
    /// Short smoke run.
    pub quick: bool,
    /// Output directory.
    pub out: PathBuf,
    /// Python interpreter.
    pub python: String,
    /// Leave Python out.
    pub no_python: bool,
    /// Leave MPI out.
    pub no_mpi: bool,
    /// Busy processes for the loaded part (0: none).
    pub load: usize,
}

impl Default for Options {
    fn default() -> Options {
        Options {
            quick: false,
            out: PathBuf::from("target/bench-report"),
            python: "python3".into(),
            no_python: false,
            no_mpi: false,
            load: 0,
        }
    }
}

/// What the command line asks for.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Command {
    /// Print the help.
    Help,
    /// Measure.
    Run(Options),
}

/// Parses the arguments after the program name; an error says which one is wrong.
pub fn parse<S: AsRef<str>>(args: &[S]) -> Result<Command, String> {
    let mut options = Options::default();
    let mut seen: Vec<&str> = Vec::new();
    let mut args = args.iter().map(AsRef::as_ref);
    while let Some(arg) = args.next() {
        let (flag, inline) = match arg.split_once('=') {
            Some((flag, value)) if flag.starts_with("--") => (flag, Some(value)),
            _ => (arg, None),
        };
        // A flag given twice is a mistake in a script or a shell history: which one was meant
        // (two `--load`s, two `--out`s) is not ours to guess.
        if flag.starts_with("--") && flag != "--help" {
            if seen.contains(&flag) {
                return Err(format!("{flag} is given twice; give it once"));
            }
            seen.push(flag);
        }
        let mut value = |name: &str| -> Result<String, String> {
            match inline {
                Some(value) => Some(value.to_string()),
                None => args.next().map(str::to_string),
            }
            .filter(|value| !value.is_empty())
            .ok_or_else(|| format!("{name} needs a value"))
        };
        match flag {
            "-h" | "--help" => return Ok(Command::Help),
            "--quick" => options.quick = true,
            "--no-python" => options.no_python = true,
            "--no-mpi" => options.no_mpi = true,
            "--out" => options.out = PathBuf::from(value("--out")?),
            "--python" => options.python = value("--python")?,
            "--load" => options.load = crate::load::parse_load(&value("--load")?)?,
            other => return Err(format!("unknown argument `{other}`")),
        }
    }
    Ok(Command::Run(options))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn run(args: &[&str]) -> Options {
        match parse(args).unwrap() {
            Command::Run(options) => options,
            Command::Help => panic!("asked for help"),
        }
    }

    #[test]
    fn no_arguments_is_the_full_run_into_target() {
        assert_eq!(run(&[]), Options::default());
        assert_eq!(Options::default().out, PathBuf::from("target/bench-report"));
    }

    #[test]
    fn flags_and_values_in_both_spellings() {
        let options = run(&["--quick", "--out", "/tmp/r", "--python=python3.12", "--no-mpi"]);
        assert!(options.quick && options.no_mpi && !options.no_python);
        assert_eq!(options.out, PathBuf::from("/tmp/r"));
        assert_eq!(options.python, "python3.12");
        assert_eq!(run(&["--out=x"]).out, PathBuf::from("x"));
    }

    #[test]
    fn help_wins_and_mistakes_are_named() {
        assert_eq!(parse(&["--quick", "-h"]).unwrap(), Command::Help);
        assert_eq!(parse(&["--fast"]).unwrap_err(), "unknown argument `--fast`");
        assert_eq!(parse(&["--out"]).unwrap_err(), "--out needs a value");
        assert_eq!(parse(&["--out="]).unwrap_err(), "--out needs a value");
        assert_eq!(parse(&["--load"]).unwrap_err(), "--load needs a value");
        assert!(parse(&["--load", "65"]).unwrap_err().contains("from 0 to 64"));
        assert!(parse(&["--load=x"]).unwrap_err().contains("not `x`"));
        assert_eq!(
            parse(&["--load", "2", "--load=3"]).unwrap_err(),
            "--load is given twice; give it once"
        );
        assert_eq!(
            parse(&["--out", "a", "--quick", "--out", "b"]).unwrap_err(),
            "--out is given twice; give it once"
        );
        assert_eq!(
            parse(&["--quick", "--quick"]).unwrap_err(),
            "--quick is given twice; give it once"
        );
    }

    #[test]
    fn load_takes_a_count() {
        assert_eq!(run(&[]).load, 0);
        assert_eq!(run(&["--load", "2"]).load, 2);
        assert_eq!(run(&["--load=64", "--quick"]).load, 64);
    }

    #[test]
    fn the_help_explains_every_flag() {
        for flag in [
            "--quick",
            "--out DIR",
            "--python PATH",
            "--no-python",
            "--no-mpi",
            "--load N",
            "--help",
        ] {
            assert!(HELP.contains(flag), "{flag}");
        }
    }
}
