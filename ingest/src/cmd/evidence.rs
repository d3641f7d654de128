//! `evidock evidence`: evidence items — list, show (record, links, retention, custody history),
//! and set a category.

use super::Ctx;
use crate::exit;
use clap::Subcommand;
use evidock_verify::event::{CustodyEvent, Subject};
use evidock_verify::id::{EvidenceId, SessionId};
use serde::Serialize;

#[derive(Debug, Subcommand)]
pub enum EvidenceCmd {
    /// List acquired evidence items (JSON: an array of objects with `id`, `sha256`, …).
    List,
    /// One item: what was acquired, its case links, category and retention, the objects in
    /// the store, and every custody event about it.
    Show {
        /// The evidence ID (ev-…).
        evidence: String,
    },
    /// Change an item's category, and so its retention. A custody event with who and why;
    /// evidence linked to a case stays permanent whatever its category.
    SetCategory {
        evidence: String,
        /// One of the configured categories (`[retention]`; default 未分类, 日常执法, 案件证据).
        category: String,
        #[arg(long)]
        by: String,
        #[arg(long)]
        reason: String,
    },
}

#[derive(Debug, Serialize)]
struct Shown {
    item: crate::cases::index::Item,
    retention: crate::cases::Retention,
    links: Vec<crate::cases::index::Link>,
    objects: Vec<ShownObject>,
    custody: Vec<CustodyEvent>,
}

#[derive(Debug, Serialize)]
struct ShownObject {
    #[serde(flatten)]
    object: crate::cases::index::StoredObject,
    /// `on` / `off` as applied to the store, `not-enforced` by a store without Object Lock.
    legal_hold: Option<&'static str>,
}

pub fn run(ctx: &Ctx, cmd: EvidenceCmd) -> anyhow::Result<u8> {
    match cmd {
        EvidenceCmd::List => {
            let st = ctx.station()?;
            let rows = st.journal.evidence()?;
            if ctx.json {
                ctx.print_json(&rows)?;
            } else {
                for r in rows {
                    println!(
                        "{}  {}  {:>12}  {:<10} {:<8} {:<20} {}{}",
                        r.id,
                        r.sha256,
                        r.size,
                        r.device.as_str(),
                        r.officer.as_deref().unwrap_or("-"),
                        r.recorded.as_deref().unwrap_or("-"),
                        r.path,
                        if r.important { "  [重要]" } else { "" }
                    );
                }
            }
        }
        EvidenceCmd::Show { evidence } => {
            let st = ctx.station()?;
            let cases = st.cases()?;
            cases.catch_up()?;
            let id = EvidenceId::new(evidence)?;
            let item = cases.item(&id)?;
            let retention = cases.recorded(&item);
            let links = cases.index.links_of_item(&id)?;
            let mut objects = Vec::new();
            for o in cases.index.objects(&id)? {
                let legal_hold =
                    cases
                        .index
                        .hold_state(&o.key)?
                        .map(|(on, enforced)| match (on, enforced) {
                            (_, false) => "not-enforced",
                            (true, true) => "on",
                            (false, true) => "off",
                        });
                objects.push(ShownObject {
                    object: o,
                    legal_hold,
                });
            }
            let session = SessionId::new(item.session.clone()).ok();
            let mut custody = Vec::new();
            st.log.with(|l| {
                l.for_each_event(|e| {
                    let about = match &e.subject {
                        Subject::Evidence(x) => *x == id,
                        Subject::Session(s) => Some(s) == session.as_ref(),
                        _ => false,
                    } || e.payload.to_string().contains(id.as_str());
                    if about {
                        custody.push(e);
                    }
                })
            })?;
            let shown = Shown {
                item,
                retention,
                links,
                objects,
                custody,
            };
            if ctx.json {
                ctx.print_json(&shown)?;
            } else {
                print_shown(&shown, &cases);
            }
        }
        EvidenceCmd::SetCategory {
            evidence,
            category,
            by,
            reason,
        } => {
            let st = ctx.station()?;
            let cases = st.cases()?;
            let id = EvidenceId::new(evidence)?;
            match cases.set_category(&id, &category, &by, &reason)? {
                None => eprintln!("{id} is already {category:?}; nothing changed"),
                Some((before, after)) => {
                    let until = |r: &crate::cases::Retention| match r.retain_until {
                        Some(t) => {
                            format!("kept until {}", t.local(cases.offset).format("%Y-%m-%d"))
                        }
                        None => "kept".to_string(),
                    };
                    if ctx.json {
                        ctx.print_json(&serde_json::json!({"before": before, "after": after}))?;
                    } else {
                        eprintln!(
                            "{id}: {} ({}) → {} ({}) (custody event)",
                            before.category,
                            until(&before),
                            after.category,
                            until(&after)
                        );
                    }
                }
            }
        }
    }
    Ok(exit::OK)
}

fn print_shown(s: &Shown, cases: &crate::cases::Cases) {
    let i = &s.item;
    let t = |d: chrono::DateTime<chrono::Utc>| {
        d.with_timezone(&cases.offset.0)
            .format("%Y-%m-%d %H:%M:%S%:z")
            .to_string()
    };
    println!("evidence   {}", i.evidence);
    println!("sha256     {}", i.sha256);
    println!("size       {}", i.size);
    println!(
        "camera     {}  officer {} ({})",
        i.device.as_str(),
        i.officer.as_deref().unwrap_or("-"),
        i.officer_source.as_deref().unwrap_or("-")
    );
    println!("path       {}", i.path);
    println!(
        "recorded   {} (camera said {}; {})",
        i.start.map(t).unwrap_or_else(|| "-".into()),
        i.recorded_raw.as_deref().unwrap_or("-"),
        i.time_rule.as_deref().unwrap_or("-")
    );
    println!(
        "acquired   {} at station {} (event #{})",
        t(i.acquired_at),
        i.station,
        i.seq
    );
    println!(
        "category   {}  {}{}",
        s.retention.category,
        match s.retention.retain_until {
            Some(u) => format!("kept until {}", t(u.0)),
            None => "kept (no expiry)".into(),
        },
        if s.retention.legal_hold {
            "  LEGAL HOLD"
        } else {
            ""
        }
    );
    if let Some(d) = i.disposed_at {
        println!("DISPOSED   {}", t(d));
    }
    for l in &s.links {
        println!(
            "case       {}  {}{} — {} ({})",
            l.case,
            if l.linked { "linked" } else { "unlinked" },
            if l.review { " [review]" } else { "" },
            l.reason,
            l.actor
        );
    }
    for o in &s.objects {
        println!(
            "object     {:<13} {}{}",
            o.object.role,
            o.object.key,
            o.legal_hold
                .map(|h| format!("  legal hold: {h}"))
                .unwrap_or_default()
        );
    }
    println!("custody    ({} events)", s.custody.len());
    for e in &s.custody {
        println!(
            "  #{:<6} {}  {:<18} by {}",
            e.seq,
            e.local_time().format("%Y-%m-%d %H:%M:%S%:z"),
            e.kind,
            e.actor.id
        );
    }
}
