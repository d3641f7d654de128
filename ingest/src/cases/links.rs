//! Links between evidence and cases: automatic ones (the recording's officer and time against
//! each case's officers and window) and a person's `link` / `unlink`, each followed by the item's
//! retention. Apart because it is where evidence meets cases.

use super::index::{Item, Link};
use super::{CaseError, Cases, LinkMade, case_key, overlaps};
use evidock_verify::event::payload::{LinkedPayload, UnlinkedPayload};
use evidock_verify::event::{Actor, NewEvent, Role, Subject};
use evidock_verify::id::{CaseId, EvidenceId, OfficerId};
use std::collections::{BTreeMap, BTreeSet};

impl Cases {
    /// The officers a recording is attributed to: the camera's (or the one recorded at
    /// acquisition) and, for the recording's time, the camera's assignment — which may have
    /// been recorded after the acquisition.
    pub(super) fn officers_of(
        &self,
        item: &Item,
    ) -> Result<Vec<(OfficerId, &'static str)>, CaseError> {
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
}
