//! Exact window contents on small hand-made streams, for every window kind:
//! what fires when, with which timing, and what goes to the late output.
//! Early firings are specified in `early_firing.rs`, with the harness
//! defined here.

use crate::message::Record;
use crate::window::core::{Fired, WindowCore};
use crate::window::{Aggregate, Count, Sum, Timing, WindowOptions, Windows};
use Timing::{Late, OnTime};

/// (key, start, end, value, timing) of one firing.
pub(super) type Row = (char, i64, i64, i64, Timing);

/// Feeds a summing [`WindowCore`] and collects what it emits.
pub(super) struct Harness<A: Aggregate<i64>> {
    /// The core under test.
    pub(super) core: WindowCore<char, i64, A>,
    /// Firings not yet taken.
    pub(super) out: Fired<char, A::Out>,
    /// Late records not yet taken.
    late: Vec<Record<(char, i64)>>,
}

/// A harness summing the values, with sliding windows in `panes` layout or
/// not.
pub(super) fn summing_layout(
    windows: Windows,
    options: WindowOptions,
    panes: bool,
) -> Harness<impl Aggregate<i64, Out = i64>> {
    Harness {
        core: WindowCore::with_layout(windows, options, Sum::of(|v: &i64| *v), panes),
        out: Vec::new(),
        late: Vec::new(),
    }
}

/// A harness summing the values.
pub(super) fn summing(windows: Windows, options: WindowOptions) -> Harness<impl Aggregate<i64, Out = i64>> {
    summing_layout(windows, options, true)
}

/// Options with `lateness` and early firing every `early` records.
pub(super) fn opts(lateness: i64, early: Option<u64>) -> WindowOptions {
    WindowOptions { allowed_lateness: lateness, early_firing_count: early, early_firing_interval: None }
}

/// [`opts`] with early firing by processing time as well: the core then
/// tracks what changed, and [`Harness::early`] fires it (the interval
/// itself is the window manager's clock, not the core's).
pub(super) fn timed(lateness: i64, early: Option<u64>) -> WindowOptions {
    WindowOptions { early_firing_interval: Some(std::time::Duration::from_secs(1)), ..opts(lateness, early) }
}

impl<A: Aggregate<i64, Out = i64>> Harness<A> {
    /// Adds a record.
    pub(super) fn add(&mut self, key: char, ts: i64, value: i64) -> &mut Self {
        self.core.add(key, ts, value, &mut self.out, &mut self.late);
        self
    }
    /// Advances the watermark.
    pub(super) fn wm(&mut self, t: i64) -> &mut Self {
        self.core.on_watermark(t, &mut self.out);
        self
    }
    /// A processing-time early firing.
    pub(super) fn early(&mut self) -> &mut Self {
        self.core.fire_early(&mut self.out);
        self
    }
    /// The firings since the last call, in order.
    pub(super) fn fired(&mut self) -> Vec<Row> {
        self.out
            .drain(..)
            .map(|r| (r.value.key, r.value.window.start, r.value.window.end, r.value.value, r.value.timing))
            .collect()
    }
    /// Timestamps of the firings since the last call.
    pub(super) fn fired_ts(&mut self) -> Vec<i64> {
        self.out.drain(..).map(|r| r.ts).collect()
    }
    /// (key, ts, value) of the late records since the last call.
    pub(super) fn late(&mut self) -> Vec<(char, i64, i64)> {
        self.late.drain(..).map(|r| (r.value.0, r.ts, r.value.1)).collect()
    }
}

#[test]
fn tumbling_window_fires_once_the_watermark_reaches_its_end() {
    let mut h = summing(Windows::tumbling(10), opts(0, None));
    h.add('a', 3, 1).add('a', 7, 2).wm(9);
    assert_eq!(h.fired(), vec![]);
    assert_eq!(h.core.open_windows(), 1);
    h.wm(10);
    assert_eq!(h.fired(), vec![('a', 0, 10, 3, OnTime)]);
    assert_eq!(h.core.open_windows(), 0);
    h.add('a', 12, 1).wm(20);
    assert_eq!(h.fired_ts(), vec![19], "a result carries its window's last instant");
}

#[test]
fn tumbling_window_takes_out_of_order_records_until_it_fires() {
    let mut h = summing(Windows::tumbling(10), opts(0, None));
    h.wm(5).add('a', 8, 1).add('a', 4, 2).add('a', 12, 4).wm(20);
    assert_eq!(h.fired(), vec![('a', 0, 10, 3, OnTime), ('a', 10, 20, 4, OnTime)]);
    assert_eq!(h.late(), vec![], "behind the watermark but in an open window: not late");
}

#[test]
fn record_whose_window_closed_goes_to_late_output_and_is_counted() {
    let mut h = summing(Windows::tumbling(10), opts(0, None));
    h.add('a', 3, 1).wm(10).add('a', 5, 7).add('b', 9, 8).add('a', 10, 16);
    assert_eq!(h.fired(), vec![('a', 0, 10, 1, OnTime)]);
    assert_eq!(h.late(), vec![('a', 5, 7), ('b', 9, 8)]);
    assert_eq!(h.core.late_records(), 2);
    h.wm(20);
    assert_eq!(h.fired(), vec![('a', 10, 20, 16, OnTime)]);
}

#[test]
fn negative_timestamps_fall_in_windows_by_floor() {
    let mut h = summing(Windows::tumbling(10), opts(0, None));
    h.add('a', -1, 1).add('a', -10, 2).add('a', -11, 4).wm(0);
    assert_eq!(h.fired(), vec![('a', -20, -10, 4, OnTime), ('a', -10, 0, 3, OnTime)]);
}

#[test]
fn one_watermark_fires_windows_of_all_keys_in_ascending_end() {
    let mut h = summing(Windows::tumbling(10), opts(0, None));
    h.add('b', 25, 1).add('a', 5, 2).add('c', 15, 4).add('a', 27, 8).wm(100);
    let mut fired = h.fired();
    assert!(fired.windows(2).all(|w| w[0].2 <= w[1].2), "{fired:?}");
    fired.sort_by_key(|r| (r.2, r.0));
    assert_eq!(
        fired,
        vec![('a', 0, 10, 2, OnTime), ('c', 10, 20, 4, OnTime), ('a', 20, 30, 8, OnTime), ('b', 20, 30, 1, OnTime),]
    );
}

#[test]
fn watermark_that_does_not_advance_is_ignored() {
    let mut h = summing(Windows::tumbling(10), opts(0, None));
    h.wm(10).wm(5);
    assert_eq!(h.core.watermark(), 10);
    h.add('a', 7, 1);
    assert_eq!(h.late(), vec![('a', 7, 1)]);
}

#[test]
fn late_record_within_allowed_lateness_refires_window() {
    let mut h = summing(Windows::tumbling(10), opts(5, None));
    h.add('a', 3, 1).wm(10);
    assert_eq!(h.fired(), vec![('a', 0, 10, 1, OnTime)]);
    h.add('a', 4, 2);
    assert_eq!(h.fired(), vec![('a', 0, 10, 3, Late)]);
    h.wm(14).add('a', 5, 4);
    assert_eq!(h.fired(), vec![('a', 0, 10, 7, Late)], "kept until end + lateness");
    // A key without state in that window gets one, fired at once.
    h.add('b', 2, 8);
    assert_eq!(h.fired(), vec![('b', 0, 10, 8, Late)]);
    h.wm(15);
    assert_eq!((h.fired(), h.core.open_windows()), (vec![], 0));
    h.add('a', 6, 16);
    assert_eq!(h.late(), vec![('a', 6, 16)], "beyond the lateness: late output");
}

#[test]
fn watermark_past_end_and_lateness_fires_and_discards_in_one_step() {
    let mut h = summing(Windows::tumbling(10), opts(5, None));
    h.add('a', 3, 1).add('a', 13, 2).wm(100);
    assert_eq!(h.fired(), vec![('a', 0, 10, 1, OnTime), ('a', 10, 20, 2, OnTime)]);
    assert_eq!(h.core.open_windows(), 0);
}

#[test]
fn sliding_record_counts_in_every_window_it_falls_in_including_negative_starts() {
    for panes in [true, false] {
        let mut h = summing_layout(Windows::sliding(10, 5), opts(0, None), panes);
        h.add('a', 1, 1).add('a', 7, 2).add('a', 12, 4).wm(i64::MAX);
        assert_eq!(
            h.fired(),
            vec![('a', -5, 5, 1, OnTime), ('a', 0, 10, 3, OnTime), ('a', 5, 15, 6, OnTime), ('a', 10, 20, 4, OnTime)],
            "panes: {panes}"
        );
        assert_eq!(h.core.open_windows(), 0);
    }
}

#[test]
fn sliding_windows_whose_size_is_not_a_multiple_of_the_slide() {
    let mut h = summing(Windows::sliding(10, 4), opts(0, None));
    h.add('a', 1, 1).add('a', 9, 2).wm(i64::MAX);
    assert_eq!(
        h.fired(),
        vec![
            ('a', -8, 2, 1, OnTime),
            ('a', -4, 6, 1, OnTime),
            ('a', 0, 10, 3, OnTime),
            ('a', 4, 14, 2, OnTime),
            ('a', 8, 18, 2, OnTime),
        ]
    );
}

#[test]
fn sliding_record_behind_the_watermark_joins_only_its_open_windows() {
    for panes in [true, false] {
        let mut h = summing_layout(Windows::sliding(10, 5), opts(0, None), panes);
        h.add('a', 1, 1).wm(10);
        assert_eq!(h.fired(), vec![('a', -5, 5, 1, OnTime), ('a', 0, 10, 1, OnTime)]);
        h.add('a', 7, 2).add('a', 3, 4);
        assert_eq!(h.late(), vec![('a', 3, 4)], "both windows of 3 closed; 7 still has [5, 15)");
        h.wm(i64::MAX);
        assert_eq!(h.fired(), vec![('a', 5, 15, 2, OnTime)]);
    }
}

#[test]
fn sliding_late_record_within_lateness_refires_only_the_windows_that_fired() {
    for panes in [true, false] {
        let mut h = summing_layout(Windows::sliding(10, 5), opts(10, None), panes);
        h.add('a', 7, 1).wm(12);
        assert_eq!(h.fired(), vec![('a', 0, 10, 1, OnTime)]);
        h.add('a', 8, 2);
        assert_eq!(h.fired(), vec![('a', 0, 10, 3, Late)], "[5, 15) has not fired: it just takes the record");
        h.wm(i64::MAX);
        assert_eq!(h.fired(), vec![('a', 5, 15, 3, OnTime)]);
    }
}

#[test]
fn session_fires_only_after_the_watermark_passes_its_end() {
    let mut h = summing(Windows::session(10), opts(0, None));
    h.add('a', 0, 1).wm(10);
    assert_eq!(h.fired(), vec![]);
    h.add('a', 10, 2).wm(20);
    assert_eq!((h.fired(), h.late()), (vec![], vec![]), "a record at exactly the end joins");
    h.wm(21);
    assert_eq!(h.fired(), vec![('a', 0, 20, 3, OnTime)]);
    assert_eq!(h.core.open_windows(), 0);
    h.add('a', 30, 1).wm(41);
    assert_eq!(h.fired_ts(), vec![39]);
}

#[test]
fn late_arriving_record_bridges_two_sessions() {
    let mut h = summing(Windows::session(10), opts(0, None));
    h.add('a', 0, 1).add('a', 18, 2);
    assert_eq!(h.core.open_windows(), 2);
    h.add('a', 9, 4);
    assert_eq!(h.core.open_windows(), 1);
    h.add('b', 0, 1).add('b', 20, 2).add('b', 10, 4).wm(i64::MAX);
    assert_eq!(h.fired(), vec![('a', 0, 28, 7, OnTime), ('b', 0, 30, 7, OnTime)], "[10, 20) touches both");
}

#[test]
fn sessions_of_all_keys_fire_in_ascending_end() {
    let mut h = summing(Windows::session(10), opts(0, None));
    h.add('a', 0, 1).add('b', 5, 2).add('a', 30, 4).add('a', 2, 8).wm(100);
    assert_eq!(h.fired(), vec![('a', 0, 12, 9, OnTime), ('b', 5, 15, 2, OnTime), ('a', 30, 40, 4, OnTime)]);
}

#[test]
fn late_record_merging_into_a_fired_session_refires_it_as_late() {
    let mut h = summing(Windows::session(10), opts(20, None));
    h.add('a', 0, 1).wm(15);
    assert_eq!(h.fired(), vec![('a', 0, 10, 1, OnTime)]);
    h.add('a', 2, 2);
    assert_eq!(h.fired(), vec![('a', 0, 12, 3, Late)]);
    h.wm(32);
    assert_eq!((h.fired(), h.core.open_windows()), (vec![], 1), "kept while end + lateness >= watermark");
    h.wm(33);
    assert_eq!(h.core.open_windows(), 0);
    h.wm(40).add('a', 1, 4);
    assert_eq!(h.late(), vec![('a', 1, 4)]);
}

#[test]
fn late_record_extending_a_fired_session_past_the_watermark_fires_it_on_time_later() {
    let mut h = summing(Windows::session(10), opts(20, None));
    h.add('a', 0, 1).wm(15).fired();
    h.add('a', 8, 2);
    assert_eq!(h.fired(), vec![], "[0, 18) has not ended yet");
    h.wm(19);
    assert_eq!(h.fired(), vec![('a', 0, 18, 3, OnTime)]);
}

#[test]
fn late_record_opening_a_session_that_already_ended_fires_it_at_once() {
    let mut h = summing(Windows::session(10), opts(20, None));
    h.wm(50).add('a', 35, 1);
    assert_eq!(h.fired(), vec![('a', 35, 45, 1, Late)]);
    h.wm(66);
    assert_eq!((h.fired(), h.core.open_windows()), (vec![], 0));
}

#[test]
fn session_record_whose_session_would_be_discarded_is_late() {
    let mut h = summing(Windows::session(10), opts(0, None));
    h.wm(50).add('a', 30, 1).add('a', 40, 2).add('a', 45, 4);
    assert_eq!(h.late(), vec![('a', 30, 1)]);
    h.wm(i64::MAX);
    assert_eq!(h.fired(), vec![('a', 40, 55, 6, OnTime)], "[40, 50) ends at the watermark: not passed");
}

#[test]
fn count_window_fires_when_full_with_its_largest_timestamp() {
    let mut h = summing(Windows::count(3), opts(0, None));
    h.add('a', 5, 1).add('b', 0, 64).add('a', 1, 2).add('a', 9, 4);
    assert_eq!(h.out.last().map(|r| r.ts), Some(9));
    h.add('a', 2, 8).add('a', 3, 16).add('a', 4, 32);
    assert_eq!(h.fired(), vec![('a', 0, 3, 7, OnTime), ('a', 3, 6, 56, OnTime)]);
    assert_eq!(h.core.open_windows(), 1, "b's window holds one record");
}

#[test]
fn partly_filled_count_windows_fire_at_end_of_input() {
    let mut h = summing(Windows::count(3), opts(0, None));
    for i in 0..4 {
        h.add('a', i, 1 << i);
    }
    h.add('b', 1, 16).wm(1000);
    assert_eq!(h.fired(), vec![('a', 0, 3, 7, OnTime)]);
    h.wm(i64::MAX);
    assert_eq!(h.fired(), vec![('b', 0, 3, 16, OnTime), ('a', 3, 6, 8, OnTime)]);
    assert_eq!(h.core.open_windows(), 0);
}

#[test]
fn count_windows_are_never_late() {
    let mut h = summing(Windows::count(2), opts(0, None));
    h.wm(1000).add('a', 1, 1).add('a', 2, 2);
    assert_eq!((h.fired(), h.late()), (vec![('a', 0, 2, 3, OnTime)], vec![]));
}

#[test]
fn tuple_aggregates_count_and_sum_at_once() {
    let mut core = WindowCore::new(Windows::tumbling(10), opts(0, None), (Count, Sum::of(|v: &i64| *v)));
    let (mut out, mut late) = (Vec::new(), Vec::new());
    for (ts, v) in [(1, 5), (2, 6), (11, 7)] {
        core.add('k', ts, v, &mut out, &mut late);
    }
    core.on_watermark(i64::MAX, &mut out);
    let got: Vec<_> = out.into_iter().map(|r| (r.value.window.start, r.value.value)).collect();
    assert_eq!(got, vec![(0, (2, 11)), (10, (1, 7))]);
}

#[test]
fn timestamps_at_the_ends_of_time_neither_overflow_nor_get_lost() {
    let kinds = [
        Windows::tumbling(10),
        Windows::sliding(10, 5),
        Windows::sliding(10, 3),
        Windows::session(10),
        Windows::count(2),
    ];
    for windows in kinds {
        for panes in [true, false] {
            let mut h = summing_layout(windows, timed(5, Some(1)), panes);
            h.add('a', i64::MIN, 1).add('a', i64::MIN + 1, 2).add('a', i64::MAX - 1, 4).add('a', i64::MAX, 8);
            h.early().wm(0).wm(i64::MAX - 1).wm(i64::MAX);
            let on_time: i64 = h.fired().iter().filter(|r| r.4 == OnTime).map(|r| r.3).sum();
            let sliding = matches!(windows, Windows::Sliding { .. });
            assert!(on_time == 15 || sliding && on_time > 15, "{windows:?}: {on_time}");
            assert_eq!((h.late(), h.core.open_windows()), (vec![], 0), "{windows:?}");
        }
    }
}

#[test]
fn next_step_stops_at_each_window_end_before_the_watermark() {
    for (windows, ends) in [
        (Windows::tumbling(10), vec![10, 20, 30]),
        // Panes of 5; no window ends at 25: [15, 25) holds no record.
        (Windows::sliding(10, 5), vec![5, 10, 15, 20, 30, 35]),
    ] {
        let mut h = summing(windows, opts(0, None));
        h.add('a', 1, 1).add('b', 12, 2).add('a', 25, 4);
        let mut stepped = Vec::new();
        let mut at = Vec::new();
        loop {
            let step = h.core.next_step(i64::MAX);
            h.core.on_watermark(step, &mut h.out);
            let fired: Vec<_> = h.out.drain(..).map(|r| (r.value.key, r.value.window.end, r.value.value)).collect();
            assert!(fired.iter().all(|f| f.1 == step || step == i64::MAX), "{windows:?}: step {step} fired {fired:?}");
            stepped.extend(fired);
            if step == i64::MAX {
                break;
            }
            at.push(step);
        }
        assert_eq!(at, ends, "{windows:?}");
        // The same as one jump.
        let mut jump = summing(windows, opts(0, None));
        jump.add('a', 1, 1).add('b', 12, 2).add('a', 25, 4).wm(i64::MAX);
        let once: Vec<_> = jump.out.drain(..).map(|r| (r.value.key, r.value.window.end, r.value.value)).collect();
        assert_eq!(stepped, once, "{windows:?}");
        assert_eq!(h.core.next_step(i64::MAX), i64::MAX, "nothing left");
    }
}
