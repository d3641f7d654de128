//! C2SP signed notes (<https://c2sp.org/signed-note>) with Ed25519 keys.
//!
//! ```text
//! <text: one or more lines, each ending in \n>
//! \n
//! — <key name> <base64(key ID ‖ signature)>\n     (one line per signature; — is U+2014)
//! ```
//!
//! The signature covers the text only (including its final newline). The key ID is the first four
//! bytes of `SHA-256(key name ‖ 0x0A ‖ 0x01 ‖ public key)`; a verifier key is written
//! `<name>+<key ID, 8 hex digits>+<base64(0x01 ‖ public key)>`.

use crate::id::Sha256;
use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as B64;
use sha2::Digest as _;
use std::fmt;

/// The signature type byte of Ed25519 in C2SP signed notes.
pub const ALG_ED25519: u8 = 0x01;
const SIG_PREFIX: &str = "\u{2014} ";
/// Notes larger than this are refused before parsing (a checkpoint is a few hundred bytes).
pub const MAX_NOTE_BYTES: usize = 1 << 20;

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum NoteError {
    #[error("the note is larger than {MAX_NOTE_BYTES} bytes")]
    TooLarge,
    #[error("the note is not valid UTF-8")]
    NotUtf8,
    #[error("the note contains a control character other than newline")]
    ControlCharacter,
    #[error("the note has no blank line separating the text from the signatures")]
    NoSeparator,
    #[error("the note text is empty")]
    EmptyText,
    #[error("the note has no signature lines")]
    NoSignatures,
    #[error("malformed signature line {0:?}")]
    BadSignatureLine(String),
    #[error("invalid key name {0:?}: non-empty, no whitespace, no '+'")]
    BadKeyName(String),
    #[error("malformed verifier key {0:?}")]
    BadVerifierKey(String),
}

fn check_key_name(name: &str) -> Result<(), NoteError> {
    if name.is_empty() || name.contains(char::is_whitespace) || name.contains('+') {
        return Err(NoteError::BadKeyName(name.to_string()));
    }
    Ok(())
}

/// The 4-byte key ID of an Ed25519 key with this name.
pub fn key_id(name: &str, public_key: &[u8; 32]) -> [u8; 4] {
    let mut h = sha2::Sha256::new();
    h.update(name.as_bytes());
    h.update([b'\n', ALG_ED25519]);
    h.update(public_key);
    let d = h.finalize();
    [d[0], d[1], d[2], d[3]]
}

/// An Ed25519 verifier key with its note name.
#[derive(Clone, PartialEq, Eq)]
pub struct VerifierKey {
    pub name: String,
    pub id: [u8; 4],
    pub public_key: [u8; 32],
}

impl fmt::Debug for VerifierKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "VerifierKey({self})")
    }
}

impl VerifierKey {
    pub fn new(name: &str, public_key: [u8; 32]) -> Result<Self, NoteError> {
        check_key_name(name)?;
        Ok(VerifierKey {
            name: name.to_string(),
            id: key_id(name, &public_key),
            public_key,
        })
    }

    /// Parse `<name>+<hex id>+<base64(0x01 ‖ key)>`; the ID must match the key.
    pub fn parse(s: &str) -> Result<Self, NoteError> {
        let bad = || NoteError::BadVerifierKey(s.to_string());
        let s = s.trim();
        // Names never contain '+'; base64 may. Split from the left.
        let mut parts = s.splitn(3, '+');
        let (Some(name), Some(id_hex), Some(b64)) = (parts.next(), parts.next(), parts.next())
        else {
            return Err(bad());
        };
        check_key_name(name)?;
        let raw = B64.decode(b64).map_err(|_| bad())?;
        if raw.len() != 33 || raw[0] != ALG_ED25519 || id_hex.len() != 8 {
            return Err(bad());
        }
        let mut pk = [0u8; 32];
        pk.copy_from_slice(&raw[1..]);
        let key = VerifierKey::new(name, pk)?;
        let mut id = [0u8; 4];
        hex::decode_to_slice(id_hex, &mut id).map_err(|_| bad())?;
        if id != key.id {
            return Err(bad());
        }
        Ok(key)
    }

    /// SHA-256 of the raw 32-byte public key: what a collection record prints for comparison.
    pub fn fingerprint(&self) -> Sha256 {
        Sha256::digest(&self.public_key)
    }

    /// Whether `signature` (64 bytes) is this key's Ed25519 signature of `message`.
    pub fn verify(&self, message: &[u8], signature: &[u8]) -> bool {
        let Ok(vk) = ed25519_dalek::VerifyingKey::from_bytes(&self.public_key) else {
            return false;
        };
        let Ok(sig) = ed25519_dalek::Signature::from_slice(signature) else {
            return false;
        };
        vk.verify_strict(message, &sig).is_ok()
    }
}

impl fmt::Display for VerifierKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut raw = Vec::with_capacity(33);
        raw.push(ALG_ED25519);
        raw.extend_from_slice(&self.public_key);
        write!(
            f,
            "{}+{}+{}",
            self.name,
            hex::encode(self.id),
            B64.encode(raw)
        )
    }
}

/// One signature line of a note.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NoteSignature {
    pub name: String,
    pub key_id: [u8; 4],
    /// The signature bytes after the key ID (64 bytes for Ed25519).
    pub signature: Vec<u8>,
}

/// A parsed signed note: its text and its signature lines.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SignedNote {
    /// The signed text, ending in `\n`.
    pub text: String,
    pub signatures: Vec<NoteSignature>,
}

impl SignedNote {
    /// Parse a note. Signatures are not checked here: see [`SignedNote::verify`].
    pub fn parse(bytes: &[u8]) -> Result<Self, NoteError> {
        if bytes.len() > MAX_NOTE_BYTES {
            return Err(NoteError::TooLarge);
        }
        let s = std::str::from_utf8(bytes).map_err(|_| NoteError::NotUtf8)?;
        if s.chars().any(|c| c.is_ascii_control() && c != '\n') {
            return Err(NoteError::ControlCharacter);
        }
        // The separator is the last blank line: the text itself may not contain blank lines
        // in checkpoints, but the rule in signed-note is "the last \n\n".
        let sep = s.rfind("\n\n").ok_or(NoteError::NoSeparator)?;
        let text = &s[..sep + 1];
        let sigs = &s[sep + 2..];
        if text.trim().is_empty() {
            return Err(NoteError::EmptyText);
        }
        if sigs.is_empty() {
            return Err(NoteError::NoSignatures);
        }
        if !sigs.ends_with('\n') {
            return Err(NoteError::BadSignatureLine(sigs.to_string()));
        }
        let mut signatures = Vec::new();
        for line in sigs[..sigs.len() - 1].split('\n') {
            let bad = || NoteError::BadSignatureLine(line.to_string());
            let rest = line.strip_prefix(SIG_PREFIX).ok_or_else(bad)?;
            let (name, b64) = rest.split_once(' ').ok_or_else(bad)?;
            check_key_name(name)?;
            let raw = B64.decode(b64).map_err(|_| bad())?;
            if raw.len() < 5 {
                return Err(bad());
            }
            signatures.push(NoteSignature {
                name: name.to_string(),
                key_id: [raw[0], raw[1], raw[2], raw[3]],
                signature: raw[4..].to_vec(),
            });
        }
        Ok(SignedNote {
            text: text.to_string(),
            signatures,
        })
    }

    /// Whether one of the signatures is a valid signature by `key`.
    pub fn verify(&self, key: &VerifierKey) -> bool {
        self.signatures
            .iter()
            .filter(|s| s.name == key.name && s.key_id == key.id)
            .any(|s| key.verify(self.text.as_bytes(), &s.signature))
    }

    /// Signatures whose name and key ID match no key in `keys`.
    pub fn unknown_signers<'a>(&'a self, keys: &[VerifierKey]) -> Vec<&'a NoteSignature> {
        self.signatures
            .iter()
            .filter(|s| !keys.iter().any(|k| k.name == s.name && k.id == s.key_id))
            .collect()
    }

    /// The note's bytes: text, blank line, signature lines.
    pub fn to_bytes(&self) -> Vec<u8> {
        let mut out = self.text.clone();
        out.push('\n');
        for s in &self.signatures {
            let mut raw = s.key_id.to_vec();
            raw.extend_from_slice(&s.signature);
            out.push_str(SIG_PREFIX);
            out.push_str(&s.name);
            out.push(' ');
            out.push_str(&B64.encode(raw));
            out.push('\n');
        }
        out.into_bytes()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use ed25519_dalek::Signer as _;

    fn keypair(name: &str) -> (ed25519_dalek::SigningKey, VerifierKey) {
        let sk = ed25519_dalek::SigningKey::from_bytes(&[7u8; 32]);
        let vk = VerifierKey::new(name, sk.verifying_key().to_bytes()).unwrap();
        (sk, vk)
    }

    fn sign(text: &str, sk: &ed25519_dalek::SigningKey, vk: &VerifierKey) -> SignedNote {
        SignedNote {
            text: text.to_string(),
            signatures: vec![NoteSignature {
                name: vk.name.clone(),
                key_id: vk.id,
                signature: sk.sign(text.as_bytes()).to_bytes().to_vec(),
            }],
        }
    }

    // The example key and note of golang.org/x/mod/sumdb/note: the format evidock writes
    // must be readable by that reference implementation and vice versa.
    #[test]
    fn reads_the_reference_example() {
        let vk = VerifierKey::parse(
            "PeterNeumann+c74f20a3+ARpc2QcUPDhMQegwxbzhKqiBfsVkmqq/LDE4izWy10TW",
        )
        .unwrap();
        assert_eq!(vk.name, "PeterNeumann");
        let note = "If you think cryptography is the answer to your problem,\n\
                    then you don't know what your problem is.\n\
                    \n\
                    \u{2014} PeterNeumann x08go/ZJkuBS9UG/SffcvIAQxVBtiFupLLr8pAcElZInNIuGUgYN1FFYC2pZSNXgKvqfqdngotpRZb6KE6RyyBwJnAM=\n";
        let n = SignedNote::parse(note.as_bytes()).unwrap();
        assert!(n.verify(&vk));
        assert_eq!(n.to_bytes(), note.as_bytes());
    }

    #[test]
    fn round_trip_and_tamper() {
        let (sk, vk) = keypair("evidock.station/dock-01");
        assert_eq!(VerifierKey::parse(&vk.to_string()).unwrap(), vk);
        let n = sign("evidock.station/dock-01\n3\nabc=\n", &sk, &vk);
        let bytes = n.to_bytes();
        let back = SignedNote::parse(&bytes).unwrap();
        assert_eq!(back, n);
        assert!(back.verify(&vk));

        let mut t = back.clone();
        t.text = t.text.replace('3', "4");
        assert!(!t.verify(&vk));
        let (_, other) = {
            let sk2 = ed25519_dalek::SigningKey::from_bytes(&[9u8; 32]);
            let vk2 = VerifierKey::new("evidock.station/dock-01", sk2.verifying_key().to_bytes())
                .unwrap();
            (sk2, vk2)
        };
        assert!(!back.verify(&other));
        assert_eq!(back.unknown_signers(&[other]).len(), 1);
    }

    #[test]
    fn malformed_notes_are_errors_not_panics() {
        for bad in [
            &b""[..],
            b"text\n",
            b"text\n\n",
            b"\n\n\xe2\x80\x94 a AAAA\n",
            b"text\n\n- a AAAAAAA=\n",
            b"text\n\n\xe2\x80\x94 a !!!\n",
            b"text\n\n\xe2\x80\x94 a AAAA",
            b"te\rxt\n\n\xe2\x80\x94 a AAAAAAAA\n",
            b"\xff\n\n",
        ] {
            assert!(
                SignedNote::parse(bad).is_err(),
                "{:?}",
                String::from_utf8_lossy(bad)
            );
        }
        for bad in [
            "",
            "a+b",
            "a+0000+AAAA",
            "a+zzzzzzzz+ARpc",
            "a b+c74f20a3+AR==",
        ] {
            assert!(VerifierKey::parse(bad).is_err(), "{bad}");
        }
    }
}
