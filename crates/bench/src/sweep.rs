//! Ping-pong over a range of message sizes: the one method every transport is measured with
//! (in Rust here, and the same steps in the Python script and the C MPI program).
//!
//! For each size: warm up with at least [`WARM_MIN`] round trips, until a tenth of the size's
//! time budget has passed (at most [`WARM_MAX`]); from the warm-up's mean round trip pick a
//! batch so that `samples` batches fill the budget (at least one round trip per batch); then
//! time `samples` batches. A sample is one batch's time divided by twice its round trips:
//! the one-way time, half a round trip. Bandwidth is the size over the one-way time.

use std::time::Instant;

use serde::{Deserialize, Serialize};

use crate::stats::Summary;

/// The fewest warm-up round trips per size.
pub const WARM_MIN: u64 = 2;
/// The most warm-up round trips per size.
pub const WARM_MAX: u64 = 1000;
/// The share of a size's time budget spent warming up.
pub const WARM_FRACTION: f64 = 0.1;

/// What to measure: which sizes, and how long and how often for each.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct SweepPlan {
    /// Message sizes in bytes, each at least 1.
    pub sizes: Vec<u64>,
    /// Seconds of timed round trips to aim for, per size.
    pub budget_s: f64,
    /// Timed batches per size.
    pub samples: usize,
    /// The CPUs the two sides run on, one each (the measuring side first), as
    /// `mpirun --bind-to core` binds two ranks; `None`: wherever the kernel puts them.
    /// (Always written: the plan also travels to `mp::launch`ed ranks in postcard, which
    /// cannot skip a field.)
    #[serde(default)]
    pub cpus: Option<[usize; 2]>,
}

impl SweepPlan {
    /// How many round trips one timed batch gets, given the warm-up's mean round trip.
    pub fn batch_for(&self, round_trip_s: f64) -> u64 {
        let per_batch = self.budget_s / self.samples.max(1) as f64;
        if !round_trip_s.is_finite() || round_trip_s <= 0.0 {
            return 1;
        }
        (per_batch / round_trip_s).floor().clamp(1.0, 1e7) as u64
    }
}

/// One size as measured: the raw one-way times, before summarising. The Python script and the
/// MPI program print exactly this shape in their JSON.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct RawPoint {
    /// Message size in bytes.
    pub bytes: u64,
    /// Round trips per timed batch.
    pub batch: u64,
    /// One-way time of each batch, in seconds (batch time / (2 x batch)).
    pub one_way_s: Vec<f64>,
}

/// One size, summarised.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Point {
    /// Message size in bytes.
    pub bytes: u64,
    /// Round trips per timed batch.
    pub batch: u64,
    /// One-way time in seconds (half a round trip).
    pub one_way_s: Summary,
    /// Size / median one-way time, in bytes per second.
    pub bandwidth_bps: f64,
    /// Size / fastest one-way time, in bytes per second.
    pub best_bandwidth_bps: f64,
}

impl Point {
    /// Summarises a raw point; an error names the size if its samples are empty or broken.
    pub fn from_raw(raw: &RawPoint) -> Result<Point, String> {
        let one_way = Summary::of(&raw.one_way_s)
            .filter(|summary| summary.min > 0.0)
            .ok_or_else(|| format!("no valid one-way times for {} B", raw.bytes))?;
        Ok(Point {
            bytes: raw.bytes,
            batch: raw.batch,
            bandwidth_bps: raw.bytes as f64 / one_way.median,
            best_bandwidth_bps: raw.bytes as f64 / one_way.min,
            one_way_s: one_way,
        })
    }

    /// Summarises every point of a sweep.
    pub fn all_from_raw(raw: &[RawPoint]) -> Result<Vec<Point>, String> {
        raw.iter().map(Point::from_raw).collect()
    }
}

/// The point of `points` for messages of exactly `bytes`.
pub fn at_size(points: &[Point], bytes: u64) -> Option<&Point> {
    points.iter().find(|point| point.bytes == bytes)
}

/// Runs the sweep with `round_trip`, which must send its argument and wait for the reply.
pub fn sweep(
    plan: &SweepPlan,
    mut round_trip: impl FnMut(&[u8]) -> Result<(), String>,
) -> Result<Vec<RawPoint>, String> {
    let mut points = Vec::with_capacity(plan.sizes.len());
    for &size in &plan.sizes {
        let size_usize = usize::try_from(size).map_err(|_| format!("{size} B is too large"))?;
        let message = vec![0xa5u8; size_usize];
        let warm_started = Instant::now();
        let mut warm = 0u64;
        loop {
            round_trip(&message).map_err(|error| format!("{size} B: {error}"))?;
            warm += 1;
            let elapsed = warm_started.elapsed().as_secs_f64();
            if warm >= WARM_MAX || (warm >= WARM_MIN && elapsed >= WARM_FRACTION * plan.budget_s) {
                break;
            }
        }
        let batch = plan.batch_for(warm_started.elapsed().as_secs_f64() / warm as f64);
        let mut one_way_s = Vec::with_capacity(plan.samples);
        for _ in 0..plan.samples.max(1) {
            let started = Instant::now();
            for _ in 0..batch {
                round_trip(&message).map_err(|error| format!("{size} B: {error}"))?;
            }
            one_way_s.push(started.elapsed().as_secs_f64() / (2.0 * batch as f64));
        }
        points.push(RawPoint { bytes: size, batch, one_way_s });
    }
    Ok(points)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn plan() -> SweepPlan {
        SweepPlan { sizes: vec![1, 8], budget_s: 0.01, samples: 3, cpus: None }
    }

    #[test]
    fn batches_fill_the_budget_and_never_drop_below_one() {
        let plan = SweepPlan { sizes: vec![1], budget_s: 1.0, samples: 10, cpus: None };
        assert_eq!(plan.batch_for(1e-3), 100);
        assert_eq!(plan.batch_for(0.5), 1);
        assert_eq!(plan.batch_for(0.0), 1);
        assert_eq!(plan.batch_for(f64::NAN), 1);
    }

    #[test]
    fn a_sweep_gives_one_point_per_size_with_every_sample() {
        let mut sizes_seen = Vec::new();
        let points = sweep(&plan(), |message| {
            sizes_seen.push(message.len());
            Ok(())
        })
        .unwrap();
        assert_eq!(points.iter().map(|point| point.bytes).collect::<Vec<_>>(), [1, 8]);
        assert!(points.iter().all(|point| point.one_way_s.len() == 3 && point.batch >= 1));
        assert!(sizes_seen.contains(&1) && sizes_seen.contains(&8));
    }

    #[test]
    fn a_failing_round_trip_names_the_size() {
        let error = sweep(&plan(), |_| Err("peer gone".into())).unwrap_err();
        assert_eq!(error, "1 B: peer gone");
    }

    #[test]
    fn bandwidth_is_size_over_one_way_time() {
        let raw = RawPoint { bytes: 1_000_000, batch: 4, one_way_s: vec![1e-3, 2e-3, 4e-3] };
        let point = Point::from_raw(&raw).unwrap();
        assert_eq!(point.one_way_s.median, 2e-3);
        assert!((point.bandwidth_bps - 5e8).abs() < 1e-3);
        assert!((point.best_bandwidth_bps - 1e9).abs() < 1e-3);
        assert_eq!(at_size(std::slice::from_ref(&point), 1_000_000), Some(&point));
        assert_eq!(at_size(&[point], 8), None);
    }

    #[test]
    fn empty_or_zero_samples_are_an_error() {
        let empty = RawPoint { bytes: 8, batch: 1, one_way_s: vec![] };
        assert!(Point::from_raw(&empty).unwrap_err().contains("8 B"));
        let zero = RawPoint { bytes: 8, batch: 1, one_way_s: vec![0.0] };
        assert!(Point::from_raw(&zero).is_err());
    }
}
