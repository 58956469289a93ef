//! Wake-up times of session keys: a timing wheel with an overflow map.
//!
//! Session windows schedule each key to be looked at once the watermark
//! passes a time ([`Wakeups::push`]) and take the due keys in time order,
//! for one time in the order they were scheduled ([`Wakeups::pop_due`]).
//! Almost every time scheduled lies a little ahead of the watermark (a
//! session's end is at most the sources' out-of-orderness plus the gap
//! ahead of it), so a wheel of [`SLOTS`] one-millisecond slots holds them:
//! a push is an append to the slot `time % SLOTS`, a pop looks at the slot
//! under the cursor. A time further ahead than the wheel reaches goes to an
//! ordered overflow map and moves into the wheel as the cursor comes within
//! reach of it — before any push can put that time into the wheel, so the
//! order within a time is kept.
//!
//! Invariants: every pending time is `>= base` (the cursor); the wheel holds
//! exactly the pending times in `[base, base + SLOTS)`, one per slot, and the
//! overflow map the later ones. A push must not be earlier than the last
//! time popped (session windows only schedule at or after the watermark, or
//! after the time being processed).
//!
//! A push and a pop cost a slot index, not a search of an ordered map of
//! every pending time.

use std::collections::BTreeMap;

use crate::message::{Timestamp, END_OF_TIME};

/// One-millisecond slots of the wheel: about 4 s of event time ahead of the
/// watermark, more than a session end is ahead of it with the default
/// out-of-orderness and gaps of seconds; later times wait in the overflow.
const SLOTS: usize = 4096;

/// Wake-up times and the keys to look at once the watermark passes each.
#[derive(Debug)]
pub(super) struct Wakeups<K> {
    /// Slot `t % SLOTS` holds the keys scheduled at `t`, for the pending
    /// times `t` in `[base, base + SLOTS)`.
    wheel: Vec<Vec<K>>,
    /// The cursor: no pending time is earlier.
    base: Timestamp,
    /// Keys in the wheel.
    in_wheel: usize,
    /// Pending times at or after `base + SLOTS`, with their keys.
    overflow: BTreeMap<Timestamp, Vec<K>>,
    /// Emptied buffers, kept for reuse.
    spare: Vec<Vec<K>>,
}

impl<K> Default for Wakeups<K> {
    fn default() -> Self {
        Wakeups {
            wheel: (0..SLOTS).map(|_| Vec::new()).collect(),
            base: Timestamp::MIN,
            in_wheel: 0,
            overflow: BTreeMap::new(),
            spare: Vec::new(),
        }
    }
}

impl<K> Wakeups<K> {
    /// Whether `at` (`>= base`) is within the wheel's reach.
    #[inline(always)]
    fn in_reach(&self, at: Timestamp) -> bool {
        // `at >= base`, so the true difference fits in a u64.
        (at.wrapping_sub(self.base) as u64) < SLOTS as u64
    }

    #[inline(always)]
    fn slot(at: Timestamp) -> usize {
        (at as u64 % SLOTS as u64) as usize
    }

    /// Wakes `key` once the watermark passes `at`.
    #[inline]
    pub(super) fn push(&mut self, at: Timestamp, key: K) {
        debug_assert!(at >= self.base, "wake-up at {at} scheduled behind the cursor {}", self.base);
        if self.in_reach(at) {
            self.wheel[Self::slot(at)].push(key);
            self.in_wheel += 1;
        } else {
            let spare = &mut self.spare;
            self.overflow.entry(at).or_insert_with(|| spare.pop().unwrap_or_default()).push(key);
        }
    }

    /// Moves the cursor to `base` (not earlier than it was), taking the
    /// overflow's times that came within reach into the wheel.
    fn advance(&mut self, base: Timestamp) {
        debug_assert!(base >= self.base);
        self.base = base;
        while let Some(entry) = self.overflow.first_entry() {
            let at = *entry.key();
            // `at >= base`: the true difference fits in a u64.
            if at.wrapping_sub(base) as u64 >= SLOTS as u64 {
                break;
            }
            let keys = entry.remove();
            let slot = &mut self.wheel[Self::slot(at)];
            // Nothing could push `at` into the wheel before it was in reach.
            debug_assert!(slot.is_empty());
            self.in_wheel += keys.len();
            let old = std::mem::replace(slot, keys);
            self.spare.push(old);
        }
    }

    /// The earliest group of wake-ups, if the watermark `wm` passed it (end
    /// of input passes everything). The caller hands the drained group back
    /// ([`Wakeups::recycle`]).
    pub(super) fn pop_due(&mut self, wm: Timestamp) -> Option<(Timestamp, Vec<K>)> {
        let passed = |at: Timestamp| at < wm || wm == END_OF_TIME;
        loop {
            if self.in_wheel == 0 {
                // Jump over the empty wheel to the overflow's first time.
                let (&at, _) = self.overflow.first_key_value()?;
                if !passed(at) {
                    return None;
                }
                self.advance(at);
                continue;
            }
            let at = self.base;
            if !passed(at) {
                return None;
            }
            let slot = Self::slot(at);
            // The cursor moves past `at` either way; a time pushed while the
            // group is handled is later than `at` (module invariant).
            let keys = if self.wheel[slot].is_empty() {
                None
            } else {
                let fresh = self.spare.pop().unwrap_or_default();
                Some(std::mem::replace(&mut self.wheel[slot], fresh))
            };
            if at == Timestamp::MAX {
                // Nothing is later; the cursor stays.
                self.in_wheel -= keys.as_ref().map_or(0, Vec::len);
                return keys.map(|k| (at, k));
            }
            self.advance(at + 1);
            if let Some(keys) = keys {
                self.in_wheel -= keys.len();
                return Some((at, keys));
            }
        }
    }

    /// Keeps a drained group's buffer for reuse.
    pub(super) fn recycle(&mut self, keys: Vec<K>) {
        debug_assert!(keys.is_empty());
        self.spare.push(keys);
    }

    /// Every pending group, by time.
    pub(super) fn groups(&self) -> impl Iterator<Item = (Timestamp, &[K])> + '_ {
        let reach = if self.in_wheel > 0 { SLOTS as i64 } else { 0 };
        let wheel = (0..reach).map_while(move |i| self.base.checked_add(i)).filter_map(move |at| {
            let keys = &self.wheel[Self::slot(at)];
            (!keys.is_empty()).then_some((at, keys.as_slice()))
        });
        wheel.chain(self.overflow.iter().map(|(&at, keys)| (at, keys.as_slice())))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    /// Pops everything the watermark `wm` passed, as (time, key) pairs.
    fn drain(w: &mut Wakeups<u32>, wm: Timestamp) -> Vec<(Timestamp, u32)> {
        let mut out = Vec::new();
        while let Some((at, mut keys)) = w.pop_due(wm) {
            out.extend(keys.drain(..).map(|k| (at, k)));
            w.recycle(keys);
        }
        out
    }

    #[test]
    fn keys_come_by_time_then_in_scheduling_order() {
        let mut w = Wakeups::default();
        w.push(10, 1);
        w.push(5, 2);
        w.push(10, 3);
        w.push(7, 4);
        assert_eq!(drain(&mut w, 10), vec![(5, 2), (7, 4)], "a wake-up at 10 waits for a watermark past 10");
        assert_eq!(drain(&mut w, 11), vec![(10, 1), (10, 3)]);
        assert_eq!(drain(&mut w, END_OF_TIME), vec![]);
    }

    #[test]
    fn times_beyond_the_wheel_wait_in_the_overflow_and_keep_their_order() {
        let mut w = Wakeups::default();
        let far = SLOTS as i64 * 3;
        w.push(0, 1);
        w.push(far, 2);
        w.push(far + 1, 3);
        assert_eq!(drain(&mut w, 1), vec![(0, 1)]);
        // `far` is still beyond reach of the cursor at 1; pushing it again
        // must land behind key 2.
        w.push(far, 4);
        assert_eq!(drain(&mut w, far - 1), vec![]);
        w.push(far, 5); // now within reach: straight into the wheel
        assert_eq!(drain(&mut w, far + 1), vec![(far, 2), (far, 4), (far, 5)]);
        assert_eq!(drain(&mut w, END_OF_TIME), vec![(far + 1, 3)]);
    }

    #[test]
    fn end_of_input_passes_everything_including_the_last_instant() {
        let mut w = Wakeups::default();
        w.push(Timestamp::MAX, 1);
        w.push(-5, 2);
        w.push(Timestamp::MAX - 1, 3);
        assert_eq!(drain(&mut w, END_OF_TIME), vec![(-5, 2), (Timestamp::MAX - 1, 3), (Timestamp::MAX, 1)]);
        assert_eq!(drain(&mut w, END_OF_TIME), vec![]);
    }

    #[test]
    fn groups_lists_the_pending_times_in_order() {
        let mut w = Wakeups::default();
        let far = SLOTS as i64 * 2;
        w.push(far, 1);
        w.push(3, 2);
        assert_eq!(drain(&mut w, 3), vec![]);
        w.push(4, 3);
        w.push(3, 4);
        let groups: Vec<_> = w.groups().map(|(at, keys)| (at, keys.to_vec())).collect();
        assert_eq!(groups, vec![(3, vec![2, 4]), (4, vec![3]), (far, vec![1])]);
    }

    /// A step of the model test: schedule at `wm + ahead`, or advance the
    /// watermark by `step`, taking what is due.
    #[derive(Debug, Clone)]
    enum Op {
        Push { ahead: i64, key: u32 },
        Advance { step: i64 },
    }

    fn op() -> impl Strategy<Value = Op> {
        prop_oneof![
            3 => (0i64..3 * SLOTS as i64, any::<u32>()).prop_map(|(ahead, key)| Op::Push { ahead, key }),
            1 => (0i64..2 * SLOTS as i64).prop_map(|step| Op::Advance { step }),
        ]
    }

    proptest! {
        /// Against a `BTreeMap` of time → keys in scheduling order: the same
        /// keys, at the same times, in the same order, and the same pending
        /// groups at every step.
        #[test]
        fn behaves_as_an_ordered_map_of_times(start in -10_000i64..10_000, ops in prop::collection::vec(op(), 1..200)) {
            let mut w = Wakeups::default();
            let mut model: BTreeMap<Timestamp, Vec<u32>> = BTreeMap::new();
            let mut wm = start;
            for op in ops {
                match op {
                    Op::Push { ahead, key } => {
                        w.push(wm + ahead, key);
                        model.entry(wm + ahead).or_default().push(key);
                    }
                    Op::Advance { step } => {
                        wm += step;
                        let mut expected = Vec::new();
                        while let Some(entry) = model.first_entry() {
                            if *entry.key() >= wm {
                                break;
                            }
                            let at = *entry.key();
                            expected.extend(entry.remove().into_iter().map(|k| (at, k)));
                        }
                        prop_assert_eq!(drain(&mut w, wm), expected);
                    }
                }
                let groups: Vec<_> = w.groups().map(|(at, keys)| (at, keys.to_vec())).collect();
                let pending: Vec<_> = model.iter().map(|(&at, keys)| (at, keys.clone())).collect();
                prop_assert_eq!(groups, pending);
            }
            let rest: Vec<_> = model.into_iter().flat_map(|(at, keys)| keys.into_iter().map(move |k| (at, k))).collect();
            prop_assert_eq!(drain(&mut w, END_OF_TIME), rest);
        }
    }
}
