//! The window-manager actor: a thin shell around
//! [`crate::window::core::WindowCore`].
//!
//! It receives keyed records `(K, T)` from every upstream instance, tracks
//! the combined watermark over its inputs, feeds records and watermarks to
//! the core, and sends what fires to its result output and what is late to
//! its late-data output (or, when nobody subscribed to late data, counts
//! them). It forwards watermarks after the results they released, so that
//! downstream sees results before the watermark that closed their window.

use std::hash::Hash;
use std::sync::atomic::AtomicI64;
use std::sync::atomic::Ordering::Relaxed;
use std::sync::Arc;

use actix::fut::ActorFutureExt;
use actix::{Actor, AsyncContext, Context, Handler};

use serde::de::DeserializeOwned;
use serde::Serialize;

use crate::checkpoint::align::Alignment;
use crate::checkpoint::{Ack, Participant};
use crate::message::{CheckpointId, Envelope, Message, Record};
use crate::metrics::ActorMetrics;
use crate::output::outlet::{wait_blocked, Outlet};
use crate::output::join_blocked;
use crate::output::pool::BatchPool;
use crate::time::{InputEvent, InputTracker};
use crate::window::core::{Fired, WindowCore};
use crate::window::partial::Partial;
use crate::window::{Aggregate, WindowOptions, WindowResult, Windows};

/// What a window manager receives on its input edge: keyed records from a
/// `key_by` edge, or keyed partials from a combining one
/// (`window::partial`).
pub(crate) trait WindowInput<K, T, A: Aggregate<T>>: Send + Sized + 'static {
    /// How many records `batch` stands for, and how many of them came
    /// folded into partial aggregates.
    fn records(batch: &[Record<Self>]) -> (usize, usize);
    /// Feeds `batch` to the core (leaving it empty); `records` is a reused
    /// scratch buffer. Returns the records counted as late that could not
    /// go to the late-data output (see `WindowCore::add_partials`).
    fn add(
        core: &mut WindowCore<K, T, A>,
        batch: &mut Vec<Record<Self>>,
        records: &mut Vec<Record<(K, T)>>,
        fired: &mut Fired<K, A::Out>,
        late: &mut Vec<Record<(K, T)>>,
    ) -> u64;
}

impl<K, T, A> WindowInput<K, T, A> for (K, T)
where
    K: Hash + Eq + Clone + Send + 'static,
    T: Send + 'static,
    A: Aggregate<T>,
{
    fn records(batch: &[Record<Self>]) -> (usize, usize) {
        (batch.len(), 0)
    }
    #[inline]
    fn add(
        core: &mut WindowCore<K, T, A>,
        batch: &mut Vec<Record<Self>>,
        _records: &mut Vec<Record<(K, T)>>,
        fired: &mut Fired<K, A::Out>,
        late: &mut Vec<Record<(K, T)>>,
    ) -> u64 {
        core.add_batch(batch, fired, late);
        0
    }
}

impl<K, T, A> WindowInput<K, T, A> for (K, Partial<T, A::Acc>)
where
    K: Hash + Eq + Clone + Send + 'static,
    T: Send + 'static,
    A: Aggregate<T>,
{
    fn records(batch: &[Record<Self>]) -> (usize, usize) {
        batch.iter().fold((0, 0), |(all, folded), r| match r.value.1 {
            Partial::Record(_) => (all + 1, folded),
            Partial::Combined { records, .. } => (all + records as usize, folded + records as usize),
        })
    }
    #[inline]
    fn add(
        core: &mut WindowCore<K, T, A>,
        batch: &mut Vec<Record<Self>>,
        records: &mut Vec<Record<(K, T)>>,
        fired: &mut Fired<K, A::Out>,
        late: &mut Vec<Record<(K, T)>>,
    ) -> u64 {
        core.add_partials(batch, records, fired, late)
    }
}

/// The window-manager actor (state boxed: actix wants actors `Unpin`).
pub(crate) struct WindowActor<K, T, A, I>(Box<WindowState<K, T, A, I>>)
where
    K: Hash + Eq + Clone + Send + Serialize + DeserializeOwned + 'static,
    T: Send + 'static,
    A: Aggregate<T>,
    I: WindowInput<K, T, A>;

pub(crate) struct WindowState<K, T, A, I>
where
    K: Hash + Eq + Clone + Send + Serialize + DeserializeOwned + 'static,
    T: Send + 'static,
    A: Aggregate<T>,
    I: WindowInput<K, T, A>,
{
    core: WindowCore<K, T, A>,
    inputs: InputTracker,
    out: Outlet<WindowResult<K, A::Out>>,
    late_out: Outlet<(K, T)>,
    fired: Fired<K, A::Out>,
    late: Vec<Record<(K, T)>>,
    /// Records gathered from a batch of partials (reused).
    records: Vec<Record<(K, T)>>,
    options: WindowOptions,
    /// Whether anyone subscribed to late data (otherwise it is only counted).
    late_connected: bool,
    align: Alignment<I>,
    participant: Option<Participant>,
    metrics: Arc<ActorMetrics>,
    /// Where drained input batches go back to the senders.
    pool: Arc<BatchPool<I>>,
    /// The core's watermark, published for the combining edges that feed
    /// this actor (`Target::watermark`).
    published: Arc<AtomicI64>,
    /// A watermark whose windows are still to fire: a downstream mailbox
    /// filled up on the way to it (see `advance`).
    pending: Option<i64>,
    /// End of input came: it goes out once no watermark is pending.
    ending: bool,
    /// Replaying held envelopes after a barrier: a watermark fires all its
    /// windows at once (the envelopes after it cannot wait).
    replaying: bool,
}

impl<K, T, A, I> WindowActor<K, T, A, I>
where
    K: Hash + Eq + Clone + Send + Serialize + DeserializeOwned + 'static,
    T: Send + 'static,
    A: Aggregate<T>,
    I: WindowInput<K, T, A>,
{
    /// Takes part in checkpoints; `restore`: the snapshot to resume from.
    pub(crate) fn checkpointed(&mut self, participant: Participant, restore: Option<&[u8]>) -> Result<(), String> {
        if let Some(bytes) = restore {
            self.0.core.restore(bytes).map_err(|e| format!("{}: {e}", self.0.metrics.name))?;
            // Before any source reads (the start gate): a combining edge
            // whose input was idle when the checkpoint was taken must not
            // fold into windows this watermark has closed.
            self.0.published.store(self.0.core.watermark(), Relaxed);
        }
        self.0.participant = Some(participant);
        Ok(())
    }

    /// Where this actor publishes its watermark (`Target::with_watermark`).
    pub(crate) fn published_watermark(&self) -> Arc<AtomicI64> {
        Arc::clone(&self.0.published)
    }

    pub(crate) fn new(
        windows: Windows,
        options: WindowOptions,
        agg: A,
        inputs: usize,
        out: Outlet<WindowResult<K, A::Out>>,
        late_out: Outlet<(K, T)>,
        metrics: Arc<ActorMetrics>,
        pool: Arc<BatchPool<I>>,
    ) -> Self {
        WindowActor(Box::new(WindowState::new(windows, options, agg, inputs, out, late_out, metrics, pool)))
    }
}

impl<K, T, A, I> WindowState<K, T, A, I>
where
    K: Hash + Eq + Clone + Send + Serialize + DeserializeOwned + 'static,
    T: Send + 'static,
    A: Aggregate<T>,
    I: WindowInput<K, T, A>,
{
    fn new(
        windows: Windows,
        options: WindowOptions,
        agg: A,
        inputs: usize,
        out: Outlet<WindowResult<K, A::Out>>,
        late_out: Outlet<(K, T)>,
        metrics: Arc<ActorMetrics>,
        pool: Arc<BatchPool<I>>,
    ) -> Self {
        let late_connected = late_out.is_connected();
        WindowState {
            core: WindowCore::new(windows, options, agg),
            inputs: InputTracker::new(inputs),
            out,
            late_out,
            fired: Vec::new(),
            late: Vec::new(),
            records: Vec::new(),
            options,
            late_connected,
            align: Alignment::default(),
            participant: None,
            metrics,
            pool,
            published: Arc::new(AtomicI64::new(i64::MIN)),
            pending: None,
            ending: false,
            replaying: false,
        }
    }

    /// Sends what the core produced.
    fn emit(&mut self) {
        if !self.fired.is_empty() {
            self.out.send_batch(&mut self.fired);
        }
        if !self.late.is_empty() {
            self.metrics.late_records.fetch_add(self.late.len() as u64, Relaxed);
            self.late_out.send_batch(&mut self.late);
        }
    }

    fn on_watermark(&mut self, wm: i64) {
        if self.advance(wm) {
            self.reached(wm);
        } else {
            self.pending = Some(wm);
        }
    }

    /// Fires window end by window end towards `wm`, each one's results sent
    /// before the next fires, so that a jump over many windows (end of
    /// input) does not gather them all. Returns `false` if it stopped
    /// because a downstream mailbox is full: the rest fires once it has
    /// room (`resume`), after the receiver (on this thread, often) has taken
    /// what this window sent.
    fn advance(&mut self, wm: i64) -> bool {
        loop {
            let step = self.core.next_step(wm);
            self.core.on_watermark(step, &mut self.fired);
            self.emit();
            if step >= wm {
                return true;
            }
            if !self.replaying && (self.out.is_blocked() || self.late_out.is_blocked()) {
                return false;
            }
        }
    }

    /// Every window up to `wm` has fired: publishes and forwards it.
    fn reached(&mut self, wm: i64) {
        self.published.store(self.core.watermark(), Relaxed);
        self.metrics.open_windows.store(self.core.open_windows() as u64, Relaxed);
        self.metrics.set_watermark(wm);
        // The final watermark goes out with `End` (see `Outlet::end`).
        if wm != i64::MAX {
            self.out.watermark(wm);
            self.late_out.watermark(wm);
        }
    }

    fn block_if_full(&mut self, ctx: &mut Context<WindowActor<K, T, A, I>>) {
        let blocked = join_blocked([self.out.take_blocked(), self.late_out.take_blocked()]);
        match (blocked, self.pending.is_some()) {
            // Nothing else is handled until the watermark is reached.
            (Some(blocked), true) => {
                let metrics = Arc::clone(&self.metrics);
                metrics.block_started();
                ctx.wait(actix::fut::wrap_future::<_, WindowActor<K, T, A, I>>(blocked).map(move |_, act, ctx| {
                    metrics.block_ended();
                    act.0.resume(ctx);
                }));
            }
            // Delivered already (the receiver was quick): go on now.
            (None, true) => self.resume(ctx),
            (blocked, false) => wait_blocked(blocked, &self.metrics, ctx),
        }
    }

    /// Goes on towards the pending watermark (and end of input after it)
    /// once the mailbox that was full has taken what it refused.
    fn resume(&mut self, ctx: &mut Context<WindowActor<K, T, A, I>>) {
        if let Some(wm) = self.pending.take() {
            self.on_watermark(wm);
            if self.pending.is_none() && self.ending {
                self.finish();
            }
        }
        self.flush_if_idle();
        self.block_if_full(ctx);
    }
}

impl<K, T, A, I> WindowState<K, T, A, I>
where
    K: Hash + Eq + Clone + Send + Serialize + DeserializeOwned + 'static,
    T: Send + 'static,
    A: Aggregate<T>,
    I: WindowInput<K, T, A>,
{
    fn started(&mut self, ctx: &mut Context<WindowActor<K, T, A, I>>) {
        self.metrics.actor_started();
        if let Some(every) = self.options.early_every_interval {
            ctx.run_interval(every, |act: &mut WindowActor<K, T, A, I>, ctx| {
                let act = &mut *act.0;
                act.core.fire_early(&mut act.fired);
                act.emit();
                act.out.flush();
                act.block_if_full(ctx);
            });
        }
    }

    fn handle(&mut self, env: Envelope<I>, ctx: &mut Context<WindowActor<K, T, A, I>>) {
        self.metrics.mailbox.taken();
        self.dispatch(env);
        self.flush_if_idle();
        self.block_if_full(ctx);
    }

    /// No more input queued: send partial batches now rather than later.
    fn flush_if_idle(&mut self) {
        if self.metrics.mailbox.len() == 0 {
            self.out.flush();
            self.late_out.flush();
        }
    }

    /// Handles one message, or holds it back while its input is aligned.
    fn dispatch(&mut self, env: Envelope<I>) {
        let Some(env) = self.align.admit(&self.inputs, env) else { return };
        match env.msg {
            Message::Data(mut batch) => {
                let (records, pre) = I::records(&batch);
                self.metrics.add_in(records);
                if pre > 0 {
                    self.metrics.pre_aggregated_in.fetch_add(pre as u64, Relaxed);
                }
                self.inputs.on_data(env.input);
                let lost = I::add(&mut self.core, &mut batch, &mut self.records, &mut self.fired, &mut self.late);
                if lost > 0 {
                    self.metrics.late_records.fetch_add(lost, Relaxed);
                }
                self.pool.put(env.input, batch);
                self.emit();
            }
            msg => {
                match self.inputs.on_message(env.input, &msg) {
                    InputEvent::None => {}
                    InputEvent::Watermark(wm) => self.on_watermark(wm),
                    InputEvent::Idle => {
                        self.out.idle();
                        self.late_out.idle();
                    }
                    InputEvent::Barrier(id) => self.on_barrier(id),
                    InputEvent::End => {
                        self.ending = true;
                        self.on_watermark(i64::MAX);
                        if self.pending.is_none() {
                            self.finish();
                        }
                    }
                }
            }
        }
    }

    /// Sends end of input, after every window has fired.
    fn finish(&mut self) {
        self.out.end();
        self.late_out.end();
        let late = self.core.late_records();
        if late > 0 && !self.late_connected {
            tracing::warn!(actor = %self.metrics.name, late, "late records were counted but not delivered: the job has no late-data sink (WindowedStream::late_data)");
        }
        tracing::debug!(actor = %self.metrics.name, late, "window manager finished");
    }

    /// Every input delivered barrier `id`: the state now holds exactly the
    /// records before it. Snapshot, acknowledge, forward, then replay what
    /// was held back.
    fn on_barrier(&mut self, id: CheckpointId) {
        let (alignment, held) = self.align.complete();
        if let Some(p) = &self.participant {
            p.ack(Ack { id, actor: self.metrics.name.clone(), state: self.core.snapshot(), alignment });
        }
        self.out.barrier(id);
        self.late_out.barrier(id);
        self.replaying = true;
        for env in held {
            self.dispatch(env);
        }
        self.replaying = false;
    }
}

impl<K, T, A, I> Actor for WindowActor<K, T, A, I>
where
    K: Hash + Eq + Clone + Send + Serialize + DeserializeOwned + 'static,
    T: Send + 'static,
    A: Aggregate<T>,
    I: WindowInput<K, T, A>,
{
    type Context = Context<Self>;

    fn started(&mut self, ctx: &mut Context<Self>) {
        self.0.started(ctx);
    }

    fn stopped(&mut self, _ctx: &mut Context<Self>) {
        self.0.metrics.actor_stopped();
    }
}

impl<K, T, A, I> Handler<Envelope<I>> for WindowActor<K, T, A, I>
where
    K: Hash + Eq + Clone + Send + Serialize + DeserializeOwned + 'static,
    T: Send + 'static,
    A: Aggregate<T>,
    I: WindowInput<K, T, A>,
{
    type Result = ();

    fn handle(&mut self, env: Envelope<I>, ctx: &mut Context<Self>) {
        self.0.handle(env, ctx);
    }
}
