//! [`Outlet`]: the output handle of an actor, public for plain actix actors
//! used as operators, and [`wait_blocked`], how every weir actor waits on a
//! full downstream mailbox.

use std::fmt;
use std::sync::Arc;

use actix::{Actor, AsyncContext, Context};
use actix::fut::ActorFutureExt;

use crate::message::{CheckpointId, Record, Timestamp};
use crate::metrics::ActorMetrics;
use crate::output::{Blocked, Control, Emit};

/// Makes the actor wait (handle nothing else) until `blocked` has delivered
/// everything a full mailbox refused, and counts the time as backpressure.
pub(crate) fn wait_blocked<A>(blocked: Option<Blocked>, metrics: &Arc<ActorMetrics>, ctx: &mut Context<A>)
where
    A: Actor<Context = Context<A>>,
{
    if let Some(fut) = blocked {
        let m = Arc::clone(metrics);
        m.block_started();
        ctx.wait(actix::fut::wrap_future::<_, A>(fut).map(move |_, _, _| m.block_ended()));
    }
}


/// The output of an operator written as a plain actix actor.
///
/// Write records with [`Outlet::push`] or [`Outlet::send_batch`]; they are cut
/// into batches and sent to the next stage (through any fused `map` /
/// `filter` after your operator). Forward watermarks with
/// [`Outlet::watermark`] and end of input with [`Outlet::end`]. After
/// handling each message call [`Outlet::wait_if_blocked`]: if a downstream
/// mailbox was full it makes your actor wait, so that backpressure
/// propagates upstream instead of memory growing.
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

    /// Call first thing for every message your actor receives: keeps its
    /// metrics (records in, batches in, mailbox fill) true.
    pub fn received<M>(&self, env: &crate::message::Envelope<M>) {
        self.metrics.mailbox.taken();
        if let crate::message::StreamElement::Data(b) = &env.element {
            self.metrics.add_in(b.len());
        }
    }

    /// Sends partial batches if nothing more is queued in the actor's
    /// mailbox (counted by [`Self::received`]): latency stays low when
    /// traffic is thin, batches stay full when it is not.
    pub fn flush_if_idle(&mut self) {
        if self.metrics.mailbox.len() == 0 {
            self.flush();
        }
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
    pub fn watermark(&mut self, wm: Timestamp) {
        self.drain();
        self.metrics.set_watermark(wm);
        self.emit.control(Control::Watermark(wm));
    }

    /// Tells downstream this operator is idle.
    pub fn idle(&mut self) {
        self.drain();
        self.emit.control(Control::Idle);
    }

    /// Forwards a checkpoint barrier after everything emitted before it.
    pub fn barrier(&mut self, id: CheckpointId) {
        self.drain();
        self.emit.control(Control::Barrier(id));
    }

    /// Sends buffered records, the final watermark and end of input.
    pub fn end(&mut self) {
        self.drain();
        self.emit.control(Control::Watermark(crate::message::END_OF_TIME));
        self.emit.control(Control::End);
    }

    /// Sends records waiting in partial batches.
    pub fn flush(&mut self) {
        self.drain();
        self.emit.flush();
    }

    /// If a downstream mailbox refused a message, makes the actor wait until
    /// it has been delivered (the actor handles nothing else meanwhile).
    pub fn wait_if_blocked<A>(&mut self, ctx: &mut Context<A>)
    where
        A: Actor<Context = Context<A>>,
    {
        wait_blocked(self.emit.take_blocked(), &self.metrics, ctx);
    }

    pub(crate) fn take_blocked(&mut self) -> Option<Blocked> {
        self.emit.take_blocked()
    }

    /// Whether a full mailbox refused something not yet delivered.
    /// Whether a downstream mailbox refused what this outlet sent and it
    /// still holds it (the actor waits for room after the current hook).
    pub fn is_blocked(&self) -> bool {
        self.emit.is_blocked()
    }

}
