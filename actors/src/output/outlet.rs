//! [`Outlet`]: an output port of an actor — where a shell core writes its
//! records.

use std::fmt;
use std::sync::Arc;

use crate::message::{CheckpointId, Record, Timestamp};
use crate::metrics::ActorMetrics;
use crate::output::{Blocked, Control, Emit};

/// An output port of an actor run by weir's shell (a `Core`'s
/// `Outputs`).
///
/// Write records with [`Outlet::push`] or [`Outlet::send_batch`]; they are
/// cut into batches and sent to the next stage (through any fused `map` /
/// `filter` after your operator). The shell sends watermarks, barriers and
/// end of input after what you wrote, flushes partial batches when the
/// actor's mailbox runs dry, and makes the actor wait while a downstream
/// mailbox is full, so that backpressure propagates upstream instead of
/// memory growing.
pub struct Outlet<T: Send + 'static> {
    emit: Box<dyn Emit<T>>,
    buf: Vec<Record<T>>,
    metrics: Arc<ActorMetrics>,
}

impl<T: Send + 'static> fmt::Debug for Outlet<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Outlet").field("actor", &self.metrics.name).finish()
    }
}

impl<T: Send + 'static> Outlet<T> {
    pub(crate) fn new(emit: Box<dyn Emit<T>>, metrics: Arc<ActorMetrics>) -> Self {
        Outlet { emit, buf: Vec::new(), metrics }
    }

    /// Emits one record.
    pub fn push(&mut self, ts: Timestamp, value: T) {
        self.buf.push(Record { ts, value });
        if self.buf.len() >= 1024 {
            self.emit.data(&mut self.buf);
        }
    }

    /// Emits every record of `batch`, leaving it empty (capacity kept).
    pub fn send_batch(&mut self, batch: &mut Vec<Record<T>>) {
        if !self.buf.is_empty() {
            self.emit.data(&mut self.buf);
        }
        self.emit.data(batch);
    }

    fn drain(&mut self) {
        if !self.buf.is_empty() {
            self.emit.data(&mut self.buf);
        }
    }

    /// Sends buffered records, then the watermark `wm` to every destination.
    pub(crate) fn watermark(&mut self, wm: Timestamp) {
        self.drain();
        self.metrics.set_watermark(wm);
        self.emit.control(Control::Watermark(wm));
    }

    /// Tells downstream this operator is idle.
    pub(crate) fn idle(&mut self) {
        self.drain();
        self.emit.control(Control::Idle);
    }

    /// Forwards a checkpoint barrier after everything emitted before it.
    pub(crate) fn barrier(&mut self, id: CheckpointId) {
        self.drain();
        self.emit.control(Control::Barrier(id));
    }

    /// Sends buffered records, the final watermark and end of input.
    pub(crate) fn end(&mut self) {
        self.drain();
        self.emit.control(Control::Watermark(crate::message::END_OF_TIME));
        self.emit.control(Control::End);
    }

    /// Sends records waiting in partial batches.
    pub(crate) fn flush(&mut self) {
        self.drain();
        self.emit.flush();
    }

    /// What a full mailbox refused, to be delivered before anything else.
    pub(crate) fn take_blocked(&mut self) -> Option<Blocked> {
        self.emit.take_blocked()
    }

    /// Whether a downstream mailbox refused what this outlet sent and it
    /// still holds it (the actor waits for room after the current hook).
    pub fn is_blocked(&self) -> bool {
        self.emit.is_blocked()
    }
}
