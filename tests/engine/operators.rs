//! Custom operators: the `Operator` trait and actor operators (shell cores),
//! both run by weir's actor shell.

use std::collections::BTreeMap;

use crate::support;

use support::wait_until;
use weir::dev::*;
use weir::prelude::*;
use weir_harness::workload::{Event, Generator, StreamParams};

/// Re-emits records in event-time order once the watermark passes them.
#[derive(Default)]
struct Sorter {
    pending: BTreeMap<i64, Vec<i64>>,
}

impl Operator for Sorter {
    type In = i64;
    type Out = i64;

    fn process(&mut self, batch: &mut Vec<Record<i64>>, ctx: &mut OperatorContext, _out: &mut Collector<'_, i64>) {
        for r in batch.drain(..) {
            self.pending.entry(r.ts).or_default().push(r.value);
            ctx.register_timer(r.ts + 1);
        }
    }

    fn on_timer(&mut self, at: i64, _ctx: &mut OperatorContext, out: &mut Collector<'_, i64>) {
        let later = self.pending.split_off(&at);
        for (ts, values) in std::mem::replace(&mut self.pending, later) {
            for v in values {
                out.emit(ts, v);
            }
        }
    }
}

#[test]
fn harness_drives_an_operator_with_records_watermarks_and_timers() {
    let mut h = OperatorHarness::new(Sorter::default());
    h.process(vec![Record::new(30, 3), Record::new(10, 1), Record::new(20, 2)]);
    assert!(h.take_output().is_empty());
    h.watermark(21);
    assert_eq!(h.take_output(), vec![Record::new(10, 1), Record::new(20, 2)]);
    h.end();
    assert_eq!(h.take_output(), vec![Record::new(30, 3)]);
}

#[test]
fn custom_operator_runs_in_a_job_after_key_by() {
    let input: Vec<i64> = vec![50, 10, 40, 20, 30, 70, 60];
    let job = JobBuilder::new("sort").batch_size(2);
    let (sink, got) = CollectSink::new();
    job.source("numbers", IterSource::new(input), |n: &i64| *n, WatermarkStrategy::bounded_out_of_orderness(100))
        .map(|n| n)
        .key_by(|n| *n % 2, 1)
        .transform("sorter", |_| KeyedSorter(Sorter::default()))
        .sink("out", sink);
    job.build().unwrap().run_blocking().unwrap();
    assert_eq!(got.values(), vec![10, 20, 30, 40, 50, 60, 70]);
}

/// The sorter over keyed input.
struct KeyedSorter(Sorter);

impl Operator for KeyedSorter {
    type In = (i64, i64);
    type Out = i64;
    fn process(
        &mut self,
        batch: &mut Vec<Record<(i64, i64)>>,
        ctx: &mut OperatorContext,
        out: &mut Collector<'_, i64>,
    ) {
        let mut values: Vec<Record<i64>> = batch.drain(..).map(|r| Record::new(r.ts, r.value.1)).collect();
        self.0.process(&mut values, ctx, out);
    }
    fn on_timer(&mut self, at: i64, ctx: &mut OperatorContext, out: &mut Collector<'_, i64>) {
        self.0.on_timer(at, ctx, out);
    }
}

/// An actor operator (a shell core) that doubles every value.
struct Doubler {
    buf: Vec<Record<i64>>,
}

impl Core for Doubler {
    type In = i64;
    type Outputs = Outlet<i64>;

    fn on_batch(&mut self, batch: &mut Vec<Record<i64>>, cx: &mut Cx<'_, Self>) -> Result<(), OperatorError> {
        self.buf.extend(batch.drain(..).map(|r| Record::new(r.ts, r.value * 2)));
        cx.out().send_batch(&mut self.buf);
        Ok(())
    }
}

#[test]
fn actor_operator_forwards_data_watermarks_and_end() {
    let job = JobBuilder::new("actor").batch_size(16).mailbox_capacity(2);
    let (sink, got) = CollectSink::new();
    job.source("numbers", IterSource::new(0..10_000i64), |n: &i64| *n, WatermarkStrategy::monotonic())
        .actor_operator("doubler", |_info: ActorOperatorInfo| Doubler { buf: Vec::new() })
        .key_by(|n| n % 10, 2)
        .window("windows", Windows::tumbling(1_000))
        .aggregate(Sum::of(|n: &i64| *n))
        .sink("out", sink);
    let report = job.build().unwrap().run_blocking().unwrap();
    let total: i64 = got.values().iter().map(|r| r.value).sum();
    assert_eq!(total, (0..10_000i64).map(|n| n * 2).sum::<i64>());
    assert_eq!(got.len(), 10 * 5, "ten windows of the five keys (even numbers only, after doubling)");
    let doubler = report.metrics.of_node("doubler").next().expect("the doubler's metrics");
    assert_eq!(
        (doubler.records_in, doubler.records_out),
        (10_000, 10_000),
        "the shell counts what the core received and sent"
    );
}

/// An actor operator with state: numbers each key's records 1, 2, 3, ...
/// (its counters are its checkpointed state).
#[derive(Default)]
struct Numberer {
    next: std::collections::HashMap<u64, u64>,
    buf: Vec<Record<(u64, u64)>>,
}

impl Core for Numberer {
    type In = Event;
    type Outputs = Outlet<(u64, u64)>;

    fn on_batch(&mut self, batch: &mut Vec<Record<Event>>, cx: &mut Cx<'_, Self>) -> Result<(), OperatorError> {
        for r in batch.drain(..) {
            let n = self.next.entry(r.value.key).or_insert(0);
            *n += 1;
            self.buf.push(Record::new(r.ts, (r.value.key, *n)));
        }
        cx.out().send_batch(&mut self.buf);
        Ok(())
    }

    fn snapshot(&mut self, _id: weir::CheckpointId) -> Result<Snapshot, OperatorError> {
        let entries: Vec<(u64, u64)> = self.next.iter().map(|(k, n)| (*k, *n)).collect();
        Ok(Snapshot::encode(&entries)?)
    }

    fn restore(&mut self, _id: weir::CheckpointId, state: Snapshot) -> Result<(), OperatorError> {
        let entries: Vec<(u64, u64)> = state.decode()?;
        self.next = entries.into_iter().collect();
        Ok(())
    }
}

/// The generator (replayable) → the numbering actor operator → an
/// exactly-once file of `(key, n)` rows.
fn numbering_job(dir: &std::path::Path, out: &std::path::Path, events: u64) -> weir::Job {
    let params = StreamParams { events, keys: 16, ..StreamParams::default() };
    let job = JobBuilder::new("numbering").checkpointing(weir::CheckpointConfig::on_demand(dir));
    job.source(
        "events",
        Throttled::new(Generator::new(params, 0, 1), 200_000.0),
        |e: &Event| e.ts,
        WatermarkStrategy::bounded_out_of_orderness(2_000),
    )
    .actor_operator("numberer", |_info: ActorOperatorInfo| Numberer::default())
    .sink("out", weir::ExactlyOnceFileSink::json_lines(out));
    job.build().unwrap()
}

#[test]
fn an_actor_operator_is_exactly_once_across_a_restore() {
    let events = 200_000;
    let dir = tempfile::tempdir().unwrap();
    let (ckpt, out) = (dir.path().join("ckpt"), dir.path().join("out.jsonl"));
    let job = numbering_job(&ckpt, &out, events).spawn().unwrap();
    wait_until("part of the input", std::time::Duration::from_secs(20), || job.metrics().source_records() >= 50_000);
    let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
    rt.block_on(job.stop_with_checkpoint()).expect("a checkpoint part-way");
    let _ = job.wait_blocking();

    let report = numbering_job(&ckpt, &out, events).run_blocking().unwrap();
    assert!(report.resumed_from.is_some() && report.metrics.source_records() < events, "it resumed part-way");
    // Each key's records are numbered 1..=n exactly once: the counters came
    // back with the checkpoint, and the rows before it are not repeated.
    let mut per_key: std::collections::BTreeMap<u64, Vec<u64>> = Default::default();
    for line in std::fs::read_to_string(&out).unwrap().lines() {
        let (key, n): (u64, u64) = serde_json::from_str(line).unwrap();
        per_key.entry(key).or_default().push(n);
    }
    let mut total = 0;
    for (key, mut ns) in per_key {
        ns.sort_unstable();
        assert_eq!(ns, (1..=ns.len() as u64).collect::<Vec<_>>(), "key {key}");
        total += ns.len() as u64;
    }
    assert_eq!(total, events, "every record numbered once");
}
