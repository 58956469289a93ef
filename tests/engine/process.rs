//! Keyed process functions in a running job: per-key map state and
//! event-time timers give exact per-window counts, and a processing-time
//! timer fires on the wall clock.

use std::collections::BTreeMap;
use std::time::Duration;

use weir::prelude::*;
use weir::process::{KeyedContext, KeyedProcess, MapState, TimeDomain, ValueState};

/// Counts each key's records per 100 ms of event time in a map keyed by
/// window start, and emits `(key, start, count)` when the watermark passes
/// the window's last ms.
struct WindowCounter;

impl KeyedProcess for WindowCounter {
    type Key = u32;
    type In = (i64, u32);
    type Out = (u32, i64, u64);
    type State = MapState<i64, u64>;

    fn process(&mut self, r: Record<(i64, u32)>, cx: &mut KeyedContext<'_, Self>) {
        let start = r.ts - r.ts.rem_euclid(100);
        *cx.state().entry_or_insert_with(start, || 0) += 1;
        cx.register_event_timer(start + 99);
    }

    fn on_timer(&mut self, at: i64, _domain: TimeDomain, cx: &mut KeyedContext<'_, Self>) {
        let start = at - 99;
        let key = *cx.key();
        let count = cx.state().remove(&start).unwrap_or(0);
        if cx.peek().is_some_and(|s| s.is_empty()) {
            cx.clear();
        }
        cx.emit(at, (key, start, count));
    }
}

#[test]
fn map_state_and_event_timers_count_every_window_of_every_key_exactly() {
    // Out of order by up to 49 ms, watermark bound 50: nothing is late.
    let records: Vec<(i64, u32)> = (0..20_000i64).map(|i| ((i * 7 - (i * 31) % 50).max(0), (i % 13) as u32)).collect();
    let mut want = BTreeMap::new();
    for &(ts, key) in &records {
        *want.entry((key, ts - ts.rem_euclid(100))).or_insert(0u64) += 1;
    }
    let want: Vec<(u32, i64, u64)> = want.into_iter().map(|((k, s), c)| (k, s, c)).collect();
    for p in [1, 2] {
        let job = JobBuilder::new("process").batch_size(64);
        let (sink, got) = CollectSink::new();
        job.source(
            "events",
            IterSource::new(records.clone()),
            |r: &(i64, u32)| r.0,
            WatermarkStrategy::bounded_out_of_orderness(50),
        )
        .key_by(|r: &(i64, u32)| r.1, p)
        .process("counter", |_| WindowCounter)
        .sink("counts", sink);
        job.build().unwrap().run_blocking().unwrap();
        let mut counts = got.values();
        counts.sort();
        assert_eq!(counts, want, "p={p}");
        assert!(got.records().iter().all(|r| r.ts == r.value.1 + 99), "each count at its window's last ms");
    }
}

/// Emits each key's first record once its processing-time timer, 30 ms
/// after it arrived, fires.
struct Delay;

impl KeyedProcess for Delay {
    type Key = u8;
    type In = u8;
    type Out = (u8, i64);
    type State = ValueState<i64>;

    fn process(&mut self, r: Record<u8>, cx: &mut KeyedContext<'_, Self>) {
        if cx.peek().is_none() {
            cx.state().set(r.ts);
            let at = cx.processing_time() + 30;
            cx.register_processing_timer(at);
        }
    }

    fn on_timer(&mut self, _at: i64, domain: TimeDomain, cx: &mut KeyedContext<'_, Self>) {
        assert_eq!(domain, TimeDomain::ProcessingTime);
        let (key, ts) = (*cx.key(), cx.peek().and_then(|s| s.get().copied()).unwrap_or(-1));
        cx.emit(ts, (key, ts));
    }
}

#[test]
fn a_processing_time_timer_fires_on_the_wall_clock_while_the_job_runs() {
    let (src, handle) = push_source::<u8>(16);
    let job = JobBuilder::new("delay");
    let (sink, got) = CollectSink::new();
    job.source("pushed", src, |_k: &u8| 5, WatermarkStrategy::monotonic())
        .key_by(|k: &u8| *k, 1)
        .process("delay", |_| Delay)
        .sink("out", sink);
    let running = job.build().unwrap().spawn().unwrap();
    for k in [1u8, 2, 1] {
        handle.blocking_send(k).unwrap();
    }
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    while got.len() < 2 && std::time::Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(5));
    }
    let mut values = got.values();
    values.sort();
    assert_eq!(values, vec![(1, 5), (2, 5)], "one firing per key, while the input is still open");
    running.stop();
    let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
    rt.block_on(running.wait()).unwrap();
}
