//! NATS JetStream connectors: a replayable source that reads a stream's
//! partitions, and an exactly-once sink that publishes an epoch's rows
//! only once its checkpoint has completed, both usable in a single-process
//! job, and a state backend ([`JetStreamBackend`]) that keeps checkpoints
//! in JetStream; docs/scale-out.md says how they fit the worker groups to
//! come.
//!
//! A partitioned stream `S` has `P` partition subjects `S.0` … `S.{P-1}`,
//! fixed for its life and recorded in the stream's metadata
//! (`weir.partitions`). A message carries records in one of two
//! [`Format`]s: one JSON record, or a frame of many rmp-serde records. A
//! partition ends with an end marker: a message with the header
//! [`END_HEADER`] and no records.
//!
//! The client lives on a thread of its own ([`Nats`]): async-nats ties a
//! connection to the runtime that made it, and that runtime must never be
//! blocked, so no actor's thread can host it. Sources and sinks hand their
//! work to that thread and wait on channels.
//!
//! ```no_run
//! use weir::nats::{Format, JetStreamSink, JetStreamSource, Nats};
//! use weir::prelude::*;
//! # #[derive(Clone, serde::Serialize, serde::Deserialize)] struct Click { ts: i64, page: u32 }
//! let nats = Nats::connect("nats://127.0.0.1:4222")?;
//! let partitions = nats.partitions("clicks")?;
//! let job = JobBuilder::new("pages")
//!     .checkpointing(weir::CheckpointConfig::new("ckpt", std::time::Duration::from_secs(1)));
//! let from = nats.clone();
//! let clicks = job.parallel_source(
//!     "clicks",
//!     partitions,
//!     move |p| JetStreamSource::<Click>::partition(&from, "clicks", p, Format::Frames),
//!     |c: &Click| c.ts,
//!     WatermarkStrategy::bounded_out_of_orderness(2_000),
//! );
//! clicks
//!     .key_by(|c: &Click| c.page, 1)
//!     .window("per-minute", Windows::tumbling(60_000))
//!     .aggregate(Count)
//!     .map(|r| (r.window.start, r.key, r.value))
//!     .sink("out", JetStreamSink::new(&nats, "page-counts", "pages")?);
//! job.build()?.run_blocking()?;
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```

mod client;
mod group;
mod repartition;
mod sink;
mod source;
mod state;
mod status;
mod worker;

pub use client::{Nats, NatsError};
pub use group::{balanced, Assignment, Claim, Group, Ownership};
pub use repartition::{Repartition, RepartitionSink, RepartitionSource, FROM_HEADER, INDEX_HEADER, WATERMARK_HEADER};
pub use sink::JetStreamSink;
pub use source::JetStreamSource;
pub use state::JetStreamBackend;
pub use status::{PartitionView, WorkerStatus, WorkerView};
pub use worker::{run_worker, MakeJob, PartitionBackend, WorkerConfig, WorkerReport};

/// The header that marks a partition's end (value `true`): the source
/// ends its partition there, after every record before it.
pub const END_HEADER: &str = "Weir-End";
/// The header naming the checkpoint epoch of a message a
/// [`JetStreamSink`] published (`u64::MAX`: published at the end of
/// input, after the last checkpoint).
pub const EPOCH_HEADER: &str = "Weir-Epoch";
/// The stream metadata key holding the number of partitions.
pub const PARTITIONS_KEY: &str = "weir.partitions";
/// The stream metadata key naming what a partitioned stream is
/// partitioned by (`weir nats publish` writes `key` or `event`; a
/// [`Repartition`] stream `repartition`).
pub const PARTITIONED_BY_KEY: &str = "weir.partitioned-by";

/// How records are laid out in messages.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    /// One record per message, as JSON: what any producer can write.
    Json,
    /// Many records per message: an rmp-serde (MessagePack) array of
    /// records. About a hundred times faster than one JSON message per
    /// record (docs/performance.md).
    Frames,
}

/// The subject of partition `p` of stream `stream`.
pub fn partition_subject(stream: &str, p: usize) -> String {
    format!("{stream}.{p}")
}

/// The partition of `key` among `partitions` (a 64-bit mix of the key,
/// modulo the count): what `weir nats publish` partitions by.
pub fn partition_of(key: u64, partitions: usize) -> usize {
    let mut z = key.wrapping_add(0x9e37_79b9_7f4a_7c15);
    z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    z ^= z >> 31;
    (z % partitions.max(1) as u64) as usize
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn partitions_are_in_range_and_spread() {
        let mut seen = [0u32; 8];
        for k in 0..8_000u64 {
            seen[partition_of(k, 8)] += 1;
        }
        assert!(seen.iter().all(|&n| (800..1200).contains(&n)), "{seen:?}");
        assert_eq!(partition_of(42, 1), 0);
        assert_eq!(partition_subject("in", 3), "in.3");
    }
}
