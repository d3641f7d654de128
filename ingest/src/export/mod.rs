//! Disclosure packages (证据移送): everything a court, procuratorate or police receiver needs to
//! play and verify a case's evidence offline (docs/formats/disclosure-package.md).
//!
//! The package is built in `<out>.partial/` and renamed to `<out>` when sealed; the `exported`
//! custody event (who, which case, the manifest's SHA-256) is appended to this station's log
//! after that, so it is not in the package it describes.

mod caseuco;
mod documents;
mod scratch;
mod zipfile;

pub use zipfile::{check_zip_free, released_without_zip, zip_path, zip_released};

use crate::cases::Cases;
use crate::station::Station;
use evidock_store::fsutil;
use evidock_store::key::NoteSigner as _;
use evidock_store::objects::layout;
use evidock_verify::checkpoint::{ConsistencyProof, InclusionProof, SignedCheckpoint};
use evidock_verify::digest::{DigestSet, Digests};
use evidock_verify::event::payload::{ExportedPayload, ObjectRole, TranscodedPayload};
use evidock_verify::event::{Actor, CustodyEvent, EventKind, NewEvent, Role, Subject, Timestamp};
use evidock_verify::id::{CaseId, EvidenceId, Sha256};
use evidock_verify::package::{self, FileRole, Manifest, ManifestCustody, ManifestFile};
use std::collections::{BTreeMap, BTreeSet};
use std::io::{Read, Write};
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

/// Writes files into the package, hashing what it writes.
struct Writer<'a> {
    root: PathBuf,
    set: DigestSet,
    files: Vec<ManifestFile>,
    /// Whether the operator asked to stop (Ctrl-C): looked at before each file is copied.
    stopped: &'a dyn Fn() -> bool,
}

impl Writer<'_> {
    fn path(&self, rel: &str) -> Result<PathBuf, ExportError> {
        let p = self.root.join(rel);
        if let Some(parent) = p.parent() {
            std::fs::create_dir_all(parent).map_err(io(parent))?;
        }
        Ok(p)
    }

    /// Stream `src` into `rel`, hashing the bytes written.
    fn copy(
        &mut self,
        rel: &str,
        role: FileRole,
        src: &mut dyn Read,
        evidence: Option<&EvidenceId>,
        parent: Option<Sha256>,
    ) -> Result<Digests, ExportError> {
        if (self.stopped)() {
            return Err(ExportError::Stopped);
        }
        let p = self.path(rel)?;
        let mut f = std::fs::File::create(&p).map_err(io(&p))?;
        if role == FileRole::Tool {
            // A receiver runs it from the package (VERIFY.md step 3), unpacked or not.
            use std::os::unix::fs::PermissionsExt as _;
            f.set_permissions(std::fs::Permissions::from_mode(0o755))
                .map_err(io(&p))?;
        }
        let mut tee = Tee {
            inner: src,
            out: &mut f,
            err: None,
        };
        let (d, size) = evidock_verify::digest::hash_reader(&mut tee, self.set)
            .map_err(|e| ExportError::Other(format!("{}: {e}", p.display())))?;
        if let Some(e) = tee.err {
            return Err(ExportError::Io { path: p, source: e });
        }
        f.sync_all().map_err(io(&p))?;
        self.files.push(ManifestFile {
            path: rel.to_string(),
            role,
            size,
            sha256: d.sha256,
            sm3: d.sm3.clone(),
            evidence: evidence.cloned(),
            parent,
        });
        Ok(d)
    }

    fn bytes(&mut self, rel: &str, role: FileRole, data: &[u8]) -> Result<Digests, ExportError> {
        self.copy(rel, role, &mut &data[..], None, None)
    }
}

/// A reader that writes what it reads to `out`.
struct Tee<'a> {
    inner: &'a mut dyn Read,
    out: &'a mut std::fs::File,
    err: Option<std::io::Error>,
}

impl Read for Tee<'_> {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        let n = self.inner.read(buf)?;
        if let Err(e) = self.out.write_all(&buf[..n]) {
            self.err = Some(std::io::Error::new(e.kind(), e.to_string()));
            return Err(e);
        }
        Ok(n)
    }
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

/// Which events of the log belong to the case's package.
fn selected(
    ev: &CustodyEvent,
    case: &CaseId,
    items: &BTreeSet<EvidenceId>,
    shas: &BTreeSet<Sha256>,
    sessions: &BTreeSet<String>,
    devices: &BTreeSet<String>,
) -> bool {
    match &ev.subject {
        Subject::Case(c) => c == case,
        Subject::Evidence(e) => {
            items.contains(e)
                || (ev.kind == EventKind::Transcoded
                    && ev
                        .payload::<TranscodedPayload>()
                        .is_ok_and(|p| shas.contains(&p.parent_sha256)))
        }
        Subject::Session(s) => {
            sessions.contains(s.as_str())
                && matches!(
                    ev.kind,
                    EventKind::Docked
                        | EventKind::ClockSynced
                        | EventKind::Released
                        | EventKind::Undocked
                )
        }
        Subject::Device(d) => devices.contains(d.as_str()) && ev.kind == EventKind::CameraAssigned,
        // A key rotation vouches for the key of the package's earlier checkpoints.
        Subject::Station(_) => ev.kind == EventKind::KeyRotated,
        // A later version's subject: not this version's to disclose.
        Subject::Other { .. } => false,
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
        let _ = std::fs::remove_file(&scratch);
        return Err(e.to_string());
    }
    let f = std::fs::File::open(&scratch).map_err(|e| e.to_string())?;
    let _ = std::fs::remove_file(&scratch);
    Ok(Box::new(f))
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
    let items: BTreeSet<EvidenceId> = view
        .evidence
        .iter()
        .map(|l| l.item.evidence.clone())
        .collect();
    let shas: BTreeSet<Sha256> = view.evidence.iter().map(|l| l.item.sha256).collect();
    let sessions: BTreeSet<String> = view
        .evidence
        .iter()
        .map(|l| l.item.session.clone())
        .collect();
    let devices: BTreeSet<String> = view
        .evidence
        .iter()
        .map(|l| l.item.device.as_str().to_string())
        .collect();

    // Seal everything up to now, so every event of the case is under the checkpoint.
    st.log.seal(evidock_store::checkpoints::Moment::Export)?;
    let mut events = Vec::new();
    st.log.with(|l| {
        l.for_each_event(|ev| {
            if selected(&ev, &case, &items, &shas, &sessions, &devices) {
                events.push(ev);
            }
        })
    })?;
    let (latest, sizes, tokens_dir, notes_dir) = st.log.with(|l| {
        (
            l.last_checkpoint(),
            l.checkpoint_sizes().unwrap_or_default(),
            l.dir().join(evidock_verify::layout::TIMESTAMPS_DIR),
            l.dir().join(evidock_verify::layout::CHECKPOINTS_DIR),
        )
    });
    if let Some(ev) = events.iter().find(|e| e.seq >= latest) {
        return Err(ExportError::Unsealed(ev.seq));
    }
    let note = |size: u64| -> Result<Vec<u8>, ExportError> {
        let p = notes_dir.join(evidock_verify::layout::checkpoint_file(size));
        std::fs::read(&p).map_err(io(&p))
    };
    let latest_note = note(latest)?;
    let latest_sc = SignedCheckpoint::parse(&latest_note)
        .map_err(|e| ExportError::Other(format!("checkpoint {latest}: {e}")))?;
    let token = |size: u64| tokens_dir.join(evidock_verify::layout::timestamp_file(size));
    let tokened: Vec<u64> = sizes
        .iter()
        .copied()
        .filter(|s| token(*s).exists())
        .collect();

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

    // Custody: the events, a proof of each to the latest checkpoint, the time-stamped
    // checkpoints that cover them (with consistency proofs) and their tokens.
    let mut lines = Vec::new();
    for ev in &events {
        lines.extend_from_slice(
            &ev.to_canonical()
                .map_err(|e| ExportError::Other(e.to_string()))?,
        );
        lines.push(b'\n');
    }
    w.bytes(package::EVENTS, FileRole::Events, &lines)?;
    let mut covering: BTreeSet<u64> = BTreeSet::new();
    for ev in &events {
        let path = st
            .log
            .with(|l| l.tree().inclusion_proof(ev.seq, latest))
            .map_err(|e| {
                ExportError::Other(format!("inclusion proof of event #{}: {e}", ev.seq))
            })?;
        let proof = InclusionProof {
            index: ev.seq,
            path,
            checkpoint: latest_sc.clone(),
        };
        w.bytes(
            &package::proof_path(ev.seq),
            FileRole::Proof,
            &proof.to_bytes(),
        )?;
        if let Some(s) = tokened.iter().find(|s| **s > ev.seq) {
            covering.insert(*s);
        }
    }
    if tokened.contains(&latest) {
        covering.insert(latest);
    }
    // The hand-over checkpoint of each key rotation in the package, signed by the old and the
    // new key: only it lets trust in one key reach the other.
    let handovers: BTreeSet<u64> = events
        .iter()
        .filter(|e| e.kind == EventKind::KeyRotated)
        .map(|e| e.seq + 1)
        .filter(|h| *h < latest && sizes.contains(h))
        .collect();
    w.bytes(
        &package::checkpoint_path(latest),
        FileRole::Checkpoint,
        &latest_note,
    )?;
    let included: BTreeSet<u64> = covering.union(&handovers).copied().collect();
    for size in &included {
        if *size != latest {
            w.bytes(
                &package::checkpoint_path(*size),
                FileRole::Checkpoint,
                &note(*size)?,
            )?;
            let path = st
                .log
                .with(|l| l.tree().consistency_proof(*size, latest))
                .map_err(|e| {
                    ExportError::Other(format!("consistency proof {size}→{latest}: {e}"))
                })?;
            let proof = ConsistencyProof {
                old: *size,
                new: latest,
                path,
            };
            w.bytes(
                &package::consistency_path(*size, latest),
                FileRole::Consistency,
                &proof.to_bytes(),
            )?;
        }
        let p = token(*size);
        if covering.contains(size) || p.exists() {
            let der = std::fs::read(&p).map_err(io(&p))?;
            w.bytes(&package::token_path(*size), FileRole::Token, &der)?;
        }
    }
    // A consistency proof from every earlier checkpoint of the station (each was published and
    // most were time-stamped): whoever holds one can hold this package to it.
    let earlier: Vec<u64> = sizes.iter().copied().filter(|s| *s < latest).collect();
    if !earlier.is_empty() {
        let entries = st
            .log
            .with(|l| {
                earlier
                    .iter()
                    .map(|&old| {
                        let tree = l.tree();
                        Ok((
                            old,
                            tree.root_at(old)
                                .map_err(|e| format!("root at {old}: {e:?}"))?,
                            tree.consistency_proof(old, latest)
                                .map_err(|e| format!("consistency proof {old}→{latest}: {e:?}"))?,
                        ))
                    })
                    .collect::<Result<Vec<_>, String>>()
            })
            .map_err(ExportError::Other)?;
        w.bytes(
            package::CONSISTENCY_BUNDLE,
            FileRole::Consistency,
            &evidock_verify::checkpoint::bundle_to_bytes(latest, &entries),
        )?;
    }
    if covering.is_empty() {
        warnings.push(
            "no RFC 3161 token covers these events (no TSA configured, or not reached yet): the package proves integrity, with station time only".into(),
        );
    }
    let key_line = format!("{}\n", st.key.verifier());
    w.bytes(
        &package::key_path(st.id()),
        FileRole::Key,
        key_line.as_bytes(),
    )?;
    let mut tsa_roots = Vec::new();
    if let Some(tsa) = &st.settings.tsa {
        for (i, r) in tsa.roots.iter().enumerate() {
            let pem = std::fs::read(r).map_err(io(r))?;
            for der in evidock_verify::trust::pem_certificates(&pem).unwrap_or_default() {
                tsa_roots.push(Sha256::digest(&der));
            }
            w.bytes(
                &format!("custody/tsa/root-{i}.pem"),
                FileRole::Certificate,
                &pem,
            )?;
        }
    }

    // The verifier itself, when it is installed beside evidock.
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

    // Documents for people.
    let created = Timestamp::from_datetime(st.clock.now());
    let ctx = documents::Context {
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
    let manifest_bytes = evidock_verify::canonical::to_canonical(&manifest)
        .map_err(|e| ExportError::Other(e.to_string()))?;
    let sig = st
        .key
        .sign_note(&package::signed_text(&manifest_bytes))
        .to_bytes();
    let write = |rel: &str, data: &[u8]| -> Result<(), ExportError> {
        let p = root.join(rel);
        std::fs::write(&p, data).map_err(io(&p))
    };
    write(package::MANIFEST, &manifest_bytes)?;
    write(package::MANIFEST_SIG, &sig)?;
    let mut sums = String::new();
    for f in &manifest.files {
        sums.push_str(&package::sums_line(&f.sha256.to_string(), &f.path));
    }
    sums.push_str(&package::sums_line(
        &Sha256::digest(&manifest_bytes).to_string(),
        package::MANIFEST,
    ));
    sums.push_str(&package::sums_line(
        &Sha256::digest(&sig).to_string(),
        package::MANIFEST_SIG,
    ));
    write(package::SHA256SUMS, sums.as_bytes())?;
    if w.set.sm3 {
        let mut sm3 = String::new();
        for f in &manifest.files {
            if let Some(h) = &f.sm3 {
                sm3.push_str(&package::sums_line(&h.to_string(), &f.path));
            }
        }
        write(package::SM3SUMS, sm3.as_bytes())?;
    }
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

/// fsync every file and directory of the package before it is renamed into place.
fn sync_tree(dir: &Path) -> std::io::Result<()> {
    for e in std::fs::read_dir(dir)? {
        let e = e?;
        if e.file_type()?.is_dir() {
            sync_tree(&e.path())?;
        } else {
            std::fs::File::open(e.path())?.sync_all()?;
        }
    }
    std::fs::File::open(dir)?.sync_all()
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
