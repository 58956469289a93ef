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
mod file;
mod iter;
mod push;
mod throttle;

use std::task::{Context, Poll};

use serde::{Deserialize, Serialize};

use crate::checkpoint::Snapshot;
use crate::error::SnapshotError;
use crate::message::{Record, Timestamp};

pub use file::{FileFormat, FileSource};
pub use iter::IterSource;
pub use push::{push_source, PushHandle, PushSource, TrySendError};
pub use throttle::Throttled;

/// An input that could not be read, with why and where.
///
/// A dead letter is for a person to read and act on: `raw` shows the input
/// lossily (bytes that are not UTF-8 become `\u{FFFD}`) and at most
/// [`DeadLetter::SHOWN_BYTES`] of it, and `error` is cut to the same
/// bound, so that a dead letter stays small whatever the input. `origin`,
/// `line` and `offset` find the full input again.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DeadLetter {
    /// Where it came from (a file path, a source name).
    pub origin: String,
    /// 1-based line number (0 when not line-oriented).
    pub line: u64,
    /// Byte offset of the start of the input in `origin` (of line `line`
    /// in a file; 0 when not known).
    #[serde(default)]
    pub offset: u64,
    /// Why it could not be read.
    pub error: String,
    /// The input, shown lossily; a longer one is cut after
    /// [`DeadLetter::SHOWN_BYTES`] bytes and ends with `… (N bytes)`.
    pub raw: String,
}

impl DeadLetter {
    /// Most bytes of the input `raw` shows, and of `error`.
    pub const SHOWN_BYTES: usize = 1024;

    /// A dead letter at `line` and byte `offset` of `origin`, without its
    /// input; `error` is cut to [`Self::SHOWN_BYTES`].
    pub fn new(origin: impl Into<String>, line: u64, offset: u64, error: impl Into<String>) -> Self {
        let mut error = error.into();
        cut(&mut error, Self::SHOWN_BYTES);
        DeadLetter { origin: origin.into(), line, offset, error, raw: String::new() }
    }

    /// Shows `raw`, the whole input, lossily and cut to
    /// [`Self::SHOWN_BYTES`].
    pub fn with_raw(mut self, raw: &[u8]) -> Self {
        self.raw = shown(raw, raw.len() as u64, Self::SHOWN_BYTES);
        self
    }
}

/// The start of an input of `len` bytes, `prefix`, as text of at most
/// about `max` bytes: lossily decoded, and cut, with a mark saying how
/// long the input was, when it is longer than `max`.
pub(crate) fn shown(prefix: &[u8], len: u64, max: usize) -> String {
    if len <= max as u64 && prefix.len() as u64 == len {
        return String::from_utf8_lossy(prefix).into_owned();
    }
    let head = without_split_char(prefix.get(..max).unwrap_or(prefix));
    format!("{}… ({len} bytes)", String::from_utf8_lossy(head))
}

/// `head` without a UTF-8 character that its end splits (which would show
/// as a replacement character though the input has none there).
fn without_split_char(head: &[u8]) -> &[u8] {
    for back in 1..=head.len().min(4) {
        let i = head.len() - back;
        let b = head[i];
        if b & 0xC0 != 0x80 {
            // `b` starts the last character (or is not UTF-8 at all).
            let needs = match b {
                0xC2..=0xDF => 2,
                0xE0..=0xEF => 3,
                0xF0..=0xF4 => 4,
                _ => 1,
            };
            return if needs > back { &head[..i] } else { head };
        }
    }
    head
}

/// Cuts `text` to at most `max` bytes (at a character boundary), marking
/// the cut with `…`.
pub(crate) fn cut(text: &mut String, max: usize) {
    if text.len() <= max {
        return;
    }
    let mut end = max;
    while !text.is_char_boundary(end) {
        end -= 1;
    }
    text.truncate(end);
    text.push('…');
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

    /// Returns an iterator over the items from position `from` on
    /// (`from..len()`; none when `from >= len()`), for a source that wraps
    /// another and looks at what it added.
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

    /// The watermark the source's input carries, for an input that already
    /// has one (a repartition stream carries the watermarks of the
    /// partitions that wrote it). Asked after every poll; `Some(w)`
    /// replaces the strategy's bound from then on: the actor emits `w`
    /// (at the strategy's interval, never going back), and `w` must hold
    /// for every item not yet handed on. `None` (the default): watermarks
    /// come from the strategy.
    fn watermark(&self) -> Option<Timestamp> {
        None
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_dead_letter_shows_its_input_lossily_and_bounded() {
        let d = DeadLetter::new("in", 3, 40, "bad").with_raw(b"a\xffb");
        assert_eq!((d.line, d.offset, d.error.as_str(), d.raw.as_str()), (3, 40, "bad", "a\u{FFFD}b"));

        let long = "€".repeat(1_000); // 3,000 bytes; 1,024 is not a character boundary
        let d = DeadLetter::new("in", 1, 0, long.clone()).with_raw(long.as_bytes());
        assert_eq!(d.raw, format!("{}… (3000 bytes)", "€".repeat(341)));
        assert_eq!(d.error, format!("{}…", "€".repeat(341)));
    }
}
