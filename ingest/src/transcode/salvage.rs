//! Salvaging a truncated MP4: the battery died mid-recording, so the camera never wrote the
//! `moov` index. The frames are still in `mdat` as length-prefixed H.264 NAL units, interleaved
//! with audio; without the index nothing says where one ends and the next begins. A healthy
//! recording of the same camera gives what is missing (the method of the `untrunc` tool): its
//! H.264 configuration (SPS/PPS, the NAL length size) lets each video sample be recognised by
//! its structure — a chain of well-formed NAL units ending in slices that name the reference's
//! picture parameter set — and everything between samples (audio) is stepped over.
//!
//! Pure Rust over a bounded read window: the file is never loaded whole.

use std::fs::File;
use std::io::{Read, Seek, SeekFrom};
use std::path::Path;

/// The largest NAL unit believed (a 4K I-frame is well below this).
const MAX_NAL: u64 = 16 << 20;
/// The read window; at least two of the largest samples.
const WINDOW: usize = 48 << 20;
/// The most parameter and SEI units believed before a picture's first slice.
const MAX_LEADING: usize = 16;
/// The most slices believed in one picture (a camera's encoder uses a handful).
const MAX_SLICES: usize = 256;
/// The largest sample believed: the most one sample's bytes take in memory.
const MAX_SAMPLE: u64 = 32 << 20;
/// The most samples one salvage keeps (16 bytes each: 64 MiB; 39 hours at 30 frames/s).
const MAX_SAMPLES: usize = 1 << 22;

/// What a salvage needs from the reference's `avcC` record.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AvcConfig {
    /// Bytes in each NAL length prefix (1, 2 or 4).
    pub length_size: usize,
    /// The IDs of its picture parameter sets.
    pub pps_ids: Vec<u32>,
}

impl AvcConfig {
    /// Parse an `AVCDecoderConfigurationRecord` (ISO/IEC 14496-15 §5.3.3.1).
    pub fn parse(avcc: &[u8]) -> Option<AvcConfig> {
        if avcc.len() < 7 || avcc[0] != 1 {
            return None;
        }
        let length_size = usize::from(avcc[4] & 3) + 1;
        let mut p = 5;
        let n_sps = usize::from(*avcc.get(p)? & 0x1f);
        p += 1;
        for _ in 0..n_sps {
            let len = usize::from(u16::from_be_bytes([*avcc.get(p)?, *avcc.get(p + 1)?]));
            p += 2 + len;
        }
        let n_pps = usize::from(*avcc.get(p)?);
        p += 1;
        let mut pps_ids = Vec::new();
        for _ in 0..n_pps {
            let len = usize::from(u16::from_be_bytes([*avcc.get(p)?, *avcc.get(p + 1)?]));
            let pps = avcc.get(p + 2..p + 2 + len)?;
            // After the NAL header: pic_parameter_set_id ue(v).
            let mut r = Bits::new(pps.get(1..)?);
            pps_ids.push(r.ue()?);
            p += 2 + len;
        }
        (!pps_ids.is_empty()).then_some(AvcConfig {
            length_size,
            pps_ids,
        })
    }
}

/// An Exp-Golomb bit reader over a NAL payload (emulation prevention bytes are rare this early
/// in a slice header and only make a header fail the check).
struct Bits<'a> {
    data: &'a [u8],
    bit: usize,
}

impl<'a> Bits<'a> {
    fn new(data: &'a [u8]) -> Self {
        Bits { data, bit: 0 }
    }
    fn read(&mut self) -> Option<u32> {
        let b = self.data.get(self.bit / 8)?;
        let v = (b >> (7 - self.bit % 8)) & 1;
        self.bit += 1;
        Some(u32::from(v))
    }
    fn ue(&mut self) -> Option<u32> {
        let mut zeros = 0;
        while self.read()? == 0 {
            zeros += 1;
            if zeros > 16 {
                return None;
            }
        }
        let mut v = 1u32;
        for _ in 0..zeros {
            v = (v << 1) | self.read()?;
        }
        Some(v - 1)
    }
}

/// The media data of a file without an index: where `mdat`'s payload starts and ends.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Mdat {
    pub start: u64,
    pub end: u64,
}

/// Why a file cannot be salvaged.
#[derive(Debug, thiserror::Error)]
pub enum SalvageError {
    #[error("{0}")]
    Io(#[from] std::io::Error),
    #[error("not an MP4/MOV file (no ftyp/mdat box structure)")]
    NotMp4,
    #[error("the file has its index (moov): it is not truncated")]
    HasIndex,
    #[error("no media data (mdat) in the file")]
    NoMdat,
    #[error("no index (moov) in the file")]
    NoIndex,
    #[error("no H.264 sample recognised in the media data")]
    NothingFound,
    #[error("more than {0} samples recognised: not a camera recording; not salvaged")]
    TooMany(usize),
}

/// A top-level box: its type, where its payload starts and where it ends (clamped to the file).
struct BoxAt {
    kind: [u8; 4],
    payload: u64,
    end: u64,
}

/// The top-level box at `pos`, or `None` at the end or on a malformed header.
fn box_at(file: &mut File, pos: u64, len: u64) -> std::io::Result<Option<BoxAt>> {
    if pos + 8 > len {
        return Ok(None);
    }
    let mut h = [0u8; 16];
    file.seek(SeekFrom::Start(pos))?;
    let n = file.read(&mut h)?;
    if n < 8 {
        return Ok(None);
    }
    let (header, size) = match u32::from_be_bytes([h[0], h[1], h[2], h[3]]) {
        0 => (8, len - pos),
        1 if n >= 16 => (
            16,
            u64::from_be_bytes([h[8], h[9], h[10], h[11], h[12], h[13], h[14], h[15]]),
        ),
        s => (8, u64::from(s)),
    };
    if size < header {
        return Ok(None);
    }
    Ok(Some(BoxAt {
        kind: [h[4], h[5], h[6], h[7]],
        payload: pos + header,
        end: pos.saturating_add(size),
    }))
}

/// Walk the top-level boxes; a truncated recording ends inside `mdat` (or right after it).
pub fn find_mdat(file: &mut File) -> Result<Mdat, SalvageError> {
    let len = file.metadata()?.len();
    let mut pos = 0u64;
    let mut mdat = None;
    while let Some(b) = box_at(file, pos, len)? {
        if pos == 0 && !matches!(&b.kind, b"ftyp" | b"mdat" | b"free" | b"skip" | b"wide") {
            return Err(SalvageError::NotMp4);
        }
        match &b.kind {
            b"moov" => return Err(SalvageError::HasIndex),
            b"mdat" => {
                mdat = Some(Mdat {
                    start: b.payload,
                    end: b.end.min(len),
                })
            }
            _ => {}
        }
        pos = b.end;
    }
    if pos == 0 {
        return Err(SalvageError::NotMp4);
    }
    mdat.ok_or(SalvageError::NoMdat)
}

/// The `avcC` record of a healthy MP4's H.264 track, read from its `moov` box.
pub fn avc_config_of(path: &Path) -> Result<Vec<u8>, SalvageError> {
    /// The index of a long recording is a few MiB; more is not a camera file.
    const MAX_MOOV: u64 = 64 << 20;
    let mut file = File::open(path)?;
    let len = file.metadata()?.len();
    let mut pos = 0u64;
    while let Some(b) = box_at(&mut file, pos, len)? {
        if &b.kind == b"moov" && b.end - b.payload <= MAX_MOOV {
            let mut moov = vec![0u8; (b.end.min(len) - b.payload) as usize];
            file.seek(SeekFrom::Start(b.payload))?;
            file.read_exact(&mut moov)?;
            // The avcC box sits inside stsd's avc1 entry; its type is unique enough to find.
            let mut at = 4;
            while let Some(i) = moov[at..].windows(4).position(|w| w == b"avcC") {
                let t = at + i;
                let sz = u32::from_be_bytes([moov[t - 4], moov[t - 3], moov[t - 2], moov[t - 1]])
                    as usize;
                if let Some(body) = moov.get(t + 4..t - 4 + sz)
                    && body.first() == Some(&1)
                {
                    return Ok(body.to_vec());
                }
                at = t + 4;
            }
            return Err(SalvageError::NothingFound);
        }
        pos = b.end;
    }
    Err(SalvageError::NoIndex)
}

/// A bounded window over the file.
struct Window {
    file: File,
    len: u64,
    start: u64,
    buf: Vec<u8>,
    /// Lookups made: the scan's work, which tests bound.
    reads: u64,
}

impl Window {
    fn get(&mut self, off: u64, n: usize) -> std::io::Result<Option<&[u8]>> {
        self.reads += 1;
        let end = off + n as u64;
        if end > self.len {
            return Ok(None);
        }
        if off < self.start || end > self.start + self.buf.len() as u64 {
            let want = (WINDOW as u64).max(n as u64).min(self.len - off) as usize;
            self.buf.resize(want, 0);
            self.file.seek(SeekFrom::Start(off))?;
            self.file.read_exact(&mut self.buf)?;
            self.start = off;
        }
        let s = (off - self.start) as usize;
        Ok(self.buf.get(s..s + n))
    }
}

/// One recovered video sample: where it is in the file.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Sample {
    pub offset: u64,
    pub len: u64,
}

/// What a slice header says, as far as recognising a sample needs.
struct Slice {
    first_mb: u32,
    slice_type: u32,
}

fn slice_header(nal: &[u8], cfg: &AvcConfig) -> Option<Slice> {
    let mut r = Bits::new(nal.get(1..)?);
    let first_mb = r.ue()?;
    let slice_type = r.ue()?;
    let pps = r.ue()?;
    (slice_type <= 9 && cfg.pps_ids.contains(&pps)).then_some(Slice {
        first_mb,
        slice_type,
    })
}

/// Find every H.264 sample in `mdat`, in file order.
pub fn scan(path: &Path, cfg: &AvcConfig) -> Result<(Mdat, Vec<Sample>), SalvageError> {
    scan_counted(path, cfg).0
}

/// [`scan`], and how many window lookups it made.
fn scan_counted(path: &Path, cfg: &AvcConfig) -> (Result<(Mdat, Vec<Sample>), SalvageError>, u64) {
    let mut reads = 0;
    let r = (|| {
        let mut file = File::open(path)?;
        let mdat = find_mdat(&mut file)?;
        let mut w = Window {
            len: mdat.end,
            file,
            start: 0,
            buf: Vec::new(),
            reads: 0,
        };
        let mut out = Vec::new();
        let mut pos = mdat.start;
        let result = (|| {
            while pos + cfg.length_size as u64 + 2 <= mdat.end {
                match sample_at(&mut w, pos, mdat.end, cfg)? {
                    Some(len) => {
                        if out.len() >= MAX_SAMPLES {
                            return Err(SalvageError::TooMany(MAX_SAMPLES));
                        }
                        out.push(Sample { offset: pos, len });
                        pos += len;
                    }
                    None => pos += 1,
                }
            }
            Ok(())
        })();
        reads = w.reads;
        result?;
        if out.is_empty() {
            return Err(SalvageError::NothingFound);
        }
        Ok((mdat, out))
    })();
    (r, reads)
}

/// The length of a well-formed sample starting at `pos`, if one does.
fn sample_at(w: &mut Window, pos: u64, end: u64, cfg: &AvcConfig) -> std::io::Result<Option<u64>> {
    let ls = cfg.length_size;
    let mut p = pos;
    let mut first: Option<Slice> = None;
    // Bounded walk: a few parameter/SEI units before a picture, a bounded number of slices in
    // it, and a bounded size — so each start position costs a bounded number of lookups
    // (the scan is linear in the file) and no sample is larger than MAX_SAMPLE.
    let (mut leading, mut slices) = (0usize, 0usize);
    while let Some(prefix) = w.get(p, ls + 1)? {
        let len = prefix[..ls]
            .iter()
            .fold(0u64, |a, b| (a << 8) | u64::from(*b));
        let header = prefix[ls];
        if !(2..=MAX_NAL).contains(&len) || p + ls as u64 + len > end || header & 0x80 != 0 {
            break;
        }
        let kind = header & 0x1f;
        let ref_idc = header >> 5;
        match kind {
            1 | 5 => {
                if kind == 5 && ref_idc == 0 {
                    break;
                }
                let head_len = (len as usize).min(16);
                let Some(bytes) = w.get(p + ls as u64, head_len)? else {
                    break;
                };
                let Some(sl) = slice_header(bytes, cfg) else {
                    break;
                };
                match &first {
                    None if sl.first_mb == 0 => first = Some(sl),
                    None => break,
                    // A further slice of the same picture.
                    Some(f) if sl.first_mb > 0 && sl.slice_type % 5 == f.slice_type % 5 => {}
                    // The next picture starts here.
                    Some(_) => break,
                }
                slices += 1;
                if slices > MAX_SLICES {
                    break;
                }
            }
            // Access unit delimiter, SEI, SPS, PPS: only before a picture's slices.
            6..=9 if first.is_none() => {
                leading += 1;
                if leading > MAX_LEADING {
                    return Ok(None);
                }
            }
            _ => break,
        }
        if p + ls as u64 + len - pos > MAX_SAMPLE {
            break;
        }
        p += ls as u64 + len;
    }
    Ok(first.map(|_| p - pos))
}

/// The samples' bytes, one at a time.
pub fn read_samples(
    path: &Path,
    samples: Vec<Sample>,
) -> std::io::Result<impl Iterator<Item = Vec<u8>>> {
    let mut file = File::open(path)?;
    Ok(samples.into_iter().filter_map(move |s| {
        let mut buf = vec![0u8; s.len as usize];
        file.seek(SeekFrom::Start(s.offset)).ok()?;
        file.read_exact(&mut buf).ok()?;
        Some(buf)
    }))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn avcc() -> Vec<u8> {
        // version 1, profile 100, compat 0, level 31, length size 4, 1 SPS, 1 PPS (id 0).
        let sps = [0x67, 0x64, 0x00, 0x1f, 0xac];
        let pps = [0x68, 0xeb, 0xe3, 0xcb];
        let mut v = vec![1, 100, 0, 31, 0xff, 0xe1];
        v.extend_from_slice(&(sps.len() as u16).to_be_bytes());
        v.extend_from_slice(&sps);
        v.push(1);
        v.extend_from_slice(&(pps.len() as u16).to_be_bytes());
        v.extend_from_slice(&pps);
        v
    }

    fn nal(header: u8, body: &[u8]) -> Vec<u8> {
        let mut v = ((body.len() + 1) as u32).to_be_bytes().to_vec();
        v.push(header);
        v.extend_from_slice(body);
        v
    }

    #[test]
    fn parses_the_configuration_record() {
        let c = AvcConfig::parse(&avcc()).unwrap();
        assert_eq!(c.length_size, 4);
        assert_eq!(c.pps_ids, vec![0]);
        assert!(AvcConfig::parse(&[0, 1, 2]).is_none());
    }

    #[test]
    fn finds_samples_between_foreign_bytes() {
        let cfg = AvcConfig::parse(&avcc()).unwrap();
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("cut.mp4");
        let mut f = vec![0, 0, 0, 16];
        f.extend_from_slice(b"ftypisom\0\0\0\0");
        let mdat_at = f.len();
        f.extend_from_slice(&[0, 0, 0, 0]);
        f.extend_from_slice(b"mdat");
        // An IDR picture: SEI, then a slice (first_mb 0 = '1', I = ue(7) '0001000', pps 0 '1').
        let idr = [
            nal(0x06, &[5, 1, 0x80]),
            nal(0x65, &[0b1000_1000, 0b1000_0000, 7, 7]),
        ]
        .concat();
        // A P picture: slice_type ue(5) = '00110'.
        let p_pic = nal(0x41, &[0b1001_1010, 0, 9, 9, 9]);
        // "Audio": bytes that are no NAL chain.
        let audio = [0xffu8, 0xf1, 0x50, 0x80, 0x21, 0x1f, 0xfc, 0xde, 0x02, 0x00];
        f.extend_from_slice(&idr);
        f.extend_from_slice(&audio);
        f.extend_from_slice(&p_pic);
        f.extend_from_slice(&audio);
        f.extend_from_slice(&p_pic[..5]); // cut mid-sample
        let size = (f.len() - mdat_at + 1000) as u32; // mdat claims more than is there
        f[mdat_at..mdat_at + 4].copy_from_slice(&size.to_be_bytes());
        fs_err::write(&p, &f).unwrap();
        let (_, samples) = scan(&p, &cfg).unwrap();
        assert_eq!(samples.len(), 2, "{samples:?}");
        assert_eq!(samples[0].len as usize, idr.len());
        assert_eq!(samples[1].len as usize, p_pic.len());
        let got: Vec<Vec<u8>> = read_samples(&p, samples).unwrap().collect();
        assert_eq!(got, vec![idr, p_pic]);
    }

    /// A crafted mdat: a long chain of SEI units and never a slice. Each start position used
    /// to walk the whole rest of the chain (quadratic); the work is now bounded per position.
    #[test]
    fn a_crafted_chain_without_pictures_is_scanned_in_linear_work() {
        let cfg = AvcConfig::parse(&avcc()).unwrap();
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("crafted.mp4");
        let mut f = vec![0, 0, 0, 16];
        f.extend_from_slice(b"ftypisom\0\0\0\0");
        let mdat_at = f.len();
        f.extend_from_slice(&[0, 0, 0, 0]);
        f.extend_from_slice(b"mdat");
        for _ in 0..4000 {
            f.extend_from_slice(&nal(0x06, &[5, 1]));
        }
        let size = (f.len() - mdat_at) as u32;
        f[mdat_at..mdat_at + 4].copy_from_slice(&size.to_be_bytes());
        fs_err::write(&p, &f).unwrap();
        let (found, reads) = scan_counted(&p, &cfg);
        assert!(matches!(found, Err(SalvageError::NothingFound)));
        assert!(
            reads <= 40 * f.len() as u64,
            "{reads} window reads for a {} byte file",
            f.len()
        );
    }

    #[test]
    fn a_file_with_its_index_is_not_truncated() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("ok.mp4");
        let mut f = vec![0, 0, 0, 8];
        f.extend_from_slice(b"ftyp");
        f.extend_from_slice(&[0, 0, 0, 8]);
        f.extend_from_slice(b"moov");
        fs_err::write(&p, &f).unwrap();
        assert!(matches!(
            find_mdat(&mut File::open(&p).unwrap()),
            Err(SalvageError::HasIndex)
        ));
        fs_err::write(&p, b"RIFF....AVI LIST").unwrap();
        assert!(matches!(
            find_mdat(&mut File::open(&p).unwrap()),
            Err(SalvageError::NotMp4)
        ));
    }
}
