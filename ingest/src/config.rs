//! The station configuration (`evidock.toml`): data, parsed strictly, validated, passed explicitly.
//!
//! Every key has a default, so no file at all is the embedded default: a local store under the
//! data directory, a generated station key, no TSA ("local time only").

use crate::device::profile::{Profile, ProfileConfig};
use evidock_verify::digest::DigestSet;
use evidock_verify::event::UtcOffset;
use evidock_verify::id::StationId;
use serde::Deserialize;
use std::path::{Path, PathBuf};

/// A configuration error, naming the file and the key.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("cannot read config file {path}: {source}")]
    Read {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("config file {path}: {message}")]
    Parse { path: PathBuf, message: String },
    #[error("config file {path}: `{key}`: {message}")]
    Invalid {
        path: PathBuf,
        key: String,
        message: String,
    },
}

#[derive(Debug, Clone, Deserialize, Default)]
#[serde(deny_unknown_fields)]
pub struct Config {
    /// This station's ID (`[A-Za-z0-9._-]`, ≤ 64). Default: the host name.
    #[serde(default)]
    pub station_id: Option<String>,
    /// The station's UTC offset for local times (e.g. "+08:00"). Default: the system time zone.
    #[serde(default)]
    pub utc_offset: Option<String>,
    /// Which digests to compute besides SHA-256.
    #[serde(default)]
    pub digests: DigestSet,
    /// An RFC 3161 time-stamping authority. Without one, checkpoints carry station time only.
    #[serde(default)]
    pub tsa: Option<TsaSection>,
    /// The dock: where camera volumes appear and how many are acquired at once.
    #[serde(default)]
    pub dock: DockSection,
    /// Device profiles: the cameras this station accepts. Without a config file, simulated
    /// cameras only.
    #[serde(default)]
    pub camera: Vec<ProfileConfig>,
    /// Acquisition tuning.
    #[serde(default)]
    pub acquire: AcquireSection,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AcquireSection {
    /// Size of each copy buffer, KiB.
    #[serde(default = "default_buffer_kib")]
    pub buffer_kib: usize,
    /// Copy buffers per camera (bounds memory: buffers × buffer size).
    #[serde(default = "default_buffers")]
    pub buffers: usize,
    /// Make a copy resumable (fsync + journal) every this many MiB.
    #[serde(default = "default_sync_every")]
    pub sync_every_mib: u64,
    /// Stop a camera rather than leave less than this free on the spool disk, MiB.
    #[serde(default = "default_min_free")]
    pub min_free_mib: u64,
}

fn default_buffer_kib() -> usize {
    1024
}
fn default_buffers() -> usize {
    4
}
fn default_sync_every() -> u64 {
    64
}
fn default_min_free() -> u64 {
    256
}

impl Default for AcquireSection {
    fn default() -> Self {
        AcquireSection {
            buffer_kib: default_buffer_kib(),
            buffers: default_buffers(),
            sync_every_mib: default_sync_every(),
            min_free_mib: default_min_free(),
        }
    }
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DockSection {
    /// Where camera volumes appear (mounted by the system or the USB source). Default:
    /// `<data dir>/dock`.
    #[serde(default)]
    pub mount_root: Option<PathBuf>,
    /// Dock slots (cameras that can be docked at once).
    #[serde(default = "default_slots")]
    pub slots: usize,
    /// Cameras acquired at the same time. Default: the number of slots.
    #[serde(default)]
    pub max_cameras: Option<usize>,
    /// Detect cameras on USB (libusb hot-plug) besides the watch folder.
    #[serde(default = "default_true")]
    pub usb: bool,
    /// Let the system's automounter mount USB cards (they must be mounted read-only) instead
    /// of evidock mounting them read-only itself.
    #[serde(default)]
    pub automount: bool,
}

fn default_true() -> bool {
    true
}

fn default_slots() -> usize {
    8
}

impl Default for DockSection {
    fn default() -> Self {
        DockSection {
            mount_root: None,
            slots: default_slots(),
            max_cameras: None,
            usb: true,
            automount: false,
        }
    }
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TsaSection {
    /// The TSA's URL (http or https).
    pub url: String,
    /// PEM files of the TSA root certificates to pin. Relative paths are from the config file.
    #[serde(default)]
    pub roots: Vec<PathBuf>,
    /// The TSA policy OID to request and require.
    #[serde(default)]
    pub policy: Option<String>,
    /// Seconds to wait for an answer.
    #[serde(default = "default_tsa_timeout")]
    pub timeout_secs: u64,
}

fn default_tsa_timeout() -> u64 {
    10
}

/// A validated configuration.
#[derive(Debug, Clone)]
pub struct Settings {
    pub source: Option<PathBuf>,
    pub station_id: Option<StationId>,
    pub utc_offset: Option<UtcOffset>,
    pub digests: DigestSet,
    pub tsa: Option<TsaSettings>,
    pub dock: DockSettings,
    pub profiles: Vec<Profile>,
    pub tuning: crate::acquire::session::Tuning,
}

#[derive(Debug, Clone)]
pub struct DockSettings {
    pub mount_root: Option<PathBuf>,
    pub slots: usize,
    pub max_cameras: usize,
    pub usb: bool,
    pub automount: bool,
}

#[derive(Debug, Clone)]
pub struct TsaSettings {
    pub url: String,
    pub roots: Vec<PathBuf>,
    pub policy: Option<String>,
    pub timeout: std::time::Duration,
}

impl Settings {
    /// The embedded default (no config file): simulated cameras only, no TSA.
    pub fn embedded() -> Result<Self, ConfigError> {
        let mut s = Config::default().validate(None)?;
        let sim = Profile::embedded_sim().map_err(|(key, message)| ConfigError::Invalid {
            path: PathBuf::new(),
            key,
            message,
        })?;
        s.profiles.push(sim);
        Ok(s)
    }

    /// Load and validate `path`.
    pub fn load(path: &Path) -> Result<Self, ConfigError> {
        let text = std::fs::read_to_string(path).map_err(|source| ConfigError::Read {
            path: path.to_path_buf(),
            source,
        })?;
        Self::parse(&text, path)
    }

    pub fn parse(text: &str, path: &Path) -> Result<Self, ConfigError> {
        let cfg: Config = toml::from_str(text).map_err(|e| ConfigError::Parse {
            path: path.to_path_buf(),
            message: e.to_string(),
        })?;
        cfg.validate(Some(path))
    }
}

impl Config {
    fn validate(self, path: Option<&Path>) -> Result<Settings, ConfigError> {
        let p = path.map(Path::to_path_buf).unwrap_or_default();
        let invalid = |key: &str, message: String| ConfigError::Invalid {
            path: p.clone(),
            key: key.to_string(),
            message,
        };
        let station_id = self
            .station_id
            .map(|s| StationId::new(s).map_err(|e| invalid("station_id", e.to_string())))
            .transpose()?;
        let utc_offset = self
            .utc_offset
            .map(|s| s.parse::<UtcOffset>().map_err(|e| invalid("utc_offset", e)))
            .transpose()?;
        let base = path.and_then(Path::parent).unwrap_or(Path::new("."));
        let tsa = match self.tsa {
            None => None,
            Some(t) => {
                if !(t.url.starts_with("http://") || t.url.starts_with("https://")) {
                    return Err(invalid(
                        "tsa.url",
                        format!("{:?} is not an http(s) URL", t.url),
                    ));
                }
                if t.timeout_secs == 0 || t.timeout_secs > 600 {
                    return Err(invalid("tsa.timeout_secs", "must be 1..=600".into()));
                }
                if let Some(policy) = &t.policy {
                    let ok = policy.split('.').count() >= 2
                        && policy
                            .split('.')
                            .all(|arc| !arc.is_empty() && arc.bytes().all(|b| b.is_ascii_digit()));
                    if !ok {
                        return Err(invalid(
                            "tsa.policy",
                            format!("{policy:?} is not a dotted OID"),
                        ));
                    }
                }
                let roots: Vec<PathBuf> = t
                    .roots
                    .iter()
                    .map(|r| {
                        if r.is_absolute() {
                            r.clone()
                        } else {
                            base.join(r)
                        }
                    })
                    .collect();
                for (i, r) in roots.iter().enumerate() {
                    if !r.is_file() {
                        return Err(invalid(
                            &format!("tsa.roots[{i}]"),
                            format!("{} is not a readable file", r.display()),
                        ));
                    }
                }
                Some(TsaSettings {
                    url: t.url,
                    roots,
                    policy: t.policy,
                    timeout: std::time::Duration::from_secs(t.timeout_secs),
                })
            }
        };
        if self.dock.slots == 0 || self.dock.slots > 64 {
            return Err(invalid("dock.slots", "must be 1..=64".into()));
        }
        let max_cameras = self.dock.max_cameras.unwrap_or(self.dock.slots);
        if max_cameras == 0 || max_cameras > 64 {
            return Err(invalid("dock.max_cameras", "must be 1..=64".into()));
        }
        let mount_root = self
            .dock
            .mount_root
            .map(|r| if r.is_absolute() { r } else { base.join(r) });
        let a = &self.acquire;
        if !(4..=65536).contains(&a.buffer_kib) {
            return Err(invalid("acquire.buffer_kib", "must be 4..=65536".into()));
        }
        if !(2..=64).contains(&a.buffers) {
            return Err(invalid("acquire.buffers", "must be 2..=64".into()));
        }
        if a.sync_every_mib == 0 {
            return Err(invalid(
                "acquire.sync_every_mib",
                "must be at least 1".into(),
            ));
        }
        let tuning = crate::acquire::session::Tuning {
            buffer_size: a.buffer_kib * 1024,
            buffers: a.buffers,
            sync_every: a.sync_every_mib << 20,
            min_free_bytes: a.min_free_mib << 20,
        };
        let mut profiles = Vec::new();
        for (i, c) in self.camera.into_iter().enumerate() {
            let key = format!("camera[{i}]");
            profiles.push(c.validate(&key).map_err(|(k, m)| invalid(&k, m))?);
        }
        Ok(Settings {
            source: path.map(Path::to_path_buf),
            station_id,
            utc_offset,
            digests: self.digests,
            tsa,
            dock: DockSettings {
                mount_root,
                slots: self.dock.slots,
                max_cameras,
                usb: self.dock.usb,
                automount: self.dock.automount,
            },
            profiles,
            tuning,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn embedded_default_is_valid() {
        let s = Settings::embedded().unwrap();
        assert_eq!(s.profiles.len(), 1);
        assert_eq!(s.dock.max_cameras, 8);
        assert!(s.tsa.is_none());
        assert_eq!(s.digests, DigestSet::SHA256_ONLY);
    }

    #[test]
    fn errors_name_the_key() {
        let p = Path::new("/etc/evidock.toml");
        let e = Settings::parse("station_id = \"a/b\"\n", p).unwrap_err();
        assert!(e.to_string().contains("`station_id`"), "{e}");
        let e = Settings::parse("utc_offset = \"8\"\n", p).unwrap_err();
        assert!(e.to_string().contains("`utc_offset`"), "{e}");
        let e = Settings::parse("[tsa]\nurl = \"ftp://x\"\n", p).unwrap_err();
        assert!(e.to_string().contains("`tsa.url`"), "{e}");
        let e = Settings::parse(
            "[[camera]]\nname = \"x\"\ndriver = \"mass-storage\"\npassword = \"1\"\n",
            p,
        )
        .unwrap_err();
        assert!(e.to_string().contains("`camera[0].password`"), "{e}");
        let e = Settings::parse("[dock]\nslots = 0\n", p).unwrap_err();
        assert!(e.to_string().contains("`dock.slots`"), "{e}");
        let e = Settings::parse("colour = 1\n", p).unwrap_err();
        assert!(e.to_string().contains("colour"), "{e}");
        let ok = Settings::parse(
            "station_id = \"dock-01\"\nutc_offset = \"+08:00\"\n[digests]\nsm3 = true\n",
            p,
        )
        .unwrap();
        assert!(ok.digests.sm3 && !ok.digests.md5);
    }
}
