//! Fault injection, in the manner of Flink's
//! `EventTimeWindowCheckpointingITCase`: one job runs a pipeline per window
//! kind — tumbling, sliding, session and count windows over a file of JSON
//! lines with late records and malformed lines — while sources, operators
//! and sinks fail from inside the job (panics and errors) at seeded
//! points. After every failure the job is built again on the same
//! checkpoint directory, resumes from its last complete checkpoint and
//! runs on, until it completes. The exactly-once files it leaves must then
//! hold exactly what a failure-free run computes, which is computed here
//! by brute force (`fault_injection/model.rs`): every window's result,
//! every late record and every dead letter, each once — every input line
//! ends up in exactly one of them (in several windows for sliding ones).

use crate::support;

mod faults;
mod model;

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Once};
use std::time::{Duration, Instant};

use serde::de::DeserializeOwned;
use weir::prelude::*;
use weir::{CheckpointConfig, ExactlyOnceFileSink, JobError};

use faults::{Check, Faults, FaultySink, Paced, PassOn, MARK};
use model::{expected, Acc, Ev, Fingerprint, Input, Kind, Rng, Row, BATCH, BOUND};

/// Time between two source batches: a run takes about `LINES / BATCH`
/// times this, long enough for checkpoints to complete during it.
const PACE: Duration = Duration::from_millis(3);
/// Time between checkpoints.
const CHECKPOINT_EVERY: Duration = Duration::from_millis(25);
/// Faults per run.
const FAULTS: usize = 5;

/// One test run: its inputs, the faults, and where the job writes.
struct World {
    dir: tempfile::TempDir,
    inputs: Vec<(Kind, Input)>,
    faults: Faults,
    /// Records each pipeline's operator and actor operator counted (in
    /// their checkpointed state), reported when their input ends.
    tallies: Vec<(Kind, Arc<AtomicU64>, Arc<AtomicU64>)>,
    /// Checkpoints completed in the current run.
    commits: Arc<AtomicU64>,
}

impl World {
    fn new(seed: u64) -> Self {
        let dir = tempfile::tempdir().expect("a temporary directory");
        let inputs: Vec<(Kind, Input)> =
            Kind::ALL.iter().map(|&k| (k, Input::generate(seed ^ (k as u64 + 1) << 32))).collect();
        for (kind, input) in &inputs {
            std::fs::write(input_path(dir.path(), *kind), input.bytes()).expect("the input is written");
        }
        let input = |kind: Kind| &inputs.iter().find(|(k, _)| *k == kind).expect("every kind has an input").1;
        let mut rng = Rng::new(seed);
        let faults = Faults::plan(
            &mut rng,
            FAULTS,
            |kind| input(kind).valid().map(|e| e.id).collect(),
            |kind| expected(kind, input(kind)).rows,
        );
        let tallies = Kind::ALL.iter().map(|&k| (k, Arc::default(), Arc::default())).collect();
        World { dir, inputs, faults, tallies, commits: Arc::default() }
    }

    fn path(&self, file: &str) -> PathBuf {
        self.dir.path().join(file)
    }

    /// The job, built afresh for every run.
    fn job(&self) -> weir::Job {
        let config = CheckpointConfig::new(self.path("checkpoints"), CHECKPOINT_EVERY);
        let job = JobBuilder::new("faults").batch_size(BATCH).checkpointing(config);
        for (kind, op, check) in &self.tallies {
            self.pipeline(&job, *kind, Arc::clone(op), Arc::clone(check));
        }
        job.dead_letters().sink("dead-letters", ExactlyOnceFileSink::json_lines(self.path("dead.jsonl")));
        job.build().expect("a valid topology")
    }

    /// source → operator → actor operator → key_by(2) → windows of `kind`
    /// → exactly-once results; late records to an exactly-once file.
    fn pipeline(&self, job: &JobBuilder, kind: Kind, op: Arc<AtomicU64>, check: Arc<AtomicU64>) {
        let name = kind.name();
        let source = Paced {
            inner: FileSource::<Ev>::json_lines(input_path(self.dir.path(), kind)),
            every: PACE,
            kind,
            faults: self.faults.clone(),
            commits: Arc::clone(&self.commits),
            next: None,
            timer: None,
        };
        let strategy = WatermarkStrategy::bounded_out_of_orderness(BOUND).with_interval(Duration::ZERO);
        let (f1, f2) = (self.faults.clone(), self.faults.clone());
        let mut windowed = job
            .source(&format!("{name}-source"), source, |e: &Ev| e.ts, strategy)
            .transform(&format!("{name}-op"), move |_| PassOn {
                kind,
                faults: f1.clone(),
                seen: 0,
                tally: Arc::clone(&op),
            })
            .actor_operator(&format!("{name}-check"), move |_| Check {
                kind,
                faults: f2.clone(),
                seen: 0,
                tally: Arc::clone(&check),
            })
            .key_by(|e: &Ev| e.key, 2)
            .window(&format!("{name}-windows"), kind.windows());
        if kind.has_late_data() {
            let late = ExactlyOnceFileSink::json_lines(self.path(&format!("late-{name}.jsonl")));
            windowed = windowed.late_data(|stream| stream.sink(&format!("{name}-late"), late));
        }
        let results = FaultySink {
            inner: ExactlyOnceFileSink::json_lines(self.path(&format!("results-{name}.jsonl"))),
            kind,
            faults: self.faults.clone(),
            armed: None,
            commits: Arc::clone(&self.commits),
        };
        windowed
            .aggregate(Fingerprint)
            .map(|r: WindowResult<u32, Acc>| Row {
                key: r.key,
                start: r.window.start,
                end: r.window.end,
                timing: r.timing,
                count: r.value.count,
                sum: r.value.sum,
                digest: r.value.digest,
            })
            .sink(&format!("{name}-results"), results);
    }
}

fn input_path(dir: &Path, kind: Kind) -> PathBuf {
    dir.join(format!("input-{}.jsonl", kind.name()))
}

/// The lines of a JSON-lines file, decoded.
fn read_lines<T: DeserializeOwned>(path: &Path) -> Vec<T> {
    let text = std::fs::read_to_string(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    text.lines().map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("{}: {e}: {l}", path.display()))).collect()
}

/// The actor and message of a failure this test injected, or `None` for
/// any other failure.
fn injected(e: &JobError) -> Option<(&str, String)> {
    let (actor, message) = match e {
        JobError::Panicked { actor, message, .. } => (actor.as_str(), message.clone()),
        JobError::Operator { actor, source } => (actor.as_str(), source.to_string()),
        JobError::Sink { actor, source } => (actor.as_str(), source.to_string()),
        _ => return None,
    };
    message.contains(MARK).then_some((actor, message))
}

/// Injected panics are expected: they are not printed (other panics are).
fn quiet_injected_panics() {
    static ONCE: Once = Once::new();
    ONCE.call_once(|| {
        let default = std::panic::take_hook();
        std::panic::set_hook(Box::new(move |info| {
            let message = info.payload().downcast_ref::<String>().map(String::as_str).unwrap_or_default();
            if !message.contains(MARK) {
                default(info);
            }
        }));
    });
}

/// How the runs of one test went.
#[derive(Debug, Default)]
struct Runs {
    /// The checkpoint each run resumed from (`None`: from the start).
    resumed: Vec<Option<u64>>,
    failures: Vec<String>,
}

/// Runs the job until it completes, at most one run more than the faults
/// can strike; every failure must be an injected one, naming the actor it
/// was injected in.
fn run_to_completion(world: &World) -> Runs {
    let max_runs = world.faults.iter().map(|f| f.times as usize).sum::<usize>() + 1;
    let mut runs = Runs::default();
    loop {
        assert!(runs.resumed.len() < max_runs, "the job did not complete in {max_runs} runs: {runs:?}");
        world.commits.store(0, Ordering::SeqCst);
        let handle = world.job().spawn().expect("the job starts");
        runs.resumed.push(handle.resumed_from());
        let outcome = support::within(Duration::from_secs(60), move || handle.wait_blocking());
        let error = match outcome {
            Ok(_) => return runs,
            Err(e) => e,
        };
        let Some((actor, message)) = injected(&error) else {
            panic!("a failure that was not injected: {error}; {runs:?}")
        };
        let n: usize = message[message.find(MARK).expect("marked") + MARK.len()..]
            .split(':')
            .next()
            .and_then(|n| n.parse().ok())
            .unwrap_or_else(|| panic!("a fault number in {message:?}"));
        let fault = world.faults.iter().nth(n).expect("a planned fault");
        assert_eq!(
            actor,
            format!("{}#0", fault.place.node(fault.kind)),
            "the failure names the actor of fault {n}: {error}"
        );
        runs.failures.push(message);
    }
}

/// The job's output for `kind`, checked against the brute-force model.
fn check_pipeline(world: &World, kind: Kind, input: &Input) {
    let name = kind.name();
    let want = expected(kind, input);
    let mut rows: Vec<Row> = read_lines(&world.path(&format!("results-{name}.jsonl")));
    rows.sort_by_key(|r| (r.key, r.start, r.end));
    let mut late: Vec<u64> = if kind.has_late_data() {
        read_lines::<(u32, Ev)>(&world.path(&format!("late-{name}.jsonl"))).into_iter().map(|(_, e)| e.id).collect()
    } else {
        Vec::new()
    };
    late.sort_unstable();
    let dead: Vec<weir::DeadLetter> = read_lines(&world.path("dead.jsonl"));
    let origin = input_path(world.dir.path(), kind).display().to_string();
    let mut dead: Vec<u64> = dead.into_iter().filter(|d| d.origin == origin).map(|d| d.line).collect();
    dead.sort_unstable();

    assert!(!want.late.is_empty() || !kind.has_late_data(), "{name}: the input has late records");
    assert_eq!(dead, input.malformed_lines(), "{name}: every malformed line is a dead letter, once");
    assert_eq!(late, want.late, "{name}: exactly the late records went to the late output, once");
    assert_eq!(rows.len(), want.rows.len(), "{name}: as many results as windows");
    for (got, want) in rows.iter().zip(&want.rows) {
        assert_eq!(got, want, "{name}: each window's result is exact");
    }

    // Accounting: each valid record is in a result or late; with windows
    // that partition the records, in exactly one.
    let valid = input.valid().count() as u64;
    assert_eq!(valid + dead.len() as u64, input.lines.len() as u64);
    if kind.partitions() {
        let in_results: u64 = rows.iter().map(|r| r.count).sum();
        let digest = |ids: &mut dyn Iterator<Item = u64>| {
            ids.fold(0u64, |d, id| d.wrapping_add(weir_harness::workload::mix(id)))
        };
        let result_digest = rows.iter().fold(0u64, |d, r| d.wrapping_add(r.digest));
        assert_eq!(in_results + late.len() as u64, valid, "{name}: every record is in one result or late");
        assert_eq!(
            result_digest.wrapping_add(digest(&mut late.iter().copied())),
            digest(&mut input.valid().map(|e| e.id)),
            "{name}: the records in results and the late ones are the input's records"
        );
    }

    let (_, op, check) = world.tallies.iter().find(|(k, _, _)| *k == kind).expect("a tally per kind");
    assert_eq!(op.load(Ordering::SeqCst), valid, "{name}: the operator's checkpointed count saw each record once");
    assert_eq!(
        check.load(Ordering::SeqCst),
        valid,
        "{name}: the actor operator's checkpointed count saw each record once"
    );
}

fn survives_injected_faults(seed: u64) {
    quiet_injected_panics();
    let started = Instant::now();
    let world = World::new(seed);
    let runs = run_to_completion(&world);
    for (kind, input) in &world.inputs {
        check_pipeline(&world, *kind, input);
    }
    for fault in world.faults.iter() {
        assert!(fault.struck() >= 1, "fault {fault} struck: the record or row it waits for passed its place");
    }
    assert!(!runs.failures.is_empty(), "the job failed at least once");
    // Sources read nothing before a checkpoint of their run completed.
    assert!(runs.resumed[1..].iter().all(Option::is_some), "every restart resumed from a checkpoint: {runs:?}");
    eprintln!(
        "seed {seed:#x}: {} runs in {:.1} s, resumed from {:?}; faults: {}",
        runs.resumed.len(),
        started.elapsed().as_secs_f64(),
        runs.resumed,
        world.faults.iter().map(|f| format!("[{f}: struck {}]", f.struck())).collect::<Vec<_>>().join(" ")
    );
}

#[test]
fn every_window_kind_is_exact_after_injected_failures_seed_1() {
    survives_injected_faults(0x5EED_0001);
}

#[test]
fn every_window_kind_is_exact_after_injected_failures_seed_2() {
    survives_injected_faults(0x5EED_0002);
}

#[test]
fn every_window_kind_is_exact_after_injected_failures_seed_3() {
    survives_injected_faults(0x5EED_0003);
}
