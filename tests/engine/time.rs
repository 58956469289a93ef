//! Watermarks across inputs: the minimum over active inputs; an idle input
//! does not hold the watermark back.

use crate::support;

use std::time::Duration;

use support::wait_until;
use weir::prelude::*;
use weir::PushHandle;

type Ev = (i64, u32);

type Running = (JobHandle, PushHandle<Ev>, PushHandle<Ev>, Collected<WindowResult<u32, u64>>);

/// Two push sources feeding one window manager (two inputs).
fn two_input_job(strategy: WatermarkStrategy) -> Running {
    let (a, ha) = push_source::<Ev>(1024);
    let (b, hb) = push_source::<Ev>(1024);
    let mut sources = [Some(a), Some(b)];
    let job = JobBuilder::new("two-inputs");
    let (sink, got) = CollectSink::new();
    job.parallel_source(
        "pushed",
        2,
        move |i| sources[i].take().expect("one source per instance"),
        |e: &Ev| e.0,
        strategy,
    )
    .key_by(|e| e.1, 1)
    .window("counts", Windows::tumbling(1000))
    .aggregate(Count)
    .sink("out", sink);
    (job.build().unwrap().spawn().unwrap(), ha, hb, got)
}

fn finish(handle: JobHandle) -> weir::JobReport {
    let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
    rt.block_on(async { tokio::time::timeout(Duration::from_secs(20), handle.wait()).await })
        .expect("job ends")
        .unwrap()
}

#[test]
fn an_idle_source_does_not_stall_the_watermark() {
    let strategy = WatermarkStrategy::monotonic()
        .with_interval(Duration::from_millis(5))
        .with_idle_timeout(Duration::from_millis(100));
    let (handle, a, b, got) = two_input_job(strategy);
    for t in 0..20 {
        a.blocking_send((t * 100, 7)).unwrap();
    }
    // `b` says nothing and stays open: after its idle timeout it no longer
    // holds the watermark back, so window [0, 1000) fires.
    wait_until("the first window", Duration::from_secs(10), || !got.is_empty());
    let first = got.values()[0].clone();
    assert_eq!((first.key, first.window, first.value, first.timing), (7, Window::new(0, 1000), 10, Timing::OnTime));
    drop((a, b));
    finish(handle);
    let all: Vec<(i64, u64)> = got.values().iter().map(|r| (r.window.start, r.value)).collect();
    assert_eq!(all, vec![(0, 10), (1000, 10)]);
}

#[test]
fn a_multi_input_actor_takes_the_minimum_watermark() {
    let strategy = WatermarkStrategy::monotonic().with_interval(Duration::from_millis(5));
    let (handle, a, b, got) = two_input_job(strategy);
    for t in 0..20 {
        a.blocking_send((t * 100, 7)).unwrap();
    }
    b.blocking_send((0, 7)).unwrap();
    // Input a ends at 1900 (its end counts as the end of time), input b is
    // at 0: the window may not fire. Wait until the window manager has
    // taken everything input a sent — its source has finished, so all of
    // it was offered to the mailbox — and b's record and watermark (0):
    // the combined watermark is then the minimum, 0.
    drop(a);
    let counts = |h: &JobHandle| h.metrics().of_node("counts").next().cloned().expect("the window manager");
    let source_a_done = |h: &JobHandle| h.metrics().of_node("pushed").any(|s| s.watermark == i64::MAX);
    wait_until("input a to have ended and been taken", Duration::from_secs(10), || {
        let c = counts(&handle);
        source_a_done(&handle) && c.mailbox_len == 0 && c.records_in == 21 && c.watermark == 0
    });
    assert!(got.is_empty(), "fired before the slower input passed the window end: {:?}", got.values());
    b.blocking_send((1500, 7)).unwrap();
    wait_until("the window after the slower input advanced", Duration::from_secs(10), || !got.is_empty());
    assert_eq!(got.values()[0].value, 11);
    drop(b);
    finish(handle);
}

// ---- watermark alignment between the instances of a parallel source ----

use std::sync::atomic::{AtomicI64, AtomicU64, Ordering::SeqCst};
use std::sync::Arc;
use std::task::{Context, Poll};

use weir::dev::{Source, SourceBatch, SourceStatus};

/// Wraps instance `me` of a two-instance source: notes the newest event
/// time each instance has read and counts the polls at which this one had
/// already read more than `drift` ms beyond the other (an alignment
/// violation: it should not have been asked to read on).
struct Watched<S> {
    inner: S,
    me: usize,
    drift: i64,
    newest: Arc<[AtomicI64; 2]>,
    violations: Arc<AtomicU64>,
}

impl<S: Source<Item = Ev>> Source for Watched<S> {
    type Item = Ev;

    fn poll_batch(&mut self, cx: &mut Context<'_>, out: &mut SourceBatch<'_, Ev>) -> Poll<SourceStatus> {
        let own = self.newest[self.me].load(SeqCst);
        let other = self.newest[1 - self.me].load(SeqCst);
        if own != i64::MIN && own > other.saturating_add(self.drift) {
            self.violations.fetch_add(1, SeqCst);
        }
        let before = out.len();
        let status = self.inner.poll_batch(cx, out);
        if let Some(max) = out.items_from(before).map(|e| e.0).max() {
            self.newest[self.me].fetch_max(max, SeqCst);
        }
        status
    }
}

const DRIFT: i64 = 200;

/// Two instances, each reading 10,000 records (one per ms of event time):
/// instance 0 as fast as it can, instance 1 at 50,000 records/s. Returns
/// the violations of a drift of `DRIFT`, instance 0's alignment wait and
/// the windows' counts.
fn fast_and_slow(aligned: bool) -> (u64, Duration, u64) {
    let newest: Arc<[AtomicI64; 2]> = Arc::new([AtomicI64::new(i64::MIN), AtomicI64::new(i64::MIN)]);
    let violations = Arc::new(AtomicU64::new(0));
    let mut strategy = WatermarkStrategy::monotonic().with_interval(Duration::from_millis(5));
    if aligned {
        strategy = strategy.with_alignment(DRIFT);
    }
    let (n, v) = (Arc::clone(&newest), Arc::clone(&violations));
    let job = JobBuilder::new("aligned").batch_size(64);
    let (sink, got) = CollectSink::new();
    job.parallel_source(
        "readers",
        2,
        move |i| {
            let records: Vec<Ev> = (0..10_000).map(|t| (t, (t % 4) as u32)).collect();
            let rate = if i == 0 { f64::INFINITY } else { 50_000.0 };
            let inner = Throttled::new(IterSource::new(records), rate);
            Watched { inner, me: i, drift: DRIFT, newest: Arc::clone(&n), violations: Arc::clone(&v) }
        },
        |e: &Ev| e.0,
        strategy,
    )
    .key_by(|e| e.1, 2)
    .window("windows", Windows::tumbling(1000))
    .aggregate(Count)
    .sink("out", sink);
    let report = job.build().unwrap().run_blocking().unwrap();
    let fast = report.metrics.of_node("readers").find(|a| a.name == "readers#0").expect("instance 0").alignment_wait;
    let counted: u64 = got.values().iter().map(|r| r.value).sum();
    // Every window holds exactly its share: 4 keys x 10 windows, 2 x 1000
    // records each (250 per key and instance).
    assert_eq!(got.len(), 40);
    assert!(got.values().iter().all(|r| r.value == 500 && r.timing == Timing::OnTime), "{:?}", got.values());
    (violations.load(SeqCst), fast, counted)
}

#[test]
fn with_alignment_a_fast_instance_never_reads_further_ahead_than_the_drift() {
    let (violations, waited, counted) = fast_and_slow(true);
    assert_eq!(violations, 0, "instance 0 read more than 200 ms of event time ahead of instance 1");
    assert!(waited > Duration::ZERO, "instance 0 never waited for instance 1");
    assert_eq!(counted, 20_000);
}

#[test]
fn without_alignment_the_fast_instance_runs_ahead() {
    // The control of the test above: the same job, nothing holds instance
    // 0 back, so the violation counter does count.
    let (violations, waited, counted) = fast_and_slow(false);
    assert!(violations > 0, "instance 0 did not run ahead: the alignment test would prove nothing");
    assert_eq!(waited, Duration::ZERO);
    assert_eq!(counted, 20_000);
}

#[test]
fn an_idle_instance_does_not_hold_an_aligned_source_back() {
    let strategy = WatermarkStrategy::monotonic()
        .with_interval(Duration::from_millis(5))
        .with_idle_timeout(Duration::from_millis(100))
        .with_alignment(100);
    let (handle, a, b, got) = two_input_job(strategy);
    // Instance 1 says nothing: until its idle timeout it holds instance 0
    // at its first batch; then instance 0 reads everything, 3 s of event
    // time, far more than the drift.
    for t in 0..3_000 {
        a.blocking_send((t, 7)).unwrap();
    }
    wait_until("the first two windows", Duration::from_secs(10), || got.len() >= 2);
    let firsts: Vec<(i64, u64)> = got.values().iter().take(2).map(|r| (r.window.start, r.value)).collect();
    assert_eq!(firsts, vec![(0, 1000), (1000, 1000)]);
    drop((a, b));
    finish(handle);
    assert_eq!(got.values().iter().map(|r| r.value).sum::<u64>(), 3_000);
}

#[test]
fn an_alignment_drift_of_zero_is_a_build_error() {
    let job = JobBuilder::new("bad");
    job.source(
        "s",
        IterSource::new(vec![(0i64, 0u32)]),
        |e: &Ev| e.0,
        WatermarkStrategy::monotonic().with_alignment(0),
    )
    .sink("out", CollectSink::new().0);
    let err = job.build().expect_err("drift 0 is invalid").to_string();
    assert!(err.contains("alignment drift") && err.contains("must be > 0"), "{err}");
}

/// Two sources of one instance each, fast and slow as in `fast_and_slow`,
/// meeting in a union. Returns the violations of a drift of `DRIFT` and
/// what the windows counted.
fn two_sources(strategy: WatermarkStrategy) -> (u64, u64) {
    let newest: Arc<[AtomicI64; 2]> = Arc::new([AtomicI64::new(i64::MIN), AtomicI64::new(i64::MIN)]);
    let violations = Arc::new(AtomicU64::new(0));
    let job = JobBuilder::new("grouped").batch_size(64);
    let (sink, got) = CollectSink::new();
    let source = |me: usize| {
        let records: Vec<Ev> = (0..10_000).map(|t| (t, (t % 4) as u32)).collect();
        let rate = if me == 0 { f64::INFINITY } else { 50_000.0 };
        let inner = Throttled::new(IterSource::new(records), rate);
        let (newest, violations) = (Arc::clone(&newest), Arc::clone(&violations));
        Watched { inner, me, drift: DRIFT, newest, violations }
    };
    let fast = job.source("fast", source(0), |e: &Ev| e.0, strategy);
    let slow = job.source("slow", source(1), |e: &Ev| e.0, strategy);
    fast.union(slow).key_by(|e| e.1, 2).window("windows", Windows::tumbling(1000)).aggregate(Count).sink("out", sink);
    job.build().unwrap().run_blocking().unwrap();
    assert!(got.values().iter().all(|r| r.value == 500 && r.timing == Timing::OnTime), "{:?}", got.values());
    (violations.load(SeqCst), got.values().iter().map(|r| r.value).sum())
}

#[test]
fn sources_in_one_alignment_group_never_read_further_apart_than_the_drift() {
    let base = WatermarkStrategy::monotonic().with_interval(Duration::from_millis(5));
    let (violations, counted) = two_sources(base.with_alignment_group("both", DRIFT));
    assert_eq!(violations, 0, "the fast source read more than 200 ms of event time ahead of the slow one");
    assert_eq!(counted, 20_000);
    // The control: aligning each source only with itself holds nothing back.
    let (violations, counted) = two_sources(base.with_alignment(DRIFT));
    assert!(violations > 0, "the fast source did not run ahead: the test above would prove nothing");
    assert_eq!(counted, 20_000);
}

#[test]
fn an_alignment_group_named_with_two_drifts_is_a_build_error() {
    let job = JobBuilder::new("bad");
    let a = job.source("a", IterSource::new(vec![(0i64, 0u32)]), |e: &Ev| e.0, {
        WatermarkStrategy::monotonic().with_alignment_group("g", 100)
    });
    let b = job.source("b", IterSource::new(vec![(0i64, 0u32)]), |e: &Ev| e.0, {
        WatermarkStrategy::monotonic().with_alignment_group("g", 200)
    });
    a.union(b).sink("out", CollectSink::new().0);
    let err = job.build().expect_err("two drifts in one group").to_string();
    assert!(err.contains("\"b\"") || err.contains("b:") || err.contains(" b "), "names the source: {err}");
    assert!(err.contains("alignment drift") && err.contains("\"g\""), "{err}");
}
