//! Proofs that leave the log: inclusion and consistency proofs from the index, each checked
//! against a signed checkpoint before it is handed out. The index is a cache; a package or a
//! `log prove` answer is evidence, so a node the index holds wrongly must stop here, named,
//! rather than reach a receiver whose verifier refuses it.

use super::{CustodyLog, LogError};
use crate::fsutil;
use evidock_verify::checkpoint::SignedCheckpoint;
use evidock_verify::layout;
use evidock_verify::merkle::{self, Hash};

impl CustodyLog {
    /// The checkpoint of `size` events as this log keeps it, its signature checked with the key
    /// in force at that size.
    pub fn signed_checkpoint(&self, size: u64) -> Result<SignedCheckpoint, LogError> {
        let corrupt = |reason: String| LogError::Corrupt {
            dir: self.dir.clone(),
            seq: size.saturating_sub(1),
            reason,
        };
        let path = self
            .dir
            .join(layout::CHECKPOINTS_DIR)
            .join(layout::checkpoint_file(size));
        let bytes = std::fs::read(&path).map_err(fsutil::err("read", &path))?;
        let signed = SignedCheckpoint::parse(&bytes)
            .map_err(|e| corrupt(format!("checkpoint {size} is unreadable: {e}")))?;
        let key = match self.index.rotation_before(size)? {
            Some((_, k)) => Some(k),
            None => self.genesis_key.clone(),
        };
        if let Some(key) = &key
            && !signed.verify(key)
        {
            return Err(corrupt(format!(
                "checkpoint {size} is not signed by the key in force ({key})"
            )));
        }
        if signed.checkpoint.size != size {
            return Err(corrupt(format!(
                "checkpoint {size} says it is of {} events",
                signed.checkpoint.size
            )));
        }
        Ok(signed)
    }

    /// The inclusion proof of event `seq` in the first `size` events, checked against `root`
    /// (the signed root of that size).
    pub fn proved_inclusion(
        &self,
        seq: u64,
        size: u64,
        root: &Hash,
    ) -> Result<Vec<Hash>, LogError> {
        let what = || format!("inclusion proof of event #{seq} in {size}");
        let path = self
            .index
            .inclusion_proof(seq, size)
            .map_err(|e| self.unproved(what(), e.to_string()))?;
        let leaf = self
            .index
            .leaf(seq)?
            .ok_or_else(|| self.unproved(what(), "no such event".into()))?;
        merkle::verify_inclusion(&leaf, seq, size, &path, root)
            .map_err(|e| self.unproved(what(), e.to_string()))?;
        Ok(path)
    }

    /// The consistency proof from the first `old` events to the first `new`, checked against
    /// `new_root` (the signed root of `new`), with the root of `old` it proves.
    pub fn proved_consistency(
        &self,
        old: u64,
        new: u64,
        new_root: &Hash,
    ) -> Result<(Hash, Vec<Hash>), LogError> {
        let what = || format!("consistency proof {old}→{new}");
        let path = self
            .index
            .consistency_proof(old, new)
            .map_err(|e| self.unproved(what(), e.to_string()))?;
        let old_root = self
            .index
            .root_at(old)
            .map_err(|e| self.unproved(what(), e.to_string()))?;
        // A path that leads to the signed new root fixes every hash in it, and so the old root.
        merkle::verify_consistency(old, new, &path, &old_root, new_root)
            .map_err(|e| self.unproved(what(), e.to_string()))?;
        Ok((old_root, path))
    }

    fn unproved(&self, what: String, why: String) -> LogError {
        LogError::Unproved {
            dir: self.dir.clone(),
            what,
            why,
        }
    }
}
