//! # weir-harness: the reference workloads and `weir bench`
//!
//! What is used to check and measure weir, kept apart from the library a
//! service depends on (this crate is not published):
//!
//! - [`workload`]: the deterministic event stream of WORKLOAD.md, the WL1–WL3
//!   jobs built with weir's public builder, and the order-independent
//!   result checksum, so that results compare with other engines to the
//!   last bit;
//! - [`bench`](mod@bench): the hand-written single-threaded baselines of the same
//!   workloads and the driver of `weir bench` (each measurement in a child
//!   process, a table of ratios and peak RSS).
//!
//! The `weir` command line (the `cli` feature of the `weir` crate) runs
//! both; the integration tests, examples and criterion benches use the
//! generator from here, so it is defined once.

pub mod bench;
pub mod workload;
