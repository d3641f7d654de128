//! Command implementations: thin glue between the command line and the libraries.

pub mod camera;
pub mod case;
pub mod cli;
pub mod config;
pub mod dock;
pub mod evidence;
pub mod export;
pub mod hash;
pub mod index;
pub mod ingest;
pub mod interrupt;
pub mod log;
pub mod page;
pub mod retention;
pub mod sessions;
pub mod simulate;
pub mod station;
pub mod status;
pub mod store;
pub mod transcode;
pub mod upload;
pub mod verify;

use crate::config::Settings;
use crate::station::{Create, Station};
use cli::{Cli, Command};
use std::path::PathBuf;

/// What every command gets: the global options, resolved.
#[derive(Debug)]
pub struct Ctx {
    pub data_dir: PathBuf,
    pub settings: Settings,
    pub json: bool,
}

impl Ctx {
    /// Open this station (key, custody log); a directory without a station is refused.
    pub fn station(&self) -> anyhow::Result<Station> {
        Station::open(&self.data_dir, self.settings.clone(), Create::No)
    }

    /// Print `value` as pretty JSON.
    pub fn print_json<T: serde::Serialize>(&self, value: &T) -> anyhow::Result<()> {
        println!("{}", serde_json::to_string_pretty(value)?);
        Ok(())
    }
}

/// A `--by` value: the person who acts, as the custody log will name them. Never empty, never
/// a placeholder the tool made up, no control characters (a name that rewrites a terminal line
/// or a document row is no name).
pub fn person(s: &str) -> Result<String, String> {
    let t = s.trim();
    if t.is_empty() {
        return Err("name the person who acts (their ID, e.g. 350201 or a login name)".into());
    }
    // Control characters, and the invisible ones that reorder or hide text (bidi overrides
    // and isolates, zero-width marks).
    let invisible = |c: char| {
        c.is_control()
            || matches!(c, '\u{200B}'..='\u{200F}' | '\u{202A}'..='\u{202E}' | '\u{2060}'..='\u{2069}' | '\u{FEFF}')
    };
    if t.chars().any(invisible) {
        return Err("a person's name holds no control or invisible formatting characters".into());
    }
    if t.chars().count() > 128 {
        return Err("a person's name is at most 128 characters".into());
    }
    Ok(t.to_string())
}

/// Whether `a` and `b` are one existing directory however each is named (relative, `..`, a
/// link).
fn same_dir(a: &std::path::Path, b: &std::path::Path) -> bool {
    match (fs_err::canonicalize(a), fs_err::canonicalize(b)) {
        (Ok(a), Ok(b)) => a == b && a.is_dir(),
        _ => false,
    }
}

pub fn run(cli: Cli) -> anyhow::Result<u8> {
    // The installed station's configuration goes with the installed station's data: a run on
    // another --data-dir (a trial, a test) never takes the production store and cameras.
    let system_data = std::path::Path::new(crate::SYSTEM_DATA_DIR);
    let data_dir = match cli.data_dir {
        Some(d) => d,
        None if system_data.is_dir() => system_data.to_path_buf(),
        None => PathBuf::from(crate::LOCAL_DATA_DIR),
    };
    let system_config = std::path::Path::new(crate::SYSTEM_CONFIG);
    let settings = match &cli.config {
        Some(p) => Settings::load(p)?,
        None if system_config.exists() && same_dir(&data_dir, system_data) => {
            Settings::load(system_config)?
        }
        None => Settings::embedded()?,
    };
    let ctx = Ctx {
        data_dir,
        settings,
        json: cli.json,
    };
    match cli.command {
        Command::Station(c) => station::run(&ctx, c),
        Command::Log(c) => log::run(&ctx, c),
        Command::Hash(a) => hash::run(&ctx, a),
        Command::Ingest(a) => ingest::run(&ctx, a),
        Command::Sessions(paging) => sessions::run(&ctx, &paging),
        Command::Evidence(c) => evidence::run(&ctx, c),
        Command::Camera(c) => camera::run(&ctx, c),
        Command::Dock(a) => dock::run(&ctx, a),
        Command::Simulate(c) => simulate::run(&ctx, c),
        Command::Upload(a) => upload::run(&ctx, a),
        Command::Transcode(a) => transcode::run(&ctx, a),
        Command::Store(c) => store::run(&ctx, c),
        Command::Case(c) => case::run(&ctx, c),
        Command::Link(a) => case::link(&ctx, a, false),
        Command::Unlink(a) => case::link(&ctx, a, true),
        Command::Retention(c) => retention::run(&ctx, c),
        Command::Index(c) => index::run(&ctx, c),
        Command::Export(a) => export::run(&ctx, a),
        Command::Verify(a) => verify::run(&ctx, a),
        Command::Status => status::run(&ctx),
        Command::Config(c) => config::run(&ctx, c),
    }
}
