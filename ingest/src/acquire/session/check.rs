//! The checker's side: each spool copy of a group re-read from disk and compared, the good ones
//! committed, recorded as checked with their exact payloads, and their `acquired` events logged
//! from those payloads. Apart because it runs on its own thread, behind the copy.
//!
//! A group is what the copier has finished while the checker was busy (at most
//! `Tuning::group` files): its spool links share the directory fsyncs, its journal rows one
//! transaction per step, its events one fsync of the custody log. The order of the steps, and
//! what a crash between any two of them leaves, is the same as for one file; no file of the
//! group counts as acquired before all of its steps are durable.

use super::{Acquirer, CheckJob};
use crate::acquire::copy;
use crate::acquire::progress::SessionProgress;
use crate::acquire::spool::Dirs;
use crate::journal::{AcquiredRow, CheckedRow, NewUpload, Recognised, Shown};
use evidock_verify::digest::{BufferPool, MultiHasher};
use evidock_verify::event::payload::{AcquiredPayload, CameraPath};
use evidock_verify::event::{NewEvent, Subject};
use evidock_verify::id::{DeviceSerial, EvidenceId, SessionId, Sha256};

impl Acquirer {
    /// Re-read each copy of `jobs` from disk; commit those that match to the spool and log
    /// their `acquired` events. The jobs whose copy did not match are returned, to be copied
    /// again.
    pub(super) fn check_and_log(
        &self,
        session: &SessionId,
        device: &DeviceSerial,
        jobs: Vec<CheckJob>,
        (pool, hasher): (&BufferPool, &mut MultiHasher),
        progress: &SessionProgress,
    ) -> Result<Vec<CheckJob>, String> {
        let mut good: Vec<(CheckJob, Sha256)> = Vec::with_capacity(jobs.len());
        let mut redo = Vec::new();
        for job in jobs {
            let checked = copy::check(
                &job.part,
                &job.payload.digests,
                self.tuning.direct_io,
                pool,
                hasher,
            )
            .map_err(|e| e.to_string())?;
            if checked.mismatched.is_empty() {
                good.push((job, checked.edge));
            } else {
                tracing::error!(file = %job.payload.path, mismatched = ?checked.mismatched, "spool copy differs from the bytes read off the camera; copying again");
                // At once, not when the copy is made again: a session stopped before then must
                // not leave a resume point into bytes the check has just refused.
                self.journal
                    .remove_partial(device, &job.path)
                    .map_err(|e| e.to_string())?;
                if let Err(e) = fs_err::remove_file(&job.part)
                    && e.kind() != std::io::ErrorKind::NotFound
                {
                    return Err(e.to_string());
                }
                redo.push(job);
            }
        }
        if good.is_empty() {
            return Ok(redo);
        }
        let mut dirs = Dirs::default();
        for (job, _) in &good {
            self.spool
                .link(&job.part, &job.payload.digests.sha256, &mut dirs)
                .map_err(|e| e.to_string())?;
        }
        dirs.sync().map_err(|e| e.to_string())?;
        evidock_store::crash_point!("acquire.spool-commit");
        let json = good
            .iter()
            .map(|(job, _)| serde_json::to_string(&job.payload).map_err(|e| e.to_string()))
            .collect::<Result<Vec<_>, _>>()?;
        let rows: Vec<CheckedRow<'_>> = good
            .iter()
            .zip(&json)
            .map(|((job, edge), json)| CheckedRow {
                path: &job.path,
                recognised: Recognised {
                    size: job.payload.size,
                    mtime_ns: job.mtime_ns,
                    edge,
                    evidence: &job.evidence,
                    sha256: &job.payload.digests.sha256,
                },
                digests: &job.payload.digests,
                payload: json,
            })
            .collect();
        self.journal
            .set_checked_all(session, device, &rows)
            .map_err(|e| e.to_string())?;
        evidock_store::crash_point!("acquire.checked");
        let paths: Vec<&[u8]> = good.iter().map(|(job, _)| job.path.as_slice()).collect();
        self.log_checked(session, &paths, progress)?;
        Ok(redo)
    }

    /// Log the `acquired` events of checked files from their journal payloads (one fsync), then
    /// mark them acquired and queue their originals for upload (one transaction).
    pub(super) fn log_checked(
        &self,
        session: &SessionId,
        paths: &[&[u8]],
        progress: &SessionProgress,
    ) -> Result<(), String> {
        let mut payloads = Vec::with_capacity(paths.len());
        let mut events = Vec::with_capacity(paths.len());
        for path in paths {
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
            let payload: AcquiredPayload =
                serde_json::from_str(&json).map_err(|e| e.to_string())?;
            let evidence = EvidenceId::derive(&self.station, session, path);
            events.push(
                NewEvent::new(
                    self.actor(),
                    Subject::Evidence(evidence.clone()),
                    format!("acquired/{session}/{evidence}"),
                    &payload,
                )
                .map_err(|e| e.to_string())?,
            );
            payloads.push((evidence, payload));
        }
        let appended = self
            .log
            .append_batch_once(events)
            .map_err(|e| format!("custody log: {e}"))?;
        evidock_store::crash_point!("acquire.logged");
        let recorded: Vec<Option<String>> = payloads
            .iter()
            .map(|(_, p)| p.recorded.as_ref().map(|r| r.corrected.to_string()))
            .collect();
        let uploads: Vec<NewUpload> = payloads
            .iter()
            .map(|(evidence, p)| {
                NewUpload::original(
                    evidence,
                    &p.digests.sha256,
                    p.size,
                    self.spool.object_path(&p.digests.sha256),
                )
            })
            .collect();
        let rows: Vec<AcquiredRow<'_>> = paths
            .iter()
            .zip(&payloads)
            .zip(&appended)
            .zip(recorded.iter().zip(&uploads))
            .map(|(((path, (_, p)), a), (recorded, upload))| AcquiredRow {
                path,
                seq: a.event.seq,
                shown: Shown {
                    officer: p.officer.as_ref(),
                    recorded_raw: p.recorded.as_ref().map(|r| r.raw.as_str()),
                    recorded: recorded.as_deref(),
                    time_rule: p.recorded.as_ref().map(|r| r.rule.as_str()),
                    important: p.important,
                },
                upload,
            })
            .collect();
        self.journal
            .set_acquired_all(session, &rows, self.clock.now())
            .map_err(|e| e.to_string())?;
        evidock_store::crash_point!("acquire.recorded");
        progress.add(&progress.files_done, paths.len() as u64);
        Ok(())
    }
}
