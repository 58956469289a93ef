//! The runtime of a job: launching it ([`launch`]: open the checkpoint,
//! restore in two phases, start the checkpoint [`coordinator`] and the
//! actors through [`crate::spawn`]) and its [`handle`].
//!
//! Layering, from the bottom: `message`, `time`, `error`, `state`; then
//! `metrics`, `output`, `checkpoint` (snapshots, barrier alignment);
//! `control` (the lifecycle and start gate the actors report to); `shell`;
//! the actors (`source`, `operator`, `window_manager`, `sink`); `spawn`;
//! the builder (`topology`); this module; the public facade (`job.rs`).
//! Each module imports only modules below it.

pub(crate) mod coordinator;
pub(crate) mod handle;
pub(crate) mod launch;
#[cfg(test)]
mod restore_props;

pub use handle::{CheckpointSummary, JobHandle, JobReport};
