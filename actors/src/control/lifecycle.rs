//! [`Lifecycle`]: what the actors of one job share with its handle — the
//! completion latch (every sink finished), the first failure, the metrics
//! registry and the recent checkpoint figures.
//!
//! Actors report here; they never see the job's public facade. A job is
//! over once every sink has finished, or at its first failure (an error, a
//! panic, an actor that went away) or cancellation: then `done` turns true
//! and stays so, and the first error is the job's outcome.

use std::collections::VecDeque;
use std::fmt;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use tokio::sync::watch;
use uuid::Uuid;

use crate::checkpoint::CheckpointStats;
use crate::error::JobError;
use crate::metrics::Registry;

/// Checkpoint figures kept in memory (the newest ones); older ones are
/// only counted.
pub(crate) const CHECKPOINT_HISTORY: usize = 64;

/// Recent checkpoints and the totals since the job started.
#[derive(Debug, Default)]
pub(crate) struct CheckpointLog {
    pub(crate) recent: VecDeque<CheckpointStats>,
    pub(crate) completed: u64,
    pub(crate) aborted: u64,
}

/// State shared by the actors of a job and its handle.
pub(crate) struct Lifecycle {
    pub(crate) id: Uuid,
    pub(crate) name: String,
    pub(crate) registry: Registry,
    remaining_sinks: AtomicUsize,
    started: Instant,
    finished: Mutex<Option<Instant>>,
    checkpoints: Mutex<CheckpointLog>,
    done: watch::Sender<bool>,
    error: Mutex<Option<JobError>>,
    /// Set by `cancel`: actors going away then is expected.
    cancelled: AtomicBool,
    /// The checkpoint the job resumed from.
    pub(crate) resumed_from: std::sync::OnceLock<u64>,
}

impl fmt::Debug for Lifecycle {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Lifecycle").field("id", &self.id).field("name", &self.name).finish()
    }
}

impl Lifecycle {
    pub(crate) fn new(name: String, sinks: usize) -> Arc<Self> {
        let (done, _) = watch::channel(sinks == 0);
        Arc::new(Lifecycle {
            id: Uuid::new_v4(),
            name,
            registry: Registry::default(),
            remaining_sinks: AtomicUsize::new(sinks),
            started: Instant::now(),
            finished: Mutex::new(None),
            checkpoints: Mutex::new(CheckpointLog::default()),
            done,
            error: Mutex::new(None),
            cancelled: AtomicBool::new(false),
            resumed_from: std::sync::OnceLock::new(),
        })
    }

    /// A sink has seen the end of its input and finished.
    pub(crate) fn sink_done(&self) {
        if self.remaining_sinks.fetch_sub(1, Ordering::AcqRel) == 1 {
            self.finish();
        }
    }

    /// The job fails with `e` (the first failure wins) and is over.
    pub(crate) fn fail(&self, e: JobError) {
        if self.is_finished() {
            return;
        }
        tracing::error!(job = %self.name, error = %e, "job failed");
        if let Ok(mut err) = self.error.lock() {
            err.get_or_insert(e);
        }
        self.finish();
    }

    /// An actor is going away (dropped). Expected once the job is over or
    /// cancelled; otherwise its Arbiter or System was stopped under it,
    /// and the job cannot finish: it fails.
    pub(crate) fn actor_gone(&self, actor: &str) {
        if self.is_finished() || self.cancelled.load(Ordering::Acquire) {
            return;
        }
        self.fail(JobError::Stopped { actor: actor.to_string() });
    }

    /// The job is being cancelled: it ends with [`JobError::Cancelled`].
    pub(crate) fn cancel(&self) {
        self.cancelled.store(true, Ordering::Release);
        if let Ok(mut e) = self.error.lock() {
            e.get_or_insert(JobError::Cancelled);
        }
        self.finish();
    }

    pub(crate) fn is_finished(&self) -> bool {
        *self.done.borrow()
    }

    /// A watch that turns true when the job is over.
    pub(crate) fn subscribe(&self) -> watch::Receiver<bool> {
        self.done.subscribe()
    }

    /// The job's error, if it failed or was cancelled.
    pub(crate) fn error(&self) -> Option<JobError> {
        self.error.lock().ok().and_then(|e| e.clone())
    }

    pub(crate) fn record_checkpoint(&self, stats: CheckpointStats) {
        if let Ok(mut log) = self.checkpoints.lock() {
            if stats.completed {
                log.completed += 1;
            } else {
                log.aborted += 1;
            }
            if log.recent.len() == CHECKPOINT_HISTORY {
                log.recent.pop_front();
            }
            log.recent.push_back(stats);
        }
    }

    /// The recent checkpoints (oldest first) and the totals.
    pub(crate) fn checkpoints(&self) -> (Vec<CheckpointStats>, u64, u64) {
        self.checkpoints
            .lock()
            .map(|log| (log.recent.iter().cloned().collect(), log.completed, log.aborted))
            .unwrap_or_default()
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

#[cfg(test)]
mod tests {
    use super::*;

    fn stats(seq: u64, completed: bool) -> CheckpointStats {
        CheckpointStats { seq, duration: Duration::ZERO, alignment: Duration::ZERO, bytes: 0, completed }
    }

    #[test]
    fn the_checkpoint_history_keeps_the_newest_and_counts_them_all() {
        let l = Lifecycle::new("job".into(), 1);
        for seq in 1..=200 {
            l.record_checkpoint(stats(seq, seq % 10 != 0));
        }
        let (recent, completed, aborted) = l.checkpoints();
        assert_eq!(recent.len(), CHECKPOINT_HISTORY);
        assert_eq!(recent.first().map(|c| c.seq), Some(200 - CHECKPOINT_HISTORY as u64 + 1));
        assert_eq!(recent.last().map(|c| c.seq), Some(200));
        assert_eq!((completed, aborted), (180, 20));
    }

    #[test]
    fn the_first_failure_is_the_outcome_and_later_ones_are_ignored() {
        let l = Lifecycle::new("job".into(), 1);
        l.fail(JobError::Runtime("first".into()));
        l.fail(JobError::Runtime("second".into()));
        l.actor_gone("a#0");
        assert!(l.is_finished());
        assert!(matches!(l.error(), Some(JobError::Runtime(m)) if m == "first"));
    }

    #[test]
    fn an_actor_gone_after_a_cancel_is_not_a_failure() {
        let l = Lifecycle::new("job".into(), 1);
        l.cancel();
        l.actor_gone("a#0");
        assert!(matches!(l.error(), Some(JobError::Cancelled)));
    }
}
