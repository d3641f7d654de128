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

use crate::clock::Clock;
use crate::fsutil::{self, FsError};
use crate::key::NoteSigner;
use evidock_verify::checkpoint::{self, Checkpoint, SignedCheckpoint};
use evidock_verify::event::payload::KeyRotatedPayload;
use evidock_verify::event::{CustodyEvent, EventError, NewEvent};
use evidock_verify::id::{Sha256, StationId};
use evidock_verify::layout;
use evidock_verify::merkle::{self, Hash, MemoryTree};
use evidock_verify::note::VerifierKey;
use std::collections::HashMap;
use std::fs::{File, OpenOptions};
use std::io::{BufRead, BufReader, Read, Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

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

impl CustodyLog {
    /// Open (creating if needed) the log in `dir` for the signer's station.
    pub fn open(
        dir: &Path,
        signer: Arc<dyn NoteSigner>,
        clock: Arc<dyn Clock>,
    ) -> Result<(Self, OpenReport), LogError> {
        let station = checkpoint::station_of_origin(&signer.verifier().name).ok_or_else(|| {
            LogError::Event {
                dir: dir.to_path_buf(),
                source: EventError::Malformed(format!(
                    "signer name {:?} is not an evidock station",
                    signer.verifier().name
                )),
            }
        })?;
        fsutil::create_dir_all(dir)?;
        fsutil::create_dir_all(&dir.join(layout::CHECKPOINTS_DIR))?;
        fsutil::create_dir_all(&dir.join(layout::TIMESTAMPS_DIR))?;

        let lock_path = dir.join(".lock");
        let lock = OpenOptions::new()
            .create(true)
            .truncate(false)
            .write(true)
            .open(&lock_path)
            .map_err(fsutil::err("open", &lock_path))?;
        let events_path = dir.join(layout::EVENTS_FILE);
        let file = OpenOptions::new()
            .create(true)
            .truncate(false)
            .read(true)
            .append(true)
            .open(&events_path)
            .map_err(fsutil::err("open", &events_path))?;
        // Either may have just been created: their entries made durable before any event is.
        fsutil::sync_dir(dir)?;
        let mut log = CustodyLog {
            dir: dir.to_path_buf(),
            station: station.clone(),
            signer,
            genesis_key: None,
            rotated_to: None,
            unsealed_here: false,
            clock,
            file,
            len: 0,
            tree: MemoryTree::new(),
            keys: HashMap::new(),
            last_checkpoint: 0,
            poisoned: None,
            last_repair: None,
            about_time: Vec::new(),
            starts: Vec::new(),
            lock,
        };
        let repaired = log.locked(|log| {
            // The public key beside the log, so the directory can be checked on its own.
            // It is the log's first key; later keys are named by `key-rotated` events.
            let key_line = format!("{}\n", log.signer.verifier());
            let key_path = log.dir.join(layout::KEY_FILE);
            match std::fs::read_to_string(&key_path) {
                Ok(existing) => {
                    let genesis = VerifierKey::parse(existing.trim()).ok();
                    match genesis {
                        Some(k)
                            if checkpoint::station_of_origin(&k.name).as_ref()
                                == Some(&station) =>
                        {
                            log.genesis_key = Some(k);
                        }
                        other => {
                            return Err(LogError::WrongStation {
                                dir: log.dir.clone(),
                                found: other
                                    .and_then(|k| checkpoint::station_of_origin(&k.name))
                                    .unwrap_or_else(|| station.clone()),
                                expected: station.clone(),
                            });
                        }
                    }
                }
                Err(_) => {
                    fsutil::write_atomic(&key_path, key_line.as_bytes(), 0o644)?;
                    log.genesis_key = Some(log.signer.verifier().clone());
                }
            }
            log.check_signer()?;
            log.last_checkpoint = latest_checkpoint_size(&log.dir)?;
            Ok(log.last_repair.take())
        })?;
        if log.last_checkpoint > log.tree.size() {
            return Err(LogError::Corrupt {
                dir: dir.to_path_buf(),
                seq: log.tree.size(),
                reason: format!(
                    "checkpoint {} covers more events than the log holds",
                    log.last_checkpoint
                ),
            });
        }
        let report = OpenReport {
            events: log.tree.size(),
            repaired,
        };
        Ok((log, report))
    }

    /// Run `f` holding the log's exclusive lock (`.lock`), after reading whatever other
    /// processes of this station appended since we last looked. Several processes (the dock
    /// daemon, an admin's `evidock camera assign`) may write one log; each append happens whole
    /// under the lock, with its sequence number taken from the file as it is then.
    fn locked<R>(
        &mut self,
        f: impl FnOnce(&mut Self) -> Result<R, LogError>,
    ) -> Result<R, LogError> {
        let lock_path = self.dir.join(".lock");
        self.lock.lock().map_err(fsutil::err("lock", &lock_path))?;
        let result = self.catch_up().and_then(|repaired| {
            if repaired.is_some() {
                self.last_repair = repaired;
            }
            f(self)
        });
        let unlocked = self
            .lock
            .unlock()
            .map_err(fsutil::err("unlock", &lock_path));
        let r = result?;
        unlocked?;
        Ok(r)
    }

    /// Read complete events appended after `self.len`; cut off a torn tail (keeping its bytes
    /// in `quarantine/`) unless a signed checkpoint covers it. Call with the lock held.
    fn catch_up(&mut self) -> Result<Option<(u64, PathBuf)>, LogError> {
        let events_path = self.dir.join(layout::EVENTS_FILE);
        let file_len = self
            .file
            .metadata()
            .map_err(fsutil::err("stat", &events_path))?
            .len();
        if file_len == self.len {
            return Ok(None);
        }
        let mut good_len = self.len;
        let mut damage: Option<(u64, String)> = None;
        {
            let mut f = &self.file;
            f.seek(SeekFrom::Start(self.len))
                .map_err(fsutil::err("seek", &events_path))?;
            let mut reader = BufReader::with_capacity(1 << 16, f);
            let mut line = Vec::with_capacity(1024);
            loop {
                line.clear();
                let n = reader
                    .read_until(b'\n', &mut line)
                    .map_err(fsutil::err("read", &events_path))?;
                if n == 0 {
                    break;
                }
                let seq = self.tree.size();
                let problem = if line.last() != Some(&b'\n') {
                    Some("incomplete last line".to_string())
                } else {
                    match CustodyEvent::parse(&line[..line.len() - 1]) {
                        Ok(ev) if ev.seq != seq => Some(format!("says it is event #{}", ev.seq)),
                        Ok(ev) if ev.station != self.station => {
                            return Err(LogError::WrongStation {
                                dir: self.dir.clone(),
                                found: ev.station,
                                expected: self.station.clone(),
                            });
                        }
                        Ok(ev) => {
                            if ev.kind == evidock_verify::event::EventKind::KeyRotated
                                && let Some(new) = ev
                                    .payload::<KeyRotatedPayload>()
                                    .ok()
                                    .and_then(|p| VerifierKey::parse(&p.new_key).ok())
                            {
                                self.rotated_to = Some((seq, new));
                            }
                            self.keys.insert(key_hash(&ev.key), seq);
                            self.about_time
                                .push(ev.kind == evidock_verify::event::EventKind::Timestamped);
                            None
                        }
                        Err(e) => Some(e.to_string()),
                    }
                };
                if let Some(reason) = problem {
                    damage = Some((seq, reason));
                    break;
                }
                self.tree.push_entry(&line[..line.len() - 1]);
                self.starts.push(good_len);
                good_len += n as u64;
            }
        }
        self.len = good_len;
        let Some((seq, reason)) = damage else {
            return Ok(None);
        };
        // Damage under a signed checkpoint is not a torn append: look at the checkpoints as
        // they are now before deciding.
        self.last_checkpoint = self.last_checkpoint.max(latest_checkpoint_size(&self.dir)?);
        if seq < self.last_checkpoint {
            return Err(LogError::Corrupt {
                dir: self.dir.clone(),
                seq,
                reason,
            });
        }
        let kept = quarantine_tail(&self.dir, &mut self.file, &events_path, good_len)?;
        tracing::warn!(
            log = %self.dir.display(),
            event = seq,
            %reason,
            bytes = kept.0,
            kept_in = %kept.1.display(),
            "custody log had a torn tail from an interrupted append; cut off and kept"
        );
        Ok(Some(kept))
    }

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
    fn check_signer(&self) -> Result<(), LogError> {
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
            let seq = log.tree.size() - 1;
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
            if log.tree.size() != size || log.last_checkpoint >= size {
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
        let size = self.tree.size();
        if size == 0 || size == self.last_checkpoint {
            return Ok(None);
        }
        // Never sign over events that might not be on disk.
        self.sync()?;
        let cp = Checkpoint {
            origin: checkpoint::origin(&self.station),
            size,
            root: self.tree.root(),
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

fn latest_checkpoint_size(dir: &Path) -> Result<u64, LogError> {
    Ok(list_sizes(&dir.join(layout::CHECKPOINTS_DIR))?
        .last()
        .copied()
        .unwrap_or(0))
}

/// Move the bytes after `good_len` into `quarantine/` and cut the events file there.
fn quarantine_tail(
    dir: &Path,
    file: &mut File,
    events_path: &Path,
    good_len: u64,
) -> Result<(u64, PathBuf), LogError> {
    let mut tail = Vec::new();
    file.seek(SeekFrom::Start(good_len))
        .map_err(fsutil::err("seek", events_path))?;
    file.read_to_end(&mut tail)
        .map_err(fsutil::err("read", events_path))?;
    let qdir = dir.join("quarantine");
    fsutil::create_dir_all(&qdir)?;
    let name = format!(
        "torn-tail-{}-at-{good_len}.bin",
        chrono::Utc::now().format("%Y%m%dT%H%M%S%.3fZ")
    );
    let qpath = qdir.join(name);
    fsutil::write_once(&qpath, &tail, 0o440)?;
    file.set_len(good_len)
        .map_err(fsutil::err("truncate", events_path))?;
    file.sync_all().map_err(fsutil::err("fsync", events_path))?;
    Ok((tail.len() as u64, qpath))
}

/// A custody log shared by many threads, with group commit: concurrent appends share fsyncs.
#[derive(Clone)]
pub struct SharedLog {
    inner: Arc<SharedInner>,
}

struct SharedInner {
    log: Mutex<CustodyLog>,
    /// Serialises fsyncs; whoever holds it syncs everything written so far.
    sync_lock: Mutex<()>,
    /// Events `< durable` are on disk.
    durable: AtomicU64,
}

impl std::fmt::Debug for SharedLog {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SharedLog")
            .field("durable", &self.inner.durable.load(Ordering::Acquire))
            .finish()
    }
}

impl SharedLog {
    pub fn new(log: CustodyLog) -> Self {
        let durable = log.size();
        SharedLog {
            inner: Arc::new(SharedInner {
                log: Mutex::new(log),
                sync_lock: Mutex::new(()),
                durable: AtomicU64::new(durable),
            }),
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, CustodyLog> {
        // A panic while holding the lock leaves the log consistent on disk (appends are whole
        // lines); the in-memory state is at worst ahead of durability, which sync repairs.
        self.inner.log.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Append and wait until durable. Concurrent callers share one fsync.
    pub fn append(&self, ev: NewEvent) -> Result<Appended, LogError> {
        let a = self.lock().write_unsynced(ev)?;
        self.sync_through(a.event.seq + 1)?;
        crate::crash_point!("log.appended");
        Ok(a)
    }

    /// Append unless the key is already logged (then return that event, whatever it holds).
    pub fn append_once(&self, ev: NewEvent) -> Result<Appended, LogError> {
        let a = self.lock().write_unsynced_once(ev)?;
        self.sync_through(a.event.seq + 1)?;
        if a.new {
            crate::crash_point!("log.appended");
        }
        Ok(a)
    }

    /// Append several events with one fsync.
    pub fn append_batch(&self, evs: Vec<NewEvent>) -> Result<Vec<Appended>, LogError> {
        let mut out = Vec::with_capacity(evs.len());
        {
            let mut log = self.lock();
            for ev in evs {
                out.push(log.write_unsynced(ev)?);
            }
        }
        if let Some(max) = out.iter().map(|a| a.event.seq + 1).max() {
            self.sync_through(max)?;
        }
        if out.iter().any(|a| a.new) {
            crate::crash_point!("log.appended");
        }
        Ok(out)
    }

    fn sync_through(&self, size: u64) -> Result<(), LogError> {
        if self.inner.durable.load(Ordering::Acquire) >= size {
            return Ok(());
        }
        let _g = self
            .inner
            .sync_lock
            .lock()
            .unwrap_or_else(|p| p.into_inner());
        if self.inner.durable.load(Ordering::Acquire) >= size {
            return Ok(());
        }
        // Snapshot how far the file is written, then fsync without holding the log lock so
        // other threads keep writing into the next batch.
        let (written, file) = {
            let log = self.lock();
            let f = log
                .file
                .try_clone()
                .map_err(|e| FsError::new("dup", &log.dir.join(layout::EVENTS_FILE), e))?;
            (log.size(), f)
        };
        if let Err(e) = file.sync_data() {
            let mut log = self.lock();
            let err = FsError::new("fsync", &log.dir.join(layout::EVENTS_FILE), e);
            log.poisoned = Some(err.to_string());
            return Err(err.into());
        }
        self.inner.durable.fetch_max(written, Ordering::AcqRel);
        Ok(())
    }

    /// Run `f` with the log locked (checkpoints, reads).
    pub fn with<R>(&self, f: impl FnOnce(&mut CustodyLog) -> R) -> R {
        f(&mut self.lock())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::clock::ManualClock;
    use crate::key::StationKey;
    use evidock_verify::event::payload::CameraAssignedPayload;
    use evidock_verify::event::{Actor, Subject};
    use evidock_verify::id::{DeviceSerial, OfficerId};
    use evidock_verify::trust::Trust;

    fn setup(dir: &Path) -> (Arc<StationKey>, Arc<ManualClock>) {
        let st = StationId::new("dock-01").unwrap();
        let (key, _) = StationKey::load_or_create(&dir.join("station.key"), None, &st).unwrap();
        let clock = Arc::new(ManualClock::new(
            "2026-11-28T09:00:00Z".parse().unwrap(),
            "+08:00".parse().unwrap(),
        ));
        (Arc::new(key), clock)
    }

    fn ev(i: u32) -> NewEvent {
        let dev = DeviceSerial::new(format!("ZFY{i:04}")).unwrap();
        NewEvent::new(
            Actor {
                role: evidock_verify::event::Role::Admin,
                id: "admin".into(),
            },
            Subject::Device(dev.clone()),
            format!("assign/{i}"),
            &CameraAssignedPayload {
                device: dev,
                officer: OfficerId::new("350201").unwrap(),
                from: "2026-11-28T00:00:00.000Z".parse().unwrap(),
            },
        )
        .unwrap()
    }

    #[test]
    fn a_rotated_key_signs_on_and_a_process_holding_the_old_key_is_refused() {
        let tmp = tempfile::tempdir().unwrap();
        let (old, clock) = setup(tmp.path());
        let dir = tmp.path().join("log");
        // Two processes of one station: `a` rotates, `b` still holds the old key.
        let (mut a, _) = CustodyLog::open(&dir, old.clone(), clock.clone()).unwrap();
        let (mut b, _) = CustodyLog::open(&dir, old.clone(), clock.clone()).unwrap();
        a.append(ev(0)).unwrap();
        b.append(ev(1)).unwrap();
        let new = Arc::new(old.stage_next().unwrap());
        let actor = Actor {
            role: evidock_verify::event::Role::Admin,
            id: "admin".into(),
        };
        let handover = a.rotate_key(new.clone(), actor, "renewal").unwrap();
        // The old key sealed what it had; the hand-over covers the rotation, signed by both.
        assert_eq!(a.checkpoint_sizes().unwrap(), vec![2, 3]);
        assert_eq!(handover.checkpoint.size, 3);
        assert!(handover.verify(old.verifier()) && handover.verify(new.verifier()));
        assert_eq!(a.current_key(), Some(new.verifier()));
        a.append(ev(2)).unwrap();
        assert_eq!(a.checkpoint().unwrap().unwrap().checkpoint.size, 4);
        // The other process appends (events need no key) but may not sign any more.
        b.append(ev(3)).unwrap();
        assert!(matches!(
            b.checkpoint(),
            Err(LogError::KeyNotCurrent { .. })
        ));
        assert!(matches!(
            CustodyLog::open(&dir, old.clone(), clock.clone()),
            Err(LogError::KeyNotCurrent { .. })
        ));
        a.checkpoint().unwrap();
        let check = evidock_verify::logcheck::check_log_dir(&dir, &Trust::none());
        assert!(check.integrity_consistent(), "{:?}", check.report);
        assert!(!check.integrity_proven(), "no key pinned");
        assert_eq!(check.key.as_ref(), Some(new.verifier()));
        // Reopened with the new key, the log is the same log.
        let (reopened, _) = CustodyLog::open(&dir, new.clone(), clock).unwrap();
        assert_eq!(reopened.size(), 5);
    }

    #[test]
    fn append_checkpoint_reopen_verify() {
        let tmp = tempfile::tempdir().unwrap();
        let (key, clock) = setup(tmp.path());
        let dir = tmp.path().join("log");
        {
            let (mut log, rep) = CustodyLog::open(&dir, key.clone(), clock.clone()).unwrap();
            assert_eq!(rep.events, 0);
            for i in 0..5 {
                let a = log.append(ev(i)).unwrap();
                assert!(a.new);
                assert_eq!(a.event.seq, u64::from(i));
            }
            // Replay: nothing appended.
            let again = log.append(ev(2)).unwrap();
            assert!(!again.new);
            assert_eq!(again.event.seq, 2);
            assert_eq!(log.size(), 5);
            let cp = log.checkpoint().unwrap().unwrap();
            assert_eq!(cp.checkpoint.size, 5);
            assert!(log.checkpoint().unwrap().is_none());
            clock.advance(chrono::Duration::seconds(5));
            log.append_batch(vec![ev(10), ev(11), ev(3)]).unwrap();
            assert_eq!(log.size(), 7);
            log.checkpoint().unwrap().unwrap();
            // A second process writing the same log sees this one's events and continues them.
            let (mut other, _) = CustodyLog::open(&dir, key.clone(), clock.clone()).unwrap();
            assert_eq!(other.size(), 7);
            assert_eq!(other.append(ev(20)).unwrap().event.seq, 7);
            assert_eq!(log.append(ev(21)).unwrap().event.seq, 8);
            assert!(!log.append(ev(20)).unwrap().new);
            other.refresh().unwrap();
            assert_eq!(other.size(), 9);
            log.checkpoint().unwrap().unwrap();
        }
        let (log, rep) = CustodyLog::open(&dir, key.clone(), clock.clone()).unwrap();
        assert_eq!(rep.events, 9);
        assert!(rep.repaired.is_none());
        assert_eq!(log.seq_of_key("assign/11"), Some(6));
        assert_eq!(log.events().unwrap().len(), 9);
        let mut tail = Vec::new();
        log.for_each_event_from(6, |e| tail.push((e.seq, e.key)))
            .unwrap();
        assert_eq!(
            tail,
            vec![
                (6, "assign/11".to_string()),
                (7, "assign/20".into()),
                (8, "assign/21".into())
            ]
        );
        let mut none = 0;
        log.for_each_event_from(9, |_| none += 1).unwrap();
        assert_eq!(none, 0);
        drop(log);

        let check = evidock_verify::logcheck::check_log_dir(&dir, &Trust::none());
        assert!(!check.report.has_errors(), "{:#?}", check.report);
        assert!(check.integrity_consistent());
        assert!(!check.integrity_proven(), "no key pinned");
        assert!(!check.time_attested());
        assert!(check.report.has("timestamp.missing"));
        assert!(check.report.has("trust.not-anchored"));
    }

    #[test]
    fn conflicting_replay_is_refused() {
        let tmp = tempfile::tempdir().unwrap();
        let (key, clock) = setup(tmp.path());
        let (mut log, _) = CustodyLog::open(&tmp.path().join("log"), key, clock).unwrap();
        log.append(ev(1)).unwrap();
        let mut other = ev(2);
        other.key = "assign/1".into();
        assert!(matches!(
            log.append(other),
            Err(LogError::KeyConflict { seq: 0, .. })
        ));
    }

    /// A resumed step logs again what it logged before a crash, with what it reads now (a
    /// camera's battery level, a retention date computed from the clock): the event logged
    /// first stands. Another kind or subject under the key is still a conflict.
    #[test]
    fn a_replay_that_keeps_returns_the_logged_event_whatever_its_payload() {
        let tmp = tempfile::tempdir().unwrap();
        let (key, clock) = setup(tmp.path());
        let (log, _) = CustodyLog::open(&tmp.path().join("log"), key, clock).unwrap();
        let log = SharedLog::new(log);
        let first = log.append_once(ev(1)).unwrap();
        let mut again = ev(1);
        again.payload["officer"] = "350299".into();
        let replay = log
            .append_once(again)
            .expect("a replay keeps the logged event");
        assert!(!replay.new);
        assert_eq!(replay.event.seq, first.event.seq);
        assert_eq!(replay.event.payload, first.event.payload);
        let mut other = ev(2);
        other.key = "assign/1".into();
        assert!(matches!(
            log.append_once(other),
            Err(LogError::KeyConflict { seq: 0, .. })
        ));
        assert_eq!(log.with(|l| l.size()), 1);
    }

    #[test]
    fn torn_tail_is_cut_and_kept() {
        let tmp = tempfile::tempdir().unwrap();
        let (key, clock) = setup(tmp.path());
        let dir = tmp.path().join("log");
        {
            let (mut log, _) = CustodyLog::open(&dir, key.clone(), clock.clone()).unwrap();
            for i in 0..3 {
                log.append(ev(i)).unwrap();
            }
            log.checkpoint().unwrap();
            log.append(ev(3)).unwrap();
        }
        let events = dir.join(layout::EVENTS_FILE);
        let full = std::fs::read(&events).unwrap();
        // Tear the last event in half, then add zeros as a reordered page write would.
        let torn_at = full.len() - 40;
        let mut torn = full[..torn_at].to_vec();
        torn.extend_from_slice(&[0u8; 100]);
        std::fs::write(&events, &torn).unwrap();
        let (mut log, rep) = CustodyLog::open(&dir, key.clone(), clock.clone()).unwrap();
        let (bytes, kept) = rep.repaired.unwrap();
        assert_eq!(rep.events, 3);
        let good_len = full[..full.len() - 1]
            .iter()
            .rposition(|&b| b == b'\n')
            .unwrap()
            + 1;
        assert_eq!(bytes as usize, torn.len() - good_len);
        assert_eq!(std::fs::read(&kept).unwrap(), &torn[good_len..]);
        assert!(kept.exists());
        // The log carries on from the repaired end.
        assert_eq!(log.append(ev(3)).unwrap().event.seq, 3);
        drop(log);

        // Damage under a signed checkpoint is not "torn": opening refuses.
        let mut bytes = std::fs::read(&events).unwrap();
        bytes[10] ^= 0x20;
        std::fs::write(&events, &bytes).unwrap();
        assert!(matches!(
            CustodyLog::open(&dir, key, clock),
            Err(LogError::Corrupt { seq: 0, .. })
        ));
    }

    #[test]
    fn shared_log_groups_commits() {
        let tmp = tempfile::tempdir().unwrap();
        let (key, clock) = setup(tmp.path());
        let (log, _) = CustodyLog::open(&tmp.path().join("log"), key, clock).unwrap();
        let shared = SharedLog::new(log);
        std::thread::scope(|s| {
            for t in 0..4u32 {
                let shared = shared.clone();
                s.spawn(move || {
                    for i in 0..25 {
                        shared.append(ev(t * 100 + i)).unwrap();
                    }
                });
            }
        });
        assert_eq!(shared.with(|l| l.size()), 100);
        let seqs: std::collections::BTreeSet<u64> = shared
            .with(|l| l.events().unwrap())
            .into_iter()
            .map(|e| e.seq)
            .collect();
        assert_eq!(seqs.len(), 100);
    }
}
