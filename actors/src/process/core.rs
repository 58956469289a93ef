//! The state and timers of a keyed process function ([`Engine`], plain
//! data, driven by the actor core and by the harness alike), and its actor
//! core.

use std::collections::{BTreeMap, HashSet};
use std::time::Duration;

use foldhash::HashMap;
use serde::{Deserialize, Serialize};

use crate::checkpoint::Snapshot;
use crate::error::{OperatorError, SnapshotError};
use crate::message::{CheckpointId, Record, Timestamp};
use crate::output::outlet::Outlet;
use crate::process::{KeyedContext, KeyedProcess, TimeDomain, TimerRequests};
use crate::shell::{Core, Cx};

/// How often the actor looks at the wall clock for processing-time timers
/// and expired state.
const TICK: Duration = Duration::from_millis(10);

/// One key's state and when it was last written (processing time, ms).
#[derive(Debug)]
struct Entry<S> {
    state: Option<S>,
    written: Timestamp,
}

/// What a checkpoint holds (written from borrows, read back owned).
#[derive(Serialize)]
struct SnapshotRef<'a, K, S> {
    keys: Vec<(&'a K, &'a S, Timestamp)>,
    timers: Vec<(TimeDomain, Timestamp, &'a K)>,
    watermark: Timestamp,
}

#[derive(Deserialize)]
struct SnapshotOwned<K, S> {
    keys: Vec<(K, S, Timestamp)>,
    timers: Vec<(TimeDomain, Timestamp, K)>,
    watermark: Timestamp,
}

/// A keyed process function with its keys' state and timers.
pub(crate) struct Engine<F: KeyedProcess> {
    pub(crate) f: F,
    keys: HashMap<F::Key, Entry<F::State>>,
    /// Timers by time, per domain; `registered` says which are live (a
    /// deleted one stays in the queue and is skipped).
    event: BTreeMap<Timestamp, Vec<F::Key>>,
    processing: BTreeMap<Timestamp, Vec<F::Key>>,
    registered: HashSet<(TimeDomain, Timestamp, F::Key), foldhash::fast::RandomState>,
    requests: TimerRequests<F::Key>,
    pub(crate) out: Vec<Record<F::Out>>,
    pub(crate) watermark: Timestamp,
    ttl: Option<i64>,
    /// When expired state was last swept (processing time, ms).
    swept: Timestamp,
}

impl<F: KeyedProcess> std::fmt::Debug for Engine<F> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Engine").field("keys", &self.keys.len()).field("timers", &self.registered.len()).finish()
    }
}

impl<F: KeyedProcess> Engine<F> {
    pub(crate) fn new(f: F) -> Self {
        let ttl = f.state_ttl().map(|d| d.as_millis().min(i64::MAX as u128) as i64);
        Engine {
            f,
            keys: HashMap::default(),
            event: BTreeMap::new(),
            processing: BTreeMap::new(),
            registered: HashSet::default(),
            requests: TimerRequests { ops: Vec::new() },
            out: Vec::new(),
            watermark: i64::MIN,
            ttl,
            swept: i64::MIN,
        }
    }

    /// Runs `call` with `key`'s context (its state expired first if its
    /// time to live has passed), then keeps or drops the state and applies
    /// the timers it asked for.
    fn with_key(
        &mut self,
        key: F::Key,
        timestamp: Timestamp,
        now: Timestamp,
        call: impl FnOnce(&mut F, &mut KeyedContext<'_, F>),
    ) {
        let entry = self.keys.entry(key.clone()).or_insert(Entry { state: None, written: now });
        if let (Some(ttl), Some(_)) = (self.ttl, &entry.state) {
            if now.saturating_sub(entry.written) > ttl {
                entry.state = None;
            }
        }
        let mut written = false;
        let mut cx = KeyedContext {
            key: &key,
            state: &mut entry.state,
            written: &mut written,
            timers: &mut self.requests,
            out: &mut self.out,
            timestamp,
            watermark: self.watermark,
            now,
        };
        call(&mut self.f, &mut cx);
        if written {
            entry.written = now;
        }
        if entry.state.is_none() {
            self.keys.remove(&key);
        }
        self.apply_timers();
    }

    fn apply_timers(&mut self) {
        for (add, domain, at, key) in self.requests.ops.drain(..) {
            if !add {
                self.registered.remove(&(domain, at, key));
                continue;
            }
            if self.registered.insert((domain, at, key.clone())) {
                let queue = match domain {
                    TimeDomain::EventTime => &mut self.event,
                    TimeDomain::ProcessingTime => &mut self.processing,
                };
                queue.entry(at).or_default().push(key);
            }
        }
    }

    /// One record of `key`.
    pub(crate) fn record(&mut self, key: F::Key, record: Record<F::In>, now: Timestamp) {
        let ts = record.ts;
        self.with_key(key, ts, now, |f, cx| f.process(record, cx));
    }

    /// Fires the timers of `domain` due at `limit` (inclusive), in time
    /// order, including those registered meanwhile.
    fn fire(&mut self, domain: TimeDomain, limit: Timestamp, now: Timestamp) {
        loop {
            let queue = match domain {
                TimeDomain::EventTime => &mut self.event,
                TimeDomain::ProcessingTime => &mut self.processing,
            };
            let Some(entry) = queue.first_entry() else { return };
            if *entry.key() > limit {
                return;
            }
            let at = *entry.key();
            for key in entry.remove() {
                if self.registered.remove(&(domain, at, key.clone())) {
                    self.with_key(key, at, now, |f, cx| f.on_timer(at, domain, cx));
                }
            }
        }
    }

    /// The watermark advanced to `wm`: event-time timers up to it fire.
    pub(crate) fn advance(&mut self, wm: Timestamp, now: Timestamp) {
        if wm <= self.watermark {
            return;
        }
        self.watermark = wm;
        self.fire(TimeDomain::EventTime, wm, now);
    }

    /// The wall clock reads `now`: processing-time timers up to it fire,
    /// and expired state is dropped (at most once per time to live).
    pub(crate) fn tick(&mut self, now: Timestamp) {
        self.fire(TimeDomain::ProcessingTime, now, now);
        if let Some(ttl) = self.ttl {
            if now.saturating_sub(self.swept) >= ttl.max(1) {
                self.swept = now;
                self.keys.retain(|_, e| e.state.is_some() && now.saturating_sub(e.written) <= ttl);
            }
        }
    }

    /// Keys holding state.
    pub(crate) fn keys(&self) -> usize {
        self.keys.len()
    }

    /// The state of `key`, if any (expired state may still show until it
    /// is next touched or swept).
    pub(crate) fn state(&self, key: &F::Key) -> Option<&F::State> {
        self.keys.get(key).and_then(|e| e.state.as_ref())
    }

    pub(crate) fn snapshot(&self) -> Result<Snapshot, SnapshotError> {
        // Live timers in firing order (time, then registration), each once,
        // so that a restored job fires them in the same order.
        let mut timers = Vec::with_capacity(self.registered.len());
        let mut seen = HashSet::with_capacity_and_hasher(self.registered.len(), foldhash::fast::RandomState::default());
        for (domain, queue) in [(TimeDomain::EventTime, &self.event), (TimeDomain::ProcessingTime, &self.processing)] {
            for (&at, keys) in queue {
                for key in keys {
                    if self.registered.contains(&(domain, at, key.clone())) && seen.insert((domain, at, key)) {
                        timers.push((domain, at, key));
                    }
                }
            }
        }
        let snap = SnapshotRef {
            keys: self.keys.iter().filter_map(|(k, e)| e.state.as_ref().map(|s| (k, s, e.written))).collect(),
            timers,
            watermark: self.watermark,
        };
        Snapshot::encode(&snap)
    }

    pub(crate) fn restore(&mut self, state: &Snapshot) -> Result<(), SnapshotError> {
        let snap: SnapshotOwned<F::Key, F::State> = state.decode()?;
        self.keys.clear();
        self.event.clear();
        self.processing.clear();
        self.registered.clear();
        for (k, s, written) in snap.keys {
            self.keys.insert(k, Entry { state: Some(s), written });
        }
        self.requests.ops = snap.timers.into_iter().map(|(d, at, k)| (true, d, at, k)).collect();
        self.apply_timers();
        self.watermark = snap.watermark;
        Ok(())
    }
}

/// Milliseconds since the Unix epoch, now.
pub(crate) fn wall_clock() -> Timestamp {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_millis().min(i64::MAX as u128) as i64)
}

/// The actor core of a keyed process function.
pub(crate) struct ProcessCore<F: KeyedProcess>(pub(crate) Engine<F>);

impl<F: KeyedProcess> ProcessCore<F> {
    fn send(&mut self, out: &mut Outlet<F::Out>) {
        if !self.0.out.is_empty() {
            out.send_batch(&mut self.0.out);
        }
    }
}

impl<F: KeyedProcess> Core for ProcessCore<F> {
    type In = (F::Key, F::In);
    type Outputs = Outlet<F::Out>;

    fn on_batch(&mut self, batch: &mut Vec<Record<Self::In>>, cx: &mut Cx<'_, Self>) -> Result<(), OperatorError> {
        let now = wall_clock();
        for r in batch.drain(..) {
            let (key, value) = r.value;
            self.0.record(key, Record { ts: r.ts, value }, now);
        }
        self.send(cx.out());
        Ok(())
    }

    fn on_watermark(&mut self, wm: Timestamp, cx: &mut Cx<'_, Self>) -> Result<(), OperatorError> {
        self.0.advance(wm, wall_clock());
        self.send(cx.out());
        Ok(())
    }

    fn tick_interval(&self) -> Option<Duration> {
        Some(TICK)
    }

    fn on_tick(&mut self, cx: &mut Cx<'_, Self>) -> Result<(), OperatorError> {
        self.0.tick(wall_clock());
        self.send(cx.out());
        Ok(())
    }

    fn snapshot(&mut self, _id: CheckpointId) -> Result<Snapshot, OperatorError> {
        Ok(self.0.snapshot()?)
    }

    fn restore(&mut self, _id: CheckpointId, state: Snapshot) -> Result<(), OperatorError> {
        Ok(self.0.restore(&state)?)
    }
}
