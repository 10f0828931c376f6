//! Summaries of repeated measurements: the median (what the report shows), the minimum (the
//! least disturbed run on a noisy machine) and the maximum, with the samples themselves.

use serde::{Deserialize, Serialize};

/// Median, minimum and maximum of a set of samples, all in the samples' unit, and the samples
/// in the order they were taken.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Summary {
    /// The middle sample (the mean of the two middle ones for an even count).
    pub median: f64,
    /// The smallest sample.
    pub min: f64,
    /// The largest sample.
    pub max: f64,
    /// How many samples.
    pub n: usize,
    /// Every sample, in the order taken.
    pub samples: Vec<f64>,
}

impl Summary {
    /// Summarises `samples`; `None` if there are none or one is not a finite number.
    pub fn of(samples: &[f64]) -> Option<Summary> {
        if samples.is_empty() || samples.iter().any(|sample| !sample.is_finite()) {
            return None;
        }
        let mut sorted = samples.to_vec();
        sorted.sort_by(f64::total_cmp);
        let middle = sorted.len() / 2;
        let median = if sorted.len() % 2 == 1 {
            sorted[middle]
        } else {
            (sorted[middle - 1] + sorted[middle]) / 2.0
        };
        Some(Summary {
            median,
            min: sorted[0],
            max: sorted[sorted.len() - 1],
            n: sorted.len(),
            samples: samples.to_vec(),
        })
    }

    /// The same summary with every value multiplied by `factor` (a unit change or a per-item
    /// division; `factor` must be positive so the order is kept).
    pub fn scaled(&self, factor: f64) -> Summary {
        Summary {
            median: self.median * factor,
            min: self.min * factor,
            max: self.max * factor,
            n: self.n,
            samples: self.samples.iter().map(|sample| sample * factor).collect(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn median_of_odd_and_even_counts() {
        let odd = Summary::of(&[3.0, 1.0, 2.0]).unwrap();
        assert_eq!((odd.median, odd.min, odd.max, odd.n), (2.0, 1.0, 3.0, 3));
        let even = Summary::of(&[4.0, 1.0, 3.0, 2.0]).unwrap();
        assert_eq!((even.median, even.min, even.max, even.n), (2.5, 1.0, 4.0, 4));
    }

    #[test]
    fn nothing_or_nan_gives_no_summary() {
        assert_eq!(Summary::of(&[]), None);
        assert_eq!(Summary::of(&[1.0, f64::NAN]), None);
        assert_eq!(Summary::of(&[1.0, f64::INFINITY]), None);
    }

    #[test]
    fn scaling_keeps_the_count() {
        let per_task = Summary::of(&[2.0, 4.0]).unwrap().scaled(0.5);
        assert_eq!((per_task.median, per_task.min, per_task.max, per_task.n), (1.5, 1.0, 2.0, 2));
        assert_eq!(per_task.samples, [1.0, 2.0]);
    }
}
