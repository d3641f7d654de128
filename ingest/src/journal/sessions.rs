//! The `sessions` table: one row per docking of a camera, and where it stands.

use super::{Journal, JournalError, Page, Undecodable, parse_ts, ts};
use super::{SessionRow, SessionState, SessionTotals};
use chrono::{DateTime, Utc};
use evidock_verify::id::{DeviceSerial, SessionId};
use rusqlite::{OptionalExtension as _, params};

impl Journal {
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

    /// Every session, in the order they docked.
    pub fn sessions(&self) -> Result<Vec<SessionRow>, JournalError> {
        Ok(self.sessions_page(None, u64::MAX)?.rows)
    }

    /// Every session counted by the database (the status page): sessions, files and bytes
    /// acquired, files failed, sessions failed and refused, and the devices whose sessions
    /// failed since `since` with how many.
    pub fn session_totals(&self, since: DateTime<Utc>) -> Result<SessionTotals, JournalError> {
        self.with(|db| {
            let mut t = db.query_row(
                "SELECT COUNT(*), COALESCE(SUM(files), 0), COALESCE(SUM(bytes), 0),
                        COALESCE(SUM(failed), 0), COALESCE(SUM(state = 'failed'), 0),
                        COALESCE(SUM(state = 'refused'), 0)
                 FROM sessions",
                [],
                |r| {
                    let n = |i: usize| r.get::<_, i64>(i).map(|v| v.max(0) as u64);
                    Ok(SessionTotals {
                        sessions: n(0)?,
                        files: n(1)?,
                        bytes: n(2)?,
                        files_failed: n(3)?,
                        sessions_failed: n(4)?,
                        sessions_refused: n(5)?,
                        failing_since: Vec::new(),
                    })
                },
            )?;
            let mut q = db.prepare_cached(
                "SELECT device, COUNT(*) FROM sessions WHERE state = 'failed' AND docked_at >= ?1
                 GROUP BY device ORDER BY device",
            )?;
            let rows = q.query_map([ts(since)], |r| {
                Ok((r.get::<_, String>(0)?, r.get::<_, i64>(1)?.max(0) as u64))
            })?;
            for row in rows {
                t.failing_since.push(row?);
            }
            Ok(t)
        })
    }

    /// Whether the journal has this session (a `--after` that names none is a typo, not an
    /// empty page).
    pub fn has_session(&self, id: &str) -> Result<bool, JournalError> {
        self.with(|db| {
            db.query_row(
                "SELECT EXISTS (SELECT 1 FROM sessions WHERE id = ?1)",
                [id],
                |r| r.get(0),
            )
        })
    }

    /// At most `limit` sessions in the order they docked, after session `after`; `next` names
    /// the last row read when there may be more.
    pub fn sessions_page(
        &self,
        after: Option<&str>,
        limit: u64,
    ) -> Result<Page<SessionRow>, JournalError> {
        self.with(|db| {
            let mut st = db.prepare_cached(
                "SELECT id, device, slot, driver, state, docked_at, released_at, clock_offset_ms, files, bytes, failed, skipped, error
                 FROM sessions
                 WHERE ?1 IS NULL OR (docked_at, id) > (SELECT docked_at, id FROM sessions WHERE id = ?1)
                 ORDER BY docked_at, id LIMIT ?2",
            )?;
            let rows = st.query_map(params![after, limit.min(i64::MAX as u64) as i64], |r| {
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
            let (mut read, mut last) = (0u64, None);
            for row in rows {
                let (id, device, slot, driver, state, docked, released, off, c, error) = row?;
                read += 1;
                last = Some(id.clone());
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
            Ok(Page {
                rows: out,
                next: last.filter(|_| read == limit),
            })
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
}
