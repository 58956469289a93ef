//! The built-in sinks: a collector for tests, a closure, stdout, and files
//! of CSV rows or JSON lines.

use std::fmt;
use std::fs::File;
use std::io::{BufWriter, Write};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

use serde::Serialize;

use crate::message::Record;
use crate::sink::{Sink, SinkError};

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
