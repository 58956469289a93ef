//! The sink of stage one: routes records to the partitions of a
//! repartition stream, numbered per (upstream, partition).

use std::collections::VecDeque;
use std::marker::PhantomData;

use async_nats::jetstream::context::PublishAckFuture;
use async_nats::HeaderMap;
use bytes::Bytes;
use serde::{Deserialize, Serialize};
use weir_actors::{CheckpointId, Record, Sink, SinkError, Snapshot, Timestamp};

use super::{Repartition, FROM_HEADER, INDEX_HEADER, WATERMARK_HEADER};
use crate::nats::{partition_of, partition_subject, NatsError, END_HEADER};

/// Records per message.
const ROWS_PER_MESSAGE: usize = 1024;
/// Sealed messages the sink holds before it publishes them.
const SEALED: usize = 32;
/// Publishes in flight before the sink waits for acknowledgements.
const IN_FLIGHT: usize = 256;

/// The [`Sink`] of upstream partition `u` of a [`Repartition`] stream
/// (see the module docs for why it is exactly once).
///
/// It routes each record by its key, sends a partition's records in
/// messages of up to 1,024, and on every watermark sends what it holds,
/// with the watermark, to every partition (a message without records to a
/// partition it has nothing for). A checkpoint barrier waits until all it
/// sent is stored; its snapshot is how many records went to each
/// partition. Blocking: it waits for the server on the sink actor's
/// thread.
pub struct RepartitionSink<T, K> {
    to: Repartition,
    upstream: usize,
    key: K,
    parts: Vec<Part<T>>,
    /// The last watermark of the upstream partition.
    wm: Timestamp,
    /// Messages sealed and not yet published.
    sealed: Vec<Outgoing>,
    _t: PhantomData<fn(T)>,
}

impl<T, K> std::fmt::Debug for RepartitionSink<T, K> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RepartitionSink")
            .field("stream", &self.to.stream)
            .field("upstream", &self.upstream)
            .field("watermark", &self.wm)
            .finish_non_exhaustive()
    }
}

/// What the sink holds for one partition.
struct Part<T> {
    rows: Vec<T>,
    /// The index of `rows[0]` among every record sent to the partition.
    next: u64,
    /// The last watermark sent to the partition.
    wm_sent: Timestamp,
}

/// A message ready to publish.
struct Outgoing {
    partition: usize,
    index: u64,
    wm: Timestamp,
    end: bool,
    payload: Bytes,
}

/// What a checkpoint records of a [`RepartitionSink`].
#[derive(Debug, Serialize, Deserialize)]
struct SinkState {
    stream: String,
    upstream: usize,
    /// Records sent to each partition (all stored).
    sent: Vec<u64>,
    wm: Timestamp,
}

impl<T, K> RepartitionSink<T, K>
where
    T: Serialize + Send + 'static,
    K: Fn(&T) -> u64 + Send + 'static,
{
    pub(super) fn new(to: Repartition, upstream: usize, key: K) -> Self {
        let parts = (0..to.partitions).map(|_| Part { rows: Vec::new(), next: 0, wm_sent: i64::MIN }).collect();
        RepartitionSink { to, upstream, key, parts, wm: i64::MIN, sealed: Vec::new(), _t: PhantomData }
    }

    fn error(&self, what: impl std::fmt::Display) -> SinkError {
        SinkError::Other(format!("repartition sink {} of upstream {}: {what}", self.to.stream, self.upstream))
    }

    /// Seals what partition `q` holds into a message (with the current
    /// watermark), or a message with no records if the watermark advanced
    /// since the last one sent to it.
    fn seal(&mut self, q: usize) -> Result<(), SinkError> {
        let wm = self.wm;
        let part = &mut self.parts[q];
        if part.rows.is_empty() && wm <= part.wm_sent {
            return Ok(());
        }
        let payload = match rmp_serde::to_vec(&part.rows) {
            Ok(p) => p,
            Err(e) => return Err(self.error(format!("cannot encode a record: {e}"))),
        };
        let part = &mut self.parts[q];
        self.sealed.push(Outgoing { partition: q, index: part.next, wm, end: false, payload: Bytes::from(payload) });
        part.next += part.rows.len() as u64;
        part.rows.clear();
        part.wm_sent = wm;
        Ok(())
    }

    fn seal_all(&mut self) -> Result<(), SinkError> {
        (0..self.parts.len()).try_for_each(|q| self.seal(q))
    }

    /// Publishes the sealed messages and waits until all are stored.
    fn flush(&mut self) -> Result<(), SinkError> {
        if self.sealed.is_empty() {
            return Ok(());
        }
        let out = std::mem::take(&mut self.sealed);
        let (stream, upstream) = (self.to.stream.clone(), self.upstream);
        let res =
            self.to.nats.call(move |js| async move {
                let mut acks: VecDeque<PublishAckFuture> = VecDeque::new();
                let wait = |ack: PublishAckFuture| {
                    let stream = stream.clone();
                    async move {
                        ack.await.map(|_| ()).map_err(|e| NatsError::jetstream(format!("publishing to {stream}"), e))
                    }
                };
                for m in out {
                    let subject = partition_subject(&stream, m.partition);
                    let mut headers = HeaderMap::new();
                    headers.insert(FROM_HEADER, upstream.to_string().as_str());
                    headers.insert(INDEX_HEADER, m.index.to_string().as_str());
                    if m.wm > i64::MIN {
                        headers.insert(WATERMARK_HEADER, m.wm.to_string().as_str());
                    }
                    if m.end {
                        headers.insert(END_HEADER, "true");
                    }
                    let ack = js
                        .publish_with_headers(subject.clone(), headers, m.payload)
                        .await
                        .map_err(|e| NatsError::jetstream(format!("publishing to {subject}"), e))?;
                    acks.push_back(ack);
                    if acks.len() >= IN_FLIGHT {
                        wait(acks.pop_front().expect("not empty")).await?;
                    }
                }
                while let Some(a) = acks.pop_front() {
                    wait(a).await?;
                }
                Ok(())
            });
        res.map_err(|e| self.error(e))
    }
}

impl<T, K> Sink<T> for RepartitionSink<T, K>
where
    T: Serialize + Send + 'static,
    K: Fn(&T) -> u64 + Send + 'static,
{
    fn write(&mut self, batch: &mut Vec<Record<T>>) -> Result<(), SinkError> {
        let n = self.parts.len();
        for r in batch.drain(..) {
            let q = partition_of((self.key)(&r.value), n);
            let part = &mut self.parts[q];
            part.rows.push(r.value);
            if part.rows.len() >= ROWS_PER_MESSAGE {
                self.seal(q)?;
            }
        }
        if self.sealed.len() >= SEALED {
            self.flush()?;
        }
        Ok(())
    }

    fn on_watermark(&mut self, wm: Timestamp) -> Result<(), SinkError> {
        // It holds for every later record: send it with what is held, and
        // to every partition, so that none waits for this upstream.
        self.wm = self.wm.max(wm);
        self.seal_all()?;
        self.flush()
    }

    fn pre_commit(&mut self, _id: CheckpointId) -> Result<Snapshot, SinkError> {
        // Everything before the barrier stored before the checkpoint
        // counts it as sent: a restore numbers from here.
        self.seal_all()?;
        self.flush()?;
        let state = SinkState {
            stream: self.to.stream.clone(),
            upstream: self.upstream,
            sent: self.parts.iter().map(|p| p.next).collect(),
            wm: self.wm,
        };
        Snapshot::encode(&state).map_err(|e| self.error(e))
    }

    fn finish(&mut self) -> Result<(), SinkError> {
        self.seal_all()?;
        for (q, part) in self.parts.iter_mut().enumerate() {
            let index = part.next;
            self.sealed.push(Outgoing { partition: q, index, wm: i64::MAX, end: true, payload: Bytes::new() });
            part.wm_sent = i64::MAX;
        }
        self.flush()
    }

    fn restore(&mut self, id: CheckpointId, state: &Snapshot) -> Result<(), SinkError> {
        let state: SinkState = state.decode().map_err(|e| self.error(e))?;
        if state.stream != self.to.stream || state.upstream != self.upstream || state.sent.len() != self.parts.len() {
            return Err(self.error(format!(
                "checkpoint {} was written by the sink of upstream {} to {} ({} partitions)",
                id.seq,
                state.upstream,
                state.stream,
                state.sent.len()
            )));
        }
        for (part, sent) in self.parts.iter_mut().zip(state.sent) {
            (part.next, part.wm_sent) = (sent, i64::MIN);
            part.rows.clear();
        }
        self.wm = state.wm;
        self.sealed.clear();
        Ok(())
    }
}
