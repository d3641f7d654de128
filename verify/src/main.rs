//! `evidock-verify`: check a disclosure package, or a custody log, offline.
#![allow(clippy::print_stdout, clippy::print_stderr)]

use anyhow::Context as _;
use clap::Parser;
use evidock_verify::finding::{Level, Report};
use evidock_verify::layout;
use evidock_verify::logcheck;
use evidock_verify::package::{self, FileRole, PackageCheck};
use evidock_verify::trust::Trust;
use serde::Serialize;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

const AFTER_HELP: &str = "\
Exit status:
  0  nothing is an error (warnings, e.g. \"time not attested\", may be present)
  1  at least one error: integrity is not proven
  2  the check could not run (bad arguments, unreadable path or trust file)

Trust anchors come from --trust FILE, never from what is checked. Without it, the station key
and TSA root found in PATH are used and their fingerprints printed, to compare with the
collection record (提取笔录).";

/// Check evidock evidence offline: a disclosure package (a directory with MANIFEST.json), a
/// custody log directory, or a station's directory copied from an evidence store.
#[derive(Debug, Parser)]
#[command(name = "evidock-verify", version, after_help = AFTER_HELP)]
struct Args {
    /// What to check: a disclosure package directory (unzip a .zip first), a custody log
    /// directory, or a station's directory in an evidence store (`<store>/stations/<station ID>`).
    path: PathBuf,
    /// Trust anchors: pinned station keys and TSA roots (TOML).
    #[arg(long, value_name = "FILE")]
    trust: Option<PathBuf>,
    /// Print the findings as JSON.
    #[arg(long)]
    json: bool,
}

/// What every check prints: the verdict, then what is particular to the kind checked.
#[derive(Serialize)]
struct Output<'a, D> {
    path: &'a Path,
    kind: &'static str,
    integrity_proven: bool,
    time_attested: bool,
    anchored: bool,
    errors: usize,
    warnings: usize,
    #[serde(flatten)]
    detail: D,
}

impl<'a, D> Output<'a, D> {
    fn new(
        path: &'a Path,
        kind: &'static str,
        (integrity_proven, time_attested, anchored): (bool, bool, bool),
        report: &Report,
        detail: D,
    ) -> Self {
        Output {
            path,
            kind,
            integrity_proven,
            time_attested,
            anchored,
            errors: report.count(Level::Error),
            warnings: report.count(Level::Warning),
            detail,
        }
    }
}

/// A custody log's findings, under `findings`.
#[derive(Serialize)]
struct LogDetail<'a> {
    findings: &'a Report,
}

fn main() -> ExitCode {
    let args = Args::parse();
    match run(&args) {
        Ok(code) => code,
        Err(e) => {
            eprintln!("evidock-verify: {e:#}");
            ExitCode::from(2)
        }
    }
}

fn run(args: &Args) -> anyhow::Result<ExitCode> {
    let trust = match &args.trust {
        Some(p) => Trust::load(p)?,
        None => Trust::none(),
    };
    let meta = std::fs::metadata(&args.path)
        .with_context(|| format!("cannot read {}", args.path.display()))?;
    if meta.is_dir() && args.path.join(package::MANIFEST).exists() {
        return package_run(args, &trust);
    }
    if meta.is_file()
        && args
            .path
            .extension()
            .is_some_and(|e| e.eq_ignore_ascii_case("zip"))
    {
        anyhow::bail!(
            "{} is a zip file: unzip it (Windows: right-click → Extract All; Linux: unzip) and check the folder",
            args.path.display()
        );
    }
    let (kind, check) = if meta.is_dir() && args.path.join(layout::EVENTS_FILE).exists() {
        ("custody-log", logcheck::check_log_dir(&args.path, &trust))
    } else if meta.is_dir() && args.path.join("log/segments").is_dir() {
        (
            "published-custody-log",
            logcheck::check_log(&logcheck::LogFiles::published(&args.path), &trust),
        )
    } else {
        anyhow::bail!(
            "{} is neither a custody log directory (with {}) nor a station's directory in an evidence store (with log/segments/)",
            args.path.display(),
            layout::EVENTS_FILE
        );
    };
    let out = Output::new(
        &args.path,
        kind,
        (
            check.integrity_proven(),
            check.time_attested(),
            trust.is_anchored(),
        ),
        &check.report,
        LogDetail {
            findings: &check.report,
        },
    );
    finish(args.json, &out, print_human, &check.report)
}

fn print_human(out: &Output<'_, LogDetail<'_>>) {
    println!("Checking custody log {}", out.path.display());
    for f in &out.detail.findings.findings {
        println!("  {f}");
    }
    println!();
    print_verdict(
        out.integrity_proven,
        "every event is under a checkpoint signed by the station key",
        out.time_attested,
        "the latest checkpoint carries a valid RFC 3161 token",
        out.anchored,
        (out.errors, out.warnings),
    );
}

/// The closing lines of every human report: integrity, time, trust, counts.
fn print_verdict(
    integrity: bool,
    proven: &str,
    time: bool,
    attested: &str,
    anchored: bool,
    (errors, warnings): (usize, usize),
) {
    if integrity {
        println!("Integrity: PROVEN — {proven}");
    } else {
        println!("Integrity: NOT PROVEN — see the errors above");
    }
    if time {
        println!("Time:      ATTESTED — {attested}");
    } else {
        println!("Time:      NOT ATTESTED — station time only");
    }
    if !anchored {
        println!(
            "Trust:     NOT ANCHORED — no --trust file; compare the fingerprints above with the collection record"
        );
    }
    println!("{errors} error(s), {warnings} warning(s)");
}

/// Print `out` (JSON or for people) and give the exit status of `report`.
fn finish<T: Serialize>(
    json: bool,
    out: &T,
    human: impl Fn(&T),
    report: &Report,
) -> anyhow::Result<ExitCode> {
    if json {
        println!("{}", serde_json::to_string_pretty(out)?);
    } else {
        human(out);
    }
    Ok(if report.has_errors() {
        ExitCode::from(1)
    } else {
        ExitCode::SUCCESS
    })
}

fn package_run(args: &Args, trust: &Trust) -> anyhow::Result<ExitCode> {
    let check = package::check_package(&args.path, trust);
    let out = Output::new(
        &args.path,
        "disclosure-package",
        (
            check.integrity_proven(),
            check.time_attested(),
            trust.is_anchored(),
        ),
        &check.report,
        &check,
    );
    finish(args.json, &out, print_package, &check.report)
}

fn print_package(out: &Output<'_, &PackageCheck>) {
    let c = out.detail;
    println!("Checking disclosure package {}", out.path.display());
    if let Some(case) = &c.case {
        println!("  case     {case}");
    }
    if let Some(st) = &c.station {
        println!("  station  {st}");
    }
    if let (Some(k), Some(f)) = (&c.key, &c.key_fingerprint) {
        println!("  key      {k}");
        println!("           fingerprint SHA-256 {f}  (compare with the collection record)");
    }
    println!();
    for f in c
        .files
        .iter()
        .filter(|f| matches!(f.role, FileRole::Original | FileRole::Derivative))
    {
        println!(
            "  {}  {}  {}",
            if f.integrity { "OK  " } else { "FAIL" },
            f.path,
            match (&f.attested_by, f.integrity) {
                (_, false) => String::new(),
                (Some(t), true) => format!("(time attested: existed by {t})"),
                (None, true) => "(station time only)".into(),
            }
        );
    }
    println!();
    for f in &c.report.findings {
        println!("  {f}");
    }
    println!();
    print_verdict(
        out.integrity_proven,
        "every file is as sealed, and every original is the one acquired, under the station's signed log",
        out.time_attested,
        "RFC 3161 tokens cover every acquisition and derivative",
        out.anchored,
        (out.errors, out.warnings),
    );
}
