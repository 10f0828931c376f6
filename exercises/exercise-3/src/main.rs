//! Exercise 3: gather a value from every rank on rank 0, three ways, and compare.
//!
//! Runs (a) the shared sending end, (b) the star of connections and (c) the queue, each
//! `--repeat` times, checks every result against what each rank computes, and prints what
//! happened: the error mp gave for (a) when the writers' bytes interleaved, the arrival
//! orders of (c), and a summary of the gathered vectors. Under `mpirun` (built with
//! `--features mpi`) only (b) runs, on MPI's ranks: (a) and (c) are about a local pipe and a
//! local queue.

use std::process::ExitCode;

use clap::Parser;
use gather::{gather, gather_queue, gather_shared_end, gather_star, rank_value};
use mp::{Comm, Communicator, units::Bytes};

/// Gathers a vector of f64 from every rank on rank 0: (a) all ranks writing into one shared
/// sending end, (b) one connection per rank (a star around rank 0), (c) through a Queue.
/// Under mpirun: (b) over MPI's ranks.
#[derive(Parser)]
#[command(name = "exercise-3", version)]
struct Args {
    /// Number of ranks, rank 0 (this process) included; 4 if not given. Under mpirun the
    /// ranks are mpirun's `-n`.
    #[arg(long, value_parser = clap::value_parser!(u16).range(1..=gather::MAX_RANKS as i64))]
    ranks: Option<u16>,
    /// Length of each rank's vector, in f64 numbers (8 bytes each). (a) goes wrong once the
    /// messages no longer fit together in the pipe's buffer (208 KiB by default on Linux):
    /// from about 20 000 numbers with 3 writers.
    #[arg(long, default_value_t = 100_000, value_parser = clap::value_parser!(u32).range(1..=10_000_000))]
    len: u32,
    /// How many times to run each gather (the outcome of (a) and the arrival order of (c)
    /// change from run to run).
    #[arg(long, default_value_t = 4, value_parser = clap::value_parser!(u16).range(1..=1000))]
    repeat: u16,
    /// Which gathers to run: `all`, or some of `a` (one shared sending end), `b` (a star),
    /// `c` (a Queue), comma-separated. Under mpirun only `b` runs.
    #[arg(long, default_value = "all", value_parser = parse_ways)]
    way: Ways,
}

/// The gathers chosen on the command line.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
struct Ways {
    a: bool,
    b: bool,
    c: bool,
}

fn parse_ways(text: &str) -> Result<Ways, String> {
    if text == "all" {
        return Ok(Ways { a: true, b: true, c: true });
    }
    let mut ways = Ways { a: false, b: false, c: false };
    for name in text.split(',') {
        match name.trim() {
            "a" => ways.a = true,
            "b" => ways.b = true,
            "c" => ways.c = true,
            other => {
                return Err(format!(
                    "`{other}` is not a gather; use `all` or some of a, b, c (comma-separated)"
                ));
            }
        }
    }
    Ok(ways)
}

/// The number of ranks without --ranks (and without mpirun).
const DEFAULT_RANKS: usize = 4;

/// At most this many runs of (a) when the interleaving has not shown within --repeat runs.
const SHOW_ATTEMPTS: u16 = 25;

fn run(args: Args) -> course::Result {
    let n_ranks = course::ranks(args.ranks.map(usize::from), DEFAULT_RANKS)?;
    let len = args.len as usize;
    let world = course::mpi_world();
    let vector = Bytes(len as u64 * 8);
    println!(
        "Gathering {n_ranks} ranks' vectors of {len} f64 ({vector} each) on rank 0, \
         {} time(s) each way.\n",
        args.repeat
    );
    // What rank 0 gathered, from the first way that gave it whole.
    let mut gathered = None;
    let skipped = |what: &str| {
        println!(
            "{what}: local to one machine, so skipped under MPI. Run it with `cargo run -p {}`.\n",
            env!("CARGO_PKG_NAME")
        );
    };

    if args.way.a {
        match world {
            Some(_) => skipped("(a) one shared sending end, a pipe that every process writes into"),
            None => gathered = shared_end(n_ranks, len, args.repeat)?,
        }
    }
    if args.way.b {
        let star = match &world {
            Some(world) => star_on_mpi(world, len, args.repeat)?,
            None => Some(star(n_ranks, len, args.repeat)?),
        };
        gathered = star.or(gathered);
    }
    if args.way.c {
        match world {
            Some(_) => skipped("(c) a Queue, whose items come into the process that made it"),
            None => gathered = Some(queue(n_ranks, len, args.repeat)?).or(gathered),
        }
    }

    let Some(gathered) = gathered else {
        return Ok(()); // not rank 0, or no run of (a) arrived whole
    };
    println!("What rank 0 gathered (the same every way, every run):");
    let mut table = course::Table::new(&["rank", "numbers", "first", "last", "sum"]);
    for (rank, values) in gathered.iter().enumerate() {
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

/// Every rank's vector, in rank order: what a gather must give.
fn expected(n_ranks: usize, len: usize) -> Vec<Vec<f64>> {
    (0..n_ranks).map(|rank| rank_value(rank, len)).collect()
}

/// (a), `repeat` times or until the interleaving shows; the vectors of a run that arrived
/// whole, if one did.
fn shared_end(n_ranks: usize, len: usize, repeat: u16) -> course::Result<Option<Vec<Vec<f64>>>> {
    let expected = expected(n_ranks, len);
    println!("(a) ranks 1..{n_ranks} all write into ONE shared sending end:");
    let (mut whole, mut refused, mut run) = (0, 0, 0);
    // The interleaving is a race: keep going past --repeat until it shows (or give up).
    while run < repeat || (refused == 0 && n_ranks > 2 && run < SHOW_ATTEMPTS) {
        run += 1;
        match gather_shared_end(n_ranks, len) {
            Ok(values) if values == expected => {
                whole += 1;
                // Past --repeat, only the run that finally shows the problem is printed.
                if run <= repeat {
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
    println!();
    Ok((whole > 0).then_some(expected))
}

/// (b) with processes on this machine, `repeat` times.
fn star(n_ranks: usize, len: usize, repeat: u16) -> course::Result<Vec<Vec<f64>>> {
    let expected = expected(n_ranks, len);
    println!("(b) a star: one connection between rank 0 and each rank:");
    let star = gather_star(n_ranks, len)?;
    check("(b)", &star, &expected)?;
    for _ in 1..repeat {
        check("(b)", &gather_star(n_ranks, len)?, &expected)?;
    }
    println!("  {repeat} run(s), every one in rank order and exact.\n");
    Ok(star)
}

/// (b) on MPI's ranks, `repeat` times: every rank calls `gather` with its own vector over the
/// MPI world; rank 0 checks and returns what it gathered, the other ranks `None`.
fn star_on_mpi(world: &Comm, len: usize, repeat: u16) -> course::Result<Option<Vec<Vec<f64>>>> {
    let (rank, n_ranks) = (world.rank(), world.size());
    println!(
        "(b) over MPI: every rank calls gather(&world, &rank_value(rank, {len})), the world \
         being MPI's {n_ranks} rank(s):"
    );
    let value = rank_value(rank, len);
    let expected = if rank == 0 { expected(n_ranks, len) } else { Vec::new() };
    let mut first = None;
    for _ in 0..repeat {
        let Some(values) = gather(world, &value)? else {
            continue; // not rank 0: its part was to send
        };
        check("(b)", &values, &expected)?;
        first.get_or_insert(values);
    }
    if first.is_some() {
        println!("  {repeat} run(s), every one in rank order and exact.\n");
    }
    Ok(first)
}

/// (c), `repeat` times.
fn queue(n_ranks: usize, len: usize, repeat: u16) -> course::Result<Vec<Vec<f64>>> {
    let expected = expected(n_ranks, len);
    println!("(c) through a Queue, tagged with the rank:");
    let mut orders = std::collections::BTreeSet::new();
    for run in 1..=repeat {
        let gathered = gather_queue(n_ranks, len)?;
        check("(c)", &gathered.values, &expected)?;
        println!(
            "  run {run}: arrival order {:?}, restored to rank order: identical to (b)",
            gathered.arrival
        );
        orders.insert(gathered.arrival);
    }
    println!(
        "  {} different arrival order(s) in {repeat} run(s); the same vectors every time.\n",
        orders.len(),
    );
    Ok(expected)
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
