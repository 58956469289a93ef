//! `weir nats publish`, `weir nats collect`, and what `weir run --nats`
//! reads and writes.

use std::collections::HashMap;
use std::process::ExitCode;
use std::time::{Duration, Instant};

use async_nats::jetstream::consumer::{pull, DeliverPolicy};
use async_nats::jetstream::context::PublishAckFuture;
use async_nats::jetstream::message::PublishMessage;
use bytes::Bytes;
use futures_util::StreamExt;
use weir::nats::{partition_of, partition_subject, Nats, NatsError, END_HEADER};
use weir::{CheckpointId, Record, Sink, SinkError, Snapshot};
use weir_harness::workload::{Checksum, Event, Generator, Row, StreamParams};

use super::Wl;

/// Records per published message.
const FRAME: usize = 1024;
/// Publishes in flight before waiting for acknowledgements.
const IN_FLIGHT: usize = 256;
/// The input stream's duplicate window (a publish that is run again
/// within it adds nothing).
const DUPLICATE_WINDOW: Duration = Duration::from_secs(600);

#[derive(clap::Subcommand, Debug)]
pub(super) enum NatsCommand {
    /// Create stream S with P partitions and write a workload's events to
    /// it, partitioned by key (or by event, `--by event`), 1,024 per
    /// message, then an end marker per partition. Run again, it adds
    /// nothing (message ids).
    Publish(PublishArgs),
    /// Read every result row of stream O (written by `weir run --nats-output
    /// O`), print `duplicates <n>` if any row is there more than once, and
    /// `<rows> <events> <total> <digest>` as the last line.
    Collect(CollectArgs),
}

/// The flags that define the reference stream (docs/workloads.md).
#[derive(clap::Args, Debug, Clone, Copy)]
pub(super) struct StreamFlags {
    /// Number of events N.
    #[arg(long, default_value_t = 20_000_000, value_parser = clap::value_parser!(u64).range(0..=super::MAX_EVENTS))]
    events: u64,
    /// Distinct keys K.
    #[arg(long, default_value_t = 16, value_parser = clap::value_parser!(u64).range(1..))]
    keys: u64,
    /// Events per second of event time R.
    #[arg(long, default_value_t = 100_000, value_parser = clap::value_parser!(u64).range(1..))]
    rate: u64,
    /// Maximum disorder D, ms.
    #[arg(long, default_value_t = 2_000, value_parser = clap::value_parser!(u64).range(0..=super::MAX_MS))]
    disorder: u64,
}

impl From<StreamFlags> for StreamParams {
    fn from(f: StreamFlags) -> Self {
        StreamParams { events: f.events, keys: f.keys, rate: f.rate, disorder: f.disorder }
    }
}

#[derive(clap::Args, Debug)]
pub(super) struct PublishArgs {
    /// Which workload's stream (wl1, wl2 and wl3 share the stream; the
    /// name is for symmetry with `weir run`).
    #[arg(value_enum)]
    workload: Wl,
    #[command(flatten)]
    stream_params: StreamFlags,
    /// NATS server URL (comma-separated URLs of a cluster's servers).
    #[arg(long, value_name = "URL")]
    nats: String,
    /// Stream name S (subjects S.0 … S.{P-1}).
    #[arg(long, value_name = "S")]
    stream: String,
    /// Partitions P: fixed for the life of the stream.
    #[arg(long, value_name = "P", value_parser = clap::value_parser!(u64).range(1..=4096))]
    partitions: u64,
    /// Replicas of the stream (3 on a 3-node cluster).
    #[arg(long, default_value_t = 1, value_parser = clap::value_parser!(u64).range(1..=5))]
    replicas: u64,
    /// What the partitions split: `key` (a partition is a key group) or
    /// `event` (event i goes to partition i mod P, as from producers that
    /// write without a key: a keyed job then repartitions).
    #[arg(long, value_enum, default_value_t = PartitionBy::Key)]
    by: PartitionBy,
}

/// What `weir nats publish` partitions the events by.
#[derive(clap::ValueEnum, Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum PartitionBy {
    /// By key: `partition_of(key, P)`.
    Key,
    /// By event index: event i to partition i mod P.
    Event,
}

impl PartitionBy {
    fn name(self) -> &'static str {
        match self {
            PartitionBy::Key => "key",
            PartitionBy::Event => "event",
        }
    }
}

#[derive(clap::Args, Debug)]
pub(super) struct CollectArgs {
    /// NATS server URL (comma-separated URLs of a cluster's servers).
    #[arg(long, value_name = "URL")]
    nats: String,
    /// Output stream O.
    #[arg(long, value_name = "O")]
    stream: String,
}

pub(super) fn command(cmd: NatsCommand) -> ExitCode {
    let res = match cmd {
        NatsCommand::Publish(a) => publish(a),
        NatsCommand::Collect(a) => collect(a),
    };
    match res {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e}");
            ExitCode::FAILURE
        }
    }
}

fn publish(a: PublishArgs) -> Result<(), NatsError> {
    let nats = Nats::connect(&a.nats)?;
    nats.set_replicas(a.replicas as usize);
    let p = a.partitions as usize;
    nats.create_partitioned_stream(&a.stream, p, DUPLICATE_WINDOW, a.by.name())?;
    let by = a.by;
    let params = StreamParams::from(a.stream_params);
    let stream = a.stream.clone();
    let started = Instant::now();
    let frames = nats.call(move |js| async move {
        let mut acks: std::collections::VecDeque<PublishAckFuture> = std::collections::VecDeque::new();
        let mut parts: Vec<Vec<Event>> = vec![Vec::with_capacity(FRAME); p];
        let mut sent = vec![0u64; p];
        let mut frames = 0u64;
        let ack_of = |ack: PublishAckFuture| async move {
            ack.await.map(|_| ()).map_err(|e| NatsError::jetstream("publishing", e))
        };
        // One message: a frame of partition `i`, or its end marker.
        let send = |i: usize, n: u64, frame: Option<Vec<u8>>| {
            let subject = partition_subject(&stream, i);
            let msg = match frame {
                Some(f) => PublishMessage::build().payload(Bytes::from(f)).message_id(format!("{stream}.{i}.{n}")),
                None => PublishMessage::build().header(END_HEADER, "true").message_id(format!("{stream}.{i}.end")),
            };
            let js = js.clone();
            async move { js.send_publish(subject.clone(), msg).await.map_err(|e| NatsError::jetstream(subject, e)) }
        };
        let flush = |i: usize, parts: &mut [Vec<Event>], sent: &mut [u64]| {
            let frame = rmp_serde::to_vec(&parts[i]).expect("events encode");
            parts[i].clear();
            sent[i] += 1;
            (i, sent[i] - 1, frame)
        };
        for (n, e) in Generator::new(params, 0, 1).enumerate() {
            let i = match by {
                PartitionBy::Key => partition_of(e.key, p),
                PartitionBy::Event => n % p,
            };
            parts[i].push(e);
            if parts[i].len() >= FRAME {
                let (i, n, frame) = flush(i, &mut parts, &mut sent);
                acks.push_back(send(i, n, Some(frame)).await?);
                frames += 1;
                if acks.len() >= IN_FLIGHT {
                    ack_of(acks.pop_front().expect("not empty")).await?;
                }
            }
        }
        for i in 0..p {
            if !parts[i].is_empty() {
                let (i, n, frame) = flush(i, &mut parts, &mut sent);
                acks.push_back(send(i, n, Some(frame)).await?);
                frames += 1;
            }
        }
        while let Some(a) = acks.pop_front() {
            ack_of(a).await?;
        }
        // The end markers only once every record is stored.
        for i in 0..p {
            ack_of(send(i, 0, None).await?).await?;
        }
        Ok(frames)
    })?;
    let secs = started.elapsed().as_secs_f64();
    eprintln!(
        "published {} events to {} ({} partitions, {frames} messages) in {secs:.3} s = {:.2} M events/s",
        params.events,
        a.stream,
        p,
        params.events as f64 / secs / 1e6
    );
    Ok(())
}

fn collect(a: CollectArgs) -> Result<(), NatsError> {
    let nats = Nats::connect(&a.nats)?;
    let name = a.stream.clone();
    let rows: Vec<Row> = nats.call(move |js| async move {
        let mut s = js.get_stream(&name).await.map_err(|e| NatsError::jetstream(format!("stream {name}"), e))?;
        let total = s.info().await.map_err(|e| NatsError::jetstream(format!("stream {name}"), e))?.state.messages;
        let mut rows = Vec::new();
        if total == 0 {
            return Ok(rows);
        }
        // On a cluster that lost a node, the creation may be placed on the
        // dead node and never answered: give it a few seconds, a few times.
        let mut attempt = 0;
        let consumer = loop {
            let created = tokio::time::timeout(
                Duration::from_secs(3),
                s.create_consumer(pull::OrderedConfig {
                    deliver_policy: DeliverPolicy::All,
                    max_batch: 64,
                    max_expires: Duration::from_secs(5),
                    ..Default::default()
                }),
            )
            .await;
            match created {
                Ok(Ok(c)) => break c,
                Ok(Err(e)) if attempt >= 9 => return Err(NatsError::jetstream(format!("a consumer of {name}"), e)),
                Err(_) if attempt >= 9 => {
                    return Err(NatsError::jetstream(format!("a consumer of {name}"), "timed out"));
                }
                _ => attempt += 1,
            }
        };
        let mut messages = consumer.messages().await.map_err(|e| NatsError::jetstream(format!("reading {name}"), e))?;
        let mut read = 0u64;
        while read < total {
            let m = match tokio::time::timeout(Duration::from_secs(30), messages.next()).await {
                Ok(Some(m)) => m.map_err(|e| NatsError::jetstream(format!("reading {name}"), e))?,
                Ok(None) | Err(_) => {
                    return Err(NatsError::jetstream(
                        format!("stream {name}"),
                        format!("only {read} of {total} messages arrived"),
                    ))
                }
            };
            read += 1;
            let frame: Vec<Row> = rmp_serde::from_slice(&m.payload).map_err(|e| {
                NatsError::jetstream(
                    format!("stream {name}, subject {}", m.subject),
                    format!("not a frame of result rows: {e}"),
                )
            })?;
            rows.extend(frame);
        }
        Ok(rows)
    })?;
    let mut seen: HashMap<Row, u64> = HashMap::with_capacity(rows.len());
    let mut sum = Checksum::default();
    for r in &rows {
        *seen.entry(*r).or_default() += 1;
        sum.add(r.window_start, r.key, r.count, r.sum, r.session_end);
    }
    let duplicates: u64 = seen.values().map(|&n| n - 1).sum();
    if duplicates > 0 {
        println!("duplicates {duplicates}");
    }
    println!("{sum}");
    Ok(())
}

/// Two sinks fed the same records (each gets a copy); their snapshots
/// travel together.
#[derive(Debug)]
pub(super) struct Both<A, B>(pub(super) A, pub(super) B);

impl<T: Clone + Send + 'static, A: Sink<T>, B: Sink<T>> Sink<T> for Both<A, B> {
    fn write(&mut self, batch: &mut Vec<Record<T>>) -> Result<(), SinkError> {
        let mut copy = batch.clone();
        self.0.write(batch)?;
        self.1.write(&mut copy)
    }

    fn on_watermark(&mut self, wm: weir::Timestamp) -> Result<(), SinkError> {
        self.0.on_watermark(wm)?;
        self.1.on_watermark(wm)
    }

    fn finish(&mut self) -> Result<(), SinkError> {
        self.0.finish()?;
        self.1.finish()
    }

    fn pre_commit(&mut self, id: CheckpointId) -> Result<Snapshot, SinkError> {
        let a = self.0.pre_commit(id)?;
        let b = self.1.pre_commit(id)?;
        Snapshot::encode(&(a, b)).map_err(|e| SinkError::Other(e.to_string()))
    }

    fn commit(&mut self, id: CheckpointId) -> Result<(), SinkError> {
        self.0.commit(id)?;
        self.1.commit(id)
    }

    fn restore(&mut self, id: CheckpointId, state: &Snapshot) -> Result<(), SinkError> {
        let (a, b): (Snapshot, Snapshot) = state.decode().map_err(|e| SinkError::Other(e.to_string()))?;
        self.0.restore(id, &a)?;
        self.1.restore(id, &b)
    }
}

#[derive(clap::Args, Debug)]
pub(super) struct WorkerArgs {
    /// Which workload.
    #[arg(value_enum)]
    workload: Wl,
    #[command(flatten)]
    stream_params: StreamFlags,
    /// Watermark bound B, ms (default: --disorder).
    #[arg(long, value_parser = clap::value_parser!(u64).range(0..=super::MAX_MS))]
    bound: Option<u64>,
    /// Session gap G, ms (wl3).
    #[arg(long, default_value_t = 500, value_parser = clap::value_parser!(i64).range(1..=super::MAX_MS as i64))]
    gap: i64,
    /// Window-manager instances per partition's job.
    #[arg(long, default_value_t = 1, value_parser = clap::value_parser!(u64).range(1..=256))]
    parallelism: u64,
    /// Cap the rate of the whole input (events per second of wall time,
    /// shared evenly by the partitions).
    #[arg(long, value_parser = super::parse_throttle)]
    throttle: Option<f64>,
    /// Time between checkpoints of each partition, ms.
    #[arg(long, default_value_t = 1000, value_parser = clap::value_parser!(u64).range(1..=86_400_000))]
    checkpoint_interval_ms: u64,
    /// NATS server URL (comma-separated URLs of a cluster's servers).
    #[arg(long, value_name = "URL")]
    nats: String,
    /// Group G: the workers that share the input's partitions.
    #[arg(long, value_name = "G")]
    group: String,
    /// Input stream S (written by `weir nats publish`).
    #[arg(long, value_name = "S")]
    input: String,
    /// Output stream O: every result row, exactly once (`weir nats collect`).
    #[arg(long, value_name = "O")]
    output: String,
    /// A member whose lease is not renewed for this long is gone, ms.
    #[arg(long, default_value_t = 3000, value_parser = clap::value_parser!(u64).range(100..=600_000))]
    lease_ms: u64,
    /// Replicas of the output stream and of the group's buckets (3 on a
    /// 3-node cluster).
    #[arg(long, default_value_t = 1, value_parser = clap::value_parser!(u64).range(1..=5))]
    replicas: u64,
    /// Serve the dashboard, the job API, `GET /api/status` (this worker:
    /// partitions, generation, lag per partition) and `/metrics` on ADDR
    /// (e.g. 127.0.0.1:8080) while the worker runs.
    #[cfg(feature = "web")]
    #[arg(long, value_name = "ADDR")]
    serve: Option<std::net::SocketAddr>,
}

/// Serves `status` (and the jobs of its partitions) on `addr` from a thread
/// of its own with an actix System, for as long as the process lives.
#[cfg(feature = "web")]
fn serve_worker(addr: std::net::SocketAddr, status: weir::nats::WorkerStatus) -> Result<(), NatsError> {
    let failed = |e: String| NatsError::jetstream(format!("serving on {addr}"), e);
    let listener = std::net::TcpListener::bind(addr).map_err(|e| failed(e.to_string()))?;
    let local = listener.local_addr().map_err(|e| failed(e.to_string()))?;
    let state = weir::web::WebState::new();
    state.add_worker(status).map_err(|e| failed(e.to_string()))?;
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::Builder::new()
        .name("weir-web".into())
        .spawn(move || {
            let sys = actix_web::rt::System::new();
            sys.block_on(async move {
                match weir::web::serve_on(listener, state) {
                    Ok(server) => {
                        let _ = tx.send(Ok(()));
                        let _ = server.await;
                    }
                    Err(e) => {
                        let _ = tx.send(Err(e.to_string()));
                    }
                }
            })
        })
        .map_err(|e| failed(e.to_string()))?;
    rx.recv().map_err(|e| failed(e.to_string()))?.map_err(failed)?;
    eprintln!("worker: dashboard at http://{local}/ (worker /api/status, job API /api/jobs, metrics /metrics)");
    Ok(())
}

/// `weir worker`: a member of group G running the workload's job for the
/// partitions of S the group assigns it, until every partition is done.
pub(super) fn worker(a: WorkerArgs) -> ExitCode {
    use weir::nats::{run_worker, Format, Group, JetStreamSink, JetStreamSource, Repartition, WorkerConfig};
    use weir_harness::workload::{self, Workload, WorkloadOutputs, WorkloadSpec};
    let run = || -> Result<weir::nats::WorkerReport, NatsError> {
        let nats = Nats::connect(&a.nats)?;
        nats.set_replicas(a.replicas as usize);
        let partitions = nats.partitions(&a.input)?;
        let group = Group::join(&nats, &a.group, partitions, Duration::from_millis(a.lease_ms))?;
        eprintln!("worker {} joined group {} ({partitions} partitions)", group.member(), a.group);
        let workload = match a.workload {
            Wl::Wl1 => Workload::Wl1,
            Wl::Wl2 => Workload::Wl2,
            Wl::Wl3 => Workload::Wl3,
        };
        let spec = WorkloadSpec {
            stream: StreamParams::from(a.stream_params),
            bound: a.bound.unwrap_or(a.stream_params.disorder) as i64,
            gap: a.gap,
            parallelism: a.parallelism as usize,
            ..WorkloadSpec::new(workload)
        };
        // Keyed by `key`: an input partitioned otherwise crosses workers
        // through the group's repartition stream.
        let repartition = match nats.partitioned_by(&a.input)?.as_deref() {
            Some("key") => None,
            by => {
                let name = format!("{}-by-key", a.group);
                eprintln!(
                    "input {} is partitioned by {}: repartitioning by key through {name}",
                    a.input,
                    by.unwrap_or("an unknown key")
                );
                Some(Repartition::create(&nats, &name, partitions, partitions)?)
            }
        };
        let per_partition = a.throttle.map_or(f64::INFINITY, |t| t / partitions as f64);
        let status = weir::nats::WorkerStatus::new();
        #[cfg(feature = "web")]
        if let Some(addr) = a.serve {
            serve_worker(addr, status.clone())?;
        }
        let config = WorkerConfig {
            checkpoint_interval: Duration::from_millis(a.checkpoint_interval_ms),
            retain: 3,
            status: status.clone(),
        };
        let (input, output) = (a.input.clone(), a.output.clone());
        let mut make = |p: usize, ckpt: weir::CheckpointConfig, guard| -> Result<weir::Job, String> {
            let spec = WorkloadSpec { checkpoint: Some(ckpt), ..spec.clone() };
            let job = workload::job(&spec).configuration("input", format!("nats {input} partition {p}"));
            let (from, input, lag) = (nats.clone(), input.clone(), status.lag(p));
            let events = job.parallel_source(
                "nats",
                1,
                move |_| {
                    weir::Throttled::new(
                        JetStreamSource::<Event>::partition(&from, &input, p, Format::Frames).with_lag(lag.clone()),
                        per_partition,
                    )
                },
                |e: &Event| e.ts,
                workload::watermarks(&spec),
            );
            let events = match &repartition {
                None => events,
                Some(rp) => {
                    events.sink("repartition", rp.sink(p, |e: &Event| e.key));
                    let rp = rp.clone();
                    job.parallel_source(
                        "repartitioned",
                        1,
                        move |_| rp.source::<Event>(p),
                        |e: &Event| e.ts,
                        workload::watermarks(&spec),
                    )
                }
            };
            let sink = JetStreamSink::<Row>::new(&nats, &output, &format!("p{p}")).map_err(|e| e.to_string())?;
            workload::pipeline(events, &spec, &WorkloadOutputs::default(), sink.with_guard(guard));
            job.build().map_err(|e| e.to_string())
        };
        run_worker(&group, &config, &mut make)
    };
    match run() {
        Ok(r) => {
            eprintln!("worker done: finished partitions {:?}, gave up {:?}", r.finished, r.given_up);
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("error: {e}");
            ExitCode::FAILURE
        }
    }
}
