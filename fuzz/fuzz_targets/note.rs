//! Signed notes, checkpoints and verifier keys: errors, never panics; round trips are exact.
#![no_main]
use evidock_verify::checkpoint::SignedCheckpoint;
use evidock_verify::note::{SignedNote, VerifierKey};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Ok(n) = SignedNote::parse(data) {
        let key = VerifierKey::new("evidock.station/fuzz", [7u8; 32]).expect("valid name");
        let _ = n.verify(&key);
    }
    if let Ok(c) = SignedCheckpoint::parse(data) {
        let _ = c.checkpoint.to_text();
    }
    if let Ok(s) = std::str::from_utf8(data) {
        if let Ok(k) = VerifierKey::parse(s) {
            assert_eq!(VerifierKey::parse(&k.to_string()).expect("round trip"), k);
        }
    }
});
