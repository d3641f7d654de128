//! Unit and property tests of the Merkle tree (merkle.rs): the RFC 6962 published roots and
//! proofs, refused requests and proofs, and random trees against a naive root; apart because they
//! outweigh the code they test.

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
