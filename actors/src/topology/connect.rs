//! Two streams into one node: `connect` (a custom two-input operator over
//! [`Either`] records) and the keyed interval join.

use std::fmt;
use std::hash::Hash;
use std::sync::{Arc, Mutex, OnceLock};

use serde::de::DeserializeOwned;
use serde::Serialize;

use crate::error::JobError;
use crate::join::interval::IntervalJoinCore;
use crate::join::Either;
use crate::metrics::ActorKind;
use crate::operator::Operator;
use crate::output::edge::KeyInto;
use crate::output::Inbox;
use crate::spawn::Restorer;
use crate::topology::graph::{Graph, NodeInfo};
use crate::topology::keyed::WindowFeed;
use crate::topology::{
    install, late_stream, lock, operator_prepare, shell_starter, with_side_port, KeyedStream, Port, Stream,
    WindowedStream,
};
use crate::window::{Window, WindowResult, Windows};

/// Records of two keyed streams as they reach a two-input node.
type Sides<K, A, B> = (K, Either<A, B>);

/// Two keyed streams connected into one node (see [`KeyedStream::connect`]).
#[must_use = "connected streams do nothing until transformed"]
pub struct KeyedConnected<K, A: Send + 'static, B: Send + 'static> {
    left: KeyedStream<K, A>,
    right: KeyedStream<K, B>,
}

impl<K, A: Send + 'static, B: Send + 'static> fmt::Debug for KeyedConnected<K, A, B> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("KeyedConnected").field("parallelism", &self.left.parallelism).finish()
    }
}

impl<K, A> KeyedStream<K, A>
where
    K: Hash + Eq + Clone + Send + Serialize + DeserializeOwned + 'static,
    A: Send + 'static,
{
    /// Connects this keyed stream with `other` (keyed by a key of the same
    /// type, with the same parallelism): records of both with equal keys
    /// meet at one instance of the next node, as `(key, Either::Left(a))`
    /// and `(key, Either::Right(b))`. The node's watermark is the minimum
    /// over both streams, its checkpoint barriers aligned across both.
    pub fn connect<B: Send + 'static>(self, other: KeyedStream<K, B>) -> KeyedConnected<K, A, B> {
        KeyedConnected { left: self, right: other }
    }

    /// Joins this stream (A) with `other` (B) by key and window in node
    /// `name` (Flink's window join): every pair of an A and a B record of
    /// one key in one window, when that window fires. See [`WindowJoin`].
    pub fn window_join<B>(self, name: &str, other: KeyedStream<K, B>, windows: Windows) -> WindowJoin<K, A, B>
    where
        A: Clone + Serialize + DeserializeOwned,
        B: Clone + Send + Serialize + DeserializeOwned + 'static,
    {
        WindowJoin { windowed: self.connect(other).window(name, windows) }
    }

    /// Joins this stream (A) with `other` (B) by key in node `name`: every
    /// pair with `a.ts + lower <= b.ts <= a.ts + upper` (set the bounds
    /// with [`IntervalJoin::between`]), once, whichever arrived first. See
    /// [`IntervalJoin`].
    pub fn interval_join<B>(self, name: &str, other: KeyedStream<K, B>) -> IntervalJoin<K, A, B>
    where
        B: Send + 'static,
    {
        let graph = Arc::clone(&self.stream.graph);
        let id = {
            let mut g = lock(&graph);
            g.add_node(name, ActorKind::Operator, self.parallelism)
        };
        IntervalJoin { connected: self.connect(other), graph, id, bounds: None, late: Arc::new(Mutex::new(None)) }
    }
}

impl<K, A, B> KeyedConnected<K, A, B>
where
    K: Hash + Eq + Clone + Send + Serialize + DeserializeOwned + 'static,
    A: Send + 'static,
    B: Send + 'static,
{
    /// Connects both streams to node `id`; returns its inbox. Both must
    /// have the node's parallelism, so that one hash partitions them alike.
    fn attach(self, g: &mut Graph, id: usize) -> Inbox<Sides<K, A, B>> {
        let (pl, pr) = (self.left.parallelism, self.right.parallelism);
        if pl != pr {
            g.invalid_at(
                id,
                "parallelism",
                format!("{pl} for the first stream and {pr} for the second (connected keyed streams must be keyed with the same parallelism)"),
            );
        }
        let inbox: Inbox<Sides<K, A, B>> = Arc::new(OnceLock::new());
        self.left.attach_keyed(g, id, &inbox, |out, key| Box::new(KeyInto::new(out, key, Either::Left)));
        self.right.attach_keyed(g, id, &inbox, |out, key| Box::new(KeyInto::new(out, key, Either::Right)));
        inbox
    }

    /// Cuts both streams into the same windows in node `name` (Flink's
    /// `coGroup`): each key's window holds the records of both, as
    /// `Either`, and fires once the watermark — the minimum over both
    /// streams — passes its end. Finish it like any windowed stream
    /// ([`WindowedStream::aggregate`], [`WindowedStream::apply`]); the
    /// records are not pre-aggregated before the shuffle.
    pub fn window(self, name: &str, windows: Windows) -> WindowedStream<K, Either<A, B>> {
        let graph = Arc::clone(&self.left.stream.graph);
        let parallelism = self.left.parallelism;
        let attach = Box::new(move |g: &mut Graph, id: usize| self.attach(g, id));
        WindowedStream::new(graph, name, windows, WindowFeed::Attached { parallelism, attach })
    }

    /// Runs a custom two-input [`Operator`] over `(key, Either<A, B>)`
    /// records in node `name`, one instance per key partition (`make(i)`
    /// makes instance `i`'s): its state, timers and snapshots work as for
    /// any operator, and each key's records of both streams reach the same
    /// instance.
    pub fn transform<O, M>(self, name: &str, make: M) -> Stream<O::Out>
    where
        O: Operator<In = Sides<K, A, B>>,
        M: FnMut(usize) -> O + Send + 'static,
    {
        let graph = Arc::clone(&self.left.stream.graph);
        let p = self.left.parallelism;
        let mut g = lock(&graph);
        let id = g.add_node(name, ActorKind::Operator, p);
        let inbox = self.attach(&mut g, id);
        let port = install(&mut g, id, inbox, operator_prepare(make));
        drop(g);
        Stream::from_port(graph, id, p, port)
    }
}

impl<A: Send + 'static> Stream<A> {
    /// Connects this stream with `other` into a custom two-input
    /// [`Operator`] over [`Either`] records in node `name` (`make(i)` makes
    /// instance `i`'s): records of this stream arrive as `Either::Left`,
    /// of `other` as `Either::Right`, each instance receiving from every
    /// upstream instance of both (round-robin). For records that must meet
    /// by key, connect keyed streams ([`KeyedStream::connect`]).
    pub fn connect<B, O, M>(self, other: Stream<B>, name: &str, make: M) -> Stream<O::Out>
    where
        B: Send + 'static,
        O: Operator<In = Either<A, B>>,
        M: FnMut(usize) -> O + Send + 'static,
    {
        self.map(Either::Left).union(other.map(Either::Right)).transform(name, make)
    }
}

/// A keyed interval join being built: set the bounds with
/// [`Self::between`], optionally take the late records with
/// [`Self::late_data`], finish with [`Self::apply`].
///
/// Semantics (as Flink's `intervalJoin`): records `a` of the first stream
/// and `b` of the second with equal keys form a pair when
/// `a.ts + lower <= b.ts <= a.ts + upper`, both bounds inclusive. Each
/// pair is emitted once, as `f(key, a, b)` at `max(a.ts, b.ts)`,
/// whichever of the two arrived first. Each side's records are kept only
/// while a record of the other side can still match them: a record of the
/// first stream until the watermark passes `a.ts + upper`, of the second
/// until it passes `b.ts - lower`. A record behind the watermark when it
/// arrives is late: it joins nothing, is counted (`late_records`) and goes
/// to the late-data output. State, including every buffered record, is
/// part of checkpoints.
#[must_use = "an interval join does nothing until applied"]
pub struct IntervalJoin<K, A: Send + 'static, B: Send + 'static> {
    connected: KeyedConnected<K, A, B>,
    graph: Arc<Mutex<Graph>>,
    id: usize,
    bounds: Option<(i64, i64)>,
    late: Port<Sides<K, A, B>>,
}

impl<K, A: Send + 'static, B: Send + 'static> fmt::Debug for IntervalJoin<K, A, B> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("IntervalJoin").field("bounds", &self.bounds).finish()
    }
}

impl<K, A, B> IntervalJoin<K, A, B>
where
    K: Hash + Eq + Clone + Send + Serialize + DeserializeOwned + 'static,
    A: Clone + Send + Serialize + DeserializeOwned + 'static,
    B: Clone + Send + Serialize + DeserializeOwned + 'static,
{
    fn invalid(&self, parameter: &'static str, value: String) {
        lock(&self.graph).invalid_at(self.id, parameter, value);
    }

    /// Pairs `b.ts` in `[a.ts + lower, a.ts + upper]`, both inclusive
    /// (`lower <= upper`; negative bounds reach into the past).
    pub fn between(mut self, lower: i64, upper: i64) -> Self {
        if lower > upper {
            self.invalid("bounds", format!("between({lower}, {upper}) (lower must be <= upper)"));
        }
        self.bounds = Some((lower, upper));
        self
    }

    /// Sends the late records — `(key, Either::Left(a) | Either::Right(b))`
    /// behind the watermark when they arrived — to the stream `f` builds
    /// on. Without it they are only counted (metrics `late_records`).
    pub fn late_data(self, f: impl FnOnce(Stream<Sides<K, A, B>>)) -> Self {
        f(late_stream(&self.graph, self.id, &self.late));
        self
    }

    /// Emits `f(key, a, b)` for every pair, at `max(a.ts, b.ts)`.
    pub fn apply<O, F>(self, f: F) -> Stream<O>
    where
        O: Send + 'static,
        F: FnMut(&K, &A, &B) -> O + Clone + Send + 'static,
    {
        if self.bounds.is_none() {
            self.invalid("bounds", "not set (call between(lower, upper))".into());
        }
        let (lower, upper) = self.bounds.unwrap_or((0, 0));
        let IntervalJoin { connected, graph, id, late, .. } = self;
        let p = connected.left.parallelism;
        let mut g = lock(&graph);
        let inbox = connected.attach(&mut g, id);
        let late_port = Arc::clone(&late);
        let port = install(&mut g, id, inbox, move |r: &mut Restorer, info: &NodeInfo| {
            let late_connected = late_port.lock().map(|p| p.is_some()).unwrap_or(false);
            let cores = (0..info.parallelism)
                .map(|i| {
                    let mut core = IntervalJoinCore::new(lower, upper, f.clone(), late_connected);
                    r.restore_core(&info.actor(i), &mut core).map(|()| core)
                })
                .collect::<Result<Vec<_>, JobError>>()?;
            Ok(shell_starter(cores, with_side_port(late_port)))
        });
        drop(g);
        Stream::from_port(graph, id, p, port)
    }
}

/// A keyed window join being built: optionally [`Self::allowed_lateness`]
/// and [`Self::late_data`], finish with [`Self::apply`].
///
/// Semantics (as Flink's window join, an inner join): each key's records
/// of both streams are assigned to the windows (tumbling, sliding or
/// session) as a windowed stream's are; when a window fires, every pair of
/// an A and a B record in it is emitted once, as `f(key, window, a, b)`,
/// at the window's last ms. A pair that shares several windows (sliding
/// windows) is emitted once per window. Session windows merge over the
/// records of both streams. A window's records are kept until it fires
/// (and its allowed lateness has passed); a record whose windows have all
/// closed is late: counted, and sent to the late-data output with its
/// side. Everything is part of checkpoints.
#[must_use = "a window join does nothing until applied"]
pub struct WindowJoin<K: Send + 'static, A: Send + 'static, B: Send + 'static> {
    windowed: WindowedStream<K, Either<A, B>>,
}

impl<K: Send + 'static, A: Send + 'static, B: Send + 'static> fmt::Debug for WindowJoin<K, A, B> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("WindowJoin").field("windowed", &self.windowed).finish()
    }
}

impl<K, A, B> WindowJoin<K, A, B>
where
    K: Hash + Eq + Clone + Send + Serialize + DeserializeOwned + 'static,
    A: Clone + Send + Serialize + DeserializeOwned + 'static,
    B: Clone + Send + Serialize + DeserializeOwned + 'static,
{
    /// Keeps windows `ms` after they fired: a late record within it fires
    /// the window again with the pairs it adds (as an update: the earlier
    /// pairs again too, as for any window firing again).
    pub fn allowed_lateness(self, ms: i64) -> Self {
        WindowJoin { windowed: self.windowed.allowed_lateness(ms) }
    }

    /// Sends the late records (`(key, Either::Left(a) | Either::Right(b))`)
    /// to the stream `f` builds on; without it they are only counted.
    pub fn late_data(self, f: impl FnOnce(Stream<Sides<K, A, B>>)) -> Self {
        WindowJoin { windowed: self.windowed.late_data(f) }
    }

    /// Emits `f(key, window, a, b)` for every pair in every window that
    /// fires, at the window's last ms.
    pub fn apply<O, F>(self, mut f: F) -> Stream<O>
    where
        O: Send + 'static,
        F: FnMut(&K, &Window, &A, &B) -> O + Clone + Send + 'static,
    {
        self.windowed.pre_aggregate(false).aggregate(crate::window::Collect).flat_map(
            move |r: WindowResult<K, Vec<Either<A, B>>>| {
                let (mut lefts, mut rights) = (Vec::new(), Vec::new());
                for side in &r.value {
                    match side {
                        Either::Left(a) => lefts.push(a),
                        Either::Right(b) => rights.push(b),
                    }
                }
                let mut out = Vec::with_capacity(lefts.len() * rights.len());
                for a in &lefts {
                    for b in &rights {
                        out.push(f(&r.key, &r.window, a, b));
                    }
                }
                out
            },
        )
    }
}
