//! `evidock hash`: the configured digests of files, in one pass each.

use super::Ctx;
use crate::exit;
use anyhow::Context as _;
use clap::Args;
use evidock_verify::digest::{self, DigestSet};
use serde::Serialize;
use std::path::PathBuf;

#[derive(Debug, Args)]
pub struct HashArgs {
    /// Files to hash.
    #[arg(required = true)]
    pub files: Vec<PathBuf>,
    /// Also SM3 (in addition to the configuration).
    #[arg(long)]
    pub sm3: bool,
    /// Also MD5 (in addition to the configuration).
    #[arg(long)]
    pub md5: bool,
}

#[derive(Serialize)]
struct Row {
    file: PathBuf,
    size: u64,
    #[serde(flatten)]
    digests: digest::Digests,
}

pub fn run(ctx: &Ctx, args: HashArgs) -> anyhow::Result<u8> {
    let set = DigestSet {
        sm3: ctx.settings.digests.sm3 || args.sm3,
        md5: ctx.settings.digests.md5 || args.md5,
    };
    let mut rows = Vec::new();
    for f in &args.files {
        let mut file =
            std::fs::File::open(f).with_context(|| format!("cannot open {}", f.display()))?;
        let (digests, size) = digest::hash_reader(&mut file, set)
            .with_context(|| format!("cannot hash {}", f.display()))?;
        if !ctx.json {
            // sha256sum's format, so the output can be checked with `sha256sum -c`.
            println!("{}  {}", digests.sha256, f.display());
            if let Some(s) = &digests.sm3 {
                println!("sm3:{s}  {}", f.display());
            }
            if let Some(m) = &digests.md5 {
                println!("md5:{m}  {}", f.display());
            }
        }
        rows.push(Row {
            file: f.clone(),
            size,
            digests,
        });
    }
    if ctx.json {
        ctx.print_json(&rows)?;
    }
    Ok(exit::OK)
}
