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
//! message costs far more than the work most operators do per record.
//!
//! Invariants every sender keeps on one edge:
//! - watermarks are non-decreasing;
//! - after `Watermark(t)` no record with timestamp `< t` follows;
//! - end of input is `Watermark(i64::MAX)` then `End`, and nothing follows
//!   `End`.

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

/// What one edge carries, in order (Flink calls these stream elements).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub enum StreamElement<T> {
    /// A batch of records (never empty when sent by weir).
    Data(Vec<Record<T>>),
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
            _ => 0,
        }
    }
}
