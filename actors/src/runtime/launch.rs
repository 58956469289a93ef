//! Launching a job: open its checkpoints, restore every node (sinks last),
//! start the checkpoint coordinator and the actors, and hand back the
//! [`JobHandle`].
//!
//! A restore is all or nothing for what is outside the process: every
//! snapshot is decoded and every source moved to its position before any
//! sink restores (which may cut its output back to the checkpoint), and no
//! actor starts before all of that succeeded. A checkpoint of another
//! topology or configuration is refused with an error that says what
//! differs.

use std::sync::{Arc, Mutex};
use std::time::Instant;

use actix::{Actor, Arbiter};

use crate::checkpoint::{CheckpointConfig, Participant};
use crate::control::lifecycle::Lifecycle;
use crate::error::JobError;
use crate::metrics::ActorKind;
use crate::runtime::coordinator::{CheckpointPlan, Coordinator, Register};
use crate::runtime::handle::JobHandle;
use crate::spawn::{Restorer, Spawner, StartFn};
use crate::state::{LocalDirBackend, RestoredCheckpoint, StateBackend};
use crate::topology::graph::{Graph, Placement};

/// Opens the checkpoint directory and reads the checkpoint to resume from,
/// if any, refusing one of another topology or configuration.
fn open_checkpoints(
    graph: &Graph,
    config: &CheckpointConfig,
) -> Result<(Box<dyn StateBackend>, Option<RestoredCheckpoint>), JobError> {
    let err = |e: crate::state::StateError| JobError::State(e.to_string());
    let backend: Box<dyn StateBackend> = match &config.backend {
        Some(factory) => factory.make().map_err(err)?,
        None => Box::new(LocalDirBackend::new(config.dir.clone(), config.retain).map_err(err)?),
    };
    let latest = backend.latest().map_err(err)?;
    if let Some(r) = &latest {
        for e in &r.skipped {
            tracing::error!(job = %graph.config.name, error = %e, "unusable checkpoint skipped; using the previous complete one");
        }
        let refuse = |reason: String| JobError::Restore { checkpoint: r.meta.id.seq, dir: config.location(), reason };
        let want = graph.fingerprint();
        if r.meta.topology != want {
            return Err(refuse(format!(
                "it was written by a different topology (operators or parallelism differ).\n  checkpoint: {}\n  this job:   {}",
                r.meta.topology, want
            )));
        }
        let differences = crate::state::config_differences(&r.meta.config, &graph.config.configuration);
        if !differences.is_empty() {
            return Err(refuse(format!(
                "it was written with another configuration: {}. Resume with the same settings, or start afresh in another directory",
                differences.join("; ")
            )));
        }
        tracing::info!(job = %graph.config.name, seq = r.meta.id.seq, dir = %config.location(), "resuming from checkpoint");
    }
    Ok((backend, latest))
}

/// Starts every actor of `graph` (inside a running actix System).
pub(crate) fn launch(mut graph: Graph) -> Result<JobHandle, JobError> {
    let started = Instant::now();
    let sinks: usize = graph.nodes.iter().filter(|n| n.info.kind == ActorKind::Sink).map(|n| n.info.parallelism).sum();
    let lifecycle = Lifecycle::new(graph.config.name.clone(), sinks);
    let description = Arc::new(graph.describe());
    let checkpoint = graph.config.checkpoint.clone();
    let opened = checkpoint.as_ref().map(|c| open_checkpoints(&graph, c)).transpose()?;
    let (backend, latest) = match opened {
        Some((b, l)) => (Some(b), l),
        None => (None, None),
    };
    let next_seq = latest.as_ref().map_or(1, |r| r.meta.id.seq + 1);
    let dir = checkpoint.as_ref().map(|c| c.location()).unwrap_or_default();
    let mut restorer = Restorer::new(checkpoint.is_some(), latest.map(|r| (r.meta.id, r.snapshots)), dir);

    // Phase one: every node's objects made and restored, sinks last, before
    // any actor starts.
    let mut starts: Vec<Option<StartFn>> = (0..graph.nodes.len()).map(|_| None).collect();
    let (others, sink_nodes): (Vec<usize>, Vec<usize>) =
        (0..graph.nodes.len()).partition(|&i| graph.nodes[i].info.kind != ActorKind::Sink);
    for i in others.into_iter().chain(sink_nodes) {
        let node = &mut graph.nodes[i];
        let prepare = node.prepare.take().expect("validated: every node has a prepare function");
        starts[i] = Some(prepare(&mut restorer, &node.info)?);
    }

    // Phase two: the coordinator, then the actors, downstream first.
    let mut arbiters = Vec::new();
    let mut coordinator = None;
    if let (Some(config), Some(backend)) = (checkpoint, backend) {
        let actors: Vec<String> =
            graph.nodes.iter().flat_map(|n| (0..n.info.parallelism).map(move |i| n.info.actor(i))).collect();
        let plan = CheckpointPlan {
            next_seq,
            topology: graph.fingerprint(),
            configuration: graph.config.configuration.clone(),
            actors,
        };
        let coord = Coordinator::new(config, backend, plan, Arc::clone(&lifecycle));
        let arbiter = Arbiter::new();
        let addr = Coordinator::start_in_arbiter(&arbiter.handle(), move |ctx| {
            ctx.set_mailbox_capacity(4096);
            coord
        });
        arbiters.push(arbiter);
        coordinator = Some(addr);
    }
    let placement = graph
        .config
        .placement
        .unwrap_or_else(|| Placement::Slots(graph.nodes.iter().map(|n| n.info.parallelism).max().unwrap_or(1)));
    let participant = coordinator.as_ref().map(|c| Participant { coordinator: c.clone().recipient() });
    let dead = graph.dead.take().map(|d| d.1);
    let mut spawner = Spawner::new(graph.config.clone(), Arc::clone(&lifecycle), placement, dead, participant);
    spawner.arbiters = arbiters;
    tracing::info!(job = %graph.config.name, id = %lifecycle.id, nodes = graph.nodes.len(), "starting job");
    for i in graph.spawn_order() {
        let start = starts[i].take().expect("every node was prepared");
        start(&mut spawner, &graph.nodes[i].info);
    }
    if let Some(id) = restorer.id() {
        let _ = lifecycle.resumed_from.set(id.seq);
        tracing::info!(job = %graph.config.name, seq = id.seq, ms = started.elapsed().as_millis() as u64, "checkpoint restored and job started");
    }
    if let Some(c) = &coordinator {
        let register = Register {
            sources: std::mem::take(&mut spawner.triggers),
            sinks: std::mem::take(&mut spawner.completions),
        };
        if c.try_send(register).is_err() {
            lifecycle.cancel();
            for a in spawner.arbiters.drain(..) {
                a.stop();
            }
            return Err(JobError::Runtime("the checkpoint coordinator did not start".into()));
        }
    }
    Ok(JobHandle {
        lifecycle,
        graph: description,
        sources: Arc::new(spawner.sources),
        stop_flags: Arc::new(spawner.stop_flags),
        arbiters: Arc::new(Mutex::new(spawner.arbiters)),
        coordinator: coordinator.map(|c| c.recipient()),
        stopped: Arc::new(tokio::sync::watch::channel(false).0),
    })
}
