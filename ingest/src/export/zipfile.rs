//! `export --zip`: the released package as one zip file beside it, `<out>.zip`.
//!
//! Written as the package is: under a name this station picks at random
//! (`.evidock-export-<nonce>.zip.partial`, beside `--out`), recorded in
//! `<data>/exports/<digest of --out>.zip-scratch` before the file is made, fsynced, then renamed
//! to `<out>.zip` without replacing anything. A zip cut off (a crash, a full disk) is never
//! found under the name a court would copy; the next `export --zip` to that `--out` removes it
//! and, the package being released and its `exported` event of this case on record, makes the
//! zip again. Entries keep their Unix modes, so the verifier under `tools/` unpacks executable.
//!
//! What goes into the zip is the package as recorded, or nothing: `MANIFEST.json` must have the
//! SHA-256 its `exported` event names, every file the manifest lists must have its size and
//! SHA-256 (hashed as it is zipped), and nothing else may be there but the manifest's signature
//! and sums files. Files are opened without following links and must be regular files (a FIFO
//! planted in the package would hang the export, holding the station's export lock).

use super::scratch::{self, other};
use super::{ExportError, Exported, io};
use crate::station::Station;
use evidock_store::fsutil;
use evidock_verify::id::{CaseId, Sha256};
use evidock_verify::package::{self, Manifest};
use sha2::Digest as _;
use std::collections::BTreeMap;
use std::io::{Read as _, Write as _};
use std::os::unix::fs::{OpenOptionsExt as _, PermissionsExt as _};
use std::path::{Path, PathBuf};

const PREFIX: &str = ".evidock-export-";
const SUFFIX: &str = ".zip.partial";

/// `<out>.zip`.
pub fn zip_path(out: &Path) -> PathBuf {
    let mut p = out.as_os_str().to_owned();
    p.push(".zip");
    PathBuf::from(p)
}

fn record_path(st: &Station, out: &Path) -> PathBuf {
    scratch::record_path(st, out).with_extension("zip-scratch")
}

/// The package released at `out` by an earlier export of `case` (its `exported` event on
/// record), whose zip is missing: what that export made, to be zipped now. Anything else at
/// `out` is [`ExportError::Exists`], as before.
pub fn released_without_zip(
    st: &Station,
    case: &CaseId,
    out: &Path,
) -> Result<Exported, ExportError> {
    let _turn = scratch::lock(st)?;
    let given = out;
    let out = &scratch::canonical(out)?;
    let exists = || ExportError::Exists(given.to_path_buf());
    // A zip cut off earlier goes first, whatever follows (the record of one renamed into place
    // just before a crash names nothing any more, and goes too).
    clear_leftover(&record_path(st, out), out)?;
    if fs_err::symlink_metadata(zip_path(out)).is_ok()
        || !fs_err::symlink_metadata(out).is_ok_and(|m| m.is_dir())
    {
        return Err(exists());
    }
    match scratch::logged(st, out, out)? {
        Some(mut done) if done.case == *case => {
            done.package = given.to_path_buf();
            done.warnings = vec![
                "this package was released earlier, by an export cut off before its zip was made: the zip is made now"
                    .into(),
            ];
            Ok(done)
        }
        _ => Err(exists()),
    }
}

/// Whether `<out>.zip` is in the way: checked before an export builds anything, so that a
/// zip left there does not fail the export only after its package is released. A zip an
/// earlier export to `out` left half-written (or the record of one renamed into place just
/// before a crash) is cleared first.
pub fn check_zip_free(st: &Station, out: &Path) -> Result<(), ExportError> {
    let zip = zip_path(out);
    // (A folder not made yet holds no leftover.)
    if scratch::parent(out).is_dir() {
        let _turn = scratch::lock(st)?;
        let canonical = scratch::canonical(out)?;
        clear_leftover(&record_path(st, &canonical), &canonical)?;
    }
    match fs_err::symlink_metadata(&zip) {
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
        Err(e) => Err(io(&zip)(e)),
        Ok(_) => Err(ExportError::ZipExists(zip)),
    }
}

/// Zip the package released at `out`, recorded with manifest `manifest`, into `<out>.zip` (see
/// the module documentation).
pub fn zip_released(st: &Station, out: &Path, manifest: &Sha256) -> Result<PathBuf, ExportError> {
    let _turn = scratch::lock(st)?;
    let given = zip_path(out);
    let out = &scratch::canonical(out)?;
    let to = zip_path(out);
    let record = record_path(st, out);
    clear_leftover(&record, out)?;
    if fs_err::symlink_metadata(&to).is_ok() {
        return Err(ExportError::ZipExists(given));
    }
    let mut nonce = [0u8; 8];
    getrandom::fill(&mut nonce).map_err(other)?;
    let name = format!("{PREFIX}{}{SUFFIX}", hex::encode(nonce));
    fsutil::write_atomic(&record, name.as_bytes(), 0o600).map_err(other)?;
    let partial = scratch::parent(out).join(&name);
    // Made here, or not at all: a file already by that name is not this export's to remove.
    let f = std::fs::File::create_new(&partial).map_err(io(&partial))?;
    let written = write_zip(out, manifest, f, &partial).and_then(|()| {
        evidock_store::crash_point!("export.zipped");
        use rustix::fs::{CWD, RenameFlags, renameat_with};
        renameat_with(CWD, &partial, CWD, &to, RenameFlags::NOREPLACE)
            .map_err(|e| io(&to)(e.into()))?;
        evidock_store::crash_point!("export.zip-released");
        fsutil::sync_dir(scratch::parent(out)).map_err(other)
    });
    if let Err(e) = written {
        // Nothing of it under the zip's name: the partial file goes, and its record with it.
        if let Err(rm) = fs_err::remove_file(&partial)
            && rm.kind() != std::io::ErrorKind::NotFound
        {
            tracing::warn!(partial = %partial.display(), error = %rm, "a cut-off zip could not be removed; the next export --zip to the same --out removes it");
            return Err(e);
        }
        forget(&record);
        return Err(e);
    }
    forget(&record);
    Ok(given)
}

fn forget(record: &Path) {
    // A record left names a file that is gone: the next export --zip to this --out drops it,
    // and `evidock status` counts it meanwhile.
    if let Err(e) = fs_err::remove_file(record) {
        tracing::warn!(record = %record.display(), error = %e, "a zip's scratch record could not be removed");
    }
}

/// Remove the zip an earlier export to `out` left half-written, if its record names one of
/// this station's names; a record naming anything else is refused.
fn clear_leftover(record: &Path, out: &Path) -> Result<(), ExportError> {
    let name = match fs_err::read_to_string(record) {
        Ok(n) => n,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(()),
        Err(e) => return Err(io(record)(e)),
    };
    if !scratch::station_made(&name, SUFFIX) {
        return Err(ExportError::Other(format!(
            "{}: not a zip scratch record of this station ({name:?}); remove it",
            record.display()
        )));
    }
    let partial = scratch::parent(out).join(&name);
    match fs_err::symlink_metadata(&partial) {
        Ok(m) if m.is_file() => {
            tracing::warn!(partial = %partial.display(), "a zip cut off earlier: removed");
            fs_err::remove_file(&partial).map_err(io(&partial))?;
            fsutil::sync_dir(scratch::parent(out)).map_err(other)?;
        }
        Ok(_) => {
            return Err(ExportError::Other(format!(
                "{}: the scratch zip of an earlier export is not a file now (replaced by someone): remove it and export again",
                partial.display()
            )));
        }
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
        Err(e) => return Err(io(&partial)(e)),
    }
    fs_err::remove_file(record).map_err(io(record))
}

/// Open a file of the package: not through a link, not blocking (a FIFO), a regular file.
fn open_plain(p: &Path) -> Result<(std::fs::File, std::fs::Metadata), ExportError> {
    let f = std::fs::OpenOptions::new()
        .read(true)
        .custom_flags(libc_flags())
        .open(p)
        .map_err(|e| {
            // O_NOFOLLOW on a link: ELOOP.
            if e.raw_os_error() == Some(rustix::io::Errno::LOOP.raw_os_error()) {
                not_recorded(p, "a symbolic link, not a file")
            } else {
                io(p)(e)
            }
        })?;
    let m = f.metadata().map_err(io(p))?;
    if !m.is_file() {
        return Err(not_recorded(p, "not a regular file"));
    }
    Ok((f, m))
}

fn libc_flags() -> i32 {
    (rustix::fs::OFlags::NOFOLLOW | rustix::fs::OFlags::NONBLOCK).bits() as i32
}

fn not_recorded(p: &Path, reason: &str) -> ExportError {
    ExportError::NotAsRecorded {
        package: p.to_path_buf(),
        reason: reason.to_string(),
    }
}

/// The package directory `dir` into the zip file `f` (at `to`), fsynced; every file checked
/// against the recorded manifest `manifest` as it is written. Stored, not deflated: video does
/// not compress. Paths as UTF-8 so Chinese names survive on Windows.
fn write_zip(
    dir: &Path,
    manifest: &Sha256,
    f: std::fs::File,
    to: &Path,
) -> Result<(), ExportError> {
    let manifest_path = dir.join(package::MANIFEST);
    let (mut mf, m) = open_plain(&manifest_path)?;
    if m.len() > package::cap::MANIFEST {
        return Err(not_recorded(&manifest_path, "larger than any manifest"));
    }
    let mut manifest_bytes = Vec::new();
    mf.read_to_end(&mut manifest_bytes)
        .map_err(io(&manifest_path))?;
    if Sha256::digest(&manifest_bytes) != *manifest {
        return Err(not_recorded(
            &manifest_path,
            "its SHA-256 is not the one its `exported` event names",
        ));
    }
    let listed: Manifest = serde_json::from_slice(&manifest_bytes)
        .map_err(|e| not_recorded(&manifest_path, &e.to_string()))?;
    let mut want: BTreeMap<String, (u64, Sha256)> = listed
        .files
        .iter()
        .map(|f| (f.path.clone(), (f.size, f.sha256)))
        .collect();
    let mut z = zip::ZipWriter::new(std::io::BufWriter::new(f));
    let zip_err = |e: zip::result::ZipError| ExportError::Other(format!("{}: {e}", to.display()));
    let top = dir
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_else(|| "package".into());
    let mut files = Vec::new();
    collect(dir, dir, &mut files)?;
    files.sort();
    let mut buf = vec![0u8; 1 << 20];
    for rel in files {
        let p = dir.join(&rel);
        let expected = want.remove(&rel);
        let unlisted = [
            package::MANIFEST,
            package::MANIFEST_SIG,
            package::SHA256SUMS,
            package::SM3SUMS,
        ]
        .contains(&rel.as_str());
        if expected.is_none() && !unlisted {
            return Err(not_recorded(&p, "a file its manifest does not list"));
        }
        let (mut src, meta) = open_plain(&p)?;
        let opts = zip::write::SimpleFileOptions::default()
            .compression_method(zip::CompressionMethod::Stored)
            .large_file(true)
            .unix_permissions(meta.permissions().mode() & 0o777);
        z.start_file(format!("{top}/{rel}"), opts)
            .map_err(zip_err)?;
        if rel == package::MANIFEST {
            // The bytes checked above, not read again.
            z.write_all(&manifest_bytes).map_err(io(to))?;
            continue;
        }
        let (mut sha, mut size) = (sha2::Sha256::new(), 0u64);
        loop {
            let n = src.read(&mut buf).map_err(io(&p))?;
            if n == 0 {
                break;
            }
            sha.update(&buf[..n]);
            size += n as u64;
            z.write_all(&buf[..n]).map_err(io(to))?;
        }
        if let Some((want_size, want_sha)) = expected {
            let got = Sha256::from_slice(&sha.finalize())
                .ok_or_else(|| ExportError::Other("a SHA-256 not 32 bytes long".into()))?;
            if size != want_size || got != want_sha {
                return Err(not_recorded(
                    &p,
                    &format!(
                        "{size} bytes, SHA-256 {got}; its manifest says {want_size} bytes, {want_sha}"
                    ),
                ));
            }
        }
    }
    if let Some(missing) = want.keys().next() {
        return Err(not_recorded(
            &dir.join(missing),
            "listed in its manifest, not in the package",
        ));
    }
    let mut w = z.finish().map_err(zip_err)?;
    w.flush().map_err(io(to))?;
    let f = w.into_inner().map_err(|e| io(to)(e.into_error()))?;
    f.sync_all().map_err(io(to))?;
    Ok(())
}

/// Every file under `at` (relative to `root`, `/`-separated); links and other non-directories
/// are listed too, and refused when opened.
fn collect(root: &Path, at: &Path, out: &mut Vec<String>) -> Result<(), ExportError> {
    for e in fs_err::read_dir(at).map_err(io(at))? {
        let e = e.map_err(io(at))?;
        let p = e.path();
        if e.file_type().map_err(io(&p))?.is_dir() {
            collect(root, &p, out)?;
        } else if let Ok(rel) = p.strip_prefix(root) {
            out.push(
                rel.components()
                    .map(|c| c.as_os_str().to_string_lossy().into_owned())
                    .collect::<Vec<_>>()
                    .join("/"),
            );
        }
    }
    Ok(())
}
