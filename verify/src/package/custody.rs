//! The package's custody part: the station key, each event proven under the package's
//! checkpoint, earlier checkpoints consistent with it, their tokens, the key rotations and how
//! far the receiver's anchors reach, and what the receiver already holds.

use super::{CONSISTENCY_BUNDLE, Ctx, EVENTS, FileRole, MANIFEST, cap, code};
use super::{checkpoint_path, consistency_path, key_path, proof_path};
use crate::checkpoint::{self, ConsistencyProof, InclusionProof, SignedCheckpoint};
use crate::event::payload::{
    AcquiredPayload, KeyRotatedPayload, LinkedPayload, TranscodedPayload, UnlinkedPayload,
};
use crate::event::{CustodyEvent, EventKind, MAX_EVENT_BYTES, Subject, Timestamp};
use crate::expect::{self, Proofs};
use crate::id::EvidenceId;
use crate::logcheck::{self, Anchoring, KeySchedule, Line, MAX_KEY_BYTES, read_line, refused};
use crate::merkle;
use crate::note::VerifierKey;
use crate::timestamp::MAX_DER_LEN;
use std::collections::{BTreeMap, BTreeSet};
use std::io::{BufReader, Read};

/// What the custody part proves.
#[derive(Debug, Default)]
pub(super) struct Custody {
    /// The checkpoint every inclusion proof leads to, verified, and its bytes.
    pub latest: Option<(SignedCheckpoint, Vec<u8>)>,
    /// Events proven under it.
    pub events: Vec<CustodyEvent>,
    /// Acquired events by evidence, with their seq.
    pub acquired: BTreeMap<EvidenceId, (AcquiredPayload, u64)>,
    pub transcoded: Vec<(TranscodedPayload, u64)>,
    /// Items linked to the case at the end of the included events.
    pub linked: BTreeSet<EvidenceId>,
    pub schedule: KeySchedule,
    /// Earlier checkpoints that verify and are consistent with the latest, and their bytes.
    pub checkpoints: BTreeMap<u64, (SignedCheckpoint, Vec<u8>)>,
    /// Per rotation: its hand-over checkpoint is here, verified under both keys.
    pub handover_ok: Vec<bool>,
    /// Consistency proofs to the latest checkpoint, by old size.
    pub proofs: Proofs,
    /// Sizes of checkpoints whose token is anchored at a pinned root, and the TSA time.
    pub attested: BTreeMap<u64, Timestamp>,
    /// Whether any token verified at all (pinned or not).
    pub any_token: bool,
    /// The keys a checkpoint the receiver holds may be signed by ([`Anchoring::trusted_keys`]).
    pub trusted_keys: Vec<VerifierKey>,
}

impl Custody {
    /// The earliest pinned TSA time of a checkpoint covering event `seq`.
    pub(super) fn attested_at(&self, seq: u64) -> Option<Timestamp> {
        // The earliest time, not the smallest checkpoint: a token for an earlier checkpoint
        // may have been obtained later (a TSA out of reach for a while).
        self.attested.range(seq + 1..).map(|(_, t)| *t).min()
    }
}

/// The station key file, which must be the key the manifest names.
pub(super) fn check_key_file(c: &mut Ctx<'_>) {
    let rel = key_path(&c.manifest.custody.station);
    let key = match c.dir.read(&rel, MAX_KEY_BYTES) {
        Ok(b) => match std::str::from_utf8(&b)
            .map_err(|_| "not UTF-8".to_string())
            .and_then(|t| VerifierKey::parse(t.trim()).map_err(|e| e.to_string()))
        {
            Ok(k) => Some(k),
            Err(e) => {
                c.r.error(logcheck::code::KEY_MISSING, &rel, e);
                None
            }
        },
        Err(e) => {
            refused(&mut c.r, logcheck::code::KEY_MISSING, &rel, &e);
            None
        }
    };
    if let Some(k) = &key
        && k.to_string() != c.manifest.custody.key
    {
        c.r.error(
            logcheck::code::KEY_MISSING,
            &rel,
            "the key file differs from the key the manifest names",
        );
    }
    c.key = key;
}

fn read_note(c: &mut Ctx<'_>, rel: &str) -> Option<Vec<u8>> {
    match c.dir.read(rel, checkpoint::MAX_FILE_BYTES) {
        Ok(b) => Some(b),
        Err(e) => {
            refused(&mut c.r, code::FILE_MISSING, rel, &e);
            None
        }
    }
}

/// The latest checkpoint, then every event in log order, each proven under it.
pub(super) fn check_events(c: &mut Ctx<'_>) {
    let latest_size = c.manifest.custody.checkpoint;
    let latest_path = checkpoint_path(latest_size);
    let key = c.key.clone();
    // The events the manifest lists, each once: every later step works over this set, so a
    // repeated or unlisted line costs one finding, not one more proof to read.
    let mut listed: BTreeSet<u64> = BTreeSet::new();
    for seq in &c.manifest.custody.events {
        if !listed.insert(*seq) {
            c.r.error(
                code::MANIFEST_MALFORMED,
                format!("event #{seq}"),
                "listed twice in the manifest",
            );
        }
    }
    let mut latest = read_note(c, &latest_path).and_then(|b| {
        logcheck::check_checkpoint(&b, key.as_ref(), &latest_path, &mut c.r).map(|s| (s, b))
    });
    if latest.is_none() {
        // Every proof carries the checkpoint too: one whose signature verifies stands in for a
        // damaged checkpoint file, so the rest of the package is still judged.
        latest = listed
            .iter()
            .take(64)
            .filter_map(|seq| {
                c.dir
                    .read(&proof_path(*seq), checkpoint::MAX_FILE_BYTES)
                    .ok()
            })
            .filter_map(|b| InclusionProof::parse(&b).ok())
            .map(|p| p.checkpoint)
            .find(|sc| {
                sc.checkpoint.size == latest_size && key.as_ref().is_some_and(|k| sc.verify(k))
            })
            .map(|sc| {
                let b = sc.to_bytes();
                (sc, b)
            });
    }
    if let Some((sc, _)) = &latest {
        c.forks.see(sc, &latest_path, &mut c.r);
        if sc.checkpoint.size != latest_size {
            c.r.error(
                logcheck::code::CHECKPOINT_MISNAMED,
                &latest_path,
                format!("holds size {}", sc.checkpoint.size),
            );
        }
    }
    c.custody.latest = latest;

    let cap = c
        .manifest
        .files
        .iter()
        .find(|f| f.path == EVENTS)
        .map_or(cap::EVENTS, |f| f.size.saturating_add(1).min(cap::EVENTS));
    let file = match c.dir.open_file(EVENTS) {
        Ok((f, _)) => f,
        Err(e) => {
            refused(&mut c.r, code::FILE_MISSING, EVENTS, &e);
            return;
        }
    };
    let mut reader = BufReader::new(file.take(cap));
    // Every event in the file, proven or not (a listed event missing from it was removed).
    let mut in_file: BTreeSet<u64> = BTreeSet::new();
    let mut unlisted: BTreeSet<u64> = BTreeSet::new();
    let mut last: Option<u64> = None;
    let mut line = Vec::new();
    let mut n = 0u64;
    loop {
        n += 1;
        match read_line(&mut reader, &mut line, MAX_EVENT_BYTES) {
            Ok(Line::End) => break,
            Ok(Line::Complete) if line.is_empty() => continue,
            Ok(Line::Complete) => {}
            Ok(Line::Torn) => {
                c.r.error(
                    logcheck::code::EVENT_MALFORMED,
                    EVENTS,
                    format!("line {n}: no final newline (cut short, or longer than listed)"),
                );
                break;
            }
            Ok(Line::TooLong(len, _)) => {
                c.r.error(
                    logcheck::code::EVENT_MALFORMED,
                    EVENTS,
                    format!("line {n}: {len} bytes, more than an event may have: not read"),
                );
                continue;
            }
            Err(e) => {
                c.r.error(file_unreadable(), EVENTS, e.to_string());
                break;
            }
        }
        let ev = match CustodyEvent::parse(&line) {
            Ok(ev) => ev,
            Err(e) => {
                c.r.error(
                    logcheck::code::EVENT_MALFORMED,
                    EVENTS,
                    format!("line {n}: {e}"),
                );
                continue;
            }
        };
        let subject = format!("event #{}", ev.seq);
        if !listed.contains(&ev.seq) {
            if unlisted.insert(ev.seq) {
                c.r.error(
                    code::CUSTODY_EVENT_UNLISTED,
                    &subject,
                    "not listed in the manifest: not proven",
                );
            }
            continue;
        }
        if let Some(l) = last
            && ev.seq <= l
        {
            c.r.error(
                code::CUSTODY_OUT_OF_ORDER,
                &subject,
                format!(
                    "comes after event #{l}: the events were reordered or repeated; not proven here"
                ),
            );
            in_file.insert(ev.seq);
            continue;
        }
        last = Some(ev.seq);
        in_file.insert(ev.seq);
        if let Some(ev) = prove_event(c, ev, &line) {
            c.custody.events.push(ev);
        }
    }
    let present: BTreeSet<u64> = c.custody.events.iter().map(|e| e.seq).collect();
    for seq in listed.difference(&present) {
        // An event that is there but failed its proof was reported already.
        if !in_file.contains(seq) {
            c.r.error(
                code::CUSTODY_EVENT_MISSING,
                format!("event #{seq}"),
                "listed in the manifest but not in custody/events.jsonl: it was removed",
            );
        }
    }

    let rotations: Vec<(u64, KeyRotatedPayload)> = c
        .custody
        .events
        .iter()
        .filter(|e| e.kind == EventKind::KeyRotated && e.seq < latest_size)
        .filter_map(|e| Some((e.seq, e.payload::<KeyRotatedPayload>().ok()?)))
        .collect();
    c.custody.schedule = KeySchedule::leading_to(c.key.as_ref(), &rotations, &mut c.r);
    read_what_events_say(c);
}

fn file_unreadable() -> &'static str {
    crate::finding::file::code::UNREADABLE
}

/// One event: of this station, in order, with an inclusion proof under the latest checkpoint.
fn prove_event(c: &mut Ctx<'_>, ev: CustodyEvent, line: &[u8]) -> Option<CustodyEvent> {
    let subject = format!("event #{}", ev.seq);
    let station = &c.manifest.custody.station;
    if ev.station != *station {
        c.r.error(
            logcheck::code::EVENT_WRONG_STATION,
            &subject,
            format!("from station {}, not {station}", ev.station),
        );
        return None;
    }
    logcheck::unknown_parts(&ev, &subject, &mut c.r);
    if ev.kind.is_known()
        && let Err(e) = ev.check_payload()
    {
        c.r.error(logcheck::code::EVENT_BAD_PAYLOAD, &subject, e.to_string());
    }
    let proof_rel = proof_path(ev.seq);
    let pb = read_note(c, &proof_rel)?;
    let proof = match InclusionProof::parse(&pb) {
        Ok(p) => p,
        Err(e) => {
            c.r.error(code::PROOF_MALFORMED, &proof_rel, e.to_string());
            return None;
        }
    };
    let latest_size = c.manifest.custody.checkpoint;
    match &c.custody.latest {
        Some((sc, _)) if proof.checkpoint == *sc => {}
        _ => {
            // A proof under another signed checkpoint of the same size is a second history.
            if let Some(k) = &c.key
                && proof.checkpoint.verify(k)
            {
                c.forks.see(&proof.checkpoint, &proof_rel, &mut c.r);
            }
            c.r.error(
                code::PROOF_WRONG_CHECKPOINT,
                &proof_rel,
                format!("does not lead to the package's checkpoint {latest_size}"),
            );
            return None;
        }
    }
    if proof.index != ev.seq {
        c.r.error(
            code::PROOF_MALFORMED,
            &proof_rel,
            format!("proves entry {}, not event #{}", proof.index, ev.seq),
        );
        return None;
    }
    if let Err(e) = proof.verify_leaf(&merkle::leaf_hash(line)) {
        // Which side changed, when the sealed manifest can tell: the events file as listed and
        // the proof not → the proof was altered.
        let events_intact = c.intact.get(EVENTS).copied().unwrap_or(false);
        let proof_intact = c.intact.get(&proof_rel).copied().unwrap_or(false);
        if events_intact && !proof_intact {
            c.r.error(
                code::PROOF_INVALID,
                &proof_rel,
                format!(
                    "does not prove event #{} under the checkpoint ({e}): the proof was altered",
                    ev.seq
                ),
            );
        } else {
            c.r.error(
                code::EVENT_NOT_INCLUDED,
                &subject,
                format!(
                    "these bytes are not event #{} of the signed log ({e}): the event or its proof was altered",
                    ev.seq
                ),
            );
        }
        return None;
    }
    Some(ev)
}

/// What the proven events say: acquisitions, derivatives, links to the case.
fn read_what_events_say(c: &mut Ctx<'_>) {
    let mut links: BTreeMap<EvidenceId, bool> = BTreeMap::new();
    let case = &c.manifest.case;
    let cu = &mut c.custody;
    for ev in &cu.events {
        match ev.kind {
            EventKind::Acquired => {
                if let (Subject::Evidence(id), Ok(p)) =
                    (&ev.subject, ev.payload::<AcquiredPayload>())
                {
                    cu.acquired.insert(id.clone(), (p, ev.seq));
                }
            }
            EventKind::Transcoded => {
                if let Ok(p) = ev.payload::<TranscodedPayload>() {
                    cu.transcoded.push((p, ev.seq));
                }
            }
            EventKind::Linked => {
                if let Ok(p) = ev.payload::<LinkedPayload>()
                    && p.case == *case
                {
                    links.insert(p.evidence, true);
                }
            }
            EventKind::Unlinked => {
                if let Ok(p) = ev.payload::<UnlinkedPayload>()
                    && p.case == *case
                {
                    links.insert(p.evidence, false);
                }
            }
            _ => {}
        }
    }
    cu.linked = links
        .into_iter()
        .filter(|(_, l)| *l)
        .map(|(e, _)| e)
        .collect();
}

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

pub(super) fn size_of(path: &str, prefix: &str, suffix: &str) -> Option<u64> {
    let n = path.strip_prefix(prefix)?.strip_suffix(suffix)?;
    // One spelling per size: no sign, no leading zeros.
    if n.is_empty() || !n.bytes().all(|b| b.is_ascii_digit()) || (n.len() > 1 && n.starts_with('0'))
    {
        return None;
    }
    n.parse().ok()
}
