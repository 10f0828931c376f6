//! Python's `multiprocessing`: runs the experiments of `python/mpbench.py` (written into the
//! output directory at run time) and reads the JSON each prints.

use std::{
    path::{Path, PathBuf},
    process::Command,
    time::Duration,
};

use serde::{Deserialize, Serialize, de::DeserializeOwned};

use crate::{
    external::{self, which},
    memory::MemoryPeak,
    sweep::RawPoint,
};

/// The script, written next to the report so that it runs from anywhere.
pub const SCRIPT: &str = include_str!("../python/mpbench.py");

/// How to get numpy for `interpreter`, for the report.
pub fn numpy_hint(interpreter: &str) -> String {
    format!("install it with `{interpreter} -m pip install numpy`")
}

/// How to get Python, for the report.
pub const PYTHON_HINT: &str = "install Python 3 (Debian/Ubuntu: `apt-get install -y python3 python3-pip`), then `python3 -m pip install numpy`";

/// What `mpbench.py info` prints.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Info {
    /// `sys.version`, first word.
    pub python: String,
    /// `cpython`, `pypy`...
    pub implementation: String,
    /// numpy's version, if numpy imports.
    pub numpy: Option<String>,
    /// mpi4py's version, if mpi4py imports.
    pub mpi4py: Option<String>,
}

/// What `mpbench.py startup` prints: seconds per repetition.
#[derive(Debug, Deserialize)]
pub struct Startup {
    /// `Pool(4)` until a first one-item `map` returned.
    pub pool_start_s: Vec<f64>,
    /// `Process` + `Queue`: start, a value back, join.
    pub process_start_s: Vec<f64>,
}

/// What `mpbench.py map` prints.
#[derive(Debug, Deserialize)]
pub struct MapTimes {
    /// Tasks per map.
    pub n_tasks: u64,
    /// The chunk size used (Python's default if none was asked for).
    pub chunksize: u64,
    /// Seconds per map.
    pub seconds: Vec<f64>,
}

/// What `mpbench.py pingpong` prints.
#[derive(Debug, Deserialize)]
pub struct PingPong {
    /// One per size.
    pub points: Vec<RawPoint>,
}

/// What `mpbench.py gather` prints: seconds per gather.
#[derive(Debug, Deserialize)]
pub struct Gather {
    /// `pool.map` returning numpy arrays.
    pub pool_s: Vec<f64>,
    /// 4 processes, `send_bytes(array)` / `numpy.frombuffer(recv_bytes())`.
    pub pipes_s: Vec<f64>,
}

/// A Python interpreter with the script in place.
#[derive(Debug)]
pub struct Python {
    /// The interpreter.
    pub interpreter: PathBuf,
    /// Where the script was written.
    pub script: PathBuf,
}

impl Python {
    /// Finds `interpreter` and writes the script into `dir`; an error says how to install.
    pub fn set_up(interpreter: &str, dir: &Path) -> Result<Python, String> {
        let interpreter = which(interpreter)
            .ok_or_else(|| format!("`{interpreter}` not found on PATH; {PYTHON_HINT}"))?;
        std::fs::create_dir_all(dir)
            .map_err(|error| format!("creating {}: {error}", dir.display()))?;
        let script = dir.join("mpbench.py");
        std::fs::write(&script, SCRIPT)
            .map_err(|error| format!("writing {}: {error}", script.display()))?;
        Ok(Python { interpreter, script })
    }

    /// Runs `mpbench.py command settings` and parses what it prints.
    pub fn run<S: Serialize, T: DeserializeOwned>(
        &self,
        command: &str,
        settings: &S,
        limit: Duration,
    ) -> Result<T, String> {
        let settings = serde_json::to_string(settings).map_err(|error| error.to_string())?;
        let mut python = Command::new(&self.interpreter);
        python.arg(&self.script).arg(command).arg(settings);
        let finished = external::run(python, limit)?;
        parse_last_json(&finished.stdout).map_err(|error| format!("python `{command}`: {error}"))
    }

    /// The interpreter's and its packages' versions.
    pub fn info(&self) -> Result<Info, String> {
        self.run("info", &serde_json::json!({}), Duration::from_secs(60))
    }

    /// Peak memory of one large message through `Pipe(duplex=False)`.
    pub fn memory(&self, n_bytes: u64) -> Result<MemoryPeak, String> {
        self.run("memory", &serde_json::json!({ "bytes": n_bytes }), Duration::from_secs(120))
    }
}

/// Parses the last line of `stdout` that starts a JSON object.
pub fn parse_last_json<T: DeserializeOwned>(stdout: &str) -> Result<T, String> {
    let line =
        stdout.lines().rev().find(|line| line.trim_start().starts_with('{')).ok_or_else(|| {
            format!("no JSON in the output: {:?}", stdout.chars().take(200).collect::<String>())
        })?;
    serde_json::from_str(line).map_err(|error| format!("unexpected JSON ({error})"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_each_commands_output() {
        let info: Info = parse_last_json(
            "{\"python\": \"3.11.7\", \"implementation\": \"cpython\", \"numpy\": null, \"mpi4py\": \"4.1.2\"}\n",
        )
        .unwrap();
        assert_eq!((info.numpy, info.mpi4py.as_deref()), (None, Some("4.1.2")));

        let map: MapTimes =
            parse_last_json("{\"n_tasks\": 100, \"chunksize\": 7, \"seconds\": [0.5, 0.25]}")
                .unwrap();
        assert_eq!((map.n_tasks, map.chunksize, map.seconds), (100, 7, vec![0.5, 0.25]));

        let gather: Gather = parse_last_json("{\"pool_s\": [0.05], \"pipes_s\": [0.03]}").unwrap();
        assert_eq!((gather.pool_s, gather.pipes_s), (vec![0.05], vec![0.03]));

        let memory: MemoryPeak = parse_last_json(
            "{\"message_bytes\": 8, \"sender\": {\"baseline_bytes\": 1, \"peak_bytes\": 9}, \
             \"receiver\": {\"baseline_bytes\": 2, \"peak_bytes\": 20}}",
        )
        .unwrap();
        assert_eq!((memory.sender.added_bytes(), memory.receiver.added_bytes()), (8, 18));
    }

    #[test]
    fn noise_before_the_json_is_skipped_and_missing_json_is_an_error() {
        let ping: PingPong = parse_last_json(
            "a warning\n{\"points\": [{\"bytes\": 8, \"batch\": 2, \"one_way_s\": [1e-5]}]}\n",
        )
        .unwrap();
        assert_eq!(ping.points[0].bytes, 8);
        assert!(parse_last_json::<Info>("Traceback...\n").unwrap_err().contains("no JSON"));
        assert!(
            parse_last_json::<Info>("{\"python\": 3}").unwrap_err().contains("unexpected JSON")
        );
    }

    #[test]
    fn the_script_has_every_command_the_binary_runs() {
        for command in ["info", "startup", "map", "pingpong", "gather", "memory", "mpi4py_pingpong"]
        {
            assert!(SCRIPT.contains(&format!("\"{command}\": cmd_{command}")), "{command}");
        }
    }
}
