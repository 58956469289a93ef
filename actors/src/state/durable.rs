//! Durable file operations: every write goes to a temporary file in the
//! target directory, is `fsync`ed, renamed over its final name, and then the
//! directory is `fsync`ed so that the rename itself survives a power loss.
//! A crash at any point leaves either no file or the whole file under its
//! final name (plus, at worst, a stray temporary file that readers ignore).

use std::fs::{self, File};
use std::io::{self, Write};
use std::path::{Path, PathBuf};

use super::naming::TEMP_PREFIX;
use super::StateError;

/// Wraps an I/O error with the file it concerns.
pub(crate) fn io_err(path: &Path) -> impl FnOnce(io::Error) -> StateError + '_ {
    move |source| StateError::Io { path: path.to_path_buf(), source }
}

/// Writes `bytes` to `dir/name` atomically and durably; returns the path.
pub(crate) fn write_atomic(dir: &Path, name: &str, bytes: &[u8]) -> Result<PathBuf, StateError> {
    let path = dir.join(name);
    let tmp = dir.join(format!("{TEMP_PREFIX}{name}"));
    let written = write_and_sync(&tmp, bytes).and_then(|()| fs::rename(&tmp, &path).map_err(io_err(&path)));
    if let Err(e) = written {
        // Best effort: the temporary file is garbage either way, and readers
        // never look at it.
        let _ = fs::remove_file(&tmp);
        return Err(e);
    }
    sync_dir(dir)?;
    Ok(path)
}

fn write_and_sync(path: &Path, bytes: &[u8]) -> Result<(), StateError> {
    let mut file = File::create(path).map_err(io_err(path))?;
    file.write_all(bytes).map_err(io_err(path))?;
    file.sync_all().map_err(io_err(path))
}

/// Makes the entries of `dir` (new files, renames, new subdirectories)
/// durable. A no-op where directories cannot be opened as files.
pub(crate) fn sync_dir(dir: &Path) -> Result<(), StateError> {
    #[cfg(unix)]
    {
        File::open(dir).and_then(|d| d.sync_all()).map_err(io_err(dir))
    }
    #[cfg(not(unix))]
    {
        let _ = dir;
        Ok(())
    }
}

/// Removes a directory tree; one that is already gone is not an error.
pub(crate) fn remove_dir_if_exists(dir: &Path) -> Result<(), StateError> {
    match fs::remove_dir_all(dir) {
        Err(e) if e.kind() != io::ErrorKind::NotFound => Err(StateError::Io { path: dir.to_path_buf(), source: e }),
        _ => Ok(()),
    }
}

/// Reads a whole file; `Ok(None)` if it does not exist.
pub(crate) fn read_if_exists(path: &Path) -> Result<Option<Vec<u8>>, StateError> {
    match fs::read(path) {
        Ok(bytes) => Ok(Some(bytes)),
        Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(None),
        Err(e) => Err(StateError::Io { path: path.to_path_buf(), source: e }),
    }
}
