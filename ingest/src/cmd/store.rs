//! `evidock store`: the evidence store.

use super::Ctx;
use crate::exit;
use clap::Subcommand;
use evidock_store::objects::{self, Backend};
use evidock_store::s3control::LockMode;

#[derive(Debug, Subcommand)]
pub enum StoreCmd {
    /// Create the bucket (with S3 Object Lock) and set the default retention from the
    /// configuration, then check it; for a local store, say what it cannot enforce.
    Init,
    /// What the upload queue holds.
    Status,
}

pub fn run(ctx: &Ctx, cmd: StoreCmd) -> anyhow::Result<u8> {
    let st = ctx.station()?;
    match cmd {
        StoreCmd::Status => {
            let rows = st.journal.uploads()?;
            if ctx.json {
                ctx.print_json(&rows)?;
            } else {
                for r in rows {
                    println!(
                        "{}  {:<9} {:<9} {:>12}  {}{}",
                        r.evidence,
                        r.role,
                        r.state,
                        r.size,
                        r.key,
                        r.error.map(|e| format!("  ({e})")).unwrap_or_default()
                    );
                }
            }
            Ok(exit::OK)
        }
        StoreCmd::Init => init(ctx, &st),
    }
}

fn init(ctx: &Ctx, st: &crate::station::Station) -> anyhow::Result<u8> {
    let retention = st.settings.store.as_ref().and_then(|s| s.retention.clone());
    let mut report = serde_json::Map::new();
    report.insert("store".into(), st.store.url().into());
    match st.store.backend() {
        Backend::Local { root } => {
            eprintln!(
                "local evidence store at {}: objects are written once, fsynced and made read-only (0440: the station user and its group).\n\
                 It cannot enforce retention: anyone with root on this machine can delete. Use an S3 store \
                 with Object Lock for write-once-read-many retention.",
                root.display()
            );
            report.insert("enforces_retention".into(), false.into());
        }
        Backend::S3 { bucket } => {
            let settings = st
                .settings
                .store
                .as_ref()
                .map(|s| s.store.clone())
                .unwrap_or_default();
            let Some(s3) = objects::s3_control(&settings)? else {
                return crate::exit::bad_input(
                    "not an s3:// store: `store init` sets up S3 Object Lock; a local store needs no setting up",
                );
            };
            let rt = st.runtime()?;
            rt.block_on(async {
                if !s3.bucket_exists().await? {
                    s3.create_bucket(true).await?;
                    eprintln!("created bucket {bucket} with Object Lock");
                }
                if !s3.versioning_enabled().await? {
                    return crate::exit::bad_input(format!(
                        "bucket {bucket} has no versioning, so no Object Lock: create a new bucket with Object Lock enabled (it cannot be added later)"
                    ));
                }
                if let Some((mode, days)) = &retention {
                    let m = if mode == "compliance" {
                        LockMode::Compliance
                    } else {
                        LockMode::Governance
                    };
                    s3.put_default_retention(m, *days).await?;
                }
                let cfg = s3.object_lock_configuration().await?;
                match &cfg {
                    Some((m, d)) => eprintln!(
                        "bucket {bucket}: Object Lock on, default retention {} for {d} day(s)",
                        m.as_str()
                    ),
                    None => eprintln!(
                        "bucket {bucket}: Object Lock on, no default retention (set [store.retention] to add one)"
                    ),
                }
                report.insert("object_lock".into(), true.into());
                report.insert(
                    "default_retention".into(),
                    cfg.map(|(m, d)| serde_json::json!({"mode": m.as_str(), "days": d}))
                        .unwrap_or(serde_json::Value::Null),
                );
                anyhow::Ok(())
            })?;
        }
        Backend::Other => {
            eprintln!(
                "{}: evidock sets no retention on this backend; configure immutability (Azure immutable storage, GCS bucket lock) in its console",
                st.store.url()
            );
        }
    }
    if ctx.json {
        ctx.print_json(&report)?;
    }
    Ok(exit::OK)
}
