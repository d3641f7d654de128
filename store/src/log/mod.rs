//! The append-only custody log of one signing identity (see `evidock_verify::layout`).
//!
//! - **Durable**: [`CustodyLog::append`] returns only after the event's line is fsynced. Several
//!   appends can share one fsync ([`CustodyLog::append_batch`], or [`SharedLog`] which groups
//!   concurrent callers).
//! - **Idempotent**: every event carries a key; appending a key already in the log appends
//!   nothing and returns the event already there (a replay after a crash).
//! - **Crash-safe**: a crash mid-append leaves a torn tail (a partial or garbled last line). On
//!   open it is cut off — the bytes are kept in `quarantine/` — unless a signed checkpoint covers
//!   it, in which case the damage is not a torn append and opening fails loudly instead.
//! - **Single writer**: an exclusive lock on `.lock` keeps a second process out.
//!
//! This file holds the log's state, appending and reading; opening and catching up (`open.rs`),
//! checkpoints and key rotation (`checkpoints.rs`) and the log shared by threads (`shared.rs`)
//! are beside it.

use crate::clock::Clock;
use crate::fsutil::{self, FsError};
use crate::key::NoteSigner;
use evidock_verify::event::{CustodyEvent, EventError, NewEvent};
use evidock_verify::id::{Sha256, StationId};
use evidock_verify::layout;
use evidock_verify::merkle::{self, Hash, MemoryTree};
use evidock_verify::note::VerifierKey;
use std::collections::HashMap;
use std::fs::File;
use std::io::{BufRead, BufReader, Read, Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};
use std::sync::Arc;

#[derive(Debug, thiserror::Error)]
pub enum LogError {
    #[error(transparent)]
    Fs(#[from] FsError),
    #[error(
        "custody log {dir}: event #{seq} is damaged ({reason}) and a signed checkpoint covers it; not repairing — restore the log from the evidence store or a backup"
    )]
    Corrupt {
        dir: PathBuf,
        seq: u64,
        reason: String,
    },
    #[error("custody log {dir} belongs to station {found}, not {expected}")]
    WrongStation {
        dir: PathBuf,
        found: StationId,
        expected: StationId,
    },
    #[error(
        "custody log {dir}: key {key:?} is already used by event #{seq} with different content"
    )]
    KeyConflict { dir: PathBuf, key: String, seq: u64 },
    #[error("custody log {dir}: {source}")]
    Event {
        dir: PathBuf,
        #[source]
        source: EventError,
    },
    #[error(
        "custody log {dir} stopped after a failed write or fsync; reopen it to recover from disk: {reason}"
    )]
    Poisoned { dir: PathBuf, reason: String },
    /// The signer is not the key in force: the key was rotated (by this station's `evidock
    /// station rotate-key`, perhaps in another process), or the wrong key file is in place.
    #[error(
        "custody log {dir}: the station key {signer} is not the key in force ({current}); it signs nothing more here — restart evidock after a key rotation, or put the current key back"
    )]
    KeyNotCurrent {
        dir: PathBuf,
        signer: String,
        current: String,
    },
}

impl LogError {
    /// Whether the disk was full.
    pub fn is_disk_full(&self) -> bool {
        matches!(self, LogError::Fs(e) if e.is_disk_full())
    }
}

/// What to do when an appended key is already in the log.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum OnExisting {
    /// Refuse unless kind, subject and payload are equal.
    Compare,
    /// Return the existing event.
    Keep,
}

/// The result of an append.
#[derive(Debug, Clone)]
pub struct Appended {
    pub event: CustodyEvent,
    pub leaf: Hash,
    /// `false` when the key was already in the log and nothing was appended.
    pub new: bool,
}

/// What opening a log found and did.
#[derive(Debug, Clone, Default)]
pub struct OpenReport {
    pub events: u64,
    /// Bytes of a torn tail that were cut off and where they were kept.
    pub repaired: Option<(u64, PathBuf)>,
}

/// One station's custody log, open for appending.
pub struct CustodyLog {
    dir: PathBuf,
    station: StationId,
    signer: Arc<dyn NoteSigner>,
    /// The log's first key (`station.pub`) and the last `key-rotated` event's new key: the key
    /// in force is the latter if there is one.
    genesis_key: Option<VerifierKey>,
    rotated_to: Option<(u64, VerifierKey)>,
    /// Whether this process appended an event no checkpoint covers yet.
    unsealed_here: bool,
    clock: Arc<dyn Clock>,
    file: File,
    /// Length of the file up to the last complete line written.
    len: u64,
    tree: MemoryTree,
    keys: HashMap<[u8; 16], u64>,
    last_checkpoint: u64,
    poisoned: Option<String>,
    /// A torn tail cut off since the last look (reported by `open`).
    last_repair: Option<(u64, PathBuf)>,
    /// Per event: whether it is a `timestamped` event (a record about time, not evidence).
    about_time: Vec<bool>,
    /// Per event: where its line starts in the events file (for reading from an event on).
    starts: Vec<u64>,
    lock: File,
}

impl std::fmt::Debug for CustodyLog {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("CustodyLog")
            .field("dir", &self.dir)
            .field("station", &self.station)
            .field("size", &self.tree.size())
            .finish()
    }
}

fn key_hash(key: &str) -> [u8; 16] {
    let d = Sha256::digest(key.as_bytes());
    let mut out = [0u8; 16];
    out.copy_from_slice(&d.0[..16]);
    out
}

mod checkpoints;
mod open;
mod shared;

pub use shared::SharedLog;

impl CustodyLog {
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    pub fn station(&self) -> &StationId {
        &self.station
    }

    pub fn signer(&self) -> &Arc<dyn NoteSigner> {
        &self.signer
    }

    /// Number of events.
    pub fn size(&self) -> u64 {
        self.tree.size()
    }

    pub fn root(&self) -> Hash {
        self.tree.root()
    }

    pub fn tree(&self) -> &MemoryTree {
        &self.tree
    }

    /// Whether every event in `from..to` is a `timestamped` event. A checkpoint that adds only
    /// those needs no token of its own: they record time, and stamping them would only log
    /// another one.
    pub fn only_time_records(&self, from: u64, to: u64) -> bool {
        let (from, to) = (from as usize, (to as usize).min(self.about_time.len()));
        from >= to || self.about_time[from..to].iter().all(|t| *t)
    }

    /// The seq of the event with this idempotency key, if any.
    pub fn seq_of_key(&self, key: &str) -> Option<u64> {
        self.keys.get(&key_hash(key)).copied()
    }

    /// Append one event and make it durable.
    pub fn append(&mut self, event: NewEvent) -> Result<Appended, LogError> {
        let mut out = self.append_batch(vec![event])?;
        out.pop().ok_or_else(|| LogError::Poisoned {
            dir: self.dir.clone(),
            reason: "empty batch result".into(),
        })
    }

    /// Append several events with one fsync. All are durable when this returns.
    pub fn append_batch(&mut self, events: Vec<NewEvent>) -> Result<Vec<Appended>, LogError> {
        let mut out = Vec::with_capacity(events.len());
        let mut wrote = false;
        for ev in events {
            let a = self.write_unsynced(ev)?;
            wrote |= a.new;
            out.push(a);
        }
        if wrote {
            self.sync()?;
            crate::crash_point!("log.appended");
        }
        Ok(out)
    }

    /// Write an event without fsync (callers must [`CustodyLog::sync`] before acknowledging).
    pub fn write_unsynced(&mut self, ev: NewEvent) -> Result<Appended, LogError> {
        self.locked(|log| log.write_locked(ev, OnExisting::Compare))
    }

    /// Like [`CustodyLog::write_unsynced`], but an event already logged under the same key is
    /// returned as it is, whatever its content (e.g. the `docked` event of a resumed session).
    pub fn write_unsynced_once(&mut self, ev: NewEvent) -> Result<Appended, LogError> {
        self.locked(|log| log.write_locked(ev, OnExisting::Keep))
    }

    /// Catch up with events other processes appended.
    pub fn refresh(&mut self) -> Result<(), LogError> {
        self.locked(|log| log.catch_up().map(|_| ()))
    }

    fn write_locked(
        &mut self,
        ev: NewEvent,
        on_existing: OnExisting,
    ) -> Result<Appended, LogError> {
        if let Some(reason) = &self.poisoned {
            return Err(LogError::Poisoned {
                dir: self.dir.clone(),
                reason: reason.clone(),
            });
        }
        if let Some(seq) = self.seq_of_key(&ev.key) {
            let existing = self.read_event(seq)?;
            // Another kind or subject under a key is a different act: refused in either mode.
            // A replay that keeps returns what was logged first, whatever it reads now.
            let same_act = existing.kind == ev.kind && existing.subject == ev.subject;
            let conflict = match on_existing {
                OnExisting::Compare => !same_act || existing.payload != ev.payload,
                OnExisting::Keep => !same_act,
            };
            if conflict {
                return Err(LogError::KeyConflict {
                    dir: self.dir.clone(),
                    key: ev.key,
                    seq,
                });
            }
            let leaf = self.tree.leaf(seq).unwrap_or_default();
            return Ok(Appended {
                event: existing,
                leaf,
                new: false,
            });
        }
        let seq = self.tree.size();
        let (time, offset) = self.clock.stamp();
        let key = ev.key.clone();
        let event = ev.into_event(self.station.clone(), seq, time, offset);
        let bytes = event.to_canonical().map_err(|source| LogError::Event {
            dir: self.dir.clone(),
            source,
        })?;
        let mut line = Vec::with_capacity(bytes.len() + 1);
        line.extend_from_slice(&bytes);
        line.push(b'\n');
        let path = self.dir.join(layout::EVENTS_FILE);
        if let Err(e) = self.file.write_all(&line) {
            // Take back a partial line so the file stays a sequence of whole events.
            let err = FsError::new("append to", &path, e);
            if self.file.set_len(self.len).is_err() {
                self.poisoned = Some(err.to_string());
            }
            return Err(err.into());
        }
        self.starts.push(self.len);
        self.len += line.len() as u64;
        let leaf = merkle::leaf_hash(&bytes);
        self.tree.push(leaf);
        self.keys.insert(key_hash(&key), seq);
        self.about_time
            .push(event.kind == evidock_verify::event::EventKind::Timestamped);
        self.unsealed_here = true;
        Ok(Appended {
            event,
            leaf,
            new: true,
        })
    }

    /// fsync the events file. After a failed fsync the log refuses further work: the kernel may
    /// have dropped the dirty pages, so only a reopen (which re-reads the disk) tells the truth.
    pub fn sync(&mut self) -> Result<(), LogError> {
        let path = self.dir.join(layout::EVENTS_FILE);
        if let Err(e) = self.file.sync_data() {
            let err = FsError::new("fsync", &path, e);
            self.poisoned = Some(err.to_string());
            return Err(err.into());
        }
        Ok(())
    }

    /// Read event `seq` back from disk.
    pub fn read_event(&self, seq: u64) -> Result<CustodyEvent, LogError> {
        let path = self.dir.join(layout::EVENTS_FILE);
        let f = File::open(&path).map_err(fsutil::err("open", &path))?;
        let reader = BufReader::new(f);
        for (i, line) in reader.split(b'\n').enumerate() {
            let line = line.map_err(fsutil::err("read", &path))?;
            if i as u64 == seq {
                return CustodyEvent::parse(&line).map_err(|source| LogError::Event {
                    dir: self.dir.clone(),
                    source,
                });
            }
        }
        Err(LogError::Corrupt {
            dir: self.dir.clone(),
            seq,
            reason: "not found on disk".into(),
        })
    }

    /// Every event, in order, read from disk.
    pub fn events(&self) -> Result<Vec<CustodyEvent>, LogError> {
        let mut out = Vec::new();
        self.for_each_event(|ev| out.push(ev))?;
        Ok(out)
    }

    /// Stream every event from disk.
    pub fn for_each_event(&self, f: impl FnMut(CustodyEvent)) -> Result<(), LogError> {
        self.for_each_event_from(0, f)
    }

    /// Stream the events from `seq` on, from disk (nothing when `seq` is the log's size).
    pub fn for_each_event_from(
        &self,
        seq: u64,
        mut f: impl FnMut(CustodyEvent),
    ) -> Result<(), LogError> {
        let Some(&start) = self.starts.get(seq as usize) else {
            return Ok(());
        };
        let path = self.dir.join(layout::EVENTS_FILE);
        let mut file = File::open(&path).map_err(fsutil::err("open", &path))?;
        file.seek(SeekFrom::Start(start))
            .map_err(fsutil::err("seek", &path))?;
        let reader = BufReader::with_capacity(1 << 16, file.take(self.len - start));
        for line in reader.split(b'\n') {
            let line = line.map_err(fsutil::err("read", &path))?;
            f(
                CustodyEvent::parse(&line).map_err(|source| LogError::Event {
                    dir: self.dir.clone(),
                    source,
                })?,
            );
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests;
