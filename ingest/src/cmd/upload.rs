//! `evidock upload`: send what the queue holds to the evidence store, read each object back,
//! and publish the custody log.

use super::Ctx;
use crate::exit;
use clap::Args;

#[derive(Debug, Args)]
pub struct UploadArgs {
    /// Put uploads that failed permanently back in the queue first (after fixing the cause).
    #[arg(long)]
    pub retry_failed: bool,
}

pub fn run(ctx: &Ctx, args: UploadArgs) -> anyhow::Result<u8> {
    let st = ctx.station()?;
    if args.retry_failed {
        let n = st.journal.retry_failed_uploads()?;
        eprintln!("{n} failed upload(s) queued again");
    }
    let uploader = st.uploader();
    let run = super::runtime()?.block_on(uploader.run_now());
    if ctx.json {
        ctx.print_json(&run)?;
    } else {
        eprintln!(
            "{} uploaded and read back, {} waiting to retry, {} failed; custody log published to {} event(s) at {}",
            run.uploaded.len(),
            run.retrying.len(),
            run.failed.len(),
            run.published,
            st.store.url()
        );
        for (ev, role, e) in run.retrying.iter().chain(&run.failed) {
            eprintln!("  {ev} {role}: {e}");
        }
        if run.outside_window {
            eprintln!("outside the upload windows: nothing sent");
        }
        if let Some(e) = &run.publish_error {
            eprintln!("custody log not published: {e}");
        }
    }
    Ok(
        if run.failed.is_empty() && run.retrying.is_empty() && run.publish_error.is_none() {
            exit::OK
        } else if run.failed.is_empty() {
            exit::FAILED
        } else {
            exit::FINDINGS
        },
    )
}
