//! Watermark alignment: the parallel instances of one source do not read
//! further ahead of each other in event time than a set drift.
//!
//! Every instance of a source feeds every downstream instance (through
//! `key_by`), whose watermark is the minimum over its inputs. An instance
//! that reads ahead of the others — it got more CPU, its share is thinner —
//! therefore fires nothing sooner; its records only pile up as open windows
//! and sessions until the slowest instance catches up. Nothing in
//! backpressure stops that: the window managers take the fast instance's
//! records as readily as the slow one's, so the state grows with the drift
//! (docs/performance.md has what WL3 did without alignment).
//!
//! With [`crate::WatermarkStrategy::with_alignment`] each instance
//! publishes the watermark its records so far allow (after every batch,
//! whatever the emission interval) and, before reading a batch, compares it
//! with the lowest of the *other* instances: more than `max_drift` ahead,
//! it stops reading until the others have caught up to within half the
//! drift (the hysteresis keeps it from waking for every batch of theirs).
//! The slowest instance never waits, so the group always progresses. An
//! instance that is idle or finished does not hold the others back. This
//! is Flink's watermark alignment (FLIP-182), within one job.

use std::sync::atomic::{AtomicI64, Ordering::Relaxed};

use tokio::sync::futures::Notified;
use tokio::sync::Notify;

use crate::message::Timestamp;

/// The instances of one source node, as far as alignment is concerned.
#[derive(Debug)]
pub(crate) struct AlignmentGroup {
    max_drift: i64,
    /// Per instance: the watermark its records allow, `i64::MIN` before its
    /// first record, `i64::MAX` while idle or once finished.
    marks: Vec<AtomicI64>,
    advanced: Notify,
}

impl AlignmentGroup {
    /// A group of `instances` instances allowed `max_drift` ms apart.
    pub(crate) fn new(instances: usize, max_drift: i64) -> Self {
        AlignmentGroup {
            max_drift,
            marks: (0..instances).map(|_| AtomicI64::new(i64::MIN)).collect(),
            advanced: Notify::new(),
        }
    }

    /// Instance `i` is now at `mark`. Wakes waiting instances when it moved
    /// forward (once per batch at most: never per record).
    pub(crate) fn publish(&self, i: usize, mark: Timestamp) {
        let before = self.marks[i].swap(mark, Relaxed);
        if mark > before {
            self.advanced.notify_waiters();
        }
    }

    /// The lowest mark among the instances other than `i` (`i64::MAX` when
    /// there is none, or all are idle or finished).
    fn slowest_other(&self, i: usize) -> Timestamp {
        self.marks.iter().enumerate().filter(|&(j, _)| j != i).map(|(_, m)| m.load(Relaxed)).min().unwrap_or(i64::MAX)
    }

    /// Whether instance `i`, at `own`, may read on. `waiting` says whether
    /// it is already waiting: then it resumes only within half the drift.
    pub(crate) fn may_read(&self, i: usize, own: Timestamp, waiting: bool) -> bool {
        if own == i64::MIN {
            return true;
        }
        let allowed = if waiting { self.max_drift / 2 } else { self.max_drift };
        own <= self.slowest_other(i).saturating_add(allowed)
    }

    /// Completes at the next [`Self::publish`] that moved an instance
    /// forward. Create it before checking [`Self::may_read`] again, then
    /// await it: a publish in between still wakes it.
    pub(crate) fn advanced(&self) -> Notified<'_> {
        self.advanced.notified()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_instance_ahead_by_more_than_the_drift_waits_until_the_others_are_within_half_of_it() {
        let g = AlignmentGroup::new(3, 1_000);
        g.publish(0, 5_000);
        g.publish(1, 4_200);
        g.publish(2, 3_900);
        assert!(g.may_read(0, 4_900, false), "1000 ahead of the slowest other is allowed");
        assert!(!g.may_read(0, 5_000, false));
        // Once waiting, it resumes only within drift / 2 of the slowest.
        g.publish(2, 4_400);
        assert!(!g.may_read(0, 5_000, true));
        g.publish(2, 4_600);
        assert!(!g.may_read(0, 5_000, true), "instance 1 at 4200 is now the slowest");
        g.publish(1, 4_500);
        assert!(g.may_read(0, 5_000, true));
    }

    #[test]
    fn the_slowest_instance_never_waits_and_idle_or_finished_instances_hold_nobody_back() {
        let g = AlignmentGroup::new(2, 100);
        g.publish(0, 10_000);
        g.publish(1, 0);
        assert!(g.may_read(1, 0, false));
        assert!(!g.may_read(0, 10_000, false));
        g.publish(1, i64::MAX);
        assert!(g.may_read(0, 10_000, false));
        // Before its first record an instance is at MIN: it may read, and
        // it holds the others at their first batch until it has read one.
        let g = AlignmentGroup::new(2, 100);
        assert!(g.may_read(0, i64::MIN, false));
        g.publish(0, 5_000);
        assert!(!g.may_read(0, 5_000, false));
        assert_eq!(AlignmentGroup::new(1, 100).slowest_other(0), i64::MAX);
    }

    #[test]
    fn a_waiter_created_before_a_publish_is_woken_by_it() {
        let g = AlignmentGroup::new(2, 100);
        let mut notified = Box::pin(g.advanced());
        notified.as_mut().enable();
        g.publish(1, 50);
        let waker = futures_util::task::noop_waker();
        use std::future::Future;
        let mut cx = std::task::Context::from_waker(&waker);
        assert!(notified.as_mut().poll(&mut cx).is_ready());
    }
}
