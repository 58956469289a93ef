//! The combining key-by edge: local pre-aggregation before the shuffle.
//!
//! Like [`KeyBy`](super::edge::KeyBy) it hash-partitions records by key to
//! `p` window managers, but within each batch it is given it first folds
//! the records of one key in one window interval (a tumbling window, or a
//! pane of sliding windows) into one accumulator and sends that instead
//! ([`Partial::Combined`]); see `window::partial` for why this is exact and
//! which intervals it may combine (those ending after the last watermark it
//! forwarded). Nothing is kept between batches: what a batch combines
//! leaves with it, so barriers, watermarks and backpressure see an edge
//! like any other, and a checkpoint has nothing of it to store.
//!
//! Combining pays only where keys repeat within a batch. When a batch
//! shrinks by less than half, the edge sends the next [`SKIP`] batches'
//! records as they are ([`Partial::Record`]) and then tries again, so a job
//! with many keys costs one enum tag per record, not a hash map per record.

use std::collections::HashMap;
use std::hash::Hash;
use std::sync::atomic::AtomicI64;
use std::sync::atomic::Ordering::Relaxed;
use std::sync::Arc;

use foldhash::fast::FixedState;

use crate::message::{Record, Timestamp};
use crate::output::edge::{partition, Partitioned};
use crate::output::keys::BatchKeys;
use crate::output::{Blocked, Control, Emit};
use crate::window::partial::{Keyed, Partial};
use crate::window::span::RecentSpan;
use crate::window::Aggregate;

/// Batches sent record by record after one that combined poorly.
const SKIP: u32 = 16;

/// Hash-partitions records by key to `p` targets, combining the records of
/// one key and one window interval within each batch.
pub(crate) struct Combine<K: Send + 'static, T: Send + 'static, A: Aggregate<T>> {
    out: Partitioned<Keyed<K, T, A::Acc>>,
    key_fn: Box<dyn BatchKeys<K, T>>,
    /// The keys of the batch being sent (reused).
    keys: Vec<K>,
    agg: A,
    /// Length of the window interval combined over (window or pane).
    len: i64,
    /// The latest watermark forwarded; none yet: nothing is combined.
    forwarded: Option<Timestamp>,
    /// `Idle` was forwarded: combining is off for good (the receiver's
    /// watermark may have run ahead of this input's).
    idle: bool,
    /// Batches left to send without combining.
    skip: u32,
    /// The receivers' published watermarks (`Target::watermark`).
    receivers: Vec<Arc<AtomicI64>>,
    /// The batch's groups, per interval: the first `used` are this batch's
    /// intervals in the order first seen, the rest spare maps (emptied,
    /// capacity kept). A batch spans few intervals (its records are close
    /// in event time), so a record finds its interval among a handful and
    /// then its key with one hash of the key alone.
    groups: Vec<IntervalGroups<K, A::Acc>>,
    /// Entries of `groups` in use by the current batch.
    used: usize,
    /// The interval of the previous record (as the window core finds it).
    recent: RecentSpan,
}

impl<K, T, A> Combine<K, T, A>
where
    K: Hash + Eq + Clone + Send + 'static,
    T: Send + 'static,
    A: Aggregate<T>,
{
    /// An edge sending through `out`, combining over intervals of `len` ms
    /// (`> 0`, from `window::partial::combinable`).
    pub(crate) fn new(
        out: Partitioned<Keyed<K, T, A::Acc>>,
        key_fn: Box<dyn BatchKeys<K, T>>,
        agg: A,
        len: i64,
    ) -> Self {
        let receivers = out.sender.watermarks();
        // The metrics count the records a partial stands for.
        let out = out.weighed(|batch| batch.iter().map(|r| r.value.1.records()).sum());
        let keys = Vec::with_capacity(out.batch_size);
        Combine {
            out,
            key_fn,
            keys,
            agg,
            len: len.max(1),
            forwarded: None,
            idle: false,
            skip: 0,
            receivers,
            groups: Vec::new(),
            used: 0,
            recent: RecentSpan::new(),
        }
    }

    /// The entry of `groups` for the interval ending at `end`, taken from
    /// the spares if this batch has none yet.
    #[inline]
    fn interval(&mut self, end: Timestamp) -> usize {
        if let Some(i) = self.groups[..self.used].iter().rposition(|g| g.end == end) {
            return i;
        }
        if self.used == self.groups.len() {
            self.groups.push(IntervalGroups { end, keys: HashMap::with_hasher(FixedState::with_seed(0xC0_3B1E)) });
        }
        self.groups[self.used].end = end;
        self.used += 1;
        self.used - 1
    }

    /// Appends `record` to target `t`'s batch, sending it when full.
    #[inline(always)]
    fn push(&mut self, t: usize, record: Record<Keyed<K, T, A::Acc>>) {
        self.out.bufs[t].push(record);
        if self.out.bufs[t].len() >= self.out.batch_size {
            self.out.send(t);
        }
    }

    /// Sends every record of `batch` (keys in `keys`) as it is.
    fn pass_through(&mut self, batch: &mut Vec<Record<T>>, keys: &mut Vec<K>) {
        let p = self.out.bufs.len();
        let mut rest = batch.drain(..).zip(keys.drain(..));
        while rest.len() > 0 {
            // In chunks no destination's buffer can overflow (as `KeyBy`).
            let room = self.out.room();
            let bufs = &mut self.out.bufs;
            for (r, key) in rest.by_ref().take(room) {
                let t = partition(&key, p);
                bufs[t].push(Record { ts: r.ts, value: (key, Partial::Record(r.value)) });
            }
            self.out.send_full();
        }
    }

    /// Folds `first` and the records after it in `[start, end)` into the
    /// groups of entry `at`: one interval lookup, then one hash of the key
    /// per record. The record that ends the run goes to `next`.
    #[inline(always)]
    fn run(
        &mut self,
        first: (Record<T>, K),
        start: Timestamp,
        end: Timestamp,
        at: usize,
        records: &mut impl Iterator<Item = (Record<T>, K)>,
        next: &mut Option<(Record<T>, K)>,
    ) {
        let (agg, keys) = (&self.agg, &mut self.groups[at].keys);
        fold(agg, keys, first.1, &first.0.value);
        for (r, key) in records.by_ref() {
            if !(r.ts >= start && r.ts < end) {
                *next = Some((r, key));
                return;
            }
            fold(agg, keys, key, &r.value);
        }
    }

    /// Folds the records of intervals ending after `wm` into groups and
    /// sends the others as they are; then sends the groups.
    fn combine(&mut self, batch: &mut Vec<Record<T>>, keys: &mut Vec<K>, wm: Timestamp) {
        let p = self.out.bufs.len();
        let mut combined = batch.len();
        let mut records = batch.drain(..).zip(keys.drain(..));
        let mut next = records.next();
        // The intervals of the last run and of the one before it, with
        // their entries in `groups`: a run ends at a record of another
        // interval, and where the disorder is about an interval long,
        // records alternate between two neighbours.
        let (mut last, mut before): (Option<Span>, Option<Span>) = (None, None);
        while let Some(first) = next.take() {
            let ts = first.0.ts;
            if let Some((start, end, at)) = before.filter(|&(s, e, _)| ts >= s && ts < e) {
                self.run(first, start, end, at, &mut records, &mut next);
                (before, last) = (last, Some((start, end, at)));
                continue;
            }
            // The interval as the window core finds it (the same
            // `RecentSpan`, so that both agree to the last instant).
            let (start, end) = self.recent.locate(ts, self.len);
            if end <= wm {
                // The watermark reached its windows: the receiver decides
                // whether it is late, so it travels as itself.
                let (r, key) = first;
                let t = partition(&key, p);
                self.push(t, Record { ts: r.ts, value: (key, Partial::Record(r.value)) });
                combined -= 1;
                next = records.next();
                continue;
            }
            let at = self.interval(end);
            self.run(first, start, end, at, &mut records, &mut next);
            (before, last) = (last, Some((start, end, at)));
        }
        drop(records);
        let used = std::mem::replace(&mut self.used, 0);
        let groups: usize = self.groups[..used].iter().map(|g| g.keys.len()).sum();
        if groups * 2 > combined {
            self.skip = SKIP;
        }
        let mut all = std::mem::take(&mut self.groups);
        for g in &mut all[..used] {
            let end = g.end;
            for (key, (acc, records)) in g.keys.drain() {
                let t = partition(&key, p);
                // Its own interval's last instant: not behind the watermark,
                // so it may overtake a held one (`HeldWatermarks::may_pass`).
                let ts = end.saturating_sub(1);
                self.push(t, Record { ts, value: (key, Partial::Combined { end, acc, records }) });
            }
        }
        self.groups = all;
    }
}

/// An interval `[start, end)` and the entry of its groups.
type Span = (Timestamp, Timestamp, usize);

/// Folds `value` of `key` into its group in `keys`.
#[inline(always)]
fn fold<K: Hash + Eq, T, A: Aggregate<T>>(
    agg: &A,
    keys: &mut HashMap<K, (A::Acc, u32), FixedState>,
    key: K,
    value: &T,
) {
    match keys.get_mut(&key) {
        Some((acc, n)) => {
            agg.add(acc, value);
            *n += 1;
        }
        // A key's first record in the interval: once per group.
        None => {
            let mut acc = agg.create();
            agg.add(&mut acc, value);
            keys.insert(key, (acc, 1));
        }
    }
}

/// One interval's groups within a batch: key → the aggregate of the
/// batch's records of that key there, and how many.
struct IntervalGroups<K, Acc> {
    /// The interval's end.
    end: Timestamp,
    /// Drained per batch (capacity kept), in the map's fixed-seed order.
    keys: HashMap<K, (Acc, u32), FixedState>,
}

impl<K, T, A> Emit<T> for Combine<K, T, A>
where
    K: Hash + Eq + Clone + Send + 'static,
    T: Send + 'static,
    A: Aggregate<T>,
{
    fn data(&mut self, batch: &mut Vec<Record<T>>) {
        if !self.out.held.may_pass(batch) {
            self.out.release();
        }
        // The keys of the whole batch first (one dynamic call), then the
        // loops take them along with the records.
        let mut keys = std::mem::take(&mut self.keys);
        keys.clear();
        self.key_fn.keys(batch, &mut keys);
        match self.forwarded {
            // A group counts its records in 32 bits.
            Some(wm) if !self.idle && self.skip == 0 && batch.len() <= u32::MAX as usize => {
                // No receiver's watermark can pass what this edge forwarded
                // while its input counts there, except one restored from a
                // checkpoint taken while this input was idle: fold only
                // intervals after both.
                let receivers = self.receivers.iter().map(|w| w.load(Relaxed)).max().unwrap_or(i64::MIN);
                self.combine(batch, &mut keys, wm.max(receivers))
            }
            _ => {
                self.skip = self.skip.saturating_sub(1);
                self.pass_through(batch, &mut keys);
            }
        }
        self.keys = keys;
    }
    fn control(&mut self, ctl: Control) {
        match ctl {
            Control::Watermark(wm) => self.forwarded = Some(self.forwarded.map_or(wm, |f| f.max(wm))),
            Control::Idle => self.idle = true,
            Control::Barrier(_) | Control::End => {}
        }
        self.out.control(ctl);
    }
    fn flush(&mut self) {
        self.out.release();
    }
    fn take_blocked(&mut self) -> Option<Blocked> {
        self.out.sender.take_blocked()
    }
    fn is_blocked(&self) -> bool {
        self.out.sender.is_blocked()
    }
}
