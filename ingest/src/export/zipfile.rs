//! `export --zip`: the released package as one zip file beside it, `<out>.zip`.
//!
//! Written as the package is: under a name this station picks at random
//! (`.evidock-export-<nonce>.zip.partial`, beside `--out`), recorded in
//! `<data>/exports/<digest of --out>.zip-scratch` before the file is made, fsynced, then renamed
//! to `<out>.zip` without replacing anything. A zip cut off (a crash, a full disk) is never
//! found under the name a court would copy; the next `export --zip` to that `--out` removes it
//! and, the package being released and its `exported` event of this case on record, makes the
//! zip again. Entries keep their Unix modes, so the verifier under `tools/` unpacks executable.

use super::scratch::{self, other};
use super::{ExportError, Exported, io};
use crate::station::Station;
use evidock_store::fsutil;
use evidock_verify::id::CaseId;
use std::io::Write as _;
use std::os::unix::fs::PermissionsExt as _;
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
    if zip_path(out).exists() || !std::fs::symlink_metadata(out).is_ok_and(|m| m.is_dir()) {
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

/// Zip the released package at `out` into `<out>.zip` (see the module documentation).
pub fn zip_released(st: &Station, out: &Path) -> Result<PathBuf, ExportError> {
    let _turn = scratch::lock(st)?;
    let given = zip_path(out);
    let out = &scratch::canonical(out)?;
    let to = zip_path(out);
    let record = record_path(st, out);
    clear_leftover(&record, out)?;
    if std::fs::symlink_metadata(&to).is_ok() {
        return Err(ExportError::Exists(given));
    }
    let mut nonce = [0u8; 8];
    getrandom::fill(&mut nonce).map_err(other)?;
    let name = format!("{PREFIX}{}{SUFFIX}", hex::encode(nonce));
    fsutil::write_atomic(&record, name.as_bytes(), 0o600).map_err(other)?;
    let partial = scratch::parent(out).join(&name);
    let written = write_zip(out, &partial).and_then(|()| {
        evidock_store::crash_point!("export.zipped");
        use rustix::fs::{CWD, RenameFlags, renameat_with};
        renameat_with(CWD, &partial, CWD, &to, RenameFlags::NOREPLACE)
            .map_err(|e| io(&to)(e.into()))?;
        fsutil::sync_dir(scratch::parent(out)).map_err(other)
    });
    if let Err(e) = written {
        // Nothing of it under the zip's name: the partial file goes, and its record with it.
        if let Err(rm) = std::fs::remove_file(&partial)
            && rm.kind() != std::io::ErrorKind::NotFound
        {
            tracing::warn!(partial = %partial.display(), error = %rm, "a cut-off zip could not be removed; the next export --zip to the same --out removes it");
            return Err(e);
        }
        let _ = std::fs::remove_file(&record);
        return Err(e);
    }
    if let Err(e) = std::fs::remove_file(&record) {
        tracing::warn!(record = %record.display(), error = %e, "a zip's scratch record could not be removed");
    }
    Ok(given)
}

/// Remove the zip an earlier export to `out` left half-written, if its record names one of
/// this station's names; a record naming anything else is refused.
fn clear_leftover(record: &Path, out: &Path) -> Result<(), ExportError> {
    let name = match std::fs::read_to_string(record) {
        Ok(n) => n,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(()),
        Err(e) => return Err(io(record)(e)),
    };
    let ours = name
        .strip_prefix(PREFIX)
        .and_then(|n| n.strip_suffix(SUFFIX));
    if !ours.is_some_and(|n| n.len() == 16 && n.bytes().all(|b| b.is_ascii_hexdigit())) {
        return Err(ExportError::Other(format!(
            "{}: not a zip scratch record of this station ({name:?}); remove it",
            record.display()
        )));
    }
    let partial = scratch::parent(out).join(&name);
    match std::fs::symlink_metadata(&partial) {
        Ok(m) if m.is_file() => {
            tracing::warn!(partial = %partial.display(), "a zip cut off earlier: removed");
            std::fs::remove_file(&partial).map_err(io(&partial))?;
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
    std::fs::remove_file(record).map_err(io(record))
}

/// The package directory `dir` as one zip file at `to` (a new file), fsynced. Stored, not
/// deflated: video does not compress. Paths as UTF-8 so Chinese names survive on Windows.
fn write_zip(dir: &Path, to: &Path) -> Result<(), ExportError> {
    let f = std::fs::File::create_new(to).map_err(io(to))?;
    let mut z = zip::ZipWriter::new(std::io::BufWriter::new(f));
    let zip_err = |e: zip::result::ZipError| ExportError::Other(format!("{}: {e}", to.display()));
    let top = dir
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_else(|| "package".into());
    let mut files = Vec::new();
    collect(dir, dir, &mut files).map_err(io(dir))?;
    files.sort();
    for rel in files {
        let p = dir.join(&rel);
        let mut src = std::fs::File::open(&p).map_err(io(&p))?;
        let mode = src.metadata().map_err(io(&p))?.permissions().mode() & 0o777;
        let opts = zip::write::SimpleFileOptions::default()
            .compression_method(zip::CompressionMethod::Stored)
            .large_file(true)
            .unix_permissions(mode);
        z.start_file(format!("{top}/{rel}"), opts)
            .map_err(zip_err)?;
        std::io::copy(&mut src, &mut z).map_err(io(to))?;
    }
    let mut w = z.finish().map_err(zip_err)?;
    w.flush().map_err(io(to))?;
    let f = w.into_inner().map_err(|e| io(to)(e.into_error()))?;
    f.sync_all().map_err(io(to))?;
    Ok(())
}

fn collect(root: &Path, at: &Path, out: &mut Vec<String>) -> std::io::Result<()> {
    for e in std::fs::read_dir(at)? {
        let e = e?;
        let p = e.path();
        if e.file_type()?.is_dir() {
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
