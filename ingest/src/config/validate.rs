//! From what the file says to what the station runs with: every key checked, paths made
//! absolute, the store's URL and credentials resolved, each refusal naming its key.

use super::*;

impl Config {
    pub(super) fn validate(self, path: Option<&Path>) -> Result<Settings, ConfigError> {
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
                    let pem = fs_err::read(r)
                        .map_err(|e| invalid(&key, format!("not a readable file: {e}")))?;
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
        if !(1..=1024).contains(&a.group) {
            return Err(invalid("acquire.group", "must be 1..=1024".into()));
        }
        if a.direct_write && !a.direct_io {
            return Err(invalid(
                "acquire.direct_write",
                "needs acquire.direct_io = true".into(),
            ));
        }
        if a.background_wait_s > 3600 {
            return Err(invalid(
                "acquire.background_wait_s",
                "must be 0..=3600 (an hour)".into(),
            ));
        }
        let tuning = crate::acquire::session::Tuning {
            buffer_size: a.buffer_kib * 1024,
            buffers: a.buffers,
            sync_every: a.sync_every_mib << 20,
            min_free_bytes: a.min_free_mib << 20,
            direct_io: a.direct_io,
            direct_write: a.direct_write,
            group: a.group,
            background_wait: std::time::Duration::from_secs(a.background_wait_s),
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
        let meta =
            fs_err::metadata(&f).map_err(|e| invalid("store.credentials_file", e.to_string()))?;
        if meta.permissions().mode() & 0o077 != 0 {
            return Err(invalid(
                "store.credentials_file",
                format!("{} is readable by others: chmod 600 it", f.display()),
            ));
        }
        let text = fs_err::read_to_string(&f)
            .map_err(|e| invalid("store.credentials_file", e.to_string()))?;
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
