//! Beneath elsewhere (Windows): every component checked not to be a link before opening. Apart
//! as the other platform's half of beneath.rs, beside unix.rs.

use super::{Beneath, Entry, Kind, MAX_DEPTH, ReadError, io_error};
use std::fs::File;

fn kind(m: &std::fs::Metadata) -> Kind {
    let t = m.file_type();
    if t.is_symlink() {
        Kind::Symlink
    } else if t.is_dir() {
        Kind::Directory
    } else if t.is_file() {
        Kind::Regular
    } else {
        Kind::Unknown
    }
}

impl Beneath {
    pub(super) fn open_checked(&self, rel: &str) -> Result<(File, u64), ReadError> {
        let mut at = self.root.clone();
        let parts: Vec<&str> = rel.split('/').collect();
        for (i, part) in parts.iter().enumerate() {
            at.push(part);
            let m = std::fs::symlink_metadata(&at).map_err(io_error)?;
            let k = kind(&m);
            let last = i + 1 == parts.len();
            if k == Kind::Symlink || (!last && k != Kind::Directory) {
                return Err(ReadError::Link);
            }
            if last && k != Kind::Regular {
                return Err(ReadError::NotRegular(k));
            }
        }
        let f = File::open(&at).map_err(io_error)?;
        let m = f.metadata().map_err(io_error)?;
        if !m.is_file() {
            return Err(ReadError::Changed);
        }
        Ok((f, m.len()))
    }

    pub(super) fn kind_of(&self, rel: &str) -> Option<Kind> {
        let p = self.root.join(rel);
        std::fs::symlink_metadata(p).ok().map(|m| kind(&m))
    }

    pub(super) fn list_dir(&self, rel: Option<&str>) -> std::io::Result<Vec<Entry>> {
        let dir = match rel {
            Some(r) => self.root.join(r),
            None => self.root.clone(),
        };
        let mut out = Vec::new();
        for e in std::fs::read_dir(&dir)? {
            let e = e?;
            let k = std::fs::symlink_metadata(e.path())
                .map(|m| kind(&m))
                .unwrap_or(Kind::Unknown);
            out.push(Entry {
                path: e.file_name().to_string_lossy().into_owned(),
                kind: k,
                text: e.file_name().to_str().is_some(),
            });
        }
        Ok(out)
    }

    pub(super) fn walk_into(&self, out: &mut Vec<Entry>, problems: &mut Vec<(String, String)>) {
        let mut stack: Vec<(String, usize)> = vec![(String::new(), 0)];
        while let Some((prefix, depth)) = stack.pop() {
            let dir = if prefix.is_empty() {
                self.root.clone()
            } else {
                self.root.join(&prefix)
            };
            let rd = match std::fs::read_dir(&dir) {
                Ok(rd) => rd,
                Err(e) => {
                    problems.push((prefix.clone(), e.to_string()));
                    continue;
                }
            };
            for e in rd.flatten() {
                let name = e.file_name().to_string_lossy().into_owned();
                let path = if prefix.is_empty() {
                    name
                } else {
                    format!("{prefix}/{name}")
                };
                let k = std::fs::symlink_metadata(e.path())
                    .map(|m| kind(&m))
                    .unwrap_or(Kind::Unknown);
                out.push(Entry {
                    path: path.clone(),
                    kind: k,
                    text: e.file_name().to_str().is_some(),
                });
                if k == Kind::Directory {
                    if depth + 1 >= MAX_DEPTH {
                        problems.push((path, "nested too deep: not entered".into()));
                    } else {
                        stack.push((path, depth + 1));
                    }
                }
            }
        }
    }
}
