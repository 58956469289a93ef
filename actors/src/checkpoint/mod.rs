//! Checkpoints: consistent snapshots of a running job (asynchronous barrier
//! snapshotting, Carbone et al. 2015, as in Flink).
//!
//! The coordinator (`runtime::coordinator`) triggers a checkpoint by telling every
//! source to record its position and inject a barrier into its outputs. An
//! actor with several inputs aligns barriers ([`align`]): once an input has
//! delivered the barrier, what arrives on it is held back until every input
//! has delivered it; then the actor snapshots its state, acknowledges to the
//! coordinator and forwards the barrier. When every actor has acknowledged,
//! the coordinator writes the checkpoint's metadata through the
//! [`crate::state::StateBackend`]: only then is the checkpoint complete, and
//! sinks may commit what they wrote before it.
//!
//! On restart with the same topology and checkpoint directory, the job
//! restores the latest complete checkpoint: sources seek to their recorded
//! positions and every actor gets its snapshot back — exactly-once state for
//! replayable sources.
//!
//! Alignment holds back the inputs that delivered their barrier; it is
//! bounded by [`CheckpointConfig::alignment_cap`] records, beyond which
//! those inputs are backpressured at their senders until the alignment
//! completes (see `align`).

pub(crate) mod align;
mod snapshot;

pub use snapshot::Snapshot;

use std::path::PathBuf;
use std::time::Duration;

use actix::dev::SendError;
use actix::Recipient;
use serde::{Deserialize, Serialize};

use crate::message::CheckpointId;

/// How a job checkpoints.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CheckpointConfig {
    /// Directory of the embedded local-directory state backend.
    pub dir: PathBuf,
    /// Time between periodic checkpoints (`None`: only on demand).
    pub interval: Option<Duration>,
    /// A checkpoint not complete after this long is aborted.
    pub timeout: Duration,
    /// Complete checkpoints kept.
    pub retain: usize,
    /// Records an actor holds back while it aligns a barrier before it
    /// pauses the inputs that delivered theirs (backpressure instead of
    /// memory). Default 65,536.
    pub alignment_cap: usize,
    /// Where checkpoints go instead of `dir` (`None`: the embedded
    /// local-directory backend in `dir`).
    pub backend: Option<crate::state::BackendFactory>,
}

impl CheckpointConfig {
    /// Checkpoints in `dir` every `interval`; 60 s timeout, 3 kept, at most
    /// 65,536 records held per alignment.
    pub fn new(dir: impl Into<PathBuf>, interval: Duration) -> Self {
        CheckpointConfig {
            dir: dir.into(),
            interval: Some(interval),
            timeout: Duration::from_secs(60),
            retain: 3,
            alignment_cap: align::DEFAULT_ALIGNMENT_CAP,
            backend: None,
        }
    }

    /// Checkpoints into the backend `backend` makes (for instance
    /// `weir::nats::JetStreamBackend`) instead of the local directory.
    pub fn with_backend(mut self, backend: crate::state::BackendFactory) -> Self {
        self.backend = Some(backend);
        self
    }

    /// Where checkpoints live, for messages: the backend's description,
    /// or the directory.
    pub fn location(&self) -> String {
        match &self.backend {
            Some(b) => b.describe().to_string(),
            None => self.dir.display().to_string(),
        }
    }

    /// Checkpoints only on demand ([`crate::JobHandle::checkpoint`]).
    pub fn on_demand(dir: impl Into<PathBuf>) -> Self {
        CheckpointConfig { interval: None, ..CheckpointConfig::new(dir, Duration::from_secs(1)) }
    }
}

/// Coordinator → source: record your position and inject a barrier.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Trigger(pub(crate) CheckpointId);

impl actix::Message for Trigger {
    type Result = ();
}

/// Actor → coordinator: my snapshot for a checkpoint.
#[derive(Debug)]
pub(crate) struct Ack {
    pub(crate) id: CheckpointId,
    pub(crate) actor: String,
    pub(crate) state: Vec<u8>,
    /// Time between the first and the last barrier of the alignment.
    pub(crate) alignment: Duration,
}

impl actix::Message for Ack {
    type Result = ();
}

/// Coordinator → sinks: checkpoint `id` is complete; commit what it covers.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Completed(pub(crate) CheckpointId);

impl actix::Message for Completed {
    type Result = ();
}

/// What an actor needs to take part in checkpoints.
#[derive(Clone)]
pub(crate) struct Participant {
    pub(crate) coordinator: Recipient<Ack>,
}

impl std::fmt::Debug for Participant {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Participant")
    }
}

impl Participant {
    /// Sends an acknowledgement; control plane, so a full coordinator
    /// mailbox is waited on in the background rather than blocking the
    /// data path.
    pub(crate) fn ack(&self, ack: Ack) {
        match self.coordinator.try_send(ack) {
            Ok(()) | Err(SendError::Closed(_)) => {}
            Err(SendError::Full(ack)) => {
                let c = self.coordinator.clone();
                actix::spawn(async move {
                    let _ = c.send(ack).await;
                });
            }
        }
    }
}

/// Per-checkpoint figures, readable from the job handle.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CheckpointStats {
    /// The checkpoint's sequence number.
    pub seq: u64,
    /// Trigger to metadata written.
    pub duration: Duration,
    /// The longest barrier alignment among the actors.
    pub alignment: Duration,
    /// Snapshot bytes written.
    pub bytes: u64,
    /// Whether it completed (or was aborted).
    pub completed: bool,
}
