//! The check values of WORKLOAD.md: the checksum every correct engine
//! produces for a few small runs (R = 100,000, D = B = 2,000, N =
//! 3,000,000).

use crate::workload::{Checksum, StreamParams, Workload};

/// `(workload, K, rows, events, total, digest)` at N = 3,000,000 (WL3 with
/// G = 500, WL4 with J = 500).
const TABLE: [(Workload, u64, u64, u64, u64, u64); 5] = [
    (Workload::Wl1, 16, 48, 3_000_000, 1_498_945_689, 14_218_170_467_609_890_282),
    (Workload::Wl1, 100_000, 299_978, 3_000_000, 1_498_945_689, 10_407_393_335_587_024_843),
    (Workload::Wl2, 16, 304, 15_000_000, 7_494_728_445, 4_051_145_714_108_749_640),
    (Workload::Wl3, 100_000, 1_813_513, 3_000_000, 1_498_945_689, 12_511_146_539_894_680_399),
    (Workload::Wl4, 100_000, 762_954, 762_954, 381_480_690_399, 2_924_520_852_787_172_923),
];

/// The WORKLOAD.md checksum of this run, if the table has one.
pub(crate) fn check_value(workload: Workload, params: &StreamParams, bound: i64, gap: i64) -> Option<Checksum> {
    let standard = params.events == 3_000_000 && params.rate == 100_000 && params.disorder == 2_000 && bound == 2_000;
    if !standard || (workload == Workload::Wl3 && gap != 500) {
        return None;
    }
    TABLE
        .iter()
        .find(|row| row.0 == workload && row.1 == params.keys)
        .map(|&(_, _, rows, events, total, digest)| Checksum { rows, events, total, digest })
}
