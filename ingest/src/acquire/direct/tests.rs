//! Unit tests of the direct spool I/O (direct.rs): whole blocks bypass the page cache, tails and
//! unaligned requests fall back to buffered I/O without changing a byte.

use super::*;
use evidock_verify::digest::BufferPool;

/// Bytes of `path` in the page cache, as `fincore` (util-linux) counts them.
pub(crate) fn cached_bytes(path: &Path) -> u64 {
    let out = std::process::Command::new("fincore")
        .args(["--bytes", "--noheadings", "--output", "RES"])
        .arg(path)
        .output()
        .expect("fincore (util-linux) runs");
    assert!(out.status.success(), "fincore: {out:?}");
    String::from_utf8_lossy(&out.stdout).trim().parse().unwrap()
}

fn bytes(n: usize) -> Vec<u8> {
    (0..n).map(|i| (i * 7 + i / 4099) as u8).collect()
}

/// Whole aligned blocks from a pooled buffer go direct; the tail switches the file to buffered;
/// once synced nothing of it stays cached, and the bytes are exact.
#[test]
fn whole_blocks_go_direct_and_the_tail_buffered() {
    let tmp = tempfile::tempdir().unwrap();
    let path = tmp.path().join("w.part");
    let pool = BufferPool::new(2, 2 * ALIGN);
    let want = bytes(2 * ALIGN + 2 * ALIGN + 100);
    let mut w = SpoolWriter::open(&path, true).unwrap();
    assert_eq!(w.mode(), IoMode::Direct, "ext4 takes O_DIRECT");
    for piece in want.chunks(2 * ALIGN) {
        let mut b = pool.take();
        b[..piece.len()].copy_from_slice(piece);
        let c = pool.chunk(b, piece.len());
        w.write(&c).unwrap();
        if piece.len() == 2 * ALIGN {
            assert_eq!(w.mode(), IoMode::Direct);
        }
    }
    assert_eq!(
        w.mode(),
        IoMode::Buffered,
        "the tail went through the page cache"
    );
    w.sync_all().unwrap();
    assert_eq!(cached_bytes(&path), 0);
    assert_eq!(fs_err::read(&path).unwrap(), want);
}

/// Reading at an unaligned offset or into an unaligned slice falls back to buffered reads and
/// gives the same bytes; the reader leaves no page cached behind it.
#[test]
fn unaligned_reads_fall_back_and_give_the_same_bytes() {
    let tmp = tempfile::tempdir().unwrap();
    let path = tmp.path().join("r.bin");
    let want = bytes(5 * ALIGN + 17);
    fs_err::write(&path, &want).unwrap();
    let pool = BufferPool::new(1, 8 * ALIGN);
    {
        let mut r = SpoolReader::open(&path, true).unwrap();
        assert_eq!(r.mode(), IoMode::Direct);
        assert_eq!(r.size(), want.len() as u64);
        let mut b = pool.take();
        let n = r.read_at(&mut b, 0).unwrap();
        assert_eq!(&b[..n], &want[..]);
        assert_eq!(
            r.mode(),
            IoMode::Direct,
            "a short read at the end is no reason to fall back"
        );
        let n = r.read_at(&mut b[..ALIGN], 100).unwrap();
        assert_eq!(&b[..n], &want[100..100 + ALIGN]);
        assert_eq!(r.mode(), IoMode::Buffered);
    }
    assert_eq!(cached_bytes(&path), 0);
    // Asked not to go direct, it never does.
    let r = SpoolReader::open(&path, false).unwrap();
    assert_eq!(r.mode(), IoMode::Buffered);
}
