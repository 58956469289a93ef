//! HTTP ingest: `POST` JSON records into a job's push source.
//!
//! [`Ingest`] turns a [`PushHandle`] into an actix-web resource. A request
//! body is JSON lines (`application/x-ndjson`, `text/plain`, any `text/*`
//! or no content type: one record per line) or one JSON document
//! (`application/json`). Each record is deserialized into the job's record
//! type and offered to the push source in line order.
//!
//! The invariant: **a record the answer says was taken is in the job, and
//! one it says was not is not.** Taken means in the push source's channel,
//! in memory: `JobHandle::stop` processes every taken record, while
//! `cancel`, the cancel of `stop_with_checkpoint` and a crash can lose
//! them (`docs/web.md`, "What a 200 means when the job ends"). While the job is backpressured (its push
//! channel is full) the request waits for room, at most the configured
//! deadline in all; then it answers `503 Service Unavailable` with a
//! `Retry-After` header and `retry_from_line`, the first line not taken —
//! the wait for that line is abandoned before the line enters the channel
//! (tokio's `send` is cancel-safe), so nothing is half-taken. Malformed
//! lines are answered with `400 Bad Request` counting them and naming the
//! first few with serde's reason, while the well-formed lines of the same
//! body are taken. A job whose source has stopped answers `410 Gone`.
//! Every answer carries an [`IngestReport`], whose size does not grow with
//! the body's.

use std::fmt;
use std::time::Duration;

use actix_web::http::{header, StatusCode};
use actix_web::{web, HttpRequest, HttpResponse, Resource};
use serde::de::DeserializeOwned;

use crate::{PushHandle, TrySendError};

use super::lines::{self, IngestReport};

/// An ingest endpoint for one job's push source; see the module docs.
///
/// ```no_run
/// # use std::time::Duration;
/// # use actix_web::{App, HttpServer};
/// # use weir::prelude::*;
/// # use weir::web::Ingest;
/// # #[derive(serde::Deserialize)] struct Click { ts: i64 }
/// # async fn demo(push: PushHandle<Click>) -> std::io::Result<()> {
/// HttpServer::new(move || {
///     App::new().service(Ingest::new(push.clone()).deadline(Duration::from_millis(200)).resource("/ingest"))
/// })
/// .bind("127.0.0.1:8080")?
/// .run()
/// .await
/// # }
/// ```
pub struct Ingest<T> {
    push: PushHandle<T>,
    deadline: Duration,
    retry_after: Duration,
    max_body_bytes: usize,
}

impl<T> Clone for Ingest<T> {
    fn clone(&self) -> Self {
        Ingest {
            push: self.push.clone(),
            deadline: self.deadline,
            retry_after: self.retry_after,
            max_body_bytes: self.max_body_bytes,
        }
    }
}

impl<T> fmt::Debug for Ingest<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Ingest")
            .field("deadline", &self.deadline)
            .field("retry_after", &self.retry_after)
            .field("max_body_bytes", &self.max_body_bytes)
            .finish()
    }
}

impl<T: DeserializeOwned + Send + 'static> Ingest<T> {
    /// Ingest into `push`. Defaults: wait at most 1 s for room, advise
    /// clients to retry after 1 s, bodies up to 16 MiB.
    ///
    /// The endpoint holds a clone of the handle (one per HTTP worker), and
    /// a push source ends only when every handle is dropped: end such a job
    /// with `JobHandle::stop`, after which the endpoint answers 410.
    pub fn new(push: PushHandle<T>) -> Self {
        Ingest { push, deadline: Duration::from_secs(1), retry_after: Duration::from_secs(1), max_body_bytes: 16 << 20 }
    }

    /// Longest a request waits in all for a backpressured job before it
    /// answers 503 (`Duration::ZERO`: never wait).
    pub fn deadline(mut self, deadline: Duration) -> Self {
        self.deadline = deadline;
        self
    }

    /// The `Retry-After` of a 503, rounded up to whole seconds (at least 1).
    pub fn retry_after(mut self, retry_after: Duration) -> Self {
        self.retry_after = retry_after;
        self
    }

    /// Largest body accepted; a larger one is answered 413.
    pub fn max_body_bytes(mut self, n: usize) -> Self {
        self.max_body_bytes = n;
        self
    }

    /// An actix-web resource answering `POST path`, to pass to
    /// `App::service` or `ServiceConfig::service`.
    pub fn resource(self, path: &str) -> Resource {
        let limit = self.max_body_bytes;
        web::resource(path)
            .app_data(web::PayloadConfig::new(limit))
            .app_data(web::Data::new(self))
            .route(web::post().to(ingest::<T>))
    }

    fn retry_after_secs(&self) -> u64 {
        let d = self.retry_after;
        (d.as_secs() + u64::from(d.subsec_nanos() > 0)).max(1)
    }
}

/// How the body is laid out, from its content type.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Layout {
    Lines,
    Single,
}

fn layout(req: &HttpRequest) -> Result<Layout, String> {
    let Some(ct) = req.headers().get(header::CONTENT_TYPE) else { return Ok(Layout::Lines) };
    let ct = ct.to_str().unwrap_or("").split(';').next().unwrap_or("").trim().to_ascii_lowercase();
    match ct.as_str() {
        "application/json" => Ok(Layout::Single),
        "" | "application/x-ndjson" | "application/ndjson" | "application/jsonl" | "application/json-lines"
        | "application/x-jsonlines" => Ok(Layout::Lines),
        t if t.starts_with("text/") => Ok(Layout::Lines),
        t => Err(format!(
            "unsupported content type {t:?}: send JSON lines (application/x-ndjson or text/plain) or one JSON object (application/json)"
        )),
    }
}

/// Why the pushing stopped early.
enum Stop {
    Backpressured(u64),
    Closed,
}

/// `POST` handler of an [`Ingest`] resource.
async fn ingest<T: DeserializeOwned + Send + 'static>(
    req: HttpRequest,
    body: web::Bytes,
    cfg: web::Data<Ingest<T>>,
) -> HttpResponse {
    let parsed = match layout(&req) {
        Ok(Layout::Lines) => lines::parse_lines::<T>(&body),
        Ok(Layout::Single) => lines::parse_single::<T>(&body),
        Err(msg) => {
            let report = IngestReport { error: Some(msg), ..IngestReport::default() };
            return HttpResponse::UnsupportedMediaType().json(report);
        }
    };
    let mut report = parsed.report;
    let deadline = tokio::time::Instant::now() + cfg.deadline;
    let mut stop = None;
    for (line, v) in parsed.records {
        let v = match cfg.push.try_send(v) {
            Ok(()) => {
                report.accept(line);
                continue;
            }
            Err(TrySendError::Closed(_)) => {
                stop = Some(Stop::Closed);
                break;
            }
            Err(TrySendError::Full(v)) => v,
        };
        // Backpressured: wait for room until the deadline. On timeout the
        // pending send is dropped before it took `v` (cancel-safe).
        match tokio::time::timeout_at(deadline, cfg.push.send(v)).await {
            Ok(Ok(())) => report.accept(line),
            Ok(Err(_)) => {
                stop = Some(Stop::Closed);
                break;
            }
            Err(_) => {
                stop = Some(Stop::Backpressured(line));
                break;
            }
        }
    }
    let status = match stop {
        Some(Stop::Closed) => {
            report.error = Some(format!(
                "the job's source has stopped (the job was stopped or has ended): {} of {} records were taken before, send no more",
                report.accepted, report.received
            ));
            StatusCode::GONE
        }
        Some(Stop::Backpressured(line)) => {
            report.retry_from_line = Some(line);
            report.error = Some(format!(
                "the job is backpressured: no room within {} ms; lines before {line} were taken as listed, send the well-formed lines from line {line} on again after {} s",
                cfg.deadline.as_millis(),
                cfg.retry_after_secs()
            ));
            StatusCode::SERVICE_UNAVAILABLE
        }
        None if report.rejected > 0 => {
            let (n, taken) = (report.rejected, report.accepted);
            let first = report.rejected_lines.first().map_or(0, |r| r.line);
            report.error = Some(format!(
                "{n} malformed line{} rejected (first: line {first}); {taken} well-formed record{} taken",
                if n == 1 { "" } else { "s" },
                if taken == 1 { " was" } else { "s were" },
            ));
            StatusCode::BAD_REQUEST
        }
        None => StatusCode::OK,
    };
    if status != StatusCode::OK {
        tracing::debug!(%status, accepted = report.accepted, received = report.received, "ingest answered with an error");
    }
    let mut resp = HttpResponse::build(status);
    if status == StatusCode::SERVICE_UNAVAILABLE {
        resp.insert_header((header::RETRY_AFTER, cfg.retry_after_secs().to_string()));
    }
    resp.json(report)
}
