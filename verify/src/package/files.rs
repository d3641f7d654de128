//! The package's files: the manifest, its paths, its seal, the files it lists, the sums.

use super::{Ctx, FORMAT, MANIFEST, MANIFEST_SIG, Manifest, ManifestFile, SHA256SUMS, SM3SUMS};
use super::{FileRole, cap, code, signed_text};
use crate::beneath::{self, Beneath, Kind};
use crate::digest::{DigestSet, Digests};
use crate::finding::{Report, file};
use crate::id::Sha256;
use crate::logcheck::refused;
use crate::note::SignedNote;
use std::collections::{BTreeMap, BTreeSet};

/// The manifest and its exact bytes, or why there is none.
pub(super) fn read_manifest(dir: &Beneath, r: &mut Report) -> Option<(Manifest, Vec<u8>)> {
    let bytes = match dir.read(MANIFEST, cap::MANIFEST) {
        Ok(b) => b,
        Err(e) if e.is_missing() => {
            r.error(
                code::MANIFEST_MISSING,
                MANIFEST,
                "no MANIFEST.json: not an evidock disclosure package, or it was removed",
            );
            return None;
        }
        Err(e) => {
            refused(r, code::MANIFEST_MISSING, MANIFEST, &e);
            return None;
        }
    };
    let manifest: Manifest = match serde_json::from_slice(&bytes) {
        Ok(m) => m,
        Err(e) => {
            r.error(code::MANIFEST_MALFORMED, MANIFEST, e.to_string());
            return None;
        }
    };
    if manifest.v != 1 || manifest.format != FORMAT {
        r.error(
            code::MANIFEST_MALFORMED,
            MANIFEST,
            format!(
                "format {:?} version {}: this verifier reads {FORMAT} version 1",
                manifest.format, manifest.v
            ),
        );
        return None;
    }
    Some((manifest, bytes))
}

/// The files the package has besides those the manifest lists.
fn is_seal_file(p: &str) -> bool {
    [MANIFEST, MANIFEST_SIG, SHA256SUMS, SM3SUMS].contains(&p)
}

/// Every listed path is relative and normalised, not one of the seal's own files, and unique —
/// also after case folding, since a Windows court PC would see two such files as one.
pub(super) fn check_paths(c: &mut Ctx<'_>) {
    let mut seen: BTreeMap<String, &str> = BTreeMap::new();
    for (i, f) in c.manifest.files.iter().enumerate() {
        let problem = match beneath::check_rel(&f.path) {
            Err(e) => Some(e),
            Ok(()) if is_seal_file(&f.path) => {
                Some("the name of a file the seal itself uses".into())
            }
            Ok(()) => match seen.get(&f.path.to_lowercase()) {
                Some(first) if *first == f.path => Some("listed twice".into()),
                Some(first) => Some(format!(
                    "the same file as {first:?} where names are not case-sensitive (Windows)"
                )),
                None => None,
            },
        };
        match problem {
            Some(why) => c.r.error(
                code::MANIFEST_BAD_PATH,
                &f.path,
                format!("the manifest lists {why}: not read"),
            ),
            None => {
                seen.insert(f.path.to_lowercase(), &f.path);
                c.readable.push(i);
            }
        }
    }
}

/// The seal: `MANIFEST.sig` signs these manifest bytes with the key the package names.
pub(super) fn check_seal(c: &mut Ctx<'_>) {
    let sig = match c.dir.read(MANIFEST_SIG, cap::SIG) {
        Ok(b) => b,
        Err(e) => {
            refused(&mut c.r, code::FILE_MISSING, MANIFEST_SIG, &e);
            return;
        }
    };
    let Some(k) = &c.key else {
        c.r.error(
            code::MANIFEST_BAD_SIGNATURE,
            MANIFEST_SIG,
            "no station key to check the seal with",
        );
        return;
    };
    match SignedNote::parse(&sig) {
        Ok(note) if note.text != signed_text(&c.manifest_bytes) => c.r.error(
            code::MANIFEST_BAD_SIGNATURE,
            MANIFEST,
            "MANIFEST.sig signs another manifest: MANIFEST.json was changed",
        ),
        Ok(note) if !note.verify(k) => c.r.error(
            code::MANIFEST_BAD_SIGNATURE,
            MANIFEST_SIG,
            format!("not signed by {} ({})", k.name, k.fingerprint()),
        ),
        Ok(_) => {}
        Err(e) => {
            c.r.error(code::MANIFEST_BAD_SIGNATURE, MANIFEST_SIG, e.to_string())
        }
    }
}

/// Every entry of the directory: regular, and listed (or one of the seal's files); every
/// listed file present with its size and digests.
pub(super) fn check_contents(c: &mut Ctx<'_>) {
    let (entries, problems) = c.dir.walk();
    for (path, why) in problems {
        c.r.error(file::code::UNREADABLE, path, why);
    }
    let kinds: BTreeMap<&str, Kind> = entries.iter().map(|e| (e.path.as_str(), e.kind)).collect();
    let listed: BTreeSet<&str> = c.manifest.files.iter().map(|f| f.path.as_str()).collect();
    for e in &entries {
        if e.kind != Kind::Regular {
            c.r.error(
                file::code::NOT_REGULAR,
                &e.path,
                format!(
                    "is {}: a package holds only regular files; not read",
                    e.kind.describe()
                ),
            );
        } else if !listed.contains(e.path.as_str()) && !is_seal_file(&e.path) {
            c.r.error(
                code::FILE_UNLISTED,
                &e.path,
                "a file the manifest does not list: it was added after the package was sealed",
            );
        }
    }
    let mut to_hash: Vec<ManifestFile> = Vec::new();
    for &i in &c.readable {
        let f = &c.manifest.files[i];
        match kinds.get(f.path.as_str()) {
            None => match through_link(&f.path, &kinds) {
                Some((dir, kind)) => c.r.error(
                    file::code::NOT_REGULAR,
                    &f.path,
                    format!("listed, but {dir} is {}: not read", kind.describe()),
                ),
                None => c.r.error(
                    code::FILE_MISSING,
                    &f.path,
                    format!("listed ({} bytes) but not in the package", f.size),
                ),
            },
            Some(Kind::Regular) => to_hash.push(f.clone()),
            // Reported above.
            Some(_) => {}
        }
    }
    let hashed = hash_files(&c.dir, &to_hash);
    for (f, h) in to_hash.iter().zip(hashed) {
        let altered = match f.role {
            FileRole::Original => code::ORIGINAL_ALTERED,
            FileRole::Derivative | FileRole::Thumbnail => code::DERIVATIVE_ALTERED,
            _ => code::FILE_ALTERED,
        };
        let ok = match h {
            Err(e) => {
                refused(&mut c.r, code::FILE_MISSING, &f.path, &e);
                false
            }
            Ok((d, size, on_disk)) => {
                if size == on_disk {
                    c.actual.insert(f.path.clone(), d.sha256);
                }
                c.on_disk.insert(f.path.clone(), on_disk);
                let sm3_bad = f
                    .sm3
                    .as_ref()
                    .is_some_and(|want| d.sm3.as_ref() != Some(want));
                if size != f.size || d.sha256 != f.sha256 || sm3_bad {
                    let shown = if size > f.size {
                        format!("more than the {} bytes listed", f.size)
                    } else {
                        format!("SHA-256 {} ({size} bytes)", d.sha256)
                    };
                    c.r.error(
                        altered,
                        &f.path,
                        format!("{shown}; the manifest says {} ({} bytes)", f.sha256, f.size),
                    );
                    false
                } else {
                    true
                }
            }
        };
        c.intact.insert(f.path.clone(), ok);
    }
}

/// The first folder of `path` that is not a folder but a link, FIFO or other entry.
fn through_link<'a>(path: &'a str, kinds: &BTreeMap<&str, Kind>) -> Option<(&'a str, Kind)> {
    path.match_indices('/')
        .map(|(i, _)| &path[..i])
        .find_map(|dir| kinds.get(dir).map(|k| (dir, *k)))
}

/// A file's digests and the bytes read (at most the listed size + 1), and its size on disk;
/// or why it was not read.
type Hashed = Result<(Digests, u64, u64), beneath::ReadError>;

/// Hash the listed files, two at a time (the court PC's disk is the limit, not one core).
/// No file is read past its listed size plus one byte: a longer file is already altered.
fn hash_files(dir: &Beneath, files: &[ManifestFile]) -> Vec<Hashed> {
    use std::io::Read as _;
    let set = DigestSet {
        sm3: files.iter().any(|f| f.sm3.is_some()),
        md5: false,
    };
    let next = std::sync::atomic::AtomicUsize::new(0);
    let results: Vec<std::sync::Mutex<Option<Hashed>>> =
        files.iter().map(|_| std::sync::Mutex::new(None)).collect();
    let workers = std::thread::available_parallelism()
        .map(|n| n.get().min(4))
        .unwrap_or(2);
    std::thread::scope(|s| {
        for _ in 0..workers {
            s.spawn(|| {
                loop {
                    let i = next.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                    let Some(f) = files.get(i) else { break };
                    let r = dir.open_file(&f.path).and_then(|(file, on_disk)| {
                        let mut limited = file.take(f.size.saturating_add(1));
                        crate::digest::hash_reader(&mut limited, set)
                            .map(|(d, n)| (d, n, on_disk))
                            .map_err(|e| {
                                beneath::ReadError::Io(std::io::Error::other(e.to_string()))
                            })
                    });
                    if let Ok(mut slot) = results[i].lock() {
                        *slot = Some(r);
                    }
                }
            });
        }
    });
    results
        .into_iter()
        .map(|m| {
            m.into_inner()
                .ok()
                .flatten()
                .unwrap_or_else(|| Err(beneath::ReadError::Io(std::io::Error::other("not hashed"))))
        })
        .collect()
}

/// `SHA256SUMS` / `SM3SUMS` agree with the manifest, line for line. A path given twice with
/// different values is an error of its own: `sha256sum -c` would fail it, and which line a
/// tool believes must never decide a verdict.
pub(super) fn check_sums(c: &mut Ctx<'_>, name: &str) {
    let sm3 = name == SM3SUMS;
    if sm3 && !c.manifest.files.iter().any(|f| f.sm3.is_some()) && c.dir.kind(SM3SUMS).is_none() {
        return;
    }
    let text = match c.dir.read(name, cap::SUMS) {
        Ok(b) => match String::from_utf8(b) {
            Ok(t) => t,
            Err(_) => {
                c.r.error(code::SUMS_MISMATCH, name, "not UTF-8 text");
                return;
            }
        },
        Err(e) => {
            refused(&mut c.r, code::SUMS_MISMATCH, name, &e);
            return;
        }
    };
    let errors_before = c.r.count(crate::finding::Level::Error);
    let mut want: BTreeMap<String, String> = c
        .manifest
        .files
        .iter()
        .filter_map(|f| {
            let v = if sm3 {
                f.sm3.as_ref()?.to_string()
            } else {
                f.sha256.to_string()
            };
            Some((f.path.clone(), v))
        })
        .collect();
    if !sm3 {
        want.insert(
            MANIFEST.into(),
            Sha256::digest(&c.manifest_bytes).to_string(),
        );
        if let Ok(sig) = c.dir.read(MANIFEST_SIG, cap::SIG) {
            want.insert(MANIFEST_SIG.into(), Sha256::digest(&sig).to_string());
        }
    }
    let mut got: BTreeMap<String, String> = BTreeMap::new();
    for (n, line) in text.lines().enumerate().filter(|(_, l)| !l.is_empty()) {
        let Some((h, p)) = line
            .split_once("  ")
            .or_else(|| line.split_once(" *"))
            .filter(|(h, _)| !h.is_empty() && h.bytes().all(|b| b.is_ascii_hexdigit()))
        else {
            c.r.error(
                code::SUMS_MISMATCH,
                name,
                format!("line {}: not `<hex digest>  <path>`", n + 1),
            );
            continue;
        };
        let h = h.to_ascii_lowercase();
        match got.get(p) {
            Some(first) if *first != h => c.r.error(
                code::SUMS_CONFLICT,
                name,
                format!(
                    "line {}: {p} is listed twice with different values ({first} and {h}): stock tools would fail it",
                    n + 1
                ),
            ),
            Some(_) => {}
            None => {
                got.insert(p.to_string(), h);
            }
        }
    }
    // The station writes one form only: the manifest's order, two spaces, lowercase, `\n`.
    // Anything else — a repeated line, another order, CRLF, blank lines — is not what was sealed.
    let mut canonical = String::new();
    for f in &c.manifest.files {
        if let Some(v) = want.get(&f.path) {
            canonical.push_str(&super::sums_line(v, &f.path));
        }
    }
    for extra in [MANIFEST, MANIFEST_SIG] {
        if let Some(v) = want.get(extra) {
            canonical.push_str(&super::sums_line(v, extra));
        }
    }
    if got != want {
        let differ: BTreeSet<&String> = want
            .keys()
            .chain(got.keys())
            .filter(|k| want.get(*k) != got.get(*k))
            .collect();
        c.r.error(
            code::SUMS_MISMATCH,
            name,
            format!(
                "disagrees with the manifest for {}{}",
                differ
                    .iter()
                    .take(5)
                    .map(|s| s.as_str())
                    .collect::<Vec<_>>()
                    .join(", "),
                if differ.len() > 5 {
                    format!(" and {} more", differ.len() - 5)
                } else {
                    String::new()
                }
            ),
        );
    }
    if c.r.count(crate::finding::Level::Error) == errors_before && text != canonical {
        c.r.error(
            code::SUMS_MISMATCH,
            name,
            "the values agree, but the file is not as the station wrote it (a repeated line, another order or spacing, other line endings)",
        );
    }
}
