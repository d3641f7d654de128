//! # evidock-ingest
//!
//! The dock station as a library: devices, acquisition, the pipeline of stages, cases and
//! export. The `evidock` command line (`src/main.rs` and its private `cmd/`) is its only
//! driver; no module here imports it. See docs/ARCHITECTURE.md for the map.
#![allow(clippy::print_stdout, clippy::print_stderr)]

#[cfg(test)]
mod architecture;

pub mod acquire;
pub mod cases;
pub mod config;
pub mod device;
pub mod dock;
pub mod exit;
pub mod export;
pub mod journal;
pub mod pipeline;
pub mod review;
pub mod station;
pub mod status;
pub mod transcode;
pub mod upload;
pub mod web;
pub mod wipe;

/// An installed station's configuration and data (the Debian package makes both).
pub const SYSTEM_CONFIG: &str = "/etc/evidock/evidock.toml";
pub const SYSTEM_DATA_DIR: &str = "/var/lib/evidock";
/// The data directory when there is no installed station: `make run` and trying things out.
pub const LOCAL_DATA_DIR: &str = "./evidock-data";
