//! Reading a file line by line, as bytes, holding at most a bounded part
//! of any one line.
//!
//! [`LineReader`] knows where the next line starts — its byte offset and
//! how many lines come before it — which is what a file source records as
//! its position. The invariant: after every line it returns, whatever the
//! line held (not UTF-8, too long, anything), that position is exactly the
//! start of the following line. A line longer than the limit is read only
//! up to the limit; the rest of it is skipped without being held, so the
//! memory a line costs is bounded by the limit whatever the file.

use std::io::{self, BufRead, Read, Seek, SeekFrom};

/// Where a line starts.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub(crate) struct LinePos {
    /// Byte offset of its first byte in the file.
    pub(crate) offset: u64,
    /// How many lines come before it: its 1-based number minus one.
    pub(crate) lines: u64,
}

impl LinePos {
    /// The 1-based number of the line starting here (saturating: a
    /// restored position may say anything).
    pub(crate) fn number(self) -> u64 {
        self.lines.saturating_add(1)
    }
}

/// A line that was read, appended to the caller's buffer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Line {
    /// Where it starts.
    pub(crate) at: LinePos,
    /// Where the line after it starts.
    pub(crate) next: LinePos,
    /// Its content (without the line ending) is `buf[start..end]`; its
    /// line ending, if it has one and is not too long, is `buf[end..]`.
    pub(crate) start: usize,
    /// See `start`.
    pub(crate) end: usize,
    /// The length of its content in the file, without the line ending
    /// (more than `end - start` when it is too long).
    pub(crate) len: u64,
    /// Longer than the limit it was read with: the buffer holds only its
    /// first bytes, up to the limit.
    pub(crate) too_long: bool,
}

/// Lines of a reader, with their offsets and numbers; see the module docs.
#[derive(Debug)]
pub(crate) struct LineReader<R> {
    inner: R,
    next: LinePos,
}

impl<R: BufRead> LineReader<R> {
    /// Reads `inner`, whose next byte is the start of a line at `next`.
    pub(crate) fn new(inner: R, next: LinePos) -> Self {
        LineReader { inner, next }
    }

    /// Where the next line starts.
    pub(crate) fn next_pos(&self) -> LinePos {
        self.next
    }

    /// Appends the next line, with its line ending (`\n` or `\r\n`; the
    /// last line of a file may have none), to `buf`, holding at most `max`
    /// bytes of its content. `None` at the end of the input. On an error
    /// the position stays at the start of the line being read.
    pub(crate) fn read_line(&mut self, buf: &mut Vec<u8>, max: usize) -> io::Result<Option<Line>> {
        let at = self.next;
        let start = buf.len();
        // The content may be `max` bytes, then `\r\n`.
        let cap = (max as u64).saturating_add(2);
        let n = (&mut self.inner).take(cap).read_until(b'\n', buf)? as u64;
        if n == 0 {
            return Ok(None);
        }
        let ended = buf.last() == Some(&b'\n');
        let (consumed, len) = if ended || n < cap {
            // The whole line is in `buf`.
            let mut end = buf.len() - usize::from(ended);
            if end > start && buf[end - 1] == b'\r' {
                end -= 1;
            }
            (n, (end - start) as u64)
        } else {
            // `cap` bytes and no line ending yet: too long. Skip the rest.
            let (skipped, ending) = self.skip_rest(buf.last().copied())?;
            (n + skipped, n + skipped - ending)
        };
        let too_long = len > max as u64;
        let end = if too_long {
            buf.truncate(start + max.min(buf.len() - start));
            buf.len()
        } else {
            start + len as usize
        };
        // Saturating: the position may come from a checkpoint that says
        // anything, and reading must not panic on it.
        self.next = LinePos { offset: at.offset.saturating_add(consumed), lines: at.lines.saturating_add(1) };
        Ok(Some(Line { at, next: self.next, start, end, len, too_long }))
    }

    /// Skips to just after the next `\n` (or the end of the input); `last`
    /// is the byte before. Returns the bytes skipped and how many of them
    /// are the line ending.
    fn skip_rest(&mut self, mut last: Option<u8>) -> io::Result<(u64, u64)> {
        let mut skipped = 0;
        loop {
            let chunk = match self.inner.fill_buf() {
                Ok(chunk) => chunk,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(e) => return Err(e),
            };
            let Some(&tail) = chunk.last() else {
                // The end of the input; a last `\r` is a line ending, as
                // it is for a line within the limit.
                return Ok((skipped, u64::from(last == Some(b'\r'))));
            };
            match chunk.iter().position(|&b| b == b'\n') {
                Some(i) => {
                    let before = if i > 0 { Some(chunk[i - 1]) } else { last };
                    self.inner.consume(i + 1);
                    skipped += i as u64 + 1;
                    return Ok((skipped, if before == Some(b'\r') { 2 } else { 1 }));
                }
                None => {
                    let n = chunk.len();
                    last = Some(tail);
                    self.inner.consume(n);
                    skipped += n as u64;
                }
            }
        }
    }
}

impl<R: BufRead + Seek> LineReader<R> {
    /// Moves to `to`, the start of a line.
    pub(crate) fn seek(&mut self, to: LinePos) -> io::Result<()> {
        self.inner.seek(SeekFrom::Start(to.offset))?;
        self.next = to;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use std::io::Cursor;

    use super::*;

    /// Every line of `text` read with limit `max`: (content, len, too
    /// long, offset, next offset).
    fn lines(text: &[u8], max: usize) -> Vec<(Vec<u8>, u64, bool, u64, u64)> {
        let mut r = LineReader::new(std::io::BufReader::with_capacity(4, Cursor::new(text)), LinePos::default());
        let mut out = Vec::new();
        let mut buf = Vec::new();
        while let Some(l) = r.read_line(&mut buf, max).unwrap() {
            assert_eq!(l.at.lines + 1, l.next.lines);
            out.push((buf[l.start..l.end].to_vec(), l.len, l.too_long, l.at.offset, l.next.offset));
            buf.clear();
        }
        out
    }

    #[test]
    fn lines_keep_their_offsets_and_lose_their_endings() {
        let got = lines(b"ab\r\n\ncd\nef", 10);
        assert_eq!(
            got,
            vec![
                (b"ab".to_vec(), 2, false, 0, 4),
                (b"".to_vec(), 0, false, 4, 5),
                (b"cd".to_vec(), 2, false, 5, 8),
                (b"ef".to_vec(), 2, false, 8, 10),
            ]
        );
    }

    #[test]
    fn a_line_longer_than_the_limit_holds_only_the_limit_and_the_next_line_starts_right() {
        let got = lines(b"0123456789\r\nab\n0123\n012345", 4);
        assert_eq!(
            got,
            vec![
                (b"0123".to_vec(), 10, true, 0, 12),
                (b"ab".to_vec(), 2, false, 12, 15),
                (b"0123".to_vec(), 4, false, 15, 20),
                (b"0123".to_vec(), 6, true, 20, 26),
            ]
        );
        // Exactly at the limit, with either line ending, and one over it.
        assert_eq!(lines(b"0123\r\n", 4), vec![(b"0123".to_vec(), 4, false, 0, 6)]);
        assert_eq!(lines(b"01234\n", 4), vec![(b"0123".to_vec(), 5, true, 0, 6)]);
        assert_eq!(lines(b"01234\r\nx", 4)[0], (b"0123".to_vec(), 5, true, 0, 7));
        assert_eq!(lines(b"01234", 4), vec![(b"0123".to_vec(), 5, true, 0, 5)]);
        assert_eq!(lines(b"012345\r", 4), vec![(b"0123".to_vec(), 6, true, 0, 7)]);
    }
}
