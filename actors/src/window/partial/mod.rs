//! Partial aggregates: local pre-aggregation before the key-by shuffle.
//!
//! With few keys, most of what a `key_by` edge to `p > 1` window managers
//! costs is moving records between cores: every record is copied into a
//! batch that another core then reads. A combining edge
//! ([`combine::Combine`]) instead folds, within each batch it is given, the
//! records of one key and one window interval into one accumulator with
//! [`Aggregate::add`], and sends that ([`Partial::Combined`]); the window
//! manager folds it into the window's state with [`Aggregate::merge`]. This
//! is the local–global (two-phase) aggregation of Flink SQL and the
//! combiner of MapReduce; the [`Aggregate`] contract (`merge` associative,
//! `create` its identity) is what makes it exact.
//!
//! Invariant that keeps it honest: a combined partial is only ever sent for
//! an interval that ends after the last watermark the edge has forwarded,
//! so its windows are still open at the receiver (the receiver's watermark
//! is the minimum over its inputs, this one included) and no record inside
//! it can be late. Records of an interval the watermark has reached travel
//! one by one ([`Partial::Record`]), so that a late one still reaches the
//! late-data output as itself. An edge that has forwarded `Idle` stops
//! combining (the receiver's watermark may then run ahead of it), and one
//! that has not yet forwarded a watermark does not start (after a restore
//! the receiver's watermark comes from the checkpoint).

pub(crate) mod combine;

use super::layout::Layout;
use crate::message::Timestamp;
use crate::window::{WindowOptions, Windows};

/// What a combining key-by edge carries: a record, or the aggregate of
/// several records of one key in one window interval.
#[derive(Debug, Clone)]
pub(crate) enum Partial<T, Acc> {
    /// One record, as it came.
    Record(T),
    /// `records` records of the key whose window interval (tumbling window,
    /// or pane of sliding windows) ends at `end`, folded into `acc`.
    Combined {
        /// End of the interval: the tumbling window's end, or the pane's.
        end: Timestamp,
        /// The records' aggregate.
        acc: Acc,
        /// How many records `acc` holds.
        records: u32,
    },
}

impl<T, Acc> Partial<T, Acc> {
    /// How many records this stands for.
    #[inline]
    pub(crate) fn records(&self) -> usize {
        match self {
            Partial::Record(_) => 1,
            Partial::Combined { records, .. } => *records as usize,
        }
    }
}

/// A record of a combining edge: the key, and a record or partial.
pub(crate) type Keyed<K, T, Acc> = (K, Partial<T, Acc>);

/// The length of the interval records can be combined over for `windows`
/// with `options`, or `None` where combining would change results:
/// tumbling windows (the window itself) and sliding windows kept in panes
/// (the pane), as the window core lays them out ([`Layout`]), without early
/// firing by count (which counts records one by one). Session and count
/// windows are not combined.
pub(crate) fn combinable(windows: Windows, options: &WindowOptions) -> Option<i64> {
    if options.early_firing_count.is_some() || windows.validate().is_err() {
        return None;
    }
    Layout::of(windows, options, true).combined_interval(windows)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tumbling_and_pane_sliding_windows_combine_others_do_not() {
        let plain = WindowOptions::default();
        assert_eq!(combinable(Windows::tumbling(10_000), &plain), Some(10_000));
        assert_eq!(combinable(Windows::sliding(10_000, 2_000), &plain), Some(2_000));
        assert_eq!(combinable(Windows::sliding(10_000, 3_000), &plain), None);
        assert_eq!(combinable(Windows::session(500), &plain), None);
        assert_eq!(combinable(Windows::count(5), &plain), None);
        let early = WindowOptions { early_firing_count: Some(3), ..WindowOptions::default() };
        assert_eq!(combinable(Windows::tumbling(10_000), &early), None);
    }
}
