//! Retention in the dock: items whose retention expired are disposed of, each a custody
//! event before its copies go, when `[retention] auto_dispose` says so.

use std::sync::Arc;

/// Dispose of every item that is due, as the configuration asks; each is a custody event.
pub async fn auto_dispose(
    cases: &Arc<crate::cases::Cases>,
    store: &evidock_store::objects::EvidenceStore,
    spools: &[crate::acquire::spool::Spool; 2],
) {
    // One disposal run at a time on the station (an admin's may be running).
    let c = cases.clone();
    let _turn = match tokio::task::spawn_blocking(move || c.disposal_turn()).await {
        Ok(Ok(t)) => t,
        Ok(Err(e)) => return tracing::error!(error = %e, "retention: no disposal turn"),
        Err(e) => {
            return tracing::error!(error = %e, "retention: taking the disposal turn panicked");
        }
    };
    // Disposals a run cut off after their `disposed` event: their copies first.
    let c = cases.clone();
    match tokio::task::spawn_blocking(move || c.unfinished_disposals()).await {
        Ok(Ok(items)) => {
            for item in items {
                remove_copies(
                    cases,
                    store,
                    spools,
                    &item,
                    "finished a disposal cut off earlier",
                )
                .await;
            }
        }
        Ok(Err(e)) => tracing::error!(error = %e, "retention: cannot list unfinished disposals"),
        Err(e) => tracing::error!(error = %e, "retention: listing unfinished disposals panicked"),
    }
    let c = cases.clone();
    let due = match tokio::task::spawn_blocking(move || c.due()).await {
        Ok(Ok(d)) => d,
        Ok(Err(e)) => return tracing::error!(error = %e, "retention: cannot list due evidence"),
        Err(e) => return tracing::error!(error = %e, "retention: listing due evidence panicked"),
    };
    for d in due {
        let c = cases.clone();
        let id = d.item.evidence.clone();
        let recorded = tokio::task::spawn_blocking(move || {
            c.record_disposal(
                &id,
                evidock_verify::event::Actor::station(&c.station),
                "retention expired; disposed automatically ([retention] auto_dispose = true)",
            )
        })
        .await;
        match recorded {
            Ok(Ok(item)) => {
                remove_copies(cases, store, spools, &item, "disposed of expired evidence").await
            }
            Ok(Err(e)) => tracing::error!(error = %e, "disposal not recorded"),
            Err(e) => tracing::error!(error = %e, "disposal panicked"),
        }
    }
}

/// Remove a disposed item's copies, and log how it went (`done` when every copy is gone).
async fn remove_copies(
    cases: &crate::cases::Cases,
    store: &evidock_store::objects::EvidenceStore,
    spools: &[crate::acquire::spool::Spool; 2],
    item: &crate::cases::index::Item,
    done: &str,
) {
    match cases
        .remove_copies(item, store, &[&spools[0], &spools[1]])
        .await
    {
        Ok(r) if r.errors.is_empty() => {
            tracing::info!(evidence = %item.evidence, removed = r.removed.len(), "{done}")
        }
        Ok(r) => {
            tracing::error!(evidence = %item.evidence, errors = ?r.errors, "disposed of, but copies remain")
        }
        Err(e) => {
            tracing::error!(evidence = %item.evidence, error = %e, "disposal: removing copies failed")
        }
    }
}
