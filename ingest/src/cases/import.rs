//! Importing a case register export: every row checked first, then one `case-registered` event
//! per new or changed case, then automatic linking. Apart because it is the one way cases come in.

use super::{CaseError, Cases, ImportReport, case_key, overlaps, register};
use evidock_verify::case::CaseRegisteredPayload;
use evidock_verify::event::{Actor, NewEvent, Role, Subject};
use evidock_verify::id::{EvidenceId, Sha256};
use std::collections::BTreeSet;

impl Cases {
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
}
