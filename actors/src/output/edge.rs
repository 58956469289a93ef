//! Edges: forward/rebalance (whole batches) and key partitioning (records
//! hashed to one of `p` destinations, the same key always to the same one).

use std::hash::{BuildHasher, Hash};
use std::sync::Arc;

use crate::message::{Record, SharedBatch, StreamElement};
use crate::metrics::ActorMetrics;
use crate::output::keys::BatchKeys;
use crate::output::{Blocked, Control, Emit, HeldWatermarks, Sender, Target};

/// The partition of `key` among `p`: a fixed-seed hash, so every process of
/// a distributed job agrees.
#[inline]
pub(crate) fn partition<K: Hash + ?Sized>(key: &K, p: usize) -> usize {
    let h = foldhash::fast::FixedState::with_seed(0x5EED).hash_one(key);
    // Lemire's multiply-shift range reduction: uniform, no division.
    ((h as u128 * p as u128) >> 64) as usize
}

/// Sends batches round-robin to its targets (one target: forward).
pub(crate) struct RoundRobin<T: Send + 'static> {
    sender: Sender<T>,
    buf: Vec<Record<T>>,
    batch_size: usize,
    next: usize,
    held: HeldWatermarks,
}

impl<T: Send + 'static> RoundRobin<T> {
    pub(crate) fn new(targets: Vec<Target<T>>, input: usize, batch_size: usize, metrics: Arc<ActorMetrics>) -> Self {
        let held = HeldWatermarks::new(targets.len());
        RoundRobin {
            sender: Sender::new(targets, input, metrics),
            buf: Vec::with_capacity(batch_size),
            batch_size,
            next: 0,
            held,
        }
    }

    /// Sends the batch being filled (if any) to the next target, and the
    /// watermark held for that target after it.
    fn send_buf(&mut self) {
        if self.buf.is_empty() {
            return;
        }
        let t = self.next;
        let batch = std::mem::replace(&mut self.buf, self.sender.buffer((t + 1) % self.sender.len(), self.batch_size));
        self.next = (self.next + 1) % self.sender.len();
        self.sender.send(t, StreamElement::Data(batch));
        if let Some(wm) = self.held.take(t) {
            self.sender.send(t, StreamElement::Watermark(wm));
        }
    }

    /// Sends the partial batch, then every watermark held.
    fn release(&mut self) {
        self.send_buf();
        self.held.release(&mut self.sender);
    }
}

impl<T: Send + 'static> Emit<T> for RoundRobin<T> {
    fn data(&mut self, batch: &mut Vec<Record<T>>) {
        if !self.held.may_pass(batch) {
            self.release();
        }
        if self.buf.is_empty() && batch.len() >= self.batch_size && batch.len() < 2 * self.batch_size {
            // A full batch travels as it is; the caller gets a fresh buffer.
            // A larger one is cut into batches below, so that a full
            // mailbox holds back batches of ordinary size.
            self.buf = std::mem::replace(batch, Vec::with_capacity(self.batch_size));
            self.send_buf();
            return;
        }
        for r in batch.drain(..) {
            self.buf.push(r);
            if self.buf.len() >= self.batch_size {
                self.send_buf();
            }
        }
    }
    fn control(&mut self, ctl: Control) {
        if let Control::Watermark(wm) = ctl {
            if self.held.hold(wm) {
                self.release();
            }
            return;
        }
        self.release();
        self.sender.broadcast(ctl);
    }
    fn flush(&mut self) {
        self.release();
    }
    fn take_blocked(&mut self) -> Option<Blocked> {
        self.sender.take_blocked()
    }
    fn is_blocked(&self) -> bool {
        self.sender.is_blocked()
    }
    fn takes_shared(&self) -> bool {
        // Sharing pays when the next receiver runs on another thread: it
        // copies there, if it must, instead of here. On this thread a copy
        // made now, while the batch is in cache, is cheaper than one made
        // later.
        self.sender.is_elsewhere(self.next)
    }
    fn shared(&mut self, batch: SharedBatch<T>) {
        if !batch.with_records(|records| self.held.may_pass(records)) {
            self.release();
        }
        // What it was filling goes first: order on the edge.
        self.send_buf();
        let t = self.next;
        self.next = (self.next + 1) % self.sender.len();
        self.sender.send(t, StreamElement::Shared(batch));
        if let Some(wm) = self.held.take(t) {
            self.sender.send(t, StreamElement::Watermark(wm));
        }
    }
}

/// Per-destination batches of keyed records to `p` targets, with the
/// watermarks held for them: what every key-partitioning edge shares
/// ([`KeyBy`], and the combining edge in `window::partial::combine`).
pub(crate) struct Partitioned<V: Send + 'static> {
    pub(crate) sender: Sender<V>,
    /// The batch being filled for each target.
    pub(crate) bufs: Vec<Vec<Record<V>>>,
    pub(crate) batch_size: usize,
    pub(crate) held: HeldWatermarks,
}

impl<V: Send + 'static> Partitioned<V> {
    pub(crate) fn new(targets: Vec<Target<V>>, input: usize, batch_size: usize, metrics: Arc<ActorMetrics>) -> Self {
        let bufs = targets.iter().map(|_| Vec::with_capacity(batch_size)).collect();
        let held = HeldWatermarks::new(targets.len());
        Partitioned { sender: Sender::new(targets, input, metrics), bufs, batch_size, held }
    }

    /// Counts a batch as `weigh(batch)` records sent ([`Sender::weighed`]).
    pub(crate) fn weighed(self, weigh: fn(&[Record<V>]) -> usize) -> Self {
        Partitioned { sender: self.sender.weighed(weigh), ..self }
    }

    /// Sends target `t`'s batch, and the watermark held for it after it.
    pub(crate) fn send(&mut self, t: usize) {
        let batch = std::mem::replace(&mut self.bufs[t], self.sender.buffer(t, self.batch_size));
        self.sender.send(t, StreamElement::Data(batch));
        if let Some(wm) = self.held.take(t) {
            self.sender.send(t, StreamElement::Watermark(wm));
        }
    }

    /// Sends the batches that are full.
    pub(crate) fn send_full(&mut self) {
        for t in 0..self.bufs.len() {
            if self.bufs[t].len() >= self.batch_size {
                self.send(t);
            }
        }
    }

    /// Records every target's batch can still take before one is full.
    pub(crate) fn room(&self) -> usize {
        self.bufs.iter().map(|b| self.batch_size.saturating_sub(b.len())).min().unwrap_or(0).max(1)
    }

    /// Sends every partial batch, then every watermark held.
    pub(crate) fn release(&mut self) {
        for t in 0..self.bufs.len() {
            if !self.bufs[t].is_empty() {
                self.send(t);
            }
        }
        self.held.release(&mut self.sender);
    }

    /// [`Emit::control`]: a watermark is held, anything else is sent after
    /// everything pending.
    pub(crate) fn control(&mut self, ctl: Control) {
        if let Control::Watermark(wm) = ctl {
            if self.held.hold(wm) {
                self.release();
            }
            return;
        }
        self.release();
        self.sender.broadcast(ctl);
    }
}

/// Hash-partitions records by key to `p` targets; the records travel as
/// `(key, value)` so the receiver need not compute the key again.
pub(crate) struct KeyBy<K: Send + 'static, T: Send + 'static> {
    out: Partitioned<(K, T)>,
    key_fn: Box<dyn BatchKeys<K, T>>,
}

impl<K, T> KeyBy<K, T>
where
    K: Hash + Send + 'static,
    T: Send + 'static,
{
    /// An edge sending through `out`, keying with `key_fn`.
    pub(crate) fn new(out: Partitioned<(K, T)>, key_fn: Box<dyn BatchKeys<K, T>>) -> Self {
        KeyBy { out, key_fn }
    }
}

impl<K, T> Emit<T> for KeyBy<K, T>
where
    K: Hash + Send + 'static,
    T: Send + 'static,
{
    fn data(&mut self, batch: &mut Vec<Record<T>>) {
        let out = &mut self.out;
        if !out.held.may_pass(batch) {
            out.release();
        }
        if out.bufs.len() == 1 && out.bufs[0].len() + batch.len() <= out.batch_size {
            // One destination and it all fits (the usual case): no hashing,
            // one bulk `extend`.
            self.key_fn.keyed_all(batch, &mut out.bufs[0]);
            if out.bufs[0].len() >= out.batch_size {
                out.send(0);
            }
            return;
        }
        let mut rest = batch.drain(..);
        if out.bufs.len() == 1 {
            // One destination: no hashing, a bulk `extend` per chunk.
            while rest.len() > 0 {
                let room = out.batch_size.saturating_sub(out.bufs[0].len()).max(1);
                self.key_fn.keyed(&mut rest, room, &mut out.bufs[0]);
                if out.bufs[0].len() >= out.batch_size {
                    out.send(0);
                }
            }
            return;
        }
        // In chunks that no destination's buffer can overflow, so that the
        // per-record loop only hashes and appends (no send), then send the
        // buffers that filled.
        while rest.len() > 0 {
            let room = out.room();
            self.key_fn.partition(&mut rest, room, &mut out.bufs);
            out.send_full();
        }
    }
    fn control(&mut self, ctl: Control) {
        self.out.control(ctl);
    }
    fn flush(&mut self) {
        self.out.release();
    }
    fn take_blocked(&mut self) -> Option<Blocked> {
        self.out.sender.take_blocked()
    }
    fn is_blocked(&self) -> bool {
        self.out.sender.is_blocked()
    }
}

/// Hash-partitions records by key like [`KeyBy`], sending each value
/// wrapped by `wrap` (one side of a two-input node: `Either::Left`, or
/// `Either::Right`), so that two streams of different types reach one
/// node keyed alike.
pub(crate) struct KeyInto<K: Send + 'static, T, V: Send + 'static, W> {
    out: Partitioned<(K, V)>,
    key_fn: Box<dyn BatchKeys<K, T>>,
    keys: Vec<K>,
    wrap: W,
}

impl<K, T, V, W> KeyInto<K, T, V, W>
where
    K: Hash + Send + 'static,
    V: Send + 'static,
{
    pub(crate) fn new(out: Partitioned<(K, V)>, key_fn: Box<dyn BatchKeys<K, T>>, wrap: W) -> Self {
        KeyInto { out, key_fn, keys: Vec::new(), wrap }
    }
}

impl<K, T, V, W> Emit<T> for KeyInto<K, T, V, W>
where
    K: Hash + Send + 'static,
    T: Send + 'static,
    V: Send + 'static,
    W: Fn(T) -> V + Send + 'static,
{
    fn data(&mut self, batch: &mut Vec<Record<T>>) {
        let KeyInto { out, key_fn, keys, wrap } = self;
        if !out.held.may_pass(batch) {
            out.release();
        }
        keys.clear();
        key_fn.keys(batch, keys);
        let p = out.bufs.len();
        for (r, k) in batch.drain(..).zip(keys.drain(..)) {
            let t = if p == 1 { 0 } else { partition(&k, p) };
            out.bufs[t].push(Record { ts: r.ts, value: (k, wrap(r.value)) });
            if out.bufs[t].len() >= out.batch_size {
                out.send(t);
            }
        }
    }
    fn control(&mut self, ctl: Control) {
        self.out.control(ctl);
    }
    fn flush(&mut self) {
        self.out.release();
    }
    fn take_blocked(&mut self) -> Option<Blocked> {
        self.out.sender.take_blocked()
    }
    fn is_blocked(&self) -> bool {
        self.out.sender.is_blocked()
    }
}

/// Counts and discards: the output of a port nobody subscribed to (late
/// data or dead letters without a sink). The owner counts the records.
pub(crate) struct Discard;

impl<T: Send + 'static> Emit<T> for Discard {
    fn data(&mut self, batch: &mut Vec<Record<T>>) {
        batch.clear();
    }
    fn control(&mut self, _ctl: Control) {}
    fn flush(&mut self) {}
    fn take_blocked(&mut self) -> Option<Blocked> {
        None
    }
}

#[cfg(test)]
mod tests {
    use super::partition;

    #[test]
    fn partition_is_stable_and_in_range() {
        for k in 0u64..1000 {
            let p = partition(&k, 3);
            assert!(p < 3);
            assert_eq!(p, partition(&k, 3));
        }
        let mut seen = [0usize; 4];
        for k in 0u64..4000 {
            seen[partition(&k, 4)] += 1;
        }
        assert!(seen.iter().all(|&n| n > 800), "{seen:?}");
    }
}
