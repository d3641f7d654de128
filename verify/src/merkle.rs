//! The RFC 9162 (RFC 6962) Merkle tree: hashes, inclusion proofs and consistency proofs.
//!
//! - leaf hash `= SHA-256(0x00 ‖ entry)`, node hash `= SHA-256(0x01 ‖ left ‖ right)`;
//! - the hash of the empty tree is `SHA-256("")`;
//! - a tree of `n > 1` leaves splits at `k`, the largest power of two below `n`.
//!
//! Proof *generation* reads complete subtree hashes through [`NodeSource`], so a log can keep
//! them wherever suits it; [`MemoryTree`] keeps them all in memory. Proof *verification* needs
//! nothing but the proof (RFC 9162 §2.1.3.2 and §2.1.4.2).

use crate::id::Sha256;
use sha2::Digest as _;

/// A Merkle tree hash.
pub type Hash = Sha256;

/// Hash of a leaf: `SHA-256(0x00 ‖ entry)`.
pub fn leaf_hash(entry: &[u8]) -> Hash {
    let mut h = sha2::Sha256::new();
    h.update([0u8]);
    h.update(entry);
    Sha256(h.finalize().into())
}

/// Hash of an interior node: `SHA-256(0x01 ‖ left ‖ right)`.
pub fn node_hash(left: &Hash, right: &Hash) -> Hash {
    let mut h = sha2::Sha256::new();
    h.update([1u8]);
    h.update(left.0);
    h.update(right.0);
    Sha256(h.finalize().into())
}

/// The hash of the empty tree.
pub fn empty_root() -> Hash {
    Sha256::digest(b"")
}

/// Largest power of two strictly less than `n` (n ≥ 2).
fn split(n: u64) -> u64 {
    debug_assert!(n >= 2);
    1u64 << (63 - (n - 1).leading_zeros())
}

/// Where complete subtree hashes come from.
pub trait NodeSource {
    type Error;
    /// The hash of the complete subtree of `2^level` leaves starting at leaf `index << level`.
    /// Only called for subtrees that lie entirely inside the tree being proved.
    fn node(&self, level: u32, index: u64) -> Result<Hash, Self::Error>;
}

/// `MTH(D[start..end])` for a range that occurs in the RFC 9162 decomposition.
pub fn subtree_hash<S: NodeSource + ?Sized>(
    src: &S,
    start: u64,
    end: u64,
) -> Result<Hash, S::Error> {
    let n = end - start;
    if n == 0 {
        return Ok(empty_root());
    }
    if n.is_power_of_two() && start.is_multiple_of(n) {
        return src.node(n.trailing_zeros(), start >> n.trailing_zeros());
    }
    let k = split(n);
    let left = subtree_hash(src, start, start + k)?;
    let right = subtree_hash(src, start + k, end)?;
    Ok(node_hash(&left, &right))
}

/// The root hash of the first `size` leaves.
pub fn root<S: NodeSource + ?Sized>(src: &S, size: u64) -> Result<Hash, S::Error> {
    subtree_hash(src, 0, size)
}

/// Errors in asking for a proof that cannot exist.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ProofRequestError<E> {
    #[error("leaf {index} is not in a tree of size {size}")]
    IndexOutOfRange { index: u64, size: u64 },
    #[error("cannot prove consistency from size {old} to the smaller size {new}")]
    Shrinking { old: u64, new: u64 },
    #[error(transparent)]
    Source(E),
}

/// The inclusion proof (audit path) of leaf `index` in the tree of the first `size` leaves.
pub fn inclusion_proof<S: NodeSource + ?Sized>(
    src: &S,
    index: u64,
    size: u64,
) -> Result<Vec<Hash>, ProofRequestError<S::Error>> {
    if index >= size {
        return Err(ProofRequestError::IndexOutOfRange { index, size });
    }
    let mut path = Vec::new();
    // Iterative PATH(m, D[start..end]); hashes are collected root-first, then reversed.
    let (mut m, mut start, mut end) = (index, 0u64, size);
    while end - start > 1 {
        let k = split(end - start);
        if m < k {
            path.push(subtree_hash(src, start + k, end).map_err(ProofRequestError::Source)?);
            end = start + k;
        } else {
            path.push(subtree_hash(src, start, start + k).map_err(ProofRequestError::Source)?);
            start += k;
            m -= k;
        }
    }
    path.reverse();
    Ok(path)
}

/// The consistency proof between the tree of the first `old` leaves and of the first `new`.
pub fn consistency_proof<S: NodeSource + ?Sized>(
    src: &S,
    old: u64,
    new: u64,
) -> Result<Vec<Hash>, ProofRequestError<S::Error>> {
    if old > new {
        return Err(ProofRequestError::Shrinking { old, new });
    }
    if old == 0 || old == new {
        return Ok(Vec::new());
    }
    let mut path = Vec::new();
    // Iterative SUBPROOF(m, D[start..end], complete).
    let (mut m, mut start, mut end, mut complete) = (old, 0u64, new, true);
    loop {
        if m == end - start {
            if !complete {
                path.push(subtree_hash(src, start, end).map_err(ProofRequestError::Source)?);
            }
            break;
        }
        let k = split(end - start);
        if m <= k {
            path.push(subtree_hash(src, start + k, end).map_err(ProofRequestError::Source)?);
            end = start + k;
        } else {
            path.push(subtree_hash(src, start, start + k).map_err(ProofRequestError::Source)?);
            start += k;
            m -= k;
            complete = false;
        }
    }
    path.reverse();
    Ok(path)
}

/// Why a proof does not verify.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ProofError {
    #[error("leaf index {index} is not below the tree size {size}")]
    IndexOutOfRange { index: u64, size: u64 },
    #[error("the proof has the wrong number of hashes for this index and size")]
    WrongLength,
    #[error("the proof leads to root {computed}, not the expected {expected}")]
    RootMismatch { computed: Hash, expected: Hash },
    #[error("old size {old} is larger than new size {new}")]
    Shrinking { old: u64, new: u64 },
    #[error("the proof does not lead to the old root")]
    OldRootMismatch,
    #[error("the proof does not lead to the new root")]
    NewRootMismatch,
}

/// The root an inclusion proof leads to (RFC 9162 §2.1.3.2), without comparing it.
pub fn root_from_inclusion_proof(
    leaf: &Hash,
    index: u64,
    size: u64,
    proof: &[Hash],
) -> Result<Hash, ProofError> {
    if index >= size {
        return Err(ProofError::IndexOutOfRange { index, size });
    }
    let (mut fnode, mut snode) = (index, size - 1);
    let mut r = *leaf;
    for p in proof {
        if snode == 0 {
            return Err(ProofError::WrongLength);
        }
        if fnode & 1 == 1 || fnode == snode {
            r = node_hash(p, &r);
            if fnode & 1 == 0 {
                while fnode & 1 == 0 && fnode != 0 {
                    fnode >>= 1;
                    snode >>= 1;
                }
            }
        } else {
            r = node_hash(&r, p);
        }
        fnode >>= 1;
        snode >>= 1;
    }
    if snode != 0 {
        return Err(ProofError::WrongLength);
    }
    Ok(r)
}

/// Verify that `leaf` is at `index` in the tree of `size` leaves with `root`.
pub fn verify_inclusion(
    leaf: &Hash,
    index: u64,
    size: u64,
    proof: &[Hash],
    root: &Hash,
) -> Result<(), ProofError> {
    let computed = root_from_inclusion_proof(leaf, index, size, proof)?;
    if &computed != root {
        return Err(ProofError::RootMismatch {
            computed,
            expected: *root,
        });
    }
    Ok(())
}

/// Verify that the tree (`old`, `old_root`) is a prefix of (`new`, `new_root`) (RFC 9162 §2.1.4.2).
pub fn verify_consistency(
    old: u64,
    new: u64,
    proof: &[Hash],
    old_root: &Hash,
    new_root: &Hash,
) -> Result<(), ProofError> {
    if old > new {
        return Err(ProofError::Shrinking { old, new });
    }
    if old == new {
        if !proof.is_empty() {
            return Err(ProofError::WrongLength);
        }
        return if old_root == new_root {
            Ok(())
        } else {
            Err(ProofError::NewRootMismatch)
        };
    }
    if old == 0 {
        // Every tree extends the empty tree, whose root is SHA-256(""): nothing to prove, but
        // an "old root" that is not the empty tree's is not the empty tree.
        return if !proof.is_empty() {
            Err(ProofError::WrongLength)
        } else if *old_root != empty_root() {
            Err(ProofError::OldRootMismatch)
        } else {
            Ok(())
        };
    }
    if proof.is_empty() {
        return Err(ProofError::WrongLength);
    }
    let mut path: Vec<Hash> = Vec::with_capacity(proof.len() + 1);
    if old.is_power_of_two() {
        path.push(*old_root);
    }
    path.extend_from_slice(proof);
    let (mut fnode, mut snode) = (old - 1, new - 1);
    while fnode & 1 == 1 {
        fnode >>= 1;
        snode >>= 1;
    }
    let (mut fr, mut sr) = (path[0], path[0]);
    for c in &path[1..] {
        if snode == 0 {
            return Err(ProofError::WrongLength);
        }
        if fnode & 1 == 1 || fnode == snode {
            fr = node_hash(c, &fr);
            sr = node_hash(c, &sr);
            if fnode & 1 == 0 {
                while fnode & 1 == 0 && fnode != 0 {
                    fnode >>= 1;
                    snode >>= 1;
                }
            }
        } else {
            sr = node_hash(&sr, c);
        }
        fnode >>= 1;
        snode >>= 1;
    }
    if snode != 0 {
        return Err(ProofError::WrongLength);
    }
    if &fr != old_root {
        return Err(ProofError::OldRootMismatch);
    }
    if &sr != new_root {
        return Err(ProofError::NewRootMismatch);
    }
    Ok(())
}

/// A tree that keeps every complete subtree hash in memory: `levels[l][i]` is the hash of the
/// complete subtree of `2^l` leaves starting at leaf `i << l`. Costs 64 bytes per leaf.
#[derive(Debug, Clone, Default)]
pub struct MemoryTree {
    levels: Vec<Vec<Hash>>,
}

impl MemoryTree {
    pub fn new() -> Self {
        Self::default()
    }

    /// Append a leaf by its leaf hash.
    pub fn push(&mut self, leaf: Hash) {
        if self.levels.is_empty() {
            self.levels.push(Vec::new());
        }
        self.levels[0].push(leaf);
        let mut level = 0;
        // Each time a level gains a right child, its parent becomes complete.
        while self.levels[level].len().is_multiple_of(2) {
            let n = self.levels[level].len();
            let parent = node_hash(&self.levels[level][n - 2], &self.levels[level][n - 1]);
            if self.levels.len() == level + 1 {
                self.levels.push(Vec::new());
            }
            self.levels[level + 1].push(parent);
            level += 1;
        }
    }

    /// Append an entry (hashing it as a leaf).
    pub fn push_entry(&mut self, entry: &[u8]) {
        self.push(leaf_hash(entry));
    }

    pub fn size(&self) -> u64 {
        self.levels.first().map_or(0, |l| l.len() as u64)
    }

    pub fn leaf(&self, index: u64) -> Option<Hash> {
        self.levels
            .first()?
            .get(usize::try_from(index).ok()?)
            .copied()
    }

    /// The root hash of the first `size` leaves (`size ≤ self.size()`).
    pub fn root_at(&self, size: u64) -> Result<Hash, MissingNode> {
        root(self, size)
    }

    pub fn root(&self) -> Hash {
        // Every node below the current size exists.
        root(self, self.size()).unwrap_or_else(|_| empty_root())
    }

    pub fn inclusion_proof(
        &self,
        index: u64,
        size: u64,
    ) -> Result<Vec<Hash>, ProofRequestError<MissingNode>> {
        if size > self.size() {
            return Err(ProofRequestError::Source(MissingNode { size }));
        }
        inclusion_proof(self, index, size)
    }

    pub fn consistency_proof(
        &self,
        old: u64,
        new: u64,
    ) -> Result<Vec<Hash>, ProofRequestError<MissingNode>> {
        if new > self.size() {
            return Err(ProofRequestError::Source(MissingNode { size: new }));
        }
        consistency_proof(self, old, new)
    }
}

/// A proof or root was asked for a tree larger than the one held.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("the tree holds fewer than {size} leaves")]
pub struct MissingNode {
    pub size: u64,
}

impl NodeSource for MemoryTree {
    type Error = MissingNode;
    fn node(&self, level: u32, index: u64) -> Result<Hash, MissingNode> {
        self.levels
            .get(level as usize)
            .and_then(|l| l.get(usize::try_from(index).ok()?))
            .copied()
            .ok_or(MissingNode {
                size: (index + 1) << level,
            })
    }
}

#[cfg(test)]
mod tests;
