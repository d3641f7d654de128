//! Wiping a camera — only after the verified upload is recorded.
//!
//! The only write evidock ever makes to a camera's card. A file is deleted only if:
//! - the profile's wipe policy allows it (`after-upload`; important/locked files only with
//!   `after-upload-including-important`);
//! - it is the file that was acquired: same path, size, mtime and first/last MiB as recorded
//!   when it was acquired from this camera;
//! - its original's upload is recorded as read back from the evidence store with an equal
//!   SHA-256: the journal says `uploaded` **and** the custody log holds the `uploaded` event.
//!
//! A failed or missing read-back leaves the file on the camera (the Nashville failure: the
//! upload tier had the file, the storage tier did not, and the cameras had been wiped).
//! Deleting goes through the camera driver, never through the read-only acquisition mount; a
//! `device-wiped` custody event lists every file deleted.

use crate::acquire::copy;
use crate::acquire::session::{Acquirer, DockedCamera};
use crate::acquire::walk::{self, Entry};
use crate::device::profile::WipePolicy;
use evidock_verify::event::payload::{CameraPath, DeviceWipedPayload, WipedFile};
use evidock_verify::event::{Actor, NewEvent, Subject};
use evidock_verify::id::{SessionId, Sha256};
use serde::Serialize;

/// What a wipe did.
#[derive(Debug, Default, Clone, Serialize)]
pub struct WipeOutcome {
    pub deleted: Vec<String>,
    /// Files kept, with why (not uploaded yet, read-back failed, important, changed…).
    pub kept: Vec<(String, String)>,
    pub seq: Option<u64>,
}

impl Acquirer {
    /// Whether every original acquired in `session` has a verified upload.
    pub fn session_uploaded(&self, session: &SessionId) -> bool {
        self.journal
            .session_uploads_pending(session)
            .is_ok_and(|n| n == 0)
    }

    /// Delete from the docked camera the files whose verified upload is recorded.
    pub fn wipe(&self, cam: &mut DockedCamera, session: &SessionId) -> Result<WipeOutcome, String> {
        let mut out = WipeOutcome::default();
        let policy = cam.profile.wipe;
        if policy == WipePolicy::Never {
            return Ok(out);
        }
        let (Some(volume), Some(device)) = (cam.volume.clone(), cam.device.clone()) else {
            return Err("the camera's card was never mounted: nothing to wipe".into());
        };
        let entries = walk::walk(volume.root()).map_err(|e| format!("listing the card: {e}"))?;
        let mut delete = Vec::new();
        let mut files = Vec::new();
        for e in entries {
            let Entry::File { path, meta } = e else {
                continue;
            };
            let shown = CameraPath(path.clone()).display();
            let Some(prev) = self
                .journal
                .previous(&device, &path, meta.size, meta.mtime_ns)
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
                .is_some();
            if uploaded.as_deref() != Some("uploaded") || !logged {
                let why = match uploaded.as_deref() {
                    Some("failed") => "its upload failed (no verified read-back)",
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
            // The same bytes as acquired? (first and last MiB, beside size and mtime)
            let edge = volume
                .open(&path)
                .and_then(|mut f| copy::edge_hash(&mut f))
                .map_err(|e| format!("{shown}: {e}"))?;
            if edge != prev.edge_sha256 {
                out.kept
                    .push((shown, "changed since it was acquired".into()));
                continue;
            }
            delete.push(path.clone());
            files.push(WipedFile {
                path: CameraPath(path),
                evidence: prev.evidence,
                sha256: prev.sha256,
            });
        }
        if delete.is_empty() {
            return Ok(out);
        }
        let deleted = cam
            .driver
            .delete_files(&cam.profile.password, &delete)
            .map_err(|e| e.to_string())?;
        evidock_store::crash_point!("wipe.deleted");
        files.retain(|f| deleted.contains(&f.path.0));
        out.deleted = files.iter().map(|f| f.path.display()).collect();
        if files.is_empty() {
            return Ok(out);
        }
        let mut h = Vec::new();
        for f in &files {
            h.extend_from_slice(&f.path.0);
            h.push(0);
        }
        let ev = NewEvent::new(
            Actor::station(&self.station),
            Subject::Session(session.clone()),
            format!(
                "device-wiped/{session}/{}",
                &Sha256::digest(&h).to_hex()[..16]
            ),
            &DeviceWipedPayload {
                session: session.clone(),
                device: device.clone(),
                files,
            },
        )
        .map_err(|e| e.to_string())?;
        let a = self.log.append_once(ev).map_err(|e| e.to_string())?;
        evidock_store::crash_point!("wipe.logged");
        let _ = self.log.with(|l| l.checkpoint());
        out.seq = Some(a.event.seq);
        tracing::info!(camera = %device, %session, deleted = out.deleted.len(), kept = out.kept.len(), "camera wiped after verified uploads");
        Ok(out)
    }
}
