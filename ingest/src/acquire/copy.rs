//! Copying one file off a camera: one read of every byte, the same buffers feeding the spool
//! file and every digest, durable offsets for resuming, and a re-read of the spool copy from the
//! disk (not the page cache) that must give the same digests.

use crate::device::volume::{CameraFile, FileMeta};
use evidock_verify::digest::{self, BufferPool, DigestAlgorithm, DigestSet, Digests, MultiHasher};
use evidock_verify::id::Sha256;
use std::fs::{File, OpenOptions};
use std::io::{self, Read as _, Seek as _, SeekFrom, Write as _};
use std::path::{Path, PathBuf};

/// Why a copy stopped.
#[derive(Debug, thiserror::Error)]
pub enum CopyError {
    /// Reading the camera failed (EIO, the camera left…). The partial copy is kept.
    #[error("reading {what} from the camera failed at byte {offset}: {source}")]
    Camera {
        what: &'static str,
        offset: u64,
        #[source]
        source: io::Error,
    },
    /// Writing or reading the spool failed (e.g. the disk is full).
    #[error("spool file {path}: {op} failed: {source}")]
    Spool {
        op: &'static str,
        path: PathBuf,
        #[source]
        source: io::Error,
    },
    #[error(transparent)]
    Hasher(#[from] digest::HasherStopped),
    #[error("{0}")]
    Journal(String),
    /// The camera is leaving (undocked) or the station is shutting down.
    #[error("stopped at byte {offset}: {reason}")]
    Stopped { offset: u64, reason: &'static str },
}

impl CopyError {
    pub fn is_disk_full(&self) -> bool {
        matches!(self, CopyError::Spool { source, .. }
            if matches!(source.raw_os_error(), Some(libc::ENOSPC) | Some(libc::EDQUOT)))
    }
}

/// A finished copy.
#[derive(Debug, Clone)]
pub struct Copied {
    pub digests: Digests,
    pub size: u64,
    /// The file's size or mtime on the camera changed while it was read.
    pub changed: bool,
    /// The copy continued an interrupted one from this offset.
    pub resumed_at: Option<u64>,
}

/// Copy `src` into `part`, starting at `resume_at` (bytes before it are already in `part` and
/// durable: they are re-hashed from the spool, never trusted blindly, and not read from the
/// camera again). `durable(offset)` is called after each fsync so the journal can record how far
/// a resume may start; `progress(n)` after each chunk.
#[allow(clippy::too_many_arguments)]
pub fn copy(
    src: &mut CameraFile,
    before: FileMeta,
    part: &Path,
    resume_at: u64,
    sync_every: u64,
    pool: &BufferPool,
    hasher: &mut MultiHasher,
    durable: &mut dyn FnMut(u64) -> Result<(), String>,
    progress: &mut dyn FnMut(u64),
    stop: &dyn Fn() -> Option<&'static str>,
) -> Result<Copied, CopyError> {
    let spool_err = |op: &'static str| {
        move |source: io::Error| CopyError::Spool {
            op,
            path: part.to_path_buf(),
            source,
        }
    };
    if let Some(dir) = part.parent() {
        std::fs::create_dir_all(dir).map_err(spool_err("create directory"))?;
    }
    let mut out = OpenOptions::new()
        .create(true)
        .truncate(false)
        .read(true)
        .write(true)
        .open(part)
        .map_err(spool_err("open"))?;
    // Resume: keep exactly the durable prefix, and feed it to the digests from the spool.
    let mut offset = 0u64;
    if resume_at > 0 {
        let have = out.metadata().map_err(spool_err("stat"))?.len();
        let start = resume_at.min(have);
        out.set_len(start).map_err(spool_err("truncate"))?;
        out.seek(SeekFrom::Start(0)).map_err(spool_err("seek"))?;
        let mut left = start;
        while left > 0 {
            let mut buf = pool.take();
            let want = (buf.len() as u64).min(left) as usize;
            out.read_exact(&mut buf[..want])
                .map_err(spool_err("re-read for resume"))?;
            hasher.update(&pool.chunk(buf, want))?;
            left -= want as u64;
        }
        offset = start;
        src.seek_to(offset).map_err(|source| CopyError::Camera {
            what: "the file (seek to resume)",
            offset,
            source,
        })?;
    } else {
        out.set_len(0).map_err(spool_err("truncate"))?;
    }
    out.seek(SeekFrom::Start(offset))
        .map_err(spool_err("seek"))?;
    let resumed_at = (offset > 0).then_some(offset);

    let mut since_sync = 0u64;
    loop {
        if let Some(reason) = stop() {
            // Make what was copied durable, so the next docking resumes from here.
            out.sync_data().map_err(spool_err("fsync"))?;
            durable(offset).map_err(CopyError::Journal)?;
            return Err(CopyError::Stopped { offset, reason });
        }
        let mut buf = pool.take();
        let n = match digest::read_full(src, &mut buf) {
            Ok(n) => n,
            Err(source) => {
                // Keep what is good for a resume before reporting.
                if out.sync_data().is_ok() {
                    let _ = durable(offset);
                }
                return Err(CopyError::Camera {
                    what: "the file",
                    offset,
                    source,
                });
            }
        };
        if n == 0 {
            break;
        }
        let chunk = pool.chunk(buf, n);
        hasher.update(&chunk)?;
        out.write_all(&chunk).map_err(spool_err("write"))?;
        offset += n as u64;
        since_sync += n as u64;
        progress(n as u64);
        if since_sync >= sync_every {
            out.sync_data().map_err(spool_err("fsync"))?;
            durable(offset).map_err(CopyError::Journal)?;
            since_sync = 0;
        }
    }
    out.sync_all().map_err(spool_err("fsync"))?;
    let after = src.meta().map_err(|source| CopyError::Camera {
        what: "the file's metadata",
        offset,
        source,
    })?;
    let changed = after != before || offset != before.size;
    let digests = hasher.finish()?;
    Ok(Copied {
        digests,
        size: offset,
        changed,
        resumed_at,
    })
}

/// The outcome of re-reading a spool copy from the disk.
#[derive(Debug, Clone)]
pub struct Checked {
    /// Digests that differ from the copy's (empty: the copy is good).
    pub mismatched: Vec<DigestAlgorithm>,
    /// SHA-256 of the first and last MiB (for recognising the file at the next docking).
    pub edge: Sha256,
}

/// Re-read `part` from the disk and compare its digests with `expected`. The page cache is
/// dropped first (the file was fsynced, so its pages are clean and `POSIX_FADV_DONTNEED` evicts
/// them): the bytes compared are the bytes on the disk.
pub fn check(part: &Path, expected: &Digests, set: DigestSet) -> Result<Checked, CopyError> {
    let err = |op: &'static str| {
        move |source: io::Error| CopyError::Spool {
            op,
            path: part.to_path_buf(),
            source,
        }
    };
    let mut f = File::open(part).map_err(err("open for re-read"))?;
    drop_cache(&f);
    let (digests, _) = digest::hash_reader(&mut f, set).map_err(|e| match e {
        digest::HashError::Io(source) => CopyError::Spool {
            op: "re-read",
            path: part.to_path_buf(),
            source,
        },
        digest::HashError::Stopped(s) => CopyError::Hasher(s),
    })?;
    let edge = edge_hash(&mut f).map_err(err("read edges"))?;
    Ok(Checked {
        mismatched: expected.mismatches(&digests),
        edge,
    })
}

/// Ask the kernel to drop a file's cached pages (best effort; the file must be synced).
pub fn drop_cache(f: &File) {
    let _ = rustix::fs::fadvise(f, 0, None, rustix::fs::Advice::DontNeed);
}

/// The edge size hashed to recognise a file again.
pub const EDGE: u64 = 1 << 20;

/// SHA-256 of the first MiB and the last MiB (the whole file if shorter than 2 MiB).
pub fn edge_hash<R: io::Read + io::Seek>(r: &mut R) -> io::Result<Sha256> {
    use sha2::Digest as _;
    let len = r.seek(SeekFrom::End(0))?;
    let mut h = sha2::Sha256::new();
    h.update(len.to_be_bytes());
    let mut buf = vec![0u8; EDGE as usize];
    r.seek(SeekFrom::Start(0))?;
    let n = digest::read_full(r, &mut buf[..len.min(EDGE) as usize])?;
    h.update(&buf[..n]);
    if len > EDGE {
        let start = len.saturating_sub(EDGE).max(EDGE);
        r.seek(SeekFrom::Start(start))?;
        let n = digest::read_full(r, &mut buf[..(len - start) as usize])?;
        h.update(&buf[..n]);
    }
    Ok(Sha256(h.finalize().into()))
}
