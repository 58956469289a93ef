//! Backpressure: a slow sink slows the source down; nothing is lost and
//! the records in flight stay within what the mailboxes allow.

use std::time::Duration;

use weir::dev::{Collector, Operator, OperatorContext};
use weir::prelude::*;
use weir::{ActorKind, Placement, Sink, SinkError};

/// Sleeps on every batch: far slower than the source.
struct SlowSink {
    inner: CollectSink<i64>,
}

impl Sink<i64> for SlowSink {
    fn write(&mut self, batch: &mut Vec<Record<i64>>) -> Result<(), SinkError> {
        std::thread::sleep(Duration::from_micros(300));
        self.inner.write(batch)
    }
}

/// Passes records through unchanged (an operator stage, so that the job
/// has two edges).
struct PassThrough;

impl Operator for PassThrough {
    type In = i64;
    type Out = i64;
    fn process(&mut self, batch: &mut Vec<Record<i64>>, _ctx: &mut OperatorContext, out: &mut Collector<'_, i64>) {
        for r in batch.drain(..) {
            out.emit(r.ts, r.value);
        }
    }
}

#[test]
fn slow_sink_backpressures_source_without_loss_and_within_the_memory_bound() {
    const N: i64 = 200_000;
    const BATCH: usize = 64;
    const CAPACITY: usize = 4;
    // Every actor on a thread of its own, as a slow external sink would be:
    // with slot placement the three share one thread, whose scheduler
    // alternates between them, so the source rarely meets a full mailbox.
    let job = JobBuilder::new("bp").batch_size(BATCH).mailbox_capacity(CAPACITY).placement(Placement::ThreadPerActor);
    let (inner, out) = CollectSink::new();
    job.source("numbers", IterSource::new(0..N), |n: &i64| *n, WatermarkStrategy::monotonic())
        .transform("pass", |_| PassThrough)
        .sink("slow", SlowSink { inner });
    let handle = job.build().unwrap().spawn().unwrap();

    // Sample what is in flight: read by the source, not yet at the sink.
    let mut max_in_flight = 0u64;
    let deadline = std::time::Instant::now() + Duration::from_secs(120);
    while !handle.is_finished() {
        assert!(std::time::Instant::now() < deadline, "the job did not finish in time");
        let m = handle.metrics();
        let read: u64 = m.of_kind(ActorKind::Source).map(|a| a.records_in).sum();
        let arrived: u64 = m.of_kind(ActorKind::Sink).map(|a| a.records_in).sum();
        max_in_flight = max_in_flight.max(read.saturating_sub(arrived));
        std::thread::sleep(Duration::from_millis(2));
    }
    let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
    let report = rt.block_on(handle.wait()).unwrap();

    assert_eq!(out.values(), (0..N).collect::<Vec<_>>(), "every record arrives, in order");
    let source = report.metrics.of_node("numbers").next().unwrap().clone();
    assert!(source.backpressured > Duration::ZERO, "the source waited on a full mailbox: {source:?}");
    // Per edge: the mailbox (capacity + one slot per sender), one batch the
    // sender holds back after `Full`, and one partial batch it is filling;
    // plus the batch each actor is working on.
    let edges = 2;
    let senders = 1;
    let bound = (edges * (CAPACITY + senders + 2) + 2) * BATCH;
    assert!(max_in_flight > 0, "sampling saw records in flight");
    assert!(max_in_flight as usize <= bound, "in flight {max_in_flight} > bound {bound}");
    eprintln!("max in flight {max_in_flight} (bound {bound}), source backpressured {:?}", source.backpressured);
}
