//! Sources: files (JSON lines, CSV) with dead letters, push handles,
//! throttling.

use std::io::Write;
use std::time::{Duration, Instant};

use serde::Deserialize;
use weir::prelude::*;
use weir::TrySendError;

#[derive(Debug, Clone, PartialEq, Deserialize)]
struct Reading {
    ts: i64,
    sensor: String,
    value: f64,
}

fn run_file(source: FileSource<Reading>) -> (Vec<Reading>, Vec<DeadLetter>, weir::JobReport) {
    let job = JobBuilder::new("file");
    let (sink, got) = CollectSink::new();
    let (dead_sink, dead) = CollectSink::new();
    job.source("readings", source, |r: &Reading| r.ts, WatermarkStrategy::monotonic()).sink("out", sink);
    job.dead_letters().sink("dead", dead_sink);
    let report = job.build().unwrap().run_blocking().unwrap();
    (got.values(), dead.values(), report)
}

#[test]
fn malformed_json_line_goes_to_dead_letters_and_the_job_continues() {
    let mut f = tempfile::NamedTempFile::new().unwrap();
    writeln!(f, r#"{{"ts": 1, "sensor": "a", "value": 1.5}}"#).unwrap();
    writeln!(f, r#"{{"ts": 2, "sensor": "b", "value": oops}}"#).unwrap();
    writeln!(f).unwrap();
    writeln!(f, r#"{{"ts": 3, "sensor": "c", "value": 3.5}}"#).unwrap();
    writeln!(f, r#"{{"ts": 4, "sensor": "d"}}"#).unwrap();
    let (got, dead, report) = run_file(FileSource::json_lines(f.path()));
    assert_eq!(got.iter().map(|r| r.sensor.as_str()).collect::<Vec<_>>(), ["a", "c"]);
    assert_eq!(dead.len(), 2);
    let path = f.path().display().to_string();
    assert_eq!((dead[0].origin.as_str(), dead[0].line), (path.as_str(), 2));
    assert!(dead[0].error.contains("expected value"), "{}", dead[0].error);
    assert!(dead[0].raw.contains("oops"));
    assert_eq!(dead[1].line, 5);
    assert!(dead[1].error.contains("missing field `value`"), "{}", dead[1].error);
    assert_eq!(report.metrics.dead_letters(), 2);
}

#[test]
fn malformed_csv_line_goes_to_dead_letters_with_its_line_number() {
    let mut f = tempfile::NamedTempFile::new().unwrap();
    writeln!(f, "ts,sensor,value").unwrap();
    writeln!(f, "1,a,1.5").unwrap();
    writeln!(f, "2,b,not-a-number").unwrap();
    writeln!(f, "3,c,3.5").unwrap();
    let (got, dead, _) = run_file(FileSource::csv(f.path()));
    assert_eq!(
        got,
        vec![Reading { ts: 1, sensor: "a".into(), value: 1.5 }, Reading { ts: 3, sensor: "c".into(), value: 3.5 },]
    );
    assert_eq!(dead.len(), 1);
    assert_eq!(dead[0].line, 3);
    assert!(dead[0].raw.contains("not-a-number"));
}

#[test]
fn undecodable_and_over_long_lines_are_dead_letters_and_the_job_reads_on() {
    let mut f = tempfile::NamedTempFile::new().unwrap();
    f.write_all(b"{\"ts\": 1, \"sensor\": \"a\", \"value\": 1.5}\n").unwrap();
    f.write_all(b"{\"ts\": 2, \"sensor\": \"\xff\", \"value\": 2.5}\n").unwrap();
    f.write_all(format!("{{\"ts\": 3, \"sensor\": \"{}\", \"value\": 3.5}}\n", "x".repeat(200)).as_bytes()).unwrap();
    f.write_all(b"{\"ts\": 4, \"sensor\": \"d\", \"value\": 4.5}\n").unwrap();
    let (got, dead, report) = run_file(FileSource::json_lines(f.path()).max_line_bytes(100));
    assert_eq!(got.iter().map(|r| r.sensor.as_str()).collect::<Vec<_>>(), ["a", "d"]);
    assert_eq!(dead.iter().map(|d| (d.line, d.offset)).collect::<Vec<_>>(), [(2, 39), (3, 78)]);
    assert!(dead[0].error.contains("not valid UTF-8"), "{}", dead[0].error);
    assert!(dead[1].error.contains("more than the limit of 100 bytes"), "{}", dead[1].error);
    assert_eq!(report.metrics.dead_letters(), 2);
}

#[test]
fn unterminated_csv_quote_is_one_dead_letter_and_the_job_reads_on() {
    let mut f = tempfile::NamedTempFile::new().unwrap();
    writeln!(f, "ts,sensor,value").unwrap();
    writeln!(f, "1,\"a,1.5").unwrap();
    writeln!(f, "2,b,2.5").unwrap();
    writeln!(f, "3,c,3.5").unwrap();
    let (got, dead, _) = run_file(FileSource::csv(f.path()));
    assert_eq!(got.iter().map(|r| r.ts).collect::<Vec<_>>(), [2, 3]);
    assert_eq!(dead.iter().map(|d| (d.line, d.offset, d.raw.as_str())).collect::<Vec<_>>(), [(2, 16, "1,\"a,1.5")]);
}

#[test]
fn missing_file_is_a_dead_letter_naming_it() {
    let (got, dead, _) = run_file(FileSource::json_lines("/nonexistent/weir-input.jsonl"));
    assert!(got.is_empty());
    assert_eq!(dead.len(), 1);
    assert_eq!(dead[0].origin, "/nonexistent/weir-input.jsonl");
    assert!(dead[0].error.contains("cannot open"), "{}", dead[0].error);
}

#[test]
fn dead_letters_without_a_sink_are_counted() {
    let mut f = tempfile::NamedTempFile::new().unwrap();
    writeln!(f, "garbage").unwrap();
    writeln!(f, r#"{{"ts": 3, "sensor": "c", "value": 3.5}}"#).unwrap();
    let job = JobBuilder::new("file");
    let (sink, got) = CollectSink::new();
    job.source(
        "readings",
        FileSource::<Reading>::json_lines(f.path()),
        |r: &Reading| r.ts,
        WatermarkStrategy::monotonic(),
    )
    .sink("out", sink);
    let report = job.build().unwrap().run_blocking().unwrap();
    assert_eq!(got.len(), 1);
    assert_eq!(report.metrics.dead_letters(), 1);
}

#[test]
fn push_handle_try_send_hands_the_record_back_when_full() {
    let (src, handle) = push_source::<u32>(2);
    handle.try_send(1).unwrap();
    handle.try_send(2).unwrap();
    assert_eq!(handle.try_send(3), Err(TrySendError::Full(3)));
    drop(src);
    assert_eq!(handle.try_send(4), Err(TrySendError::Closed(4)));
}

#[test]
fn throttled_source_is_slowed_to_its_rate_and_loses_nothing() {
    let job = JobBuilder::new("throttle").batch_size(100);
    let (sink, got) = CollectSink::new();
    job.source(
        "slow",
        Throttled::new(IterSource::new(0..2_000i64), 10_000.0),
        |n: &i64| *n,
        WatermarkStrategy::monotonic(),
    )
    .sink("out", sink);
    let start = Instant::now();
    job.build().unwrap().run_blocking().unwrap();
    let took = start.elapsed();
    assert_eq!(got.values(), (0..2_000).collect::<Vec<_>>());
    assert!(took >= Duration::from_millis(150), "2,000 records at 10,000/s take ~200 ms, took {took:?}");
}
