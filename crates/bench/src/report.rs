//! `report.md`: the targets (met or not), the side-by-side figures, the per-size tables, the
//! method and what was skipped.

use std::fmt::Write;

use crate::{
    memory::MemoryPeak,
    results::{Loaded, LoadedPass, Outcome, PerTask, Results, Side},
    stats::Summary,
    sweep::{Point, at_size},
};

/// Bytes in a GB (decimal): bandwidths are in GB/s.
const GB: f64 = 1e9;
/// Bytes in a MiB.
const MIB: f64 = (1u64 << 20) as f64;

/// A number with three significant digits (more for numbers of 1000 and above), without an
/// exponent: `123`, `12.3`, `1.23`, `0.0123`.
pub fn sig3(value: f64) -> String {
    if value == 0.0 || !value.is_finite() {
        return format!("{value:.0}");
    }
    let exponent = value.abs().log10().floor() as i32;
    let decimals = (2 - exponent).max(0) as usize;
    let text = format!("{value:.decimals$}");
    // Rounding can carry into the next power of ten (9.996 -> "10.00"): one decimal less.
    let carried = text
        .trim_start_matches('-')
        .parse::<f64>()
        .is_ok_and(|rounded| rounded >= 10f64.powi(exponent + 1));
    if carried && decimals > 0 { format!("{value:.prec$}", prec = decimals - 1) } else { text }
}

/// A time in seconds, in the unit that suits it: `9.61 µs`, `4.88 ms`, `370 ns`.
pub fn time(seconds: f64) -> String {
    let magnitude = seconds.abs();
    if magnitude >= 1.0 {
        format!("{} s", sig3(seconds))
    } else if magnitude >= 1e-3 {
        format!("{} ms", sig3(seconds * 1e3))
    } else if magnitude >= 1e-6 {
        format!("{} µs", sig3(seconds * 1e6))
    } else {
        format!("{} ns", sig3(seconds * 1e9))
    }
}

/// A bandwidth in bytes per second, in GB/s (10^9 B/s).
pub fn bandwidth(bytes_per_second: f64) -> String {
    format!("{} GB/s", sig3(bytes_per_second / GB))
}

/// A message size in binary units: `1 B`, `64 KiB`, `64 MiB` (exact for powers of two).
pub fn size(bytes: u64) -> String {
    const UNITS: [(u64, &str); 3] = [(1 << 30, "GiB"), (1 << 20, "MiB"), (1 << 10, "KiB")];
    for (factor, unit) in UNITS {
        if bytes >= factor && bytes.is_multiple_of(factor) {
            return format!("{} {unit}", bytes / factor);
        }
    }
    format!("{bytes} B")
}

/// A memory amount in MiB.
pub fn mebibytes(bytes: u64) -> String {
    format!("{} MiB", sig3(bytes as f64 / MIB))
}

/// `median (min)` of a time.
fn time_cell(summary: &Summary) -> String {
    format!("{} ({})", time(summary.median), time(summary.min))
}

fn cell<T>(outcome: &Outcome<T>, show: impl Fn(&T) -> String) -> String {
    match outcome.value() {
        Some(value) => show(value),
        None => outcome.absence().to_string(),
    }
}

/// Whether a figure must be at most or at least its target.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Relation {
    /// Smaller is better: the figure must not exceed the target.
    AtMost,
    /// Larger is better: the figure must reach the target.
    AtLeast,
}

/// A figure as judged: the median, and the best run (the smallest time or the largest
/// bandwidth), which is what a quiet machine gives.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Figure {
    /// The median.
    pub median: f64,
    /// The best run.
    pub best: f64,
}

/// One target: mp's figure against `factor` x a reference figure.
#[derive(Clone, Debug)]
pub struct Check {
    /// What is compared.
    pub what: String,
    /// mp's figure, if measured.
    pub ours: Option<Figure>,
    /// The reference figure, if measured.
    pub reference: Option<Figure>,
    /// What the reference is (`Python`, `C MPI`, `memcpy`).
    pub reference_name: String,
    /// The target is `factor` x the reference.
    pub factor: f64,
    /// At most or at least.
    pub relation: Relation,
    /// Formats a figure with its unit.
    pub unit: fn(f64) -> String,
    /// Python's figure for the same thing, formatted (or `–`).
    pub python: String,
    /// MPI's figures for the same thing, formatted (or `–`).
    pub mpi: String,
    /// The machine's limit for the same thing, formatted (or `–`).
    pub limit: String,
}

impl Check {
    /// The target value (from the reference's median), if the reference was measured.
    pub fn target(&self) -> Option<f64> {
        self.reference.map(|reference| reference.median * self.factor)
    }

    fn holds(&self, ours: f64, reference: f64) -> bool {
        match self.relation {
            Relation::AtMost => ours <= reference * self.factor,
            Relation::AtLeast => ours >= reference * self.factor,
        }
    }

    /// Met on medians, not met, or unknown (a figure is missing).
    pub fn met(&self) -> Option<bool> {
        let (ours, reference) = (self.ours?, self.reference?);
        Some(self.holds(ours.median, reference.median))
    }

    /// Met when comparing the best runs of both.
    pub fn met_best(&self) -> Option<bool> {
        let (ours, reference) = (self.ours?, self.reference?);
        Some(self.holds(ours.best, reference.best))
    }

    /// mp's median over the reference's median.
    pub fn ratio(&self) -> Option<f64> {
        Some(self.ours?.median / self.reference?.median).filter(|ratio| ratio.is_finite())
    }

    /// mp's best run over the reference's best run.
    pub fn ratio_best(&self) -> Option<f64> {
        Some(self.ours?.best / self.reference?.best).filter(|ratio| ratio.is_finite())
    }

    /// The target in words: `<= 1/3 x Python`, `>= 0.9 x memcpy`.
    pub fn target_text(&self) -> String {
        let sign = match self.relation {
            Relation::AtMost => "≤",
            Relation::AtLeast => "≥",
        };
        let factor = if self.factor == 1.0 {
            String::new()
        } else if self.factor < 1.0 && (1.0 / self.factor).fract() == 0.0 {
            format!("1/{} × ", 1.0 / self.factor)
        } else {
            format!("{} × ", self.factor)
        };
        format!("{sign} {factor}{}", self.reference_name)
    }
}

fn median<T>(outcome: &Outcome<T>, get: impl Fn(&T) -> f64) -> Option<f64> {
    outcome.value().map(get)
}

fn point_value(points: &Outcome<Vec<Point>>, bytes: u64, get: fn(&Point) -> f64) -> Option<f64> {
    points.value().and_then(|points| at_size(points, bytes)).map(get)
}

fn one_way(point: &Point) -> f64 {
    point.one_way_s.median
}

fn bandwidth_of(point: &Point) -> f64 {
    point.bandwidth_bps
}

/// A summary of times as a figure (the best is the smallest).
fn summary_figure(summary: &Summary) -> Figure {
    Figure { median: summary.median, best: summary.min }
}

fn time_figure(points: &Outcome<Vec<Point>>, bytes: u64) -> Option<Figure> {
    let point = points.value().and_then(|points| at_size(points, bytes))?;
    Some(summary_figure(&point.one_way_s))
}

fn bandwidth_figure(points: &Outcome<Vec<Point>>, bytes: u64) -> Option<Figure> {
    let point = points.value().and_then(|points| at_size(points, bytes))?;
    Some(Figure { median: point.bandwidth_bps, best: point.best_bandwidth_bps })
}

/// The largest size every bandwidth target is judged at: 64 MiB.
pub const LARGE: u64 = 64 << 20;

/// Formats an optional figure, or says why it is missing.
fn shown<T>(value: Option<f64>, outcome: &Outcome<T>, unit: fn(f64) -> String) -> String {
    match value {
        Some(value) => unit(value),
        None if outcome.value().is_some() => "–".into(),
        None => outcome.absence().into(),
    }
}

/// `C 1.40 µs, mpi4py 3.44 µs`: both MPI figures at one size.
fn mpi_cell(
    results: &Results,
    bytes: u64,
    get: fn(&Point) -> f64,
    unit: fn(f64) -> String,
) -> String {
    let c = shown(point_value(&results.mpi_c, bytes, get), &results.mpi_c, unit);
    let py = shown(point_value(&results.mpi4py, bytes, get), &results.mpi4py, unit);
    format!("C {c}, mpi4py {py}")
}

/// The targets of issue 5, evaluated on `results`.
pub fn checks(results: &Results) -> Vec<Check> {
    let (ours, python) = (&results.ours, &results.python);
    let (mpi_name, mpi_bandwidth) = match bandwidth_figure(&results.mpi4py, LARGE) {
        Some(figure) => ("mpi4py", Some(figure)),
        None => ("C MPI", bandwidth_figure(&results.mpi_c, LARGE)),
    };
    let none = || "–".to_string();
    let flag = shown(median(&results.shared_flag_s, |s| s.median), &results.shared_flag_s, time);
    let memcpy =
        shown(point_value(&results.memcpy, LARGE, bandwidth_of), &results.memcpy, bandwidth);
    let against_python =
        |what: &str, ours: Option<Figure>, python: (Option<Figure>, &str), factor| Check {
            what: what.into(),
            ours,
            reference: python.0,
            reference_name: "Python".into(),
            factor,
            relation: Relation::AtMost,
            unit: time,
            python: python.0.map_or(python.1.to_string(), |figure| time(figure.median)),
            mpi: none(),
            limit: none(),
        };
    let timed =
        |outcome: &Outcome<Summary>| (outcome.value().map(summary_figure), outcome.absence());
    let per_task = |outcome: &Outcome<PerTask>| {
        (outcome.value().map(|m| summary_figure(&m.per_task_s)), outcome.absence())
    };
    let mut checks = vec![
        against_python(
            "`Pool(4)` ready + first one-item map",
            timed(&ours.pool_start_s).0,
            timed(&python.pool_start_s),
            1.0 / 3.0,
        ),
        against_python(
            "`map`, chunksize 1, per task",
            per_task(&ours.map_chunksize_1).0,
            per_task(&python.map_chunksize_1),
            0.1,
        ),
        against_python(
            "`map`, default chunksize, per task",
            per_task(&ours.map_default).0,
            per_task(&python.map_default),
            1.0,
        ),
    ];
    for bytes in [1u64, 8] {
        checks.push(Check {
            what: format!("pipe, {bytes} B, one way"),
            ours: time_figure(&ours.pipe, bytes),
            reference: time_figure(&results.mpi_c, bytes),
            reference_name: "C MPI".into(),
            factor: 2.0,
            relation: Relation::AtMost,
            unit: time,
            python: shown(point_value(&python.pipe, bytes, one_way), &python.pipe, time),
            mpi: mpi_cell(results, bytes, one_way, time),
            limit: format!("shared flag {flag}"),
        });
    }
    let python_large =
        shown(point_value(&python.pipe, LARGE, bandwidth_of), &python.pipe, bandwidth);
    for (reference, name, factor) in
        [(bandwidth_figure(&results.memcpy, LARGE), "memcpy", 0.9), (mpi_bandwidth, mpi_name, 1.0)]
    {
        checks.push(Check {
            what: "pipe, 64 MiB, bandwidth".into(),
            ours: bandwidth_figure(&ours.pipe, LARGE),
            reference,
            reference_name: name.into(),
            factor,
            relation: Relation::AtLeast,
            unit: bandwidth,
            python: python_large.clone(),
            mpi: mpi_cell(results, LARGE, bandwidth_of, bandwidth),
            limit: format!("memcpy {memcpy}"),
        });
    }
    checks.push(against_python(
        "gather 4 × 1e6 f64, `pool.map`",
        timed(&ours.gather_pool_s).0,
        timed(&python.gather_pool_s),
        0.2,
    ));
    checks.push(against_python(
        "gather 4 × 1e6 f64, 4 pipes",
        timed(&ours.gather_pipes_s).0,
        timed(&python.gather_pipes_s),
        0.2,
    ));
    checks
}

fn verdict(met: Option<bool>) -> &'static str {
    match met {
        Some(true) => "met",
        Some(false) => "not met",
        None => "unknown (not measured)",
    }
}

/// The targets as a Markdown table: mp, Python, MPI and the limit side by side (medians),
/// then the target, mp's ratio to the target's reference, and whether it is met; where the
/// best runs of both give another verdict than the medians, the cell says so.
pub fn targets_table(checks: &[Check]) -> String {
    let mut table = String::from(
        "| figure | mp | Python | MPI | limit | target | mp / reference | met? |\n\
         |---|---|---|---|---|---|---|---|\n",
    );
    for check in checks {
        let ours = check.ours.map_or("–".to_string(), |figure| (check.unit)(figure.median));
        let target = match check.target() {
            Some(value) => format!("{} = {}", check.target_text(), (check.unit)(value)),
            None => check.target_text(),
        };
        let ratio = match (check.ratio(), check.ratio_best()) {
            (Some(ratio), Some(best)) => {
                format!("{}× {} (best runs {}×)", sig3(ratio), check.reference_name, sig3(best))
            }
            _ => "–".to_string(),
        };
        let met = match (check.met(), check.met_best()) {
            (Some(true), Some(true)) => "**met**".to_string(),
            (on_medians, on_best) if on_medians.is_some() && on_medians != on_best => {
                let emphasis = if on_medians == Some(true) { "**" } else { "" };
                format!(
                    "{emphasis}{}{emphasis} (best runs: {})",
                    verdict(on_medians),
                    verdict(on_best)
                )
            }
            (on_medians, _) => verdict(on_medians).to_string(),
        };
        let _ = writeln!(
            table,
            "| {} | {ours} | {} | {} | {} | {target} | {ratio} | {met} |",
            check.what, check.python, check.mpi, check.limit
        );
    }
    table
}

fn ratio_cell(ours: Option<f64>, python: Option<f64>) -> String {
    match (ours, python) {
        (Some(ours), Some(python)) if python > 0.0 => format!("{}×", sig3(ours / python)),
        _ => "–".into(),
    }
}

fn memory_cell(peak: &MemoryPeak, sender: bool) -> String {
    let side = if sender { peak.sender } else { peak.receiver };
    format!(
        "{} peak, +{} = {}× the message",
        mebibytes(side.peak_bytes),
        mebibytes(side.added_bytes()),
        sig3(side.added_bytes() as f64 / peak.message_bytes as f64)
    )
}

fn timed_row(table: &mut String, what: &str, cells: [Option<Summary>; 2], absent: [&str; 2]) {
    let texts: Vec<String> = cells
        .iter()
        .zip(absent)
        .map(|(cell, absent)| cell.as_ref().map_or(absent.to_string(), time_cell))
        .collect();
    let ratio =
        ratio_cell(cells[0].as_ref().map(|s| s.median), cells[1].as_ref().map(|s| s.median));
    let _ = writeln!(table, "| {what} | {} | {} | {ratio} |", texts[0], texts[1]);
}

/// The side-by-side table of the experiments both mp and Python run.
pub fn side_by_side(results: &Results) -> String {
    let sides = [&results.ours, &results.python];
    let mut table = String::from("| figure | mp | Python | mp / Python |\n|---|---|---|---|\n");
    let mut row = |what: &str, get: &dyn Fn(&Side) -> (Option<Summary>, &'static str)| {
        let [(ours, ours_absent), (python, python_absent)] = sides.map(get);
        timed_row(&mut table, what, [ours, python], [ours_absent, python_absent]);
    };
    row("`Pool(4)` ready + first one-item map", &|side| {
        (side.pool_start_s.value().cloned(), side.pool_start_s.absence())
    });
    row("one process started, run, joined (Python: `Process` + `Queue`)", &|side| {
        (side.process_start_s.value().cloned(), side.process_start_s.absence())
    });
    let chunk_note = |side: &Side| side.map_default.value().map(|m| (m.n_tasks, m.chunksize));
    let (n_tasks, default_chunk) = chunk_note(sides[0]).or(chunk_note(sides[1])).unwrap_or((0, 0));
    row(&format!("`map`, chunksize 1, per task ({n_tasks} tasks)"), &|side| {
        let value = side.map_chunksize_1.value().map(|m| m.per_task_s.clone());
        (value, side.map_chunksize_1.absence())
    });
    row(
        &format!("`map`, default chunksize ({default_chunk}), per task ({n_tasks} tasks)"),
        &|side| {
            (side.map_default.value().map(|m| m.per_task_s.clone()), side.map_default.absence())
        },
    );
    for (bytes, label) in [(1u64, "1 B"), (8, "8 B")] {
        row(&format!("pipe, {label}, one way (half a round trip)"), &|side| {
            let point = side.pipe.value().and_then(|points| at_size(points, bytes));
            (point.map(|point| point.one_way_s.clone()), side.pipe.absence())
        });
    }
    let len = results.settings.gather_len;
    row(&format!("gather 4 × {len} f64 to the parent, `pool.map` on a started pool"), &|side| {
        (side.gather_pool_s.value().cloned(), side.gather_pool_s.absence())
    });
    row(&format!("gather 4 × {len} f64, 4 started processes, one pipe each"), &|side| {
        (side.gather_pipes_s.value().cloned(), side.gather_pipes_s.absence())
    });
    let (ours, python) = (sides[0], sides[1]);
    let big = |side: &Side| point_value(&side.pipe, LARGE, bandwidth_of);
    let _ = writeln!(
        table,
        "| pipe, 64 MiB, bandwidth (size / one-way time) | {} | {} | {} |",
        big(ours).map_or(ours.pipe.absence().to_string(), bandwidth),
        big(python).map_or(python.pipe.absence().to_string(), bandwidth),
        ratio_cell(big(ours), big(python)),
    );
    for sender in [true, false] {
        let what = if sender { "sender" } else { "receiver" };
        let _ = writeln!(
            table,
            "| peak memory (VmHWM), one {} message, {what} | {} | {} | {} |",
            size(results.settings.memory_bytes),
            cell(&ours.memory, |peak| memory_cell(peak, sender)),
            cell(&python.memory, |peak| memory_cell(peak, sender)),
            ratio_cell(
                ours.memory.value().map(|p| side_of(p, sender) as f64),
                python.memory.value().map(|p| side_of(p, sender) as f64)
            ),
        );
    }
    table
}

fn side_of(peak: &MemoryPeak, sender: bool) -> u64 {
    if sender { peak.sender.peak_bytes } else { peak.receiver.peak_bytes }
}

/// The sizes of the ipc-channel table: latency at 1 B, 8 B and 64 KiB, bandwidth at 64 MiB.
const IPC_TIMES: [u64; 3] = [1, 8, 64 << 10];

/// mp's pipe and ipc-channel's three ways side by side: one-way times at small sizes and the
/// bandwidth at 64 MiB, each ipc-channel figure with its ratio to mp's pipe.
pub fn ipc_table(results: &Results) -> String {
    let ipc = &results.ipc_channel;
    let mut table = format!(
        "| figure | mp pipe | ipc-channel {v} bytes | ipc-channel {v} typed `Vec<u8>` | ipc-channel {v} `IpcSharedMemory` |\n\
         |---|---|---|---|---|\n",
        v = ipc.version
    );
    let pipe = &results.ours.pipe;
    let rows = IPC_TIMES
        .iter()
        .map(|&bytes| {
            (
                format!("{}, one way (median)", size(bytes)),
                bytes,
                one_way as fn(&Point) -> f64,
                time as fn(f64) -> String,
            )
        })
        .chain([(
            format!("{}, bandwidth (size / median one way)", size(LARGE)),
            LARGE,
            bandwidth_of as fn(&Point) -> f64,
            bandwidth as fn(f64) -> String,
        )]);
    for (what, bytes, get, unit) in rows {
        let ours = point_value(pipe, bytes, get);
        let _ = write!(table, "| {what} | {} |", shown(ours, pipe, unit));
        for (_, outcome) in ipc.kinds() {
            let theirs = point_value(outcome, bytes, get);
            let ratio = match (theirs, ours) {
                (Some(theirs), Some(ours)) if ours > 0.0 => {
                    format!(" ({}× mp)", sig3(theirs / ours))
                }
                _ => String::new(),
            };
            let _ = write!(table, " {}{ratio} |", shown(theirs, outcome, unit));
        }
        table.push('\n');
    }
    table
}

/// The transports of the per-size tables, in column order.
fn transports(results: &Results) -> Vec<(&'static str, &Outcome<Vec<Point>>)> {
    vec![
        ("mp pipe", &results.ours.pipe),
        ("mp Comm", &results.ours_comm),
        ("threads (rayon + mpsc)", &results.threads),
        ("ipc-channel bytes", &results.ipc_channel.bytes),
        ("ipc-channel typed", &results.ipc_channel.typed),
        ("ipc-channel IpcSharedMemory", &results.ipc_channel.shared_memory),
        ("Python Pipe", &results.python.pipe),
        ("C MPI", &results.mpi_c),
        ("mp on MPI", &results.mpi_mp),
        ("mpi4py", &results.mpi4py),
        ("memcpy", &results.memcpy),
    ]
}

/// One table per figure: rows are sizes, columns transports; `show` formats a point.
pub fn per_size_table(results: &Results, show: fn(&Point) -> String) -> String {
    let columns = transports(results);
    let mut table = String::from("| size |");
    for (name, _) in &columns {
        let _ = write!(table, " {name} |");
    }
    table.push_str("\n|---|");
    table.push_str(&"---|".repeat(columns.len()));
    table.push('\n');
    for &bytes in &results.settings.sweep.sizes {
        let _ = write!(table, "| {} |", size(bytes));
        for (_, outcome) in &columns {
            let text = match outcome.value() {
                Some(points) => at_size(points, bytes).map_or("–".to_string(), show),
                None => outcome.absence().to_string(),
            };
            let _ = write!(table, " {text} |");
        }
        table.push('\n');
    }
    table
}

fn latency_cell(point: &Point) -> String {
    format!("{} ({})", sig3(point.one_way_s.median * 1e6), sig3(point.one_way_s.min * 1e6))
}

fn bandwidth_cell(point: &Point) -> String {
    format!("{} ({})", sig3(point.bandwidth_bps / GB), sig3(point.best_bandwidth_bps / GB))
}

/// The overhead of mp's `Communicator` on MPI (`Session::world()`'s `send_bytes` /
/// `recv_bytes_into`) over raw C MPI (`MPI_Send` / `MPI_Recv`), same run, same mpirun.
fn mp_on_mpi(results: &Results) -> String {
    let mut out = String::new();
    for (label, bytes) in [("1 B", 1), ("64 MiB", LARGE)] {
        let mp = point_value(&results.mpi_mp, bytes, one_way);
        let c = point_value(&results.mpi_c, bytes, one_way);
        let line = match (mp, c) {
            (Some(mp), Some(c)) if c > 0.0 => {
                format!("{} against {}: {}x C MPI's one-way time", time(mp), time(c), sig3(mp / c))
            }
            _ => format!(
                "mp on MPI {}, C MPI {}",
                shown(mp, &results.mpi_mp, time),
                shown(c, &results.mpi_c, time)
            ),
        };
        let _ = writeln!(out, "- {label}, one way (median): {line}");
    }
    let _ = writeln!(
        out,
        "\nmp on MPI is mp-mpi's `mp-mpi-pingpong` (`{}`): the same method through \
         `mp::Communicator` (`MPI_Mprobe` + `MPI_Mrecv` per receive, `MPI_Send` per send).",
        crate::mpi::MP_BUILD
    );
    out
}

/// Everything that was skipped or failed, with the reason.
pub fn absences(results: &Results) -> Vec<String> {
    let mut notes = Vec::new();
    let mut note = |what: &str, why: Option<&str>| {
        if let Some(why) = why {
            notes.push(format!("{what}: {why}"));
        }
    };
    for (who, side) in [("mp", &results.ours), ("Python", &results.python)] {
        note(&format!("{who} Pool start-up"), side.pool_start_s.why_not());
        note(&format!("{who} process start-up"), side.process_start_s.why_not());
        note(&format!("{who} map chunksize 1"), side.map_chunksize_1.why_not());
        note(&format!("{who} map default chunksize"), side.map_default.why_not());
        note(&format!("{who} pipe ping-pong"), side.pipe.why_not());
        note(&format!("{who} gather with pool.map"), side.gather_pool_s.why_not());
        note(&format!("{who} gather over pipes"), side.gather_pipes_s.why_not());
        note(&format!("{who} peak memory"), side.memory.why_not());
    }
    note("mp Comm ping-pong", results.ours_comm.why_not());
    note("threads ping-pong", results.threads.why_not());
    for (kind, outcome) in results.ipc_channel.kinds() {
        note(&format!("ipc-channel {kind} ping-pong"), outcome.why_not());
    }
    note("C MPI ping-pong", results.mpi_c.why_not());
    note("mpi4py ping-pong", results.mpi4py.why_not());
    note("mp on MPI ping-pong", results.mpi_mp.why_not());
    note("memcpy", results.memcpy.why_not());
    note("shared-memory flag", results.shared_flag_s.why_not());
    if let Some(loaded) = &results.loaded {
        for (name, pass) in [("bound", &loaded.bound), ("unbound", &loaded.unbound)] {
            note(&format!("loaded, {name}: mp pipe ping-pong"), pass.pipe.why_not());
            note(&format!("loaded, {name}: mp Comm ping-pong"), pass.comm.why_not());
            note(&format!("loaded, {name}: Python Pipe ping-pong"), pass.python_pipe.why_not());
            note(&format!("loaded, {name}: C MPI ping-pong"), pass.mpi_c.why_not());
        }
    }
    dedup_skips(notes)
}

/// Collapses the many identical "skipped" notes of a missing tool into one line per reason.
fn dedup_skips(notes: Vec<String>) -> Vec<String> {
    let mut merged: Vec<(Vec<String>, String)> = Vec::new();
    for note in notes {
        let (what, why) = note
            .split_once(": ")
            .map_or((note.clone(), String::new()), |(a, b)| (a.to_string(), b.to_string()));
        match merged.iter_mut().find(|(_, reason)| *reason == why) {
            Some((whats, _)) => whats.push(what),
            None => merged.push((vec![what], why)),
        }
    }
    merged.into_iter().map(|(whats, why)| format!("{}: {why}", whats.join(", "))).collect()
}

fn versions(results: &Results) -> String {
    let machine = &results.machine;
    let mut parts = vec![machine.rustc.clone().unwrap_or_else(|| "rustc: unknown".into())];
    match &machine.python {
        Some(python) => {
            let numpy =
                machine.numpy.as_deref().map_or("numpy missing".into(), |v| format!("numpy {v}"));
            let mpi4py =
                machine.mpi4py.as_deref().map_or("no mpi4py".into(), |v| format!("mpi4py {v}"));
            parts.push(format!("Python {python}, {numpy}, {mpi4py}"));
        }
        None => parts.push("Python: not measured".into()),
    }
    parts.push(machine.mpi.clone().unwrap_or_else(|| "MPI: not measured".into()));
    parts.push(format!("ipc-channel {}", results.ipc_channel.version));
    parts.join("; ")
}

/// The whole report.
pub fn render(results: &Results) -> String {
    let settings = &results.settings;
    let mut out = String::new();
    let _ = writeln!(out, "# Side by side: mp, Python, MPI and the hardware\n");
    let _ = writeln!(out, "Machine: {}.  ", results.machine.summary());
    let _ = writeln!(out, "Software: {}.  ", versions(results));
    if let Some(revision) = &results.machine.revision {
        let _ = writeln!(out, "mp measured at revision `{revision}`.  ");
    }
    if let Some(note) = results.machine.load_note() {
        let _ = writeln!(out, "{note}  ");
    }
    let _ = writeln!(
        out,
        "Run: `cargo run --release -p mp-bench{}`, {} in all, everything in one run on this machine.\n",
        if settings.quick { " -- --quick" } else { "" },
        time(results.wall_s)
    );
    let _ = writeln!(
        out,
        "Units: 1 µs = 10⁻⁶ s; 1 MB = 10⁶ bytes, 1 MiB = 2²⁰ bytes, 1 GB/s = 10⁹ bytes/s. \
         Times are medians over repetitions, the minimum in brackets. One way = half a round \
         trip; bandwidth = message size / one-way time.\n"
    );
    let _ = writeln!(out, "## Targets (issue 5)\n");
    out.push_str(&targets_table(&checks(results)));
    let _ = writeln!(
        out,
        "\nJudged on medians; where the best runs of both sides give another verdict, the \
         cell says so. MPI's ranks busy-poll on both CPUs: when other jobs run, they lose their \
         CPU and MPI's small-message median grows by microseconds, while its best run stays \
         what the hardware allows."
    );
    let _ = writeln!(out, "\n## mp and Python's multiprocessing\n");
    out.push_str(&side_by_side(results));
    let _ = writeln!(out, "\n## ipc-channel beside mp's pipe\n");
    out.push_str(&ipc_table(results));
    let _ = writeln!(out, "\n## The limits of this machine\n");
    let large_memcpy = point_value(&results.memcpy, LARGE, bandwidth_of);
    let _ = writeln!(
        out,
        "- memcpy, one thread, 64 MiB: {}",
        large_memcpy.map_or(results.memcpy.absence().to_string(), bandwidth)
    );
    let _ = writeln!(
        out,
        "- a flag in shared memory (`SharedArray<u64>`, atomic load/store, both sides busy-waiting), one way: {}",
        cell(&results.shared_flag_s, time_cell)
    );
    let _ = writeln!(
        out,
        "- C MPI, 1 B, one way: {}",
        point_value(&results.mpi_c, 1, one_way).map_or(results.mpi_c.absence().to_string(), time)
    );
    let _ = writeln!(out, "\n## mp's Communicator on MPI against C MPI\n");
    out.push_str(&mp_on_mpi(results));
    let _ = writeln!(out, "\n## One-way latency by message size [µs], median (min)\n");
    out.push_str(&per_size_table(results, latency_cell));
    if let Some(loaded) = &results.loaded {
        let _ = writeln!(out, "\n## Under load: one-way latency, 1 B to 4 KiB (issue 14)\n");
        out.push_str(&loaded_section(loaded, results.machine.cpus_available));
    }
    let _ = writeln!(
        out,
        "\n## Bandwidth by message size [GB/s = 10⁹ B/s], size / median one-way time (size / fastest)\n"
    );
    out.push_str(&per_size_table(results, bandwidth_cell));
    let _ = writeln!(out, "\n![bandwidth against message size](bandwidth.svg)\n");
    out.push_str(&method(results));
    let notes = absences(results);
    if !notes.is_empty() {
        let _ = writeln!(out, "\n## Skipped or failed\n");
        for note in notes {
            let _ = writeln!(out, "- {}", note.replace('\n', " "));
        }
    }
    out
}

/// Under load, mp's median may be at most this many times C MPI's (issue 14).
pub const LOADED_MPI_FACTOR: f64 = 1.5;

/// The loaded verdict for one mp transport at one size: its median at most Python Pipe's
/// and at most [`LOADED_MPI_FACTOR`] × C MPI's. `None` (unknown) when mp's figure or either
/// reference is missing; a reference that is there and beaten is `Some(false)` regardless.
pub fn loaded_met(mp: Option<f64>, python: Option<f64>, mpi: Option<f64>) -> Option<bool> {
    let mp = mp?;
    let beats_python = python.map(|python| mp <= python);
    let beats_mpi = mpi.map(|mpi| mp <= LOADED_MPI_FACTOR * mpi);
    match (beats_python, beats_mpi) {
        (Some(false), _) | (_, Some(false)) => Some(false),
        (Some(true), Some(true)) => Some(true),
        _ => None,
    }
}

fn loaded_ratio(mp: Option<f64>, reference: Option<f64>) -> String {
    match (mp, reference) {
        (Some(mp), Some(reference)) if reference > 0.0 => format!("{}×", sig3(mp / reference)),
        _ => "–".into(),
    }
}

/// What a loaded pass is judged against.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Judged {
    /// The issue-14 target: at most Python Pipe's median and at most [`LOADED_MPI_FACTOR`] ×
    /// C MPI's ([`loaded_met`]). For the bound pass, where every side is placed alike.
    AgainstPythonAndMpi,
    /// At most Python Pipe's median. For the unbound pass: C MPI is shown there, but a
    /// busy-polling MPI whose two ranks land on one CPU is not a target anyone should meet.
    AgainstPython,
}

impl Judged {
    fn met(self, mp: Option<f64>, python: Option<f64>, mpi: Option<f64>) -> Option<bool> {
        match self {
            Judged::AgainstPythonAndMpi => loaded_met(mp, python, mpi),
            Judged::AgainstPython => python.and_then(|python| mp.map(|mp| mp <= python)),
        }
    }
}

/// A loaded pass's table: per size, the medians of mp pipe, mp Comm, Python Pipe and C MPI,
/// mp's ratios to the references, and the verdict for each of mp's two transports.
pub fn loaded_table(pass: &LoadedPass, sizes: &[u64], judged: Judged) -> String {
    let mut table = String::from(
        "| size | mp pipe | mp Comm | Python Pipe | C MPI | pipe / Python | pipe / C MPI | \
         Comm / Python | Comm / C MPI | pipe met? | Comm met? |\n\
         |---|---|---|---|---|---|---|---|---|---|---|\n",
    );
    for &bytes in sizes {
        let get = |points: &Outcome<Vec<Point>>| point_value(points, bytes, one_way);
        let (pipe, comm) = (get(&pass.pipe), get(&pass.comm));
        let (python, mpi) = (get(&pass.python_pipe), get(&pass.mpi_c));
        let show = |value: Option<f64>, points: &Outcome<Vec<Point>>| shown(value, points, time);
        let _ = writeln!(
            table,
            "| {} | {} | {} | {} | {} | {} | {} | {} | {} | {} | {} |",
            size(bytes),
            show(pipe, &pass.pipe),
            show(comm, &pass.comm),
            show(python, &pass.python_pipe),
            show(mpi, &pass.mpi_c),
            loaded_ratio(pipe, python),
            loaded_ratio(pipe, mpi),
            loaded_ratio(comm, python),
            loaded_ratio(comm, mpi),
            verdict_cell(judged.met(pipe, python, mpi)),
            verdict_cell(judged.met(comm, python, mpi)),
        );
    }
    table
}

fn verdict_cell(met: Option<bool>) -> String {
    match met {
        Some(true) => "**met**".into(),
        other => verdict(other).into(),
    }
}

/// How many sizes a loaded pass met, for each of mp's transports, out of how many.
pub fn loaded_summary(pass: &LoadedPass, sizes: &[u64], judged: Judged) -> String {
    let count = |ours: &Outcome<Vec<Point>>| {
        let met = sizes
            .iter()
            .filter(|&&bytes| {
                let get = |points: &Outcome<Vec<Point>>| point_value(points, bytes, one_way);
                judged.met(get(ours), get(&pass.python_pipe), get(&pass.mpi_c)) == Some(true)
            })
            .count();
        format!("{met} of {} sizes", sizes.len())
    };
    format!("Target met at: mp pipe {}, mp Comm {}.", count(&pass.pipe), count(&pass.comm))
}

fn load_text(load: Option<[f64; 3]>) -> String {
    load.map_or("unknown".into(), |load| format!("{:.2}", load[0]))
}

/// The loaded section, beside the quiet one: the bound pass, then the unbound one.
fn loaded_section(loaded: &Loaded, cpus: usize) -> String {
    let mut out = String::new();
    let _ = writeln!(
        out,
        "{} busy processes (normal priority, each spinning on a CPU) ran beside every \
         measurement of this section, on {cpus} CPUs; load average (1 min) {} once they had \
         started, {} at the end. The same ping-pong as the quiet table, from 1 B to 4 KiB, \
         twice: with the two sides of every ping-pong bound to a CPU each, then unbound.\n",
        loaded.busy,
        load_text(loaded.load_before),
        load_text(loaded.load_after),
    );
    let sizes = &loaded.sweep.sizes;
    let bound_to =
        loaded.bound_to.map_or("(not run)".to_string(), |[a, b]| format!("to CPUs {a} and {b}"));
    let _ = writeln!(
        out,
        "### Each side bound to a CPU of its own\n\n\
         Both sides of every ping-pong bound {bound_to} (mp and Python with \
         `sched_setaffinity`, `mp::affinity::set` in Rust), as `mpirun --bind-to core` binds C \
         MPI's two ranks: like against like. Target (issue 14): mp's median one-way time at \
         most Python Pipe's and at most {LOADED_MPI_FACTOR} × C MPI's, at every size.\n"
    );
    out.push_str(&loaded_table(&loaded.bound, sizes, Judged::AgainstPythonAndMpi));
    let _ =
        writeln!(out, "\n{}\n", loaded_summary(&loaded.bound, sizes, Judged::AgainstPythonAndMpi));
    let _ = writeln!(
        out,
        "### Unbound, where the kernel puts them\n\n\
         Nothing bound (C MPI with `--bind-to none`), as a program runs that does not bind: \
         the kernel often puts both sides of a ping-pong on one CPU, where they take turns. \
         mp's waits then sleep at once instead of spinning (a spinning MPI rank keeps its \
         partner off the CPU for a time slice). Target: mp's median at most Python Pipe's.\n"
    );
    out.push_str(&loaded_table(&loaded.unbound, sizes, Judged::AgainstPython));
    let _ = writeln!(out, "\n{}", loaded_summary(&loaded.unbound, sizes, Judged::AgainstPython));
    out
}

fn method(results: &Results) -> String {
    let settings = &results.settings;
    let sweep = &settings.sweep;
    let mpirun = results.mpirun.as_deref().unwrap_or("mpirun");
    format!(
        "## Method\n\n\
         - Start-up: {warm} untimed then {reps} timed repetitions. `Pool(4)` is timed from before \
         its creation until a first `map` of one trivial task has returned; shutting the pool \
         down is outside the timer. Python uses the fork start method.\n\
         - Per task: one untimed `map` of a tenth of the items, then {map_reps} timed `map`s of a trivial task (returns its \
         argument) over {tasks} items on a started `Pool(4)`; per task = map time / items.\n\
         - Ping-pong (every transport, the same steps in Rust, Python and C): for each size, \
         warm up (at least 2 round trips, a tenth of the time budget), then {samples} timed batches \
         sized to fill {budget} s; a sample is batch time / (2 × round trips). mp: `mp::pipe` \
         `send_bytes`/`recv_bytes_into` (into a reused buffer) to an echoing `Process`, and `Comm` between 2 ranks of \
         `mp::launch`. Threads: 2 rayon threads, std `mpsc` channels, the message moved and \
         copied once into the receiver's buffer. ipc-channel {ipc_version}: a copy of mp-bench \
         started as the echoing child, connected through `IpcOneShotServer` (under a watchdog); \
         `IpcBytesSender::send(&[u8])` / `IpcBytesReceiver::recv()`, typed \
         `IpcSender<Vec<u8>>` (postcard), and `IpcSender<IpcSharedMemory>` with a new region \
         per message each way (`IpcSharedMemory::from_bytes`, read back by copying). Python: `Pipe()` `send_bytes`/`recv_bytes` \
         with a forked echo process. MPI: `MPI_Send`/`MPI_Recv` of `MPI_BYTE`, built with \
         `mpicc -O2`, run as `{mpirun}` (ranks bound to one core each; Open MPI's shared-memory \
         transport busy-polls); mpi4py: `Send`/`Recv` on buffers. memcpy: `copy_from_slice` between \
         two buffers already written, one thread; its one-way time is one copy.\n\
         - Gather: 4 workers each make an array of {len} f64 (8 MB) and the parent receives all 4 \
         ({gather_reps} timed after one untimed): `pool.map` returning `Vec<f64>` (Python: numpy \
         arrays), and 4 started processes answering a request on their own pipe with \
         `send_slice` / `recv_vec` (Python: `send_bytes(array)` / `numpy.frombuffer(recv_bytes())`).\n\
         - Peak memory: one {memory} message with `send_bytes` from one fresh process to \
         another; each side reads its `VmHWM` (peak resident memory, as `getrusage`'s \
         `ru_maxrss`) from /proc/self/status before and after. `+` is the peak above the \
         process's own baseline.\n\
         - Shared-memory flag: {flag_samples} batches of {flag_batch} round trips after one untimed batch.\n\
         - With `--load N`: N busy copies of mp-bench, then the ping-pong from 1 B to \
         4 KiB with at least 0.2 s and 11 batches per size, twice; each time the four \
         transports take turns, in {rounds} rounds of 1/{rounds} of the time and batches each, and \
         a size's median is over the batches of all rounds. Bound: the measuring side \
         and the echoing side each bound to one CPU (the first two this process may use; \
         `mp::affinity::set` in Rust, `os.sched_setaffinity` in Python, `mpirun --bind-to core` \
         for C MPI). Unbound: nothing bound, C MPI with `--bind-to none`. The quiet tables \
         above bind only C MPI and mpi4py (mpirun's default for two ranks).\n\
         - The machine is shared and noisy (other jobs compile on the same 2 CPUs): compare \
         figures of one run, and expect 1.2-1.7× run-to-run spread on small-message latencies.\n",
        ipc_version = results.ipc_channel.version,
        rounds = crate::run::LOADED_ROUNDS,
        warm = settings.startup_warm_up,
        reps = settings.startup_reps,
        map_reps = settings.map_reps,
        tasks = settings.map_tasks,
        samples = sweep.samples,
        budget = sweep.budget_s,
        len = settings.gather_len,
        gather_reps = settings.gather_reps,
        memory = size(settings.memory_bytes),
        flag_samples = settings.flag_samples,
        flag_batch = settings.flag_batch,
    )
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use crate::{
        machine::Machine,
        memory::SideMemory,
        results::{IpcChannel, Loaded, PerTask, Settings},
        sweep::{Point, RawPoint},
    };

    fn summary(values: &[f64]) -> Summary {
        Summary::of(values).unwrap()
    }

    fn points(sizes: &[u64], one_way_s: impl Fn(u64) -> f64) -> Outcome<Vec<Point>> {
        let raw: Vec<RawPoint> = sizes
            .iter()
            .map(|&bytes| RawPoint { bytes, batch: 1, one_way_s: vec![one_way_s(bytes)] })
            .collect();
        Outcome::Measured { value: Point::all_from_raw(&raw).unwrap() }
    }

    fn side(scale: f64, sizes: &[u64]) -> Side {
        let memory = MemoryPeak {
            message_bytes: 256 << 20,
            sender: SideMemory { baseline_bytes: 10 << 20, peak_bytes: (10 << 20) + (256 << 20) },
            receiver: SideMemory { baseline_bytes: 10 << 20, peak_bytes: (10 << 20) + (512 << 20) },
        };
        Side {
            pool_start_s: Outcome::Measured { value: summary(&[5e-3 * scale]) },
            process_start_s: Outcome::Measured { value: summary(&[2e-3 * scale]) },
            map_chunksize_1: Outcome::Measured {
                value: PerTask::new(100_000, 1, summary(&[1.0 * scale])),
            },
            map_default: Outcome::Measured {
                value: PerTask::new(100_000, 6250, summary(&[0.004 * scale])),
            },
            pipe: points(sizes, |bytes| 10e-6 * scale + bytes as f64 / (2e9 / scale)),
            gather_pool_s: Outcome::Measured { value: summary(&[0.01 * scale]) },
            gather_pipes_s: Outcome::skipped("numpy is missing; install it"),
            memory: Outcome::Measured { value: memory },
        }
    }

    /// Under load: mp pipe beats Python and 1.5 × MPI up to 64 B only, mp Comm nowhere
    /// against MPI, and Python was not measured at 4 KiB.
    /// Unbound, mp pipe 6 µs everywhere, Comm 9 µs, Python 8 µs and C MPI 700 µs.
    fn sample_loaded(settings: &Settings) -> Loaded {
        let plan = Loaded::plan(&settings.sweep);
        let sizes = plan.sizes.clone();
        let python_sizes: Vec<u64> = sizes.iter().copied().filter(|&b| b != 4096).collect();
        Loaded {
            busy: 2,
            sweep: plan,
            load_before: Some([3.9, 2.0, 1.0]),
            load_after: Some([4.1, 2.5, 1.2]),
            bound_to: Some([0, 1]),
            bound: LoadedPass {
                pipe: points(&sizes, |bytes| if bytes <= 64 { 1e-6 } else { 20e-6 }),
                comm: points(&sizes, |_| 5e-6),
                python_pipe: points(&python_sizes, |_| 8e-6),
                mpi_c: points(&sizes, |_| 1e-6),
            },
            unbound: LoadedPass {
                pipe: points(&sizes, |_| 6e-6),
                comm: points(&sizes, |_| 9e-6),
                python_pipe: points(&sizes, |_| 8e-6),
                mpi_c: points(&sizes, |_| 700e-6),
            },
        }
    }

    /// Results with mp twice as fast as Python everywhere, MPI at 1 µs, memcpy at 10 GB/s.
    pub(crate) fn sample_results() -> Results {
        let settings = Settings::new(true);
        let sizes = settings.sweep.sizes.clone();
        Results {
            machine: Machine {
                cpu: "Test CPU".into(),
                cpus_listed: 2,
                cpus_available: 2,
                ..Machine::default()
            },
            ours: side(1.0, &sizes),
            ours_comm: points(&sizes, |bytes| 11e-6 + bytes as f64 / 2e9),
            threads: Outcome::Failed { error: "the echo thread is gone".into() },
            ipc_channel: IpcChannel {
                version: "0.23.1".into(),
                bytes: points(&sizes, |bytes| 5e-6 + bytes as f64 / 1e9),
                typed: Outcome::Failed { error: "the echo child was killed".into() },
                shared_memory: points(&sizes, |bytes| 30e-6 + bytes as f64 / 1e9),
            },
            python: side(2.0, &sizes),
            mpi_c: points(&sizes, |bytes| 1e-6 + bytes as f64 / 6e9),
            mpi4py: Outcome::skipped("mpi4py is not installed"),
            mpi_mp: points(&sizes, |bytes| 1.2e-6 + bytes as f64 / 5e9),
            mpirun: Some("mpirun -np 2".into()),
            memcpy: points(&sizes, |bytes| bytes as f64 / 10e9),
            shared_flag_s: Outcome::Measured { value: summary(&[5e-8, 6e-8]) },
            loaded: Some(sample_loaded(&settings)),
            settings,
            wall_s: 12.5,
        }
    }

    #[test]
    fn the_loaded_verdict_needs_both_references_and_beats_both() {
        // At most Python, at most 1.5 x C MPI: both hold, including equality.
        assert_eq!(loaded_met(Some(1.0), Some(2.0), Some(1.0)), Some(true));
        assert_eq!(loaded_met(Some(1.5), Some(1.5), Some(1.0)), Some(true));
        // Slower than Python, or than 1.5 x MPI: not met.
        assert_eq!(loaded_met(Some(2.0), Some(1.9), Some(10.0)), Some(false));
        assert_eq!(loaded_met(Some(1.6), Some(10.0), Some(1.0)), Some(false));
        // A missing figure: unknown, unless a reference that is there is already beaten.
        assert_eq!(loaded_met(None, Some(1.0), Some(1.0)), None);
        assert_eq!(loaded_met(Some(1.0), None, Some(1.0)), None);
        assert_eq!(loaded_met(Some(1.0), Some(2.0), None), None);
        assert_eq!(loaded_met(Some(3.0), None, Some(1.0)), Some(false));
    }

    #[test]
    fn the_loaded_section_has_a_row_per_size_and_counts_the_verdicts() {
        let results = sample_results();
        let loaded = results.loaded.as_ref().unwrap();
        let sizes = &loaded.sweep.sizes;
        let table = loaded_table(&loaded.bound, sizes, Judged::AgainstPythonAndMpi);
        assert_eq!(table.lines().count(), 2 + loaded.sweep.sizes.len());
        let row = |size: &str| {
            table.lines().find(|line| line.starts_with(&format!("| {size} |"))).unwrap().to_string()
        };
        // 1 B: pipe 1 µs against Python 8 µs and MPI 1 µs: met; Comm 5 µs > 1.5 µs: not.
        assert!(row("1 B").ends_with("| **met** | not met |"), "{}", row("1 B"));
        // 256 B: pipe 20 µs is slower than Python.
        assert!(
            row("256 B").contains("| 2.50× |") && row("256 B").ends_with("| not met | not met |")
        );
        // 4 KiB: Python missing; the pipe is beaten by MPI anyway, so that is still a verdict.
        assert!(row("4 KiB").contains("| – |") && row("4 KiB").ends_with("| not met | not met |"));
        assert_eq!(
            loaded_summary(&loaded.bound, sizes, Judged::AgainstPythonAndMpi),
            "Target met at: mp pipe 5 of 8 sizes, mp Comm 0 of 8 sizes."
        );
        // Unbound, only Python is the reference: C MPI's 700 µs is shown, not a target.
        let unbound = loaded_table(&loaded.unbound, sizes, Judged::AgainstPython);
        assert!(
            unbound
                .lines()
                .nth(2)
                .unwrap()
                .ends_with("| 0.750× | 0.00857× | 1.12× | 0.0129× | **met** | not met |"),
            "{unbound}"
        );
        assert_eq!(
            loaded_summary(&loaded.unbound, sizes, Judged::AgainstPython),
            "Target met at: mp pipe 8 of 8 sizes, mp Comm 0 of 8 sizes."
        );
        let report = render(&results);
        assert!(report.contains("## Under load: one-way latency, 1 B to 4 KiB (issue 14)"));
        assert!(report.contains("### Each side bound to a CPU of its own"));
        assert!(report.contains("bound to CPUs 0 and 1"));
        assert!(report.contains("### Unbound, where the kernel puts them"));
        assert!(report.contains("2 busy processes"));
        assert!(
            report.contains("load average (1 min) 3.90 once they had started, 4.10 at the end")
        );
        // Without a loaded part, no section.
        let quiet = Results { loaded: None, ..results };
        assert!(!render(&quiet).contains("Under load"));
    }

    #[test]
    fn numbers_keep_three_significant_digits_and_their_unit() {
        assert_eq!(sig3(123.456), "123");
        assert_eq!(sig3(12.345), "12.3");
        assert_eq!(sig3(1.2345), "1.23");
        assert_eq!(sig3(0.12345), "0.123");
        assert_eq!(sig3(0.0), "0");
        assert_eq!(sig3(0.0123), "0.0123");
        assert_eq!(sig3(4.17e-5), "0.0000417");
        assert_eq!(sig3(9.9988), "10.0");
        assert_eq!(sig3(-0.5), "-0.500");
        assert_eq!(sig3(12345.6), "12346");
        assert_eq!(time(9.61e-6), "9.61 µs");
        assert_eq!(time(4.88e-3), "4.88 ms");
        assert_eq!(time(3.7e-7), "370 ns");
        assert_eq!(time(2.5), "2.50 s");
        assert_eq!(bandwidth(1.64e9), "1.64 GB/s");
        assert_eq!(size(1), "1 B");
        assert_eq!(size(8), "8 B");
        assert_eq!(size(64 << 10), "64 KiB");
        assert_eq!(size(64 << 20), "64 MiB");
        assert_eq!(size(1000), "1000 B");
        assert_eq!(mebibytes(256 << 20), "256 MiB");
    }

    #[test]
    fn checks_compare_against_the_right_reference() {
        let results = sample_results();
        let checks = checks(&results);
        let pool = &checks[0];
        assert_eq!(pool.target_text(), "≤ 1/3 × Python");
        assert_eq!(pool.ratio(), Some(0.5));
        assert_eq!(pool.met(), Some(false)); // half of Python is not a third
        let default_chunk = &checks[2];
        assert_eq!(default_chunk.met(), Some(true));
        let latency = &checks[3];
        assert_eq!(latency.reference_name, "C MPI");
        assert_eq!(latency.met(), Some(false)); // 10 µs against 2 x 1 µs
        let versus_memcpy = &checks[5];
        assert_eq!(versus_memcpy.relation, Relation::AtLeast);
        assert_eq!(versus_memcpy.target_text(), "≥ 0.9 × memcpy");
        // mpi4py was skipped, so the bandwidth target falls back to C MPI.
        assert_eq!(checks[6].reference_name, "C MPI");
        let pipes_gather = &checks[8];
        assert_eq!((pipes_gather.met(), pipes_gather.ratio()), (None, None));
    }

    #[test]
    fn at_least_and_at_most_decide_met() {
        let figure = |median| Some(Figure { median, best: median });
        let mut check = Check {
            what: "x".into(),
            ours: figure(9.0),
            reference: figure(10.0),
            reference_name: "memcpy".into(),
            factor: 0.9,
            relation: Relation::AtLeast,
            unit: bandwidth,
            python: "–".into(),
            mpi: "–".into(),
            limit: "–".into(),
        };
        assert_eq!(check.met(), Some(true));
        check.ours = figure(8.9);
        assert_eq!(check.met(), Some(false));
        check.ours = Some(Figure { median: 8.9, best: 9.5 });
        assert_eq!((check.met(), check.met_best()), (Some(false), Some(true)));
        assert!(
            targets_table(std::slice::from_ref(&check)).contains("| not met (best runs: met) |")
        );
        check.relation = Relation::AtMost;
        assert_eq!(check.met(), Some(true));
        check.reference = None;
        assert_eq!(check.met(), None);
    }

    #[test]
    fn the_report_has_every_section_and_says_why_things_are_missing() {
        let report = render(&sample_results());
        for heading in [
            "# Side by side: mp, Python, MPI and the hardware",
            "## Targets (issue 5)",
            "## mp and Python's multiprocessing",
            "## One-way latency by message size",
            "## Bandwidth by message size",
            "## Method",
            "## Skipped or failed",
        ] {
            assert!(report.contains(heading), "missing {heading}");
        }
        assert!(report.contains("Machine: Test CPU, 2 CPUs"));
        assert!(report.contains("1 MB = 10⁶ bytes, 1 MiB = 2²⁰ bytes"));
        assert!(report.contains(
            "| pipe, 1 B, one way | 10.0 µs | 20.0 µs | C 1.00 µs, mpi4py skipped | \
             shared flag 55.0 ns | ≤ 2 × C MPI = 2.00 µs | 10.0× C MPI (best runs 10.0×) | not met |"
        ));
        assert!(
            report.contains("| `Pool(4)` ready + first one-item map | 5.00 ms | 10.0 ms | – | – |")
        );
        assert!(report.contains("numpy is missing; install it"));
        assert!(report.contains("threads ping-pong: the echo thread is gone"));
        assert!(report.contains("ipc-channel typed ping-pong: the echo child was killed"));
        assert!(report.contains("## ipc-channel beside mp's pipe"));
        assert!(report.contains("ipc-channel 0.23.1"));
        assert!(report.contains("| 64 MiB |"));
        assert!(report.contains("![bandwidth against message size](bandwidth.svg)"));
    }

    #[test]
    fn the_ipc_channel_table_compares_with_mp_pipe() {
        let table = ipc_table(&sample_results());
        assert!(table.contains("| 1 B, one way (median) | 10.0 µs | 5.00 µs (0.500× mp) | failed | 30.0 µs (3.00× mp) |"), "{table}");
        assert!(table.contains("| 64 MiB, bandwidth (size / median one way) | 2.00 GB/s | 1.00 GB/s (0.500× mp) | failed | 1.00 GB/s (0.500× mp) |"), "{table}");
    }

    #[test]
    fn identical_skip_reasons_are_merged() {
        let mut results = sample_results();
        results.python = Side::skipped("python3 not found; install it");
        let notes = absences(&results);
        let python: Vec<&String> =
            notes.iter().filter(|n| n.contains("python3 not found")).collect();
        assert_eq!(python.len(), 1);
        assert!(python[0].starts_with("Python Pool start-up, Python process start-up"));
    }

    #[test]
    fn the_side_by_side_table_has_ratios_and_memory() {
        let table = side_by_side(&sample_results());
        assert!(table.contains("| `Pool(4)` ready + first one-item map | 5.00 ms (5.00 ms) | 10.0 ms (10.0 ms) | 0.500× |"), "{table}");
        assert!(table.contains("default chunksize (6250), per task (100000 tasks)"));
        assert!(table.contains("266 MiB peak, +256 MiB = 1.00× the message"));
        assert!(table.contains(
            "| gather 4 × 1000000 f64, 4 started processes, one pipe each | skipped | skipped | – |"
        ));
    }
}
