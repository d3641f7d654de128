//! Disposals under way: what makes a disposal resumable.
//!
//! A disposal is a `disposed` custody event, then the removal of the item's copies (store,
//! spool, derivatives). The event comes first (invariant 3), so a crash between the two would
//! leave copies beside an event that says they are gone — and the item, disposed, is never
//! "due" again, so no later run would remove them. A file `<data>/disposing/<evidence>` is
//! written before the event and removed once every copy is gone; the next disposal run (an
//! admin's `evidock retention dispose`, or the dock's `auto_dispose`) first finishes the
//! items it names whose event is logged, and drops those whose event is not (nothing was
//! recorded, so nothing may be removed).

use super::{CaseError, Cases};
use crate::cases::index::Item;
use evidock_store::fsutil;
use evidock_verify::id::EvidenceId;

impl Cases {
    /// The station's disposal lock, held from listing what is unfinished to the last copy
    /// removed: the dock's `auto_dispose` and an admin's `retention dispose` take turns (one
    /// must not drop, or call unfinished, a mark the other has just written).
    pub fn disposal_turn(&self) -> Result<std::fs::File, CaseError> {
        fsutil::create_dir_all(&self.disposing)
            .map_err(|e| self.disposing_err(&self.disposing, e))?;
        let path = self.disposing.join(".lock");
        let f = std::fs::OpenOptions::new()
            .write(true)
            .create(true)
            .truncate(false)
            .open(&path)
            .map_err(|e| self.disposing_err(&path, e))?;
        f.lock().map_err(|e| self.disposing_err(&path, e))?;
        Ok(f)
    }

    fn disposing_err(&self, path: &std::path::Path, e: impl std::fmt::Display) -> CaseError {
        CaseError::Disposing {
            path: path.to_path_buf(),
            reason: e.to_string(),
        }
    }

    /// Note, durably, that `evidence` is about to be disposed of.
    pub(super) fn mark_disposing(&self, evidence: &EvidenceId) -> Result<(), CaseError> {
        fsutil::create_dir_all(&self.disposing)
            .map_err(|e| self.disposing_err(&self.disposing, e))?;
        let p = self.disposing.join(evidence.as_str());
        fsutil::write_atomic(&p, evidence.as_str().as_bytes(), 0o600)
            .map_err(|e| self.disposing_err(&p, e))
    }

    /// Every copy of `evidence` is gone: its disposal is finished.
    pub(super) fn disposal_done(&self, evidence: &EvidenceId) -> Result<(), CaseError> {
        let p = self.disposing.join(evidence.as_str());
        match fs_err::remove_file(&p) {
            Ok(()) => fsutil::sync_dir(&self.disposing).map_err(|e| self.disposing_err(&p, e)),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
            Err(e) => Err(self.disposing_err(&p, e)),
        }
    }

    /// The items whose disposal was recorded but whose copies may remain (a run cut off after
    /// the `disposed` event): the caller removes their copies again. A mark without its event
    /// is dropped here. Call it holding [`Cases::disposal_turn`].
    pub fn unfinished_disposals(&self) -> Result<Vec<Item>, CaseError> {
        let entries = match fs_err::read_dir(&self.disposing) {
            Ok(d) => d,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
            Err(e) => return Err(self.disposing_err(&self.disposing, e)),
        };
        self.catch_up()?;
        let mut out = Vec::new();
        for entry in entries {
            let entry = entry.map_err(|e| self.disposing_err(&self.disposing, e))?;
            let name = entry.file_name();
            // Only the names this station writes (the temporary file of an atomic write that a
            // crash cut off starts with a dot).
            let Some(id) = name.to_str().and_then(|n| EvidenceId::new(n).ok()) else {
                if !name.to_string_lossy().starts_with('.') {
                    tracing::warn!(file = %entry.path().display(), "not a disposal mark; left alone");
                }
                continue;
            };
            match self.index.item(&id)? {
                Some(item) if item.disposed_at.is_some() => out.push(item),
                _ => self.disposal_done(&id)?,
            }
        }
        Ok(out)
    }
}
