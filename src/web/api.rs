//! The job API: `GET /api/jobs` lists the exposed jobs, `GET /api/jobs/{id}`
//! shows one job's graph, per-actor counters and rates, and checkpoints.
//! The documents are defined in [`super::view`]; an unknown id is a 404
//! with a JSON error.

use std::time::Instant;

use actix_web::{web, HttpResponse};

use super::error_json;
use super::state::{JobEntry, WebState};
use super::view::{self, JobDetail, JobSummary};

/// `GET /api/jobs`.
pub(crate) async fn list_jobs(state: web::Data<WebState>) -> HttpResponse {
    let mut out = Vec::new();
    for e in state.entries() {
        out.push(summary(&e).await);
    }
    HttpResponse::Ok().json(out)
}

/// `GET /api/jobs/{id}`.
pub(crate) async fn job_detail(state: web::Data<WebState>, id: web::Path<String>) -> HttpResponse {
    let id = id.into_inner();
    match state.entry(&id) {
        Some(e) => HttpResponse::Ok().json(detail(&e).await),
        None => HttpResponse::NotFound().json(error_json(format!("no job with id {id:?}"))),
    }
}

async fn summary(e: &JobEntry) -> JobSummary {
    let outcome = e.outcome().await;
    let error = outcome.as_ref().and_then(|o| o.as_ref().err());
    JobSummary {
        id: e.handle.id().to_string(),
        name: e.handle.name().to_string(),
        state: view::job_state(outcome.is_some(), error.map(String::as_str)),
        elapsed_ms: e.handle.elapsed().as_millis() as u64,
    }
}

pub(crate) async fn detail(e: &JobEntry) -> JobDetail {
    let outcome = e.outcome().await;
    let finished = outcome.is_some();
    let error = outcome.and_then(|o| o.err());
    let now = e.handle.metrics();
    let at = Instant::now();
    let reference = e.reference();
    let before = reference.as_ref().map(|s| (&s.metrics, at.saturating_duration_since(s.at)));
    JobDetail {
        id: e.handle.id().to_string(),
        name: e.handle.name().to_string(),
        state: view::job_state(finished, error.as_deref()),
        elapsed_ms: e.handle.elapsed().as_millis() as u64,
        error,
        graph: view::graph_view(e.handle.graph()),
        actors: view::actor_views(&now, before),
        checkpoints: view::checkpoint_views(&e.handle.checkpoints()),
        sampled_at_ms: view::unix_ms(),
    }
}

/// `GET /api/status`: `{"worker": <WorkerView>}` for a state that shows a
/// group worker, `{"worker": null}` otherwise.
pub(crate) async fn status(state: web::Data<WebState>) -> HttpResponse {
    #[cfg(feature = "nats")]
    let worker = state.worker_view();
    #[cfg(not(feature = "nats"))]
    let worker: Option<()> = {
        let _ = &state;
        None
    };
    HttpResponse::Ok().json(serde_json::json!({ "worker": worker }))
}
