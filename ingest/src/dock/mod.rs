//! Docking: where docked cameras come from, and what the station does with them.
//!
//! Every source — the watch folder here, USB later — reports [`DockEvent`]s into one stream;
//! the dock loop ([`daemon`]) acquires each arrival on its own threads, at most
//! `max_cameras` at a time, so a slow camera never holds up another.

pub mod attach;
pub mod daemon;
pub mod watch;

use std::path::PathBuf;

/// USB facts about a docked device (from the USB source).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UsbInfo {
    pub vid: u16,
    pub pid: u16,
    pub serial: Option<String>,
    pub manufacturer: Option<String>,
    pub product: Option<String>,
}

/// A camera volume that appeared.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Arrival {
    /// The dock slot: the USB port path, or the volume's name under the mount root.
    pub slot: String,
    /// Where the card is mounted (read-only).
    pub volume: PathBuf,
    pub usb: Option<UsbInfo>,
}

/// What the sources report.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum DockEvent {
    Arrived(Arrival),
    Departed { slot: String },
}
