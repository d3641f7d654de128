//! `evidock retention`: categories, what is due for disposal, and disposal itself — always an
//! explicit, logged action (or `[retention] auto_dispose`, which the dock runs).

use super::Ctx;
use crate::cases::{Cases, Disposal};
use crate::exit;
use crate::station::Station;
use clap::Subcommand;
use evidock_verify::event::{Actor, Role};
use evidock_verify::id::EvidenceId;

#[derive(Debug, Subcommand)]
pub enum RetentionCmd {
    /// The configured categories and how long each keeps evidence.
    Categories,
    /// Evidence whose retention has passed, linked to no case and not on legal hold.
    Due,
    /// Dispose of evidence that is due: a `disposed` custody event first, then its copies in
    /// the store and on this station are removed (content another item still holds is kept).
    Dispose {
        /// Evidence IDs (each must be due).
        #[arg(required_unless_present = "all_due")]
        evidence: Vec<String>,
        /// Every item `evidock retention due` lists.
        #[arg(long, conflicts_with = "evidence")]
        all_due: bool,
        #[arg(long, value_parser = super::person)]
        by: String,
        #[arg(long)]
        reason: String,
    },
}

pub fn run(ctx: &Ctx, cmd: RetentionCmd) -> anyhow::Result<u8> {
    let st = ctx.station()?;
    let cases = st.cases()?;
    match cmd {
        RetentionCmd::Categories => {
            let r = &cases.retention;
            if ctx.json {
                ctx.print_json(&serde_json::json!({
                    "default_category": r.default_category,
                    "auto_dispose": r.auto_dispose,
                    "categories": r.categories,
                }))?;
            } else {
                for (name, days) in &r.categories {
                    println!(
                        "{name}  {}{}",
                        match days {
                            Some(d) => format!("{d} days from the recording"),
                            None => "kept until a person changes the category".into(),
                        },
                        if *name == r.default_category {
                            "  (default)"
                        } else {
                            ""
                        }
                    );
                }
                println!("evidence linked to a case is kept permanently, whatever its category");
            }
            Ok(exit::OK)
        }
        RetentionCmd::Due => {
            let due = cases.due()?;
            if ctx.json {
                ctx.print_json(&due)?;
            } else {
                if due.is_empty() {
                    eprintln!("nothing is due for disposal");
                }
                for d in &due {
                    println!(
                        "{}  {}  {}  {}  until {}",
                        d.item.evidence,
                        d.retention.category,
                        d.item.device.as_str(),
                        d.item.path,
                        d.retention
                            .retain_until
                            .map(|t| t.local(cases.offset).format("%Y-%m-%d").to_string())
                            .unwrap_or_default()
                    );
                }
            }
            Ok(exit::OK)
        }
        RetentionCmd::Dispose {
            evidence,
            all_due,
            by,
            reason,
        } => {
            let ids: Vec<EvidenceId> = if all_due {
                cases.due()?.into_iter().map(|d| d.item.evidence).collect()
            } else {
                evidence
                    .into_iter()
                    .map(EvidenceId::new)
                    .collect::<Result<_, _>>()?
            };
            let actor = Actor {
                role: Role::Admin,
                id: by,
            };
            let done = dispose(&st, &cases, &ids, actor, &reason)?;
            let failed = done.iter().any(|d| !d.errors.is_empty());
            if ctx.json {
                ctx.print_json(&done)?;
            } else {
                for d in &done {
                    eprintln!(
                        "{} {} (custody event): {} cop(ies) removed{}",
                        if d.resumed {
                            "finished the disposal, cut off earlier, of"
                        } else {
                            "disposed of"
                        },
                        d.evidence,
                        d.removed.len(),
                        if d.shared.is_empty() {
                            String::new()
                        } else {
                            format!(
                                ", {} kept (another item holds the same content)",
                                d.shared.len()
                            )
                        }
                    );
                    for e in &d.errors {
                        eprintln!("  not removed: {e}");
                    }
                }
            }
            Ok(if failed { exit::FINDINGS } else { exit::OK })
        }
    }
}

/// Record and carry out the disposal of `ids`. Each must be due; the first that is not stops
/// the run before anything of it is recorded.
pub fn dispose(
    st: &Station,
    cases: &Cases,
    ids: &[EvidenceId],
    actor: Actor,
    reason: &str,
) -> anyhow::Result<Vec<Disposal>> {
    let rt = st.runtime()?;
    let mut out = Vec::new();
    let _turn = cases.disposal_turn()?;
    // Disposals an earlier run recorded and did not finish: their copies first.
    for item in cases.unfinished_disposals()? {
        let mut d =
            rt.block_on(cases.remove_copies(&item, &st.store, &[&st.spool, &st.derivatives]))?;
        d.resumed = true;
        out.push(d);
    }
    let resumed: Vec<EvidenceId> = out.iter().map(|d| d.evidence.clone()).collect();
    for id in ids.iter().filter(|id| !resumed.contains(id)) {
        let item = cases.record_disposal(id, actor.clone(), reason)?;
        out.push(rt.block_on(cases.remove_copies(
            &item,
            &st.store,
            &[&st.spool, &st.derivatives],
        ))?);
    }
    Ok(out)
}
