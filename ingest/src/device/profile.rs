//! Device profiles: which cameras this station accepts and how to talk to them.
//!
//! ```toml
//! [[camera]]
//! name = "ZFY 执法记录仪"
//! vendor = "Example"
//! driver = "zfy-usb"              # zfy-sim | mass-storage | zfy-usb
//! usb_vid = 0x1d6b
//! usb_pid = 0x0104
//! password = "000000"
//! allow = ["ZFY0001", "ZFY0002"]   # device serials; "*" accepts any camera of this profile
//! file_pattern = '^(?P<serial>[A-Za-z0-9]+)_(?P<officer>[0-9]+)_(?P<time>[0-9]{14})'
//! time_format = "%Y%m%d%H%M%S"
//! wipe = "never"                   # never | after-upload | after-upload-including-important
//! ```

use chrono::NaiveDateTime;
use regex::bytes::Regex;
use serde::Deserialize;

/// Which driver a profile uses.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum DriverKind {
    /// A simulated ZFY camera (tests, demo).
    ZfySim,
    /// A camera that mounts directly as a USB disk.
    MassStorage,
    /// A ZFY camera reached over its USB vendor interface.
    ZfyUsb,
}

impl DriverKind {
    pub fn name(self) -> &'static str {
        match self {
            DriverKind::ZfySim => "zfy-sim",
            DriverKind::MassStorage => "mass-storage",
            DriverKind::ZfyUsb => "zfy-usb",
        }
    }
}

/// When files may be deleted from the camera (always only after a verified upload).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, serde::Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum WipePolicy {
    #[default]
    Never,
    AfterUpload,
    AfterUploadIncludingImportant,
}

/// The default file-name pattern: `<serial>_<警号>_<YYYYMMDDhhmmss>[_<n>][_IMP|_LOCK].<ext>`.
pub const DEFAULT_PATTERN: &str = r"^(?P<serial>[A-Za-z0-9]+)_(?P<officer>[0-9A-Za-z]+)_(?P<time>[0-9]{14})(?:_[0-9]+)?(?P<important>_(?:IMP|LOCK))?\.[A-Za-z0-9]+$";

#[derive(Debug, Clone, serde::Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ProfileConfig {
    pub name: String,
    #[serde(default)]
    pub vendor: Option<String>,
    pub driver: DriverKind,
    #[serde(default)]
    pub usb_vid: Option<u16>,
    #[serde(default)]
    pub usb_pid: Option<u16>,
    #[serde(default = "default_password")]
    pub password: String,
    #[serde(default)]
    pub allow: Vec<String>,
    #[serde(default)]
    pub file_pattern: Option<String>,
    #[serde(default = "default_time_format")]
    pub time_format: String,
    #[serde(default)]
    pub wipe: WipePolicy,
    /// For mass-storage cameras: the identity file on the card.
    #[serde(default = "default_id_file")]
    pub id_file: String,
}

fn default_password() -> String {
    "000000".into()
}
fn default_time_format() -> String {
    "%Y%m%d%H%M%S".into()
}
fn default_id_file() -> String {
    "ZFYINFO.TXT".into()
}

/// A validated profile.
#[derive(Debug, Clone)]
pub struct Profile {
    pub name: String,
    pub vendor: Option<String>,
    pub driver: DriverKind,
    pub usb: Option<(u16, u16)>,
    pub password: String,
    pub allow_any: bool,
    pub allow: Vec<String>,
    pub pattern: Regex,
    pub time_format: String,
    pub wipe: WipePolicy,
    pub id_file: String,
}

/// Fields a profile's pattern found in a file name.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct NameFields {
    pub serial: Option<String>,
    pub officer: Option<String>,
    /// The camera's local time when recording started.
    pub time: Option<NaiveDateTime>,
    pub important: bool,
}

impl ProfileConfig {
    /// Validate; `key` is the config key for errors (e.g. `camera[0]`).
    pub fn validate(self, key: &str) -> Result<Profile, (String, String)> {
        let err = |k: &str, m: String| (format!("{key}.{k}"), m);
        if self.name.trim().is_empty() {
            return Err(err("name", "must not be empty".into()));
        }
        if self.password.chars().count() != 6 {
            return Err(err(
                "password",
                "the admin password has six characters".into(),
            ));
        }
        let usb = match (self.usb_vid, self.usb_pid) {
            (Some(v), Some(p)) => Some((v, p)),
            (None, None) => None,
            _ => {
                return Err(err(
                    "usb_vid",
                    "give both usb_vid and usb_pid, or neither".into(),
                ));
            }
        };
        if self.driver == DriverKind::ZfyUsb && usb.is_none() {
            return Err(err(
                "usb_vid",
                "the zfy-usb driver needs usb_vid and usb_pid".into(),
            ));
        }
        let src = self.file_pattern.as_deref().unwrap_or(DEFAULT_PATTERN);
        let pattern = Regex::new(src).map_err(|e| err("file_pattern", e.to_string()))?;
        for name in pattern.capture_names().flatten() {
            if !matches!(name, "serial" | "officer" | "time" | "important") {
                return Err(err(
                    "file_pattern",
                    format!("unknown group {name:?}: use serial, officer, time, important"),
                ));
            }
        }
        // The time format must round-trip a sample time.
        let sample = chrono::NaiveDate::from_ymd_opt(2026, 11, 28)
            .and_then(|d| d.and_hms_opt(8, 30, 15))
            .ok_or_else(|| err("time_format", "internal sample".into()))?;
        let shown = sample.format(&self.time_format).to_string();
        if NaiveDateTime::parse_from_str(&shown, &self.time_format).ok() != Some(sample) {
            return Err(err(
                "time_format",
                format!(
                    "{:?} must give date and time to the second",
                    self.time_format
                ),
            ));
        }
        if self.id_file.contains('/') || self.id_file.is_empty() {
            return Err(err("id_file", "a file name in the card's root".into()));
        }
        let allow_any = self.allow.iter().any(|a| a == "*");
        Ok(Profile {
            name: self.name,
            vendor: self.vendor,
            driver: self.driver,
            usb,
            password: self.password,
            allow_any,
            allow: self.allow.into_iter().filter(|a| a != "*").collect(),
            pattern,
            time_format: self.time_format,
            wipe: self.wipe,
            id_file: self.id_file,
        })
    }
}

impl Profile {
    /// The profile of the embedded default: simulated cameras, any serial.
    pub fn embedded_sim() -> Result<Self, (String, String)> {
        ProfileConfig {
            name: "simulated ZFY camera".into(),
            vendor: Some("evidock simulator".into()),
            driver: DriverKind::ZfySim,
            usb_vid: None,
            usb_pid: None,
            password: default_password(),
            allow: vec!["*".into()],
            file_pattern: None,
            time_format: default_time_format(),
            wipe: WipePolicy::Never,
            id_file: default_id_file(),
        }
        .validate("camera[embedded]")
    }

    pub fn allows(&self, serial: &str) -> bool {
        self.allow_any || self.allow.iter().any(|a| a == serial)
    }

    /// Parse a file name (the last path component, raw bytes).
    pub fn parse_name(&self, name: &[u8]) -> NameFields {
        let Some(c) = self.pattern.captures(name) else {
            return NameFields::default();
        };
        let text = |g: &str| {
            c.name(g)
                .and_then(|m| std::str::from_utf8(m.as_bytes()).ok())
                .map(str::to_string)
        };
        NameFields {
            serial: text("serial"),
            officer: text("officer"),
            time: text("time")
                .and_then(|t| NaiveDateTime::parse_from_str(&t, &self.time_format).ok()),
            important: c
                .name("important")
                .is_some_and(|m| !m.as_bytes().is_empty()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn default_pattern_reads_zfy_names() {
        let p = Profile::embedded_sim().unwrap();
        let f = p.parse_name(b"ZFY0001_350201_20261128083015_0003_IMP.MP4");
        assert_eq!(f.serial.as_deref(), Some("ZFY0001"));
        assert_eq!(f.officer.as_deref(), Some("350201"));
        assert_eq!(f.time.unwrap().to_string(), "2026-11-28 08:30:15");
        assert!(f.important);
        let g = p.parse_name(b"ZFY0001_350201_20261128083015.JPG");
        assert!(!g.important);
        assert_eq!(p.parse_name(b"\xd6\xb4.MP4"), NameFields::default());
    }

    #[test]
    fn validation_names_the_key() {
        let base = || ProfileConfig {
            name: "x".into(),
            vendor: None,
            driver: DriverKind::MassStorage,
            usb_vid: None,
            usb_pid: None,
            password: "000000".into(),
            allow: vec![],
            file_pattern: None,
            time_format: "%Y%m%d%H%M%S".into(),
            wipe: WipePolicy::Never,
            id_file: "ZFYINFO.TXT".into(),
        };
        let mut c = base();
        c.password = "123".into();
        assert_eq!(c.validate("camera[1]").unwrap_err().0, "camera[1].password");
        let mut c = base();
        c.file_pattern = Some("(?P<colour>x)".into());
        assert_eq!(
            c.validate("camera[0]").unwrap_err().0,
            "camera[0].file_pattern"
        );
        let mut c = base();
        c.time_format = "%Y".into();
        assert_eq!(
            c.validate("camera[0]").unwrap_err().0,
            "camera[0].time_format"
        );
        let mut c = base();
        c.driver = DriverKind::ZfyUsb;
        assert_eq!(c.validate("camera[0]").unwrap_err().0, "camera[0].usb_vid");
        let mut c = base();
        c.allow = vec!["ZFY1".into()];
        let p = c.validate("c").unwrap();
        assert!(p.allows("ZFY1") && !p.allows("ZFY2"));
    }
}
