//! Barrier alignment for an actor with several inputs.
//!
//! When an input delivers the barrier of checkpoint `n`, everything that
//! arrives on that input afterwards belongs to checkpoint `n + 1`: it is held
//! back (buffered here, in arrival order) until every other open input has
//! delivered the barrier too. Then the actor snapshots its state — which now
//! reflects exactly the records before the barrier on every input — and the
//! held messages are replayed before anything newer.
//!
//! actix gives an actor one mailbox for all its inputs, so "holding back an
//! input" means buffering what it sends. The buffer is bounded: once it
//! holds `cap` records, every input that sends more while it is held back
//! is *paused* at its senders (`MailboxGauge::pause`): they keep their
//! messages as if the mailbox were full, which backpressures them in turn,
//! until the alignment completes and every input resumes. Memory held by an
//! alignment is therefore at most `cap` records plus what was already in
//! the mailbox (its capacity plus one message per sender), however long
//! the slowest input takes to deliver its barrier.

use std::collections::VecDeque;
use std::time::{Duration, Instant};

use crate::message::{Envelope, StreamElement};
use crate::metrics::mailbox::MailboxGauge;
use crate::time::InputTracker;

/// Records held by one alignment before its inputs are paused, unless the
/// job sets another cap (`CheckpointConfig::alignment_cap`).
pub(crate) const DEFAULT_ALIGNMENT_CAP: usize = 1 << 16;

/// Messages held back during an alignment.
#[derive(Debug)]
pub(crate) struct Alignment<T> {
    held: VecDeque<Envelope<T>>,
    /// Records in `held`.
    held_records: usize,
    /// Records held before inputs are paused.
    cap: usize,
    started: Option<Instant>,
}

impl<T> Alignment<T> {
    /// An alignment that pauses inputs once it holds `cap` records.
    pub(crate) fn new(cap: usize) -> Self {
        Alignment { held: VecDeque::new(), held_records: 0, cap: cap.max(1), started: None }
    }

    /// Holds `env` back if its input already delivered the pending barrier
    /// (returns `None`), pausing that input at its senders once the cap is
    /// reached; otherwise hands it back to be handled now, noting when the
    /// first barrier of an alignment arrives.
    pub(crate) fn admit(
        &mut self,
        inputs: &InputTracker,
        gauge: &MailboxGauge,
        env: Envelope<T>,
    ) -> Option<Envelope<T>> {
        if inputs.is_blocked(env.input) {
            self.held_records += env.records();
            if self.held_records >= self.cap {
                gauge.pause(env.input);
            }
            self.held.push_back(env);
            return None;
        }
        if matches!(env.element, StreamElement::Barrier(_)) {
            self.started.get_or_insert_with(Instant::now);
        }
        Some(env)
    }

    /// Records held back now.
    #[cfg(test)]
    pub(crate) fn held_records(&self) -> usize {
        self.held_records
    }

    /// The alignment is complete: every paused input resumes; returns the
    /// alignment's duration and the held messages, to be handled (in
    /// order) before anything newer.
    pub(crate) fn complete(&mut self, gauge: &MailboxGauge) -> (Duration, VecDeque<Envelope<T>>) {
        gauge.resume_all();
        self.held_records = 0;
        let d = self.started.take().map(|s| s.elapsed()).unwrap_or_default();
        (d, std::mem::take(&mut self.held))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::message::{CheckpointId, Record};

    fn data(input: usize, n: usize) -> Envelope<u32> {
        Envelope { input, element: StreamElement::Data((0..n).map(|i| Record::new(i as i64, i as u32)).collect()) }
    }

    #[test]
    fn an_input_past_its_barrier_is_held_and_paused_at_the_cap() {
        let gauge = MailboxGauge::default();
        let mut inputs = InputTracker::new(2);
        let mut align = Alignment::new(100);
        let id = CheckpointId { job: uuid::Uuid::nil(), seq: 1 };
        let barrier = Envelope { input: 0, element: StreamElement::<u32>::Barrier(id) };
        let barrier = align.admit(&inputs, &gauge, barrier).expect("a barrier is handled");
        inputs.on_message(barrier.input, &barrier.element);
        assert!(align.admit(&inputs, &gauge, data(0, 60)).is_none());
        assert!(!gauge.is_paused(0), "below the cap");
        assert!(align.admit(&inputs, &gauge, data(0, 60)).is_none());
        assert!(gauge.is_paused(0), "at the cap the input is paused");
        assert!(!gauge.is_paused(1));
        assert!(align.admit(&inputs, &gauge, data(1, 10)).is_some(), "the other input flows");
        assert_eq!(align.held_records(), 120);
        let (_, held) = align.complete(&gauge);
        assert_eq!(held.len(), 2);
        assert!(!gauge.is_paused(0), "resumed");
        assert_eq!(align.held_records(), 0);
    }
}
