//! The package's earlier checkpoints and their tokens, the consistency proofs it carries, how far
//! the receiver's pins reach across key rotations, and what the receiver already holds.

use super::custody::{read_note, size_of};
use super::{CONSISTENCY_BUNDLE, Ctx, FileRole, MANIFEST, cap, code};
use super::{checkpoint_path, consistency_path};
use crate::checkpoint::{self, ConsistencyProof};
use crate::event::Timestamp;
use crate::expect;
use crate::logcheck::{self, Anchoring, refused};
use crate::note::VerifierKey;
use crate::timestamp::MAX_DER_LEN;
use std::collections::BTreeSet;
use std::io::{BufReader, Read};

/// Earlier checkpoints: each signed by the key the rotations say (both keys at a hand-over),
/// and consistent with the latest by its proof.
pub(super) fn check_checkpoints(c: &mut Ctx<'_>) {
    let Some((latest_sc, _)) = c.custody.latest.clone() else {
        return;
    };
    let latest_size = latest_sc.checkpoint.size;
    let sizes: Vec<(u64, String)> = c
        .manifest
        .files
        .iter()
        .filter(|f| f.role == FileRole::Checkpoint)
        .filter_map(|f| {
            Some((
                size_of(&f.path, "custody/checkpoints/", ".note")?,
                f.path.clone(),
            ))
        })
        .filter(|(s, _)| *s != latest_size)
        .collect();
    for (size, rel) in sizes {
        let Some(b) = read_note(c, &rel) else {
            continue;
        };
        let (signer, cosigner) = c.custody.schedule.signers_of(size);
        let (signer, cosigner) = (signer.cloned(), cosigner.cloned());
        let Some(sc) = logcheck::check_checkpoint(&b, signer.as_ref(), &rel, &mut c.r) else {
            continue;
        };
        if let Some(new) = &cosigner
            && !sc.verify(new)
        {
            c.r.error(
                logcheck::code::KEY_HANDOVER_MISSING,
                &rel,
                format!(
                    "the hand-over checkpoint of a key rotation lacks the new key's signature ({})",
                    new.fingerprint()
                ),
            );
            continue;
        }
        c.forks.see(&sc, &rel, &mut c.r);
        let cp_rel = consistency_path(size, latest_size);
        let proof = match c.dir.read(&cp_rel, cap::CONSISTENCY) {
            Ok(pb) => match ConsistencyProof::parse(&pb) {
                Ok(p) if p.old == size && p.new == latest_size => p,
                Ok(_) => {
                    c.r.error(code::PROOF_MALFORMED, &cp_rel, "names other sizes");
                    continue;
                }
                Err(e) => {
                    c.r.error(code::PROOF_MALFORMED, &cp_rel, e.to_string());
                    continue;
                }
            },
            Err(e) => {
                refused(&mut c.r, code::FILE_MISSING, &cp_rel, &e);
                continue;
            }
        };
        if let Err(e) = proof.verify(&sc.checkpoint.root, &latest_sc.checkpoint.root) {
            c.r.error(
                logcheck::code::CHECKPOINT_INCONSISTENT,
                &cp_rel,
                format!("checkpoint {size} is not a prefix of {latest_size}: {e}"),
            );
            continue;
        }
        c.custody.proofs.insert(size, (proof, cp_rel));
        c.custody.checkpoints.insert(size, (sc, b));
    }
    // A hand-over is vouched for when its checkpoint is here and verified under both keys: an
    // earlier one above, or the package's own checkpoint (already verified under the new key)
    // when it also verifies under the old one.
    let chain: Vec<VerifierKey> = c.custody.schedule.chain().into_iter().cloned().collect();
    c.custody.handover_ok = c
        .custody
        .schedule
        .handovers()
        .iter()
        .enumerate()
        .map(|(i, h)| {
            c.custody.checkpoints.contains_key(h)
                || (*h == latest_size && chain.get(i).is_some_and(|old| latest_sc.verify(old)))
        })
        .collect();
}

/// The consistency proofs from every earlier checkpoint of the station, one entry at a time;
/// each must prove its stated root a prefix of the package's checkpoint.
pub(super) fn check_consistency_bundle(c: &mut Ctx<'_>) {
    let Some((latest, _)) = &c.custody.latest else {
        return;
    };
    let (n, root) = (latest.checkpoint.size, latest.checkpoint.root);
    let Some(listed) = c
        .manifest
        .files
        .iter()
        .find(|f| f.path == CONSISTENCY_BUNDLE)
    else {
        return;
    };
    let limit = listed.size.saturating_add(1).min(cap::BUNDLE);
    let file = match c.dir.open_file(CONSISTENCY_BUNDLE) {
        Ok((f, _)) => f,
        Err(e) => {
            refused(&mut c.r, code::FILE_MISSING, CONSISTENCY_BUNDLE, &e);
            return;
        }
    };
    // Every entry is checked as it streams past; only those for a size the receiver holds are
    // kept (the bundle may hold one per checkpoint of years of a station's log).
    let wanted: BTreeSet<u64> = c.expect.expected.iter().map(|e| e.size).collect();
    let mut bad: Vec<String> = Vec::new();
    let mut bad_count = 0u64;
    let mut good: Vec<(u64, ConsistencyProof)> = Vec::new();
    let mut note_bad = |why: String| {
        bad_count += 1;
        if bad.len() < 10 {
            bad.push(why);
        }
    };
    let read = checkpoint::read_bundle(BufReader::new(file.take(limit)), |e| match e {
        Ok(entry) if entry.proof.verify(&entry.root, &root).is_ok() => {
            if wanted.contains(&entry.proof.old) {
                good.push((entry.proof.old, entry.proof));
            }
        }
        Ok(entry) => note_bad(format!(
            "the proof from size {} does not verify",
            entry.proof.old
        )),
        Err(why) => note_bad(why),
    });
    match read {
        Ok(new) if new != n => note_bad(format!(
            "proves consistency with size {new}, not the package's {n}"
        )),
        Ok(_) => {}
        Err(why) => note_bad(why),
    }
    for why in &bad {
        c.r.error(
            logcheck::code::CHECKPOINT_INCONSISTENT,
            CONSISTENCY_BUNDLE,
            why,
        );
    }
    if bad_count > bad.len() as u64 {
        c.r.error(
            logcheck::code::CHECKPOINT_INCONSISTENT,
            CONSISTENCY_BUNDLE,
            format!(
                "and {} more entries that do not verify",
                bad_count - bad.len() as u64
            ),
        );
    }
    for (old, p) in good {
        c.custody
            .proofs
            .entry(old)
            .or_insert((p, CONSISTENCY_BUNDLE.to_string()));
    }
}

/// Each token over a checkpoint in the package: it counts only over a checkpoint that verified
/// and is consistent with the latest, and attests only under a pinned root.
pub(super) fn check_tokens(c: &mut Ctx<'_>) {
    let latest = c.custody.latest.clone();
    let tokens: Vec<(u64, String)> = c
        .manifest
        .files
        .iter()
        .filter(|f| f.role == FileRole::Token)
        .filter_map(|f| {
            Some((
                size_of(&f.path, "custody/timestamps/", ".tsr")?,
                f.path.clone(),
            ))
        })
        .collect();
    for (size, rel) in tokens {
        // The token is checked against the checkpoint bytes in the package even when their
        // signature failed: a re-signed checkpoint no longer matches the TSA's imprint.
        let verified = match &latest {
            Some((sc, b)) if sc.checkpoint.size == size => Some(b.clone()),
            _ => c.custody.checkpoints.get(&size).map(|(_, b)| b.clone()),
        };
        let note = match &verified {
            Some(b) => Some(b.clone()),
            None => c
                .dir
                .read(&checkpoint_path(size), checkpoint::MAX_FILE_BYTES)
                .ok(),
        };
        let Some(note) = note else {
            c.r.warning(
                logcheck::code::TIMESTAMP_ORPHAN,
                &rel,
                "a token for a checkpoint that is not in the package",
            );
            continue;
        };
        let der = match c.dir.read(&rel, MAX_DER_LEN as u64) {
            Ok(b) => b,
            Err(e) => {
                refused(&mut c.r, code::FILE_MISSING, &rel, &e);
                continue;
            }
        };
        let Some(t) = logcheck::check_checkpoint_token(
            &der,
            &note,
            &c.trust.tsa,
            &rel,
            &mut c.roots,
            &mut c.r,
        ) else {
            continue;
        };
        c.custody.any_token = true;
        if verified.is_none() {
            c.r.warning(
                logcheck::code::TIMESTAMP_ORPHAN,
                &rel,
                "the token matches its checkpoint, but the checkpoint did not verify",
            );
        } else if t.attests {
            c.custody
                .attested
                .insert(size, Timestamp::from_datetime(t.info.gen_time));
        }
    }
}

/// Whether the keys whose signatures count are reached from the receiver's pins: the package's
/// key, and the older keys of the earlier checkpoints, across verified hand-overs only.
pub(super) fn check_anchoring(c: &mut Ctx<'_>) {
    let cu = &c.custody;
    let chain_len = cu.schedule.chain().len();
    if chain_len == 0 {
        if c.key.is_some() && !c.r.has(logcheck::code::KEY_ROTATION_BROKEN) {
            c.r.error(
                logcheck::code::KEY_ROTATION_BROKEN,
                "station key",
                "the package's key rotations give no key to check against",
            );
        }
        return;
    }
    let mut used: BTreeSet<usize> = BTreeSet::from([chain_len - 1]);
    used.extend(cu.checkpoints.keys().map(|s| cu.schedule.index_of(*s)));
    let anchoring = Anchoring::of(&cu.schedule, &cu.handover_ok, c.trust);
    c.key_anchored = anchoring.require(&cu.schedule, &used, &cu.handover_ok, &mut c.r);
    c.custody.trusted_keys = anchoring.trusted_keys(&cu.schedule, &cu.handover_ok, chain_len - 1);
    logcheck::report_keys(&c.custody.schedule, &anchoring, c.trust, &mut c.r);
}

/// Hold the package to every checkpoint the receiver holds.
pub(super) fn check_expectations(c: &mut Ctx<'_>) {
    if let Some(case) = &c.expect.case
        && c.manifest.case.as_str() != case
    {
        c.r.error(
            code::CASE_MISMATCH,
            MANIFEST,
            format!(
                "a package of case {}, not of {case}: not the package you expected",
                c.manifest.case
            ),
        );
    }
    if c.expect.is_empty() {
        return;
    }
    let Some((latest, _)) = &c.custody.latest else {
        for e in &c.expect.expected {
            c.r.error(
                expect::code::CHECKPOINT_UNPROVABLE,
                &e.source,
                "the package's own checkpoint did not verify: nothing can be proven consistent with it",
            );
        }
        return;
    };
    let keys = &c.custody.trusted_keys;
    expect::hold_package(
        c.expect,
        latest,
        &c.custody.proofs,
        |sc| keys.iter().any(|k| sc.verify(k)),
        &mut c.forks,
        &mut c.r,
    );
}
