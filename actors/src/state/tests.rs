//! Specifications of [`LocalDirBackend`] against a real temporary directory.

use std::fs;
use std::path::{Path, PathBuf};

use uuid::Uuid;

use super::*;

pub(super) struct Fixture {
    _tmp: tempfile::TempDir,
    pub(super) dir: PathBuf,
    pub(super) backend: LocalDirBackend,
    job: Uuid,
}

pub(super) fn fixture(retain: usize) -> Fixture {
    let tmp = tempfile::tempdir().expect("temp dir");
    let dir = tmp.path().join("checkpoints");
    let backend = LocalDirBackend::new(&dir, retain).expect("backend");
    Fixture { _tmp: tmp, dir, backend, job: Uuid::new_v4() }
}

impl Fixture {
    fn id(&self, seq: u64) -> CheckpointId {
        CheckpointId { job: self.job, seq }
    }

    /// Writes one snapshot per `(actor, bytes)` for checkpoint `seq`.
    fn write(&mut self, seq: u64, snapshots: &[(&str, &[u8])]) -> CheckpointMeta {
        let mut total = 0;
        for (actor, bytes) in snapshots {
            total += self.backend.write_snapshot(self.id(seq), actor, bytes).expect("write snapshot");
        }
        CheckpointMeta {
            id: self.id(seq),
            topology: "src:Source:1;win:Window:2;".into(),
            config: Vec::new(),
            actors: snapshots.iter().map(|(a, _)| (*a).to_owned()).collect(),
            completed_at_ms: 1_700_000_000_000 + seq,
            bytes: total,
        }
    }

    /// Writes and commits checkpoint `seq` with two actors whose snapshots
    /// name the seq.
    pub(super) fn checkpoint(&mut self, seq: u64) -> CheckpointMeta {
        let a = format!("source state {seq}");
        let b = format!("window state {seq}");
        let meta = self.write(seq, &[("source#0", a.as_bytes()), ("window#0", b.as_bytes())]);
        self.backend.commit(&meta).expect("commit");
        meta
    }

    pub(super) fn chk_dir(&self, seq: u64) -> PathBuf {
        self.dir.join(format!("chk-{seq:010}"))
    }

    fn dirs(&self) -> Vec<String> {
        let mut names: Vec<String> = fs::read_dir(&self.dir)
            .expect("list")
            .map(|e| e.expect("entry").file_name().to_string_lossy().into_owned())
            .collect();
        names.sort();
        names
    }

    pub(super) fn latest(&self) -> RestoredCheckpoint {
        self.backend.latest().expect("latest").expect("a complete checkpoint")
    }
}

fn flip_byte(path: &Path, from_end: usize) {
    let mut bytes = fs::read(path).expect("read");
    let i = bytes.len() - 1 - from_end;
    bytes[i] ^= 0x40;
    fs::write(path, bytes).expect("write");
}

fn truncate(path: &Path, by: usize) {
    let bytes = fs::read(path).expect("read");
    fs::write(path, &bytes[..bytes.len() - by]).expect("write");
}

/// Asserts that exactly one corrupt file was skipped, and that it is `file`.
fn assert_skipped_one(restored: &RestoredCheckpoint, file: &Path) {
    assert_eq!(restored.skipped.len(), 1, "skipped: {:?}", restored.skipped);
    match &restored.skipped[0] {
        StateError::Corrupt { path, .. } => assert_eq!(path, file),
        other => panic!("expected Corrupt, got {other:?}"),
    }
    assert!(restored.skipped[0].to_string().contains(&file.display().to_string()));
}

#[test]
fn an_empty_directory_has_no_checkpoint() {
    let f = fixture(3);
    assert!(f.backend.latest().expect("latest").is_none());
    assert!(f.backend.checkpoints().expect("list").is_empty());
}

#[test]
fn committed_snapshots_round_trip_exactly() {
    let mut f = fixture(3);
    let binary: Vec<u8> = (0..=255).collect();
    let meta = f.write(1, &[("source#0", b"offset=42"), ("window#1", &binary), ("empty#0", b"")]);
    assert_eq!(meta.bytes, 9 + 256);
    f.backend.commit(&meta).expect("commit");

    let restored = f.latest();
    assert_eq!(restored.meta, meta);
    assert!(restored.skipped.is_empty());
    assert_eq!(restored.snapshots.len(), 3);
    assert_eq!(restored.snapshots["source#0"], b"offset=42");
    assert_eq!(restored.snapshots["window#1"], binary);
    assert_eq!(restored.snapshots["empty#0"], b"");
}

#[test]
fn a_new_backend_on_the_same_directory_reads_what_was_committed() {
    let mut f = fixture(3);
    let meta = f.checkpoint(1);
    let reopened = LocalDirBackend::new(&f.dir, 3).expect("reopen");
    let restored = reopened.latest().expect("latest").expect("checkpoint");
    assert_eq!(restored.meta, meta);
    assert_eq!(restored.snapshots["window#0"], b"window state 1");
}

#[test]
fn an_uncommitted_checkpoint_is_ignored() {
    let mut f = fixture(3);
    let first = f.checkpoint(1);
    f.write(2, &[("source#0", b"newer"), ("window#0", b"newer")]);
    assert!(f.chk_dir(2).exists());

    let restored = f.latest();
    assert_eq!(restored.meta, first);
    assert!(restored.skipped.is_empty(), "a crash mid-checkpoint is not corruption");
    assert_eq!(f.backend.checkpoints().expect("list").len(), 1);
}

#[test]
fn a_flipped_byte_in_a_snapshot_falls_back_to_the_previous_checkpoint() {
    let mut f = fixture(3);
    let first = f.checkpoint(1);
    f.checkpoint(2);
    let file = f.chk_dir(2).join("snap-window%230");
    flip_byte(&file, 3);

    let restored = f.latest();
    assert_eq!(restored.meta, first);
    assert_eq!(restored.snapshots["window#0"], b"window state 1");
    assert_skipped_one(&restored, &file);
}

#[test]
fn a_corrupt_metadata_file_falls_back_to_the_previous_checkpoint() {
    let mut f = fixture(3);
    let first = f.checkpoint(1);
    f.checkpoint(2);
    let file = f.chk_dir(2).join("_metadata");
    flip_byte(&file, 10);

    let restored = f.latest();
    assert_eq!(restored.meta, first);
    assert_skipped_one(&restored, &file);
    let listed: Vec<u64> = f.backend.checkpoints().expect("list").iter().map(|c| c.seq).collect();
    assert_eq!(listed, [1], "a checkpoint with corrupt metadata is not complete");
}

#[test]
fn a_truncated_snapshot_falls_back_to_the_previous_checkpoint() {
    let mut f = fixture(3);
    let first = f.checkpoint(1);
    f.checkpoint(2);
    let file = f.chk_dir(2).join("snap-source%230");
    truncate(&file, 1);

    let restored = f.latest();
    assert_eq!(restored.meta, first);
    assert_skipped_one(&restored, &file);
    assert!(restored.skipped[0].to_string().contains("truncated"));
}

#[test]
fn a_truncated_metadata_file_falls_back_to_the_previous_checkpoint() {
    let mut f = fixture(3);
    let first = f.checkpoint(1);
    f.checkpoint(2);
    let file = f.chk_dir(2).join("_metadata");
    truncate(&file, 5);

    let restored = f.latest();
    assert_eq!(restored.meta, first);
    assert_skipped_one(&restored, &file);
}

#[test]
fn a_missing_snapshot_falls_back_to_the_previous_checkpoint() {
    let mut f = fixture(3);
    let first = f.checkpoint(1);
    f.checkpoint(2);
    let file = f.chk_dir(2).join("snap-source%230");
    fs::remove_file(&file).expect("remove");

    let restored = f.latest();
    assert_eq!(restored.meta, first);
    assert_skipped_one(&restored, &file);
}

#[test]
fn a_valid_snapshot_from_another_checkpoint_is_rejected() {
    let mut f = fixture(3);
    let first = f.checkpoint(1);
    f.checkpoint(2);
    let file = f.chk_dir(2).join("snap-window%230");
    fs::copy(f.chk_dir(1).join("snap-window%230"), &file).expect("copy");

    let restored = f.latest();
    assert_eq!(restored.meta, first);
    assert_skipped_one(&restored, &file);
    assert!(restored.skipped[0].to_string().contains("does not match the metadata"));
}

#[test]
fn every_checkpoint_corrupt_means_none_to_restore() {
    let mut f = fixture(3);
    f.checkpoint(1);
    flip_byte(&f.chk_dir(1).join("snap-source%230"), 0);
    assert!(f.backend.latest().expect("latest").is_none());
}

#[test]
fn commit_keeps_only_the_newest_retained_checkpoints() {
    let mut f = fixture(2);
    for seq in 1..=5 {
        f.checkpoint(seq);
    }
    assert_eq!(f.dirs(), ["chk-0000000004", "chk-0000000005"]);
    let listed: Vec<u64> = f.backend.checkpoints().expect("list").iter().map(|c| c.seq).collect();
    assert_eq!(listed, [4, 5]);
    assert_eq!(f.latest().meta.id.seq, 5);
}

#[test]
fn commit_deletes_older_incomplete_checkpoints_but_not_newer_ones() {
    let mut f = fixture(5);
    f.checkpoint(1);
    f.write(2, &[("source#0", b"abandoned")]);
    f.write(4, &[("source#0", b"in flight")]);
    f.checkpoint(3);
    assert_eq!(f.dirs(), ["chk-0000000001", "chk-0000000003", "chk-0000000004"]);
}

#[test]
fn commit_fails_when_an_actor_has_no_snapshot() {
    let mut f = fixture(3);
    let mut meta = f.write(1, &[("source#0", b"x")]);
    meta.actors.push("window#0".into());
    let err = f.backend.commit(&meta).expect_err("window#0 never wrote");
    assert!(err.to_string().contains("snap-window%230"), "{err}");
    assert!(f.backend.latest().expect("latest").is_none());
}

#[test]
fn committing_twice_leaves_the_complete_checkpoint_intact() {
    let mut f = fixture(3);
    let meta = f.checkpoint(1);
    assert!(f.backend.commit(&meta).is_err(), "its snapshots are no longer open");
    let restored = f.latest();
    assert_eq!(restored.meta, meta);
    assert_eq!(restored.snapshots["source#0"], b"source state 1");
}

#[test]
fn a_checkpoint_without_actors_can_be_committed() {
    let mut f = fixture(3);
    let meta = CheckpointMeta {
        id: f.id(1),
        topology: "t".into(),
        config: Vec::new(),
        actors: Vec::new(),
        completed_at_ms: 0,
        bytes: 0,
    };
    f.backend.commit(&meta).expect("commit");
    let restored = f.latest();
    assert_eq!(restored.meta, meta);
    assert!(restored.snapshots.is_empty());
}

#[test]
fn abort_removes_the_checkpoint_directory() {
    let mut f = fixture(3);
    let first = f.checkpoint(1);
    f.write(2, &[("source#0", b"x")]);
    f.backend.abort(f.id(2)).expect("abort");
    assert!(!f.chk_dir(2).exists());
    assert_eq!(f.latest().meta, first);
    // Aborting what was never written is fine too.
    f.backend.abort(f.id(9)).expect("abort of nothing");
}

#[test]
fn abort_never_removes_a_complete_checkpoint() {
    let mut f = fixture(3);
    let first = f.checkpoint(1);
    f.backend.abort(f.id(1)).expect("abort");
    assert_eq!(f.latest().meta, first);
}

#[test]
fn a_stale_directory_with_the_same_seq_is_replaced() {
    let mut f = fixture(3);
    f.checkpoint(1);
    f.checkpoint(2);
    flip_byte(&f.chk_dir(2).join("snap-window%230"), 0);
    // A restarted job resumes after checkpoint 1, so it writes 2 again.
    let mut restarted = LocalDirBackend::new(&f.dir, 3).expect("reopen");
    assert_eq!(restarted.latest().expect("latest").expect("checkpoint").meta.id.seq, 1);
    let id = CheckpointId { job: Uuid::new_v4(), seq: 2 };
    let n = restarted.write_snapshot(id, "source#0", b"again").expect("write");
    let meta = CheckpointMeta {
        id,
        topology: "t".into(),
        config: Vec::new(),
        actors: vec!["source#0".into()],
        completed_at_ms: 0,
        bytes: n,
    };
    restarted.commit(&meta).expect("commit");

    let restored = restarted.latest().expect("latest").expect("checkpoint");
    assert_eq!(restored.meta, meta);
    assert!(restored.skipped.is_empty());
    assert_eq!(restored.snapshots.len(), 1);
}

#[test]
fn actor_names_with_unsafe_characters_map_to_safe_files_and_round_trip() {
    let mut f = fixture(3);
    let names = ["window#0", "a/b#1", "../escape", "..", "_metadata", "sp ace%", "ünïcode"];
    let snapshots: Vec<(&str, &[u8])> = names.iter().map(|n| (*n, n.as_bytes())).collect();
    let meta = f.write(1, &snapshots);
    f.backend.commit(&meta).expect("commit");

    let mut files: Vec<String> = fs::read_dir(f.chk_dir(1))
        .expect("list")
        .map(|e| e.expect("entry").file_name().to_string_lossy().into_owned())
        .collect();
    files.sort();
    assert_eq!(files.len(), names.len() + 1, "one file per actor plus _metadata: {files:?}");
    for file in &files {
        assert!(file == "_metadata" || file.starts_with("snap-"), "{file}");
        assert!(!file.contains('/') && !file.contains('#'), "{file}");
    }
    assert!(files.contains(&"snap-window%230".to_owned()));
    assert!(files.contains(&"snap-a%2Fb%231".to_owned()));
    // Nothing escaped the checkpoint directory.
    assert_eq!(f.dirs(), ["chk-0000000001"]);

    let restored = f.latest();
    for name in names {
        assert_eq!(restored.snapshots[name], name.as_bytes(), "{name}");
    }
}

#[test]
fn names_that_differ_only_in_case_are_refused() {
    let mut f = fixture(3);
    f.backend.write_snapshot(f.id(1), "Window#0", b"a").expect("first");
    let err = f.backend.write_snapshot(f.id(1), "window#0", b"b").expect_err("same file on case-insensitive disks");
    assert!(err.to_string().contains("same snapshot file"), "{err}");
}

#[test]
fn no_temporary_files_remain_after_a_commit() {
    let mut f = fixture(3);
    f.checkpoint(1);
    let leftovers: Vec<_> = fs::read_dir(f.chk_dir(1))
        .expect("list")
        .filter_map(|e| e.ok())
        .filter(|e| e.file_name().to_string_lossy().starts_with(".tmp-"))
        .collect();
    assert!(leftovers.is_empty(), "{leftovers:?}");
}

#[test]
fn the_backend_is_send_and_usable_as_a_trait_object() {
    fn assert_send<T: Send + 'static>() {}
    assert_send::<LocalDirBackend>();
    let f = fixture(1);
    let boxed: Box<dyn StateBackend> = Box::new(f.backend);
    assert!(boxed.latest().expect("latest").is_none());
}

#[test]
fn an_unreadable_metadata_file_falls_back_to_the_previous_checkpoint() {
    let mut f = fixture(3);
    f.checkpoint(1);
    f.checkpoint(2);
    // An I/O error, not a bad checksum: `_metadata` cannot be read as a file.
    let meta = f.chk_dir(2).join("_metadata");
    fs::remove_file(&meta).expect("remove");
    fs::create_dir(&meta).expect("a directory in its place");
    let restored = f.latest();
    assert_eq!(restored.meta.id.seq, 1);
    assert_eq!(restored.skipped.len(), 1);
    assert!(restored.skipped[0].to_string().contains("_metadata"), "{}", restored.skipped[0]);
}

#[test]
fn an_unreadable_snapshot_falls_back_to_the_previous_checkpoint() {
    let mut f = fixture(3);
    f.checkpoint(1);
    f.checkpoint(2);
    let snap = f.chk_dir(2).join("snap-window%230");
    fs::remove_file(&snap).expect("remove");
    fs::create_dir(&snap).expect("a directory in its place");
    let restored = f.latest();
    assert_eq!(restored.meta.id.seq, 1);
    assert!(restored.skipped[0].to_string().contains("snap-window%230"), "{}", restored.skipped[0]);
}

#[test]
fn retention_counts_only_checkpoints_that_can_be_restored() {
    let mut f = fixture(2);
    f.checkpoint(1);
    f.checkpoint(2);
    // A fresh backend (another run) finds checkpoint 2 corrupt.
    flip_byte(&f.chk_dir(2).join("snap-source%230"), 0);
    f.backend = LocalDirBackend::new(&f.dir, 2).expect("backend");
    f.checkpoint(3);
    // Keeping 3 and the corrupt 2 would leave nothing to fall back on.
    assert_eq!(f.dirs(), vec!["chk-0000000001", "chk-0000000003"]);
    flip_byte(&f.chk_dir(3).join("snap-source%230"), 0);
    assert_eq!(f.latest().meta.id.seq, 1, "the retained older checkpoint restores");
}
