//! The evidence files of a package: each original, from the spool or the evidence store, checked
//! against its SHA-256 as it is written, and the latest derivative of each role made from it.
//! Apart because it is the part of the export that reads the evidence itself.

use super::writer::Writer;
use super::{ExportError, PackageItem};
use crate::cases::Cases;
use crate::station::Station;
use evidock_store::objects::layout;
use evidock_verify::event::payload::{ObjectRole, TranscodedPayload};
use evidock_verify::event::{CustodyEvent, EventKind};
use evidock_verify::package::FileRole;
use std::collections::BTreeMap;
use std::io::Read;
use std::path::{Path, PathBuf};

/// Copy the originals and derivatives of the case's items into the package; what is missing
/// from a derivative is a warning, a wrong byte in any is an error.
pub(super) fn copy_evidence(
    st: &Station,
    cases: &Cases,
    view: &crate::cases::CaseView,
    root: &Path,
    w: &mut Writer<'_>,
    events: &[CustodyEvent],
    warnings: &mut Vec<String>,
) -> Result<Vec<PackageItem>, ExportError> {
    let transcoded: Vec<(TranscodedPayload, &CustodyEvent)> = events
        .iter()
        .filter(|e| e.kind == EventKind::Transcoded)
        .filter_map(|e| e.payload::<TranscodedPayload>().ok().map(|p| (p, e)))
        .collect();
    let mut pitems = Vec::new();
    for l in &view.evidence {
        let it = &l.item;
        let name = safe_name(it.path.rsplit('/').next().unwrap_or(&it.path));
        let (stem, ext) = stem_and_ext(&name);
        let rel = format!("originals/{}_{name}", it.evidence);
        let mut src = open_source(
            st,
            st.spool.object_path(&it.sha256),
            &layout::original(&it.sha256),
            root,
        )
        .map_err(|reason| ExportError::NoOriginal {
            evidence: it.evidence.clone(),
            sha256: it.sha256,
            reason,
        })?;
        let d = w.copy(&rel, FileRole::Original, &mut src, Some(&it.evidence), None)?;
        if d.sha256 != it.sha256 {
            return Err(ExportError::Mismatch {
                what: format!("the original of {}", it.evidence),
                got: d.sha256,
                want: it.sha256,
            });
        }
        // The latest derivative of each role made from this content.
        let mut latest_of: BTreeMap<String, &TranscodedPayload> = BTreeMap::new();
        for (p, _) in transcoded
            .iter()
            .filter(|(p, _)| p.parent_sha256 == it.sha256)
        {
            latest_of.insert(format!("{:?}", p.role), p);
        }
        let mut derivatives = Vec::new();
        for p in latest_of.values() {
            let (dir, file_role, suffix) = match p.role {
                ObjectRole::Playback => (
                    "derivatives",
                    FileRole::Derivative,
                    if p.format.starts_with("m4a") || p.format.contains("ipod") {
                        "playback.m4a"
                    } else {
                        "playback.mp4"
                    },
                ),
                ObjectRole::Poster => ("thumbnails", FileRole::Thumbnail, "poster.jpg"),
                ObjectRole::ContactSheet => {
                    ("thumbnails", FileRole::Thumbnail, "contact-sheet.jpg")
                }
                _ => continue,
            };
            let rel = format!("{dir}/{}_{stem}.{suffix}", it.evidence);
            let src = open_source(
                st,
                st.derivatives.object_path(&p.sha256),
                &layout::derivative(&p.sha256),
                root,
            );
            let mut src = match src {
                Ok(s) => s,
                Err(reason) => {
                    warnings.push(format!(
                        "{}: the {:?} derivative {} is not available ({reason}); the package has the original only",
                        it.evidence, p.role, p.sha256
                    ));
                    continue;
                }
            };
            let d = w.copy(
                &rel,
                file_role,
                &mut src,
                Some(&it.evidence),
                Some(it.sha256),
            )?;
            if d.sha256 != p.sha256 {
                return Err(ExportError::Mismatch {
                    what: format!("the {:?} derivative of {}", p.role, it.evidence),
                    got: d.sha256,
                    want: p.sha256,
                });
            }
            derivatives.push((p.role, rel, p.sha256));
        }
        if derivatives
            .iter()
            .all(|(r, _, _)| *r != ObjectRole::Playback)
            && is_media(&ext)
        {
            warnings.push(format!(
                "{}: no playback copy yet (`evidock transcode`); the package has the original only",
                it.evidence
            ));
        }
        pitems.push(PackageItem {
            item: it.clone(),
            link: l.link.clone(),
            original: rel,
            derivatives,
            format: ext,
            category: cases.recorded(it).category,
        });
    }
    Ok(pitems)
}

/// A file name safe on Windows and Linux court PCs: no separators, reserved or control
/// characters.
fn safe_name(name: &str) -> String {
    let s: String = name
        .chars()
        .map(|c| match c {
            '/' | '\\' | ':' | '*' | '?' | '"' | '<' | '>' | '|' => '_',
            c if c.is_control() => '_',
            c => c,
        })
        .collect();
    let s = s
        .trim_matches(|c: char| c == '.' || c.is_whitespace())
        .to_string();
    if s.is_empty() { "file".into() } else { s }
}

fn stem_and_ext(name: &str) -> (String, String) {
    match name.rsplit_once('.') {
        Some((s, e)) if !s.is_empty() => (s.to_string(), e.to_ascii_lowercase()),
        _ => (name.to_string(), String::new()),
    }
}

/// Open an original or derivative: the station's spool copy, else the evidence store's.
fn open_source(
    st: &Station,
    spool_path: PathBuf,
    key: &str,
    to: &Path,
) -> Result<Box<dyn Read>, String> {
    if let Ok(f) = std::fs::File::open(&spool_path) {
        return Ok(Box::new(f));
    }
    // Not in the spool (uploaded and cleaned up, or acquired elsewhere): stream it from the
    // store into a scratch file beside the package, then read that.
    let rt = st.runtime().map_err(|e| e.to_string())?;
    let scratch = to.join(".download");
    if let Err(e) = rt.block_on(st.store.download_to(key, &scratch)) {
        // Never left inside the package that is being sealed.
        let _ = fs_err::remove_file(&scratch);
        return Err(e.to_string());
    }
    let f = std::fs::File::open(&scratch).map_err(|e| e.to_string())?;
    let _ = fs_err::remove_file(&scratch);
    Ok(Box::new(f))
}

fn is_media(ext: &str) -> bool {
    matches!(
        ext,
        "mp4"
            | "mov"
            | "avi"
            | "ts"
            | "mkv"
            | "3gp"
            | "wav"
            | "mp3"
            | "aac"
            | "amr"
            | "h264"
            | "h265"
    )
}
