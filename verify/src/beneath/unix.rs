//! Beneath on Unix: resolution with `openat2` (or one `openat(O_NOFOLLOW)` per component where the
//! kernel lacks it), `O_PATH` handles checked with `fstat` before reading. Apart because it is
//! system calls only, one platform's half of beneath.rs.

use super::{Beneath, Entry, Kind, MAX_DEPTH, ReadError, io_error, shown_name};
use rustix::fd::{AsFd, OwnedFd};
use rustix::fs::{AtFlags, FileType, Mode, OFlags};
use std::fs::File;

impl From<FileType> for Kind {
    fn from(t: FileType) -> Self {
        match t {
            FileType::RegularFile => Kind::Regular,
            FileType::Directory => Kind::Directory,
            FileType::Symlink => Kind::Symlink,
            FileType::Fifo => Kind::Fifo,
            FileType::Socket => Kind::Socket,
            FileType::CharacterDevice => Kind::CharDevice,
            FileType::BlockDevice => Kind::BlockDevice,
            _ => Kind::Unknown,
        }
    }
}

/// A handle that does not open the file's contents: opening a FIFO or device this way has
/// no effect on it.
#[cfg(any(target_os = "linux", target_os = "android"))]
const HANDLE: OFlags = OFlags::PATH;
#[cfg(not(any(target_os = "linux", target_os = "android")))]
const HANDLE: OFlags = OFlags::RDONLY.union(OFlags::NONBLOCK);

impl Beneath {
    /// Resolve `rel` beneath the directory, no link in any component, and open it with
    /// `flags`.
    fn resolve(&self, rel: &str, flags: OFlags) -> std::io::Result<OwnedFd> {
        let flags = flags | OFlags::NOFOLLOW | OFlags::CLOEXEC;
        #[cfg(any(target_os = "linux", target_os = "android"))]
        {
            use rustix::fs::ResolveFlags;
            match rustix::fs::openat2(
                &self.dir,
                rel,
                flags,
                Mode::empty(),
                ResolveFlags::BENEATH | ResolveFlags::NO_SYMLINKS | ResolveFlags::NO_MAGICLINKS,
            ) {
                // Kernels before 5.6 (and some sandboxes) lack openat2: walk instead.
                Err(e) if e == rustix::io::Errno::NOSYS || e == rustix::io::Errno::PERM => {}
                other => return other.map_err(Into::into),
            }
        }
        // One component at a time, none followed if it is a link; `..` cannot occur
        // (check_rel refused it), so every step stays beneath the directory.
        let mut parts = rel.split('/').peekable();
        let mut cur: Option<OwnedFd> = None;
        while let Some(part) = parts.next() {
            let at = match &cur {
                Some(fd) => fd.as_fd(),
                None => self.dir.as_fd(),
            };
            let next = if parts.peek().is_some() {
                rustix::fs::openat(
                    at,
                    part,
                    OFlags::RDONLY | OFlags::DIRECTORY | OFlags::NOFOLLOW | OFlags::CLOEXEC,
                    Mode::empty(),
                )?
            } else {
                rustix::fs::openat(at, part, flags, Mode::empty())?
            };
            cur = Some(next);
        }
        cur.ok_or_else(|| std::io::Error::other("empty path"))
    }

    pub(super) fn open_checked(&self, rel: &str) -> Result<(File, u64), ReadError> {
        let handle = self.resolve(rel, HANDLE).map_err(io_error)?;
        let st = rustix::fs::fstat(&handle).map_err(|e| io_error(e.into()))?;
        let kind = Kind::from(FileType::from_raw_mode(st.st_mode));
        if kind != Kind::Regular {
            return Err(ReadError::NotRegular(kind));
        }
        let fd = reopen(&handle)
            .or_else(|| self.resolve(rel, OFlags::RDONLY | OFlags::NONBLOCK).ok())
            .ok_or(ReadError::Changed)?;
        let again = rustix::fs::fstat(&fd).map_err(|e| io_error(e.into()))?;
        if Kind::from(FileType::from_raw_mode(again.st_mode)) != Kind::Regular
            || again.st_dev != st.st_dev
            || again.st_ino != st.st_ino
        {
            return Err(ReadError::Changed);
        }
        Ok((File::from(fd), again.st_size.max(0) as u64))
    }

    pub(super) fn kind_of(&self, rel: &str) -> Option<Kind> {
        let (parent, name) = match rel.rsplit_once('/') {
            Some((p, n)) => (Some(p), n),
            None => (None, rel),
        };
        let dir = match parent {
            Some(p) => Some(self.resolve(p, OFlags::RDONLY | OFlags::DIRECTORY).ok()?),
            None => None,
        };
        let at = dir.as_ref().map_or(self.dir.as_fd(), |d| d.as_fd());
        let st = rustix::fs::statat(at, name, AtFlags::SYMLINK_NOFOLLOW).ok()?;
        Some(Kind::from(FileType::from_raw_mode(st.st_mode)))
    }

    pub(super) fn list_dir(&self, rel: Option<&str>) -> std::io::Result<Vec<Entry>> {
        let fd = match rel {
            Some(r) => Some(self.resolve(r, OFlags::RDONLY | OFlags::DIRECTORY)?),
            None => None,
        };
        let at = fd.as_ref().map_or(self.dir.as_fd(), |d| d.as_fd());
        let mut out = Vec::new();
        for entry in rustix::fs::Dir::read_from(at)? {
            let entry = entry?;
            let name = entry.file_name().to_bytes();
            if name == b"." || name == b".." {
                continue;
            }
            let mut kind = Kind::from(entry.file_type());
            if kind == Kind::Unknown {
                kind = rustix::fs::statat(at, entry.file_name(), AtFlags::SYMLINK_NOFOLLOW)
                    .map(|st| Kind::from(FileType::from_raw_mode(st.st_mode)))
                    .unwrap_or(Kind::Unknown);
            }
            out.push(Entry {
                path: shown_name(name),
                kind,
                text: std::str::from_utf8(name).is_ok(),
            });
        }
        Ok(out)
    }

    pub(super) fn walk_into(&self, out: &mut Vec<Entry>, problems: &mut Vec<(String, String)>) {
        // Depth-first with an explicit stack: a hostile tree cannot exhaust the call stack.
        let mut stack: Vec<(Option<OwnedFd>, String, usize, bool)> =
            vec![(None, String::new(), 0, true)];
        while let Some((fd, prefix, depth, text)) = stack.pop() {
            let at = fd.as_ref().map_or(self.dir.as_fd(), |d| d.as_fd());
            let dir = match rustix::fs::Dir::read_from(at) {
                Ok(d) => d,
                Err(e) => {
                    problems.push((display_dir(&prefix), e.to_string()));
                    continue;
                }
            };
            for entry in dir {
                let entry = match entry {
                    Ok(e) => e,
                    Err(e) => {
                        problems.push((display_dir(&prefix), e.to_string()));
                        break;
                    }
                };
                let name_bytes = entry.file_name().to_bytes();
                if name_bytes == b"." || name_bytes == b".." {
                    continue;
                }
                let name = shown_name(name_bytes);
                let path = if prefix.is_empty() {
                    name.clone()
                } else {
                    format!("{prefix}/{name}")
                };
                let mut kind = Kind::from(entry.file_type());
                if kind == Kind::Unknown {
                    kind = rustix::fs::statat(at, entry.file_name(), AtFlags::SYMLINK_NOFOLLOW)
                        .map(|st| Kind::from(FileType::from_raw_mode(st.st_mode)))
                        .unwrap_or(Kind::Unknown);
                }
                let text = text && std::str::from_utf8(name_bytes).is_ok();
                out.push(Entry {
                    path: path.clone(),
                    kind,
                    text,
                });
                if kind != Kind::Directory {
                    continue;
                }
                if depth + 1 >= MAX_DEPTH {
                    problems.push((
                        path,
                        format!("nested deeper than {MAX_DEPTH} directories: not entered"),
                    ));
                    continue;
                }
                match rustix::fs::openat(
                    at,
                    entry.file_name(),
                    OFlags::RDONLY | OFlags::DIRECTORY | OFlags::NOFOLLOW | OFlags::CLOEXEC,
                    Mode::empty(),
                ) {
                    Ok(child) => stack.push((Some(child), path, depth + 1, text)),
                    Err(e) => problems.push((path, e.to_string())),
                }
            }
        }
    }
}

/// The very file `handle` names, opened for reading: through `/proc/self/fd`, which gives
/// the inode the handle holds, not whatever the path names by now. `None` without procfs
/// (then the path is resolved again and its device and inode compared).
fn reopen(handle: &OwnedFd) -> Option<OwnedFd> {
    #[cfg(any(target_os = "linux", target_os = "android"))]
    {
        use rustix::fd::AsRawFd as _;
        let p = format!("/proc/self/fd/{}", handle.as_raw_fd());
        rustix::fs::open(
            p.as_str(),
            OFlags::RDONLY | OFlags::NONBLOCK | OFlags::CLOEXEC,
            Mode::empty(),
        )
        .ok()
    }
    #[cfg(not(any(target_os = "linux", target_os = "android")))]
    {
        let _ = handle;
        None
    }
}

fn display_dir(prefix: &str) -> String {
    if prefix.is_empty() {
        ".".into()
    } else {
        prefix.to_string()
    }
}
