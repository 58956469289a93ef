//! The calls of a `map_async` stage against a model: what leaves, in which
//! order, where watermarks leave, what becomes a dead letter, the bound on
//! calls in flight, and a restore from a snapshot taken with calls in
//! flight.

use std::future::Future;
use std::pin::Pin;
use std::task::{self, Poll};
use std::time::Duration;

use proptest::prelude::*;

use super::core::{Calls, Item, Leave, Order};
use super::AsyncError;
use crate::message::Record;

/// A call that completes after being polled `left` more times (waking
/// itself each time, as a future waiting on I/O would be woken), with
/// `value * 10` — or an error when `value` is negative.
struct Delay {
    left: u32,
    value: i64,
}

impl Future for Delay {
    type Output = Result<i64, String>;

    fn poll(mut self: Pin<&mut Self>, task: &mut task::Context<'_>) -> Poll<Self::Output> {
        if self.left == 0 {
            let v = self.value;
            return Poll::Ready(if v < 0 { Err(format!("no entry for {v}")) } else { Ok(v * 10) });
        }
        self.left -= 1;
        task.waker().wake_by_ref();
        Poll::Pending
    }
}

/// Inputs are `(delay, value)`; the call of input `(d, v)` takes `d` polls.
type In = (u32, i64);
type TestCalls = Calls<In, i64, fn(In) -> Delay, Delay>;

fn calls(order: Order, capacity: usize) -> TestCalls {
    let f: fn(In) -> Delay = |(left, value)| Delay { left, value };
    Calls::new(f, order, capacity, Duration::from_secs(60))
}

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_current_thread().enable_time().build().expect("a tokio runtime")
}

/// What left, in order.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Event {
    /// A result: (timestamp, value).
    Result(i64, i64),
    /// A dead letter: (timestamp, error).
    Failed(i64, AsyncError),
    Watermark(i64),
    Idle,
}

#[derive(Debug, Default)]
struct Events(Vec<Event>);

impl Leave<In, i64> for Events {
    fn result(&mut self, r: Record<i64>) {
        self.0.push(Event::Result(r.ts, r.value));
    }
    fn failed(&mut self, r: Record<(In, AsyncError)>) {
        self.0.push(Event::Failed(r.ts, r.value.1));
    }
    fn watermark(&mut self, wm: i64) {
        self.0.push(Event::Watermark(wm));
    }
    fn idle(&mut self) {
        self.0.push(Event::Idle);
    }
}

/// The input of a test: records and watermarks, in arrival order.
#[derive(Debug, Clone)]
enum Input {
    Batch(Vec<Record<In>>),
    Watermark(i64),
}

/// Feeds `inputs` as the shell does (a batch or watermark is taken only
/// once nothing waits), polling between; then polls until idle. Checks
/// the bound after every step.
fn drive(c: &mut TestCalls, inputs: Vec<Input>, capacity: usize, out: &mut Events) {
    let mut inputs = inputs.into_iter().peekable();
    runtime().block_on(std::future::poll_fn(|task| loop {
        if c.waiting() == 0 {
            match inputs.next() {
                Some(Input::Batch(mut b)) => c.offer(&mut b),
                Some(Input::Watermark(wm)) => c.watermark(wm, out),
                None => {}
            }
        }
        let progress = c.poll(task, out);
        assert!(c.in_flight() <= capacity, "{} calls in flight, capacity {capacity}", c.in_flight());
        if inputs.peek().is_none() && c.is_idle() {
            return Poll::Ready(());
        }
        // Nothing completed: wait for a wake-up, unless there is input to
        // feed.
        if progress.is_pending() && (c.waiting() > 0 || inputs.peek().is_none()) {
            return Poll::Pending;
        }
    }));
}

fn batch(first_ts: i64, inputs: &[In]) -> Input {
    Input::Batch(inputs.iter().enumerate().map(|(i, &v)| Record { ts: first_ts + i as i64, value: v }).collect())
}

#[test]
fn ordered_results_leave_in_input_order_whatever_order_calls_complete_in() {
    let mut c = calls(Order::Ordered, 4);
    let mut out = Events::default();
    drive(&mut c, vec![batch(0, &[(9, 1), (0, 2), (5, 3), (1, 4), (0, 5)])], 4, &mut out);
    let want: Vec<Event> = (0..5).map(|i| Event::Result(i, (i + 1) * 10)).collect();
    assert_eq!(out.0, want);
}

#[test]
fn unordered_results_leave_as_calls_complete() {
    let mut c = calls(Order::Unordered, 4);
    let mut out = Events::default();
    drive(&mut c, vec![batch(0, &[(50, 1), (0, 2), (0, 3)])], 4, &mut out);
    assert_eq!(out.0.len(), 3);
    assert_eq!(out.0.last(), Some(&Event::Result(0, 10)), "the slow call completes last: {:?}", out.0);
}

#[test]
fn a_watermark_leaves_after_the_calls_before_it_and_before_the_results_after_it() {
    for order in [Order::Ordered, Order::Unordered] {
        let mut c = calls(order, 8);
        let mut out = Events::default();
        // The call before the watermark is slow; the one after it is fast.
        drive(&mut c, vec![batch(0, &[(40, 1)]), Input::Watermark(1), batch(1, &[(0, 2)])], 8, &mut out);
        assert_eq!(out.0, vec![Event::Result(0, 10), Event::Watermark(1), Event::Result(1, 20)], "{order:?}");
    }
}

#[test]
fn an_idleness_notice_waits_for_the_calls_before_it() {
    let mut c = calls(Order::Unordered, 8);
    let mut out = Events::default();
    runtime().block_on(async {
        let Input::Batch(mut b) = batch(0, &[(20, 1)]) else { unreachable!() };
        c.offer(&mut b);
        c.idle(&mut out);
        assert!(out.0.is_empty(), "held while the call before it runs");
        std::future::poll_fn(|task| {
            let _ = c.poll(task, &mut out);
            if c.is_idle() {
                Poll::Ready(())
            } else {
                Poll::Pending
            }
        })
        .await;
    });
    assert_eq!(out.0, vec![Event::Result(0, 10), Event::Idle]);
}

#[test]
fn a_watermark_with_nothing_in_flight_leaves_at_once() {
    let mut c = calls(Order::Ordered, 2);
    let mut out = Events::default();
    c.watermark(5, &mut out);
    assert_eq!(out.0, vec![Event::Watermark(5)]);
    assert!(c.is_idle());
}

#[test]
fn a_failed_call_makes_its_record_a_dead_letter_with_the_error() {
    let mut c = calls(Order::Ordered, 2);
    let mut out = Events::default();
    drive(&mut c, vec![batch(0, &[(0, 1), (2, -7), (0, 3)])], 2, &mut out);
    let want = vec![
        Event::Result(0, 10),
        Event::Failed(1, AsyncError::Failed("no entry for -7".into())),
        Event::Result(2, 30),
    ];
    assert_eq!(out.0, want);
}

#[test]
fn a_call_that_does_not_complete_in_time_is_a_dead_letter_that_says_so() {
    let f = |v: i64| async move {
        if v == 2 {
            std::future::pending::<()>().await;
        }
        Ok::<_, String>(v)
    };
    let mut c = Calls::new(f, Order::Ordered, 8, Duration::from_millis(20));
    let mut out: Vec<String> = Vec::new();
    struct Shown<'a>(&'a mut Vec<String>);
    impl Leave<i64, i64> for Shown<'_> {
        fn result(&mut self, r: Record<i64>) {
            self.0.push(format!("{}", r.value));
        }
        fn failed(&mut self, r: Record<(i64, AsyncError)>) {
            self.0.push(format!("{} {}", r.value.0, r.value.1));
        }
        fn watermark(&mut self, wm: i64) {
            self.0.push(format!("wm {wm}"));
        }
        fn idle(&mut self) {
            self.0.push("idle".into());
        }
    }
    runtime().block_on(async {
        c.offer(&mut vec![Record { ts: 0, value: 1 }, Record { ts: 1, value: 2 }, Record { ts: 2, value: 3 }]);
        std::future::poll_fn(|task| {
            let _ = c.poll(task, &mut Shown(&mut out));
            if c.is_idle() {
                Poll::Ready(())
            } else {
                Poll::Pending
            }
        })
        .await;
    });
    assert_eq!(out, vec!["1", "2 timed out after 20 ms", "3"], "ordered: 3 waited for 2's timeout");
}

#[test]
fn beyond_the_capacity_records_wait_in_order_and_start_as_calls_complete() {
    let mut c = calls(Order::Ordered, 2);
    let mut out = Events::default();
    runtime().block_on(async {
        let Input::Batch(mut b) = batch(0, &[(3, 1), (3, 2), (0, 3), (0, 4)]) else { unreachable!() };
        c.offer(&mut b);
        assert_eq!((c.in_flight(), c.waiting()), (2, 2));
        // Taken whole even when it waits: a batch is never handed back.
        let Input::Batch(mut b) = batch(4, &[(0, 5)]) else { unreachable!() };
        c.offer(&mut b);
        c.watermark(5, &mut out);
        assert_eq!(c.waiting(), 4, "the watermark waits behind them");
        std::future::poll_fn(|task| {
            let _ = c.poll(task, &mut out);
            assert!(c.in_flight() <= 2);
            if c.is_idle() {
                Poll::Ready(())
            } else {
                Poll::Pending
            }
        })
        .await;
    });
    let mut want: Vec<Event> = (0..5).map(|i| Event::Result(i, (i + 1) * 10)).collect();
    want.push(Event::Watermark(5));
    assert_eq!(out.0, want);
}

/// The inputs of a proptest case: batches of `(delay, value)` with a
/// watermark after some, timestamps in arrival order.
fn inputs(spec: &[(Vec<In>, bool)]) -> Vec<Input> {
    let mut ts = 0;
    let mut inputs = Vec::new();
    for (records, then_watermark) in spec {
        inputs.push(batch(ts, records));
        ts += records.len() as i64;
        if *then_watermark {
            inputs.push(Input::Watermark(ts));
        }
    }
    inputs
}

/// Checks `events` against the model of `inputs`: every record leaves
/// once (a result, or a dead letter when its value is negative); every
/// watermark leaves once, after every record before it and before every
/// record after it; in order mode records leave in input order.
fn check(inputs: &[Input], events: &[Event], ordered: bool) -> Result<(), TestCaseError> {
    // Arrival position of each record and watermark (records by ts).
    let (mut records, mut marks) = (Vec::new(), Vec::new());
    for input in inputs {
        match input {
            Input::Batch(b) => records.extend(b.iter().map(|r| (r.ts, r.value.1))),
            Input::Watermark(wm) => marks.push((*wm, records.len())),
        }
    }
    let mut left_ts = Vec::new();
    let mut marks_left = Vec::new();
    for e in events {
        match e {
            Event::Result(ts, v) => {
                let (_, value) = records[*ts as usize];
                prop_assert_eq!(*v, value * 10);
                left_ts.push(*ts);
            }
            Event::Failed(ts, AsyncError::Failed(why)) => {
                let (_, value) = records[*ts as usize];
                prop_assert!(value < 0);
                prop_assert_eq!(why, &format!("no entry for {value}"));
                left_ts.push(*ts);
            }
            Event::Failed(ts, e) => prop_assert!(false, "record {} failed with {:?}", ts, e),
            Event::Idle => prop_assert!(false, "no idleness was given"),
            Event::Watermark(wm) => {
                // Every record before it left, none after it.
                let before = marks.iter().find(|m| m.0 == *wm).map(|m| m.1).expect("a watermark that was given");
                let mut seen: Vec<i64> = left_ts.clone();
                seen.sort_unstable();
                prop_assert_eq!(seen, (0..before as i64).collect::<Vec<_>>(), "at watermark {}", wm);
                marks_left.push(*wm);
            }
        }
    }
    if ordered {
        prop_assert_eq!(&left_ts, &(0..records.len() as i64).collect::<Vec<_>>());
    }
    left_ts.sort_unstable();
    prop_assert_eq!(left_ts, (0..records.len() as i64).collect::<Vec<_>>(), "every record once");
    prop_assert_eq!(marks_left, marks.iter().map(|m| m.0).collect::<Vec<_>>(), "every watermark once, in order");
    Ok(())
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 256, .. ProptestConfig::default() })]

    /// Every record leaves once, watermarks keep their place, and a
    /// snapshot taken part-way — calls in flight, results and watermarks
    /// held — restored into fresh calls leaves exactly what had not left.
    #[test]
    fn every_record_and_watermark_leaves_once_in_place_through_a_restore(
        spec in prop::collection::vec((prop::collection::vec((0u32..6, -3i64..40), 1..8), any::<bool>()), 0..12),
        capacity in 1usize..6,
        ordered in any::<bool>(),
        cut in 0usize..12,
    ) {
        let order = if ordered { Order::Ordered } else { Order::Unordered };
        let all = inputs(&spec);
        let cut = cut.min(all.len());

        // Before the snapshot: inputs fed as the shell would, each followed
        // by one round of polling, so calls are left part-way.
        let mut c = calls(order, capacity);
        let mut out = Events::default();
        let mut pending = all[..cut].iter().cloned().peekable();
        runtime().block_on(std::future::poll_fn(|task| {
            while pending.peek().is_some() {
                if c.waiting() == 0 {
                    match pending.next().expect("peeked") {
                        Input::Batch(mut b) => c.offer(&mut b),
                        Input::Watermark(wm) => c.watermark(wm, &mut out),
                    }
                }
                let _ = c.poll(task, &mut out);
                assert!(c.in_flight() <= capacity);
            }
            Poll::Ready(())
        }));
        let unfinished: Vec<Item<In>> = c.unfinished();

        // The restored calls go through first, then the rest of the input.
        let mut r = calls(order, capacity);
        r.restore(unfinished);
        drive(&mut r, all[cut..].to_vec(), capacity, &mut out);
        check(&all, &out.0, ordered)?;
    }
}
