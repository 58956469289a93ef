//! The baseline: the reference jobs as a hand-written, single-threaded loop
//! — the cost of the work with no framework around it.
//!
//! One loop generates the WORKLOAD.md stream ([`EventFn`], the same pure
//! function the weir generator uses), adds each event to the job's state
//! (tumbling windows in [`Tumbling`], pane-based sliding windows in
//! [`Sliding`], sessions in [`Sessions`]), advances the watermark `max_ts - B` as the newest event
//! time grows, fires what it passed and folds the fired rows into the
//! [`Checksum`]. Hash maps use a folded-multiply hasher; nothing is
//! allocated per event. What weir adds on top of this — batching,
//! mailboxes, partitioning, watermark propagation, threads — is what the
//! bench measures.

use crate::workload::{Checksum, EventFn, StreamParams, Workload};

use super::sessions::Sessions;
use super::sliding::Sliding;
use super::tumbling::Tumbling;

/// What the baseline computed.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Output {
    /// The checksum of the fired rows.
    pub(crate) checksum: Checksum,
    /// Events behind the watermark whose windows had all fired (none when
    /// `bound >= disorder`).
    pub(crate) late: u64,
}

/// A job's state, as the loop drives it.
trait State {
    /// Adds one event; `wm` is the watermark before it.
    fn add(&mut self, wm: i64, ts: i64, key: u64, value: i64);
    /// The watermark advanced to `wm`: fire what is due into `sum`.
    fn on_watermark(&mut self, wm: i64, sum: &mut Checksum);
    /// Late events so far.
    fn late(&self) -> u64;
}

impl State for Tumbling {
    #[inline(always)]
    fn add(&mut self, wm: i64, ts: i64, key: u64, value: i64) {
        Tumbling::add(self, wm, ts, key, value);
    }
    #[inline(always)]
    fn on_watermark(&mut self, wm: i64, sum: &mut Checksum) {
        Tumbling::on_watermark(self, wm, sum);
    }
    fn late(&self) -> u64 {
        self.late
    }
}

impl State for Sliding {
    #[inline(always)]
    fn add(&mut self, wm: i64, ts: i64, key: u64, value: i64) {
        Sliding::add(self, wm, ts, key, value);
    }
    #[inline(always)]
    fn on_watermark(&mut self, wm: i64, sum: &mut Checksum) {
        Sliding::on_watermark(self, wm, sum);
    }
    fn late(&self) -> u64 {
        self.late
    }
}

impl State for Sessions {
    #[inline(always)]
    fn add(&mut self, wm: i64, ts: i64, key: u64, value: i64) {
        Sessions::add(self, wm, ts, key, value);
    }
    #[inline(always)]
    fn on_watermark(&mut self, wm: i64, sum: &mut Checksum) {
        Sessions::on_watermark(self, wm, sum);
    }
    fn late(&self) -> u64 {
        self.late
    }
}

/// The join interval `J` of every WL4 measurement (WORKLOAD.md's default).
pub(crate) const WL4_INTERVAL: i64 = 500;

/// Runs `workload` over the stream `params` with watermark bound `bound`
/// (and session gap `gap` for WL3).
pub(crate) fn run(workload: Workload, params: &StreamParams, bound: i64, gap: i64) -> Output {
    match workload {
        Workload::Wl1 => drive(params, bound, Tumbling::new(10_000)),
        Workload::Wl2 => drive(params, bound, Sliding::new(10_000, 2_000)),
        Workload::Wl3 => drive(params, bound, Sessions::new(gap, bound)),
        Workload::Wl4 => super::join::run(params, bound, WL4_INTERVAL),
    }
}

/// The loop, monomorphised per state.
fn drive<S: State>(params: &StreamParams, bound: i64, mut state: S) -> Output {
    let events = EventFn::new(params);
    let mut checksum = Checksum::default();
    let mut max_ts = i64::MIN;
    let mut wm = i64::MIN;
    for i in 0..params.events {
        let e = events.event(i);
        state.add(wm, e.ts, e.key, e.value);
        // The watermark moves only when the newest event time does (about
        // every R / 1000 events here), after the event that moved it.
        if e.ts > max_ts {
            max_ts = e.ts;
            let next = max_ts.saturating_sub(bound);
            if next > wm {
                wm = next;
                state.on_watermark(wm, &mut checksum);
            }
        }
    }
    // End of input: the final watermark closes everything.
    state.on_watermark(i64::MAX, &mut checksum);
    Output { checksum, late: state.late() }
}

#[cfg(test)]
mod tests {
    use super::super::check::check_value;
    use super::*;

    fn check(workload: Workload, keys: u64) {
        let params = StreamParams { events: 3_000_000, keys, rate: 100_000, disorder: 2_000 };
        let got = run(workload, &params, 2_000, 500);
        let want = check_value(workload, &params, 2_000, 500).expect("a row of the WORKLOAD.md table");
        assert_eq!(got.late, 0, "{workload:?} K={keys}: B = D makes nothing late");
        assert_eq!(got.checksum, want, "{workload:?} K={keys}");
    }

    #[test]
    fn wl1_k16_matches_the_check_values() {
        check(Workload::Wl1, 16);
    }

    #[test]
    fn wl1_k100000_matches_the_check_values() {
        check(Workload::Wl1, 100_000);
    }

    #[test]
    fn wl2_k16_matches_the_check_values() {
        check(Workload::Wl2, 16);
    }

    #[test]
    fn wl3_k100000_matches_the_check_values() {
        check(Workload::Wl3, 100_000);
    }

    #[test]
    fn wl4_k100000_matches_the_check_values() {
        check(Workload::Wl4, 100_000);
    }

    #[test]
    fn sessions_that_touch_merge_and_fire_once_the_watermark_has_passed() {
        let mut s = Sessions::new(500, 0);
        let mut sum = Checksum::default();
        s.add(i64::MIN, 0, 7, 1);
        s.on_watermark(0, &mut sum);
        s.add(0, 1_000, 7, 2); // [1000, 1500)
        s.add(0, 500, 7, 3); // [500, 1000) touches both: one session [0, 1500)
        s.on_watermark(1_500, &mut sum);
        assert_eq!(sum.rows, 0, "a session fires only once the watermark has passed its end");
        s.on_watermark(1_501, &mut sum);
        let mut want = Checksum::default();
        want.add(0, 7, 3, 6, Some(1_500));
        assert_eq!(sum, want);
    }

    #[test]
    fn sliding_windows_start_before_zero_and_each_event_counts_five_times() {
        let params = StreamParams { events: 10_000, keys: 3, rate: 100_000, disorder: 0 };
        let got = run(Workload::Wl2, &params, 0, 500);
        assert_eq!(got.checksum.events, 5 * 10_000);
    }
}
