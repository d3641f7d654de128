//! Checking a custody log directory (see [`crate::layout`]): every event, every checkpoint,
//! every time-stamp token. Every problem becomes a finding; nothing stops the check early.
//!
//! Every file is read beneath the directory checked, never through a link, and bounded
//! ([`crate::beneath`]); events are read a bounded line at a time; nothing is allocated from a
//! number the log claims.

mod checkpoints;
mod events;
mod files;
mod keys;
mod signed;

use checkpoints::{check_checkpoints, check_tokens};
pub use events::read_events;
pub(crate) use events::{Line, read_line, unknown_parts};
pub use files::LogFiles;
use files::{Pieces, foreign_files};
pub(crate) use keys::{Anchoring, KeySchedule, first_key_for};
pub use signed::{CheckedToken, check_checkpoint, check_checkpoint_token};

use crate::beneath::{Beneath, Kind, ReadError};
use crate::checkpoint;
use crate::event::EventKind;
use crate::event::payload::{KeyRotatedPayload, TimestampedPayload};
use crate::expect::{self, Expectations, Forks};
use crate::finding::{Report, file};
use crate::id::StationId;
use crate::merkle::MemoryTree;
use crate::note::VerifierKey;
use crate::trust::Trust;
use crate::verdict::{self, TsaRoots, Verdict};
use std::collections::BTreeMap;
use std::path::Path;

/// A verifier key file is one line.
pub const MAX_KEY_BYTES: u64 = 4096;

/// Finding codes of this module (documented in docs/findings.md).
pub mod code {
    /// The codes of parts of a later version (events of unknown kinds, roles or subjects):
    /// proven as bytes, but what they say is not judged.
    pub const LATER_VERSION: &[&str] = &[
        EVENT_UNKNOWN_KIND,
        EVENT_UNKNOWN_ROLE,
        EVENT_UNKNOWN_SUBJECT,
    ];
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
            uninterpreted: verdict::uninterpreted(&r, &[code::LATER_VERSION]),
        },
        report: r,
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
    read_events(reader, station, tree, r, |pos, ev| {
        let Some(ev) = ev else {
            facts.about_time.push(false);
            return;
        };
        facts.about_time.push(ev.kind == EventKind::Timestamped);
        if ev.kind == EventKind::KeyRotated
            && let Ok(p) = ev.payload::<KeyRotatedPayload>()
        {
            // By position, not by the `seq` the event claims (which may be anything; a
            // mismatch is its own finding): the hand-over is the checkpoint of position + 1.
            facts.rotations.push((pos, p));
        }
        if ev.kind == EventKind::Timestamped
            && let Ok(p) = ev.payload::<TimestampedPayload>()
        {
            facts.timestamped.insert(p.checkpoint_size, p);
        }
    });
    true
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
                seq.saturating_add(1)
            ),
        );
    }
}
