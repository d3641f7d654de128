//! The journal's two acquisition steps, each one transaction: rows that must move together are
//! written together, so a crash between any two durable steps resumes at the next one.
//!
//! ```text
//! spool commit ─▶ checked (partial gone, re-dock entry, payload) ─▶ `acquired` event
//!              ─▶ acquired (row marked, original queued for upload)
//! ```
//! The re-dock table is only believed for a file whose row says `acquired`
//! ([`Journal::previous`]): an entry whose event a crash cut off is never the reason to skip.

use super::{Journal, JournalError, NewUpload, ts};
use chrono::{DateTime, Utc};
use evidock_verify::digest::Digests;
use evidock_verify::id::{DeviceSerial, EvidenceId, OfficerId, SessionId, Sha256};
use rusqlite::params;

/// What the re-dock table keeps of an acquired file: how it is recognised at a later docking.
#[derive(Debug, Clone)]
pub struct Recognised<'a> {
    pub size: u64,
    pub mtime_ns: i128,
    /// SHA-256 of the first and last MiB.
    pub edge: &'a Sha256,
    pub evidence: &'a EvidenceId,
    pub sha256: &'a Sha256,
}

/// What the evidence list shows of an acquired file.
#[derive(Debug, Clone, Default)]
pub struct Shown<'a> {
    pub officer: Option<&'a OfficerId>,
    pub recorded_raw: Option<&'a str>,
    pub recorded: Option<&'a str>,
    pub time_rule: Option<&'a str>,
    pub important: bool,
}

/// One file of [`Journal::set_checked_all`].
#[derive(Debug, Clone)]
pub struct CheckedRow<'a> {
    pub path: &'a [u8],
    pub recognised: Recognised<'a>,
    pub digests: &'a Digests,
    /// The `acquired` payload, JSON.
    pub payload: &'a str,
}

/// One file of [`Journal::set_acquired_all`].
#[derive(Debug, Clone)]
pub struct AcquiredRow<'a> {
    pub path: &'a [u8],
    /// The `acquired` event's sequence number.
    pub seq: u64,
    pub shown: Shown<'a>,
    pub upload: &'a NewUpload,
}

impl Journal {
    /// Acquired originals with no upload queued (left by a crash before the two were one
    /// transaction): evidence, SHA-256, size.
    pub fn unqueued_originals(&self) -> Result<Vec<(EvidenceId, Sha256, u64)>, JournalError> {
        self.with(|db| {
            let mut st = db.prepare(
                "SELECT f.evidence, f.sha256, f.size FROM files f WHERE f.state = 'acquired'
                 AND NOT EXISTS (SELECT 1 FROM uploads u WHERE u.evidence = f.evidence AND u.role = 'original')",
            )?;
            let rows = st.query_map([], |r| {
                let bad = |i, e: String| {
                    rusqlite::Error::FromSqlConversionFailure(
                        i,
                        rusqlite::types::Type::Text,
                        e.into(),
                    )
                };
                let ev: String = r.get(0)?;
                let sha: Option<String> = r.get(1)?;
                Ok((
                    EvidenceId::new(ev).map_err(|e| bad(0, e.to_string()))?,
                    sha.unwrap_or_default()
                        .parse::<Sha256>()
                        .map_err(|e| bad(1, e.to_string()))?,
                    r.get::<_, i64>(2)? as u64,
                ))
            })?;
            rows.collect()
        })
    }

    /// A spool copy re-read and committed: its partial copy is forgotten, the re-dock table
    /// learns it, and the row holds the `acquired` payload (JSON) that is logged next, so a
    /// crash before the event replays exactly this payload.
    pub fn set_checked(
        &self,
        session: &SessionId,
        device: &DeviceSerial,
        path: &[u8],
        recognised: &Recognised<'_>,
        digests: &Digests,
        payload: &str,
    ) -> Result<(), JournalError> {
        self.set_checked_all(
            session,
            device,
            &[CheckedRow {
                path,
                recognised: recognised.clone(),
                digests,
                payload,
            }],
        )
    }

    /// [`Journal::set_checked`] for a group of files, in one transaction (one fsync): all or
    /// none of them are checked.
    pub fn set_checked_all(
        &self,
        session: &SessionId,
        device: &DeviceSerial,
        rows: &[CheckedRow<'_>],
    ) -> Result<(), JournalError> {
        self.with(|db| {
            let tx = db.unchecked_transaction()?;
            for row in rows {
                checked(&tx, session, device, row)?;
            }
            tx.commit()
        })
    }

    /// The `acquired` event is in the log (at `seq`): the row says so, with what the evidence
    /// list shows, and the original is queued for upload — together.
    pub fn set_acquired(
        &self,
        session: &SessionId,
        path: &[u8],
        seq: u64,
        shown: &Shown<'_>,
        upload: &NewUpload,
        at: DateTime<Utc>,
    ) -> Result<(), JournalError> {
        self.set_acquired_all(
            session,
            &[AcquiredRow {
                path,
                seq,
                shown: shown.clone(),
                upload,
            }],
            at,
        )
    }

    /// [`Journal::set_acquired`] for a group of files, in one transaction (one fsync).
    pub fn set_acquired_all(
        &self,
        session: &SessionId,
        rows: &[AcquiredRow<'_>],
        at: DateTime<Utc>,
    ) -> Result<(), JournalError> {
        self.with(|db| {
            let tx = db.unchecked_transaction()?;
            for row in rows {
                let n = update_acquired(&tx, session, row.path, row.seq, &row.shown)?;
                if n != 1 {
                    return Err(rusqlite::Error::StatementChangedRows(n));
                }
                super::uploads::insert_upload(&tx, row.upload, &ts(at))?;
            }
            tx.commit()
        })
    }

    /// The row only (no upload queued): what a station before [`Journal::set_acquired`] could
    /// leave behind, for tests.
    #[cfg(test)]
    pub(crate) fn mark_acquired(
        &self,
        session: &SessionId,
        path: &[u8],
        seq: u64,
        shown: &Shown<'_>,
    ) -> Result<(), JournalError> {
        self.with(|db| update_acquired(db, session, path, seq, shown).map(|_| ()))
    }
}

/// One file checked, inside the caller's transaction.
fn checked(
    tx: &rusqlite::Connection,
    session: &SessionId,
    device: &DeviceSerial,
    row: &CheckedRow<'_>,
) -> rusqlite::Result<()> {
    let (path, recognised, digests) = (row.path, &row.recognised, row.digests);
    tx.execute(
        "DELETE FROM partials WHERE device = ?1 AND path = ?2",
        params![device.as_str(), path],
    )?;
    tx.execute(
        "INSERT OR REPLACE INTO acquired (device, path, size, mtime_ns, edge_sha256, evidence, sha256) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)",
        params![
            device.as_str(),
            path,
            recognised.size as i64,
            recognised.mtime_ns.to_string(),
            recognised.edge.to_hex(),
            recognised.evidence.as_str(),
            recognised.sha256.to_hex()
        ],
    )?;
    let n = tx.execute(
        "UPDATE files SET state = 'checked', sha256 = ?3, sm3 = ?4, md5 = ?5, payload = ?6, error = NULL WHERE session = ?1 AND path = ?2",
        params![
            session.as_str(),
            path,
            digests.sha256.to_hex(),
            digests.sm3.as_ref().map(|h| h.to_string()),
            digests.md5.as_ref().map(|h| h.to_string()),
            row.payload
        ],
    )?;
    if n != 1 {
        return Err(rusqlite::Error::StatementChangedRows(n));
    }
    Ok(())
}

/// State `acquired` with what the evidence list shows; the rows changed.
fn update_acquired(
    db: &rusqlite::Connection,
    session: &SessionId,
    path: &[u8],
    seq: u64,
    shown: &Shown<'_>,
) -> rusqlite::Result<usize> {
    db.execute(
        "UPDATE files SET state = 'acquired', event_seq = ?3, officer = ?4, recorded_raw = ?5, recorded = ?6, time_rule = ?7, important = ?8, error = NULL WHERE session = ?1 AND path = ?2",
        params![
            session.as_str(),
            path,
            seq as i64,
            shown.officer.map(|o| o.as_str()),
            shown.recorded_raw,
            shown.recorded,
            shown.time_rule,
            shown.important
        ],
    )
}

#[cfg(test)]
mod tests {
    use super::super::{FileState, SessionState};
    use super::*;

    /// An original acquired but never queued (what a crash between the two old steps left) is
    /// found, and is found no more once queued.
    #[test]
    fn acquired_originals_without_an_upload_are_found() {
        let tmp = tempfile::tempdir().unwrap();
        let j = Journal::open(&tmp.path().join("journal.db")).unwrap();
        let s = SessionId::new("s1").unwrap();
        let d = DeviceSerial::new("ZFY0001").unwrap();
        let now: DateTime<Utc> = "2026-11-28T10:00:00Z".parse().unwrap();
        j.create_session(&s, &d, None, "zfy-sim", SessionState::Copying, now)
            .unwrap();
        let ev = EvidenceId::new("ev-0123456789abcdef0123").unwrap();
        let dg = Digests {
            sha256: Sha256::digest(b"x"),
            sm3: None,
            md5: None,
        };
        j.put_file(&s, b"a.mp4", &ev, 1, 5, FileState::Checked, Some(&dg), None)
            .unwrap();
        j.mark_acquired(&s, b"a.mp4", 3, &Shown::default()).unwrap();
        assert_eq!(
            j.unqueued_originals().unwrap(),
            vec![(ev.clone(), dg.sha256, 1)]
        );
        j.enqueue_upload(
            &NewUpload {
                evidence: ev,
                role: "original".into(),
                sha256: dg.sha256,
                size: 1,
                source: "/spool/x".into(),
                key: "originals/x".into(),
            },
            now,
        )
        .unwrap();
        assert!(j.unqueued_originals().unwrap().is_empty());
    }

    /// The dock's repair queues a legacy row once, and then never scans again.
    #[test]
    fn the_repair_of_unqueued_originals_queues_them_then_runs_no_more() {
        let tmp = tempfile::tempdir().unwrap();
        let j = Journal::open(&tmp.path().join("journal.db")).unwrap();
        let spool = crate::acquire::spool::Spool::open(&tmp.path().join("spool")).unwrap();
        let s = SessionId::new("s1").unwrap();
        let d = DeviceSerial::new("ZFY0001").unwrap();
        let now: DateTime<Utc> = "2026-11-28T10:00:00Z".parse().unwrap();
        j.create_session(&s, &d, None, "zfy-sim", SessionState::Copying, now)
            .unwrap();
        let dg = Digests {
            sha256: Sha256::digest(b"x"),
            sm3: None,
            md5: None,
        };
        for (i, name) in [b"a.mp4", b"b.mp4"].iter().enumerate() {
            let ev = EvidenceId::new(format!("ev-0123456789abcdef012{i}")).unwrap();
            j.put_file(&s, *name, &ev, 1, 5, FileState::Checked, Some(&dg), None)
                .unwrap();
        }
        j.mark_acquired(&s, b"a.mp4", 3, &Shown::default()).unwrap();
        assert_eq!(
            crate::upload::queue_unqueued_originals(&j, &spool, now).unwrap(),
            1
        );
        assert!(j.unqueued_originals().unwrap().is_empty());
        // A row left after the repair (only an older evidock could) is not looked for again.
        j.mark_acquired(&s, b"b.mp4", 4, &Shown::default()).unwrap();
        assert_eq!(
            crate::upload::queue_unqueued_originals(&j, &spool, now).unwrap(),
            0
        );
    }
}
