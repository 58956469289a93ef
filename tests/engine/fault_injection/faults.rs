//! Faults injected from inside the job, and the job stages that inject
//! them: a source wrapper, an operator (`Stream::transform`), an actor
//! operator core and a sink wrapper. Each fault fires when a given record
//! (or result row) passes its place, at most `times` times over all the
//! runs of the job, so that the job eventually gets through.

use std::fmt;
use std::future::Future;
use std::pin::Pin;
use std::sync::atomic::{AtomicU32, AtomicU64, Ordering};
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::{Duration, Instant};

use weir::dev::*;
use weir::prelude::*;
use weir::{CheckpointId, ExactlyOnceFileSink, SinkError};

use super::model::{Ev, Kind, Rng, Row};

/// Where in a pipeline a fault strikes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Place {
    /// The source, while it reads (a panic).
    Source,
    /// The `Stream::transform` operator (a panic).
    Operator,
    /// The actor operator's `on_batch` (an error).
    Core,
    /// The results sink's `write`.
    SinkWrite,
    /// The results sink's next pre-commit, commit or finish after a row.
    SinkCommit,
}

const PLACES: [Place; 5] = [Place::Source, Place::Operator, Place::Core, Place::SinkWrite, Place::SinkCommit];

impl Place {
    /// The node a fault here fails, in the pipeline of `kind`.
    pub(crate) fn node(self, kind: Kind) -> String {
        let stage = match self {
            Place::Source => "source",
            Place::Operator => "op",
            Place::Core => "check",
            Place::SinkWrite | Place::SinkCommit => "results",
        };
        format!("{}-{stage}", kind.name())
    }
}

/// How a fault fails.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum How {
    Panic,
    Error,
}

/// What a fault waits for: a record (by id) or a result row (by key and
/// window start).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum At {
    Record(u64),
    Row(u32, i64),
}

/// One fault of the plan.
#[derive(Debug)]
pub(crate) struct Fault {
    pub(crate) kind: Kind,
    pub(crate) place: Place,
    pub(crate) how: How,
    pub(crate) at: At,
    /// How many times it may strike in all.
    pub(crate) times: u32,
    struck: AtomicU32,
}

impl Fault {
    /// How many times it struck.
    pub(crate) fn struck(&self) -> u32 {
        self.struck.load(Ordering::SeqCst)
    }
}

/// The faults of one test run, shared by every run of its job.
#[derive(Debug, Clone)]
pub(crate) struct Faults(Arc<Vec<Fault>>);

/// What every injected failure's message starts with.
pub(crate) const MARK: &str = "injected fault #";

impl Faults {
    /// `n` faults drawn with `rng`: a kind, a place, how it fails, and a
    /// record of that kind's input (`records`) or a row of its expected
    /// results (`rows`) to strike at, once or twice.
    pub(crate) fn plan(
        rng: &mut Rng,
        n: usize,
        records: impl Fn(Kind) -> Vec<u64>,
        rows: impl Fn(Kind) -> Vec<Row>,
    ) -> Self {
        let faults = (0..n)
            .map(|_| {
                let kind = Kind::ALL[rng.below(4) as usize];
                let place = PLACES[rng.below(PLACES.len() as u64) as usize];
                let how = match place {
                    Place::Source | Place::Operator => How::Panic,
                    Place::Core => How::Error,
                    Place::SinkWrite | Place::SinkCommit => [How::Panic, How::Error][rng.below(2) as usize],
                };
                let at = match place {
                    Place::Source | Place::Operator | Place::Core => {
                        let ids = records(kind);
                        At::Record(ids[rng.below(ids.len() as u64) as usize])
                    }
                    Place::SinkWrite | Place::SinkCommit => {
                        let rows = rows(kind);
                        let row = rows[rng.below(rows.len() as u64) as usize];
                        At::Row(row.key, row.start)
                    }
                };
                Fault { kind, place, how, at, times: 1 + rng.below(2) as u32, struck: AtomicU32::new(0) }
            })
            .collect();
        Faults(Arc::new(faults))
    }

    pub(crate) fn iter(&self) -> impl Iterator<Item = &Fault> {
        self.0.iter()
    }

    /// The fault of `kind` at `place` waiting for `at` that may still
    /// strike: counts the strike and returns how it fails and its message.
    fn strike(&self, kind: Kind, place: Place, at: At) -> Option<(How, String)> {
        self.0.iter().enumerate().find_map(|(n, f)| {
            if (f.kind, f.place, f.at) != (kind, place, at) {
                return None;
            }
            let struck =
                f.struck.fetch_update(Ordering::SeqCst, Ordering::SeqCst, |s| (s < f.times).then_some(s + 1)).ok()?;
            Some((
                f.how,
                format!("{MARK}{n}: {:?} {:?} at {:?}, strike {} of {}", f.kind, f.place, f.at, struck + 1, f.times),
            ))
        })
    }

    /// Whether a fault of `kind` at `place` waits for `at` and may strike.
    fn armed(&self, kind: Kind, place: Place, at: At) -> bool {
        self.0.iter().any(|f| (f.kind, f.place, f.at) == (kind, place, at) && f.struck() < f.times)
    }

    /// Strikes at a place without an error channel: a panic.
    fn panic_at(&self, kind: Kind, place: Place, at: At) {
        if let Some((_, message)) = self.strike(kind, place, at) {
            panic!("{message}");
        }
    }
}

impl fmt::Display for Fault {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:?} {:?} {:?} at {:?} x{}", self.kind, self.place, self.how, self.at, self.times)
    }
}

/// A source that reads one batch of its inner source at a time, at most
/// one every `every`, so that checkpoints fall between batches while the
/// job runs; it panics when a faulty record comes by. It reads nothing
/// until a checkpoint of this run has completed (`commits`), so that every
/// failure leaves one to resume from. Batches keep their size: the inner
/// source fills each one as if unpaced.
pub(crate) struct Paced<S> {
    pub(crate) inner: S,
    pub(crate) every: Duration,
    pub(crate) kind: Kind,
    pub(crate) faults: Faults,
    /// Checkpoints completed in this run.
    pub(crate) commits: Arc<AtomicU64>,
    pub(crate) next: Option<Instant>,
    pub(crate) timer: Option<Pin<Box<tokio::time::Sleep>>>,
}

impl<S> fmt::Debug for Paced<S> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Paced").field("kind", &self.kind).finish()
    }
}

impl<S: Source<Item = Ev>> Source for Paced<S> {
    type Item = Ev;

    fn poll_batch(&mut self, cx: &mut Context<'_>, out: &mut SourceBatch<'_, Ev>) -> Poll<SourceStatus> {
        let now = Instant::now();
        if self.commits.load(Ordering::SeqCst) == 0 {
            // Checked again in a few milliseconds.
            self.next = Some(now + Duration::from_millis(5));
        }
        let due = *self.next.get_or_insert(now);
        if now < due {
            let deadline = tokio::time::Instant::from_std(due);
            let timer = self.timer.get_or_insert_with(|| Box::pin(tokio::time::sleep_until(deadline)));
            timer.as_mut().reset(deadline);
            if timer.as_mut().poll(cx).is_pending() {
                return Poll::Pending;
            }
        }
        if self.commits.load(Ordering::SeqCst) == 0 {
            return Poll::Ready(SourceStatus::Ready);
        }
        self.next = Some(Instant::now() + self.every);
        let before = out.len();
        let status = self.inner.poll_batch(cx, out);
        let ids: Vec<u64> = out.items_from(before).map(|e| e.id).collect();
        for id in ids {
            self.faults.panic_at(self.kind, Place::Source, At::Record(id));
        }
        status
    }

    fn position(&self) -> Option<Snapshot> {
        self.inner.position()
    }

    fn seek(&mut self, position: &Snapshot) -> Result<(), weir::SnapshotError> {
        self.inner.seek(position)
    }
}

/// An operator that passes records on, counting them in its checkpointed
/// state (reported to `tally` at the end), and panics when a faulty record
/// comes by.
#[derive(Debug)]
pub(crate) struct PassOn {
    pub(crate) kind: Kind,
    pub(crate) faults: Faults,
    pub(crate) seen: u64,
    pub(crate) tally: Arc<AtomicU64>,
}

impl Operator for PassOn {
    type In = Ev;
    type Out = Ev;

    fn process(&mut self, batch: &mut Vec<Record<Ev>>, _ctx: &mut OperatorContext, out: &mut Collector<'_, Ev>) {
        for r in batch.drain(..) {
            self.faults.panic_at(self.kind, Place::Operator, At::Record(r.value.id));
            self.seen += 1;
            out.emit(r.ts, r.value);
        }
    }

    fn on_end(&mut self, _out: &mut Collector<'_, Ev>) {
        self.tally.store(self.seen, Ordering::SeqCst);
    }

    fn snapshot(&self) -> Result<Snapshot, weir::SnapshotError> {
        Snapshot::encode(&self.seen)
    }

    fn restore(&mut self, state: &Snapshot) -> Result<(), weir::SnapshotError> {
        self.seen = state.decode()?;
        Ok(())
    }
}

/// An actor operator like [`PassOn`] that fails with an error instead.
#[derive(Debug)]
pub(crate) struct Check {
    pub(crate) kind: Kind,
    pub(crate) faults: Faults,
    pub(crate) seen: u64,
    pub(crate) tally: Arc<AtomicU64>,
}

impl Core for Check {
    type In = Ev;
    type Outputs = Outlet<Ev>;

    fn on_batch(&mut self, batch: &mut Vec<Record<Ev>>, cx: &mut Cx<'_, Self>) -> Result<(), OperatorError> {
        for r in batch.iter() {
            if let Some((_, message)) = self.faults.strike(self.kind, Place::Core, At::Record(r.value.id)) {
                return Err(OperatorError::msg(message));
            }
        }
        self.seen += batch.len() as u64;
        cx.out().send_batch(batch);
        Ok(())
    }

    fn on_end(&mut self, _cx: &mut Cx<'_, Self>) -> Result<(), OperatorError> {
        self.tally.store(self.seen, Ordering::SeqCst);
        Ok(())
    }

    fn snapshot(&mut self, _id: CheckpointId) -> Result<Snapshot, OperatorError> {
        Ok(Snapshot::encode(&self.seen)?)
    }

    fn restore(&mut self, _id: CheckpointId, state: Snapshot) -> Result<(), OperatorError> {
        self.seen = state.decode()?;
        Ok(())
    }
}

/// An exactly-once file sink of result rows that fails (an error or a
/// panic) on a faulty row, or at its next pre-commit, commit or finish
/// after one.
#[derive(Debug)]
pub(crate) struct FaultySink {
    pub(crate) inner: ExactlyOnceFileSink,
    pub(crate) kind: Kind,
    pub(crate) faults: Faults,
    /// A row that arms a commit fault was written.
    pub(crate) armed: Option<At>,
    /// Checkpoints completed in this run (counted here, read by the
    /// sources).
    pub(crate) commits: Arc<AtomicU64>,
}

impl FaultySink {
    fn fail(&self, place: Place, at: At) -> Result<(), SinkError> {
        match self.faults.strike(self.kind, place, at) {
            None => Ok(()),
            Some((How::Panic, message)) => panic!("{message}"),
            Some((How::Error, message)) => Err(SinkError::Other(message)),
        }
    }

    /// The phase-two hooks: strike if a commit fault is armed.
    fn commit_fault(&mut self) -> Result<(), SinkError> {
        match self.armed.take() {
            Some(at) => self.fail(Place::SinkCommit, at),
            None => Ok(()),
        }
    }
}

impl Sink<Row> for FaultySink {
    fn write(&mut self, batch: &mut Vec<Record<Row>>) -> Result<(), SinkError> {
        for r in batch.iter() {
            let at = At::Row(r.value.key, r.value.start);
            self.fail(Place::SinkWrite, at)?;
            if self.faults.armed(self.kind, Place::SinkCommit, at) {
                self.armed = Some(at);
            }
        }
        self.inner.write(batch)
    }

    fn finish(&mut self) -> Result<(), SinkError> {
        self.commit_fault()?;
        Sink::<Row>::finish(&mut self.inner)
    }

    fn pre_commit(&mut self, id: CheckpointId) -> Result<Snapshot, SinkError> {
        self.commit_fault()?;
        Sink::<Row>::pre_commit(&mut self.inner, id)
    }

    fn commit(&mut self, id: CheckpointId) -> Result<(), SinkError> {
        self.commits.fetch_add(1, Ordering::SeqCst);
        self.commit_fault()?;
        Sink::<Row>::commit(&mut self.inner, id)
    }

    fn restore(&mut self, id: CheckpointId, state: &Snapshot) -> Result<(), SinkError> {
        Sink::<Row>::restore(&mut self.inner, id, state)
    }
}
