//! The graded tests of exercise 1: `cargo test -p exercise-1`.
//!
//! Each version must give exactly the serial results, in input order, for any number of
//! workers (also more workers than items), and return an error, not panic, for 0 workers.
mp::test_support!();

use std::time::Duration;

use pool_map::*;

/// What every version must return: computed here, independently of the exercise.
fn expected(n_items: u64) -> Vec<u64> {
    (0..n_items).map(hard_work).collect()
}

#[test]
fn serial_returns_hard_work_of_every_item_in_order() {
    let _watchdog = course::watchdog(Duration::from_secs(60));
    assert_eq!(serial(6), expected(6));
    assert_eq!(serial(1), expected(1));
    assert_eq!(serial(0), Vec::<u64>::new());
}

#[test]
fn pool_results_equal_the_serial_run_in_input_order_for_several_worker_counts() {
    let _watchdog = course::watchdog(Duration::from_secs(60));
    for workers in [1, 2, 3, 5] {
        let traced = with_pool(workers, 9, None).unwrap();
        assert_eq!(traced.results, expected(9), "Pool({workers}), 9 items");
    }
}

#[test]
fn pool_works_with_more_workers_than_items_and_with_one_item() {
    let _watchdog = course::watchdog(Duration::from_secs(60));
    assert_eq!(with_pool(4, 2, None).unwrap().results, expected(2), "Pool(4), 2 items");
    assert_eq!(with_pool(3, 1, None).unwrap().results, expected(1), "Pool(3), 1 item");
    assert_eq!(with_pool(2, 1, Some(5)).unwrap().results, expected(1), "chunksize 5, 1 item");
}

#[test]
fn pool_trace_has_every_item_exactly_once_on_a_worker_process() {
    let _watchdog = course::watchdog(Duration::from_secs(60));
    for chunksize in [None, Some(1), Some(4)] {
        let traced = with_pool(3, 10, chunksize).unwrap();
        let indices: Vec<usize> = traced.tasks.iter().map(|task| task.index).collect();
        assert_eq!(indices, (0..10).collect::<Vec<_>>(), "chunksize {chunksize:?}");
        for task in &traced.tasks {
            assert!(task.worker < 3, "item {} ran on worker {} of 3", task.index, task.worker);
            assert_ne!(task.pid, std::process::id(), "item {} ran in this process", task.index);
            assert!(task.start <= task.end, "item {} ends before it starts", task.index);
        }
    }
}

#[test]
fn pool_keeps_the_items_of_one_chunk_on_one_worker() {
    let _watchdog = course::watchdog(Duration::from_secs(60));
    // chunksize 4 over 10 items: chunks 0..4, 4..8, 8..10, each run by one worker, in order.
    let traced = with_pool(2, 10, Some(4)).unwrap();
    for chunk in traced.tasks.chunks(4) {
        let first = &chunk[0];
        for pair in chunk.windows(2) {
            assert_eq!(
                pair[1].worker, first.worker,
                "items {} and {} are in one chunk of 4 but ran on different workers",
                first.index, pair[1].index
            );
            assert!(pair[0].end <= pair[1].start, "a chunk's items run one after another");
        }
    }
}

#[test]
fn one_part_returns_hard_work_of_each_item_of_its_part() {
    let _watchdog = course::watchdog(Duration::from_secs(60));
    assert_eq!(one_part(vec![5, 2, 9]), [hard_work(5), hard_work(2), hard_work(9)]);
    assert_eq!(one_part(Vec::new()), Vec::<u64>::new());
}

#[test]
fn by_hand_covers_every_item_in_order_for_uneven_splits() {
    let _watchdog = course::watchdog(Duration::from_secs(60));
    let twenty = expected(20);
    // 20 items over 3 processes: parts of 7, 7 and 6; over 7: parts of 3 and 2.
    assert_eq!(by_hand(3, 20).unwrap(), twenty, "20 items over 3 processes");
    assert_eq!(by_hand(7, 20).unwrap(), twenty, "20 items over 7 processes");
    assert_eq!(by_hand(1, 5).unwrap(), expected(5), "5 items over 1 process");
}

#[test]
fn by_hand_works_with_more_processes_than_items_and_with_one_item() {
    let _watchdog = course::watchdog(Duration::from_secs(60));
    // np.array_split gives empty parts at the end: those processes have nothing to do.
    assert_eq!(by_hand(7, 3).unwrap(), expected(3), "3 items over 7 processes");
    assert_eq!(by_hand(2, 1).unwrap(), expected(1), "1 item over 2 processes");
}

#[test]
fn threads_results_equal_the_serial_run_in_input_order() {
    let _watchdog = course::watchdog(Duration::from_secs(60));
    for threads in [1, 2, 3] {
        assert_eq!(with_threads(threads, 9).unwrap(), expected(9), "{threads} threads");
    }
    assert_eq!(with_threads(4, 1).unwrap(), expected(1), "4 threads, 1 item");
}

#[test]
fn zero_workers_is_an_error_for_every_version_not_a_panic() {
    let _watchdog = course::watchdog(Duration::from_secs(60));
    let invalid = |error: mp::Error| matches!(error, mp::Error::InvalidArgument { .. });
    assert!(invalid(with_pool(0, 5, None).unwrap_err()), "Pool with 0 workers");
    assert!(invalid(by_hand(0, 5).unwrap_err()), "by hand with 0 processes");
    assert!(invalid(with_threads(0, 5).unwrap_err()), "0 threads");
}

#[test]
fn a_chunksize_of_zero_is_an_error_not_a_panic() {
    let _watchdog = course::watchdog(Duration::from_secs(60));
    let error = with_pool(2, 5, Some(0)).unwrap_err();
    assert!(matches!(error, mp::Error::InvalidArgument { .. }), "got {error}");
}
