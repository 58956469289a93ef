//! The interval join against a brute-force model, over random out-of-order
//! streams of both sides, random watermarks (so that some records are
//! late), random bounds, and a snapshot/restore at a random point.

use proptest::prelude::*;

use super::interval::IntervalState;

/// One step of a run.
#[derive(Debug, Clone)]
enum Step {
    /// A record of side A (`false`) or B (`true`) at `ts` with `key`.
    Record { b: bool, ts: i64, key: u8 },
    /// The watermark moves to `max(watermark, t)`.
    Watermark(i64),
}

fn steps() -> impl Strategy<Value = Vec<Step>> {
    prop::collection::vec(
        prop_oneof![
            6 => (any::<bool>(), 0i64..400, 0u8..4).prop_map(|(b, ts, key)| Step::Record { b, ts, key }),
            1 => (0i64..450).prop_map(Step::Watermark),
        ],
        0..120,
    )
}

/// Pairs `(a id, b id, ts)` the model expects, and the ids of late records.
fn model(steps: &[Step], lower: i64, upper: i64) -> (Vec<(usize, usize, i64)>, Vec<usize>) {
    let mut wm = i64::MIN;
    let (mut kept, mut late) = (Vec::new(), Vec::new());
    for (id, s) in steps.iter().enumerate() {
        match *s {
            Step::Record { b, ts, key } if ts >= wm => kept.push((id, b, ts, key)),
            Step::Record { .. } => late.push(id),
            Step::Watermark(t) => wm = wm.max(t),
        }
    }
    let mut pairs = Vec::new();
    for &(ia, ba, ta, ka) in &kept {
        for &(ib, bb, tb, kb) in &kept {
            if !ba && bb && ka == kb && ta + lower <= tb && tb <= ta + upper {
                pairs.push((ia, ib, ta.max(tb)));
            }
        }
    }
    pairs.sort();
    late.sort();
    (pairs, late)
}

/// Runs `steps` through the join, snapshotting and restoring into a fresh
/// state before step `cut`.
fn run(steps: &[Step], lower: i64, upper: i64, cut: usize) -> (Vec<(usize, usize, i64)>, Vec<usize>, usize) {
    let mut state = IntervalState::<u8, usize, usize>::new(lower, upper);
    let (mut pairs, mut late) = (Vec::new(), Vec::new());
    for (id, s) in steps.iter().enumerate() {
        if id == cut {
            let snap = state.snapshot().expect("encodes");
            state = IntervalState::new(lower, upper);
            state.restore(&snap).expect("decodes");
        }
        let mut emit = |ts: i64, _k: &u8, a: &usize, b: &usize| pairs.push((*a, *b, ts));
        match *s {
            Step::Record { b: false, ts, key } => {
                if state.add_a(ts, key, id, &mut emit).is_err() {
                    late.push(id);
                }
            }
            Step::Record { b: true, ts, key } => {
                if state.add_b(ts, key, id, &mut emit).is_err() {
                    late.push(id);
                }
            }
            Step::Watermark(t) => state.advance(t),
        }
    }
    state.advance(i64::MAX);
    pairs.sort();
    late.sort();
    (pairs, late, state.buffered())
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(512))]

    #[test]
    fn every_pair_of_on_time_records_is_emitted_once_and_late_records_join_nothing(
        steps in steps(),
        lower in -60i64..30,
        width in 0i64..90,
        cut in 0usize..130,
    ) {
        let upper = lower + width;
        let (want_pairs, want_late) = model(&steps, lower, upper);
        let (pairs, late, left) = run(&steps, lower, upper, cut);
        prop_assert_eq!(pairs, want_pairs);
        prop_assert_eq!(late, want_late);
        prop_assert_eq!(left, 0, "the final watermark drops every record");
    }
}
