//! A file source: JSON lines or CSV, deserialized with serde.
//!
//! A line that does not parse becomes a [`DeadLetter`] naming the file, the
//! 1-based line number and the parse error; the job goes on with the next
//! line. Nothing is skipped silently: every line ends up as a record or a
//! dead letter (blank lines of a JSON-lines file are not records).

use std::fmt;
use std::fs::File;
use std::io::{BufRead, BufReader};
use std::marker::PhantomData;
use std::path::{Path, PathBuf};
use std::task::{Context, Poll};

use serde::de::DeserializeOwned;

use crate::checkpoint::Snapshot;
use crate::error::SnapshotError;
use crate::source::{DeadLetter, Source, SourceBatch, SourceStatus};

/// The line format of a [`FileSource`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FileFormat {
    /// One JSON value per line.
    JsonLines,
    /// CSV with a header line naming the fields.
    Csv,
}

/// Reads records of type `T` from a file.
pub struct FileSource<T> {
    path: PathBuf,
    format: FileFormat,
    state: Option<Reader>,
    /// Where to start when opened: (byte offset, lines before it).
    start: (u64, u64),
    _t: PhantomData<fn() -> T>,
}

enum Reader {
    Json { lines: BufReader<File>, line_no: u64, offset: u64, buf: String },
    Csv { reader: csv::Reader<File>, headers: csv::StringRecord, record: csv::StringRecord },
    Failed,
}

impl<T> fmt::Debug for FileSource<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("FileSource").field("path", &self.path).field("format", &self.format).finish()
    }
}

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
        FileSource { path: path.as_ref().to_path_buf(), format, state: None, start: (0, 0), _t: PhantomData }
    }

    fn origin(&self) -> String {
        self.path.display().to_string()
    }

    fn open(&self) -> Result<Reader, (u64, String)> {
        use std::io::{Seek, SeekFrom};
        let file = File::open(&self.path).map_err(|e| (0, format!("cannot open: {e}")))?;
        let (offset, line_no) = self.start;
        Ok(match self.format {
            FileFormat::JsonLines => {
                let mut lines = BufReader::with_capacity(1 << 16, file);
                lines.seek(SeekFrom::Start(offset)).map_err(|e| (line_no, format!("cannot seek to byte {offset}: {e}")))?;
                Reader::Json { lines, line_no, offset, buf: String::new() }
            }
            FileFormat::Csv => {
                let mut reader = csv::ReaderBuilder::new().has_headers(true).flexible(true).from_reader(file);
                let headers = reader.headers().map_err(|e| (1, format!("cannot read the CSV header: {e}")))?.clone();
                if offset > 0 {
                    let mut pos = csv::Position::new();
                    pos.set_byte(offset).set_line(line_no + 1);
                    reader.seek(pos).map_err(|e| (line_no, format!("cannot seek to byte {offset}: {e}")))?;
                }
                Reader::Csv { reader, headers, record: csv::StringRecord::new() }
            }
        })
    }
}

impl<T: DeserializeOwned + Send + 'static> Source for FileSource<T> {
    type Item = T;

    fn poll_batch(&mut self, _cx: &mut Context<'_>, out: &mut SourceBatch<'_, T>) -> Poll<SourceStatus> {
        if self.state.is_none() {
            self.state = Some(match self.open() {
                Ok(r) => r,
                Err((line, error)) => {
                    out.dead_letter(DeadLetter { origin: self.origin(), line, error, raw: String::new() });
                    Reader::Failed
                }
            });
        }
        let origin = self.origin();
        let state = self.state.as_mut().expect("opened above");
        while out.remaining() > 0 {
            match state {
                Reader::Failed => return Poll::Ready(SourceStatus::Exhausted),
                Reader::Json { lines, line_no, offset, buf } => {
                    buf.clear();
                    match lines.read_line(buf) {
                        Ok(0) => return Poll::Ready(SourceStatus::Exhausted),
                        Ok(n) => {
                            *line_no += 1;
                            *offset += n as u64;
                            let text = buf.trim_end_matches(['\n', '\r']);
                            if text.trim().is_empty() {
                                continue;
                            }
                            match serde_json::from_str::<T>(text) {
                                Ok(v) => out.push(v),
                                Err(e) => out.dead_letter(DeadLetter {
                                    origin: origin.clone(),
                                    line: *line_no,
                                    error: e.to_string(),
                                    raw: text.to_string(),
                                }),
                            }
                        }
                        Err(e) => {
                            *line_no += 1;
                            out.dead_letter(DeadLetter { origin: origin.clone(), line: *line_no, error: format!("read error: {e}"), raw: String::new() });
                            *state = Reader::Failed;
                        }
                    }
                }
                Reader::Csv { reader, headers, record } => match reader.read_record(record) {
                    Ok(false) => return Poll::Ready(SourceStatus::Exhausted),
                    Ok(true) => {
                        let line = record.position().map_or(0, |p| p.line());
                        match record.deserialize::<T>(Some(headers)) {
                            Ok(v) => out.push(v),
                            Err(e) => out.dead_letter(DeadLetter {
                                origin: origin.clone(),
                                line,
                                error: e.to_string(),
                                raw: record.iter().collect::<Vec<_>>().join(","),
                            }),
                        }
                    }
                    Err(e) => {
                        let line = e.position().map_or(0, |p| p.line());
                        let fatal = e.is_io_error();
                        out.dead_letter(DeadLetter { origin: origin.clone(), line, error: e.to_string(), raw: String::new() });
                        if fatal {
                            *state = Reader::Failed;
                        }
                    }
                },
            }
        }
        Poll::Ready(SourceStatus::Ready)
    }

    /// The byte offset and line number of the next line.
    fn position(&self) -> Option<Snapshot> {
        let (offset, line) = match &self.state {
            None => self.start,
            Some(Reader::Json { offset, line_no, .. }) => (*offset, *line_no),
            Some(Reader::Csv { reader, .. }) => {
                let p = reader.position();
                (p.byte(), p.line().saturating_sub(1))
            }
            Some(Reader::Failed) => (u64::MAX, 0),
        };
        Snapshot::encode(&(offset, line)).ok()
    }

    fn seek(&mut self, position: &Snapshot) -> Result<(), SnapshotError> {
        let (offset, line): (u64, u64) = position.decode()?;
        self.state = if offset == u64::MAX { Some(Reader::Failed) } else { None };
        self.start = (offset, line);
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use std::io::Write;
    use std::task::{Context, Poll, Waker};

    use super::*;

    /// Reads up to `max` items.
    fn poll<T: DeserializeOwned + Send + 'static>(src: &mut FileSource<T>, max: usize) -> (Vec<T>, Vec<DeadLetter>, SourceStatus) {
        let (mut items, mut dead) = (Vec::new(), Vec::new());
        let mut batch = SourceBatch { items: &mut items, dead: &mut dead, max };
        let mut cx = Context::from_waker(Waker::noop());
        let Poll::Ready(status) = src.poll_batch(&mut cx, &mut batch) else { panic!("a file is always ready") };
        (items.into_iter().map(|r| r.value).collect(), dead, status)
    }

    fn resumes_where_it_stopped(format: FileFormat, text: &str) {
        let mut f = tempfile::NamedTempFile::new().unwrap();
        f.write_all(text.as_bytes()).unwrap();
        let mut first = FileSource::<(i64, String)>::new(f.path(), format);
        let (got, dead, _) = poll(&mut first, 2);
        assert_eq!(got.len() + dead.len(), 2);
        let pos = first.position().unwrap();
        let (rest_first, _, _) = poll(&mut first, 100);

        let mut resumed = FileSource::<(i64, String)>::new(f.path(), format);
        resumed.seek(&pos).unwrap();
        let (rest, dead, status) = poll(&mut resumed, 100);
        assert_eq!(rest, rest_first, "{format:?}");
        assert_eq!(status, SourceStatus::Exhausted);
        // Line numbers of dead letters continue from the recorded position.
        assert_eq!(dead.iter().map(|d| d.line).collect::<Vec<_>>(), vec![4], "{format:?}");
    }

    #[test]
    fn json_lines_source_seeks_to_its_recorded_position() {
        resumes_where_it_stopped(FileFormat::JsonLines, "[1,\"a\"]\n[2,\"b\"]\n[3,\"c\"]\nbroken\n[5,\"e\"]\n");
    }

    #[test]
    fn csv_source_seeks_to_its_recorded_position() {
        resumes_where_it_stopped(FileFormat::Csv, "n,s\n1,a\n2,b\nx,c\n4,d\n");
    }
}
