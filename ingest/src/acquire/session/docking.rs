//! From docking to a readable card: the session opened (or resumed), the docking record with the
//! camera's clock, the `docked` event, the clock set, the card mounted read-only. Apart because
//! these steps talk to the camera's driver; everything after them reads only the card.

use super::{Acquirer, DockedCamera, DockingRecord, Stop, Stopped, fail, journal_err, session_id};
use crate::acquire::times::{self, Docking, History};
use crate::device::volume::Volume;
use crate::journal::SessionState;
use chrono::{DateTime, Utc};
use evidock_verify::event::payload::{CameraIdentity, ClockSyncedPayload, DockedPayload};
use evidock_verify::event::{Subject, Timestamp};
use evidock_verify::id::{DeviceSerial, SessionId};

impl Acquirer {
    /// Resume an open session (the station crashed with the camera docked), or start one.
    /// Returns the session, whether it was resumed, and the time it was decided.
    pub(super) fn open_session(
        &self,
        device: &DeviceSerial,
    ) -> Result<(SessionId, bool, DateTime<Utc>), Stopped> {
        let mut open = self
            .journal
            .open_session_of(device)
            .map_err(journal_err(None))?;
        // Released in the log but not yet in the journal (a crash between the two): that
        // session is over — finished here — and this docking is a new one, so no file is ever
        // acquired into a session after its `released` event.
        if let Some(s) = open.clone()
            && self
                .log
                .with(|l| l.seq_of_key(&format!("released/{s}")))
                .map_err(|e| fail(Some(&s), e.to_string()))?
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
            None => session_id(now, device).map_err(|e| fail(None, e))?,
        };
        Ok((session, resumed, now))
    }

    /// The clocks and history at docking: read from the journal when the session resumes,
    /// else read off the camera and recorded first (the session starts with this record).
    pub(super) fn docking_record(
        &self,
        cam: &mut DockedCamera,
        identity: &CameraIdentity,
        session: &SessionId,
        now: DateTime<Utc>,
    ) -> Result<DockingRecord, Stopped> {
        let pw = cam.profile.password.clone();
        let device = identity.serial.clone();
        let s = Some(session);
        let docking: DockingRecord = match self
            .journal
            .session_docking(session)
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
                        session,
                        &device,
                        cam.slot.as_deref(),
                        cam.driver.name(),
                        SessionState::Identifying,
                        now,
                    )
                    .map_err(journal_err(s))?;
                let json = serde_json::to_string(&rec).map_err(|e| fail(s, e.to_string()))?;
                self.journal
                    .set_session_docking(session, &json)
                    .map_err(journal_err(s))?;
                evidock_store::crash_point!("session.docking-recorded");
                rec
            }
        };
        Ok(docking)
    }

    /// The camera's clock offset in the journal and the `docked` event in the log.
    pub(super) fn log_docked(
        &self,
        cam: &mut DockedCamera,
        session: &SessionId,
        device: &DeviceSerial,
        docking: &DockingRecord,
        resumed: bool,
    ) -> Result<(Docking, History), Stopped> {
        let pw = cam.profile.password.clone();
        let s = Some(session);
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
            .set_session_clock(session, dk.offset_ms())
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
        Ok((dk, history))
    }

    /// Set the camera's clock (SyncDevTime) once per session, after the reading at docking.
    pub(super) fn sync_clock(
        &self,
        cam: &mut DockedCamera,
        session: &SessionId,
        device: &DeviceSerial,
        docking: &DockingRecord,
        dk: &Docking,
        history: &History,
    ) -> Result<(), Stopped> {
        let pw = cam.profile.password.clone();
        let s = Some(session);
        let sync_key = format!("clock-synced/{session}");
        if docking.camera_clock.is_some()
            && self
                .log
                .with(|l| l.seq_of_key(&sync_key))
                .map_err(|e| fail(s, e.to_string()))?
                .is_none()
        {
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
                    let drift = times::measured_drift_ppm(dk, history, raw_times_reset);
                    self.journal
                        .record_clock(device, Some(now), drift)
                        .map_err(journal_err(s))?;
                }
                Ok(false) => {}
                Err(e) => tracing::warn!(camera = %device, error = %e, "clock not synced"),
            }
        }
        Ok(())
    }

    /// Switch the camera to mass storage and mount its card read-only.
    pub(super) fn mount(
        &self,
        cam: &mut DockedCamera,
        session: &SessionId,
        device: &DeviceSerial,
    ) -> Result<Volume, Stopped> {
        let pw = cam.profile.password.clone();
        let s = Some(session);
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
        Ok(volume)
    }
}
