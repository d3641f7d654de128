//! The station key: the Ed25519 key a station (or review workstation) signs its checkpoints with.
//!
//! Stored as one line in the C2SP signed-note signer format,
//! `PRIVATE+KEY+evidock.station/<station ID>+<key ID>+<base64(0x01 ‖ seed)>`, in a file of mode
//! 0600 created on first run. The key name binds the station ID: a key file is one identity.

use crate::fsutil::{self, FsError};
use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as B64;
use ed25519_dalek::Signer as _;
use evidock_verify::checkpoint;
use evidock_verify::id::StationId;
use evidock_verify::note::{ALG_ED25519, NoteSignature, SignedNote, VerifierKey};
use std::os::unix::fs::PermissionsExt as _;
use std::path::{Path, PathBuf};

#[derive(Debug, thiserror::Error)]
pub enum KeyError {
    #[error(transparent)]
    Fs(#[from] FsError),
    #[error("station key {path} is malformed: {reason}")]
    Malformed { path: PathBuf, reason: String },
    #[error(
        "station key {path} is readable by group or others (mode {mode:o}); run `chmod 600 {path}`"
    )]
    Permissions { path: PathBuf, mode: u32 },
    #[error(
        "station key {path} belongs to station {found}, but the configuration says {configured}"
    )]
    StationMismatch {
        path: PathBuf,
        found: String,
        configured: String,
    },
    #[error("no randomness for a new key: {0}")]
    Random(String),
}

/// Something that signs notes: the file key today, an HSM or KMS later.
pub trait NoteSigner: Send + Sync {
    /// The verifier key matching this signer.
    fn verifier(&self) -> &VerifierKey;
    /// Ed25519 signature of `message`.
    fn sign(&self, message: &[u8]) -> [u8; 64];

    /// Sign `text` as a note.
    fn sign_note(&self, text: &str) -> SignedNote {
        let v = self.verifier();
        SignedNote {
            text: text.to_string(),
            signatures: vec![NoteSignature {
                name: v.name.clone(),
                key_id: v.id,
                signature: self.sign(text.as_bytes()).to_vec(),
            }],
        }
    }
}

/// A station's identity and signing key.
pub struct StationKey {
    station: StationId,
    signing: ed25519_dalek::SigningKey,
    verifier: VerifierKey,
    path: PathBuf,
}

impl std::fmt::Debug for StationKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // Never print the secret.
        f.debug_struct("StationKey")
            .field("station", &self.station)
            .field("verifier", &self.verifier)
            .field("path", &self.path)
            .finish()
    }
}

impl NoteSigner for StationKey {
    fn verifier(&self) -> &VerifierKey {
        &self.verifier
    }
    fn sign(&self, message: &[u8]) -> [u8; 64] {
        self.signing.sign(message).to_bytes()
    }
}

impl StationKey {
    pub fn station(&self) -> &StationId {
        &self.station
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Load the key at `path`, or create one for `station` if there is none.
    ///
    /// `station` is the configured ID; `None` accepts whatever the existing key names (or, for
    /// a new key, uses `default_station`).
    pub fn load_or_create(
        path: &Path,
        station: Option<&StationId>,
        default_station: &StationId,
    ) -> Result<(Self, bool), KeyError> {
        if path.exists() {
            return Ok((Self::load_as(path, station)?, false));
        }
        let station = station.unwrap_or(default_station).clone();
        let mut seed = [0u8; 32];
        getrandom::fill(&mut seed).map_err(|e| KeyError::Random(e.to_string()))?;
        let key = Self::from_seed(station.clone(), seed, path)?;
        fsutil::create_dir_all(fsutil::parent_dir(path))?;
        match fsutil::write_once(path, key.secret_line().as_bytes(), 0o600) {
            Ok(_) => Ok((key, true)),
            // Another process of this station created it first (a dock and a command started
            // together on a new data directory): that key is the station's.
            Err(e) if e.source.kind() == std::io::ErrorKind::AlreadyExists => {
                Self::load_or_create(path, Some(&station), default_station)
            }
            Err(e) => Err(e.into()),
        }
    }

    /// Load an existing key of `station` (when one is configured): a key of another station
    /// is refused.
    pub fn load_as(path: &Path, station: Option<&StationId>) -> Result<Self, KeyError> {
        let key = Self::load(path)?;
        if let Some(want) = station
            && want != &key.station
        {
            return Err(KeyError::StationMismatch {
                path: path.to_path_buf(),
                found: key.station.to_string(),
                configured: want.to_string(),
            });
        }
        Ok(key)
    }

    /// Load an existing key; refuses a file others can read.
    pub fn load(path: &Path) -> Result<Self, KeyError> {
        let meta = std::fs::metadata(path).map_err(fsutil::err("stat", path))?;
        let mode = meta.permissions().mode() & 0o777;
        if mode & 0o077 != 0 {
            return Err(KeyError::Permissions {
                path: path.to_path_buf(),
                mode,
            });
        }
        let text = std::fs::read_to_string(path).map_err(fsutil::err("read", path))?;
        let malformed = |reason: &str| KeyError::Malformed {
            path: path.to_path_buf(),
            reason: reason.to_string(),
        };
        let rest = text
            .trim()
            .strip_prefix("PRIVATE+KEY+")
            .ok_or_else(|| malformed("does not start with PRIVATE+KEY+"))?;
        // Names never contain '+'; base64 may. Split from the left.
        let mut parts = rest.splitn(3, '+');
        let (Some(name), Some(_id), Some(b64)) = (parts.next(), parts.next(), parts.next()) else {
            return Err(malformed("expected PRIVATE+KEY+<name>+<id>+<key>"));
        };
        let station = checkpoint::station_of_origin(name)
            .ok_or_else(|| malformed("the key name is not evidock.station/<station ID>"))?;
        let raw = B64.decode(b64).map_err(|_| malformed("bad base64"))?;
        if raw.len() != 33 || raw[0] != ALG_ED25519 {
            return Err(malformed("not an Ed25519 key"));
        }
        let mut seed = [0u8; 32];
        seed.copy_from_slice(&raw[1..]);
        let key = Self::from_seed(station.clone(), seed, path)?;
        if key.secret_line().trim() != text.trim() {
            return Err(malformed("the key ID does not match the key"));
        }
        Ok(key)
    }

    /// Where a rotation stages the next key until the log has recorded the hand-over.
    pub fn staged_path(path: &Path) -> PathBuf {
        let mut name = path.file_name().unwrap_or_default().to_os_string();
        name.push(".new");
        path.with_file_name(name)
    }

    /// A new key for the same station, written (mode 0600) to [`StationKey::staged_path`]. An
    /// earlier staged key that never became current is replaced.
    pub fn stage_next(&self) -> Result<Self, KeyError> {
        let staged = Self::staged_path(&self.path);
        let mut seed = [0u8; 32];
        getrandom::fill(&mut seed).map_err(|e| KeyError::Random(e.to_string()))?;
        let key = Self::from_seed(self.station.clone(), seed, &staged)?;
        fsutil::write_atomic(&staged, key.secret_line().as_bytes(), 0o600)?;
        Ok(key)
    }

    /// Make a staged key the station's key: it replaces the old key file, whose secret is gone
    /// (a retired key signs nothing more; its public half stays in the log).
    pub fn install(mut self, path: &Path) -> Result<Self, KeyError> {
        let staged = self.path.clone();
        std::fs::rename(&staged, path).map_err(fsutil::err("rename", &staged))?;
        fsutil::sync_dir(fsutil::parent_dir(path))?;
        self.path = path.to_path_buf();
        Ok(self)
    }

    fn from_seed(station: StationId, seed: [u8; 32], path: &Path) -> Result<Self, KeyError> {
        let signing = ed25519_dalek::SigningKey::from_bytes(&seed);
        let verifier = VerifierKey::new(
            &checkpoint::origin(&station),
            signing.verifying_key().to_bytes(),
        )
        .map_err(|e| KeyError::Malformed {
            path: path.to_path_buf(),
            reason: e.to_string(),
        })?;
        Ok(StationKey {
            station,
            signing,
            verifier,
            path: path.to_path_buf(),
        })
    }

    fn secret_line(&self) -> String {
        let mut raw = vec![ALG_ED25519];
        raw.extend_from_slice(self.signing.as_bytes());
        format!(
            "PRIVATE+KEY+{}+{}+{}\n",
            self.verifier.name,
            hex::encode(self.verifier.id),
            B64.encode(raw)
        )
    }
}

/// A station ID from a host name: lowercased, anything outside `[a-z0-9.-]` replaced by `-`.
pub fn station_id_from_hostname(host: &str) -> Option<StationId> {
    let s: String = host
        .trim()
        .to_ascii_lowercase()
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == '.' || c == '-' {
                c
            } else {
                '-'
            }
        })
        .collect();
    let s = s.trim_matches(|c| c == '-' || c == '.');
    StationId::new(s).ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A dock and a command started together on a new data directory both create the key:
    /// one wins, and every process gets that key (the loser used to fail with "File exists").
    #[test]
    fn processes_creating_the_key_at_once_all_get_the_one_that_won() {
        for _ in 0..20 {
            let dir = tempfile::tempdir().unwrap();
            let path = dir.path().join("station.key");
            let st = StationId::new("dock-01").unwrap();
            let keys: Vec<_> = std::thread::scope(|s| {
                let runs: Vec<_> = (0..4)
                    .map(|_| s.spawn(|| StationKey::load_or_create(&path, None, &st)))
                    .collect();
                runs.into_iter().map(|r| r.join().unwrap()).collect()
            });
            let keys: Vec<_> = keys.into_iter().map(|k| k.unwrap()).collect();
            assert_eq!(keys.iter().filter(|(_, created)| *created).count(), 1);
            assert!(
                keys.iter()
                    .all(|(k, _)| k.verifier() == keys[0].0.verifier())
            );
        }
    }

    #[test]
    fn create_load_sign() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("keys/station.key");
        let st = StationId::new("dock-01").unwrap();
        let (k, created) = StationKey::load_or_create(&path, None, &st).unwrap();
        assert!(created);
        assert_eq!(
            std::fs::metadata(&path).unwrap().permissions().mode() & 0o777,
            0o600
        );
        let (k2, created) = StationKey::load_or_create(&path, Some(&st), &st).unwrap();
        assert!(!created);
        assert_eq!(k.verifier(), k2.verifier());
        let note = k.sign_note("evidock.station/dock-01\n0\nAAAA\n");
        assert!(note.verify(k2.verifier()));
        assert!(!format!("{k:?}").contains("PRIVATE"));

        let other = StationId::new("dock-02").unwrap();
        assert!(matches!(
            StationKey::load_or_create(&path, Some(&other), &other),
            Err(KeyError::StationMismatch { .. })
        ));
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o644)).unwrap();
        assert!(matches!(
            StationKey::load(&path),
            Err(KeyError::Permissions { .. })
        ));
    }

    #[test]
    fn hostnames() {
        assert_eq!(
            station_id_from_hostname("Dock_01.County").unwrap().as_str(),
            "dock-01.county"
        );
        assert!(station_id_from_hostname("__").is_none());
    }
}
