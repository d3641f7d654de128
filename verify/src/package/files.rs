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
    later_parts(&bytes, &manifest, r);
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

/// Fields and file roles of a later version: kept and hashed as the manifest says, but what
/// they mean is not judged, and the verdict says so.
fn later_parts(bytes: &[u8], manifest: &Manifest, r: &mut Report) {
    const TOP: &[&str] = &[
        "v",
        "format",
        "case",
        "created",
        "created_by",
        "files",
        "custody",
    ];
    const FILE: &[&str] = &[
        "path", "role", "size", "sha256", "sm3", "evidence", "parent",
    ];
    const CUSTODY: &[&str] = &["station", "key", "checkpoint", "events"];
    let Ok(v) = serde_json::from_slice::<serde_json::Value>(bytes) else {
        return;
    };
    let unknown = |obj: &serde_json::Value, known: &[&str]| -> Vec<String> {
        obj.as_object()
            .map(|o| {
                o.keys()
                    .filter(|k| !known.contains(&k.as_str()))
                    .cloned()
                    .collect()
            })
            .unwrap_or_default()
    };
    let mut found: Vec<String> = unknown(&v, TOP);
    found.extend(
        unknown(&v["custody"], CUSTODY)
            .into_iter()
            .map(|k| format!("custody.{k}")),
    );
    if let Some(files) = v["files"].as_array() {
        let mut fields: BTreeSet<String> = BTreeSet::new();
        for f in files {
            fields.extend(unknown(f, FILE));
        }
        found.extend(fields.into_iter().map(|k| format!("files[].{k}")));
    }
    for k in found {
        r.warning(
            code::MANIFEST_UNKNOWN_PART,
            MANIFEST,
            format!("the field {k:?} is of a later version than this verifier: not judged"),
        );
    }
    for f in manifest.files.iter().filter(|f| !f.role.is_known()) {
        r.warning(
            code::MANIFEST_UNKNOWN_PART,
            &f.path,
            format!(
                "the file role {:?} is of a later version than this verifier: the file is checked against the manifest, what it is not judged",
                f.role.as_str()
            ),
        );
    }
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
        // One seal, by the station, as the station writes it: an added signature line (a
        // forger's "co-signature") or another encoding is not what was sealed.
        Ok(note) if note.signatures.len() != 1 || note.to_bytes() != sig => c.r.error(
            code::MANIFEST_BAD_SIGNATURE,
            MANIFEST_SIG,
            format!(
                "{} signature line(s) or another encoding than the one the station writes: only one signature, by {}, is the seal",
                note.signatures.len(),
                k.fingerprint()
            ),
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
    // Only names that are text can be listed paths: a lossily decoded name must never stand
    // in for one.
    let kinds: BTreeMap<&str, Kind> = entries
        .iter()
        .filter(|e| e.text)
        .map(|e| (e.path.as_str(), e.kind))
        .collect();
    let listed: BTreeSet<&str> = c.manifest.files.iter().map(|f| f.path.as_str()).collect();
    let folders: BTreeSet<&str> = listed
        .iter()
        .flat_map(|p| p.match_indices('/').map(|(i, _)| &p[..i]))
        .collect();
    for e in &entries {
        if !e.text {
            c.r.error(
                code::FILE_UNLISTED,
                &e.path,
                "a name that is not UTF-8 text (invalid bytes shown as \\xNN): it cannot be any file the manifest lists",
            );
        } else if e.kind == Kind::Directory {
            if !folders.contains(e.path.as_str()) {
                c.r.error(
                    code::FILE_UNLISTED,
                    &e.path,
                    "a folder no listed file is in: it was added after the package was sealed",
                );
            }
        } else if e.kind != Kind::Regular {
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
            Ok(Hashed::OtherSize(on_disk)) => {
                c.on_disk.insert(f.path.clone(), on_disk);
                c.r.error(
                    altered,
                    &f.path,
                    format!(
                        "{on_disk} bytes, the manifest says {} ({} bytes): not read",
                        f.sha256, f.size
                    ),
                );
                false
            }
            Ok(Hashed::Read(d, on_disk)) => {
                c.actual.insert(f.path.clone(), d.sha256);
                c.on_disk.insert(f.path.clone(), on_disk);
                let sm3_bad = f
                    .sm3
                    .as_ref()
                    .is_some_and(|want| d.sm3.as_ref() != Some(want));
                if on_disk != f.size || d.sha256 != f.sha256 || sm3_bad {
                    c.r.error(
                        altered,
                        &f.path,
                        format!(
                            "SHA-256 {} ({on_disk} bytes); the manifest says {} ({} bytes)",
                            d.sha256, f.sha256, f.size
                        ),
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
        .find_map(|dir| {
            kinds
                .get(dir)
                .filter(|k| **k != Kind::Directory)
                .map(|k| (dir, *k))
        })
}

/// What reading a listed file gave.
enum Hashed {
    /// Its digests, and its size (the listed one: only a file of the listed size is read).
    Read(Digests, u64),
    /// Not read: its size on disk is not the listed size, so it is not the listed file.
    OtherSize(u64),
}

/// Hash the listed files, two at a time (the court PC's disk is the limit, not one core).
/// A file whose size is not the listed size is not read at all, and none is read past its
/// listed size plus one byte (a file growing while it is read is caught by that byte).
fn hash_files(dir: &Beneath, files: &[ManifestFile]) -> Vec<Result<Hashed, beneath::ReadError>> {
    use std::io::Read as _;
    type Slot = std::sync::Mutex<Option<Result<Hashed, beneath::ReadError>>>;
    let set = DigestSet {
        sm3: files.iter().any(|f| f.sm3.is_some()),
        md5: false,
    };
    let next = std::sync::atomic::AtomicUsize::new(0);
    let results: Vec<Slot> = files.iter().map(|_| std::sync::Mutex::new(None)).collect();
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
                        if on_disk != f.size {
                            return Ok(Hashed::OtherSize(on_disk));
                        }
                        let mut limited = file.take(f.size.saturating_add(1));
                        crate::digest::hash_reader(&mut limited, set)
                            .map(|(d, n)| {
                                if n == f.size {
                                    Hashed::Read(d, n)
                                } else {
                                    Hashed::OtherSize(n)
                                }
                            })
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
