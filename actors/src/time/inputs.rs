//! Watermark and end-of-input tracking for an actor with several inputs.
//!
//! The actor's watermark is the minimum over its *active* inputs: an input
//! that declared itself idle does not hold it back until it speaks again, and
//! an input that ended no longer counts. When every input has ended the
//! watermark is `i64::MAX`. When every remaining input is idle, the
//! watermark advances to the highest watermark among them (each promised
//! it, and nobody is producing: Flink's valve does the same). The combined
//! watermark never goes backwards; a reactivated input whose watermark is
//! behind may deliver late records.
//!
//! Barriers: a barrier is complete once every input that has not ended
//! delivered it; until then [`InputTracker::is_blocked`] tells which inputs
//! must be held back (exactly-once alignment, see `checkpoint::align`).

use crate::message::{CheckpointId, StreamElement, Timestamp};

#[derive(Debug, Clone, Copy)]
struct Input {
    watermark: Timestamp,
    idle: bool,
    ended: bool,
    barrier: Option<CheckpointId>,
}

/// What an incoming control message means for the actor.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum InputEvent {
    /// Nothing to do downstream.
    None,
    /// The combined watermark advanced to this value.
    Watermark(Timestamp),
    /// Every active input is idle: tell downstream.
    Idle,
    /// Every input delivered this barrier.
    Barrier(CheckpointId),
    /// Every input has ended (after the final watermark).
    End,
}

/// Tracks the inputs of one actor instance.
#[derive(Debug, Clone)]
pub struct InputTracker {
    inputs: Vec<Input>,
    combined: Timestamp,
    idle_sent: bool,
}

impl InputTracker {
    /// A tracker for `n` inputs (indices `0..n`).
    pub fn new(n: usize) -> Self {
        let input = Input { watermark: i64::MIN, idle: false, ended: false, barrier: None };
        InputTracker { inputs: vec![input; n], combined: i64::MIN, idle_sent: false }
    }

    /// The combined watermark.
    pub fn watermark(&self) -> Timestamp {
        self.combined
    }

    /// Whether `input` has delivered the barrier of a checkpoint that is
    /// still aligning: what it sends now must be held back.
    pub fn is_blocked(&self, input: usize) -> bool {
        self.inputs.get(input).is_some_and(|i| i.barrier.is_some())
    }

    /// Whether every input has ended.
    pub fn all_ended(&self) -> bool {
        self.inputs.iter().all(|i| i.ended)
    }

    /// Data arrived on `input`: it is active again.
    pub fn on_data(&mut self, input: usize) {
        if let Some(i) = self.inputs.get_mut(input) {
            i.idle = false;
            self.idle_sent = false;
        }
    }

    /// Handles any non-data message on `input` (data: see [`Self::on_data`]).
    pub fn on_message<T>(&mut self, input: usize, msg: &StreamElement<T>) -> InputEvent {
        if input >= self.inputs.len() {
            tracing::error!(input, inputs = self.inputs.len(), "message on unknown input ignored");
            return InputEvent::None;
        }
        match msg {
            StreamElement::Data(_) | StreamElement::Shared(_) => {
                self.on_data(input);
                InputEvent::None
            }
            StreamElement::Watermark(wm) => {
                let i = &mut self.inputs[input];
                i.idle = false;
                self.idle_sent = false;
                if *wm > i.watermark {
                    i.watermark = *wm;
                }
                self.recompute()
            }
            StreamElement::Idle => {
                self.inputs[input].idle = true;
                match self.recompute() {
                    InputEvent::None if !self.idle_sent && self.active().next().is_none() => {
                        self.idle_sent = true;
                        InputEvent::Idle
                    }
                    other => other,
                }
            }
            StreamElement::Barrier(id) => {
                self.inputs[input].barrier = Some(*id);
                self.barrier_complete()
            }
            StreamElement::End => {
                let i = &mut self.inputs[input];
                i.ended = true;
                i.watermark = i64::MAX;
                if self.all_ended() {
                    // Forward the final watermark first if it was not seen.
                    if self.combined != i64::MAX {
                        self.combined = i64::MAX;
                    }
                    return InputEvent::End;
                }
                match self.barrier_complete() {
                    InputEvent::None => self.recompute(),
                    b => b,
                }
            }
        }
    }

    fn active(&self) -> impl Iterator<Item = &Input> {
        self.inputs.iter().filter(|i| !i.idle && !i.ended)
    }

    fn recompute(&mut self) -> InputEvent {
        let candidate = if self.inputs.iter().all(|i| i.ended) {
            i64::MAX
        } else {
            match self.active().map(|i| i.watermark).min() {
                Some(m) => m,
                // All idle: every input has promised its own watermark.
                None => self.inputs.iter().filter(|i| !i.ended).map(|i| i.watermark).max().unwrap_or(i64::MIN),
            }
        };
        if candidate > self.combined {
            self.combined = candidate;
            InputEvent::Watermark(candidate)
        } else {
            InputEvent::None
        }
    }

    fn barrier_complete(&mut self) -> InputEvent {
        let first = self.inputs.iter().find_map(|i| i.barrier);
        let Some(id) = first else { return InputEvent::None };
        if self.inputs.iter().all(|i| i.ended || i.barrier == Some(id)) {
            for i in &mut self.inputs {
                i.barrier = None;
            }
            InputEvent::Barrier(id)
        } else {
            InputEvent::None
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn wm(t: i64) -> StreamElement<()> {
        StreamElement::Watermark(t)
    }

    #[test]
    fn combined_watermark_is_minimum_over_inputs() {
        let mut t = InputTracker::new(2);
        assert_eq!(t.on_message(0, &wm(100)), InputEvent::None);
        assert_eq!(t.on_message(1, &wm(50)), InputEvent::Watermark(50));
        assert_eq!(t.on_message(1, &wm(150)), InputEvent::Watermark(100));
        assert_eq!(t.on_message(0, &wm(120)), InputEvent::Watermark(120));
    }

    #[test]
    fn idle_input_does_not_hold_back_the_watermark() {
        let mut t = InputTracker::new(2);
        assert_eq!(t.on_message(0, &wm(100)), InputEvent::None);
        assert_eq!(t.on_message(1, &StreamElement::<()>::Idle), InputEvent::Watermark(100));
        assert_eq!(t.on_message(0, &wm(200)), InputEvent::Watermark(200));
        // Input 1 comes back behind: the combined watermark does not regress.
        assert_eq!(t.on_message(1, &wm(150)), InputEvent::None);
        assert_eq!(t.watermark(), 200);
        assert_eq!(t.on_message(1, &wm(300)), InputEvent::None);
        assert_eq!(t.on_message(0, &wm(250)), InputEvent::Watermark(250));
    }

    #[test]
    fn all_idle_advances_to_the_highest_watermark() {
        let mut t = InputTracker::new(2);
        t.on_message(0, &wm(1900));
        assert_eq!(t.on_message(0, &StreamElement::<()>::Idle), InputEvent::None);
        assert_eq!(t.on_message(1, &StreamElement::<()>::Idle), InputEvent::Watermark(1900));
    }

    #[test]
    fn all_idle_holds_and_reports_idle_once() {
        let mut t = InputTracker::new(2);
        t.on_message(0, &wm(10));
        t.on_message(1, &wm(20));
        assert_eq!(t.on_message(0, &StreamElement::<()>::Idle), InputEvent::Watermark(20));
        assert_eq!(t.on_message(1, &StreamElement::<()>::Idle), InputEvent::Idle);
        assert_eq!(t.on_message(1, &StreamElement::<()>::Idle), InputEvent::None);
        assert_eq!(t.watermark(), 20);
    }

    #[test]
    fn end_on_every_input_ends() {
        let mut t = InputTracker::new(2);
        t.on_message(0, &wm(10));
        t.on_message(1, &wm(20));
        assert_eq!(t.on_message(0, &StreamElement::<()>::End), InputEvent::Watermark(20));
        assert_eq!(t.on_message(1, &wm(i64::MAX)), InputEvent::Watermark(i64::MAX));
        assert_eq!(t.on_message(1, &StreamElement::<()>::End), InputEvent::End);
        assert!(t.all_ended());
    }

    #[test]
    fn barrier_forwarded_when_every_open_input_delivered_it() {
        let id = CheckpointId { job: uuid::Uuid::nil(), seq: 1 };
        let mut t = InputTracker::new(3);
        assert_eq!(t.on_message(0, &StreamElement::<()>::Barrier(id)), InputEvent::None);
        assert_eq!(t.on_message(2, &StreamElement::<()>::End), InputEvent::None);
        assert_eq!(t.on_message(1, &StreamElement::<()>::Barrier(id)), InputEvent::Barrier(id));
    }
}
