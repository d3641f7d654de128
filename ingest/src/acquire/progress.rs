//! Live progress of camera sessions, for the progress bar and the status page.

use serde::Serialize;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Instant;

/// What a dock slot shows.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, serde::Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum SlotState {
    Identifying,
    Copying,
    /// Every file is acquired: the officer may take the camera.
    SafeToUndock,
    Interrupted,
    Error,
    Refused,
}

/// Counters of one camera session, updated by the acquisition thread and read by anyone.
#[derive(Debug)]
pub struct SessionProgress {
    pub started: Instant,
    pub files_total: AtomicU64,
    pub bytes_total: AtomicU64,
    pub files_done: AtomicU64,
    pub bytes_done: AtomicU64,
    pub failed: AtomicU64,
    pub skipped: AtomicU64,
    inner: Mutex<Inner>,
}

#[derive(Debug, Clone, Default)]
struct Inner {
    state: Option<SlotState>,
    session: Option<String>,
    serial: Option<String>,
    officer: Option<String>,
    current: Option<String>,
    message: Option<String>,
}

/// A copy of the progress at one moment.
#[derive(Debug, Clone, Serialize, serde::Deserialize)]
pub struct Snapshot {
    pub state: SlotState,
    pub session: Option<String>,
    pub serial: Option<String>,
    pub officer: Option<String>,
    pub current_file: Option<String>,
    pub message: Option<String>,
    pub files_total: u64,
    pub files_done: u64,
    pub bytes_total: u64,
    pub bytes_done: u64,
    pub failed: u64,
    pub skipped: u64,
    pub bytes_per_sec: u64,
    pub eta_secs: Option<u64>,
}

impl Default for SessionProgress {
    fn default() -> Self {
        SessionProgress {
            started: Instant::now(),
            files_total: AtomicU64::new(0),
            bytes_total: AtomicU64::new(0),
            files_done: AtomicU64::new(0),
            bytes_done: AtomicU64::new(0),
            failed: AtomicU64::new(0),
            skipped: AtomicU64::new(0),
            inner: Mutex::new(Inner::default()),
        }
    }
}

impl SessionProgress {
    pub fn new() -> Arc<Self> {
        Arc::new(Self::default())
    }

    fn inner(&self) -> std::sync::MutexGuard<'_, Inner> {
        self.inner.lock().unwrap_or_else(|p| p.into_inner())
    }

    pub fn set_state(&self, s: SlotState, message: Option<String>) {
        let mut i = self.inner();
        i.state = Some(s);
        if message.is_some() {
            i.message = message;
        }
    }

    pub fn set_identity(&self, session: &str, serial: &str, officer: Option<&str>) {
        let mut i = self.inner();
        i.session = Some(session.to_string());
        i.serial = Some(serial.to_string());
        i.officer = officer.map(str::to_string);
    }

    pub fn set_current(&self, file: Option<String>) {
        self.inner().current = file;
    }

    pub fn add(&self, counter: &AtomicU64, n: u64) {
        counter.fetch_add(n, Ordering::Relaxed);
    }

    pub fn snapshot(&self) -> Snapshot {
        let i = self.inner().clone();
        let load = |c: &AtomicU64| c.load(Ordering::Relaxed);
        let bytes_done = load(&self.bytes_done);
        let bytes_total = load(&self.bytes_total);
        let secs = self.started.elapsed().as_secs_f64().max(0.001);
        let rate = (bytes_done as f64 / secs) as u64;
        let eta_secs =
            (rate > 0 && bytes_total >= bytes_done).then(|| (bytes_total - bytes_done) / rate);
        Snapshot {
            state: i.state.unwrap_or(SlotState::Identifying),
            session: i.session,
            serial: i.serial,
            officer: i.officer,
            current_file: i.current,
            message: i.message,
            files_total: load(&self.files_total),
            files_done: load(&self.files_done),
            bytes_total,
            bytes_done,
            failed: load(&self.failed),
            skipped: load(&self.skipped),
            bytes_per_sec: rate,
            eta_secs,
        }
    }
}
