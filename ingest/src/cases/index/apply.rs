//! How each custody event changes the index: one set of SQL statements per kind it tracks.
//! Apart from the queries because it is the only code that writes the index.

use super::{LONGEST_RECORDING_HOURS, ts};
use chrono::{DateTime, NaiveDateTime, Utc};
use evidock_verify::case::CaseRegisteredPayload;
use evidock_verify::event::payload::{
    AcquiredPayload, CameraAssignedPayload, DisposedPayload, LinkedPayload,
    RetentionChangedPayload, TranscodedPayload, UnlinkedPayload, UploadedPayload,
};
use evidock_verify::event::{CustodyEvent, EventKind, Subject};
use rusqlite::{Transaction, params};

/// Apply one event. Events of kinds the index does not track, and malformed payloads (the
/// verifier reports those), change nothing.
pub(super) fn apply(tx: &Transaction<'_>, ev: &CustodyEvent) -> rusqlite::Result<()> {
    refer(tx, ev)?;
    let actor = format!("{}:{}", role_name(ev), ev.actor.id);
    match &ev.kind {
        EventKind::Acquired => {
            let (Subject::Evidence(id), Ok(p)) = (&ev.subject, ev.payload::<AcquiredPayload>())
            else {
                return Ok(());
            };
            let start = p.recorded.as_ref().map(|r| ts(r.corrected.0));
            // Without a file time the recording counts as an instant.
            let end = recording_end(&p, ev)
                .or(p.recorded.as_ref().map(|r| r.corrected.0))
                .map(ts);
            tx.execute(
                "INSERT OR IGNORE INTO items (evidence, station, seq, acquired_at, sha256, size, device,
                   officer, officer_source, path, recorded_raw, start_utc, end_utc, time_rule,
                   important, session)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14, ?15, ?16)",
                params![
                    id.as_str(),
                    ev.station.as_str(),
                    ev.seq as i64,
                    ev.time.to_string(),
                    p.digests.sha256.to_string(),
                    p.size as i64,
                    p.device.as_str(),
                    p.officer.as_ref().map(|o| o.as_str()),
                    p.officer_source
                        .map(|s| serde_json::to_value(s).ok())
                        .and_then(|v| v.and_then(|v| v.as_str().map(str::to_string))),
                    p.path.display(),
                    p.recorded.as_ref().map(|r| r.raw.clone()),
                    start,
                    end,
                    p.recorded.as_ref().map(|r| r.rule.clone()),
                    p.important,
                    p.session.as_str(),
                ],
            )?;
        }
        EventKind::Uploaded => {
            let (Subject::Evidence(id), Ok(p)) = (&ev.subject, ev.payload::<UploadedPayload>())
            else {
                return Ok(());
            };
            let role = serde_json::to_value(p.role)
                .ok()
                .and_then(|v| v.as_str().map(str::to_string))
                .unwrap_or_default();
            tx.execute(
                "INSERT OR IGNORE INTO objects (evidence, role, key, sha256, size) VALUES (?1, ?2, ?3, ?4, ?5)",
                params![id.as_str(), role, p.object, p.sha256.to_string(), p.size as i64],
            )?;
        }
        EventKind::CameraAssigned => {
            let Ok(p) = ev.payload::<CameraAssignedPayload>() else {
                return Ok(());
            };
            tx.execute(
                "INSERT OR REPLACE INTO assignments (device, from_utc, officer) VALUES (?1, ?2, ?3)",
                params![p.device.as_str(), p.from.to_string(), p.officer.as_str()],
            )?;
        }
        EventKind::CaseRegistered => {
            let Ok(p) = ev.payload::<CaseRegisteredPayload>() else {
                return Ok(());
            };
            let id = p.record.case.as_str();
            let record = serde_json::to_string(&p.record).unwrap_or_default();
            tx.execute(
                "INSERT INTO cases (case_id, record, status, registered_at, registrations, source)
                 VALUES (?1, ?2, ?3, ?4, 1, ?5)
                 ON CONFLICT(case_id) DO UPDATE SET record = excluded.record, status = excluded.status,
                   registered_at = excluded.registered_at, registrations = registrations + 1,
                   source = excluded.source",
                params![
                    id,
                    record,
                    p.record.status.as_str(),
                    ev.time.to_string(),
                    p.source
                ],
            )?;
            tx.execute("DELETE FROM case_windows WHERE case_id = ?1", [id])?;
            for w in &p.record.windows {
                tx.execute(
                    "INSERT INTO case_windows (case_id, start_utc, end_utc) VALUES (?1, ?2, ?3)",
                    params![id, w.start.to_string(), w.end.to_string()],
                )?;
            }
        }
        EventKind::Linked => {
            let Ok(p) = ev.payload::<LinkedPayload>() else {
                return Ok(());
            };
            tx.execute(
                "INSERT INTO links (evidence, case_id, linked, automatic, review, reason, actor, at, changes)
                 VALUES (?1, ?2, 1, ?3, ?4, ?5, ?6, ?7, 1)
                 ON CONFLICT(evidence, case_id) DO UPDATE SET linked = 1, automatic = excluded.automatic,
                   review = excluded.review, reason = excluded.reason, actor = excluded.actor,
                   at = excluded.at, changes = changes + 1",
                params![
                    p.evidence.as_str(),
                    p.case.as_str(),
                    p.automatic,
                    p.review,
                    p.reason,
                    actor,
                    ev.time.to_string()
                ],
            )?;
        }
        EventKind::Unlinked => {
            let Ok(p) = ev.payload::<UnlinkedPayload>() else {
                return Ok(());
            };
            tx.execute(
                "INSERT INTO links (evidence, case_id, linked, automatic, review, reason, actor, at, changes)
                 VALUES (?1, ?2, 0, 0, 0, ?3, ?4, ?5, 1)
                 ON CONFLICT(evidence, case_id) DO UPDATE SET linked = 0, automatic = 0, review = 0,
                   reason = excluded.reason, actor = excluded.actor, at = excluded.at,
                   changes = changes + 1",
                params![
                    p.evidence.as_str(),
                    p.case.as_str(),
                    p.reason,
                    actor,
                    ev.time.to_string()
                ],
            )?;
        }
        EventKind::RetentionChanged => {
            let Ok(p) = ev.payload::<RetentionChangedPayload>() else {
                return Ok(());
            };
            tx.execute(
                "UPDATE items SET category = ?2, retain_until = ?3, legal_hold = ?4, retention_ref = ?5
                 WHERE evidence = ?1",
                params![
                    p.evidence.as_str(),
                    p.category,
                    p.retain_until.map(|t| t.to_string()),
                    p.legal_hold,
                    format!("{}:{}", ev.station, ev.seq)
                ],
            )?;
        }
        EventKind::Disposed => {
            let Ok(p) = ev.payload::<DisposedPayload>() else {
                return Ok(());
            };
            tx.execute(
                "UPDATE items SET disposed_at = ?2, disposed_reason = ?3 WHERE evidence = ?1",
                params![p.evidence.as_str(), ev.time.to_string(), p.reason],
            )?;
        }
        _ => {}
    }
    Ok(())
}

/// What an event is about, for `evidence show`: its subject when that is an evidence item or a
/// session, every evidence item its payload names (a link, an export, a wipe), and for a
/// derivative the content it was made from (`sha:<digest>`).
fn refer(tx: &Transaction<'_>, ev: &CustodyEvent) -> rusqlite::Result<()> {
    let mut subjects = std::collections::BTreeSet::new();
    match &ev.subject {
        Subject::Evidence(id) => {
            subjects.insert(format!("evidence:{id}"));
        }
        Subject::Session(s) => {
            subjects.insert(format!("session:{s}"));
        }
        _ => {}
    }
    for id in evidence_ids_in(&ev.payload.to_string()) {
        subjects.insert(format!("evidence:{id}"));
    }
    // A derivative is made once per content: every item of that content finds it by digest.
    if ev.kind == EventKind::Transcoded
        && let Ok(p) = ev.payload::<TranscodedPayload>()
    {
        subjects.insert(format!("sha:{}", p.parent_sha256));
    }
    let mut stmt = tx.prepare_cached(
        "INSERT OR IGNORE INTO event_refs (subject, station, seq) VALUES (?1, ?2, ?3)",
    )?;
    for s in subjects {
        stmt.execute(params![s, ev.station.as_str(), ev.seq as i64])?;
    }
    Ok(())
}

/// Every evidence ID (`ev-` and 20 hex digits) in a text: each one that occurs in it, as a
/// substring search for that ID would find it.
pub(super) fn evidence_ids_in(text: &str) -> Vec<&str> {
    const HEX: usize = 20;
    let mut out = Vec::new();
    for (at, _) in text.match_indices("ev-") {
        let id = &text[at..];
        if id.len() >= 3 + HEX
            && id.as_bytes()[3..3 + HEX]
                .iter()
                .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(b))
        {
            out.push(&id[..3 + HEX]);
        }
    }
    out
}

fn role_name(ev: &CustodyEvent) -> String {
    ev.actor.role.as_str().to_string()
}

/// The corrected end of a recording from the camera's file time: the camera closes the file
/// when it stops recording, and its file time is in the same (possibly wrong) clock as the
/// name's time, so the difference is the length whatever the clock said.
fn recording_end(p: &AcquiredPayload, ev: &CustodyEvent) -> Option<DateTime<Utc>> {
    let rec = p.recorded.as_ref()?;
    let raw = NaiveDateTime::parse_from_str(&rec.raw, "%Y-%m-%dT%H:%M:%S").ok()?;
    let mtime = p.mtime?.0.with_timezone(&ev.offset.0).naive_local();
    let len = mtime - raw;
    let plausible =
        len >= chrono::Duration::zero() && len <= chrono::Duration::hours(LONGEST_RECORDING_HOURS);
    Some(if plausible {
        rec.corrected.0 + len
    } else {
        rec.corrected.0
    })
}

#[cfg(test)]
mod tests {
    use super::evidence_ids_in;

    #[test]
    fn evidence_ids_are_found_wherever_they_occur() {
        let a = "ev-0123456789abcdef0123";
        let text = format!(
            r#"{{"evidence":"{a}","key":"evidence/2026/{a}.mp4","short":"ev-0123","upper":"ev-0123456789ABCDEF0123","tail":"ev-"}}"#
        );
        assert_eq!(evidence_ids_in(&text), vec![a, a]);
        assert!(evidence_ids_in("").is_empty());
    }
}
