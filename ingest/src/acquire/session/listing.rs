//! The card listed: its files, what their names say, and their recording times corrected for the
//! camera's clock; unreadable entries recorded as failures. Apart because it decides what the
//! copy works through, before any byte is copied.

use super::{Acquirer, DockedCamera, Stop, Stopped, fail, is_recording, journal_err};
use crate::acquire::progress::{SessionProgress, SlotState};
use crate::acquire::times::{self, Docking, History};
use crate::acquire::walk::{self, Entry};
use crate::device::profile::NameFields;
use crate::device::volume::{FileMeta, Volume};
use crate::journal::SessionState;
use chrono::{DateTime, NaiveDateTime};
use evidock_verify::event::payload::{CameraPath, RecordingTime};
use evidock_verify::id::{DeviceSerial, EvidenceId, SessionId};

/// The files to copy, in card order, each with what its name says and its recording time.
pub(super) struct Listing<'e> {
    pub(super) files: Vec<(&'e Vec<u8>, FileMeta)>,
    pub(super) names: Vec<NameFields>,
    pub(super) corrected: Vec<Option<RecordingTime>>,
}

impl Acquirer {
    /// Mark the session as copying and walk the card.
    pub(super) fn list_card(
        &self,
        session: &SessionId,
        volume: &Volume,
        progress: &SessionProgress,
    ) -> Result<Vec<Entry>, Stopped> {
        let s = Some(session);
        self.journal
            .set_session_state(session, SessionState::Copying, None)
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
        Ok(entries)
    }

    /// Unreadable entries are recorded as failures up front.
    pub(super) fn record_unreadable(
        &self,
        session: &SessionId,
        device: &DeviceSerial,
        entries: &[Entry],
        progress: &SessionProgress,
    ) -> Result<(), Stopped> {
        let s = Some(session);
        for e in entries {
            if let Entry::Unreadable { path, reason } = e {
                let ev = EvidenceId::derive(&self.station, session, path);
                self.record_failure(
                    session,
                    device,
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
        Ok(())
    }
}

/// The readable files of the walk, counted into the progress totals, with their names parsed
/// and their recording times corrected.
pub(super) fn listing<'e>(
    cam: &DockedCamera,
    entries: &'e [Entry],
    dk: &Docking,
    history: &History,
    session: &SessionId,
    device: &DeviceSerial,
    progress: &SessionProgress,
) -> Listing<'e> {
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
    let corrected = times::correct(&raw, dk, history);
    if let Some(r) = times::find_reset(&raw, dk, history) {
        tracing::warn!(camera = %device, %session, first = %CameraPath(files[r].0.clone()), "camera clock reset detected: later recordings take the docking offset");
    }
    Listing {
        files,
        names,
        corrected,
    }
}
