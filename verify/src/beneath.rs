//! Reading a directory someone else made — a disclosure package, a custody log — without being
//! led out of it, hung, or made to read without end.
//!
//! A package arrives from the party presenting the evidence, and the receiver must assume it
//! was made to fool the check. So every file is reached through [`Beneath`]:
//!
//! - the path is relative and normalised ([`check_rel`]): no `..`, `.`, empty segment, leading
//!   `/`, backslash, NUL or control character;
//! - it is resolved beneath the directory with no symbolic link in any component (Linux:
//!   `openat2` with `RESOLVE_BENEATH | RESOLVE_NO_SYMLINKS`; where the kernel lacks `openat2`,
//!   one `openat(O_NOFOLLOW)` per component, which refuses the same);
//! - it is first opened as a bare handle (`O_PATH`: opening a FIFO or a device has no effect)
//!   and `fstat` must say it is a regular file; then it is opened non-blocking for reading and
//!   must still be the same regular file (same device and inode);
//! - reads are bounded: [`Beneath::read`] refuses a file larger than its cap before reading
//!   and never reads more than the cap plus one byte.
//!
//! A symlink, FIFO, socket, device or directory where a file is expected is
//! [`ReadError::NotRegular`] and is never read.

use std::fs::File;
use std::io::Read;
use std::path::{Path, PathBuf};

/// What a directory entry is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Kind {
    Regular,
    Directory,
    Symlink,
    Fifo,
    Socket,
    CharDevice,
    BlockDevice,
    Unknown,
}

impl Kind {
    pub fn describe(self) -> &'static str {
        match self {
            Kind::Regular => "a regular file",
            Kind::Directory => "a directory",
            Kind::Symlink => "a symbolic link",
            Kind::Fifo => "a FIFO (named pipe)",
            Kind::Socket => "a socket",
            Kind::CharDevice => "a character device",
            Kind::BlockDevice => "a block device",
            Kind::Unknown => "of unknown type",
        }
    }
}

/// Why a file of the directory was not read.
#[derive(Debug, thiserror::Error)]
pub enum ReadError {
    #[error("not found")]
    NotFound,
    #[error("is {}, not a regular file: not read", .0.describe())]
    NotRegular(Kind),
    #[error("a component of the path is a symbolic link or leads outside the directory: not read")]
    Link,
    #[error("is {size} bytes, more than the {cap} bytes allowed for it: not read")]
    TooLarge { size: u64, cap: u64 },
    #[error("{0}")]
    BadPath(String),
    #[error("changed while it was opened: not read")]
    Changed,
    #[error("cannot be read: {0}")]
    Io(std::io::Error),
}

impl ReadError {
    /// Whether the file is absent (as opposed to present but refused or unreadable).
    pub fn is_missing(&self) -> bool {
        matches!(self, ReadError::NotFound)
    }

    /// Whether the file was refused for what it is (link, FIFO, device, directory…).
    pub fn is_not_regular(&self) -> bool {
        matches!(self, ReadError::NotRegular(_) | ReadError::Link)
    }
}

fn io_error(e: std::io::Error) -> ReadError {
    if e.kind() == std::io::ErrorKind::NotFound {
        return ReadError::NotFound;
    }
    #[cfg(unix)]
    {
        use rustix::io::Errno;
        let raw = e.raw_os_error();
        // ELOOP: a symlink where none may be; EXDEV: resolution would leave the directory.
        if raw == Some(Errno::LOOP.raw_os_error()) || raw == Some(Errno::XDEV.raw_os_error()) {
            return ReadError::Link;
        }
        // ENOTDIR: a component that should be a directory is not one.
        if raw == Some(Errno::NOTDIR.raw_os_error()) {
            return ReadError::NotFound;
        }
    }
    ReadError::Io(e)
}

/// Check that `rel` is a relative, normalised, `/`-separated path naming a file beneath a
/// directory: no empty, `.` or `..` segment, no leading `/`, no backslash, NUL or control
/// character. This is also the rule for every path a manifest lists.
pub fn check_rel(rel: &str) -> Result<(), String> {
    if rel.is_empty() {
        return Err("an empty path".into());
    }
    if rel.len() > 4096 {
        return Err("a path longer than 4096 bytes".into());
    }
    if rel.starts_with('/') {
        return Err("an absolute path".into());
    }
    if let Some(c) = rel.chars().find(|c| c.is_control()) {
        return Err(format!(
            "a control character (U+{:04X}) in the path",
            c as u32
        ));
    }
    if rel.contains('\\') {
        return Err("a backslash in the path".into());
    }
    for seg in rel.split('/') {
        match seg {
            "" => return Err("an empty segment (`//` or a trailing `/`)".into()),
            "." | ".." => return Err(format!("a `{seg}` segment")),
            _ => {}
        }
    }
    Ok(())
}

/// A directory whose files are read only beneath it, only if regular, with bounded reads.
#[derive(Debug)]
pub struct Beneath {
    root: PathBuf,
    #[cfg(unix)]
    dir: rustix::fd::OwnedFd,
}

/// One entry found by [`Beneath::walk`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Entry {
    /// Relative, `/`-separated (in a name that is not UTF-8, each invalid byte is shown as
    /// `\xNN`).
    pub path: String,
    pub kind: Kind,
    /// Whether every name of the path is UTF-8 text (else `path` is only an approximation,
    /// which must never be taken for a listed path).
    pub text: bool,
}

/// Directories deeper than this are not entered (reported instead): a package is three deep.
pub const MAX_DEPTH: usize = 32;

impl Beneath {
    /// Open `root` (the directory the reader named; it may itself be reached by a link).
    pub fn open(root: &Path) -> std::io::Result<Self> {
        #[cfg(unix)]
        {
            use rustix::fs::{Mode, OFlags};
            let dir = rustix::fs::open(
                root,
                OFlags::RDONLY | OFlags::DIRECTORY | OFlags::CLOEXEC,
                Mode::empty(),
            )?;
            Ok(Beneath {
                root: root.to_path_buf(),
                dir,
            })
        }
        #[cfg(not(unix))]
        {
            if !std::fs::metadata(root)?.is_dir() {
                return Err(std::io::Error::other("not a directory"));
            }
            Ok(Beneath {
                root: root.to_path_buf(),
            })
        }
    }

    pub fn root(&self) -> &Path {
        &self.root
    }

    /// Open the regular file `rel` for reading; its size as `fstat` gives it.
    pub fn open_file(&self, rel: &str) -> Result<(File, u64), ReadError> {
        check_rel(rel).map_err(ReadError::BadPath)?;
        self.open_checked(rel)
    }

    /// The whole of the regular file `rel`, refused if it is larger than `cap` bytes.
    pub fn read(&self, rel: &str, cap: u64) -> Result<Vec<u8>, ReadError> {
        let (f, size) = self.open_file(rel)?;
        if size > cap {
            return Err(ReadError::TooLarge { size, cap });
        }
        read_capped(f, cap)
    }

    /// What `rel` is, without following a link (`None`: absent).
    pub fn kind(&self, rel: &str) -> Option<Kind> {
        check_rel(rel).ok()?;
        self.kind_of(rel)
    }

    /// The entries of one directory (`None`: the root), names only, sorted; nothing followed.
    pub fn list(&self, rel: Option<&str>) -> Result<Vec<Entry>, ReadError> {
        if let Some(r) = rel {
            check_rel(r).map_err(ReadError::BadPath)?;
        }
        let mut out = self.list_dir(rel).map_err(io_error)?;
        out.sort_by(|a, b| a.path.cmp(&b.path));
        Ok(out)
    }

    /// Every entry beneath the directory, directories included, sorted by path, each with its
    /// kind; nothing is followed or opened but directories. `problems` are directories that
    /// could not be read.
    pub fn walk(&self) -> (Vec<Entry>, Vec<(String, String)>) {
        let mut out = Vec::new();
        let mut problems = Vec::new();
        self.walk_into(&mut out, &mut problems);
        out.sort_by(|a, b| a.path.cmp(&b.path));
        (out, problems)
    }
}

/// A file name as text: valid UTF-8 as it is, each invalid byte as `\xNN` (never U+FFFD, which
/// a real name could contain).
#[cfg_attr(not(unix), allow(dead_code))]
fn shown_name(name: &[u8]) -> String {
    let mut out = String::with_capacity(name.len());
    for chunk in name.utf8_chunks() {
        out.push_str(chunk.valid());
        for b in chunk.invalid() {
            out.push_str(&format!("\\x{b:02X}"));
        }
    }
    out
}

/// Read at most `cap + 1` bytes of `f`: more than `cap` is [`ReadError::TooLarge`].
pub fn read_capped(f: impl Read, cap: u64) -> Result<Vec<u8>, ReadError> {
    let mut out = Vec::new();
    f.take(cap.saturating_add(1))
        .read_to_end(&mut out)
        .map_err(io_error)?;
    if out.len() as u64 > cap {
        return Err(ReadError::TooLarge {
            size: out.len() as u64,
            cap,
        });
    }
    Ok(out)
}

/// Read a file the reader named (a trust file, an expected checkpoint): it must be a regular
/// file (a FIFO named by mistake must not hang the check) of at most `cap` bytes.
pub fn read_local(path: &Path, cap: u64) -> Result<Vec<u8>, ReadError> {
    let f = open_local(path)?;
    let meta = f.metadata().map_err(io_error)?;
    if !meta.is_file() {
        return Err(ReadError::NotRegular(Kind::Unknown));
    }
    if meta.len() > cap {
        return Err(ReadError::TooLarge {
            size: meta.len(),
            cap,
        });
    }
    read_capped(f, cap)
}

#[cfg(unix)]
fn open_local(path: &Path) -> Result<File, ReadError> {
    use rustix::fs::{Mode, OFlags};
    let fd = rustix::fs::open(
        path,
        OFlags::RDONLY | OFlags::NONBLOCK | OFlags::CLOEXEC,
        Mode::empty(),
    )
    .map_err(|e| io_error(e.into()))?;
    Ok(File::from(fd))
}

#[cfg(not(unix))]
fn open_local(path: &Path) -> Result<File, ReadError> {
    File::open(path).map_err(io_error)
}

#[cfg(unix)]
mod unix;

/// Elsewhere (Windows): no component may be a link (reparse point), checked before opening;
/// Windows has no FIFOs or device nodes inside a directory tree.
#[cfg(not(unix))]
mod portable;

#[cfg(all(test, unix))]
mod tests {
    use super::*;

    #[test]
    fn refuses_links_fifos_devices_and_escapes() {
        let tmp = tempfile::tempdir().unwrap();
        let root = tmp.path().join("pkg");
        std::fs::create_dir_all(root.join("originals")).unwrap();
        std::fs::write(root.join("originals/a.mp4"), b"abc").unwrap();
        std::fs::write(tmp.path().join("outside"), b"abc").unwrap();
        std::os::unix::fs::symlink("/dev/zero", root.join("originals/zero.mp4")).unwrap();
        std::os::unix::fs::symlink("../../outside", root.join("originals/up.mp4")).unwrap();
        std::os::unix::fs::symlink(tmp.path(), root.join("linkdir")).unwrap();
        rustix::fs::mkfifoat(
            rustix::fs::CWD,
            root.join("originals/fifo.mp4"),
            rustix::fs::Mode::from_raw_mode(0o600),
        )
        .unwrap();
        let b = Beneath::open(&root).unwrap();
        assert_eq!(b.read("originals/a.mp4", 3).unwrap(), b"abc");
        assert!(matches!(
            b.read("originals/a.mp4", 2),
            Err(ReadError::TooLarge { size: 3, cap: 2 })
        ));
        for rel in [
            "originals/zero.mp4",
            "originals/up.mp4",
            "linkdir/outside",
            "originals/fifo.mp4",
            "originals",
        ] {
            let e = b.read(rel, 1 << 20).unwrap_err();
            assert!(e.is_not_regular(), "{rel}: {e:?}");
        }
        for rel in [
            "../outside",
            "/etc/passwd",
            "originals/../originals/a.mp4",
            "a\\b",
            "a//b",
            "",
        ] {
            assert!(
                matches!(b.read(rel, 10), Err(ReadError::BadPath(_))),
                "{rel}"
            );
        }
        assert!(b.read("nothing", 10).unwrap_err().is_missing());
        let (entries, problems) = b.walk();
        assert!(problems.is_empty(), "{problems:?}");
        let kinds: Vec<(&str, Kind)> = entries.iter().map(|e| (e.path.as_str(), e.kind)).collect();
        assert_eq!(
            kinds,
            vec![
                ("linkdir", Kind::Symlink),
                ("originals", Kind::Directory),
                ("originals/a.mp4", Kind::Regular),
                ("originals/fifo.mp4", Kind::Fifo),
                ("originals/up.mp4", Kind::Symlink),
                ("originals/zero.mp4", Kind::Symlink),
            ]
        );
        assert_eq!(b.kind("originals/fifo.mp4"), Some(Kind::Fifo));
        assert_eq!(b.kind("linkdir"), Some(Kind::Symlink));
    }

    #[test]
    fn paths_must_be_normalised() {
        for ok in [
            "a",
            "originals/x.mp4",
            "custody/proofs/1.proof",
            "原始/视频.MP4",
        ] {
            check_rel(ok).unwrap();
        }
        for bad in [
            "",
            "/a",
            "a/",
            "a//b",
            "./a",
            "a/./b",
            "a/..",
            "..",
            "a\\b",
            "a\u{0}b",
            "a\u{1b}[2J",
        ] {
            assert!(check_rel(bad).is_err(), "{bad:?}");
        }
    }
}
