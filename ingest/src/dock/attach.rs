//! Choosing the profile and driver for a docked volume.

use super::Arrival;
use crate::device::CameraDriver;
use crate::device::mass_storage::MassStorageDriver;
use crate::device::profile::{DriverKind, Profile};
use crate::device::sim::{self, SimDriver};
use crate::device::volume::Volume;
use evidock_store::clock::Clock;
use std::sync::Arc;

/// A volume matched to a profile, with its driver.
#[derive(Debug)]
pub struct Attached {
    pub profile: Profile,
    pub driver: Box<dyn CameraDriver>,
    pub volume: Volume,
}

/// Match `arrival` to the first profile that recognises it:
/// a simulated camera's card (marker file) → a `zfy-sim` profile; a USB device → the profile
/// with its VID/PID; anything else → the first `mass-storage` profile. `fallback_serial` names a
/// mass-storage camera without an ID file.
pub fn attach(
    profiles: &[Profile],
    arrival: &Arrival,
    fallback_serial: &str,
    clock: Arc<dyn Clock>,
) -> Result<Attached, String> {
    if let Some(fw) = sim::firmware_of_volume(&arrival.volume) {
        let profile = profiles
            .iter()
            .find(|p| p.driver == DriverKind::ZfySim)
            .ok_or("a simulated camera, but no zfy-sim device profile is configured: not read")?;
        let driver = SimDriver::new(fw, clock);
        let volume = Volume::new(arrival.volume.clone(), driver.read_rate());
        return Ok(Attached {
            profile: profile.clone(),
            driver: Box::new(driver),
            volume,
        });
    }
    if let Some(usb) = &arrival.usb {
        if let Some(profile) = profiles.iter().find(|p| p.usb == Some((usb.vid, usb.pid))) {
            if profile.driver == DriverKind::MassStorage {
                return Ok(mass_storage(
                    profile,
                    arrival,
                    usb.serial.as_deref().unwrap_or(fallback_serial),
                ));
            }
            return Err(format!(
                "USB device {:04x}:{:04x} matches profile {:?}, whose {} driver is not available here",
                usb.vid,
                usb.pid,
                profile.name,
                profile.driver.name()
            ));
        }
        return Err(format!(
            "USB device {:04x}:{:04x} matches no device profile: not read",
            usb.vid, usb.pid
        ));
    }
    let profile = profiles
        .iter()
        .find(|p| p.driver == DriverKind::MassStorage && p.usb.is_none())
        .ok_or_else(|| {
            format!(
                "{} is not a known camera (no mass-storage device profile): not read",
                arrival.volume.display()
            )
        })?;
    Ok(mass_storage(profile, arrival, fallback_serial))
}

fn mass_storage(profile: &Profile, arrival: &Arrival, serial: &str) -> Attached {
    Attached {
        profile: profile.clone(),
        driver: Box::new(MassStorageDriver::new(
            arrival.volume.clone(),
            profile.id_file.clone(),
            serial.to_string(),
        )),
        volume: Volume::new(arrival.volume.clone(), None),
    }
}
