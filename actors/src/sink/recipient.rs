//! A sink that delivers each record's value to an actix `Recipient`: the
//! application's own actor (`Stream::sink_to_recipient`).
//!
//! Values are offered with `try_send`; when the recipient's mailbox is full
//! the rest of the batch is held and delivered in order with
//! `Recipient::send`, and the sink handles nothing else meanwhile, so that
//! the job slows down to the recipient's pace. A delivered message cannot be
//! taken back: across a crash and a restore, results after the restored
//! checkpoint are delivered again (at least once).

use std::fmt;
use std::sync::atomic::Ordering::Relaxed;
use std::sync::Arc;

use actix::dev::SendError;
use actix::Recipient;

use crate::control::lifecycle::Lifecycle;
use crate::error::{JobError, OperatorError};
use crate::message::{CheckpointId, Record, Timestamp};
use crate::metrics::ActorMetrics;
use crate::output::Blocked;
use crate::shell::outputs::sealed::Ports;
use crate::shell::{Core, Cx};
use crate::sink::SinkError;

/// The recipient and what it refused, as the sink's output port.
pub(crate) struct RecipientPort<T: actix::Message<Result = ()> + Send + 'static> {
    recipient: Recipient<T>,
    /// Values a full mailbox refused, in order.
    held: Vec<T>,
    metrics: Arc<ActorMetrics>,
    lifecycle: Arc<Lifecycle>,
}

impl<T: actix::Message<Result = ()> + Send + 'static> fmt::Debug for RecipientPort<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RecipientPort").field("held", &self.held.len()).finish()
    }
}

impl<T: actix::Message<Result = ()> + Send + 'static> RecipientPort<T> {
    pub(crate) fn new(recipient: Recipient<T>, metrics: Arc<ActorMetrics>, lifecycle: Arc<Lifecycle>) -> Self {
        RecipientPort { recipient, held: Vec::new(), metrics, lifecycle }
    }

    /// Offers every value of `batch`; holds the rest at the first full
    /// mailbox.
    fn deliver(&mut self, batch: &mut Vec<Record<T>>) -> Result<(), SinkError> {
        let mut rest = batch.drain(..);
        let mut delivered = 0u64;
        if self.held.is_empty() {
            for r in rest.by_ref() {
                match self.recipient.try_send(r.value) {
                    Ok(()) => delivered += 1,
                    Err(SendError::Full(v)) => {
                        self.held.push(v);
                        break;
                    }
                    Err(SendError::Closed(_)) => {
                        return Err(SinkError::Other("the recipient actor has stopped".into()))
                    }
                }
            }
        }
        self.held.extend(rest.map(|r| r.value));
        self.metrics.records_out.fetch_add(delivered, Relaxed);
        self.metrics.batches_out.fetch_add(1, Relaxed);
        Ok(())
    }
}

impl<T: actix::Message<Result = ()> + Send + 'static> Ports for RecipientPort<T> {
    fn watermark(&mut self, _wm: Timestamp) {}
    fn idle(&mut self) {}
    fn barrier(&mut self, _id: CheckpointId) {}
    fn end(&mut self) {}
    fn flush(&mut self) {}
    fn take_blocked(&mut self) -> Option<Blocked> {
        if self.held.is_empty() {
            return None;
        }
        let held = std::mem::take(&mut self.held);
        let (recipient, metrics, lifecycle) =
            (self.recipient.clone(), Arc::clone(&self.metrics), Arc::clone(&self.lifecycle));
        Some(Box::pin(async move {
            for v in held {
                if recipient.send(v).await.is_err() {
                    let source = Arc::new(SinkError::Other("the recipient actor has stopped".into()));
                    lifecycle.fail(JobError::Sink { actor: metrics.name.clone(), source });
                    return;
                }
                metrics.records_out.fetch_add(1, Relaxed);
            }
        }))
    }
}

/// The shell core of a recipient sink (stateless: at least once).
pub(crate) struct RecipientSink<T>(std::marker::PhantomData<fn(T)>);

impl<T> RecipientSink<T> {
    pub(crate) fn new() -> Self {
        RecipientSink(std::marker::PhantomData)
    }
}

impl<T> fmt::Debug for RecipientSink<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("RecipientSink")
    }
}

impl<T: actix::Message<Result = ()> + Send + 'static> Core for RecipientSink<T> {
    type In = T;
    type Outputs = RecipientPort<T>;

    fn on_batch(&mut self, batch: &mut Vec<Record<T>>, cx: &mut Cx<'_, Self>) -> Result<(), OperatorError> {
        Ok(cx.out().deliver(batch)?)
    }

    fn is_terminal(&self) -> bool {
        true
    }
}
