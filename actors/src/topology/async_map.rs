//! [`AsyncMap`]: the builder of a `map_async` stage (see
//! [`crate::async_map`] for what the stage does).

use std::fmt;
use std::future::Future;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use serde::de::DeserializeOwned;
use serde::Serialize;

use crate::async_map::{AsyncFailure, AsyncMapCore, Calls, Order};
use crate::error::JobError;
use crate::metrics::ActorKind;
use crate::spawn::Restorer;
use crate::topology::graph::{Graph, NodeInfo};
use crate::topology::{lock, shell_starter, side_stream, with_side_port, Port, Stream};

impl<T: Send + 'static> Stream<T> {
    /// Calls an asynchronous function per record — a database, a cache,
    /// another service — in node `name`, with at most `capacity` calls in
    /// flight per instance and each call given `timeout` to complete.
    /// Finish with [`AsyncMap::apply`]; results leave in input order unless
    /// [`AsyncMap::unordered`]. One instance per instance of this stream.
    ///
    /// At `capacity` calls in flight the stage takes no more input, which
    /// backpressures its upstream. Calls in flight are part of checkpoints
    /// (their inputs, called again on restore), and a call that fails or
    /// times out sends its record to [`AsyncMap::dead_letters`]. See
    /// [`crate::async_map`] for the full semantics.
    ///
    /// ```
    /// use std::time::Duration;
    /// use weir_actors::prelude::*;
    ///
    /// let job = JobBuilder::new("enrich");
    /// let (sink, got) = CollectSink::new();
    /// job.source("n", IterSource::new(0..100i64), |n: &i64| *n, WatermarkStrategy::monotonic())
    ///     .map_async("lookup", 16, Duration::from_secs(1))
    ///     .apply(|n: i64| async move {
    ///         // Stands for an I/O call: a client request, an actor's `send`.
    ///         tokio::task::yield_now().await;
    ///         Ok::<_, std::io::Error>(n * 10)
    ///     })
    ///     .sink("out", sink);
    /// job.build().unwrap().run_blocking().unwrap();
    /// assert_eq!(got.values(), (0..100).map(|n| n * 10).collect::<Vec<i64>>());
    /// ```
    pub fn map_async(self, name: &str, capacity: usize, timeout: Duration) -> AsyncMap<T> {
        let p = self.own_parallelism();
        let mut g = lock(&self.graph);
        let id = g.add_node(name, ActorKind::Operator, p);
        if capacity == 0 {
            g.invalid_at(id, "capacity", "0 (at least one call must be allowed in flight)".into());
        }
        if timeout.is_zero() {
            g.invalid_at(id, "timeout", "0 ms (a call must be given time to complete)".into());
        }
        drop(g);
        let graph = Arc::clone(&self.graph);
        AsyncMap { stream: self, graph, id, capacity, timeout, order: Order::Ordered, dead: Arc::new(Mutex::new(None)) }
    }
}

/// A `map_async` stage being built: optionally [`Self::unordered`] and
/// [`Self::dead_letters`], finish with [`Self::apply`].
#[must_use = "a map_async stage does nothing until applied"]
pub struct AsyncMap<T: Send + 'static> {
    stream: Stream<T>,
    graph: Arc<Mutex<Graph>>,
    id: usize,
    capacity: usize,
    timeout: Duration,
    order: Order,
    dead: Port<AsyncFailure<T>>,
}

impl<T: Send + 'static> fmt::Debug for AsyncMap<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("AsyncMap")
            .field("capacity", &self.capacity)
            .field("timeout", &self.timeout)
            .field("order", &self.order)
            .finish()
    }
}

impl<T> AsyncMap<T>
where
    T: Clone + Send + Serialize + DeserializeOwned + 'static,
{
    /// Results leave as their calls complete, not in input order (a slow
    /// call does not hold back the others; a watermark still waits for
    /// every call started before it).
    pub fn unordered(mut self) -> Self {
        self.order = Order::Unordered;
        self
    }

    /// Sends every record whose call failed or timed out, as an
    /// [`AsyncFailure`] at the record's timestamp, to the stream `f` builds
    /// on. Without it they are counted (metrics `dead_letters`) and the
    /// first is logged.
    pub fn dead_letters(self, f: impl FnOnce(Stream<AsyncFailure<T>>)) -> Self {
        f(side_stream(&self.graph, self.id, &self.dead, "the dead-letter output"));
        self
    }

    /// Calls `f(value)` for every record; its `Ok` result leaves at the
    /// record's timestamp, its `Err` (shown with `Display`) makes the record
    /// a dead letter. The futures are polled on the stage's actor thread,
    /// inside the job's actix System (they must be `Send` only because the
    /// stage is made on another thread than the one it runs on).
    pub fn apply<U, E, F, Fut>(self, f: F) -> Stream<U>
    where
        U: Send + 'static,
        E: fmt::Display,
        F: FnMut(T) -> Fut + Clone + Send + 'static,
        Fut: Future<Output = Result<U, E>> + Send + 'static,
    {
        let AsyncMap { stream, id, capacity, timeout, order, dead, .. } = self;
        let dead_port = Arc::clone(&dead);
        stream.into_node_at(id, true, move |r: &mut Restorer, info: &NodeInfo| {
            let dead_connected = dead_port.lock().map(|p| p.is_some()).unwrap_or(false);
            let cores = (0..info.parallelism)
                .map(|i| {
                    let calls = Calls::new(f.clone(), order, capacity, timeout);
                    let mut core = AsyncMapCore::new(calls, dead_connected);
                    r.restore_core(&info.actor(i), &mut core).map(|()| core)
                })
                .collect::<Result<Vec<_>, JobError>>()?;
            Ok(shell_starter(cores, with_side_port(dead_port)))
        })
    }
}
