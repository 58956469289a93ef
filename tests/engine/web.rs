//! weir inside actix-web (`weir::web`): HTTP ingest and its answers, the
//! job API, result queries, `/metrics`, and ingest against a real server
//! while the job is backpressured.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::time::Duration;

use actix_web::http::StatusCode;
use actix_web::{test, App, HttpServer};
use serde::{Deserialize, Serialize};
use serde_json::Value;
use weir::prelude::*;
use weir::web::{Ingest, IngestReport, LatestWindows, WebState};
use weir::{Record, SinkError};

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
struct Ev {
    id: u64,
    ts: i64,
}

/// A job `push source -> sink` collecting what reaches the sink.
fn push_job(name: &str, channel: usize) -> (weir::Job, PushHandle<Ev>, Collected<Ev>) {
    let (source, push) = push_source::<Ev>(channel);
    let (sink, got) = CollectSink::new();
    let job = JobBuilder::new(name);
    job.source("events", source, |e: &Ev| e.ts, WatermarkStrategy::monotonic()).sink("out", sink);
    (job.build().expect("a valid job"), push, got)
}

fn ids(got: &Collected<Ev>) -> BTreeSet<u64> {
    got.values().into_iter().map(|e| e.id).collect()
}

#[actix_web::test]
async fn malformed_line_is_answered_400_naming_it_and_the_other_lines_are_taken() {
    let (job, push, got) = push_job("ingest", 64);
    let handle = job.start().unwrap();
    let app = test::init_service(App::new().service(Ingest::new(push.clone()).resource("/ingest"))).await;

    let bad = r#"{"id": "three", "ts": 3}"#;
    let body = format!("{{\"id\":1,\"ts\":1}}\n{{\"id\":2,\"ts\":2}}\n{bad}\n\n{{\"id\":5,\"ts\":5}}\n");
    let req = test::TestRequest::post()
        .uri("/ingest")
        .insert_header(("content-type", "application/x-ndjson"))
        .set_payload(body)
        .to_request();
    let resp = test::call_service(&app, req).await;
    assert_eq!(resp.status(), StatusCode::BAD_REQUEST);
    let report: IngestReport = test::read_body_json(resp).await;
    let reason = serde_json::from_str::<Ev>(bad).unwrap_err().to_string();
    assert_eq!(report.received, 4);
    assert_eq!(report.accepted, 3);
    assert_eq!(report.accepted_lines, vec![[1, 2], [5, 5]]);
    assert_eq!(report.rejected, 1);
    assert_eq!(report.rejected_lines, vec![weir::web::RejectedLine { line: 3, error: reason }]);
    assert_eq!(report.retry_from_line, None);
    assert_eq!(
        report.error.as_deref(),
        Some("1 malformed line rejected (first: line 3); 3 well-formed records were taken")
    );

    // One JSON document, laid out over several lines.
    let req = test::TestRequest::post()
        .uri("/ingest")
        .insert_header(("content-type", "application/json"))
        .set_payload("{\n \"id\": 6,\n \"ts\": 6\n}")
        .to_request();
    let resp = test::call_service(&app, req).await;
    assert_eq!(resp.status(), StatusCode::OK);
    let report: IngestReport = test::read_body_json(resp).await;
    assert_eq!((report.accepted, report.accepted_lines.clone(), report.error), (1, vec![[1, 1]], None));

    let req = test::TestRequest::post()
        .uri("/ingest")
        .insert_header(("content-type", "application/xml"))
        .set_payload("<ev/>")
        .to_request();
    assert_eq!(test::call_service(&app, req).await.status(), StatusCode::UNSUPPORTED_MEDIA_TYPE);

    // Stopped: what was taken drains through; then the endpoint answers 410.
    handle.stop();
    handle.wait().await.unwrap();
    assert_eq!(ids(&got), BTreeSet::from([1, 2, 5, 6]));
    let req = test::TestRequest::post().uri("/ingest").set_payload("{\"id\":7,\"ts\":7}\n").to_request();
    let resp = test::call_service(&app, req).await;
    assert_eq!(resp.status(), StatusCode::GONE);
    let report: IngestReport = test::read_body_json(resp).await;
    assert_eq!((report.received, report.accepted), (1, 0));
    drop(push);
}

/// Posts `body` as JSON lines to a test service: (status, the raw answer).
macro_rules! post_lines {
    ($app:expr, $body:expr) => {{
        let req = test::TestRequest::post()
            .uri("/ingest")
            .insert_header(("content-type", "application/x-ndjson"))
            .set_payload($body)
            .to_request();
        let resp = test::call_service(&$app, req).await;
        (resp.status(), test::read_body(resp).await)
    }};
}

#[actix_web::test]
async fn a_body_of_many_bad_lines_is_answered_in_a_few_kilobytes_with_the_first_lines_and_the_totals() {
    let (job, push, got) = push_job("ingest", 1 << 16);
    let handle = job.start().unwrap();
    let app = test::init_service(App::new().service(Ingest::new(push.clone()).resource("/ingest"))).await;

    // 1 MiB of malformed lines.
    let bad = "{\"id\": \"not a number\", \"ts\": 1}\n";
    let n = (1 << 20) / bad.len() as u64;
    let (status, answer) = post_lines!(app, bad.repeat(n as usize));
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert!(answer.len() <= 4096, "a {} byte answer to 1 MiB of bad lines", answer.len());
    let mut sizes = vec![answer.len()];
    let report: IngestReport = serde_json::from_slice(&answer).unwrap();
    assert_eq!((report.received, report.accepted, report.rejected), (n, 0, n));
    let listed: Vec<u64> = report.rejected_lines.iter().map(|r| r.line).collect();
    assert_eq!(listed, (1..=IngestReport::MAX_LISTED as u64).collect::<Vec<_>>());
    assert!(report.accepted_lines.is_empty());

    // Good and bad lines alternating: every good line is taken, the
    // answer still does not grow with the body.
    let body: String = (1..=20_000u64)
        .map(|l| if l % 2 == 1 { format!("{{\"id\":{l},\"ts\":{l}}}\n") } else { bad.to_string() })
        .collect();
    let (status, answer) = post_lines!(app, body);
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert!(answer.len() <= 4096, "a {} byte answer to 20,000 alternating lines", answer.len());
    sizes.push(answer.len());
    let report: IngestReport = serde_json::from_slice(&answer).unwrap();
    assert_eq!((report.received, report.accepted, report.rejected), (20_000, 10_000, 10_000));
    assert_eq!(report.retry_from_line, None);
    let listed: Vec<[u64; 2]> = (0..IngestReport::MAX_LISTED as u64).map(|i| [2 * i + 1, 2 * i + 1]).collect();
    assert_eq!(report.accepted_lines, listed);

    // One bad line whose reason would quote a 1 MiB string.
    let (status, answer) = post_lines!(app, format!("{{\"id\": \"{}\", \"ts\": 1}}\n", "x".repeat(1 << 20)));
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert!(answer.len() <= 4096, "a {} byte answer to one long bad line", answer.len());
    sizes.push(answer.len());
    eprintln!("answers of {sizes:?} bytes to 1 MiB of bad lines, 20,000 alternating lines, one 1 MiB bad line");

    handle.stop();
    handle.wait().await.unwrap();
    assert_eq!(ids(&got), (1..=20_000).step_by(2).collect::<BTreeSet<u64>>());
    drop(push);
}

/// A keyed count over 0..1000 (keys n % 4, windows of 100), with its
/// latest results kept for queries.
fn counting_job() -> (weir::Job, LatestWindows<i64, u64>) {
    let latest = LatestWindows::new(|r: &WindowResult<i64, u64>| r.value as f64);
    let job = JobBuilder::new("counts");
    job.source("numbers", IterSource::new(0..1_000i64), |n: &i64| *n, WatermarkStrategy::monotonic())
        .key_by(|n: &i64| n % 4, 2)
        .window("windows", Windows::tumbling(100))
        .aggregate(Count)
        .sink("latest", latest.sink());
    (job.build().unwrap(), latest)
}

/// GETs `uri` from a test service: (status, JSON body).
macro_rules! get_json {
    ($app:expr, $uri:expr) => {{
        let resp = test::call_service(&$app, test::TestRequest::get().uri(&$uri).to_request()).await;
        let status = resp.status();
        let body: Value = test::read_body_json(resp).await;
        (status, body)
    }};
}

#[actix_web::test]
async fn job_api_lists_the_job_and_its_detail_covers_every_actor_of_its_graph() {
    let (job, latest) = counting_job();
    let handle = job.start().unwrap();
    let state = WebState::new();
    state.add_job(handle.clone());
    let app = test::init_service(
        App::new().configure(weir::web::configure(state.clone())).service(latest.scope("/api/results")),
    )
    .await;
    handle.wait().await.unwrap();
    let id = handle.id().to_string();

    let (status, jobs) = get_json!(app, "/api/jobs");
    assert_eq!(status, StatusCode::OK);
    let jobs = jobs.as_array().unwrap();
    assert_eq!(jobs.len(), 1);
    assert_eq!(jobs[0]["id"], id.as_str());
    assert_eq!(jobs[0]["name"], "counts");
    assert_eq!(jobs[0]["state"], "finished");
    assert!(jobs[0]["elapsed_ms"].is_u64());

    let (status, d) = get_json!(app, &format!("/api/jobs/{id}"));
    assert_eq!(status, StatusCode::OK);
    for field in ["id", "name", "state", "elapsed_ms", "error", "graph", "actors", "checkpoints", "sampled_at_ms"] {
        assert!(d.get(field).is_some(), "missing field {field} in {d}");
    }
    assert_eq!((d["state"].as_str(), d["error"].is_null()), (Some("finished"), true));
    let nodes: Vec<(String, String, u64)> = d["graph"]["nodes"]
        .as_array()
        .unwrap()
        .iter()
        .map(|n| {
            (n["name"].as_str().unwrap().into(), n["kind"].as_str().unwrap().into(), n["parallelism"].as_u64().unwrap())
        })
        .collect();
    let graph_actors: BTreeSet<String> =
        nodes.iter().flat_map(|(name, _, p)| (0..*p).map(move |i| format!("{name}#{i}"))).collect();
    let actors = d["actors"].as_array().unwrap();
    let listed: BTreeSet<String> = actors.iter().map(|a| a["name"].as_str().unwrap().to_string()).collect();
    let from_handle: BTreeSet<String> = handle.metrics().actors.into_iter().map(|a| a.name).collect();
    assert_eq!(listed, graph_actors);
    assert_eq!(listed, from_handle);
    assert!(nodes.iter().any(|(_, kind, p)| kind == "Window" && *p == 2), "{nodes:?}");
    let edges = d["graph"]["edges"].as_array().unwrap();
    assert!(edges.iter().all(|e| ["main", "side"].contains(&e["output"].as_str().unwrap())));
    let fields = [
        "name",
        "node",
        "kind",
        "records_in",
        "records_out",
        "batches_in",
        "batches_out",
        "rate_in",
        "rate_out",
        "mailbox_len",
        "mailbox_capacity",
        "mailbox_fill",
        "backpressure_ratio",
        "backpressured_ms",
        "blocked",
        "watermark",
        "watermark_lag_ms",
        "late_records",
        "dead_letters",
        "open_windows",
    ];
    for a in actors {
        for f in fields {
            assert!(a.get(f).is_some(), "missing {f} in {a}");
        }
        // Every actor saw the end of its input.
        assert_eq!(a["watermark"].as_i64(), Some(i64::MAX), "{a}");
    }
    let sources = actors.iter().filter(|a| a["kind"] == "Source");
    assert_eq!(sources.map(|a| a["records_in"].as_u64().unwrap()).sum::<u64>(), 1_000);

    let (status, err) = get_json!(app, "/api/jobs/no-such-job");
    assert_eq!(status, StatusCode::NOT_FOUND);
    assert_eq!(err["error"], "no job with id \"no-such-job\"");

    // The latest window of each key is [900, 1000): 25 numbers each.
    let (_, results) = get_json!(app, "/api/results");
    let got: Vec<(i64, i64, u64)> = results
        .as_array()
        .unwrap()
        .iter()
        .map(|r| (r["key"].as_i64().unwrap(), r["window"]["start"].as_i64().unwrap(), r["value"].as_u64().unwrap()))
        .collect();
    assert_eq!(got, vec![(0, 900, 25), (1, 900, 25), (2, 900, 25), (3, 900, 25)]);
    let (_, top) = get_json!(app, "/api/results/top?n=2");
    assert_eq!(top.as_array().unwrap().iter().map(|r| r["key"].as_i64().unwrap()).collect::<Vec<_>>(), [0, 1]);
    let (status, _) = get_json!(app, "/api/results/top?n=many");
    assert_eq!(status, StatusCode::BAD_REQUEST);

    let resp = test::call_service(&app, test::TestRequest::get().uri("/").to_request()).await;
    assert_eq!(resp.status(), StatusCode::OK);
    assert_eq!(resp.headers().get("content-type").unwrap(), "text/html; charset=utf-8");
    for asset in ["/assets/app.js", "/assets/style.css"] {
        let resp = test::call_service(&app, test::TestRequest::get().uri(asset).to_request()).await;
        assert_eq!(resp.status(), StatusCode::OK, "{asset}");
    }
}

/// One sample line of the Prometheus text format.
#[derive(Debug)]
struct PromSample {
    name: String,
    labels: BTreeMap<String, String>,
    value: f64,
}

/// Parses the Prometheus text format strictly enough for a test: every
/// line is `# HELP name text`, `# TYPE name type` or `name{k="v",...} value`,
/// and every sample's family has a HELP and a TYPE before it.
fn parse_prometheus(text: &str) -> Vec<PromSample> {
    let (mut help, mut types) = (BTreeSet::new(), BTreeSet::new());
    let mut samples = Vec::new();
    for line in text.lines().filter(|l| !l.is_empty()) {
        if let Some(rest) = line.strip_prefix("# HELP ") {
            help.insert(rest.split(' ').next().unwrap().to_string());
            continue;
        }
        if let Some(rest) = line.strip_prefix("# TYPE ") {
            let (name, t) = rest.split_once(' ').expect("TYPE name type");
            assert!(["counter", "gauge", "histogram", "summary", "untyped"].contains(&t), "{line}");
            types.insert(name.to_string());
            continue;
        }
        assert!(!line.starts_with('#'), "unexpected comment {line}");
        let (series, value) = line.rsplit_once(' ').expect("series value");
        let value: f64 = value.parse().unwrap_or_else(|_| panic!("bad value in {line}"));
        let (name, labels) = match series.split_once('{') {
            Some((name, rest)) => {
                let body = rest.strip_suffix('}').unwrap_or_else(|| panic!("unclosed labels in {line}"));
                let labels = body
                    .split("\",")
                    .filter(|kv| !kv.is_empty())
                    .map(|kv| {
                        let (k, v) = kv.split_once("=\"").unwrap_or_else(|| panic!("bad label {kv} in {line}"));
                        (k.to_string(), v.trim_end_matches('"').to_string())
                    })
                    .collect();
                (name.to_string(), labels)
            }
            None => (series.to_string(), BTreeMap::new()),
        };
        assert!(name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_'), "bad name in {line}");
        let family =
            ["_bucket", "_sum", "_count"].iter().find_map(|s| name.strip_suffix(s)).filter(|f| types.contains(*f));
        let family = family.unwrap_or(&name);
        assert!(help.contains(family) && types.contains(family), "no HELP/TYPE for {family}");
        samples.push(PromSample { name, labels, value });
    }
    samples
}

#[actix_web::test]
async fn metrics_parse_as_prometheus_text_and_equal_the_job_counters_once_it_finished() {
    let (job, _latest) = counting_job();
    let handle = job.start().unwrap();
    let state = WebState::new();
    state.add_job(handle.clone());
    let app = test::init_service(App::new().configure(weir::web::configure(state))).await;
    handle.wait().await.unwrap();

    let resp = test::call_service(&app, test::TestRequest::get().uri("/metrics").to_request()).await;
    assert_eq!(resp.status(), StatusCode::OK);
    let text = String::from_utf8(test::read_body(resp).await.to_vec()).unwrap();
    let samples = parse_prometheus(&text);
    let value = |name: &str, actor: &str| {
        let found: Vec<&PromSample> = samples
            .iter()
            .filter(|s| s.name == name && s.labels.get("actor").map(String::as_str) == Some(actor))
            .collect();
        assert_eq!(found.len(), 1, "{name} of {actor}");
        found[0].value
    };
    let id = handle.id().to_string();
    let metrics = handle.metrics();
    let graph_actors: usize = handle.graph().nodes.iter().map(|n| n.parallelism).sum();
    assert_eq!(metrics.actors.len(), graph_actors);
    for a in &metrics.actors {
        let s = samples.iter().find(|s| s.labels.get("actor") == Some(&a.name)).unwrap();
        assert_eq!(s.labels["job"], "counts");
        assert_eq!(s.labels["job_id"], id);
        assert_eq!(s.labels["node"], a.name.split('#').next().unwrap());
        assert_eq!(s.labels["kind"], format!("{:?}", a.kind).to_lowercase());
        assert_eq!(value("weir_actor_records_in_total", &a.name), a.records_in as f64);
        assert_eq!(value("weir_actor_records_out_total", &a.name), a.records_out as f64);
        assert_eq!(value("weir_actor_batches_in_total", &a.name), a.batches_in as f64);
        assert_eq!(value("weir_actor_batches_out_total", &a.name), a.batches_out as f64);
        assert_eq!(value("weir_actor_late_records_total", &a.name), a.late_records as f64);
        assert_eq!(value("weir_actor_dead_letters_total", &a.name), a.dead_letters as f64);
        assert_eq!(value("weir_actor_open_windows", &a.name), a.open_windows as f64);
        assert_eq!(value("weir_actor_mailbox_capacity", &a.name), a.mailbox_capacity as f64);
        if !a.blocked {
            // (A wait still in progress would keep growing between reads.)
            assert_eq!(value("weir_actor_backpressured_seconds_total", &a.name), a.backpressured.as_secs_f64());
        }
    }
    let running: Vec<_> = samples.iter().filter(|s| s.name == "weir_job_running").collect();
    assert_eq!((running.len(), running[0].value), (1, 0.0));
}

/// Batches posted at once, and lines per batch, by the backpressure test.
const REQUESTS: u64 = 8;
const LINES: u64 = 50;

/// Sleeps per batch: a deliberately slow sink, so the push channel fills.
struct SlowSink {
    inner: CollectSink<Ev>,
}

impl Sink<Ev> for SlowSink {
    fn write(&mut self, batch: &mut Vec<Record<Ev>>) -> Result<(), SinkError> {
        std::thread::sleep(Duration::from_millis(5));
        self.inner.write(batch)
    }
}

/// Posts lines `first..=LINES` of batch `r` (record id `r * LINES + line - 1`)
/// and checks the answer's invariants: the lines taken are exactly those
/// before `retry_from_line`, and a 503 carries `Retry-After`.
async fn post_from(
    client: awc::Client,
    addr: std::net::SocketAddr,
    r: u64,
    first: u64,
) -> (u64, u64, StatusCode, IngestReport) {
    let body: String = (first..=LINES).map(|l| format!("{{\"id\":{},\"ts\":{l}}}\n", r * LINES + l - 1)).collect();
    let mut resp = client
        .post(format!("http://{addr}/ingest"))
        .insert_header(("content-type", "application/x-ndjson"))
        .send_body(body)
        .await
        .expect("the server answers");
    let status = resp.status();
    let retry_after = resp.headers().get("retry-after").map(|v| v.to_str().unwrap().to_string());
    let report: IngestReport = resp.json().await.expect("a JSON report");
    let sent = LINES - first + 1;
    assert_eq!(report.received, sent);
    assert_eq!(report.rejected, 0);
    assert!(report.lists_every_accepted_line());
    let lines: Vec<u64> = report.accepted_line_numbers().collect();
    assert_eq!(lines.len() as u64, report.accepted);
    match status {
        StatusCode::OK => assert_eq!((report.accepted, report.retry_from_line), (sent, None)),
        StatusCode::SERVICE_UNAVAILABLE => {
            assert_eq!(retry_after.as_deref(), Some("2"));
            let k = report.retry_from_line.expect("a 503 names the line to retry from");
            assert_eq!(lines, (1..k).collect::<Vec<_>>());
        }
        other => panic!("unexpected status {other}: {report:?}"),
    }
    (r, first, status, report)
}

#[actix_web::test]
async fn backpressured_ingest_answers_503_with_retry_after_and_retried_lines_reach_the_job_exactly_once() {
    let (source, push) = push_source::<Ev>(8);
    let (inner, got) = CollectSink::new();
    let job = JobBuilder::new("slow").batch_size(4).mailbox_capacity(1);
    job.source("events", source, |e: &Ev| e.ts, WatermarkStrategy::monotonic()).sink("slow", SlowSink { inner });
    let handle = job.build().unwrap().start().unwrap();

    let ingest = Ingest::new(push.clone()).deadline(Duration::from_millis(50)).retry_after(Duration::from_secs(2));
    let server = HttpServer::new(move || App::new().service(ingest.clone().resource("/ingest")))
        .workers(2)
        .disable_signals()
        .bind(("127.0.0.1", 0))
        .unwrap();
    let addr = server.addrs()[0];
    let server = server.run();
    let server_handle = server.handle();
    actix_web::rt::spawn(server);

    // Phase 1: every batch at once; the job cannot keep up.
    let client = awc::Client::new();
    let mut pending = Vec::new();
    for r in 0..REQUESTS {
        pending.push(actix_web::rt::spawn(post_from(client.clone(), addr, r, 1)));
    }
    let mut accepted = Vec::new();
    let mut statuses: HashMap<u16, usize> = HashMap::new();
    let mut retry = Vec::new();
    for p in pending {
        let (r, first, status, report) = p.await.unwrap();
        *statuses.entry(status.as_u16()).or_default() += 1;
        accepted.extend(report.accepted_line_numbers().map(|l| r * LINES + first + l - 2));
        if let Some(k) = report.retry_from_line {
            retry.push((r, first + k - 1));
        }
    }
    eprintln!("answers by status: {statuses:?}; {} of {} records accepted at once", accepted.len(), REQUESTS * LINES);
    assert!(statuses.get(&503).copied().unwrap_or(0) > 0, "no request was backpressured: {statuses:?}");

    // Phase 2: send what was not taken again, from `retry_from_line`,
    // until all is taken (bounded: each try waits at most the deadline).
    for (r, mut first) in retry {
        for attempt in 0.. {
            assert!(attempt < 1_000, "batch {r} still not taken from line {first}");
            let (_, _, status, report) = post_from(client.clone(), addr, r, first).await;
            accepted.extend(report.accepted_line_numbers().map(|l| r * LINES + first + l - 2));
            match report.retry_from_line {
                Some(k) => first += k - 1,
                None => {
                    assert_eq!(status, StatusCode::OK);
                    break;
                }
            }
        }
    }
    let unique: BTreeSet<u64> = accepted.iter().copied().collect();
    assert_eq!(unique.len(), accepted.len(), "a line was accepted twice");
    assert_eq!(unique, (0..REQUESTS * LINES).collect::<BTreeSet<_>>());

    handle.stop();
    handle.wait().await.unwrap();
    server_handle.stop(true).await;
    let delivered: Vec<u64> = got.values().into_iter().map(|e| e.id).collect();
    assert_eq!(delivered.len(), accepted.len(), "each accepted record exactly once");
    assert_eq!(delivered.into_iter().collect::<BTreeSet<_>>(), unique);
    drop(push);
}

// `test` is actix-web's here; the built-in attribute by its full path.
#[::core::prelude::v1::test]
fn web_types_are_send_and_sync() {
    fn send_sync<T: Send + Sync>() {}
    send_sync::<WebState>();
    send_sync::<Ingest<Ev>>();
    send_sync::<LatestWindows<String, u64>>();
    send_sync::<weir::web::LatestSink<String, u64>>();
    send_sync::<IngestReport>();
    send_sync::<weir::web::ShutdownSignals>();
}

/// The sample of `name` whose labels include `job_id`.
fn job_sample(samples: &[PromSample], name: &str, job_id: &str) -> f64 {
    let found: Vec<&PromSample> = samples
        .iter()
        .filter(|s| s.name == name && s.labels.get("job_id").map(String::as_str) == Some(job_id))
        .collect();
    assert_eq!(found.len(), 1, "{name} of job {job_id}");
    found[0].value
}

#[actix_web::test]
async fn metrics_observe_each_checkpoint_once_and_count_past_the_checkpoints_a_job_keeps() {
    let dir = tempfile::tempdir().unwrap();
    let (source, push) = push_source::<Ev>(16);
    let (sink, _got) = CollectSink::new();
    let job = JobBuilder::new("checkpointed")
        .checkpointing(weir::CheckpointConfig::new(dir.path(), Duration::from_millis(5)));
    job.source("events", source, |e: &Ev| e.ts, WatermarkStrategy::monotonic()).sink("out", sink);
    let handle = job.build().unwrap().start().unwrap();
    let state = WebState::with_sample_interval(Duration::from_millis(50));
    state.add_job(handle.clone());
    let app = test::init_service(App::new().configure(weir::web::configure(state))).await;
    let id = handle.id().to_string();
    let scrape = || async {
        let resp = test::call_service(&app, test::TestRequest::get().uri("/metrics").to_request()).await;
        assert_eq!(resp.status(), StatusCode::OK);
        let samples = parse_prometheus(std::str::from_utf8(&test::read_body(resp).await).unwrap());
        let completed = job_sample(&samples, "weir_checkpoints_completed_total", &id);
        let aborted = job_sample(&samples, "weir_checkpoints_aborted_total", &id);
        let observed = job_sample(&samples, "weir_checkpoint_duration_seconds_count", &id);
        (completed, aborted, observed)
    };

    // Well past the 64 checkpoints a job keeps, scraping now and then: each
    // scrape counts every checkpoint so far, and has observed each
    // completed one once.
    let kept = 64.0;
    let deadline = std::time::Instant::now() + Duration::from_secs(60);
    loop {
        let (completed, _, observed) = scrape().await;
        assert_eq!(observed, completed, "each completed checkpoint observed once");
        if completed > 2.0 * kept {
            break;
        }
        assert!(std::time::Instant::now() < deadline, "only {completed} checkpoints completed in 60 s");
        actix_web::rt::time::sleep(Duration::from_millis(100)).await;
    }
    handle.stop();
    handle.wait().await.unwrap();
    drop(push);

    // Finished: two more scrapes show the same totals, nothing observed
    // twice. (A checkpoint pending when the job ended may still complete
    // just after: compare scrapes between two equal summaries.)
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    loop {
        let summary = handle.checkpoint_summary();
        let (first, second) = (scrape().await, scrape().await);
        if handle.checkpoint_summary() == summary {
            assert!(summary.completed > 2 * kept as u64 && summary.recent.len() <= kept as usize, "{summary:?}");
            let want = (summary.completed as f64, summary.aborted as f64, summary.completed as f64);
            assert_eq!((first, second), (want, want));
            break;
        }
        assert!(std::time::Instant::now() < deadline, "checkpoints still recorded 10 s after the job ended");
    }
}
