//! Merkle proof verification with arbitrary sizes, indices and hashes: errors, never panics,
//! and a proof that verifies for one leaf never verifies for another.
#![no_main]
use evidock_verify::id::Sha256;
use evidock_verify::merkle;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if data.len() < 16 {
        return;
    }
    let a = u64::from_le_bytes(data[0..8].try_into().expect("8 bytes"));
    let b = u64::from_le_bytes(data[8..16].try_into().expect("8 bytes"));
    let hashes: Vec<Sha256> = data[16..]
        .chunks_exact(32)
        .filter_map(Sha256::from_slice)
        .collect();
    if hashes.len() < 2 {
        return;
    }
    let (leaf, root, proof) = (hashes[0], hashes[1], &hashes[2..]);
    if merkle::verify_inclusion(&leaf, a, b, proof, &root).is_ok() {
        let mut other = leaf;
        other.0[0] ^= 1;
        assert!(merkle::verify_inclusion(&other, a, b, proof, &root).is_err());
    }
    let _ = merkle::verify_consistency(a, b, proof, &leaf, &root);
});
