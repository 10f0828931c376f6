//! Dividing work into parts: numpy's `array_split` and the chunk size Python's `Pool.map`
//! picks when none is given.
//!
//! ```
//! let ranges = mp::split::split_ranges(10, 3)?;
//! assert_eq!(ranges, [0..4, 4..7, 7..10]);
//! # Ok::<(), mp::Error>(())
//! ```

use std::ops::Range;

use crate::{Error, Result};

/// Splits `0..len` into `n_parts` contiguous ranges the way `numpy.array_split` does: the
/// first `len % n_parts` ranges have one element more than the others, and asking for more
/// parts than elements gives empty ranges at the end.
///
/// ```
/// use mp::split::split_ranges;
/// assert_eq!(split_ranges(7, 3)?, [0..3, 3..5, 5..7]);
/// assert_eq!(split_ranges(2, 4)?, [0..1, 1..2, 2..2, 2..2]);
/// assert!(split_ranges(7, 0).is_err());
/// # Ok::<(), mp::Error>(())
/// ```
pub fn split_ranges(len: usize, n_parts: usize) -> Result<Vec<Range<usize>>> {
    if n_parts == 0 {
        return Err(Error::invalid("cannot split into 0 parts; ask for at least 1"));
    }
    let mut ranges = empty_vec_for(n_parts, "parts")?;
    let smaller_size = len / n_parts;
    let n_larger = len % n_parts;
    let mut start = 0;
    for part in 0..n_parts {
        let size = if part < n_larger { smaller_size + 1 } else { smaller_size };
        ranges.push(start..start + size);
        start += size;
    }
    Ok(ranges)
}

/// Splits `items` into `n_parts` contiguous slices with the sizes of [`split_ranges`].
///
/// ```
/// use mp::split::array_split;
/// let numbers: Vec<i32> = (0..10).collect();
/// let parts = array_split(&numbers, 3)?;
/// // Like np.array_split(range(10), 3).
/// let lengths: Vec<usize> = parts.iter().map(|part| part.len()).collect();
/// assert_eq!(lengths, [4, 3, 3]);
/// assert_eq!(parts[1], [4, 5, 6]);
/// # Ok::<(), mp::Error>(())
/// ```
pub fn array_split<T>(items: &[T], n_parts: usize) -> Result<Vec<&[T]>> {
    let ranges = split_ranges(items.len(), n_parts)?;
    Ok(ranges.into_iter().map(|range| &items[range]).collect())
}

/// The chunk size `Pool.map` uses when given none: `ceil(n_items / (4 * n_workers))`, so each
/// worker gets about four chunks. Unlike Python it returns 1, not 0, for no items, so the
/// result is always a valid chunk size.
///
/// ```
/// use mp::split::default_chunksize;
/// assert_eq!(default_chunksize(20, 4)?, 2);
/// assert_eq!(default_chunksize(100_000, 4)?, 6250);
/// assert_eq!(default_chunksize(0, 4)?, 1);
/// assert!(default_chunksize(20, 0).is_err());
/// # Ok::<(), mp::Error>(())
/// ```
pub fn default_chunksize(n_items: usize, n_workers: usize) -> Result<usize> {
    if n_workers == 0 {
        return Err(Error::invalid(
            "cannot pick a chunk size for 0 workers; pass the pool's worker count (at least 1)",
        ));
    }
    // When 4 * n_workers overflows it exceeds n_items, and the saturated value gives the
    // same answer.
    let chunks_wanted = n_workers.saturating_mul(4);
    Ok(n_items.div_ceil(chunks_wanted).max(1))
}

/// Cuts `0..len` into consecutive ranges of `chunksize` elements; the last may be shorter.
///
/// ```
/// use mp::split::chunk_ranges;
/// assert_eq!(chunk_ranges(10, 4)?, [0..4, 4..8, 8..10]);
/// assert_eq!(chunk_ranges(0, 4)?, []);
/// assert!(chunk_ranges(10, 0).is_err());
/// # Ok::<(), mp::Error>(())
/// ```
pub fn chunk_ranges(len: usize, chunksize: usize) -> Result<Vec<Range<usize>>> {
    if chunksize == 0 {
        return Err(Error::invalid(
            "a chunk size of 0 would never finish; pass at least 1 (or use default_chunksize)",
        ));
    }
    let mut ranges = empty_vec_for(len.div_ceil(chunksize), "chunks")?;
    let mut start = 0;
    while start < len {
        let end = start.saturating_add(chunksize).min(len);
        ranges.push(start..end);
        start = end;
    }
    Ok(ranges)
}

/// An empty vector with room for `count` ranges, or an error instead of an allocation abort
/// when `count` is absurdly large.
fn empty_vec_for(count: usize, what: &str) -> Result<Vec<Range<usize>>> {
    let mut ranges = Vec::new();
    if ranges.try_reserve_exact(count).is_err() {
        return Err(Error::invalid(format!(
            "{count} {what} do not fit in memory; ask for fewer {what}"
        )));
    }
    Ok(ranges)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn invalid_message<T: std::fmt::Debug>(result: Result<T>) -> String {
        match result {
            Err(Error::InvalidArgument { message }) => message,
            other => panic!("expected Error::InvalidArgument, got {other:?}"),
        }
    }

    #[test]
    fn split_follows_numpy_for_every_small_case() {
        for len in 0..50 {
            for n_parts in 1..12 {
                let ranges = split_ranges(len, n_parts).unwrap();
                assert_eq!(ranges.len(), n_parts);
                // Contiguous and covering 0..len.
                assert_eq!(ranges[0].start, 0);
                assert_eq!(ranges[n_parts - 1].end, len);
                for pair in ranges.windows(2) {
                    assert_eq!(pair[0].end, pair[1].start);
                }
                // numpy: the first len % n_parts parts get one extra element.
                for (part, range) in ranges.iter().enumerate() {
                    let expected = len / n_parts + usize::from(part < len % n_parts);
                    assert_eq!(range.len(), expected, "len {len}, {n_parts} parts, part {part}");
                }
            }
        }
    }

    #[test]
    fn array_split_matches_numpy_examples() {
        let numbers: Vec<u32> = (0..10).collect();
        let parts = array_split(&numbers, 3).unwrap();
        assert_eq!(parts, [&[0, 1, 2, 3][..], &[4, 5, 6], &[7, 8, 9]]);

        let few = [1, 2];
        let parts = array_split(&few, 4).unwrap();
        assert_eq!(parts, [&[1][..], &[2], &[], &[]]);

        let nothing: [u8; 0] = [];
        assert_eq!(array_split(&nothing, 2).unwrap(), [&[0u8; 0][..], &[]]);
    }

    #[test]
    fn default_chunksize_follows_python() {
        assert_eq!(default_chunksize(20, 4).unwrap(), 2);
        assert_eq!(default_chunksize(21, 4).unwrap(), 2);
        assert_eq!(default_chunksize(33, 4).unwrap(), 3);
        assert_eq!(default_chunksize(100_000, 4).unwrap(), 6250);
        assert_eq!(default_chunksize(1, 8).unwrap(), 1);
        assert_eq!(default_chunksize(0, 1).unwrap(), 1);
        assert_eq!(default_chunksize(usize::MAX, usize::MAX).unwrap(), 1);
        assert_eq!(default_chunksize(usize::MAX, 1).unwrap(), usize::MAX / 4 + 1);
    }

    #[test]
    fn chunks_are_consecutive_and_cover_everything() {
        for len in 0..50 {
            for chunksize in 1..12 {
                let ranges = chunk_ranges(len, chunksize).unwrap();
                assert_eq!(ranges.len(), len.div_ceil(chunksize));
                let mut next_start = 0;
                for (position, range) in ranges.iter().enumerate() {
                    assert_eq!(range.start, next_start);
                    if position + 1 < ranges.len() {
                        assert_eq!(range.len(), chunksize);
                    } else {
                        assert!(!range.is_empty() && range.len() <= chunksize);
                    }
                    next_start = range.end;
                }
                assert_eq!(next_start, len);
            }
        }
        let whole = chunk_ranges(usize::MAX, usize::MAX).unwrap();
        assert_eq!((whole.len(), whole[0].clone()), (1, 0..usize::MAX));
    }

    #[test]
    fn zero_parts_workers_or_chunksize_are_errors() {
        assert!(invalid_message(split_ranges(5, 0)).contains("at least 1"));
        assert!(invalid_message(array_split(&[1, 2, 3], 0)).contains("0 parts"));
        assert!(invalid_message(default_chunksize(5, 0)).contains("0 workers"));
        assert!(invalid_message(chunk_ranges(5, 0)).contains("chunk size of 0"));
    }

    #[test]
    fn absurd_part_counts_are_errors_not_aborts() {
        assert!(invalid_message(split_ranges(1, usize::MAX)).contains("fewer parts"));
        assert!(invalid_message(chunk_ranges(usize::MAX, 1)).contains("fewer chunks"));
    }
}
