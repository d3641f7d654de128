//! A camera's card as evidock reads it: read-only, never following a symbolic link, and — for
//! simulated cameras — at the camera's own speed.

use std::fs::File;
use std::io::{self, Read};
use std::os::unix::ffi::OsStrExt as _;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

/// Metadata of a file on a camera volume.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FileMeta {
    pub size: u64,
    /// Modification time, nanoseconds since the Unix epoch.
    pub mtime_ns: i128,
}

impl FileMeta {
    pub fn of(m: &std::fs::Metadata) -> Self {
        use std::os::unix::fs::MetadataExt as _;
        FileMeta {
            size: m.len(),
            mtime_ns: i128::from(m.mtime()) * 1_000_000_000 + i128::from(m.mtime_nsec()),
        }
    }
}

/// Where a docked camera's card comes from: a folder already mounted, or a USB camera's disk
/// that appears only after `SetMSDC` and is then mounted read-only.
pub trait CardSource: Send + std::fmt::Debug {
    /// Make the card readable; called once, after the camera switched to mass storage.
    fn attach(&mut self) -> Result<Volume, String>;
    /// Whether the camera is still docked (a read error with the camera gone is an
    /// interruption to resume, not a failed file).
    fn present(&self) -> bool;
}

impl CardSource for Volume {
    fn attach(&mut self) -> Result<Volume, String> {
        Ok(self.clone())
    }
    fn present(&self) -> bool {
        fs_err::read_dir(&self.root).is_ok()
    }
}

/// A mounted camera volume.
#[derive(Debug, Clone)]
pub struct Volume {
    root: PathBuf,
    /// Bytes per second the camera delivers (simulated cameras); `None` = as fast as the disk.
    rate: Option<u64>,
}

impl Volume {
    pub fn new(root: PathBuf, rate: Option<u64>) -> Self {
        Volume { root, rate }
    }

    pub fn root(&self) -> &Path {
        &self.root
    }

    /// Open `rel` (bytes relative to the root) read-only. No component may be a symbolic link
    /// and the result must stay beneath the root (`openat2` with `RESOLVE_BENEATH |
    /// RESOLVE_NO_SYMLINKS`), so a `..` or absolute link on a card can never lead out of it.
    pub fn open(&self, rel: &[u8]) -> io::Result<CameraFile> {
        use rustix::fs::{Mode, OFlags, ResolveFlags};
        let dir = rustix::fs::open(
            &self.root,
            OFlags::RDONLY | OFlags::DIRECTORY | OFlags::CLOEXEC,
            Mode::empty(),
        )?;
        let rel_path = Path::new(std::ffi::OsStr::from_bytes(rel));
        // Non-blocking: a FIFO put where a file was listed must not hang the open; it is then
        // refused as not a regular file (on regular files the flag changes nothing).
        let fd = rustix::fs::openat2(
            &dir,
            rel_path,
            OFlags::RDONLY | OFlags::NOFOLLOW | OFlags::CLOEXEC | OFlags::NONBLOCK,
            Mode::empty(),
            ResolveFlags::BENEATH | ResolveFlags::NO_SYMLINKS | ResolveFlags::NO_MAGICLINKS,
        )
        .map_err(|e| match e {
            rustix::io::Errno::LOOP | rustix::io::Errno::XDEV => io::Error::new(
                io::ErrorKind::InvalidInput,
                "a symbolic link or a path leaving the card, not a regular file: not read",
            ),
            e => e.into(),
        })?;
        let file = File::from(fd);
        if !file.metadata()?.is_file() {
            return Err(io::Error::new(
                io::ErrorKind::InvalidInput,
                "not a regular file (a device, FIFO or socket): not read",
            ));
        }
        Ok(CameraFile {
            file,
            rate: self.rate,
            started: Instant::now(),
            read: 0,
        })
    }
}

impl Volume {
    /// A small file of the card read whole — an ID file, a marker — before anything else is
    /// known of the device: opened as [`Volume::open`] does, and at most `limit` bytes.
    pub fn read_small(&self, rel: &[u8], limit: u64) -> io::Result<Vec<u8>> {
        use std::io::Read as _;
        let f = self.open(rel)?;
        let size = f.file.metadata()?.len();
        if size > limit {
            return Err(io::Error::new(
                io::ErrorKind::InvalidData,
                format!("{size} bytes, larger than {limit}: not read"),
            ));
        }
        let mut out = Vec::with_capacity(size as usize);
        // At most limit + 1 bytes, whatever the size said (a file growing while read).
        f.file.take(limit + 1).read_to_end(&mut out)?;
        if out.len() as u64 > limit {
            return Err(io::Error::new(
                io::ErrorKind::InvalidData,
                format!("larger than {limit} bytes: not read"),
            ));
        }
        Ok(out)
    }
}

/// An open file on a camera volume.
#[derive(Debug)]
pub struct CameraFile {
    file: File,
    rate: Option<u64>,
    started: Instant,
    read: u64,
}

impl CameraFile {
    pub fn meta(&self) -> io::Result<FileMeta> {
        Ok(FileMeta::of(&self.file.metadata()?))
    }

    /// Continue at `offset` (resuming an interrupted copy).
    pub fn seek_to(&mut self, offset: u64) -> io::Result<()> {
        use std::io::Seek as _;
        self.file.seek(io::SeekFrom::Start(offset))?;
        Ok(())
    }
}

impl std::io::Seek for CameraFile {
    fn seek(&mut self, pos: io::SeekFrom) -> io::Result<u64> {
        self.file.seek(pos)
    }
}

impl Read for CameraFile {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let n = self.file.read(buf)?;
        self.read += n as u64;
        if let Some(rate) = self.rate.filter(|r| *r > 0) {
            // Sleep until the bytes read so far would have taken that long at `rate`.
            let due = Duration::from_secs_f64(self.read as f64 / rate as f64);
            let elapsed = self.started.elapsed();
            if due > elapsed {
                std::thread::sleep(due - elapsed);
            }
        }
        Ok(n)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn refuses_links_out_of_the_volume() {
        let tmp = tempfile::tempdir().unwrap();
        let root = tmp.path().join("card");
        fs_err::create_dir_all(root.join("DCIM")).unwrap();
        fs_err::write(root.join("DCIM/a.mp4"), b"abc").unwrap();
        fs_err::write(tmp.path().join("secret"), b"no").unwrap();
        std::os::unix::fs::symlink("../../secret", root.join("DCIM/up.mp4")).unwrap();
        std::os::unix::fs::symlink("/etc/passwd", root.join("DCIM/abs.mp4")).unwrap();
        std::os::unix::fs::symlink(tmp.path(), root.join("outside")).unwrap();
        let v = Volume::new(root, None);
        let mut s = String::new();
        v.open(b"DCIM/a.mp4")
            .unwrap()
            .read_to_string(&mut s)
            .unwrap();
        assert_eq!(s, "abc");
        assert!(v.open(b"DCIM/up.mp4").is_err());
        assert!(v.open(b"DCIM/abs.mp4").is_err());
        assert!(v.open(b"outside/secret").is_err());
        assert!(v.open(b"../secret").is_err());
        assert!(v.open(b"/etc/passwd").is_err());
    }
}
