//! Copying every file of the card, two threads per camera: the copy of one file and the re-read
//! check of the files before it (in groups, see check.rs) at the same time; a copy whose
//! re-read did not match is copied once more and checked inline. Apart because it is the one
//! place with threads and channels.

use super::listing::Listing;
use super::{Acquirer, CheckJob, DockedCamera, FileCtx, Stop, StopSignal, Stopped, fail};
use crate::acquire::progress::SessionProgress;
use crate::device::volume::Volume;
use evidock_verify::digest::{BufferPool, MultiHasher};
use evidock_verify::event::payload::CameraIdentity;
use evidock_verify::id::{DeviceSerial, SessionId};
use std::sync::mpsc::sync_channel;

impl Acquirer {
    /// Copy and check every listed file; returns once each is acquired, skipped or failed.
    #[allow(clippy::too_many_arguments)]
    pub(super) fn copy_files(
        &self,
        cam: &DockedCamera,
        volume: &Volume,
        session: &SessionId,
        device: &DeviceSerial,
        identity: &CameraIdentity,
        listing: &Listing<'_>,
        progress: &SessionProgress,
        stop: &StopSignal,
    ) -> Result<(), Stopped> {
        let Listing {
            files,
            names,
            corrected,
        } = listing;
        let s = Some(session);
        let pool = BufferPool::new(self.tuning.buffers, self.tuning.buffer_size);
        let mut hasher = MultiHasher::new(self.digests, self.tuning.buffers)
            .map_err(|e| fail(s, format!("cannot start digest threads: {e}")))?;
        // The checker's own buffers and digest threads: the re-read of one file runs while the
        // next is copied, and neither waits for the other's buffers.
        let check_pool = BufferPool::new(self.tuning.buffers, self.tuning.buffer_size);
        let mut check_hasher = MultiHasher::new(self.digests, self.tuning.buffers)
            .map_err(|e| fail(s, format!("cannot start digest threads: {e}")))?;
        let checker_error: std::sync::Mutex<Option<String>> = std::sync::Mutex::new(None);
        // Room for a whole group: what the copier finishes while the checker commits the group
        // before is committed together next.
        let group = self.tuning.group.max(1);
        let (job_tx, job_rx) = sync_channel::<CheckJob>(group);
        let (redo_tx, redo_rx) = std::sync::mpsc::channel::<CheckJob>();

        let result: Result<(), Stop> = std::thread::scope(|scope| {
            // The checker: re-read from disk, commit, log — while the next files copy.
            let checker = scope.spawn(|| {
                let job_rx = job_rx; // the receiver moves to this thread (it is not `Sync`)
                while let Ok(first) = job_rx.recv() {
                    let mut jobs = vec![first];
                    while jobs.len() < group
                        && let Ok(job) = job_rx.try_recv()
                    {
                        jobs.push(job);
                    }
                    let bufs = (&check_pool, &mut check_hasher);
                    match self.check_and_log(session, device, jobs, bufs, progress) {
                        Ok(redo) => {
                            for job in redo {
                                let _ = redo_tx.send(job);
                            }
                        }
                        Err(e) => {
                            *checker_error.lock().unwrap_or_else(|p| p.into_inner()) = Some(e);
                            break;
                        }
                    }
                }
            });
            let copy_result = (|| {
                for (i, (path, meta)) in files.iter().enumerate() {
                    if let Some(e) = checker_error
                        .lock()
                        .unwrap_or_else(|p| p.into_inner())
                        .clone()
                    {
                        return Err(Stop::Failed(e));
                    }
                    if let Some(reason) = stop.between_files() {
                        return Err(Stop::Interrupted(reason.to_string()));
                    }
                    let ctx = FileCtx {
                        session,
                        device,
                        identity,
                        path,
                        meta: *meta,
                        name: &names[i],
                        recorded: corrected[i].clone(),
                    };
                    if let Some(job) =
                        self.copy_one(cam, volume, &ctx, &pool, &mut hasher, progress, stop)?
                        && job_tx.send(job).is_err()
                    {
                        break;
                    }
                }
                Ok(())
            })();
            drop(job_tx);
            let _ = checker.join();
            copy_result
        });
        result.map_err(|e| (Some(session.clone()), e))?;
        if let Some(e) = checker_error
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .clone()
        {
            return Err(fail(s, e));
        }
        // Copies whose re-read did not match: copy once more, check inline.
        for job in redo_rx.try_iter() {
            let Some((path, meta)) = files.iter().find(|(p, _)| **p == job.path) else {
                continue;
            };
            let i = files.iter().position(|(p, _)| *p == *path).unwrap_or(0);
            let ctx = FileCtx {
                session,
                device,
                identity,
                path,
                meta: *meta,
                name: &names[i],
                recorded: corrected[i].clone(),
            };
            let _ = fs_err::remove_file(&job.part);
            if let Err(e) = self.journal.remove_partial(device, path) {
                return Err(fail(s, e.to_string()));
            }
            if let Some(job) = self
                .copy_one(cam, volume, &ctx, &pool, &mut hasher, progress, stop)
                .map_err(|e| (Some(session.clone()), e))?
                && let Some(again) = self
                    .check_and_log(
                        session,
                        device,
                        vec![job],
                        (&check_pool, &mut check_hasher),
                        progress,
                    )
                    .map_err(|e| fail(s, e))?
                    .pop()
            {
                let _ = fs_err::remove_file(&again.part);
                self.record_failure(
                        session,
                        device,
                        &again.path,
                        &again.evidence,
                        meta.size,
                        meta.mtime_ns,
                        "the spool copy did not match the camera's bytes when re-read from disk, twice: check the spool disk".into(),
                        true,
                        progress,
                    )
                    .map_err(|e| fail(s, e))?;
            }
        }
        Ok(())
    }
}
