//! Keyed streams and windows: `key_by(..)` → `window(..)` → `aggregate(..)`.

use std::fmt;
use std::hash::Hash;
use std::sync::{Arc, Mutex, OnceLock};

use serde::de::DeserializeOwned;
use serde::Serialize;

use crate::error::JobError;
use crate::metrics::{ActorKind, ActorMetrics};
use crate::operator::Operator;
use crate::output::edge::{KeyBy, Partitioned};
use crate::output::keys::{BatchKeys, KeyMaker};
use crate::output::outlet::Outlet;
use crate::output::pool::BatchPool;
use crate::output::{Emit, Inbox, Target};
use crate::spawn::{Restorer, Spawner, StartFn};
use crate::topology::graph::{Graph, NodeInfo};
use crate::topology::{install, late_stream, lock, operator_prepare, take_port, Port, Stream};
use crate::window::core::WindowCore;
use crate::window::partial::combine::Combine;
use crate::window::partial::{combinable, Keyed};
use crate::window::{Aggregate, Collect, Window, WindowOptions, WindowResult, Windows};
use crate::window_manager::{WindowInput, WindowManager};

/// A stream partitioned by key (see [`Stream::key_by`]).
#[must_use = "a keyed stream does nothing until windowed or transformed"]
pub struct KeyedStream<K, T: Send + 'static> {
    pub(crate) stream: Stream<T>,
    key: KeyMaker<K, T>,
    pub(crate) parallelism: usize,
}

impl<K, T: Send + 'static> fmt::Debug for KeyedStream<K, T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("KeyedStream").field("parallelism", &self.parallelism).finish()
    }
}

impl<K, T> KeyedStream<K, T>
where
    K: Hash + Eq + Clone + Send + Serialize + DeserializeOwned + 'static,
    T: Send + 'static,
{
    pub(crate) fn new(stream: Stream<T>, key: KeyMaker<K, T>, parallelism: usize) -> Self {
        KeyedStream { stream, key, parallelism }
    }

    /// Connects this stream to node `id` through a key-partitioning edge;
    /// returns the node's inbox, filled when the node starts.
    fn connect_keyed(self, g: &mut Graph, id: usize) -> Inbox<(K, T)> {
        self.connect_with(g, id, |out, key| Box::new(KeyBy::new(out, key)))
    }

    /// Like [`KeyedStream::connect_keyed`], through a combining edge that folds
    /// each batch's records of one key and one interval of `len` ms with
    /// `agg` before they leave (`window::partial`).
    fn connect_combining<A: Aggregate<T>>(
        self,
        g: &mut Graph,
        id: usize,
        agg: A,
        len: i64,
    ) -> Inbox<Keyed<K, T, A::Acc>> {
        self.connect_with(g, id, move |out, key| Box::new(Combine::new(out, key, agg.clone(), len)))
    }

    /// Connects this stream to node `id` through the partitioning edge that
    /// `edge(partitioned output, key extractor)` builds for each upstream
    /// instance; returns the node's inbox.
    fn connect_with<V, E>(self, g: &mut Graph, id: usize, edge: E) -> Inbox<V>
    where
        V: Send + 'static,
        E: Fn(Partitioned<V>, Box<dyn BatchKeys<K, T>>) -> Box<dyn Emit<T>> + Clone + Send + 'static,
    {
        let inbox: Inbox<V> = Arc::new(OnceLock::new());
        self.attach_keyed(g, id, &inbox, edge);
        inbox
    }

    /// Connects this stream to node `id`, whose instances fill `inbox`,
    /// through the partitioning edge `edge(partitioned output, key
    /// extractor)` builds for each upstream instance.
    pub(crate) fn attach_keyed<V, E>(self, g: &mut Graph, id: usize, inbox: &Inbox<V>, edge: E)
    where
        V: Send + 'static,
        E: Fn(Partitioned<V>, Box<dyn BatchKeys<K, T>>) -> Box<dyn Emit<T>> + Clone + Send + 'static,
    {
        let batch_size = g.config.batch_size;
        // One key function for every stream of a union, each upstream
        // instance getting its own extractor.
        let key = Arc::new(Mutex::new(self.key));
        self.stream.connect_to(g, id, false, |offset, _| {
            let (up, key, edge) = (Arc::clone(inbox), Arc::clone(&key), edge.clone());
            Box::new(move |i, metrics: &Arc<ActorMetrics>| {
                let targets = up.get().expect("downstream nodes are started first").clone();
                let keys = (key.lock().unwrap_or_else(|e| e.into_inner()))();
                edge(Partitioned::new(targets, offset + i, batch_size, Arc::clone(metrics)), keys)
            })
        });
    }

    /// Groups each key's records into event-time (or count) windows, in the
    /// window-manager node `name` (its actors are `<name>#<instance>` in
    /// metrics).
    pub fn window(self, name: &str, windows: Windows) -> WindowedStream<K, T> {
        let graph = Arc::clone(&self.stream.graph);
        WindowedStream::new(graph, name, windows, WindowFeed::Keyed(self))
    }

    /// Runs a keyed process function (per-key state and timers, see
    /// [`crate::process`]) over this stream in node `name`, one instance
    /// per key partition (`make(i)` makes instance `i`'s function).
    pub fn process<F, M>(self, name: &str, mut make: M) -> Stream<F::Out>
    where
        F: crate::process::KeyedProcess<Key = K, In = T>,
        M: FnMut(usize) -> F + Send + 'static,
    {
        use crate::process::ProcessCore;
        let graph = Arc::clone(&self.stream.graph);
        let p = self.parallelism;
        let mut g = lock(&graph);
        let id = g.add_node(name, ActorKind::Operator, p);
        let inbox = self.connect_keyed(&mut g, id);
        let port = install(&mut g, id, inbox, move |r: &mut Restorer, info: &NodeInfo| {
            let cores = (0..info.parallelism)
                .map(|i| {
                    let mut core = ProcessCore(crate::process::core_engine(make(i)));
                    r.restore_core(&info.actor(i), &mut core).map(|()| core)
                })
                .collect::<Result<Vec<_>, JobError>>()?;
            Ok(crate::topology::shell_starter(cores, |_sp, _metrics, out| out))
        });
        drop(g);
        Stream::from_port(graph, id, p, port)
    }

    /// Runs a custom [`Operator`] over `(key, value)` records in node
    /// `name`, `parallelism` instances (`make(i)` makes instance `i`'s),
    /// each key always at the same instance.
    pub fn transform<O, M>(self, name: &str, make: M) -> Stream<O::Out>
    where
        O: Operator<In = (K, T)>,
        M: FnMut(usize) -> O + Send + 'static,
    {
        let graph = Arc::clone(&self.stream.graph);
        let p = self.parallelism;
        let mut g = lock(&graph);
        let id = g.add_node(name, ActorKind::Operator, p);
        let inbox = self.connect_keyed(&mut g, id);
        let port = install(&mut g, id, inbox, operator_prepare(make));
        drop(g);
        Stream::from_port(graph, id, p, port)
    }
}

/// What feeds a window node: a keyed stream, or streams that attach
/// themselves to it keyed alike (connected keyed streams), which are not
/// pre-aggregated.
pub(crate) enum WindowFeed<K: Send + 'static, T: Send + 'static> {
    Keyed(KeyedStream<K, T>),
    Attached { parallelism: usize, attach: AttachInputs<K, T> },
}

/// Connects a window node's inputs (graph, node) and returns its inbox.
pub(crate) type AttachInputs<K, T> = Box<dyn FnOnce(&mut Graph, usize) -> Inbox<(K, T)> + Send>;

impl<K: Send + 'static, T: Send + 'static> WindowFeed<K, T> {
    fn parallelism(&self) -> usize {
        match self {
            WindowFeed::Keyed(k) => k.parallelism,
            WindowFeed::Attached { parallelism, .. } => *parallelism,
        }
    }
}

/// A keyed stream cut into windows; finish it with [`Self::aggregate`] or
/// [`Self::apply`].
#[must_use = "a windowed stream does nothing until aggregated"]
pub struct WindowedStream<K: Send + 'static, T: Send + 'static> {
    keyed: WindowFeed<K, T>,
    graph: Arc<std::sync::Mutex<Graph>>,
    id: usize,
    windows: Windows,
    options: WindowOptions,
    late: Port<(K, T)>,
    pre_aggregate: bool,
}

impl<K: Send + 'static, T: Send + 'static> WindowedStream<K, T> {
    /// The window node `name` fed by `input`.
    pub(crate) fn new(graph: Arc<Mutex<Graph>>, name: &str, windows: Windows, input: WindowFeed<K, T>) -> Self {
        let id = {
            let mut g = lock(&graph);
            let id = g.add_node(name, ActorKind::Window, input.parallelism());
            if let Err((parameter, value)) = windows.validate() {
                g.invalid(name, parameter, value);
            }
            id
        };
        WindowedStream {
            keyed: input,
            graph,
            id,
            windows,
            options: WindowOptions::default(),
            late: Arc::new(Mutex::new(None)),
            pre_aggregate: true,
        }
    }
}

impl<K: Send + 'static, T: Send + 'static> fmt::Debug for WindowedStream<K, T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("WindowedStream").field("windows", &self.windows).field("options", &self.options).finish()
    }
}

impl<K, T> WindowedStream<K, T>
where
    K: Hash + Eq + Clone + Send + Serialize + DeserializeOwned + 'static,
    T: Send + 'static,
{
    /// Keeps windows `ms` of event time after they fired, so that late
    /// records within it update them (the window fires again as an update).
    pub fn allowed_lateness(mut self, ms: i64) -> Self {
        if ms < 0 {
            self.invalid("allowed lateness", format!("{ms} (must be >= 0)"));
        }
        self.options.allowed_lateness = ms.max(0);
        self
    }

    /// Whether records are pre-aggregated before the shuffle to the window
    /// managers (default: yes, where that is exact).
    ///
    /// With `parallelism > 1`, tumbling windows and sliding windows whose
    /// size is a multiple of the slide, and no early firing by count, each
    /// upstream instance folds the records of one key and one window (or
    /// pane) within each batch into one accumulator with
    /// [`Aggregate::add`] and sends that; the window manager folds it in
    /// with [`Aggregate::merge`] (Flink SQL's local–global aggregation).
    /// With few keys this removes most of the records crossing between
    /// threads; with many, the edge notices that batches do not shrink and
    /// sends records as they are. Results are the same either way, given
    /// the [`Aggregate`] contract (`merge` associative, `create` its
    /// identity) — exactly for integers; a floating-point sum grouped
    /// differently can differ in its last bits. `create`, `add` and `merge`
    /// then also run on the upstream instances' threads. Records behind
    /// the watermark still travel one by one, so
    /// late data reaches [`Self::late_data`] as itself. The window
    /// manager's `records_in` counts the records a partial stands for.
    /// Turn it off for an aggregate whose `merge` is expensive or
    /// approximate.
    pub fn pre_aggregate(mut self, on: bool) -> Self {
        self.pre_aggregate = on;
        self
    }

    /// Fires each window early every `n` records added to it
    /// (`1 <= n <= u32::MAX`: a window counts its records since the last
    /// firing in 32 bits, so that its state stays small).
    pub fn early_firing_count(mut self, n: u64) -> Self {
        if n == 0 {
            self.invalid("early firing count", "0 (must be >= 1)".into());
        }
        if n > u64::from(u32::MAX) {
            self.invalid("early firing count", format!("{n} (must be <= {})", u32::MAX));
        }
        self.options.early_firing_count = Some(n.clamp(1, u64::from(u32::MAX)));
        self
    }

    /// Fires every changed window early every `interval` of processing time.
    pub fn early_firing_interval(mut self, interval: std::time::Duration) -> Self {
        if interval.is_zero() {
            self.invalid("early firing interval", "0 (must be > 0)".into());
        }
        self.options.early_firing_interval = Some(interval.max(std::time::Duration::from_millis(1)));
        self
    }

    fn invalid(&self, parameter: &'static str, value: String) {
        lock(&self.graph).invalid_at(self.id, parameter, value);
    }

    /// Sends the late data — records whose windows had all closed (beyond
    /// the allowed lateness), with their key — to the stream `f` builds on:
    /// `.late_data(|late| late.sink("late", sink))`. Without it late
    /// records are only counted (metrics `late_records`).
    pub fn late_data(self, f: impl FnOnce(Stream<(K, T)>)) -> Self {
        f(late_stream(&self.graph, self.id, &self.late));
        self
    }

    /// Aggregates each window incrementally with `agg`.
    pub fn aggregate<A: Aggregate<T>>(self, agg: A) -> Stream<WindowResult<K, A::Out>> {
        let WindowedStream { keyed, graph, id, windows, options, late, pre_aggregate } = self;
        let p = keyed.parallelism();
        let combine = combinable(windows, &options).filter(|_| pre_aggregate && p > 1);
        let mut g = lock(&graph);
        let port: Port<WindowResult<K, A::Out>> = Arc::new(Mutex::new(None));
        let prepare = match (keyed, combine) {
            (WindowFeed::Keyed(keyed), Some(len)) => {
                let inbox = keyed.connect_combining(&mut g, id, agg.clone(), len);
                window_prepare(inbox, windows, options, agg, late, Arc::clone(&port))
            }
            (WindowFeed::Keyed(keyed), None) => {
                let inbox = keyed.connect_keyed(&mut g, id);
                window_prepare(inbox, windows, options, agg, late, Arc::clone(&port))
            }
            (WindowFeed::Attached { attach, .. }, _) => {
                let inbox = attach(&mut g, id);
                window_prepare(inbox, windows, options, agg, late, Arc::clone(&port))
            }
        };
        g.nodes[id].prepare = Some(prepare);
        drop(g);
        Stream::from_port(graph, id, p, port)
    }

    /// Runs `f(key, window, records)` over all the records of each window
    /// when it fires (a full-window function, Flink's `apply`; keeps every
    /// record until then).
    pub fn apply<R, P>(self, f: P) -> Stream<WindowResult<K, R>>
    where
        T: Clone + serde::Serialize + serde::de::DeserializeOwned,
        R: Send + 'static,
        P: Fn(&K, &Window, &[T]) -> R + Clone + Send + 'static,
    {
        // Collecting gains nothing from pre-aggregation (a partial holds
        // the same records) and would allocate per key and batch.
        self.pre_aggregate(false).aggregate(Collect).map(move |r: WindowResult<K, Vec<T>>| WindowResult {
            value: f(&r.key, &r.window, &r.value),
            key: r.key,
            window: r.window,
            timing: r.timing,
        })
    }
}

/// Phase one of a node's window managers (a window core each, restored),
/// then their start, each taking `I` (keyed records, or keyed partials)
/// from `inbox`.
fn window_prepare<K, T, A, I>(
    inbox: Inbox<I>,
    windows: Windows,
    options: WindowOptions,
    agg: A,
    late: Port<(K, T)>,
    out_port: Port<WindowResult<K, A::Out>>,
) -> crate::spawn::PrepareFn
where
    K: Hash + Eq + Clone + Send + Serialize + DeserializeOwned + 'static,
    T: Send + 'static,
    A: Aggregate<T>,
    I: WindowInput<K, T, A>,
{
    Box::new(move |r: &mut Restorer, info: &NodeInfo| {
        let late_connected = late.lock().map(|p| p.is_some()).unwrap_or(false);
        let managers = (0..info.parallelism)
            .map(|i| {
                let core = WindowCore::new(windows, options, agg.clone());
                let mut manager: WindowManager<K, T, A, I> = WindowManager::new(core, options, late_connected);
                r.restore_core(&info.actor(i), &mut manager).map(|()| manager)
            })
            .collect::<Result<Vec<_>, JobError>>()?;
        Ok(Box::new(move |sp: &mut Spawner, info: &NodeInfo| {
            let mut out_factory = take_port(&out_port);
            let mut late_factory = take_port(&late);
            let targets = managers
                .into_iter()
                .enumerate()
                .map(|(i, manager)| {
                    let metrics = sp.metrics(info, i);
                    let out = Outlet::new(out_factory(i, &metrics), Arc::clone(&metrics));
                    let late_out = Outlet::new(late_factory(i, &metrics), Arc::clone(&metrics));
                    let published = manager.published_watermark();
                    let pool = Arc::new(BatchPool::default());
                    let addr = sp.start_shell(i, manager, (out, late_out), info.inputs, &metrics, Arc::clone(&pool));
                    Target::with_pool(addr.recipient(), &metrics.mailbox, pool).with_watermark(published)
                })
                .collect();
            if inbox.set(targets).is_err() {
                unreachable!("a node is started once");
            }
        }) as StartFn)
    })
}
