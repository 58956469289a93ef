//! [`Throttled`]: caps a source's rate, for demos, soak tests and runs that
//! must last long enough to be watched (or killed) part-way.

use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::{Duration, Instant};

use tokio::time::Sleep;

use crate::checkpoint::Snapshot;
use crate::error::SnapshotError;
use crate::source::{Source, SourceBatch, SourceStatus};

/// A source that yields at most `rate` items per second of wall time. It
/// only slows the inner source down; it never drops anything.
#[derive(Debug)]
pub struct Throttled<S> {
    inner: S,
    rate: f64,
    start: Option<Instant>,
    produced: u64,
    timer: Option<Pin<Box<Sleep>>>,
}

impl<S> Throttled<S> {
    /// Caps `inner` at `rate` items per second (`rate` > 0; a rate that
    /// is not a positive number is taken as the smallest positive one, and
    /// `f64::INFINITY` does not throttle).
    pub fn new(inner: S, rate: f64) -> Self {
        let rate = if rate > 0.0 { rate } else { f64::MIN_POSITIVE };
        Throttled { inner, rate, start: None, produced: 0, timer: None }
    }
}

impl<S: Source> Source for Throttled<S> {
    type Item = S::Item;

    fn poll_batch(&mut self, cx: &mut Context<'_>, out: &mut SourceBatch<'_, S::Item>) -> Poll<SourceStatus> {
        let start = *self.start.get_or_insert_with(Instant::now);
        loop {
            // `as` saturates: an infinite rate allows everything.
            let allowed = (self.rate * start.elapsed().as_secs_f64()) as u64;
            let n = allowed.saturating_sub(self.produced).min(out.remaining() as u64) as usize;
            if n > 0 {
                let cap = out.max;
                out.max = out.items.len() + out.dead.len() + n;
                let before = out.items.len();
                let r = self.inner.poll_batch(cx, out);
                out.max = cap;
                self.produced += (out.items.len() - before) as u64;
                return r;
            }
            // A rate so low that the next item is centuries away (or past
            // what an `Instant` can hold) waits a year at a time: never a
            // panic on an absurd rate.
            const FAR: Duration = Duration::from_secs(365 * 24 * 3600);
            let wait = Duration::try_from_secs_f64((self.produced + 1) as f64 / self.rate).unwrap_or(FAR);
            let next = start.checked_add(wait).unwrap_or_else(|| Instant::now() + FAR);
            let deadline = tokio::time::Instant::from_std(next);
            let timer = self.timer.get_or_insert_with(|| Box::pin(tokio::time::sleep_until(deadline)));
            if timer.deadline() != deadline {
                timer.as_mut().reset(deadline);
            }
            if timer.as_mut().poll(cx).is_pending() {
                return Poll::Pending;
            }
        }
    }

    fn close(&mut self) -> bool {
        self.inner.close()
    }

    fn watermark(&self) -> Option<crate::message::Timestamp> {
        self.inner.watermark()
    }

    fn position(&self) -> Option<Snapshot> {
        self.inner.position()
    }

    fn seek(&mut self, position: &Snapshot) -> Result<(), SnapshotError> {
        self.inner.seek(position)
    }
}
