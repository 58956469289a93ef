//! `weir bench` end to end, small: it runs the baseline and weir at p=1 and
//! p=2 in child processes, prints the table, and the checksums agree. (The
//! baseline's check-value tests are unit tests beside it, in `src/bench/`.)

use std::process::Command;

#[test]
fn bench_runs_every_engine_and_their_checksums_agree() {
    let out = Command::new(env!("CARGO_BIN_EXE_weir"))
        .args(["bench", "--events", "300000", "--runs", "1", "--workloads", "wl1", "--keys", "16"])
        .output()
        .expect("weir runs");
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "weir bench failed: {}\n{stdout}\n{stderr}", out.status);
    let rows: Vec<&str> = stdout.lines().filter(|l| l.starts_with("| wl1 | 16 |")).collect();
    assert_eq!(rows.len(), 3, "a row per engine:\n{stdout}");
    assert!(rows[0].contains("| baseline |") && rows[0].contains("reference"), "{}", rows[0]);
    for (row, engine) in rows[1..].iter().zip(["weir p=1", "weir p=2"]) {
        assert!(row.contains(engine) && row.contains("= baseline"), "{row}");
    }
    // 300,000 events at 100,000 per second of event time: 3 s, one window
    // of 10 s, 16 keys, every event counted once.
    assert!(stdout.lines().any(|l| l.starts_with("checksum wl1 K=16: 16 300000 ")), "the checksum line: {stdout}");
}

#[test]
fn bench_one_prints_one_machine_readable_line() {
    let out = Command::new(env!("CARGO_BIN_EXE_weir"))
        .args(["bench-one", "--workload", "wl3", "--keys", "1000", "--events", "100000", "--engine", "baseline"])
        .output()
        .expect("weir runs");
    assert!(out.status.success());
    let stdout = String::from_utf8_lossy(&out.stdout);
    let line = stdout.lines().find(|l| l.starts_with("weir-bench ")).expect("the result line");
    for field in [
        "workload=wl3",
        "keys=1000",
        "events=100000",
        "engine=baseline",
        "secs=",
        "rss_kb=",
        "sum_count=100000",
        "late=0",
    ] {
        assert!(line.contains(field), "{field} in {line}");
    }
}
