//! Session merging for one key.
//!
//! A record at `t` opens the session window `[t, t + gap)`; windows that
//! overlap or touch (`a.end == b.start`) are one session, whose start is its
//! earliest record and whose end is its latest record plus the gap. A
//! [`SessionSet`] holds one key's sessions and merges them as records
//! arrive, in any order: a record between two sessions can bridge them, and
//! their accumulators merge ([`Aggregate::merge`]).
//!
//! Invariant: sessions are sorted by start and separated by a real gap
//! (`s[i].end < s[i + 1].start`; touching ones would have merged). So their
//! ends are sorted too, and at most one session ends at any instant.

use std::ops::Range;

use smallvec::SmallVec;

use serde::{Deserialize, Serialize};

use crate::message::Timestamp;
use crate::window::{Aggregate, Window};

/// One session window of one key and its firing state.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub(crate) struct Session<Acc> {
    /// `[earliest record, latest record + gap)`.
    pub(crate) window: Window,
    /// The aggregate of the session's records.
    pub(crate) acc: Acc,
    /// Records added since the session last fired (early firing by count;
    /// 32 bits, saturating, as the builder bounds the count: a session is
    /// 40 bytes with a `(u64, i64)` accumulator, and three of them fit a
    /// key's map slot).
    pub(crate) since_fire: u32,
    /// Changed since the session last fired (early firing by time).
    pub(crate) dirty: bool,
    /// Fired on time (or as a late update) in its current extent.
    pub(crate) fired: bool,
}

impl<Acc> Session<Acc> {
    /// When the session next needs attention: its end if it has not fired
    /// (it fires once the watermark passes it), else its end plus the
    /// allowed lateness (it is discarded once the watermark passes that).
    pub(crate) fn next_event(&self, lateness: i64) -> Timestamp {
        if self.fired {
            self.window.end.saturating_add(lateness)
        } else {
            self.window.end
        }
    }
}

/// The sessions of one key, merged as records arrive.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct SessionSet<Acc> {
    /// Sorted by start, separated by gaps (see the module doc). A key
    /// rarely holds more than three sessions at once (the ones the
    /// watermark has not passed yet), so up to three are stored inline: the
    /// key's map slot holds them, and a record costs one cache miss instead
    /// of two (slot, then a separate allocation).
    sessions: SmallVec<[Session<Acc>; 3]>,
}

impl<Acc> SessionSet<Acc> {
    /// No session.
    pub(crate) fn new() -> Self {
        SessionSet { sessions: SmallVec::new() }
    }

    /// The sessions of a checkpoint, checked against the module invariant
    /// (sorted by start, separated by gaps); the error says which is broken.
    pub(crate) fn from_sessions(sessions: Vec<Session<Acc>>) -> Result<Self, String> {
        if let Some(s) = sessions.iter().find(|s| s.window.start > s.window.end) {
            return Err(format!("session {:?} ends before it starts", s.window));
        }
        if let Some(pair) = sessions.windows(2).find(|p| p[0].window.end >= p[1].window.start) {
            return Err(format!("sessions {:?} and {:?} are not separated by a gap", pair[0].window, pair[1].window));
        }
        Ok(SessionSet { sessions: SmallVec::from_vec(sessions) })
    }

    /// The sessions, by start.
    pub(crate) fn as_slice(&self) -> &[Session<Acc>] {
        &self.sessions
    }

    /// Number of sessions.
    pub(crate) fn len(&self) -> usize {
        self.sessions.len()
    }

    /// Whether the key holds no session.
    pub(crate) fn is_empty(&self) -> bool {
        self.sessions.is_empty()
    }

    /// The sessions, by start.
    pub(crate) fn iter_mut(&mut self) -> impl Iterator<Item = &mut Session<Acc>> {
        self.sessions.iter_mut()
    }

    /// Indices of the sessions that overlap or touch `w`.
    fn touching(&self, w: Window) -> Range<usize> {
        // Ends and starts are both sorted (module invariant).
        let first = self.sessions.partition_point(|s| s.window.end < w.start);
        let last = self.sessions.partition_point(|s| s.window.start <= w.end);
        first..last.max(first)
    }

    /// `w` merged with the sessions `r` that touch it ([`Self::touching`]):
    /// sorted starts and ends, so the first and the last bound the extent.
    fn merged(&self, w: Window, r: &Range<usize>) -> Window {
        if r.is_empty() {
            return w;
        }
        Window::new(w.start.min(self.sessions[r.start].window.start), w.end.max(self.sessions[r.end - 1].window.end))
    }

    #[cfg(test)]
    /// The session a record at `ts` would belong to, were it added.
    pub(crate) fn merged_window(&self, ts: Timestamp, gap: i64) -> Window {
        let w = Window::new(ts, ts.saturating_add(gap));
        self.merged(w, &self.touching(w))
    }

    #[cfg(test)]
    /// Adds a record at `ts`: merges the sessions its window overlaps or
    /// touches into one (summing their counters), adds the value, and
    /// returns that session, dirty and not fired in its new extent.
    pub(crate) fn insert<T, A: Aggregate<T, Acc = Acc>>(
        &mut self,
        agg: &A,
        ts: Timestamp,
        gap: i64,
        value: &T,
    ) -> &mut Session<Acc> {
        self.insert_if(agg, ts, gap, value, |_| true).expect("accepted")
    }

    /// [`SessionSet::insert`], unless `accept` refuses the session the
    /// record would belong to ([`SessionSet::merged_window`]): then nothing
    /// changes and `None` is returned. One search of the sessions serves
    /// both.
    #[inline]
    pub(crate) fn insert_if<T, A: Aggregate<T, Acc = Acc>>(
        &mut self,
        agg: &A,
        ts: Timestamp,
        gap: i64,
        value: &T,
        accept: impl FnOnce(Window) -> bool,
    ) -> Option<&mut Session<Acc>> {
        let w = Window::new(ts, ts.saturating_add(gap));
        let r = self.touching(w);
        let merged = self.merged(w, &r);
        if !accept(merged) {
            return None;
        }
        if r.is_empty() {
            let mut acc = agg.create();
            agg.add(&mut acc, value);
            self.sessions.insert(r.start, Session { window: w, acc, since_fire: 1, dirty: true, fired: false });
            return Some(&mut self.sessions[r.start]);
        }
        let Window { start, end } = merged;
        if r.len() > 1 {
            // The record bridges sessions: the later ones fold into the first.
            let (head, tail) = self.sessions.split_at_mut(r.start + 1);
            let target = &mut head[r.start];
            for other in &mut tail[..r.end - r.start - 1] {
                let acc = std::mem::replace(&mut other.acc, agg.create());
                agg.merge(&mut target.acc, acc);
                target.since_fire = target.since_fire.saturating_add(other.since_fire);
            }
            self.sessions.drain(r.start + 1..r.end);
        }
        let target = &mut self.sessions[r.start];
        target.window = Window::new(start, end);
        agg.add(&mut target.acc, value);
        target.since_fire = target.since_fire.saturating_add(1);
        target.dirty = true;
        target.fired = false;
        Some(target)
    }

    /// What waking the key at `at` does to its sessions, in one pass: the
    /// unfired session that ends at `at`, if any, is handed to `fire` (which
    /// marks it fired); fired sessions whose end plus `lateness` is at or
    /// before `at` are discarded. `at` is at or before every session's next
    /// event ([`Session::next_event`]). Returns how many were discarded and
    /// the earliest next event of those left.
    #[inline]
    pub(crate) fn wake(
        &mut self,
        at: Timestamp,
        lateness: i64,
        mut fire: impl FnMut(&mut Session<Acc>),
    ) -> (usize, Option<Timestamp>) {
        let before = self.sessions.len();
        let mut next: Option<Timestamp> = None;
        self.sessions.retain(|s| {
            if s.window.end == at && !s.fired {
                fire(s);
            }
            if s.fired && s.window.end.saturating_add(lateness) <= at {
                return false;
            }
            let event = s.next_event(lateness);
            next = Some(next.map_or(event, |n| n.min(event)));
            true
        });
        if self.sessions.spilled() && self.sessions.len() <= self.sessions.inline_size() {
            // Back into the map slot: a spilled set would cost every later
            // record of the key a second cache miss.
            self.sessions.shrink_to_fit();
        }
        (before - self.sessions.len(), next)
    }

    /// The earliest [`Session::next_event`] of the set.
    pub(crate) fn next_event(&self, lateness: i64) -> Option<Timestamp> {
        self.sessions.iter().map(|s| s.next_event(lateness)).min()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::window::{Count, Sum};

    /// Adds `(ts, value)` records with gap 10, counting and summing.
    fn sessions(records: &[(i64, i64)]) -> SessionSet<(u64, i64)> {
        let agg = (Count, Sum::of(|v: &i64| *v));
        let mut set = SessionSet::new();
        for &(ts, v) in records {
            set.insert(&agg, ts, 10, &v);
        }
        set
    }

    /// (start, end, count, sum) of each session.
    fn shape(set: &SessionSet<(u64, i64)>) -> Vec<(i64, i64, u64, i64)> {
        set.sessions.iter().map(|s| (s.window.start, s.window.end, s.acc.0, s.acc.1)).collect()
    }

    #[test]
    fn records_within_the_gap_extend_one_session() {
        assert_eq!(shape(&sessions(&[(0, 1), (5, 2), (12, 4)])), vec![(0, 22, 3, 7)]);
    }

    #[test]
    fn record_at_exactly_the_end_joins_and_one_past_it_opens_a_new_session() {
        assert_eq!(shape(&sessions(&[(0, 1), (10, 2)])), vec![(0, 20, 2, 3)]);
        assert_eq!(shape(&sessions(&[(0, 1), (11, 2)])), vec![(0, 10, 1, 1), (11, 21, 1, 2)]);
    }

    #[test]
    fn record_whose_window_ends_at_a_sessions_start_joins_it() {
        assert_eq!(shape(&sessions(&[(20, 1), (10, 2)])), vec![(10, 30, 2, 3)]);
        assert_eq!(shape(&sessions(&[(20, 1), (9, 2)])), vec![(9, 19, 1, 2), (20, 30, 1, 1)]);
    }

    #[test]
    fn out_of_order_record_bridges_two_sessions_and_merges_their_accumulators() {
        let mut set = sessions(&[(0, 1), (30, 2), (60, 4)]);
        assert_eq!(set.len(), 3);
        set.sessions[1].fired = true;
        let merged = set.insert(&(Count, Sum::of(|v: &i64| *v)), 20, 10, &8);
        assert_eq!((merged.window, merged.acc, merged.since_fire), (Window::new(20, 40), (2, 10), 2));
        assert!(!merged.fired && merged.dirty);
        // [40, 50) touches [20, 40) at one end and [50, 60) at the other.
        let mut set = sessions(&[(0, 1), (30, 2), (20, 8), (50, 16)]);
        assert_eq!(shape(&set), vec![(0, 10, 1, 1), (20, 40, 2, 10), (50, 60, 1, 16)]);
        set.insert(&(Count, Sum::of(|v: &i64| *v)), 40, 10, &32);
        assert_eq!(shape(&set), vec![(0, 10, 1, 1), (20, 60, 4, 58)]);
    }

    #[test]
    fn one_record_can_merge_many_sessions() {
        let set = sessions(&[(0, 1), (20, 2), (40, 4), (10, 8), (30, 16)]);
        assert_eq!(shape(&set), vec![(0, 50, 5, 31)]);
        assert_eq!(set.sessions[0].since_fire, 5);
    }

    #[test]
    fn merged_window_predicts_insert_without_changing_anything() {
        let set = sessions(&[(0, 1), (30, 2)]);
        assert_eq!(set.merged_window(10, 20), Window::new(0, 40));
        assert_eq!(set.merged_window(20, 10), Window::new(20, 40));
        assert_eq!(set.merged_window(15, 5), Window::new(15, 20));
        assert_eq!(set.merged_window(100, 10), Window::new(100, 110));
        assert_eq!(set.len(), 2);
    }

    #[test]
    fn next_event_is_the_end_before_firing_and_end_plus_lateness_after() {
        let mut set = sessions(&[(0, 1), (30, 2)]);
        assert_eq!(set.next_event(5), Some(10));
        set.sessions[0].fired = true;
        assert_eq!(set.next_event(5), Some(15));
        assert_eq!(set.next_event(50), Some(40));
    }

    #[test]
    fn waking_at_a_sessions_end_fires_it_and_discards_it_once_its_lateness_ran_out() {
        let mut set = sessions(&[(0, 1), (30, 2)]);
        let mut fired = Vec::new();
        let mut fire = |s: &mut Session<(u64, i64)>| {
            s.fired = true;
            fired.push((s.window, s.acc));
        };
        assert_eq!(set.wake(10, 5, &mut fire), (0, Some(15)), "fired, kept for the lateness");
        assert_eq!(set.wake(12, 5, &mut fire), (0, Some(15)), "nothing ends at 12");
        assert_eq!(set.wake(15, 5, &mut fire), (1, Some(40)));
        assert_eq!(shape(&set), vec![(30, 40, 1, 2)]);
        assert_eq!(set.wake(40, 0, &mut fire), (1, None), "without lateness a session goes as it fires");
        assert_eq!(fired, vec![(Window::new(0, 10), (1, 1)), (Window::new(30, 40), (1, 2))]);
        assert!(set.is_empty());
    }
}
