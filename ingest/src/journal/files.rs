//! The `files` and `partials` tables: each card file of a session and where its copy stands,
//! and the copies an undock cut off (resumed at the next docking).

use super::{EvidenceRow, FileRow, FileState, Partial};
use super::{Journal, JournalError, Page, Undecodable};
use evidock_verify::digest::{Digests, HexBytes};
use evidock_verify::id::{DeviceSerial, EvidenceId, SessionId, Sha256};
use rusqlite::{OptionalExtension as _, params};
use std::path::PathBuf;

impl Journal {
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
        let row = NewFileRow {
            session,
            path,
            evidence,
            size,
            mtime_ns,
        };
        self.with(|db| put_file(db, &row, state, digests, error))
    }

    /// Record a file's row as `copying` without waiting for the disk: the row becomes durable
    /// with the journal's next durable commit (the WAL keeps commits in order), at the latest
    /// the copy's first resume point or its `checked` step. A crash may lose it harmlessly: a
    /// file with no row is copied as a new one. Spares every small file one fsync.
    pub fn put_copying(
        &self,
        session: &SessionId,
        path: &[u8],
        evidence: &EvidenceId,
        size: u64,
        mtime_ns: i128,
    ) -> Result<(), JournalError> {
        let row = NewFileRow {
            session,
            path,
            evidence,
            size,
            mtime_ns,
        };
        self.with(|db| {
            // On this connection only, and only for this statement; the lock is held throughout,
            // so no other commit runs without its fsync.
            db.pragma_update(None, "synchronous", "NORMAL")?;
            let put = put_file(db, &row, FileState::Copying, None, None);
            db.pragma_update(None, "synchronous", "FULL")?;
            put
        })
    }

    pub fn evidence(&self) -> Result<Vec<EvidenceRow>, JournalError> {
        Ok(self.evidence_where("", None, u64::MAX)?.rows)
    }

    /// Whether this evidence item was acquired here (a `--after` that names none is a typo,
    /// not an empty page).
    pub fn has_evidence(&self, id: &str) -> Result<bool, JournalError> {
        self.with(|db| {
            db.query_row(
                "SELECT EXISTS (SELECT 1 FROM files WHERE evidence = ?1 AND state = 'acquired')",
                [id],
                |r| r.get(0),
            )
        })
    }

    /// At most `limit` acquired items in acquisition order, after item `after`; `next` names
    /// the last row read when there may be more.
    pub fn evidence_page(
        &self,
        after: Option<&str>,
        limit: u64,
    ) -> Result<Page<EvidenceRow>, JournalError> {
        self.evidence_where("", after, limit)
    }

    /// The transcode queue: acquired items whose content has no derivatives yet and no
    /// recorded failure (a job `started` and cut off is made again), in acquisition order. The
    /// query does the selecting, so a pass does not load every item the station ever acquired.
    pub fn transcode_backlog(&self) -> Result<Vec<EvidenceRow>, JournalError> {
        Ok(self
            .evidence_where(
                "AND NOT EXISTS (SELECT 1 FROM transcodes t
                             WHERE t.sha256 = f.sha256 AND t.state IN ('done', 'failed'))",
                None,
                u64::MAX,
            )?
            .rows)
    }

    /// The acquired items matching `and`, in acquisition order, after item `after`, at most
    /// `limit`.
    fn evidence_where(
        &self,
        and: &str,
        after: Option<&str>,
        limit: u64,
    ) -> Result<Page<EvidenceRow>, JournalError> {
        self.with(|db| {
            let mut st = db.prepare(&format!(
                "SELECT f.evidence, f.sha256, f.sm3, f.md5, f.size, f.session, s.device, f.officer, f.path,
                        f.recorded_raw, f.recorded, f.time_rule, f.important, f.event_seq
                 FROM files f JOIN sessions s ON s.id = f.session
                 WHERE f.state = 'acquired' {and}
                   AND (?1 IS NULL OR f.event_seq > (SELECT event_seq FROM files WHERE evidence = ?1))
                 ORDER BY f.event_seq LIMIT ?2"
            ))?;
            let rows = st.query_map(params![after, limit.min(i64::MAX as u64) as i64], |r| {
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
            let (mut read, mut last) = (0u64, None);
            for row in rows {
                let (id, sha, sm3, md5, size, session, device, officer, path, raw, rec, rule, imp, seq) = row?;
                read += 1;
                last = Some(id.clone());
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
            Ok(Page {
                rows: out,
                next: last.filter(|_| read == limit),
            })
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
}

/// A file's identity in the `files` table.
struct NewFileRow<'a> {
    session: &'a SessionId,
    path: &'a [u8],
    evidence: &'a EvidenceId,
    size: u64,
    mtime_ns: i128,
}

fn put_file(
    db: &rusqlite::Connection,
    row: &NewFileRow<'_>,
    state: FileState,
    digests: Option<&Digests>,
    error: Option<&str>,
) -> rusqlite::Result<()> {
    db.execute(
        "INSERT INTO files (session, path, evidence, size, mtime_ns, state, sha256, sm3, md5, error)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10)
         ON CONFLICT (session, path) DO UPDATE SET size = ?4, mtime_ns = ?5, state = ?6,
           sha256 = COALESCE(?7, sha256), sm3 = COALESCE(?8, sm3), md5 = COALESCE(?9, md5), error = ?10",
        params![
            row.session.as_str(),
            row.path,
            row.evidence.as_str(),
            row.size as i64,
            row.mtime_ns.to_string(),
            state.as_str(),
            digests.map(|d| d.sha256.to_hex()),
            digests.and_then(|d| d.sm3.as_ref()).map(|h| h.to_string()),
            digests.and_then(|d| d.md5.as_ref()).map(|h| h.to_string()),
            error,
        ],
    )
    .map(|_| ())
}
