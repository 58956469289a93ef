//! The aligned interval of event time that held the previous record.
//!
//! Tumbling windows and panes cut event time into intervals
//! `[k * len, (k + 1) * len)`. Finding a record's interval takes a division
//! by a length known only at run time (tens of cycles), yet consecutive
//! records nearly always fall into the same one: [`RecentSpan`] remembers
//! the last interval found, so that the usual record costs two comparisons.

use crate::message::Timestamp;

/// The last aligned interval found, `[start, end)`; empty at first.
#[derive(Debug, Clone, Copy)]
pub(crate) struct RecentSpan {
    start: Timestamp,
    end: Timestamp,
}

impl RecentSpan {
    /// No interval yet: the first lookup computes one.
    pub(crate) fn new() -> Self {
        RecentSpan { start: Timestamp::MAX, end: Timestamp::MIN }
    }

    /// The interval `[start, end)` of length `len` (`> 0`, the same on every
    /// call) aligned to a multiple of `len` that holds `ts`. Near the end of
    /// time `end` saturates at `i64::MAX`; such an interval is recomputed on
    /// every call, which is correct, only not cached.
    #[inline(always)]
    pub(crate) fn locate(&mut self, ts: Timestamp, len: i64) -> (Timestamp, Timestamp) {
        if ts >= self.start && ts < self.end {
            return (self.start, self.end);
        }
        // Disordered records often fall into the interval just before (or
        // after): no division for those. The cache keeps the latest one.
        let len_before = self.end.wrapping_sub(self.start);
        if len_before == len {
            if let Some(before) = self.start.checked_sub(len) {
                if ts >= before && ts < self.start {
                    return (before, self.start);
                }
            }
            if let Some(after) = self.end.checked_add(len) {
                if ts >= self.end && ts < after {
                    *self = RecentSpan { start: self.end, end: after };
                    return (self.start, self.end);
                }
            }
        }
        let start = ts.saturating_sub(ts.rem_euclid(len));
        let end = start.saturating_add(len);
        *self = RecentSpan { start, end };
        (start, end)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn locate_finds_the_aligned_interval_of_every_timestamp() {
        let mut span = RecentSpan::new();
        for ts in [0, 5, 9, 10, -1, -10, -11, 3, i64::MIN, i64::MAX, 25, 20, 29] {
            let (start, end) = span.locate(ts, 10);
            let want = ts.div_euclid(10).saturating_mul(10);
            assert_eq!(start, want, "start of {ts}");
            assert_eq!(end, want.saturating_add(10), "end of {ts}");
            assert!(start <= ts && (ts < end || end == i64::MAX), "{ts} in [{start}, {end})");
        }
    }

    #[test]
    fn neighbouring_intervals_are_found_and_the_latest_is_kept() {
        let mut span = RecentSpan::new();
        assert_eq!(span.locate(15, 10), (10, 20));
        assert_eq!(span.locate(7, 10), (0, 10), "the interval before");
        assert_eq!(span.locate(12, 10), (10, 20), "still cached");
        assert_eq!(span.locate(20, 10), (20, 30), "the interval after");
        assert_eq!(span.locate(-5, 10), (-10, 0), "further away: computed");
        assert_eq!(span.locate(i64::MAX, 10).1, i64::MAX);
        assert_eq!(span.locate(i64::MAX - 1, 10).1, i64::MAX);
    }
}
