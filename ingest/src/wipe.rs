//! Wiping a camera — only after the verified upload is recorded.
//!
//! The only write evidock ever makes to a camera's card. A file is deleted only if:
//! - the profile's wipe policy allows it (`after-upload`; important/locked files only with
//!   `after-upload-including-important`);
//! - it is the file that was acquired: same path, size, mtime and first/last MiB as recorded
//!   when it was acquired from this camera, and — read again in full from the camera — the same
//!   SHA-256 as its `acquired` event;
//! - its original's upload is recorded as read back from the evidence store with an equal
//!   SHA-256: the journal says `uploaded` **and** the custody log holds the `uploaded` event.
//!
//! A failed or missing read-back leaves the file on the camera (the Nashville failure: the
//! upload tier had the file, the storage tier did not, and the cameras had been wiped).
//! Deleting goes through the camera driver, never through the read-only acquisition mount.
//!
//! The custody log holds the wipe before and after the act:
//! ```text
//! journal: request open ─▶ `wipe-requested` (files, acquired SHA-256) ─▶ driver deletes
//!   ─▶ `device-wiped` (what the driver confirmed, naming the request) ─▶ journal: request settled
//! ```
//! A request a crash or a pulled camera left open is settled at the camera's next docking,
//! right after its release: `device-wiped` then names the request's files the card no longer
//! holds (`found_absent`; by SHA-256, not by name); a request whose event was never logged deleted nothing and is
//! forgotten.

use crate::acquire::copy;
use crate::acquire::session::{Acquirer, DockedCamera};
use crate::acquire::walk::{self, Entry};
use crate::device::profile::WipePolicy;
use crate::device::volume::Volume;
use crate::journal::UploadState;
use evidock_verify::event::payload::{
    CameraPath, DeviceWipedPayload, WipeRequestedPayload, WipedFile,
};
use evidock_verify::event::{Actor, NewEvent, Subject};
use evidock_verify::id::{DeviceSerial, SessionId, Sha256};
use serde::Serialize;

/// What a wipe did.
#[derive(Debug, Default, Clone, Serialize)]
pub struct WipeOutcome {
    pub deleted: Vec<String>,
    /// Files kept, with why (not uploaded yet, read-back failed, important, changed…).
    pub kept: Vec<(String, String)>,
    pub seq: Option<u64>,
    /// Requests of earlier dockings settled now (their `device-wiped` seqs).
    pub settled: Vec<u64>,
}

impl Acquirer {
    /// Whether every original acquired from this camera, at this docking or an earlier one,
    /// has its upload settled (verified, or failed for good and so kept on the camera).
    pub fn camera_uploaded(&self, device: &DeviceSerial) -> bool {
        self.journal
            .camera_uploads_pending(device)
            .is_ok_and(|n| n == 0)
    }

    /// Delete from the docked camera the files whose verified upload is recorded.
    pub fn wipe(&self, cam: &mut DockedCamera, session: &SessionId) -> Result<WipeOutcome, String> {
        let mut out = WipeOutcome::default();
        let (Some(volume), Some(device)) = (cam.volume.clone(), cam.device.clone()) else {
            if cam.profile.wipe == WipePolicy::Never {
                return Ok(out);
            }
            return Err("the camera's card was never mounted: nothing to wipe".into());
        };
        // Whatever the policy says now, a request an earlier docking left open is settled.
        out.settled = self.settle_wipes(&device, &volume)?;
        let policy = cam.profile.wipe;
        if policy == WipePolicy::Never {
            return Ok(out);
        }
        let files = self.wipeable(&device, &volume, policy, &mut out)?;
        if files.is_empty() {
            return Ok(out);
        }
        let key = request_key(session, &files);
        let request = WipeRequestedPayload {
            session: session.clone(),
            device: device.clone(),
            files,
        };
        let json = serde_json::to_string(&request).map_err(|e| e.to_string())?;
        self.journal
            .open_wipe(&key, session, &device, &json)
            .map_err(|e| e.to_string())?;
        evidock_store::crash_point!("wipe.opened");
        let requested = self.log_request(&key, &request)?;
        evidock_store::crash_point!("wipe.requested");
        let delete: Vec<Vec<u8>> = request.files.iter().map(|f| f.path.0.clone()).collect();
        // A refused or failed delete leaves the request open: the next docking settles it
        // from what the card then holds.
        let deleted = cam
            .driver
            .delete_files(&cam.profile.password, &delete)
            .map_err(|e| format!("deleting from camera {device}: {e} (the request stays open; the next docking settles it)"))?;
        evidock_store::crash_point!("wipe.deleted");
        let mut files = request.files;
        files.retain(|f| deleted.contains(&f.path.0));
        out.deleted = files.iter().map(|f| f.path.display()).collect();
        let seq = self.log_wiped(&key, session, &device, requested, files, false)?;
        out.seq = Some(seq);
        tracing::info!(camera = %device, %session, deleted = out.deleted.len(), kept = out.kept.len(), "camera wiped after verified uploads");
        Ok(out)
    }

    /// The files of the card that may go: acquired, uploaded and read back, allowed by the
    /// policy, and still the very bytes acquired. The rest is in `out.kept`, with why.
    fn wipeable(
        &self,
        device: &DeviceSerial,
        volume: &Volume,
        policy: WipePolicy,
        out: &mut WipeOutcome,
    ) -> Result<Vec<WipedFile>, String> {
        let entries = walk::walk(volume.root()).map_err(|e| format!("listing the card: {e}"))?;
        let mut files = Vec::new();
        for e in entries {
            let Entry::File { path, meta } = e else {
                continue;
            };
            let shown = CameraPath(path.clone()).display();
            let Some(prev) = self
                .journal
                .previous(device, &path, meta.size, meta.mtime_ns)
                .map_err(|e| e.to_string())?
            else {
                out.kept
                    .push((shown, "not acquired (or changed since)".into()));
                continue;
            };
            let uploaded = self
                .journal
                .upload_state(&prev.evidence, "original")
                .map_err(|e| e.to_string())?;
            let logged = self
                .log
                .with(|l| l.seq_of_key(&format!("uploaded/{}/original", prev.evidence)))
                .map_err(|e| e.to_string())?
                .is_some();
            if uploaded != Some(UploadState::Uploaded) || !logged {
                let why = match uploaded {
                    Some(UploadState::Failed) => "its upload failed (no verified read-back)",
                    Some(_) => "its upload is not verified yet",
                    None => "not queued for upload",
                };
                out.kept.push((shown, why.into()));
                continue;
            }
            if self.journal.is_important(&prev.evidence).unwrap_or(true)
                && policy != WipePolicy::AfterUploadIncludingImportant
            {
                out.kept.push((
                    shown,
                    "flagged important; the profile keeps important files".into(),
                ));
                continue;
            }
            // The same bytes as acquired? Size, mtime and edges first (cheap), then every byte.
            let edge = volume
                .open(&path)
                .and_then(|mut f| copy::edge_hash(&mut f))
                .map_err(|e| format!("{shown}: {e}"))?;
            if edge != prev.edge_sha256 {
                out.kept
                    .push((shown, "changed since it was acquired".into()));
                continue;
            }
            let whole = volume
                .open(&path)
                .and_then(|mut f| {
                    evidock_verify::digest::hash_reader(
                        &mut f,
                        evidock_verify::digest::DigestSet::SHA256_ONLY,
                    )
                    .map(|(d, _)| d.sha256)
                    .map_err(std::io::Error::other)
                })
                .map_err(|e| format!("{shown}: re-reading before the wipe: {e}"))?;
            if whole != prev.sha256 {
                out.kept.push((
                    shown,
                    format!(
                        "read again in full, its SHA-256 {} differs from the acquired {}",
                        whole.to_hex(),
                        prev.sha256.to_hex()
                    ),
                ));
                continue;
            }
            files.push(WipedFile {
                path: CameraPath(path),
                evidence: prev.evidence,
                sha256: prev.sha256,
            });
        }
        Ok(files)
    }

    /// Settle the requests an earlier docking of this camera left open (a crash, a pulled
    /// camera, a refused delete) — right after release, whatever the policy and the uploads:
    /// `device-wiped` names those of a request's files the card no longer holds. A request
    /// whose event was never logged deleted nothing (a delete only follows the durable event):
    /// it is forgotten. Returns the `device-wiped` seqs.
    pub fn settle_wipes_of(&self, cam: &DockedCamera) -> Result<Vec<u64>, String> {
        match (&cam.volume, &cam.device) {
            (Some(volume), Some(device)) => self.settle_wipes(device, volume),
            _ => Ok(Vec::new()),
        }
    }

    fn settle_wipes(&self, device: &DeviceSerial, volume: &Volume) -> Result<Vec<u64>, String> {
        let mut settled = Vec::new();
        for open in self.journal.open_wipes(device).map_err(|e| e.to_string())? {
            let request: WipeRequestedPayload = serde_json::from_str(&open.request)
                .map_err(|e| format!("journal: wipe request {}: {e}", open.key))?;
            let Some(requested) = self
                .log
                .with(|l| l.seq_of_key(&open.key))
                .map_err(|e| e.to_string())?
            else {
                self.journal
                    .forget_wipe(&open.key)
                    .map_err(|e| e.to_string())?;
                continue;
            };
            let mut gone = Vec::new();
            for f in request.files {
                match holds(volume, &f) {
                    Ok(false) => gone.push(f),
                    Ok(true) => {}
                    Err(e) => {
                        return Err(format!(
                            "settling wipe request {}: {}: {e}",
                            open.key,
                            f.path.display()
                        ));
                    }
                }
            }
            tracing::warn!(camera = %device, request = %open.key, gone = gone.len(), "an earlier wipe was cut off; settled from what the card holds");
            let seq = self.log_wiped(&open.key, &open.session, device, requested, gone, true)?;
            settled.push(seq);
        }
        Ok(settled)
    }

    fn log_request(&self, key: &str, request: &WipeRequestedPayload) -> Result<u64, String> {
        can_close(&self.station, request)?;
        let ev = NewEvent::new(
            Actor::station(&self.station),
            Subject::Session(request.session.clone()),
            key.to_string(),
            request,
        )
        .map_err(|e| e.to_string())?;
        let a = self
            .log
            .append_once(ev)
            .map_err(|e| format!("custody log: {e}"))?;
        Ok(a.event.seq)
    }

    /// `device-wiped` for request `key` (at `requested`), then the request is settled.
    fn log_wiped(
        &self,
        key: &str,
        session: &SessionId,
        device: &DeviceSerial,
        requested: u64,
        files: Vec<WipedFile>,
        found_absent: bool,
    ) -> Result<u64, String> {
        let suffix = key.rsplit('/').next().unwrap_or_default();
        let ev = NewEvent::new(
            Actor::station(&self.station),
            Subject::Session(session.clone()),
            format!("device-wiped/{session}/{suffix}"),
            &DeviceWipedPayload {
                session: session.clone(),
                device: device.clone(),
                files,
                request: Some(requested),
                found_absent,
            },
        )
        .map_err(|e| e.to_string())?;
        let a = self
            .log
            .append_once(ev)
            .map_err(|e| format!("custody log: {e}"))?;
        evidock_store::crash_point!("wipe.logged");
        self.journal
            .close_wipe(key, a.event.seq)
            .map_err(|e| e.to_string())?;
        evidock_store::crash_point!("wipe.settled");
        if let Err(e) = self.log.seal(evidock_store::checkpoints::Moment::Wipe) {
            tracing::warn!(error = %e, "the wipe is logged; its checkpoint is signed at the next one");
        }
        Ok(a.event.seq)
    }
}

/// Whether the card still holds the very bytes a wipe request named. A name alone is not
/// enough: the camera may have recorded a new file under a deleted one's name (the counters of
/// many cameras restart), so a file present under the name is read in full and counts only if
/// its SHA-256 is the requested one.
fn holds(volume: &Volume, f: &WipedFile) -> std::io::Result<bool> {
    let mut file = match volume.open(&f.path.0) {
        Ok(file) => file,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(false),
        Err(e) => return Err(e),
    };
    let (d, _) = evidock_verify::digest::hash_reader(
        &mut file,
        evidock_verify::digest::DigestSet::SHA256_ONLY,
    )
    .map_err(std::io::Error::other)?;
    Ok(d.sha256 == f.sha256)
}

/// The request's key: its session and the files it names.
fn request_key(session: &SessionId, files: &[WipedFile]) -> String {
    let mut h = Vec::new();
    for f in files {
        h.extend_from_slice(&f.path.0);
        h.push(0);
    }
    format!(
        "wipe-requested/{session}/{}",
        &Sha256::digest(&h).to_hex()[..16]
    )
}

/// Whether the `device-wiped` event that will close `request` can be recorded: made now with
/// the most it may carry. A request whose closing event could not be recorded deletes nothing
/// (the deletion would have no event, and settling it would fail at every docking).
fn can_close(
    station: &evidock_verify::id::StationId,
    request: &WipeRequestedPayload,
) -> Result<(), String> {
    NewEvent::new(
        Actor::station(station),
        Subject::Session(request.session.clone()),
        format!("device-wiped/{}/{}", request.session, "x".repeat(64)),
        &DeviceWipedPayload {
            session: request.session.clone(),
            device: request.device.clone(),
            files: request.files.clone(),
            // The largest sequence number canonical JSON carries.
            request: Some((1u64 << 53) - 1),
            found_absent: true,
        },
    )
    .map(drop)
    .map_err(|e| {
        format!(
            "wipe of {} file(s) from {}: its `device-wiped` event could not be recorded ({e}); nothing was deleted",
            request.files.len(),
            request.device
        )
    })
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    /// A request that just fits in an event, whose `device-wiped` would not: refused before
    /// anything is deleted.
    #[test]
    fn a_wipe_whose_closing_event_would_not_fit_is_refused() {
        use evidock_verify::event::MAX_PAYLOAD_BYTES;
        let station = evidock_verify::id::StationId::new("dock-01").unwrap();
        let file = |n: usize, pad: usize| WipedFile {
            path: CameraPath(format!("DCIM/{n:06}{}.MP4", "x".repeat(pad)).into_bytes()),
            evidence: evidock_verify::id::EvidenceId::new("ev-00000000000000000001").unwrap(),
            sha256: Sha256::digest(b"x"),
        };
        let mut request = WipeRequestedPayload {
            session: SessionId::new("20261202T000000000Z-ZFY0001").unwrap(),
            device: DeviceSerial::new("ZFY0001").unwrap(),
            files: Vec::new(),
        };
        let size = |r: &WipeRequestedPayload| {
            evidock_verify::canonical::canonical_value(&serde_json::to_value(r).unwrap())
                .unwrap()
                .len()
        };
        // Names of one length: every file adds the same bytes, so one measure says how many.
        let empty = size(&request);
        request.files.push(file(0, 0));
        let one = size(&request) - empty;
        // (Each file after the first adds a comma too.)
        let count = (MAX_PAYLOAD_BYTES - 400 - empty) / (one + 1);
        request.files.extend((1..count).map(|n| file(n, 0)));
        assert!(size(&request) < MAX_PAYLOAD_BYTES - 10 - one);
        // The last file's name fills the request to 10 bytes under the limit.
        let room = MAX_PAYLOAD_BYTES - 10 - size(&request);
        let n = request.files.len();
        request.files.push(file(n, 0));
        let over = size(&request) - (MAX_PAYLOAD_BYTES - 10 - room);
        request.files.pop();
        request.files.push(file(n, room - over));
        assert_eq!(size(&request), MAX_PAYLOAD_BYTES - 10);
        assert!(
            NewEvent::new(
                Actor::station(&station),
                Subject::Session(request.session.clone()),
                "wipe-requested/x",
                &request
            )
            .is_ok()
        );
        let e = can_close(&station, &request).unwrap_err();
        assert!(e.contains("nothing was deleted"), "{e}");
        request.files.truncate(10);
        can_close(&station, &request).unwrap();
    }

    #[test]
    fn a_name_reused_by_a_new_recording_is_not_the_requested_file() {
        let dir = tempfile::tempdir().unwrap();
        fs_err::create_dir(dir.path().join("DCIM")).unwrap();
        let volume = Volume::new(dir.path().to_path_buf(), None);
        let asked = |bytes: &[u8]| WipedFile {
            path: CameraPath(b"DCIM/V0001.MP4".to_vec()),
            evidence: evidock_verify::id::EvidenceId::new("ev-00000000000000000001").unwrap(),
            sha256: Sha256::digest(bytes),
        };
        let f = asked(b"the acquired recording");
        assert!(!holds(&volume, &f).unwrap(), "absent");
        fs_err::write(dir.path().join("DCIM/V0001.MP4"), b"the acquired recording").unwrap();
        assert!(
            holds(&volume, &f).unwrap(),
            "the same bytes: still on the card"
        );
        fs_err::write(
            dir.path().join("DCIM/V0001.MP4"),
            b"a new recording, same name",
        )
        .unwrap();
        assert!(
            !holds(&volume, &f).unwrap(),
            "another recording under the name: the requested one is gone"
        );
    }
}
