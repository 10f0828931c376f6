//! Pool: results, chunking, streaming, async results, tracing and task panics.

mod common;

use std::time::Duration;

use common::watchdog;
use mp::{Error, Pool, Queue};

mp::test_support!();

const LIMIT: Duration = Duration::from_secs(60);

fn square(x: u64) -> u64 {
    x * x
}

fn fails_on_seven(x: u32) -> u32 {
    if x == 7 {
        panic!("seven is not allowed");
    }
    x
}

fn nap(millis: u64) -> u64 {
    std::thread::sleep(Duration::from_millis(millis));
    millis
}

#[test]
fn map_equals_serial_map_in_order_for_any_size() {
    let _guard = watchdog(LIMIT);
    for n_workers in 1..=3 {
        let pool = Pool::new(n_workers).unwrap();
        for n_items in [0u64, 1, 2, 20, 1000] {
            let expected: Vec<u64> = (0..n_items).map(square).collect();
            assert_eq!(
                pool.map(square, 0..n_items).unwrap(),
                expected,
                "{n_workers} workers, {n_items} items"
            );
            assert_eq!(pool.map_chunked(square, 0..n_items, 1).unwrap(), expected);
            assert_eq!(pool.map_chunked(square, 0..n_items, 7).unwrap(), expected);
        }
    }
}

#[test]
fn bad_sizes_are_errors_not_panics() {
    let _guard = watchdog(LIMIT);
    assert!(matches!(Pool::new(0), Err(Error::InvalidArgument { .. })));
    assert!(matches!(Pool::new(100_000), Err(Error::InvalidArgument { .. })));
    let pool = Pool::new(1).unwrap();
    let error = pool.map_chunked(square, 0..3u64, 0).unwrap_err();
    assert!(error.to_string().contains("chunksize must be at least 1"), "{error}");
    assert!(pool.imap(square, 0..3u64, 0).is_err());
}

#[test]
fn traced_map_records_every_item_once_with_its_worker() {
    let _guard = watchdog(LIMIT);
    let pool = Pool::new(2).unwrap();
    let traced = pool.map_traced(square, 0..40u64, Some(1)).unwrap();
    assert_eq!(traced.results, (0..40).map(square).collect::<Vec<_>>());
    let indices: Vec<usize> = traced.tasks.iter().map(|task| task.index).collect();
    assert_eq!(indices, (0..40).collect::<Vec<_>>());
    for task in &traced.tasks {
        assert!(task.worker < 2);
        assert_eq!(task.pid, pool.pids()[task.worker]);
        assert!(task.start <= task.end);
    }
}

#[test]
fn default_chunks_keep_consecutive_items_on_one_worker() {
    let _guard = watchdog(LIMIT);
    let pool = Pool::new(2).unwrap();
    // Python's rule: ceil(20 / (4 * 2)) = 3 items per chunk.
    assert_eq!(mp::split::default_chunksize(20, 2).unwrap(), 3);
    let traced = pool.map_traced(square, 0..20u64, None).unwrap();
    for chunk in traced.tasks.chunks(3) {
        assert!(chunk.iter().all(|task| task.worker == chunk[0].worker), "{chunk:?}");
    }
}

fn power(base: u64, exponent: u32) -> u64 {
    base.pow(exponent)
}

fn weighted(a: f64, b: f64, weight: f64) -> f64 {
    a * weight + b * (1.0 - weight)
}

#[test]
fn starmap_unpacks_tuples() {
    let _guard = watchdog(LIMIT);
    let pool = Pool::new(2).unwrap();
    assert_eq!(pool.starmap(power, vec![(2, 10), (3, 3), (10, 0)]).unwrap(), [1024, 27, 1]);
    assert_eq!(pool.starmap(weighted, vec![(1.0, 3.0, 0.5)]).unwrap(), [2.0]);
}

#[test]
fn imap_streams_lazily_in_order_and_unordered_returns_everything() {
    let _guard = watchdog(LIMIT);
    let pool = Pool::new(2).unwrap();
    // An endless input: only a lazy imap can return from this.
    let first: Vec<u64> =
        pool.imap(square, 0u64.., 3).unwrap().take(100).map(Result::unwrap).collect();
    assert_eq!(first, (0..100).map(square).collect::<Vec<_>>());
    let mut unordered: Vec<u64> =
        pool.imap_unordered(square, 0..300u64, 1).unwrap().map(Result::unwrap).collect();
    unordered.sort();
    assert_eq!(unordered, (0..300).map(square).collect::<Vec<_>>());
    // The pool is still fine after an abandoned stream.
    assert_eq!(pool.map(square, 0..4u64).unwrap(), [0, 1, 4, 9]);
}

#[test]
fn apply_async_times_out_then_delivers() {
    let _guard = watchdog(LIMIT);
    let pool = Pool::new(2).unwrap();
    let mut pending = pool.apply_async(nap, 300).unwrap();
    let quick = pool.apply_async(square, 5).unwrap();
    assert!(pending.get_timeout(Duration::from_millis(1)).unwrap_err().is_timeout());
    assert_eq!(quick.get().unwrap(), 25);
    assert_eq!(pending.get_timeout(Duration::from_secs(30)).unwrap(), 300);
    assert_eq!(pool.apply(square, 9).unwrap(), 81);
}

#[test]
fn a_panicking_task_is_an_error_with_index_message_and_location() {
    let _guard = watchdog(LIMIT);
    let pool = Pool::new(2).unwrap();
    match pool.map_chunked(fails_on_seven, 0..20u32, 4) {
        Err(Error::TaskPanicked { message, location, task_index, pid }) => {
            assert_eq!(message, "seven is not allowed");
            assert_eq!(task_index, Some(7));
            assert!(location.unwrap().contains("pool.rs"));
            assert!(pool.pids().contains(&pid));
        }
        other => panic!("expected TaskPanicked, got {other:?}"),
    }
    // The worker survived the panic and the pool goes on.
    assert_eq!(pool.map(fails_on_seven, 0..7u32).unwrap(), (0..7).collect::<Vec<_>>());
}

fn produce((queue, producer): (Queue<(u32, u32)>, u32)) -> u32 {
    for sequence in 0..100 {
        queue.put(&(producer, sequence)).unwrap();
    }
    producer
}

#[test]
fn pool_workers_can_put_into_a_queue() {
    let _guard = watchdog(LIMIT);
    let pool = Pool::new(2).unwrap();
    let queue = Queue::new().unwrap();
    let tasks: Vec<_> = (0..4).map(|producer| (queue.clone(), producer)).collect();
    assert_eq!(pool.map_chunked(produce, tasks, 1).unwrap(), [0, 1, 2, 3]);
    let mut next = [0u32; 4];
    for _ in 0..400 {
        let (producer, sequence) = queue.get_timeout(Duration::from_secs(30)).unwrap();
        // Each producer's items arrive in the order it put them.
        assert_eq!(sequence, next[producer as usize]);
        next[producer as usize] += 1;
    }
    assert_eq!(next, [100; 4]);
    assert!(queue.get_timeout(Duration::from_millis(20)).unwrap_err().is_timeout());
}

#[test]
fn dropping_the_pool_reaps_every_worker() {
    let _guard = watchdog(LIMIT);
    let pool = Pool::new(3).unwrap();
    let pids = pool.pids().to_vec();
    assert!(pids.iter().all(|&pid| common::is_running(pid)));
    let _abandoned = pool.apply_async(nap, 60_000).unwrap();
    drop(_abandoned);
    drop(pool);
    for pid in pids {
        assert!(common::is_gone_and_reaped(pid), "worker {pid} outlived its pool");
    }
}

#[test]
fn a_pool_dropped_while_its_workers_start_stops_at_once() {
    // Dropped at once, most pools still have workers being launched in the background; the
    // drop must neither hang nor leave them running (the watchdog and the reaping check).
    let _guard = watchdog(LIMIT);
    for _ in 0..20 {
        drop(Pool::new(4).unwrap());
    }
    let pool = Pool::new(4).unwrap();
    let pids = pool.pids().to_vec();
    drop(pool);
    for pid in pids {
        assert!(common::is_gone_and_reaped(pid), "worker {pid} outlived its pool");
    }
}
