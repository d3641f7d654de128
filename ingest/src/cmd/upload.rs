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
    if let Some(e) = ctx.settings.store_unusable() {
        Err(e)?
    }
    let st = ctx.station()?;
    if args.retry_failed {
        let n = st.journal.retry_failed_uploads()?;
        eprintln!("{n} failed upload(s) queued again");
    }
    let uploader = st.uploader();
    let interrupt = super::interrupt::Interrupt::watch("upload")?;
    // Stopped, the pass is dropped at its next await: an object half sent resumes from its
    // recorded parts, and nothing counts as uploaded before its read-back is recorded.
    let stopped = {
        let interrupt = interrupt.clone();
        async move {
            while interrupt.code().is_none() {
                tokio::time::sleep(std::time::Duration::from_millis(100)).await;
            }
        }
    };
    let run = st.runtime()?.block_on(async {
        tokio::select! {
            run = uploader.run_now() => Some(run),
            () = stopped => None,
        }
    });
    let Some(run) = run else {
        let queued = st
            .journal
            .due_uploads(st.clock.now() + chrono::Duration::days(3650), 100_000)
            .map(|d| d.len())
            .unwrap_or(0);
        eprintln!(
            "stopped: every upload recorded as read back is kept; {queued} object(s) still queued — `evidock upload` sends them (a multipart upload resumes from its recorded parts)"
        );
        return Ok(interrupt.code().unwrap_or(exit::INTERRUPTED));
    };
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
