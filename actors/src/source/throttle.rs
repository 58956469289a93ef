//! [`Throttled`]: caps a source's rate, for demos, soak tests and runs that
//! must last long enough to be watched (or killed) part-way.

use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::{Duration, Instant};

use tokio::time::Sleep;

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
    /// Caps `inner` at `rate` items per second (`rate` > 0).
    pub fn new(inner: S, rate: f64) -> Self {
        Throttled { inner, rate: rate.max(f64::MIN_POSITIVE), start: None, produced: 0, timer: None }
    }
}

impl<S: Source> Source for Throttled<S> {
    type Item = S::Item;

    fn poll_batch(&mut self, cx: &mut Context<'_>, out: &mut SourceBatch<'_, S::Item>) -> Poll<SourceStatus> {
        let start = *self.start.get_or_insert_with(Instant::now);
        loop {
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
            let next = start + Duration::from_secs_f64((self.produced + 1) as f64 / self.rate);
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

    fn position(&self) -> Option<Vec<u8>> {
        self.inner.position()
    }

    fn seek(&mut self, position: &[u8]) -> Result<(), String> {
        self.inner.seek(position)
    }
}
