//! Property tests of restoring an exactly-once file whose manifest was
//! edited: bytes flipped, cut or inserted, lines deleted, repeated or
//! swapped, numbers changed.
//!
//! The manifest is well formed when every line that is not blank is
//! `<checkpoint> <length>`, checkpoints increase and lengths never
//! decrease, and the length a restore cuts back to is not beyond the end
//! of the file. A restore then keeps exactly the bytes the manifest
//! records for the checkpoint and appends the parts it covers that were
//! not appended yet; any other manifest is refused with an error that names
//! it, leaving the file as it was. Never a panic, never bytes the job did
//! not write (a file extended with zeros).
//!
//! No case is skipped: there is no `prop_assume!` here. Two examples
//! come first.

use std::fs;
use std::io::Write;

use proptest::prelude::*;
use proptest::sample::Index;

use super::TransactionalFile;
use crate::edits::{edit, Edit};

#[test]
fn a_manifest_recording_more_than_the_file_holds_is_refused_not_filled_with_zeros() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("out.csv");
    let mut t = TransactionalFile::new(&path, b"h\n".to_vec());
    t.writer().unwrap().write_all(b"a\n").unwrap();
    t.pre_commit(1).unwrap();
    t.commit(1).unwrap();
    // The file lost its committed rows (a bad copy, a disk error).
    fs::write(&path, "h\n").unwrap();
    let mut t = TransactionalFile::new(&path, b"h\n".to_vec());
    let err = t.restore(1).expect_err("committed rows are missing");
    assert!(err.to_string().contains(".weir-manifest") && err.to_string().contains("holds 2"), "{err}");
    assert_eq!(fs::read_to_string(&path).unwrap(), "h\n", "the file is not lengthened");
}

#[test]
fn a_manifest_out_of_order_is_refused_naming_it_and_its_line() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("out.csv");
    let mut t = TransactionalFile::new(&path, b"h\n".to_vec());
    t.writer().unwrap().write_all(b"a\n").unwrap();
    t.pre_commit(1).unwrap();
    t.commit(1).unwrap();
    fs::write(t.manifest_path(), "0 2\n1 4\n1 4\n").unwrap();
    let err = t.restore(1).expect_err("checkpoint 1 twice");
    assert!(err.to_string().contains(".weir-manifest: corrupt manifest: line 3"), "{err}");
    fs::write(t.manifest_path(), b"0 2\n\xff 4\n").unwrap();
    let err = t.restore(1).expect_err("not text");
    assert!(err.to_string().contains(".weir-manifest: corrupt manifest: not UTF-8"), "{err}");
}

const HEADER: &[u8] = b"h\n";

/// Rows of checkpoints 1 to 4: 1..=3 committed, 4 pre-committed (a part
/// on disk), and rows after it (the open part).
const ROWS: [&str; 5] = ["a\nbb\n", "ccc\n", "", "dddd\ne\n", "open\n"];

/// A file with the history of [`ROWS`]; returns its path's directory
/// guard and the file.
fn history() -> (tempfile::TempDir, TransactionalFile) {
    let dir = tempfile::tempdir().expect("temp dir");
    let mut t = TransactionalFile::new(dir.path().join("out.jsonl"), HEADER.to_vec());
    for (i, rows) in ROWS.iter().enumerate() {
        let seq = i as u64 + 1;
        t.writer().expect("writer").write_all(rows.as_bytes()).expect("write");
        if seq <= 4 {
            t.pre_commit(seq).expect("pre-commit");
        }
        if seq <= 3 {
            t.commit(seq).expect("commit");
        }
    }
    t.writer().expect("writer").flush().expect("flush");
    (dir, t)
}

/// An edit of the manifest's text.
#[derive(Debug, Clone)]
enum ManifestEdit {
    Bytes(Edit),
    DeleteLine(Index),
    RepeatLine(Index),
    SwapLines(Index, Index),
    /// Sets the first (checkpoint) or second (length) number of a line.
    SetNumber(Index, bool, u64),
    AppendLine(u64, u64),
}

fn manifest_edit() -> impl Strategy<Value = ManifestEdit> {
    // Mostly numbers near the real ones, so that many edits stay well
    // formed; sometimes any.
    let number = prop_oneof![4 => 0u64..40, 1 => any::<u64>()];
    prop_oneof![
        3 => edit().prop_map(ManifestEdit::Bytes),
        1 => any::<Index>().prop_map(ManifestEdit::DeleteLine),
        1 => any::<Index>().prop_map(ManifestEdit::RepeatLine),
        1 => (any::<Index>(), any::<Index>()).prop_map(|(a, b)| ManifestEdit::SwapLines(a, b)),
        3 => (any::<Index>(), any::<bool>(), number.clone()).prop_map(|(i, first, n)| ManifestEdit::SetNumber(i, first, n)),
        1 => (number.clone(), number).prop_map(|(s, n)| ManifestEdit::AppendLine(s, n)),
    ]
}

impl ManifestEdit {
    fn apply(&self, bytes: &mut Vec<u8>) {
        let mut lines: Vec<Vec<u8>> = bytes.split(|b| *b == b'\n').map(<[u8]>::to_vec).collect();
        // The text ends with a line break: the last piece is empty.
        if lines.last().is_some_and(|l| l.is_empty()) {
            lines.pop();
        }
        let n = lines.len();
        match self {
            ManifestEdit::Bytes(e) => return e.apply(bytes),
            ManifestEdit::DeleteLine(i) if n > 0 => {
                lines.remove(i.index(n));
            }
            ManifestEdit::RepeatLine(i) if n > 0 => {
                let l = lines[i.index(n)].clone();
                lines.insert(i.index(n), l);
            }
            ManifestEdit::SwapLines(a, b) if n > 0 => lines.swap(a.index(n), b.index(n)),
            ManifestEdit::SetNumber(i, first, value) if n > 0 => {
                let line = &mut lines[i.index(n)];
                let text = String::from_utf8_lossy(line).into_owned();
                let mut words: Vec<String> = text.split(' ').map(str::to_owned).collect();
                let w = if *first || words.len() < 2 { 0 } else { 1 };
                words[w] = value.to_string();
                *line = words.join(" ").into_bytes();
            }
            ManifestEdit::AppendLine(s, len) => lines.push(format!("{s} {len}").into_bytes()),
            _ => {}
        }
        *bytes = lines.iter().flat_map(|l| l.iter().copied().chain([b'\n'])).collect();
    }
}

/// What a restore to `seq` must leave, by the rules of the module doc:
/// `None` when it must refuse the manifest.
fn model(manifest: &[u8], file: &[u8], parts: &[(u64, Vec<u8>)], seq: u64) -> Option<Vec<u8>> {
    let text = std::str::from_utf8(manifest).ok()?;
    let mut entries: Vec<(u64, u64)> = Vec::new();
    for line in text.lines().filter(|l| !l.trim().is_empty()) {
        let words: Vec<&str> = line.split_whitespace().collect();
        let [s, n] = words[..] else { return None };
        let entry = (s.parse::<u64>().ok()?, n.parse::<u64>().ok()?);
        if entries.last().is_some_and(|&(ps, pn)| entry.0 <= ps || entry.1 < pn) {
            return None;
        }
        entries.push(entry);
    }
    if entries.is_empty() {
        return None;
    }
    let Some(&(done, len)) = entries.iter().rev().find(|e| e.0 <= seq) else {
        // Nothing committed at or before `seq`: the file starts afresh.
        return Some(HEADER.to_vec());
    };
    if len > file.len() as u64 {
        return None;
    }
    let mut out = file[..len as usize].to_vec();
    for (_, part) in parts.iter().filter(|(s, _)| *s > done && *s <= seq) {
        out.extend_from_slice(part);
    }
    Some(out)
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(128))]

    #[test]
    fn a_restore_keeps_what_a_well_formed_manifest_records_and_refuses_any_other(
        edits in prop::collection::vec(manifest_edit(), 0..4), seq in 0u64..=5,
    ) {
        let (_dir, t) = history();
        let path = t.path().to_path_buf();
        let manifest_path = t.manifest_path();
        let manifest: Vec<u8> = edits.iter().fold(fs::read(&manifest_path).expect("manifest"), |mut m, e| {
            e.apply(&mut m);
            m
        });
        fs::write(&manifest_path, &manifest).expect("write manifest");
        let before = fs::read(&path).expect("the file");
        let parts = vec![(4, ROWS[3].as_bytes().to_vec())];
        let want = model(&manifest, &before, &parts, seq);

        let mut restored = TransactionalFile::new(&path, HEADER.to_vec());
        match (restored.restore(seq), want) {
            (Ok(()), Some(want)) => {
                let got = fs::read(&path).expect("the file");
                prop_assert_eq!(String::from_utf8_lossy(&got), String::from_utf8_lossy(&want));
            }
            (Err(e), None) => {
                prop_assert!(e.to_string().contains(&manifest_path.display().to_string()), "{}", e);
                prop_assert_eq!(fs::read(&path).expect("the file"), before, "a refused restore leaves the file as it was");
            }
            (Ok(()), None) => prop_assert!(false, "a malformed manifest was accepted: {:?}", String::from_utf8_lossy(&manifest)),
            (Err(e), Some(_)) => prop_assert!(false, "a well-formed manifest was refused: {}: {:?}", e, String::from_utf8_lossy(&manifest)),
        }
    }
}
