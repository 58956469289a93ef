//! The window manager: the shell core around
//! [`crate::window::core::WindowCore`].
//!
//! It receives keyed records `(K, T)` (or pre-aggregated partials) from
//! every upstream instance, feeds records and watermarks to the window
//! core, and sends what fires to its result output and what is late to its
//! late-data output (or, when nobody subscribed to late data, counts them).
//! The shell forwards each watermark after the results it released, so
//! that downstream sees results before the watermark that closed their
//! window.

use std::hash::Hash;
use std::sync::atomic::AtomicI64;
use std::sync::atomic::Ordering::Relaxed;
use std::sync::Arc;
use std::time::Duration;

use serde::de::DeserializeOwned;
use serde::Serialize;

use crate::checkpoint::Snapshot;
use crate::error::{OperatorError, SnapshotError};
use crate::message::{CheckpointId, Record, Timestamp, END_OF_TIME};
use crate::output::outlet::Outlet;
use crate::shell::{Core, Cx};
use crate::window::core::{Fired, WindowCore};
use crate::window::partial::Partial;
use crate::window::{Aggregate, WindowOptions, WindowResult};

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

/// The window manager's core: a window core and its scratch buffers.
pub(crate) struct WindowManager<K, T, A, I>
where
    K: Hash + Eq + Clone + Send + Serialize + DeserializeOwned + 'static,
    T: Send + 'static,
    A: Aggregate<T>,
{
    core: WindowCore<K, T, A>,
    fired: Fired<K, A::Out>,
    late: Vec<Record<(K, T)>>,
    /// Records gathered from a batch of partials (reused).
    records: Vec<Record<(K, T)>>,
    options: WindowOptions,
    /// Whether anyone subscribed to late data (otherwise it is only counted).
    late_connected: bool,
    /// The core's watermark, published for the combining edges that feed
    /// this actor (`Target::watermark`).
    published: Arc<AtomicI64>,
    /// A watermark whose windows are still to fire: a downstream mailbox
    /// filled up on the way to it (see `advance`).
    pending: Option<Timestamp>,
    _input: std::marker::PhantomData<fn(I)>,
}

/// A window manager's two outputs: results, late data.
pub(crate) type WindowOutputs<K, T, R> = (Outlet<WindowResult<K, R>>, Outlet<(K, T)>);

impl<K, T, A, I> WindowManager<K, T, A, I>
where
    K: Hash + Eq + Clone + Send + Serialize + DeserializeOwned + 'static,
    T: Send + 'static,
    A: Aggregate<T>,
    I: WindowInput<K, T, A>,
{
    pub(crate) fn new(core: WindowCore<K, T, A>, options: WindowOptions, late_connected: bool) -> Self {
        WindowManager {
            core,
            fired: Vec::new(),
            late: Vec::new(),
            records: Vec::new(),
            options,
            late_connected,
            published: Arc::new(AtomicI64::new(i64::MIN)),
            pending: None,
            _input: std::marker::PhantomData,
        }
    }

    /// Where this actor publishes its watermark (`Target::with_watermark`).
    pub(crate) fn published_watermark(&self) -> Arc<AtomicI64> {
        Arc::clone(&self.published)
    }

    /// Fires window end by window end towards `wm`, each one's results sent
    /// before the next fires, so that a jump over many windows (end of
    /// input) does not gather them all. Returns `false` if it stopped
    /// because a downstream mailbox is full: the rest fires once it has room
    /// (`Core::resume`), after the receiver — often on this thread — has
    /// taken what this window sent. So at most one window's results wait
    /// in memory for a full mailbox.
    fn advance(&mut self, wm: Timestamp, cx: &mut Cx<'_, Self>) -> bool {
        loop {
            let step = self.core.next_step(wm);
            self.core.on_watermark(step, &mut self.fired);
            self.emit(cx);
            if step >= wm {
                return true;
            }
            if cx.out().0.is_blocked() || cx.out().1.is_blocked() {
                return false;
            }
        }
    }

    /// Sends what the core produced.
    fn emit(&mut self, cx: &mut Cx<'_, Self>) {
        let out = cx.out();
        if !self.fired.is_empty() {
            out.0.send_batch(&mut self.fired);
        }
        if !self.late.is_empty() {
            let n = self.late.len() as u64;
            out.1.send_batch(&mut self.late);
            cx.count_late(n);
        }
    }
}

impl<K, T, A, I> Core for WindowManager<K, T, A, I>
where
    K: Hash + Eq + Clone + Send + Serialize + DeserializeOwned + 'static,
    T: Send + 'static,
    A: Aggregate<T>,
    I: WindowInput<K, T, A>,
{
    type In = I;
    type Outputs = WindowOutputs<K, T, A::Out>;

    fn weigh(batch: &[Record<I>]) -> (usize, usize) {
        I::records(batch)
    }

    fn on_batch(&mut self, batch: &mut Vec<Record<I>>, cx: &mut Cx<'_, Self>) -> Result<(), OperatorError> {
        let lost = I::add(&mut self.core, batch, &mut self.records, &mut self.fired, &mut self.late);
        if lost > 0 {
            cx.count_late(lost);
        }
        self.emit(cx);
        Ok(())
    }

    fn on_watermark(&mut self, wm: Timestamp, cx: &mut Cx<'_, Self>) -> Result<(), OperatorError> {
        if self.advance(wm, cx) {
            self.published.store(self.core.watermark(), Relaxed);
            cx.metrics().open_windows.store(self.core.open_windows() as u64, Relaxed);
        } else {
            self.pending = Some(wm);
        }
        Ok(())
    }

    fn pending(&self) -> bool {
        self.pending.is_some()
    }

    fn resume(&mut self, cx: &mut Cx<'_, Self>) -> Result<(), OperatorError> {
        match self.pending.take() {
            Some(wm) => self.on_watermark(wm, cx),
            None => Ok(()),
        }
    }

    fn on_end(&mut self, cx: &mut Cx<'_, Self>) -> Result<(), OperatorError> {
        let late = self.core.late_records();
        if late > 0 && !self.late_connected {
            tracing::warn!(actor = %cx.actor(), late, "late records were counted but not delivered: the job has no late-data sink (WindowedStream::late_data)");
        }
        tracing::debug!(actor = %cx.actor(), late, "window manager finished");
        debug_assert_eq!(self.core.watermark(), END_OF_TIME);
        Ok(())
    }

    fn snapshot(&mut self, _id: CheckpointId) -> Result<Snapshot, OperatorError> {
        Ok(Snapshot::from_bytes(self.core.snapshot()))
    }

    fn restore(&mut self, _id: CheckpointId, state: Snapshot) -> Result<(), OperatorError> {
        self.core
            .restore(state.as_bytes())
            .map_err(|reason| SnapshotError::Mismatch { what: "window state".into(), reason })?;
        // Before any source reads (the start gate): a combining edge whose
        // input was idle when the checkpoint was taken must not fold into
        // windows this watermark has closed.
        self.published.store(self.core.watermark(), Relaxed);
        Ok(())
    }

    fn tick_interval(&self) -> Option<Duration> {
        self.options.early_firing_interval
    }

    fn on_tick(&mut self, cx: &mut Cx<'_, Self>) -> Result<(), OperatorError> {
        self.core.fire_early(&mut self.fired);
        self.emit(cx);
        cx.out().0.flush();
        Ok(())
    }
}
