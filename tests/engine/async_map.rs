//! `map_async`: calls per record with a bound on calls in flight, ordered
//! and unordered, backpressure when the bound is reached, failures and
//! timeouts as dead letters, and calls in flight carried through a
//! checkpoint.

use crate::support::{wait_until, within};

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering::SeqCst};
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;

use weir::dev::{Snapshot, SnapshotError, Source, SourceBatch, SourceStatus};
use weir::prelude::*;
use weir::{AsyncError, CheckpointConfig, JobError};

/// Counts calls in flight and the most seen at once.
#[derive(Debug, Default)]
struct InFlight {
    now: AtomicUsize,
    max: AtomicUsize,
}

impl InFlight {
    fn enter(&self) {
        let n = self.now.fetch_add(1, SeqCst) + 1;
        self.max.fetch_max(n, SeqCst);
    }
    fn leave(&self) {
        self.now.fetch_sub(1, SeqCst);
    }
}

#[test]
fn ordered_results_keep_input_order_with_calls_that_complete_out_of_order() {
    const N: i64 = 20_000;
    let job = JobBuilder::new("ordered").batch_size(256);
    let (sink, got) = CollectSink::new();
    let flight = Arc::new(InFlight::default());
    let f = Arc::clone(&flight);
    job.source("n", IterSource::new(0..N), |n: &i64| *n, WatermarkStrategy::monotonic())
        .map_async("lookup", 32, Duration::from_secs(10))
        .apply(move |n: i64| {
            let f = Arc::clone(&f);
            async move {
                f.enter();
                // Later records often complete first.
                tokio::time::sleep(Duration::from_micros(((N - n) % 7) as u64 * 150)).await;
                f.leave();
                Ok::<_, String>(n * 2)
            }
        })
        .sink("out", sink);
    let report = within(Duration::from_secs(120), move || job.build().unwrap().run_blocking()).unwrap();
    assert_eq!(got.values(), (0..N).map(|n| n * 2).collect::<Vec<_>>(), "every result once, in input order");
    let max = flight.max.load(SeqCst);
    assert!(max <= 32, "{max} calls in flight at once, capacity 32");
    assert!(max > 1, "calls overlapped ({max} at most)");
    assert_eq!(report.metrics.dead_letters(), 0);
}

#[test]
fn unordered_results_are_exact_and_a_window_after_them_sees_no_late_record() {
    const N: i64 = 30_000;
    let job = JobBuilder::new("unordered").batch_size(200);
    let (sink, got) = CollectSink::new();
    job.source("n", IterSource::new(0..N), |n: &i64| *n, WatermarkStrategy::bounded_out_of_orderness(0))
        .map_async("lookup", 64, Duration::from_secs(10))
        .unordered()
        .apply(|n: i64| async move {
            tokio::time::sleep(Duration::from_micros((n % 5) as u64 * 300)).await;
            Ok::<_, String>((n % 3, n))
        })
        .key_by(|(k, _)| *k, 2)
        .window("seconds", Windows::tumbling(1_000))
        .aggregate(Count)
        .sink("out", sink);
    let report = within(Duration::from_secs(120), move || job.build().unwrap().run_blocking()).unwrap();
    let mut got: Vec<(i64, i64, u64)> = got.values().into_iter().map(|r| (r.window.start, r.key, r.value)).collect();
    got.sort_unstable();
    let mut want = BTreeMap::new();
    for n in 0..N {
        *want.entry((n / 1_000 * 1_000, n % 3)).or_insert(0u64) += 1;
    }
    let want: Vec<(i64, i64, u64)> = want.into_iter().map(|((w, k), c)| (w, k, c)).collect();
    assert_eq!(got, want, "exact window counts");
    assert_eq!(report.metrics.late_records(), 0, "no result left behind its watermark");
}

#[test]
fn a_stage_at_its_bound_stops_its_source_and_loses_nothing_when_calls_resume() {
    const N: i64 = 1_000_000;
    let job = JobBuilder::new("bound").batch_size(100).mailbox_capacity(4);
    let gate = Arc::new(tokio::sync::Semaphore::new(0));
    let flight = Arc::new(InFlight::default());
    let results = Arc::new(AtomicU64::new(0));
    let (g, f, r) = (Arc::clone(&gate), Arc::clone(&flight), Arc::clone(&results));
    job.source("n", IterSource::new(0..N), |n: &i64| *n, WatermarkStrategy::monotonic())
        .map_async("lookup", 16, Duration::from_secs(60))
        .unordered()
        .apply(move |n: i64| {
            let (g, f) = (Arc::clone(&g), Arc::clone(&f));
            async move {
                f.enter();
                g.acquire().await.expect("the gate stays open once opened").forget();
                f.leave();
                Ok::<_, String>(n)
            }
        })
        .sink(
            "out",
            FnSink::new(move |_: Record<i64>| {
                r.fetch_add(1, SeqCst);
            }),
        );
    let handle = job.build().unwrap().spawn().unwrap();
    wait_until("the stage to reach its bound", Duration::from_secs(20), || flight.now.load(SeqCst) == 16);
    // While no call completes, the source is held back by full mailboxes:
    // its reads stay bounded by the mailboxes, one batch and the bound.
    for _ in 0..30 {
        let read = handle.metrics().source_records();
        assert!(read <= 3_000, "the source read {read} records while the stage was full");
        std::thread::sleep(Duration::from_millis(10));
    }
    assert_eq!(results.load(SeqCst), 0);
    gate.add_permits(N as usize);
    let report = within(Duration::from_secs(120), move || handle.wait_blocking()).unwrap();
    assert_eq!(results.load(SeqCst), N as u64, "every record once");
    assert_eq!(report.metrics.source_records(), N as u64);
    assert!(flight.max.load(SeqCst) <= 16);
}

#[test]
fn failed_and_timed_out_calls_are_dead_letters_with_their_record_and_why() {
    let job = JobBuilder::new("failures");
    let (sink, got) = CollectSink::new();
    let (dead, got_dead) = CollectSink::new();
    job.source("n", IterSource::new(0..1_000i64), |n: &i64| *n, WatermarkStrategy::monotonic())
        .map_async("lookup", 50, Duration::from_millis(50))
        .dead_letters(|failed| failed.sink("failed", dead))
        .apply(|n: i64| async move {
            match n % 100 {
                7 => Err(format!("no user {n}")),
                13 => {
                    std::future::pending::<()>().await;
                    unreachable!()
                }
                _ => Ok(n),
            }
        })
        .sink("out", sink);
    let report = within(Duration::from_secs(60), move || job.build().unwrap().run_blocking()).unwrap();
    let want: Vec<i64> = (0..1_000).filter(|n| n % 100 != 7 && n % 100 != 13).collect();
    assert_eq!(got.values(), want);
    let mut dead: Vec<(i64, i64, String, String)> = got_dead
        .records()
        .into_iter()
        .map(|r| (r.ts, r.value.input, r.value.actor.clone(), r.value.error.to_string()))
        .collect();
    dead.sort();
    let mut want_dead = Vec::new();
    for n in (0..1_000).filter(|n| n % 100 == 7 || n % 100 == 13) {
        let why = if n % 100 == 7 { format!("failed: no user {n}") } else { "timed out after 50 ms".into() };
        want_dead.push((n, n, "lookup#0".to_string(), why));
    }
    assert_eq!(dead, want_dead);
    assert_eq!(report.metrics.dead_letters(), 20);
}

#[test]
fn without_a_consumer_failures_are_counted() {
    let job = JobBuilder::new("counted");
    let (sink, got) = CollectSink::new();
    job.source("n", IterSource::new(0..500i64), |n: &i64| *n, WatermarkStrategy::monotonic())
        .map_async("lookup", 8, Duration::from_secs(5))
        .apply(|n: i64| async move {
            if n % 5 == 0 {
                Err(AsyncError::Failed("down".into()))
            } else {
                Ok(n)
            }
        })
        .sink("out", sink);
    let report = job.build().unwrap().run_blocking().unwrap();
    assert_eq!(got.len(), 400);
    assert_eq!(report.metrics.dead_letters(), 100);
}

#[test]
fn a_capacity_or_timeout_of_zero_is_refused_when_the_job_is_built() {
    for (capacity, timeout, parameter) in [(0, Duration::from_secs(1), "capacity"), (4, Duration::ZERO, "timeout")] {
        let job = JobBuilder::new("bad");
        job.source("n", IterSource::new(0..1i64), |n: &i64| *n, WatermarkStrategy::monotonic())
            .map_async("lookup", capacity, timeout)
            .apply(|n: i64| async move { Ok::<_, String>(n) })
            .sink("out", CollectSink::new().0);
        let err = job.build().unwrap_err().to_string();
        assert!(err.contains("lookup") && err.contains(parameter), "{err}");
    }
}

/// A replayable source of `0..n` (its position is the next number).
struct Counter {
    next: i64,
    end: i64,
}

impl Source for Counter {
    type Item = i64;

    fn poll_batch(&mut self, _cx: &mut Context<'_>, out: &mut SourceBatch<'_, i64>) -> Poll<SourceStatus> {
        let n = (out.remaining() as i64).min(self.end - self.next);
        out.extend(self.next..self.next + n);
        self.next += n;
        Poll::Ready(if self.next == self.end { SourceStatus::Exhausted } else { SourceStatus::Ready })
    }

    fn position(&self) -> Option<Snapshot> {
        Snapshot::encode(&self.next).ok()
    }

    fn seek(&mut self, position: &Snapshot) -> Result<(), SnapshotError> {
        self.next = position.decode()?;
        Ok(())
    }
}

/// Numbers `0..N` through a `map_async` whose calls for 1,000..1,010
/// wait on `gate`, counted per key in one window.
fn checkpointed_job(
    dir: &std::path::Path,
    gate: Arc<tokio::sync::Semaphore>,
    calls_of_1000: Arc<AtomicU64>,
) -> (JobBuilder, Collected<WindowResult<i64, u64>>) {
    const N: i64 = 3_000;
    let config = CheckpointConfig { interval: None, ..CheckpointConfig::new(dir, Duration::from_secs(10)) };
    let job = JobBuilder::new("checkpointed").batch_size(10).checkpointing(config);
    let (sink, got) = CollectSink::new();
    let source = Throttled::new(Counter { next: 0, end: N }, 4_000.0);
    job.source("n", source, |n: &i64| *n, WatermarkStrategy::monotonic())
        .map_async("lookup", 10_000, Duration::from_secs(60))
        .apply(move |n: i64| {
            let (gate, calls) = (Arc::clone(&gate), Arc::clone(&calls_of_1000));
            async move {
                if (1_000..1_010).contains(&n) {
                    if n == 1_000 {
                        calls.fetch_add(1, SeqCst);
                    }
                    gate.acquire().await.expect("never closed").forget();
                }
                Ok::<_, String>(n)
            }
        })
        .key_by(|n| n % 4, 1)
        .window("all", Windows::tumbling(1_000_000))
        .aggregate(Count)
        .sink("out", sink);
    (job, got)
}

#[test]
fn calls_in_flight_at_a_checkpoint_are_called_again_after_a_restore_and_counted_once() {
    let dir = tempfile::tempdir().unwrap();
    let calls_of_1000 = Arc::new(AtomicU64::new(0));
    // First run: the calls for 1,000..1,010 never complete.
    let closed = Arc::new(tokio::sync::Semaphore::new(0));
    let (job, _) = checkpointed_job(dir.path(), closed, Arc::clone(&calls_of_1000));
    let handle = job.build().unwrap().spawn().unwrap();
    wait_until("the calls for 1,000.. to start", Duration::from_secs(20), || {
        calls_of_1000.load(SeqCst) == 1 && handle.metrics().source_records() >= 1_100
    });
    let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
    let stats = rt.block_on(handle.stop_with_checkpoint()).expect("a checkpoint with calls in flight");
    assert!(stats.completed);
    assert!(matches!(handle.wait_blocking(), Err(JobError::Cancelled)));

    // Second run: calls complete; the ones in flight at the checkpoint are
    // called again, before anything newer.
    let open = Arc::new(tokio::sync::Semaphore::new(1_000));
    let (job, got) = checkpointed_job(dir.path(), open, Arc::clone(&calls_of_1000));
    let report = within(Duration::from_secs(60), move || job.build().unwrap().run_blocking()).unwrap();
    assert_eq!(report.resumed_from, Some(stats.seq));
    assert!(report.metrics.source_records() < 3_000, "the source resumed after its checkpointed position");
    assert_eq!(calls_of_1000.load(SeqCst), 2, "the call in flight at the checkpoint was made again");
    let mut counts: Vec<(i64, u64)> = got.values().into_iter().map(|r| (r.key, r.value)).collect();
    counts.sort_unstable();
    assert_eq!(counts, vec![(0, 750), (1, 750), (2, 750), (3, 750)], "every record counted once");
}
