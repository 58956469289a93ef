//! What the actors of a running job share with each other and with its
//! handle, below every actor: the [`lifecycle`] (completion latch, first
//! failure, metrics registry, checkpoint figures) and the [`start_gate`]
//! that holds sources until every actor of the job has been spawned.

pub(crate) mod lifecycle;
pub(crate) mod start_gate;
