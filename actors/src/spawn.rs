//! Starting a job's nodes, in two phases.
//!
//! A node is started by two functions the builder gave it. The first
//! ([`PrepareFn`]) runs with a [`Restorer`]: it makes the node's user
//! objects (sources, operators, window cores, sinks) and, when the job
//! resumes from a checkpoint, gives each its snapshot back — a source
//! seeks, an operator decodes its state. Nothing runs yet and nothing
//! outside the process is touched, except by sinks, whose restore runs
//! last: so a checkpoint that does not fit (a snapshot that does not
//! decode, a source that cannot seek) is refused before any output is cut
//! back. The second function ([`StartFn`]) runs with a [`Spawner`] and
//! starts the actor instances, downstream nodes first, so that every node
//! finds the addresses of the nodes it sends to.

use std::collections::HashMap;
use std::sync::atomic::AtomicBool;
use std::sync::Arc;

use actix::{Actor, Addr, Arbiter, ArbiterHandle, Context, Recipient};

use crate::checkpoint::CheckpointConfig;
use crate::checkpoint::{Completed, Participant, Snapshot, Trigger};
use crate::control::lifecycle::Lifecycle;
use crate::control::start_gate::StartGate;
use crate::error::JobError;
use crate::message::CheckpointId;
use crate::metrics::ActorKind;
use crate::metrics::ActorMetrics;
use crate::output::edge::Discard;
use crate::output::outlet::Outlet;
use crate::output::pool::BatchPool;
use crate::output::OutputFactory;
use crate::shell::{ActorGuard, Core, Shell, ShellWiring};
use crate::source::actor::StopSource;
use crate::source::DeadLetter;

/// Job-wide settings.
#[derive(Debug, Clone)]
pub(crate) struct JobConfig {
    pub(crate) name: String,
    pub(crate) batch_size: usize,
    pub(crate) mailbox_capacity: usize,
    pub(crate) checkpoint: Option<CheckpointConfig>,
    /// `None`: [`Placement::Slots`] with as many slots as the largest
    /// parallelism of any node.
    pub(crate) placement: Option<Placement>,
    /// What the job declared about the settings that shape its input and
    /// results (`JobBuilder::configuration`): recorded in every checkpoint,
    /// compared on restore.
    pub(crate) configuration: Vec<(String, String)>,
}

/// How a job's actor instances are placed on threads (actix Arbiters).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Placement {
    /// Every actor instance on a thread of its own: stages of a pipeline
    /// overlap, at the cost of a thread wake-up per message between them.
    ThreadPerActor,
    /// `n` threads ("slots"); instance `i` of every node runs on slot
    /// `i % n`, so a slot holds one slice of the whole pipeline (source `i`,
    /// window manager `i`, ...), as Flink's slot sharing does. Messages
    /// within a slot never wake another thread.
    Slots(usize),
}

/// What a node's spawn function is told about its node.
#[derive(Debug, Clone)]
pub(crate) struct NodeInfo {
    pub(crate) name: String,
    pub(crate) kind: ActorKind,
    pub(crate) parallelism: usize,
    pub(crate) inputs: usize,
    /// First input index of this node's instances at the dead-letter sink.
    pub(crate) dead_offset: usize,
}

impl NodeInfo {
    /// The name of instance `i`: `<node>#<i>`.
    pub(crate) fn actor(&self, i: usize) -> String {
        format!("{}#{}", self.name, i)
    }
}

/// Phase one of starting a node: make and restore its user objects.
pub(crate) type PrepareFn = Box<dyn FnOnce(&mut Restorer, &NodeInfo) -> Result<StartFn, JobError> + Send>;

/// Phase two: start the node's actor instances.
pub(crate) type StartFn = Box<dyn FnOnce(&mut Spawner, &NodeInfo) + Send>;

/// The checkpoint a job resumes from, handed out actor by actor in phase
/// one.
#[derive(Debug)]
pub(crate) struct Restorer {
    /// Whether the job checkpoints (then every actor takes part).
    pub(crate) checkpointing: bool,
    restored: Option<(CheckpointId, HashMap<String, Vec<u8>>)>,
    dir: String,
}

impl Restorer {
    pub(crate) fn new(
        checkpointing: bool,
        restored: Option<(CheckpointId, HashMap<String, Vec<u8>>)>,
        dir: String,
    ) -> Self {
        Restorer { checkpointing, restored, dir }
    }

    /// The checkpoint the job resumes from.
    pub(crate) fn id(&self) -> Option<CheckpointId> {
        self.restored.as_ref().map(|r| r.0)
    }

    /// The snapshot of `actor` in the checkpoint the job resumes from
    /// (`None` when it does not resume).
    pub(crate) fn take(&mut self, actor: &str) -> Result<Option<(CheckpointId, Snapshot)>, JobError> {
        let Some((id, snaps)) = self.restored.as_mut() else { return Ok(None) };
        let id = *id;
        match snaps.remove(actor) {
            Some(bytes) => Ok(Some((id, Snapshot::from_bytes(bytes)))),
            None => {
                Err(self.refuse(actor, "the checkpoint has no snapshot for it: it was written by a different topology"))
            }
        }
    }

    /// A refusal to restore, naming `actor` and why.
    pub(crate) fn refuse(&self, actor: &str, why: impl std::fmt::Display) -> JobError {
        JobError::Restore {
            checkpoint: self.id().map_or(0, |id| id.seq),
            dir: self.dir.clone(),
            reason: format!("{actor}: {why}"),
        }
    }
}

/// Starts actor instances for the nodes' start functions.
pub(crate) struct Spawner {
    pub(crate) config: JobConfig,
    pub(crate) lifecycle: Arc<Lifecycle>,
    pub(crate) arbiters: Vec<Arbiter>,
    placement: Placement,
    /// The threads of [`Placement::Slots`], by slot.
    slots: Vec<ArbiterHandle>,
    pub(crate) sources: Vec<Recipient<StopSource>>,
    pub(crate) stop_flags: Vec<Arc<AtomicBool>>,
    dead: Option<OutputFactory<DeadLetter>>,
    participant: Option<Participant>,
    pub(crate) triggers: Vec<Recipient<Trigger>>,
    pub(crate) completions: Vec<Recipient<Completed>>,
    /// Actors not created yet; sources wait for none to be missing.
    pub(crate) gate: Arc<StartGate>,
}

impl Spawner {
    pub(crate) fn new(
        config: JobConfig,
        lifecycle: Arc<Lifecycle>,
        placement: Placement,
        dead: Option<OutputFactory<DeadLetter>>,
        participant: Option<Participant>,
    ) -> Self {
        Spawner {
            config,
            lifecycle,
            arbiters: Vec::new(),
            placement,
            slots: Vec::new(),
            sources: Vec::new(),
            stop_flags: Vec::new(),
            dead,
            participant,
            triggers: Vec::new(),
            completions: Vec::new(),
            gate: Arc::default(),
        }
    }

    /// Metrics for instance `i` of `node`, registered with the job.
    pub(crate) fn metrics(&self, node: &NodeInfo, i: usize) -> Arc<ActorMetrics> {
        let m = ActorMetrics::new(node.actor(i), node.kind, self.config.mailbox_capacity);
        self.lifecycle.registry.register(&m);
        m
    }

    /// What a shell actor needs from the job besides its core and ports.
    pub(crate) fn wiring(&self, metrics: &Arc<ActorMetrics>) -> ShellWiring {
        ShellWiring {
            metrics: Arc::clone(metrics),
            participant: self.participant.clone(),
            guard: self.guard(&metrics.name),
            alignment_cap: self.config.checkpoint.as_ref().map_or(usize::MAX, |c| c.alignment_cap),
        }
    }

    /// The guard that fails the job if actor `name` goes away early.
    pub(crate) fn guard(&self, name: &str) -> ActorGuard {
        ActorGuard::new(name.to_string(), Arc::clone(&self.lifecycle))
    }

    /// Starts instance `instance` of a node on the arbiter the job's
    /// [`Placement`] gives it, with a bounded mailbox (set in the creation
    /// closure: set in `started` it would take effect only after the first
    /// poll).
    pub(crate) fn start<A, F>(&mut self, instance: usize, make: F) -> Addr<A>
    where
        A: Actor<Context = Context<A>>,
        F: FnOnce(&mut Context<A>) -> A + Send + 'static,
    {
        let handle = match self.placement {
            Placement::ThreadPerActor => {
                let arbiter = Arbiter::new();
                let handle = arbiter.handle();
                self.arbiters.push(arbiter);
                handle
            }
            Placement::Slots(n) => {
                let slot = instance % n.max(1);
                while self.slots.len() <= slot {
                    let arbiter = Arbiter::new();
                    self.slots.push(arbiter.handle());
                    self.arbiters.push(arbiter);
                }
                self.slots[slot].clone()
            }
        };
        let cap = self.config.mailbox_capacity;
        let gate = Arc::clone(&self.gate);
        gate.expect();
        A::start_in_arbiter(&handle, move |ctx| {
            ctx.set_mailbox_capacity(cap);
            let actor = make(ctx);
            gate.arrived();
            actor
        })
    }

    /// The dead-letter output of a source instance.
    pub(crate) fn dead_letters(
        &mut self,
        node: &NodeInfo,
        i: usize,
        metrics: &Arc<ActorMetrics>,
    ) -> Outlet<DeadLetter> {
        let emit = match &mut self.dead {
            Some(f) => f(node.dead_offset + i, metrics),
            None => Box::new(Discard),
        };
        Outlet::new(emit, Arc::clone(metrics))
    }

    pub(crate) fn register_source(
        &mut self,
        stop: Recipient<StopSource>,
        trigger: Recipient<Trigger>,
        flag: Arc<AtomicBool>,
    ) {
        self.sources.push(stop);
        self.stop_flags.push(flag);
        if self.participant.is_some() {
            self.triggers.push(trigger);
        }
    }

    /// An actor to tell when checkpoints complete.
    pub(crate) fn register_completion(&mut self, actor: Recipient<Completed>) {
        if self.participant.is_some() {
            self.completions.push(actor);
        }
    }

    /// How actors take part in checkpoints, when the job checkpoints.
    pub(crate) fn participant(&self) -> Option<Participant> {
        self.participant.clone()
    }
}

impl Restorer {
    /// Gives `core` its snapshot back when the job resumes (phase one).
    pub(crate) fn restore_core<C: Core>(&mut self, actor: &str, core: &mut C) -> Result<(), JobError> {
        if let Some((id, state)) = self.take(actor)? {
            core.restore(id, state).map_err(|e| self.refuse(actor, e))?;
        }
        Ok(())
    }
}

impl Spawner {
    /// Starts instance `i` of a node as a shell actor running `core` with
    /// ports `out`; it is told when checkpoints complete.
    pub(crate) fn start_shell<C: Core>(
        &mut self,
        i: usize,
        core: C,
        out: C::Outputs,
        inputs: usize,
        metrics: &Arc<ActorMetrics>,
        pool: Arc<BatchPool<C::In>>,
    ) -> Addr<Shell<C>> {
        let wiring = self.wiring(metrics);
        let addr = self.start(i, move |_| Shell::new(core, out, inputs, pool, wiring));
        self.register_completion(addr.clone().recipient());
        addr
    }
}
