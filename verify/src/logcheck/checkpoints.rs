//! A log's checkpoints, each against the events and the key schedule, and their tokens.

use super::files::{LogFiles, sized_files};
use super::{
    EventFacts, KeySchedule, check_checkpoint, check_checkpoint_token, code, first_key_for,
};
use super::{only_time_records, refused};
use crate::beneath::Beneath;
use crate::checkpoint::{self, SignedCheckpoint};
use crate::finding::Report;
use crate::id::Sha256;
use crate::merkle::{self, MemoryTree};
use crate::timestamp::MAX_DER_LEN;
use crate::trust::Trust;
use crate::verdict::TsaRoots;
use std::collections::{BTreeSet, HashMap};

/// What the checkpoints established.
pub(super) struct Checked {
    pub(super) good: Vec<u64>,
    /// The bytes of each verified checkpoint, for its token.
    pub(super) notes: HashMap<u64, Vec<u8>>,
    /// Per rotation: its hand-over checkpoint verified under both keys.
    pub(super) handover_ok: Vec<bool>,
    /// Indices (in the key chain) of the keys whose signatures count.
    pub(super) used: BTreeSet<usize>,
    pub(super) token_files: Vec<(u64, String)>,
}

pub(super) fn check_checkpoints(
    dir: &Beneath,
    files: &LogFiles,
    schedule: &KeySchedule,
    trust: &Trust,
    tree: &MemoryTree,
    r: &mut Report,
) -> Checked {
    // Checkpoints are checked with the pinned key of the same name when the receiver pinned
    // keys and none of the log's: an impostor's re-signed checkpoints are then bad signatures.
    let verifying = schedule.clone().with_first(first_key_for(schedule, trust));
    let checkpoints = sized_files(dir, &files.checkpoints, r);
    let mut prev: Option<(u64, Sha256)> = None;
    let mut out = Checked {
        good: Vec::new(),
        notes: HashMap::new(),
        handover_ok: Vec::new(),
        used: BTreeSet::new(),
        token_files: sized_files(dir, &files.timestamps, r),
    };
    for (size_from_name, rel) in &checkpoints {
        let subject = format!("checkpoint {size_from_name}");
        out.used.insert(schedule.index_of(*size_from_name));
        let bytes = match dir.read(rel, checkpoint::MAX_FILE_BYTES) {
            Ok(b) => b,
            Err(e) => {
                refused(r, code::LOG_UNREADABLE, rel, &e);
                continue;
            }
        };
        let (signer, cosigner) = verifying.signers_of(*size_from_name);
        let Some(sc) = check_checkpoint(&bytes, signer, &subject, r) else {
            continue;
        };
        if let Some(new) = cosigner
            && !sc.verify(new)
        {
            r.error(
                code::KEY_HANDOVER_MISSING,
                &subject,
                format!(
                    "the hand-over checkpoint of a key rotation lacks the new key's signature ({})",
                    new.fingerprint()
                ),
            );
            continue;
        }
        let cp = &sc.checkpoint;
        if cp.size != *size_from_name {
            r.error(
                code::CHECKPOINT_MISNAMED,
                &subject,
                format!(
                    "the file is named for size {size_from_name} but holds size {}",
                    cp.size
                ),
            );
        }
        if cp.size > tree.size() {
            r.error(
                code::CHECKPOINT_BEYOND_LOG,
                &subject,
                format!(
                    "signed for {} events but the log holds {}: events are missing",
                    cp.size,
                    tree.size()
                ),
            );
            continue;
        }
        let root = tree
            .root_at(cp.size)
            .unwrap_or_else(|_| merkle::empty_root());
        if root != cp.root {
            r.error(
                code::CHECKPOINT_ROOT_MISMATCH,
                &subject,
                format!(
                    "the events give root {root}, the signed checkpoint says {}: the log was altered",
                    cp.root
                ),
            );
            continue;
        }
        if let Some((psize, proot)) = prev {
            let proof = tree.consistency_proof(psize, cp.size).unwrap_or_default();
            if let Err(e) = merkle::verify_consistency(psize, cp.size, &proof, &proot, &cp.root) {
                r.error(
                    code::CHECKPOINT_INCONSISTENT,
                    &subject,
                    format!("not an extension of checkpoint {psize}: {e}"),
                );
            }
        }
        prev = Some((cp.size, cp.root));
        out.good.push(cp.size);
        out.notes.insert(cp.size, bytes);
    }
    if checkpoints.is_empty()
        && let Some(i) = schedule.chain().len().checked_sub(1)
    {
        // Nothing signed yet: the key that will sign must still be the receiver's.
        out.used.insert(i.min(schedule.index_of(tree.size())));
    }
    for (i, handover) in schedule.handovers().into_iter().enumerate() {
        let ok = out.good.contains(&handover);
        out.handover_ok.push(ok);
        if !ok && out.good.last().is_some_and(|last| *last > handover) {
            r.error(
                code::KEY_HANDOVER_MISSING,
                format!("event #{}", handover - 1),
                format!(
                    "no verified hand-over checkpoint of size {handover} signed by the old and the new key: rotation {} is not vouched for",
                    i + 1
                ),
            );
        }
    }
    if checkpoints.is_empty() && tree.size() > 0 {
        r.warning(
            code::LOG_NO_CHECKPOINT,
            "log",
            "no signed checkpoint: the events are not sealed",
        );
    } else if let Some(last) = out.good.last()
        && *last < tree.size()
    {
        r.warning(
            code::LOG_UNCOVERED,
            format!("events {last}..{}", tree.size() - 1),
            format!(
                "{} event(s) after the last checkpoint are not sealed yet",
                tree.size() - last
            ),
        );
    }
    out
}

pub(super) fn check_tokens(
    dir: &Beneath,
    trust: &Trust,
    checked: &Checked,
    facts: &EventFacts,
    roots: &mut TsaRoots,
    r: &mut Report,
) -> Vec<u64> {
    let mut attested = Vec::new();
    let token_sizes: Vec<u64> = checked.token_files.iter().map(|(s, _)| *s).collect();
    for (size, rel) in &checked.token_files {
        let subject = format!("timestamp {size}");
        let Some(note) = checked.notes.get(size) else {
            r.warning(
                code::TIMESTAMP_ORPHAN,
                subject,
                "a token for a checkpoint that is missing or did not verify",
            );
            continue;
        };
        let der = match dir.read(rel, MAX_DER_LEN as u64) {
            Ok(b) => b,
            Err(e) => {
                refused(r, code::LOG_UNREADABLE, rel, &e);
                continue;
            }
        };
        let Some(t) = check_checkpoint_token(&der, note, &trust.tsa, &subject, roots, r) else {
            continue;
        };
        if let Some(cp_time) = SignedCheckpoint::parse(note)
            .ok()
            .and_then(|s| s.checkpoint.time)
        {
            // The TSA's clock is the trusted one; a station clock running ahead of it by
            // more than the accuracy allowed is worth a look, not a failure.
            if t.info.gen_time + chrono::Duration::seconds(60) < cp_time {
                r.warning(
                    code::TIMESTAMP_BEFORE_SIGNING,
                    &subject,
                    format!(
                        "the TSA time {} is before the station's signing time {cp_time}",
                        t.info.gen_time
                    ),
                );
            }
        }
        if let Some(p) = facts.timestamped.get(size)
            && (p.token_sha256 != Sha256::digest(&der)
                || p.checkpoint_sha256 != Sha256::digest(note))
        {
            r.error(
                code::TIMESTAMP_EVENT_MISMATCH,
                &subject,
                "the timestamped event names a different token or checkpoint",
            );
        }
        if t.attests {
            attested.push(*size);
        }
    }
    let mut prev = 0;
    for size in &checked.good {
        let needs_token = !only_time_records(&facts.about_time, prev, *size);
        prev = *size;
        if needs_token && !token_sizes.contains(size) {
            r.warning(
                code::TIMESTAMP_MISSING,
                format!("checkpoint {size}"),
                "no RFC 3161 token: time not attested (station time only)",
            );
        }
    }
    attested
}
