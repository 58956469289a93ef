//! weir inside an actix-web service.
//!
//! One `#[actix_web::main]` application runs a job and a web server in the
//! same actix System:
//!
//! - `POST /ingest` takes page views as JSON lines and pushes them into the
//!   job's push source (`weir::web::Ingest`); while the job is
//!   backpressured it answers 503 with `Retry-After` and the first line it
//!   did not take;
//! - the job counts views per page in tumbling 10 s windows of event time
//!   into `weir::web::LatestWindows`, served at `GET /api/results` (latest
//!   window per page) and `GET /api/results/top?n=2`;
//! - `GET /` is the dashboard, `GET /api/jobs` the job API and
//!   `GET /metrics` Prometheus metrics (`weir::web::configure`).
//!
//! By default the example binds 127.0.0.1:0, posts 60 s of page views to
//! itself with actix-web's client (awc), resending what a 503 did not take,
//! stops the job, queries the results, checks them and exits:
//! `cargo run --release --example web_service`.
//!
//! With `--serve [ADDR]` (default 127.0.0.1:8080) it serves, for a person
//! with a browser and curl, until Ctrl-C or SIGTERM. Then it shuts down
//! without losing anything it took: the job is stopped and drains (the
//! records taken flow through, the open windows fire, the sinks finish),
//! then the server stops and the process exits 0. actix-web's own signal
//! handling is off (`disable_signals`): it would stop the actix System,
//! and the job with it, before the job could drain
//! (`weir::web::ShutdownSignals`).
//!
//! `--output FILE` also writes every window result as a JSON line to FILE
//! (`FileSink`), complete once the job has drained.

use std::net::{SocketAddr, TcpListener};
use std::path::PathBuf;
use std::time::Duration;

use actix_web::{App, HttpServer};
use serde::{Deserialize, Serialize};
use serde_json::Value;
use weir::prelude::*;
use weir::web::{Ingest, IngestReport, LatestSink, LatestWindows, ShutdownSignals, WebState};
use weir::{Record, SinkError};

/// A page view, stamped with its time (event time, ms).
#[derive(Debug, Clone, Serialize, Deserialize)]
struct View {
    page: String,
    ts: i64,
}

const PAGES: [&str; 4] = ["home", "docs", "blog", "shop"];
/// Page views posted by the self-test: one every 20 ms of event time.
const VIEWS: i64 = 3_000;

/// Which page view `i` is of: home 40 %, docs 30 %, blog 20 %, shop 10 %.
const PATTERN: [usize; 10] = [0, 0, 0, 0, 1, 1, 1, 2, 2, 3];

/// View `i`: a page picked by a fixed pattern, every 20 ms.
fn view(i: i64) -> View {
    View { page: PAGES[PATTERN[(i % 10) as usize]].to_string(), ts: i * 20 }
}

/// Views per page per 10 s window.
type PageCount = WindowResult<String, u64>;

/// The job's sink: the latest window per page for `GET /api/results` and,
/// with `--output`, every result as a JSON line. (A topology ends in one
/// sink per stream; this one hands each batch to both.)
struct Results {
    latest: LatestSink<String, u64>,
    file: Option<FileSink>,
}

impl Sink<PageCount> for Results {
    fn write(&mut self, batch: &mut Vec<Record<PageCount>>) -> Result<(), SinkError> {
        if let Some(file) = &mut self.file {
            file.write(&mut batch.clone())?;
        }
        self.latest.write(batch)
    }

    fn finish(&mut self) -> Result<(), SinkError> {
        if let Some(file) = &mut self.file {
            Sink::<PageCount>::finish(file)?;
        }
        Sink::<PageCount>::finish(&mut self.latest)
    }
}

#[actix_web::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let value =
        |flag: &str| args.iter().position(|a| a == flag).map(|i| args.get(i + 1).filter(|v| !v.starts_with("--")));
    let serve: Option<SocketAddr> = match value("--serve") {
        Some(addr) => Some(addr.map(String::as_str).unwrap_or("127.0.0.1:8080").parse()?),
        None => None,
    };
    let output: Option<PathBuf> = match value("--output") {
        Some(Some(path)) => Some(path.into()),
        Some(None) => return Err("--output needs a FILE".into()),
        None => None,
    };
    // Taken before the job starts: from here on a signal drains the job
    // instead of ending the process.
    let signals = serve.is_some().then(ShutdownSignals::new).transpose()?;
    println!("weir example: web_service — a job inside an actix-web service\n");

    // The job: page views in, views per page per 10 s window out.
    let (source, push) = push_source::<View>(256);
    let latest = LatestWindows::new(|r: &PageCount| r.value as f64);
    let job = JobBuilder::new("page-views");
    let strategy = WatermarkStrategy::bounded_out_of_orderness(1_000).with_interval(Duration::from_millis(100));
    job.source("views", source, |v: &View| v.ts, strategy)
        .key_by(|v: &View| v.page.clone(), 2)
        .window("windows", Windows::tumbling(10_000))
        .aggregate(Count)
        .sink("results", Results { latest: latest.sink(), file: output.as_ref().map(FileSink::json_lines) });
    let handle = job.build()?.start()?;

    let state = WebState::new();
    state.add_job(handle.clone());
    let listener = TcpListener::bind(serve.unwrap_or_else(|| "127.0.0.1:0".parse().expect("an address")))?;
    let addr = listener.local_addr()?;
    let (web_state, web_latest) = (state.clone(), latest.clone());
    let server = HttpServer::new(move || {
        App::new()
            .configure(weir::web::configure(web_state.clone()))
            .service(Ingest::new(push.clone()).deadline(Duration::from_millis(200)).resource("/ingest"))
            .service(web_latest.scope("/api/results"))
    })
    .workers(2)
    // Signals are the application's (`ShutdownSignals`), not actix-web's.
    .disable_signals()
    .shutdown_timeout(5)
    .listen(listener)?;

    if let Some(signals) = signals {
        println!("  dashboard  http://{addr}/");
        println!("  job API    http://{addr}/api/jobs");
        println!("  results    http://{addr}/api/results   http://{addr}/api/results/top?n=2");
        println!("  metrics    http://{addr}/metrics");
        println!("  ingest     curl -H 'content-type: application/x-ndjson' --data-binary $'{{\"page\":\"home\",\"ts\":1000}}\\n' http://{addr}/ingest");
        println!("\n  Ctrl-C or SIGTERM: the job drains (open windows fire), then the server stops.");
        let report = weir::web::serve_until_signal(server.run(), &handle, signals).await?;
        println!(
            "\n  [main] drained: {} views read in {:?}; latest window per page:",
            report.metrics.source_records(),
            report.elapsed
        );
        for r in latest.latest() {
            println!(
                "    {:<5} [{:>2} s, {:>2} s) {:>3} views",
                r.key,
                r.window.start / 1_000,
                r.window.end / 1_000,
                r.value
            );
        }
        if let Some(path) = &output {
            println!("  [main] every window result is in {}", path.display());
        }
        return Ok(());
    }

    let server = server.run();
    let server_handle = server.handle();
    actix_web::rt::spawn(server);
    let base = format!("http://{addr}");
    println!("  [main] serving on {base}; posting {VIEWS} page views to {base}/ingest");
    let client = awc::Client::new();

    // A malformed line is rejected by number; the others are taken.
    let (status, report) = post(&client, &base, "{\"page\":\"home\",\"ts\":0}\n{\"page\":7}\n").await?;
    println!("  [client] a body with a malformed line 2: HTTP {status}, {}", report.error.as_deref().unwrap_or(""));
    assert_eq!((status, report.accepted, report.rejected_lines[0].line), (400, 1, 2));

    let (mut busy, mut i) = (0, 0);
    while i < VIEWS {
        let batch: Vec<View> = (i..(i + 250).min(VIEWS)).map(view).collect();
        let body: String = batch.iter().map(|v| serde_json::to_string(v).expect("a view serializes") + "\n").collect();
        let (status, report) = post(&client, &base, &body).await?;
        match report.retry_from_line {
            // Lines before `k` were taken: resend from there after a pause.
            Some(k) => {
                busy += 1;
                i += k as i64 - 1;
                actix_web::rt::time::sleep(Duration::from_millis(50)).await;
            }
            None if status == 200 => i += batch.len() as i64,
            None => return Err(format!("ingest answered {status}: {:?}", report.error).into()),
        }
    }
    println!(
        "  [client] all {VIEWS} views taken ({busy} answers were 503: backpressured, resent from retry_from_line)"
    );

    // Stopping drains what was taken and fires the open windows.
    handle.stop();
    let report = handle.wait().await?;
    println!("  [main] job finished in {:?}: {} records read", report.elapsed, report.metrics.source_records());

    let results: Value = client.get(format!("{base}/api/results")).send().await?.json().await?;
    println!("  [client] GET /api/results (latest window per page):");
    let mut got = Vec::new();
    for r in results.as_array().ok_or("results are a JSON array")? {
        println!(
            "    {:<5} [{:>2} s, {:>2} s) {:>3} views",
            r["key"].as_str().unwrap_or("?"),
            r["window"]["start"].as_i64().unwrap_or(0) / 1_000,
            r["window"]["end"].as_i64().unwrap_or(0) / 1_000,
            r["value"]
        );
        got.push((r["key"].as_str().unwrap_or("").to_string(), r["window"]["start"].as_i64(), r["value"].as_u64()));
    }
    let top: Value = client.get(format!("{base}/api/results/top?n=2")).send().await?.json().await?;
    let top: Vec<&str> =
        top.as_array().ok_or("top is a JSON array")?.iter().filter_map(|r| r["key"].as_str()).collect();
    println!("  [client] GET /api/results/top?n=2: {top:?}");

    let jobs: Value = client.get(format!("{base}/api/jobs")).send().await?.json().await?;
    println!("  [client] GET /api/jobs: {jobs}");
    let metrics = client.get(format!("{base}/metrics")).send().await?.body().await?;
    let series = String::from_utf8_lossy(&metrics).lines().filter(|l| !l.starts_with('#')).count();
    println!("  [client] GET /metrics: {series} series");

    // The check: the last window [50 s, 60 s) of each page, counted here.
    let mut want: Vec<(String, Option<i64>, Option<u64>)> = PAGES
        .iter()
        .map(|p| {
            let n = (0..VIEWS).map(view).filter(|v| v.page == *p && v.ts >= 50_000).count() as u64;
            (p.to_string(), Some(50_000), Some(n))
        })
        .collect();
    want.sort();
    assert_eq!(got, want, "latest windows per page");
    assert_eq!(jobs[0]["state"], "finished");
    println!("\n  The results match the views posted: every view the server said it took was counted once.");
    server_handle.stop(true).await;
    Ok(())
}

/// POSTs JSON lines to `/ingest`: the HTTP status and the ingest report.
async fn post(client: &awc::Client, base: &str, body: &str) -> Result<(u16, IngestReport), Box<dyn std::error::Error>> {
    let mut resp = client
        .post(format!("{base}/ingest"))
        .insert_header(("content-type", "application/x-ndjson"))
        .send_body(body.to_string())
        .await?;
    let report: IngestReport = resp.json().await?;
    Ok((resp.status().as_u16(), report))
}
