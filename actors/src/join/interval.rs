//! The keyed interval join: its functional core, and the actor core around
//! it.
//!
//! Each key keeps the records of both sides that can still match. A record
//! of side A at `ta` matches a record of side B at `tb` with the same key
//! when `ta + lower <= tb <= ta + upper` (both bounds inclusive, Flink's
//! `between(lower, upper)`). When a record arrives it is joined with every
//! buffered record of the other side that matches, then buffered itself:
//! so each pair is emitted exactly once, by whichever of its two records
//! arrived second. A pair is emitted at `max(ta, tb)`, never behind the
//! watermark.
//!
//! State is dropped as the watermark passes: a record of A at `ta` can
//! meet no B arriving later once the watermark is beyond `ta + upper`
//! (every later B is at or after the watermark), one of B at `tb` no A
//! once it is beyond `tb - lower`. A record behind the watermark is late:
//! it joins nothing and goes to the late-data output with its side.

use std::collections::BTreeMap;
use std::hash::Hash;

use foldhash::HashMap;
use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};

use crate::checkpoint::Snapshot;
use crate::error::{OperatorError, SnapshotError};
use crate::join::Either;
use crate::message::{CheckpointId, Record, Timestamp};
use crate::output::outlet::Outlet;
use crate::shell::{Core, Cx};

/// Expiry times are kept per bucket of this many ms of event time: one
/// entry per record in a small ordered map, swept as the watermark passes.
const BUCKET: i64 = 64;

/// One key's buffered records: `(ts, value)` of each side.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
struct Sides<A, B> {
    a: Vec<(Timestamp, A)>,
    b: Vec<(Timestamp, B)>,
}

impl<A, B> Default for Sides<A, B> {
    fn default() -> Self {
        Sides { a: Vec::new(), b: Vec::new() }
    }
}

/// The interval join's state and logic, without actix.
#[derive(Debug)]
pub(crate) struct IntervalState<K, A, B> {
    lower: i64,
    upper: i64,
    keys: HashMap<K, Sides<A, B>>,
    /// Per expiry bucket, the keys holding a record that expires in it
    /// (a key once per record).
    expiry: BTreeMap<i64, Vec<K>>,
    watermark: Timestamp,
    buffered: usize,
}

/// What the state holds in a checkpoint.
#[derive(Debug, Serialize, Deserialize)]
struct IntervalSnapshot<K, A, B> {
    lower: i64,
    upper: i64,
    watermark: Timestamp,
    keys: Vec<(K, Sides<A, B>)>,
}

impl<K, A, B> IntervalState<K, A, B>
where
    K: Hash + Eq + Clone,
{
    /// Joins `a.ts + lower <= b.ts <= a.ts + upper`; `lower <= upper`.
    pub(crate) fn new(lower: i64, upper: i64) -> Self {
        IntervalState {
            lower,
            upper,
            keys: HashMap::default(),
            expiry: BTreeMap::new(),
            watermark: i64::MIN,
            buffered: 0,
        }
    }

    /// Records buffered (both sides).
    #[cfg(test)]
    pub(crate) fn buffered(&self) -> usize {
        self.buffered
    }

    fn expire_at(&mut self, key: &K, at: Timestamp) {
        self.expiry.entry(at.div_euclid(BUCKET)).or_default().push(key.clone());
    }

    /// A record of side A: joined with the buffered B of its key (each
    /// match passed to `emit(ts, key, a, b)`), then buffered. `Err` gives it
    /// back when it is late.
    pub(crate) fn add_a(
        &mut self,
        ts: Timestamp,
        key: K,
        a: A,
        mut emit: impl FnMut(Timestamp, &K, &A, &B),
    ) -> Result<(), (K, A)> {
        if ts < self.watermark {
            return Err((key, a));
        }
        let (lo, hi) = (ts.saturating_add(self.lower), ts.saturating_add(self.upper));
        let sides = self.keys.entry(key.clone()).or_default();
        for (tb, b) in &sides.b {
            if lo <= *tb && *tb <= hi {
                emit(ts.max(*tb), &key, &a, b);
            }
        }
        sides.a.push((ts, a));
        self.buffered += 1;
        self.expire_at(&key, hi);
        Ok(())
    }

    /// A record of side B; as [`Self::add_a`].
    pub(crate) fn add_b(
        &mut self,
        ts: Timestamp,
        key: K,
        b: B,
        mut emit: impl FnMut(Timestamp, &K, &A, &B),
    ) -> Result<(), (K, B)> {
        if ts < self.watermark {
            return Err((key, b));
        }
        let (lo, hi) = (ts.saturating_sub(self.upper), ts.saturating_sub(self.lower));
        let sides = self.keys.entry(key.clone()).or_default();
        for (ta, a) in &sides.a {
            if lo <= *ta && *ta <= hi {
                emit(ts.max(*ta), &key, a, &b);
            }
        }
        sides.b.push((ts, b));
        self.buffered += 1;
        self.expire_at(&key, hi);
        Ok(())
    }

    /// The watermark advanced to `wm`: drops every record that can match
    /// nothing arriving from now on.
    pub(crate) fn advance(&mut self, wm: Timestamp) {
        if wm <= self.watermark {
            return;
        }
        self.watermark = wm;
        let (lower, upper) = (self.lower, self.upper);
        // A bucket is done when its last ms is behind the watermark.
        while let Some(entry) = self.expiry.first_entry() {
            let last = entry.key().saturating_mul(BUCKET).saturating_add(BUCKET - 1);
            if last >= wm {
                break;
            }
            for key in entry.remove() {
                let Some(sides) = self.keys.get_mut(&key) else { continue };
                let before = sides.a.len() + sides.b.len();
                sides.a.retain(|(t, _)| t.saturating_add(upper) >= wm);
                sides.b.retain(|(t, _)| t.saturating_sub(lower) >= wm);
                let after = sides.a.len() + sides.b.len();
                self.buffered -= before - after;
                if after == 0 {
                    self.keys.remove(&key);
                }
            }
        }
    }
}

impl<K, A, B> IntervalState<K, A, B>
where
    K: Hash + Eq + Clone + Serialize + DeserializeOwned,
    A: Serialize + DeserializeOwned + Clone,
    B: Serialize + DeserializeOwned + Clone,
{
    pub(crate) fn snapshot(&self) -> Result<Snapshot, SnapshotError> {
        let snap = IntervalSnapshot {
            lower: self.lower,
            upper: self.upper,
            watermark: self.watermark,
            keys: self.keys.iter().map(|(k, s)| (k.clone(), s.clone())).collect(),
        };
        Snapshot::encode(&snap)
    }

    pub(crate) fn restore(&mut self, state: &Snapshot) -> Result<(), SnapshotError> {
        let snap: IntervalSnapshot<K, A, B> = state.decode()?;
        if (snap.lower, snap.upper) != (self.lower, self.upper) {
            return Err(SnapshotError::Mismatch {
                what: "interval join".into(),
                reason: format!(
                    "the checkpoint was taken with between({}, {}), this job joins between({}, {})",
                    snap.lower, snap.upper, self.lower, self.upper
                ),
            });
        }
        *self = IntervalState::new(self.lower, self.upper);
        self.watermark = snap.watermark;
        for (key, sides) in snap.keys {
            for (t, _) in &sides.a {
                let at = t.saturating_add(self.upper);
                self.expire_at(&key, at);
            }
            for (t, _) in &sides.b {
                let at = t.saturating_sub(self.lower);
                self.expire_at(&key, at);
            }
            self.buffered += sides.a.len() + sides.b.len();
            self.keys.insert(key, sides);
        }
        Ok(())
    }
}

/// The interval join's actor core: records `(key, Left(a) | Right(b))`
/// in, `f(key, a, b)` at `max(ta, tb)` out, late records to the second
/// outlet.
pub(crate) struct IntervalJoinCore<K, A, B, O, F> {
    state: IntervalState<K, A, B>,
    f: F,
    out: Vec<Record<O>>,
    late: Vec<Record<(K, Either<A, B>)>>,
    late_connected: bool,
}

impl<K, A, B, O, F> IntervalJoinCore<K, A, B, O, F>
where
    K: Hash + Eq + Clone,
{
    pub(crate) fn new(lower: i64, upper: i64, f: F, late_connected: bool) -> Self {
        IntervalJoinCore {
            state: IntervalState::new(lower, upper),
            f,
            out: Vec::new(),
            late: Vec::new(),
            late_connected,
        }
    }
}

impl<K, A, B, O, F> Core for IntervalJoinCore<K, A, B, O, F>
where
    K: Hash + Eq + Clone + Send + Serialize + DeserializeOwned + 'static,
    A: Clone + Send + Serialize + DeserializeOwned + 'static,
    B: Clone + Send + Serialize + DeserializeOwned + 'static,
    O: Send + 'static,
    F: FnMut(&K, &A, &B) -> O + Send + 'static,
{
    type In = (K, Either<A, B>);
    type Outputs = (Outlet<O>, Outlet<(K, Either<A, B>)>);

    fn on_batch(&mut self, batch: &mut Vec<Record<Self::In>>, cx: &mut Cx<'_, Self>) -> Result<(), OperatorError> {
        let (f, out) = (&mut self.f, &mut self.out);
        let mut emit = |ts: Timestamp, k: &K, a: &A, b: &B| out.push(Record { ts, value: f(k, a, b) });
        let mut late = 0u64;
        for r in batch.drain(..) {
            let (key, side) = r.value;
            let refused = match side {
                Either::Left(a) => self.state.add_a(r.ts, key, a, &mut emit).err().map(|(k, a)| (k, Either::Left(a))),
                Either::Right(b) => self.state.add_b(r.ts, key, b, &mut emit).err().map(|(k, b)| (k, Either::Right(b))),
            };
            if let Some(value) = refused {
                late += 1;
                if self.late_connected {
                    self.late.push(Record { ts: r.ts, value });
                }
            }
        }
        if !self.out.is_empty() {
            cx.out().0.send_batch(&mut self.out);
        }
        if late > 0 {
            cx.count_late(late);
            if !self.late.is_empty() {
                cx.out().1.send_batch(&mut self.late);
            }
        }
        Ok(())
    }

    fn on_watermark(&mut self, wm: Timestamp, _cx: &mut Cx<'_, Self>) -> Result<(), OperatorError> {
        self.state.advance(wm);
        Ok(())
    }

    fn snapshot(&mut self, _id: CheckpointId) -> Result<Snapshot, OperatorError> {
        Ok(self.state.snapshot()?)
    }

    fn restore(&mut self, _id: CheckpointId, state: Snapshot) -> Result<(), OperatorError> {
        Ok(self.state.restore(&state)?)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    type Pairs = Vec<(Timestamp, u32, i64, i64)>;

    fn join(state: &mut IntervalState<u32, i64, i64>, pairs: &mut Pairs, side: u8, ts: i64, key: u32) -> bool {
        let mut emit = |t: Timestamp, k: &u32, a: &i64, b: &i64| pairs.push((t, *k, *a, *b));
        match side {
            0 => state.add_a(ts, key, ts, &mut emit).is_ok(),
            _ => state.add_b(ts, key, ts, &mut emit).is_ok(),
        }
    }

    #[test]
    fn each_pair_is_emitted_once_whichever_side_comes_first_bounds_inclusive() {
        let mut s = IntervalState::new(-5, 5);
        let mut pairs = Pairs::new();
        assert!(join(&mut s, &mut pairs, 0, 100, 1)); // a@100
        assert!(join(&mut s, &mut pairs, 1, 105, 1)); // b@105: matches (upper bound)
        assert!(join(&mut s, &mut pairs, 1, 106, 1)); // b@106: too late for a@100
        assert!(join(&mut s, &mut pairs, 1, 95, 1)); // b@95: matches (lower bound)
        assert!(join(&mut s, &mut pairs, 1, 100, 2)); // other key
        assert!(join(&mut s, &mut pairs, 0, 101, 1)); // a@101: b@105, b@106, b@96? (95 < 96) no
        pairs.sort();
        assert_eq!(pairs, vec![(100, 1, 100, 95), (105, 1, 100, 105), (105, 1, 101, 105), (106, 1, 101, 106)]);
    }

    #[test]
    fn the_watermark_drops_what_can_no_longer_match_and_makes_records_late() {
        let mut s = IntervalState::new(-5, 5);
        let mut pairs = Pairs::new();
        join(&mut s, &mut pairs, 0, 100, 1);
        join(&mut s, &mut pairs, 1, 300, 1);
        assert_eq!(s.buffered(), 2);
        s.advance(106 + BUCKET);
        assert_eq!(s.buffered(), 1, "a@100 can meet no b at or after the watermark");
        assert!(!join(&mut s, &mut pairs, 1, 150, 1), "b@150 is behind the watermark: late");
        assert!(join(&mut s, &mut pairs, 0, 296, 1));
        assert_eq!(pairs, vec![(300, 1, 296, 300)]);
        s.advance(i64::MAX);
        assert_eq!(s.buffered(), 0);
        assert!(s.keys.is_empty());
    }

    #[test]
    fn a_snapshot_restores_the_same_state_and_refuses_other_bounds() {
        let mut s = IntervalState::<u32, i64, i64>::new(-5, 5);
        let mut pairs = Pairs::new();
        for t in 0..50 {
            join(&mut s, &mut pairs, (t % 2) as u8, t * 3, (t % 4) as u32);
        }
        s.advance(60);
        let snap = s.snapshot().unwrap();
        let mut r = IntervalState::new(-5, 5);
        r.restore(&snap).unwrap();
        assert_eq!(r.buffered(), s.buffered());
        assert_eq!(r.watermark, 60);
        let (mut p1, mut p2) = (Pairs::new(), Pairs::new());
        for t in 50..80 {
            join(&mut s, &mut p1, (t % 2) as u8, t * 3, (t % 4) as u32);
            join(&mut r, &mut p2, (t % 2) as u8, t * 3, (t % 4) as u32);
        }
        assert_eq!(p1, p2);
        let mut other = IntervalState::<u32, i64, i64>::new(-6, 5);
        let e = other.restore(&snap).unwrap_err().to_string();
        assert!(e.contains("between(-5, 5)"), "{e}");
    }
}
