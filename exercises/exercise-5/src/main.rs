//! Exercise 5: ping-pong latency and bandwidth, measured carefully and plotted.
//!
//! Given code: measures with your functions from `src/lib.rs`, then prints the table, writes
//! the CSVs and draws the two plots.

use std::{path::PathBuf, process::ExitCode, time::Duration};

use bandwidth::{Model, Summary, bandwidth, echo, fit, given, one_way, ping_pong, summarize};
use clap::{Parser, value_parser};
use course::Table;
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

/// What was measured at one size.
struct Measured {
    size: Bytes,
    samples: Vec<Duration>,
    summary: Summary,
}

fn main() -> ExitCode {
    course::run(run)
}

fn run(args: Args) -> course::Result {
    let sizes = sizes(&args)?;
    println!(
        "Ping-pong over an mp::pipe between this process and one child process: {} size{} \
         from {} to {}; at each size {} warm-up and {} timed round trips, fewer above {} \
         (--budget {}).",
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

    let measured = measure(&args, &sizes)?;
    let points: Vec<(f64, f64)> = measured
        .iter()
        .map(|m| (m.size.0 as f64, one_way(m.summary.median).as_secs_f64()))
        .collect();
    let model = fit(&points);

    let (table, csv) = tables(&measured, model.as_ref().ok())?;
    println!("\n{table}");
    println!(
        "Units: 1 MB = 10^6 B, 1 MiB = 2^20 B = 1.048576 MB, 1 Gb = 10^9 bits = 125 MB. \
         RTT = round trip, timed from before the send to after the reply arrived; \
         one-way = median RTT / 2; bandwidth = size / one-way (= 2 x size / RTT).\n"
    );
    report_latency_and_bandwidth(&measured[0], &model);

    csv.write_csv(&args.csv)?;
    samples_table(&measured).write_csv(&args.samples_csv)?;
    time_chart(&measured, model.as_ref().ok()).write_svg(&args.time_plot)?;
    bandwidth_chart(&measured, model.as_ref().ok())?.write_svg(&args.bandwidth_plot)?;
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

/// The table printed on the terminal (rounded) and the one written as CSV (full precision).
fn tables(measured: &[Measured], model: Option<&Model>) -> course::Result<(Table, Table)> {
    let headers = [
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
    for m in measured {
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
        let start = [m.size.0.to_string(), m.size.to_string(), m.summary.count.to_string()];
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
fn samples_table(measured: &[Measured]) -> Table {
    let mut table = Table::new(&["size [B]", "repetition", "round trip [ns]"]);
    for m in measured {
        for (repetition, sample) in m.samples.iter().enumerate() {
            table.row([
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

fn time_chart(measured: &[Measured], model: Option<&Model>) -> Chart {
    let us = |d: Duration| d.as_secs_f64() * 1e6;
    let medians = measured.iter().map(|m| (m.size.0 as f64, us(one_way(m.summary.median))));
    let fastest = measured.iter().map(|m| (m.size.0 as f64, us(one_way(m.summary.min))));
    let mut series = vec![Series::points("median RTT / 2", medians.collect())];
    if let Some(model) = model.filter(|model| model.latency_seconds > 0.0) {
        let curve = model_sizes(measured).into_iter().map(|s| (s, model.time(s) * 1e6)).collect();
        series.push(Series::dashed(model_label(model), curve));
    }
    series.push(Series::points("fastest RTT / 2", fastest.collect()));
    Chart {
        title: "Pipe between two processes: one-way time (round trip / 2)".into(),
        x: Axis::bytes("message size"),
        y: Axis::log("one-way time [us]"),
        series,
    }
}

fn bandwidth_chart(measured: &[Measured], model: Option<&Model>) -> course::Result<Chart> {
    let mut measured_points = Vec::new();
    for m in measured {
        let rate = bandwidth(m.size, one_way(m.summary.median))?;
        measured_points.push((m.size.0 as f64, rate.in_unit_per_second(Unit::MB)));
    }
    let mut series = vec![Series::line("measured: size / (median RTT / 2)", measured_points)];
    if let Some(model) = model.filter(|model| model.latency_seconds > 0.0) {
        let sizes = model_sizes(measured);
        let curve = sizes.iter().map(|&s| (s, model.bandwidth_at(s) / 1e6)).collect();
        series.push(Series::dashed(model_label(model), curve));
        let limit = model.bytes_per_second / 1e6;
        series.push(Series::dashed(
            format!("asymptote {} GB/s", readable(limit / 1e3)),
            vec![(sizes[0], limit), (sizes[sizes.len() - 1], limit)],
        ));
    }
    Ok(Chart {
        title: "Pipe between two processes: bandwidth".into(),
        x: Axis::bytes("message size"),
        y: Axis::log("bandwidth [MB/s] (1 MB = 10^6 B)"),
        series,
    })
}
