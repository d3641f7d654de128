//! Copying one file off a camera: one read of every byte, the same buffers feeding the spool
//! file and every digest, durable offsets for resuming, and a re-read of the spool copy from the
//! disk (not the page cache) that must give the same digests.

use crate::device::volume::{CameraFile, FileMeta};

/// A file being read off a camera: bytes, metadata, and seeking to resume. A trait so tests can
/// inject read errors and files that change under the copy.
pub trait SourceFile: io::Read {
    fn meta(&self) -> io::Result<FileMeta>;
    fn seek_to(&mut self, offset: u64) -> io::Result<()>;
}

impl SourceFile for CameraFile {
    fn meta(&self) -> io::Result<FileMeta> {
        CameraFile::meta(self)
    }
    fn seek_to(&mut self, offset: u64) -> io::Result<()> {
        CameraFile::seek_to(self, offset)
    }
}
use super::direct::{IoMode, SpoolReader, SpoolWriter};
use evidock_verify::digest::{self, ALIGN, BufferPool, DigestAlgorithm, Digests, MultiHasher};
use evidock_verify::id::Sha256;
use std::io::{self, SeekFrom};
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
        // By kind, not errno: an error that names its path (fs-err) has no raw OS code.
        matches!(self, CopyError::Spool { source, .. }
            if matches!(source.kind(), io::ErrorKind::StorageFull | io::ErrorKind::QuotaExceeded))
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
    /// How the spool file was written: `Direct` unless the filesystem refused `O_DIRECT`.
    pub io: IoMode,
}

/// Where and how a copy is made: the spool file, the buffers, and how it becomes durable.
#[derive(Debug, Clone, Copy)]
pub struct Target<'a> {
    pub part: &'a Path,
    /// fsync and record the offset every this many bytes.
    pub sync_every: u64,
    /// Write with `O_DIRECT` where the filesystem allows it (else through the page cache, the
    /// pages evicted after each sync).
    pub direct_write: bool,
    /// Read the spool back (a resume's durable prefix) with `O_DIRECT` where allowed.
    pub direct_read: bool,
    pub pool: &'a BufferPool,
}

/// Copy `src` into `part`, starting at `resume_at` (bytes before it are already in `part` and
/// durable: they are re-hashed from the spool, never trusted blindly, and not read from the
/// camera again). `durable(offset)` is called after each fsync so the journal can record how far
/// a resume may start; `progress(n)` after each chunk.
///
/// A resume starts at `resume_at` rounded down to [`ALIGN`] (every offset this copy records is
/// aligned already: it copies in whole pool buffers): the few bytes before it are read from
/// the camera again rather than written at an offset `O_DIRECT` refuses.
#[allow(clippy::too_many_arguments)]
pub fn copy(
    src: &mut dyn SourceFile,
    before: FileMeta,
    to: Target<'_>,
    resume_at: u64,
    hasher: &mut MultiHasher,
    durable: &mut dyn FnMut(u64) -> Result<(), String>,
    progress: &mut dyn FnMut(u64),
    stop: &dyn Fn() -> Option<&'static str>,
) -> Result<Copied, CopyError> {
    let part = to.part;
    let pool = to.pool;
    let spool_err = |op: &'static str| {
        move |source: io::Error| CopyError::Spool {
            op,
            path: part.to_path_buf(),
            source,
        }
    };
    if let Some(dir) = part.parent() {
        evidock_store::fsutil::create_dir_all(dir)
            .map_err(|e| spool_err("create directory")(e.source))?;
    }
    // A `.part` that is also linked elsewhere is an original already committed (a crash came
    // between its link into the spool and the removal of the `.part`): writing into it would
    // change content-addressed bytes. Unlink it and copy afresh.
    let mut resume_at = resume_at;
    if let Ok(m) = fs_err::metadata(part)
        && std::os::unix::fs::MetadataExt::nlink(&m) > 1
    {
        fs_err::remove_file(part).map_err(spool_err("unlink a committed copy's name"))?;
        resume_at = 0;
    }
    let mut out = SpoolWriter::open(part, to.direct_write).map_err(spool_err("open"))?;
    // Resume: keep exactly the durable prefix, and feed it to the digests from the spool.
    let mut offset = 0u64;
    if resume_at > 0 {
        let have = out.size().map_err(spool_err("stat"))?;
        let start = resume_at.min(have) / ALIGN as u64 * ALIGN as u64;
        out.truncate_to(start).map_err(spool_err("truncate"))?;
        if start > 0 {
            let mut back = SpoolReader::open(part, to.direct_read).map_err(spool_err("open"))?;
            while offset < start {
                let mut buf = pool.take();
                let want = (buf.len() as u64).min(start - offset) as usize;
                let n = back
                    .read_at(&mut buf[..want], offset)
                    .map_err(spool_err("re-read for resume"))?;
                if n < want {
                    return Err(spool_err("re-read for resume")(
                        io::ErrorKind::UnexpectedEof.into(),
                    ));
                }
                hasher.update(&pool.chunk(buf, n))?;
                offset += n as u64;
            }
        }
        src.seek_to(offset).map_err(|source| CopyError::Camera {
            what: "the file (seek to resume)",
            offset,
            source,
        })?;
    } else {
        out.truncate_to(0).map_err(spool_err("truncate"))?;
    }
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
                // (The camera's error is the one reported; a resume point not recorded only
                // means the next docking copies this file again from an earlier offset.)
                match out.sync_data() {
                    Ok(()) => {
                        if let Err(e) = durable(offset) {
                            tracing::error!(file = %part.display(), offset, error = %e, "journal: the resume point was not recorded");
                        }
                    }
                    // Not the error reported (the camera's is), but a disk error all the same.
                    Err(e) => {
                        tracing::error!(file = %part.display(), offset, error = %e, "spool fsync failed after the camera's read error: no resume point recorded")
                    }
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
        out.write(&chunk).map_err(spool_err("write"))?;
        offset += n as u64;
        since_sync += n as u64;
        progress(n as u64);
        if since_sync >= to.sync_every {
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
        io: out.mode(),
    })
}

/// The outcome of re-reading a spool copy from the disk.
#[derive(Debug, Clone)]
pub struct Checked {
    /// Digests that differ from the copy's (empty: the copy is good).
    pub mismatched: Vec<DigestAlgorithm>,
    /// SHA-256 of the first and last MiB (for recognising the file at the next docking).
    pub edge: Sha256,
    /// How the re-read went: `Direct` unless the filesystem refused `O_DIRECT`.
    pub io: IoMode,
}

/// Re-read `part` from the disk and compare its digests with `expected`: with `O_DIRECT` (or,
/// where refused, buffered after dropping the file's clean pages), so the bytes compared are the
/// bytes on the disk. Every digest of `hasher`'s set is computed again over the whole file, and
/// the edge hash in the same pass.
pub fn check(
    part: &Path,
    expected: &Digests,
    direct: bool,
    pool: &BufferPool,
    hasher: &mut MultiHasher,
) -> Result<Checked, CopyError> {
    let err = |op: &'static str| {
        move |source: io::Error| CopyError::Spool {
            op,
            path: part.to_path_buf(),
            source,
        }
    };
    let mut f = SpoolReader::open(part, direct).map_err(err("open for re-read"))?;
    let mut edge = EdgeHasher::new(f.size());
    let mut offset = 0u64;
    loop {
        let mut buf = pool.take();
        let n = f.read_at(&mut buf, offset).map_err(err("re-read"))?;
        if n == 0 {
            break;
        }
        edge.feed(offset, &buf[..n]);
        hasher.update(&pool.chunk(buf, n))?;
        offset += n as u64;
    }
    let digests = hasher.finish()?;
    let mut mismatched = expected.mismatches(&digests);
    if offset != f.size() && mismatched.is_empty() {
        // Shorter than it was when opened: nothing to trust (the digests cannot match anyway).
        mismatched.push(DigestAlgorithm::Sha256);
    }
    Ok(Checked {
        mismatched,
        edge: edge.finish(),
        io: f.mode(),
    })
}

/// [`edge_hash`] computed while the whole file streams past, from its length known up front.
struct EdgeHasher {
    len: u64,
    /// The bytes hashed: `[0, head)` and `[tail, len)`.
    head: u64,
    tail: u64,
    h: sha2::Sha256,
}

impl EdgeHasher {
    fn new(len: u64) -> Self {
        use sha2::Digest as _;
        let mut h = sha2::Sha256::new();
        h.update(len.to_be_bytes());
        EdgeHasher {
            len,
            head: len.min(EDGE),
            tail: if len > EDGE {
                len.saturating_sub(EDGE).max(EDGE)
            } else {
                len
            },
            h,
        }
    }

    /// `data` read at `offset` (chunks come in order).
    fn feed(&mut self, offset: u64, data: &[u8]) {
        use sha2::Digest as _;
        let end = offset + data.len() as u64;
        for (from, to) in [(0, self.head), (self.tail, self.len)] {
            let (a, b) = (offset.max(from), end.min(to));
            if a < b {
                self.h
                    .update(&data[(a - offset) as usize..(b - offset) as usize]);
            }
        }
    }

    fn finish(self) -> Sha256 {
        use sha2::Digest as _;
        Sha256(self.h.finalize().into())
    }
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

#[cfg(test)]
mod tests;
