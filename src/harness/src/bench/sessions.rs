//! The baseline's state for WL3: session windows per key, merging.
//!
//! An event at `t` opens `[t, t + gap)`; sessions of one key that overlap
//! or touch merge (an event at exactly a session's end joins it). A
//! session fires once the watermark has passed its end (`wm > end`): an
//! event at `end` itself may still come and join it.
//!
//! A key's open sessions (about three with the default stream) sit inline
//! in its map slot, up to [`INLINE`]; beyond that they move to a `Vec`
//! that keeps its capacity when they fit inline again. Firing uses a
//! timing wheel: slot `end & mask` lists the keys that had a session end
//! set to `end`. Every session end lies within `bound + gap` of the
//! watermark, so a wheel longer than that sees each end in one turn; a
//! stale entry (the session grew since) finds nothing due. Keys stay in the
//! map and the wheel's lists keep their capacity: nothing is allocated per
//! event in steady state.

use crate::workload::Checksum;

use super::hash::{fast_map, FastMap};

/// One open session, in 24 bytes (two fit in a key's map slot beside the
/// key: the state of 100,000 keys stays small enough for the caches).
#[derive(Debug, Clone, Copy, Default)]
struct Session {
    start: i64,
    sum: i64,
    /// `end - start`, where `end = last_ts + gap`.
    len: u32,
    count: u32,
}

impl Session {
    #[inline(always)]
    fn end(&self) -> i64 {
        self.start + i64::from(self.len)
    }

    /// Whether `self` and `o` overlap or touch.
    #[inline(always)]
    fn touches(&self, o: &Session) -> bool {
        self.start <= o.end() && o.start <= self.end()
    }

    #[inline(always)]
    fn absorb(&mut self, o: &Session) {
        let end = self.end().max(o.end());
        self.start = self.start.min(o.start);
        self.len = u32::try_from(end - self.start).expect("a session spans less than 2^32 ms");
        self.count += o.count;
        self.sum += o.sum;
    }
}

/// Sessions kept inline per key. With the default stream at K = 100,000 a
/// key has about three sessions open (it recurs every ~1 s of event time,
/// a session breaks after 500 ms without it, and stays open ~2.5 s).
const INLINE: usize = 4;

/// The open sessions of one key, in no particular order: inline, or in
/// `spill` while there are more than fit (the `Vec` keeps its capacity
/// when they fit again, so a key that spills often allocates once).
#[derive(Debug, Default)]
struct KeySessions {
    inline: [Session; INLINE],
    len: u8,
    spilled: bool,
    spill: Vec<Session>,
}

impl KeySessions {
    #[inline(always)]
    fn as_mut_slice(&mut self) -> &mut [Session] {
        if self.spilled {
            &mut self.spill
        } else {
            &mut self.inline[..self.len as usize]
        }
    }

    #[inline(always)]
    fn push(&mut self, s: Session) {
        if self.spilled {
            self.spill.push(s);
        } else if (self.len as usize) < INLINE {
            self.inline[self.len as usize] = s;
            self.len += 1;
        } else {
            self.spill.clear();
            self.spill.extend_from_slice(&self.inline);
            self.spill.push(s);
            self.spilled = true;
        }
    }

    #[inline(always)]
    fn swap_remove(&mut self, i: usize) {
        if self.spilled {
            self.spill.swap_remove(i);
            if self.spill.len() <= INLINE {
                self.len = self.spill.len() as u8;
                self.inline[..self.spill.len()].copy_from_slice(&self.spill);
                self.spill.clear();
                self.spilled = false;
            }
        } else {
            self.len -= 1;
            self.inline[i] = self.inline[self.len as usize];
        }
    }
}

/// Session windows of every key.
#[derive(Debug)]
pub(crate) struct Sessions {
    gap: i64,
    keys: FastMap<u64, KeySessions>,
    /// Keys by session end, `end & mask`.
    wheel: Vec<Vec<u64>>,
    mask: i64,
    /// Every end below this has been fired (`None` before the first
    /// watermark).
    cursor: Option<i64>,
    /// A wheel slot being processed (reused).
    scratch: Vec<u64>,
    /// Events whose session had already fired.
    pub(crate) late: u64,
}

impl Sessions {
    /// Sessions with `gap`, for watermarks `bound` behind the newest event.
    pub(crate) fn new(gap: i64, bound: i64) -> Self {
        assert!((1..=i64::from(u32::MAX / 2)).contains(&gap), "a session gap fits in 31 bits");
        let span = (gap + bound.max(0) + 2) as usize;
        let slots = span.next_power_of_two();
        Sessions {
            gap,
            keys: fast_map(),
            wheel: (0..slots).map(|_| Vec::new()).collect(),
            mask: slots as i64 - 1,
            cursor: None,
            scratch: Vec::new(),
            late: 0,
        }
    }

    /// Adds one event; `wm` is the current watermark. An event behind it
    /// that joins no open session is late (its own session would be due
    /// already).
    #[inline(always)]
    pub(crate) fn add(&mut self, wm: i64, ts: i64, key: u64, value: i64) {
        let new = Session { start: ts, sum: value, len: self.gap as u32, count: 1 };
        let list = self.keys.entry(key).or_default();
        let mut merged = new;
        let mut target = None;
        let mut i = 0;
        while i < list.as_mut_slice().len() {
            let s = list.as_mut_slice()[i];
            if s.touches(&merged) {
                merged.absorb(&s);
                if target.is_none() {
                    target = Some(i);
                    i += 1;
                } else {
                    // Merged into the target: the union of touching
                    // sessions is one interval, so one pass finds them all.
                    list.swap_remove(i);
                }
            } else {
                i += 1;
            }
        }
        let old_end = match target {
            Some(t) => {
                let slot = &mut list.as_mut_slice()[t];
                let old = slot.end();
                *slot = merged;
                old
            }
            None if new.end() < wm => {
                self.late += 1;
                return;
            }
            None => {
                list.push(merged);
                i64::MIN
            }
        };
        if merged.end() != old_end {
            self.wheel[(merged.end() & self.mask) as usize].push(key);
        }
    }

    /// Fires every session whose end the watermark `wm` has passed.
    #[inline]
    pub(crate) fn on_watermark(&mut self, wm: i64, sum: &mut Checksum) {
        let Some(cursor) = self.cursor else {
            // No session can end before the first watermark: each ends
            // `gap` after an event at or after it.
            self.cursor = Some(wm);
            return;
        };
        if wm <= cursor {
            return;
        }
        let steps = wm.saturating_sub(cursor).min(self.mask + 1);
        for t in cursor..cursor + steps {
            let slot = (t & self.mask) as usize;
            if self.wheel[slot].is_empty() {
                continue;
            }
            // Take the slot's keys; the slot gets the empty scratch list.
            std::mem::swap(&mut self.scratch, &mut self.wheel[slot]);
            for k in 0..self.scratch.len() {
                let key = self.scratch[k];
                let Some(list) = self.keys.get_mut(&key) else { continue };
                let mut still_here = false;
                let mut i = 0;
                while i < list.as_mut_slice().len() {
                    let s = list.as_mut_slice()[i];
                    if s.end() < wm {
                        sum.add(s.start, key, u64::from(s.count), s.sum, Some(s.end()));
                        list.swap_remove(i);
                    } else {
                        // Not due: a later turn of the wheel (only after a
                        // watermark jump longer than the wheel).
                        still_here |= (s.end() & self.mask) as usize == slot;
                        i += 1;
                    }
                }
                if still_here {
                    self.wheel[slot].push(key);
                }
            }
            // The slot now holds only the re-pushed keys; `scratch` keeps
            // its capacity for the next slot.
            self.scratch.clear();
        }
        self.cursor = Some(wm);
    }
}
