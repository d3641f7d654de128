//! Cameras that mount directly as USB mass storage, with no handshake.
//!
//! Identity comes from an ID file on the card when there is one (`key=value` lines, GBK or
//! UTF-8: `serial`, `officer`, `user_name`, `unit_number`, `unit_name`), else from what docked it
//! (the USB serial string, or the volume's name under the mount root). The clock cannot be read
//! or set; recordings keep their raw times and say so.

use super::{CameraDriver, DeviceError};
use chrono::NaiveDateTime;
use evidock_verify::event::payload::CameraIdentity;
use evidock_verify::gbk;
use evidock_verify::id::{DeviceSerial, OfficerId};
use std::path::PathBuf;

#[derive(Debug)]
pub struct MassStorageDriver {
    volume: PathBuf,
    id_file: String,
    /// The serial to use when the card has no ID file.
    fallback_serial: String,
}

impl MassStorageDriver {
    pub fn new(volume: PathBuf, id_file: String, fallback_serial: String) -> Self {
        MassStorageDriver {
            volume,
            id_file,
            fallback_serial,
        }
    }
}

/// The largest ID file read (a real one is a few hundred bytes).
pub const ID_FILE_LIMIT: u64 = 64 * 1024;

/// Parse an ID file's text.
pub fn parse_id_file(bytes: &[u8]) -> Result<CameraIdentity, String> {
    let text = match std::str::from_utf8(bytes) {
        Ok(t) => t.to_string(),
        Err(_) => gbk::decode_strict(bytes).ok_or("the ID file is neither UTF-8 nor GBK")?,
    };
    let mut serial = None;
    let mut id = CameraIdentity {
        serial: DeviceSerial::new("unset").map_err(|e| e.to_string())?,
        officer: None,
        user_name: None,
        unit_number: None,
        unit_name: None,
    };
    for line in text.lines() {
        let Some((k, v)) = line.split_once('=') else {
            continue;
        };
        let v = v.trim();
        if v.is_empty() {
            continue;
        }
        match k.trim() {
            "serial" => serial = Some(DeviceSerial::new(v).map_err(|e| e.to_string())?),
            "officer" => id.officer = Some(OfficerId::new(v).map_err(|e| e.to_string())?),
            "user_name" => id.user_name = Some(v.to_string()),
            "unit_number" => id.unit_number = Some(v.to_string()),
            "unit_name" => id.unit_name = Some(v.to_string()),
            _ => {}
        }
    }
    id.serial = serial.ok_or("the ID file has no serial= line")?;
    Ok(id)
}

impl CameraDriver for MassStorageDriver {
    fn name(&self) -> &'static str {
        "mass-storage"
    }

    fn identify(&mut self, _password: &str) -> Result<CameraIdentity, DeviceError> {
        let path = self.volume.join(&self.id_file);
        // Read before the device is known: bounded and never through a link (a stick whose ID
        // file is a link to /dev/zero, or a FIFO, must not hang or fill the dock).
        let read = crate::device::volume::Volume::new(self.volume.clone(), None)
            .read_small(self.id_file.as_bytes(), ID_FILE_LIMIT);
        match read {
            Ok(bytes) => parse_id_file(&bytes).map_err(|reason| DeviceError::Protocol {
                device: self.fallback_serial.clone(),
                op: "read ID file",
                reason: format!("{}: {reason}", path.display()),
            }),
            Err(e) if e.kind() != std::io::ErrorKind::NotFound => Err(DeviceError::Protocol {
                device: self.fallback_serial.clone(),
                op: "read ID file",
                reason: format!("{}: {e}", path.display()),
            }),
            Err(_) => Ok(CameraIdentity {
                serial: DeviceSerial::new(self.fallback_serial.clone()).map_err(|e| {
                    DeviceError::Protocol {
                        device: self.fallback_serial.clone(),
                        op: "identify",
                        reason: e.to_string(),
                    }
                })?,
                officer: None,
                user_name: None,
                unit_number: None,
                unit_name: None,
            }),
        }
    }

    fn read_clock(&mut self, _password: &str) -> Result<Option<NaiveDateTime>, DeviceError> {
        Ok(None)
    }

    fn sync_clock(&mut self, _password: &str, _local: NaiveDateTime) -> Result<bool, DeviceError> {
        Ok(false)
    }

    fn battery(&mut self, _password: &str) -> Result<Option<u8>, DeviceError> {
        Ok(None)
    }

    fn set_mass_storage(&mut self, _password: &str) -> Result<(), DeviceError> {
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn id_files_in_utf8_and_gbk() {
        let id = parse_id_file("serial=ZFY0009\nofficer=350209\nunit_name=应急管理局\n".as_bytes())
            .unwrap();
        assert_eq!(id.serial.as_str(), "ZFY0009");
        assert_eq!(id.unit_name.as_deref(), Some("应急管理局"));
        let gbk_bytes = gbk::encode("serial=ZFY0010\nuser_name=王五\n").unwrap();
        let id = parse_id_file(&gbk_bytes).unwrap();
        assert_eq!(id.user_name.as_deref(), Some("王五"));
        assert!(parse_id_file(b"officer=1\n").is_err());
    }
}
