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
}

/// Copy `src` into `part`, starting at `resume_at` (bytes before it are already in `part` and
/// durable: they are re-hashed from the spool, never trusted blindly, and not read from the
/// camera again). `durable(offset)` is called after each fsync so the journal can record how far
/// a resume may start; `progress(n)` after each chunk.
#[allow(clippy::too_many_arguments)]
pub fn copy(
    src: &mut dyn SourceFile,
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
        evidock_store::fsutil::create_dir_all(dir)
            .map_err(|e| spool_err("create directory")(e.source))?;
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
                // (The camera's error is the one reported; a resume point not recorded only
                // means the next docking copies this file again from an earlier offset.)
                if out.sync_data().is_ok()
                    && let Err(e) = durable(offset)
                {
                    tracing::error!(file = %part.display(), offset, error = %e, "journal: the resume point was not recorded");
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
    let (digests, _) = digest::hash_stream(&mut f, set).map_err(|e| match e {
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

#[cfg(test)]
mod tests {
    use super::*;
    use std::cell::Cell;

    /// A camera file in memory that can fail or change under the copy.
    struct Fake {
        data: Vec<u8>,
        pos: usize,
        fail_at: Option<usize>,
        meta: Cell<FileMeta>,
        change_meta_at: Option<usize>,
    }

    impl Fake {
        fn new(data: Vec<u8>) -> Self {
            let size = data.len() as u64;
            Fake {
                data,
                pos: 0,
                fail_at: None,
                meta: Cell::new(FileMeta { size, mtime_ns: 1 }),
                change_meta_at: None,
            }
        }
    }

    impl io::Read for Fake {
        fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
            if let Some(f) = self.fail_at
                && self.pos >= f
            {
                return Err(io::Error::from_raw_os_error(libc::EIO));
            }
            if self.change_meta_at.is_some_and(|c| self.pos >= c) {
                let m = self.meta.get();
                self.meta.set(FileMeta {
                    size: m.size + 10,
                    mtime_ns: 2,
                });
            }
            let end = (self.pos + buf.len().min(7000)).min(self.data.len());
            let end = self.fail_at.map_or(end, |f| end.min(f.max(self.pos)));
            let n = end - self.pos;
            buf[..n].copy_from_slice(&self.data[self.pos..end]);
            self.pos = end;
            Ok(n)
        }
    }

    impl SourceFile for Fake {
        fn meta(&self) -> io::Result<FileMeta> {
            Ok(self.meta.get())
        }
        fn seek_to(&mut self, offset: u64) -> io::Result<()> {
            self.pos = offset as usize;
            Ok(())
        }
    }

    fn data(n: usize) -> Vec<u8> {
        (0..n).map(|i| (i * 31 + i / 977) as u8).collect()
    }

    fn full_digests(d: &[u8], set: DigestSet) -> Digests {
        digest::hash_reader(&mut &d[..], set).unwrap().0
    }

    struct Run {
        durable: Vec<u64>,
        progress: u64,
    }

    fn run(
        src: &mut Fake,
        part: &Path,
        resume: u64,
        stop_after: Option<u64>,
    ) -> (Result<Copied, CopyError>, Run) {
        let pool = BufferPool::new(3, 16 * 1024);
        let mut hasher = MultiHasher::new(DigestSet::ALL, 3).unwrap();
        let mut r = Run {
            durable: vec![],
            progress: 0,
        };
        let before = src.meta().unwrap();
        let progressed = Cell::new(0u64);
        let res = copy(
            src,
            before,
            part,
            resume,
            40_000,
            &pool,
            &mut hasher,
            &mut |o| {
                r.durable.push(o);
                Ok(())
            },
            &mut |n| progressed.set(progressed.get() + n),
            &|| {
                stop_after
                    .filter(|s| progressed.get() >= *s)
                    .map(|_| "the camera was undocked")
            },
        );
        r.progress = progressed.get();
        (res, r)
    }

    #[test]
    fn copy_check_and_edges() {
        let tmp = tempfile::tempdir().unwrap();
        let part = tmp.path().join("p/a.part");
        let d = data(300_000);
        let mut src = Fake::new(d.clone());
        let (res, r) = run(&mut src, &part, 0, None);
        let c = res.unwrap();
        assert_eq!(c.digests, full_digests(&d, DigestSet::ALL));
        assert_eq!(c.size, d.len() as u64);
        assert!(!c.changed);
        assert!(c.resumed_at.is_none());
        assert_eq!(r.progress, d.len() as u64);
        assert!(!r.durable.is_empty() && r.durable.iter().all(|o| *o <= d.len() as u64));
        let checked = check(&part, &c.digests, DigestSet::ALL).unwrap();
        assert!(checked.mismatched.is_empty());
        assert_eq!(checked.edge, edge_hash(&mut io::Cursor::new(&d)).unwrap());

        // A bit flipped on the disk after the copy is caught by the re-read.
        let mut on_disk = fs_err::read(&part).unwrap();
        on_disk[123_456] ^= 4;
        fs_err::write(&part, &on_disk).unwrap();
        let bad = check(&part, &c.digests, DigestSet::ALL).unwrap();
        assert_eq!(
            bad.mismatched,
            vec![
                DigestAlgorithm::Sha256,
                DigestAlgorithm::Sm3,
                DigestAlgorithm::Md5
            ]
        );
    }

    #[test]
    fn interrupted_copy_resumes_from_the_durable_offset() {
        let tmp = tempfile::tempdir().unwrap();
        let part = tmp.path().join("b.part");
        let d = data(500_000);
        let mut src = Fake::new(d.clone());
        let (res, r) = run(&mut src, &part, 0, Some(200_000));
        let offset = match res {
            Err(CopyError::Stopped { offset, .. }) => offset,
            other => panic!("expected a stop, got {other:?}"),
        };
        assert_eq!(r.durable.last(), Some(&offset));
        // Garbage past the durable offset (an unsynced tail) must not survive the resume.
        let mut f = OpenOptions::new().append(true).open(&part).unwrap();
        f.write_all(b"garbage after the durable offset").unwrap();
        drop(f);
        let mut again = Fake::new(d.clone());
        let (res, r2) = run(&mut again, &part, offset, None);
        let c = res.unwrap();
        assert_eq!(c.resumed_at, Some(offset));
        assert_eq!(c.digests, full_digests(&d, DigestSet::ALL));
        // The camera was read only for the bytes after the offset.
        assert_eq!(r2.progress, d.len() as u64 - offset);
        assert_eq!(fs_err::read(&part).unwrap(), d);
    }

    #[test]
    fn read_errors_and_changing_files() {
        let tmp = tempfile::tempdir().unwrap();
        let d = data(100_000);
        let mut src = Fake::new(d.clone());
        src.fail_at = Some(50_000);
        let (res, r) = run(&mut src, &tmp.path().join("c.part"), 0, None);
        match res {
            Err(CopyError::Camera { offset, source, .. }) => {
                // Whole buffers before the failing read are kept, and durable for a resume.
                assert!(offset <= 50_000 && offset > 30_000, "{offset}");
                assert_eq!(source.raw_os_error(), Some(libc::EIO));
                assert_eq!(r.durable.last(), Some(&offset));
                let kept = fs_err::read(tmp.path().join("c.part")).unwrap();
                assert_eq!(kept, &d[..offset as usize]);
            }
            other => panic!("expected EIO, got {other:?}"),
        }

        let mut growing = Fake::new(d.clone());
        growing.change_meta_at = Some(30_000);
        let (res, _) = run(&mut growing, &tmp.path().join("d.part"), 0, None);
        let c = res.unwrap();
        assert!(c.changed);
        assert_eq!(c.digests, full_digests(&d, DigestSet::ALL));

        // Zero bytes is a file too.
        let mut empty = Fake::new(vec![]);
        let (res, _) = run(&mut empty, &tmp.path().join("e.part"), 0, None);
        assert_eq!(res.unwrap().size, 0);
    }
}
