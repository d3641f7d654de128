//! The readers beside the pipeline: the status page, API and metrics, and the alerts checked
//! every `alert_interval`. They only read; dropping the set they run in stops them.

use crate::dock::daemon::DockState;
use crate::station::Station;
use std::sync::Arc;

/// Start the status server (when enabled) and the alert checks.
pub fn start(st: &Arc<Station>, state: &DockState) -> tokio::task::JoinSet<()> {
    let mut readers = tokio::task::JoinSet::new();
    // The status page, API and metrics; and alerts, checked every 30 s. They only read.
    if st.settings.status.enabled {
        let settings = st.settings.status.clone();
        let (s, live) = (st.clone(), state.clone());
        let source: crate::status::http::Source =
            Arc::new(move || crate::status::report(&s, &s.settings.status, Some(live.view())));
        let server = crate::status::http::serve(settings.clone(), source);
        readers.spawn(async move {
            if let Err(e) = server.await {
                tracing::error!(error = %e, "status page not served");
                eprintln!("evidock dock: {e:#} — the dock runs on without its status page");
            }
        });
        eprintln!("status page: http://{}/", settings.listen);
    }
    {
        let (s, live) = (st.clone(), state.clone());
        readers.spawn(async move {
            let mut seen = std::collections::BTreeSet::new();
            loop {
                tokio::time::sleep(s.settings.status.alert_interval).await;
                let (s2, l2) = (s.clone(), live.clone());
                match tokio::task::spawn_blocking(move || {
                    crate::status::report(&s2, &s2.settings.status, Some(l2.view()))
                })
                .await
                {
                    Ok(Ok(r)) => {
                        let hook = s.settings.status.hook.clone();
                        let mut seen2 = std::mem::take(&mut seen);
                        seen = tokio::task::spawn_blocking(move || {
                            crate::status::notify(&hook, &r.alerts, &mut seen2);
                            seen2
                        })
                        .await
                        .unwrap_or_default();
                    }
                    Ok(Err(e)) => tracing::warn!(error = %e, "status report failed"),
                    Err(e) => tracing::error!(error = %e, "status report panicked"),
                }
            }
        });
    }
    readers
}
