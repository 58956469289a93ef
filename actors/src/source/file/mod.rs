//! A file source: JSON lines or CSV, deserialized with serde.
//!
//! **Nothing is dropped silently.** Every line that is not blank ends up as
//! a record or a [`DeadLetter`] naming the file, the 1-based line number,
//! the byte offset where the line starts, and why; the job goes on with the
//! next line. An input becomes a dead letter when it
//!
//! - is longer than [`FileSource::max_line_bytes`] (1 MiB by default): it is
//!   skipped without being held in memory, its dead letter shows its start
//!   and its length;
//! - is not valid UTF-8;
//! - does not parse as the record type;
//! - in a CSV file: has broken quoting, a different number of fields than
//!   the header, or comes after a header that cannot be read (see below).
//!
//! A dead letter shows the input lossily and at most
//! [`DeadLetter::SHOWN_BYTES`] of it; the file, line and offset find the
//! rest.
//!
//! **CSV.** The first line that is not blank is the header. Fields are
//! separated by commas; a field that starts with `"` is quoted as RFC 4180
//! says (`""` is a quote, commas and line breaks are data), so a record
//! spans lines while a quoted field is open — up to `max_line_bytes` in
//! all. Broken quoting (text after a closing quote, a quote still open at
//! that limit or at the end of the file) makes the record's *first line*
//! a dead letter and reading resumes on the line after it: an unterminated
//! quote costs one line, not the rest of the file. A `"` inside an
//! unquoted field is an ordinary character. Blank (whitespace-only) lines
//! are skipped in both formats, and so is a UTF-8 byte order mark before a
//! CSV header.
//!
//! **Position.** The source's checkpoint position is the byte offset and
//! number of the next line to read; after any dead letter it is the line
//! after it, so a restored job reads exactly the rest. A file that cannot
//! be opened, or fails to read, is one dead letter naming the error (its
//! `origin` is the path); the source ends for this run, and its position
//! stays where reading stopped: a job restored from a checkpoint tries the
//! file again from there.

mod csv_rows;
mod json_lines;
mod lines;
mod read;

#[cfg(test)]
mod position_props;
#[cfg(test)]
mod props;
#[cfg(test)]
mod tests;

use std::fmt;
use std::fs::File;
use std::io::BufReader;
use std::marker::PhantomData;
use std::path::{Path, PathBuf};
use std::task::{Context, Poll};

use serde::de::DeserializeOwned;

use crate::checkpoint::Snapshot;
use crate::error::SnapshotError;
use crate::source::{DeadLetter, Source, SourceBatch, SourceStatus};

use csv_rows::CsvRows;
use json_lines::JsonLines;
use lines::LinePos;
use read::{InputError, Item, Unit};

/// The line format of a [`FileSource`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FileFormat {
    /// One JSON value per line.
    JsonLines,
    /// CSV with a header line naming the fields.
    Csv,
}

/// Reads records of type `T` from a file of JSON lines
/// ([`FileSource::json_lines`]) or CSV with a header line naming the
/// fields ([`FileSource::csv`]), deserialized with serde.
///
/// Nothing is dropped silently: every line that is not blank becomes a
/// record or a [`DeadLetter`] naming the file, the 1-based line number, the
/// byte offset and why — a line longer than
/// [`FileSource::max_line_bytes`] (skipped without being held in memory),
/// not UTF-8, not the record type, or in CSV broken quoting (it costs the
/// record's first line, not the rest of the file) or a different number of
/// fields than the header — and reading goes on with the next line. Blank
/// lines are skipped. The checkpoint position is the byte offset and
/// number of the next line, so a restored job reads exactly the rest; a
/// file that cannot be opened or read is one dead letter, and a restored
/// job tries it again from where reading stopped.
///
/// ```no_run
/// # use weir_actors::FileSource;
/// # #[derive(serde::Deserialize)] struct Reading { ts: i64 }
/// let source = FileSource::<Reading>::json_lines("readings.jsonl").max_line_bytes(64 << 10);
/// ```
pub struct FileSource<T> {
    path: PathBuf,
    /// The path as dead letters name it.
    origin: String,
    format: FileFormat,
    max_line_bytes: usize,
    state: State,
    /// Where to start when opened.
    start: LinePos,
    _t: PhantomData<fn() -> T>,
}

/// Where a file source is.
enum State {
    /// Not opened yet: it starts at `start` when polled.
    Closed,
    /// Reading JSON lines.
    Json(JsonLines<BufReader<File>>),
    /// Reading CSV.
    Csv(CsvRows<BufReader<File>>),
    /// Reading stopped for this run (the file could not be opened or
    /// read); reading starts here again when the job is restored.
    Stopped(LinePos),
}

impl<T> fmt::Debug for FileSource<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("FileSource")
            .field("path", &self.path)
            .field("format", &self.format)
            .field("max_line_bytes", &self.max_line_bytes)
            .finish()
    }
}

/// The default of [`FileSource::max_line_bytes`].
const DEFAULT_MAX_LINE_BYTES: usize = 1 << 20;

impl<T> FileSource<T> {
    /// A file of JSON lines.
    pub fn json_lines(path: impl AsRef<Path>) -> Self {
        Self::new(path, FileFormat::JsonLines)
    }

    /// A CSV file with a header line.
    pub fn csv(path: impl AsRef<Path>) -> Self {
        Self::new(path, FileFormat::Csv)
    }

    /// A file in `format`. The file is opened when the job starts; a file
    /// that cannot be opened becomes one dead letter naming the error.
    pub fn new(path: impl AsRef<Path>, format: FileFormat) -> Self {
        let path = path.as_ref().to_path_buf();
        FileSource {
            origin: path.display().to_string(),
            path,
            format,
            max_line_bytes: DEFAULT_MAX_LINE_BYTES,
            state: State::Closed,
            start: LinePos::default(),
            _t: PhantomData,
        }
    }

    /// The longest line, in bytes without its line ending, that is read
    /// (and, for CSV, the longest record spanning several lines); a longer
    /// one becomes a dead letter and is skipped without being held in
    /// memory. Default 1 MiB; at least 1 (0 is taken as 1). It bounds
    /// the memory the source holds for a line: about this much for JSON
    /// lines, about three times this for CSV (the lines, the fields, the
    /// record).
    pub fn max_line_bytes(mut self, n: usize) -> Self {
        self.max_line_bytes = n.max(1);
        self
    }

    fn open(&self) -> Result<State, InputError> {
        let file = File::open(&self.path).map_err(InputError::Open)?;
        let file = BufReader::with_capacity(1 << 16, file);
        let (start, max) = (self.start, self.max_line_bytes);
        let state = match self.format {
            FileFormat::JsonLines => JsonLines::resume(file, start, max).map(State::Json),
            FileFormat::Csv => CsvRows::resume(file, start, max).map(State::Csv),
        };
        state.map_err(|error| InputError::Read { offset: start.offset, error })
    }

    fn position_now(&self) -> LinePos {
        match &self.state {
            State::Closed => self.start,
            State::Json(r) => r.position(),
            State::Csv(r) => r.position(),
            State::Stopped(at) => *at,
        }
    }

    fn dead_letter(&self, at: LinePos, error: &InputError) -> DeadLetter {
        DeadLetter::new(self.origin.clone(), at.number(), at.offset, error.to_string())
    }
}

impl<T: DeserializeOwned + Send + 'static> Source for FileSource<T> {
    type Item = T;

    fn poll_batch(&mut self, _cx: &mut Context<'_>, out: &mut SourceBatch<'_, T>) -> Poll<SourceStatus> {
        if let State::Closed = self.state {
            self.state = match self.open() {
                Ok(state) => state,
                Err(error) => {
                    out.dead_letter(self.dead_letter(self.start, &error));
                    State::Stopped(self.start)
                }
            };
        }
        while out.remaining() > 0 {
            let at = self.position_now();
            let next: std::io::Result<Option<Unit<T>>> = match &mut self.state {
                State::Json(r) => r.next(),
                State::Csv(r) => r.next(),
                State::Closed | State::Stopped(_) => return Poll::Ready(SourceStatus::Exhausted),
            };
            match next {
                Ok(None) => return Poll::Ready(SourceStatus::Exhausted),
                Ok(Some(Unit { item: Item::Record(v), .. })) => out.push(v),
                Ok(Some(Unit { item: Item::Header, .. })) => {}
                Ok(Some(Unit { at, item: Item::Bad { error, raw }, .. })) => {
                    let mut dead = self.dead_letter(at, &error);
                    dead.raw = raw;
                    out.dead_letter(dead);
                }
                Err(error) => {
                    // The reader is left where the failed read began:
                    // drop it, and keep the position of that line.
                    let error = InputError::Read { offset: at.offset, error };
                    out.dead_letter(self.dead_letter(at, &error));
                    self.state = State::Stopped(at);
                    return Poll::Ready(SourceStatus::Exhausted);
                }
            }
        }
        Poll::Ready(SourceStatus::Ready)
    }

    /// The byte offset and the number of lines before the next line to
    /// read (16 bytes, little endian).
    fn position(&self) -> Option<Snapshot> {
        let at = self.position_now();
        Snapshot::encode(&(at.offset, at.lines)).ok()
    }

    fn seek(&mut self, position: &Snapshot) -> Result<(), SnapshotError> {
        let (offset, lines): (u64, u64) = position.decode()?;
        self.start = LinePos { offset, lines };
        self.state = State::Closed;
        Ok(())
    }
}
