//! Checkpoints: alignment, corrupt snapshots, topology mismatch, stop with
//! a checkpoint and resume.

use crate::support;

use std::time::Duration;

use support::wait_until;
use weir::prelude::*;
use weir::{CheckpointConfig, JobError, LocalDirBackend, StateBackend};
use weir_harness::workload::{self, Checksum, StreamParams, Workload, WorkloadSpec};

fn on_demand(dir: &std::path::Path) -> CheckpointConfig {
    CheckpointConfig { interval: None, ..CheckpointConfig::new(dir, Duration::from_secs(1)) }
}

type Ev = (i64, u32);

/// Two push sources, p=2 window managers counting everything per key.
/// The running job, a push handle per source, and what the sink collected.
type TwoSources = (JobHandle, PushHandle<Ev>, PushHandle<Ev>, Collected<WindowResult<u32, u64>>);

fn two_source_job(dir: &std::path::Path) -> TwoSources {
    let (a, ha) = push_source::<Ev>(4096);
    let (b, hb) = push_source::<Ev>(4096);
    let mut sources = [Some(a), Some(b)];
    let job = JobBuilder::new("aligned").checkpointing(on_demand(dir));
    let (sink, got) = CollectSink::new();
    job.parallel_source(
        "pushed",
        2,
        move |i| sources[i].take().expect("once"),
        |e: &Ev| e.0,
        WatermarkStrategy::monotonic(),
    )
    .key_by(|e| e.1, 2)
    .window("windows", Windows::tumbling(1_000_000))
    .aggregate(Count)
    .sink("out", sink);
    (job.build().unwrap().spawn().unwrap(), ha, hb, got)
}

#[test]
fn snapshot_holds_exactly_the_records_before_the_barrier() {
    let dir = tempfile::tempdir().unwrap();
    let (job, a, b, _) = two_source_job(dir.path());
    for i in 0..1000 {
        a.blocking_send((i, (i % 7) as u32)).unwrap();
        b.blocking_send((i, (i % 5) as u32)).unwrap();
    }
    wait_until("both sources to read their records", Duration::from_secs(20), || {
        job.metrics().source_records() == 2000
    });
    let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
    let stats = rt.block_on(job.checkpoint()).expect("the checkpoint completes");
    assert!(stats.completed && stats.bytes > 0, "{stats:?}");
    // Records after the barrier must not be in the snapshot.
    for i in 1000..1500 {
        a.blocking_send((i, 1)).unwrap();
        b.blocking_send((i, 2)).unwrap();
    }
    wait_until("the later records to be read", Duration::from_secs(20), || job.metrics().source_records() == 3000);
    job.cancel();
    assert!(matches!(job.wait_blocking(), Err(JobError::Cancelled)));
    drop((a, b));

    // Resume: the window state has exactly the 2,000 records before the
    // barrier (push sources cannot replay the rest).
    let (job, a, b, got) = two_source_job(dir.path());
    drop((a, b));
    job.wait_blocking().unwrap();
    let total: u64 = got.values().iter().map(|r| r.value).sum();
    assert_eq!(total, 2000);
}

fn wl1_spec(dir: &std::path::Path, p: usize) -> WorkloadSpec {
    WorkloadSpec {
        stream: StreamParams { events: 3_000_000, keys: 16, ..StreamParams::default() },
        parallelism: p,
        throttle: Some(2_000_000.0),
        checkpoint: Some(on_demand(dir)),
        ..WorkloadSpec::new(Workload::Wl1)
    }
}

const WL1_K16: Checksum =
    Checksum { rows: 48, events: 3_000_000, total: 1_498_945_689, digest: 14_218_170_467_609_890_282 };

#[test]
fn stop_with_checkpoint_then_resume_gives_the_failure_free_result() {
    let dir = tempfile::tempdir().unwrap();
    let (builder, _) = workload::build(&wl1_spec(dir.path(), 2));
    let job = builder.build().unwrap().spawn().unwrap();
    // Part-way: a million of the three million events read.
    wait_until("a third of the events", Duration::from_secs(20), || job.metrics().source_records() >= 1_000_000);
    let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
    let stats = rt.block_on(job.stop_with_checkpoint()).expect("a final checkpoint");
    assert!(stats.completed);
    assert!(matches!(job.wait_blocking(), Err(JobError::Cancelled)));

    let (builder, outputs) = workload::build(&wl1_spec(dir.path(), 2));
    let report = builder.build().unwrap().run_blocking().unwrap();
    assert_eq!(report.resumed_from, Some(stats.seq), "it resumed from the final checkpoint");
    // The resumed run read only what came after the checkpoint's position:
    // a checkpoint at position 0 (or at the end) would fail this.
    let read = report.metrics.source_records();
    assert!((1..=2_000_000).contains(&read), "the resumed run read {read} of 3,000,000 events");
    assert_eq!(outputs.result().checksum, WL1_K16);
}

#[test]
fn corrupt_newest_checkpoint_is_reported_and_the_previous_one_restored() {
    let dir = tempfile::tempdir().unwrap();
    let (builder, _) = workload::build(&wl1_spec(dir.path(), 1));
    let job = builder.build().unwrap().spawn().unwrap();
    let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
    std::thread::sleep(Duration::from_millis(200));
    let first = rt.block_on(job.checkpoint()).unwrap();
    std::thread::sleep(Duration::from_millis(200));
    let second = rt.block_on(job.stop_with_checkpoint()).unwrap();
    assert!(second.seq > first.seq);
    let _ = job.wait_blocking();

    // Flip bytes in a snapshot of the newest checkpoint.
    let newest = std::fs::read_dir(dir.path())
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.file_name().unwrap().to_string_lossy().starts_with("chk-"))
        .max()
        .unwrap();
    let victim = std::fs::read_dir(&newest)
        .unwrap()
        .map(|e| e.unwrap().path())
        .find(|p| !p.file_name().unwrap().to_string_lossy().starts_with('_'))
        .unwrap();
    let mut bytes = std::fs::read(&victim).unwrap();
    let n = bytes.len();
    bytes[n - 1] ^= 0xFF;
    bytes[n / 2] ^= 0xFF;
    std::fs::write(&victim, bytes).unwrap();

    let backend = LocalDirBackend::new(dir.path(), 3).unwrap();
    let latest = backend.latest().unwrap().expect("a complete checkpoint remains");
    assert_eq!(latest.meta.id.seq, first.seq, "the previous complete checkpoint is used");
    assert_eq!(latest.skipped.len(), 1);
    assert!(
        latest.skipped[0].to_string().contains(&victim.file_name().unwrap().to_string_lossy().to_string()),
        "{}",
        latest.skipped[0]
    );

    let (builder, outputs) = workload::build(&wl1_spec(dir.path(), 1));
    builder.build().unwrap().run_blocking().unwrap();
    assert_eq!(outputs.result().checksum, WL1_K16, "resumed from the older checkpoint, exactly once");
}

#[test]
fn a_checkpoint_of_another_topology_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let (builder, _) = workload::build(&wl1_spec(dir.path(), 1));
    let job = builder.build().unwrap().spawn().unwrap();
    let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
    rt.block_on(job.stop_with_checkpoint()).unwrap();
    let _ = job.wait_blocking();
    let (builder, _) = workload::build(&wl1_spec(dir.path(), 2));
    match builder.build().unwrap().run_blocking() {
        Err(e @ JobError::Restore { .. }) => assert!(e.to_string().contains("different topology"), "{e}"),
        other => panic!("expected a refusal, got {other:?}"),
    }
}

/// Sessions of a few keys written exactly once to `out` as JSON lines,
/// checkpointing every 20 ms; `gap` is the session gap.
fn sessions_job(dir: &std::path::Path, out: &std::path::Path, gap: i64) -> weir::Job {
    let config = CheckpointConfig::new(dir, Duration::from_millis(20));
    let job = JobBuilder::new("sessions").batch_size(64).checkpointing(config);
    let events = (0..20_000i64).map(|i| (i * 3, (i % 5) as u32));
    job.source(
        "events",
        Throttled::new(IterSource::new(events), 100_000.0),
        |e: &Ev| e.0,
        WatermarkStrategy::monotonic(),
    )
    .key_by(|e| e.1, 2)
    .window("windows", Windows::session(gap))
    .aggregate(Count)
    .map(|r: WindowResult<u32, u64>| (r.key, r.window.start, r.window.end, r.value))
    .sink("out", weir::ExactlyOnceFileSink::json_lines(out));
    job.build().unwrap()
}

#[test]
fn a_refused_restore_leaves_the_output_byte_for_byte_as_it_was() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("out.jsonl");
    let ckpt = dir.path().join("ckpt");
    let report = sessions_job(&ckpt, &out, 10).run_blocking().unwrap();
    assert!(report.metrics.sink_records() > 0);
    let before = std::fs::read(&out).unwrap();
    assert!(LocalDirBackend::new(&ckpt, 3).unwrap().latest().unwrap().is_some(), "a checkpoint was taken mid-run");

    // Another session gap: the window snapshots do not fit, the restore is
    // refused — and the committed output is untouched (the sink would cut
    // it back to the checkpoint's length if it restored first).
    match sessions_job(&ckpt, &out, 7).run_blocking() {
        Err(e @ JobError::Restore { .. }) => assert!(e.to_string().contains("window"), "{e}"),
        other => panic!("expected a refused restore, got {other:?}"),
    }
    assert_eq!(std::fs::read(&out).unwrap(), before, "the output is byte for byte as it was");
}

#[test]
fn stop_with_checkpoint_returns_once_what_it_covers_is_visible() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("out.jsonl");
    let (source, push) = push_source::<Ev>(4096);
    let job = JobBuilder::new("visible").checkpointing(on_demand(&dir.path().join("ckpt")));
    job.source("pushed", source, |e: &Ev| e.0, WatermarkStrategy::monotonic())
        .key_by(|e| e.1, 1)
        .window("windows", Windows::tumbling(100))
        .aggregate(Count)
        .map(|r: WindowResult<u32, u64>| (r.window.start, r.value))
        .sink("out", weir::ExactlyOnceFileSink::json_lines(&out));
    let job = job.build().unwrap().spawn().unwrap();
    for i in 0..=1_000 {
        push.blocking_send((i, 0)).unwrap();
    }
    // Windows [0, 100) .. [900, 1000) have fired into the sink.
    wait_until("ten windows to reach the sink", Duration::from_secs(20), || job.metrics().sink_records() == 10);
    let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
    rt.block_on(job.stop_with_checkpoint()).expect("a final checkpoint");
    let lines = std::fs::read_to_string(&out).unwrap_or_default().lines().count();
    assert_eq!(lines, 10, "every result the checkpoint covers is in the file when it returns");
    drop(push);
}

#[test]
fn the_first_periodic_checkpoint_reaches_every_source() {
    let dir = tempfile::tempdir().unwrap();
    let config = CheckpointConfig {
        timeout: Duration::from_millis(1_000),
        ..CheckpointConfig::new(dir.path(), Duration::from_millis(1))
    };
    let job = JobBuilder::new("early").checkpointing(config);
    let (sink, _) = CollectSink::new();
    job.source(
        "numbers",
        Throttled::new(IterSource::new(0..50_000i64), 50_000.0),
        |n: &i64| *n,
        WatermarkStrategy::monotonic(),
    )
    .key_by(|n| n % 4, 2)
    .window("windows", Windows::tumbling(1_000))
    .aggregate(Count)
    .sink("out", sink);
    let handle = job.build().unwrap().spawn().unwrap();
    wait_until("a first checkpoint", Duration::from_secs(20), || handle.last_checkpoint().is_some());
    let first = handle.checkpoints().into_iter().next().expect("a checkpoint");
    assert_eq!(
        (first.seq, first.completed),
        (1, true),
        "checkpoint 1 was triggered before the sources registered: {first:?}"
    );
    handle.cancel();
}

#[test]
fn a_timeout_of_zero_is_refused_when_the_job_is_built() {
    let dir = tempfile::tempdir().unwrap();
    let config =
        CheckpointConfig { timeout: Duration::ZERO, ..CheckpointConfig::new(dir.path(), Duration::from_secs(1)) };
    let job = JobBuilder::new("zero").checkpointing(config);
    let (sink, _) = CollectSink::new();
    job.source("numbers", IterSource::new(0..10i64), |n: &i64| *n, WatermarkStrategy::monotonic()).sink("out", sink);
    match job.build() {
        Err(e) => assert!(e.to_string().contains("checkpoint timeout"), "{e}"),
        Ok(_) => panic!("a zero timeout must be refused"),
    }
}
