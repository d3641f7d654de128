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
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn h(s: &str) -> Hash {
        s.parse().unwrap()
    }

    #[test]
    fn the_empty_tree_is_extended_only_from_its_own_root() {
        let mut t = MemoryTree::new();
        t.push_entry(b"a");
        assert!(verify_consistency(0, 1, &[], &empty_root(), &t.root()).is_ok());
        assert_eq!(
            verify_consistency(0, 1, &[], &Sha256::digest(b"garbage"), &t.root()),
            Err(ProofError::OldRootMismatch)
        );
    }

    /// The eight leaves of the RFC 6962 test vectors (certificate-transparency-go
    /// merkle/testonly and transparency-dev/merkle `testdata`).
    fn rfc6962_leaves() -> Vec<Vec<u8>> {
        [
            "",
            "00",
            "10",
            "2021",
            "3031",
            "40414243",
            "5051525354555657",
            "606162636465666768696a6b6c6d6e6f",
        ]
        .iter()
        .map(|x| hex::decode(x).unwrap())
        .collect()
    }

    fn tree(n: usize) -> MemoryTree {
        let mut t = MemoryTree::new();
        for e in rfc6962_leaves().iter().take(n) {
            t.push_entry(e);
        }
        t
    }

    #[test]
    fn published_roots() {
        let roots = [
            "6e340b9cffb37a989ca544e6bb780a2c78901d3fb33738768511a30617afa01d",
            "fac54203e7cc696cf0dfcb42c92a1d9dbaf70ad9e621f4bd8d98662f00e3c125",
            "aeb6bcfe274b70a14fb067a5e5578264db0fa9b51af5e0ba159158f329e06e77",
            "d37ee418976dd95753c1c73862b9398fa2a2cf9b4ff0fdfe8b30cd95209614b7",
            "4e3bbb1f7b478dcfe71fb631631519a3bca12c9aefca1612bfce4c13a86264d4",
            "76e67dadbcdf1e10e1b74ddc608abd2f98dfb16fbce75277b5232a127f2087ef",
            "ddb89be403809e325750d3d263cd78929c2942b7942a34b77e122c9594a74c8c",
            "5dc9da79a70659a9ad559cb701ded9a2ab9d823aad2f4960cfe370eff4604328",
        ];
        assert_eq!(
            MemoryTree::new().root().to_hex(),
            "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"
        );
        for (i, r) in roots.iter().enumerate() {
            assert_eq!(tree(i + 1).root(), h(r), "size {}", i + 1);
            assert_eq!(tree(8).root_at(i as u64 + 1).unwrap(), h(r));
        }
    }

    #[test]
    fn published_inclusion_proofs() {
        let t = tree(8);
        let cases: &[(u64, u64, &[&str])] = &[
            (0, 1, &[]),
            (
                0,
                8,
                &[
                    "96a296d224f285c67bee93c30f8a309157f0daa35dc5b87e410b78630a09cfc7",
                    "5f083f0a1a33ca076a95279832580db3e0ef4584bdff1f54c8a360f50de3031e",
                    "6b47aaf29ee3c2af9af889bc1fb9254dabd31177f16232dd6aab035ca39bf6e4",
                ],
            ),
            (
                5,
                8,
                &[
                    "bc1a0643b12e4d2d7c77918f44e0f4f79a838b6cf9ec5b5c283e1f4d88599e6b",
                    "ca854ea128ed050b41b35ffc1b87b8eb2bde461e9e3b5596ece6b9d5975a0ae0",
                    "d37ee418976dd95753c1c73862b9398fa2a2cf9b4ff0fdfe8b30cd95209614b7",
                ],
            ),
            (
                2,
                3,
                &["fac54203e7cc696cf0dfcb42c92a1d9dbaf70ad9e621f4bd8d98662f00e3c125"],
            ),
            (
                1,
                5,
                &[
                    "6e340b9cffb37a989ca544e6bb780a2c78901d3fb33738768511a30617afa01d",
                    "5f083f0a1a33ca076a95279832580db3e0ef4584bdff1f54c8a360f50de3031e",
                    "bc1a0643b12e4d2d7c77918f44e0f4f79a838b6cf9ec5b5c283e1f4d88599e6b",
                ],
            ),
        ];
        for (index, size, want) in cases {
            let want: Vec<Hash> = want.iter().map(|x| h(x)).collect();
            let got = t.inclusion_proof(*index, *size).unwrap();
            assert_eq!(got, want, "leaf {index} of {size}");
            let leaf = t.leaf(*index).unwrap();
            let root = t.root_at(*size).unwrap();
            verify_inclusion(&leaf, *index, *size, &got, &root).unwrap();
        }
    }

    #[test]
    fn published_consistency_proofs() {
        let t = tree(8);
        let cases: &[(u64, u64, &[&str])] = &[
            (1, 1, &[]),
            (
                1,
                8,
                &[
                    "96a296d224f285c67bee93c30f8a309157f0daa35dc5b87e410b78630a09cfc7",
                    "5f083f0a1a33ca076a95279832580db3e0ef4584bdff1f54c8a360f50de3031e",
                    "6b47aaf29ee3c2af9af889bc1fb9254dabd31177f16232dd6aab035ca39bf6e4",
                ],
            ),
            (
                6,
                8,
                &[
                    "0ebc5d3437fbe2db158b9f126a1d118e308181031d0a949f8dededebc558ef6a",
                    "ca854ea128ed050b41b35ffc1b87b8eb2bde461e9e3b5596ece6b9d5975a0ae0",
                    "d37ee418976dd95753c1c73862b9398fa2a2cf9b4ff0fdfe8b30cd95209614b7",
                ],
            ),
            (
                2,
                5,
                &[
                    "5f083f0a1a33ca076a95279832580db3e0ef4584bdff1f54c8a360f50de3031e",
                    "bc1a0643b12e4d2d7c77918f44e0f4f79a838b6cf9ec5b5c283e1f4d88599e6b",
                ],
            ),
        ];
        for (old, new, want) in cases {
            let want: Vec<Hash> = want.iter().map(|x| h(x)).collect();
            let got = t.consistency_proof(*old, *new).unwrap();
            assert_eq!(got, want, "{old} -> {new}");
            verify_consistency(
                *old,
                *new,
                &got,
                &t.root_at(*old).unwrap(),
                &t.root_at(*new).unwrap(),
            )
            .unwrap();
        }
    }

    #[test]
    fn bad_requests_and_proofs() {
        let t = tree(8);
        assert!(t.inclusion_proof(8, 8).is_err());
        assert!(t.inclusion_proof(0, 9).is_err());
        assert!(t.consistency_proof(5, 3).is_err());
        let leaf = t.leaf(3).unwrap();
        let root = t.root();
        let proof = t.inclusion_proof(3, 8).unwrap();
        assert_eq!(
            verify_inclusion(&leaf, 3, 8, &proof[..2], &root),
            Err(ProofError::WrongLength)
        );
        let mut longer = proof.clone();
        longer.push(root);
        assert_eq!(
            verify_inclusion(&leaf, 3, 8, &longer, &root),
            Err(ProofError::WrongLength)
        );
        assert!(verify_inclusion(&leaf, 2, 8, &proof, &root).is_err());
        assert!(verify_consistency(3, 8, &[], &t.root_at(3).unwrap(), &root).is_err());
        assert!(verify_consistency(0, 8, &[], &empty_root(), &root).is_ok());
    }

    fn build(entries: &[Vec<u8>]) -> MemoryTree {
        let mut t = MemoryTree::new();
        for e in entries {
            t.push_entry(e);
        }
        t
    }

    /// The naive recursive definition, to check the incremental tree against.
    fn naive_root(leaves: &[Hash]) -> Hash {
        match leaves.len() {
            0 => empty_root(),
            1 => leaves[0],
            n => {
                let k = split(n as u64) as usize;
                node_hash(&naive_root(&leaves[..k]), &naive_root(&leaves[k..]))
            }
        }
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(64))]

        // Any sequence of appends: every inclusion and consistency proof verifies.
        #[test]
        fn every_proof_verifies(entries in prop::collection::vec(prop::collection::vec(any::<u8>(), 0..8), 1..70)) {
            let t = build(&entries);
            let n = t.size();
            let leaves: Vec<Hash> = (0..n).map(|i| t.leaf(i).unwrap()).collect();
            for size in 1..=n {
                let root = t.root_at(size).unwrap();
                prop_assert_eq!(root, naive_root(&leaves[..size as usize]));
                for index in 0..size {
                    let p = t.inclusion_proof(index, size).unwrap();
                    prop_assert!(verify_inclusion(&leaves[index as usize], index, size, &p, &root).is_ok());
                }
                for old in 0..=size {
                    let p = t.consistency_proof(old, size).unwrap();
                    prop_assert!(verify_consistency(old, size, &p, &t.root_at(old).unwrap(), &root).is_ok());
                }
            }
        }

        // Any single-bit change anywhere in a proof, leaf or root: detected.
        #[test]
        fn any_bit_flip_is_detected(
            entries in prop::collection::vec(prop::collection::vec(any::<u8>(), 0..8), 2..40),
            pick in any::<prop::sample::Index>(),
            bit in 0usize..256,
            which in 0u8..3,
        ) {
            let t = build(&entries);
            let n = t.size();
            let index = pick.index(n as usize) as u64;
            let root = t.root();
            let mut leaf = t.leaf(index).unwrap();
            let mut proof = t.inclusion_proof(index, n).unwrap();
            let mut root2 = root;
            let flip = |h: &mut Hash| h.0[bit / 8] ^= 1 << (bit % 8);
            match which {
                0 => flip(&mut leaf),
                1 if !proof.is_empty() => { let i = bit % proof.len(); flip(&mut proof[i]) }
                _ => flip(&mut root2),
            }
            prop_assert!(verify_inclusion(&leaf, index, n, &proof, &root2).is_err());

            let old = (index + 1).min(n - 1).max(1);
            let mut cp = t.consistency_proof(old, n).unwrap();
            let mut old_root = t.root_at(old).unwrap();
            let mut new_root = root;
            match which {
                0 => flip(&mut old_root),
                1 if !cp.is_empty() => { let i = bit % cp.len(); flip(&mut cp[i]) }
                _ => flip(&mut new_root),
            }
            prop_assert!(verify_consistency(old, n, &cp, &old_root, &new_root).is_err());
        }
    }
}
