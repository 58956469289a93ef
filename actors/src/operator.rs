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

use std::collections::BTreeSet;
use std::sync::Arc;

use actix::{Actor, Context, Handler};

use crate::checkpoint::align::Alignment;
use crate::checkpoint::{decode, encode, Ack, Participant};
use crate::message::{CheckpointId, Envelope, Message, Record, Timestamp};
use crate::metrics::ActorMetrics;
use crate::output::outlet::{wait_blocked, Outlet};
use crate::time::{InputEvent, InputTracker};

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
    fn process(&mut self, batch: &mut Vec<Record<Self::In>>, ctx: &mut OperatorContext, out: &mut Collector<'_, Self::Out>);

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
    /// it). Default: stateless.
    fn snapshot(&self) -> Vec<u8> {
        Vec::new()
    }

    /// Restores what [`Self::snapshot`] returned, before the first record
    /// of a resumed job. Default: nothing.
    fn restore(&mut self, state: &[u8]) -> Result<(), String> {
        let _ = state;
        Ok(())
    }
}

/// What an operator actor checkpoints.
#[derive(Debug, serde::Serialize, serde::Deserialize)]
struct OperatorSnapshot {
    user: Vec<u8>,
    timers: Vec<Timestamp>,
    watermark: Timestamp,
}

/// Drives an [`Operator`] without actix: feed it records and watermarks,
/// read what it emitted. The same sequencing as its actor uses.
#[derive(Debug)]
pub struct OperatorHarness<O: Operator> {
    op: O,
    ctx: OperatorContext,
    out: Vec<Record<O::Out>>,
}

impl<O: Operator> OperatorHarness<O> {
    /// Wraps `op` and calls its `on_start`.
    pub fn new(mut op: O) -> Self {
        op.on_start();
        OperatorHarness { op, ctx: OperatorContext::new(), out: Vec::new() }
    }

    /// Feeds one batch.
    pub fn process(&mut self, mut batch: Vec<Record<O::In>>) {
        drive_batch(&mut self.op, &mut self.ctx, &mut batch, &mut self.out);
    }

    /// Advances the watermark (firing due timers). A watermark not above
    /// the current one is ignored, as the operator's actor does.
    pub fn watermark(&mut self, wm: Timestamp) {
        if wm > self.ctx.watermark {
            drive_watermark(&mut self.op, &mut self.ctx, wm, &mut self.out);
        }
    }

    /// Ends the input: final watermark, then `on_end`.
    pub fn end(&mut self) {
        self.watermark(i64::MAX);
        self.op.on_end(&mut Collector::new(&mut self.out));
    }

    /// Takes what was emitted so far.
    pub fn take_output(&mut self) -> Vec<Record<O::Out>> {
        std::mem::take(&mut self.out)
    }

    /// The operator.
    pub fn operator(&self) -> &O {
        &self.op
    }
}

fn drive_batch<O: Operator>(op: &mut O, ctx: &mut OperatorContext, batch: &mut Vec<Record<O::In>>, out: &mut Vec<Record<O::Out>>) {
    op.process(batch, ctx, &mut Collector::new(out));
    batch.clear();
}

fn drive_watermark<O: Operator>(op: &mut O, ctx: &mut OperatorContext, wm: Timestamp, out: &mut Vec<Record<O::Out>>) {
    let due = ctx.advance(wm);
    let mut c = Collector::new(out);
    op.on_watermark(wm, ctx, &mut c);
    for at in due {
        op.on_timer(at, ctx, &mut c);
    }
}

/// The actor around an [`Operator`] (state boxed: actix wants actors
/// `Unpin`, and user types need not be).
pub(crate) struct OperatorActor<O: Operator>(Box<OperatorState<O>>);

pub(crate) struct OperatorState<O: Operator> {
    align: Alignment<O::In>,
    participant: Option<Participant>,
    op: O,
    ctx: OperatorContext,
    inputs: InputTracker,
    buf: Vec<Record<O::Out>>,
    out: Outlet<O::Out>,
    metrics: Arc<ActorMetrics>,
}

impl<O: Operator> OperatorActor<O> {
    pub(crate) fn new(op: O, inputs: usize, out: Outlet<O::Out>, metrics: Arc<ActorMetrics>) -> Self {
        OperatorActor(Box::new(OperatorState { align: Alignment::default(), participant: None, op, ctx: OperatorContext::new(), inputs: InputTracker::new(inputs), buf: Vec::new(), out, metrics }))
    }
}

impl<O: Operator> OperatorActor<O> {
    /// Takes part in checkpoints; `restore`: the snapshot to resume from.
    pub(crate) fn checkpointed(&mut self, participant: Participant, restore: Option<&[u8]>) -> Result<(), String> {
        let st = &mut *self.0;
        if let Some(bytes) = restore {
            let snap: OperatorSnapshot = decode(&st.metrics.name, bytes)?;
            st.op.restore(&snap.user).map_err(|e| format!("{}: {e}", st.metrics.name))?;
            st.ctx.timers = snap.timers.into_iter().collect();
            st.ctx.watermark = snap.watermark;
        }
        st.participant = Some(participant);
        Ok(())
    }
}

impl<O: Operator> OperatorState<O> {
    fn send(&mut self) {
        if !self.buf.is_empty() {
            self.out.send_batch(&mut self.buf);
        }
    }
}

impl<O: Operator> Actor for OperatorActor<O> {
    type Context = Context<Self>;

    fn started(&mut self, _ctx: &mut Context<Self>) {
        self.0.metrics.actor_started();
        self.0.op.on_start();
    }

    fn stopped(&mut self, _ctx: &mut Context<Self>) {
        self.0.metrics.actor_stopped();
    }
}

impl<O: Operator> Handler<Envelope<O::In>> for OperatorActor<O> {
    type Result = ();

    fn handle(&mut self, env: Envelope<O::In>, ctx: &mut Context<Self>) {
        self.0.handle(env, ctx);
    }
}

impl<O: Operator> OperatorState<O> {
    fn handle(&mut self, env: Envelope<O::In>, ctx: &mut Context<OperatorActor<O>>) {
        self.metrics.mailbox.taken();
        self.dispatch(env);
        if self.metrics.mailbox.len() == 0 {
            self.out.flush();
        }
        wait_blocked(self.out.take_blocked(), &self.metrics, ctx);
    }

    /// Every input delivered barrier `id`: snapshot, acknowledge, forward,
    /// replay what was held back.
    fn on_barrier(&mut self, id: CheckpointId) {
        let (alignment, held) = self.align.complete();
        if let Some(p) = &self.participant {
            let snap = OperatorSnapshot {
                user: self.op.snapshot(),
                timers: self.ctx.timers.iter().copied().collect(),
                watermark: self.ctx.watermark,
            };
            p.ack(Ack { id, actor: self.metrics.name.clone(), state: encode(&snap), alignment });
        }
        self.out.barrier(id);
        for env in held {
            self.dispatch(env);
        }
    }

    fn dispatch(&mut self, env: Envelope<O::In>) {
        let Some(env) = self.align.admit(&self.inputs, env) else { return };
        match env.msg {
            Message::Data(mut batch) => {
                self.metrics.add_in(batch.len());
                self.inputs.on_data(env.input);
                drive_batch(&mut self.op, &mut self.ctx, &mut batch, &mut self.buf);
                self.send();
            }
            msg => match self.inputs.on_message(env.input, &msg) {
                InputEvent::None => {}
                InputEvent::Watermark(wm) => {
                    drive_watermark(&mut self.op, &mut self.ctx, wm, &mut self.buf);
                    self.send();
                    self.metrics.set_watermark(wm);
                    // The final watermark goes out with `End`, after what
                    // `on_end` emits, so that nothing follows it.
                    if wm != i64::MAX {
                        self.out.watermark(wm);
                    }
                }
                InputEvent::Idle => self.out.idle(),
                InputEvent::Barrier(id) => self.on_barrier(id),
                InputEvent::End => {
                    if self.ctx.watermark() != i64::MAX {
                        drive_watermark(&mut self.op, &mut self.ctx, i64::MAX, &mut self.buf);
                    }
                    self.op.on_end(&mut Collector::new(&mut self.buf));
                    self.send();
                    self.metrics.set_watermark(i64::MAX);
                    self.out.end();
                }
            },
        }
    }
}
