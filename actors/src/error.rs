//! The errors of weir, one enum per boundary: building a topology
//! ([`BuildError`]), running a job ([`JobError`]), and what a hook of a
//! custom operator, a source or a sink reports ([`OperatorError`],
//! [`SnapshotError`]). State backends report [`crate::StateError`] and sinks
//! [`crate::SinkError`]; both are wrapped here when they end a job.
//!
//! This module imports nothing of the runtime: every other module may use
//! it.

use std::sync::Arc;

/// A topology that cannot run, found when it is built. Every variant names
/// the node and the parameter at fault.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum BuildError {
    /// A parameter out of range.
    #[error("invalid {parameter} for {node}: {value}")]
    InvalidParameter {
        /// The node (or "job" for job-wide settings).
        node: String,
        /// The parameter's name.
        parameter: &'static str,
        /// The value given and the rule it breaks.
        value: String,
    },
    /// Two nodes with one name.
    #[error("two nodes are named {0:?}; node names must be unique")]
    DuplicateName(String),
    /// The job has no sink: its results would go nowhere.
    #[error("the topology has no sink: add one with Stream::sink")]
    NoSink,
    /// A stream whose records go nowhere.
    #[error("the output of {0} is not connected to anything (add a sink or another stage)")]
    Unconnected(String),
    /// A side output requested twice.
    #[error("{what} of {node} was requested twice")]
    AlreadyTaken {
        /// The node.
        node: String,
        /// Which output.
        what: &'static str,
    },
    /// The job has no source.
    #[error("the topology has no source")]
    NoSource,
}

/// Why a job failed or could not start.
#[derive(Debug, Clone, thiserror::Error)]
pub enum JobError {
    /// `start` was called outside an actix System.
    #[error("no actix System is running on this thread: use Job::run_blocking or Job::spawn, or call start from inside actix::System / #[actix_web::main]")]
    NoSystem,
    /// A sink failed.
    #[error("sink {actor} failed: {source}")]
    Sink {
        /// The sink actor (`<node>#<instance>`).
        actor: String,
        /// Its error.
        source: Arc<SinkError>,
    },
    /// A hook of an operator (or window manager) reported an error.
    #[error("{actor} failed: {source}")]
    Operator {
        /// The actor (`<node>#<instance>`).
        actor: String,
        /// Its error.
        source: Arc<OperatorError>,
    },
    /// Code running in an actor panicked: a user closure, an operator, a
    /// source, a sink or weir itself. The job is stopped.
    #[error("{actor} panicked while handling {during}: {message}")]
    Panicked {
        /// The actor (`<node>#<instance>`, or `checkpoint-coordinator`).
        actor: String,
        /// What it was doing (`a batch`, `a watermark`, `reading its source` ...).
        during: String,
        /// The panic message.
        message: String,
    },
    /// The job cannot resume from the checkpoint it found: nothing was
    /// started and no output was touched.
    #[error("cannot restore checkpoint {checkpoint} from {dir}: {reason}")]
    Restore {
        /// The checkpoint's sequence number.
        checkpoint: u64,
        /// The checkpoint directory.
        dir: String,
        /// What is wrong, naming the actor or setting.
        reason: String,
    },
    /// Taking a checkpoint failed (or the job does not checkpoint).
    #[error("checkpoint: {0}")]
    Checkpoint(String),
    /// The state backend could not be opened or read.
    #[error("state backend: {0}")]
    State(String),
    /// An actor of the job stopped before the job finished, without an
    /// error of its own: its actix Arbiter or System was stopped under it
    /// (for instance actix-web stopping the System on Ctrl-C).
    #[error("{actor} stopped before the job finished: its actix Arbiter or System was stopped (stop the job with JobHandle::stop and wait for it before stopping the System)")]
    Stopped {
        /// The first actor that went away.
        actor: String,
    },
    /// The job was cancelled before it finished.
    #[error("the job was cancelled")]
    Cancelled,
    /// The job's thread or System could not be started or ended abnormally.
    #[error("the job's runtime failed: {0}")]
    Runtime(String),
}

/// What a hook of an operator reports when it cannot go on; the job fails
/// with [`JobError::Operator`] naming the actor.
#[derive(Debug, thiserror::Error)]
pub enum OperatorError {
    /// The operator's state could not be snapshotted or restored.
    #[error(transparent)]
    Snapshot(#[from] SnapshotError),
    /// A sink could not write, pre-commit or commit.
    #[error(transparent)]
    Sink(#[from] SinkError),
    /// Anything else, in words.
    #[error("{0}")]
    Other(String),
}

impl OperatorError {
    /// An error described by `message`.
    pub fn msg(message: impl Into<String>) -> Self {
        OperatorError::Other(message.into())
    }
}

/// A snapshot (operator state, a source position, a sink's pre-commit
/// state) that could not be encoded or decoded.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SnapshotError {
    /// The bytes do not decode as the expected type.
    #[error("a snapshot of {what} does not decode: {reason}")]
    Decode {
        /// The type (or actor) it was meant to be.
        what: String,
        /// The decoder's message.
        reason: String,
    },
    /// The value could not be encoded.
    #[error("a snapshot of {what} cannot be encoded: {reason}")]
    Encode {
        /// The type (or actor).
        what: String,
        /// The encoder's message.
        reason: String,
    },
    /// The snapshot decodes but does not fit (another version, another
    /// configuration).
    #[error("a snapshot of {what} does not fit: {reason}")]
    Mismatch {
        /// The type (or actor).
        what: String,
        /// What differs.
        reason: String,
    },
}

/// A sink failed: what and where.
#[derive(Debug, thiserror::Error)]
pub enum SinkError {
    /// Writing to a file failed.
    #[error("cannot write {path}: {source}")]
    Io {
        /// The file.
        path: std::path::PathBuf,
        /// The I/O error.
        source: std::io::Error,
    },
    /// A record could not be encoded.
    #[error("cannot encode a record for {path}: {message}")]
    Encode {
        /// The file.
        path: std::path::PathBuf,
        /// The encoder's error.
        message: String,
    },
    /// A user sink's own error.
    #[error("{0}")]
    Other(String),
}
