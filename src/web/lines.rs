//! The functional core of HTTP ingest: splitting a body into numbered JSON
//! records, and the report that tells a client exactly which lines were
//! taken ([`IngestReport`]).
//!
//! Lines are numbered from 1 as they appear in the body; a blank line is
//! no record but keeps its number, so that a client can match the report to
//! what it sent. Records are offered to the job in line order, and the
//! first record not taken ends the attempt: the lines taken are therefore
//! every well-formed line before `retry_from_line` (all of them when it is
//! `null`).

use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};

/// A line that is not a valid record.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RejectedLine {
    /// Its number, from 1.
    pub line: u64,
    /// Why: serde_json's message (with the column).
    pub error: String,
}

/// The body of every answer of `POST /ingest`: what was taken and what
/// was not.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct IngestReport {
    /// Records in the body (non-blank lines).
    pub received: u64,
    /// Records the job took: each is in the job and will be processed.
    pub accepted: u64,
    /// The numbers of the lines taken, as inclusive ranges `[first, last]`
    /// of consecutive lines, ascending.
    pub accepted_lines: Vec<[u64; 2]>,
    /// Lines that are not valid records, with serde's reason; never taken,
    /// do not send them again unchanged.
    pub rejected: Vec<RejectedLine>,
    /// When the job was backpressured past the deadline: the first line
    /// not taken. Send the well-formed lines from here on again, after
    /// `Retry-After`. `null` when every well-formed line was taken (or the
    /// job has stopped for good).
    pub retry_from_line: Option<u64>,
    /// What went wrong, in words (`null` when all went well).
    pub error: Option<String>,
}

impl IngestReport {
    /// Every accepted line number, ascending.
    pub fn accepted_line_numbers(&self) -> impl Iterator<Item = u64> + '_ {
        self.accepted_lines.iter().flat_map(|[a, b]| *a..=*b)
    }

    /// Notes that `line` was taken (lines arrive in ascending order).
    pub(crate) fn accept(&mut self, line: u64) {
        self.accepted += 1;
        match self.accepted_lines.last_mut() {
            Some(range) if range[1] + 1 == line => range[1] = line,
            _ => self.accepted_lines.push([line, line]),
        }
    }
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
            Err(e) => report.rejected.push(RejectedLine { line, error: e.to_string() }),
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
            report.rejected.push(RejectedLine { line: 1, error: e.to_string() });
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
        assert_eq!(p.report.received, 3);
        assert_eq!(p.report.rejected.len(), 1);
        assert_eq!(p.report.rejected[0].line, 3);
        assert_eq!(p.report.rejected[0].error, "invalid type: string \"x\", expected u64 at line 1 column 9");
    }

    #[test]
    fn a_single_document_may_span_lines() {
        let p = parse_single::<Ev>(b"{\n  \"id\": 7\n}");
        assert_eq!(p.records.len(), 1);
        assert_eq!(p.records[0].1, Ev { id: 7 });
        assert!(p.report.rejected.is_empty());
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
    }
}
