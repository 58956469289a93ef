//! The engine's integration tests, through the public API, in one test
//! binary (one link and one copy of the generic actor code instead of one
//! per file): each module is one subject.

#[path = "../support/mod.rs"]
mod support;

mod async_map;
mod backpressure;
mod builder;
mod checkpoints;
mod docs_links;
mod fan_out;
mod fault_injection;
mod faults;
mod joins;
mod operators;
mod pipeline;
mod pre_aggregation;
mod process;
mod send_sync;
mod sources;
mod time;
mod web;
mod windows;
mod workloads;
