//! Property tests: the window core against brute-force models, over random
//! out-of-order streams with random interleaved watermarks.

use std::collections::BTreeMap;

use proptest::prelude::*;

use crate::message::Record;
use crate::window::core::WindowCore;
use crate::window::{Aggregate, Count, Sum, Timing, Window, WindowOptions, Windows};

/// One input to the core.
#[derive(Debug, Clone)]
enum Step {
    /// A record of key `key` at `ts`.
    Record { key: u8, ts: i64, value: i64 },
    /// A watermark (ignored by the core when it does not advance).
    Watermark(i64),
    /// A processing-time early firing.
    Early,
}

/// Random out-of-order streams with watermarks and early firings.
fn steps(early: bool) -> impl Strategy<Value = Vec<Step>> {
    let record = (0u8..3, -40i64..120, 1i64..1000).prop_map(|(key, ts, value)| Step::Record { key, ts, value });
    let step = prop_oneof![
        8 => record,
        3 => (-40i64..130).prop_map(Step::Watermark),
        if early { 1 } else { 0 } => Just(Step::Early),
    ];
    prop::collection::vec(step, 0..80)
}

/// A processing-time early-firing interval: with it set, the `Early` steps
/// fire (the interval itself is the actor's business, not the core's).
const TICK: std::time::Duration = std::time::Duration::from_secs(1);

/// A window result: (key, start, end) → (count, sum).
type Results = BTreeMap<(u8, i64, i64), (u64, i64)>;
/// A late record: (key, ts, value).
type LateRecord = (u8, i64, i64);

/// One firing: (key, window, (count, sum), timing).
type Firing = (u8, Window, (u64, i64), Timing);

/// What the core emitted over a whole run.
#[derive(Debug, Default)]
struct Run {
    /// Every firing, in order: (key, window, (count, sum), timing).
    fired: Vec<Firing>,
    /// The late records, in order.
    late: Vec<LateRecord>,
    /// What each call emitted, for comparing two cores step by step.
    per_step: Vec<Vec<Firing>>,
}

/// Runs `steps` (then end of input if `finish`) through a counting and
/// summing core; checks that every watermark fires in ascending window end.
fn run(windows: Windows, options: WindowOptions, panes: bool, steps: &[Step], finish: bool) -> Run {
    run_in_batches(windows, options, panes, steps, finish, None)
}

/// [`run`], but with `Some(n)` the records go in through
/// [`WindowCore::add_batch`], as the actor feeds them: consecutive records
/// in batches of up to `n`, each batch added at its last record's step.
fn run_in_batches(
    windows: Windows,
    options: WindowOptions,
    panes: bool,
    steps: &[Step],
    finish: bool,
    batch: Option<usize>,
) -> Run {
    run_with(windows, options, panes, steps, finish, batch, None)
}

/// [`run_in_batches`], each batch going in as a combining edge would send
/// it ([`WindowCore::add_partials`]): the records of one key in one
/// interval of `len` ending after the watermark folded into one partial,
/// the others one by one.
fn run_combined(windows: Windows, options: WindowOptions, steps: &[Step], batch: usize, len: i64) -> Run {
    run_with(windows, options, true, steps, true, Some(batch), Some(len))
}

fn run_with(
    windows: Windows,
    options: WindowOptions,
    panes: bool,
    steps: &[Step],
    finish: bool,
    batch: Option<usize>,
    combine: Option<i64>,
) -> Run {
    let agg = (Count, Sum::of(|v: &i64| *v));
    let mut core = WindowCore::with_layout(windows, options, agg, panes);
    let (mut out, mut late) = (Vec::new(), Vec::new());
    let mut pending = Vec::new();
    let mut result = Run::default();
    let end = finish.then_some(Step::Watermark(i64::MAX));
    let all: Vec<&Step> = steps.iter().chain(end.iter()).collect();
    for (n, &step) in all.iter().enumerate() {
        match *step {
            Step::Record { key, ts, value } => match batch {
                None => core.add(key, ts, value, &mut out, &mut late),
                Some(size) => {
                    pending.push(Record { ts, value: (key, value) });
                    let next_is_record = matches!(all.get(n + 1), Some(Step::Record { .. }));
                    if pending.len() >= size || !next_is_record {
                        match combine {
                            None => core.add_batch(&mut pending, &mut out, &mut late),
                            Some(len) => {
                                let mut partials = combined(&agg, core.watermark(), len, &mut pending);
                                assert_eq!(
                                    core.add_partials(&mut partials, &mut Vec::new(), &mut out, &mut late),
                                    0,
                                    "nothing lost"
                                );
                            }
                        }
                        assert!(pending.is_empty(), "add_batch leaves the batch empty");
                    }
                }
            },
            Step::Watermark(t) => {
                core.on_watermark(t, &mut out);
                let ends: Vec<i64> = out.iter().map(|r| r.value.window.end).collect();
                if !matches!(windows, Windows::Count { .. }) {
                    assert!(ends.windows(2).all(|w| w[0] <= w[1]), "watermark {t} fired out of order: {ends:?}");
                }
            }
            Step::Early => core.fire_early(&mut out),
        }
        let fired: Vec<_> =
            out.drain(..).map(|r| (r.value.key, r.value.window, r.value.value, r.value.timing)).collect();
        result.fired.extend(fired.iter().copied());
        result.per_step.push(fired);
        result.late.extend(late.drain(..).map(|r| (r.value.0, r.ts, r.value.1)));
    }
    assert_eq!(core.late_records(), result.late.len() as u64);
    if finish {
        assert_eq!(core.open_windows(), 0, "end of input leaves no state");
    }
    result
}

/// A record from a combining edge, for the counting and summing core.
type Folded = crate::window::partial::Keyed<u8, i64, (u64, i64)>;

/// What a combining edge makes of `batch` after forwarding the watermark
/// `wm`: one partial per (key, interval of `len`) ending after `wm`, in
/// order of first record, after the records of the other intervals.
fn combined(
    agg: &impl Aggregate<i64, Acc = (u64, i64)>,
    wm: i64,
    len: i64,
    batch: &mut Vec<Record<(u8, i64)>>,
) -> Vec<Record<Folded>> {
    use crate::window::partial::Partial;
    let mut out = Vec::new();
    // (key, interval end, aggregate, records)
    type Group = (u8, i64, (u64, i64), u32);
    let mut groups: Vec<Group> = Vec::new();
    for r in batch.drain(..) {
        let (key, value) = r.value;
        let end = r.ts.div_euclid(len) * len + len;
        if end <= wm {
            out.push(Record { ts: r.ts, value: (key, Partial::Record(value)) });
            continue;
        }
        let i = match groups.iter().position(|g| g.0 == key && g.1 == end) {
            Some(i) => i,
            None => {
                groups.push((key, end, agg.create(), 0));
                groups.len() - 1
            }
        };
        agg.add(&mut groups[i].2, &value);
        groups[i].3 += 1;
    }
    out.extend(
        groups.into_iter().map(|(key, end, acc, records)| Record {
            ts: end - 1,
            value: (key, Partial::Combined { end, acc, records }),
        }),
    );
    out
}

/// The on-time results, as a map (each window fires on time at most once).
fn on_time(run: &Run) -> Results {
    let mut results = Results::new();
    for &(key, w, v, timing) in &run.fired {
        if timing == Timing::OnTime {
            assert!(results.insert((key, w.start, w.end), v).is_none(), "{key} {w:?} fired on time twice");
        }
    }
    results
}

/// Brute force: the windows `[s, s + size)`, `s` a multiple of `slide`, that
/// hold `ts`.
fn windows_of(ts: i64, size: i64, slide: i64) -> Vec<(i64, i64)> {
    let first = (ts - size).div_euclid(slide) - 1;
    let last = ts.div_euclid(slide) + 1;
    (first..=last).map(|k| (k * slide, k * slide + size)).filter(|&(s, e)| s <= ts && ts < e).collect()
}

/// Brute-force tumbling/sliding model with allowed lateness `lateness`: a
/// record joins its windows with `end + lateness > watermark`, and is late
/// when there is none. Returns the final contents of every window and the
/// late records.
fn time_model(size: i64, slide: i64, lateness: i64, steps: &[Step]) -> (Results, Vec<LateRecord>) {
    let (mut wm, mut windows, mut late) = (i64::MIN, Results::new(), Vec::new());
    for step in steps {
        match *step {
            Step::Record { key, ts, value } => {
                let kept: Vec<_> =
                    windows_of(ts, size, slide).into_iter().filter(|&(_, e)| e + lateness > wm).collect();
                if kept.is_empty() {
                    late.push((key, ts, value));
                }
                for (s, e) in kept {
                    let w = windows.entry((key, s, e)).or_default();
                    *w = (w.0 + 1, w.1 + value);
                }
            }
            Step::Watermark(t) => wm = wm.max(t),
            Step::Early => {}
        }
    }
    (windows, late)
}

/// Time-window kinds with small sizes: tumbling, sliding with and without
/// panes.
fn time_windows() -> impl Strategy<Value = (i64, i64)> {
    (1i64..30).prop_flat_map(|size| (Just(size), 1..=size))
}

proptest! {
    #[test]
    fn time_windows_on_time_results_and_late_records_match_the_model(
        (size, slide) in time_windows(), panes: bool, finish: bool, steps in steps(false),
    ) {
        let windows = if size == slide { Windows::tumbling(size) } else { Windows::sliding(size, slide) };
        let got = run(windows, WindowOptions::default(), panes, &steps, finish);
        let (mut expected, late) = time_model(size, slide, 0, &steps);
        let final_wm = if finish { i64::MAX } else {
            steps.iter().filter_map(|s| match s { Step::Watermark(t) => Some(*t), _ => None }).max().unwrap_or(i64::MIN)
        };
        expected.retain(|&(_, _, end), _| end <= final_wm);
        prop_assert_eq!(on_time(&got), expected);
        prop_assert_eq!(got.late, late);
    }

    #[test]
    fn time_windows_fire_on_time_and_late_updates_at_the_right_step(
        (size, slide) in time_windows(), lateness in 0i64..40, panes: bool, finish: bool, steps in steps(true),
        ticking: bool,
    ) {
        let windows = if size == slide { Windows::tumbling(size) } else { Windows::sliding(size, slide) };
        let options = WindowOptions { allowed_lateness: lateness, early_firing_interval: ticking.then_some(TICK), ..WindowOptions::default() };
        let got = run(windows, options, panes, &steps, finish);
        // The model, step by step: a record joins its windows with
        // `end + lateness > watermark`; those at or behind the watermark fire
        // again at once (Late); a watermark fires the windows it reached.
        let (mut wm, mut contents, mut late) = (i64::MIN, Results::new(), Vec::new());
        let end = finish.then_some(Step::Watermark(i64::MAX));
        for (n, step) in steps.iter().chain(end.iter()).enumerate() {
            let mut expected = Vec::new();
            match *step {
                Step::Record { key, ts, value } => {
                    let kept: Vec<_> =
                        windows_of(ts, size, slide).into_iter().filter(|&(_, e)| e.saturating_add(lateness) > wm).collect();
                    if kept.is_empty() {
                        late.push((key, ts, value));
                    }
                    for (s, e) in kept {
                        let w = contents.entry((key, s, e)).or_default();
                        *w = (w.0 + 1, w.1 + value);
                        if e <= wm {
                            expected.push((key, s, e, *w, Timing::Late));
                        }
                    }
                }
                Step::Watermark(t) if t > wm => {
                    for (&(key, s, e), &v) in &contents {
                        if wm < e && e <= t {
                            expected.push((key, s, e, v, Timing::OnTime));
                        }
                    }
                    wm = t;
                }
                _ => {}
            }
            let mut fired: Vec<_> = got.per_step[n].iter()
                .filter(|f| f.3 != Timing::Early)
                .map(|&(k, w, v, t)| (k, w.start, w.end, v, t))
                .collect();
            let key = |r: &(u8, i64, i64, (u64, i64), Timing)| (r.2, r.0, r.1, r.3, r.4 as u8);
            fired.sort_by_key(key);
            expected.sort_by_key(key);
            prop_assert_eq!(fired, expected, "step {}: {:?}", n, step);
        }
        prop_assert_eq!(got.late, late);
    }

    #[test]
    fn pane_based_sliding_windows_fire_exactly_like_per_window_state(
        slide in 1i64..10, panes_per_window in 2i64..5, lateness in 0i64..40, steps in steps(true),
        ticking: bool,
    ) {
        let windows = Windows::sliding(slide * panes_per_window, slide);
        let options = WindowOptions { allowed_lateness: lateness, early_firing_interval: ticking.then_some(TICK), ..WindowOptions::default() };
        let with_panes = run(windows, options, true, &steps, true);
        let without = run(windows, options, false, &steps, true);
        prop_assert_eq!(with_panes.per_step.len(), without.per_step.len());
        for (mut a, mut b) in with_panes.per_step.into_iter().zip(without.per_step) {
            // Equal-end windows of different keys may fire in either order.
            a.sort_by_key(|&(k, w, v, t)| (w.end, k, w.start, v, t as u8));
            b.sort_by_key(|&(k, w, v, t)| (w.end, k, w.start, v, t as u8));
            prop_assert_eq!(a, b);
        }
        prop_assert_eq!(with_panes.late, without.late);
    }

    #[test]
    fn sessions_of_a_finished_stream_split_where_the_gap_is_exceeded(
        gap in 1i64..30,
        records in prop::collection::vec((0u8..3, -40i64..120, 1i64..1000), 0..60),
    ) {
        let steps: Vec<Step> = records.iter().map(|&(key, ts, value)| Step::Record { key, ts, value }).collect();
        let got = run(Windows::session(gap), WindowOptions::default(), true, &steps, true);
        let mut expected = Results::new();
        for key in 0u8..3 {
            let mut mine: Vec<(i64, i64)> =
                records.iter().filter(|r| r.0 == key).map(|&(_, ts, v)| (ts, v)).collect();
            mine.sort();
            let mut i = 0;
            while i < mine.len() {
                // [a, a + gap) and [b, b + gap) touch when b == a + gap: split
                // only where the next record is beyond.
                let mut j = i + 1;
                while j < mine.len() && mine[j].0 <= mine[j - 1].0 + gap {
                    j += 1;
                }
                let sum = mine[i..j].iter().map(|r| r.1).sum();
                expected.insert((key, mine[i].0, mine[j - 1].0 + gap), ((j - i) as u64, sum));
                i = j;
            }
        }
        prop_assert!(got.late.is_empty());
        prop_assert_eq!(on_time(&got), expected);
    }

    #[test]
    fn sessions_with_watermarks_match_a_brute_force_simulation(
        gap in 1i64..30, finish: bool, steps in steps(false),
    ) {
        let got = run(Windows::session(gap), WindowOptions::default(), true, &steps, finish);
        // Live sessions of every key: (key, start, end, count, sum).
        let mut live: Vec<(u8, i64, i64, u64, i64)> = Vec::new();
        let (mut wm, mut late) = (i64::MIN, Vec::new());
        let end = finish.then_some(Step::Watermark(i64::MAX));
        for (n, step) in steps.iter().chain(end.iter()).enumerate() {
            // What this step fired on time, core and model, as (key, start, end, count, sum).
            let mut fired: Vec<_> = got.per_step[n].iter()
                .filter(|f| f.3 == Timing::OnTime)
                .map(|&(k, w, v, _)| (k, w.start, w.end, v.0, v.1))
                .collect();
            let mut due = Vec::new();
            match *step {
                Step::Record { key, ts, value } => {
                    let mut s = (key, ts, ts + gap, 1, value);
                    let (touching, rest): (Vec<_>, Vec<_>) =
                        live.iter().copied().partition(|o| o.0 == key && o.1 <= s.2 && s.1 <= o.2);
                    for o in touching {
                        s = (key, s.1.min(o.1), s.2.max(o.2), s.3 + o.3, s.4 + o.4);
                    }
                    if s.2 < wm {
                        late.push((key, ts, value));
                    } else {
                        live = rest;
                        live.push(s);
                    }
                }
                Step::Watermark(t) if t > wm => {
                    wm = t;
                    let rest;
                    (due, rest) = live.iter().copied().partition(|o| o.2 < wm || wm == i64::MAX);
                    live = rest;
                }
                _ => {}
            }
            fired.sort();
            due.sort();
            prop_assert_eq!(fired, due, "step {}: {:?}", n, step);
        }
        prop_assert_eq!(got.late, late);
    }

    #[test]
    fn adding_in_batches_fires_and_routes_exactly_like_adding_one_record_at_a_time(
        kind in 0u8..5, size in 1i64..30, slide_div in 1i64..4, lateness in 0i64..40,
        early_count in prop::option::of(1u64..4), batch in 1usize..12, steps in steps(true), ticking: bool,
    ) {
        let windows = match kind {
            0 => Windows::tumbling(size),
            1 => Windows::sliding(size * slide_div, size),
            2 => Windows::sliding(size * slide_div + 1, size),
            3 => Windows::session(size),
            _ => Windows::count(size as u64),
        };
        let options = WindowOptions {
            allowed_lateness: lateness,
            early_firing_count: early_count,
            early_firing_interval: ticking.then_some(TICK),
        };
        for panes in [true, false] {
            let one_by_one = run(windows, options, panes, &steps, true);
            let batched = run_in_batches(windows, options, panes, &steps, true, Some(batch));
            prop_assert_eq!(&batched.fired, &one_by_one.fired, "{:?} panes={}", windows, panes);
            prop_assert_eq!(&batched.late, &one_by_one.late);
        }
    }

    #[test]
    fn every_record_is_counted_once_in_an_on_time_result_or_as_late(
        kind in 0u8..3, size in 1i64..30, steps in steps(true), ticking: bool,
    ) {
        let windows = match kind {
            0 => Windows::tumbling(size),
            1 => Windows::session(size),
            _ => Windows::count(size as u64),
        };
        let options = WindowOptions { early_firing_interval: ticking.then_some(TICK), ..WindowOptions::default() };
        let got = run(windows, options, true, &steps, true);
        let records: Vec<_> = steps.iter().filter_map(|s| match s { Step::Record { value, .. } => Some(*value), _ => None }).collect();
        let (count, sum) = on_time(&got).values().fold((0, 0), |acc, v| (acc.0 + v.0, acc.1 + v.1));
        let late_sum: i64 = got.late.iter().map(|l| l.2).sum();
        prop_assert_eq!(count + got.late.len() as u64, records.len() as u64);
        prop_assert_eq!(sum + late_sum, records.iter().sum::<i64>());
        if kind == 2 {
            prop_assert!(got.late.is_empty(), "count windows are never late");
        }
    }

    /// Partials folded as a combining edge folds them give what adding the
    /// records one by one gives: the same firings at every step (as sets:
    /// keys of one window end may fire in another order), the same late
    /// records in the same order. Every configuration generated combines
    /// (tumbling windows, or sliding windows whose size is a multiple of the
    /// slide: panes), with and without processing-time early firing; the
    /// assumption only counts a generator that would break that.
    #[test]
    fn combined_partials_fire_as_the_records_they_fold(
        slide in 1i64..15, panes_per_window in 1i64..5, lateness in 0i64..30, batch in 1usize..12,
        ticking: bool, steps in steps(true),
    ) {
        let size = slide * panes_per_window;
        let options = WindowOptions { allowed_lateness: lateness, early_firing_interval: ticking.then_some(TICK), ..WindowOptions::default() };
        let windows = if size == slide { Windows::tumbling(size) } else { Windows::sliding(size, slide) };
        let len = crate::window::partial::combinable(windows, &options);
        prop_assume!(len.is_some(), "{:?} does not combine", windows);
        let len = len.expect("assumed");
        let plain = run_in_batches(windows, options, true, &steps, true, Some(batch));
        let folded = run_combined(windows, options, &steps, batch, len);
        let sorted = |run: &Run| -> Vec<Vec<Firing>> {
            run.per_step.iter().map(|f| { let mut f = f.clone(); f.sort_by_key(|x| (x.1, x.0, x.3 as u8)); f }).collect()
        };
        prop_assert_eq!(sorted(&folded), sorted(&plain));
        prop_assert_eq!(folded.late, plain.late);
    }
}
