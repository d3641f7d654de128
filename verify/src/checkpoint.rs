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
}
