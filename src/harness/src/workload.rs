//! The reference workloads of WORKLOAD.md (in full in `docs/workloads.md`):
//! a deterministic event stream that any engine can generate identically,
//! three keyed window jobs over it (WL1 tumbling, WL2 sliding, WL3 session),
//! and the order-independent result checksum, so results can be compared
//! with other engines to the last bit. (WL4, the interval join, is not
//! implemented yet.)
//!
//! Event `i` is a pure function of `i` ([`event`]), so `p` parallel
//! generator instances each produce their share of `0..N` without
//! coordination: instance `s` takes the blocks of [`BLOCK`] consecutive
//! events whose block number is `s` modulo `p`, so that all instances move
//! through event time together.

use std::fmt;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};

use serde::{Deserialize, Serialize};
use strength_reduce::StrengthReducedU64;
use weir_actors::prelude::*;
use weir_actors::{
    CheckpointConfig, CheckpointId, Sink, SinkError, Snapshot, SnapshotError, Source, SourceBatch, SourceStatus,
    TransactionalFile,
};

/// SplitMix64's increment.
pub const GAMMA: u64 = 0x9E37_79B9_7F4A_7C15;
/// The stream's seed.
pub const SEED: u64 = 0x5EED;
/// Events per block of a generator instance's share.
pub const BLOCK: u64 = 1024;

/// SplitMix64's finaliser (the mix of the checksum).
#[inline]
pub fn mix(mut z: u64) -> u64 {
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^ (z >> 31)
}

/// Parameters of the event stream.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct StreamParams {
    /// Number of events `N`.
    pub events: u64,
    /// Distinct keys `K`.
    pub keys: u64,
    /// Events per second of event time `R`.
    pub rate: u64,
    /// Maximum disorder `D`, ms.
    pub disorder: u64,
}

impl Default for StreamParams {
    fn default() -> Self {
        StreamParams { events: 20_000_000, keys: 16, rate: 100_000, disorder: 2_000 }
    }
}

/// One event of the stream.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Event {
    /// Event time, ms.
    pub ts: i64,
    /// `z % K`.
    pub key: u64,
    /// `(z >> 20) % 1000`.
    pub value: i64,
}

/// Event `i` of the stream.
#[inline]
pub fn event(i: u64, p: &StreamParams) -> Event {
    let z = mix(SEED.wrapping_add((i + 1).wrapping_mul(GAMMA)));
    let key = z % p.keys;
    let value = ((z >> 20) % 1000) as i64;
    let jitter = if p.disorder == 0 { 0 } else { ((z >> 40) % p.disorder) as i64 };
    let ts = ((i * 1000 / p.rate) as i64 - jitter).max(0);
    Event { ts, key, value }
}

/// [`event`] with its divisors prepared once: the same events, cheaper (a
/// division by a number known only at run time costs tens of cycles; a
/// prepared one is a multiply and a shift).
#[derive(Debug, Clone, Copy)]
pub struct EventFn {
    keys: StrengthReducedU64,
    rate: StrengthReducedU64,
    disorder: Option<StrengthReducedU64>,
}

impl EventFn {
    /// Prepared for `p` (`keys` and `rate` of 0 are taken as 1).
    pub fn new(p: &StreamParams) -> Self {
        EventFn {
            keys: StrengthReducedU64::new(p.keys.max(1)),
            rate: StrengthReducedU64::new(p.rate.max(1)),
            disorder: (p.disorder > 0).then(|| StrengthReducedU64::new(p.disorder)),
        }
    }

    /// Event `i` of the stream; equal to [`event`]`(i, p)`.
    #[inline]
    pub fn event(&self, i: u64) -> Event {
        let z = mix(SEED.wrapping_add((i + 1).wrapping_mul(GAMMA)));
        let key = z % self.keys;
        let value = ((z >> 20) % 1000) as i64;
        let jitter = self.disorder.map_or(0, |d| ((z >> 40) % d) as i64);
        let ts = ((i * 1000 / self.rate) as i64 - jitter).max(0);
        Event { ts, key, value }
    }

    /// Event `i` and its WL4 side, `(z >> 10) & 1` (0: stream A, 1: B).
    #[inline]
    pub fn event_and_side(&self, i: u64) -> (Event, u8) {
        let z = mix(SEED.wrapping_add((i + 1).wrapping_mul(GAMMA)));
        let key = z % self.keys;
        let value = ((z >> 20) % 1000) as i64;
        let jitter = self.disorder.map_or(0, |d| ((z >> 40) % d) as i64);
        let ts = ((i * 1000 / self.rate) as i64 - jitter).max(0);
        (Event { ts, key, value }, ((z >> 10) & 1) as u8)
    }
}

/// The WL4 side of event `i`: 0 for stream A, 1 for stream B.
pub fn side(i: u64) -> u8 {
    let z = mix(SEED.wrapping_add((i + 1).wrapping_mul(GAMMA)));
    ((z >> 10) & 1) as u8
}

/// Generates one instance's share of the stream.
#[derive(Debug, Clone)]
pub struct Generator {
    params: StreamParams,
    events: EventFn,
    parallelism: u64,
    /// Next event to produce and the end of its block.
    next: u64,
    block_end: u64,
    /// Only the events of this WL4 side (`None`: all).
    side: Option<u8>,
}

impl Generator {
    /// Instance `instance` of `parallelism` (0-based).
    pub fn new(params: StreamParams, instance: usize, parallelism: usize) -> Self {
        let start = (instance as u64 * BLOCK).min(params.events);
        Generator {
            params,
            events: EventFn::new(&params),
            parallelism: parallelism.max(1) as u64,
            next: start,
            block_end: (start + BLOCK).min(params.events),
            side: None,
        }
    }

    /// Only the events of WL4 side `side` (0: stream A, 1: stream B) of
    /// this share; positions stay event indices.
    pub fn side(mut self, side: u8) -> Self {
        self.side = Some(side);
        self
    }

    /// Moves to this share's next block once the current one is done;
    /// `false` when there is none.
    #[inline]
    fn next_block(&mut self) -> bool {
        if self.next >= self.block_end {
            let next_block = self.block_end.div_ceil(BLOCK) - 1 + self.parallelism;
            self.next = (next_block * BLOCK).min(self.params.events);
            self.block_end = (self.next + BLOCK).min(self.params.events);
        }
        self.next < self.block_end
    }

    /// The next event of this share, if any.
    #[inline]
    pub fn next_event(&mut self) -> Option<Event> {
        loop {
            if !self.next_block() {
                return None;
            }
            let i = self.next;
            self.next += 1;
            match self.side {
                None => return Some(self.events.event(i)),
                Some(side) => {
                    let (e, s) = self.events.event_and_side(i);
                    if s == side {
                        return Some(e);
                    }
                }
            }
        }
    }
}

impl Iterator for Generator {
    type Item = Event;
    fn next(&mut self) -> Option<Event> {
        self.next_event()
    }
}

impl Source for Generator {
    type Item = Event;

    fn poll_batch(&mut self, _cx: &mut Context<'_>, out: &mut SourceBatch<'_, Event>) -> Poll<SourceStatus> {
        if self.side.is_some() {
            for _ in 0..out.remaining() {
                match self.next_event() {
                    Some(e) => out.push(e),
                    None => return Poll::Ready(SourceStatus::Exhausted),
                }
            }
            return Poll::Ready(SourceStatus::Ready);
        }
        // Whole runs of the current block without a per-event block check;
        // `next_event` moves on to the next block.
        let mut room = out.remaining() as u64;
        while room > 0 {
            if self.next < self.block_end {
                let end = self.block_end.min(self.next + room);
                // A range mapped is an exact-size iterator: `extend` writes
                // without a capacity check per event.
                let events = &self.events;
                out.extend((self.next..end).map(|i| events.event(i)));
                room -= end - self.next;
                self.next = end;
            } else {
                match self.next_event() {
                    Some(e) => out.push(e),
                    None => return Poll::Ready(SourceStatus::Exhausted),
                }
                room -= 1;
            }
        }
        Poll::Ready(SourceStatus::Ready)
    }

    /// The next event index and the end of its block.
    fn position(&self) -> Option<Snapshot> {
        Snapshot::encode(&(self.next, self.block_end)).ok()
    }

    fn seek(&mut self, position: &Snapshot) -> Result<(), SnapshotError> {
        let (next, block_end): (u64, u64) = position.decode()?;
        if block_end > self.params.events || next > block_end {
            return Err(SnapshotError::Mismatch {
                what: "generator position".into(),
                reason: format!(
                    "event {next} of a block ending at {block_end} is not in a stream of {} events",
                    self.params.events
                ),
            });
        }
        self.next = next;
        self.block_end = block_end;
        Ok(())
    }
}

/// The checksum of WORKLOAD.md over result rows; order-independent.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Checksum {
    /// Number of rows.
    pub rows: u64,
    /// Sum of counts.
    pub events: u64,
    /// Sum of sums.
    pub total: u64,
    /// Sum of the mixed rows.
    pub digest: u64,
}

impl Checksum {
    /// Adds a row. `session_end` for WL3 rows.
    pub fn add(&mut self, window_start: i64, key: u64, count: u64, sum: i64, session_end: Option<i64>) {
        let mut arg = (window_start as u64)
            .wrapping_mul(1_000_003)
            .wrapping_add(key.wrapping_mul(8191))
            .wrapping_add(count.wrapping_mul(131))
            .wrapping_add(sum as u64);
        if let Some(end) = session_end {
            arg = arg.wrapping_add((end as u64).wrapping_mul(31));
        }
        self.rows += 1;
        self.events = self.events.wrapping_add(count);
        self.total = self.total.wrapping_add(sum as u64);
        self.digest = self.digest.wrapping_add(mix(arg));
    }

    /// Folds another partial checksum in.
    pub fn merge(&mut self, o: &Checksum) {
        self.rows += o.rows;
        self.events = self.events.wrapping_add(o.events);
        self.total = self.total.wrapping_add(o.total);
        self.digest = self.digest.wrapping_add(o.digest);
    }
}

impl fmt::Display for Checksum {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} {} {} {}", self.rows, self.events, self.total, self.digest)
    }
}

/// Which reference job.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum Workload {
    /// Keyed tumbling windows of 10 s: count and sum.
    Wl1,
    /// Keyed sliding windows of 10 s every 2 s.
    Wl2,
    /// Keyed session windows with a gap.
    Wl3,
    /// Keyed interval join of the stream's two sides.
    Wl4,
}

/// Everything that defines a reference run.
#[derive(Debug, Clone, PartialEq)]
pub struct WorkloadSpec {
    /// The job.
    pub workload: Workload,
    /// The stream.
    pub stream: StreamParams,
    /// Watermark bound `B` (default: `D`).
    pub bound: i64,
    /// Session gap (WL3).
    pub gap: i64,
    /// Join interval `J` (WL4): pairs with `a.ts - J <= b.ts <= a.ts + J`.
    pub interval: i64,
    /// Source and window-manager instances.
    pub parallelism: usize,
    /// Records per batch.
    pub batch_size: usize,
    /// Total source rate cap, events per second of wall time.
    pub throttle: Option<f64>,
    /// How often sources emit their watermark (default: after every batch,
    /// so that `B < D` makes events late as WORKLOAD.md describes).
    pub watermark_interval: std::time::Duration,
    /// Watermark alignment of the parallel generator instances: the largest
    /// event-time drift, ms, between them (`None`: off). Default 1,000:
    /// without it one instance can run far ahead of the other and fill
    /// the window managers with state that cannot fire yet.
    pub max_drift: Option<i64>,
    /// Also write every result row as CSV here (exactly once when
    /// checkpointing).
    pub output: Option<PathBuf>,
    /// Checkpoint (and resume) as configured.
    pub checkpoint: Option<CheckpointConfig>,
    /// How the job's actors are placed on threads (`None`: the runtime's
    /// default, a slot per parallel instance).
    pub placement: Option<weir_actors::Placement>,
}

impl WorkloadSpec {
    /// The defaults of WORKLOAD.md for `workload`.
    pub fn new(workload: Workload) -> Self {
        let stream = StreamParams::default();
        WorkloadSpec {
            workload,
            stream,
            bound: stream.disorder as i64,
            gap: 500,
            interval: 500,
            parallelism: 1,
            batch_size: 1024,
            throttle: None,
            watermark_interval: std::time::Duration::ZERO,
            max_drift: Some(1_000),
            output: None,
            checkpoint: None,
            placement: None,
        }
    }
}

/// One result row: `(window_start, key, count, sum, session_end)`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct Row {
    /// Window (or session) start.
    pub window_start: i64,
    /// Key.
    pub key: u64,
    /// Events in the window.
    pub count: u64,
    /// Sum of their values.
    pub sum: i64,
    /// Session end (WL3 only).
    pub session_end: Option<i64>,
}

/// One WL4 result row: a matching pair.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct JoinRow {
    /// The A event's time.
    pub a_ts: i64,
    /// The key.
    pub key: u64,
    /// The A event's value.
    pub a_value: i64,
    /// The B event's time.
    pub b_ts: i64,
    /// The B event's value.
    pub b_value: i64,
}

/// A result row: how it counts in the checksum and how it reads as CSV.
pub trait ResultRow: Send + 'static {
    /// Adds this row to `sum` (WORKLOAD.md's checksum).
    fn add_to(&self, sum: &mut Checksum);
    /// Appends this row as a CSV line, without the newline.
    fn write_csv(&self, line: &mut Vec<u8>);
}

impl ResultRow for Row {
    fn add_to(&self, sum: &mut Checksum) {
        sum.add(self.window_start, self.key, self.count, self.sum, self.session_end);
    }
    fn write_csv(&self, line: &mut Vec<u8>) {
        use std::io::Write;
        // Numbers only: no quoting needed.
        let _ = write!(line, "{},{},{},{}", self.window_start, self.key, self.count, self.sum);
        if let Some(end) = self.session_end {
            let _ = write!(line, ",{end}");
        }
    }
}

impl ResultRow for JoinRow {
    /// WORKLOAD.md: `window_start = a_ts`, `count = 1`,
    /// `sum = a_value * 1000 + b_value`, and `b_ts * 31` added to the
    /// argument of mix.
    fn add_to(&self, sum: &mut Checksum) {
        sum.add(self.a_ts, self.key, 1, self.a_value * 1000 + self.b_value, Some(self.b_ts));
    }
    fn write_csv(&self, line: &mut Vec<u8>) {
        use std::io::Write;
        let _ = write!(line, "{},{},{},{},{}", self.a_ts, self.key, self.a_value, self.b_ts, self.b_value);
    }
}

/// Where result rows go as CSV: a plain file, or an exactly-once one that
/// shows only rows of completed checkpoints.
#[derive(Debug)]
enum CsvOut {
    Plain { path: PathBuf, writer: Option<std::io::BufWriter<std::fs::File>>, header: Vec<u8> },
    ExactlyOnce(TransactionalFile),
}

/// Accumulates the checksum of the rows it receives (its checkpointed
/// state) and, optionally, writes them as CSV.
#[derive(Debug)]
pub struct ChecksumSink<R = Row> {
    sum: Arc<Mutex<Checksum>>,
    csv: Option<CsvOut>,
    line: Vec<u8>,
    rows: std::marker::PhantomData<fn(R)>,
}

impl<R> ChecksumSink<R> {
    /// A sink adding to `sum`, writing CSV to `csv` if given, headed by
    /// `header` (exactly once when `exactly_once`: rows appear when their
    /// checkpoint completes).
    pub fn with_header(sum: Arc<Mutex<Checksum>>, csv: Option<PathBuf>, header: &str, exactly_once: bool) -> Self {
        let header = format!("{header}\n").into_bytes();
        let csv = csv.map(|path| {
            if exactly_once {
                CsvOut::ExactlyOnce(TransactionalFile::new(path, header))
            } else {
                CsvOut::Plain { path, writer: None, header }
            }
        });
        ChecksumSink { sum, csv, line: Vec::new(), rows: std::marker::PhantomData }
    }

    fn path(&self) -> PathBuf {
        match &self.csv {
            Some(CsvOut::Plain { path, .. }) => path.clone(),
            Some(CsvOut::ExactlyOnce(t)) => t.path().to_path_buf(),
            None => PathBuf::new(),
        }
    }

    fn io(&self, e: std::io::Error) -> SinkError {
        SinkError::Io { path: self.path(), source: e }
    }

    fn current(&self) -> Checksum {
        self.sum.lock().map(|s| *s).unwrap_or_default()
    }
}

impl ChecksumSink<Row> {
    /// A sink of WL1-3 rows adding to `sum`, writing CSV to `csv` if given
    /// (exactly once when `exactly_once`: rows appear when their checkpoint
    /// completes).
    pub fn new(sum: Arc<Mutex<Checksum>>, csv: Option<PathBuf>, sessions: bool, exactly_once: bool) -> Self {
        let header = if sessions { "session_start,key,count,sum,session_end" } else { "window_start,key,count,sum" };
        Self::with_header(sum, csv, header, exactly_once)
    }
}

impl<R: ResultRow> Sink<R> for ChecksumSink<R> {
    fn write(&mut self, batch: &mut Vec<Record<R>>) -> Result<(), SinkError> {
        use std::io::Write;
        let mut part = Checksum::default();
        self.line.clear();
        for r in batch.iter() {
            r.value.add_to(&mut part);
            if self.csv.is_some() {
                r.value.write_csv(&mut self.line);
                self.line.push(b'\n');
            }
        }
        batch.clear();
        if let Ok(mut s) = self.sum.lock() {
            s.merge(&part);
        }
        let res = match &mut self.csv {
            None => Ok(()),
            Some(CsvOut::Plain { path, writer, header }) => (|| {
                if writer.is_none() {
                    let mut w = std::io::BufWriter::new(std::fs::File::create(&*path)?);
                    w.write_all(header)?;
                    *writer = Some(w);
                }
                writer.as_mut().expect("created above").write_all(&self.line)
            })(),
            Some(CsvOut::ExactlyOnce(t)) => t.writer().and_then(|w| w.write_all(&self.line)),
        };
        res.map_err(|e| self.io(e))
    }

    fn finish(&mut self) -> Result<(), SinkError> {
        use std::io::Write;
        if matches!(self.csv, Some(CsvOut::Plain { writer: None, .. })) {
            self.write(&mut Vec::new())?;
        }
        let res = match &mut self.csv {
            None => Ok(()),
            Some(CsvOut::Plain { writer, .. }) => writer.as_mut().map_or(Ok(()), |w| w.flush()),
            Some(CsvOut::ExactlyOnce(t)) => t.finish(),
        };
        res.map_err(|e| self.io(e))
    }

    fn pre_commit(&mut self, id: CheckpointId) -> Result<Snapshot, SinkError> {
        if let Some(CsvOut::ExactlyOnce(t)) = &mut self.csv {
            let res = t.pre_commit(id.seq);
            res.map_err(|e| self.io(e))?;
        }
        Snapshot::encode(&self.current()).map_err(|e| SinkError::Other(e.to_string()))
    }

    fn commit(&mut self, id: CheckpointId) -> Result<(), SinkError> {
        if let Some(CsvOut::ExactlyOnce(t)) = &mut self.csv {
            let res = t.commit(id.seq);
            res.map_err(|e| self.io(e))?;
        }
        Ok(())
    }

    fn restore(&mut self, id: CheckpointId, state: &Snapshot) -> Result<(), SinkError> {
        let restored: Checksum =
            state.decode().map_err(|e| SinkError::Other(format!("checkpoint {}: the checksum state: {e}", id.seq)))?;
        if let Ok(mut s) = self.sum.lock() {
            *s = restored;
        }
        if let Some(CsvOut::ExactlyOnce(t)) = &mut self.csv {
            let res = t.restore(id.seq);
            res.map_err(|e| self.io(e))?;
        }
        Ok(())
    }
}

/// Counts late events; the count is checkpointed, so that after a resume
/// it covers the whole job.
#[derive(Debug)]
struct LateCounter(Arc<std::sync::atomic::AtomicU64>);

impl Sink<(u64, Event)> for LateCounter {
    fn write(&mut self, batch: &mut Vec<Record<(u64, Event)>>) -> Result<(), SinkError> {
        self.0.fetch_add(batch.len() as u64, std::sync::atomic::Ordering::Relaxed);
        batch.clear();
        Ok(())
    }

    fn pre_commit(&mut self, _id: CheckpointId) -> Result<Snapshot, SinkError> {
        Snapshot::encode(&self.0.load(std::sync::atomic::Ordering::Relaxed))
            .map_err(|e| SinkError::Other(e.to_string()))
    }

    fn restore(&mut self, id: CheckpointId, state: &Snapshot) -> Result<(), SinkError> {
        let late: u64 =
            state.decode().map_err(|e| SinkError::Other(format!("checkpoint {}: the late count: {e}", id.seq)))?;
        self.0.store(late, std::sync::atomic::Ordering::Relaxed);
        Ok(())
    }
}

/// What a reference run produced.
#[derive(Debug, Clone)]
pub struct WorkloadResult {
    /// Checksum over the on-time rows.
    pub checksum: Checksum,
    /// Late events (routed to the late-data output).
    pub late: u64,
}

/// Handles to read a reference job's results once it has finished.
#[derive(Debug, Clone, Default)]
pub struct WorkloadOutputs {
    sum: Arc<Mutex<Checksum>>,
    late: Arc<std::sync::atomic::AtomicU64>,
}

impl WorkloadOutputs {
    /// The results so far (final once the job has finished).
    pub fn result(&self) -> WorkloadResult {
        WorkloadResult {
            checksum: self.sum.lock().map(|s| *s).unwrap_or_default(),
            late: self.late.load(std::sync::atomic::Ordering::Relaxed),
        }
    }
}

/// Builds the reference job of `spec` with the public builder API.
pub fn build(spec: &WorkloadSpec) -> (JobBuilder, WorkloadOutputs) {
    let job = job(spec);
    let outputs = WorkloadOutputs::default();
    if spec.workload == Workload::Wl4 {
        let (a, b) = (side_generator(&job, spec, 0), side_generator(&job, spec, 1));
        let sink = join_sink(spec, &outputs);
        join_pipeline(a, b, spec, &outputs, sink);
        return (job, outputs);
    }
    let events = generator(&job, spec);
    let sink = checksum_sink(spec, &outputs);
    pipeline(events, spec, &outputs, sink);
    (job, outputs)
}

/// WL4's stream A (`side` 0, node `a`) or B (`side` 1, node `b`):
/// `spec.parallelism` generator instances each, every one producing the
/// events of its share that are on that side.
pub fn side_generator(job: &JobBuilder, spec: &WorkloadSpec, side: u8) -> Stream<Event> {
    let p = spec.parallelism;
    let params = spec.stream;
    // Each side's sources produce half the events: each gets half the cap.
    let per_instance = spec.throttle.map(|t| t / 2.0 / p.max(1) as f64);
    let mut strategy = watermarks(spec);
    if let Some(drift) = spec.max_drift {
        // Both sides in one group: a side that ran ahead would only fill
        // the join's state, whose watermark is the minimum of both.
        strategy = strategy.with_alignment_group("wl4-sides", drift);
    }
    job.parallel_source(
        if side == 0 { "a" } else { "b" },
        p,
        move |i| {
            let g = Generator::new(params, i, p).side(side);
            Throttled::new(g, per_instance.unwrap_or(f64::INFINITY))
        },
        |e: &Event| e.ts,
        strategy,
    )
}

/// The sink of WL4's pairs: folds them into `outputs`' checksum, writes
/// them to `spec.output` as CSV `a_ts,key,a_value,b_ts,b_value` (exactly
/// once when checkpointing).
pub fn join_sink(spec: &WorkloadSpec, outputs: &WorkloadOutputs) -> ChecksumSink<JoinRow> {
    ChecksumSink::with_header(
        Arc::clone(&outputs.sum),
        spec.output.clone(),
        "a_ts,key,a_value,b_ts,b_value",
        spec.checkpoint.is_some(),
    )
}

/// WL4 from streams `a` and `b` on: both keyed by key into
/// `spec.parallelism` instances of the interval join `join`
/// (`between(-J, J)`), one row per pair into `sink`, late events counted
/// in `outputs`.
pub fn join_pipeline<S: Sink<JoinRow>>(
    a: Stream<Event>,
    b: Stream<Event>,
    spec: &WorkloadSpec,
    outputs: &WorkloadOutputs,
    sink: S,
) {
    let p = spec.parallelism;
    let late = LateCounter(Arc::clone(&outputs.late));
    a.key_by(|e: &Event| e.key, p)
        .interval_join("join", b.key_by(|e: &Event| e.key, p))
        .between(-spec.interval, spec.interval)
        .late_data(|stream| {
            stream
                .map(|(k, side): (u64, Either<Event, Event>)| match side {
                    Either::Left(e) | Either::Right(e) => (k, e),
                })
                .sink("late", late)
        })
        .apply(|&key: &u64, a: &Event, b: &Event| JoinRow {
            a_ts: a.ts,
            key,
            a_value: a.value,
            b_ts: b.ts,
            b_value: b.value,
        })
        .sink("results", sink);
}

/// `spec.parallelism` generator sources of `spec`'s stream (each a share,
/// throttled to its part of `spec.throttle`), aligned by `spec.max_drift`.
pub fn generator(job: &JobBuilder, spec: &WorkloadSpec) -> Stream<Event> {
    let p = spec.parallelism;
    let params = spec.stream;
    let per_instance = spec.throttle.map(|t| t / p.max(1) as f64);
    let mut strategy = watermarks(spec);
    if let Some(drift) = spec.max_drift {
        strategy = strategy.with_alignment(drift);
    }
    job.parallel_source(
        "generator",
        p,
        move |i| {
            let g = Generator::new(params, i, p);
            Throttled::new(g, per_instance.unwrap_or(f64::INFINITY))
        },
        |e: &Event| e.ts,
        strategy,
    )
}

/// The job builder of `spec` (name, batch size, placement, checkpointing)
/// with every setting that shapes the input or the results declared as
/// its configuration: a checkpoint written with other values is refused,
/// never resumed into a wrong result.
pub fn job(spec: &WorkloadSpec) -> JobBuilder {
    let mut job = JobBuilder::new(format!("{:?}", spec.workload).to_lowercase()).batch_size(spec.batch_size);
    if let Some(placement) = spec.placement {
        job = job.placement(placement);
    }
    if let Some(c) = &spec.checkpoint {
        job = job.checkpointing(c.clone());
    }
    job = job
        .configuration("workload", format!("{:?}", spec.workload).to_lowercase())
        .configuration("events", spec.stream.events)
        .configuration("keys", spec.stream.keys)
        .configuration("rate", spec.stream.rate)
        .configuration("disorder", spec.stream.disorder)
        .configuration("bound", spec.bound)
        .configuration("output", spec.output.as_ref().map_or("none".to_string(), |p| p.display().to_string()));
    if spec.workload == Workload::Wl3 {
        job = job.configuration("gap", spec.gap);
    }
    if spec.workload == Workload::Wl4 {
        job = job.configuration("interval", spec.interval);
    }
    job
}

/// The watermark strategy of `spec`'s sources (bounded out-of-orderness B,
/// the watermark interval; alignment is the generator's own).
pub fn watermarks(spec: &WorkloadSpec) -> WatermarkStrategy {
    WatermarkStrategy::bounded_out_of_orderness(spec.bound).with_interval(spec.watermark_interval)
}

/// The sink that folds `spec`'s result rows into `outputs`' checksum and
/// writes them to `spec.output` (exactly once when checkpointing).
pub fn checksum_sink(spec: &WorkloadSpec, outputs: &WorkloadOutputs) -> ChecksumSink {
    ChecksumSink::new(
        Arc::clone(&outputs.sum),
        spec.output.clone(),
        spec.workload == Workload::Wl3,
        spec.checkpoint.is_some(),
    )
}

/// The reference job of `spec` from `events` on: key by key into
/// `spec.parallelism` window managers, the workload's windows, count and
/// sum, result rows into `sink`, late events counted in `outputs`.
pub fn pipeline<S: Sink<Row>>(events: Stream<Event>, spec: &WorkloadSpec, outputs: &WorkloadOutputs, sink: S) {
    let windows = match spec.workload {
        Workload::Wl1 => Windows::tumbling(10_000),
        Workload::Wl2 => Windows::sliding(10_000, 2_000),
        // WL4 is a join, built by `join_pipeline`; the CLI never passes it here.
        Workload::Wl3 | Workload::Wl4 => Windows::session(spec.gap),
    };
    let sessions = spec.workload == Workload::Wl3;
    let late = LateCounter(Arc::clone(&outputs.late));
    events
        .key_by(|e: &Event| e.key, spec.parallelism)
        .window("windows", windows)
        .late_data(|stream| stream.sink("late", late))
        .aggregate((Count, Sum::of(|e: &Event| e.value)))
        .map(move |r: WindowResult<u64, (u64, i64)>| Row {
            window_start: r.window.start,
            key: r.key,
            count: r.value.0,
            sum: r.value.1,
            session_end: sessions.then_some(r.window.end),
        })
        .sink("results", sink);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn generator_matches_the_check_values() {
        let p = StreamParams { events: 3, keys: 16, rate: 100_000, disorder: 2_000 };
        assert_eq!(mix(SEED.wrapping_add(GAMMA)), 0x09f1_fd9d_03f0_a9b4);
        assert_eq!(event(0, &p), Event { ts: 0, key: 4, value: 383 });
        assert_eq!(event(1, &p), Event { ts: 0, key: 5, value: 731 });
        assert_eq!(event(2, &p), Event { ts: 0, key: 3, value: 427 });
    }

    #[test]
    fn parallel_shares_partition_the_stream() {
        let params = StreamParams { events: 10_000, ..StreamParams::default() };
        for p in 1..4 {
            let mut all: Vec<Event> = (0..p).flat_map(|s| Generator::new(params, s, p)).collect();
            let mut want: Vec<Event> = (0..params.events).map(|i| event(i, &params)).collect();
            all.sort_by_key(|e| (e.ts, e.key, e.value));
            want.sort_by_key(|e| (e.ts, e.key, e.value));
            assert_eq!(all.len(), want.len(), "p={p}");
            assert_eq!(all, want, "p={p}");
        }
    }
}
