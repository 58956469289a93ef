//! [`LocalDirBackend`]: checkpoints in a directory of the local file system.
//!
//! ```text
//! <dir>/
//!   chk-0000000041/            a complete checkpoint
//!     snap-source%230          one framed file per actor snapshot
//!     snap-window%230
//!     _metadata                written last: its presence marks completion
//!   chk-0000000042/            in progress (or a crash mid-checkpoint):
//!     snap-source%230          no _metadata, so readers ignore it
//!     .tmp-snap-window%230
//! ```
//!
//! Every file is framed (magic, version, crc32, length; see `frame.rs`) and
//! written durably (temporary file, `fsync`, rename, directory `fsync`; see
//! `durable.rs`). `_metadata` records the checkpoint's [`CheckpointMeta`]
//! and, for each actor, its file name, length and crc32, and is written only
//! after every snapshot is durable. So a crash leaves the newest complete
//! checkpoint intact and at most one directory without `_metadata`, which
//! readers skip and the next commit deletes. A complete checkpoint is
//! removed only by retention, never by [`StateBackend::abort`].

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::fs;
use std::io;
use std::path::{Component, Path, PathBuf};

use serde::{Deserialize, Serialize};
use uuid::Uuid;

use super::durable::{io_err, read_if_exists, remove_dir_if_exists, sync_dir, write_atomic};
use super::frame::{self, META_MAGIC, SNAPSHOT_MAGIC};
use super::naming::{checkpoint_dir_name, parse_checkpoint_dir_name, snapshot_file_name, METADATA_FILE};
use super::{CheckpointMeta, RestoredCheckpoint, StateBackend, StateError};
use crate::message::CheckpointId;

/// The default [`StateBackend`]: one directory per checkpoint under a local
/// directory, the newest `retain` complete ones kept.
///
/// ```
/// use weir_actors::{CheckpointMeta, LocalDirBackend, StateBackend};
/// use weir_actors::CheckpointId;
///
/// let dir = tempfile::tempdir()?;
/// let mut backend = LocalDirBackend::new(dir.path(), 2)?;
/// let id = CheckpointId { job: uuid::Uuid::new_v4(), seq: 1 };
/// let bytes = backend.write_snapshot(id, "window#0", b"state")?;
/// let meta = CheckpointMeta {
///     id,
///     topology: "demo".into(),
///     config: Vec::new(),
///     actors: vec!["window#0".into()],
///     completed_at_ms: 0,
///     bytes,
/// };
/// backend.commit(&meta)?;
///
/// let restored = backend.latest()?.expect("a complete checkpoint");
/// assert_eq!(restored.meta, meta);
/// assert_eq!(restored.snapshots["window#0"], b"state");
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[derive(Debug)]
pub struct LocalDirBackend {
    dir: PathBuf,
    retain: usize,
    /// Checkpoints with snapshots written but not yet committed or aborted,
    /// by seq: what their metadata will record.
    open: BTreeMap<u64, OpenCheckpoint>,
    /// Complete checkpoints known to restore: committed by this backend, or
    /// read back whole and verified once (retention counts only these).
    verified: BTreeSet<u64>,
}

#[derive(Debug)]
struct OpenCheckpoint {
    job: Uuid,
    files: BTreeMap<String, StoredFile>,
}

/// One complete checkpoint on disk, as listed by
/// [`LocalDirBackend::checkpoints`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CheckpointInfo {
    /// Its sequence number.
    pub seq: u64,
    /// Total snapshot bytes, as recorded in its metadata.
    pub bytes: u64,
    /// When it completed, ms since the Unix epoch.
    pub completed_at_ms: u64,
    /// Its directory.
    pub path: PathBuf,
}

/// The `_metadata` payload (rmp-serde, with field names so that fields can
/// be added later).
#[derive(Debug, Serialize, Deserialize)]
struct StoredMeta {
    meta: CheckpointMeta,
    files: Vec<StoredFile>,
}

/// Where one actor's snapshot is and what it must hash to.
#[derive(Debug, Clone, Serialize, Deserialize)]
struct StoredFile {
    actor: String,
    file: String,
    len: u64,
    crc: u32,
}

impl LocalDirBackend {
    /// A backend storing checkpoints under `dir` (created if missing) and
    /// keeping the newest `retain` complete checkpoints; `retain` 0 is
    /// treated as 1, since the checkpoint just committed is always kept.
    pub fn new(dir: impl Into<PathBuf>, retain: usize) -> Result<Self, StateError> {
        let dir = dir.into();
        fs::create_dir_all(&dir).map_err(io_err(&dir))?;
        Ok(LocalDirBackend { dir, retain: retain.max(1), open: BTreeMap::new(), verified: BTreeSet::new() })
    }

    /// The directory holding the checkpoints.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// How many complete checkpoints a commit keeps.
    pub fn retain(&self) -> usize {
        self.retain
    }

    /// The complete checkpoints on disk, oldest first. Only their metadata
    /// is read (and verified); a checkpoint whose metadata is corrupt is
    /// left out, one with a corrupt snapshot is not.
    pub fn checkpoints(&self) -> Result<Vec<CheckpointInfo>, StateError> {
        let mut out = Vec::new();
        for (seq, path) in self.scan()?.into_iter().rev() {
            if let Ok(Some(stored)) = read_metadata(seq, &path) {
                let m = stored.meta;
                out.push(CheckpointInfo { seq, bytes: m.bytes, completed_at_ms: m.completed_at_ms, path });
            }
        }
        Ok(out)
    }

    fn checkpoint_dir(&self, seq: u64) -> PathBuf {
        self.dir.join(checkpoint_dir_name(seq))
    }

    /// Every `chk-*` directory, newest first.
    fn scan(&self) -> Result<Vec<(u64, PathBuf)>, StateError> {
        let mut dirs = Vec::new();
        for entry in fs::read_dir(&self.dir).map_err(io_err(&self.dir))? {
            let entry = entry.map_err(io_err(&self.dir))?;
            let Some(seq) = entry.file_name().to_str().and_then(parse_checkpoint_dir_name) else { continue };
            if entry.file_type().map_err(io_err(&entry.path()))?.is_dir() {
                dirs.push((seq, entry.path()));
            }
        }
        dirs.sort_unstable_by_key(|(seq, _)| std::cmp::Reverse(*seq));
        Ok(dirs)
    }

    /// The open checkpoint `id`, creating its (empty) directory on first use.
    fn open_checkpoint(&mut self, id: CheckpointId) -> Result<&mut OpenCheckpoint, StateError> {
        let fresh = !matches!(self.open.get(&id.seq), Some(o) if o.job == id.job);
        if fresh {
            let dir = self.checkpoint_dir(id.seq);
            if fs::symlink_metadata(&dir).is_ok() {
                // Left by an earlier run: a crash mid-checkpoint, or a
                // checkpoint that `latest` skipped as corrupt (sequence
                // numbers resume after the newest one that restored).
                tracing::warn!(path = %dir.display(), "replacing a stale checkpoint directory");
                remove_dir_if_exists(&dir)?;
            }
            fs::create_dir(&dir).map_err(io_err(&dir))?;
            sync_dir(&self.dir)?;
        }
        let open = self.open.entry(id.seq).or_insert_with(|| OpenCheckpoint { job: id.job, files: BTreeMap::new() });
        if fresh {
            *open = OpenCheckpoint { job: id.job, files: BTreeMap::new() };
        }
        Ok(open)
    }

    /// Applies retention after `committed` completed: keeps it and the
    /// newest older checkpoints that can be restored, up to `retain` in
    /// all, and deletes every other older directory (incomplete, corrupt,
    /// unreadable, or beyond retention). A checkpoint from an earlier run is
    /// read back whole once to know whether it restores. Newer directories
    /// belong to checkpoints still in flight and are left alone. Failures
    /// are logged, not returned: the commit has already succeeded.
    fn prune(&mut self, committed: u64) {
        let dirs = match self.scan() {
            Ok(d) => d,
            Err(e) => {
                tracing::warn!(error = %e, "cannot list checkpoints to apply retention");
                return;
            }
        };
        let mut kept = 1;
        for (seq, path) in dirs.into_iter().filter(|(s, _)| *s < committed) {
            let keep = kept < self.retain && self.restorable(seq, &path);
            if keep {
                kept += 1;
                continue;
            }
            self.verified.remove(&seq);
            match remove_dir_if_exists(&path) {
                Ok(()) => tracing::debug!(path = %path.display(), "old checkpoint deleted"),
                Err(e) => tracing::warn!(error = %e, "cannot delete old checkpoint"),
            }
        }
    }

    /// Whether checkpoint `seq` in `path` can be restored (verified once).
    fn restorable(&mut self, seq: u64, path: &Path) -> bool {
        if self.verified.contains(&seq) {
            return true;
        }
        match load(seq, path) {
            Ok(Some(_)) => {
                self.verified.insert(seq);
                true
            }
            Ok(None) => false,
            Err(e) => {
                tracing::warn!(error = %e, "deleting an older checkpoint that cannot be restored");
                false
            }
        }
    }
}

impl StateBackend for LocalDirBackend {
    /// Writes `dir/chk-<seq>/snap-<actor>` durably; returns the snapshot's
    /// length (the payload, without the file header). Writing the same
    /// actor twice replaces its snapshot.
    fn write_snapshot(&mut self, id: CheckpointId, actor: &str, bytes: &[u8]) -> Result<u64, StateError> {
        let dir = self.checkpoint_dir(id.seq);
        let file = snapshot_file_name(actor);
        let open = self.open_checkpoint(id)?;
        // Names differing only in case would share a file on a
        // case-insensitive file system; refuse rather than overwrite.
        if let Some(other) = open.files.values().find(|f| f.actor != actor && f.file.eq_ignore_ascii_case(&file)) {
            let msg = format!("actors {:?} and {actor:?} map to the same snapshot file", other.actor);
            return Err(StateError::Io {
                path: dir.join(&file),
                source: io::Error::new(io::ErrorKind::AlreadyExists, msg),
            });
        }
        let (framed, info) = frame::encode(SNAPSHOT_MAGIC, bytes);
        write_atomic(&dir, &file, &framed)?;
        open.files.insert(actor.to_owned(), StoredFile { actor: actor.to_owned(), file, len: info.len, crc: info.crc });
        Ok(info.len)
    }

    fn commit(&mut self, meta: &CheckpointMeta) -> Result<(), StateError> {
        let seq = meta.id.seq;
        let dir = self.checkpoint_dir(seq);
        // Only a checkpoint without actors may start at its commit; anything
        // else must have been opened by its snapshots, so a repeated or stray
        // commit fails below without touching what is on disk.
        let empty = BTreeMap::new();
        let written = match self.open.get(&seq) {
            Some(o) if o.job == meta.id.job => &o.files,
            _ if meta.actors.is_empty() => &self.open_checkpoint(meta.id)?.files,
            _ => &empty,
        };
        let mut files = Vec::with_capacity(meta.actors.len());
        for actor in &meta.actors {
            let Some(f) = written.get(actor) else {
                let msg = format!("no snapshot was written for actor {actor:?} in checkpoint {seq}");
                let path = dir.join(snapshot_file_name(actor));
                return Err(StateError::Io { path, source: io::Error::new(io::ErrorKind::NotFound, msg) });
            };
            files.push(f.clone());
        }
        let meta_path = dir.join(METADATA_FILE);
        let stored = StoredMeta { meta: meta.clone(), files };
        let payload = rmp_serde::to_vec_named(&stored).map_err(|e| StateError::Io {
            path: meta_path.clone(),
            source: io::Error::new(io::ErrorKind::InvalidData, e),
        })?;
        let (framed, _) = frame::encode(META_MAGIC, &payload);
        // Every snapshot is already durable, so once this rename is, the
        // checkpoint is complete.
        write_atomic(&dir, METADATA_FILE, &framed)?;
        // Older open checkpoints can no longer complete; prune deletes them.
        self.open.retain(|s, _| *s > seq);
        self.verified.insert(seq);
        self.prune(seq);
        tracing::debug!(seq, path = %dir.display(), bytes = meta.bytes, "checkpoint committed");
        Ok(())
    }

    /// Deletes the directory of checkpoint `id` unless it is complete (a
    /// complete checkpoint may already have let sinks commit, so only
    /// retention removes it).
    fn abort(&mut self, id: CheckpointId) -> Result<(), StateError> {
        self.open.remove(&id.seq);
        let dir = self.checkpoint_dir(id.seq);
        if fs::symlink_metadata(dir.join(METADATA_FILE)).is_ok() {
            tracing::warn!(path = %dir.display(), "not aborting a checkpoint that is already complete");
            return Ok(());
        }
        remove_dir_if_exists(&dir)
    }

    /// Scans `chk-*` newest first: a directory without `_metadata` is
    /// skipped silently (a crash mid-checkpoint); one whose metadata or any
    /// listed snapshot is missing, cannot be read (an I/O error), fails its
    /// frame or checksum, or cannot be decoded is reported in `skipped` (and
    /// logged) and the next older one is tried. Only an error listing the
    /// directory itself is returned.
    fn latest(&self) -> Result<Option<RestoredCheckpoint>, StateError> {
        let mut skipped = Vec::new();
        for (seq, path) in self.scan()? {
            match load(seq, &path) {
                Ok(Some(restored)) => return Ok(Some(RestoredCheckpoint { skipped, ..restored })),
                Ok(None) => tracing::debug!(path = %path.display(), "skipping incomplete checkpoint"),
                Err(e) => {
                    tracing::warn!(error = %e, "skipping a checkpoint that cannot be restored; trying the previous one");
                    skipped.push(e);
                }
            }
        }
        if !skipped.is_empty() {
            tracing::warn!(dir = %self.dir.display(), corrupt = skipped.len(), "no valid checkpoint left to restore");
        }
        Ok(None)
    }
}

fn corrupt(path: &Path, reason: impl Into<String>) -> StateError {
    StateError::Corrupt { path: path.to_path_buf(), reason: reason.into() }
}

/// The verified metadata of checkpoint `seq` in `dir`; `None` if it has
/// none (incomplete).
fn read_metadata(seq: u64, dir: &Path) -> Result<Option<StoredMeta>, StateError> {
    let path = dir.join(METADATA_FILE);
    let Some(bytes) = read_if_exists(&path)? else { return Ok(None) };
    let (payload, _) = frame::decode(META_MAGIC, &bytes).map_err(|r| corrupt(&path, r))?;
    let stored: StoredMeta =
        rmp_serde::from_slice(payload).map_err(|e| corrupt(&path, format!("cannot decode metadata: {e}")))?;
    if stored.meta.id.seq != seq {
        return Err(corrupt(
            &path,
            format!("belongs to checkpoint {}, found in the directory of {seq}", stored.meta.id.seq),
        ));
    }
    Ok(Some(stored))
}

/// Reads and verifies checkpoint `seq` with all its snapshots (`skipped`
/// left empty for the caller); `None` if it is incomplete.
fn load(seq: u64, dir: &Path) -> Result<Option<RestoredCheckpoint>, StateError> {
    let Some(stored) = read_metadata(seq, dir)? else { return Ok(None) };
    let meta_path = dir.join(METADATA_FILE);
    let files: HashMap<&str, &StoredFile> = stored.files.iter().map(|f| (f.actor.as_str(), f)).collect();
    let mut snapshots = HashMap::with_capacity(stored.meta.actors.len());
    for actor in &stored.meta.actors {
        let Some(f) = files.get(actor.as_str()) else {
            return Err(corrupt(&meta_path, format!("lists actor {actor:?} without a snapshot file")));
        };
        // The metadata is checksummed, but never let it name a file outside
        // the checkpoint's directory.
        let mut parts = Path::new(&f.file).components();
        if !matches!((parts.next(), parts.next()), (Some(Component::Normal(_)), None)) {
            return Err(corrupt(&meta_path, format!("snapshot file name {:?} is not a plain file name", f.file)));
        }
        let path = dir.join(&f.file);
        let Some(mut bytes) = read_if_exists(&path)? else {
            return Err(corrupt(&path, format!("snapshot of actor {actor:?} is missing")));
        };
        let (_, info) = frame::decode(SNAPSHOT_MAGIC, &bytes).map_err(|r| corrupt(&path, r))?;
        if info.crc != f.crc || info.len != f.len {
            let reason = format!(
                "does not match the metadata: crc32 {:08x} and {} bytes, metadata records {:08x} and {} bytes",
                info.crc, info.len, f.crc, f.len
            );
            return Err(corrupt(&path, reason));
        }
        // Strip the header in place rather than copying the payload.
        bytes.drain(..frame::HEADER_LEN);
        snapshots.insert(actor.clone(), bytes);
    }
    Ok(Some(RestoredCheckpoint { meta: stored.meta, snapshots, skipped: Vec::new() }))
}
