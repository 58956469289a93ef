//! The input of the fault-injection test and what a failure-free job must
//! make of it, computed by brute force.
//!
//! The input is a file of JSON lines, a few of them malformed. A
//! `FileSource` reads it in batches of exactly [`BATCH`] lines (a
//! malformed line takes the place of a record), and with a watermark
//! interval of zero the source emits `max_ts - BOUND` after every batch.
//! So the watermark a record meets at the window manager is a function of
//! its line number alone: that is what makes lateness — and with it every
//! window's exact contents — computable here without running anything.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};
use weir::prelude::*;
use weir_harness::workload::mix;

/// Lines per source batch.
pub(crate) const BATCH: usize = 20;
/// The watermark bound, ms: smaller than the disorder, so some records are
/// late.
pub(crate) const BOUND: i64 = 60;
/// Lines per input file.
pub(crate) const LINES: u64 = 2_400;
/// Distinct keys.
const KEYS: u64 = 4;
/// Event time between two consecutive lines, ms.
const STEP: i64 = 3;

/// One record of the input.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) struct Ev {
    /// Its line number, 0-based: unique in its file.
    pub(crate) id: u64,
    pub(crate) key: u32,
    pub(crate) ts: i64,
    pub(crate) value: i64,
}

/// One window result, as the job writes it and the model computes it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) struct Row {
    pub(crate) key: u32,
    pub(crate) start: i64,
    pub(crate) end: i64,
    pub(crate) timing: Timing,
    /// What [`Fingerprint`] gave: records, sum of values, sum of `mix(id)`.
    pub(crate) count: u64,
    pub(crate) sum: i64,
    pub(crate) digest: u64,
}

/// The four window kinds under test.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub(crate) enum Kind {
    Tumbling,
    Sliding,
    Session,
    Count,
}

const TUMBLING: i64 = 300;
const SLIDING: (i64, i64) = (300, 100);
const GAP: i64 = 20;
const COUNT: u64 = 7;

impl Kind {
    pub(crate) const ALL: [Kind; 4] = [Kind::Tumbling, Kind::Sliding, Kind::Session, Kind::Count];

    pub(crate) fn name(self) -> &'static str {
        match self {
            Kind::Tumbling => "tumbling",
            Kind::Sliding => "sliding",
            Kind::Session => "session",
            Kind::Count => "count",
        }
    }

    pub(crate) fn windows(self) -> Windows {
        match self {
            Kind::Tumbling => Windows::tumbling(TUMBLING),
            Kind::Sliding => Windows::sliding(SLIDING.0, SLIDING.1),
            Kind::Session => Windows::session(GAP),
            Kind::Count => Windows::count(COUNT),
        }
    }

    /// Whether a record can be late (count windows ignore event time).
    pub(crate) fn has_late_data(self) -> bool {
        self != Kind::Count
    }

    /// Whether each record lands in at most one window.
    pub(crate) fn partitions(self) -> bool {
        self != Kind::Sliding
    }
}

/// A deterministic generator (SplitMix64).
#[derive(Debug, Clone)]
pub(crate) struct Rng(u64);

impl Rng {
    pub(crate) fn new(seed: u64) -> Self {
        Rng(seed)
    }

    pub(crate) fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        mix(self.0)
    }

    /// Uniform in `0..n`.
    pub(crate) fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }
}

/// An input file: its lines, and the record each holds (`None`: malformed).
#[derive(Debug, Clone)]
pub(crate) struct Input {
    pub(crate) lines: Vec<Vec<u8>>,
    pub(crate) records: Vec<Option<Ev>>,
}

/// Lines that must become dead letters: broken JSON, wrong types, missing
/// fields, not UTF-8.
const MALFORMED: [&[u8]; 6] = [
    b"not json at all",
    br#"{"id":1,"key":"red","ts":5,"value":1}"#,
    br#"{"id":2,"key":1,"ts":"#,
    br#"{"id":3,"key":1}"#,
    b"[1,2,3]",
    b"\xff\xfe{\"id\":4}",
];

impl Input {
    /// `LINES` lines, about one in 30 malformed; event time advances
    /// `STEP` ms a line, most records up to 20 ms out of order and one in
    /// ten up to 400 ms (beyond the bound: candidates for lateness).
    pub(crate) fn generate(seed: u64) -> Self {
        let mut rng = Rng::new(seed);
        let (mut lines, mut records) = (Vec::new(), Vec::new());
        for id in 0..LINES {
            if rng.below(30) == 0 {
                lines.push(MALFORMED[rng.below(MALFORMED.len() as u64) as usize].to_vec());
                records.push(None);
                continue;
            }
            let jitter = if rng.below(10) == 0 { rng.below(400) } else { rng.below(20) } as i64;
            let ev = Ev {
                id,
                key: rng.below(KEYS) as u32,
                ts: (id as i64 * STEP - jitter).max(0),
                value: rng.below(1_000) as i64,
            };
            lines.push(serde_json::to_vec(&ev).expect("a record serializes"));
            records.push(Some(ev));
        }
        Input { lines, records }
    }

    /// The file's bytes.
    pub(crate) fn bytes(&self) -> Vec<u8> {
        let mut out = Vec::new();
        for line in &self.lines {
            out.extend_from_slice(line);
            out.push(b'\n');
        }
        out
    }

    /// The 1-based numbers of the malformed lines.
    pub(crate) fn malformed_lines(&self) -> Vec<u64> {
        (1..).zip(&self.records).filter(|(_, r)| r.is_none()).map(|(n, _)| n).collect()
    }

    pub(crate) fn valid(&self) -> impl Iterator<Item = &Ev> + '_ {
        self.records.iter().flatten()
    }

    /// Each source batch's records with the watermark they meet: the one
    /// emitted after the batch before (none before the first).
    fn batches(&self) -> Vec<(i64, Vec<Ev>)> {
        let mut max_ts = i64::MIN;
        let mut out = Vec::new();
        for chunk in self.records.chunks(BATCH) {
            let wm = if max_ts == i64::MIN { i64::MIN } else { max_ts - BOUND };
            let evs: Vec<Ev> = chunk.iter().flatten().copied().collect();
            max_ts = evs.iter().map(|e| e.ts).fold(max_ts, i64::max);
            out.push((wm, evs));
        }
        out
    }
}

/// What the aggregate keeps of a set of records.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) struct Acc {
    pub(crate) count: u64,
    pub(crate) sum: i64,
    pub(crate) digest: u64,
}

impl Acc {
    pub(crate) fn add(&mut self, e: &Ev) {
        self.count += 1;
        self.sum += e.value;
        self.digest = self.digest.wrapping_add(mix(e.id));
    }

    pub(crate) fn merge(&mut self, o: Acc) {
        self.count += o.count;
        self.sum += o.sum;
        self.digest = self.digest.wrapping_add(o.digest);
    }

    fn row(self, key: u32, start: i64, end: i64) -> Row {
        Row { key, start, end, timing: Timing::OnTime, count: self.count, sum: self.sum, digest: self.digest }
    }
}

/// Counts, sums and fingerprints the ids of a window's records; merges, so
/// that tumbling and sliding windows are pre-aggregated before the shuffle.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Fingerprint;

impl Aggregate<Ev> for Fingerprint {
    type Acc = Acc;
    type Out = Acc;
    fn create(&self) -> Acc {
        Acc::default()
    }
    fn add(&self, acc: &mut Acc, value: &Ev) {
        acc.add(value);
    }
    fn merge(&self, acc: &mut Acc, other: Acc) {
        acc.merge(other);
    }
    fn result(&self, acc: &Acc) -> Acc {
        *acc
    }
}

/// What a failure-free run emits: every window's result (sorted) and the
/// ids of the late records (sorted).
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Expected {
    pub(crate) rows: Vec<Row>,
    pub(crate) late: Vec<u64>,
}

/// The results of `kind` over `input`, by brute force.
pub(crate) fn expected(kind: Kind, input: &Input) -> Expected {
    let mut windows: BTreeMap<(u32, i64, i64), Acc> = BTreeMap::new();
    let mut late = Vec::new();
    let batches = input.batches();
    match kind {
        Kind::Tumbling | Kind::Sliding => {
            let (size, slide) = if kind == Kind::Tumbling { (TUMBLING, TUMBLING) } else { SLIDING };
            for (wm, evs) in &batches {
                for e in evs {
                    // Every window [s, s + size) with s a multiple of the
                    // slide holding e.ts; a window the watermark reached has
                    // fired and is gone (no allowed lateness).
                    let mut s = e.ts.div_euclid(slide) * slide;
                    let mut joined = false;
                    while s > e.ts - size {
                        if s + size > *wm {
                            windows.entry((e.key, s, s + size)).or_default().add(e);
                            joined = true;
                        }
                        s -= slide;
                    }
                    if !joined {
                        late.push(e.id);
                    }
                }
            }
        }
        Kind::Session => sessions(&batches, &mut windows, &mut late),
        Kind::Count => {
            let mut seen: BTreeMap<u32, u64> = BTreeMap::new();
            for e in batches.iter().flat_map(|(_, evs)| evs) {
                let n = seen.entry(e.key).or_default();
                let start = (*n / COUNT * COUNT) as i64;
                windows.entry((e.key, start, start + COUNT as i64)).or_default().add(e);
                *n += 1;
            }
        }
    }
    late.sort_unstable();
    let rows = windows.into_iter().map(|((key, start, end), acc)| acc.row(key, start, end)).collect();
    Expected { rows, late }
}

/// Sessions of gap `GAP` per key, simulated batch by batch: a watermark
/// `wm` fires (and, without allowed lateness, forgets) the sessions ending
/// before it; a record that touches none of the key's open sessions and
/// whose own session `[ts, ts + GAP]` ends before the watermark is late.
fn sessions(batches: &[(i64, Vec<Ev>)], fired: &mut BTreeMap<(u32, i64, i64), Acc>, late: &mut Vec<u64>) {
    let mut open: BTreeMap<u32, Vec<(i64, i64, Acc)>> = BTreeMap::new();
    let mut fire = |open: &mut BTreeMap<u32, Vec<(i64, i64, Acc)>>, wm: i64| {
        for (key, sessions) in open.iter_mut() {
            sessions.retain(|&(start, end, acc)| {
                let done = end < wm;
                if done {
                    let previous = fired.insert((*key, start, end), acc);
                    assert!(previous.is_none(), "the model fired session ({key}, {start}, {end}) twice");
                }
                !done
            });
        }
    };
    for (wm, evs) in batches {
        fire(&mut open, *wm);
        for e in evs {
            let sessions = open.entry(e.key).or_default();
            let (mut start, mut end) = (e.ts, e.ts + GAP);
            let touching = |s: &(i64, i64, Acc)| s.1 >= e.ts && s.0 <= e.ts + GAP;
            if !sessions.iter().any(touching) && end < *wm {
                late.push(e.id);
                continue;
            }
            let mut acc = Acc::default();
            acc.add(e);
            sessions.retain(|s| {
                if touching(s) {
                    start = start.min(s.0);
                    end = end.max(s.1);
                    acc.merge(s.2);
                    false
                } else {
                    true
                }
            });
            sessions.push((start, end, acc));
        }
    }
    fire(&mut open, i64::MAX);
}
