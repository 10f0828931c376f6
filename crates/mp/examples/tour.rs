//! A two-second tour of mp: run with `cargo run --release -p mp --example tour`.
//!
//! It shows the lecture's points on real processes: a pool splits work unevenly and
//! dynamically, starting processes costs milliseconds, and a transfer has a latency and a
//! bandwidth that need exact units.

use std::time::Instant;

use mp::{
    Pool, Process,
    timing::{Phases, ProcessTimes},
    units::{Bandwidth, Bytes, Unit},
};

/// Real CPU work that grows with `i`, as in the lecture's `hard_work`.
fn hard_work(i: u64) -> u64 {
    (0..200_000 * (i + 1)).fold(i, |acc, x| acc.wrapping_mul(6364136223846793005).wrapping_add(x))
}

fn main() -> mp::Result<()> {
    mp::init();

    let mut phases = Phases::start();
    let serial: Vec<u64> = (0..20).map(hard_work).collect();
    phases.mark("t1 serial done");

    let pool = Pool::new(mp::cpu_count())?;
    phases.mark("t2 pool ready");
    let traced = pool.map_traced(hard_work, 0..20, Some(1))?;
    phases.mark("t3 pool map done");
    assert_eq!(traced.results, serial);

    println!("pool.map(hard_work, range(20)) on {} workers, chunksize 1:", pool.n_workers());
    for worker in 0..pool.n_workers() {
        let items: Vec<usize> = traced
            .tasks
            .iter()
            .filter(|task| task.worker == worker)
            .map(|task| task.index)
            .collect();
        println!(
            "  worker {worker} (pid {}) ran {:2} items: {items:?}",
            pool.pids()[worker],
            items.len()
        );
    }
    drop(pool);

    let started = Instant::now();
    let mut process = Process::spawn(hard_work, 0)?;
    process.join()?;
    println!(
        "\none Process::spawn + join of a tiny task: {:.2} ms",
        started.elapsed().as_secs_f64() * 1e3
    );

    let (here, there) = mp::pipe::<()>()?;
    let mut echo = Process::spawn(echo_bytes, there)?;
    let message = vec![0u8; 16 << 20];
    here.send_bytes(&message)?;
    here.recv_bytes()?; // warm-up: first touch of fresh memory
    let started = Instant::now();
    here.send_bytes(&message)?;
    let echoed = here.recv_bytes()?;
    let round_trip = started.elapsed();
    drop(here);
    echo.join()?;
    let one_way = Bandwidth::new(Bytes(echoed.len() as u64), round_trip / 2)?;
    println!(
        "16 MiB through a pipe and back: {:.2} ms round trip; one way = {} = {} = {}",
        round_trip.as_secs_f64() * 1e3,
        one_way.display_in(Unit::MB),
        one_way.display_in(Unit::MiB),
        one_way.display_in(Unit::Gb),
    );

    println!("\nphases (every interval between marks):\n{phases}");
    println!("\nthis program so far, as `time` would print it:\n{}", ProcessTimes::now());
    Ok(())
}

fn echo_bytes(connection: mp::Connection<()>) -> usize {
    let mut count = 0;
    while let Ok(bytes) = connection.recv_bytes() {
        connection.send_bytes(&bytes).unwrap();
        count += 1;
    }
    count
}
