//! Exact window contents through the public API, for every window kind.
//!
//! The jobs here use one source instance, batches of one record and a
//! watermark after every batch, so that the window manager sees records
//! and watermarks interleaved exactly as listed: the results are
//! deterministic.

use std::time::{Duration, Instant};

use weir::prelude::*;
use weir::WindowedStream;

/// (event time, key, value)
type Ev = (i64, char, i64);

fn strategy(bound: i64) -> WatermarkStrategy {
    WatermarkStrategy::bounded_out_of_orderness(bound).with_interval(Duration::ZERO)
}

type Windowed = WindowedStream<char, Ev>;
type Fired = (char, i64, i64, i64, Timing);

/// Runs `events` through `windows` (with `configure`) summing values; returns
/// results as (key, start, end, sum, timing) in firing order, and the late
/// records.
fn run(
    events: Vec<Ev>,
    bound: i64,
    windows: Windows,
    configure: impl FnOnce(Windowed) -> Windowed,
) -> (Vec<Fired>, Vec<(char, i64)>) {
    let job = JobBuilder::new("w").batch_size(1);
    let (sink, got) = CollectSink::new();
    let (late_sink, late) = CollectSink::new();
    let key: fn(&Ev) -> char = |e| e.1;
    let windowed = configure(
        job.source("events", IterSource::new(events), |e: &Ev| e.0, strategy(bound))
            .key_by(key, 1)
            .window("windows", windows),
    )
    .late_data(|late| late.sink("late", late_sink));
    windowed.aggregate(Sum::of(|e: &Ev| e.2)).sink("out", sink);
    job.build().unwrap().run_blocking().unwrap();
    let results = got.values().into_iter().map(|r| (r.key, r.window.start, r.window.end, r.value, r.timing)).collect();
    let late = late.values().into_iter().map(|(k, e)| (k, e.0)).collect();
    (results, late)
}

use Timing::{Early, Late, OnTime};

#[test]
fn tumbling_windows_take_out_of_order_records_and_route_late_ones() {
    let events = vec![
        (100, 'a', 1),
        (1500, 'a', 2), // watermark 500
        (900, 'a', 4),  // out of order, not late: [0, 1000) is still open
        (2100, 'b', 8), // watermark 1100: [0, 1000) fires
        (200, 'a', 16), // late: its only window closed
        (3500, 'a', 32),
    ];
    let (results, late) = run(events, 1000, Windows::tumbling(1000), |w| w);
    assert_eq!(
        results,
        vec![
            ('a', 0, 1000, 5, OnTime),
            ('a', 1000, 2000, 2, OnTime),
            ('b', 2000, 3000, 8, OnTime),
            ('a', 3000, 4000, 32, OnTime),
        ]
    );
    assert_eq!(late, vec![('a', 200)]);
}

#[test]
fn sliding_windows_count_each_record_in_every_window_it_falls_in() {
    let events = vec![(100, 'a', 1), (700, 'a', 2), (1200, 'a', 4)];
    let (mut results, late) = run(events, 0, Windows::sliding(1000, 500), |w| w);
    results.sort_by_key(|r| r.1);
    assert_eq!(
        results,
        vec![
            ('a', -500, 500, 1, OnTime),
            ('a', 0, 1000, 3, OnTime),
            ('a', 500, 1500, 6, OnTime),
            ('a', 1000, 2000, 4, OnTime),
        ]
    );
    assert!(late.is_empty());
}

#[test]
fn late_arriving_record_bridges_two_sessions_and_a_record_at_the_end_joins() {
    let events = vec![
        (0, 'a', 1),   // [0, 100)
        (180, 'a', 2), // [180, 280)
        (90, 'a', 4),  // [90, 190) overlaps both: one session [0, 280)
        (280, 'a', 8), // exactly at the end: joins, [0, 380)
    ];
    let (results, late) = run(events, 10_000, Windows::session(100), |w| w);
    assert_eq!(results, vec![('a', 0, 380, 15, OnTime)]);
    assert!(late.is_empty());
}

#[test]
fn session_fires_only_after_the_watermark_passes_its_end() {
    let events = vec![
        (0, 'a', 1),   // session a: [0, 100)
        (100, 'b', 2), // watermark 100 = a's end: a may not fire yet
        (100, 'a', 4), // at a's end, not late: joins, [0, 200)
        (300, 'c', 8), // watermark 300: a (and b) fire
    ];
    let (mut results, late) = run(events, 0, Windows::session(100), |w| w);
    results.sort_by_key(|r| r.0);
    assert_eq!(results, vec![('a', 0, 200, 5, OnTime), ('b', 100, 200, 2, OnTime), ('c', 300, 400, 8, OnTime)]);
    assert!(late.is_empty());
}

#[test]
fn late_record_within_allowed_lateness_refires_window_as_an_update() {
    let events = vec![
        (100, 'a', 1),
        (1200, 'b', 2), // watermark 1200: [0, 1000) of a fires
        (300, 'a', 4),  // late but within 500 ms of lateness: update
        (1600, 'b', 8), // watermark 1600: [0, 1000) is gone for good
        (400, 'a', 16), // late beyond the lateness: late output
    ];
    let (results, late) = run(events, 0, Windows::tumbling(1000), |w| w.allowed_lateness(500));
    assert_eq!(results, vec![('a', 0, 1000, 1, OnTime), ('a', 0, 1000, 5, Late), ('b', 1000, 2000, 10, OnTime),]);
    assert_eq!(late, vec![('a', 400)]);
}

#[test]
fn count_windows_fire_every_n_records_and_the_rest_at_end_of_input() {
    let events: Vec<Ev> = (0..7).map(|i| (i * 10, 'a', 1 << i)).collect();
    let (results, late) = run(events, 0, Windows::count(3), |w| w);
    assert_eq!(results, vec![('a', 0, 3, 7, OnTime), ('a', 3, 6, 56, OnTime), ('a', 6, 9, 64, OnTime)]);
    assert!(late.is_empty());
}

#[test]
fn early_firing_by_count_emits_partial_results_before_the_on_time_one() {
    let events: Vec<Ev> = (1..=5).map(|i| (i, 'a', i)).collect();
    let (results, _) = run(events, 0, Windows::tumbling(10_000), |w| w.early_firing_count(2));
    assert_eq!(results, vec![('a', 0, 10_000, 3, Early), ('a', 0, 10_000, 10, Early), ('a', 0, 10_000, 15, OnTime),]);
}

#[test]
fn early_firing_by_processing_time_reports_open_windows() {
    let (src, handle) = push_source::<Ev>(64);
    let job = JobBuilder::new("early");
    let (sink, got) = CollectSink::new();
    job.source("events", src, |e: &Ev| e.0, strategy(0))
        .key_by(|e| e.1, 1)
        .window("windows", Windows::tumbling(60_000))
        .early_firing_interval(Duration::from_millis(20))
        .aggregate(Count)
        .sink("out", sink);
    let running = job.build().unwrap().spawn().unwrap();
    for t in 0..3 {
        handle.blocking_send((t, 'a', 1)).unwrap();
    }
    let deadline = Instant::now() + Duration::from_secs(10);
    while !got.values().iter().any(|r| r.timing == Early && r.value == 3) {
        assert!(Instant::now() < deadline, "no early firing: {:?}", got.values());
        std::thread::sleep(Duration::from_millis(5));
    }
    drop(handle);
    let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
    rt.block_on(running.wait()).unwrap();
    let last = got.values().pop().unwrap();
    assert_eq!((last.value, last.timing), (3, OnTime));
}

#[test]
fn process_function_sees_every_record_of_the_window() {
    // Records kept for a process function are serializable (checkpoints).
    type Owned = (i64, char, i64);
    let events: Vec<Owned> = vec![(5, 'a', 3), (1, 'a', 1), (7, 'b', 9), (3, 'a', 2), (1500, 'a', 7)];
    let job = JobBuilder::new("process").batch_size(1);
    let (sink, got) = CollectSink::new();
    job.source("events", IterSource::new(events), |e: &Owned| e.0, strategy(10))
        .key_by(|e| e.1, 2)
        .window("windows", Windows::tumbling(1000))
        .apply(|key: &char, w: &Window, records: &[Owned]| {
            let mut v: Vec<i64> = records.iter().map(|e| e.2).collect();
            v.sort();
            format!("{key}@{}: {v:?}", w.start)
        })
        .sink("out", sink);
    job.build().unwrap().run_blocking().unwrap();
    let mut out: Vec<String> = got.values().into_iter().map(|r| r.value).collect();
    out.sort();
    assert_eq!(out, vec!["a@0: [1, 2, 3]", "a@1000: [7]", "b@0: [9]"]);
}
