//! Reading the index's rows: an event by seq or by key, leaves in order, whether a range holds
//! evidence, the key in force. Each read of the database is limited to what this process has
//! committed or read itself: rows another process committed since are read from the file first.

use super::{IndexError, LogIndex, hash_of};
use evidock_verify::merkle::Hash;
use evidock_verify::note::VerifierKey;
use rusqlite::OptionalExtension;

/// One event's row, as the index holds it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(in crate::log) struct Row {
    pub seq: u64,
    pub start: u64,
    pub len: u64,
    pub leaf: Hash,
    pub key: [u8; 16],
    pub time_record: bool,
}

impl LogIndex {
    /// The first event under this key hash, if any.
    pub(in crate::log) fn seq_of_key(&self, key: &[u8; 16]) -> Result<Option<u64>, IndexError> {
        let found: Option<i64> = self
            .db
            .prepare_cached("SELECT seq FROM events WHERE key = ?1 ORDER BY seq LIMIT 1")
            .and_then(|mut s| s.query_row([&key[..]], |r| r.get(0)).optional())
            .map_err(|e| self.db_err(e))?;
        // Another process may have committed events this one has not read yet.
        match found.map(|s| s as u64).filter(|s| *s < self.committed) {
            Some(seq) => Ok(Some(seq)),
            None => Ok(self.pending_keys.get(key).copied()),
        }
    }

    /// Event `seq`: where its line starts, its length and its leaf hash.
    pub(in crate::log) fn entry(&self, seq: u64) -> Result<Option<(u64, u64, Hash)>, IndexError> {
        if seq >= self.size() {
            return Ok(None);
        }
        if seq >= self.committed {
            let e = &self.pending[(seq - self.committed) as usize].entry;
            return Ok(Some((e.start, e.len, e.leaf)));
        }
        let row: Option<(i64, i64, Vec<u8>)> = self
            .db
            .prepare_cached("SELECT start, len, leaf FROM events WHERE seq = ?1")
            .and_then(|mut s| {
                s.query_row([seq as i64], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)))
                    .optional()
            })
            .map_err(|e| self.db_err(e))?;
        let (start, len, leaf) =
            row.ok_or_else(|| self.damaged(format!("event #{seq} is missing")))?;
        let leaf = hash_of(leaf).ok_or_else(|| self.damaged(format!("event #{seq}'s leaf")))?;
        // A place inside the indexed bytes, of a length an event can have: a row that says
        // otherwise would seek nowhere or allocate what it claims (invariant 6).
        let place = u64::try_from(start)
            .ok()
            .zip(u64::try_from(len).ok())
            .filter(|(s, l)| {
                *l > 0
                    && *l <= evidock_verify::event::MAX_EVENT_BYTES as u64 + 1
                    && s.checked_add(*l)
                        .is_some_and(|end| end <= self.committed_len)
            });
        let (start, len) =
            place.ok_or_else(|| self.damaged(format!("event #{seq}'s place ({start}, {len})")))?;
        Ok(Some((start, len, leaf)))
    }

    /// The leaf hashes of events `from..to` (within the index), in order, one at a time.
    /// Stops early, without an error, when `f` returns `false`.
    pub(in crate::log) fn for_each_leaf(
        &self,
        from: u64,
        to: u64,
        mut f: impl FnMut(u64, Hash) -> Result<bool, crate::log::LogError>,
    ) -> Result<(), crate::log::LogError> {
        self.for_each_row(from, to, |row| f(row.seq, row.leaf))
    }

    /// The rows of events `from..to` (within the index), in order, one at a time.
    /// Stops early, without an error, when `f` returns `false`.
    pub(in crate::log) fn for_each_row(
        &self,
        from: u64,
        to: u64,
        mut f: impl FnMut(&Row) -> Result<bool, crate::log::LogError>,
    ) -> Result<(), crate::log::LogError> {
        let to = to.min(self.size());
        let db_to = to.min(self.committed);
        if from < db_to {
            let mut stmt = self
                .db
                .prepare_cached(
                    "SELECT seq, start, len, leaf, key, time_record FROM events
                     WHERE seq >= ?1 AND seq < ?2 ORDER BY seq",
                )
                .map_err(|e| self.db_err(e))?;
            let mut rows = stmt
                .query([from as i64, db_to as i64])
                .map_err(|e| self.db_err(e))?;
            let mut expect = from;
            while let Some(r) = rows.next().map_err(|e| self.db_err(e))? {
                let read = (|| -> rusqlite::Result<_> {
                    Ok((
                        r.get::<_, i64>(0)?,
                        r.get::<_, i64>(1)?,
                        r.get::<_, i64>(2)?,
                        r.get::<_, Vec<u8>>(3)?,
                        r.get::<_, Vec<u8>>(4)?,
                        r.get::<_, bool>(5)?,
                    ))
                })();
                let (seq, start, len, leaf, key, time_record) = read.map_err(|e| self.db_err(e))?;
                if seq as u64 != expect {
                    return Err(self.damaged(format!("event #{expect} is missing")).into());
                }
                let row = (|| {
                    Some(Row {
                        seq: expect,
                        start: u64::try_from(start).ok()?,
                        len: u64::try_from(len).ok()?,
                        leaf: hash_of(leaf)?,
                        key: key.try_into().ok()?,
                        time_record,
                    })
                })()
                .ok_or_else(|| self.damaged(format!("event #{expect}'s row")))?;
                if !f(&row)? {
                    return Ok(());
                }
                expect += 1;
            }
            if expect != db_to {
                return Err(self.damaged(format!("event #{expect} is missing")).into());
            }
        }
        for seq in from.max(self.committed)..to {
            let e = &self.pending[(seq - self.committed) as usize].entry;
            let row = Row {
                seq,
                start: e.start,
                len: e.len,
                leaf: e.leaf,
                key: e.key,
                time_record: e.time_record,
            };
            if !f(&row)? {
                break;
            }
        }
        Ok(())
    }

    /// The key rotations among events `from..to`, in order.
    pub(in crate::log) fn rotations_in(
        &self,
        from: u64,
        to: u64,
    ) -> Result<Vec<(u64, VerifierKey)>, IndexError> {
        let to = to.min(self.size());
        let db_to = to.min(self.committed);
        let mut out = Vec::new();
        if from < db_to {
            let mut stmt = self
                .db
                .prepare_cached(
                    "SELECT seq, key FROM rotations WHERE seq >= ?1 AND seq < ?2 ORDER BY seq",
                )
                .map_err(|e| self.db_err(e))?;
            let rows = stmt
                .query_map([from as i64, db_to as i64], |r| {
                    Ok((r.get::<_, i64>(0)?, r.get::<_, String>(1)?))
                })
                .map_err(|e| self.db_err(e))?;
            for r in rows {
                let (seq, k) = r.map_err(|e| self.db_err(e))?;
                let key = VerifierKey::parse(&k)
                    .map_err(|_| self.damaged(format!("the key rotated to at event #{seq}")))?;
                out.push((seq as u64, key));
            }
        }
        for seq in from.max(self.committed)..to {
            if let Some(k) = &self.pending[(seq - self.committed) as usize].entry.rotation {
                out.push((seq, k.clone()));
            }
        }
        Ok(out)
    }

    /// Whether some event in `from..to` is not a `timestamped` event.
    pub(in crate::log) fn any_evidence(&self, from: u64, to: u64) -> Result<bool, IndexError> {
        let to = to.min(self.size());
        let db_to = to.min(self.committed);
        if from < db_to {
            let found: bool = self
                .db
                .prepare_cached(
                    "SELECT EXISTS (SELECT 1 FROM events WHERE seq >= ?1 AND seq < ?2 AND time_record = 0)",
                )
                .and_then(|mut s| s.query_row([from as i64, db_to as i64], |r| r.get(0)))
                .map_err(|e| self.db_err(e))?;
            if found {
                return Ok(true);
            }
        }
        Ok((from.max(self.committed)..to).any(|seq| {
            !self.pending[(seq - self.committed) as usize]
                .entry
                .time_record
        }))
    }

    /// The last key rotation among the first `size` events: (its seq, the new key).
    pub(in crate::log) fn rotation_before(
        &self,
        size: u64,
    ) -> Result<Option<(u64, VerifierKey)>, IndexError> {
        let size = size.min(self.size());
        for seq in (self.committed..size).rev() {
            if let Some(k) = &self.pending[(seq - self.committed) as usize].entry.rotation {
                return Ok(Some((seq, k.clone())));
            }
        }
        let row: Option<(i64, String)> = self
            .db
            .prepare_cached(
                "SELECT seq, key FROM rotations WHERE seq < ?1 ORDER BY seq DESC LIMIT 1",
            )
            .and_then(|mut s| {
                s.query_row([size.min(self.committed) as i64], |r| {
                    Ok((r.get(0)?, r.get(1)?))
                })
                .optional()
            })
            .map_err(|e| self.db_err(e))?;
        match row {
            None => Ok(None),
            Some((seq, k)) => {
                let key = VerifierKey::parse(&k)
                    .map_err(|_| self.damaged(format!("the key rotated to at event #{seq}")))?;
                Ok(Some((seq as u64, key)))
            }
        }
    }
}
