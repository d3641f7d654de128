//! The wipe, a stage of its own: a camera released and still docked waits here, holding no
//! acquisition slot and no thread, until every upload of its files is verified; then the files
//! whose verified upload is recorded are deleted from it (`crate::wipe`, invariant 4). It is
//! woken by a release and by each acknowledged upload, so it needs no poll and no deadline: a
//! camera left docked overnight behind a slow uplink is wiped when the last upload lands.
//! Undocked first, or the station stopping: the camera is wiped at its next docking instead.

use super::stage::{Pass, Stage, StageError};
use super::wake::Wake;
use crate::acquire::session::{Acquirer, DockedCamera, StopSignal};
use evidock_verify::id::SessionId;
use std::sync::{Arc, Mutex};

/// A released camera waiting for its wipe.
pub struct Waiting {
    pub cam: DockedCamera,
    pub session: SessionId,
    /// The slot's stop signal: set when the camera leaves or the station stops.
    pub stop: Arc<StopSignal>,
    /// Whether a wipe an earlier docking left half-done was settled yet.
    settled: bool,
}

/// The cameras waiting, shared by the dock (which offers them at release) and the stage.
#[derive(Clone, Default)]
pub struct WipeQueue {
    waiting: Arc<Mutex<Vec<Waiting>>>,
    /// The slots of the cameras waiting or being wiped: the dock starts no new acquisition in
    /// them until the wipe is settled.
    slots: Arc<Mutex<std::collections::BTreeSet<String>>>,
    /// Bumped whenever a slot is freed: the dock then takes a camera docked there meanwhile.
    freed: Wake,
}

impl std::fmt::Debug for WipeQueue {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("WipeQueue")
            .field("waiting", &self.len())
            .finish()
    }
}

impl WipeQueue {
    /// A released camera, still docked: wiped once its uploads are verified.
    pub fn offer(&self, cam: DockedCamera, session: SessionId, stop: Arc<StopSignal>) {
        if let Some(slot) = &cam.slot {
            self.slots_lock().insert(slot.clone());
        }
        self.lock().push(Waiting {
            cam,
            session,
            stop,
            settled: false,
        });
    }

    /// The camera in `slot` left: it is no longer waiting (it is wiped at its next docking),
    /// so that docking it again starts a new acquisition at once. One being wiped at this
    /// instant keeps the slot until its wipe returns (an undocked card fails it at once).
    pub fn departed(&self, slot: &str) {
        let mut waiting = self.lock();
        let before = waiting.len();
        waiting.retain(|w| w.cam.slot.as_deref() != Some(slot));
        if waiting.len() < before {
            self.free(slot);
        }
    }

    /// What the dock waits on to take a camera docked in a slot this queue held.
    pub fn freed(&self) -> &Wake {
        &self.freed
    }

    fn free(&self, slot: &str) {
        self.slots_lock().remove(slot);
        self.freed.bump();
    }

    /// Whether the camera in `slot` waits for its wipe or is being wiped.
    pub fn holds(&self, slot: &str) -> bool {
        self.slots_lock().contains(slot)
    }

    fn settled(&self, slot: Option<&String>) {
        if let Some(slot) = slot {
            self.free(slot);
        }
    }

    fn slots_lock(&self) -> std::sync::MutexGuard<'_, std::collections::BTreeSet<String>> {
        self.slots.lock().unwrap_or_else(|p| p.into_inner())
    }

    pub fn len(&self) -> usize {
        self.lock().len()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Vec<Waiting>> {
        self.waiting.lock().unwrap_or_else(|p| p.into_inner())
    }

    fn take(&self) -> Vec<Waiting> {
        std::mem::take(&mut *self.lock())
    }

    /// Those still waiting after a pass, back in the queue; but a camera that left (or a
    /// station stopping) while the pass had it is not waiting any more: its slot is freed now,
    /// not at some later wake-up.
    fn put_back(&self, w: Vec<Waiting>) {
        let (gone, mut still): (Vec<_>, Vec<_>) = w
            .into_iter()
            .partition(|w| w.stop.between_files().is_some());
        self.lock().append(&mut still);
        for w in gone {
            self.settled(w.cam.slot.as_ref());
        }
    }
}

pub struct Wipe {
    pub acquirer: Acquirer,
    pub queue: WipeQueue,
}

impl Stage for Wipe {
    fn name(&self) -> &'static str {
        "wipe"
    }
    async fn pass(&mut self) -> Result<Pass, StageError> {
        let waiting = self.queue.take();
        if waiting.is_empty() {
            return Ok(Pass::default());
        }
        let (acquirer, queue) = (self.acquirer.clone(), self.queue.clone());
        // Journal reads and deletions on the camera: blocking work, off the async workers.
        let (left, done) = match tokio::task::spawn_blocking(move || {
            let mut left = Vec::new();
            let mut done = 0;
            for w in waiting {
                let slot = w.cam.slot.clone();
                match step(&acquirer, w) {
                    Some(w) => left.push(w),
                    None => {
                        queue.settled(slot.as_ref());
                        done += 1;
                    }
                }
            }
            (left, done)
        })
        .await
        {
            Ok(r) => r,
            Err(e) if e.is_panic() => std::panic::resume_unwind(e.into_panic()),
            Err(_) => return Ok(Pass::default()),
        };
        self.queue.put_back(left);
        Ok(Pass::did(done))
    }
}

/// One camera: settled, wiped, or still waiting (`Some`).
fn step(acquirer: &Acquirer, mut w: Waiting) -> Option<Waiting> {
    let session = &w.session;
    if !w.settled {
        // A wipe an earlier docking left half-done is recorded now, not only after uploads.
        match acquirer.settle_wipes_of(&w.cam) {
            Ok(s) if !s.is_empty() => {
                tracing::warn!(%session, settled = s.len(), "an earlier wipe cut off was settled")
            }
            Ok(_) => {}
            Err(e) => {
                tracing::error!(%session, error = %e, "an earlier wipe could not be settled; tried again at the next docking")
            }
        }
        w.settled = true;
    }
    if w.cam.profile.wipe == crate::device::profile::WipePolicy::Never {
        return None;
    }
    let device = w.cam.device.clone()?;
    if let Some(why) = w.stop.between_files() {
        tracing::info!(%session, %device, reason = why, "not wiped now; the camera is wiped at its next docking");
        return None;
    }
    // Every upload of this camera's files, not only this session's: after a crash the files
    // of an earlier docking may still be on their way, and are wiped at this one.
    if !acquirer.camera_uploaded(&device) {
        return Some(w);
    }
    match acquirer.wipe(&mut w.cam, session) {
        Ok(out) => {
            for (f, why) in &out.kept {
                tracing::info!(file = %f, reason = %why, "kept on the camera");
            }
        }
        Err(e) => tracing::error!(%session, error = %e, "wipe failed; the camera keeps its files"),
    }
    None
}

impl std::fmt::Debug for Waiting {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Waiting").finish_non_exhaustive()
    }
}

impl std::fmt::Debug for Wipe {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Wipe").finish_non_exhaustive()
    }
}
