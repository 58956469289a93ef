//! Per-actor counters and gauges, readable while a job runs.
//!
//! Every actor of a job owns one [`ActorMetrics`] (atomics behind an `Arc`)
//! and updates it per batch, never per record. The job keeps them in a
//! `DashMap` keyed by actor name so that a [`crate::JobHandle`] — or a
//! dashboard on another thread — can read them at any time without stopping
//! anyone. Reading gives a [`MetricsSnapshot`].

pub(crate) mod mailbox;

use std::sync::atomic::{AtomicI64, AtomicU64, Ordering::Relaxed};
use std::sync::Arc;
use std::time::{Duration, Instant};

use dashmap::DashMap;
use serde::Serialize;

/// The role an actor plays in the job graph.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
pub enum ActorKind {
    /// Pulls records from a source.
    Source,
    /// Runs a custom operator.
    Operator,
    /// Keyed window manager.
    Window,
    /// Delivers results.
    Sink,
}

/// The live counters of one actor. Cheap to update (relaxed atomics).
#[derive(Debug)]
pub(crate) struct ActorMetrics {
    pub(crate) name: String,
    pub(crate) kind: ActorKind,
    pub(crate) records_in: AtomicU64,
    pub(crate) records_out: AtomicU64,
    pub(crate) batches_in: AtomicU64,
    pub(crate) batches_out: AtomicU64,
    /// Time spent waiting on a full downstream mailbox.
    backpressure: WaitClock,
    /// Time a source instance waited for the other instances of its source
    /// to catch up in event time (watermark alignment).
    alignment: WaitClock,
    epoch: Instant,
    pub(crate) watermark: AtomicI64,
    /// Newest event time read (sources only; `i64::MIN` before the first).
    pub(crate) max_event_time: AtomicI64,
    pub(crate) late_records: AtomicU64,
    /// Records that arrived folded into partial aggregates (pre-aggregation).
    pub(crate) pre_aggregated_in: AtomicU64,
    pub(crate) dead_letters: AtomicU64,
    pub(crate) open_windows: AtomicU64,
    /// Messages queued in this actor's mailbox (raised by senders, lowered
    /// by this actor when it takes a message).
    pub(crate) mailbox: Arc<crate::metrics::mailbox::MailboxGauge>,
    pub(crate) mailbox_capacity: usize,
    /// `actor{actor, kind}`: open while the actor runs.
    span: std::sync::Mutex<Option<tracing::Span>>,
}

impl ActorMetrics {
    pub(crate) fn new(name: String, kind: ActorKind, mailbox_capacity: usize) -> Arc<Self> {
        Arc::new(ActorMetrics {
            name,
            kind,
            records_in: AtomicU64::new(0),
            records_out: AtomicU64::new(0),
            batches_in: AtomicU64::new(0),
            batches_out: AtomicU64::new(0),
            backpressure: WaitClock::default(),
            alignment: WaitClock::default(),
            epoch: Instant::now(),
            watermark: AtomicI64::new(i64::MIN),
            max_event_time: AtomicI64::new(i64::MIN),
            late_records: AtomicU64::new(0),
            pre_aggregated_in: AtomicU64::new(0),
            dead_letters: AtomicU64::new(0),
            open_windows: AtomicU64::new(0),
            mailbox: Arc::default(),
            mailbox_capacity,
            span: std::sync::Mutex::new(None),
        })
    }

    pub(crate) fn add_in(&self, records: usize) {
        self.records_in.fetch_add(records as u64, Relaxed);
        self.batches_in.fetch_add(1, Relaxed);
    }

    pub(crate) fn add_out(&self, records: usize) {
        self.records_out.fetch_add(records as u64, Relaxed);
        self.batches_out.fetch_add(1, Relaxed);
    }

    /// The actor has started: opens its lifecycle span (`actor{actor,
    /// kind}`, at info level) and logs `actor started` (debug) in it.
    pub(crate) fn actor_started(&self) {
        let span = tracing::info_span!("actor", actor = %self.name, kind = ?self.kind);
        span.in_scope(|| tracing::debug!("actor started"));
        if let Ok(mut slot) = self.span.lock() {
            *slot = Some(span);
        }
    }

    /// The actor has stopped: logs `actor stopped` with its totals and
    /// closes its span.
    pub(crate) fn actor_stopped(&self) {
        let span = self.span.lock().ok().and_then(|mut s| s.take()).unwrap_or_else(tracing::Span::none);
        let m = self.snapshot();
        span.in_scope(|| {
            tracing::debug!(
                records_in = m.records_in,
                records_out = m.records_out,
                batches_in = m.batches_in,
                batches_out = m.batches_out,
                backpressured_ms = m.backpressured.as_millis() as u64,
                "actor stopped"
            )
        });
    }

    /// The actor starts waiting for a full downstream mailbox.
    pub(crate) fn block_started(&self) {
        self.backpressure.start(self.epoch);
    }

    /// The wait that [`Self::block_started`] began is over: its time counts
    /// as backpressure.
    pub(crate) fn block_ended(&self) {
        self.backpressure.end(self.epoch);
    }

    /// A source instance stops reading until the others catch up.
    pub(crate) fn alignment_started(&self) {
        self.alignment.start(self.epoch);
    }

    /// The wait that [`Self::alignment_started`] began is over.
    pub(crate) fn alignment_ended(&self) {
        self.alignment.end(self.epoch);
    }

    pub(crate) fn observe_event_time(&self, ts: i64) {
        self.max_event_time.fetch_max(ts, Relaxed);
    }

    pub(crate) fn set_watermark(&self, wm: i64) {
        self.watermark.store(wm, Relaxed);
    }

    /// A consistent-enough copy of the counters.
    pub(crate) fn snapshot(&self) -> MetricsSnapshot {
        MetricsSnapshot {
            name: self.name.clone(),
            kind: self.kind,
            records_in: self.records_in.load(Relaxed),
            records_out: self.records_out.load(Relaxed),
            batches_in: self.batches_in.load(Relaxed),
            batches_out: self.batches_out.load(Relaxed),
            backpressured: self.backpressure.total(self.epoch),
            blocked: self.backpressure.waiting(),
            alignment_wait: self.alignment.total(self.epoch),
            watermark: self.watermark.load(Relaxed),
            max_event_time: self.max_event_time.load(Relaxed),
            late_records: self.late_records.load(Relaxed),
            pre_aggregated_in: self.pre_aggregated_in.load(Relaxed),
            dead_letters: self.dead_letters.load(Relaxed),
            open_windows: self.open_windows.load(Relaxed),
            mailbox_len: self.mailbox.len(),
            mailbox_capacity: self.mailbox_capacity,
        }
    }
}

/// Time spent in one kind of wait: the total of the waits that ended, and
/// when the current one began (ns since the actor's epoch, plus one; 0 =
/// not waiting), so that a reader sees a long wait while it lasts, not only
/// when it ends.
#[derive(Debug, Default)]
struct WaitClock {
    total_ns: AtomicU64,
    since: AtomicU64,
}

impl WaitClock {
    fn start(&self, epoch: Instant) {
        self.since.store(epoch.elapsed().as_nanos() as u64 + 1, Relaxed);
    }

    fn end(&self, epoch: Instant) {
        let since = self.since.swap(0, Relaxed);
        if since != 0 {
            let now = epoch.elapsed().as_nanos() as u64 + 1;
            self.total_ns.fetch_add(now.saturating_sub(since), Relaxed);
        }
    }

    fn waiting(&self) -> bool {
        self.since.load(Relaxed) != 0
    }

    /// Waited so far, including a wait in progress.
    fn total(&self, epoch: Instant) -> Duration {
        let done = self.total_ns.load(Relaxed);
        let since = self.since.load(Relaxed);
        let ongoing = if since == 0 { 0 } else { (epoch.elapsed().as_nanos() as u64 + 1).saturating_sub(since) };
        Duration::from_nanos(done + ongoing)
    }
}

/// The counters of one actor at one moment.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct MetricsSnapshot {
    /// Actor name: `<node>#<instance>`.
    pub name: String,
    /// Its role.
    pub kind: ActorKind,
    /// Records received (sources: records read from the source).
    pub records_in: u64,
    /// Records sent downstream (sinks: records delivered).
    pub records_out: u64,
    /// Batches received.
    pub batches_in: u64,
    /// Batches sent.
    pub batches_out: u64,
    /// Total time spent waiting for a full downstream mailbox, including a
    /// wait still in progress.
    pub backpressured: Duration,
    /// Whether the actor is waiting for a full downstream mailbox right now.
    pub blocked: bool,
    /// Total time a source instance stopped reading to let the other
    /// instances of its source catch up in event time
    /// ([`crate::WatermarkStrategy::with_alignment`]), including a wait
    /// still in progress; zero for other actors.
    pub alignment_wait: Duration,
    /// Current event-time watermark (`i64::MIN` before the first).
    pub watermark: i64,
    /// Newest event time read (sources; `i64::MIN` for other actors and
    /// before the first record).
    pub max_event_time: i64,
    /// Records routed to the late-data output (window managers).
    pub late_records: u64,
    /// Of `records_in`, those that arrived already folded into partial
    /// aggregates by the upstream edge (window managers; see
    /// `WindowedStream::pre_aggregate`).
    pub pre_aggregated_in: u64,
    /// Records routed to the dead-letter output (sources).
    pub dead_letters: u64,
    /// (key, window) states held (window managers).
    pub open_windows: u64,
    /// Messages waiting in the mailbox.
    pub mailbox_len: usize,
    /// The mailbox's capacity in messages.
    pub mailbox_capacity: usize,
}

/// The metrics of every actor of a job, by name.
#[derive(Debug, Default, Clone)]
pub(crate) struct Registry {
    actors: Arc<DashMap<String, Arc<ActorMetrics>>>,
}

impl Registry {
    pub(crate) fn register(&self, m: &Arc<ActorMetrics>) {
        self.actors.insert(m.name.clone(), Arc::clone(m));
    }

    pub(crate) fn snapshot(&self) -> JobMetrics {
        let mut actors: Vec<MetricsSnapshot> = self.actors.iter().map(|e| e.value().snapshot()).collect();
        actors.sort_by(|a, b| a.name.cmp(&b.name));
        JobMetrics { actors }
    }
}

/// Every actor's counters at one moment, sorted by actor name.
#[derive(Debug, Clone, Default, Serialize)]
pub struct JobMetrics {
    /// One entry per actor.
    pub actors: Vec<MetricsSnapshot>,
}

impl JobMetrics {
    /// Returns an iterator over the actors of one kind, in name order.
    pub fn of_kind(&self, kind: ActorKind) -> impl Iterator<Item = &MetricsSnapshot> {
        self.actors.iter().filter(move |a| a.kind == kind)
    }

    /// Returns an iterator over the instances of node `node` (the actors
    /// named `<node>#<i>`), in name order.
    pub fn of_node<'a>(&'a self, node: &'a str) -> impl Iterator<Item = &'a MetricsSnapshot> {
        self.actors.iter().filter(move |a| a.name.split('#').next() == Some(node))
    }

    /// Records read by all sources.
    pub fn source_records(&self) -> u64 {
        self.of_kind(ActorKind::Source).map(|a| a.records_in).sum()
    }

    /// Records delivered by all sinks.
    pub fn sink_records(&self) -> u64 {
        self.of_kind(ActorKind::Sink).map(|a| a.records_out).sum()
    }

    /// Late records over all window managers.
    pub fn late_records(&self) -> u64 {
        self.actors.iter().map(|a| a.late_records).sum()
    }

    /// Records that reached window managers folded into partial aggregates
    /// (summed over them; see `WindowedStream::pre_aggregate`).
    pub fn pre_aggregated_records(&self) -> u64 {
        self.actors.iter().map(|a| a.pre_aggregated_in).sum()
    }

    /// Newest event time read by any source (`i64::MIN` before the first).
    pub fn max_event_time(&self) -> i64 {
        self.actors.iter().map(|a| a.max_event_time).max().unwrap_or(i64::MIN)
    }

    /// How far an actor's watermark trails the newest event time read by the
    /// sources, in event-time ms (`None` before both exist). This is the
    /// "how far behind is event time here" figure: the sources' own lag is
    /// their out-of-orderness bound; a growing lag downstream means records
    /// are queued in front of that actor.
    pub fn watermark_lag(&self, actor: &MetricsSnapshot) -> Option<i64> {
        let newest = self.max_event_time();
        if newest == i64::MIN || actor.watermark == i64::MIN {
            return None;
        }
        Some(newest.saturating_sub(actor.watermark).max(0))
    }

    /// Dead letters over all sources.
    pub fn dead_letters(&self) -> u64 {
        self.actors.iter().map(|a| a.dead_letters).sum()
    }
}
