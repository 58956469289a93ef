//! The exactly-once JetStream sink.

use std::collections::BTreeMap;
use std::marker::PhantomData;
use std::time::Duration;

use async_nats::jetstream::context::PublishAckFuture;
use async_nats::jetstream::message::PublishMessage;
use async_nats::jetstream::stream::RawMessageErrorKind;
use bytes::Bytes;
use serde::{Deserialize, Serialize};
use weir_actors::{CheckpointId, Record, Sink, SinkError, Snapshot};

use super::{Nats, NatsError, EPOCH_HEADER};

/// Records per message.
const ROWS_PER_MESSAGE: usize = 1024;
/// Publishes in flight before the sink waits for acknowledgements.
const IN_FLIGHT: usize = 256;
/// The output stream's duplicate window when the sink creates it.
const DUPLICATE_WINDOW: Duration = Duration::from_secs(600);

/// A [`Sink`] that publishes records to a JetStream stream exactly once.
///
/// Records travel as frames ([`super::Format::Frames`]: rmp-serde arrays
/// of up to 1,024 records) on subject `<stream>.<name>`. The records of
/// an epoch (what came between two checkpoint barriers) are encoded and
/// kept in the checkpoint's snapshot, and published only once that
/// checkpoint has completed, each message with a deterministic
/// `Nats-Msg-Id` (`<name>.<run>.<epoch>.<n>`, where `run` is the id of
/// the run that first wrote the epoch) and its epoch in the
/// [`EPOCH_HEADER`] header. So:
///
/// - what a restored job publishes again (the epochs its checkpoint
///   covers that may not have been published) carries the same ids and
///   the server drops the copies, as long as the replay comes within the
///   stream's duplicate window (10 minutes when the sink creates the
///   stream);
/// - what a crashed run published after its last complete checkpoint
///   (possible only at the end of input, when the rest is published
///   without a checkpoint, as the exactly-once file sink does) is deleted
///   from the stream when the job is restored, as the file sink cuts its
///   file back; the restored run then produces it again.
///
/// A reader that reads the stream once the job has completed sees every
/// record exactly once. One that reads while it runs may see records of
/// the end of input that a crash then takes back, as with the file sink.
pub struct JetStreamSink<T> {
    nats: Nats,
    stream: String,
    subject: String,
    name: String,
    /// This run's id (message ids of the epochs it writes).
    run: String,
    /// Encoded frames of the epoch being written.
    frames: Vec<Snapshot>,
    /// Records of the frame being filled.
    rows: Vec<T>,
    /// Epochs whose checkpoint has not completed (or not been published).
    pending: BTreeMap<u64, Epoch>,
    /// The stream's last sequence after this sink's last publish.
    published: u64,
    /// Asked before publishing what no checkpoint covers (the end of
    /// input): false refuses (a worker that lost its partition).
    guard: Option<std::sync::Arc<dyn Fn() -> bool + Send + Sync>>,
    _t: PhantomData<fn(T)>,
}

impl<T> std::fmt::Debug for JetStreamSink<T> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("JetStreamSink")
            .field("subject", &self.subject)
            .field("pending_epochs", &self.pending.len())
            .finish_non_exhaustive()
    }
}

/// An epoch's frames and the run that wrote them (a frame travels as
/// MessagePack binary, as a [`Snapshot`] does).
#[derive(Debug, Clone, Serialize, Deserialize)]
struct Epoch {
    run: String,
    frames: Vec<Snapshot>,
}

/// What a checkpoint records of a [`JetStreamSink`].
#[derive(Debug, Serialize, Deserialize)]
struct SinkState {
    subject: String,
    pending: BTreeMap<u64, Epoch>,
    published: u64,
}

/// [`SinkState`] borrowed from the sink, for encoding without copying the
/// pending epochs' frames (same fields, same encoding).
#[derive(Serialize)]
struct SinkStateRef<'a> {
    subject: &'a str,
    pending: &'a BTreeMap<u64, Epoch>,
    published: u64,
}

/// The epoch of what is published at the end of input.
const FINAL: u64 = u64::MAX;

impl<T: Serialize + Send + 'static> JetStreamSink<T> {
    /// A sink named `name` (unique among the sinks writing to `stream`)
    /// publishing to subject `<stream>.<name>`; creates the stream
    /// (subjects `<stream>.>`, a 10-minute duplicate window) if it does
    /// not exist.
    pub fn new(nats: &Nats, stream: &str, name: &str) -> Result<Self, NatsError> {
        nats.create_output_stream(stream, DUPLICATE_WINDOW)?;
        Ok(JetStreamSink {
            nats: nats.clone(),
            stream: stream.to_string(),
            subject: format!("{stream}.{name}"),
            name: name.to_string(),
            run: uuid::Uuid::new_v4().simple().to_string(),
            frames: Vec::new(),
            rows: Vec::new(),
            pending: BTreeMap::new(),
            published: 0,
            guard: None,
            _t: PhantomData,
        })
    }

    /// Asks `guard` before publishing at the end of input what no
    /// checkpoint covers, and fails instead if it says no: a group worker
    /// passes one that says whether it still holds its partition.
    pub fn with_guard(mut self, guard: std::sync::Arc<dyn Fn() -> bool + Send + Sync>) -> Self {
        self.guard = Some(guard);
        self
    }

    fn seal_frame(&mut self) -> Result<(), SinkError> {
        if self.rows.is_empty() {
            return Ok(());
        }
        let frame = rmp_serde::to_vec(&self.rows)
            .map_err(|e| SinkError::Other(format!("JetStream sink {}: cannot encode a record: {e}", self.subject)))?;
        self.rows.clear();
        self.frames.push(Snapshot::from_bytes(frame));
        Ok(())
    }

    fn failed(&self, e: NatsError) -> SinkError {
        SinkError::Other(format!("JetStream sink {}: {e}", self.subject))
    }

    /// Publishes the given epochs (idempotently) and waits for every
    /// acknowledgement; returns the highest stream sequence acknowledged.
    fn publish(&self, epochs: Vec<(u64, Epoch)>) -> Result<u64, NatsError> {
        let (subject, name) = (self.subject.clone(), self.name.clone());
        self.nats.call(move |js| async move {
            let mut acks: std::collections::VecDeque<PublishAckFuture> = std::collections::VecDeque::new();
            let mut last = 0u64;
            let wait = |ack: PublishAckFuture, subject: String| async move {
                ack.await.map(|a| a.sequence).map_err(|e| NatsError::jetstream(format!("publishing to {subject}"), e))
            };
            for (epoch, e) in epochs {
                for (n, frame) in e.frames.into_iter().enumerate() {
                    let msg = PublishMessage::build()
                        .payload(Bytes::from(frame.into_bytes()))
                        .message_id(format!("{name}.{}.{epoch}.{n}", e.run))
                        .header(EPOCH_HEADER, epoch.to_string().as_str());
                    let ack = js
                        .send_publish(subject.clone(), msg)
                        .await
                        .map_err(|err| NatsError::jetstream(format!("publishing to {subject}"), err))?;
                    acks.push_back(ack);
                    if acks.len() >= IN_FLIGHT {
                        let a = acks.pop_front().expect("not empty");
                        last = last.max(wait(a, subject.clone()).await?);
                    }
                }
            }
            while let Some(a) = acks.pop_front() {
                last = last.max(wait(a, subject.clone()).await?);
            }
            Ok(last)
        })
    }

    /// Deletes this sink's messages after stream sequence `after` whose
    /// epoch is later than `epoch`: what a crashed run published beyond
    /// the checkpoint being restored.
    fn take_back(&self, after: u64, epoch: u64) -> Result<u64, NatsError> {
        let (stream, subject) = (self.stream.clone(), self.subject.clone());
        self.nats.call(move |js| async move {
            let s = js.get_stream(&stream).await.map_err(|e| NatsError::jetstream(format!("stream {stream}"), e))?;
            let mut seq = after + 1;
            let mut deleted = 0u64;
            loop {
                let got = s.raw_message_builder().sequence(seq).next_by_subject(subject.clone()).send().await;
                let m = match got {
                    Ok(m) => m,
                    // No message of the subject at or after `seq`.
                    Err(e) if matches!(e.kind(), RawMessageErrorKind::NoMessageFound) => break,
                    Err(e) => return Err(NatsError::jetstream(format!("reading back {subject} from {seq}"), e)),
                };
                let later =
                    m.headers.get(EPOCH_HEADER).and_then(|v| v.as_str().parse::<u64>().ok()).is_some_and(|e| e > epoch);
                if later {
                    s.delete_message(m.sequence)
                        .await
                        .map_err(|e| NatsError::jetstream(format!("deleting {subject} sequence {}", m.sequence), e))?;
                    deleted += 1;
                }
                seq = m.sequence + 1;
            }
            Ok(deleted)
        })
    }
}

impl<T: Serialize + Send + 'static> Sink<T> for JetStreamSink<T> {
    fn write(&mut self, batch: &mut Vec<Record<T>>) -> Result<(), SinkError> {
        for r in batch.drain(..) {
            self.rows.push(r.value);
            if self.rows.len() >= ROWS_PER_MESSAGE {
                self.seal_frame()?;
            }
        }
        Ok(())
    }

    fn pre_commit(&mut self, id: CheckpointId) -> Result<Snapshot, SinkError> {
        self.seal_frame()?;
        let frames = std::mem::take(&mut self.frames);
        self.pending.insert(id.seq, Epoch { run: self.run.clone(), frames });
        let state = SinkStateRef { subject: &self.subject, pending: &self.pending, published: self.published };
        Snapshot::encode(&state).map_err(|e| SinkError::Other(format!("JetStream sink {}: {e}", self.subject)))
    }

    fn commit(&mut self, id: CheckpointId) -> Result<(), SinkError> {
        let later = self.pending.split_off(&(id.seq + 1));
        let due: Vec<(u64, Epoch)> = std::mem::replace(&mut self.pending, later).into_iter().collect();
        if due.is_empty() {
            return Ok(());
        }
        let last = self.publish(due).map_err(|e| self.failed(e))?;
        self.published = self.published.max(last);
        Ok(())
    }

    fn finish(&mut self) -> Result<(), SinkError> {
        if self.guard.as_ref().is_some_and(|g| !g()) {
            return Err(SinkError::Other(format!(
                "JetStream sink {}: not publishing the end of input: the partition belongs to another worker now",
                self.subject
            )));
        }
        self.seal_frame()?;
        let frames = std::mem::take(&mut self.frames);
        let mut due: Vec<(u64, Epoch)> = std::mem::take(&mut self.pending).into_iter().collect();
        due.push((FINAL, Epoch { run: self.run.clone(), frames }));
        let last = self.publish(due).map_err(|e| self.failed(e))?;
        self.published = self.published.max(last);
        Ok(())
    }

    fn restore(&mut self, id: CheckpointId, state: &Snapshot) -> Result<(), SinkError> {
        let state: SinkState =
            state.decode().map_err(|e| SinkError::Other(format!("JetStream sink {}: {e}", self.subject)))?;
        if state.subject != self.subject {
            return Err(SinkError::Other(format!(
                "JetStream sink {}: checkpoint {} was written by a sink of {}",
                self.subject, id.seq, state.subject
            )));
        }
        // Take back what was published beyond this checkpoint, then
        // publish again what it covers (the copies are dropped).
        let deleted = self.take_back(state.published, id.seq).map_err(|e| self.failed(e))?;
        if deleted > 0 {
            tracing::warn!(subject = %self.subject, deleted, checkpoint = id.seq,
                "JetStream sink: took back messages published after the checkpoint being restored");
        }
        let due: Vec<(u64, Epoch)> = state.pending.into_iter().filter(|(e, _)| *e <= id.seq).collect();
        let last = self.publish(due).map_err(|e| self.failed(e))?;
        self.published = state.published.max(last);
        self.pending.clear();
        self.frames.clear();
        self.rows.clear();
        Ok(())
    }
}
