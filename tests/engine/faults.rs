//! Faults end a job; they never hang it. A panic or an error anywhere — a
//! source, a user closure fused into an actor, an operator, a sink — fails
//! the job with an error naming the actor; so does an actix System stopped
//! under a running job. Barrier alignment holds a bounded number of
//! records however long a barrier is stalled.

use crate::support;

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};
use std::time::Duration;

use support::{wait_until, within};
use weir::dev::*;
use weir::prelude::*;
use weir::{CheckpointConfig, JobError, Placement, SinkError};

/// numbers → map → key_by(3) → tumbling(100) → count → sink, with hooks to
/// make a stage fail.
fn pipeline(
    job: &JobBuilder,
    map: impl FnMut(i64) -> i64 + Clone + Send + 'static,
    sink: impl Sink<WindowResult<i64, u64>>,
) {
    job.source("numbers", IterSource::new(0..10_000i64), |n: &i64| *n, WatermarkStrategy::monotonic())
        .map(map)
        .key_by(|n| n % 3, 2)
        .window("windows", Windows::tumbling(100))
        .aggregate(Count)
        .sink("out", sink);
}

fn expect_panic(result: Result<weir::JobReport, JobError>, actor: &str, message: &str) {
    match result {
        Err(JobError::Panicked { actor: a, message: m, during }) => {
            assert!(a.starts_with(actor), "the panic names the actor: {a} ({during}: {m})");
            assert!(m.contains(message), "the panic message is kept: {m}");
        }
        other => panic!("expected a panic of {actor}, got {other:?}"),
    }
}

#[test]
fn a_panicking_user_closure_fails_the_job_naming_the_actor_it_ran_in() {
    let job = JobBuilder::new("closure");
    let (sink, _) = CollectSink::new();
    pipeline(
        &job,
        |n| {
            if n == 5_000 {
                panic!("boom at {n}");
            }
            n
        },
        sink,
    );
    let result = within(Duration::from_secs(20), move || job.build().unwrap().run_blocking());
    // The map is fused into the source's actor.
    expect_panic(result, "numbers#0", "boom at 5000");
}

#[test]
fn a_panicking_sink_fails_the_job() {
    let job = JobBuilder::new("sink");
    pipeline(
        &job,
        |n| n,
        FnSink::new(|r: Record<WindowResult<i64, u64>>| {
            if r.value.window.start == 5_000 {
                panic!("the sink broke");
            }
        }),
    );
    let result = within(Duration::from_secs(20), move || job.build().unwrap().run_blocking());
    expect_panic(result, "out#0", "the sink broke");
}

/// An operator that panics on one record.
struct Fragile;

impl Operator for Fragile {
    type In = i64;
    type Out = i64;
    fn process(&mut self, batch: &mut Vec<Record<i64>>, _ctx: &mut OperatorContext, out: &mut Collector<'_, i64>) {
        for r in batch.drain(..) {
            assert!(r.value != 7_777, "operator choked on {}", r.value);
            out.emit(r.ts, r.value);
        }
    }
}

#[test]
fn a_panicking_operator_fails_the_job() {
    let job = JobBuilder::new("operator");
    let (sink, _) = CollectSink::new();
    job.source("numbers", IterSource::new(0..10_000i64), |n: &i64| *n, WatermarkStrategy::monotonic())
        .transform("fragile", |_| Fragile)
        .sink("out", sink);
    let result = within(Duration::from_secs(20), move || job.build().unwrap().run_blocking());
    expect_panic(result, "fragile#0", "operator choked on 7777");
}

/// A source that panics after a few batches.
struct Exploding(i64);

impl Source for Exploding {
    type Item = i64;
    fn poll_batch(&mut self, _cx: &mut Context<'_>, out: &mut SourceBatch<'_, i64>) -> Poll<SourceStatus> {
        if self.0 >= 3_000 {
            panic!("the source exploded at {}", self.0);
        }
        for _ in 0..out.remaining().min(100) {
            out.push(self.0);
            self.0 += 1;
        }
        Poll::Ready(SourceStatus::Ready)
    }
}

#[test]
fn a_panicking_source_fails_the_job() {
    let job = JobBuilder::new("source");
    let (sink, _) = CollectSink::new();
    job.source("exploding", Exploding(0), |n: &i64| *n, WatermarkStrategy::monotonic()).sink("out", sink);
    let result = within(Duration::from_secs(20), move || job.build().unwrap().run_blocking());
    expect_panic(result, "exploding#0", "the source exploded at 3000");
}

/// A sink that fails on the record 50 and counts its pre-commits.
struct Failing {
    pre_commits: Arc<AtomicU64>,
}

impl Sink<i64> for Failing {
    fn write(&mut self, batch: &mut Vec<Record<i64>>) -> Result<(), SinkError> {
        if batch.drain(..).any(|r| r.value == 50) {
            return Err(SinkError::Other("disk full".into()));
        }
        Ok(())
    }
    fn pre_commit(&mut self, _id: weir::CheckpointId) -> Result<Snapshot, SinkError> {
        self.pre_commits.fetch_add(1, Ordering::SeqCst);
        Ok(Snapshot::empty())
    }
}

#[test]
fn a_failed_sink_fails_the_job_and_never_pre_commits_again() {
    let dir = tempfile::tempdir().unwrap();
    let (source, push) = push_source::<i64>(1024);
    let pre_commits = Arc::new(AtomicU64::new(0));
    let job = JobBuilder::new("failing").batch_size(10).checkpointing(CheckpointConfig::on_demand(dir.path()));
    job.source("pushed", source, |n: &i64| *n, WatermarkStrategy::monotonic())
        .sink("out", Failing { pre_commits: Arc::clone(&pre_commits) });
    let handle = job.build().unwrap().spawn().unwrap();
    let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
    for i in 0..10 {
        push.blocking_send(i).unwrap();
    }
    wait_until("ten records written", Duration::from_secs(10), || handle.metrics().sink_records() == 10);
    rt.block_on(handle.checkpoint()).expect("a checkpoint before the failure completes");
    assert_eq!(pre_commits.load(Ordering::SeqCst), 1);
    for i in 10..100 {
        let _ = push.blocking_send(i);
    }
    match within(Duration::from_secs(20), move || handle.wait_blocking()) {
        Err(JobError::Sink { actor, source }) => {
            assert_eq!(actor, "out#0");
            assert!(source.to_string().contains("disk full"), "{source}");
        }
        other => panic!("expected the sink's error, got {other:?}"),
    }
    assert_eq!(pre_commits.load(Ordering::SeqCst), 1, "a failed sink never pre-commits");
}

#[test]
fn wait_returns_an_error_when_the_actix_system_stops_under_the_job() {
    let (source, push) = push_source::<i64>(16);
    let job = JobBuilder::new("orphaned");
    let (sink, _) = CollectSink::new();
    job.source("pushed", source, |n: &i64| *n, WatermarkStrategy::monotonic()).sink("out", sink);
    let job = job.build().unwrap();
    let (tx, rx) = std::sync::mpsc::channel();
    let system = std::thread::spawn(move || {
        let sys = actix::System::new();
        sys.block_on(async move {
            tx.send(job.start().unwrap()).unwrap();
            actix::clock::sleep(Duration::from_millis(100)).await;
        });
        // What actix-web does on Ctrl-C: the System stops, and with it
        // every Arbiter of the job.
        actix::System::current().stop();
        sys.run().unwrap();
    });
    let handle = rx.recv().unwrap();
    let result = within(Duration::from_secs(20), move || handle.wait_blocking());
    assert!(matches!(result, Err(JobError::Stopped { .. })), "{result:?}");
    system.join().unwrap();
    drop(push);
}

/// Instance 0 reads an endless stream; instance 1 reads one record, then
/// blocks its thread (a stalled input: its barrier cannot come) until
/// released, then ends.
enum Mixed {
    Endless(i64),
    Stalled { release: Arc<AtomicBool>, read: bool },
}

impl Source for Mixed {
    type Item = i64;
    fn poll_batch(&mut self, _cx: &mut Context<'_>, out: &mut SourceBatch<'_, i64>) -> Poll<SourceStatus> {
        match self {
            Mixed::Endless(next) => {
                for _ in 0..out.remaining() {
                    out.push(*next);
                    *next += 1;
                }
                Poll::Ready(SourceStatus::Ready)
            }
            Mixed::Stalled { release, read } => {
                if !*read {
                    *read = true;
                    out.push(0);
                    return Poll::Ready(SourceStatus::Ready);
                }
                while !release.load(Ordering::SeqCst) {
                    std::thread::sleep(Duration::from_millis(1));
                }
                Poll::Ready(SourceStatus::Exhausted)
            }
        }
    }
}

#[test]
fn a_stalled_barrier_holds_at_most_the_alignment_cap_and_backpressures_the_other_input() {
    let dir = tempfile::tempdir().unwrap();
    let release = Arc::new(AtomicBool::new(false));
    let cap = 1_000;
    let config = CheckpointConfig { alignment_cap: cap, ..CheckpointConfig::on_demand(dir.path()) };
    let job = JobBuilder::new("aligned")
        .batch_size(100)
        .mailbox_capacity(4)
        .placement(Placement::ThreadPerActor)
        .checkpointing(config);
    let (sink, got) = CollectSink::new();
    let r = Arc::clone(&release);
    let sources = Mutex::new(vec![Mixed::Stalled { release: r, read: false }, Mixed::Endless(1)]);
    job.parallel_source(
        "numbers",
        2,
        move |_| sources.lock().unwrap().pop().unwrap(),
        |n: &i64| *n / 1000,
        WatermarkStrategy::monotonic(),
    )
    .key_by(|_| 0u8, 1)
    .window("windows", Windows::tumbling(1 << 40))
    .aggregate(Count)
    .sink("out", sink);
    let handle = job.build().unwrap().spawn().unwrap();
    let fast = |h: &JobHandle| h.metrics().of_node("numbers").map(|a| a.records_out).sum::<u64>();
    wait_until("both instances to read", Duration::from_secs(10), || fast(&handle) > 10_000);

    // The fast instance's barrier arrives; the stalled one's cannot.
    let h = handle.clone();
    let checkpoint = std::thread::spawn(move || {
        let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
        rt.block_on(h.checkpoint())
    });
    let mut last = fast(&handle);
    let started = std::time::Instant::now();
    loop {
        std::thread::sleep(Duration::from_millis(300));
        let now = fast(&handle);
        if now == last {
            break;
        }
        assert!(started.elapsed() < Duration::from_secs(10), "the fast input was never held back: {now} records read");
        last = now;
    }
    let window = handle.metrics().of_node("windows").next().map(|a| a.records_in);
    let read_while_aligning = last;
    let counted = handle.metrics().of_kind(weir::ActorKind::Window).map(|a| a.records_in).sum::<u64>();
    // Held back: at most the cap, plus the mailbox (capacity and one slot
    // per sender) and the batch each edge was filling.
    assert!(
        read_while_aligning - counted <= (cap + (4 + 2 + 2) * 100) as u64,
        "{read_while_aligning} read, {counted} handled ({window:?})"
    );

    // The stalled input comes back: the checkpoint completes, the fast input
    // resumes, and every record is counted once.
    release.store(true, Ordering::SeqCst);
    let stats = checkpoint.join().unwrap().expect("the checkpoint completes once the barrier comes");
    assert!(stats.completed);
    wait_until("the fast input to resume", Duration::from_secs(10), || fast(&handle) > read_while_aligning + 10_000);
    handle.stop();
    let report = within(Duration::from_secs(20), move || handle.wait_blocking()).expect("the job drains");
    let total: u64 = got.values().iter().map(|r| r.value).sum();
    assert_eq!(total, report.metrics.source_records(), "every record read is counted exactly once");
}

/// A sink whose first write is slow (a long disk write, say) and that
/// says whether it is inside that write and whether it was dropped.
struct SlowSink {
    busy: Arc<AtomicBool>,
    dropped: Arc<AtomicBool>,
    wrote: bool,
}

impl Sink<i64> for SlowSink {
    fn write(&mut self, batch: &mut Vec<Record<i64>>) -> Result<(), SinkError> {
        batch.clear();
        if !std::mem::replace(&mut self.wrote, true) {
            self.busy.store(true, Ordering::SeqCst);
            std::thread::sleep(Duration::from_millis(300));
            self.busy.store(false, Ordering::SeqCst);
        }
        Ok(())
    }
}

impl Drop for SlowSink {
    fn drop(&mut self) {
        self.dropped.store(true, Ordering::SeqCst);
    }
}

/// Reads one record, then panics as soon as the sink is busy with it.
struct PanicsWhenBusy {
    busy: Arc<AtomicBool>,
    read: bool,
}

impl Source for PanicsWhenBusy {
    type Item = i64;
    fn poll_batch(&mut self, cx: &mut Context<'_>, out: &mut SourceBatch<'_, i64>) -> Poll<SourceStatus> {
        if !std::mem::replace(&mut self.read, true) {
            out.push(1);
            return Poll::Ready(SourceStatus::Ready);
        }
        assert!(!self.busy.load(Ordering::SeqCst), "the source fails while the sink writes");
        cx.waker().wake_by_ref();
        Poll::Pending
    }
}

#[test]
fn no_actor_of_a_failed_job_runs_once_wait_returns() {
    let (busy, dropped) = (Arc::new(AtomicBool::new(false)), Arc::new(AtomicBool::new(false)));
    let job = JobBuilder::new("slow-sink").placement(Placement::ThreadPerActor);
    job.source(
        "source",
        PanicsWhenBusy { busy: Arc::clone(&busy), read: false },
        |n: &i64| *n,
        WatermarkStrategy::monotonic(),
    )
    .sink("out", SlowSink { busy: Arc::clone(&busy), dropped: Arc::clone(&dropped), wrote: false });
    let result = within(Duration::from_secs(20), move || job.build().unwrap().run_blocking());
    expect_panic(result, "source#0", "the source fails while the sink writes");
    // A job restarted in this process on the same files must never meet
    // an actor of this one still at work.
    assert!(!busy.load(Ordering::SeqCst), "the sink is still writing after wait returned");
    assert!(dropped.load(Ordering::SeqCst), "the sink was dropped before wait returned");
}
