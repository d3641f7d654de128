//! Content digests, computed in one pass.
//!
//! SHA-256 is the evidentiary digest and is always computed; SM3 (国密 deployments) and MD5 (for
//! Chinese platforms' file records, never alone) are added when configured. The bytes are read
//! once into fixed-size buffers from a [`BufferPool`]; each buffer becomes a shared, read-only
//! [`Chunk`] that the copy loop writes to its destination while every digest runs on its own
//! thread ([`MultiHasher`]). A slow digest therefore overlaps the others and the I/O instead of
//! adding to them, and memory stays at `count × size` of the pool whatever the file size.

use crate::id::Sha256;
use serde::{Deserialize, Serialize};
use sha2::Digest as _;
use std::fmt;
use std::io::{self, Read};
use std::ops::Deref;
use std::sync::mpsc::{Receiver, SyncSender, sync_channel};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;

/// A digest algorithm evidock can compute.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum DigestAlgorithm {
    /// SHA-256 (FIPS 180-4): the evidentiary digest, object keys, manifests, proofs.
    Sha256,
    /// SM3 (GB/T 32905-2016): where 国密 applies.
    Sm3,
    /// MD5 (RFC 1321): compatibility with platforms' file records only.
    Md5,
}

impl DigestAlgorithm {
    pub const ALL: [DigestAlgorithm; 3] = [Self::Sha256, Self::Sm3, Self::Md5];

    pub fn name(self) -> &'static str {
        match self {
            Self::Sha256 => "sha256",
            Self::Sm3 => "sm3",
            Self::Md5 => "md5",
        }
    }

    /// Output length in bytes.
    pub fn output_len(self) -> usize {
        match self {
            Self::Sha256 | Self::Sm3 => 32,
            Self::Md5 => 16,
        }
    }

    fn hasher(self) -> Box<dyn DynHasher> {
        match self {
            Self::Sha256 => Box::new(sha2::Sha256::new()),
            Self::Sm3 => Box::new(sm3::Sm3::new()),
            Self::Md5 => Box::new(md5::Md5::new()),
        }
    }
}

impl fmt::Display for DigestAlgorithm {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

impl std::str::FromStr for DigestAlgorithm {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        match s.to_ascii_lowercase().as_str() {
            "sha256" | "sha-256" => Ok(Self::Sha256),
            "sm3" => Ok(Self::Sm3),
            "md5" => Ok(Self::Md5),
            _ => Err(format!(
                "unknown digest {s:?} (expected sha256, sm3 or md5)"
            )),
        }
    }
}

/// Object-safe view of the RustCrypto hashers, so one worker loop serves every algorithm.
trait DynHasher: Send {
    fn feed(&mut self, data: &[u8]);
    fn finish_reset(&mut self) -> Vec<u8>;
}

impl<D: sha2::Digest + sha2::digest::FixedOutputReset + Send> DynHasher for D {
    fn feed(&mut self, data: &[u8]) {
        sha2::Digest::update(self, data);
    }
    fn finish_reset(&mut self) -> Vec<u8> {
        sha2::Digest::finalize_reset(self).to_vec()
    }
}

/// The set of digests to compute. SHA-256 is always in it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DigestSet {
    #[serde(default)]
    pub sm3: bool,
    #[serde(default)]
    pub md5: bool,
}

impl DigestSet {
    pub const SHA256_ONLY: DigestSet = DigestSet {
        sm3: false,
        md5: false,
    };
    pub const ALL: DigestSet = DigestSet {
        sm3: true,
        md5: true,
    };

    pub fn algorithms(self) -> Vec<DigestAlgorithm> {
        let mut v = vec![DigestAlgorithm::Sha256];
        if self.sm3 {
            v.push(DigestAlgorithm::Sm3);
        }
        if self.md5 {
            v.push(DigestAlgorithm::Md5);
        }
        v
    }
}

/// Digest bytes shown as lowercase hex.
#[derive(Clone, PartialEq, Eq, Hash)]
pub struct HexBytes(pub Vec<u8>);

impl fmt::Debug for HexBytes {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&hex::encode(&self.0))
    }
}

impl fmt::Display for HexBytes {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&hex::encode(&self.0))
    }
}

impl Serialize for HexBytes {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&hex::encode(&self.0))
    }
}

impl<'de> Deserialize<'de> for HexBytes {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = String::deserialize(d)?;
        if s.bytes().any(|b| b.is_ascii_uppercase()) {
            return Err(serde::de::Error::custom("hex digits must be lowercase"));
        }
        hex::decode(&s)
            .map(HexBytes)
            .map_err(serde::de::Error::custom)
    }
}

/// The digests of one file.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Digests {
    pub sha256: Sha256,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sm3: Option<HexBytes>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub md5: Option<HexBytes>,
}

impl Digests {
    pub fn get(&self, alg: DigestAlgorithm) -> Option<Vec<u8>> {
        match alg {
            DigestAlgorithm::Sha256 => Some(self.sha256.0.to_vec()),
            DigestAlgorithm::Sm3 => self.sm3.as_ref().map(|h| h.0.clone()),
            DigestAlgorithm::Md5 => self.md5.as_ref().map(|h| h.0.clone()),
        }
    }

    /// The algorithms whose values differ between `self` and `other` (only those both have).
    pub fn mismatches(&self, other: &Digests) -> Vec<DigestAlgorithm> {
        DigestAlgorithm::ALL
            .into_iter()
            .filter(|a| match (self.get(*a), other.get(*a)) {
                (Some(x), Some(y)) => x != y,
                _ => false,
            })
            .collect()
    }
}

/// The alignment of every pooled buffer: what `O_DIRECT` asks of memory on every block device a
/// station meets (512-byte and 4 KiB sectors alike).
pub const ALIGN: usize = 4096;

/// A heap buffer whose bytes start at an [`ALIGN`]-byte boundary, made without `unsafe`: a
/// `Vec` one alignment longer than asked, used from its first aligned byte on. (A `Vec`'s heap
/// block never moves while the `Vec` is moved around, so the alignment holds for its life.)
pub struct AlignedBuf {
    raw: Vec<u8>,
    start: usize,
    len: usize,
}

impl AlignedBuf {
    /// `len` zeroed bytes at an aligned address.
    pub fn new(len: usize) -> Self {
        let raw = vec![0u8; len + ALIGN];
        let start = (ALIGN - raw.as_ptr() as usize % ALIGN) % ALIGN;
        AlignedBuf { raw, start, len }
    }

    /// Owned bytes as they are (aligned only by chance): for chunks that belong to no pool.
    fn unaligned(raw: Vec<u8>) -> Self {
        let len = raw.len();
        AlignedBuf { raw, start: 0, len }
    }
}

impl fmt::Debug for AlignedBuf {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "AlignedBuf({} bytes)", self.len)
    }
}

impl Deref for AlignedBuf {
    type Target = [u8];
    fn deref(&self) -> &[u8] {
        &self.raw[self.start..self.start + self.len]
    }
}

impl std::ops::DerefMut for AlignedBuf {
    fn deref_mut(&mut self) -> &mut [u8] {
        &mut self.raw[self.start..self.start + self.len]
    }
}

/// A fixed number of fixed-size buffers. Taking one blocks until a [`Chunk`] made from an earlier
/// one has been dropped by every holder, which is what bounds memory in a copy pipeline.
///
/// Every buffer starts at an [`ALIGN`]-byte boundary and its size is a multiple of [`ALIGN`], so
/// it can be handed to `O_DIRECT` reads and writes as it is.
#[derive(Debug, Clone)]
pub struct BufferPool {
    inner: Arc<PoolInner>,
}

#[derive(Debug)]
struct PoolInner {
    size: usize,
    free_tx: SyncSender<AlignedBuf>,
    free_rx: Mutex<Receiver<AlignedBuf>>,
}

impl BufferPool {
    /// `count` buffers of `size` bytes each (rounded up to a multiple of [`ALIGN`]).
    pub fn new(count: usize, size: usize) -> Self {
        let count = count.max(1);
        let size = size.max(1).next_multiple_of(ALIGN);
        let (free_tx, free_rx) = sync_channel(count);
        for _ in 0..count {
            // The channel has room for exactly `count` buffers.
            let _ = free_tx.try_send(AlignedBuf::new(size));
        }
        BufferPool {
            inner: Arc::new(PoolInner {
                size,
                free_tx,
                free_rx: Mutex::new(free_rx),
            }),
        }
    }

    pub fn buffer_size(&self) -> usize {
        self.inner.size
    }

    /// Take a free buffer (blocks while all are in use). It goes back to the pool when dropped,
    /// or when the [`Chunk`] made from it is dropped by its last holder.
    pub fn take(&self) -> PoolBuf {
        let rx = match self.inner.free_rx.lock() {
            Ok(rx) => rx,
            Err(poisoned) => poisoned.into_inner(),
        };
        let buf = match rx.recv() {
            Ok(buf) => buf,
            // Unreachable while `self` holds the sender; allocate rather than fail a copy.
            Err(_) => AlignedBuf::new(self.inner.size),
        };
        PoolBuf {
            buf: Some(buf),
            home: self.inner.free_tx.clone(),
        }
    }

    /// Freeze the first `len` bytes of `buf` into a shareable chunk that returns the buffer to
    /// this pool when its last holder drops it.
    pub fn chunk(&self, mut buf: PoolBuf, len: usize) -> Chunk {
        let v = buf.buf.take().unwrap_or_else(|| AlignedBuf::new(0));
        let len = len.min(v.len());
        Chunk(Arc::new(ChunkInner {
            buf: Some(v),
            len,
            home: Some(buf.home.clone()),
        }))
    }
}

/// A buffer taken from a [`BufferPool`]; it finds its way back on every path, errors included.
pub struct PoolBuf {
    buf: Option<AlignedBuf>,
    home: SyncSender<AlignedBuf>,
}

impl fmt::Debug for PoolBuf {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "PoolBuf({} bytes)", self.len())
    }
}

impl Deref for PoolBuf {
    type Target = [u8];
    fn deref(&self) -> &[u8] {
        self.buf.as_deref().unwrap_or_default()
    }
}

impl std::ops::DerefMut for PoolBuf {
    fn deref_mut(&mut self) -> &mut [u8] {
        self.buf.as_deref_mut().unwrap_or_default()
    }
}

impl Drop for PoolBuf {
    fn drop(&mut self) {
        if let Some(b) = self.buf.take() {
            let _ = self.home.try_send(b);
        }
    }
}

/// A read-only, shared slice of a pooled buffer (aligned, as the pool's buffers are).
#[derive(Clone)]
pub struct Chunk(Arc<ChunkInner>);

struct ChunkInner {
    buf: Option<AlignedBuf>,
    len: usize,
    home: Option<SyncSender<AlignedBuf>>,
}

impl Drop for ChunkInner {
    fn drop(&mut self) {
        if let (Some(home), Some(buf)) = (self.home.take(), self.buf.take()) {
            let _ = home.try_send(buf);
        }
    }
}

impl Chunk {
    /// A chunk that owns its bytes and belongs to no pool (not aligned).
    pub fn from_vec(buf: Vec<u8>) -> Self {
        let len = buf.len();
        Chunk(Arc::new(ChunkInner {
            buf: Some(AlignedBuf::unaligned(buf)),
            len,
            home: None,
        }))
    }
}

impl Deref for Chunk {
    type Target = [u8];
    fn deref(&self) -> &[u8] {
        match &self.0.buf {
            Some(b) => &b[..self.0.len],
            None => &[],
        }
    }
}

impl fmt::Debug for Chunk {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Chunk({} bytes)", self.0.len)
    }
}

enum Msg {
    Data(Chunk),
    Finish(SyncSender<Vec<u8>>),
}

struct Worker {
    alg: DigestAlgorithm,
    tx: SyncSender<Msg>,
    handle: Option<JoinHandle<()>>,
}

/// Computes a [`DigestSet`] over a stream of chunks, each digest on its own long-lived thread.
///
/// Reuse one `MultiHasher` for many files (one per camera): [`MultiHasher::finish`] returns the
/// digests of everything since the last `finish` and starts over.
pub struct MultiHasher {
    workers: Vec<Worker>,
    bytes: u64,
}

impl fmt::Debug for MultiHasher {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("MultiHasher")
            .field(
                "algorithms",
                &self.workers.iter().map(|w| w.alg).collect::<Vec<_>>(),
            )
            .field("bytes", &self.bytes)
            .finish()
    }
}

/// A digest thread died (it panicked or could not be started).
#[derive(Debug, thiserror::Error)]
#[error("the {0} digest thread stopped unexpectedly")]
pub struct HasherStopped(pub DigestAlgorithm);

impl MultiHasher {
    /// Start one thread per algorithm in `set`. `queue` is how many chunks may wait per thread;
    /// use the pool's buffer count.
    pub fn new(set: DigestSet, queue: usize) -> io::Result<Self> {
        let mut workers = Vec::new();
        for alg in set.algorithms() {
            let (tx, rx) = sync_channel::<Msg>(queue.max(1));
            let handle = std::thread::Builder::new()
                .name(format!("digest-{alg}"))
                .spawn(move || {
                    let mut h = alg.hasher();
                    for msg in rx {
                        match msg {
                            Msg::Data(chunk) => h.feed(&chunk),
                            Msg::Finish(reply) => {
                                let _ = reply.send(h.finish_reset());
                            }
                        }
                    }
                })?;
            workers.push(Worker {
                alg,
                tx,
                handle: Some(handle),
            });
        }
        Ok(MultiHasher { workers, bytes: 0 })
    }

    /// Feed a chunk to every digest (cheap: the chunk is shared, not copied).
    pub fn update(&mut self, chunk: &Chunk) -> Result<(), HasherStopped> {
        self.bytes += chunk.len() as u64;
        for w in &self.workers {
            w.tx.send(Msg::Data(chunk.clone()))
                .map_err(|_| HasherStopped(w.alg))?;
        }
        Ok(())
    }

    /// Bytes fed since the last `finish`.
    pub fn bytes(&self) -> u64 {
        self.bytes
    }

    /// The digests of everything fed since the last `finish`; the hasher starts over.
    pub fn finish(&mut self) -> Result<Digests, HasherStopped> {
        let mut replies = Vec::with_capacity(self.workers.len());
        for w in &self.workers {
            let (tx, rx) = sync_channel(1);
            w.tx.send(Msg::Finish(tx))
                .map_err(|_| HasherStopped(w.alg))?;
            replies.push((w.alg, rx));
        }
        let mut out = Digests {
            sha256: Sha256::default(),
            sm3: None,
            md5: None,
        };
        for (alg, rx) in replies {
            let value = rx.recv().map_err(|_| HasherStopped(alg))?;
            match alg {
                DigestAlgorithm::Sha256 => {
                    out.sha256 = Sha256::from_slice(&value).ok_or(HasherStopped(alg))?
                }
                DigestAlgorithm::Sm3 => out.sm3 = Some(HexBytes(value)),
                DigestAlgorithm::Md5 => out.md5 = Some(HexBytes(value)),
            }
        }
        self.bytes = 0;
        Ok(out)
    }
}

impl Drop for MultiHasher {
    fn drop(&mut self) {
        let handles: Vec<_> = self
            .workers
            .iter_mut()
            .filter_map(|w| w.handle.take())
            .collect();
        // Closing the channels ends the threads.
        self.workers.clear();
        for h in handles {
            let _ = h.join();
        }
    }
}

/// Errors of [`hash_reader`].
#[derive(Debug, thiserror::Error)]
pub enum HashError {
    #[error("read failed: {0}")]
    Io(#[from] io::Error),
    #[error(transparent)]
    Stopped(#[from] HasherStopped),
}

/// Digest everything `reader` yields. Returns the digests and the byte count.
///
/// With SHA-256 alone the hashing runs on the calling thread (nothing to overlap but the read);
/// with more digests each gets its own thread.
pub fn hash_reader(reader: &mut dyn Read, set: DigestSet) -> Result<(Digests, u64), HashError> {
    const BUF: usize = 1 << 20;
    if set == DigestSet::SHA256_ONLY {
        let mut h = sha2::Sha256::new();
        let mut buf = vec![0u8; BUF];
        let mut n = 0u64;
        loop {
            let k = read_full(reader, &mut buf)?;
            if k == 0 {
                break;
            }
            h.update(&buf[..k]);
            n += k as u64;
        }
        let d = Digests {
            sha256: Sha256(h.finalize().into()),
            sm3: None,
            md5: None,
        };
        return Ok((d, n));
    }
    hash_stream(reader, set)
}

/// Digest everything `reader` yields, reading on this thread while every digest runs on its
/// own: for large files from disk, where the read and the hashing then overlap instead of
/// taking turns.
pub fn hash_stream(reader: &mut dyn Read, set: DigestSet) -> Result<(Digests, u64), HashError> {
    const BUF: usize = 1 << 20;
    let pool = BufferPool::new(4, BUF);
    let mut hasher = MultiHasher::new(set, 4)?;
    let mut n = 0u64;
    loop {
        let mut buf = pool.take();
        let k = read_full(reader, &mut buf)?;
        if k == 0 {
            break;
        }
        n += k as u64;
        hasher.update(&pool.chunk(buf, k))?;
    }
    Ok((hasher.finish()?, n))
}

/// Fill `buf` as far as the reader allows; fewer bytes than `buf.len()` only at end of input.
pub fn read_full(reader: &mut dyn Read, buf: &mut [u8]) -> io::Result<usize> {
    let mut filled = 0;
    while filled < buf.len() {
        match reader.read(&mut buf[filled..]) {
            Ok(0) => break,
            Ok(k) => filled += k,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    Ok(filled)
}

#[cfg(test)]
mod tests;
