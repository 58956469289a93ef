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
//!     .window("windows", Windows::tumbling(500))
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

mod async_map;
mod connect;
mod describe;
pub(crate) mod graph;
mod keyed;
pub(crate) mod stream;

use std::fmt;
use std::sync::atomic::AtomicBool;
use std::sync::{Arc, Mutex, MutexGuard};

use crate::checkpoint::CheckpointConfig;
use crate::error::{BuildError, JobError};
use crate::metrics::{ActorKind, ActorMetrics};
use crate::operator::{Operator, OperatorCore};
use crate::output::outlet::Outlet;
use crate::output::pool::BatchPool;
use crate::output::{Inbox, OutputFactory, Target};
use crate::shell::Core;
use crate::source::actor::{SourceActor, SourceSettings, SourceSnapshot};
use crate::source::{DeadLetter, Source};
use crate::spawn::{Placement, Restorer, Spawner};
use crate::time::alignment::AlignmentGroup;
use crate::time::WatermarkStrategy;

pub use async_map::AsyncMap;
pub use connect::{IntervalJoin, KeyedConnected, WindowJoin};
pub use describe::{EdgeOutput, GraphEdge, GraphNode, JobGraph};
use graph::{Graph, JobConfig, NodeInfo};
pub use keyed::{KeyedStream, WindowedStream};
pub use stream::{ActorOperatorInfo, Stream};
use stream::{Attach, Member, Origin};

/// Where a node's start function finds the output factory of one port.
pub(crate) type Port<T> = Arc<Mutex<Option<OutputFactory<T>>>>;

/// Phase two of a node that consumes `In` and produces `U`: starts its
/// instances given its output factory and returns their addresses.
pub(crate) type Starter<In, U> = Box<dyn FnOnce(&mut Spawner, &NodeInfo, OutputFactory<U>) -> Vec<Target<In>> + Send>;

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

/// The stream of node `id`'s late-data output `port`; taking it twice is a
/// build error.
pub(crate) fn late_stream<T: Send + 'static>(graph: &Arc<Mutex<Graph>>, id: usize, port: &Port<T>) -> Stream<T> {
    side_stream(graph, id, port, "the late-data output")
}

/// The stream of node `id`'s side output `port` (`what`, in an error);
/// taking it twice is a build error.
pub(crate) fn side_stream<T: Send + 'static>(
    graph: &Arc<Mutex<Graph>>,
    id: usize,
    port: &Port<T>,
    what: &'static str,
) -> Stream<T> {
    let mut g = lock(graph);
    let node = &mut g.nodes[id];
    if std::mem::replace(&mut node.side_taken, true) {
        let name = node.info.name.clone();
        g.error(BuildError::AlreadyTaken { node: name, what });
    }
    let p = g.nodes[id].info.parallelism;
    drop(g);
    Stream::from_port_side(Arc::clone(graph), id, p, Arc::clone(port), false)
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
            configuration: Vec::new(),
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
            if config.timeout.is_zero() {
                g.invalid("job", "checkpoint timeout", "0 (must be > 0)".into());
            }
            if config.alignment_cap == 0 {
                g.invalid("job", "checkpoint alignment cap", "0 records (must be >= 1)".into());
            }
            g.config.checkpoint = Some(config);
        }
        self
    }

    /// Declares a setting that shapes the job's input or results (a rate,
    /// a number of keys, a window size ...): it is recorded in every
    /// checkpoint, and a job that would resume from a checkpoint written
    /// with another value is refused with an error naming the setting and
    /// both values. Declaring the same key again replaces its value.
    pub fn configuration(self, key: &str, value: impl fmt::Display) -> Self {
        {
            let mut g = lock(&self.graph);
            let value = value.to_string();
            match g.config.configuration.iter_mut().find(|(k, _)| k == key) {
                Some(entry) => entry.1 = value,
                None => g.config.configuration.push((key.to_string(), value)),
            }
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
    pub fn parallel_source<S, M, F>(
        &self,
        name: &str,
        parallelism: usize,
        mut make: M,
        timestamps: F,
        strategy: WatermarkStrategy,
    ) -> Stream<S::Item>
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
        // A named group spans sources: this node's instances are members
        // `first..first + parallelism` of it.
        let named = strategy.group.zip(strategy.max_drift).map(|(group, drift)| {
            let joined = g.alignment_groups.lock().unwrap_or_else(|e| e.into_inner()).join(group, parallelism, drift);
            let first = joined.unwrap_or_else(|first_drift| {
                let value = format!("{drift} ms in group {group:?}, named with {first_drift} ms by another source");
                g.invalid(name, "alignment drift", value);
                0
            });
            (group, first, Arc::clone(&g.alignment_groups))
        });
        let port: Port<S::Item> = Arc::new(Mutex::new(None));
        let out_port = Arc::clone(&port);
        g.nodes[id].prepare = Some(Box::new(move |r: &mut Restorer, info: &NodeInfo| {
            // Phase one: every instance's source made and moved to its
            // recorded position.
            let mut prepared = Vec::with_capacity(info.parallelism);
            for i in 0..info.parallelism {
                let actor = info.actor(i);
                let mut source = make(i);
                let mut snapshot = None;
                if let Some((_, state)) = r.take(&actor)? {
                    let snap: SourceSnapshot = state.decode().map_err(|e| r.refuse(&actor, e))?;
                    snap.seek(&mut source)
                        .map_err(|e| r.refuse(&actor, format!("cannot seek to the checkpointed position: {e}")))?;
                    snapshot = Some(snap);
                }
                if r.checkpointing && source.position().is_none() {
                    tracing::warn!(source = %actor, "this source cannot replay: across a crash its records are at-most-once");
                }
                prepared.push((source, snapshot));
            }
            Ok(Box::new(move |sp: &mut Spawner, info: &NodeInfo| {
                let mut factory = take_port(&out_port);
                let (group, first) = match (&named, strategy.max_drift) {
                    (Some((name, first, groups)), _) => {
                        (groups.lock().unwrap_or_else(|e| e.into_inner()).get(name), *first)
                    }
                    (None, Some(drift)) if info.parallelism > 1 => {
                        (Some(Arc::new(AlignmentGroup::new(info.parallelism, drift))), 0)
                    }
                    _ => (None, 0),
                };
                for (i, (source, snapshot)) in prepared.into_iter().enumerate() {
                    let metrics = sp.metrics(info, i);
                    let out = Outlet::new(factory(i, &metrics), Arc::clone(&metrics));
                    let dead = sp.dead_letters(info, i, &metrics);
                    let stop = Arc::new(AtomicBool::new(false));
                    let settings = SourceSettings {
                        strategy,
                        batch_size: sp.config.batch_size,
                        stop: Arc::clone(&stop),
                        participant: sp.participant(),
                        gate: Arc::clone(&sp.gate),
                        guard: sp.guard(&metrics.name),
                        alignment: group.as_ref().map(|g| (Arc::clone(g), first + i)),
                    };
                    let ts = timestamps.clone();
                    let addr = sp.start(i, move |_| {
                        let mut actor = SourceActor::new(source, ts, out, dead, settings, metrics);
                        if let Some(snap) = &snapshot {
                            actor.restore_watermark(snap);
                        }
                        actor
                    });
                    sp.register_source(addr.clone().recipient(), addr.recipient(), stop);
                }
            }) as crate::spawn::StartFn)
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
        let attach: Attach<DeadLetter> = Box::new(|g: &mut Graph, to: usize, factory| {
            // Input indices are assigned per source when the job is built.
            g.dead = Some((to, factory));
        });
        Stream {
            graph: self.graph.clone(),
            members: vec![Member { origin: Origin::DeadLetters, parallelism: 1, attach }],
        }
    }
}

/// Installs node `id`'s prepare function; its starter's addresses fill
/// `inbox` for the upstream edges. Returns the node's main port.
pub(crate) fn install<In, U, P>(g: &mut Graph, id: usize, inbox: Inbox<In>, prepare: P) -> Port<U>
where
    In: Send + 'static,
    U: Send + 'static,
    P: FnOnce(&mut Restorer, &NodeInfo) -> Result<Starter<In, U>, JobError> + Send + 'static,
{
    let port: Port<U> = Arc::new(Mutex::new(None));
    let out_port = Arc::clone(&port);
    g.nodes[id].prepare = Some(Box::new(move |r: &mut Restorer, info: &NodeInfo| {
        let start = prepare(r, info)?;
        Ok(Box::new(move |sp: &mut Spawner, info: &NodeInfo| {
            let targets = start(sp, info, take_port(&out_port));
            if inbox.set(targets).is_err() {
                unreachable!("a node is started once");
            }
        }) as crate::spawn::StartFn)
    }));
    port
}

/// The starter of shell actors running `cores` (instance `i` runs
/// `cores[i]`), whose output ports `ports(spawner, metrics, outlet)` makes
/// from the node's main outlet.
pub(crate) fn shell_starter<C, U, F>(cores: Vec<C>, mut ports: F) -> Starter<C::In, U>
where
    C: Core,
    U: Send + 'static,
    F: FnMut(&mut Spawner, &Arc<ActorMetrics>, Outlet<U>) -> C::Outputs + Send + 'static,
{
    Box::new(move |sp: &mut Spawner, info: &NodeInfo, mut factory: OutputFactory<U>| {
        cores
            .into_iter()
            .enumerate()
            .map(|(i, core)| {
                let metrics = sp.metrics(info, i);
                let out = ports(sp, &metrics, Outlet::new(factory(i, &metrics), Arc::clone(&metrics)));
                let pool = Arc::new(BatchPool::default());
                let addr = sp.start_shell(i, core, out, info.inputs, &metrics, Arc::clone(&pool));
                Target::with_pool(addr.recipient(), &metrics.mailbox, pool)
            })
            .collect()
    })
}

/// The ports of a node with a side output: its main outlet and, per
/// instance in start order, an outlet from the side `port`'s factory
/// (a discarding one if nothing took the side output).
pub(crate) fn with_side_port<U, S>(
    port: Port<S>,
) -> impl FnMut(&mut Spawner, &Arc<ActorMetrics>, Outlet<U>) -> (Outlet<U>, Outlet<S>) + Send + 'static
where
    U: Send + 'static,
    S: Send + 'static,
{
    let mut factory = None;
    let mut instance = 0;
    move |_sp, metrics, out| {
        let factory = factory.get_or_insert_with(|| take_port(&port));
        let side = Outlet::new(factory(instance, metrics), Arc::clone(metrics));
        instance += 1;
        (out, side)
    }
}

/// Phase one of a custom [`Operator`] node: `make(i)` for each instance,
/// restored.
pub(crate) fn operator_prepare<O, M>(
    mut make: M,
) -> impl FnOnce(&mut Restorer, &NodeInfo) -> Result<Starter<O::In, O::Out>, JobError> + Send + 'static
where
    O: Operator,
    M: FnMut(usize) -> O + Send + 'static,
{
    move |r: &mut Restorer, info: &NodeInfo| {
        let cores = (0..info.parallelism)
            .map(|i| {
                let mut core = OperatorCore::new(make(i));
                r.restore_core(&info.actor(i), &mut core).map(|()| core)
            })
            .collect::<Result<Vec<_>, JobError>>()?;
        Ok(shell_starter(cores, |_sp, _metrics, out| out))
    }
}
