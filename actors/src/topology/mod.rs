//! The typed topology builder.
//!
//! ```
//! use weir_actors::prelude::*;
//!
//! let job = JobBuilder::new("words");
//! let (sink, results) = CollectSink::new();
//! job.source("numbers", IterSource::new(0..100i64), |n: &i64| *n * 10, WatermarkStrategy::monotonic())
//!     .filter(|n| n % 2 == 0)
//!     .key_by(|n| n % 3, 2)
//!     .window(Windows::tumbling(500))
//!     .aggregate(Count)
//!     .sink("counts", sink);
//! job.build().unwrap().run_blocking().unwrap();
//! let total: u64 = results.values().iter().map(|r| r.value).sum();
//! assert_eq!(total, 50);
//! ```
//!
//! A [`Stream<T>`] is a typed handle on the output of a node, plus any
//! stateless stages (`map`, `filter`, `flat_map`) added after it: those are
//! fused into the node's actor when the stream is connected to the next
//! node. Streams are consumed by value: each stream feeds exactly one next
//! stage. Mistakes in parameters are collected and reported by
//! [`JobBuilder::build`] as a [`BuildError`] naming the node and parameter;
//! a type mismatch between stages is a compile error.

pub(crate) mod error;
mod describe;
pub(crate) mod graph;
mod keyed;
pub(crate) mod start_gate;

use std::fmt;
use std::sync::atomic::AtomicBool;
use std::sync::{Arc, Mutex, MutexGuard, OnceLock};

use actix::{Actor, Context, Handler, Recipient};

use crate::job::Job;
use crate::message::Envelope;
use crate::metrics::{ActorKind, ActorMetrics};
use crate::operator::{Operator, OperatorActor};
use crate::output::edge::RoundRobin;
use crate::output::outlet::Outlet;
use crate::output::stage::{Filter, FlatMap, Map};
use crate::output::{Emit, Inbox, OutputFactory, Target};
use crate::sink::{RecipientSinkActor, Sink, SinkActor};
use crate::checkpoint::{decode, CheckpointConfig};
use crate::source::actor::{SourceActor, SourceSettings, SourceSnapshot};
use crate::source::{DeadLetter, Source};
use crate::time::alignment::AlignmentGroup;
use crate::time::WatermarkStrategy;

pub use describe::{EdgeOutput, GraphEdge, GraphNode, JobGraph};
pub use error::BuildError;
pub use graph::Placement;
use graph::{Graph, JobConfig, NodeInfo, Spawner};
pub use keyed::{KeyedStream, WindowedStream};

/// Makes the output factory of an edge, given the first input index of the
/// upstream instances at the downstream node.
pub(crate) type EdgeMaker<T> = Box<dyn FnOnce(usize) -> OutputFactory<T> + Send>;

/// Connects a stream to the node `to` (graph, `to`, the edge).
type Connect<T> = Box<dyn FnOnce(&mut Graph, usize, EdgeMaker<T>) + Send>;

/// Where a node's spawn function finds the output factory of one port.
pub(crate) type Port<T> = Arc<Mutex<Option<OutputFactory<T>>>>;

pub(crate) fn lock(g: &Arc<Mutex<Graph>>) -> MutexGuard<'_, Graph> {
    // A panic while building (a user closure cannot run here) is the only
    // way to poison the lock; the graph is still consistent for reading.
    g.lock().unwrap_or_else(|e| e.into_inner())
}

/// The output factory stored in `port`, or a discarding one when nothing
/// was connected (side outputs only: validation guarantees main outputs).
pub(crate) fn take_port<T: Send + 'static>(port: &Port<T>) -> OutputFactory<T> {
    port.lock()
        .unwrap_or_else(|e| e.into_inner())
        .take()
        .unwrap_or_else(|| Box::new(|_, _| Box::new(crate::output::edge::Discard)))
}

/// Builds a job. Cheap to clone (clones share the graph).
#[derive(Clone)]
pub struct JobBuilder {
    pub(crate) graph: Arc<Mutex<Graph>>,
}

impl fmt::Debug for JobBuilder {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let g = lock(&self.graph);
        f.debug_struct("JobBuilder").field("name", &g.config.name).field("nodes", &g.nodes.len()).finish()
    }
}

impl JobBuilder {
    /// A new, empty job. Defaults: batches of up to 1,024 records, mailboxes
    /// of 16 messages.
    pub fn new(name: impl Into<String>) -> Self {
        let config = JobConfig {
            name: name.into(),
            batch_size: 1024,
            mailbox_capacity: 16,
            checkpoint: None,
            placement: None,
        };
        JobBuilder { graph: Arc::new(Mutex::new(Graph::new(config))) }
    }

    /// Records per batch message (default 1,024).
    pub fn batch_size(self, n: usize) -> Self {
        lock(&self.graph).config.batch_size = n;
        self
    }

    /// Messages per actor mailbox (default 16). Memory in flight per edge is
    /// about `(capacity + senders) × batch size` records.
    pub fn mailbox_capacity(self, n: usize) -> Self {
        lock(&self.graph).config.mailbox_capacity = n;
        self
    }

    /// How actor instances are placed on threads. The default is
    /// [`Placement::Slots`] with as many slots (threads) as the largest
    /// parallelism of any node: instance `i` of every node shares thread
    /// `i`, so a job with parallelism 2 keeps two cores busy without a
    /// thread wake-up between its stages.
    pub fn placement(self, placement: Placement) -> Self {
        {
            let mut g = lock(&self.graph);
            if placement == Placement::Slots(0) {
                g.invalid("job", "placement slots", "0 (must be >= 1)".into());
            }
            g.config.placement = Some(placement);
        }
        self
    }

    /// Takes consistent checkpoints as configured, and resumes from the
    /// latest complete one found in its directory when the job starts.
    pub fn checkpointing(self, config: CheckpointConfig) -> Self {
        {
            let mut g = lock(&self.graph);
            if config.retain == 0 {
                g.invalid("job", "checkpoints retained", "0 (must be >= 1)".into());
            }
            if config.interval == Some(std::time::Duration::ZERO) {
                g.invalid("job", "checkpoint interval", "0 (must be > 0)".into());
            }
            g.config.checkpoint = Some(config);
        }
        self
    }

    /// A source read by one actor. `timestamps` gives each item's event
    /// time; `strategy` how watermarks follow.
    pub fn source<S, F>(&self, name: &str, source: S, timestamps: F, strategy: WatermarkStrategy) -> Stream<S::Item>
    where
        S: Source,
        F: Fn(&S::Item) -> i64 + Clone + Send + 'static,
    {
        let mut source = Some(source);
        self.parallel_source(name, 1, move |_| source.take().expect("instance 0 is made once"), timestamps, strategy)
    }

    /// A source read by `parallelism` actors, instance `i` made by
    /// `make(i)` (each reads its own share).
    pub fn parallel_source<S, M, F>(&self, name: &str, parallelism: usize, mut make: M, timestamps: F, strategy: WatermarkStrategy) -> Stream<S::Item>
    where
        S: Source,
        M: FnMut(usize) -> S + Send + 'static,
        F: Fn(&S::Item) -> i64 + Clone + Send + 'static,
    {
        let mut g = lock(&self.graph);
        let id = g.add_node(name, ActorKind::Source, parallelism);
        if let Err((parameter, value)) = strategy.validate() {
            g.invalid(name, parameter, value);
        }
        let port: Port<S::Item> = Arc::new(Mutex::new(None));
        let out_port = Arc::clone(&port);
        g.nodes[id].spawn = Some(Box::new(move |sp: &mut Spawner, info: &NodeInfo| {
            let mut factory = take_port(&out_port);
            let group = match strategy.max_drift {
                Some(drift) if info.parallelism > 1 => Some(Arc::new(AlignmentGroup::new(info.parallelism, drift))),
                _ => None,
            };
            for i in 0..info.parallelism {
                let metrics = sp.metrics(info, i);
                let out = Outlet::new(factory(i, &metrics), Arc::clone(&metrics));
                let dead = sp.dead_letters(info, i, &metrics);
                let stop = Arc::new(AtomicBool::new(false));
                let participant = sp.participant();
                let gate = Arc::clone(&sp.gate);
                let alignment = group.as_ref().map(|g| (Arc::clone(g), i));
                let settings =
                    SourceSettings { strategy, batch_size: sp.config.batch_size, stop: Arc::clone(&stop), participant, gate, alignment };
                let mut source = make(i);
                let mut snapshot = None;
                if let Some(bytes) = sp.restored(&metrics.name) {
                    match decode::<SourceSnapshot>(&metrics.name, &bytes) {
                        Ok(snap) => {
                            if let Some(pos) = &snap.position {
                                if let Err(e) = source.seek(pos) {
                                    sp.fail(format!("{}: cannot seek to the checkpointed position: {e}", metrics.name));
                                }
                            }
                            snapshot = Some(snap);
                        }
                        Err(e) => sp.fail(e),
                    }
                }
                if sp.participant().is_some() && source.position().is_none() {
                    tracing::warn!(source = %metrics.name, "this source cannot replay: across a crash its records are at-most-once");
                }
                let name = metrics.name.clone();
                let ts = timestamps.clone();
                let addr = sp.start(i, move |_| {
                    let mut actor = SourceActor::new(source, ts, out, dead, settings, metrics);
                    if let Some(snap) = &snapshot {
                        actor.restore_watermark(snap);
                    }
                    actor
                });
                tracing::debug!(source = %name, "source started");
                sp.register_source(addr.clone().recipient(), addr.recipient(), stop);
            }
        }));
        drop(g);
        Stream::from_port(self.graph.clone(), id, parallelism.max(1), port)
    }

    /// Every dead letter of every source of the job (malformed input, with
    /// where and why). Without a consumer they are counted (metrics
    /// `dead_letters`) and logged. Take it once.
    pub fn dead_letters(&self) -> Stream<DeadLetter> {
        let mut g = lock(&self.graph);
        if !g.request_dead_letters() {
            g.error(BuildError::AlreadyTaken { node: "job".into(), what: "the dead-letter output" });
        }
        drop(g);
        Stream {
            graph: self.graph.clone(),
            parallelism: 1,
            connect: Box::new(|g: &mut Graph, to: usize, make: EdgeMaker<DeadLetter>| {
                // Input indices are assigned per source when the job is built.
                g.dead = Some((to, make(0)));
            }),
        }
    }

    /// Validates the topology.
    pub fn build(self) -> Result<Job, BuildError> {
        let graph = match Arc::try_unwrap(self.graph) {
            Ok(m) => m.into_inner().unwrap_or_else(|e| e.into_inner()),
            Err(shared) => {
                // Clones of the builder remain: take the graph out.
                let mut g = lock(&shared);
                let config = g.config.clone();
                std::mem::replace(&mut *g, Graph::new(config))
            }
        };
        let mut graph = graph;
        graph.validate()?;
        Ok(Job { graph })
    }
}

/// A stream of records of type `T`: the output of a node, plus fused
/// stateless stages. Consume it with one of the methods below.
#[must_use = "a stream does nothing until connected to a sink or another stage"]
pub struct Stream<T: Send + 'static> {
    pub(crate) graph: Arc<Mutex<Graph>>,
    pub(crate) parallelism: usize,
    pub(crate) connect: Connect<T>,
}

impl<T: Send + 'static> fmt::Debug for Stream<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Stream").field("parallelism", &self.parallelism).finish()
    }
}

/// Information for an operator written as a plain actor.
#[derive(Debug, Clone, Copy)]
pub struct ActorOperatorInfo {
    /// This instance's index (`0..parallelism`).
    pub instance: usize,
    /// Number of inputs this instance receives from (see
    /// [`crate::time::InputTracker`]).
    pub inputs: usize,
}

impl<T: Send + 'static> Stream<T> {
    /// The stream of `node`'s main (or side) output `port`.
    pub(crate) fn from_port_side(graph: Arc<Mutex<Graph>>, node: usize, parallelism: usize, port: Port<T>, main: bool) -> Self {
        Stream {
            graph,
            parallelism,
            connect: Box::new(move |g: &mut Graph, to: usize, make: EdgeMaker<T>| {
                let forward = false;
                let offset = g.add_edge(node, to, main, forward);
                *port.lock().unwrap_or_else(|e| e.into_inner()) = Some(make(offset));
            }),
        }
    }

    pub(crate) fn from_port(graph: Arc<Mutex<Graph>>, node: usize, parallelism: usize, port: Port<T>) -> Self {
        Self::from_port_side(graph, node, parallelism, port, true)
    }

    /// Number of actor instances producing this stream.
    pub fn parallelism(&self) -> usize {
        self.parallelism
    }

    /// Wraps every output made for this stream by `wrap` (a fused stage).
    fn stage<U: Send + 'static>(self, wrap: impl Fn(Box<dyn Emit<U>>) -> Box<dyn Emit<T>> + Send + 'static) -> Stream<U> {
        let prev = self.connect;
        Stream {
            graph: self.graph,
            parallelism: self.parallelism,
            connect: Box::new(move |g: &mut Graph, to: usize, make: EdgeMaker<U>| {
                prev(g, to, Box::new(move |offset| {
                    let mut inner = make(offset);
                    Box::new(move |i, m: &Arc<ActorMetrics>| wrap(inner(i, m)))
                }));
            }),
        }
    }

    /// Transforms each record's value (fused into the upstream actor).
    pub fn map<U, F>(self, f: F) -> Stream<U>
    where
        U: Send + 'static,
        F: FnMut(T) -> U + Clone + Send + 'static,
    {
        self.stage(move |inner| Box::new(Map::new(f.clone(), inner)))
    }

    /// Keeps the records whose value satisfies `f` (fused).
    pub fn filter<F>(self, f: F) -> Stream<T>
    where
        F: FnMut(&T) -> bool + Clone + Send + 'static,
    {
        self.stage(move |inner| Box::new(Filter::new(f.clone(), inner)))
    }

    /// Zero or more values per record, each with the record's timestamp
    /// (fused).
    pub fn flat_map<U, I, F>(self, f: F) -> Stream<U>
    where
        U: Send + 'static,
        I: IntoIterator<Item = U>,
        F: FnMut(T) -> I + Clone + Send + 'static,
    {
        self.stage(move |inner| Box::new(FlatMap::new(f.clone(), inner)))
    }

    /// Hash-partitions by `key` to `parallelism` downstream instances, each
    /// on its own thread; equal keys always meet at the same instance.
    pub fn key_by<K, F>(self, key: F, parallelism: usize) -> KeyedStream<K, T, F>
    where
        K: std::hash::Hash + Eq + Clone + Send + serde::Serialize + serde::de::DeserializeOwned + 'static,
        F: Fn(&T) -> K + Clone + Send + 'static,
    {
        KeyedStream::new(self, key, parallelism)
    }

    /// Runs a custom [`Operator`], one instance per instance of this stream
    /// (made by `make(i)`), fed one to one.
    pub fn process<O, M>(self, name: &str, make: M) -> Stream<O::Out>
    where
        O: Operator<In = T>,
        M: FnMut(usize) -> O + Send + 'static,
    {
        let p = self.parallelism;
        self.into_node(name, ActorKind::Operator, p, true, operator_spawner(make))
    }

    /// Runs a plain actix actor as an operator, one instance per instance of
    /// this stream. `make` builds the actor from its [`Outlet`], where it
    /// writes its output; it receives [`Envelope<T>`] messages.
    pub fn actor_operator<A, U, F>(self, name: &str, make: F) -> Stream<U>
    where
        U: Send + 'static,
        A: Actor<Context = Context<A>> + Handler<Envelope<T>>,
        F: Fn(ActorOperatorInfo, Outlet<U>) -> A + Clone + Send + 'static,
    {
        let p = self.parallelism;
        let graph = Arc::clone(&self.graph);
        let out = self.into_node(name, ActorKind::Operator, p, true, actor_spawner(make));
        // A plain actor's state is its own: it forwards barriers through its
        // outlet but takes no part in snapshots.
        if let Some(n) = lock(&graph).nodes.last_mut() {
            n.info.acks = false;
        }
        out
    }

    /// Delivers the records to `sink` (one sink actor).
    pub fn sink<S: Sink<T>>(self, name: &str, sink: S) {
        let spawn = move |sp: &mut Spawner, info: &NodeInfo, _port: OutputFactory<()>| -> Vec<Target<T>> {
            let metrics = sp.metrics(info, 0);
            let (m, shared, inputs) = (Arc::clone(&metrics), Arc::clone(&sp.shared), info.inputs);
            let mut actor = SinkActor::new(sink, inputs, m, shared);
            if let Some(p) = sp.participant() {
                let restored = sp.restored(&metrics.name);
                let id = sp.restored_id();
                if let Err(e) = actor.checkpointed(p, id.zip(restored.as_deref())) {
                    return sp.fail_with(e);
                }
            }
            let addr = sp.start(0, move |_| actor);
            sp.register_sink(addr.clone().recipient());
            vec![Target::new(addr.recipient(), &metrics.mailbox)]
        };
        let _: Stream<()> = self.into_node(name, ActorKind::Sink, 1, false, spawn);
    }

    /// Delivers each record's value to an actix actor as a message, waiting
    /// while that actor's mailbox is full.
    pub fn sink_to_recipient(self, name: &str, recipient: Recipient<T>)
    where
        T: actix::Message<Result = ()>,
    {
        let spawn = move |sp: &mut Spawner, info: &NodeInfo, _port: OutputFactory<()>| -> Vec<Target<T>> {
            let metrics = sp.metrics(info, 0);
            let (m, shared, inputs) = (Arc::clone(&metrics), Arc::clone(&sp.shared), info.inputs);
            let mut actor = RecipientSinkActor::new(recipient, inputs, m, shared);
            actor.participant = sp.participant();
            let addr = sp.start(0, move |_| actor);
            vec![Target::new(addr.recipient(), &metrics.mailbox)]
        };
        let _: Stream<()> = self.into_node(name, ActorKind::Sink, 1, false, spawn);
    }

    /// Adds node `name` fed by this stream (one to one when `forward`,
    /// otherwise every upstream instance to every downstream instance,
    /// batches round-robin) and returns the node's output stream. `spawn`
    /// starts the node's instances given its output factory and returns
    /// their addresses.
    pub(crate) fn into_node<U, S>(self, name: &str, kind: ActorKind, parallelism: usize, forward: bool, spawn: S) -> Stream<U>
    where
        U: Send + 'static,
        S: FnOnce(&mut Spawner, &NodeInfo, OutputFactory<U>) -> Vec<Target<T>> + Send + 'static,
    {
        let graph = Arc::clone(&self.graph);
        let mut g = lock(&graph);
        let id = g.add_node(name, kind, parallelism);
        let inbox: Inbox<T> = Arc::new(OnceLock::new());
        let batch_size = g.config.batch_size;
        let upstream_inbox = Arc::clone(&inbox);
        let make_edge: EdgeMaker<T> = Box::new(move |offset| {
            Box::new(move |i, metrics: &Arc<ActorMetrics>| {
                let targets = upstream_inbox.get().expect("downstream nodes are started first").clone();
                let (targets, input) = if forward { (vec![targets[i].clone()], offset) } else { (targets, offset + i) };
                Box::new(RoundRobin::new(targets, input, batch_size, Arc::clone(metrics))) as Box<dyn Emit<T>>
            })
        });
        (self.connect)(&mut g, id, make_edge);
        if forward {
            // The edge counted every upstream instance as an input of each
            // downstream instance; one to one, each has exactly one.
            g.nodes[id].info.inputs = 1;
        }
        let port = install_spawn(&mut g, id, inbox, spawn);
        drop(g);
        Stream::from_port(graph, id, parallelism, port)
    }
}

/// Installs node `id`'s spawn function: `spawn` starts its instances given
/// the output factory of the node's main port, and their addresses fill
/// `inbox` for the upstream edges. Returns the main port.
pub(crate) fn install_spawn<In, U, S>(g: &mut Graph, id: usize, inbox: Inbox<In>, spawn: S) -> Port<U>
where
    In: Send + 'static,
    U: Send + 'static,
    S: FnOnce(&mut Spawner, &NodeInfo, OutputFactory<U>) -> Vec<Target<In>> + Send + 'static,
{
    let port: Port<U> = Arc::new(Mutex::new(None));
    let out_port = Arc::clone(&port);
    g.nodes[id].spawn = Some(Box::new(move |sp: &mut Spawner, info: &NodeInfo| {
        let targets = spawn(sp, info, take_port(&out_port));
        if inbox.set(targets).is_err() {
            unreachable!("a node is spawned once");
        }
    }));
    port
}

/// Spawns [`OperatorActor`]s for `make`.
pub(crate) fn operator_spawner<O, M>(mut make: M) -> impl FnOnce(&mut Spawner, &NodeInfo, OutputFactory<O::Out>) -> Vec<Target<O::In>> + Send + 'static
where
    O: Operator,
    M: FnMut(usize) -> O + Send + 'static,
{
    move |sp: &mut Spawner, info: &NodeInfo, mut factory: OutputFactory<O::Out>| {
        (0..info.parallelism)
            .map(|i| {
                let metrics = sp.metrics(info, i);
                let out = Outlet::new(factory(i, &metrics), Arc::clone(&metrics));
                let (op, inputs, m) = (make(i), info.inputs, Arc::clone(&metrics));
                let mut actor = OperatorActor::new(op, inputs, out, m);
                if let Some(p) = sp.participant() {
                    let restored = sp.restored(&metrics.name);
                    if let Err(e) = actor.checkpointed(p, restored.as_deref()) {
                        sp.fail(e);
                    }
                }
                let addr = sp.start(i, move |_| actor);
                Target::new(addr.recipient(), &metrics.mailbox)
            })
            .collect()
    }
}

/// Spawns a user's plain actors made by `make`.
pub(crate) fn actor_spawner<T, U, A, F>(make: F) -> impl FnOnce(&mut Spawner, &NodeInfo, OutputFactory<U>) -> Vec<Target<T>> + Send + 'static
where
    T: Send + 'static,
    U: Send + 'static,
    A: Actor<Context = Context<A>> + Handler<Envelope<T>>,
    F: Fn(ActorOperatorInfo, Outlet<U>) -> A + Clone + Send + 'static,
{
    move |sp: &mut Spawner, info: &NodeInfo, mut factory: OutputFactory<U>| {
        (0..info.parallelism)
            .map(|i| {
                let metrics = sp.metrics(info, i);
                let out = Outlet::new(factory(i, &metrics), Arc::clone(&metrics));
                let op_info = ActorOperatorInfo { instance: i, inputs: info.inputs };
                let make = make.clone();
                let addr = sp.start(i, move |_| make(op_info, out));
                // The actor lowers the gauge through `Outlet::received`, if
                // it calls it: a blocked sender cannot count on its signal.
                Target::new(addr.recipient(), &metrics.mailbox).unsignalled()
            })
            .collect()
    }
}
