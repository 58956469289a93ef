//! Joins through the public API, against brute-force models: window joins
//! over tumbling, sliding and session windows, and the interval join, over
//! random out-of-order streams of both sides; late records of either side
//! reach the late-data output.

use proptest::prelude::*;
use weir::prelude::*;
use weir::Windows;

/// A record of one side: (ts, key, id).
type Rec = (i64, u8, u32);

/// Both sides as random out-of-order streams: each record at most
/// `DISORDER` ms older than the newest before it.
const DISORDER: i64 = 40;

fn side() -> impl Strategy<Value = Vec<Rec>> {
    prop::collection::vec((0i64..30, 0i64..DISORDER, 0u8..3), 0..60).prop_map(|steps| {
        let mut now = 0;
        steps
            .into_iter()
            .enumerate()
            .map(|(i, (advance, back, key))| {
                now += advance;
                ((now - back).max(0), key, i as u32)
            })
            .collect()
    })
}

fn source(job: &JobBuilder, name: &str, recs: Vec<Rec>) -> Stream<Rec> {
    // B = the disorder: no record is late.
    job.source(name, IterSource::new(recs), |r: &Rec| r.0, WatermarkStrategy::bounded_out_of_orderness(DISORDER))
}

/// The windows of `ts` (start, end) for tumbling or sliding windows.
fn windows_of(ts: i64, size: i64, slide: i64) -> Vec<(i64, i64)> {
    let mut out = Vec::new();
    let mut start = ts - ts.rem_euclid(slide);
    while start > ts - size {
        out.push((start, start + size));
        start -= slide;
    }
    out
}

/// Sessions of gap `gap` over the times `ts` of one key: (start, end).
fn sessions(mut ts: Vec<i64>, gap: i64) -> Vec<(i64, i64)> {
    ts.sort();
    let mut out: Vec<(i64, i64)> = Vec::new();
    for t in ts {
        match out.last_mut() {
            Some(last) if t <= last.1 => last.1 = last.1.max(t + gap),
            _ => out.push((t, t + gap)),
        }
    }
    out
}

/// (key, window start, window end, a id, b id), sorted.
type Pairs = Vec<(u8, i64, i64, u32, u32)>;

/// The pairs of a window join: sessions of `gap` when `gap > 0`, else
/// windows of `size` every `slide`.
fn model(a: &[Rec], b: &[Rec], size: i64, slide: i64, gap: i64) -> Pairs {
    let mut pairs = Vec::new();
    let session = gap > 0;
    for key in 0u8..3 {
        let ka: Vec<&Rec> = a.iter().filter(|r| r.1 == key).collect();
        let kb: Vec<&Rec> = b.iter().filter(|r| r.1 == key).collect();
        if session {
            let all: Vec<i64> = ka.iter().chain(&kb).map(|r| r.0).collect();
            for (s, e) in sessions(all, gap) {
                for ra in ka.iter().filter(|r| s <= r.0 && r.0 < e) {
                    for rb in kb.iter().filter(|r| s <= r.0 && r.0 < e) {
                        pairs.push((key, s, e, ra.2, rb.2));
                    }
                }
            }
        } else {
            for ra in &ka {
                for rb in &kb {
                    for w in windows_of(ra.0, size, slide) {
                        if w.0 <= rb.0 && rb.0 < w.1 {
                            pairs.push((key, w.0, w.1, ra.2, rb.2));
                        }
                    }
                }
            }
        }
    }
    pairs.sort();
    pairs
}

fn window_join(a: Vec<Rec>, b: Vec<Rec>, windows: Windows, p: usize) -> Pairs {
    let job = JobBuilder::new("window-join").batch_size(7);
    let (sink, got) = CollectSink::new();
    let (sa, sb) = (source(&job, "a", a), source(&job, "b", b));
    sa.key_by(|r: &Rec| r.1, p)
        .window_join("join", sb.key_by(|r: &Rec| r.1, p), windows)
        .apply(|k: &u8, w: &Window, ra: &Rec, rb: &Rec| (*k, w.start, w.end, ra.2, rb.2))
        .sink("pairs", sink);
    job.build().unwrap().run_blocking().unwrap();
    let mut pairs = got.values();
    pairs.sort();
    pairs
}

fn interval_join(a: Vec<Rec>, b: Vec<Rec>, lower: i64, upper: i64, p: usize) -> Vec<(u8, u32, u32, i64)> {
    let job = JobBuilder::new("interval-join").batch_size(5);
    let (sink, got) = CollectSink::new();
    let (sa, sb) = (source(&job, "a", a), source(&job, "b", b));
    sa.key_by(|r: &Rec| r.1, p)
        .interval_join("join", sb.key_by(|r: &Rec| r.1, p))
        .between(lower, upper)
        .apply(|k: &u8, ra: &Rec, rb: &Rec| (*k, ra.2, rb.2))
        .sink("pairs", sink);
    job.build().unwrap().run_blocking().unwrap();
    let mut pairs: Vec<(u8, u32, u32, i64)> =
        got.records().into_iter().map(|r| (r.value.0, r.value.1, r.value.2, r.ts)).collect();
    pairs.sort();
    pairs
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(24))]

    #[test]
    fn tumbling_window_join_emits_every_pair_of_each_window_once(a in side(), b in side(), p in 1usize..3) {
        prop_assert_eq!(window_join(a.clone(), b.clone(), Windows::tumbling(50), p), model(&a, &b, 50, 50, 0));
    }

    #[test]
    fn sliding_window_join_emits_every_pair_once_per_shared_window(a in side(), b in side(), p in 1usize..3) {
        prop_assert_eq!(window_join(a.clone(), b.clone(), Windows::sliding(60, 20), p), model(&a, &b, 60, 20, 0));
    }

    #[test]
    fn session_window_join_pairs_records_of_one_merged_session(a in side(), b in side(), p in 1usize..3) {
        prop_assert_eq!(window_join(a.clone(), b.clone(), Windows::session(25), p), model(&a, &b, 0, 0, 25));
    }

    #[test]
    fn interval_join_emits_each_pair_once_at_the_later_time(a in side(), b in side(), lower in -50i64..10, width in 0i64..60, p in 1usize..3) {
        let upper = lower + width;
        let mut want = Vec::new();
        for ra in &a {
            for rb in &b {
                if ra.1 == rb.1 && ra.0 + lower <= rb.0 && rb.0 <= ra.0 + upper {
                    want.push((ra.1, ra.2, rb.2, ra.0.max(rb.0)));
                }
            }
        }
        want.sort();
        prop_assert_eq!(interval_join(a, b, lower, upper, p), want);
    }
}

#[test]
fn late_records_of_either_side_reach_the_late_output_of_both_joins() {
    // One source of both sides, throttled so that it runs dry after every
    // record and releases its watermark: the join sees each record and
    // the watermark after it before the next record. a@50 and b@60 come after
    // both sides reached 200: they are late, join nothing, and reach the
    // late output with their side.
    let recs: Vec<(bool, Rec)> = vec![
        (false, (100, 1, 0)),
        (true, (100, 1, 10)),
        (false, (200, 1, 1)),
        (true, (200, 1, 11)),
        (false, (50, 1, 2)),
        (true, (60, 1, 12)),
        (false, (300, 1, 3)),
        (true, (300, 1, 13)),
    ];
    for interval in [true, false] {
        let job = JobBuilder::new("late").batch_size(1);
        let (sink, got) = CollectSink::new();
        let (late, late_got) = CollectSink::new();
        let both = job.source(
            "both",
            Throttled::new(IterSource::new(recs.clone()), 100.0),
            |r: &(bool, Rec)| r.1 .0,
            WatermarkStrategy::monotonic().with_interval(std::time::Duration::ZERO),
        );
        let [sa, sb] = both.fan_out();
        let ka = sa.filter(|r| !r.0).map(|r| r.1).key_by(|r: &Rec| r.1, 1);
        let kb = sb.filter(|r| r.0).map(|r| r.1).key_by(|r: &Rec| r.1, 1);
        if interval {
            ka.interval_join("join", kb)
                .between(0, 0)
                .late_data(|l| l.sink("late", late))
                .apply(|_k: &u8, ra: &Rec, rb: &Rec| (ra.2, rb.2))
                .sink("pairs", sink);
        } else {
            ka.window_join("join", kb, Windows::tumbling(10))
                .late_data(|l| l.sink("late", late))
                .apply(|_k: &u8, _w: &Window, ra: &Rec, rb: &Rec| (ra.2, rb.2))
                .sink("pairs", sink);
        }
        let report = job.build().unwrap().run_blocking().unwrap();
        let mut pairs = got.values();
        pairs.sort();
        assert_eq!(pairs, vec![(0, 10), (1, 11), (3, 13)], "interval={interval}");
        let late: Vec<(u8, Either<u32, u32>)> = late_got
            .values()
            .into_iter()
            .map(|(k, side)| match side {
                Either::Left(r) => (k, Either::Left(r.2)),
                Either::Right(r) => (k, Either::Right(r.2)),
            })
            .collect();
        assert_eq!(late, vec![(1, Either::Left(2)), (1, Either::Right(12))], "interval={interval}");
        assert_eq!(report.metrics.late_records(), 2, "interval={interval}");
    }
}
