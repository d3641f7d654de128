//! The forger of the tamper suite: takes a disclosure package and a different station key,
//! re-signs every checkpoint, proof, the manifest and the sums with that key, and rewrites the
//! manifest's digests — everything a forger with no access to the station's key can do. Only a
//! trust anchor and the RFC 3161 tokens (made over the original checkpoints) can tell.
//!
//! usage: package-forger <package dir> <station.key of the forger>
#![allow(clippy::print_stderr, clippy::unwrap_used, clippy::expect_used)]

use evidock_store::key::{NoteSigner as _, StationKey};
use evidock_verify::checkpoint::{InclusionProof, SignedCheckpoint};
use evidock_verify::id::Sha256;
use evidock_verify::package::{self, Manifest};
use std::path::PathBuf;

fn main() {
    let args: Vec<String> = std::env::args().collect();
    let pkg = PathBuf::from(&args[1]);
    let key = StationKey::load(&PathBuf::from(&args[2])).unwrap();
    let mut manifest: Manifest =
        serde_json::from_slice(&std::fs::read(pkg.join(package::MANIFEST)).unwrap()).unwrap();
    let resign = |bytes: &[u8]| -> Vec<u8> {
        let sc = SignedCheckpoint::parse(bytes).unwrap();
        key.sign_note(&sc.note.text).to_bytes()
    };
    for f in manifest.files.iter_mut() {
        let p = pkg.join(&f.path);
        let new = if f.path.starts_with("custody/checkpoints/") {
            Some(resign(&std::fs::read(&p).unwrap()))
        } else if f.path.starts_with("custody/proofs/") {
            let mut proof = InclusionProof::parse(&std::fs::read(&p).unwrap()).unwrap();
            proof.checkpoint =
                SignedCheckpoint::parse(&resign(&proof.checkpoint.to_bytes())).unwrap();
            Some(proof.to_bytes())
        } else if f.path.starts_with("custody/keys/") {
            Some(format!("{}\n", key.verifier()).into_bytes())
        } else {
            None
        };
        if let Some(b) = new {
            std::fs::write(&p, &b).unwrap();
            let (d, n) = evidock_verify::digest::hash_reader(
                &mut &b[..],
                evidock_verify::digest::DigestSet {
                    sm3: true,
                    md5: false,
                },
            )
            .unwrap();
            f.size = n;
            f.sha256 = d.sha256;
            f.sm3 = f.sm3.is_some().then_some(d.sm3).flatten();
        }
    }
    manifest.custody.key = key.verifier().to_string();
    let bytes = evidock_verify::canonical::to_canonical(&manifest).unwrap();
    std::fs::write(pkg.join(package::MANIFEST), &bytes).unwrap();
    let sig = key.sign_note(&package::signed_text(&bytes)).to_bytes();
    std::fs::write(pkg.join(package::MANIFEST_SIG), &sig).unwrap();
    let mut sums = String::new();
    for f in &manifest.files {
        sums.push_str(&package::sums_line(&f.sha256.to_string(), &f.path));
    }
    sums.push_str(&package::sums_line(
        &Sha256::digest(&bytes).to_string(),
        package::MANIFEST,
    ));
    sums.push_str(&package::sums_line(
        &Sha256::digest(&sig).to_string(),
        package::MANIFEST_SIG,
    ));
    std::fs::write(pkg.join(package::SHA256SUMS), sums).unwrap();
    let mut sm3 = String::new();
    for f in &manifest.files {
        if let Some(h) = &f.sm3 {
            sm3.push_str(&package::sums_line(&h.to_string(), &f.path));
        }
    }
    std::fs::write(pkg.join(package::SM3SUMS), sm3).unwrap();
    eprintln!("re-signed with {}", key.verifier());
}
