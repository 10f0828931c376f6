//! The graded tests of exercise 1: `cargo test -p exercise-1`.
//!
//! Each version must give exactly the serial results, in input order, for any number of
//! workers (also more workers than items), and return an error, not panic, for 0 workers.
//!
//! Every call to your code is wrapped in `observe!`: its value is printed as plain data, and
//! `cargo xtask grade` checks it again in a process without your code (see the `judge` crate).
mp::test_support!();

use std::time::Duration;

use judge::observe;
use pool_map::*;

/// What every version must return: computed here with the course's `hard_work` (when graded,
/// in a build of these tests without your code).
fn expected(n_items: u64) -> Vec<u64> {
    (0..n_items).map(given_hard_work).collect()
}

/// The course's own `hard_work`, whatever `lib.rs` exports under that name.
#[path = "../src/given.rs"]
#[allow(dead_code)]
mod course_given;
use course_given::hard_work as given_hard_work;

/// An error as plain data: `Some(true)` for `InvalidArgument`, `Some(false)` for another one,
/// `None` for no error.
fn invalid_argument<T>(result: mp::Result<T>) -> Option<bool> {
    result.err().map(|error| matches!(error, mp::Error::InvalidArgument { .. }))
}

/// One task record as plain data: (index, worker, pid, start, end).
type Task = (usize, usize, u32, Duration, Duration);

/// `with_pool` as plain data: the results and the trace, or the error's text.
fn pool(
    n_workers: usize,
    n_items: u64,
    chunksize: Option<usize>,
) -> Result<(Vec<u64>, Vec<Task>), String> {
    let traced = with_pool(n_workers, n_items, chunksize).map_err(|error| error.to_string())?;
    let tasks = traced.tasks.iter().map(|t| (t.index, t.worker, t.pid, t.start, t.end)).collect();
    Ok((traced.results, tasks))
}

fn results(traced: Result<(Vec<u64>, Vec<Task>), String>) -> Vec<u64> {
    traced.unwrap_or_else(|error| panic!("with_pool failed: {error}")).0
}

#[test]
fn serial_returns_hard_work_of_every_item_in_order() {
    let _watchdog = course::watchdog(Duration::from_secs(60));
    assert_eq!(observe!(serial(6)), expected(6));
    assert_eq!(observe!(serial(1)), expected(1));
    assert_eq!(observe!(serial(0)), Vec::<u64>::new());
}

#[test]
fn pool_results_equal_the_serial_run_in_input_order_for_several_worker_counts() {
    let _watchdog = course::watchdog(Duration::from_secs(60));
    for workers in [1, 2, 3, 5] {
        let results = results(observe!(pool(workers, 9, None)));
        assert_eq!(results, expected(9), "Pool({workers}), 9 items");
    }
}

#[test]
fn pool_works_with_more_workers_than_items_and_with_one_item() {
    let _watchdog = course::watchdog(Duration::from_secs(60));
    assert_eq!(results(observe!(pool(4, 2, None))), expected(2), "Pool(4), 2 items");
    assert_eq!(results(observe!(pool(3, 1, None))), expected(1), "Pool(3), 1 item");
    assert_eq!(results(observe!(pool(2, 1, Some(5)))), expected(1), "chunksize 5, 1 item");
}

#[test]
fn pool_trace_has_every_item_exactly_once_on_a_worker_process() {
    let _watchdog = course::watchdog(Duration::from_secs(60));
    let this_process = observe!(std::process::id());
    for chunksize in [None, Some(1), Some(4)] {
        let traced = observe!(pool(3, 10, chunksize));
        let (results, tasks) = traced.unwrap_or_else(|error| panic!("with_pool failed: {error}"));
        assert_eq!(results, expected(10), "chunksize {chunksize:?}");
        let indices: Vec<usize> = tasks.iter().map(|task| task.0).collect();
        assert_eq!(indices, (0..10).collect::<Vec<_>>(), "chunksize {chunksize:?}");
        for &(index, worker, pid, start, end) in &tasks {
            assert!(worker < 3, "item {index} ran on worker {worker} of 3");
            assert_ne!(pid, this_process, "item {index} ran in this process");
            assert!(start <= end, "item {index} ends before it starts");
        }
        // One process per worker, and not more workers than the pool has.
        let mut pairs: Vec<(usize, u32)> = tasks.iter().map(|t| (t.1, t.2)).collect();
        pairs.sort_unstable();
        pairs.dedup();
        let mut pids: Vec<u32> = pairs.iter().map(|pair| pair.1).collect();
        pids.sort_unstable();
        pids.dedup();
        assert_eq!(pids.len(), pairs.len(), "two workers shared a process, or one had two");
    }
}

#[test]
fn pool_keeps_the_items_of_one_chunk_on_one_worker() {
    let _watchdog = course::watchdog(Duration::from_secs(60));
    // chunksize 4 over 10 items: chunks 0..4, 4..8, 8..10, each run by one worker, in order.
    let traced = observe!(pool(2, 10, Some(4)));
    let (results, tasks) = traced.unwrap_or_else(|error| panic!("with_pool failed: {error}"));
    assert_eq!(results, expected(10));
    assert_eq!(tasks.len(), 10, "one record per item");
    for chunk in tasks.chunks(4) {
        let first = &chunk[0];
        for pair in chunk.windows(2) {
            assert_eq!(
                pair[1].1, first.1,
                "items {} and {} are in one chunk of 4 but ran on different workers",
                first.0, pair[1].0
            );
            assert!(pair[0].4 <= pair[1].3, "a chunk's items run one after another");
        }
    }
}

#[test]
fn one_part_returns_hard_work_of_each_item_of_its_part() {
    let _watchdog = course::watchdog(Duration::from_secs(60));
    let expected = [given_hard_work(5), given_hard_work(2), given_hard_work(9)];
    assert_eq!(observe!(one_part(vec![5, 2, 9])), expected);
    assert_eq!(observe!(one_part(Vec::new())), Vec::<u64>::new());
}

#[test]
fn by_hand_covers_every_item_in_order_for_uneven_splits() {
    let _watchdog = course::watchdog(Duration::from_secs(60));
    let twenty = expected(20);
    // 20 items over 3 processes: parts of 7, 7 and 6; over 7: parts of 3 and 2.
    let by_hand = |n_processes, n_items| {
        observe!(by_hand(n_processes, n_items).map_err(|error| error.to_string()))
            .unwrap_or_else(|error| panic!("by_hand failed: {error}"))
    };
    assert_eq!(by_hand(3, 20), twenty, "20 items over 3 processes");
    assert_eq!(by_hand(7, 20), twenty, "20 items over 7 processes");
    assert_eq!(by_hand(1, 5), expected(5), "5 items over 1 process");
}

#[test]
fn by_hand_works_with_more_processes_than_items_and_with_one_item() {
    let _watchdog = course::watchdog(Duration::from_secs(60));
    // np.array_split gives empty parts at the end: those processes have nothing to do.
    let by_hand = |n_processes, n_items| {
        observe!(by_hand(n_processes, n_items).map_err(|error| error.to_string()))
            .unwrap_or_else(|error| panic!("by_hand failed: {error}"))
    };
    assert_eq!(by_hand(7, 3), expected(3), "3 items over 7 processes");
    assert_eq!(by_hand(2, 1), expected(1), "1 item over 2 processes");
}

#[test]
fn threads_results_equal_the_serial_run_in_input_order() {
    let _watchdog = course::watchdog(Duration::from_secs(60));
    let with_threads = |n_threads, n_items| {
        observe!(with_threads(n_threads, n_items).map_err(|error| error.to_string()))
            .unwrap_or_else(|error| panic!("with_threads failed: {error}"))
    };
    for threads in [1, 2, 3] {
        assert_eq!(with_threads(threads, 9), expected(9), "{threads} threads");
    }
    assert_eq!(with_threads(4, 1), expected(1), "4 threads, 1 item");
}

#[test]
fn zero_workers_is_an_error_for_every_version_not_a_panic() {
    let _watchdog = course::watchdog(Duration::from_secs(60));
    let pool = observe!(invalid_argument(with_pool(0, 5, None)));
    assert_eq!(pool, Some(true), "Pool with 0 workers: Some(true) is Err(InvalidArgument)");
    let by_hand = observe!(invalid_argument(by_hand(0, 5)));
    assert_eq!(by_hand, Some(true), "by hand with 0 processes");
    let threads = observe!(invalid_argument(with_threads(0, 5)));
    assert_eq!(threads, Some(true), "0 threads");
}

#[test]
fn a_chunksize_of_zero_is_an_error_not_a_panic() {
    let _watchdog = course::watchdog(Duration::from_secs(60));
    let error = observe!(invalid_argument(with_pool(2, 5, Some(0))));
    assert_eq!(error, Some(true), "Some(true) is Err(InvalidArgument), None is Ok");
}
