//! Disclosure packages (证据移送): the manifest, and the offline check of a whole package.
//!
//! A package is a directory (docs/formats/disclosure-package.md). `MANIFEST.json` lists every
//! file with its role, size and digests, and the custody events included; `MANIFEST.sig` is the
//! station's signed note over the manifest's SHA-256. The custody part holds only the case's
//! events, each with an inclusion proof to the station's latest checkpoint, earlier checkpoints
//! with consistency proofs to it, their RFC 3161 tokens, and a consistency proof from every
//! earlier checkpoint of the station (so a receiver holding one can hold the package to it).
//!
//! [`check_package`] runs one check after another — the manifest, its paths, the station key,
//! the seal, the files, the sums (`files.rs`); the events and their proofs (`custody.rs`); the
//! earlier checkpoints, the tokens, the key anchoring, what the receiver already holds
//! (`checkpoints.rs`); evidence against custody (`evidence.rs`) — each adding its findings to one report;
//! nothing stops it early. The package is assumed hostile: every file is read beneath the
//! directory, never through a link, only if regular, and bounded ([`crate::beneath`]).

mod checkpoints;
mod custody;
mod evidence;
mod files;

use crate::beneath::Beneath;
use crate::digest::HexBytes;
use crate::event::Timestamp;
use crate::expect::{Expectations, Forks};
use crate::finding::Report;
use crate::id::{CaseId, EvidenceId, Sha256, StationId};
use crate::note::VerifierKey;
use crate::trust::Trust;
use crate::verdict::{self, TsaRoots, Verdict};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::path::Path;

pub const MANIFEST: &str = "MANIFEST.json";
pub const MANIFEST_SIG: &str = "MANIFEST.sig";
pub const SHA256SUMS: &str = "SHA256SUMS";
pub const SM3SUMS: &str = "SM3SUMS";
pub const EVENTS: &str = "custody/events.jsonl";
/// Consistency proofs from every earlier checkpoint of the station to the package's.
pub const CONSISTENCY_BUNDLE: &str = "custody/consistency/earlier.proofs";
pub const FORMAT: &str = "evidock-disclosure";

/// The first line of the note `MANIFEST.sig` signs; the second is the manifest's SHA-256.
pub const SIG_HEADER: &str = "evidock disclosure manifest v1";

/// Size caps, checked before a file is read: a structured file larger than this is refused.
pub mod cap {
    pub const MANIFEST: u64 = 64 << 20;
    pub const SIG: u64 = 64 << 10;
    pub const SUMS: u64 = 64 << 20;
    pub const EVENTS: u64 = 256 << 20;
    pub const CONSISTENCY: u64 = crate::checkpoint::MAX_FILE_BYTES;
    pub const BUNDLE: u64 = 512 << 20;
}

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
/// The codes of parts of a later version a package may hold: its log's, and unknown manifest
/// fields or file roles.
const LATER_VERSION: &[&[&str]] = &[
    crate::logcheck::code::LATER_VERSION,
    &[code::MANIFEST_UNKNOWN_PART],
];

pub mod code {
    pub const MANIFEST_MISSING: &str = "manifest.missing";
    pub const MANIFEST_MALFORMED: &str = "manifest.malformed";
    pub const MANIFEST_BAD_SIGNATURE: &str = "manifest.bad-signature";
    pub const MANIFEST_BAD_PATH: &str = "manifest.bad-path";
    pub const MANIFEST_UNKNOWN_PART: &str = "manifest.unknown-part";
    pub const CASE_MISMATCH: &str = "case.mismatch";
    pub const FILE_MISSING: &str = "file.missing";
    pub const FILE_UNLISTED: &str = "file.unlisted";
    pub const FILE_ALTERED: &str = "file.altered";
    pub const ORIGINAL_ALTERED: &str = "original.altered";
    pub const ORIGINAL_NOT_ACQUIRED: &str = "original.not-acquired";
    pub const DERIVATIVE_ALTERED: &str = "derivative.altered";
    pub const DERIVATIVE_NOT_FROM_ORIGINAL: &str = "derivative.not-from-original";
    pub const SUMS_MISMATCH: &str = "sums.mismatch";
    pub const SUMS_CONFLICT: &str = "sums.conflict";
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
        MANIFEST_BAD_PATH,
        MANIFEST_UNKNOWN_PART,
        CASE_MISMATCH,
        FILE_MISSING,
        FILE_UNLISTED,
        FILE_ALTERED,
        ORIGINAL_ALTERED,
        ORIGINAL_NOT_ACQUIRED,
        DERIVATIVE_ALTERED,
        DERIVATIVE_NOT_FROM_ORIGINAL,
        SUMS_MISMATCH,
        SUMS_CONFLICT,
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

/// What a file of the package is. A role this version does not know (a later exporter's, e.g.
/// a transcript) is [`FileRole::Other`]: such a file is still hashed against the manifest, and
/// the verdict says part of the package is of a later version.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
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
    /// A role this version does not know.
    Other(String),
}

impl FileRole {
    const KNOWN: [FileRole; 12] = [
        FileRole::Original,
        FileRole::Derivative,
        FileRole::Thumbnail,
        FileRole::Document,
        FileRole::Events,
        FileRole::Proof,
        FileRole::Checkpoint,
        FileRole::Consistency,
        FileRole::Token,
        FileRole::Key,
        FileRole::Certificate,
        FileRole::Tool,
    ];

    pub fn as_str(&self) -> &str {
        match self {
            FileRole::Original => "original",
            FileRole::Derivative => "derivative",
            FileRole::Thumbnail => "thumbnail",
            FileRole::Document => "document",
            FileRole::Events => "events",
            FileRole::Proof => "proof",
            FileRole::Checkpoint => "checkpoint",
            FileRole::Consistency => "consistency",
            FileRole::Token => "token",
            FileRole::Key => "key",
            FileRole::Certificate => "certificate",
            FileRole::Tool => "tool",
            FileRole::Other(s) => s,
        }
    }

    pub fn is_known(&self) -> bool {
        !matches!(self, FileRole::Other(_))
    }
}

impl Serialize for FileRole {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(self.as_str())
    }
}

impl<'de> Deserialize<'de> for FileRole {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = String::deserialize(d)?;
        if s.is_empty() || s.len() > 64 {
            return Err(serde::de::Error::custom("a file role is 1 to 64 bytes"));
        }
        Ok(Self::KNOWN
            .iter()
            .find(|r| r.as_str() == s)
            .cloned()
            .unwrap_or(FileRole::Other(s)))
    }
}

/// One file of the package.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ManifestFile {
    /// Relative, `/`-separated, normalised ([`crate::beneath::check_rel`]).
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
    /// When a time-stamped checkpoint, under a TSA root the receiver pinned, attests that the
    /// custody event existed (TSA time).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub attested_by: Option<Timestamp>,
}

/// The outcome of checking a package.
#[derive(Debug, Serialize)]
pub struct PackageCheck {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub case: Option<CaseId>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub station: Option<StationId>,
    /// The station key that signs the package, and its fingerprint.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub key: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub key_fingerprint: Option<Sha256>,
    /// The package's checkpoint: tree size and root, to copy for a later `--expect`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub checkpoint: Option<String>,
    pub files: Vec<FileVerdict>,
    pub events: u64,
    pub verdict: Verdict,
    pub report: Report,
}

impl PackageCheck {
    /// Integrity proven: no errors, at least one original, the station key pinned.
    pub fn integrity_proven(&self) -> bool {
        self.verdict.integrity == verdict::Integrity::Proven
    }

    /// Time attested: integrity proven and every original's acquisition under a token whose
    /// chain ends at a pinned TSA root.
    pub fn time_attested(&self) -> bool {
        self.verdict.time == verdict::Time::Attested
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

/// What the checks share while they run, and what each established for the next.
struct Ctx<'a> {
    dir: Beneath,
    trust: &'a Trust,
    expect: &'a Expectations,
    r: Report,
    forks: Forks,
    roots: TsaRoots,
    manifest: Manifest,
    manifest_bytes: Vec<u8>,
    /// The key file's key (the package's own claim).
    key: Option<VerifierKey>,
    /// Listed paths that may be read (valid and unique).
    readable: Vec<usize>,
    /// Per listed path: its bytes are as listed.
    intact: BTreeMap<String, bool>,
    /// What each listed file really hashes to, when it was read whole, for telling a swapped
    /// file from a damaged one.
    actual: BTreeMap<String, Sha256>,
    /// Each listed file's size on disk.
    on_disk: BTreeMap<String, u64>,
    custody: custody::Custody,
    files: Vec<FileVerdict>,
    key_anchored: bool,
}

/// Check a disclosure package directory against `trust`.
pub fn check_package(dir: &Path, trust: &Trust) -> PackageCheck {
    check_package_with(dir, trust, &Expectations::default())
}

/// Check a disclosure package directory against `trust`, holding it to what the receiver
/// already holds (`expect`).
pub fn check_package_with(dir: &Path, trust: &Trust, expect: &Expectations) -> PackageCheck {
    let mut r = Report::new();
    let opened = Beneath::open(dir).map_err(|e| {
        r.error(
            code::MANIFEST_MISSING,
            dir.display().to_string(),
            format!("cannot open the package directory: {e}"),
        )
    });
    let Some((manifest, manifest_bytes)) = opened
        .as_ref()
        .ok()
        .and_then(|d| files::read_manifest(d, &mut r))
    else {
        return unreadable(r);
    };
    let Ok(dir) = opened else {
        return unreadable(r);
    };
    let mut c = Ctx {
        dir,
        trust,
        expect,
        r,
        forks: Forks::default(),
        roots: TsaRoots::default(),
        manifest,
        manifest_bytes,
        key: None,
        readable: Vec::new(),
        intact: BTreeMap::new(),
        actual: BTreeMap::new(),
        on_disk: BTreeMap::new(),
        custody: custody::Custody::default(),
        files: Vec::new(),
        key_anchored: false,
    };
    files::check_paths(&mut c);
    custody::check_key_file(&mut c);
    files::check_seal(&mut c);
    files::check_contents(&mut c);
    files::check_sums(&mut c, SHA256SUMS);
    files::check_sums(&mut c, SM3SUMS);
    custody::check_events(&mut c);
    checkpoints::check_checkpoints(&mut c);
    checkpoints::check_consistency_bundle(&mut c);
    checkpoints::check_tokens(&mut c);
    checkpoints::check_anchoring(&mut c);
    checkpoints::check_expectations(&mut c);
    evidence::check_evidence(&mut c);
    finish(c)
}

/// A package whose manifest could not be read: nothing else can be judged.
fn unreadable(r: Report) -> PackageCheck {
    let (integrity, integrity_reason) =
        verdict::integrity(&r, Err("no manifest".into()), None, false);
    PackageCheck {
        case: None,
        station: None,
        key: None,
        key_fingerprint: None,
        checkpoint: None,
        files: Vec::new(),
        events: 0,
        verdict: Verdict {
            integrity,
            integrity_reason,
            time: verdict::Time::NotAttested,
            time_reason: "integrity not proven".into(),
            station_key: None,
            station_key_pinned: false,
            tsa_roots: TsaRoots::default(),
            uninterpreted: verdict::uninterpreted(&r, LATER_VERSION),
        },
        report: r,
    }
}

fn finish(mut c: Ctx<'_>) -> PackageCheck {
    let originals = c
        .files
        .iter()
        .filter(|f| f.role == FileRole::Original)
        .count();
    let complete = if originals == 0 {
        Err("the package holds no original".to_string())
    } else {
        Ok(())
    };
    if !c.key_anchored {
        // Time rests on the station key too: tokens over checkpoints of a key nobody pinned
        // attest nothing about this station.
        for f in &mut c.files {
            f.attested_by = None;
        }
    }
    let key_fp = c.key.as_ref().map(VerifierKey::fingerprint);
    let (integrity, integrity_reason) = verdict::integrity(&c.r, complete, key_fp, c.key_anchored);
    let covered = c
        .files
        .iter()
        .filter(|f| matches!(f.role, FileRole::Original | FileRole::Derivative))
        .all(|f| f.attested_by.is_some());
    let (time, time_reason) = verdict::time(integrity, covered, c.custody.any_token, &c.roots);
    if integrity == verdict::Integrity::Proven {
        for f in c
            .files
            .iter()
            .filter(|f| f.role == FileRole::Original && f.attested_by.is_none())
        {
            c.r.warning(
                code::TIME_NOT_ATTESTED,
                &f.path,
                "integrity proven; time not attested: no token under a pinned TSA root covers its acquisition (station time only)",
            );
        }
    }
    let m = &c.manifest;
    c.r.info(
        code::PACKAGE_SUMMARY,
        m.case.as_str(),
        format!(
            "{} file(s), {originals} original(s), {} custody event(s) up to checkpoint {}",
            m.files.len(),
            c.custody.events.len(),
            m.custody.checkpoint
        ),
    );
    PackageCheck {
        case: Some(m.case.clone()),
        station: Some(m.custody.station.clone()),
        key: c.key.as_ref().map(ToString::to_string),
        key_fingerprint: key_fp,
        checkpoint: c
            .custody
            .latest
            .as_ref()
            .map(|(sc, _)| format!("{}:{}", sc.checkpoint.size, sc.checkpoint.root)),
        events: c.custody.events.len() as u64,
        files: c.files,
        verdict: Verdict {
            integrity,
            integrity_reason,
            time,
            time_reason,
            station_key: key_fp,
            station_key_pinned: c.key_anchored,
            tsa_roots: c.roots,
            uninterpreted: verdict::uninterpreted(&c.r, LATER_VERSION),
        },
        report: c.r,
    }
}
