//! Repartition streams: how records cross workers when a job keys them by
//! something else than the input's partitioning (Kafka Streams'
//! repartition topics).
//!
//! A job that needs one runs in two stages, both inside each partition's
//! job. Stage one reads input partition `u` and hands its records to a
//! [`RepartitionSink`], which routes each to partition `q` of the
//! repartition stream by its new key. Stage two reads partition `q` with a
//! [`RepartitionSource`] and goes on (windows, sinks). Every upstream
//! partition writes to every partition of the stream, so whichever worker
//! runs `q` sees the records of all of them.
//!
//! **Exactly once by numbering, not by epochs.** Each message from
//! upstream `u` to partition `q` carries `u` ([`FROM_HEADER`]) and the
//! index, among everything `u` sent to `q`, of its first record
//! ([`INDEX_HEADER`]). The sink publishes as it goes (at-least-once) and
//! at each checkpoint waits until everything it wrote is stored, then
//! snapshots how many records it has sent to each partition. A restored
//! stage one reads its input again from the checkpoint and, the records
//! reaching the sink being a function of that input, numbers them the same
//! way. The source keeps, per upstream, the index of the next record it
//! expects (part of its checkpointed position) and skips every record
//! below it: a replay, or a frozen worker that wakes up and publishes what
//! its successor already has, duplicates nothing. No duplicate window to
//! outlive, and no need to publish only after a checkpoint (which would
//! have to keep a checkpoint interval of raw records in every snapshot).
//! The requirement: the records reaching a `RepartitionSink` must depend
//! only on the input, in order (a source and stateless steps, as a
//! repartition is; nothing that reads the clock).
//!
//! **Watermarks per upstream partition.** A message also carries the
//! upstream's watermark after its records ([`WATERMARK_HEADER`]); the sink
//! sends a message with no records to a partition it has nothing for when
//! the watermark advances, so an upstream with no records for `q` does not
//! hold `q` back. The source's watermark is the minimum over the upstream
//! partitions ([`weir_actors::dev::Source::watermark`]), and an ended
//! upstream (its end marker, [`super::END_HEADER`]) holds nobody back.

mod sink;
mod source;

use std::time::Duration;

pub use sink::RepartitionSink;
pub use source::RepartitionSource;

use super::{Nats, NatsError};

/// The header naming the upstream partition that wrote a message.
pub const FROM_HEADER: &str = "Weir-From";
/// The header with the index of a message's first record among every
/// record its upstream partition sent to this partition.
pub const INDEX_HEADER: &str = "Weir-Index";
/// The header with the upstream partition's watermark after the message.
pub const WATERMARK_HEADER: &str = "Weir-Watermark";

/// A partitioned stream that carries records between the two stages of a
/// job that repartitions (see the module docs).
///
/// ```no_run
/// use weir::nats::{Format, JetStreamSink, JetStreamSource, Nats, Repartition};
/// use weir::prelude::*;
/// # #[derive(Clone, serde::Serialize, serde::Deserialize)] struct Click { ts: i64, user: u64, page: u64 }
/// // The input "clicks" is partitioned by user; count by page.
/// let nats = Nats::connect("nats://127.0.0.1:4222")?;
/// let p = 3; // the partition this job runs (a group worker passes it)
/// let partitions = nats.partitions("clicks")?;
/// let by_page = Repartition::create(&nats, "clicks-by-page", partitions, partitions)?;
/// let job = JobBuilder::new("pages")
///     .checkpointing(weir::CheckpointConfig::new("ckpt", std::time::Duration::from_secs(1)));
/// let from = nats.clone();
/// let strategy = WatermarkStrategy::bounded_out_of_orderness(2_000);
/// job.parallel_source("clicks", 1, move |_| JetStreamSource::<Click>::partition(&from, "clicks", p, Format::Frames),
///     |c: &Click| c.ts, strategy)
///     .sink("by-page", by_page.sink(p, |c: &Click| c.page));
/// let rp = by_page.clone();
/// job.parallel_source("by-page", 1, move |_| rp.source::<Click>(p), |c: &Click| c.ts, strategy)
///     .key_by(|c: &Click| c.page, 1)
///     .window("per-minute", Windows::tumbling(60_000))
///     .aggregate(Count)
///     .map(|r| (r.window.start, r.key, r.value))
///     .sink("out", JetStreamSink::new(&nats, "page-counts", &format!("p{p}"))?);
/// job.build()?.run_blocking()?;
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[derive(Debug, Clone)]
pub struct Repartition {
    nats: Nats,
    stream: String,
    upstreams: usize,
    partitions: usize,
}

impl Repartition {
    /// The repartition stream `stream` with `partitions` partitions,
    /// written by `upstreams` upstream partitions; created if it does not
    /// exist (subjects `stream.0` … like any partitioned stream).
    pub fn create(nats: &Nats, stream: &str, upstreams: usize, partitions: usize) -> Result<Self, NatsError> {
        if upstreams == 0 || partitions == 0 {
            return Err(NatsError::jetstream(
                format!("repartition stream {stream}"),
                format!("{upstreams} upstream partitions and {partitions} partitions (both must be > 0)"),
            ));
        }
        // Duplicates are dropped by index, not by message id: the window
        // only bounds the server's memory.
        nats.create_partitioned_stream(stream, partitions, Duration::from_secs(60), "repartition")?;
        Ok(Repartition { nats: nats.clone(), stream: stream.to_string(), upstreams, partitions })
    }

    /// The stream's name.
    pub fn stream(&self) -> &str {
        &self.stream
    }

    /// Its number of partitions.
    pub fn partitions(&self) -> usize {
        self.partitions
    }

    /// The sink of upstream partition `upstream`: routes each record to
    /// partition [`super::partition_of`]`(key(record))`.
    pub fn sink<T, K>(&self, upstream: usize, key: K) -> RepartitionSink<T, K>
    where
        T: serde::Serialize + Send + 'static,
        K: Fn(&T) -> u64 + Send + 'static,
    {
        RepartitionSink::new(self.clone(), upstream, key)
    }

    /// The source of partition `partition`: every record the upstream
    /// partitions routed to it, once, with their minimum watermark.
    pub fn source<T: serde::de::DeserializeOwned + Send + 'static>(&self, partition: usize) -> RepartitionSource<T> {
        RepartitionSource::new(self.clone(), partition)
    }
}
