//! What a worker of a group is doing, for people: its partitions, the
//! assignment generation it acts on, and per partition the epoch of its
//! claim, its newest checkpoint and how far its input is behind.

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

use serde::Serialize;
use weir_actors::JobHandle;

/// A live view of one worker, shared by the worker loop (which writes it
/// every round), its sources (which write their partition's lag) and
/// whoever shows it: `weir worker --serve` serves it as `GET /api/status`,
/// on the dashboard and as Prometheus gauges
/// (`weir::web::WebState::add_worker`). Cheap to clone; clones share it.
#[derive(Debug, Clone, Default)]
pub struct WorkerStatus {
    inner: Arc<Mutex<Inner>>,
}

#[derive(Debug, Default)]
struct Inner {
    view: WorkerView,
    /// Per partition: messages of the input after the last one its source
    /// took (JetStream's count of messages pending to the consumer).
    lags: BTreeMap<usize, Arc<AtomicU64>>,
    jobs: BTreeMap<usize, JobHandle>,
}

/// A snapshot of a [`WorkerStatus`] (the JSON of `GET /api/status`'s
/// `worker` field).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct WorkerView {
    /// The group.
    pub group: String,
    /// This member's id.
    pub member: String,
    /// The generation of the assignment this worker last acted on.
    pub generation: u64,
    /// Members alive in the group, as of the last round.
    pub members: usize,
    /// Partitions of the input.
    pub partitions: usize,
    /// Partitions done (by any member).
    pub done: usize,
    /// The lease, ms.
    pub lease_ms: u64,
    /// The partitions this worker runs, in order.
    pub owned: Vec<PartitionView>,
}

/// One partition a worker runs.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct PartitionView {
    /// The partition.
    pub partition: usize,
    /// The epoch of this worker's claim on it.
    pub epoch: u64,
    /// The sequence of its newest complete checkpoint (any owner's), if
    /// any.
    pub checkpoint: Option<u64>,
    /// Input messages after the last one its source took (`None` until
    /// it has taken one).
    pub lag_messages: Option<u64>,
}

/// `u64::MAX` in a lag gauge: nothing measured yet.
const UNKNOWN: u64 = u64::MAX;

impl WorkerStatus {
    /// An empty status.
    pub fn new() -> Self {
        Self::default()
    }

    /// A snapshot, with the lags as of now.
    pub fn view(&self) -> WorkerView {
        let inner = self.inner.lock().expect("worker status");
        let mut view = inner.view.clone();
        for p in &mut view.owned {
            p.lag_messages = inner.lags.get(&p.partition).map(|g| g.load(Ordering::Relaxed)).filter(|&l| l != UNKNOWN);
        }
        view
    }

    /// The gauge partition `p`'s source writes its lag to
    /// ([`super::JetStreamSource::with_lag`]); a new one (nothing measured)
    /// each time the partition starts on this worker.
    pub fn lag(&self, p: usize) -> Arc<AtomicU64> {
        let gauge = Arc::new(AtomicU64::new(UNKNOWN));
        self.inner.lock().expect("worker status").lags.insert(p, Arc::clone(&gauge));
        gauge
    }

    /// The jobs of the partitions this worker runs now.
    pub fn jobs(&self) -> Vec<JobHandle> {
        self.inner.lock().expect("worker status").jobs.values().cloned().collect()
    }

    /// For tests elsewhere in the crate: shows partition `p` owned at
    /// `epoch`, with no job.
    #[cfg(test)]
    pub(crate) fn test_own(&self, p: usize, epoch: u64) {
        let mut inner = self.inner.lock().expect("worker status");
        inner.view.owned.push(PartitionView { partition: p, epoch, ..Default::default() });
    }

    pub(crate) fn update(&self, f: impl FnOnce(&mut WorkerView)) {
        f(&mut self.inner.lock().expect("worker status").view);
    }

    pub(super) fn started(&self, p: usize, epoch: u64, checkpoint: Option<u64>, job: JobHandle) {
        let mut inner = self.inner.lock().expect("worker status");
        inner.jobs.insert(p, job);
        let owned = &mut inner.view.owned;
        owned.retain(|o| o.partition != p);
        owned.push(PartitionView { partition: p, epoch, checkpoint, lag_messages: None });
        owned.sort_by_key(|o| o.partition);
    }

    pub(super) fn checkpointed(&self, p: usize, seq: u64) {
        let mut inner = self.inner.lock().expect("worker status");
        if let Some(o) = inner.view.owned.iter_mut().find(|o| o.partition == p) {
            o.checkpoint = Some(seq);
        }
    }

    pub(super) fn stopped(&self, p: usize) {
        let mut inner = self.inner.lock().expect("worker status");
        inner.view.owned.retain(|o| o.partition != p);
        inner.lags.remove(&p);
        inner.jobs.remove(&p);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_partition_shows_its_lag_once_measured_and_leaves_when_stopped() {
        let s = WorkerStatus::new();
        s.update(|v| (v.group, v.generation) = ("g".into(), 7));
        let gauge = s.lag(3);
        s.test_own(3, 2);
        assert_eq!(s.view().owned[0].lag_messages, None);
        gauge.store(12, Ordering::Relaxed);
        s.checkpointed(3, 40);
        let v = s.view();
        assert_eq!((v.generation, v.owned[0].lag_messages, v.owned[0].checkpoint), (7, Some(12), Some(40)));
        s.stopped(3);
        assert!(s.view().owned.is_empty());
    }
}
