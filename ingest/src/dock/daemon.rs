//! The dock loop: every docked camera is acquired on its own threads (at most `max_cameras` at
//! once), departures stop their session at once (the copy in flight is kept for a resume), and a
//! shutdown lets in-flight copies finish before it returns.

use super::attach::attach;
use super::{Arrival, DockEvent};
use crate::acquire::progress::{SessionProgress, Snapshot};
use crate::acquire::session::{Acquirer, DockedCamera, Outcome, StopSignal};
use crate::device::profile::Profile;
use crate::pipeline::wake::Wake;
use crate::pipeline::wipe::WipeQueue;
use evidock_store::clock::Clock;
use evidock_store::log::SharedLog;
use evidock_verify::event::payload::UndockedPayload;
use evidock_verify::event::{Actor, NewEvent, Subject};
use evidock_verify::id::{DeviceSerial, SessionId};
use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};
use tokio::sync::{Semaphore, mpsc};
use tokio::task::JoinSet;

/// The stages a dock event wakes, one generation counter each (`crate::pipeline::wake`).
#[derive(Debug, Clone, Default)]
pub struct Wakes {
    pub timestamp: Wake,
    pub links: Wake,
    pub upload: Wake,
    pub transcode: Wake,
    pub wipe: Wake,
}

impl Wakes {
    /// A camera was released: its checkpoint to stamp, its recordings to link, transcode and
    /// upload, and itself, maybe, to wipe.
    pub fn released(&self) {
        for w in [
            &self.timestamp,
            &self.links,
            &self.upload,
            &self.transcode,
            &self.wipe,
        ] {
            w.bump();
        }
    }
}

/// One dock slot as the status page and `evidock status` show it.
#[derive(Debug, Clone, serde::Serialize, serde::Deserialize)]
pub struct SlotView {
    pub slot: String,
    pub docked: bool,
    #[serde(flatten)]
    pub progress: Snapshot,
}

struct Slot {
    stop: Arc<StopSignal>,
    progress: Arc<SessionProgress>,
    /// The camera left.
    departed: bool,
    /// The acquisition task has ended.
    finished: bool,
    released: bool,
}

impl Slot {
    fn new(stop: Arc<StopSignal>, progress: Arc<SessionProgress>) -> Slot {
        Slot {
            stop,
            progress,
            departed: false,
            finished: false,
            released: false,
        }
    }
}

/// What the dock does with a session that ended or a camera that left.
struct Ended {
    /// The `undocked` event to log: the camera left and its session is over.
    undocked: Option<(Snapshot, bool)>,
    /// The camera that came back meanwhile, to acquire now.
    redocked: Option<Arrival>,
}

/// Live state shared with status readers.
#[derive(Default, Clone)]
pub struct DockState {
    slots: Arc<Mutex<BTreeMap<String, Slot>>>,
    /// Cameras docked in a slot not yet free: the camera before them left but its session is
    /// still winding down, or it waits for its wipe or is being wiped. Each is taken when its
    /// slot is freed (dropping it would leave a docked camera never read).
    parked: Arc<Mutex<BTreeMap<String, Arrival>>>,
}

impl std::fmt::Debug for DockState {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("DockState").finish()
    }
}

impl DockState {
    fn lock(&self) -> std::sync::MutexGuard<'_, BTreeMap<String, Slot>> {
        self.slots.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Claim `a.slot` for a new session, unless a session there is still running. If that
    /// session's camera has left (this is the camera back, or another in its place), the
    /// arrival is parked until the session ends ([`DockState::finished`] gives it back).
    fn claim(&self, a: &Arrival, fresh: Slot) -> bool {
        let mut slots = self.lock();
        match slots.get(&a.slot) {
            Some(s) if !s.finished => {
                if s.departed {
                    self.park(a.clone());
                }
                false
            }
            _ => {
                slots.insert(a.slot.clone(), fresh);
                true
            }
        }
    }

    fn parked(&self) -> std::sync::MutexGuard<'_, BTreeMap<String, Arrival>> {
        self.parked.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// `a` waits for its slot to be freed.
    fn park(&self, a: Arrival) {
        self.parked().insert(a.slot.clone(), a);
    }

    /// The arrivals parked whose slot `holds` no longer holds.
    fn released_by(&self, holds: impl Fn(&str) -> bool) -> Vec<Arrival> {
        let mut parked = self.parked();
        let free: Vec<String> = parked.keys().filter(|s| !holds(s)).cloned().collect();
        free.iter().filter_map(|s| parked.remove(s)).collect()
    }

    /// The camera at `slot` left: its session stops at once.
    fn departed(&self, slot: &str) -> Option<Ended> {
        self.parked().remove(slot);
        let mut slots = self.lock();
        let s = slots.get_mut(slot)?;
        s.departed = true;
        s.stop.undock();
        s.finished.then(|| self.close(&mut slots, slot))
    }

    /// The session at `slot` ended (released or not).
    fn finished(&self, slot: &str, released: bool) -> Option<Ended> {
        let mut slots = self.lock();
        let s = slots.get_mut(slot)?;
        s.finished = true;
        s.released = released;
        s.departed.then(|| self.close(&mut slots, slot))
    }

    /// A slot whose camera left and whose session ended: gone from the view, and free for the
    /// camera parked there meanwhile.
    fn close(&self, slots: &mut BTreeMap<String, Slot>, slot: &str) -> Ended {
        Ended {
            undocked: slots
                .remove(slot)
                .map(|s| (s.progress.snapshot(), s.released)),
            redocked: self.parked().remove(slot),
        }
    }

    pub fn view(&self) -> Vec<SlotView> {
        self.lock()
            .iter()
            .map(|(k, s)| SlotView {
                slot: k.clone(),
                docked: !s.departed,
                progress: s.progress.snapshot(),
            })
            .collect()
    }
}

/// What the dock needs.
pub struct Dock {
    pub acquirer: Acquirer,
    pub profiles: Vec<Profile>,
    pub clock: Arc<dyn Clock>,
    pub log: SharedLog,
    pub max_cameras: usize,
    /// USB cards are mounted by the system's automounter (must be read-only), not by evidock.
    pub automount: bool,
    pub state: DockState,
    /// The stages a release wakes.
    pub wakes: Wakes,
    /// Released cameras, still docked, wait here for their wipe (a stage of its own).
    pub wipes: WipeQueue,
}

impl std::fmt::Debug for Dock {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Dock")
            .field("max_cameras", &self.max_cameras)
            .finish()
    }
}

impl Dock {
    /// Run until `shutdown` resolves; then let in-flight copies finish and return. The caller
    /// seals the log once every other writer has stopped too.
    pub async fn run(
        &self,
        mut events: mpsc::Receiver<DockEvent>,
        shutdown: impl std::future::Future<Output = ()>,
    ) {
        let permits = Arc::new(Semaphore::new(self.max_cameras));
        let mut tasks: JoinSet<(String, Outcome)> = JoinSet::new();
        let mut freed = self.wipes.freed().waiter();
        freed.seen();
        tokio::pin!(shutdown);
        loop {
            tokio::select! {
                _ = freed.bumped() => {
                    freed.seen();
                    for a in self.state.released_by(|s| self.wipes.holds(s)) {
                        self.arrived(a, &permits, &mut tasks);
                    }
                }
                ev = events.recv() => match ev {
                    Some(DockEvent::Arrived(a)) => self.arrived(a, &permits, &mut tasks),
                    Some(DockEvent::Departed { slot }) => self.departed(&slot),
                    None => break,
                },
                Some(done) = tasks.join_next(), if !tasks.is_empty() => {
                    if let Ok((slot, outcome)) = done
                        && let Some(a) = self.finished(&slot, outcome)
                    {
                        self.arrived(a, &permits, &mut tasks);
                    }
                }
                _ = &mut shutdown => {
                    tracing::info!("shutting down: letting in-flight copies finish");
                    for s in self.state.lock().values() {
                        s.stop.shutdown();
                    }
                    break;
                }
            }
        }
        while let Some(done) = tasks.join_next().await {
            if let Ok((slot, outcome)) = done {
                // Shutting down: a camera back meanwhile is read at the next start.
                let _ = self.finished(&slot, outcome);
            }
        }
    }

    /// Sign a checkpoint over everything logged so far.
    fn seal(&self) {
        if let Err(e) = self.log.seal(evidock_store::checkpoints::Moment::Undock) {
            tracing::error!(error = %e, "could not sign a checkpoint");
        }
    }

    fn arrived(
        &self,
        a: Arrival,
        permits: &Arc<Semaphore>,
        tasks: &mut JoinSet<(String, Outcome)>,
    ) {
        if self.wipes.holds(&a.slot) {
            // The camera before it waits for its wipe or is being wiped: taken once freed.
            self.state.park(a);
            return;
        }
        let stop = Arc::new(StopSignal::default());
        let progress = SessionProgress::new();
        if !self
            .state
            .claim(&a, Slot::new(stop.clone(), progress.clone()))
        {
            return; // being acquired, or waiting for the session it left to end
        }
        let acquirer = self.acquirer.clone();
        let profiles = self.profiles.clone();
        let clock = self.clock.clone();
        let automount = self.automount;
        let permits = permits.clone();
        let wakes = self.wakes.clone();
        let wipes = self.wipes.clone();
        tasks.spawn(async move {
            // A camera waits for a free acquisition slot, not for another camera's files.
            let permit = permits.acquire_owned().await;
            let slot = a.slot.clone();
            let outcome = tokio::task::spawn_blocking(move || {
                match attach(&profiles, &a, &a.slot, clock, automount) {
                    Ok(att) => {
                        let mut cam = DockedCamera {
                            slot: Some(a.slot.clone()),
                            card: att.card,
                            driver: att.driver,
                            profile: att.profile,
                            operator: None,
                            full: false,
                            volume: None,
                            device: None,
                            method: att.method,
                        };
                        let outcome = acquirer.acquire(&mut cam, &progress, &stop);
                        // The slot's turn at acquisition is over.
                        drop(permit);
                        if let Outcome::Released { session, .. } = &outcome {
                            // The wipe waits for the uploads in a stage of its own, holding
                            // no slot and no thread; offered before the wake-up it answers.
                            wipes.offer(cam, session.clone(), stop.clone());
                            wakes.released();
                        }
                        outcome
                    }
                    Err(reason) => {
                        progress.set_state(
                            crate::acquire::progress::SlotState::Refused,
                            Some(reason.clone()),
                        );
                        acquirer.record_refusal(Some(&a.slot), "none", None, reason)
                    }
                }
            })
            .await
            .unwrap_or_else(|e| Outcome::Failed {
                session: None,
                reason: format!("acquisition task failed: {e}"),
            });
            (slot, outcome)
        });
    }

    fn departed(&self, slot: &str) {
        // The session (and a wipe in progress, which shares its stop signal) is stopped first.
        let ended = self.state.departed(slot);
        self.wipes.departed(slot);
        if let Some(Ended {
            undocked: Some((snap, released)),
            ..
        }) = ended
        {
            self.log_undocked(&snap, released);
        }
    }

    /// A session ended; the arrival to acquire now, if its camera came back meanwhile.
    fn finished(&self, slot: &str, outcome: Outcome) -> Option<Arrival> {
        match &outcome {
            Outcome::Released {
                session,
                files,
                bytes,
                failed,
                skipped,
            } => {
                tracing::info!(%slot, %session, files, bytes, failed, skipped, "safe to undock");
            }
            Outcome::Interrupted { session, reason } => {
                tracing::warn!(%slot, %session, %reason, "session interrupted; the next docking resumes");
            }
            Outcome::Failed { session, reason } => {
                tracing::error!(%slot, ?session, %reason, "camera stopped with an error");
            }
            Outcome::Refused { device, reason } => {
                tracing::warn!(%slot, %device, %reason, "camera not read");
            }
        }
        let released = matches!(outcome, Outcome::Released { .. });
        let ended = self.state.finished(slot, released)?;
        if let Some((snap, released)) = &ended.undocked {
            self.log_undocked(snap, *released);
        }
        ended.redocked
    }

    /// The `undocked` custody event of a session whose camera left.
    fn log_undocked(&self, snap: &Snapshot, released: bool) {
        let (Some(session), Some(serial)) = (&snap.session, &snap.serial) else {
            return;
        };
        let (Ok(session), Ok(device)) = (
            SessionId::new(session.clone()),
            DeviceSerial::new(serial.clone()),
        ) else {
            return;
        };
        let ev = NewEvent::new(
            Actor::station(&self.acquirer.station),
            Subject::Session(session.clone()),
            format!("undocked/{session}"),
            &UndockedPayload {
                session,
                device,
                released,
            },
        );
        match ev
            .map_err(|e| e.to_string())
            .and_then(|ev| self.log.append_once(ev).map_err(|e| e.to_string()))
        {
            Ok(_) => self.seal(),
            Err(e) => tracing::error!(error = %e, "could not log the undock"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn arrival(slot: &str) -> Arrival {
        Arrival {
            slot: slot.into(),
            volume: format!("/mnt/{slot}").into(),
            usb: None,
        }
    }

    fn fresh() -> Slot {
        Slot::new(Arc::new(StopSignal::default()), SessionProgress::new())
    }

    #[test]
    fn a_camera_back_before_its_interrupted_session_ends_is_acquired_when_it_ends() {
        let state = DockState::default();
        assert!(state.claim(&arrival("C"), fresh()));
        // Pulled mid-copy, put back at once: the session it left is still winding down.
        assert!(state.departed("C").is_none());
        assert!(!state.claim(&arrival("C"), fresh()));
        let ended = state.finished("C", false).unwrap();
        assert!(ended.undocked.is_some(), "the session's undock is logged");
        let again = ended
            .redocked
            .expect("the camera back in the dock is not forgotten");
        assert_eq!(again.slot, "C");
        assert!(state.claim(&again, fresh()));
    }

    #[test]
    fn a_duplicate_arrival_of_a_camera_being_read_is_ignored() {
        let state = DockState::default();
        assert!(state.claim(&arrival("A"), fresh()));
        assert!(!state.claim(&arrival("A"), fresh()));
        let ended = state.departed("A");
        assert!(ended.is_none());
        let ended = state.finished("A", true).unwrap();
        assert!(ended.redocked.is_none());
    }

    #[test]
    fn a_camera_docked_where_a_wipe_holds_the_slot_is_taken_when_it_is_freed() {
        let state = DockState::default();
        state.park(arrival("B"));
        assert!(state.released_by(|_| true).is_empty(), "still held");
        let taken = state.released_by(|_| false);
        assert_eq!(taken.len(), 1);
        assert!(state.released_by(|_| false).is_empty(), "taken once");
        // One that left again before the slot was freed is not taken.
        state.park(arrival("C"));
        state.departed("C");
        assert!(state.released_by(|_| false).is_empty());
    }

    #[test]
    fn a_camera_back_and_gone_again_before_the_session_ends_is_not_taken() {
        let state = DockState::default();
        assert!(state.claim(&arrival("B"), fresh()));
        state.departed("B");
        assert!(!state.claim(&arrival("B"), fresh()));
        state.departed("B");
        let ended = state.finished("B", false).unwrap();
        assert!(ended.redocked.is_none());
        assert!(state.view().is_empty());
    }
}
