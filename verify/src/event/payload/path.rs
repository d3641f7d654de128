//! A camera file's path, byte-exact, and its two JSON forms (a string when UTF-8, hex bytes with
//! a readable rendering otherwise). Apart from the payloads because it is the one type among them
//! with hand-written serialisation.

use serde::{Deserialize, Deserializer, Serialize, Serializer};
use std::fmt;

/// A file's path on the camera volume, relative to its root, `/`-separated, byte-exact.
///
/// Written as a JSON string when the bytes are UTF-8; otherwise (GBK short names on a card read
/// without the right codepage) as `{"bytes":"<hex>","shown":"<lossy text>"}`, so nothing about the
/// name is lost and a person still sees something readable.
#[derive(Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct CameraPath(pub Vec<u8>);

impl CameraPath {
    pub fn as_bytes(&self) -> &[u8] {
        &self.0
    }

    /// Readable form: UTF-8 as is; otherwise GBK-decoded if that works, else lossy UTF-8.
    pub fn display(&self) -> String {
        match std::str::from_utf8(&self.0) {
            Ok(s) => s.to_string(),
            Err(_) => crate::gbk::decode_lossy(&self.0),
        }
    }

    /// The file name (after the last `/`).
    pub fn file_name(&self) -> &[u8] {
        match self.0.iter().rposition(|&b| b == b'/') {
            Some(i) => &self.0[i + 1..],
            None => &self.0,
        }
    }
}

impl fmt::Debug for CameraPath {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "CameraPath({:?})", self.display())
    }
}

impl fmt::Display for CameraPath {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.display())
    }
}

#[derive(Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawPath {
    bytes: String,
    shown: String,
}

impl Serialize for CameraPath {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        match std::str::from_utf8(&self.0) {
            Ok(text) => s.serialize_str(text),
            Err(_) => RawPath {
                bytes: hex::encode(&self.0),
                shown: self.display(),
            }
            .serialize(s),
        }
    }
}

impl<'de> Deserialize<'de> for CameraPath {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        #[derive(Deserialize)]
        #[serde(untagged)]
        enum Form {
            Text(String),
            Raw(RawPath),
        }
        match Form::deserialize(d)? {
            Form::Text(t) => Ok(CameraPath(t.into_bytes())),
            Form::Raw(r) => {
                let bytes = hex::decode(&r.bytes).map_err(serde::de::Error::custom)?;
                if std::str::from_utf8(&bytes).is_ok() {
                    // One form per path: UTF-8 names must be plain strings.
                    return Err(serde::de::Error::custom(
                        "a UTF-8 path must be written as a string",
                    ));
                }
                Ok(CameraPath(bytes))
            }
        }
    }
}
