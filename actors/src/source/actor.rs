//! The source actor: polls a [`Source`], stamps event time, generates
//! watermarks and idleness, and stops polling while downstream is full.
//!
//! The work happens in one long-lived actor future (the pump) spawned in
//! the actor's context. Each turn it first delivers whatever a full mailbox
//! refused (waiting, woken by actix, when there is still no room), then polls
//! the source for one batch. After a number of batches it yields so that the
//! actor's own mailbox (stop requests) is served. When the source has
//! nothing (`Pending`) the pump flushes partial batches, emits the watermark
//! and, after the idle timeout, declares the source idle, then sleeps until
//! the source or a timer wakes it.

use std::future::Future;
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, Ordering::Relaxed};
use std::sync::Arc;
use std::task::{Context as TaskContext, Poll};
use std::time::Instant;

use actix::fut::ActorFuture;
use actix::{Actor, ActorContext, AsyncContext, Context, Handler};
use tokio::time::Sleep;

use crate::checkpoint::{Ack, Participant, Snapshot, Trigger};
use crate::control::start_gate::StartGate;
use crate::error::SnapshotError;
use crate::message::{CheckpointId, Record};
use crate::metrics::ActorMetrics;
use crate::output::outlet::Outlet;
use crate::output::{join_blocked, Blocked};
use crate::shell::ActorGuard;
use crate::source::{DeadLetter, Source, SourceBatch, SourceStatus};
use crate::time::alignment::AlignmentGroup;
use crate::time::{WatermarkGenerator, WatermarkStrategy};

/// Batches handled per pump turn before yielding: one, so that on a thread
/// shared with its consumers (slot placement) each batch is consumed while
/// it is still in cache, rather than a mailbox-full of them later.
const BUDGET: usize = 1;

/// Asks a source actor to stop reading and end its output (the rest of the
/// job then drains).
#[derive(Debug, Clone, Copy)]
pub(crate) struct StopSource;

impl actix::Message for StopSource {
    type Result = ();
}

/// Settings of one source instance.
pub(crate) struct SourceSettings {
    pub(crate) strategy: WatermarkStrategy,
    pub(crate) batch_size: usize,
    pub(crate) stop: Arc<AtomicBool>,
    /// Set when the job checkpoints.
    pub(crate) participant: Option<Participant>,
    /// Opens once every actor of the job exists: nothing is read before.
    pub(crate) gate: Arc<StartGate>,
    /// Fails the job if this actor panics or goes away early.
    pub(crate) guard: ActorGuard,
    /// With watermark alignment: the group of this source's instances and
    /// this instance's index in it.
    pub(crate) alignment: Option<(Arc<AlignmentGroup>, usize)>,
}

/// What a source actor checkpoints: where its source is and its watermark.
#[derive(Debug, Clone, serde::Serialize, serde::Deserialize)]
pub(crate) struct SourceSnapshot {
    pub(crate) position: Option<Snapshot>,
    pub(crate) max_ts: i64,
    pub(crate) emitted: i64,
}

impl SourceSnapshot {
    /// Moves `source` to the recorded position (phase one of a restore).
    pub(crate) fn seek<S: Source>(&self, source: &mut S) -> Result<(), SnapshotError> {
        match &self.position {
            Some(pos) => source.seek(pos),
            None => Ok(()),
        }
    }
}

/// The source actor (its state is boxed: actix wants actors `Unpin`, and
/// user types need not be).
pub(crate) struct SourceActor<S: Source, F>(Box<SourceState<S, F>>);

pub(crate) struct SourceState<S: Source, F> {
    source: S,
    ts_fn: F,
    /// The batch being read: records the source filled, stamped in place.
    items: Vec<Record<S::Item>>,
    dead: Vec<DeadLetter>,
    out: Outlet<S::Item>,
    dead_out: Outlet<DeadLetter>,
    wm: WatermarkGenerator,
    settings: SourceSettings,
    metrics: Arc<ActorMetrics>,
    blocked: Option<Blocked>,
    /// Until every actor of the job exists ([`StartGate`]).
    starting: Option<Blocked>,
    /// Until the other instances of this source have caught up in event
    /// time (watermark alignment).
    aligning: Option<Blocked>,
    timer: Option<Pin<Box<Sleep>>>,
    produced: u64,
    last_wm_emit: Instant,
    last_data: Instant,
    idle: bool,
    /// Stop was requested and the source drains what it accepted.
    closing: bool,
    /// Checkpoints triggered, taken by the pump between batches (never
    /// while a refused message is still being delivered: the barrier must
    /// not overtake it).
    triggers: Vec<CheckpointId>,
    done: bool,
}

impl<S, F> SourceActor<S, F>
where
    S: Source,
    F: Fn(&S::Item) -> i64 + Send + 'static,
{
    pub(crate) fn new(
        source: S,
        ts_fn: F,
        out: Outlet<S::Item>,
        dead_out: Outlet<DeadLetter>,
        settings: SourceSettings,
        metrics: Arc<ActorMetrics>,
    ) -> Self {
        SourceActor(Box::new(SourceState::new(source, ts_fn, out, dead_out, settings, metrics)))
    }
}

impl<S, F> SourceState<S, F>
where
    S: Source,
    F: Fn(&S::Item) -> i64 + Send + 'static,
{
    fn new(
        source: S,
        ts_fn: F,
        out: Outlet<S::Item>,
        dead_out: Outlet<DeadLetter>,
        settings: SourceSettings,
        metrics: Arc<ActorMetrics>,
    ) -> Self {
        let now = Instant::now();
        let starting: Option<Blocked> = Some(Box::pin(Arc::clone(&settings.gate).opened()));
        SourceState {
            starting,
            aligning: None,
            source,
            ts_fn,
            items: Vec::with_capacity(settings.batch_size),
            dead: Vec::new(),
            out,
            dead_out,
            wm: WatermarkGenerator::new(&settings.strategy),
            settings,
            metrics,
            blocked: None,
            timer: None,
            produced: 0,
            last_wm_emit: now,
            last_data: now,
            idle: false,
            closing: false,
            triggers: Vec::new(),
            done: false,
        }
    }

    /// Stamps the polled items and sends them on.
    fn forward_batch(&mut self) {
        let n = self.items.len();
        if n > 0 {
            let mut max_ts = i64::MIN;
            let ts_fn = &self.ts_fn;
            for r in self.items.iter_mut() {
                r.ts = ts_fn(&r.value);
                max_ts = max_ts.max(r.ts);
            }
            self.wm.observe(max_ts);
            self.metrics.observe_event_time(max_ts);
            if let Some((group, i)) = &self.settings.alignment {
                group.publish(*i, self.wm.allowed());
            }
            self.metrics.add_in(n);
            self.produced += n as u64;
            self.out.send_batch(&mut self.items);
            self.last_data = Instant::now();
            self.idle = false;
        }
        if let Some(wm) = self.source.watermark() {
            // After the items: it holds for what is not yet handed on.
            self.wm.carry(wm);
        }
        if !self.dead.is_empty() {
            self.metrics.dead_letters.fetch_add(self.dead.len() as u64, Relaxed);
            for d in &self.dead {
                tracing::warn!(origin = %d.origin, line = d.line, error = %d.error, "dead letter");
            }
            let mut dead: Vec<Record<DeadLetter>> =
                self.dead.drain(..).map(|d| Record { ts: self.wm.current().max(0), value: d }).collect();
            self.dead_out.send_batch(&mut dead);
        }
    }

    fn emit_watermark(&mut self, force: bool) {
        let due = force || self.last_wm_emit.elapsed() >= self.settings.strategy.interval;
        if due {
            if let Some(wm) = self.wm.advance() {
                self.out.watermark(wm);
                self.dead_out.watermark(wm);
                self.metrics.set_watermark(wm);
                self.last_wm_emit = Instant::now();
            }
        }
    }

    /// Restores the watermark state of a snapshot (the source itself was
    /// already moved to its position).
    pub(crate) fn restore_watermark(&mut self, snap: &SourceSnapshot) {
        self.wm.max_ts = snap.max_ts;
        self.wm.emitted = snap.emitted;
        // Every instance is restored before any reads (the start gate), so
        // none waits for another's first batch that it already read.
        if let Some((group, i)) = &self.settings.alignment {
            group.publish(*i, self.wm.allowed());
        }
    }

    /// Records the position, injects the barrier, acknowledges.
    fn checkpoint(&mut self, id: CheckpointId) {
        let Some(p) = &self.settings.participant else { return };
        let snap =
            SourceSnapshot { position: self.source.position(), max_ts: self.wm.max_ts, emitted: self.wm.emitted };
        let state = match Snapshot::encode(&snap) {
            Ok(s) => s,
            Err(e) => {
                // Not acknowledged: the checkpoint times out; the job goes on.
                tracing::error!(actor = %self.metrics.name, error = %e, "source position cannot be encoded");
                return;
            }
        };
        p.ack(Ack { id, actor: self.metrics.name.clone(), state: state.into_bytes(), alignment: Default::default() });
        if !self.done {
            self.out.barrier(id);
            self.dead_out.barrier(id);
        }
    }

    fn finish(&mut self) {
        self.emit_watermark(true);
        self.out.end();
        self.dead_out.end();
        self.metrics.set_watermark(i64::MAX);
        if let Some((group, i)) = &self.settings.alignment {
            group.publish(*i, i64::MAX);
        }
        self.end_alignment_wait();
        self.done = true;
        tracing::debug!(actor = %self.metrics.name, records = self.produced, "source finished");
    }

    fn take_blocked(&mut self) {
        if let Some(b) = join_blocked([self.out.take_blocked(), self.dead_out.take_blocked()]) {
            self.metrics.block_started();
            self.blocked = Some(b);
        }
    }

    /// Arms the timer for `at` and reports whether it already fired.
    fn sleep_until(&mut self, at: Instant, task: &mut TaskContext<'_>) -> bool {
        let deadline = tokio::time::Instant::from_std(at);
        match &mut self.timer {
            Some(t) if t.deadline() == deadline => {}
            Some(t) => t.as_mut().reset(deadline),
            None => self.timer = Some(Box::pin(tokio::time::sleep_until(deadline))),
        }
        let t = self.timer.as_mut().expect("armed above");
        t.as_mut().poll(task).is_ready()
    }

    /// The source has nothing now: flush, watermark, idleness; returns the
    /// next instant a duty falls due.
    fn on_quiet(&mut self) -> Option<Instant> {
        // Watermark first: the flush then sends it (edges hold watermarks
        // back until a flush or a full batch).
        self.emit_watermark(false);
        self.out.flush();
        self.dead_out.flush();
        let mut next = None;
        let interval = self.settings.strategy.interval;
        if self.wm.has_pending() {
            next = Some(self.last_wm_emit + interval);
        }
        if let Some(timeout) = self.settings.strategy.idle_timeout {
            if !self.idle {
                let at = self.last_data + timeout;
                if Instant::now() >= at {
                    self.idle = true;
                    self.out.idle();
                    self.dead_out.idle();
                    if let Some((group, i)) = &self.settings.alignment {
                        // Idle: hold nobody back until records come again
                        // (the next batch publishes where this one is).
                        group.publish(*i, i64::MAX);
                    }
                } else {
                    next = Some(next.map_or(at, |n: Instant| n.min(at)));
                }
            }
        }
        next
    }

    /// Whether this instance must stop reading until the other instances of
    /// its source catch up; if so the wait is armed (and what this instance
    /// holds is sent, so downstream sees how far it has come).
    fn must_align(&mut self) -> bool {
        let Some((group, i)) = &self.settings.alignment else { return false };
        let own = self.wm.allowed();
        if group.may_read(*i, own, false) {
            return false;
        }
        let (group, i) = (Arc::clone(group), *i);
        self.aligning = Some(Box::pin(async move {
            loop {
                // Created before the check: a publish in between wakes it.
                let advanced = group.advanced();
                if group.may_read(i, own, true) {
                    return;
                }
                advanced.await;
            }
        }));
        self.metrics.alignment_started();
        self.emit_watermark(true);
        self.out.flush();
        self.dead_out.flush();
        true
    }

    fn end_alignment_wait(&mut self) {
        if self.aligning.take().is_some() {
            self.metrics.alignment_ended();
        }
    }

    fn pump(&mut self, ctx: &mut Context<SourceActor<S, F>>, task: &mut TaskContext<'_>) -> Poll<()> {
        if let Some(gate) = &mut self.starting {
            if gate.as_mut().poll(task).is_pending() {
                return Poll::Pending;
            }
            self.starting = None;
        }
        let mut budget = BUDGET;
        loop {
            if let Some(fut) = &mut self.blocked {
                match fut.as_mut().poll(task) {
                    Poll::Pending => return Poll::Pending,
                    Poll::Ready(()) => {
                        self.metrics.block_ended();
                        self.blocked = None;
                    }
                }
            }
            if !self.triggers.is_empty() {
                for id in std::mem::take(&mut self.triggers) {
                    self.checkpoint(id);
                }
                self.take_blocked();
                continue;
            }
            if self.done {
                // The actor stays up (idle) to acknowledge later checkpoints
                // with its final position; the job's end stops its arbiter.
                let _ = ctx;
                return Poll::Ready(());
            }
            if !self.closing && self.settings.stop.load(Relaxed) {
                self.closing = true;
                if !self.source.close() {
                    self.finish();
                    self.take_blocked();
                    continue;
                }
            }
            if let Some(wait) = &mut self.aligning {
                if wait.as_mut().poll(task).is_pending() {
                    return Poll::Pending;
                }
                self.end_alignment_wait();
            }
            if budget == 0 {
                task.waker().wake_by_ref();
                return Poll::Pending;
            }
            if self.must_align() {
                self.take_blocked();
                continue;
            }
            budget -= 1;
            let max = self.settings.batch_size;
            let mut batch = SourceBatch { items: &mut self.items, dead: &mut self.dead, max };
            match self.source.poll_batch(task, &mut batch) {
                Poll::Ready(status) => {
                    self.forward_batch();
                    self.emit_watermark(self.settings.strategy.interval.is_zero());
                    if status == SourceStatus::Exhausted {
                        self.finish();
                    }
                    self.take_blocked();
                }
                Poll::Pending => {
                    // A source may have produced items before going pending.
                    self.forward_batch();
                    let next = self.on_quiet();
                    self.take_blocked();
                    if self.blocked.is_some() {
                        continue;
                    }
                    if let Some(at) = next {
                        if self.sleep_until(at, task) {
                            continue;
                        }
                    }
                    return Poll::Pending;
                }
            }
        }
    }
}

/// The pump as an actor future: polls the actor it runs in.
struct Pump;

impl<S, F> ActorFuture<SourceActor<S, F>> for Pump
where
    S: Source,
    F: Fn(&S::Item) -> i64 + Send + 'static,
{
    type Output = ();

    fn poll(
        self: Pin<&mut Self>,
        act: &mut SourceActor<S, F>,
        ctx: &mut Context<SourceActor<S, F>>,
        task: &mut TaskContext<'_>,
    ) -> Poll<()> {
        let st = &mut *act.0;
        let (lifecycle, metrics) = (Arc::clone(st.settings.guard.lifecycle()), Arc::clone(&st.metrics));
        let polled = crate::shell::guarded(&lifecycle, &metrics.name, "reading its source", || st.pump(ctx, task));
        match polled {
            Some(p) => p,
            // The job has failed (the guard reported the panic).
            None => {
                ctx.stop();
                Poll::Ready(())
            }
        }
    }
}

impl<S, F> Actor for SourceActor<S, F>
where
    S: Source,
    F: Fn(&S::Item) -> i64 + Send + 'static,
{
    type Context = Context<Self>;

    fn started(&mut self, ctx: &mut Context<Self>) {
        self.0.metrics.actor_started();
        ctx.spawn(Pump);
    }

    fn stopped(&mut self, _ctx: &mut Context<Self>) {
        self.0.metrics.actor_stopped();
    }
}

impl<S, F> Handler<Trigger> for SourceActor<S, F>
where
    S: Source,
    F: Fn(&S::Item) -> i64 + Send + 'static,
{
    type Result = ();

    fn handle(&mut self, Trigger(id): Trigger, _ctx: &mut Context<Self>) {
        if self.0.done && self.0.blocked.is_none() {
            // The pump has ended: nothing to order the barrier against.
            self.0.checkpoint(id);
        } else {
            // The pump takes it between batches; this message woke it.
            self.0.triggers.push(id);
        }
    }
}

impl<S, F> SourceActor<S, F>
where
    S: Source,
    F: Fn(&S::Item) -> i64 + Send + 'static,
{
    /// See [`SourceState::restore_watermark`].
    pub(crate) fn restore_watermark(&mut self, snap: &SourceSnapshot) {
        self.0.restore_watermark(snap);
    }
}

impl<S, F> Handler<StopSource> for SourceActor<S, F>
where
    S: Source,
    F: Fn(&S::Item) -> i64 + Send + 'static,
{
    type Result = ();

    fn handle(&mut self, _msg: StopSource, _ctx: &mut Context<Self>) {
        // The pump sees the flag on its next turn; this message woke it.
        self.0.settings.stop.store(true, Relaxed);
    }
}
