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
//! - **One writer at a time**: an exclusive lock on `.lock` serialises the processes of a station.
//! - **Constant-time**: what appending and proving need (offsets, keys, subtree hashes) is kept in
//!   an index beside the events (`index.rs`), so opening a log reads only what was appended since
//!   the last signed checkpoint, not its whole history.
//!
//! This file holds the log's state, appending and reading; opening and catching up (`open.rs`),
//! checkpoints and key rotation (`checkpoints.rs`), the index (`index.rs`) and the log shared by
//! threads (`shared.rs`) are beside it.

use crate::clock::Clock;
use crate::fsutil::{self, FsError};
use crate::key::NoteSigner;
use evidock_verify::event::payload::KeyRotatedPayload;
use evidock_verify::event::{CustodyEvent, EventError, EventKind, NewEvent};
use evidock_verify::id::{Sha256, StationId};
use evidock_verify::layout;
use evidock_verify::merkle::{self, Hash};
use evidock_verify::note::VerifierKey;
use std::fs::File;
use std::io::{BufRead, BufReader, Read, Seek, SeekFrom, Write};
use std::os::unix::fs::FileExt as _;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use index::Entry;

#[derive(Debug, thiserror::Error)]
pub enum LogError {
    #[error(transparent)]
    Fs(#[from] FsError),
    #[error(transparent)]
    Index(#[from] IndexError),
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
    /// A proof made from the index does not hold against the signed root it is for: the index
    /// is wrong where open does not look. Nothing is handed out.
    #[error(
        "custody log {dir}: the {what} from the log's index does not hold ({why}); run `evidock log verify`, which checks the index in full and rebuilds it, then try again"
    )]
    Unproved {
        dir: PathBuf,
        what: String,
        why: String,
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
    /// Whether the index was rebuilt from the events file because it was ahead of the file or
    /// did not match it.
    pub reindexed: Option<Reindexed>,
}

/// An index rebuilt on open: why, and where the index it replaced was kept.
#[derive(Debug, Clone)]
pub struct Reindexed {
    pub reason: String,
    pub kept: Option<PathBuf>,
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
    /// Every event's offset, leaf and key, and the tree's nodes: the file up to `index.len()`.
    index: LogIndex,
    last_checkpoint: u64,
    poisoned: Option<String>,
    /// A torn tail cut off since the last look (reported by `open`).
    last_repair: Option<(u64, PathBuf)>,
    lock: File,
}

impl std::fmt::Debug for CustodyLog {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("CustodyLog")
            .field("dir", &self.dir)
            .field("station", &self.station)
            .field("size", &self.index.size())
            .finish()
    }
}

fn key_hash(key: &str) -> [u8; 16] {
    let d = Sha256::digest(key.as_bytes());
    let mut out = [0u8; 16];
    out.copy_from_slice(&d.0[..16]);
    out
}

/// The new key a `key-rotated` event names.
fn rotation_of(ev: &CustodyEvent) -> Option<VerifierKey> {
    if ev.kind != EventKind::KeyRotated {
        return None;
    }
    ev.payload::<KeyRotatedPayload>()
        .ok()
        .and_then(|p| VerifierKey::parse(&p.new_key).ok())
}

mod checkpoints;
mod index;
mod open;
mod proofs;
mod reindex;
mod shared;

pub use index::{INDEX_FILE, IndexError, LogIndex};
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
        self.index.size()
    }

    pub fn root(&self) -> Hash {
        self.index.root()
    }

    /// The index: leaves, roots and proofs of the tree.
    pub fn index(&self) -> &LogIndex {
        &self.index
    }

    /// Whether every event in `from..to` is a `timestamped` event. A checkpoint that adds only
    /// those needs no token of its own: they record time, and stamping them would only log
    /// another one.
    pub fn only_time_records(&self, from: u64, to: u64) -> Result<bool, LogError> {
        Ok(!self.index.any_evidence(from, to)?)
    }

    /// The seq of the first event with this idempotency key, if any.
    pub fn seq_of_key(&self, key: &str) -> Result<Option<u64>, LogError> {
        Ok(self.index.seq_of_key(&key_hash(key))?)
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
        // The event the index finds under the key must be one with that key: a row pointing
        // elsewhere is a damaged index, rebuilt from the file before anything is decided.
        let mut found = None;
        for attempt in 0..2 {
            let Some(seq) = self.seq_of_key(&ev.key)? else {
                break;
            };
            let problem = match self.read_event(seq) {
                Ok(existing) if existing.key == ev.key => {
                    found = Some((seq, existing));
                    break;
                }
                Ok(_) => format!("event #{seq} is indexed under a key it does not have"),
                Err(LogError::Index(e)) if e.rebuilds() => e.to_string(),
                Err(e) => return Err(e),
            };
            if attempt == 1 {
                return Err(self.index.damaged(problem).into());
            }
            self.rebuild_index(problem)?;
        }
        if let Some((seq, existing)) = found {
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
            let leaf = self.index.leaf(seq)?.unwrap_or_default();
            return Ok(Appended {
                event: existing,
                leaf,
                new: false,
            });
        }
        let seq = self.index.size();
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
            if self.file.set_len(self.index.len()).is_err() {
                self.poisoned = Some(err.to_string());
            }
            return Err(err.into());
        }
        let leaf = merkle::leaf_hash(&bytes);
        self.index.push(Entry {
            start: self.index.len(),
            len: line.len() as u64,
            leaf,
            key: key_hash(&key),
            time_record: event.kind == EventKind::Timestamped,
            rotation: rotation_of(&event),
        });
        self.unsealed_here = true;
        Ok(Appended {
            event,
            leaf,
            new: true,
        })
    }

    /// fsync the events file, then commit what it made durable to the index. After a failed
    /// fsync the log refuses further work: the kernel may have dropped the dirty pages, so only
    /// a reopen (which re-reads the disk) tells the truth.
    pub fn sync(&mut self) -> Result<(), LogError> {
        let path = self.dir.join(layout::EVENTS_FILE);
        if let Err(e) = self.file.sync_data() {
            let err = FsError::new("fsync", &path, e);
            self.poisoned = Some(err.to_string());
            return Err(err.into());
        }
        self.commit_index(self.index.size());
        Ok(())
    }

    /// Commit the index through `size` events, whose lines are durable. A failure only leaves
    /// the index behind the file (the events are safe, and kept pending in memory until a later
    /// commit succeeds or the next open catches up), so it is reported, not returned.
    ///
    /// Past [`index::PENDING_CAP`] uncommitted events the log refuses more work instead: memory
    /// must not grow with what the index could not take.
    fn commit_index(&mut self, size: u64) -> bool {
        match self.index.commit_through(size) {
            Ok(()) => true,
            Err(e) => {
                tracing::warn!(log = %self.dir.display(), error = %e, "custody log index not updated; the events are durable and the index catches up later");
                if self.index.size() - self.index.committed() >= index::PENDING_CAP {
                    self.poisoned.get_or_insert_with(|| {
                        format!("{} events wait for an index that cannot be written ({e}); reopen the log", self.index.size() - self.index.committed())
                    });
                }
                false
            }
        }
    }

    /// Read event `seq` back from disk, checking it is the event the index holds.
    pub fn read_event(&self, seq: u64) -> Result<CustodyEvent, LogError> {
        let path = self.dir.join(layout::EVENTS_FILE);
        let (start, len, leaf) = self.index.entry(seq)?.ok_or_else(|| LogError::Corrupt {
            dir: self.dir.clone(),
            seq,
            reason: "not in the log".into(),
        })?;
        let mut line = vec![0u8; len as usize];
        self.file
            .read_exact_at(&mut line, start)
            .map_err(fsutil::err("read", &path))?;
        self.parse_checked(seq, &line, &leaf)
    }

    /// Parse a line read from the events file, refusing one that is not the event the index
    /// recorded when it was written (the file was changed under the log).
    fn parse_checked(&self, seq: u64, line: &[u8], leaf: &Hash) -> Result<CustodyEvent, LogError> {
        let body = line.strip_suffix(b"\n").unwrap_or(line);
        if merkle::leaf_hash(body) != *leaf {
            return Err(LogError::Corrupt {
                dir: self.dir.clone(),
                seq,
                reason: "events.jsonl no longer holds the event indexed when it was written".into(),
            });
        }
        let ev = CustodyEvent::parse(body).map_err(|source| LogError::Event {
            dir: self.dir.clone(),
            source,
        })?;
        // The line the index points at must be this event of this station: an index whose rows
        // were copied from other rows would otherwise hand out another event under this seq.
        if ev.seq != seq || ev.station != self.station {
            return Err(self
                .index
                .damaged(format!(
                    "event #{seq} points at the line of event #{} of {}",
                    ev.seq, ev.station
                ))
                .into());
        }
        Ok(ev)
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

    /// Stream the events from `seq` on, from disk (nothing when `seq` is the log's size), each
    /// checked against the index.
    pub fn for_each_event_from(
        &self,
        seq: u64,
        mut f: impl FnMut(CustodyEvent),
    ) -> Result<(), LogError> {
        self.scan_from(seq, |ev| {
            f(ev);
            true
        })
    }

    /// Like [`CustodyLog::for_each_event_from`], until `f` returns `false`.
    pub fn scan_from(
        &self,
        seq: u64,
        mut f: impl FnMut(CustodyEvent) -> bool,
    ) -> Result<(), LogError> {
        self.for_each_line(seq, self.index.size(), |row, line| {
            Ok(f(self.parse_checked(row.seq, line, &row.leaf)?))
        })
    }

    /// The lines of events `seq..to` (newline included, if the file has it), each with the
    /// row the index holds for it, read in one pass from where the index says `seq` starts;
    /// until `f` returns `false`.
    fn for_each_line(
        &self,
        seq: u64,
        to: u64,
        mut f: impl FnMut(&index::Row, &[u8]) -> Result<bool, LogError>,
    ) -> Result<(), LogError> {
        let Some((start, _, _)) = self.index.entry(seq)? else {
            return Ok(());
        };
        let path = self.dir.join(layout::EVENTS_FILE);
        let mut file = File::open(&path).map_err(fsutil::err("open", &path))?;
        file.seek(SeekFrom::Start(start))
            .map_err(fsutil::err("seek", &path))?;
        let mut reader = BufReader::with_capacity(1 << 16, file.take(self.index.len() - start));
        let mut line = Vec::with_capacity(1024);
        self.index.for_each_row(seq, to, |row| {
            line.clear();
            reader
                .read_until(b'\n', &mut line)
                .map_err(fsutil::err("read", &path))?;
            f(row, &line)
        })
    }
}

#[cfg(test)]
mod index_rebuild_tests;
#[cfg(test)]
mod index_tests;
#[cfg(test)]
mod tests;
