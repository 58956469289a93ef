//! The source of stage two: one partition of a repartition stream, every
//! record once, with the minimum watermark of the upstream partitions.

use std::collections::VecDeque;
use std::marker::PhantomData;
use std::task::{Context, Poll};

use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};
use tokio::sync::mpsc;
use weir_actors::dev::{Source, SourceBatch, SourceStatus};
use weir_actors::{DeadLetter, Snapshot, SnapshotError, Timestamp};

use super::{Repartition, FROM_HEADER, INDEX_HEADER, WATERMARK_HEADER};
use crate::nats::partition_subject;
use crate::nats::source::{fetch, Fetched, AHEAD};

/// Partition `q` of a [`Repartition`] stream as a [`Source`] (see the
/// module docs).
///
/// It reads the partition in stream order, skips every record of an
/// upstream partition whose index it has already handed on, reports the
/// minimum of the upstream partitions' watermarks as its own
/// ([`Source::watermark`]) and ends once every upstream partition has
/// sent its end marker. Its position (the stream sequence, and per
/// upstream the next index and the watermark) is part of every
/// checkpoint. A message that is not what a [`super::RepartitionSink`]
/// writes, or that shows records missing, becomes a [`DeadLetter`].
pub struct RepartitionSource<T> {
    from: Repartition,
    subject: String,
    pos: Position,
    /// The rest of message `pos.seq`'s records, from upstream `upstream`,
    /// and the watermark that upstream has after them.
    current: VecDeque<T>,
    upstream: usize,
    current_wm: Timestamp,
    rx: Option<mpsc::Receiver<Fetched>>,
    _t: PhantomData<fn() -> T>,
}

impl<T> std::fmt::Debug for RepartitionSource<T> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RepartitionSource")
            .field("subject", &self.subject)
            .field("pos", &self.pos)
            .finish_non_exhaustive()
    }
}

/// What a checkpoint records of a [`RepartitionSource`].
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
struct Position {
    subject: String,
    /// The stream sequence of the message being handed on, or of the next
    /// one (0: the start). Its records below `next` are skipped when it is
    /// read again.
    seq: u64,
    /// Per upstream partition: the index of the next record expected.
    next: Vec<u64>,
    /// Per upstream partition: its watermark (`i64::MAX` once it ended).
    wm: Vec<Timestamp>,
    ended: Vec<bool>,
}

/// What the headers of a message say.
struct Tags {
    from: usize,
    index: u64,
    wm: Option<Timestamp>,
}

impl<T: DeserializeOwned + Send + 'static> RepartitionSource<T> {
    pub(super) fn new(from: Repartition, q: usize) -> Self {
        let subject = partition_subject(&from.stream, q);
        let n = from.upstreams;
        let pos = Position {
            subject: subject.clone(),
            seq: 0,
            next: vec![0; n],
            wm: vec![i64::MIN; n],
            ended: vec![false; n],
        };
        RepartitionSource {
            from,
            subject,
            pos,
            current: VecDeque::new(),
            upstream: 0,
            current_wm: i64::MIN,
            rx: None,
            _t: PhantomData,
        }
    }

    fn origin(&self, seq: u64) -> String {
        format!("nats repartition stream {} subject {} sequence {seq}", self.from.stream, self.subject)
    }

    fn all_ended(&self) -> bool {
        self.pos.ended.iter().all(|e| *e)
    }

    fn start(&mut self) -> &mut mpsc::Receiver<Fetched> {
        let (tx, rx) = mpsc::channel(AHEAD);
        let js = self.from.nats.control_js();
        let (stream, subject, from) = (self.from.stream.clone(), self.subject.clone(), self.pos.seq);
        self.from.nats.spawn(fetch(js, stream, subject, from, false, tx));
        self.rx.insert(rx)
    }

    fn tags(&self, headers: Option<&async_nats::HeaderMap>) -> Result<Tags, String> {
        let h = headers.ok_or("a message without headers: not written by a repartition sink")?;
        let get = |name: &str| h.get(name).map(|v| v.as_str().to_string());
        let from = get(FROM_HEADER)
            .and_then(|v| v.parse::<usize>().ok())
            .ok_or(format!("no upstream partition in {FROM_HEADER}: not written by a repartition sink"))?;
        if from >= self.from.upstreams {
            return Err(format!("upstream partition {from}, but the stream has {} upstreams", self.from.upstreams));
        }
        let index = get(INDEX_HEADER)
            .and_then(|v| v.parse::<u64>().ok())
            .ok_or(format!("no record index in {INDEX_HEADER}: not written by a repartition sink"))?;
        let wm = match get(WATERMARK_HEADER) {
            None => None,
            Some(v) => Some(v.parse::<i64>().map_err(|_| format!("{WATERMARK_HEADER} {v:?} is not a timestamp"))?),
        };
        Ok(Tags { from, index, wm })
    }

    /// Takes in message `seq`: what of it is new goes to `self.current`.
    fn take(&mut self, seq: u64, tags: Tags, end: bool, payload: &[u8]) -> Result<(), DeadLetter> {
        let origin = self.origin(seq);
        let dead = |e: String| DeadLetter::new(origin.clone(), 0, 0, e).with_raw(payload);
        let u = tags.from;
        let expected = self.pos.next[u];
        if end {
            if self.pos.ended[u] {
                return Ok(());
            }
            self.pos.ended[u] = true;
            self.pos.wm[u] = i64::MAX;
            if tags.index > expected {
                return Err(dead(format!(
                    "upstream {u} ended after record {}, but records {expected}..{} never arrived",
                    tags.index, tags.index
                )));
            }
            return Ok(());
        }
        let mut rows: Vec<T> =
            rmp_serde::from_slice(payload).map_err(|e| dead(format!("not an rmp-serde frame of records: {e}")))?;
        let n = rows.len() as u64;
        let mut gap = None;
        if tags.index + n <= expected {
            rows.clear(); // all already handed on: a replay or a frozen writer
        } else if tags.index >= expected {
            if tags.index > expected {
                gap = Some(dead(format!("records {expected}..{} of upstream {u} never arrived", tags.index)));
                self.pos.next[u] = tags.index;
            }
        } else {
            rows.drain(..(expected - tags.index) as usize);
        }
        self.current.extend(rows);
        self.upstream = u;
        self.current_wm = tags.wm.unwrap_or(i64::MIN);
        if self.current.is_empty() {
            self.done_with_message(seq);
        }
        gap.map_or(Ok(()), Err)
    }

    /// Every new record of message `seq` was handed on: its watermark now
    /// holds.
    fn done_with_message(&mut self, seq: u64) {
        let u = self.upstream;
        if !self.pos.ended[u] {
            self.pos.wm[u] = self.pos.wm[u].max(self.current_wm);
        }
        self.pos.seq = seq + 1;
    }
}

impl<T: DeserializeOwned + Send + 'static> Source for RepartitionSource<T> {
    type Item = T;

    fn poll_batch(&mut self, cx: &mut Context<'_>, out: &mut SourceBatch<'_, T>) -> Poll<SourceStatus> {
        loop {
            while out.remaining() > 0 {
                let Some(r) = self.current.pop_front() else { break };
                out.push(r);
                self.pos.next[self.upstream] += 1;
                if self.current.is_empty() {
                    self.done_with_message(self.pos.seq);
                }
            }
            if out.remaining() == 0 {
                return Poll::Ready(SourceStatus::Ready);
            }
            if self.all_ended() {
                self.rx = None;
                return Poll::Ready(SourceStatus::Exhausted);
            }
            let rx = match self.rx.as_mut() {
                Some(rx) => rx,
                None => self.start(),
            };
            match rx.poll_recv(cx) {
                Poll::Ready(Some(Fetched::Message { seq, payload, headers, end, .. })) => {
                    self.pos.seq = seq;
                    let taken = match self.tags(headers.as_ref()) {
                        Ok(tags) => self.take(seq, tags, end, &payload),
                        Err(e) => {
                            self.pos.seq = seq + 1;
                            Err(DeadLetter::new(self.origin(seq), 0, 0, e).with_raw(&payload))
                        }
                    };
                    if end {
                        self.pos.seq = seq + 1;
                    }
                    if let Err(dead) = taken {
                        if self.current.is_empty() {
                            self.pos.seq = seq + 1;
                        }
                        out.dead_letter(dead);
                    }
                }
                Poll::Ready(Some(Fetched::Failed(e))) => {
                    tracing::warn!(subject = %self.subject, error = %e, "repartition source: waiting for the server");
                }
                Poll::Ready(None) => {
                    out.dead_letter(DeadLetter::new(self.origin(self.pos.seq), 0, 0, "the NATS I/O thread stopped"));
                    self.pos.ended.iter_mut().for_each(|e| *e = true);
                    return Poll::Ready(SourceStatus::Exhausted);
                }
                Poll::Pending => {
                    return if out.is_empty() { Poll::Pending } else { Poll::Ready(SourceStatus::Ready) };
                }
            }
        }
    }

    fn watermark(&self) -> Option<Timestamp> {
        self.pos.wm.iter().copied().min()
    }

    fn position(&self) -> Option<Snapshot> {
        Snapshot::encode(&self.pos).ok()
    }

    fn seek(&mut self, position: &Snapshot) -> Result<(), SnapshotError> {
        let p: Position = position.decode()?;
        if p.subject != self.subject || p.next.len() != self.from.upstreams {
            return Err(SnapshotError::Mismatch {
                what: format!("the repartition source of {}", self.subject),
                reason: format!("the checkpoint read subject {} from {} upstream partitions", p.subject, p.next.len()),
            });
        }
        self.pos = p;
        self.current.clear();
        self.rx = None;
        Ok(())
    }
}
