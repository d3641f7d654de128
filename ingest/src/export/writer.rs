//! Writing files into the package: each streamed to its place, hashed as it is written, fsynced,
//! and listed for the manifest. Apart because every other part of the export writes through it.

use super::{ExportError, io};
use evidock_verify::digest::{DigestSet, Digests};
use evidock_verify::id::{EvidenceId, Sha256};
use evidock_verify::package::{FileRole, ManifestFile};
use std::io::{Read, Write};
use std::path::PathBuf;

/// Writes files into the package, hashing what it writes.
pub(super) struct Writer<'a> {
    pub(super) root: PathBuf,
    pub(super) set: DigestSet,
    pub(super) files: Vec<ManifestFile>,
    /// Whether the operator asked to stop (Ctrl-C): looked at before each file is copied.
    pub(super) stopped: &'a dyn Fn() -> bool,
}

impl Writer<'_> {
    fn path(&self, rel: &str) -> Result<PathBuf, ExportError> {
        let p = self.root.join(rel);
        if let Some(parent) = p.parent() {
            fs_err::create_dir_all(parent).map_err(io(parent))?;
        }
        Ok(p)
    }

    /// Stream `src` into `rel`, hashing the bytes written.
    pub(super) fn copy(
        &mut self,
        rel: &str,
        role: FileRole,
        src: &mut dyn Read,
        evidence: Option<&EvidenceId>,
        parent: Option<Sha256>,
    ) -> Result<Digests, ExportError> {
        if (self.stopped)() {
            return Err(ExportError::Stopped);
        }
        let p = self.path(rel)?;
        let mut f = std::fs::File::create(&p).map_err(io(&p))?;
        if role == FileRole::Tool {
            // A receiver runs it from the package (VERIFY.md step 3), unpacked or not.
            use std::os::unix::fs::PermissionsExt as _;
            f.set_permissions(std::fs::Permissions::from_mode(0o755))
                .map_err(io(&p))?;
        }
        let mut tee = Tee {
            inner: src,
            out: &mut f,
            err: None,
        };
        let (d, size) = evidock_verify::digest::hash_reader(&mut tee, self.set)
            .map_err(|e| ExportError::Other(format!("{}: {e}", p.display())))?;
        if let Some(e) = tee.err {
            return Err(ExportError::Io { path: p, source: e });
        }
        f.sync_all().map_err(io(&p))?;
        self.files.push(ManifestFile {
            path: rel.to_string(),
            role,
            size,
            sha256: d.sha256,
            sm3: d.sm3.clone(),
            evidence: evidence.cloned(),
            parent,
        });
        Ok(d)
    }

    pub(super) fn bytes(
        &mut self,
        rel: &str,
        role: FileRole,
        data: &[u8],
    ) -> Result<Digests, ExportError> {
        self.copy(rel, role, &mut &data[..], None, None)
    }
}

/// A reader that writes what it reads to `out`.
struct Tee<'a> {
    inner: &'a mut dyn Read,
    out: &'a mut std::fs::File,
    err: Option<std::io::Error>,
}

impl Read for Tee<'_> {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        let n = self.inner.read(buf)?;
        if let Err(e) = self.out.write_all(&buf[..n]) {
            self.err = Some(std::io::Error::new(e.kind(), e.to_string()));
            return Err(e);
        }
        Ok(n)
    }
}
