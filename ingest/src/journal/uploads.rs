//! The upload queue: one row per object (an original or a derivative) to put in the store, with
//! the progress of a resumable multipart upload.
//!
//! A row that does not decode (damaged, or written by a newer evidock) is never read as some
//! default: it drops out of the queue *loudly* — noted in [`Journal::undecodable`] (status page,
//! `/metrics`) and logged — while the rows that do decode keep flowing.

use super::{Journal, JournalError, Undecodable, parse_ts, ts};
use chrono::{DateTime, Utc};
use evidock_verify::id::{DeviceSerial, EvidenceId, Sha256};
use rusqlite::types::{FromSql, FromSqlResult, ToSql, ToSqlOutput, ValueRef};
use rusqlite::{Connection, OptionalExtension as _, params};
use serde::Serialize;
use std::path::PathBuf;

/// Where an upload stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum UploadState {
    Pending,
    /// A multipart upload is under way (its ID and finished parts are in the row).
    Uploading,
    /// In the store, read back, and its `uploaded` event logged.
    Uploaded,
    /// Failed for good (a permanent error); `evidock upload --retry-failed` queues it again.
    Failed,
}

impl UploadState {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Pending => "pending",
            Self::Uploading => "uploading",
            Self::Uploaded => "uploaded",
            Self::Failed => "failed",
        }
    }

    fn from_name(s: &str) -> Option<Self> {
        Some(match s {
            "pending" => Self::Pending,
            "uploading" => Self::Uploading,
            "uploaded" => Self::Uploaded,
            "failed" => Self::Failed,
            _ => return None,
        })
    }
}

impl std::fmt::Display for UploadState {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromSql for UploadState {
    fn column_result(v: ValueRef<'_>) -> FromSqlResult<Self> {
        super::state_from_sql(v, "uploads", Self::from_name)
    }
}

impl ToSql for UploadState {
    fn to_sql(&self) -> rusqlite::Result<ToSqlOutput<'_>> {
        Ok(ToSqlOutput::from(self.as_str()))
    }
}

/// An object to upload.
#[derive(Debug, Clone)]
pub struct NewUpload {
    pub evidence: EvidenceId,
    /// `original`, `playback`, `poster`, `contact-sheet`.
    pub role: String,
    pub sha256: Sha256,
    pub size: u64,
    /// The local file (the spool copy).
    pub source: PathBuf,
    /// The object key in the store.
    pub key: String,
}

impl NewUpload {
    /// The upload of an acquired evidence item's original (queued with its `acquired` row),
    /// from its spool copy `source`.
    pub fn original(evidence: &EvidenceId, sha256: &Sha256, size: u64, source: PathBuf) -> Self {
        NewUpload {
            evidence: evidence.clone(),
            role: "original".into(),
            sha256: *sha256,
            size,
            source,
            key: evidock_store::objects::layout::original(sha256),
        }
    }
}

/// A multipart upload under way.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Multipart {
    /// The store's upload ID.
    pub id: String,
    /// The part size this upload was started with: its parts are cut at multiples of it, so a
    /// resume must use it whatever `store.part_size_mib` says now.
    pub part_size: u64,
    /// The finished parts' ETags, in order.
    pub parts: Vec<String>,
}

/// An upload's journal row.
#[derive(Debug, Clone, Serialize)]
pub struct UploadRow {
    pub evidence: EvidenceId,
    pub role: String,
    pub sha256: Sha256,
    pub size: u64,
    pub source: PathBuf,
    pub key: String,
    pub state: UploadState,
    /// The multipart upload under way, if any. A row of an older evidock that has an upload ID
    /// but no part size has `part_size` 0: its parts cannot be trusted, the upload starts over.
    pub multipart: Option<Multipart>,
    pub attempts: u64,
    pub error: Option<String>,
    pub queued_at: Option<DateTime<Utc>>,
}

const COLUMNS: &str = "evidence, role, sha256, size, source, key, state, upload_id, parts, attempts, error, queued_at, part_size";

fn upload_row(r: &rusqlite::Row<'_>) -> Result<UploadRow, Undecodable> {
    let bad = |reason: String| Undecodable {
        table: "uploads".into(),
        row: format!(
            "{}/{}",
            r.get_ref(0)
                .ok()
                .and_then(|v| v.as_str().ok())
                .unwrap_or("?"),
            r.get_ref(1)
                .ok()
                .and_then(|v| v.as_str().ok())
                .unwrap_or("?")
        ),
        reason,
    };
    let col = |e: rusqlite::Error| bad(e.to_string());
    let upload_id: Option<String> = r.get(7).map_err(col)?;
    let parts: Option<String> = r.get(8).map_err(col)?;
    let part_size: Option<i64> = r.get(12).map_err(col)?;
    let multipart = match upload_id {
        None => None,
        Some(id) => Some(Multipart {
            id,
            part_size: part_size.unwrap_or(0) as u64,
            parts: match parts.as_deref() {
                None => Vec::new(),
                Some(p) => serde_json::from_str(p).map_err(|e| bad(format!("parts {p:?}: {e}")))?,
            },
        }),
    };
    let queued: String = r.get(11).map_err(col)?;
    Ok(UploadRow {
        evidence: EvidenceId::new(r.get::<_, String>(0).map_err(col)?)
            .map_err(|e| bad(e.to_string()))?,
        role: r.get(1).map_err(col)?,
        sha256: r
            .get::<_, String>(2)
            .map_err(col)?
            .parse()
            .map_err(|e: evidock_verify::id::IdError| bad(e.to_string()))?,
        size: r.get::<_, i64>(3).map_err(col)? as u64,
        source: PathBuf::from(r.get::<_, String>(4).map_err(col)?),
        key: r.get(5).map_err(col)?,
        state: r.get(6).map_err(col)?,
        multipart,
        attempts: r.get::<_, i64>(9).map_err(col)? as u64,
        error: r.get(10).map_err(col)?,
        queued_at: Some(parse_ts(&queued).ok_or_else(|| bad(format!("queued_at {queued:?}")))?),
    })
}

/// Queue an upload (once), inside whatever transaction `db` is in.
pub(super) fn insert_upload(db: &Connection, u: &NewUpload, at: &str) -> rusqlite::Result<()> {
    db.execute(
        "INSERT OR IGNORE INTO uploads (evidence, role, sha256, size, source, key, state, queued_at)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, 'pending', ?7)",
        params![
            u.evidence.as_str(),
            u.role,
            u.sha256.to_hex(),
            u.size as i64,
            u.source.to_string_lossy(),
            u.key,
            at
        ],
    )
    .map(|_| ())
}

/// The column that came with multipart part sizes, added to a journal an older evidock made.
/// Looked for and added under one write lock: the dock and `evidock status` may open an old
/// journal at the same moment.
pub(super) fn migrate(db: &Connection) -> rusqlite::Result<()> {
    let has = |db: &Connection| -> rusqlite::Result<bool> {
        db.prepare("SELECT 1 FROM pragma_table_info('uploads') WHERE name = 'part_size'")?
            .exists([])
    };
    if has(db)? {
        return Ok(());
    }
    db.execute_batch("BEGIN IMMEDIATE")?;
    let done = (|| {
        if !has(db)? {
            db.execute_batch("ALTER TABLE uploads ADD COLUMN part_size INTEGER")?;
        }
        Ok(())
    })();
    db.execute_batch(if done.is_ok() { "COMMIT" } else { "ROLLBACK" })?;
    done
}

impl Journal {
    /// Queue an object for upload (once; a second call changes nothing).
    pub fn enqueue_upload(&self, u: &NewUpload, at: DateTime<Utc>) -> Result<(), JournalError> {
        self.with(|db| insert_upload(db, u, &ts(at)))
    }

    fn upload_rows(
        &self,
        filter: &str,
        args: &[&dyn ToSql],
    ) -> Result<Vec<UploadRow>, JournalError> {
        let rows = self.with(|db| {
            let mut st = db.prepare(&format!("SELECT {COLUMNS} FROM uploads {filter}"))?;
            let rows = st.query_map(args, |r| Ok(upload_row(r)))?;
            rows.collect::<rusqlite::Result<Vec<_>>>()
        })?;
        Ok(rows
            .into_iter()
            .filter_map(|r| r.map_err(|u| self.note_undecodable(u)).ok())
            .collect())
    }

    /// Uploads due now (pending or uploading, not waiting for a retry), oldest first.
    pub fn due_uploads(
        &self,
        now: DateTime<Utc>,
        limit: usize,
    ) -> Result<Vec<UploadRow>, JournalError> {
        self.upload_rows(
            "WHERE state IN ('pending', 'uploading') AND (next_at IS NULL OR next_at <= ?1)
             ORDER BY queued_at LIMIT ?2",
            &[&ts(now), &(limit as i64)],
        )
    }

    /// When the first upload waiting for a retry falls due (the queue's retry-at): the upload
    /// stage sleeps until then rather than polling.
    pub fn next_retry_at(&self) -> Result<Option<DateTime<Utc>>, JournalError> {
        let at: Option<String> = self.with(|db| {
            db.query_row(
                "SELECT MIN(next_at) FROM uploads WHERE state IN ('pending', 'uploading') AND next_at IS NOT NULL",
                [],
                |r| r.get(0),
            )
        })?;
        Ok(at.as_deref().and_then(parse_ts))
    }

    /// Every upload row (for status and tests).
    pub fn uploads(&self) -> Result<Vec<UploadRow>, JournalError> {
        self.upload_rows("ORDER BY queued_at", &[])
    }

    /// The uploads not done yet (waiting, under way, failed): the queue, which does not grow
    /// with what was ever uploaded.
    pub fn uploads_unfinished(&self) -> Result<Vec<UploadRow>, JournalError> {
        self.upload_rows("WHERE state != 'uploaded' ORDER BY queued_at", &[])
    }

    /// How many uploads are done, and their bytes: counted by the database.
    pub fn uploaded_totals(&self) -> Result<(u64, u64), JournalError> {
        self.with(|db| {
            db.query_row(
                "SELECT COUNT(*), COALESCE(SUM(size), 0) FROM uploads WHERE state = 'uploaded'",
                [],
                |r| {
                    Ok((
                        r.get::<_, i64>(0)?.max(0) as u64,
                        r.get::<_, i64>(1)?.max(0) as u64,
                    ))
                },
            )
        })
    }

    /// The state of an upload, if queued.
    pub fn upload_state(
        &self,
        evidence: &EvidenceId,
        role: &str,
    ) -> Result<Option<UploadState>, JournalError> {
        self.with(|db| {
            db.query_row(
                "SELECT state FROM uploads WHERE evidence = ?1 AND role = ?2",
                params![evidence.as_str(), role],
                |r| r.get::<_, UploadState>(0),
            )
            .optional()
        })
    }

    /// Originals acquired from this camera (at any docking) whose upload is still to come:
    /// queued or under way, not verified and not failed for good.
    pub fn camera_uploads_pending(&self, device: &DeviceSerial) -> Result<u64, JournalError> {
        self.with(|db| {
            db.query_row(
                "SELECT COUNT(*) FROM files f JOIN sessions s ON s.id = f.session
                 LEFT JOIN uploads u ON u.evidence = f.evidence AND u.role = 'original'
                 WHERE s.device = ?1 AND f.state = 'acquired' AND (u.state IS NULL OR u.state IN ('pending', 'uploading'))",
                params![device.as_str()],
                |r| r.get::<_, i64>(0),
            )
        })
        .map(|n| n as u64)
    }

    /// Record multipart progress: the upload under way (its ID, part size and finished parts),
    /// or none (start over).
    pub fn upload_progress(
        &self,
        evidence: &EvidenceId,
        role: &str,
        multipart: Option<&Multipart>,
    ) -> Result<(), JournalError> {
        let parts =
            multipart.map(|m| serde_json::to_string(&m.parts).unwrap_or_else(|_| "[]".into()));
        self.with(|db| {
            db.execute(
                "UPDATE uploads SET state = 'uploading', upload_id = ?3, parts = ?4, part_size = ?5
                 WHERE evidence = ?1 AND role = ?2",
                params![
                    evidence.as_str(),
                    role,
                    multipart.map(|m| m.id.as_str()),
                    parts,
                    multipart.map(|m| m.part_size as i64)
                ],
            )
            .map(|_| ())
        })
    }

    /// A failed attempt: retriable ones wait until `next_at`; permanent ones are `failed`.
    pub fn upload_failed(
        &self,
        evidence: &EvidenceId,
        role: &str,
        error: &str,
        next_at: Option<DateTime<Utc>>,
    ) -> Result<(), JournalError> {
        self.with(|db| {
            db.execute(
                "UPDATE uploads SET attempts = attempts + 1, error = ?3, next_at = ?4,
                   state = CASE WHEN ?4 IS NULL THEN 'failed' ELSE state END
                 WHERE evidence = ?1 AND role = ?2",
                params![evidence.as_str(), role, error, next_at.map(ts)],
            )
            .map(|_| ())
        })
    }

    pub fn upload_done(
        &self,
        evidence: &EvidenceId,
        role: &str,
        seq: u64,
        at: DateTime<Utc>,
    ) -> Result<(), JournalError> {
        self.with(|db| {
            db.execute(
                "UPDATE uploads SET state = 'uploaded', seq = ?3, uploaded_at = ?4, error = NULL, next_at = NULL
                 WHERE evidence = ?1 AND role = ?2",
                params![evidence.as_str(), role, seq as i64, ts(at)],
            )
            .map(|_| ())
        })
    }

    /// Put failed uploads back in the queue (after the cause was fixed).
    pub fn retry_failed_uploads(&self) -> Result<usize, JournalError> {
        self.with(|db| {
            db.execute(
                "UPDATE uploads SET state = 'pending', next_at = NULL WHERE state = 'failed'",
                [],
            )
        })
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    fn queued(j: &Journal, name: &str) -> EvidenceId {
        let ev = EvidenceId::new(name.to_string()).unwrap();
        j.enqueue_upload(
            &NewUpload {
                evidence: ev.clone(),
                role: "original".into(),
                sha256: Sha256([7; 32]),
                size: 10,
                source: "/spool/x".into(),
                key: format!("k/{name}"),
            },
            Utc::now(),
        )
        .unwrap();
        ev
    }

    #[test]
    fn a_row_that_does_not_decode_is_named_not_dropped_in_silence() {
        let dir = tempfile::tempdir().unwrap();
        let j = Journal::open(&dir.path().join("j.db")).unwrap();
        let good = queued(&j, "ev-00000000000000000001");
        queued(&j, "ev-00000000000000000002");
        j.with(|db| {
            db.execute(
                "UPDATE uploads SET sha256 = 'not-hex' WHERE evidence = 'ev-00000000000000000002'",
                [],
            )
        })
        .unwrap();
        let rows = j.uploads().unwrap();
        assert_eq!(rows.len(), 1);
        assert_eq!(rows[0].evidence, good);
        let bad = j.undecodable();
        assert_eq!(bad.len(), 1, "{bad:?}");
        assert_eq!(bad[0].table, "uploads");
        assert_eq!(bad[0].row, "ev-00000000000000000002/original");
    }

    #[test]
    fn an_unknown_upload_state_is_an_error_not_a_default() {
        let dir = tempfile::tempdir().unwrap();
        let j = Journal::open(&dir.path().join("j.db")).unwrap();
        let ev = queued(&j, "ev-00000000000000000003");
        j.with(|db| db.execute("UPDATE uploads SET state = 'archived'", []))
            .unwrap();
        let e = j.upload_state(&ev, "original").unwrap_err();
        assert!(e.to_string().contains("archived"), "{e}");
        assert!(j.uploads().unwrap().is_empty());
        assert_eq!(j.undecodable().len(), 1);
    }

    #[test]
    fn the_part_size_is_kept_with_the_upload_and_an_old_journal_gains_its_column() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("j.db");
        {
            // A journal of the version before: no part_size column.
            let db = Connection::open(&path).unwrap();
            db.execute_batch(
                "CREATE TABLE uploads (
                  evidence TEXT NOT NULL, role TEXT NOT NULL, sha256 TEXT NOT NULL, size INTEGER NOT NULL,
                  source TEXT NOT NULL, key TEXT NOT NULL, state TEXT NOT NULL,
                  upload_id TEXT, parts TEXT, attempts INTEGER NOT NULL DEFAULT 0, next_at TEXT, error TEXT,
                  queued_at TEXT NOT NULL, uploaded_at TEXT, seq INTEGER,
                  PRIMARY KEY (evidence, role));",
            )
            .unwrap();
        }
        let j = Journal::open(&path).unwrap();
        let ev = queued(&j, "ev-00000000000000000003");
        let m = Multipart {
            id: "up-1".into(),
            part_size: 5 << 20,
            parts: vec!["e1".into(), "e2".into()],
        };
        j.upload_progress(&ev, "original", Some(&m)).unwrap();
        let row = j.uploads().unwrap().remove(0);
        assert_eq!(row.state, UploadState::Uploading);
        assert_eq!(row.multipart, Some(m));
        j.upload_progress(&ev, "original", None).unwrap();
        assert_eq!(j.uploads().unwrap()[0].multipart, None);
    }
}
