//! One file of the card: replayed from the journal, recognised from an earlier docking and
//! skipped, or copied to the spool (resuming a partial copy) and handed to the checker with its
//! `acquired` payload. Apart because it is what happens to each file, not to the session.

use super::{Acquirer, CheckJob, DockedCamera, FileCtx, Stop, StopSignal, camera_left};
use crate::acquire::copy::{self, Copied, CopyError};
use crate::acquire::progress::SessionProgress;
use crate::device::volume::Volume;
use crate::journal::{FileState, Partial};
use chrono::DateTime;
use evidock_verify::digest::{BufferPool, MultiHasher};
use evidock_verify::event::payload::{AcquiredPayload, CameraPath, OfficerSource, SkippedPayload};
use evidock_verify::event::{Subject, Timestamp};
use evidock_verify::id::{EvidenceId, OfficerId};

impl Acquirer {
    /// Copy one file (or replay/skip it). Returns a job for the checker when bytes were copied.
    #[allow(clippy::too_many_arguments)]
    pub(super) fn copy_one(
        &self,
        cam: &DockedCamera,
        volume: &Volume,
        f: &FileCtx<'_>,
        pool: &BufferPool,
        hasher: &mut MultiHasher,
        progress: &SessionProgress,
        stop: &StopSignal,
    ) -> Result<Option<CheckJob>, Stop> {
        let jerr = |e: crate::journal::JournalError| Stop::Failed(e.to_string());
        let evidence = EvidenceId::derive(&self.station, f.session, f.path);
        let shown = CameraPath(f.path.clone()).display();
        progress.set_current(Some(shown.clone()));
        let row = self.journal.file(f.session, f.path).map_err(jerr)?;
        if let Some(r) = &row {
            if r.state.is_final() {
                progress.add(&progress.files_done, 1);
                progress.add(&progress.bytes_done, f.meta.size);
                return Ok(None);
            }
            if r.state == FileState::Checked {
                // Crashed between the spool commit and the event: log exactly what was checked.
                self.log_checked(f.session, &[f.path.as_slice()], progress)
                    .map_err(Stop::Failed)?;
                return Ok(None);
            }
        }

        // Re-docking: a file acquired from this camera before is recognised, not read again.
        if self.skip_recognised(cam, volume, f, &evidence, progress)? {
            return Ok(None);
        }

        // Room on the spool disk?
        if let Some(free) = self.spool.free_bytes()
            && free < f.meta.size.saturating_add(self.tuning.min_free_bytes)
        {
            return Err(Stop::Failed(format!(
                "spool disk full: {} needs {} bytes, {} free (keeping {} in reserve); this camera stops, others go on",
                shown, f.meta.size, free, self.tuning.min_free_bytes
            )));
        }

        // Resume a partial copy of the same file (same size and mtime), else start over.
        let partial = self.journal.partial(f.device, f.path).map_err(jerr)?;
        let part_path = self.spool.partial_path(f.device, f.path);
        let resume_at = match partial {
            Some(p)
                if p.size == f.meta.size
                    && p.mtime_ns == f.meta.mtime_ns
                    && p.spool_file == part_path =>
            {
                p.offset
            }
            _ => 0,
        };
        self.journal
            .put_copying(f.session, f.path, &evidence, f.meta.size, f.meta.mtime_ns)
            .map_err(jerr)?;
        evidock_store::crash_point!("acquire.copying");
        let mut src = match volume.open(f.path) {
            Ok(s) => s,
            Err(e) => {
                if camera_left(cam, stop) {
                    return Err(Stop::Interrupted(format!(
                        "the camera left while opening {shown}"
                    )));
                }
                let retriable = e.kind() != std::io::ErrorKind::NotFound;
                let reason = if e.kind() == std::io::ErrorKind::NotFound {
                    format!("{shown} vanished before it could be read")
                } else {
                    format!("cannot open {shown} on the camera: {e}")
                };
                self.record_failure(
                    f.session,
                    f.device,
                    f.path,
                    &evidence,
                    f.meta.size,
                    f.meta.mtime_ns,
                    reason,
                    retriable,
                    progress,
                )
                .map_err(Stop::Failed)?;
                return Ok(None);
            }
        };
        // The size and mtime right at opening: what the copy is compared against afterwards.
        let before = src.meta().unwrap_or(f.meta);
        if resume_at > 0 {
            progress.add(&progress.bytes_done, resume_at);
        }
        let mut durable = |offset: u64| {
            self.journal
                .put_partial(
                    f.device,
                    f.path,
                    &Partial {
                        size: f.meta.size,
                        mtime_ns: f.meta.mtime_ns,
                        spool_file: part_path.clone(),
                        offset,
                    },
                )
                .map_err(|e| e.to_string())
        };
        let mut bytes = |n: u64| progress.add(&progress.bytes_done, n);
        let target = copy::Target {
            part: &part_path,
            sync_every: self.tuning.sync_every,
            direct_write: self.tuning.direct_io && self.tuning.direct_write,
            direct_read: self.tuning.direct_io,
            pool,
        };
        let copied = match copy::copy(
            &mut src,
            before,
            target,
            resume_at,
            hasher,
            &mut durable,
            &mut bytes,
            &|| stop.now(),
        ) {
            Ok(c) => c,
            Err(CopyError::Stopped { offset, reason }) => {
                let _ = hasher.finish();
                return Err(Stop::Interrupted(format!(
                    "{reason} (at byte {offset} of {shown}; resumes there)"
                )));
            }
            Err(e) if e.is_disk_full() => {
                let _ = hasher.finish();
                let _ = fs_err::remove_file(&part_path);
                if let Err(e) = self.journal.remove_partial(f.device, f.path) {
                    tracing::error!(file = %shown, error = %e, "journal: the partial copy's row was not removed (a resume starts over)");
                }
                return Err(Stop::Failed(format!(
                    "spool disk full while copying {shown}: {e}; this camera stops, others go on"
                )));
            }
            Err(e @ CopyError::Camera { .. }) => {
                let _ = hasher.finish();
                if camera_left(cam, stop) {
                    return Err(Stop::Interrupted(format!(
                        "the camera left during {shown}: {e}"
                    )));
                }
                self.record_failure(
                    f.session,
                    f.device,
                    f.path,
                    &evidence,
                    f.meta.size,
                    f.meta.mtime_ns,
                    format!("{shown}: {e}"),
                    true,
                    progress,
                )
                .map_err(Stop::Failed)?;
                return Ok(None);
            }
            Err(e) => {
                let _ = hasher.finish();
                return Err(Stop::Failed(format!("{shown}: {e}")));
            }
        };
        if copied.changed {
            tracing::warn!(file = %shown, size_before = before.size, bytes_read = copied.size, "the file changed on the camera while it was copied; stored what was read");
        }

        let payload = self.acquired_payload(cam, f, &copied);
        Ok(Some(CheckJob {
            path: f.path.clone(),
            mtime_ns: f.meta.mtime_ns,
            evidence,
            part: part_path,
            payload,
        }))
    }

    /// Re-docking: a file acquired from this camera before (same path, size, mtime and first
    /// and last MiB) is logged as skipped, not read again. Returns whether it was skipped.
    fn skip_recognised(
        &self,
        cam: &DockedCamera,
        volume: &Volume,
        f: &FileCtx<'_>,
        evidence: &EvidenceId,
        progress: &SessionProgress,
    ) -> Result<bool, Stop> {
        let jerr = |e: crate::journal::JournalError| Stop::Failed(e.to_string());
        if !cam.full
            && let Some(prev) = self
                .journal
                .previous(f.device, f.path, f.meta.size, f.meta.mtime_ns)
                .map_err(jerr)?
        {
            let edge = volume
                .open(f.path)
                .and_then(|mut file| copy::edge_hash(&mut file));
            if let Ok(edge) = edge
                && edge == prev.edge_sha256
            {
                // The event first: a row that says skipped is final, so it must never stand
                // without the event that says so.
                self.append_once(
                            Subject::Evidence(evidence.clone()),
                            format!("skipped/{}/{evidence}", f.session),
                            &SkippedPayload {
                                session: f.session.clone(),
                                device: f.device.clone(),
                                path: CameraPath(f.path.clone()),
                                size: f.meta.size,
                                acquired_as: prev.evidence,
                                sha256: prev.sha256,
                                edge_sha256: Some(edge),
                                reason: "acquired at an earlier docking: the same path, size and mtime, and the SHA-256 of the first and last MiB read now equals the one recorded then; sha256 is that acquisition's".into(),
                            },
                        )
                        .map_err(Stop::Failed)?;
                evidock_store::crash_point!("acquire.skipped");
                self.journal
                    .put_file(
                        f.session,
                        f.path,
                        evidence,
                        f.meta.size,
                        f.meta.mtime_ns,
                        FileState::Skipped,
                        None,
                        None,
                    )
                    .map_err(jerr)?;
                evidock_store::crash_point!("acquire.skip-recorded");
                progress.add(&progress.skipped, 1);
                progress.add(&progress.files_done, 1);
                progress.add(&progress.bytes_done, f.meta.size);
                return Ok(true);
            }
        }
        Ok(false)
    }

    /// The `acquired` payload of a copied file, as the checker will log it.
    fn acquired_payload(
        &self,
        cam: &DockedCamera,
        f: &FileCtx<'_>,
        copied: &Copied,
    ) -> AcquiredPayload {
        let (officer, officer_source) = self.officer_for(cam, f);
        AcquiredPayload {
            session: f.session.clone(),
            device: f.device.clone(),
            officer,
            officer_source,
            slot: cam.slot.clone(),
            path: CameraPath(f.path.clone()),
            size: copied.size,
            digests: copied.digests.clone(),
            mtime: DateTime::from_timestamp(
                (f.meta.mtime_ns / 1_000_000_000) as i64,
                (f.meta.mtime_ns % 1_000_000_000) as u32,
            )
            .map(Timestamp::from_datetime),
            recorded: f.recorded.clone(),
            important: f.name.important,
            changed_during_copy: copied.changed,
            resumed_at: copied.resumed_at,
        }
    }

    /// The officer of a recording: the operator's word, else who was assigned the camera at the
    /// recording time, else what the camera says (file name, then ZFY_INFO).
    fn officer_for(
        &self,
        cam: &DockedCamera,
        f: &FileCtx<'_>,
    ) -> (Option<OfficerId>, Option<OfficerSource>) {
        if let Some(o) = &cam.operator {
            return (Some(o.clone()), Some(OfficerSource::Operator));
        }
        let at = f
            .recorded
            .as_ref()
            .map(|r| r.corrected.0)
            .unwrap_or_else(|| self.clock.now());
        if let Ok(Some(o)) = self.journal.assigned_officer(f.device, at) {
            return (Some(o), Some(OfficerSource::Assignment));
        }
        let from_name = f
            .name
            .officer
            .as_ref()
            .and_then(|o| OfficerId::new(o.clone()).ok());
        match from_name.or_else(|| f.identity.officer.clone()) {
            Some(o) => (Some(o), Some(OfficerSource::Camera)),
            None => (None, None),
        }
    }
}
