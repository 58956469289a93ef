//! The baseline's state for WL4: a keyed interval join of the stream's two
//! sides, `a.ts - J <= b.ts <= a.ts + J`.
//!
//! Each key keeps the events of both sides that can still match. An event
//! is joined with the buffered events of the other side of its key, each
//! match folded into the checksum at once, then buffered. An A event is
//! dropped once the watermark is beyond `a.ts + J`, a B event once it is
//! beyond `b.ts + J` (WORKLOAD.md): expiry times are kept per bucket of 64
//! ms in a small ordered map and swept as the watermark passes. Emptied
//! keys are removed.

use std::collections::BTreeMap;

use crate::workload::{Checksum, EventFn, JoinRow, ResultRow, StreamParams};

use super::baseline::Output;
use super::hash::{fast_map, FastMap};

/// Expiry bucket length, ms.
const BUCKET: i64 = 64;

/// One key's buffered `(ts, value)` per side.
#[derive(Debug, Default)]
struct Sides {
    a: Vec<(i64, i64)>,
    b: Vec<(i64, i64)>,
}

/// The interval join of every key.
#[derive(Debug)]
pub(crate) struct Join {
    interval: i64,
    keys: FastMap<u64, Sides>,
    expiry: BTreeMap<i64, Vec<u64>>,
    /// Events behind the watermark (joined with nothing).
    pub(crate) late: u64,
}

impl Join {
    pub(crate) fn new(interval: i64) -> Self {
        Join { interval, keys: fast_map(), expiry: BTreeMap::new(), late: 0 }
    }

    /// Adds an event of `side` (0: A, 1: B); `wm` is the watermark before it.
    #[inline]
    pub(crate) fn add(&mut self, wm: i64, side: u8, ts: i64, key: u64, value: i64, sum: &mut Checksum) {
        if ts < wm {
            self.late += 1;
            return;
        }
        let j = self.interval;
        let sides = self.keys.entry(key).or_default();
        if side == 0 {
            for &(tb, vb) in &sides.b {
                if ts - j <= tb && tb <= ts + j {
                    JoinRow { a_ts: ts, key, a_value: value, b_ts: tb, b_value: vb }.add_to(sum);
                }
            }
            sides.a.push((ts, value));
        } else {
            for &(ta, va) in &sides.a {
                if ta - j <= ts && ts <= ta + j {
                    JoinRow { a_ts: ta, key, a_value: va, b_ts: ts, b_value: value }.add_to(sum);
                }
            }
            sides.b.push((ts, value));
        }
        self.expiry.entry((ts + j).div_euclid(BUCKET)).or_default().push(key);
    }

    /// The watermark advanced to `wm`: drops what can match nothing more.
    pub(crate) fn on_watermark(&mut self, wm: i64) {
        let j = self.interval;
        while let Some(entry) = self.expiry.first_entry() {
            if entry.key().saturating_mul(BUCKET).saturating_add(BUCKET - 1) >= wm {
                break;
            }
            for key in entry.remove() {
                let Some(sides) = self.keys.get_mut(&key) else { continue };
                sides.a.retain(|&(t, _)| t.saturating_add(j) >= wm);
                sides.b.retain(|&(t, _)| t.saturating_add(j) >= wm);
                if sides.a.is_empty() && sides.b.is_empty() {
                    self.keys.remove(&key);
                }
            }
        }
    }
}

/// WL4 as one loop: generate, join, advance the watermark `max_ts - B`.
pub(crate) fn run(params: &StreamParams, bound: i64, interval: i64) -> Output {
    let events = EventFn::new(params);
    let mut join = Join::new(interval);
    let mut checksum = Checksum::default();
    let (mut max_ts, mut wm) = (i64::MIN, i64::MIN);
    for i in 0..params.events {
        let (e, side) = events.event_and_side(i);
        join.add(wm, side, e.ts, e.key, e.value, &mut checksum);
        if e.ts > max_ts {
            max_ts = e.ts;
            let next = max_ts.saturating_sub(bound);
            if next > wm {
                wm = next;
                join.on_watermark(wm);
            }
        }
    }
    join.on_watermark(i64::MAX);
    Output { checksum, late: join.late }
}
