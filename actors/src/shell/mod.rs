//! The actor shell: the input protocol, written once.
//!
//! Every actor that consumes an edge — an operator, a window manager, a
//! sink, a custom actor operator — speaks the same protocol: it tracks its
//! inputs (the watermark is the minimum over the active ones), aligns
//! checkpoint barriers (holding back an input that delivered its barrier,
//! pausing it at a cap), takes part in checkpoints, counts what it receives,
//! wakes blocked senders, flushes partial batches when its mailbox runs dry,
//! waits while a downstream mailbox is full, ends once every input has
//! ended, and turns a panic or an error into a job failure that names it.
//! [`Shell`] does all of that; what differs between actors is a [`Core`]:
//! a plain struct with hooks for a batch, a watermark, a snapshot, end of
//! input, a completed checkpoint and a processing-time tick.
//!
//! The order of a message's effects, which every core can rely on:
//! - a batch: [`Core::on_batch`], then its buffer goes back to the sender;
//! - a watermark that advances the minimum: [`Core::on_watermark`], then
//!   the watermark leaves on every output, after what the hook emitted
//!   (unless the core sends its own, [`Core::forwards_watermarks`]);
//! - every input delivered barrier `n`: [`Core::snapshot`] (the state now
//!   reflects exactly the records before the barrier), the acknowledgement
//!   to the coordinator, the barrier on every output, then what was held
//!   back during the alignment, before anything else in the mailbox;
//! - every input ended: [`Core::on_watermark`]`(i64::MAX)` if that
//!   watermark had not come yet, [`Core::on_end`], then the final watermark
//!   and end of input on every output.
//!
//! A hook whose work is long and whose output fills mailboxes (a window
//! manager firing many windows on one watermark) may stop part-way when an
//! output is blocked, leaving [`Core::pending`] true: the shell then waits
//! until the receivers have room and calls [`Core::resume`] until nothing
//! is pending, handling nothing else meanwhile; the watermark (or end of
//! input) goes out only after that. A hook may also stop on its own
//! futures: a core that says [`Core::is_async`] has them polled on its
//! actor's thread through [`Core::poll_async`], and while it is pending
//! and its outputs have room the shell waits for them instead. What was
//! held back during an alignment is replayed through the same path, before
//! anything else in the mailbox, so a hook may pause in it too.

mod guard;
pub(crate) mod outputs;

pub(crate) use guard::{guarded, ActorGuard};
use outputs::sealed::Ports;
pub use outputs::Outputs;

use std::collections::VecDeque;
use std::fmt;
use std::marker::PhantomData;
use std::pin::Pin;
use std::sync::atomic::Ordering::Relaxed;
use std::sync::Arc;
use std::task::{self, Poll};
use std::time::Duration;

use actix::fut::{ActorFuture, ActorFutureExt};
use actix::{Actor, ActorContext, AsyncContext, Context, Handler};

use crate::checkpoint::align::Alignment;
use crate::checkpoint::{Ack, Completed, Participant, Snapshot};
use crate::error::{JobError, OperatorError};
use crate::message::{CheckpointId, Envelope, Record, StreamElement, Timestamp, END_OF_TIME};
use crate::metrics::ActorMetrics;
use crate::output::pool::BatchPool;
use crate::time::{InputEvent, InputTracker};

/// The behaviour of an actor run by a [`Shell`]: hooks called in stream
/// order, on the actor's thread, one at a time. Never block in a hook.
///
/// Only [`Core::on_batch`] is required. What a hook emits goes to its
/// outputs (`cx.out()`); the shell forwards watermarks, barriers and end of
/// input after it. An error from a hook fails the job, naming the actor.
pub trait Core: Send + Sized + 'static {
    /// The record type of the input edge.
    type In: Send + 'static;
    /// The output ports: `()`, an `Outlet<T>` or a pair of outlets.
    type Outputs: Outputs;

    /// Handles a batch of records from input `cx.input()` (take them out
    /// with `drain(..)`; what is left is dropped).
    fn on_batch(&mut self, batch: &mut Vec<Record<Self::In>>, cx: &mut Cx<'_, Self>) -> Result<(), OperatorError>;

    /// The input watermark advanced to `wm` (the minimum over the inputs).
    /// Records emitted here leave before the watermark. Default: nothing.
    fn on_watermark(&mut self, wm: Timestamp, cx: &mut Cx<'_, Self>) -> Result<(), OperatorError> {
        let _ = (wm, cx);
        Ok(())
    }

    /// Every input ended (after `on_watermark(i64::MAX)`). Default: nothing.
    fn on_end(&mut self, cx: &mut Cx<'_, Self>) -> Result<(), OperatorError> {
        let _ = cx;
        Ok(())
    }

    /// The state for checkpoint `id`, when every input has delivered its
    /// barrier. Default: no state.
    fn snapshot(&mut self, id: CheckpointId) -> Result<Snapshot, OperatorError> {
        let _ = id;
        Ok(Snapshot::empty())
    }

    /// Restores what [`Core::snapshot`] returned for checkpoint `id`,
    /// before the actor starts. The default accepts only an empty state.
    fn restore(&mut self, id: CheckpointId, state: Snapshot) -> Result<(), OperatorError> {
        let _ = id;
        if state.is_empty() {
            Ok(())
        } else {
            Err(OperatorError::Snapshot(crate::error::SnapshotError::Mismatch {
                what: std::any::type_name::<Self>().to_string(),
                reason: "the checkpoint holds state, but this core does not implement Core::restore".into(),
            }))
        }
    }

    /// Checkpoint `id` is complete (every actor's snapshot is durable).
    /// Default: nothing. Sinks commit here.
    fn on_checkpoint_complete(&mut self, id: CheckpointId) -> Result<(), OperatorError> {
        let _ = id;
        Ok(())
    }

    /// Whether the last hook left work to do once the outputs have room
    /// (see the module docs). Default: never.
    fn pending(&self) -> bool {
        false
    }

    /// Goes on with the work [`Core::pending`] reported, now that the
    /// outputs have room. Default: nothing.
    fn resume(&mut self, cx: &mut Cx<'_, Self>) -> Result<(), OperatorError> {
        let _ = cx;
        Ok(())
    }

    /// How often [`Core::on_tick`] runs (processing time); `None`, the
    /// default: never.
    fn tick_interval(&self) -> Option<Duration> {
        None
    }

    /// Called every [`Core::tick_interval`]. Default: nothing.
    fn on_tick(&mut self, cx: &mut Cx<'_, Self>) -> Result<(), OperatorError> {
        let _ = cx;
        Ok(())
    }

    /// Called once when the actor starts, before any input. Default:
    /// nothing.
    fn on_start(&mut self) {}

    /// Whether this core runs futures of its own (calls in flight), which
    /// the shell then drives with [`Core::poll_async`]. Asked once, at
    /// start. Default: `false`.
    fn is_async(&self) -> bool {
        false
    }

    /// Whether the core sends watermarks and idleness notices on its
    /// outputs itself, once what precedes them has left (an async core
    /// whose results trail its input). The shell then forwards no
    /// watermark but the final one, with end of input, and calls
    /// [`Core::on_idle`] instead of forwarding idleness. Asked once, at
    /// start. Default: `false`.
    fn forwards_watermarks(&self) -> bool {
        false
    }

    /// Every input went idle; only called when the core
    /// [`Core::forwards_watermarks`], which must then send the notice on
    /// (`Outlet::idle`) once what precedes it has left. Default: nothing.
    fn on_idle(&mut self, cx: &mut Cx<'_, Self>) -> Result<(), OperatorError> {
        let _ = cx;
        Ok(())
    }

    /// Drives the core's futures, on the actor's thread: called after
    /// messages, whenever a future the core polled with `task` wakes it,
    /// and in a loop while the core is [`Core::pending`] with room on its
    /// outputs. Emit what completed; return `Ready` if anything did (or
    /// the core's state changed), `Pending` once every future it holds has
    /// registered `task`'s waker. Only called when [`Core::is_async`].
    /// Default: `Ready`.
    fn poll_async(&mut self, task: &mut task::Context<'_>, cx: &mut Cx<'_, Self>) -> Result<Poll<()>, OperatorError> {
        let _ = (task, cx);
        Ok(Poll::Ready(()))
    }

    /// How many records `batch` stands for in the metrics, and how many of
    /// them arrived pre-aggregated. Default: its length, none.
    fn weigh(batch: &[Record<Self::In>]) -> (usize, usize) {
        (batch.len(), 0)
    }

    /// Whether this actor ends the job's dataflow: the job is complete when
    /// every such actor has ended. Default: `false`.
    fn is_terminal(&self) -> bool {
        false
    }
}

/// What a hook can see and use besides its input.
pub struct Cx<'a, C: Core> {
    out: &'a mut C::Outputs,
    input: usize,
    watermark: Timestamp,
    metrics: &'a ActorMetrics,
}

impl<C: Core> fmt::Debug for Cx<'_, C> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Cx").field("actor", &self.metrics.name).field("input", &self.input).finish()
    }
}

impl<C: Core> Cx<'_, C> {
    /// The output ports.
    pub fn out(&mut self) -> &mut C::Outputs {
        self.out
    }

    /// The input the current batch arrived on (`0..inputs`).
    pub fn input(&self) -> usize {
        self.input
    }

    /// The current input watermark (before the one being handled, in
    /// `on_watermark`).
    pub fn watermark(&self) -> Timestamp {
        self.watermark
    }

    /// The actor's name, `<node>#<instance>`.
    pub fn actor(&self) -> &str {
        &self.metrics.name
    }

    /// Counts `n` records as late (metrics `late_records`).
    pub fn count_late(&self, n: u64) {
        self.metrics.late_records.fetch_add(n, Relaxed);
    }

    pub(crate) fn metrics(&self) -> &ActorMetrics {
        self.metrics
    }
}

/// The actor around a [`Core`] (its state boxed: actix wants actors
/// `Unpin`, and cores need not be).
pub struct Shell<C: Core>(Box<ShellState<C>>);

impl<C: Core> fmt::Debug for Shell<C> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Shell").field("actor", &self.0.metrics.name).finish()
    }
}

struct ShellState<C: Core> {
    core: C,
    out: C::Outputs,
    inputs: InputTracker,
    align: Alignment<C::In>,
    participant: Option<Participant>,
    metrics: Arc<ActorMetrics>,
    pool: Arc<BatchPool<C::In>>,
    guard: ActorGuard,
    /// The watermark last given to the core.
    watermark: Timestamp,
    /// A hook failed or panicked: the job is failing; nothing more is
    /// handled, no barrier is acknowledged.
    failed: bool,
    /// A terminal actor reported that it finished.
    finished: bool,
    /// What waits for the core's pending work (a watermark to forward,
    /// end of input).
    deferred: Option<Deferred>,
    /// Messages held back during an alignment, handled before anything
    /// else in the mailbox once the barrier went out.
    replay: VecDeque<Envelope<C::In>>,
    /// The core runs futures ([`Core::is_async`]).
    is_async: bool,
    /// The core sends its own watermarks ([`Core::forwards_watermarks`]).
    own_watermarks: bool,
}

/// What the shell completes once a core has no pending work left.
#[derive(Debug, Clone, Copy)]
enum Deferred {
    /// Forward this watermark.
    Watermark(Timestamp),
    /// The final watermark was pending: then end the output.
    End,
}

impl<C: Core> Shell<C> {
    /// A shell running `core` with output ports `out`.
    pub(crate) fn new(core: C, out: C::Outputs, inputs: usize, pool: Arc<BatchPool<C::In>>, w: ShellWiring) -> Self {
        Shell(Box::new(ShellState {
            core,
            out,
            inputs: InputTracker::new(inputs),
            align: Alignment::new(w.alignment_cap),
            participant: w.participant,
            metrics: w.metrics,
            pool,
            guard: w.guard,
            watermark: i64::MIN,
            failed: false,
            finished: false,
            deferred: None,
            replay: VecDeque::new(),
            is_async: false,
            own_watermarks: false,
        }))
    }
}

/// What the spawner gives every shell (besides its core and ports).
pub(crate) struct ShellWiring {
    pub(crate) metrics: Arc<ActorMetrics>,
    pub(crate) participant: Option<Participant>,
    pub(crate) guard: ActorGuard,
    pub(crate) alignment_cap: usize,
}

impl<C: Core> ShellState<C> {
    fn cx(&mut self, input: usize) -> (&mut C, Cx<'_, C>) {
        let cx = Cx { out: &mut self.out, input, watermark: self.watermark, metrics: &self.metrics };
        (&mut self.core, cx)
    }

    /// Handles one message, or holds it back while its input is aligned.
    fn dispatch(&mut self, env: Envelope<C::In>) -> Result<(), OperatorError> {
        let Some(env) = self.align.admit(&self.inputs, &self.metrics.mailbox, env) else { return Ok(()) };
        match env.element {
            StreamElement::Data(batch) => self.data(env.input, batch)?,
            StreamElement::Shared(shared) => self.data(env.input, shared.into_vec())?,
            element => match self.inputs.on_message(env.input, &element) {
                InputEvent::None => {}
                InputEvent::Watermark(wm) => self.advance(wm, env.input)?,
                InputEvent::Idle if self.own_watermarks => {
                    let (core, mut cx) = self.cx(env.input);
                    core.on_idle(&mut cx)?;
                }
                InputEvent::Idle => self.out.idle(),
                InputEvent::Barrier(id) => self.barrier(id)?,
                InputEvent::End => {
                    if self.watermark != END_OF_TIME {
                        self.advance(END_OF_TIME, env.input)?;
                    }
                    match self.deferred {
                        // The final watermark's work is pending: end after it.
                        Some(_) => self.deferred = Some(Deferred::End),
                        None => self.end()?,
                    }
                }
            },
        }
        Ok(())
    }

    /// A batch from `input`: counted, handed to the core, its buffer back
    /// to the sender.
    fn data(&mut self, input: usize, mut batch: Vec<Record<C::In>>) -> Result<(), OperatorError> {
        let (records, pre) = C::weigh(&batch);
        self.metrics.add_in(records);
        if pre > 0 {
            self.metrics.pre_aggregated_in.fetch_add(pre as u64, Relaxed);
        }
        self.inputs.on_data(input);
        let (core, mut cx) = self.cx(input);
        core.on_batch(&mut batch, &mut cx)?;
        self.pool.put(input, batch);
        Ok(())
    }

    /// The combined watermark advanced to `wm`.
    fn advance(&mut self, wm: Timestamp, input: usize) -> Result<(), OperatorError> {
        let (core, mut cx) = self.cx(input);
        core.on_watermark(wm, &mut cx)?;
        if self.core.pending() {
            self.deferred = Some(Deferred::Watermark(wm));
            return Ok(());
        }
        self.reached(wm);
        Ok(())
    }

    /// The core has done everything up to watermark `wm`: it goes out.
    fn reached(&mut self, wm: Timestamp) {
        self.watermark = wm;
        self.metrics.set_watermark(wm);
        // The final watermark goes out with `End`, after what `on_end`
        // emits, so that nothing follows it.
        if wm != END_OF_TIME && !self.own_watermarks {
            self.out.watermark(wm);
        }
    }

    /// Every input ended and the final watermark is done: `on_end`, then
    /// end of input on every output.
    fn end(&mut self) -> Result<(), OperatorError> {
        let (core, mut cx) = self.cx(0);
        core.on_end(&mut cx)?;
        self.out.end();
        self.metrics.set_watermark(END_OF_TIME);
        Ok(())
    }

    /// The outputs have room: the core goes on with its pending work; once
    /// none is left, what waited for it completes.
    fn resume(&mut self) -> Result<(), OperatorError> {
        let (core, mut cx) = self.cx(0);
        core.resume(&mut cx)?;
        if self.core.pending() {
            return Ok(());
        }
        match self.deferred.take() {
            Some(Deferred::Watermark(wm)) => self.reached(wm),
            Some(Deferred::End) => {
                self.reached(END_OF_TIME);
                self.end()?;
            }
            None => {}
        }
        Ok(())
    }

    /// Every input delivered barrier `id`: snapshot, acknowledge, forward,
    /// then queue what was held back to be handled next.
    fn barrier(&mut self, id: CheckpointId) -> Result<(), OperatorError> {
        let (alignment, held) = self.align.complete(&self.metrics.mailbox);
        if let Some(p) = &self.participant {
            // A failing snapshot (a sink's pre-commit) fails the job: it is
            // never acknowledged, so the checkpoint cannot complete.
            let state = self.core.snapshot(id)?;
            p.ack(Ack { id, actor: self.metrics.name.clone(), state: state.into_bytes(), alignment });
        }
        self.out.barrier(id);
        // What was held arrived before anything still queued for replay
        // (an alignment completed while replaying an earlier one held only
        // messages from ahead of the rest of that replay): it goes first.
        for env in held.into_iter().rev() {
            self.replay.push_front(env);
        }
        Ok(())
    }

    /// A hook failed: the job fails, naming this actor; nothing more is
    /// handled.
    fn fail(&mut self, e: OperatorError) {
        self.failed = true;
        let actor = self.metrics.name.clone();
        let err = match e {
            OperatorError::Sink(e) => JobError::Sink { actor, source: Arc::new(e) },
            e => JobError::Operator { actor, source: Arc::new(e) },
        };
        self.guard.lifecycle().fail(err);
    }

    /// After every message: flush when nothing more is queued, wait while
    /// a downstream mailbox is full or the core waits for its futures, go
    /// on with pending work, then with what an alignment held back. Every
    /// path that returns with work left waits (`ctx.wait`, so the mailbox
    /// is not read meanwhile) and comes back here.
    fn after_message(&mut self, ctx: &mut Context<Shell<C>>) {
        loop {
            if self.failed {
                return;
            }
            if self.metrics.mailbox.len() == 0 && self.replay.is_empty() {
                self.out.flush();
            }
            let blocked = self.out.take_blocked();
            if self.deferred.is_some() || self.core.pending() {
                if let Some(fut) = blocked {
                    let m = Arc::clone(&self.metrics);
                    m.block_started();
                    // Nothing else is handled until the pending work is done.
                    ctx.wait(actix::fut::wrap_future::<_, Shell<C>>(fut).map(move |_, act, ctx| {
                        m.block_ended();
                        if act.0.guarded_resume(ctx) {
                            act.0.after_message(ctx);
                        }
                    }));
                    return;
                }
                if self.is_async && self.core.pending() {
                    // Waiting for its own futures, not for the outputs:
                    // what it emitted so far goes out now.
                    self.out.flush();
                    ctx.wait(AsyncWait::<C>(PhantomData).map(|_, act, ctx| {
                        if act.0.guarded_resume(ctx) {
                            act.0.after_message(ctx);
                        }
                    }));
                    return;
                }
                // Delivered already: go on now.
                if !self.guarded_resume(ctx) {
                    return;
                }
                continue;
            }
            let ended = self.replay.is_empty() && !self.finished && self.inputs.all_ended() && self.core.is_terminal();
            self.finished |= ended;
            if let Some(fut) = blocked {
                let m = Arc::clone(&self.metrics);
                m.block_started();
                let lifecycle = Arc::clone(self.guard.lifecycle());
                ctx.wait(actix::fut::wrap_future::<_, Shell<C>>(fut).map(move |_, act, ctx| {
                    m.block_ended();
                    // A terminal actor counts as finished once what it
                    // delivered has been taken.
                    if ended {
                        lifecycle.sink_done();
                    }
                    if !act.0.replay.is_empty() {
                        act.0.after_message(ctx);
                    }
                }));
                return;
            }
            if let Some(env) = self.replay.pop_front() {
                let (actor, lifecycle) = (self.metrics.name.clone(), Arc::clone(self.guard.lifecycle()));
                let during = "a message held back during a checkpoint alignment";
                let r = guarded(&lifecycle, &actor, during, || self.dispatch(env));
                if !self.outcome(ctx, r) {
                    return;
                }
                continue;
            }
            if ended {
                self.guard.lifecycle().sink_done();
            }
            return;
        }
    }

    /// What a guarded hook returned: an error or a panic (`None`) fails
    /// the job and stops the actor. `true` if it went well.
    fn outcome(&mut self, ctx: &mut Context<Shell<C>>, r: Option<Result<(), OperatorError>>) -> bool {
        match r {
            Some(Ok(())) => true,
            Some(Err(e)) => {
                self.fail(e);
                ctx.stop();
                false
            }
            None => {
                self.failed = true;
                ctx.stop();
                false
            }
        }
    }

    /// [`Core::poll_async`] under the panic guard; `None` if the job failed.
    fn poll_core(&mut self, ctx: &mut Context<Shell<C>>, task: &mut task::Context<'_>) -> Option<Poll<()>> {
        if self.failed {
            return None;
        }
        let (actor, lifecycle) = (self.metrics.name.clone(), Arc::clone(self.guard.lifecycle()));
        let mut progress = Poll::Pending;
        let r = guarded(&lifecycle, &actor, "its asynchronous work", || {
            let (core, mut cx) = self.cx(0);
            progress = core.poll_async(task, &mut cx)?;
            Ok(())
        });
        self.outcome(ctx, r).then_some(progress)
    }

    /// [`Self::resume`] under the panic guard; `false` if the job failed.
    fn guarded_resume(&mut self, ctx: &mut Context<Shell<C>>) -> bool {
        if self.failed {
            return false;
        }
        let (actor, lifecycle) = (self.metrics.name.clone(), Arc::clone(self.guard.lifecycle()));
        let r = guarded(&lifecycle, &actor, "resuming its pending work", || self.resume());
        self.outcome(ctx, r)
    }

    /// Runs `step` as a guarded hook: an error or a panic fails the job and
    /// stops the actor.
    fn step(
        &mut self,
        ctx: &mut Context<Shell<C>>,
        during: &str,
        step: impl FnOnce(&mut Self) -> Result<(), OperatorError>,
    ) {
        if self.failed {
            return;
        }
        let actor = self.metrics.name.clone();
        let lifecycle = Arc::clone(self.guard.lifecycle());
        let r = guarded(&lifecycle, &actor, during, || step(self));
        if self.outcome(ctx, r) {
            self.after_message(ctx);
        }
    }
}

/// Waits, without reading the mailbox, until a pending async core's
/// futures make progress; then the shell resumes it.
struct AsyncWait<C>(PhantomData<fn() -> C>);

impl<C: Core> ActorFuture<Shell<C>> for AsyncWait<C> {
    type Output = ();

    fn poll(
        self: Pin<&mut Self>,
        act: &mut Shell<C>,
        ctx: &mut Context<Shell<C>>,
        task: &mut task::Context<'_>,
    ) -> Poll<()> {
        match act.0.poll_core(ctx, task) {
            Some(Poll::Pending) if act.0.core.pending() => Poll::Pending,
            _ => Poll::Ready(()),
        }
    }
}

/// Polls an async core's futures for the life of its actor, while the
/// shell reads its mailbox (it is not polled while the shell waits).
struct Driver<C>(PhantomData<fn() -> C>);

impl<C: Core> ActorFuture<Shell<C>> for Driver<C> {
    type Output = ();

    fn poll(
        self: Pin<&mut Self>,
        act: &mut Shell<C>,
        ctx: &mut Context<Shell<C>>,
        task: &mut task::Context<'_>,
    ) -> Poll<()> {
        match act.0.poll_core(ctx, task) {
            None => Poll::Ready(()),
            Some(Poll::Ready(())) => {
                // Results went out: flush or wait as after a message.
                act.0.after_message(ctx);
                Poll::Pending
            }
            Some(Poll::Pending) => Poll::Pending,
        }
    }
}

impl<C: Core> Actor for Shell<C> {
    type Context = Context<Self>;

    fn started(&mut self, ctx: &mut Context<Self>) {
        self.0.metrics.actor_started();
        self.0.metrics.mailbox.set_home();
        let st = &mut *self.0;
        let (actor, lifecycle) = (st.metrics.name.clone(), Arc::clone(st.guard.lifecycle()));
        if guarded(&lifecycle, &actor, "its start", || st.core.on_start()).is_none() {
            st.failed = true;
            ctx.stop();
            return;
        }
        st.is_async = st.core.is_async();
        st.own_watermarks = st.core.forwards_watermarks();
        if st.is_async {
            ctx.spawn(Driver::<C>(PhantomData));
        }
        if let Some(every) = st.core.tick_interval() {
            ctx.run_interval(every, |act: &mut Shell<C>, ctx| {
                act.0.step(ctx, "a processing-time tick", |st| {
                    let (core, mut cx) = st.cx(0);
                    core.on_tick(&mut cx)
                });
            });
        }
    }

    fn stopped(&mut self, _ctx: &mut Context<Self>) {
        self.0.metrics.actor_stopped();
    }
}

impl<C: Core> Handler<Envelope<C::In>> for Shell<C> {
    type Result = ();

    fn handle(&mut self, env: Envelope<C::In>, ctx: &mut Context<Self>) {
        let st = &mut *self.0;
        st.metrics.mailbox.taken();
        let during = match &env.element {
            StreamElement::Data(_) | StreamElement::Shared(_) => "a batch",
            StreamElement::Watermark(_) => "a watermark",
            StreamElement::Idle => "an idleness notice",
            StreamElement::Barrier(_) => "a checkpoint barrier",
            StreamElement::End => "the end of its input",
        };
        st.step(ctx, during, |st| st.dispatch(env));
    }
}

impl<C: Core> Handler<Completed> for Shell<C> {
    type Result = ();

    fn handle(&mut self, Completed(id): Completed, ctx: &mut Context<Self>) {
        self.0.step(ctx, "a completed checkpoint", |st| st.core.on_checkpoint_complete(id));
    }
}
