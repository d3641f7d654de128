//! Checkpoints (C2SP tlog-checkpoint) and offline inclusion proofs (C2SP tlog-proof).
//!
//! A checkpoint is the text of a signed note:
//!
//! ```text
//! evidock.station/<station ID>\n       origin: names the log
//! <tree size, decimal>\n
//! <root hash, base64>\n
//! time <RFC 3339 UTC>\n                 extension line: when the station signed it
//! ```
//!
//! An inclusion proof file (`.tlog-proof`) is
//!
//! ```text
//! c2sp.org/tlog-proof@v1\n
//! index <leaf index>\n
//! <hash, base64>\n ...                  the audit path, leaf side first
//! \n
//! <the signed checkpoint note>
//! ```

use crate::id::{Sha256, StationId};
use crate::merkle::{self, Hash, ProofError};
use crate::note::{NoteError, SignedNote, VerifierKey};
use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as B64;
use chrono::{DateTime, SecondsFormat, Utc};

/// The largest checkpoint note or proof file read. A real one is a few hundred bytes (a
/// proof: up to 64 hashes and its checkpoint); the room left is for cosignatures.
pub const MAX_FILE_BYTES: u64 = 16 << 10;

/// The origin line of a station's log.
pub fn origin(station: &StationId) -> String {
    format!("evidock.station/{station}")
}

/// The station named by an origin line, if it is an evidock origin.
pub fn station_of_origin(origin: &str) -> Option<StationId> {
    StationId::new(origin.strip_prefix("evidock.station/")?).ok()
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CheckpointError {
    #[error(transparent)]
    Note(#[from] NoteError),
    #[error("the checkpoint text has fewer than three lines")]
    TooShort,
    #[error("tree size {0:?} is not a decimal number")]
    BadSize(String),
    #[error("root hash {0:?} is not 32 bytes of base64")]
    BadRoot(String),
    #[error("malformed extension line {0:?}")]
    BadExtension(String),
    #[error("proof file: {0}")]
    BadProof(String),
}

/// The body of a checkpoint.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Checkpoint {
    pub origin: String,
    pub size: u64,
    pub root: Hash,
    /// When the station signed it (from the `time` extension line), if present.
    pub time: Option<DateTime<Utc>>,
    /// Extension lines evidock does not interpret, kept in order.
    pub other: Vec<String>,
}

impl Checkpoint {
    /// The note text of this checkpoint.
    pub fn to_text(&self) -> String {
        let mut s = format!(
            "{}\n{}\n{}\n",
            self.origin,
            self.size,
            B64.encode(self.root.0)
        );
        if let Some(t) = self.time {
            s.push_str(&format!(
                "time {}\n",
                t.to_rfc3339_opts(SecondsFormat::Secs, true)
            ));
        }
        for line in &self.other {
            s.push_str(line);
            s.push('\n');
        }
        s
    }

    /// Parse a checkpoint from a note's text.
    pub fn from_text(text: &str) -> Result<Self, CheckpointError> {
        let body = text.strip_suffix('\n').ok_or(CheckpointError::TooShort)?;
        let mut lines = body.split('\n');
        let (Some(origin), Some(size), Some(root)) = (lines.next(), lines.next(), lines.next())
        else {
            return Err(CheckpointError::TooShort);
        };
        if origin.is_empty() {
            return Err(CheckpointError::TooShort);
        }
        // Decimal, no sign, no leading zeros (one encoding per size).
        if size.is_empty()
            || !size.bytes().all(|b| b.is_ascii_digit())
            || (size.len() > 1 && size.starts_with('0'))
        {
            return Err(CheckpointError::BadSize(size.to_string()));
        }
        let size: u64 = size
            .parse()
            .map_err(|_| CheckpointError::BadSize(size.to_string()))?;
        let root_bytes = B64
            .decode(root)
            .map_err(|_| CheckpointError::BadRoot(root.to_string()))?;
        let root = Sha256::from_slice(&root_bytes)
            .ok_or_else(|| CheckpointError::BadRoot(root.to_string()))?;
        let mut time = None;
        let mut other = Vec::new();
        for line in lines {
            if line.is_empty() {
                return Err(CheckpointError::BadExtension(line.to_string()));
            }
            if let Some(t) = line.strip_prefix("time ") {
                let parsed = DateTime::parse_from_rfc3339(t)
                    .map_err(|_| CheckpointError::BadExtension(line.to_string()))?;
                time = Some(parsed.with_timezone(&Utc));
            } else {
                other.push(line.to_string());
            }
        }
        Ok(Checkpoint {
            origin: origin.to_string(),
            size,
            root,
            time,
            other,
        })
    }
}

/// A checkpoint with its signed note, as stored and exported.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SignedCheckpoint {
    pub checkpoint: Checkpoint,
    pub note: SignedNote,
}

impl SignedCheckpoint {
    pub fn parse(bytes: &[u8]) -> Result<Self, CheckpointError> {
        let note = SignedNote::parse(bytes)?;
        let checkpoint = Checkpoint::from_text(&note.text)?;
        Ok(SignedCheckpoint { checkpoint, note })
    }

    /// Whether `key` signed it and the key's name is the checkpoint's origin.
    pub fn verify(&self, key: &VerifierKey) -> bool {
        key.name == self.checkpoint.origin && self.note.verify(key)
    }

    pub fn to_bytes(&self) -> Vec<u8> {
        self.note.to_bytes()
    }
}

/// An offline proof that one entry is in a log: the audit path and the signed checkpoint.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct InclusionProof {
    pub index: u64,
    pub path: Vec<Hash>,
    pub checkpoint: SignedCheckpoint,
}

const PROOF_HEADER: &str = "c2sp.org/tlog-proof@v1";

impl InclusionProof {
    pub fn to_bytes(&self) -> Vec<u8> {
        let mut s = format!("{PROOF_HEADER}\nindex {}\n", self.index);
        for h in &self.path {
            s.push_str(&B64.encode(h.0));
            s.push('\n');
        }
        s.push('\n');
        let mut out = s.into_bytes();
        out.extend_from_slice(&self.checkpoint.to_bytes());
        out
    }

    pub fn parse(bytes: &[u8]) -> Result<Self, CheckpointError> {
        let bad = |m: &str| CheckpointError::BadProof(m.to_string());
        if bytes.len() > crate::note::MAX_NOTE_BYTES {
            return Err(bad("larger than 1 MiB"));
        }
        let s = std::str::from_utf8(bytes).map_err(|_| bad("not UTF-8"))?;
        let (head, note) = s.split_once("\n\n").ok_or_else(|| bad("no blank line"))?;
        let mut lines = head.split('\n');
        if lines.next() != Some(PROOF_HEADER) {
            return Err(bad("missing c2sp.org/tlog-proof@v1 header"));
        }
        let mut line = lines.next().ok_or_else(|| bad("missing index line"))?;
        if line.starts_with("extra ") {
            line = lines.next().ok_or_else(|| bad("missing index line"))?;
        }
        let index: u64 = line
            .strip_prefix("index ")
            .and_then(|i| i.parse().ok())
            .ok_or_else(|| bad("malformed index line"))?;
        let mut path = Vec::new();
        for l in lines {
            let raw = B64.decode(l).map_err(|_| bad("malformed hash line"))?;
            path.push(Sha256::from_slice(&raw).ok_or_else(|| bad("hash is not 32 bytes"))?);
        }
        let checkpoint = SignedCheckpoint::parse(note.as_bytes())?;
        Ok(InclusionProof {
            index,
            path,
            checkpoint,
        })
    }

    /// Check that the entry with `leaf` hash is at `self.index` under the checkpoint's root.
    /// The checkpoint's signature is checked separately.
    pub fn verify_leaf(&self, leaf: &Hash) -> Result<(), ProofError> {
        merkle::verify_inclusion(
            leaf,
            self.index,
            self.checkpoint.checkpoint.size,
            &self.path,
            &self.checkpoint.checkpoint.root,
        )
    }
}

/// An offline proof that a log at `new` extends the log at `old` (RFC 9162 consistency).
///
/// Written as text: `evidock.consistency-proof@v1`, `old <size>`, `new <size>`, then one base64
/// hash per line.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConsistencyProof {
    pub old: u64,
    pub new: u64,
    pub path: Vec<Hash>,
}

const CONSISTENCY_HEADER: &str = "evidock.consistency-proof@v1";

impl ConsistencyProof {
    pub fn to_bytes(&self) -> Vec<u8> {
        let mut s = format!("{CONSISTENCY_HEADER}\nold {}\nnew {}\n", self.old, self.new);
        for h in &self.path {
            s.push_str(&B64.encode(h.0));
            s.push('\n');
        }
        s.into_bytes()
    }

    pub fn parse(bytes: &[u8]) -> Result<Self, CheckpointError> {
        let bad = |m: &str| CheckpointError::BadProof(m.to_string());
        if bytes.len() > 64 * 1024 {
            return Err(bad("larger than 64 KiB"));
        }
        let s = std::str::from_utf8(bytes).map_err(|_| bad("not UTF-8"))?;
        let body = s
            .strip_suffix('\n')
            .ok_or_else(|| bad("no final newline"))?;
        let mut lines = body.split('\n');
        if lines.next() != Some(CONSISTENCY_HEADER) {
            return Err(bad("missing evidock.consistency-proof@v1 header"));
        }
        let mut size = |prefix: &str| {
            lines
                .next()
                .and_then(|l| l.strip_prefix(prefix))
                .and_then(|n| n.parse::<u64>().ok())
                .ok_or_else(|| bad(&format!("malformed {}line", prefix)))
        };
        let old = size("old ")?;
        let new = size("new ")?;
        let mut path = Vec::new();
        for l in lines {
            let raw = B64.decode(l).map_err(|_| bad("malformed hash line"))?;
            path.push(Sha256::from_slice(&raw).ok_or_else(|| bad("hash is not 32 bytes"))?);
        }
        Ok(ConsistencyProof { old, new, path })
    }

    /// Check that `new_root` at `self.new` extends `old_root` at `self.old`.
    pub fn verify(&self, old_root: &Hash, new_root: &Hash) -> Result<(), ProofError> {
        merkle::verify_consistency(self.old, self.new, &self.path, old_root, new_root)
    }
}

/// Consistency proofs from many earlier tree sizes to one, in one file: a package carries one
/// from every earlier checkpoint of its station, so that a receiver holding any of them can hold
/// the package to it.
///
/// ```text
/// evidock.consistency-proofs@v1
/// new <size>
///
/// old <size> <root, base64>          the root the station's tree had at that size
/// <hash, base64>                     the RFC 9162 consistency proof, one hash per line
///
/// old <size> <root, base64>
/// ...
/// ```
///
/// It is read one entry at a time ([`read_bundle`]): its size does not decide memory.
pub const BUNDLE_HEADER: &str = "evidock.consistency-proofs@v1";

/// The text of a bundle to `new`: `(old size, old root, proof)` each.
pub fn bundle_to_bytes(new: u64, entries: &[(u64, Hash, Vec<Hash>)]) -> Vec<u8> {
    let mut s = format!("{BUNDLE_HEADER}\nnew {new}\n");
    for (old, root, path) in entries {
        s.push_str(&format!("\nold {old} {}\n", B64.encode(root.0)));
        for h in path {
            s.push_str(&B64.encode(h.0));
            s.push('\n');
        }
    }
    s.into_bytes()
}

/// One entry of a bundle: the proof from `old` (with the station's root at `old`) to `new`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BundleEntry {
    pub root: Hash,
    pub proof: ConsistencyProof,
}

/// Read a bundle entry by entry; `each` gets every entry or, for an entry that cannot be read,
/// why. Returns the bundle's `new` size, or why the bundle itself is unreadable. No line longer
/// than 128 bytes and no proof longer than 128 hashes is accepted.
pub fn read_bundle(
    reader: impl std::io::BufRead,
    mut each: impl FnMut(Result<BundleEntry, String>),
) -> Result<u64, String> {
    use std::io::{BufRead as _, Read as _};
    const LINE: u64 = 128;
    let mut lines = reader;
    let mut line = String::new();
    let mut next = |line: &mut String| -> Result<Option<()>, String> {
        line.clear();
        let n = (&mut lines)
            .take(LINE + 1)
            .read_line(line)
            .map_err(|e| e.to_string())?;
        if n == 0 {
            return Ok(None);
        }
        if !line.ends_with('\n') {
            return Err("a line too long, or without its final newline".into());
        }
        line.pop();
        Ok(Some(()))
    };
    if next(&mut line)?.is_none() || line != BUNDLE_HEADER {
        return Err(format!("missing {BUNDLE_HEADER} header"));
    }
    let new: u64 = match next(&mut line)? {
        Some(()) => line
            .strip_prefix("new ")
            .and_then(|n| n.parse().ok())
            .ok_or("malformed new line")?,
        None => return Err("missing new line".into()),
    };
    let mut current: Option<(u64, Hash, Vec<Hash>)> = None;
    let mut emit = |cur: Option<(u64, Hash, Vec<Hash>)>| {
        if let Some((old, root, path)) = cur {
            each(Ok(BundleEntry {
                root,
                proof: ConsistencyProof { old, new, path },
            }));
        }
    };
    while let Some(()) = next(&mut line)? {
        if line.is_empty() {
            emit(current.take());
            continue;
        }
        if let Some(rest) = line.strip_prefix("old ") {
            emit(current.take());
            let parsed = rest.split_once(' ').and_then(|(size, root)| {
                let raw = B64.decode(root).ok()?;
                Some((size.parse::<u64>().ok()?, Sha256::from_slice(&raw)?))
            });
            match parsed {
                Some((old, root)) => current = Some((old, root, Vec::new())),
                None => return Err(format!("malformed old line {line:?}")),
            }
            continue;
        }
        let Some((_, _, path)) = current.as_mut() else {
            return Err("a hash before any old line".into());
        };
        if path.len() >= 128 {
            return Err("a proof longer than 128 hashes".into());
        }
        match B64
            .decode(&line)
            .ok()
            .and_then(|raw| Sha256::from_slice(&raw))
        {
            Some(h) => path.push(h),
            None => return Err(format!("malformed hash line {line:?}")),
        }
    }
    emit(current.take());
    Ok(new)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::merkle::MemoryTree;
    use crate::note::NoteSignature;
    use ed25519_dalek::Signer as _;

    fn signed(cp: &Checkpoint, sk: &ed25519_dalek::SigningKey) -> SignedCheckpoint {
        let vk = VerifierKey::new(&cp.origin, sk.verifying_key().to_bytes()).unwrap();
        let text = cp.to_text();
        SignedCheckpoint {
            checkpoint: cp.clone(),
            note: SignedNote {
                signatures: vec![NoteSignature {
                    name: vk.name.clone(),
                    key_id: vk.id,
                    signature: sk.sign(text.as_bytes()).to_bytes().to_vec(),
                }],
                text,
            },
        }
    }

    #[test]
    fn checkpoint_text_round_trip() {
        let st = StationId::new("dock-01").unwrap();
        let cp = Checkpoint {
            origin: origin(&st),
            size: 42,
            root: Sha256::digest(b"x"),
            time: Some("2026-11-28T09:10:55Z".parse().unwrap()),
            other: vec!["note from the future".into()],
        };
        let text = cp.to_text();
        assert!(text.starts_with("evidock.station/dock-01\n42\n"));
        assert_eq!(Checkpoint::from_text(&text).unwrap(), cp);
        assert_eq!(station_of_origin(&cp.origin), Some(st));
        for bad in [
            "o\n",
            "o\n4\n",
            "o\n04\nAAAA\n",
            "o\n-4\nAAAA\n",
            "o\n4\nAAAA\n",
            "o\n4\nAAAA",
            "\n4\nAAAA\n",
        ] {
            assert!(Checkpoint::from_text(bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn inclusion_proof_file_round_trip_and_checks() {
        let sk = ed25519_dalek::SigningKey::from_bytes(&[3u8; 32]);
        let mut t = MemoryTree::new();
        for i in 0..11u32 {
            t.push_entry(&i.to_be_bytes());
        }
        let cp = Checkpoint {
            origin: "evidock.station/dock-01".into(),
            size: 11,
            root: t.root(),
            time: None,
            other: vec![],
        };
        let sc = signed(&cp, &sk);
        let vk = VerifierKey::new(&cp.origin, sk.verifying_key().to_bytes()).unwrap();
        assert!(sc.verify(&vk));
        let proof = InclusionProof {
            index: 6,
            path: t.inclusion_proof(6, 11).unwrap(),
            checkpoint: sc,
        };
        let bytes = proof.to_bytes();
        let back = InclusionProof::parse(&bytes).unwrap();
        assert_eq!(back, proof);
        back.verify_leaf(&t.leaf(6).unwrap()).unwrap();
        assert!(back.verify_leaf(&t.leaf(5).unwrap()).is_err());
        assert!(back.checkpoint.verify(&vk));
    }

    #[test]
    fn bundle_round_trip_entry_by_entry() {
        let mut t = MemoryTree::new();
        for i in 0..40u32 {
            t.push_entry(&i.to_be_bytes());
        }
        let entries: Vec<(u64, Hash, Vec<Hash>)> = [1u64, 7, 16, 39]
            .iter()
            .map(|&old| {
                (
                    old,
                    t.root_at(old).unwrap(),
                    t.consistency_proof(old, 40).unwrap(),
                )
            })
            .collect();
        let bytes = bundle_to_bytes(40, &entries);
        let mut got = Vec::new();
        let new = read_bundle(&bytes[..], |e| got.push(e.unwrap())).unwrap();
        assert_eq!(new, 40);
        assert_eq!(got.len(), 4);
        for e in &got {
            e.proof.verify(&e.root, &t.root()).unwrap();
        }
        assert!(read_bundle(&b"nope\n"[..], |_| {}).is_err());
        let mut long = bytes.clone();
        long.extend(std::iter::repeat_n(b'A', 500));
        assert!(read_bundle(&long[..], |_| {}).is_err());
    }
}
