//! Running a job: [`Job`] (a validated topology, ready to start) and
//! [`JobHandle`] (await completion, stop, read metrics).
//!
//! A job runs inside an actix `System`: every actor instance gets its own
//! `Arbiter` (thread). [`Job::start`] starts it in the current System (an
//! actix or actix-web application); [`Job::run_blocking`] creates a System
//! on the calling thread and runs the job to completion, for a plain `main`;
//! [`Job::spawn`] runs it on a System of its own on a new thread, so that a
//! plain tokio (or synchronous) program can hold the handle.
//!
//! A job completes when every sink has seen the end of its input. Stopping
//! ([`JobHandle::stop`]) asks the sources to end early: what is in flight
//! drains through the job and every open window fires, so nothing that was
//! read is lost.

use std::fmt;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use actix::{Arbiter, Recipient};
use tokio::sync::{oneshot, watch};
use uuid::Uuid;

use crate::checkpoint::coordinator::TriggerNow;
use crate::checkpoint::CheckpointStats;
use crate::metrics::{JobMetrics, Registry};
use crate::sink::SinkError;
use crate::source::actor::StopSource;
use crate::topology::graph::Graph;
use crate::topology::JobGraph;

/// Why a job failed.
#[derive(Debug, Clone, thiserror::Error)]
pub enum JobError {
    /// `start` was called outside an actix System.
    #[error("no actix System is running on this thread: use Job::run_blocking or Job::spawn, or call start from inside actix::System / #[actix_web::main]")]
    NoSystem,
    /// A sink failed.
    #[error("sink {actor} failed: {source}")]
    Sink {
        /// The sink actor.
        actor: String,
        /// Its error.
        source: Arc<SinkError>,
    },
    /// Checkpointing or restoring failed (corrupt or mismatched checkpoint,
    /// unusable directory, a source that cannot seek).
    #[error("checkpoint: {0}")]
    Checkpoint(String),
    /// The job was cancelled before it finished.
    #[error("the job was cancelled")]
    Cancelled,
    /// The job's thread or System could not be started or ended abnormally.
    #[error("the job's runtime failed: {0}")]
    Runtime(String),
}

/// How a job ended.
#[derive(Debug, Clone)]
pub struct JobReport {
    /// The job's id.
    pub id: Uuid,
    /// Wall time from start to completion.
    pub elapsed: Duration,
    /// Every actor's final counters.
    pub metrics: JobMetrics,
}

/// State shared by the actors of a job and its handle.
pub(crate) struct JobShared {
    pub(crate) id: Uuid,
    pub(crate) name: String,
    pub(crate) registry: Registry,
    graph: JobGraph,
    remaining_sinks: AtomicUsize,
    started: Instant,
    finished: Mutex<Option<Instant>>,
    checkpoints: Mutex<Vec<CheckpointStats>>,
    done: watch::Sender<bool>,
    error: Mutex<Option<JobError>>,
}

impl fmt::Debug for JobShared {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("JobShared").field("id", &self.id).field("name", &self.name).finish()
    }
}

impl JobShared {
    pub(crate) fn new(name: String, sinks: usize, graph: JobGraph) -> Arc<Self> {
        let (done, _) = watch::channel(sinks == 0);
        Arc::new(JobShared {
            id: Uuid::new_v4(),
            name,
            registry: Registry::default(),
            graph,
            remaining_sinks: AtomicUsize::new(sinks),
            started: Instant::now(),
            finished: Mutex::new(None),
            checkpoints: Mutex::new(Vec::new()),
            done,
            error: Mutex::new(None),
        })
    }

    pub(crate) fn sink_done(&self) {
        if self.remaining_sinks.fetch_sub(1, Ordering::AcqRel) == 1 {
            self.finish();
        }
    }

    pub(crate) fn sink_failed(&self, actor: &str, e: SinkError) {
        tracing::error!(job = %self.name, %actor, error = %e, "sink failed");
        if let Ok(mut err) = self.error.lock() {
            err.get_or_insert(JobError::Sink { actor: actor.to_string(), source: Arc::new(e) });
        }
        // A failed sink will not finish normally: the job has failed.
        self.finish();
    }

    pub(crate) fn is_finished(&self) -> bool {
        *self.done.borrow()
    }

    pub(crate) fn record_checkpoint(&self, stats: CheckpointStats) {
        if let Ok(mut c) = self.checkpoints.lock() {
            c.push(stats);
        }
    }

    fn finish(&self) {
        if let Ok(mut f) = self.finished.lock() {
            f.get_or_insert_with(Instant::now);
        }
        self.done.send_replace(true);
    }

    /// Wall time from start to completion (or until now).
    pub(crate) fn elapsed(&self) -> Duration {
        let end = self.finished.lock().ok().and_then(|f| *f).unwrap_or_else(Instant::now);
        end.duration_since(self.started)
    }
}

/// A validated topology, ready to run. Built by
/// [`crate::JobBuilder::build`].
pub struct Job {
    pub(crate) graph: Graph,
}

impl fmt::Debug for Job {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Job").field("name", &self.graph.config.name).finish()
    }
}

impl Job {
    /// Starts the job's actors in the current actix System.
    pub fn start(self) -> Result<JobHandle, JobError> {
        if actix::System::try_current().is_none() {
            return Err(JobError::NoSystem);
        }
        self.graph.spawn()
    }

    /// Runs the job to completion on a new actix System on this thread.
    /// Must not be called from inside an async runtime.
    pub fn run_blocking(self) -> Result<JobReport, JobError> {
        let sys = actix::System::new();
        let result = sys.block_on(async move {
            let handle = self.start()?;
            handle.wait().await
        });
        result
    }

    /// Runs the job on a System of its own on a new thread; the handle works
    /// from any thread or async runtime.
    pub fn spawn(self) -> Result<JobHandle, JobError> {
        let (tx, rx) = std::sync::mpsc::channel();
        std::thread::Builder::new()
            .name(format!("weir-{}", self.graph.config.name))
            .spawn(move || {
                let sys = actix::System::new();
                sys.block_on(async move {
                    match self.graph.spawn() {
                        Ok(handle) => {
                            let waiter = handle.clone();
                            let _ = tx.send(Ok(handle));
                            // Keep this System alive until the job is over;
                            // the outcome is read by the user's handle.
                            waiter.finished().await;
                        }
                        Err(e) => {
                            let _ = tx.send(Err(e));
                        }
                    }
                });
            })
            .map_err(|e| JobError::Runtime(e.to_string()))?;
        rx.recv().map_err(|_| JobError::Runtime("the job thread ended before starting".into()))?
    }
}

/// A running job: await it, stop it, read its metrics. Cheap to clone;
/// usable from any thread.
#[derive(Clone)]
pub struct JobHandle {
    pub(crate) shared: Arc<JobShared>,
    pub(crate) sources: Arc<Vec<Recipient<StopSource>>>,
    pub(crate) stop_flags: Arc<Vec<Arc<AtomicBool>>>,
    pub(crate) arbiters: Arc<Mutex<Vec<Arbiter>>>,
    pub(crate) coordinator: Option<Recipient<TriggerNow>>,
}

impl fmt::Debug for JobHandle {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("JobHandle").field("id", &self.shared.id).field("name", &self.shared.name).finish()
    }
}

impl JobHandle {
    /// The job's unique id.
    pub fn id(&self) -> Uuid {
        self.shared.id
    }

    /// The job's name.
    pub fn name(&self) -> &str {
        &self.shared.name
    }

    /// The job's nodes and edges (fixed for the life of the job).
    pub fn graph(&self) -> &JobGraph {
        &self.shared.graph
    }

    /// Every actor's counters right now (cheap; callable from any thread).
    pub fn metrics(&self) -> JobMetrics {
        self.shared.registry.snapshot()
    }

    /// Whether the job has completed (or failed).
    pub fn is_finished(&self) -> bool {
        *self.shared.done.borrow()
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
    /// directory resumes from it. `wait` then returns `Cancelled`.
    pub async fn stop_with_checkpoint(&self) -> Result<CheckpointStats, JobError> {
        let stats = self.checkpoint().await?;
        self.cancel();
        Ok(stats)
    }

    /// Stops every actor now, dropping what is in flight; `wait` returns
    /// [`JobError::Cancelled`].
    pub fn cancel(&self) {
        if let Ok(mut e) = self.shared.error.lock() {
            e.get_or_insert(JobError::Cancelled);
        }
        self.shared.finish();
        if let Ok(mut arbs) = self.arbiters.lock() {
            for a in arbs.drain(..) {
                a.stop();
            }
        }
    }

    /// Figures of every checkpoint so far (completed or aborted), oldest
    /// first.
    pub fn checkpoints(&self) -> Vec<CheckpointStats> {
        self.shared.checkpoints.lock().map(|c| c.clone()).unwrap_or_default()
    }

    /// The last completed checkpoint's sequence number.
    pub fn last_checkpoint(&self) -> Option<u64> {
        self.checkpoints().iter().rev().find(|c| c.completed).map(|c| c.seq)
    }

    /// Waits until the job is over, then releases its threads.
    async fn finished(&self) -> Duration {
        let mut rx = self.shared.done.subscribe();
        // The sender lives in `shared`, which we hold: this cannot fail.
        let _ = rx.wait_for(|done| *done).await;
        if let Ok(mut arbs) = self.arbiters.lock() {
            for a in arbs.drain(..) {
                a.stop();
            }
        }
        self.shared.elapsed()
    }

    /// Time since the job started (until it finished, once it has).
    pub fn elapsed(&self) -> Duration {
        self.shared.elapsed()
    }

    /// Waits until every sink has finished, then releases the job's threads.
    /// Every clone of the handle gets the same outcome.
    pub async fn wait(&self) -> Result<JobReport, JobError> {
        let elapsed = self.finished().await;
        if let Some(e) = self.shared.error.lock().ok().and_then(|e| e.clone()) {
            return Err(e);
        }
        Ok(JobReport { id: self.shared.id, elapsed, metrics: self.metrics() })
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
