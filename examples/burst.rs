//! A burst against a slow sink: memory stays flat and nothing is lost.
//!
//! An unthrottled generator (the WORKLOAD.md stream, millions of events per
//! second) feeds a sink that accepts only 100,000 records per second — it
//! paces itself with a token bucket and blocks its thread, as a slow
//! external system would. The bounded mailbox between them fills, the
//! source actor stops polling its source until the sink has taken a batch,
//! and so the job runs at the sink's pace with memory bounded by the
//! mailbox: the resident set sampled every 500 ms stays where it was after
//! the warm-up. At the end the source is stopped, the job drains, and every
//! record the source read must have reached the sink.
//!
//! Run it with `cargo run --release --example burst -- --secs 25`
//! (`--rate N` sets the sink's pace). It exits non-zero if a record was
//! lost.

use std::process::ExitCode;
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
use std::sync::Arc;
use std::time::{Duration, Instant};

use weir::prelude::*;
use weir::{Placement, SinkError};
use weir_harness::workload::{Event, Generator, StreamParams};

/// Delivers at most `rate` records per second: each batch waits (blocking
/// the sink's thread) until the token bucket allows it.
struct PacedSink {
    rate: f64,
    start: Option<Instant>,
    delivered: Arc<AtomicU64>,
}

impl Sink<Event> for PacedSink {
    fn write(&mut self, batch: &mut Vec<Record<Event>>) -> Result<(), SinkError> {
        let start = *self.start.get_or_insert_with(Instant::now);
        let done = self.delivered.load(Relaxed) + batch.len() as u64;
        let due = start + Duration::from_secs_f64(done as f64 / self.rate);
        if let Some(wait) = due.checked_duration_since(Instant::now()) {
            std::thread::sleep(wait);
        }
        self.delivered.store(done, Relaxed);
        batch.clear();
        Ok(())
    }
}

/// This process's resident set now, KiB (`VmRSS`).
fn rss_kb() -> u64 {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines().find_map(|l| l.strip_prefix("VmRSS:")).and_then(|v| v.split_whitespace().next()?.parse().ok())
        })
        .unwrap_or(0)
}

fn arg<T: std::str::FromStr>(name: &str, default: T) -> T {
    let args: Vec<String> = std::env::args().collect();
    args.iter().position(|a| a == name).and_then(|i| args.get(i + 1)).and_then(|v| v.parse().ok()).unwrap_or(default)
}

fn main() -> ExitCode {
    let secs: f64 = arg("--secs", 25.0);
    let rate: f64 = arg("--rate", 100_000.0);
    let warmup = (secs / 5.0).min(5.0);
    println!("burst: an unthrottled generator into a sink that takes {rate:.0} records/s, for {secs} s");

    let delivered = Arc::new(AtomicU64::new(0));
    // Source and sink on threads of their own: the source really is faster.
    let job = JobBuilder::new("burst").placement(Placement::ThreadPerActor);
    let stream = StreamParams { events: u64::MAX / 2, keys: 16, ..StreamParams::default() };
    job.source(
        "generator",
        Generator::new(stream, 0, 1),
        |e: &Event| e.ts,
        WatermarkStrategy::bounded_out_of_orderness(2_000),
    )
    .sink("paced", PacedSink { rate, start: None, delivered: Arc::clone(&delivered) });
    let job = match job.build() {
        Ok(j) => j,
        Err(e) => return fail(&e.to_string()),
    };
    let handle = match job.spawn() {
        Ok(h) => h,
        Err(e) => return fail(&e.to_string()),
    };

    // Sample the resident set every 500 ms.
    let start = Instant::now();
    let mut samples: Vec<(f64, u64)> = Vec::new();
    while start.elapsed().as_secs_f64() < secs {
        std::thread::sleep(Duration::from_millis(500));
        let t = start.elapsed().as_secs_f64();
        let m = handle.metrics();
        samples.push((t, rss_kb()));
        if samples.len() % 4 == 0 {
            println!(
                "  {t:5.1} s: RSS {:6.1} MB, read {:>9}, delivered {:>9}, source backpressured {:.1} s",
                rss_kb() as f64 / 1024.0,
                m.source_records(),
                delivered.load(Relaxed),
                m.of_kind(ActorKind::Source).map(|a| a.backpressured.as_secs_f64()).sum::<f64>()
            );
        }
    }
    handle.stop();
    let report = match handle.wait_blocking() {
        Ok(r) => r,
        Err(e) => return fail(&e.to_string()),
    };

    let read = report.metrics.source_records();
    let sunk = report.metrics.sink_records();
    let counted = delivered.load(Relaxed);
    let at_warmup = samples.iter().find(|(t, _)| *t >= warmup).map_or(0, |s| s.1);
    let max_after = samples.iter().filter(|(t, _)| *t >= warmup).map(|s| s.1).max().unwrap_or(0);
    let growth = max_after as f64 / at_warmup.max(1) as f64;
    let elapsed = report.elapsed.as_secs_f64();
    println!();
    println!(
        "RSS after warm-up ({warmup:.0} s): {:.1} MB; max after: {:.1} MB; ratio {growth:.3} ({})",
        at_warmup as f64 / 1024.0,
        max_after as f64 / 1024.0,
        if growth <= 1.10 { "within 10 %" } else { "MORE than 10 %" }
    );
    println!(
        "throughput: {:.0} records/s delivered over {elapsed:.1} s (sink pace {rate:.0}/s)",
        counted as f64 / elapsed
    );
    println!("records read by the source: {read}; delivered (job metrics): {sunk}; counted in the sink: {counted}");
    if read == sunk && sunk == counted && read > 0 {
        println!("nothing lost");
        ExitCode::SUCCESS
    } else {
        fail(&format!("{} records lost", read.saturating_sub(counted)))
    }
}

fn fail(msg: &str) -> ExitCode {
    eprintln!("error: {msg}");
    ExitCode::FAILURE
}
