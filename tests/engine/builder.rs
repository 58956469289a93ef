//! Topology validation: bad parameters are build errors naming them.

use weir::prelude::*;
use weir::BuildError;

fn source(job: &JobBuilder) -> Stream<i64> {
    job.source("src", IterSource::new(0..10i64), |n: &i64| *n, WatermarkStrategy::monotonic())
}

fn parameter(e: BuildError) -> &'static str {
    match e {
        BuildError::InvalidParameter { parameter, .. } => parameter,
        other => panic!("expected an invalid parameter, got {other}"),
    }
}

fn window_error(w: Windows) -> BuildError {
    let job = JobBuilder::new("t");
    source(&job).key_by(|n| *n, 1).window("windows", w).aggregate(Count).sink("out", CollectSink::new().0);
    job.build().expect_err("invalid window")
}

#[test]
fn zero_window_size_is_an_error() {
    let e = window_error(Windows::tumbling(0));
    assert!(e.to_string().contains("window size"), "{e}");
    assert_eq!(parameter(e), "window size");
}

#[test]
fn zero_or_oversized_slide_is_an_error() {
    assert_eq!(parameter(window_error(Windows::sliding(10, 0))), "window slide");
    assert_eq!(parameter(window_error(Windows::sliding(10, 11))), "window slide");
}

#[test]
fn zero_session_gap_and_count_are_errors() {
    assert_eq!(parameter(window_error(Windows::session(0))), "session gap");
    assert_eq!(parameter(window_error(Windows::count(0))), "count window size");
}

#[test]
fn zero_parallelism_is_an_error() {
    let job = JobBuilder::new("t");
    source(&job)
        .key_by(|n| *n, 0)
        .window("windows", Windows::tumbling(10))
        .aggregate(Count)
        .sink("out", CollectSink::new().0);
    let e = job.build().unwrap_err();
    assert!(e.to_string().contains("parallelism"), "{e}");
    let job = JobBuilder::new("t");
    job.parallel_source("gen", 0, |_| IterSource::new(0..1i64), |n: &i64| *n, WatermarkStrategy::monotonic())
        .sink("out", CollectSink::new().0);
    assert_eq!(parameter(job.build().unwrap_err()), "parallelism");
}

#[test]
fn zero_batch_size_is_an_error() {
    let job = JobBuilder::new("t").batch_size(0);
    source(&job).sink("out", CollectSink::new().0);
    assert_eq!(parameter(job.build().unwrap_err()), "batch size");
}

#[test]
fn negative_lateness_and_bound_are_errors() {
    let job = JobBuilder::new("t");
    source(&job)
        .key_by(|n| *n, 1)
        .window("windows", Windows::tumbling(10))
        .allowed_lateness(-1)
        .aggregate(Count)
        .sink("out", CollectSink::new().0);
    assert_eq!(parameter(job.build().unwrap_err()), "allowed lateness");
    let job = JobBuilder::new("t");
    job.source("src", IterSource::new(0..1i64), |n: &i64| *n, WatermarkStrategy::bounded_out_of_orderness(-5))
        .sink("out", CollectSink::new().0);
    assert_eq!(parameter(job.build().unwrap_err()), "watermark bound");
}

#[test]
fn early_firing_count_of_zero_or_beyond_32_bits_is_an_error() {
    for n in [0, u64::from(u32::MAX) + 1] {
        let job = JobBuilder::new("t");
        source(&job)
            .key_by(|n| *n, 1)
            .window("windows", Windows::session(10))
            .early_firing_count(n)
            .aggregate(Count)
            .sink("out", CollectSink::new().0);
        let e = job.build().expect_err("invalid early firing count");
        assert!(e.to_string().contains(&n.to_string()), "{e}");
        assert_eq!(parameter(e), "early firing count");
    }
}

#[test]
fn a_topology_without_sink_is_an_error() {
    let job = JobBuilder::new("t");
    let _ = source(&job).map(|n| n + 1);
    assert_eq!(job.build().unwrap_err(), BuildError::NoSink);
}

#[test]
fn an_unconnected_stream_is_an_error() {
    let job = JobBuilder::new("t");
    source(&job).sink("out", CollectSink::new().0);
    let _dangling = job.source("other", IterSource::new(0..1i64), |n: &i64| *n, WatermarkStrategy::monotonic());
    assert_eq!(job.build().unwrap_err(), BuildError::Unconnected("other".into()));
}

#[test]
fn duplicate_names_are_an_error() {
    let job = JobBuilder::new("t");
    source(&job).sink("src", CollectSink::new().0);
    assert_eq!(job.build().unwrap_err(), BuildError::DuplicateName("src".into()));
}

#[test]
fn a_node_name_with_a_hash_or_empty_is_an_error() {
    for name in ["a#b", ""] {
        let job = JobBuilder::new("names");
        let (sink, _) = CollectSink::new();
        job.source(name, IterSource::new(0..10i64), |n: &i64| *n, WatermarkStrategy::monotonic()).sink("out", sink);
        let err = job.build().expect_err("an invalid node name");
        assert!(err.to_string().contains("node name"), "{err}");
    }
}
