//! The WORKLOAD.md check values, through the public API, at p=1 and p=2,
//! and late-event accounting.

use weir_harness::workload::{self, Checksum, StreamParams, Workload, WorkloadResult, WorkloadSpec};

fn run(
    workload: Workload,
    events: u64,
    keys: u64,
    parallelism: usize,
    batch_size: usize,
    bound: i64,
) -> WorkloadResult {
    let spec = WorkloadSpec {
        stream: StreamParams { events, keys, rate: 100_000, disorder: 2_000 },
        bound,
        parallelism,
        batch_size,
        ..WorkloadSpec::new(workload)
    };
    let (job, outputs) = workload::build(&spec);
    job.build().expect("a valid workload").run_blocking().expect("the job completes");
    outputs.result()
}

fn check(workload: Workload, keys: u64, p: usize, want: (u64, u64, u64, u64)) {
    let r = run(workload, 3_000_000, keys, p, 1024, 2_000);
    let want = Checksum { rows: want.0, events: want.1, total: want.2, digest: want.3 };
    assert_eq!(r.late, 0, "{workload:?} K={keys} p={p}: no event is late when B = D");
    assert_eq!(r.checksum, want, "{workload:?} K={keys} p={p}");
}

#[test]
fn wl1_k16_matches_check_values_at_p1_and_p2() {
    for p in [1, 2] {
        check(Workload::Wl1, 16, p, (48, 3_000_000, 1_498_945_689, 14_218_170_467_609_890_282));
    }
}

#[test]
fn wl1_k100000_matches_check_values_at_p1_and_p2() {
    for p in [1, 2] {
        check(Workload::Wl1, 100_000, p, (299_978, 3_000_000, 1_498_945_689, 10_407_393_335_587_024_843));
    }
}

#[test]
fn wl2_k16_matches_check_values_at_p1_and_p2() {
    for p in [1, 2] {
        check(Workload::Wl2, 16, p, (304, 15_000_000, 7_494_728_445, 4_051_145_714_108_749_640));
    }
}

#[test]
fn wl4_k100000_interval_join_matches_check_values_at_p1_and_p2() {
    for p in [1, 2] {
        check(Workload::Wl4, 100_000, p, (762_954, 762_954, 381_480_690_399, 2_924_520_852_787_172_923));
    }
}

#[test]
fn wl3_k100000_matches_check_values_at_p1_and_p2() {
    for p in [1, 2] {
        check(Workload::Wl3, 100_000, p, (1_813_513, 3_000_000, 1_498_945_689, 12_511_146_539_894_680_399));
    }
}

#[test]
fn results_do_not_depend_on_batch_size() {
    let a = run(Workload::Wl1, 200_000, 16, 2, 1, 2_000);
    let b = run(Workload::Wl1, 200_000, 16, 2, 333, 2_000);
    let c = run(Workload::Wl1, 200_000, 16, 1, 4096, 2_000);
    assert_eq!(a.checksum, b.checksum);
    assert_eq!(a.checksum, c.checksum);
    assert_eq!(a.checksum.events, 200_000);
}

#[test]
fn with_bound_below_disorder_on_time_plus_late_equals_n() {
    // 3 M events span 30 s of event time: windows close at 10 s and 20 s,
    // and events up to 2 s behind the newest fall behind a closed window.
    // WL3 with 100,000 keys: a key recurs every ~1 s, so sessions close.
    for (workload, keys, p) in [(Workload::Wl1, 1_000, 1), (Workload::Wl1, 1_000, 2), (Workload::Wl3, 100_000, 2)] {
        let n = 3_000_000;
        let r = run(workload, n, keys, p, 1024, 200);
        assert!(r.late > 0, "{workload:?} p={p}: B < D must make some events late");
        assert_eq!(r.checksum.events + r.late, n, "{workload:?} p={p}: every event is on time or late");
    }
}
