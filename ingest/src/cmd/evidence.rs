//! `evidock evidence`: evidence items.

use super::Ctx;
use crate::exit;
use clap::Subcommand;

#[derive(Debug, Subcommand)]
pub enum EvidenceCmd {
    /// List acquired evidence items (JSON: an array of objects with `id`, `sha256`, …).
    List,
}

pub fn run(ctx: &Ctx, cmd: EvidenceCmd) -> anyhow::Result<u8> {
    match cmd {
        EvidenceCmd::List => {
            let st = ctx.station()?;
            let rows = st.journal.evidence()?;
            if ctx.json {
                ctx.print_json(&rows)?;
            } else {
                for r in rows {
                    println!(
                        "{}  {}  {:>12}  {:<10} {:<8} {:<20} {}{}",
                        r.id,
                        r.sha256,
                        r.size,
                        r.device.as_str(),
                        r.officer.as_deref().unwrap_or("-"),
                        r.recorded.as_deref().unwrap_or("-"),
                        r.path,
                        if r.important { "  [重要]" } else { "" }
                    );
                }
            }
        }
    }
    Ok(exit::OK)
}
