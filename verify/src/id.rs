//! Typed identifiers. Never pass a bare string where one of these is meant.
//!
//! | type | what it names | form |
//! | --- | --- | --- |
//! | [`Sha256`] | content: the SHA-256 of a file's bytes | 64 lowercase hex digits |
//! | [`EvidenceId`] | one evidence item: one file from one camera at one docking | `ev-` + 20 hex digits |
//! | [`SessionId`] | one docking of one camera at one station | `[A-Za-z0-9._-]`, ≤ 96 |
//! | [`StationId`] | a signing identity: a dock station or a review workstation | `[A-Za-z0-9._-]`, ≤ 64 |
//! | [`CaseId`] | a case, e.g. `晋应急罚〔2023〕102号` | opaque Unicode, no control characters, ≤ 200 |
//! | [`DeviceSerial`] | a camera's 产品序号 | printable, no spaces at the ends, ≤ 64 |
//! | [`OfficerId`] | 执法证号 or 警号 | printable, no spaces at the ends, ≤ 64 |
//!
//! Two evidence items may share content (the same bytes acquired twice): they have different
//! `EvidenceId`s and the same `Sha256`.

use serde::{Deserialize, Deserializer, Serialize, Serializer};
use sha2::Digest as _;
use std::fmt;
use std::str::FromStr;

/// A malformed identifier.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("invalid {kind} {value:?}: {reason}")]
pub struct IdError {
    pub kind: &'static str,
    pub value: String,
    pub reason: &'static str,
}

/// A SHA-256 digest: the content address of an original or derivative, and every Merkle hash.
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Default)]
pub struct Sha256(pub [u8; 32]);

impl Sha256 {
    /// SHA-256 of `data`.
    pub fn digest(data: &[u8]) -> Self {
        Sha256(sha2::Sha256::digest(data).into())
    }

    pub fn as_bytes(&self) -> &[u8; 32] {
        &self.0
    }

    pub fn to_hex(&self) -> String {
        hex::encode(self.0)
    }

    /// Parse from any slice of exactly 32 bytes.
    pub fn from_slice(b: &[u8]) -> Option<Self> {
        <[u8; 32]>::try_from(b).ok().map(Sha256)
    }
}

impl fmt::Display for Sha256 {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.to_hex())
    }
}

impl fmt::Debug for Sha256 {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Sha256({})", self.to_hex())
    }
}

impl FromStr for Sha256 {
    type Err = IdError;
    fn from_str(s: &str) -> Result<Self, IdError> {
        let err = |reason| IdError {
            kind: "SHA-256",
            value: s.to_string(),
            reason,
        };
        if s.len() != 64 {
            return Err(err("expected 64 hex digits"));
        }
        if s.bytes().any(|b| b.is_ascii_uppercase()) {
            return Err(err("hex digits must be lowercase"));
        }
        let mut out = [0u8; 32];
        hex::decode_to_slice(s, &mut out).map_err(|_| err("not hexadecimal"))?;
        Ok(Sha256(out))
    }
}

impl Serialize for Sha256 {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&self.to_hex())
    }
}

impl<'de> Deserialize<'de> for Sha256 {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = String::deserialize(d)?;
        s.parse().map_err(serde::de::Error::custom)
    }
}

fn check_token(s: &str, max: usize) -> Result<(), &'static str> {
    if s.is_empty() {
        return Err("must not be empty");
    }
    if s.len() > max {
        return Err("too long");
    }
    if !s
        .bytes()
        .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b'-'))
    {
        return Err("only ASCII letters, digits, '.', '_' and '-' are allowed");
    }
    if s.starts_with('.') {
        return Err("must not start with '.'");
    }
    Ok(())
}

fn check_text(s: &str, max_chars: usize) -> Result<(), &'static str> {
    if s.is_empty() {
        return Err("must not be empty");
    }
    if s.chars().count() > max_chars {
        return Err("too long");
    }
    if s.chars().any(char::is_control) {
        return Err("must not contain control characters");
    }
    if s.trim() != s {
        return Err("must not start or end with whitespace");
    }
    Ok(())
}

macro_rules! string_id {
    ($(#[$meta:meta])* $name:ident, $kind:literal, $check:expr) => {
        $(#[$meta])*
        #[derive(Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
        #[serde(try_from = "String", into = "String")]
        pub struct $name(String);

        impl $name {
            pub fn new(s: impl Into<String>) -> Result<Self, IdError> {
                let s = s.into();
                let check: fn(&str) -> Result<(), &'static str> = $check;
                match check(&s) {
                    Ok(()) => Ok(Self(s)),
                    Err(reason) => Err(IdError { kind: $kind, value: s, reason }),
                }
            }

            pub fn as_str(&self) -> &str {
                &self.0
            }
        }

        impl TryFrom<String> for $name {
            type Error = IdError;
            fn try_from(s: String) -> Result<Self, IdError> {
                Self::new(s)
            }
        }

        impl From<$name> for String {
            fn from(id: $name) -> String {
                id.0
            }
        }

        impl FromStr for $name {
            type Err = IdError;
            fn from_str(s: &str) -> Result<Self, IdError> {
                Self::new(s)
            }
        }

        impl AsRef<str> for $name {
            fn as_ref(&self) -> &str {
                &self.0
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(&self.0)
            }
        }

        impl fmt::Debug for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                write!(f, "{}({:?})", stringify!($name), self.0)
            }
        }
    };
}

string_id!(
    /// A signing identity: each dock station and each review workstation has one, with its own
    /// key and its own custody log. Safe in object keys and file names.
    StationId,
    "station ID",
    |s| check_token(s, 64)
);

string_id!(
    /// One docking of one camera at one station.
    SessionId,
    "session ID",
    |s| check_token(s, 96)
);

string_id!(
    /// A case ID as the case register writes it, e.g. `晋应急罚〔2023〕102号`: opaque Unicode.
    CaseId,
    "case ID",
    |s| check_text(s, 200)
);

string_id!(
    /// A camera's device serial (产品序号).
    DeviceSerial,
    "device serial",
    |s| check_text(s, 64)
);

string_id!(
    /// An officer: 执法证号 (enforcement certificate number) or 警号 (police number), any string.
    OfficerId,
    "officer ID",
    |s| check_text(s, 64)
);

string_id!(
    /// One evidence item: one file acquired from one camera at one docking.
    ///
    /// Derived, not random: `ev-` and the first 20 hex digits of
    /// SHA-256(`"evidock evidence\n"` ‖ station ‖ `"\n"` ‖ session ‖ `"\n"` ‖ path bytes), so a
    /// resumed acquisition of the same file in the same session names the same item.
    EvidenceId,
    "evidence ID",
    |s| {
        let hex = s.strip_prefix("ev-").ok_or("must start with \"ev-\"")?;
        if hex.len() != 20 || !hex.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f')) {
            return Err("expected \"ev-\" and 20 lowercase hex digits");
        }
        Ok(())
    }
);

impl EvidenceId {
    /// The evidence ID of the file at `path` (raw bytes, as on the camera) in `session` at `station`.
    pub fn derive(station: &StationId, session: &SessionId, path: &[u8]) -> Self {
        let mut h = sha2::Sha256::new();
        h.update(b"evidock evidence\n");
        h.update(station.as_str().as_bytes());
        h.update(b"\n");
        h.update(session.as_str().as_bytes());
        h.update(b"\n");
        h.update(path);
        let d = h.finalize();
        EvidenceId(format!("ev-{}", &hex::encode(d)[..20]))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sha256_round_trip_and_strictness() {
        let d = Sha256::digest(b"abc");
        assert_eq!(
            d.to_hex(),
            "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
        );
        assert_eq!(d.to_hex().parse::<Sha256>().unwrap(), d);
        assert!(d.to_hex().to_uppercase().parse::<Sha256>().is_err());
        assert!("abc".parse::<Sha256>().is_err());
        let json = serde_json::to_string(&d).unwrap();
        assert_eq!(serde_json::from_str::<Sha256>(&json).unwrap(), d);
    }

    #[test]
    fn case_ids_are_opaque_unicode() {
        let c = CaseId::new("晋应急罚〔2023〕102号").unwrap();
        assert_eq!(c.as_str(), "晋应急罚〔2023〕102号");
        assert!(CaseId::new("").is_err());
        assert!(CaseId::new(" x").is_err());
        assert!(CaseId::new("a\nb").is_err());
        // Full-width space inside is fine; it is part of the ID.
        assert!(CaseId::new("应急　1号").is_ok());
    }

    #[test]
    fn station_ids_are_path_safe() {
        assert!(StationId::new("dock-01.county").is_ok());
        for bad in ["", "../x", "a/b", "站", ".hidden", "a b"] {
            assert!(StationId::new(bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn evidence_ids_are_derived_and_validated() {
        let st = StationId::new("dock-01").unwrap();
        let se = SessionId::new("20261128T091055Z-ZFY0001").unwrap();
        let a = EvidenceId::derive(&st, &se, b"DCIM/100MEDIA/a.mp4");
        let b = EvidenceId::derive(&st, &se, b"DCIM/100MEDIA/b.mp4");
        assert_ne!(a, b);
        assert_eq!(a, EvidenceId::derive(&st, &se, b"DCIM/100MEDIA/a.mp4"));
        assert_eq!(a.as_str().len(), 23);
        assert_eq!(EvidenceId::new(a.as_str()).unwrap(), a);
        assert!(EvidenceId::new("ev-XYZ").is_err());
        let json = serde_json::to_string(&a).unwrap();
        assert!(serde_json::from_str::<EvidenceId>("\"ev-1\"").is_err());
        assert_eq!(serde_json::from_str::<EvidenceId>(&json).unwrap(), a);
    }
}
