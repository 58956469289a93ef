//! # weir — event-time stream processing inside your Rust service
//!
//! weir runs a job as a graph of actix actors — sources, operators, window
//! managers and sinks — that exchange batches of records through bounded
//! mailboxes. A full mailbox slows the sender down; nothing is dropped.
//! Watermarks travel with the data and close event-time windows (tumbling,
//! sliding, session, count); late records go to their own output.
//!
//! ```
//! use weir::prelude::*;
//!
//! #[derive(Clone, Debug)]
//! struct Car { colour: String, ts: i64 }
//!
//! let cars = vec![
//!     Car { colour: "red".into(), ts: 1_000 }, Car { colour: "blue".into(), ts: 2_000 },
//!     Car { colour: "red".into(), ts: 61_000 }, Car { colour: "red".into(), ts: 3_000 },
//! ];
//! let job = JobBuilder::new("cars");
//! let (sink, counts) = CollectSink::new();
//! job.source("cars", IterSource::new(cars), |c: &Car| c.ts,
//!            WatermarkStrategy::bounded_out_of_orderness(5_000))
//!     .key_by(|c| c.colour.clone(), 2)
//!     .window("windows", Windows::tumbling(60_000))
//!     .aggregate(Count)
//!     .sink("counts", sink);
//! job.build()?.run_blocking()?;
//! let mut got: Vec<_> = counts.values().into_iter()
//!     .map(|r| (r.key, r.window.start, r.value)).collect();
//! got.sort();
//! let got: Vec<_> = got.iter().map(|(colour, start, n)| (colour.as_str(), *start, *n)).collect();
//! assert_eq!(got, vec![("blue", 0, 1), ("red", 0, 2), ("red", 60_000, 1)]);
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```
//!
//! This crate re-exports the runtime, [`weir_actors`], and adds weir inside
//! an actix-web service (`weir::web`: HTTP ingest, result queries, a job
//! API and dashboard, Prometheus metrics; cargo feature `web`, on by
//! default). The `weir` command line (cargo feature `cli`) runs the
//! reference workloads, which live in the unpublished `weir-harness` crate
//! beside it.

pub use weir_actors::*;

#[cfg(feature = "nats")]
pub mod nats;

#[cfg(feature = "web")]
pub mod web;

/// What a job author needs, in one `use weir::prelude::*`.
pub mod prelude {
    pub use weir_actors::prelude::*;
}

/// For operator authors: the [`Operator`] trait and its test harness, the
/// actor-shell [`Core`] with its [`Cx`], [`Outlet`] and [`Outputs`], state
/// [`Snapshot`]s, the edge protocol and input tracking, and the [`Source`]
/// trait.
pub mod dev {
    pub use weir_actors::dev::*;
}
