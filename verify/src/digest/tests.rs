//! Unit tests of the digests (digest.rs): published vectors for each algorithm, the threaded
//! hasher against the inline one, and the pool's bound; apart so the hashing code reads on its own.

use super::*;

fn hex(v: &Option<HexBytes>) -> String {
    v.as_ref().map(|h| hex::encode(&h.0)).unwrap_or_default()
}

// Vectors: FIPS 180-2 appendix B (SHA-256), GB/T 32905-2016 appendix A (SM3), RFC 1321 §A.5.
#[test]
fn published_vectors() {
    let (d, n) = hash_reader(&mut &b"abc"[..], DigestSet::ALL).unwrap();
    assert_eq!(n, 3);
    assert_eq!(
        d.sha256.to_hex(),
        "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
    );
    assert_eq!(
        hex(&d.sm3),
        "66c7f0f462eeedd9d1f2d46bdc10e4e24167c4875cf2f7a2297da02b8f4ba8e0"
    );
    assert_eq!(hex(&d.md5), "900150983cd24fb0d6963f7d28e17f72");

    let msg = b"abcdbcdecdefdefgefghfghighijhijkijkljklmklmnlmnomnopnopq";
    let (d, _) = hash_reader(&mut &msg[..], DigestSet::SHA256_ONLY).unwrap();
    assert_eq!(
        d.sha256.to_hex(),
        "248d6a61d20638b8e5c026930c3e6039a33ce45964ff2167f6ecedd419db06c1"
    );
    assert!(d.sm3.is_none() && d.md5.is_none());

    // GB/T 32905 example 2: "abcd" repeated 16 times.
    let m2 = b"abcd".repeat(16);
    let (d, _) = hash_reader(&mut &m2[..], DigestSet::ALL).unwrap();
    assert_eq!(
        hex(&d.sm3),
        "debe9ff92275b8a138604889c18e5a4d6fdb70e5387e5765293dcba39c0c5732"
    );
    let (d, _) = hash_reader(
            &mut &b"12345678901234567890123456789012345678901234567890123456789012345678901234567890"[..],
            DigestSet::ALL,
        )
        .unwrap();
    assert_eq!(hex(&d.md5), "57edf4a22be3c955ac49da2e2107b67a");
    let (d, n) = hash_reader(&mut &b""[..], DigestSet::ALL).unwrap();
    assert_eq!(n, 0);
    assert_eq!(
        d.sha256.to_hex(),
        "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"
    );
    assert_eq!(hex(&d.md5), "d41d8cd98f00b204e9800998ecf8427e");
}

#[test]
fn threaded_equals_inline_and_hasher_is_reusable() {
    let data: Vec<u8> = (0..3_000_000u32).map(|i| (i * 7 + i / 13) as u8).collect();
    let (inline, _) = hash_reader(&mut &data[..], DigestSet::SHA256_ONLY).unwrap();
    let pool = BufferPool::new(3, 65536);
    let mut h = MultiHasher::new(DigestSet::ALL, 3).unwrap();
    for round in 0..2 {
        for part in data.chunks(65536) {
            let mut buf = pool.take();
            buf[..part.len()].copy_from_slice(part);
            h.update(&pool.chunk(buf, part.len())).unwrap();
        }
        assert_eq!(h.bytes(), data.len() as u64, "round {round}");
        let d = h.finish().unwrap();
        assert_eq!(d.sha256, inline.sha256, "round {round}");
        assert_eq!(d.sm3.as_ref().map(|h| h.0.len()), Some(32));
    }
}

#[test]
fn pool_bounds_buffers() {
    let pool = BufferPool::new(2, 16);
    let a = pool.chunk(pool.take(), 4);
    let b = pool.chunk(pool.take(), 4);
    let held = a.clone();
    drop(a);
    drop(b);
    // One buffer came back; the other is still held by `held`.
    let c = pool.take();
    assert_eq!(held.len(), 4);
    // A buffer dropped without becoming a chunk (end of file, error) comes back too.
    drop(c);
    drop(held);
    for _ in 0..10 {
        let _b = pool.take();
    }
}

/// Every pooled buffer, and every chunk made from one, starts at an `ALIGN` boundary and is a
/// whole number of `ALIGN`s long, whatever size was asked: what `O_DIRECT` needs of memory.
#[test]
fn pooled_buffers_are_aligned_for_direct_io() {
    for size in [1, 100, ALIGN - 1, ALIGN, ALIGN + 1, (1 << 20) + 17] {
        let pool = BufferPool::new(3, size);
        assert_eq!(pool.buffer_size() % ALIGN, 0, "size {size}");
        assert!(pool.buffer_size() >= size);
        let bufs: Vec<PoolBuf> = (0..3).map(|_| pool.take()).collect();
        for b in &bufs {
            assert_eq!(b.as_ptr() as usize % ALIGN, 0, "size {size}");
            assert_eq!(b.len(), pool.buffer_size());
        }
        for b in bufs {
            let c = pool.chunk(b, 3);
            assert_eq!(c.as_ptr() as usize % ALIGN, 0);
            assert_eq!(c.len(), 3);
        }
    }
}
