//! The baseline's state for WL1: tumbling windows, one map from key to
//! `(count, sum)` per open window, windows in ascending start.
//!
//! An event finds its window among the last few (nearly always the last or
//! the one before it: the disorder is shorter than a window) and updates
//! its key's accumulator with one hash lookup. A window fires by draining
//! its map into the checksum; the emptied map keeps its capacity and serves
//! the next window, so nothing is allocated in steady state.

use std::collections::VecDeque;

use crate::workload::Checksum;

use super::hash::{fast_map, FastMap};

/// Count and sum of one window of one key.
#[derive(Debug, Clone, Copy, Default)]
struct Acc {
    count: u64,
    sum: i64,
}

/// The states of one window.
#[derive(Debug)]
struct Window {
    start: i64,
    keys: FastMap<u64, Acc>,
}

/// Tumbling windows of every key.
#[derive(Debug)]
pub(crate) struct Tumbling {
    /// Window length, ms.
    size: i64,
    /// Open windows, ascending by start.
    windows: VecDeque<Window>,
    /// Emptied maps, kept with their capacity.
    spare: Vec<FastMap<u64, Acc>>,
    /// Events that arrived after their window had fired.
    pub(crate) late: u64,
}

impl Tumbling {
    /// Tumbling windows of `size` ms.
    pub(crate) fn new(size: i64) -> Self {
        Tumbling { size, windows: VecDeque::new(), spare: Vec::new(), late: 0 }
    }

    /// Adds one event, unless its window has fired already (`wm` is the
    /// current watermark): then it is counted as late.
    #[inline(always)]
    pub(crate) fn add(&mut self, wm: i64, ts: i64, key: u64, value: i64) {
        let start = ts - ts.rem_euclid(self.size);
        if start.saturating_add(self.size) <= wm {
            self.late += 1;
            return;
        }
        let acc = self.window(start).entry(key).or_default();
        acc.count += 1;
        acc.sum += value;
    }

    /// The map of the window starting at `start`, created if missing.
    #[inline(always)]
    fn window(&mut self, start: i64) -> &mut FastMap<u64, Acc> {
        let mut at = self.windows.len();
        while at > 0 {
            let s = self.windows[at - 1].start;
            if s == start {
                return &mut self.windows[at - 1].keys;
            }
            if s < start {
                break;
            }
            at -= 1;
        }
        let keys = self.spare.pop().unwrap_or_else(fast_map);
        self.windows.insert(at, Window { start, keys });
        &mut self.windows[at].keys
    }

    /// Fires every window whose end is at or behind `wm` into `sum`.
    pub(crate) fn on_watermark(&mut self, wm: i64, sum: &mut Checksum) {
        while self.windows.front().is_some_and(|w| w.start + self.size <= wm) {
            let mut w = self.windows.pop_front().expect("checked above");
            for (key, acc) in w.keys.drain() {
                sum.add(w.start, key, acc.count, acc.sum, None);
            }
            self.spare.push(w.keys);
        }
    }
}
