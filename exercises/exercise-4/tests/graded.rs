//! Graded tests of exercise 4: broadcasts deliver rank 0's value everywhere, reductions and
//! allreduces give exact integer sums, every float sum is within its rounding bound, and the
//! tree algorithms take ceil(log2 P) steps, for 1 to 9 ranks (powers of two or not).

//!
//! Every call to your code is wrapped in `observe!`: its value is printed as plain data, and
//! `cargo xtask grade` checks it again in a process without your code (see the `judge` crate).

mp::test_support!();

use std::time::Duration;

use judge::observe;
use reduction::*;

const RANKS: std::ops::RangeInclusive<usize> = 1..=9;

/// A rank's report as plain data: int, float, and (steps, sent, received) of each tally.
type PlainReport = (Option<u64>, Option<f64>, (u64, u64, u64), (u64, u64, u64));

fn plain_reports(n_ranks: usize, algorithm: Algorithm) -> Result<Vec<PlainReport>, String> {
    let tally = |t: Tally| (t.steps, t.sent, t.received);
    let reports = run_collective(n_ranks, algorithm).map_err(|error| error.to_string())?;
    Ok(reports.iter().map(|r| (r.int, r.float, tally(r.int_tally), tally(r.float_tally))).collect())
}

fn run(n_ranks: usize, algorithm: Algorithm) -> Vec<RankReport> {
    let tally = |(steps, sent, received)| Tally { steps, sent, received };
    observe!(plain_reports(n_ranks, algorithm))
        .unwrap_or_else(|error| panic!("{} on {n_ranks} ranks failed: {error}", algorithm.name()))
        .into_iter()
        .map(|(int, float, int_tally, float_tally)| RankReport {
            int,
            float,
            int_tally: tally(int_tally),
            float_tally: tally(float_tally),
        })
        .collect()
}

/// ceil(log2 n): the rounds of a tree over n ranks.
fn tree_rounds(n_ranks: usize) -> u64 {
    u64::from(n_ranks.next_power_of_two().ilog2())
}

/// The steps until the last rank finished, and the messages sent in all.
fn cost(reports: &[RankReport]) -> (u64, u64) {
    let steps = reports.iter().map(|r| r.int_tally.steps.max(r.float_tally.steps)).max();
    (steps.unwrap_or(0), reports.iter().map(|r| r.int_tally.sent).sum())
}

fn int_sum(n_ranks: usize) -> u64 {
    (n_ranks * (n_ranks + 1) / 2) as u64
}

#[test]
fn every_broadcast_gives_every_rank_exactly_rank_0_s_values_for_1_to_9_ranks() {
    let _watchdog = course::watchdog(Duration::from_secs(60));
    for algorithm in [Algorithm::LinearBcast, Algorithm::ChainBcast, Algorithm::TreeBcast] {
        for n_ranks in RANKS {
            for (rank, report) in run(n_ranks, algorithm).iter().enumerate() {
                assert_eq!(
                    (report.int, report.float.map(f64::to_bits)),
                    (Some(int_value(0)), Some(float_value(0).to_bits())),
                    "{}, {n_ranks} ranks: rank {rank} should end with rank 0's values {} and {:e} \
                     (it started with {} and {:e})",
                    algorithm.name(),
                    int_value(0),
                    float_value(0),
                    int_value(rank),
                    float_value(rank)
                );
            }
        }
    }
}

#[test]
fn the_tree_broadcast_takes_ceil_log2_p_steps_and_the_linear_and_chain_ones_p_minus_1() {
    let _watchdog = course::watchdog(Duration::from_secs(60));
    for n_ranks in RANKS {
        let expected = [
            (Algorithm::LinearBcast, n_ranks as u64 - 1),
            (Algorithm::ChainBcast, n_ranks as u64 - 1),
            (Algorithm::TreeBcast, tree_rounds(n_ranks)),
        ];
        for (algorithm, steps) in expected {
            assert_eq!(
                cost(&run(n_ranks, algorithm)),
                (steps, n_ranks as u64 - 1),
                "{} on {n_ranks} ranks: expected (steps, messages); every rank but 0 receives \
                 exactly one message",
                algorithm.name()
            );
        }
    }
}

#[test]
fn both_reduces_give_rank_0_the_integer_sum_n_n_plus_1_over_2_and_the_others_none() {
    let _watchdog = course::watchdog(Duration::from_secs(60));
    for algorithm in [Algorithm::LinearReduce, Algorithm::TreeReduce] {
        for n_ranks in RANKS {
            let reports = run(n_ranks, algorithm);
            assert_eq!(
                reports[0].int,
                Some(int_sum(n_ranks)),
                "{} on {n_ranks} ranks",
                algorithm.name()
            );
            assert!(
                reports[0].float.is_some(),
                "{}: rank 0 should get Some(sum)",
                algorithm.name()
            );
            for (rank, report) in reports.iter().enumerate().skip(1) {
                assert_eq!(
                    (report.int, report.float),
                    (None, None),
                    "{} on {n_ranks} ranks: rank {rank} should return None",
                    algorithm.name()
                );
            }
        }
    }
}

#[test]
fn the_tree_reduce_takes_ceil_log2_p_steps_and_the_linear_reduce_p_minus_1() {
    let _watchdog = course::watchdog(Duration::from_secs(60));
    for n_ranks in RANKS {
        for (algorithm, steps) in [
            (Algorithm::LinearReduce, n_ranks as u64 - 1),
            (Algorithm::TreeReduce, tree_rounds(n_ranks)),
        ] {
            assert_eq!(
                cost(&run(n_ranks, algorithm)),
                (steps, n_ranks as u64 - 1),
                "{} on {n_ranks} ranks: expected (steps, messages)",
                algorithm.name()
            );
        }
    }
}

#[test]
fn both_allreduces_leave_every_rank_with_the_same_exact_integer_sum_and_the_same_float_bits() {
    let _watchdog = course::watchdog(Duration::from_secs(60));
    for algorithm in [Algorithm::TreeAllreduce, Algorithm::ButterflyAllreduce] {
        for n_ranks in RANKS {
            let reports = run(n_ranks, algorithm);
            let float_on_0 = reports[0].float.map(f64::to_bits);
            assert!(float_on_0.is_some(), "{}: rank 0 has no float sum", algorithm.name());
            for (rank, report) in reports.iter().enumerate() {
                assert_eq!(
                    (report.int, report.float.map(f64::to_bits)),
                    (Some(int_sum(n_ranks)), float_on_0),
                    "{} on {n_ranks} ranks: rank {rank} should end with the integer sum {} and \
                     exactly rank 0's float sum {:e}",
                    algorithm.name(),
                    int_sum(n_ranks),
                    reports[0].float.unwrap_or_default()
                );
            }
        }
    }
}

#[test]
fn the_butterfly_takes_log2_p_steps_for_powers_of_two_and_at_most_two_more_otherwise() {
    let _watchdog = course::watchdog(Duration::from_secs(60));
    for n_ranks in RANKS {
        let (steps, _) = cost(&run(n_ranks, Algorithm::ButterflyAllreduce));
        let rounds = u64::from(n_ranks.ilog2());
        if n_ranks.is_power_of_two() {
            assert_eq!(
                steps, rounds,
                "{n_ranks} ranks: log2 P exchanges; send to the partner first, then receive, so \
                 both directions share a step"
            );
        } else {
            assert!(
                steps <= rounds + 2,
                "{n_ranks} ranks: {steps} steps; folding the extra ranks in and out should cost \
                 only 2 steps more than the {rounds} exchanges"
            );
        }
    }
}

#[test]
fn every_float_sum_is_within_the_rounding_bound_of_its_order_and_linear_adds_in_rank_order() {
    let _watchdog = course::watchdog(Duration::from_secs(60));
    let unit_roundoff = f64::EPSILON / 2.0;
    for n_ranks in RANKS {
        let exact = exact_float_sum(n_ranks);
        let magnitude: f64 = (0..n_ranks).map(|rank| float_value(rank).abs()).sum();
        let depth = |algorithm| match algorithm {
            Algorithm::LinearReduce => n_ranks - 1,
            _ => tree_rounds(n_ranks) as usize,
        };
        for algorithm in [
            Algorithm::LinearReduce,
            Algorithm::TreeReduce,
            Algorithm::TreeAllreduce,
            Algorithm::ButterflyAllreduce,
        ] {
            let sum = run(n_ranks, algorithm)[0].float.unwrap_or(f64::NAN);
            // Each addition on the way to the root rounds once: at most `depth` roundings of
            // relative size u on values bounded by the sum of magnitudes (plus the final
            // rounding of the exact sum itself).
            let bound = (depth(algorithm) as f64 + 1.0) * unit_roundoff * magnitude;
            assert!(
                (sum - exact).abs() <= bound,
                "{} on {n_ranks} ranks: {sum:e} is {:e} away from the exact sum {exact:e}, more \
                 than rounding alone allows ({bound:e})",
                algorithm.name(),
                (sum - exact).abs()
            );
        }
        let in_rank_order = (1..n_ranks).fold(float_value(0), |sum, rank| sum + float_value(rank));
        assert_eq!(
            run(n_ranks, Algorithm::LinearReduce)[0].float.map(f64::to_bits),
            Some(in_rank_order.to_bits()),
            "linear reduce on {n_ranks} ranks: add in rank order, ((x0 + x1) + x2) + ..."
        );
    }
}

#[test]
fn zero_ranks_is_an_error_and_one_rank_keeps_its_own_value_without_any_message() {
    let _watchdog = course::watchdog(Duration::from_secs(60));
    for algorithm in Algorithm::ALL {
        let error = observe!(run_collective(0, algorithm).err().map(|error| {
            (matches!(error, mp::Error::InvalidArgument { .. }), error.to_string())
        }));
        assert!(
            matches!(error, Some((true, _))),
            "{} on 0 ranks should be Err(InvalidArgument), got {error:?}",
            algorithm.name()
        );
        let reports = run(1, algorithm);
        assert_eq!(
            (reports[0].int, reports[0].float, cost(&reports)),
            (Some(int_value(0)), Some(float_value(0)), (0, 0)),
            "{} on 1 rank: the value stays as it is, in 0 steps and 0 messages",
            algorithm.name()
        );
    }
}
