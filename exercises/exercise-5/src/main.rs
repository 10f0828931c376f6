//! Exercise 5: ping-pong latency and bandwidth, measured carefully and plotted.
//!
//! Given code: measures with your functions from `src/lib.rs`, then prints the table, writes
//! the CSVs and draws the two plots.
//!
//! `--transport ipc-channel` measures ipc-channel's bytes channel as well (or instead): your
//! `ping_pong` takes an `mp` pipe end, so the ipc-channel round trips are timed here, by
//! [`ipc_ping_pong`], with exactly the steps your `ping_pong` follows; your `summarize`,
//! `one_way`, `bandwidth` and `fit` then turn both transports' samples into the table, the
//! model and the plots.
//!
//! Under `mpirun -n 2` (built with `--features mpi`), the same program measures MPI as well:
//! your `ping_pong` on rank 0 against your `echo` on rank 1, unchanged, over
//! `Connection::from_peer(session.peer(other))`: once over the job's own path (shared memory
//! on one machine) and once over TCP, in a second, nested `mpirun` that rank 0 starts; beside
//! the `mp` pipe of last week, on the same table and plots.

use std::{
    ffi::OsString,
    path::PathBuf,
    process::{ExitCode, Stdio},
    time::{Duration, Instant},
};

use bandwidth::{Model, Summary, bandwidth, echo, fit, given, one_way, ping_pong, summarize};
use clap::{Parser, ValueEnum, value_parser};
use course::Table;
use ipc_pingpong::{Kind, Peer};
use mp::{
    Communicator, Connection, Process,
    plot::{Axis, Chart, Series},
    units::{Bytes, Unit},
};
use mp_mpi::{Mpirun, Session};
use serde::{Deserialize, Serialize};

/// Never fewer timed round trips per size than this (unless --reps asks for fewer).
const MIN_REPS: u32 = 5;
/// The largest message: the two processes hold about four copies of it at once.
const MAX_SIZE: Bytes = Bytes(1 << 30);

/// Ping-pong between two processes over a pipe: round-trip time, one-way time and bandwidth
/// against the message size, with the fitted model T(s) = latency + s / bandwidth.
///
/// Sizes are written like 1000, 1kB, 4KiB, 1.5MiB or 8Mb: 1 kB = 1000 B, 1 KiB = 1024 B,
/// 1 MB = 10^6 B, 1 MiB = 2^20 B, 1 Mb = 10^6 bits.
#[derive(Parser, Debug)]
#[command(about)]
struct Args {
    /// Smallest message size (at least 1 B: sizes go on a log scale).
    #[arg(long, default_value = "1B")]
    min_size: Bytes,

    /// Largest message size (at most 1 GiB).
    #[arg(long, default_value = "64MiB")]
    max_size: Bytes,

    /// Log-spaced sizes per decade (per factor 10) between the two ends.
    #[arg(long, default_value_t = 4, value_parser = value_parser!(u32).range(1..=50))]
    per_decade: u32,

    /// Measure the powers of two between the two ends instead of --per-decade sizes.
    #[arg(long)]
    powers_of_two: bool,

    /// Timed round trips per size (large sizes get fewer, see --budget).
    #[arg(long, default_value_t = 100, value_parser = value_parser!(u32).range(1..=1_000_000))]
    reps: u32,

    /// Untimed warm-up round trips before the timed ones, at every size (large sizes get
    /// fewer, see --budget, but at least one).
    #[arg(long, default_value_t = 3, value_parser = value_parser!(u32).range(0..=10_000))]
    warmup: u32,

    /// Which transports to measure, comma-separated: `mp` (an mp::pipe, timed by your
    /// ping_pong) and `ipc-channel` (ipc-channel's bytes channel to a child process, timed by
    /// the given ipc_ping_pong with the same steps); under `mpirun -n 2` also `mpi-shm` and
    /// `mpi-tcp` (your ping_pong and echo on ranks 0 and 1). All go into the same table, CSVs
    /// and plots. Default: `mp`; under `mpirun -n 2`: `mp,mpi-shm,mpi-tcp`.
    #[arg(long, value_enum, value_delimiter = ',')]
    transport: Vec<Transport>,

    /// Bytes each size may send, to keep large sizes from taking minutes: a size s gets
    /// budget / s timed round trips, within [5, --reps], and as many warm-up round trips,
    /// within [1, --warmup].
    #[arg(long, default_value = "64MiB")]
    budget: Bytes,

    /// CSV file with one row of statistics per size.
    #[arg(long, default_value = "target/course/exercise-5/bandwidth.csv",
          value_parser = course::writable_path)]
    csv: PathBuf,

    /// CSV file with every timed round trip (size, repetition, time in ns).
    #[arg(long, default_value = "target/course/exercise-5/samples.csv",
          value_parser = course::writable_path)]
    samples_csv: PathBuf,

    /// SVG plot of the one-way time against the size (log-log, with the model).
    #[arg(long, default_value = "target/course/exercise-5/time.svg",
          value_parser = course::writable_path)]
    time_plot: PathBuf,

    /// SVG plot of the bandwidth against the size (log-log, with the model).
    #[arg(long, default_value = "target/course/exercise-5/bandwidth.svg",
          value_parser = course::writable_path)]
    bandwidth_plot: PathBuf,

    /// Internal: this job is the nested TCP job that rank 0 of `mpirun -n 2` starts.
    #[arg(long, value_enum, hide = true)]
    mpi_transport_run: Option<NestedRun>,

    /// Internal: where the nested job's rank 0 writes its round trips (CSV).
    #[arg(long, hide = true)]
    samples_out: Option<PathBuf>,
}

/// What a nested job measures (`--mpi-transport-run`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
enum NestedRun {
    /// Open MPI over TCP (`--mca btl self,tcp`).
    Tcp,
}

/// How the two processes talk.
#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
enum Transport {
    /// `mp::pipe`, `send_bytes` / `recv_bytes`: your `echo` and `ping_pong`.
    Mp,
    /// ipc-channel's `bytes_channel`, `IpcBytesSender::send` / `IpcBytesReceiver::recv`,
    /// to a copy of this program started as the echoing child.
    IpcChannel,
    /// Under `mpirun -n 2`: MPI between ranks 0 and 1 over the job's own path (shared memory
    /// on one machine): your `ping_pong` on rank 0, your `echo` on rank 1.
    MpiShm,
    /// Under `mpirun -n 2`: the same over TCP (`--mca btl self,tcp`, the path between
    /// machines), in a nested `mpirun -n 2` that rank 0 starts on its machine.
    MpiTcp,
}

/// What the labels say about MPI.
#[derive(Debug, Default)]
struct MpiInfo {
    /// "Open MPI 4.1" (empty when unknown).
    library: String,
    /// Whether ranks 0 and 1 run on one machine (same processor name).
    same_machine: bool,
}

impl Transport {
    /// The name in the CSV's `transport` column, as on the command line.
    fn name(self) -> &'static str {
        match self {
            Transport::Mp => "mp",
            Transport::IpcChannel => "ipc-channel",
            Transport::MpiShm => "mpi-shm",
            Transport::MpiTcp => "mpi-tcp",
        }
    }

    /// The name on the plots and the terminal.
    fn label(self, mpi: &MpiInfo) -> String {
        let library =
            if mpi.library.is_empty() { String::new() } else { format!("{}, ", mpi.library) };
        match self {
            Transport::Mp => "mp pipe".into(),
            Transport::IpcChannel => format!("ipc-channel {}", ipc_pingpong::IPC_CHANNEL_VERSION),
            Transport::MpiShm if mpi.same_machine => format!("MPI ({library}shared memory)"),
            Transport::MpiShm => format!("MPI ({library}between machines)"),
            Transport::MpiTcp => "MPI (TCP)".into(),
        }
    }

    /// Whether it runs between two MPI ranks.
    fn needs_mpi(self) -> bool {
        matches!(self, Transport::MpiShm | Transport::MpiTcp)
    }
}

/// What rank 0 tells rank 1, which otherwise sleeps (a receive that sleeps between looks):
/// Open MPI's blocking receive spins, and would take a core from the measurement.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
enum Order {
    /// Run your `echo` until rank 0 hangs up, then send back its count.
    Echo,
    /// Everything is measured: return.
    Done,
}

/// Everything measured over one transport, and the model fitted to it.
struct Run {
    transport: Transport,
    /// The transport's name on the plots and the terminal.
    label: String,
    measured: Vec<Measured>,
    model: Result<Model, bandwidth::FitError>,
}

/// What was measured at one size.
struct Measured {
    size: Bytes,
    samples: Vec<Duration>,
    summary: Summary,
}

fn main() -> ExitCode {
    // A copy of this program started as ipc-channel's echoing child: it answers and exits.
    if let Some(code) = ipc_pingpong::serve_if_child() {
        return code;
    }
    course::run(run)
}

fn run(args: Args) -> course::Result {
    match course::with_mpi_session(|session| run_on_mpi(session, &args)) {
        Some(result) => result,
        None => run_here(&args),
    }
}

/// Without MPI: this process and a child process of its own.
fn run_here(args: &Args) -> course::Result {
    if args.mpi_transport_run.is_some() || args.samples_out.is_some() {
        return Err(course::usage(
            "--mpi-transport-run and --samples-out are internal: rank 0 of `mpirun -n 2` passes \
             them to the nested job it starts",
        ));
    }
    let transports = chosen(args, &[Transport::Mp]);
    if let Some(transport) = transports.iter().find(|transport| transport.needs_mpi()) {
        return Err(course::usage(format!(
            "--transport {} measures between two MPI ranks: build with MPI and start it with \
             `mpirun -n 2` (`cargo xtask mpirun -p {} -n 2`)",
            transport.name(),
            env!("CARGO_PKG_NAME"),
        )));
    }
    let sizes = sizes(args)?;
    let mpi = MpiInfo::default();
    let over: Vec<String> = transports.iter().map(|t| t.label(&mpi)).collect();
    println!(
        "Ping-pong over {} between this process and one child process: {}",
        over.join(", then over "),
        plan(args, &sizes)
    );
    let mut runs = Vec::new();
    for transport in transports {
        let measured = match transport {
            Transport::Mp => measure(args, &sizes)?,
            Transport::IpcChannel => measure_ipc(args, &sizes)?,
            Transport::MpiShm | Transport::MpiTcp => unreachable!("refused above"),
        };
        runs.push(fitted(transport, transport.label(&mpi), measured));
    }
    report(args, &runs)
}

/// The transports asked for (`--transport`), each once, or `default`.
fn chosen(args: &Args, default: &[Transport]) -> Vec<Transport> {
    let mut transports: Vec<Transport> = Vec::new();
    for &transport in if args.transport.is_empty() { default } else { &args.transport } {
        if !transports.contains(&transport) {
            transports.push(transport);
        }
    }
    transports
}

/// The sizes and repetitions, for the first line.
fn plan(args: &Args, sizes: &[u64]) -> String {
    let plan = format!(
        "{} size{} from {} to {}; at each size {} warm-up and {} timed round trips, fewer above \
         {} (--budget {}).",
        sizes.len(),
        if sizes.len() == 1 { "" } else { "s" },
        args.min_size,
        args.max_size,
        args.warmup,
        args.reps,
        Bytes(args.budget.0 / u64::from(args.reps)),
        args.budget,
    );
    if cfg!(debug_assertions) {
        format!("{plan}\nNote: figures from a debug build; add --release.")
    } else {
        plan
    }
}

/// A transport's measurements and the model your `fit` finds in them.
fn fitted(transport: Transport, label: String, measured: Vec<Measured>) -> Run {
    let points: Vec<(f64, f64)> = measured
        .iter()
        .map(|m| (m.size.0 as f64, one_way(m.summary.median).as_secs_f64()))
        .collect();
    let model = fit(&points);
    Run { transport, label, measured, model }
}

/// The table, the latencies and bandwidths, the CSVs and the plots.
fn report(args: &Args, runs: &[Run]) -> course::Result {
    let (table, csv) = tables(runs)?;
    println!("\n{table}");
    println!(
        "Units: 1 MB = 10^6 B, 1 MiB = 2^20 B = 1.048576 MB, 1 Gb = 10^9 bits = 125 MB. \
         RTT = round trip, timed from before the send to after the reply arrived; \
         one-way = median RTT / 2; bandwidth = size / one-way (= 2 x size / RTT).\n"
    );
    for run in runs {
        if runs.len() > 1 {
            println!("{}:", run.label);
        }
        report_latency_and_bandwidth(&run.measured[0], &run.model);
    }
    if let [first, others @ ..] = runs {
        for other in others {
            compare(first, other);
        }
    }
    if runs.len() > 1 {
        println!("\n{}", models_table(runs));
    }
    if runs.iter().any(|run| run.transport.needs_mpi()) {
        println!(
            "Notes on MPI: Open MPI sends a message up to its eager limit at once (4 KiB in \
             shared memory, btl vader; 64 KiB over TCP: the defaults here) and a larger one \
             only once the receiver is ready (rendezvous): look for a step there. mpi-tcp runs \
             in a second job of two ranks on rank 0's machine, through the loopback interface: \
             TCP's path between machines, without the network."
        );
    }

    csv.write_csv(&args.csv)?;
    samples_table(runs).write_csv(&args.samples_csv)?;
    time_chart(runs).write_svg(&args.time_plot)?;
    bandwidth_chart(runs)?.write_svg(&args.bandwidth_plot)?;
    println!("\nWrote {} (statistics per size)", args.csv.display());
    println!("Wrote {} (every timed round trip)", args.samples_csv.display());
    println!("Wrote {} (one-way time against size)", args.time_plot.display());
    println!("Wrote {} (bandwidth against size)", args.bandwidth_plot.display());
    Ok(())
}

/// One row per transport: its two latencies, its asymptotic bandwidth and n½.
fn models_table(runs: &[Run]) -> Table {
    let mut table = Table::new(&[
        "transport",
        "latency, smallest message [us]",
        "fitted latency [us]",
        "asymptotic bandwidth [GB/s]",
        "asymptotic bandwidth [Gb/s]",
        "half of it at",
    ]);
    for run in runs {
        let smallest = one_way(run.measured[0].summary.median).as_secs_f64() * 1e6;
        let mut row = vec![run.label.clone(), readable(smallest)];
        match &run.model {
            Ok(model) => {
                row.push(readable(model.latency_seconds * 1e6));
                row.push(readable(model.bytes_per_second / Unit::GB.bytes_per_unit()));
                row.push(readable(model.bytes_per_second / Unit::Gb.bytes_per_unit()));
                row.push(if model.latency_seconds > 0.0 {
                    Bytes(model.half_bandwidth_size().round() as u64).to_string()
                } else {
                    String::new()
                });
            }
            Err(_) => {
                row.extend(["no model".to_string(), String::new(), String::new(), String::new()])
            }
        }
        table.row(row);
    }
    table
}

/// Under `mpirun`: two ranks, rank 0 measures and reports, rank 1 echoes when told to.
fn run_on_mpi(session: &Session, args: &Args) -> course::Result {
    if session.size() != 2 {
        return Err(course::usage(format!(
            "exercise 5 measures between two ranks: use `-n 2` (this job has {} ranks)",
            session.size()
        )));
    }
    let sizes = sizes(args)?;
    let world = session.world()?;
    if args.mpi_transport_run.is_some() {
        return nested_job(session, &world, args, &sizes);
    }
    if args.samples_out.is_some() {
        return Err(course::usage("--samples-out is internal: it goes with --mpi-transport-run"));
    }
    if session.rank() == 1 {
        return serve(session, &world);
    }
    lead(session, &world, args, &sizes)
}

/// Rank 1: says where it runs, then does what rank 0 orders, sleeping in between.
fn serve(session: &Session, world: &mp::Comm) -> course::Result {
    world.send(0, &session.processor_name()?)?;
    loop {
        match wait_for_order(world)? {
            Order::Echo => {
                // Your echo, unchanged: it returns when rank 0 hangs up (Session::hang_up).
                let echoed = echo(Connection::<()>::from_peer(session.peer(0)?));
                world.send(0, &echoed)?;
            }
            Order::Done => return Ok(()),
        }
    }
}

/// The next order from rank 0, looked for with pauses (up to 1 ms) in between: a blocking
/// MPI receive would spin on a core while rank 0 measures something else.
fn wait_for_order(world: &mp::Comm) -> mp::Result<Order> {
    loop {
        match world.recv_timeout::<Order>(0, Duration::from_secs(1)) {
            Err(error) if error.is_timeout() => continue,
            other => return other,
        }
    }
}

/// Rank 0: measures every transport (rank 1 echoes for `mpi-shm` and sleeps otherwise), then
/// reports. A nested job that fails is one line; the others are still drawn, and the program
/// then ends with an error (exit code 1).
fn lead(session: &Session, world: &mp::Comm, args: &Args, sizes: &[u64]) -> course::Result {
    let other_machine: String = world.recv(1)?;
    let machine = session.processor_name()?;
    let mpi = MpiInfo {
        library: short_library_name(&session.library_version().unwrap_or_default()),
        same_machine: machine == other_machine,
    };
    let transports = chosen(args, &[Transport::Mp, Transport::MpiShm, Transport::MpiTcp]);
    let over: Vec<String> = transports.iter().map(|t| t.label(&mpi)).collect();
    println!(
        "Ping-pong over {} between rank 0 (on {machine}) and rank 1 (on {other_machine}) of \
         this MPI job (the mp pipe: between rank 0 and a child process of its own): {}",
        over.join(", then over "),
        plan(args, sizes)
    );
    if !mpi.same_machine {
        println!(
            "Note: ranks 0 and 1 run on different machines, so the mpi-shm curve is the network \
             between them (Open MPI's best path there), not shared memory."
        );
    }
    let mut runs = Vec::new();
    let mut failed = Vec::new();
    for transport in transports {
        let measured = match transport {
            // On every CPU: mpirun bound rank 0 to one core, which the child would share.
            Transport::Mp => mp_mpi::with_every_cpu(|| measure(args, sizes))?,
            Transport::IpcChannel => mp_mpi::with_every_cpu(|| measure_ipc(args, sizes))?,
            Transport::MpiShm => {
                world.send(1, &Order::Echo)?;
                measure_mpi(session, world, args, sizes, "MPI ping-pong")?
            }
            Transport::MpiTcp => match measure_nested(args, sizes) {
                Ok(measured) => measured,
                Err(line) => {
                    eprintln!("{line}");
                    failed.push(transport.label(&mpi));
                    continue;
                }
            },
        };
        runs.push(fitted(transport, transport.label(&mpi), measured));
    }
    let reported = if runs.is_empty() { Ok(()) } else { report(args, &runs) };
    world.send(1, &Order::Done)?;
    reported?;
    if !failed.is_empty() {
        return Err(format!(
            "{} could not be measured (the line above says why); the table and the plots show \
             the other transports",
            failed.join(" and ")
        )
        .into());
    }
    Ok(())
}

/// "Open MPI 4.1" from "Open MPI v4.1.4, package: ..."; "MPICH 4.0" from "MPICH Version:
/// 4.0.2 ..."; the text before the first comma otherwise.
fn short_library_name(version: &str) -> String {
    let head = version.split(',').next().unwrap_or_default().trim();
    let words: Vec<&str> = head.split_whitespace().collect();
    let is_version = |word: &str| {
        let word = word.trim_start_matches('v');
        word.starts_with(|c: char| c.is_ascii_digit()) && word.contains('.')
    };
    let Some(at) = words.iter().position(|word| is_version(word)) else {
        return head.to_string();
    };
    let number = words[at].trim_start_matches('v');
    let major_minor: Vec<&str> = number.split('.').take(2).collect();
    let name: Vec<&str> = words[..at].iter().copied().filter(|w| !w.ends_with(':')).collect();
    format!("{} {}", name.join(" "), major_minor.join(".")).trim().to_string()
}

/// In a nested job (`--mpi-transport-run`): rank 0 runs your `ping_pong` against your `echo`
/// on rank 1 and writes the round trips to `--samples-out`; nothing is printed.
fn nested_job(session: &Session, world: &mp::Comm, args: &Args, sizes: &[u64]) -> course::Result {
    let Some(out) = &args.samples_out else {
        return Err(course::usage("--mpi-transport-run needs --samples-out FILE"));
    };
    if session.rank() == 1 {
        let echoed = echo(Connection::<()>::from_peer(session.peer(0)?));
        world.send(0, &echoed)?;
        return Ok(());
    }
    let measured = measure_mpi(session, world, args, sizes, "MPI ping-pong over TCP")?;
    nested_samples(&measured).write_csv(out)
}

/// The header of the samples a nested job hands back.
const NESTED_HEADERS: [&str; 2] = ["size [B]", "round trip [ns]"];

/// Every round trip of `measured`, one per row, for the job that started this one.
fn nested_samples(measured: &[Measured]) -> Table {
    let mut table = Table::new(&NESTED_HEADERS);
    for m in measured {
        for sample in &m.samples {
            table.row([m.size.0.to_string(), sample.as_nanos().to_string()]);
        }
    }
    table
}

/// The round trips a nested job wrote ([`nested_samples`]), by size, in the order written.
fn parse_nested_samples(csv: &str) -> Result<Vec<(u64, Vec<Duration>)>, String> {
    let mut lines = csv.lines();
    let header = lines.next().unwrap_or_default();
    if header != NESTED_HEADERS.join(",") {
        return Err(format!("the samples start with {header:?}, not the expected header"));
    }
    let mut by_size: Vec<(u64, Vec<Duration>)> = Vec::new();
    for (number, line) in lines.enumerate().filter(|(_, line)| !line.trim().is_empty()) {
        let bad =
            || format!("line {} of the samples is not `size,nanoseconds`: {line:?}", number + 2);
        let (size, nanos) = line.split_once(',').ok_or_else(bad)?;
        let size: u64 = size.trim().parse().map_err(|_| bad())?;
        let nanos: u64 = nanos.trim().parse().map_err(|_| bad())?;
        let sample = Duration::from_nanos(nanos);
        if let Some((last, samples)) = by_size.last_mut()
            && *last == size
        {
            samples.push(sample);
        } else if by_size.iter().any(|(seen, _)| *seen == size) {
            return Err(format!("the samples of {size} B are not together (line {})", number + 2));
        } else {
            by_size.push((size, vec![sample]));
        }
    }
    if by_size.is_empty() {
        return Err("the samples are empty".into());
    }
    Ok(by_size)
}

/// A file only this user can read, removed when dropped.
struct PrivateFile(PathBuf);

impl PrivateFile {
    fn new(what: &str) -> std::io::Result<PrivateFile> {
        use std::os::unix::fs::OpenOptionsExt;
        let stamp = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap_or_default()
            .as_nanos();
        let path = std::env::temp_dir().join(format!(
            "{}-{what}-{}-{stamp}.csv",
            env!("CARGO_PKG_NAME"),
            std::process::id()
        ));
        std::fs::OpenOptions::new().write(true).create_new(true).mode(0o600).open(&path)?;
        Ok(PrivateFile(path))
    }
}

impl Drop for PrivateFile {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.0);
    }
}

/// Rank 0: the TCP measurement, in a nested `mpirun -n 2 --mca btl self,tcp` of this program
/// (one MPI job cannot change its transport), started without this job's launcher variables;
/// its rank 0 writes the round trips to a private file, read back here. `Err` is one line.
fn measure_nested(args: &Args, sizes: &[u64]) -> Result<Vec<Measured>, String> {
    let failed = |why: String| format!("MPI (TCP) was not measured: {why}");
    let program =
        std::env::current_exe().map_err(|e| failed(format!("no path to this program: {e}")))?;
    let samples = PrivateFile::new("tcp-samples")
        .map_err(|e| failed(format!("no temporary file for the samples: {e}")))?;
    let forwarded: Vec<OsString> = std::env::args_os().skip(1).collect();
    // On every CPU: mpirun bound rank 0 to one core, and the nested mpirun, which inherits
    // that, would then put both of its ranks there.
    let output = mp_mpi::with_every_cpu(|| {
        let job = Mpirun::new(&program, 2)
            .timeout(time_limit(args, sizes))
            .isolated_without_remote_shell()
            .mca("btl", "self,tcp")
            .args(&forwarded)
            .args(["--mpi-transport-run", "tcp", "--samples-out"])
            .arg(&samples.0)
            .outside_this_job();
        println!(
            "MPI over TCP: rank 0 starts a nested job (rank 1 sleeps meanwhile):\n  {}",
            job.display()
        );
        job.command().stdin(Stdio::null()).output()
    })
    .map_err(|e| failed(format!("`mpirun` could not start: {e}")))?;
    if !output.status.success() {
        let status = output.status.code().map_or_else(
            || "was killed by a signal".to_string(),
            |code| format!("exited with code {code}"),
        );
        return Err(failed(format!(
            "the nested job {status}: {}",
            tail(&String::from_utf8_lossy(&output.stderr))
        )));
    }
    let text = std::fs::read_to_string(&samples.0)
        .map_err(|e| failed(format!("its samples could not be read: {e}")))?;
    let by_size = parse_nested_samples(&text).map_err(failed)?;
    let got: Vec<u64> = by_size.iter().map(|(size, _)| *size).collect();
    if got != sizes {
        return Err(failed(format!("the nested job measured the sizes {got:?}, not {sizes:?}")));
    }
    by_size
        .into_iter()
        .map(|(size, samples)| {
            let summary = summarize(&samples)
                .ok_or_else(|| failed("summarize() returned None for a non-empty list".into()))?;
            Ok(Measured { size: Bytes(size), samples, summary })
        })
        .collect()
}

/// The last lines of a job's standard error, on one line.
fn tail(stderr: &str) -> String {
    let lines: Vec<&str> = stderr
        .lines()
        .map(str::trim)
        .filter(|line| !line.is_empty() && !line.chars().all(|c| c == '-'))
        .collect();
    if lines.is_empty() {
        return "(nothing on standard error)".into();
    }
    lines[lines.len().saturating_sub(3)..].join(" | ")
}

/// A time limit for a ping-pong at every size, well above what the sizes need: twice the
/// bytes at 20 MB/s (a slow debug build on a busy machine) plus a minute.
fn time_limit(args: &Args, sizes: &[u64]) -> Duration {
    let bytes: u64 = sizes
        .iter()
        .map(|&size| size * u64::from(warmup_for_size(args, size) + reps_for_size(args, size)))
        .sum();
    Duration::from_secs(60 + 2 * bytes / 20_000_000)
}

/// The sizes to measure, after checking the range.
fn sizes(args: &Args) -> course::Result<Vec<u64>> {
    let (min, max) = (args.min_size, args.max_size);
    if min.0 == 0 {
        return Err(course::usage(
            "--min-size must be at least 1 B: the sizes go on a log scale, which has no 0",
        ));
    }
    if min > max {
        return Err(course::usage(format!(
            "the size range is empty: --min-size {min} is larger than --max-size {max}"
        )));
    }
    if max > MAX_SIZE {
        return Err(course::usage(format!(
            "--max-size {max} is too large: the two processes would hold about four copies of \
             it in memory; use at most {MAX_SIZE}"
        )));
    }
    Ok(if args.powers_of_two {
        given::powers_of_two(min.0, max.0)
    } else {
        given::log_sizes(min.0, max.0, args.per_decade)
    })
}

/// Round trips within the budget for a message of `size` bytes.
fn within_budget(args: &Args, size: u64) -> u32 {
    u32::try_from(args.budget.0 / size.max(1)).unwrap_or(u32::MAX)
}

/// Timed round trips for a message of `size` bytes: budget / size, within [5, --reps].
fn reps_for_size(args: &Args, size: u64) -> u32 {
    within_budget(args, size).min(args.reps).max(MIN_REPS.min(args.reps))
}

/// Warm-up round trips for a message of `size` bytes: budget / size, within [1, --warmup].
fn warmup_for_size(args: &Args, size: u64) -> u32 {
    within_budget(args, size).min(args.warmup).max(1.min(args.warmup))
}

/// Starts the echo process and runs the ping-pong at every size, with a progress bar.
fn measure(args: &Args, sizes: &[u64]) -> course::Result<Vec<Measured>> {
    let (here, there) = mp::pipe::<()>()?;
    let mut child = Process::spawn(echo, there)?;
    let swept =
        sweep(args, sizes, "ping-pong", |size, warmup, reps| ping_pong(&here, size, warmup, reps));
    drop(here); // echo() sees the end of the pipe and returns
    let (measured, sent) = match swept {
        Ok(swept) => swept,
        Err(error) => {
            // A failed echo explains a broken pipe better than the pipe does.
            child.join_timeout(Duration::from_secs(5))?;
            return Err(error);
        }
    };
    let echoed = child.join_timeout(Duration::from_secs(10))?;
    check_echoed(echoed, sent)?;
    Ok(measured)
}

/// Rank 0 of an MPI job: your `ping_pong` at every size against your `echo` on rank 1, over
/// an MPI connection (`Connection::from_peer`); then the hang-up that makes `echo` return (an
/// MPI rank has no end of a pipe to drop), and its count, which rank 1 sends back.
fn measure_mpi(
    session: &Session,
    world: &mp::Comm,
    args: &Args,
    sizes: &[u64],
    what: &str,
) -> course::Result<Vec<Measured>> {
    let here = Connection::<()>::from_peer(session.peer(1)?);
    let (measured, sent) =
        sweep(args, sizes, what, |size, warmup, reps| ping_pong(&here, size, warmup, reps))?;
    session.hang_up(1)?; // echo() on rank 1 sees Disconnected, as at the end of a pipe
    let echoed: u64 = world.recv(1)?;
    check_echoed(echoed, sent)?;
    Ok(measured)
}

/// Runs `timed(size, warmup, reps)` (your `ping_pong`) at every size, with a progress bar;
/// returns what was measured and how many messages were sent.
fn sweep<E: Into<Box<dyn std::error::Error + Send + Sync>>>(
    args: &Args,
    sizes: &[u64],
    what: &str,
    mut timed: impl FnMut(usize, u32, u32) -> Result<Vec<Duration>, E>,
) -> course::Result<(Vec<Measured>, u64)> {
    let bar = course::progress(sizes.len() as u64, what);
    let mut measured = Vec::with_capacity(sizes.len());
    let mut sent = 0u64;
    for &size in sizes {
        let (warmup, reps) = (warmup_for_size(args, size), reps_for_size(args, size));
        bar.set_message(format!("{what}, {warmup} + {reps} x {}", Bytes(size)));
        let samples = match timed(size as usize, warmup, reps) {
            Ok(samples) => samples,
            Err(error) => {
                bar.finish_and_clear();
                return Err(error.into());
            }
        };
        sent += u64::from(warmup) + u64::from(reps);
        if samples.len() != reps as usize {
            bar.finish_and_clear();
            return Err(format!(
                "ping_pong() returned {} samples for {} timed round trips of {} B; \
                 it must return one round-trip time per timed repetition",
                samples.len(),
                reps,
                size
            )
            .into());
        }
        let summary = summarize(&samples)
            .ok_or("summarize() returned None for a non-empty list of samples")?;
        measured.push(Measured { size: Bytes(size), samples, summary });
        bar.inc(1);
    }
    bar.finish_and_clear();
    Ok((measured, sent))
}

/// `echo()`'s count against the messages sent.
fn check_echoed(echoed: u64, sent: u64) -> course::Result {
    if echoed != sent {
        return Err(format!(
            "echo() says it echoed {echoed} messages but {sent} were sent \
             (warm-up and timed round trips); count every message you send back"
        )
        .into());
    }
    Ok(())
}

/// The ipc-channel ping-pong, timed with the steps your `ping_pong` follows: the message
/// built once, `warmup` untimed round trips, then `reps` timed ones (`Instant::now()` right
/// before the send, `elapsed()` right after the reply is back), each reply checked after the
/// timer. `Peer::round_trip` is `IpcBytesSender::send(&message)` then
/// `IpcBytesReceiver::recv()`.
fn ipc_ping_pong(
    peer: &Peer,
    size: usize,
    warmup: u32,
    reps: u32,
) -> course::Result<Vec<Duration>> {
    let message = given::message(size);
    let mut reply = Vec::new();
    for _ in 0..warmup {
        peer.round_trip(&message, &mut reply)?;
        given::check_reply(&message, &reply)?;
    }
    let mut samples = Vec::with_capacity(reps as usize);
    for _ in 0..reps {
        let start = Instant::now();
        peer.round_trip(&message, &mut reply)?;
        samples.push(start.elapsed());
        given::check_reply(&message, &reply)?;
    }
    Ok(samples)
}

/// Starts a copy of this program as ipc-channel's echoing child and runs the ping-pong at
/// every size, with a progress bar. A child that hangs is killed after a time limit (well
/// above what the sizes need), and that is an error, not a hang.
fn measure_ipc(args: &Args, sizes: &[u64]) -> course::Result<Vec<Measured>> {
    let peer = Peer::spawn(Kind::Bytes, ipc_pingpong::this_program(), time_limit(args, sizes))?;
    let bar = course::progress(sizes.len() as u64, "ipc-channel ping-pong");
    let mut measured = Vec::with_capacity(sizes.len());
    for &size in sizes {
        let (warmup, reps) = (warmup_for_size(args, size), reps_for_size(args, size));
        bar.set_message(format!("ipc-channel, {warmup} + {reps} x {}", Bytes(size)));
        let samples = match ipc_ping_pong(&peer, size as usize, warmup, reps) {
            Ok(samples) => samples,
            Err(error) => {
                bar.finish_and_clear();
                return Err(format!("ipc-channel ping-pong at {size} B: {error}").into());
            }
        };
        let summary = summarize(&samples)
            .ok_or("summarize() returned None for a non-empty list of samples")?;
        measured.push(Measured { size: Bytes(size), samples, summary });
        bar.inc(1);
    }
    bar.finish_and_clear();
    peer.finish()?;
    Ok(measured)
}

/// The second transport against the first at the smallest and the largest size.
fn compare(first: &Run, second: &Run) {
    let at = |run: &Run, size: Bytes| {
        run.measured.iter().find(|m| m.size == size).map(|m| one_way(m.summary.median))
    };
    let (Some(small), Some(large)) = (first.measured.first(), first.measured.last()) else {
        return;
    };
    let (Some(small_2), Some(large_2)) = (at(second, small.size), at(second, large.size)) else {
        return;
    };
    let ratio = |x: Duration, y: Duration| readable(y.as_secs_f64() / x.as_secs_f64());
    let (small_1, large_1) = (one_way(small.summary.median), one_way(large.summary.median));
    println!(
        "\n{} against {}: one-way time {}x at {}, {}x at {} (bandwidth {}x).",
        second.label,
        first.label,
        ratio(small_1, small_2),
        small.size,
        ratio(large_1, large_2),
        large.size,
        ratio(large_2, large_1),
    );
}

/// The table printed on the terminal (rounded) and the one written as CSV (full precision),
/// one row per transport and size.
fn tables(runs: &[Run]) -> course::Result<(Table, Table)> {
    let headers = [
        "transport",
        "size [B]",
        "size",
        "round trips",
        "min RTT [us]",
        "median RTT [us]",
        "one-way [us]",
        "model one-way [us]",
        "bandwidth [MB/s]",
        "bandwidth [MiB/s]",
        "bandwidth [Gb/s]",
    ];
    let mut shown = Table::new(&headers);
    let mut csv = Table::new(&headers);
    for (run, m) in runs.iter().flat_map(|run| run.measured.iter().map(move |m| (run, m))) {
        let model = run.model.as_ref().ok();
        let one_way_time = one_way(m.summary.median);
        let rate = bandwidth(m.size, one_way_time)?;
        let micros = |d: Duration| d.as_secs_f64() * 1e6;
        let model_micros = model.map(|model| model.time(m.size.0 as f64) * 1e6);
        let values = [
            micros(m.summary.min),
            micros(m.summary.median),
            micros(one_way_time),
            model_micros.unwrap_or(f64::NAN),
            rate.in_unit_per_second(Unit::MB),
            rate.in_unit_per_second(Unit::MiB),
            rate.in_unit_per_second(Unit::Gb),
        ];
        let start = [
            run.transport.name().to_string(),
            m.size.0.to_string(),
            m.size.to_string(),
            m.summary.count.to_string(),
        ];
        let blank_nan = |text: String| if text == "NaN" { String::new() } else { text };
        shown.row(start.iter().cloned().chain(values.map(|v| blank_nan(readable(v)))));
        csv.row(start.into_iter().chain(values.map(|v| blank_nan(significant(v, 7)))));
    }
    Ok((shown, csv))
}

/// Three significant digits (more for large numbers), with no exponent: 0.0412, 27.3, 4410.
fn readable(value: f64) -> String {
    significant(value, 3)
}

/// `digits` significant digits, or all the integer digits, with no exponent.
fn significant(value: f64, digits: i32) -> String {
    let magnitude =
        if value == 0.0 || !value.is_finite() { 0 } else { value.abs().log10().floor() as i32 };
    let decimals = (digits - 1 - magnitude).max(0) as usize;
    format!("{value:.decimals$}")
}

fn report_latency_and_bandwidth(smallest: &Measured, model: &Result<Model, bandwidth::FitError>) {
    let micros = |seconds: f64| readable(seconds * 1e6);
    println!("Latency (one way), two definitions:");
    let smallest_label = format!("median time of the smallest message ({}):", smallest.size);
    println!(
        "  {smallest_label:<55} {} us, includes sending it",
        micros(one_way(smallest.summary.median).as_secs_f64())
    );
    let model = match model {
        Ok(model) => model,
        Err(error) => {
            println!("  no model fitted: {error}");
            return;
        }
    };
    println!(
        "  {:<55} {} us, excludes the transfer",
        "intercept of the fitted T(s) = latency + s / bandwidth:",
        micros(model.latency_seconds)
    );
    if model.latency_seconds <= 0.0 {
        println!("  (a latency of 0 or less means the model does not fit these sizes)");
    }
    let per_second = |unit: Unit| readable(model.bytes_per_second / unit.bytes_per_unit());
    println!(
        "Asymptotic bandwidth (1 / slope of the fit): {} GB/s = {} GiB/s = {} Gb/s",
        per_second(Unit::GB),
        per_second(Unit::GiB),
        per_second(Unit::Gb),
    );
    if model.latency_seconds > 0.0 {
        println!(
            "Half of it is reached at s = latency x bandwidth = {} (below that, latency dominates)",
            Bytes(model.half_bandwidth_size().round() as u64)
        );
    }
}

/// Every timed round trip, for your own analysis.
fn samples_table(runs: &[Run]) -> Table {
    let mut table = Table::new(&["transport", "size [B]", "repetition", "round trip [ns]"]);
    for (run, m) in runs.iter().flat_map(|run| run.measured.iter().map(move |m| (run, m))) {
        for (repetition, sample) in m.samples.iter().enumerate() {
            table.row([
                run.transport.name().to_string(),
                m.size.0.to_string(),
                repetition.to_string(),
                sample.as_nanos().to_string(),
            ]);
        }
    }
    table
}

/// Sizes between the first and the last measured one, evenly spread on a log scale.
fn model_sizes(measured: &[Measured]) -> Vec<f64> {
    let low = (measured[0].size.0 as f64).ln();
    let high = (measured[measured.len() - 1].size.0 as f64).ln();
    (0..=200).map(|i| (low + (high - low) * f64::from(i) / 200.0).exp()).collect()
}

fn model_label(model: &Model) -> String {
    format!(
        "model T(s) = {} us + s / ({} GB/s)",
        readable(model.latency_seconds * 1e6),
        readable(model.bytes_per_second / 1e9)
    )
}

/// `label: what`, or just `what` when one transport was measured.
fn named(runs: &[Run], run: &Run, what: &str) -> String {
    if runs.len() > 1 { format!("{}: {what}", run.label) } else { what.to_string() }
}

/// The chart's title: `Pipe between ...` for mp alone, the transports' names otherwise.
fn title(runs: &[Run], what: &str) -> String {
    match runs {
        [run] if run.transport == Transport::Mp => format!("Pipe between two processes: {what}"),
        _ => {
            let names: Vec<&str> = runs.iter().map(|run| run.label.as_str()).collect();
            let names = match names.split_last() {
                Some((last, [])) => last.to_string(),
                Some((last, others)) => format!("{} and {last}", others.join(", ")),
                None => String::new(),
            };
            format!("{names} between two processes: {what}")
        }
    }
}

fn time_chart(runs: &[Run]) -> Chart {
    let us = |d: Duration| d.as_secs_f64() * 1e6;
    let mut series = Vec::new();
    for run in runs {
        let measured = &run.measured;
        let medians = measured.iter().map(|m| (m.size.0 as f64, us(one_way(m.summary.median))));
        let fastest = measured.iter().map(|m| (m.size.0 as f64, us(one_way(m.summary.min))));
        series.push(Series::points(named(runs, run, "median RTT / 2"), medians.collect()));
        if let Some(model) = run.model.as_ref().ok().filter(|model| model.latency_seconds > 0.0) {
            let curve =
                model_sizes(measured).into_iter().map(|s| (s, model.time(s) * 1e6)).collect();
            series.push(Series::dashed(named(runs, run, &model_label(model)), curve));
        }
        series.push(Series::points(named(runs, run, "fastest RTT / 2"), fastest.collect()));
    }
    Chart {
        title: title(runs, "one-way time (round trip / 2)"),
        x: Axis::bytes("message size"),
        y: Axis::log("one-way time [us]"),
        series,
    }
}

fn bandwidth_chart(runs: &[Run]) -> course::Result<Chart> {
    let mut series = Vec::new();
    for run in runs {
        let measured = &run.measured;
        let mut measured_points = Vec::new();
        for m in measured {
            let rate = bandwidth(m.size, one_way(m.summary.median))?;
            measured_points.push((m.size.0 as f64, rate.in_unit_per_second(Unit::MB)));
        }
        let name = named(runs, run, "measured: size / (median RTT / 2)");
        series.push(Series::line(name, measured_points));
        if let Some(model) = run.model.as_ref().ok().filter(|model| model.latency_seconds > 0.0) {
            let sizes = model_sizes(measured);
            let curve = sizes.iter().map(|&s| (s, model.bandwidth_at(s) / 1e6)).collect();
            series.push(Series::dashed(named(runs, run, &model_label(model)), curve));
            let limit = model.bytes_per_second / 1e6;
            series.push(Series::dashed(
                named(runs, run, &format!("asymptote {} GB/s", readable(limit / 1e3))),
                vec![(sizes[0], limit), (sizes[sizes.len() - 1], limit)],
            ));
        }
    }
    Ok(Chart {
        title: title(runs, "bandwidth"),
        x: Axis::bytes("message size"),
        y: Axis::log("bandwidth [MB/s] (1 MB = 10^6 B)"),
        series,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The echoing child when this test binary is started as one; otherwise nothing.
    #[test]
    fn child_entry() {
        ipc_pingpong::exit_if_test_child();
    }

    fn measured(size: u64, nanos: &[u64]) -> Measured {
        let samples: Vec<Duration> = nanos.iter().map(|&n| Duration::from_nanos(n)).collect();
        let summary = Summary { count: samples.len(), min: samples[0], median: samples[0] };
        Measured { size: Bytes(size), samples, summary }
    }

    #[test]
    fn a_nested_jobs_samples_are_read_back_by_size_in_order() {
        let written = nested_samples(&[measured(1, &[900, 800]), measured(1000, &[5000])]);
        let read = parse_nested_samples(&written.to_csv()).unwrap();
        assert_eq!(
            read,
            [
                (1, vec![Duration::from_nanos(900), Duration::from_nanos(800)]),
                (1000, vec![Duration::from_nanos(5000)])
            ]
        );
    }

    #[test]
    fn broken_samples_are_one_clear_error() {
        let header = NESTED_HEADERS.join(",");
        assert!(parse_nested_samples("").unwrap_err().contains("header"));
        assert!(parse_nested_samples(&format!("{header}\n")).unwrap_err().contains("empty"));
        let bad = parse_nested_samples(&format!("{header}\n1,5\n1;6\n")).unwrap_err();
        assert!(bad.contains("line 3"), "{bad}");
        let bad = parse_nested_samples(&format!("{header}\n1,5\n2,-1\n")).unwrap_err();
        assert!(bad.contains("line 3"), "{bad}");
        let apart = parse_nested_samples(&format!("{header}\n1,5\n2,6\n1,7\n")).unwrap_err();
        assert!(apart.contains("not together"), "{apart}");
    }

    #[test]
    fn library_names_are_shortened_to_major_and_minor() {
        let open_mpi = "Open MPI v4.1.4, package: Debian OpenMPI, ident: 4.1.4, repo rev: v4.1.4";
        assert_eq!(short_library_name(open_mpi), "Open MPI 4.1");
        assert_eq!(short_library_name("MPICH Version:\t4.0.2\nMPICH Release date: x"), "MPICH 4.0");
        assert_eq!(short_library_name("Some MPI"), "Some MPI");
        assert_eq!(short_library_name(""), "");
    }

    /// The arguments, with every output in a temporary directory (clap's check creates them).
    fn parse(args: &[&str]) -> Args {
        let dir = std::env::temp_dir().join(format!("exercise-5-args-{}", std::process::id()));
        let outputs = ["--csv", "--samples-csv", "--time-plot", "--bandwidth-plot"];
        let paths: Vec<String> =
            outputs.iter().map(|flag| dir.join(&flag[2..]).display().to_string()).collect();
        let mut all = vec!["exercise-5"];
        for (flag, path) in outputs.iter().zip(&paths) {
            all.extend([*flag, path.as_str()]);
        }
        all.extend(args);
        Args::parse_from(all)
    }

    #[test]
    fn transports_default_by_context_and_appear_once() {
        let args = parse(&[]);
        assert_eq!(chosen(&args, &[Transport::Mp]), [Transport::Mp]);
        let args = parse(&["--transport", "mpi-tcp,mp,mpi-tcp"]);
        assert_eq!(chosen(&args, &[Transport::Mp]), [Transport::MpiTcp, Transport::Mp]);
        let mpi = MpiInfo { library: "Open MPI 4.1".into(), same_machine: true };
        assert_eq!(Transport::MpiShm.label(&mpi), "MPI (Open MPI 4.1, shared memory)");
        assert_eq!(Transport::MpiTcp.label(&mpi), "MPI (TCP)");
        let apart = MpiInfo { library: String::new(), same_machine: false };
        assert_eq!(Transport::MpiShm.label(&apart), "MPI (between machines)");
        assert_eq!(Transport::Mp.label(&apart), "mp pipe");
    }

    #[test]
    fn the_internal_flags_are_hidden_and_refused_without_mpi() {
        use clap::CommandFactory;
        let help = Args::command().render_long_help().to_string();
        assert!(!help.contains("mpi-transport-run") && !help.contains("samples-out"), "{help}");
        let args = parse(&["--mpi-transport-run", "tcp"]);
        let error = run_here(&args).unwrap_err().to_string();
        assert!(error.contains("internal"), "{error}");
        let args = parse(&["--transport", "mpi-shm"]);
        let error = run_here(&args).unwrap_err().to_string();
        assert!(error.contains("mpirun -n 2"), "{error}");
    }

    #[test]
    fn the_last_lines_of_stderr_make_one_line() {
        let stderr = "a\n\n-----\nb\nc\nd\n";
        assert_eq!(tail(stderr), "b | c | d");
        assert_eq!(tail(""), "(nothing on standard error)");
    }

    #[test]
    fn the_ipc_channel_ping_pong_gives_one_positive_time_per_repetition() {
        let child = ipc_pingpong::test_child("tests::child_entry");
        let peer = Peer::spawn(Kind::Bytes, child, Duration::from_secs(60)).unwrap();
        for size in [1, 1000, 300_000] {
            let samples = ipc_ping_pong(&peer, size, 2, 5).unwrap();
            assert_eq!(samples.len(), 5, "{size} B");
            assert!(samples.iter().all(|time| *time > Duration::ZERO), "{size} B: {samples:?}");
        }
        peer.finish().unwrap();
    }
}
