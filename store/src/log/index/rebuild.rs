//! Replacing the index: keeping the old one aside, starting afresh, remembering that a rebuild
//! made it, and noticing that another process of the station did any of these. Apart because it
//! is the part that runs when the index is wrong, not when it is used.

use super::{IndexError, LogIndex, inode_of};
use rusqlite::OptionalExtension;
use std::path::{Path, PathBuf};

impl LogIndex {
    /// Keep a copy of the index as it is in `dir` (before a rebuild replaces what it says: an
    /// index that disagrees with the file may be the only record of what the file held). A
    /// database too damaged to copy through SQLite is copied as its files are.
    pub(in crate::log) fn set_aside(&self, dir: &Path) -> Result<PathBuf, IndexError> {
        let to = dir.join(format!(
            "index-{}.sqlite",
            chrono::Utc::now().format("%Y%m%dT%H%M%S%.3fZ")
        ));
        let vacuumed = self.db.execute("VACUUM INTO ?1", [to.to_string_lossy()]);
        if let Err(e) = vacuumed {
            tracing::warn!(index = %self.path.display(), error = %e, "custody log index copied as its files: SQLite could not read it whole");
            for suffix in ["", "-wal"] {
                let from = PathBuf::from(format!("{}{suffix}", self.path.display()));
                let into = PathBuf::from(format!("{}{suffix}", to.display()));
                match std::fs::copy(&from, &into) {
                    Ok(_) => {}
                    Err(e) if e.kind() == std::io::ErrorKind::NotFound && !suffix.is_empty() => {}
                    Err(e) => {
                        return Err(self.damaged(format!(
                            "it cannot be kept in {} before it is rebuilt ({e}); free space there and open the log again",
                            into.display()
                        )));
                    }
                }
            }
        }
        Ok(to)
    }

    /// Whether this index is one a rebuild made from the events file as it is now
    /// (`file_len` bytes), with nothing added since.
    pub(in crate::log) fn rebuilt_from(&self, file_len: u64) -> Result<bool, IndexError> {
        let rebuilt: Option<i64> = self
            .db
            .query_row(
                "SELECT value FROM meta WHERE name = 'rebuilt_len'",
                [],
                |r| r.get(0),
            )
            .optional()
            .map_err(|e| self.db_err(e))?;
        Ok(rebuilt == Some(file_len as i64) && self.len() == file_len)
    }

    /// Note that the index was just rebuilt from the events file as far as it goes now.
    pub(in crate::log) fn mark_rebuilt(&mut self) -> Result<(), IndexError> {
        self.commit_through(self.size())?;
        self.db
            .execute(
                "INSERT INTO meta (name, value) VALUES ('rebuilt_len', ?1)
                 ON CONFLICT (name) DO UPDATE SET value = excluded.value",
                [self.len() as i64],
            )
            .map_err(|e| self.db_err(e))?;
        Ok(())
    }

    /// Forget everything: the index is rebuilt from the events file. The generation it bumps
    /// tells every other process of the station to read the index afresh.
    pub(in crate::log) fn reset(&mut self) -> Result<(), IndexError> {
        self.db
            .execute_batch(
                "BEGIN IMMEDIATE; DELETE FROM events; DELETE FROM nodes; DELETE FROM rotations;
                 DELETE FROM meta WHERE name IN ('size', 'len');
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
