//! The runtime of a job: launching it ([`launch`]: restore, coordinator,
//! actors), its handle, the lifecycle its actors report to, and the
//! spawner that starts actor instances on threads.
//!
//! Layering: the actors (`shell`, `source`, `operator`, `window_manager`,
//! `sink`, `checkpoint`) know only [`lifecycle`]; the topology builder
//! knows the [`spawner`]; only [`launch`] knows the builder's graph; the
//! public facade (`job.rs`) calls [`launch`].

pub(crate) mod handle;
pub(crate) mod launch;
pub(crate) mod lifecycle;
#[cfg(test)]
mod restore_props;
pub(crate) mod spawner;

pub use handle::{CheckpointSummary, JobHandle, JobReport};
