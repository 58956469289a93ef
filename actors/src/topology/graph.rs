//! The job graph under construction and how it is started.
//!
//! Nodes are added as the builder is used; each holds a type-erased spawn
//! function that knows its node's types. Edges are recorded when a stream is
//! connected to the node that consumes it. At start the nodes are spawned
//! downstream-first (reverse topological order), so that every node finds
//! the addresses of the nodes it sends to.

use std::collections::HashSet;
use std::sync::atomic::AtomicBool;
use std::sync::{Arc, Mutex};

use actix::{Actor, Addr, Arbiter, ArbiterHandle, Context, Recipient};

use std::collections::HashMap;

use crate::checkpoint::coordinator::{Coordinator, Register};
use crate::checkpoint::{CheckpointConfig, Completed, Participant, Trigger};
use crate::job::{JobError, JobHandle, JobShared};
use crate::topology::{EdgeOutput, GraphEdge, GraphNode, JobGraph};
use crate::message::CheckpointId;
use crate::state::{LocalDirBackend, RestoredCheckpoint, StateBackend, StateError};
use crate::metrics::{ActorKind, ActorMetrics};
use crate::output::edge::Discard;
use crate::output::outlet::Outlet;
use crate::output::OutputFactory;
use crate::source::actor::StopSource;
use crate::source::DeadLetter;
use crate::topology::error::BuildError;
use crate::topology::start_gate::StartGate;

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
    /// Whether its actors acknowledge checkpoints (plain-actor operators
    /// only forward barriers).
    pub(crate) acks: bool,
}

pub(crate) type SpawnFn = Box<dyn FnOnce(&mut Spawner, &NodeInfo) + Send>;

pub(crate) struct Node {
    pub(crate) info: NodeInfo,
    pub(crate) connected: bool,
    pub(crate) side_taken: bool,
    pub(crate) spawn: Option<SpawnFn>,
}

pub(crate) struct Graph {
    pub(crate) config: JobConfig,
    pub(crate) nodes: Vec<Node>,
    pub(crate) edges: Vec<(usize, usize)>,
    /// Whether each edge of `edges` leaves its node's main output.
    edge_main: Vec<bool>,
    pub(crate) errors: Vec<BuildError>,
    names: HashSet<String>,
    /// The consumer of dead letters, if any: (node id, factory).
    pub(crate) dead: Option<(usize, OutputFactory<DeadLetter>)>,
    dead_requested: bool,
}

impl Graph {
    pub(crate) fn new(config: JobConfig) -> Self {
        Graph { config, nodes: Vec::new(), edges: Vec::new(), edge_main: Vec::new(), errors: Vec::new(), names: HashSet::new(), dead: None, dead_requested: false }
    }

    pub(crate) fn error(&mut self, e: BuildError) {
        self.errors.push(e);
    }

    pub(crate) fn invalid(&mut self, node: &str, parameter: &'static str, value: String) {
        self.error(BuildError::InvalidParameter { node: node.to_string(), parameter, value });
    }

    /// Adds a node; its spawn function may be set later.
    pub(crate) fn add_node(&mut self, name: &str, kind: ActorKind, parallelism: usize) -> usize {
        if !self.names.insert(name.to_string()) {
            self.error(BuildError::DuplicateName(name.to_string()));
        }
        if parallelism == 0 {
            self.invalid(name, "parallelism", "0 (must be >= 1)".into());
        }
        self.nodes.push(Node {
            info: NodeInfo { name: name.to_string(), kind, parallelism: parallelism.max(1), inputs: 0, dead_offset: 0, acks: true },
            connected: false,
            side_taken: false,
            spawn: None,
        });
        self.nodes.len() - 1
    }

    /// Renames a node (names stay unique).
    pub(crate) fn rename(&mut self, old: &str, new: &str) {
        self.names.remove(old);
        if !self.names.insert(new.to_string()) {
            self.error(BuildError::DuplicateName(new.to_string()));
        }
    }

    /// Records an edge from every instance of `from` to `to`; returns the
    /// first input index at `to` of `from`'s instances.
    /// `main`: the edge leaves `from`'s main output (not a side output).
    /// `forward`: instance `i` sends to instance `i` only (one input each).
    pub(crate) fn add_edge(&mut self, from: usize, to: usize, main: bool, forward: bool) -> usize {
        self.edges.push((from, to));
        self.edge_main.push(main);
        if main {
            self.nodes[from].connected = true;
        }
        let offset = self.nodes[to].info.inputs;
        self.nodes[to].info.inputs += if forward { 1 } else { self.nodes[from].info.parallelism };
        offset
    }

    pub(crate) fn request_dead_letters(&mut self) -> bool {
        !std::mem::replace(&mut self.dead_requested, true)
    }

    /// Final checks; wires dead letters from every source.
    pub(crate) fn validate(&mut self) -> Result<(), BuildError> {
        if self.config.batch_size == 0 {
            self.invalid("job", "batch size", "0 (must be >= 1)".into());
        }
        if self.config.mailbox_capacity == 0 {
            self.invalid("job", "mailbox capacity", "0 (must be >= 1)".into());
        }
        if let Some(e) = self.errors.first() {
            return Err(e.clone());
        }
        if !self.nodes.iter().any(|n| n.info.kind == ActorKind::Source) {
            return Err(BuildError::NoSource);
        }
        if !self.nodes.iter().any(|n| n.info.kind == ActorKind::Sink) {
            return Err(BuildError::NoSink);
        }
        for n in &self.nodes {
            if n.info.kind != ActorKind::Sink && !n.connected {
                return Err(BuildError::Unconnected(n.info.name.clone()));
            }
        }
        if let Some(dead) = self.dead.as_ref().map(|d| d.0) {
            let sources: Vec<usize> = (0..self.nodes.len()).filter(|&i| self.nodes[i].info.kind == ActorKind::Source).collect();
            for s in sources {
                let offset = self.nodes[dead].info.inputs;
                self.nodes[s].info.dead_offset = offset;
                self.nodes[dead].info.inputs += self.nodes[s].info.parallelism;
                self.edges.push((s, dead));
                self.edge_main.push(false);
            }
        }
        Ok(())
    }

    /// Nodes in an order where every node comes after all its downstreams.
    fn spawn_order(&self) -> Vec<usize> {
        let n = self.nodes.len();
        let mut out_degree = vec![0usize; n];
        for &(from, _) in &self.edges {
            out_degree[from] += 1;
        }
        let mut order = Vec::with_capacity(n);
        let mut ready: Vec<usize> = (0..n).filter(|&i| out_degree[i] == 0).collect();
        while let Some(i) = ready.pop() {
            order.push(i);
            for &(from, to) in &self.edges {
                if to == i {
                    out_degree[from] -= 1;
                    if out_degree[from] == 0 {
                        ready.push(from);
                    }
                }
            }
        }
        order
    }

    /// The public picture of this graph.
    fn describe(&self) -> JobGraph {
        JobGraph {
            nodes: self
                .nodes
                .iter()
                .map(|n| GraphNode { name: n.info.name.clone(), kind: n.info.kind, parallelism: n.info.parallelism })
                .collect(),
            edges: self
                .edges
                .iter()
                .zip(&self.edge_main)
                .map(|(&(a, b), &main)| GraphEdge {
                    from: self.nodes[a].info.name.clone(),
                    to: self.nodes[b].info.name.clone(),
                    output: if main { EdgeOutput::Main } else { EdgeOutput::Side },
                })
                .collect(),
        }
    }

    /// What identifies the topology for checkpoints: nodes (name, kind,
    /// parallelism) and edges.
    fn fingerprint(&self) -> String {
        let mut f = String::new();
        for n in &self.nodes {
            f.push_str(&format!("{}:{:?}:{};", n.info.name, n.info.kind, n.info.parallelism));
        }
        for (a, b) in &self.edges {
            f.push_str(&format!("{a}>{b};"));
        }
        f
    }

    /// Opens the checkpoint directory and reads the checkpoint to resume
    /// from, if any.
    fn open_checkpoints(&self, config: &CheckpointConfig) -> Result<(LocalDirBackend, Option<RestoredCheckpoint>), JobError> {
        let err = |e: StateError| JobError::Checkpoint(e.to_string());
        let backend = LocalDirBackend::new(config.dir.clone(), config.retain).map_err(err)?;
        let latest = backend.latest().map_err(err)?;
        if let Some(r) = &latest {
            for e in &r.skipped {
                tracing::error!(job = %self.config.name, error = %e, "corrupt checkpoint skipped; using the previous complete one");
            }
            let want = self.fingerprint();
            if r.meta.topology != want {
                return Err(JobError::Checkpoint(format!(
                    "checkpoint {} in {} was written by a different topology (operators or parallelism differ); refusing to restore it.\n  checkpoint: {}\n  this job:   {}",
                    r.meta.id.seq,
                    config.dir.display(),
                    r.meta.topology,
                    want
                )));
            }
            tracing::info!(job = %self.config.name, seq = r.meta.id.seq, dir = %config.dir.display(), "resuming from checkpoint");
        }
        Ok((backend, latest))
    }

    /// Starts every actor (inside a running actix System).
    pub(crate) fn spawn(mut self) -> Result<JobHandle, JobError> {
        let started = std::time::Instant::now();
        let sinks: usize = self.nodes.iter().filter(|n| n.info.kind == ActorKind::Sink).map(|n| n.info.parallelism).sum();
        let shared = JobShared::new(self.config.name.clone(), sinks, self.describe());
        let order = self.spawn_order();
        let mut spawner = Spawner {
            config: self.config.clone(),
            shared: Arc::clone(&shared),
            arbiters: Vec::new(),
            placement: self.config.placement.unwrap_or_else(|| {
                Placement::Slots(self.nodes.iter().map(|n| n.info.parallelism).max().unwrap_or(1))
            }),
            slots: Vec::new(),
            sources: Vec::new(),
            stop_flags: Vec::new(),
            dead: self.dead.take().map(|d| d.1),
            participant: None,
            restored: None,
            triggers: Vec::new(),
            completions: Vec::new(),
            error: None,
            gate: Arc::default(),
        };
        let mut coordinator = None;
        if let Some(config) = self.config.checkpoint.clone() {
            let (backend, latest) = self.open_checkpoints(&config)?;
            let actors: Vec<String> = self
                .nodes
                .iter()
                .filter(|n| n.info.acks)
                .flat_map(|n| (0..n.info.parallelism).map(move |i| format!("{}#{}", n.info.name, i)))
                .collect();
            let next_seq = latest.as_ref().map_or(1, |r| r.meta.id.seq + 1);
            if let Some(r) = latest {
                spawner.restored = Some((r.meta.id, r.snapshots));
            }
            let coord = Coordinator::new(shared.id, next_seq, config, Box::new(backend), self.fingerprint(), actors, Arc::clone(&shared));
            let arbiter = Arbiter::new();
            let addr = Coordinator::start_in_arbiter(&arbiter.handle(), move |ctx| {
                ctx.set_mailbox_capacity(4096);
                coord
            });
            spawner.arbiters.push(arbiter);
            spawner.participant = Some(Participant { coordinator: addr.clone().recipient() });
            coordinator = Some(addr);
        }
        tracing::info!(job = %self.config.name, id = %shared.id, nodes = self.nodes.len(), "starting job");
        for i in order {
            let node = &mut self.nodes[i];
            let spawn = node.spawn.take().expect("validated: every node has a spawn function");
            spawn(&mut spawner, &node.info);
            if let Some(e) = spawner.error.take() {
                for a in spawner.arbiters.drain(..) {
                    a.stop();
                }
                return Err(JobError::Checkpoint(e));
            }
        }
        if let Some((id, _)) = &spawner.restored {
            tracing::info!(job = %self.config.name, seq = id.seq, ms = started.elapsed().as_millis() as u64, "checkpoint restored and job started");
        }
        if let Some(c) = &coordinator {
            let register = Register { sources: std::mem::take(&mut spawner.triggers), sinks: std::mem::take(&mut spawner.completions) };
            if c.try_send(register).is_err() {
                return Err(JobError::Runtime("the checkpoint coordinator did not start".into()));
            }
        }
        Ok(JobHandle {
            shared,
            sources: Arc::new(spawner.sources),
            stop_flags: Arc::new(spawner.stop_flags),
            arbiters: Arc::new(Mutex::new(spawner.arbiters)),
            coordinator: coordinator.map(|c| c.recipient()),
        })
    }
}

/// Starts actor instances for the nodes' spawn functions.
pub(crate) struct Spawner {
    pub(crate) config: JobConfig,
    pub(crate) shared: Arc<JobShared>,
    arbiters: Vec<Arbiter>,
    placement: Placement,
    /// The threads of [`Placement::Slots`], by slot.
    slots: Vec<ArbiterHandle>,
    sources: Vec<Recipient<StopSource>>,
    stop_flags: Vec<Arc<AtomicBool>>,
    dead: Option<OutputFactory<DeadLetter>>,
    participant: Option<Participant>,
    restored: Option<(CheckpointId, HashMap<String, Vec<u8>>)>,
    triggers: Vec<Recipient<Trigger>>,
    completions: Vec<Recipient<Completed>>,
    error: Option<String>,
    /// Actors not created yet; sources wait for none to be missing.
    pub(crate) gate: Arc<StartGate>,
}

impl Spawner {
    /// Metrics for instance `i` of `node`, registered with the job.
    pub(crate) fn metrics(&self, node: &NodeInfo, i: usize) -> Arc<ActorMetrics> {
        let m = ActorMetrics::new(format!("{}#{}", node.name, i), node.kind, self.config.mailbox_capacity);
        self.shared.registry.register(&m);
        m
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
    pub(crate) fn dead_letters(&mut self, node: &NodeInfo, i: usize, metrics: &Arc<ActorMetrics>) -> Outlet<DeadLetter> {
        let emit = match &mut self.dead {
            Some(f) => f(node.dead_offset + i, metrics),
            None => Box::new(Discard),
        };
        Outlet::new(emit, Arc::clone(metrics))
    }

    pub(crate) fn register_source(&mut self, stop: Recipient<StopSource>, trigger: Recipient<Trigger>, flag: Arc<AtomicBool>) {
        self.sources.push(stop);
        self.stop_flags.push(flag);
        if self.participant.is_some() {
            self.triggers.push(trigger);
        }
    }

    /// A sink to tell when checkpoints complete.
    pub(crate) fn register_sink(&mut self, sink: Recipient<Completed>) {
        if self.participant.is_some() {
            self.completions.push(sink);
        }
    }

    /// How actors take part in checkpoints, when the job checkpoints.
    pub(crate) fn participant(&self) -> Option<Participant> {
        self.participant.clone()
    }

    /// The snapshot of `actor` in the checkpoint the job resumes from.
    pub(crate) fn restored(&mut self, actor: &str) -> Option<Vec<u8>> {
        let (id, snaps) = self.restored.as_mut()?;
        let found = snaps.remove(actor);
        if found.is_none() {
            let seq = id.seq;
            self.fail(format!("checkpoint {seq} has no snapshot for {actor}: it was written by a different topology"));
        }
        found
    }

    /// The checkpoint the job resumes from.
    pub(crate) fn restored_id(&self) -> Option<CheckpointId> {
        self.restored.as_ref().map(|r| r.0)
    }

    /// Starting cannot go on; the job start fails with `e`.
    pub(crate) fn fail(&mut self, e: String) {
        self.error.get_or_insert(e);
    }

    /// [`Self::fail`], for spawn functions that must return targets.
    pub(crate) fn fail_with<T>(&mut self, e: String) -> Vec<T> {
        self.fail(e);
        Vec::new()
    }
}
