//! Exercise 1: times `pool.map(hard_work, range(n))` with a Pool, by hand and with threads for
//! 1..N workers, prints the speed-ups, and draws which worker ran which item when.
//!
//! Run `cargo run -p exercise-1 -- --help` for the flags.

use std::{
    path::PathBuf,
    process::ExitCode,
    time::{Duration, Instant},
};

use clap::Parser;
use mp::plot::{Bar, Timeline};
use pool_map::{Traced, by_hand, serial, with_pool, with_threads, work_units};

/// Times pool.map(hard_work, range(N)) with a Pool, by hand (array_split + one Process per
/// part) and with threads, for 1 to --workers workers, and draws a timeline of the Pool's
/// workers with the chosen chunk size and with chunk size 1.
#[derive(Parser)]
struct Args {
    /// Largest number of workers (processes or threads) to time; every count from 1 up to it
    /// is measured.
    #[arg(long, default_value_t = default_workers(), value_parser = clap::value_parser!(u32).range(1..=64))]
    workers: u32,

    /// Number of items to map: hard_work(0), ..., hard_work(items - 1). Item i costs i + 1
    /// units of work, so the run time grows with the square of this.
    #[arg(long, default_value_t = 20, value_parser = clap::value_parser!(u64).range(1..=200))]
    items: u64,

    /// Chunk size of the Pool's map (Python's chunksize=). Default: Python's default,
    /// ceil(items / (4 * workers)).
    #[arg(long, value_parser = clap::value_parser!(u64).range(1..=10_000))]
    chunksize: Option<u64>,

    /// Where to draw the timeline (SVG) of which worker ran which item when.
    #[arg(long, default_value = "target/course/exercise-1/timeline.svg", value_parser = course::writable_path)]
    timeline: PathBuf,

    /// Where to write the table of times and speed-ups (CSV).
    #[arg(long, default_value = "target/course/exercise-1/speedup.csv", value_parser = course::writable_path)]
    csv: PathBuf,
}

fn default_workers() -> u32 {
    mp::cpu_count().clamp(1, 64) as u32
}

fn main() -> ExitCode {
    course::run(run)
}

fn run(args: Args) -> course::Result {
    let max_workers = args.workers as usize;
    let n_items = args.items;
    let chunksize = args.chunksize.map(|c| c as usize);
    let total_units: u64 = (0..n_items).map(work_units).sum();

    println!(
        "hard_work(i) costs i + 1 units: items 0..{n_items} cost {total_units} units, the last \
         one {} units. This machine has {} CPUs.",
        work_units(n_items - 1),
        mp::cpu_count()
    );
    if cfg!(debug_assertions) {
        println!("(figures from a debug build; add --release)");
    }

    let started = Instant::now();
    let expected = serial(n_items);
    let serial_time = started.elapsed();
    println!("\nserial: {} ms (the baseline of every speed-up below)\n", millis(serial_time));

    let mut table = course::Table::new(&[
        "workers",
        "Pool [ms]",
        "by hand [ms]",
        "threads [ms]",
        "Pool speed-up",
        "by-hand speed-up",
        "threads speed-up",
        "array_split bound",
    ]);
    let progress = course::progress(max_workers as u64, "timing 1 to --workers workers");
    let mut last_pool_run = None;
    for workers in 1..=max_workers {
        let started = Instant::now();
        let pooled = with_pool(workers, n_items, chunksize)?;
        let pool_time = started.elapsed();
        check("with_pool", &pooled.results, &expected)?;

        let started = Instant::now();
        let hand = by_hand(workers, n_items)?;
        let hand_time = started.elapsed();
        check("by_hand", &hand, &expected)?;

        let started = Instant::now();
        let threaded = with_threads(workers, n_items)?;
        let thread_time = started.elapsed();
        check("with_threads", &threaded, &expected)?;

        table.row([
            workers.to_string(),
            millis(pool_time),
            millis(hand_time),
            millis(thread_time),
            speedup(serial_time, pool_time),
            speedup(serial_time, hand_time),
            speedup(serial_time, thread_time),
            format!("{:.2}", static_split_bound(n_items, workers)?),
        ]);
        last_pool_run = Some(pooled);
        progress.inc(1);
    }
    progress.finish_and_clear();
    print!("{table}");
    println!(
        "speed-up = serial time / time. Every time includes starting the processes or threads. \
         array_split bound = total work / work of the largest part: the best speed-up a static \
         split can reach, however fast processes start."
    );
    table.write_csv(&args.csv)?;
    println!("wrote {}", args.csv.display());

    // The timeline: the last (widest) Pool run above, and the same with chunksize 1.
    let chosen = last_pool_run.expect("at least one worker count was timed");
    let chosen_chunksize = match chunksize {
        Some(chunksize) => chunksize,
        None => mp::split::default_chunksize(n_items as usize, max_workers)?,
    };
    let one_by_one = with_pool(max_workers, n_items, Some(1))?;
    check("with_pool", &one_by_one.results, &expected)?;

    println!("\nWhich worker of Pool({max_workers}) ran which items:");
    let runs = [(chosen_chunksize, &chosen), (1, &one_by_one)];
    for (chunksize, traced) in runs {
        describe(chunksize, max_workers, traced);
    }
    draw_timeline(&args.timeline, max_workers, n_items, &runs)?;
    println!("wrote {} (one row per worker, one bar per item)", args.timeline.display());
    Ok(())
}

/// Refuses results that differ from the serial run, saying where.
fn check(what: &str, results: &[u64], expected: &[u64]) -> course::Result {
    if results.len() != expected.len() {
        return Err(format!(
            "{what} returned {} results for {} items; it must return one per item",
            results.len(),
            expected.len()
        )
        .into());
    }
    if let Some(index) = results.iter().zip(expected).position(|(got, want)| got != want) {
        return Err(format!(
            "{what} returned {} for item {index} where the serial run gives {}: results must be \
             hard_work(i), in input order",
            results[index], expected[index]
        )
        .into());
    }
    Ok(())
}

/// Total work over the work of the largest part of `np.array_split(range(n_items), workers)`.
fn static_split_bound(n_items: u64, workers: usize) -> course::Result<f64> {
    let parts = mp::split::split_ranges(n_items as usize, workers)?;
    let part_units = |range: &std::ops::Range<usize>| -> u64 {
        range.clone().map(|i| work_units(i as u64)).sum()
    };
    let total: u64 = (0..n_items).map(work_units).sum();
    let largest = parts.iter().map(part_units).max().unwrap_or(total).max(1);
    Ok(total as f64 / largest as f64)
}

/// One line per worker: how many items and units of work it ran, and which items.
fn describe(chunksize: usize, n_workers: usize, traced: &Traced<u64>) {
    println!("  chunksize {chunksize}:");
    for worker in 0..n_workers {
        let items: Vec<u64> = traced
            .tasks
            .iter()
            .filter(|task| task.worker == worker)
            .map(|task| task.index as u64)
            .collect();
        let units: u64 = items.iter().copied().map(work_units).sum();
        println!(
            "    worker {worker}: {:3} items, {units:4} units of work: {items:?}",
            items.len()
        );
    }
}

/// Both traced runs in one chart, on the same time axis: one row per worker and run.
fn draw_timeline(
    path: &std::path::Path,
    n_workers: usize,
    n_items: u64,
    runs: &[(usize, &Traced<u64>)],
) -> course::Result {
    let mut rows = Vec::new();
    let mut bars = Vec::new();
    for (run, (chunksize, traced)) in runs.iter().enumerate() {
        for worker in 0..n_workers {
            rows.push(format!("chunksize {chunksize}, worker {worker}"));
        }
        for task in &traced.tasks {
            bars.push(Bar {
                row: run * n_workers + task.worker,
                start: task.start.as_secs_f64() * 1e3,
                end: task.end.as_secs_f64() * 1e3,
                label: task.index.to_string(),
            });
        }
    }
    let timeline = Timeline {
        title: format!(
            "Pool({n_workers}).map(hard_work, range({n_items})): which worker ran which item"
        ),
        time_label: "time since the map started [ms]".into(),
        rows,
        bars,
    };
    timeline.write_svg(path)?;
    Ok(())
}

fn millis(duration: Duration) -> String {
    format!("{:.1}", duration.as_secs_f64() * 1e3)
}

fn speedup(baseline: Duration, time: Duration) -> String {
    format!("{:.2}", baseline.as_secs_f64() / time.as_secs_f64().max(1e-9))
}
