//! Custom operators: implement [`Operator`] and weir runs it in an actor
//! that handles watermarks, barriers, end of input and backpressure for it.
//!
//! The shape follows every extension point of weir: one required method,
//! [`Operator::process`], called with a batch and a [`Collector`] to write
//! output into; every other hook has a default. An operator never holds
//! downstream addresses: what it collects is batched and sent by its actor,
//! which waits when downstream is full.
//!
//! Event-time timers: [`OperatorContext::register_timer`] asks for
//! [`Operator::on_timer`] to be called once the watermark reaches a time.
//! Timers and the operator's own state ([`Operator::snapshot`]) are part of
//! every checkpoint.

use std::collections::BTreeSet;

use serde::{Deserialize, Serialize};

use crate::checkpoint::Snapshot;
use crate::error::{OperatorError, SnapshotError};
use crate::message::{CheckpointId, Record, Timestamp};
use crate::output::outlet::Outlet;
use crate::shell::{Core, Cx};

/// Where an operator writes its output records.
#[derive(Debug)]
pub struct Collector<'a, T> {
    buf: &'a mut Vec<Record<T>>,
}

impl<'a, T> Collector<'a, T> {
    /// A collector writing into `buf` (for tests of operators).
    pub fn new(buf: &'a mut Vec<Record<T>>) -> Self {
        Collector { buf }
    }

    /// Emits `value` at event time `ts`.
    #[inline]
    pub fn emit(&mut self, ts: Timestamp, value: T) {
        self.buf.push(Record { ts, value });
    }
}

/// What an operator can see and ask for besides its input.
#[derive(Debug, Default)]
pub struct OperatorContext {
    watermark: Timestamp,
    timers: BTreeSet<Timestamp>,
}

impl OperatorContext {
    /// A context at watermark `i64::MIN` with no timers.
    pub fn new() -> Self {
        OperatorContext { watermark: i64::MIN, timers: BTreeSet::new() }
    }

    /// The current input watermark.
    pub fn watermark(&self) -> Timestamp {
        self.watermark
    }

    /// Calls [`Operator::on_timer`] with `at` once the watermark reaches
    /// `at`. Registering the same time twice calls it once.
    pub fn register_timer(&mut self, at: Timestamp) {
        self.timers.insert(at);
    }

    /// Timers due at watermark `wm`, in order, removed.
    pub(crate) fn advance(&mut self, wm: Timestamp) -> Vec<Timestamp> {
        self.watermark = wm;
        let later = self.timers.split_off(&wm.saturating_add(1));
        std::mem::replace(&mut self.timers, later).into_iter().collect()
    }
}

/// A stateful operator that weir wraps in an actor.
///
/// Called on the operator actor's thread, one call at a time; never block.
/// Hooks run in stream order: `process` for each batch, `on_watermark` and
/// then due `on_timer`s when the watermark advances (the watermark is
/// forwarded downstream after them, so what they emit is not late),
/// `on_end` at end of input.
pub trait Operator: Send + 'static {
    /// Input record type.
    type In: Send + 'static;
    /// Output record type.
    type Out: Send + 'static;

    /// Handles a batch of input records (take them out with `drain(..)`).
    fn process(
        &mut self,
        batch: &mut Vec<Record<Self::In>>,
        ctx: &mut OperatorContext,
        out: &mut Collector<'_, Self::Out>,
    );

    /// The watermark advanced to `wm`. Default: nothing (weir forwards it).
    fn on_watermark(&mut self, wm: Timestamp, ctx: &mut OperatorContext, out: &mut Collector<'_, Self::Out>) {
        let _ = (wm, ctx, out);
    }

    /// A timer registered for `at` is due.
    fn on_timer(&mut self, at: Timestamp, ctx: &mut OperatorContext, out: &mut Collector<'_, Self::Out>) {
        let _ = (at, ctx, out);
    }

    /// End of input (after the final watermark). Default: nothing.
    fn on_end(&mut self, out: &mut Collector<'_, Self::Out>) {
        let _ = out;
    }

    /// Called when the operator's actor starts.
    fn on_start(&mut self) {}

    /// The operator's state for a checkpoint (called when every input has
    /// delivered the barrier: the state reflects exactly the records before
    /// it), typically `Snapshot::encode(&self.state)`. Default: stateless.
    fn snapshot(&self) -> Result<Snapshot, SnapshotError> {
        Ok(Snapshot::empty())
    }

    /// Restores what [`Self::snapshot`] returned, before the first record
    /// of a resumed job, typically `self.state = state.decode()?`. Default:
    /// accepts only an empty snapshot.
    fn restore(&mut self, state: &Snapshot) -> Result<(), SnapshotError> {
        if state.is_empty() {
            Ok(())
        } else {
            Err(SnapshotError::Mismatch {
                what: std::any::type_name::<Self>().to_string(),
                reason: "the checkpoint holds state, but this operator does not implement Operator::restore".into(),
            })
        }
    }
}

/// What an operator actor checkpoints.
#[derive(Debug, Serialize, Deserialize)]
struct OperatorSnapshot {
    user: Snapshot,
    timers: Vec<Timestamp>,
    watermark: Timestamp,
}

/// Drives an [`Operator`] without actix: feed it records, watermarks and
/// checkpoints, read what it emitted. The same sequencing as its actor uses.
#[derive(Debug)]
pub struct OperatorHarness<O: Operator> {
    core: OperatorCore<O>,
    out: Vec<Record<O::Out>>,
}

impl<O: Operator> OperatorHarness<O> {
    /// Wraps `op` and calls its `on_start`.
    pub fn new(op: O) -> Self {
        let mut core = OperatorCore::new(op);
        core.op.on_start();
        OperatorHarness { core, out: Vec::new() }
    }

    /// Feeds one batch.
    pub fn process(&mut self, mut batch: Vec<Record<O::In>>) {
        self.core.batch(&mut batch);
        self.out.append(&mut self.core.buf);
    }

    /// Advances the watermark (firing due timers). A watermark not above
    /// the current one is ignored, as the operator's actor does.
    pub fn watermark(&mut self, wm: Timestamp) {
        if wm > self.core.ctx.watermark {
            self.core.watermark(wm);
            self.out.append(&mut self.core.buf);
        }
    }

    /// Ends the input: final watermark, then `on_end`.
    pub fn end(&mut self) {
        self.watermark(i64::MAX);
        self.core.op.on_end(&mut Collector::new(&mut self.out));
    }

    /// What a checkpoint taken now would store (state, timers, watermark).
    pub fn snapshot(&self) -> Result<Snapshot, SnapshotError> {
        self.core.encode()
    }

    /// A harness around `op` restored from `snapshot`, as a resumed job
    /// would start it.
    pub fn restored(op: O, snapshot: &Snapshot) -> Result<Self, SnapshotError> {
        let mut core = OperatorCore::new(op);
        core.decode(snapshot)?;
        core.op.on_start();
        Ok(OperatorHarness { core, out: Vec::new() })
    }

    /// Takes what was emitted so far.
    pub fn take_output(&mut self) -> Vec<Record<O::Out>> {
        std::mem::take(&mut self.out)
    }

    /// The operator.
    pub fn operator(&self) -> &O {
        &self.core.op
    }
}

/// The shell core around an [`Operator`].
#[derive(Debug)]
pub(crate) struct OperatorCore<O: Operator> {
    op: O,
    ctx: OperatorContext,
    /// What the operator emitted, sent after each hook (reused).
    buf: Vec<Record<O::Out>>,
}

impl<O: Operator> OperatorCore<O> {
    pub(crate) fn new(op: O) -> Self {
        OperatorCore { op, ctx: OperatorContext::new(), buf: Vec::new() }
    }

    fn batch(&mut self, batch: &mut Vec<Record<O::In>>) {
        self.op.process(batch, &mut self.ctx, &mut Collector::new(&mut self.buf));
        batch.clear();
    }

    fn watermark(&mut self, wm: Timestamp) {
        let due = self.ctx.advance(wm);
        let mut c = Collector::new(&mut self.buf);
        self.op.on_watermark(wm, &mut self.ctx, &mut c);
        for at in due {
            self.op.on_timer(at, &mut self.ctx, &mut c);
        }
    }

    fn encode(&self) -> Result<Snapshot, SnapshotError> {
        let snap = OperatorSnapshot {
            user: self.op.snapshot()?,
            timers: self.ctx.timers.iter().copied().collect(),
            watermark: self.ctx.watermark,
        };
        Snapshot::encode(&snap)
    }

    fn decode(&mut self, state: &Snapshot) -> Result<(), SnapshotError> {
        let snap: OperatorSnapshot = state.decode()?;
        self.op.restore(&snap.user)?;
        self.ctx.timers = snap.timers.into_iter().collect();
        self.ctx.watermark = snap.watermark;
        Ok(())
    }

    fn send(&mut self, out: &mut Outlet<O::Out>) {
        if !self.buf.is_empty() {
            out.send_batch(&mut self.buf);
        }
    }
}

impl<O: Operator> Core for OperatorCore<O> {
    type In = O::In;
    type Outputs = Outlet<O::Out>;

    fn on_batch(&mut self, batch: &mut Vec<Record<O::In>>, cx: &mut Cx<'_, Self>) -> Result<(), OperatorError> {
        self.batch(batch);
        self.send(cx.out());
        Ok(())
    }

    fn on_watermark(&mut self, wm: Timestamp, cx: &mut Cx<'_, Self>) -> Result<(), OperatorError> {
        self.watermark(wm);
        self.send(cx.out());
        Ok(())
    }

    fn on_end(&mut self, cx: &mut Cx<'_, Self>) -> Result<(), OperatorError> {
        self.op.on_end(&mut Collector::new(&mut self.buf));
        self.send(cx.out());
        Ok(())
    }

    fn on_start(&mut self) {
        self.op.on_start();
    }

    fn snapshot(&mut self, _id: CheckpointId) -> Result<Snapshot, OperatorError> {
        Ok(self.encode()?)
    }

    fn restore(&mut self, _id: CheckpointId, state: Snapshot) -> Result<(), OperatorError> {
        Ok(self.decode(&state)?)
    }
}
