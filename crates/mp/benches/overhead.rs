//! What processes cost: start-up, per-task overhead of a pool, pipe round trips and queue
//! throughput. Run with `cargo bench -p mp`; the medians are in criterion's report.
//!
//! Workers re-execute this bench binary, so `main` is written by hand and calls `mp::init()`
//! before criterion reads the command line.

use std::{
    hint::black_box,
    time::{Duration, Instant},
};

use criterion::{BenchmarkGroup, BenchmarkId, Criterion, Throughput, measurement::WallTime};
use mp::{Connection, Pool, Process, Queue};

fn nothing(x: u64) -> u64 {
    x
}

fn echo(connection: Connection<()>) -> u64 {
    let mut echoed = 0;
    let mut buffer = Vec::new();
    while connection.recv_bytes_into(&mut buffer).is_ok() {
        if connection.send_bytes(&buffer).is_err() {
            break;
        }
        echoed += 1;
    }
    echoed
}

/// The typed counterpart of [`echo`]: every `u8` that arrives goes back.
fn echo_typed(connection: Connection<u8>) -> u64 {
    let mut echoed = 0;
    while let Ok(value) = connection.recv() {
        if connection.send(&value).is_err() {
            break;
        }
        echoed += 1;
    }
    echoed
}

fn produce((queue, n_items): (Queue<u64>, u64)) -> u64 {
    for item in 0..n_items {
        queue.put(&item).unwrap();
    }
    n_items
}

/// Ten samples per benchmark: every group finishes in seconds on a shared 2-core machine,
/// and the median is what we report.
fn short_group<'a>(
    c: &'a mut Criterion,
    name: &str,
    warm_up: Duration,
    measurement: Duration,
) -> BenchmarkGroup<'a, WallTime> {
    let mut group = c.benchmark_group(name);
    group.sample_size(10).warm_up_time(warm_up).measurement_time(measurement);
    group
}

fn startup(c: &mut Criterion) {
    let mut group = short_group(c, "startup", Duration::from_millis(500), Duration::from_secs(3));
    group.bench_function("process spawn+join", |b| {
        b.iter(|| Process::spawn(nothing, 1).unwrap().join().unwrap());
    });
    for n_workers in [1, 2, 4] {
        group.bench_with_input(
            BenchmarkId::new("pool ready + first map", n_workers),
            &n_workers,
            |b, &n| {
                b.iter(|| {
                    let pool = Pool::new(n).unwrap();
                    black_box(pool.map(nothing, [1u64]).unwrap());
                });
            },
        );
    }
    group.finish();
}

fn per_task(c: &mut Criterion) {
    let mut group =
        short_group(c, "map per task", Duration::from_millis(500), Duration::from_secs(3));
    let pool = Pool::new(4).unwrap();
    for (label, n_tasks, chunksize) in
        [("chunksize 1", 10_000u64, Some(1)), ("default chunksize", 100_000, None)]
    {
        group.throughput(Throughput::Elements(n_tasks));
        group.bench_function(BenchmarkId::new("pool(4)", label), |b| {
            b.iter(|| match chunksize {
                Some(chunksize) => {
                    black_box(pool.map_chunked(nothing, 0..n_tasks, chunksize).unwrap())
                }
                None => black_box(pool.map(nothing, 0..n_tasks).unwrap()),
            });
        });
    }
    group.finish();
}

fn million_floats(seed: u64) -> Vec<f64> {
    (0..1_000_000u64).map(|index| (seed + index) as f64).collect()
}

/// Python's `pool.map(make_array, range(4))` with 1e6 float64 per result, on a started pool.
fn gather(c: &mut Criterion) {
    let mut group = short_group(c, "gather", Duration::from_millis(500), Duration::from_secs(3));
    let pool = Pool::new(4).unwrap();
    group.throughput(Throughput::Bytes(4 * 8_000_000));
    group.bench_function("pool(4).map: 4 x 1e6 f64 to the parent", |b| {
        b.iter(|| black_box(pool.map_chunked(million_floats, 0..4u64, 1).unwrap()));
    });
    group.finish();
}

fn pipe_round_trip(c: &mut Criterion) {
    let mut group =
        short_group(c, "pipe round trip", Duration::from_millis(300), Duration::from_secs(2));
    let (here, there) = mp::pipe::<()>().unwrap();
    let mut echoer = Process::spawn(echo, there).unwrap();
    for n_bytes in [1usize, 8, 64, 4 << 10, 64 << 10, 256 << 10, 4 << 20, 64 << 20] {
        let message = vec![1u8; n_bytes];
        // Each round trip moves the message twice.
        group.throughput(Throughput::Bytes(2 * n_bytes as u64));
        let mut reply = Vec::new();
        group.bench_with_input(BenchmarkId::from_parameter(n_bytes), &message, |b, message| {
            b.iter_custom(|iterations| {
                let started = Instant::now();
                for _ in 0..iterations {
                    here.send_bytes(message).unwrap();
                    here.recv_bytes_into(&mut reply).unwrap();
                    black_box(&reply);
                }
                started.elapsed()
            });
        });
    }
    group.finish();
    drop(here);
    echoer.join().unwrap();
}

/// A 1-byte typed message (`send(&u8)` / `recv()`) there and back: what a typed message costs
/// over raw bytes (the type fingerprint, postcard).
fn typed_round_trip(c: &mut Criterion) {
    let mut group =
        short_group(c, "typed round trip", Duration::from_millis(300), Duration::from_secs(2));
    let (here, there) = mp::pipe::<u8>().unwrap();
    let mut echoer = Process::spawn(echo_typed, there).unwrap();
    group.bench_function("u8", |b| {
        b.iter_custom(|iterations| {
            let started = Instant::now();
            for _ in 0..iterations {
                here.send(&1).unwrap();
                black_box(here.recv().unwrap());
            }
            started.elapsed()
        });
    });
    group.finish();
    drop(here);
    echoer.join().unwrap();
}

/// One thread sends into a pipe and receives from its other end: the CPU cost of a 1-byte
/// message, typed and raw, without a second process (whose scheduling dominates the round trip
/// on a loaded machine).
fn local_message(c: &mut Criterion) {
    let mut group = short_group(
        c,
        "same-process send+recv",
        Duration::from_millis(300),
        Duration::from_secs(2),
    );
    let (here, there) = mp::pipe::<u8>().unwrap();
    group.bench_function("u8 typed", |b| {
        b.iter(|| {
            here.send(black_box(&1)).unwrap();
            black_box(there.recv().unwrap())
        });
    });
    let mut buffer = Vec::new();
    group.bench_function("1 B bytes", |b| {
        b.iter(|| {
            here.send_bytes(black_box(&[1])).unwrap();
            there.recv_bytes_into(&mut buffer).unwrap();
            black_box(buffer.len())
        });
    });
    group.finish();
}

fn queue_throughput(c: &mut Criterion) {
    let mut group = short_group(c, "queue", Duration::from_millis(300), Duration::from_secs(3));
    let n_items = 20_000u64;
    group.throughput(Throughput::Elements(n_items));
    group.bench_function("1 producer process, items/s", |b| {
        b.iter_custom(|iterations| {
            let mut elapsed = Duration::ZERO;
            for _ in 0..iterations {
                let queue = Queue::new().unwrap();
                let mut producer = Process::spawn(produce, (queue.clone(), n_items)).unwrap();
                // Time only the transfer: from the first item to the last.
                let first = queue.get().unwrap();
                let started = Instant::now();
                for _ in 1..n_items {
                    black_box(queue.get().unwrap());
                }
                elapsed += started.elapsed();
                black_box(first);
                producer.join().unwrap();
            }
            elapsed
        });
    });
    group.finish();
}

fn nap(millis: u64) -> u64 {
    std::thread::sleep(Duration::from_millis(millis));
    millis
}

/// From SIGKILL of a busy worker to `Error::WorkerDied` in the caller (Python's Pool: never).
fn fault_detection(c: &mut Criterion) {
    let mut group = short_group(c, "fault", Duration::from_millis(100), Duration::from_secs(2));
    group.bench_function("worker killed -> error", |b| {
        b.iter_custom(|iterations| {
            let mut elapsed = Duration::ZERO;
            for _ in 0..iterations {
                let pool = Pool::new(2).unwrap();
                let victim = pool.pids()[0];
                let killer = std::thread::spawn(move || {
                    std::thread::sleep(Duration::from_millis(30));
                    let killed_at = Instant::now();
                    std::process::Command::new("kill")
                        .args(["-KILL", &victim.to_string()])
                        .status()
                        .unwrap();
                    killed_at
                });
                let error = pool.map_chunked(nap, vec![10_000u64; 4], 1).unwrap_err();
                let noticed_at = Instant::now();
                assert!(matches!(error, mp::Error::WorkerDied { .. }), "{error}");
                // Measured from just before `kill` runs, so the figure includes starting it.
                elapsed += noticed_at.duration_since(killer.join().unwrap());
            }
            elapsed
        });
    });
    group.finish();
}

fn main() {
    mp::init();
    let mut criterion = Criterion::default().configure_from_args();
    startup(&mut criterion);
    per_task(&mut criterion);
    gather(&mut criterion);
    pipe_round_trip(&mut criterion);
    typed_round_trip(&mut criterion);
    local_message(&mut criterion);
    queue_throughput(&mut criterion);
    fault_detection(&mut criterion);
    criterion.final_summary();
}
