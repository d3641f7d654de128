//! The station journal: where acquisition stands, durably, so every stage resumes after a
//! crash, a kill -9 or an early undock. An embedded SQLite database (WAL, synchronous=FULL).
//!
//! The journal is station state, not evidence: evidence facts are custody events. What it holds
//! that the custody log also holds (acquired files, assignments) is an index that can be rebuilt.

use chrono::{DateTime, Utc};
use evidock_verify::digest::{Digests, HexBytes};
use evidock_verify::id::{DeviceSerial, EvidenceId, OfficerId, SessionId, Sha256};
use rusqlite::{Connection, OptionalExtension as _, params};
use serde::Serialize;
use std::path::{Path, PathBuf};
use std::sync::Mutex;

mod acquire;
mod uploads;
mod wipe;
pub use acquire::{Recognised, Shown};
pub use uploads::{Multipart, NewUpload, UploadRow, UploadState};
pub use wipe::OpenWipe;

#[derive(Debug, thiserror::Error)]
#[error("journal {path}: {source}")]
pub struct JournalError {
    pub path: PathBuf,
    #[source]
    pub source: rusqlite::Error,
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
CREATE TABLE IF NOT EXISTS files (
  session TEXT NOT NULL, path BLOB NOT NULL, evidence TEXT NOT NULL, size INTEGER NOT NULL,
  mtime_ns TEXT NOT NULL, state TEXT NOT NULL, sha256 TEXT, sm3 TEXT, md5 TEXT,
  officer TEXT, recorded_raw TEXT, recorded TEXT, time_rule TEXT,
  important INTEGER NOT NULL DEFAULT 0, event_seq INTEGER, error TEXT, payload TEXT,
  PRIMARY KEY (session, path)
);
CREATE INDEX IF NOT EXISTS files_evidence ON files(evidence);
CREATE INDEX IF NOT EXISTS files_sha256 ON files(sha256);
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

    // --- sessions ---

    pub fn create_session(
        &self,
        id: &SessionId,
        device: &DeviceSerial,
        slot: Option<&str>,
        driver: &str,
        state: SessionState,
        docked_at: DateTime<Utc>,
    ) -> Result<(), JournalError> {
        self.with(|db| {
            db.execute(
                "INSERT OR IGNORE INTO sessions (id, device, slot, driver, state, docked_at) VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
                params![id.as_str(), device.as_str(), slot, driver, state.as_str(), ts(docked_at)],
            )
            .map(|_| ())
        })
    }

    /// The open session of a device, if one was interrupted by a crash (not by an undock).
    pub fn open_session_of(
        &self,
        device: &DeviceSerial,
    ) -> Result<Option<SessionId>, JournalError> {
        self.with(|db| {
            db.query_row(
                "SELECT id FROM sessions WHERE device = ?1 AND state IN ('identifying','copying') ORDER BY docked_at DESC LIMIT 1",
                params![device.as_str()],
                |r| r.get::<_, String>(0),
            )
            .optional()
        })
        .and_then(|o| {
            o.map(|s| {
                SessionId::new(s.clone()).map_err(|e| {
                    self.undecodable_err(Undecodable {
                        table: "sessions".into(),
                        row: s,
                        reason: e.to_string(),
                    })
                })
            })
            .transpose()
        })
    }

    pub fn set_session_state(
        &self,
        id: &SessionId,
        state: SessionState,
        error: Option<&str>,
    ) -> Result<(), JournalError> {
        self.with(|db| {
            db.execute(
                "UPDATE sessions SET state = ?2, error = COALESCE(?3, error) WHERE id = ?1",
                params![id.as_str(), state.as_str(), error],
            )
            .map(|_| ())
        })
    }

    pub fn set_session_clock(
        &self,
        id: &SessionId,
        offset_ms: Option<i64>,
    ) -> Result<(), JournalError> {
        self.with(|db| {
            db.execute(
                "UPDATE sessions SET clock_offset_ms = ?2 WHERE id = ?1",
                params![id.as_str(), offset_ms],
            )
            .map(|_| ())
        })
    }

    pub fn release_session(
        &self,
        id: &SessionId,
        at: DateTime<Utc>,
        counts: (u64, u64, u64, u64),
    ) -> Result<(), JournalError> {
        self.with(|db| {
            db.execute(
                "UPDATE sessions SET state = 'released', released_at = ?2, files = ?3, bytes = ?4, failed = ?5, skipped = ?6 WHERE id = ?1",
                params![id.as_str(), ts(at), counts.0 as i64, counts.1 as i64, counts.2 as i64, counts.3 as i64],
            )
            .map(|_| ())
        })
    }

    pub fn sessions(&self) -> Result<Vec<SessionRow>, JournalError> {
        self.with(|db| {
            let mut st = db.prepare(
                "SELECT id, device, slot, driver, state, docked_at, released_at, clock_offset_ms, files, bytes, failed, skipped, error FROM sessions ORDER BY docked_at, id",
            )?;
            let rows = st.query_map([], |r| {
                Ok((
                    r.get::<_, String>(0)?,
                    r.get::<_, String>(1)?,
                    r.get::<_, Option<String>>(2)?,
                    r.get::<_, Option<String>>(3)?,
                    r.get::<_, String>(4)?,
                    r.get::<_, String>(5)?,
                    r.get::<_, Option<String>>(6)?,
                    r.get::<_, Option<i64>>(7)?,
                    (r.get::<_, i64>(8)?, r.get::<_, i64>(9)?, r.get::<_, i64>(10)?, r.get::<_, i64>(11)?),
                    r.get::<_, Option<String>>(12)?,
                ))
            })?;
            let mut out = Vec::new();
            for row in rows {
                let (id, device, slot, driver, state, docked, released, off, c, error) = row?;
                // A session this version cannot read is left out and noted, never read as
                // some state: the other sessions (and the status page) stay readable.
                let (Ok(sid), Ok(device), Some(docked_at), Some(state)) = (
                    SessionId::new(id.clone()),
                    DeviceSerial::new(device.clone()),
                    parse_ts(&docked),
                    SessionState::from_name(&state),
                ) else {
                    self.note_undecodable(Undecodable {
                        table: "sessions".into(),
                        row: id,
                        reason: format!(
                            "device {device:?}, state {state:?}, docked_at {docked:?}"
                        ),
                    });
                    continue;
                };
                let id = sid;
                out.push(SessionRow {
                    id,
                    device,
                    slot,
                    driver,
                    state,
                    docked_at,
                    released_at: released.as_deref().and_then(parse_ts),
                    clock_offset_ms: off,
                    files: c.0 as u64,
                    bytes: c.1 as u64,
                    failed: c.2 as u64,
                    skipped: c.3 as u64,
                    error,
                });
            }
            Ok(out)
        })
    }

    /// Keep the clocks read at docking (JSON), so a resumed session corrects times exactly as
    /// the first run did (after the clock sync, the camera no longer shows the old offset).
    pub fn set_session_docking(&self, id: &SessionId, docking: &str) -> Result<(), JournalError> {
        self.with(|db| {
            db.execute(
                "UPDATE sessions SET docking = ?2 WHERE id = ?1",
                params![id.as_str(), docking],
            )
            .map(|_| ())
        })
    }

    pub fn session_docking(&self, id: &SessionId) -> Result<Option<String>, JournalError> {
        self.with(|db| {
            db.query_row(
                "SELECT docking FROM sessions WHERE id = ?1",
                params![id.as_str()],
                |r| r.get::<_, Option<String>>(0),
            )
            .optional()
        })
        .map(Option::flatten)
    }

    pub fn checked_payload(
        &self,
        session: &SessionId,
        path: &[u8],
    ) -> Result<Option<String>, JournalError> {
        self.with(|db| {
            db.query_row(
                "SELECT payload FROM files WHERE session = ?1 AND path = ?2",
                params![session.as_str(), path],
                |r| r.get::<_, Option<String>>(0),
            )
            .optional()
        })
        .map(Option::flatten)
    }

    // --- files ---

    pub fn file(&self, session: &SessionId, path: &[u8]) -> Result<Option<FileRow>, JournalError> {
        self.with(|db| {
            db.query_row(
                "SELECT evidence, state, size, mtime_ns, sha256, sm3, md5 FROM files WHERE session = ?1 AND path = ?2",
                params![session.as_str(), path],
                |r| {
                    Ok((
                        r.get::<_, String>(0)?,
                        r.get::<_, FileState>(1)?,
                        r.get::<_, i64>(2)?,
                        r.get::<_, String>(3)?,
                        r.get::<_, Option<String>>(4)?,
                        r.get::<_, Option<String>>(5)?,
                        r.get::<_, Option<String>>(6)?,
                    ))
                },
            )
            .optional()
        })
        .and_then(|o| {
            let Some((ev, state, size, mtime, sha, sm3, md5)) = o else {
                return Ok(None);
            };
            // A file row read wrongly would copy the file again or skip it: an error, never a
            // default.
            let bad = |what: &str, v: &str| {
                self.undecodable_err(Undecodable {
                    table: "files".into(),
                    row: format!("{session}/{}", String::from_utf8_lossy(path)),
                    reason: format!("{what} {v:?}"),
                })
            };
            let hex = |h: Option<String>| -> Result<Option<HexBytes>, JournalError> {
                h.map(|h| hex::decode(&h).map(HexBytes).map_err(|_| bad("digest", &h)))
                    .transpose()
            };
            let digests = match sha {
                None => None,
                Some(s) => Some(Digests {
                    sha256: s.parse().map_err(|_| bad("sha256", &s))?,
                    sm3: hex(sm3)?,
                    md5: hex(md5)?,
                }),
            };
            Ok(Some(FileRow {
                evidence: EvidenceId::new(ev.clone()).map_err(|_| bad("evidence", &ev))?,
                state,
                size: size as u64,
                mtime_ns: mtime.parse().map_err(|_| bad("mtime_ns", &mtime))?,
                digests,
            }))
        })
    }

    /// Record (or update) a file's row and state.
    #[allow(clippy::too_many_arguments)]
    pub fn put_file(
        &self,
        session: &SessionId,
        path: &[u8],
        evidence: &EvidenceId,
        size: u64,
        mtime_ns: i128,
        state: FileState,
        digests: Option<&Digests>,
        error: Option<&str>,
    ) -> Result<(), JournalError> {
        self.with(|db| {
            db.execute(
                "INSERT INTO files (session, path, evidence, size, mtime_ns, state, sha256, sm3, md5, error)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10)
                 ON CONFLICT (session, path) DO UPDATE SET size = ?4, mtime_ns = ?5, state = ?6,
                   sha256 = COALESCE(?7, sha256), sm3 = COALESCE(?8, sm3), md5 = COALESCE(?9, md5), error = ?10",
                params![
                    session.as_str(),
                    path,
                    evidence.as_str(),
                    size as i64,
                    mtime_ns.to_string(),
                    state.as_str(),
                    digests.map(|d| d.sha256.to_hex()),
                    digests.and_then(|d| d.sm3.as_ref()).map(|h| h.to_string()),
                    digests.and_then(|d| d.md5.as_ref()).map(|h| h.to_string()),
                    error,
                ],
            )
            .map(|_| ())
        })
    }

    pub fn evidence(&self) -> Result<Vec<EvidenceRow>, JournalError> {
        self.with(|db| {
            let mut st = db.prepare(
                "SELECT f.evidence, f.sha256, f.sm3, f.md5, f.size, f.session, s.device, f.officer, f.path,
                        f.recorded_raw, f.recorded, f.time_rule, f.important, f.event_seq
                 FROM files f JOIN sessions s ON s.id = f.session
                 WHERE f.state = 'acquired' ORDER BY f.event_seq",
            )?;
            let rows = st.query_map([], |r| {
                Ok((
                    r.get::<_, String>(0)?,
                    r.get::<_, String>(1)?,
                    r.get::<_, Option<String>>(2)?,
                    r.get::<_, Option<String>>(3)?,
                    r.get::<_, i64>(4)?,
                    r.get::<_, String>(5)?,
                    r.get::<_, String>(6)?,
                    r.get::<_, Option<String>>(7)?,
                    r.get::<_, Vec<u8>>(8)?,
                    r.get::<_, Option<String>>(9)?,
                    r.get::<_, Option<String>>(10)?,
                    r.get::<_, Option<String>>(11)?,
                    r.get::<_, bool>(12)?,
                    r.get::<_, Option<i64>>(13)?,
                ))
            })?;
            let mut out = Vec::new();
            for row in rows {
                let (id, sha, sm3, md5, size, session, device, officer, path, raw, rec, rule, imp, seq) = row?;
                let (Ok(eid), Ok(sha256), Ok(sid), Ok(dev)) = (
                    EvidenceId::new(id.clone()),
                    sha.parse::<Sha256>(),
                    SessionId::new(session.clone()),
                    DeviceSerial::new(device.clone()),
                ) else {
                    self.note_undecodable(Undecodable {
                        table: "files".into(),
                        row: format!("{session}/{}", String::from_utf8_lossy(&path)),
                        reason: format!("evidence {id:?}, sha256 {sha:?}, device {device:?}"),
                    });
                    continue;
                };
                let (id, session, device) = (eid, sid, dev);
                // The optional digests: one that does not decode is noted and shown as absent
                // (the item itself, its SHA-256 whole, stays listed and transcoded).
                let hex = |what: &str, h: Option<String>| {
                    let h = h?;
                    match hex::decode(&h) {
                        Ok(b) => Some(HexBytes(b)),
                        Err(_) => {
                            self.note_undecodable(Undecodable {
                                table: "files".into(),
                                row: format!("{session}/{}", String::from_utf8_lossy(&path)),
                                reason: format!("{what} {h:?}"),
                            });
                            None
                        }
                    }
                };
                let (sm3, md5) = (hex("sm3", sm3), hex("md5", md5));
                out.push(EvidenceRow {
                    id,
                    sha256,
                    sm3,
                    md5,
                    size: size as u64,
                    session,
                    device,
                    officer,
                    path: evidock_verify::event::payload::CameraPath(path).display(),
                    recorded_raw: raw,
                    recorded: rec,
                    time_rule: rule,
                    important: imp,
                    seq: seq.map(|s| s as u64),
                });
            }
            Ok(out)
        })
    }

    /// Counts of a session's files by final state: (acquired, bytes acquired, failed, skipped).
    pub fn session_counts(
        &self,
        session: &SessionId,
    ) -> Result<(u64, u64, u64, u64), JournalError> {
        self.with(|db| {
            db.query_row(
                "SELECT COALESCE(SUM(state = 'acquired'), 0), COALESCE(SUM(CASE WHEN state = 'acquired' THEN size ELSE 0 END), 0),
                        COALESCE(SUM(state = 'failed'), 0), COALESCE(SUM(state = 'skipped'), 0)
                 FROM files WHERE session = ?1",
                params![session.as_str()],
                |r| Ok((r.get::<_, i64>(0)? as u64, r.get::<_, i64>(1)? as u64, r.get::<_, i64>(2)? as u64, r.get::<_, i64>(3)? as u64)),
            )
        })
    }

    // --- partial copies ---

    pub fn partial(
        &self,
        device: &DeviceSerial,
        path: &[u8],
    ) -> Result<Option<Partial>, JournalError> {
        self.with(|db| {
            db.query_row(
                "SELECT size, mtime_ns, spool_file, offset FROM partials WHERE device = ?1 AND path = ?2",
                params![device.as_str(), path],
                |r| {
                    Ok(Partial {
                        size: r.get::<_, i64>(0)? as u64,
                        mtime_ns: {
                            let m = r.get::<_, String>(1)?;
                            m.parse().map_err(|_| {
                                let u = Undecodable {
                                    table: "partials".into(),
                                    row: format!("{device}/{}", String::from_utf8_lossy(path)),
                                    reason: format!("mtime_ns {m:?}"),
                                };
                                self.note_undecodable(u.clone());
                                u
                            })?
                        },
                        spool_file: PathBuf::from(r.get::<_, String>(2)?),
                        offset: r.get::<_, i64>(3)? as u64,
                    })
                },
            )
            .optional()
        })
    }

    pub fn put_partial(
        &self,
        device: &DeviceSerial,
        path: &[u8],
        p: &Partial,
    ) -> Result<(), JournalError> {
        self.with(|db| {
            db.execute(
                "INSERT INTO partials (device, path, size, mtime_ns, spool_file, offset) VALUES (?1, ?2, ?3, ?4, ?5, ?6)
                 ON CONFLICT (device, path) DO UPDATE SET size = ?3, mtime_ns = ?4, spool_file = ?5, offset = ?6",
                params![device.as_str(), path, p.size as i64, p.mtime_ns.to_string(), p.spool_file.to_string_lossy(), p.offset as i64],
            )
            .map(|_| ())
        })
    }

    pub fn remove_partial(&self, device: &DeviceSerial, path: &[u8]) -> Result<(), JournalError> {
        self.with(|db| {
            db.execute(
                "DELETE FROM partials WHERE device = ?1 AND path = ?2",
                params![device.as_str(), path],
            )
            .map(|_| ())
        })
    }

    // --- re-dock index ---

    pub fn previous(
        &self,
        device: &DeviceSerial,
        path: &[u8],
        size: u64,
        mtime_ns: i128,
    ) -> Result<Option<Previous>, JournalError> {
        self.with(|db| {
            db.query_row(
                "SELECT a.edge_sha256, a.evidence, a.sha256 FROM acquired a
                 WHERE a.device = ?1 AND a.path = ?2 AND a.size = ?3 AND a.mtime_ns = ?4
                   AND EXISTS (SELECT 1 FROM files f WHERE f.evidence = a.evidence AND f.state = 'acquired')",
                params![device.as_str(), path, size as i64, mtime_ns.to_string()],
                |r| Ok((r.get::<_, String>(0)?, r.get::<_, String>(1)?, r.get::<_, String>(2)?)),
            )
            .optional()
        })
        .and_then(|o| {
            let Some((edge, ev, sha)) = o else {
                return Ok(None);
            };
            // Read wrongly, an earlier acquisition would be forgotten (a second copy) or
            // invented (a skip): an error naming the row.
            let bad = |what: &str, v: &str| {
                self.undecodable_err(Undecodable {
                    table: "acquired".into(),
                    row: format!("{device}/{}", String::from_utf8_lossy(path)),
                    reason: format!("{what} {v:?}"),
                })
            };
            Ok(Some(Previous {
                edge_sha256: edge.parse().map_err(|_| bad("edge_sha256", &edge))?,
                evidence: EvidenceId::new(ev.clone()).map_err(|_| bad("evidence", &ev))?,
                sha256: sha.parse().map_err(|_| bad("sha256", &sha))?,
            }))
        })
    }

    /// The `acquired` payload (JSON) and event seq of an evidence item.
    pub fn acquired_of(
        &self,
        evidence: &EvidenceId,
    ) -> Result<Option<(String, u64)>, JournalError> {
        self.with(|db| {
            db.query_row(
                "SELECT payload, event_seq FROM files WHERE evidence = ?1 AND state = 'acquired'",
                params![evidence.as_str()],
                |r| Ok((r.get::<_, Option<String>>(0)?, r.get::<_, Option<i64>>(1)?)),
            )
            .optional()
        })
        .map(|o| match o {
            Some((Some(p), Some(seq))) => Some((p, seq as u64)),
            _ => None,
        })
    }

    /// Whether the evidence item was flagged important (unknown counts as important).
    pub fn is_important(&self, evidence: &EvidenceId) -> Result<bool, JournalError> {
        self.with(|db| {
            db.query_row(
                "SELECT important FROM files WHERE evidence = ?1",
                params![evidence.as_str()],
                |r| r.get::<_, bool>(0),
            )
            .optional()
        })
        .map(|o| o.unwrap_or(true))
    }

    /// Where the derivatives of every content stand, in one query (for the backlog and the
    /// status page).
    pub fn transcode_states(
        &self,
    ) -> Result<std::collections::HashMap<Sha256, crate::transcode::TranscodeState>, JournalError>
    {
        self.with(|db| {
            let mut q = db.prepare("SELECT sha256, state FROM transcodes")?;
            let rows = q.query_map([], |r| Ok((r.get::<_, String>(0)?, r.get::<_, String>(1)?)))?;
            rows.collect::<rusqlite::Result<Vec<_>>>()
        })
        .map(|v| {
            v.into_iter()
                .filter_map(|(sha, st)| {
                    let decoded = sha
                        .parse()
                        .ok()
                        .zip(crate::transcode::TranscodeState::parse(&st));
                    if decoded.is_none() {
                        self.note_undecodable(Undecodable {
                            table: "transcodes".into(),
                            row: sha.clone(),
                            reason: format!("sha256 {sha:?}, state {st:?}"),
                        });
                    }
                    decoded
                })
                .collect()
        })
    }

    pub fn set_transcode(
        &self,
        sha256: &Sha256,
        evidence: &EvidenceId,
        state: crate::transcode::TranscodeState,
        error: Option<&str>,
        at: DateTime<Utc>,
    ) -> Result<(), JournalError> {
        self.with(|db| {
            db.execute(
                "INSERT INTO transcodes (sha256, evidence, state, error, at) VALUES (?1, ?2, ?3, ?4, ?5)
                 ON CONFLICT(sha256) DO UPDATE SET evidence = ?2, state = ?3, error = ?4, at = ?5",
                params![sha256.to_hex(), evidence.as_str(), state.as_str(), error, ts(at)],
            )
            .map(|_| ())
        })
    }

    /// How far this station's custody log is published in the store.
    pub fn published(&self, station: &str) -> Result<u64, JournalError> {
        self.with(|db| {
            db.query_row(
                "SELECT size FROM published WHERE station = ?1",
                params![station],
                |r| r.get::<_, i64>(0),
            )
            .optional()
        })
        .map(|o| o.unwrap_or(0) as u64)
    }

    pub fn set_published(&self, station: &str, size: u64) -> Result<(), JournalError> {
        self.with(|db| {
            db.execute(
                "INSERT INTO published (station, size) VALUES (?1, ?2)
                 ON CONFLICT (station) DO UPDATE SET size = MAX(size, ?2)",
                params![station, size as i64],
            )
            .map(|_| ())
        })
    }

    // --- clocks and assignments ---

    pub fn clock_history(
        &self,
        device: &DeviceSerial,
    ) -> Result<(Option<DateTime<Utc>>, Option<f64>), JournalError> {
        self.with(|db| {
            db.query_row(
                "SELECT synced_at, drift_ppm FROM clocks WHERE device = ?1",
                params![device.as_str()],
                |r| Ok((r.get::<_, Option<String>>(0)?, r.get::<_, Option<f64>>(1)?)),
            )
            .optional()
        })
        .map(|o| match o {
            Some((s, d)) => (s.as_deref().and_then(parse_ts), d),
            None => (None, None),
        })
    }

    pub fn record_clock(
        &self,
        device: &DeviceSerial,
        synced_at: Option<DateTime<Utc>>,
        drift_ppm: Option<f64>,
    ) -> Result<(), JournalError> {
        self.with(|db| {
            db.execute(
                "INSERT INTO clocks (device, synced_at, drift_ppm) VALUES (?1, ?2, ?3)
                 ON CONFLICT (device) DO UPDATE SET synced_at = COALESCE(?2, synced_at), drift_ppm = COALESCE(?3, drift_ppm)",
                params![device.as_str(), synced_at.map(ts), drift_ppm],
            )
            .map(|_| ())
        })
    }

    pub fn add_assignment(
        &self,
        device: &DeviceSerial,
        officer: &OfficerId,
        from: DateTime<Utc>,
    ) -> Result<(), JournalError> {
        self.with(|db| {
            db.execute(
                "INSERT OR REPLACE INTO assignments (device, officer, from_utc) VALUES (?1, ?2, ?3)",
                params![device.as_str(), officer.as_str(), ts(from)],
            )
            .map(|_| ())
        })
    }

    /// Who carried `device` at `at`: the latest assignment from at or before then.
    pub fn assigned_officer(
        &self,
        device: &DeviceSerial,
        at: DateTime<Utc>,
    ) -> Result<Option<OfficerId>, JournalError> {
        self.with(|db| {
            db.query_row(
                "SELECT officer FROM assignments WHERE device = ?1 AND from_utc <= ?2 ORDER BY from_utc DESC LIMIT 1",
                params![device.as_str(), ts(at)],
                |r| r.get::<_, String>(0),
            )
            .optional()
        })
        .and_then(|o| {
            o.map(|s| {
                OfficerId::new(s.clone()).map_err(|e| {
                    self.undecodable_err(Undecodable {
                        table: "assignments".into(),
                        row: format!("{device}/{s}"),
                        reason: e.to_string(),
                    })
                })
            })
            .transpose()
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Processes opening a station's journal at the same moment — the dock starting while
    /// `evidock log show` runs, on a station just made — all open it: none is refused with
    /// "database is locked".
    #[test]
    fn a_new_journal_opened_by_many_at_once_opens_for_all() {
        for round in 0..20 {
            let dir = tempfile::tempdir().unwrap();
            let path = dir.path().join("journal.db");
            let opened: Vec<_> = std::thread::scope(|s| {
                let tries: Vec<_> = (0..6).map(|_| s.spawn(|| Journal::open(&path))).collect();
                tries.into_iter().map(|t| t.join().unwrap()).collect()
            });
            for r in opened {
                if let Err(e) = r {
                    panic!("round {round}: {e}");
                }
            }
        }
    }

    /// A state this version does not know is an error naming the table, never a default: a
    /// file read as `pending` would be copied again, a session read as `failed` hidden.
    #[test]
    fn unknown_states_are_errors_that_name_the_table() {
        let tmp = tempfile::tempdir().unwrap();
        let j = Journal::open(&tmp.path().join("journal.db")).unwrap();
        let s = SessionId::new("s1").unwrap();
        let d = DeviceSerial::new("ZFY0001").unwrap();
        let now: DateTime<Utc> = "2026-11-28T10:00:00Z".parse().unwrap();
        j.create_session(&s, &d, None, "zfy-sim", SessionState::Copying, now)
            .unwrap();
        let ev = EvidenceId::new("ev-0123456789abcdef0123").unwrap();
        j.put_file(&s, b"a.mp4", &ev, 1, 5, FileState::Copying, None, None)
            .unwrap();
        j.with(|db| {
            db.execute_batch(
                "UPDATE files SET state = 'quarantined'; UPDATE sessions SET state = 'paused';",
            )
        })
        .unwrap();
        let e = j.file(&s, b"a.mp4").unwrap_err().to_string();
        assert!(
            e.contains("\"quarantined\"") && e.contains("files table"),
            "{e}"
        );
        // A listing leaves the session out and notes it, never reads it as some state; the
        // other sessions stay listed.
        let t = SessionId::new("s2").unwrap();
        j.create_session(&t, &d, None, "zfy-sim", SessionState::Copying, now)
            .unwrap();
        let listed: Vec<SessionId> = j.sessions().unwrap().into_iter().map(|s| s.id).collect();
        assert_eq!(listed, vec![t]);
        let noted = j.undecodable();
        assert!(
            noted
                .iter()
                .any(|u| u.table == "sessions" && u.row == "s1" && u.reason.contains("\"paused\"")),
            "{noted:?}"
        );
    }

    #[test]
    fn sessions_files_partials_assignments() {
        let tmp = tempfile::tempdir().unwrap();
        let j = Journal::open(&tmp.path().join("journal.db")).unwrap();
        let s = SessionId::new("s1").unwrap();
        let d = DeviceSerial::new("ZFY0001").unwrap();
        let now: DateTime<Utc> = "2026-11-28T10:00:00Z".parse().unwrap();
        j.create_session(
            &s,
            &d,
            Some("slot-1"),
            "zfy-sim",
            SessionState::Copying,
            now,
        )
        .unwrap();
        assert_eq!(j.open_session_of(&d).unwrap(), Some(s.clone()));
        let ev = EvidenceId::new("ev-0123456789abcdef0123").unwrap();
        j.put_file(
            &s,
            b"DCIM/\xd6\xb4\xb7\xa8.MP4",
            &ev,
            10,
            5,
            FileState::Copying,
            None,
            None,
        )
        .unwrap();
        let row = j.file(&s, b"DCIM/\xd6\xb4\xb7\xa8.MP4").unwrap().unwrap();
        assert_eq!(row.state, FileState::Copying);
        let dg = Digests {
            sha256: Sha256::digest(b"x"),
            sm3: None,
            md5: None,
        };
        j.put_file(
            &s,
            b"DCIM/\xd6\xb4\xb7\xa8.MP4",
            &ev,
            10,
            5,
            FileState::Checked,
            Some(&dg),
            None,
        )
        .unwrap();
        j.mark_acquired(
            &s,
            b"DCIM/\xd6\xb4\xb7\xa8.MP4",
            3,
            &Shown {
                important: true,
                ..Shown::default()
            },
        )
        .unwrap();
        let list = j.evidence().unwrap();
        assert_eq!(list.len(), 1);
        assert_eq!(list[0].path, "DCIM/执法.MP4");
        assert_eq!(list[0].sha256, dg.sha256);
        assert_eq!(j.session_counts(&s).unwrap(), (1, 10, 0, 0));
        j.release_session(&s, now, (1, 10, 0, 0)).unwrap();
        assert_eq!(j.open_session_of(&d).unwrap(), None);

        let p = Partial {
            size: 100,
            mtime_ns: 7,
            spool_file: "/x".into(),
            offset: 64,
        };
        j.put_partial(&d, b"a", &p).unwrap();
        assert_eq!(j.partial(&d, b"a").unwrap().unwrap().offset, 64);
        j.remove_partial(&d, b"a").unwrap();
        assert!(j.partial(&d, b"a").unwrap().is_none());

        let o1 = OfficerId::new("350201").unwrap();
        let o2 = OfficerId::new("350202").unwrap();
        j.add_assignment(&d, &o1, "2026-11-28T00:00:00Z".parse().unwrap())
            .unwrap();
        j.add_assignment(&d, &o2, "2026-11-28T08:00:00Z".parse().unwrap())
            .unwrap();
        assert_eq!(
            j.assigned_officer(&d, "2026-11-28T07:00:00Z".parse().unwrap())
                .unwrap(),
            Some(o1)
        );
        assert_eq!(
            j.assigned_officer(&d, "2026-11-28T09:00:00Z".parse().unwrap())
                .unwrap(),
            Some(o2)
        );
        assert_eq!(
            j.assigned_officer(&d, "2026-11-27T09:00:00Z".parse().unwrap())
                .unwrap(),
            None
        );
    }
}
