//! weir inside an actix application.
//!
//! The application has two actors of its own:
//!
//! - `Shop` takes orders (here from `main`; in a service, from HTTP
//!   handlers) and pushes them into the job through a `PushHandle`. It
//!   offers each with `try_send`; when the job is backpressured the handle
//!   gives the order back and the shop waits for room (`send(..).await`
//!   inside `ctx.wait`), handling nothing else meanwhile — so its own
//!   mailbox fills and whoever sends to it slows down too.
//! - `Dashboard` receives the job's window results as ordinary actix
//!   messages: the job's sink is `sink_to_recipient(addr.recipient())`.
//!
//! The job runs in the application's own actix System (`Job::start`), its
//! actors on the job's own Arbiter threads (by default one per parallel
//! instance: instance `i` of every node on thread `i`). Dropping the last
//! `PushHandle` ends the input: the final watermark fires the open windows
//! and `JobHandle::wait` returns. Run it with
//! `cargo run --release --example actix_embed`.

use std::time::Duration;

use actix::prelude::*;
use weir::prelude::*;
use weir::{PushHandle, TrySendError};

/// An order, stamped with the time it was placed (event time, ms).
#[derive(Debug, Clone)]
struct Order {
    ts: i64,
    product: String,
    cents: u64,
}

/// (orders, revenue in cents) per product per 10 s window.
type Sales = WindowResult<String, (u64, u64)>;

// ---------------------------------------------------------------- the shop

/// A customer placed an order.
#[derive(Message)]
#[rtype(result = "()")]
struct PlaceOrder(Order);

/// No more orders: let go of the push handle, which ends the job's input.
#[derive(Message)]
#[rtype(result = "()")]
struct CloseShop;

struct Shop {
    push: Option<PushHandle<Order>>,
    pushed: u64,
    waited_for_room: u64,
}

impl Actor for Shop {
    type Context = Context<Self>;
}

impl Handler<PlaceOrder> for Shop {
    type Result = ();

    fn handle(&mut self, PlaceOrder(order): PlaceOrder, ctx: &mut Context<Self>) {
        let Some(push) = &self.push else { return };
        match push.try_send(order) {
            Ok(()) => self.pushed += 1,
            Err(TrySendError::Full(order)) => {
                // The job is backpressured and handed the order back. Wait
                // for room, handling no other message until it is taken.
                self.waited_for_room += 1;
                self.pushed += 1;
                let push = push.clone();
                ctx.wait(
                    async move {
                        if push.send(order).await.is_err() {
                            eprintln!("  [shop] the job has stopped; order not taken");
                        }
                    }
                    .into_actor(self),
                );
            }
            Err(TrySendError::Closed(_)) => eprintln!("  [shop] the job has stopped; order not taken"),
        }
    }
}

impl Handler<CloseShop> for Shop {
    type Result = ();

    fn handle(&mut self, _: CloseShop, _ctx: &mut Context<Self>) {
        // Dropping the last handle ends the job's input.
        self.push = None;
        println!(
            "  [shop] closed after pushing {} orders ({} had to wait for room); input ends",
            self.pushed, self.waited_for_room
        );
    }
}

// ----------------------------------------------------------- the dashboard

#[derive(Default)]
struct Dashboard {
    results: Vec<Sales>,
}

impl Actor for Dashboard {
    type Context = Context<Self>;
}

/// Window results arrive as messages (`WindowResult` is an actix `Message`
/// with `Result = ()`).
impl Handler<Sales> for Dashboard {
    type Result = ();

    fn handle(&mut self, r: Sales, _ctx: &mut Context<Self>) {
        let (orders, cents) = r.value;
        println!(
            "  [dashboard] [{:>2} s, {:>2} s) {:<7} {orders:>2} orders  {:>3}.{:02} €  ({:?})",
            r.window.start / 1_000,
            r.window.end / 1_000,
            r.key,
            cents / 100,
            cents % 100,
            r.timing
        );
        self.results.push(r);
    }
}

/// Asks the dashboard for (windows received, total revenue in cents).
#[derive(Message)]
#[rtype(result = "(usize, u64)")]
struct Totals;

impl Handler<Totals> for Dashboard {
    type Result = MessageResult<Totals>;

    fn handle(&mut self, _: Totals, _ctx: &mut Context<Self>) -> Self::Result {
        MessageResult((self.results.len(), self.results.iter().map(|r| r.value.1).sum()))
    }
}

// -------------------------------------------------------------------- main

/// 90 orders over 60 s of event time, placed a little out of order.
fn orders() -> Vec<Order> {
    const MENU: [(&str, u64); 3] = [("coffee", 320), ("tea", 280), ("cake", 450)];
    (0..90i64)
        .map(|i| {
            let (product, cents) = MENU[(i * i % 7 % 3) as usize];
            // Every fifth order is stamped up to 1.5 s earlier than its
            // neighbours: within the watermark's 2 s bound.
            let ts = i * 666 - if i % 5 == 4 { 1_500 } else { 0 };
            Order { ts: ts.max(0), product: product.to_string(), cents }
        })
        .collect()
}

#[actix::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    println!("weir example: actix_embed — a job inside an actix application\n");

    let dashboard = Dashboard::default().start();
    let (source, push) = push_source::<Order>(16);
    let shop = Shop { push: Some(push), pushed: 0, waited_for_room: 0 }.start();

    let job = JobBuilder::new("shop-analytics");
    // Emit the watermark every 50 ms, so that windows fire while orders are
    // still coming in.
    let strategy = WatermarkStrategy::bounded_out_of_orderness(2_000).with_interval(Duration::from_millis(50));
    job.source("orders", source, |o: &Order| o.ts, strategy)
        .key_by(|o: &Order| o.product.clone(), 2)
        .window("windows", Windows::tumbling(10_000))
        .aggregate((Count, Sum::of(|o: &Order| o.cents)))
        .sink_to_recipient("dashboard", dashboard.clone().recipient());

    // Inside the running System: start, do not block.
    let handle = job.build()?.start()?;
    println!("  [main] job {} started; placing orders (10 ms apart)", handle.name());

    let all = orders();
    let placed = all.len();
    for (i, order) in all.into_iter().enumerate() {
        let ts = order.ts;
        shop.send(PlaceOrder(order)).await?;
        if (i + 1) % 30 == 0 {
            let read = handle.metrics().source_records();
            println!(
                "  [main] {} orders placed (event time {:.1} s); the job has read {read}",
                i + 1,
                ts as f64 / 1_000.0
            );
        }
        actix_rt::time::sleep(Duration::from_millis(10)).await;
    }
    shop.send(CloseShop).await?;

    let report = handle.wait().await?;
    let (windows, cents) = dashboard.send(Totals).await?;
    println!();
    println!(
        "  [main] job finished in {:?}: {placed} orders placed, {} read, {windows} window results, {}.{:02} € in all",
        report.elapsed,
        report.metrics.source_records(),
        cents / 100,
        cents % 100
    );
    println!("  The windows up to the last watermark fired while orders were still coming in;");
    println!("  the rest fired at end of input, when the shop dropped its PushHandle.");
    Ok(())
}
