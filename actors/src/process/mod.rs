//! Keyed process functions: per-key state and timers (Flink's
//! `KeyedProcessFunction`).
//!
//! A [`KeyedProcess`] sees a keyed stream's records one at a time, each
//! with its key's state — any `serde` type, typically a struct of
//! [`ValueState`], [`ListState`] and [`MapState`] fields — and may register
//! timers for that key: event-time timers fire once the watermark reaches
//! them, processing-time timers once the wall clock does. Its state can
//! expire: with [`KeyedProcess::state_ttl`], a key's state not written for
//! that long (processing time) is dropped, and reads as new. State, timers
//! and the expiry clock are part of every checkpoint. Records of one key
//! always reach the same instance, in order.
//!
//! [`KeyedProcessHarness`] drives a function without actix: records,
//! watermarks, processing time, snapshot and restore.

mod core;
mod harness;
mod state;
#[cfg(test)]
mod tests;

pub(crate) use self::core::ProcessCore;

/// A fresh engine around `f` (for the builder).
pub(crate) fn core_engine<F: KeyedProcess>(f: F) -> self::core::Engine<F> {
    self::core::Engine::new(f)
}
pub use harness::KeyedProcessHarness;
pub use state::{ListState, MapState, ValueState};

use std::hash::Hash;
use std::time::Duration;

use serde::de::DeserializeOwned;
use serde::Serialize;

use crate::message::{Record, Timestamp};

/// Which clock a timer follows.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
pub enum TimeDomain {
    /// Event time: fires when the watermark reaches it.
    EventTime,
    /// Processing time (milliseconds since the Unix epoch): fires when the
    /// wall clock reaches it.
    ProcessingTime,
}

/// A function over a keyed stream with per-key state and timers. Called on
/// its actor's thread, one call at a time; never block.
pub trait KeyedProcess: Send + 'static {
    /// The key type (the keyed stream's).
    type Key: Hash + Eq + Clone + Send + Serialize + DeserializeOwned + 'static;
    /// Input record type.
    type In: Send + 'static;
    /// Output record type.
    type Out: Send + 'static;
    /// One key's state, made with `Default` for a key seen first (or whose
    /// state was cleared or expired).
    type State: Default + Serialize + DeserializeOwned + Send + 'static;

    /// Handles one record of key `ctx.key()`.
    fn process(&mut self, record: Record<Self::In>, ctx: &mut KeyedContext<'_, Self>);

    /// A timer of key `ctx.key()` registered for `at` in `domain` is due.
    /// Default: nothing.
    fn on_timer(&mut self, at: Timestamp, domain: TimeDomain, ctx: &mut KeyedContext<'_, Self>) {
        let _ = (at, domain, ctx);
    }

    /// How long a key's state lives without being written (processing
    /// time); `None`, the default: for ever (until cleared).
    fn state_ttl(&self) -> Option<Duration> {
        None
    }
}

/// Timer registrations (`true`) and deletions (`false`) a hook asked
/// for, in order.
#[derive(Debug, Default)]
pub(crate) struct TimerRequests<K> {
    pub(crate) ops: Vec<(bool, TimeDomain, Timestamp, K)>,
}

/// What a [`KeyedProcess`] hook can see and do: its key and that key's
/// state, timers, output, and the clocks.
pub struct KeyedContext<'a, F: KeyedProcess + ?Sized> {
    pub(crate) key: &'a F::Key,
    pub(crate) state: &'a mut Option<F::State>,
    pub(crate) written: &'a mut bool,
    pub(crate) timers: &'a mut TimerRequests<F::Key>,
    pub(crate) out: &'a mut Vec<Record<F::Out>>,
    pub(crate) timestamp: Timestamp,
    pub(crate) watermark: Timestamp,
    pub(crate) now: Timestamp,
}

impl<F: KeyedProcess + ?Sized> std::fmt::Debug for KeyedContext<'_, F> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("KeyedContext").field("timestamp", &self.timestamp).field("watermark", &self.watermark).finish()
    }
}

impl<F: KeyedProcess + ?Sized> KeyedContext<'_, F> {
    /// The current key.
    pub fn key(&self) -> &F::Key {
        self.key
    }

    /// The key's state for reading and writing (made with `Default` if it
    /// has none). Counts as a write for the state's time to live.
    pub fn state(&mut self) -> &mut F::State {
        *self.written = true;
        self.state.get_or_insert_with(F::State::default)
    }

    /// The key's state for reading only, if it has any (does not renew its
    /// time to live).
    pub fn peek(&self) -> Option<&F::State> {
        self.state.as_ref()
    }

    /// Drops the key's state (it reads as new afterwards).
    pub fn clear(&mut self) {
        *self.state = None;
    }

    /// The current record's timestamp, or the firing timer's time.
    pub fn timestamp(&self) -> Timestamp {
        self.timestamp
    }

    /// The current input watermark.
    pub fn watermark(&self) -> Timestamp {
        self.watermark
    }

    /// The current processing time, ms since the Unix epoch (the
    /// harness's clock under [`KeyedProcessHarness`]).
    pub fn processing_time(&self) -> Timestamp {
        self.now
    }

    /// Emits `value` at event time `ts`. (A record behind the watermark
    /// that leaves this operator is late for the next.)
    pub fn emit(&mut self, ts: Timestamp, value: F::Out) {
        self.out.push(Record { ts, value });
    }

    /// Calls [`KeyedProcess::on_timer`] for this key once the watermark
    /// reaches `at` (once per key and time, however often registered).
    pub fn register_event_timer(&mut self, at: Timestamp) {
        self.timers.ops.push((true, TimeDomain::EventTime, at, self.key.clone()));
    }

    /// Calls [`KeyedProcess::on_timer`] for this key once the processing
    /// time reaches `at` (ms since the Unix epoch).
    pub fn register_processing_timer(&mut self, at: Timestamp) {
        self.timers.ops.push((true, TimeDomain::ProcessingTime, at, self.key.clone()));
    }

    /// Cancels this key's timer at `at` in `domain`, if any.
    pub fn delete_timer(&mut self, domain: TimeDomain, at: Timestamp) {
        self.timers.ops.push((false, domain, at, self.key.clone()));
    }
}
