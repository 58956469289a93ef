//! The JSON-lines reader: one JSON value per line.
//!
//! Every line that is not blank becomes exactly one [`Unit`]: a record, or
//! a bad input — longer than the limit, not UTF-8, or not a `T` — after
//! which reading goes on with the next line.

use std::io::{self, BufRead, Seek};

use serde::de::DeserializeOwned;

use super::lines::{LinePos, LineReader};
use super::read::{blank, InputError, Item, Unit};
use crate::source::{shown, DeadLetter};

/// JSON lines from `R`; see the module docs.
#[derive(Debug)]
pub(crate) struct JsonLines<R> {
    lines: LineReader<R>,
    /// The current line, reused.
    buf: Vec<u8>,
    max: usize,
}

impl<R: BufRead + Seek> JsonLines<R> {
    /// Reads `inner` from `start`, lines of at most `max` bytes.
    pub(crate) fn resume(inner: R, start: LinePos, max: usize) -> io::Result<Self> {
        let mut lines = LineReader::new(inner, LinePos::default());
        if start != LinePos::default() {
            lines.seek(start)?;
        }
        Ok(JsonLines { lines, buf: Vec::new(), max })
    }
}

impl<R: BufRead> JsonLines<R> {
    /// Where the next line starts.
    pub(crate) fn position(&self) -> LinePos {
        self.lines.next_pos()
    }

    /// The next input that is not blank; `None` at the end of the file.
    /// On an error the position stays at the start of the line that could
    /// not be read.
    pub(crate) fn next<T: DeserializeOwned>(&mut self) -> io::Result<Option<Unit<T>>> {
        loop {
            self.buf.clear();
            let Some(line) = self.lines.read_line(&mut self.buf, self.max)? else { return Ok(None) };
            let text = &self.buf[line.start..line.end];
            let error = if line.too_long {
                InputError::TooLong { len: line.len, max: self.max }
            } else if blank(text) {
                continue;
            } else {
                match std::str::from_utf8(text) {
                    Err(e) => InputError::NotUtf8 { column: e.valid_up_to() + 1 },
                    Ok(text) => match serde_json::from_str::<T>(text) {
                        Ok(v) => return Ok(Some(Unit { at: line.at, item: Item::Record(v) })),
                        Err(e) => InputError::Json(e),
                    },
                }
            };
            let raw = shown(text, line.len, DeadLetter::SHOWN_BYTES);
            return Ok(Some(Unit { at: line.at, item: Item::Bad { error, raw } }));
        }
    }
}
