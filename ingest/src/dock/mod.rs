//! Docking: where docked cameras come from, and what the station does with them.
//!
//! Every source — the watch folder here, USB later — reports [`DockEvent`]s into one stream;
//! the dock loop ([`daemon`]) acquires each arrival on its own threads, at most
//! `max_cameras` at a time, so a slow camera never holds up another.

pub mod attach;
pub mod blockdev;
pub mod daemon;
pub mod usb;
pub mod watch;

use std::path::PathBuf;

/// USB facts about a docked device (from the USB source).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UsbInfo {
    pub vid: u16,
    pub pid: u16,
    pub serial: Option<String>,
    /// Why the serial string could not be read, if the device has one that was not (a device
    /// that declares none has `serial` and this both `None`).
    pub serial_unread: Option<String>,
    pub manufacturer: Option<String>,
    pub product: Option<String>,
}

/// A USB device that matched a device profile.
#[derive(Debug, Clone)]
pub struct UsbArrival {
    pub info: UsbInfo,
    pub device: rusb::Device<rusb::Context>,
    /// Its sysfs directory (`/sys/bus/usb/devices/<bus>-<ports>`), where its disk will appear.
    pub sysfs: PathBuf,
}

/// A docked camera.
#[derive(Debug, Clone)]
pub struct Arrival {
    /// The dock slot: the USB port path, or the volume's name under the mount root.
    pub slot: String,
    /// Where the card is (watch folder), or will be mounted read-only (USB).
    pub volume: PathBuf,
    pub usb: Option<UsbArrival>,
}

/// What the sources report.
#[derive(Debug, Clone)]
pub enum DockEvent {
    Arrived(Arrival),
    Departed { slot: String },
}
