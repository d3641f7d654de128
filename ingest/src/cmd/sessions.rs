//! `evidock sessions`: camera sessions and their states, in the order they docked, paged.

use super::Ctx;
use super::page::{self, PageArgs};
use crate::exit;

pub fn run(ctx: &Ctx, paging: &PageArgs) -> anyhow::Result<u8> {
    let st = ctx.station()?;
    if let Some(a) = &paging.after
        && !st.journal.has_session(a)?
    {
        crate::exit::bad_input(format!(
            "--after {a}: no such session (give the last session of the previous page)"
        ))?;
    }
    if !ctx.json {
        println!(
            "{:<34} {:<12} {:<12} {:<11} {:>6} {:>12} {:>6} {:>7}  NOTE",
            "SESSION", "DEVICE", "SLOT", "STATE", "FILES", "BYTES", "FAILED", "SKIPPED"
        );
    }
    page::stream(
        ctx.json,
        paging,
        |after, n| Ok(st.journal.sessions_page(after, n)?),
        |out, r| {
            writeln!(
                out,
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
            )
        },
    )?;
    Ok(exit::OK)
}
