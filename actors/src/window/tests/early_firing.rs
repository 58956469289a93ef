//! Early firings, by count and by processing time, for every window kind:
//! partial results before the on-time one, exact per window, only for
//! windows that have not fired on time.

use super::hand_made::{opts, summing, summing_layout, timed};
use crate::window::Timing::{Early, Late, OnTime};
use crate::window::Windows;

#[test]
fn early_firing_by_count_emits_partial_results_before_the_on_time_one() {
    let mut h = summing(Windows::tumbling(100), opts(0, Some(2)));
    for i in 1..=5 {
        h.add('a', i, i);
    }
    h.wm(100);
    assert_eq!(h.fired(), vec![('a', 0, 100, 3, Early), ('a', 0, 100, 10, Early), ('a', 0, 100, 15, OnTime)]);
}

#[test]
fn early_firing_by_count_is_exact_per_sliding_window() {
    let mut h = summing(Windows::sliding(10, 5), opts(0, Some(2)));
    h.add('a', 1, 1).add('a', 6, 2);
    assert_eq!(h.fired(), vec![('a', 0, 10, 3, Early)]);
    h.add('a', 7, 4);
    assert_eq!(h.fired(), vec![('a', 5, 15, 6, Early)]);
}

#[test]
fn window_that_fired_on_time_no_longer_fires_early() {
    let mut h = summing(Windows::tumbling(10), timed(100, Some(1)));
    h.add('a', 1, 1).wm(10).add('a', 2, 2);
    assert_eq!(h.fired(), vec![('a', 0, 10, 1, Early), ('a', 0, 10, 1, OnTime), ('a', 0, 10, 3, Late)]);
    h.early();
    assert_eq!(h.fired(), vec![]);
}

#[test]
fn early_firing_by_count_sums_session_counters_on_merge() {
    let mut h = summing(Windows::session(10), opts(0, Some(3)));
    h.add('a', 0, 1).add('a', 30, 2).add('a', 20, 4);
    assert_eq!(h.fired(), vec![]);
    h.add('a', 10, 8);
    assert_eq!(h.fired(), vec![('a', 0, 40, 15, Early)]);
}

#[test]
fn early_firing_by_count_in_count_windows() {
    let mut h = summing(Windows::count(3), opts(0, Some(2)));
    h.add('a', 1, 1).add('a', 2, 2).add('a', 3, 4).add('a', 4, 8);
    assert_eq!(h.fired(), vec![('a', 0, 3, 3, Early), ('a', 0, 3, 7, OnTime)]);
}

#[test]
fn fire_early_reports_each_changed_open_window_once() {
    let mut h = summing(Windows::tumbling(10), timed(100, None));
    h.add('a', 1, 1).add('b', 15, 2).early();
    assert_eq!(h.fired(), vec![('a', 0, 10, 1, Early), ('b', 10, 20, 2, Early)]);
    h.early().add('a', 2, 4).early();
    assert_eq!(h.fired(), vec![('a', 0, 10, 5, Early)]);
    h.wm(10).fired();
    h.add('b', 16, 8).add('a', 3, 16).fired();
    h.early();
    assert_eq!(h.fired(), vec![('b', 10, 20, 10, Early)], "a fired on time: its update was Late");
}

#[test]
fn fire_early_fires_sliding_windows_with_a_changed_pane() {
    for panes in [true, false] {
        let mut h = summing_layout(Windows::sliding(10, 5), timed(0, None), panes);
        h.add('a', 7, 1).early();
        assert_eq!(h.fired(), vec![('a', 0, 10, 1, Early), ('a', 5, 15, 1, Early)]);
        h.add('a', 12, 2).early();
        assert_eq!(h.fired(), vec![('a', 5, 15, 3, Early), ('a', 10, 20, 2, Early)], "panes: {panes}");
        h.wm(10).fired();
        h.early();
        assert_eq!(h.fired(), vec![]);
    }
}

#[test]
fn fire_early_fires_changed_sessions_and_partial_count_windows() {
    let mut h = summing(Windows::session(10), timed(0, None));
    h.add('a', 0, 1).early().early();
    assert_eq!(h.fired(), vec![('a', 0, 10, 1, Early)]);
    h.add('a', 5, 2).early();
    assert_eq!(h.fired(), vec![('a', 0, 15, 3, Early)]);

    let mut h = summing(Windows::count(3), timed(0, None));
    h.add('a', 1, 1).early().early();
    assert_eq!(h.fired(), vec![('a', 0, 3, 1, Early)]);
    h.add('a', 2, 2).add('a', 3, 4).early();
    assert_eq!(h.fired(), vec![('a', 0, 3, 7, OnTime)], "a full window fired on time; the next is empty");
}
