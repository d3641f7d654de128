//! `evidock config check FILE`: parse and validate a configuration without running anything.

use super::Ctx;
use crate::config::Settings;
use crate::exit;
use clap::Subcommand;

#[derive(Debug, Subcommand)]
pub enum ConfigCmd {
    /// Check a configuration file: every key known, every value valid. Errors name the key.
    Check { file: std::path::PathBuf },
}

pub fn run(ctx: &Ctx, cmd: ConfigCmd) -> anyhow::Result<u8> {
    let ConfigCmd::Check { file } = cmd;
    let s = Settings::load(&file)?;
    if let Some(e) = s.store_unusable() {
        Err(e)?
    }
    if ctx.json {
        ctx.print_json(&serde_json::json!({"file": file, "ok": true}))?;
    } else {
        println!(
            "{}: ok — {} camera profile(s), store {}, {}, status page {}",
            file.display(),
            s.profiles.len(),
            s.store
                .as_ref()
                .map(|st| evidock_store::objects::display_url(&st.store.url))
                .unwrap_or_else(|| "local (in the data directory)".into()),
            s.tsa
                .as_ref()
                .map(|t| format!("TSA {}", t.url_for_display()))
                .unwrap_or_else(|| "no TSA (local time only)".into()),
            if s.status.enabled {
                format!("on {}", s.status.listen)
            } else {
                "off".into()
            }
        );
    }
    Ok(exit::OK)
}
