//! The window manager's functional core: per-key window state, firing on
//! watermarks, allowed lateness, early firings, late-data routing.
//!
//! [`WindowCore`] is a plain struct — no actor, no lock, no clock — that the
//! window-manager actor feeds with batches of records
//! ([`WindowCore::add_batch`]), watermarks ([`WindowCore::on_watermark`])
//! and processing-time ticks ([`WindowCore::fire_early`]). It keeps one
//! accumulator per (key, window) — or per (key, pane), or per session — and
//! writes what fires, as [`WindowResult`](crate::window::WindowResult)
//! records, into a buffer the caller owns and reuses.
//!
//! Invariants, for every window kind:
//! - a watermark `t` promises no more records with timestamp `< t`; a time
//!   window `[start, end)` fires on time once the watermark is `>= end`, a
//!   session once it is `> end` (a record at exactly `end` still joins it);
//!   `i64::MAX` (end of input) fires everything left;
//! - one watermark fires its windows in ascending window end;
//! - a window is kept `allowed_lateness` after its end, so that a record
//!   behind the watermark can still update it (and fire it again at once,
//!   [`Timing::Late`](crate::window::Timing::Late)); a record whose windows
//!   are all gone for good goes to the late-data output and is counted —
//!   never dropped silently;
//! - early firings only ever concern windows that have not fired on time.
//!
//! Inside, the core is a [`KindCore`] generic over one window kind
//! ([`WindowKind`]), chosen once when the core is built
//! ([`Layout`]), behind a box: a call per batch or watermark goes through
//! one indirection, and the per-record loops are compiled for their kind.
//! For checkpoints, [`WindowCore::snapshot`] encodes the state as rmp-serde
//! bytes headed by the configuration, and [`WindowCore::restore`] puts it
//! back into a core built with the same configuration
//! ([`super::snapshot`]).

use std::hash::Hash;
use std::marker::PhantomData;

use serde::de::DeserializeOwned;
use serde::Serialize;

use super::kind::WindowKind;
use super::layout::Layout;
use super::partial::{Keyed, Partial};
use crate::message::{Record, Timestamp};
use crate::window::{Aggregate, WindowOptions, WindowResult, Windows};

/// Where a firing's results go: output records whose timestamp is the
/// window's `end - 1` (for count windows: the largest record timestamp in the
/// window), in the order fired.
pub(crate) type Fired<K, R> = Vec<Record<WindowResult<K, R>>>;

/// Keyed window state for one window-manager instance.
pub(crate) struct WindowCore<K, T, A: Aggregate<T>> {
    /// The core of the configured window kind.
    core: Box<dyn Core<K, T, A> + Send>,
}

impl<K, T, A> WindowCore<K, T, A>
where
    K: Hash + Eq + Clone + Send + Serialize + DeserializeOwned + 'static,
    T: 'static,
    A: Aggregate<T>,
{
    /// `windows` has been validated. The initial watermark is `i64::MIN`.
    pub(crate) fn new(windows: Windows, options: WindowOptions, agg: A) -> Self {
        WindowCore { core: Layout::of(windows, &options, true).core(windows, options, agg) }
    }

    /// Like [`WindowCore::new`]; `panes: false` keeps sliding windows one
    /// state per window even where panes would apply (tests compare the two).
    #[cfg(test)]
    pub(crate) fn with_layout(windows: Windows, options: WindowOptions, agg: A, panes: bool) -> Self {
        WindowCore { core: Layout::of(windows, &options, panes).core(windows, options, agg) }
    }
}

impl<K, T, A: Aggregate<T>> WindowCore<K, T, A> {
    /// Adds one record. Records whose windows have all closed for good go to
    /// `late` (with their key and timestamp) and are counted; a late record
    /// within the allowed lateness updates its window(s) and, where a window
    /// had already fired, fires it again at once as `Timing::Late`. Early
    /// firings by count are emitted into `out` as they happen. (The actor
    /// feeds whole batches, [`WindowCore::add_batch`]; tests one record.)
    #[cfg(test)]
    pub(crate) fn add(
        &mut self,
        key: K,
        ts: Timestamp,
        value: T,
        out: &mut Fired<K, A::Out>,
        late: &mut Vec<Record<(K, T)>>,
    ) {
        self.core.add(key, ts, value, out, late)
    }

    /// Adds every record of `batch` (leaving it empty, its allocation
    /// kept), as [`WindowCore::add`] does one by one.
    pub(crate) fn add_batch(
        &mut self,
        batch: &mut Vec<Record<(K, T)>>,
        out: &mut Fired<K, A::Out>,
        late: &mut Vec<Record<(K, T)>>,
    ) {
        self.core.add_batch(batch, out, late)
    }

    /// Adds a batch from a combining edge (see [`super::partial`]): the
    /// records that came one by one are added as [`WindowCore::add_batch`]
    /// adds them — straight from the batch, a run at a time, for the kinds
    /// that receive partials — before the next partial is merged into its
    /// window's (or pane's) state, so that each window takes what one input
    /// sent in the order it was sent (an aggregate need not be
    /// commutative). `records` is a reused buffer for the other kinds.
    /// Returns how many records were lost (see below).
    ///
    /// Only tumbling windows and pane-based sliding windows receive
    /// partials ([`super::partial::combinable`]). A partial whose windows
    /// are all gone cannot happen by the edge's invariant; were it to, its
    /// records are counted as late and an error is logged (they cannot be
    /// delivered: only their aggregate came).
    pub(crate) fn add_partials(
        &mut self,
        batch: &mut Vec<Record<Keyed<K, T, A::Acc>>>,
        records: &mut Vec<Record<(K, T)>>,
        out: &mut Fired<K, A::Out>,
        late: &mut Vec<Record<(K, T)>>,
    ) -> u64 {
        self.core.add_partials(batch, records, out, late)
    }

    /// Advances event time to `wm` (ignored if not greater than the current
    /// watermark): fires every window the watermark has reached (session
    /// windows: passed), in ascending window end, and discards state whose
    /// allowed lateness has expired. `wm == i64::MAX` fires everything left,
    /// including partly filled count windows.
    pub(crate) fn on_watermark(&mut self, wm: Timestamp, out: &mut Fired<K, A::Out>) {
        self.core.on_watermark(wm, out)
    }

    /// Where to advance the watermark to on the way to `wm`: the first
    /// window end before `wm` that fires (time and pane windows), else `wm`
    /// itself. Advancing step by step fires exactly what one jump would, in
    /// the same order, but lets the caller send each window's results
    /// before the next fires: a jump over many windows (end of input) would
    /// otherwise gather all their results at once.
    pub(crate) fn next_step(&self, wm: Timestamp) -> Timestamp {
        self.core.next_step(wm)
    }

    /// Processing-time early firing: every open, not yet on-time-fired window
    /// that changed since its last firing fires with `Timing::Early`. Only a
    /// core configured with [`WindowOptions::early_firing_interval`] keeps
    /// track of what changed; on any other this does nothing (the window
    /// manager only calls it on that interval).
    pub(crate) fn fire_early(&mut self, out: &mut Fired<K, A::Out>) {
        self.core.fire_early(out)
    }

    /// The current watermark.
    pub(crate) fn watermark(&self) -> Timestamp {
        self.core.watermark()
    }

    /// Number of (key, window) states held. For pane-based sliding windows:
    /// (key, pane) states.
    pub(crate) fn open_windows(&self) -> usize {
        self.core.open_windows()
    }

    /// Records sent to `late` so far.
    pub(crate) fn late_records(&self) -> u64 {
        self.core.late_records()
    }

    /// Everything needed to resume exactly: open windows, panes, sessions
    /// and count windows with their accumulators; their fired, dirty and
    /// early-count state; the state kept for allowed lateness; the firing
    /// schedule; the current watermark and the late-record counter. As
    /// rmp-serde bytes, headed by the configuration ([`super::snapshot`]).
    pub(crate) fn snapshot(&self) -> Vec<u8> {
        self.core.snapshot()
    }

    /// Replaces this core's state with a snapshot taken by a core built with
    /// the same [`Windows`] and [`WindowOptions`] (and the same layout). The
    /// error names what is wrong: bytes that do not decode (or do not end
    /// where the snapshot does), a snapshot of another window kind, layout
    /// or options, or state that breaks an invariant. On error the core is
    /// unchanged.
    pub(crate) fn restore(&mut self, bytes: &[u8]) -> Result<(), String> {
        self.core.restore(bytes)
    }

    /// The layout this core chose for its configuration.
    #[cfg(test)]
    pub(crate) fn layout(&self) -> Layout {
        self.core.layout()
    }
}

/// What [`WindowCore`] asks of the core of its window kind: the same
/// operations, called once per batch, watermark or tick.
pub(super) trait Core<K, T, A: Aggregate<T>> {
    #[cfg(test)]
    fn add(&mut self, key: K, ts: Timestamp, value: T, out: &mut Fired<K, A::Out>, late: &mut Vec<Record<(K, T)>>);
    fn add_batch(
        &mut self,
        batch: &mut Vec<Record<(K, T)>>,
        out: &mut Fired<K, A::Out>,
        late: &mut Vec<Record<(K, T)>>,
    );
    fn add_partials(
        &mut self,
        batch: &mut Vec<Record<Keyed<K, T, A::Acc>>>,
        records: &mut Vec<Record<(K, T)>>,
        out: &mut Fired<K, A::Out>,
        late: &mut Vec<Record<(K, T)>>,
    ) -> u64;
    fn on_watermark(&mut self, wm: Timestamp, out: &mut Fired<K, A::Out>);
    fn next_step(&self, wm: Timestamp) -> Timestamp;
    fn fire_early(&mut self, out: &mut Fired<K, A::Out>);
    fn watermark(&self) -> Timestamp;
    fn open_windows(&self) -> usize;
    fn late_records(&self) -> u64;
    fn snapshot(&self) -> Vec<u8>;
    fn restore(&mut self, bytes: &[u8]) -> Result<(), String>;
    #[cfg(test)]
    fn layout(&self) -> Layout;
}

/// The core of one window kind `W`: the kind's state, and what every kind
/// shares — the aggregate, the configuration, the watermark and the
/// late-record counter.
pub(super) struct KindCore<K, T, A: Aggregate<T>, W> {
    /// The user's aggregate: creates, updates, merges and reads accumulators.
    pub(super) agg: A,
    /// The configured window kind (checked when a snapshot is restored).
    pub(super) windows: Windows,
    /// The configured options (checked when a snapshot is restored).
    pub(super) options: WindowOptions,
    /// The state of every key.
    pub(super) kind: W,
    /// The current event-time watermark (`i64::MIN` before the first).
    pub(super) watermark: Timestamp,
    /// Records sent to the late-data output so far.
    pub(super) late_records: u64,
    /// The core consumes `T`s without storing them (only accumulators).
    _values: PhantomData<fn(T) -> K>,
}

impl<K, T, A: Aggregate<T>, W: WindowKind<K, T, A>> KindCore<K, T, A, W> {
    /// A core over `kind`, empty, before the first watermark.
    pub(super) fn new(windows: Windows, options: WindowOptions, agg: A, kind: W) -> Self {
        KindCore { agg, windows, options, kind, watermark: Timestamp::MIN, late_records: 0, _values: PhantomData }
    }
}

impl<K, T, A, W> Core<K, T, A> for KindCore<K, T, A, W>
where
    K: Hash + Eq + Clone + Send + Serialize + DeserializeOwned + 'static,
    A: Aggregate<T>,
    W: WindowKind<K, T, A>,
{
    #[cfg(test)]
    fn add(&mut self, key: K, ts: Timestamp, value: T, out: &mut Fired<K, A::Out>, late: &mut Vec<Record<(K, T)>>) {
        if let Some(key) = self.kind.add(&self.agg, self.watermark, key, ts, &value, out) {
            self.late_records += 1;
            late.push(Record { ts, value: (key, value) });
        }
    }

    fn add_batch(
        &mut self,
        batch: &mut Vec<Record<(K, T)>>,
        out: &mut Fired<K, A::Out>,
        late: &mut Vec<Record<(K, T)>>,
    ) {
        let late_before = late.len();
        self.kind.add_batch(&self.agg, self.watermark, batch, out, late);
        self.late_records += (late.len() - late_before) as u64;
    }

    fn add_partials(
        &mut self,
        batch: &mut Vec<Record<Keyed<K, T, A::Acc>>>,
        records: &mut Vec<Record<(K, T)>>,
        out: &mut Fired<K, A::Out>,
        late: &mut Vec<Record<(K, T)>>,
    ) -> u64 {
        let (agg, wm) = (&self.agg, self.watermark);
        let mut lost = 0u64;
        let late_before = late.len();
        let mut partials = batch.drain(..);
        loop {
            // The records up to the next combined partial (or the end).
            let mut stop = None;
            let run = RecordsUntilCombined { partials: &mut partials, stop: &mut stop, done: false };
            if W::MERGES {
                self.kind.add_records(agg, wm, run, out, late);
            } else {
                records.extend(run);
                self.kind.add_batch(agg, wm, records, out, late);
            }
            let Some((key, end, acc, n)) = stop else { break };
            if !(W::MERGES && self.kind.merge(agg, wm, &key, end, acc, out)) {
                lost += u64::from(n);
            }
        }
        self.late_records += (late.len() - late_before) as u64;
        if lost > 0 {
            self.late_records += lost;
            tracing::error!(records = lost, watermark = wm, "combined partials arrived for windows already gone: counted as late, not delivered (a combining edge broke its invariant)");
        }
        lost
    }

    fn on_watermark(&mut self, wm: Timestamp, out: &mut Fired<K, A::Out>) {
        if wm <= self.watermark {
            return;
        }
        let previous = std::mem::replace(&mut self.watermark, wm);
        self.kind.on_watermark(&self.agg, previous, wm, out);
    }

    fn next_step(&self, wm: Timestamp) -> Timestamp {
        if wm <= self.watermark {
            return wm;
        }
        self.kind.next_end(self.watermark, wm).unwrap_or(wm)
    }

    fn fire_early(&mut self, out: &mut Fired<K, A::Out>) {
        // Only a core with this option keeps track of what changed.
        if self.options.early_firing_interval.is_some() {
            self.kind.fire_early(&self.agg, self.watermark, out);
        }
    }

    fn watermark(&self) -> Timestamp {
        self.watermark
    }

    fn open_windows(&self) -> usize {
        self.kind.open_windows()
    }

    fn late_records(&self) -> u64 {
        self.late_records
    }

    fn snapshot(&self) -> Vec<u8> {
        KindCore::snapshot(self)
    }

    fn restore(&mut self, bytes: &[u8]) -> Result<(), String> {
        KindCore::restore(self, bytes)
    }

    #[cfg(test)]
    fn layout(&self) -> Layout {
        W::LAYOUT
    }
}

/// The records of a combining edge's batch up to its next combined
/// partial, which it leaves in `stop`; then `None` for good.
struct RecordsUntilCombined<'a, I, K, Acc> {
    partials: &'a mut I,
    stop: &'a mut Option<(K, Timestamp, Acc, u32)>,
    done: bool,
}

impl<I, K, T, Acc> Iterator for RecordsUntilCombined<'_, I, K, Acc>
where
    I: Iterator<Item = Record<Keyed<K, T, Acc>>>,
{
    type Item = Record<(K, T)>;

    #[inline(always)]
    fn next(&mut self) -> Option<Record<(K, T)>> {
        if self.done {
            return None;
        }
        match self.partials.next() {
            Some(Record { ts, value: (key, Partial::Record(value)) }) => Some(Record { ts, value: (key, value) }),
            Some(Record { value: (key, Partial::Combined { end, acc, records }), .. }) => {
                *self.stop = Some((key, end, acc, records));
                self.done = true;
                None
            }
            None => {
                self.done = true;
                None
            }
        }
    }
}
