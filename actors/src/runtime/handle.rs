//! [`JobHandle`]: a running job — await it, stop it, checkpoint it, read
//! its metrics — and [`JobReport`], how it ended.

use std::fmt;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use actix::{Arbiter, Recipient};
use tokio::sync::{oneshot, watch};
use uuid::Uuid;

use crate::checkpoint::CheckpointStats;
use crate::control::lifecycle::Lifecycle;
use crate::error::JobError;
use crate::metrics::JobMetrics;
use crate::runtime::coordinator::TriggerNow;
use crate::source::actor::StopSource;
use crate::topology::JobGraph;

/// How a job ended.
#[derive(Debug, Clone)]
pub struct JobReport {
    /// The job's id.
    pub id: Uuid,
    /// Wall time from start to completion.
    pub elapsed: Duration,
    /// Every actor's final counters. After a resume they count this run
    /// only (what was read since the checkpoint), see
    /// [`JobReport::resumed_from`].
    pub metrics: JobMetrics,
    /// The checkpoint this run resumed from, if it did.
    pub resumed_from: Option<u64>,
}

/// The recent checkpoints of a job and its totals.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct CheckpointSummary {
    /// The newest checkpoints (at most 64), oldest first.
    pub recent: Vec<CheckpointStats>,
    /// Checkpoints completed since the job started.
    pub completed: u64,
    /// Checkpoints aborted since the job started.
    pub aborted: u64,
}

/// A running job: await it, stop it, read its metrics. Cheap to clone;
/// usable from any thread.
#[derive(Clone)]
pub struct JobHandle {
    pub(crate) lifecycle: Arc<Lifecycle>,
    pub(crate) graph: Arc<JobGraph>,
    pub(crate) sources: Arc<Vec<Recipient<StopSource>>>,
    pub(crate) stop_flags: Arc<Vec<Arc<AtomicBool>>>,
    pub(crate) arbiters: Arc<Mutex<Vec<Arbiter>>>,
    pub(crate) coordinator: Option<Recipient<TriggerNow>>,
    /// Turns true once every thread of the job has ended.
    pub(crate) stopped: Arc<watch::Sender<bool>>,
}

impl fmt::Debug for JobHandle {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("JobHandle").field("id", &self.lifecycle.id).field("name", &self.lifecycle.name).finish()
    }
}

impl JobHandle {
    /// The job's unique id.
    pub fn id(&self) -> Uuid {
        self.lifecycle.id
    }

    /// The checkpoint the job resumed from, if it did.
    pub fn resumed_from(&self) -> Option<u64> {
        self.lifecycle.resumed_from.get().copied()
    }

    /// The job's name.
    pub fn name(&self) -> &str {
        &self.lifecycle.name
    }

    /// The job's nodes and edges (fixed for the life of the job).
    pub fn graph(&self) -> &JobGraph {
        &self.graph
    }

    /// Every actor's counters right now (cheap; callable from any thread).
    pub fn metrics(&self) -> JobMetrics {
        self.lifecycle.registry.snapshot()
    }

    /// Whether the job has completed (or failed, or was cancelled).
    pub fn is_finished(&self) -> bool {
        self.lifecycle.is_finished()
    }

    /// Asks every source to stop reading now. What was read drains through
    /// the job: windows fire at the final watermark and sinks finish, so
    /// [`Self::wait`] then returns normally.
    pub fn stop(&self) {
        for flag in self.stop_flags.iter() {
            flag.store(true, Ordering::Relaxed);
        }
        for s in self.sources.iter() {
            // A poke so an idle source notices the flag; a full mailbox
            // already guarantees it will be polled.
            let _ = s.try_send(StopSource);
        }
    }

    /// Takes a checkpoint now and waits until it completes (or is
    /// aborted). Errors when the job does not checkpoint.
    pub async fn checkpoint(&self) -> Result<CheckpointStats, JobError> {
        let Some(c) = &self.coordinator else {
            return Err(JobError::Checkpoint("the job was built without checkpointing".into()));
        };
        let (tx, rx) = oneshot::channel();
        c.send(TriggerNow(tx)).await.map_err(|_| JobError::Checkpoint("the coordinator has stopped".into()))?;
        rx.await.map_err(|_| JobError::Checkpoint("the coordinator has stopped".into()))?.map_err(JobError::Checkpoint)
    }

    /// Takes a final checkpoint, then cancels the job (Flink's stop with
    /// savepoint): a job started later with the same topology and
    /// directory resumes from it. Returns once the checkpoint is complete
    /// and every sink has committed (and made visible) what it covers.
    /// `wait` then returns `Cancelled`.
    pub async fn stop_with_checkpoint(&self) -> Result<CheckpointStats, JobError> {
        let stats = self.checkpoint().await?;
        self.cancel();
        Ok(stats)
    }

    /// Stops every actor now, dropping what is in flight; `wait` returns
    /// [`JobError::Cancelled`].
    pub fn cancel(&self) {
        self.lifecycle.cancel();
        // Stopped, not taken: `wait` still joins them.
        if let Ok(arbs) = self.arbiters.lock() {
            for a in arbs.iter() {
                a.stop();
            }
        }
    }

    /// Figures of the recent checkpoints (completed or aborted), oldest
    /// first: the newest 64; older ones are only counted in
    /// [`Self::checkpoint_summary`].
    pub fn checkpoints(&self) -> Vec<CheckpointStats> {
        self.lifecycle.checkpoints().0
    }

    /// The recent checkpoints and how many completed and aborted since the
    /// job started.
    pub fn checkpoint_summary(&self) -> CheckpointSummary {
        let (recent, completed, aborted) = self.lifecycle.checkpoints();
        CheckpointSummary { recent, completed, aborted }
    }

    /// The last completed checkpoint's sequence number.
    pub fn last_checkpoint(&self) -> Option<u64> {
        self.checkpoints().iter().rev().find(|c| c.completed).map(|c| c.seq)
    }

    /// Waits until the job is over, then stops its threads and waits until
    /// every one has ended: then no actor of the job runs any more (a hook
    /// in progress has returned) and every actor has been dropped, so a job
    /// restarted in this process on the same checkpoint directory and
    /// output files cannot meet one still at work.
    pub(crate) async fn finished(&self) -> Duration {
        let mut rx = self.lifecycle.subscribe();
        // The sender lives in `shared`, which we hold: this cannot fail.
        let _ = rx.wait_for(|done| *done).await;
        let mut stopped = self.stopped.subscribe();
        let arbiters: Vec<Arbiter> = self.arbiters.lock().map(|mut a| a.drain(..).collect()).unwrap_or_default();
        if !arbiters.is_empty() {
            for a in &arbiters {
                a.stop();
            }
            // Joining blocks: it runs on a thread of its own, not on the
            // caller's executor. The first caller joins; every caller
            // (clones of the handle, `Job::spawn`'s thread) waits for it.
            let done = Arc::clone(&self.stopped);
            let joiner = std::thread::Builder::new().name("weir-join".into()).spawn(move || {
                for a in arbiters {
                    let _ = a.join();
                }
                done.send_replace(true);
            });
            if joiner.is_err() {
                self.stopped.send_replace(true);
            }
        }
        let _ = stopped.wait_for(|s| *s).await;
        self.lifecycle.elapsed()
    }

    /// Time since the job started (until it finished, once it has).
    pub fn elapsed(&self) -> Duration {
        self.lifecycle.elapsed()
    }

    /// Waits until every sink has finished (or the job failed or was
    /// cancelled), then stops the job's threads and waits until they have
    /// ended: once it returns, no actor of the job runs any more, so the
    /// job can be restarted in this process on the same checkpoint
    /// directory. Every clone of the handle gets the same outcome. Never
    /// call it (or [`Self::wait_blocking`]) from a hook of the job itself.
    pub async fn wait(&self) -> Result<JobReport, JobError> {
        let elapsed = self.finished().await;
        if let Some(e) = self.lifecycle.error() {
            return Err(e);
        }
        Ok(JobReport { id: self.lifecycle.id, elapsed, metrics: self.metrics(), resumed_from: self.resumed_from() })
    }

    /// [`Self::wait`] for synchronous code (not from inside an async
    /// runtime): blocks the calling thread until the job is over.
    pub fn wait_blocking(&self) -> Result<JobReport, JobError> {
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .map_err(|e| JobError::Runtime(format!("cannot build a runtime to wait on: {e}")))?;
        rt.block_on(self.wait())
    }
}
