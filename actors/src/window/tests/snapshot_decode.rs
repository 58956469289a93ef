//! Property tests of restoring a window core from bytes it did not write
//! as they are: arbitrary bytes, and snapshots of every window kind and
//! layout with random edits (flipped, cut, inserted and overwritten
//! bytes). A restore either refuses, saying that the window snapshot does
//! not decode, does not fit or is inconsistent, and leaves the core as it
//! was; or it accepts, and the core then runs the rest of a stream to its
//! end without a panic.
//!
//! No case is skipped: there is no `prop_assume!` here.

use proptest::prelude::*;
use proptest::sample::Index;

use super::snapshot_harness::{core, opts, run, timed, Core, Step};
use crate::edits::{edit, edited, Edit};
use crate::window::Windows;

/// What every refusal starts with.
const REFUSALS: [&str; 3] =
    ["window snapshot does not decode", "window snapshot does not fit", "window snapshot is inconsistent"];

/// A configuration: windows, options, panes.
fn configuration() -> impl Strategy<Value = (Windows, crate::window::WindowOptions, bool)> {
    let windows = prop_oneof![
        (1i64..30).prop_map(Windows::tumbling),
        (1i64..8, 2i64..4).prop_map(|(slide, n)| Windows::sliding(slide * n, slide)),
        (2i64..20).prop_flat_map(|size| (Just(size), 1..size)).prop_map(|(size, slide)| Windows::sliding(size, slide)),
        (1i64..20).prop_map(Windows::session),
        (1u64..5).prop_map(Windows::count),
    ];
    let options = (prop_oneof![Just(0i64), 1i64..20], prop::option::of(1u64..4), any::<bool>())
        .prop_map(|(lateness, early, ticking)| if ticking { timed(lateness, early) } else { opts(lateness, early) });
    (windows, options, any::<bool>())
}

/// Random records, watermarks and early firings over three keys.
fn steps() -> impl Strategy<Value = Vec<Step>> {
    let step = prop_oneof![
        6 => (0u32..3, -20i64..80, 1i64..100).prop_map(|(k, ts, v)| Step::Add(k, ts, v)),
        2 => (-20i64..90).prop_map(Step::Wm),
        1 => Just(Step::Early),
    ];
    prop::collection::vec(step, 0..40)
}

/// Mostly one flipped byte, which leaves the encoding whole more often
/// than not, so that many edited snapshots decode into odd state; else a
/// few edits of any kind.
fn edits() -> impl Strategy<Value = Vec<Edit>> {
    let flip = (any::<Index>(), 1u8..=255).prop_map(|(i, m)| vec![Edit::Flip(i, m)]);
    prop_oneof![3 => flip, 1 => prop::collection::vec(edit(), 1..4)]
}

/// Restores `bytes` into a fresh core; checks a refusal, or runs `rest`
/// and the end of input on the restored core.
fn restore_then_run(mut target: Core, bytes: &[u8], rest: &[Step]) -> Result<(), TestCaseError> {
    let before = target.snapshot();
    match target.restore(bytes) {
        Err(why) => {
            prop_assert!(REFUSALS.iter().any(|r| why.starts_with(r)), "{}", why);
            prop_assert_eq!(target.snapshot(), before, "a refused restore changed the core");
        }
        Ok(()) => {
            let mut rest = rest.to_vec();
            rest.push(Step::Wm(i64::MAX));
            run(&mut target, &rest);
            prop_assert_eq!(target.open_windows(), 0, "the end of input leaves no window open");
        }
    }
    Ok(())
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(256))]

    #[test]
    fn an_edited_snapshot_is_refused_or_resumes_to_the_end(
        (windows, options, panes) in configuration(), before in steps(), after in steps(),
        edits in edits(),
    ) {
        let mut original = core(windows, options, panes);
        run(&mut original, &before);
        let bytes = edited(original.snapshot(), &edits);
        restore_then_run(core(windows, options, panes), &bytes, &after)?;
    }

    #[test]
    fn arbitrary_bytes_are_refused(
        (windows, options, panes) in configuration(), bytes in prop::collection::vec(any::<u8>(), 0..64),
    ) {
        restore_then_run(core(windows, options, panes), &bytes, &[])?;
    }
}
