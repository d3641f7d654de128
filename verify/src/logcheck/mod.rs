//! Checking a custody log directory (see [`crate::layout`]): every event, every checkpoint,
//! every time-stamp token. Every problem becomes a finding; nothing stops the check early.
//!
//! Every file is read beneath the directory checked, never through a link, and bounded
//! ([`crate::beneath`]); events are read a bounded line at a time; nothing is allocated from a
//! number the log claims.

mod events;
mod keys;
mod signed;

pub use events::read_events;
pub(crate) use events::{Line, read_line, unknown_parts};
pub(crate) use keys::{Anchoring, KeySchedule, first_key_for};
pub use signed::{CheckedToken, check_checkpoint, check_checkpoint_token};

use crate::beneath::{self, Beneath, Kind, ReadError};
use crate::checkpoint::{self, SignedCheckpoint};
use crate::event::EventKind;
use crate::event::payload::{KeyRotatedPayload, TimestampedPayload};
use crate::expect::{self, Expectations, Forks};
use crate::finding::{Report, file};
use crate::id::{Sha256, StationId};
use crate::layout;
use crate::merkle::{self, MemoryTree};
use crate::note::VerifierKey;
use crate::timestamp::MAX_DER_LEN;
use crate::trust::Trust;
use crate::verdict::{self, TsaRoots, Verdict};
use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::io::Read;
use std::path::{Path, PathBuf};

/// A verifier key file is one line.
pub const MAX_KEY_BYTES: u64 = 4096;

/// Finding codes of this module (documented in docs/findings.md).
pub mod code {
    pub const LOG_UNREADABLE: &str = "log.unreadable";
    pub const LOG_SEGMENT_GAP: &str = "log.segment-gap";
    pub const LOG_TORN_TAIL: &str = "log.torn-tail";
    pub const LOG_NO_CHECKPOINT: &str = "log.no-checkpoint";
    pub const LOG_UNCOVERED: &str = "log.uncovered-events";
    pub const LOG_SUMMARY: &str = "log.summary";
    pub const LOG_FOREIGN_FILE: &str = "log.foreign-file";
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
    pub const EVENT_UNKNOWN_ROLE: &str = "event.unknown-role";
    pub const EVENT_UNKNOWN_SUBJECT: &str = "event.unknown-subject";
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
        LOG_FOREIGN_FILE,
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
        EVENT_UNKNOWN_ROLE,
        EVENT_UNKNOWN_SUBJECT,
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

/// The finding for a file of the input that was not read: absent (`missing`), refused for what
/// it is, too large, or unreadable.
pub(crate) fn refused(r: &mut Report, missing: &'static str, subject: &str, e: &ReadError) {
    let c = match e {
        ReadError::NotFound => missing,
        ReadError::NotRegular(_) | ReadError::Link | ReadError::Changed => file::code::NOT_REGULAR,
        ReadError::TooLarge { .. } => file::code::TOO_LARGE,
        ReadError::BadPath(_) | ReadError::Io(_) => file::code::UNREADABLE,
    };
    r.error(c, subject, e.to_string());
}

/// The outcome of checking one log.
#[derive(Debug)]
pub struct LogCheck {
    pub station: Option<StationId>,
    /// The key in force at the end of the log (the first key, or the last rotation's new key).
    pub key: Option<VerifierKey>,
    pub events: u64,
    /// Checkpoint sizes whose signature and root verified.
    pub good_checkpoints: Vec<u64>,
    /// Checkpoint sizes with a verified token whose chain ends at a pinned root.
    pub timestamped: Vec<u64>,
    pub verdict: Verdict,
    pub report: Report,
}

impl LogCheck {
    /// Integrity proven: no errors, every event under a verified checkpoint, every signing key
    /// reached from a key the receiver pinned.
    pub fn integrity_proven(&self) -> bool {
        self.verdict.integrity == verdict::Integrity::Proven
    }

    /// No errors and every event sealed, whether or not the key is pinned.
    pub fn integrity_consistent(&self) -> bool {
        self.verdict.integrity != verdict::Integrity::NotProven
    }

    /// Time attested: integrity proven, and a checkpoint with a token anchored at a pinned root
    /// covers every event but the `timestamped` records logged after it.
    pub fn time_attested(&self) -> bool {
        self.verdict.time == verdict::Time::Attested
    }
}

/// Whether events `from..to` are all `timestamped` events.
fn only_time_records(about_time: &[bool], from: u64, to: u64) -> bool {
    let (from, to) = (from as usize, (to as usize).min(about_time.len()));
    from >= to || about_time[from..to].iter().all(|t| *t)
}

/// Where a custody log's pieces are, relative to `root`: a station's log directory, or the log
/// as a station published it in an evidence store (docs/formats/store-layout.md).
#[derive(Debug, Clone)]
pub struct LogFiles {
    pub root: PathBuf,
    pub key: String,
    /// Read one after another, these give the events in order.
    pub events: Vec<String>,
    pub checkpoints: String,
    pub timestamps: String,
    /// The names each folder of the log may hold (`""`: the root); anything else there is not
    /// part of a custody log, is not checked, and is reported.
    pub known: Vec<(String, Vec<String>)>,
    /// Problems found while locating the pieces (e.g. a gap between published segments).
    pub report: Report,
}

fn names(list: &[&str]) -> Vec<String> {
    list.iter().map(|s| s.to_string()).collect()
}

impl LogFiles {
    /// A station's log directory (docs/formats/custody-log.md).
    pub fn station_dir(dir: &Path) -> Self {
        LogFiles {
            root: dir.to_path_buf(),
            key: layout::KEY_FILE.into(),
            events: vec![layout::EVENTS_FILE.into()],
            checkpoints: layout::CHECKPOINTS_DIR.into(),
            timestamps: layout::TIMESTAMPS_DIR.into(),
            known: vec![(
                String::new(),
                names(&[
                    layout::KEY_FILE,
                    layout::EVENTS_FILE,
                    layout::CHECKPOINTS_DIR,
                    layout::TIMESTAMPS_DIR,
                    "quarantine",
                ]),
            )],
            report: Report::new(),
        }
    }

    /// A log published in a store: `<store>/stations/<station ID>/` with `keys/*.pub` (every
    /// key it used), `log/station.pub` (its first key) and `log/{segments,checkpoints,timestamps}/`.
    pub fn published(station_dir: &Path) -> Self {
        let mut report = Report::new();
        let dir = Beneath::open(station_dir);
        let list = |rel: &str| -> Vec<beneath::Entry> {
            dir.as_ref()
                .ok()
                .and_then(|d| d.list(Some(rel)).ok())
                .unwrap_or_default()
        };
        let first = format!("log/{}", layout::KEY_FILE);
        let has_first = dir.as_ref().is_ok_and(|d| d.kind(&first).is_some());
        // Logs published before `log/station.pub` existed: the only key under `keys/`.
        let key = if has_first {
            first
        } else {
            let keys = list("keys");
            if keys.len() > 1 {
                report.warning(
                    code::KEY_MISSING,
                    "keys/",
                    format!(
                        "{} station keys published; checking with the first",
                        keys.len()
                    ),
                );
            }
            keys.first()
                .map(|e| format!("keys/{}", e.path))
                .unwrap_or_else(|| "keys/(none)".into())
        };
        let mut segments: Vec<(u64, u64, String)> = list("log/segments")
            .into_iter()
            .filter_map(|e| {
                let (a, b) = e.path.strip_suffix(".jsonl")?.split_once('-')?;
                Some((
                    a.parse().ok()?,
                    b.parse().ok()?,
                    format!("log/segments/{}", e.path),
                ))
            })
            .collect();
        segments.sort();
        let mut at = 0u64;
        for (from, to, path) in &segments {
            if *from != at {
                report.error(
                    code::LOG_SEGMENT_GAP,
                    path,
                    format!("the segment starts at event #{from}, but the one before ends at #{at}: events are missing"),
                );
            }
            at = *to;
        }
        LogFiles {
            root: station_dir.to_path_buf(),
            key,
            events: segments.into_iter().map(|(_, _, p)| p).collect(),
            checkpoints: "log/checkpoints".into(),
            timestamps: "log/timestamps".into(),
            known: vec![
                (String::new(), names(&["keys", "log", "records"])),
                (
                    "log".into(),
                    names(&[layout::KEY_FILE, "segments", "checkpoints", "timestamps"]),
                ),
            ],
            report,
        }
    }
}

/// Check the custody log in `dir` against `trust`.
pub fn check_log_dir(dir: &Path, trust: &Trust) -> LogCheck {
    check_log(&LogFiles::station_dir(dir), trust, &Expectations::default())
}

/// What the events say that the rest of the check needs.
#[derive(Default)]
struct EventFacts {
    /// Per leaf: whether it is a `timestamped` event (a record about time, needing no token).
    about_time: Vec<bool>,
    timestamped: BTreeMap<u64, TimestampedPayload>,
    rotations: Vec<(u64, KeyRotatedPayload)>,
}

/// What the steps of a log check established, for the verdict.
#[derive(Default)]
struct Established {
    station: Option<StationId>,
    schedule: KeySchedule,
    tree: MemoryTree,
    facts: EventFacts,
    good: Vec<u64>,
    timestamped: Vec<u64>,
    roots: TsaRoots,
    /// Every key whose signatures count is reached from the receiver's pins.
    anchored_all: bool,
    /// The key that signed the latest verified checkpoint.
    relied: Option<VerifierKey>,
}

/// Check a custody log, wherever its pieces are, holding it to what the receiver already holds.
pub fn check_log(files: &LogFiles, trust: &Trust, expect: &Expectations) -> LogCheck {
    let mut r = files.report.clone();
    let mut e = Established::default();
    match Beneath::open(&files.root) {
        Err(err) => r.error(
            code::LOG_UNREADABLE,
            files.root.display().to_string(),
            format!("cannot open the directory: {err}"),
        ),
        Ok(dir) => establish(&dir, files, trust, expect, &mut e, &mut r),
    }
    finish(r, e)
}

/// The checks, one after another: key, events, checkpoints and key anchoring, what the
/// receiver holds, tokens.
fn establish(
    dir: &Beneath,
    files: &LogFiles,
    trust: &Trust,
    expect: &Expectations,
    e: &mut Established,
    r: &mut Report,
) {
    foreign_files(dir, files, r);
    let dir_key = read_key(dir, &files.key, r);
    e.station = dir_key
        .as_ref()
        .and_then(|k| checkpoint::station_of_origin(&k.name));
    if !read_all_events(dir, files, e.station.as_ref(), &mut e.tree, &mut e.facts, r) {
        // Without the events nothing else can be judged; the error says why.
        return;
    }
    e.schedule = KeySchedule::build(dir_key, &e.facts.rotations, r);
    let checked = check_checkpoints(dir, files, &e.schedule, trust, &e.tree, r);
    let anchoring = Anchoring::of(&e.schedule, &checked.handover_ok, trust);
    e.anchored_all = anchoring.require(&e.schedule, &checked.used, &checked.handover_ok, r);
    e.relied = checked
        .used
        .last()
        .and_then(|i| e.schedule.chain().get(*i).map(|k| (*k).clone()));
    // A held checkpoint counts only under a key the receiver's pins reach (or, none pinned, the
    // log's first key and those it handed over to).
    let keys = anchoring.trusted_keys(&e.schedule, &checked.handover_ok, 0);
    expect::hold_log(
        expect,
        &e.tree,
        |sc| keys.iter().any(|k| sc.verify(k)),
        &mut Forks::default(),
        r,
    );
    e.timestamped = check_tokens(dir, trust, &checked, &e.facts, &mut e.roots, r);
    e.good = checked.good;
    report_keys(&e.schedule, &anchoring, trust, r);
}

/// The verdict from what the check established.
fn finish(mut r: Report, e: Established) -> LogCheck {
    let Established {
        station,
        schedule,
        tree,
        facts,
        good,
        timestamped,
        roots,
        anchored_all,
        relied,
    } = e;
    let events = tree.size();
    let complete = if events == 0 {
        Err("the log holds no events".to_string())
    } else if good.last() != Some(&events) {
        Err(format!(
            "{} event(s) after the last verified checkpoint are not sealed",
            events - good.last().copied().unwrap_or(0)
        ))
    } else {
        Ok(())
    };
    let key_fp = relied
        .as_ref()
        .or(schedule.first())
        .map(VerifierKey::fingerprint);
    let (integrity, integrity_reason) = verdict::integrity(&r, complete, key_fp, anchored_all);
    let covered = timestamped
        .iter()
        .any(|s| only_time_records(&facts.about_time, *s, events));
    let (time, time_reason) = verdict::time(
        integrity,
        covered,
        !timestamped.is_empty() || !roots.unpinned.is_empty(),
        &roots,
    );
    r.info(
        code::LOG_SUMMARY,
        "log",
        format!(
            "{events} event(s), {} verified checkpoint(s), {} time-stamped under a pinned TSA root",
            good.len(),
            timestamped.len()
        ),
    );
    LogCheck {
        station,
        key: schedule.last().cloned(),
        events,
        good_checkpoints: good,
        timestamped,
        verdict: Verdict {
            integrity,
            integrity_reason,
            time,
            time_reason,
            station_key: key_fp,
            station_key_pinned: anchored_all,
            tsa_roots: roots,
            uninterpreted: verdict::uninterpreted(&r),
        },
        report: r,
    }
}

/// Anything in the log's folders that is not part of a custody log: a log check says nothing
/// about it, and a reader who took the folder for a package must not think otherwise.
fn foreign_files(dir: &Beneath, files: &LogFiles, r: &mut Report) {
    for (folder, allowed) in &files.known {
        let rel = (!folder.is_empty()).then_some(folder.as_str());
        let Ok(entries) = dir.list(rel) else { continue };
        for e in entries {
            if e.path.starts_with('.') || (e.text && allowed.contains(&e.path)) {
                continue;
            }
            let path = match rel {
                Some(f) => format!("{f}/{}", e.path),
                None => e.path.clone(),
            };
            r.error(
                code::LOG_FOREIGN_FILE,
                path,
                "not part of a custody log: checked as a log, this folder says nothing about it (a disclosure package has MANIFEST.json)",
            );
        }
    }
}

fn read_key(dir: &Beneath, rel: &str, r: &mut Report) -> Option<VerifierKey> {
    match dir.read(rel, MAX_KEY_BYTES) {
        Ok(b) => match std::str::from_utf8(&b)
            .map_err(|_| "not UTF-8".to_string())
            .and_then(|s| VerifierKey::parse(s).map_err(|e| e.to_string()))
        {
            Ok(k) => Some(k),
            Err(e) => {
                r.error(code::KEY_MISSING, rel, e);
                None
            }
        },
        Err(e) => {
            refused(r, code::KEY_MISSING, rel, &e);
            None
        }
    }
}

/// Whether every piece of the events could be opened.
fn read_all_events(
    dir: &Beneath,
    files: &LogFiles,
    station: Option<&StationId>,
    tree: &mut MemoryTree,
    facts: &mut EventFacts,
    r: &mut Report,
) -> bool {
    for p in &files.events {
        match dir.kind(p) {
            Some(Kind::Regular) => {}
            Some(k) => {
                refused(r, code::LOG_UNREADABLE, p, &ReadError::NotRegular(k));
                return false;
            }
            None => {
                refused(r, code::LOG_UNREADABLE, p, &ReadError::NotFound);
                return false;
            }
        }
    }
    let reader = Pieces {
        dir,
        paths: &files.events,
        next: 0,
        current: None,
    };
    read_events(reader, station, tree, r, |_, ev| {
        let Some(ev) = ev else {
            facts.about_time.push(false);
            return;
        };
        facts.about_time.push(ev.kind == EventKind::Timestamped);
        if ev.kind == EventKind::KeyRotated
            && let Ok(p) = ev.payload::<KeyRotatedPayload>()
        {
            facts.rotations.push((ev.seq, p));
        }
        if ev.kind == EventKind::Timestamped
            && let Ok(p) = ev.payload::<TimestampedPayload>()
        {
            facts.timestamped.insert(p.checkpoint_size, p);
        }
    });
    true
}

/// The pieces of the events (a log's one file, or a published log's segments) read one after
/// another, each opened only when the one before is done: a station's years of segments must
/// not need as many open files.
struct Pieces<'a> {
    dir: &'a Beneath,
    paths: &'a [String],
    next: usize,
    current: Option<std::fs::File>,
}

impl Read for Pieces<'_> {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        loop {
            if let Some(f) = &mut self.current {
                let n = f.read(buf)?;
                if n > 0 || buf.is_empty() {
                    return Ok(n);
                }
                self.current = None;
            }
            let Some(p) = self.paths.get(self.next) else {
                return Ok(0);
            };
            self.next += 1;
            let (f, _) = self
                .dir
                .open_file(p)
                .map_err(|e| std::io::Error::other(format!("{p}: {e}")))?;
            self.current = Some(f);
        }
    }
}

/// What the checkpoints established.
struct Checked {
    good: Vec<u64>,
    /// The bytes of each verified checkpoint, for its token.
    notes: HashMap<u64, Vec<u8>>,
    /// Per rotation: its hand-over checkpoint verified under both keys.
    handover_ok: Vec<bool>,
    /// Indices (in the key chain) of the keys whose signatures count.
    used: BTreeSet<usize>,
    token_files: Vec<(u64, String)>,
}

fn check_checkpoints(
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

fn check_tokens(
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

/// Say which keys the verdict rests on and how each is anchored.
pub(crate) fn report_keys(
    schedule: &KeySchedule,
    anchoring: &Anchoring,
    trust: &Trust,
    r: &mut Report,
) {
    let chain = schedule.chain();
    if trust.stations.is_empty() && !chain.is_empty() {
        r.warning(
            code::TRUST_NOT_ANCHORED,
            "station key",
            "not pinned: the key was taken from what is checked, so integrity is only consistent with it; compare its fingerprint with the collection record (提取笔录) and pin it with --trust",
        );
    }
    for (i, k) in chain.iter().enumerate() {
        let how = if !anchoring.pinning {
            "not pinned"
        } else if trust.trusts_station_key(k) {
            "pinned by the trust file"
        } else if anchoring.is_anchored(i) {
            "anchored through a verified hand-over to a pinned key"
        } else {
            "NOT anchored"
        };
        r.info(
            code::TRUST_RELIED_ON,
            "station key",
            format!("{k} (fingerprint SHA-256 {}): {how}", k.fingerprint()),
        );
    }
    for (seq, k) in schedule.rotations() {
        r.info(
            code::KEY_ROTATED,
            format!("event #{seq}"),
            format!(
                "the station key was rotated to {k} (fingerprint SHA-256 {}); it signs the checkpoints after size {}",
                k.fingerprint(),
                seq + 1
            ),
        );
    }
}

/// `(size, relative path)` of the `<size>.note` / `<size>.tsr` files in `rel`, by size. A
/// missing directory is empty; a stray file is reported, and so is anything not a regular file.
fn sized_files(dir: &Beneath, rel: &str, r: &mut Report) -> Vec<(u64, String)> {
    let mut out = Vec::new();
    let entries = match dir.list(Some(rel)) {
        Ok(e) => e,
        Err(ReadError::NotFound) => return out,
        Err(e) => {
            refused(r, code::LOG_UNREADABLE, rel, &e);
            return out;
        }
    };
    for entry in entries {
        let path = format!("{rel}/{}", entry.path);
        match layout::size_of_file(&entry.path) {
            Some(size) if entry.kind == Kind::Regular => out.push((size, path)),
            Some(_) => r.error(
                file::code::NOT_REGULAR,
                &path,
                format!("is {}, not a regular file: not read", entry.kind.describe()),
            ),
            None if entry.path.starts_with('.') => {}
            None => r.warning(
                code::CHECKPOINT_MISNAMED,
                &path,
                "a file that is not a checkpoint or token; ignored",
            ),
        }
    }
    out.sort();
    out
}
