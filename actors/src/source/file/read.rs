//! What the readers of a file source yield: one [`Unit`] for every input
//! that is not blank — a record, a CSV header, or a bad input with why —
//! each naming the lines it spans.

use std::io;

use super::lines::LinePos;

/// One input read from a file. It starts at `at` and spans the lines up
/// to the reader's position after it (more than one only for a CSV record
/// with a quoted line break).
#[derive(Debug)]
pub(crate) struct Unit<T> {
    /// Where it starts.
    pub(crate) at: LinePos,
    /// What it is.
    pub(crate) item: Item<T>,
}

/// What an input turned out to be.
#[derive(Debug)]
pub(crate) enum Item<T> {
    /// A record.
    Record(T),
    /// The header line of a CSV file.
    Header,
    /// An input that is not a record: why, and the input as a dead letter
    /// shows it (lossy, bounded).
    Bad {
        /// Why.
        error: InputError,
        /// What, shown.
        raw: String,
    },
}

/// Why an input of a file is not a record, or why reading stopped: the
/// `error` of a dead letter.
#[derive(Debug, thiserror::Error)]
pub(crate) enum InputError {
    /// Longer than `FileSource::max_line_bytes`.
    #[error("the line is {len} bytes long, more than the limit of {max} bytes (FileSource::max_line_bytes)")]
    TooLong {
        /// Its length without the line ending.
        len: u64,
        /// The limit.
        max: usize,
    },
    /// A JSON line that is not UTF-8.
    #[error("not valid UTF-8 at byte {column} of the line")]
    NotUtf8 {
        /// 1-based byte of the line where the bad UTF-8 starts.
        column: usize,
    },
    /// A JSON line that does not deserialize.
    #[error("{0}")]
    Json(serde_json::Error),
    /// A CSV field that is not UTF-8.
    #[error("field {field} is not valid UTF-8 (at byte {column} of the field)")]
    FieldNotUtf8 {
        /// 1-based field number.
        field: usize,
        /// 1-based byte of the field (quotes removed) where it starts.
        column: usize,
    },
    /// A closing quote followed by something other than a comma or the end
    /// of the record.
    #[error("field {field} has text after its closing quote (line {line}, byte {column})")]
    AfterQuote {
        /// 1-based field number.
        field: usize,
        /// The line of the text after the quote.
        line: u64,
        /// 1-based byte of that line.
        column: usize,
    },
    /// A quoted field still open at the end of the file.
    #[error("field {field} opens a quote that is not closed before the end of the file")]
    UnclosedAtEnd {
        /// 1-based field number.
        field: usize,
    },
    /// A quoted field still open after `max_line_bytes`.
    #[error(
        "field {field} opens a quote that is not closed within {max} bytes (FileSource::max_line_bytes limits a record spanning lines too)"
    )]
    UnclosedAtLimit {
        /// 1-based field number.
        field: usize,
        /// The limit.
        max: usize,
    },
    /// A CSV record with a different number of fields than the header.
    #[error("the record has {got} fields, the header has {want}")]
    FieldCount {
        /// Fields of the record.
        got: usize,
        /// Fields of the header.
        want: usize,
    },
    /// A CSV record that does not deserialize.
    #[error("{0}")]
    Csv(String),
    /// A CSV record read while the header is unreadable.
    #[error("no header to read the record with: the header (line {line}) could not be read")]
    NoHeader {
        /// The line of the header.
        line: u64,
    },
    /// The header of a CSV file is itself bad.
    #[error("cannot read the CSV header: {0}")]
    Header(Box<InputError>),
    /// The file cannot be opened.
    #[error("cannot open: {0}; reading stopped here for this run and starts here again when the job is restored")]
    Open(io::Error),
    /// Reading failed.
    #[error(
        "read error at byte {offset}: {error}; reading stopped here for this run and starts here again when the job is restored"
    )]
    Read {
        /// Where.
        offset: u64,
        /// What.
        error: io::Error,
    },
}

/// Whether a line holds nothing but whitespace.
pub(crate) fn blank(line: &[u8]) -> bool {
    line.iter().all(u8::is_ascii_whitespace)
}

/// A CSV deserialization error, naming the field by number and header.
pub(crate) fn describe_csv_error(e: &csv::Error, header: &csv::StringRecord) -> String {
    match e.kind() {
        csv::ErrorKind::Deserialize { err, .. } => match err.field() {
            Some(i) => {
                let name = usize::try_from(i).ok().and_then(|i| header.get(i)).unwrap_or("?");
                format!("field {} (`{name}`): {}", i + 1, err.kind())
            }
            None => err.kind().to_string(),
        },
        _ => e.to_string(),
    }
}
