//! The connection: an async-nats client on an I/O thread of its own.

use std::future::Future;
use std::sync::{mpsc, Arc};
use std::time::Duration;

use async_nats::jetstream::{self, stream};

use super::{PARTITIONED_BY_KEY, PARTITIONS_KEY};

/// How long a request of the group or of the state backend, or a
/// consumer's creation, waits for its answer ([`Nats::control_js`]).
///
/// Answers take milliseconds; what does not answer is a stream electing a
/// leader, or (for about three minutes after a cluster node is killed,
/// measured with nats-server 2.12.8) a consumer the meta leader placed on
/// the dead node: about one creation in three is never answered. Failing
/// such a request in 2 s, not the client's 10 s, lets the caller try again
/// (a new placement) well within a group's lease.
pub(crate) const CONTROL_TIMEOUT: Duration = Duration::from_secs(2);

/// Tries `op` up to `attempts` times, 100 ms apart, each attempt given at
/// most `limit` (`None`: only its requests' own timeouts): for operations
/// that create a consumer (reading an object, a subject), whose creation
/// may be placed on a dead node. Returns the last error.
pub(crate) async fn with_retries<T, F, Fut>(
    what: &str,
    attempts: u32,
    limit: Option<Duration>,
    mut op: F,
) -> Result<T, NatsError>
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Result<T, NatsError>>,
{
    let mut last = None;
    for attempt in 0..attempts.max(1) {
        if attempt > 0 {
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        let res = match limit {
            Some(limit) => tokio::time::timeout(limit, op())
                .await
                .unwrap_or_else(|_| Err(NatsError::jetstream(what, format!("no answer within {limit:?}")))),
            None => op().await,
        };
        match res {
            Ok(v) => return Ok(v),
            Err(e) => {
                tracing::debug!(what, attempt, error = %e, "NATS operation failed; trying again");
                last = Some(e);
            }
        }
    }
    Err(last.expect("at least one attempt"))
}

/// The subjects of stream `stream` matching `filter` that hold messages,
/// as its leader's stream info lists them. Unlike a KV bucket's `keys()`
/// or an object store's `list()`, this creates no consumer (see
/// [`CONTROL_TIMEOUT`] for why that matters on a cluster that lost a
/// node).
pub(crate) async fn subjects(js: &jetstream::Context, stream: &str, filter: &str) -> Result<Vec<String>, NatsError> {
    use futures_util::TryStreamExt;
    let failed = |e: &dyn std::fmt::Display| NatsError::jetstream(format!("stream {stream} subjects {filter}"), e);
    let s = js.get_stream_no_info(stream).await.map_err(|e| failed(&e))?;
    let mut info = s.info_with_subjects(filter).await.map_err(|e| failed(&e))?;
    let mut subjects = Vec::new();
    while let Some((subject, _count)) = info.try_next().await.map_err(|e| failed(&e))? {
        subjects.push(subject);
    }
    Ok(subjects)
}

/// Removes every message of `subject` from stream `stream`, leaving no
/// marker: a KV key or object deleted this way is gone from
/// [`subjects`] too (a KV purge or an object delete leaves a marker
/// behind, one more subject to list for ever).
pub(crate) async fn purge_subject(js: &jetstream::Context, stream: &str, subject: &str) -> Result<(), NatsError> {
    let failed = |e: &dyn std::fmt::Display| NatsError::jetstream(format!("stream {stream} subject {subject}"), e);
    let s = js.get_stream_no_info(stream).await.map_err(|e| failed(&e))?;
    s.purge().filter(subject).await.map_err(|e| failed(&e))?;
    Ok(())
}

/// A NATS connection for weir's connectors: cheap to clone, shared by
/// every source and sink of a process.
///
/// It runs the client on a thread of its own with a two-thread tokio
/// runtime, so that no actor's work can block it and it lives as long as
/// any handle. Connect once per process and clone.
#[derive(Clone)]
pub struct Nats {
    inner: Arc<Inner>,
}

struct Inner {
    url: String,
    /// Replicas of every stream and bucket the connectors create.
    replicas: std::sync::atomic::AtomicUsize,
    js: jetstream::Context,
    /// The same connection with [`CONTROL_TIMEOUT`] on every request.
    control: jetstream::Context,
    rt: tokio::runtime::Handle,
    /// Dropped with the last handle: the I/O thread then ends.
    _stop: tokio::sync::oneshot::Sender<()>,
}

impl std::fmt::Debug for Nats {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Nats").field("url", &self.inner.url).finish_non_exhaustive()
    }
}

/// What went wrong talking to NATS, naming the server, stream or subject.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum NatsError {
    /// The server could not be reached.
    #[error("cannot connect to NATS at {url}: {reason}")]
    Connect {
        /// The server URL.
        url: String,
        /// The client's error.
        reason: String,
    },
    /// A JetStream request about `what` (a stream, a subject) failed.
    #[error("NATS JetStream, {what}: {reason}")]
    JetStream {
        /// The stream, subject or message it was about.
        what: String,
        /// The server's or client's error.
        reason: String,
    },
    /// The I/O thread is gone (the process is shutting down).
    #[error("the NATS I/O thread has stopped")]
    Stopped,
}

impl NatsError {
    /// A [`NatsError::JetStream`] about `what`.
    pub fn jetstream(what: impl Into<String>, reason: impl std::fmt::Display) -> Self {
        NatsError::JetStream { what: what.into(), reason: reason.to_string() }
    }
}

impl Nats {
    /// Connects to the server at `url` (e.g. `nats://127.0.0.1:4222`),
    /// waiting up to 10 s for it. Call it outside any async context or
    /// inside one: it starts its own thread.
    ///
    /// `url` may list several servers of a cluster, comma-separated: the
    /// client then reconnects to another one when its server goes away.
    pub fn connect(url: &str) -> Result<Nats, NatsError> {
        let (ready_tx, ready_rx) = mpsc::channel();
        let (stop_tx, stop_rx) = tokio::sync::oneshot::channel::<()>();
        let target = url.to_string();
        std::thread::Builder::new()
            .name("weir-nats-io".into())
            .spawn(move || {
                // Two threads: a task that keeps its thread busy (a
                // consumer recreating itself while a stream elects a
                // leader) must not hold every other request back.
                let rt = match tokio::runtime::Builder::new_multi_thread()
                    .worker_threads(2)
                    .thread_name("weir-nats-io")
                    .enable_all()
                    .build()
                {
                    Ok(rt) => rt,
                    Err(e) => {
                        let _ = ready_tx.send(Err(NatsError::Connect { url: target, reason: e.to_string() }));
                        return;
                    }
                };
                let handle = rt.handle().clone();
                rt.block_on(async move {
                    let connected = async_nats::ConnectOptions::new()
                        .connection_timeout(Duration::from_secs(10))
                        .name("weir")
                        .connect(target.split(',').map(str::trim).filter(|s| !s.is_empty()).collect::<Vec<&str>>())
                        .await;
                    match connected {
                        Ok(client) => {
                            let control =
                                jetstream::ContextBuilder::new().timeout(CONTROL_TIMEOUT).build(client.clone());
                            let js = jetstream::new(client);
                            if ready_tx.send(Ok((js, control, handle))).is_err() {
                                return;
                            }
                            // Serve spawned work until the last handle is dropped.
                            let _ = stop_rx.await;
                        }
                        Err(e) => {
                            let _ = ready_tx.send(Err(NatsError::Connect { url: target, reason: e.to_string() }));
                        }
                    }
                });
            })
            .map_err(|e| NatsError::Connect { url: url.to_string(), reason: e.to_string() })?;
        let (js, control, rt) = ready_rx.recv().map_err(|_| NatsError::Stopped)??;
        Ok(Nats {
            inner: Arc::new(Inner {
                url: url.to_string(),
                replicas: std::sync::atomic::AtomicUsize::new(1),
                js,
                control,
                rt,
                _stop: stop_tx,
            }),
        })
    }

    /// Streams, KV buckets and object stores the connectors create from
    /// here on get `n` replicas (default 1; 3 on a 3-node cluster for
    /// production: a node can then fail without losing anything).
    pub fn set_replicas(&self, n: usize) {
        self.inner.replicas.store(n.max(1), std::sync::atomic::Ordering::Relaxed);
    }

    /// The replicas of what the connectors create.
    pub fn replicas(&self) -> usize {
        self.inner.replicas.load(std::sync::atomic::Ordering::Relaxed)
    }

    /// The server URL (or comma-separated URLs of a cluster).
    pub fn url(&self) -> &str {
        &self.inner.url
    }

    /// The JetStream context (for work spawned on the I/O thread).
    pub(crate) fn js(&self) -> jetstream::Context {
        self.inner.js.clone()
    }

    /// The JetStream context for the group's and the state backend's
    /// requests and for creating consumers: every request, and every
    /// acknowledgement, waits at most [`CONTROL_TIMEOUT`].
    pub(crate) fn control_js(&self) -> jetstream::Context {
        self.inner.control.clone()
    }

    /// Runs `work` on the I/O thread and returns at once.
    pub(crate) fn spawn<F>(&self, work: F)
    where
        F: Future<Output = ()> + Send + 'static,
    {
        self.inner.rt.spawn(work);
    }

    /// Runs `work` on the I/O thread and blocks the calling thread until it
    /// is done. Never call it on the I/O thread itself.
    pub fn call<T, F>(&self, work: impl FnOnce(jetstream::Context) -> F) -> Result<T, NatsError>
    where
        T: Send + 'static,
        F: Future<Output = Result<T, NatsError>> + Send + 'static,
    {
        let (tx, rx) = mpsc::sync_channel(1);
        let fut = work(self.js());
        self.inner.rt.spawn(async move {
            let _ = tx.send(fut.await);
        });
        rx.recv().map_err(|_| NatsError::Stopped)?
    }

    /// [`Self::call`] with the control context ([`Self::control_js`]):
    /// what the group and the state backend ask.
    pub(crate) fn control<T, F>(&self, work: impl FnOnce(jetstream::Context) -> F) -> Result<T, NatsError>
    where
        T: Send + 'static,
        F: Future<Output = Result<T, NatsError>> + Send + 'static,
    {
        let (tx, rx) = mpsc::sync_channel(1);
        let fut = work(self.control_js());
        self.inner.rt.spawn(async move {
            let _ = tx.send(fut.await);
        });
        rx.recv().map_err(|_| NatsError::Stopped)?
    }

    /// Creates the partitioned stream `name` (subjects `name.0` …
    /// `name.{partitions-1}`, file storage, the given duplicate window),
    /// partitioned by what `by` names (recorded as its
    /// [`PARTITIONED_BY_KEY`] metadata, read back by
    /// [`Self::partitioned_by`]), or checks that an existing one has that
    /// many partitions.
    pub fn create_partitioned_stream(
        &self,
        name: &str,
        partitions: usize,
        duplicate_window: Duration,
        by: &str,
    ) -> Result<(), NatsError> {
        let (name, replicas, by) = (name.to_string(), self.replicas(), by.to_string());
        self.call(move |js| async move {
            let config = stream::Config {
                name: name.clone(),
                num_replicas: replicas,
                subjects: vec![format!("{name}.*")],
                storage: stream::StorageType::File,
                duplicate_window,
                metadata: [
                    (PARTITIONS_KEY.to_string(), partitions.to_string()),
                    (PARTITIONED_BY_KEY.to_string(), by.clone()),
                ]
                .into_iter()
                .collect(),
                ..Default::default()
            };
            let mut s =
                js.get_or_create_stream(config).await.map_err(|e| NatsError::jetstream(format!("stream {name}"), e))?;
            let info = s.info().await.map_err(|e| NatsError::jetstream(format!("stream {name}"), e))?;
            let have = info.config.metadata.get(PARTITIONS_KEY).cloned().unwrap_or_default();
            if have != partitions.to_string() {
                return Err(NatsError::jetstream(
                    format!("stream {name}"),
                    format!("it exists with {PARTITIONS_KEY} = {have:?}, not {partitions}"),
                ));
            }
            let have_by = info.config.metadata.get(PARTITIONED_BY_KEY).cloned().unwrap_or_default();
            if have_by != by {
                return Err(NatsError::jetstream(
                    format!("stream {name}"),
                    format!("it exists with {PARTITIONED_BY_KEY} = {have_by:?}, not {by:?}"),
                ));
            }
            Ok(())
        })
    }

    /// The number of partitions of stream `name` (its `weir.partitions`
    /// metadata).
    pub fn partitions(&self, name: &str) -> Result<usize, NatsError> {
        let name = name.to_string();
        self.call(move |js| async move {
            let mut s = js.get_stream(&name).await.map_err(|e| NatsError::jetstream(format!("stream {name}"), e))?;
            let info = s.info().await.map_err(|e| NatsError::jetstream(format!("stream {name}"), e))?;
            let value = info.config.metadata.get(PARTITIONS_KEY).cloned();
            value.and_then(|v| v.parse::<usize>().ok()).filter(|&p| p > 0).ok_or_else(|| {
                NatsError::jetstream(
                    format!("stream {name}"),
                    format!("it is not a partitioned stream: no positive {PARTITIONS_KEY} in its metadata"),
                )
            })
        })
    }

    /// What stream `name` is partitioned by (its [`PARTITIONED_BY_KEY`]
    /// metadata; `None` when it does not say).
    pub fn partitioned_by(&self, name: &str) -> Result<Option<String>, NatsError> {
        let name = name.to_string();
        self.call(move |js| async move {
            let mut s = js.get_stream(&name).await.map_err(|e| NatsError::jetstream(format!("stream {name}"), e))?;
            let info = s.info().await.map_err(|e| NatsError::jetstream(format!("stream {name}"), e))?;
            Ok(info.config.metadata.get(PARTITIONED_BY_KEY).cloned())
        })
    }

    /// Creates stream `name` for a [`super::JetStreamSink`]'s output
    /// (subjects `name.>`, file storage, the given duplicate window) if it
    /// does not exist.
    pub fn create_output_stream(&self, name: &str, duplicate_window: Duration) -> Result<(), NatsError> {
        let (name, replicas) = (name.to_string(), self.replicas());
        self.call(move |js| async move {
            let config = stream::Config {
                name: name.clone(),
                num_replicas: replicas,
                subjects: vec![format!("{name}.>")],
                storage: stream::StorageType::File,
                duplicate_window,
                ..Default::default()
            };
            js.get_or_create_stream(config).await.map_err(|e| NatsError::jetstream(format!("stream {name}"), e))?;
            Ok(())
        })
    }
}

/// Creates KV bucket `bucket` (history 1, `replicas` replicas) unless it
/// exists: the buckets of groups and of checkpoints.
pub(crate) async fn ensure_key_value(js: &jetstream::Context, bucket: &str, replicas: usize) -> Result<(), NatsError> {
    if js.get_key_value(bucket).await.is_err() {
        js.create_key_value(jetstream::kv::Config {
            bucket: bucket.to_string(),
            history: 1,
            num_replicas: replicas,
            ..Default::default()
        })
        .await
        .map_err(|e| NatsError::jetstream(format!("KV bucket {bucket}"), e))?;
    }
    Ok(())
}
