//! Opening a log and catching up with it: the lock file, the key beside the log, reading the
//! lines other processes appended, and cutting a torn tail into `quarantine/`. Apart because it
//! is the one place that reads the events file back and decides what is damage.

use super::checkpoints::latest_checkpoint_size;
use super::{CustodyLog, LogError, OpenReport, key_hash};
use crate::clock::Clock;
use crate::fsutil;
use crate::key::NoteSigner;
use evidock_verify::checkpoint;
use evidock_verify::event::payload::KeyRotatedPayload;
use evidock_verify::event::{CustodyEvent, EventError};
use evidock_verify::layout;
use evidock_verify::merkle::MemoryTree;
use evidock_verify::note::VerifierKey;
use std::collections::HashMap;
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
    pub(super) fn locked<R>(
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
    pub(super) fn catch_up(&mut self) -> Result<Option<(u64, PathBuf)>, LogError> {
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
