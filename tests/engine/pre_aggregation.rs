//! Local pre-aggregation before the key-by shuffle
//! (`WindowedStream::pre_aggregate`): the same results as without it, every
//! record accounted for, late records still delivered as themselves.
//!
//! Two source instances feed two window managers, so which records are late
//! depends on how the sources interleave; what cannot vary is that for every
//! (key, window) the last result plus the late records of that window equal
//! what a brute-force count of the stream gives.

use crate::support;

use std::collections::BTreeMap;
use std::time::Duration;

use support::wait_until;
use weir::prelude::*;
use weir::{push_source, ActorKind};
use weir_harness::workload::{event, Event, StreamParams};

const N: u64 = 200_000;
/// Window length: the stream spans 2 s of event time, so short windows give
/// many window ends for records to be late behind.
const WINDOW: i64 = 500;

fn params(keys: u64) -> StreamParams {
    StreamParams { events: N, keys, ..StreamParams::default() }
}

/// (key, window start) → (count, sum): the last firing of each window.
type Totals = BTreeMap<(u64, i64), (u64, i64)>;

struct Outcome {
    /// Last result of each (key, window).
    last: Totals,
    /// Late records, by the (key, window) they fell into.
    late: Totals,
    late_records: u64,
    windows_in: u64,
    pre_aggregated: u64,
}

/// Tumbling (or sliding) windows over the stream with
/// `keys` keys, two sources and two window managers, watermarks `bound` ms
/// behind (late records when `bound < 2000`), `lateness` allowed.
fn run(keys: u64, windows: Windows, bound: i64, lateness: i64, pre_aggregate: bool) -> Outcome {
    let p = params(keys);
    let job = JobBuilder::new("pre");
    let strategy = WatermarkStrategy::bounded_out_of_orderness(bound).with_interval(Duration::ZERO);
    let events = job.parallel_source(
        "gen",
        2,
        move |i| IterSource::new((i as u64..N).step_by(2).map(move |n| event(n, &p))),
        |e: &Event| e.ts,
        strategy,
    );
    let (late_sink, late_got) = CollectSink::new();
    let windowed = events
        .key_by(|e: &Event| e.key, 2)
        .window("windows", windows)
        .allowed_lateness(lateness)
        .pre_aggregate(pre_aggregate)
        .late_data(|late| late.sink("late", late_sink));
    let (sink, got) = CollectSink::new();
    windowed.aggregate((Count, Sum::of(|e: &Event| e.value))).sink("out", sink);
    let report = job.build().expect("valid job").run_blocking().expect("job runs");
    let mut last = Totals::new();
    for r in got.values() {
        // A later firing of a window (a late update) replaces the earlier.
        last.insert((r.key, r.window.start), r.value);
    }
    let mut late = Totals::new();
    let late_values = late_got.values();
    for (key, e) in &late_values {
        for start in starts(windows, e.ts) {
            let t = late.entry((*key, start)).or_default();
            t.0 += 1;
            t.1 += e.value;
        }
    }
    let m = report.metrics;
    Outcome {
        last,
        late,
        late_records: late_values.len() as u64,
        windows_in: m.of_kind(ActorKind::Window).map(|a| a.records_in).sum(),
        pre_aggregated: m.pre_aggregated_records(),
    }
}

/// Starts of the windows holding `ts`.
fn starts(windows: Windows, ts: i64) -> Vec<i64> {
    let (size, slide) = match windows {
        Windows::Tumbling { size } => (size, size),
        Windows::Sliding { size, slide } => (size, slide),
        other => panic!("not a time window: {other:?}"),
    };
    let last = ts.div_euclid(slide) * slide;
    (0..size / slide).map(|k| last - k * slide).collect()
}

/// (key, window start) → (count, sum) over the whole stream.
fn brute_force(keys: u64, windows: Windows) -> Totals {
    let p = params(keys);
    let mut t = Totals::new();
    for n in 0..N {
        let e = event(n, &p);
        for start in starts(windows, e.ts) {
            let w = t.entry((e.key, start)).or_default();
            w.0 += 1;
            w.1 += e.value;
        }
    }
    t
}

/// Every (key, window): last result + late records = the brute-force totals.
fn assert_accounted(o: &Outcome, want: &Totals) {
    for (w, &(count, sum)) in want {
        let got = o.last.get(w).copied().unwrap_or_default();
        let late = o.late.get(w).copied().unwrap_or_default();
        assert_eq!((got.0 + late.0, got.1 + late.1), (count, sum), "window {w:?}: result {got:?} + late {late:?}");
    }
    assert!(o.last.keys().all(|w| want.contains_key(w)), "a result for a window with no records");
}

#[test]
fn few_keys_are_pre_aggregated_with_exact_results() {
    let tumbling = Windows::tumbling(WINDOW);
    let want = brute_force(8, tumbling);
    let on = run(8, tumbling, 2_000, 0, true);
    let off = run(8, tumbling, 2_000, 0, false);
    assert_eq!(on.last, want);
    assert_eq!(off.last, want);
    assert_eq!((on.late_records, off.late_records), (0, 0));
    // Every record reached the window managers; with 8 keys nearly all of
    // them folded into partials, and none without pre-aggregation.
    assert_eq!((on.windows_in, off.windows_in), (N, N));
    assert!(on.pre_aggregated > N * 9 / 10, "{} of {N} pre-aggregated", on.pre_aggregated);
    assert_eq!(off.pre_aggregated, 0);
}

#[test]
fn late_records_still_reach_the_late_output_as_themselves() {
    // Watermarks 500 ms behind a stream disordered by up to 2 s: late
    // records, some within the allowed lateness (they update their window),
    // some beyond it (late-data output).
    let tumbling = Windows::tumbling(WINDOW);
    let want = brute_force(8, tumbling);
    for pre_aggregate in [true, false] {
        let o = run(8, tumbling, 500, 300, pre_aggregate);
        assert!(o.late_records > 0, "the stream has late records");
        assert_accounted(&o, &want);
        assert_eq!(o.windows_in, N);
        assert_eq!(o.pre_aggregated > 0, pre_aggregate);
    }
}

#[test]
fn sliding_windows_are_pre_aggregated_per_pane() {
    let sliding = Windows::sliding(WINDOW, 100);
    let want = brute_force(8, sliding);
    let on = run(8, sliding, 2_000, 0, true);
    assert_eq!(on.last, want);
    assert!(on.pre_aggregated > N * 9 / 10, "{} of {N} pre-aggregated", on.pre_aggregated);
    // (With late data a sliding window record whose earlier windows have
    // closed still updates the later ones and is not late, so the
    // per-window accounting of the tumbling test does not apply.)
}

#[test]
fn many_keys_travel_as_records_and_stay_exact() {
    // 100,000 keys: a batch of 1,024 records hardly repeats a key, so the
    // edge sends records as they are after a trial batch now and then.
    let tumbling = Windows::tumbling(WINDOW);
    let want = brute_force(100_000, tumbling);
    let on = run(100_000, tumbling, 2_000, 0, true);
    assert_eq!(on.last, want);
    assert_eq!(on.windows_in, N);
    assert!(on.pre_aggregated < N / 4, "{} of {N} pre-aggregated", on.pre_aggregated);
}

#[test]
fn an_input_that_was_idle_sends_its_late_records_as_themselves() {
    type Ev = (i64, u32);
    let (a, ha) = push_source::<Ev>(1024);
    let (b, hb) = push_source::<Ev>(1024);
    let mut sources = [Some(a), Some(b)];
    let strategy = WatermarkStrategy::monotonic()
        .with_interval(Duration::from_millis(5))
        .with_idle_timeout(Duration::from_millis(100));
    let job = JobBuilder::new("idle");
    let (late_sink, late) = CollectSink::new();
    let windowed = job
        .parallel_source(
            "pushed",
            2,
            move |i| sources[i].take().expect("one source per instance"),
            |e: &Ev| e.0,
            strategy,
        )
        .key_by(|e: &Ev| e.1, 2)
        .window("windows", Windows::tumbling(1000))
        .late_data(|stream| stream.sink("late", late_sink));
    let (sink, got) = CollectSink::new();
    windowed.aggregate(Count).sink("out", sink);
    let handle = job.build().expect("valid job").spawn().expect("starts");
    // `b` sends one record, then goes idle; `a` carries event time past
    // [0, 1000), which fires without waiting for `b`.
    hb.blocking_send((0, 7)).expect("open");
    for t in 0..25 {
        ha.blocking_send((t * 100, 7)).expect("open");
    }
    wait_until("window [0, 1000)", Duration::from_secs(10), || got.values().iter().any(|r| r.window.start == 0));
    // `b` comes back with three records of the closed window: had its edge
    // folded them (its own watermark is still behind 1000), they would be
    // lost; they must reach the late-data output one by one.
    for _ in 0..3 {
        hb.blocking_send((500, 7)).expect("open");
    }
    wait_until("the late records", Duration::from_secs(10), || late.values().len() == 3);
    drop((ha, hb));
    let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().expect("runtime");
    let report = rt
        .block_on(async { tokio::time::timeout(Duration::from_secs(20), handle.wait()).await })
        .expect("job ends")
        .expect("job succeeds");
    assert_eq!(late.values().iter().map(|(k, e)| (*k, e.0)).collect::<Vec<_>>(), vec![(7, 500); 3]);
    assert_eq!(report.metrics.late_records(), 3);
    let first = got.values().into_iter().find(|r| r.window.start == 0).expect("fired");
    assert_eq!(first.value, 11, "ten records of `a` and the first of `b`");
}
