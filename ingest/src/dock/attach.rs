//! Choosing the profile and driver for a docked volume.

use super::Arrival;
use super::blockdev::UsbCard;
use crate::device::CameraDriver;
use crate::device::mass_storage::MassStorageDriver;
use crate::device::profile::{DriverKind, Profile};
use crate::device::sim::{self, SimDriver};
use crate::device::volume::{CardSource, Volume};
use crate::device::zfy_usb::ZfyUsbDriver;
use evidock_store::clock::Clock;
use evidock_verify::event::payload::ReadMethod;
use std::sync::Arc;

/// A docked camera matched to a profile, with its driver and its card.
#[derive(Debug)]
pub struct Attached {
    pub profile: Profile,
    pub driver: Box<dyn CameraDriver>,
    pub card: Box<dyn CardSource>,
    /// How its files are read, for the `docked` event and the collection record.
    pub method: ReadMethod,
}

/// Match `arrival` to the first profile that recognises it:
/// a simulated camera's card (marker file) → a `zfy-sim` profile; a USB device → the profile
/// with its VID/PID (a `zfy-usb` camera is reached over its vendor interface and its card
/// mounted after `SetMSDC`; a `mass-storage` one is mounted at once); any other folder under
/// the mount root → the first `mass-storage` profile without USB IDs. `fallback_serial` names a
/// mass-storage camera without an ID file.
pub fn attach(
    profiles: &[Profile],
    arrival: &Arrival,
    fallback_serial: &str,
    clock: Arc<dyn Clock>,
    automount: bool,
) -> Result<Attached, String> {
    if let Some(usb) = &arrival.usb {
        let (vid, pid) = (usb.info.vid, usb.info.pid);
        let profile = profiles
            .iter()
            .find(|p| p.usb == Some((vid, pid)))
            .ok_or_else(|| {
                format!("USB device {vid:04x}:{pid:04x} matches no device profile: not read")
            })?;
        let card = UsbCard::new(usb.sysfs.clone(), arrival.volume.clone(), automount);
        let usb_method = if automount {
            ReadMethod::UsbSystemMount
        } else {
            ReadMethod::UsbReadOnly
        };
        return match profile.driver {
            DriverKind::ZfyUsb => {
                password_gate(profile, &usb.info, &arrival.slot)?;
                Ok(Attached {
                    profile: profile.clone(),
                    driver: Box::new(
                        ZfyUsbDriver::open(&usb.device, &arrival.slot)
                            .map_err(|e| e.to_string())?,
                    ),
                    card: Box::new(card),
                    method: usb_method,
                })
            }
            DriverKind::MassStorage => {
                // No handshake: the card is there at once; its ID file names the camera.
                let mut card = card;
                let volume = card.attach()?;
                let serial = usb.info.serial.as_deref().unwrap_or(fallback_serial);
                Ok(Attached {
                    profile: profile.clone(),
                    driver: Box::new(MassStorageDriver::new(
                        volume.root().to_path_buf(),
                        profile.id_file.clone(),
                        serial.to_string(),
                    )),
                    card: Box::new(MountedCard { card, volume }),
                    method: usb_method,
                })
            }
            DriverKind::ZfySim => Err(format!(
                "profile {:?} uses the zfy-sim driver for a USB device",
                profile.name
            )),
        };
    }
    if let Some(fw) = sim::firmware_of_volume(&arrival.volume) {
        let profile = profiles
            .iter()
            .find(|p| p.driver == DriverKind::ZfySim)
            .ok_or("a simulated camera, but no zfy-sim device profile is configured: not read")?;
        let driver = SimDriver::new(fw, clock).with_card(arrival.volume.clone());
        let volume = Volume::new(arrival.volume.clone(), driver.read_rate());
        return Ok(Attached {
            profile: profile.clone(),
            driver: Box::new(driver),
            card: Box::new(volume),
            method: ReadMethod::Simulated,
        });
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
    Ok(Attached {
        profile: profile.clone(),
        driver: Box::new(MassStorageDriver::new(
            arrival.volume.clone(),
            profile.id_file.clone(),
            fallback_serial.to_string(),
        )),
        card: Box::new(Volume::new(arrival.volume.clone(), None)),
        method: ReadMethod::WatchFolder,
    })
}

/// Every handshake command carries the admin password, and a VID/PID is no identity (any
/// device, or a gadget on a laptop, can claim one): the password goes only to a camera whose
/// USB serial, read from its descriptors before any command, is on the profile's allow-list
/// (the handshake's own serial is checked against it again). `allow = ["*"]` is the admin's
/// choice to trust any camera of the profile.
fn password_gate(profile: &Profile, usb: &super::UsbInfo, slot: &str) -> Result<(), String> {
    if profile.allow_any {
        return Ok(());
    }
    match (usb.serial.as_deref(), &usb.serial_unread) {
        (Some(serial), _) if profile.allows(serial) => Ok(()),
        (None, Some(why)) => Err(format!(
            "USB device {:04x}:{:04x} at {slot}: its USB serial could not be read ({why}), so it \
             cannot be matched to the allow-list of profile {:?}: the admin password was not \
             sent, not read; unplug and dock it again",
            usb.vid, usb.pid, profile.name
        )),
        (serial, _) => Err(format!(
            "USB device {:04x}:{:04x} at {slot}: its USB serial {} is not on the allow-list of profile {:?}: \
             the admin password was not sent, not read",
            usb.vid,
            usb.pid,
            serial.map_or_else(|| "(none)".to_string(), |s| format!("{s:?}")),
            profile.name
        )),
    }
}

/// A USB card already mounted (mass-storage cameras), kept mounted until the session ends.
#[derive(Debug)]
struct MountedCard {
    card: UsbCard,
    volume: Volume,
}

impl CardSource for MountedCard {
    fn attach(&mut self) -> Result<Volume, String> {
        Ok(self.volume.clone())
    }
    fn present(&self) -> bool {
        self.card.present()
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use crate::dock::UsbInfo;

    fn profile(allow: &str) -> Profile {
        let toml = format!(
            "[[camera]]\nname = \"zfy\"\ndriver = \"zfy-usb\"\nusb_vid = 0x2fe3\nusb_pid = 0x0c01\npassword = \"000000\"\nallow = {allow}\n"
        );
        crate::config::Settings::parse(&toml, std::path::Path::new("t.toml"))
            .unwrap()
            .profiles
            .remove(0)
    }

    fn usb(serial: Option<&str>) -> UsbInfo {
        UsbInfo {
            vid: 0x2fe3,
            pid: 0x0c01,
            serial: serial.map(str::to_string),
            serial_unread: None,
            manufacturer: None,
            product: None,
        }
    }

    #[test]
    fn the_password_goes_only_to_an_allow_listed_usb_serial() {
        let p = profile("[\"ZFY0001\"]");
        assert!(password_gate(&p, &usb(Some("ZFY0001")), "1-1").is_ok());
        let e = password_gate(&p, &usb(Some("ZFY0666")), "1-1").unwrap_err();
        assert!(e.contains("ZFY0666") && e.contains("not sent"), "{e}");
        let e = password_gate(&p, &usb(None), "1-1").unwrap_err();
        assert!(e.contains("(none)"), "{e}");
        let unread = UsbInfo {
            serial_unread: Some("Pipe error".into()),
            ..usb(None)
        };
        let e = password_gate(&p, &unread, "1-1").unwrap_err();
        assert!(
            e.contains("could not be read (Pipe error)") && e.contains("not sent"),
            "{e}"
        );
        assert!(password_gate(&profile("[\"*\"]"), &usb(None), "1-1").is_ok());
    }
}
