//! The window manager's functional core: per-key window state, firing on
//! watermarks, allowed lateness, early firings, late-data routing.
//!
//! [`WindowCore`] is a plain struct — no actor, no lock, no clock — that the
//! window-manager actor feeds with records ([`WindowCore::add`]), watermarks
//! ([`WindowCore::on_watermark`]) and processing-time ticks
//! ([`WindowCore::fire_early`]). It keeps one accumulator per (key, window)
//! and writes what fires, as [`WindowResult`] records, into a buffer the
//! caller owns and reuses.
//!
//! Invariants, for every window kind:
//! - a watermark `t` promises no more records with timestamp `< t`; a time
//!   window `[start, end)` fires on time once the watermark is `>= end`, a
//!   session once it is `> end` (a record at exactly `end` still joins it);
//!   `i64::MAX` (end of input) fires everything left;
//! - one watermark fires its windows in ascending window end;
//! - a window is kept `allowed_lateness` after its end, so that a record
//!   behind the watermark can still update it (and fire it again at once,
//!   [`Timing::Late`]); a record whose windows are all gone for good goes to
//!   the late-data output and is counted — never dropped silently;
//! - early firings ([`Timing::Early`]) only ever concern windows that have
//!   not fired on time.
//!
//! Each kind keeps its state in the layout that makes its firing cheap:
//! tumbling and sliding windows in buckets by window end
//! ([`time_windows`], over [`buckets`]); sliding windows whose size is a
//! multiple of the slide in slide-sized panes merged when a window fires
//! ([`pane_windows`]); sessions per key with an ordered index of wake-up
//! times ([`session_windows`], merging in [`crate::window::session`]); count
//! windows per key ([`count_windows`]).
//!
//! For checkpoints, [`WindowCore::snapshot`] encodes all of that state (and
//! the watermark and late-record counter) as rmp-serde bytes, headed by the
//! window configuration, and [`WindowCore::restore`] puts it back into a
//! core built with the same configuration ([`snapshot`]).

// One file per window kind, beside this one in `window/`: they are the
// core's submodules, since the core is their only user.
#[path = "buckets.rs"]
mod buckets;
#[path = "count_windows.rs"]
mod count_windows;
#[path = "marks.rs"]
mod marks;
#[path = "pane_windows.rs"]
mod pane_windows;
#[path = "session_windows.rs"]
mod session_windows;
#[path = "snapshot.rs"]
mod snapshot;
#[path = "span.rs"]
pub(crate) mod span;
#[path = "time_windows.rs"]
mod time_windows;
#[path = "wakeups.rs"]
mod wakeups;

#[cfg(test)]
#[path = "early_firing_tests.rs"]
mod early_firing_tests;
#[cfg(test)]
#[path = "proptests.rs"]
mod proptests;
#[cfg(test)]
#[path = "snapshot_decode_proptests.rs"]
mod snapshot_decode_proptests;
#[cfg(test)]
#[path = "snapshot_harness.rs"]
mod snapshot_harness;
#[cfg(test)]
#[path = "snapshot_proptests.rs"]
mod snapshot_proptests;
#[cfg(test)]
#[path = "snapshot_tests.rs"]
mod snapshot_tests;
#[cfg(test)]
#[path = "tests.rs"]
mod tests;

use std::marker::PhantomData;

use crate::message::{Record, Timestamp};
use crate::window::partial::{Keyed, Partial};
use crate::window::{Aggregate, Timing, Window, WindowOptions, WindowResult, Windows};

use count_windows::CountWindows;
use marks::{Dirty, Early, NoMarks};
use pane_windows::PaneWindows;
use session_windows::SessionWindows;
use time_windows::TimeWindows;

/// Where a firing's results go: output records whose timestamp is the
/// window's `end - 1` (for count windows: the largest record timestamp in the
/// window), in the order fired.
pub(crate) type Fired<K, R> = Vec<Record<WindowResult<K, R>>>;

/// Keyed window state for one window-manager instance.
pub(crate) struct WindowCore<K, T, A: Aggregate<T>> {
    /// The user's aggregate: creates, updates, merges and reads accumulators.
    agg: A,
    /// The configured window kind (checked when a snapshot is restored).
    windows: Windows,
    /// The configured options (checked when a snapshot is restored).
    options: WindowOptions,
    /// The state of the configured window kind.
    kind: Kind<K, A::Acc>,
    /// The current event-time watermark (`i64::MIN` before the first).
    watermark: Timestamp,
    /// Records sent to the late-data output so far.
    late_records: u64,
    /// The core consumes `T`s without storing them (only accumulators).
    _values: PhantomData<fn(T)>,
}

/// The state of one window kind.
enum Kind<K, Acc> {
    /// Tumbling windows, and sliding windows that cannot use panes, without
    /// early firing.
    Time(TimeWindows<K, Acc, NoMarks>),
    /// The same with early firing (by count or processing time): each
    /// state counts its records and knows whether it changed.
    TimeEarly(TimeWindows<K, Acc, Early>),
    /// Sliding windows whose size is a multiple of the slide, without early
    /// firing.
    Panes(PaneWindows<K, Acc, NoMarks>),
    /// The same with early firing by processing time: each pane knows
    /// whether it changed.
    PanesEarly(PaneWindows<K, Acc, Dirty>),
    /// Per-key merging sessions.
    Session(SessionWindows<K, Acc>),
    /// Per-key windows of a fixed number of records.
    Count(CountWindows<K, Acc>),
}

impl<K, T, A> WindowCore<K, T, A>
where
    K: std::hash::Hash + Eq + Clone + Send + 'static,
    A: Aggregate<T>,
{
    /// `windows` has been validated. The initial watermark is `i64::MIN`.
    pub(crate) fn new(windows: Windows, options: WindowOptions, agg: A) -> Self {
        Self::with_layout(windows, options, agg, true)
    }

    /// Like [`WindowCore::new`]; `panes: false` keeps sliding windows one
    /// state per window even where panes would apply (tests compare the two).
    pub(crate) fn with_layout(windows: Windows, options: WindowOptions, agg: A, panes: bool) -> Self {
        // Validation is the builder's job; the clamps only keep an unvalidated
        // configuration from dividing by zero.
        let lateness = options.allowed_lateness.max(0);
        let early = options.early_every_count.filter(|&n| n > 0);
        // States keep early-firing marks only where early firing is set.
        let timed = options.early_every_interval.is_some();
        let time = |size, slide| {
            if early.is_some() || timed {
                Kind::TimeEarly(TimeWindows::new(size, slide, lateness, early))
            } else {
                Kind::Time(TimeWindows::new(size, slide, lateness, None))
            }
        };
        let kind = match windows {
            Windows::Tumbling { size } => time(size.max(1), size.max(1)),
            Windows::Sliding { size, slide } => {
                let slide = slide.max(1);
                let size = size.max(slide);
                // Panes keep no per-window record counter, so early firing by
                // count (exact per window) needs one state per window.
                if panes && size % slide == 0 && size > slide && early.is_none() {
                    if timed {
                        Kind::PanesEarly(PaneWindows::new(size, slide, lateness))
                    } else {
                        Kind::Panes(PaneWindows::new(size, slide, lateness))
                    }
                } else {
                    time(size, slide)
                }
            }
            Windows::Session { gap } => Kind::Session(SessionWindows::new(gap.max(1), lateness, early)),
            Windows::Count { size } => Kind::Count(CountWindows::new(size.max(1), early)),
        };
        WindowCore { agg, windows, options, kind, watermark: Timestamp::MIN, late_records: 0, _values: PhantomData }
    }

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
        let wm = self.watermark;
        let agg = &self.agg;
        let rejected = match &mut self.kind {
            Kind::Time(w) => w.add(agg, wm, key, ts, &value, out),
            Kind::TimeEarly(w) => w.add(agg, wm, key, ts, &value, out),
            Kind::Panes(w) => w.add(agg, wm, key, ts, &value, out),
            Kind::PanesEarly(w) => w.add(agg, wm, key, ts, &value, out),
            Kind::Session(w) => w.add(agg, wm, key, ts, &value, out),
            Kind::Count(w) => {
                w.add(agg, key, ts, &value, out);
                None
            }
        };
        if let Some(key) = rejected {
            self.late_records += 1;
            late.push(Record { ts, value: (key, value) });
        }
    }

    /// Adds every record of `batch` (leaving it empty, its allocation
    /// kept), as [`WindowCore::add`] does one by one. The window kind is
    /// chosen once per batch, so the per-record loop is monomorphic.
    pub(crate) fn add_batch(
        &mut self,
        batch: &mut Vec<Record<(K, T)>>,
        out: &mut Fired<K, A::Out>,
        late: &mut Vec<Record<(K, T)>>,
    ) {
        let late_before = late.len();
        self.add_uncounted(batch, out, late);
        self.late_records += (late.len() - late_before) as u64;
    }

    /// [`WindowCore::add_batch`] without counting the late records (the
    /// caller does).
    fn add_uncounted(&mut self, batch: &mut Vec<Record<(K, T)>>, out: &mut Fired<K, A::Out>, late: &mut Vec<Record<(K, T)>>) {
        let wm = self.watermark;
        let agg = &self.agg;
        match &mut self.kind {
            Kind::Time(w) => w.add_batch(agg, wm, batch.drain(..), out, late),
            Kind::TimeEarly(w) => w.add_batch(agg, wm, batch.drain(..), out, late),
            Kind::Panes(w) => w.add_batch(agg, wm, batch.drain(..), out, late),
            Kind::PanesEarly(w) => w.add_batch(agg, wm, batch.drain(..), out, late),
            Kind::Session(w) => {
                w.touch(batch.iter().map(|r| &r.value.0));
                add_each(batch, late, |key, ts, value| w.add(agg, wm, key, ts, value, out))
            }
            Kind::Count(w) => add_each(batch, late, |key, ts, value| {
                w.add(agg, key, ts, value, out);
                None
            }),
        }
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
        let wm = self.watermark;
        let mut lost = 0u64;
        let late_before = late.len();
        let mut partials = batch.drain(..);
        loop {
            // The records up to the next combined partial (or the end).
            let mut stop = None;
            let run = RecordsUntilCombined { partials: &mut partials, stop: &mut stop, done: false };
            let agg = &self.agg;
            match &mut self.kind {
                Kind::Time(w) => w.add_batch(agg, wm, run, out, late),
                Kind::TimeEarly(w) => w.add_batch(agg, wm, run, out, late),
                Kind::Panes(w) => w.add_batch(agg, wm, run, out, late),
                Kind::PanesEarly(w) => w.add_batch(agg, wm, run, out, late),
                Kind::Session(_) | Kind::Count(_) => {
                    records.extend(run);
                    self.add_uncounted(records, out, late);
                }
            }
            let Some((key, end, acc, n)) = stop else { break };
            let agg = &self.agg;
            let merged = match &mut self.kind {
                Kind::Time(w) => w.merge(agg, wm, &key, end, acc, out),
                Kind::TimeEarly(w) => w.merge(agg, wm, &key, end, acc, out),
                Kind::Panes(w) => w.merge(agg, wm, &key, end, acc, out),
                Kind::PanesEarly(w) => w.merge(agg, wm, &key, end, acc, out),
                Kind::Session(_) | Kind::Count(_) => false,
            };
            if !merged {
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

    /// Advances event time to `wm` (ignored if not greater than the current
    /// watermark): fires every window the watermark has reached (session
    /// windows: passed), in ascending window end, and discards state whose
    /// allowed lateness has expired. `wm == i64::MAX` fires everything left,
    /// including partly filled count windows.
    pub(crate) fn on_watermark(&mut self, wm: Timestamp, out: &mut Fired<K, A::Out>) {
        if wm <= self.watermark {
            return;
        }
        let previous = std::mem::replace(&mut self.watermark, wm);
        let agg = &self.agg;
        match &mut self.kind {
            Kind::Time(w) => w.on_watermark(agg, previous, wm, out),
            Kind::TimeEarly(w) => w.on_watermark(agg, previous, wm, out),
            Kind::Panes(w) => w.on_watermark(agg, previous, wm, out),
            Kind::PanesEarly(w) => w.on_watermark(agg, previous, wm, out),
            Kind::Session(w) => w.on_watermark(agg, wm, out),
            Kind::Count(w) => w.on_watermark(agg, wm, out),
        }
    }

    /// Where to advance the watermark to on the way to `wm`: the first
    /// window end before `wm` that fires (time and pane windows), else `wm`
    /// itself. Advancing step by step fires exactly what one jump would, in
    /// the same order, but lets the caller send each window's results
    /// before the next fires: a jump over many windows (end of input) would
    /// otherwise gather all their results at once — 1 M results, 58 MB, for
    /// WL2's 100,000 keys at end of input.
    pub(crate) fn next_step(&self, wm: Timestamp) -> Timestamp {
        let previous = self.watermark;
        if wm <= previous {
            return wm;
        }
        let next = match &self.kind {
            Kind::Time(w) => w.next_end(previous, wm),
            Kind::TimeEarly(w) => w.next_end(previous, wm),
            Kind::Panes(w) => w.next_end(previous, wm),
            Kind::PanesEarly(w) => w.next_end(previous, wm),
            Kind::Session(_) | Kind::Count(_) => None,
        };
        next.unwrap_or(wm)
    }

    /// Processing-time early firing: every open, not yet on-time-fired window
    /// that changed since its last firing fires with `Timing::Early`. Only a
    /// core configured with [`WindowOptions::early_every_interval`] keeps
    /// track of what changed; on any other this does nothing (the window
    /// manager only calls it on that interval).
    pub(crate) fn fire_early(&mut self, out: &mut Fired<K, A::Out>) {
        if self.options.early_every_interval.is_none() {
            return;
        }
        let wm = self.watermark;
        let agg = &self.agg;
        match &mut self.kind {
            // Chosen only without early firing, returned above.
            Kind::Time(_) | Kind::Panes(_) => {}
            Kind::TimeEarly(w) => w.fire_early(agg, wm, out),
            Kind::PanesEarly(w) => w.fire_early(agg, wm, out),
            Kind::Session(w) => w.fire_early(agg, out),
            Kind::Count(w) => w.fire_early(agg, out),
        }
    }

    /// The current watermark.
    pub(crate) fn watermark(&self) -> Timestamp {
        self.watermark
    }

    /// Number of (key, window) states held. For pane-based sliding windows:
    /// (key, pane) states.
    pub(crate) fn open_windows(&self) -> usize {
        match &self.kind {
            Kind::Time(w) => w.open_windows(),
            Kind::TimeEarly(w) => w.open_windows(),
            Kind::Panes(w) => w.open_panes(),
            Kind::PanesEarly(w) => w.open_panes(),
            Kind::Session(w) => w.open_windows(),
            Kind::Count(w) => w.open_windows(),
        }
    }

    /// Records sent to `late` so far.
    pub(crate) fn late_records(&self) -> u64 {
        self.late_records
    }
}

/// Feeds every record of `batch` to `add`, which returns the key back when
/// the record is late; late records go to `late`.
#[inline(always)]
fn add_each<K, T>(
    batch: &mut Vec<Record<(K, T)>>,
    late: &mut Vec<Record<(K, T)>>,
    mut add: impl FnMut(K, Timestamp, &T) -> Option<K>,
) {
    for r in batch.drain(..) {
        add_one(r, late, &mut add);
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

/// Feeds `r` to `add`, which returns the key back when the record is late;
/// a late record goes to `late`.
#[inline(always)]
fn add_one<K, T>(r: Record<(K, T)>, late: &mut Vec<Record<(K, T)>>, add: impl FnOnce(K, Timestamp, &T) -> Option<K>) {
    let (key, value) = r.value;
    if let Some(key) = add(key, r.ts, &value) {
        late.push(Record { ts: r.ts, value: (key, value) });
    }
}

/// Appends one firing of `window` of `key` to `out`, with timestamp `ts`.
fn emit<K, R>(out: &mut Fired<K, R>, ts: Timestamp, key: K, window: Window, value: R, timing: Timing) {
    out.push(Record { ts, value: WindowResult { key, window, value, timing } });
}

/// The output timestamp of a time window's result: its last instant.
fn last_instant(window: Window) -> Timestamp {
    window.end.saturating_sub(1)
}
