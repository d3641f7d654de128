//! Disclosure packages (证据移送): the manifest, and the offline check of a whole package.
//!
//! A package is a directory (docs/formats/disclosure-package.md). `MANIFEST.json` lists every
//! file with its role, size and digests, and the custody events included; `MANIFEST.sig` is the
//! station's signed note over the manifest's SHA-256. The custody part holds only the case's
//! events, each with an inclusion proof to the station's latest checkpoint, earlier time-stamped
//! checkpoints with consistency proofs to it, and their RFC 3161 tokens.
//!
//! The check reports every finding; nothing stops it early.

use crate::checkpoint::{ConsistencyProof, InclusionProof, SignedCheckpoint};
use crate::digest::{DigestSet, Digests, HexBytes};
use crate::event::payload::{
    AcquiredPayload, KeyRotatedPayload, LinkedPayload, TranscodedPayload, UnlinkedPayload,
};
use crate::event::{CustodyEvent, EventKind, Timestamp};
use crate::finding::Report;
use crate::id::{CaseId, EvidenceId, Sha256, StationId};
use crate::logcheck;
use crate::merkle;
use crate::note::{SignedNote, VerifierKey};
use crate::trust::Trust;
use serde::{Deserialize, Serialize};
use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;

pub const MANIFEST: &str = "MANIFEST.json";
pub const MANIFEST_SIG: &str = "MANIFEST.sig";
pub const SHA256SUMS: &str = "SHA256SUMS";
pub const SM3SUMS: &str = "SM3SUMS";
pub const EVENTS: &str = "custody/events.jsonl";
pub const FORMAT: &str = "evidock-disclosure";

/// The first line of the note `MANIFEST.sig` signs; the second is the manifest's SHA-256.
pub const SIG_HEADER: &str = "evidock disclosure manifest v1";

/// Where a package keeps the custody pieces of `station`.
pub fn proof_path(seq: u64) -> String {
    format!("custody/proofs/{seq}.proof")
}
pub fn checkpoint_path(size: u64) -> String {
    format!("custody/checkpoints/{size}.note")
}
pub fn consistency_path(old: u64, new: u64) -> String {
    format!("custody/consistency/{old}-{new}.proof")
}
pub fn token_path(size: u64) -> String {
    format!("custody/timestamps/{size}.tsr")
}
pub fn key_path(station: &StationId) -> String {
    format!("custody/keys/{station}.pub")
}

/// Finding codes of this module (documented in docs/findings.md).
pub mod code {
    pub const MANIFEST_MISSING: &str = "manifest.missing";
    pub const MANIFEST_MALFORMED: &str = "manifest.malformed";
    pub const MANIFEST_BAD_SIGNATURE: &str = "manifest.bad-signature";
    pub const FILE_MISSING: &str = "file.missing";
    pub const FILE_UNLISTED: &str = "file.unlisted";
    pub const FILE_ALTERED: &str = "file.altered";
    pub const ORIGINAL_ALTERED: &str = "original.altered";
    pub const ORIGINAL_NOT_ACQUIRED: &str = "original.not-acquired";
    pub const DERIVATIVE_ALTERED: &str = "derivative.altered";
    pub const DERIVATIVE_NOT_FROM_ORIGINAL: &str = "derivative.not-from-original";
    pub const SUMS_MISMATCH: &str = "sums.mismatch";
    pub const CUSTODY_EVENT_MISSING: &str = "custody.event-missing";
    pub const CUSTODY_EVENT_UNLISTED: &str = "custody.event-unlisted";
    pub const CUSTODY_OUT_OF_ORDER: &str = "custody.out-of-order";
    pub const EVENT_NOT_INCLUDED: &str = "event.not-included";
    pub const PROOF_MALFORMED: &str = "proof.malformed";
    pub const PROOF_INVALID: &str = "proof.invalid";
    pub const PROOF_WRONG_CHECKPOINT: &str = "proof.wrong-checkpoint";
    pub const CASE_NOT_LINKED: &str = "case.not-linked";
    pub const TIME_NOT_ATTESTED: &str = "time.not-attested";
    pub const PACKAGE_SUMMARY: &str = "package.summary";

    pub const ALL: &[&str] = &[
        MANIFEST_MISSING,
        MANIFEST_MALFORMED,
        MANIFEST_BAD_SIGNATURE,
        FILE_MISSING,
        FILE_UNLISTED,
        FILE_ALTERED,
        ORIGINAL_ALTERED,
        ORIGINAL_NOT_ACQUIRED,
        DERIVATIVE_ALTERED,
        DERIVATIVE_NOT_FROM_ORIGINAL,
        SUMS_MISMATCH,
        CUSTODY_EVENT_MISSING,
        CUSTODY_EVENT_UNLISTED,
        CUSTODY_OUT_OF_ORDER,
        EVENT_NOT_INCLUDED,
        PROOF_MALFORMED,
        PROOF_INVALID,
        PROOF_WRONG_CHECKPOINT,
        CASE_NOT_LINKED,
        TIME_NOT_ATTESTED,
        PACKAGE_SUMMARY,
    ];
}

/// What a file of the package is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum FileRole {
    /// Bit-exact, as acquired from the camera.
    Original,
    /// A playable copy made from an original.
    Derivative,
    /// A poster frame or contact sheet.
    Thumbnail,
    /// 电子数据清单, collection record, report, VERIFY.md, case.jsonld: documents for people.
    Document,
    /// The case's custody events.
    Events,
    Proof,
    Checkpoint,
    Consistency,
    Token,
    Key,
    /// TSA certificates.
    Certificate,
    /// The verifier program itself, so it can be checked and run.
    Tool,
}

/// One file of the package.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ManifestFile {
    /// Relative, `/`-separated.
    pub path: String,
    pub role: FileRole,
    pub size: u64,
    pub sha256: Sha256,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sm3: Option<HexBytes>,
    /// The evidence item an original, derivative or thumbnail belongs to.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub evidence: Option<EvidenceId>,
    /// For derivatives and thumbnails: the SHA-256 of the original they were made from.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub parent: Option<Sha256>,
}

/// The custody part: which station's events, up to which checkpoint.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ManifestCustody {
    pub station: StationId,
    /// The station's verifier key (note format).
    pub key: String,
    /// The checkpoint every inclusion proof leads to.
    pub checkpoint: u64,
    /// The positions of the included events in the station's log.
    pub events: Vec<u64>,
}

/// `MANIFEST.json`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Manifest {
    pub v: u32,
    pub format: String,
    pub case: CaseId,
    pub created: Timestamp,
    pub created_by: String,
    pub files: Vec<ManifestFile>,
    pub custody: ManifestCustody,
}

/// The verdict on one evidence file.
#[derive(Debug, Clone, Serialize)]
pub struct FileVerdict {
    pub path: String,
    pub role: FileRole,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub evidence: Option<EvidenceId>,
    /// Bytes as listed, and (originals, derivatives) tied to an included custody event.
    pub integrity: bool,
    /// When a time-stamped checkpoint attests that the custody event existed (TSA time).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub attested_by: Option<Timestamp>,
}

/// The outcome of checking a package.
#[derive(Debug, Default, Serialize)]
pub struct PackageCheck {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub case: Option<CaseId>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub station: Option<StationId>,
    /// The station key relied on, and its fingerprint.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub key: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub key_fingerprint: Option<Sha256>,
    pub files: Vec<FileVerdict>,
    pub events: u64,
    pub report: Report,
}

impl PackageCheck {
    /// Integrity proven: no errors, and at least one original.
    pub fn integrity_proven(&self) -> bool {
        !self.report.has_errors() && self.files.iter().any(|f| f.role == FileRole::Original)
    }

    /// Time attested: integrity proven and every original's acquisition under a token.
    pub fn time_attested(&self) -> bool {
        self.integrity_proven()
            && self
                .files
                .iter()
                .filter(|f| matches!(f.role, FileRole::Original | FileRole::Derivative))
                .all(|f| f.attested_by.is_some())
    }
}

/// The note `MANIFEST.sig` holds, for these manifest bytes.
pub fn signed_text(manifest: &[u8]) -> String {
    format!("{SIG_HEADER}\n{}\n", Sha256::digest(manifest))
}

/// `sha256sum`'s format: `<hex>  <path>`, one per line.
pub fn sums_line(hex: &str, path: &str) -> String {
    format!("{hex}  {path}\n")
}

fn read(dir: &Path, rel: &str, r: &mut Report) -> Option<Vec<u8>> {
    match std::fs::read(dir.join(rel)) {
        Ok(b) => Some(b),
        Err(e) => {
            r.error(code::FILE_MISSING, rel, e.to_string());
            None
        }
    }
}

/// Every file under `dir`, relative, `/`-separated, sorted.
fn walk(dir: &Path) -> Vec<String> {
    fn go(root: &Path, at: &Path, out: &mut Vec<String>) {
        let Ok(rd) = std::fs::read_dir(at) else {
            return;
        };
        for e in rd.flatten() {
            let p = e.path();
            match e.file_type() {
                Ok(t) if t.is_dir() => go(root, &p, out),
                Ok(_) => {
                    if let Ok(rel) = p.strip_prefix(root) {
                        let parts: Vec<String> = rel
                            .components()
                            .map(|c| c.as_os_str().to_string_lossy().into_owned())
                            .collect();
                        out.push(parts.join("/"));
                    }
                }
                Err(_) => {}
            }
        }
    }
    let mut out = Vec::new();
    go(dir, dir, &mut out);
    out.sort();
    out
}

/// A file's digests and size, or why it could not be read.
type Hashed = Result<(Digests, u64), String>;

/// Hash the listed files, two at a time (the court PC's disk is the limit, not one core).
fn hash_files(dir: &Path, files: &[ManifestFile]) -> Vec<Hashed> {
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
                    let r = std::fs::File::open(dir.join(&f.path))
                        .map_err(|e| e.to_string())
                        .and_then(|mut file| {
                            crate::digest::hash_reader(&mut file, set).map_err(|e| e.to_string())
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
                .unwrap_or_else(|| Err("not hashed".into()))
        })
        .collect()
}

/// Check a disclosure package directory against `trust`.
pub fn check_package(dir: &Path, trust: &Trust) -> PackageCheck {
    let mut out = PackageCheck::default();
    let r = &mut out.report;
    let Ok(manifest_bytes) = std::fs::read(dir.join(MANIFEST)) else {
        r.error(
            code::MANIFEST_MISSING,
            MANIFEST,
            "no MANIFEST.json: not an evidock disclosure package, or it was removed",
        );
        return out;
    };
    let manifest: Manifest = match serde_json::from_slice(&manifest_bytes) {
        Ok(m) => m,
        Err(e) => {
            r.error(code::MANIFEST_MALFORMED, MANIFEST, e.to_string());
            return out;
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
        return out;
    }
    out.case = Some(manifest.case.clone());
    out.station = Some(manifest.custody.station.clone());

    // The station key: pinned by the trust file, or taken from the package (and said so).
    let package_key = read(dir, &key_path(&manifest.custody.station), r).and_then(|b| {
        let text = String::from_utf8_lossy(&b).trim().to_string();
        match VerifierKey::parse(&text) {
            Ok(k) => Some(k),
            Err(e) => {
                r.error(
                    logcheck::code::KEY_MISSING,
                    key_path(&manifest.custody.station),
                    e.to_string(),
                );
                None
            }
        }
    });
    if let Some(k) = &package_key
        && k.to_string() != manifest.custody.key
    {
        r.error(
            logcheck::code::KEY_MISSING,
            key_path(&manifest.custody.station),
            "the key file differs from the key the manifest names",
        );
    }
    let key = logcheck::resolve_key(package_key, &[], trust, r);
    out.key = key.as_ref().map(ToString::to_string);
    out.key_fingerprint = key.as_ref().map(VerifierKey::fingerprint);

    // The seal over the manifest.
    match (read(dir, MANIFEST_SIG, r), &key) {
        (Some(sig), Some(k)) => match SignedNote::parse(&sig) {
            Ok(note) if note.text == signed_text(&manifest_bytes) && note.verify(k) => {}
            Ok(note) if note.text != signed_text(&manifest_bytes) => r.error(
                code::MANIFEST_BAD_SIGNATURE,
                MANIFEST,
                "MANIFEST.sig signs another manifest: MANIFEST.json was changed",
            ),
            Ok(_) => r.error(
                code::MANIFEST_BAD_SIGNATURE,
                MANIFEST_SIG,
                format!("not signed by {} ({})", k.name, k.fingerprint()),
            ),
            Err(e) => r.error(code::MANIFEST_BAD_SIGNATURE, MANIFEST_SIG, e.to_string()),
        },
        (Some(_), None) => r.error(
            code::MANIFEST_BAD_SIGNATURE,
            MANIFEST_SIG,
            "no station key to check the seal with",
        ),
        (None, _) => {}
    }

    // Every file: present, the listed size and digests; nothing else in the package.
    let on_disk: BTreeSet<String> = walk(dir).into_iter().collect();
    let listed: BTreeSet<&str> = manifest.files.iter().map(|f| f.path.as_str()).collect();
    for extra in on_disk.iter().filter(|p| {
        !listed.contains(p.as_str())
            && ![MANIFEST, MANIFEST_SIG, SHA256SUMS, SM3SUMS].contains(&p.as_str())
    }) {
        r.error(
            code::FILE_UNLISTED,
            extra,
            "a file the manifest does not list: it was added after the package was sealed",
        );
    }
    let present: Vec<ManifestFile> = manifest
        .files
        .iter()
        .filter(|f| {
            let here = on_disk.contains(&f.path);
            if !here {
                r.error(
                    code::FILE_MISSING,
                    &f.path,
                    format!("listed ({} bytes) but not in the package", f.size),
                );
            }
            here
        })
        .cloned()
        .collect();
    let hashed = hash_files(dir, &present);
    let mut good: BTreeMap<String, bool> = BTreeMap::new();
    // What each file really hashes to, for telling a swapped file from a damaged one.
    let mut actual: BTreeMap<String, Sha256> = BTreeMap::new();
    for (f, h) in present.iter().zip(hashed) {
        let altered = match f.role {
            FileRole::Original => code::ORIGINAL_ALTERED,
            FileRole::Derivative | FileRole::Thumbnail => code::DERIVATIVE_ALTERED,
            _ => code::FILE_ALTERED,
        };
        let ok = match h {
            Err(e) => {
                r.error(code::FILE_MISSING, &f.path, format!("cannot be read: {e}"));
                false
            }
            Ok((d, size)) => {
                actual.insert(f.path.clone(), d.sha256);
                let sm3_bad = f
                    .sm3
                    .as_ref()
                    .is_some_and(|want| d.sm3.as_ref() != Some(want));
                if size != f.size || d.sha256 != f.sha256 || sm3_bad {
                    r.error(
                        altered,
                        &f.path,
                        format!(
                            "SHA-256 {} ({size} bytes), the manifest says {} ({} bytes)",
                            d.sha256, f.sha256, f.size
                        ),
                    );
                    false
                } else {
                    true
                }
            }
        };
        good.insert(f.path.clone(), ok);
    }
    check_sums(dir, SHA256SUMS, &manifest, &manifest_bytes, r, |f| {
        Some(f.sha256.to_string())
    });
    if manifest.files.iter().any(|f| f.sm3.is_some()) || on_disk.contains(SM3SUMS) {
        check_sums(dir, SM3SUMS, &manifest, &manifest_bytes, r, |f| {
            f.sm3.as_ref().map(|h| h.to_string())
        });
    }

    // Custody: the events, each proven under the latest checkpoint.
    let custody = check_custody(dir, &manifest, key.as_ref(), trust, &good, r);
    out.events = custody.events.len() as u64;

    // Evidence ↔ custody: each original acquired with its digest; each derivative made from its
    // original; each item linked to the case.
    for f in &manifest.files {
        let Some(ev) = &f.evidence else {
            continue;
        };
        let mut integrity = good.get(&f.path).copied().unwrap_or(false);
        let mut attested_by = None;
        match f.role {
            FileRole::Original => match custody.acquired.get(ev) {
                Some((p, seq)) if p.digests.sha256 == f.sha256 => {
                    attested_by = custody.attested_at(*seq);
                }
                Some((p, _)) => {
                    integrity = false;
                    r.error(
                        code::ORIGINAL_NOT_ACQUIRED,
                        &f.path,
                        format!(
                            "the acquired event of {ev} records SHA-256 {}, not this file's {}",
                            p.digests.sha256, f.sha256
                        ),
                    );
                }
                None => {
                    integrity = false;
                    r.error(
                        code::ORIGINAL_NOT_ACQUIRED,
                        &f.path,
                        format!("no proven acquired event for {ev} in the package"),
                    );
                }
            },
            FileRole::Derivative | FileRole::Thumbnail => {
                let made = custody
                    .transcoded
                    .iter()
                    .find(|(p, _)| p.sha256 == f.sha256 && Some(p.parent_sha256) == f.parent);
                let parent_is_original = manifest.files.iter().any(|o| {
                    o.role == FileRole::Original
                        && Some(o.sha256) == f.parent
                        && o.evidence.as_ref() == Some(ev)
                });
                // A file that is really another recording's derivative: swapped in.
                if let Some(real) = actual.get(&f.path).filter(|a| **a != f.sha256)
                    && let Some((p, _)) = custody.transcoded.iter().find(|(p, _)| p.sha256 == *real)
                    && Some(p.parent_sha256) != f.parent
                {
                    integrity = false;
                    r.error(
                        code::DERIVATIVE_NOT_FROM_ORIGINAL,
                        &f.path,
                        format!(
                            "this file is the derivative of another original ({}), not of {ev}'s",
                            p.parent_sha256
                        ),
                    );
                }
                match made {
                    Some((_, seq)) if parent_is_original => {
                        attested_by = custody.attested_at(*seq);
                    }
                    _ => {
                        integrity = false;
                        r.error(
                            code::DERIVATIVE_NOT_FROM_ORIGINAL,
                            &f.path,
                            format!(
                                "no proven transcoded event makes SHA-256 {} from {ev}'s original",
                                f.sha256
                            ),
                        );
                    }
                }
            }
            _ => {}
        }
        if f.role == FileRole::Original && !custody.linked.contains(ev) {
            r.error(
                code::CASE_NOT_LINKED,
                &f.path,
                format!("no proven link of {ev} to case {}", manifest.case),
            );
        }
        out.files.push(FileVerdict {
            path: f.path.clone(),
            role: f.role,
            evidence: Some(ev.clone()),
            integrity,
            attested_by,
        });
    }
    for f in &out.files {
        if f.integrity && f.attested_by.is_none() && f.role == FileRole::Original {
            r.warning(
                code::TIME_NOT_ATTESTED,
                &f.path,
                "integrity proven; time not attested: no RFC 3161 token covers its acquisition (station time only)",
            );
        }
    }
    let originals = out
        .files
        .iter()
        .filter(|f| f.role == FileRole::Original)
        .count();
    r.info(
        code::PACKAGE_SUMMARY,
        manifest.case.as_str(),
        format!(
            "{} file(s), {originals} original(s), {} custody event(s) up to checkpoint {}",
            manifest.files.len(),
            out.events,
            manifest.custody.checkpoint
        ),
    );
    out
}

fn check_sums(
    dir: &Path,
    name: &str,
    manifest: &Manifest,
    manifest_bytes: &[u8],
    r: &mut Report,
    value: impl Fn(&ManifestFile) -> Option<String>,
) {
    let Ok(text) = std::fs::read_to_string(dir.join(name)) else {
        r.error(code::SUMS_MISMATCH, name, "missing or not text");
        return;
    };
    let mut want: BTreeMap<String, String> = manifest
        .files
        .iter()
        .filter_map(|f| Some((f.path.clone(), value(f)?)))
        .collect();
    if name == SHA256SUMS {
        want.insert(MANIFEST.into(), Sha256::digest(manifest_bytes).to_string());
        if let Ok(sig) = std::fs::read(dir.join(MANIFEST_SIG)) {
            want.insert(MANIFEST_SIG.into(), Sha256::digest(&sig).to_string());
        }
    }
    let mut got = BTreeMap::new();
    for line in text.lines().filter(|l| !l.is_empty()) {
        match line.split_once("  ") {
            Some((h, p)) => {
                got.insert(p.to_string(), h.to_string());
            }
            None => r.error(
                code::SUMS_MISMATCH,
                name,
                format!("malformed line {line:?}"),
            ),
        }
    }
    if got != want {
        let differ: Vec<&String> = want
            .keys()
            .chain(got.keys())
            .filter(|k| want.get(*k) != got.get(*k))
            .collect::<BTreeSet<_>>()
            .into_iter()
            .collect();
        r.error(
            code::SUMS_MISMATCH,
            name,
            format!(
                "disagrees with the manifest for {}",
                differ
                    .iter()
                    .take(5)
                    .map(|s| s.as_str())
                    .collect::<Vec<_>>()
                    .join(", ")
            ),
        );
    }
}

/// What the custody part proves.
#[derive(Default)]
struct Custody {
    events: Vec<CustodyEvent>,
    /// Acquired events by evidence, with their seq.
    acquired: BTreeMap<EvidenceId, (AcquiredPayload, u64)>,
    transcoded: Vec<(TranscodedPayload, u64)>,
    /// Items linked to the case at the end of the included events.
    linked: BTreeSet<EvidenceId>,
    /// Sizes of verified, time-stamped checkpoints consistent with the latest, and their times.
    attested: BTreeMap<u64, Timestamp>,
}

impl Custody {
    /// The earliest TSA time covering event `seq`.
    fn attested_at(&self, seq: u64) -> Option<Timestamp> {
        self.attested.range(seq + 1..).next().map(|(_, t)| *t)
    }
}

fn check_custody(
    dir: &Path,
    manifest: &Manifest,
    key: Option<&VerifierKey>,
    trust: &Trust,
    intact: &BTreeMap<String, bool>,
    r: &mut Report,
) -> Custody {
    let mut c = Custody::default();
    let station = &manifest.custody.station;
    let latest_size = manifest.custody.checkpoint;
    let latest_path = checkpoint_path(latest_size);
    let mut latest = read(dir, &latest_path, r)
        .and_then(|b| logcheck::check_checkpoint(&b, key, &latest_path, r).map(|s| (s, b)));
    if latest.is_none() {
        // Every proof carries the checkpoint too: one whose signature verifies stands in for a
        // damaged checkpoint file, so the rest of the package is still judged.
        latest = manifest
            .custody
            .events
            .iter()
            .filter_map(|seq| std::fs::read(dir.join(proof_path(*seq))).ok())
            .filter_map(|b| InclusionProof::parse(&b).ok())
            .map(|p| p.checkpoint)
            .find(|sc| sc.checkpoint.size == latest_size && key.is_some_and(|k| sc.verify(k)))
            .map(|sc| {
                let b = sc.to_bytes();
                (sc, b)
            });
    }
    if let Some((sc, _)) = &latest
        && sc.checkpoint.size != latest_size
    {
        r.error(
            logcheck::code::CHECKPOINT_MISNAMED,
            &latest_path,
            format!("holds size {}", sc.checkpoint.size),
        );
    }

    // Events: canonical lines of this station, in log order, each with its proof.
    let Some(events) = read(dir, EVENTS, r) else {
        return c;
    };
    // Every event in the file, proven or not (a listed event missing from it was removed).
    let mut in_file: BTreeSet<u64> = BTreeSet::new();
    let mut last: Option<u64> = None;
    for line in events.split(|b| *b == b'\n').filter(|l| !l.is_empty()) {
        let ev = match CustodyEvent::parse(line) {
            Ok(ev) => ev,
            Err(e) => {
                r.error(logcheck::code::EVENT_MALFORMED, EVENTS, e.to_string());
                continue;
            }
        };
        in_file.insert(ev.seq);
        let subject = format!("event #{}", ev.seq);
        if ev.station != *station {
            r.error(
                logcheck::code::EVENT_WRONG_STATION,
                &subject,
                format!("from station {}, not {station}", ev.station),
            );
            continue;
        }
        if last.is_some_and(|l| ev.seq <= l) {
            r.error(
                code::CUSTODY_OUT_OF_ORDER,
                &subject,
                format!(
                    "comes after event #{}: the events were reordered",
                    last.unwrap_or(0)
                ),
            );
        }
        last = Some(last.map_or(ev.seq, |l| l.max(ev.seq)));
        let proof_rel = proof_path(ev.seq);
        let Some(pb) = read(dir, &proof_rel, r) else {
            continue;
        };
        let proof = match InclusionProof::parse(&pb) {
            Ok(p) => p,
            Err(e) => {
                r.error(code::PROOF_MALFORMED, &proof_rel, e.to_string());
                continue;
            }
        };
        match &latest {
            Some((sc, _)) if proof.checkpoint == *sc => {}
            _ => {
                r.error(
                    code::PROOF_WRONG_CHECKPOINT,
                    &proof_rel,
                    format!("does not lead to the package's checkpoint {latest_size}"),
                );
                continue;
            }
        }
        if proof.index != ev.seq {
            r.error(
                code::PROOF_MALFORMED,
                &proof_rel,
                format!("proves entry {}, not event #{}", proof.index, ev.seq),
            );
            continue;
        }
        if let Err(e) = proof.verify_leaf(&merkle::leaf_hash(line)) {
            // Which side changed, when the sealed manifest can tell: the events file as
            // listed and the proof not → the proof was altered.
            let events_intact = intact.get(EVENTS).copied().unwrap_or(false);
            let proof_intact = intact.get(&proof_rel).copied().unwrap_or(false);
            if events_intact && !proof_intact {
                r.error(
                    code::PROOF_INVALID,
                    &proof_rel,
                    format!("does not prove event #{} under the checkpoint ({e}): the proof was altered", ev.seq),
                );
                continue;
            }
            r.error(
                code::EVENT_NOT_INCLUDED,
                &subject,
                format!(
                    "these bytes are not event #{} of the signed log ({e}): the event or its proof was altered",
                    ev.seq
                ),
            );
            continue;
        }
        c.events.push(ev);
    }
    let listed: BTreeSet<u64> = manifest.custody.events.iter().copied().collect();
    let present: BTreeSet<u64> = c.events.iter().map(|e| e.seq).collect();
    for seq in listed.difference(&present) {
        // An event that is there but failed its proof was reported above.
        if !in_file.contains(seq) {
            r.error(
                code::CUSTODY_EVENT_MISSING,
                format!("event #{seq}"),
                "listed in the manifest but not in custody/events.jsonl: it was removed",
            );
        }
    }
    for seq in present.difference(&listed) {
        r.error(
            code::CUSTODY_EVENT_UNLISTED,
            format!("event #{seq}"),
            "not listed in the manifest",
        );
    }

    // A key rotation in the package (proven above, under the checkpoint the current key signs)
    // vouches for the key it retired: earlier checkpoints may be signed by that one.
    let rotations: Vec<(u64, KeyRotatedPayload)> = c
        .events
        .iter()
        .filter(|e| e.kind == EventKind::KeyRotated && e.seq < latest_size)
        .filter_map(|e| Some((e.seq, e.payload::<KeyRotatedPayload>().ok()?)))
        .collect();
    let schedule = logcheck::KeySchedule::leading_to(key, &rotations, r);

    // Earlier time-stamped checkpoints, consistent with the latest; then their tokens.
    let mut checkpoints: BTreeMap<u64, (SignedCheckpoint, Vec<u8>)> = BTreeMap::new();
    if let Some((latest_sc, latest_bytes)) = &latest {
        checkpoints.insert(latest_size, (latest_sc.clone(), latest_bytes.clone()));
        for f in manifest
            .files
            .iter()
            .filter(|f| f.role == FileRole::Checkpoint)
        {
            let Some(size) = size_of(&f.path, "custody/checkpoints/", ".note") else {
                continue;
            };
            if size == latest_size {
                continue;
            }
            let Some(b) = read(dir, &f.path, r) else {
                continue;
            };
            let Some(sc) = logcheck::check_checkpoint(&b, schedule.signers_of(size).0, &f.path, r)
            else {
                continue;
            };
            let cp_rel = consistency_path(size, latest_size);
            let consistent =
                read(dir, &cp_rel, r).is_some_and(|pb| match ConsistencyProof::parse(&pb) {
                    Ok(p) if p.old == size && p.new == latest_size => {
                        match p.verify(&sc.checkpoint.root, &latest_sc.checkpoint.root) {
                            Ok(()) => true,
                            Err(e) => {
                                r.error(
                                    logcheck::code::CHECKPOINT_INCONSISTENT,
                                    &cp_rel,
                                    format!(
                                        "checkpoint {size} is not a prefix of {latest_size}: {e}"
                                    ),
                                );
                                false
                            }
                        }
                    }
                    Ok(_) => {
                        r.error(code::PROOF_MALFORMED, &cp_rel, "names other sizes");
                        false
                    }
                    Err(e) => {
                        r.error(code::PROOF_MALFORMED, &cp_rel, e.to_string());
                        false
                    }
                });
            if consistent {
                checkpoints.insert(size, (sc, b));
            }
        }
    }
    for f in manifest.files.iter().filter(|f| f.role == FileRole::Token) {
        let Some(size) = size_of(&f.path, "custody/timestamps/", ".tsr") else {
            continue;
        };
        // The token is checked against the checkpoint bytes in the package even when their
        // signature failed: a re-signed checkpoint no longer matches the TSA's imprint.
        let verified = checkpoints.get(&size).map(|(_, b)| b.clone());
        let Some(note) = verified
            .clone()
            .or_else(|| std::fs::read(dir.join(checkpoint_path(size))).ok())
        else {
            r.warning(
                logcheck::code::TIMESTAMP_ORPHAN,
                &f.path,
                "a token for a checkpoint that is not in the package",
            );
            continue;
        };
        let Some(der) = read(dir, &f.path, r) else {
            continue;
        };
        if let Some(info) = logcheck::check_checkpoint_token(&der, &note, &trust.tsa, &f.path, r) {
            if verified.is_some() {
                c.attested
                    .insert(size, Timestamp::from_datetime(info.gen_time));
            } else {
                r.warning(
                    logcheck::code::TIMESTAMP_ORPHAN,
                    &f.path,
                    "the token matches its checkpoint, but the checkpoint did not verify",
                );
            }
        }
    }

    // What the proven events say.
    let mut links: BTreeMap<EvidenceId, bool> = BTreeMap::new();
    for ev in &c.events {
        match ev.kind {
            EventKind::Acquired => {
                if let (crate::event::Subject::Evidence(id), Ok(p)) =
                    (&ev.subject, ev.payload::<AcquiredPayload>())
                {
                    c.acquired.insert(id.clone(), (p, ev.seq));
                }
            }
            EventKind::Transcoded => {
                if let Ok(p) = ev.payload::<TranscodedPayload>() {
                    c.transcoded.push((p, ev.seq));
                }
            }
            EventKind::Linked => {
                if let Ok(p) = ev.payload::<LinkedPayload>()
                    && p.case == manifest.case
                {
                    links.insert(p.evidence, true);
                }
            }
            EventKind::Unlinked => {
                if let Ok(p) = ev.payload::<UnlinkedPayload>()
                    && p.case == manifest.case
                {
                    links.insert(p.evidence, false);
                }
            }
            _ => {}
        }
    }
    c.linked = links
        .into_iter()
        .filter(|(_, l)| *l)
        .map(|(e, _)| e)
        .collect();
    c
}

fn size_of(path: &str, prefix: &str, suffix: &str) -> Option<u64> {
    path.strip_prefix(prefix)?
        .strip_suffix(suffix)?
        .parse()
        .ok()
}
