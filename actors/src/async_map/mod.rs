//! Asynchronous calls per record: [`Stream::map_async`](crate::Stream::map_async).
//!
//! A stage that looks records up in a database, a cache or another service
//! starts one call — a future — per record, and keeps up to `capacity` of
//! them in flight at once. When that many are in flight the stage stops
//! taking input, so its upstream mailbox fills and the sources slow down:
//! the bound is backpressure, not a queue. The futures are polled on the
//! stage's actor thread, inside its actix System, so a call may `send` to
//! an actix actor, use tokio's timers or any async client.
//!
//! Results leave **ordered** (in the order of the input, the default) or
//! **unordered** (as calls complete). Either way a watermark waits until
//! every call started before it has completed, so no result ever leaves
//! behind the watermark that follows it.
//!
//! A call that returns an error, or does not complete within the stage's
//! timeout, becomes an [`AsyncFailure`] — the input record and why — on the
//! stage's dead-letter output (counted in the metrics `dead_letters` whether
//! or not anything consumes that output). Nothing is dropped.
//!
//! Checkpoints cover the calls in flight by **snapshotting their inputs**
//! (as Flink's async I/O does): a barrier does not wait for slow calls, and
//! a job restored from that checkpoint calls them again before anything
//! newer. The results, like all state, are exactly once; the calls
//! themselves are at least once, so a call with side effects should be
//! idempotent.

mod core;
#[cfg(test)]
mod tests;

use std::fmt;

use serde::{Deserialize, Serialize};

pub(crate) use self::core::{AsyncMapCore, Calls, Order};

/// Why a call of a `map_async` stage produced no result.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum AsyncError {
    /// The call did not complete within the stage's timeout.
    TimedOut {
        /// The timeout, milliseconds.
        after_ms: u64,
    },
    /// The call's future returned an error (its `Display` text).
    Failed(String),
}

impl fmt::Display for AsyncError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            AsyncError::TimedOut { after_ms } => write!(f, "timed out after {after_ms} ms"),
            AsyncError::Failed(e) => write!(f, "failed: {e}"),
        }
    }
}

impl std::error::Error for AsyncError {}

/// A record whose call failed or timed out: the dead letter of a
/// `map_async` stage, at the record's timestamp.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AsyncFailure<T> {
    /// The actor that made the call, `<node>#<instance>`.
    pub actor: String,
    /// The input record's value, as it was given to the call.
    pub input: T,
    /// Why there is no result.
    pub error: AsyncError,
}
