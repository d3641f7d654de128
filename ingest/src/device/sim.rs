//! A simulated ZFY camera, for tests and the demo.
//!
//! The camera's "firmware" — identity, admin password, its own clock with drift, battery, and
//! how fast it reads — is a TOML file outside the card, as a real camera's settings live in its
//! flash and not on the SD card. The card carries a marker, `ZFYSIM.INI`, naming the firmware
//! file, the way a real camera volume carries an ID file. The driver answers the handshake with
//! the exact `ZFY_INFO` bytes a real camera sends ([`super::zfy`]), checks the password on every
//! call, and keeps the clock in the firmware file (so `SyncDevTime` persists, as on a camera).

use super::zfy;
use super::{CameraDriver, DeviceError};
use chrono::{DateTime, NaiveDateTime, TimeZone as _, Utc};
use evidock_verify::event::payload::CameraIdentity;
use evidock_verify::id::{DeviceSerial, OfficerId};
use serde::{Deserialize, Serialize};
use std::path::{Path, PathBuf};

/// The marker file on a simulated camera's card.
pub const MARKER: &str = "ZFYSIM.INI";

/// The simulated camera's firmware state.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Firmware {
    pub serial: String,
    #[serde(default)]
    pub officer: String,
    #[serde(default)]
    pub user_name: String,
    #[serde(default)]
    pub unit_number: String,
    #[serde(default)]
    pub unit_name: String,
    /// The six-character admin password.
    pub password: String,
    /// The camera's local time at `clock_set_at`, as `YYYYMMDDhhmmss`.
    pub clock: String,
    /// The real (UTC) instant at which the clock showed `clock`.
    pub clock_set_at: DateTime<Utc>,
    /// How fast the camera's clock runs off, in parts per million (positive = fast).
    #[serde(default)]
    pub drift_ppm: i64,
    #[serde(default = "default_battery")]
    pub battery: u8,
    /// Bytes per second the card delivers (0 = unthrottled).
    #[serde(default)]
    pub read_bytes_per_sec: u64,
}

fn default_battery() -> u8 {
    80
}

impl Firmware {
    pub fn identity(&self) -> Result<CameraIdentity, String> {
        let opt = |s: &str| (!s.is_empty()).then(|| s.to_string());
        Ok(CameraIdentity {
            serial: DeviceSerial::new(self.serial.clone()).map_err(|e| e.to_string())?,
            officer: match opt(&self.officer) {
                Some(o) => Some(OfficerId::new(o).map_err(|e| e.to_string())?),
                None => None,
            },
            user_name: opt(&self.user_name),
            unit_number: opt(&self.unit_number),
            unit_name: opt(&self.unit_name),
        })
    }

    /// What the camera's clock shows at the real instant `now`.
    pub fn clock_at(&self, now: DateTime<Utc>) -> Result<NaiveDateTime, String> {
        let base = zfy::parse_time(&self.clock).map_err(|e| e.to_string())?;
        let elapsed_ms = (now - self.clock_set_at).num_milliseconds();
        let drift_ms = elapsed_ms.saturating_mul(self.drift_ppm) / 1_000_000;
        Ok(base + chrono::Duration::milliseconds(elapsed_ms + drift_ms))
    }

    pub fn load(path: &Path) -> Result<Self, String> {
        let text = fs_err::read_to_string(path)
            .map_err(|e| format!("cannot read firmware {}: {e}", path.display()))?;
        toml::from_str(&text).map_err(|e| format!("firmware {}: {e}", path.display()))
    }

    pub fn save(&self, path: &Path) -> Result<(), String> {
        let text = toml::to_string(self).map_err(|e| e.to_string())?;
        evidock_store::fsutil::write_atomic(path, text.as_bytes(), 0o644).map_err(|e| e.to_string())
    }
}

/// The firmware file a card's marker names, if the card is a simulated camera's.
pub fn firmware_of_volume(volume: &Path) -> Option<PathBuf> {
    // Any volume in the watch folder is looked at: bounded, and never through a link.
    let bytes = crate::device::volume::Volume::new(volume.to_path_buf(), None)
        .read_small(MARKER.as_bytes(), 4096)
        .ok()?;
    let text = String::from_utf8(bytes).ok()?;
    text.lines()
        .find_map(|l| l.trim().strip_prefix("firmware="))
        .map(|p| PathBuf::from(p.trim()))
}

/// The driver of a simulated camera.
#[derive(Debug)]
pub struct SimDriver {
    firmware: PathBuf,
    clock: std::sync::Arc<dyn evidock_store::clock::Clock>,
    /// The card, as the camera's firmware sees it (for deleting files).
    card: Option<PathBuf>,
}

impl SimDriver {
    pub fn new(firmware: PathBuf, clock: std::sync::Arc<dyn evidock_store::clock::Clock>) -> Self {
        SimDriver {
            firmware,
            clock,
            card: None,
        }
    }

    /// The camera's own view of its card (where a delete command acts).
    pub fn with_card(mut self, card: PathBuf) -> Self {
        self.card = Some(card);
        self
    }

    /// Card read speed, from the firmware.
    pub fn read_rate(&self) -> Option<u64> {
        Firmware::load(&self.firmware)
            .ok()
            .map(|f| f.read_bytes_per_sec)
            .filter(|r| *r > 0)
    }

    /// Load the firmware and check the password, as the camera does on every call.
    fn authorised(&self, op: &'static str, password: &str) -> Result<Firmware, DeviceError> {
        let fw = Firmware::load(&self.firmware).map_err(|reason| DeviceError::Failed {
            device: self.firmware.display().to_string(),
            op,
            reason,
            retriable: true,
        })?;
        if password.len() != zfy::PASSWORD_LEN || password != fw.password {
            return Err(DeviceError::WrongPassword { device: fw.serial });
        }
        Ok(fw)
    }
}

impl CameraDriver for SimDriver {
    fn name(&self) -> &'static str {
        "zfy-sim"
    }

    fn identify(&mut self, password: &str) -> Result<CameraIdentity, DeviceError> {
        let fw = self.authorised("GetZFYInfo", password)?;
        let protocol = |reason: String| DeviceError::Protocol {
            device: fw.serial.clone(),
            op: "GetZFYInfo",
            reason,
        };
        // The camera side builds the struct; the station side decodes the bytes.
        let id = fw.identity().map_err(protocol)?;
        let bytes = zfy::encode_info(&id).map_err(|e| protocol(e.to_string()))?;
        zfy::decode_info(&bytes).map_err(|e| protocol(e.to_string()))
    }

    fn read_clock(&mut self, password: &str) -> Result<Option<NaiveDateTime>, DeviceError> {
        let fw = self.authorised("GetDevTime", password)?;
        let text = zfy::format_time(fw.clock_at(self.clock.now()).map_err(|reason| {
            DeviceError::Protocol {
                device: fw.serial.clone(),
                op: "GetDevTime",
                reason,
            }
        })?);
        zfy::parse_time(&text)
            .map(Some)
            .map_err(|e| DeviceError::Protocol {
                device: fw.serial.clone(),
                op: "GetDevTime",
                reason: e.to_string(),
            })
    }

    fn sync_clock(&mut self, password: &str, local: NaiveDateTime) -> Result<bool, DeviceError> {
        let mut fw = self.authorised("SyncDevTime", password)?;
        fw.clock = zfy::format_time(local);
        fw.clock_set_at = self.clock.now();
        fw.save(&self.firmware)
            .map_err(|reason| DeviceError::Failed {
                device: fw.serial.clone(),
                op: "SyncDevTime",
                reason,
                retriable: true,
            })?;
        Ok(true)
    }

    fn battery(&mut self, password: &str) -> Result<Option<u8>, DeviceError> {
        Ok(Some(self.authorised("GetBattery", password)?.battery))
    }

    fn set_mass_storage(&mut self, password: &str) -> Result<(), DeviceError> {
        self.authorised("SetMSDC", password).map(|_| ())
    }

    fn delete_files(
        &mut self,
        password: &str,
        paths: &[Vec<u8>],
    ) -> Result<Vec<Vec<u8>>, DeviceError> {
        let fw = self.authorised("DeleteFile", password)?;
        let Some(card) = &self.card else {
            return Err(DeviceError::Unsupported {
                device: fw.serial,
                driver: "zfy-sim",
                op: "deleting files (no card attached)",
            });
        };
        let mut deleted = Vec::new();
        for p in paths {
            let rel = std::path::Path::new(
                <std::ffi::OsStr as std::os::unix::ffi::OsStrExt>::from_bytes(p),
            );
            // The firmware deletes only plain relative paths inside its card, and never its
            // own identity file (as a camera keeps its configuration: the card stays a camera).
            if rel.is_absolute()
                || rel
                    .components()
                    .any(|c| !matches!(c, std::path::Component::Normal(_)))
                || rel == std::path::Path::new(MARKER)
            {
                continue;
            }
            match fs_err::remove_file(card.join(rel)) {
                Ok(()) => deleted.push(p.clone()),
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
                Err(e) => {
                    return Err(DeviceError::Failed {
                        device: fw.serial,
                        op: "DeleteFile",
                        reason: format!("{}: {e}", rel.display()),
                        retriable: true,
                    });
                }
            }
        }
        Ok(deleted)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use evidock_store::clock::ManualClock;
    use std::sync::Arc;

    fn fw() -> Firmware {
        Firmware {
            serial: "ZFY0001".into(),
            officer: "350201".into(),
            user_name: "张三".into(),
            unit_number: "350500000001".into(),
            unit_name: "应急管理局".into(),
            password: "000000".into(),
            clock: "20000101000000".into(),
            clock_set_at: "2026-11-28T00:00:00Z".parse().unwrap(),
            drift_ppm: 100,
            battery: 55,
            read_bytes_per_sec: 0,
        }
    }

    #[test]
    fn handshake_password_and_clock() {
        let tmp = tempfile::tempdir().unwrap();
        let path = tmp.path().join("fw.toml");
        fw().save(&path).unwrap();
        let clock = Arc::new(ManualClock::new(
            "2026-11-28T10:00:00Z".parse().unwrap(),
            "+08:00".parse().unwrap(),
        ));
        let mut d = SimDriver::new(path.clone(), clock.clone());
        assert!(matches!(
            d.identify("123456"),
            Err(DeviceError::WrongPassword { .. })
        ));
        assert!(matches!(
            d.identify("0000000"),
            Err(DeviceError::WrongPassword { .. })
        ));
        let id = d.identify("000000").unwrap();
        assert_eq!(id.serial.as_str(), "ZFY0001");
        assert_eq!(id.user_name.as_deref(), Some("张三"));
        // 10 h after the reset to 2000-01-01, plus 100 ppm drift (3.6 s).
        assert_eq!(
            d.read_clock("000000").unwrap().unwrap().to_string(),
            "2000-01-01 10:00:03"
        );
        let now_local = "2026-11-28T18:00:00".parse().unwrap();
        assert!(d.sync_clock("000000", now_local).unwrap());
        clock.advance(chrono::Duration::seconds(60));
        assert_eq!(
            d.read_clock("000000").unwrap().unwrap().to_string(),
            "2026-11-28 18:01:00"
        );
        assert_eq!(d.battery("000000").unwrap(), Some(55));
    }
}

/// A file to put on a simulated camera's card.
#[derive(Debug, Clone)]
pub enum SimContent {
    /// `size` deterministic pseudo-random bytes from `seed`.
    Generated { size: u64, seed: u64 },
    /// A copy of an existing file (e.g. a clip made with the ffmpeg CLI).
    CopyOf(PathBuf),
    /// These bytes.
    Bytes(Vec<u8>),
}

/// A simulated camera to create.
#[derive(Debug, Clone)]
pub struct SimSpec {
    pub firmware: Firmware,
    /// Paths on the card (raw bytes, `/`-separated) and their contents.
    pub files: Vec<(Vec<u8>, SimContent)>,
}

/// A ZFY-style file name for recording `n` started at camera time `at`.
pub fn recording_name(serial: &str, officer: &str, at: NaiveDateTime, n: u32, ext: &str) -> String {
    format!(
        "DCIM/100MEDIA/{serial}_{officer}_{}_{n:04}.{ext}",
        at.format(zfy::TIME_FORMAT)
    )
}

/// Create a simulated camera in `dir`: `dir/firmware.toml` and the card `dir/card/` (with its
/// `ZFYSIM.INI` marker). Returns the card's path; dock it by moving it under the mount root.
pub fn create(dir: &Path, spec: &SimSpec) -> Result<PathBuf, String> {
    use std::io::Write as _;
    let card = dir.join("card");
    fs_err::create_dir_all(&card).map_err(|e| e.to_string())?;
    let fw_path = std::path::absolute(dir.join("firmware.toml")).map_err(|e| e.to_string())?;
    spec.firmware.save(&fw_path)?;
    fs_err::write(
        card.join(MARKER),
        format!("firmware={}\n", fw_path.display()),
    )
    .map_err(|e| e.to_string())?;
    // Files are stamped as the camera stamps them: its clock, read as station local time.
    let camera_now = spec.firmware.clock_at(chrono::Utc::now())?;
    for (rel, content) in &spec.files {
        let path = card.join(<std::ffi::OsStr as std::os::unix::ffi::OsStrExt>::from_bytes(rel));
        if let Some(parent) = path.parent() {
            fs_err::create_dir_all(parent).map_err(|e| e.to_string())?;
        }
        match content {
            SimContent::Bytes(b) => fs_err::write(&path, b).map_err(|e| e.to_string())?,
            SimContent::CopyOf(src) => {
                fs_err::copy(src, &path).map_err(|e| e.to_string())?;
            }
            SimContent::Generated { size, seed } => {
                let mut f = std::io::BufWriter::with_capacity(
                    1 << 20,
                    std::fs::File::create(&path).map_err(|e| format!("{}: {e}", path.display()))?,
                );
                let mut x = seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1;
                let mut left = *size;
                let mut block = [0u8; 8192];
                while left > 0 {
                    for w in block.chunks_exact_mut(8) {
                        // xorshift64*: fast, deterministic, incompressible enough for tests.
                        x ^= x >> 12;
                        x ^= x << 25;
                        x ^= x >> 27;
                        w.copy_from_slice(&x.wrapping_mul(0x2545_F491_4F6C_DD1D).to_le_bytes());
                    }
                    let n = left.min(block.len() as u64) as usize;
                    f.write_all(&block[..n])
                        .map_err(|e| format!("{}: {e}", path.display()))?;
                    left -= n as u64;
                }
                f.flush().map_err(|e| format!("{}: {e}", path.display()))?;
            }
        }
        let mtime = chrono::Local
            .from_local_datetime(&camera_now)
            .earliest()
            .map(std::time::SystemTime::from)
            .unwrap_or_else(std::time::SystemTime::now);
        let _ = std::fs::File::options()
            .write(true)
            .open(&path)
            .and_then(|f| f.set_modified(mtime));
    }
    Ok(card)
}
