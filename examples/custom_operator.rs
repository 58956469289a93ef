//! A custom operator: implement `weir::dev::Operator` and weir runs it in an
//! actor that handles watermarks, end of input and backpressure for it.
//!
//! The operator here is a *watchdog* over sensor readings, keyed by sensor:
//! it reports a sensor that has sent nothing for 30 s of event time, and
//! reports it again when it comes back. It works in event time with
//! event-time timers (`OperatorContext::register_timer` → `on_timer`), so
//! its output does not depend on how the input was batched or how out of
//! order it arrived — only on the watermark:
//!
//! - `process` buffers each reading and asks for two timers: at `ts + 1`
//!   (once the watermark passes `ts`, no earlier reading can follow, so the
//!   buffered readings before it can be handled in event-time order) and at
//!   `ts + timeout + 1` (the sensor's deadline, if nothing newer arrives);
//! - `on_timer(at)` handles the buffered readings before `at` in order, then
//!   reports every sensor whose last reading is more than the timeout
//!   before `at`;
//! - `on_end` emits one summary per sensor.
//!
//! The example first drives the operator with the `OperatorHarness` (no
//! actix: records and watermarks in, output out), then runs it in a job
//! after `key_by`. Run it with `cargo run --release --example custom_operator`.

use std::collections::{BTreeMap, HashMap};
use std::fmt;

use weir::dev::*;
use weir::prelude::*;

/// One temperature reading.
#[derive(Debug, Clone)]
struct Reading {
    sensor: String,
    /// Event time, ms.
    ts: i64,
    celsius: f64,
}

/// What the watchdog reports.
#[derive(Debug, Clone, PartialEq)]
enum Notice {
    /// Nothing from `sensor` since `last_seen`, for longer than the timeout.
    Silent { sensor: String, last_seen: i64, timeout: i64 },
    /// `sensor` sent a reading at `at` after being silent.
    Resumed { sensor: String, at: i64, silent_for: i64 },
    /// A reading that arrived behind the watermark (it cannot be placed in
    /// event-time order any more); reported, not dropped.
    Late { sensor: String, ts: i64 },
    /// Per sensor, at end of input.
    Summary { sensor: String, readings: u64, mean_celsius: f64 },
}

/// Event time in seconds, for printing.
fn secs(ms: i64) -> String {
    format!("{:.0} s", ms as f64 / 1_000.0)
}

impl fmt::Display for Notice {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Notice::Silent { sensor, last_seen, timeout } => {
                write!(f, "SILENT   {sensor}: nothing since {} (more than {})", secs(*last_seen), secs(*timeout))
            }
            Notice::Resumed { sensor, at, silent_for } => {
                write!(f, "RESUMED  {sensor}: reading at {} after {} of silence", secs(*at), secs(*silent_for))
            }
            Notice::Late { sensor, ts } => {
                write!(f, "LATE     {sensor}: reading at {} arrived behind the watermark", secs(*ts))
            }
            Notice::Summary { sensor, readings, mean_celsius } => {
                write!(f, "SUMMARY  {sensor}: {readings} readings, mean {mean_celsius:.1} °C")
            }
        }
    }
}

#[derive(Debug, Default)]
struct SensorState {
    last_seen: i64,
    silent: bool,
    readings: u64,
    sum: f64,
}

/// Reports sensors silent for more than `timeout` ms of event time.
#[derive(Debug)]
struct Watchdog {
    timeout: i64,
    /// Readings not yet complete (the watermark has not passed them), by
    /// event time.
    pending: BTreeMap<i64, Vec<Reading>>,
    sensors: HashMap<String, SensorState>,
}

impl Watchdog {
    fn new(timeout: i64) -> Self {
        Watchdog { timeout, pending: BTreeMap::new(), sensors: HashMap::new() }
    }
}

impl Operator for Watchdog {
    /// After `key_by`, records are `(key, value)`.
    type In = (String, Reading);
    type Out = Notice;

    fn process(
        &mut self,
        batch: &mut Vec<Record<Self::In>>,
        ctx: &mut OperatorContext,
        out: &mut Collector<'_, Notice>,
    ) {
        for r in batch.drain(..) {
            let (sensor, reading) = r.value;
            if r.ts < ctx.watermark() {
                out.emit(ctx.watermark(), Notice::Late { sensor, ts: r.ts });
                continue;
            }
            // Registering a time twice calls `on_timer` once.
            ctx.register_timer(r.ts + 1);
            ctx.register_timer(r.ts + self.timeout + 1);
            self.pending.entry(r.ts).or_default().push(reading);
        }
    }

    fn on_timer(&mut self, at: i64, ctx: &mut OperatorContext, out: &mut Collector<'_, Notice>) {
        // 1. Every reading before `at` is complete: handle them in event-time
        //    order, whatever order they arrived in.
        let later = self.pending.split_off(&at);
        for (ts, readings) in std::mem::replace(&mut self.pending, later) {
            for r in readings {
                let s = self.sensors.entry(r.sensor.clone()).or_default();
                if s.silent {
                    out.emit(ts, Notice::Resumed { sensor: r.sensor, at: ts, silent_for: ts - s.last_seen });
                    s.silent = false;
                }
                s.last_seen = ts;
                s.readings += 1;
                s.sum += r.celsius;
            }
        }
        // 2. At end of input every remaining timer fires (the watermark jumps
        //    to the end of time): the input ended, the sensors did not fall
        //    silent.
        if ctx.watermark() == weir::END_OF_TIME {
            return;
        }
        let mut newly_silent: Vec<(String, i64)> = Vec::new();
        for (sensor, s) in &mut self.sensors {
            if !s.silent && s.last_seen + self.timeout < at {
                s.silent = true;
                newly_silent.push((sensor.clone(), s.last_seen));
            }
        }
        newly_silent.sort();
        for (sensor, last_seen) in newly_silent {
            // `at - 1` is not behind the watermark downstream has seen: the
            // timer was not due at the previous watermark.
            out.emit(at - 1, Notice::Silent { sensor, last_seen, timeout: self.timeout });
        }
    }

    fn on_end(&mut self, out: &mut Collector<'_, Notice>) {
        // Emitted after the final watermark: fine for a sink; a window
        // downstream would treat these records as late.
        let mut sensors: Vec<_> = self.sensors.iter().collect();
        sensors.sort_by_key(|(name, _)| *name);
        for (sensor, s) in sensors {
            let mean_celsius = s.sum / s.readings.max(1) as f64;
            out.emit(s.last_seen, Notice::Summary { sensor: sensor.clone(), readings: s.readings, mean_celsius });
        }
    }
}

fn reading(sensor: &str, ts: i64, celsius: f64) -> Record<(String, Reading)> {
    Record::new(ts, (sensor.to_string(), Reading { sensor: sensor.to_string(), ts, celsius }))
}

fn print_output(h: &mut OperatorHarness<Watchdog>) {
    let out = h.take_output();
    if out.is_empty() {
        println!("      -> (nothing yet)");
    }
    for r in out {
        println!("      -> [{}] {}", secs(r.ts), r.value);
    }
}

/// Part 1: the operator alone, driven by the harness.
fn with_harness() {
    println!("1. The Watchdog in the OperatorHarness (no actix; timeout 30 s)\n");
    let mut h = OperatorHarness::new(Watchdog::new(30_000));

    println!("   process: pump@0s fan@2s pump@10s fan@5s   (out of order)");
    h.process(vec![
        reading("pump", 0, 61.0),
        reading("fan", 2_000, 30.0),
        reading("pump", 10_000, 62.0),
        reading("fan", 5_000, 31.0),
    ]);
    print_output(&mut h);

    println!("   watermark 20 s   (readings before 20 s are complete; nobody silent yet)");
    h.watermark(20_000);
    print_output(&mut h);

    println!("   process: fan@25s fan@40s   (the pump stays quiet after 10 s)");
    h.process(vec![reading("fan", 25_000, 32.0), reading("fan", 40_000, 33.0)]);
    print_output(&mut h);

    println!("   watermark 41 s   (passes the pump's deadline 10 s + 30 s)");
    h.watermark(41_000);
    print_output(&mut h);

    println!("   process: pump@55s");
    h.process(vec![reading("pump", 55_000, 63.0)]);
    print_output(&mut h);

    println!("   watermark 60 s");
    h.watermark(60_000);
    print_output(&mut h);

    println!("   end of input   (final watermark, then on_end; the fan's deadline at 70 s is not silence)");
    h.end();
    print_output(&mut h);
    println!();
}

/// Readings every 5 s per sensor for two minutes; the pump sends nothing
/// between 31 s and 96 s, the fan's last reading is at 77 s. Neighbours are swapped so that
/// they arrive out of order (by at most 1 s, within the 2 s bound).
fn readings() -> Vec<Reading> {
    let mut v = Vec::new();
    for step in 0..24i64 {
        let base = step * 5_000;
        v.push(Reading { sensor: "boiler".to_string(), ts: base, celsius: 70.0 + (step % 5) as f64 });
        if !(35_000..95_000).contains(&(base + 1_000)) {
            v.push(Reading { sensor: "pump".to_string(), ts: base + 1_000, celsius: 60.0 + (step % 3) as f64 });
        }
        if base + 2_000 <= 80_000 {
            v.push(Reading { sensor: "fan".to_string(), ts: base + 2_000, celsius: 30.0 + (step % 4) as f64 });
        }
    }
    for i in (0..v.len() - 1).step_by(4) {
        v.swap(i, i + 1);
    }
    v
}

/// Part 2: the same operator in a job, after `key_by`.
fn in_a_job() -> Result<(), Box<dyn std::error::Error>> {
    let input = readings();
    println!("2. The Watchdog in a job: {} readings of boiler, pump and fan over 2 minutes,", input.len());
    println!("   slightly out of order; the pump sends nothing between 31 s and 96 s, the fan's last");
    println!("   reading is at 77 s. Watermark: newest event time - 2 s.");
    println!("   source -> key_by(sensor, 2) -> transform(\"watchdog\") -> sink\n");

    let job = JobBuilder::new("watchdog");
    job.source(
        "readings",
        IterSource::new(input),
        |r: &Reading| r.ts,
        WatermarkStrategy::bounded_out_of_orderness(2_000),
    )
    .key_by(|r: &Reading| r.sensor.clone(), 2)
    // One Watchdog per instance; each sees the sensors hashed to it.
    .transform("watchdog", |_instance| Watchdog::new(30_000))
    .sink("notices", FnSink::new(|r: Record<Notice>| println!("   [{:>5}] {}", secs(r.ts), r.value)));
    let report = job.build()?.run_blocking()?;

    println!();
    println!("   All readings were read in one batch of up to 1,024 records and the watermark");
    println!("   came after them, yet the notices are the same as if they had trickled in:");
    println!("   the operator works in event time, driven by timers. ({:?})", report.elapsed);
    Ok(())
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    println!("weir example: custom_operator — an event-time Operator with timers\n");
    with_harness();
    in_a_job()
}
