//! `GET /metrics`: every exposed job's counters in the Prometheus text
//! format.
//!
//! [`JobsCollector`] is a `prometheus` crate `Collector` over the jobs of a
//! [`super::WebState`]: at each scrape it reads `JobHandle::metrics()` and
//! `JobHandle::checkpoint_summary()` and renders them — nothing is updated
//! on the job's hot path, and a scrape costs one snapshot per job. The
//! checkpoint duration histogram is the one series kept between scrapes:
//! each completed checkpoint is observed into it once, by the scrape or the
//! state's sampler that first sees it ([`super::state::JobEntry`] keeps
//! how far it got), so a scrape costs nothing per past checkpoint. Per-actor
//! series carry the labels `job`, `job_id`, `actor`, `node` and `kind`;
//! per-job series `job` and `job_id`. `docs/operations.md` lists every
//! metric. The collector lives in the state's own registry
//! ([`super::WebState::registry`]), where an application may register its
//! own metrics too.

use ::prometheus::core::{Collector, Desc};
use ::prometheus::proto::MetricFamily;
use ::prometheus::{CounterVec, Encoder, GaugeVec, HistogramOpts, HistogramVec, Opts, TextEncoder};
use actix_web::{http::header, web, HttpResponse};

use crate::{ActorKind, JobMetrics, MetricsSnapshot};

use super::state::{Jobs, WebState};
use super::view::node_of;

/// Labels of per-actor series.
const ACTOR_LABELS: [&str; 5] = ["job", "job_id", "actor", "node", "kind"];
/// Labels of per-job series.
const JOB_LABELS: [&str; 2] = ["job", "job_id"];

/// Whether a series only grows (a counter) or goes up and down (a gauge).
#[derive(Debug, Clone, Copy)]
enum Type {
    Counter,
    Gauge,
}

/// A per-actor series: name, help, type, and how to read it (`None`: no
/// sample for this actor now).
type ActorSeries = (&'static str, &'static str, Type, fn(&JobMetrics, &MetricsSnapshot) -> Option<f64>);

const ACTOR_SERIES: &[ActorSeries] = &[
    ("weir_actor_records_in_total", "Records received (sources: read from their source).", Type::Counter, |_, a| {
        Some(a.records_in as f64)
    }),
    ("weir_actor_records_out_total", "Records sent downstream (sinks: delivered).", Type::Counter, |_, a| {
        Some(a.records_out as f64)
    }),
    ("weir_actor_batches_in_total", "Batches received.", Type::Counter, |_, a| Some(a.batches_in as f64)),
    ("weir_actor_batches_out_total", "Batches sent.", Type::Counter, |_, a| Some(a.batches_out as f64)),
    (
        "weir_actor_backpressured_seconds_total",
        "Time spent waiting on a full downstream mailbox, a wait in progress included.",
        Type::Counter,
        |_, a| Some(a.backpressured.as_secs_f64()),
    ),
    (
        "weir_source_alignment_wait_seconds_total",
        "Time a source instance stopped reading to let the other instances of its source catch up in event time (watermark alignment).",
        Type::Counter,
        |_, a| (a.kind == ActorKind::Source).then_some(a.alignment_wait.as_secs_f64()),
    ),
    ("weir_actor_blocked", "1 while waiting on a full downstream mailbox, else 0.", Type::Gauge, |_, a| {
        Some(if a.blocked { 1.0 } else { 0.0 })
    }),
    ("weir_actor_mailbox_length", "Messages queued in the actor's mailbox.", Type::Gauge, |_, a| {
        Some(a.mailbox_len as f64)
    }),
    ("weir_actor_mailbox_capacity", "Capacity of the actor's mailbox, in messages.", Type::Gauge, |_, a| {
        Some(a.mailbox_capacity as f64)
    }),
    ("weir_actor_mailbox_fill_ratio", "Mailbox length over capacity (0..1).", Type::Gauge, |_, a| {
        Some(if a.mailbox_capacity == 0 { 0.0 } else { a.mailbox_len as f64 / a.mailbox_capacity as f64 })
    }),
    (
        "weir_actor_watermark_milliseconds",
        "Event-time watermark, ms (absent before the first watermark and after the end of input).",
        Type::Gauge,
        |_, a| (a.watermark != i64::MIN && a.watermark != i64::MAX).then_some(a.watermark as f64),
    ),
    (
        "weir_actor_watermark_lag_milliseconds",
        "How far the watermark trails the newest event time read by the sources, ms (absent while unknown).",
        Type::Gauge,
        |job, a| job.watermark_lag(a).map(|l| l as f64),
    ),
    ("weir_actor_late_records_total", "Records routed to the late-data output.", Type::Counter, |_, a| {
        Some(a.late_records as f64)
    }),
    (
        "weir_actor_pre_aggregated_records_total",
        "Records that reached a window manager already folded into partial aggregates (pre-aggregation).",
        Type::Counter,
        |_, a| Some(a.pre_aggregated_in as f64),
    ),
    ("weir_actor_dead_letters_total", "Inputs routed to the dead-letter output.", Type::Counter, |_, a| {
        Some(a.dead_letters as f64)
    }),
    ("weir_actor_open_windows", "(key, window) states held.", Type::Gauge, |_, a| Some(a.open_windows as f64)),
];

/// Buckets of the checkpoint duration histogram, seconds.
const CHECKPOINT_BUCKETS: &[f64] = &[0.001, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0];

/// A family of series of one type.
#[derive(Clone)]
enum Family {
    Counter(CounterVec),
    Gauge(GaugeVec),
}

impl Family {
    fn new(name: &str, help: &str, t: Type, labels: &[&str]) -> Self {
        let opts = Opts::new(name, help);
        // Names and labels are the constants above, valid by construction.
        match t {
            Type::Counter => Family::Counter(CounterVec::new(opts, labels).expect("a valid counter name and labels")),
            Type::Gauge => Family::Gauge(GaugeVec::new(opts, labels).expect("a valid gauge name and labels")),
        }
    }

    fn set(&self, labels: &[&str], v: f64) {
        match self {
            Family::Counter(c) => c.with_label_values(labels).inc_by(v.max(0.0)),
            Family::Gauge(g) => g.with_label_values(labels).set(v),
        }
    }

    fn desc(&self) -> Vec<&Desc> {
        match self {
            Family::Counter(c) => c.desc(),
            Family::Gauge(g) => g.desc(),
        }
    }

    fn collect(&self) -> Vec<MetricFamily> {
        match self {
            Family::Counter(c) => c.collect(),
            Family::Gauge(g) => g.collect(),
        }
    }
}

/// Every family, empty: made afresh for each scrape and filled from the
/// jobs' snapshots.
#[derive(Clone)]
struct Families {
    actor: Vec<Family>,
    running: Family,
    elapsed: Family,
    completed: Family,
    aborted: Family,
    last_id: Family,
    last_duration: Family,
    last_alignment: Family,
    last_bytes: Family,
}

impl Families {
    fn new() -> Self {
        let job = |name, help, t| Family::new(name, help, t, &JOB_LABELS);
        Families {
            actor: ACTOR_SERIES.iter().map(|(name, help, t, _)| Family::new(name, help, *t, &ACTOR_LABELS)).collect(),
            running: job("weir_job_running", "1 while the job runs, 0 once it has finished or failed.", Type::Gauge),
            elapsed: job("weir_job_elapsed_seconds", "Wall time since the job started (until it ended).", Type::Gauge),
            completed: job("weir_checkpoints_completed_total", "Checkpoints completed.", Type::Counter),
            aborted: job("weir_checkpoints_aborted_total", "Checkpoints aborted.", Type::Counter),
            last_id: job(
                "weir_checkpoint_last_completed_id",
                "Sequence number of the last completed checkpoint.",
                Type::Gauge,
            ),
            last_duration: job(
                "weir_checkpoint_last_duration_seconds",
                "Trigger to metadata written, of the last completed checkpoint.",
                Type::Gauge,
            ),
            last_alignment: job(
                "weir_checkpoint_last_alignment_seconds",
                "Longest barrier alignment of the last completed checkpoint.",
                Type::Gauge,
            ),
            last_bytes: job(
                "weir_checkpoint_last_size_bytes",
                "Snapshot bytes written by the last completed checkpoint.",
                Type::Gauge,
            ),
        }
    }

    fn job_families(&self) -> [&Family; 8] {
        [
            &self.running,
            &self.elapsed,
            &self.completed,
            &self.aborted,
            &self.last_id,
            &self.last_duration,
            &self.last_alignment,
            &self.last_bytes,
        ]
    }
}

/// The histogram of completed checkpoint durations, per job, empty.
pub(crate) fn checkpoint_durations() -> HistogramVec {
    HistogramVec::new(
        HistogramOpts::new("weir_checkpoint_duration_seconds", "Durations of completed checkpoints.")
            .buckets(CHECKPOINT_BUCKETS.to_vec()),
        &JOB_LABELS,
    )
    .expect("a valid histogram name, buckets and labels")
}

/// A Prometheus collector over the jobs of a [`WebState`].
pub(crate) struct JobsCollector {
    jobs: Jobs,
    /// Never filled: only there to describe the families.
    template: Families,
    /// Kept between scrapes (shared with the state's sampler); each
    /// completed checkpoint is observed once.
    durations: HistogramVec,
}

impl JobsCollector {
    pub(crate) fn new(jobs: Jobs, durations: HistogramVec) -> Self {
        JobsCollector { jobs, template: Families::new(), durations }
    }
}

impl Collector for JobsCollector {
    fn desc(&self) -> Vec<&Desc> {
        let t = &self.template;
        let mut d: Vec<&Desc> = t.actor.iter().flat_map(Family::desc).collect();
        d.extend(t.job_families().into_iter().flat_map(Family::desc));
        d.extend(self.durations.desc());
        d
    }

    fn collect(&self) -> Vec<MetricFamily> {
        let f = Families::new();
        let jobs = self.jobs.read().map(|j| j.clone()).unwrap_or_default();
        let ids: Vec<String> = jobs.iter().map(|e| e.handle.id().to_string()).collect();
        for entry in jobs {
            let h = &entry.handle;
            let (name, id) = (h.name().to_string(), h.id().to_string());
            let metrics = h.metrics();
            for a in &metrics.actors {
                let kind = kind_label(a);
                let labels = [name.as_str(), id.as_str(), a.name.as_str(), node_of(&a.name), kind];
                for ((_, _, _, read), fam) in ACTOR_SERIES.iter().zip(&f.actor) {
                    if let Some(v) = read(&metrics, a) {
                        fam.set(&labels, v);
                    }
                }
            }
            let labels = [name.as_str(), id.as_str()];
            f.running.set(&labels, if h.is_finished() { 0.0 } else { 1.0 });
            f.elapsed.set(&labels, h.elapsed().as_secs_f64());
            let summary = entry.catch_up_checkpoints(&self.durations);
            f.completed.set(&labels, summary.completed as f64);
            f.aborted.set(&labels, summary.aborted as f64);
            if let Some(last) = summary.recent.iter().rev().find(|c| c.completed) {
                f.last_id.set(&labels, last.seq as f64);
                f.last_duration.set(&labels, last.duration.as_secs_f64());
                f.last_alignment.set(&labels, last.alignment.as_secs_f64());
                f.last_bytes.set(&labels, last.bytes as f64);
            }
        }
        let mut out: Vec<MetricFamily> = f.actor.iter().flat_map(Family::collect).collect();
        out.extend(f.job_families().into_iter().flat_map(Family::collect));
        let mut durations = self.durations.collect();
        // A job removed while this scrape read it may have left its series
        // behind: show the jobs exposed now only.
        for family in &mut durations {
            family
                .mut_metric()
                .retain(|m| m.get_label().iter().any(|l| l.name() == "job_id" && ids.iter().any(|id| id == l.value())));
        }
        out.extend(durations);
        out
    }
}

/// The `kind` label: the actor's role in lower case.
fn kind_label(a: &MetricsSnapshot) -> &'static str {
    match a.kind {
        crate::ActorKind::Source => "source",
        crate::ActorKind::Operator => "operator",
        crate::ActorKind::Window => "window",
        crate::ActorKind::Sink => "sink",
    }
}

/// Renders a registry in the Prometheus text format.
pub(crate) fn render(registry: &prometheus::Registry) -> Result<String, prometheus::Error> {
    let mut buf = Vec::new();
    TextEncoder::new().encode(&registry.gather(), &mut buf)?;
    Ok(String::from_utf8_lossy(&buf).into_owned())
}

/// `GET /metrics`.
pub(crate) async fn metrics(state: web::Data<WebState>) -> HttpResponse {
    match render(state.registry()) {
        Ok(text) => HttpResponse::Ok().insert_header((header::CONTENT_TYPE, prometheus::TEXT_FORMAT)).body(text),
        Err(e) => {
            tracing::error!(error = %e, "cannot render /metrics");
            HttpResponse::InternalServerError().body(format!("cannot render the metrics: {e}\n"))
        }
    }
}
