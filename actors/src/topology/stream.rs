//! [`Stream`]: a typed handle on records flowing out of one or more nodes.
//!
//! A stream is a list of *members*, each the output of one node plus the
//! stateless stages (`map`, `filter`, `flat_map`) added after it: those
//! are fused into the node's actor when the stream is connected. A stream
//! from one node has one member; [`Stream::union`] concatenates members, so
//! a union costs nothing at run time — the consumer simply has more inputs,
//! and its watermark is the minimum over them, as for any actor.
//! [`Stream::fan_out`] forks a stream: each branch gets every record (a
//! [`Broadcast`] edge at the fork).
//!
//! Connecting a consumer to a stream records one graph edge per member
//! (its first input index at the consumer) and attaches the consumer's
//! edge factory to the member's end, through its stages.

use std::fmt;
use std::sync::{Arc, Mutex, OnceLock};

use actix::Recipient;

use crate::error::{BuildError, JobError};
use crate::metrics::{ActorKind, ActorMetrics};
use crate::operator::Operator;
use crate::output::broadcast::{Broadcast, Split};
use crate::output::edge::{Discard, RoundRobin};
use crate::output::outlet::Outlet;
use crate::output::stage::{Filter, FlatMap, Map};
use crate::output::{Emit, Inbox, OutputFactory};
use crate::shell::Core;
use crate::sink::recipient::{RecipientPort, RecipientSink};
use crate::sink::{Sink, SinkCore};
use crate::spawn::{Restorer, Spawner};
use crate::topology::graph::{Graph, NodeInfo};
use crate::topology::keyed::KeyedStream;
use crate::topology::{install, lock, operator_prepare, shell_starter, Port, Starter};

/// Attaches a consumer's edge factory to the end of a member (through its
/// fused stages): graph, consumer node, factory.
pub(crate) type Attach<T> = Box<dyn FnOnce(&mut Graph, usize, OutputFactory<T>) + Send>;

/// Where a member's records come from.
#[derive(Debug, Clone, Copy)]
pub(crate) enum Origin {
    /// The main (`main`) or a side output of node `id`.
    Node { id: usize, main: bool },
    /// The job's dead letters (wired to every source when the job is built).
    DeadLetters,
}

/// One node's output, through fused stages.
pub(crate) struct Member<T> {
    pub(crate) origin: Origin,
    pub(crate) parallelism: usize,
    pub(crate) attach: Attach<T>,
}

impl<T: Send + 'static> Member<T> {
    /// Records the edge from this member to node `to` (`forward`: instance
    /// `i` to instance `i` only) and returns the first input index at `to`
    /// of this member's instances.
    pub(crate) fn edge(&self, g: &mut Graph, to: usize, forward: bool) -> usize {
        match self.origin {
            Origin::Node { id, main } => g.add_edge(id, to, main, forward),
            // Input indices are assigned per source when the job is built.
            Origin::DeadLetters => 0,
        }
    }
}

/// What [`Stream::actor_operator`] tells the function that makes each
/// instance's [`Core`].
#[derive(Debug, Clone, Copy)]
pub struct ActorOperatorInfo {
    /// This instance's index (`0..parallelism`).
    pub instance: usize,
    /// Number of inputs this instance receives from (the shell takes the
    /// watermark as the minimum over them; [`Cx::input`](crate::Cx::input)
    /// says which one a batch came on).
    pub inputs: usize,
}

/// A stream of records of type `T`: the output of one or more nodes, plus
/// fused stateless stages. Consume it with one of the methods below; to
/// feed several consumers, [`Stream::fan_out`] first.
#[must_use = "a stream does nothing until connected to a sink or another stage"]
pub struct Stream<T: Send + 'static> {
    pub(crate) graph: Arc<Mutex<Graph>>,
    pub(crate) members: Vec<Member<T>>,
}

impl<T: Send + 'static> fmt::Debug for Stream<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Stream")
            .field("members", &self.members.len())
            .field("parallelism", &self.parallelism())
            .finish()
    }
}

impl<T: Send + 'static> Stream<T> {
    /// The stream of `node`'s main (or side) output `port`.
    pub(crate) fn from_port_side(
        graph: Arc<Mutex<Graph>>,
        node: usize,
        parallelism: usize,
        port: Port<T>,
        main: bool,
    ) -> Self {
        let attach: Attach<T> = Box::new(move |_g: &mut Graph, _to: usize, factory: OutputFactory<T>| {
            *port.lock().unwrap_or_else(|e| e.into_inner()) = Some(factory);
        });
        Stream { graph, members: vec![Member { origin: Origin::Node { id: node, main }, parallelism, attach }] }
    }

    pub(crate) fn from_port(graph: Arc<Mutex<Graph>>, node: usize, parallelism: usize, port: Port<T>) -> Self {
        Self::from_port_side(graph, node, parallelism, port, true)
    }

    /// Number of actor instances producing this stream (over every stream
    /// of a union).
    pub fn parallelism(&self) -> usize {
        self.members.iter().map(|m| m.parallelism).sum()
    }

    /// Wraps every output made for this stream by `wrap` (a fused stage).
    fn stage<U: Send + 'static>(
        self,
        wrap: impl Fn(Box<dyn Emit<U>>) -> Box<dyn Emit<T>> + Clone + Send + 'static,
    ) -> Stream<U> {
        let members = self
            .members
            .into_iter()
            .map(|m| {
                let (prev, wrap) = (m.attach, wrap.clone());
                let attach: Attach<U> = Box::new(move |g: &mut Graph, to: usize, mut factory: OutputFactory<U>| {
                    prev(g, to, Box::new(move |i, metrics: &Arc<ActorMetrics>| wrap(factory(i, metrics))));
                });
                Member { origin: m.origin, parallelism: m.parallelism, attach }
            })
            .collect();
        Stream { graph: self.graph, members }
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

    /// The records of this stream and of `other`, as one stream (Flink's
    /// `union`). Nothing runs for it: the next stage receives from both,
    /// and its watermark is the minimum over all its inputs, so a record
    /// of either stream is late only behind both. Both streams must come
    /// from the same [`JobBuilder`](crate::JobBuilder).
    pub fn union(mut self, other: Stream<T>) -> Stream<T> {
        if !Arc::ptr_eq(&self.graph, &other.graph) {
            lock(&self.graph).invalid(
                "union",
                "streams",
                "streams of two different JobBuilders (a union joins streams of one job)".into(),
            );
            return self;
        }
        self.members.extend(other.members);
        self
    }

    /// Forks this stream into `N` streams that each get every record, in
    /// the same order, with the same watermarks (`let [a, b] =
    /// stream.fan_out();`). Each branch can go its own way — other stages,
    /// another `key_by`, a sink. The fork runs in the upstream actor: every
    /// batch goes to each branch (copied for all but the last: clone-cheap
    /// records, or an `Arc`, keep that cheap), and the actor waits while any
    /// branch's next mailbox is full, so the slowest consumer paces the
    /// producer. Every branch must be connected; [`JobBuilder::build`]
    /// refuses a job with a branch left unconnected.
    ///
    /// [`JobBuilder::build`]: crate::JobBuilder::build
    pub fn fan_out<const N: usize>(self) -> [Stream<T>; N]
    where
        T: Clone,
    {
        let graph = self.graph;
        let mut branches: Vec<Vec<Member<T>>> = (0..N).map(|_| Vec::new()).collect();
        {
            let mut g = lock(&graph);
            if N == 0 {
                g.invalid("fan_out", "branches", "0 (must be >= 1)".into());
            }
            g.pending_branches += N * self.members.len();
            for m in self.members {
                if matches!(m.origin, Origin::DeadLetters) && N > 1 {
                    g.invalid("fan_out", "stream", "the dead-letter stream (it feeds one consumer)".into());
                }
                let fork =
                    Arc::new(Mutex::new(Fork { upstream: Some(m.attach), branches: (0..N).map(|_| None).collect() }));
                for (b, out) in branches.iter_mut().enumerate() {
                    let fork = Arc::clone(&fork);
                    let attach: Attach<T> = Box::new(move |g: &mut Graph, to: usize, factory: OutputFactory<T>| {
                        g.pending_branches -= 1;
                        let upstream = {
                            let mut f = fork.lock().unwrap_or_else(|e| e.into_inner());
                            f.branches[b] = Some(factory);
                            f.upstream.take()
                        };
                        // The first branch connected attaches the fork itself;
                        // it reads the branches' factories when the
                        // upstream instances start, all connected by then.
                        if let Some(upstream) = upstream {
                            let fork = Arc::clone(&fork);
                            upstream(
                                g,
                                to,
                                Box::new(move |i, metrics: &Arc<ActorMetrics>| {
                                    let mut f = fork.lock().unwrap_or_else(|e| e.into_inner());
                                    let outs = f
                                        .branches
                                        .iter_mut()
                                        .map(|b| match b {
                                            Some(factory) => factory(i, metrics),
                                            None => Box::new(Discard) as Box<dyn Emit<T>>,
                                        })
                                        .collect();
                                    Box::new(Broadcast::new(outs)) as Box<dyn Emit<T>>
                                }),
                            );
                        }
                    });
                    out.push(Member { origin: m.origin, parallelism: m.parallelism, attach });
                }
            }
        }
        let streams: Vec<Stream<T>> =
            branches.into_iter().map(|members| Stream { graph: Arc::clone(&graph), members }).collect();
        match streams.try_into() {
            Ok(array) => array,
            Err(_) => unreachable!("N branches were made"),
        }
    }

    /// Hash-partitions by `key` to `parallelism` downstream instances;
    /// equal keys always meet at the same instance. (Where the instances
    /// run is the job's [`Placement`](crate::Placement): by default
    /// instance `i` shares thread `i` with instance `i` of every other
    /// node.)
    pub fn key_by<K, F>(self, key: F, parallelism: usize) -> KeyedStream<K, T>
    where
        K: std::hash::Hash + Eq + Clone + Send + serde::Serialize + serde::de::DeserializeOwned + 'static,
        F: Fn(&T) -> K + Clone + Send + 'static,
    {
        KeyedStream::new(self, crate::output::keys::key_maker(key), parallelism)
    }

    /// The parallelism of a node fed by this stream one to one: this
    /// stream's, or for a union the largest of its streams' (fed
    /// round-robin).
    pub(crate) fn own_parallelism(&self) -> usize {
        match self.members.as_slice() {
            [one] => one.parallelism,
            many => many.iter().map(|m| m.parallelism).max().unwrap_or(1),
        }
    }

    /// Runs a custom [`Operator`] in node `name`, one instance per instance
    /// of this stream (made by `make(i)`), fed one to one (a union is fed
    /// round-robin, with as many instances as its widest stream).
    pub fn transform<O, M>(self, name: &str, make: M) -> Stream<O::Out>
    where
        O: Operator<In = T>,
        M: FnMut(usize) -> O + Send + 'static,
    {
        let p = self.own_parallelism();
        self.into_node(name, ActorKind::Operator, p, true, operator_prepare(make))
    }

    /// Runs a custom actor operator: a [`Core`] that weir runs in its actor
    /// shell (inputs, watermarks, barrier alignment, checkpoints, metrics
    /// and backpressure handled for it), one instance per instance of this
    /// stream, made by `make(info)`. Its output is the `Outlet` its hooks
    /// write to.
    pub fn actor_operator<C, U, F>(self, name: &str, mut make: F) -> Stream<U>
    where
        U: Send + 'static,
        C: Core<In = T, Outputs = Outlet<U>>,
        F: FnMut(ActorOperatorInfo) -> C + Send + 'static,
    {
        let p = self.own_parallelism();
        self.into_node(name, ActorKind::Operator, p, true, move |r: &mut Restorer, info: &NodeInfo| {
            let cores = (0..info.parallelism)
                .map(|i| {
                    let mut core = make(ActorOperatorInfo { instance: i, inputs: info.inputs });
                    r.restore_core(&info.actor(i), &mut core).map(|()| core)
                })
                .collect::<Result<Vec<C>, JobError>>()?;
            Ok(shell_starter(cores, |_sp, _metrics, out| out))
        })
    }

    /// Delivers the records to `sink` (one sink actor).
    pub fn sink<S: Sink<T>>(self, name: &str, sink: S) {
        let prepare = move |r: &mut Restorer, info: &NodeInfo| {
            let mut core = SinkCore::new(sink);
            // Sinks are prepared after every other node: their restore may
            // cut output back, so it runs only once nothing can refuse.
            r.restore_core(&info.actor(0), &mut core)?;
            Ok(shell_starter(vec![core], |_sp, _metrics, _out: Outlet<()>| ()))
        };
        let _: Stream<()> = self.into_node(name, ActorKind::Sink, 1, false, prepare);
    }

    /// Delivers each record's value to an actix actor as a message, waiting
    /// while that actor's mailbox is full (at least once across a restore:
    /// a delivered message cannot be taken back).
    pub fn sink_to_recipient(self, name: &str, recipient: Recipient<T>)
    where
        T: actix::Message<Result = ()>,
    {
        let prepare = move |_r: &mut Restorer, _info: &NodeInfo| {
            let core = RecipientSink::<T>::new();
            Ok(shell_starter(vec![core], move |sp: &mut Spawner, metrics: &Arc<ActorMetrics>, _out: Outlet<()>| {
                RecipientPort::new(recipient.clone(), Arc::clone(metrics), Arc::clone(&sp.lifecycle))
            }))
        };
        let _: Stream<()> = self.into_node(name, ActorKind::Sink, 1, false, prepare);
    }

    /// Connects every member to node `to`, each through the edge factory
    /// `edge(first input index, forward)` makes for it. `forward` (one to
    /// one) holds only for a single member of `to`'s parallelism.
    pub(crate) fn connect_to(
        self,
        g: &mut Graph,
        to: usize,
        forward: bool,
        mut edge: impl FnMut(usize, bool) -> OutputFactory<T>,
    ) {
        let forward = forward && self.members.len() == 1;
        for m in self.members {
            let offset = m.edge(g, to, forward);
            let factory = edge(offset, forward);
            (m.attach)(g, to, factory);
        }
    }

    /// Adds node `name` fed by this stream (one to one when `forward` and
    /// this stream has one member, otherwise every upstream instance to
    /// every downstream instance, batches round-robin) and returns the
    /// node's output stream. `prepare` is the node's phase one; it returns
    /// the starter of its instances.
    pub(crate) fn into_node<U, P>(
        self,
        name: &str,
        kind: ActorKind,
        parallelism: usize,
        forward: bool,
        prepare: P,
    ) -> Stream<U>
    where
        U: Send + 'static,
        P: FnOnce(&mut Restorer, &NodeInfo) -> Result<Starter<T, U>, JobError> + Send + 'static,
    {
        let id = lock(&self.graph).add_node(name, kind, parallelism);
        self.into_node_at(id, forward, prepare)
    }

    /// [`Self::into_node`] for node `id`, added already (a builder that
    /// names its side outputs before it is finished).
    pub(crate) fn into_node_at<U, P>(self, id: usize, forward: bool, prepare: P) -> Stream<U>
    where
        U: Send + 'static,
        P: FnOnce(&mut Restorer, &NodeInfo) -> Result<Starter<T, U>, JobError> + Send + 'static,
    {
        let graph = Arc::clone(&self.graph);
        let mut g = lock(&graph);
        let parallelism = g.nodes[id].info.parallelism;
        let inbox: Inbox<T> = Arc::new(OnceLock::new());
        let batch_size = g.config.batch_size;
        self.connect_to(&mut g, id, forward, |offset, forward| {
            let up = Arc::clone(&inbox);
            Box::new(move |i, metrics: &Arc<ActorMetrics>| {
                let targets = up.get().expect("downstream nodes are started first").clone();
                let (targets, input) = if forward { (vec![targets[i].clone()], offset) } else { (targets, offset + i) };
                Box::new(RoundRobin::new(targets, input, batch_size, Arc::clone(metrics))) as Box<dyn Emit<T>>
            })
        });
        let port = install(&mut g, id, inbox, prepare);
        drop(g);
        Stream::from_port(graph, id, parallelism, port)
    }
}

impl<A: Send + 'static, B: Send + 'static> Stream<crate::join::Either<A, B>> {
    /// Splits a stream of `Either` records into the stream of the `Left`
    /// values and the stream of the `Right` values, each keeping its
    /// record's timestamp, without copying: the side outputs of any
    /// operator. An operator (a `map`, a `transform`, a keyed process
    /// function, a join's `apply`) that emits `Either::Left(result)` or
    /// `Either::Right(side)` gets its side output as the second stream:
    ///
    /// ```
    /// use weir_actors::prelude::*;
    ///
    /// let job = JobBuilder::new("side");
    /// let (evens, got_evens) = CollectSink::new();
    /// let (odds, got_odds) = CollectSink::new();
    /// let (main, side) = job
    ///     .source("n", IterSource::new(0..10i64), |n: &i64| *n, WatermarkStrategy::monotonic())
    ///     .map(|n| if n % 2 == 0 { Either::Left(n) } else { Either::Right(format!("odd {n}")) })
    ///     .split();
    /// main.sink("evens", evens);
    /// side.sink("odds", odds);
    /// job.build().unwrap().run_blocking().unwrap();
    /// assert_eq!(got_evens.values(), vec![0, 2, 4, 6, 8]);
    /// assert_eq!(got_odds.len(), 5);
    /// ```
    ///
    /// Both streams must be connected (`JobBuilder::build` refuses one
    /// left unconnected); the upstream actor waits while either's next
    /// mailbox is full.
    pub fn split(self) -> (Stream<A>, Stream<B>) {
        let graph = self.graph;
        let (mut lefts, mut rights) = (Vec::new(), Vec::new());
        {
            let mut g = lock(&graph);
            g.pending_branches += 2 * self.members.len();
            for m in self.members {
                if matches!(m.origin, Origin::DeadLetters) {
                    g.invalid("split", "stream", "the dead-letter stream (it feeds one consumer)".into());
                }
                let fork =
                    Arc::new(Mutex::new(SplitFork::<A, B> { upstream: Some(m.attach), left: None, right: None }));
                let (fl, fr) = (Arc::clone(&fork), Arc::clone(&fork));
                let left: Attach<A> = Box::new(move |g: &mut Graph, to: usize, factory: OutputFactory<A>| {
                    let upstream = {
                        let mut f = fl.lock().unwrap_or_else(|e| e.into_inner());
                        f.left = Some(factory);
                        f.upstream.take()
                    };
                    SplitFork::attach(&fl, upstream, g, to);
                });
                let right: Attach<B> = Box::new(move |g: &mut Graph, to: usize, factory: OutputFactory<B>| {
                    let upstream = {
                        let mut f = fr.lock().unwrap_or_else(|e| e.into_inner());
                        f.right = Some(factory);
                        f.upstream.take()
                    };
                    SplitFork::attach(&fr, upstream, g, to);
                });
                lefts.push(Member { origin: m.origin, parallelism: m.parallelism, attach: left });
                rights.push(Member { origin: m.origin, parallelism: m.parallelism, attach: right });
            }
        }
        (Stream { graph: Arc::clone(&graph), members: lefts }, Stream { graph, members: rights })
    }
}

/// A split of one member: its own attachment until the first side is
/// connected, and each side's edge factory.
struct SplitFork<A, B> {
    upstream: Option<Attach<crate::join::Either<A, B>>>,
    left: Option<OutputFactory<A>>,
    right: Option<OutputFactory<B>>,
}

impl<A: Send + 'static, B: Send + 'static> SplitFork<A, B> {
    /// A side was connected: the first one attaches the split itself, which
    /// reads both sides' factories when the upstream instances start.
    fn attach(fork: &Arc<Mutex<Self>>, upstream: Option<Attach<crate::join::Either<A, B>>>, g: &mut Graph, to: usize) {
        g.pending_branches -= 1;
        let Some(upstream) = upstream else { return };
        let fork = Arc::clone(fork);
        upstream(
            g,
            to,
            Box::new(move |i, metrics: &Arc<ActorMetrics>| {
                let mut f = fork.lock().unwrap_or_else(|e| e.into_inner());
                let left = match &mut f.left {
                    Some(factory) => factory(i, metrics),
                    None => Box::new(Discard) as Box<dyn Emit<A>>,
                };
                let right = match &mut f.right {
                    Some(factory) => factory(i, metrics),
                    None => Box::new(Discard) as Box<dyn Emit<B>>,
                };
                Box::new(Split::new(left, right)) as Box<dyn Emit<crate::join::Either<A, B>>>
            }),
        );
    }
}

/// A fork of one member: the member's own attachment, until the first
/// branch is connected, and each branch's edge factory.
struct Fork<T> {
    upstream: Option<Attach<T>>,
    branches: Vec<Option<OutputFactory<T>>>,
}

/// Where a stream's consumer is wired: an error recorded when a branch
/// was left unconnected.
pub(crate) fn check_branches(g: &Graph) -> Result<(), BuildError> {
    if g.pending_branches > 0 {
        return Err(BuildError::Unconnected(format!(
            "{} fan-out branch(es) (every stream that Stream::fan_out or Stream::split returns must be connected)",
            g.pending_branches
        )));
    }
    Ok(())
}
