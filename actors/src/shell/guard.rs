//! Faults end a job; they never hang it.
//!
//! Every weir actor runs its work through [`guarded`]: a panic in it (in a
//! user closure, an operator, a source, a sink or weir itself) is caught,
//! fails the job with [`JobError::Panicked`] naming the actor, what it was
//! doing and the panic message, and stops the actor. Every actor also owns
//! an [`ActorGuard`]: if the actor is dropped while its job still runs —
//! its Arbiter or the whole actix System was stopped under it, or a panic
//! escaped — the job fails instead of waiting forever for a sink that will
//! never finish.

use std::any::Any;
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::sync::Arc;

use crate::control::lifecycle::Lifecycle;
use crate::error::JobError;

/// The message of a panic payload.
pub(crate) fn panic_message(payload: &(dyn Any + Send)) -> String {
    if let Some(s) = payload.downcast_ref::<&str>() {
        (*s).to_string()
    } else if let Some(s) = payload.downcast_ref::<String>() {
        s.clone()
    } else {
        "a panic with a payload that is not a string".to_string()
    }
}

/// Runs `f`; if it panics, fails the job (naming `actor` and `during`) and
/// returns `None`.
pub(crate) fn guarded<R>(lifecycle: &Lifecycle, actor: &str, during: &str, f: impl FnOnce() -> R) -> Option<R> {
    match catch_unwind(AssertUnwindSafe(f)) {
        Ok(r) => Some(r),
        Err(payload) => {
            lifecycle.fail(JobError::Panicked {
                actor: actor.to_string(),
                during: during.to_string(),
                message: panic_message(payload.as_ref()),
            });
            None
        }
    }
}

/// Fails the job if its actor is dropped while the job runs.
#[derive(Debug)]
pub(crate) struct ActorGuard {
    actor: String,
    lifecycle: Arc<Lifecycle>,
}

impl ActorGuard {
    pub(crate) fn new(actor: String, lifecycle: Arc<Lifecycle>) -> Self {
        ActorGuard { actor, lifecycle }
    }

    pub(crate) fn lifecycle(&self) -> &Arc<Lifecycle> {
        &self.lifecycle
    }
}

impl Drop for ActorGuard {
    fn drop(&mut self) {
        if std::thread::panicking() {
            // A panic outside `guarded` (the default hook has printed it).
            self.lifecycle.fail(JobError::Panicked {
                actor: self.actor.clone(),
                during: "its lifecycle".to_string(),
                message: "see the panic message printed above".to_string(),
            });
        } else {
            self.lifecycle.actor_gone(&self.actor);
        }
    }
}
