//! Disclosure packages (证据移送): everything a court, procuratorate or police receiver needs to
//! play and verify a case's evidence offline (docs/formats/disclosure-package.md).
//!
//! The package is built in `<out>.partial/` and renamed to `<out>` when sealed; the `exported`
//! custody event (who, which case, the manifest's SHA-256) is appended to this station's log
//! after that, so it is not in the package it describes.
//!
//! This file holds the export's steps in order (`export`, `build`); each part of the package is
//! made beside it: `selection.rs` which events, `evidence.rs` the originals and derivatives,
//! `custody.rs` events, proofs, checkpoints, tokens and keys, `documents.rs` the documents for
//! people, `seal.rs` the manifest, its signature and the sums; `writer.rs` writes and hashes.

mod caseuco;
mod custody;
mod documents;
mod evidence;
mod scratch;
mod seal;
mod selection;
mod writer;
mod zipfile;

pub use zipfile::{check_zip_free, released_without_zip, zip_path, zip_released};

use writer::Writer;

use crate::cases::Cases;
use crate::station::Station;
use evidock_store::fsutil;
use evidock_store::key::NoteSigner as _;
use evidock_verify::digest::DigestSet;
use evidock_verify::event::payload::{ExportedPayload, ObjectRole};
use evidock_verify::event::{Actor, CustodyEvent, NewEvent, Role, Subject, Timestamp, UtcOffset};
use evidock_verify::id::{CaseId, EvidenceId, Sha256, StationId};
use evidock_verify::note::VerifierKey;
use evidock_verify::package::{self, FileRole, Manifest, ManifestCustody, ManifestFile};
use std::collections::BTreeSet;
use std::path::{Path, PathBuf};

#[derive(Debug, thiserror::Error)]
pub enum ExportError {
    #[error("{0} already exists: a package is written once; choose another --out")]
    Exists(PathBuf),
    #[error(
        "{0} already exists, and --zip would write it: a zip is written once — move it away and run the export again"
    )]
    ZipExists(PathBuf),
    #[error(
        "{package}: not the package recorded by its `exported` event ({reason}); nothing zipped — export the case to a new --out"
    )]
    NotAsRecorded { package: PathBuf, reason: String },
    #[error(
        "{out}: an export of case {case} to this --out was cut off after its `exported` event; its package is at {scratch}: export case {case} to {out} again to release it, or choose another --out"
    )]
    LeftoverOfOtherCase {
        out: PathBuf,
        scratch: PathBuf,
        case: CaseId,
    },
    #[error(
        "{out}: the package (its `exported` event is logged) could not be released there: {source}; it is at {scratch} — move away what is at {out} and export the same case to it again"
    )]
    NotReleased {
        scratch: PathBuf,
        out: PathBuf,
        source: std::io::Error,
    },
    #[error("case {0} has no linked evidence: nothing to disclose (see `evidock case show`)")]
    Empty(CaseId),
    #[error(
        "evidence {evidence} was acquired at station {station}: export the case from that station (this one holds only its own custody log)"
    )]
    OtherStation {
        evidence: EvidenceId,
        station: String,
    },
    #[error(
        "the original of {evidence} (SHA-256 {sha256}) is neither in the spool nor in the evidence store: {reason}"
    )]
    NoOriginal {
        evidence: EvidenceId,
        sha256: Sha256,
        reason: String,
    },
    #[error(
        "{what}: the copy has SHA-256 {got}, not {want}: not exported (the source is damaged; run `evidock verify`)"
    )]
    Mismatch {
        what: String,
        got: Sha256,
        want: Sha256,
    },
    #[error("the custody log has no checkpoint covering event #{0}; try again")]
    Unsealed(u64),
    #[error(transparent)]
    Case(#[from] crate::cases::CaseError),
    #[error(transparent)]
    Log(#[from] evidock_store::log::LogError),
    /// The operator stopped it (Ctrl-C, SIGTERM): what it made is removed, nothing recorded.
    #[error(
        "stopped before the package was complete: nothing was recorded or released, and what it had copied is removed; run the same export again"
    )]
    Stopped,
    #[error("{0}")]
    Other(String),
    #[error("{path}: {source}")]
    Io {
        path: PathBuf,
        source: std::io::Error,
    },
}

impl ExportError {
    /// Whether the user must change something (another --out, a case with evidence, the other
    /// station) before the export can work; the rest may pass on a retry.
    pub fn is_usage(&self) -> bool {
        match self {
            ExportError::Exists(_)
            | ExportError::ZipExists(_)
            | ExportError::NotAsRecorded { .. }
            | ExportError::LeftoverOfOtherCase { .. }
            | ExportError::Empty(_)
            | ExportError::OtherStation { .. } => true,
            // Transparent: the chain skips it, so the case error is asked here.
            ExportError::Case(c) => c.is_usage(),
            _ => false,
        }
    }
}

fn io(path: &Path) -> impl FnOnce(std::io::Error) -> ExportError + '_ {
    move |source| ExportError::Io {
        path: path.to_path_buf(),
        source,
    }
}

/// What an export made.
#[derive(Debug, Clone, serde::Serialize)]
pub struct Exported {
    pub case: CaseId,
    pub package: PathBuf,
    pub manifest_sha256: Sha256,
    pub files: u64,
    pub bytes: u64,
    pub originals: u64,
    pub derivatives: u64,
    pub events: u64,
    /// Checkpoint sizes with a token in the package.
    pub timestamps: Vec<u64>,
    pub warnings: Vec<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub zip: Option<PathBuf>,
}

/// One evidence item in the package.
#[derive(Debug, Clone)]
pub(crate) struct PackageItem {
    pub item: crate::cases::index::Item,
    pub link: crate::cases::index::Link,
    pub original: String,
    /// (role, path, digests) of its derivatives in the package.
    pub derivatives: Vec<(ObjectRole, String, Sha256)>,
    pub format: String,
    pub category: String,
}

/// What the documents of a package (and its CASE/UCO graph) are made from.
pub(crate) struct Context<'a> {
    pub view: &'a crate::cases::CaseView,
    pub items: &'a [PackageItem],
    pub events: &'a [CustodyEvent],
    pub station: &'a StationId,
    pub key: &'a VerifierKey,
    /// SHA-256 of the TSA root certificates in the package.
    pub tsa_roots: &'a [Sha256],
    /// Checkpoint sizes whose tokens are in the package.
    pub tokened: &'a BTreeSet<u64>,
    /// The package's checkpoint: tree size and root.
    pub checkpoint: (u64, Sha256),
    pub created: Timestamp,
    pub by: &'a str,
    /// The witness (见证人) named at the export, printed in the collection record.
    pub witness: Option<&'a str>,
    pub offset: UtcOffset,
    pub verifier_sha: Option<Sha256>,
    pub digests: DigestSet,
}

impl Context<'_> {
    fn time(&self, t: chrono::DateTime<chrono::Utc>) -> String {
        t.with_timezone(&self.offset.0)
            .format("%Y-%m-%d %H:%M:%S %:z")
            .to_string()
    }

    fn file<'f>(&self, files: &'f [ManifestFile], path: &str) -> Option<&'f ManifestFile> {
        files.iter().find(|f| f.path == path)
    }
}

/// Build the disclosure package of `case` in `out`.
pub fn export(
    st: &Station,
    cases: &Cases,
    case: &str,
    out: &Path,
    by: &str,
    witness: Option<&str>,
    stopped: &dyn Fn() -> bool,
) -> Result<Exported, ExportError> {
    let _turn = scratch::lock(st)?;
    if let Some(parent) = out.parent().filter(|p| !p.as_os_str().is_empty()) {
        fsutil::create_dir_all(parent).map_err(|e| ExportError::Other(e.to_string()))?;
    }
    let given = out;
    let out = &scratch::canonical(out)?;
    let view = cases.view(case)?;
    let case_id = view.entry.record.case.clone();
    // An export to this --out cut off earlier: finished if it was recorded, cleared if not.
    if let Some(mut done) = scratch::finish_leftover(st, out, &case_id)? {
        done.package = given.to_path_buf();
        return Ok(done);
    }
    if out.exists() {
        return Err(ExportError::Exists(given.to_path_buf()));
    }
    if view.evidence.is_empty() {
        return Err(ExportError::Empty(case_id));
    }
    for l in &view.evidence {
        if l.item.station != st.id().as_str() {
            return Err(ExportError::OtherStation {
                evidence: l.item.evidence.clone(),
                station: l.item.station.clone(),
            });
        }
    }
    let scratch = scratch::Scratch::create(st, out)?;
    let partial = scratch.dir.clone();
    let result = build(st, cases, &view, &partial, (by, witness), stopped).and_then(|mut e| {
        sync_tree(&partial).map_err(io(&partial))?;
        evidock_store::crash_point!("export.built");
        e.package = given.to_path_buf();
        // The station's own record of the disclosure, before the package is released
        // under its name (invariant 3); the key holds a digest of the path, so any --out
        // fits.
        st.log.append(
            NewEvent::new(
                Actor {
                    role: Role::Reviewer,
                    id: by.to_string(),
                },
                Subject::Case(case_id.clone()),
                scratch::event_key(&e.manifest_sha256, out),
                &ExportedPayload {
                    case: case_id,
                    manifest_sha256: e.manifest_sha256,
                    files: e.files,
                    bytes: e.bytes,
                },
            )
            .map_err(|e| ExportError::Other(e.to_string()))?,
        )?;
        Ok(e)
    });
    match result {
        Ok(e) => {
            scratch.release(out)?;
            Ok(e)
        }
        // What this export made and did not release is removed.
        Err(e) => {
            scratch.abandon();
            Err(e)
        }
    }
}

fn build(
    st: &Station,
    cases: &Cases,
    view: &crate::cases::CaseView,
    root: &Path,
    (by, witness): (&str, Option<&str>),
    stopped: &dyn Fn() -> bool,
) -> Result<Exported, ExportError> {
    let case = view.entry.record.case.clone();
    let mut warnings = Vec::new();
    let events = selection::case_events(st, view, &case)?;
    let cp = custody::Checkpoints::read(st, &events)?;
    let (latest, latest_sc) = (cp.latest, &cp.latest_sc);

    let mut w = Writer {
        root: root.to_path_buf(),
        set: DigestSet {
            sm3: st.settings.digests.sm3,
            md5: false,
        },
        files: Vec::new(),
        stopped,
    };

    // Originals and derivatives.
    let pitems = evidence::copy_evidence(st, cases, view, root, &mut w, &events, &mut warnings)?;

    // Custody: the events, a proof of each to the latest checkpoint, the time-stamped
    // checkpoints that cover them (with consistency proofs) and their tokens.
    let covering = custody::write_custody(st, &mut w, &events, &cp, &mut warnings)?;
    let tsa_roots = custody::write_keys(st, &mut w)?;

    // The verifier itself, when it is installed beside evidock.
    let verifier_sha = copy_verifier(&mut w)?;

    // Documents for people.
    let created = Timestamp::from_datetime(st.clock.now());
    let ctx = Context {
        view,
        items: &pitems,
        events: &events,
        station: st.id(),
        key: st.key.verifier(),
        tsa_roots: &tsa_roots,
        tokened: &covering,
        checkpoint: (latest, latest_sc.checkpoint.root),
        created,
        by,
        witness,
        offset: cases.offset,
        verifier_sha,
        digests: w.set,
    };
    for (rel, text) in documents::render(&ctx, &w.files) {
        w.bytes(&rel, FileRole::Document, text.as_bytes())?;
    }

    // The manifest, its seal, and the sums files stock tools check.
    w.files.sort_by(|a, b| a.path.cmp(&b.path));
    let manifest = Manifest {
        v: 1,
        format: package::FORMAT.into(),
        case: case.clone(),
        created,
        created_by: by.to_string(),
        files: w.files.clone(),
        custody: ManifestCustody {
            station: st.id().clone(),
            key: st.key.verifier().to_string(),
            checkpoint: latest,
            events: events.iter().map(|e| e.seq).collect(),
        },
    };
    let manifest_bytes = seal::seal(st, root, &manifest, w.set.sm3)?;
    Ok(Exported {
        case,
        package: root.to_path_buf(),
        manifest_sha256: Sha256::digest(&manifest_bytes),
        files: manifest.files.len() as u64 + 3,
        bytes: manifest.files.iter().map(|f| f.size).sum(),
        originals: pitems.len() as u64,
        derivatives: pitems.iter().map(|p| p.derivatives.len() as u64).sum(),
        events: events.len() as u64,
        timestamps: covering.into_iter().collect(),
        warnings,
        zip: None,
    })
}

/// The verifier, when it is installed beside evidock, into `tools/`. Returns its SHA-256.
fn copy_verifier(w: &mut Writer<'_>) -> Result<Option<Sha256>, ExportError> {
    let verifier = std::env::current_exe()
        .ok()
        .map(|p| p.with_file_name("evidock-verify"))
        .filter(|p| p.is_file());
    let verifier_sha = match &verifier {
        Some(p) => {
            let mut f = std::fs::File::open(p).map_err(io(p))?;
            Some(
                w.copy("tools/evidock-verify", FileRole::Tool, &mut f, None, None)?
                    .sha256,
            )
        }
        None => None,
    };
    Ok(verifier_sha)
}

/// fsync every file and directory of the package before it is renamed into place.
fn sync_tree(dir: &Path) -> std::io::Result<()> {
    for e in fs_err::read_dir(dir)? {
        let e = e?;
        if e.file_type()?.is_dir() {
            sync_tree(&e.path())?;
        } else {
            std::fs::File::open(e.path())?.sync_all()?;
        }
    }
    std::fs::File::open(dir)?.sync_all()
}
