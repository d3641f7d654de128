//! `evidock dock`: the long-running process that acquires every docked camera.

use super::Ctx;
use crate::dock::daemon::{Dock, DockState};
use crate::dock::watch;
use crate::exit;
use clap::Args;
use std::sync::Arc;
use std::sync::atomic::AtomicBool;

#[derive(Debug, Args)]
pub struct DockArgs {
    /// Watch this folder for camera volumes instead of the configured mount root.
    #[arg(long, value_name = "DIR")]
    pub mount_root: Option<std::path::PathBuf>,
}

pub fn run(ctx: &Ctx, args: DockArgs) -> anyhow::Result<u8> {
    let st = Arc::new(ctx.station()?);
    let mount_root = args.mount_root.unwrap_or_else(|| st.mount_root());
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()?;
    rt.block_on(async {
        let (tx, rx) = tokio::sync::mpsc::channel(64);
        let watch_stop = Arc::new(AtomicBool::new(false));
        let watcher = watch::run(mount_root.clone(), tx.clone(), watch_stop.clone())
            .map_err(anyhow::Error::msg)?;
        let usb_threads = if st.settings.dock.usb {
            match crate::dock::usb::run(
                st.settings.profiles.clone(),
                mount_root.clone(),
                tx,
                watch_stop.clone(),
            ) {
                Ok(t) => t,
                Err(e) => {
                    tracing::warn!(error = %e, "USB detection unavailable; watching the folder only");
                    Vec::new()
                }
            }
        } else {
            Vec::new()
        };
        let released = Arc::new(tokio::sync::Notify::new());
        eprintln!(
            "evidock dock: station {} watching {} ({} slot(s), {} at once); {}",
            st.id(),
            mount_root.display(),
            st.settings.dock.slots,
            st.settings.dock.max_cameras,
            match &st.settings.tsa {
                Some(t) => format!("trusted time from {}", t.url),
                None => "no TSA configured — local time only".into(),
            }
        );
        // Time-stamp checkpoints in the background; nothing waits for it.
        if let Some(client) = super::log::tsa_client(&st)? {
            let log = st.log.clone();
            let released = released.clone();
            tokio::spawn(async move {
                loop {
                    match evidock_store::timestamping::timestamp_pending(&log, &client, 100).await {
                        Ok(run) => {
                            if let Some(e) = run.failure {
                                tracing::warn!(pending = run.pending.len(), error = %e, "TSA unreachable; checkpoints queued");
                            }
                        }
                        Err(e) => tracing::error!(error = %e, "time-stamping failed"),
                    }
                    tokio::select! {
                        _ = released.notified() => {}
                        _ = tokio::time::sleep(std::time::Duration::from_secs(60)) => {}
                    }
                }
            });
        }
        // Cases: link new recordings after every release and every minute; dispose of expired
        // evidence only when `[retention] auto_dispose` says so.
        let cases = Arc::new(st.cases()?);
        {
            let cases = cases.clone();
            let released = released.clone();
            let store = st.store.clone();
            let spools = [st.spool.clone(), st.derivatives.clone()];
            tokio::spawn(async move {
                loop {
                    let c = cases.clone();
                    let made = tokio::task::spawn_blocking(move || super::case::auto_link(&c, true))
                        .await
                        .unwrap_or_default();
                    if !made.is_empty() {
                        tracing::info!(links = made.len(), review = made.iter().filter(|l| l.review).count(), "recordings linked to cases");
                    }
                    if cases.retention.auto_dispose {
                        auto_dispose(&cases, &store, &spools).await;
                    }
                    tokio::select! {
                        _ = released.notified() => {}
                        _ = tokio::time::sleep(std::time::Duration::from_secs(60)) => {}
                    }
                }
            });
        }
        // Upload with read-back in the background: after every release, when derivatives are
        // made, and every 30 s. Legal holds follow each pass.
        let upload_wake = Arc::new(tokio::sync::Notify::new());
        {
            let cases = cases.clone();
            let store = st.store.clone();
            let uploader = st.uploader();
            let released = released.clone();
            let upload_wake = upload_wake.clone();
            tokio::spawn(async move {
                loop {
                    let run = uploader.run_once().await;
                    if !run.uploaded.is_empty() || !run.failed.is_empty() {
                        tracing::info!(
                            uploaded = run.uploaded.len(),
                            retrying = run.retrying.len(),
                            failed = run.failed.len(),
                            "upload pass"
                        );
                    }
                    if let Some(e) = run.publish_error {
                        tracing::warn!(error = %e, "custody log not published");
                    }
                    if let Err(e) = cases.sync_holds(&store).await {
                        tracing::warn!(error = %e, "legal holds not applied to the store yet");
                    }
                    tokio::select! {
                        _ = released.notified() => {}
                        _ = upload_wake.notified() => {}
                        _ = tokio::time::sleep(std::time::Duration::from_secs(30)) => {}
                    }
                }
            });
        }
        // Playback copies and thumbnails on their own thread at lower priority, after each
        // release and every 30 s. It is not waited for at shutdown: a half-made derivative is
        // discarded and made again at the next start.
        if st.settings.transcode.enabled {
            let (wake_tx, wake_rx) = std::sync::mpsc::channel();
            crate::transcode::spawn_worker(
                st.transcoder(),
                wake_rx,
                watch_stop.clone(),
                std::time::Duration::from_secs(30),
                // notify_one keeps the wake-up if the uploader is busy with a pass.
                move || upload_wake.notify_one(),
            )?;
            let released = released.clone();
            tokio::spawn(async move {
                loop {
                    released.notified().await;
                    if wake_tx.send(()).is_err() {
                        break;
                    }
                }
            });
        }
        let state = DockState::default();
        // The status page, API and metrics; and alerts, checked every 30 s.
        if st.settings.status.enabled {
            let settings = st.settings.status.clone();
            let (s, live) = (st.clone(), state.clone());
            let source: crate::status::http::Source = Arc::new(move || {
                crate::status::report(&s, &s.settings.status, Some(live.view()))
            });
            let server = crate::status::http::serve(settings.clone(), source);
            tokio::spawn(async move {
                if let Err(e) = server.await {
                    tracing::error!(error = %e, "status page not served");
                    eprintln!("evidock dock: {e:#} — the dock runs on without its status page");
                }
            });
            eprintln!("status page: http://{}/", settings.listen);
        }
        {
            let (s, live) = (st.clone(), state.clone());
            tokio::spawn(async move {
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
                        Err(_) => {}
                    }
                }
            });
        }
        let dock = Dock {
            acquirer: st.acquirer(),
            profiles: st.settings.profiles.clone(),
            clock: st.clock.clone(),
            log: st.log.clone(),
            max_cameras: st.settings.dock.max_cameras,
            automount: st.settings.dock.automount,
            state,
            released,
        };
        dock.run(rx, shutdown_signal()).await;
        watch_stop.store(true, std::sync::atomic::Ordering::Relaxed);
        let _ = watcher.join();
        for t in usb_threads {
            let _ = t.join();
        }
        anyhow::Ok(())
    })?;
    Ok(exit::OK)
}

/// Dispose of every item that is due, as the configuration asks; each is a custody event.
async fn auto_dispose(
    cases: &Arc<crate::cases::Cases>,
    store: &evidock_store::objects::EvidenceStore,
    spools: &[crate::acquire::spool::Spool; 2],
) {
    let c = cases.clone();
    let due = match tokio::task::spawn_blocking(move || c.due()).await {
        Ok(Ok(d)) => d,
        Ok(Err(e)) => return tracing::error!(error = %e, "retention: cannot list due evidence"),
        Err(_) => return,
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
            Ok(Ok(item)) => match cases
                .remove_copies(&item, store, &[&spools[0], &spools[1]])
                .await
            {
                Ok(r) if r.errors.is_empty() => {
                    tracing::info!(evidence = %item.evidence, removed = r.removed.len(), "disposed of expired evidence")
                }
                Ok(r) => {
                    tracing::error!(evidence = %item.evidence, errors = ?r.errors, "disposed of expired evidence, but copies remain")
                }
                Err(e) => {
                    tracing::error!(evidence = %item.evidence, error = %e, "disposal: removing copies failed")
                }
            },
            Ok(Err(e)) => tracing::error!(error = %e, "disposal not recorded"),
            Err(_) => {}
        }
    }
}

/// SIGINT or SIGTERM.
async fn shutdown_signal() {
    let term = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    tokio::select! {
        _ = tokio::signal::ctrl_c() => {}
        _ = term => {}
    }
}
