//! Count windows: per key, consecutive runs of `size` records.
//!
//! A key's records, in arrival order, fill one window after another; a
//! window fires on time as soon as it holds `size` records, and the next one
//! starts empty. Windows are numbered by position in the key's sequence:
//! `[0, size)`, `[size, 2 size)`, ... and a result carries the largest
//! timestamp of its records. Event time plays no part, so no record is ever
//! late; only end of input (watermark `i64::MAX`) matters: it fires every
//! partly filled window, so that no record is lost.
//!
//! A checkpoint stores every key's window being filled, empty ones too
//! (they hold the key's position), as a list of entries ([`CountSnapshot`]).

use std::hash::Hash;

use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};

use super::buckets::{key_map, KeyMap, MapEntries};
use super::core::Fired;
use super::kind::{emit, WindowKind};
use super::layout::Layout;
use crate::message::{Timestamp, END_OF_TIME};
use crate::window::{Aggregate, Timing, Window};

/// The window being filled for one key.
#[derive(Serialize, Deserialize)]
pub(super) struct Filling<Acc> {
    /// The aggregate of its records.
    acc: Acc,
    /// Position of its first record in the key's sequence.
    start: u64,
    /// Records in it (`< size`).
    len: u64,
    /// The largest timestamp of its records.
    max_ts: Timestamp,
    /// Records added since it last fired (early firing by count).
    since_fire: u64,
    /// Changed since it last fired (early firing by time).
    dirty: bool,
}

impl<Acc> Filling<Acc> {
    /// The window, by positions.
    fn window(&self, size: u64) -> Window {
        let position = |p: u64| i64::try_from(p).unwrap_or(i64::MAX);
        Window::new(position(self.start), position(self.start.saturating_add(size)))
    }

    /// Emits the window as it stands and starts counting afresh.
    fn fire<K, T, A: Aggregate<T, Acc = Acc>>(
        &mut self,
        agg: &A,
        key: K,
        size: u64,
        timing: Timing,
        out: &mut Fired<K, A::Out>,
    ) {
        emit(out, self.max_ts, key, self.window(size), agg.result(&self.acc), timing);
        self.since_fire = 0;
        self.dirty = false;
    }
}

/// The decoded form of [`CountWindows::snapshot`]: every key's window being
/// filled.
pub(super) type CountSnapshot<K, Acc> = Vec<(K, Filling<Acc>)>;

/// Count windows of every key.
pub(super) struct CountWindows<K, Acc> {
    /// Records per window.
    size: u64,
    /// Fire a window early every this many records.
    early_every: Option<u64>,
    /// The window being filled, by key (kept when empty: it holds the
    /// key's position).
    keys: KeyMap<K, Filling<Acc>>,
    /// Number of keys whose window holds at least one record.
    open: usize,
}

impl<K: Hash + Eq + Clone, Acc> CountWindows<K, Acc> {
    /// Windows of `size` records.
    pub(super) fn new(size: u64, early_every: Option<u64>) -> Self {
        CountWindows { size, early_every, keys: key_map(), open: 0 }
    }
}

impl<K, T, A> WindowKind<K, T, A> for CountWindows<K, A::Acc>
where
    K: Hash + Eq + Clone + Send + Serialize + DeserializeOwned + 'static,
    A: Aggregate<T>,
{
    const LAYOUT: Layout = Layout::Count;
    type Snapshot = CountSnapshot<K, A::Acc>;

    /// Adds a record to its key's window, which fires if now full (never
    /// late: event time plays no part).
    fn add(
        &mut self,
        agg: &A,
        _wm: Timestamp,
        key: K,
        ts: Timestamp,
        value: &T,
        out: &mut Fired<K, A::Out>,
    ) -> Option<K> {
        let (size, early_every) = (self.size, self.early_every);
        let open = &mut self.open;
        let mut take = |filling: &mut Filling<A::Acc>, key: K| {
            if filling.len == 0 {
                *open += 1;
            }
            agg.add(&mut filling.acc, value);
            filling.len += 1;
            filling.max_ts = filling.max_ts.max(ts);
            filling.dirty = true;
            filling.since_fire += 1;
            if filling.len == size {
                filling.fire(agg, key, size, Timing::OnTime, out);
                filling.acc = agg.create();
                filling.start = filling.start.saturating_add(size);
                filling.len = 0;
                filling.max_ts = Timestamp::MIN;
                *open -= 1;
            } else if early_every.is_some_and(|n| filling.since_fire >= n) {
                filling.fire(agg, key, size, Timing::Early, out);
            }
        };
        // Look up, and clone the key only for a key seen the first time.
        if let Some(filling) = self.keys.get_mut(&key) {
            take(filling, key);
        } else {
            let filling = self.keys.entry(key.clone()).or_insert_with(|| Filling {
                acc: agg.create(),
                start: 0,
                len: 0,
                max_ts: Timestamp::MIN,
                since_fire: 0,
                dirty: false,
            });
            take(filling, key);
        }
        None
    }

    /// At end of input, fires every partly filled window (by ascending
    /// window end) and forgets every key; other watermarks change nothing.
    fn on_watermark(&mut self, agg: &A, _previous: Timestamp, wm: Timestamp, out: &mut Fired<K, A::Out>) {
        if wm != END_OF_TIME {
            return;
        }
        let size = self.size;
        let mut partial: Vec<(K, Filling<A::Acc>)> = self.keys.drain().filter(|(_, f)| f.len > 0).collect();
        // Stable: keys with equal window ends stay in (deterministic) map order.
        partial.sort_by_key(|(_, f)| f.start);
        for (key, mut filling) in partial {
            filling.fire(agg, key, size, Timing::OnTime, out);
        }
        self.open = 0;
    }

    /// Fires early every partly filled window that changed since it last
    /// fired.
    fn fire_early(&mut self, agg: &A, _wm: Timestamp, out: &mut Fired<K, A::Out>) {
        let size = self.size;
        for (key, filling) in self.keys.iter_mut().filter(|(_, f)| f.dirty && f.len > 0) {
            filling.fire(agg, key.clone(), size, Timing::Early, out);
        }
    }

    /// Number of keys with a partly filled window.
    fn open_windows(&self) -> usize {
        self.open
    }

    /// The windows being filled, for a checkpoint (serializes as a
    /// [`CountSnapshot`]).
    fn snapshot(&self) -> impl Serialize + '_ {
        MapEntries(&self.keys)
    }

    /// Windows configured like these, holding the state of a snapshot.
    fn restored(&self, state: Self::Snapshot) -> Result<Self, String> {
        let mut me = CountWindows::new(self.size, self.early_every);
        me.keys.reserve(state.len());
        for (n, (key, filling)) in state.into_iter().enumerate() {
            // A full window fires and starts afresh at once.
            if filling.len >= me.size {
                return Err(format!("key #{n} holds {} records, a window holds {}", filling.len, me.size));
            }
            me.open += usize::from(filling.len > 0);
            if me.keys.insert(key, filling).is_some() {
                return Err(format!("key #{n} is stored twice"));
            }
        }
        Ok(me)
    }
}
