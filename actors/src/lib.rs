//! # weir-actors: the weir runtime
//!
//! A weir job is a graph of actix actors — sources, operators, window
//! managers and sinks — exchanging typed, batched messages through bounded
//! mailboxes. A full mailbox is the backpressure signal: the sender keeps
//! its message and stops taking work until the receiver has room. Watermarks
//! (and checkpoint barriers) travel in-band with the data, so every actor
//! sees one ordered stream per input.
//!
//! Build a topology with [`JobBuilder`], run it with [`Job::run_blocking`]
//! (from `main`), [`Job::start`] (inside an actix System) or [`Job::spawn`]
//! (on a thread of its own), and watch it through its [`JobHandle`].
//!
//! Most users depend on the `weir` crate, which re-exports this one with
//! connectors and the command-line tool.

pub mod async_map;
#[doc(hidden)]
#[cfg(feature = "bench-internals")]
pub mod bench_support;
mod checkpoint;
mod control;
#[cfg(test)]
mod edits;
mod error;
mod job;
mod join;
mod message;
mod metrics;
mod operator;
mod output;
pub mod process;
mod runtime;
mod shell;
mod sink;
mod source;
mod spawn;
mod state;
mod time;
mod topology;
mod window;
mod window_manager;

pub use async_map::{AsyncError, AsyncFailure};
pub use checkpoint::{CheckpointConfig, CheckpointStats, Snapshot};
pub use error::{BuildError, JobError, OperatorError, SinkError, SnapshotError};
pub use job::Job;
pub use join::Either;
pub use message::{CheckpointId, Envelope, Record, SharedBatch, StreamElement, Timestamp, END_OF_TIME};
pub use metrics::{ActorKind, JobMetrics, MetricsSnapshot};
pub use operator::{Collector, Operator, OperatorContext, OperatorHarness};
pub use output::outlet::Outlet;
pub use process::{KeyedContext, KeyedProcess, KeyedProcessHarness, ListState, MapState, TimeDomain, ValueState};
pub use runtime::{CheckpointSummary, JobHandle, JobReport};
pub use shell::{Core, Cx, Outputs, Shell};
pub use sink::{CollectSink, Collected, ExactlyOnceFileSink, FileSink, FnSink, Sink, StdoutSink, TransactionalFile};
pub use source::{
    push_source, DeadLetter, FileFormat, FileSource, IterSource, PushHandle, PushSource, Source, SourceBatch,
    SourceStatus, Throttled, TrySendError,
};
pub use spawn::Placement;
pub use state::{
    BackendFactory, CheckpointInfo, CheckpointMeta, LocalDirBackend, RestoredCheckpoint, StateBackend, StateError,
};
pub use time::{InputEvent, InputTracker, WatermarkStrategy};
pub use topology::{
    ActorOperatorInfo, AsyncMap, EdgeOutput, GraphEdge, GraphNode, IntervalJoin, JobBuilder, JobGraph, KeyedConnected,
    KeyedStream, Stream, WindowJoin, WindowedStream,
};
pub use window::{
    Aggregate, Average, Collect, Count, Max, Min, Sum, Timing, Window, WindowOptions, WindowResult, Windows,
};

/// What a job author needs, in one `use weir_actors::prelude::*`.
pub mod prelude {
    pub use crate::{
        push_source, ActorKind, Aggregate, AsyncError, AsyncFailure, Average, Collect, CollectSink, Collected, Count,
        DeadLetter, Either, FileSink, FileSource, FnSink, IterSource, Job, JobBuilder, JobHandle, Max, Min, PushHandle,
        Record, Sink, StdoutSink, Stream, Sum, Throttled, Timestamp, Timing, TrySendError, WatermarkStrategy, Window,
        WindowResult, Windows, END_OF_TIME,
    };
}

/// For operator authors: the [`Operator`] trait and its test harness, the
/// actor-shell [`Core`] with its [`Cx`], [`Outlet`] and [`Outputs`], state
/// [`Snapshot`]s, the edge protocol and input tracking, and the [`Source`]
/// trait.
pub mod dev {
    pub use crate::{
        ActorOperatorInfo, Collector, Core, Cx, Envelope, InputEvent, InputTracker, Operator, OperatorContext,
        OperatorError, OperatorHarness, Outlet, Outputs, Snapshot, SnapshotError, Source, SourceBatch, SourceStatus,
        StreamElement, Timestamp,
    };
}

impl<K: Send + 'static, R: Send + 'static> actix::Message for WindowResult<K, R> {
    type Result = ();
}
