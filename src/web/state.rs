//! The registry of jobs that the web layer shows: [`WebState`].
//!
//! A [`WebState`] holds the [`JobHandle`]s of the jobs an application wants
//! to expose (handles are cheap clones), a short history of each job's
//! metrics for rates, and the Prometheus registry behind `GET /metrics`.
//! It is `Clone` (an `Arc` inside) and shared by every HTTP worker.
//!
//! Rates (`records/s`, the share of time spent backpressured) need two
//! snapshots some time apart. A background sampler — a task on the actix
//! runtime, started by [`crate::web::configure`] — takes a snapshot of every
//! job every [`WebState::sample_interval`] and keeps about the last second
//! of them; a request compares the current counters with the oldest kept
//! snapshot. The sampler runs once per state however many workers mount
//! it, and ends when the state is dropped.

use std::collections::VecDeque;
use std::fmt;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, RwLock, Weak};
use std::time::{Duration, Instant};

use ::prometheus::HistogramVec;

use crate::{CheckpointSummary, JobHandle, JobMetrics};

use super::prometheus::{self as prom, JobsCollector};

/// How far back rates look.
pub(crate) const RATE_WINDOW: Duration = Duration::from_secs(1);

/// One snapshot of a job's counters.
#[derive(Debug, Clone)]
pub(crate) struct Sample {
    pub(crate) at: Instant,
    pub(crate) metrics: JobMetrics,
}

/// How a finished job ended: `Ok` or the error's message.
pub(crate) type Outcome = Result<(), String>;

/// A registered job: its handle, its recent snapshots and, once known, how
/// it ended.
#[derive(Debug)]
pub(crate) struct JobEntry {
    pub(crate) handle: JobHandle,
    samples: Mutex<VecDeque<Sample>>,
    outcome: Mutex<Option<Outcome>>,
    /// How many of the job's checkpoints (completed and aborted, since it
    /// started) were logged and observed already.
    checkpoints_seen: Mutex<u64>,
    /// Whether the sampler has logged the job's end.
    logged_end: AtomicBool,
}

impl JobEntry {
    fn new(handle: JobHandle) -> Self {
        let first = Sample { at: Instant::now(), metrics: handle.metrics() };
        JobEntry {
            handle,
            samples: Mutex::new(VecDeque::from([first])),
            outcome: Mutex::new(None),
            checkpoints_seen: Mutex::new(0),
            logged_end: AtomicBool::new(false),
        }
    }

    /// Logs (at `info`) and observes into `durations` (completed ones)
    /// the checkpoints the job recorded since the last call: each
    /// checkpoint once, whether the sampler or a scrape calls first.
    /// Returns the summary it read.
    ///
    /// The job keeps only its newest checkpoints, so the new ones are the
    /// tail of `recent`: as many as the totals grew by. If more than the
    /// job keeps came between two calls, the older of them are counted in
    /// the totals only.
    pub(crate) fn catch_up_checkpoints(&self, durations: &HistogramVec) -> CheckpointSummary {
        let h = &self.handle;
        let (name, id) = (h.name(), h.id().to_string());
        let hist = durations.with_label_values(&[name, id.as_str()]);
        // Held while reading and observing, so that two callers never
        // observe the same checkpoint.
        let Ok(mut seen) = self.checkpoints_seen.lock() else { return h.checkpoint_summary() };
        let summary = h.checkpoint_summary();
        let total = summary.completed + summary.aborted;
        let new = (total.saturating_sub(*seen)).min(summary.recent.len() as u64) as usize;
        for c in &summary.recent[summary.recent.len() - new..] {
            tracing::info!(
                job = %name, seq = c.seq, completed = c.completed,
                duration_ms = c.duration.as_millis() as u64, alignment_ms = c.alignment.as_millis() as u64,
                bytes = c.bytes, "checkpoint"
            );
            if c.completed {
                hist.observe(c.duration.as_secs_f64());
            }
        }
        *seen = total;
        summary
    }

    /// Logs (at `info`) the job's end, once.
    fn log_end(&self) {
        let h = &self.handle;
        if h.is_finished() && !self.logged_end.swap(true, Ordering::AcqRel) {
            tracing::info!(job = %h.name(), id = %h.id(), elapsed_ms = h.elapsed().as_millis() as u64, "job ended");
        }
    }

    /// Records a snapshot taken now and forgets those no longer needed:
    /// the newest one at least [`RATE_WINDOW`] old is kept as the reference.
    pub(crate) fn sample(&self, durations: &HistogramVec) {
        self.catch_up_checkpoints(durations);
        self.log_end();
        let now = Instant::now();
        let metrics = self.handle.metrics();
        if let Ok(mut s) = self.samples.lock() {
            s.push_back(Sample { at: now, metrics });
            while s.len() > 1 && s.get(1).is_some_and(|next| now.duration_since(next.at) >= RATE_WINDOW) {
                s.pop_front();
            }
        }
    }

    /// The snapshot to compute rates against (about [`RATE_WINDOW`] old,
    /// younger while the job is new).
    pub(crate) fn reference(&self) -> Option<Sample> {
        self.samples.lock().ok().and_then(|s| s.front().cloned())
    }

    /// How the job ended, once it has: asks the handle the first time.
    pub(crate) async fn outcome(&self) -> Option<Outcome> {
        if !self.handle.is_finished() {
            return None;
        }
        if let Some(o) = self.outcome.lock().ok().and_then(|o| o.clone()) {
            return Some(o);
        }
        // Finished: `wait` returns at once with the job's outcome.
        let o = self.handle.wait().await.map(|_| ()).map_err(|e| e.to_string());
        if let Ok(mut slot) = self.outcome.lock() {
            slot.get_or_insert(o.clone());
        }
        Some(o)
    }
}

/// The jobs, in the order they were added; shared with the collector.
pub(crate) type Jobs = Arc<RwLock<Vec<Arc<JobEntry>>>>;

struct Inner {
    jobs: Jobs,
    registry: prometheus::Registry,
    /// The checkpoint duration histogram of `/metrics`, shared with the
    /// collector: the sampler observes into it too, so that a checkpoint
    /// is observed even if many come between two scrapes.
    durations: HistogramVec,
    sampler_running: AtomicBool,
    sample_interval: Duration,
    /// The group worker shown at `GET /api/status` ([`WebState::add_worker`]).
    #[cfg(feature = "nats")]
    worker: Mutex<Option<crate::nats::WorkerStatus>>,
}

/// The jobs an application exposes over HTTP, and the Prometheus registry
/// of `GET /metrics`. Cheap to clone; every clone shares the same jobs.
///
/// ```
/// # use weir::prelude::*;
/// # fn demo(handle: JobHandle) {
/// let state = weir::web::WebState::new();
/// state.add_job(handle);
/// // App::new().configure(weir::web::configure(state.clone()))
/// # }
/// ```
#[derive(Clone)]
pub struct WebState {
    inner: Arc<Inner>,
}

impl fmt::Debug for WebState {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let jobs = self.inner.jobs.read().map(|j| j.len()).unwrap_or(0);
        f.debug_struct("WebState").field("jobs", &jobs).finish()
    }
}

impl Default for WebState {
    fn default() -> Self {
        Self::new()
    }
}

impl WebState {
    /// No jobs yet; samples every 500 ms.
    pub fn new() -> Self {
        Self::with_sample_interval(Duration::from_millis(500))
    }

    /// No jobs yet; the sampler snapshots every job every `interval`
    /// (clamped to 50 ms ..= 1 s, so rates always cover about a second).
    pub fn with_sample_interval(interval: Duration) -> Self {
        let jobs: Jobs = Arc::default();
        let durations = prom::checkpoint_durations();
        let registry = prometheus::Registry::new();
        registry
            .register(Box::new(JobsCollector::new(Arc::clone(&jobs), durations.clone())))
            .expect("the weir collector is the first one registered in a fresh registry");
        WebState {
            inner: Arc::new(Inner {
                jobs,
                registry,
                durations,
                sampler_running: AtomicBool::new(false),
                sample_interval: interval.clamp(Duration::from_millis(50), RATE_WINDOW),
                #[cfg(feature = "nats")]
                worker: Mutex::new(None),
            }),
        }
    }

    /// Exposes a job. Adding a job with the id of one already there
    /// replaces it.
    pub fn add_job(&self, handle: JobHandle) {
        tracing::info!(job = %handle.name(), id = %handle.id(), "job exposed over HTTP");
        let entry = Arc::new(JobEntry::new(handle));
        if let Ok(mut jobs) = self.inner.jobs.write() {
            if jobs.iter().any(|j| j.handle.id() == entry.handle.id()) {
                // The new entry observes the job's checkpoints afresh.
                self.forget_durations(&entry.handle);
                jobs.retain(|j| j.handle.id() != entry.handle.id());
            }
            jobs.push(entry);
        }
    }

    /// Stops exposing the job with this id (its UUID as text); whether it
    /// was there.
    pub fn remove_job(&self, id: &str) -> bool {
        let Ok(mut jobs) = self.inner.jobs.write() else { return false };
        let Some(i) = jobs.iter().position(|j| j.handle.id().to_string() == id) else { return false };
        let gone = jobs.remove(i);
        self.forget_durations(&gone.handle);
        true
    }

    /// Drops a job's checkpoint duration series.
    fn forget_durations(&self, h: &JobHandle) {
        let _ = self.inner.durations.remove_label_values(&[h.name(), h.id().to_string().as_str()]);
    }

    /// The handles of the exposed jobs, in the order they were added.
    pub fn jobs(&self) -> Vec<JobHandle> {
        self.entries().iter().map(|e| e.handle.clone()).collect()
    }

    /// The Prometheus registry served at `GET /metrics`. The job metrics
    /// are registered already; register the application's own metrics here
    /// to serve them on the same page.
    pub fn registry(&self) -> &prometheus::Registry {
        &self.inner.registry
    }

    /// Time between two snapshots of the sampler.
    pub fn sample_interval(&self) -> Duration {
        self.inner.sample_interval
    }

    pub(crate) fn entries(&self) -> Vec<Arc<JobEntry>> {
        self.inner.jobs.read().map(|j| j.clone()).unwrap_or_default()
    }

    pub(crate) fn entry(&self, id: &str) -> Option<Arc<JobEntry>> {
        self.entries().into_iter().find(|e| e.handle.id().to_string() == id)
    }

    /// Shows a group worker (cargo feature `nats`): `GET /api/status`
    /// answers its [`crate::nats::WorkerView`], `/metrics` adds its
    /// `weir_worker_*` gauges, and the exposed jobs follow the jobs of the
    /// partitions it runs (added when a partition starts, removed when it
    /// stops), at each tick of the sampler. One worker per state: a second
    /// call is refused.
    #[cfg(feature = "nats")]
    pub fn add_worker(&self, status: crate::nats::WorkerStatus) -> Result<(), prometheus::Error> {
        let mut slot = self.inner.worker.lock().expect("worker slot");
        if slot.is_some() {
            return Err(prometheus::Error::Msg("this state shows a worker already".into()));
        }
        self.inner.registry.register(Box::new(super::worker::WorkerCollector::new(status.clone())))?;
        *slot = Some(status);
        drop(slot);
        self.sync_worker_jobs();
        Ok(())
    }

    /// The shown worker's view, if a worker is shown.
    #[cfg(feature = "nats")]
    pub(crate) fn worker_view(&self) -> Option<crate::nats::WorkerView> {
        self.inner.worker.lock().ok()?.as_ref().map(|w| w.view())
    }

    /// Makes the exposed jobs those of the partitions the worker runs.
    fn sync_worker_jobs(&self) {
        #[cfg(feature = "nats")]
        {
            let Some(worker) = self.inner.worker.lock().ok().and_then(|w| w.clone()) else { return };
            let running = worker.jobs();
            let shown = self.jobs();
            for h in &shown {
                if !running.iter().any(|r| r.id() == h.id()) {
                    self.remove_job(&h.id().to_string());
                }
            }
            for h in running {
                if !shown.iter().any(|s| s.id() == h.id()) {
                    self.add_job(h);
                }
            }
        }
    }

    /// Snapshots every job now (what the sampler does each tick).
    pub(crate) fn sample_all(&self) {
        self.sync_worker_jobs();
        for e in self.entries() {
            e.sample(&self.inner.durations);
        }
    }

    /// Starts the background sampler on the current actix (tokio) runtime,
    /// unless one is running for this state already. Does nothing outside a
    /// runtime: rates are then computed against the last snapshot taken.
    pub(crate) fn start_sampler(&self) {
        if tokio::runtime::Handle::try_current().is_err() {
            return;
        }
        if self.inner.sampler_running.swap(true, Ordering::AcqRel) {
            return;
        }
        let weak: Weak<Inner> = Arc::downgrade(&self.inner);
        let every = self.inner.sample_interval;
        actix_web::rt::spawn(async move {
            // Lets a later `configure` start a new sampler if the runtime
            // this one runs on stops (the task is dropped with it).
            let _running = RunningGuard(weak.clone());
            tracing::debug!(every_ms = every.as_millis() as u64, "web sampler started");
            let mut tick = actix_web::rt::time::interval(every);
            loop {
                tick.tick().await;
                let Some(inner) = weak.upgrade() else { break };
                WebState { inner }.sample_all();
            }
            tracing::debug!("web sampler ended: the state was dropped");
        });
    }
}

/// Clears `sampler_running` when the sampler task ends or is dropped.
struct RunningGuard(Weak<Inner>);

impl Drop for RunningGuard {
    fn drop(&mut self) {
        if let Some(inner) = self.0.upgrade() {
            inner.sampler_running.store(false, Ordering::Release);
        }
    }
}
