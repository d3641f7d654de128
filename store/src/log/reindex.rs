//! Replacing the log's index: rebuilding it from the events file (keeping the old one aside),
//! the full check of `evidock log verify`, and following another process's rebuild. Apart from
//! opening because it runs whenever the index turns out wrong, at open or under the lock.

use super::index::LogIndex;
use super::{CustodyLog, LogError, Reindexed};
use crate::fsutil;

impl CustodyLog {
    /// Keep the index aside in `quarantine/` and build it again from the events file.
    ///
    /// Kept by a copy, or, when SQLite cannot read it whole, by moving its files (which also
    /// replaces a database too damaged to empty). An index that cannot be kept either way is
    /// not replaced: it may be the only record of what the file held. One that a rebuild made
    /// from the file as it is now, before the file failed its checkpoint (a restart loop), is
    /// not kept again.
    pub(super) fn rebuild_index(&mut self, reason: String) -> Result<Reindexed, LogError> {
        let file_len = self.file_len()?;
        let qdir = self.dir.join("quarantine");
        fsutil::create_dir_all(&qdir)?;
        let again = self.index.failed_rebuild_of(file_len).unwrap_or(false);
        let kept = if again {
            tracing::warn!(log = %self.dir.display(), "the custody log index is one rebuilt from this same events.jsonl; not kept again");
            None
        } else {
            match self.index.set_aside(&qdir) {
                Ok(p) => Some(p),
                Err(e) if e.rebuilds() => Some(self.index.replace(&qdir)?),
                Err(e) => return Err(e.into()),
            }
        };
        tracing::warn!(log = %self.dir.display(), %reason, kept = ?kept, "custody log index rebuilt from events.jsonl");
        match self.index.reset() {
            Ok(()) => {}
            Err(e) if e.rebuilds() => {
                self.index.replace(&qdir)?;
            }
            Err(e) => return Err(e.into()),
        }
        self.rotated_to = None;
        let checked = self
            .catch_up_and_note_repair()
            .and_then(|()| self.check_against_checkpoint());
        if let Err(e) = checked {
            if let Err(m) = self.index.mark_failed_rebuild(file_len) {
                tracing::warn!(log = %self.dir.display(), error = %m, "the rebuilt custody log index could not be marked as failed");
            }
            return Err(e);
        }
        Ok(Reindexed { reason, kept })
    }

    /// Check the whole index against the whole events file — every leaf re-hashed, every
    /// subtree recomputed — and rebuild it if it does not match. The full check of
    /// `evidock log verify`; opening checks only what the last checkpoint does not cover.
    pub fn check_index(&mut self) -> Result<Option<Reindexed>, LogError> {
        self.locked(|log| {
            let checked = log
                .rehash_from(0, log.index.size())
                .and_then(|()| log.index.check_nodes());
            match checked {
                Ok(()) => Ok(None),
                Err(LogError::Index(e)) if e.rebuilds() => {
                    log.rebuild_index(e.to_string()).map(Some)
                }
                Err(LogError::Corrupt { reason, .. }) => log.rebuild_index(reason).map(Some),
                Err(e) => Err(e),
            }
        })
    }

    /// Before anything is decided under the lock: follow another process's rebuild (read the
    /// index afresh and check it as on open), else rebuild an index this process found wrong
    /// (a row committed otherwise, a row that points at another event).
    pub(super) fn follow_index(&mut self) -> Result<(), LogError> {
        let changed = match self.index.changed_elsewhere() {
            Ok(changed) => changed,
            // Unreadable where it says how far it goes: read it afresh, and check it.
            Err(e) if e.rebuilds() => true,
            Err(e) => return Err(e.into()),
        };
        if changed {
            match self.index.reload() {
                Ok(()) => {}
                // Opened afresh, never rebuilt through this handle: after a replacement it is
                // the copy kept aside.
                Err(e) if e.rebuilds() => self.index = LogIndex::open(&self.dir)?,
                Err(e) => return Err(e.into()),
            }
            if let Some(r) = self.bring_index_up()? {
                tracing::warn!(log = %self.dir.display(), reason = %r.reason, "custody log index rebuilt again after another process rebuilt it");
            }
            return Ok(());
        }
        if let Some(what) = self.index.disagreed().or(self.index.damage_seen()) {
            let reason = what.to_string();
            self.rebuild_index(reason)?;
        }
        Ok(())
    }
}
