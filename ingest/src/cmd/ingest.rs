//! `evidock ingest PATH`: acquire a mounted camera folder once, with a progress bar.

use super::Ctx;
use crate::acquire::progress::SessionProgress;
use crate::acquire::session::{DockedCamera, Outcome, StopSignal};
use crate::device::profile::{DriverKind, ProfileConfig, WipePolicy};
use crate::dock::Arrival;
use crate::dock::attach::attach;
use crate::exit;
use clap::Args;
use evidock_verify::id::{DeviceSerial, OfficerId};
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

#[derive(Debug, Args)]
pub struct IngestArgs {
    /// The camera's mounted volume (or a copy of its card).
    pub path: PathBuf,
    /// The camera's device serial, when the card does not say (no ID file). Never taken from
    /// the folder's name.
    #[arg(long)]
    pub serial: Option<String>,
    /// Read a folder that shows no sign of a camera card (no ID file, no file named as a
    /// camera names recordings, no DCIM or RECORD folder). Needs --serial. Pseudo-filesystems
    /// (/proc, /sys, /dev) are refused even so.
    #[arg(long, requires = "serial")]
    pub force: bool,
    /// The officer (警号 / 执法证号) who carried it, overriding what the camera says.
    #[arg(long)]
    pub officer: Option<String>,
    /// Read every file again, even those acquired at an earlier docking.
    #[arg(long)]
    pub full: bool,
    /// No progress bar.
    #[arg(long)]
    pub quiet: bool,
    /// Leave the acquired files in the upload queue (`evidock upload` sends them later).
    #[arg(long)]
    pub no_upload: bool,
    /// Make no playback copies or thumbnails now (`evidock transcode` makes them later).
    #[arg(long)]
    pub no_transcode: bool,
}

pub fn run(ctx: &Ctx, args: IngestArgs) -> anyhow::Result<u8> {
    let path = fs_err::canonicalize(&args.path)
        .map_err(|e| exit::BadInput(format!("cannot read {}: {e}", args.path.display())))?;
    if !path.is_dir() {
        exit::bad_input(format!("{} is not a folder", path.display()))?
    }
    if let Some(why) = crate::device::card::on_kernel_filesystem(&path) {
        exit::bad_input(why)?
    }
    let operator = args.officer.map(OfficerId::new).transpose()?;
    let serial = args.serial.map(DeviceSerial::new).transpose()?;
    let st = ctx.station()?;
    let data_dir = fs_err::canonicalize(&st.data_dir)?;
    if data_dir.starts_with(&path) || path.starts_with(&data_dir) {
        exit::bad_input(format!(
            "{} holds or is inside the station's own data directory {}: nothing read",
            path.display(),
            data_dir.display()
        ))?
    }
    let _acquiring = crate::acquire::lock::AcquireLock::take(&st.data_dir, "ingest")?;
    // The operator named this folder explicitly: a plain folder is acquired as a mass-storage
    // camera even without a configured profile for it.
    let mut profiles = st.settings.profiles.clone();
    profiles.push(
        ProfileConfig {
            name: "manual ingest".into(),
            vendor: None,
            driver: DriverKind::MassStorage,
            usb_vid: None,
            usb_pid: None,
            password: "000000".into(),
            allow: vec!["*".into()],
            file_pattern: None,
            time_format: "%Y%m%d%H%M%S".into(),
            wipe: WipePolicy::Never,
            id_file: "ZFYINFO.TXT".into(),
        }
        .validate("ingest")
        .map_err(|(k, m)| anyhow::anyhow!("{k}: {m}"))?,
    );
    let fallback = card_serial(&path, &profiles, serial, args.force)?;
    let arrival = Arrival {
        slot: "ingest".into(),
        volume: path.clone(),
        usb: None,
    };
    let att = attach(&profiles, &arrival, &fallback, st.clock.clone(), false)
        .map_err(anyhow::Error::msg)?;
    let cam = DockedCamera {
        slot: None,
        card: att.card,
        driver: att.driver,
        profile: att.profile,
        operator,
        full: args.full,
        volume: None,
        device: None,
        // A folder named by the operator, whatever `attach` made of it: the record says so.
        method: evidock_verify::event::payload::ReadMethod::Folder,
    };
    let acquirer = st.acquirer();
    let progress = SessionProgress::new();
    let stop = Arc::new(StopSignal::default());
    let interrupt = super::interrupt::Interrupt::watch("ingest")?;
    let worker = {
        let progress = progress.clone();
        let stop = stop.clone();
        let acquirer = acquirer.clone();
        let mut cam = cam;
        std::thread::spawn(move || {
            let outcome = acquirer.acquire(&mut cam, &progress, &stop);
            (outcome, cam)
        })
    };
    let bar = (!args.quiet && !ctx.json).then(|| {
        let b = indicatif::ProgressBar::new(0);
        b.set_style(
            indicatif::ProgressStyle::with_template(
                "{spinner} {msg:<28} [{bar:30}] {bytes}/{total_bytes} {bytes_per_sec} ETA {eta}",
            )
            .unwrap_or_else(|_| indicatif::ProgressStyle::default_bar())
            .progress_chars("=> "),
        );
        b
    });
    while !worker.is_finished() {
        if interrupt.code().is_some() {
            // Between files: the file being copied is finished and checked first.
            stop.shutdown();
        }
        if let Some(b) = &bar {
            let s = progress.snapshot();
            b.set_length(s.bytes_total);
            b.set_position(s.bytes_done);
            b.set_message(format!("files {}/{}", s.files_done, s.files_total));
        }
        std::thread::sleep(Duration::from_millis(150));
    }
    if let Some(b) = &bar {
        b.finish_and_clear();
    }
    let (outcome, mut cam) = worker
        .join()
        .map_err(|_| anyhow::anyhow!("the acquisition thread panicked"))?;
    // Link the new recordings to cases by officer and time (custody events) before uploading,
    // so their legal holds follow the upload.
    let cases = st.cases()?;
    super::case::auto_link(&cases, ctx.json);
    if let Some(code) = interrupt.code() {
        if !ctx.json {
            let s = progress.snapshot();
            eprintln!(
                "stopped: {} of {} file(s) acquired and kept; run the same `evidock ingest` again to acquire the rest (nothing is read twice); nothing was uploaded or transcoded now (`evidock upload`, `evidock transcode`)",
                s.files_done, s.files_total
            );
        }
        report(ctx, &outcome, None, None, None)?;
        return Ok(code);
    }
    let uploads = if matches!(outcome, Outcome::Released { .. }) && !args.no_upload {
        let run = st.runtime()?.block_on(st.uploader().run_once());
        if !ctx.json {
            eprintln!(
                "uploaded and read back: {} object(s) to {}{}",
                run.uploaded.len(),
                st.store.url(),
                if run.retrying.is_empty() && run.failed.is_empty() {
                    String::new()
                } else {
                    format!(
                        "; {} waiting to retry, {} failed (the spool keeps them; see `evidock store status`)",
                        run.retrying.len(),
                        run.failed.len()
                    )
                }
            );
        }
        Some(run)
    } else {
        None
    };
    // Wipe (when the profile says so) only what the uploads above verified.
    let wiped = match (&outcome, &uploads) {
        (Outcome::Released { session, .. }, Some(_)) => {
            let w = acquirer
                .wipe(&mut cam, session)
                .map_err(anyhow::Error::msg)?;
            if !ctx.json && !w.deleted.is_empty() {
                eprintln!(
                    "wiped from the camera after verified upload: {} file(s)",
                    w.deleted.len()
                );
            }
            Some(w)
        }
        _ => None,
    };
    // Derivatives last: the camera is long released, and a recording that cannot be read
    // stops nothing above. Then their uploads.
    let transcodes = if matches!(outcome, Outcome::Released { .. })
        && !args.no_transcode
        && st.settings.transcode.enabled
    {
        let t = st.transcoder();
        crate::transcode::discard_partials(&st.derivatives);
        let jobs = t.run_pending().map_err(anyhow::Error::msg)?;
        if !ctx.json {
            super::transcode::print_jobs(&jobs);
        }
        if !args.no_upload && jobs.iter().any(|j| !j.made.is_empty()) {
            let run = st.runtime()?.block_on(st.uploader().run_once());
            if !ctx.json {
                eprintln!(
                    "uploaded and read back: {} derivative object(s)",
                    run.uploaded.len()
                );
            }
        }
        Some(jobs)
    } else {
        None
    };
    if uploads.is_some() {
        super::case::report_holds(super::case::sync_holds(&st, &cases));
    }
    report(
        ctx,
        &outcome,
        uploads.as_ref(),
        wiped.as_ref(),
        transcodes.as_deref(),
    )
}

/// The serial for a card without an identity of its own, once the folder is known to be a
/// camera's card: `--serial`, else the card must name its camera (the simulator's identity, or
/// the ID file of the profile that reads it). Never the folder's name.
fn card_serial(
    path: &std::path::Path,
    profiles: &[crate::device::profile::Profile],
    serial: Option<DeviceSerial>,
    force: bool,
) -> anyhow::Result<String> {
    use crate::device::card::{self, Sign};
    let sign = card::recognise(path, profiles);
    let Some(sign) = sign else {
        if force {
            // `--force` requires `--serial` (clap).
            return Ok(serial.map(|s| s.to_string()).unwrap_or_default());
        }
        return exit::bad_input(format!(
            "{} does not look like a camera card (no ID file a device profile names, no file \
             named as a camera names its recordings, no DCIM or RECORD folder): nothing read; \
             if it is a camera's card, give --force with --serial",
            path.display()
        ));
    };
    tracing::info!(folder = %path.display(), sign = %sign, "the folder is read as a camera card");
    if let Some(s) = serial {
        return Ok(s.to_string());
    }
    // The profile `attach` will read a plain card with: its ID file is the one that counts.
    let reader = profiles
        .iter()
        .find(|p| p.driver == DriverKind::MassStorage && p.usb.is_none());
    match &sign {
        // No fallback: a card whose identity is gone by the time it is read fails, never
        // becomes a camera named by a placeholder.
        Sign::Simulator => Ok(String::new()),
        Sign::IdFile(f) if reader.is_some_and(|p| &p.id_file == f) => Ok(String::new()),
        _ => exit::bad_input(format!(
            "{} looks like a camera card ({sign}) but does not say which camera (no {}): give --serial",
            path.display(),
            reader.map_or("ID file", |p| p.id_file.as_str())
        )),
    }
}

fn report(
    ctx: &Ctx,
    outcome: &Outcome,
    uploads: Option<&crate::upload::UploadRun>,
    wiped: Option<&crate::wipe::WipeOutcome>,
    transcodes: Option<&[crate::transcode::Job]>,
) -> anyhow::Result<u8> {
    let (code, json) = match outcome {
        Outcome::Released {
            session,
            files,
            bytes,
            failed,
            skipped,
        } => {
            if !ctx.json {
                eprintln!(
                    "released: session {session}: {files} file(s) acquired ({bytes} bytes), {skipped} skipped (acquired before), {failed} failed — safe to undock"
                );
            }
            (
                if *failed > 0 {
                    exit::FINDINGS
                } else {
                    exit::OK
                },
                serde_json::json!({"outcome": "released", "session": session, "files": files, "bytes": bytes, "failed": failed, "skipped": skipped}),
            )
        }
        Outcome::Interrupted { session, reason } => {
            if !ctx.json {
                eprintln!("interrupted: session {session}: {reason}; run again to resume");
            }
            (
                exit::FAILED,
                serde_json::json!({"outcome": "interrupted", "session": session, "reason": reason}),
            )
        }
        Outcome::Failed { session, reason } => {
            if !ctx.json {
                eprintln!("failed: {reason}");
            }
            (
                exit::FAILED,
                serde_json::json!({"outcome": "failed", "session": session, "reason": reason}),
            )
        }
        Outcome::Refused { device, reason } => {
            if !ctx.json {
                eprintln!("refused: {reason}");
            }
            (
                exit::FINDINGS,
                serde_json::json!({"outcome": "refused", "device": device, "reason": reason}),
            )
        }
    };
    if ctx.json {
        let mut json = json;
        if let Some(u) = uploads {
            json["uploads"] = serde_json::to_value(u)?;
        }
        if let Some(w) = wiped {
            json["wiped"] = serde_json::to_value(w)?;
        }
        if let Some(t) = transcodes {
            json["transcodes"] = serde_json::to_value(t)?;
        }
        ctx.print_json(&json)?;
    }
    Ok(code)
}
