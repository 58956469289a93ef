//! The functional core of HTTP ingest: splitting a body into numbered JSON
//! records, and the report that tells a client which lines were taken
//! ([`IngestReport`]).
//!
//! Lines are numbered from 1 as they appear in the body; a blank line is
//! no record but keeps its number, so that a client can match the report to
//! what it sent. Records are offered to the job in line order, and the
//! first record not taken ends the attempt: the lines taken are therefore
//! every well-formed line before `retry_from_line` (all of them when it is
//! `null`).
//!
//! The report is bounded whatever the body: it counts every line, lists at
//! most [`IngestReport::MAX_LISTED`] rejected lines and accepted ranges,
//! and cuts each reason to [`IngestReport::MAX_REASON_BYTES`].

use std::fmt::{self, Write as _};

use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};

/// A line that is not a valid record.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RejectedLine {
    /// Its number, from 1.
    pub line: u64,
    /// Why: serde_json's message (with the column), cut to
    /// [`IngestReport::MAX_REASON_BYTES`] (and then ending with `…`).
    pub error: String,
}

/// The body of every answer of `POST /ingest`: what was taken and what
/// was not. Its size does not grow with the body's.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct IngestReport {
    /// Records in the body (non-blank lines).
    pub received: u64,
    /// Records the job took: each is in the job and will be processed.
    pub accepted: u64,
    /// The first lines taken, as inclusive ranges `[first, last]` of
    /// consecutive lines, ascending: at most [`Self::MAX_LISTED`] ranges.
    /// When they hold fewer than `accepted` lines, the others are the
    /// well-formed lines after the last range (and before
    /// `retry_from_line`).
    pub accepted_lines: Vec<[u64; 2]>,
    /// How many lines are not valid records: never taken, do not send them
    /// again unchanged.
    pub rejected: u64,
    /// The first [`Self::MAX_LISTED`] of the rejected lines, with serde's
    /// reason.
    pub rejected_lines: Vec<RejectedLine>,
    /// When the job was backpressured past the deadline: the first line
    /// not taken. Send the well-formed lines from here on again, after
    /// `Retry-After`. `null` when every well-formed line was taken (or the
    /// job has stopped for good).
    pub retry_from_line: Option<u64>,
    /// What went wrong, in words (`null` when all went well).
    pub error: Option<String>,
}

impl IngestReport {
    /// Most entries `rejected_lines` and `accepted_lines` list.
    pub const MAX_LISTED: usize = 10;

    /// Longest reason of a rejected line, in bytes (then cut and marked
    /// with `…`).
    pub const MAX_REASON_BYTES: usize = 256;

    /// Returns an iterator over the accepted line numbers that
    /// `accepted_lines` lists, ascending: all of them when
    /// [`Self::lists_every_accepted_line`].
    pub fn accepted_line_numbers(&self) -> impl Iterator<Item = u64> + '_ {
        self.accepted_lines.iter().flat_map(|[a, b]| *a..=*b)
    }

    /// Whether `accepted_lines` lists every accepted line.
    pub fn lists_every_accepted_line(&self) -> bool {
        let listed: u64 = self.accepted_lines.iter().map(|[a, b]| b - a + 1).sum();
        listed == self.accepted
    }

    /// Notes that `line` was taken (lines arrive in ascending order). The
    /// ranges listed stay the first ones: a range is only extended or
    /// added while there is room.
    pub(crate) fn accept(&mut self, line: u64) {
        self.accepted += 1;
        let room = self.accepted_lines.len() < Self::MAX_LISTED;
        match self.accepted_lines.last_mut() {
            Some(range) if range[1] + 1 == line => range[1] = line,
            _ if room => self.accepted_lines.push([line, line]),
            _ => {}
        }
    }

    /// Notes that `line` is not a valid record, and why.
    pub(crate) fn reject(&mut self, line: u64, why: &impl fmt::Display) {
        self.rejected += 1;
        if self.rejected_lines.len() < Self::MAX_LISTED {
            self.rejected_lines.push(RejectedLine { line, error: reason(why) });
        }
    }
}

/// `why` as text of at most [`IngestReport::MAX_REASON_BYTES`]: formatting
/// stops there, so a reason quoting a huge input costs no more.
fn reason(why: &impl fmt::Display) -> String {
    /// Takes text up to `max` bytes, then refuses more.
    struct Bounded {
        text: String,
        cut: bool,
    }
    impl fmt::Write for Bounded {
        fn write_str(&mut self, s: &str) -> fmt::Result {
            if self.cut {
                return Err(fmt::Error);
            }
            let room = IngestReport::MAX_REASON_BYTES - self.text.len();
            if s.len() <= room {
                self.text.push_str(s);
                return Ok(());
            }
            let mut end = room;
            while !s.is_char_boundary(end) {
                end -= 1;
            }
            self.text.push_str(&s[..end]);
            self.text.push('…');
            self.cut = true;
            Err(fmt::Error)
        }
    }
    let mut w = Bounded { text: String::new(), cut: false };
    // An error here only means the text was cut.
    let _ = write!(w, "{why}");
    w.text
}

/// A body split into records and rejected lines.
#[derive(Debug)]
pub(crate) struct Parsed<T> {
    /// Well-formed records with their line numbers, ascending.
    pub(crate) records: Vec<(u64, T)>,
    /// What `records` does not hold, plus the count.
    pub(crate) report: IngestReport,
}

/// JSON lines: one record per non-blank line (a trailing `\r` is ignored).
pub(crate) fn parse_lines<T: DeserializeOwned>(body: &[u8]) -> Parsed<T> {
    let mut records = Vec::new();
    let mut report = IngestReport::default();
    for (i, raw) in body.split(|b| *b == b'\n').enumerate() {
        let line = i as u64 + 1;
        let raw = raw.strip_suffix(b"\r").unwrap_or(raw);
        if raw.iter().all(u8::is_ascii_whitespace) {
            continue;
        }
        report.received += 1;
        match serde_json::from_slice::<T>(raw) {
            Ok(v) => records.push((line, v)),
            Err(e) => report.reject(line, &e),
        }
    }
    Parsed { records, report }
}

/// One JSON document: the whole body is record (line) 1, whatever its
/// layout.
pub(crate) fn parse_single<T: DeserializeOwned>(body: &[u8]) -> Parsed<T> {
    let mut report = IngestReport { received: 1, ..IngestReport::default() };
    let records = match serde_json::from_slice::<T>(body) {
        Ok(v) => vec![(1, v)],
        Err(e) => {
            report.reject(1, &e);
            Vec::new()
        }
    };
    Parsed { records, report }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Debug, PartialEq, Deserialize)]
    struct Ev {
        id: u64,
    }

    #[test]
    fn lines_are_numbered_from_one_blank_lines_keep_their_number_and_a_bad_line_names_its_reason() {
        let p = parse_lines::<Ev>(b"{\"id\":1}\r\n\n{\"id\":\"x\"}\n{\"id\":4}\n");
        let ids: Vec<(u64, u64)> = p.records.iter().map(|(l, e)| (*l, e.id)).collect();
        assert_eq!(ids, vec![(1, 1), (4, 4)]);
        assert_eq!((p.report.received, p.report.rejected), (3, 1));
        assert_eq!(p.report.rejected_lines.len(), 1);
        assert_eq!(p.report.rejected_lines[0].line, 3);
        assert_eq!(p.report.rejected_lines[0].error, "invalid type: string \"x\", expected u64 at line 1 column 9");
    }

    #[test]
    fn a_single_document_may_span_lines() {
        let p = parse_single::<Ev>(b"{\n  \"id\": 7\n}");
        assert_eq!(p.records.len(), 1);
        assert_eq!(p.records[0].1, Ev { id: 7 });
        assert_eq!(p.report.rejected, 0);
    }

    #[test]
    fn accepted_lines_merge_into_ranges_of_consecutive_lines() {
        let mut r = IngestReport::default();
        for l in [1, 2, 3, 5, 6, 9] {
            r.accept(l);
        }
        assert_eq!(r.accepted, 6);
        assert_eq!(r.accepted_lines, vec![[1, 3], [5, 6], [9, 9]]);
        assert_eq!(r.accepted_line_numbers().collect::<Vec<_>>(), vec![1, 2, 3, 5, 6, 9]);
        assert!(r.lists_every_accepted_line());
    }

    #[test]
    fn a_report_lists_the_first_lines_and_counts_them_all() {
        let mut r = IngestReport::default();
        for l in 1..=1_000u64 {
            if l % 2 == 1 {
                r.accept(l);
            } else {
                r.reject(l, &"bad");
            }
        }
        assert_eq!((r.accepted, r.rejected), (500, 500));
        let firsts: Vec<u64> = (0..IngestReport::MAX_LISTED as u64).map(|i| 2 * i + 1).collect();
        assert_eq!(r.accepted_line_numbers().collect::<Vec<_>>(), firsts);
        assert!(!r.lists_every_accepted_line());
        let rejected: Vec<u64> = r.rejected_lines.iter().map(|x| x.line).collect();
        assert_eq!(rejected, firsts.iter().map(|l| l + 1).collect::<Vec<_>>());
        // The last listed range still grows while its lines come in a row.
        let mut r = IngestReport::default();
        for l in (1..=19).step_by(2).chain(20..=30) {
            r.accept(l);
        }
        assert_eq!(r.accepted_lines.len(), IngestReport::MAX_LISTED);
        assert_eq!(r.accepted_lines.last(), Some(&[19, 30]));
        assert!(r.lists_every_accepted_line());
    }

    #[test]
    fn a_reason_is_cut_at_a_character_boundary() {
        let p = parse_lines::<Ev>(format!("{{\"id\": \"{}\"}}\n", "é".repeat(100_000)).as_bytes());
        let error = &p.report.rejected_lines[0].error;
        assert!(error.len() <= IngestReport::MAX_REASON_BYTES + '…'.len_utf8(), "{} bytes", error.len());
        assert!(error.starts_with("invalid type: string \"éé") && error.ends_with("é…"), "{error}");
        let p = parse_single::<Ev>(format!("{{\"id\": \"{}\"}}", "x".repeat(100_000)).as_bytes());
        assert!(p.report.rejected_lines[0].error.len() <= IngestReport::MAX_REASON_BYTES + 3);
    }

    mod props {
        use proptest::prelude::*;

        use super::*;

        /// Bytes rich in line breaks and JSON: a quarter of them any byte,
        /// the others drawn from a few that matter (a strategy per byte
        /// would cost 30 times as much to generate).
        fn body(max_len: usize) -> impl Strategy<Value = Vec<u8>> {
            const PICKS: &[u8] = b"\n\n\n\n\r {}{}\"\":,,0123456789idx\xff\xc3\xa9";
            prop::collection::vec(any::<u16>(), 0..max_len).prop_map(|v| {
                let pick = |x: u16| if x >> 14 == 0 { x as u8 } else { PICKS[x as usize % PICKS.len()] };
                v.into_iter().map(pick).collect()
            })
        }

        /// The non-blank lines of `body`, numbered from 1.
        fn records_of(body: &[u8]) -> Vec<u64> {
            body.split(|b| *b == b'\n')
                .enumerate()
                .filter(|(_, l)| !l.strip_suffix(b"\r").unwrap_or(l).iter().all(u8::is_ascii_whitespace))
                .map(|(i, _)| i as u64 + 1)
                .collect()
        }

        fn check_bounded(report: &IngestReport) {
            assert!(report.rejected_lines.len() <= IngestReport::MAX_LISTED);
            assert!(report.accepted_lines.len() <= IngestReport::MAX_LISTED);
            assert_eq!(report.rejected_lines.len() as u64, report.rejected.min(IngestReport::MAX_LISTED as u64));
            for r in &report.rejected_lines {
                assert!(r.error.len() <= IngestReport::MAX_REASON_BYTES + '…'.len_utf8());
            }
        }

        proptest! {
            #![proptest_config(ProptestConfig { cases: 1024, ..ProptestConfig::default() })]

            /// Every non-blank line is a record or a rejected line, exactly
            /// once; the first rejected ones are listed, in order.
            #[test]
            fn parse_lines_accounts_for_every_line(body in body(600)) {
                let p = parse_lines::<Ev>(&body);
                let lines = records_of(&body);
                prop_assert_eq!(p.report.received, lines.len() as u64);
                prop_assert_eq!(p.records.len() as u64 + p.report.rejected, p.report.received);
                check_bounded(&p.report);
                let taken: Vec<u64> = p.records.iter().map(|(l, _)| *l).collect();
                let rejected: Vec<u64> = lines.iter().copied().filter(|l| !taken.contains(l)).collect();
                let listed: Vec<u64> = p.report.rejected_lines.iter().map(|r| r.line).collect();
                prop_assert_eq!(&listed[..], &rejected[..listed.len()]);
                prop_assert_eq!(p.report.accepted, 0);
            }

            /// Bodies of valid, blank and garbled lines: exactly the valid
            /// ones are records, with their numbers.
            #[test]
            fn parse_lines_takes_exactly_the_valid_lines(
                lines in prop::collection::vec((0u8..4, any::<u64>(), body(30)), 0..40),
                crlf in any::<bool>(),
            ) {
                let mut text = Vec::new();
                let mut valid = Vec::new();
                for (i, (kind, id, garbage)) in lines.iter().enumerate() {
                    match kind {
                        0 | 1 => {
                            text.extend(format!("{{\"id\":{id}}}").as_bytes());
                            valid.push((i as u64 + 1, *id));
                        }
                        2 => text.extend(b" \t"),
                        _ => text.extend(garbage.iter().filter(|b| **b != b'\n')),
                    }
                    text.extend(if crlf { &b"\r\n"[..] } else { b"\n" });
                }
                let p = parse_lines::<Ev>(&text);
                let got: Vec<(u64, u64)> = p.records.iter().map(|(l, e)| (*l, e.id)).collect();
                // A garbled line may happen to be valid: it is then a record too.
                prop_assert!(valid.iter().all(|v| got.contains(v)), "{:?} not all in {:?}", valid, got);
                prop_assert_eq!(p.records.len() as u64 + p.report.rejected, p.report.received);
                prop_assert_eq!(p.report.received, records_of(&text).len() as u64);
                check_bounded(&p.report);
            }

            #[test]
            fn parse_single_is_one_record_or_one_rejected_line(body in body(600)) {
                let p = parse_single::<Ev>(&body);
                prop_assert_eq!(p.report.received, 1);
                prop_assert_eq!(p.records.len() as u64 + p.report.rejected, 1);
                check_bounded(&p.report);
            }

            /// Accepting any ascending lines: the listed ranges are the
            /// first accepted lines, exactly.
            #[test]
            fn accepted_ranges_are_a_prefix_of_the_accepted_lines(gaps in prop::collection::vec(1u64..4, 0..200)) {
                let mut r = IngestReport::default();
                let mut line = 0;
                let mut all = Vec::new();
                for g in gaps {
                    line += g;
                    r.accept(line);
                    all.push(line);
                }
                check_bounded(&r);
                prop_assert_eq!(r.accepted, all.len() as u64);
                let listed: Vec<u64> = r.accepted_line_numbers().collect();
                prop_assert_eq!(&listed[..], &all[..listed.len()]);
                prop_assert_eq!(r.lists_every_accepted_line(), listed.len() == all.len());
            }
        }
    }
}
