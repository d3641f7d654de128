//! The station journal: where acquisition stands, durably, so every stage resumes after a
//! crash, a kill -9 or an early undock. An embedded SQLite database (WAL, synchronous=FULL).
//!
//! The journal is station state, not evidence: evidence facts are custody events. What it holds
//! that the custody log also holds (acquired files, assignments) is an index that can be rebuilt.

use chrono::{DateTime, Utc};
use evidock_verify::digest::{Digests, HexBytes};
use evidock_verify::id::{DeviceSerial, EvidenceId, SessionId, Sha256};
use rusqlite::{Connection, params};
use serde::Serialize;
use std::path::{Path, PathBuf};
use std::sync::Mutex;

mod acquire;
mod acquired;
mod devices;
mod files;
mod published;
mod sessions;
mod transcodes;
mod uploads;
mod wipe;
pub use acquire::{AcquiredRow, CheckedRow, Recognised, Shown};
pub use transcodes::TranscodeState;
pub use uploads::{Multipart, NewUpload, UploadRow, UploadState};
pub use wipe::OpenWipe;

#[derive(Debug, thiserror::Error)]
#[error("journal {path}: {source}")]
pub struct JournalError {
    pub path: PathBuf,
    #[source]
    pub source: rusqlite::Error,
}

/// One page of a list read in its index's order: the rows, and the key of the last row read
/// when the page was full (so there may be more after it). Rows that do not decode are noted
/// and left out, but still move the page on.
#[derive(Debug)]
pub struct Page<T> {
    pub rows: Vec<T>,
    pub next: Option<String>,
}

/// Every session of the journal, counted (the status page's totals).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct SessionTotals {
    pub sessions: u64,
    pub files: u64,
    pub bytes: u64,
    pub files_failed: u64,
    pub sessions_failed: u64,
    pub sessions_refused: u64,
    /// Devices with failed sessions docked since the time asked, and how many.
    pub failing_since: Vec<(String, u64)>,
}

/// The state of a camera session.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum SessionState {
    /// Talking to the camera.
    Identifying,
    /// Files are being copied.
    Copying,
    /// Every file is acquired (or recorded as failed/skipped): safe to undock.
    Released,
    /// The camera left before release; the next docking resumes.
    Interrupted,
    /// Stopped by an error (e.g. the spool disk is full); the reason is recorded.
    Failed,
    /// Not read: unknown camera, not allow-listed, or wrong password.
    Refused,
}

impl SessionState {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Identifying => "identifying",
            Self::Copying => "copying",
            Self::Released => "released",
            Self::Interrupted => "interrupted",
            Self::Failed => "failed",
            Self::Refused => "refused",
        }
    }

    fn from_name(s: &str) -> Option<Self> {
        Some(match s {
            "identifying" => Self::Identifying,
            "copying" => Self::Copying,
            "released" => Self::Released,
            "interrupted" => Self::Interrupted,
            "failed" => Self::Failed,
            "refused" => Self::Refused,
            _ => return None,
        })
    }

    /// Whether the session may still make progress.
    pub fn is_open(self) -> bool {
        matches!(self, Self::Identifying | Self::Copying)
    }
}

/// The state of one file of a session.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum FileState {
    Pending,
    /// Being copied; `offset` bytes are durable in the spool.
    Copying,
    /// The spool copy matched on re-read and is in the spool; the event may still be missing.
    Checked,
    /// The `acquired` event is in the custody log.
    Acquired,
    /// Recorded as already acquired at an earlier docking.
    Skipped,
    /// Recorded as not acquirable (the reason is in the event).
    Failed,
}

impl FileState {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Pending => "pending",
            Self::Copying => "copying",
            Self::Checked => "checked",
            Self::Acquired => "acquired",
            Self::Skipped => "skipped",
            Self::Failed => "failed",
        }
    }

    fn from_name(s: &str) -> Option<Self> {
        Some(match s {
            "pending" => Self::Pending,
            "copying" => Self::Copying,
            "checked" => Self::Checked,
            "acquired" => Self::Acquired,
            "skipped" => Self::Skipped,
            "failed" => Self::Failed,
            _ => return None,
        })
    }

    /// Done with, one way or another.
    pub fn is_final(self) -> bool {
        matches!(self, Self::Acquired | Self::Skipped | Self::Failed)
    }
}

/// A state the journal holds that this version does not know: an error naming the table,
/// never a default (an unknown file state read as `pending` would copy the file again; an
/// unknown session state read as `failed` would hide an open one).
#[derive(Debug, thiserror::Error)]
#[error(
    "unknown state {value:?} in the journal's {table} table (written by a newer evidock, or damaged)"
)]
pub struct UnknownState {
    pub table: &'static str,
    pub value: String,
}

fn state_from_sql<T>(
    v: rusqlite::types::ValueRef<'_>,
    table: &'static str,
    from_name: fn(&str) -> Option<T>,
) -> rusqlite::types::FromSqlResult<T> {
    let s = v.as_str()?;
    from_name(s).ok_or_else(|| {
        rusqlite::types::FromSqlError::Other(Box::new(UnknownState {
            table,
            value: s.to_string(),
        }))
    })
}

impl rusqlite::types::FromSql for FileState {
    fn column_result(v: rusqlite::types::ValueRef<'_>) -> rusqlite::types::FromSqlResult<Self> {
        state_from_sql(v, "files", Self::from_name)
    }
}

impl rusqlite::types::FromSql for SessionState {
    fn column_result(v: rusqlite::types::ValueRef<'_>) -> rusqlite::types::FromSqlResult<Self> {
        state_from_sql(v, "sessions", Self::from_name)
    }
}

/// A session row.
#[derive(Debug, Clone, Serialize)]
pub struct SessionRow {
    pub id: SessionId,
    pub device: DeviceSerial,
    pub slot: Option<String>,
    pub driver: Option<String>,
    pub state: SessionState,
    pub docked_at: DateTime<Utc>,
    pub released_at: Option<DateTime<Utc>>,
    pub clock_offset_ms: Option<i64>,
    pub files: u64,
    pub bytes: u64,
    pub failed: u64,
    pub skipped: u64,
    pub error: Option<String>,
}

/// An acquired evidence item, as listed by `evidock evidence list`.
#[derive(Debug, Clone, Serialize)]
pub struct EvidenceRow {
    pub id: EvidenceId,
    pub sha256: Sha256,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub sm3: Option<HexBytes>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub md5: Option<HexBytes>,
    pub size: u64,
    pub session: SessionId,
    pub device: DeviceSerial,
    pub officer: Option<String>,
    /// The path on the camera, readable form.
    pub path: String,
    pub recorded_raw: Option<String>,
    pub recorded: Option<String>,
    pub time_rule: Option<String>,
    pub important: bool,
    pub seq: Option<u64>,
}

/// A file's journal row.
#[derive(Debug, Clone)]
pub struct FileRow {
    pub evidence: EvidenceId,
    pub state: FileState,
    pub size: u64,
    pub mtime_ns: i128,
    pub digests: Option<Digests>,
}

/// A resumable partial copy.
#[derive(Debug, Clone)]
pub struct Partial {
    pub size: u64,
    pub mtime_ns: i128,
    pub spool_file: PathBuf,
    pub offset: u64,
}

/// What an earlier docking acquired from this camera at this path.
#[derive(Debug, Clone)]
pub struct Previous {
    pub edge_sha256: Sha256,
    pub evidence: EvidenceId,
    pub sha256: Sha256,
}

pub struct Journal {
    path: PathBuf,
    db: Mutex<Connection>,
    /// Rows met that do not decode, by table and row: shown, never skipped in silence.
    undecodable:
        Mutex<std::collections::BTreeMap<(std::borrow::Cow<'static, str>, String), String>>,
}

/// A journal row that does not decode (damaged, or written by a newer evidock).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, serde::Deserialize, thiserror::Error)]
#[error("row {row} of the journal's {table} table does not decode: {reason}")]
pub struct Undecodable {
    pub table: std::borrow::Cow<'static, str>,
    /// The row's key, as far as it reads.
    pub row: String,
    pub reason: String,
}

impl From<Undecodable> for rusqlite::Error {
    fn from(u: Undecodable) -> Self {
        rusqlite::Error::FromSqlConversionFailure(0, rusqlite::types::Type::Text, Box::new(u))
    }
}

impl std::fmt::Debug for Journal {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Journal").field("path", &self.path).finish()
    }
}

const SCHEMA: &str = r#"
PRAGMA journal_mode = WAL;
PRAGMA synchronous = FULL;
CREATE TABLE IF NOT EXISTS sessions (
  id TEXT PRIMARY KEY, device TEXT NOT NULL, slot TEXT, driver TEXT, state TEXT NOT NULL,
  docked_at TEXT NOT NULL, released_at TEXT, clock_offset_ms INTEGER,
  files INTEGER NOT NULL DEFAULT 0, bytes INTEGER NOT NULL DEFAULT 0,
  failed INTEGER NOT NULL DEFAULT 0, skipped INTEGER NOT NULL DEFAULT 0, error TEXT,
  docking TEXT
);
CREATE INDEX IF NOT EXISTS sessions_device ON sessions(device, state);
CREATE INDEX IF NOT EXISTS sessions_docked ON sessions(docked_at, id);
CREATE TABLE IF NOT EXISTS files (
  session TEXT NOT NULL, path BLOB NOT NULL, evidence TEXT NOT NULL, size INTEGER NOT NULL,
  mtime_ns TEXT NOT NULL, state TEXT NOT NULL, sha256 TEXT, sm3 TEXT, md5 TEXT,
  officer TEXT, recorded_raw TEXT, recorded TEXT, time_rule TEXT,
  important INTEGER NOT NULL DEFAULT 0, event_seq INTEGER, error TEXT, payload TEXT,
  PRIMARY KEY (session, path)
);
CREATE INDEX IF NOT EXISTS files_evidence ON files(evidence);
CREATE INDEX IF NOT EXISTS files_sha256 ON files(sha256);
CREATE INDEX IF NOT EXISTS files_event_seq ON files(event_seq);
CREATE TABLE IF NOT EXISTS partials (
  device TEXT NOT NULL, path BLOB NOT NULL, size INTEGER NOT NULL, mtime_ns TEXT NOT NULL,
  spool_file TEXT NOT NULL, offset INTEGER NOT NULL, PRIMARY KEY (device, path)
);
CREATE TABLE IF NOT EXISTS acquired (
  device TEXT NOT NULL, path BLOB NOT NULL, size INTEGER NOT NULL, mtime_ns TEXT NOT NULL,
  edge_sha256 TEXT NOT NULL, evidence TEXT NOT NULL, sha256 TEXT NOT NULL,
  PRIMARY KEY (device, path, size, mtime_ns)
);
CREATE TABLE IF NOT EXISTS clocks (
  device TEXT PRIMARY KEY, synced_at TEXT, drift_ppm REAL
);
CREATE TABLE IF NOT EXISTS uploads (
  evidence TEXT NOT NULL, role TEXT NOT NULL, sha256 TEXT NOT NULL, size INTEGER NOT NULL,
  source TEXT NOT NULL, key TEXT NOT NULL, state TEXT NOT NULL,
  upload_id TEXT, parts TEXT, attempts INTEGER NOT NULL DEFAULT 0, next_at TEXT, error TEXT,
  queued_at TEXT NOT NULL, uploaded_at TEXT, seq INTEGER,
  PRIMARY KEY (evidence, role)
);
CREATE INDEX IF NOT EXISTS uploads_state ON uploads(state, next_at);
CREATE TABLE IF NOT EXISTS published (
  station TEXT PRIMARY KEY, size INTEGER NOT NULL
);
CREATE TABLE IF NOT EXISTS transcodes (
  sha256 TEXT PRIMARY KEY, evidence TEXT NOT NULL, state TEXT NOT NULL, error TEXT, at TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS wipes (
  key TEXT PRIMARY KEY, session TEXT NOT NULL, device TEXT NOT NULL, request TEXT NOT NULL,
  settled_seq INTEGER
);
CREATE INDEX IF NOT EXISTS wipes_open ON wipes(device, settled_seq);
CREATE TABLE IF NOT EXISTS repairs (
  name TEXT PRIMARY KEY, done_at TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS assignments (
  device TEXT NOT NULL, officer TEXT NOT NULL, from_utc TEXT NOT NULL, PRIMARY KEY (device, from_utc)
);
"#;

fn ts(t: DateTime<Utc>) -> String {
    t.to_rfc3339_opts(chrono::SecondsFormat::Millis, true)
}

fn parse_ts(s: &str) -> Option<DateTime<Utc>> {
    DateTime::parse_from_rfc3339(s)
        .ok()
        .map(|t| t.with_timezone(&Utc))
}

/// Open (creating) an SQLite database of the station with its schema: waits up to 10 s for
/// another process's write instead of failing.
pub(crate) fn open_db(path: &Path, schema: &str) -> rusqlite::Result<Connection> {
    let wait = std::time::Duration::from_secs(10);
    let deadline = std::time::Instant::now() + wait;
    loop {
        let db = Connection::open(path)?;
        db.busy_timeout(wait)?;
        match db.execute_batch(schema) {
            Ok(()) => return Ok(db),
            // A database made WAL (the schema's first line) by another connection at this very
            // moment answers SQLITE_BUSY at once, without the busy handler: opened again, it
            // is WAL already.
            Err(rusqlite::Error::SqliteFailure(e, _))
                if e.code == rusqlite::ErrorCode::DatabaseBusy
                    && std::time::Instant::now() < deadline =>
            {
                drop(db);
                std::thread::sleep(std::time::Duration::from_millis(20));
            }
            Err(e) => return Err(e),
        }
    }
}

impl Journal {
    pub fn open(path: &Path) -> Result<Self, JournalError> {
        let err = |source| JournalError {
            path: path.to_path_buf(),
            source,
        };
        let db = open_db(path, SCHEMA).map_err(err)?;
        uploads::migrate(&db).map_err(err)?;
        Ok(Journal {
            path: path.to_path_buf(),
            db: Mutex::new(db),
            undecodable: Mutex::default(),
        })
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Note a row a listing had to leave out (logged the first time it is met).
    fn note_undecodable(&self, u: Undecodable) {
        let mut seen = self.undecodable.lock().unwrap_or_else(|p| p.into_inner());
        if seen
            .insert((u.table.clone(), u.row.clone()), u.reason.clone())
            .is_none()
        {
            tracing::error!(journal = %self.path.display(), table = %u.table, row = %u.row, reason = %u.reason, "journal row does not decode; it is left out until repaired");
        }
    }

    /// Whether the one-time repair `name` (of what an older evidock could leave) was done.
    pub fn repair_done(&self, name: &str) -> Result<bool, JournalError> {
        self.with(|db| {
            db.prepare("SELECT 1 FROM repairs WHERE name = ?1")?
                .exists(params![name])
        })
    }

    pub fn set_repair_done(&self, name: &str, at: DateTime<Utc>) -> Result<(), JournalError> {
        self.with(|db| {
            db.execute(
                "INSERT OR IGNORE INTO repairs (name, done_at) VALUES (?1, ?2)",
                params![name, ts(at)],
            )
            .map(|_| ())
        })
    }

    /// A row a single-row read cannot do without: noted, and the read's error.
    fn undecodable_err(&self, u: Undecodable) -> JournalError {
        self.note_undecodable(u.clone());
        JournalError {
            path: self.path.clone(),
            source: u.into(),
        }
    }

    /// The rows met so far that do not decode (for the status page and `/metrics`).
    pub fn undecodable(&self) -> Vec<Undecodable> {
        let seen = self.undecodable.lock().unwrap_or_else(|p| p.into_inner());
        seen.iter()
            .map(|((table, row), reason)| Undecodable {
                table: table.clone(),
                row: row.clone(),
                reason: reason.clone(),
            })
            .collect()
    }

    fn with<R>(
        &self,
        f: impl FnOnce(&Connection) -> rusqlite::Result<R>,
    ) -> Result<R, JournalError> {
        let db = self.db.lock().unwrap_or_else(|p| p.into_inner());
        f(&db).map_err(|source| JournalError {
            path: self.path.clone(),
            source,
        })
    }
}

#[cfg(test)]
mod tests;
