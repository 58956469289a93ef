//! Checkpoints: alignment, corrupt snapshots, topology mismatch, stop with
//! a checkpoint and resume.

use std::time::{Duration, Instant};

use weir::prelude::*;
use weir::workload::{self, Checksum, StreamParams, Workload, WorkloadSpec};
use weir::{CheckpointConfig, JobError, LocalDirBackend, StateBackend};

fn wait_until(what: &str, mut cond: impl FnMut() -> bool) {
    let deadline = Instant::now() + Duration::from_secs(20);
    while !cond() {
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        std::thread::sleep(Duration::from_millis(5));
    }
}

fn on_demand(dir: &std::path::Path) -> CheckpointConfig {
    CheckpointConfig { interval: None, ..CheckpointConfig::new(dir, Duration::from_secs(1)) }
}

type Ev = (i64, u32);

/// Two push sources, p=2 window managers counting everything per key.
fn two_source_job(dir: &std::path::Path) -> (JobHandle, PushHandle<Ev>, PushHandle<Ev>, Collected<WindowResult<u32, u64>>) {
    let (a, ha) = push_source::<Ev>(4096);
    let (b, hb) = push_source::<Ev>(4096);
    let mut sources = [Some(a), Some(b)];
    let job = JobBuilder::new("aligned").checkpointing(on_demand(dir));
    let (sink, got) = CollectSink::new();
    job.parallel_source("pushed", 2, move |i| sources[i].take().expect("once"), |e: &Ev| e.0, WatermarkStrategy::monotonic())
        .key_by(|e| e.1, 2)
        .window(Windows::tumbling(1_000_000))
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
    wait_until("both sources to read their records", || job.metrics().source_records() == 2000);
    let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
    let stats = rt.block_on(job.checkpoint()).expect("the checkpoint completes");
    assert!(stats.completed && stats.bytes > 0, "{stats:?}");
    // Records after the barrier must not be in the snapshot.
    for i in 1000..1500 {
        a.blocking_send((i, 1)).unwrap();
        b.blocking_send((i, 2)).unwrap();
    }
    wait_until("the later records to be read", || job.metrics().source_records() == 3000);
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

const WL1_K16: Checksum = Checksum { rows: 48, events: 3_000_000, total: 1_498_945_689, digest: 14_218_170_467_609_890_282 };

#[test]
fn stop_with_checkpoint_then_resume_gives_the_failure_free_result() {
    let dir = tempfile::tempdir().unwrap();
    let (builder, _) = workload::build(&wl1_spec(dir.path(), 2));
    let job = builder.build().unwrap().spawn().unwrap();
    std::thread::sleep(Duration::from_millis(400));
    let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
    let stats = rt.block_on(job.stop_with_checkpoint()).expect("a final checkpoint");
    assert!(stats.completed);
    assert!(matches!(job.wait_blocking(), Err(JobError::Cancelled)));

    let (builder, outputs) = workload::build(&wl1_spec(dir.path(), 2));
    builder.build().unwrap().run_blocking().unwrap();
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
    assert!(latest.skipped[0].to_string().contains(&victim.file_name().unwrap().to_string_lossy().to_string()), "{}", latest.skipped[0]);

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
        Err(JobError::Checkpoint(msg)) => assert!(msg.contains("different topology"), "{msg}"),
        other => panic!("expected a refusal, got {other:?}"),
    }
}
