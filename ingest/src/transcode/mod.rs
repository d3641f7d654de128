//! Derivatives: a playback copy every court PC plays (H.264 + AAC in MP4, or AAC in M4A for
//! audio), a poster frame and a contact sheet per video, a thumbnail per photo — each made
//! from the spool copy of the original, hashed, logged as a `transcoded` custody event that
//! names its parent, the settings and the FFmpeg versions, and queued for upload.
//!
//! The original is never touched. A recording that cannot be read (`transcode-failed`) blocks
//! nothing else. Work is per content: two evidence items with the same bytes share derivatives.
//!
//! ```text
//! <data dir>/derivatives/sha256/ab/cd/<hex>    finished derivatives, write-once, 0440
//! <data dir>/derivatives/partial/              being written; discarded and redone after a crash
//! ```

mod kind;
#[cfg(feature = "transcode")]
pub mod media;
#[cfg(not(feature = "transcode"))]
#[path = "media_none.rs"]
pub mod media;
pub mod salvage;
pub mod settings;

use kind::is_mp4_family;
pub use kind::{MediaKind, kind_of};

use crate::acquire::spool::Spool;
pub use crate::journal::TranscodeState;
use crate::journal::{EvidenceRow, Journal, NewUpload};
use evidock_store::clock::Clock;
use evidock_store::log::SharedLog;
use evidock_store::objects::layout;
use evidock_verify::digest::{DigestSet, hash_reader};
use evidock_verify::event::payload::{
    CameraPath, ObjectRole, TranscodeFailedPayload, TranscodedPayload,
};
use evidock_verify::event::{Actor, NewEvent, Payload, Subject};
use evidock_verify::id::{EvidenceId, Sha256, StationId};
use evidock_verify::media::MediaInfo;
use serde::Serialize;
pub use settings::{TranscodeSection, TranscodeSettings};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

/// Media metadata for an evidence record: only for media files, and `None` when the file
/// cannot be read as media (a truncated recording has no index to read).
pub fn probe_original(path: &Path, name: &CameraPath) -> Option<MediaInfo> {
    kind_of(name.as_bytes())?;
    media::probe(path).ok()
}

/// One derivative made and logged.
#[derive(Debug, Clone, Serialize)]
pub struct Made {
    pub role: ObjectRole,
    pub sha256: Sha256,
    pub size: u64,
    pub format: String,
}

/// The result of one job.
#[derive(Debug, Clone, Serialize)]
pub struct Job {
    pub evidence: EvidenceId,
    pub parent_sha256: Sha256,
    pub path: String,
    pub kind: MediaKind,
    /// Position of its `acquired` event.
    #[serde(skip)]
    pub seq: Option<u64>,
    /// `remux`, `transcode`, `salvage`, or `thumbnail` (photos).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub mode: Option<String>,
    pub made: Vec<Made>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub salvaged_with: Option<EvidenceId>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
}

/// Makes derivatives for a station.
#[derive(Clone)]
pub struct Transcoder {
    pub station: StationId,
    pub log: SharedLog,
    pub journal: Arc<Journal>,
    pub spool: Spool,
    pub derivatives: Spool,
    pub clock: Arc<dyn Clock>,
    pub settings: TranscodeSettings,
    /// Set when the station shuts down: the backlog stops between jobs and a job stops between
    /// packets, recording nothing (it is made again at the next start).
    pub stop: Arc<AtomicBool>,
    /// Cameras being copied: no new job starts meanwhile (the backlog keeps it).
    pub give_way: crate::acquire::foreground::GiveWay,
}

impl std::fmt::Debug for Transcoder {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Transcoder")
            .field("settings", &self.settings)
            .finish()
    }
}

/// The settings recorded with a derivative: the station's settings and what this job did.
#[derive(Serialize)]
struct Recorded<'a> {
    #[serde(flatten)]
    settings: &'a TranscodeSettings,
    mode: &'a str,
    video_frames: u64,
    audio_frames: u64,
    decode_errors: u64,
    #[serde(skip_serializing_if = "Option::is_none")]
    burn_in_text: Option<&'a str>,
    /// For salvage: the samples found in the media data.
    #[serde(skip_serializing_if = "Option::is_none")]
    salvaged_samples: Option<u64>,
}

impl Transcoder {
    /// Acquired media items whose content has no derivatives yet (nor a recorded failure), in
    /// acquisition order; one item per content.
    pub fn pending(&self) -> Result<Vec<EvidenceRow>, String> {
        self.journal
            .transcode_backlog()
            .map(queue)
            .map_err(|e| e.to_string())
    }

    /// Work through the backlog until it is empty or `stop` is set.
    /// `settings.jobs` jobs run at once (threads started here inherit the caller's priority).
    pub fn run_pending(&self) -> Result<Vec<Job>, String> {
        let stop = &self.stop;
        let queue = std::sync::Mutex::new(std::collections::VecDeque::from(self.pending()?));
        let done = std::sync::Mutex::new(Vec::new());
        let work = || {
            loop {
                if stop.load(Ordering::Relaxed) || self.give_way.hold_back().is_some() {
                    break;
                }
                let next = queue.lock().unwrap_or_else(|p| p.into_inner()).pop_front();
                let Some(row) = next else { break };
                let job = self.run(&row);
                done.lock().unwrap_or_else(|p| p.into_inner()).push(job);
            }
        };
        std::thread::scope(|s| {
            for _ in 1..self.settings.jobs {
                s.spawn(work);
            }
            work();
        });
        let mut jobs = done.into_inner().unwrap_or_else(|p| p.into_inner());
        // In acquisition order, whichever worker finished first.
        jobs.sort_by_key(|j: &Job| j.seq);
        Ok(jobs)
    }

    /// Make (or make again) the derivatives of one evidence item.
    pub fn run(&self, row: &EvidenceRow) -> Job {
        let kind = kind_of(row.path.as_bytes()).unwrap_or(MediaKind::Video);
        let mut job = Job {
            evidence: row.id.clone(),
            parent_sha256: row.sha256,
            path: row.path.clone(),
            kind,
            seq: row.seq,
            mode: None,
            made: Vec::new(),
            salvaged_with: None,
            error: None,
        };
        let now = self.clock.now();
        if let Err(e) =
            self.journal
                .set_transcode(&row.sha256, &row.id, TranscodeState::Started, None, now)
        {
            tracing::error!(evidence = %row.id, error = %e, "journal: the transcode job's start was not recorded");
        }
        match self.make(row, kind, &mut job) {
            // Not the file's failure: left pending (state `started`) for the next start.
            Err(reason) if self.stop.load(Ordering::Relaxed) => {
                tracing::info!(evidence = %row.id, %reason, "transcode interrupted by shutdown; made again at the next start");
                job.error = Some(reason);
                return job;
            }
            Ok(()) => {
                if let Err(e) = self.journal.set_transcode(
                    &row.sha256,
                    &row.id,
                    TranscodeState::Done,
                    None,
                    self.clock.now(),
                ) {
                    tracing::error!(evidence = %row.id, error = %e, "journal: the job was not marked done (made again at the next start: write-once, nothing doubles)");
                }
                evidock_store::crash_point!("transcode.done");
                tracing::info!(evidence = %row.id, path = %row.path, mode = ?job.mode, derivatives = job.made.len(), "derivatives made");
            }
            Err(reason) => {
                tracing::warn!(evidence = %row.id, path = %row.path, %reason, "no playback copy");
                let logged = self.append(
                    &row.id,
                    format!(
                        "transcode-failed/{}/{}",
                        row.sha256,
                        &Sha256::digest(reason.as_bytes()).to_hex()[..16]
                    ),
                    &TranscodeFailedPayload {
                        parent_sha256: row.sha256,
                        reason: reason.clone(),
                    },
                );
                let reason = match logged {
                    Ok(_) => reason,
                    Err(e) => format!("{reason}; and the failure was not logged: {e}"),
                };
                if let Err(e) = self.journal.set_transcode(
                    &row.sha256,
                    &row.id,
                    TranscodeState::Failed,
                    Some(&reason),
                    self.clock.now(),
                ) {
                    tracing::error!(evidence = %row.id, error = %e, "journal: the failure was not recorded (tried again at the next start)");
                }
                evidock_store::crash_point!("transcode.failed");
                job.error = Some(reason);
            }
        }
        // Seal what this job logged: a checkpoint covers its events.
        if let Err(e) = self
            .log
            .seal(evidock_store::checkpoints::Moment::Transcoded)
        {
            tracing::error!(evidence = %row.id, error = %e, "could not sign a checkpoint after transcoding");
        }
        job
    }

    fn append<P: Payload>(&self, ev: &EvidenceId, key: String, p: &P) -> Result<u64, String> {
        let e = NewEvent::new(
            Actor::station(&self.station),
            Subject::Evidence(ev.clone()),
            key,
            p,
        )
        .map_err(|e| e.to_string())?;
        self.log
            .append_once(e)
            .map(|a| a.event.seq)
            .map_err(|e| format!("custody log: {e}"))
    }

    fn partial(&self, parent: &Sha256, role: &str, ext: &str) -> PathBuf {
        self.derivatives
            .root()
            .join("partial")
            .join(format!("{}-{role}.{ext}", parent.to_hex()))
    }

    fn make(&self, row: &EvidenceRow, kind: MediaKind, job: &mut Job) -> Result<(), String> {
        let original = self.spool.object_path(&row.sha256);
        if !original.is_file() {
            return Err(format!(
                "the spool copy {} is missing (already cleaned up?)",
                original.display()
            ));
        }
        if row.size == 0 {
            return Err("the file is empty (0 bytes): nothing to play".into());
        }
        let s = &self.settings;
        let versions = media::versions();
        match kind {
            MediaKind::Photo => {
                job.mode = Some("thumbnail".into());
                let poster = self.partial(&row.sha256, "poster", "jpg");
                media::thumbnails(&original, &poster, None, s.thumbnail_width)
                    .map_err(|e| e.to_string())?;
                let rec = Recorded {
                    settings: s,
                    mode: "thumbnail",
                    video_frames: 1,
                    audio_frames: 0,
                    decode_errors: 0,
                    burn_in_text: None,
                    salvaged_samples: None,
                };
                self.keep(
                    row,
                    ObjectRole::Poster,
                    &poster,
                    "jpeg",
                    &rec,
                    &versions,
                    None,
                    job,
                )?;
            }
            MediaKind::Video | MediaKind::Audio => {
                let overlay = s.burn_in.then(|| burn_in_text(row));
                let ext = if kind == MediaKind::Video {
                    "mp4"
                } else {
                    "m4a"
                };
                let out = self.partial(&row.sha256, "playback", ext);
                let poster = self.partial(&row.sha256, "poster", "jpg");
                let sheet = self.partial(&row.sha256, "contact-sheet", "jpg");
                let stills = (kind == MediaKind::Video).then_some(media::Stills {
                    poster: &poster,
                    sheet: &sheet,
                });
                let (written, salvaged) = match media::probe(&original) {
                    Ok(info) => {
                        let w = if s.can_remux(&info, kind) {
                            media::remux(&original, &out)
                        } else {
                            let o = overlay.as_deref();
                            media::transcode(&original, &out, s, o, stills, &self.stop)
                        };
                        (w.map_err(|e| e.to_string())?, None)
                    }
                    Err(probe_err)
                        if kind == MediaKind::Video && is_mp4_family(row.path.as_bytes()) =>
                    {
                        let (w, with, samples) = self
                            .salvage(row, &original, &out, overlay.as_deref())
                            .map_err(|e| format!("{probe_err}; salvage: {e}"))?;
                        (w, Some((with, samples)))
                    }
                    Err(e) => return Err(e.to_string()),
                };
                job.mode = Some(written.mode.to_string());
                job.salvaged_with = salvaged.as_ref().map(|(w, _)| w.clone());
                let rec = Recorded {
                    settings: s,
                    mode: written.mode,
                    video_frames: written.video_frames,
                    audio_frames: written.audio_frames,
                    decode_errors: written.decode_errors,
                    burn_in_text: overlay.as_deref(),
                    salvaged_samples: salvaged.as_ref().map(|(_, n)| *n),
                };
                let format = media::probe(&out)
                    .map(|i| i.summary())
                    .map_err(|e| format!("the playback copy does not read back: {e}"))?;
                let with = salvaged.map(|(w, _)| w);
                let playback = self.keep(
                    row,
                    ObjectRole::Playback,
                    &out,
                    &format,
                    &rec,
                    &versions,
                    with.clone(),
                    job,
                )?;
                if kind == MediaKind::Video {
                    let [c, r] = s.contact_sheet;
                    // Remuxed or salvaged (or a sample time never reached): from the copy.
                    if !written.stills {
                        let sheet = Some((sheet.as_path(), c, r));
                        media::thumbnails(&playback, &poster, sheet, s.thumbnail_width)
                            .map_err(|e| format!("thumbnails: {e}"))?;
                    }
                    let thumb = Recorded {
                        mode: "thumbnail",
                        video_frames: u64::from(c * r),
                        ..rec
                    };
                    self.keep(
                        row,
                        ObjectRole::Poster,
                        &poster,
                        "jpeg",
                        &thumb,
                        &versions,
                        with.clone(),
                        job,
                    )?;
                    self.keep(
                        row,
                        ObjectRole::ContactSheet,
                        &sheet,
                        "jpeg",
                        &thumb,
                        &versions,
                        with,
                        job,
                    )?;
                }
            }
        }
        Ok(())
    }

    /// A truncated recording: the codec parameters from a healthy recording of the same
    /// camera, the samples from the media data.
    fn salvage(
        &self,
        row: &EvidenceRow,
        original: &Path,
        out: &Path,
        overlay: Option<&str>,
    ) -> Result<(media::Written, EvidenceId, u64), String> {
        // What the file is does not depend on the reference: say so once.
        let mut f = std::fs::File::open(original).map_err(|e| e.to_string())?;
        salvage::find_mdat(&mut f).map_err(|e| e.to_string())?;
        drop(f);
        let mut candidates: Vec<EvidenceRow> = self
            .journal
            .evidence()
            .map_err(|e| e.to_string())?
            .into_iter()
            .filter(|r| {
                r.device == row.device
                    && r.sha256 != row.sha256
                    && kind_of(r.path.as_bytes()) == Some(MediaKind::Video)
                    && is_mp4_family(r.path.as_bytes())
            })
            .collect();
        // The nearest recordings first: most likely the same encoder settings.
        let at = row.seq.unwrap_or(0) as i64;
        candidates.sort_by_key(|r| (r.seq.unwrap_or(0) as i64 - at).abs());
        let mut tried = 0;
        for c in candidates.iter().take(8) {
            let path = self.spool.object_path(&c.sha256);
            let Ok(avcc) = salvage::avc_config_of(&path) else {
                continue;
            };
            let Some(cfg) = salvage::AvcConfig::parse(&avcc) else {
                continue;
            };
            tried += 1;
            let Ok((_, samples)) = salvage::scan(original, &cfg) else {
                continue;
            };
            let n = samples.len() as u64;
            let packets = salvage::read_samples(original, samples).map_err(|e| e.to_string())?;
            match media::transcode_packets(&path, packets, out, &self.settings, overlay, &self.stop)
            {
                Ok(w) => return Ok((w, c.id.clone(), n)),
                Err(e) => {
                    tracing::warn!(reference = %c.id, error = %e, "salvage with this reference failed")
                }
            }
        }
        Err(if tried == 0 {
            format!(
                "a truncated recording (no index), and no healthy H.264 recording of camera {} to take the codec parameters from",
                row.device
            )
        } else {
            format!(
                "no H.264 picture recovered with the parameters of {tried} healthy recording(s)"
            )
        })
    }

    /// Hash a finished derivative, keep it under its SHA-256, log it and queue its upload.
    /// Returns where it is kept.
    #[allow(clippy::too_many_arguments)]
    fn keep(
        &self,
        row: &EvidenceRow,
        role: ObjectRole,
        partial: &Path,
        format: &str,
        rec: &Recorded<'_>,
        versions: &serde_json::Value,
        salvaged_with: Option<EvidenceId>,
        job: &mut Job,
    ) -> Result<PathBuf, String> {
        let f = std::fs::File::open(partial).map_err(|e| format!("{}: {e}", partial.display()))?;
        f.sync_all()
            .map_err(|e| format!("fsync {}: {e}", partial.display()))?;
        let (d, size) = hash_reader(&mut &f, DigestSet::SHA256_ONLY)
            .map_err(|e| format!("hash {}: {e}", partial.display()))?;
        drop(f);
        let sha = d.sha256;
        let kept = self
            .derivatives
            .commit(partial, &sha)
            .map_err(|e| e.to_string())?;
        evidock_store::crash_point!("transcode.kept");
        let role_name = role_name(role);
        self.append(
            &row.id,
            format!("transcoded/{}/{role_name}/{sha}", row.sha256),
            &TranscodedPayload {
                role,
                parent_sha256: row.sha256,
                sha256: sha,
                size,
                format: format.to_string(),
                settings: serde_json::to_value(rec).map_err(|e| e.to_string())?,
                ffmpeg: versions.clone(),
                salvaged_with,
            },
        )?;
        evidock_store::crash_point!("transcode.logged");
        self.journal
            .enqueue_upload(
                &NewUpload {
                    evidence: row.id.clone(),
                    role: role_name.into(),
                    sha256: sha,
                    size,
                    source: kept.clone(),
                    key: layout::derivative(&sha),
                },
                self.clock.now(),
            )
            .map_err(|e| e.to_string())?;
        evidock_store::crash_point!("transcode.queued");
        job.made.push(Made {
            role,
            sha256: sha,
            size,
            format: format.to_string(),
        });
        Ok(kept)
    }
}

fn role_name(role: ObjectRole) -> &'static str {
    match role {
        ObjectRole::Original => "original",
        ObjectRole::Playback => "playback",
        ObjectRole::Poster => "poster",
        ObjectRole::ContactSheet => "contact-sheet",
        ObjectRole::Record => "record",
    }
}

/// Device serial, 警号 and the corrected recording time (ASCII: any font draws it).
fn burn_in_text(row: &EvidenceRow) -> String {
    let mut t = row.device.to_string();
    if let Some(o) = &row.officer {
        t.push_str(&format!("  No.{o}"));
    }
    if let Some(r) = row.recorded.as_deref().or(row.recorded_raw.as_deref()) {
        t.push_str(&format!("  {r}"));
    }
    t
}

/// Run the calling thread (and the FFmpeg threads it starts, which inherit it) at a lower CPU
/// priority, so acquisition — what officers wait for — goes first.
pub fn lower_priority() {
    if let Err(e) = rustix::process::setpriority_process(Some(rustix::thread::gettid()), 10) {
        tracing::warn!(error = %e, "could not lower the transcode thread's priority");
    }
}

/// The jobs of the journal's transcode backlog (acquired items whose content has no derivatives
/// and no recorded failure, in acquisition order): media only, one job per content (its first
/// item).
pub fn queue(backlog: Vec<EvidenceRow>) -> Vec<EvidenceRow> {
    let mut seen = std::collections::HashSet::new();
    backlog
        .into_iter()
        .filter(|row| kind_of(row.path.as_bytes()).is_some() && seen.insert(row.sha256))
        .collect()
}

/// Remove derivatives left half-written by a crash: each job starts again from the original.
pub fn discard_partials(derivatives: &Spool) {
    let dir = derivatives.root().join("partial");
    if let Ok(rd) = fs_err::read_dir(&dir) {
        for e in rd.flatten() {
            let _ = fs_err::remove_file(e.path());
        }
    }
}

#[cfg(test)]
mod tests;
