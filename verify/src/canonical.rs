//! The canonical byte encoding of custody events: RFC 8785 (JSON Canonicalization Scheme),
//! restricted to integers.
//!
//! One value has exactly one encoding, so one event has exactly one hash:
//! - object members sorted by their names' UTF-16 code units (RFC 8785 §3.2.3), no duplicates;
//! - no whitespace;
//! - strings: `"` and `\` escaped, U+0000–U+001F as `\b \t \n \f \r` or `\u00xx` (lowercase hex),
//!   everything else as literal UTF-8 (RFC 8785 §3.2.2.2);
//! - numbers: integers only, within ±(2^53 − 1), in shortest decimal form. Floats are refused
//!   rather than canonicalised: no custody field needs one, and their text form is where
//!   implementations disagree.

use serde::Serialize;
use serde_json::Value;
use std::fmt;

/// The largest integer every JSON implementation reads exactly (I-JSON, RFC 7493 §2.2).
pub const MAX_SAFE_INTEGER: i64 = (1 << 53) - 1;

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CanonicalError {
    #[error("floating-point number {0} at {1}: custody events use integers only")]
    Float(String, String),
    #[error("integer {0} at {1} is outside ±(2^53 − 1)")]
    IntegerRange(String, String),
    #[error("cannot serialize: {0}")]
    Serialize(String),
}

/// Canonical bytes of any serializable value.
pub fn to_canonical<T: Serialize + ?Sized>(value: &T) -> Result<Vec<u8>, CanonicalError> {
    let v = serde_json::to_value(value).map_err(|e| CanonicalError::Serialize(e.to_string()))?;
    canonical_value(&v)
}

/// Canonical bytes of a JSON value.
pub fn canonical_value(v: &Value) -> Result<Vec<u8>, CanonicalError> {
    let mut out = Vec::with_capacity(256);
    write_value(v, &mut out, &mut String::from("$"))?;
    Ok(out)
}

/// Whether `bytes` are exactly the canonical encoding of the JSON they hold.
///
/// Duplicate member names, whitespace, unsorted members, escaped non-ASCII, floats: all make the
/// bytes non-canonical (serde_json keeps the last duplicate, so the re-encoding differs).
pub fn is_canonical(bytes: &[u8]) -> bool {
    match serde_json::from_slice::<Value>(bytes) {
        Ok(v) => canonical_value(&v).is_ok_and(|c| c == bytes),
        Err(_) => false,
    }
}

fn write_value(v: &Value, out: &mut Vec<u8>, path: &mut String) -> Result<(), CanonicalError> {
    match v {
        Value::Null => out.extend_from_slice(b"null"),
        Value::Bool(true) => out.extend_from_slice(b"true"),
        Value::Bool(false) => out.extend_from_slice(b"false"),
        Value::Number(n) => {
            if let Some(i) = n.as_i64() {
                if !(-MAX_SAFE_INTEGER..=MAX_SAFE_INTEGER).contains(&i) {
                    return Err(CanonicalError::IntegerRange(n.to_string(), path.clone()));
                }
                out.extend_from_slice(i.to_string().as_bytes());
            } else if n.is_u64() {
                return Err(CanonicalError::IntegerRange(n.to_string(), path.clone()));
            } else {
                return Err(CanonicalError::Float(n.to_string(), path.clone()));
            }
        }
        Value::String(s) => write_string(s, out),
        Value::Array(items) => {
            out.push(b'[');
            for (i, item) in items.iter().enumerate() {
                if i > 0 {
                    out.push(b',');
                }
                let len = path.len();
                path.push_str(&format!("[{i}]"));
                write_value(item, out, path)?;
                path.truncate(len);
            }
            out.push(b']');
        }
        Value::Object(map) => {
            let mut members: Vec<(&String, &Value)> = map.iter().collect();
            members.sort_by(|a, b| a.0.encode_utf16().cmp(b.0.encode_utf16()));
            out.push(b'{');
            for (i, (k, val)) in members.into_iter().enumerate() {
                if i > 0 {
                    out.push(b',');
                }
                write_string(k, out);
                out.push(b':');
                let len = path.len();
                path.push('.');
                path.push_str(k);
                write_value(val, out, path)?;
                path.truncate(len);
            }
            out.push(b'}');
        }
    }
    Ok(())
}

fn write_string(s: &str, out: &mut Vec<u8>) {
    out.push(b'"');
    for c in s.chars() {
        match c {
            '"' => out.extend_from_slice(b"\\\""),
            '\\' => out.extend_from_slice(b"\\\\"),
            '\u{8}' => out.extend_from_slice(b"\\b"),
            '\t' => out.extend_from_slice(b"\\t"),
            '\n' => out.extend_from_slice(b"\\n"),
            '\u{c}' => out.extend_from_slice(b"\\f"),
            '\r' => out.extend_from_slice(b"\\r"),
            c if (c as u32) < 0x20 => {
                out.extend_from_slice(format!("\\u{:04x}", c as u32).as_bytes());
            }
            c => {
                let mut b = [0u8; 4];
                out.extend_from_slice(c.encode_utf8(&mut b).as_bytes());
            }
        }
    }
    out.push(b'"');
}

/// Canonical bytes shown as text (they are always valid UTF-8).
#[derive(Clone, PartialEq, Eq)]
pub struct CanonicalJson(pub Vec<u8>);

impl fmt::Debug for CanonicalJson {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&String::from_utf8_lossy(&self.0))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn canon(v: Value) -> String {
        String::from_utf8(canonical_value(&v).unwrap()).unwrap()
    }

    #[test]
    fn sorts_members_and_drops_whitespace() {
        assert_eq!(
            canon(json!({"b": 1, "a": [true, null, "x"], "c": {"z": 0, "y": -5}})),
            r#"{"a":[true,null,"x"],"b":1,"c":{"y":-5,"z":0}}"#
        );
    }

    // RFC 8785 §3.2.3: sorting is by UTF-16 code units, which differs from UTF-8 byte order
    // for characters above U+FFFF versus U+E000–U+FFFF.
    #[test]
    fn sorts_by_utf16_code_units() {
        let v = json!({"\u{FB33}": 1, "\u{1F600}": 2, "a": 3});
        assert_eq!(canon(v), "{\"a\":3,\"\u{1F600}\":2,\"\u{FB33}\":1}");
    }

    #[test]
    fn escapes_like_rfc8785() {
        let v = json!("\u{0}\u{8}\t\n\u{c}\r\u{1f}\"\\/\u{7f}é晋〔〕\u{2028}");
        assert_eq!(
            canon(v),
            "\"\\u0000\\b\\t\\n\\f\\r\\u001f\\\"\\\\/\u{7f}é晋〔〕\u{2028}\""
        );
    }

    #[test]
    fn refuses_floats_and_unsafe_integers() {
        assert!(matches!(
            canonical_value(&json!({"x": 1.5})),
            Err(CanonicalError::Float(_, p)) if p == "$.x"
        ));
        assert!(canonical_value(&json!(MAX_SAFE_INTEGER)).is_ok());
        assert!(canonical_value(&json!(MAX_SAFE_INTEGER + 1)).is_err());
        assert!(canonical_value(&json!(-MAX_SAFE_INTEGER - 1)).is_err());
        assert!(canonical_value(&json!(u64::MAX)).is_err());
    }

    #[test]
    fn detects_non_canonical_bytes() {
        assert!(is_canonical(br#"{"a":1,"b":2}"#));
        assert!(!is_canonical(br#"{"b":2,"a":1}"#));
        assert!(!is_canonical(br#"{"a": 1}"#));
        assert!(!is_canonical(br#"{"a":1,"a":1}"#));
        assert!(!is_canonical(br#"{"a":"\u00e9"}"#));
        assert!(!is_canonical(br#"{"a":1.0}"#));
        assert!(!is_canonical(b"{\"a\":1}\n"));
        assert!(!is_canonical(b"not json"));
    }
}
