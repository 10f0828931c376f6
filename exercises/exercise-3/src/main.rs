//! Exercise 3: gather a value from every rank on rank 0, three ways, and compare.
//!
//! Runs (a) the shared sending end, (b) the star of connections and (c) the queue, each
//! `--repeat` times, checks every result against what each rank computes, and prints what
//! happened: the error mp gave for (a) when the writers' bytes interleaved, the arrival
//! orders of (c), and a summary of the gathered vectors.

use std::process::ExitCode;

use clap::Parser;
use gather::{gather_queue, gather_shared_end, gather_star, rank_value};
use mp::units::Bytes;

/// Gathers a vector of f64 from every rank on rank 0: (a) all ranks writing into one shared
/// sending end, (b) one connection per rank (a star around rank 0), (c) through a Queue.
#[derive(Parser)]
#[command(name = "exercise-3", version)]
struct Args {
    /// Number of ranks, rank 0 (this process) included.
    #[arg(long, default_value_t = 4, value_parser = clap::value_parser!(u16).range(1..=gather::MAX_RANKS as i64))]
    ranks: u16,
    /// Length of each rank's vector, in f64 numbers (8 bytes each). (a) goes wrong once the
    /// messages no longer fit together in the pipe's buffer (208 KiB by default on Linux):
    /// from about 20 000 numbers with 3 writers.
    #[arg(long, default_value_t = 100_000, value_parser = clap::value_parser!(u32).range(1..=10_000_000))]
    len: u32,
    /// How many times to run each gather (the outcome of (a) and the arrival order of (c)
    /// change from run to run).
    #[arg(long, default_value_t = 4, value_parser = clap::value_parser!(u16).range(1..=1000))]
    repeat: u16,
}

/// At most this many runs of (a) when the interleaving has not shown within --repeat runs.
const SHOW_ATTEMPTS: u16 = 25;

fn run(args: Args) -> course::Result {
    let (n_ranks, len) = (usize::from(args.ranks), args.len as usize);
    let expected: Vec<Vec<f64>> = (0..n_ranks).map(|rank| rank_value(rank, len)).collect();
    let vector = Bytes(len as u64 * 8);
    println!(
        "Gathering {n_ranks} ranks' vectors of {len} f64 ({vector} each) on rank 0, \
         {} time(s) each way.\n",
        args.repeat
    );

    println!("(a) ranks 1..{n_ranks} all write into ONE shared sending end:");
    let (mut whole, mut refused, mut run) = (0, 0, 0);
    // The interleaving is a race: keep going past --repeat until it shows (or give up).
    while run < args.repeat || (refused == 0 && n_ranks > 2 && run < SHOW_ATTEMPTS) {
        run += 1;
        match gather_shared_end(n_ranks, len) {
            Ok(values) if values == expected => {
                whole += 1;
                // Past --repeat, only the run that finally shows the problem is printed.
                if run <= args.repeat {
                    println!("  run {run}: every vector arrived whole");
                }
            }
            Ok(_) => {
                return Err("(a) returned vectors that differ from what the ranks computed: \
                     the gather must refuse a damaged message, not return it"
                    .into());
            }
            Err(error) => {
                refused += 1;
                println!("  run {run}: refused: {error}");
            }
        }
    }
    println!(
        "  {whole} run(s) whole, {refused} refused because the writers' bytes interleaved, \
         none with wrong data."
    );
    if refused == 0 && n_ranks > 2 {
        println!(
            "  No interleaving in {run} runs: mp's pipes lock their shared-memory ring for each \
             message, so writers sharing one end take turns (Python's Connection has no such \
             lock, and there the same program reads garbage). The tag is still needed: the \
             arrival order is not the rank order."
        );
    } else if n_ranks <= 2 {
        println!("  (With one writer nothing can interleave: try --ranks 4.)");
    }

    println!("\n(b) a star: one connection between rank 0 and each rank:");
    let star = gather_star(n_ranks, len)?;
    check("(b)", &star, &expected)?;
    for _ in 1..args.repeat {
        check("(b)", &gather_star(n_ranks, len)?, &expected)?;
    }
    println!("  {} run(s), every one in rank order and exact.", args.repeat);

    println!("\n(c) through a Queue, tagged with the rank:");
    let mut orders = std::collections::BTreeSet::new();
    for run in 1..=args.repeat {
        let gathered = gather_queue(n_ranks, len)?;
        check("(c)", &gathered.values, &expected)?;
        println!(
            "  run {run}: arrival order {:?}, restored to rank order: identical to (b)",
            gathered.arrival
        );
        orders.insert(gathered.arrival);
    }
    println!(
        "  {} different arrival order(s) in {} run(s); the same vectors every time.",
        orders.len(),
        args.repeat
    );

    println!("\nWhat rank 0 gathered (same for (b), (c), and every whole run of (a)):");
    let mut table = course::Table::new(&["rank", "numbers", "first", "last", "sum"]);
    for (rank, values) in star.iter().enumerate() {
        let first = values.first().copied().unwrap_or(f64::NAN);
        let last = values.last().copied().unwrap_or(f64::NAN);
        table.row([
            rank.to_string(),
            values.len().to_string(),
            first.to_string(),
            last.to_string(),
            values.iter().sum::<f64>().to_string(),
        ]);
    }
    print!("{table}");
    Ok(())
}

/// Refuses a gather result that is not exactly every rank's vector in rank order.
fn check(which: &str, got: &[Vec<f64>], expected: &[Vec<f64>]) -> course::Result {
    if got.len() != expected.len() {
        return Err(format!(
            "{which} gathered {} vectors, not one per rank ({})",
            got.len(),
            expected.len()
        )
        .into());
    }
    for (rank, (got, expected)) in got.iter().zip(expected).enumerate() {
        if got != expected {
            return Err(format!(
                "{which}: the vector in place {rank} is not rank {rank}'s (its first number is {:?}; rank {rank}'s starts with {:?})",
                got.first(), expected.first()
            )
            .into());
        }
    }
    Ok(())
}

fn main() -> ExitCode {
    course::run(run)
}
