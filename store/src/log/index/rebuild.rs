//! Replacing the index: keeping the old one aside, starting afresh, remembering that a rebuild
//! made it, and noticing that another process of the station did any of these. Apart because it
//! is the part that runs when the index is wrong, not when it is used.

use super::{IndexError, LogIndex, inode_of};
use rusqlite::OptionalExtension;
use std::path::{Path, PathBuf};

/// A name no other copy has: two kept within a millisecond (a move on open, then a copy) or by
/// two processes must not meet, since a copy that fails removes what it wrote.
fn aside_name(dir: &Path) -> PathBuf {
    static KEPT: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);
    let n = KEPT.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    dir.join(format!(
        "index-{}-{}-{n}.sqlite",
        chrono::Utc::now().format("%Y%m%dT%H%M%S%.3fZ"),
        std::process::id()
    ))
}

/// Move the database at `path` and its write-ahead log into `dir`; its shared-memory file is
/// only a cache of the log's state and is removed.
pub(super) fn move_aside(path: &Path, dir: &Path) -> Result<PathBuf, IndexError> {
    std::fs::create_dir_all(dir).map_err(|e| IndexError::Damaged {
        path: path.to_path_buf(),
        what: format!("cannot make {} to keep it in: {e}", dir.display()),
    })?;
    let to = aside_name(dir);
    for suffix in ["", "-wal", "-shm"] {
        let from = PathBuf::from(format!("{}{suffix}", path.display()));
        let into = PathBuf::from(format!("{}{suffix}", to.display()));
        let moved = if suffix == "-shm" {
            std::fs::remove_file(&from)
        } else {
            std::fs::rename(&from, &into)
        };
        match moved {
            Ok(()) => {}
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
            Err(e) => {
                return Err(IndexError::Damaged {
                    path: from,
                    what: format!("cannot move it into {}: {e}", dir.display()),
                });
            }
        }
    }
    Ok(to)
}

impl LogIndex {
    /// Keep a copy of the index as it is in `dir` (before a rebuild replaces what it says: an
    /// index that disagrees with the file may be the only record of what the file held). A
    /// copy cut short is removed.
    pub(in crate::log) fn set_aside(&self, dir: &Path) -> Result<PathBuf, IndexError> {
        let to = aside_name(dir);
        if let Err(e) = self.db.execute("VACUUM INTO ?1", [to.to_string_lossy()]) {
            let _ = std::fs::remove_file(&to);
            return Err(self.db_err(e));
        }
        Ok(to)
    }

    /// Move the index's files into `dir` as they are (kept whole, without reading or copying
    /// them) and start a fresh index: for a database SQLite cannot copy or empty.
    pub(in crate::log) fn replace(&mut self, dir: &Path) -> Result<PathBuf, IndexError> {
        let kept = move_aside(&self.path, dir)?;
        *self = Self::open_at(&self.path)?;
        Ok(kept)
    }

    /// Whether this index is what a rebuild made from the events file as it is now
    /// (`file_len` bytes) before the file failed its own checkpoint: it holds nothing the file
    /// does not, and keeping it again on every restart would fill the disk.
    pub(in crate::log) fn failed_rebuild_of(&self, file_len: u64) -> Result<bool, IndexError> {
        let marked: Option<i64> = self
            .db
            .query_row(
                "SELECT value FROM meta WHERE name = 'failed_rebuild_len'",
                [],
                |r| r.get(0),
            )
            .optional()
            .map_err(|e| self.db_err(e))?;
        Ok(marked == Some(file_len as i64))
    }

    /// Note that this index, just rebuilt from the events file as far as it goes, did not pass
    /// the file's checkpoint.
    pub(in crate::log) fn mark_failed_rebuild(&mut self, file_len: u64) -> Result<(), IndexError> {
        // The file's length, not the index's: a rebuild that stopped at damage covers less.
        self.db
            .execute(
                "INSERT INTO meta (name, value) VALUES ('failed_rebuild_len', ?1)
                 ON CONFLICT (name) DO UPDATE SET value = excluded.value",
                [file_len as i64],
            )
            .map_err(|e| self.db_err(e))?;
        Ok(())
    }

    /// The index passed its checks: forget a failed rebuild noted before (the file was put
    /// back), so a later rebuild keeps what this index says.
    pub(in crate::log) fn clear_failed_rebuild(&self) -> Result<(), IndexError> {
        let marked: bool = self
            .db
            .query_row(
                "SELECT EXISTS (SELECT 1 FROM meta WHERE name = 'failed_rebuild_len')",
                [],
                |r| r.get(0),
            )
            .map_err(|e| self.db_err(e))?;
        if marked {
            self.db
                .execute("DELETE FROM meta WHERE name = 'failed_rebuild_len'", [])
                .map_err(|e| self.db_err(e))?;
        }
        Ok(())
    }

    /// Forget everything: the index is rebuilt from the events file. The generation it bumps
    /// tells every other process of the station to read the index afresh.
    pub(in crate::log) fn reset(&mut self) -> Result<(), IndexError> {
        self.db
            .execute_batch(
                "BEGIN IMMEDIATE; DELETE FROM events; DELETE FROM nodes; DELETE FROM rotations;
                 DELETE FROM meta WHERE name IN ('size', 'len', 'failed_rebuild_len');
                 INSERT INTO meta (name, value) VALUES ('generation', 1)
                     ON CONFLICT (name) DO UPDATE SET value = value + 1;
                 COMMIT;",
            )
            .map_err(|e| self.db_err(e))?;
        self.load()
    }

    /// Whether another process reset the database, or replaced its file, since this one loaded
    /// it: then what this one holds in memory (the frontier, how far the rows go) is stale.
    pub(in crate::log) fn changed_elsewhere(&self) -> Result<bool, IndexError> {
        if inode_of(&self.path) != self.inode {
            return Ok(true);
        }
        let generation: Option<i64> = self
            .db
            .prepare_cached("SELECT value FROM meta WHERE name = 'generation'")
            .and_then(|mut s| s.query_row([], |r| r.get(0)).optional())
            .map_err(|e| self.db_err(e))?;
        Ok(generation.unwrap_or(0).max(0) as u64 != self.generation)
    }

    /// Read the database afresh (reopening its file if it was replaced), dropping the rows that
    /// wait for an fsync: their lines are in the events file, and the log reads them again.
    pub(in crate::log) fn reload(&mut self) -> Result<(), IndexError> {
        if inode_of(&self.path) != self.inode {
            *self = Self::open_at(&self.path)?;
            return Ok(());
        }
        self.load()
    }
}
