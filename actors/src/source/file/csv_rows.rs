//! The CSV reader: a header line naming the fields, then one record per
//! line, comma-separated, quoted as RFC 4180 says.
//!
//! A field that starts with `"` is quoted: it ends at a `"` followed by a
//! comma or the end of the record, `""` inside it is one `"`, and it may
//! hold commas and line breaks. A record therefore spans lines while a
//! quoted field is open, up to `max_line_bytes` in all. A `"` inside an
//! unquoted field is an ordinary character (as most writers produce, and as
//! the `csv` crate reads it).
//!
//! Every line that is not blank belongs to exactly one [`Unit`]: the
//! header, a record, or a bad input, after which reading goes on:
//!
//! - a line longer than the limit: that line;
//! - broken quoting (text after a closing quote; a quote still open at the
//!   limit or at the end of the file): **the first line** of the record,
//!   and reading resumes on the line after it — so an unterminated quote
//!   costs one line, not the rest of the file;
//! - a well-quoted record that is not UTF-8, has a different number of
//!   fields than the header, or does not deserialize: the whole record
//!   (its quoted line breaks are data, not record boundaries);
//! - every record after a header that cannot be read.

use std::io::{self, BufRead, Seek};

use csv::StringRecord;
use serde::de::DeserializeOwned;

use super::lines::{LinePos, LineReader};
use super::read::{blank, describe_csv_error, InputError, Item, Unit};
use crate::source::{shown, DeadLetter};

/// The UTF-8 byte order mark some writers put first; not part of the
/// first field.
const BOM: &[u8] = b"\xEF\xBB\xBF";

/// Where the quote state machine is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum State {
    /// At the start of a field.
    FieldStart,
    /// In an unquoted field.
    Unquoted,
    /// In a quoted field.
    Quoted,
    /// Just after a `"` in a quoted field: its end, or the first half of
    /// `""`.
    QuoteInQuoted,
}

/// The fields of one record, fed a line at a time; buffers are reused.
#[derive(Debug)]
pub(crate) struct Fields {
    /// The fields' contents, one after another, quotes removed.
    bytes: Vec<u8>,
    /// Where each complete field ends in `bytes`.
    ends: Vec<usize>,
    state: State,
}

/// The quoting of a line is broken at this 0-based byte of it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct AfterQuote(pub(crate) usize);

impl Fields {
    pub(crate) fn new() -> Self {
        Fields { bytes: Vec::new(), ends: Vec::new(), state: State::FieldStart }
    }

    /// Starts a new record.
    pub(crate) fn clear(&mut self) {
        self.bytes.clear();
        self.ends.clear();
        self.state = State::FieldStart;
    }

    /// Feeds one line of the record, without its line ending: `Ok(true)`
    /// when the record ends with it, `Ok(false)` when a quoted field is
    /// still open (feed its line ending with [`Self::line_break`], then the
    /// next line).
    pub(crate) fn line(&mut self, line: &[u8]) -> Result<bool, AfterQuote> {
        let mut i = 0;
        while i < line.len() {
            match self.state {
                State::FieldStart => {
                    if line[i] == b'"' {
                        self.state = State::Quoted;
                        i += 1;
                    } else {
                        self.state = State::Unquoted;
                    }
                }
                State::Unquoted => match line[i..].iter().position(|&b| b == b',') {
                    Some(k) => {
                        self.bytes.extend_from_slice(&line[i..i + k]);
                        self.ends.push(self.bytes.len());
                        self.state = State::FieldStart;
                        i += k + 1;
                    }
                    None => {
                        self.bytes.extend_from_slice(&line[i..]);
                        i = line.len();
                    }
                },
                State::Quoted => match line[i..].iter().position(|&b| b == b'"') {
                    Some(k) => {
                        self.bytes.extend_from_slice(&line[i..i + k]);
                        self.state = State::QuoteInQuoted;
                        i += k + 1;
                    }
                    None => {
                        self.bytes.extend_from_slice(&line[i..]);
                        i = line.len();
                    }
                },
                State::QuoteInQuoted => match line[i] {
                    b'"' => {
                        self.bytes.push(b'"');
                        self.state = State::Quoted;
                        i += 1;
                    }
                    b',' => {
                        self.ends.push(self.bytes.len());
                        self.state = State::FieldStart;
                        i += 1;
                    }
                    _ => return Err(AfterQuote(i)),
                },
            }
        }
        if self.state == State::Quoted {
            return Ok(false);
        }
        self.ends.push(self.bytes.len());
        self.state = State::FieldStart;
        Ok(true)
    }

    /// The line ending of a line that ended inside a quoted field: part
    /// of the field.
    pub(crate) fn line_break(&mut self, ending: &[u8]) {
        self.bytes.extend_from_slice(ending);
    }

    /// How many fields are complete.
    pub(crate) fn count(&self) -> usize {
        self.ends.len()
    }

    /// The complete fields.
    pub(crate) fn iter(&self) -> impl Iterator<Item = &[u8]> + '_ {
        let starts = std::iter::once(0).chain(self.ends.iter().copied());
        starts.zip(self.ends.iter().copied()).map(|(a, b)| &self.bytes[a..b])
    }
}

/// The header of the file.
#[derive(Debug)]
enum Header {
    /// Not read yet: the next record is the header.
    Pending,
    /// Read.
    Read(StringRecord),
    /// Could not be read, on this line.
    Bad(u64),
}

/// How a record was framed.
enum Frame {
    /// A blank line.
    Blank,
    /// A complete record in `fields`; its text is `buf[..end]`.
    Fields(LinePos, usize),
    /// One bad line: why, and the line shown.
    Bad(LinePos, InputError, String),
}

/// CSV records from `R`; see the module docs.
#[derive(Debug)]
pub(crate) struct CsvRows<R> {
    lines: LineReader<R>,
    /// The lines of the current record, reused.
    buf: Vec<u8>,
    fields: Fields,
    header: Header,
    /// The current record as text, reused.
    record: StringRecord,
    max: usize,
}

impl<R: BufRead + Seek> CsvRows<R> {
    /// Reads `inner` from `start`, records of at most `max` bytes. From
    /// any other start than the file's, the header is read first, quietly
    /// (it was reported when the file was read from its start).
    pub(crate) fn resume(inner: R, start: LinePos, max: usize) -> io::Result<Self> {
        let mut rows = CsvRows {
            lines: LineReader::new(inner, LinePos::default()),
            buf: Vec::new(),
            fields: Fields::new(),
            header: Header::Pending,
            record: StringRecord::new(),
            max,
        };
        if start != LinePos::default() {
            while matches!(rows.header, Header::Pending) {
                if rows.next::<()>()?.is_none() {
                    break;
                }
            }
            // A position this reader recorded is never inside the header.
            if start.offset > rows.lines.next_pos().offset {
                rows.lines.seek(start)?;
            }
        }
        Ok(rows)
    }

    /// Where the next record starts.
    pub(crate) fn position(&self) -> LinePos {
        self.lines.next_pos()
    }

    /// The next input that is not blank; `None` at the end of the file.
    /// On an error the reader must not be used again: the position of the
    /// record that could not be read is then [`Self::position`] of before
    /// the call.
    pub(crate) fn next<T: DeserializeOwned>(&mut self) -> io::Result<Option<Unit<T>>> {
        loop {
            let (at, end) = match self.frame()? {
                None => return Ok(None),
                Some(Frame::Blank) => continue,
                Some(Frame::Bad(at, error, raw)) => {
                    let error = self.about_header(error, at);
                    return Ok(Some(Unit { at, item: Item::Bad { error, raw } }));
                }
                Some(Frame::Fields(at, end)) => (at, end),
            };
            let item = match self.interpret::<T>() {
                Ok(item) => item,
                Err(error) => {
                    let error = self.about_header(error, at);
                    let text = &self.buf[..end];
                    Item::Bad { error, raw: shown(text, text.len() as u64, DeadLetter::SHOWN_BYTES) }
                }
            };
            return Ok(Some(Unit { at, item }));
        }
    }

    /// A bad record at `at` where the header was expected: it was the
    /// header.
    fn about_header(&mut self, error: InputError, at: LinePos) -> InputError {
        match self.header {
            Header::Pending => {
                self.header = Header::Bad(at.number());
                InputError::Header(Box::new(error))
            }
            _ => error,
        }
    }

    /// Reads the lines of the next record into `buf` and its fields into
    /// `fields`. When its quoting is broken, only its first line is taken
    /// and the reader moves back to the line after it.
    fn frame(&mut self) -> io::Result<Option<Frame>> {
        self.buf.clear();
        self.fields.clear();
        let Some(first) = self.lines.read_line(&mut self.buf, self.max)? else { return Ok(None) };
        let at = first.at;
        let first_line = |buf: &[u8]| shown(&buf[first.start..first.end], first.len, DeadLetter::SHOWN_BYTES);
        if first.too_long {
            let error = InputError::TooLong { len: first.len, max: self.max };
            return Ok(Some(Frame::Bad(at, error, first_line(&self.buf))));
        }
        let mut text = &self.buf[first.start..first.end];
        if at.offset == 0 {
            text = text.strip_prefix(BOM).unwrap_or(text);
        }
        if blank(text) {
            return Ok(Some(Frame::Blank));
        }
        let mut fed = self.fields.line(text);
        let mut line = first;
        let error = loop {
            match fed {
                Ok(true) => return Ok(Some(Frame::Fields(at, line.end))),
                Err(AfterQuote(i)) => {
                    break InputError::AfterQuote {
                        field: self.fields.count() + 1,
                        line: line.at.number(),
                        column: i + 1,
                    }
                }
                Ok(false) => {
                    let field = self.fields.count() + 1;
                    let ending = &self.buf[line.end..];
                    if ending.is_empty() {
                        break InputError::UnclosedAtEnd { field };
                    }
                    self.fields.line_break(ending);
                    let room = self.max.saturating_sub(self.buf.len());
                    match self.lines.read_line(&mut self.buf, room)? {
                        None => break InputError::UnclosedAtEnd { field },
                        Some(next) if next.too_long => break InputError::UnclosedAtLimit { field, max: self.max },
                        Some(next) => {
                            fed = self.fields.line(&self.buf[next.start..next.end]);
                            line = next;
                        }
                    }
                }
            }
        };
        if self.lines.next_pos() != first.next {
            self.lines.seek(first.next)?;
        }
        Ok(Some(Frame::Bad(at, error, first_line(&self.buf))))
    }

    /// The header, or a record of type `T`, from `fields`.
    fn interpret<T: DeserializeOwned>(&mut self) -> Result<Item<T>, InputError> {
        self.record.clear();
        for (i, field) in self.fields.iter().enumerate() {
            match std::str::from_utf8(field) {
                Ok(text) => self.record.push_field(text),
                Err(e) => return Err(InputError::FieldNotUtf8 { field: i + 1, column: e.valid_up_to() + 1 }),
            }
        }
        match &self.header {
            Header::Pending => {
                self.header = Header::Read(self.record.clone());
                Ok(Item::Header)
            }
            Header::Bad(line) => Err(InputError::NoHeader { line: *line }),
            Header::Read(header) if header.len() != self.record.len() => {
                Err(InputError::FieldCount { got: self.record.len(), want: header.len() })
            }
            Header::Read(header) => match self.record.deserialize::<T>(Some(header)) {
                Ok(v) => Ok(Item::Record(v)),
                Err(e) => Err(InputError::Csv(describe_csv_error(&e, header))),
            },
        }
    }
}
