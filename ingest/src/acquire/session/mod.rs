//! One camera session: identify → read and sync the clock → acquire every file → release.
//!
//! The copy of one file and the re-read check of the ones before it run at the same time (two
//! threads per camera), so the check from disk costs little extra wall time; both bypass the
//! page cache (`acquire::direct`). Everything that matters is durable before it is
//! acknowledged, in this order: spool copy fsynced → journal offset; spool copy re-read and
//! committed → journal `checked` with the exact event payload → `acquired` custody event →
//! journal `acquired`. The checker takes the files finished meanwhile as one group, each step
//! once for the group (one fsync each). A crash anywhere resumes from the journal and appends
//! nothing twice.
//!
//! This file holds the types, the order of the steps ([`Acquirer::acquire`] and `run`) and the
//! release; the steps are beside it: `docking.rs` (the session opened, the docking record,
//! `docked`, the clock, the card mounted), `listing.rs` (the card walked, recording times),
//! `copying.rs` (the two threads), `file.rs` (one file), `check.rs` (the re-read check and
//! `acquired`).

use super::progress::{SessionProgress, SlotState};
use super::spool::Spool;
use crate::device::profile::Profile;
use crate::device::volume::{CardSource, FileMeta, Volume};
use crate::device::{CameraDriver, DeviceError};
use crate::journal::{FileState, Journal, SessionState};
use chrono::{DateTime, NaiveDateTime, Utc};
use evidock_store::clock::Clock;
use evidock_store::log::SharedLog;
use evidock_verify::digest::DigestSet;
use evidock_verify::event::payload::{
    AcquireFailedPayload, AcquiredPayload, CameraIdentity, CameraPath, RecordingTime,
    ReleasedPayload,
};
use evidock_verify::event::{Actor, NewEvent, Payload, Subject, UtcOffset};
use evidock_verify::id::{DeviceSerial, EvidenceId, OfficerId, SessionId, StationId};
use serde::{Deserialize, Serialize};
use std::path::PathBuf;
use std::sync::Arc;

mod check;
mod copying;
mod docking;
mod file;
mod listing;

/// Sizes that bound memory and set how often a copy becomes resumable.
#[derive(Debug, Clone, Copy)]
pub struct Tuning {
    /// Bytes per buffer.
    pub buffer_size: usize,
    /// Buffers per camera (copy in flight + digests behind it).
    pub buffers: usize,
    /// fsync the spool copy and record the offset every this many bytes.
    pub sync_every: u64,
    /// Stop a camera rather than fill the spool disk beyond this.
    pub min_free_bytes: u64,
    /// Spool copies re-read with `O_DIRECT` (where the filesystem allows it).
    pub direct_io: bool,
    /// Spool copies written with `O_DIRECT` too; else through the page cache, evicted after
    /// each sync (the kernel's writeback makes large requests of many small streams).
    pub direct_write: bool,
    /// Checked files committed together, at most: their spool entries, journal rows and custody
    /// events share each fsync. Each is durable before it counts and before the release.
    pub group: usize,
    /// While cameras are copied, upload and transcode start nothing new for at most this long
    /// (zero: they run alongside).
    pub background_wait: std::time::Duration,
}

impl Default for Tuning {
    fn default() -> Self {
        Tuning {
            buffer_size: 1 << 20,
            buffers: 4,
            sync_every: 64 << 20,
            min_free_bytes: 256 << 20,
            direct_io: true,
            direct_write: false,
            group: 32,
            background_wait: std::time::Duration::from_secs(300),
        }
    }
}

/// The station services acquisition uses.
#[derive(Clone)]
pub struct Acquirer {
    pub station: StationId,
    pub log: SharedLog,
    pub journal: Arc<Journal>,
    pub spool: Spool,
    pub clock: Arc<dyn Clock>,
    pub digests: DigestSet,
    pub tuning: Tuning,
    /// The cameras being copied now, which upload and transcode give way to.
    pub acquiring: Arc<super::foreground::Acquiring>,
}

impl std::fmt::Debug for Acquirer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Acquirer")
            .field("station", &self.station)
            .finish()
    }
}

/// A docked camera, ready to be acquired.
#[derive(Debug)]
pub struct DockedCamera {
    pub slot: Option<String>,
    /// The card: ready (a mounted folder), or made readable after `SetMSDC` (a USB camera).
    pub card: Box<dyn CardSource>,
    pub driver: Box<dyn CameraDriver>,
    pub profile: Profile,
    /// The officer given by the operator (`evidock ingest --officer`), overriding all else.
    pub operator: Option<OfficerId>,
    /// Re-read files already acquired at an earlier docking.
    pub full: bool,
    /// The card once mounted (kept for wiping after the uploads are verified).
    pub volume: Option<Volume>,
    /// The camera's identity once known.
    pub device: Option<DeviceSerial>,
    /// How its files are read (the `docked` event says so, and the collection record).
    pub method: evidock_verify::event::payload::ReadMethod,
}

/// How a session ended.
#[derive(Debug, Clone)]
pub enum Outcome {
    Released {
        session: SessionId,
        files: u64,
        bytes: u64,
        failed: u64,
        skipped: u64,
    },
    /// The camera left or the station stopped; the next docking resumes.
    Interrupted { session: SessionId, reason: String },
    /// This camera stopped with an error; other cameras are unaffected.
    Failed {
        session: Option<SessionId>,
        reason: String,
    },
    /// Never read.
    Refused { device: String, reason: String },
}

/// The clocks and history at docking, kept for the whole session (and its resumption).
#[derive(Debug, Clone, Serialize, Deserialize)]
struct DockingRecord {
    identity: CameraIdentity,
    camera_clock: Option<NaiveDateTime>,
    station_clock: DateTime<Utc>,
    offset: UtcOffset,
    last_sync: Option<DateTime<Utc>>,
    drift_ppm: Option<f64>,
}

/// Asks a session to stop: at once when the camera is undocked (the copy in flight is kept for
/// a resume), between files when the station shuts down (in-flight copies finish).
#[derive(Debug, Default)]
pub struct StopSignal {
    undocked: std::sync::atomic::AtomicBool,
    shutdown: std::sync::atomic::AtomicBool,
}

impl StopSignal {
    pub fn undock(&self) {
        self.undocked
            .store(true, std::sync::atomic::Ordering::SeqCst);
    }

    pub fn shutdown(&self) {
        self.shutdown
            .store(true, std::sync::atomic::Ordering::SeqCst);
    }

    /// A stop that interrupts a copy mid-file.
    pub fn now(&self) -> Option<&'static str> {
        self.undocked
            .load(std::sync::atomic::Ordering::SeqCst)
            .then_some("the camera was undocked")
    }

    /// Any stop, checked between files.
    pub fn between_files(&self) -> Option<&'static str> {
        self.now().or_else(|| {
            self.shutdown
                .load(std::sync::atomic::Ordering::SeqCst)
                .then_some("the station is shutting down")
        })
    }
}

/// A session-level stop: the caller reports it.
enum Stop {
    Interrupted(String),
    Failed(String),
}

/// The copy of one file handed to the checker.
struct CheckJob {
    path: Vec<u8>,
    mtime_ns: i128,
    evidence: EvidenceId,
    part: PathBuf,
    payload: AcquiredPayload,
}

fn session_id(at: DateTime<Utc>, device: &DeviceSerial) -> Result<SessionId, String> {
    let safe: String = device
        .as_str()
        .chars()
        .map(|c| if c.is_ascii_alphanumeric() { c } else { '_' })
        .take(40)
        .collect();
    SessionId::new(format!("{}-{safe}", at.format("%Y%m%dT%H%M%S%3fZ"))).map_err(|e| e.to_string())
}

impl Acquirer {
    fn actor(&self) -> Actor {
        Actor::station(&self.station)
    }

    /// Append an event unless its key is already in the log (a resumed session).
    fn append_once<P: Payload>(
        &self,
        subject: Subject,
        key: String,
        payload: &P,
    ) -> Result<u64, String> {
        let ev = NewEvent::new(self.actor(), subject, key, payload).map_err(|e| e.to_string())?;
        self.log
            .append_once(ev)
            .map(|a| a.event.seq)
            .map_err(|e| format!("custody log: {e}"))
    }

    /// Acquire a docked camera until release, interruption or failure.
    pub fn acquire(
        &self,
        cam: &mut DockedCamera,
        progress: &SessionProgress,
        stop: &StopSignal,
    ) -> Outcome {
        progress.set_state(SlotState::Identifying, None);
        let pw = cam.profile.password.clone();
        let identity = match cam.driver.identify(&pw) {
            Ok(id) => id,
            Err(e @ DeviceError::WrongPassword { .. }) => {
                return self.refuse(cam, None, e.to_string(), progress);
            }
            Err(e) => {
                // A camera that does not answer its handshake is read by nobody: the journal
                // keeps the attempt so `evidock sessions` shows it, not only the log lines.
                let reason = e.to_string();
                progress.set_state(SlotState::Error, Some(reason.clone()));
                let session = self.record_unread(
                    cam.slot.as_deref(),
                    cam.driver.name(),
                    None,
                    SessionState::Failed,
                    &reason,
                );
                return Outcome::Failed { session, reason };
            }
        };
        let device = identity.serial.clone();
        if !cam.profile.allows(device.as_str()) {
            let reason = format!(
                "camera {device} is not on the allow-list of profile {:?}: not read",
                cam.profile.name
            );
            return self.refuse(cam, Some(&device), reason, progress);
        }
        match self.run(cam, identity, progress, stop) {
            Ok(o) => o,
            Err((session, Stop::Interrupted(reason))) => {
                progress.set_state(SlotState::Interrupted, Some(reason.clone()));
                if let Some(s) = &session
                    && let Err(e) =
                        self.journal
                            .set_session_state(s, SessionState::Interrupted, Some(&reason))
                {
                    tracing::error!(session = %s, error = %e, "journal: the interruption was not recorded (the session shows as open until the next docking)");
                }
                match session {
                    Some(session) => Outcome::Interrupted { session, reason },
                    None => Outcome::Failed {
                        session: None,
                        reason,
                    },
                }
            }
            Err((session, Stop::Failed(reason))) => {
                tracing::error!(camera = %device, %reason, "acquisition stopped");
                progress.set_state(SlotState::Error, Some(reason.clone()));
                if let Some(s) = &session
                    && let Err(e) =
                        self.journal
                            .set_session_state(s, SessionState::Failed, Some(&reason))
                {
                    tracing::error!(session = %s, error = %e, "journal: the failure was not recorded");
                }
                Outcome::Failed { session, reason }
            }
        }
    }

    fn refuse(
        &self,
        cam: &DockedCamera,
        device: Option<&DeviceSerial>,
        reason: String,
        progress: &SessionProgress,
    ) -> Outcome {
        progress.set_state(SlotState::Refused, Some(reason.clone()));
        self.record_refusal(cam.slot.as_deref(), cam.driver.name(), device, reason)
    }

    /// Record that a docked device was not read (journal and operations log; no custody event:
    /// nothing was acquired).
    pub fn record_refusal(
        &self,
        slot: Option<&str>,
        driver: &str,
        device: Option<&DeviceSerial>,
        reason: String,
    ) -> Outcome {
        tracing::warn!(slot = ?slot, device = ?device.map(|d| d.as_str()), %reason, "camera refused");
        self.record_unread(slot, driver, device, SessionState::Refused, &reason);
        Outcome::Refused {
            device: device.map(|d| d.to_string()).unwrap_or_default(),
            reason,
        }
    }

    /// A session record for a camera that was not read (refused, or failed before it was
    /// identified): nothing was acquired, so there is no custody event, only the journal.
    fn record_unread(
        &self,
        slot: Option<&str>,
        driver: &str,
        device: Option<&DeviceSerial>,
        state: SessionState,
        reason: &str,
    ) -> Option<SessionId> {
        let now = self.clock.now();
        let label = device
            .cloned()
            .or_else(|| DeviceSerial::new("unidentified").ok())?;
        // These can come in the same millisecond from several slots: the ID has random bits.
        let mut rnd = [0u8; 3];
        let _ = getrandom::fill(&mut rnd);
        let id = SessionId::new(format!(
            "{}-{}-{}",
            now.format("%Y%m%dT%H%M%S%3fZ"),
            state.as_str(),
            hex::encode(rnd)
        ))
        .ok()?;
        if let Err(e) = self
            .journal
            .create_session(&id, &label, slot, driver, state, now)
            .and_then(|()| self.journal.set_session_state(&id, state, Some(reason)))
        {
            tracing::error!(session = %id, error = %e, "journal: the unread camera was not recorded");
        }
        Some(id)
    }

    /// The session's phases, in order: open (or resume) it, the docking record and `docked`,
    /// the clock, the card mounted and listed, every file copied and checked, release.
    fn run(
        &self,
        cam: &mut DockedCamera,
        identity: CameraIdentity,
        progress: &SessionProgress,
        stop: &StopSignal,
    ) -> Result<Outcome, Stopped> {
        let device = identity.serial.clone();
        let (session, resumed, now) = self.open_session(&device)?;
        progress.set_identity(
            session.as_str(),
            device.as_str(),
            identity.officer.as_ref().map(|o| o.as_str()),
        );
        let docking = self.docking_record(cam, &identity, &session, now)?;
        let (dk, history) = self.log_docked(cam, &session, &device, &docking, resumed)?;
        self.sync_clock(cam, &session, &device, &docking, &dk, &history)?;
        let volume = self.mount(cam, &session, &device)?;

        // From the listing to the durable release: the background gives way meanwhile.
        let _copying = self.acquiring.enter();
        let entries = self.list_card(&session, &volume, progress)?;
        let listing = listing::listing(cam, &entries, &dk, &history, &session, &device, progress);
        self.record_unreadable(&session, &device, &entries, progress)?;
        self.copy_files(
            cam,
            &volume,
            &session,
            &device,
            &docking.identity,
            &listing,
            progress,
            stop,
        )?;
        self.release(session, &device, progress)
    }

    /// Release: every file is acquired, skipped or recorded as failed.
    fn release(
        &self,
        session: SessionId,
        device: &DeviceSerial,
        progress: &SessionProgress,
    ) -> Result<Outcome, Stopped> {
        let s = Some(&session);
        let (n, bytes, failed, skipped) = self
            .journal
            .session_counts(&session)
            .map_err(journal_err(s))?;
        self.append_once(
            Subject::Session(session.clone()),
            format!("released/{session}"),
            &ReleasedPayload {
                session: session.clone(),
                files: n,
                bytes,
                failed,
                skipped,
            },
        )
        .map_err(|e| fail(s, e))?;
        evidock_store::crash_point!("session.released-logged");
        self.journal
            .release_session(&session, self.clock.now(), (n, bytes, failed, skipped))
            .map_err(journal_err(s))?;
        evidock_store::crash_point!("session.released");
        self.log
            .seal(evidock_store::checkpoints::Moment::Release)
            .map_err(|e| fail(s, format!("checkpoint: {e}")))?;
        progress.set_current(None);
        progress.set_state(SlotState::SafeToUndock, None);
        tracing::info!(camera = %device, %session, files = n, bytes, failed, skipped, "released: safe to undock");
        Ok(Outcome::Released {
            session,
            files: n,
            bytes,
            failed,
            skipped,
        })
    }

    #[allow(clippy::too_many_arguments)]
    fn record_failure(
        &self,
        session: &SessionId,
        device: &DeviceSerial,
        path: &[u8],
        evidence: &EvidenceId,
        size: u64,
        mtime_ns: i128,
        reason: String,
        retriable: bool,
        progress: &SessionProgress,
    ) -> Result<(), String> {
        tracing::error!(camera = %device, file = %CameraPath(path.to_vec()), %reason, "file not acquired");
        self.append_once(
            Subject::Evidence(evidence.clone()),
            format!("acquire-failed/{session}/{evidence}"),
            &AcquireFailedPayload {
                session: session.clone(),
                device: device.clone(),
                path: CameraPath(path.to_vec()),
                error: reason.clone(),
                retriable,
            },
        )?;
        self.journal
            .put_file(
                session,
                path,
                evidence,
                size,
                mtime_ns,
                FileState::Failed,
                None,
                Some(&reason),
            )
            .map_err(|e| e.to_string())?;
        progress.add(&progress.failed, 1);
        progress.add(&progress.files_done, 1);
        Ok(())
    }
}

/// How a session step stops: the session (when there is one yet) and why.
type Stopped = (Option<SessionId>, Stop);

/// A failure of the session `s`.
fn fail(s: Option<&SessionId>, m: String) -> Stopped {
    (s.cloned(), Stop::Failed(m))
}

/// Map a journal error to a session failure.
fn journal_err(
    s: Option<&SessionId>,
) -> impl Fn(crate::journal::JournalError) -> (Option<SessionId>, Stop) + '_ {
    move |e| (s.cloned(), Stop::Failed(e.to_string()))
}

/// What copying one file needs to know.
struct FileCtx<'a> {
    session: &'a SessionId,
    device: &'a DeviceSerial,
    identity: &'a CameraIdentity,
    path: &'a Vec<u8>,
    meta: FileMeta,
    name: &'a crate::device::profile::NameFields,
    recorded: Option<RecordingTime>,
}

/// Whether a file name looks like a recording (video, audio, photo) by its extension.
pub fn is_recording(name: &[u8]) -> bool {
    const EXT: [&str; 16] = [
        "mp4", "mov", "avi", "ts", "mkv", "3gp", "h264", "h265", "wav", "mp3", "aac", "m4a", "amr",
        "jpg", "jpeg", "png",
    ];
    let name = String::from_utf8_lossy(name).to_ascii_lowercase();
    name.rsplit_once('.')
        .is_some_and(|(_, ext)| EXT.contains(&ext))
}

/// After a read error: did the camera leave? The error can arrive before the departure does,
/// so give the departure a moment to be seen.
fn camera_left(cam: &DockedCamera, stop: &StopSignal) -> bool {
    for _ in 0..10 {
        if stop.now().is_some() || !cam.card.present() {
            return true;
        }
        std::thread::sleep(std::time::Duration::from_millis(100));
    }
    false
}

#[cfg(test)]
mod tests;
