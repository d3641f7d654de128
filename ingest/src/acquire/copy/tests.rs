//! Unit tests of one file's copy (copy.rs): resumes, camera errors, files that change under
//! the copy, the re-read check; apart so the copy reads on its own.

use super::*;
use crate::acquire::direct::tests::cached_bytes;
use evidock_verify::digest::DigestSet;
use std::cell::Cell;
use std::fs::OpenOptions;
use std::io::Write as _;

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
    run_with(src, part, resume, stop_after, (true, true))
}

fn run_with(
    src: &mut Fake,
    part: &Path,
    resume: u64,
    stop_after: Option<u64>,
    (direct_write, direct_read): (bool, bool),
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
        Target {
            part,
            sync_every: 40_000,
            direct_write,
            direct_read,
            pool: &pool,
        },
        resume,
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

fn recheck(part: &Path, expected: &Digests, direct: bool) -> Checked {
    let pool = BufferPool::new(3, 16 * 1024);
    let mut hasher = MultiHasher::new(DigestSet::ALL, 3).unwrap();
    check(part, expected, direct, &pool, &mut hasher).unwrap()
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
    let checked = recheck(&part, &c.digests, true);
    assert!(checked.mismatched.is_empty());
    assert_eq!(checked.edge, edge_hash(&mut io::Cursor::new(&d)).unwrap());

    // A bit flipped on the disk after the copy is caught by the re-read.
    let mut on_disk = fs_err::read(&part).unwrap();
    on_disk[123_456] ^= 4;
    fs_err::write(&part, &on_disk).unwrap();
    let bad = recheck(&part, &c.digests, true);
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

/// Whether the filesystem of `dir` takes `O_DIRECT` (tmpfs before Linux 6.6 does not).
fn takes_direct(dir: &Path) -> bool {
    use std::os::unix::fs::OpenOptionsExt as _;
    OpenOptions::new()
        .create(true)
        .write(true)
        .truncate(true)
        .custom_flags(libc::O_DIRECT)
        .open(dir.join("probe"))
        .is_ok()
}

/// The copy and its re-read leave nothing of the file in the page cache (each byte crosses
/// memory once on its way to the disk, and the check reads the disk's bytes), and say they went
/// direct where the filesystem allows it. Before #17 the re-read brought the whole copy back
/// into the cache.
#[test]
fn copy_and_reread_bypass_the_page_cache() {
    let tmp = tempfile::tempdir().unwrap();
    let direct = takes_direct(tmp.path());
    let part = tmp.path().join("f.part");
    let d = data(3 << 20);
    let (res, _) = run(&mut Fake::new(d.clone()), &part, 0, None);
    let c = res.unwrap();
    let checked = recheck(&part, &c.digests, true);
    assert!(checked.mismatched.is_empty());
    if direct {
        assert_eq!(c.io, IoMode::Direct);
        assert_eq!(checked.io, IoMode::Direct);
    }
    assert_eq!(cached_bytes(&part), 0, "page cache holds the spool copy");
    assert_eq!(fs_err::read(&part).unwrap(), d);
}

/// The default: written through the page cache (evicted at each sync), resumed and re-read past
/// it. An interrupted copy leaves no page cached, the resume gives the exact bytes, and the
/// re-read is `O_DIRECT` where the filesystem takes it.
#[test]
fn the_default_writes_through_the_cache_and_rereads_past_it() {
    let tmp = tempfile::tempdir().unwrap();
    let direct = takes_direct(tmp.path());
    let part = tmp.path().join("h.part");
    let d = data(3 << 20);
    let (res, r) = run_with(
        &mut Fake::new(d.clone()),
        &part,
        0,
        Some(1 << 20),
        (false, true),
    );
    assert!(matches!(res, Err(CopyError::Stopped { .. })), "{res:?}");
    assert_eq!(
        cached_bytes(&part),
        0,
        "an interrupted copy's pages are evicted"
    );
    let resume = *r.durable.last().unwrap();
    let (res, _) = run_with(
        &mut Fake::new(d.clone()),
        &part,
        resume,
        None,
        (false, true),
    );
    let c = res.unwrap();
    assert_eq!(c.io, IoMode::Buffered);
    assert_eq!(c.resumed_at, Some(resume / ALIGN as u64 * ALIGN as u64));
    assert_eq!(c.digests, full_digests(&d, DigestSet::ALL));
    assert_eq!(
        cached_bytes(&part),
        0,
        "the finished copy's pages are evicted"
    );
    let checked = recheck(&part, &c.digests, true);
    assert!(checked.mismatched.is_empty());
    if direct {
        assert_eq!(checked.io, IoMode::Direct);
    }
    assert_eq!(cached_bytes(&part), 0, "the re-read leaves nothing cached");
    assert_eq!(fs_err::read(&part).unwrap(), d);
}

/// Forced buffered (what a filesystem refusing `O_DIRECT` gets): the same bytes and digests,
/// and the pages are still evicted once synced and re-read.
#[test]
fn a_filesystem_refusing_direct_io_gets_buffered_io_with_evicted_pages() {
    let tmp = tempfile::tempdir().unwrap();
    let part = tmp.path().join("g.part");
    let d = data(1 << 20);
    let (res, _) = run_with(&mut Fake::new(d.clone()), &part, 0, None, (false, false));
    let c = res.unwrap();
    assert_eq!(c.io, IoMode::Buffered);
    assert_eq!(c.digests, full_digests(&d, DigestSet::ALL));
    let checked = recheck(&part, &c.digests, false);
    assert_eq!(checked.io, IoMode::Buffered);
    assert!(checked.mismatched.is_empty());
    assert_eq!(cached_bytes(&part), 0);
}

/// Sizes around the alignment, and a resume point that is not aligned (an older journal's, or a
/// hostile one): the spool copy is the camera's bytes exactly, digests and edge hash included.
#[test]
fn tails_and_unaligned_resume_offsets_give_the_exact_bytes() {
    let tmp = tempfile::tempdir().unwrap();
    let a = ALIGN;
    for size in [
        1,
        a - 1,
        a,
        a + 1,
        16 * 1024 - 1,
        16 * 1024 + 1,
        (2 << 20) + 3,
    ] {
        let part = tmp.path().join(format!("{size}.part"));
        let d = data(size);
        let (res, _) = run(&mut Fake::new(d.clone()), &part, 0, None);
        let c = res.unwrap();
        assert_eq!(c.digests, full_digests(&d, DigestSet::ALL), "size {size}");
        assert_eq!(fs_err::read(&part).unwrap(), d, "size {size}");
        let checked = recheck(&part, &c.digests, true);
        assert!(checked.mismatched.is_empty(), "size {size}");
        assert_eq!(checked.edge, edge_hash(&mut io::Cursor::new(&d)).unwrap());
    }
    // A resume at 5000 keeps the aligned 4096 bytes before it and reads the rest again.
    let part = tmp.path().join("resume.part");
    let d = data(100_000);
    fs_err::write(&part, &d[..5000]).unwrap();
    let (res, r) = run(&mut Fake::new(d.clone()), &part, 5000, None);
    let c = res.unwrap();
    assert_eq!(c.resumed_at, Some(a as u64));
    assert_eq!(r.progress, (d.len() - a) as u64);
    assert_eq!(c.digests, full_digests(&d, DigestSet::ALL));
    assert_eq!(fs_err::read(&part).unwrap(), d);
}

/// A crash between the spool link and the removal of the `.part` leaves one inode under both
/// names. The next copy of that file (a resume, or afresh) must not write into it: the original
/// under its content address keeps its bytes.
#[test]
fn a_copy_never_writes_into_an_original_its_part_is_still_linked_to() {
    let tmp = tempfile::tempdir().unwrap();
    let part = tmp.path().join("h.part");
    let original = tmp.path().join("original");
    let d = data(200_000);
    fs_err::write(&part, &d).unwrap();
    fs_err::hard_link(&part, &original).unwrap();
    // The camera's file changed since: the copy truncates and writes new bytes.
    let other = data(100_000).iter().map(|b| b ^ 0x5a).collect::<Vec<u8>>();
    let (res, _) = run(&mut Fake::new(other.clone()), &part, 65_536, None);
    let c = res.unwrap();
    assert_eq!(
        c.resumed_at, None,
        "nothing of a committed original is resumed from"
    );
    assert_eq!(fs_err::read(&part).unwrap(), other);
    assert_eq!(
        fs_err::read(&original).unwrap(),
        d,
        "the original was written into"
    );
}
