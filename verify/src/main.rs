//! `evidock-verify`: check a disclosure package, or a custody log, offline.
#![allow(clippy::print_stdout, clippy::print_stderr)]

use anyhow::Context as _;
use clap::Parser;
use evidock_verify::escape::Shown;
use evidock_verify::expect::Expectations;
use evidock_verify::finding::{Level, Report};
use evidock_verify::layout;
use evidock_verify::logcheck;
use evidock_verify::package::{self, FileRole, PackageCheck};
use evidock_verify::trust::Trust;
use evidock_verify::verdict::{Integrity, Time, Verdict, exit};
use serde::Serialize;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

const AFTER_HELP: &str = "\
Exit status:
  0  every claim is proven under the anchors you pinned: integrity PROVEN under a pinned
     station key, and every RFC 3161 token anchored at a pinned TSA root
  1  at least one error: integrity is NOT PROVEN
  2  the check could not run (bad arguments, unreadable path or trust file)
  3  no error, but something rests on an anchor you did not pin: integrity only CONSISTENT
     (station key not pinned), or a token's TSA root not pinned (time NOT ATTESTED); or part
     of the input is of a later version this verifier cannot interpret

Trust comes only from --trust FILE, never from what is checked: copy the station key's
fingerprint from the collection record (提取笔录) signed at hand-over, and the TSA's root from
the TSA's own publication. Hold a package to what you already hold with --expect-checkpoint
(a checkpoint from an earlier package or the station's published log) or --expect SIZE:ROOT
(as printed on the collection record).";

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
    /// A signed checkpoint you already hold (from an earlier package or the station's published
    /// log): what is checked must be at least as large and provably consistent with it.
    #[arg(long, value_name = "FILE")]
    expect_checkpoint: Vec<PathBuf>,
    /// A tree size and root you already hold, as the collection record prints them.
    #[arg(long, value_name = "SIZE:ROOT")]
    expect: Vec<String>,
    /// A consistency proof (`evidock log prove --from SIZE`) for an --expect the package has
    /// no proof for.
    #[arg(long, value_name = "FILE")]
    proof: Vec<PathBuf>,
    /// The case the package must be of, as the transfer letter names it (a genuine package of
    /// another case is refused).
    #[arg(long, value_name = "ID")]
    case: Option<String>,
    /// Print the findings as JSON.
    #[arg(long)]
    json: bool,
}

/// What every check prints: the verdict, then what is particular to the kind checked.
#[derive(Serialize)]
struct Output<'a, D> {
    path: &'a Path,
    kind: &'static str,
    integrity: Integrity,
    time: Time,
    integrity_proven: bool,
    time_attested: bool,
    /// The station key the verdict rests on is pinned by the trust file.
    anchored: bool,
    errors: usize,
    warnings: usize,
    #[serde(flatten)]
    detail: D,
}

impl<'a, D> Output<'a, D> {
    fn new(path: &'a Path, kind: &'static str, v: &Verdict, report: &Report, detail: D) -> Self {
        Output {
            path,
            kind,
            integrity: v.integrity,
            time: v.time,
            integrity_proven: v.integrity == Integrity::Proven,
            time_attested: v.time == Time::Attested,
            anchored: v.station_key_pinned,
            errors: report.count(Level::Error),
            warnings: report.count(Level::Warning),
            detail,
        }
    }
}

/// A custody log's verdict and findings.
#[derive(Serialize)]
struct LogDetail<'a> {
    verdict: &'a Verdict,
    findings: &'a Report,
}

fn main() -> ExitCode {
    let args = Args::parse();
    match run(&args) {
        Ok(code) => ExitCode::from(code),
        Err(e) => {
            eprintln!("evidock-verify: {}", Shown(&format!("{e:#}")));
            ExitCode::from(exit::CANNOT_RUN)
        }
    }
}

fn expectations(args: &Args) -> anyhow::Result<Expectations> {
    let mut out = Expectations {
        case: args.case.clone(),
        ..Expectations::default()
    };
    for e in &args.expect {
        out.expected
            .push(Expectations::parse_size_root(e).map_err(anyhow::Error::msg)?);
    }
    for p in &args.expect_checkpoint {
        out.expected
            .push(Expectations::load_checkpoint(p).map_err(anyhow::Error::msg)?);
    }
    for p in &args.proof {
        out.proofs
            .push(Expectations::load_proof(p).map_err(anyhow::Error::msg)?);
    }
    Ok(out)
}

fn run(args: &Args) -> anyhow::Result<u8> {
    let trust = match &args.trust {
        Some(p) => Trust::load(p)?,
        None => Trust::none(),
    };
    let expect = expectations(args)?;
    let meta = std::fs::metadata(&args.path)
        .with_context(|| format!("cannot read {}", args.path.display()))?;
    let present = |name: &str| std::fs::symlink_metadata(args.path.join(name)).is_ok();
    if meta.is_dir() && present(package::MANIFEST) {
        let check = package::check_package_with(&args.path, &trust, &expect);
        let out = Output::new(
            &args.path,
            "disclosure-package",
            &check.verdict,
            &check.report,
            &check,
        );
        return finish(
            args.json,
            &out,
            print_package,
            &check.verdict,
            &check.report,
        );
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
    let files = if meta.is_dir() && present(layout::EVENTS_FILE) {
        ("custody-log", logcheck::LogFiles::station_dir(&args.path))
    } else if meta.is_dir() && args.path.join("log/segments").is_dir() {
        (
            "published-custody-log",
            logcheck::LogFiles::published(&args.path),
        )
    } else {
        anyhow::bail!(
            "{} is neither a custody log directory (with {}) nor a station's directory in an evidence store (with log/segments/)",
            args.path.display(),
            layout::EVENTS_FILE
        );
    };
    let check = logcheck::check_log(&files.1, &trust, &expect);
    let out = Output::new(
        &args.path,
        files.0,
        &check.verdict,
        &check.report,
        LogDetail {
            verdict: &check.verdict,
            findings: &check.report,
        },
    );
    finish(args.json, &out, print_log, &check.verdict, &check.report)
}

fn print_log(out: &Output<'_, LogDetail<'_>>) {
    println!(
        "Checking custody log {}",
        Shown(&out.path.display().to_string())
    );
    print_findings(out.detail.findings);
    println!();
    print_verdict(
        out.detail.verdict,
        "every event is under a checkpoint signed by a station key you pinned",
        "a token anchored at a TSA root you pinned covers every event",
        (out.errors, out.warnings),
    );
}

/// Every finding kept, then how many of each code were only counted.
fn print_findings(report: &Report) {
    for f in &report.findings {
        println!("  {f}");
    }
    for m in &report.more {
        println!(
            "  {:<7} {:<34} … and {} more not shown",
            m.level, m.code, m.count
        );
    }
}

/// The closing lines of every human report: integrity, time, counts.
fn print_verdict(v: &Verdict, proven: &str, attested: &str, (errors, warnings): (usize, usize)) {
    match v.integrity {
        Integrity::Proven => println!("Integrity: PROVEN — {proven}"),
        Integrity::Consistent => println!("Integrity: CONSISTENT — {}", Shown(&v.integrity_reason)),
        Integrity::NotProven => println!("Integrity: NOT PROVEN — {}", Shown(&v.integrity_reason)),
    }
    match v.time {
        Time::Attested => println!("Time:      ATTESTED — {attested}"),
        Time::NotAttested => println!("Time:      NOT ATTESTED — {}", Shown(&v.time_reason)),
    }
    if v.uninterpreted > 0 {
        println!(
            "Later:     {} part(s) of a later version this verifier cannot interpret (see the warnings): use a newer evidock-verify to judge them",
            v.uninterpreted
        );
    }
    println!("{errors} error(s), {warnings} warning(s)");
}

/// Print `out` (JSON or for people) and give the exit status of the verdict.
fn finish<T: Serialize>(
    json: bool,
    out: &T,
    human: impl Fn(&T),
    verdict: &Verdict,
    report: &Report,
) -> anyhow::Result<u8> {
    if json {
        println!("{}", evidock_verify::escape::to_json_pretty(out)?);
    } else {
        human(out);
    }
    Ok(verdict.exit_status(report))
}

fn print_package(out: &Output<'_, &PackageCheck>) {
    let c = out.detail;
    println!(
        "Checking disclosure package {}",
        Shown(&out.path.display().to_string())
    );
    if let Some(case) = &c.case {
        println!("  case        {}", Shown(case.as_str()));
    }
    if let Some(st) = &c.station {
        println!("  station     {st}");
    }
    if let (Some(k), Some(f)) = (&c.key, &c.key_fingerprint) {
        println!("  key         {}", Shown(k));
        println!(
            "              fingerprint SHA-256 {f}  ({})",
            if c.verdict.station_key_pinned {
                "pinned by your trust file"
            } else {
                "NOT pinned: compare it with the collection record, never with the package"
            }
        );
    }
    if let Some(cp) = &c.checkpoint {
        println!("  checkpoint  {cp}  (size:root; hold a later package to it with --expect)");
    }
    println!();
    for f in c
        .files
        .iter()
        .filter(|f| matches!(f.role, FileRole::Original | FileRole::Derivative))
    {
        println!(
            "  {}  {}  {}",
            match (f.integrity, c.verdict.station_key_pinned) {
                (true, true) => "OK        ",
                (true, false) => "CONSISTENT",
                (false, _) => "FAIL      ",
            },
            Shown(&f.path),
            match (&f.attested_by, f.integrity) {
                (_, false) => String::new(),
                (Some(t), true) => format!("(time attested: existed by {t})"),
                (None, true) => "(station time only)".into(),
            }
        );
    }
    println!();
    print_findings(&c.report);
    println!();
    print_verdict(
        &c.verdict,
        "every file is as sealed, and every original is the one acquired, under the station key you pinned",
        "RFC 3161 tokens anchored at a TSA root you pinned cover every acquisition and derivative",
        (out.errors, out.warnings),
    );
}
