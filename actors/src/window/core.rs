//! The window manager's functional core: per-key window state, firing on
//! watermarks, allowed lateness, early firings, late-data routing.
//! (CONTRACT ONLY — to be implemented.)

use crate::message::{Record, Timestamp};
use crate::window::{Aggregate, WindowOptions, WindowResult, Windows};

/// Where a firing's results go: output records whose timestamp is the
/// window's `end - 1` (for count windows: the largest record timestamp in the
/// window), in the order fired.
pub(crate) type Fired<K, R> = Vec<Record<WindowResult<K, R>>>;

/// Keyed window state for one window-manager instance.
pub(crate) struct WindowCore<K, T, A: Aggregate<T>> {
    _p: std::marker::PhantomData<(K, T, A)>,
}

impl<K, T, A> WindowCore<K, T, A>
where
    K: std::hash::Hash + Eq + Clone + Send + 'static,
    A: Aggregate<T>,
{
    /// `windows` has been validated. The initial watermark is `i64::MIN`.
    pub(crate) fn new(windows: Windows, options: WindowOptions, agg: A) -> Self {
        todo!()
    }

    /// Adds one record. Records whose windows have all closed for good go to
    /// `late` (with their key and timestamp) and are counted; a late record
    /// within the allowed lateness updates its window(s) and, where a window
    /// had already fired, fires it again at once as `Timing::Late`. Early
    /// firings by count are emitted into `out` as they happen.
    pub(crate) fn add(
        &mut self,
        key: K,
        ts: Timestamp,
        value: T,
        out: &mut Fired<K, A::Out>,
        late: &mut Vec<Record<(K, T)>>,
    ) {
        todo!()
    }

    /// Advances event time to `wm` (ignored if not greater than the current
    /// watermark): fires every window the watermark has reached (session
    /// windows: passed), in ascending window end, and discards state whose
    /// allowed lateness has expired. `wm == i64::MAX` fires everything left,
    /// including partly filled count windows.
    pub(crate) fn on_watermark(&mut self, wm: Timestamp, out: &mut Fired<K, A::Out>) {
        todo!()
    }

    /// Processing-time early firing: every open, not yet on-time-fired window
    /// that changed since its last firing fires with `Timing::Early`.
    pub(crate) fn fire_early(&mut self, out: &mut Fired<K, A::Out>) {
        todo!()
    }

    /// The current watermark.
    pub(crate) fn watermark(&self) -> Timestamp {
        todo!()
    }

    /// Number of (key, window) states held.
    pub(crate) fn open_windows(&self) -> usize {
        todo!()
    }

    /// Records sent to `late` so far.
    pub(crate) fn late_records(&self) -> u64 {
        todo!()
    }
}
