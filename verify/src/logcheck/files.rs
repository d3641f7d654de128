//! Where a log's pieces are, what else its folders may hold, and reading its events piece by
//! piece.

use super::{code, refused};
use crate::beneath::{self, Beneath, Kind, ReadError};
use crate::finding::{Report, file};
use crate::layout;
use std::io::Read;
use std::path::{Path, PathBuf};

/// Where a custody log's pieces are, relative to `root`: a station's log directory, or the log
/// as a station published it in an evidence store (docs/formats/store-layout.md).
#[derive(Debug, Clone)]
pub struct LogFiles {
    pub root: PathBuf,
    pub key: String,
    /// Read one after another, these give the events in order.
    pub events: Vec<String>,
    pub checkpoints: String,
    pub timestamps: String,
    /// The names each folder of the log may hold (`""`: the root); anything else there is not
    /// part of a custody log, is not checked, and is reported.
    pub known: Vec<(String, Vec<String>)>,
    /// Problems found while locating the pieces (e.g. a gap between published segments).
    pub report: Report,
}

fn names(list: &[&str]) -> Vec<String> {
    list.iter().map(|s| s.to_string()).collect()
}

impl LogFiles {
    /// A station's log directory (docs/formats/custody-log.md).
    pub fn station_dir(dir: &Path) -> Self {
        LogFiles {
            root: dir.to_path_buf(),
            key: layout::KEY_FILE.into(),
            events: vec![layout::EVENTS_FILE.into()],
            checkpoints: layout::CHECKPOINTS_DIR.into(),
            timestamps: layout::TIMESTAMPS_DIR.into(),
            known: vec![(
                String::new(),
                names(&[
                    layout::KEY_FILE,
                    layout::EVENTS_FILE,
                    layout::CHECKPOINTS_DIR,
                    layout::TIMESTAMPS_DIR,
                    "quarantine",
                ]),
            )],
            report: Report::new(),
        }
    }

    /// A log published in a store: `<store>/stations/<station ID>/` with `keys/*.pub` (every
    /// key it used), `log/station.pub` (its first key) and `log/{segments,checkpoints,timestamps}/`.
    pub fn published(station_dir: &Path) -> Self {
        let mut report = Report::new();
        let dir = Beneath::open(station_dir);
        let list = |rel: &str| -> Vec<beneath::Entry> {
            dir.as_ref()
                .ok()
                .and_then(|d| d.list(Some(rel)).ok())
                .unwrap_or_default()
        };
        let first = format!("log/{}", layout::KEY_FILE);
        let has_first = dir.as_ref().is_ok_and(|d| d.kind(&first).is_some());
        // Logs published before `log/station.pub` existed: the only key under `keys/`.
        let key = if has_first {
            first
        } else {
            let keys = list("keys");
            if keys.len() > 1 {
                report.warning(
                    code::KEY_MISSING,
                    "keys/",
                    format!(
                        "{} station keys published; checking with the first",
                        keys.len()
                    ),
                );
            }
            keys.first()
                .map(|e| format!("keys/{}", e.path))
                .unwrap_or_else(|| "keys/(none)".into())
        };
        let mut segments: Vec<(u64, u64, String)> = list("log/segments")
            .into_iter()
            .filter_map(|e| {
                let (a, b) = e.path.strip_suffix(".jsonl")?.split_once('-')?;
                Some((
                    a.parse().ok()?,
                    b.parse().ok()?,
                    format!("log/segments/{}", e.path),
                ))
            })
            .collect();
        segments.sort();
        let mut at = 0u64;
        for (from, to, path) in &segments {
            if *from != at {
                report.error(
                    code::LOG_SEGMENT_GAP,
                    path,
                    format!("the segment starts at event #{from}, but the one before ends at #{at}: events are missing"),
                );
            }
            at = *to;
        }
        LogFiles {
            root: station_dir.to_path_buf(),
            key,
            events: segments.into_iter().map(|(_, _, p)| p).collect(),
            checkpoints: "log/checkpoints".into(),
            timestamps: "log/timestamps".into(),
            known: vec![
                (String::new(), names(&["keys", "log", "records"])),
                (
                    "log".into(),
                    names(&[layout::KEY_FILE, "segments", "checkpoints", "timestamps"]),
                ),
            ],
            report,
        }
    }
}

/// Anything in the log's folders that is not part of a custody log: a log check says nothing
/// about it, and a reader who took the folder for a package must not think otherwise.
pub(super) fn foreign_files(dir: &Beneath, files: &LogFiles, r: &mut Report) {
    for (folder, allowed) in &files.known {
        let rel = (!folder.is_empty()).then_some(folder.as_str());
        let Ok(entries) = dir.list(rel) else { continue };
        for e in entries {
            if e.path.starts_with('.') || (e.text && allowed.contains(&e.path)) {
                continue;
            }
            let path = match rel {
                Some(f) => format!("{f}/{}", e.path),
                None => e.path.clone(),
            };
            r.error(
                code::LOG_FOREIGN_FILE,
                path,
                "not part of a custody log: checked as a log, this folder says nothing about it (a disclosure package has MANIFEST.json)",
            );
        }
    }
}

/// The pieces of the events (a log's one file, or a published log's segments) read one after
/// another, each opened only when the one before is done: a station's years of segments must
/// not need as many open files.
pub(super) struct Pieces<'a> {
    pub(super) dir: &'a Beneath,
    pub(super) paths: &'a [String],
    pub(super) next: usize,
    pub(super) current: Option<std::fs::File>,
}

impl Read for Pieces<'_> {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        loop {
            if let Some(f) = &mut self.current {
                let n = f.read(buf)?;
                if n > 0 || buf.is_empty() {
                    return Ok(n);
                }
                self.current = None;
            }
            let Some(p) = self.paths.get(self.next) else {
                return Ok(0);
            };
            self.next += 1;
            let (f, _) = self
                .dir
                .open_file(p)
                .map_err(|e| std::io::Error::other(format!("{p}: {e}")))?;
            self.current = Some(f);
        }
    }
}

/// `(size, relative path)` of the `<size>.note` / `<size>.tsr` files in `rel`, by size. A
/// missing directory is empty; a stray file is reported, and so is anything not a regular file.
pub(super) fn sized_files(dir: &Beneath, rel: &str, r: &mut Report) -> Vec<(u64, String)> {
    let mut out = Vec::new();
    let entries = match dir.list(Some(rel)) {
        Ok(e) => e,
        Err(ReadError::NotFound) => return out,
        Err(e) => {
            refused(r, code::LOG_UNREADABLE, rel, &e);
            return out;
        }
    };
    for entry in entries {
        let path = format!("{rel}/{}", entry.path);
        match layout::size_of_file(&entry.path) {
            Some(size) if entry.kind == Kind::Regular => out.push((size, path)),
            Some(_) => r.error(
                file::code::NOT_REGULAR,
                &path,
                format!("is {}, not a regular file: not read", entry.kind.describe()),
            ),
            None if entry.path.starts_with('.') => {}
            None => r.warning(
                code::CHECKPOINT_MISNAMED,
                &path,
                "a file that is not a checkpoint or token; ignored",
            ),
        }
    }
    out.sort();
    out
}
