//! `evidock verify`: a legal reviewer's check of the station and its evidence store.

use super::Ctx;
use crate::exit;
use crate::review::{self, Scope};
use clap::Args;
use evidock_verify::event::payload::VerifiedPayload;
use evidock_verify::event::{Actor, NewEvent, Role, Subject};
use evidock_verify::finding::Level;
use evidock_verify::id::{CaseId, EvidenceId, Sha256};

#[derive(Debug, Args)]
pub struct VerifyArgs {
    /// Every evidence item (the default without --case or EVIDENCE).
    #[arg(long, conflicts_with_all = ["case", "evidence"])]
    pub all: bool,
    /// The items linked to this case.
    #[arg(long, conflicts_with = "evidence")]
    pub case: Option<String>,
    /// These items.
    pub evidence: Vec<String>,
    /// Who checks (recorded in the `verified` custody event).
    #[arg(long, value_parser = super::person)]
    pub by: String,
    /// No progress lines.
    #[arg(long, short)]
    pub quiet: bool,
}

pub fn run(ctx: &Ctx, args: VerifyArgs) -> anyhow::Result<u8> {
    let st = ctx.station()?;
    let cases = st.cases()?;
    let scope = match (&args.case, args.evidence.is_empty()) {
        (Some(c), _) => Scope::Case(cases.case(c)?.record.case.to_string()),
        (None, false) => Scope::Items(
            args.evidence
                .iter()
                .map(|e| EvidenceId::new(e.as_str()))
                .collect::<Result<_, _>>()?,
        ),
        (None, true) => Scope::All,
    };
    let trust = super::log::station_trust(&st)?;
    let quiet = args.quiet || ctx.json;
    let interrupt = super::interrupt::Interrupt::watch("verify")?;
    let mut checked = 0;
    let r = review::review(&st, &cases, &scope, &trust, |done, total, bytes| {
        checked = done;
        if !quiet && (done == total || done % 10 == 0) {
            eprintln!(
                "checked {done}/{total} item(s), {} MiB re-read",
                bytes >> 20
            );
        }
        interrupt.code().is_none()
    })?;
    let Some(r) = r else {
        // No `verified` event for a check that did not finish: the items checked are kept,
        // and the same command resumes after them.
        eprintln!(
            "stopped after {checked} item(s): nothing is recorded for an unfinished check; run the same `evidock verify` again to resume after them"
        );
        return Ok(interrupt.code().unwrap_or(exit::INTERRUPTED));
    };
    let errors = r.report.count(Level::Error) as u64;
    let warnings = r.report.count(Level::Warning) as u64;
    let result = match (errors, warnings) {
        (0, 0) => "passed",
        (0, _) => "passed-with-warnings",
        _ => "failed",
    };
    let json = serde_json::to_vec(&r)?;
    let subject = match &scope {
        Scope::Case(c) => Subject::Case(CaseId::new(c.as_str())?),
        Scope::Items(ids) if ids.len() == 1 => Subject::Evidence(ids[0].clone()),
        _ => Subject::Station(st.id().clone()),
    };
    let ev = st.log.append(NewEvent::new(
        Actor {
            role: Role::Reviewer,
            id: args.by.clone(),
        },
        subject,
        format!(
            "verified/{}/{}",
            st.clock.now().timestamp_millis(),
            Sha256::digest(&json)
        ),
        &VerifiedPayload {
            scope: r.scope.clone(),
            result: result.into(),
            items: r.items,
            errors,
            warnings,
            report_sha256: Some(Sha256::digest(&json)),
        },
    )?)?;
    if ctx.json {
        ctx.print_json(&serde_json::json!({
            "result": result,
            "review": r,
            "verified_event": ev.event.seq,
        }))?;
    } else {
        for f in &r.report.findings {
            println!("  {f}");
        }
        if r.resumed > 0 {
            println!(
                "(resumed: {} item(s) were checked by the interrupted run)",
                r.resumed
            );
        }
        println!(
            "{result}: {} item(s), {} bytes re-read; {errors} error(s), {warnings} warning(s) — recorded as custody event #{}",
            r.items, r.bytes, ev.event.seq
        );
    }
    Ok(if errors > 0 { exit::FINDINGS } else { exit::OK })
}
