//! The JSON documents of the job API (`GET /api/jobs`, `GET /api/jobs/{id}`),
//! computed from a job's handle and two snapshots of its counters.
//!
//! This is the contract with the dashboard (`src/web/assets/app.js`) and
//! with anyone scripting against the API; `docs/web.md` lists every field.
//! Rates and the backpressure ratio compare the counters now with a
//! snapshot about a second old ([`super::state::RATE_WINDOW`]); with no
//! older snapshot, or none older than a millisecond, they are 0.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use serde::Serialize;

use crate::{ActorKind, CheckpointStats, EdgeOutput, JobGraph, JobMetrics, MetricsSnapshot};

/// At most this many checkpoints are listed (the most recent).
pub(crate) const MAX_CHECKPOINTS: usize = 100;

/// A job's lifecycle state as the API names it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum JobState {
    /// Still running.
    Running,
    /// Every sink finished.
    Finished,
    /// The job ended with an error: an actor's hook failed or panicked (an
    /// operator, a window manager, a source, a sink), the job was cancelled
    /// or its actors were stopped under it.
    Failed,
}

/// One entry of `GET /api/jobs`.
#[derive(Debug, Clone, Serialize)]
pub struct JobSummary {
    /// The job's UUID.
    pub id: String,
    /// The job's name.
    pub name: String,
    /// Running, finished or failed.
    pub state: JobState,
    /// Wall time since the job started (until it ended, once it has).
    pub elapsed_ms: u64,
}

/// `GET /api/jobs/{id}`.
#[derive(Debug, Clone, Serialize)]
pub struct JobDetail {
    /// The job's UUID.
    pub id: String,
    /// The job's name.
    pub name: String,
    /// Running, finished or failed.
    pub state: JobState,
    /// Wall time since the job started (until it ended, once it has).
    pub elapsed_ms: u64,
    /// Why the job failed (`null` unless `state` is `failed`).
    pub error: Option<String>,
    /// Nodes and edges.
    pub graph: GraphView,
    /// One entry per actor instance, sorted by actor name.
    pub actors: Vec<ActorView>,
    /// The most recent checkpoints (the job keeps its newest 64), oldest
    /// first.
    pub checkpoints: Vec<CheckpointView>,
    /// When the counters were read, Unix time in ms.
    pub sampled_at_ms: u64,
}

/// The job graph.
#[derive(Debug, Clone, Serialize)]
pub struct GraphView {
    /// Nodes in the order they were added to the builder.
    pub nodes: Vec<NodeView>,
    /// Edges between nodes.
    pub edges: Vec<EdgeView>,
}

/// A node: `parallelism` actors named `<name>#0` ...
#[derive(Debug, Clone, Serialize)]
pub struct NodeView {
    /// The node's name.
    pub name: String,
    /// `Source`, `Operator`, `Window` or `Sink`.
    pub kind: ActorKind,
    /// Number of actor instances.
    pub parallelism: usize,
}

/// An edge between two nodes.
#[derive(Debug, Clone, Serialize)]
pub struct EdgeView {
    /// Upstream node.
    pub from: String,
    /// Downstream node.
    pub to: String,
    /// `main`, or `side` for late data and dead letters.
    pub output: EdgeOutput,
}

/// One actor's counters and the rates derived from them.
#[derive(Debug, Clone, Serialize)]
pub struct ActorView {
    /// `<node>#<instance>`.
    pub name: String,
    /// The node it is an instance of.
    pub node: String,
    /// Its role.
    pub kind: ActorKind,
    /// Records received (sources: read from their source).
    pub records_in: u64,
    /// Records sent on (sinks: delivered).
    pub records_out: u64,
    /// Batches received.
    pub batches_in: u64,
    /// Batches sent.
    pub batches_out: u64,
    /// Records received per second over the last second.
    pub rate_in: f64,
    /// Records sent per second over the last second.
    pub rate_out: f64,
    /// Messages queued in its mailbox.
    pub mailbox_len: usize,
    /// Its mailbox capacity, in messages.
    pub mailbox_capacity: usize,
    /// `mailbox_len / mailbox_capacity`, 0..1 (0 for a capacity of 0).
    pub mailbox_fill: f64,
    /// Share (0..1) of the last second spent waiting on a full downstream
    /// mailbox, a wait in progress included.
    pub backpressure_ratio: f64,
    /// Total time spent waiting on a full downstream mailbox.
    pub backpressured_ms: u64,
    /// Waiting on a full downstream mailbox right now.
    pub blocked: bool,
    /// Total time a source instance waited for the other instances of its
    /// source to catch up in event time (watermark alignment).
    pub alignment_wait_ms: u64,
    /// Event-time watermark, ms: `null` before the first; `i64::MAX`
    /// (9223372036854775807) once the actor has seen the end of its input.
    pub watermark: Option<i64>,
    /// How far the watermark trails the newest event time the sources read
    /// (`JobMetrics::watermark_lag`); `null` while either is unknown.
    pub watermark_lag_ms: Option<i64>,
    /// Records routed to the late-data output.
    pub late_records: u64,
    /// Of the records in, those that arrived folded into partial aggregates.
    pub pre_aggregated_in: u64,
    /// Inputs routed to the dead-letter output.
    pub dead_letters: u64,
    /// (key, window) states held.
    pub open_windows: u64,
}

/// One checkpoint.
#[derive(Debug, Clone, Serialize)]
pub struct CheckpointView {
    /// Its sequence number.
    pub seq: u64,
    /// Trigger to metadata written, ms.
    pub duration_ms: f64,
    /// The longest barrier alignment among the actors, ms.
    pub alignment_ms: f64,
    /// Snapshot bytes written.
    pub bytes: u64,
    /// Completed (`false`: aborted).
    pub completed: bool,
}

/// The node an actor instance belongs to: its name up to `#`.
pub(crate) fn node_of(actor: &str) -> &str {
    actor.split('#').next().unwrap_or(actor)
}

/// Milliseconds of a duration, as a float.
pub(crate) fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1_000.0
}

/// Unix time now, ms.
pub(crate) fn unix_ms() -> u64 {
    SystemTime::now().duration_since(UNIX_EPOCH).map(|d| d.as_millis() as u64).unwrap_or(0)
}

/// The state string of a job: running until finished; then failed if its
/// outcome is an error.
pub(crate) fn job_state(finished: bool, error: Option<&str>) -> JobState {
    match (finished, error) {
        (false, _) => JobState::Running,
        (true, None) => JobState::Finished,
        (true, Some(_)) => JobState::Failed,
    }
}

/// The graph as the API shows it.
pub(crate) fn graph_view(g: &JobGraph) -> GraphView {
    GraphView {
        nodes: g
            .nodes
            .iter()
            .map(|n| NodeView { name: n.name.clone(), kind: n.kind, parallelism: n.parallelism })
            .collect(),
        edges: g.edges.iter().map(|e| EdgeView { from: e.from.clone(), to: e.to.clone(), output: e.output }).collect(),
    }
}

/// The checkpoints as the API shows them: the last [`MAX_CHECKPOINTS`].
pub(crate) fn checkpoint_views(stats: &[CheckpointStats]) -> Vec<CheckpointView> {
    let skip = stats.len().saturating_sub(MAX_CHECKPOINTS);
    stats[skip..]
        .iter()
        .map(|c| CheckpointView {
            seq: c.seq,
            duration_ms: ms(c.duration),
            alignment_ms: ms(c.alignment),
            bytes: c.bytes,
            completed: c.completed,
        })
        .collect()
}

/// Every actor's view: counters from `now`, rates against `before`, taken
/// `dt` earlier (`None`: no earlier snapshot, rates 0).
pub(crate) fn actor_views(now: &JobMetrics, before: Option<(&JobMetrics, Duration)>) -> Vec<ActorView> {
    now.actors
        .iter()
        .map(|a| {
            let prev = before.and_then(|(m, dt)| m.actors.iter().find(|p| p.name == a.name).map(|p| (p, dt)));
            actor_view(now, a, prev)
        })
        .collect()
}

fn actor_view(job: &JobMetrics, a: &MetricsSnapshot, prev: Option<(&MetricsSnapshot, Duration)>) -> ActorView {
    let (rate_in, rate_out, backpressure_ratio) = match prev {
        Some((p, dt)) if dt >= Duration::from_millis(1) => {
            let secs = dt.as_secs_f64();
            let blocked = a.backpressured.saturating_sub(p.backpressured).as_secs_f64();
            (
                a.records_in.saturating_sub(p.records_in) as f64 / secs,
                a.records_out.saturating_sub(p.records_out) as f64 / secs,
                (blocked / secs).clamp(0.0, 1.0),
            )
        }
        _ => (0.0, 0.0, 0.0),
    };
    let mailbox_fill =
        if a.mailbox_capacity == 0 { 0.0 } else { (a.mailbox_len as f64 / a.mailbox_capacity as f64).clamp(0.0, 1.0) };
    ActorView {
        name: a.name.clone(),
        node: node_of(&a.name).to_string(),
        kind: a.kind,
        records_in: a.records_in,
        records_out: a.records_out,
        batches_in: a.batches_in,
        batches_out: a.batches_out,
        rate_in,
        rate_out,
        mailbox_len: a.mailbox_len,
        mailbox_capacity: a.mailbox_capacity,
        mailbox_fill,
        backpressure_ratio,
        backpressured_ms: a.backpressured.as_millis() as u64,
        blocked: a.blocked,
        alignment_wait_ms: a.alignment_wait.as_millis() as u64,
        watermark: (a.watermark != i64::MIN).then_some(a.watermark),
        watermark_lag_ms: job.watermark_lag(a),
        late_records: a.late_records,
        pre_aggregated_in: a.pre_aggregated_in,
        dead_letters: a.dead_letters,
        open_windows: a.open_windows,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn snap(name: &str, records: u64, blocked_ms: u64, watermark: i64) -> MetricsSnapshot {
        MetricsSnapshot {
            name: name.into(),
            kind: ActorKind::Window,
            records_in: records,
            records_out: records / 2,
            batches_in: 1,
            batches_out: 1,
            backpressured: Duration::from_millis(blocked_ms),
            blocked: false,
            alignment_wait: Duration::ZERO,
            watermark,
            max_event_time: i64::MIN,
            late_records: 0,
            pre_aggregated_in: 0,
            dead_letters: 0,
            open_windows: 3,
            mailbox_len: 4,
            mailbox_capacity: 16,
        }
    }

    #[test]
    fn rates_and_backpressure_ratio_come_from_the_difference_over_the_interval() {
        let before = JobMetrics { actors: vec![snap("w#0", 1_000, 100, 5)] };
        let now = JobMetrics { actors: vec![snap("w#0", 3_000, 350, 7)] };
        let v = actor_views(&now, Some((&before, Duration::from_millis(500))));
        assert_eq!(v.len(), 1);
        assert_eq!(v[0].node, "w");
        assert_eq!(v[0].rate_in, 4_000.0);
        assert_eq!(v[0].rate_out, 2_000.0);
        assert_eq!(v[0].backpressure_ratio, 0.5);
        assert_eq!(v[0].mailbox_fill, 0.25);
        assert_eq!(v[0].backpressured_ms, 350);
        assert_eq!(v[0].watermark, Some(7));
    }

    #[test]
    fn without_an_earlier_snapshot_rates_are_zero_and_an_unset_watermark_is_null() {
        let now = JobMetrics { actors: vec![snap("w#0", 3_000, 350, i64::MIN)] };
        let v = actor_views(&now, None);
        assert_eq!((v[0].rate_in, v[0].rate_out, v[0].backpressure_ratio), (0.0, 0.0, 0.0));
        assert_eq!(v[0].watermark, None);
        assert_eq!(v[0].watermark_lag_ms, None);
    }

    #[test]
    fn only_the_last_hundred_checkpoints_are_listed() {
        let stats: Vec<CheckpointStats> = (0..150)
            .map(|seq| CheckpointStats {
                seq,
                duration: Duration::from_micros(1_500),
                alignment: Duration::ZERO,
                bytes: 10,
                completed: true,
            })
            .collect();
        let v = checkpoint_views(&stats);
        assert_eq!(v.len(), MAX_CHECKPOINTS);
        assert_eq!(v[0].seq, 50);
        assert_eq!(v[0].duration_ms, 1.5);
    }

    #[test]
    fn state_is_failed_only_for_a_finished_job_with_an_error() {
        assert_eq!(job_state(false, Some("x")), JobState::Running);
        assert_eq!(job_state(true, None), JobState::Finished);
        assert_eq!(job_state(true, Some("x")), JobState::Failed);
    }
}
