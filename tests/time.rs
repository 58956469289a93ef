//! Watermarks across inputs: the minimum over active inputs; an idle input
//! does not hold the watermark back.

use std::time::{Duration, Instant};

use weir::prelude::*;
use weir::PushHandle;

fn wait_until(what: &str, timeout: Duration, mut cond: impl FnMut() -> bool) {
    let deadline = Instant::now() + timeout;
    while !cond() {
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        std::thread::sleep(Duration::from_millis(5));
    }
}

type Ev = (i64, u32);

type Running = (JobHandle, PushHandle<Ev>, PushHandle<Ev>, Collected<WindowResult<u32, u64>>);

/// Two push sources feeding one window manager (two inputs).
fn two_input_job(strategy: WatermarkStrategy) -> Running {
    let (a, ha) = push_source::<Ev>(1024);
    let (b, hb) = push_source::<Ev>(1024);
    let mut sources = [Some(a), Some(b)];
    let job = JobBuilder::new("two-inputs");
    let (sink, got) = CollectSink::new();
    job.parallel_source("pushed", 2, move |i| sources[i].take().expect("one source per instance"), |e: &Ev| e.0, strategy)
        .key_by(|e| e.1, 1)
        .window(Windows::tumbling(1000))
        .name("counts")
        .aggregate(Count)
        .sink("out", sink);
    (job.build().unwrap().spawn().unwrap(), ha, hb, got)
}

fn finish(handle: JobHandle) -> weir::JobReport {
    let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
    rt.block_on(async { tokio::time::timeout(Duration::from_secs(20), handle.wait()).await }).expect("job ends").unwrap()
}

#[test]
fn an_idle_source_does_not_stall_the_watermark() {
    let strategy = WatermarkStrategy::monotonic()
        .with_interval(Duration::from_millis(5))
        .with_idle_timeout(Duration::from_millis(100));
    let (handle, a, b, got) = two_input_job(strategy);
    for t in 0..20 {
        a.blocking_send((t * 100, 7)).unwrap();
    }
    // `b` says nothing and stays open: after its idle timeout it no longer
    // holds the watermark back, so window [0, 1000) fires.
    wait_until("the first window", Duration::from_secs(10), || !got.is_empty());
    let first = got.values()[0].clone();
    assert_eq!((first.key, first.window, first.value, first.timing), (7, Window::new(0, 1000), 10, Timing::OnTime));
    drop((a, b));
    finish(handle);
    let all: Vec<(i64, u64)> = got.values().iter().map(|r| (r.window.start, r.value)).collect();
    assert_eq!(all, vec![(0, 10), (1000, 10)]);
}

#[test]
fn a_multi_input_actor_takes_the_minimum_watermark() {
    let strategy = WatermarkStrategy::monotonic().with_interval(Duration::from_millis(5));
    let (handle, a, b, got) = two_input_job(strategy);
    for t in 0..20 {
        a.blocking_send((t * 100, 7)).unwrap();
    }
    b.blocking_send((0, 7)).unwrap();
    // Input a is at 1900, input b at 0: the window may not fire.
    std::thread::sleep(Duration::from_millis(300));
    assert!(got.is_empty(), "fired before the slower input passed the window end: {:?}", got.values());
    let m = handle.metrics();
    let wm = m.of_node("counts").next().map(|a| a.watermark);
    assert_eq!(wm, Some(0), "the window manager's watermark is the minimum: {m:?}");
    b.blocking_send((1500, 7)).unwrap();
    wait_until("the window after the slower input advanced", Duration::from_secs(10), || !got.is_empty());
    assert_eq!(got.values()[0].value, 11);
    drop((a, b));
    finish(handle);
}
