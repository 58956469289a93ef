//! The lower-level path: a plain actix actor used as an operator.
//!
//! `Stream::actor_operator(name, make)` starts one actor per upstream
//! instance, built by `make(info, outlet)`. The actor handles
//! `Envelope<T>` — the edge protocol itself: batches of records,
//! watermarks, idleness, barriers and end of input — and writes to its
//! `Outlet`. Three duties come with that freedom, all shown below:
//!
//! 1. track watermarks and end of input over `info.inputs` inputs with an
//!    `InputTracker` and forward what it reports (`outlet.watermark`,
//!    `outlet.end()`, ...): without it the windows downstream never fire;
//! 2. forward data with `outlet.send_batch` / `outlet.push`;
//! 3. call `outlet.wait_if_blocked(ctx)` after every message, so that a
//!    full downstream mailbox makes the actor wait (backpressure) instead
//!    of memory growing.
//!
//! The actor here tags temperature readings with a per-sensor exponential
//! moving average and flags anomalies; a keyed one-minute window then
//! counts readings and anomalies per sensor. Run it with
//! `cargo run --release --example actor_operator`.

use std::collections::HashMap;
use std::fmt;

use actix::{Actor, Context, Handler};
use serde::{Deserialize, Serialize};
use weir::dev::*;
use weir::prelude::*;
use weir::ActorKind;

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

/// The operator: a plain actix actor.
struct Tagger {
    instance: usize,
    input_count: usize,
    inputs: InputTracker,
    out: Outlet<Tagged>,
    /// Reused output buffer (no allocation per batch).
    buf: Vec<Record<Tagged>>,
    ema: HashMap<Sensor, f64>,
    records: u64,
    batches: u64,
    watermarks: u64,
    anomalies: u64,
}

impl Tagger {
    fn new(info: ActorOperatorInfo, out: Outlet<Tagged>) -> Self {
        Tagger {
            instance: info.instance,
            input_count: info.inputs,
            inputs: InputTracker::new(info.inputs),
            out,
            buf: Vec::new(),
            ema: HashMap::new(),
            records: 0,
            batches: 0,
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

impl Actor for Tagger {
    type Context = Context<Self>;

    fn started(&mut self, _ctx: &mut Context<Self>) {
        // An actor_operator instance is fed one to one by its upstream
        // instance: one input. The tracker is still the way to handle it.
        println!("  [tagger#{}] started, {} input(s)", self.instance, self.input_count);
    }
}

impl Handler<Envelope<Reading>> for Tagger {
    type Result = ();

    fn handle(&mut self, env: Envelope<Reading>, ctx: &mut Context<Self>) {
        match env.msg {
            Message::Data(batch) => {
                // Data makes an idle input active again.
                self.inputs.on_data(env.input);
                self.records += batch.len() as u64;
                self.batches += 1;
                for r in batch {
                    let tagged = self.tag(r);
                    self.buf.push(tagged);
                }
                // Takes the records out, keeps the buffer's capacity. The
                // edge cuts them into batches; a partial batch leaves with
                // the next watermark (or an explicit `self.out.flush()`).
                self.out.send_batch(&mut self.buf);
            }
            msg => match self.inputs.on_message(env.input, &msg) {
                // The combined watermark (minimum over the inputs) advanced.
                InputEvent::Watermark(wm) => {
                    self.watermarks += 1;
                    self.out.watermark(wm);
                }
                InputEvent::Idle => self.out.idle(),
                InputEvent::Barrier(id) => self.out.barrier(id),
                // Every input ended: final watermark and end, downstream.
                InputEvent::End => {
                    println!(
                        "  [tagger#{}] end of input after {} records in {} batches and {} watermarks; {} anomalies tagged",
                        self.instance, self.records, self.batches, self.watermarks, self.anomalies
                    );
                    self.out.end();
                }
                InputEvent::None => {}
            },
        }
        // Backpressure: if a downstream mailbox refused a batch, wait (and
        // handle nothing else) until it has been delivered.
        self.out.wait_if_blocked(ctx);
    }
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    println!("weir example: actor_operator — a plain actix actor as an operator\n");
    println!("  2 sources x 2 sensors x {READINGS_PER_SENSOR} readings (one per 5 ms of event time each)");
    println!("  -> actor_operator(\"tagger\") -> key_by(sensor, 2) -> tumbling 1-minute windows -> sink\n");

    // Small batches and mailboxes, so that backpressure shows in the metrics.
    let job = JobBuilder::new("tagging").batch_size(256).mailbox_capacity(4);
    job.parallel_source("readings", 2, |i| IterSource::new(readings(i)), |r: &Reading| r.ts, WatermarkStrategy::bounded_out_of_orderness(100))
        .actor_operator("tagger", |info: ActorOperatorInfo, out: Outlet<Tagged>| Tagger::new(info, out))
        .key_by(|t: &Tagged| t.sensor, 2)
        .window(Windows::tumbling(60_000))
        .name("per-minute")
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
        println!("  {:<14} {:<9} {:>11} {:>8} {:>14}", a.name, format!("{:?}", a.kind), a.records_out, a.batches_out, waited);
    }
    let tagged: u64 = report.metrics.of_node("tagger").map(|a| a.records_out).sum();
    let windowed: u64 = report.metrics.of_kind(ActorKind::Window).map(|a| a.records_in).sum();
    println!("\n  The taggers sent {tagged} records; the window managers received {windowed}. Done in {:?}.", report.elapsed);
    Ok(())
}
