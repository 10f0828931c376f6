//! MPI, the latency target: a C ping-pong built at run time with `mpicc` and run on two ranks
//! with `mpirun`, the same ping-pong through mp's `Communicator` on MPI (`mp-mpi`'s
//! `mp-mpi-pingpong`, built at run time with cargo and `--features mpi`), and through mpi4py
//! if Python has it.
//!
//! Ranks are bound to a core each (`--bind-to core`, Open MPI's default for two ranks) and Open
//! MPI's shared-memory transport busy-polls while it waits, which is how MPI gets under a
//! microsecond on one machine. The loaded part also runs the C ping-pong unbound
//! (`--bind-to none`), beside mp and Python unbound.

use std::{
    path::{Path, PathBuf},
    process::Command,
    time::Duration,
};

use serde::Deserialize;

use crate::{
    external::{self, which},
    sweep::{RawPoint, SweepPlan},
};

/// The C source, built into the output directory at run time.
pub const PINGPONG_C: &str = include_str!("../mpi/pingpong.c");

/// How to install MPI on Debian or Ubuntu, for the report.
pub const INSTALL_HINT: &str = "install Open MPI (Debian/Ubuntu: `apt-get update && apt-get install -y openmpi-bin libopenmpi-dev`)";

/// What the C program prints.
#[derive(Debug, Deserialize)]
pub struct MpiOutput {
    /// `MPI_Get_library_version`.
    pub library: String,
    /// One per size.
    pub points: Vec<RawPoint>,
}

/// The first line of `mpirun --version` (`mpirun (Open MPI) 4.1.4`), if mpirun runs.
pub fn version() -> Option<String> {
    let mut command = Command::new(which("mpirun")?);
    command.arg("--version");
    let finished = external::run(command, Duration::from_secs(20)).ok()?;
    finished.stdout.lines().next().map(|line| line.trim().to_string())
}

/// Why MPI cannot be measured here, or `None` if `mpirun` and `mpicc` are both there.
pub fn missing() -> Option<String> {
    let absent: Vec<&str> =
        ["mpirun", "mpicc"].into_iter().filter(|program| which(program).is_none()).collect();
    (!absent.is_empty())
        .then(|| format!("{} not found on PATH; {INSTALL_HINT}", absent.join(" and ")))
}

/// True if this process runs as root (Open MPI then needs `--allow-run-as-root`).
fn is_root() -> bool {
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    effective_uid(&status) == Some(0)
}

/// The effective user id from the text of `/proc/self/status` (the second field of `Uid:`).
pub fn effective_uid(status: &str) -> Option<u32> {
    let line = status.lines().find(|line| line.starts_with("Uid:"))?;
    line.split_whitespace().nth(2)?.parse().ok()
}

/// Where mpirun puts its two ranks.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Binding {
    /// One core each (`--bind-to core`).
    CoreEach,
    /// Wherever the kernel puts them (`--bind-to none`).
    Unbound,
}

impl Binding {
    fn flag(self) -> &'static str {
        match self {
            Binding::CoreEach => "core",
            Binding::Unbound => "none",
        }
    }
}

/// `mpirun` with two ranks, one per core, and the flags a root user in a container needs.
fn mpirun() -> Result<Command, String> {
    mpirun_bound(Binding::CoreEach)
}

fn mpirun_bound(binding: Binding) -> Result<Command, String> {
    let mut command = Command::new(which("mpirun").ok_or("mpirun not found")?);
    command.args(["-np", "2", "--bind-to", binding.flag(), "--oversubscribe"]);
    if is_root() {
        command.arg("--allow-run-as-root");
    }
    Ok(command)
}

/// The mpirun command line used, for the report.
pub fn describe_mpirun() -> String {
    let root = if is_root() { " --allow-run-as-root" } else { "" };
    format!("mpirun -np 2 --bind-to core --oversubscribe{root}")
}

/// The time limit for one ping-pong run: the budget for every size, with room to spare.
fn limit_for(plan: &SweepPlan) -> Duration {
    Duration::from_secs_f64(60.0 + 4.0 * plan.budget_s * plan.sizes.len() as f64)
}

/// Parses the C program's output (the last line that holds a JSON object).
pub fn parse_output(stdout: &str) -> Result<MpiOutput, String> {
    let line =
        stdout.lines().rev().find(|line| line.trim_start().starts_with('{')).ok_or_else(|| {
            format!("no JSON in the MPI program's output: {:?}", first_chars(stdout))
        })?;
    serde_json::from_str(line).map_err(|error| format!("the MPI program's JSON: {error}"))
}

fn first_chars(text: &str) -> String {
    text.chars().take(200).collect()
}

/// Builds the C ping-pong in `dir` and runs it over `plan`, its ranks placed as `binding` says.
pub fn c_pingpong(dir: &Path, plan: &SweepPlan, binding: Binding) -> Result<MpiOutput, String> {
    std::fs::create_dir_all(dir).map_err(|error| format!("creating {}: {error}", dir.display()))?;
    let source = dir.join("pingpong.c");
    let program = dir.join("pingpong");
    std::fs::write(&source, PINGPONG_C)
        .map_err(|error| format!("writing {}: {error}", source.display()))?;
    let mut build = Command::new(which("mpicc").ok_or("mpicc not found")?);
    build.arg("-O2").arg("-o").arg(&program).arg(&source);
    external::run(build, Duration::from_secs(120)).map_err(|error| format!("building: {error}"))?;
    let mut run = mpirun_bound(binding)?;
    run.arg(&program).arg(plan.budget_s.to_string()).arg(plan.samples.to_string());
    run.args(plan.sizes.iter().map(u64::to_string));
    let finished = external::run(run, limit_for(plan))?;
    parse_output(&finished.stdout)
}

/// This workspace's root, where `mp-mpi` is built from (`None` when the source is not there,
/// as for an `mp-bench` binary copied elsewhere).
fn workspace_root() -> Option<PathBuf> {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("../..");
    root.join("crates/mp-mpi/Cargo.toml").is_file().then_some(root)
}

/// Why mp on MPI cannot be measured here (beyond [`missing`]), or `None`.
pub fn mp_missing() -> Option<String> {
    workspace_root().is_none().then(|| {
        format!(
            "the workspace source (crates/mp-mpi, looked for from {}) is not there to build \
             mp-mpi-pingpong",
            env!("CARGO_MANIFEST_DIR")
        )
    })
}

/// The command that builds mp's MPI ping-pong, as shown in the report.
pub const MP_BUILD: &str = "cargo build --release -p mp-mpi --features mpi --bin mp-mpi-pingpong";

/// Builds `mp-mpi-pingpong` (release, feature `mpi`) in this workspace; its path.
fn build_mp_pingpong() -> Result<PathBuf, String> {
    let root = workspace_root().ok_or_else(|| mp_missing().unwrap_or_default())?;
    let cargo = std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into());
    let mut build = Command::new(cargo);
    build.current_dir(&root).args([
        "build",
        "--release",
        "--locked",
        "-p",
        "mp-mpi",
        "--features",
        "mpi",
        "--bin",
        "mp-mpi-pingpong",
        "--message-format",
        "json-render-diagnostics",
    ]);
    let finished = external::run(build, Duration::from_secs(900))
        .map_err(|error| format!("`{MP_BUILD}` (needs libclang-dev too): {error}"))?;
    executable_in(&finished.stdout, "mp-mpi-pingpong")
        .ok_or_else(|| format!("`{MP_BUILD}` named no executable"))
}

/// The executable of the binary `name` in cargo's JSON messages.
fn executable_in(messages: &str, name: &str) -> Option<PathBuf> {
    messages
        .lines()
        .filter_map(|line| serde_json::from_str::<serde_json::Value>(line).ok())
        .find_map(|message| {
            (message["reason"] == "compiler-artifact" && message["target"]["name"] == name)
                .then(|| message["executable"].as_str().map(PathBuf::from))
                .flatten()
        })
}

/// Builds mp's MPI ping-pong and runs it over `plan`, as the C program.
pub fn mp_pingpong(plan: &SweepPlan) -> Result<MpiOutput, String> {
    let program = build_mp_pingpong()?;
    let mut run = mpirun()?;
    run.arg(&program).arg(plan.budget_s.to_string()).arg(plan.samples.to_string());
    run.args(plan.sizes.iter().map(u64::to_string));
    let finished = external::run(run, limit_for(plan))?;
    parse_output(&finished.stdout)
}

/// What the mpi4py ping-pong prints (and its mpi4py version, which `info` reports already).
#[derive(Debug, Deserialize)]
pub struct Mpi4pyOutput {
    /// One per size.
    pub points: Vec<RawPoint>,
}

/// Runs the Python script's mpi4py ping-pong under mpirun.
pub fn mpi4py_pingpong(
    python: &Path,
    script: &Path,
    plan: &SweepPlan,
) -> Result<Mpi4pyOutput, String> {
    let mut run = mpirun()?;
    let settings = serde_json::to_string(plan).map_err(|error| error.to_string())?;
    run.arg(python).arg(script).arg("mpi4py_pingpong").arg(settings);
    let finished = external::run(run, limit_for(plan))?;
    let line =
        finished.stdout.lines().rev().find(|line| line.trim_start().starts_with('{')).ok_or_else(
            || format!("no JSON from the mpi4py ping-pong: {:?}", first_chars(&finished.stdout)),
        )?;
    serde_json::from_str(line).map_err(|error| format!("the mpi4py ping-pong's JSON: {error}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_the_c_programs_output() {
        let stdout = "warning: something\n{\"library\": \"Open MPI v4.1.4\", \"points\": \
                      [{\"bytes\": 1, \"batch\": 10, \"one_way_s\": [3.7e-07, 4.0e-07]}]}\n";
        let output = parse_output(stdout).unwrap();
        assert_eq!(output.library, "Open MPI v4.1.4");
        assert_eq!(
            output.points,
            [RawPoint { bytes: 1, batch: 10, one_way_s: vec![3.7e-7, 4.0e-7] }]
        );
    }

    #[test]
    fn output_without_json_is_a_clear_error() {
        assert!(parse_output("mpirun noticed that...\n").unwrap_err().contains("no JSON"));
        assert!(parse_output("{\"library\": 3}\n").unwrap_err().contains("JSON"));
    }

    #[test]
    fn reads_the_effective_uid() {
        assert_eq!(effective_uid("Name:\tx\nUid:\t1000\t0\t0\t0\n"), Some(0));
        assert_eq!(effective_uid("Uid:\t0\t1000\t1000\t1000\n"), Some(1000));
        assert_eq!(effective_uid("Name:\tx\n"), None);
    }

    #[test]
    fn finds_the_executable_in_cargos_messages() {
        let messages = "{\"reason\":\"compiler-artifact\",\"target\":{\"name\":\"mp\"},\"executable\":null}\n\
                        {\"reason\":\"compiler-artifact\",\"target\":{\"name\":\"mp-mpi-pingpong\"},\"executable\":\"/t/release/mp-mpi-pingpong\"}\n\
                        {\"reason\":\"build-finished\",\"success\":true}\n";
        assert_eq!(
            executable_in(messages, "mp-mpi-pingpong"),
            Some(PathBuf::from("/t/release/mp-mpi-pingpong"))
        );
        assert_eq!(executable_in("not json\n", "mp-mpi-pingpong"), None);
    }

    #[test]
    fn the_limit_grows_with_the_plan() {
        let small = SweepPlan { sizes: vec![1], budget_s: 0.1, samples: 3, cpus: None };
        let large = SweepPlan { sizes: vec![1; 20], budget_s: 1.0, samples: 3, cpus: None };
        assert!(limit_for(&small) < limit_for(&large));
    }
}
