//! weir inside an actix-web service: HTTP ingest, result queries, a job
//! API with a live dashboard, and Prometheus metrics (cargo feature `web`,
//! on by default).
//!
//! Everything here is built on weir's public API and runs in the
//! application's own actix System: start the job with `Job::start` inside
//! `#[actix_web::main]`, register its handle in a [`WebState`] and mount
//! [`configure`] in the `App`:
//!
//! | route | what | from |
//! |---|---|---|
//! | `GET /` , `GET /assets/{file}` | the dashboard (embedded) | [`configure`] |
//! | `GET /api/jobs`, `GET /api/jobs/{id}` | jobs, graph, per-actor counters and rates, checkpoints | [`configure`] |
//! | `GET /api/status` | the group worker shown, if any (`{"worker": ...}`) | [`configure`], [`WebState::add_worker`] |
//! | `GET /metrics` | Prometheus text format | [`configure`] |
//! | `POST /ingest` (any path) | JSON records into a push source | [`Ingest::resource`] |
//! | `GET /api/results`, `GET /api/results/top?n=` (any path) | latest window per key | [`LatestWindows::scope`] |
//!
//! On SIGINT or SIGTERM the job drains (its open windows fire, its sinks
//! finish) before the server stops: the signals are taken by
//! [`ShutdownSignals`] instead of actix-web (`disable_signals`), and
//! [`serve_until_signal`] runs the server until one comes (actix-web's
//! own handling would stop the actix System, and the job with it, see
//! [`ShutdownSignals`]):
//!
//! ```no_run
//! use actix_web::{App, HttpServer};
//! use weir::prelude::*;
//! use weir::web::{Ingest, LatestWindows, ShutdownSignals, WebState};
//!
//! #[derive(Clone, Debug, serde::Deserialize)]
//! struct Click { page: String, ts: i64 }
//!
//! #[actix_web::main]
//! async fn main() -> Result<(), Box<dyn std::error::Error>> {
//!     let signals = ShutdownSignals::new()?;
//!     let (source, push) = push_source::<Click>(1_024);
//!     let latest = LatestWindows::new(|r: &WindowResult<String, u64>| r.value as f64);
//!     let job = JobBuilder::new("clicks");
//!     job.source("clicks", source, |c: &Click| c.ts, WatermarkStrategy::bounded_out_of_orderness(1_000))
//!         .key_by(|c: &Click| c.page.clone(), 2)
//!         .window("windows", Windows::tumbling(10_000))
//!         .aggregate(Count)
//!         .sink("latest", latest.sink());
//!     let handle = job.build()?.start()?;
//!     let state = WebState::new();
//!     state.add_job(handle.clone());
//!     let server = HttpServer::new(move || {
//!         App::new()
//!             .configure(weir::web::configure(state.clone()))
//!             .service(Ingest::new(push.clone()).resource("/ingest"))
//!             .service(latest.scope("/api/results"))
//!     })
//!     .disable_signals()
//!     .bind("127.0.0.1:8080")?
//!     .run();
//!     weir::web::serve_until_signal(server, &handle, signals).await?;
//!     Ok(())
//! }
//! ```
//!
//! `docs/web.md` documents the answers of every route; `docs/operations.md`
//! every metric.

mod api;
mod assets;
mod ingest;
mod lines;
mod prometheus;
mod query;
mod shutdown;
mod state;
mod view;
#[cfg(feature = "nats")]
mod worker;

use std::net::{TcpListener, ToSocketAddrs};

use actix_web::dev::Server;
use actix_web::{web, App, HttpServer};

pub use ingest::Ingest;
pub use lines::{IngestReport, RejectedLine};
pub use query::{LatestSink, LatestWindows, ScoredResult};
pub use shutdown::{serve_until_signal, ShutdownSignals};
pub use state::WebState;
pub use view::{ActorView, CheckpointView, EdgeView, GraphView, JobDetail, JobState, JobSummary, NodeView};

/// `{"error": "..."}`, the body of every error answer that is not an
/// [`IngestReport`].
pub(crate) fn error_json(message: String) -> serde_json::Value {
    serde_json::json!({ "error": message })
}

/// Mounts the dashboard (`GET /`, `GET /assets/{file}`), the job API
/// (`GET /api/jobs`, `GET /api/jobs/{id}`) and `GET /metrics` for the jobs
/// of `state`, and starts its sampler (once per state) on the current
/// runtime: `App::new().configure(weir::web::configure(state.clone()))`.
///
/// Mount it inside `web::scope("/prefix")` to serve it under a prefix.
pub fn configure(state: WebState) -> impl FnOnce(&mut web::ServiceConfig) {
    move |cfg| {
        state.start_sampler();
        let data = web::Data::new(state);
        cfg.service(web::resource("/").route(web::get().to(assets::index)))
            .service(web::resource("/assets/{file}").route(web::get().to(assets::asset)))
            .service(web::resource("/api/jobs").app_data(data.clone()).route(web::get().to(api::list_jobs)))
            .service(web::resource("/api/jobs/{id}").app_data(data.clone()).route(web::get().to(api::job_detail)))
            .service(web::resource("/api/status").app_data(data.clone()).route(web::get().to(api::status)))
            .service(web::resource("/metrics").app_data(data).route(web::get().to(prometheus::metrics)));
    }
}

/// A server with [`configure`] only (dashboard, job API, metrics) bound to
/// `addr`, one worker, not yet awaited: spawn or await the returned
/// [`Server`] inside an actix System, stop it through `Server::handle`. It
/// does not handle Ctrl-C itself (signals stay with the application, e.g.
/// with [`serve_until_signal`]).
pub fn serve(addr: impl ToSocketAddrs, state: WebState) -> std::io::Result<Server> {
    let listener = TcpListener::bind(addr)?;
    serve_on(listener, state)
}

/// [`serve`] on a listener the caller bound (to learn the port of
/// `127.0.0.1:0` first, say).
pub fn serve_on(listener: TcpListener, state: WebState) -> std::io::Result<Server> {
    let addr = listener.local_addr()?;
    let server = HttpServer::new(move || App::new().configure(configure(state.clone())))
        .workers(1)
        .disable_signals()
        .shutdown_timeout(1)
        .listen(listener)?
        .run();
    tracing::info!(%addr, "weir web server listening");
    Ok(server)
}
