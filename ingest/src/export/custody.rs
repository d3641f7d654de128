//! The custody part of a package: the events, a proof of each to the latest checkpoint, the
//! checkpoints that cover them with consistency proofs and tokens, the station's key and the TSA
//! roots. Apart because it is what lets a receiver check the package without the station.

use super::writer::Writer;
use super::{ExportError, io};
use crate::station::Station;
use evidock_store::key::NoteSigner as _;
use evidock_verify::checkpoint::{ConsistencyProof, InclusionProof, SignedCheckpoint};
use evidock_verify::event::{CustodyEvent, EventKind};
use evidock_verify::id::Sha256;
use evidock_verify::package::{self, FileRole};
use std::collections::BTreeSet;
use std::path::{Path, PathBuf};

/// The log's checkpoints as the package needs them.
pub(super) struct Checkpoints {
    /// The latest: every event of the package must be under it.
    pub(super) latest: u64,
    /// Every checkpoint's size, ascending.
    pub(super) sizes: Vec<u64>,
    tokens_dir: PathBuf,
    notes_dir: PathBuf,
    latest_note: Vec<u8>,
    pub(super) latest_sc: SignedCheckpoint,
    /// The sizes with a token.
    tokened: Vec<u64>,
}

impl Checkpoints {
    /// Read them, refusing an event of the package that no checkpoint covers yet.
    pub(super) fn read(st: &Station, events: &[CustodyEvent]) -> Result<Self, ExportError> {
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
        let latest_note = note(&notes_dir, latest)?;
        // Signed by the key in force, and the note is the one the log checks.
        let latest_sc = st
            .log
            .with(|l| l.signed_checkpoint(latest))
            .map_err(|e| ExportError::Other(format!("checkpoint {latest}: {e}")))?;
        if SignedCheckpoint::parse(&latest_note).ok().as_ref() != Some(&latest_sc) {
            return Err(ExportError::Other(format!(
                "checkpoint {latest} changed while it was read; export again"
            )));
        }
        let tokened: Vec<u64> = sizes
            .iter()
            .copied()
            .filter(|s| token(&tokens_dir, *s).exists())
            .collect();
        Ok(Checkpoints {
            latest,
            sizes,
            tokens_dir,
            notes_dir,
            latest_note,
            latest_sc,
            tokened,
        })
    }

    fn note(&self, size: u64) -> Result<Vec<u8>, ExportError> {
        note(&self.notes_dir, size)
    }

    fn token(&self, size: u64) -> PathBuf {
        token(&self.tokens_dir, size)
    }
}

/// The signed checkpoint of `size` events, as the log keeps it.
fn note(notes_dir: &Path, size: u64) -> Result<Vec<u8>, ExportError> {
    let p = notes_dir.join(evidock_verify::layout::checkpoint_file(size));
    fs_err::read(&p).map_err(io(&p))
}

/// Where the log keeps the token of the checkpoint of `size` events.
fn token(tokens_dir: &Path, size: u64) -> PathBuf {
    tokens_dir.join(evidock_verify::layout::timestamp_file(size))
}

/// The events file, the proofs, checkpoints and tokens. Returns the checkpoint sizes whose
/// tokens are in the package.
pub(super) fn write_custody(
    st: &Station,
    w: &mut Writer<'_>,
    events: &[CustodyEvent],
    cp: &Checkpoints,
    warnings: &mut Vec<String>,
) -> Result<BTreeSet<u64>, ExportError> {
    let latest = cp.latest;
    let (sizes, tokened) = (&cp.sizes, &cp.tokened);
    let (latest_note, latest_sc) = (&cp.latest_note, &cp.latest_sc);
    let note = |size: u64| cp.note(size);
    let token = |size: u64| cp.token(size);
    let mut lines = Vec::new();
    let mut leaves = Vec::with_capacity(events.len());
    for ev in events {
        let line = ev
            .to_canonical()
            .map_err(|e| ExportError::Other(e.to_string()))?;
        leaves.push(evidock_verify::merkle::leaf_hash(&line));
        lines.extend_from_slice(&line);
        lines.push(b'\n');
    }
    w.bytes(package::EVENTS, FileRole::Events, &lines)?;
    let mut covering: BTreeSet<u64> = BTreeSet::new();
    for (ev, leaf) in events.iter().zip(&leaves) {
        // The proofs come from the station's index, a cache: each is checked as the receiver
        // will check it before it goes into a package.
        let path = st
            .log
            .with(|l| {
                if l.index().leaf(ev.seq)?.as_ref() != Some(leaf) {
                    return Err(evidock_store::log::LogError::Unproved {
                        dir: l.dir().to_path_buf(),
                        what: format!("inclusion proof of event #{}", ev.seq),
                        why: "the event read is not the leaf the index holds".into(),
                    });
                }
                l.proved_inclusion(ev.seq, latest, &latest_sc.checkpoint.root)
            })
            .map_err(|e| ExportError::Other(e.to_string()))?;
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
        latest_note,
    )?;
    let included: BTreeSet<u64> = covering.union(&handovers).copied().collect();
    for size in &included {
        if *size != latest {
            let old_note = note(*size)?;
            // Signed by the key in force at its size, as the receiver checks it.
            let (old_sc, (old_root, path)) = st
                .log
                .with(|l| {
                    Ok::<_, evidock_store::log::LogError>((
                        l.signed_checkpoint(*size)?,
                        l.proved_consistency(*size, latest, &latest_sc.checkpoint.root)?,
                    ))
                })
                .map_err(|e| ExportError::Other(e.to_string()))?;
            if SignedCheckpoint::parse(&old_note).ok().as_ref() != Some(&old_sc)
                || old_sc.checkpoint.root != old_root
            {
                return Err(ExportError::Other(format!(
                    "checkpoint {size} of the custody log is not a root of the log its latest checkpoint signs; run `evidock log verify`"
                )));
            }
            w.bytes(
                &package::checkpoint_path(*size),
                FileRole::Checkpoint,
                &old_note,
            )?;
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
            let der = fs_err::read(&p).map_err(io(&p))?;
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
                        let (root, path) =
                            l.proved_consistency(old, latest, &latest_sc.checkpoint.root)?;
                        Ok((old, root, path))
                    })
                    .collect::<Result<Vec<_>, evidock_store::log::LogError>>()
            })
            .map_err(|e| ExportError::Other(e.to_string()))?;
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
    Ok(covering)
}

/// The station's key and the TSA roots the receiver is to trust. Returns the roots' SHA-256.
pub(super) fn write_keys(st: &Station, w: &mut Writer<'_>) -> Result<Vec<Sha256>, ExportError> {
    let key_line = format!("{}\n", st.key.verifier());
    w.bytes(
        &package::key_path(st.id()),
        FileRole::Key,
        key_line.as_bytes(),
    )?;
    let mut tsa_roots = Vec::new();
    if let Some(tsa) = &st.settings.tsa {
        for (i, r) in tsa.roots.iter().enumerate() {
            let pem = fs_err::read(r).map_err(io(r))?;
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
    Ok(tsa_roots)
}
