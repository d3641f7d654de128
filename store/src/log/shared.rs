//! The log shared by many threads, with group commit: concurrent appends share one fsync. Apart
//! because it is a wrapper with its own locking, over the single-writer log.

use super::{Appended, CustodyLog, LogError};
use crate::fsutil::FsError;
use evidock_verify::event::NewEvent;
use evidock_verify::layout;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

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
        self.batch(evs, CustodyLog::write_unsynced)
    }

    /// Append several events with one fsync, each unless its key is already logged (then that
    /// event is returned, whatever it holds): a group of files of a resumed session.
    pub fn append_batch_once(&self, evs: Vec<NewEvent>) -> Result<Vec<Appended>, LogError> {
        self.batch(evs, CustodyLog::write_unsynced_once)
    }

    fn batch(
        &self,
        evs: Vec<NewEvent>,
        write: fn(&mut CustodyLog, NewEvent) -> Result<Appended, LogError>,
    ) -> Result<Vec<Appended>, LogError> {
        let mut out = Vec::with_capacity(evs.len());
        {
            let mut log = self.lock();
            for ev in evs {
                out.push(write(&mut log, ev)?);
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
        // Only now may the index count them.
        self.lock().commit_index(written);
        Ok(())
    }

    /// Run `f` with the log locked (checkpoints, reads).
    pub fn with<R>(&self, f: impl FnOnce(&mut CustodyLog) -> R) -> R {
        f(&mut self.lock())
    }
}
