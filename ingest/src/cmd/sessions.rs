//! `evidock sessions`: camera sessions and their states.

use super::Ctx;
use crate::exit;

pub fn run(ctx: &Ctx) -> anyhow::Result<u8> {
    let st = ctx.station()?;
    let rows = st.journal.sessions()?;
    if ctx.json {
        ctx.print_json(&rows)?;
        return Ok(exit::OK);
    }
    println!(
        "{:<34} {:<12} {:<12} {:<11} {:>6} {:>12} {:>6} {:>7}  NOTE",
        "SESSION", "DEVICE", "SLOT", "STATE", "FILES", "BYTES", "FAILED", "SKIPPED"
    );
    for r in rows {
        println!(
            "{:<34} {:<12} {:<12} {:<11} {:>6} {:>12} {:>6} {:>7}  {}",
            r.id.as_str(),
            r.device.as_str(),
            r.slot.as_deref().unwrap_or("-"),
            r.state.as_str(),
            r.files,
            r.bytes,
            r.failed,
            r.skipped,
            r.error.as_deref().unwrap_or("")
        );
    }
    Ok(exit::OK)
}
