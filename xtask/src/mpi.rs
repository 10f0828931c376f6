//! MPI (week 4): `cargo xtask mpirun`, and what it shares with `cargo xtask check`'s MPI rows.
//!
//! The `mpirun` command line is `mp_mpi::Mpirun`'s (one place for its flags: `-n`,
//! `--timeout`, `--oversubscribe` when ranks outnumber cores, `--allow-run-as-root` as root);
//! [`job`] adds what this machine needs besides (`--mca plm isolated` without an ssh or rsh
//! client). [`Build`] builds a package in release, with or without its `mpi` feature, and turns
//! the usual failures of the MPI build (no libclang, no clang headers, no MPI) into one line.
//! [`missing`] says, before anything is built, whether MPI can be built and run here at all.

use std::{
    ffi::OsString,
    path::{Path, PathBuf},
    process::ExitCode,
    time::Duration,
};

use mp_mpi::{Mpirun, mpirun::INSTALL_HINT};

use crate::workspace::{self, Limits, Result};

/// Ranks `-n` may ask for: more than this on one machine is a typing error, not a job.
pub const MAX_RANKS: usize = 64;
/// Seconds `--timeout` may ask for: one day.
pub const MAX_TIMEOUT_SECS: u64 = 24 * 60 * 60;
/// Open MPI's exit code when `--timeout` ended the job.
pub const TIMED_OUT: i32 = 110;
/// How long a build may take before it counts as hung.
const BUILD_LIMIT: Duration = Duration::from_secs(30 * 60);
/// Output kept of a build, for its error message.
const OUTPUT_CAP: usize = 1024 * 1024;

/// `cargo xtask mpirun`: builds a package with its `mpi` feature and runs it under mpirun.
#[derive(clap::Args, Debug)]
pub struct MpirunArgs {
    /// The package to run; it must have an `mpi` feature (e.g. solution-4).
    #[arg(short = 'p', long = "package", value_name = "PACKAGE")]
    package: String,
    /// How many ranks (processes) the job has, 1 to 64.
    #[arg(short = 'n', value_name = "N")]
    ranks: usize,
    /// The job's time limit: mpirun ends a job that runs longer (exit code 110).
    #[arg(long, value_name = "SECS", default_value_t = Mpirun::DEFAULT_TIMEOUT.as_secs())]
    timeout: u64,
    /// The binary to run, when the package has several.
    #[arg(long, value_name = "NAME")]
    bin: Option<String>,
    /// Arguments for the program, after `--`.
    #[arg(last = true, value_name = "ARGS")]
    args: Vec<OsString>,
}

pub fn run(root: &Path, args: &MpirunArgs) -> Result<ExitCode> {
    check_ranks(args.ranks)?;
    check_timeout(args.timeout)?;
    let packages = packages(root)?;
    has_mpi_feature(&packages, &args.package)?;
    which_bin(&packages, &args.package, args.bin.as_deref())?;
    if let Some(line) = mp_mpi::mpirun_missing() {
        return Err(line.into());
    }
    let build = Build { package: args.package.clone(), mpi: true, bin: args.bin.clone() };
    eprintln!("building: {}", build.display());
    let program = build.run(root)?;
    let shown = std::env::current_dir()
        .ok()
        .and_then(|dir| program.strip_prefix(dir).ok().map(Path::to_path_buf))
        .unwrap_or_else(|| program.clone());
    let job = job(&shown, args.ranks, Duration::from_secs(args.timeout)).args(&args.args);
    // The exact line, so that it can be copied and run without xtask.
    eprintln!("{}", job.display());
    let status = job
        .command()
        .status()
        .map_err(|e| format!("cannot start mpirun: {e} ({})", mp_mpi::mpirun::INSTALL_HINT))?;
    use std::os::unix::process::ExitStatusExt;
    let code = match (status.code(), status.signal()) {
        (Some(code), _) => code,
        (None, Some(signal)) => 128 + signal,
        (None, None) => 1,
    };
    if let Some(explained) = explain_exit(code, args.timeout) {
        eprintln!("{explained}");
    }
    Ok(ExitCode::from(u8::try_from(code).unwrap_or(1)))
}

/// One line about mpirun's exit code, when it says something of its own.
pub fn explain_exit(code: i32, timeout_secs: u64) -> Option<String> {
    (code == TIMED_OUT).then(|| {
        format!(
            "mpirun ended the job at its time limit of {timeout_secs} s (exit code {TIMED_OUT}): \
             a rank that waits for a message nobody sends, or more work than the limit allows \
             (--timeout SECS)"
        )
    })
}

pub fn check_ranks(ranks: usize) -> Result<()> {
    if ranks == 0 {
        return Err("-n 0: a job needs at least 1 rank".into());
    }
    if ranks > MAX_RANKS {
        let cores = std::thread::available_parallelism().map_or(1, usize::from);
        return Err(format!(
            "-n {ranks}: at most {MAX_RANKS} ranks on one machine (this one has {cores} cores)"
        )
        .into());
    }
    Ok(())
}

pub fn check_timeout(seconds: u64) -> Result<()> {
    if seconds == 0 || seconds > MAX_TIMEOUT_SECS {
        return Err(format!(
            "--timeout {seconds}: the time limit must be 1 to {MAX_TIMEOUT_SECS} seconds"
        )
        .into());
    }
    Ok(())
}

/// The `mpirun` job for `program` on this machine: `mp_mpi::Mpirun` with its time limit, and
/// `--mca plm isolated` when there is no ssh or rsh client (Open MPI's launcher checks for
/// one even to start ranks on this machine alone; Debian's openmpi-bin pulls one in).
pub fn job(program: &Path, ranks: usize, timeout: Duration) -> Mpirun {
    let job = Mpirun::new(program, ranks).timeout(timeout);
    if on_path("ssh").is_none() && on_path("rsh").is_none() {
        job.mca("plm", "isolated")
    } else {
        job
    }
}

/// What a package build is: `cargo build --release --locked -p PACKAGE`, with
/// `--features PACKAGE/mpi` when `mpi`, and `--bin NAME` when given.
#[derive(Debug, Clone)]
pub struct Build {
    pub package: String,
    pub mpi: bool,
    pub bin: Option<String>,
}

impl Build {
    fn args(&self) -> Vec<String> {
        let mut args: Vec<String> =
            ["build", "--release", "--locked", "-p", &self.package].map(String::from).into();
        if self.mpi {
            args.extend(["--features".into(), format!("{}/mpi", self.package)]);
        }
        if let Some(bin) = &self.bin {
            args.extend(["--bin".into(), bin.clone()]);
        }
        args
    }

    /// The command as people type it.
    pub fn display(&self) -> String {
        format!("cargo {}", self.args().join(" "))
    }

    /// Builds, and returns the path of the package's binary; an error is one line when the
    /// failure is a known one (see [`build_failure`]), else the end of cargo's output.
    pub fn run(&self, root: &Path) -> std::result::Result<PathBuf, String> {
        let mut command = workspace::cargo(root);
        command.args(self.args()).arg("--message-format=json-render-diagnostics");
        let limits = Limits { wall_clock: BUILD_LIMIT, output_cap: OUTPUT_CAP };
        let outcome = workspace::run_limited(command, limits)
            .map_err(|e| format!("cannot run cargo: {e}"))?;
        if outcome.timed_out {
            return Err(format!("`{}` took longer than {BUILD_LIMIT:?}", self.display()));
        }
        if !outcome.success() {
            if let Some(line) = build_failure(&outcome.stderr) {
                return Err(line);
            }
            let tail: Vec<&str> = outcome.stderr.lines().rev().take(30).collect();
            let tail: Vec<&str> = tail.into_iter().rev().collect();
            return Err(format!("`{}` failed:\n{}", self.display(), tail.join("\n")));
        }
        let binaries = binaries(&outcome.stdout);
        match binaries.as_slice() {
            [one] => Ok(one.clone()),
            [] => Err(format!("`{}` built no binary", self.display())),
            several => {
                let names: Vec<String> = several
                    .iter()
                    .filter_map(|p| p.file_name().map(|n| n.to_string_lossy().into_owned()))
                    .collect();
                Err(format!(
                    "{} has several binaries ({}): say which with --bin NAME",
                    self.package,
                    names.join(", ")
                ))
            }
        }
    }
}

/// The binaries cargo's JSON messages say it built (`compiler-artifact`s of kind `bin`).
fn binaries(json_lines: &str) -> Vec<PathBuf> {
    let mut found: Vec<PathBuf> = json_lines
        .lines()
        .filter_map(|line| serde_json::from_str::<serde_json::Value>(line).ok())
        .filter(|message| message["reason"] == "compiler-artifact")
        .filter(|message| {
            message["target"]["kind"].as_array().is_some_and(|k| k.iter().any(|k| k == "bin"))
        })
        .filter_map(|message| message["executable"].as_str().map(PathBuf::from))
        .collect();
    found.dedup();
    found
}

/// One line for the usual ways the `mpi` feature's build fails (mpi-sys's build script: MPI
/// found through `mpicc`/pkg-config, `mpi.h` read by bindgen through libclang), or `None`.
pub fn build_failure(stderr: &str) -> Option<String> {
    let install = format!("(Debian/Ubuntu: `{INSTALL_HINT}`)");
    let what = if stderr.contains("Unable to find libclang")
        || stderr.contains("couldn't find any valid shared libraries matching: ['libclang")
    {
        "libclang is missing: bindgen needs it to read mpi.h"
    } else if stderr.contains("'stddef.h' file not found") {
        "clang's own headers (stddef.h) are missing: libclang is there but not its headers"
    } else if stderr.contains("failed to find an MPI library") {
        "no MPI found to build against: neither `mpicc` nor pkg-config's ompi/mpich"
    } else if stderr.contains("'mpi.h' file not found") {
        "MPI's headers (mpi.h) are missing"
    } else {
        return None;
    };
    Some(format!("the MPI build failed: {what} {install}"))
}

/// `None` when this machine can build and run the `mpi` feature (`mpirun`, `mpicc`, libclang
/// with clang's headers), else one line naming what is missing and the packages to install.
pub fn missing() -> Option<String> {
    let mut absent = Vec::new();
    if mp_mpi::mpirun_missing().is_some() {
        absent.push("mpirun");
    }
    if on_path("mpicc").is_none() {
        absent.push("mpicc");
    }
    match libclang() {
        Libclang::Found => {}
        Libclang::Missing => absent.push("libclang"),
        Libclang::NoHeaders => absent.push("clang's headers (stddef.h)"),
    }
    if absent.is_empty() {
        return None;
    }
    Some(format!("not found: {} (Debian/Ubuntu: `{INSTALL_HINT}`)", absent.join(", ")))
}

/// The first executable file called `program` in a directory of `PATH`.
pub fn on_path(program: &str) -> Option<PathBuf> {
    use std::os::unix::fs::PermissionsExt;
    let path = std::env::var_os("PATH")?;
    std::env::split_paths(&path).map(|dir| dir.join(program)).find(|candidate| {
        std::fs::metadata(candidate)
            .is_ok_and(|meta| meta.is_file() && meta.permissions().mode() & 0o111 != 0)
    })
}

#[derive(Debug, PartialEq, Eq)]
enum Libclang {
    Found,
    Missing,
    /// The library, but no `stddef.h` in its resource directory (`LIB/clang/VERSION/include`):
    /// bindgen then fails on `mpi.h` (rsmpi/rsmpi#1).
    NoHeaders,
}

/// Looks where clang-sys looks on Linux: `$LIBCLANG_PATH`, then the usual library directories
/// and LLVM's own (`/usr/lib/llvm-*/lib`).
fn libclang() -> Libclang {
    let mut dirs: Vec<PathBuf> =
        std::env::var_os("LIBCLANG_PATH").map(PathBuf::from).into_iter().collect();
    for base in ["/usr/lib", "/usr/lib64", "/usr/local/lib"] {
        dirs.push(PathBuf::from(base));
        let Ok(entries) = std::fs::read_dir(base) else { continue };
        for entry in entries.flatten() {
            let name = entry.file_name().to_string_lossy().into_owned();
            if name.starts_with("llvm") {
                dirs.push(entry.path().join("lib"));
            } else if name.ends_with("-linux-gnu") {
                dirs.push(entry.path());
            }
        }
    }
    let mut found = false;
    for dir in dirs {
        let Ok(entries) = std::fs::read_dir(&dir) else { continue };
        for entry in entries.flatten() {
            let name = entry.file_name().to_string_lossy().into_owned();
            let is_libclang = name.starts_with("libclang")
                && name.contains(".so")
                && !name.starts_with("libclang-cpp");
            if !is_libclang {
                continue;
            }
            found = true;
            // Its resource directory is next to the path it was loaded from (Debian's
            // /usr/lib/llvm-N/lib, a symbolic link) or next to the file itself.
            let real = std::fs::canonicalize(entry.path()).unwrap_or_else(|_| entry.path());
            if has_clang_headers(&dir) || real.parent().is_some_and(has_clang_headers) {
                return Libclang::Found;
            }
        }
    }
    if found { Libclang::NoHeaders } else { Libclang::Missing }
}

fn has_clang_headers(lib_dir: &Path) -> bool {
    std::fs::read_dir(lib_dir.join("clang"))
        .into_iter()
        .flatten()
        .flatten()
        .any(|version| version.path().join("include/stddef.h").is_file())
}

/// A workspace package and its features.
#[derive(Debug, Clone)]
pub struct Package {
    pub name: String,
    pub features: Vec<String>,
    /// Its binaries' names.
    pub bins: Vec<String>,
}

/// The workspace's packages, from `cargo metadata`.
pub fn packages(root: &Path) -> Result<Vec<Package>> {
    let mut command = workspace::cargo(root);
    command.args(["metadata", "--no-deps", "--format-version", "1", "--locked"]);
    let limits = Limits { wall_clock: Duration::from_secs(120), output_cap: 16 * OUTPUT_CAP };
    let outcome = workspace::run_limited(command, limits)?;
    if !outcome.success() {
        return Err(format!("cargo metadata failed: {}", outcome.stderr.trim()).into());
    }
    let metadata: serde_json::Value = serde_json::from_str(&outcome.stdout)
        .map_err(|e| format!("cargo metadata wrote something that is not JSON: {e}"))?;
    let packages = metadata["packages"].as_array().cloned().unwrap_or_default();
    Ok(packages
        .iter()
        .filter_map(|package| {
            Some(Package {
                name: package["name"].as_str()?.to_string(),
                features: package["features"]
                    .as_object()
                    .map(|features| features.keys().cloned().collect())
                    .unwrap_or_default(),
                bins: package["targets"]
                    .as_array()
                    .into_iter()
                    .flatten()
                    .filter(|target| {
                        target["kind"].as_array().is_some_and(|k| k.iter().any(|k| k == "bin"))
                    })
                    .filter_map(|target| target["name"].as_str().map(String::from))
                    .collect(),
            })
        })
        .collect())
}

/// The names of the packages with an `mpi` feature.
pub fn with_mpi_feature(packages: &[Package]) -> Vec<&str> {
    let mut names: Vec<&str> = packages
        .iter()
        .filter(|p| p.features.iter().any(|f| f == "mpi"))
        .map(|p| p.name.as_str())
        .collect();
    names.sort();
    names
}

/// `Ok` when `name` is a package of the workspace with an `mpi` feature; else one line saying
/// which packages have one.
pub fn has_mpi_feature(packages: &[Package], name: &str) -> Result<()> {
    let able = with_mpi_feature(packages);
    let which = if able.is_empty() {
        "no package of this workspace has one yet".to_string()
    } else {
        format!("packages with an `mpi` feature: {}", able.join(", "))
    };
    match packages.iter().find(|p| p.name == name) {
        None => Err(format!("there is no package `{name}` in this workspace; {which}").into()),
        Some(_) if !able.contains(&name) => {
            Err(format!("`{name}` has no `mpi` feature, so it cannot run under mpirun; {which}")
                .into())
        }
        Some(_) => Ok(()),
    }
}

/// `Ok` when `bin` names one of the package's binaries, or when it is `None` and the package
/// has exactly one; else one line naming them.
pub fn which_bin(packages: &[Package], name: &str, bin: Option<&str>) -> Result<()> {
    let bins = packages.iter().find(|p| p.name == name).map(|p| p.bins.clone()).unwrap_or_default();
    match (bin, bins.as_slice()) {
        (_, []) => Err(format!("`{name}` has no binary to run").into()),
        (None, [_]) => Ok(()),
        (Some(bin), bins) if bins.iter().any(|b| b == bin) => Ok(()),
        (None, bins) => Err(format!(
            "`{name}` has several binaries ({}): say which with --bin NAME",
            bins.join(", ")
        )
        .into()),
        (Some(bin), bins) => {
            Err(format!("`{name}` has no binary `{bin}`; its binaries: {}", bins.join(", ")).into())
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn known_build_failures_get_one_line_with_the_packages() {
        let libclang = "thread 'main' panicked at clang-sys/src/lib.rs: Unable to find \
                        libclang: \"couldn't find any valid shared libraries matching: \
                        ['libclang.so', 'libclang-*.so'], set the `LIBCLANG_PATH`\"";
        let headers = "/usr/lib/x86_64-linux-gnu/openmpi/include/mpi.h:233:10: fatal error: \
                       'stddef.h' file not found";
        let no_mpi = "This library checks multiple methods to find an MPI library on your \
                      system. This process has failed to find an MPI library for various \
                      reasons:\n\nReason #1:\nCould not run mpicc";
        for (stderr, says) in [
            (libclang, "libclang is missing"),
            (headers, "stddef.h"),
            (no_mpi, "no MPI found"),
            ("src/rsmpi.h:1:10: fatal error: 'mpi.h' file not found", "mpi.h"),
        ] {
            let line = build_failure(stderr).unwrap();
            assert!(line.contains(says), "{line}");
            assert!(line.contains(INSTALL_HINT), "{line}");
            assert_eq!(line.lines().count(), 1, "{line}");
        }
        assert_eq!(build_failure("error[E0308]: mismatched types"), None);
    }

    #[test]
    fn ranks_and_time_limits_out_of_range_are_refused() {
        assert!(check_ranks(0).unwrap_err().to_string().contains("at least 1 rank"));
        assert!(check_ranks(MAX_RANKS + 1).unwrap_err().to_string().contains("at most 64"));
        assert!(check_ranks(1).is_ok() && check_ranks(MAX_RANKS).is_ok());
        assert!(check_timeout(0).is_err() && check_timeout(MAX_TIMEOUT_SECS + 1).is_err());
        assert!(check_timeout(1).is_ok());
    }

    #[test]
    fn only_the_time_limit_exit_code_is_explained() {
        assert!(explain_exit(110, 30).unwrap().contains("time limit of 30 s"));
        assert_eq!(explain_exit(1, 30), None);
    }

    #[test]
    fn packages_without_the_feature_are_refused_naming_those_with_it() {
        let package = |name: &str, features: &[&str]| Package {
            name: name.into(),
            features: features.iter().map(|f| f.to_string()).collect(),
            bins: Vec::new(),
        };
        let all =
            [package("solution-4", &["mpi"]), package("mp", &[]), package("mp-mpi", &["mpi"])];
        assert!(has_mpi_feature(&all, "solution-4").is_ok());
        let error = has_mpi_feature(&all, "mp").unwrap_err().to_string();
        assert!(error.contains("`mp` has no `mpi` feature"), "{error}");
        assert!(error.contains("mp-mpi, solution-4"), "{error}");
        let error = has_mpi_feature(&all, "nope").unwrap_err().to_string();
        assert!(error.contains("no package `nope`"), "{error}");
        let error = has_mpi_feature(&all[1..2], "mp").unwrap_err().to_string();
        assert!(error.contains("no package of this workspace has one yet"), "{error}");
    }

    #[test]
    fn a_package_with_several_binaries_needs_bin() {
        let package = |bins: &[&str]| Package {
            name: "p".into(),
            features: vec!["mpi".into()],
            bins: bins.iter().map(|b| b.to_string()).collect(),
        };
        assert!(which_bin(&[package(&["a"])], "p", None).is_ok());
        let several = [package(&["a", "b"])];
        assert!(which_bin(&several, "p", Some("b")).is_ok());
        let error = which_bin(&several, "p", None).unwrap_err().to_string();
        assert!(error.contains("several binaries (a, b): say which with --bin NAME"), "{error}");
        let error = which_bin(&several, "p", Some("c")).unwrap_err().to_string();
        assert!(error.contains("no binary `c`; its binaries: a, b"), "{error}");
        assert!(
            which_bin(&[package(&[])], "p", None).unwrap_err().to_string().contains("no binary")
        );
    }

    #[test]
    fn binaries_come_from_cargo_s_artifact_messages() {
        let lines = concat!(
            r#"{"reason":"compiler-artifact","target":{"kind":["lib"]},"executable":null}"#,
            "\n",
            r#"{"reason":"compiler-artifact","target":{"kind":["bin"]},"executable":"/t/release/solution-4"}"#,
            "\n",
            r#"{"reason":"build-finished","success":true}"#,
            "\nnot json\n"
        );
        assert_eq!(binaries(lines), [PathBuf::from("/t/release/solution-4")]);
    }

    #[test]
    fn the_job_carries_the_time_limit() {
        let text = job(Path::new("target/release/x"), 2, Duration::from_secs(7)).display();
        assert!(text.starts_with("mpirun -n 2 --timeout 7 "), "{text}");
        assert!(text.ends_with(" target/release/x"), "{text}");
    }
}
