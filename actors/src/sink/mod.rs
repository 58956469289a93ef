//! Sinks: where results leave a job.
//!
//! A [`Sink`] receives batches on its sink actor's thread. Built in: a
//! collector for tests ([`CollectSink`]), stdout ([`StdoutSink`]), files of
//! CSV or JSON lines ([`FileSink`]), any closure ([`FnSink`]), and an actix
//! `Recipient` (see `Stream::sink_to_recipient`), which delivers each result
//! as a message to the application's own actor, waiting when that actor's
//! mailbox is full. A job is complete when every sink has seen the end of its
//! input and finished.

mod builtin;
pub(crate) mod recipient;
mod transactional;

use crate::checkpoint::Snapshot;
use crate::error::OperatorError;
pub(crate) use crate::error::SinkError;
use crate::message::{CheckpointId, Record, Timestamp};
use crate::shell::{Core, Cx};

pub use builtin::{CollectSink, Collected, FileSink, FnSink, StdoutSink};
pub use transactional::{ExactlyOnceFileSink, TransactionalFile};

/// Somewhere results go.
///
/// Called on the sink actor's thread, in stream order. `write` takes the
/// records out of `batch`. An error stops the sink and fails the job (the
/// error names the sink).
pub trait Sink<T>: Send + 'static {
    /// Writes a batch of records.
    fn write(&mut self, batch: &mut Vec<Record<T>>) -> Result<(), SinkError>;

    /// The watermark advanced. Default: nothing.
    fn on_watermark(&mut self, wm: Timestamp) -> Result<(), SinkError> {
        let _ = wm;
        Ok(())
    }

    /// End of input: flush and close, making everything written visible.
    /// Default: nothing.
    fn finish(&mut self) -> Result<(), SinkError> {
        Ok(())
    }

    /// A checkpoint barrier arrived: everything written before it belongs
    /// to checkpoint `id`. Make it durable but not yet visible (phase one of
    /// a two-phase commit) and return the state to snapshot
    /// ([`Snapshot::encode`]). Default: no state.
    fn pre_commit(&mut self, id: CheckpointId) -> Result<Snapshot, SinkError> {
        let _ = id;
        Ok(Snapshot::empty())
    }

    /// Checkpoint `id` completed: make what it covers visible (phase two).
    /// Default: nothing.
    fn commit(&mut self, id: CheckpointId) -> Result<(), SinkError> {
        let _ = id;
        Ok(())
    }

    /// The job resumes from checkpoint `id`, for which `pre_commit` returned
    /// `state`: keep what that checkpoint covers, discard anything written
    /// after it. Called before the first write, and only once every other
    /// snapshot of the checkpoint has been checked and every source has
    /// moved to its position, so that a restore that is refused leaves the
    /// output as it was. Default: nothing.
    fn restore(&mut self, id: CheckpointId, state: &Snapshot) -> Result<(), SinkError> {
        let _ = (id, state);
        Ok(())
    }
}

/// The shell core around a [`Sink`]: it writes each batch, pre-commits at
/// a barrier (its snapshot), commits when a checkpoint completes and
/// finishes at the end of its input. A sink is terminal: the job is
/// complete when every sink has finished.
#[derive(Debug)]
pub(crate) struct SinkCore<T, S> {
    sink: S,
    _t: std::marker::PhantomData<fn(T)>,
}

impl<T, S> SinkCore<T, S> {
    pub(crate) fn new(sink: S) -> Self {
        SinkCore { sink, _t: std::marker::PhantomData }
    }
}

impl<T: Send + 'static, S: Sink<T>> Core for SinkCore<T, S> {
    type In = T;
    type Outputs = ();

    fn on_batch(&mut self, batch: &mut Vec<Record<T>>, cx: &mut Cx<'_, Self>) -> Result<(), OperatorError> {
        let n = batch.len();
        self.sink.write(batch)?;
        cx.metrics().add_out(n);
        Ok(())
    }

    fn on_watermark(&mut self, wm: Timestamp, _cx: &mut Cx<'_, Self>) -> Result<(), OperatorError> {
        Ok(self.sink.on_watermark(wm)?)
    }

    fn on_end(&mut self, _cx: &mut Cx<'_, Self>) -> Result<(), OperatorError> {
        Ok(self.sink.finish()?)
    }

    fn snapshot(&mut self, id: CheckpointId) -> Result<Snapshot, OperatorError> {
        Ok(self.sink.pre_commit(id)?)
    }

    fn restore(&mut self, id: CheckpointId, state: Snapshot) -> Result<(), OperatorError> {
        Ok(self.sink.restore(id, &state)?)
    }

    fn on_checkpoint_complete(&mut self, id: CheckpointId) -> Result<(), OperatorError> {
        Ok(self.sink.commit(id)?)
    }

    fn is_terminal(&self) -> bool {
        true
    }
}
