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

use std::{
    path::PathBuf,
    process::ExitCode,
    time::{Duration, Instant},
};

use bandwidth::{Model, Summary, bandwidth, echo, fit, given, one_way, ping_pong, summarize};
use clap::{Parser, ValueEnum, value_parser};
use course::Table;
use ipc_pingpong::{Kind, Peer};
use mp::{
    Process,
    plot::{Axis, Chart, Series},
    units::{Bytes, Unit},
};

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
    /// the given ipc_ping_pong with the same steps). Both go into the same table, CSVs and
    /// plots.
    #[arg(long, value_enum, value_delimiter = ',', default_value = "mp")]
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
}

/// How the two processes talk.
#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
enum Transport {
    /// `mp::pipe`, `send_bytes` / `recv_bytes`: your `echo` and `ping_pong`.
    Mp,
    /// ipc-channel's `bytes_channel`, `IpcBytesSender::send` / `IpcBytesReceiver::recv`,
    /// to a copy of this program started as the echoing child.
    IpcChannel,
}

impl Transport {
    /// The name in the CSV's `transport` column, as on the command line.
    fn name(self) -> &'static str {
        match self {
            Transport::Mp => "mp",
            Transport::IpcChannel => "ipc-channel",
        }
    }

    /// The name on the plots and the terminal.
    fn label(self) -> String {
        match self {
            Transport::Mp => "mp pipe".into(),
            Transport::IpcChannel => format!("ipc-channel {}", ipc_pingpong::IPC_CHANNEL_VERSION),
        }
    }
}

/// Everything measured over one transport, and the model fitted to it.
struct Run {
    transport: Transport,
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
    let sizes = sizes(&args)?;
    let mut transports = args.transport.clone();
    transports.dedup();
    let over: Vec<String> = transports.iter().map(|t| t.label()).collect();
    println!(
        "Ping-pong over {} between this process and one child process: {} size{} \
         from {} to {}; at each size {} warm-up and {} timed round trips, fewer above {} \
         (--budget {}).",
        over.join(", then over "),
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
        println!("Note: figures from a debug build; add --release.");
    }

    let mut runs = Vec::new();
    for transport in transports {
        let measured = match transport {
            Transport::Mp => measure(&args, &sizes)?,
            Transport::IpcChannel => measure_ipc(&args, &sizes)?,
        };
        let points: Vec<(f64, f64)> = measured
            .iter()
            .map(|m| (m.size.0 as f64, one_way(m.summary.median).as_secs_f64()))
            .collect();
        let model = fit(&points);
        runs.push(Run { transport, measured, model });
    }

    let (table, csv) = tables(&runs)?;
    println!("\n{table}");
    println!(
        "Units: 1 MB = 10^6 B, 1 MiB = 2^20 B = 1.048576 MB, 1 Gb = 10^9 bits = 125 MB. \
         RTT = round trip, timed from before the send to after the reply arrived; \
         one-way = median RTT / 2; bandwidth = size / one-way (= 2 x size / RTT).\n"
    );
    for run in &runs {
        if runs.len() > 1 {
            println!("{}:", run.transport.label());
        }
        report_latency_and_bandwidth(&run.measured[0], &run.model);
    }
    if let [first, second] = &runs[..] {
        compare(first, second);
    }

    csv.write_csv(&args.csv)?;
    samples_table(&runs).write_csv(&args.samples_csv)?;
    time_chart(&runs).write_svg(&args.time_plot)?;
    bandwidth_chart(&runs)?.write_svg(&args.bandwidth_plot)?;
    println!("\nWrote {} (statistics per size)", args.csv.display());
    println!("Wrote {} (every timed round trip)", args.samples_csv.display());
    println!("Wrote {} (one-way time against size)", args.time_plot.display());
    println!("Wrote {} (bandwidth against size)", args.bandwidth_plot.display());
    Ok(())
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
    let bar = course::progress(sizes.len() as u64, "ping-pong");
    let mut measured = Vec::with_capacity(sizes.len());
    let mut sent = 0u64;
    for &size in sizes {
        let (warmup, reps) = (warmup_for_size(args, size), reps_for_size(args, size));
        bar.set_message(format!("ping-pong, {warmup} + {reps} x {}", Bytes(size)));
        let samples = match ping_pong(&here, size as usize, warmup, reps) {
            Ok(samples) => samples,
            Err(error) => {
                bar.finish_and_clear();
                // A failed echo explains a broken pipe better than the pipe does.
                drop(here);
                child.join_timeout(Duration::from_secs(5))?;
                return Err(error.into());
            }
        };
        sent += u64::from(warmup) + u64::from(reps);
        if samples.len() != reps as usize {
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

    drop(here); // echo() sees the end of the pipe and returns
    let echoed = child.join_timeout(Duration::from_secs(10))?;
    if echoed != sent {
        return Err(format!(
            "echo() says it echoed {echoed} messages but {sent} were sent \
             (warm-up and timed round trips); count every message you send back"
        )
        .into());
    }
    Ok(measured)
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
    let bytes: u64 = sizes
        .iter()
        .map(|&size| size * u64::from(warmup_for_size(args, size) + reps_for_size(args, size)))
        .sum();
    // 2 x the bytes at 20 MB/s (a slow debug build on a busy machine) plus a minute.
    let limit = Duration::from_secs(60 + 2 * bytes / 20_000_000);
    let peer = Peer::spawn(Kind::Bytes, ipc_pingpong::this_program(), limit)?;
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
        second.transport.label(),
        first.transport.label(),
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
    if runs.len() > 1 { format!("{}: {what}", run.transport.label()) } else { what.to_string() }
}

/// The chart's title: `Pipe between ...` for mp alone, the transports' names otherwise.
fn title(runs: &[Run], what: &str) -> String {
    match runs {
        [run] if run.transport == Transport::Mp => format!("Pipe between two processes: {what}"),
        _ => {
            let names: Vec<String> = runs.iter().map(|run| run.transport.label()).collect();
            format!("{} between two processes: {what}", names.join(" and "))
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
        if let Some(outcome) = ipc_pingpong::child_role() {
            std::process::exit(i32::from(outcome.is_err()));
        }
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
