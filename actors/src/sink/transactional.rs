//! A file that is appended to only when checkpoints complete: the storage
//! under exactly-once file sinks (two-phase commit).
//!
//! Rows written between two barriers go to an open part file next to the
//! target. At a barrier (`pre_commit(n)`) the part is fsynced and renamed
//! `<file>.weir-part-<n>`: durable, not yet visible. When checkpoint `n`
//! completes (`commit(n)`) every part up to `n` is appended to the target
//! in order, fsynced, and recorded in `<file>.weir-manifest` (checkpoint and
//! file length after it, written atomically), then deleted. On restore from
//! checkpoint `n`, the target is cut back to its length at `n`, parts up to
//! `n` not yet appended are appended, and everything after `n` is
//! discarded — so after any number of crashes and restarts the target holds
//! every row exactly once. Without a restore, the first write starts the
//! target afresh. A manifest that is not well formed (a line that is not
//! `<checkpoint> <length>`, checkpoints that do not increase, lengths that
//! decrease) or that records more bytes than the target holds is refused
//! with an error naming it: the target is never cut or lengthened by a
//! guess.

use std::fs::{self, File, OpenOptions};
use std::io::{self, BufWriter, Write};
use std::path::{Path, PathBuf};

/// The manifest entry written when the input ends.
const FINAL: u64 = u64::MAX;

/// See the module documentation.
#[derive(Debug)]
pub struct TransactionalFile {
    path: PathBuf,
    header: Vec<u8>,
    open: Option<BufWriter<File>>,
    ready: bool,
}

fn sibling(path: &Path, suffix: &str) -> PathBuf {
    let mut s = path.as_os_str().to_os_string();
    s.push(suffix);
    PathBuf::from(s)
}

fn fsync_dir(path: &Path) -> io::Result<()> {
    let dir = path.parent().filter(|p| !p.as_os_str().is_empty()).unwrap_or(Path::new("."));
    File::open(dir)?.sync_all()
}

impl TransactionalFile {
    /// The target `path`; `header` starts a fresh file (e.g. a CSV header).
    pub fn new(path: impl Into<PathBuf>, header: Vec<u8>) -> Self {
        TransactionalFile { path: path.into(), header, open: None, ready: false }
    }

    /// The target file.
    pub fn path(&self) -> &Path {
        &self.path
    }

    fn manifest_path(&self) -> PathBuf {
        sibling(&self.path, ".weir-manifest")
    }

    fn part_path(&self, seq: u64) -> PathBuf {
        sibling(&self.path, &format!(".weir-part-{seq:020}"))
    }

    fn open_part_path(&self) -> PathBuf {
        sibling(&self.path, ".weir-part-open")
    }

    /// The manifest's entries: `(checkpoint, file length after it)`,
    /// checkpoints increasing and lengths never decreasing; none when there
    /// is no manifest. Anything else is refused as corrupt, naming the
    /// manifest and the line at fault.
    fn read_manifest(&self) -> io::Result<Vec<(u64, u64)>> {
        let path = self.manifest_path();
        let bytes = match fs::read(&path) {
            Ok(b) => b,
            Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(Vec::new()),
            Err(e) => return Err(io::Error::new(e.kind(), format!("{}: {e}", path.display()))),
        };
        let corrupt = |why: String| {
            io::Error::new(io::ErrorKind::InvalidData, format!("{}: corrupt manifest: {why}", path.display()))
        };
        let text = std::str::from_utf8(&bytes).map_err(|e| corrupt(format!("not UTF-8 text ({e})")))?;
        let mut entries: Vec<(u64, u64)> = Vec::new();
        for (n, line) in (1..).zip(text.lines()).filter(|(_, l)| !l.trim().is_empty()) {
            let mut words = line.split_whitespace();
            let entry = match (words.next().map(str::parse), words.next().map(str::parse), words.next()) {
                (Some(Ok(seq)), Some(Ok(len)), None) => (seq, len),
                _ => return Err(corrupt(format!("line {n} is {line:?}, not `<checkpoint> <length>`"))),
            };
            if let Some(&(seq, len)) = entries.last() {
                if entry.0 <= seq || entry.1 < len {
                    return Err(corrupt(format!(
                        "line {n} ({line:?}) does not follow checkpoint {seq} at {len} bytes"
                    )));
                }
            }
            entries.push(entry);
        }
        if entries.is_empty() {
            return Err(corrupt("it records no checkpoint".into()));
        }
        Ok(entries)
    }

    fn write_manifest(&self, entries: &[(u64, u64)]) -> io::Result<()> {
        let tmp = sibling(&self.path, ".weir-manifest.tmp");
        let mut f = File::create(&tmp)?;
        for (s, n) in entries {
            writeln!(f, "{s} {n}")?;
        }
        f.sync_all()?;
        fs::rename(&tmp, self.manifest_path())?;
        fsync_dir(&self.path)
    }

    /// Parts on disk, ascending.
    fn parts(&self) -> io::Result<Vec<u64>> {
        let dir = self.path.parent().filter(|p| !p.as_os_str().is_empty()).unwrap_or(Path::new("."));
        let name = self.path.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default();
        let prefix = format!("{name}.weir-part-");
        let mut out = Vec::new();
        for e in fs::read_dir(dir)? {
            let e = e?;
            let n = e.file_name().to_string_lossy().into_owned();
            if let Some(rest) = n.strip_prefix(&prefix) {
                if let Ok(seq) = rest.parse::<u64>() {
                    out.push(seq);
                }
            }
        }
        out.sort_unstable();
        Ok(out)
    }

    /// Appends parts (ascending) to the target and records each.
    fn append_parts(&self, seqs: &[u64], manifest: &mut Vec<(u64, u64)>) -> io::Result<()> {
        if seqs.is_empty() {
            return Ok(());
        }
        let mut target = OpenOptions::new().append(true).create(true).open(&self.path)?;
        for &seq in seqs {
            let mut part = File::open(self.part_path(seq))?;
            io::copy(&mut part, &mut target)?;
            target.sync_all()?;
            manifest.push((seq, target.metadata()?.len()));
        }
        self.write_manifest(manifest)?;
        for &seq in seqs {
            fs::remove_file(self.part_path(seq))?;
        }
        Ok(())
    }

    /// Deletes the parts `seqs`.
    fn remove_parts(&self, seqs: impl IntoIterator<Item = u64>) -> io::Result<()> {
        for seq in seqs {
            fs::remove_file(self.part_path(seq))?;
        }
        Ok(())
    }

    /// Starts afresh when the job did not resume from a checkpoint.
    fn ensure_ready(&mut self) -> io::Result<()> {
        if self.ready {
            return Ok(());
        }
        self.remove_parts(self.parts()?)?;
        let _ = fs::remove_file(self.open_part_path());
        let mut f = File::create(&self.path)?;
        f.write_all(&self.header)?;
        f.sync_all()?;
        self.write_manifest(&[(0, self.header.len() as u64)])?;
        self.ready = true;
        Ok(())
    }

    /// Where to write rows now (the open part).
    pub fn writer(&mut self) -> io::Result<&mut BufWriter<File>> {
        self.ensure_ready()?;
        if self.open.is_none() {
            let f = OpenOptions::new().create(true).append(true).open(self.open_part_path())?;
            self.open = Some(BufWriter::with_capacity(1 << 16, f));
        }
        Ok(self.open.as_mut().expect("opened above"))
    }

    /// Phase one: what was written so far belongs to checkpoint `seq`.
    pub fn pre_commit(&mut self, seq: u64) -> io::Result<()> {
        self.ensure_ready()?;
        if let Some(mut w) = self.open.take() {
            w.flush()?;
            w.get_ref().sync_all()?;
            drop(w);
            fs::rename(self.open_part_path(), self.part_path(seq))?;
            fsync_dir(&self.path)?;
        }
        Ok(())
    }

    /// Phase two: checkpoint `seq` completed; its parts become visible.
    pub fn commit(&mut self, seq: u64) -> io::Result<()> {
        self.ensure_ready()?;
        let mut manifest = self.read_manifest()?;
        let done = manifest.last().map_or(0, |e| e.0);
        let parts = self.parts()?;
        // A part already recorded (a crash between the manifest and the
        // deletion) is not appended twice: it is deleted.
        self.remove_parts(parts.iter().copied().filter(|&s| s <= done))?;
        let due: Vec<u64> = parts.into_iter().filter(|&s| s <= seq && s > done).collect();
        self.append_parts(&due, &mut manifest)
    }

    /// End of input: everything written becomes visible.
    pub fn finish(&mut self) -> io::Result<()> {
        self.pre_commit(FINAL)?;
        self.commit(FINAL)
    }

    /// Resume from checkpoint `seq`: keep exactly what it covers.
    pub fn restore(&mut self, seq: u64) -> io::Result<()> {
        let mut manifest = self.read_manifest()?;
        manifest.retain(|e| e.0 <= seq);
        let (done, len) = manifest.last().copied().unwrap_or((0, 0));
        if manifest.is_empty() {
            // Nothing was ever committed: start from the header.
            self.ready = false;
            return self.ensure_ready();
        }
        // Cutting back never lengthens the file: a file shorter than what
        // the manifest says was committed has lost committed rows.
        let have = match fs::metadata(&self.path) {
            Ok(m) => m.len(),
            Err(e) if e.kind() == io::ErrorKind::NotFound => 0,
            Err(e) => return Err(e),
        };
        if len > have {
            let msg = format!(
                "{}: records {len} bytes committed at checkpoint {done}, but {} holds {have}",
                self.manifest_path().display(),
                self.path.display()
            );
            return Err(io::Error::new(io::ErrorKind::InvalidData, msg));
        }
        let f = OpenOptions::new().write(true).create(true).truncate(false).open(&self.path)?;
        f.set_len(len)?;
        f.sync_all()?;
        self.write_manifest(&manifest)?;
        let parts = self.parts()?;
        self.remove_parts(parts.iter().copied().filter(|&s| s <= done))?;
        let due: Vec<u64> = parts.iter().copied().filter(|&s| s > done && s <= seq).collect();
        self.append_parts(&due, &mut manifest)?;
        self.remove_parts(parts.into_iter().filter(|&s| s > seq))?;
        let _ = fs::remove_file(self.open_part_path());
        self.ready = true;
        Ok(())
    }
}

/// An exactly-once file sink: JSON lines, or CSV rows under a given header.
/// Rows appear in the file only when the checkpoint covering them completes
/// (or at the end of input); see the module documentation.
#[derive(Debug)]
pub struct ExactlyOnceFileSink {
    file: TransactionalFile,
    csv: bool,
}

impl ExactlyOnceFileSink {
    /// One JSON value per line.
    pub fn json_lines(path: impl Into<PathBuf>) -> Self {
        ExactlyOnceFileSink { file: TransactionalFile::new(path, Vec::new()), csv: false }
    }

    /// CSV rows (values serialize as flat records) under `header`.
    pub fn csv(path: impl Into<PathBuf>, header: &[&str]) -> Self {
        let mut h = header.join(",").into_bytes();
        h.push(b'\n');
        ExactlyOnceFileSink { file: TransactionalFile::new(path, h), csv: true }
    }

    fn io(&self, source: io::Error) -> crate::sink::SinkError {
        crate::sink::SinkError::Io { path: self.file.path.clone(), source }
    }
}

impl<T: serde::Serialize + Send + 'static> crate::sink::Sink<T> for ExactlyOnceFileSink {
    fn write(&mut self, batch: &mut Vec<crate::message::Record<T>>) -> Result<(), crate::sink::SinkError> {
        let path = self.file.path.clone();
        let encode =
            |e: &dyn std::fmt::Display| crate::sink::SinkError::Encode { path: path.clone(), message: e.to_string() };
        let mut bytes = Vec::new();
        if self.csv {
            let mut w = csv::WriterBuilder::new().has_headers(false).from_writer(&mut bytes);
            for r in batch.drain(..) {
                w.serialize(&r.value).map_err(|e| encode(&e))?;
            }
            w.flush().map_err(|e| encode(&e))?;
        } else {
            for r in batch.drain(..) {
                serde_json::to_writer(&mut bytes, &r.value).map_err(|e| encode(&e))?;
                bytes.push(b'\n');
            }
        }
        let res = self.file.writer().and_then(|w| w.write_all(&bytes));
        res.map_err(|e| self.io(e))
    }

    fn finish(&mut self) -> Result<(), crate::sink::SinkError> {
        let res = self.file.finish();
        res.map_err(|e| self.io(e))
    }

    fn pre_commit(
        &mut self,
        id: crate::message::CheckpointId,
    ) -> Result<crate::checkpoint::Snapshot, crate::sink::SinkError> {
        let res = self.file.pre_commit(id.seq);
        res.map_err(|e| self.io(e))?;
        Ok(crate::checkpoint::Snapshot::empty())
    }

    fn commit(&mut self, id: crate::message::CheckpointId) -> Result<(), crate::sink::SinkError> {
        let res = self.file.commit(id.seq);
        res.map_err(|e| self.io(e))
    }

    fn restore(
        &mut self,
        id: crate::message::CheckpointId,
        _state: &crate::checkpoint::Snapshot,
    ) -> Result<(), crate::sink::SinkError> {
        let res = self.file.restore(id.seq);
        res.map_err(|e| self.io(e))
    }
}

#[cfg(test)]
#[path = "transactional_props.rs"]
mod props;

#[cfg(test)]
mod tests {
    use super::*;

    fn write(t: &mut TransactionalFile, s: &str) {
        t.writer().unwrap().write_all(s.as_bytes()).unwrap();
    }

    #[test]
    fn rows_become_visible_only_when_their_checkpoint_completes() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("out.csv");
        let mut t = TransactionalFile::new(&path, b"h\n".to_vec());
        write(&mut t, "a\n");
        t.pre_commit(1).unwrap();
        write(&mut t, "b\n");
        assert_eq!(fs::read_to_string(&path).unwrap(), "h\n");
        t.commit(1).unwrap();
        assert_eq!(fs::read_to_string(&path).unwrap(), "h\na\n");
        t.finish().unwrap();
        assert_eq!(fs::read_to_string(&path).unwrap(), "h\na\nb\n");
    }

    #[test]
    fn restore_discards_what_came_after_the_checkpoint_and_completes_what_it_covers() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("out.csv");
        let mut t = TransactionalFile::new(&path, b"h\n".to_vec());
        write(&mut t, "a\n");
        t.pre_commit(1).unwrap();
        t.commit(1).unwrap();
        write(&mut t, "b\n");
        t.pre_commit(2).unwrap(); // crash before checkpoint 2's commit
        write(&mut t, "c\n");
        t.pre_commit(3).unwrap(); // checkpoint 3 never completed
        write(&mut t, "d\n");
        drop(t);
        let mut t = TransactionalFile::new(&path, b"h\n".to_vec());
        t.restore(2).unwrap();
        assert_eq!(fs::read_to_string(&path).unwrap(), "h\na\nb\n");
        write(&mut t, "c2\n");
        t.finish().unwrap();
        assert_eq!(fs::read_to_string(&path).unwrap(), "h\na\nb\nc2\n");
        // Rerunning from checkpoint 2 after the job finished gives the same.
        let mut t = TransactionalFile::new(&path, b"h\n".to_vec());
        t.restore(2).unwrap();
        write(&mut t, "c2\n");
        t.finish().unwrap();
        assert_eq!(fs::read_to_string(&path).unwrap(), "h\na\nb\nc2\n");
    }

    #[test]
    fn parts_left_by_a_crash_between_manifest_and_cleanup_are_removed() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("out.csv");
        let mut t = TransactionalFile::new(&path, b"h\n".to_vec());
        write(&mut t, "a\n");
        t.pre_commit(1).unwrap();
        // A crash after the manifest recorded part 1, before its deletion.
        let kept = fs::read(t.part_path(1)).unwrap();
        t.commit(1).unwrap();
        fs::write(t.part_path(1), &kept).unwrap();
        write(&mut t, "b\n");
        t.pre_commit(2).unwrap();
        t.commit(2).unwrap();
        assert_eq!(fs::read_to_string(&path).unwrap(), "h\na\nb\n", "part 1 is not appended twice");
        assert!(t.parts().unwrap().is_empty(), "no part is left behind: {:?}", t.parts().unwrap());
        // The same after a restore.
        fs::write(t.part_path(1), &kept).unwrap();
        let mut t = TransactionalFile::new(&path, b"h\n".to_vec());
        t.restore(2).unwrap();
        assert_eq!(fs::read_to_string(&path).unwrap(), "h\na\nb\n");
        assert!(t.parts().unwrap().is_empty());
    }

    #[test]
    fn a_fresh_start_replaces_an_old_file() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("out.csv");
        fs::write(&path, "old\n").unwrap();
        let mut t = TransactionalFile::new(&path, b"h\n".to_vec());
        write(&mut t, "x\n");
        t.finish().unwrap();
        assert_eq!(fs::read_to_string(&path).unwrap(), "h\nx\n");
    }
}
