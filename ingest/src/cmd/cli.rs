//! The `evidock` command line: its options and subcommands.

use clap::{Parser, Subcommand};
use std::path::PathBuf;

const AFTER_HELP: &str = "\
Exit status:
  0  done, nothing failed
  1  done, but something failed and was recorded (e.g. a check found errors): read the output
  2  bad command line or configuration; nothing was done
  3  could not complete (I/O error, service unreachable, data directory in use); safe to retry

Without --data-dir, the station is /var/lib/evidock when it exists, else ./evidock-data.
Without --config, the station in /var/lib/evidock reads /etc/evidock/evidock.toml; any other
runs on the embedded default: a local store in the data directory and no time-stamping
authority (local time only). Only
`evidock station init` (or `evidock dock --init`) makes a station; every other command refuses a
directory that holds none.";

#[derive(Debug, Parser)]
#[command(name = "evidock", version, about = "Body-worn camera evidence, from the dock to the court", after_help = AFTER_HELP)]
pub struct Cli {
    /// Station configuration file (TOML). Default: /etc/evidock/evidock.toml for the station
    /// in /var/lib/evidock, else the embedded default.
    #[arg(long, global = true, value_name = "FILE", env = "EVIDOCK_CONFIG")]
    pub config: Option<PathBuf>,
    /// Where the station keeps its key, custody log, spool and journal. Default:
    /// /var/lib/evidock when it exists (an installed station), else ./evidock-data.
    #[arg(long, global = true, value_name = "DIR", env = "EVIDOCK_DATA_DIR")]
    pub data_dir: Option<PathBuf>,
    /// Print data as JSON instead of text.
    #[arg(long, global = true)]
    pub json: bool,
    /// More log output (repeat for more).
    #[arg(short, long, global = true, action = clap::ArgAction::Count)]
    pub verbose: u8,
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// This station: its ID and public key.
    #[command(subcommand)]
    Station(super::station::StationCmd),
    /// This station's custody log: events, checkpoints, time-stamps.
    #[command(subcommand)]
    Log(super::log::LogCmd),
    /// Compute the configured digests of files (SHA-256, and SM3/MD5 when configured).
    Hash(super::hash::HashArgs),
    /// Acquire a mounted camera folder once (read-only), with a progress bar.
    Ingest(super::ingest::IngestArgs),
    /// Camera sessions (one per docking) and their states, in the order they docked.
    Sessions(super::page::PageArgs),
    /// Evidence items.
    #[command(subcommand)]
    Evidence(super::evidence::EvidenceCmd),
    /// Cameras: who carries which.
    #[command(subcommand)]
    Camera(super::camera::CameraCmd),
    /// Run the dock: acquire every camera docked under the mount root, until stopped.
    Dock(super::dock::DockArgs),
    /// Simulated cameras, for the demo and for trying a station without hardware.
    #[command(subcommand)]
    Simulate(super::simulate::SimulateCmd),
    /// Upload queued evidence to the evidence store, read it back, publish the custody log.
    Upload(super::upload::UploadArgs),
    /// The evidence store: set it up (Object Lock, retention), see the upload queue.
    #[command(subcommand)]
    Store(super::store::StoreCmd),
    /// Make playback copies and thumbnails: the backlog, or again for given evidence items.
    Transcode(super::transcode::TranscodeArgs),
    /// Cases: import the case register, list cases, show one with its footage and gaps.
    #[command(subcommand)]
    Case(super::case::CaseCmd),
    /// Link an evidence item to a case (a custody event with who and why).
    Link(super::case::LinkArgs),
    /// Remove a link (a custody event; nothing is deleted, automatic linking leaves it alone).
    Unlink(super::case::LinkArgs),
    /// Retention: categories, what is due for disposal, disposal.
    #[command(subcommand)]
    Retention(super::retention::RetentionCmd),
    /// Build a disclosure package of a case (证据移送): originals, playback copies, evidence list,
    /// custody proofs, collection record, VERIFY.md; `evidock-verify` checks it offline.
    Export(super::export::ExportArgs),
    /// A reviewer's check: re-hash originals and derivatives in the store, check the custody log,
    /// records and case links; every finding, a `verified` custody event.
    Verify(super::verify::VerifyArgs),
    /// What the dock is doing: slots, queues, alerts, disk, recent custody events.
    Status,
    /// The configuration file: check it.
    #[command(subcommand)]
    Config(super::config::ConfigCmd),
    /// The case index, a cache of custody logs: rebuild it.
    #[command(subcommand)]
    Index(super::index::IndexCmd),
}
