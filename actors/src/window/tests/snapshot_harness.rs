//! The harness of the checkpoint tests (`snapshots.rs`,
//! `snapshot_proptests.rs`): a counting and summing core, streams of steps,
//! what each step emits, and the check that a core restored from a
//! snapshot resumes exactly like the original.

use crate::window::core::WindowCore;
use crate::window::{Count, Sum, Timing, Window, WindowOptions, Windows};

/// Counts and sums the values (a nameable aggregate type, so that cores can
/// be built in helpers).
pub(super) type Agg = (Count, Sum<fn(&i64) -> i64>);

/// The core under test: `u32` keys, `i64` values.
pub(super) type Core = WindowCore<u32, i64, Agg>;

/// The value itself.
pub(super) fn value(v: &i64) -> i64 {
    *v
}

/// A counting and summing core.
pub(super) fn core(windows: Windows, options: WindowOptions, panes: bool) -> Core {
    let agg: Agg = (Count, Sum::of(value as fn(&i64) -> i64));
    WindowCore::with_layout(windows, options, agg, panes)
}

pub(super) use super::hand_made::{opts, timed};

/// One input to a core.
#[derive(Debug, Clone, Copy)]
pub(super) enum Step {
    /// A record of `key` at `ts` with `value`.
    Add(u32, i64, i64),
    /// A watermark.
    Wm(i64),
    /// A processing-time early firing.
    Early,
}

/// One firing: (key, window, (count, sum), timing, output timestamp).
pub(super) type Firing = (u32, Window, (u64, i64), Timing, i64);

/// What one step made a core emit, and its counters after the step.
#[derive(Debug, Clone, PartialEq)]
pub(super) struct Observed {
    /// The firings, in the order emitted.
    pub(super) fired: Vec<Firing>,
    /// The late records: (key, ts, value).
    pub(super) late: Vec<(u32, i64, i64)>,
    /// [`WindowCore::late_records`] after the step.
    pub(super) late_records: u64,
    /// [`WindowCore::open_windows`] after the step.
    pub(super) open_windows: usize,
}

impl Observed {
    /// The same, with firings of equal window end ordered by key: the one
    /// order a restore does not preserve (hash-map order, unspecified).
    fn normalized(mut self) -> Self {
        self.fired.sort_by_key(|&(k, w, v, t, ts)| (w.end, k, w.start, t as u8, v, ts));
        self
    }
}

/// Feeds `steps` to `core`, observing each.
pub(super) fn run(core: &mut Core, steps: &[Step]) -> Vec<Observed> {
    let (mut out, mut late) = (Vec::new(), Vec::new());
    steps
        .iter()
        .map(|&step| {
            match step {
                Step::Add(key, ts, v) => core.add(key, ts, v, &mut out, &mut late),
                Step::Wm(t) => core.on_watermark(t, &mut out),
                Step::Early => core.fire_early(&mut out),
            }
            Observed {
                fired: out
                    .drain(..)
                    .map(|r| (r.value.key, r.value.window, r.value.value, r.value.timing, r.ts))
                    .collect(),
                late: late.drain(..).map(|r| (r.value.0, r.ts, r.value.1)).collect(),
                late_records: core.late_records(),
                open_windows: core.open_windows(),
            }
        })
        .collect()
}

/// A core that ran `prefix`, a core restored from its snapshot, and a core
/// restored from the restored core's snapshot; all three then run `suffix`
/// and must emit the same, step by step (firings of one step in the same
/// order where the order is specified: all of it when `exact`). Returns
/// what the original emitted on the suffix.
pub(super) fn assert_resumes_identically(
    windows: Windows,
    options: WindowOptions,
    panes: bool,
    prefix: &[Step],
    suffix: &[Step],
    exact: bool,
) -> Vec<Observed> {
    let mut original = core(windows, options, panes);
    run(&mut original, prefix);
    let mut restored = core(windows, options, panes);
    // Restoring replaces whatever the core held.
    run(&mut restored, &[Step::Add(99, 5, 1), Step::Wm(2), Step::Add(98, 50, 1)]);
    restored.restore(&original.snapshot()).expect("a snapshot restores into a core of its configuration");
    assert_eq!(restored.watermark(), original.watermark());
    assert_eq!(restored.late_records(), original.late_records());
    assert_eq!(restored.open_windows(), original.open_windows());
    let mut again = core(windows, options, panes);
    again.restore(&restored.snapshot()).expect("a restored core's snapshot restores");

    let expected = run(&mut original, suffix);
    for (name, mut resumed) in [("restored", restored), ("restored twice", again)] {
        let got = run(&mut resumed, suffix);
        for (n, (want, got)) in expected.iter().zip(got).enumerate() {
            let (want, got) = if exact { (want.clone(), got) } else { (want.clone().normalized(), got.normalized()) };
            assert_eq!(got, want, "{name} core, suffix step {n}: {:?}", suffix[n]);
        }
    }
    expected
}
