//! Sealing a package: the canonical manifest, the station's signature over it, and the SHA256SUMS
//! (and SM3SUMS) files stock tools check. Apart because nothing may be written after it.

use super::{ExportError, io};
use crate::station::Station;
use evidock_store::key::NoteSigner as _;
use evidock_verify::id::Sha256;
use evidock_verify::package::{self, Manifest};
use std::path::Path;

/// Write the manifest, its signature and the sums files. Returns the manifest's bytes.
pub(super) fn seal(
    st: &Station,
    root: &Path,
    manifest: &Manifest,
    sm3: bool,
) -> Result<Vec<u8>, ExportError> {
    let manifest_bytes = evidock_verify::canonical::to_canonical(manifest)
        .map_err(|e| ExportError::Other(e.to_string()))?;
    let sig = st
        .key
        .sign_note(&package::signed_text(&manifest_bytes))
        .to_bytes();
    let write = |rel: &str, data: &[u8]| -> Result<(), ExportError> {
        let p = root.join(rel);
        fs_err::write(&p, data).map_err(io(&p))
    };
    write(package::MANIFEST, &manifest_bytes)?;
    write(package::MANIFEST_SIG, &sig)?;
    let mut sums = String::new();
    for f in &manifest.files {
        sums.push_str(&package::sums_line(&f.sha256.to_string(), &f.path));
    }
    sums.push_str(&package::sums_line(
        &Sha256::digest(&manifest_bytes).to_string(),
        package::MANIFEST,
    ));
    sums.push_str(&package::sums_line(
        &Sha256::digest(&sig).to_string(),
        package::MANIFEST_SIG,
    ));
    write(package::SHA256SUMS, sums.as_bytes())?;
    if sm3 {
        let mut sm3 = String::new();
        for f in &manifest.files {
            if let Some(h) = &f.sm3 {
                sm3.push_str(&package::sums_line(&h.to_string(), &f.path));
            }
        }
        write(package::SM3SUMS, sm3.as_bytes())?;
    }
    Ok(manifest_bytes)
}
