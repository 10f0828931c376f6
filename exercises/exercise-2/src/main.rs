//! Exercise 2: a token round a ring of processes started by hand, then what starting
//! processes costs: the same work without processes, with Pool(1) and with one Process and a
//! Queue, timed with the lecture's marks t0..t3 and as `time` reports it.
//!
//! Run `cargo run -p exercise-2 -- --help` for the flags. Under `mpirun` (built with
//! `--features mpi`) the ring's ranks are the MPI ranks, and the overhead experiment, which
//! starts local processes, is skipped.

use std::{path::PathBuf, process::ExitCode, time::Instant};

use clap::Parser;
use mp::{
    Comm, Communicator, Launch, Topology,
    timing::{Phases, ProcessTimes},
    units::{Bytes, Unit},
};
use process_launch::{
    Overhead, ring_by_hand, ring_links, with_pool_of_one, with_process_and_queue, without_processes,
};

mod mpi_ring;
use mpi_ring::{MpiRing, ring_on_mpi};

/// Sends a token round a ring of --ranks processes started by hand, then times the same work
/// (summing --lists lists of --work numbers) without processes, with Pool(1), and with one
/// Process that returns its result through a Queue. Under mpirun: the ring of MPI ranks only.
#[derive(Parser)]
struct Args {
    /// Number of processes in the ring (NP), 4 if not given. 1 is a ring too: rank 0 sends to
    /// itself. Under mpirun the ranks are mpirun's `-n`.
    #[arg(long, value_parser = clap::value_parser!(u32).range(1..=64))]
    ranks: Option<u32>,

    /// Numbers in each list of the overhead experiment (each number is 8 bytes).
    #[arg(long, default_value_t = 100_000, value_parser = clap::value_parser!(u64).range(1..=50_000_000))]
    work: u64,

    /// Number of lists in the overhead experiment (the lecture sums 10).
    #[arg(long, default_value_t = 10, value_parser = clap::value_parser!(u64).range(1..=1000))]
    lists: u64,

    /// Where to write the overhead table (CSV).
    #[arg(long, default_value = "target/course/exercise-2/overhead.csv", value_parser = course::writable_path)]
    csv: PathBuf,
}

/// The number of ranks without --ranks (and without mpirun).
const DEFAULT_RANKS: usize = 4;

/// The most numbers the overhead experiment may hold (400 MB; each process holds a copy).
const MAX_NUMBERS: u64 = 50_000_000;

fn main() -> ExitCode {
    course::run(run)
}

fn run(args: Args) -> course::Result {
    let n_numbers = args.lists * args.work;
    if n_numbers > MAX_NUMBERS {
        return Err(course::usage(format!(
            "--lists {} times --work {} is {n_numbers} numbers ({:.0}); at most {MAX_NUMBERS} \
             ({:.0}) fit comfortably: make one of them smaller",
            args.lists,
            args.work,
            Bytes(n_numbers * 8).display_in(Unit::MB),
            Bytes(MAX_NUMBERS * 8).display_in(Unit::MB),
        )));
    }
    if cfg!(debug_assertions) {
        println!("(figures from a debug build; add --release)\n");
    }
    let n_ranks = course::ranks(args.ranks.map(|ranks| ranks as usize), DEFAULT_RANKS)?;
    if let Some(world) = course::mpi_world() {
        ring_on_mpi_ranks(world, n_ranks)?;
        println!(
            "\nThe overhead experiment (Pool(1), Process + Queue) starts local processes: skipped \
             under MPI. Run it with `cargo run -p {}`.",
            env!("CARGO_PKG_NAME")
        );
    } else {
        ring(n_ranks)?;
        overhead(args.lists, args.work, &args.csv)?;
    }
    println!(
        "\nThis whole program, as `time` prints it (under `cargo run` this includes cargo's own \
         check; run the binary in target/ to compare with `time`):\n{}",
        ProcessTimes::now()
    );
    Ok(())
}

/// The ring by hand, then the same ring with mp::Launch.
fn ring(n_ranks: usize) -> course::Result {
    let links = ring_links(n_ranks);
    let started = Instant::now();
    let token = ring_by_hand(n_ranks)?;
    let elapsed = started.elapsed();

    println!(
        "A ring of {} by hand: {} ({})",
        plural(n_ranks, "process", "processes"),
        plural(links.len(), "one-way pipe", "one-way pipes"),
        arrows(&links)
    );
    print_token(&token, n_ranks)?;
    println!(
        "  {:.1} ms in all, from creating the pipes to joining the last process",
        elapsed.as_secs_f64() * 1e3
    );

    if n_ranks < 2 {
        println!(
            "  (mp::Launch with Topology::Ring needs 2 ranks or more: a rank has no pipe to itself there)"
        );
        return Ok(());
    }
    let launch = Launch { n_ranks, topology: Topology::Ring };
    let started = Instant::now();
    let results = launch.run(ring_with_comm, ())?;
    let elapsed = started.elapsed();
    println!(
        "The same with mp::Launch {{ n_ranks: {n_ranks}, topology: Topology::Ring }}: {} two-way \
         connections, token {:?}, {:.1} ms",
        Topology::Ring.n_connections(n_ranks),
        results[0],
        elapsed.as_secs_f64() * 1e3
    );
    Ok(())
}

/// Under mpirun: the ring of MPI ranks with the student's `ring_rank`, where each rank ran, and
/// the same ring on the MPI `world` as a `Comm` (every rank runs this; rank 0 prints).
fn ring_on_mpi_ranks(world: Comm, n_ranks: usize) -> course::Result {
    // As in a local run, the student's links first (on every rank: a `todo!` there fails alike).
    let links = ring_links(n_ranks);
    if let Some(ring) = ring_on_mpi().ok_or("not under mpirun")?? {
        print_mpi_ring(&ring, &links, n_ranks)?;
    }
    if n_ranks < 2 {
        return Ok(());
    }
    let started = Instant::now();
    let token = ring_with_comm(world, ());
    println!(
        "The same with the MPI world as an mp::Comm (the function that mp::Launch's ranks run \
         locally): token {token:?}, {:.1} ms",
        started.elapsed().as_secs_f64() * 1e3
    );
    Ok(())
}

/// What rank 0 prints about the ring of MPI ranks: the token as a local run prints it, and
/// where each rank ran.
fn print_mpi_ring(ring: &MpiRing, links: &[(usize, usize)], n_ranks: usize) -> course::Result {
    println!(
        "A ring of {} started by mpirun: {} ({}), each end a Receiver or Sender over MPI",
        plural(n_ranks, "MPI rank", "MPI ranks"),
        plural(links.len(), "one-way link", "one-way links"),
        arrows(links)
    );
    print_token(&ring.token, n_ranks)?;
    println!(
        "  {:.1} ms from rank 0's first send until the token came back",
        ring.elapsed.as_secs_f64() * 1e3
    );
    println!("Where the ranks ran (gathered on rank 0 through the MPI world):");
    let mut table = course::Table::new(&["rank", "processor", "pid"]);
    for place in &ring.placements {
        table.row([place.rank.to_string(), place.processor.clone(), place.pid.to_string()]);
    }
    print!("{table}");
    Ok(())
}

/// "0->1, 1->2, 2->0".
fn arrows(links: &[(usize, usize)]) -> String {
    let arrows: Vec<String> = links.iter().map(|(from, to)| format!("{from}->{to}")).collect();
    arrows.join(", ")
}

/// Checks that the token visited every rank once, in order, and prints its way round.
fn print_token(token: &process_launch::Token, n_ranks: usize) -> course::Result {
    let ranks: Vec<usize> = token.iter().map(|visit| visit.rank).collect();
    if ranks != (0..n_ranks).collect::<Vec<_>>() {
        return Err(format!(
            "the token came back to rank 0 having visited the ranks {ranks:?}; it must visit \
             0, 1, ..., {} once each, in that order",
            n_ranks - 1
        )
        .into());
    }
    let stops: Vec<String> =
        token.iter().map(|visit| format!("rank {} (pid {})", visit.rank, visit.pid)).collect();
    println!("  the token went {} -> back to rank 0", stops.join(" -> "));
    Ok(())
}

/// The ring written against mp's Communicator: rank 0 starts, each rank appends its rank.
fn ring_with_comm(comm: Comm, _: ()) -> Vec<usize> {
    let (rank, size) = (comm.rank(), comm.size());
    let (next, previous) = ((rank + 1) % size, (rank + size - 1) % size);
    if rank == 0 {
        comm.send(next, &vec![0usize]).expect("rank 0 could not start the token");
        return comm.recv(previous).expect("rank 0 never got the token back");
    }
    let mut token: Vec<usize> = comm.recv(previous).expect("no token from the previous rank");
    token.push(rank);
    comm.send(next, &token).expect("could not pass the token on");
    token
}

/// The lecture's overhead experiment: the same sums three ways.
fn overhead(n_lists: u64, length: u64, csv: &std::path::Path) -> course::Result {
    // List k holds k * length, ..., (k + 1) * length - 1: every list has a different sum.
    let lists: Vec<Vec<u64>> =
        (0..n_lists).map(|k| (k * length..(k + 1) * length).collect()).collect();
    let expected: Vec<u64> = (0..n_lists).map(|k| (k * length..(k + 1) * length).sum()).collect();
    println!(
        "\nThe same work three ways: the sums of {n_lists} lists of {length} numbers ({:.1} in all, \
         {:.1} per list)",
        Bytes(n_lists * length * 8).display_in(Unit::MB),
        Bytes(length * 8).display_in(Unit::MB),
    );

    let mut table = course::Table::new(&[
        "way",
        "t0-t1 start [ms]",
        "t1-t2 work [ms]",
        "t2-t3 join [ms]",
        "t0-t3 total [ms]",
        "real [ms]",
        "user [ms]",
        "sys [ms]",
    ]);
    type Way = fn(Vec<Vec<u64>>) -> mp::Result<Overhead>;
    let ways: [(&str, Way); 3] = [
        ("no processes", |lists| Ok(without_processes(lists))),
        ("Pool(1).map", with_pool_of_one),
        ("Process + Queue", with_process_and_queue),
    ];
    for (name, way) in ways {
        let copy = lists.clone();
        let before = ProcessTimes::now();
        let outcome = way(copy)?;
        let times = ProcessTimes::now().since(&before);
        if outcome.sums != expected {
            return Err(format!(
                "{name} gave the sums {:?}; they should be {expected:?}, one per list, in order",
                outcome.sums
            )
            .into());
        }
        let marks = phase_marks(name, &outcome.phases)?;
        let span = |from: usize, to: usize| millis(marks[to] - marks[from]);
        table.row([
            name.to_string(),
            span(0, 1),
            span(1, 2),
            span(2, 3),
            span(0, 3),
            millis(times.real.as_secs_f64()),
            millis(times.user.as_secs_f64()),
            millis(times.sys.as_secs_f64()),
        ]);
    }
    print!("{table}");
    println!(
        "t0 before starting, t1 processes started, t2 results here, t3 processes joined. \
         real/user/sys as `time` reports them, for that way alone; user and sys count a child \
         process once it has been joined."
    );
    table.write_csv(csv)?;
    println!("wrote {}", csv.display());
    Ok(())
}

/// The times of t0, t1, t2, t3 in seconds, or an error that says which marks are missing.
fn phase_marks(way: &str, phases: &Phases) -> course::Result<[f64; 4]> {
    let names: Vec<&str> = phases.marks().iter().map(|mark| mark.name.as_str()).collect();
    if names != ["t0", "t1", "t2", "t3"] {
        return Err(format!(
            "{way} took the marks {names:?}; it must take exactly t0, t1, t2, t3, in that order \
             (Phases::start() gives t0, then phases.mark(\"t1\") and so on)"
        )
        .into());
    }
    let at = |index: usize| phases.marks()[index].at.as_secs_f64();
    Ok([at(0), at(1), at(2), at(3)])
}

/// "1 process", "4 processes".
fn plural(count: usize, one: &str, many: &str) -> String {
    if count == 1 { format!("1 {one}") } else { format!("{count} {many}") }
}

fn millis(seconds: f64) -> String {
    format!("{:.1}", seconds * 1e3)
}
