//! The `acquired` table: what each device's files became (the re-dock index), so a file met
//! again is recognised instead of copied twice.

use super::Previous;
use super::{Journal, JournalError, Undecodable};
use evidock_verify::id::{DeviceSerial, EvidenceId};
use rusqlite::{OptionalExtension as _, params};

impl Journal {
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
}
