//! Barrier alignment for an actor with several inputs.
//!
//! When an input delivers the barrier of checkpoint `n`, everything that
//! arrives on that input afterwards belongs to checkpoint `n + 1`: it is held
//! back (buffered here, in arrival order) until every other open input has
//! delivered the barrier too. Then the actor snapshots its state — which now
//! reflects exactly the records before the barrier on every input — and the
//! held messages are replayed before anything newer. (actix gives an actor
//! one mailbox for all inputs, so "holding back an input" means buffering
//! what it sends; the buffer is bounded by how far the inputs are apart.)

use std::collections::VecDeque;
use std::time::{Duration, Instant};

use crate::message::{Envelope, Message};
use crate::time::InputTracker;

/// Messages held back during an alignment.
#[derive(Debug)]
pub(crate) struct Alignment<T> {
    held: VecDeque<Envelope<T>>,
    started: Option<Instant>,
}

impl<T> Default for Alignment<T> {
    fn default() -> Self {
        Alignment { held: VecDeque::new(), started: None }
    }
}

impl<T> Alignment<T> {
    /// Holds `env` back if its input already delivered the pending barrier
    /// (returns `None`); otherwise hands it back to be handled now, noting
    /// when the first barrier of an alignment arrives.
    pub(crate) fn admit(&mut self, inputs: &InputTracker, env: Envelope<T>) -> Option<Envelope<T>> {
        if inputs.is_blocked(env.input) {
            self.held.push_back(env);
            return None;
        }
        if matches!(env.msg, Message::Barrier(_)) {
            self.started.get_or_insert_with(Instant::now);
        }
        Some(env)
    }

    /// The alignment is complete: returns its duration and the held
    /// messages, to be handled (in order) before anything newer.
    pub(crate) fn complete(&mut self) -> (Duration, VecDeque<Envelope<T>>) {
        let d = self.started.take().map(|s| s.elapsed()).unwrap_or_default();
        (d, std::mem::take(&mut self.held))
    }
}
