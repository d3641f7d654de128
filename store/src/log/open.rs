//! Opening a log and catching up with it: the lock file, the key beside the log, bringing the
//! index up to the events file and checking it against the last signed checkpoint, reading the
//! lines other processes appended, and cutting a torn tail into `quarantine/`. Apart because it
//! is the one place that reads the events file back and decides what is damage.

use super::checkpoints::latest_checkpoint_size;
use super::index::{Entry, IndexError, LogIndex};
use super::{CustodyLog, LogError, OpenReport, Reindexed, key_hash, rotation_of};
use crate::clock::Clock;
use crate::fsutil;
use crate::key::NoteSigner;
use evidock_verify::checkpoint;
use evidock_verify::event::{CustodyEvent, EventError, EventKind};
use evidock_verify::layout;
use evidock_verify::merkle;
use evidock_verify::note::VerifierKey;
use std::fs::{File, OpenOptions};
use std::io::{BufRead, BufReader, Read, Seek, SeekFrom};
use std::path::{Path, PathBuf};
use std::sync::Arc;

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
        // The index is opened (and so created) first: every entry the log keeps is made durable
        // before any event is. Under the lock, held until it is checked: an unreadable index is
        // replaced, and no other process may replace it in between. (The lock goes with the
        // file: an error before the checks closes it.)
        lock.lock().map_err(fsutil::err("lock", &lock_path))?;
        let index = LogIndex::open(dir)?;
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
            index,
            last_checkpoint: 0,
            poisoned: None,
            last_repair: None,
            lock,
        };
        let (repaired, reindexed) = log.locked_without_catch_up(|log| {
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
            let afresh = log.index.take_started_afresh();
            let reindexed = log
                .bring_index_up()?
                .or(afresh.map(|(reason, kept)| Reindexed {
                    reason,
                    kept: Some(kept),
                }));
            log.check_signer()?;
            Ok((log.last_repair.take(), reindexed))
        })?;
        let report = OpenReport {
            events: log.index.size(),
            repaired,
            reindexed,
        };
        Ok((log, report))
    }

    /// Bring the index up to the events file and check the two against the last signed
    /// checkpoint: its root from the index's nodes, and every event since it re-hashed from the
    /// file. An index that is ahead of the file or does not match it is rebuilt from the file
    /// (returning why); a file that does not match its own signed checkpoint is damage.
    pub(super) fn bring_index_up(&mut self) -> Result<Option<Reindexed>, LogError> {
        let file_len = self.file_len()?;
        let mut reindexed = self.index.suspect().map(str::to_string);
        if reindexed.is_none() && self.index.len() > file_len {
            reindexed = Some(format!(
                "the index covers {} bytes of events, the file holds {file_len}",
                self.index.len()
            ));
        }
        if reindexed.is_none() {
            let checked = (|| {
                // The index's last event must be the file's line where the index says, before
                // the file is read on from there: reading from the middle of a line would look
                // like a torn tail.
                if let Some(seq) = self.index.size().checked_sub(1) {
                    self.rehash_from(seq, seq + 1)?;
                }
                // Damage of the file under a checkpoint, found reading on, is not the index's.
                self.catch_up_and_note_repair().map_err(|e| match e {
                    LogError::Corrupt { .. } => Outcome::Fails(e),
                    e => e.into(),
                })?;
                if let Some(what) = self.index.disagreed() {
                    return Err(Outcome::Rebuild(what.to_string()));
                }
                self.check_against_checkpoint()?;
                Ok(())
            })();
            match checked {
                Ok(()) => {
                    if let Err(e) = self.index.clear_failed_rebuild() {
                        tracing::warn!(log = %self.dir.display(), error = %e, "custody log index: an old failed rebuild could not be forgotten");
                    }
                    return Ok(None);
                }
                Err(Outcome::Rebuild(reason)) => reindexed = Some(reason),
                Err(Outcome::Fails(e)) => return Err(e),
            }
        }
        self.rebuild_index(reindexed.unwrap_or_default()).map(Some)
    }

    pub(super) fn catch_up_and_note_repair(&mut self) -> Result<(), LogError> {
        if let Some(r) = self.catch_up()? {
            self.last_repair = Some(r);
        }
        self.rotated_to = self.index.rotation_before(self.index.size())?;
        Ok(())
    }

    /// The index and the file against the latest signed checkpoint: its signature by the key in
    /// force at its size, its root from the index, the events since re-hashed from the file and
    /// the subtree hashes since recomputed from them.
    pub(super) fn check_against_checkpoint(&mut self) -> Result<(), LogError> {
        self.last_checkpoint = latest_checkpoint_size(&self.dir)?;
        let size = self.last_checkpoint;
        let corrupt = |seq: u64, reason: String| LogError::Corrupt {
            dir: self.dir.clone(),
            seq,
            reason,
        };
        if size > self.index.size() {
            return Err(corrupt(
                self.index.size(),
                format!("checkpoint {size} covers more events than the log holds"),
            ));
        }
        if size == 0 {
            // Nothing signed yet: all of it is the tail.
            self.rehash_from(0, self.index.size())?;
            return self.index.check_nodes_from(0);
        }
        let signed = self.signed_checkpoint(size)?;
        if self.index.root_at(size)? != signed.checkpoint.root {
            return Err(corrupt(
                size - 1,
                format!("the events do not lead to the root signed in checkpoint {size}"),
            ));
        }
        // The nodes since are checked too: the next checkpoint signs what they make.
        self.rehash_from(size - 1, self.index.size())?;
        self.index.check_nodes_from(size)
    }

    /// The events file's length now.
    pub(super) fn file_len(&self) -> Result<u64, LogError> {
        let path = self.dir.join(layout::EVENTS_FILE);
        Ok(self
            .file
            .metadata()
            .map_err(fsutil::err("stat", &path))?
            .len())
    }

    /// Re-read the events `seq..to` and compare each with the row the index holds: its leaf,
    /// where it starts and ends, its key, whether it records time, and its key rotation. A leaf
    /// that differs is a file changed under the index; any other column, an index that is wrong.
    pub(super) fn rehash_from(&self, seq: u64, to: u64) -> Result<(), LogError> {
        let mut rotations: std::collections::VecDeque<_> = self.index.rotations_in(seq, to)?.into();
        let mut next_start = None;
        let damaged = |what: String| LogError::Index(self.index.damaged(what));
        self.for_each_line(seq, to, |row, line| {
            let at = row.seq;
            let whole = line.strip_suffix(b"\n");
            let Some(whole) = whole.filter(|l| merkle::leaf_hash(l) == row.leaf) else {
                return Err(LogError::Corrupt {
                    dir: self.dir.clone(),
                    seq: at,
                    reason: format!("event #{at} in events.jsonl is not the event indexed"),
                });
            };
            if next_start.is_some_and(|s| s != row.start) || row.len != line.len() as u64 {
                return Err(damaged(format!("event #{at}'s place in events.jsonl")));
            }
            next_start = Some(row.start + row.len);
            let ev =
                CustodyEvent::parse(whole).map_err(|e| damaged(format!("event #{at}: {e}")))?;
            if ev.seq != at || ev.station != self.station {
                return Err(damaged(format!(
                    "event #{at} points at the line of event #{} of {}",
                    ev.seq, ev.station
                )));
            }
            if key_hash(&ev.key) != row.key
                || (ev.kind == EventKind::Timestamped) != row.time_record
            {
                return Err(damaged(format!("event #{at}'s key or kind")));
            }
            let indexed = rotations.front().filter(|(s, _)| *s == at).map(|(_, k)| k);
            if rotation_of(&ev).as_ref() != indexed {
                return Err(damaged(format!("the key rotation at event #{at}")));
            }
            if indexed.is_some() {
                rotations.pop_front();
            }
            Ok(true)
        })?;
        match rotations.front() {
            Some((s, _)) => Err(damaged(format!(
                "a key rotation at event #{s}, which rotates no key"
            ))),
            None => Ok(()),
        }
    }

    /// Run `f` holding the log's exclusive lock (`.lock`), after reading whatever other
    /// processes of this station appended since we last looked. Several processes (the dock
    /// daemon, an admin's `evidock camera assign`) may write one log; each append happens whole
    /// under the lock, with its sequence number taken from the file as it is then.
    pub(super) fn locked<R>(
        &mut self,
        f: impl FnOnce(&mut Self) -> Result<R, LogError>,
    ) -> Result<R, LogError> {
        self.locked_without_catch_up(|log| {
            log.follow_index()?;
            match log.catch_up() {
                Ok(Some(r)) => log.last_repair = Some(r),
                Ok(None) => {}
                // The index does not end where the file's events do: rebuilt, then read on.
                Err(LogError::Index(e)) if e.rebuilds() => {
                    log.rebuild_index(e.to_string())?;
                }
                Err(e) => return Err(e),
            }
            f(log)
        })
    }

    fn locked_without_catch_up<R>(
        &mut self,
        f: impl FnOnce(&mut Self) -> Result<R, LogError>,
    ) -> Result<R, LogError> {
        let lock_path = self.dir.join(".lock");
        self.lock.lock().map_err(fsutil::err("lock", &lock_path))?;
        let result = f(self);
        let unlocked = self
            .lock
            .unlock()
            .map_err(fsutil::err("unlock", &lock_path));
        let r = result?;
        unlocked?;
        Ok(r)
    }

    /// Read complete events appended after the index's end, indexing them; cut off a torn tail
    /// (keeping its bytes in `quarantine/`) unless a signed checkpoint covers it. Call with the
    /// lock held.
    pub(super) fn catch_up(&mut self) -> Result<Option<(u64, PathBuf)>, LogError> {
        /// Events committed to the index at a time while catching up: bounds the memory of a
        /// rebuild of a long log.
        const BATCH: u64 = 8192;
        let events_path = self.dir.join(layout::EVENTS_FILE);
        let file_len = self.file_len()?;
        let from = self.index.len();
        if file_len == from {
            return Ok(None);
        }
        if file_len < from {
            return Err(LogError::Corrupt {
                dir: self.dir.clone(),
                seq: self.index.size(),
                reason: format!(
                    "events.jsonl shrank to {file_len} bytes under the log, which had read {from}"
                ),
            });
        }
        // What is in the file now is made durable before the index counts it.
        self.file
            .sync_data()
            .map_err(fsutil::err("fsync", &events_path))?;
        let mut good_len = from;
        let mut index_ok = true;
        let mut damage: Option<(u64, String)> = None;
        {
            // A handle of its own, so the index can commit batches while it is read.
            let mut f = self
                .file
                .try_clone()
                .map_err(fsutil::err("dup", &events_path))?;
            f.seek(SeekFrom::Start(from))
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
                let seq = self.index.size();
                let problem = if line.last() != Some(&b'\n') {
                    Some("incomplete last line".to_string())
                } else {
                    match CustodyEvent::parse(&line[..line.len() - 1]) {
                        // A whole line that is another event is no torn append: the index
                        // does not end where the file's events do. Never cut it.
                        Ok(ev) if ev.seq != seq && from == 0 => {
                            // Read from the file's start: the file itself is out of order.
                            return Err(LogError::Corrupt {
                                dir: self.dir.clone(),
                                seq,
                                reason: format!(
                                    "the line of event #{seq} says it is event #{}",
                                    ev.seq
                                ),
                            });
                        }
                        Ok(ev) if ev.seq != seq => {
                            return Err(self
                                .index
                                .damaged(format!(
                                    "it ends where event #{seq} should start, but the line there is event #{}",
                                    ev.seq
                                ))
                                .into());
                        }
                        Ok(ev) if ev.station != self.station => {
                            return Err(LogError::WrongStation {
                                dir: self.dir.clone(),
                                found: ev.station,
                                expected: self.station.clone(),
                            });
                        }
                        Ok(ev) => {
                            let rotation = rotation_of(&ev);
                            if let Some(new) = &rotation {
                                self.rotated_to = Some((seq, new.clone()));
                            }
                            self.index.push(Entry {
                                start: good_len,
                                len: n as u64,
                                leaf: merkle::leaf_hash(&line[..line.len() - 1]),
                                key: key_hash(&ev.key),
                                time_record: ev.kind == EventKind::Timestamped,
                                rotation,
                            });
                            None
                        }
                        Err(e) => Some(e.to_string()),
                    }
                };
                if let Some(reason) = problem {
                    damage = Some((seq, reason));
                    break;
                }
                good_len += n as u64;
                let waiting = self.index.size() - self.index.committed();
                if index_ok && waiting >= BATCH {
                    index_ok = self.commit_index(self.index.size());
                }
                if waiting >= super::index::PENDING_CAP {
                    // The index cannot be written: stop reading rather than hold the file in
                    // memory. The events are safe; the next open catches up.
                    self.index.commit_through(self.index.size())?;
                }
            }
        }
        self.commit_index(self.index.size());
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
}

/// What a check of the index on open leads to, when not to an index as it is.
enum Outcome {
    /// The index is wrong: rebuild it, for this reason.
    Rebuild(String),
    /// The file or the disk is: stop.
    Fails(LogError),
}

impl From<LogError> for Outcome {
    fn from(e: LogError) -> Self {
        match e {
            LogError::Corrupt { reason, .. } => Outcome::Rebuild(reason),
            LogError::Index(e) if e.rebuilds() => Outcome::Rebuild(e.to_string()),
            // Another process rebuilt the index while this one read it: read it again.
            LogError::Index(e @ IndexError::Stale { .. }) => Outcome::Rebuild(e.to_string()),
            e => Outcome::Fails(e),
        }
    }
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
