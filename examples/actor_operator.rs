//! The lower-level path: an actor operator written against weir's actor
//! shell.
//!
//! `Stream::actor_operator(name, make)` starts one actor per upstream
//! instance running the `Core` that `make(info)` builds. The shell speaks
//! the edge protocol for it — it tracks the watermark over the inputs,
//! aligns checkpoint barriers, counts records, flushes, waits while a
//! downstream mailbox is full, ends the output when every input has ended
//! and turns a panic into a job failure — and calls the core's hooks:
//!
//! 1. `on_batch` for every batch, writing to `cx.out()` (an `Outlet`);
//! 2. `on_watermark` when the input watermark advances (the shell forwards
//!    the watermark after what the hook emitted);
//! 3. `snapshot` / `restore` for checkpoints, so that the operator's state
//!    is exactly once across a crash;
//! 4. `on_end` at the end of the input.
//!
//! The core here tags temperature readings with a per-sensor exponential
//! moving average and flags anomalies; a keyed one-minute window then
//! counts readings and anomalies per sensor. Run it with
//! `cargo run --release --example actor_operator`.

use std::collections::HashMap;
use std::fmt;

use serde::{Deserialize, Serialize};
use weir::dev::*;
use weir::prelude::*;
use weir::{ActorKind, CheckpointId};

/// The sensors. A small `Copy` enum makes a cheap key: window state is
/// checkpointed, so a key must be `Serialize + DeserializeOwned`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
enum Sensor {
    Boiler,
    Chiller,
    Pump,
    Fan,
}

impl fmt::Display for Sensor {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // `pad` honours width and alignment, as in `{:<8}`.
        f.pad(match self {
            Sensor::Boiler => "boiler",
            Sensor::Chiller => "chiller",
            Sensor::Pump => "pump",
            Sensor::Fan => "fan",
        })
    }
}

/// A raw reading.
#[derive(Debug, Clone)]
struct Reading {
    sensor: Sensor,
    ts: i64,
    celsius: f64,
}

/// A reading with what the tagger computed.
#[derive(Debug, Clone)]
struct Tagged {
    sensor: Sensor,
    celsius: f64,
    anomaly: bool,
}

/// Per sensor and minute: (readings, anomalies, highest temperature).
type MinuteReport = WindowResult<Sensor, (u64, u64, Option<f64>)>;

const SENSORS: [Sensor; 4] = [Sensor::Boiler, Sensor::Chiller, Sensor::Pump, Sensor::Fan];
const READINGS_PER_SENSOR: i64 = 40_000;

/// Source instance `i` reads sensors `2i` and `2i + 1`: one reading every
/// 5 ms of event time per sensor (200 s in all), with a spike now and then.
fn readings(instance: usize) -> Vec<Reading> {
    let mut v = Vec::new();
    for n in 0..READINGS_PER_SENSOR {
        for s in [2 * instance, 2 * instance + 1] {
            let wobble = ((n * 7_919 + s as i64 * 104_729) % 100) as f64 / 20.0;
            let spike = if (n + 1_000 * s as i64) % 9_973 == 5_000 { 30.0 } else { 0.0 };
            v.push(Reading { sensor: SENSORS[s], ts: n * 5, celsius: 20.0 + 10.0 * s as f64 + wobble + spike });
        }
    }
    v
}

/// The operator's core: its state and what its hooks do.
struct Tagger {
    instance: usize,
    /// Per sensor: the moving average (the state a checkpoint keeps).
    ema: HashMap<Sensor, f64>,
    /// Reused output buffer (no allocation per batch).
    buf: Vec<Record<Tagged>>,
    records: u64,
    watermarks: u64,
    anomalies: u64,
}

impl Tagger {
    fn new(info: ActorOperatorInfo) -> Self {
        println!("  [tagger#{}] made, {} input(s)", info.instance, info.inputs);
        Tagger {
            instance: info.instance,
            ema: HashMap::new(),
            buf: Vec::new(),
            records: 0,
            watermarks: 0,
            anomalies: 0,
        }
    }

    fn tag(&mut self, r: Record<Reading>) -> Record<Tagged> {
        let Reading { sensor, celsius, .. } = r.value;
        let ema = self.ema.entry(sensor).or_insert(celsius);
        let anomaly = (celsius - *ema).abs() > 10.0;
        // Anomalies do not drag the average along.
        if !anomaly {
            *ema += 0.1 * (celsius - *ema);
        }
        self.anomalies += anomaly as u64;
        Record::new(r.ts, Tagged { sensor, celsius, anomaly })
    }
}

impl Core for Tagger {
    type In = Reading;
    type Outputs = Outlet<Tagged>;

    fn on_batch(&mut self, batch: &mut Vec<Record<Reading>>, cx: &mut Cx<'_, Self>) -> Result<(), OperatorError> {
        self.records += batch.len() as u64;
        for r in batch.drain(..) {
            let tagged = self.tag(r);
            self.buf.push(tagged);
        }
        // Takes the records out, keeps the buffer's capacity. The edge cuts
        // them into batches; the shell flushes a partial batch when the
        // actor's mailbox runs dry.
        cx.out().send_batch(&mut self.buf);
        Ok(())
    }

    fn on_watermark(&mut self, _wm: Timestamp, _cx: &mut Cx<'_, Self>) -> Result<(), OperatorError> {
        // The shell forwards the watermark after this hook.
        self.watermarks += 1;
        Ok(())
    }

    fn on_end(&mut self, _cx: &mut Cx<'_, Self>) -> Result<(), OperatorError> {
        println!(
            "  [tagger#{}] end of input after {} records and {} watermarks; {} anomalies tagged",
            self.instance, self.records, self.watermarks, self.anomalies
        );
        Ok(())
    }

    fn snapshot(&mut self, _id: CheckpointId) -> Result<Snapshot, OperatorError> {
        // A Vec of entries decodes faster than a map (no rehash per entry).
        let entries: Vec<(Sensor, f64)> = self.ema.iter().map(|(s, v)| (*s, *v)).collect();
        Ok(Snapshot::encode(&entries)?)
    }

    fn restore(&mut self, _id: CheckpointId, state: Snapshot) -> Result<(), OperatorError> {
        let entries: Vec<(Sensor, f64)> = state.decode()?;
        self.ema = entries.into_iter().collect();
        Ok(())
    }
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    println!("weir example: actor_operator — an actor operator (a Core run by weir's actor shell)\n");
    println!("  2 sources x 2 sensors x {READINGS_PER_SENSOR} readings (one per 5 ms of event time each)");
    println!("  -> actor_operator(\"tagger\") -> key_by(sensor, 2) -> tumbling 1-minute windows -> sink\n");

    // Small batches and mailboxes, so that backpressure shows in the metrics.
    let job = JobBuilder::new("tagging").batch_size(256).mailbox_capacity(4);
    job.parallel_source(
        "readings",
        2,
        |i| IterSource::new(readings(i)),
        |r: &Reading| r.ts,
        WatermarkStrategy::bounded_out_of_orderness(100),
    )
    .actor_operator("tagger", Tagger::new)
    .key_by(|t: &Tagged| t.sensor, 2)
    .window("per-minute", Windows::tumbling(60_000))
    .aggregate((Count, Sum::of(|t: &Tagged| t.anomaly as u64), Max::of(|t: &Tagged| t.celsius)))
    .sink(
        "report",
        FnSink::new(|r: Record<MinuteReport>| {
            let w = r.value;
            let (n, anomalies, max) = w.value;
            println!(
                "  [{:>3} s, {:>3} s) {:<8} {n:>6} readings, anomalous: {anomalies}, max {:.1} °C",
                w.window.start / 1_000,
                w.window.end / 1_000,
                w.key,
                max.unwrap_or(f64::NAN)
            );
        }),
    );
    let report = job.build()?.run_blocking()?;

    println!("\n  Metrics (JobReport::metrics): what each actor sent and how long it waited on a full mailbox");
    println!("  {:<14} {:<9} {:>11} {:>8} {:>14}", "actor", "kind", "records out", "batches", "backpressured");
    for a in &report.metrics.actors {
        let waited = format!("{:.1?}", a.backpressured);
        println!(
            "  {:<14} {:<9} {:>11} {:>8} {:>14}",
            a.name,
            format!("{:?}", a.kind),
            a.records_out,
            a.batches_out,
            waited
        );
    }
    let tagged: u64 = report.metrics.of_node("tagger").map(|a| a.records_out).sum();
    let windowed: u64 = report.metrics.of_kind(ActorKind::Window).map(|a| a.records_in).sum();
    println!(
        "\n  The taggers sent {tagged} records; the window managers received {windowed}. Done in {:?}.",
        report.elapsed
    );
    Ok(())
}
