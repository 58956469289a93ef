//! A source fed by the application: a [`PushHandle`] that any task or actor
//! uses to push records into a running job.
//!
//! The handle and the source share a bounded channel. `send` waits while the
//! channel is full — that is, while the job is backpressured — and
//! `try_send` hands the value back instead of waiting. The job's input ends
//! when every handle has been dropped.

use std::fmt;
use std::task::{Context, Poll};

use tokio::sync::mpsc;

use crate::source::{Source, SourceBatch, SourceStatus};

/// Why [`PushHandle::try_send`] did not take a value; the value comes back.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum TrySendError<T> {
    /// The job is backpressured: try again later.
    #[error("the job is backpressured; the record was not taken")]
    Full(T),
    /// The job's source has stopped; the record was not taken.
    #[error("the job's source has stopped; the record was not taken")]
    Closed(T),
}

/// Pushes records into a job. Clone it to push from several places; the
/// source ends when every clone has been dropped.
pub struct PushHandle<T> {
    tx: mpsc::Sender<T>,
}

impl<T> Clone for PushHandle<T> {
    fn clone(&self) -> Self {
        PushHandle { tx: self.tx.clone() }
    }
}

impl<T> fmt::Debug for PushHandle<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("PushHandle").field("free", &self.tx.capacity()).finish()
    }
}

impl<T: Send> PushHandle<T> {
    /// Pushes `value`, waiting while the job is backpressured. Returns the
    /// value back if the job's source has stopped.
    pub async fn send(&self, value: T) -> Result<(), T> {
        self.tx.send(value).await.map_err(|e| e.0)
    }

    /// Pushes `value` if there is room now; hands it back otherwise.
    pub fn try_send(&self, value: T) -> Result<(), TrySendError<T>> {
        self.tx.try_send(value).map_err(|e| match e {
            mpsc::error::TrySendError::Full(v) => TrySendError::Full(v),
            mpsc::error::TrySendError::Closed(v) => TrySendError::Closed(v),
        })
    }

    /// Pushes `value` from a thread that is not async, waiting while the job
    /// is backpressured. Must not be called from inside an async runtime.
    pub fn blocking_send(&self, value: T) -> Result<(), T> {
        self.tx.blocking_send(value).map_err(|e| e.0)
    }

    /// Room for this many more records before `send` would wait.
    pub fn capacity(&self) -> usize {
        self.tx.capacity()
    }
}

/// The source end of a push handle.
pub struct PushSource<T> {
    rx: mpsc::Receiver<T>,
    /// What one poll took from the channel (reused).
    taken: Vec<T>,
}

impl<T> fmt::Debug for PushSource<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("PushSource")
    }
}

/// A push source and its handle; the channel holds up to `capacity` records.
pub fn push_source<T: Send + 'static>(capacity: usize) -> (PushSource<T>, PushHandle<T>) {
    let (tx, rx) = mpsc::channel(capacity.max(1));
    (PushSource { rx, taken: Vec::new() }, PushHandle { tx })
}

impl<T: Send + 'static> Source for PushSource<T> {
    type Item = T;

    fn poll_batch(&mut self, cx: &mut Context<'_>, out: &mut SourceBatch<'_, T>) -> Poll<SourceStatus> {
        let n = out.remaining();
        if n == 0 {
            return Poll::Ready(SourceStatus::Ready);
        }
        match self.rx.poll_recv_many(cx, &mut self.taken, n) {
            Poll::Ready(0) => Poll::Ready(SourceStatus::Exhausted),
            Poll::Ready(_) => {
                out.extend(self.taken.drain(..));
                Poll::Ready(SourceStatus::Ready)
            }
            Poll::Pending => Poll::Pending,
        }
    }

    fn close(&mut self) -> bool {
        // Refuse new records; what the channel holds is still delivered.
        self.rx.close();
        true
    }
}
