//! A draining shutdown on SIGINT and SIGTERM: the job finishes its work
//! before the service exits.
//!
//! actix-web handles SIGINT, SIGTERM and SIGQUIT itself unless told not
//! to: it stops the HTTP server and, 300 ms later, the whole actix System.
//! A job started in that System (`Job::start`) loses its actors with it:
//! nothing drains, the open windows never fire, sinks never finish, and
//! `JobHandle::wait` returns `JobError::Stopped`. To drain instead, the
//! application takes the signals itself — the server is built with
//! `HttpServer::disable_signals()` and [`ShutdownSignals`] is installed —
//! and, on a signal, stops the job (`JobHandle::stop`: its sources stop
//! taking input, what they took flows through, the open windows fire and
//! the sinks finish, so the output is complete), waits for it, and only
//! then stops the server. [`serve_until_signal`] does all of that.
//!
//! While the job drains the server still answers: the job API shows the
//! draining job, and an ingest endpoint answers `410 Gone` (its push
//! source has stopped taking records). A second signal during the drain
//! cancels the job (what is in flight is dropped), so a drain that cannot
//! finish never leaves a process that ignores Ctrl-C.

use std::fmt;
use std::io;

use actix_web::dev::Server;

use crate::{JobError, JobHandle, JobReport};

/// The process's shutdown signals, taken from the moment this is made:
/// SIGINT (Ctrl-C) and SIGTERM on Unix, Ctrl-C elsewhere. They no longer
/// end the process; each one wakes [`Self::recv`].
///
/// Left to actix-web, SIGINT, SIGTERM and SIGQUIT stop the HTTP server
/// and, 300 ms later, the whole actix System: a job started in it loses
/// its actors, its open windows never fire, and `JobHandle::wait` returns
/// `JobError::Stopped`. Taken here, a signal is the application's cue to
/// drain the job first ([`Self::drain`], [`serve_until_signal`]).
///
/// Make it early — before the job starts and before the server listens —
/// so that no signal can end the process half-way, and build every
/// `HttpServer` of the process with `disable_signals()`: actix-web's own
/// handlers would see the same signal and stop the actix System under the
/// job. Several `ShutdownSignals` each see every signal. As with any
/// tokio signal handler, the signals stay taken for the rest of the
/// process, even once this is dropped: after the shutdown, exit.
pub struct ShutdownSignals {
    #[cfg(unix)]
    interrupt: actix_web::rt::signal::unix::Signal,
    #[cfg(unix)]
    terminate: actix_web::rt::signal::unix::Signal,
}

impl fmt::Debug for ShutdownSignals {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("ShutdownSignals")
    }
}

impl ShutdownSignals {
    /// Takes SIGINT and SIGTERM (Ctrl-C outside Unix) now. Call it on the
    /// actix (tokio) runtime, e.g. inside `#[actix_web::main]`; elsewhere
    /// it is an error.
    pub fn new() -> io::Result<Self> {
        if tokio::runtime::Handle::try_current().is_err() {
            return Err(io::Error::other(
                "ShutdownSignals::new must be called inside an actix System or tokio runtime",
            ));
        }
        #[cfg(unix)]
        {
            use actix_web::rt::signal::unix::{signal, SignalKind};
            Ok(ShutdownSignals {
                interrupt: signal(SignalKind::interrupt())?,
                terminate: signal(SignalKind::terminate())?,
            })
        }
        #[cfg(not(unix))]
        Ok(ShutdownSignals {})
    }

    /// Waits for the next signal and returns its name (`"SIGINT"`,
    /// `"SIGTERM"`, or `"Ctrl-C"` outside Unix).
    pub async fn recv(&mut self) -> &'static str {
        #[cfg(unix)]
        {
            tokio::select! {
                _ = self.interrupt.recv() => "SIGINT",
                _ = self.terminate.recv() => "SIGTERM",
            }
        }
        #[cfg(not(unix))]
        {
            // Installed on first poll (the platform offers no earlier way).
            if actix_web::rt::signal::ctrl_c().await.is_err() {
                std::future::pending::<()>().await;
            }
            "Ctrl-C"
        }
    }

    /// Stops `job` and waits until it has drained: its sources stop taking
    /// input, what they took flows through, the open windows fire and the
    /// sinks finish. Another signal meanwhile cancels the job instead
    /// (what is in flight is dropped; the result is then
    /// `JobError::Cancelled`).
    pub async fn drain(&mut self, job: &JobHandle) -> Result<JobReport, JobError> {
        tracing::info!(job = %job.name(), "stopping the job: it drains");
        job.stop();
        tokio::select! {
            report = job.wait() => report,
            signal = self.recv() => {
                tracing::warn!(job = %job.name(), signal, "a second signal: cancelling the job, what is in flight is dropped");
                job.cancel();
                job.wait().await
            }
        }
    }
}

/// Runs `server` with `job` until a shutdown signal, then drains the job
/// and stops the server: the end of a service that must not lose what its
/// job has taken.
///
/// - On a signal of `signals` (or if the server stops by itself, for
///   instance through its `ServerHandle` from an admin route), the job is
///   drained ([`ShutdownSignals::drain`]) while the server goes on
///   answering, then the server stops gracefully, and the job's report is
///   returned.
/// - If the job ends by itself first (a failure, or its input ended), the
///   server is stopped and the job's outcome returned.
///
/// Build `server` with `HttpServer::disable_signals()`, and make `signals`
/// before the job starts (see [`ShutdownSignals`]). Await this inside
/// the actix System that runs the job (`#[actix_web::main]`).
///
/// ```no_run
/// use actix_web::{App, HttpServer};
/// use weir::prelude::*;
/// use weir::web::{Ingest, ShutdownSignals, WebState};
///
/// #[derive(Clone, Debug, serde::Deserialize)]
/// struct Click { page: String, ts: i64 }
///
/// #[actix_web::main]
/// async fn main() -> Result<(), Box<dyn std::error::Error>> {
///     let signals = ShutdownSignals::new()?;    // Ctrl-C and SIGTERM now drain the job
///     let (source, push) = push_source::<Click>(1_024);
///     let job = JobBuilder::new("clicks");
///     job.source("clicks", source, |c: &Click| c.ts, WatermarkStrategy::bounded_out_of_orderness(1_000))
///         .key_by(|c: &Click| c.page.clone(), 2)
///         .window("windows", Windows::tumbling(10_000))
///         .aggregate(Count)
///         .sink("counts", FileSink::json_lines("counts.jsonl"));
///     let handle = job.build()?.start()?;
///     let state = WebState::new();
///     state.add_job(handle.clone());
///     let server = HttpServer::new(move || {
///         App::new()
///             .configure(weir::web::configure(state.clone()))
///             .service(Ingest::new(push.clone()).resource("/ingest"))
///     })
///     .disable_signals()                           // signals are ours, not actix-web's
///     .bind("127.0.0.1:8080")?
///     .run();
///     let report = weir::web::serve_until_signal(server, &handle, signals).await?;
///     println!("drained: {} records read", report.metrics.source_records());
///     Ok(())
/// }
/// ```
pub async fn serve_until_signal(
    server: Server,
    job: &JobHandle,
    mut signals: ShutdownSignals,
) -> Result<JobReport, JobError> {
    let server_handle = server.handle();
    let mut serving = actix_web::rt::spawn(server);
    let mut server_stopped = false;
    let ended_by_itself = tokio::select! {
        signal = signals.recv() => {
            tracing::info!(signal, job = %job.name(), "shutdown signal");
            None
        }
        served = &mut serving => {
            server_stopped = true;
            match served {
                Ok(Ok(())) => tracing::info!(job = %job.name(), "the server stopped"),
                Ok(Err(e)) => tracing::error!(job = %job.name(), error = %e, "the server failed"),
                Err(e) => tracing::error!(job = %job.name(), error = %e, "the server task failed"),
            }
            None
        }
        report = job.wait() => Some(report),
    };
    let report = match ended_by_itself {
        Some(report) => report,
        None => signals.drain(job).await,
    };
    if !server_stopped {
        server_handle.stop(true).await;
        if let Ok(Err(e)) = serving.await {
            tracing::error!(error = %e, "the server failed while stopping");
        }
    }
    report
}
