//! The package's custody part: the station key, and each event proven under the package's
//! checkpoint; what the proven events say. (The earlier checkpoints, tokens and anchoring are
//! in `checkpoints.rs`.)

use super::{Ctx, EVENTS, cap, code};
use super::{checkpoint_path, key_path, proof_path};
use crate::checkpoint::{self, InclusionProof, SignedCheckpoint};
use crate::event::payload::{
    AcquiredPayload, KeyRotatedPayload, LinkedPayload, TranscodedPayload, UnlinkedPayload,
};
use crate::event::{CustodyEvent, EventKind, MAX_EVENT_BYTES, Subject, Timestamp};
use crate::expect::Proofs;
use crate::id::EvidenceId;
use crate::logcheck::{self, KeySchedule, Line, MAX_KEY_BYTES, read_line, refused};
use crate::merkle;
use crate::note::VerifierKey;
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
    /// The keys a checkpoint the receiver holds may be signed by (`Anchoring::trusted_keys`).
    pub trusted_keys: Vec<VerifierKey>,
}

impl Custody {
    /// The earliest pinned TSA time of a checkpoint covering event `seq`.
    pub(super) fn attested_at(&self, seq: u64) -> Option<Timestamp> {
        // The earliest time, not the smallest checkpoint: a token for an earlier checkpoint
        // may have been obtained later (a TSA out of reach for a while).
        self.attested
            .range(seq.saturating_add(1)..)
            .map(|(_, t)| *t)
            .min()
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

pub(super) fn read_note(c: &mut Ctx<'_>, rel: &str) -> Option<Vec<u8>> {
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

pub(super) fn size_of(path: &str, prefix: &str, suffix: &str) -> Option<u64> {
    let n = path.strip_prefix(prefix)?.strip_suffix(suffix)?;
    // One spelling per size: no sign, no leading zeros.
    if n.is_empty() || !n.bytes().all(|b| b.is_ascii_digit()) || (n.len() > 1 && n.starts_with('0'))
    {
        return None;
    }
    n.parse().ok()
}
