//! [`KeyedProcessHarness`]: a keyed process function without actix.

use crate::checkpoint::Snapshot;
use crate::error::SnapshotError;
use crate::message::{Record, Timestamp};
use crate::process::core::Engine;
use crate::process::KeyedProcess;

/// Drives a [`KeyedProcess`] as its actor would — records, watermarks
/// (firing event-time timers), processing time (firing processing-time
/// timers and expiring state), snapshot and restore — and collects what
/// it emits. Processing time is the harness's own clock, starting at 0.
///
/// ```
/// use weir_actors::process::{KeyedContext, KeyedProcess, KeyedProcessHarness, TimeDomain, ValueState};
/// use weir_actors::Record;
///
/// /// Counts each key's records and reports the count 10 ms (event time)
/// /// after the first.
/// struct Counter;
/// impl KeyedProcess for Counter {
///     type Key = u32;
///     type In = ();
///     type Out = (u32, u64);
///     type State = ValueState<u64>;
///     fn process(&mut self, r: Record<()>, cx: &mut KeyedContext<'_, Self>) {
///         let n = cx.state().get_or_insert_with(|| 0);
///         *n += 1;
///         if *n == 1 {
///             cx.register_event_timer(r.ts + 10);
///         }
///     }
///     fn on_timer(&mut self, at: i64, _d: TimeDomain, cx: &mut KeyedContext<'_, Self>) {
///         let n = cx.state().get().copied().unwrap_or(0);
///         let key = *cx.key();
///         cx.emit(at, (key, n));
///         cx.clear();
///     }
/// }
///
/// let mut h = KeyedProcessHarness::new(Counter);
/// h.process(7, 100, ());
/// h.process(7, 105, ());
/// h.watermark(109);
/// assert!(h.take_output().is_empty());
/// h.watermark(110);
/// assert_eq!(h.take_output(), vec![Record::new(110, (7, 2))]);
/// assert_eq!(h.keys(), 0);
/// ```
#[derive(Debug)]
pub struct KeyedProcessHarness<F: KeyedProcess> {
    engine: Engine<F>,
    now: Timestamp,
    out: Vec<Record<F::Out>>,
}

impl<F: KeyedProcess> KeyedProcessHarness<F> {
    /// Wraps `f`, at processing time 0 and watermark `i64::MIN`.
    pub fn new(f: F) -> Self {
        KeyedProcessHarness { engine: Engine::new(f), now: 0, out: Vec::new() }
    }

    fn collect(&mut self) {
        self.out.append(&mut self.engine.out);
    }

    /// Feeds one record of `key` at event time `ts`.
    pub fn process(&mut self, key: F::Key, ts: Timestamp, value: F::In) {
        self.engine.record(key, Record { ts, value }, self.now);
        self.collect();
    }

    /// Advances the watermark (firing due event-time timers); a watermark
    /// not above the current one is ignored, as the actor does.
    pub fn watermark(&mut self, wm: Timestamp) {
        self.engine.advance(wm, self.now);
        self.collect();
    }

    /// Sets the processing time to `now` (ms) and does what the actor's
    /// clock tick does: fires due processing-time timers, drops expired
    /// state.
    pub fn set_processing_time(&mut self, now: Timestamp) {
        self.now = now;
        self.engine.tick(now);
        self.collect();
    }

    /// Ends the input: the final watermark fires every event-time timer.
    pub fn end(&mut self) {
        self.watermark(i64::MAX);
    }

    /// What a checkpoint taken now would hold (state, timers, watermark).
    pub fn snapshot(&self) -> Result<Snapshot, SnapshotError> {
        self.engine.snapshot()
    }

    /// A harness around `f` restored from `snapshot`, as a resumed job
    /// would start it, at processing time `now`.
    pub fn restored(f: F, snapshot: &Snapshot, now: Timestamp) -> Result<Self, SnapshotError> {
        let mut h = KeyedProcessHarness { engine: Engine::new(f), now, out: Vec::new() };
        h.engine.restore(snapshot)?;
        Ok(h)
    }

    /// Takes what was emitted so far.
    pub fn take_output(&mut self) -> Vec<Record<F::Out>> {
        std::mem::take(&mut self.out)
    }

    /// Keys holding state.
    pub fn keys(&self) -> usize {
        self.engine.keys()
    }

    /// The state of `key`, if any.
    pub fn state(&self, key: &F::Key) -> Option<&F::State> {
        self.engine.state(key)
    }

    /// The function.
    pub fn function(&self) -> &F {
        &self.engine.f
    }
}
