//! Property tests of the readers over arbitrary bytes and over valid files
//! with random mutations (invalid UTF-8, stray quotes, line breaks and
//! commas, deleted bytes, truncation, lines past the limit):
//!
//! - reading never panics and always ends;
//! - every line is accounted for exactly once: JSON lines against a
//!   line-by-line model; CSV by the spans of what was read — disjoint, in
//!   order, and every line outside them blank;
//! - every unit starts where its line starts (offset and number), and the
//!   final position is the end of the file;
//! - resuming from any position recorded on the way yields exactly the
//!   rest;
//! - valid CSV written by the `csv` crate (commas, quotes, line breaks in
//!   fields) reads back exactly.
//!
//! No case is skipped: there is no `prop_assume!` here.

use std::io::Cursor;

use proptest::prelude::*;
use proptest::sample::Index;
use serde::de::DeserializeOwned;

use super::csv_rows::CsvRows;
use super::json_lines::JsonLines;
use super::lines::LinePos;
use super::read::{blank, Item};
use super::tests::{file, poll, read_all};
use super::{FileFormat, FileSource, SourceStatus};
use crate::source::DeadLetter;
use crate::source::Source;

/// What one unit was, comparable.
#[derive(Debug, Clone, PartialEq)]
enum Seen<T> {
    Record(T),
    Header,
    /// A bad input, as shown.
    Bad(String),
}

/// (start, lines spanned, what).
type Units<T> = Vec<(LinePos, u64, Seen<T>)>;

fn seen<T>(item: Item<T>) -> Seen<T> {
    match item {
        Item::Record(v) => Seen::Record(v),
        Item::Header => Seen::Header,
        Item::Bad { error, raw } => {
            let error = error.to_string();
            assert!(!error.is_empty());
            // Bounded: the input at most SHOWN_BYTES, plus the length mark.
            assert!(raw.len() <= DeadLetter::SHOWN_BYTES + 32, "{} bytes shown", raw.len());
            Seen::Bad(raw)
        }
    }
}

/// Everything a reader yields from `start`, and its final position.
fn read_units<T: DeserializeOwned>(
    format: FileFormat,
    bytes: &[u8],
    start: LinePos,
    max: usize,
) -> (Units<T>, LinePos) {
    let inner = Cursor::new(bytes);
    let mut units = Vec::new();
    match format {
        FileFormat::JsonLines => {
            let mut r = JsonLines::resume(inner, start, max).expect("a cursor seeks");
            while let Some(u) = r.next::<T>().expect("a cursor reads") {
                units.push((u.at, r.position().lines - u.at.lines, seen(u.item)));
            }
            (units, r.position())
        }
        FileFormat::Csv => {
            let mut r = CsvRows::resume(inner, start, max).expect("a cursor seeks");
            while let Some(u) = r.next::<T>().expect("a cursor reads") {
                units.push((u.at, r.position().lines - u.at.lines, seen(u.item)));
            }
            (units, r.position())
        }
    }
}

/// Each line of `bytes`: where it starts and its content without the line
/// ending.
fn split_lines(bytes: &[u8]) -> Vec<(LinePos, &[u8])> {
    let mut out = Vec::new();
    let mut offset = 0;
    for (i, piece) in bytes.split(|&b| b == b'\n').enumerate() {
        let at = LinePos { offset: offset as u64, lines: i as u64 };
        offset += piece.len() + 1;
        if offset > bytes.len() && piece.is_empty() {
            break; // after the last line ending
        }
        out.push((at, piece.strip_suffix(b"\r").unwrap_or(piece)));
    }
    out
}

/// The end of `bytes` as a position.
fn end_of(bytes: &[u8]) -> LinePos {
    LinePos { offset: bytes.len() as u64, lines: split_lines(bytes).len() as u64 }
}

/// JSON lines, line by line: what each line must be.
fn json_model<T: DeserializeOwned>(bytes: &[u8], max: usize) -> Vec<(LinePos, Option<T>)> {
    let mut out = Vec::new();
    for (at, line) in split_lines(bytes) {
        if line.len() <= max && blank(line) {
            continue;
        }
        let record = (line.len() <= max)
            .then(|| std::str::from_utf8(line).ok())
            .flatten()
            .and_then(|text| serde_json::from_str::<T>(text).ok());
        out.push((at, record));
    }
    out
}

/// The CSV accounting: units in order, each starting where its line
/// starts, spans disjoint, every line outside them blank; a unit spanning
/// several lines is a well-quoted record (or the header).
fn check_csv_accounting<T: std::fmt::Debug>(bytes: &[u8], units: &Units<T>) {
    let lines = split_lines(bytes);
    let mut covered = vec![false; lines.len()];
    let mut next_free = 0;
    for (at, span, what) in units {
        let first = at.lines as usize;
        assert!(first >= next_free, "units overlap or go back: {units:?}");
        assert!(*span >= 1);
        assert_eq!(lines[first].0, *at, "a unit starts where its line starts");
        if *span > 1 {
            assert!(!matches!(what, Seen::Bad(_)) || lines[first].1.contains(&b'"'), "{what:?}");
        }
        for c in &mut covered[first..first + *span as usize] {
            *c = true;
        }
        next_free = first + *span as usize;
    }
    for (i, ((at, line), covered)) in lines.iter().zip(covered).enumerate() {
        // The byte order mark before the header is not part of it.
        let line = if i == 0 { line.strip_prefix(b"\xEF\xBB\xBF").unwrap_or(line) } else { line };
        assert!(covered || blank(line), "line {} is lost", at.number());
    }
}

/// Resuming at every `k`-th position recorded after a unit reads exactly
/// the units after it.
fn check_resume<T>(format: FileFormat, bytes: &[u8], max: usize, units: &Units<T>, k: &Index)
where
    T: DeserializeOwned + Clone + PartialEq + std::fmt::Debug,
{
    // The position after unit i is the start of the line after its span.
    let positions: Vec<LinePos> = std::iter::once(LinePos::default())
        .chain(units.iter().map(|(at, span, _)| {
            let lines = split_lines(bytes);
            let next = (at.lines + span) as usize;
            lines.get(next).map_or_else(|| end_of(bytes), |(p, _)| *p)
        }))
        .collect();
    let i = k.index(positions.len());
    let (rest, end) = read_units::<T>(format, bytes, positions[i], max);
    assert_eq!(end, end_of(bytes));
    assert_eq!(rest, units[i..].to_vec(), "resumed after unit {i}");
}

/// Bytes rich in what matters to the readers: a quarter of them any byte,
/// the others drawn from a few that matter (a strategy per byte would cost
/// 30 times as much to generate).
fn messy_bytes(max_len: usize) -> impl Strategy<Value = Vec<u8>> {
    const PICKS: &[u8] = b"\n\n\n\n\"\"\",,,\r  0123456789abc{}[]:\xff\xc3";
    prop::collection::vec(any::<u16>(), 0..max_len).prop_map(|v| {
        let pick = |x: u16| if x >> 14 == 0 { x as u8 } else { PICKS[x as usize % PICKS.len()] };
        v.into_iter().map(pick).collect()
    })
}

/// An edit of a valid file.
#[derive(Debug, Clone)]
enum Mutation {
    Insert(Index, Vec<u8>),
    Delete(Index),
    Truncate(Index),
    /// A run of bytes past any limit used here.
    HugeLine(Index),
}

fn mutation() -> impl Strategy<Value = Mutation> {
    let inserted = prop::sample::select(vec![
        b"\xff".to_vec(),
        b"\xc3".to_vec(),
        b"\xe2\x82".to_vec(),
        b"\"".to_vec(),
        b"\n".to_vec(),
        b"\r\n".to_vec(),
        b",".to_vec(),
        b" ".to_vec(),
        b"\"\"".to_vec(),
        b"\xEF\xBB\xBF".to_vec(),
    ]);
    prop_oneof![
        5 => (any::<Index>(), inserted).prop_map(|(i, b)| Mutation::Insert(i, b)),
        2 => any::<Index>().prop_map(Mutation::Delete),
        1 => any::<Index>().prop_map(Mutation::Truncate),
        1 => any::<Index>().prop_map(Mutation::HugeLine),
    ]
}

fn mutate(mut bytes: Vec<u8>, mutations: &[Mutation]) -> Vec<u8> {
    for m in mutations {
        let at = |i: &Index, n: usize| i.index(n + 1);
        match m {
            Mutation::Insert(i, b) => {
                let p = at(i, bytes.len());
                bytes.splice(p..p, b.iter().copied());
            }
            Mutation::Delete(i) if !bytes.is_empty() => {
                bytes.remove(i.index(bytes.len()));
            }
            Mutation::Delete(_) => {}
            Mutation::Truncate(i) => bytes.truncate(at(i, bytes.len())),
            Mutation::HugeLine(i) => {
                let p = at(i, bytes.len());
                bytes.splice(p..p, std::iter::repeat(b'x').take(300));
            }
        }
    }
    bytes
}

/// (n, s) records with strings that need quoting in CSV and escaping in
/// JSON.
fn records() -> impl Strategy<Value = Vec<(i64, String)>> {
    let s = prop_oneof![
        3 => "[a-z]{0,8}",
        1 => "[a-z,\" \n\r]{0,12}",
        1 => "\\PC{0,6}",
    ];
    prop::collection::vec((any::<i64>(), s), 0..12)
}

fn json_file(records: &[(i64, String)]) -> Vec<u8> {
    let mut out = Vec::new();
    for r in records {
        out.extend(serde_json::to_vec(r).expect("serializable"));
        out.push(b'\n');
    }
    out
}

fn csv_file(records: &[(i64, String)], crlf: bool) -> Vec<u8> {
    let terminator = if crlf { csv::Terminator::CRLF } else { csv::Terminator::Any(b'\n') };
    let mut w = csv::WriterBuilder::new().terminator(terminator).from_writer(Vec::new());
    w.write_record(["n", "s"]).expect("written");
    for (n, s) in records {
        w.write_record([n.to_string(), s.clone()]).expect("written");
    }
    w.into_inner().expect("flushed")
}

fn check_json(bytes: &[u8], max: usize, k: &Index) {
    let (units, end) = read_units::<(i64, String)>(FileFormat::JsonLines, bytes, LinePos::default(), max);
    assert_eq!(end, end_of(bytes));
    let model = json_model::<(i64, String)>(bytes, max);
    let got: Vec<(LinePos, Option<(i64, String)>)> = units
        .iter()
        .map(|(at, span, what)| {
            assert_eq!(*span, 1);
            (*at, if let Seen::Record(v) = what { Some(v.clone()) } else { None })
        })
        .collect();
    assert_eq!(got, model);
    check_resume(FileFormat::JsonLines, bytes, max, &units, k);
}

fn check_csv(bytes: &[u8], max: usize, k: &Index) {
    let (units, end) = read_units::<(i64, String)>(FileFormat::Csv, bytes, LinePos::default(), max);
    assert_eq!(end, end_of(bytes));
    check_csv_accounting(bytes, &units);
    check_resume(FileFormat::Csv, bytes, max, &units, k);
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 512, ..ProptestConfig::default() })]

    #[test]
    fn json_lines_over_arbitrary_bytes_account_for_every_line(bytes in messy_bytes(400), max in 1usize..64, k in any::<Index>()) {
        check_json(&bytes, max, &k);
    }

    #[test]
    fn json_lines_over_mutated_files_account_for_every_line(
        records in records(),
        mutations in prop::collection::vec(mutation(), 0..6),
        max in prop_oneof![Just(1usize << 20), 8usize..200],
        k in any::<Index>(),
    ) {
        let bytes = mutate(json_file(&records), &mutations);
        check_json(&bytes, max, &k);
        if mutations.is_empty() && max == 1 << 20 {
            let (units, _) = read_units::<(i64, String)>(FileFormat::JsonLines, &bytes, LinePos::default(), max);
            let got: Vec<Seen<(i64, String)>> = units.into_iter().map(|(_, _, w)| w).collect();
            prop_assert_eq!(got, records.into_iter().map(Seen::Record).collect::<Vec<_>>());
        }
    }

    #[test]
    fn csv_over_arbitrary_bytes_accounts_for_every_line(bytes in messy_bytes(400), max in 1usize..64, k in any::<Index>()) {
        check_csv(&bytes, max, &k);
    }

    #[test]
    fn csv_over_mutated_files_accounts_for_every_line(
        records in records(),
        crlf in any::<bool>(),
        mutations in prop::collection::vec(mutation(), 0..6),
        max in prop_oneof![Just(1usize << 20), 8usize..200],
        k in any::<Index>(),
    ) {
        let bytes = mutate(csv_file(&records, crlf), &mutations);
        check_csv(&bytes, max, &k);
    }

    #[test]
    fn csv_written_by_the_csv_crate_reads_back_exactly(records in records(), crlf in any::<bool>()) {
        let bytes = csv_file(&records, crlf);
        let (units, _) = read_units::<(i64, String)>(FileFormat::Csv, &bytes, LinePos::default(), 1 << 20);
        let got: Vec<Seen<(i64, String)>> = units.into_iter().map(|(_, _, w)| w).collect();
        let want: Vec<Seen<(i64, String)>> =
            std::iter::once(Seen::Header).chain(records.into_iter().map(Seen::Record)).collect();
        prop_assert_eq!(got, want);
    }

    /// The whole source, through files: polled in batches of any size, and
    /// restored from a position recorded after any poll.
    #[test]
    fn a_file_source_restored_from_any_position_reads_exactly_the_rest(
        records in records(),
        csv in any::<bool>(),
        mutations in prop::collection::vec(mutation(), 0..4),
        max in prop_oneof![Just(1usize << 20), 8usize..200],
        batch in 1usize..5,
        stop in 0usize..20,
    ) {
        let (format, bytes) = if csv {
            (FileFormat::Csv, csv_file(&records, false))
        } else {
            (FileFormat::JsonLines, json_file(&records))
        };
        let f = file(&mutate(bytes, &mutations));
        let source = || FileSource::<(i64, String)>::new(f.path(), format).max_line_bytes(max);
        let summary = |(items, dead): (Vec<(i64, String)>, Vec<DeadLetter>)| {
            (items, dead.into_iter().map(|d| (d.line, d.offset, d.raw)).collect::<Vec<_>>())
        };
        let whole = summary(read_all(&mut source()));

        let mut first = source();
        let (mut items, mut dead) = (Vec::new(), Vec::new());
        for _ in 0..stop {
            let (i, d, status) = poll(&mut first, batch);
            items.extend(i);
            dead.extend(d);
            if status == SourceStatus::Exhausted {
                break;
            }
        }
        let mut restored = source();
        restored.seek(&first.position().expect("a position")).expect("a position it recorded");
        let (i, d) = read_all(&mut restored);
        items.extend(i);
        dead.extend(d);
        prop_assert_eq!(summary((items, dead)), whole);
    }
}
