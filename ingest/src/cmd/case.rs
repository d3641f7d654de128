//! `evidock case`: the case register — import it, list and show cases with their footage and
//! gaps. `evidock link` / `evidock unlink`: a person's links.

use super::Ctx;
use crate::cases::register::{Format, RegisterError};
use crate::cases::{CaseError, CaseView, Cases};
use crate::exit;
use crate::station::Station;
use anyhow::Context as _;
use clap::{Args, Subcommand};
use evidock_verify::id::{CaseId, EvidenceId};
use std::path::PathBuf;

#[derive(Debug, Subcommand)]
pub enum CaseCmd {
    /// Import a case register export (CSV or JSON). Every row is checked first: one bad row and
    /// nothing is imported. New and changed cases are recorded as custody events, then
    /// recordings are linked to them by officer and time.
    Import {
        /// The export. CSV columns: case_id,case_type,title,unit,officers,window_start,
        /// window_end,place[,status] (officers separated by `;`, one row per window).
        file: PathBuf,
        /// Default: from the file's extension.
        #[arg(long, value_enum)]
        format: Option<Format>,
        /// Who imports (recorded in the custody log).
        #[arg(long, value_parser = super::person)]
        by: String,
    },
    /// Every case, in the order of case IDs: status, windows, linked evidence, items to review,
    /// windows without footage.
    List(super::page::PageArgs),
    /// One case: its windows (and which have no footage), officers, linked evidence.
    Show {
        /// The case ID as the register writes it, e.g. 晋应急罚〔2023〕102号.
        case: String,
    },
}

/// `evidock link` and `evidock unlink`.
#[derive(Debug, Args)]
pub struct LinkArgs {
    /// The evidence item (ev-…).
    pub evidence: String,
    /// The case ID.
    pub case: String,
    /// Who makes the change (recorded in the custody log).
    #[arg(long, value_parser = super::person)]
    pub by: String,
    /// Why (recorded in the custody log).
    #[arg(long)]
    pub reason: String,
}

pub fn run(ctx: &Ctx, cmd: CaseCmd) -> anyhow::Result<u8> {
    let st = ctx.station()?;
    let cases = st.cases()?;
    match cmd {
        CaseCmd::Import { file, format, by } => import(ctx, &st, &cases, &file, format, &by),
        CaseCmd::List(paging) => {
            if let Some(a) = &paging.after
                && cases.index.case(&CaseId::new(a.clone())?)?.is_none()
            {
                crate::exit::bad_input(format!(
                    "--after {a}: no such case in the register (give the last case of the previous page)"
                ))?;
            }
            let shown = super::page::stream(
                ctx.json,
                &paging,
                |after, n| Ok(cases.list_page(after, n)?),
                |out, c| {
                    writeln!(
                        out,
                        "{}  {:<6}  {:<8}  {} window(s), {} evidence, {} to review, {} without footage  {}",
                        c.case,
                        c.status.as_str(),
                        c.case_type,
                        c.windows,
                        c.evidence,
                        c.review,
                        c.gaps,
                        c.title
                    )
                },
            )?;
            if shown == 0 && !ctx.json && paging.after.is_none() {
                eprintln!("no cases: import the case register with `evidock case import FILE`");
            }
            Ok(exit::OK)
        }
        CaseCmd::Show { case } => {
            let v = cases.view(&case).map_err(anyhow::Error::from)?;
            if ctx.json {
                ctx.print_json(&v)?;
            } else {
                print_view(&cases, &v);
            }
            Ok(exit::OK)
        }
    }
}

fn import(
    ctx: &Ctx,
    st: &Station,
    cases: &Cases,
    file: &std::path::Path,
    format: Option<Format>,
    by: &str,
) -> anyhow::Result<u8> {
    let name = file
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    let format = match format.or_else(|| Format::of(&name)) {
        Some(f) => f,
        None => crate::exit::bad_input(format!(
            "{}: say --format csv or --format json",
            file.display()
        ))?,
    };
    let bytes = fs_err::read(file).with_context(|| format!("reading {}", file.display()))?;
    let report = match cases.import(&name, &bytes, format, by) {
        Ok(r) => r,
        Err(CaseError::Register(e)) => return refused(ctx, &e),
        Err(e) => return Err(e.into()),
    };
    report_holds(sync_holds(st, cases));
    if ctx.json {
        ctx.print_json(&report)?;
    } else {
        eprintln!(
            "{}: {} case(s): {} new, {} changed, {} unchanged (custody events for each new or changed case)",
            report.file,
            report.cases,
            report.added.len(),
            report.updated.len(),
            report.unchanged
        );
        for l in &report.linked {
            eprintln!(
                "linked {} → {}{}",
                l.evidence,
                l.case,
                if l.review {
                    "  [review: matches more than one case]"
                } else {
                    ""
                }
            );
        }
        for l in &report.no_longer_matching {
            eprintln!(
                "kept: {} → {} no longer matches the case as registered now; `evidock unlink` it if it does not belong",
                l.evidence, l.case
            );
        }
        if report.retention_changes > 0 {
            eprintln!("retention changed for {} item(s)", report.retention_changes);
        }
    }
    Ok(exit::OK)
}

fn refused(ctx: &Ctx, e: &RegisterError) -> anyhow::Result<u8> {
    if ctx.json {
        ctx.print_json(e)?;
    } else {
        eprintln!("evidock: {e}");
    }
    Ok(exit::USAGE)
}

/// Apply legal holds to the store now; a store that cannot be reached is retried by the next
/// upload pass (the hold is recorded in the custody log either way).
pub(crate) fn sync_holds(st: &Station, cases: &Cases) -> anyhow::Result<u64> {
    st.runtime()?.block_on(cases.sync_holds(&st.store))
}

pub(crate) fn report_holds(r: anyhow::Result<u64>) {
    match r {
        Ok(0) => {}
        Ok(n) => eprintln!("legal hold updated on {n} store object(s)"),
        Err(e) => eprintln!(
            "warning: legal hold not applied to the store yet ({e:#}); the next upload pass retries"
        ),
    }
}

/// Link new recordings to cases; a failure is reported and retried at the next acquisition or
/// import (the recordings are acquired whatever happens here).
pub(crate) fn auto_link(cases: &Cases, quiet: bool) -> Vec<crate::cases::LinkMade> {
    match cases.auto_link() {
        Ok(made) => {
            if !quiet {
                for l in &made {
                    eprintln!(
                        "linked {} → case {}{}",
                        l.evidence,
                        l.case,
                        if l.review {
                            "  [review: matches more than one case]"
                        } else {
                            ""
                        }
                    );
                }
            }
            made
        }
        Err(e) => {
            tracing::error!(error = %e, "automatic linking to cases failed; retried at the next acquisition");
            if !quiet {
                eprintln!("warning: automatic linking to cases failed: {e}");
            }
            Vec::new()
        }
    }
}

fn print_view(cases: &Cases, v: &CaseView) {
    let r = &v.entry.record;
    let show = |t: &evidock_verify::event::Timestamp| {
        t.local(cases.offset).format("%Y-%m-%d %H:%M").to_string()
    };
    println!("case      {}", r.case);
    println!("type      {}", r.case_type);
    println!("title     {}", r.title);
    println!("unit      {}", r.unit);
    println!("place     {}", r.place);
    println!("status    {}", r.status.as_str());
    println!(
        "officers  {}",
        r.officers
            .iter()
            .map(|o| o.as_str())
            .collect::<Vec<_>>()
            .join(", ")
    );
    println!(
        "register  {} (registered {} time(s), last {})",
        v.entry.source,
        v.entry.registrations,
        show(&evidock_verify::event::Timestamp::from_datetime(
            v.entry.registered_at
        ))
    );
    println!("windows   ({} without footage)", v.gaps);
    for w in &v.windows {
        let who = if w.officers_without_footage.is_empty() {
            String::new()
        } else {
            format!(
                "; no footage from {}",
                w.officers_without_footage
                    .iter()
                    .map(|o| o.as_str())
                    .collect::<Vec<_>>()
                    .join(", ")
            )
        };
        println!(
            "  {} – {}  {}{}",
            show(&w.start),
            show(&w.end),
            if w.gap {
                "NO FOOTAGE".to_string()
            } else {
                format!("{} recording(s)", w.recordings)
            },
            who
        );
    }
    println!("evidence  ({})", v.evidence.len());
    for l in &v.evidence {
        let i = &l.item;
        println!(
            "  {}  {}  {:<10} {:<10} {}  {}{}",
            i.evidence,
            i.start
                .map(|t| show(&evidock_verify::event::Timestamp::from_datetime(t)))
                .unwrap_or_else(|| "-".into()),
            i.device.as_str(),
            i.officer.as_deref().unwrap_or("-"),
            i.path,
            if l.link.automatic { "auto" } else { "manual" },
            if l.link.review { "  [review]" } else { "" }
        );
    }
    if !v.unlinked.is_empty() {
        println!("unlinked  ({})", v.unlinked.len());
        for l in &v.unlinked {
            println!("  {}  by {}: {}", l.evidence, l.actor, l.reason);
        }
    }
}

pub fn link(ctx: &Ctx, args: LinkArgs, unlink: bool) -> anyhow::Result<u8> {
    let st = ctx.station()?;
    let cases = st.cases()?;
    let ev = EvidenceId::new(args.evidence.clone())?;
    let out = if unlink {
        Some(cases.unlink(&ev, &args.case, &args.by, &args.reason)?)
    } else {
        cases.link(&ev, &args.case, &args.by, &args.reason)?
    };
    report_holds(sync_holds(&st, &cases));
    if ctx.json {
        ctx.print_json(&out)?;
    } else {
        match (&out, unlink) {
            (None, _) => eprintln!("{ev} is already linked to {}", args.case),
            (Some(l), false) => eprintln!("linked {} → {} (custody event)", l.evidence, l.case),
            (Some(l), true) => eprintln!(
                "unlinked {} from {} (custody event; nothing deleted, automatic linking will not link it again)",
                l.evidence, l.case
            ),
        }
    }
    Ok(exit::OK)
}
