//! One camera session: identify → read and sync the clock → acquire every file → release.
//!
//! The copy of one file and the re-read check of the previous one run at the same time (two
//! threads per camera), so the check from disk costs little extra wall time. Everything that
//! matters is durable before it is acknowledged, in this order: spool copy fsynced → journal
//! offset; spool copy re-read and committed → journal `checked` with the exact event payload →
//! `acquired` custody event → journal `acquired`. A crash anywhere resumes from the journal and
//! appends nothing twice.

use super::copy::{self, CopyError};
use super::progress::{SessionProgress, SlotState};
use super::spool::Spool;
use super::times::{self, Docking, History};
use super::walk::{self, Entry};
use crate::device::profile::Profile;
use crate::device::volume::{CardSource, FileMeta, Volume};
use crate::device::{CameraDriver, DeviceError};
use crate::journal::{FileState, Journal, Partial, Recognised, SessionState, Shown};
use chrono::{DateTime, NaiveDateTime, Utc};
use evidock_store::clock::Clock;
use evidock_store::log::SharedLog;
use evidock_verify::digest::{BufferPool, DigestSet, MultiHasher};
use evidock_verify::event::payload::{
    AcquireFailedPayload, AcquiredPayload, CameraIdentity, CameraPath, ClockSyncedPayload,
    DockedPayload, OfficerSource, RecordingTime, ReleasedPayload, SkippedPayload,
};
use evidock_verify::event::{Actor, NewEvent, Payload, Subject, Timestamp, UtcOffset};
use evidock_verify::id::{DeviceSerial, EvidenceId, OfficerId, SessionId, StationId};
use serde::{Deserialize, Serialize};
use std::path::PathBuf;
use std::sync::Arc;
use std::sync::mpsc::sync_channel;

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
}

impl Default for Tuning {
    fn default() -> Self {
        Tuning {
            buffer_size: 1 << 20,
            buffers: 4,
            sync_every: 64 << 20,
            min_free_bytes: 256 << 20,
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

    fn run(
        &self,
        cam: &mut DockedCamera,
        identity: CameraIdentity,
        progress: &SessionProgress,
        stop: &StopSignal,
    ) -> Result<Outcome, (Option<SessionId>, Stop)> {
        let pw = cam.profile.password.clone();
        let device = identity.serial.clone();
        let fail = |s: Option<&SessionId>, m: String| (s.cloned(), Stop::Failed(m));

        // Resume an open session (the station crashed with the camera docked), or start one.
        let mut open = self
            .journal
            .open_session_of(&device)
            .map_err(journal_err(None))?;
        // Released in the log but not yet in the journal (a crash between the two): that
        // session is over — finished here — and this docking is a new one, so no file is ever
        // acquired into a session after its `released` event.
        if let Some(s) = open.clone()
            && self
                .log
                .with(|l| l.seq_of_key(&format!("released/{s}")))
                .is_some()
        {
            let counts = self.journal.session_counts(&s).map_err(journal_err(None))?;
            self.journal
                .release_session(&s, self.clock.now(), counts)
                .map_err(journal_err(None))?;
            open = None;
        }
        let resumed = open.is_some();
        let now = self.clock.now();
        let session = match open {
            Some(s) => s,
            None => session_id(now, &device).map_err(|e| fail(None, e))?,
        };
        let s = Some(&session);
        progress.set_identity(
            session.as_str(),
            device.as_str(),
            identity.officer.as_ref().map(|o| o.as_str()),
        );

        let docking: DockingRecord = match self
            .journal
            .session_docking(&session)
            .map_err(journal_err(s))?
            .and_then(|j| serde_json::from_str(&j).ok())
        {
            Some(d) => d,
            None => {
                let camera_clock = cam.driver.read_clock(&pw).map_err(|e| {
                    // The session starts with the docking record, which needs the clock:
                    // the attempt is recorded on its own so the journal still shows it.
                    let reason = e.to_string();
                    let unread = self.record_unread(
                        cam.slot.as_deref(),
                        cam.driver.name(),
                        Some(&device),
                        SessionState::Failed,
                        &reason,
                    );
                    (unread, Stop::Failed(reason))
                })?;
                let station_clock = self.clock.now();
                let (last_sync, drift_ppm) = self
                    .journal
                    .clock_history(&device)
                    .map_err(journal_err(s))?;
                let rec = DockingRecord {
                    identity: identity.clone(),
                    camera_clock,
                    station_clock,
                    offset: self.clock.offset_at(station_clock),
                    last_sync,
                    drift_ppm,
                };
                self.journal
                    .create_session(
                        &session,
                        &device,
                        cam.slot.as_deref(),
                        cam.driver.name(),
                        SessionState::Identifying,
                        now,
                    )
                    .map_err(journal_err(s))?;
                let json = serde_json::to_string(&rec).map_err(|e| fail(s, e.to_string()))?;
                self.journal
                    .set_session_docking(&session, &json)
                    .map_err(journal_err(s))?;
                evidock_store::crash_point!("session.docking-recorded");
                rec
            }
        };
        let dk = Docking {
            camera: docking.camera_clock,
            station: docking.station_clock,
            offset: docking.offset,
        };
        let history = History {
            last_sync: docking.last_sync,
            drift_ppm: docking.drift_ppm,
        };
        self.journal
            .set_session_clock(&session, dk.offset_ms())
            .map_err(journal_err(s))?;
        let battery = cam.driver.battery(&pw).ok().flatten();
        self.append_once(
            Subject::Session(session.clone()),
            format!("docked/{session}"),
            &DockedPayload {
                session: session.clone(),
                identity: docking.identity.clone(),
                driver: cam.driver.name().to_string(),
                slot: cam.slot.clone(),
                camera_clock: docking
                    .camera_clock
                    .map(|c| c.format("%Y-%m-%dT%H:%M:%S").to_string()),
                station_clock: Timestamp::from_datetime(docking.station_clock),
                clock_offset_ms: dk.offset_ms(),
                battery_percent: battery,
                method: Some(cam.method),
            },
        )
        .map_err(|e| fail(s, e))?;
        evidock_store::crash_point!("session.docked");
        if !resumed {
            tracing::info!(camera = %device, %session, offset_ms = ?dk.offset_ms(), slot = ?cam.slot, "camera docked");
        }

        // Set the camera's clock (SyncDevTime) once per session, after the reading above.
        let sync_key = format!("clock-synced/{session}");
        if docking.camera_clock.is_some() && self.log.with(|l| l.seq_of_key(&sync_key)).is_none() {
            let now = self.clock.now();
            let local = now
                .with_timezone(&self.clock.offset_at(now).0)
                .naive_local();
            match cam.driver.sync_clock(&pw, local) {
                Ok(true) => {
                    self.append_once(
                        Subject::Session(session.clone()),
                        sync_key,
                        &ClockSyncedPayload {
                            session: session.clone(),
                            device: device.clone(),
                            before: docking
                                .camera_clock
                                .map(|c| c.format("%Y-%m-%dT%H:%M:%S").to_string()),
                            set_to: local.format("%Y-%m-%dT%H:%M:%S").to_string(),
                        },
                    )
                    .map_err(|e| fail(s, e))?;
                    let raw_times_reset = dk.offset_ms().is_some_and(|o| o.abs() > 3_600_000);
                    let drift = times::measured_drift_ppm(&dk, &history, raw_times_reset);
                    self.journal
                        .record_clock(&device, Some(now), drift)
                        .map_err(journal_err(s))?;
                }
                Ok(false) => {}
                Err(e) => tracing::warn!(camera = %device, error = %e, "clock not synced"),
            }
        }
        cam.driver
            .set_mass_storage(&pw)
            .map_err(|e| fail(s, e.to_string()))?;
        let volume = cam.card.attach().map_err(|e| {
            (
                Some(session.clone()),
                Stop::Interrupted(format!("the card could not be mounted read-only: {e}")),
            )
        })?;
        cam.volume = Some(volume.clone());
        cam.device = Some(device.clone());

        // List the card.
        self.journal
            .set_session_state(&session, SessionState::Copying, None)
            .map_err(journal_err(s))?;
        progress.set_state(SlotState::Copying, None);
        let entries = walk::walk(volume.root()).map_err(|e| {
            (
                Some(session.clone()),
                Stop::Interrupted(format!(
                    "the card at {} cannot be read: {e}",
                    volume.root().display()
                )),
            )
        })?;
        let files: Vec<(&Vec<u8>, FileMeta)> = entries
            .iter()
            .filter_map(|e| match e {
                Entry::File { path, meta } => Some((path, *meta)),
                Entry::Unreadable { .. } => None,
            })
            .collect();
        progress.add(&progress.files_total, entries.len() as u64);
        progress.add(
            &progress.bytes_total,
            files.iter().map(|(_, m)| m.size).sum(),
        );

        // Raw recording times from the names; for recordings whose name carries none, the
        // mtime the camera wrote (its local time). Logs and other files have no recording time.
        let names: Vec<_> = files
            .iter()
            .map(|(p, _)| cam.profile.parse_name(CameraPath(p.to_vec()).file_name()))
            .collect();
        let raw: Vec<Option<NaiveDateTime>> = files
            .iter()
            .zip(&names)
            .map(|((p, m), n)| {
                n.time.or_else(|| {
                    is_recording(CameraPath(p.to_vec()).file_name())
                        .then(|| DateTime::from_timestamp((m.mtime_ns / 1_000_000_000) as i64, 0))
                        .flatten()
                        .map(|t| t.with_timezone(&dk.offset.0).naive_local())
                })
            })
            .collect();
        let corrected = times::correct(&raw, &dk, &history);
        if let Some(r) = times::find_reset(&raw, &dk, &history) {
            tracing::warn!(camera = %device, %session, first = %CameraPath(files[r].0.clone()), "camera clock reset detected: later recordings take the docking offset");
        }

        // Unreadable entries are recorded as failures up front.
        for e in &entries {
            if let Entry::Unreadable { path, reason } = e {
                let ev = EvidenceId::derive(&self.station, &session, path);
                self.record_failure(
                    &session,
                    &device,
                    path,
                    &ev,
                    0,
                    0,
                    reason.clone(),
                    false,
                    progress,
                )
                .map_err(|e| fail(s, e))?;
            }
        }

        let pool = BufferPool::new(self.tuning.buffers, self.tuning.buffer_size);
        let mut hasher = MultiHasher::new(self.digests, self.tuning.buffers)
            .map_err(|e| fail(s, format!("cannot start digest threads: {e}")))?;
        let checker_error: std::sync::Mutex<Option<String>> = std::sync::Mutex::new(None);
        let (job_tx, job_rx) = sync_channel::<CheckJob>(1);
        let (redo_tx, redo_rx) = std::sync::mpsc::channel::<CheckJob>();

        let result: Result<(), Stop> = std::thread::scope(|scope| {
            // The checker: re-read from disk, commit, log — while the next file copies.
            let checker = scope.spawn(|| {
                for job in job_rx {
                    match self.check_and_log(&session, &device, job, progress) {
                        Ok(None) => {}
                        Ok(Some(redo)) => {
                            let _ = redo_tx.send(redo);
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
                        session: &session,
                        device: &device,
                        identity: &docking.identity,
                        path,
                        meta: *meta,
                        name: &names[i],
                        recorded: corrected[i].clone(),
                    };
                    if let Some(job) =
                        self.copy_one(cam, &volume, &ctx, &pool, &mut hasher, progress, stop)?
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
                session: &session,
                device: &device,
                identity: &docking.identity,
                path,
                meta: *meta,
                name: &names[i],
                recorded: corrected[i].clone(),
            };
            let _ = fs_err::remove_file(&job.part);
            if let Err(e) = self.journal.remove_partial(&device, path) {
                return Err(fail(s, e.to_string()));
            }
            if let Some(job) = self
                .copy_one(cam, &volume, &ctx, &pool, &mut hasher, progress, stop)
                .map_err(|e| (Some(session.clone()), e))?
                && let Some(again) = self
                    .check_and_log(&session, &device, job, progress)
                    .map_err(|e| fail(s, e))?
            {
                let _ = fs_err::remove_file(&again.part);
                self.record_failure(
                        &session,
                        &device,
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

        // Release: every file is acquired, skipped or recorded as failed.
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

    /// Copy one file (or replay/skip it). Returns a job for the checker when bytes were copied.
    #[allow(clippy::too_many_arguments)]
    fn copy_one(
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
                self.log_checked(f.session, f.device, f.path, progress)
                    .map_err(Stop::Failed)?;
                return Ok(None);
            }
        }

        // Re-docking: a file acquired from this camera before is recognised, not read again.
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
                        &evidence,
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
                return Ok(None);
            }
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
            .put_file(
                f.session,
                f.path,
                &evidence,
                f.meta.size,
                f.meta.mtime_ns,
                FileState::Copying,
                None,
                None,
            )
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
        let copied = match copy::copy(
            &mut src,
            before,
            &part_path,
            resume_at,
            self.tuning.sync_every,
            pool,
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

        let (officer, officer_source) = self.officer_for(cam, f);
        let payload = AcquiredPayload {
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
        };
        Ok(Some(CheckJob {
            path: f.path.clone(),
            mtime_ns: f.meta.mtime_ns,
            evidence,
            part: part_path,
            payload,
        }))
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

    /// Re-read the copy from disk; if it matches, commit it to the spool and log `acquired`.
    /// A mismatch returns the job for another copy.
    fn check_and_log(
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
    fn log_checked(
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
