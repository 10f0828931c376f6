//! What the figures were measured on: CPU, cores, memory, kernel and tool versions.

use std::{process::Command, time::Duration};

use serde::{Deserialize, Serialize};

use crate::external::{self, which};

/// The machine and the software versions, for the top of the report.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct Machine {
    /// `model name` from /proc/cpuinfo.
    pub cpu: String,
    /// Logical CPUs listed in /proc/cpuinfo.
    pub cpus_listed: usize,
    /// CPUs this process may run on.
    pub cpus_available: usize,
    /// `MemTotal` from /proc/meminfo, in bytes.
    pub memory_bytes: Option<u64>,
    /// Kernel release.
    pub kernel: String,
    /// `rustc --version`.
    pub rustc: Option<String>,
    /// Python version (and implementation), filled in by the Python part.
    pub python: Option<String>,
    /// numpy's version.
    pub numpy: Option<String>,
    /// mpi4py's version.
    pub mpi4py: Option<String>,
    /// `mpirun --version`, first line.
    pub mpi: Option<String>,
    /// The workspace's git revision (`git describe --always --dirty`): which mp was measured.
    pub revision: Option<String>,
    /// 1-, 5- and 15-minute load averages when the run started.
    pub load_before: Option<[f64; 3]>,
    /// The same when the measurements ended.
    pub load_after: Option<[f64; 3]>,
}

impl Machine {
    /// Reads what can be read without the Python or MPI parts.
    pub fn describe() -> Machine {
        let cpuinfo = std::fs::read_to_string("/proc/cpuinfo").unwrap_or_default();
        let meminfo = std::fs::read_to_string("/proc/meminfo").unwrap_or_default();
        let kernel = std::fs::read_to_string("/proc/sys/kernel/osrelease")
            .map(|release| format!("Linux {}", release.trim()))
            .unwrap_or_else(|_| "unknown".into());
        Machine {
            cpu: cpu_model(&cpuinfo).unwrap_or_else(|| "unknown".into()),
            cpus_listed: cpuinfo.lines().filter(|line| line.starts_with("processor")).count(),
            cpus_available: std::thread::available_parallelism().map_or(0, usize::from),
            memory_bytes: mem_total(&meminfo),
            kernel,
            rustc: rustc_version(),
            revision: git_revision(),
            load_before: load_average(),
            ..Machine::default()
        }
    }

    /// A sentence on how busy the machine was, warning when other jobs shared it.
    pub fn load_note(&self) -> Option<String> {
        let (before, after) = (self.load_before?, self.load_after?);
        let busiest = before[0].max(after[0]);
        let cpus = self.cpus_available.max(1) as f64;
        let verdict = if busiest > cpus * 0.75 {
            "other jobs shared the machine, so these figures are disturbed: compare only within this run"
        } else {
            "the machine was otherwise quiet"
        };
        Some(format!(
            "Load average (1 min) {:.2} at the start, {:.2} at the end, on {} CPUs: {verdict}.",
            before[0], after[0], self.cpus_available
        ))
    }

    /// One line for the report: `AMD EPYC, 2 CPUs, 23.4 GiB, Linux 6.18`.
    pub fn summary(&self) -> String {
        let memory = self
            .memory_bytes
            .map(|bytes| format!(", {:.1} GiB memory", bytes as f64 / (1u64 << 30) as f64))
            .unwrap_or_default();
        let cpus = if self.cpus_listed == self.cpus_available || self.cpus_listed == 0 {
            format!("{} CPUs", self.cpus_available)
        } else {
            format!("{} CPUs ({} usable here)", self.cpus_listed, self.cpus_available)
        };
        format!("{}, {cpus}{memory}, {}", self.cpu, self.kernel)
    }
}

/// The first `model name` of /proc/cpuinfo's text.
pub fn cpu_model(cpuinfo: &str) -> Option<String> {
    cpuinfo
        .lines()
        .find(|line| line.starts_with("model name"))
        .and_then(|line| line.split_once(':'))
        .map(|(_, model)| model.trim().to_string())
        .filter(|model| !model.is_empty())
}

/// `MemTotal` of /proc/meminfo's text, in bytes.
pub fn mem_total(meminfo: &str) -> Option<u64> {
    let line = meminfo.lines().find(|line| line.starts_with("MemTotal:"))?;
    let kib: u64 = line.split_whitespace().nth(1)?.parse().ok()?;
    Some(kib * 1024)
}

/// The three load averages of /proc/loadavg's text.
pub fn parse_load(loadavg: &str) -> Option<[f64; 3]> {
    let mut fields = loadavg.split_whitespace().map(str::parse::<f64>);
    Some([fields.next()?.ok()?, fields.next()?.ok()?, fields.next()?.ok()?])
}

/// The load averages now.
pub fn load_average() -> Option<[f64; 3]> {
    parse_load(&std::fs::read_to_string("/proc/loadavg").ok()?)
}

fn git_revision() -> Option<String> {
    let mut command = Command::new(which("git")?);
    command.args(["-C", env!("CARGO_MANIFEST_DIR"), "describe", "--always", "--dirty"]);
    let finished = external::run(command, Duration::from_secs(20)).ok()?;
    Some(finished.stdout.trim().to_string()).filter(|revision| !revision.is_empty())
}

fn rustc_version() -> Option<String> {
    let rustc = std::env::var("RUSTC").ok().unwrap_or_else(|| "rustc".into());
    let mut command = Command::new(which(&rustc)?);
    command.arg("--version");
    let finished = external::run(command, Duration::from_secs(20)).ok()?;
    Some(finished.stdout.trim().to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_cpu_and_memory() {
        let cpuinfo =
            "processor\t: 0\nmodel name\t: AMD EPYC\nprocessor\t: 1\nmodel name\t: AMD EPYC\n";
        assert_eq!(cpu_model(cpuinfo).as_deref(), Some("AMD EPYC"));
        assert_eq!(cpu_model("processor\t: 0\n"), None);
        assert_eq!(
            mem_total("MemTotal:       24000000 kB\nMemFree: 1 kB\n"),
            Some(24_000_000 * 1024)
        );
        assert_eq!(mem_total("MemFree: 1 kB\n"), None);
    }

    #[test]
    fn the_summary_names_cpu_cores_memory_and_kernel() {
        let machine = Machine {
            cpu: "AMD EPYC".into(),
            cpus_listed: 2,
            cpus_available: 2,
            memory_bytes: Some(24 << 30),
            kernel: "Linux 6.18".into(),
            ..Machine::default()
        };
        assert_eq!(machine.summary(), "AMD EPYC, 2 CPUs, 24.0 GiB memory, Linux 6.18");
    }

    #[test]
    fn the_load_note_warns_about_a_busy_machine() {
        assert_eq!(parse_load("0.52 1.00 2.50 3/200 1234\n"), Some([0.52, 1.0, 2.5]));
        assert_eq!(parse_load("0.5 x"), None);
        let mut machine = Machine { cpus_available: 2, ..Machine::default() };
        assert_eq!(machine.load_note(), None);
        machine.load_before = Some([0.2, 0.1, 0.1]);
        machine.load_after = Some([1.0, 0.5, 0.2]);
        assert!(machine.load_note().unwrap().contains("otherwise quiet"));
        machine.load_after = Some([7.4, 6.0, 4.0]);
        let note = machine.load_note().unwrap();
        assert!(
            note.starts_with("Load average (1 min) 0.20 at the start, 7.40 at the end, on 2 CPUs")
        );
        assert!(note.contains("disturbed"));
    }
}
