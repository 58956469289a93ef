//! The file source: what becomes a record, what a dead letter, and where a
//! restored job resumes.

use std::io::Write;
use std::task::{Context, Poll, Waker};

use serde::Deserialize;

use super::*;

/// A file holding `bytes`.
pub(super) fn file(bytes: &[u8]) -> tempfile::NamedTempFile {
    let mut f = tempfile::NamedTempFile::new().expect("a temp file");
    f.write_all(bytes).expect("written");
    f
}

/// Polls once for up to `max` inputs.
pub(super) fn poll<T: DeserializeOwned + Send + 'static>(
    src: &mut FileSource<T>,
    max: usize,
) -> (Vec<T>, Vec<DeadLetter>, SourceStatus) {
    let (mut items, mut dead) = (Vec::new(), Vec::new());
    let mut batch = SourceBatch { items: &mut items, dead: &mut dead, max };
    let mut cx = Context::from_waker(Waker::noop());
    let Poll::Ready(status) = src.poll_batch(&mut cx, &mut batch) else { panic!("a file is always ready") };
    (items.into_iter().map(|r| r.value).collect(), dead, status)
}

/// Reads to the end.
pub(super) fn read_all<T: DeserializeOwned + Send + 'static>(src: &mut FileSource<T>) -> (Vec<T>, Vec<DeadLetter>) {
    let (mut items, mut dead) = (Vec::new(), Vec::new());
    for _ in 0..1_000_000 {
        let (i, d, status) = poll(src, 7);
        items.extend(i);
        dead.extend(d);
        if status == SourceStatus::Exhausted {
            return (items, dead);
        }
    }
    panic!("the source never ended");
}

/// The source's position: (byte offset, lines before it).
pub(super) fn position<T: DeserializeOwned + Send + 'static>(src: &FileSource<T>) -> (u64, u64) {
    src.position().expect("a file source has a position").decode().expect("(offset, lines)")
}

/// (line, offset) of each dead letter.
fn lines_of(dead: &[DeadLetter]) -> Vec<(u64, u64)> {
    dead.iter().map(|d| (d.line, d.offset)).collect()
}

#[derive(Debug, Clone, PartialEq, Deserialize)]
struct Row {
    n: i64,
    s: String,
}

fn resumes_where_it_stopped(format: FileFormat, text: &str) {
    let f = file(text.as_bytes());
    let mut first = FileSource::<(i64, String)>::new(f.path(), format);
    let (got, dead, _) = poll(&mut first, 2);
    assert_eq!(got.len() + dead.len(), 2);
    let pos = first.position().unwrap();
    let (rest_first, _, _) = poll(&mut first, 100);

    let mut resumed = FileSource::<(i64, String)>::new(f.path(), format);
    resumed.seek(&pos).unwrap();
    let (rest, dead, status) = poll(&mut resumed, 100);
    assert_eq!(rest, rest_first, "{format:?}");
    assert_eq!(status, SourceStatus::Exhausted);
    // Line numbers of dead letters continue from the recorded position.
    assert_eq!(dead.iter().map(|d| d.line).collect::<Vec<_>>(), vec![4], "{format:?}");
}

#[test]
fn json_lines_source_seeks_to_its_recorded_position() {
    resumes_where_it_stopped(FileFormat::JsonLines, "[1,\"a\"]\n[2,\"b\"]\n[3,\"c\"]\nbroken\n[5,\"e\"]\n");
}

#[test]
fn csv_source_seeks_to_its_recorded_position() {
    resumes_where_it_stopped(FileFormat::Csv, "n,s\n1,a\n2,b\nx,c\n4,d\n");
}

#[test]
fn json_line_that_is_not_utf8_is_a_dead_letter_and_the_lines_after_it_are_read() {
    let f = file(b"[1,\"a\"]\n[2,\"\xff\"]\n[3,\"c\"]\n");
    let (got, dead) = read_all(&mut FileSource::<(i64, String)>::json_lines(f.path()));
    assert_eq!(got, vec![(1, "a".into()), (3, "c".into())]);
    assert_eq!(lines_of(&dead), vec![(2, 8)]);
    assert_eq!(dead[0].error, "not valid UTF-8 at byte 5 of the line");
    assert_eq!(dead[0].raw, "[2,\"\u{FFFD}\"]");
}

#[test]
fn json_line_longer_than_the_limit_is_a_dead_letter_showing_its_start_and_length() {
    // The default limit, 1 MiB: a 3 MiB line is skipped, not held.
    let mut text = b"[1,\"a\"]\n[2,\"".to_vec();
    text.extend(std::iter::repeat(b'x').take(3 << 20));
    text.extend(b"\"]\r\n[3,\"c\"]\n");
    let f = file(&text);
    let (got, dead) = read_all(&mut FileSource::<(i64, String)>::json_lines(f.path()));
    assert_eq!(got, vec![(1, "a".into()), (3, "c".into())]);
    assert_eq!(lines_of(&dead), vec![(2, 8)]);
    let len = (3 << 20) + 6;
    assert_eq!(
        dead[0].error,
        format!("the line is {len} bytes long, more than the limit of 1048576 bytes (FileSource::max_line_bytes)")
    );
    assert!(dead[0].raw.len() <= DeadLetter::SHOWN_BYTES + 32, "{} bytes shown", dead[0].raw.len());
    assert!(dead[0].raw.starts_with("[2,\"xxx") && dead[0].raw.ends_with(&format!("… ({len} bytes)")));

    // A small limit: lines up to it are read, longer ones are dead letters.
    let f = file(b"[1,\"abc\"]\n[2,\"abcd\"]\n[3,\"ab\"]\n");
    let (got, dead) = read_all(&mut FileSource::<(i64, String)>::json_lines(f.path()).max_line_bytes(9));
    assert_eq!(got, vec![(1, "abc".into()), (3, "ab".into())]);
    assert_eq!(lines_of(&dead), vec![(2, 10)]);
    assert_eq!(dead[0].raw, "[2,\"abcd\"… (10 bytes)");
}

#[test]
fn a_limit_of_zero_is_taken_as_one() {
    let f = file(b"1\n22\n\n3\n");
    let (got, dead) = read_all(&mut FileSource::<i64>::json_lines(f.path()).max_line_bytes(0));
    assert_eq!(got, vec![1, 3]);
    assert_eq!(lines_of(&dead), vec![(2, 2)]);
}

#[test]
fn a_json_dead_letter_shows_a_bounded_error_and_input() {
    // serde's message quotes the whole string; the dead letter does not.
    let f = file(format!("[12,\"{}\"]\n", "é".repeat(10_000)).as_bytes());
    let (_, dead) = read_all(&mut FileSource::<(i64, i64)>::json_lines(f.path()));
    assert_eq!(dead.len(), 1);
    assert!(dead[0].error.len() <= DeadLetter::SHOWN_BYTES + 3, "{} bytes of error", dead[0].error.len());
    assert!(dead[0].error.starts_with("invalid type: string \"éé") && dead[0].error.ends_with('…'));
    assert!(dead[0].raw.ends_with("éé… (20007 bytes)"), "cut between characters, not inside one");
}

#[test]
fn a_dead_letters_offset_is_where_its_line_starts() {
    let text = b"[1,\"a\"]\r\nnope\n\n[3,\"\xfe\"]\n   \n[4,\"d\"]\n[5]";
    let f = file(text);
    let (got, dead) = read_all(&mut FileSource::<(i64, String)>::json_lines(f.path()));
    assert_eq!(got, vec![(1, "a".into()), (4, "d".into())]);
    assert_eq!(lines_of(&dead), vec![(2, 9), (4, 15), (7, 35)]);
    for d in &dead {
        let offset = d.offset as usize;
        assert_eq!(text[..offset].iter().filter(|&&b| b == b'\n').count() as u64, d.line - 1);
        assert!(String::from_utf8_lossy(&text[offset..]).starts_with(&d.raw), "{d:?}");
    }
}

/// Every position the source passes through, and what it read from each
/// one to the end; a source resumed at that position reads the same.
fn every_position_resumes_the_rest<T>(format: FileFormat, text: &[u8], max_line: usize)
where
    T: DeserializeOwned + Send + PartialEq + std::fmt::Debug + 'static,
{
    let f = file(text);
    let source = || FileSource::<T>::new(f.path(), format).max_line_bytes(max_line);
    let mut whole = source();
    let (mut steps, mut positions) = (Vec::new(), vec![whole.position().unwrap()]);
    loop {
        let (items, dead, status) = poll(&mut whole, 1);
        steps.push((items, lines_of(&dead)));
        positions.push(whole.position().unwrap());
        if status == SourceStatus::Exhausted {
            break;
        }
    }
    for (k, pos) in positions.iter().enumerate() {
        let mut resumed = source();
        resumed.seek(pos).unwrap();
        let (items, dead) = read_all(&mut resumed);
        let want_items: Vec<&T> = steps[k.min(steps.len())..].iter().flat_map(|(i, _)| i).collect();
        let want_dead: Vec<(u64, u64)> = steps[k.min(steps.len())..].iter().flat_map(|(_, d)| d.clone()).collect();
        assert_eq!(items.iter().collect::<Vec<_>>(), want_items, "{format:?} from position {k}");
        assert_eq!(lines_of(&dead), want_dead, "{format:?} from position {k}");
    }
}

#[test]
fn positions_recorded_after_bad_lines_resume_exactly_the_rest() {
    let json = b"[1,\"a\"]\n[2,\"\xff\"]\n[3,\"this line is too long\"]\n\nnope\n[5,\"e\"]\r\n[6,\"f\"]";
    every_position_resumes_the_rest::<(i64, String)>(FileFormat::JsonLines, json, 16);
    let csv =
        b"n,s\n1,a\n2,\xff\n3,this line is too long\n\n4,\"unterminated\n5,\"multi\nline\"\n6,x,y\n7,\"q\"x\n8,h\n";
    every_position_resumes_the_rest::<Row>(FileFormat::Csv, csv, 16);
}

#[test]
fn a_file_that_cannot_be_opened_is_read_from_its_position_when_the_job_is_restored() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("later.jsonl");
    let mut src = FileSource::<i64>::json_lines(&path);
    let (got, dead, status) = poll(&mut src, 10);
    assert_eq!((got.len(), status), (0, SourceStatus::Exhausted));
    assert_eq!(dead.len(), 1);
    assert_eq!(dead[0].origin, path.display().to_string());
    assert!(dead[0].error.starts_with("cannot open: No such file or directory"), "{}", dead[0].error);
    assert_eq!(position(&src), (0, 0), "not finished");

    // Restored from that position once the file is there: all of it.
    std::fs::write(&path, "1\n2\n").unwrap();
    let mut restored = FileSource::<i64>::json_lines(&path);
    restored.seek(&src.position().unwrap()).unwrap();
    assert_eq!(read_all(&mut restored), (vec![1, 2], vec![]));

    // Restored mid-file while the file is gone: the position is kept.
    let pos = restored.position().unwrap();
    std::fs::remove_file(&path).unwrap();
    let mut gone = FileSource::<i64>::json_lines(&path);
    gone.seek(&pos).unwrap();
    let (_, dead, _) = poll(&mut gone, 10);
    assert_eq!(lines_of(&dead), vec![(3, 4)]);
    assert_eq!(gone.position().unwrap(), pos);
}

#[test]
fn a_read_error_stops_the_source_for_this_run_without_finishing_it() {
    // A directory opens but does not read.
    let dir = tempfile::tempdir().unwrap();
    for format in [FileFormat::JsonLines, FileFormat::Csv] {
        let mut src = FileSource::<i64>::new(dir.path(), format);
        let (_, dead, status) = poll(&mut src, 10);
        assert_eq!(status, SourceStatus::Exhausted);
        assert_eq!(lines_of(&dead), vec![(1, 0)]);
        assert!(dead[0].error.starts_with("read error at byte 0: Is a directory"), "{}", dead[0].error);
        assert_eq!(position(&src), (0, 0), "{format:?}: not finished");
    }
}

#[test]
fn csv_field_that_is_not_utf8_is_a_dead_letter_and_the_records_after_it_are_read() {
    let f = file(b"n,s\n1,a\n2,\"x\xffb\"\n3,c\n");
    let (got, dead) = read_all(&mut FileSource::<(i64, String)>::csv(f.path()));
    assert_eq!(got, vec![(1, "a".into()), (3, "c".into())]);
    assert_eq!(lines_of(&dead), vec![(3, 8)]);
    assert_eq!(dead[0].error, "field 2 is not valid UTF-8 (at byte 2 of the field)");
    assert_eq!(dead[0].raw, "2,\"x\u{FFFD}b\"");
}

#[test]
fn csv_record_with_another_number_of_fields_than_the_header_is_a_dead_letter() {
    let f = file(b"n,s\n1,a\n2,b,extra\n3\n4,d\n");
    let (got, dead) = read_all(&mut FileSource::<Row>::csv(f.path()));
    assert_eq!(got.iter().map(|r| r.n).collect::<Vec<_>>(), vec![1, 4]);
    assert_eq!(lines_of(&dead), vec![(3, 8), (4, 18)]);
    assert_eq!(dead[0].error, "the record has 3 fields, the header has 2");
    assert_eq!(dead[1].error, "the record has 1 fields, the header has 2");
    assert_eq!(dead[0].raw, "2,b,extra");
}

#[test]
fn csv_field_that_does_not_deserialize_is_named_by_number_and_header() {
    let f = file(b"n,s\nx,a\n");
    let (_, dead) = read_all(&mut FileSource::<Row>::csv(f.path()));
    assert_eq!(dead[0].error, "field 1 (`n`): invalid digit found in string");
}

#[test]
fn csv_unterminated_quote_costs_its_line_not_the_rest_of_the_file() {
    // At the end of the file.
    let f = file(b"n,s\n1,a\n2,\"b\n3,c\n4,d\n");
    let (got, dead) = read_all(&mut FileSource::<Row>::csv(f.path()));
    assert_eq!(got.iter().map(|r| r.n).collect::<Vec<_>>(), vec![1, 3, 4]);
    assert_eq!(lines_of(&dead), vec![(3, 8)]);
    assert_eq!(dead[0].error, "field 2 opens a quote that is not closed before the end of the file");
    assert_eq!(dead[0].raw, "2,\"b");

    // At the limit, long before the end.
    let mut text = b"n,s\n1,\"a\n".to_vec();
    for n in 2..2_000 {
        text.extend(format!("{n},b\n").as_bytes());
    }
    let f = file(&text);
    let (got, dead) = read_all(&mut FileSource::<Row>::csv(f.path()).max_line_bytes(100));
    assert_eq!(got.iter().map(|r| r.n).collect::<Vec<_>>(), (2..2_000).collect::<Vec<_>>());
    assert_eq!(lines_of(&dead), vec![(2, 4)]);
    assert_eq!(
        dead[0].error,
        "field 2 opens a quote that is not closed within 100 bytes (FileSource::max_line_bytes limits a record spanning lines too)"
    );
}

#[test]
fn csv_text_after_a_closing_quote_is_a_dead_letter() {
    let f = file(b"n,s\n1,\"a\"b\n2,\"open\n3,\"x\"y\n4,d\n");
    let (got, dead) = read_all(&mut FileSource::<Row>::csv(f.path()));
    // Line 3 opens a quote that line 4 closes badly: line 3 is dead, and
    // line 4 is read again on its own (and is bad too).
    assert_eq!(got.iter().map(|r| r.n).collect::<Vec<_>>(), vec![4]);
    assert_eq!(lines_of(&dead), vec![(2, 4), (3, 11), (4, 19)]);
    assert_eq!(dead[0].error, "field 2 has text after its closing quote (line 2, byte 6)");
    assert_eq!(dead[1].error, "field 2 has text after its closing quote (line 4, byte 4)");
    assert_eq!(dead[1].raw, "2,\"open");
    assert_eq!(dead[2].error, "field 2 has text after its closing quote (line 4, byte 6)");
}

#[test]
fn csv_quoted_fields_hold_commas_quotes_and_line_breaks() {
    let f = file(b"n,s\r\n1,\"a, \"\"b\"\"\r\nc\"\r\n2,\"\"\n3,\n4,x\n");
    let mut src = FileSource::<Row>::csv(f.path());
    let (got, dead, _) = poll(&mut src, 1);
    assert!(dead.is_empty());
    assert_eq!(got, vec![Row { n: 1, s: "a, \"b\"\r\nc".into() }]);
    assert_eq!(position(&src), (22, 3));
    let (got, dead) = read_all(&mut src);
    assert!(dead.is_empty());
    assert_eq!(got.iter().map(|r| (r.n, r.s.as_str())).collect::<Vec<_>>(), vec![(2, ""), (3, ""), (4, "x")]);
}

#[test]
fn csv_header_that_cannot_be_read_makes_each_record_a_dead_letter() {
    let f = file(b"n,\"s\n1,a\n2,b\n");
    let mut src = FileSource::<Row>::csv(f.path());
    let (got, dead) = read_all(&mut src);
    assert!(got.is_empty());
    assert_eq!(lines_of(&dead), vec![(1, 0), (2, 5), (3, 9)]);
    assert_eq!(
        dead[0].error,
        "cannot read the CSV header: field 2 opens a quote that is not closed before the end of the file"
    );
    assert_eq!(dead[1].error, "no header to read the record with: the header (line 1) could not be read");
    assert_eq!(dead[1].raw, "1,a");

    // Resumed after the header, it is not reported again.
    let mut first = FileSource::<Row>::csv(f.path());
    let _ = poll(&mut first, 2);
    let mut resumed = FileSource::<Row>::csv(f.path());
    resumed.seek(&first.position().unwrap()).unwrap();
    assert_eq!(lines_of(&read_all(&mut resumed).1), vec![(3, 9)]);
}

#[test]
fn csv_byte_order_mark_and_blank_lines_before_records_are_skipped() {
    let f = file(b"\xEF\xBB\xBFn,s\n\n  \n1,a\n\n2,b\n");
    let (got, dead) = read_all(&mut FileSource::<Row>::csv(f.path()));
    assert!(dead.is_empty(), "{dead:?}");
    assert_eq!(got.iter().map(|r| r.n).collect::<Vec<_>>(), vec![1, 2]);
}
