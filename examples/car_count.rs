//! The classic: count cars per colour per minute of *event time*.
//!
//! Cars pass a sensor; each record carries the colour and the time the car
//! passed (its event time). The records reach us out of order, as they do
//! from real sensors. We count per colour in one-minute tumbling windows
//! `[mm:00, mm+1:00)`, with a bounded-out-of-orderness watermark of 10 s:
//! a record may arrive up to 10 s of event time behind the newest one seen
//! and still count. One straggler arrives far too late — after its window
//! has fired — and goes to the late-data output instead of being dropped.
//!
//! Run it with `cargo run --release --example car_count`.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use weir::prelude::*;

/// One car passing the sensor.
#[derive(Debug, Clone)]
struct Car {
    colour: String,
    /// Event time, ms since the start of the recording.
    ts: i64,
}

/// Event time `m:s` in ms.
fn at(m: i64, s: i64) -> i64 {
    (m * 60 + s) * 1_000
}

/// `ms` as `m:ss`.
fn clock(ms: i64) -> String {
    if ms < 0 {
        return format!("-{}", clock(-ms));
    }
    format!("{}:{:02}", ms / 60_000, (ms % 60_000) / 1_000)
}

const BOUND_MS: i64 = 10_000;
const MINUTE: i64 = 60_000;

/// The cars in the order they *arrive* (not the order they passed).
fn arrivals() -> Vec<Car> {
    let cars = [
        ("red", at(0, 2)),
        ("blue", at(0, 5)),
        ("red", at(0, 9)),
        ("green", at(0, 14)),
        ("blue", at(0, 12)), // 2 s behind the newest: out of order, on time
        ("red", at(0, 21)),
        ("yellow", at(0, 27)),
        ("blue", at(0, 33)),
        ("red", at(0, 38)),
        ("green", at(0, 45)),
        ("red", at(0, 52)),
        ("blue", at(0, 57)),
        ("red", at(1, 3)),
        ("green", at(0, 58)), // 5 s behind: still within the 10 s bound
        ("blue", at(1, 8)),
        ("red", at(1, 12)), // watermark 1:02 passes 1:00: the first minute fires
        ("yellow", at(1, 19)),
        ("red", at(1, 25)),
        ("blue", at(1, 31)),
        ("green", at(1, 36)),
        ("red", at(1, 44)),
        ("blue", at(0, 49)), // the straggler: its minute fired long ago
        ("red", at(1, 50)),
        ("yellow", at(1, 58)),
        ("blue", at(2, 4)),
        ("red", at(2, 9)), // watermark 1:59
        ("green", at(2, 2)),
        ("red", at(2, 15)), // watermark 2:05: the second minute fires
        ("blue", at(2, 22)),
        ("red", at(2, 31)),
        ("green", at(2, 40)),
        ("blue", at(2, 47)),
        ("red", at(2, 55)),
    ];
    cars.into_iter().map(|(colour, ts)| Car { colour: colour.to_string(), ts }).collect()
}

/// Prints the input with the watermark each car leaves behind (the highest
/// event time seen minus the bound) and whether the car is late: a car is
/// late when the watermark before it already passed the end of its minute.
fn explain_input(cars: &[Car]) {
    println!("Input, in arrival order (watermark = newest event time - {} s):", BOUND_MS / 1_000);
    println!("  #   colour  passed  watermark after");
    let mut max_ts = i64::MIN;
    for (i, car) in cars.iter().enumerate() {
        let wm_before = max_ts.saturating_sub(BOUND_MS);
        let window_end = (car.ts.div_euclid(MINUTE) + 1) * MINUTE;
        let note = if max_ts != i64::MIN && window_end <= wm_before {
            format!(
                "  <- LATE: its window [{}, {}) fired when the watermark reached {}",
                clock(window_end - MINUTE),
                clock(window_end),
                clock(window_end)
            )
        } else if car.ts < max_ts {
            "  <- out of order, but within the bound".to_string()
        } else {
            String::new()
        };
        max_ts = max_ts.max(car.ts);
        println!("  {:>2}  {:<6}  {:>6}  {:>6}{note}", i + 1, car.colour, clock(car.ts), clock(max_ts - BOUND_MS));
    }
    println!();
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let cars = arrivals();
    let total = cars.len();
    println!("weir example: car_count — cars per colour per minute of event time\n");
    explain_input(&cars);

    // Batches of one record and a watermark after every batch: the window
    // managers see cars and watermarks interleaved exactly as listed above.
    // (By default a source reads up to 1,024 records per batch and emits its
    // watermark every 200 ms, so all 33 cars would arrive before the first
    // watermark and none would be late.)
    let job = JobBuilder::new("car-count").batch_size(1);
    let strategy = WatermarkStrategy::bounded_out_of_orderness(BOUND_MS).with_interval(Duration::ZERO);

    let per_minute = job
        .source("cars", IterSource::new(cars), |c: &Car| c.ts, strategy)
        .key_by(|c: &Car| c.colour.clone(), 2) // two window managers (instance i on thread i)
        .window("per-minute", Windows::tumbling(MINUTE))
        // Records whose windows have all closed come out here, with their key.
        .late_data(|late| {
            late.sink(
                "late-cars",
                FnSink::new(|r: Record<(String, Car)>| {
                    let (colour, car) = r.value;
                    println!("  LATE    {colour} car that passed at {} (its window had already fired)", clock(car.ts));
                }),
            )
        });

    let counted = Arc::new(AtomicU64::new(0));
    let counted_in_sink = Arc::clone(&counted);
    per_minute.aggregate(Count).sink(
        "counts",
        FnSink::new(move |r: Record<WindowResult<String, u64>>| {
            let w = r.value;
            counted_in_sink.fetch_add(w.value, Ordering::Relaxed);
            println!(
                "  fired   [{}, {})  {:<6} {} car(s)  ({:?})",
                clock(w.window.start),
                clock(w.window.end),
                w.key,
                w.value,
                w.timing
            );
        }),
    );

    println!("Results as the windows fire (a window [start, end) fires when the watermark reaches end;");
    println!("the last minute fires at end of input, when the watermark jumps to the end of time):");
    let report = job.build()?.run_blocking()?;

    let late = report.metrics.late_records();
    println!();
    let counted = counted.load(Ordering::Relaxed);
    println!(
        "{total} cars read: {counted} counted in windows + {late} late (metrics `late_records`) = {}.",
        counted + late
    );
    println!("Every car is in exactly one window's count or on the late-data output: nothing is dropped.");
    println!("(finished in {:?})", report.elapsed);
    Ok(())
}
