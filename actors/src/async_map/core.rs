//! The calls in flight of a `map_async` stage ([`Calls`], without actix)
//! and the shell core around them ([`AsyncMapCore`]).

use std::collections::{BTreeMap, VecDeque};
use std::fmt;
use std::future::Future;
use std::pin::Pin;
use std::sync::atomic::Ordering::Relaxed;
use std::task::{self, Poll};
use std::time::Duration;

use futures_util::stream::{FuturesUnordered, StreamExt};
use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};

use super::{AsyncError, AsyncFailure};
use crate::checkpoint::Snapshot;
use crate::error::OperatorError;
use crate::message::{CheckpointId, Record, Timestamp};
use crate::output::outlet::Outlet;
use crate::shell::{Core, Cx};

/// In which order results leave.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Order {
    /// In input order: a completed call waits for the ones before it.
    Ordered,
    /// As calls complete.
    Unordered,
}

/// One call: its sequence number and its future under the timeout.
struct Call<Fut> {
    seq: u64,
    fut: Pin<Box<tokio::time::Timeout<Fut>>>,
}

impl<Fut: Future> Future for Call<Fut> {
    type Output = (u64, Result<Fut::Output, tokio::time::error::Elapsed>);

    fn poll(self: Pin<&mut Self>, task: &mut task::Context<'_>) -> Poll<Self::Output> {
        let this = self.get_mut();
        this.fut.as_mut().poll(task).map(|r| (this.seq, r))
    }
}

/// A call started and not yet emitted: its input (for a dead letter and
/// for a snapshot) and its result once it completed, while it may not
/// leave yet.
struct Slot<T, U> {
    ts: Timestamp,
    input: T,
    result: Option<Result<U, AsyncError>>,
}

/// What waits for room, or is restored: records and the watermarks
/// between them.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub(crate) enum Item<T> {
    /// A record to call.
    Record(Record<T>),
    /// A watermark, after the records before it.
    Watermark(Timestamp),
    /// An idleness notice, after the records before it.
    Idle,
}

/// What a held mark is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Mark {
    Watermark(Timestamp),
    Idle,
}

impl Mark {
    fn leave<T, U>(self, out: &mut impl Leave<T, U>) {
        match self {
            Mark::Watermark(wm) => out.watermark(wm),
            Mark::Idle => out.idle(),
        }
    }

    fn item<T>(self) -> Item<T> {
        match self {
            Mark::Watermark(wm) => Item::Watermark(wm),
            Mark::Idle => Item::Idle,
        }
    }
}

/// Where what leaves the calls goes, in order.
pub(crate) trait Leave<T, U> {
    /// A result, at its record's timestamp.
    fn result(&mut self, r: Record<U>);
    /// A record whose call failed, and why.
    fn failed(&mut self, r: Record<(T, AsyncError)>);
    /// A watermark: every result before it has left.
    fn watermark(&mut self, wm: Timestamp);
    /// An idleness notice: every result before it has left.
    fn idle(&mut self);
}

/// The calls of one `map_async` instance: at most `capacity` slots, the
/// input beyond it waiting in a backlog in arrival order.
///
/// A watermark that arrives while calls are in flight is held as a mark
/// (the sequence number of the first call after it): it leaves once every
/// call before it has left, and no result of a call after it leaves
/// before it. In order mode results leave by sequence number; in
/// unordered mode as they complete, within the stretch between two marks.
/// A slot stays until its result leaves, so results held back count
/// towards the capacity (as in Flink).
pub(crate) struct Calls<T, U, F, Fut> {
    f: F,
    order: Order,
    capacity: usize,
    timeout: Duration,
    next_seq: u64,
    slots: BTreeMap<u64, Slot<T, U>>,
    /// Held watermarks and idleness notices: (first sequence number after
    /// it, the mark).
    marks: VecDeque<(u64, Mark)>,
    running: FuturesUnordered<Call<Fut>>,
    backlog: VecDeque<Item<T>>,
}

impl<T, U, F, Fut> fmt::Debug for Calls<T, U, F, Fut> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Calls")
            .field("order", &self.order)
            .field("capacity", &self.capacity)
            .field("in_flight", &self.slots.len())
            .field("held_watermarks", &self.marks.len())
            .field("backlog", &self.backlog.len())
            .finish()
    }
}

impl<T, U, E, F, Fut> Calls<T, U, F, Fut>
where
    T: Clone,
    E: fmt::Display,
    F: FnMut(T) -> Fut,
    Fut: Future<Output = Result<U, E>>,
{
    pub(crate) fn new(f: F, order: Order, capacity: usize, timeout: Duration) -> Self {
        Calls {
            f,
            order,
            capacity: capacity.max(1),
            timeout,
            next_seq: 0,
            slots: BTreeMap::new(),
            marks: VecDeque::new(),
            running: FuturesUnordered::new(),
            backlog: VecDeque::new(),
        }
    }

    /// Calls started whose results have not left.
    #[cfg(test)]
    pub(crate) fn in_flight(&self) -> usize {
        self.slots.len()
    }

    /// Records (and watermarks) waiting for room.
    pub(crate) fn waiting(&self) -> usize {
        self.backlog.len()
    }

    /// Nothing in flight, held or waiting.
    pub(crate) fn is_idle(&self) -> bool {
        self.slots.is_empty() && self.backlog.is_empty() && self.marks.is_empty()
    }

    /// Starts a call per record while there is room; the rest waits, in
    /// order, behind anything already waiting. Must run inside a tokio
    /// runtime with timers (an actix System is one).
    pub(crate) fn offer(&mut self, batch: &mut Vec<Record<T>>) {
        if self.backlog.is_empty() {
            let mut rest = batch.drain(..);
            while self.slots.len() < self.capacity {
                let Some(r) = rest.next() else { return };
                self.start(r);
            }
            self.backlog.extend(rest.map(Item::Record));
        } else {
            self.backlog.extend(batch.drain(..).map(Item::Record));
        }
    }

    /// Watermark `wm` after the records offered so far: it leaves now if
    /// nothing is in flight, otherwise once what precedes it has.
    pub(crate) fn watermark(&mut self, wm: Timestamp, out: &mut impl Leave<T, U>) {
        self.mark(Mark::Watermark(wm), out);
    }

    /// An idleness notice after the records offered so far, held as a
    /// watermark is: results before it must not trail it.
    pub(crate) fn idle(&mut self, out: &mut impl Leave<T, U>) {
        self.mark(Mark::Idle, out);
    }

    fn mark(&mut self, mark: Mark, out: &mut impl Leave<T, U>) {
        if self.backlog.is_empty() {
            self.place(mark, out);
        } else {
            self.backlog.push_back(mark.item());
        }
    }

    /// A mark after every call started so far leaves now, or is held.
    fn place(&mut self, mark: Mark, out: &mut impl Leave<T, U>) {
        if self.slots.is_empty() && self.marks.is_empty() {
            mark.leave(out);
        } else {
            self.marks.push_back((self.next_seq, mark));
        }
    }

    /// Starts waiting records while there is room.
    pub(crate) fn refill(&mut self, out: &mut impl Leave<T, U>) {
        while self.slots.len() < self.capacity {
            match self.backlog.pop_front() {
                Some(Item::Record(r)) => self.start(r),
                Some(Item::Watermark(wm)) => self.place(Mark::Watermark(wm), out),
                Some(Item::Idle) => self.place(Mark::Idle, out),
                None => return,
            }
        }
    }

    fn start(&mut self, r: Record<T>) {
        let seq = self.next_seq;
        self.next_seq += 1;
        let fut = (self.f)(r.value.clone());
        self.running.push(Call { seq, fut: Box::pin(tokio::time::timeout(self.timeout, fut)) });
        self.slots.insert(seq, Slot { ts: r.ts, input: r.value, result: None });
    }

    /// Polls the calls (starting waiting records as room frees); what may
    /// leave goes to `out`. `Ready` if any call completed; `Pending` once
    /// every running call has registered `task`'s waker.
    pub(crate) fn poll(&mut self, task: &mut task::Context<'_>, out: &mut impl Leave<T, U>) -> Poll<()> {
        let mut progress = false;
        loop {
            self.refill(out);
            match self.running.poll_next_unpin(task) {
                Poll::Ready(Some((seq, outcome))) => {
                    progress = true;
                    let result = match outcome {
                        Ok(Ok(u)) => Ok(u),
                        Ok(Err(e)) => Err(AsyncError::Failed(e.to_string())),
                        Err(_) => Err(AsyncError::TimedOut { after_ms: self.timeout.as_millis() as u64 }),
                    };
                    self.complete(seq, result, out);
                }
                // Nothing running (no waker is needed: new calls start
                // only in `offer`, after which the shell polls again).
                Poll::Ready(None) => break,
                Poll::Pending => break,
            }
        }
        if progress {
            Poll::Ready(())
        } else {
            Poll::Pending
        }
    }

    /// The first sequence number a held watermark keeps back.
    fn bound(&self) -> u64 {
        self.marks.front().map_or(u64::MAX, |m| m.0)
    }

    fn complete(&mut self, seq: u64, result: Result<U, AsyncError>, out: &mut impl Leave<T, U>) {
        if self.order == Order::Unordered && seq < self.bound() {
            let slot = self.slots.remove(&seq).expect("a running call has a slot");
            leave(slot, result, out);
            // It may have been the last call before a held watermark.
            self.drain(out);
            return;
        }
        self.slots.get_mut(&seq).expect("a running call has a slot").result = Some(result);
        self.drain(out);
    }

    /// Lets leave what may: in order mode completed results from the
    /// front, then each held watermark with no call before it left, and
    /// (unordered) the completed results it held back.
    fn drain(&mut self, out: &mut impl Leave<T, U>) {
        loop {
            let bound = self.bound();
            if self.order == Order::Ordered {
                while let Some(first) = self.slots.first_entry() {
                    if *first.key() >= bound || first.get().result.is_none() {
                        break;
                    }
                    let mut slot = first.remove();
                    let result = slot.result.take().expect("checked above");
                    leave(slot, result, out);
                }
            }
            let Some(&(first_after, mark)) = self.marks.front() else { return };
            if self.slots.range(..first_after).next().is_some() {
                return;
            }
            self.marks.pop_front();
            mark.leave(out);
            if self.order == Order::Unordered {
                let next = self.bound();
                let done: Vec<u64> =
                    self.slots.range(..next).filter(|(_, s)| s.result.is_some()).map(|(seq, _)| *seq).collect();
                for seq in done {
                    let mut slot = self.slots.remove(&seq).expect("listed above");
                    let result = slot.result.take().expect("listed as completed");
                    leave(slot, result, out);
                }
            }
        }
    }

    /// The inputs of every call whose result has not left and the held
    /// watermarks between them, then what waits, in input order: what a
    /// restored job must go through again.
    pub(crate) fn unfinished(&self) -> Vec<Item<T>> {
        let mut items = Vec::with_capacity(self.slots.len() + self.marks.len() + self.backlog.len());
        let mut marks = self.marks.iter().peekable();
        for (seq, s) in &self.slots {
            while let Some((_, mark)) = marks.next_if(|m| m.0 <= *seq) {
                items.push(mark.item());
            }
            items.push(Item::Record(Record { ts: s.ts, value: s.input.clone() }));
        }
        items.extend(marks.map(|(_, mark)| mark.item()));
        items.extend(self.backlog.iter().cloned());
        items
    }

    /// Restores [`Self::unfinished`]: it goes through first, in order.
    pub(crate) fn restore(&mut self, unfinished: Vec<Item<T>>) {
        debug_assert!(self.is_idle(), "restored before any input");
        self.backlog = unfinished.into();
    }
}

/// A completed call's result, or its record as a failure, leaves.
fn leave<T, U>(slot: Slot<T, U>, result: Result<U, AsyncError>, out: &mut impl Leave<T, U>) {
    match result {
        Ok(u) => out.result(Record { ts: slot.ts, value: u }),
        Err(e) => out.failed(Record { ts: slot.ts, value: (slot.input, e) }),
    }
}

/// The shell core of a `map_async` instance: results to the first output,
/// failures to the second (the dead letters); it forwards watermarks
/// itself, after the results before them.
pub(crate) struct AsyncMapCore<T, U, F, Fut> {
    calls: Calls<T, U, F, Fut>,
    out: Leaving<T, U>,
    /// The final watermark came: end of input waits until every call left.
    ending: bool,
}

/// What left the calls, batched for the outputs in order.
struct Leaving<T, U> {
    done: Vec<Record<U>>,
    failed: Vec<Record<(T, AsyncError)>>,
    /// Watermarks and idleness notices that left, each after the records
    /// before it: (index in `done`, index in `failed`, mark).
    watermarks: Vec<(usize, usize, Mark)>,
    dead: DeadLetters,
}

impl<T, U> Leave<T, U> for Leaving<T, U> {
    fn result(&mut self, r: Record<U>) {
        self.done.push(r);
    }

    fn failed(&mut self, r: Record<(T, AsyncError)>) {
        self.failed.push(r);
    }

    fn watermark(&mut self, wm: Timestamp) {
        self.watermarks.push((self.done.len(), self.failed.len(), Mark::Watermark(wm)));
    }

    fn idle(&mut self) {
        self.watermarks.push((self.done.len(), self.failed.len(), Mark::Idle));
    }
}

/// How a stage's failures are reported.
struct DeadLetters {
    /// Whether anything consumes them.
    connected: bool,
    /// Failures so far (the first is logged).
    count: u64,
}

impl<T, U, F, Fut> fmt::Debug for AsyncMapCore<T, U, F, Fut> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("AsyncMapCore").field("calls", &self.calls).field("ending", &self.ending).finish()
    }
}

impl<T, U, F, Fut> AsyncMapCore<T, U, F, Fut> {
    pub(crate) fn new(calls: Calls<T, U, F, Fut>, dead_connected: bool) -> Self {
        let out = Leaving {
            done: Vec::new(),
            failed: Vec::new(),
            watermarks: Vec::new(),
            dead: DeadLetters { connected: dead_connected, count: 0 },
        };
        AsyncMapCore { calls, out, ending: false }
    }
}

impl<T, U> Leaving<T, U> {
    /// Sends what left, in order: results and failures up to each
    /// watermark, the watermark, then the rest.
    fn send(&mut self, cx: &mut Cx<'_, impl Core<Outputs = (Outlet<U>, Outlet<AsyncFailure<T>>)>>)
    where
        T: Send + 'static,
        U: Send + 'static,
    {
        if self.watermarks.is_empty() {
            self.send_upto(self.done.len(), self.failed.len(), cx);
            return;
        }
        let mut marks = std::mem::take(&mut self.watermarks);
        // Indices count from the start of `done`/`failed`, which shrink as
        // parts are sent.
        let (mut sent_done, mut sent_failed) = (0, 0);
        for (d, f, mark) in marks.drain(..) {
            self.send_upto(d - sent_done, f - sent_failed, cx);
            (sent_done, sent_failed) = (d, f);
            let (out, dead) = cx.out();
            match mark {
                Mark::Watermark(wm) => {
                    out.watermark(wm);
                    dead.watermark(wm);
                }
                Mark::Idle => {
                    out.idle();
                    dead.idle();
                }
            }
        }
        self.send_upto(self.done.len(), self.failed.len(), cx);
        self.watermarks = marks;
    }

    fn send_upto(
        &mut self,
        d: usize,
        f: usize,
        cx: &mut Cx<'_, impl Core<Outputs = (Outlet<U>, Outlet<AsyncFailure<T>>)>>,
    ) where
        T: Send + 'static,
        U: Send + 'static,
    {
        if d > 0 {
            if d == self.done.len() {
                cx.out().0.send_batch(&mut self.done);
            } else {
                let mut head: Vec<Record<U>> = self.done.drain(..d).collect();
                cx.out().0.send_batch(&mut head);
            }
        }
        if f > 0 {
            let failed: Vec<Record<(T, AsyncError)>> = self.failed.drain(..f).collect();
            let n = failed.len() as u64;
            cx.metrics().dead_letters.fetch_add(n, Relaxed);
            if self.dead.count == 0 {
                let (_, error) = &failed[0].value;
                tracing::warn!(
                    actor = cx.actor(),
                    %error,
                    "a call of map_async produced no result; its record is a dead letter (counted in `dead_letters`)"
                );
            }
            self.dead.count += n;
            if self.dead.connected {
                let actor = cx.actor().to_string();
                let mut dead: Vec<Record<AsyncFailure<T>>> = failed
                    .into_iter()
                    .map(|r| {
                        let (input, error) = r.value;
                        Record { ts: r.ts, value: AsyncFailure { actor: actor.clone(), input, error } }
                    })
                    .collect();
                cx.out().1.send_batch(&mut dead);
            }
        }
    }
}

impl<T, U, E, F, Fut> Core for AsyncMapCore<T, U, F, Fut>
where
    T: Clone + Send + Serialize + DeserializeOwned + 'static,
    U: Send + 'static,
    E: fmt::Display,
    F: FnMut(T) -> Fut + Send + 'static,
    Fut: Future<Output = Result<U, E>> + Send + 'static,
{
    type In = T;
    type Outputs = (Outlet<U>, Outlet<AsyncFailure<T>>);

    fn on_batch(&mut self, batch: &mut Vec<Record<T>>, _cx: &mut Cx<'_, Self>) -> Result<(), OperatorError> {
        // The calls are polled by the shell right after this message.
        self.calls.offer(batch);
        Ok(())
    }

    fn on_watermark(&mut self, wm: Timestamp, cx: &mut Cx<'_, Self>) -> Result<(), OperatorError> {
        if wm == crate::message::END_OF_TIME {
            // The shell sends it with end of input, once every call left.
            self.ending = true;
        } else {
            self.calls.watermark(wm, &mut self.out);
            self.out.send(cx);
        }
        Ok(())
    }

    fn forwards_watermarks(&self) -> bool {
        true
    }

    fn on_idle(&mut self, cx: &mut Cx<'_, Self>) -> Result<(), OperatorError> {
        self.calls.idle(&mut self.out);
        self.out.send(cx);
        Ok(())
    }

    fn pending(&self) -> bool {
        self.calls.waiting() > 0 || (self.ending && !self.calls.is_idle())
    }

    fn resume(&mut self, cx: &mut Cx<'_, Self>) -> Result<(), OperatorError> {
        self.calls.refill(&mut self.out);
        self.out.send(cx);
        Ok(())
    }

    fn is_async(&self) -> bool {
        true
    }

    fn poll_async(&mut self, task: &mut task::Context<'_>, cx: &mut Cx<'_, Self>) -> Result<Poll<()>, OperatorError> {
        let progress = self.calls.poll(task, &mut self.out);
        self.out.send(cx);
        Ok(progress)
    }

    fn snapshot(&mut self, _id: CheckpointId) -> Result<Snapshot, OperatorError> {
        Ok(Snapshot::encode(&self.calls.unfinished())?)
    }

    fn restore(&mut self, _id: CheckpointId, state: Snapshot) -> Result<(), OperatorError> {
        let unfinished: Vec<Item<T>> = state.decode()?;
        self.calls.restore(unfinished);
        Ok(())
    }
}
