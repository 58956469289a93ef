//! Keyed process functions against a brute-force model: event-time and
//! processing-time timers (due in order, once per key and time, deleted
//! ones never), state with a time to live, and snapshot/restore at a
//! random point, over random action sequences.

use std::collections::BTreeMap;
use std::time::Duration;

use proptest::prelude::*;

use crate::message::{Record, Timestamp};
use crate::process::{KeyedContext, KeyedProcess, KeyedProcessHarness, ListState, TimeDomain};

/// Keeps each key's record ids; a record registers an event timer at
/// `ts + delay` and a processing timer at `now + delay`, and, with an odd
/// id, deletes its key's event timer at `ts`. A timer emits `(key, at,
/// domain, ids held)` without renewing the state.
struct Probe;

const TTL: i64 = 50;

impl KeyedProcess for Probe {
    type Key = u8;
    type In = (u32, i64);
    type Out = (u8, Timestamp, bool, Vec<u32>);
    type State = ListState<u32>;

    fn process(&mut self, r: Record<(u32, i64)>, cx: &mut KeyedContext<'_, Self>) {
        let (id, delay) = r.value;
        cx.state().add(id);
        cx.register_event_timer(r.ts + delay);
        let now = cx.processing_time();
        cx.register_processing_timer(now + delay);
        if id % 2 == 1 {
            cx.delete_timer(TimeDomain::EventTime, r.ts);
        }
    }

    fn on_timer(&mut self, at: Timestamp, domain: TimeDomain, cx: &mut KeyedContext<'_, Self>) {
        let ids = cx.peek().map(|s| s.get().to_vec()).unwrap_or_default();
        let key = *cx.key();
        cx.emit(at, (key, at, domain == TimeDomain::EventTime, ids));
    }

    fn state_ttl(&self) -> Option<Duration> {
        Some(Duration::from_millis(TTL as u64))
    }
}

#[derive(Debug, Clone)]
enum Step {
    Record { key: u8, ts: i64, delay: i64 },
    Watermark(i64),
    Clock(i64),
    Checkpoint,
}

fn steps() -> impl Strategy<Value = Vec<Step>> {
    prop::collection::vec(
        prop_oneof![
            5 => (0u8..3, 0i64..200, 0i64..30).prop_map(|(key, ts, delay)| Step::Record { key, ts, delay }),
            2 => (0i64..250).prop_map(Step::Watermark),
            2 => (0i64..40).prop_map(Step::Clock),
            1 => Just(Step::Checkpoint),
        ],
        0..80,
    )
}

/// The model: per key its ids and last write; per timer `(event-time?,
/// at, key)` its registration order and whether it is live. A deleted
/// timer keeps its place until its time comes, so a timer deleted and
/// registered again fires where it was first registered.
#[derive(Default)]
struct Model {
    state: BTreeMap<u8, (Vec<u32>, i64)>,
    slots: BTreeMap<(bool, i64, u8), (u64, bool)>,
    order: u64,
    watermark: i64,
    now: i64,
    out: Vec<(u8, Timestamp, bool, Vec<u32>)>,
}

impl Model {
    fn expire(&mut self, key: u8) {
        if let Some((_, written)) = self.state.get(&key) {
            if self.now - written > TTL {
                self.state.remove(&key);
            }
        }
    }

    fn register(&mut self, event: bool, at: i64, key: u8) {
        self.order += 1;
        let order = self.order;
        self.slots.entry((event, at, key)).or_insert((order, true)).1 = true;
    }

    fn record(&mut self, id: u32, key: u8, ts: i64, delay: i64) {
        self.expire(key);
        let entry = self.state.entry(key).or_default();
        entry.0.push(id);
        entry.1 = self.now;
        self.register(true, ts + delay, key);
        self.register(false, self.now + delay, key);
        if id % 2 == 1 {
            if let Some(slot) = self.slots.get_mut(&(true, ts, key)) {
                slot.1 = false;
            }
        }
    }

    /// Fires the due timers of one domain: by time, then registration.
    fn fire(&mut self, event: bool, limit: i64) {
        loop {
            let next = self
                .slots
                .iter()
                .filter(|((ev, at, _), _)| *ev == event && *at <= limit)
                .min_by_key(|((_, at, _), (order, _))| (*at, *order))
                .map(|(k, v)| (*k, *v));
            let Some(((ev, at, key), (_, live))) = next else { return };
            self.slots.remove(&(ev, at, key));
            if !live {
                continue;
            }
            self.expire(key);
            let ids = self.state.get(&key).map(|s| s.0.clone()).unwrap_or_default();
            self.out.push((key, at, ev, ids));
        }
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(512))]

    #[test]
    fn timers_and_state_ttl_match_the_model_through_a_snapshot(steps in steps()) {
        let mut h = KeyedProcessHarness::new(Probe);
        let mut m = Model { watermark: i64::MIN, ..Model::default() };
        let mut got = Vec::new();
        for (i, step) in steps.iter().enumerate() {
            match *step {
                Step::Record { key, ts, delay } => {
                    h.process(key, ts, (i as u32, delay));
                    m.record(i as u32, key, ts, delay);
                }
                Step::Watermark(t) => {
                    h.watermark(t);
                    if t > m.watermark {
                        m.watermark = t;
                        m.fire(true, t);
                    }
                }
                Step::Clock(d) => {
                    m.now += d;
                    h.set_processing_time(m.now);
                    m.fire(false, m.now);
                    // The sweep only frees memory: what a key reads is the
                    // same with or without it.
                }
                Step::Checkpoint => {
                    got.extend(h.take_output());
                    let snap = h.snapshot().expect("encodes");
                    h = KeyedProcessHarness::restored(Probe, &snap, m.now).expect("decodes");
                }
            }
        }
        h.end();
        m.fire(true, i64::MAX);
        got.extend(h.take_output());
        let got: Vec<_> = got.into_iter().map(|r| r.value).collect();
        prop_assert_eq!(got, m.out);
    }
}
