//! `evidock log`: this station's custody log.

use super::Ctx;
use crate::exit;
use crate::station::Station;
use anyhow::Context as _;
use clap::Subcommand;
use evidock_store::timestamping;
use evidock_verify::finding::Level;
use evidock_verify::logcheck;
use evidock_verify::trust::{StationAnchor, Trust};

#[derive(Debug, Subcommand)]
pub enum LogCmd {
    /// List custody events.
    Show {
        /// First event to show.
        #[arg(long, default_value_t = 0)]
        from: u64,
        /// At most this many events (of those the filters let through).
        #[arg(long)]
        limit: Option<u64>,
        /// Only events at or after this time: RFC 3339 (`2026-11-28T09:00:00+08:00`), or a
        /// date (`2026-11-28`) in each event's own local time, as the list shows it.
        #[arg(long, value_parser = parse_since)]
        since: Option<Since>,
        /// Only events of this kind (`acquired`, `exported`, …); repeat for several.
        #[arg(long = "kind", value_parser = parse_kind)]
        kinds: Vec<evidock_verify::event::EventKind>,
    },
    /// Sign a checkpoint over every event now, and time-stamp it if a TSA is configured.
    Checkpoint,
    /// Time-stamp every checkpoint that has no token yet (needs a TSA in the configuration).
    Timestamp,
    /// Check this station's log: every event, checkpoint and token (as evidock-verify does).
    Verify,
    /// Write a consistency proof from an earlier tree size to a checkpoint, for a receiver who
    /// holds that size (`evidock-verify PACKAGE --expect SIZE:ROOT --proof FILE`).
    Prove {
        /// The tree size the receiver holds (from a collection record or an earlier package).
        #[arg(long)]
        from: u64,
        /// The checkpoint to prove it consistent with (default: the latest, as in a package
        /// exported now).
        #[arg(long)]
        to: Option<u64>,
        /// Write the proof here (written once; default: standard output).
        #[arg(long, value_name = "FILE")]
        out: Option<std::path::PathBuf>,
    },
}

pub fn run(ctx: &Ctx, cmd: LogCmd) -> anyhow::Result<u8> {
    let st = ctx.station()?;
    match cmd {
        LogCmd::Show {
            from,
            limit,
            since,
            kinds,
        } => show(
            ctx,
            &st,
            &Filter {
                from,
                limit,
                since,
                kinds,
            },
        ),
        LogCmd::Checkpoint => {
            let cp = st.log.seal(evidock_store::checkpoints::Moment::Asked)?;
            match &cp {
                Some(c) => eprintln!(
                    "signed checkpoint {} (root {}) for station {}",
                    c.checkpoint.size,
                    c.checkpoint.root,
                    st.id()
                ),
                None => eprintln!("nothing new since the last checkpoint"),
            }
            if st.settings.tsa.is_some() {
                return timestamp(ctx, &st);
            }
            eprintln!("no TSA configured: the checkpoint carries station time only");
            Ok(exit::OK)
        }
        LogCmd::Timestamp => timestamp(ctx, &st),
        LogCmd::Verify => verify(ctx, &st),
        LogCmd::Prove { from, to, out } => prove(ctx, &st, from, to, out.as_deref()),
    }
}

/// A `--since` value.
#[derive(Debug, Clone, Copy)]
pub enum Since {
    Instant(chrono::DateTime<chrono::Utc>),
    LocalDate(chrono::NaiveDate),
}

fn parse_since(s: &str) -> Result<Since, String> {
    if let Ok(t) = chrono::DateTime::parse_from_rfc3339(s) {
        return Ok(Since::Instant(t.with_timezone(&chrono::Utc)));
    }
    chrono::NaiveDate::parse_from_str(s, "%Y-%m-%d")
        .map(Since::LocalDate)
        .map_err(|_| format!("{s:?} is neither an RFC 3339 time (2026-11-28T09:00:00+08:00) nor a date (2026-11-28)"))
}

fn parse_kind(s: &str) -> Result<evidock_verify::event::EventKind, String> {
    use evidock_verify::event::EventKind;
    let kind = EventKind::parse(s);
    if kind.is_known() {
        return Ok(kind);
    }
    let known: Vec<&str> = EventKind::KNOWN.iter().map(EventKind::as_str).collect();
    Err(format!(
        "{s:?} is not a kind of custody event; the kinds are: {}",
        known.join(", ")
    ))
}

/// Which events `log show` prints.
struct Filter {
    from: u64,
    limit: Option<u64>,
    since: Option<Since>,
    kinds: Vec<evidock_verify::event::EventKind>,
}

impl Filter {
    fn admits(&self, ev: &evidock_verify::event::CustodyEvent) -> bool {
        let recent = match self.since {
            None => true,
            Some(Since::Instant(t)) => ev.time.0 >= t,
            Some(Since::LocalDate(d)) => ev.local_time().date_naive() >= d,
        };
        recent && (self.kinds.is_empty() || self.kinds.contains(&ev.kind))
    }
}

/// Events are streamed from disk as they are printed: memory does not grow with the log.
fn show(ctx: &Ctx, st: &Station, filter: &Filter) -> anyhow::Result<u8> {
    use std::io::Write as _;
    let mut out = std::io::BufWriter::new(std::io::stdout().lock());
    let mut shown = 0u64;
    let mut failed: Option<std::io::Error> = None;
    if ctx.json {
        out.write_all(b"[")?;
    }
    st.log.with(|l| {
        l.scan_from(filter.from, |ev| {
            if !filter.admits(&ev) {
                return true;
            }
            if filter.limit.is_some_and(|n| shown >= n) {
                return false;
            }
            let written = if ctx.json {
                let sep = if shown == 0 { "\n" } else { ",\n" };
                serde_json::to_string(&ev)
                    .map_err(std::io::Error::other)
                    .and_then(|j| write!(out, "{sep}{j}"))
            } else {
                writeln!(
                    out,
                    "#{:<6} {}  {:<16} {:<38} by {} {}",
                    ev.seq,
                    ev.local_time().format("%Y-%m-%d %H:%M:%S%:z"),
                    ev.kind,
                    ev.subject.to_string(),
                    ev.actor.role,
                    ev.actor.id
                )
            };
            shown += 1;
            match written {
                Ok(()) => true,
                Err(e) => {
                    failed = Some(e);
                    false
                }
            }
        })
    })?;
    if let Some(e) = failed {
        return Err(e.into());
    }
    // Only here is the array closed: a scan that failed part way (an event that does not read
    // back as indexed) leaves JSON no parser accepts, beside the error and its exit code, so a
    // partial history is never taken for the whole one.
    if ctx.json {
        out.write_all(b"\n]\n")?;
    }
    out.flush()?;
    Ok(exit::OK)
}

fn prove(
    ctx: &Ctx,
    st: &Station,
    from: u64,
    to: Option<u64>,
    out: Option<&std::path::Path>,
) -> anyhow::Result<u8> {
    let proof = st.log.with(|l| -> anyhow::Result<_> {
        let sizes = l.checkpoint_sizes()?;
        let to = to.unwrap_or_else(|| l.last_checkpoint());
        if !sizes.contains(&to) {
            crate::exit::bad_input(format!("there is no checkpoint of size {to}: give --to one of this station's checkpoint sizes (`evidock log show` lists events; packages name theirs)"))?;
        }
        if from == 0 || from > to {
            crate::exit::bad_input(format!("--from {from} must be between 1 and the checkpoint size {to}"))?;
        }
        // Checked against the signed root before it is handed out: the index is a cache.
        let to_root = l.signed_checkpoint(to)?.checkpoint.root;
        let (from_root, path) = l.proved_consistency(from, to, &to_root)?;
        let roots = (from_root, to_root);
        Ok((evidock_verify::checkpoint::ConsistencyProof { old: from, new: to, path }, roots))
    })?;
    let (p, (from_root, to_root)) = proof;
    let bytes = p.to_bytes();
    match out {
        Some(path) => {
            evidock_store::fsutil::write_once(path, &bytes, 0o440)
                .with_context(|| format!("writing {}", path.display()))?;
        }
        None if !ctx.json => {
            use std::io::Write as _;
            std::io::stdout().write_all(&bytes)?;
        }
        None => {}
    }
    if ctx.json {
        ctx.print_json(&serde_json::json!({
            "from": p.old,
            "from_root": from_root,
            "to": p.new,
            "to_root": to_root,
            "proof": out,
            "text": if out.is_none() { Some(String::from_utf8_lossy(&bytes).into_owned()) } else { None },
        }))?;
    } else {
        eprintln!(
            "consistency proof from size {} (root {from_root}) to checkpoint {} (root {to_root}){}",
            p.old,
            p.new,
            out.map(|o| format!(" written to {}", o.display()))
                .unwrap_or_default()
        );
    }
    Ok(exit::OK)
}

fn timestamp(ctx: &Ctx, st: &Station) -> anyhow::Result<u8> {
    let Some(client) = st.tsa_client()? else {
        return crate::exit::bad_input(
            "no TSA configured: add a [tsa] section with a url to the configuration",
        );
    };
    let run = st
        .runtime()?
        .block_on(timestamping::timestamp_pending(&st.log, &client, 1000))?;
    if ctx.json {
        ctx.print_json(&serde_json::json!({
            "stamped": run.stamped,
            "pending": run.pending,
            "failure": run.failure.as_ref().map(|e| e.to_string()),
        }))?;
    } else {
        for s in &run.stamped {
            eprintln!("time-stamped checkpoint {s}");
        }
        if let Some(e) = &run.failure {
            eprintln!(
                "time-stamping deferred: {e}; {} checkpoint(s) stay queued and nothing else waits for them",
                run.pending.len()
            );
        }
    }
    Ok(match run.failure {
        None => exit::OK,
        Some(_) => exit::FAILED,
    })
}

/// What the station trusts when it checks itself: its own key, and the configured TSA roots.
pub(crate) fn station_trust(st: &Station) -> anyhow::Result<Trust> {
    let mut trust = Trust {
        source: st
            .settings
            .source
            .clone()
            .or_else(|| Some(st.key.path().to_path_buf())),
        ..Trust::none()
    };
    trust.stations.push(StationAnchor::Key(
        evidock_store::key::NoteSigner::verifier(st.key.as_ref()).clone(),
    ));
    if let Some(client) = st.tsa_client()? {
        trust.tsa = client.trust().clone();
    }
    Ok(trust)
}

fn verify(ctx: &Ctx, st: &Station) -> anyhow::Result<u8> {
    let trust = station_trust(st)?;
    let dir = st.log_path();
    // The station's index of the log is checked in full too, and rebuilt if it is damaged:
    // proofs for packages come from it.
    let reindexed = st.log.with(|l| l.check_index())?;
    if let Some(r) = &reindexed {
        eprintln!(
            "the custody log's index did not match events.jsonl ({}); rebuilt from the file{}",
            r.reason,
            r.kept
                .as_ref()
                .map(|p| format!(", the old index kept in {}", p.display()))
                .unwrap_or_default()
        );
    }
    // The check reads the directory while this process holds the log lock: fine, it only reads.
    let check = logcheck::check_log_dir(&dir, &trust);
    if ctx.json {
        ctx.print_json(&serde_json::json!({
            "log": dir,
            "integrity_proven": check.integrity_proven(),
            "time_attested": check.time_attested(),
            "findings": check.report,
            "index_rebuilt": reindexed.map(|r| r.reason),
        }))?;
    } else {
        for f in &check.report.findings {
            println!("  {f}");
        }
        println!(
            "integrity {}, time {}; {} error(s), {} warning(s)",
            if check.integrity_proven() {
                "proven"
            } else {
                "NOT proven"
            },
            if check.time_attested() {
                "attested"
            } else {
                "not attested"
            },
            check.report.count(Level::Error),
            check.report.count(Level::Warning)
        );
    }
    Ok(if check.report.has_errors() {
        exit::FINDINGS
    } else {
        exit::OK
    })
}
