//! Stateless pipelines: sources, fused stages, sinks, job lifecycle.

use std::time::Duration;

use weir::prelude::*;

#[test]
fn iterator_through_fused_stages_reaches_the_sink_in_order() {
    let job = JobBuilder::new("stages").batch_size(7);
    let (sink, got) = CollectSink::new();
    job.source("numbers", IterSource::new(0..1000i64), |n: &i64| *n, WatermarkStrategy::monotonic())
        .filter(|n| n % 3 != 0)
        .map(|n| n * 2)
        .flat_map(|n| [n, n + 1])
        .sink("out", sink);
    let report = job.build().unwrap().run_blocking().unwrap();
    let want: Vec<i64> = (0..1000i64).filter(|n| n % 3 != 0).flat_map(|n| [n * 2, n * 2 + 1]).collect();
    assert_eq!(got.values(), want);
    let ts: Vec<i64> = got.records().iter().map(|r| r.ts).collect();
    let want_ts: Vec<i64> = (0..1000i64).filter(|n| n % 3 != 0).flat_map(|n| [n, n]).collect();
    assert_eq!(ts, want_ts);
    assert_eq!(report.metrics.source_records(), 1000);
    assert_eq!(report.metrics.sink_records(), want.len() as u64);
}

#[test]
fn stop_drains_a_push_source_job() {
    let (src, handle) = push_source::<i64>(64);
    let job = JobBuilder::new("push");
    let (sink, got) = CollectSink::new();
    job.source("pushed", src, |n: &i64| *n, WatermarkStrategy::monotonic()).sink("out", sink);
    let running = job.build().unwrap().spawn().unwrap();
    for i in 0..500 {
        handle.blocking_send(i).unwrap();
    }
    running.stop();
    let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
    rt.block_on(async { tokio::time::timeout(Duration::from_secs(10), running.wait()).await })
        .expect("the job drains and ends after stop")
        .unwrap();
    assert_eq!(got.values(), (0..500).collect::<Vec<_>>());
}
