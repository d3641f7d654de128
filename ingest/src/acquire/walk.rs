//! Listing a camera volume: every regular file (video, audio, photo, device logs), never
//! following a symbolic link, reporting what cannot be read instead of skipping it silently.

use crate::device::volume::FileMeta;
use std::os::unix::ffi::OsStrExt as _;
use std::path::Path;

/// One thing found on the card.
#[derive(Debug, Clone)]
pub enum Entry {
    /// A regular file: its path relative to the root (raw bytes, `/`-separated) and metadata.
    File { path: Vec<u8>, meta: FileMeta },
    /// Not acquirable: a symbolic link, device node, socket, or an unreadable directory.
    Unreadable { path: Vec<u8>, reason: String },
}

impl Entry {
    pub fn path(&self) -> &[u8] {
        match self {
            Entry::File { path, .. } | Entry::Unreadable { path, .. } => path,
        }
    }
}

/// Every entry under `root`, sorted by path bytes (cameras number their files, so this is
/// recording order for one camera's naming scheme).
pub fn walk(root: &Path) -> std::io::Result<Vec<Entry>> {
    let mut out = Vec::new();
    // The root itself must be readable: otherwise the camera is not really there.
    fs_err::read_dir(root)?;
    // A volume that is one of the kernel's own filesystems (a bind of /proc or /sys in the
    // watch folder) is no card: nothing of it is read.
    if let Some(why) = crate::device::card::on_kernel_filesystem(root) {
        return Err(std::io::Error::new(std::io::ErrorKind::InvalidInput, why));
    }
    let dev = std::os::unix::fs::MetadataExt::dev(&fs_err::metadata(root)?);
    walk_dir(root, &[], dev, &mut out);
    out.sort_by(|a, b| a.path().cmp(b.path()));
    Ok(out)
}

fn walk_dir(dir: &Path, prefix: &[u8], dev: u64, out: &mut Vec<Entry>) {
    let rd = match fs_err::read_dir(dir) {
        Ok(rd) => rd,
        Err(e) => {
            out.push(Entry::Unreadable {
                path: prefix.to_vec(),
                reason: format!("cannot list directory: {e}"),
            });
            return;
        }
    };
    for entry in rd {
        let entry = match entry {
            Ok(e) => e,
            Err(e) => {
                out.push(Entry::Unreadable {
                    path: prefix.to_vec(),
                    reason: format!("cannot list directory: {e}"),
                });
                continue;
            }
        };
        let name = entry.file_name();
        let mut rel = prefix.to_vec();
        if !rel.is_empty() {
            rel.push(b'/');
        }
        rel.extend_from_slice(name.as_bytes());
        // lstat: a link is reported as a link, never followed.
        let meta = match fs_err::symlink_metadata(entry.path()) {
            Ok(m) => m,
            Err(e) => {
                out.push(Entry::Unreadable {
                    path: rel,
                    reason: format!("cannot stat: {e}"),
                });
                continue;
            }
        };
        let ft = meta.file_type();
        if ft.is_symlink() {
            let target = fs_err::read_link(entry.path())
                .map(|t| t.display().to_string())
                .unwrap_or_default();
            out.push(Entry::Unreadable {
                path: rel,
                reason: format!(
                    "symbolic link to {target:?}: not followed (a camera card holds no links)"
                ),
            });
        } else if ft.is_dir() {
            let here = std::os::unix::fs::MetadataExt::dev(&meta);
            // A mount inside the card (a card's second partition is one): never the kernel's
            // own filesystems (a /proc bound under a folder given to `ingest` would make its
            // processes' memory and environment evidence).
            if here != dev
                && let Some(fs) = crate::device::card::pseudo_filesystem(&entry.path())
            {
                out.push(Entry::Unreadable {
                    path: rel,
                    reason: format!("a mount of {fs}, a filesystem of the kernel: not read"),
                });
                continue;
            }
            walk_dir(&entry.path(), &rel, here, out);
        } else if ft.is_file() {
            out.push(Entry::File {
                path: rel,
                meta: FileMeta::of(&meta),
            });
        } else {
            out.push(Entry::Unreadable {
                path: rel,
                reason: "not a regular file (device, socket or pipe)".into(),
            });
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lists_files_and_reports_links() {
        let tmp = tempfile::tempdir().unwrap();
        let r = tmp.path();
        fs_err::create_dir_all(r.join("DCIM/100")).unwrap();
        fs_err::write(r.join("DCIM/100/b.mp4"), b"bb").unwrap();
        fs_err::write(r.join("DCIM/100/a.mp4"), b"a").unwrap();
        fs_err::write(r.join("LOG.TXT"), b"").unwrap();
        std::os::unix::fs::symlink("../../etc", r.join("DCIM/up")).unwrap();
        let gbk_name = std::ffi::OsStr::from_bytes(b"\xd6\xb4.JPG");
        fs_err::write(r.join(gbk_name), b"j").unwrap();
        let e = walk(r).unwrap();
        let paths: Vec<&[u8]> = e.iter().map(Entry::path).collect();
        assert_eq!(
            paths,
            vec![
                &b"DCIM/100/a.mp4"[..],
                b"DCIM/100/b.mp4",
                b"DCIM/up",
                b"LOG.TXT",
                b"\xd6\xb4.JPG"
            ]
        );
        assert!(
            matches!(&e[2], Entry::Unreadable { reason, .. } if reason.contains("symbolic link"))
        );
        assert!(matches!(&e[3], Entry::File { meta, .. } if meta.size == 0));
        assert!(walk(&r.join("missing")).is_err());
    }

    #[test]
    fn a_kernel_filesystem_is_no_card() {
        let e = walk(Path::new("/proc/self")).unwrap_err();
        assert!(e.to_string().contains("filesystem of the kernel"), "{e}");
        assert!(walk(Path::new("/sys/kernel")).is_err());
    }
}
