//! The checker's side: the spool copy re-read from disk and compared, committed, recorded as
//! checked with its exact payload, and the `acquired` event logged from that payload. Apart
//! because it runs on its own thread, behind the copy.

use super::{Acquirer, CheckJob};
use crate::acquire::copy;
use crate::acquire::progress::SessionProgress;
use crate::journal::{Recognised, Shown};
use evidock_verify::event::Subject;
use evidock_verify::event::payload::{AcquiredPayload, CameraPath};
use evidock_verify::id::{DeviceSerial, EvidenceId, SessionId};

impl Acquirer {
    /// Re-read the copy from disk; if it matches, commit it to the spool and log `acquired`.
    /// A mismatch returns the job for another copy.
    pub(super) fn check_and_log(
        &self,
        session: &SessionId,
        device: &DeviceSerial,
        job: CheckJob,
        progress: &SessionProgress,
    ) -> Result<Option<CheckJob>, String> {
        let checked = copy::check(&job.part, &job.payload.digests, self.digests)
            .map_err(|e| e.to_string())?;
        if !checked.mismatched.is_empty() {
            tracing::error!(file = %job.payload.path, mismatched = ?checked.mismatched, "spool copy differs from the bytes read off the camera; copying again");
            return Ok(Some(job));
        }
        self.spool
            .commit(&job.part, &job.payload.digests.sha256)
            .map_err(|e| e.to_string())?;
        evidock_store::crash_point!("acquire.spool-commit");
        let json = serde_json::to_string(&job.payload).map_err(|e| e.to_string())?;
        self.journal
            .set_checked(
                session,
                device,
                &job.path,
                &Recognised {
                    size: job.payload.size,
                    mtime_ns: job.mtime_ns,
                    edge: &checked.edge,
                    evidence: &job.evidence,
                    sha256: &job.payload.digests.sha256,
                },
                &job.payload.digests,
                &json,
            )
            .map_err(|e| e.to_string())?;
        evidock_store::crash_point!("acquire.checked");
        self.log_checked(session, device, &job.path, progress)
    }

    /// Log the `acquired` event of a checked file from its journal payload.
    pub(super) fn log_checked(
        &self,
        session: &SessionId,
        _device: &DeviceSerial,
        path: &[u8],
        progress: &SessionProgress,
    ) -> Result<Option<CheckJob>, String> {
        let json = self
            .journal
            .checked_payload(session, path)
            .map_err(|e| e.to_string())?
            .ok_or_else(|| {
                format!(
                    "journal: no payload for checked file {}",
                    CameraPath(path.to_vec())
                )
            })?;
        let payload: AcquiredPayload = serde_json::from_str(&json).map_err(|e| e.to_string())?;
        let evidence = EvidenceId::derive(&self.station, session, path);
        let seq = self.append_once(
            Subject::Evidence(evidence.clone()),
            format!("acquired/{session}/{evidence}"),
            &payload,
        )?;
        evidock_store::crash_point!("acquire.logged");
        let recorded = payload.recorded.as_ref().map(|r| r.corrected.to_string());
        self.journal
            .set_acquired(
                session,
                path,
                seq,
                &Shown {
                    officer: payload.officer.as_ref(),
                    recorded_raw: payload.recorded.as_ref().map(|r| r.raw.as_str()),
                    recorded: recorded.as_deref(),
                    time_rule: payload.recorded.as_ref().map(|r| r.rule.as_str()),
                    important: payload.important,
                },
                &crate::journal::NewUpload::original(
                    &evidence,
                    &payload.digests.sha256,
                    payload.size,
                    self.spool.object_path(&payload.digests.sha256),
                ),
                self.clock.now(),
            )
            .map_err(|e| e.to_string())?;
        evidock_store::crash_point!("acquire.recorded");
        progress.add(&progress.files_done, 1);
        Ok(None)
    }
}
