//! Property tests of reading checkpoints back from bytes weir did not
//! write as they are: a frame, the `_metadata` payload, and whole
//! checkpoint directories of arbitrary files or of committed checkpoints
//! with edited, deleted and swapped files.
//!
//! - decoding never panics;
//! - a frame with any change is refused, saying what is wrong;
//! - [`LocalDirBackend::latest`] restores the newest checkpoint that no edit
//!   touched, exactly as committed, and reports every newer complete one as
//!   skipped with an error naming a file of that checkpoint.
//!
//! No case is skipped: there is no `prop_assume!` here.

use std::fs;
use std::path::{Path, PathBuf};

use proptest::collection::vec;
use proptest::prelude::*;

use super::frame::{self, META_MAGIC, SNAPSHOT_MAGIC, VERSION};
use super::tests::{fixture, Fixture};
use super::{RestoredCheckpoint, StateBackend, StateError};
use crate::edits::{changing_edit, edit, edited, Edit};

/// What a frame decoder says about a frame that is not valid.
const FRAME_ERRORS: [&str; 5] =
    ["truncated", "trailing bytes", "bad magic", "unsupported format version", "checksum mismatch"];

/// The path an error names.
fn path_of(e: &StateError) -> &Path {
    match e {
        StateError::Io { path, .. } | StateError::Corrupt { path, .. } => path,
    }
}

/// Asserts that every skipped checkpoint is reported with an error naming
/// a path inside its directory, one per directory, newest first: returns
/// their directories.
fn skipped_dirs(f: &Fixture, restored: Option<&RestoredCheckpoint>, skipped: &[StateError]) -> Vec<PathBuf> {
    let dirs: Vec<PathBuf> = skipped
        .iter()
        .map(|e| {
            let path = path_of(e);
            assert!(path.starts_with(&f.dir), "{e} names a path outside {}", f.dir.display());
            assert!(e.to_string().contains(&path.display().to_string()), "{e} shows its path");
            let dir =
                path.ancestors().find(|p| p.parent() == Some(f.dir.as_path())).expect("inside a checkpoint directory");
            dir.to_path_buf()
        })
        .collect();
    let mut sorted = dirs.clone();
    sorted.sort_by(|a, b| b.cmp(a));
    sorted.dedup();
    assert_eq!(sorted, dirs, "one error per skipped checkpoint, newest first");
    if let Some(r) = restored {
        let restored_dir = f.chk_dir(r.meta.id.seq);
        assert!(dirs.iter().all(|d| *d > restored_dir), "only checkpoints newer than the one restored are skipped");
    }
    dirs
}

/// `latest`, which never fails on a directory it can list, with what it
/// skipped checked.
fn latest(f: &Fixture) -> (Option<RestoredCheckpoint>, Vec<PathBuf>) {
    let mut restored = f.backend.latest().expect("a readable directory");
    let skipped = match &mut restored {
        Some(r) => std::mem::take(&mut r.skipped),
        // Without a checkpoint to restore, what was skipped is logged only:
        // read each one to see it is refused.
        None => Vec::new(),
    };
    let dirs = skipped_dirs(f, restored.as_ref(), &skipped);
    (restored, dirs)
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(256))]

    #[test]
    fn a_frame_with_any_change_is_refused_saying_what_is_wrong(
        payload in vec(any::<u8>(), 0..48), meta: bool, change in changing_edit(),
    ) {
        let magic = if meta { META_MAGIC } else { SNAPSHOT_MAGIC };
        let (file, _) = frame::encode(magic, &payload);
        let changed = edited(file.clone(), std::slice::from_ref(&change));
        prop_assert_ne!(&changed, &file);
        let reason = frame::decode(magic, &changed).expect_err("a changed frame is refused");
        prop_assert!(FRAME_ERRORS.iter().any(|e| reason.contains(e)), "{}", reason);
    }

    #[test]
    fn arbitrary_bytes_decode_only_if_they_are_a_frame(
        head in 0usize..3, rest in vec(any::<u8>(), 0..64), meta: bool,
    ) {
        // Bytes that start like a frame (its magic, then its version) reach
        // the later checks.
        let magic = if meta { META_MAGIC } else { SNAPSHOT_MAGIC };
        let mut bytes = Vec::new();
        if head > 0 {
            bytes.extend_from_slice(&magic);
        }
        if head > 1 {
            bytes.extend_from_slice(&VERSION.to_le_bytes());
        }
        bytes.extend_from_slice(&rest);
        match frame::decode(magic, &bytes) {
            Ok((payload, _)) => prop_assert_eq!(frame::encode(magic, payload).0, bytes),
            Err(reason) => prop_assert!(FRAME_ERRORS.iter().any(|e| reason.contains(e)), "{}", reason),
        }
    }
}

proptest! {
    // Each case writes checkpoints to disk: fewer cases.
    #![proptest_config(ProptestConfig::with_cases(48))]

    #[test]
    fn a_metadata_payload_that_is_not_metadata_is_skipped_naming_the_file(payload in vec(any::<u8>(), 0..200)) {
        let mut f = fixture(5);
        let first = f.checkpoint(1);
        f.checkpoint(2);
        let file = f.chk_dir(2).join("_metadata");
        fs::write(&file, frame::encode(META_MAGIC, &payload).0).expect("write");
        let (restored, skipped) = latest(&f);
        prop_assert_eq!(restored.expect("checkpoint 1").meta, first);
        prop_assert_eq!(skipped, vec![f.chk_dir(2)]);
    }

    #[test]
    fn an_edited_metadata_payload_is_skipped_or_lists_only_what_was_committed(edits in vec(edit(), 1..4)) {
        let mut f = fixture(5);
        let first = f.checkpoint(1);
        f.checkpoint(2);
        let committed = f.latest().snapshots;
        // Behind a valid frame: the payload's decoder sees the edits.
        let file = f.chk_dir(2).join("_metadata");
        let bytes = fs::read(&file).expect("read");
        let (payload, _) = frame::decode(META_MAGIC, &bytes).expect("a valid frame");
        let payload = edited(payload.to_vec(), &edits);
        fs::write(&file, frame::encode(META_MAGIC, &payload).0).expect("write");
        let (restored, skipped) = latest(&f);
        let restored = restored.expect("checkpoint 1 at least");
        if restored.meta.id.seq == 2 {
            // The edits left a valid metadata record: every snapshot it
            // restores is one committed, and the one of its actor.
            prop_assert!(skipped.is_empty());
            prop_assert_eq!(restored.snapshots.len(), restored.meta.actors.len());
            for (actor, bytes) in &restored.snapshots {
                prop_assert_eq!(Some(bytes), committed.get(actor), "{}", actor);
            }
        } else {
            prop_assert_eq!(restored.meta, first);
            prop_assert_eq!(skipped, vec![f.chk_dir(2)]);
        }
    }

    #[test]
    fn directories_of_arbitrary_files_are_skipped_and_the_valid_checkpoint_restored(files in vec(junk_file(), 0..10)) {
        let mut f = fixture(5);
        let first = f.checkpoint(1);
        for (seq, name, bytes) in &files {
            let dir = f.chk_dir(*seq);
            fs::create_dir_all(&dir).expect("mkdir");
            fs::write(dir.join(name), bytes).expect("write");
        }
        let (restored, skipped) = latest(&f);
        prop_assert_eq!(restored.expect("checkpoint 1").meta, first);
        // A directory without `_metadata` is a checkpoint in progress:
        // ignored, not reported.
        let mut complete: Vec<PathBuf> =
            files.iter().filter(|(_, name, _)| name == "_metadata").map(|(seq, _, _)| f.chk_dir(*seq)).collect();
        complete.sort_by(|a, b| b.cmp(a));
        complete.dedup();
        prop_assert_eq!(skipped, complete);
    }

    #[test]
    fn the_newest_checkpoint_no_edit_touched_is_restored_as_committed(damage in vec(damage(), 0..6)) {
        let mut f = fixture(5);
        let committed: Vec<RestoredCheckpoint> = (1..=4).map(|seq| {
            f.checkpoint(seq);
            f.latest()
        }).collect();
        let originals: std::collections::BTreeMap<(u64, &str), Vec<u8>> = (1..=4u64)
            .flat_map(|seq| FILES.iter().map(move |file| (seq, *file)))
            .map(|(seq, file)| ((seq, file), fs::read(f.chk_dir(seq).join(file)).expect("read")))
            .collect();
        let mut touched = std::collections::BTreeMap::new();
        for d in &damage {
            // One change per file, so that no two undo each other.
            // (The first change of a file is the one applied and kept.)
            if let std::collections::btree_map::Entry::Vacant(e) = touched.entry((d.seq, d.file)) {
                e.insert(d.what.clone());
                d.apply(&f, &originals);
            }
        }
        let (restored, skipped) = latest(&f);
        let intact = (1..=4u64).rev().find(|seq| !touched.keys().any(|(s, _)| s == seq));
        prop_assert_eq!(restored.as_ref().map(|r| r.meta.id.seq), intact);
        if let Some(r) = restored {
            let want = &committed[r.meta.id.seq as usize - 1];
            prop_assert_eq!(&r.meta, &want.meta);
            prop_assert_eq!(&r.snapshots, &want.snapshots);
            // Every newer checkpoint is reported, but one whose metadata is
            // gone: that is a checkpoint that never completed.
            let reported: Vec<PathBuf> = ((r.meta.id.seq + 1)..=4)
                .rev()
                .filter(|seq| !matches!(touched.get(&(*seq, FILES[0])), Some(Damage::Delete)))
                .map(|seq| f.chk_dir(seq))
                .collect();
            prop_assert_eq!(skipped, reported);
        }
    }
}

/// The files of a checkpoint written by [`Fixture::checkpoint`].
const FILES: [&str; 3] = ["_metadata", "snap-source%230", "snap-window%230"];

/// A file in checkpoint directory `2..=5`: a name that matters (or not)
/// and any bytes, or a valid frame of any payload.
fn junk_file() -> impl Strategy<Value = (u64, String, Vec<u8>)> {
    let name = prop::sample::select(vec!["_metadata", "snap-source%230", "snap-window%230", ".tmp-_metadata", "other"]);
    let bytes = (0u8..3, vec(any::<u8>(), 0..64)).prop_map(|(kind, b)| match kind {
        0 => b,
        1 => frame::encode(SNAPSHOT_MAGIC, &b).0,
        _ => frame::encode(META_MAGIC, &b).0,
    });
    (2u64..6, name.prop_map(str::to_owned), bytes)
}

/// What happens to one file of a committed checkpoint.
#[derive(Debug, Clone)]
enum Damage {
    Edit(Edit),
    Delete,
    /// Replaced by the file of the same name in checkpoint `from`.
    CopyFrom(u64),
}

#[derive(Debug, Clone)]
struct Damaged {
    seq: u64,
    file: &'static str,
    what: Damage,
}

fn damage() -> impl Strategy<Value = Damaged> {
    let what = prop_oneof![
        3 => changing_edit().prop_map(Damage::Edit),
        1 => Just(Damage::Delete),
        1 => (1u64..=3).prop_map(Damage::CopyFrom),
    ];
    (1u64..=4, prop::sample::select(FILES.to_vec()), what).prop_map(|(seq, file, what)| {
        // Never a copy of itself.
        let what = match what {
            Damage::CopyFrom(from) if from >= seq => Damage::CopyFrom(from + 1),
            w => w,
        };
        Damaged { seq, file, what }
    })
}

impl Damaged {
    /// Damages the file; a copy is of the other checkpoint's file as it
    /// was committed.
    fn apply(&self, f: &Fixture, originals: &std::collections::BTreeMap<(u64, &str), Vec<u8>>) {
        let path = f.chk_dir(self.seq).join(self.file);
        match &self.what {
            Damage::Edit(e) => {
                let bytes = fs::read(&path).expect("read");
                fs::write(&path, edited(bytes, std::slice::from_ref(e))).expect("write");
            }
            Damage::Delete => fs::remove_file(&path).expect("remove"),
            Damage::CopyFrom(from) => fs::write(&path, &originals[&(*from, self.file)]).expect("write"),
        }
    }
}
