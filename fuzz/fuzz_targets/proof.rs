//! Offline inclusion proof files: errors, never panics.
#![no_main]
use evidock_verify::checkpoint::InclusionProof;
use evidock_verify::id::Sha256;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Ok(p) = InclusionProof::parse(data) {
        let _ = p.verify_leaf(&Sha256::digest(data));
        let _ = InclusionProof::parse(&p.to_bytes());
    }
});
