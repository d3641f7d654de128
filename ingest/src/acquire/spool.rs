//! The spool: the station's local copy of every original, content-addressed by SHA-256.
//!
//! ```text
//! <spool>/sha256/ab/cd/<64 hex>     originals, write-once, mode 0440
//! <spool>/partial/<device>/<path>.part   copies in progress (resumable)
//! ```
//!
//! Identical content is stored once; every acquisition still gets its own evidence item and
//! custody event.

use evidock_store::fsutil::{self, FsError};
use evidock_verify::id::{DeviceSerial, Sha256};
use std::path::{Path, PathBuf};

#[derive(Debug, Clone)]
pub struct Spool {
    root: PathBuf,
}

impl Spool {
    pub fn open(root: &Path) -> Result<Self, FsError> {
        for d in ["sha256", "partial"] {
            fsutil::create_dir_all(&root.join(d))?;
        }
        Ok(Spool {
            root: root.to_path_buf(),
        })
    }

    pub fn root(&self) -> &Path {
        &self.root
    }

    /// Where the original with this digest lives.
    pub fn object_path(&self, sha: &Sha256) -> PathBuf {
        let h = sha.to_hex();
        self.root
            .join("sha256")
            .join(&h[0..2])
            .join(&h[2..4])
            .join(h)
    }

    pub fn contains(&self, sha: &Sha256) -> bool {
        self.object_path(sha).is_file()
    }

    /// The partial-copy file of `path` on `device`. Both are hashed into the name: serials and
    /// camera paths are arbitrary bytes, file names here must be plain.
    pub fn partial_path(&self, device: &DeviceSerial, path: &[u8]) -> PathBuf {
        let dev = &Sha256::digest(device.as_str().as_bytes()).to_hex()[..16];
        let p = Sha256::digest(path).to_hex();
        self.root
            .join("partial")
            .join(dev)
            .join(format!("{p}.part"))
    }

    /// Move a checked copy into its content address. If the content is already there (the same
    /// bytes acquired before), the copy is dropped: identical content is stored once. Every
    /// step may be repeated after a crash: the original ends read-only whichever step the crash
    /// came after (the copy is made read-only only once it is no longer a `.part` a resumed copy
    /// would open for writing).
    pub fn commit(&self, part: &Path, sha: &Sha256) -> Result<PathBuf, FsError> {
        let mut dirs = Dirs::default();
        let dest = self.link(part, sha, &mut dirs)?;
        dirs.sync()?;
        Ok(dest)
    }

    /// [`Spool::commit`] but for the directories' fsyncs, which `dirs` collects: a group of
    /// commits then shares them ([`Dirs::sync`]). Nothing linked counts until they are synced.
    pub fn link(&self, part: &Path, sha: &Sha256, dirs: &mut Dirs) -> Result<PathBuf, FsError> {
        let dest = self.object_path(sha);
        if let Some(dir) = dest.parent() {
            fsutil::create_dir_all(dir)?;
        }
        if !dest.is_file() {
            // link(2) never replaces: a concurrent commit of the same content wins harmlessly.
            match fs_err::hard_link(part, &dest) {
                Ok(()) => {}
                Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {}
                Err(e) => return Err(FsError::new("link into the spool", &dest, e)),
            }
        }
        match fs_err::remove_file(part) {
            Ok(()) => {}
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
            Err(e) => return Err(FsError::new("remove", part, e)),
        }
        let perms = std::os::unix::fs::PermissionsExt::from_mode(0o440);
        fs_err::set_permissions(&dest, perms).map_err(fsutil::err("make read-only", &dest))?;
        dirs.0.insert(fsutil::parent_dir(&dest).to_path_buf());
        dirs.0.insert(fsutil::parent_dir(part).to_path_buf());
        Ok(dest)
    }

    /// Bytes free on the spool's filesystem.
    pub fn free_bytes(&self) -> Option<u64> {
        let s = rustix::fs::statvfs(&self.root).ok()?;
        Some(s.f_bavail.saturating_mul(s.f_frsize))
    }
}

/// Directories whose entries changed and must be synced before the change counts.
#[derive(Debug, Default)]
pub struct Dirs(std::collections::BTreeSet<PathBuf>);

impl Dirs {
    /// fsync each directory once (after a group of links, one journal commit of the filesystem
    /// usually covers them all).
    pub fn sync(self) -> Result<(), FsError> {
        for d in &self.0 {
            fsutil::sync_dir(d)?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::PermissionsExt as _;

    /// Repeated after a crash at any step, a commit ends with one read-only original and no
    /// `.part`; the `.part` is never made read-only (a resumed copy opens it for writing).
    #[test]
    fn a_commit_repeated_after_any_step_ends_read_only_and_whole() {
        let tmp = tempfile::tempdir().unwrap();
        let spool = Spool::open(tmp.path()).unwrap();
        let sha = Sha256::digest(b"camera bytes");
        let part = tmp.path().join("partial/x.part");
        fs_err::create_dir_all(part.parent().unwrap()).unwrap();
        // A crash after the link, before the `.part` was removed.
        fs_err::write(&part, b"camera bytes").unwrap();
        let dest = spool.object_path(&sha);
        fs_err::create_dir_all(dest.parent().unwrap()).unwrap();
        fs_err::hard_link(&part, &dest).unwrap();
        assert_ne!(
            fs_err::metadata(&part).unwrap().permissions().mode() & 0o222,
            0
        );
        assert_eq!(spool.commit(&part, &sha).unwrap(), dest);
        assert!(!part.exists());
        assert_eq!(
            fs_err::metadata(&dest).unwrap().permissions().mode() & 0o777,
            0o440
        );
        // A crash after the `.part` was removed, before the original was made read-only.
        fs_err::set_permissions(&dest, std::fs::Permissions::from_mode(0o644)).unwrap();
        spool.commit(&part, &sha).unwrap();
        assert_eq!(
            fs_err::metadata(&dest).unwrap().permissions().mode() & 0o777,
            0o440
        );
        assert_eq!(fs_err::read(&dest).unwrap(), b"camera bytes");
    }
}
