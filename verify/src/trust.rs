//! Trust anchors, supplied by the reader (`--trust FILE`), never taken from what is checked.
//!
//! ```toml
//! # Which station keys and TSA roots this reader trusts.
//! [[station]]
//! key = "evidock.station/dock-01+1a2b3c4d+AXXX…"     # the verifier key, as `evidock station show` prints it
//! [[station]]
//! fingerprint = "5c3e…"                               # or only its fingerprint, from a collection record
//!
//! [[tsa]]
//! root_file = "tsa-root.pem"                           # a pinned root certificate (relative to this file)
//! [[tsa]]
//! fingerprint = "9a0b…"                                # or the SHA-256 of a root's DER the token carries
//! ```

use crate::id::Sha256;
use crate::note::VerifierKey;
use crate::timestamp::TsaTrust;
use serde::Deserialize;
use std::path::{Path, PathBuf};

/// A trust file, or a root certificate it names, is small: larger is not one.
pub const MAX_TRUST_BYTES: u64 = 1 << 20;

#[derive(Debug, thiserror::Error)]
pub enum TrustError {
    #[error("cannot read trust file {path}: {source}")]
    Read {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("trust file {path}: {message}")]
    Invalid { path: PathBuf, message: String },
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct TrustFile {
    #[serde(default)]
    station: Vec<StationEntry>,
    #[serde(default)]
    tsa: Vec<TsaEntry>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct StationEntry {
    key: Option<String>,
    fingerprint: Option<String>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct TsaEntry {
    root_file: Option<PathBuf>,
    root_pem: Option<String>,
    fingerprint: Option<String>,
}

/// A pinned station key.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum StationAnchor {
    Key(VerifierKey),
    /// SHA-256 of the raw public key.
    Fingerprint(Sha256),
}

/// What the reader trusts.
#[derive(Debug, Clone, Default)]
pub struct Trust {
    pub stations: Vec<StationAnchor>,
    pub tsa: TsaTrust,
    /// Where it came from; `None` when no trust file was given.
    pub source: Option<PathBuf>,
}

impl Trust {
    /// No anchors at all: checks run, but nothing is anchored.
    pub fn none() -> Self {
        Trust::default()
    }

    pub fn is_anchored(&self) -> bool {
        self.source.is_some()
    }

    pub fn load(path: &Path) -> Result<Self, TrustError> {
        let bytes =
            crate::beneath::read_local(path, MAX_TRUST_BYTES).map_err(|e| TrustError::Read {
                path: path.to_path_buf(),
                source: std::io::Error::other(e.to_string()),
            })?;
        let text = String::from_utf8(bytes).map_err(|_| TrustError::Invalid {
            path: path.to_path_buf(),
            message: "not UTF-8 text".into(),
        })?;
        Self::parse(&text, path)
    }

    /// Parse trust-file text; `path` locates relative `root_file`s and names errors.
    pub fn parse(text: &str, path: &Path) -> Result<Self, TrustError> {
        let invalid = |message: String| TrustError::Invalid {
            path: path.to_path_buf(),
            message,
        };
        let file: TrustFile = toml::from_str(text).map_err(|e| invalid(e.to_string()))?;
        let mut trust = Trust {
            source: Some(path.to_path_buf()),
            ..Trust::default()
        };
        for (i, s) in file.station.iter().enumerate() {
            let anchor = match (&s.key, &s.fingerprint) {
                (Some(k), None) => StationAnchor::Key(
                    VerifierKey::parse(k).map_err(|e| invalid(format!("station[{i}].key: {e}")))?,
                ),
                (None, Some(f)) => StationAnchor::Fingerprint(
                    f.trim()
                        .to_ascii_lowercase()
                        .parse()
                        .map_err(|e| invalid(format!("station[{i}].fingerprint: {e}")))?,
                ),
                _ => {
                    return Err(invalid(format!(
                        "station[{i}]: give exactly one of key or fingerprint"
                    )));
                }
            };
            trust.stations.push(anchor);
        }
        for (i, t) in file.tsa.iter().enumerate() {
            match (&t.root_file, &t.root_pem, &t.fingerprint) {
                (Some(f), None, None) => {
                    let full = path.parent().unwrap_or(Path::new(".")).join(f);
                    let pem = crate::beneath::read_local(&full, MAX_TRUST_BYTES).map_err(|e| {
                        invalid(format!("tsa[{i}].root_file {}: {e}", full.display()))
                    })?;
                    trust.tsa.roots.extend(
                        pem_certificates(&pem)
                            .map_err(|e| invalid(format!("tsa[{i}].root_file: {e}")))?,
                    );
                }
                (None, Some(pem), None) => trust.tsa.roots.extend(
                    pem_certificates(pem.as_bytes())
                        .map_err(|e| invalid(format!("tsa[{i}].root_pem: {e}")))?,
                ),
                (None, None, Some(fp)) => trust.tsa.fingerprints.push(
                    fp.trim()
                        .to_ascii_lowercase()
                        .parse()
                        .map_err(|e| invalid(format!("tsa[{i}].fingerprint: {e}")))?,
                ),
                _ => {
                    return Err(invalid(format!(
                        "tsa[{i}]: give exactly one of root_file, root_pem or fingerprint"
                    )));
                }
            }
        }
        Ok(trust)
    }

    /// Whether `key` is pinned (by key or by fingerprint).
    pub fn trusts_station_key(&self, key: &VerifierKey) -> bool {
        self.stations.iter().any(|a| match a {
            StationAnchor::Key(k) => k == key,
            StationAnchor::Fingerprint(f) => *f == key.fingerprint(),
        })
    }

    /// Pinned full keys with this note name.
    pub fn station_keys_named(&self, name: &str) -> Vec<VerifierKey> {
        self.stations
            .iter()
            .filter_map(|a| match a {
                StationAnchor::Key(k) if k.name == name => Some(k.clone()),
                _ => None,
            })
            .collect()
    }
}

/// The DER of every `CERTIFICATE` block in a PEM bundle.
pub fn pem_certificates(pem: &[u8]) -> Result<Vec<Vec<u8>>, String> {
    use base64::Engine as _;
    let text = std::str::from_utf8(pem).map_err(|_| "PEM is not text".to_string())?;
    let mut out = Vec::new();
    let mut rest = text;
    while let Some(start) = rest.find("-----BEGIN CERTIFICATE-----") {
        let after = &rest[start + "-----BEGIN CERTIFICATE-----".len()..];
        let end = after
            .find("-----END CERTIFICATE-----")
            .ok_or("unterminated CERTIFICATE block")?;
        let b64: String = after[..end]
            .chars()
            .filter(|c| !c.is_whitespace())
            .collect();
        let der = base64::engine::general_purpose::STANDARD
            .decode(b64)
            .map_err(|e| format!("bad base64 in CERTIFICATE block: {e}"))?;
        out.push(der);
        rest = &after[end..];
    }
    if out.is_empty() {
        return Err("no CERTIFICATE block found".into());
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_keys_and_fingerprints() {
        let vk = VerifierKey::new("evidock.station/dock-01", [5u8; 32]).unwrap();
        let text = format!(
            "[[station]]\nkey = \"{vk}\"\n[[station]]\nfingerprint = \"{}\"\n[[tsa]]\nfingerprint = \"{}\"\n",
            Sha256::digest(b"other"),
            Sha256::digest(b"root"),
        );
        let t = Trust::parse(&text, Path::new("/x/trust.toml")).unwrap();
        assert!(t.is_anchored());
        assert!(t.trusts_station_key(&vk));
        assert_eq!(t.station_keys_named("evidock.station/dock-01"), vec![vk]);
        assert_eq!(t.tsa.fingerprints, vec![Sha256::digest(b"root")]);
        let other = VerifierKey::new("evidock.station/dock-01", [6u8; 32]).unwrap();
        assert!(!t.trusts_station_key(&other));
    }

    #[test]
    fn rejects_ambiguous_or_unknown_entries() {
        for bad in [
            "[[station]]\n",
            "[[station]]\nkey = \"x\"\nfingerprint = \"y\"\n",
            "[[station]]\nkey = \"not a key\"\n",
            "[[tsa]]\n",
            "colour = 1\n",
            "[[tsa]]\nroot_pem = \"nothing\"\n",
        ] {
            assert!(Trust::parse(bad, Path::new("t.toml")).is_err(), "{bad}");
        }
    }
}
