//! Cases: the case register, links between evidence and cases, categories and retention.
//!
//! Every change is a custody event of this station (`case-registered`, `linked`, `unlinked`,
//! `retention-changed`, `disposed`); the [`index::Index`] is a cache of those events (and of
//! the `acquired` / `uploaded` / `camera-assigned` events it needs), caught up before every
//! decision and rebuildable from the logs. Nothing here edits or deletes evidence, except
//! [`Cases::dispose`], which an operator asks for by name.

mod disposal;
pub mod index;
pub mod register;
pub mod settings;

use chrono::{DateTime, Utc};
use evidock_store::clock::Clock;
use evidock_store::log::SharedLog;
use evidock_verify::case::{CaseRegisteredPayload, CaseStatus, CaseWindow};
use evidock_verify::event::payload::{
    DisposedPayload, LinkedPayload, RetentionChangedPayload, UnlinkedPayload,
};
use evidock_verify::event::{Actor, NewEvent, Role, Subject, Timestamp, UtcOffset};
use evidock_verify::id::{CaseId, EvidenceId, OfficerId, Sha256, StationId};
use index::{CaseEntry, Index, IndexError, Item, Link};
use serde::Serialize;
use settings::{CaseSettings, RetentionSettings};
use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;

#[derive(Debug, thiserror::Error)]
pub enum CaseError {
    #[error(transparent)]
    Register(#[from] register::RegisterError),
    #[error(transparent)]
    Index(#[from] IndexError),
    #[error("custody log: {0}")]
    Log(#[from] evidock_store::log::LogError),
    #[error("custody event: {0}")]
    Event(#[from] evidock_verify::event::EventError),
    #[error("no case {case:?} in the case register{}", suggestion(.similar))]
    NoCase { case: String, similar: Vec<CaseId> },
    #[error("no evidence item {0} (see `evidock evidence list`)")]
    NoEvidence(EvidenceId),
    #[error("evidence {evidence} is not linked to case {case}")]
    NotLinked { evidence: EvidenceId, case: CaseId },
    #[error("no category {category:?} (configured: {known})")]
    NoCategory { category: String, known: String },
    #[error("evidence {evidence} cannot be disposed of: {why}")]
    NotDue { evidence: EvidenceId, why: String },
    #[error("{0}: give the reason for the record (--reason \"…\")")]
    NoReason(&'static str),
    #[error("disposal record {path}: {reason}")]
    Disposing {
        path: std::path::PathBuf,
        reason: String,
    },
}

impl CaseError {
    /// Whether the user must change something (an ID, a category, a reason, the register)
    /// before it can work; the rest may pass on a retry.
    pub fn is_usage(&self) -> bool {
        matches!(
            self,
            CaseError::Register(_)
                | CaseError::NoCase { .. }
                | CaseError::NoEvidence(_)
                | CaseError::NotLinked { .. }
                | CaseError::NoCategory { .. }
                | CaseError::NotDue { .. }
                | CaseError::NoReason(_)
        )
    }
}

fn suggestion(similar: &[CaseId]) -> String {
    if similar.is_empty() {
        String::new()
    } else {
        format!(
            "; did you mean {}?",
            similar
                .iter()
                .map(|c| format!("{:?}", c.as_str()))
                .collect::<Vec<_>>()
                .join(" or ")
        )
    }
}

/// A case ID folded for suggestions only (never for matching): full-width ASCII forms and
/// CJK brackets as their ASCII look-alikes, spaces dropped, letters lower-case.
fn fold(id: &str) -> String {
    id.chars()
        .filter_map(|c| {
            let c = match c {
                '\u{FF01}'..='\u{FF5E}' => char::from_u32(c as u32 - 0xFEE0).unwrap_or(c),
                '〔' | '【' | '〖' => '[',
                '〕' | '】' | '〗' => ']',
                _ => c,
            };
            (!c.is_whitespace()).then(|| c.to_ascii_lowercase())
        })
        .collect()
}

/// The first 16 hex digits of SHA-256 of a case ID: case IDs are Unicode of any length, and
/// idempotency keys are short.
fn case_key(case: &CaseId) -> String {
    Sha256::digest(case.as_str().as_bytes()).to_string()[..16].to_string()
}

/// A link made (or flagged) by automatic matching.
#[derive(Debug, Clone, Serialize)]
pub struct LinkMade {
    pub evidence: EvidenceId,
    pub case: CaseId,
    pub review: bool,
    pub reason: String,
}

/// What an import did.
#[derive(Debug, Clone, Serialize)]
pub struct ImportReport {
    pub file: String,
    pub source_sha256: Sha256,
    pub cases: u64,
    pub added: Vec<CaseId>,
    pub updated: Vec<CaseId>,
    pub unchanged: u64,
    pub linked: Vec<LinkMade>,
    /// Links kept although the case as now registered no longer matches the recording: a person
    /// decides (`evidock unlink`).
    pub no_longer_matching: Vec<Link>,
    pub retention_changes: u64,
}

/// A window of a case and the footage in it.
#[derive(Debug, Clone, Serialize)]
pub struct WindowView {
    pub start: Timestamp,
    pub end: Timestamp,
    /// Linked recordings overlapping the window (± the buffer).
    pub recordings: u64,
    /// Officers of the case with no linked recording in the window.
    pub officers_without_footage: Vec<OfficerId>,
    /// No linked recording at all: the audits' "missing video".
    pub gap: bool,
}

/// `evidock case show`.
#[derive(Debug, Clone, Serialize)]
pub struct CaseView {
    #[serde(flatten)]
    pub entry: CaseEntry,
    pub windows: Vec<WindowView>,
    pub gaps: u64,
    pub evidence: Vec<LinkedItem>,
    /// Links that were removed (kept for the record).
    pub unlinked: Vec<Link>,
}

#[derive(Debug, Clone, Serialize)]
pub struct LinkedItem {
    pub item: Item,
    pub link: Link,
}

/// A line of `evidock case list`.
#[derive(Debug, Clone, Serialize)]
pub struct CaseSummary {
    pub case: CaseId,
    pub case_type: String,
    pub title: String,
    pub status: CaseStatus,
    pub windows: u64,
    pub evidence: u64,
    pub review: u64,
    pub gaps: u64,
}

/// An item's retention as it stands (what `retention-changed` events recorded).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Retention {
    pub category: String,
    /// `None`: kept (linked to a case, or a category that keeps until a person decides).
    pub retain_until: Option<Timestamp>,
    pub legal_hold: bool,
}

/// An item due for disposal.
#[derive(Debug, Clone, Serialize)]
pub struct Due {
    pub item: Item,
    pub retention: Retention,
}

/// What a disposal removed, and what it could not.
#[derive(Debug, Clone, Serialize)]
pub struct Disposal {
    pub evidence: EvidenceId,
    /// Finished now: its `disposed` event was recorded by a run that was cut off.
    pub resumed: bool,
    pub removed: Vec<String>,
    /// Kept because another item holds the same content.
    pub shared: Vec<String>,
    pub errors: Vec<String>,
}

/// The case desk of a station: import, link, categorise, dispose.
pub struct Cases {
    pub station: StationId,
    pub log: SharedLog,
    pub index: Arc<Index>,
    pub clock: Arc<dyn Clock>,
    pub settings: CaseSettings,
    pub retention: RetentionSettings,
    /// For showing times (the station's offset).
    pub offset: UtcOffset,
    /// Disposals under way (disposal.rs): one file per item, from before its `disposed`
    /// event until its copies are removed.
    pub disposing: std::path::PathBuf,
    /// Where `evidence get` fetches copies before it hands them over (`<data dir>/fetching`).
    pub fetching: std::path::PathBuf,
}

impl std::fmt::Debug for Cases {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Cases")
            .field("station", &self.station)
            .finish()
    }
}

/// Whether `item` falls in `w` ± `buffer` by its corrected time.
fn overlaps(item: &Item, w: &CaseWindow, buffer: chrono::Duration) -> bool {
    match (item.start, item.end) {
        (Some(s), Some(e)) => s <= w.end.0 + buffer && e >= w.start.0 - buffer,
        (Some(s), None) => s <= w.end.0 + buffer && s >= w.start.0 - buffer,
        _ => false,
    }
}

impl Cases {
    fn actor(&self) -> Actor {
        Actor::station(&self.station)
    }

    fn show(&self, t: DateTime<Utc>) -> String {
        t.with_timezone(&self.offset.0)
            .format("%Y-%m-%d %H:%M:%S%:z")
            .to_string()
    }

    pub fn catch_up(&self) -> Result<(), CaseError> {
        self.index.catch_up(&self.log)?;
        Ok(())
    }

    /// The case, or an error suggesting look-alike IDs (ASCII brackets for full-width ones…).
    pub fn case(&self, case: &str) -> Result<CaseEntry, CaseError> {
        if let Ok(id) = CaseId::new(case)
            && let Some(c) = self.index.case(&id)?
        {
            return Ok(c);
        }
        let want = fold(case);
        let similar = self
            .index
            .cases()?
            .into_iter()
            .map(|c| c.record.case)
            .filter(|c| fold(c.as_str()) == want)
            .collect();
        Err(CaseError::NoCase {
            case: case.to_string(),
            similar,
        })
    }

    pub fn item(&self, evidence: &EvidenceId) -> Result<Item, CaseError> {
        self.index
            .item(evidence)?
            .ok_or_else(|| CaseError::NoEvidence(evidence.clone()))
    }

    /// Import a case register export: every row checked first, then one `case-registered` event
    /// per new or changed case, then automatic linking.
    pub fn import(
        &self,
        file: &str,
        bytes: &[u8],
        format: register::Format,
        by: &str,
    ) -> Result<ImportReport, CaseError> {
        let parsed = register::parse(file, bytes, format, &self.settings)?;
        self.catch_up()?;
        let source_sha256 = Sha256::digest(bytes);
        let mut report = ImportReport {
            file: file.to_string(),
            source_sha256,
            cases: parsed.len() as u64,
            added: Vec::new(),
            updated: Vec::new(),
            unchanged: 0,
            linked: Vec::new(),
            no_longer_matching: Vec::new(),
            retention_changes: 0,
        };
        let mut events = Vec::new();
        for p in parsed {
            let record = register::normalise(p.record);
            let current = self.index.case(&record.case)?;
            let n = match &current {
                Some(c) if c.record == record => {
                    report.unchanged += 1;
                    continue;
                }
                Some(c) => {
                    report.updated.push(record.case.clone());
                    c.registrations + 1
                }
                None => {
                    report.added.push(record.case.clone());
                    1
                }
            };
            let case = record.case.clone();
            let lines = p.lines.clone();
            // Every event is made before any is written: one that cannot be recorded stops the
            // import with nothing recorded, naming its lines.
            let ev = NewEvent::new(
                Actor {
                    role: Role::Admin,
                    id: by.to_string(),
                },
                Subject::Case(case.clone()),
                format!("case-registered/{}/{n}", case_key(&case)),
                &CaseRegisteredPayload {
                    record,
                    source: file.to_string(),
                    source_sha256,
                    lines: p.lines,
                },
            )
            .map_err(|e| register::RegisterError {
                file: file.to_string(),
                problems: vec![register::Problem {
                    line: lines.first().copied().unwrap_or(0),
                    column: None,
                    reason: format!(
                        "case {case} ({} row(s), from line {}) cannot be recorded: {e}; nothing was imported",
                        lines.len(),
                        lines.first().copied().unwrap_or(0)
                    ),
                }],
            })?;
            events.push(ev);
        }
        if !events.is_empty() {
            self.log.append_batch(events)?;
            self.catch_up()?;
        }
        for case in &report.updated {
            let Some(entry) = self.index.case(case)? else {
                continue;
            };
            for link in self.index.links_of_case(case)? {
                if !link.linked {
                    continue;
                }
                let still = match self.index.item(&link.evidence)? {
                    Some(item) => entry
                        .record
                        .windows
                        .iter()
                        .any(|w| overlaps(&item, w, self.settings.buffer)),
                    None => true,
                };
                if !still {
                    report.no_longer_matching.push(link);
                }
            }
        }
        report.linked = self.auto_link()?;
        let mut touched: BTreeSet<EvidenceId> =
            report.linked.iter().map(|l| l.evidence.clone()).collect();
        for case in report.updated.iter() {
            for l in self.index.links_of_case(case)? {
                touched.insert(l.evidence);
            }
        }
        report.retention_changes = self.reconcile(&touched)?;
        Ok(report)
    }

    /// The officers a recording is attributed to: the camera's (or the one recorded at
    /// acquisition) and, for the recording's time, the camera's assignment — which may have
    /// been recorded after the acquisition.
    fn officers_of(&self, item: &Item) -> Result<Vec<(OfficerId, &'static str)>, CaseError> {
        let mut out = Vec::new();
        if let Some(o) = item.officer.as_deref().and_then(|o| OfficerId::new(o).ok()) {
            let src = match item.officer_source.as_deref() {
                Some("assignment") => "camera assignment",
                Some("operator") => "given at ingest",
                _ => "camera",
            };
            out.push((o, src));
        }
        if let Some(start) = item.start
            && let Some(o) = self.index.assigned_officer(&item.device, start)?
            && !out.iter().any(|(x, _)| *x == o)
        {
            out.push((o, "camera assignment"));
        }
        Ok(out)
    }

    /// Link every recording to every case it matches — an officer of the case, and a corrected
    /// recording time within a window ± the buffer — unless the pair was linked or unlinked
    /// before. A recording matching two or more cases is linked to each and flagged for review.
    pub fn auto_link(&self) -> Result<Vec<LinkMade>, CaseError> {
        self.catch_up()?;
        let buffer = self.settings.buffer;
        let mut matches: BTreeMap<EvidenceId, Vec<(CaseId, String)>> = BTreeMap::new();
        for entry in self.index.cases()? {
            let case = &entry.record;
            let mut seen = BTreeSet::new();
            for w in &case.windows {
                for item in self
                    .index
                    .items_between(w.start.0 - buffer, w.end.0 + buffer)?
                {
                    if !overlaps(&item, w, buffer) || seen.contains(&item.evidence) {
                        continue;
                    }
                    let officers = self.officers_of(&item)?;
                    let Some((officer, source)) =
                        officers.iter().find(|(o, _)| case.officers.contains(o))
                    else {
                        continue;
                    };
                    seen.insert(item.evidence.clone());
                    let (s, e) = (
                        item.start.unwrap_or(item.acquired_at),
                        item.end.or(item.start).unwrap_or(item.acquired_at),
                    );
                    let reason = format!(
                        "officer {officer} ({source}) recorded {} – {} (corrected time), within case window {} – {} ± {} min",
                        self.show(s),
                        self.show(e),
                        self.show(w.start.0),
                        self.show(w.end.0),
                        buffer.num_minutes()
                    );
                    matches
                        .entry(item.evidence.clone())
                        .or_default()
                        .push((case.case.clone(), reason));
                }
            }
        }
        let mut events = Vec::new();
        let mut made = Vec::new();
        for (evidence, cases) in matches {
            let review = cases.len() > 1;
            let existing: BTreeMap<CaseId, Link> = self
                .index
                .links_of_item(&evidence)?
                .into_iter()
                .map(|l| (l.case.clone(), l))
                .collect();
            for (case, reason) in &cases {
                let reason = if review {
                    format!(
                        "{reason}; also matches {}: flagged for review",
                        cases
                            .iter()
                            .filter(|(c, _)| c != case)
                            .map(|(c, _)| c.as_str())
                            .collect::<Vec<_>>()
                            .join(", ")
                    )
                } else {
                    reason.clone()
                };
                let n = match existing.get(case) {
                    None => 1,
                    // Matched another case since: flag the automatic link for review.
                    Some(l) if l.linked && l.automatic && review && !l.review => l.changes + 1,
                    // Linked already, or unlinked by a person: left as it is.
                    Some(_) => continue,
                };
                events.push(NewEvent::new(
                    self.actor(),
                    Subject::Evidence(evidence.clone()),
                    format!("linked/{evidence}/{}/{n}", case_key(case)),
                    &LinkedPayload {
                        evidence: evidence.clone(),
                        case: case.clone(),
                        reason: reason.clone(),
                        automatic: true,
                        review,
                    },
                )?);
                made.push(LinkMade {
                    evidence: evidence.clone(),
                    case: case.clone(),
                    review,
                    reason,
                });
            }
        }
        if !events.is_empty() {
            self.log.append_batch(events)?;
            self.catch_up()?;
            let touched = made.iter().map(|m| m.evidence.clone()).collect();
            self.reconcile(&touched)?;
        }
        Ok(made)
    }

    /// `evidock link`: a person links evidence to a case.
    pub fn link(
        &self,
        evidence: &EvidenceId,
        case: &str,
        by: &str,
        reason: &str,
    ) -> Result<Option<Link>, CaseError> {
        if reason.trim().is_empty() {
            return Err(CaseError::NoReason("link"));
        }
        self.catch_up()?;
        let entry = self.case(case)?;
        let case = entry.record.case;
        self.item(evidence)?;
        let existing = self
            .index
            .links_of_item(evidence)?
            .into_iter()
            .find(|l| l.case == case);
        if existing.as_ref().is_some_and(|l| l.linked && !l.review) {
            return Ok(None);
        }
        let n = existing.map(|l| l.changes + 1).unwrap_or(1);
        self.log.append(NewEvent::new(
            Actor {
                role: Role::Reviewer,
                id: by.to_string(),
            },
            Subject::Evidence(evidence.clone()),
            format!("linked/{evidence}/{}/{n}", case_key(&case)),
            &LinkedPayload {
                evidence: evidence.clone(),
                case: case.clone(),
                reason: reason.to_string(),
                automatic: false,
                review: false,
            },
        )?)?;
        self.settle(evidence, &case)
    }

    /// `evidock unlink`: a person removes a link. Nothing is deleted; automatic linking will
    /// not make the link again.
    pub fn unlink(
        &self,
        evidence: &EvidenceId,
        case: &str,
        by: &str,
        reason: &str,
    ) -> Result<Link, CaseError> {
        if reason.trim().is_empty() {
            return Err(CaseError::NoReason("unlink"));
        }
        self.catch_up()?;
        let case = match CaseId::new(case) {
            Ok(c) => c,
            Err(_) => self.case(case)?.record.case,
        };
        let Some(link) = self
            .index
            .links_of_item(evidence)?
            .into_iter()
            .find(|l| l.case == case && l.linked)
        else {
            return Err(CaseError::NotLinked {
                evidence: evidence.clone(),
                case,
            });
        };
        self.log.append(NewEvent::new(
            Actor {
                role: Role::Reviewer,
                id: by.to_string(),
            },
            Subject::Evidence(evidence.clone()),
            format!(
                "unlinked/{evidence}/{}/{}",
                case_key(&case),
                link.changes + 1
            ),
            &UnlinkedPayload {
                evidence: evidence.clone(),
                case: case.clone(),
                reason: reason.to_string(),
            },
        )?)?;
        Ok(self.settle(evidence, &case)?.unwrap_or(link))
    }

    /// After a person's link or unlink: the item's retention follows, and the link as it
    /// stands now.
    fn settle(&self, evidence: &EvidenceId, case: &CaseId) -> Result<Option<Link>, CaseError> {
        self.catch_up()?;
        self.reconcile(&BTreeSet::from([evidence.clone()]))?;
        Ok(self
            .index
            .links_of_item(evidence)?
            .into_iter()
            .find(|l| l.case == *case))
    }

    /// An item's retention as recorded by its last `retention-changed` event (or the default).
    pub fn recorded(&self, item: &Item) -> Retention {
        if item.retention_ref.is_some() {
            Retention {
                category: item
                    .category
                    .clone()
                    .unwrap_or_else(|| self.retention.default_category.clone()),
                retain_until: item.retain_until.map(Timestamp::from_datetime),
                legal_hold: item.legal_hold,
            }
        } else {
            self.computed(item, &self.retention.default_category, &[])
        }
    }

    /// What an item's retention should be: permanent while linked to a case (on legal hold while
    /// a linked case is open), else its category's.
    fn computed(&self, item: &Item, category: &str, linked: &[CaseEntry]) -> Retention {
        if !linked.is_empty() {
            return Retention {
                category: category.to_string(),
                retain_until: None,
                legal_hold: index::any_open(linked),
            };
        }
        let days = self.retention.categories.get(category).copied().flatten();
        let base = item.start.unwrap_or(item.acquired_at);
        Retention {
            category: category.to_string(),
            retain_until: days
                .map(|d| Timestamp::from_datetime(base + chrono::Duration::days(i64::from(d)))),
            legal_hold: false,
        }
    }

    fn linked_cases(&self, evidence: &EvidenceId) -> Result<Vec<CaseEntry>, CaseError> {
        let mut out = Vec::new();
        for l in self.index.links_of_item(evidence)? {
            if l.linked
                && let Some(c) = self.index.case(&l.case)?
            {
                out.push(c);
            }
        }
        Ok(out)
    }

    fn retention_event(
        &self,
        item: &Item,
        before: &Retention,
        after: &Retention,
        actor: Actor,
        reason: String,
    ) -> Result<NewEvent, CaseError> {
        // One change after another: keyed by the change it follows, so going back to an
        // earlier state is a new event, and a replay after a crash is the same one.
        Ok(NewEvent::new(
            actor,
            Subject::Evidence(item.evidence.clone()),
            format!(
                "retention/{}/after/{}",
                item.evidence,
                item.retention_ref.as_deref().unwrap_or("none")
            ),
            &RetentionChangedPayload {
                evidence: item.evidence.clone(),
                category_before: Some(before.category.clone()),
                category: after.category.clone(),
                retain_until: after.retain_until,
                legal_hold: after.legal_hold,
                reason,
            },
        )?)
    }

    /// Record a `retention-changed` event for every item whose retention follows from its links
    /// differently than recorded (linked → permanent, open case → legal hold, …).
    pub fn reconcile(&self, items: &BTreeSet<EvidenceId>) -> Result<u64, CaseError> {
        let mut events = Vec::new();
        for ev in items {
            let Some(item) = self.index.item(ev)? else {
                continue;
            };
            if item.disposed_at.is_some() {
                continue;
            }
            let before = self.recorded(&item);
            let linked = self.linked_cases(ev)?;
            let after = self.computed(&item, &before.category, &linked);
            if after == before {
                continue;
            }
            let reason = if linked.is_empty() {
                format!(
                    "no longer linked to a case: the category {:?} applies",
                    after.category
                )
            } else {
                let names: Vec<String> = linked
                    .iter()
                    .map(|c| format!("{} ({})", c.record.case, c.record.status.as_str()))
                    .collect();
                format!(
                    "linked to {}: kept permanently (《公安机关现场执法视音频记录工作规定》 Art. 13){}",
                    names.join(", "),
                    if after.legal_hold {
                        ", on legal hold while the case is open"
                    } else {
                        "; no open case: legal hold released"
                    }
                )
            };
            events.push(self.retention_event(&item, &before, &after, self.actor(), reason)?);
        }
        let n = events.len() as u64;
        if n > 0 {
            self.log.append_batch(events)?;
            self.catch_up()?;
        }
        Ok(n)
    }

    /// `evidock evidence set-category`: a person changes an item's category (and so its
    /// retention). Returns the retention before and after, or `None` when nothing changed.
    pub fn set_category(
        &self,
        evidence: &EvidenceId,
        category: &str,
        by: &str,
        reason: &str,
    ) -> Result<Option<(Retention, Retention)>, CaseError> {
        if reason.trim().is_empty() {
            return Err(CaseError::NoReason("set-category"));
        }
        if !self.retention.categories.contains_key(category) {
            return Err(CaseError::NoCategory {
                category: category.to_string(),
                known: self
                    .retention
                    .categories
                    .keys()
                    .cloned()
                    .collect::<Vec<_>>()
                    .join(", "),
            });
        }
        self.catch_up()?;
        let item = self.item(evidence)?;
        let before = self.recorded(&item);
        let after = self.computed(&item, category, &self.linked_cases(evidence)?);
        if before == after {
            return Ok(None);
        }
        let ev = self.retention_event(
            &item,
            &before,
            &after,
            Actor {
                role: Role::Reviewer,
                id: by.to_string(),
            },
            reason.to_string(),
        )?;
        self.log.append(ev)?;
        self.catch_up()?;
        Ok(Some((before, after)))
    }

    /// Why an item may not be disposed of now, if it may not.
    fn not_due(&self, item: &Item, now: DateTime<Utc>) -> Result<Option<String>, CaseError> {
        if item.disposed_at.is_some() {
            return Ok(Some("already disposed of".into()));
        }
        let linked = self.linked_cases(&item.evidence)?;
        if !linked.is_empty() {
            return Ok(Some(format!(
                "linked to case {}",
                linked
                    .iter()
                    .map(|c| c.record.case.as_str())
                    .collect::<Vec<_>>()
                    .join(", ")
            )));
        }
        let r = self.recorded(item);
        if r.legal_hold {
            return Ok(Some("on legal hold".into()));
        }
        Ok(match r.retain_until {
            None => Some(format!(
                "its category {:?} keeps it until a person changes the category",
                r.category
            )),
            Some(t) if t.0 > now => Some(format!("kept until {}", self.show(t.0))),
            Some(_) => None,
        })
    }

    /// Items whose retention has passed, unlinked and not on hold: `evidock retention due`.
    pub fn due(&self) -> Result<Vec<Due>, CaseError> {
        self.catch_up()?;
        let now = self.clock.now();
        let mut out = Vec::new();
        for item in self.index.items()? {
            if self.not_due(&item, now)?.is_none() {
                let retention = self.recorded(&item);
                out.push(Due { item, retention });
            }
        }
        Ok(out)
    }

    /// Record the disposal of an item that is due (a `disposed` event, before anything is
    /// removed). The caller removes the copies (see [`Cases::removable`]), holding
    /// [`Cases::disposal_turn`] throughout.
    pub fn record_disposal(
        &self,
        evidence: &EvidenceId,
        actor: Actor,
        reason: &str,
    ) -> Result<Item, CaseError> {
        if reason.trim().is_empty() {
            return Err(CaseError::NoReason("dispose"));
        }
        self.catch_up()?;
        let item = self.item(evidence)?;
        if let Some(why) = self.not_due(&item, self.clock.now())? {
            return Err(CaseError::NotDue {
                evidence: evidence.clone(),
                why,
            });
        }
        // Marked under way first: a crash after the event leaves the copies to be removed by
        // the next disposal run, never left for ever beside a `disposed` event.
        self.mark_disposing(evidence)?;
        self.log.append(NewEvent::new(
            actor,
            Subject::Evidence(evidence.clone()),
            format!("disposed/{evidence}"),
            &DisposedPayload {
                evidence: evidence.clone(),
                sha256: item.sha256,
                reason: reason.to_string(),
            },
        )?)?;
        self.catch_up()?;
        Ok(item)
    }

    /// The store objects of a disposed item that no other item still needs, and those kept
    /// because another item holds the same content.
    pub fn removable(
        &self,
        evidence: &EvidenceId,
    ) -> Result<(Vec<index::StoredObject>, Vec<index::StoredObject>), CaseError> {
        let mut remove = Vec::new();
        let mut keep = Vec::new();
        // Another item of the same bytes — uploaded or not yet — needs the original and every
        // derivative made from it (derivatives are per content).
        let item = self.item(evidence)?;
        let same_content = !self
            .index
            .sharing_content(&item.sha256, evidence)?
            .is_empty();
        // The record stays: it says what was acquired, and the custody log refers to it.
        for o in self
            .index
            .objects(evidence)?
            .into_iter()
            .filter(|o| o.role != "record")
        {
            let others = same_content || self.index.sharing_objects(&o.key, evidence)?;
            if others { keep.push(o) } else { remove.push(o) }
        }
        Ok((remove, keep))
    }

    /// Remove a disposed item's copies: the store objects no other item needs, and the spool
    /// and derivative copies of the same content. Every failure is returned, naming the object.
    pub async fn remove_copies(
        &self,
        item: &Item,
        store: &evidock_store::objects::EvidenceStore,
        spools: &[&crate::acquire::spool::Spool],
    ) -> Result<Disposal, CaseError> {
        let (remove, keep) = self.removable(&item.evidence)?;
        let mut d = Disposal {
            evidence: item.evidence.clone(),
            resumed: false,
            removed: Vec::new(),
            shared: keep.into_iter().map(|o| o.key).collect(),
            errors: Vec::new(),
        };
        for o in remove {
            match store.delete(store.relative_key(&o.key)).await {
                Ok(()) => d.removed.push(o.key.clone()),
                Err(e) => d.errors.push(e.to_string()),
            }
            for spool in spools {
                let p = spool.object_path(&o.sha256);
                match std::fs::remove_file(&p) {
                    // Made durable before the disposal's mark is dropped.
                    Ok(()) => {
                        match evidock_store::fsutil::sync_dir(evidock_store::fsutil::parent_dir(&p))
                        {
                            Ok(()) => d.removed.push(p.display().to_string()),
                            Err(e) => d.errors.push(e.to_string()),
                        }
                    }
                    Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
                    Err(e) => d.errors.push(format!("{}: {e}", p.display())),
                }
            }
            evidock_store::crash_point!("dispose.removed");
        }
        // A copy a killed `evidence get` left of this item goes with the rest.
        let prefix = format!("{}-", item.evidence);
        if let Ok(entries) = std::fs::read_dir(&self.fetching) {
            for e in entries.flatten() {
                if e.file_name().to_string_lossy().starts_with(&prefix) {
                    match std::fs::remove_file(e.path()) {
                        Ok(()) => d.removed.push(e.path().display().to_string()),
                        Err(err) => d.errors.push(format!("{}: {err}", e.path().display())),
                    }
                }
            }
        }
        if d.errors.is_empty() {
            self.disposal_done(&item.evidence)?;
        }
        Ok(d)
    }

    /// Put store objects on legal hold, or release them, as the items' retention says. Returns
    /// how many changed; a store without Object Lock is remembered as not enforcing.
    pub async fn sync_holds(
        &self,
        store: &evidock_store::objects::EvidenceStore,
    ) -> Result<u64, anyhow::Error> {
        self.catch_up()?;
        let mut n = 0;
        for (key, on) in self.index.holds_to_apply()? {
            let enforced = store.set_legal_hold(store.relative_key(&key), on).await?;
            if enforced {
                tracing::info!(object = %key, on, "legal hold set");
            }
            self.index.hold_applied(&key, on, enforced)?;
            n += 1;
        }
        Ok(n)
    }

    /// `evidock case show`.
    pub fn view(&self, case: &str) -> Result<CaseView, CaseError> {
        self.catch_up()?;
        self.view_of(self.case(case)?)
    }

    /// The view of a case the index holds (the caller has caught up).
    fn view_of(&self, entry: CaseEntry) -> Result<CaseView, CaseError> {
        let mut evidence = Vec::new();
        let mut unlinked = Vec::new();
        for link in self.index.links_of_case(&entry.record.case)? {
            if !link.linked {
                unlinked.push(link);
                continue;
            }
            if let Some(item) = self.index.item(&link.evidence)? {
                evidence.push(LinkedItem { item, link });
            }
        }
        evidence.sort_by_key(|l| (l.item.start, l.item.evidence.clone()));
        let mut windows = Vec::new();
        for w in &entry.record.windows {
            let inside: Vec<&LinkedItem> = evidence
                .iter()
                .filter(|l| overlaps(&l.item, w, self.settings.buffer))
                .collect();
            let mut without = Vec::new();
            for o in &entry.record.officers {
                let mut has = false;
                for l in &inside {
                    if self.officers_of(&l.item)?.iter().any(|(x, _)| x == o) {
                        has = true;
                        break;
                    }
                }
                if !has {
                    without.push(o.clone());
                }
            }
            windows.push(WindowView {
                start: w.start,
                end: w.end,
                recordings: inside.len() as u64,
                officers_without_footage: without,
                gap: inside.is_empty(),
            });
        }
        let gaps = windows.iter().filter(|w| w.gap).count() as u64;
        Ok(CaseView {
            entry,
            windows,
            gaps,
            evidence,
            unlinked,
        })
    }

    /// `evidock case list`.
    pub fn list(&self) -> Result<Vec<CaseSummary>, CaseError> {
        self.catch_up()?;
        let mut out = Vec::new();
        for c in self.index.cases()? {
            let v = self.view_of(c)?;
            let r = &v.entry.record;
            out.push(CaseSummary {
                case: r.case.clone(),
                case_type: r.case_type.clone(),
                title: r.title.clone(),
                status: r.status,
                windows: r.windows.len() as u64,
                evidence: v.evidence.len() as u64,
                review: v.evidence.iter().filter(|l| l.link.review).count() as u64,
                gaps: v.gaps,
            });
        }
        Ok(out)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn folding_is_for_suggestions() {
        assert_eq!(fold("晋应急罚〔2023〕102号"), fold("晋应急罚[2023]102号"));
        assert_eq!(fold("ＡＢ－１"), fold("ab-1"));
        assert_ne!(fold("晋应急罚〔2023〕102号"), fold("晋应急罚〔2023〕103号"));
    }
}
