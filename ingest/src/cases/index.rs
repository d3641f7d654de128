//! The case index: cases, links, retention and evidence facts, projected from custody events.
//!
//! Everything here is a cache of what the custody logs say (`case-registered`, `linked`,
//! `unlinked`, `retention-changed`, `disposed`, `acquired`, `uploaded`, `camera-assigned`): it
//! is kept in `<data dir>/index.db`, caught up from the station's log before every use, and
//! rebuilt from nothing by `evidock index rebuild` — from this station's log, or from every
//! station's log published in the evidence store. Nothing is written here that the logs do not
//! hold.

use crate::journal::Page;
use chrono::{DateTime, Utc};
use evidock_store::log::SharedLog;
use evidock_verify::case::{CaseRecord, CaseStatus};
use evidock_verify::event::{CustodyEvent, Timestamp};
use evidock_verify::id::{CaseId, DeviceSerial, EvidenceId, OfficerId, Sha256, StationId};
use rusqlite::{Connection, OptionalExtension as _, params};
use serde::Serialize;
use std::path::{Path, PathBuf};
use std::sync::Mutex;

mod apply;
mod objects;

use apply::apply;

#[derive(Debug, thiserror::Error)]
pub enum IndexError {
    #[error("case index {path}: {source} (it is a cache: `evidock index rebuild` makes it again)")]
    Db {
        path: PathBuf,
        #[source]
        source: rusqlite::Error,
    },
    #[error("reading the custody log for the case index: {0}")]
    Log(#[from] evidock_store::log::LogError),
}

/// Recordings longer than this are not believed: the end comes from a file time that the
/// camera's clock spoiled, and the recording counts as an instant.
const LONGEST_RECORDING_HOURS: i64 = 8;

/// Bumped whenever the tables below change.
const SCHEMA_VERSION: i64 = 5;

const SCHEMA: &str = r#"
PRAGMA journal_mode = WAL;
PRAGMA synchronous = NORMAL;
CREATE TABLE IF NOT EXISTS positions (station TEXT PRIMARY KEY, next_seq INTEGER NOT NULL);
CREATE TABLE IF NOT EXISTS event_refs (
  subject TEXT NOT NULL, station TEXT NOT NULL, seq INTEGER NOT NULL,
  PRIMARY KEY (subject, station, seq)
) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS items (
  evidence TEXT PRIMARY KEY, station TEXT NOT NULL, seq INTEGER NOT NULL, acquired_at TEXT NOT NULL,
  sha256 TEXT NOT NULL, size INTEGER NOT NULL, device TEXT NOT NULL, officer TEXT, officer_source TEXT,
  path TEXT NOT NULL, recorded_raw TEXT, start_utc TEXT, end_utc TEXT, time_rule TEXT,
  important INTEGER NOT NULL, session TEXT NOT NULL,
  category TEXT, retain_until TEXT, legal_hold INTEGER NOT NULL DEFAULT 0, retention_ref TEXT,
  disposed_at TEXT, disposed_reason TEXT
);
CREATE INDEX IF NOT EXISTS items_start ON items(start_utc);
CREATE INDEX IF NOT EXISTS items_sha256 ON items(sha256);
CREATE TABLE IF NOT EXISTS objects (
  evidence TEXT NOT NULL, role TEXT NOT NULL, key TEXT NOT NULL, sha256 TEXT NOT NULL, size INTEGER NOT NULL,
  PRIMARY KEY (evidence, role, key)
);
CREATE TABLE IF NOT EXISTS cases (
  case_id TEXT PRIMARY KEY, record TEXT NOT NULL, status TEXT NOT NULL, registered_at TEXT NOT NULL,
  registrations INTEGER NOT NULL, source TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS case_windows (case_id TEXT NOT NULL, start_utc TEXT NOT NULL, end_utc TEXT NOT NULL);
CREATE INDEX IF NOT EXISTS case_windows_case ON case_windows(case_id);
CREATE TABLE IF NOT EXISTS links (
  evidence TEXT NOT NULL, case_id TEXT NOT NULL, linked INTEGER NOT NULL, automatic INTEGER NOT NULL,
  review INTEGER NOT NULL, reason TEXT NOT NULL, actor TEXT NOT NULL, at TEXT NOT NULL,
  changes INTEGER NOT NULL, PRIMARY KEY (evidence, case_id)
);
CREATE INDEX IF NOT EXISTS links_case ON links(case_id);
CREATE TABLE IF NOT EXISTS holds_applied (key TEXT PRIMARY KEY, on_hold INTEGER NOT NULL, enforced INTEGER NOT NULL);
CREATE TABLE IF NOT EXISTS assignments (
  device TEXT NOT NULL, from_utc TEXT NOT NULL, officer TEXT NOT NULL, PRIMARY KEY (device, from_utc)
);
"#;

fn ts(t: DateTime<Utc>) -> String {
    Timestamp::from_datetime(t).to_string()
}

fn parse_ts(s: &str) -> Option<DateTime<Utc>> {
    s.parse::<Timestamp>().ok().map(|t| t.0)
}

/// One evidence item as the index knows it.
#[derive(Debug, Clone, Serialize)]
pub struct Item {
    pub evidence: EvidenceId,
    pub station: String,
    /// Position of its `acquired` event in its station's log.
    pub seq: u64,
    pub acquired_at: DateTime<Utc>,
    pub sha256: Sha256,
    pub size: u64,
    pub device: DeviceSerial,
    pub officer: Option<String>,
    pub officer_source: Option<String>,
    pub path: String,
    pub recorded_raw: Option<String>,
    /// Corrected start of the recording.
    pub start: Option<DateTime<Utc>>,
    /// Corrected end (the start, when the length is unknown).
    pub end: Option<DateTime<Utc>>,
    pub time_rule: Option<String>,
    pub important: bool,
    pub session: String,
    /// As last recorded by a `retention-changed` event (`None`: never changed).
    pub category: Option<String>,
    pub retain_until: Option<DateTime<Utc>>,
    pub legal_hold: bool,
    /// The last `retention-changed` event, as `<station>:<seq>` (`None`: never changed).
    pub retention_ref: Option<String>,
    pub disposed_at: Option<DateTime<Utc>>,
}

/// A case as the index knows it: the latest registration.
#[derive(Debug, Clone, Serialize)]
pub struct CaseEntry {
    pub record: CaseRecord,
    pub registered_at: DateTime<Utc>,
    /// How many `case-registered` events the case has.
    pub registrations: u64,
    /// The file the latest registration came from.
    pub source: String,
}

/// A link between an evidence item and a case (current or removed).
#[derive(Debug, Clone, Serialize)]
pub struct Link {
    pub evidence: EvidenceId,
    pub case: CaseId,
    /// `false`: unlinked (the pair is remembered so automatic linking leaves it alone).
    pub linked: bool,
    pub automatic: bool,
    pub review: bool,
    pub reason: String,
    pub actor: String,
    pub at: DateTime<Utc>,
    /// `linked` and `unlinked` events of the pair so far.
    pub changes: u64,
}

/// An uploaded object of an evidence item.
#[derive(Debug, Clone, Serialize)]
pub struct StoredObject {
    pub role: String,
    pub key: String,
    pub sha256: Sha256,
    pub size: u64,
}

pub struct Index {
    path: PathBuf,
    db: Mutex<Connection>,
}

impl std::fmt::Debug for Index {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Index").field("path", &self.path).finish()
    }
}

impl Index {
    pub fn open(path: &Path) -> Result<Self, IndexError> {
        let err = |source| IndexError::Db {
            path: path.to_path_buf(),
            source,
        };
        let db = crate::journal::open_db(path, "PRAGMA journal_mode = WAL;").map_err(err)?;
        // A cache: when its layout changes, it is dropped and rebuilt from the custody log.
        let version: i64 = db
            .query_row("PRAGMA user_version", [], |r| r.get(0))
            .map_err(err)?;
        if version != SCHEMA_VERSION {
            db.execute_batch(
                "DROP TABLE IF EXISTS positions; DROP TABLE IF EXISTS event_refs; DROP TABLE IF EXISTS items; DROP TABLE IF EXISTS objects;
                 DROP TABLE IF EXISTS cases; DROP TABLE IF EXISTS case_windows; DROP TABLE IF EXISTS links;
                 DROP TABLE IF EXISTS assignments; DROP TABLE IF EXISTS holds_applied;",
            )
            .map_err(err)?;
        }
        db.execute_batch(SCHEMA).map_err(err)?;
        db.execute_batch(&format!("PRAGMA user_version = {SCHEMA_VERSION};"))
            .map_err(err)?;
        Ok(Index {
            path: path.to_path_buf(),
            db: Mutex::new(db),
        })
    }

    fn with<R>(
        &self,
        f: impl FnOnce(&mut Connection) -> rusqlite::Result<R>,
    ) -> Result<R, IndexError> {
        let mut db = self.db.lock().unwrap_or_else(|p| p.into_inner());
        f(&mut db).map_err(|source| IndexError::Db {
            path: self.path.clone(),
            source,
        })
    }

    /// Forget everything (before a rebuild).
    pub fn clear(&self) -> Result<(), IndexError> {
        self.with(|db| {
            db.execute_batch(
                "DELETE FROM positions; DELETE FROM event_refs; DELETE FROM items; DELETE FROM objects; DELETE FROM cases;
                 DELETE FROM case_windows; DELETE FROM links; DELETE FROM assignments;
                 DELETE FROM holds_applied;",
            )
        })
    }

    /// Where the index stands in a station's log.
    pub fn position(&self, station: &StationId) -> Result<u64, IndexError> {
        self.with(|db| {
            db.query_row(
                "SELECT next_seq FROM positions WHERE station = ?1",
                [station.as_str()],
                |r| r.get::<_, i64>(0),
            )
            .optional()
            .map(|n| n.unwrap_or(0) as u64)
        })
    }

    /// Apply what this station's log holds beyond the index's position.
    pub fn catch_up(&self, log: &SharedLog) -> Result<u64, IndexError> {
        let (station, from) = log.with(|l| {
            l.refresh()?;
            Ok::<_, IndexError>((l.station().clone(), l.size()))
        })?;
        /// Events read and applied at a time: a rebuild over a long log holds no more.
        const BATCH: usize = 4096;
        let mut at = self.position(&station)?;
        let mut applied = 0;
        while at < from {
            let mut events = Vec::with_capacity(BATCH);
            log.with(|l| {
                l.scan_from(at, |e| {
                    events.push(e);
                    events.len() < BATCH
                })
            })?;
            let Some(last) = events.last().map(|e| e.seq) else {
                break;
            };
            applied += self.apply_all(&station, &events)?;
            at = last + 1;
        }
        Ok(applied)
    }

    /// The seqs of this station's events about an evidence item or a session, in order: an
    /// event whose subject it is, or whose payload names it.
    pub fn events_about(
        &self,
        station: &StationId,
        subjects: &[String],
    ) -> Result<Vec<u64>, IndexError> {
        self.with(|db| {
            let mut stmt = db
                .prepare_cached("SELECT seq FROM event_refs WHERE subject = ?1 AND station = ?2")?;
            let mut out = Vec::new();
            for s in subjects {
                let rows = stmt.query_map(params![s, station.as_str()], |r| r.get::<_, i64>(0))?;
                for r in rows {
                    out.push(r? as u64);
                }
            }
            out.sort_unstable();
            out.dedup();
            Ok(out)
        })
    }

    /// Apply events of `station`'s log, in order; those before the index's position are skipped.
    pub fn apply_all(
        &self,
        station: &StationId,
        events: &[CustodyEvent],
    ) -> Result<u64, IndexError> {
        self.with(|db| {
            // Immediate: a second process (the dock and a command) waits here, then reads the
            // position the first one left, so no event is applied twice.
            let tx = db.transaction_with_behavior(rusqlite::TransactionBehavior::Immediate)?;
            let mut next: u64 = tx
                .query_row(
                    "SELECT next_seq FROM positions WHERE station = ?1",
                    [station.as_str()],
                    |r| r.get::<_, i64>(0),
                )
                .optional()?
                .unwrap_or(0) as u64;
            let mut applied = 0;
            for ev in events {
                if ev.seq < next {
                    continue;
                }
                if ev.seq > next {
                    // A gap: stop here rather than build a view with a hole in it.
                    tracing::warn!(%station, expected = next, found = ev.seq, "custody events missing; the case index stops before the gap");
                    break;
                }
                apply(&tx, ev)?;
                next = ev.seq + 1;
                applied += 1;
            }
            tx.execute(
                "INSERT INTO positions (station, next_seq) VALUES (?1, ?2)
                 ON CONFLICT(station) DO UPDATE SET next_seq = excluded.next_seq",
                params![station.as_str(), next as i64],
            )?;
            tx.commit()?;
            if applied > 0 {
                evidock_store::crash_point!("index.caught-up");
            }
            Ok(applied)
        })
    }

    pub fn item(&self, evidence: &EvidenceId) -> Result<Option<Item>, IndexError> {
        self.with(|db| {
            db.query_row(
                &format!("SELECT {ITEM_COLUMNS} FROM items WHERE evidence = ?1"),
                [evidence.as_str()],
                item_row,
            )
            .optional()
            .map(Option::flatten)
        })
    }

    /// Every item, oldest acquisition first.
    pub fn items(&self) -> Result<Vec<Item>, IndexError> {
        self.with(|db| {
            let mut q = db.prepare(&format!(
                "SELECT {ITEM_COLUMNS} FROM items ORDER BY acquired_at, evidence"
            ))?;
            let rows = q.query_map([], item_row)?;
            rows.filter_map(|r| r.transpose()).collect()
        })
    }

    /// Items whose corrected recording time overlaps `from..=to`.
    pub fn items_between(
        &self,
        from: DateTime<Utc>,
        to: DateTime<Utc>,
    ) -> Result<Vec<Item>, IndexError> {
        // Starts are indexed; a recording is at most LONGEST_RECORDING_HOURS long.
        let earliest = from - chrono::Duration::hours(LONGEST_RECORDING_HOURS);
        self.with(|db| {
            let mut q = db.prepare(&format!(
                "SELECT {ITEM_COLUMNS} FROM items
                 WHERE start_utc >= ?1 AND start_utc <= ?2 AND end_utc >= ?3 AND disposed_at IS NULL
                 ORDER BY start_utc, evidence"
            ))?;
            let rows = q.query_map(params![ts(earliest), ts(to), ts(from)], item_row)?;
            rows.filter_map(|r| r.transpose()).collect()
        })
    }

    pub fn case(&self, case: &CaseId) -> Result<Option<CaseEntry>, IndexError> {
        self.with(|db| {
            db.query_row(
                "SELECT record, registered_at, registrations, source FROM cases WHERE case_id = ?1",
                [case.as_str()],
                case_row,
            )
            .optional()
            .map(Option::flatten)
        })
    }

    /// Every case, by ID.
    pub fn cases(&self) -> Result<Vec<CaseEntry>, IndexError> {
        Ok(self.cases_page(None, u64::MAX)?.rows)
    }

    /// At most `limit` cases in the order of their IDs, after case `after`; `next` names the
    /// last row read when there may be more.
    pub fn cases_page(
        &self,
        after: Option<&str>,
        limit: u64,
    ) -> Result<Page<CaseEntry>, IndexError> {
        self.with(|db| {
            let mut q = db.prepare_cached(
                "SELECT record, registered_at, registrations, source, case_id FROM cases
                 WHERE ?1 IS NULL OR case_id > ?1 ORDER BY case_id LIMIT ?2",
            )?;
            let mut rows = q.query(params![after, limit.min(i64::MAX as u64) as i64])?;
            let (mut out, mut read, mut last) = (Vec::new(), 0u64, None);
            while let Some(r) = rows.next()? {
                read += 1;
                last = Some(r.get::<_, String>(4)?);
                out.extend(case_row(r)?);
            }
            Ok(Page {
                rows: out,
                next: last.filter(|_| read == limit),
            })
        })
    }

    /// Links of a case (current and removed), by item.
    pub fn links_of_case(&self, case: &CaseId) -> Result<Vec<Link>, IndexError> {
        self.links_where("case_id = ?1", case.as_str())
    }

    /// Links of an item (current and removed), by case.
    pub fn links_of_item(&self, evidence: &EvidenceId) -> Result<Vec<Link>, IndexError> {
        self.links_where("evidence = ?1", evidence.as_str())
    }

    /// Every link (current and removed).
    pub fn links(&self) -> Result<Vec<Link>, IndexError> {
        self.links_where("?1 = ?1", "")
    }

    fn links_where(&self, cond: &str, arg: &str) -> Result<Vec<Link>, IndexError> {
        self.with(|db| {
            let mut q = db.prepare(&format!(
                "SELECT evidence, case_id, linked, automatic, review, reason, actor, at, changes
                 FROM links WHERE {cond} ORDER BY case_id, evidence"
            ))?;
            let rows = q.query_map([arg], |r| {
                Ok((|| {
                    Some(Link {
                        evidence: EvidenceId::new(r.get::<_, String>(0).ok()?).ok()?,
                        case: CaseId::new(r.get::<_, String>(1).ok()?).ok()?,
                        linked: r.get::<_, bool>(2).ok()?,
                        automatic: r.get::<_, bool>(3).ok()?,
                        review: r.get::<_, bool>(4).ok()?,
                        reason: r.get(5).ok()?,
                        actor: r.get(6).ok()?,
                        at: parse_ts(&r.get::<_, String>(7).ok()?)?,
                        changes: r.get::<_, i64>(8).ok()? as u64,
                    })
                })())
            })?;
            rows.filter_map(|r| r.transpose()).collect()
        })
    }

    /// Who carried `device` at `at`, by the latest assignment from before then.
    pub fn assigned_officer(
        &self,
        device: &DeviceSerial,
        at: DateTime<Utc>,
    ) -> Result<Option<OfficerId>, IndexError> {
        self.with(|db| {
            db.query_row(
                "SELECT officer FROM assignments WHERE device = ?1 AND from_utc <= ?2
                 ORDER BY from_utc DESC LIMIT 1",
                params![device.as_str(), ts(at)],
                |r| r.get::<_, String>(0),
            )
            .optional()
            .map(|o| o.and_then(|o| OfficerId::new(o).ok()))
        })
    }
}

const ITEM_COLUMNS: &str = "evidence, station, seq, acquired_at, sha256, size, device, officer,
  officer_source, path, recorded_raw, start_utc, end_utc, time_rule, important, session, category,
  retain_until, legal_hold, disposed_at, retention_ref";

fn item_row(r: &rusqlite::Row<'_>) -> rusqlite::Result<Option<Item>> {
    let opt_ts = |i: usize| {
        r.get::<_, Option<String>>(i)
            .ok()
            .flatten()
            .and_then(|s| parse_ts(&s))
    };
    Ok((|| {
        Some(Item {
            evidence: EvidenceId::new(r.get::<_, String>(0).ok()?).ok()?,
            station: r.get(1).ok()?,
            seq: r.get::<_, i64>(2).ok()? as u64,
            acquired_at: parse_ts(&r.get::<_, String>(3).ok()?)?,
            sha256: r.get::<_, String>(4).ok()?.parse().ok()?,
            size: r.get::<_, i64>(5).ok()? as u64,
            device: DeviceSerial::new(r.get::<_, String>(6).ok()?).ok()?,
            officer: r.get(7).ok()?,
            officer_source: r.get(8).ok()?,
            path: r.get(9).ok()?,
            recorded_raw: r.get(10).ok()?,
            start: opt_ts(11),
            end: opt_ts(12),
            time_rule: r.get(13).ok()?,
            important: r.get(14).ok()?,
            session: r.get(15).ok()?,
            category: r.get(16).ok()?,
            retain_until: opt_ts(17),
            legal_hold: r.get(18).ok()?,
            disposed_at: opt_ts(19),
            retention_ref: r.get(20).ok()?,
        })
    })())
}

fn case_row(r: &rusqlite::Row<'_>) -> rusqlite::Result<Option<CaseEntry>> {
    Ok((|| {
        Some(CaseEntry {
            record: serde_json::from_str(&r.get::<_, String>(0).ok()?).ok()?,
            registered_at: parse_ts(&r.get::<_, String>(1).ok()?)?,
            registrations: r.get::<_, i64>(2).ok()? as u64,
            source: r.get(3).ok()?,
        })
    })())
}

/// Whether any linked case is open (for legal hold).
pub fn any_open(cases: &[CaseEntry]) -> bool {
    cases.iter().any(|c| c.record.status == CaseStatus::Open)
}
