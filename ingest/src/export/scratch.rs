//! Where an export builds its package before releasing it under `--out`, and how an export cut
//! off (a crash, a kill, a full disk) is finished or cleared by the next export to that `--out`.
//!
//! The scratch directory sits beside `--out` (the release is one rename, on one filesystem)
//! under a name this station picks at random, `.evidock-export-<nonce>.partial`, recorded in
//! `<data>/exports/<digest of --out>` before the directory is made. A directory by that name is
//! this station's own: the next export to the same `--out` finishes it when the custody log
//! holds its `exported` event (the event is recorded before the release, invariant 3; only the
//! rename was missing), and removes it otherwise. Nothing else beside `--out` is read, written
//! or removed. `--out` is named by its canonical path (however it was typed, from wherever),
//! exports of one station take turns (`<data>/exports/.lock`), and the release never replaces
//! what appeared at `--out` meanwhile, not even an empty directory.

use super::{ExportError, Exported, io};
use crate::station::Station;
use evidock_store::fsutil;
use evidock_verify::event::payload::ExportedPayload;
use evidock_verify::id::{CaseId, Sha256};
use evidock_verify::package::{self, FileRole, Manifest};
use std::path::{Path, PathBuf};

const PREFIX: &str = ".evidock-export-";
const SUFFIX: &str = ".partial";

/// Whether `name` is one this station makes beside `--out`: `.evidock-export-`, 16 hex digits
/// of a random nonce, `suffix`.
pub(super) fn station_made(name: &str, suffix: &str) -> bool {
    name.strip_prefix(PREFIX)
        .and_then(|n| n.strip_suffix(suffix))
        .is_some_and(|n| n.len() == 16 && n.bytes().all(|b| b.is_ascii_hexdigit()))
}

/// The digest of `--out` as the station names it (event keys, scratch records).
pub(super) fn out_digest(out: &Path) -> String {
    Sha256::digest(out.as_os_str().as_encoded_bytes()).to_hex()
}

/// The key of the `exported` event of a package with this manifest released at `out`.
pub(super) fn event_key(manifest: &Sha256, out: &Path) -> String {
    format!("exported/{manifest}/{}", &out_digest(out)[..16])
}

pub(super) fn parent(out: &Path) -> &Path {
    out.parent()
        .filter(|p| !p.as_os_str().is_empty())
        .unwrap_or(Path::new("."))
}

pub(super) fn record_path(st: &Station, out: &Path) -> PathBuf {
    st.data_dir
        .join("exports")
        .join(format!("{}.scratch", &out_digest(out)[..32]))
}

pub(super) fn other(e: impl std::fmt::Display) -> ExportError {
    ExportError::Other(e.to_string())
}

/// `out` as the station names it: its folder's canonical path (the folder exists) and its
/// name, so that `pkg`, `./pkg` and `/abs/pkg` are one `--out`, from any working directory.
pub(super) fn canonical(out: &Path) -> Result<PathBuf, ExportError> {
    let name = out.file_name().ok_or_else(|| {
        ExportError::Other(format!(
            "{}: --out must name the package directory to create",
            out.display()
        ))
    })?;
    let folder = fs_err::canonicalize(parent(out)).map_err(io(parent(out)))?;
    Ok(folder.join(name))
}

/// The station's export lock, held for a whole export: two exports at once (to one `--out`
/// or not) would otherwise read each other's scratch records mid-way.
pub(super) fn lock(st: &Station) -> Result<std::fs::File, ExportError> {
    let dir = st.data_dir.join("exports");
    fsutil::create_dir_all(&dir).map_err(other)?;
    let path = dir.join(".lock");
    let f = std::fs::OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(false)
        .open(&path)
        .map_err(io(&path))?;
    f.lock().map_err(io(&path))?;
    Ok(f)
}

/// A scratch directory of this station's, for one `--out`.
#[derive(Debug)]
pub(super) struct Scratch {
    pub dir: PathBuf,
    record: PathBuf,
}

impl Scratch {
    /// A new scratch directory for `out`: its name recorded durably first, then made.
    pub fn create(st: &Station, out: &Path) -> Result<Scratch, ExportError> {
        let mut nonce = [0u8; 8];
        getrandom::fill(&mut nonce).map_err(other)?;
        let name = format!("{PREFIX}{}{SUFFIX}", hex::encode(nonce));
        let record = record_path(st, out);
        fsutil::create_dir_all(fsutil::parent_dir(&record)).map_err(other)?;
        fsutil::write_atomic(&record, name.as_bytes(), 0o600).map_err(other)?;
        let dir = parent(out).join(&name);
        fs_err::create_dir(&dir).map_err(io(&dir))?;
        fsutil::sync_dir(parent(out)).map_err(other)?;
        Ok(Scratch { dir, record })
    }

    /// Release the package under `out` (one rename that never replaces anything, made
    /// durable), then forget the record. Refused, the package stays where it is, named.
    pub fn release(self, out: &Path) -> Result<(), ExportError> {
        use rustix::fs::{CWD, RenameFlags, renameat_with};
        renameat_with(CWD, &self.dir, CWD, out, RenameFlags::NOREPLACE).map_err(|e| {
            ExportError::NotReleased {
                scratch: self.dir.clone(),
                out: out.to_path_buf(),
                source: e.into(),
            }
        })?;
        evidock_store::crash_point!("export.released");
        fsutil::sync_dir(parent(out)).map_err(other)?;
        self.forget();
        Ok(())
    }

    /// Remove what this export made and did not release.
    pub fn abandon(self) {
        if let Err(e) = fs_err::remove_dir_all(&self.dir) {
            // The record stays: the next export to this --out removes the directory.
            tracing::warn!(scratch = %self.dir.display(), error = %e, "an export's scratch directory could not be removed; the next export to the same --out removes it");
            return;
        }
        self.forget();
    }

    fn forget(self) {
        // A record left behind only names a directory that is gone: the next export to this
        // --out drops it.
        if let Err(e) = fs_err::remove_file(&self.record) {
            tracing::warn!(record = %self.record.display(), error = %e, "an export's scratch record could not be removed");
        }
    }
}

/// What an earlier export to `out` left: released now if its `exported` event is in the
/// custody log (what it made, as that export would have said), removed if not (`None`). A
/// logged package of another case than `case` is not released: the export is refused, naming
/// it (the disclosure on record is that one, at this `--out`).
pub(super) fn finish_leftover(
    st: &Station,
    out: &Path,
    case: &CaseId,
) -> Result<Option<Exported>, ExportError> {
    let record = record_path(st, out);
    let name = match fs_err::read_to_string(&record) {
        Ok(n) => n,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(io(&record)(e)),
    };
    // Only a name this station makes: a record that says anything else names nothing of ours.
    if !station_made(&name, SUFFIX) {
        return Err(ExportError::Other(format!(
            "{}: not a scratch record of this station ({name:?}); remove it",
            record.display()
        )));
    }
    let scratch = Scratch {
        dir: parent(out).join(&name),
        record,
    };
    match fs_err::symlink_metadata(&scratch.dir) {
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            scratch.forget();
            return Ok(None);
        }
        Err(e) => return Err(io(&scratch.dir)(e)),
        // Made by this station as a directory: anything else there now is not its package.
        Ok(m) if !m.is_dir() => {
            return Err(ExportError::Other(format!(
                "{}: the scratch directory of an earlier export is not a directory now (replaced by someone): not released; remove it and export again",
                scratch.dir.display()
            )));
        }
        Ok(_) => {}
    }
    match logged(st, &scratch.dir, out)? {
        Some(done) if done.case != *case => Err(ExportError::LeftoverOfOtherCase {
            out: out.to_path_buf(),
            scratch: scratch.dir.clone(),
            case: done.case,
        }),
        Some(mut done) => {
            tracing::warn!(package = %out.display(), "an export cut off after its `exported` event: its package released now");
            scratch.release(out)?;
            done.package = out.to_path_buf();
            Ok(Some(done))
        }
        None => {
            tracing::warn!(scratch = %scratch.dir.display(), "an export cut off before its `exported` event: its scratch directory removed");
            fs_err::remove_dir_all(&scratch.dir).map_err(io(&scratch.dir))?;
            fsutil::sync_dir(parent(out)).map_err(other)?;
            scratch.forget();
            Ok(None)
        }
    }
}

/// The export whose package is in `dir`, if its `exported` event for `out` is in the log.
pub(super) fn logged(
    st: &Station,
    dir: &Path,
    out: &Path,
) -> Result<Option<Exported>, ExportError> {
    let path = dir.join(package::MANIFEST);
    let bytes = match fs_err::read(&path) {
        Ok(b) => b,
        // Cut off before the manifest was written: not logged either.
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(io(&path)(e)),
    };
    let sha = Sha256::digest(&bytes);
    let found = st.log.with(|l| {
        l.seq_of_key(&event_key(&sha, out))?
            .map(|seq| l.read_event(seq))
            .transpose()
    })?;
    let Some(event) = found else {
        return Ok(None);
    };
    let payload: ExportedPayload = event.payload().map_err(other)?;
    let manifest: Manifest = serde_json::from_slice(&bytes).map_err(other)?;
    let count = |role: FileRole| manifest.files.iter().filter(|f| f.role == role).count() as u64;
    Ok(Some(Exported {
        case: payload.case,
        package: out.to_path_buf(),
        manifest_sha256: payload.manifest_sha256,
        files: payload.files,
        bytes: payload.bytes,
        originals: count(FileRole::Original),
        derivatives: count(FileRole::Derivative) + count(FileRole::Thumbnail),
        events: manifest.custody.events.len() as u64,
        timestamps: Vec::new(),
        warnings: vec![format!(
            "this package was made by an export cut off after its `exported` event (#{}), and released now",
            event.seq
        )],
        zip: None,
    }))
}
