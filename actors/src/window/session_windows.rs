//! Session windows of every key: per-key merging plus wake-up times.
//!
//! Each key's sessions live in a [`SessionSet`]. To fire sessions without
//! scanning every key on every watermark, each key has one wake-up time,
//! kept in an ordered index of times: no later than its sessions' earliest next event (an unfired
//! session's end, or a fired one's end plus the allowed lateness). A
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
//! A checkpoint stores each key with its wake-up time and sessions, in the
//! order the live wake-ups are due ([`SessionSnapshot`]); restoring
//! schedules the keys again in that order, so the wake-up index comes back
//! without its stale entries.

use std::collections::BTreeMap;
use std::hash::Hash;

use serde::Serialize;

use super::buckets::{key_map, KeyMap};
use super::{emit, last_instant, Fired};
use crate::message::{Timestamp, END_OF_TIME};
use crate::window::session::{Session, SessionSet};
use crate::window::{Aggregate, Timing};

/// One key's sessions and the time of its live wake-up.
struct KeySessions<Acc> {
    /// The sessions.
    sessions: SessionSet<Acc>,
    /// The key's wake-up time: `<=` every session's next event.
    wake: Timestamp,
}

/// Wake-up times: the keys to look at once the watermark passes each time,
/// in the order they were scheduled. Times are grouped (a B-tree over the
/// distinct pending times, which stays small and cache-resident, rather
/// than a heap over every pending key), and the emptied groups' buffers are
/// reused.
struct Wakeups<K> {
    /// Time → keys, in scheduling order.
    due: BTreeMap<Timestamp, Vec<K>>,
    /// Emptied buffers, kept for reuse.
    spare: Vec<Vec<K>>,
}

impl<K> Wakeups<K> {
    /// Wakes `key` once the watermark passes `at`.
    fn push(&mut self, at: Timestamp, key: K) {
        let spare = &mut self.spare;
        self.due.entry(at).or_insert_with(|| spare.pop().unwrap_or_default()).push(key);
    }

    /// The earliest group of wake-ups, if the watermark `wm` passed it (end
    /// of input passes everything).
    fn pop_due(&mut self, wm: Timestamp) -> Option<(Timestamp, Vec<K>)> {
        let (&at, _) = self.due.first_key_value()?;
        if at < wm || wm == END_OF_TIME {
            self.due.pop_first()
        } else {
            None
        }
    }

    /// Keeps a drained group's buffer for reuse.
    fn recycle(&mut self, keys: Vec<K>) {
        debug_assert!(keys.is_empty());
        self.spare.push(keys);
    }
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
    /// Sessions by key (keys without a session are removed).
    keys: KeyMap<K, KeySessions<Acc>>,
    /// When to look at which key.
    wakeups: Wakeups<K>,
    /// Number of sessions held.
    open: usize,
}

impl<K: Hash + Eq + Clone, Acc> SessionWindows<K, Acc> {
    /// Sessions with inactivity gap `gap`.
    pub(super) fn new(gap: i64, lateness: i64, early_every: Option<u64>) -> Self {
        SessionWindows {
            gap,
            lateness,
            early_every,
            keys: key_map(),
            wakeups: Wakeups { due: BTreeMap::new(), spare: Vec::new() },
            open: 0,
        }
    }

    /// Adds a record to its key's sessions, merging as needed, unless the
    /// session it would belong to is already discarded (then returns the key
    /// back: late).
    pub(super) fn add<T, A: Aggregate<T, Acc = Acc>>(
        &mut self,
        agg: &A,
        wm: Timestamp,
        key: K,
        ts: Timestamp,
        value: &T,
        out: &mut Fired<K, A::Out>,
    ) -> Option<K> {
        let (gap, lateness, early_every) = (self.gap, self.lateness, self.early_every);
        if let Some(state) = self.keys.get_mut(&key) {
            // Every kept session has `end + lateness >= wm` (later ones are
            // discarded), so only a record that touches none can be late.
            if state.sessions.merged_window(ts, gap).end.saturating_add(lateness) < wm {
                return Some(key);
            }
            let before = state.sessions.len();
            let session = state.sessions.insert(agg, ts, gap, value);
            let next = settle(session, agg, &key, wm, lateness, early_every, out);
            self.open = self.open + state.sessions.len() - before;
            if next < state.wake {
                state.wake = next;
                self.wakeups.push(next, key);
            }
            return None;
        }
        if ts.saturating_add(gap).saturating_add(lateness) < wm {
            return Some(key);
        }
        let mut sessions = SessionSet::new();
        let next = settle(sessions.insert(agg, ts, gap, value), agg, &key, wm, lateness, early_every, out);
        self.open += 1;
        self.wakeups.push(next, key.clone());
        self.keys.insert(key, KeySessions { sessions, wake: next });
        None
    }

    /// Fires the sessions the watermark passed, in ascending end, and
    /// discards those whose lateness expired.
    pub(super) fn on_watermark<T, A: Aggregate<T, Acc = Acc>>(
        &mut self,
        agg: &A,
        wm: Timestamp,
        out: &mut Fired<K, A::Out>,
    ) {
        while let Some((at, mut keys)) = self.wakeups.pop_due(wm) {
            for key in keys.drain(..) {
                self.wake(agg, at, key, out);
            }
            self.wakeups.recycle(keys);
        }
    }

    /// Looks at `key`, woken at `at` (before the watermark): fires its
    /// session ending at `at`, discards its expired sessions and schedules
    /// its next wake-up — strictly after `at`, possibly still before the
    /// watermark, so that sessions of all keys fire in ascending end.
    fn wake<T, A: Aggregate<T, Acc = Acc>>(&mut self, agg: &A, at: Timestamp, key: K, out: &mut Fired<K, A::Out>) {
        let Some(state) = self.keys.get_mut(&key) else {
            return; // stale: the key's sessions are all gone
        };
        if state.wake != at {
            return; // stale: the key was rescheduled earlier
        }
        // `at <=` every next event: no unfired session ends before `at`.
        let fired = state.sessions.ending_at(at).filter(|s| !s.fired).map(|s| {
            s.fired = true;
            s.since_fire = 0;
            s.dirty = false;
            (s.window, agg.result(&s.acc))
        });
        self.open -= state.sessions.discard_expired(self.lateness, at);
        match state.sessions.next_event(self.lateness) {
            Some(next) => {
                state.wake = next;
                if let Some((window, value)) = fired {
                    emit(out, last_instant(window), key.clone(), window, value, Timing::OnTime);
                }
                self.wakeups.push(next, key);
            }
            None => {
                self.keys.remove(&key);
                if let Some((window, value)) = fired {
                    emit(out, last_instant(window), key, window, value, Timing::OnTime);
                }
            }
        }
    }

    /// Fires early every session not fired on time that changed since it
    /// last fired.
    pub(super) fn fire_early<T, A: Aggregate<T, Acc = Acc>>(&mut self, agg: &A, out: &mut Fired<K, A::Out>) {
        for (key, state) in self.keys.iter_mut() {
            for s in state.sessions.iter_mut().filter(|s| s.dirty && !s.fired) {
                fire(s, agg, key, Timing::Early, out);
            }
        }
    }

    /// Number of (key, session) states held.
    pub(super) fn open_windows(&self) -> usize {
        self.open
    }

    /// The sessions for a checkpoint (serializes as a [`SessionSnapshot`]).
    /// Keys come in the order their live wake-ups are due — for one time,
    /// the first live entry of each key in the group, which is the one that
    /// wakes it — so that keys waking at the same time wake in the same
    /// order after a restore.
    pub(super) fn snapshot(&self) -> impl Serialize + '_
    where
        K: Serialize,
        Acc: Serialize,
    {
        let mut order = Vec::with_capacity(self.keys.len());
        let mut seen: KeyMap<&K, ()> = key_map();
        seen.reserve(self.keys.len());
        for (&at, group) in &self.wakeups.due {
            for key in group {
                if let Some((key, state)) = self.keys.get_key_value(key) {
                    if state.wake == at && seen.insert(key, ()).is_none() {
                        order.push((key, at, state.sessions.as_slice()));
                    }
                }
            }
        }
        // Every key's wake-up was pushed when it was set, so the walk found
        // every key; this only keeps a broken invariant from losing state.
        debug_assert_eq!(order.len(), self.keys.len(), "a key without a live wake-up");
        if order.len() < self.keys.len() {
            for (key, state) in &self.keys {
                if !seen.contains_key(key) {
                    order.push((key, state.wake, state.sessions.as_slice()));
                }
            }
        }
        order
    }

    /// Sessions configured like these, holding the state of a snapshot; the
    /// wake-ups are scheduled again in the stored order.
    pub(super) fn restored(&self, state: SessionSnapshot<K, Acc>) -> Result<Self, String> {
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
    } else if early_every.is_some_and(|n| session.since_fire >= n) {
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
