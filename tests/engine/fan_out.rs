//! Fan-out (one stream, several consumers) and union (several streams, one
//! consumer): every record reaches every consumer exactly once, and a
//! union's watermark is the minimum over its inputs.

use weir::prelude::*;
use weir::BuildError;

const N: i64 = 200_000;

#[test]
fn a_fanned_out_stream_reaches_every_branch_exactly_once_and_the_source_counts_once() {
    let job = JobBuilder::new("fan-out").batch_size(100).mailbox_capacity(4);
    let (all, all_got) = CollectSink::new();
    let (evens, evens_got) = CollectSink::new();
    let (counts, counts_got) = CollectSink::new();
    let numbers = job.source("numbers", IterSource::new(0..N), |n: &i64| *n / 10, WatermarkStrategy::monotonic());
    let [a, b, c] = numbers.fan_out();
    a.sink("all", all);
    b.filter(|n| n % 2 == 0).map(|n| n * 3).sink("evens", evens);
    c.key_by(|n| n % 7, 2).window("tens", Windows::tumbling(1_000)).aggregate(Count).sink("counts", counts);
    let report = job.build().unwrap().run_blocking().unwrap();

    assert_eq!(all_got.values(), (0..N).collect::<Vec<_>>(), "branch a: every record, in order");
    assert_eq!(evens_got.values(), (0..N).filter(|n| n % 2 == 0).map(|n| n * 3).collect::<Vec<_>>());
    let mut windows: Vec<(i64, i64, u64)> =
        counts_got.values().into_iter().map(|r| (r.window.start, r.key, r.value)).collect();
    windows.sort();
    let mut want = std::collections::BTreeMap::new();
    for n in 0..N {
        *want.entry((n / 10 / 1_000 * 1_000, n % 7)).or_insert(0u64) += 1;
    }
    let want: Vec<(i64, i64, u64)> = want.into_iter().map(|((w, k), c)| (w, k, c)).collect();
    assert_eq!(windows, want, "branch c: exact window counts");
    assert_eq!(report.metrics.source_records(), N as u64, "the source counts each record once");
}

#[test]
fn a_slow_branch_paces_the_producer_and_loses_nothing() {
    let job = JobBuilder::new("slow-branch").batch_size(64).mailbox_capacity(2);
    let (fast, fast_got) = CollectSink::new();
    let slow_seen = std::sync::Arc::new(std::sync::atomic::AtomicU64::new(0));
    let seen = std::sync::Arc::clone(&slow_seen);
    let slow = FnSink::new(move |r: Record<i64>| {
        if r.value % 64 == 0 {
            std::thread::sleep(std::time::Duration::from_micros(200));
        }
        seen.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    });
    let [a, b] =
        job.source("numbers", IterSource::new(0..50_000i64), |n: &i64| *n, WatermarkStrategy::monotonic()).fan_out();
    a.sink("fast", fast);
    b.sink("slow", slow);
    job.build().unwrap().run_blocking().unwrap();
    assert_eq!(fast_got.len(), 50_000);
    assert_eq!(slow_seen.load(std::sync::atomic::Ordering::Relaxed), 50_000);
}

#[test]
fn a_union_takes_the_minimum_watermark_so_a_lagging_input_is_not_late() {
    let job = JobBuilder::new("union").batch_size(50);
    // `fast` runs through event time unthrottled; `slow` is throttled to
    // 20,000 records/s: were the union's watermark `fast`'s, nearly all of
    // `slow`'s records would be late.
    let fast = job.source("fast", IterSource::new(0..20_000i64), |n: &i64| *n, WatermarkStrategy::monotonic());
    let slow = job.source(
        "slow",
        Throttled::new(IterSource::new(0..20_000i64), 20_000.0),
        |n: &i64| *n,
        WatermarkStrategy::monotonic(),
    );
    let (sink, got) = CollectSink::new();
    let (late, late_got) = CollectSink::new();
    fast.map(|n| (0u8, n))
        .union(slow.map(|n| (1u8, n)))
        .key_by(|(side, _)| *side, 2)
        .window("windows", Windows::tumbling(1_000))
        .late_data(|l| l.sink("late", late))
        .aggregate(Count)
        .sink("counts", sink);
    let report = job.build().unwrap().run_blocking().unwrap();
    assert_eq!(late_got.len(), 0, "no record is late behind the union's watermark");
    let total: u64 = got.values().iter().map(|r| r.value).sum();
    assert_eq!(total, 40_000);
    assert_eq!(got.len(), 40, "20 windows of 1,000 per input");
    assert!(got.values().iter().all(|r| r.value == 1_000));
    assert_eq!(report.metrics.source_records(), 40_000);
}

#[test]
fn a_stream_fanned_out_and_united_with_itself_doubles_every_record() {
    let job = JobBuilder::new("twice");
    let (sink, got) = CollectSink::new();
    let [a, b] =
        job.source("numbers", IterSource::new(0..1_000i64), |n: &i64| *n, WatermarkStrategy::monotonic()).fan_out();
    a.union(b.map(|n| n + 1_000_000)).sink("out", sink);
    job.build().unwrap().run_blocking().unwrap();
    let mut values = got.values();
    values.sort();
    let mut want: Vec<i64> = (0..1_000).chain(1_000_000..1_001_000).collect();
    want.sort();
    assert_eq!(values, want);
}

#[test]
fn an_unconnected_fan_out_branch_is_refused_when_built() {
    let job = JobBuilder::new("dangling");
    let (sink, _got) = CollectSink::new();
    let [a, _b] =
        job.source("numbers", IterSource::new(0..10i64), |n: &i64| *n, WatermarkStrategy::monotonic()).fan_out();
    a.sink("out", sink);
    match job.build() {
        Err(BuildError::Unconnected(what)) => assert!(what.contains("fan-out branch"), "{what}"),
        other => panic!("expected Unconnected, got {:?}", other.map(|_| ())),
    }
}

#[test]
fn a_union_of_two_jobs_streams_is_refused_when_built() {
    let (one, two) = (JobBuilder::new("one"), JobBuilder::new("two"));
    let (sink, _got) = CollectSink::new();
    let a = one.source("a", IterSource::new(0..10i64), |n: &i64| *n, WatermarkStrategy::monotonic());
    let b = two.source("b", IterSource::new(0..10i64), |n: &i64| *n, WatermarkStrategy::monotonic());
    a.union(b).sink("out", sink);
    match one.build() {
        Err(BuildError::InvalidParameter { node, value, .. }) => {
            assert_eq!(node, "union");
            assert!(value.contains("two different JobBuilders"), "{value}");
        }
        other => panic!("expected InvalidParameter, got {:?}", other.map(|_| ())),
    }
}

#[test]
fn split_routes_each_record_to_exactly_one_side_output_of_an_operator() {
    // A keyed stage emits its main result as Left and a side output (the
    // records it flags) as Right; every record leaves on exactly one side.
    let job = JobBuilder::new("split").batch_size(64);
    let (main, main_got) = CollectSink::new();
    let (side, side_got) = CollectSink::new();
    let (results, flagged) = job
        .source("numbers", IterSource::new(0..N), |n: &i64| *n, WatermarkStrategy::monotonic())
        .map(|n| if n % 5 == 0 { Either::Right(format!("flagged {n}")) } else { Either::Left(n * 2) })
        .split();
    results.filter(|n| n % 3 == 0).sink("main", main);
    flagged.sink("side", side);
    let report = job.build().unwrap().run_blocking().unwrap();
    assert_eq!(
        main_got.values(),
        (0..N).filter(|n| n % 5 != 0).map(|n| n * 2).filter(|n| n % 3 == 0).collect::<Vec<_>>()
    );
    assert_eq!(side_got.values(), (0..N).filter(|n| n % 5 == 0).map(|n| format!("flagged {n}")).collect::<Vec<_>>());
    let ts: Vec<i64> = side_got.records().iter().map(|r| r.ts).collect();
    assert_eq!(ts, (0..N).filter(|n| n % 5 == 0).collect::<Vec<_>>(), "each side record keeps its timestamp");
    assert_eq!(report.metrics.source_records(), N as u64);
}

#[test]
fn an_unconnected_side_of_a_split_is_refused_when_built() {
    let job = JobBuilder::new("half-split");
    let (sink, _got) = CollectSink::new();
    let (main, _side) = job
        .source("numbers", IterSource::new(0..10i64), |n: &i64| *n, WatermarkStrategy::monotonic())
        .map(|n| if n > 5 { Either::Left(n) } else { Either::Right(n) })
        .split();
    main.sink("out", sink);
    assert!(matches!(job.build(), Err(BuildError::Unconnected(_))));
}

#[test]
fn branches_on_other_threads_share_batches_and_each_gets_every_record_once() {
    // One thread per actor: every branch's sink runs elsewhere than the
    // source, so the fork hands them one shared batch each time.
    let job = JobBuilder::new("shared").batch_size(128).mailbox_capacity(4).placement(weir::Placement::ThreadPerActor);
    let sinks: Vec<_> = (0..3).map(|_| CollectSink::new()).collect();
    let numbers = job.source(
        "numbers",
        IterSource::new((0..N).map(|n| (n, format!("n{n}")))),
        |r: &(i64, String)| r.0,
        WatermarkStrategy::monotonic(),
    );
    let branches: [Stream<(i64, String)>; 3] = numbers.fan_out();
    let mut got = Vec::new();
    for (i, (branch, (sink, collected))) in branches.into_iter().zip(sinks).enumerate() {
        branch.sink(&format!("sink{i}"), sink);
        got.push(collected);
    }
    let report = job.build().unwrap().run_blocking().unwrap();
    let want: Vec<(i64, String)> = (0..N).map(|n| (n, format!("n{n}"))).collect();
    for (i, g) in got.iter().enumerate() {
        assert_eq!(g.values(), want, "branch {i}: every record once, in order");
    }
    assert_eq!(report.metrics.source_records(), N as u64);
}
