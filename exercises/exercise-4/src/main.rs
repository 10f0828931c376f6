//! Exercise 4: broadcasts, reductions and allreduces by hand; steps, messages and the last
//! bits of floating-point sums. Under `mpirun` (built with `--features mpi`) the same on MPI's
//! ranks, and then MPI's own collectives timed beside yours.

use std::{process::ExitCode, time::Duration};

use clap::Parser;
use reduction::{
    Algorithm, MpiCollective, MpiComparison, RankReport, Tally, compare_with_mpi, exact_float_sum,
    float_value, run_collective,
};

/// Broadcasts rank 0's value (linear, chain, binomial tree), reduces the ranks' values onto
/// rank 0 (linear, binary tree) and allreduces them (tree reduce + tree broadcast, butterfly),
/// on integers and floats; counts steps and messages; shows how the float sums differ. Under
/// mpirun: on MPI's ranks, then MPI's own collectives beside yours.
#[derive(Parser)]
#[command(name = "exercise-4", version)]
struct Args {
    /// Number of ranks (processes), 5 if not given: not a power of two on purpose. Under
    /// mpirun the ranks are mpirun's `-n`.
    #[arg(long, value_parser = clap::value_parser!(u16).range(1..=64))]
    ranks: Option<u16>,
    /// Which algorithms to run: `all`, or a comma-separated list of linear-bcast,
    /// chain-bcast, tree-bcast, linear-reduce, tree-reduce, tree-allreduce,
    /// butterfly-allreduce.
    #[arg(long, default_value = "all", value_parser = parse_algorithms)]
    algorithm: Choice,
    /// Under mpirun: timed calls of each collective, MPI's and yours (the median is shown).
    #[arg(long, default_value_t = 200, value_parser = clap::value_parser!(u32).range(1..=100_000))]
    calls: u32,
}

/// The number of ranks without --ranks (and without mpirun).
const DEFAULT_RANKS: usize = 5;

/// The heading of what only a run under mpirun prints, after everything a local run prints.
const MPI_HEADING: &str = "## Under MPI: MPI's own collectives beside yours";

/// The algorithms chosen on the command line.
#[derive(Clone)]
struct Choice(Vec<Algorithm>);

fn parse_algorithms(text: &str) -> Result<Choice, String> {
    if text == "all" {
        return Ok(Choice(Algorithm::ALL.to_vec()));
    }
    text.split(',')
        .map(|name| {
            Algorithm::ALL.into_iter().find(|algorithm| algorithm.name() == name.trim()).ok_or_else(
                || {
                    let names: Vec<&str> = Algorithm::ALL.iter().map(|a| a.name()).collect();
                    format!(
                        "`{name}` is not an algorithm; use `all` or some of: {}",
                        names.join(", ")
                    )
                },
            )
        })
        .collect::<Result<_, _>>()
        .map(Choice)
}

/// What one algorithm gave, over all ranks.
struct Outcome {
    algorithm: Algorithm,
    reports: Vec<RankReport>,
}

impl Outcome {
    /// The float result wherever it is (rank 0 has it in every algorithm).
    fn float(&self) -> Option<f64> {
        self.reports[0].float
    }

    fn int(&self) -> Option<u64> {
        self.reports[0].int
    }

    /// Steps until the last rank finished, and messages sent in all (float run).
    fn cost(&self) -> (u64, u64, u64) {
        let tallies: Vec<Tally> = self.reports.iter().map(|r| r.float_tally).collect();
        let steps = tallies.iter().map(|t| t.steps).max().unwrap_or(0);
        let messages = tallies.iter().map(|t| t.sent).sum();
        let busiest = tallies.iter().map(|t| t.sent.max(t.received)).max().unwrap_or(0);
        (steps, messages, busiest)
    }

    /// Checks that every rank that should have the result has it, identical everywhere.
    fn check(&self, expected_int: u64, expected_float: Option<f64>) -> course::Result {
        let name = self.algorithm.name();
        for (rank, report) in self.reports.iter().enumerate() {
            let should_have = rank == 0 || self.algorithm.everyone_gets_it();
            let (int, float) = (report.int, report.float.map(f64::to_bits));
            let wanted_float = if should_have { self.float().map(f64::to_bits) } else { None };
            if int != should_have.then_some(expected_int) || float != wanted_float {
                return Err(format!(
                    "{name}: rank {rank} ended with {:?} and {:?}, expected {:?} and {:?} (the same \
                     as rank 0{})",
                    report.int,
                    report.float,
                    should_have.then_some(expected_int),
                    should_have.then(|| self.float()).flatten(),
                    if should_have { "" } else { ": a reduce leaves the other ranks with None" }
                )
                .into());
            }
        }
        if let (Some(expected), Some(got)) = (expected_float, self.float())
            && expected.to_bits() != got.to_bits()
        {
            return Err(
                format!("{name}: rank 0 ended with {got:e}, not rank 0's {expected:e}").into()
            );
        }
        Ok(())
    }
}

fn run(args: Args) -> course::Result {
    let n_ranks = course::ranks(args.ranks.map(usize::from), DEFAULT_RANKS)?;
    let int_sum = (n_ranks * (n_ranks + 1) / 2) as u64;
    let exact = exact_float_sum(n_ranks);
    let log2 = n_ranks.next_power_of_two().ilog2();
    println!(
        "{n_ranks} ranks (processes), all connected. Rank r holds the integer r + 1 and the float \
         x_r: x_0 = 1e16, x_r = 1 + r/8.\nA step: each rank sends at most one message and \
         receives at most one. Linear: P - 1 = {} steps; trees: ceil(log2 P) = {log2}.\n",
        n_ranks - 1
    );
    // Broadcasts first, and their table printed before the sums run: a student who has
    // written only the broadcasts sees them work.
    let run_all = |broadcasts: bool| -> course::Result<Vec<Outcome>> {
        let mut outcomes = Vec::new();
        for &algorithm in args.algorithm.0.iter().filter(|a| a.is_broadcast() == broadcasts) {
            let outcome = Outcome { algorithm, reports: run_collective(n_ranks, algorithm)? };
            if broadcasts {
                outcome.check(1, Some(float_value(0)))?;
            } else {
                outcome.check(int_sum, None)?;
            }
            outcomes.push(outcome);
        }
        Ok(outcomes)
    };

    let broadcasts = run_all(true)?;
    if !broadcasts.is_empty() {
        println!("Broadcasts of rank 0's values (1 and 1e16), checked on every rank:");
        let mut table = course::Table::new(&[
            "algorithm",
            "steps",
            "messages",
            "most messages on one rank",
            "every rank has",
        ]);
        for outcome in &broadcasts {
            let (steps, messages, busiest) = outcome.cost();
            table.row([
                outcome.algorithm.name().to_string(),
                steps.to_string(),
                messages.to_string(),
                busiest.to_string(),
                format!(
                    "{} and {:e}",
                    outcome.int().unwrap_or_default(),
                    outcome.float().unwrap_or(f64::NAN)
                ),
            ]);
        }
        println!("{table}");
    }

    let sums = run_all(false)?;
    if !sums.is_empty() {
        println!(
            "Sums (reduce: on rank 0; allreduce: on every rank, checked identical). Integer sum \
             n (n + 1) / 2 = {int_sum}: exact in every order."
        );
        let mut table = course::Table::new(&[
            "algorithm",
            "steps",
            "messages",
            "most messages on one rank",
            "integer sum",
            "float sum",
            "float bits",
            "ulps from rounded exact",
            "relative error",
        ]);
        // The true sum, in eighths (every x_r is a whole number of eighths).
        let eighths: i128 = (0..n_ranks).map(|rank| (float_value(rank) * 8.0) as i128).sum();
        let relative = |float: f64| {
            let error = (float * 8.0) as i128 - eighths;
            if error == 0 {
                "0".to_string()
            } else {
                format!("{:+.1e}", error as f64 / eighths as f64)
            }
        };
        for outcome in &sums {
            let (steps, messages, busiest) = outcome.cost();
            let float = outcome.float().unwrap_or(f64::NAN);
            table.row([
                outcome.algorithm.name().to_string(),
                steps.to_string(),
                messages.to_string(),
                busiest.to_string(),
                outcome.int().unwrap_or_default().to_string(),
                format!("{float:e}"),
                format!("{:#018x}", float.to_bits()),
                format!("{:+}", ulps_between(exact, float)),
                relative(float),
            ]);
        }
        let blank = String::new;
        table.row([
            "exact".to_string(),
            blank(),
            blank(),
            blank(),
            int_sum.to_string(),
            format!("{}.{:03}", eighths / 8, eighths % 8 * 125),
            "(not an f64)".to_string(),
            blank(),
            "0".to_string(),
        ]);
        table.row([
            "exact, rounded once".to_string(),
            blank(),
            blank(),
            blank(),
            int_sum.to_string(),
            format!("{exact:e}"),
            format!("{:#018x}", exact.to_bits()),
            "0".to_string(),
            relative(exact),
        ]);
        println!("{table}");
        println!(
            "Near {exact:e} neighbouring f64 are {} apart (1 ulp), so every + rounds the small \
             x_r to a multiple of that.\nThe order of the additions decides how often that \
             rounding happens, hence the last bits. Integers have no rounding: every order \
             gives {int_sum}.",
            exact.next_up() - exact,
        );
    }

    if let Some(comparison) =
        compare_with_mpi(&args.algorithm.0, args.calls as usize).transpose()?
    {
        print_mpi_comparison(&comparison, n_ranks);
    }
    Ok(())
}

/// What only a run under mpirun prints: MPI's collectives, their results and times, beside
/// the times of the student's.
fn print_mpi_comparison(comparison: &MpiComparison, n_ranks: usize) {
    let (results, times) = mpi_tables(comparison, n_ranks);
    println!("\n{MPI_HEADING}\n");
    println!(
        "MPI's own collectives (mp_mpi::native) on the same values, {n_ranks} rank(s) on {}:",
        comparison.processors.join(", ")
    );
    println!("{results}");
    println!(
        "Time per call on MPI's world: the median of {} calls (after {} not timed). Each call \
         starts after a barrier and takes the longest time any rank spent in it. Yours are \
         called on the world itself, without the counting wrapper, on the floats:",
        comparison.calls, comparison.warm_up
    );
    println!("{times}");
}

/// The two tables of the MPI section: MPI's results (with the bits and ulps of the float sums,
/// to compare with the sums table above) and every time per call beside MPI's own.
fn mpi_tables(comparison: &MpiComparison, n_ranks: usize) -> (course::Table, course::Table) {
    let exact = exact_float_sum(n_ranks);
    let micros = |time: Duration| format!("{:.1}", time.as_secs_f64() * 1e6);
    let mut results = course::Table::new(&[
        "MPI collective",
        "integer",
        "float",
        "float bits",
        "ulps from rounded exact",
        "time per call [us]",
    ]);
    for native in &comparison.native {
        let ulps = match native.collective {
            MpiCollective::Bcast => String::new(), // rank 0's value, not a sum
            _ => format!("{:+}", ulps_between(exact, native.float)),
        };
        results.row([
            native.collective.name().to_string(),
            native.int.to_string(),
            format!("{:e}", native.float),
            format!("{:#018x}", native.float.to_bits()),
            ulps,
            micros(native.per_call),
        ]);
    }
    let mut times =
        course::Table::new(&["collective", "algorithm", "time per call [us]", "times MPI's"]);
    for native in &comparison.native {
        times.row([native.collective.name(), "MPI's own", &micros(native.per_call), "1.0"]);
        let mpi = native.per_call.as_secs_f64();
        for (algorithm, time) in &comparison.yours {
            if MpiCollective::of(*algorithm) != native.collective {
                continue;
            }
            let ratio =
                if mpi > 0.0 { format!("{:.1}", time.as_secs_f64() / mpi) } else { "-".into() };
            times.row(["", algorithm.name(), &micros(*time), &ratio]);
        }
    }
    (results, times)
}

/// How many representable f64 lie between `exact` and `got` (signed; both positive here).
fn ulps_between(exact: f64, got: f64) -> i64 {
    got.to_bits() as i64 - exact.to_bits() as i64
}

fn main() -> ExitCode {
    course::run(run)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_mpi_tables_show_mpi_s_results_and_every_time_beside_mpi_s_own() {
        let us = Duration::from_micros;
        let exact = exact_float_sum(4);
        let native = |collective, int, float, per_call| reduction::NativeOutcome {
            collective,
            int,
            float,
            per_call,
        };
        let comparison = MpiComparison {
            calls: 100,
            warm_up: 10,
            native: vec![
                native(MpiCollective::Bcast, 1, 1e16, us(5)),
                native(MpiCollective::Reduce, 10, exact.next_up(), us(8)),
                native(MpiCollective::Allreduce, 10, exact, us(10)),
            ],
            yours: vec![(Algorithm::TreeBcast, us(15)), (Algorithm::ButterflyAllreduce, us(25))],
            processors: vec!["node1".into()],
        };
        let (results, times) = mpi_tables(&comparison, 4);
        let cells = |table: &course::Table| -> Vec<Vec<String>> { table.rows().to_vec() };
        assert_eq!(
            cells(&results),
            [
                ["MPI_Bcast", "1", "1e16", "0x4341c37937e08000", "", "5.0"],
                [
                    "MPI_Reduce",
                    "10",
                    &format!("{:e}", exact.next_up()),
                    &format!("{:#018x}", exact.next_up().to_bits()),
                    "+1",
                    "8.0"
                ],
                [
                    "MPI_Allreduce",
                    "10",
                    &format!("{exact:e}"),
                    &format!("{:#018x}", exact.to_bits()),
                    "+0",
                    "10.0"
                ],
            ]
        );
        assert_eq!(
            cells(&times),
            [
                ["MPI_Bcast", "MPI's own", "5.0", "1.0"],
                ["", "tree-bcast", "15.0", "3.0"],
                ["MPI_Reduce", "MPI's own", "8.0", "1.0"],
                ["MPI_Allreduce", "MPI's own", "10.0", "1.0"],
                ["", "butterfly-allreduce", "25.0", "2.5"],
            ]
        );
        assert!(results.headers().iter().any(|header| header == "time per call [us]"));
    }
}
