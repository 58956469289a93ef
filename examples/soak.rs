//! A soak: a checkpointing job killed with SIGKILL again and again for
//! minutes, resumed every time from its checkpoint directory; its memory
//! must stay flat and its result must equal an uninterrupted run's.
//!
//! The job runs three pipelines over the WORKLOAD.md stream, each read by
//! two throttled generator instances: WL1 (tumbling windows of 10 s, 16
//! keys), WL2 (sliding windows of 10 s every 2 s, 16 keys) and WL3
//! (sessions with a gap of 500 ms, 5,000 keys), each into a sink whose
//! checksum of the rows is part of every checkpoint, taken every 100 ms.
//! This program runs the job as a child process (itself, with `--child`),
//! SIGKILLs it at random moments (every `secs/40` to `secs/15`), starts it
//! again on the same directory, and samples the child's resident set
//! (`VmRSS` in `/proc/<pid>/status`) every second, until a child finishes.
//! Then it runs the job once more, unthrottled and never killed, in a
//! directory of its own, and compares the checksums.
//!
//! Run it with `cargo run --release --example soak` (10 minutes) or
//! `-- --secs 60`; `--rate N` sets the events per second of each pipeline
//! (default 10,000). It exits non-zero if the checksums differ.

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitCode, Stdio};
use std::sync::{mpsc, Arc, Mutex};
use std::time::{Duration, Instant};

use weir::prelude::*;
use weir::{CheckpointConfig, Sink, SinkError};
use weir_harness::workload::{mix, Checksum, ChecksumSink, Event, Generator, Row, StreamParams};

/// The three pipelines: name, window, keys.
const PIPELINES: [(&str, Windows, u64); 3] = [
    ("wl1", Windows::Tumbling { size: 10_000 }, 16),
    ("wl2", Windows::Sliding { size: 10_000, slide: 2_000 }, 16),
    ("wl3", Windows::Session { gap: 500 }, 5_000),
];

/// Events per second of event time: with the default `--rate`, event time
/// runs as fast as the wall clock, and windows fire as they would live.
const EVENT_RATE: u64 = 10_000;

fn arg<T: std::str::FromStr>(name: &str, default: T) -> T {
    let args: Vec<String> = std::env::args().collect();
    args.iter().position(|a| a == name).and_then(|i| args.get(i + 1)).and_then(|v| v.parse().ok()).unwrap_or(default)
}

fn main() -> ExitCode {
    if std::env::args().any(|a| a == "--child") {
        return child();
    }
    let secs: f64 = arg("--secs", 600.0);
    let rate: u64 = arg("--rate", 10_000);
    let events = (secs * rate as f64) as u64;
    let dir = tempfile::tempdir().expect("a temporary directory");
    println!("soak: {events} events per pipeline at {rate}/s (about {secs:.0} s), checkpoints every 100 ms, SIGKILL every {:.0}-{:.0} s", secs / 40.0, secs / 15.0);

    let started = Instant::now();
    let mut rng = weir_harness::workload::SEED ^ events;
    let mut kills = 0u32;
    let mut samples: Vec<(f64, u64)> = Vec::new();
    let mut checkpoints = 0u64;
    let soaked = loop {
        let mut run = Run::start(dir.path(), events, rate);
        rng = mix(rng);
        let kill_at = Instant::now()
            + Duration::from_secs_f64(secs / 40.0 + (rng % 1000) as f64 / 1000.0 * (secs / 15.0 - secs / 40.0));
        let outcome = loop {
            std::thread::sleep(Duration::from_secs(1));
            if let Some(kb) = run.rss_kb() {
                samples.push((started.elapsed().as_secs_f64(), kb));
                if samples.len() % 30 == 0 {
                    let last = &samples[samples.len() - 30..];
                    let (lo, hi) =
                        (last.iter().map(|s| s.1).min().unwrap_or(0), last.iter().map(|s| s.1).max().unwrap_or(0));
                    println!(
                        "  {:5.0} s: RSS {:6.1} MB (last 30 s {:.1}-{:.1}), {kills} kills, {} checkpoints, child {}",
                        started.elapsed().as_secs_f64(),
                        kb as f64 / 1024.0,
                        lo as f64 / 1024.0,
                        hi as f64 / 1024.0,
                        checkpoints + run.completed(),
                        run.progress()
                    );
                }
            }
            match run.finished() {
                Ok(Some(done)) => break Some(done),
                Ok(None) => {}
                Err(e) => return fail(&e),
            }
            if Instant::now() >= kill_at {
                break None;
            }
        };
        checkpoints += run.completed();
        match outcome {
            Some(result) => break result,
            None => {
                run.kill();
                kills += 1;
            }
        }
    };
    let soak_secs = started.elapsed().as_secs_f64();

    println!("reference: the same job, unthrottled and never killed");
    let reference_dir = tempfile::tempdir().expect("a temporary directory");
    let mut reference = Run::start(reference_dir.path(), events, 0);
    let reference = loop {
        std::thread::sleep(Duration::from_millis(200));
        match reference.finished() {
            Ok(Some(done)) => break done,
            Ok(None) => {}
            Err(e) => return fail(&e),
        }
    };

    let rss: Vec<u64> = samples.iter().map(|s| s.1).collect();
    let mb = |kb: u64| kb as f64 / 1024.0;
    let (lo, hi) = (rss.iter().copied().min().unwrap_or(0), rss.iter().copied().max().unwrap_or(0));
    let minute =
        |from: f64, to: f64| samples.iter().filter(|s| s.0 >= from && s.0 < to).map(|s| s.1).max().unwrap_or(0);
    println!();
    println!("soak: {soak_secs:.0} s, {kills} kills, {checkpoints} checkpoints completed across the runs");
    println!(
        "RSS of the child: min {:.1} MB, max {:.1} MB; max in the first minute {:.1} MB, in the last minute {:.1} MB",
        mb(lo),
        mb(hi),
        mb(minute(0.0, 60.0)),
        mb(minute(soak_secs - 60.0, soak_secs + 1.0))
    );
    for (name, _, _) in PIPELINES {
        let got = soaked.iter().find(|(n, _)| n == name).map(|(_, c)| c.to_string()).unwrap_or_default();
        let want = reference.iter().find(|(n, _)| n == name).map(|(_, c)| c.to_string()).unwrap_or_default();
        println!("{name}: {got}  (uninterrupted: {want})");
    }
    if soaked == reference && !soaked.is_empty() {
        println!("checksums equal the uninterrupted run's");
        ExitCode::SUCCESS
    } else {
        fail("the checksums differ from the uninterrupted run's")
    }
}

fn fail(msg: &str) -> ExitCode {
    eprintln!("error: {msg}");
    ExitCode::FAILURE
}

/// The checksums a child printed when it finished.
type Checksums = Vec<(String, Checksum)>;

/// One child process running the job.
struct Run {
    child: Child,
    lines: mpsc::Receiver<String>,
    /// The child's last progress line.
    last: String,
    result: Checksums,
}

impl Run {
    fn start(dir: &Path, events: u64, rate: u64) -> Run {
        let exe = std::env::current_exe().expect("this program's path");
        let mut child = Command::new(exe)
            .args([
                "--child",
                "--dir",
                &dir.display().to_string(),
                "--events",
                &events.to_string(),
                "--rate",
                &rate.to_string(),
            ])
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .expect("the child starts");
        let out = child.stdout.take().expect("piped");
        let (tx, lines) = mpsc::channel();
        std::thread::spawn(move || {
            for line in BufReader::new(out).lines().map_while(Result::ok) {
                if tx.send(line).is_err() {
                    break;
                }
            }
        });
        Run { child, lines, last: String::new(), result: Vec::new() }
    }

    fn drain(&mut self) {
        while let Ok(line) = self.lines.try_recv() {
            if let Some(rest) = line.strip_prefix("checksum ") {
                let mut w = rest.split_whitespace();
                let name = w.next().unwrap_or_default().to_string();
                let n: Vec<u64> = w.filter_map(|x| x.parse().ok()).collect();
                if let [rows, events, total, digest] = n[..] {
                    self.result.push((name, Checksum { rows, events, total, digest }));
                }
            } else {
                self.last = line;
            }
        }
    }

    /// The child's resident set, KiB.
    fn rss_kb(&self) -> Option<u64> {
        let status = std::fs::read_to_string(format!("/proc/{}/status", self.child.id())).ok()?;
        status.lines().find_map(|l| l.strip_prefix("VmRSS:")).and_then(|v| v.split_whitespace().next()?.parse().ok())
    }

    /// Checkpoints the child reported complete.
    fn completed(&mut self) -> u64 {
        self.drain();
        self.last.split_whitespace().find_map(|w| w.strip_prefix("completed=")?.parse().ok()).unwrap_or(0)
    }

    fn progress(&mut self) -> String {
        self.drain();
        self.last.clone()
    }

    /// The checksums, once the child has exited; an error if it failed.
    fn finished(&mut self) -> Result<Option<Checksums>, String> {
        let Some(status) = self.child.try_wait().map_err(|e| e.to_string())? else { return Ok(None) };
        if !status.success() {
            return Err(format!("the child failed: {status}"));
        }
        // Its output pipe is closed: the reader thread sends the rest.
        std::thread::sleep(Duration::from_millis(100));
        self.drain();
        Ok(Some(std::mem::take(&mut self.result)))
    }

    fn kill(&mut self) {
        let _ = self.child.kill(); // SIGKILL
        let _ = self.child.wait();
        self.drain();
    }
}

/// Counts late events (there are none: the bound is the disorder); the
/// count is checkpointed.
struct Late(Arc<Mutex<u64>>);

impl Sink<(u64, Event)> for Late {
    fn write(&mut self, batch: &mut Vec<Record<(u64, Event)>>) -> Result<(), SinkError> {
        *self.0.lock().map_err(|e| SinkError::Other(e.to_string()))? += batch.len() as u64;
        batch.clear();
        Ok(())
    }
    fn pre_commit(&mut self, _id: weir::CheckpointId) -> Result<weir::Snapshot, SinkError> {
        let n = *self.0.lock().map_err(|e| SinkError::Other(e.to_string()))?;
        weir::Snapshot::encode(&n).map_err(|e| SinkError::Other(e.to_string()))
    }
    fn restore(&mut self, _id: weir::CheckpointId, state: &weir::Snapshot) -> Result<(), SinkError> {
        *self.0.lock().map_err(|e| SinkError::Other(e.to_string()))? =
            state.decode().map_err(|e| SinkError::Other(e.to_string()))?;
        Ok(())
    }
}

/// The child: runs the job on `--dir` (resuming from its checkpoints),
/// printing its checkpoint counts every second and its checksums at the end.
fn child() -> ExitCode {
    let dir = PathBuf::from(arg("--dir", String::from(".")));
    let events: u64 = arg("--events", 1_000_000);
    let rate: u64 = arg("--rate", 10_000);
    let every = Duration::from_millis(arg("--interval-ms", 100));
    let mut job = JobBuilder::new("soak");
    // `--interval-ms 0`: no checkpoints (to compare memory without them).
    if !every.is_zero() {
        job = job.checkpointing(CheckpointConfig::new(dir.join("checkpoints"), every));
    }
    let job = job.configuration("events", events).configuration("rate", rate);
    let mut sums = Vec::new();
    let late = Arc::new(Mutex::new(0u64));
    for (name, windows, keys) in PIPELINES {
        let params = StreamParams { events, keys, rate: EVENT_RATE, disorder: 2_000 };
        let per_instance = if rate == 0 { f64::INFINITY } else { rate as f64 / 2.0 };
        let strategy =
            WatermarkStrategy::bounded_out_of_orderness(2_000).with_interval(Duration::ZERO).with_alignment(1_000);
        let source = move |i| Throttled::new(Generator::new(params, i, 2), per_instance);
        let sum = Arc::new(Mutex::new(Checksum::default()));
        let sessions = matches!(windows, Windows::Session { .. });
        let late = Late(Arc::clone(&late));
        job.parallel_source(&format!("{name}-generator"), 2, source, |e: &Event| e.ts, strategy)
            .key_by(|e: &Event| e.key, 2)
            .window(&format!("{name}-windows"), windows)
            .late_data(|stream| stream.sink(&format!("{name}-late"), late))
            .aggregate((Count, Sum::of(|e: &Event| e.value)))
            .map(move |r: WindowResult<u64, (u64, i64)>| Row {
                window_start: r.window.start,
                key: r.key,
                count: r.value.0,
                sum: r.value.1,
                session_end: sessions.then_some(r.window.end),
            })
            .sink(&format!("{name}-results"), ChecksumSink::new(Arc::clone(&sum), None, sessions, true));
        sums.push((name, sum));
    }
    let handle = match job.build().map_err(|e| e.to_string()).and_then(|j| j.spawn().map_err(|e| e.to_string())) {
        Ok(h) => h,
        Err(e) => {
            eprintln!("error: {e}");
            return ExitCode::FAILURE;
        }
    };
    while !handle.is_finished() {
        std::thread::sleep(Duration::from_secs(1));
        let c = handle.checkpoint_summary();
        let last = c.recent.iter().rev().find(|s| s.completed);
        println!(
            "completed={} aborted={} last_ms={} bytes={} resumed={:?} read={}",
            c.completed,
            c.aborted,
            last.map_or(0, |s| s.duration.as_millis()),
            last.map_or(0, |s| s.bytes),
            handle.resumed_from(),
            handle.metrics().source_records()
        );
    }
    match handle.wait_blocking() {
        Ok(_) => {
            for (name, sum) in &sums {
                let c = sum.lock().map(|s| *s).unwrap_or_default();
                println!("checksum {name} {c}");
            }
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("error: {e}");
            ExitCode::FAILURE
        }
    }
}
