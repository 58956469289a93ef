//! How long after the watermark passes a window's end does its result
//! leave the job?
//!
//! A WL1-like job (the WORKLOAD.md stream, keyed tumbling windows, count
//! and sum) reads its source at a fixed pace — 1,000,000 events per second
//! of wall time by default — and emits the watermark `max_ts - 2000` after
//! every batch. A wrapper around the source notes the wall instant at which
//! the source first produced a batch whose watermark reaches a window's end
//! (with several source instances, the last of them to do so: that is when
//! the window became due); the sink notes when the first and
//! the last row of each window arrived. The differences, over all windows
//! of the run, are the job's event-time latency: batching, the mailbox
//! hops, the window firing and the hop to the sink.
//!
//! Run it with `cargo run --release --example latency -- --secs 15`
//! (`--rate`, `--keys`, `--window-ms`, `--parallelism` change the job). At
//! the default pace event time runs 10× faster than wall time, so the
//! default window of 1 s of event time closes ten times a second; use
//! `--window-ms 10000` for WL1's exact windows (one a second).

use std::collections::HashMap;
use std::process::ExitCode;
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};
use std::time::{Duration, Instant};

use weir::dev::{Source, SourceBatch, SourceStatus};
use weir::prelude::*;
use weir::SinkError;
use weir_harness::workload::{Event, Generator, StreamParams};

/// Watermark bound B, ms (= the stream's disorder D: no event is late).
const BOUND: i64 = 2_000;

/// Window end → how many source instances' watermarks have reached it,
/// and the wall instant the latest of them did (with all `p`, the window
/// is due: a window manager's watermark is the minimum over its inputs).
type Crossings = Arc<Mutex<HashMap<i64, (usize, Instant)>>>;

/// Notes when the watermark after each batch first reaches a window end.
struct WatchWatermark<S> {
    inner: S,
    window: i64,
    max_ts: i64,
    crossings: Crossings,
}

impl<S: Source<Item = Event>> Source for WatchWatermark<S> {
    type Item = Event;

    fn poll_batch(&mut self, cx: &mut Context<'_>, out: &mut SourceBatch<'_, Event>) -> Poll<SourceStatus> {
        let before = out.len();
        let r = self.inner.poll_batch(cx, out);
        let max_ts = out.items_from(before).map(|e| e.ts).max().unwrap_or(i64::MIN);
        if max_ts > self.max_ts {
            let (old, new) = (self.max_ts.saturating_sub(BOUND), max_ts - BOUND);
            self.max_ts = max_ts;
            // Window ends in (old, new]: due once this batch's watermark is out.
            let first = old.max(-1).div_euclid(self.window) + 1;
            let last = new.div_euclid(self.window);
            if first <= last {
                let now = Instant::now();
                if let Ok(mut c) = self.crossings.lock() {
                    for end in first..=last {
                        let e = c.entry(end * self.window).or_insert((0, now));
                        *e = (e.0 + 1, now);
                    }
                }
            }
        }
        r
    }
}

/// Window end → when its first and last rows arrived, and its rows.
type Seen = Arc<Mutex<HashMap<i64, (Instant, Instant, u64)>>>;

/// Notes when each window's first and last rows arrive.
struct Arrivals {
    seen: Seen,
}

impl Sink<WindowResult<u64, (u64, i64)>> for Arrivals {
    fn write(&mut self, batch: &mut Vec<Record<WindowResult<u64, (u64, i64)>>>) -> Result<(), SinkError> {
        let now = Instant::now();
        if let Ok(mut seen) = self.seen.lock() {
            for r in batch.drain(..) {
                let e = seen.entry(r.value.window.end).or_insert((now, now, 0));
                e.1 = now;
                e.2 += 1;
            }
        }
        batch.clear();
        Ok(())
    }
}

fn arg<T: std::str::FromStr>(name: &str, default: T) -> T {
    let args: Vec<String> = std::env::args().collect();
    args.iter().position(|a| a == name).and_then(|i| args.get(i + 1)).and_then(|v| v.parse().ok()).unwrap_or(default)
}

/// The `q`-quantile of sorted `v` (nearest rank).
fn quantile(v: &[f64], q: f64) -> f64 {
    if v.is_empty() {
        return f64::NAN;
    }
    let rank = ((q * v.len() as f64).ceil() as usize).clamp(1, v.len());
    v[rank - 1]
}

fn main() -> ExitCode {
    let secs: f64 = arg("--secs", 15.0);
    let rate: f64 = arg("--rate", 1_000_000.0);
    let keys: u64 = arg("--keys", 16);
    let window: i64 = arg("--window-ms", 1_000);
    let parallelism: usize = arg("--parallelism", 1);
    let events = (rate * secs) as u64;
    println!(
        "latency: {events} events at {rate:.0}/s ({secs} s), K={keys}, tumbling windows of {window} ms, B={BOUND} ms, p={parallelism}"
    );

    let crossings: Crossings = Arc::default();
    let seen: Seen = Arc::default();
    let stream = StreamParams { events, keys, ..StreamParams::default() };
    let job = JobBuilder::new("latency");
    let per_instance = rate / parallelism as f64;
    let c = Arc::clone(&crossings);
    let source = job.parallel_source(
        "generator",
        parallelism,
        move |i| WatchWatermark {
            inner: Throttled::new(Generator::new(stream, i, parallelism), per_instance),
            window,
            max_ts: i64::MIN,
            crossings: Arc::clone(&c),
        },
        |e: &Event| e.ts,
        // After every batch, not the default 200 ms.
        WatermarkStrategy::bounded_out_of_orderness(BOUND).with_interval(Duration::ZERO),
    );
    source
        .key_by(|e: &Event| e.key, parallelism)
        .window("windows", Windows::tumbling(window))
        .aggregate((Count, Sum::of(|e: &Event| e.value)))
        .sink("arrivals", Arrivals { seen: Arc::clone(&seen) });
    let report = match job.build().map_err(|e| e.to_string()).and_then(|j| j.run_blocking().map_err(|e| e.to_string()))
    {
        Ok(r) => r,
        Err(e) => {
            eprintln!("error: {e}");
            return ExitCode::FAILURE;
        }
    };
    println!("read {} events in {:.1} s", report.metrics.source_records(), report.elapsed.as_secs_f64());

    let crossings = crossings.lock().map(|c| c.clone()).unwrap_or_default();
    let seen = seen.lock().map(|s| s.clone()).unwrap_or_default();
    let mut first = Vec::new();
    let mut last = Vec::new();
    for (end, (a, b, _rows)) in &seen {
        // Windows fired by the end of input were not crossed by every
        // source's watermark: skip them.
        let Some(&(n, due)) = crossings.get(end) else { continue };
        if n < parallelism {
            continue;
        }
        first.push(a.saturating_duration_since(due).as_secs_f64() * 1e3);
        last.push(b.saturating_duration_since(due).as_secs_f64() * 1e3);
    }
    if first.is_empty() {
        eprintln!("error: no window closed before the end of input (run longer)");
        return ExitCode::FAILURE;
    }
    first.sort_by(f64::total_cmp);
    last.sort_by(f64::total_cmp);
    println!("{} windows closed by the watermark; latency from the watermark crossing to the result, ms:", first.len());
    println!("{:>12} {:>8} {:>8} {:>8} {:>8}", "", "p50", "p90", "p99", "max");
    for (name, v) in [("first row", &first), ("last row", &last)] {
        println!(
            "{name:>12} {:8.2} {:8.2} {:8.2} {:8.2}",
            quantile(v, 0.5),
            quantile(v, 0.9),
            quantile(v, 0.99),
            quantile(v, 1.0)
        );
    }
    ExitCode::SUCCESS
}
