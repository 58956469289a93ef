//! Event time: watermark strategies at the sources and watermark tracking
//! at actors with several inputs.
//!
//! A watermark `t` on an edge promises that no later record on that edge has
//! a timestamp `< t`. Sources generate watermarks with a
//! [`WatermarkStrategy`]: *bounded out-of-orderness* (`max_ts_seen - bound`)
//! or *monotonic* (`max_ts_seen`, for inputs whose timestamps never go back).
//! They are emitted periodically (every [`WatermarkStrategy::with_interval`]
//! of processing time, and always at end of input), not per record. A source
//! that produces nothing for the idle timeout declares itself idle so that it
//! does not hold back the watermark of actors downstream; an actor with
//! several inputs takes the minimum over its active inputs
//! ([`inputs::InputTracker`]).

pub(crate) mod alignment;
pub(crate) mod inputs;

use std::time::Duration;

use crate::message::Timestamp;

pub use inputs::{InputEvent, InputTracker};

/// How a source derives watermarks from the timestamps it has seen.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct WatermarkStrategy {
    pub(crate) bound: i64,
    pub(crate) interval: Duration,
    pub(crate) idle_timeout: Option<Duration>,
    /// Watermark alignment between the instances of a parallel source:
    /// the largest event-time drift allowed, ms.
    pub(crate) max_drift: Option<i64>,
    /// The alignment group shared with other sources, by name.
    pub(crate) group: Option<&'static str>,
}

impl WatermarkStrategy {
    /// Watermark = highest timestamp seen minus `bound_ms`: records may
    /// arrive up to `bound_ms` behind the newest one without being late.
    pub fn bounded_out_of_orderness(bound_ms: i64) -> Self {
        WatermarkStrategy {
            bound: bound_ms,
            interval: Duration::from_millis(200),
            idle_timeout: None,
            max_drift: None,
            group: None,
        }
    }

    /// Watermark = highest timestamp seen: for inputs whose timestamps never
    /// decrease.
    pub fn monotonic() -> Self {
        Self::bounded_out_of_orderness(0)
    }

    /// Emit the watermark at most every `interval` of processing time
    /// (default 200 ms; `Duration::ZERO`: after every batch that advanced it).
    pub fn with_interval(mut self, interval: Duration) -> Self {
        self.interval = interval;
        self
    }

    /// Declare the source idle after `timeout` without records, so that it
    /// does not hold back downstream watermarks until it produces again.
    pub fn with_idle_timeout(mut self, timeout: Duration) -> Self {
        self.idle_timeout = Some(timeout);
        self
    }

    /// Watermark alignment (Flink's FLIP-182, among the instances of one
    /// parallel source): an instance whose records have taken it more than
    /// `max_drift_ms` of event time ahead of the slowest other instance
    /// stops reading until that one has caught up to within half the
    /// drift. Downstream watermarks are the minimum over the instances
    /// anyway, so reading ahead fires nothing sooner; it only fills window
    /// state. Time spent waiting shows as
    /// `MetricsSnapshot::alignment_wait`. An idle or finished instance holds
    /// nobody back; an instance that has read nothing yet holds the others
    /// at their first batch, so give a source whose instances may stay
    /// empty an idle timeout too. No effect on a source of parallelism 1.
    ///
    /// ```
    /// use weir_actors::WatermarkStrategy;
    /// let s = WatermarkStrategy::bounded_out_of_orderness(2_000).with_alignment(1_000);
    /// # let _ = s;
    /// ```
    pub fn with_alignment(mut self, max_drift_ms: i64) -> Self {
        self.max_drift = Some(max_drift_ms);
        self
    }

    /// Watermark alignment across sources (Flink's alignment groups): every
    /// instance of every source whose strategy names the same `group` —
    /// with the same `max_drift_ms` — is aligned with all the others, as
    /// [`Self::with_alignment`] aligns the instances of one source. For
    /// sources that meet downstream (the two sides of a join, the inputs of
    /// a union): a side that reads ahead only fills the join's state until
    /// the other catches up, since the join's watermark is the minimum of
    /// both. Applies at any parallelism. A group named with two different
    /// drifts is refused by `JobBuilder::build`.
    ///
    /// ```
    /// use weir_actors::WatermarkStrategy;
    /// let both_sides = WatermarkStrategy::bounded_out_of_orderness(2_000).with_alignment_group("orders+clicks", 1_000);
    /// # let _ = both_sides;
    /// ```
    pub fn with_alignment_group(mut self, group: &'static str, max_drift_ms: i64) -> Self {
        self.max_drift = Some(max_drift_ms);
        self.group = Some(group);
        self
    }

    /// The out-of-orderness bound, ms.
    pub fn bound(&self) -> i64 {
        self.bound
    }

    pub(crate) fn validate(&self) -> Result<(), (&'static str, String)> {
        if self.bound < 0 {
            return Err(("watermark bound", format!("{} (must be >= 0)", self.bound)));
        }
        if let Some(d) = self.max_drift {
            if d <= 0 {
                return Err(("alignment drift", format!("{d} (must be > 0)")));
            }
        }
        if self.idle_timeout == Some(Duration::ZERO) {
            return Err(("idle timeout", "0 (must be > 0)".into()));
        }
        Ok(())
    }
}

/// The per-source watermark state: highest timestamp seen, last emitted,
/// and the watermark the source's input carries, if it carries one.
#[derive(Debug, Clone)]
pub(crate) struct WatermarkGenerator {
    bound: i64,
    pub(crate) max_ts: Timestamp,
    pub(crate) emitted: Timestamp,
    /// Set by a source whose input carries watermarks
    /// ([`crate::Source::watermark`]): it replaces `max_ts - bound`.
    carried: Option<Timestamp>,
}

impl WatermarkGenerator {
    pub(crate) fn new(strategy: &WatermarkStrategy) -> Self {
        WatermarkGenerator { bound: strategy.bound, max_ts: i64::MIN, emitted: i64::MIN, carried: None }
    }

    /// Folds in the highest timestamp of a batch.
    #[inline]
    pub(crate) fn observe(&mut self, max_ts: Timestamp) {
        if max_ts > self.max_ts {
            self.max_ts = max_ts;
        }
    }

    /// The watermark the source's input carries now (it replaces the
    /// bound from then on).
    #[inline]
    pub(crate) fn carry(&mut self, wm: Timestamp) {
        self.carried = Some(wm);
    }

    /// The watermark to emit now, if it advanced since the last emission.
    pub(crate) fn advance(&mut self) -> Option<Timestamp> {
        // Before the first record `allowed` is MIN, never above `emitted`.
        let wm = self.allowed();
        if wm > self.emitted {
            self.emitted = wm;
            Some(wm)
        } else {
            None
        }
    }

    /// Whether [`Self::advance`] would emit a new watermark.
    pub(crate) fn has_pending(&self) -> bool {
        self.allowed() > self.emitted
    }

    /// The watermark the records seen so far allow (emitted or not);
    /// `i64::MIN` before the first record.
    pub(crate) fn allowed(&self) -> Timestamp {
        if let Some(wm) = self.carried {
            wm
        } else if self.max_ts == i64::MIN {
            i64::MIN
        } else {
            self.max_ts.saturating_sub(self.bound)
        }
    }

    /// The last emitted watermark.
    pub(crate) fn current(&self) -> Timestamp {
        self.emitted
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bounded_watermark_trails_max_timestamp_by_bound() {
        let mut g = WatermarkGenerator::new(&WatermarkStrategy::bounded_out_of_orderness(2000));
        assert_eq!(g.advance(), None);
        g.observe(5000);
        assert_eq!(g.advance(), Some(3000));
        g.observe(4000);
        assert_eq!(g.advance(), None, "an older record does not move it back");
        g.observe(5001);
        assert_eq!(g.advance(), Some(3001));
        assert_eq!(g.current(), 3001);
    }

    #[test]
    fn a_carried_watermark_replaces_the_bound_and_never_goes_back() {
        let mut g = WatermarkGenerator::new(&WatermarkStrategy::bounded_out_of_orderness(2000));
        g.observe(5000);
        g.carry(1000);
        assert_eq!(g.advance(), Some(1000), "the input's watermark, not max_ts - bound");
        g.carry(900);
        assert_eq!(g.advance(), None);
        g.carry(4500);
        assert_eq!(g.advance(), Some(4500), "ahead of max_ts - bound too");
    }
}
