//! What every window kind provides to the core: [`WindowKind`].
//!
//! A window kind — time windows (tumbling, or sliding with a state per
//! window), panes (sliding windows merged from slide-long panes), sessions,
//! count windows — keeps the state of every key in the layout that makes
//! its own firing cheap, and implements this trait over it. The core
//! ([`super::core`]) is generic over the kind: each kind's per-record loop
//! is compiled for it alone, and the kind is chosen once, when the core is
//! built ([`super::layout::Layout`]), not per record or per batch.
//!
//! Contract, for every kind (the core relies on it and keeps the watermark
//! and the late-record counter itself):
//! - a record whose windows have all been discarded is handed back (its key
//!   returned by [`WindowKind::add`], or the record pushed to `late`); every
//!   other record updates its windows, and a window that already fired on
//!   time fires again at once with [`Timing::Late`];
//! - [`WindowKind::on_watermark`] fires what the watermark reached (a
//!   session: passed) in ascending window end, and discards what outlived
//!   the allowed lateness;
//! - early firings ([`Timing::Early`]) only concern windows that have not
//!   fired on time.

use serde::de::DeserializeOwned;
use serde::Serialize;

use super::core::Fired;
use super::layout::Layout;
use crate::message::{Record, Timestamp};
use crate::window::{Aggregate, Timing, Window, WindowResult};

/// The state of one window kind for every key, driven by the core.
///
/// `wm` is always the core's current watermark; `out` receives firings in
/// the order they happen.
pub(super) trait WindowKind<K, T, A: Aggregate<T>>: Sized + Send + 'static {
    /// How this kind keeps its state: named in a snapshot's header, so that
    /// a snapshot restores only into a core of the same layout.
    const LAYOUT: Layout;

    /// Whether the kind folds in the combined partials of a combining edge
    /// ([`WindowKind::merge`]). The other kinds get the records of such a
    /// batch as a batch of plain records, gathered first.
    const MERGES: bool = false;

    /// The state part of a snapshot, decoded.
    type Snapshot: DeserializeOwned;

    /// Adds one record unless every window it belongs to is gone: then its
    /// key is handed back (a late record).
    fn add(
        &mut self,
        agg: &A,
        wm: Timestamp,
        key: K,
        ts: Timestamp,
        value: &T,
        out: &mut Fired<K, A::Out>,
    ) -> Option<K>;

    /// Adds every record `records` yields as [`WindowKind::add`] would, late
    /// records to `late`; stops at the first `None` (the iterator need not
    /// be fused).
    #[inline]
    fn add_records(
        &mut self,
        agg: &A,
        wm: Timestamp,
        records: impl Iterator<Item = Record<(K, T)>>,
        out: &mut Fired<K, A::Out>,
        late: &mut Vec<Record<(K, T)>>,
    ) {
        for r in records {
            add_one(r, late, |key, ts, value| self.add(agg, wm, key, ts, value, out));
        }
    }

    /// Adds every record of `batch`, leaving it empty (its allocation kept).
    #[inline]
    fn add_batch(
        &mut self,
        agg: &A,
        wm: Timestamp,
        batch: &mut Vec<Record<(K, T)>>,
        out: &mut Fired<K, A::Out>,
        late: &mut Vec<Record<(K, T)>>,
    ) {
        self.add_records(agg, wm, batch.drain(..), out, late);
    }

    /// Folds `acc`, the aggregate of records of `key` in the interval
    /// (window or pane) ending at `end`, into its state (see
    /// [`super::partial`]); `false` if its windows are gone. Only called
    /// where [`WindowKind::MERGES`].
    fn merge(
        &mut self,
        _agg: &A,
        _wm: Timestamp,
        _key: &K,
        _end: Timestamp,
        _acc: A::Acc,
        _out: &mut Fired<K, A::Out>,
    ) -> bool {
        false
    }

    /// The watermark advanced from `previous` to `wm`: fires what it
    /// reached, in ascending window end, and discards expired state.
    fn on_watermark(&mut self, agg: &A, previous: Timestamp, wm: Timestamp, out: &mut Fired<K, A::Out>);

    /// The first window end in `(previous, wm)` at which something fires,
    /// where the kind knows it cheaply (see `WindowCore::next_step`).
    fn next_end(&self, _previous: Timestamp, _wm: Timestamp) -> Option<Timestamp> {
        None
    }

    /// Fires early every window after `wm` that changed since it last
    /// fired (only called on a core configured with early firing by
    /// processing time).
    fn fire_early(&mut self, agg: &A, wm: Timestamp, out: &mut Fired<K, A::Out>);

    /// Number of (key, window) states held (panes: (key, pane) states).
    fn open_windows(&self) -> usize;

    /// The state for a checkpoint (serializes as [`WindowKind::Snapshot`]).
    fn snapshot(&self) -> impl Serialize + '_;

    /// A kind configured like this one, holding the state of a snapshot;
    /// the error says which invariant the state breaks.
    fn restored(&self, state: Self::Snapshot) -> Result<Self, String>;
}

/// Feeds `r` to `add`, which returns the key back when the record is late;
/// a late record goes to `late`.
#[inline(always)]
pub(super) fn add_one<K, T>(
    r: Record<(K, T)>,
    late: &mut Vec<Record<(K, T)>>,
    add: impl FnOnce(K, Timestamp, &T) -> Option<K>,
) {
    let (key, value) = r.value;
    if let Some(key) = add(key, r.ts, &value) {
        late.push(Record { ts: r.ts, value: (key, value) });
    }
}

/// Appends one firing of `window` of `key` to `out`, with timestamp `ts`.
pub(super) fn emit<K, R>(out: &mut Fired<K, R>, ts: Timestamp, key: K, window: Window, value: R, timing: Timing) {
    out.push(Record { ts, value: WindowResult { key, window, value, timing } });
}

/// The output timestamp of a time window's result: its last instant.
pub(super) fn last_instant(window: Window) -> Timestamp {
    window.end.saturating_sub(1)
}
