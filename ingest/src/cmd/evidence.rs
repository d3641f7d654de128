//! `evidock evidence`: evidence items — list, show (record, links, retention, custody history),
//! and set a category.

use super::Ctx;
use crate::exit;
use anyhow::Context as _;
use clap::Subcommand;
use evidock_verify::event::payload::{AccessedPayload, ObjectRole, TranscodedPayload};
use evidock_verify::event::{Actor, CustodyEvent, EventKind, NewEvent, Role, Subject};
use evidock_verify::id::{EvidenceId, Sha256};
use serde::Serialize;

#[derive(Debug, Subcommand)]
pub enum EvidenceCmd {
    /// List acquired evidence items in acquisition order (JSON: an array of objects with `id`,
    /// `sha256`, …).
    List(super::page::PageArgs),
    /// One item: what was acquired, its case links, category and retention, the objects in
    /// the store, and every custody event about it.
    Show {
        /// The evidence ID (ev-…).
        evidence: String,
    },
    /// Fetch an item to watch it: the original (or with --derivative its playback copy), from
    /// this station's spool or the evidence store, checked against its SHA-256. Logged first as
    /// an `accessed` custody event with who and why.
    Get {
        evidence: String,
        /// Where to write it (must not exist).
        #[arg(long)]
        out: std::path::PathBuf,
        /// The playback copy (H.264/AAC MP4) instead of the original.
        #[arg(long)]
        derivative: bool,
        #[arg(long, value_parser = super::person)]
        by: String,
        /// Why (e.g. 法制审核, 行政复议答辩).
        #[arg(long)]
        purpose: Option<String>,
    },
    /// Change an item's category, and so its retention. A custody event with who and why;
    /// evidence linked to a case stays permanent whatever its category.
    SetCategory {
        evidence: String,
        /// One of the configured categories (`[retention]`; default 未分类, 日常执法, 案件证据).
        category: String,
        #[arg(long, value_parser = super::person)]
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
        EvidenceCmd::List(paging) => {
            let st = ctx.station()?;
            if let Some(a) = &paging.after
                && !st.journal.has_evidence(a)?
            {
                crate::exit::bad_input(format!(
                    "--after {a}: no evidence item of that ID was acquired here (give the last item of the previous page)"
                ))?;
            }
            // Times in the station's offset, with the offset shown, as everywhere else.
            let offset = st.clock.stamp().1;
            let local = |t: &str| match chrono::DateTime::parse_from_rfc3339(t) {
                Ok(t) => t
                    .with_timezone(&offset.0)
                    .format("%Y-%m-%d %H:%M:%S%:z")
                    .to_string(),
                Err(_) => t.to_string(),
            };
            super::page::stream(
                ctx.json,
                &paging,
                |after, n| Ok(st.journal.evidence_page(after, n)?),
                |out, r| {
                    writeln!(
                        out,
                        "{}  {}  {:>12}  {:<10} {:<8} {:<25} {}{}",
                        r.id,
                        r.sha256,
                        r.size,
                        r.device.as_str(),
                        r.officer.as_deref().unwrap_or("-"),
                        r.recorded.as_deref().map_or_else(|| "-".to_string(), local),
                        r.path,
                        if r.important { "  [重要]" } else { "" }
                    )
                },
            )?;
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
            // The events about the item and its session, found in the case index and read
            // one by one from the log (each checked against the log's index): no scan.
            let seqs = cases.index.events_about(
                st.id(),
                &[
                    format!("evidence:{id}"),
                    format!("session:{}", item.session),
                ],
            )?;
            let custody = st.log.with(|l| {
                seqs.iter()
                    .map(|s| l.read_event(*s))
                    .collect::<Result<Vec<_>, _>>()
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
        EvidenceCmd::Get {
            evidence,
            out,
            derivative,
            by,
            purpose,
        } => {
            let st = ctx.station()?;
            let got = get(
                &st,
                &EvidenceId::new(evidence)?,
                &out,
                derivative,
                &by,
                purpose,
            )?;
            if ctx.json {
                ctx.print_json(&got)?;
            } else {
                eprintln!(
                    "{} written: {} bytes, SHA-256 {} (access recorded as custody event #{})",
                    out.display(),
                    got.size,
                    got.sha256,
                    got.event
                );
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

#[derive(Debug, Serialize)]
struct Got {
    role: ObjectRole,
    sha256: evidock_verify::id::Sha256,
    size: u64,
    event: u64,
}

/// `evidock evidence get`: the access is logged, then the bytes are delivered and checked.
fn get(
    st: &crate::station::Station,
    id: &EvidenceId,
    out: &std::path::Path,
    derivative: bool,
    by: &str,
    purpose: Option<String>,
) -> anyhow::Result<Got> {
    use evidock_store::objects::layout;
    if out.symlink_metadata().is_ok() {
        crate::exit::bad_input(format!(
            "{} exists: choose another --out (nothing is overwritten)",
            out.display()
        ))?
    }
    let folder = evidock_store::fsutil::parent_dir(out);
    if !folder.is_dir() {
        crate::exit::bad_input(format!(
            "{} is not a folder: --out names a new file in an existing folder",
            folder.display()
        ))?
    }
    let cases = st.cases()?;
    cases.catch_up()?;
    let item = cases.item(id)?;
    if item.disposed_at.is_some() {
        crate::exit::bad_input(format!(
            "{id} was disposed of; its copies are gone (see `evidock evidence show`)"
        ))?
    }
    let (role, sha, key, local) = if derivative {
        let mut playback = None;
        // Made once per content: the copy may be another item's of the same bytes.
        let seqs = cases.index.events_about(
            st.id(),
            &[format!("evidence:{id}"), format!("sha:{}", item.sha256)],
        )?;
        st.log.with(|l| {
            for seq in seqs {
                let e = l.read_event(seq)?;
                if e.kind == EventKind::Transcoded
                    && let Ok(p) = e.payload::<TranscodedPayload>()
                    && p.parent_sha256 == item.sha256
                    && p.role == ObjectRole::Playback
                {
                    playback = Some(p.sha256);
                }
            }
            Ok::<_, evidock_store::log::LogError>(())
        })?;
        let sha = playback.ok_or_else(|| {
            crate::exit::BadInput(format!(
                "{id} has no playback copy yet (`evidock transcode {id}`)"
            ))
        })?;
        (
            ObjectRole::Playback,
            sha,
            layout::derivative(&sha),
            st.derivatives.object_path(&sha),
        )
    } else {
        (
            ObjectRole::Original,
            item.sha256,
            layout::original(&item.sha256),
            st.spool.object_path(&item.sha256),
        )
    };
    // The bytes are fetched and checked in the station's own directory (0750, the file 0600),
    // out of the user's reach, then recorded as `accessed`, then copied to --out: an event
    // only for an access that happened, and nothing handed over before its event.
    let fetching = st.data_dir.join("fetching");
    evidock_store::fsutil::create_dir_all(&fetching)?;
    clear_stale(&fetching);
    let mut rnd = [0u8; 8];
    getrandom::fill(&mut rnd).map_err(|e| anyhow::anyhow!("no randomness: {e}"))?;
    let scratch = fetching.join(format!("{id}-{}", hex::encode(rnd)));
    // --out is made first (new, 0600): a name in the way or a missing folder stops here, before
    // anything is fetched or recorded.
    let mut to = {
        use std::os::unix::fs::OpenOptionsExt as _;
        std::fs::File::options()
            .write(true)
            .create_new(true)
            .mode(0o600)
            .open(out)
            .map_err(|e| match e.kind() {
                std::io::ErrorKind::AlreadyExists | std::io::ErrorKind::NotFound => {
                    anyhow::Error::new(crate::exit::BadInput(format!(
                        "{}: {e}: choose another --out (nothing is overwritten)",
                        out.display()
                    )))
                }
                _ => anyhow::Error::new(e).context(format!("{}: not written", out.display())),
            })?
    };
    let fetched = (|| -> anyhow::Result<u64> {
        use std::os::unix::fs::OpenOptionsExt as _;
        let mut f = std::fs::File::options()
            .write(true)
            .create_new(true)
            .mode(0o600)
            .open(&scratch)
            .with_context(|| format!("{}: not written", scratch.display()))?;
        if local.is_file() {
            std::io::copy(&mut std::fs::File::open(&local)?, &mut f)?;
            f.sync_all()?;
        } else {
            st.runtime()?
                .block_on(st.store.download_into(&key, &mut f, &scratch))?;
        }
        let (d, n) = evidock_verify::digest::hash_reader(
            &mut std::fs::File::open(&scratch)?,
            Default::default(),
        )?;
        if d.sha256 != sha {
            anyhow::bail!(
                "the copy fetched has SHA-256 {}, not {sha}: not delivered (run `evidock verify {id}`)",
                d.sha256
            );
        }
        Ok(n)
    })();
    let delivered = fetched.and_then(|n| {
        // The room for the copy, before the access is recorded: a stick too small, or a FAT
        // one and a file of 4 GiB or more, fails here with no event.
        reserve(&to, n).with_context(|| {
            format!(
                "{}: no room for {n} bytes there (a FAT stick holds no file of 4 GiB or more); nothing recorded",
                out.display()
            )
        })?;
        let ev = st.log.append(NewEvent::new(
            Actor {
                role: Role::Reviewer,
                id: by.to_string(),
            },
            Subject::Evidence(id.clone()),
            format!(
                "accessed/{id}/{}/{}",
                st.clock.now().timestamp_millis(),
                &Sha256::digest(out.as_os_str().as_encoded_bytes()).to_hex()[..16]
            ),
            &AccessedPayload {
                role,
                sha256: sha,
                purpose,
            },
        )?)?;
        let copied = (|| -> std::io::Result<()> {
            std::io::copy(&mut std::fs::File::open(&scratch)?, &mut to)?;
            to.sync_all()?;
            Ok(())
        })();
        copied.with_context(|| {
            format!(
                "{}: the copy was fetched and checked, and its access recorded as event #{}, but it could not be written there",
                out.display(),
                ev.event.seq
            )
        })?;
        // The copy is whole and synced: a folder that cannot be synced is said, not undone.
        if let Err(e) = evidock_store::fsutil::sync_dir(evidock_store::fsutil::parent_dir(out)) {
            tracing::warn!(error = %e, "the folder of --out could not be synced");
        }
        Ok((n, ev))
    });
    let _ = fs_err::remove_file(&scratch);
    match delivered {
        Ok((size, ev)) => Ok(Got {
            role,
            sha256: sha,
            size,
            event: ev.event.seq,
        }),
        Err(e) => {
            drop(to);
            let _ = fs_err::remove_file(out);
            Err(e)
        }
    }
}

/// Allocate `n` bytes for `f` (fallocate; where the filesystem has none, the length is set,
/// which FAT allocates).
fn reserve(f: &std::fs::File, n: u64) -> std::io::Result<()> {
    match rustix::fs::fallocate(f, rustix::fs::FallocateFlags::empty(), 0, n) {
        Ok(()) => Ok(()),
        Err(e) if e == rustix::io::Errno::OPNOTSUPP || e == rustix::io::Errno::NOSYS => {
            f.set_len(n)
        }
        Err(e) => Err(e.into()),
    }
}

/// Copies a `get` killed mid-way left in the station's fetch scratch, a day old or more (a
/// fetch under way is never that old): removed, never handed over.
fn clear_stale(fetching: &std::path::Path) {
    let Ok(entries) = fs_err::read_dir(fetching) else {
        return;
    };
    let day = std::time::Duration::from_secs(24 * 3600);
    for e in entries.flatten() {
        let old = e
            .metadata()
            .and_then(|m| m.modified())
            .is_ok_and(|t| t.elapsed().is_ok_and(|age| age > day));
        if old {
            match fs_err::remove_file(e.path()) {
                Ok(()) => {
                    tracing::warn!(file = %e.path().display(), "removed a copy an interrupted `evidence get` left behind")
                }
                Err(err) => {
                    tracing::warn!(file = %e.path().display(), error = %err, "cannot remove a copy an interrupted `evidence get` left behind")
                }
            }
        }
    }
}
