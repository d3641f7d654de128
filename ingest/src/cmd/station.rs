//! `evidock station`: who this station is.

use super::Ctx;
use crate::exit;
use clap::Subcommand;
use serde::Serialize;
use std::path::PathBuf;

#[derive(Debug, Subcommand)]
pub enum StationCmd {
    /// Make this station: its key (station.key, 0600) and custody log in the data directory.
    /// The only command that makes one; it refuses a directory that is a station already.
    Init {
        /// The station's ID (default: `station_id` of the configuration, else the host name).
        #[arg(long, value_name = "ID")]
        station_id: Option<evidock_verify::id::StationId>,
    },
    /// Show the station ID, its public key and fingerprint, and the custody log.
    Show,
    /// Write the station's public (verifier) key, for trust files and collection records.
    ExportKey {
        /// Write to this file instead of standard output.
        #[arg(long, value_name = "FILE")]
        out: Option<PathBuf>,
    },
    /// Replace the station key (routine renewal, or a key that may be exposed). The custody log
    /// goes on: a `key-rotated` event names the old and the new key and a checkpoint signed by
    /// both seals it, so the log verifies with either. Stop the dock first.
    RotateKey {
        /// Who asks for it (the station administrator's ID).
        #[arg(long, value_name = "ID", value_parser = super::person)]
        by: String,
        /// Why, for the record.
        #[arg(long, value_name = "TEXT")]
        reason: String,
    },
}

#[derive(Serialize)]
struct Show {
    station: String,
    public_key: String,
    fingerprint_sha256: String,
    key_file: PathBuf,
    custody_log: PathBuf,
    events: u64,
    last_checkpoint: u64,
    tsa: Option<String>,
}

pub fn run(ctx: &Ctx, cmd: StationCmd) -> anyhow::Result<u8> {
    if let StationCmd::Init { station_id } = cmd {
        return init(ctx, station_id);
    }
    let st = ctx.station()?;
    let v = evidock_store::key::NoteSigner::verifier(st.key.as_ref()).clone();
    match cmd {
        StationCmd::Show => {
            let (events, last_checkpoint) = st.log.with(|l| (l.size(), l.last_checkpoint()));
            let show = Show {
                station: st.id().to_string(),
                public_key: v.to_string(),
                fingerprint_sha256: v.fingerprint().to_string(),
                key_file: st.key.path().to_path_buf(),
                custody_log: st.log_path(),
                events,
                last_checkpoint,
                tsa: st
                    .settings
                    .tsa
                    .as_ref()
                    .map(crate::config::TsaSettings::url_for_display),
            };
            if ctx.json {
                ctx.print_json(&show)?;
            } else {
                println!("Station:      {}", show.station);
                println!("Public key:   {}", show.public_key);
                println!("Fingerprint:  SHA-256 {}", show.fingerprint_sha256);
                println!("Key file:     {}", show.key_file.display());
                println!(
                    "Custody log:  {} ({} events, last checkpoint at {})",
                    show.custody_log.display(),
                    events,
                    last_checkpoint
                );
                match &show.tsa {
                    Some(u) => println!("Trusted time: RFC 3161 TSA {u}"),
                    None => println!("Trusted time: none configured — local time only"),
                }
            }
        }
        StationCmd::Init { .. } => unreachable!("handled above"),
        StationCmd::RotateKey { by, reason } => return rotate_key(ctx, &st, by, reason),
        StationCmd::ExportKey { out } => {
            let line = format!("{v}\n");
            match out {
                Some(p) => {
                    evidock_store::fsutil::write_atomic(&p, line.as_bytes(), 0o644)?;
                    eprintln!(
                        "wrote the public key of station {} to {}",
                        st.id(),
                        p.display()
                    );
                }
                None => print!("{line}"),
            }
        }
    }
    Ok(exit::OK)
}

fn init(ctx: &Ctx, station_id: Option<evidock_verify::id::StationId>) -> anyhow::Result<u8> {
    let mut settings = ctx.settings.clone();
    if let Some(id) = station_id {
        if let Some(configured) = &settings.station_id
            && configured != &id
        {
            crate::exit::bad_input(format!(
                "--station-id {id} differs from the configuration's station_id {configured}: give one"
            ))?
        }
        settings.station_id = Some(id);
    }
    let st = crate::station::Station::init(&ctx.data_dir, settings)?;
    let v = evidock_store::key::NoteSigner::verifier(st.key.as_ref()).clone();
    if ctx.json {
        ctx.print_json(&serde_json::json!({
            "station": st.id().to_string(),
            "data_dir": st.data_dir,
            "public_key": v.to_string(),
            "fingerprint_sha256": v.fingerprint().to_string(),
        }))?;
    } else {
        println!("Made station {} in {}", st.id(), st.data_dir.display());
        println!("Public key:   {v}");
        println!("Fingerprint:  SHA-256 {}", v.fingerprint());
        println!(
            "Keep a backup of {} where only administrators reach it: without it the custody log cannot go on.",
            st.key.path().display()
        );
    }
    Ok(exit::OK)
}

fn rotate_key(
    ctx: &Ctx,
    st: &crate::station::Station,
    by: String,
    reason: String,
) -> anyhow::Result<u8> {
    use evidock_verify::event::{Actor, Role};
    if by.trim().is_empty() || reason.trim().is_empty() {
        eprintln!("evidock station rotate-key: --by and --reason must not be empty");
        return Ok(exit::USAGE);
    }
    let old = evidock_store::key::NoteSigner::verifier(st.key.as_ref()).clone();
    let (new, handover) = st.rotate_key(
        Actor {
            role: Role::Admin,
            id: by,
        },
        &reason,
    )?;
    if ctx.json {
        ctx.print_json(&serde_json::json!({
            "station": st.id().to_string(),
            "old_key": old.to_string(),
            "old_fingerprint_sha256": old.fingerprint().to_string(),
            "new_key": new.to_string(),
            "new_fingerprint_sha256": new.fingerprint().to_string(),
            "handover_checkpoint": handover,
        }))?;
    } else {
        println!("Station key of {} rotated.", st.id());
        println!("Retired:     {old}");
        println!("             fingerprint SHA-256 {}", old.fingerprint());
        println!("In force:    {new}");
        println!("             fingerprint SHA-256 {}", new.fingerprint());
        println!("Hand-over:   checkpoint {handover}, signed by both keys");
        println!(
            "Record the new fingerprint where the old one is kept (collection records, trust files); \
             the log verifies with either key. Restart the dock."
        );
    }
    Ok(exit::OK)
}
