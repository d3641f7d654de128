//! The station configuration (`evidock.toml`): data, parsed strictly, validated, passed explicitly.
//!
//! Every key has a default, so no file at all is the embedded default: a local store under the
//! data directory, a generated station key, no TSA ("local time only").

mod status;
mod validate;

pub use status::{AlertsSection, StatusSection, StatusSettings};

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

#[derive(Debug, Clone, serde::Serialize, Deserialize, Default)]
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
    /// The evidence store. Default: a local store in `<data dir>/store`.
    #[serde(default)]
    pub store: Option<StoreSection>,
    /// Playback copies and thumbnails.
    #[serde(default)]
    pub transcode: crate::transcode::TranscodeSection,
    /// The case register: how exports are read, how recordings are matched to cases.
    #[serde(default)]
    pub cases: crate::cases::settings::CasesSection,
    /// Evidence categories and how long each keeps evidence.
    #[serde(default)]
    pub retention: crate::cases::settings::RetentionConfig,
    /// The dock's status page, JSON API and metrics.
    #[serde(default)]
    pub status: StatusSection,
    /// Alerts for the admin, and the command that carries them.
    #[serde(default)]
    pub alerts: AlertsSection,
}

#[derive(Debug, Clone, serde::Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct StoreSection {
    /// `file:///path`, `s3://bucket/prefix`, `az://container/prefix`, `gs://bucket/prefix`.
    pub url: String,
    /// S3-compatible endpoint (Ceph RGW, MinIO, Alibaba OSS), e.g. `http://10.0.0.5:7480`.
    #[serde(default)]
    pub endpoint: Option<String>,
    #[serde(default)]
    pub region: Option<String>,
    /// Allow plain http to the endpoint (on a closed network).
    #[serde(default)]
    pub allow_http: bool,
    /// Path-style addressing (`endpoint/bucket/key`), as most S3-compatible servers want.
    #[serde(default = "default_true")]
    pub path_style: bool,
    /// A TOML file with `access_key_id` and `secret_access_key` (and optionally
    /// `session_token`), readable by this service only (mode 0600). Without it, credentials come
    /// from the environment (AWS_ACCESS_KEY_ID, …).
    #[serde(default)]
    pub credentials_file: Option<PathBuf>,
    /// Part size for multipart uploads, MiB (at least 5). Each upload in flight holds one part
    /// in memory: 8 MiB × 4 uploads keeps the uploader near 128 MiB at full speed.
    #[serde(default = "default_part")]
    pub part_size_mib: u64,
    /// Uploads at the same time.
    #[serde(default = "default_parallel")]
    pub parallel: usize,
    /// Cap on upload bandwidth, bytes per second (0 = none).
    #[serde(default)]
    pub bandwidth_bytes_per_sec: u64,
    /// Local-time windows when uploads run, e.g. ["22:00-06:00"] (empty = always).
    #[serde(default)]
    pub upload_windows: Vec<String>,
    /// Default retention of originals (S3 Object Lock), set by `evidock store init`.
    #[serde(default)]
    pub retention: Option<RetentionSection>,
}

#[derive(Debug, Clone, serde::Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RetentionSection {
    /// `compliance` (nobody can shorten or delete) or `governance` (privileged users can).
    pub mode: String,
    pub days: u32,
}

fn default_part() -> u64 {
    8
}
fn default_parallel() -> usize {
    4
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct Credentials {
    access_key_id: String,
    secret_access_key: String,
    #[serde(default)]
    session_token: Option<String>,
}

#[derive(Debug, Clone, serde::Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AcquireSection {
    /// Size of each copy buffer, KiB.
    #[serde(default = "default_buffer_kib")]
    pub buffer_kib: usize,
    /// Copy buffers per camera, as many again for the re-read check (bounds memory: 2 × buffers ×
    /// buffer size).
    #[serde(default = "default_buffers")]
    pub buffers: usize,
    /// Make a copy resumable (fsync + journal) every this many MiB.
    #[serde(default = "default_sync_every")]
    pub sync_every_mib: u64,
    /// Stop a camera rather than leave less than this free on the spool disk, MiB.
    #[serde(default = "default_min_free")]
    pub min_free_mib: u64,
    /// Re-read spool copies with `O_DIRECT`, bypassing the page cache (where the filesystem
    /// refuses it, buffered I/O is used whatever this says).
    #[serde(default = "default_direct_io")]
    pub direct_io: bool,
    /// Write spool copies with `O_DIRECT` too (needs `direct_io`); by default they are written
    /// through the page cache and evicted after each sync.
    #[serde(default)]
    pub direct_write: bool,
    /// Files of a session whose journal rows and custody events share one commit, at most.
    #[serde(default = "default_group")]
    pub group: usize,
    /// While cameras are copied, upload and transcode start nothing new for at most this many
    /// seconds of uninterrupted copying (0: they run alongside).
    #[serde(default = "default_background_wait")]
    pub background_wait_s: u64,
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
fn default_direct_io() -> bool {
    true
}
fn default_group() -> usize {
    32
}
fn default_background_wait() -> u64 {
    300
}

impl Default for AcquireSection {
    fn default() -> Self {
        AcquireSection {
            buffer_kib: default_buffer_kib(),
            buffers: default_buffers(),
            sync_every_mib: default_sync_every(),
            min_free_mib: default_min_free(),
            direct_io: default_direct_io(),
            direct_write: false,
            group: default_group(),
            background_wait_s: default_background_wait(),
        }
    }
}

#[derive(Debug, Clone, serde::Serialize, Deserialize)]
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

#[derive(Debug, Clone, serde::Serialize, Deserialize)]
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
    /// `None`: the local store in the data directory.
    pub store: Option<StoreSettings>,
    pub transcode: crate::transcode::TranscodeSettings,
    pub cases: crate::cases::settings::CaseSettings,
    pub retention: crate::cases::settings::RetentionSettings,
    pub status: StatusSettings,
}

/// The validated store configuration.
#[derive(Debug, Clone)]
pub struct StoreSettings {
    pub store: evidock_store::objects::StoreSettings,
    pub upload: crate::upload::UploadSettings,
    /// (mode, days) of the default retention.
    pub retention: Option<(String, u32)>,
}

#[derive(Debug, Clone)]
pub struct DockSettings {
    pub mount_root: Option<PathBuf>,
    pub slots: usize,
    pub max_cameras: usize,
    pub usb: bool,
    pub automount: bool,
}

/// Its `Debug` and [`TsaSettings::url_for_display`] show the URL without credentials.
#[derive(Clone)]
pub struct TsaSettings {
    /// As configured, credentials and all: only for the TSA client itself.
    pub url: String,
    pub roots: Vec<PathBuf>,
    pub policy: Option<String>,
    pub timeout: std::time::Duration,
}

impl TsaSettings {
    /// The URL to show anywhere (output, the status API, alerts, logs): no user, password or
    /// query ([`evidock_store::redact::url`]).
    pub fn url_for_display(&self) -> String {
        evidock_store::redact::url(&self.url)
    }
}

impl std::fmt::Debug for TsaSettings {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TsaSettings")
            .field("url", &self.url_for_display())
            .field("roots", &self.roots)
            .field("policy", &self.policy)
            .field("timeout", &self.timeout)
            .finish()
    }
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
        let text = fs_err::read_to_string(path).map_err(|source| ConfigError::Read {
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

#[cfg(test)]
mod tests;
