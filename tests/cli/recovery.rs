//! Crash recovery: the `weir` CLI is killed with SIGKILL at random moments
//! and restarted with the same checkpoint directory until it finishes; the
//! committed output then holds every row exactly once.

use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use weir_harness::workload::Checksum;

/// A small deterministic generator (xorshift) for the kill moments.
struct Rng(u64);

impl Rng {
    fn next_ms(&mut self, lo: u64, hi: u64) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        lo + self.0 % (hi - lo)
    }
}

fn weir(args: &[&str]) -> Command {
    let mut c = Command::new(env!("CARGO_BIN_EXE_weir"));
    c.args(args).stdin(Stdio::null()).stdout(Stdio::piped()).stderr(Stdio::piped());
    c
}

/// The checksum of a CSV written by `--output` by `workload`.
fn checksum_of(path: &Path, workload: &str) -> Checksum {
    let mut sum = Checksum::default();
    let mut reader = csv::Reader::from_path(path).expect("the output exists");
    if workload == "wl4" {
        let header = reader.headers().expect("a header").clone();
        assert_eq!(header.iter().collect::<Vec<_>>(), ["a_ts", "key", "a_value", "b_ts", "b_value"]);
    }
    for rec in reader.records() {
        let rec = rec.expect("a well-formed row");
        let f = |i: usize| rec[i].parse::<i64>().expect("a number");
        match workload {
            // a_ts,key,a_value,b_ts,b_value: WORKLOAD.md's WL4 row.
            "wl4" => sum.add(f(0), f(1) as u64, 1, f(2) * 1000 + f(4), Some(f(3))),
            "wl3" => sum.add(f(0), f(1) as u64, f(2) as u64, f(3), Some(f(4))),
            _ => sum.add(f(0), f(1) as u64, f(2) as u64, f(3), None),
        }
    }
    sum
}

fn crash_and_resume(workload: &str, keys: &str, throttle: &str, seed: u64, want: Checksum) {
    let dir = tempfile::tempdir().unwrap();
    let ckpt = dir.path().join("checkpoints");
    let out = dir.path().join("out.csv");
    let args = [
        "run",
        workload,
        "--events",
        "3000000",
        "--keys",
        keys,
        "--parallelism",
        "2",
        "--throttle",
        throttle,
        "--checkpoint-dir",
        ckpt.to_str().unwrap(),
        "--checkpoint-interval-ms",
        "200",
        "--output",
        out.to_str().unwrap(),
    ];
    let mut rng = Rng(seed);
    let mut kills = 0;
    let deadline = Instant::now() + Duration::from_secs(240);
    let last_line = loop {
        assert!(Instant::now() < deadline, "{workload}: did not finish after {kills} kills");
        let mut child = weir(&args).spawn().expect("weir runs");
        let kill_at = Instant::now() + Duration::from_millis(rng.next_ms(400, 1600));
        let finished = loop {
            if let Some(status) = child.try_wait().unwrap() {
                break Some(status);
            }
            if Instant::now() >= kill_at && kills < 4 {
                child.kill().unwrap(); // SIGKILL
                child.wait().unwrap();
                kills += 1;
                break None;
            }
            std::thread::sleep(Duration::from_millis(5));
        };
        if let Some(status) = finished {
            let output = child.wait_with_output().unwrap();
            let stderr = String::from_utf8_lossy(&output.stderr);
            assert!(status.success(), "{workload}: weir failed: {stderr}");
            break String::from_utf8_lossy(&output.stdout).lines().last().unwrap_or_default().to_string();
        }
    };
    assert!(kills >= 2, "{workload}: the run was killed {kills} times; make it longer");
    assert_eq!(checksum_of(&out, workload), want, "{workload}: the committed output after {kills} kills");
    assert_eq!(last_line, want.to_string(), "{workload}: the printed checksum after {kills} kills");
}

#[test]
fn wl1_killed_and_resumed_commits_every_row_exactly_once() {
    let want = Checksum { rows: 48, events: 3_000_000, total: 1_498_945_689, digest: 14_218_170_467_609_890_282 };
    crash_and_resume("wl1", "16", "1000000", 0x5EED, want);
}

#[test]
fn wl3_killed_and_resumed_commits_every_row_exactly_once() {
    let want =
        Checksum { rows: 1_813_513, events: 3_000_000, total: 1_498_945_689, digest: 12_511_146_539_894_680_399 };
    crash_and_resume("wl3", "100000", "1000000", 0xC0FFEE, want);
}

#[test]
fn wl4_join_state_survives_kills_and_every_pair_is_committed_exactly_once() {
    let want = Checksum { rows: 762_954, events: 762_954, total: 381_480_690_399, digest: 2_924_520_852_787_172_923 };
    crash_and_resume("wl4", "100000", "1000000", 0xBEEF, want);
}

/// Runs `weir` to its end; (exit code, last line of stdout, stderr).
fn run_to_end(args: &[&str]) -> (i32, String, String) {
    let output = weir(args).output().expect("weir runs");
    let stdout = String::from_utf8_lossy(&output.stdout).lines().last().unwrap_or_default().to_string();
    (output.status.code().unwrap_or(-1), stdout, String::from_utf8_lossy(&output.stderr).into_owned())
}

#[test]
fn resuming_with_other_parameters_is_refused_and_leaves_the_output_alone() {
    let dir = tempfile::tempdir().unwrap();
    let (ckpt, out) = (dir.path().join("checkpoints"), dir.path().join("out.csv"));
    let (ckpt, out) = (ckpt.to_str().unwrap(), out.to_str().unwrap());
    let common =
        ["--events", "300000", "--throttle", "600000", "--checkpoint-dir", ckpt, "--checkpoint-interval-ms", "50"];
    let first: Vec<&str> = ["run", "wl1", "--keys", "16", "--output", out].iter().chain(&common).copied().collect();
    let (code, _, stderr) = run_to_end(&first);
    assert_eq!(code, 0, "{stderr}");
    let before = std::fs::read(out).unwrap();

    // Another number of keys: refused, naming the setting; the output stays.
    let other_keys: Vec<&str> =
        ["run", "wl1", "--keys", "100", "--output", out].iter().chain(&common).copied().collect();
    let (code, _, stderr) = run_to_end(&other_keys);
    assert_ne!(code, 0, "a resume with other keys must be refused");
    assert!(stderr.contains("keys was 16, is now 100"), "{stderr}");
    assert_eq!(std::fs::read(out).unwrap(), before, "the refused resume left the output byte for byte");

    // Dropping --output: refused too (the file would silently miss rows).
    let no_output: Vec<&str> = ["run", "wl1", "--keys", "16"].iter().chain(&common).copied().collect();
    let (code, _, stderr) = run_to_end(&no_output);
    assert_ne!(code, 0);
    assert!(stderr.contains("output was"), "{stderr}");
    assert_eq!(std::fs::read(out).unwrap(), before);
}

#[test]
fn absurd_flag_values_are_refused_before_the_job_starts() {
    for (flag, value, says) in [
        ("--throttle", "1e-300", "--throttle"),
        ("--throttle", "NaN", "--throttle"),
        ("--throttle", "inf", "--throttle"),
        ("--disorder", "18446744073709551615", "--disorder"),
        ("--bound", "9223372036854775808", "--bound"),
        ("--events", "18446744073709551615", "--events"),
        ("--slots", "100000", "--slots"),
        ("--checkpoint-interval-ms", "0", "--checkpoint-interval-ms"),
    ] {
        let started = Instant::now();
        let (code, _, stderr) = run_to_end(&["run", "wl3", "--events", "3000", flag, value]);
        assert_eq!(code, 2, "{flag} {value}: {stderr}");
        assert!(stderr.contains(says), "{flag} {value}: {stderr}");
        assert!(started.elapsed() < Duration::from_secs(10), "{flag} {value}: refused at once");
    }
}

#[test]
fn after_a_resume_the_late_count_covers_the_whole_job() {
    // B < D: some events are late; which ones depends on how batches and
    // watermarks interleave, but every event is either in a result or late.
    let events = 3_000_000u64;
    let dir = tempfile::tempdir().unwrap();
    let ckpt = dir.path().join("checkpoints");
    let n = events.to_string();
    let args = [
        "run",
        "wl1",
        "--events",
        &n,
        "--bound",
        "1000",
        "--throttle",
        "1500000",
        "--checkpoint-dir",
        ckpt.to_str().unwrap(),
        "--checkpoint-interval-ms",
        "100",
    ];
    // Killed once two checkpoints are complete.
    let mut child = weir(&args).spawn().unwrap();
    let deadline = Instant::now() + Duration::from_secs(30);
    let complete = |d: &Path| {
        std::fs::read_dir(d).map(|e| e.flatten().filter(|e| e.path().join("_metadata").exists()).count()).unwrap_or(0)
    };
    while complete(&ckpt) < 2 {
        assert!(Instant::now() < deadline && child.try_wait().unwrap().is_none(), "no checkpoint before the end");
        std::thread::sleep(Duration::from_millis(10));
    }
    child.kill().unwrap();
    child.wait().unwrap();
    let output = weir(&args).output().unwrap();
    let stdout = String::from_utf8_lossy(&output.stdout);
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(output.status.success(), "{stderr}");
    assert!(stderr.contains("resumed from checkpoint"), "the throughput line says it covers this run: {stderr}");
    let late: u64 = stdout.lines().find_map(|l| l.strip_prefix("late ")).expect("late events").parse().unwrap();
    let counted: u64 = stdout.lines().last().unwrap().split(' ').nth(1).unwrap().parse().unwrap();
    assert_eq!(counted + late, events, "every event of the whole job is in a result or counted late ({stdout})");
}
