//! The log's index, beside `events.jsonl` in `.index.sqlite`: every event's offset, leaf hash,
//! idempotency key and whether it records time; every complete Merkle subtree hash; every key
//! rotation. With it a log opens, appends and proves in time that does not grow with its history
//! (the frontier, at most 64 hashes, is all it holds in memory).
//!
//! It is a cache of `events.jsonl`, never evidence: a row is committed only after the event's
//! line is fsynced, so the index is never ahead of the durable events; when it is missing, behind
//! or does not match the file it is caught up or rebuilt from the file (`open.rs`). Several
//! processes of one station write it; each commits the rows it read or wrote, and a row another
//! process committed first is compared with its own: a disagreement rebuilds the index.

use evidock_verify::merkle::{self, Hash, NodeSource};
use evidock_verify::note::VerifierKey;
use rusqlite::{Connection, OptionalExtension, params};
use std::collections::{HashMap, VecDeque};
use std::path::{Path, PathBuf};

/// The index file in a log directory (a dotfile: log checks skip it, as the lock).
pub const INDEX_FILE: &str = ".index.sqlite";

mod read;
mod rebuild;
pub(super) use read::Row;
mod tree;

/// Events read or written but not committed that a log holds before it refuses more: a database
/// that cannot be written must not grow memory with history (invariant 6).
#[cfg(not(test))]
pub(super) const PENDING_CAP: u64 = 65_536;
#[cfg(test)]
pub(super) const PENDING_CAP: u64 = 64;

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
    /// Another process rebuilt the index since this one read it: nothing was written, and the
    /// log reads the index afresh before its next append.
    #[error(
        "custody log index {path}: another process rebuilt it; read afresh before the next write"
    )]
    Stale { path: PathBuf },
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
    /// How many times the database was reset, when it was loaded: another process that resets
    /// and rebuilds it leaves rows this one counted as committed missing for a while.
    generation: u64,
    /// A row this process was to commit that another had committed otherwise: the index is
    /// rebuilt from the file before anything more is written.
    disagreed: Option<String>,
    /// Why the index was started afresh when it was opened, and where the old one was kept.
    started_afresh: Option<(String, PathBuf)>,
    /// The first damage a read found (a row that is not what it points at): the log rebuilds
    /// the index at its next write, unless another process's rebuild explains it.
    damage_seen: std::sync::OnceLock<String>,
    /// The database file's inode when it was opened: another process that found it unreadable
    /// replaces it.
    inode: Option<u64>,
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

fn inode_of(path: &Path) -> Option<u64> {
    use std::os::unix::fs::MetadataExt;
    std::fs::metadata(path).ok().map(|m| m.ino())
}

impl IndexError {
    /// The index is wrong (not the disk or the database engine failing): rebuilding it from
    /// the file is the answer.
    pub(super) fn rebuilds(&self) -> bool {
        matches!(self, IndexError::Damaged { .. } | IndexError::Beyond { .. }) || self.unreadable()
    }

    /// The database file is not a database, or not one of ours (a value of the wrong type, a
    /// table of another shape, a corrupt page): start it afresh. Only what the disk or the
    /// engine does for a while (busy, locked, full, I/O, permissions) is reported, and the file
    /// left alone.
    fn unreadable(&self) -> bool {
        use rusqlite::ErrorCode as C;
        match self {
            IndexError::Db {
                source: rusqlite::Error::SqliteFailure(f, _),
                ..
            } => !matches!(
                f.code,
                C::DatabaseBusy
                    | C::DatabaseLocked
                    | C::DiskFull
                    | C::SystemIoFailure
                    | C::PermissionDenied
                    | C::ReadOnly
                    | C::CannotOpen
                    | C::OutOfMemory
                    | C::OperationInterrupted
                    | C::FileLockingProtocolFailed
            ),
            IndexError::Db { source, .. } => matches!(
                source,
                rusqlite::Error::InvalidColumnType(..)
                    | rusqlite::Error::FromSqlConversionFailure(..)
                    | rusqlite::Error::IntegralValueOutOfRange(..)
                    | rusqlite::Error::InvalidColumnName(..)
                    | rusqlite::Error::InvalidColumnIndex(..)
                    | rusqlite::Error::QueryReturnedNoRows
            ),
            IndexError::Damaged { .. } => true,
            IndexError::Beyond { .. } | IndexError::Stale { .. } => false,
        }
    }
}

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
            Err(e) if !e.unreadable() => Err(e),
            Err(e) => {
                // Kept, as every index replaced is: moved whole, nothing read or copied.
                let kept = rebuild::move_aside(&path, &dir.join("quarantine"))?;
                tracing::warn!(index = %path.display(), error = %e, kept = %kept.display(), "custody log index unreadable; starting it afresh");
                let mut ix = Self::open_at(&path)?;
                ix.started_afresh = Some((e.to_string(), kept));
                Ok(ix)
            }
        }
    }

    fn open_at(path: &Path) -> Result<Self, IndexError> {
        let db_err = |source| IndexError::Db {
            path: path.to_path_buf(),
            source,
        };
        let db = Connection::open(path).map_err(db_err)?;
        db.busy_timeout(std::time::Duration::from_secs(10))
            .map_err(db_err)?;
        // Nothing but what SCHEMA makes, each of its own type (a view named `events` would
        // pass for the table), looked at before anything is written to the file: a trigger
        // would rewrite every row a rebuild writes, and a file set aside is kept as it was.
        let foreign: Option<String> = db
            .query_row(
                "SELECT type || ' ' || name FROM sqlite_master
                 WHERE NOT ((type = 'table' AND name IN ('meta', 'events', 'nodes', 'rotations'))
                         OR (type = 'index' AND name = 'events_key')
                         OR (type = 'index' AND name LIKE 'sqlite_autoindex_%'))
                 LIMIT 1",
                [],
                |r| r.get(0),
            )
            .optional()
            .map_err(db_err)?;
        if let Some(what) = foreign {
            return Err(IndexError::Damaged {
                path: path.to_path_buf(),
                what: format!("it holds a {what} the log never made"),
            });
        }
        // WAL: readers never block the writer. NORMAL: a commit lost to a power cut only leaves
        // the index behind the events, which the next open catches up.
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
            generation: 0,
            disagreed: None,
            started_afresh: None,
            damage_seen: std::sync::OnceLock::new(),
            inode: inode_of(path),
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
        type Read = (u64, u64, u64, Option<(i64, i64)>);
        let read = (|| -> Result<Read, IndexError> {
            let generation = meta("generation")?;
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
            Ok((generation, size, meta("len")?, last))
        })();
        let _ = self.db.execute_batch("COMMIT");
        let (generation, size, len, last) = read?;
        self.generation = generation;
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
        self.disagreed = None;
        self.damage_seen.take();
        let mut before = 0u64;
        for level in (0..64u32).rev() {
            if size & (1u64 << level) != 0 {
                match self.node(level, before >> level) {
                    Ok(hash) => self.frontier.push((level, hash)),
                    // Kept for the log to set aside before it rebuilds.
                    Err(IndexError::Damaged { what, .. }) => {
                        self.suspect.get_or_insert(what);
                    }
                    Err(e) => return Err(e),
                }
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

    /// A damage found, noted so that the log rebuilds the index at its next write.
    pub(super) fn damaged(&self, what: String) -> IndexError {
        let _ = self.damage_seen.set(what.clone());
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

    /// Why the index was started afresh when it was opened, and where the old one is kept.
    pub(super) fn take_started_afresh(&mut self) -> Option<(String, PathBuf)> {
        self.started_afresh.take()
    }

    /// The first damage a read of this index found since it was loaded.
    pub(super) fn damage_seen(&self) -> Option<&str> {
        self.damage_seen.get().map(String::as_str)
    }

    /// Why a commit found the database disagreeing with what this process read, if one did.
    pub(super) fn disagreed(&self) -> Option<&str> {
        self.disagreed.as_deref()
    }

    /// Events the database holds (the rest wait for an fsync).
    pub(super) fn committed(&self) -> u64 {
        self.committed
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
        // Rows are counted from where this process last read the index; after another's rebuild
        // that place may not be the database's, and rows written from it would leave a gap.
        let generation: Option<i64> = tx
            .query_row(
                "SELECT value FROM meta WHERE name = 'generation'",
                [],
                |r| r.get(0),
            )
            .optional()
            .map_err(db_err)?;
        // And the file must still be the one this process opened: rows for one moved aside
        // would land in the copy kept.
        if generation.unwrap_or(0).max(0) as u64 != self.generation
            || inode_of(&self.path) != self.inode
        {
            return Err(IndexError::Stale { path });
        }
        {
            let mut events = tx
                .prepare_cached(
                    "INSERT INTO events (seq, start, len, leaf, key, time_record)
                     VALUES (?1, ?2, ?3, ?4, ?5, ?6) ON CONFLICT DO NOTHING",
                )
                .map_err(db_err)?;
            let mut nodes = tx
                .prepare_cached(
                    "INSERT INTO nodes (level, idx, hash) VALUES (?1, ?2, ?3) ON CONFLICT DO NOTHING",
                )
                .map_err(db_err)?;
            let mut rotations = tx
                .prepare_cached(
                    "INSERT INTO rotations (seq, key) VALUES (?1, ?2) ON CONFLICT DO NOTHING",
                )
                .map_err(db_err)?;
            // A row another process committed first must be the row this one read: both read
            // the same durable lines. One that is not means the index or the file changed under
            // one of them.
            let mut event_was = tx
                .prepare_cached(
                    "SELECT start, len, leaf, key, time_record FROM events WHERE seq = ?1",
                )
                .map_err(db_err)?;
            let mut node_was = tx
                .prepare_cached("SELECT hash FROM nodes WHERE level = ?1 AND idx = ?2")
                .map_err(db_err)?;
            let mut rotation_was = tx
                .prepare_cached("SELECT key FROM rotations WHERE seq = ?1")
                .map_err(db_err)?;
            let mut disagree = None;
            for (i, p) in self.pending.iter().take(n).enumerate() {
                let seq = self.committed + i as u64;
                let e = &p.entry;
                let row = (
                    e.start as i64,
                    e.len as i64,
                    e.leaf.0.to_vec(),
                    e.key.to_vec(),
                    e.time_record,
                );
                let added = events
                    .execute(params![seq as i64, row.0, row.1, row.2, row.3, row.4])
                    .map_err(db_err)?;
                if added == 0 {
                    let was: (i64, i64, Vec<u8>, Vec<u8>, bool) = event_was
                        .query_row([seq as i64], |r| {
                            Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?, r.get(4)?))
                        })
                        .map_err(db_err)?;
                    if was != row {
                        disagree.get_or_insert(format!("event #{seq}"));
                    }
                }
                for (l, h) in p.nodes.iter().enumerate() {
                    let level = l as u32 + 1;
                    let at = params![level, (seq >> level) as i64];
                    let added = nodes
                        .execute(params![level, (seq >> level) as i64, &h.0[..]])
                        .map_err(db_err)?;
                    if added == 0 {
                        let was: Vec<u8> = node_was.query_row(at, |r| r.get(0)).map_err(db_err)?;
                        if was != h.0 {
                            disagree.get_or_insert(format!("subtree {level}/{}", seq >> level));
                        }
                    }
                }
                if let Some(k) = &e.rotation {
                    let added = rotations
                        .execute(params![seq as i64, k.to_string()])
                        .map_err(db_err)?;
                    if added == 0 {
                        let was: String = rotation_was
                            .query_row([seq as i64], |r| r.get(0))
                            .map_err(db_err)?;
                        if was != k.to_string() {
                            disagree.get_or_insert(format!("the key rotation at event #{seq}"));
                        }
                    }
                }
            }
            if let Some(what) = disagree {
                // Nothing of this commit is kept; the log rebuilds the index from the file.
                drop((events, nodes, rotations, event_was, node_was, rotation_was));
                drop(tx);
                let what = format!(
                    "{what} as another process committed it is not what this one read from events.jsonl"
                );
                self.disagreed = Some(what.clone());
                return Err(self.damaged(what));
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
}
