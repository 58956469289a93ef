//! A worker of a group: runs a job for each partition the group assigns
//! it, with the partition's state in JetStream, fenced by its claim.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use weir_actors::{
    BackendFactory, CheckpointConfig, CheckpointId, CheckpointMeta, Job, JobHandle, RestoredCheckpoint, StateBackend,
    StateError,
};

use super::group::{Claim, Fenced, Group};
use super::{JetStreamBackend, NatsError, WorkerStatus};

/// The state of one partition of a group: snapshots and manifests in the
/// group's JetStream buckets under the prefix of the epoch that wrote
/// them, and a checkpoint complete only once the claim records it in the
/// partition's ownership key by compare-and-swap. A member whose claim was
/// taken over (it froze past its lease, say) completes no checkpoint: its
/// sinks publish nothing more.
#[derive(Debug)]
pub struct PartitionBackend {
    group: Group,
    claim: Arc<Mutex<Claim>>,
    inner: JetStreamBackend,
    retain: usize,
}

fn bucket_name(group: &Group, p: usize) -> String {
    format!("{}-p{p}", group.name())
}

fn prefix(epoch: u64) -> String {
    format!("e{epoch}.")
}

impl PartitionBackend {
    /// The backend of `claim`'s partition.
    pub fn new(group: &Group, claim: Arc<Mutex<Claim>>, retain: usize) -> Result<Self, StateError> {
        let (p, epoch) = {
            let c = claim.lock().expect("claim");
            (c.partition, c.ownership.epoch)
        };
        let inner = JetStreamBackend::open_prefixed(group.nats(), &bucket_name(group, p), &prefix(epoch), retain)?;
        Ok(PartitionBackend { group: group.clone(), claim, inner, retain })
    }

    /// A factory for the partition's `CheckpointConfig`.
    pub fn factory(group: &Group, claim: Arc<Mutex<Claim>>, retain: usize) -> BackendFactory {
        let g = group.clone();
        let p = claim.lock().expect("claim").partition;
        let describe = format!("{} group {} partition {p}", group.nats().url(), group.name());
        BackendFactory::new(describe, move || {
            Ok(Box::new(PartitionBackend::new(&g, Arc::clone(&claim), retain)?) as Box<dyn StateBackend>)
        })
    }

    fn fenced(&self, what: &str, e: Fenced) -> StateError {
        let p = self.claim.lock().map(|c| c.partition).unwrap_or_default();
        let reason = match e {
            Fenced::Lost => format!("partition {p} was taken over by another member of group {}", self.group.name()),
            Fenced::Error(e) => e.to_string(),
            Fenced::Unknown(e) => format!("{e} (whether the checkpoint was recorded is not known; it is kept)"),
        };
        StateError::Io { path: what.into(), source: std::io::Error::other(reason) }
    }
}

impl StateBackend for PartitionBackend {
    fn write_snapshot(&mut self, id: CheckpointId, actor: &str, bytes: &[u8]) -> Result<u64, StateError> {
        self.inner.write_snapshot(id, actor, bytes)
    }

    fn commit(&mut self, meta: &CheckpointMeta) -> Result<(), StateError> {
        // The manifest first (what the ownership will point at), then the
        // compare-and-swap that completes the checkpoint, and only then the
        // retention: a fenced member deletes nothing a restore may need.
        self.inner.write_manifest(meta)?;
        let mut claim = self.claim.lock().expect("claim");
        let res = self.group.record_checkpoint(&mut claim, meta.id.seq);
        drop(claim);
        res.map_err(|e| self.fenced("ownership", e))?;
        self.inner.apply_retention(meta.id.seq)
    }

    fn abort(&mut self, id: CheckpointId) -> Result<(), StateError> {
        // A commit that failed may still have been recorded (a request
        // that timed out, or was applied and then retried and refused, as
        // when a bucket elects a leader): never delete what the ownership
        // points at, nor what it might.
        let (p, epoch) = {
            let c = self.claim.lock().expect("claim");
            (c.partition, c.ownership.epoch)
        };
        match self.group.records(p, epoch, id.seq) {
            Ok(false) => self.inner.abort(id),
            Ok(true) | Err(_) => {
                tracing::warn!(
                    partition = p,
                    seq = id.seq,
                    "not deleting an aborted checkpoint the ownership may point at"
                );
                Ok(())
            }
        }
    }

    fn latest(&self) -> Result<Option<RestoredCheckpoint>, StateError> {
        let (p, latest) = {
            let c = self.claim.lock().expect("claim");
            (c.partition, c.ownership.latest)
        };
        let Some((epoch, seq)) = latest else { return Ok(None) };
        let at = JetStreamBackend::open_prefixed(
            self.group.nats(),
            &bucket_name(&self.group, p),
            &prefix(epoch),
            self.retain,
        )?;
        match at.read(seq) {
            Ok(r) => {
                let sizes: Vec<(&str, usize)> = r.snapshots.iter().map(|(a, b)| (a.as_str(), b.len())).collect();
                tracing::debug!(partition = p, epoch, seq, ?sizes, "restoring the recorded checkpoint");
                Ok(Some(r))
            }
            Err(e) => {
                // Not expected (a recorded checkpoint is never deleted):
                // the newest older one of the same epoch is as good a
                // start for exactly once (its sinks' later epochs are
                // taken back or numbered again), better than none.
                tracing::error!(partition = p, seq, error = %e, "the recorded checkpoint does not read back; trying older ones");
                match at.latest_at_most(seq)? {
                    Some(mut r) => {
                        r.skipped.insert(0, e);
                        Ok(Some(r))
                    }
                    None => Err(e),
                }
            }
        }
    }
}

/// What a worker runs: the job of one partition, checkpointing with the
/// given configuration (its state backend is the partition's), and a
/// guard its sinks may consult before they publish what no checkpoint
/// covers (true while this worker still holds the partition).
pub type MakeJob<'a> =
    dyn FnMut(usize, CheckpointConfig, Arc<dyn Fn() -> bool + Send + Sync>) -> Result<Job, String> + 'a;

/// How a worker runs.
#[derive(Debug, Clone)]
pub struct WorkerConfig {
    /// Time between checkpoints of each partition's job.
    pub checkpoint_interval: Duration,
    /// Checkpoints kept per partition and epoch.
    pub retain: usize,
    /// Where the worker shows what it does (its partitions, generation,
    /// lags); [`WorkerStatus::new`] if nobody looks.
    pub status: WorkerStatus,
}

/// What a worker did.
#[derive(Debug, Clone, Default)]
pub struct WorkerReport {
    /// Partitions whose job this worker ran to its end.
    pub finished: Vec<usize>,
    /// Partitions it gave up (moved away, fenced, or failed and retried).
    pub given_up: Vec<usize>,
}

struct Running {
    handle: JobHandle,
    claim: Arc<Mutex<Claim>>,
}

/// Runs as a member of `group` until every partition is done: renews the
/// lease a few times per lease, rebalances, starts the job of each
/// partition assigned to it (restored from the partition's newest
/// checkpoint, whoever wrote it), stops the job of each partition assigned
/// away, marks a partition done when its job completes, and leaves the
/// group at the end. A worker that finds its lease lapsed (it was frozen)
/// cancels every job at once: the group has moved its partitions.
pub fn run_worker(group: &Group, config: &WorkerConfig, make: &mut MakeJob<'_>) -> Result<WorkerReport, NatsError> {
    let mut report = WorkerReport::default();
    let mut running: BTreeMap<usize, Running> = BTreeMap::new();
    let tick = group.lease() / 4;
    let mut last_beat = Instant::now();
    loop {
        // Frozen (or cut off) past the lease: everything it runs may
        // belong to others now.
        if last_beat.elapsed() > group.lease() && !running.is_empty() {
            tracing::warn!(member = group.member(), "lease lapsed: cancelling every partition's job");
            for (p, r) in std::mem::take(&mut running) {
                r.handle.cancel();
                let _ = r.handle.wait_blocking();
                config.status.stopped(p);
                report.given_up.push(p);
            }
        }
        // A failed round (the server unreachable, a leader election) is
        // tried again at the next tick; the lease decides what it costs.
        match round(group, config, make, &mut running, &mut report, &mut last_beat) {
            Ok(true) => return Ok(report),
            Ok(false) => {}
            Err(e) => tracing::warn!(member = group.member(), error = %e, "worker round failed; trying again"),
        }
        // Until the next tick, or at once when a partition's job ends (so
        // that it is marked done, and the next partition started, without
        // waiting out the tick).
        let slept = Instant::now();
        while slept.elapsed() < tick && !running.values().any(|r| r.handle.is_finished()) {
            std::thread::sleep(Duration::from_millis(20).min(tick));
        }
    }
}

/// One round of the worker loop; true once the group is done and this
/// member has left it.
fn round(
    group: &Group,
    config: &WorkerConfig,
    make: &mut MakeJob<'_>,
    running: &mut BTreeMap<usize, Running>,
    report: &mut WorkerReport,
    last_beat: &mut Instant,
) -> Result<bool, NatsError> {
    group.heartbeat()?;
    *last_beat = Instant::now();
    let mut done = group.done()?;
    if done.len() >= group.partitions() && running.is_empty() {
        group.leave()?;
        return Ok(true);
    }
    let assignment = group.rebalance()?;
    let mine = assignment.owned_by(group.member());
    let owners: std::collections::BTreeSet<&String> = assignment.owners.iter().flatten().collect();
    config.status.update(|v| {
        (v.group, v.member) = (group.name().to_string(), group.member().to_string());
        (v.generation, v.members, v.partitions) = (assignment.generation, owners.len(), group.partitions());
        (v.done, v.lease_ms) = (done.len(), group.lease().as_millis() as u64);
    });
    // A claim is locked while its job's checkpoint is being recorded (a
    // request that may wait for an election): the status can wait, the
    // heartbeat cannot.
    for (p, r) in running.iter() {
        if let Some((_, seq)) = r.claim.try_lock().ok().and_then(|c| c.ownership.latest) {
            config.status.checkpointed(*p, seq);
        }
    }
    // Jobs that ended, or whose partition is no longer ours.
    let ended: Vec<usize> =
        running.iter().filter(|(p, r)| r.handle.is_finished() || !mine.contains(p)).map(|(p, _)| *p).collect();
    for p in ended {
        let r = running.remove(&p).expect("listed");
        if !r.handle.is_finished() {
            r.handle.cancel();
        }
        config.status.stopped(p);
        let moved = !mine.contains(&p);
        match r.handle.wait_blocking() {
            Ok(_) if group.holds(&r.claim.lock().expect("claim"))? => {
                group.mark_done(p)?;
                done.push(p);
                report.finished.push(p);
            }
            Ok(_) => report.given_up.push(p),
            Err(_) if moved => {
                tracing::info!(partition = p, member = group.member(), "partition moved to another member");
                report.given_up.push(p);
            }
            Err(e) => {
                tracing::warn!(partition = p, error = %e, "partition job failed; it starts again from its checkpoint");
                report.given_up.push(p);
            }
        }
    }
    // Partitions to start.
    for p in mine {
        if running.contains_key(&p) || done.contains(&p) {
            continue;
        }
        let claim = Arc::new(Mutex::new(group.claim(p)?));
        let factory = PartitionBackend::factory(group, Arc::clone(&claim), config.retain);
        let ckpt =
            CheckpointConfig::new(format!("{}-p{p}", group.name()), config.checkpoint_interval).with_backend(factory);
        let (g, c) = (group.clone(), Arc::clone(&claim));
        let guard: Arc<dyn Fn() -> bool + Send + Sync> =
            Arc::new(move || c.lock().map(|c| g.holds(&c).unwrap_or(false)).unwrap_or(false));
        let job = make(p, ckpt, guard).map_err(|e| NatsError::jetstream(format!("partition {p}"), e))?;
        let handle = job.spawn().map_err(|e| NatsError::jetstream(format!("partition {p}"), e))?;
        let (epoch, latest) = {
            let c = claim.lock().expect("claim");
            (c.ownership.epoch, c.ownership.latest.map(|(_, seq)| seq))
        };
        config.status.started(p, epoch, latest, handle.clone());
        tracing::info!(partition = p, member = group.member(), epoch, "partition started");
        running.insert(p, Running { handle, claim });
    }
    Ok(false)
}
