//! `evidock export`: a case's disclosure package.

use super::Ctx;
use crate::exit;
use clap::Args;
use std::path::PathBuf;

#[derive(Debug, Args)]
pub struct ExportArgs {
    /// The case ID as the register writes it.
    #[arg(long)]
    pub case: String,
    /// The package directory to create (it must not exist).
    #[arg(long)]
    pub out: PathBuf,
    /// Also write `<out>.zip` (the court's copy; `evidock-verify` checks the unzipped folder).
    #[arg(long)]
    pub zip: bool,
    /// Who exports (recorded in the `exported` custody event).
    #[arg(long, value_parser = super::person)]
    pub by: String,
    /// The witness (见证人) of the collection, printed in the collection record (name and ID).
    #[arg(long, value_parser = super::person)]
    pub witness: Option<String>,
}

pub fn run(ctx: &Ctx, args: ExportArgs) -> anyhow::Result<u8> {
    let st = ctx.station()?;
    let interrupt = super::interrupt::Interrupt::watch("export")?;
    let cases = st.cases()?;
    // Trusted time for what is about to be sealed, when a TSA is configured; the package says
    // so when it is not reached.
    st.log.seal(evidock_store::checkpoints::Moment::Export)?;
    if let Some(client) = st.tsa_client()? {
        let run = st
            .runtime()?
            .block_on(evidock_store::timestamping::timestamp_pending(
                &st.log, &client, 100,
            ))?;
        if let Some(e) = run.failure {
            eprintln!(
                "warning: the TSA was not reached ({e}); the newest events carry station time only"
            );
        }
    }
    if args.zip {
        crate::export::check_zip_free(&st, &args.out)?;
    }
    let stopped = || interrupt.code().is_some();
    let mut done = match crate::export::export(
        &st,
        &cases,
        &args.case,
        &args.out,
        &args.by,
        args.witness.as_deref(),
        &stopped,
    ) {
        Err(crate::export::ExportError::Stopped) => {
            eprintln!("evidock export: {}", crate::export::ExportError::Stopped);
            return Ok(interrupt.code().unwrap_or(exit::INTERRUPTED));
        }
        // Released by an export cut off before its zip: only the zip is left to make.
        Err(crate::export::ExportError::Exists(_)) if args.zip => {
            let case = cases.view(&args.case)?.entry.record.case.clone();
            crate::export::released_without_zip(&st, &case, &args.out)?
        }
        r => r?,
    };
    if args.zip {
        done.zip = Some(crate::export::zip_released(
            &st,
            &args.out,
            &done.manifest_sha256,
        )?);
    }
    if ctx.json {
        ctx.print_json(&done)?;
    } else {
        eprintln!(
            "disclosure package {}: {} original(s), {} derivative(s), {} custody event(s), {} file(s), {} bytes",
            done.package.display(),
            done.originals,
            done.derivatives,
            done.events,
            done.files,
            done.bytes
        );
        eprintln!(
            "manifest SHA-256 {} (recorded as an `exported` custody event)",
            done.manifest_sha256
        );
        if let Some(z) = &done.zip {
            eprintln!("zip: {}", z.display());
        }
        for w in &done.warnings {
            eprintln!("warning: {w}");
        }
        eprintln!(
            "print collection-record.html and have it signed at hand-over: the receiver pins the station key fingerprint and the checkpoint it prints, then checks offline with evidock-verify {} --trust trust.toml",
            done.package.display()
        );
    }
    Ok(exit::OK)
}
