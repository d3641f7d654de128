//! Cases: the case register, links between evidence and cases, categories and retention.
//!
//! Every change is a custody event of this station (`case-registered`, `linked`, `unlinked`,
//! `retention-changed`, `disposed`); the [`index::Index`] is a cache of those events (and of
//! the `acquired` / `uploaded` / `camera-assigned` events it needs), caught up before every
//! decision and rebuildable from the logs. Nothing here edits or deletes evidence, except
//! [`Cases::dispose`], which an operator asks for by name.
//!
//! This file holds the types and reading a case; what changes cases and links is beside it:
//! `import.rs` the register, `links.rs` links, `retention.rs` retention, disposal and holds.

mod disposal;
mod import;
pub mod index;
mod links;
pub mod register;
mod retention;
pub mod settings;

use crate::journal::Page;
use chrono::{DateTime, Utc};
use evidock_store::clock::Clock;
use evidock_store::log::SharedLog;
use evidock_verify::case::{CaseStatus, CaseWindow};
use evidock_verify::event::{Actor, Timestamp, UtcOffset};
use evidock_verify::id::{CaseId, EvidenceId, OfficerId, Sha256, StationId};
use index::{CaseEntry, Index, IndexError, Item, Link};
use serde::Serialize;
use settings::{CaseSettings, RetentionSettings};
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

    /// One page of `evidock case list`, in the order of case IDs, after case `after`.
    pub fn list_page(
        &self,
        after: Option<&str>,
        limit: u64,
    ) -> Result<Page<CaseSummary>, CaseError> {
        self.catch_up()?;
        let page = self.index.cases_page(after, limit)?;
        let mut out = Vec::new();
        for c in page.rows {
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
        Ok(Page {
            rows: out,
            next: page.next,
        })
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
