//! Checking a custody log directory (see [`crate::layout`]): every event, every checkpoint,
//! every time-stamp token. Every problem becomes a finding; nothing stops the check early.

use crate::checkpoint::{self, SignedCheckpoint};
use crate::event::payload::{KeyRotatedPayload, TimestampedPayload};
use crate::event::{CustodyEvent, EventError, EventKind};
use crate::finding::Report;
use crate::id::{Sha256, StationId};
use crate::layout;
use crate::merkle::{self, MemoryTree};
use crate::note::VerifierKey;
use crate::timestamp::{self, Anchor, Expectation, ImprintAlgorithm};
use crate::trust::Trust;
use std::collections::{BTreeMap, HashMap};
use std::io::{BufRead, BufReader, Read};
use std::path::{Path, PathBuf};

/// Finding codes of this module (documented in docs/findings.md).
pub mod code {
    pub const LOG_UNREADABLE: &str = "log.unreadable";
    pub const LOG_SEGMENT_GAP: &str = "log.segment-gap";
    pub const LOG_TORN_TAIL: &str = "log.torn-tail";
    pub const LOG_NO_CHECKPOINT: &str = "log.no-checkpoint";
    pub const LOG_UNCOVERED: &str = "log.uncovered-events";
    pub const LOG_SUMMARY: &str = "log.summary";
    pub const KEY_MISSING: &str = "key.missing";
    pub const KEY_UNTRUSTED: &str = "key.untrusted";
    pub const KEY_ROTATION_BROKEN: &str = "key.rotation-broken";
    pub const KEY_HANDOVER_MISSING: &str = "key.handover-missing";
    pub const KEY_ROTATED: &str = "key.rotated";
    pub const TRUST_NOT_ANCHORED: &str = "trust.not-anchored";
    pub const TRUST_RELIED_ON: &str = "trust.relied-on";
    pub const EVENT_MALFORMED: &str = "event.malformed";
    pub const EVENT_NOT_CANONICAL: &str = "event.not-canonical";
    pub const EVENT_WRONG_STATION: &str = "event.wrong-station";
    pub const EVENT_OUT_OF_ORDER: &str = "event.out-of-order";
    pub const EVENT_DUPLICATE_KEY: &str = "event.duplicate-key";
    pub const EVENT_UNKNOWN_KIND: &str = "event.unknown-kind";
    pub const EVENT_BAD_PAYLOAD: &str = "event.bad-payload";
    pub const CHECKPOINT_MALFORMED: &str = "checkpoint.malformed";
    pub const CHECKPOINT_BAD_SIGNATURE: &str = "checkpoint.bad-signature";
    pub const CHECKPOINT_WRONG_ORIGIN: &str = "checkpoint.wrong-origin";
    pub const CHECKPOINT_BEYOND_LOG: &str = "checkpoint.beyond-log";
    pub const CHECKPOINT_ROOT_MISMATCH: &str = "checkpoint.root-mismatch";
    pub const CHECKPOINT_MISNAMED: &str = "checkpoint.misnamed";
    pub const CHECKPOINT_INCONSISTENT: &str = "checkpoint.inconsistent";
    pub const TIMESTAMP_MISSING: &str = "timestamp.missing";
    pub const TIMESTAMP_NOT_ANCHORED: &str = "timestamp.not-anchored";
    pub const TIMESTAMP_ORPHAN: &str = "timestamp.orphan";
    pub const TIMESTAMP_EVENT_MISMATCH: &str = "timestamp.event-mismatch";
    pub const TIMESTAMP_BEFORE_SIGNING: &str = "timestamp.before-signing";

    /// Every code above.
    pub const ALL: &[&str] = &[
        LOG_UNREADABLE,
        LOG_SEGMENT_GAP,
        LOG_TORN_TAIL,
        LOG_NO_CHECKPOINT,
        LOG_UNCOVERED,
        LOG_SUMMARY,
        KEY_MISSING,
        KEY_UNTRUSTED,
        KEY_ROTATION_BROKEN,
        KEY_HANDOVER_MISSING,
        KEY_ROTATED,
        TRUST_NOT_ANCHORED,
        TRUST_RELIED_ON,
        EVENT_MALFORMED,
        EVENT_NOT_CANONICAL,
        EVENT_WRONG_STATION,
        EVENT_OUT_OF_ORDER,
        EVENT_DUPLICATE_KEY,
        EVENT_UNKNOWN_KIND,
        EVENT_BAD_PAYLOAD,
        CHECKPOINT_MALFORMED,
        CHECKPOINT_BAD_SIGNATURE,
        CHECKPOINT_WRONG_ORIGIN,
        CHECKPOINT_BEYOND_LOG,
        CHECKPOINT_ROOT_MISMATCH,
        CHECKPOINT_MISNAMED,
        CHECKPOINT_INCONSISTENT,
        TIMESTAMP_MISSING,
        TIMESTAMP_NOT_ANCHORED,
        TIMESTAMP_ORPHAN,
        TIMESTAMP_EVENT_MISMATCH,
        TIMESTAMP_BEFORE_SIGNING,
    ];
}

/// The outcome of checking one log.
#[derive(Debug, Default)]
pub struct LogCheck {
    pub station: Option<StationId>,
    /// The key in force at the end of the log (the first key, or the last rotation's new key).
    pub key: Option<VerifierKey>,
    pub events: u64,
    /// Checkpoint sizes whose signature and root verified.
    pub good_checkpoints: Vec<u64>,
    /// Checkpoint sizes with a verified time-stamp token.
    pub timestamped: Vec<u64>,
    pub report: Report,
    /// Per event: whether it is a `timestamped` event.
    about_time: Vec<bool>,
}

impl LogCheck {
    /// Integrity proven: no errors, and every event is under a verified checkpoint.
    pub fn integrity_proven(&self) -> bool {
        !self.report.has_errors()
            && self.events > 0
            && self.good_checkpoints.last() == Some(&self.events)
    }

    /// Time attested: a checkpoint with a verified token covers every event but the
    /// `timestamped` records logged after it (which are about time and need no token).
    pub fn time_attested(&self) -> bool {
        self.integrity_proven()
            && self
                .timestamped
                .iter()
                .any(|s| self.only_time_records(*s, self.events))
    }

    fn only_time_records(&self, from: u64, to: u64) -> bool {
        only_time_records(&self.about_time, from, to)
    }
}

/// Whether events `from..to` are all `timestamped` events.
fn only_time_records(about_time: &[bool], from: u64, to: u64) -> bool {
    let (from, to) = (from as usize, (to as usize).min(about_time.len()));
    from >= to || about_time[from..to].iter().all(|t| *t)
}

/// Where a custody log's pieces are: a station's log directory, or the log as a station
/// published it in an evidence store (docs/formats/store-layout.md).
#[derive(Debug, Clone)]
pub struct LogFiles {
    pub key: PathBuf,
    /// Read one after another, these give the events in order.
    pub events: Vec<PathBuf>,
    pub checkpoints: PathBuf,
    pub timestamps: PathBuf,
    /// Problems found while locating the pieces (e.g. a gap between published segments).
    pub report: Report,
}

impl LogFiles {
    /// A station's log directory (docs/formats/custody-log.md).
    pub fn station_dir(dir: &Path) -> Self {
        LogFiles {
            key: dir.join(layout::KEY_FILE),
            events: vec![dir.join(layout::EVENTS_FILE)],
            checkpoints: dir.join(layout::CHECKPOINTS_DIR),
            timestamps: dir.join(layout::TIMESTAMPS_DIR),
            report: Report::new(),
        }
    }

    /// A log published in a store: `<store>/stations/<station ID>/` with `keys/*.pub` (every
    /// key it used), `log/station.pub` (its first key) and `log/{segments,checkpoints,timestamps}/`.
    pub fn published(station_dir: &Path) -> Self {
        let mut report = Report::new();
        let first = station_dir.join("log").join(layout::KEY_FILE);
        // Logs published before `log/station.pub` existed: the only key under `keys/`.
        let key = if first.is_file() {
            first
        } else {
            let mut keys: Vec<PathBuf> = std::fs::read_dir(station_dir.join("keys"))
                .map(|rd| rd.flatten().map(|e| e.path()).collect())
                .unwrap_or_default();
            keys.sort();
            if keys.len() > 1 {
                report.warning(
                    code::KEY_MISSING,
                    station_dir.join("keys").display().to_string(),
                    format!(
                        "{} station keys published; checking with the first",
                        keys.len()
                    ),
                );
            }
            keys.into_iter()
                .next()
                .unwrap_or_else(|| station_dir.join("keys/(none)"))
        };
        let seg_dir = station_dir.join("log/segments");
        let mut segments: Vec<(u64, u64, PathBuf)> = std::fs::read_dir(&seg_dir)
            .map(|rd| {
                rd.flatten()
                    .filter_map(|e| {
                        let name = e.file_name().to_string_lossy().into_owned();
                        let (a, b) = name.strip_suffix(".jsonl")?.split_once('-')?;
                        Some((a.parse().ok()?, b.parse().ok()?, e.path()))
                    })
                    .collect()
            })
            .unwrap_or_default();
        segments.sort();
        let mut at = 0u64;
        for (from, to, path) in &segments {
            if *from != at {
                report.error(
                    code::LOG_SEGMENT_GAP,
                    path.display().to_string(),
                    format!("the segment starts at event #{from}, but the one before ends at #{at}: events are missing"),
                );
            }
            at = *to;
        }
        LogFiles {
            key,
            events: segments.into_iter().map(|(_, _, p)| p).collect(),
            checkpoints: station_dir.join("log/checkpoints"),
            timestamps: station_dir.join("log/timestamps"),
            report,
        }
    }
}

/// Check the custody log in `dir` against `trust`.
pub fn check_log_dir(dir: &Path, trust: &Trust) -> LogCheck {
    check_log(&LogFiles::station_dir(dir), trust)
}

/// Check a custody log, wherever its pieces are.
pub fn check_log(files: &LogFiles, trust: &Trust) -> LogCheck {
    let mut out = LogCheck::default();
    out.report.extend(files.report.clone());
    let r = &mut out.report;

    // The key: from the trust file when pinned by key, else from what is checked (not anchored).
    let key_path = &files.key;
    let dir_key = match std::fs::read_to_string(key_path) {
        Ok(s) => match VerifierKey::parse(&s) {
            Ok(k) => Some(k),
            Err(e) => {
                r.error(
                    code::KEY_MISSING,
                    key_path.display().to_string(),
                    e.to_string(),
                );
                None
            }
        },
        Err(e) => {
            r.error(
                code::KEY_MISSING,
                key_path.display().to_string(),
                format!("cannot read the station key: {e}"),
            );
            None
        }
    };
    out.station = dir_key
        .as_ref()
        .and_then(|k| checkpoint::station_of_origin(&k.name));

    // Events.
    let mut tree = MemoryTree::new();
    let mut timestamped_events: BTreeMap<u64, TimestampedPayload> = BTreeMap::new();
    // Per event: a `timestamped` event (a record about time, needing no token of its own).
    let mut about_time: Vec<bool> = Vec::new();
    let mut rotations: Vec<(u64, KeyRotatedPayload)> = Vec::new();
    let mut reader: Box<dyn Read> = Box::new(std::io::empty());
    let mut readable = true;
    for p in &files.events {
        match std::fs::File::open(p) {
            Ok(f) => reader = Box::new(reader.chain(f)),
            Err(e) => {
                readable = false;
                r.error(
                    code::LOG_UNREADABLE,
                    p.display().to_string(),
                    format!("cannot read the events: {e}"),
                );
            }
        }
    }
    if readable {
        let station = out.station.clone();
        read_events(
            BufReader::new(reader),
            station.as_ref(),
            &mut tree,
            r,
            |ev| {
                if ev.kind == EventKind::KeyRotated
                    && let Ok(p) = ev.payload::<KeyRotatedPayload>()
                {
                    rotations.push((ev.seq, p));
                }
                about_time.resize(ev.seq as usize, false);
                about_time.push(ev.kind == EventKind::Timestamped);
                if ev.kind == EventKind::Timestamped
                    && let Ok(p) = ev.payload::<TimestampedPayload>()
                {
                    timestamped_events.insert(p.checkpoint_size, p);
                }
            },
        );
    }
    out.events = tree.size();

    // The keys: the log's first key, then each rotation's new key (from the checkpoint after
    // the hand-over on). Trusting any key of the chain anchors all of them: each hand-over
    // checkpoint is signed by both its keys.
    let schedule = KeySchedule::build(dir_key, &rotations, r);
    let key = resolve_key(schedule.first().cloned(), &schedule.later(), trust, r);
    let schedule = schedule.with_first(key.clone());
    out.key = schedule.last().cloned();

    // Checkpoints, in size order.
    let checkpoints = read_dir_sorted(&files.checkpoints, r);
    let mut prev: Option<(u64, Sha256)> = None;
    let mut notes: HashMap<u64, Vec<u8>> = HashMap::new();
    for (size_from_name, path) in &checkpoints {
        let subject = format!("checkpoint {size_from_name}");
        let bytes = match std::fs::read(path) {
            Ok(b) => b,
            Err(e) => {
                r.error(
                    code::LOG_UNREADABLE,
                    subject,
                    format!("{}: {e}", path.display()),
                );
                continue;
            }
        };
        let (signer, cosigner) = schedule.signers_of(*size_from_name);
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
        out.good_checkpoints.push(cp.size);
        notes.insert(cp.size, bytes);
    }
    for (seq, _) in schedule.rotations() {
        let handover = seq + 1;
        if !out.good_checkpoints.contains(&handover)
            && out
                .good_checkpoints
                .last()
                .is_some_and(|last| *last > handover)
        {
            r.error(
                code::KEY_HANDOVER_MISSING,
                format!("event {seq}"),
                format!(
                    "no verified hand-over checkpoint of size {handover} signed by the old and the new key: the rotation is not vouched for"
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
    } else if let Some(last) = out.good_checkpoints.last()
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

    // Time-stamp tokens.
    let tokens = read_dir_sorted(&files.timestamps, r);
    let token_sizes: Vec<u64> = tokens.iter().map(|(s, _)| *s).collect();
    for (size, path) in &tokens {
        let subject = format!("timestamp {size}");
        let Some(note) = notes.get(size) else {
            r.warning(
                code::TIMESTAMP_ORPHAN,
                subject,
                "a token for a checkpoint that is missing or did not verify",
            );
            continue;
        };
        let der = match std::fs::read(path) {
            Ok(b) => b,
            Err(e) => {
                r.error(
                    code::LOG_UNREADABLE,
                    subject,
                    format!("{}: {e}", path.display()),
                );
                continue;
            }
        };
        if let Some(info) = check_checkpoint_token(&der, note, &trust.tsa, &subject, r) {
            if let Some(cp_time) = SignedCheckpoint::parse(note)
                .ok()
                .and_then(|s| s.checkpoint.time)
            {
                // The TSA's clock is the trusted one; a station clock running ahead of it by
                // more than the accuracy allowed is worth a look, not a failure.
                if info.gen_time + chrono::Duration::seconds(60) < cp_time {
                    r.warning(
                        code::TIMESTAMP_BEFORE_SIGNING,
                        &subject,
                        format!(
                            "the TSA time {} is before the station's signing time {cp_time}",
                            info.gen_time
                        ),
                    );
                }
            }
            if let Some(p) = timestamped_events.get(size) {
                let token_sha = Sha256::digest(&der);
                if p.token_sha256 != token_sha || p.checkpoint_sha256 != Sha256::digest(note) {
                    r.error(
                        code::TIMESTAMP_EVENT_MISMATCH,
                        &subject,
                        "the timestamped event names a different token or checkpoint",
                    );
                }
            }
            out.timestamped.push(*size);
        }
    }
    let mut prev = 0;
    for size in out.good_checkpoints.clone() {
        let needs_token = !only_time_records(&about_time, prev, size);
        prev = size;
        if needs_token && !token_sizes.contains(&size) {
            r.warning(
                code::TIMESTAMP_MISSING,
                format!("checkpoint {size}"),
                "integrity proven, time not attested: no RFC 3161 token",
            );
        }
    }
    if let Some(k) = &key {
        r.info(
            code::TRUST_RELIED_ON,
            "station key",
            format!("{k} (fingerprint SHA-256 {})", k.fingerprint()),
        );
    }
    for (seq, k) in schedule.rotations() {
        r.info(
            code::KEY_ROTATED,
            format!("event {seq}"),
            format!(
                "the station key was rotated to {k} (fingerprint SHA-256 {}); it signs the checkpoints after size {}",
                k.fingerprint(),
                seq + 1
            ),
        );
    }
    r.info(
        code::LOG_SUMMARY,
        "log",
        format!(
            "{} event(s), {} verified checkpoint(s), {} time-stamped",
            out.events,
            out.good_checkpoints.len(),
            out.timestamped.len()
        ),
    );
    out.about_time = about_time;
    out
}

/// Which key signs which checkpoints: the first key until the first rotation's hand-over
/// checkpoint (which both sign), the new key after it, and so on.
#[derive(Debug, Default)]
pub(crate) struct KeySchedule {
    first: Option<VerifierKey>,
    /// (seq of the `key-rotated` event, the new key), in log order.
    rotations: Vec<(u64, VerifierKey)>,
}

impl KeySchedule {
    /// From a package's point of view: the rotations it carries (proven under its checkpoint)
    /// must lead to `current`, the key that signs it; they make the earlier keys good for the
    /// earlier checkpoints.
    pub(crate) fn leading_to(
        current: Option<&VerifierKey>,
        rotations: &[(u64, KeyRotatedPayload)],
        r: &mut Report,
    ) -> Self {
        let first = match rotations.first() {
            Some((_, p)) => VerifierKey::parse(&p.old_key).ok(),
            None => current.cloned(),
        };
        let out = Self::build(first, rotations, r);
        if let (Some(want), Some(got)) = (current, out.last())
            && want != got
        {
            r.error(
                code::KEY_ROTATION_BROKEN,
                "station key",
                format!("the key rotations lead to {got}, but the package is signed by {want}"),
            );
        }
        out
    }

    fn build(
        first: Option<VerifierKey>,
        rotations: &[(u64, KeyRotatedPayload)],
        r: &mut Report,
    ) -> Self {
        let mut out = KeySchedule {
            first,
            rotations: Vec::new(),
        };
        for (seq, p) in rotations {
            let subject = format!("event {seq}");
            let Some(current) = out.last().cloned() else {
                break;
            };
            let old = VerifierKey::parse(&p.old_key).ok();
            let new = match VerifierKey::parse(&p.new_key) {
                Ok(k) => k,
                Err(e) => {
                    r.error(
                        code::KEY_ROTATION_BROKEN,
                        subject,
                        format!("the new key: {e}"),
                    );
                    break;
                }
            };
            if old.as_ref() != Some(&current) {
                r.error(
                    code::KEY_ROTATION_BROKEN,
                    subject,
                    format!(
                        "the rotation retires {} but the key in force is {current}",
                        p.old_key
                    ),
                );
                break;
            }
            if new.name != current.name {
                r.error(
                    code::KEY_ROTATION_BROKEN,
                    subject,
                    format!(
                        "the new key names {:?}, not the station {:?}",
                        new.name, current.name
                    ),
                );
                break;
            }
            out.rotations.push((*seq, new));
        }
        out
    }

    fn first(&self) -> Option<&VerifierKey> {
        self.first.as_ref()
    }

    fn last(&self) -> Option<&VerifierKey> {
        self.rotations.last().map(|(_, k)| k).or(self.first())
    }

    fn later(&self) -> Vec<VerifierKey> {
        self.rotations.iter().map(|(_, k)| k.clone()).collect()
    }

    fn rotations(&self) -> impl Iterator<Item = (u64, &VerifierKey)> {
        self.rotations.iter().map(|(s, k)| (*s, k))
    }

    /// Replace the first key (by the pinned one when the trust file says so).
    fn with_first(mut self, first: Option<VerifierKey>) -> Self {
        self.first = first;
        self
    }

    /// The key that must sign a checkpoint of `size` events, and at a hand-over the new key
    /// that must sign it too.
    pub(crate) fn signers_of(&self, size: u64) -> (Option<&VerifierKey>, Option<&VerifierKey>) {
        let mut key = self.first();
        for (seq, new) in &self.rotations {
            if size == seq + 1 {
                return (key, Some(new));
            }
            if size > seq + 1 {
                key = Some(new);
            }
        }
        (key, None)
    }
}

/// Choose the key to verify with and say how it is anchored. `later` are keys the log rotated
/// to: trusting one of them anchors the first key too (the hand-overs are signed by both).
pub(crate) fn resolve_key(
    dir_key: Option<VerifierKey>,
    later: &[VerifierKey],
    trust: &Trust,
    r: &mut Report,
) -> Option<VerifierKey> {
    if !trust.is_anchored() {
        if dir_key.is_some() {
            r.warning(
                code::TRUST_NOT_ANCHORED,
                "station key",
                "no trust file given: the key was taken from the log itself; compare its \
                 fingerprint with the collection record",
            );
        }
        return dir_key;
    }
    match dir_key {
        Some(k) if trust.trusts_station_key(&k) => Some(k),
        Some(k) if later.iter().any(|l| trust.trusts_station_key(l)) => Some(k),
        Some(k) => {
            let pinned = trust.station_keys_named(&k.name);
            r.error(
                code::KEY_UNTRUSTED,
                "station key",
                format!(
                    "the log's key {} (fingerprint {}) is not in the trust file",
                    k,
                    k.fingerprint()
                ),
            );
            // Verify against the pinned key of that name if there is one, so every
            // re-signed checkpoint shows up as a bad signature.
            pinned.into_iter().next().or(Some(k))
        }
        None => None,
    }
}

/// Check an RFC 3161 response over a checkpoint note's bytes (SHA-256 imprint); a chain that
/// verifies to an unpinned root is a warning, any failure an error with its own code.
pub fn check_checkpoint_token(
    der: &[u8],
    note: &[u8],
    tsa: &timestamp::TsaTrust,
    subject: &str,
    r: &mut Report,
) -> Option<timestamp::TokenInfo> {
    let imprint = Sha256::digest(note);
    let expect = Expectation {
        algorithm: ImprintAlgorithm::Sha256,
        imprint: &imprint.0,
        nonce: None,
        policy: None,
    };
    match timestamp::check_response(der, &expect, tsa) {
        Ok(info) => {
            if let Anchor::Unanchored { root_sha256 } = &info.anchor {
                r.warning(
                    code::TIMESTAMP_NOT_ANCHORED,
                    subject,
                    format!(
                        "the TSA chain verifies but its root {} is not pinned by a trust file",
                        root_sha256
                            .map(|s| s.to_string())
                            .unwrap_or("(not included)".into())
                    ),
                );
            }
            Some(info)
        }
        Err(e) => {
            r.error(e.code(), subject, e.to_string());
            None
        }
    }
}

/// Parse a checkpoint and check its signature; findings go to `r`.
pub fn check_checkpoint(
    bytes: &[u8],
    key: Option<&VerifierKey>,
    subject: &str,
    r: &mut Report,
) -> Option<SignedCheckpoint> {
    let sc = match SignedCheckpoint::parse(bytes) {
        Ok(sc) => sc,
        Err(e) => {
            r.error(code::CHECKPOINT_MALFORMED, subject, e.to_string());
            return None;
        }
    };
    let Some(key) = key else {
        r.error(
            code::CHECKPOINT_BAD_SIGNATURE,
            subject,
            "no station key to verify the signature with",
        );
        return None;
    };
    if sc.checkpoint.origin != key.name {
        r.error(
            code::CHECKPOINT_WRONG_ORIGIN,
            subject,
            format!(
                "origin {:?} is not the station's {:?}",
                sc.checkpoint.origin, key.name
            ),
        );
        return None;
    }
    if !sc.verify(key) {
        r.error(
            code::CHECKPOINT_BAD_SIGNATURE,
            subject,
            format!("no valid signature by {} ({})", key.name, key.fingerprint()),
        );
        return None;
    }
    Some(sc)
}

/// Read events line by line into `tree`, reporting every problem. A line that cannot be parsed
/// still occupies its leaf (its bytes are what the checkpoint covers).
pub fn read_events(
    reader: impl Read,
    station: Option<&StationId>,
    tree: &mut MemoryTree,
    r: &mut Report,
    mut each: impl FnMut(&CustodyEvent),
) {
    let mut reader = BufReader::with_capacity(1 << 16, reader);
    let mut line = Vec::with_capacity(1024);
    let mut keys: HashMap<[u8; 16], u64> = HashMap::new();
    let mut seq = 0u64;
    loop {
        line.clear();
        match reader.read_until(b'\n', &mut line) {
            Ok(0) => break,
            Ok(_) => {}
            Err(e) => {
                r.error(code::LOG_UNREADABLE, format!("event #{seq}"), e.to_string());
                break;
            }
        }
        if line.last() != Some(&b'\n') {
            r.warning(
                code::LOG_TORN_TAIL,
                format!("after event #{}", seq.saturating_sub(1)),
                format!(
                    "{} byte(s) after the last complete event (an interrupted append)",
                    line.len()
                ),
            );
            break;
        }
        let entry = &line[..line.len() - 1];
        tree.push_entry(entry);
        let subject = format!("event #{seq}");
        match CustodyEvent::parse(entry) {
            Ok(ev) => {
                if let Some(st) = station
                    && &ev.station != st
                {
                    r.error(
                        code::EVENT_WRONG_STATION,
                        &subject,
                        format!("belongs to station {}, not {st}", ev.station),
                    );
                }
                if ev.seq != seq {
                    r.error(
                        code::EVENT_OUT_OF_ORDER,
                        &subject,
                        format!(
                            "says it is event #{} (events moved, dropped or inserted)",
                            ev.seq
                        ),
                    );
                }
                let kh = key_hash(&ev.key);
                if let Some(first) = keys.insert(kh, seq) {
                    r.error(
                        code::EVENT_DUPLICATE_KEY,
                        &subject,
                        format!(
                            "repeats the idempotency key of event #{first}: {:?}",
                            ev.key
                        ),
                    );
                }
                if !ev.kind.is_known() {
                    r.warning(
                        code::EVENT_UNKNOWN_KIND,
                        &subject,
                        format!("kind {:?} is unknown to this verifier", ev.kind.as_str()),
                    );
                } else if let Err(e) = ev.check_payload() {
                    r.error(code::EVENT_BAD_PAYLOAD, &subject, e.to_string());
                }
                each(&ev);
            }
            Err(EventError::NotCanonical) => r.error(
                code::EVENT_NOT_CANONICAL,
                &subject,
                "the bytes are not the canonical encoding of the event",
            ),
            Err(e) => r.error(code::EVENT_MALFORMED, &subject, e.to_string()),
        }
        seq += 1;
    }
}

fn key_hash(key: &str) -> [u8; 16] {
    let d = Sha256::digest(key.as_bytes());
    let mut out = [0u8; 16];
    out.copy_from_slice(&d.0[..16]);
    out
}

/// `(size, path)` of the `<size>.note` / `<size>.tsr` files in `dir`, by size. A missing
/// directory is empty; a stray file is reported.
fn read_dir_sorted(dir: &Path, r: &mut Report) -> Vec<(u64, std::path::PathBuf)> {
    let mut out = Vec::new();
    let entries = match std::fs::read_dir(dir) {
        Ok(e) => e,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return out,
        Err(e) => {
            r.error(
                code::LOG_UNREADABLE,
                dir.display().to_string(),
                e.to_string(),
            );
            return out;
        }
    };
    for entry in entries.flatten() {
        let name = entry.file_name();
        let name = name.to_string_lossy();
        match layout::size_of_file(&name) {
            Some(size) => out.push((size, entry.path())),
            None if name.starts_with('.') => {}
            None => r.warning(
                code::CHECKPOINT_MISNAMED,
                entry.path().display().to_string(),
                "a file that is not a checkpoint or token; ignored",
            ),
        }
    }
    out.sort();
    out
}
