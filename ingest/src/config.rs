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
    pub status: crate::status::StatusSection,
    /// Alerts for the admin, and the command that carries them.
    #[serde(default)]
    pub alerts: crate::status::AlertsSection,
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
    pub status: crate::status::StatusSettings,
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
                        format!(
                            "{:?} is not an http(s) URL",
                            evidock_store::redact::url(&t.url)
                        ),
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
                    // Read now, not at the first time-stamp: a root that is not PEM is a
                    // configuration to fix, and `config check` must say so.
                    let key = format!("tsa.roots[{i}]");
                    let pem = std::fs::read(r).map_err(|e| {
                        invalid(&key, format!("{} is not a readable file: {e}", r.display()))
                    })?;
                    match evidock_verify::trust::pem_certificates(&pem) {
                        Ok(c) if !c.is_empty() => {}
                        Ok(_) => {
                            return Err(invalid(
                                &key,
                                format!("{} holds no PEM certificate", r.display()),
                            ));
                        }
                        Err(e) => {
                            return Err(invalid(
                                &key,
                                format!("{} is not a PEM certificate: {e}", r.display()),
                            ));
                        }
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
        let store = match self.store {
            None => None,
            Some(st) => Some(validate_store(st, base, &invalid)?),
        };
        let mut profiles = Vec::new();
        for (i, c) in self.camera.into_iter().enumerate() {
            let key = format!("camera[{i}]");
            profiles.push(c.validate(&key).map_err(|(k, m)| invalid(&k, m))?);
        }
        let transcode = self
            .transcode
            .validate()
            .map_err(|(key, message)| invalid(key, message))?;
        let cases = self
            .cases
            .validate()
            .map_err(|(key, message)| invalid(&key, message))?;
        let retention = self
            .retention
            .validate()
            .map_err(|(key, message)| invalid(&key, message))?;
        let status = self
            .status
            .validate(self.alerts, base)
            .map_err(|(key, message)| invalid(&key, message))?;
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
            transcode,
            store,
            cases,
            retention,
            status,
        })
    }
}

fn validate_store(
    st: StoreSection,
    base: &Path,
    invalid: &dyn Fn(&str, String) -> ConfigError,
) -> Result<StoreSettings, ConfigError> {
    if !["file://", "s3://", "az://", "azure://", "gs://"]
        .iter()
        .any(|p| st.url.starts_with(p))
    {
        return Err(invalid(
            "store.url",
            format!(
                "{:?}: use file://, s3://, az:// or gs://",
                evidock_store::redact::url(&st.url)
            ),
        ));
    }
    if st.part_size_mib < 5 || st.part_size_mib > 5120 {
        return Err(invalid(
            "store.part_size_mib",
            "must be 5..=5120 (S3's limits)".into(),
        ));
    }
    if st.parallel == 0 || st.parallel > 64 {
        return Err(invalid("store.parallel", "must be 1..=64".into()));
    }
    let mut windows = Vec::new();
    for (i, w) in st.upload_windows.iter().enumerate() {
        windows.push(
            crate::upload::parse_window(w)
                .map_err(|m| invalid(&format!("store.upload_windows[{i}]"), m))?,
        );
    }
    let retention = match st.retention {
        None => None,
        Some(r) => {
            if !matches!(r.mode.as_str(), "compliance" | "governance") {
                return Err(invalid(
                    "store.retention.mode",
                    format!("{:?}: compliance or governance", r.mode),
                ));
            }
            if r.days == 0 {
                return Err(invalid("store.retention.days", "must be at least 1".into()));
            }
            Some((r.mode, r.days))
        }
    };
    let mut s = evidock_store::objects::StoreSettings {
        url: st.url,
        endpoint: st.endpoint,
        region: st.region,
        allow_http: st.allow_http,
        path_style: st.path_style,
        max_retries: 3,
        ..Default::default()
    };
    if let Some(f) = st.credentials_file {
        let f = if f.is_absolute() { f } else { base.join(f) };
        use std::os::unix::fs::PermissionsExt as _;
        let meta = std::fs::metadata(&f)
            .map_err(|e| invalid("store.credentials_file", format!("{}: {e}", f.display())))?;
        if meta.permissions().mode() & 0o077 != 0 {
            return Err(invalid(
                "store.credentials_file",
                format!("{} is readable by others: chmod 600 it", f.display()),
            ));
        }
        let text = std::fs::read_to_string(&f)
            .map_err(|e| invalid("store.credentials_file", format!("{}: {e}", f.display())))?;
        let c: Credentials = toml::from_str(&text).map_err(|e| {
            // Never echo the file's content: it holds secrets.
            invalid(
                "store.credentials_file",
                format!(
                    "{} is not access_key_id/secret_access_key TOML: {}",
                    f.display(),
                    e.message()
                ),
            )
        })?;
        s.access_key_id = Some(c.access_key_id);
        s.secret_access_key = Some(c.secret_access_key);
        s.session_token = c.session_token;
    }
    Ok(StoreSettings {
        store: s,
        upload: crate::upload::UploadSettings {
            part_size: st.part_size_mib << 20,
            parallel: st.parallel,
            bandwidth: (st.bandwidth_bytes_per_sec > 0).then_some(st.bandwidth_bytes_per_sec),
            windows,
            retention_days: retention.as_ref().map(|(_, d)| *d),
        },
        retention,
    })
}

impl Settings {
    /// Why the evidence store cannot be written with this configuration and environment, if it
    /// cannot: an S3 store without credentials refuses every upload. Said by `config check` and
    /// before an upload starts, not at every command (`station init` runs without the service's
    /// environment).
    pub fn store_unusable(&self) -> Option<ConfigError> {
        let st = self.store.as_ref()?;
        (st.store.url.starts_with("s3://")
            && st.store.access_key_id.is_none()
            && std::env::var_os("AWS_ACCESS_KEY_ID").is_none())
        .then(|| ConfigError::Invalid {
            path: self.source.clone().unwrap_or_default(),
            key: "store.credentials_file".into(),
            message: "no credentials for the S3 store: give credentials_file (a 0600 TOML file with access_key_id and secret_access_key), or AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY in the service's environment".into(),
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

    /// Every key of the configuration is in docs/config.md, every key there exists, and the
    /// example configuration is valid.
    #[test]
    fn config_doc_lists_every_key() {
        fn paths(
            prefix: &str,
            v: &serde_json::Value,
            out: &mut std::collections::BTreeSet<String>,
        ) {
            match v {
                serde_json::Value::Object(m) if prefix != "cases.columns" => {
                    for (k, v) in m {
                        let p = if prefix.is_empty() {
                            k.clone()
                        } else {
                            format!("{prefix}.{k}")
                        };
                        paths(&p, v, out);
                    }
                }
                serde_json::Value::Array(a) if a.iter().all(|x| x.is_object()) && !a.is_empty() => {
                    for x in a {
                        paths(prefix, x, out);
                    }
                }
                _ => {
                    out.insert(prefix.to_string());
                }
            }
        }
        let example = include_str!("../../docs/evidock.example.toml");
        let cfg: Config = toml::from_str(example).unwrap();
        let mut keys = std::collections::BTreeSet::new();
        paths("", &serde_json::to_value(&cfg).unwrap(), &mut keys);
        let doc = include_str!("../../docs/config.md");
        let mut documented = std::collections::BTreeSet::new();
        for line in doc.lines().filter(|l| l.starts_with("| `")) {
            let first = line.split('|').nth(1).unwrap_or_default();
            for k in first.split('`').skip(1).step_by(2) {
                documented.insert(k.to_string());
            }
        }
        let missing: Vec<_> = keys.difference(&documented).collect();
        let extra: Vec<_> = documented.difference(&keys).collect();
        assert!(missing.is_empty(), "not in docs/config.md: {missing:?}");
        assert!(
            extra.is_empty(),
            "docs/config.md lists keys that do not exist: {extra:?}"
        );
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
