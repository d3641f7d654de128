//! Durable, atomic, write-once files.
//!
//! Every file evidock writes that matters goes through here: written to a temporary file in the
//! same directory, fsynced, renamed into place, and the directory fsynced, so a crash leaves
//! either the old state or the whole new file, never a part. Errors carry the path.

use std::fs::{File, OpenOptions};
use std::io::{self, Write};
use std::os::unix::fs::OpenOptionsExt as _;
use std::path::{Path, PathBuf};

/// An I/O error with the path and the operation.
#[derive(Debug, thiserror::Error)]
#[error("{op} {path}: {source}")]
pub struct FsError {
    pub op: &'static str,
    pub path: PathBuf,
    #[source]
    pub source: io::Error,
}

impl FsError {
    pub fn new(op: &'static str, path: &Path, source: io::Error) -> Self {
        FsError {
            op,
            path: path.to_path_buf(),
            source,
        }
    }

    /// Whether the disk is full (ENOSPC) or over quota (EDQUOT). By kind, not errno: an error
    /// that names its path (fs-err) carries no raw OS code.
    pub fn is_disk_full(&self) -> bool {
        matches!(
            self.source.kind(),
            std::io::ErrorKind::StorageFull | std::io::ErrorKind::QuotaExceeded
        )
    }
}

/// Build a closure mapping an `io::Error` to an [`FsError`] for `path`.
pub fn err<'a>(op: &'static str, path: &'a Path) -> impl FnOnce(io::Error) -> FsError + 'a {
    move |e| FsError::new(op, path, e)
}

/// The directory holding `path` (`.` for a bare relative name).
pub fn parent_dir(path: &Path) -> &Path {
    match path.parent() {
        Some(p) if !p.as_os_str().is_empty() => p,
        _ => Path::new("."),
    }
}

/// `mkdir -p`, each new level made durable: the directory holding it is fsynced after it is
/// made (a new level whose own entry is not durable would lose everything below it).
pub fn create_dir_all(path: &Path) -> Result<(), FsError> {
    if path.is_dir() {
        return Ok(());
    }
    // The missing levels, outermost first.
    let mut missing = Vec::new();
    let mut p = path;
    while !p.is_dir() {
        missing.push(p);
        match p.parent() {
            Some(parent) if !parent.as_os_str().is_empty() => p = parent,
            _ => break,
        }
    }
    for dir in missing.into_iter().rev() {
        match std::fs::create_dir(dir) {
            Ok(()) => sync_dir(parent_dir(dir))?,
            // Made by another thread or process meanwhile, which may not have synced its
            // parent yet: what this caller puts inside must not outlive the entry in a crash.
            Err(e) if e.kind() == io::ErrorKind::AlreadyExists && dir.is_dir() => {
                sync_dir(parent_dir(dir))?
            }
            Err(e) => return Err(FsError::new("create directory", dir, e)),
        }
    }
    Ok(())
}

/// fsync a directory (makes renames and creations in it durable).
pub fn sync_dir(path: &Path) -> Result<(), FsError> {
    let d = File::open(path).map_err(err("open directory", path))?;
    d.sync_all().map_err(err("fsync directory", path))
}

fn temp_path(path: &Path) -> PathBuf {
    let mut rnd = [0u8; 6];
    // A predictable name is only a collision risk, never a correctness one: fall back quietly.
    let _ = getrandom::fill(&mut rnd);
    let name = path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    path.with_file_name(format!(".{name}.tmp-{}", hex::encode(rnd)))
}

/// Write `data` to `path` atomically and durably, replacing what is there.
pub fn write_atomic(path: &Path, data: &[u8], mode: u32) -> Result<(), FsError> {
    let tmp = temp_path(path);
    let result = (|| {
        let mut f = OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(mode)
            .open(&tmp)
            .map_err(err("create", &tmp))?;
        f.write_all(data).map_err(err("write", &tmp))?;
        f.sync_all().map_err(err("fsync", &tmp))?;
        std::fs::rename(&tmp, path).map_err(err("rename into place", path))?;
        sync_dir(parent_dir(path))
    })();
    if result.is_err() {
        let _ = std::fs::remove_file(&tmp);
    }
    result
}

/// Outcome of [`write_once`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum WriteOnce {
    Created,
    /// The file already existed with exactly these bytes.
    AlreadyThere,
}

/// Create `path` with `data`, atomically and durably, only if it does not exist.
///
/// An existing file with the same bytes is success ([`WriteOnce::AlreadyThere`]); one with other
/// bytes is an `AlreadyExists` error: write-once files are never replaced.
pub fn write_once(path: &Path, data: &[u8], mode: u32) -> Result<WriteOnce, FsError> {
    if let Ok(existing) = std::fs::read(path) {
        if existing == data {
            return Ok(WriteOnce::AlreadyThere);
        }
        return Err(FsError::new(
            "write-once (different content already present)",
            path,
            io::Error::from(io::ErrorKind::AlreadyExists),
        ));
    }
    let tmp = temp_path(path);
    let result = (|| {
        let mut f = OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(mode)
            .open(&tmp)
            .map_err(err("create", &tmp))?;
        f.write_all(data).map_err(err("write", &tmp))?;
        f.sync_all().map_err(err("fsync", &tmp))?;
        // link(2) fails if the target exists: no window where a racing writer is overwritten.
        std::fs::hard_link(&tmp, path).map_err(err("link into place", path))?;
        std::fs::remove_file(&tmp).map_err(err("remove temporary", &tmp))?;
        sync_dir(parent_dir(path))
    })();
    if result.is_err() {
        let _ = std::fs::remove_file(&tmp);
    }
    match result {
        Ok(()) => Ok(WriteOnce::Created),
        Err(e) if e.source.kind() == io::ErrorKind::AlreadyExists => {
            // Lost a race: fine if the winner wrote the same bytes.
            match std::fs::read(path) {
                Ok(existing) if existing == data => Ok(WriteOnce::AlreadyThere),
                _ => Err(e),
            }
        }
        Err(e) => Err(e),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::PermissionsExt as _;

    #[test]
    fn atomic_and_write_once() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("a.txt");
        write_atomic(&p, b"one", 0o600).unwrap();
        write_atomic(&p, b"two", 0o600).unwrap();
        assert_eq!(std::fs::read(&p).unwrap(), b"two");
        assert_eq!(
            std::fs::metadata(&p).unwrap().permissions().mode() & 0o777,
            0o600
        );
        let q = dir.path().join("b.txt");
        assert_eq!(write_once(&q, b"x", 0o444).unwrap(), WriteOnce::Created);
        assert_eq!(
            write_once(&q, b"x", 0o444).unwrap(),
            WriteOnce::AlreadyThere
        );
        let e = write_once(&q, b"y", 0o444).unwrap_err();
        assert_eq!(e.source.kind(), io::ErrorKind::AlreadyExists);
        assert!(e.to_string().contains("b.txt"));
        // No temporary files left behind.
        let names: Vec<_> = std::fs::read_dir(dir.path())
            .unwrap()
            .map(|e| e.unwrap().file_name())
            .collect();
        assert_eq!(names.len(), 2, "{names:?}");
    }
}
