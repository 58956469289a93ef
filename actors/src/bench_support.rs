//! Thin handles on runtime internals, for the criterion benches in
//! `actors/benches/` only (cargo feature `bench-internals`). Not a public
//! API: nothing here is stable, and a user never needs it.
//!
//! Each wrapper owns the real internal type and forwards to it, so a bench
//! measures the code the runtime runs, not a copy of it.

#![allow(missing_docs, missing_debug_implementations, unreachable_pub)]

use std::hash::Hash;
use std::sync::Arc;

use actix::{Actor, Context, Handler};
use serde::de::DeserializeOwned;
use serde::Serialize;

use crate::message::{Envelope, Record, StreamElement, Timestamp};
use crate::metrics::mailbox::MailboxGauge;
use crate::metrics::{ActorKind, ActorMetrics};
use crate::output::edge::KeyBy;
use crate::output::pool::BatchPool;
use crate::output::{Emit, Target};
use crate::window::core::{Fired, WindowCore};
use crate::window::{Aggregate, WindowOptions, Windows};

/// The window manager's functional core (`WindowCore`), with its output
/// buffers.
pub struct WindowBench<K, T, A: Aggregate<T>> {
    core: WindowCore<K, T, A>,
    fired: Fired<K, A::Out>,
    late: Vec<Record<(K, T)>>,
}

impl<K, T, A> WindowBench<K, T, A>
where
    K: Hash + Eq + Clone + Send + Serialize + DeserializeOwned + 'static,
    T: 'static,
    A: Aggregate<T>,
{
    /// A core for `windows` (default options: no lateness, no early firing).
    pub fn new(windows: Windows, agg: A) -> Self {
        WindowBench {
            core: WindowCore::new(windows, WindowOptions::default(), agg),
            fired: Vec::new(),
            late: Vec::new(),
        }
    }

    /// Adds every record of `batch` (leaves it empty); returns the number
    /// of late records.
    #[inline]
    pub fn add_batch(&mut self, batch: &mut Vec<Record<(K, T)>>) -> usize {
        self.core.add_batch(batch, &mut self.fired, &mut self.late);
        let late = self.late.len();
        self.late.clear();
        late
    }

    /// Advances the watermark; returns the number of results fired (and
    /// discards them).
    #[inline]
    pub fn on_watermark(&mut self, wm: Timestamp) -> usize {
        self.core.on_watermark(wm, &mut self.fired);
        let n = self.fired.len();
        self.fired.clear();
        n
    }

    /// (key, window) states held (panes for pane-based sliding windows).
    pub fn open_windows(&self) -> usize {
        self.core.open_windows()
    }
}

/// The partition of `key` among `p` (the key-by edge's hash).
#[inline]
pub fn partition<K: Hash + ?Sized>(key: &K, p: usize) -> usize {
    crate::output::edge::partition(key, p)
}

/// Receives envelopes and drops them, handing each batch buffer back to
/// the pool its senders take from (as a window manager does).
struct Drain<T: Send + 'static> {
    pool: Arc<BatchPool<T>>,
    queued: Arc<MailboxGauge>,
}

impl<T: Send + 'static> Actor for Drain<T> {
    type Context = Context<Self>;
}

impl<T: Send + 'static> Handler<Envelope<T>> for Drain<T> {
    type Result = ();
    fn handle(&mut self, env: Envelope<T>, _ctx: &mut Context<Self>) {
        self.queued.taken();
        if let StreamElement::Data(batch) = env.element {
            self.pool.put(env.input, batch);
        }
    }
}

/// The key-by edge (`KeyBy`) to `p` destinations, each an actor on an
/// Arbiter of its own that drops what it receives. Sends happen for real
/// (`try_send`) when a destination's batch is full; when a mailbox is
/// full, [`KeyByBench::data`] waits for room as an actor would.
pub struct KeyByBench<K: Send + 'static, T: Send + 'static> {
    edge: KeyBy<K, T>,
    arbiters: Vec<actix::Arbiter>,
    runtime: tokio::runtime::Runtime,
}

impl<K, T> KeyByBench<K, T>
where
    K: Hash + Send + 'static,
    T: Send + 'static,
{
    /// Call inside an actix `System` (`actix::System::new()` suffices: the
    /// destinations run on Arbiters of their own).
    pub fn new<F>(p: usize, key_fn: F, batch_size: usize, mailbox_capacity: usize) -> Self
    where
        F: Fn(&T) -> K + Clone + Send + 'static,
    {
        let mut arbiters = Vec::new();
        let mut targets = Vec::new();
        for _ in 0..p {
            let arbiter = actix::Arbiter::new();
            let pool: Arc<BatchPool<(K, T)>> = Arc::default();
            let queued: Arc<MailboxGauge> = Arc::default();
            let (theirs, gauge) = (Arc::clone(&pool), Arc::clone(&queued));
            let addr = Drain::start_in_arbiter(&arbiter.handle(), move |ctx| {
                ctx.set_mailbox_capacity(mailbox_capacity);
                Drain { pool: theirs, queued: gauge }
            });
            targets.push(Target::with_pool(addr.recipient(), &queued, pool));
            arbiters.push(arbiter);
        }
        let metrics = ActorMetrics::new("bench#0".into(), ActorKind::Operator, mailbox_capacity);
        let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build().expect("a tokio runtime");
        let out = crate::output::edge::Partitioned::new(targets, 0, batch_size, metrics);
        let edge = KeyBy::new(out, crate::output::keys::key_maker(key_fn)());
        KeyByBench { edge, arbiters, runtime }
    }

    /// Partitions `batch` (leaves it empty), sending full batches.
    #[inline]
    pub fn data(&mut self, batch: &mut Vec<Record<T>>) {
        self.edge.data(batch);
        if let Some(blocked) = self.edge.take_blocked() {
            self.runtime.block_on(blocked);
        }
    }
}

impl<K: Send + 'static, T: Send + 'static> Drop for KeyByBench<K, T> {
    fn drop(&mut self) {
        for a in &self.arbiters {
            a.stop();
        }
    }
}
