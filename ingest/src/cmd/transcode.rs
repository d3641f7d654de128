//! `evidock transcode`: make playback copies and thumbnails — the backlog, or again for named
//! evidence items — then upload them.

use super::Ctx;
use crate::exit;
use crate::transcode::Job;
use clap::Args;

#[derive(Debug, Args)]
pub struct TranscodeArgs {
    /// Work through every acquired recording that has no derivatives yet (the default when no
    /// evidence ID is given).
    #[arg(long, conflicts_with = "evidence")]
    pub pending: bool,
    /// Make the derivatives of these evidence items again (e.g. after a failure was fixed).
    #[arg(value_name = "EVIDENCE")]
    pub evidence: Vec<String>,
    /// Keep derivatives local: do not upload them now.
    #[arg(long)]
    pub no_upload: bool,
}

pub fn run(ctx: &Ctx, args: TranscodeArgs) -> anyhow::Result<u8> {
    let st = ctx.station()?;
    let t = st.transcoder();
    crate::transcode::discard_partials(&st.derivatives);
    let jobs: Vec<Job> = if args.evidence.is_empty() {
        t.run_pending().map_err(anyhow::Error::msg)?
    } else {
        let rows = st.journal.evidence()?;
        let mut jobs = Vec::new();
        for id in &args.evidence {
            let row = rows
                .iter()
                .find(|r| r.id.as_str() == id)
                .ok_or_else(|| crate::exit::BadInput(format!("no acquired evidence item {id}")))?;
            jobs.push(t.run(row));
        }
        jobs
    };
    let uploads = if args.no_upload || jobs.iter().all(|j| j.made.is_empty()) {
        None
    } else {
        Some(st.runtime()?.block_on(st.uploader().run_once()))
    };
    let failed = jobs.iter().filter(|j| j.error.is_some()).count();
    if ctx.json {
        ctx.print_json(&serde_json::json!({ "jobs": jobs, "uploads": uploads }))?;
    } else {
        print_jobs(&jobs);
        if let Some(u) = &uploads {
            eprintln!(
                "uploaded and read back: {} derivative object(s); {} waiting to retry, {} failed",
                u.uploaded.len(),
                u.retrying.len(),
                u.failed.len()
            );
        }
    }
    Ok(if failed > 0 { exit::FINDINGS } else { exit::OK })
}

/// One line per job, for people.
pub fn print_jobs(jobs: &[Job]) {
    if jobs.is_empty() {
        eprintln!("transcode: nothing pending");
    }
    for j in jobs {
        match &j.error {
            None => eprintln!(
                "{}  {:<9} {}  → {}{}",
                j.evidence,
                j.mode.as_deref().unwrap_or("-"),
                j.path,
                j.made
                    .iter()
                    .map(|m| format!("{:?} {} ({} B)", m.role, m.format, m.size))
                    .collect::<Vec<_>>()
                    .join(", "),
                j.salvaged_with
                    .as_ref()
                    .map(|w| format!("  [salvaged with the parameters of {w}]"))
                    .unwrap_or_default()
            ),
            Some(e) => eprintln!("{}  FAILED    {}: {e}", j.evidence, j.path),
        }
    }
}
