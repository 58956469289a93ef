//! How an actor sends: batching, partitioning, fused stateless stages, and
//! backpressure on a full mailbox.
//!
//! An actor writes its output records into a `Box<dyn Emit<T>>` once per
//! batch. What is behind it is decided when the topology is built: zero or
//! more fused stateless stages (`map`, `filter`, `flat_map`, see [`stage`])
//! and then one edge ([`edge`]) that cuts the records into per-destination
//! batches and offers them with `try_send`.
//!
//! Backpressure: when a destination's mailbox is full, `try_send` hands the
//! message back; the edge keeps it (in order, behind anything already held
//! for that destination) and [`Emit::take_blocked`] returns a future that
//! delivers what was held. The actor waits on that future with
//! `ctx.wait(..)`, so it stops handling its own mailbox until the receiver
//! has room — its own senders then fill up in turn. The future retries
//! `try_send` on the same sender each time the receiver takes a message
//! from its mailbox ([`MailboxGauge::room`]): no spinning, no
//! sleeping. (Every receiver is a weir actor, which signals room for every
//! message it takes.)
//!
//! Watermarks on a partitioning edge are held back until each
//! destination's next full batch ([`HeldWatermarks`]), so that a watermark
//! after every source batch does not cut every batch short.

pub(crate) mod broadcast;
pub(crate) mod edge;
pub(crate) mod keys;
pub(crate) mod outlet;
pub(crate) mod pool;
pub(crate) mod stage;

use std::future::Future;
use std::pin::Pin;
use std::sync::atomic::AtomicI64;
use std::sync::{Arc, OnceLock};
use std::time::{Duration, Instant};

use actix::dev::SendError;
use actix::Recipient;

use crate::message::{CheckpointId, Envelope, Record, SharedBatch, StreamElement, Timestamp};
use crate::metrics::mailbox::MailboxGauge;
use crate::metrics::ActorMetrics;
use pool::BatchPool;

/// A control message, broadcast to every destination after pending data.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Control {
    Watermark(Timestamp),
    Idle,
    Barrier(CheckpointId),
    End,
}

impl Control {
    pub(crate) fn into_message<T>(self) -> StreamElement<T> {
        match self {
            Control::Watermark(t) => StreamElement::Watermark(t),
            Control::Idle => StreamElement::Idle,
            Control::Barrier(id) => StreamElement::Barrier(id),
            Control::End => StreamElement::End,
        }
    }
}

/// A future that completes when every held message has been delivered.
pub(crate) type Blocked = Pin<Box<dyn Future<Output = ()> + 'static>>;

/// The output side of an actor, for one output port.
pub(crate) trait Emit<T>: Send + 'static {
    /// Takes every record out of `batch` (leaving it empty, capacity kept).
    fn data(&mut self, batch: &mut Vec<Record<T>>);
    /// Sends pending partial batches, then `ctl` to every destination.
    fn control(&mut self, ctl: Control);
    /// Sends pending partial batches.
    fn flush(&mut self);
    /// Messages refused with `Full`, to be delivered before anything else;
    /// `None` when nothing is held.
    fn take_blocked(&mut self) -> Option<Blocked>;
    /// Whether it holds messages a full mailbox refused (what
    /// [`Emit::take_blocked`] would hand over); an edge that never holds
    /// any keeps the default.
    fn is_blocked(&self) -> bool {
        false
    }
    /// Whether it passes batches on whole, so that a fan-out may hand it a
    /// [`SharedBatch`] ([`Emit::shared`]) instead of a copy. Default: no.
    fn takes_shared(&self) -> bool {
        false
    }
    /// Sends a batch shared with other outputs. The default takes the
    /// records (a copy while others hold the batch) and sends them as
    /// [`Emit::data`] does.
    fn shared(&mut self, batch: SharedBatch<T>) {
        let mut records = batch.into_vec();
        self.data(&mut records);
    }
}

/// One downstream actor instance.
pub(crate) struct Target<T: Send + 'static> {
    /// One actix sender: its own slot beyond the capacity, parked when it
    /// met a full mailbox. Shared (not cloned) with the future that
    /// delivers held messages, so that it stays one sender with one slot.
    pub(crate) recipient: Arc<Recipient<Envelope<T>>>,
    /// The receiver's mailbox gauge.
    pub(crate) queued: Arc<MailboxGauge>,
    /// Where the receiver hands back drained batch buffers (a receiver
    /// that does not simply leaves it empty).
    pub(crate) pool: Arc<BatchPool<T>>,
    /// The receiver's event-time watermark, as far as it publishes it
    /// (window managers do; `i64::MIN` otherwise). A combining edge never
    /// folds records into a window the receiver may have closed
    /// (`window::partial`).
    pub(crate) watermark: Arc<AtomicI64>,
}

impl<T: Send + 'static> Target<T> {
    /// The target `recipient`, whose mailbox fill is counted in `queued`.
    pub(crate) fn new(recipient: Recipient<Envelope<T>>, queued: &Arc<MailboxGauge>) -> Self {
        Target {
            recipient: Arc::new(recipient),
            queued: Arc::clone(queued),
            pool: Arc::default(),
            watermark: Arc::new(AtomicI64::new(i64::MIN)),
        }
    }

    /// Like [`Target::new`], with the receiver's buffer pool.
    pub(crate) fn with_pool(
        recipient: Recipient<Envelope<T>>,
        queued: &Arc<MailboxGauge>,
        pool: Arc<BatchPool<T>>,
    ) -> Self {
        Target { pool, ..Target::new(recipient, queued) }
    }

    /// The receiver publishes its watermark in `watermark`.
    pub(crate) fn with_watermark(mut self, watermark: Arc<AtomicI64>) -> Self {
        self.watermark = watermark;
        self
    }
}

/// A clone is another sender to the same actor (each upstream instance
/// gets its own).
impl<T: Send + 'static> Clone for Target<T> {
    fn clone(&self) -> Self {
        Target {
            recipient: Arc::new(Recipient::clone(&self.recipient)),
            queued: Arc::clone(&self.queued),
            pool: Arc::clone(&self.pool),
            watermark: Arc::clone(&self.watermark),
        }
    }
}

/// The addresses of a node's instances, filled in when the node is started
/// (downstream nodes are started before their upstreams).
pub(crate) type Inbox<T> = Arc<OnceLock<Vec<Target<T>>>>;

/// Builds the output of one upstream instance, given its index and its
/// metrics (which count what it sends).
pub(crate) type OutputFactory<T> = Box<dyn FnMut(usize, &Arc<ActorMetrics>) -> Box<dyn Emit<T>> + Send>;

/// Sends envelopes to a fixed set of targets, holding back what a full
/// mailbox refused. Shared by every edge kind.
pub(crate) struct Sender<T: Send + 'static> {
    targets: Vec<Target<T>>,
    input: usize,
    /// Per target, messages refused (in order). Non-empty only between a
    /// `Full` and the next `take_blocked`.
    held: Vec<Vec<Envelope<T>>>,
    any_held: bool,
    metrics: Arc<ActorMetrics>,
    /// How many records a batch stands for in the metrics (its length, or
    /// more for batches of combined partials).
    weigh: fn(&[Record<T>]) -> usize,
}

impl<T: Send + 'static> Sender<T> {
    pub(crate) fn new(targets: Vec<Target<T>>, input: usize, metrics: Arc<ActorMetrics>) -> Self {
        let held = targets.iter().map(|_| Vec::new()).collect();
        Sender { targets, input, held, any_held: false, metrics, weigh: <[Record<T>]>::len }
    }

    /// Counts a batch as `weigh(batch)` records sent, not its length.
    pub(crate) fn weighed(mut self, weigh: fn(&[Record<T>]) -> usize) -> Self {
        self.weigh = weigh;
        self
    }

    pub(crate) fn len(&self) -> usize {
        self.targets.len()
    }

    /// Whether target `t` runs on another thread than the caller.
    pub(crate) fn is_elsewhere(&self, t: usize) -> bool {
        self.targets[t].queued.is_elsewhere()
    }

    /// The targets' published watermarks (`Target::watermark`).
    pub(crate) fn watermarks(&self) -> Vec<Arc<AtomicI64>> {
        self.targets.iter().map(|t| Arc::clone(&t.watermark)).collect()
    }

    /// An empty buffer for the next batch to target `t`: one this sender
    /// filled before, when the receiver has handed it back.
    pub(crate) fn buffer(&self, t: usize, capacity: usize) -> Vec<Record<T>> {
        self.targets[t].pool.take(self.input, capacity)
    }

    /// Offers `msg` to target `t`; keeps it if the mailbox is full.
    pub(crate) fn send(&mut self, t: usize, msg: StreamElement<T>) {
        match &msg {
            StreamElement::Data(b) => self.metrics.add_out((self.weigh)(b)),
            StreamElement::Shared(b) => self.metrics.add_out(b.with_records(self.weigh)),
            _ => {}
        }
        let env = Envelope { input: self.input, element: msg };
        // Order on the edge: once something is held for `t`, everything
        // after it must wait behind it.
        if !self.held[t].is_empty() {
            self.held[t].push(env);
            return;
        }
        // A receiver aligning a checkpoint may hold this input back: keep
        // the message as if the mailbox were full.
        if self.targets[t].queued.is_paused(self.input) {
            self.held[t].push(env);
            self.any_held = true;
            return;
        }
        // Raise the receiver's gauge before it can possibly lower it.
        self.targets[t].queued.offered();
        match self.targets[t].recipient.try_send(env) {
            Ok(()) => {}
            Err(SendError::Full(env)) => {
                self.targets[t].queued.refused();
                self.held[t].push(env);
                self.any_held = true;
            }
            // The receiver stopped (job cancelled): nothing can be delivered.
            Err(SendError::Closed(_)) => {
                self.targets[t].queued.refused();
            }
        }
    }

    pub(crate) fn broadcast(&mut self, ctl: Control) {
        for t in 0..self.targets.len() {
            self.send(t, ctl.into_message());
        }
    }

    /// Whether messages refused by a full mailbox are held.
    pub(crate) fn is_blocked(&self) -> bool {
        self.any_held
    }

    pub(crate) fn take_blocked(&mut self) -> Option<Blocked> {
        if !self.any_held {
            return None;
        }
        self.any_held = false;
        let mut per_target = Vec::new();
        for (t, held) in self.held.iter_mut().enumerate() {
            if held.is_empty() {
                continue;
            }
            let msgs = std::mem::take(held);
            // The same sender, not a clone: a clone would be a new sender
            // with a free slot of its own each time, past the bound.
            let (recipient, queued) = (Arc::clone(&self.targets[t].recipient), Arc::clone(&self.targets[t].queued));
            let input = self.input;
            per_target.push(async move {
                for mut env in msgs {
                    // Wait for room, then offer again: actix parked this
                    // sender when the mailbox filled and unparks it when the
                    // receiver takes a message, which also wakes `room`.
                    loop {
                        queued.unpaused(input).await;
                        let room = queued.room();
                        queued.offered();
                        match recipient.try_send(env) {
                            Ok(()) => break,
                            Err(SendError::Full(back)) => {
                                queued.refused();
                                env = back;
                                room.await;
                            }
                            // Receiver gone: the job is being cancelled.
                            Err(SendError::Closed(_)) => {
                                queued.refused();
                                return;
                            }
                        }
                    }
                }
            });
        }
        Some(Box::pin(async move {
            futures_util::future::join_all(per_target).await;
        }))
    }
}

/// Watermarks an edge has not sent yet.
///
/// A watermark must follow the records sent before it, so sending one at
/// once means sending every partial batch first: with a watermark after
/// every source batch and `p` destinations, batches would leave at `1/p` of
/// their size, with as many watermark messages again. An edge
/// instead holds a watermark back and sends it to a destination right
/// after that destination's next full batch. Only records not older than
/// the watermark may overtake it — a record that is (late at the source)
/// releases it first — so every record is on time or late downstream
/// exactly as it would have been, and no window fires differently. It
/// releases everything held on `flush` (which every actor calls when its
/// mailbox runs dry, and a source when it has nothing to read), before any
/// other control message, once it holds `limit` watermarks, and when a
/// watermark comes while it has held one for [`MAX_HOLD`] or longer. A later
/// watermark replaces an earlier one: both say the same of what follows,
/// the later one more.
pub(crate) struct HeldWatermarks {
    /// Per target, the watermark to send after its next batch.
    per_target: Vec<Option<Timestamp>>,
    /// The latest watermark held (every held one is this), if any is.
    latest: Option<Timestamp>,
    /// Watermarks held since the last release.
    count: usize,
    /// Watermarks held at most before they are all released.
    limit: usize,
    /// When the first watermark since the last release was held.
    since: Option<Instant>,
}

/// The longest a held watermark waits before everything is released: far
/// below the latency of a window result (docs/performance.md), and many
/// source batches at full speed.
pub(crate) const MAX_HOLD: Duration = Duration::from_millis(1);

impl HeldWatermarks {
    /// For an edge to `targets` destinations: up to sixteen times as many
    /// watermarks are held (at least 4), so that a destination's batch
    /// usually fills before its watermark is forced out even where a batch
    /// shrinks on the edge (a combining edge turns a source batch of 16
    /// keys into 16 partials, so fewer holds would send a message every few
    /// source batches). [`MAX_HOLD`] bounds the wait when batches come
    /// slowly.
    pub(crate) fn new(targets: usize) -> Self {
        HeldWatermarks {
            per_target: vec![None; targets],
            latest: None,
            count: 0,
            limit: (16 * targets).max(4),
            since: None,
        }
    }

    /// Whether `batch` may follow what is held without releasing it first:
    /// nothing is held, or no record of it is older than the watermark.
    #[inline]
    pub(crate) fn may_pass<T>(&self, batch: &[Record<T>]) -> bool {
        match self.latest {
            None => true,
            Some(wm) => batch.iter().all(|r| r.ts >= wm),
        }
    }

    /// Holds `wm` for every destination; `true` when the limit is reached
    /// and the edge must release what it holds now.
    pub(crate) fn hold(&mut self, wm: Timestamp) -> bool {
        // A watermark that goes back says nothing new: what is held stays
        // (replacing it would let older records pass it).
        let wm = self.latest.map_or(wm, |latest| latest.max(wm));
        for held in &mut self.per_target {
            *held = Some(wm);
        }
        self.latest = Some(wm);
        self.count += 1;
        // One clock read per watermark (about one per source batch).
        let now = Instant::now();
        let since = *self.since.get_or_insert(now);
        self.count >= self.limit || now.duration_since(since) >= MAX_HOLD
    }

    /// The watermark held for target `t`, no longer held. Once no target
    /// has one left, nothing is held (as after a release).
    pub(crate) fn take(&mut self, t: usize) -> Option<Timestamp> {
        let wm = self.per_target[t].take();
        if wm.is_some() && self.per_target.iter().all(Option::is_none) {
            self.latest = None;
            self.count = 0;
            self.since = None;
        }
        wm
    }

    /// Sends what is held for every target; the edge has sent its partial
    /// batches first.
    pub(crate) fn release<T: Send + 'static>(&mut self, sender: &mut Sender<T>) {
        for t in 0..self.per_target.len() {
            if let Some(wm) = self.per_target[t].take() {
                sender.send(t, StreamElement::Watermark(wm));
            }
        }
        self.latest = None;
        self.count = 0;
        self.since = None;
    }
}

/// Combines the blocked futures of several outputs.
pub(crate) fn join_blocked(parts: impl IntoIterator<Item = Option<Blocked>>) -> Option<Blocked> {
    let parts: Vec<Blocked> = parts.into_iter().flatten().collect();
    match parts.len() {
        0 => None,
        1 => parts.into_iter().next(),
        _ => Some(Box::pin(async move {
            futures_util::future::join_all(parts).await;
        })),
    }
}
