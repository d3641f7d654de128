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
    let st = ctx.station()?;
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
        // Upload with read-back in the background: after every release, when derivatives are
        // made, and every 30 s.
        let upload_wake = Arc::new(tokio::sync::Notify::new());
        {
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
        let dock = Dock {
            acquirer: st.acquirer(),
            profiles: st.settings.profiles.clone(),
            clock: st.clock.clone(),
            log: st.log.clone(),
            max_cameras: st.settings.dock.max_cameras,
            automount: st.settings.dock.automount,
            state: DockState::default(),
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
