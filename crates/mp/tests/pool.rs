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

// ---------------------------------------------------------------------------------------------
// Tasks that wait on each other (issue 10): where chunks go.

/// The course sheet's first program: rank 0 receives what rank 1 sends through a pipe.
fn talk(rank: u32, end: mp::Connection<String>) -> String {
    if rank == 0 {
        end.recv().unwrap()
    } else {
        end.send(&format!("hello from rank {rank}")).unwrap();
        "sent".to_string()
    }
}

#[test]
fn the_sheets_pipe_sample_runs_both_tasks_at_once_in_either_order() {
    // Python's `Pool(2).starmap(f, [(0, receiving_end), (1, sending_end)])`, on a pool used
    // right after `new` (its second worker usually still starting). With both tasks queued
    // on the first worker, the receiver would wait forever for a sender queued behind it.
    let _guard = watchdog(LIMIT);
    for _round in 0..5 {
        for receiver_first in [true, false] {
            let pool = Pool::new(2).unwrap();
            let (receiving_end, sending_end) = mp::pipe::<String>().unwrap();
            let (tasks, expected) = if receiver_first {
                (vec![(0, receiving_end), (1, sending_end)], ["hello from rank 1", "sent"])
            } else {
                (vec![(1, sending_end), (0, receiving_end)], ["sent", "hello from rank 1"])
            };
            assert_eq!(pool.starmap(talk, tasks).unwrap(), expected);
        }
    }
}

#[test]
fn tasks_no_more_than_workers_each_get_a_worker_whatever_the_call() {
    let _guard = watchdog(LIMIT);
    for _round in 0..3 {
        // A chunk size above 1 still gives each of two items its own worker.
        let pool = Pool::new(2).unwrap();
        let (receiving_end, sending_end) = mp::pipe::<String>().unwrap();
        let tasks = vec![(0, receiving_end), (1, sending_end)];
        let results = pool.map_chunked(|(rank, end)| talk(rank, end), tasks, 2).unwrap();
        assert_eq!(results, ["hello from rank 1", "sent"]);

        // Two apply_async calls that talk to each other.
        let pool = Pool::new(2).unwrap();
        let (receiving_end, sending_end) = mp::pipe::<String>().unwrap();
        let receiver = pool.apply_async(|end| talk(0, end), receiving_end).unwrap();
        let sender = pool.apply_async(|end| talk(1, end), sending_end).unwrap();
        assert_eq!(receiver.get().unwrap(), "hello from rank 1");
        assert_eq!(sender.get().unwrap(), "sent");

        // imap and imap_unordered, with a chunk size above 1.
        let pool = Pool::new(2).unwrap();
        let (receiving_end, sending_end) = mp::pipe::<String>().unwrap();
        let tasks = vec![(0, receiving_end), (1, sending_end)];
        let results: Vec<String> = pool
            .imap(|(rank, end)| talk(rank, end), tasks, 4)
            .unwrap()
            .map(Result::unwrap)
            .collect();
        assert_eq!(results, ["hello from rank 1", "sent"]);
        let (receiving_end, sending_end) = mp::pipe::<String>().unwrap();
        let tasks = vec![(0, receiving_end), (1, sending_end)];
        let mut results: Vec<String> = pool
            .imap_unordered(|(rank, end)| talk(rank, end), tasks, 4)
            .unwrap()
            .map(Result::unwrap)
            .collect();
        results.sort();
        assert_eq!(results, ["hello from rank 1", "sent"]);
    }
}

/// Role 0 waits until role 2 has raised the flag; role 1 naps a little; role 2 raises it.
fn wait_nap_or_signal((role, flag): (u32, mp::SharedArray<u64>)) -> u32 {
    match role {
        0 => {
            while flag.get(0) == 0 {
                std::thread::sleep(Duration::from_millis(1));
            }
        }
        1 => std::thread::sleep(Duration::from_millis(20)),
        _ => flag.set(0, 1),
    }
    role
}

/// As `wait_nap_or_signal`, with a file as the flag: the chunk carries no descriptor, so the
/// pool may queue it ahead on a busy worker, and must take it back when another falls idle.
fn wait_nap_or_signal_by_file((role, flag): (u32, String)) -> u32 {
    match role {
        0 => {
            while !std::path::Path::new(&flag).exists() {
                std::thread::sleep(Duration::from_millis(1));
            }
        }
        1 => std::thread::sleep(Duration::from_millis(20)),
        _ => std::fs::write(&flag, b"go").unwrap(),
    }
    role
}

const ORDERS: [&[u32]; 3] = [&[0, 2, 1, 1, 1], &[0, 1, 1, 1, 2], &[0, 1, 2, 1, 1, 1, 1]];

#[test]
fn with_more_tasks_than_workers_a_waiting_task_never_holds_back_the_one_it_waits_for() {
    // The first task blocks until a later one signals it. While a worker is free, the later
    // one must not sit queued behind the blocked one.
    let _guard = watchdog(LIMIT);
    let orders = ORDERS;
    for _round in 0..3 {
        for roles in orders {
            for n_workers in [2, 3] {
                let pool = Pool::new(n_workers).unwrap();
                let flag = mp::SharedArray::<u64>::new(1).unwrap();
                let tasks: Vec<_> = roles.iter().map(|&role| (role, flag.clone())).collect();
                assert_eq!(pool.map_chunked(wait_nap_or_signal, tasks, 1).unwrap(), roles);
                flag.set(0, 0);
                let tasks: Vec<_> = roles.iter().map(|&role| (role, flag.clone())).collect();
                assert_eq!(pool.map(wait_nap_or_signal, tasks).unwrap(), roles);
                flag.set(0, 0);
                let tasks: Vec<_> = roles.iter().map(|&role| (role, flag.clone())).collect();
                let mut results: Vec<u32> = pool
                    .imap_unordered(wait_nap_or_signal, tasks, 1)
                    .unwrap()
                    .map(Result::unwrap)
                    .collect();
                results.sort();
                let mut expected = roles.to_vec();
                expected.sort();
                assert_eq!(results, expected);
            }
        }
    }
}

#[test]
fn a_task_queued_ahead_behind_a_waiting_one_is_taken_back_for_an_idle_worker() {
    // The same, with tasks that carry no descriptor: while every worker is busy, the next
    // task is queued ahead on one of them, possibly behind the waiting task.
    let _guard = watchdog(LIMIT);
    let directory = std::env::temp_dir().join(format!("mp-pool-take-back-{}", std::process::id()));
    std::fs::create_dir_all(&directory).unwrap();
    let mut run = 0;
    for _round in 0..3 {
        for roles in ORDERS {
            for n_workers in [2, 3] {
                let pool = Pool::new(n_workers).unwrap();
                for chunked in [true, false] {
                    run += 1;
                    let flag = directory.join(run.to_string()).to_string_lossy().into_owned();
                    let tasks: Vec<_> = roles.iter().map(|&role| (role, flag.clone())).collect();
                    let results = if chunked {
                        pool.map_chunked(wait_nap_or_signal_by_file, tasks, 1).unwrap()
                    } else {
                        pool.map_async(wait_nap_or_signal_by_file, tasks).unwrap().get().unwrap()
                    };
                    assert_eq!(results, roles);
                }
            }
        }
    }
    std::fs::remove_dir_all(&directory).unwrap();
}

fn signal(pid: u32, which: &str) {
    let status = std::process::Command::new("kill").args([which, &pid.to_string()]).status();
    assert!(status.unwrap().success(), "kill {which} {pid} failed");
}

#[test]
fn map_async_get_timeout_ends_the_wait_for_a_stopped_worker() {
    let _guard = watchdog(LIMIT);
    let pool = Pool::new(2).unwrap();
    let pids = pool.pids().to_vec();
    // Two items: one per worker, so both workers are up afterwards.
    assert_eq!(pool.map(square, 0..2u64).unwrap(), [0, 1]);

    // A stopped worker (SIGSTOP: alive, never dead) holds one of the two tasks.
    signal(pids[0], "-STOP");
    let mut pending = pool.map_async(square, 0..2u64).unwrap();
    let error = pending.get_timeout(Duration::from_millis(200)).unwrap_err();
    assert!(
        matches!(&error, Error::Timeout { what, .. } if what.contains("1 of 2") || what.contains("0 of 2")),
        "{error}"
    );
    // Nothing is lost: once the worker goes on, waiting again gives the results.
    signal(pids[0], "-CONT");
    assert_eq!(pending.get_timeout(LIMIT).unwrap(), [0, 1]);
    assert!(pending.get_timeout(LIMIT).unwrap_err().to_string().contains("already given"));
    drop(pending);
    assert_eq!(pool.map(square, 0..5u64).unwrap(), [0, 1, 4, 9, 16]);

    // Given up after a time-out while the stopped worker holds a task: the pool kills its
    // workers and is broken, and later calls fail at once instead of waiting forever.
    signal(pids[0], "-STOP");
    let mut pending = pool.map_async(square, 0..2u64).unwrap();
    assert!(pending.get_timeout(Duration::from_millis(200)).unwrap_err().is_timeout());
    drop(pending);
    let error = pool.map(square, 0..2u64).unwrap_err();
    match &error {
        Error::PoolBroken { cause } => {
            assert!(cause.contains(&format!("worker 0 (pid {})", pids[0])), "{error}")
        }
        other => panic!("expected PoolBroken, got {other:?}"),
    }
    assert!(matches!(pool.apply(square, 3), Err(Error::PoolBroken { .. })));
    drop(pool);
    for pid in pids {
        assert!(common::is_gone_and_reaped(pid), "worker {pid} outlived its pool");
    }
    assert_eq!(common::zombie_children(), Vec::<u32>::new());
}

#[test]
fn apply_async_given_up_after_a_time_out_breaks_the_pool_but_a_finished_one_does_not() {
    let _guard = watchdog(LIMIT);
    let pool = Pool::new(2).unwrap();
    let pids = pool.pids().to_vec();
    // Timed out, then waited for again until done: dropping it gives nothing up.
    let mut pending = pool.apply_async(nap, 300).unwrap();
    assert!(pending.get_timeout(Duration::from_millis(1)).unwrap_err().is_timeout());
    assert_eq!(pending.get_timeout(LIMIT).unwrap(), 300);
    drop(pending);
    // Only looked at: not given up either.
    let mut pending = pool.apply_async(nap, 1).unwrap();
    let _ = pending.ready();
    drop(pending);
    assert_eq!(pool.apply(square, 4).unwrap(), 16);
    // Given up while it runs: the pool is broken, and its workers are gone.
    let mut pending = pool.apply_async(nap, 60_000).unwrap();
    assert!(pending.get_timeout(Duration::from_millis(10)).unwrap_err().is_timeout());
    drop(pending);
    assert!(matches!(pool.apply(square, 4), Err(Error::PoolBroken { .. })));
    assert!(common::eventually(LIMIT, || pids.iter().all(|&pid| common::is_gone_and_reaped(pid))));
}

#[test]
fn imap_next_timeout_times_out_then_goes_on() {
    let _guard = watchdog(LIMIT);
    let pool = Pool::new(2).unwrap();
    let mut results = pool.imap(nap, [300u64, 1], 1).unwrap();
    assert!(results.next_timeout(Duration::from_millis(1)).unwrap().unwrap_err().is_timeout());
    assert_eq!(results.next_timeout(LIMIT).unwrap().unwrap(), 300);
    assert_eq!(results.next_timeout(LIMIT).unwrap().unwrap(), 1);
    assert!(results.next_timeout(LIMIT).is_none());
    drop(results);
    // Finished before it was dropped: nothing given up.
    assert_eq!(pool.map(square, 0..3u64).unwrap(), [0, 1, 4]);
}
