//! What a window's (or pane's) state keeps beside its accumulator for early
//! firing, chosen once when the core is built.
//!
//! Early firing by count needs a record count per window since it last
//! fired, and early firing by processing time a dirty flag (changed since
//! it last fired). A core configured with neither keeps neither
//! ([`NoMarks`], zero bytes): a (key, (Count, Sum)) state is then 24 bytes
//! instead of 32, so a bucket is a quarter smaller and a firing, which
//! reads the whole bucket, reads a quarter less memory.
//!
//! Invariant: [`NoMarks`] is only used where neither early firing is
//! configured, so nothing ever asks it for a count or a dirty flag that it
//! did not keep ([`Marks::TRACKED`] lets callers assert that).

use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};

/// Early-firing bookkeeping of one (key, window) or (key, pane) state.
pub(super) trait Marks: Default + Clone + Serialize + DeserializeOwned {
    /// Whether these marks keep anything (false only for [`NoMarks`]).
    const TRACKED: bool;
    /// `records` records (or a partial of that many) were folded in.
    fn touch(&mut self, records: u32);
    /// Records folded in since the last [`Marks::reset`] (saturating; 0
    /// where not counted).
    fn since_fire(&self) -> u32;
    /// Whether anything was folded in since the last [`Marks::reset`].
    fn dirty(&self) -> bool;
    /// The window fired: start afresh.
    fn reset(&mut self);
    /// Folds in the marks of another state of the same window (the panes
    /// of a sliding window, merged when it fires).
    fn absorb(&mut self, other: &Self);
}

/// Nothing kept: no early firing is configured.
#[derive(Debug, Default, Clone, Copy, Serialize, Deserialize)]
pub(super) struct NoMarks;

impl Marks for NoMarks {
    const TRACKED: bool = false;
    #[inline(always)]
    fn touch(&mut self, _records: u32) {}
    fn since_fire(&self) -> u32 {
        0
    }
    fn dirty(&self) -> bool {
        false
    }
    #[inline(always)]
    fn reset(&mut self) {}
    #[inline(always)]
    fn absorb(&mut self, _other: &Self) {}
}

/// A dirty flag only: panes under early firing by processing time (panes
/// are never used with early firing by count, which is exact per window).
#[derive(Debug, Default, Clone, Copy, Serialize, Deserialize)]
pub(super) struct Dirty(bool);

impl Marks for Dirty {
    const TRACKED: bool = true;
    #[inline(always)]
    fn touch(&mut self, _records: u32) {
        self.0 = true;
    }
    fn since_fire(&self) -> u32 {
        0
    }
    fn dirty(&self) -> bool {
        self.0
    }
    #[inline(always)]
    fn reset(&mut self) {
        self.0 = false;
    }
    #[inline(always)]
    fn absorb(&mut self, other: &Self) {
        self.0 |= other.0;
    }
}

/// A record count and a dirty flag: one state per window under either
/// early firing. 32 bits of count keep a (key, (Count, Sum)) state in 32
/// bytes, half a cache line.
#[derive(Debug, Default, Clone, Copy, Serialize, Deserialize)]
pub(super) struct Early {
    /// Records folded in since the window last fired (saturates).
    since_fire: u32,
    /// Changed since the window last fired.
    dirty: bool,
}

impl Marks for Early {
    const TRACKED: bool = true;
    #[inline(always)]
    fn touch(&mut self, records: u32) {
        self.since_fire = self.since_fire.saturating_add(records);
        self.dirty = true;
    }
    fn since_fire(&self) -> u32 {
        self.since_fire
    }
    fn dirty(&self) -> bool {
        self.dirty
    }
    #[inline(always)]
    fn reset(&mut self) {
        *self = Early::default();
    }
    #[inline(always)]
    fn absorb(&mut self, other: &Self) {
        self.since_fire = self.since_fire.saturating_add(other.since_fire);
        self.dirty |= other.dirty;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn early_marks_count_saturate_and_reset() {
        let mut m = Early::default();
        assert!(!m.dirty());
        m.touch(3);
        m.touch(u32::MAX);
        assert_eq!(m.since_fire(), u32::MAX);
        assert!(m.dirty());
        m.reset();
        assert_eq!((m.since_fire(), m.dirty()), (0, false));
    }

    #[test]
    fn a_pane_is_dirty_when_any_merged_pane_is() {
        let (mut a, mut b) = (Dirty::default(), Dirty::default());
        b.touch(1);
        a.absorb(&b);
        assert!(a.dirty());
        a.reset();
        assert!(!a.dirty());
    }

    #[test]
    fn no_marks_take_no_space() {
        assert_eq!(std::mem::size_of::<NoMarks>(), 0);
        assert_eq!(std::mem::size_of::<(u64, (u64, i64), NoMarks)>(), 24);
    }
}
