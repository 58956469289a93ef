//! Property tests for checkpoints: for every window kind and layout, over
//! random out-of-order streams with interleaved watermarks and early
//! firings, a core restored from a snapshot taken at a random point emits
//! for the rest of the stream what the original emits.

use proptest::prelude::*;

use super::snapshot_harness::{assert_resumes_identically, opts, timed, Step};
use crate::window::{WindowOptions, Windows};

/// Random streams over `keys` keys: records, watermarks (not always
/// advancing) and processing-time early firings.
fn steps(keys: u32) -> impl Strategy<Value = Vec<Step>> {
    let record = (0..keys, -40i64..120, 1i64..1000).prop_map(|(key, ts, value)| Step::Add(key, ts, value));
    let step = prop_oneof![
        8 => record,
        3 => (-40i64..130).prop_map(Step::Wm),
        1 => Just(Step::Early),
    ];
    prop::collection::vec(step, 0..80)
}

/// A stream and a point to snapshot it at; `finish` appends end of input.
fn split_stream() -> impl Strategy<Value = (Vec<Step>, usize, bool, bool)> {
    (1u32..4, any::<bool>()).prop_flat_map(|(keys, finish)| (steps(keys), Just(keys == 1), Just(finish))).prop_flat_map(
        |(steps, one_key, finish)| {
            let len = steps.len();
            (Just(steps), 0..=len, Just(one_key), Just(finish))
        },
    )
}

/// Allowed lateness, early firing by count (sometimes none) and by
/// processing time (sometimes none: the `Early` steps then fire nothing).
fn options() -> impl Strategy<Value = WindowOptions> {
    (prop_oneof![Just(0i64), 1i64..40], prop::option::of(1u64..4), any::<bool>())
        .prop_map(|(lateness, early, ticking)| if ticking { timed(lateness, early) } else { opts(lateness, early) })
}

/// Snapshots `steps` after `at` and checks that the restored core resumes
/// identically (in exact order when there is one key).
fn check(windows: Windows, options: WindowOptions, panes: bool, stream: (Vec<Step>, usize, bool, bool)) {
    let (mut steps, at, one_key, finish) = stream;
    if finish {
        steps.push(Step::Wm(i64::MAX));
    }
    let (prefix, suffix) = steps.split_at(at);
    assert_resumes_identically(windows, options, panes, prefix, suffix, one_key);
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(64))]

    #[test]
    fn tumbling_windows_resume_identically_from_a_snapshot(
        size in 1i64..30, options in options(), stream in split_stream(),
    ) {
        check(Windows::tumbling(size), options, true, stream);
    }

    #[test]
    fn sliding_windows_in_panes_resume_identically_from_a_snapshot(
        slide in 1i64..10, panes_per_window in 2i64..5, lateness in 0i64..40, ticking: bool, stream in split_stream(),
    ) {
        // Panes are used without early firing by count.
        let options = if ticking { timed(lateness, None) } else { opts(lateness, None) };
        check(Windows::sliding(slide * panes_per_window, slide), options, true, stream);
    }

    #[test]
    fn sliding_windows_with_a_state_per_window_resume_identically_from_a_snapshot(
        (size, slide) in (2i64..30).prop_flat_map(|size| (Just(size), 1..size)),
        options in options(), panes: bool, stream in split_stream(),
    ) {
        // `panes: true` still keeps a state per window when the size is not
        // a multiple of the slide or early firing by count is on.
        check(Windows::sliding(size, slide), options, panes, stream);
    }

    #[test]
    fn sessions_resume_identically_from_a_snapshot(
        gap in 1i64..30, options in options(), stream in split_stream(),
    ) {
        check(Windows::session(gap), options, true, stream);
    }

    #[test]
    fn count_windows_resume_identically_from_a_snapshot(
        size in 1u64..6, options in options(), stream in split_stream(),
    ) {
        check(Windows::count(size), options, true, stream);
    }
}
