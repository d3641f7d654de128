//! Cameras: the driver trait for the ZFY handshake, and the drivers.
//!
//! A docked camera is reached two ways: its **driver** (identify, clock, battery, switch to
//! mass storage — every call with the admin password from its profile) and its **volume** (the
//! card, mounted read-only, where the files are). Drivers sit behind [`CameraDriver`] so tests can
//! drive a simulated camera and a vendor SDK driver can be added without touching acquisition.

pub mod card;
pub mod mass_storage;
pub mod profile;
pub mod sim;
pub mod volume;
pub mod zfy;
pub mod zfy_usb;

use chrono::NaiveDateTime;
use evidock_verify::event::payload::CameraIdentity;

/// A camera operation failed.
#[derive(Debug, Clone, thiserror::Error)]
pub enum DeviceError {
    #[error(
        "camera {device}: the admin password was refused (check `password` in its device profile)"
    )]
    WrongPassword { device: String },
    #[error("camera {device}: {op} is not supported by the {driver} driver")]
    Unsupported {
        device: String,
        driver: &'static str,
        op: &'static str,
    },
    #[error("camera {device}: {op} failed: {reason}")]
    Failed {
        device: String,
        op: &'static str,
        reason: String,
        retriable: bool,
    },
    #[error("camera {device}: {op}: the camera answered with malformed data: {reason}")]
    Protocol {
        device: String,
        op: &'static str,
        reason: String,
    },
}

impl DeviceError {
    /// Whether trying again (or re-docking) may help.
    pub fn is_retriable(&self) -> bool {
        matches!(
            self,
            DeviceError::Failed {
                retriable: true,
                ..
            }
        )
    }
}

/// The handshake every camera driver speaks. Every call takes the admin password.
pub trait CameraDriver: Send + std::fmt::Debug {
    /// The driver's name as used in device profiles (`zfy-sim`, `mass-storage`, `zfy-usb`).
    fn name(&self) -> &'static str;
    /// `GetZFYInfo`: who the camera is.
    fn identify(&mut self, password: &str) -> Result<CameraIdentity, DeviceError>;
    /// The camera's clock (its local time), if the driver can read it.
    fn read_clock(&mut self, password: &str) -> Result<Option<NaiveDateTime>, DeviceError>;
    /// `SyncDevTime`: set the camera's clock to `local` (the station's local time). Returns
    /// `false` when the driver cannot set clocks.
    fn sync_clock(&mut self, password: &str, local: NaiveDateTime) -> Result<bool, DeviceError>;
    /// Battery level in percent, if known.
    fn battery(&mut self, password: &str) -> Result<Option<u8>, DeviceError>;
    /// `SetMSDC`: switch to USB mass storage for this insertion (a no-op for cameras that mount
    /// directly).
    fn set_mass_storage(&mut self, password: &str) -> Result<(), DeviceError>;

    /// Delete these files (paths relative to the card's root) from the camera — the only write
    /// evidock ever makes to a camera, and only for files whose read-back-verified upload is
    /// recorded (see `crate::wipe`). Returns the paths deleted. The acquisition mount is
    /// read-only: a driver deletes through the camera itself (a vendor command) or a session of
    /// its own; drivers that cannot, say so.
    fn delete_files(
        &mut self,
        _password: &str,
        _paths: &[Vec<u8>],
    ) -> Result<Vec<Vec<u8>>, DeviceError> {
        Err(DeviceError::Unsupported {
            device: String::new(),
            driver: self.name(),
            op: "deleting files",
        })
    }
}
