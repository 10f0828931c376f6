//! Graded tests of exercise 3: every gather returns every rank's vector in rank order,
//! exactly, whatever the arrival order; the shared sending end never returns wrong data.
//!
//! Every call to your code is wrapped in `observe!`: its value is printed as plain data, and
//! `cargo xtask grade` checks it again in a process without your code (see the `judge` crate).

mp::test_support!();

use std::time::Duration;

use gather::*;
use judge::observe;
use mp::{Comm, Communicator};

/// A result as plain data: the value, or the error's text.
fn plain<T>(result: mp::Result<T>) -> Result<T, String> {
    result.map_err(|error| error.to_string())
}

fn ok<T>(what: &str, result: Result<T, String>) -> T {
    result.unwrap_or_else(|error| panic!("{what} failed: {error}"))
}

/// What the queue gather returned: the values in rank order and the arrival order.
fn queue(n_ranks: usize, len: usize) -> Result<(Vec<Vec<f64>>, Vec<usize>), String> {
    plain(gather_queue(n_ranks, len)).map(|gathered| (gathered.values, gathered.arrival))
}

/// The shared end's result: `Ok(vectors)`, `Err(Some(text))` for a refused damaged message
/// (`Corrupted` or `Serialization`), `Err(None)` with any other error's text in the message.
fn shared_end(n_ranks: usize, len: usize) -> Result<Vec<Vec<f64>>, (bool, String)> {
    gather_shared_end(n_ranks, len).map_err(|error| {
        let refused =
            matches!(error, mp::Error::Corrupted { .. } | mp::Error::Serialization { .. });
        (refused, error.to_string())
    })
}

fn expected(n_ranks: usize, len: usize) -> Vec<Vec<f64>> {
    (0..n_ranks).map(|rank| rank_value(rank, len)).collect()
}

/// The bits of every number: equal bits is "exactly the same", with no tolerance.
fn bits(vectors: &[Vec<f64>]) -> Vec<Vec<u64>> {
    vectors.iter().map(|vector| vector.iter().map(|x| x.to_bits()).collect()).collect()
}

#[test]
fn the_star_gather_returns_every_rank_s_vector_in_rank_order_for_1_to_6_ranks() {
    let _watchdog = course::watchdog(Duration::from_secs(60));
    for n_ranks in 1..=6 {
        for len in [1, 300] {
            let gathered = ok("gather_star", observe!(plain(gather_star(n_ranks, len))));
            assert_eq!(gathered, expected(n_ranks, len), "{n_ranks} ranks, {len} numbers each");
        }
    }
}

fn gather_on_all_to_all(comm: Comm, len: usize) -> Option<Vec<Vec<f64>>> {
    gather(&comm, &rank_value(comm.rank(), len)).unwrap()
}

#[test]
fn gather_gives_rank_0_everything_and_the_other_ranks_nothing_on_any_wiring() {
    let _watchdog = course::watchdog(Duration::from_secs(60));
    for n_ranks in [1, 2, 5] {
        let launched = observe!(plain(mp::launch(n_ranks, gather_on_all_to_all, 40)));
        let results = ok("launch", launched);
        assert_eq!(results.len(), n_ranks, "one result per rank");
        assert_eq!(results[0].as_ref(), Some(&expected(n_ranks, 40)), "{n_ranks} ranks");
        for (rank, result) in results.iter().enumerate().skip(1) {
            assert_eq!(result, &None, "rank {rank} of {n_ranks} should get None");
        }
    }
}

#[test]
fn the_queue_gather_restores_rank_order_whatever_the_arrival_order() {
    let _watchdog = course::watchdog(Duration::from_secs(60));
    for n_ranks in 1..=6 {
        for run in 0..3 {
            let (values, arrival) = ok("gather_queue", observe!(queue(n_ranks, 2_000)));
            assert_eq!(
                values,
                expected(n_ranks, 2_000),
                "{n_ranks} ranks, run {run}: arrival order was {arrival:?}"
            );
            let mut arrived = arrival.clone();
            arrived.sort();
            assert_eq!(
                arrived,
                (1..n_ranks).collect::<Vec<_>>(),
                "the arrival order should list ranks 1 to {} once each",
                n_ranks - 1
            );
        }
    }
}

#[test]
fn the_queue_gather_equals_the_star_gather_bit_for_bit() {
    let _watchdog = course::watchdog(Duration::from_secs(60));
    let star = ok("gather_star", observe!(plain(gather_star(5, 10_000))));
    assert_eq!(bits(&star), bits(&expected(5, 10_000)));
    for _ in 0..3 {
        let (values, arrival) = ok("gather_queue", observe!(queue(5, 10_000)));
        assert_eq!(bits(&values), bits(&star), "arrival order {arrival:?}");
    }
}

#[test]
fn the_shared_end_gather_returns_every_vector_or_a_corrupted_error_never_wrong_data() {
    let _watchdog = course::watchdog(Duration::from_secs(60));
    // Messages larger than the pipe's buffer: the writers' bytes often interleave.
    let (n_ranks, len) = (4, 60_000);
    for run in 0..4 {
        match observe!(shared_end(n_ranks, len)) {
            Ok(values) => assert!(
                bits(&values) == bits(&expected(n_ranks, len)),
                "run {run}: the gather returned vectors that are not the ranks' vectors in rank \
                 order; a damaged message must be refused with an error, never returned"
            ),
            // What recv reports when the writers' bytes interleave (a damaged header, or a
            // damaged message that does not even decode).
            Err((true, _)) => {}
            Err((false, other)) => panic!(
                "run {run}: expected the vectors, or the mp::Error::Corrupted that recv reports \
                 when the writers' bytes interleave, got: {other}"
            ),
        }
    }
}

#[test]
fn the_shared_end_gather_with_one_writer_always_returns_every_vector() {
    let _watchdog = course::watchdog(Duration::from_secs(60));
    // One writer (or none) cannot interleave with anyone: this must always work.
    for (n_ranks, len) in [(1, 10), (2, 1), (2, 100_000)] {
        let gathered = observe!(shared_end(n_ranks, len));
        let gathered = gathered.unwrap_or_else(|(_, error)| panic!("{error}"));
        assert_eq!(gathered, expected(n_ranks, len), "{n_ranks} ranks, {len} numbers");
    }
}

#[test]
fn zero_ranks_is_an_invalid_argument_error_for_every_gather() {
    let _watchdog = course::watchdog(Duration::from_secs(60));
    let invalid = |error: Option<mp::Error>| {
        error.map(|error| (matches!(error, mp::Error::InvalidArgument { .. }), error.to_string()))
    };
    let errors = [
        ("gather_shared_end", observe!(invalid(gather_shared_end(0, 10).err()))),
        ("gather_star", observe!(invalid(gather_star(0, 10).err()))),
        ("gather_queue", observe!(invalid(gather_queue(0, 10).err()))),
    ];
    for (name, error) in errors {
        assert!(
            matches!(error, Some((true, _))),
            "{name}(0 ranks) should be Err(mp::Error::InvalidArgument), got {error:?}"
        );
    }
}
