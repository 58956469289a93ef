//! Tumbling and sliding windows, one accumulator per (key, window).
//!
//! A record at `ts` belongs to every window `[s, s + size)` with `s` a
//! multiple of `slide` and `s <= ts < s + size` (tumbling: `slide == size`,
//! one window). States are grouped by window end ([`Buckets`]): a watermark
//! `wm` fires the buckets with end in `(previous watermark, wm]` and drops
//! those with `end + allowed_lateness <= wm`. So a window whose end is at or
//! behind the watermark has fired on time (or, created late, fires as soon as
//! it is created), and a record is late exactly when every one of its windows
//! has been dropped; a record with some windows left updates those only.
//!
//! Each state keeps, beside its accumulator, the early-firing bookkeeping
//! the configuration needs ([`Marks`]: nothing, or a record count and a
//! dirty flag).
//!
//! A checkpoint stores the states by window end ([`TimeSnapshot`]); whether
//! a window has fired on time follows from the watermark (its end is at or
//! behind it), so only the early-firing marks are stored with each.

use std::hash::Hash;

use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};

use super::buckets::{BucketEntries, Buckets};
use super::core::Fired;
use super::kind::{add_one, emit, last_instant, WindowKind};
use super::layout::Layout;
use super::marks::Marks;
use super::span::RecentSpan;
use crate::message::{Record, Timestamp};
use crate::window::{Aggregate, Timing, Window};

/// The state of one window of one key.
#[derive(Serialize, Deserialize)]
pub(super) struct Slot<Acc, M> {
    /// The aggregate so far.
    acc: Acc,
    /// Records added and changes since the window last fired (early
    /// firing).
    marks: M,
}

impl<Acc, M: Marks> Slot<Acc, M> {
    /// A state that holds no record yet.
    fn new(acc: Acc) -> Self {
        Slot { acc, marks: M::default() }
    }

    /// Fires `window` of `key` as it stands, and starts counting afresh.
    fn fire<K: Clone, T, A: Aggregate<T, Acc = Acc>>(
        &mut self,
        agg: &A,
        key: &K,
        window: Window,
        timing: Timing,
        out: &mut Fired<K, A::Out>,
    ) {
        emit(out, last_instant(window), key.clone(), window, agg.result(&self.acc), timing);
        self.marks.reset();
    }
}

/// The decoded form of [`TimeWindows::snapshot`]: per window end, the
/// states of its keys.
pub(super) type TimeSnapshot<K, Acc, M> = BucketEntries<K, Slot<Acc, M>>;

/// Tumbling or sliding windows of every key.
pub(super) struct TimeWindows<K, Acc, M> {
    /// Window length.
    size: i64,
    /// Distance between window starts (`== size` for tumbling windows).
    slide: i64,
    /// How long after its end a window is kept for late records.
    lateness: i64,
    /// Fire a window early every this many records (only with marks that
    /// count them).
    early_every: Option<u64>,
    /// The states, by window end.
    windows: Buckets<K, Slot<Acc, M>>,
    /// The slide-long interval of the previous record: the next record
    /// nearly always has the same, and checking that is cheaper than the
    /// division that finds it. Its start is the latest start of the
    /// record's windows.
    recent: RecentSpan,
}

impl<K: Hash + Eq + Clone, Acc, M: Marks> TimeWindows<K, Acc, M> {
    /// Windows of `size` every `slide` (`0 < slide <= size`).
    pub(super) fn new(size: i64, slide: i64, lateness: i64, early_every: Option<u64>) -> Self {
        debug_assert!(early_every.is_none() || M::TRACKED, "early firing by count needs marks that count");
        TimeWindows { size, slide, lateness, early_every, windows: Buckets::new(), recent: RecentSpan::new() }
    }

    /// Folds into `window` of `key`, which is still kept, with `fold` (a
    /// record added, or a partial merged; it returns how many records it
    /// adds to the early-firing count): fires the window at once if it has
    /// fired on time already (a late update), or early when it reached the
    /// count of an early firing.
    #[inline(always)]
    fn update<T, A: Aggregate<T, Acc = Acc>>(
        &mut self,
        agg: &A,
        wm: Timestamp,
        key: &K,
        window: Window,
        fold: impl FnOnce(&mut Acc) -> u32,
        out: &mut Fired<K, A::Out>,
    ) {
        let early_every = self.early_every;
        let fired_on_time = window.end <= wm;
        self.windows.update(
            window.end,
            key,
            || Slot::new(agg.create()),
            |slot| {
                let records = fold(&mut slot.acc);
                if fired_on_time {
                    // Behind the watermark but within the lateness: the
                    // result is updated now, no watermark will come for it.
                    slot.fire(agg, key, window, Timing::Late, out);
                } else {
                    slot.marks.touch(records);
                    if early_every.is_some_and(|n| u64::from(slot.marks.since_fire()) >= n) {
                        slot.fire(agg, key, window, Timing::Early, out);
                    }
                }
            },
        );
    }
}

impl<K, T, A, M> WindowKind<K, T, A> for TimeWindows<K, A::Acc, M>
where
    K: Hash + Eq + Clone + Send + Serialize + DeserializeOwned + 'static,
    A: Aggregate<T>,
    M: Marks + Send + 'static,
{
    const LAYOUT: Layout = if M::TRACKED { Layout::TimeEarly } else { Layout::Time };
    const MERGES: bool = true;
    type Snapshot = TimeSnapshot<K, A::Acc, M>;

    /// Adds a record to each of its windows that is still kept, in ascending
    /// window order; returns the key back if there is none (late record).
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
        let (size, slide, lateness) = (self.size, self.slide, self.lateness);
        let (last_start, slide_end) = self.recent.locate(ts, slide);
        if size == slide {
            // Tumbling: one window, the interval itself.
            if slide_end.saturating_add(lateness) <= wm {
                return Some(key); // dropped for good: late
            }
            self.update(
                agg,
                wm,
                &key,
                Window::new(last_start, slide_end),
                |acc| {
                    agg.add(acc, value);
                    1
                },
                out,
            );
            return None;
        }
        // Windows starting before `last_start` that still hold `ts`: their
        // start is above `ts - size`, and `size - 1 - offset >= size - slide
        // >= 0`.
        let offset = ts - last_start;
        let earlier = (size - 1 - offset) / slide;
        let mut kept = false;
        for j in (0..=earlier).rev() {
            let start = last_start.saturating_sub(j * slide);
            let window = Window::new(start, start.saturating_add(size));
            if window.end.saturating_add(lateness) <= wm {
                continue; // dropped for good
            }
            kept = true;
            self.update(
                agg,
                wm,
                &key,
                window,
                |acc| {
                    agg.add(acc, value);
                    1
                },
                out,
            );
        }
        if kept {
            None
        } else {
            Some(key)
        }
    }

    /// Tumbling windows without early firing take runs of records into
    /// windows after the watermark through [`Buckets::add_runs`]; every
    /// other record goes through `add`.
    fn add_records(
        &mut self,
        agg: &A,
        wm: Timestamp,
        mut records: impl Iterator<Item = Record<(K, T)>>,
        out: &mut Fired<K, A::Out>,
        late: &mut Vec<Record<(K, T)>>,
    ) {
        if self.size == self.slide && self.early_every.is_none() {
            // A window after the watermark only adds the record: no firing.
            while let Some(r) = self.windows.add_runs(
                &mut records,
                &mut self.recent,
                self.size,
                |_, end| (end > wm).then_some(end),
                || Slot::new(agg.create()),
                |slot, value| {
                    agg.add(&mut slot.acc, value);
                    slot.marks.touch(1);
                },
            ) {
                add_one(r, late, |key, ts, value| self.add(agg, wm, key, ts, value, out));
            }
        } else {
            for r in records {
                add_one(r, late, |key, ts, value| self.add(agg, wm, key, ts, value, out));
            }
        }
    }

    /// Folds `acc`, the aggregate of records of `key` in the tumbling
    /// window ending at `end`, into that window's state (see
    /// `window::partial`; never with early firing by count, so the
    /// per-window record counter is left alone). Behind the watermark but within the lateness (a
    /// broken edge invariant, never by construction) the window fires again
    /// as an update; `false` if the window is gone for good.
    fn merge(
        &mut self,
        agg: &A,
        wm: Timestamp,
        key: &K,
        end: Timestamp,
        acc: A::Acc,
        out: &mut Fired<K, A::Out>,
    ) -> bool {
        debug_assert_eq!(self.size, self.slide, "combined partials are built for tumbling windows only");
        if end.saturating_add(self.lateness) <= wm {
            return false;
        }
        let window = Window::new(end.saturating_sub(self.size), end);
        // Counted as no record: early firing by count is never combined.
        self.update(
            agg,
            wm,
            key,
            window,
            |slot_acc| {
                agg.merge(slot_acc, acc);
                0
            },
            out,
        );
        true
    }

    /// Fires the windows with end in `(previous, wm]` in ascending end and
    /// drops those whose lateness expired.
    fn on_watermark(&mut self, agg: &A, previous: Timestamp, wm: Timestamp, out: &mut Fired<K, A::Out>) {
        let (size, lateness) = (self.size, self.lateness);
        // The earliest windows may expire in this very step: they fire (if
        // not fired yet) as they go, and their keys move into the results.
        while self.windows.pop_first_if(
            |end| end.saturating_add(lateness) <= wm,
            |end, key, slot| {
                if end > previous {
                    let window = Window::new(end.saturating_sub(size), end);
                    emit(out, last_instant(window), key, window, agg.result(&slot.acc), Timing::OnTime);
                }
            },
        ) {}
        // The rest of the due windows stay for late records.
        let mut after = previous;
        while let Some((end, i)) = self.windows.next_after(after, wm) {
            after = end;
            let window = Window::new(end.saturating_sub(size), end);
            for (key, slot) in self.windows.bucket_mut(i) {
                slot.fire(agg, key, window, Timing::OnTime, out);
            }
        }
    }

    /// The first window end in `(previous, wm)`, if any.
    fn next_end(&self, previous: Timestamp, wm: Timestamp) -> Option<Timestamp> {
        let (end, _) = self.windows.next_after(previous, wm)?;
        (end < wm).then_some(end)
    }

    /// Fires early every window after the watermark that changed since it
    /// last fired.
    fn fire_early(&mut self, agg: &A, wm: Timestamp, out: &mut Fired<K, A::Out>) {
        debug_assert!(M::TRACKED, "early firing by processing time needs dirty flags");
        let size = self.size;
        let mut after = wm;
        while let Some((end, i)) = self.windows.next_after(after, Timestamp::MAX) {
            after = end;
            let window = Window::new(end.saturating_sub(size), end);
            for (key, slot) in self.windows.bucket_mut(i) {
                if slot.marks.dirty() {
                    slot.fire(agg, key, window, Timing::Early, out);
                }
            }
        }
    }

    /// Number of (key, window) states held.
    fn open_windows(&self) -> usize {
        self.windows.len()
    }

    /// The states for a checkpoint (serializes as a [`TimeSnapshot`]).
    fn snapshot(&self) -> impl Serialize + '_ {
        self.windows.snapshot()
    }

    /// Windows configured like these, holding the states of a snapshot.
    fn restored(&self, state: Self::Snapshot) -> Result<Self, String> {
        Ok(TimeWindows { windows: Buckets::from_snapshot(state)?, ..*self })
    }
}
