//! The case index's view of the evidence store: the objects of each item, which items share
//! content, and the legal holds to apply to them. Apart because it is what retention and
//! disposal ask, not what case views show.

use super::{Index, IndexError, StoredObject};
use evidock_verify::id::{EvidenceId, Sha256};
use rusqlite::{OptionalExtension as _, params};

impl Index {
    /// Objects of an item in the evidence store.
    pub fn objects(&self, evidence: &EvidenceId) -> Result<Vec<StoredObject>, IndexError> {
        self.with(|db| {
            let mut q = db.prepare(
                "SELECT role, key, sha256, size FROM objects WHERE evidence = ?1 ORDER BY role, key",
            )?;
            let rows = q.query_map([evidence.as_str()], |r| {
                Ok((|| {
                    Some(StoredObject {
                        role: r.get(0).ok()?,
                        key: r.get(1).ok()?,
                        sha256: r.get::<_, String>(2).ok()?.parse().ok()?,
                        size: r.get::<_, i64>(3).ok()? as u64,
                    })
                })())
            })?;
            rows.filter_map(|r| r.transpose()).collect()
        })
    }

    /// Items (not disposed) holding the same content, other than `evidence`.
    pub fn sharing_content(
        &self,
        sha256: &Sha256,
        evidence: &EvidenceId,
    ) -> Result<Vec<EvidenceId>, IndexError> {
        self.with(|db| {
            let mut q = db.prepare(
                "SELECT evidence FROM items WHERE sha256 = ?1 AND evidence != ?2 AND disposed_at IS NULL",
            )?;
            let rows = q.query_map(params![sha256.to_string(), evidence.as_str()], |r| {
                r.get::<_, String>(0)
            })?;
            Ok(rows
                .filter_map(|r| r.ok())
                .filter_map(|s| EvidenceId::new(s).ok())
                .collect())
        })
    }

    /// Whether an item other than `evidence`, not disposed of, has an object at `key`.
    pub fn sharing_objects(&self, key: &str, evidence: &EvidenceId) -> Result<bool, IndexError> {
        self.with(|db| {
            db.query_row(
                "SELECT EXISTS (SELECT 1 FROM objects o JOIN items i ON i.evidence = o.evidence
                   WHERE o.key = ?1 AND o.evidence != ?2 AND i.disposed_at IS NULL)",
                params![key, evidence.as_str()],
                |r| r.get::<_, bool>(0),
            )
        })
    }

    /// Store objects whose legal hold should change: (key, hold). An object is held while any
    /// item with it (content is shared) is on legal hold. What was applied is this station's
    /// memory of the store; after a rebuild it is empty and holds are applied again.
    pub fn holds_to_apply(&self) -> Result<Vec<(String, bool)>, IndexError> {
        self.with(|db| {
            let mut q = db.prepare(
                "SELECT o.key, MAX(i.legal_hold) AS want FROM objects o JOIN items i ON i.evidence = o.evidence
                 GROUP BY o.key
                 HAVING want != COALESCE((SELECT on_hold FROM holds_applied h WHERE h.key = o.key), 0)
                 ORDER BY o.key",
            )?;
            let rows = q.query_map([], |r| Ok((r.get::<_, String>(0)?, r.get::<_, bool>(1)?)))?;
            rows.collect()
        })
    }

    /// Remember a legal hold as applied to the store (`enforced`: the store can hold objects).
    pub fn hold_applied(&self, key: &str, on: bool, enforced: bool) -> Result<(), IndexError> {
        self.with(|db| {
            db.execute(
                "INSERT OR REPLACE INTO holds_applied (key, on_hold, enforced) VALUES (?1, ?2, ?3)",
                params![key, on, enforced],
            )
            .map(|_| ())
        })
    }

    /// The legal hold of `key` as last applied: (on, enforced by the store).
    pub fn hold_state(&self, key: &str) -> Result<Option<(bool, bool)>, IndexError> {
        self.with(|db| {
            db.query_row(
                "SELECT on_hold, enforced FROM holds_applied WHERE key = ?1",
                [key],
                |r| Ok((r.get::<_, bool>(0)?, r.get::<_, bool>(1)?)),
            )
            .optional()
        })
    }
}
