//! Session windows of every key: per-key merging plus wake-up times.
//!
//! Each key's sessions live in a [`SessionSet`]. To fire sessions without
//! scanning every key on every watermark, each key has one wake-up time,
//! kept in a timing wheel of times ([`Wakeups`]): no later than its
//! sessions' earliest next event (an unfired session's end, or a fired
//! one's end plus the allowed lateness). A
//! watermark `wm` takes the wake-ups before it (a session fires once the
//! watermark *passes* its end) in time order; a key woken at `t` fires the
//! session ending at `t`, discards the fired sessions whose lateness ran out
//! by `t`, and sleeps until its next event — which may also be before `wm`,
//! so sessions of all keys fire in ascending end. A session that grows only
//! moves its end later, so the key's wake-up is left as is (it wakes early,
//! finds nothing due and sleeps again): the index is not touched per record.
//! A wake-up whose time is no longer its key's is stale and skipped (lazy
//! deletion).
//!
//! With many keys every record and every wake-up is a cache miss on its
//! key's map slot; a batch's keys (and a wake-up group's) are first looked
//! up in a bare loop whose misses overlap ([`SessionWindows::touch`]). A key
//! whose sessions are all gone stays in the map for a while
//! ([`SessionWindows::empty`]).
//!
//! A checkpoint stores each key with its wake-up time and sessions, in the
//! order the live wake-ups are due ([`SessionSnapshot`]); restoring
//! schedules the keys again in that order, so the wake-up index comes back
//! without its stale entries.

use std::hash::Hash;

use serde::de::DeserializeOwned;
use serde::Serialize;

use super::buckets::{key_map, KeyMap};
use super::core::Fired;
use super::kind::{emit, last_instant, WindowKind};
use super::layout::Layout;
use super::wakeups::Wakeups;
use crate::message::{Record, Timestamp, END_OF_TIME};
use crate::window::session::{Session, SessionSet};
use crate::window::{Aggregate, Timing, Window};

/// One key's sessions and the time of its live wake-up.
struct KeySessions<Acc> {
    /// The sessions (none: the key is kept for a while, see
    /// [`SessionWindows::empty`]).
    sessions: SessionSet<Acc>,
    /// The key's wake-up time: `<=` every session's next event
    /// ([`END_OF_TIME`] for a key without sessions).
    wake: Timestamp,
}

/// The decoded form of [`SessionWindows::snapshot`]: each key with its
/// wake-up time and its sessions (by start), by wake-up time.
pub(super) type SessionSnapshot<K, Acc> = Vec<(K, Timestamp, Vec<Session<Acc>>)>;

/// Session windows of every key.
pub(super) struct SessionWindows<K, Acc> {
    /// Inactivity gap.
    gap: i64,
    /// How long after its end a fired session is kept for late records.
    lateness: i64,
    /// Fire a session early every this many records.
    early_every: Option<u64>,
    /// Sessions by key (a key without sessions stays until a sweep).
    keys: KeyMap<K, KeySessions<Acc>>,
    /// When to look at which key.
    wakeups: Wakeups<K>,
    /// Number of sessions held.
    open: usize,
    /// Keys in `keys` without a session. A key whose last session is
    /// discarded stays in the map, because most keys come back soon:
    /// removing and re-inserting it would cost two more hash-map probes and
    /// leave tombstones that force rehashes. Once empty keys outnumber the others (and at least
    /// [`SWEEP_MIN`] of them), one pass drops them all: memory stays within
    /// about twice the keys that hold sessions, whatever the key space.
    empty: usize,
}

/// Keys beyond which [`SessionWindows::touch`] looks keys up ahead: below
/// it their slots stay in the processor's caches and the extra loop would
/// only cost time. (Time windows do not look ahead: their per-record work
/// is short enough for the processor to overlap the misses by itself.)
const TOUCH_ABOVE: usize = 16_384;

/// Empty keys kept before a sweep is considered (see
/// [`SessionWindows::empty`]).
const SWEEP_MIN: usize = 1024;

impl<K: Hash + Eq + Clone, Acc> SessionWindows<K, Acc> {
    /// Sessions with inactivity gap `gap`.
    pub(super) fn new(gap: i64, lateness: i64, early_every: Option<u64>) -> Self {
        SessionWindows { gap, lateness, early_every, keys: key_map(), wakeups: Wakeups::default(), open: 0, empty: 0 }
    }

    /// Brings the map slots of `keys` into the cache before they are used.
    ///
    /// With many keys each record's lookup is a cache miss, and the work
    /// between two lookups is long enough that the processor cannot start
    /// the next record's miss while it waits for this one. A loop of bare
    /// lookups can: its misses overlap, and the loop that does the work
    /// then finds every slot in the cache.
    #[inline]
    pub(super) fn touch<'k>(&self, keys: impl Iterator<Item = &'k K>)
    where
        K: 'k,
    {
        if self.keys.len() <= TOUCH_ABOVE {
            return; // few keys: their slots stay in the cache anyway
        }
        for key in keys {
            // Every line of the slot: the key, the wake-up, each session.
            let slot = self
                .keys
                .get(key)
                .map(|state| state.sessions.as_slice().iter().fold(state.wake, |t, s| t ^ s.window.end));
            std::hint::black_box(slot);
        }
    }

    /// Looks at `key`, woken at `at` (before the watermark): fires its
    /// session ending at `at`, discards its expired sessions and schedules
    /// its next wake-up — strictly after `at`, possibly still before the
    /// watermark, so that sessions of all keys fire in ascending end.
    fn wake<T, A: Aggregate<T, Acc = Acc>>(&mut self, agg: &A, at: Timestamp, key: K, out: &mut Fired<K, A::Out>) {
        let Some(state) = self.keys.get_mut(&key) else {
            return; // stale: the key's sessions were all gone and it was swept
        };
        if state.wake != at || state.sessions.is_empty() {
            return; // stale: the key was rescheduled earlier, or has no sessions
        }
        // `at <=` every next event: no unfired session ends before `at`.
        let mut fired = None;
        let (discarded, next) = state.sessions.wake(at, self.lateness, |s| {
            s.fired = true;
            s.since_fire = 0;
            s.dirty = false;
            fired = Some((s.window, agg.result(&s.acc)));
        });
        self.open -= discarded;
        match next {
            Some(next) => {
                state.wake = next;
                if let Some((window, value)) = fired {
                    emit(out, last_instant(window), key.clone(), window, value, Timing::OnTime);
                }
                self.wakeups.push(next, key);
            }
            None => {
                // Kept, without sessions, until a sweep (`empty`).
                state.wake = END_OF_TIME;
                self.empty += 1;
                if let Some((window, value)) = fired {
                    emit(out, last_instant(window), key, window, value, Timing::OnTime);
                }
            }
        }
    }
}

impl<K, T, A> WindowKind<K, T, A> for SessionWindows<K, A::Acc>
where
    K: Hash + Eq + Clone + Send + Serialize + DeserializeOwned + 'static,
    A: Aggregate<T>,
{
    const LAYOUT: Layout = Layout::Session;
    type Snapshot = SessionSnapshot<K, A::Acc>;

    /// Adds a record to its key's sessions, merging as needed, unless the
    /// session it would belong to is already discarded (then returns the key
    /// back: late).
    fn add(
        &mut self,
        agg: &A,
        wm: Timestamp,
        key: K,
        ts: Timestamp,
        value: &T,
        out: &mut Fired<K, A::Out>,
    ) -> Option<K> {
        let (gap, lateness, early_every) = (self.gap, self.lateness, self.early_every);
        // Every kept session has `end + lateness >= wm` (later ones are
        // discarded), so only a record that touches none can be late: when
        // the session it would open ends too early.
        let accept = |merged: Window| merged.end.saturating_add(lateness) >= wm;
        if let Some(state) = self.keys.get_mut(&key) {
            let before = state.sessions.len();
            let Some(session) = state.sessions.insert_if(agg, ts, gap, value, accept) else {
                return Some(key);
            };
            self.empty -= usize::from(before == 0);
            let next = settle(session, agg, &key, wm, lateness, early_every, out);
            self.open = self.open + state.sessions.len() - before;
            // A key that had no session has no live wake-up (its `wake` is
            // END_OF_TIME only as a marker): schedule it whatever `next` is.
            if before == 0 || next < state.wake {
                state.wake = next;
                self.wakeups.push(next, key);
            }
            return None;
        }
        let mut sessions = SessionSet::new();
        let Some(session) = sessions.insert_if(agg, ts, gap, value, accept) else {
            return Some(key);
        };
        let next = settle(session, agg, &key, wm, lateness, early_every, out);
        self.open += 1;
        self.wakeups.push(next, key.clone());
        self.keys.insert(key, KeySessions { sessions, wake: next });
        None
    }

    /// Looks the batch's keys up ahead ([`SessionWindows::touch`]), then
    /// adds its records one by one.
    #[inline]
    fn add_batch(
        &mut self,
        agg: &A,
        wm: Timestamp,
        batch: &mut Vec<Record<(K, T)>>,
        out: &mut Fired<K, A::Out>,
        late: &mut Vec<Record<(K, T)>>,
    ) {
        self.touch(batch.iter().map(|r| &r.value.0));
        self.add_records(agg, wm, batch.drain(..), out, late);
    }

    /// Fires the sessions the watermark passed, in ascending end, and
    /// discards those whose lateness expired.
    fn on_watermark(&mut self, agg: &A, _previous: Timestamp, wm: Timestamp, out: &mut Fired<K, A::Out>) {
        while let Some((at, mut keys)) = self.wakeups.pop_due(wm) {
            self.touch(keys.iter());
            for key in keys.drain(..) {
                self.wake(agg, at, key, out);
            }
            self.wakeups.recycle(keys);
        }
        if self.empty >= SWEEP_MIN && self.empty > self.keys.len() - self.empty {
            self.keys.retain(|_, state| !state.sessions.is_empty());
            self.empty = 0;
        }
    }

    /// Fires early every session not fired on time that changed since it
    /// last fired.
    fn fire_early(&mut self, agg: &A, _wm: Timestamp, out: &mut Fired<K, A::Out>) {
        for (key, state) in self.keys.iter_mut() {
            for s in state.sessions.iter_mut().filter(|s| s.dirty && !s.fired) {
                fire(s, agg, key, Timing::Early, out);
            }
        }
    }

    /// Number of (key, session) states held.
    fn open_windows(&self) -> usize {
        self.open
    }

    /// The sessions for a checkpoint (serializes as a [`SessionSnapshot`]).
    /// Keys come in the order their live wake-ups are due — for one time,
    /// the first live entry of each key in the group, which is the one that
    /// wakes it — so that keys waking at the same time wake in the same
    /// order after a restore.
    fn snapshot(&self) -> impl Serialize + '_ {
        let held = self.keys.len() - self.empty;
        let mut order = Vec::with_capacity(held);
        let mut seen: KeyMap<&K, ()> = key_map();
        seen.reserve(self.keys.len());
        for (at, group) in self.wakeups.groups() {
            for key in group {
                if let Some((key, state)) = self.keys.get_key_value(key) {
                    if state.wake == at && !state.sessions.is_empty() && seen.insert(key, ()).is_none() {
                        order.push((key, at, state.sessions.as_slice()));
                    }
                }
            }
        }
        // Every key's wake-up was pushed when it was set, so the walk found
        // every key; this only keeps a broken invariant from losing state.
        debug_assert_eq!(order.len(), held, "a key without a live wake-up");
        if order.len() < held {
            for (key, state) in &self.keys {
                if !state.sessions.is_empty() && !seen.contains_key(key) {
                    order.push((key, state.wake, state.sessions.as_slice()));
                }
            }
        }
        order
    }

    /// Sessions configured like these, holding the state of a snapshot; the
    /// wake-ups are scheduled again in the stored order.
    fn restored(&self, state: Self::Snapshot) -> Result<Self, String> {
        let mut me = SessionWindows::new(self.gap, self.lateness, self.early_every);
        me.keys.reserve(state.len());
        for (n, (key, wake, sessions)) in state.into_iter().enumerate() {
            let sessions = SessionSet::from_sessions(sessions).map_err(|e| format!("key #{n}: {e}"))?;
            // Keys without sessions are removed, and a key wakes no later
            // than its next event (else a session would fire late).
            match sessions.next_event(self.lateness) {
                None => return Err(format!("key #{n} has no session")),
                Some(next) if wake > next => {
                    return Err(format!("key #{n} wakes at {wake}, after its next event at {next}"))
                }
                Some(_) => {}
            }
            me.open += sessions.len();
            me.wakeups.push(wake, key.clone());
            if me.keys.insert(key, KeySessions { sessions, wake }).is_some() {
                return Err(format!("key #{n} is stored twice"));
            }
        }
        Ok(me)
    }
}

/// Decides what a session that just took a record fires now, and returns its
/// next event. A session whose end the watermark already passed cannot wait
/// for a watermark: it fires at once, as an update (`Late`).
#[inline]
fn settle<K: Clone, T, A: Aggregate<T>>(
    session: &mut Session<A::Acc>,
    agg: &A,
    key: &K,
    wm: Timestamp,
    lateness: i64,
    early_every: Option<u64>,
    out: &mut Fired<K, A::Out>,
) -> Timestamp {
    if session.window.end < wm {
        fire(session, agg, key, Timing::Late, out);
        session.fired = true;
    } else if early_every.is_some_and(|n| u64::from(session.since_fire) >= n) {
        fire(session, agg, key, Timing::Early, out);
    }
    session.next_event(lateness)
}

/// Emits the session as it stands and starts counting afresh.
fn fire<K: Clone, T, A: Aggregate<T>>(
    session: &mut Session<A::Acc>,
    agg: &A,
    key: &K,
    timing: Timing,
    out: &mut Fired<K, A::Out>,
) {
    let window = session.window;
    emit(out, last_instant(window), key.clone(), window, agg.result(&session.acc), timing);
    session.since_fire = 0;
    session.dirty = false;
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::window::{Count, Sum};

    type Agg = (Count, Sum<fn(&i64) -> i64>);

    fn agg() -> Agg {
        (Count, Sum::of(|v: &i64| *v))
    }

    #[test]
    fn a_key_whose_sessions_all_fired_is_kept_until_empty_keys_outnumber_the_rest() {
        let agg = agg();
        let mut w: SessionWindows<u64, (u64, i64)> = SessionWindows::new(10, 0, None);
        let mut out = Vec::new();
        // 100 keys that keep a session open, then 3,000 keys that appear
        // once each and whose sessions fire.
        for key in 0..100 {
            assert!(w.add(&agg, i64::MIN, key, 1_000_000, &1, &mut out).is_none());
        }
        for key in 100..3_100u64 {
            assert!(w.add(&agg, i64::MIN, key, key as i64, &1, &mut out).is_none());
        }
        // Fire half of the one-off keys: they stay, without sessions.
        w.on_watermark(&agg, i64::MIN, 1_610, &mut out);
        assert_eq!(out.len(), 1_500);
        assert_eq!((w.keys.len(), w.empty, w.open), (3_100, 1_500, 1_600));
        // A kept key that comes back is scheduled again and fires.
        assert!(w.add(&agg, 1_610, 100, 5_000, &7, &mut out).is_none());
        assert_eq!(w.empty, 1_499);
        // The rest fire: 3,000 empty keys outnumber the 100 others: swept.
        w.on_watermark(&agg, 1_610, 5_011, &mut out);
        assert_eq!(out.len(), 3_001);
        assert_eq!((w.keys.len(), w.empty, w.open), (100, 0, 100));
        let last = out.last().expect("fired");
        assert_eq!((last.value.key, last.value.window.start, last.value.value), (100, 5_000, (1, 7)));
        // The snapshot holds the keys with sessions only.
        let bytes = rmp_serde::to_vec(&WindowKind::<u64, i64, Agg>::snapshot(&w)).expect("encodes");
        let state: SessionSnapshot<u64, (u64, i64)> = rmp_serde::from_slice(&bytes).expect("decodes");
        assert_eq!(state.len(), 100);
        w.on_watermark(&agg, 5_011, END_OF_TIME, &mut out);
        assert_eq!(out.len(), 3_101);
    }
}
