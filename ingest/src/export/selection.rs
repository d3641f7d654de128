//! Which events of the log go into a case's package: the case's own, its items' (and their
//! derivatives'), their sessions' dockings, their cameras' assignments, key rotations. Apart
//! because it decides what is disclosed, and nothing else does.

use super::ExportError;
use crate::station::Station;
use evidock_verify::event::payload::TranscodedPayload;
use evidock_verify::event::{CustodyEvent, EventKind, Subject};
use evidock_verify::id::{CaseId, EvidenceId, Sha256};
use std::collections::BTreeSet;

/// The case's events, after sealing the log so every one of them is under a checkpoint.
pub(super) fn case_events(
    st: &Station,
    view: &crate::cases::CaseView,
    case: &CaseId,
) -> Result<Vec<CustodyEvent>, ExportError> {
    let items: BTreeSet<EvidenceId> = view
        .evidence
        .iter()
        .map(|l| l.item.evidence.clone())
        .collect();
    let shas: BTreeSet<Sha256> = view.evidence.iter().map(|l| l.item.sha256).collect();
    let sessions: BTreeSet<String> = view
        .evidence
        .iter()
        .map(|l| l.item.session.clone())
        .collect();
    let devices: BTreeSet<String> = view
        .evidence
        .iter()
        .map(|l| l.item.device.as_str().to_string())
        .collect();

    // Seal everything up to now, so every event of the case is under the checkpoint.
    st.log.seal(evidock_store::checkpoints::Moment::Export)?;
    let mut events = Vec::new();
    st.log.with(|l| {
        l.for_each_event(|ev| {
            if selected(&ev, case, &items, &shas, &sessions, &devices) {
                events.push(ev);
            }
        })
    })?;
    Ok(events)
}

/// Which events of the log belong to the case's package.
fn selected(
    ev: &CustodyEvent,
    case: &CaseId,
    items: &BTreeSet<EvidenceId>,
    shas: &BTreeSet<Sha256>,
    sessions: &BTreeSet<String>,
    devices: &BTreeSet<String>,
) -> bool {
    match &ev.subject {
        Subject::Case(c) => c == case,
        Subject::Evidence(e) => {
            items.contains(e)
                || (ev.kind == EventKind::Transcoded
                    && ev
                        .payload::<TranscodedPayload>()
                        .is_ok_and(|p| shas.contains(&p.parent_sha256)))
        }
        Subject::Session(s) => {
            sessions.contains(s.as_str())
                && matches!(
                    ev.kind,
                    EventKind::Docked
                        | EventKind::ClockSynced
                        | EventKind::Released
                        | EventKind::Undocked
                )
        }
        Subject::Device(d) => devices.contains(d.as_str()) && ev.kind == EventKind::CameraAssigned,
        // A key rotation vouches for the key of the package's earlier checkpoints.
        Subject::Station(_) => ev.kind == EventKind::KeyRotated,
        // A later version's subject: not this version's to disclose.
        Subject::Other { .. } => false,
    }
}
