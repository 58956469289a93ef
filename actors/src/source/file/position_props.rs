//! Property tests of a file source restored from a position it did not
//! record: any byte offset and line count (the far ends of `u64`
//! included), and the snapshot of a real position with random edits.
//! Seeking either refuses, naming what did not decode, or succeeds; then
//! reading goes to the end of the file without a panic (or stays where it
//! was told to start, beyond the end).
//!
//! No case is skipped: there is no `prop_assume!` here.

use proptest::prelude::*;

use super::tests::{file, position, read_all};
use super::{FileFormat, FileSource};
use crate::checkpoint::Snapshot;
use crate::edits::{edit, edited};
use crate::source::Source;

/// A few JSON lines and CSV rows, some malformed.
const JSON: &[u8] = b"{\"n\":1}\n{\"n\":2}\nnot json\n\n{\"n\":3}\n";
const CSV: &[u8] = b"n\n1\n2\n\"broken\n3\n";

#[derive(Debug, serde::Deserialize)]
#[allow(dead_code)]
struct Row {
    n: i64,
}

fn source(format: FileFormat, bytes: &[u8]) -> (tempfile::NamedTempFile, FileSource<Row>) {
    let f = file(bytes);
    let src = FileSource::new(f.path(), format);
    (f, src)
}

/// Any `u64`, the far ends more often than chance.
fn far_u64() -> impl Strategy<Value = u64> {
    prop_oneof![2 => 0u64..64, 1 => any::<u64>(), 1 => (u64::MAX - 3)..=u64::MAX, 1 => Just(i64::MAX as u64 + 1)]
}

/// Seeks to `at` and reads to the end.
fn seek_and_read(format: FileFormat, bytes: &[u8], at: &Snapshot) -> Result<(), TestCaseError> {
    let (_f, mut src) = source(format, bytes);
    let Ok(()) = src.seek(at) else { return Ok(()) };
    let (from, _): (u64, u64) = at.decode().expect("a position that seeks decodes");
    let (_, dead) = read_all(&mut src);
    for d in &dead {
        prop_assert!(!d.error.is_empty());
    }
    let (offset, _) = position(&src);
    prop_assert_eq!(offset, from.max(bytes.len() as u64));
    Ok(())
}

#[test]
fn a_position_at_the_last_line_number_reads_to_the_end_without_overflow() {
    let (_f, mut src) = source(FileFormat::JsonLines, JSON);
    src.seek(&Snapshot::encode(&(0u64, u64::MAX)).expect("encodes")).expect("a position");
    let (records, dead) = read_all(&mut src);
    assert_eq!((records.len(), dead.len()), (3, 1));
    assert_eq!(dead[0].line, u64::MAX, "line numbers stop at the largest");
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(128))]

    #[test]
    fn a_file_source_sought_to_any_position_reads_to_its_end(offset in far_u64(), lines in far_u64(), csv: bool) {
        let (format, bytes) = if csv { (FileFormat::Csv, CSV) } else { (FileFormat::JsonLines, JSON) };
        let at = Snapshot::encode(&(offset, lines)).expect("encodes");
        seek_and_read(format, bytes, &at)?;
    }

    #[test]
    fn an_edited_position_is_refused_or_read_from_to_the_end(
        start in 0usize..5, edits in prop::collection::vec(edit(), 1..3), csv: bool,
    ) {
        let (format, bytes) = if csv { (FileFormat::Csv, CSV) } else { (FileFormat::JsonLines, JSON) };
        // A real position: after `start` polls of one input each.
        let (_f, mut src) = source(format, bytes);
        for _ in 0..start {
            super::tests::poll(&mut src, 1);
        }
        let recorded = src.position().expect("a position");
        let at = Snapshot::from_bytes(edited(recorded.into_bytes(), &edits));
        let (_g, mut fresh) = source(format, bytes);
        if let Err(e) = fresh.seek(&at) {
            prop_assert!(e.to_string().contains("does not decode"), "{}", e);
        }
        seek_and_read(format, bytes, &at)?;
    }
}
