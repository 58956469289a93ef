//! A clickstream service: one actix-web application ingests clicks and
//! orders and runs one job over them.
//!
//! - `POST /clicks` and `POST /orders` take JSON lines (`weir::web::Ingest`,
//!   each into its own push source);
//! - the clicks are **enriched through `map_async`**: each asks a page
//!   directory — an actix actor of the service — for its page's section,
//!   with at most 64 lookups in flight and a 2 s timeout, failed lookups
//!   going to a dead-letter output; then they are **fanned out**
//!   (`Stream::fan_out`) to three consumers:
//!   - clicks per section in tumbling 10 s windows, served at
//!     `GET /api/sections`;
//!   - **user sessions** from a keyed process function (per-user state and an
//!     event-time timer that closes a session 5 s after its last click),
//!     served at `GET /api/sessions`;
//! - orders are **interval-joined** with the same user's clicks of the 30 s
//!   before them (the clicks that led to the order), served at
//!   `GET /api/attributed`;
//! - `GET /` is the dashboard, `/api/jobs` the job API, `/metrics` Prometheus.
//!
//! By default it binds 127.0.0.1:0, posts a minute of generated traffic to
//! itself, stops the job (which drains: open windows and sessions close),
//! reads the three result endpoints and checks each against a count made
//! here, then exits: `cargo run --release --example clickstream`.

use std::collections::BTreeMap;
use std::net::TcpListener;
use std::time::Duration;

use actix::{Actor, Context, Handler, Message};
use actix_web::{web, App, HttpResponse, HttpServer};
use serde::{Deserialize, Serialize};
use weir::prelude::*;
use weir::process::{KeyedContext, KeyedProcess, TimeDomain};
use weir::web::{Ingest, IngestReport, WebState};

/// A click: a user viewed a page at `ts` (event time, ms).
#[derive(Debug, Clone, Serialize, Deserialize)]
struct Click {
    user: u32,
    page: String,
    ts: i64,
}

/// An order placed by a user at `ts`.
#[derive(Debug, Clone, Serialize, Deserialize)]
struct Order {
    user: u32,
    amount: u32,
    ts: i64,
}

/// A click with its page's section.
#[derive(Debug, Clone, Serialize, Deserialize)]
struct Enriched {
    user: u32,
    section: String,
    ts: i64,
}

/// A user session: clicks no more than `GAP` ms apart.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
struct Session {
    user: u32,
    start: i64,
    end: i64,
    clicks: u32,
}

/// An order and a click of the same user in the 30 s before it.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
struct Attributed {
    user: u32,
    order_ts: i64,
    click_ts: i64,
    section: String,
}

const PAGES: [(&str, &str); 4] = [("/", "home"), ("/docs", "docs"), ("/shop/a", "shop"), ("/shop/b", "shop")];
const USERS: u32 = 20;
const CLICKS: i64 = 3_200;
/// A session ends after this long without a click, ms.
const GAP: i64 = 5_000;
/// Orders are attributed to the clicks of this long before them, ms.
const ATTRIBUTION: i64 = 30_000;

/// Click `i`, if there is one: every 25 ms, users in turn; odd users are
/// away every other 20 s of event time, so their sessions break.
fn click(i: i64) -> Option<Click> {
    let (user, ts) = ((i % USERS as i64) as u32, i * 25);
    if user % 2 == 1 && (ts / 20_000) % 2 == 1 {
        return None;
    }
    let page = PAGES[(i as usize / USERS as usize + 3 * user as usize) % PAGES.len()].0;
    Some(Click { user, page: page.to_string(), ts })
}

/// Order `j`: every 1.5 s, by user `j % USERS`.
fn order(j: i64) -> Order {
    Order { user: (j * 7 % USERS as i64) as u32, amount: 10 + (j % 5) as u32, ts: 2_000 + j * 1_500 }
}

fn section(page: &str) -> &'static str {
    PAGES.iter().find(|(p, _)| *p == page).map_or("other", |(_, s)| s)
}

/// The service's page directory, an actix actor the job asks per click
/// (it stands for a database or another service).
struct PageDirectory;

impl Actor for PageDirectory {
    type Context = Context<Self>;
}

/// Which section is this page in?
#[derive(Message)]
#[rtype(result = "String")]
struct SectionOf(String);

impl Handler<SectionOf> for PageDirectory {
    type Result = String;

    fn handle(&mut self, SectionOf(page): SectionOf, _ctx: &mut Context<Self>) -> String {
        section(&page).to_string()
    }
}

/// Sessions per user: each click extends the user's open session or, more
/// than `GAP` after its last click, closes it and opens another; an
/// event-time timer closes a session `GAP` after its last click. (Clicks
/// of one user arrive in order here; a late-tolerant version would keep a
/// map of sessions as `Windows::session` does.)
struct Sessionizer;

impl KeyedProcess for Sessionizer {
    type Key = u32;
    type In = Enriched;
    type Out = Session;
    type State = Option<Session>;

    fn process(&mut self, click: Record<Enriched>, cx: &mut KeyedContext<'_, Self>) {
        let user = *cx.key();
        let ts = click.ts;
        let ended = match cx.state() {
            Some(s) if ts <= s.end + GAP => {
                s.end = s.end.max(ts);
                s.clicks += 1;
                None
            }
            open => open.replace(Session { user, start: ts, end: ts, clicks: 1 }),
        };
        if let Some(s) = ended {
            cx.emit(s.end, s);
        }
        cx.register_event_timer(ts + GAP + 1);
    }

    fn on_timer(&mut self, at: i64, _domain: TimeDomain, cx: &mut KeyedContext<'_, Self>) {
        // A later click moved the session's end: its own timer closes it.
        if cx.peek().and_then(|s| s.as_ref()).is_some_and(|s| s.end + GAP + 1 == at) {
            if let Some(s) = cx.state().take() {
                cx.emit(s.end, s);
            }
            cx.clear();
        }
    }
}

#[actix_web::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    println!("weir example: clickstream — map_async, fan-out, sessions, an interval join, in an actix-web service\n");
    let (click_source, clicks_in) = push_source::<Click>(256);
    let (order_source, orders_in) = push_source::<Order>(256);
    let (sections_sink, sections) = CollectSink::new();
    let (sessions_sink, sessions) = CollectSink::new();
    let (attributed_sink, attributed) = CollectSink::new();
    let (failed_sink, failed) = CollectSink::new();
    let directory = PageDirectory.start();

    let job = JobBuilder::new("clickstream");
    let strategy = WatermarkStrategy::bounded_out_of_orderness(500).with_interval(Duration::from_millis(50));
    let clicks = job
        .source("clicks", click_source, |c: &Click| c.ts, strategy)
        .map_async("enrich", 64, Duration::from_secs(2))
        .dead_letters(|failed| failed.sink("failed-lookups", failed_sink))
        .apply(move |c: Click| {
            let directory = directory.clone();
            async move {
                let section = directory.send(SectionOf(c.page)).await.map_err(|e| format!("page directory: {e}"))?;
                Ok::<_, String>(Enriched { user: c.user, section, ts: c.ts })
            }
        });
    let orders = job.source("orders", order_source, |o: &Order| o.ts, strategy);
    let [by_section, by_user, for_orders] = clicks.fan_out();
    by_section
        .key_by(|c: &Enriched| c.section.clone(), 2)
        .window("sections", Windows::tumbling(10_000))
        .aggregate(Count)
        .sink("section-counts", sections_sink);
    by_user
        .key_by(|c: &Enriched| c.user, 2)
        .process("sessions", |_| Sessionizer)
        .sink("session-results", sessions_sink);
    orders
        .key_by(|o: &Order| o.user, 2)
        .interval_join("attribution", for_orders.key_by(|c: &Enriched| c.user, 2))
        .between(-ATTRIBUTION, 0)
        .apply(|user: &u32, o: &Order, c: &Enriched| Attributed {
            user: *user,
            order_ts: o.ts,
            click_ts: c.ts,
            section: c.section.clone(),
        })
        .sink("attributed", attributed_sink);
    let handle = job.build()?.start()?;

    let state = WebState::new();
    state.add_job(handle.clone());
    let listener = TcpListener::bind("127.0.0.1:0")?;
    let addr = listener.local_addr()?;
    let (s1, s2, s3) = (sections.clone(), sessions.clone(), attributed.clone());
    let server = HttpServer::new(move || {
        let (s1, s2, s3) = (s1.clone(), s2.clone(), s3.clone());
        App::new()
            .configure(weir::web::configure(state.clone()))
            .service(Ingest::new(clicks_in.clone()).resource("/clicks"))
            .service(Ingest::new(orders_in.clone()).resource("/orders"))
            .route(
                "/api/sections",
                web::get().to(move || {
                    let rows: Vec<(String, i64, u64)> =
                        s1.values().into_iter().map(|r| (r.key, r.window.start, r.value)).collect();
                    async move { HttpResponse::Ok().json(rows) }
                }),
            )
            .route(
                "/api/sessions",
                web::get().to(move || {
                    let rows = s2.values();
                    async move { HttpResponse::Ok().json(rows) }
                }),
            )
            .route(
                "/api/attributed",
                web::get().to(move || {
                    let rows = s3.values();
                    async move { HttpResponse::Ok().json(rows) }
                }),
            )
    })
    .workers(2)
    .disable_signals()
    .listen(listener)?
    .run();
    let server_handle = server.handle();
    actix_web::rt::spawn(server);

    let base = format!("http://{addr}");
    let client = awc::Client::new();
    let all_clicks: Vec<Click> = (0..CLICKS).filter_map(click).collect();
    let last = all_clicks.iter().map(|c| c.ts).max().unwrap_or(0);
    let all_orders: Vec<Order> = (0..).map(order).take_while(|o| o.ts <= last).collect();
    post_all(&client, &format!("{base}/clicks"), &all_clicks).await?;
    post_all(&client, &format!("{base}/orders"), &all_orders).await?;
    println!("  [client] posted {} clicks and {} orders", all_clicks.len(), all_orders.len());

    // Stopping drains: every click and order taken flows through, open
    // windows fire, the final watermark closes every session.
    handle.stop();
    let report = handle.wait().await?;
    println!("  [main] job drained: {} records read", report.metrics.source_records());

    let got_sections: Vec<(String, i64, u64)> = client.get(format!("{base}/api/sections")).send().await?.json().await?;
    let mut got_sessions: Vec<Session> = client.get(format!("{base}/api/sessions")).send().await?.json().await?;
    let mut got_attributed: Vec<Attributed> = client.get(format!("{base}/api/attributed")).send().await?.json().await?;

    // The checks, counted here from what was posted.
    let mut want_sections = BTreeMap::new();
    for c in &all_clicks {
        *want_sections.entry((section(&c.page).to_string(), c.ts - c.ts.rem_euclid(10_000))).or_insert(0u64) += 1;
    }
    let mut got_sections_map = BTreeMap::new();
    for (s, w, n) in &got_sections {
        got_sections_map.insert((s.clone(), *w), *n);
    }
    assert_eq!(got_sections_map, want_sections, "clicks per section and window");
    let mut want_sessions = Vec::new();
    for user in 0..USERS {
        let mut open: Option<Session> = None;
        for c in all_clicks.iter().filter(|c| c.user == user) {
            match &mut open {
                Some(s) if c.ts <= s.end + GAP => {
                    s.end = c.ts;
                    s.clicks += 1;
                }
                _ => want_sessions.extend(open.replace(Session { user, start: c.ts, end: c.ts, clicks: 1 })),
            }
        }
        want_sessions.extend(open);
    }
    want_sessions.sort();
    got_sessions.sort();
    assert_eq!(got_sessions, want_sessions, "sessions per user");
    let mut want_attributed: Vec<Attributed> = Vec::new();
    for o in &all_orders {
        for c in all_clicks.iter().filter(|c| c.user == o.user && o.ts - ATTRIBUTION <= c.ts && c.ts <= o.ts) {
            let section = section(&c.page).to_string();
            want_attributed.push(Attributed { user: o.user, order_ts: o.ts, click_ts: c.ts, section });
        }
    }
    want_attributed.sort();
    got_attributed.sort();
    assert_eq!(got_attributed, want_attributed, "clicks attributed to orders");
    assert_eq!(failed.len(), 0, "every page lookup answered: {:?}", failed.values().first());

    println!("  [client] GET /api/sections: {} (section, window) counts", got_sections.len());
    println!("  [client] GET /api/sessions: {} sessions of {USERS} users", got_sessions.len());
    println!("  [client] GET /api/attributed: {} (order, click) pairs", got_attributed.len());
    println!(
        "  [job] {} clicks enriched through map_async (page directory actor), {} failed lookups",
        all_clicks.len(),
        failed.len()
    );
    println!("\n  All three match what was posted: every click reached every consumer once, every pair once.");
    server_handle.stop(true).await;
    Ok(())
}

/// POSTs `items` as JSON lines in chunks, resending from where a busy
/// (backpressured) answer stopped.
async fn post_all<T: Serialize>(
    client: &awc::Client,
    url: &str,
    items: &[T],
) -> Result<(), Box<dyn std::error::Error>> {
    let mut i = 0;
    while i < items.len() {
        let chunk = &items[i..(i + 200).min(items.len())];
        let body: String = chunk.iter().map(|x| serde_json::to_string(x).expect("serializes") + "\n").collect();
        let mut resp = client.post(url).insert_header(("content-type", "application/x-ndjson")).send_body(body).await?;
        let report: IngestReport = resp.json().await?;
        match report.retry_from_line {
            Some(k) => {
                i += k as usize - 1;
                actix_web::rt::time::sleep(Duration::from_millis(20)).await;
            }
            None if resp.status().is_success() => i += chunk.len(),
            None => return Err(format!("{url} answered {}: {:?}", resp.status(), report.error).into()),
        }
    }
    Ok(())
}
