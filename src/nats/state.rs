//! A state backend in JetStream: snapshots in an Object Store bucket,
//! checkpoint manifests in a KV bucket, so that any process that can
//! reach the server can restore the job.

use std::collections::HashMap;
use std::path::PathBuf;

use async_nats::jetstream::object_store;
use weir_actors::{BackendFactory, CheckpointId, CheckpointMeta, RestoredCheckpoint, StateBackend, StateError};

use super::{Nats, NatsError};

/// Checkpoints of one job in JetStream: each actor's snapshot is an object
/// `chk-<seq>/<actor>` of Object Store bucket `weir-snap-<name>` (chunked,
/// SHA-256 checked on every read), and a checkpoint is complete once its
/// manifest ([`CheckpointMeta`], rmp-serde) is key `chk-<seq>` of KV bucket
/// `weir-ckpt-<name>`, written after every snapshot. A snapshot that does
/// not read back or a manifest that does not decode makes the restore use
/// the previous complete checkpoint, as with the local directory.
///
/// ```no_run
/// # fn main() -> Result<(), Box<dyn std::error::Error>> {
/// use std::time::Duration;
/// let nats = weir::nats::Nats::connect("nats://127.0.0.1:4222")?;
/// let config = weir::CheckpointConfig::new("unused", Duration::from_secs(1))
///     .with_backend(weir::nats::JetStreamBackend::factory(&nats, "clicks", 3));
/// # let _ = config; Ok(()) }
/// ```
#[derive(Debug)]
pub struct JetStreamBackend {
    nats: Nats,
    kv: String,
    objects: String,
    /// Before every key and object name (several backends in one pair of
    /// buckets).
    prefix: String,
    retain: usize,
}

fn key_in(prefix: &str, seq: u64) -> String {
    format!("{prefix}chk-{seq:010}")
}

fn seq_in(prefix: &str, name: &str) -> Option<u64> {
    name.strip_prefix(prefix)?.strip_prefix("chk-")?.split('/').next()?.parse().ok()
}

/// Deletes every object of store `ob` whose name `doomed` picks: its
/// chunks, then its metadata, both purged without leaving a marker. The
/// names come from the store stream's subjects ([`super::client::subjects`]),
/// not from the store's `list()`, which would create a consumer.
async fn delete_objects(
    js: &async_nats::jetstream::Context,
    ob: &str,
    doomed: impl Fn(&str) -> bool,
) -> Result<(), NatsError> {
    use base64::Engine;
    let (stream, meta) = (format!("OBJ_{ob}"), format!("$O.{ob}.M."));
    let objects = js.get_object_store(ob).await.map_err(|e| NatsError::jetstream(ob, e))?;
    for subject in super::client::subjects(js, &stream, &format!("{meta}>")).await? {
        let name = subject
            .strip_prefix(&meta)
            .and_then(|encoded| base64::engine::general_purpose::URL_SAFE.decode(encoded).ok())
            .and_then(|bytes| String::from_utf8(bytes).ok());
        let Some(name) = name.filter(|n| doomed(n)) else { continue };
        match objects.info(&name).await {
            Ok(info) => super::client::purge_subject(js, &stream, &format!("$O.{ob}.C.{}", info.nuid)).await?,
            Err(e) if matches!(e.kind(), object_store::InfoErrorKind::NotFound) => {}
            Err(e) => return Err(NatsError::jetstream(format!("{ob} {name}"), e)),
        }
        super::client::purge_subject(js, &stream, &subject).await?;
    }
    Ok(())
}

/// The KV subject of key `key` of bucket `bucket`.
fn kv_subject(bucket: &str, key: &str) -> String {
    format!("$KV.{bucket}.{key}")
}

/// Reads object `name` of store `ob` by direct gets of its chunks, any
/// replica answering, and checks its size and SHA-256 digest. The store's
/// own `get` creates a consumer for the chunks, which a cluster that lost
/// a node may leave unanswered (see [`super::client::CONTROL_TIMEOUT`]).
async fn read_object(js: &async_nats::jetstream::Context, ob: &str, name: &str) -> Result<Vec<u8>, NatsError> {
    use base64::Engine;
    let failed = |e: &dyn std::fmt::Display| NatsError::jetstream(format!("{ob} {name}"), e);
    let objects = js.get_object_store(ob).await.map_err(|e| failed(&e))?;
    let info = objects.info(name).await.map_err(|e| failed(&e))?;
    if info.deleted || info.options.as_ref().is_some_and(|o| o.link.is_some()) {
        return Err(failed(&"deleted, or a link"));
    }
    let stream = js.get_stream_no_info(format!("OBJ_{ob}")).await.map_err(|e| failed(&e))?;
    let chunks = format!("$O.{ob}.C.{}", info.nuid);
    let mut data = Vec::with_capacity(info.size);
    let mut digest = ring::digest::Context::new(&ring::digest::SHA256);
    let mut seq = 1;
    for _ in 0..info.chunks {
        let m = stream.direct_get_next_for_subject(chunks.as_str(), Some(seq)).await.map_err(|e| failed(&e))?;
        digest.update(&m.payload);
        data.extend_from_slice(&m.payload);
        seq = m.sequence + 1;
    }
    let digest = format!("SHA-256={}", base64::engine::general_purpose::URL_SAFE.encode(digest.finish()));
    if data.len() != info.size || info.digest.as_deref() != Some(digest.as_str()) {
        return Err(failed(&format!("{} bytes, {digest}: not what its metadata says", data.len())));
    }
    tracing::debug!(ob, name, nuid = %info.nuid, size = data.len(), %digest, "read object");
    Ok(data)
}

/// Attempts at each read of a checkpoint back (a stream electing a leader
/// answers nothing for a few seconds).
const READ_ATTEMPTS: u32 = 3;

/// Reads checkpoint `k`'s manifest and snapshots.
async fn read_checkpoint(
    js: async_nats::jetstream::Context,
    kvb: String,
    ob: String,
    k: String,
) -> Result<(CheckpointMeta, HashMap<String, Vec<u8>>), NatsError> {
    let what = format!("{kvb} {k}");
    let bytes = super::client::with_retries(&what, READ_ATTEMPTS, None, || async {
        let store = js.get_key_value(&kvb).await.map_err(|e| NatsError::jetstream(&kvb, e))?;
        store.get(&k).await.map_err(|e| NatsError::jetstream(&what, e))
    })
    .await?
    .ok_or_else(|| NatsError::jetstream(&what, "gone"))?;
    let meta: CheckpointMeta = rmp_serde::from_slice(&bytes)
        .map_err(|e| NatsError::jetstream(&what, format!("not a checkpoint manifest: {e}")))?;
    let mut snapshots = HashMap::new();
    for actor in &meta.actors {
        let name = format!("{k}/{actor}");
        let buf = super::client::with_retries(&name, READ_ATTEMPTS, None, || read_object(&js, &ob, &name)).await?;
        snapshots.insert(actor.clone(), buf);
    }
    Ok((meta, snapshots))
}

impl JetStreamBackend {
    /// Opens (creating them if needed) the buckets of job `name` (letters,
    /// digits, `-` and `_`), keeping the newest `retain` checkpoints.
    pub fn open(nats: &Nats, name: &str, retain: usize) -> Result<Self, StateError> {
        Self::open_prefixed(nats, name, "", retain)
    }

    /// Like [`Self::open`], with every key and object name of this backend
    /// starting with `prefix` (letters, digits, `-`, `_`, `.`), so that
    /// several backends share one pair of buckets without seeing each
    /// other's checkpoints.
    pub fn open_prefixed(nats: &Nats, name: &str, prefix: &str, retain: usize) -> Result<Self, StateError> {
        let (kv_bucket, obj_bucket) = (format!("weir-ckpt-{name}"), format!("weir-snap-{name}"));
        let (k, o, replicas) = (kv_bucket.clone(), obj_bucket.clone(), nats.replicas());
        nats.control(move |js| async move {
            super::client::ensure_key_value(&js, &k, replicas).await?;
            if js.get_object_store(&o).await.is_err() {
                js.create_object_store(object_store::Config {
                    bucket: o.clone(),
                    num_replicas: replicas,
                    ..Default::default()
                })
                .await
                .map_err(|e| NatsError::jetstream(format!("object store {o}"), e))?;
            }
            Ok(())
        })
        .map_err(|e| StateError::Io {
            path: PathBuf::from(&kv_bucket),
            source: std::io::Error::other(e.to_string()),
        })?;
        Ok(JetStreamBackend {
            nats: nats.clone(),
            kv: kv_bucket,
            objects: obj_bucket,
            prefix: prefix.to_string(),
            retain: retain.max(1),
        })
    }

    fn key(&self, seq: u64) -> String {
        key_in(&self.prefix, seq)
    }

    fn object(&self, seq: u64, actor: &str) -> String {
        format!("{}/{actor}", self.key(seq))
    }

    /// A factory for [`weir_actors::CheckpointConfig::with_backend`]: the
    /// job opens the buckets of `name` each time it starts.
    pub fn factory(nats: &Nats, name: &str, retain: usize) -> BackendFactory {
        let (nats, name) = (nats.clone(), name.to_string());
        let describe = format!("{} buckets weir-ckpt-{name} / weir-snap-{name}", nats.url());
        BackendFactory::new(describe, move || Ok(Box::new(JetStreamBackend::open(&nats, &name, retain)?) as _))
    }

    /// Writes checkpoint `meta`'s manifest (its snapshots are written):
    /// from here on it is complete.
    pub(crate) fn write_manifest(&self, meta: &CheckpointMeta) -> Result<(), StateError> {
        let bytes = rmp_serde::to_vec(meta).map_err(|e| StateError::Corrupt {
            path: self.path(&self.key(meta.id.seq)),
            reason: format!("the manifest does not encode: {e}"),
        })?;
        let (kvb, k) = (self.kv.clone(), self.key(meta.id.seq));
        self.nats
            .control(move |js| async move {
                let store = js.get_key_value(&kvb).await.map_err(|e| NatsError::jetstream(&kvb, e))?;
                store.put(&k, bytes.into()).await.map_err(|e| NatsError::jetstream(format!("{kvb} {k}"), e))?;
                Ok(())
            })
            .map_err(|e| self.io(&self.key(meta.id.seq), e))
    }

    /// Keeps the newest `retain` complete checkpoints, deletes the older
    /// ones and the objects of incomplete checkpoints older than `seq`.
    pub(crate) fn apply_retention(&self, seq: u64) -> Result<(), StateError> {
        let complete = self.complete()?;
        let keep: Vec<u64> = complete.iter().copied().take(self.retain).collect();
        let drop: Vec<u64> = complete.iter().copied().skip(self.retain).collect();
        self.clean(drop, keep, seq)
    }

    fn path(&self, what: &str) -> PathBuf {
        PathBuf::from(format!("{}/{what}", self.nats.url()))
    }

    fn io(&self, what: &str, e: NatsError) -> StateError {
        StateError::Io { path: self.path(what), source: std::io::Error::other(e.to_string()) }
    }

    /// The sequences of the checkpoints whose manifest is in KV, newest first.
    fn complete(&self) -> Result<Vec<u64>, StateError> {
        let (bucket, prefix) = (self.kv.clone(), self.prefix.clone());
        let mut seqs = self
            .nats
            .control(move |js| async move {
                // One token per key when the prefix ends a token (as the
                // epochs' `e<n>.` do); otherwise every key, sorted out below.
                let within = if prefix.is_empty() || prefix.ends_with('.') { "*" } else { ">" };
                let at = kv_subject(&bucket, "");
                let subjects =
                    super::client::subjects(&js, &format!("KV_{bucket}"), &format!("{at}{prefix}{within}")).await?;
                let seqs: Vec<u64> = subjects.iter().filter_map(|s| seq_in(&prefix, s.strip_prefix(&at)?)).collect();
                Ok(seqs)
            })
            .map_err(|e| self.io(&self.kv, e))?;
        seqs.sort_unstable_by(|a, b| b.cmp(a));
        Ok(seqs)
    }

    /// Deletes the manifests of `seqs` and every object of a checkpoint
    /// that is older than `before` and not in `keep`.
    fn clean(&self, drop: Vec<u64>, keep: Vec<u64>, before: u64) -> Result<(), StateError> {
        let (kvb, ob, prefix) = (self.kv.clone(), self.objects.clone(), self.prefix.clone());
        self.nats
            .control(move |js| async move {
                for s in &drop {
                    let k = key_in(&prefix, *s);
                    super::client::purge_subject(&js, &format!("KV_{kvb}"), &kv_subject(&kvb, &k)).await?;
                }
                delete_objects(&js, &ob, |name| seq_in(&prefix, name).is_some_and(|s| s < before && !keep.contains(&s)))
                    .await
            })
            .map_err(|e| self.io(&self.objects, e))
    }

    /// Checkpoint `seq` read back: its manifest and every snapshot.
    pub(crate) fn read(&self, seq: u64) -> Result<RestoredCheckpoint, StateError> {
        let (kvb, ob, k) = (self.kv.clone(), self.objects.clone(), self.key(seq));
        let got = self.nats.control(move |js| read_checkpoint(js, kvb, ob, k));
        match got {
            Ok((meta, snapshots)) => Ok(RestoredCheckpoint { meta, snapshots, skipped: Vec::new() }),
            Err(e) => Err(StateError::Corrupt { path: self.path(&self.key(seq)), reason: e.to_string() }),
        }
    }
}

impl StateBackend for JetStreamBackend {
    fn write_snapshot(&mut self, id: CheckpointId, actor: &str, bytes: &[u8]) -> Result<u64, StateError> {
        let (ob, name, data) = (self.objects.clone(), self.object(id.seq, actor), bytes.to_vec());
        let len = data.len() as u64;
        self.nats
            .control(move |js| async move {
                let objects = js.get_object_store(&ob).await.map_err(|e| NatsError::jetstream(&ob, e))?;
                let info = objects
                    .put(name.as_str(), &mut data.as_slice())
                    .await
                    .map_err(|e| NatsError::jetstream(format!("{ob} {name}"), e))?;
                tracing::debug!(ob, name, nuid = %info.nuid, size = info.size, digest = ?info.digest, "wrote object");
                Ok(())
            })
            .map_err(|e| self.io(&self.object(id.seq, actor), e))?;
        Ok(len)
    }

    fn commit(&mut self, meta: &CheckpointMeta) -> Result<(), StateError> {
        self.write_manifest(meta)?;
        self.apply_retention(meta.id.seq)
    }

    fn abort(&mut self, id: CheckpointId) -> Result<(), StateError> {
        let (ob, prefix) = (self.objects.clone(), format!("{}/", self.key(id.seq)));
        let (kvb, k) = (self.kv.clone(), self.key(id.seq));
        self.nats
            .control(move |js| async move {
                // A manifest written before the commit was refused (a fenced
                // partition backend) goes too.
                super::client::purge_subject(&js, &format!("KV_{kvb}"), &kv_subject(&kvb, &k)).await?;
                delete_objects(&js, &ob, |name| name.starts_with(&prefix)).await
            })
            .map_err(|e| self.io(&self.key(id.seq), e))
    }

    fn latest(&self) -> Result<Option<RestoredCheckpoint>, StateError> {
        self.latest_at_most(u64::MAX)
    }
}

impl JetStreamBackend {
    /// The newest checkpoint numbered at most `max` that reads back (what
    /// did not is in its `skipped`).
    pub(crate) fn latest_at_most(&self, max: u64) -> Result<Option<RestoredCheckpoint>, StateError> {
        let mut skipped = Vec::new();
        for seq in self.complete()?.into_iter().filter(|&s| s <= max) {
            match self.read(seq) {
                Ok(mut r) => {
                    r.skipped = skipped;
                    return Ok(Some(r));
                }
                Err(e) => skipped.push(e),
            }
        }
        for e in &skipped {
            tracing::error!(error = %e, "JetStream state backend: no complete checkpoint reads back");
        }
        Ok(None)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_carry_their_sequence() {
        assert_eq!(key_in("", 7), "chk-0000000007");
        assert_eq!(seq_in("", &format!("{}/windows#1", key_in("", 7))), Some(7));
        assert_eq!(seq_in("e2.", "e2.chk-0000000012"), Some(12));
        assert_eq!(seq_in("e2.", "e3.chk-0000000012"), None);
        assert_eq!(seq_in("", "e3.chk-0000000012"), None);
        assert_eq!(seq_in("", "other"), None);
    }
}
