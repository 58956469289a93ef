//! Sinks: where results leave a job.
//!
//! A [`Sink`] receives batches on its sink actor's thread. Built in: a
//! collector for tests ([`CollectSink`]), stdout ([`StdoutSink`]), files of
//! CSV or JSON lines ([`FileSink`]), any closure ([`FnSink`]), and an actix
//! `Recipient` (see `Stream::sink_to_recipient`), which delivers each result
//! as a message to the application's own actor, waiting when that actor's
//! mailbox is full. A job is complete when every sink has seen the end of its
//! input and finished.

pub mod transactional;

use std::fmt;
use std::fs::File;
use std::io::{BufWriter, Write};
use std::path::{Path, PathBuf};
use std::sync::atomic::Ordering::Relaxed;
use std::sync::{Arc, Mutex};

use actix::dev::SendError;
use actix::{Actor, AsyncContext, Context, Handler, Recipient};
use serde::Serialize;

use crate::checkpoint::align::Alignment;
use crate::checkpoint::{Ack, Completed, Participant};
use crate::job::JobShared;
use crate::message::{CheckpointId, Envelope, Message, Record, Timestamp};
use crate::metrics::ActorMetrics;
use crate::time::{InputEvent, InputTracker};

/// A sink failed: what and where.
#[derive(Debug, thiserror::Error)]
pub enum SinkError {
    /// Writing to a file failed.
    #[error("cannot write {path}: {source}")]
    Io {
        /// The file.
        path: PathBuf,
        /// The I/O error.
        source: std::io::Error,
    },
    /// A record could not be encoded.
    #[error("cannot encode a record for {path}: {message}")]
    Encode {
        /// The file.
        path: PathBuf,
        /// The encoder's error.
        message: String,
    },
    /// A user sink's own error.
    #[error("{0}")]
    Other(String),
}

/// Somewhere results go.
///
/// Called on the sink actor's thread, in stream order. `write` takes the
/// records out of `batch`. An error stops the sink and fails the job (the
/// error names the sink).
pub trait Sink<T>: Send + 'static {
    /// Writes a batch of records.
    fn write(&mut self, batch: &mut Vec<Record<T>>) -> Result<(), SinkError>;

    /// The watermark advanced. Default: nothing.
    fn on_watermark(&mut self, wm: Timestamp) -> Result<(), SinkError> {
        let _ = wm;
        Ok(())
    }

    /// End of input: flush and close, making everything written visible.
    /// Default: nothing.
    fn finish(&mut self) -> Result<(), SinkError> {
        Ok(())
    }

    /// A checkpoint barrier arrived: everything written before it belongs
    /// to checkpoint `id`. Make it durable but not yet visible (phase one of
    /// a two-phase commit) and return the state to snapshot. Default: no
    /// state.
    fn pre_commit(&mut self, id: CheckpointId) -> Result<Vec<u8>, SinkError> {
        let _ = id;
        Ok(Vec::new())
    }

    /// Checkpoint `id` completed: make what it covers visible (phase two).
    /// Default: nothing.
    fn commit(&mut self, id: CheckpointId) -> Result<(), SinkError> {
        let _ = id;
        Ok(())
    }

    /// The job resumes from checkpoint `id`, for which `pre_commit` returned
    /// `state`: keep what that checkpoint covers, discard anything written
    /// after it. Called before the first write. Default: nothing.
    fn restore(&mut self, id: CheckpointId, state: &[u8]) -> Result<(), SinkError> {
        let _ = (id, state);
        Ok(())
    }
}

/// Collects every record in memory; read them through [`Collected`].
#[derive(Debug)]
pub struct CollectSink<T> {
    into: Collected<T>,
}

/// The records a [`CollectSink`] received, shared with the sink.
#[derive(Debug)]
pub struct Collected<T> {
    records: Arc<Mutex<Vec<Record<T>>>>,
}

impl<T> Clone for Collected<T> {
    fn clone(&self) -> Self {
        Collected { records: Arc::clone(&self.records) }
    }
}

impl<T> CollectSink<T> {
    /// A sink and the handle to read what it collects.
    pub fn new() -> (Self, Collected<T>) {
        let c = Collected { records: Arc::new(Mutex::new(Vec::new())) };
        (CollectSink { into: c.clone() }, c)
    }
}

impl<T: Clone> Collected<T> {
    /// A copy of the records received so far, in arrival order.
    pub fn records(&self) -> Vec<Record<T>> {
        self.records.lock().map(|r| r.clone()).unwrap_or_default()
    }

    /// The values received so far, in arrival order.
    pub fn values(&self) -> Vec<T> {
        self.records().into_iter().map(|r| r.value).collect()
    }
}

impl<T> Collected<T> {
    /// Number of records received so far.
    pub fn len(&self) -> usize {
        self.records.lock().map(|r| r.len()).unwrap_or(0)
    }

    /// Whether nothing was received.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Takes the records received so far.
    pub fn take(&self) -> Vec<Record<T>> {
        self.records.lock().map(|mut r| std::mem::take(&mut *r)).unwrap_or_default()
    }
}

impl<T: Send + 'static> Sink<T> for CollectSink<T> {
    fn write(&mut self, batch: &mut Vec<Record<T>>) -> Result<(), SinkError> {
        let mut r = self.into.records.lock().map_err(|_| SinkError::Other("collector poisoned".into()))?;
        r.append(batch);
        Ok(())
    }
}

/// Calls a closure for every record.
pub struct FnSink<F> {
    f: F,
}

impl<F> FnSink<F> {
    /// A sink calling `f(record)`.
    pub fn new(f: F) -> Self {
        FnSink { f }
    }
}

impl<F> fmt::Debug for FnSink<F> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("FnSink")
    }
}

impl<T, F> Sink<T> for FnSink<F>
where
    T: Send + 'static,
    F: FnMut(Record<T>) + Send + 'static,
{
    fn write(&mut self, batch: &mut Vec<Record<T>>) -> Result<(), SinkError> {
        batch.drain(..).for_each(&mut self.f);
        Ok(())
    }
}

/// Prints each record as `<ts> <value:?>` on stdout.
#[derive(Debug, Default)]
pub struct StdoutSink;

impl<T: fmt::Debug + Send + 'static> Sink<T> for StdoutSink {
    fn write(&mut self, batch: &mut Vec<Record<T>>) -> Result<(), SinkError> {
        let stdout = std::io::stdout();
        let mut w = stdout.lock();
        for r in batch.drain(..) {
            writeln!(w, "{} {:?}", r.ts, r.value).map_err(|e| SinkError::Io { path: "<stdout>".into(), source: e })?;
        }
        Ok(())
    }
}

enum FileWriter {
    Csv(Box<csv::Writer<File>>),
    Json(BufWriter<File>),
}

/// Writes each record's value as a CSV row (header from the field names) or
/// a JSON line. The file is created when the job starts writing.
pub struct FileSink {
    path: PathBuf,
    csv: bool,
    writer: Option<FileWriter>,
}

impl fmt::Debug for FileSink {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("FileSink").field("path", &self.path).field("csv", &self.csv).finish()
    }
}

impl FileSink {
    /// CSV rows with a header line. Values must serialize as flat records
    /// (structs or tuples of scalars).
    pub fn csv(path: impl AsRef<Path>) -> Self {
        FileSink { path: path.as_ref().to_path_buf(), csv: true, writer: None }
    }

    /// One JSON value per line.
    pub fn json_lines(path: impl AsRef<Path>) -> Self {
        FileSink { path: path.as_ref().to_path_buf(), csv: false, writer: None }
    }

    fn io(&self, source: std::io::Error) -> SinkError {
        SinkError::Io { path: self.path.clone(), source }
    }

    fn writer(&mut self) -> Result<&mut FileWriter, SinkError> {
        if self.writer.is_none() {
            let file = File::create(&self.path).map_err(|e| self.io(e))?;
            self.writer = Some(if self.csv {
                FileWriter::Csv(Box::new(csv::Writer::from_writer(file)))
            } else {
                FileWriter::Json(BufWriter::new(file))
            });
        }
        Ok(self.writer.as_mut().expect("created above"))
    }
}

impl<T: Serialize + Send + 'static> Sink<T> for FileSink {
    fn write(&mut self, batch: &mut Vec<Record<T>>) -> Result<(), SinkError> {
        let path = self.path.clone();
        let encode = |e: &dyn fmt::Display| SinkError::Encode { path: path.clone(), message: e.to_string() };
        match self.writer()? {
            FileWriter::Csv(w) => {
                for r in batch.drain(..) {
                    w.serialize(&r.value).map_err(|e| encode(&e))?;
                }
            }
            FileWriter::Json(w) => {
                for r in batch.drain(..) {
                    serde_json::to_writer(&mut *w, &r.value).map_err(|e| encode(&e))?;
                    w.write_all(b"\n").map_err(|e| SinkError::Io { path: path.clone(), source: e })?;
                }
            }
        }
        Ok(())
    }

    fn finish(&mut self) -> Result<(), SinkError> {
        // A sink that got no record still leaves a (possibly empty) file.
        let path = self.path.clone();
        let io = |e| SinkError::Io { path: path.clone(), source: e };
        match self.writer()? {
            FileWriter::Csv(w) => w.flush().map_err(io)?,
            FileWriter::Json(w) => w.flush().map_err(io)?,
        }
        Ok(())
    }
}

/// The actor around a [`Sink`].
pub(crate) struct SinkActor<T, S> {
    sink: Box<S>,
    inputs: InputTracker,
    align: Box<Alignment<T>>,
    participant: Option<Participant>,
    metrics: Arc<ActorMetrics>,
    job: Arc<JobShared>,
    failed: bool,
    _t: std::marker::PhantomData<fn(T)>,
}

impl<T: Send + 'static, S: Sink<T>> SinkActor<T, S> {
    pub(crate) fn new(sink: S, inputs: usize, metrics: Arc<ActorMetrics>, job: Arc<JobShared>) -> Self {
        SinkActor { sink: Box::new(sink), align: Box::default(), participant: None, inputs: InputTracker::new(inputs), metrics, job, failed: false, _t: std::marker::PhantomData }
    }

    /// Takes part in checkpoints; restores the sink first if resuming.
    pub(crate) fn checkpointed(&mut self, participant: Participant, restore: Option<(CheckpointId, &[u8])>) -> Result<(), String> {
        if let Some((id, state)) = restore {
            self.sink.restore(id, state).map_err(|e| format!("{}: {e}", self.metrics.name))?;
        }
        self.participant = Some(participant);
        Ok(())
    }

    fn on_barrier(&mut self, id: CheckpointId) {
        let (alignment, held) = self.align.complete();
        if let Some(p) = &self.participant {
            match self.sink.pre_commit(id) {
                Ok(state) => p.ack(Ack { id, actor: self.metrics.name.clone(), state, alignment }),
                Err(e) => self.fail(e),
            }
        }
        for env in held {
            self.dispatch(env);
        }
    }

    fn fail(&mut self, e: SinkError) {
        if !self.failed {
            self.failed = true;
            self.job.sink_failed(&self.metrics.name, e);
        }
    }
}

impl<T: Send + 'static, S: Sink<T>> Actor for SinkActor<T, S> {
    type Context = Context<Self>;

    fn started(&mut self, _ctx: &mut Context<Self>) {
        self.metrics.actor_started();
    }

    fn stopped(&mut self, _ctx: &mut Context<Self>) {
        self.metrics.actor_stopped();
    }
}

impl<T: Send + 'static, S: Sink<T>> Handler<Envelope<T>> for SinkActor<T, S> {
    type Result = ();

    fn handle(&mut self, env: Envelope<T>, _ctx: &mut Context<Self>) {
        self.metrics.mailbox.taken();
        self.dispatch(env);
    }
}

impl<T: Send + 'static, S: Sink<T>> Handler<Completed> for SinkActor<T, S> {
    type Result = ();

    fn handle(&mut self, Completed(id): Completed, _ctx: &mut Context<Self>) {
        if !self.failed {
            if let Err(e) = self.sink.commit(id) {
                self.fail(e);
            }
        }
    }
}

impl<T: Send + 'static, S: Sink<T>> SinkActor<T, S> {
    fn dispatch(&mut self, env: Envelope<T>) {
        let Some(env) = self.align.admit(&self.inputs, env) else { return };
        match env.msg {
            Message::Data(mut batch) => {
                let n = batch.len();
                self.metrics.add_in(n);
                self.inputs.on_data(env.input);
                if self.failed {
                    return;
                }
                match self.sink.write(&mut batch) {
                    Ok(()) => self.metrics.add_out(n),
                    Err(e) => self.fail(e),
                }
            }
            msg => match self.inputs.on_message(env.input, &msg) {
                InputEvent::Watermark(wm) => {
                    self.metrics.set_watermark(wm);
                    if let Err(e) = self.sink.on_watermark(wm) {
                        self.fail(e);
                    }
                }
                InputEvent::End => {
                    self.metrics.set_watermark(i64::MAX);
                    if !self.failed {
                        if let Err(e) = self.sink.finish() {
                            self.fail(e);
                        }
                    }
                    self.job.sink_done();
                }
                InputEvent::Barrier(id) => self.on_barrier(id),
                InputEvent::None | InputEvent::Idle => {}
            },
        }
    }
}

/// Delivers each record's value to an actix `Recipient`, waiting while the
/// recipient's mailbox is full.
pub(crate) struct RecipientSinkActor<T: actix::Message<Result = ()> + Send + 'static> {
    pub(crate) participant: Option<Participant>,
    /// The last checkpoint acknowledged.
    acked: u64,
    recipient: Recipient<T>,
    inputs: InputTracker,
    metrics: Arc<ActorMetrics>,
    job: Arc<JobShared>,
}

impl<T: actix::Message<Result = ()> + Send + 'static> RecipientSinkActor<T> {
    pub(crate) fn new(recipient: Recipient<T>, inputs: usize, metrics: Arc<ActorMetrics>, job: Arc<JobShared>) -> Self {
        RecipientSinkActor { participant: None, acked: 0, recipient, inputs: InputTracker::new(inputs), metrics, job }
    }
}

impl<T: actix::Message<Result = ()> + Send + 'static> Actor for RecipientSinkActor<T> {
    type Context = Context<Self>;

    fn started(&mut self, _ctx: &mut Context<Self>) {
        self.metrics.actor_started();
    }

    fn stopped(&mut self, _ctx: &mut Context<Self>) {
        self.metrics.actor_stopped();
    }
}

impl<T: actix::Message<Result = ()> + Send + 'static> Handler<Envelope<T>> for RecipientSinkActor<T> {
    type Result = ();

    fn handle(&mut self, env: Envelope<T>, ctx: &mut Context<Self>) {
        self.metrics.mailbox.taken();
        match env.msg {
            // Delivery to an actor cannot be taken back and this sink keeps
            // no state: it acknowledges the first barrier of each checkpoint
            // without aligning (at-least-once across a crash).
            Message::Barrier(id) => {
                if id.seq > self.acked {
                    self.acked = id.seq;
                    if let Some(p) = &self.participant {
                        p.ack(Ack { id, actor: self.metrics.name.clone(), state: Vec::new(), alignment: Default::default() });
                    }
                }
            }
            Message::Data(batch) => {
                let n = batch.len();
                self.metrics.add_in(n);
                self.inputs.on_data(env.input);
                let mut rest = batch.into_iter();
                let mut delivered = 0;
                while let Some(r) = rest.next() {
                    match self.recipient.try_send(r.value) {
                        Ok(()) => delivered += 1,
                        Err(SendError::Full(v)) => {
                            // Hold this and the rest; deliver them in order,
                            // handling nothing else meanwhile.
                            let held: Vec<T> = std::iter::once(v).chain(rest.map(|r| r.value)).collect();
                            let recipient = self.recipient.clone();
                            let metrics = Arc::clone(&self.metrics);
                            let job = Arc::clone(&self.job);
                            self.metrics.block_started();
                            ctx.wait(actix::fut::wrap_future(async move {
                                for v in held {
                                    if recipient.send(v).await.is_err() {
                                        job.sink_failed(&metrics.name, SinkError::Other("the recipient actor has stopped".into()));
                                        return;
                                    }
                                    metrics.records_out.fetch_add(1, Relaxed);
                                }
                                metrics.block_ended();
                            }));
                            break;
                        }
                        Err(SendError::Closed(_)) => {
                            self.job.sink_failed(&self.metrics.name, SinkError::Other("the recipient actor has stopped".into()));
                            return;
                        }
                    }
                }
                self.metrics.records_out.fetch_add(delivered, Relaxed);
                self.metrics.batches_out.fetch_add(1, Relaxed);
            }
            msg => match self.inputs.on_message(env.input, &msg) {
                InputEvent::Watermark(wm) => self.metrics.set_watermark(wm),
                InputEvent::End => {
                    // Runs after any delivery this actor is waiting on.
                    self.job.sink_done();
                }
                _ => {}
            },
        }
    }
}
