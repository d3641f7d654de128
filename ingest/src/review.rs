//! Legal review: `evidock verify` re-reads what the station and the evidence store hold and
//! checks it against the custody log — every original and derivative re-hashed, every record
//! against its `acquired` event, every link against a registered case — collecting every
//! finding. Long runs resume: each item's findings are appended to a progress file as it is
//! checked, and a rerun of the same scope skips what is there.

use crate::cases::Cases;
use crate::cases::index::Item;
use crate::station::Station;
use evidock_store::objects::layout;
use evidock_verify::event::payload::TranscodedPayload;
use evidock_verify::event::{CustodyEvent, EventKind};
use evidock_verify::finding::{Finding, Level, Report, store::code};
use evidock_verify::id::{EvidenceId, Sha256};
use evidock_verify::record::EvidenceRecord;
use serde::{Deserialize, Serialize};
use std::collections::{BTreeMap, BTreeSet};
use std::io::Write as _;

/// What to check.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Scope {
    All,
    Case(String),
    Items(Vec<EvidenceId>),
}

impl Scope {
    /// As the `verified` event names it.
    pub fn describe(&self) -> String {
        match self {
            Scope::All => "all".into(),
            Scope::Case(c) => format!("case {c}"),
            Scope::Items(ids) => ids.iter().map(|i| i.as_str()).collect::<Vec<_>>().join(" "),
        }
    }
}

/// One item's findings, as kept in the progress file.
#[derive(Debug, Serialize, Deserialize)]
struct Done {
    evidence: EvidenceId,
    bytes: u64,
    findings: Vec<StoredFinding>,
}

#[derive(Debug, Serialize, Deserialize)]
struct StoredFinding {
    code: String,
    level: Level,
    subject: String,
    message: String,
}

/// The outcome of a review.
#[derive(Debug, Serialize)]
pub struct Review {
    pub scope: String,
    pub items: u64,
    pub bytes: u64,
    /// Items taken from an interrupted run's progress file.
    pub resumed: u64,
    pub report: Report,
}

fn leak(code: &str) -> &'static str {
    // Codes read back from a progress file map onto the known constants.
    code::ALL
        .iter()
        .chain(evidock_verify::logcheck::code::ALL)
        .chain(evidock_verify::finding::file::code::ALL)
        .chain(evidock_verify::expect::code::ALL)
        .chain(evidock_verify::timestamp::TimestampError::CODES)
        .find(|c| **c == code)
        .copied()
        .unwrap_or("verify.unknown")
}

/// Check `scope`; `progress` is called after each item with (done, total, bytes), and stops
/// the review there when it answers `false` (`Ok(None)`: the items checked are kept in the
/// progress file, and the next review of the same scope resumes after them).
pub fn review(
    st: &Station,
    cases: &Cases,
    scope: &Scope,
    trust: &evidock_verify::trust::Trust,
    mut progress: impl FnMut(u64, u64, u64) -> bool,
) -> anyhow::Result<Option<Review>> {
    cases.catch_up()?;
    let mut report = Report::new();

    // The custody log itself: every event, checkpoint and token.
    let log = evidock_verify::logcheck::check_log_dir(&st.log_path(), trust);
    report.extend(log.report);

    // Which items.
    let items: Vec<Item> = match scope {
        Scope::All => cases.index.items()?,
        Scope::Case(c) => cases
            .view(c)?
            .evidence
            .into_iter()
            .map(|l| l.item)
            .collect(),
        Scope::Items(ids) => ids
            .iter()
            .map(|id| cases.item(id))
            .collect::<Result<_, _>>()?,
    };
    let items: Vec<Item> = items
        .into_iter()
        .filter(|i| i.disposed_at.is_none())
        .collect();

    // Derivatives by parent content, from the log.
    let mut derived: BTreeMap<Sha256, Vec<TranscodedPayload>> = BTreeMap::new();
    let mut acquired: BTreeMap<EvidenceId, CustodyEvent> = BTreeMap::new();
    let wanted: BTreeSet<&EvidenceId> = items.iter().map(|i| &i.evidence).collect();
    st.log.with(|l| {
        l.for_each_event(|ev| match ev.kind {
            EventKind::Transcoded => {
                if let Ok(p) = ev.payload::<TranscodedPayload>() {
                    derived.entry(p.parent_sha256).or_default().push(p);
                }
            }
            EventKind::Acquired => {
                if let evidock_verify::event::Subject::Evidence(id) = &ev.subject
                    && wanted.contains(id)
                {
                    acquired.insert(id.clone(), ev);
                }
            }
            _ => {}
        })
    })?;

    // Resume: what an interrupted run of the same scope already checked.
    let scope_text = scope.describe();
    let progress_path = st.data_dir.join("verify").join(format!(
        "{}.jsonl",
        &Sha256::digest(scope_text.as_bytes()).to_string()[..16]
    ));
    evidock_store::fsutil::create_dir_all(progress_path.parent().unwrap_or(&st.data_dir))?;
    let mut done: BTreeMap<EvidenceId, Done> = BTreeMap::new();
    if let Ok(text) = fs_err::read_to_string(&progress_path) {
        for line in text.lines() {
            if let Ok(d) = serde_json::from_str::<Done>(line) {
                done.insert(d.evidence.clone(), d);
            }
        }
    }
    let resumed = items
        .iter()
        .filter(|i| done.contains_key(&i.evidence))
        .count() as u64;
    let mut out = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(&progress_path)?;
    let rt = st.runtime()?;
    let total = items.len() as u64;
    let mut bytes = 0u64;
    for (n, item) in items.iter().enumerate() {
        let d = match done.remove(&item.evidence) {
            Some(d) => d,
            None => {
                let mut r = Report::new();
                let b = rt.block_on(check_item(
                    st,
                    cases,
                    item,
                    &derived,
                    acquired.get(&item.evidence),
                    &mut r,
                ));
                let d = Done {
                    evidence: item.evidence.clone(),
                    bytes: b,
                    findings: r
                        .findings
                        .into_iter()
                        .map(|f| StoredFinding {
                            code: f.code.to_string(),
                            level: f.level,
                            subject: f.subject,
                            message: f.message,
                        })
                        .collect(),
                };
                writeln!(out, "{}", serde_json::to_string(&d)?)?;
                out.sync_data()?;
                d
            }
        };
        bytes += d.bytes;
        for f in d.findings {
            report.findings.push(Finding {
                code: leak(&f.code),
                level: f.level,
                subject: f.subject,
                message: f.message,
            });
        }
        if !progress(n as u64 + 1, total, bytes) {
            return Ok(None);
        }
    }
    drop(out);
    let _ = fs_err::remove_file(&progress_path);
    report.info(
        code::SUMMARY,
        scope_text.clone(),
        format!("{total} item(s), {bytes} bytes re-read"),
    );
    Ok(Some(Review {
        scope: scope_text,
        items: total,
        bytes,
        resumed,
        report,
    }))
}

async fn check_item(
    st: &Station,
    cases: &Cases,
    item: &Item,
    derived: &BTreeMap<Sha256, Vec<TranscodedPayload>>,
    acquired: Option<&CustodyEvent>,
    r: &mut Report,
) -> u64 {
    let id = item.evidence.as_str();
    let mut bytes = 0;
    let objects = cases.index.objects(&item.evidence).unwrap_or_default();
    let store = &st.store;
    // The original: in the store once uploaded (read back and re-hashed), else in the spool.
    match objects.iter().find(|o| o.role == "original") {
        Some(o) => match store.read_back(store.relative_key(&o.key)).await {
            Ok((sha, n)) => {
                bytes += n;
                if sha != item.sha256 {
                    r.error(
                        code::ORIGINAL_ALTERED,
                        format!("{id} {}", o.key),
                        format!("the store holds SHA-256 {sha}, acquired {}", item.sha256),
                    );
                }
            }
            Err(evidock_store::objects::StoreError::NotFound { .. }) => r.error(
                code::ORIGINAL_MISSING,
                format!("{id} {}", o.key),
                "uploaded and read back earlier, now missing from the store",
            ),
            Err(e) => r.error(code::UNREADABLE, format!("{id} {}", o.key), e.to_string()),
        },
        None => {
            let p = st.spool.object_path(&item.sha256);
            match std::fs::File::open(&p) {
                Ok(mut f) => {
                    r.warning(
                        code::NOT_UPLOADED,
                        id,
                        "not in the evidence store yet; the station's spool copy was checked",
                    );
                    match evidock_verify::digest::hash_reader(&mut f, Default::default()) {
                        Ok((d, n)) => {
                            bytes += n;
                            if d.sha256 != item.sha256 {
                                r.error(
                                    code::ORIGINAL_ALTERED,
                                    format!("{id} {}", p.display()),
                                    format!(
                                        "the spool copy has SHA-256 {}, acquired {}",
                                        d.sha256, item.sha256
                                    ),
                                );
                            }
                        }
                        Err(e) => r.error(code::UNREADABLE, p.display().to_string(), e.to_string()),
                    }
                }
                Err(_) => r.error(
                    code::ORIGINAL_MISSING,
                    id,
                    "neither in the evidence store nor in this station's spool",
                ),
            }
        }
    }
    // The record: written once after the upload, bound to the `acquired` event.
    if objects.iter().any(|o| o.role == "original") {
        let key = layout::record(&st.id().clone(), &item.evidence);
        match store.get_bytes(&key).await {
            Ok(b) => match serde_json::from_slice::<EvidenceRecord>(&b) {
                Ok(rec) => {
                    let leaf = acquired
                        .and_then(|e| e.to_canonical().ok())
                        .map(|b| evidock_verify::merkle::leaf_hash(&b));
                    if rec.acquired_seq != item.seq
                        || Some(rec.acquired_leaf) != leaf
                        || rec.acquired.digests.sha256 != item.sha256
                    {
                        r.error(
                            code::RECORD_MISMATCH,
                            format!("{id} {key}"),
                            "the record does not match the acquired event in the custody log",
                        );
                    }
                }
                Err(e) => r.error(code::RECORD_MISMATCH, format!("{id} {key}"), e.to_string()),
            },
            Err(evidock_store::objects::StoreError::NotFound { .. }) => r.warning(
                code::RECORD_MISSING,
                format!("{id} {key}"),
                "no record yet (written after the upload; the next upload pass writes it)",
            ),
            Err(e) => r.error(code::UNREADABLE, format!("{id} {key}"), e.to_string()),
        }
    }
    // Derivatives: each one the log says was made from this content.
    for p in derived.get(&item.sha256).into_iter().flatten() {
        let key = layout::derivative(&p.sha256);
        let subject = format!("{id} {:?} {}", p.role, p.sha256);
        let got = if objects.iter().any(|o| o.sha256 == p.sha256) {
            store.read_back(&key).await.map_err(|e| e.to_string())
        } else {
            match std::fs::File::open(st.derivatives.object_path(&p.sha256)) {
                Ok(mut f) => {
                    r.warning(
                        code::DERIVATIVE_NOT_UPLOADED,
                        &subject,
                        "not in the evidence store yet; the station's copy was checked",
                    );
                    evidock_verify::digest::hash_reader(&mut f, Default::default())
                        .map(|(d, n)| (d.sha256, n))
                        .map_err(|e| e.to_string())
                }
                Err(e) => Err(format!("neither uploaded nor on this station: {e}")),
            }
        };
        match got {
            Ok((sha, n)) => {
                bytes += n;
                if sha != p.sha256 {
                    r.error(
                        code::DERIVATIVE_ALTERED,
                        &subject,
                        format!("holds SHA-256 {sha}"),
                    );
                }
            }
            Err(e) => r.error(code::DERIVATIVE_MISSING, &subject, e),
        }
    }
    // Links: only to registered cases.
    for l in cases
        .index
        .links_of_item(&item.evidence)
        .unwrap_or_default()
    {
        if l.linked && cases.index.case(&l.case).ok().flatten().is_none() {
            r.error(
                code::CASE_UNREGISTERED,
                format!("{id} → {}", l.case),
                "linked to a case that no case-registered event describes",
            );
        }
    }
    bytes
}
