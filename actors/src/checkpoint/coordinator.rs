//! The checkpoint coordinator actor: triggers checkpoints, collects the
//! actors' snapshots, completes (or aborts) checkpoints.

use std::collections::{BTreeMap, HashSet};
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use actix::{Actor, AsyncContext, Context, Handler, Recipient};
use tokio::sync::oneshot;
use uuid::Uuid;

use crate::checkpoint::{Ack, CheckpointConfig, CheckpointStats, Completed, Trigger};
use crate::job::JobShared;
use crate::message::CheckpointId;
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

pub(crate) struct Coordinator {
    job: Uuid,
    next_seq: u64,
    config: CheckpointConfig,
    backend: Box<dyn StateBackend>,
    topology: String,
    actors: Vec<String>,
    sources: Vec<Recipient<Trigger>>,
    sinks: Vec<Recipient<Completed>>,
    pending: BTreeMap<u64, Pending>,
    shared: Arc<JobShared>,
}

impl Coordinator {
    #[allow(clippy::too_many_arguments)]
    pub(crate) fn new(
        job: Uuid,
        next_seq: u64,
        config: CheckpointConfig,
        backend: Box<dyn StateBackend>,
        topology: String,
        actors: Vec<String>,
        shared: Arc<JobShared>,
    ) -> Self {
        Coordinator { job, next_seq, config, backend, topology, actors, sources: Vec::new(), sinks: Vec::new(), pending: BTreeMap::new(), shared }
    }

    fn trigger(&mut self, ctx: &mut Context<Self>, reply: Option<oneshot::Sender<Result<CheckpointStats, String>>>) {
        if self.shared.is_finished() {
            if let Some(r) = reply {
                let _ = r.send(Err("the job has finished".into()));
            }
            return;
        }
        let seq = self.next_seq;
        self.next_seq += 1;
        let id = CheckpointId { job: self.job, seq };
        let span = tracing::info_span!("checkpoint", job = %self.shared.name, seq);
        span.in_scope(|| tracing::debug!("checkpoint triggered"));
        self.pending.insert(seq, Pending {
            span,
            started: Instant::now(),
            waiting: self.actors.iter().cloned().collect(),
            bytes: 0,
            alignment: Duration::ZERO,
            failed: None,
            reply: reply.into_iter().collect(),
        });
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

    fn abort(&mut self, seq: u64, why: &str) {
        let Some(p) = self.pending.remove(&seq) else { return };
        let waiting: Vec<&String> = p.waiting.iter().take(5).collect();
        p.span.in_scope(|| tracing::warn!(job = %self.shared.name, seq, reason = why, ?waiting, "checkpoint aborted"));
        let _ = self.backend.abort(CheckpointId { job: self.job, seq });
        let stats = CheckpointStats { seq, duration: p.started.elapsed(), alignment: p.alignment, bytes: p.bytes, completed: false };
        self.shared.record_checkpoint(stats);
        for r in p.reply {
            let _ = r.send(Err(format!("checkpoint {seq} aborted: {why}")));
        }
    }

    fn complete(&mut self, seq: u64) {
        let Some(p) = self.pending.remove(&seq) else { return };
        let id = CheckpointId { job: self.job, seq };
        let completed_at_ms = SystemTime::now().duration_since(UNIX_EPOCH).map(|d| d.as_millis() as u64).unwrap_or(0);
        let meta = CheckpointMeta { id, topology: self.topology.clone(), actors: self.actors.clone(), completed_at_ms, bytes: p.bytes };
        if let Err(e) = self.backend.commit(&meta) {
            p.span.in_scope(|| tracing::error!(job = %self.shared.name, seq, error = %e, "checkpoint metadata could not be written"));
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
        let stats = CheckpointStats { seq, duration: p.started.elapsed(), alignment: p.alignment, bytes: p.bytes, completed: true };
        p.span.in_scope(|| {
            tracing::info!(job = %self.shared.name, seq, bytes = p.bytes, duration_ms = stats.duration.as_millis() as u64, "checkpoint complete")
        });
        self.shared.record_checkpoint(stats.clone());
        for sink in &self.sinks {
            let sink = sink.clone();
            actix::spawn(async move {
                let _ = sink.send(Completed(id)).await;
            });
        }
        for r in p.reply {
            let _ = r.send(Ok(stats.clone()));
        }
    }
}

impl Actor for Coordinator {
    type Context = Context<Self>;

    fn started(&mut self, ctx: &mut Context<Self>) {
        if let Some(every) = self.config.interval {
            ctx.run_interval(every, |act, ctx| act.trigger(ctx, None));
        }
    }
}

impl Handler<Register> for Coordinator {
    type Result = ();
    fn handle(&mut self, msg: Register, _ctx: &mut Context<Self>) {
        self.sources = msg.sources;
        self.sinks = msg.sinks;
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
