//! Checkpoints of the window core, specified by resuming: a core restored
//! from a snapshot taken mid-stream emits, for the rest of the stream,
//! exactly what the original emits — for every window kind and layout, with
//! early-firing counters, dirty windows, windows kept for allowed lateness
//! and partly filled count windows in the snapshot. Restore refuses bytes
//! that are not a snapshot, and snapshots of another configuration, and then
//! leaves the core as it was. The harness is in `snapshot_harness.rs`.

use std::time::{Duration, Instant};

use super::snapshot_harness::{assert_resumes_identically, core, opts, run, timed, value, Agg, Core, Observed, Step};
use crate::message::Record;
use crate::window::core::WindowCore;
use crate::window::layout::Layout;
use crate::window::{Count, Sum};
use crate::window::{Timing, Window, WindowOptions, WindowResult, Windows};
use Step::{Add, Wm};
use Timing::{Early, Late, OnTime};

/// Whether any firing of the observed steps has `timing`.
fn any(observed: &[Observed], timing: Timing) -> bool {
    observed.iter().flat_map(|o| &o.fired).any(|f| f.3 == timing)
}

/// Number of late records in the observed steps.
fn late_count(observed: &[Observed]) -> usize {
    observed.iter().map(|o| o.late.len()).sum()
}

#[test]
fn tumbling_windows_resume_with_early_counts_dirty_flags_and_lateness_state() {
    let prefix = [
        Add(1, 1, 1),
        Add(1, 3, 2), // [0, 10) of 1 fires early: its count restarts
        Add(1, 4, 4), // ... and is 1 at the snapshot
        Add(2, 12, 8),
        Step::Early,    // 1's [0, 10) and 2's [10, 20) fire: clean
        Add(3, 15, 16), // 3's [10, 20): dirty
        Wm(10),         // 1's [0, 10) fires on time, kept until 30
        Add(2, -15, 1), // [-20, -10) is gone: late
        Add(1, 25, 32),
    ];
    let suffix = [
        Add(1, 8, 64), // late, within the lateness: an update of [0, 10)
        Add(3, 16, 1), // 3's [10, 20) reaches 2: early
        Add(2, 13, 2), // 2's [10, 20): 1 since its early firing
        Step::Early,   // the dirty ones only
        Wm(30),        // [10, 20), [20, 30) on time; [0, 10) expires
        Add(1, 9, 4),  // late for good
        Add(1, 29, 8), // an update of [20, 30), kept until 50
        Wm(i64::MAX),
    ];
    let seen = assert_resumes_identically(Windows::tumbling(10), timed(20, Some(2)), true, &prefix, &suffix, false);
    assert!(any(&seen, Early) && any(&seen, OnTime) && any(&seen, Late));
    assert_eq!(late_count(&seen), 1);
    // One key only: the order is specified throughout.
    let one_key: Vec<Step> =
        prefix.iter().chain(&suffix).filter(|s| !matches!(s, Add(k, ..) if *k != 1)).copied().collect();
    let (prefix, suffix) = one_key.split_at(6);
    assert_resumes_identically(Windows::tumbling(10), timed(20, Some(2)), true, prefix, suffix, true);
}

/// A sliding-window stream: several keys, early firings, an on-time firing
/// before the snapshot, updates within the lateness and a late record after.
fn sliding_stream() -> (Vec<Step>, Vec<Step>) {
    let prefix = vec![
        Add(1, 2, 1),
        Add(2, 7, 2),
        Add(1, 14, 4),
        Step::Early,
        Add(2, 21, 8),
        Add(1, 33, 16),
        Wm(30), // [0, 30) fires on time
        Add(3, 35, 32),
        Add(1, 36, 64),
    ];
    let suffix = vec![
        Add(1, 5, 1), // updates [0, 30) (and the earlier windows still kept)
        Add(2, 38, 2),
        Step::Early,
        Add(3, 39, 4),
        Wm(50),
        Add(1, 3, 8), // every window of ts 3 is gone: late
        Add(2, 45, 16),
        Step::Early,
        Wm(i64::MAX),
    ];
    (prefix, suffix)
}

#[test]
fn sliding_windows_in_panes_resume_with_dirty_panes_and_lateness_state() {
    let (prefix, suffix) = sliding_stream();
    let windows = Windows::sliding(30, 10);
    assert_eq!(core(windows, timed(15, None), true).layout(), Layout::PanesEarly);
    let seen = assert_resumes_identically(windows, timed(15, None), true, &prefix, &suffix, false);
    assert!(any(&seen, Early) && any(&seen, OnTime) && any(&seen, Late));
    assert_eq!(late_count(&seen), 1);
}

#[test]
fn sliding_windows_one_state_per_window_resume_with_early_counts() {
    let (prefix, suffix) = sliding_stream();
    let windows = Windows::sliding(30, 10);
    // Without panes by choice, and because early firing by count needs a
    // state per window.
    for (options, panes) in [(timed(15, None), false), (opts(15, Some(2)), false), (timed(15, Some(2)), true)] {
        assert_eq!(core(windows, options, panes).layout(), Layout::TimeEarly);
        let seen = assert_resumes_identically(windows, options, panes, &prefix, &suffix, false);
        assert!(any(&seen, Early) && any(&seen, OnTime) && any(&seen, Late));
        assert_eq!(late_count(&seen), 1);
    }
}

#[test]
fn sessions_resume_with_fired_sessions_kept_for_lateness_and_early_counts() {
    let prefix = [
        Add(1, 0, 1),
        Add(1, 5, 2), // 1: [0, 15)
        Add(2, 3, 4), // 2: [3, 13)
        Wm(16),       // both fire, kept until 35 / 33
        Add(1, 30, 8),
        Add(1, 33, 16), // 1: [30, 43), 2 records
        Step::Early,    // [30, 43) fires early: clean, count 0
        Add(1, 36, 32), // count 1, dirty
        Add(3, 40, 64),
    ];
    let suffix = [
        Add(2, 4, 1),  // joins the fired [3, 13): an update
        Add(1, 37, 2), // 1's [30, 47): count 2
        Add(1, 38, 4), // count 3: early
        Add(3, 45, 8), // bridges nothing: 3's [40, 55)
        Step::Early,
        Wm(50),         // 1's [30, 48) fires; the sessions of 16 expire
        Add(2, 1, 16),  // late for good
        Add(1, 35, 32), // joins the fired [30, 48): an update
        Wm(i64::MAX),
    ];
    let options = timed(20, Some(3));
    let seen = assert_resumes_identically(Windows::session(10), options, true, &prefix, &suffix, false);
    assert!(any(&seen, Early) && any(&seen, OnTime) && any(&seen, Late));
    assert_eq!(late_count(&seen), 1);
}

#[test]
fn count_windows_resume_partly_filled_with_their_positions() {
    let mut prefix: Vec<Step> = (0..5).map(|i| Add(1, i, i)).collect(); // one full window, 1 record
    prefix.extend((0..3).map(|i| Add(2, 10 + i, i))); // early at 2
    prefix.extend([Add(3, 7, 1), Step::Early, Add(2, 20, 5)]);
    let mut suffix: Vec<Step> = (0..3).map(|i| Add(1, 30 - i, i)).collect(); // fills 1's [4, 8)
    suffix.extend([Add(2, 21, 1), Add(3, 2, 2), Step::Early, Wm(1000), Add(4, 1, 1), Wm(i64::MAX)]);
    let seen = assert_resumes_identically(Windows::count(4), timed(0, Some(2)), true, &prefix, &suffix, false);
    assert!(any(&seen, Early) && any(&seen, OnTime));
    let windows: Vec<_> = seen.iter().flat_map(|o| &o.fired).filter(|f| f.0 == 1 && f.3 == OnTime).collect();
    assert_eq!(windows, [&(1, Window::new(4, 8), (4, 7), OnTime, 30)]);
}

#[test]
fn a_snapshot_of_a_fresh_core_restores_to_a_fresh_core() {
    let windows = Windows::tumbling(10);
    let suffix = [Add(1, 1, 1), Wm(10)];
    assert_resumes_identically(windows, opts(0, None), true, &[], &suffix, true);
    assert_eq!(core(windows, opts(0, None), true).snapshot(), core(windows, opts(0, None), true).snapshot());
}

/// A tumbling core with some state, and its snapshot.
fn tumbling_with_state() -> (Core, Vec<u8>) {
    let mut c = core(Windows::tumbling(10), opts(5, None), true);
    run(&mut c, &[Add(1, 1, 1), Add(2, 12, 2), Wm(10), Add(1, 3, 4)]);
    let bytes = c.snapshot();
    (c, bytes)
}

/// Restores `bytes` into `target`, expects an error containing every one of
/// `words`, and checks that `target` still holds the state it had.
fn assert_rejected(target: &mut Core, bytes: &[u8], words: &[&str]) {
    let before = target.snapshot();
    let err = target.restore(bytes).expect_err("restore must refuse");
    for w in words {
        assert!(err.contains(w), "error {err:?} should mention {w:?}");
    }
    assert_eq!(target.snapshot(), before, "a failed restore changed the core ({err})");
}

#[test]
fn restore_rejects_bytes_that_are_not_a_snapshot_and_keeps_its_state() {
    let (mut c, bytes) = tumbling_with_state();
    assert_rejected(&mut c, b"", &["does not decode"]);
    assert_rejected(&mut c, b"definitely not a snapshot", &["does not decode"]);
    assert_rejected(&mut c, &bytes[..bytes.len() - 1], &["does not decode"]);
    assert_rejected(&mut c, &bytes[..bytes.len() / 2], &["does not decode"]);
    let mut longer = bytes.clone();
    longer.push(0);
    assert_rejected(&mut c, &longer, &["does not decode", "1 bytes follow its end"]);
    assert_rejected(&mut c, &rmp_serde::to_vec(&("weir-window-core", 1, 2)).unwrap(), &["does not decode"]);
    assert_rejected(&mut c, &rmp_serde::to_vec(&(1u8, 2u8, 3u8, 4u8)).unwrap(), &["does not decode"]);
    // Other MessagePack: a valid array whose header is another program's.
    let foreign = rmp_serde::to_vec(&(("other", 1, "Tumbling"), 0, 0, ())).unwrap();
    assert_rejected(&mut c, &foreign, &["does not decode"]);
    // After all that, the core still works from its own state.
    let (mut out, mut late) = (Vec::new(), Vec::new());
    c.add(2, 15, 8, &mut out, &mut late);
    c.on_watermark(20, &mut out);
    let fired: Vec<_> = out.iter().map(|r| (r.value.key, r.value.window.end, r.value.value)).collect();
    assert_eq!(fired, [(2, 20, (2, 10))]);
}

#[test]
fn restore_rejects_a_snapshot_of_another_window_kind() {
    let (_, tumbling) = tumbling_with_state();
    let mut session = core(Windows::session(10), opts(5, None), true);
    assert_rejected(&mut session, &tumbling, &["does not fit", "Tumbling", "Session"]);
    let mut count = core(Windows::count(10), opts(5, None), true);
    assert_rejected(&mut count, &tumbling, &["does not fit", "Tumbling", "Count"]);
    let mut session = core(Windows::session(10), opts(0, None), true);
    run(&mut session, &[Add(1, 1, 1), Add(2, 30, 2)]);
    let mut time = core(Windows::tumbling(10), opts(5, None), true);
    assert_rejected(&mut time, &session.snapshot(), &["does not fit", "Session", "Tumbling"]);
}

#[test]
fn restore_rejects_another_size_layout_or_options() {
    let (_, tumbling) = tumbling_with_state();
    let mut bigger = core(Windows::tumbling(20), opts(5, None), true);
    assert_rejected(&mut bigger, &tumbling, &["size: 10", "size: 20"]);
    let mut stricter = core(Windows::tumbling(10), opts(0, None), true);
    assert_rejected(&mut stricter, &tumbling, &["allowed lateness of 5 ms", "0 ms"]);
    let mut early = core(Windows::tumbling(10), opts(5, Some(3)), true);
    assert_rejected(&mut early, &tumbling, &["early firing every None records", "Some(3)"]);
    let ticking_options = WindowOptions { early_firing_interval: Some(Duration::from_secs(1)), ..opts(5, None) };
    let mut ticking = core(Windows::tumbling(10), ticking_options, true);
    assert_rejected(&mut ticking, &tumbling, &["early firing every None", "Some(1s)"]);
    // Same windows, other layout: panes and one state per window.
    let mut panes = core(Windows::sliding(30, 10), opts(0, None), true);
    run(&mut panes, &[Add(1, 1, 1)]);
    let mut per_window = core(Windows::sliding(30, 10), opts(0, None), false);
    assert_rejected(&mut per_window, &panes.snapshot(), &["Panes layout", "Time layout"]);
}

#[test]
fn restore_rejects_a_snapshot_with_another_key_type() {
    let (_, bytes) = tumbling_with_state();
    let agg: Agg = (Count, Sum::of(value as fn(&i64) -> i64));
    let mut strings: WindowCore<String, i64, Agg> = WindowCore::new(Windows::tumbling(10), opts(5, None), agg);
    let err = strings.restore(&bytes).expect_err("u32 keys are not strings");
    assert!(err.contains("does not decode"), "{err}");
    assert_eq!(strings.open_windows(), 0);
}

#[test]
fn restore_rejects_state_that_breaks_an_invariant() {
    let mut c = core(Windows::count(3), opts(0, None), true);
    run(&mut c, &[Add(1, 1, 1), Add(1, 2, 1)]);
    let mut bytes = c.snapshot();
    // The filling's `len` (2) is the byte after its `start` (0) and after
    // the accumulator [2, 2]: set it to 3, a full window that never fired.
    let at = bytes.windows(5).rposition(|w| w == [0x92, 0x02, 0x02, 0x00, 0x02]).expect("the filling is encoded");
    bytes[at + 4] = 0x03;
    let mut target = core(Windows::count(3), opts(0, None), true);
    assert_rejected(&mut target, &bytes, &["inconsistent", "holds 3 records, a window holds 3"]);
}

#[test]
fn snapshot_of_100k_keys_of_tumbling_count_and_sum() {
    let agg: Agg = (Count, Sum::of(value as fn(&i64) -> i64));
    let mut c: WindowCore<u64, i64, Agg> = WindowCore::new(Windows::tumbling(1000), opts(0, None), agg);
    let (mut out, mut late) = (Vec::new(), Vec::new());
    for key in 0..100_000u64 {
        c.add(key, (key % 1000) as i64, key as i64 * 3, &mut out, &mut late);
        c.add(key, 500, 7, &mut out, &mut late);
    }
    let started = Instant::now();
    let bytes = c.snapshot();
    let encoded = started.elapsed();
    let mut restored: WindowCore<u64, i64, Agg> = WindowCore::new(Windows::tumbling(1000), opts(0, None), agg);
    let started = Instant::now();
    restored.restore(&bytes).expect("restores");
    let decoded = started.elapsed();
    eprintln!(
        "100,000 keys of tumbling (Count, Sum) state: {} bytes ({:.1} per key); \
         snapshot {encoded:?}, restore {decoded:?}",
        bytes.len(),
        bytes.len() as f64 / 100_000.0
    );
    assert_eq!(restored.open_windows(), 100_000);
    assert!(bytes.len() < 2_000_000, "{} bytes", bytes.len());
    let (mut a, mut b) = (Vec::new(), Vec::new());
    c.on_watermark(1000, &mut a);
    restored.on_watermark(1000, &mut b);
    let sorted = |v: Vec<Record<WindowResult<u64, (u64, i64)>>>| {
        let mut v: Vec<_> = v.into_iter().map(|r| (r.value.key, r.value.value)).collect();
        v.sort_unstable();
        v
    };
    assert_eq!(sorted(a), sorted(b));
}

/// One core of every layout, fed the same short stream of three keys: what
/// [`snapshot_bytes_of_format_2_are_stable`] encodes.
fn one_of_each_layout() -> Vec<(&'static str, Core)> {
    let stream =
        [Add(1, 1, 1), Add(2, 3, 2), Add(1, 12, 4), Step::Early, Add(3, 14, 8), Wm(10), Add(1, 9, 16), Add(2, 25, 32)];
    let mut cores: Vec<_> =
        ["Time", "TimeEarly", "Panes", "PanesEarly", "Session", "Count"].map(|name| (name, fresh_like(name))).into();
    for (_, c) in &mut cores {
        run(c, &stream);
    }
    cores
}

/// An empty core of the layout `name`.
fn fresh_like(name: &str) -> Core {
    match name {
        "Time" => core(Windows::tumbling(10), opts(5, None), true),
        "TimeEarly" => core(Windows::sliding(20, 10), timed(5, Some(2)), true),
        "Panes" => core(Windows::sliding(20, 10), opts(5, None), true),
        "PanesEarly" => core(Windows::sliding(20, 10), timed(5, None), true),
        "Session" => core(Windows::session(4), timed(5, Some(2)), true),
        _ => core(Windows::count(3), timed(0, Some(2)), true),
    }
}

/// What [`one_of_each_layout`] encodes, in hex: written by the build that
/// introduced format 2 (and kept by every build since that reads it).
const FORMAT_2_FIXTURES: [(&str, &str); 6] = [
    ("Time", "9497b0776569722d77696e646f772d636f72650281a854756d626c696e67910aa454696d6505c0c00a0093920a9292029292010290920192920211909214929201929201049092039292010890921e9192029292012090"),
    ("TimeEarly", "9497b0776569722d77696e646f772d636f72650281a7536c6964696e6792140aa954696d654561726c7905029201000a0094920a929202929201029200c29201929202119200c29214939202929201029200c29201929203159201c39203929201089201c3921e939202929201209201c39201929201049200c29203929201089201c39228919202929201209201c3"),
    ("Panes", "9497b0776569722d77696e646f772d636f72650281a7536c6964696e6792140aa550616e657305c0c00a0093920a9292029292010290920192920211909214929201929201049092039292010890921e9192029292012090"),
    ("PanesEarly", "9497b0776569722d77696e646f772d636f72650281a7536c6964696e6792140aaa50616e65734561726c7905c09201000a0093920a92920292920102c2920192920211c3921492920192920104c2920392920108c3921e91920292920120c3"),
    ("Session", "9497b0776569722d77696e646f772d636f72650281a753657373696f6e9104a753657373696f6e05029201000a009393010a929592010592010100c2c39592091092021401c3c293020c929592030792010200c2c39592191d92012001c3c29303129195920e1292010801c3c2"),
    ("Count", "9497b0776569722d77696e646f772d636f72650281a5436f756e749103a5436f756e7400029201000a009392029692022200021901c39201969200000300d3800000000000000000c292039692010800010e01c3"),
];

#[test]
fn snapshot_bytes_of_format_2_are_stable() {
    let hex = |bytes: &[u8]| -> String { bytes.iter().map(|b| format!("{b:02x}")).collect() };
    for ((name, c), (fixture_name, fixture)) in one_of_each_layout().into_iter().zip(FORMAT_2_FIXTURES) {
        assert_eq!(name, fixture_name);
        assert_eq!(
            hex(&c.snapshot()),
            fixture,
            "{name}: the encoding changed; bump FORMAT and say so in docs/checkpoints.md"
        );
        // A fresh core of the configuration restores the fixture and
        // writes it back unchanged.
        let bytes: Vec<u8> =
            (0..fixture.len()).step_by(2).map(|i| u8::from_str_radix(&fixture[i..i + 2], 16).expect("hex")).collect();
        let mut restored = fresh_like(name);
        restored.restore(&bytes).unwrap_or_else(|e| panic!("{name}: {e}"));
        assert_eq!(hex(&restored.snapshot()), fixture, "{name}: restored and written again");
    }
}
