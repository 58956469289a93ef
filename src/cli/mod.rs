//! `weir run <wl1|wl2|wl3> ...`: runs a WORKLOAD.md job built with the
//! public builder API and prints its checksum as the last line of stdout.

use std::io::IsTerminal;
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use clap::{Parser, Subcommand, ValueEnum};
use indicatif::{ProgressBar, ProgressStyle};
use weir_harness::workload::{self, StreamParams, Workload, WorkloadSpec};

mod bench;
mod nats;

#[derive(Parser, Debug)]
#[command(name = "weir", version, about = "Event-time stream processing on actix: run the reference workloads")]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand, Debug)]
enum Command {
    /// Run a reference workload (docs/workloads.md) and print
    /// `<rows> <events> <total> <digest>` as the last line of stdout.
    Run(RunArgs),
    /// Measure weir against a hand-written baseline on the reference
    /// workloads (each measurement in a child process) and print a table.
    Bench(bench::BenchArgs),
    /// One measurement of `weir bench`, run in a child process.
    #[command(hide = true)]
    BenchOne(bench::BenchOneArgs),
    /// NATS JetStream: publish a workload's events to a partitioned stream,
    /// collect the result rows of an output stream.
    #[command(subcommand)]
    Nats(nats::NatsCommand),
    /// Join group G as a worker: run the workload's job for the partitions
    /// of S the group assigns this process, publish every result row to O
    /// exactly once, and exit 0 once every partition of S has ended and its
    /// output is committed, by whichever worker.
    Worker(nats::WorkerArgs),
}

#[derive(ValueEnum, Debug, Clone, Copy)]
enum Wl {
    /// Keyed tumbling windows (10 s): count and sum.
    Wl1,
    /// Keyed sliding windows (10 s every 2 s).
    Wl2,
    /// Keyed session windows (gap --gap).
    Wl3,
}

/// The workloads `weir run` runs (the NATS commands take WL1-3).
#[derive(ValueEnum, Debug, Clone, Copy)]
enum RunWl {
    /// Keyed tumbling windows (10 s): count and sum.
    Wl1,
    /// Keyed sliding windows (10 s every 2 s).
    Wl2,
    /// Keyed session windows (gap --gap).
    Wl3,
    /// Keyed interval join of the stream's two sides (--interval).
    Wl4,
}

#[derive(clap::Args, Debug)]
struct RunArgs {
    /// Which workload.
    #[arg(value_enum)]
    workload: RunWl,
    /// Number of events N.
    #[arg(long, default_value_t = 20_000_000, value_parser = clap::value_parser!(u64).range(0..=MAX_EVENTS))]
    events: u64,
    /// Distinct keys K.
    #[arg(long, default_value_t = 16, value_parser = clap::value_parser!(u64).range(1..))]
    keys: u64,
    /// Events per second of event time R.
    #[arg(long, default_value_t = 100_000, value_parser = clap::value_parser!(u64).range(1..))]
    rate: u64,
    /// Maximum disorder D, ms.
    #[arg(long, default_value_t = 2_000, value_parser = clap::value_parser!(u64).range(0..=MAX_MS))]
    disorder: u64,
    /// Watermark bound B, ms (default: --disorder). B < D makes some events late.
    #[arg(long, value_parser = clap::value_parser!(u64).range(0..=MAX_MS))]
    bound: Option<u64>,
    /// Session gap G, ms (wl3).
    #[arg(long, default_value_t = 500, value_parser = clap::value_parser!(i64).range(1..=MAX_MS as i64))]
    gap: i64,
    /// Join interval J, ms (wl4): pairs with a.ts - J <= b.ts <= a.ts + J.
    #[arg(long, default_value_t = 500, value_parser = clap::value_parser!(i64).range(0..=MAX_MS as i64))]
    interval: i64,
    /// Source and window-manager (or join) instances P.
    #[arg(long, default_value_t = 1, value_parser = clap::value_parser!(u64).range(1..=256))]
    parallelism: u64,
    /// Records per batch S.
    #[arg(long, default_value_t = 1024, value_parser = clap::value_parser!(u64).range(1..=1_000_000))]
    batch_size: u64,
    /// Cap the total source rate (events per second of wall time, at
    /// least 0.01).
    #[arg(long, value_parser = parse_throttle)]
    throttle: Option<f64>,
    /// Emit source watermarks at most every this many ms (0: after every batch).
    #[arg(long, default_value_t = 0, value_parser = clap::value_parser!(u64).range(0..=86_400_000))]
    watermark_interval_ms: u64,
    /// Watermark alignment: a generator instance more than this many ms of
    /// event time ahead of the slowest other one waits for it (0: off).
    #[arg(long, value_name = "MS", default_value_t = 1000, value_parser = clap::value_parser!(u64).range(0..=MAX_MS))]
    max_drift_ms: u64,
    /// Checkpoint into DIR, and resume from the latest complete checkpoint
    /// there; with --output, FILE then holds every row exactly once however
    /// often earlier runs were killed.
    #[arg(long, value_name = "DIR")]
    checkpoint_dir: Option<PathBuf>,
    /// Time between checkpoints, ms.
    #[arg(long, default_value_t = 1000, value_parser = clap::value_parser!(u64).range(1..=86_400_000))]
    checkpoint_interval_ms: u64,
    /// Also write every result row as CSV to FILE.
    #[arg(long, value_name = "FILE")]
    output: Option<PathBuf>,
    /// NATS server URL, for --input and --nats-output.
    #[arg(long, value_name = "URL")]
    nats: Option<String>,
    /// Read the events from the partitioned JetStream stream S (written by
    /// `weir nats publish`), one source instance per partition, instead of
    /// generating them; --events, --keys, --rate and --disorder are then
    /// the stream's business.
    #[arg(long, value_name = "S", requires = "nats")]
    input: Option<String>,
    /// Also publish every result row to JetStream stream O, exactly once
    /// with --checkpoint-dir (read them with `weir nats collect`).
    #[arg(long, value_name = "O", requires = "nats")]
    nats_output: Option<String>,
    /// Checkpoint into JetStream (KV bucket weir-ckpt-NAME, object store
    /// weir-snap-NAME on --nats) instead of --checkpoint-dir, and resume
    /// from there: any process that reaches the server can resume the job.
    #[arg(long, value_name = "NAME", requires = "nats", conflicts_with = "checkpoint_dir")]
    checkpoint_nats: Option<String>,
    /// Run the actors on N threads, instance i of every node on thread
    /// i % N (0: a thread per actor instance; default: one per instance of
    /// the widest node, i.e. --parallelism; with --input, the number of
    /// cores or --parallelism if larger).
    #[arg(long, value_name = "N", value_parser = clap::value_parser!(u64).range(0..=1024))]
    slots: Option<u64>,
    /// Serve the dashboard, the job API (/api/jobs) and Prometheus metrics
    /// (/metrics) on ADDR while the job runs, e.g. 127.0.0.1:8080.
    #[cfg(feature = "web")]
    #[arg(long, value_name = "ADDR")]
    serve: Option<std::net::SocketAddr>,
    /// With --serve: keep serving this many seconds after the job ends, so
    /// that its final state can be seen. (Ctrl-C or SIGTERM while the job
    /// runs stops it: it drains, the results of what was read are printed
    /// and written, and the server stops.)
    #[cfg(feature = "web")]
    #[arg(long, value_name = "SECS", default_value_t = 10, requires = "serve", value_parser = clap::value_parser!(u64).range(0..=86_400))]
    linger_secs: u64,
}

/// The most events a run takes (event `i`'s time is `i * 1000 / R`, which
/// must not overflow).
const MAX_EVENTS: u64 = 1_000_000_000_000_000;
/// The longest duration flag, ms (about 31,700 years): beyond it event-time
/// arithmetic could overflow.
const MAX_MS: u64 = 1_000_000_000_000_000;
/// The lowest --throttle, events per second.
const MIN_THROTTLE: f64 = 0.01;

/// `--throttle`: a finite number of events per second, at least
/// [`MIN_THROTTLE`].
fn parse_throttle(s: &str) -> Result<f64, String> {
    let t: f64 = s.trim().parse().map_err(|e| format!("{e}: expected a number of events per second"))?;
    if !t.is_finite() || t < MIN_THROTTLE {
        return Err(format!("must be a finite number of events per second, at least {MIN_THROTTLE}"));
    }
    Ok(t)
}

pub(crate) fn main() -> ExitCode {
    let cli = Cli::parse();
    tracing_subscriber::fmt()
        .with_env_filter(tracing_subscriber::EnvFilter::try_from_default_env().unwrap_or_else(|_| "warn".into()))
        .with_writer(std::io::stderr)
        .init();
    match cli.command {
        Command::Run(args) => run(args),
        Command::Bench(args) => bench::bench(args),
        Command::BenchOne(args) => bench::bench_one(args),
        Command::Nats(cmd) => nats::command(cmd),
        Command::Worker(args) => nats::worker(args),
    }
}

fn run(args: RunArgs) -> ExitCode {
    let workload = match args.workload {
        RunWl::Wl1 => Workload::Wl1,
        RunWl::Wl2 => Workload::Wl2,
        RunWl::Wl3 => Workload::Wl3,
        RunWl::Wl4 => Workload::Wl4,
    };
    if workload == Workload::Wl4 && (args.input.is_some() || args.nats_output.is_some()) {
        eprintln!("error: wl4 reads the generator and writes locally: --input and --nats-output take wl1, wl2 or wl3");
        return ExitCode::from(2);
    }
    let mut spec = WorkloadSpec {
        stream: StreamParams { events: args.events, keys: args.keys, rate: args.rate, disorder: args.disorder },
        bound: args.bound.unwrap_or(args.disorder) as i64,
        gap: args.gap,
        interval: args.interval,
        parallelism: args.parallelism as usize,
        batch_size: args.batch_size as usize,
        throttle: args.throttle,
        watermark_interval: Duration::from_millis(args.watermark_interval_ms),
        max_drift: (args.max_drift_ms > 0).then_some(args.max_drift_ms.min(i64::MAX as u64) as i64),
        output: args.output,
        placement: match args.slots {
            Some(0) => Some(weir::Placement::ThreadPerActor),
            Some(n) => Some(weir::Placement::Slots(n as usize)),
            // One source instance per partition would otherwise get a
            // thread each: as many threads as cores is faster.
            None if args.input.is_some() => Some(weir::Placement::Slots(
                std::thread::available_parallelism().map_or(2, |n| n.get()).max(args.parallelism as usize),
            )),
            None => None,
        },
        checkpoint: args
            .checkpoint_dir
            .map(|dir| weir::CheckpointConfig::new(dir, Duration::from_millis(args.checkpoint_interval_ms))),
        ..WorkloadSpec::new(workload)
    };
    let nats = match args.nats.as_deref().map(weir::nats::Nats::connect).transpose() {
        Ok(n) => n,
        Err(e) => {
            eprintln!("error: {e}");
            return ExitCode::FAILURE;
        }
    };
    if let (Some(name), Some(n)) = (&args.checkpoint_nats, &nats) {
        let every = Duration::from_millis(args.checkpoint_interval_ms);
        spec.checkpoint = Some(
            weir::CheckpointConfig::new(format!("nats-{name}"), every)
                .with_backend(weir::nats::JetStreamBackend::factory(n, name, 3)),
        );
    }
    let (builder, outputs) = if let Some(nats) = &nats {
        match nats_job(&spec, nats, args.input.as_deref(), args.nats_output.as_deref()) {
            Ok(b) => b,
            Err(e) => {
                eprintln!("error: {e}");
                return ExitCode::FAILURE;
            }
        }
    } else {
        workload::build(&spec)
    };
    let job = match builder.build() {
        Ok(j) => j,
        Err(e) => {
            eprintln!("error: {e}");
            return ExitCode::from(2);
        }
    };
    #[cfg(feature = "web")]
    if let Some(addr) = args.serve {
        let (report, stopped_by) =
            match served::run(job, addr, Duration::from_secs(args.linger_secs), progress_bar(spec.stream.events)) {
                Ok(r) => r,
                Err(e) => {
                    eprintln!("error: {e}");
                    return ExitCode::FAILURE;
                }
            };
        if let Some(signal) = stopped_by {
            eprintln!(
                "weir: stopped by {signal} after reading {} of the {} events; the results cover every event read",
                report.metrics.source_records(),
                spec.stream.events
            );
        }
        return print_result(&report, &spec, workload, &outputs);
    }
    let handle = match job.spawn() {
        Ok(h) => h,
        Err(e) => {
            eprintln!("error: {e}");
            return ExitCode::FAILURE;
        }
    };
    let bar = if args.input.is_none() { progress_bar(spec.stream.events) } else { None };
    while !handle.is_finished() {
        if let Some(bar) = &bar {
            bar.set_position(handle.metrics().source_records());
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    if let Some(bar) = &bar {
        bar.finish_and_clear();
    }
    let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().expect("a tokio runtime");
    let report = match rt.block_on(handle.wait()) {
        Ok(r) => r,
        Err(e) => {
            eprintln!("error: {e}");
            return ExitCode::FAILURE;
        }
    };
    print_result(&report, &spec, workload, &outputs)
}

/// The reference job of `spec` reading from and/or writing to NATS
/// JetStream: from the partitions of stream `input` (one source instance
/// each) instead of the generator, and to stream `output` as well as the
/// checksum.
fn nats_job(
    spec: &WorkloadSpec,
    nats: &weir::nats::Nats,
    input: Option<&str>,
    output: Option<&str>,
) -> Result<(weir::JobBuilder, workload::WorkloadOutputs), weir::nats::NatsError> {
    use weir::nats::{Format, JetStreamSink, JetStreamSource};
    let job = workload::job(spec)
        .configuration("input", input.map_or("generator".to_string(), |s| format!("nats {s}")))
        .configuration("nats_output", output.unwrap_or("none"));
    let events = match input {
        Some(input) => {
            let partitions = nats.partitions(input)?;
            let (from, input) = (nats.clone(), input.to_string());
            let per_partition = spec.throttle.map_or(f64::INFINITY, |t| t / partitions as f64);
            job.parallel_source(
                "nats",
                partitions,
                move |p| {
                    let source = JetStreamSource::<workload::Event>::partition(&from, &input, p, Format::Frames);
                    weir::Throttled::new(source, per_partition)
                },
                |e: &workload::Event| e.ts,
                workload::watermarks(spec),
            )
        }
        None => workload::generator(&job, spec),
    };
    let outputs = workload::WorkloadOutputs::default();
    let checksum = workload::checksum_sink(spec, &outputs);
    match output {
        Some(o) => {
            let sink = nats::Both(checksum, JetStreamSink::<workload::Row>::new(nats, o, "results")?);
            workload::pipeline(events, spec, &outputs, sink);
        }
        None => workload::pipeline(events, spec, &outputs, checksum),
    }
    Ok((job, outputs))
}

/// A progress bar over `events` when stderr is a terminal.
fn progress_bar(events: u64) -> Option<ProgressBar> {
    std::io::stderr().is_terminal().then(|| {
        let bar = ProgressBar::new(events);
        bar.set_style(
            ProgressStyle::with_template(
                "{spinner} [{elapsed_precise}] {wide_bar} {human_pos}/{human_len} events ({per_sec}, eta {eta})",
            )
            .expect("a valid template")
            .progress_chars("=> "),
        );
        bar
    })
}

/// Prints the throughput line (stderr), the late count and the checksum
/// (the last line of stdout).
fn print_result(
    report: &weir::JobReport,
    spec: &WorkloadSpec,
    workload: Workload,
    outputs: &workload::WorkloadOutputs,
) -> ExitCode {
    let result = outputs.result();
    let secs = report.elapsed.as_secs_f64();
    match report.resumed_from {
        // (Fewer than asked for when the job was stopped early.)
        None => eprintln!(
            "{:?}: {} events in {:.3} s = {:.2} M events/s (parallelism {}, batch {})",
            workload,
            report.metrics.source_records(),
            secs,
            report.metrics.source_records() as f64 / secs / 1e6,
            spec.parallelism,
            spec.batch_size
        ),
        // The events before the checkpoint were read by earlier runs.
        Some(seq) => {
            let read = report.metrics.source_records();
            eprintln!(
                "{:?}: resumed from checkpoint {seq}; this run read {read} of the {} events in {:.3} s = {:.2} M events/s (parallelism {}, batch {})",
                workload,
                spec.stream.events,
                secs,
                read as f64 / secs / 1e6,
                spec.parallelism,
                spec.batch_size
            )
        }
    }
    // The late count is checkpointed: after a resume it covers the whole job.
    if result.late > 0 {
        println!("late {}", result.late);
    }
    println!("{}", result.checksum);
    ExitCode::SUCCESS
}

/// `weir run ... --serve ADDR`: the job and the web server in one actix
/// System.
#[cfg(feature = "web")]
mod served {
    use std::net::{SocketAddr, TcpListener};
    use std::time::Duration;

    use indicatif::ProgressBar;
    use weir::web::{ShutdownSignals, WebState};
    use weir::{Job, JobReport};

    /// Starts `job` and a server with the dashboard, the job API and
    /// `/metrics` on `addr` in a new System. If the job ends by itself,
    /// keeps serving for `linger` (a signal cuts it short). On SIGINT or
    /// SIGTERM while it runs, stops the job and lets it drain (a second
    /// signal cancels it). Then stops the server and returns the report
    /// and the signal that stopped the job, if one did.
    pub(super) fn run(
        job: Job,
        addr: SocketAddr,
        linger: Duration,
        bar: Option<ProgressBar>,
    ) -> Result<(JobReport, Option<&'static str>), String> {
        let listener = TcpListener::bind(addr).map_err(|e| format!("cannot listen on {addr}: {e}"))?;
        let local = listener.local_addr().map_err(|e| format!("cannot listen on {addr}: {e}"))?;
        let sys = actix_web::rt::System::new();
        let span = tracing::info_span!("weir_run", %local);
        sys.block_on(tracing::Instrument::instrument(async move {
            // Before anything starts: from here on a signal drains the job
            // instead of ending the process (the server leaves signals alone).
            let mut signals = ShutdownSignals::new().map_err(|e| format!("cannot handle signals: {e}"))?;
            let handle = job.start().map_err(|e| e.to_string())?;
            tracing::info!(job = %handle.name(), id = %handle.id(), "job started");
            let state = WebState::new();
            state.add_job(handle.clone());
            let server = weir::web::serve_on(listener, state).map_err(|e| format!("cannot serve on {local}: {e}"))?;
            let server_handle = server.handle();
            actix_web::rt::spawn(server);
            eprintln!("weir: dashboard at http://{local}/ (job API /api/jobs, metrics /metrics)");
            let mut tick = actix_web::rt::time::interval(Duration::from_millis(100));
            let stopped_by = loop {
                tokio::select! {
                    signal = signals.recv() => break Some(signal),
                    _ = tick.tick() => {}
                }
                if handle.is_finished() {
                    break None;
                }
                if let Some(bar) = &bar {
                    bar.set_position(handle.metrics().source_records());
                }
            };
            if let Some(bar) = &bar {
                bar.finish_and_clear();
            }
            let report = match stopped_by {
                Some(signal) => {
                    eprintln!("weir: {signal}: stopping the job; it drains (open windows fire, output is written); {signal} again cancels it");
                    signals.drain(&handle).await
                }
                None => handle.wait().await,
            };
            if stopped_by.is_none() && !linger.is_zero() {
                eprintln!("weir: the job has ended; serving http://{local}/ for {} s more (Ctrl-C to quit)", linger.as_secs());
                tokio::select! {
                    _ = actix_web::rt::time::sleep(linger) => {}
                    _ = signals.recv() => {}
                }
            }
            server_handle.stop(true).await;
            report.map(|r| (r, stopped_by)).map_err(|e| e.to_string())
        }, span))
    }
}
