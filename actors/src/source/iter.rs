//! A source over any Rust iterator.

use std::fmt;
use std::task::{Context, Poll};

use crate::source::{Source, SourceBatch, SourceStatus};

/// Reads the items of an iterator, in order, then ends.
///
/// Not replayable: it cannot seek back after a crash.
pub struct IterSource<I> {
    iter: I,
}

impl<I> IterSource<I> {
    /// A source over `iter` (anything `IntoIterator` whose iterator is `Send`).
    pub fn new<C: IntoIterator<IntoIter = I>>(items: C) -> Self {
        IterSource { iter: items.into_iter() }
    }
}

impl<I> fmt::Debug for IterSource<I> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("IterSource")
    }
}

impl<I> Source for IterSource<I>
where
    I: Iterator + Send + 'static,
    I::Item: Send + 'static,
{
    type Item = I::Item;

    fn poll_batch(&mut self, _cx: &mut Context<'_>, out: &mut SourceBatch<'_, I::Item>) -> Poll<SourceStatus> {
        let n = out.remaining();
        let before = out.len();
        out.extend(self.iter.by_ref().take(n));
        if out.len() - before < n {
            Poll::Ready(SourceStatus::Exhausted)
        } else {
            Poll::Ready(SourceStatus::Ready)
        }
    }
}
