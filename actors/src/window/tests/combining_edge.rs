//! The combining edge ([`Combine`]) against a brute-force model.
//!
//! Random out-of-order streams of records, cut into batches, with
//! watermarks in between (and sometimes `Idle`), go through a real
//! combining edge to `p` collecting actors. What each receiver gets is fed
//! to a window core, as a window manager would; the results of all of them
//! together must be the model's: every window holds exactly the records of
//! the raw stream that fall into it, and a record is late exactly when its
//! windows were all gone. On the way, the edge's own invariants are checked
//! on what it sent: every key goes to its partition, every record arrives
//! once (as itself or inside one partial), and no partial follows a
//! watermark that reached its interval on the receiver's edge.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use actix::{Actor, Context, Handler};
use proptest::prelude::*;
use tokio::sync::oneshot;

use crate::message::{Envelope, Record, StreamElement, Timestamp};
use crate::metrics::mailbox::MailboxGauge;
use crate::metrics::{ActorKind, ActorMetrics};
use crate::output::edge::{partition, Partitioned};
use crate::output::keys::key_maker;
use crate::output::{Control, Emit, Target};
use crate::window::core::WindowCore;
use crate::window::partial::combine::Combine;
use crate::window::partial::{combinable, Keyed, Partial};
use crate::window::{Count, Sum, Timing, WindowOptions, Windows};

/// A record: key and value (the timestamp travels beside it).
type Event = (u8, i64);

/// Counts and sums the values.
type Agg = (Count, Sum<fn(&Event) -> i64>);

fn agg() -> Agg {
    (Count, Sum::of((|e: &Event| e.1) as fn(&Event) -> i64))
}

/// What the edge sends: a key and a record or partial.
type Sent = Keyed<u8, Event, (u64, i64)>;

/// One input to the edge.
#[derive(Debug, Clone)]
enum Step {
    /// A batch of records `(ts, key, value)`.
    Batch(Vec<(i64, u8, i64)>),
    /// A watermark (not always advancing).
    Watermark(i64),
    /// The input went idle: the edge stops combining.
    Idle,
}

/// Streams that usually start with a watermark: an edge combines only
/// after it has forwarded one.
fn steps() -> impl Strategy<Value = Vec<Step>> {
    let record = (-40i64..120, 0u8..5, 1i64..1000);
    let step = prop_oneof![
        6 => prop::collection::vec(record, 1..24).prop_map(Step::Batch),
        3 => (-40i64..130).prop_map(Step::Watermark),
        1 => Just(Step::Idle),
    ];
    (prop::option::weighted(0.8, -60i64..40), prop::collection::vec(step, 0..30))
        .prop_map(|(first, rest)| first.map(Step::Watermark).into_iter().chain(rest).collect())
}

/// Receives envelopes and hands them all over at `End`.
struct Collector {
    queued: Arc<MailboxGauge>,
    got: Vec<StreamElement<Sent>>,
    done: Option<oneshot::Sender<Vec<StreamElement<Sent>>>>,
}

impl Actor for Collector {
    type Context = Context<Self>;
}

impl Handler<Envelope<Sent>> for Collector {
    type Result = ();
    fn handle(&mut self, env: Envelope<Sent>, _ctx: &mut Context<Self>) {
        self.queued.taken();
        let end = matches!(env.element, StreamElement::End);
        self.got.push(env.element);
        if end {
            if let Some(done) = self.done.take() {
                let _ = done.send(std::mem::take(&mut self.got));
            }
        }
    }
}

/// Runs `steps` through a combining edge to `p` collectors (batches of up
/// to `batch_size` per destination), then end of input; returns what each
/// collector received, in order.
fn through_the_edge(steps: &[Step], p: usize, len: i64, batch_size: usize) -> Vec<Vec<StreamElement<Sent>>> {
    let steps = steps.to_vec();
    actix::System::new().block_on(async move {
        let mut targets = Vec::new();
        let mut received = Vec::new();
        for _ in 0..p {
            let queued: Arc<MailboxGauge> = Arc::default();
            let (done, rx) = oneshot::channel();
            let gauge = Arc::clone(&queued);
            // Room for everything: blocking is the output module's concern.
            let addr = Collector::create(move |ctx| {
                ctx.set_mailbox_capacity(1 << 20);
                Collector { queued: gauge, got: Vec::new(), done: Some(done) }
            });
            targets.push(Target::new(addr.recipient(), &queued));
            received.push(rx);
        }
        let metrics = ActorMetrics::new("combine#0".into(), ActorKind::Operator, 16);
        let out = Partitioned::new(targets, 0, batch_size, metrics);
        let mut edge = Combine::new(out, key_maker(|e: &Event| e.0)(), agg(), len);
        for step in steps {
            match step {
                Step::Batch(records) => {
                    let mut batch: Vec<Record<Event>> =
                        records.into_iter().map(|(ts, key, value)| Record { ts, value: (key, value) }).collect();
                    edge.data(&mut batch);
                    assert!(batch.is_empty(), "the edge takes the whole batch");
                }
                Step::Watermark(t) => edge.control(Control::Watermark(t)),
                Step::Idle => edge.control(Control::Idle),
            }
            assert!(edge.take_blocked().is_none(), "the collectors' mailboxes have room");
        }
        edge.control(Control::Watermark(Timestamp::MAX));
        edge.control(Control::End);
        let mut all = Vec::new();
        for rx in received {
            let got = tokio::time::timeout(Duration::from_secs(10), rx).await;
            all.push(got.expect("every collector sees End within 10 s").expect("the collector hands over"));
        }
        all
    })
}

/// (key, window start, window end) → (count, sum).
type Results = BTreeMap<(u8, i64, i64), (u64, i64)>;

/// The brute-force model over the raw stream: the windows (`[s, s +
/// size)`, `s` a multiple of `slide`) of every record that has one with
/// `end + lateness` after the watermark, and the other records, late.
fn model(steps: &[Step], size: i64, slide: i64, lateness: i64) -> (Results, Vec<(u8, i64, i64)>) {
    let (mut wm, mut windows, mut late) = (i64::MIN, Results::new(), Vec::new());
    for step in steps {
        match step {
            Step::Batch(records) => {
                for &(ts, key, value) in records {
                    let first = ts.div_euclid(slide) * slide;
                    let kept: Vec<i64> =
                        (0..size / slide).map(|j| first - j * slide).filter(|&s| s + size + lateness > wm).collect();
                    if kept.is_empty() {
                        late.push((key, ts, value));
                    }
                    for s in kept {
                        let w = windows.entry((key, s, s + size)).or_default();
                        *w = (w.0 + 1, w.1 + value);
                    }
                }
            }
            Step::Watermark(t) => wm = wm.max(*t),
            Step::Idle => {}
        }
    }
    (windows, late)
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(128))]

    #[test]
    fn what_the_combining_edge_sends_folds_to_what_the_raw_records_give(
        slide in 1i64..15, panes_per_window in 1i64..4, lateness in 0i64..30,
        p in 1usize..4, batch_size in 1usize..16, steps in steps(),
    ) {
        let size = slide * panes_per_window;
        let windows = if size == slide { Windows::tumbling(size) } else { Windows::sliding(size, slide) };
        let options = WindowOptions { allowed_lateness: lateness, ..WindowOptions::default() };
        let len = combinable(windows, &options);
        prop_assume!(len.is_some(), "{:?} does not combine", windows);
        let len = len.expect("assumed");
        let received = through_the_edge(&steps, p, len, batch_size);

        let raw: usize = steps.iter().map(|s| match s { Step::Batch(r) => r.len(), _ => 0 }).sum();
        let (mut arrived, mut results, mut late) = (0usize, Results::new(), Vec::new());
        for (t, messages) in received.into_iter().enumerate() {
            // A window manager behind this one input.
            let mut core: WindowCore<u8, Event, Agg> = WindowCore::new(windows, options, agg());
            let (mut out, mut late_here, mut scratch) = (Vec::new(), Vec::new(), Vec::new());
            // The latest watermark this receiver got from the edge.
            let mut edge_wm = i64::MIN;
            for msg in messages {
                match msg {
                    StreamElement::Data(mut batch) => {
                        for r in &batch {
                            let (key, sent) = &r.value;
                            prop_assert_eq!(partition(key, p), t, "key {} went to the wrong receiver", key);
                            arrived += sent.records();
                            if let Partial::Combined { end, records, .. } = sent {
                                prop_assert!(*end > edge_wm, "a partial of the interval ending at {} after watermark {}", end, edge_wm);
                                prop_assert!(*records >= 1);
                                prop_assert_eq!(r.ts, end - 1, "a partial carries its interval's last instant");
                            }
                        }
                        let lost = core.add_partials(&mut batch, &mut scratch, &mut out, &mut late_here);
                        prop_assert_eq!(lost, 0, "nothing lost");
                    }
                    StreamElement::Watermark(w) => {
                        edge_wm = edge_wm.max(w);
                        core.on_watermark(w, &mut out);
                    }
                    StreamElement::Shared(_) => prop_assert!(false, "a keyed edge never shares a batch"),
                    StreamElement::Idle | StreamElement::Barrier(_) | StreamElement::End => {}
                }
            }
            prop_assert_eq!(core.open_windows(), 0, "end of input leaves no state");
            // A window's last firing (on time, or a later update) holds
            // everything it got.
            let mut on_time = std::collections::BTreeSet::new();
            for r in out.drain(..) {
                let w = r.value;
                if w.timing == Timing::OnTime {
                    prop_assert!(on_time.insert((w.key, w.window)), "{:?} fired on time twice", (w.key, w.window));
                }
                results.insert((w.key, w.window.start, w.window.end), w.value);
            }
            late.extend(late_here.drain(..).map(|r| (r.value.0, r.ts, r.value.1 .1)));
        }
        prop_assert_eq!(arrived, raw, "every record arrives once, as itself or in one partial");
        let (expected, mut expected_late) = model(&steps, size, slide, lateness);
        prop_assert_eq!(results, expected);
        late.sort_unstable();
        expected_late.sort_unstable();
        prop_assert_eq!(late, expected_late);
    }
}
