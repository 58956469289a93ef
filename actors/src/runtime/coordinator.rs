//! The checkpoint coordinator actor: triggers checkpoints, collects the
//! actors' snapshots, completes (or aborts) checkpoints.
//!
//! Periodic triggers start only once the sources and sinks have registered
//! (so that the first barrier reaches every source). A checkpoint completes
//! when every actor has acknowledged and its metadata is written; then
//! every actor is told (`Completed`: sinks commit), and whoever asked for
//! that checkpoint (`JobHandle::checkpoint`) is answered once they all have
//! handled it, so that what it covers is visible when the answer comes.

use std::collections::{BTreeMap, HashSet};
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use actix::{Actor, AsyncContext, Context, Handler, Recipient};
use tokio::sync::oneshot;

use crate::checkpoint::{Ack, CheckpointConfig, CheckpointStats, Completed, Trigger};
use crate::control::lifecycle::Lifecycle;
use crate::message::CheckpointId;
use crate::shell::ActorGuard;
use crate::state::{CheckpointMeta, StateBackend};

struct Pending {
    started: Instant,
    waiting: HashSet<String>,
    bytes: u64,
    alignment: Duration,
    failed: Option<String>,
    reply: Vec<oneshot::Sender<Result<CheckpointStats, String>>>,
    /// `checkpoint{job, seq}`: open from the trigger to completion or abort
    /// (with `FmtSpan::CLOSE` a subscriber prints its duration).
    span: tracing::Span,
}

/// Who to tell: the sources (triggers) and the sinks (completions).
pub(crate) struct Register {
    pub(crate) sources: Vec<Recipient<Trigger>>,
    pub(crate) sinks: Vec<Recipient<Completed>>,
}

impl actix::Message for Register {
    type Result = ();
}

/// Take a checkpoint now; the reply says how it ended.
pub(crate) struct TriggerNow(pub(crate) oneshot::Sender<Result<CheckpointStats, String>>);

impl actix::Message for TriggerNow {
    type Result = ();
}

/// What the checkpoints of one job record and who takes part.
#[derive(Debug, Clone)]
pub(crate) struct CheckpointPlan {
    /// The first sequence number to use (after the checkpoint resumed from).
    pub(crate) next_seq: u64,
    /// The topology's fingerprint.
    pub(crate) topology: String,
    /// The job's declared configuration.
    pub(crate) configuration: Vec<(String, String)>,
    /// Every actor that acknowledges (`node#instance`).
    pub(crate) actors: Vec<String>,
}

pub(crate) struct Coordinator {
    next_seq: u64,
    config: CheckpointConfig,
    backend: Box<dyn StateBackend>,
    plan: CheckpointPlan,
    sources: Vec<Recipient<Trigger>>,
    sinks: Vec<Recipient<Completed>>,
    pending: BTreeMap<u64, Pending>,
    lifecycle: Arc<Lifecycle>,
    /// Fails the job if the coordinator goes away while it runs.
    _guard: ActorGuard,
}

/// The coordinator's name in errors and logs.
const NAME: &str = "checkpoint-coordinator";

impl Coordinator {
    pub(crate) fn new(
        config: CheckpointConfig,
        backend: Box<dyn StateBackend>,
        plan: CheckpointPlan,
        lifecycle: Arc<Lifecycle>,
    ) -> Self {
        let guard = ActorGuard::new(NAME.to_string(), Arc::clone(&lifecycle));
        Coordinator {
            next_seq: plan.next_seq,
            config,
            backend,
            plan,
            sources: Vec::new(),
            sinks: Vec::new(),
            pending: BTreeMap::new(),
            lifecycle,
            _guard: guard,
        }
    }

    fn id(&self, seq: u64) -> CheckpointId {
        CheckpointId { job: self.lifecycle.id, seq }
    }

    fn trigger(&mut self, ctx: &mut Context<Self>, reply: Option<oneshot::Sender<Result<CheckpointStats, String>>>) {
        if self.lifecycle.is_finished() {
            if let Some(r) = reply {
                let _ = r.send(Err("the job has finished".into()));
            }
            return;
        }
        let seq = self.next_seq;
        self.next_seq += 1;
        let id = self.id(seq);
        let span = tracing::info_span!("checkpoint", job = %self.lifecycle.name, seq);
        span.in_scope(|| tracing::debug!("checkpoint triggered"));
        self.pending.insert(
            seq,
            Pending {
                span,
                started: Instant::now(),
                waiting: self.plan.actors.iter().cloned().collect(),
                bytes: 0,
                alignment: Duration::ZERO,
                failed: None,
                reply: reply.into_iter().collect(),
            },
        );
        for s in &self.sources {
            // Control plane: a source's mailbox only holds triggers and
            // stop requests, so waiting for room briefly is fine.
            let s = s.clone();
            actix::spawn(async move {
                let _ = s.send(Trigger(id)).await;
            });
        }
        ctx.run_later(self.config.timeout, move |act, _| act.abort(seq, "timed out"));
    }

    /// A periodic trigger: a checkpoint, unless one is still in flight.
    /// When checkpoints take longer than the interval (slow storage, large
    /// state), triggering more would queue them here — their
    /// acknowledgements and snapshot bytes with them — faster than they
    /// complete: memory and the age of the last complete checkpoint would
    /// grow without bound. So periodic checkpoints follow one another no
    /// faster than they complete (Flink's one concurrent checkpoint);
    /// one asked for with `JobHandle::checkpoint` starts at once.
    fn tick(&mut self, ctx: &mut Context<Self>) {
        if self.pending.is_empty() {
            self.trigger(ctx, None);
        }
    }

    fn abort(&mut self, seq: u64, why: &str) {
        let Some(p) = self.pending.remove(&seq) else { return };
        let waiting: Vec<&String> = p.waiting.iter().take(5).collect();
        p.span
            .in_scope(|| tracing::warn!(job = %self.lifecycle.name, seq, reason = why, ?waiting, "checkpoint aborted"));
        let _ = self.backend.abort(self.id(seq));
        let stats = CheckpointStats {
            seq,
            duration: p.started.elapsed(),
            alignment: p.alignment,
            bytes: p.bytes,
            completed: false,
        };
        self.lifecycle.record_checkpoint(stats);
        for r in p.reply {
            let _ = r.send(Err(format!("checkpoint {seq} aborted: {why}")));
        }
    }

    fn complete(&mut self, seq: u64) {
        let Some(p) = self.pending.remove(&seq) else { return };
        let id = self.id(seq);
        let completed_at_ms = SystemTime::now().duration_since(UNIX_EPOCH).map(|d| d.as_millis() as u64).unwrap_or(0);
        let meta = CheckpointMeta {
            id,
            topology: self.plan.topology.clone(),
            config: self.plan.configuration.clone(),
            actors: self.plan.actors.clone(),
            completed_at_ms,
            bytes: p.bytes,
        };
        if let Err(e) = self.backend.commit(&meta) {
            p.span.in_scope(|| tracing::error!(job = %self.lifecycle.name, seq, error = %e, "checkpoint metadata could not be written"));
            let _ = self.backend.abort(id);
            let stats = CheckpointStats {
                seq,
                duration: p.started.elapsed(),
                alignment: p.alignment,
                bytes: p.bytes,
                completed: false,
            };
            self.lifecycle.record_checkpoint(stats);
            for r in p.reply {
                let _ = r.send(Err(format!("checkpoint {seq}: {e}")));
            }
            return;
        }
        // Older pending checkpoints can no longer complete usefully.
        let older: Vec<u64> = self.pending.range(..seq).map(|(s, _)| *s).collect();
        for s in older {
            self.abort(s, "a newer checkpoint completed first");
        }
        let stats = CheckpointStats {
            seq,
            duration: p.started.elapsed(),
            alignment: p.alignment,
            bytes: p.bytes,
            completed: true,
        };
        p.span.in_scope(|| {
            tracing::info!(job = %self.lifecycle.name, seq, bytes = p.bytes, duration_ms = stats.duration.as_millis() as u64, "checkpoint complete")
        });
        self.lifecycle.record_checkpoint(stats.clone());
        // Every actor handles `Completed` (sinks commit) before whoever
        // asked for this checkpoint hears that it is done.
        let told: Vec<_> = self.sinks.iter().map(|s| s.send(Completed(id))).collect();
        let reply = p.reply;
        actix::spawn(async move {
            futures_util::future::join_all(told).await;
            for r in reply {
                let _ = r.send(Ok(stats.clone()));
            }
        });
    }
}

impl Actor for Coordinator {
    type Context = Context<Self>;
}

impl Handler<Register> for Coordinator {
    type Result = ();
    fn handle(&mut self, msg: Register, ctx: &mut Context<Self>) {
        self.sources = msg.sources;
        self.sinks = msg.sinks;
        // Periodic checkpoints start now that every source can be reached.
        if let Some(every) = self.config.interval {
            ctx.run_interval(every, |act, ctx| {
                let lifecycle = Arc::clone(&act.lifecycle);
                let _ = crate::shell::guarded(&lifecycle, NAME, "a periodic trigger", || act.tick(ctx));
            });
        }
    }
}

impl Handler<TriggerNow> for Coordinator {
    type Result = ();
    fn handle(&mut self, msg: TriggerNow, ctx: &mut Context<Self>) {
        self.trigger(ctx, Some(msg.0));
    }
}

impl Handler<Ack> for Coordinator {
    type Result = ();
    fn handle(&mut self, ack: Ack, _ctx: &mut Context<Self>) {
        let lifecycle = Arc::clone(&self.lifecycle);
        let _ = crate::shell::guarded(&lifecycle, NAME, "an acknowledgement", || self.acknowledged(ack));
    }
}

impl Coordinator {
    fn acknowledged(&mut self, ack: Ack) {
        // A job that failed or was cancelled writes nothing more: a job
        // restarted on the same directory may soon be reading and writing
        // it, and actix handles every queued message in one poll, so a
        // backlog of acknowledgements would otherwise keep this actor
        // writing long after the failure. (A job that completed may still
        // complete the checkpoint in flight.)
        if self.lifecycle.error().is_some() {
            return;
        }
        let seq = ack.id.seq;
        let Some(p) = self.pending.get_mut(&seq) else { return };
        if !p.waiting.remove(&ack.actor) {
            return;
        }
        p.alignment = p.alignment.max(ack.alignment);
        match self.backend.write_snapshot(ack.id, &ack.actor, &ack.state) {
            Ok(n) => p.bytes += n,
            Err(e) => p.failed = Some(e.to_string()),
        }
        if let Some(why) = p.failed.clone() {
            self.abort(seq, &why);
        } else if p.waiting.is_empty() {
            self.complete(seq);
        }
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Mutex;

    use super::*;
    use crate::error::JobError;
    use crate::state::{RestoredCheckpoint, StateError};

    /// A state backend that records the calls it gets.
    #[derive(Debug, Clone, Default)]
    struct Recording(Arc<Mutex<Vec<String>>>);

    impl Recording {
        fn calls(&self) -> Vec<String> {
            self.0.lock().expect("not poisoned").clone()
        }
        fn record(&self, call: String) {
            self.0.lock().expect("not poisoned").push(call);
        }
    }

    impl StateBackend for Recording {
        fn write_snapshot(&mut self, id: CheckpointId, actor: &str, bytes: &[u8]) -> Result<u64, StateError> {
            self.record(format!("write {} {actor}", id.seq));
            Ok(bytes.len() as u64)
        }
        fn commit(&mut self, meta: &CheckpointMeta) -> Result<(), StateError> {
            self.record(format!("commit {}", meta.id.seq));
            Ok(())
        }
        fn abort(&mut self, id: CheckpointId) -> Result<(), StateError> {
            self.record(format!("abort {}", id.seq));
            Ok(())
        }
        fn latest(&self) -> Result<Option<RestoredCheckpoint>, StateError> {
            Ok(None)
        }
    }

    /// A coordinator of `actors` with checkpoint 1 pending.
    fn coordinator(actors: &[&str]) -> (Coordinator, Recording, Arc<Lifecycle>) {
        let lifecycle = Lifecycle::new("job".into(), 1);
        let backend = Recording::default();
        let actors: Vec<String> = actors.iter().map(|a| a.to_string()).collect();
        let plan =
            CheckpointPlan { next_seq: 1, topology: "t".into(), configuration: Vec::new(), actors: actors.clone() };
        let config = CheckpointConfig::on_demand("unused");
        let mut c = Coordinator::new(config, Box::new(backend.clone()), plan, Arc::clone(&lifecycle));
        c.pending.insert(
            1,
            Pending {
                started: Instant::now(),
                waiting: actors.into_iter().collect(),
                bytes: 0,
                alignment: Duration::ZERO,
                failed: None,
                reply: Vec::new(),
                span: tracing::Span::none(),
            },
        );
        c.next_seq = 2;
        (c, backend, lifecycle)
    }

    fn ack(c: &Coordinator, seq: u64, actor: &str) -> Ack {
        Ack { id: c.id(seq), actor: actor.into(), state: b"state".to_vec(), alignment: Duration::ZERO }
    }

    #[test]
    fn a_checkpoint_completes_once_every_actor_acknowledged() {
        actix::System::new().block_on(async {
            let (mut c, backend, _lifecycle) = coordinator(&["a#0", "b#0"]);
            c.acknowledged(ack(&c, 1, "a#0"));
            c.acknowledged(ack(&c, 1, "b#0"));
            assert_eq!(backend.calls(), ["write 1 a#0", "write 1 b#0", "commit 1"]);
        });
    }

    #[test]
    fn a_checkpoint_in_flight_when_the_job_completes_still_completes() {
        actix::System::new().block_on(async {
            let (mut c, backend, lifecycle) = coordinator(&["a#0", "b#0"]);
            c.acknowledged(ack(&c, 1, "a#0"));
            // The only sink finished: the job is complete, not failed.
            lifecycle.sink_done();
            c.acknowledged(ack(&c, 1, "b#0"));
            assert_eq!(backend.calls(), ["write 1 a#0", "write 1 b#0", "commit 1"]);
        });
    }

    #[test]
    fn a_periodic_trigger_waits_until_no_checkpoint_is_in_flight() {
        actix::System::new().block_on(async {
            let (mut c, _backend, _lifecycle) = coordinator(&["a#0"]);
            let mut ctx = Context::new();
            c.tick(&mut ctx);
            assert_eq!((c.next_seq, c.pending.len()), (2, 1), "nothing triggered while checkpoint 1 is in flight");
            c.acknowledged(ack(&c, 1, "a#0"));
            c.tick(&mut ctx);
            assert_eq!((c.next_seq, c.pending.len()), (3, 1), "checkpoint 2 triggered once 1 completed");
        });
    }

    #[test]
    fn acknowledgements_after_the_job_failed_write_nothing_and_complete_nothing() {
        actix::System::new().block_on(async {
            let (mut c, backend, lifecycle) = coordinator(&["a#0", "b#0"]);
            c.acknowledged(ack(&c, 1, "a#0"));
            lifecycle.fail(JobError::Stopped { actor: "a#0".into() });
            // A job restarted on the same directory may be using it now.
            c.acknowledged(ack(&c, 1, "b#0"));
            assert_eq!(backend.calls(), ["write 1 a#0"]);
            assert_eq!(lifecycle.checkpoints().1, 0, "no checkpoint completed");
        });
    }
}
