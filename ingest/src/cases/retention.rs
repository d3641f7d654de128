//! How long each item is kept and how it ends: retention from its links and category (recorded
//! as `retention-changed` events), what is due, the disposal of an item, and legal holds on the
//! store's objects. Apart because it is the only part that lets evidence go.

use super::index::{self, CaseEntry, Item};
use super::{CaseError, Cases, Disposal, Due, Retention};
use chrono::{DateTime, Utc};
use evidock_verify::event::payload::{DisposedPayload, RetentionChangedPayload};
use evidock_verify::event::{Actor, NewEvent, Role, Subject, Timestamp};
use evidock_verify::id::EvidenceId;
use std::collections::BTreeSet;

impl Cases {
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
                match fs_err::remove_file(&p) {
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
        if let Ok(entries) = fs_err::read_dir(&self.fetching) {
            for e in entries.flatten() {
                if e.file_name().to_string_lossy().starts_with(&prefix) {
                    match fs_err::remove_file(e.path()) {
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
}
