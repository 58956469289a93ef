//! Crash recovery: the `weir` CLI is killed with SIGKILL at random moments
//! and restarted with the same checkpoint directory until it finishes; the
//! committed output then holds every row exactly once.

use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use weir::workload::Checksum;

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

/// The checksum of a CSV written by `--output`.
fn checksum_of(path: &Path, sessions: bool) -> Checksum {
    let mut sum = Checksum::default();
    let mut reader = csv::Reader::from_path(path).expect("the output exists");
    for rec in reader.records() {
        let rec = rec.expect("a well-formed row");
        let f = |i: usize| rec[i].parse::<i64>().expect("a number");
        let end = sessions.then(|| f(4));
        sum.add(f(0), f(1) as u64, f(2) as u64, f(3), end);
    }
    sum
}

fn crash_and_resume(workload: &str, keys: &str, throttle: &str, seed: u64, want: Checksum) {
    let dir = tempfile::tempdir().unwrap();
    let ckpt = dir.path().join("checkpoints");
    let out = dir.path().join("out.csv");
    let args = [
        "run", workload, "--events", "3000000", "--keys", keys, "--parallelism", "2", "--throttle", throttle,
        "--checkpoint-dir", ckpt.to_str().unwrap(), "--checkpoint-interval-ms", "200", "--output", out.to_str().unwrap(),
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
    assert_eq!(checksum_of(&out, workload == "wl3"), want, "{workload}: the committed output after {kills} kills");
    assert_eq!(last_line, want.to_string(), "{workload}: the printed checksum after {kills} kills");
}

#[test]
fn wl1_killed_and_resumed_commits_every_row_exactly_once() {
    let want = Checksum { rows: 48, events: 3_000_000, total: 1_498_945_689, digest: 14_218_170_467_609_890_282 };
    crash_and_resume("wl1", "16", "1000000", 0x5EED, want);
}

#[test]
fn wl3_killed_and_resumed_commits_every_row_exactly_once() {
    let want = Checksum { rows: 1_813_513, events: 3_000_000, total: 1_498_945_689, digest: 12_511_146_539_894_680_399 };
    crash_and_resume("wl3", "100000", "1000000", 0xC0FFEE, want);
}
