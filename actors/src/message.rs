//! The edge protocol: what travels between two actors.
//!
//! Every edge of a job carries one message type, [`Envelope<T>`], whose
//! payload is a [`StreamElement<T>`]: a batch of records, a watermark, an idleness
//! notice, a checkpoint barrier or the end of input. Because data, watermarks
//! and barriers share one ordered channel, an actor sees them in the order its
//! upstream produced them: a watermark never overtakes the records it
//! follows.
//!
//! Records travel in batches (a `Vec`), never one message per record: a
//! message costs far more than the work most operators do per record. The
//! branches of a fan-out share one batch ([`SharedBatch`]) where they pass
//! batches on whole; the consumer that takes it last takes the batch
//! itself, an earlier one a copy.
//!
//! Invariants every sender keeps on one edge:
//! - watermarks are non-decreasing;
//! - after `Watermark(t)` no record with timestamp `< t` follows;
//! - end of input is `Watermark(i64::MAX)` then `End`, and nothing follows
//!   `End`.

use std::fmt;
use std::sync::{Arc, Mutex};

use serde::{Deserialize, Serialize};
use uuid::Uuid;

/// Event time in milliseconds (any epoch; the workloads start at 0).
pub type Timestamp = i64;

/// The watermark that closes every window: end of input.
pub const END_OF_TIME: Timestamp = i64::MAX;

/// One record: an event-time timestamp and a value.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Record<T> {
    /// Event time, milliseconds.
    pub ts: Timestamp,
    /// The payload.
    pub value: T,
}

impl<T> Record<T> {
    /// A record with timestamp `ts`.
    pub fn new(ts: Timestamp, value: T) -> Self {
        Record { ts, value }
    }
}

/// Identifies one checkpoint: a sequence number within one job.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub struct CheckpointId {
    /// The job the checkpoint belongs to.
    pub job: Uuid,
    /// Increases by one per checkpoint of that job.
    pub seq: u64,
}

/// A batch of records shared by the branches of a fan-out
/// (`Stream::fan_out`): one allocation, sent to every branch that passes
/// batches on whole. A consumer takes the records with
/// [`SharedBatch::into_vec`]: the last holder gets the batch itself, an
/// earlier one a copy, so records are copied only as long as another
/// consumer still reads them, and on the consumer's thread, not the
/// producer's.
pub struct SharedBatch<T> {
    // A mutex, not a bare `Arc<Vec<..>>`: that would need records that are
    // `Sync` to cross threads; it is locked once per batch, never per
    // record.
    batch: Arc<Mutex<Vec<Record<T>>>>,
    len: usize,
    copy: fn(&[Record<T>]) -> Vec<Record<T>>,
}

impl<T: Clone> SharedBatch<T> {
    /// Shares `batch`.
    pub fn new(batch: Vec<Record<T>>) -> Self {
        let len = batch.len();
        SharedBatch { batch: Arc::new(Mutex::new(batch)), len, copy: <[Record<T>]>::to_vec }
    }
}

impl<T> SharedBatch<T> {
    /// Reads the records in place.
    pub fn with_records<R>(&self, f: impl FnOnce(&[Record<T>]) -> R) -> R {
        f(&self.batch.lock().unwrap_or_else(|e| e.into_inner()))
    }

    /// Number of records.
    pub fn len(&self) -> usize {
        self.len
    }

    /// Whether it holds no record.
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// The records to own: the batch itself if no other consumer holds it
    /// any more, otherwise a copy.
    pub fn into_vec(self) -> Vec<Record<T>> {
        match Arc::try_unwrap(self.batch) {
            Ok(batch) => batch.into_inner().unwrap_or_else(|e| e.into_inner()),
            Err(shared) => (self.copy)(&shared.lock().unwrap_or_else(|e| e.into_inner())),
        }
    }
}

impl<T> Clone for SharedBatch<T> {
    /// Another handle on the same batch (no record is copied).
    fn clone(&self) -> Self {
        SharedBatch { batch: Arc::clone(&self.batch), len: self.len, copy: self.copy }
    }
}

impl<T> fmt::Debug for SharedBatch<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SharedBatch").field("records", &self.len).finish()
    }
}

impl<T: PartialEq> PartialEq for SharedBatch<T> {
    fn eq(&self, other: &Self) -> bool {
        Arc::ptr_eq(&self.batch, &other.batch) || other.with_records(|b| self.with_records(|a| a == b))
    }
}

/// What one edge carries, in order (Flink calls these stream elements).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub enum StreamElement<T> {
    /// A batch of records (never empty when sent by weir).
    Data(Vec<Record<T>>),
    /// A batch of records shared with the other branches of a fan-out
    /// (never empty). Within a process only: it is never serialized.
    #[serde(skip)]
    Shared(SharedBatch<T>),
    /// No later record on this edge has a timestamp below this one.
    Watermark(Timestamp),
    /// The sender has no data for now: do not hold the watermark back for
    /// this input until it sends `Data` or `Watermark` again.
    Idle,
    /// A checkpoint barrier: everything before it belongs to the checkpoint.
    Barrier(CheckpointId),
    /// End of input on this edge; nothing follows.
    End,
}

/// A [`StreamElement`] tagged with the receiver-side index of the input it
/// arrives on, so an actor with several inputs knows which one spoke. This
/// is the actix message of every data edge.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Envelope<T> {
    /// Index of the input (`0..number of inputs` of the receiving actor).
    pub input: usize,
    /// The payload.
    pub element: StreamElement<T>,
}

impl<T: Send + 'static> actix::Message for Envelope<T> {
    type Result = ();
}

impl<T> Envelope<T> {
    /// Number of records carried (0 for control messages).
    pub fn records(&self) -> usize {
        match &self.element {
            StreamElement::Data(b) => b.len(),
            StreamElement::Shared(b) => b.len(),
            _ => 0,
        }
    }
}
