//! The USB source: libusb hot-plug arrivals and departures, matched against the device profiles.
//!
//! A device whose VID/PID no profile names is ignored (logged once per slot); a device that
//! matches becomes an [`Arrival`] with its USB facts; its card is found and mounted later, after
//! the handshake (`dock::attach`, `dock::blockdev`). Departures are reported by slot (the bus/port
//! path), the same [`DockEvent`]s as the watch folder's.

use super::{Arrival, DockEvent, UsbArrival, UsbInfo};
use crate::device::profile::Profile;
use crate::device::zfy_usb;
use rusb::{Context, Device, UsbContext as _};
use std::collections::HashSet;
use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

/// Where USB cards are mounted: hidden under the mount root, so the watch folder skips them.
pub fn mount_base(mount_root: &std::path::Path) -> PathBuf {
    mount_root.join(".usb")
}

enum Seen {
    Arrived(Device<Context>),
    Left(Device<Context>),
}

struct Callback(std::sync::mpsc::Sender<Seen>);

impl rusb::Hotplug<Context> for Callback {
    // libusb calls these on its event thread: hand the device over, do the work elsewhere.
    fn device_arrived(&mut self, device: Device<Context>) {
        let _ = self.0.send(Seen::Arrived(device));
    }
    fn device_left(&mut self, device: Device<Context>) {
        let _ = self.0.send(Seen::Left(device));
    }
}

/// Start the USB source. Returns the threads' handles; they end when `stop` is set.
pub fn run(
    profiles: Vec<Profile>,
    mount_root: PathBuf,
    tx: tokio::sync::mpsc::Sender<DockEvent>,
    stop: Arc<AtomicBool>,
) -> Result<Vec<std::thread::JoinHandle<()>>, String> {
    // Our own context, not rusb's global one: that one panics where libusb cannot start (a
    // machine without /dev/bus/usb), and here that must be a warning, not a crash.
    let ctx = zfy_usb::context()?;
    let (seen_tx, seen_rx) = std::sync::mpsc::channel();
    let registration = rusb::HotplugBuilder::new()
        .enumerate(true)
        .register(&ctx, Box::new(Callback(seen_tx)))
        .map_err(|e| format!("cannot register for USB hot-plug: {e}"))?;
    let events_ctx = ctx.clone();
    let events_stop = stop.clone();
    let events = std::thread::Builder::new()
        .name("usb-events".into())
        .spawn(move || {
            let _registration = registration;
            while !events_stop.load(Ordering::Relaxed) {
                if let Err(e) = events_ctx.handle_events(Some(Duration::from_millis(300))) {
                    tracing::error!(error = %e, "USB event loop failed");
                    std::thread::sleep(Duration::from_millis(500));
                }
            }
        })
        .map_err(|e| e.to_string())?;
    let worker = std::thread::Builder::new()
        .name("usb-source".into())
        .spawn(move || {
            let mut ignored: HashSet<(String, u16, u16)> = HashSet::new();
            let mut docked: HashSet<String> = HashSet::new();
            while !stop.load(Ordering::Relaxed) {
                let seen = match seen_rx.recv_timeout(Duration::from_millis(300)) {
                    Ok(s) => s,
                    Err(std::sync::mpsc::RecvTimeoutError::Timeout) => continue,
                    Err(_) => break,
                };
                let ev = match seen {
                    Seen::Arrived(device) => {
                        arrived(&device, &profiles, &mount_root, &mut ignored, &mut docked)
                    }
                    Seen::Left(device) => {
                        let slot = zfy_usb::slot_name(&device);
                        ignored.retain(|(s, _, _)| s != &slot);
                        tracing::info!(%slot, "usb device left");
                        docked.remove(&slot).then_some(DockEvent::Departed { slot })
                    }
                };
                if let Some(ev) = ev
                    && tx.blocking_send(ev).is_err()
                {
                    break;
                }
            }
        })
        .map_err(|e| e.to_string())?;
    Ok(vec![events, worker])
}

fn arrived(
    device: &Device<Context>,
    profiles: &[Profile],
    mount_root: &std::path::Path,
    ignored: &mut HashSet<(String, u16, u16)>,
    docked: &mut HashSet<String>,
) -> Option<DockEvent> {
    let desc = device.device_descriptor().ok()?;
    let (vid, pid) = (desc.vendor_id(), desc.product_id());
    let slot = zfy_usb::slot_name(device);
    // Hubs and the root hub are not cameras.
    if desc.class_code() == rusb::constants::LIBUSB_CLASS_HUB {
        return None;
    }
    let info = read_strings(device, vid, pid);
    let Some(profile) = profiles.iter().find(|p| p.usb == Some((vid, pid))) else {
        if ignored.insert((slot.clone(), vid, pid)) {
            tracing::info!(
                %slot,
                vid = format!("{vid:04x}"),
                pid = format!("{pid:04x}"),
                product = info.product.as_deref().unwrap_or(""),
                "usb device ignored: no device profile names it"
            );
        }
        return None;
    };
    tracing::info!(
        %slot,
        vid = format!("{vid:04x}"),
        pid = format!("{pid:04x}"),
        serial = info.serial.as_deref().unwrap_or(""),
        profile = %profile.name,
        "usb device arrived"
    );
    docked.insert(slot.clone());
    let sysfs = PathBuf::from("/sys/bus/usb/devices").join(zfy_usb::sysfs_name(device));
    Some(DockEvent::Arrived(Arrival {
        volume: mount_base(mount_root).join(&slot),
        slot,
        usb: Some(UsbArrival {
            info,
            device: device.clone(),
            sysfs,
        }),
    }))
}

/// Manufacturer, product and serial strings, best effort (a device that will not open still
/// has its VID/PID).
fn read_strings(device: &Device<Context>, vid: u16, pid: u16) -> UsbInfo {
    let mut info = UsbInfo {
        vid,
        pid,
        serial: None,
        serial_unread: None,
        manufacturer: None,
        product: None,
    };
    let desc = match device.device_descriptor() {
        Ok(d) => d,
        Err(e) => {
            info.serial_unread = Some(format!("device descriptor: {e}"));
            return info;
        }
    };
    // A device that declares no serial has `(none)`, not an error.
    let unread = |why: String| desc.serial_number_string_index().map(|_| why);
    let handle = match device.open() {
        Ok(h) => h,
        Err(e) => {
            info.serial_unread = unread(format!("device would not open: {e}"));
            return info;
        }
    };
    let t = Duration::from_millis(500);
    match handle.read_languages(t).map(|l| l.first().copied()) {
        Ok(Some(lang)) => {
            info.manufacturer = handle.read_manufacturer_string(lang, &desc, t).ok();
            info.product = handle.read_product_string(lang, &desc, t).ok();
            match handle.read_serial_number_string(lang, &desc, t) {
                Ok(s) => info.serial = Some(s),
                Err(e) => info.serial_unread = unread(e.to_string()),
            }
        }
        Ok(None) => info.serial_unread = unread("the device lists no string language".into()),
        Err(e) => info.serial_unread = unread(format!("string languages: {e}")),
    }
    info
}
