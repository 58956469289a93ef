//! The baseline's state for WL2: sliding windows computed from panes, one
//! map from key to `(count, sum)` per pane, panes in ascending start.
//!
//! Event time splits into panes `[p, p + slide)`; a window of `size` is
//! `size / slide` consecutive panes. An event updates one accumulator, in
//! its pane's map (nearly always the last pane or the one before it: the
//! disorder is about one pane long), with one hash lookup. A window fires
//! by merging its panes' maps per key into a scratch map and draining that
//! into the checksum; a pane no later window needs is then cleared and its
//! map, capacity kept, serves a future pane. Small per-pane maps keep the
//! map that takes the events compact enough for the caches. Nothing is
//! allocated per event in steady state.

use std::collections::VecDeque;

use crate::workload::Checksum;

use super::hash::{fast_map, FastMap};

/// Count and sum of a pane or window of one key.
#[derive(Debug, Clone, Copy, Default)]
struct Acc {
    count: u64,
    sum: i64,
}

/// The states of one pane.
#[derive(Debug)]
struct Pane {
    start: i64,
    keys: FastMap<u64, Acc>,
}

/// Pane-based sliding windows of every key.
#[derive(Debug)]
pub(crate) struct Sliding {
    /// Pane length = slide, ms.
    slide: i64,
    /// Window length, a multiple of `slide`.
    size: i64,
    panes: VecDeque<Pane>,
    /// Emptied maps, kept with their capacity.
    spare: Vec<FastMap<u64, Acc>>,
    /// The end of the next window to fire (a lower bound: windows that
    /// hold no pane are skipped).
    next_end: i64,
    /// A window being fired, merged per key (reused).
    merged: FastMap<u64, Acc>,
    /// Events that arrived after all their windows had fired.
    pub(crate) late: u64,
}

impl Sliding {
    /// Windows of `size` every `slide` ms.
    pub(crate) fn new(size: i64, slide: i64) -> Self {
        assert!(slide > 0 && size % slide == 0, "the window size is a multiple of the slide");
        Sliding {
            slide,
            size,
            panes: VecDeque::new(),
            spare: Vec::new(),
            next_end: i64::MIN,
            merged: fast_map(),
            late: 0,
        }
    }

    /// Adds one event, unless all its windows have fired already (`wm` is
    /// the current watermark): then it is counted as late.
    #[inline(always)]
    pub(crate) fn add(&mut self, wm: i64, ts: i64, key: u64, value: i64) {
        let start = ts - ts.rem_euclid(self.slide);
        if start.saturating_add(self.size) <= wm {
            self.late += 1;
            return;
        }
        let acc = self.pane(start).entry(key).or_default();
        acc.count += 1;
        acc.sum += value;
    }

    /// The map of the pane starting at `start`, created if missing.
    #[inline(always)]
    fn pane(&mut self, start: i64) -> &mut FastMap<u64, Acc> {
        let mut at = self.panes.len();
        while at > 0 {
            let s = self.panes[at - 1].start;
            if s == start {
                return &mut self.panes[at - 1].keys;
            }
            if s < start {
                break;
            }
            at -= 1;
        }
        let keys = self.spare.pop().unwrap_or_else(fast_map);
        self.panes.insert(at, Pane { start, keys });
        &mut self.panes[at].keys
    }

    /// Fires every window whose end is at or behind `wm` into `sum`.
    pub(crate) fn on_watermark(&mut self, wm: i64, sum: &mut Checksum) {
        loop {
            let Some(front) = self.panes.front() else { return };
            // The first window that can hold anything ends with the front
            // pane; earlier ends are empty windows.
            let end = self.next_end.max(front.start + self.slide);
            if end > wm {
                return;
            }
            let start = end - self.size;
            for pane in self.panes.iter().take_while(|p| p.start < end).filter(|p| p.start >= start) {
                for (&key, acc) in &pane.keys {
                    let m = self.merged.entry(key).or_default();
                    m.count += acc.count;
                    m.sum += acc.sum;
                }
            }
            for (key, acc) in self.merged.drain() {
                sum.add(start, key, acc.count, acc.sum, None);
            }
            self.next_end = end + self.slide;
            // A pane serves the windows ending up to `its start + size`.
            while self.panes.front().is_some_and(|p| p.start + self.size <= end) {
                let mut pane = self.panes.pop_front().expect("checked above");
                pane.keys.clear();
                self.spare.push(pane.keys);
            }
        }
    }
}
