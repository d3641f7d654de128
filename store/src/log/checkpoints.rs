//! Signing the log: checkpoints, the key in force, and key rotation with its hand-over
//! checkpoint. Apart from appending because it is about what the station vouches for, not what
//! it writes.

use super::{CustodyLog, LogError, OnExisting};
use crate::fsutil::{self, FsError};
use crate::key::NoteSigner;
use evidock_verify::checkpoint::{self, Checkpoint, SignedCheckpoint};
use evidock_verify::event::NewEvent;
use evidock_verify::event::payload::KeyRotatedPayload;
use evidock_verify::layout;
use evidock_verify::note::VerifierKey;
use std::path::Path;
use std::sync::Arc;

impl CustodyLog {
    /// Size of the latest signed checkpoint.
    pub fn last_checkpoint(&self) -> u64 {
        self.last_checkpoint
    }

    /// Sign a checkpoint of the whole log, unless the latest one already covers it.
    ///
    /// Returns the new checkpoint, or `None` when nothing changed since the last one.
    pub fn checkpoint(&mut self) -> Result<Option<SignedCheckpoint>, LogError> {
        self.locked(|log| {
            log.last_checkpoint = latest_checkpoint_size(&log.dir)?;
            log.checkpoint_locked()
        })
    }

    /// Sign a checkpoint if this process appended events none covers yet (a command seals what
    /// it logged before it exits).
    pub fn seal_own(&mut self) -> Result<Option<SignedCheckpoint>, LogError> {
        if !self.unsealed_here {
            return Ok(None);
        }
        self.checkpoint()
    }

    /// The key in force: the last rotation's new key, else the log's first key.
    pub fn current_key(&self) -> Option<&VerifierKey> {
        self.rotated_to
            .as_ref()
            .map(|(_, k)| k)
            .or(self.genesis_key.as_ref())
    }

    /// Refuse to sign with a key that is not in force (rotated away, maybe by another process).
    pub(super) fn check_signer(&self) -> Result<(), LogError> {
        match self.current_key() {
            Some(k) if k != self.signer.verifier() => Err(LogError::KeyNotCurrent {
                dir: self.dir.clone(),
                signer: self.signer.verifier().to_string(),
                current: k.to_string(),
            }),
            _ => Ok(()),
        }
    }

    /// Rotate the station key: log a `key-rotated` event naming the old and the new key, seal
    /// it with a hand-over checkpoint signed by both, and sign with `new` from then on. A
    /// verifier trusting either key follows the chain to the other.
    pub fn rotate_key(
        &mut self,
        new: Arc<dyn NoteSigner>,
        actor: evidock_verify::event::Actor,
        reason: &str,
    ) -> Result<SignedCheckpoint, LogError> {
        let old = self.signer.clone();
        let event = NewEvent::new(
            actor,
            evidock_verify::event::Subject::Station(self.station.clone()),
            format!("key-rotated/{}", new.verifier().fingerprint()),
            &KeyRotatedPayload {
                old_key: old.verifier().to_string(),
                new_key: new.verifier().to_string(),
                reason: reason.to_string(),
            },
        )
        .map_err(|source| LogError::Event {
            dir: self.dir.clone(),
            source,
        })?;
        self.locked(|log| {
            log.check_signer()?;
            // Whatever the old key has not sealed yet, it seals now: the hand-over covers
            // exactly the events up to and including the rotation.
            log.checkpoint_locked_by(&[])?;
            log.write_locked(event, OnExisting::Compare)?;
            let signed =
                log.checkpoint_locked_by(&[new.as_ref()])?
                    .ok_or_else(|| LogError::Poisoned {
                        dir: log.dir.clone(),
                        reason: "the key rotation was logged already".into(),
                    })?;
            let seq = log.index.size() - 1;
            log.rotated_to = Some((seq, new.verifier().clone()));
            log.signer = new;
            Ok(signed)
        })
    }

    /// After a crash inside [`CustodyLog::rotate_key`]: the `key-rotated` event is the last
    /// event but its hand-over checkpoint was not written. `old` (the retired key, still on
    /// disk) signs it with the current key. Returns whether one was written.
    pub fn seal_handover(&mut self, old: &dyn NoteSigner) -> Result<bool, LogError> {
        self.locked(|log| {
            log.check_signer()?;
            let Some((seq, _)) = &log.rotated_to else {
                return Ok(false);
            };
            let size = seq + 1;
            if log.index.size() != size || log.last_checkpoint >= size {
                return Ok(false);
            }
            // Signed by the current key and by `old`, as rotate_key would have.
            Ok(log.checkpoint_locked_by(&[old])?.is_some())
        })
    }

    fn checkpoint_locked(&mut self) -> Result<Option<SignedCheckpoint>, LogError> {
        self.check_signer()?;
        self.checkpoint_locked_by(&[])
    }

    /// A checkpoint signed by the log's signer and, at a key hand-over, by `also`.
    fn checkpoint_locked_by(
        &mut self,
        also: &[&dyn NoteSigner],
    ) -> Result<Option<SignedCheckpoint>, LogError> {
        let size = self.index.size();
        if size == 0 || size == self.last_checkpoint {
            return Ok(None);
        }
        // Never sign over events that might not be on disk.
        self.sync()?;
        let cp = Checkpoint {
            origin: checkpoint::origin(&self.station),
            size,
            root: self.index.root(),
            time: Some(
                chrono::DateTime::from_timestamp(self.clock.now().timestamp(), 0)
                    .unwrap_or_else(|| self.clock.now()),
            ),
            other: Vec::new(),
        };
        let mut note = self.signer.sign_note(&cp.to_text());
        for co in also {
            note.signatures
                .extend(co.sign_note(&cp.to_text()).signatures);
        }
        let signed = SignedCheckpoint {
            checkpoint: cp,
            note,
        };
        let path = self
            .dir
            .join(layout::CHECKPOINTS_DIR)
            .join(layout::checkpoint_file(size));
        fsutil::write_once(&path, &signed.to_bytes(), 0o440)?;
        crate::crash_point!("log.checkpoint");
        self.last_checkpoint = size;
        self.unsealed_here = false;
        Ok(Some(signed))
    }

    /// The signed checkpoint of exactly `size` events, if one was written.
    pub fn read_checkpoint(&self, size: u64) -> Result<Option<Vec<u8>>, LogError> {
        let path = self
            .dir
            .join(layout::CHECKPOINTS_DIR)
            .join(layout::checkpoint_file(size));
        match std::fs::read(&path) {
            Ok(b) => Ok(Some(b)),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
            Err(e) => Err(FsError::new("read", &path, e).into()),
        }
    }

    /// Sizes of all signed checkpoints, ascending.
    pub fn checkpoint_sizes(&self) -> Result<Vec<u64>, LogError> {
        list_sizes(&self.dir.join(layout::CHECKPOINTS_DIR))
    }
}

fn list_sizes(dir: &Path) -> Result<Vec<u64>, LogError> {
    let mut out = Vec::new();
    let entries = match std::fs::read_dir(dir) {
        Ok(e) => e,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(out),
        Err(e) => return Err(FsError::new("list", dir, e).into()),
    };
    for entry in entries {
        let entry = entry.map_err(fsutil::err("list", dir))?;
        if let Some(s) = layout::size_of_file(&entry.file_name().to_string_lossy()) {
            out.push(s);
        }
    }
    out.sort_unstable();
    Ok(out)
}

pub(super) fn latest_checkpoint_size(dir: &Path) -> Result<u64, LogError> {
    Ok(list_sizes(&dir.join(layout::CHECKPOINTS_DIR))?
        .last()
        .copied()
        .unwrap_or(0))
}
