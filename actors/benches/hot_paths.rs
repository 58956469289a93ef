//! Criterion benches of the runtime's hot paths, per 1,024-record batch:
//!
//! - `window_add`: the window core adding a batch of the WORKLOAD.md stream
//!   and advancing the watermark after it (`max_ts - 2000`, firing what is
//!   due), for tumbling `(Count, Sum)` windows, pane-based sliding
//!   windows and session windows (gap 500 ms, WL3), at K = 16 and
//!   K = 100,000;
//! - `key_by`: the key-by edge partitioning a batch to p = 2 destinations
//!   (actors on their own Arbiters that drop what they get), and the
//!   partition hash alone;
//! - `mailbox`: one batch sent with `try_send` from an actor on one Arbiter
//!   to an actor on another and back, per round trip.
//!
//! Run: `cargo bench -p weir-actors --features bench-internals --bench hot_paths`
//! (add `-- --quick` for a fast look).

// `criterion_main!` generates an undocumented `main`.
#![allow(missing_docs)]

use std::sync::mpsc;
use std::time::{Duration, Instant};

use actix::{Actor, Context, Handler, Recipient};
use criterion::{criterion_group, criterion_main, BenchmarkId, Criterion, Throughput};
use weir_actors::bench_support::{partition, KeyByBench, WindowBench};
use weir_actors::{Count, Envelope, Record, StreamElement, Sum, Windows};
use weir_harness::workload::{self, Event, StreamParams};

/// Records per batch, as the runtime's default.
const BATCH: usize = 1024;

/// One event of the WORKLOAD.md stream.
type Ev = Event;

/// Event `i` of the WORKLOAD.md stream (R = 100,000, D = 2,000), from the
/// harness's generator.
#[inline]
fn event(i: u64, keys: u64) -> Ev {
    workload::event(i, &StreamParams { events: u64::MAX, keys, rate: 100_000, disorder: 2_000 })
}

/// Feeds the stream batch by batch into a window core, timing only the
/// core's work (add, then the watermark).
fn window_add(c: &mut Criterion) {
    let mut group = c.benchmark_group("window_add");
    group.throughput(Throughput::Elements(BATCH as u64));
    let kinds = [
        ("tumbling", Windows::tumbling(10_000)),
        ("sliding_panes", Windows::sliding(10_000, 2_000)),
        ("session_gap500", Windows::session(500)),
    ];
    for (kind, windows) in kinds {
        for keys in [16u64, 100_000] {
            group.bench_function(BenchmarkId::new(kind, format!("K={keys}")), |b| {
                let mut core = WindowBench::new(windows, (Count, Sum::of(|v: &i64| *v)));
                let mut batch: Vec<Record<(u64, i64)>> = Vec::with_capacity(BATCH);
                let mut next = 0u64;
                let mut max_ts = i64::MIN;
                // Warm up: reach the steady state of open windows.
                let mut step = |core: &mut WindowBench<_, _, _>, batch: &mut Vec<_>, timed: bool| -> Duration {
                    for i in next..next + BATCH as u64 {
                        let e = event(i, keys);
                        max_ts = max_ts.max(e.ts);
                        batch.push(Record { ts: e.ts, value: (e.key, e.value) });
                    }
                    next += BATCH as u64;
                    let start = Instant::now();
                    core.add_batch(batch);
                    core.on_watermark(max_ts - 2_000);
                    if timed {
                        start.elapsed()
                    } else {
                        Duration::ZERO
                    }
                };
                for _ in 0..2_000 {
                    step(&mut core, &mut batch, false);
                }
                b.iter_custom(|iters| (0..iters).map(|_| step(&mut core, &mut batch, true)).sum());
            });
        }
    }
    group.finish();
}

/// The key-by edge to two destinations, and its hash alone.
fn key_by(c: &mut Criterion) {
    let _system = actix::System::new();
    let mut group = c.benchmark_group("key_by");
    group.throughput(Throughput::Elements(BATCH as u64));
    let source: Vec<Record<Ev>> =
        (0..BATCH as u64).map(|i| event(i, 100_000)).map(|e| Record { ts: e.ts, value: e }).collect();
    group.bench_function("edge_p2", |b| {
        let mut edge = KeyByBench::new(2, |e: &Ev| e.key, BATCH, 16);
        let mut batch = Vec::with_capacity(BATCH);
        b.iter_custom(|iters| {
            let mut total = Duration::ZERO;
            for _ in 0..iters {
                batch.extend_from_slice(&source);
                let start = Instant::now();
                edge.data(&mut batch);
                total += start.elapsed();
            }
            total
        });
    });
    group.bench_function("hash_only_p2", |b| {
        b.iter(|| {
            let mut counts = [0usize; 2];
            for r in &source {
                counts[partition(&std::hint::black_box(r.value.key), 2)] += 1;
            }
            counts
        });
    });
    group.finish();
}

/// Starts `n` round trips; the pinger reports their total time.
#[derive(actix::Message)]
#[rtype(result = "()")]
struct Go {
    n: u64,
    peer: Recipient<Envelope<Ev>>,
    done: mpsc::Sender<Duration>,
}

/// A run of round trips: how many are left, since when, with whom, and
/// where to report.
struct Run {
    left: u64,
    start: Instant,
    peer: Recipient<Envelope<Ev>>,
    done: mpsc::Sender<Duration>,
}

/// Sends the batch to its peer and counts the batches coming back.
struct Pinger {
    batch: Option<Vec<Record<Ev>>>,
    run: Option<Run>,
}

impl Actor for Pinger {
    type Context = Context<Self>;
}

fn send(to: &Recipient<Envelope<Ev>>, batch: Vec<Record<Ev>>) {
    // One batch is in flight at a time: the mailbox always has room.
    if to.try_send(Envelope { input: 0, element: StreamElement::Data(batch) }).is_err() {
        panic!("the peer's mailbox refused the only batch in flight");
    }
}

impl Handler<Go> for Pinger {
    type Result = ();
    fn handle(&mut self, go: Go, _ctx: &mut Context<Self>) {
        let batch = self.batch.take().expect("the batch is home between runs");
        send(&go.peer, batch);
        self.run = Some(Run { left: go.n, start: Instant::now(), peer: go.peer, done: go.done });
    }
}

impl Handler<Envelope<Ev>> for Pinger {
    type Result = ();
    fn handle(&mut self, env: Envelope<Ev>, _ctx: &mut Context<Self>) {
        let StreamElement::Data(batch) = env.element else { return };
        let run = self.run.as_mut().expect("a run is going on");
        run.left -= 1;
        if run.left > 0 {
            send(&run.peer, batch);
        } else {
            let _ = run.done.send(run.start.elapsed());
            self.batch = Some(batch);
            self.run = None;
        }
    }
}

/// Sends every batch straight back.
struct Ponger {
    back: Recipient<Envelope<Ev>>,
}

impl Actor for Ponger {
    type Context = Context<Self>;
}

impl Handler<Envelope<Ev>> for Ponger {
    type Result = ();
    fn handle(&mut self, env: Envelope<Ev>, _ctx: &mut Context<Self>) {
        if let StreamElement::Data(batch) = env.element {
            send(&self.back, batch);
        }
    }
}

/// A batch from an actor on one Arbiter to one on another and back.
fn mailbox(c: &mut Criterion) {
    let _system = actix::System::new();
    let (a, b) = (actix::Arbiter::new(), actix::Arbiter::new());
    let batch: Vec<Record<Ev>> =
        (0..BATCH as u64).map(|i| event(i, 16)).map(|e| Record { ts: e.ts, value: e }).collect();
    let pinger = Pinger::start_in_arbiter(&a.handle(), move |ctx| {
        ctx.set_mailbox_capacity(16);
        Pinger { batch: Some(batch), run: None }
    });
    let back = pinger.clone().recipient();
    let ponger = Ponger::start_in_arbiter(&b.handle(), move |ctx| {
        ctx.set_mailbox_capacity(16);
        Ponger { back }
    });
    let mut group = c.benchmark_group("mailbox");
    group.throughput(Throughput::Elements(BATCH as u64));
    group.bench_function("round_trip_1024", |bench| {
        bench.iter_custom(|iters| {
            let (done, took) = mpsc::channel();
            let go = Go { n: iters.max(1), peer: ponger.clone().recipient(), done };
            if pinger.try_send(go).is_err() {
                panic!("the pinger's mailbox refused Go");
            }
            took.recv().expect("the pinger reports")
        });
    });
    group.finish();
    a.stop();
    b.stop();
}

criterion_group!(benches, window_add, key_by, mailbox);
criterion_main!(benches);
