//! Per-key state grouped by an instant of event time, in time order.
//!
//! The tumbling or sliding windows (or panes) of all keys that end at the
//! same instant fire together, so their states live together: an ordered map
//! from that end to a bucket, a hash map from key to state. A watermark then
//! fires and discards whole buckets from the front and never looks at state
//! that is not due. A record finds its bucket through a one-entry cache (the
//! bucket used last, nearly always the right one for in-order data) and its
//! key with one hash lookup. An emptied bucket keeps its allocation for the
//! next one, so steady-state processing does not allocate.
//!
//! Invariants: `index` maps distinct instants to distinct slab entries, and
//! no entry of `free` is in `index`; `cached` and `previous`, when set, are entries of
//! `index`; `entries` is the total number of states in the indexed buckets.
//!
//! A checkpoint stores the buckets as a list of `(instant, [(key, state)])`
//! in ascending instant ([`Buckets::snapshot`]), never as hash maps: the
//! index, the slab and the cache are rebuilt on restore
//! ([`Buckets::from_snapshot`]).

use std::collections::{BTreeMap, HashMap};
use std::hash::Hash;
use std::ops::Bound::{Excluded, Included};

use foldhash::fast::FixedState;
use serde::{Serialize, Serializer};

use super::span::RecentSpan;
use crate::message::{Record, Timestamp};

/// Seed of the window state's hash maps: fixed, so that iteration order (and
/// so the order of results with equal window ends) is the same run to run;
/// distinct from the key-partitioning seed, so that the keys routed to one
/// instance (which agree on the partitioning hash's high bits) still spread
/// over the whole table.
const SEED: u64 = 0x57A7_E0F0_11D0_C0DE;

/// A hash map from key to state with the fixed window-state hasher.
pub(super) type KeyMap<K, S> = HashMap<K, S, FixedState>;

/// An empty [`KeyMap`].
pub(super) fn key_map<K, S>() -> KeyMap<K, S> {
    HashMap::with_hasher(FixedState::with_seed(SEED))
}

/// The decoded form of [`Buckets::snapshot`]: per instant, ascending, the
/// states of its keys.
pub(super) type BucketEntries<K, S> = Vec<(Timestamp, Vec<(K, S)>)>;

/// States of (key, instant) pairs, grouped by instant, in time order.
pub(super) struct Buckets<K, S> {
    /// Instant → slab entry of its bucket.
    index: BTreeMap<Timestamp, usize>,
    /// The buckets, live and free.
    slab: Vec<KeyMap<K, S>>,
    /// Slab entries not in use (empty maps that kept their capacity).
    free: Vec<usize>,
    /// The bucket used last.
    cached: Option<(Timestamp, usize)>,
    /// The bucket used before it: where the disorder is about a bucket
    /// long, records alternate between two neighbouring buckets, and a
    /// second entry spares them the index lookup.
    previous: Option<(Timestamp, usize)>,
    /// Number of states held.
    entries: usize,
}

impl<K: Hash + Eq, S> Buckets<K, S> {
    /// No state.
    pub(super) fn new() -> Self {
        Buckets { index: BTreeMap::new(), slab: Vec::new(), free: Vec::new(), cached: None, previous: None, entries: 0 }
    }

    /// Number of (key, instant) states held.
    pub(super) fn len(&self) -> usize {
        self.entries
    }

    /// The slab entry of the bucket at `at`, created if missing: the cached
    /// one (nearly always), or [`Buckets::find_bucket`].
    #[inline(always)]
    fn bucket_at(&mut self, at: Timestamp) -> usize {
        match (self.cached, self.previous) {
            (Some((cached_at, i)), _) if cached_at == at => i,
            (_, Some((previous_at, i))) if previous_at == at => {
                self.previous = self.cached;
                self.cached = Some((at, i));
                i
            }
            _ => self.find_bucket(at),
        }
    }

    /// The slab entry of the bucket at `at`, looked up or created, and
    /// cached (out of line: it keeps [`Buckets::update`] small enough to
    /// inline into the per-record loop).
    #[inline(never)]
    fn find_bucket(&mut self, at: Timestamp) -> usize {
        let i = match self.index.get(&at) {
            Some(&i) => i,
            None => {
                let i = self.free.pop().unwrap_or_else(|| {
                    self.slab.push(key_map());
                    self.slab.len() - 1
                });
                self.index.insert(at, i);
                i
            }
        };
        self.previous = self.cached;
        self.cached = Some((at, i));
        i
    }

    /// Applies `f` to the state of `key` at `at`, created with `create` if
    /// missing. The key is cloned only when a state is created, not per call.
    #[inline(always)]
    pub(super) fn update<R>(
        &mut self,
        at: Timestamp,
        key: &K,
        create: impl FnOnce() -> S,
        f: impl FnOnce(&mut S) -> R,
    ) -> R
    where
        K: Clone,
    {
        let i = self.bucket_at(at);
        if let Some(state) = self.slab[i].get_mut(key) {
            return f(state);
        }
        self.insert(i, key, create, f)
    }

    /// The new state of `key` in slab entry `i` (out of line: once per key
    /// and window, not per record).
    #[cold]
    #[inline(never)]
    fn insert<R>(&mut self, i: usize, key: &K, create: impl FnOnce() -> S, f: impl FnOnce(&mut S) -> R) -> R
    where
        K: Clone,
    {
        self.entries += 1;
        f(self.slab[i].entry(key.clone()).or_insert_with(create))
    }

    /// The fast path of adding a batch: takes records from `records` while
    /// each falls into an aligned interval of length `len` ([`RecentSpan`])
    /// for which `bucket_of(start, end)` names the instant of the bucket its
    /// records go to, and adds each to its key's state there with `add`
    /// (created with `create`). A run of records in one interval costs one
    /// bucket lookup, then one hash lookup per record. Returns the first
    /// record `bucket_of` refuses (for the caller's general path), or `None`
    /// once `records` is exhausted.
    #[inline(always)]
    pub(super) fn add_runs<T, I>(
        &mut self,
        records: &mut I,
        recent: &mut RecentSpan,
        len: i64,
        bucket_of: impl Fn(Timestamp, Timestamp) -> Option<Timestamp>,
        create: impl Fn() -> S,
        add: impl Fn(&mut S, &T),
    ) -> Option<Record<(K, T)>>
    where
        I: Iterator<Item = Record<(K, T)>>,
    {
        // A plain loop that carries the record ending a run to the next
        // (cheaper than `Peekable`, which moves every record through its
        // slot).
        let mut next = records.next();
        while let Some(first) = next.take() {
            let (start, end) = recent.locate(first.ts, len);
            let Some(at) = bucket_of(start, end) else { return Some(first) };
            let i = self.bucket_at(at);
            let (bucket, entries) = (&mut self.slab[i], &mut self.entries);
            add_to(bucket, entries, first, &create, &add);
            for r in records.by_ref() {
                if !(r.ts >= start && r.ts < end) {
                    next = Some(r);
                    break;
                }
                add_to(bucket, entries, r, &create, &add);
            }
        }
        None
    }

    /// Instants of the buckets in `(after, upto]`, ascending, with their slab
    /// entries (for [`Buckets::bucket`]).
    pub(super) fn range(&self, after: Timestamp, upto: Timestamp) -> impl Iterator<Item = (Timestamp, usize)> + '_ {
        // `BTreeMap::range` panics on an empty interval: do not ask.
        (after < upto)
            .then(|| self.index.range((Excluded(after), Included(upto))))
            .into_iter()
            .flatten()
            .map(|(&at, &i)| (at, i))
    }

    /// The first bucket in `(after, upto]`.
    pub(super) fn next_after(&self, after: Timestamp, upto: Timestamp) -> Option<(Timestamp, usize)> {
        self.range(after, upto).next()
    }

    /// The bucket in slab entry `i` (from [`Buckets::range`]).
    pub(super) fn bucket(&self, i: usize) -> &KeyMap<K, S> {
        &self.slab[i]
    }

    /// The bucket in slab entry `i`, mutably (states only: keys are fixed).
    pub(super) fn bucket_mut(&mut self, i: usize) -> impl Iterator<Item = (&K, &mut S)> {
        self.slab[i].iter_mut()
    }

    /// Every state held, mutably.
    pub(super) fn for_each_mut(&mut self, mut f: impl FnMut(&mut S)) {
        for &i in self.index.values() {
            self.slab[i].values_mut().for_each(&mut f);
        }
    }

    /// Removes the earliest bucket if `expired(its instant)`, handing each of
    /// its states to `each` by value. Returns whether a bucket was removed.
    pub(super) fn pop_first_if(
        &mut self,
        expired: impl FnOnce(Timestamp) -> bool,
        mut each: impl FnMut(Timestamp, K, S),
    ) -> bool {
        let Some((at, i)) = self.unlink_first_if(expired) else {
            return false;
        };
        for (key, state) in self.slab[i].drain() {
            each(at, key, state);
        }
        self.free.push(i);
        true
    }

    /// Removes the earliest bucket if `expired(its instant)`, dropping its
    /// states unseen: cheaper than [`Buckets::pop_first_if`] with nothing to
    /// do per state, since a map of states without drop glue is cleared
    /// without visiting them. Returns whether a bucket was removed.
    pub(super) fn discard_first_if(&mut self, expired: impl FnOnce(Timestamp) -> bool) -> bool {
        let Some((_, i)) = self.unlink_first_if(expired) else {
            return false;
        };
        self.slab[i].clear();
        self.free.push(i);
        true
    }

    /// Takes the earliest bucket out of the index (and the caches) if
    /// `expired(its instant)`: its instant and slab entry, for the caller to
    /// empty and then free.
    fn unlink_first_if(&mut self, expired: impl FnOnce(Timestamp) -> bool) -> Option<(Timestamp, usize)> {
        let (&at, &i) = self.index.first_key_value()?;
        if !expired(at) {
            return None;
        }
        self.index.remove(&at);
        if self.cached.is_some_and(|(cached_at, _)| cached_at == at) {
            self.cached = None;
        }
        if self.previous.is_some_and(|(previous_at, _)| previous_at == at) {
            self.previous = None;
        }
        self.entries -= self.slab[i].len();
        Some((at, i))
    }

    /// The states for a checkpoint: serializes as [`BucketEntries`], each
    /// bucket's states in the order a firing visits them.
    pub(super) fn snapshot(&self) -> impl Serialize + '_
    where
        K: Serialize,
        S: Serialize,
    {
        SeqOf(|| self.index.iter().map(|(&at, &i)| (at, MapEntries(&self.slab[i]))))
    }

    /// The buckets of a [`Buckets::snapshot`]. Each bucket's states are
    /// inserted in the order they were stored, so a restored bucket usually
    /// fires its keys in the same order as the original — but a hash map's
    /// order also depends on its history, so that is not guaranteed.
    pub(super) fn from_snapshot(entries: BucketEntries<K, S>) -> Result<Self, String> {
        let mut buckets = Buckets::new();
        let mut previous = None;
        for (at, states) in entries {
            if previous.is_some_and(|p| p >= at) {
                return Err(format!("instant {at} is not after the one stored before it"));
            }
            previous = Some(at);
            if states.is_empty() {
                continue; // the original never holds an empty bucket; harmless
            }
            let mut map = key_map();
            map.reserve(states.len());
            for (key, state) in states {
                if map.insert(key, state).is_some() {
                    return Err(format!("a key is stored twice at instant {at}"));
                }
            }
            buckets.entries += map.len();
            buckets.index.insert(at, buckets.slab.len());
            buckets.slab.push(map);
        }
        Ok(buckets)
    }
}

/// Adds record `r` to its key's state in `bucket` (a function, not a
/// closure, so that it can be forced inline into the per-record loop).
#[inline(always)]
fn add_to<K: Hash + Eq, S, T>(
    bucket: &mut KeyMap<K, S>,
    entries: &mut usize,
    r: Record<(K, T)>,
    create: &impl Fn() -> S,
    add: &impl Fn(&mut S, &T),
) {
    let (key, value) = r.value;
    match bucket.get_mut(&key) {
        Some(state) => add(state, &value),
        None => {
            *entries += 1;
            add(bucket.entry(key).or_insert_with(create), &value);
        }
    }
}

/// Serializes a map's entries as a sequence of `(key, value)` pairs, in the
/// map's iteration order (not as a map: decoding a `HashMap` rehashes
/// every key).
pub(super) struct MapEntries<'a, K, S>(pub(super) &'a KeyMap<K, S>);

impl<K: Serialize, S: Serialize> Serialize for MapEntries<'_, K, S> {
    fn serialize<Z: Serializer>(&self, serializer: Z) -> Result<Z::Ok, Z::Error> {
        serializer.collect_seq(self.0.iter())
    }
}

/// Serializes what a closure's iterator yields, as a sequence (the closure
/// makes the view reusable: `serialize` takes `&self`).
pub(super) struct SeqOf<F>(pub(super) F);

impl<F, I> Serialize for SeqOf<F>
where
    F: Fn() -> I,
    I: Iterator,
    I::Item: Serialize,
{
    fn serialize<Z: Serializer>(&self, serializer: Z) -> Result<Z::Ok, Z::Error> {
        serializer.collect_seq((self.0)())
    }
}
