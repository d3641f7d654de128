//! The index as a Merkle tree: the root from the frontier, roots and proofs of any size from
//! the stored subtree hashes, and the full re-check of those hashes. Apart from the storage of
//! rows because it is the part the proofs in a package come from.

use super::LogIndex;
use super::{IndexError, hash_of};
use evidock_verify::merkle::{self, Hash, NodeSource, ProofRequestError};
use rusqlite::{OptionalExtension, params};

impl LogIndex {
    /// Recompute every subtree hash from the leaves and compare it with the one stored: the
    /// whole index, not just what the last checkpoint's root is made from (`evidock log verify`).
    pub(in crate::log) fn check_nodes(&self) -> Result<(), crate::log::LogError> {
        self.check_nodes_from(0)
    }

    /// Recompute the subtree hashes the events from `from` on completed, starting from the
    /// subtrees the first `from` events decompose into, and compare them and the frontier with
    /// what the index holds. Those subtrees are what a root of size `from` is made from: once
    /// that root is checked against a signed checkpoint, this checks every node the next
    /// checkpoint's root and the proofs since are made from, reading only the tail.
    pub(in crate::log) fn check_nodes_from(&self, from: u64) -> Result<(), crate::log::LogError> {
        let mut frontier: Vec<(u32, Hash)> = Vec::new();
        let mut before = 0u64;
        for level in (0..64u32).rev() {
            if from & (1u64 << level) != 0 {
                frontier.push((level, self.node(level, before >> level)?));
                before += 1u64 << level;
            }
        }
        self.for_each_leaf(from, self.size(), |seq, leaf| {
            let (mut hash, mut level) = (leaf, 0u32);
            while let Some(&(l, left)) = frontier.last() {
                if l != level {
                    break;
                }
                frontier.pop();
                hash = merkle::node_hash(&left, &hash);
                level += 1;
                if self.node(level, seq >> level)? != hash {
                    return Err(self
                        .damaged(format!(
                            "subtree {level}/{} is not its leaves' hash",
                            seq >> level
                        ))
                        .into());
                }
            }
            frontier.push((level, hash));
            Ok(true)
        })?;
        if frontier != self.frontier {
            return Err(self.damaged("the frontier is not the tree's".into()).into());
        }
        Ok(())
    }

    /// The root hash of the whole tree, from the frontier.
    pub fn root(&self) -> Hash {
        let mut it = self.frontier.iter().rev();
        let Some(&(_, mut acc)) = it.next() else {
            return merkle::empty_root();
        };
        for (_, left) in it {
            acc = merkle::node_hash(left, &acc);
        }
        acc
    }

    /// The leaf hash of event `seq`.
    pub fn leaf(&self, seq: u64) -> Result<Option<Hash>, IndexError> {
        Ok(self.entry(seq)?.map(|(_, _, leaf)| leaf))
    }

    /// The root hash of the first `size` events.
    pub fn root_at(&self, size: u64) -> Result<Hash, IndexError> {
        if size > self.size() {
            return Err(self.beyond(size));
        }
        merkle::root(self, size)
    }

    pub fn inclusion_proof(
        &self,
        index: u64,
        size: u64,
    ) -> Result<Vec<Hash>, ProofRequestError<IndexError>> {
        if size > self.size() {
            return Err(ProofRequestError::Source(self.beyond(size)));
        }
        merkle::inclusion_proof(self, index, size)
    }

    pub fn consistency_proof(
        &self,
        old: u64,
        new: u64,
    ) -> Result<Vec<Hash>, ProofRequestError<IndexError>> {
        if new > self.size() {
            return Err(ProofRequestError::Source(self.beyond(new)));
        }
        merkle::consistency_proof(self, old, new)
    }
}

impl NodeSource for LogIndex {
    type Error = IndexError;

    fn node(&self, level: u32, index: u64) -> Result<Hash, IndexError> {
        // The leaf that completed this subtree.
        let last = ((index + 1) << level) - 1;
        if last >= self.size() {
            return Err(self.beyond(last + 1));
        }
        if level == 0 {
            return self
                .leaf(index)?
                .ok_or_else(|| self.damaged(format!("event #{index} is missing")));
        }
        if last >= self.committed {
            let p = &self.pending[(last - self.committed) as usize];
            return p
                .nodes
                .get(level as usize - 1)
                .copied()
                .ok_or_else(|| self.damaged(format!("subtree {level}/{index} was not built")));
        }
        let hash: Option<Vec<u8>> = self
            .db
            .prepare_cached("SELECT hash FROM nodes WHERE level = ?1 AND idx = ?2")
            .and_then(|mut s| {
                s.query_row(params![level, index as i64], |r| r.get(0))
                    .optional()
            })
            .map_err(|e| self.db_err(e))?;
        hash.and_then(hash_of)
            .ok_or_else(|| self.damaged(format!("subtree {level}/{index} is missing")))
    }
}
