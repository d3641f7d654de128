//! Lists that page and stream: `--limit N` and `--after ID` on `case list`, `evidence list` and
//! `sessions`. Rows are read from their index a page at a time and printed as they come, so a
//! year's history costs the memory of one page (invariant 6), with or without `--limit`.

use crate::journal::Page;
use clap::Args;
use serde::Serialize;
use std::io::Write;

/// Rows read from the database at a time.
const PAGE: u64 = 512;

#[derive(Debug, Clone, Default, Args)]
pub struct PageArgs {
    /// Print at most this many.
    #[arg(long, value_name = "N")]
    pub limit: Option<u64>,
    /// Start after this one (the last one printed by the previous page), in the list's order.
    #[arg(long, value_name = "ID")]
    pub after: Option<String>,
}

/// Print rows `fetch` reads a page at a time, each page after the last row the one before
/// read: JSON as one array written element by element, text with `text`. Returns how many were
/// printed. The array is closed only when every page was read: a failure part way leaves JSON
/// no parser accepts, never a shorter list that looks whole.
pub fn stream<T: Serialize>(
    json: bool,
    page: &PageArgs,
    mut fetch: impl FnMut(Option<&str>, u64) -> anyhow::Result<Page<T>>,
    mut text: impl FnMut(&mut dyn Write, &T) -> std::io::Result<()>,
) -> anyhow::Result<u64> {
    let mut out = std::io::BufWriter::new(std::io::stdout().lock());
    let mut printed = 0u64;
    let mut after = page.after.clone();
    if json {
        out.write_all(b"[")?;
    }
    loop {
        let want = page.limit.map_or(PAGE, |l| (l - printed).min(PAGE));
        if want == 0 {
            break;
        }
        let got = fetch(after.as_deref(), want)?;
        for row in &got.rows {
            if json {
                out.write_all(if printed == 0 { b"\n" } else { b",\n" })?;
                serde_json::to_writer_pretty(&mut out, row)?;
            } else {
                text(&mut out, row)?;
            }
            printed += 1;
        }
        match got.next {
            Some(next) => after = Some(next),
            None => break,
        }
    }
    if json {
        out.write_all(if printed == 0 { b"]\n" } else { b"\n]\n" })?;
    }
    out.flush()?;
    Ok(printed)
}
