//! Sliding windows computed from panes: one accumulator per (key, pane).
//!
//! When the window size is a multiple of the slide, event time splits into
//! panes `[p, p + slide)` (`p` a multiple of the slide) and every window is
//! the union of `size / slide` consecutive panes. A record then updates one
//! accumulator (its pane's) instead of one per window, and a window's result
//! is the merge of its panes' accumulators, computed when it fires (the
//! aggregate's `merge` is associative with `create` as identity).
//!
//! Invariants: the window ending at `e` holds the panes ending in
//! `(e - size, e]`; a pane ending at `pe` serves windows up to
//! `pe + size - slide`, so it is dropped once that end plus the allowed
//! lateness is at or behind the watermark — which is exactly when a record in
//! it has no window left (late). Under early firing by processing time a
//! pane keeps a dirty flag ([`Dirty`](super::marks::Dirty); without it,
//! nothing: [`NoMarks`](super::marks::NoMarks)): it is dirty when it
//! changed since the last early firing, and a window after the watermark is
//! dirty exactly when one of its panes is: its last firing was the last
//! early firing that found it dirty. Early firing by count needs a counter
//! per window, so it uses [`super::time_windows`] instead.
//!
//! A checkpoint stores the panes by pane end ([`PaneSnapshot`]), with their
//! marks; which windows fired follows from the watermark.

use std::hash::Hash;

use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};

use super::buckets::{key_map, BucketEntries, Buckets, KeyMap};
use super::core::Fired;
use super::kind::{add_one, emit, last_instant, WindowKind};
use super::layout::Layout;
use super::marks::Marks;
use super::span::RecentSpan;
use crate::message::{Record, Timestamp};
use crate::window::{Aggregate, Timing, Window};

/// The state of one pane of one key.
#[derive(Clone, Serialize, Deserialize)]
pub(super) struct Pane<Acc, M> {
    /// The aggregate of the pane's records.
    acc: Acc,
    /// Changed since the last processing-time early firing (where that is
    /// configured).
    marks: M,
}

impl<Acc, M: Marks> Pane<Acc, M> {
    /// A pane that holds no record yet.
    fn new(acc: Acc) -> Self {
        Pane { acc, marks: M::default() }
    }
}

/// The decoded form of [`PaneWindows::snapshot`]: per pane end, the panes
/// of its keys.
pub(super) type PaneSnapshot<K, Acc, M> = BucketEntries<K, Pane<Acc, M>>;

/// Pane-based sliding windows of every key.
pub(super) struct PaneWindows<K, Acc, M> {
    /// Window length, a multiple of `slide`.
    size: i64,
    /// Distance between window starts, and pane length.
    slide: i64,
    /// How long after its end a window is kept for late records.
    lateness: i64,
    /// The panes, by pane end.
    panes: Buckets<K, Pane<Acc, M>>,
    /// Slab entries of the panes of the window being fired (reused buffer).
    scratch: Vec<usize>,
    /// The window being fired, merged per key: accumulator and marks (dirty
    /// if a pane of it is), reused, empty between firings.
    merged: KeyMap<K, Pane<Acc, M>>,
    /// The pane of the previous record (the next one is nearly always in
    /// it).
    recent: RecentSpan,
}

impl<K: Hash + Eq + Clone, Acc: Clone, M: Marks> PaneWindows<K, Acc, M> {
    /// Windows of `size` every `slide`, `size` a multiple of `slide`.
    pub(super) fn new(size: i64, slide: i64, lateness: i64) -> Self {
        PaneWindows {
            size,
            slide,
            lateness,
            panes: Buckets::new(),
            scratch: Vec::new(),
            merged: key_map(),
            recent: RecentSpan::new(),
        }
    }

    /// The window ending at `end`.
    fn window(&self, end: Timestamp) -> Window {
        Window::new(end.saturating_sub(self.size), end)
    }

    /// The first window end (a multiple of the slide) after `t`.
    fn first_end_after(&self, t: Timestamp) -> Timestamp {
        t.div_euclid(self.slide).saturating_add(1).saturating_mul(self.slide)
    }

    /// Fires again, as updates, the windows ending in `pane_end ..=
    /// last_end` (those holding the pane) that the watermark has reached
    /// and that are still kept.
    #[inline]
    fn refire<T, A: Aggregate<T, Acc = Acc>>(
        &self,
        agg: &A,
        wm: Timestamp,
        key: &K,
        pane_end: Timestamp,
        last_end: Timestamp,
        out: &mut Fired<K, A::Out>,
    ) {
        let mut end = pane_end;
        while end <= wm && end <= last_end {
            if end.saturating_add(self.lateness) > wm {
                self.fire_key(agg, key, end, out);
            }
            let Some(next) = end.checked_add(self.slide) else { break };
            end = next;
        }
    }

    /// Fires the window ending at `end` for one key as an update (`Late`).
    fn fire_key<T, A: Aggregate<T, Acc = Acc>>(&self, agg: &A, key: &K, end: Timestamp, out: &mut Fired<K, A::Out>) {
        let window = self.window(end);
        let mut acc: Option<Acc> = None;
        for (_, i) in self.panes.range(window.start, end) {
            if let Some(pane) = self.panes.bucket(i).get(key) {
                match &mut acc {
                    None => acc = Some(pane.acc.clone()),
                    Some(acc) => agg.merge(acc, pane.acc.clone()),
                }
            }
        }
        if let Some(acc) = acc {
            emit(out, last_instant(window), key.clone(), window, agg.result(&acc), Timing::Late);
        }
    }

    /// Fires the window ending at `end` for every key with a record in it
    /// (with `dirty_only`, every key with a pane changed since the last early
    /// firing).
    fn fire_window<T, A: Aggregate<T, Acc = Acc>>(
        &mut self,
        agg: &A,
        end: Timestamp,
        timing: Timing,
        dirty_only: bool,
        out: &mut Fired<K, A::Out>,
    ) {
        let window = self.window(end);
        self.scratch.clear();
        self.scratch.extend(self.panes.range(window.start, end).map(|(_, i)| i));
        // Merge the window's panes key by key into one map: every pane is
        // scanned in memory order and each (key, pane) costs one lookup in a
        // single, reused map — rather than a lookup of every key in each of
        // the other panes, a cache miss apiece when keys are many. The
        // first pane is copied table to table, without hashing (same
        // hasher); the others fold into it in time order (a merge need not
        // commute).
        let merged = &mut self.merged;
        let Some((&first, rest)) = self.scratch.split_first() else { return };
        merged.clone_from(self.panes.bucket(first));
        for &i in rest {
            for (key, pane) in self.panes.bucket(i) {
                match merged.get_mut(key) {
                    Some(m) => {
                        agg.merge(&mut m.acc, pane.acc.clone());
                        m.marks.absorb(&pane.marks);
                    }
                    None => {
                        merged.insert(key.clone(), pane.clone());
                    }
                }
            }
        }
        for (key, m) in merged.drain() {
            if !dirty_only || m.marks.dirty() {
                emit(out, last_instant(window), key, window, agg.result(&m.acc), timing);
            }
        }
    }

    /// Calls `fire` for each window end from `from` on (up to `upto`) whose
    /// window holds a pane, in ascending order.
    fn each_window_end(&mut self, from: Timestamp, upto: Timestamp, mut fire: impl FnMut(&mut Self, Timestamp)) {
        let mut end = from;
        // Skip the windows that hold no pane: the next one that does ends at
        // the first pane ending after `end - size`, or at `end`.
        while let Some((pane_end, _)) = self.panes.next_after(end.saturating_sub(self.size), Timestamp::MAX) {
            end = end.max(pane_end);
            if end > upto {
                break;
            }
            fire(self, end);
            let Some(next) = end.checked_add(self.slide) else { break };
            end = next;
        }
    }
}

impl<K, T, A, M> WindowKind<K, T, A> for PaneWindows<K, A::Acc, M>
where
    K: Hash + Eq + Clone + Send + Serialize + DeserializeOwned + 'static,
    A: Aggregate<T>,
    M: Marks + Send + 'static,
{
    const LAYOUT: Layout = if M::TRACKED { Layout::PanesEarly } else { Layout::Panes };
    const MERGES: bool = true;
    type Snapshot = PaneSnapshot<K, A::Acc, M>;

    /// Adds a record to its pane unless every window holding it is gone
    /// (then returns the key back: late). Windows holding it that already
    /// fired on time fire again at once with the update.
    #[inline]
    fn add(
        &mut self,
        agg: &A,
        wm: Timestamp,
        key: K,
        ts: Timestamp,
        value: &T,
        out: &mut Fired<K, A::Out>,
    ) -> Option<K> {
        let (pane_start, pane_end) = self.recent.locate(ts, self.slide);
        // The windows holding `ts` end in `pane_end ..= last_end`.
        let last_end = pane_start.saturating_add(self.size);
        if last_end.saturating_add(self.lateness) <= wm {
            return Some(key);
        }
        self.panes.update(
            pane_end,
            &key,
            || Pane::new(agg.create()),
            |pane| {
                agg.add(&mut pane.acc, value);
                pane.marks.touch(1);
            },
        );
        self.refire(agg, wm, &key, pane_end, last_end, out);
        None
    }

    /// Runs of records into panes after the watermark (which no window
    /// that fired holds) go through [`Buckets::add_runs`], every other
    /// record through `add`.
    fn add_records(
        &mut self,
        agg: &A,
        wm: Timestamp,
        mut records: impl Iterator<Item = Record<(K, T)>>,
        out: &mut Fired<K, A::Out>,
        late: &mut Vec<Record<(K, T)>>,
    ) {
        while let Some(r) = self.panes.add_runs(
            &mut records,
            &mut self.recent,
            self.slide,
            |_, pane_end| (pane_end > wm).then_some(pane_end),
            || Pane::new(agg.create()),
            |pane, value| {
                agg.add(&mut pane.acc, value);
                pane.marks.touch(1);
            },
        ) {
            add_one(r, late, |key, ts, value| self.add(agg, wm, key, ts, value, out));
        }
    }

    /// Folds `acc`, the aggregate of records of `key` in the pane ending at
    /// `pane_end`, into that pane (see `window::partial`); windows holding
    /// it that already fired (a broken edge invariant, never by
    /// construction) fire again. `false` if every window holding the pane
    /// is gone for good.
    fn merge(
        &mut self,
        agg: &A,
        wm: Timestamp,
        key: &K,
        pane_end: Timestamp,
        acc: A::Acc,
        out: &mut Fired<K, A::Out>,
    ) -> bool {
        let last_end = pane_end.saturating_sub(self.slide).saturating_add(self.size);
        if last_end.saturating_add(self.lateness) <= wm {
            return false;
        }
        self.panes.update(
            pane_end,
            key,
            || Pane::new(agg.create()),
            |pane| {
                agg.merge(&mut pane.acc, acc);
                pane.marks.touch(1);
            },
        );
        self.refire(agg, wm, key, pane_end, last_end, out);
        true
    }

    /// Fires the windows with end in `(previous, wm]` in ascending end, then
    /// drops the panes no kept window needs.
    fn on_watermark(&mut self, agg: &A, previous: Timestamp, wm: Timestamp, out: &mut Fired<K, A::Out>) {
        let from = self.first_end_after(previous);
        self.each_window_end(from, wm, |me, end| me.fire_window(agg, end, Timing::OnTime, false, out));
        let reach = (self.size - self.slide).saturating_add(self.lateness);
        while self.panes.discard_first_if(|pane_end| pane_end.saturating_add(reach) <= wm) {}
    }

    /// The first window end in `(previous, wm)` at which a window holding a
    /// pane fires, if any.
    fn next_end(&self, previous: Timestamp, wm: Timestamp) -> Option<Timestamp> {
        let from = self.first_end_after(previous);
        let (pane_end, _) = self.panes.next_after(from.saturating_sub(self.size), Timestamp::MAX)?;
        let end = from.max(pane_end);
        (end < wm).then_some(end)
    }

    /// Fires early every window after the watermark that changed since it
    /// last fired, then marks every pane clean.
    fn fire_early(&mut self, agg: &A, wm: Timestamp, out: &mut Fired<K, A::Out>) {
        debug_assert!(M::TRACKED, "early firing by processing time needs dirty flags");
        let from = self.first_end_after(wm);
        self.each_window_end(from, Timestamp::MAX, |me, end| me.fire_window(agg, end, Timing::Early, true, out));
        self.panes.for_each_mut(|pane| pane.marks.reset());
    }

    /// Number of (key, pane) states held.
    fn open_windows(&self) -> usize {
        self.panes.len()
    }

    /// The panes for a checkpoint (serializes as a [`PaneSnapshot`]).
    fn snapshot(&self) -> impl Serialize + '_ {
        self.panes.snapshot()
    }

    /// Windows configured like these, holding the panes of a snapshot.
    fn restored(&self, state: Self::Snapshot) -> Result<Self, String> {
        let (size, slide, lateness) = (self.size, self.slide, self.lateness);
        Ok(PaneWindows {
            size,
            slide,
            lateness,
            panes: Buckets::from_snapshot(state)?,
            scratch: Vec::new(),
            merged: key_map(),
            recent: RecentSpan::new(),
        })
    }
}
