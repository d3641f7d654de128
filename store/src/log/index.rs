//! The log's index, beside `events.jsonl` in `.index.sqlite`: every event's offset, leaf hash,
//! idempotency key and whether it records time; every complete Merkle subtree hash; every key
//! rotation. With it a log opens, appends and proves in time that does not grow with its history
//! (the frontier, at most 64 hashes, is all it holds in memory).
//!
//! It is a cache of `events.jsonl`, never evidence: a row is committed only after the event's
//! line is fsynced, so the index is never ahead of the durable events; when it is missing, behind
//! or does not match the file it is caught up or rebuilt from the file (`open.rs`). Several
//! processes of one station write it; each commits the rows it read or wrote, and rows are the
//! same whoever computes them (`INSERT OR IGNORE`).

use evidock_verify::merkle::{self, Hash, NodeSource};
use evidock_verify::note::VerifierKey;
use rusqlite::{Connection, OptionalExtension, params};
use std::collections::{HashMap, VecDeque};
use std::path::{Path, PathBuf};

/// The index file in a log directory (a dotfile: log checks skip it, as the lock).
pub const INDEX_FILE: &str = ".index.sqlite";

mod tree;

/// Bumped when the schema changes: an index of another format is rebuilt.
const FORMAT: i64 = 1;

#[derive(Debug, thiserror::Error)]
pub enum IndexError {
    #[error("custody log index {path}: {source}")]
    Db {
        path: PathBuf,
        #[source]
        source: rusqlite::Error,
    },
    /// A row the index should hold is not there, or is not what it should be.
    #[error("custody log index {path}: {what}; it is rebuilt from events.jsonl on the next open")]
    Damaged { path: PathBuf, what: String },
    /// A root or proof was asked of a larger tree than the log holds.
    #[error("the custody log holds {holds} events, fewer than {size}")]
    Beyond { size: u64, holds: u64 },
}

/// One event as the index keeps it.
#[derive(Debug, Clone)]
pub(super) struct Entry {
    /// Where its line starts in `events.jsonl`.
    pub start: u64,
    /// Length of its line, newline included.
    pub len: u64,
    pub leaf: Hash,
    pub key: [u8; 16],
    /// A `timestamped` event: a record about time, not evidence.
    pub time_record: bool,
    /// The new key of a `key-rotated` event.
    pub rotation: Option<VerifierKey>,
}

/// An event not committed yet, with the subtree hashes its leaf completed (`nodes[l - 1]` is the
/// node at level `l`).
#[derive(Debug)]
struct Pending {
    entry: Entry,
    nodes: Vec<Hash>,
}

/// The index of one log, open.
pub struct LogIndex {
    path: PathBuf,
    db: Connection,
    /// Roots of the perfect subtrees the tree decomposes into, left to right: (level, hash).
    frontier: Vec<(u32, Hash)>,
    /// Events in the database.
    committed: u64,
    pending: VecDeque<Pending>,
    /// Keys of pending events (the first event under a key wins, as in the database).
    pending_keys: HashMap<[u8; 16], u64>,
    /// Bytes of `events.jsonl` the committed events take.
    committed_len: u64,
    /// Why the index as loaded cannot be right, if it cannot.
    suspect: Option<String>,
}

impl std::fmt::Debug for LogIndex {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("LogIndex")
            .field("path", &self.path)
            .field("committed", &self.committed)
            .field("pending", &self.pending.len())
            .finish()
    }
}

const SCHEMA: &str = "
CREATE TABLE IF NOT EXISTS meta (name TEXT PRIMARY KEY, value INTEGER NOT NULL) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS events (
    seq INTEGER PRIMARY KEY,
    start INTEGER NOT NULL,
    len INTEGER NOT NULL,
    leaf BLOB NOT NULL,
    key BLOB NOT NULL,
    time_record INTEGER NOT NULL
);
CREATE INDEX IF NOT EXISTS events_key ON events (key);
CREATE TABLE IF NOT EXISTS nodes (
    level INTEGER NOT NULL,
    idx INTEGER NOT NULL,
    hash BLOB NOT NULL,
    PRIMARY KEY (level, idx)
) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS rotations (seq INTEGER PRIMARY KEY, key TEXT NOT NULL);
";

fn hash_of(blob: Vec<u8>) -> Option<Hash> {
    Some(evidock_verify::id::Sha256(blob.try_into().ok()?))
}

impl LogIndex {
    /// Open the index in `dir`, creating it, or starting it afresh when it is unreadable or of
    /// another format (it is rebuilt from the events file by whoever opens the log).
    pub(super) fn open(dir: &Path) -> Result<Self, IndexError> {
        let path = dir.join(INDEX_FILE);
        match Self::open_at(&path) {
            Ok(ix) => Ok(ix),
            Err(e) => {
                tracing::warn!(index = %path.display(), error = %e, "custody log index unreadable; starting it afresh");
                for suffix in ["", "-wal", "-shm"] {
                    let p = PathBuf::from(format!("{}{suffix}", path.display()));
                    match std::fs::remove_file(&p) {
                        Ok(()) => {}
                        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
                        Err(e) => {
                            return Err(IndexError::Damaged {
                                path: p,
                                what: format!("cannot remove the unreadable index: {e}"),
                            });
                        }
                    }
                }
                Self::open_at(&path)
            }
        }
    }

    fn open_at(path: &Path) -> Result<Self, IndexError> {
        let db_err = |source| IndexError::Db {
            path: path.to_path_buf(),
            source,
        };
        let db = Connection::open(path).map_err(db_err)?;
        // WAL: readers never block the writer. NORMAL: a commit lost to a power cut only leaves
        // the index behind the events, which the next open catches up.
        db.busy_timeout(std::time::Duration::from_secs(10))
            .map_err(db_err)?;
        db.pragma_update(None, "journal_mode", "WAL")
            .map_err(db_err)?;
        db.pragma_update(None, "synchronous", "NORMAL")
            .map_err(db_err)?;
        db.execute_batch(SCHEMA).map_err(db_err)?;
        let format: Option<i64> = db
            .query_row("SELECT value FROM meta WHERE name = 'format'", [], |r| {
                r.get(0)
            })
            .optional()
            .map_err(db_err)?;
        match format {
            None => {
                db.execute(
                    "INSERT OR IGNORE INTO meta (name, value) VALUES ('format', ?1)",
                    [FORMAT],
                )
                .map_err(db_err)?;
            }
            Some(FORMAT) => {}
            Some(other) => {
                return Err(IndexError::Damaged {
                    path: path.to_path_buf(),
                    what: format!("format {other}, not {FORMAT}"),
                });
            }
        }
        let mut ix = LogIndex {
            path: path.to_path_buf(),
            db,
            frontier: Vec::new(),
            committed: 0,
            pending: VecDeque::new(),
            pending_keys: HashMap::new(),
            committed_len: 0,
            suspect: None,
        };
        ix.load()?;
        Ok(ix)
    }

    /// Read how far the database goes and the frontier of its tree.
    fn load(&mut self) -> Result<(), IndexError> {
        let meta = |name: &str| -> Result<u64, IndexError> {
            let v: Option<i64> = self
                .db
                .query_row("SELECT value FROM meta WHERE name = ?1", [name], |r| {
                    r.get(0)
                })
                .optional()
                .map_err(|e| self.db_err(e))?;
            Ok(v.unwrap_or(0).max(0) as u64)
        };
        // One read transaction: another process may commit between two reads, and a size from
        // before its commit with a length from after would start the next read mid-history.
        self.db.execute_batch("BEGIN").map_err(|e| self.db_err(e))?;
        type Read = (u64, u64, Option<(i64, i64)>);
        let read = (|| -> Result<Read, IndexError> {
            let size = meta("size")?;
            let last: Option<(i64, i64)> = self
                .db
                .query_row(
                    "SELECT start, len FROM events WHERE seq = ?1",
                    [size as i64 - 1],
                    |r| Ok((r.get(0)?, r.get(1)?)),
                )
                .optional()
                .map_err(|e| self.db_err(e))?;
            Ok((size, meta("len")?, last))
        })();
        let _ = self.db.execute_batch("COMMIT");
        let (size, len, last) = read?;
        // The length is where the last event ends, whatever the meta row says.
        // Not an error here: the log rebuilds it, keeping this one aside.
        self.suspect = (size > 0 && last.map(|(s, l)| (s + l) as u64) != Some(len)).then(|| {
            format!(
                "the index says it covers {len} bytes, but its event #{} ends elsewhere",
                size - 1
            )
        });
        self.committed = size;
        self.committed_len = len;
        self.pending.clear();
        self.pending_keys.clear();
        self.frontier.clear();
        let mut before = 0u64;
        for level in (0..64u32).rev() {
            if size & (1u64 << level) != 0 {
                let hash = self.node(level, before >> level)?;
                self.frontier.push((level, hash));
                before += 1u64 << level;
            }
        }
        Ok(())
    }

    fn db_err(&self, source: rusqlite::Error) -> IndexError {
        IndexError::Db {
            path: self.path.clone(),
            source,
        }
    }

    fn damaged(&self, what: String) -> IndexError {
        IndexError::Damaged {
            path: self.path.clone(),
            what,
        }
    }

    fn beyond(&self, size: u64) -> IndexError {
        IndexError::Beyond {
            size,
            holds: self.size(),
        }
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Events indexed (committed or pending).
    pub fn size(&self) -> u64 {
        self.committed + self.pending.len() as u64
    }

    /// Bytes of `events.jsonl` the indexed events take.
    pub fn len(&self) -> u64 {
        self.pending
            .back()
            .map_or(self.committed_len, |p| p.entry.start + p.entry.len)
    }

    pub fn is_empty(&self) -> bool {
        self.size() == 0
    }

    /// Why the index as loaded cannot be right, if it cannot.
    pub(super) fn suspect(&self) -> Option<&str> {
        self.suspect.as_deref()
    }

    /// Events the database holds (the rest wait for an fsync).
    pub(super) fn committed(&self) -> u64 {
        self.committed
    }

    /// Keep a copy of the index as it is in `dir` (before a rebuild replaces what it says: an
    /// index that disagrees with the file may be the only record of what the file held).
    pub(super) fn set_aside(&self, dir: &Path) -> Result<PathBuf, IndexError> {
        let to = dir.join(format!(
            "index-{}.sqlite",
            chrono::Utc::now().format("%Y%m%dT%H%M%S%.3fZ")
        ));
        self.db
            .execute("VACUUM INTO ?1", [to.to_string_lossy()])
            .map_err(|e| self.db_err(e))?;
        Ok(to)
    }

    /// Forget everything: the index is rebuilt from the events file.
    pub(super) fn reset(&mut self) -> Result<(), IndexError> {
        self.db
            .execute_batch(
                "BEGIN IMMEDIATE; DELETE FROM events; DELETE FROM nodes; DELETE FROM rotations;
                 DELETE FROM meta WHERE name IN ('size', 'len'); COMMIT;",
            )
            .map_err(|e| self.db_err(e))?;
        self.load()
    }

    /// Add the next event.
    pub(super) fn push(&mut self, entry: Entry) {
        let seq = self.size();
        let mut hash = entry.leaf;
        let mut level = 0u32;
        let mut nodes = Vec::new();
        // Each time a perfect subtree gains a sibling of its size, their parent is complete.
        while let Some(&(l, left)) = self.frontier.last() {
            if l != level {
                break;
            }
            self.frontier.pop();
            hash = merkle::node_hash(&left, &hash);
            level += 1;
            nodes.push(hash);
        }
        self.frontier.push((level, hash));
        self.pending_keys.entry(entry.key).or_insert(seq);
        self.pending.push_back(Pending { entry, nodes });
    }

    /// Commit the pending events below `size` (their lines are durable). On an error they stay
    /// pending, and the next commit tries again.
    pub(super) fn commit_through(&mut self, size: u64) -> Result<(), IndexError> {
        let n = size
            .saturating_sub(self.committed)
            .min(self.pending.len() as u64) as usize;
        if n == 0 {
            return Ok(());
        }
        let path = self.path.clone();
        let db_err = |source| IndexError::Db {
            path: path.clone(),
            source,
        };
        let end_len = {
            let last = &self.pending[n - 1].entry;
            last.start + last.len
        };
        let tx = self.db.transaction().map_err(db_err)?;
        {
            let mut events = tx
                .prepare_cached(
                    "INSERT OR IGNORE INTO events (seq, start, len, leaf, key, time_record)
                     VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
                )
                .map_err(db_err)?;
            let mut nodes = tx
                .prepare_cached(
                    "INSERT OR IGNORE INTO nodes (level, idx, hash) VALUES (?1, ?2, ?3)",
                )
                .map_err(db_err)?;
            let mut rotations = tx
                .prepare_cached("INSERT OR IGNORE INTO rotations (seq, key) VALUES (?1, ?2)")
                .map_err(db_err)?;
            for (i, p) in self.pending.iter().take(n).enumerate() {
                let seq = self.committed + i as u64;
                let e = &p.entry;
                events
                    .execute(params![
                        seq as i64,
                        e.start as i64,
                        e.len as i64,
                        &e.leaf.0[..],
                        &e.key[..],
                        e.time_record
                    ])
                    .map_err(db_err)?;
                for (l, h) in p.nodes.iter().enumerate() {
                    let level = l as u32 + 1;
                    nodes
                        .execute(params![level, (seq >> level) as i64, &h.0[..]])
                        .map_err(db_err)?;
                }
                if let Some(k) = &e.rotation {
                    rotations
                        .execute(params![seq as i64, k.to_string()])
                        .map_err(db_err)?;
                }
            }
            let mut meta = tx
                .prepare_cached(
                    "INSERT INTO meta (name, value) VALUES (?1, ?2)
                     ON CONFLICT (name) DO UPDATE SET value = max(value, excluded.value)",
                )
                .map_err(db_err)?;
            meta.execute(params!["size", (self.committed + n as u64) as i64])
                .map_err(db_err)?;
            meta.execute(params!["len", end_len as i64])
                .map_err(db_err)?;
        }
        tx.commit().map_err(db_err)?;
        for i in 0..n as u64 {
            if let Some(p) = self.pending.pop_front()
                && self.pending_keys.get(&p.entry.key) == Some(&(self.committed + i))
            {
                self.pending_keys.remove(&p.entry.key);
            }
        }
        self.committed += n as u64;
        self.committed_len = end_len;
        Ok(())
    }

    /// The first event under this key hash, if any.
    pub(super) fn seq_of_key(&self, key: &[u8; 16]) -> Result<Option<u64>, IndexError> {
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
    pub(super) fn entry(&self, seq: u64) -> Result<Option<(u64, u64, Hash)>, IndexError> {
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
        Ok(Some((start as u64, len as u64, leaf)))
    }

    /// The leaf hashes of events `from..to` (within the index), in order, one at a time.
    /// Stops early, without an error, when `f` returns `false`.
    pub(super) fn for_each_leaf(
        &self,
        from: u64,
        to: u64,
        mut f: impl FnMut(u64, Hash) -> Result<bool, super::LogError>,
    ) -> Result<(), super::LogError> {
        let to = to.min(self.size());
        let db_to = to.min(self.committed);
        if from < db_to {
            let mut stmt = self
                .db
                .prepare_cached(
                    "SELECT seq, leaf FROM events WHERE seq >= ?1 AND seq < ?2 ORDER BY seq",
                )
                .map_err(|e| self.db_err(e))?;
            let mut rows = stmt
                .query([from as i64, db_to as i64])
                .map_err(|e| self.db_err(e))?;
            let mut expect = from;
            while let Some(row) = rows.next().map_err(|e| self.db_err(e))? {
                let seq: i64 = row.get(0).map_err(|e| self.db_err(e))?;
                let leaf: Vec<u8> = row.get(1).map_err(|e| self.db_err(e))?;
                let leaf = hash_of(leaf)
                    .filter(|_| seq as u64 == expect)
                    .ok_or_else(|| self.damaged(format!("event #{expect} is missing")))?;
                if !f(expect, leaf)? {
                    return Ok(());
                }
                expect += 1;
            }
            if expect != db_to {
                return Err(self.damaged(format!("event #{expect} is missing")).into());
            }
        }
        for seq in from.max(self.committed)..to {
            if !f(
                seq,
                self.pending[(seq - self.committed) as usize].entry.leaf,
            )? {
                break;
            }
        }
        Ok(())
    }

    /// Whether some event in `from..to` is not a `timestamped` event.
    pub(super) fn any_evidence(&self, from: u64, to: u64) -> Result<bool, IndexError> {
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
    pub(super) fn rotation_before(
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
