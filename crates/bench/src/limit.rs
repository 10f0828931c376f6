//! The hardware's limits for moving data on one machine: how fast one thread copies memory,
//! and how fast two processes on two CPUs can hand a flag back and forth in shared memory.

use std::{
    hint::black_box,
    time::{Duration, Instant},
};

use mp::{Process, SharedArray};

use crate::sweep::{RawPoint, SweepPlan, sweep};

/// memcpy (`copy_from_slice`) between two buffers this thread has already written, at every
/// size of the plan. The sweep's "round trip" is a copy there and a copy back, so its
/// one-way time is the time of one copy and its bandwidth the size over that time.
pub fn memcpy_sweep(plan: &SweepPlan) -> Result<Vec<RawPoint>, String> {
    let largest = plan.sizes.iter().copied().max().unwrap_or(0);
    let largest = usize::try_from(largest).map_err(|_| format!("{largest} B is too large"))?;
    let mut there = vec![0x5au8; largest];
    let mut back = vec![0x3cu8; largest];
    sweep(plan, |message| {
        let n = message.len();
        there[..n].copy_from_slice(&back[..n]);
        black_box(&mut there);
        back[..n].copy_from_slice(&there[..n]);
        black_box(&mut back);
        Ok(())
    })
}

/// The flag's value that tells the child to stop.
const STOP: u64 = u64::MAX;
/// How long either side waits for the other before giving up.
const PATIENCE: Duration = Duration::from_secs(10);

/// Spins until `flag[0]` is `wanted` (or STOP), checking the clock now and then.
fn wait_for(flag: &SharedArray<u64>, wanted: u64) -> Result<u64, String> {
    let started = Instant::now();
    let mut spins = 0u32;
    loop {
        let value = flag.get(0);
        if value == wanted || value == STOP {
            return Ok(value);
        }
        std::hint::spin_loop();
        spins = spins.wrapping_add(1);
        if spins.is_multiple_of(4096) && started.elapsed() > PATIENCE {
            return Err(format!("no answer in shared memory within {PATIENCE:?}"));
        }
    }
}

/// The child: answers every odd value with the next even one until told to stop.
fn flag_responder(flag: SharedArray<u64>) -> Result<u64, String> {
    let mut expected = 1;
    loop {
        if wait_for(&flag, expected)? == STOP {
            return Ok(expected / 2);
        }
        flag.set(0, expected + 1);
        expected += 2;
    }
}

/// One-way latency, in seconds, of a flag in a `SharedArray` between this process and a
/// child, both busy-waiting (atomic load and store): `samples` batches of `batch` round trips
/// after `batch` warm-up round trips.
pub fn shared_flag(batch: u64, samples: usize) -> Result<Vec<f64>, String> {
    let flag = SharedArray::<u64>::new(1).map_err(|error| error.to_string())?;
    let mut child =
        Process::spawn(flag_responder, flag.clone()).map_err(|error| error.to_string())?;
    let mut next = 1u64;
    let mut round_trip = || -> Result<(), String> {
        flag.set(0, next);
        wait_for(&flag, next + 1)?;
        next += 2;
        Ok(())
    };
    let mut measured = || -> Result<Vec<f64>, String> {
        for _ in 0..batch {
            round_trip()?;
        }
        let mut one_way_s = Vec::with_capacity(samples);
        for _ in 0..samples {
            let started = Instant::now();
            for _ in 0..batch {
                round_trip()?;
            }
            one_way_s.push(started.elapsed().as_secs_f64() / (2.0 * batch as f64));
        }
        Ok(one_way_s)
    };
    let result = measured();
    flag.set(0, STOP);
    let answered = child.join().map_err(|error| error.to_string())??;
    let one_way_s = result?;
    if answered == 0 {
        return Err("the child never answered".into());
    }
    Ok(one_way_s)
}
