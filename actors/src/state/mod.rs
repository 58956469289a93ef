//! State backends: where checkpoint snapshots are stored.
//!
//! A checkpoint is a set of per-actor snapshots (opaque bytes, rmp-serde
//! encoded by their owners) plus one metadata record written last. A
//! checkpoint is *complete* once its metadata is durably written; a crash
//! before that leaves the previous complete checkpoint as the latest.
//!
//! The checkpoint coordinator drives a [`StateBackend`]: for checkpoint `n`
//! it calls [`write_snapshot`](StateBackend::write_snapshot) once per actor
//! as acknowledgements arrive, then [`commit`](StateBackend::commit) when
//! every actor has acknowledged, or [`abort`](StateBackend::abort) if the
//! checkpoint failed or timed out. On start the job calls
//! [`latest`](StateBackend::latest) and resumes from what it returns.
//!
//! Every stored file carries a checksum. A snapshot or metadata file that
//! fails it (a torn write the file system did not protect, a flipped bit, a
//! truncated copy) is never restored: it is reported as
//! [`StateError::Corrupt`] naming the file, and the previous complete
//! checkpoint is used instead, which is consistent too because sources seek
//! back to the positions it recorded.
//!
//! [`LocalDirBackend`] is the embedded default; its module docs describe the
//! layout on disk and why a crash at any point is safe.

mod durable;
mod frame;
mod local;
mod naming;
#[cfg(test)]
mod props;
#[cfg(test)]
mod tests;

pub use local::{CheckpointInfo, LocalDirBackend};

use std::collections::HashMap;

use serde::{Deserialize, Serialize};

use crate::message::CheckpointId;

/// What a checkpoint holds, written last (atomically) when every actor has
/// acknowledged.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CheckpointMeta {
    /// The checkpoint.
    pub id: CheckpointId,
    /// Fingerprint of the topology that wrote it (node names, kinds and
    /// parallelism); a job with another topology must not restore it.
    pub topology: String,
    /// The configuration the job declared (`JobBuilder::configuration`):
    /// a job that declares other values must not restore it. Empty in
    /// checkpoints of jobs that declared none.
    #[serde(default)]
    pub config: Vec<(String, String)>,
    /// Names of the actors whose snapshots belong to it (`node#instance`).
    pub actors: Vec<String>,
    /// Wall-clock time it completed, ms since the Unix epoch.
    pub completed_at_ms: u64,
    /// Total snapshot bytes.
    pub bytes: u64,
}

/// What differs between the configuration a checkpoint recorded and the
/// one a job declares, one line per setting (empty: they agree).
pub(crate) fn config_differences(recorded: &[(String, String)], declared: &[(String, String)]) -> Vec<String> {
    let find = |list: &[(String, String)], key: &str| list.iter().find(|(k, _)| k == key).map(|(_, v)| v.clone());
    let mut out = Vec::new();
    for (key, then) in recorded {
        match find(declared, key) {
            Some(now) if &now == then => {}
            Some(now) => out.push(format!("{key} was {then}, is now {now}")),
            None => out.push(format!("{key} was {then}, is now not declared")),
        }
    }
    for (key, now) in declared {
        if find(recorded, key).is_none() {
            out.push(format!("{key} was not recorded, is now {now}"));
        }
    }
    out
}

/// Makes the state backend a job checkpoints into, in place of the
/// local directory ([`crate::CheckpointConfig::with_backend`]). Called
/// once each time the job starts.
#[derive(Clone)]
pub struct BackendFactory {
    describe: String,
    make: std::sync::Arc<dyn Fn() -> Result<Box<dyn StateBackend>, StateError> + Send + Sync>,
}

impl BackendFactory {
    /// A factory named `describe` (where the state lives, for messages:
    /// e.g. `nats://host:4222 bucket weir-ckpt-job`).
    pub fn new(
        describe: impl Into<String>,
        make: impl Fn() -> Result<Box<dyn StateBackend>, StateError> + Send + Sync + 'static,
    ) -> Self {
        BackendFactory { describe: describe.into(), make: std::sync::Arc::new(make) }
    }

    /// Where the state lives.
    pub fn describe(&self) -> &str {
        &self.describe
    }

    /// Makes the backend.
    pub fn make(&self) -> Result<Box<dyn StateBackend>, StateError> {
        (self.make)()
    }
}

impl std::fmt::Debug for BackendFactory {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("BackendFactory").field("describe", &self.describe).finish_non_exhaustive()
    }
}

impl PartialEq for BackendFactory {
    fn eq(&self, other: &Self) -> bool {
        self.describe == other.describe && std::sync::Arc::ptr_eq(&self.make, &other.make)
    }
}

impl Eq for BackendFactory {}

/// A complete checkpoint read back.
#[derive(Debug, Clone)]
pub struct RestoredCheckpoint {
    /// Its metadata.
    pub meta: CheckpointMeta,
    /// Each actor's snapshot, by actor name.
    pub snapshots: HashMap<String, Vec<u8>>,
    /// Newer checkpoints that were skipped because they failed their
    /// checksum or could not be decoded (each error names the file).
    pub skipped: Vec<StateError>,
}

/// Why state could not be written or read; names the file.
#[derive(Debug, thiserror::Error)]
pub enum StateError {
    /// I/O on a file failed.
    #[error("{path}: {source}")]
    Io {
        /// The file or directory.
        path: std::path::PathBuf,
        /// The error.
        source: std::io::Error,
    },
    /// A file failed its checksum or could not be decoded.
    #[error("{path}: corrupt: {reason}")]
    Corrupt {
        /// The file.
        path: std::path::PathBuf,
        /// What was wrong.
        reason: String,
    },
}

/// A clone of an [`StateError::Io`] keeps the error's kind and message but
/// not its inner source chain (`std::io::Error` is not `Clone`); this lets
/// [`RestoredCheckpoint`], which carries the skipped errors, be cloned.
impl Clone for StateError {
    fn clone(&self) -> Self {
        match self {
            StateError::Io { path, source } => {
                StateError::Io { path: path.clone(), source: std::io::Error::new(source.kind(), source.to_string()) }
            }
            StateError::Corrupt { path, reason } => StateError::Corrupt { path: path.clone(), reason: reason.clone() },
        }
    }
}

/// Where snapshots go. Called from the checkpoint coordinator's thread.
pub trait StateBackend: Send + 'static {
    /// Stores one actor's snapshot for checkpoint `id` durably (temp file,
    /// fsync, rename). Returns the bytes written.
    fn write_snapshot(&mut self, id: CheckpointId, actor: &str, bytes: &[u8]) -> Result<u64, StateError>;
    /// Completes checkpoint `id`: writes its metadata atomically, after
    /// every snapshot; then deletes complete checkpoints beyond the newest
    /// `retain` and any incomplete ones older than `id`.
    fn commit(&mut self, meta: &CheckpointMeta) -> Result<(), StateError>;
    /// Drops what was written for an aborted checkpoint.
    fn abort(&mut self, id: CheckpointId) -> Result<(), StateError>;
    /// The newest complete checkpoint that verifies, trying older ones when
    /// a newer one is corrupt (reported in `skipped`); `None` if there is
    /// none.
    fn latest(&self) -> Result<Option<RestoredCheckpoint>, StateError>;
}
