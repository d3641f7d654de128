//! The station as a pipeline of stages (see docs/ARCHITECTURE.md for the drawing).
//!
//! ```text
//!  detection ──(bounded channel)──▶ acquisition ──release──┬──▶ time-stamping
//!  (folder watch, USB)              (≤ max_cameras at once) ├──▶ case links (+ disposals)
//!                                                           ├──▶ transcode ──made──┐
//!                                                           ├──▶ upload ◀──────────┘
//!                                                           └──▶ wipe ◀──acknowledged── upload
//! ```
//!
//! Detection feeds acquisition through a bounded channel; acquisition is the foreground (an
//! officer waits for "safe to undock"). Every other stage is a [`Stage`]: one pass over its
//! durable queue in the journal or the custody log, run again when a producer bumps its
//! [`Wake`] (a release, derivatives made, an upload acknowledged), when its queue says work
//! falls due (an upload's retry-at), or at its interval. A pass never blocks the async
//! workers: journal and log writes go to blocking threads, FFmpeg to a thread of its own. The
//! queues being durable, a crash or the shutdown at any point loses nothing: the next start
//! takes up what is left.

pub mod dispose;
mod readers;
pub mod stage;
pub mod stages;
pub mod wake;
pub mod wipe;

pub use stage::{Fatal, Pass, Shutdown, Stage, StageError};
pub use wake::{Waiter, Wake};

use crate::dock::daemon::{Dock, DockState, Wakes};
use crate::dock::watch;
use crate::station::Station;
use std::sync::Arc;
use std::sync::atomic::AtomicBool;
use std::time::Duration;

/// How long the stages get to reach a safe point after the shutdown signal; what they leave is
/// in their durable queues and is taken up at the next start.
const STAGE_GRACE: Duration = Duration::from_secs(10);

/// Each stage's interval: how often it looks at its queue when nothing woke it. Wake-ups are
/// not lost, so these only bound how late work that arrives unannounced (another process's
/// upload queued, a register imported) is taken up.
const EVERY_TIMESTAMP: Duration = Duration::from_secs(60);
const EVERY_LINKS: Duration = Duration::from_secs(60);
const EVERY_UPLOAD: Duration = Duration::from_secs(30);
const EVERY_TRANSCODE: Duration = Duration::from_secs(30);
const EVERY_WIPE: Duration = Duration::from_secs(30);

/// Run the dock until `stop` resolves (a signal) or a stage panics; then let in-flight copies
/// finish, give the stages [`STAGE_GRACE`], and return the threads to join once the runtime is
/// gone.
pub async fn run(
    st: &Arc<Station>,
    mount_root: std::path::PathBuf,
    stop: impl std::future::Future<Output = ()>,
    fatal: Fatal,
) -> anyhow::Result<Vec<std::thread::JoinHandle<()>>> {
    let stop_signal = {
        let fatal = fatal.clone();
        async move {
            tokio::select! {
                _ = stop => {}
                _ = fatal.happened() => {}
            }
        }
    };
    let (tx, rx) = tokio::sync::mpsc::channel(64);
    let watch_stop = Arc::new(AtomicBool::new(false));
    let mut threads = vec![
        watch::run(mount_root.clone(), tx.clone(), watch_stop.clone())
            .map_err(anyhow::Error::msg)?,
    ];
    if st.settings.dock.usb {
        match crate::dock::usb::run(
            st.settings.profiles.clone(),
            mount_root.clone(),
            tx,
            watch_stop.clone(),
        ) {
            Ok(t) => threads.extend(t),
            Err(e) => {
                tracing::warn!(error = %e, "USB detection unavailable; watching the folder only")
            }
        }
    }
    let tsa = st.tsa_client()?;
    eprintln!(
        "evidock dock: station {} watching {} ({} slot(s), {} at once); {}",
        st.id(),
        mount_root.display(),
        st.settings.dock.slots,
        st.settings.dock.max_cameras,
        match &tsa {
            // Never the URL as configured: it may hold credentials.
            Some(c) => format!("trusted time from {}", c.url_for_display()),
            None => "no TSA configured — local time only".into(),
        }
    );
    let (stop_tx, shutdown) = Shutdown::new();
    let wakes = Wakes::default();
    // Upload and transcode hold back while cameras are copied; the end of the copying (a
    // release, or a session that failed or was cut off) wakes them.
    for wake in [wakes.upload.clone(), wakes.transcode.clone()] {
        st.acquiring.on_idle(move || wake.bump());
    }
    let wipes = wipe::WipeQueue::default();
    let mut stages = tokio::task::JoinSet::new();
    // Each stage its task, woken by its own counter.
    fn spawn<S: Stage>(
        stages: &mut tokio::task::JoinSet<&'static str>,
        (shutdown, fatal): (&Shutdown, &Fatal),
        s: S,
        wake: &Wake,
        every: Duration,
    ) {
        stages.spawn(stage::run(
            s,
            wake.waiter(),
            every,
            shutdown.clone(),
            fatal.clone(),
        ));
    }
    let ctl = (&shutdown, &fatal);
    if let Some(client) = tsa {
        let s = stages::Timestamping {
            log: st.log.clone(),
            client,
        };
        spawn(&mut stages, ctl, s, &wakes.timestamp, EVERY_TIMESTAMP);
    }
    let cases = Arc::new(st.cases()?);
    spawn(
        &mut stages,
        ctl,
        stages::CaseLinks {
            cases: cases.clone(),
            store: st.store.clone(),
            spools: Arc::new([st.spool.clone(), st.derivatives.clone()]),
        },
        &wakes.links,
        EVERY_LINKS,
    );
    spawn(
        &mut stages,
        ctl,
        stages::Upload {
            uploader: st.uploader(),
            cases,
            acknowledged: wakes.wipe.clone(),
        },
        &wakes.upload,
        EVERY_UPLOAD,
    );
    let mut transcode_stop = None;
    if st.settings.transcode.enabled {
        let transcoder = st.transcoder();
        transcode_stop = Some(transcoder.stop.clone());
        let (s, thread) = stages::Transcode::start(transcoder, wakes.upload.clone())?;
        threads.push(thread);
        spawn(&mut stages, ctl, s, &wakes.transcode, EVERY_TRANSCODE);
    }
    spawn(
        &mut stages,
        ctl,
        wipe::Wipe {
            acquirer: st.acquirer(),
            queue: wipes.clone(),
        },
        &wakes.wipe,
        EVERY_WIPE,
    );
    let policy = evidock_store::checkpoints::CheckpointPolicy::default();
    spawn(
        &mut stages,
        ctl,
        stages::Checkpointer::new(st.log.clone(), policy),
        &Wake::default(),
        policy.every / 5,
    );
    let state = DockState::default();
    let readers = readers::start(st, &state);
    let dock = Dock {
        acquirer: st.acquirer(),
        profiles: st.settings.profiles.clone(),
        clock: st.clock.clone(),
        log: st.log.clone(),
        max_cameras: st.settings.dock.max_cameras,
        automount: st.settings.dock.automount,
        state,
        wakes,
        wipes,
    };
    // Returns once a shutdown was asked for and every in-flight copy has finished.
    dock.run(rx, stop_signal).await;
    watch_stop.store(true, std::sync::atomic::Ordering::Relaxed);
    if let Some(t) = transcode_stop {
        // A job stops between packets and is made again at the next start.
        t.store(true, std::sync::atomic::Ordering::Relaxed);
    }
    let _ = stop_tx.send(true);
    let all_stopped = tokio::time::timeout(STAGE_GRACE, async {
        while let Some(done) = stages.join_next().await {
            if let Ok(name) = done {
                tracing::debug!(stage = name, "stage stopped");
            }
        }
    })
    .await;
    if all_stopped.is_err() {
        tracing::warn!(
            "background stages still busy {} s after shutdown; stopped (their work resumes at the next start)",
            STAGE_GRACE.as_secs()
        );
        stages.abort_all();
    }
    // Dropping the stages drops the transcode stage's sender: its thread's wait ends.
    drop(stages);
    drop(readers);
    Ok(threads)
}
