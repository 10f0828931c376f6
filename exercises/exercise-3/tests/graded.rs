//! Graded tests of exercise 3: every gather returns every rank's vector in rank order,
//! exactly, whatever the arrival order; the shared sending end never returns wrong data.

mp::test_support!();

use std::time::Duration;

use gather::*;
use mp::{Comm, Communicator};

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
            let gathered = gather_star(n_ranks, len).unwrap();
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
        let results = mp::launch(n_ranks, gather_on_all_to_all, 40).unwrap();
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
            let gathered = gather_queue(n_ranks, 2_000).unwrap();
            assert_eq!(
                gathered.values,
                expected(n_ranks, 2_000),
                "{n_ranks} ranks, run {run}: arrival order was {:?}",
                gathered.arrival
            );
            let mut arrived = gathered.arrival.clone();
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
    let star = gather_star(5, 10_000).unwrap();
    for _ in 0..3 {
        let queue = gather_queue(5, 10_000).unwrap();
        assert_eq!(bits(&queue.values), bits(&star), "arrival order {:?}", queue.arrival);
    }
}

#[test]
fn the_shared_end_gather_returns_every_vector_or_a_corrupted_error_never_wrong_data() {
    let _watchdog = course::watchdog(Duration::from_secs(60));
    // Messages larger than the pipe's buffer: the writers' bytes often interleave.
    let (n_ranks, len) = (4, 60_000);
    for run in 0..4 {
        match gather_shared_end(n_ranks, len) {
            Ok(values) => assert!(
                bits(&values) == bits(&expected(n_ranks, len)),
                "run {run}: the gather returned vectors that are not the ranks' vectors in rank \
                 order; a damaged message must be refused with an error, never returned"
            ),
            // What recv reports when the writers' bytes interleave (a damaged header, or a
            // damaged message that does not even decode).
            Err(mp::Error::Corrupted { .. } | mp::Error::Serialization { .. }) => {}
            Err(other) => panic!(
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
        let gathered = gather_shared_end(n_ranks, len);
        assert_eq!(gathered.unwrap(), expected(n_ranks, len), "{n_ranks} ranks, {len} numbers");
    }
}

#[test]
fn zero_ranks_is_an_invalid_argument_error_for_every_gather() {
    let _watchdog = course::watchdog(Duration::from_secs(60));
    let errors = [
        ("gather_shared_end", gather_shared_end(0, 10).err()),
        ("gather_star", gather_star(0, 10).err()),
        ("gather_queue", gather_queue(0, 10).err()),
    ];
    for (name, error) in errors {
        assert!(
            matches!(error, Some(mp::Error::InvalidArgument { .. })),
            "{name}(0 ranks) should be Err(mp::Error::InvalidArgument), got {error:?}"
        );
    }
}
