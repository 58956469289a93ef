//! The JetStream source: one partition of a partitioned stream, replayable
//! from a stream sequence.

use std::collections::VecDeque;
use std::marker::PhantomData;
use std::task::{Context, Poll};
use std::time::Duration;

use async_nats::jetstream::consumer::{pull, DeliverPolicy};
use bytes::Bytes;
use futures_util::StreamExt;
use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};
use tokio::sync::mpsc;
use weir_actors::dev::{Source, SourceBatch, SourceStatus};
use weir_actors::{DeadLetter, Snapshot, SnapshotError};

use super::{partition_subject, Format, Nats, END_HEADER};

/// Messages fetched ahead of the source, per partition: with frames of
/// 1,024 records, 16 messages are about the 16 batches a mailbox holds.
pub(super) const AHEAD: usize = 16;
/// Messages a pull asks for at most (ordered consumer `max_batch`): keeps
/// what the server has in flight to the client well under the 64 MiB at
/// which it reports a slow consumer, however many partitions one process
/// reads.
const PULL_BATCH: i64 = 64;
/// How long a pull waits at most (ordered consumer `max_expires`): the
/// idle heartbeat is half of it, and two missed heartbeats make the
/// consumer recreate itself, so a consumer lost with a cluster node is
/// replaced within about twice this, not the client's default minute.
const PULL_EXPIRES: Duration = Duration::from_secs(5);

/// One partition of a partitioned JetStream stream as a [`Source`].
///
/// It reads the partition's subject in stream order from a stream
/// sequence, decodes each message ([`Format`]) on the source actor's
/// thread, and ends at the partition's end marker. Its position (the
/// sequence of the next message and how many of its records were already
/// handed on) is part of every checkpoint; a restored job resumes right
/// after what the checkpoint covers. A message that does not decode
/// becomes a [`DeadLetter`] naming the stream, subject and sequence, and
/// reading goes on. Run one instance per partition
/// (`JobBuilder::parallel_source` with [`Nats::partitions`] instances):
/// each partition then has its own watermark and an idle or ended one
/// does not hold the others back.
pub struct JetStreamSource<T> {
    nats: Nats,
    stream: String,
    subject: String,
    format: Format,
    /// Where reading resumes: the stream sequence of the message being
    /// handed on (`current` not empty), or of the next one (0: the start).
    seq: u64,
    /// Records of message `seq` already handed on.
    skip: usize,
    /// The rest of message `seq`'s records.
    current: VecDeque<T>,
    ended: bool,
    rx: Option<mpsc::Receiver<Fetched>>,
    /// Where to write how many messages of the partition follow the last
    /// one taken ([`Self::with_lag`]).
    lag: Option<std::sync::Arc<std::sync::atomic::AtomicU64>>,
    _t: PhantomData<fn() -> T>,
}

impl<T> std::fmt::Debug for JetStreamSource<T> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("JetStreamSource")
            .field("subject", &self.subject)
            .field("seq", &self.seq)
            .field("skip", &self.skip)
            .field("ended", &self.ended)
            .finish_non_exhaustive()
    }
}

/// What the fetching task hands a source.
pub(super) enum Fetched {
    /// A message: its stream sequence, payload and headers, and whether it
    /// is an end marker.
    Message { seq: u64, pending: u64, payload: Bytes, headers: Option<async_nats::HeaderMap>, end: bool },
    /// Reading failed; the task tries again.
    Failed(String),
}

/// What a checkpoint records of a [`JetStreamSource`].
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
struct Position {
    subject: String,
    seq: u64,
    skip: usize,
    ended: bool,
}

impl<T: DeserializeOwned + Send + 'static> JetStreamSource<T> {
    /// Partition `p` of stream `stream` (subject `stream.p`), read from its
    /// start.
    pub fn partition(nats: &Nats, stream: &str, p: usize, format: Format) -> Self {
        Self::subject(nats, stream, &partition_subject(stream, p), format)
    }

    /// Every message of `subject` in stream `stream`, from its start (for a
    /// stream that is not partitioned the weir way).
    pub fn subject(nats: &Nats, stream: &str, subject: &str, format: Format) -> Self {
        JetStreamSource {
            nats: nats.clone(),
            stream: stream.to_string(),
            subject: subject.to_string(),
            format,
            seq: 0,
            skip: 0,
            current: VecDeque::new(),
            ended: false,
            rx: None,
            lag: None,
            _t: PhantomData,
        }
    }

    /// Writes to `gauge`, as each message is taken, how many messages of
    /// the subject follow it on the server (JetStream's count pending to
    /// the consumer): the partition's lag, for
    /// [`super::WorkerStatus::lag`].
    pub fn with_lag(mut self, gauge: std::sync::Arc<std::sync::atomic::AtomicU64>) -> Self {
        self.lag = Some(gauge);
        self
    }

    fn origin(&self, seq: u64) -> String {
        format!("nats stream {} subject {} sequence {seq}", self.stream, self.subject)
    }

    /// Starts the fetching task at `self.seq` (or the start).
    fn start(&mut self) -> &mut mpsc::Receiver<Fetched> {
        let (tx, rx) = mpsc::channel(AHEAD);
        let js = self.nats.control_js();
        let (stream, subject, from) = (self.stream.clone(), self.subject.clone(), self.seq);
        self.nats.spawn(fetch(js, stream, subject, from, true, tx));
        self.rx.insert(rx)
    }

    /// Decodes a message into `self.current`, or a dead letter.
    fn decode(&mut self, seq: u64, payload: &[u8]) -> Result<(), DeadLetter> {
        let failed = |e: String| DeadLetter::new(self.origin(seq), 0, 0, e).with_raw(payload);
        match self.format {
            Format::Json => {
                let record: T =
                    serde_json::from_slice(payload).map_err(|e| failed(format!("not a JSON record: {e}")))?;
                self.current.push_back(record);
            }
            Format::Frames => {
                let records: Vec<T> = rmp_serde::from_slice(payload)
                    .map_err(|e| failed(format!("not an rmp-serde frame of records: {e}")))?;
                self.current.extend(records);
            }
        }
        Ok(())
    }
}

/// Reads `subject` from sequence `from` (0: the start) with an ordered
/// consumer (which recreates itself after a gap or a lost heartbeat; made
/// with `js`, the control context of [`Nats::control_js`], so that a
/// creation the cluster leaves unanswered is given up and tried again in
/// seconds) and
/// hands the messages to the source until the source is gone, or until
/// the first end marker if `until_end` (a subject with several writers has
/// one end marker each).
pub(super) async fn fetch(
    js: async_nats::jetstream::Context,
    stream: String,
    subject: String,
    from: u64,
    until_end: bool,
    tx: mpsc::Sender<Fetched>,
) {
    let mut from = from;
    loop {
        let failed = match read(&js, &stream, &subject, from, until_end, &tx).await {
            Ok(()) => return,
            Err((next, e)) => {
                from = next;
                e
            }
        };
        tracing::warn!(%stream, %subject, from, error = %failed, "JetStream source: reading failed; retrying in 1 s");
        if tx.is_closed() {
            return;
        }
        if tx.capacity() == tx.max_capacity() {
            // Tell the source only when it has nothing else to read, so
            // that a failure does not overtake messages.
            let _ = tx.try_send(Fetched::Failed(failed));
        }
        tokio::time::sleep(Duration::from_secs(1)).await;
    }
}

/// One reading attempt; on failure, the sequence to go on from.
///
/// An ordered consumer of async-nats (0.51) that recreates itself before
/// it has delivered a message starts the new consumer at the stream's
/// start (`DeliverPolicy::All`), not at the sequence it was given. On a
/// cluster this happens: the first pull right after the creation is
/// answered "no responders" when the consumer is not yet running on the
/// server chosen for it. A restored source would then hand on again
/// everything before its checkpoint. So a message below the sequence
/// expected ends that consumer and a new one is made at the right
/// sequence.
async fn read(
    js: &async_nats::jetstream::Context,
    stream: &str,
    subject: &str,
    from: u64,
    until_end: bool,
    tx: &mpsc::Sender<Fetched>,
) -> Result<(), (u64, String)> {
    let s = js.get_stream(stream).await.map_err(|e| (from, format!("stream {stream}: {e}")))?;
    let mut next = from;
    'consumer: loop {
        let deliver_policy =
            if next == 0 { DeliverPolicy::All } else { DeliverPolicy::ByStartSequence { start_sequence: next } };
        let consumer = s
            .create_consumer(pull::OrderedConfig {
                filter_subject: subject.to_string(),
                deliver_policy,
                max_batch: PULL_BATCH,
                max_expires: PULL_EXPIRES,
                ..Default::default()
            })
            .await
            .map_err(|e| (next, format!("a consumer of {subject}: {e}")))?;
        let mut messages = consumer.messages().await.map_err(|e| (next, format!("reading {subject}: {e}")))?;
        while let Some(m) = messages.next().await {
            let m = m.map_err(|e| (next, format!("reading {subject}: {e}")))?;
            let info = m.info().map_err(|e| (next, format!("a message of {subject} without stream info: {e}")))?;
            let (seq, pending) = (info.stream_sequence, info.pending);
            if seq < next {
                tracing::warn!(
                    %subject,
                    seq,
                    expected = next,
                    "JetStream source: the consumer went back (recreated at the stream's start); making a new one"
                );
                continue 'consumer;
            }
            let end = m.headers.as_ref().and_then(|h| h.get(END_HEADER)).is_some();
            next = seq + 1;
            let (payload, headers) = (m.message.payload.clone(), m.message.headers.clone());
            if tx.send(Fetched::Message { seq, pending, payload, headers, end }).await.is_err() || (end && until_end) {
                return Ok(());
            }
        }
        return Err((next, format!("the consumer of {subject} ended")));
    }
}

impl<T: DeserializeOwned + Send + 'static> Source for JetStreamSource<T> {
    type Item = T;

    fn poll_batch(&mut self, cx: &mut Context<'_>, out: &mut SourceBatch<'_, T>) -> Poll<SourceStatus> {
        loop {
            // Hand on what is left of the current message.
            while out.remaining() > 0 {
                match self.current.pop_front() {
                    Some(r) => {
                        out.push(r);
                        self.skip += 1;
                        if self.current.is_empty() {
                            self.seq += 1;
                            self.skip = 0;
                        }
                    }
                    None => break,
                }
            }
            if out.remaining() == 0 {
                return Poll::Ready(SourceStatus::Ready);
            }
            if self.ended {
                return Poll::Ready(SourceStatus::Exhausted);
            }
            let rx = match self.rx.as_mut() {
                Some(rx) => rx,
                None => self.start(),
            };
            match rx.poll_recv(cx) {
                Poll::Ready(Some(Fetched::Message { seq, .. })) if seq < self.seq => {
                    // Handed on before (the fetching task never sends one;
                    // see `read`): never twice.
                    tracing::warn!(subject = %self.subject, seq, expected = self.seq, "JetStream source: dropped a message read before");
                }
                Poll::Ready(Some(Fetched::Message { seq, pending, payload, end, .. })) => {
                    if let Some(lag) = &self.lag {
                        lag.store(pending, std::sync::atomic::Ordering::Relaxed);
                    }
                    if end {
                        (self.seq, self.skip, self.ended) = (seq + 1, 0, true);
                        continue;
                    }
                    // After a restore, `skip` records of message `seq` were
                    // handed on before the checkpoint.
                    let skip = if seq == self.seq { self.skip } else { 0 };
                    match self.decode(seq, &payload) {
                        Ok(()) => {
                            let skip = skip.min(self.current.len());
                            self.current.drain(..skip);
                            (self.seq, self.skip) = if self.current.is_empty() { (seq + 1, 0) } else { (seq, skip) };
                        }
                        Err(dead) => {
                            (self.seq, self.skip) = (seq + 1, 0);
                            out.dead_letter(dead);
                        }
                    }
                }
                Poll::Ready(Some(Fetched::Failed(e))) => {
                    tracing::warn!(subject = %self.subject, error = %e, "JetStream source: waiting for the server");
                }
                Poll::Ready(None) => {
                    // The I/O thread dropped the task: the process is
                    // shutting down. Say so rather than end silently.
                    out.dead_letter(DeadLetter::new(self.origin(self.seq), 0, 0, "the NATS I/O thread stopped"));
                    self.ended = true;
                    return Poll::Ready(SourceStatus::Exhausted);
                }
                Poll::Pending => {
                    return if out.is_empty() { Poll::Pending } else { Poll::Ready(SourceStatus::Ready) };
                }
            }
        }
    }

    fn position(&self) -> Option<Snapshot> {
        Snapshot::encode(&Position { subject: self.subject.clone(), seq: self.seq, skip: self.skip, ended: self.ended })
            .ok()
    }

    fn seek(&mut self, position: &Snapshot) -> Result<(), SnapshotError> {
        let p: Position = position.decode()?;
        if p.subject != self.subject {
            return Err(SnapshotError::Mismatch {
                what: format!("the JetStream source of {}", self.subject),
                reason: format!("the checkpoint read subject {}", p.subject),
            });
        }
        (self.seq, self.skip, self.ended) = (p.seq, p.skip, p.ended);
        tracing::debug!(subject = %self.subject, seq = p.seq, skip = p.skip, "source seek");
        self.current.clear();
        self.rx = None;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use std::process::{Command, Stdio};

    use async_nats::jetstream::stream;

    use super::*;
    use crate::nats::NatsError;

    /// A nats-server with JetStream on a free port of 127.0.0.1 (killed
    /// when dropped), from `$WEIR_NATS_SERVER`; `None` without one.
    struct Server(std::process::Child, String, #[allow(dead_code)] tempfile::TempDir);

    impl Drop for Server {
        fn drop(&mut self) {
            let _ = self.0.kill();
            let _ = self.0.wait();
        }
    }

    fn server() -> Option<Server> {
        let Some(bin) = std::env::var_os("WEIR_NATS_SERVER") else {
            eprintln!("skipped: WEIR_NATS_SERVER is not set");
            return None;
        };
        let port = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
        let store = tempfile::tempdir().unwrap();
        let child = Command::new(bin)
            .args(["-js", "-a", "127.0.0.1", "-p", &port.to_string(), "-sd"])
            .arg(store.path())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        let deadline = std::time::Instant::now() + Duration::from_secs(10);
        while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
            assert!(std::time::Instant::now() < deadline, "nats-server did not listen");
            std::thread::sleep(Duration::from_millis(20));
        }
        Some(Server(child, format!("nats://127.0.0.1:{port}"), store))
    }

    fn publish(nats: &Nats, subject: &str, n: usize) {
        let subject = subject.to_string();
        nats.call(move |js| async move {
            for i in 0..n {
                js.publish(subject.clone(), format!("{i}").into())
                    .await
                    .map_err(|e| NatsError::jetstream("publish", e))?
                    .await
                    .map_err(|e| NatsError::jetstream("publish", e))?;
            }
            Ok(())
        })
        .unwrap();
    }

    /// What made a restored partition count part of its input twice on a
    /// 3-node cluster: the ordered consumer of async-nats 0.51, recreated
    /// before its first message (there: "no responders" to the first pull;
    /// here: the consumer deleted under it), starts again at the stream's
    /// start, not at the sequence it was created with. The source must
    /// still hand on nothing below the sequence it asked for.
    #[test]
    fn a_consumer_recreated_before_its_first_message_does_not_go_back_to_the_start() {
        let Some(server) = server() else { return };
        let nats = Nats::connect(&server.1).unwrap();
        nats.call(|js| async move {
            js.create_stream(stream::Config { name: "t".into(), subjects: vec!["t.*".into()], ..Default::default() })
                .await
                .map_err(|e| NatsError::jetstream("stream t", e))?;
            Ok(())
        })
        .unwrap();
        // Messages 1..=5 were read before the checkpoint: read from 6.
        publish(&nats, "t.0", 5);
        let (tx, mut rx) = mpsc::channel(AHEAD);
        nats.spawn(fetch(nats.control_js(), "t".into(), "t.0".into(), 6, false, tx));
        // Once its consumer waits for message 6, delete it under it.
        let deadline = std::time::Instant::now() + Duration::from_secs(10);
        let name = loop {
            let names: Vec<String> = nats
                .call(|js| async move {
                    use futures_util::TryStreamExt;
                    let s = js.get_stream("t").await.map_err(|e| NatsError::jetstream("stream t", e))?;
                    s.consumer_names().try_collect().await.map_err(|e| NatsError::jetstream("consumers of t", e))
                })
                .unwrap();
            if let Some(n) = names.into_iter().next() {
                break n;
            }
            assert!(std::time::Instant::now() < deadline, "no consumer was made");
            std::thread::sleep(Duration::from_millis(20));
        };
        std::thread::sleep(Duration::from_millis(200));
        nats.call(move |js| async move {
            js.delete_consumer_from_stream(&name, "t").await.map_err(|e| NatsError::jetstream("delete", e))?;
            Ok(())
        })
        .unwrap();
        std::thread::sleep(Duration::from_millis(500));
        publish(&nats, "t.0", 1);
        let first = nats
            .call(move |_| async move {
                match tokio::time::timeout(Duration::from_secs(30), rx.recv()).await {
                    Ok(Some(Fetched::Message { seq, .. })) => Ok(seq),
                    Ok(Some(Fetched::Failed(e))) => Err(NatsError::jetstream("fetch", e)),
                    Ok(None) | Err(_) => Err(NatsError::jetstream("fetch", "nothing within 30 s")),
                }
            })
            .unwrap();
        assert_eq!(first, 6, "the first message handed on is the one asked for");
    }
}
