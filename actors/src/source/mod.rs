//! Sources: where records enter a job.
//!
//! A [`Source`] is polled by its source actor for batches of items, on the
//! actor's own thread. The actor stamps each item with its event time (the
//! job's timestamp function), generates watermarks with the source's
//! [`crate::WatermarkStrategy`], and sends the batch on. When the next stage
//! is backpressured the actor simply stops polling its source until there is
//! room again: a source never has to buffer.
//!
//! Built in: any iterator ([`IterSource`]), a push handle for an actix
//! application ([`push::push_source`]), and files of JSON lines or CSV
//! ([`FileSource`]), whose malformed lines become [`DeadLetter`]s.

pub(crate) mod actor;
pub mod file;
pub mod iter;
pub mod push;
pub mod throttle;

use std::task::{Context, Poll};

use serde::{Deserialize, Serialize};

use crate::checkpoint::Snapshot;
use crate::error::SnapshotError;
use crate::message::Record;

pub use file::FileSource;
pub use iter::IterSource;
pub use push::{push_source, PushHandle, PushSource, TrySendError};
pub use throttle::Throttled;

/// A record that could not be read, with why and where.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DeadLetter {
    /// Where it came from (a file path, a source name).
    pub origin: String,
    /// 1-based line number (0 when not line-oriented).
    pub line: u64,
    /// The parse error.
    pub error: String,
    /// The raw input.
    pub raw: String,
}

/// What a poll produced.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SourceStatus {
    /// Items (possibly none) were added; poll again.
    Ready,
    /// The source has no more items, ever.
    Exhausted,
}

/// Where a source writes what one poll produced.
///
/// Items are stored as records whose timestamp the source actor assigns
/// afterwards, in place (with the job's timestamp function): the batch the
/// source fills is the batch that travels on, with no copy in between.
#[derive(Debug)]
pub struct SourceBatch<'a, T> {
    pub(crate) items: &'a mut Vec<Record<T>>,
    pub(crate) dead: &'a mut Vec<DeadLetter>,
    pub(crate) max: usize,
}

impl<T> SourceBatch<'_, T> {
    /// Adds an item.
    #[inline]
    pub fn push(&mut self, item: T) {
        self.items.push(unstamped(item));
    }

    /// Adds every item of `items` (for sources that produce in bulk; an
    /// exact-size iterator is written without a check per item). Add no
    /// more than [`Self::remaining`].
    #[inline]
    pub fn extend(&mut self, items: impl IntoIterator<Item = T>) {
        self.items.extend(items.into_iter().map(unstamped));
    }

    /// Adds an input that could not be read; it goes to the dead-letter
    /// output and is counted.
    pub fn dead_letter(&mut self, dead: DeadLetter) {
        self.dead.push(dead);
    }

    /// How many more items this poll may add.
    #[inline]
    pub fn remaining(&self) -> usize {
        self.max.saturating_sub(self.items.len() + self.dead.len())
    }

    /// Items in the batch so far (this poll's and, for a wrapping source,
    /// any added before it was called).
    #[inline]
    pub fn len(&self) -> usize {
        self.items.len()
    }

    /// Whether the batch holds no item yet.
    pub fn is_empty(&self) -> bool {
        self.items.is_empty()
    }

    /// The items from position `from` on (`from..len()`), for a source
    /// that wraps another and looks at what it added.
    pub fn items_from(&self, from: usize) -> impl ExactSizeIterator<Item = &T> + '_ {
        self.items.get(from..).unwrap_or(&[]).iter().map(|r| &r.value)
    }
}

/// An item as a record before the source actor stamps its timestamp.
#[inline(always)]
fn unstamped<T>(value: T) -> Record<T> {
    Record { ts: 0, value }
}

/// Something a job reads records from.
///
/// Contract: `poll_batch` is called on the source actor's thread, only when
/// downstream has room. It adds up to `out.remaining()` items and returns
/// `Ready(Ready)`; or returns `Pending` having arranged for `cx`'s waker to
/// be woken when items are available (as a future would); or
/// `Ready(Exhausted)` once there will never be more. It may block briefly
/// (file reads) but should not wait for data: return `Pending` instead.
pub trait Source: Send + 'static {
    /// The item type.
    type Item: Send + 'static;

    /// Produces the next items.
    fn poll_batch(&mut self, cx: &mut Context<'_>, out: &mut SourceBatch<'_, Self::Item>) -> Poll<SourceStatus>;

    /// The job is being stopped. A source that has already accepted input
    /// it has not yet produced (a push channel) stops accepting more and
    /// returns `true`: it will keep being polled until it reports
    /// `Exhausted`, so nothing it accepted is lost. The default returns
    /// `false`: the source is not polled again.
    fn close(&mut self) -> bool {
        false
    }

    /// Where the source is, for a checkpoint (typically
    /// `Snapshot::encode(&self.offset).ok()`), which [`Self::seek`]
    /// understands. `None` (the default) means the source cannot replay:
    /// across a crash it is at-most-once.
    fn position(&self) -> Option<Snapshot> {
        None
    }

    /// Moves to a position recorded by [`Self::position`], before the first
    /// poll of a restored job (typically `self.offset = position.decode()?`).
    /// An error refuses the restore and names the source.
    fn seek(&mut self, position: &Snapshot) -> Result<(), SnapshotError> {
        let _ = position;
        Err(SnapshotError::Mismatch {
            what: std::any::type_name::<Self>().to_string(),
            reason: "this source cannot seek, but the checkpoint recorded a position for it".into(),
        })
    }
}
