//! Spool I/O that bypasses the page cache: the copy is re-read with `O_DIRECT`, so the re-read
//! check compares the bytes the disk gives back, not a cached copy of what was written; and, with
//! `acquire.direct_write`, written with it too, so each byte crosses memory once on its way to
//! the disk. Written buffered (the default: the kernel's writeback makes large requests of many
//! cameras' small writes, which measured faster), a copy's pages are evicted after each sync.
//!
//! `O_DIRECT` asks for aligned memory, lengths and offsets ([`ALIGN`]): the pool's buffers are
//! aligned and a copy proceeds in whole buffers, so a direct write sends only a file's last few
//! bytes (its tail past the last [`ALIGN`]) through the page cache, evicted with
//! `POSIX_FADV_DONTNEED` once synced. A filesystem that refuses `O_DIRECT` (`EINVAL` at open
//! or at the first write: tmpfs on some kernels, some FUSE mounts) gets the buffered path for
//! the whole file, its pages evicted before a re-read; the digests are the same. (Some
//! filesystems take `O_DIRECT` and still serve reads from their own caches: btrfs compressed
//! extents, `data=journal` ext4, NFS. The spool belongs on a plain ext4 or XFS disk.)

use evidock_verify::digest::ALIGN;
use std::fs::{File, OpenOptions};
use std::io;
use std::os::unix::fs::{FileExt as _, OpenOptionsExt as _};
use std::path::Path;

/// How a spool file is being read or written.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum IoMode {
    /// `O_DIRECT`: no page cache.
    Direct,
    /// Through the page cache, evicted after each sync (spool writes by default; reads where a
    /// filesystem refuses `O_DIRECT`).
    Buffered,
}

impl IoMode {
    pub fn name(self) -> &'static str {
        match self {
            IoMode::Direct => "direct",
            IoMode::Buffered => "buffered",
        }
    }
}

fn is_refusal(e: &io::Error) -> bool {
    e.raw_os_error() == Some(libc::EINVAL)
}

/// Open `path` with `O_DIRECT` when `direct` and the filesystem allows it, else buffered.
fn open(opts: &mut OpenOptions, path: &Path, direct: bool) -> io::Result<(File, IoMode)> {
    if direct {
        match opts.clone().custom_flags(libc::O_DIRECT).open(path) {
            Ok(f) => return Ok((f, IoMode::Direct)),
            Err(e) if is_refusal(&e) => {
                tracing::warn!(file = %path.display(), "the filesystem refuses O_DIRECT: buffered I/O, pages evicted after each sync");
            }
            Err(e) => return Err(e),
        }
    }
    Ok((opts.open(path)?, IoMode::Buffered))
}

/// Leave `O_DIRECT` on an open file (for a tail, or after a refusal at the first I/O).
fn leave_direct(file: &File) -> io::Result<()> {
    let flags = rustix::fs::fcntl_getfl(file)?;
    rustix::fs::fcntl_setfl(file, flags - rustix::fs::OFlags::DIRECT)?;
    Ok(())
}

/// Drop a synced file's cached pages (best effort: clean pages are evicted, dirty ones stay).
pub fn evict(file: &File) {
    let _ = rustix::fs::fadvise(file, 0, None, rustix::fs::Advice::DontNeed);
}

fn aligned(ptr: *const u8, offset: u64) -> bool {
    (ptr as usize).is_multiple_of(ALIGN) && offset.is_multiple_of(ALIGN as u64)
}

/// The spool file a copy writes, at an offset it tracks itself (positional writes).
#[derive(Debug)]
pub struct SpoolWriter {
    file: File,
    mode: IoMode,
    offset: u64,
}

impl SpoolWriter {
    /// Open (creating, never truncating) `path` for writing at offset 0.
    pub fn open(path: &Path, direct: bool) -> io::Result<Self> {
        let (file, mode) = open(
            OpenOptions::new()
                .create(true)
                .truncate(false)
                .read(true)
                .write(true),
            path,
            direct,
        )?;
        Ok(SpoolWriter {
            file,
            mode,
            offset: 0,
        })
    }

    pub fn mode(&self) -> IoMode {
        self.mode
    }

    /// The file's size now.
    pub fn size(&self) -> io::Result<u64> {
        Ok(self.file.metadata()?.len())
    }

    /// Keep the first `len` bytes and write on from there.
    pub fn truncate_to(&mut self, len: u64) -> io::Result<()> {
        self.file.set_len(len)?;
        self.offset = len;
        Ok(())
    }

    fn go_buffered(&mut self) -> io::Result<()> {
        if self.mode == IoMode::Direct {
            leave_direct(&self.file)?;
            self.mode = IoMode::Buffered;
        }
        Ok(())
    }

    /// Append `data`. Whole aligned blocks go straight to the disk; a tail goes through the page
    /// cache (and so does everything after it: the offset is no longer aligned).
    pub fn write(&mut self, mut data: &[u8]) -> io::Result<()> {
        if self.mode == IoMode::Direct {
            let whole = if aligned(data.as_ptr(), self.offset) {
                data.len() - data.len() % ALIGN
            } else {
                0
            };
            if whole > 0 {
                match self.file.write_all_at(&data[..whole], self.offset) {
                    Ok(()) => {
                        self.offset += whole as u64;
                        data = &data[whole..];
                    }
                    // Refused at the first write rather than at open (some FUSE mounts): the
                    // same bytes again, buffered. A partly done write is simply written over.
                    Err(e) if is_refusal(&e) => self.go_buffered()?,
                    Err(e) => return Err(e),
                }
            }
            if !data.is_empty() {
                self.go_buffered()?;
            }
        }
        if !data.is_empty() {
            self.file.write_all_at(data, self.offset)?;
            self.offset += data.len() as u64;
        }
        Ok(())
    }

    /// Make the data written so far durable (a resume may start at [`SpoolWriter::offset`]).
    pub fn sync_data(&mut self) -> io::Result<()> {
        self.file.sync_data()?;
        if self.mode == IoMode::Buffered {
            evict(&self.file);
        }
        Ok(())
    }

    /// Make data and metadata durable, and leave no page of the file cached.
    pub fn sync_all(&mut self) -> io::Result<()> {
        self.file.sync_all()?;
        // Even in direct mode: the tail was written buffered.
        evict(&self.file);
        Ok(())
    }
}

/// A spool file read back from the disk, in the caller's (aligned) buffers.
#[derive(Debug)]
pub struct SpoolReader {
    file: File,
    mode: IoMode,
    len: u64,
}

impl SpoolReader {
    /// Open `path` for reading; buffered, its (clean, synced) cached pages are dropped first so
    /// the bytes read are the disk's.
    pub fn open(path: &Path, direct: bool) -> io::Result<Self> {
        let (file, mode) = open(OpenOptions::new().read(true), path, direct)?;
        if mode == IoMode::Buffered {
            evict(&file);
        }
        let len = file.metadata()?.len();
        Ok(SpoolReader { file, mode, len })
    }

    pub fn mode(&self) -> IoMode {
        self.mode
    }

    /// The file's size when opened.
    pub fn size(&self) -> u64 {
        self.len
    }

    /// Fill `buf` from `offset` as far as the file goes; fewer bytes only at its end.
    pub fn read_at(&mut self, buf: &mut [u8], offset: u64) -> io::Result<usize> {
        let mut filled = 0;
        while filled < buf.len() {
            let at = offset + filled as u64;
            let rest = &mut buf[filled..];
            if self.mode == IoMode::Direct
                && !(aligned(rest.as_ptr(), at) && rest.len().is_multiple_of(ALIGN))
            {
                self.go_buffered()?;
            }
            match self.file.read_at(rest, at) {
                Ok(0) => break,
                // A direct read comes back short of a whole block only at the end of the file.
                Ok(n) if self.mode == IoMode::Direct && !n.is_multiple_of(ALIGN) => {
                    filled += n;
                    break;
                }
                Ok(n) => filled += n,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) if self.mode == IoMode::Direct && is_refusal(&e) => self.go_buffered()?,
                Err(e) => return Err(e),
            }
        }
        Ok(filled)
    }

    fn go_buffered(&mut self) -> io::Result<()> {
        leave_direct(&self.file)?;
        // What is read from here on must still be the disk's bytes.
        evict(&self.file);
        self.mode = IoMode::Buffered;
        Ok(())
    }
}

impl Drop for SpoolReader {
    fn drop(&mut self) {
        // What a buffered read (or a buffered tail) brought in is not kept: the spool is not
        // a cache.
        evict(&self.file);
    }
}

#[cfg(test)]
pub(crate) mod tests;
