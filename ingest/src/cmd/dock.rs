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
    /// Make the station first if the data directory holds none (a new dock's first start);
    /// without it, a directory without a station is refused.
    #[arg(long)]
    pub init: bool,
}

pub fn run(ctx: &Ctx, args: DockArgs) -> anyhow::Result<u8> {
    let create = if args.init {
        crate::station::Create::IfMissing
    } else {
        crate::station::Create::No
    };
    let st = Arc::new(crate::station::Station::open(
        &ctx.data_dir,
        ctx.settings.clone(),
        create,
    )?);
    if st.key_created {
        eprintln!(
            "evidock dock: made station {} in {}",
            st.id(),
            st.data_dir.display()
        );
    }
    let _acquiring = crate::acquire::lock::AcquireLock::take(&st.data_dir, "dock")?;
    let mount_root = args.mount_root.unwrap_or_else(|| st.mount_root());
    // Events a crash left after the last checkpoint are sealed before anything new happens.
    seal(&st, "left by the previous run");
    match crate::upload::queue_unqueued_originals(&st.journal, &st.spool, st.clock.now()) {
        Ok(0) => {}
        Ok(n) => tracing::warn!(
            originals = n,
            "acquired originals that were never queued for upload are queued now"
        ),
        Err(e) => anyhow::bail!("journal: cannot look for unqueued originals: {e}"),
    }
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()?;
    let fatal = Fatal::default();
    let threads = rt.block_on(pipeline(&st, mount_root, fatal.clone()))?;
    // Dropping the runtime waits for blocking work a stage left running (a log append in
    // `spawn_blocking` finishes; it is never cut off mid-write).
    drop(rt);
    for t in threads {
        let _ = t.join();
    }
    // Last, when no stage can write any more: one checkpoint over everything, so the log a
    // reviewer copies from a stopped station is wholly sealed.
    seal(&st, "at shutdown");
    if let Some(stage) = fatal.failed() {
        eprintln!(
            "evidock dock: the {stage} stage panicked (see the log above); stopped in order, exiting non-zero to be started again"
        );
        return Ok(exit::FAILED);
    }
    Ok(exit::OK)
}

/// Sign a checkpoint over every event logged so far.
fn seal(st: &crate::station::Station, when: &str) {
    match st.log.with(|l| l.checkpoint()) {
        Ok(Some(cp)) => tracing::info!(size = cp.checkpoint.size, "custody log sealed {when}"),
        Ok(None) => {}
        Err(e) => {
            tracing::error!(error = %e, "could not seal the custody log {when}");
            eprintln!("evidock dock: could not seal the custody log {when}: {e}");
        }
    }
}

/// A stage that panicked: logged, the dock stopped in order (copies finished, the log sealed),
/// and a non-zero exit, so that its service manager starts it again.
#[derive(Clone, Default)]
struct Fatal {
    stage: Arc<std::sync::Mutex<Option<&'static str>>>,
    wake: Arc<tokio::sync::Notify>,
}

impl Fatal {
    fn fail(&self, stage: &'static str) {
        self.stage
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .get_or_insert(stage);
        // A permit is kept: the dock may not be waiting yet.
        self.wake.notify_one();
    }

    fn failed(&self) -> Option<&'static str> {
        *self.stage.lock().unwrap_or_else(|p| p.into_inner())
    }
}

/// The one shutdown signal every background stage watches. It is given once acquisition has
/// stopped (in-flight copies finished), so nothing a camera delivered is left unrecorded.
#[derive(Clone)]
struct Shutdown(tokio::sync::watch::Receiver<bool>);

impl Shutdown {
    async fn requested(&mut self) {
        let _ = self.0.wait_for(|stop| *stop).await;
    }
}

/// How long the background stages get to reach a safe point after the shutdown signal; what
/// they leave is in their durable queues (the journal) and is taken up at the next start.
const STAGE_GRACE: std::time::Duration = std::time::Duration::from_secs(10);

/// Detection → acquisition → release in the foreground; time-stamping, case links, upload with
/// read-back and transcoding as background stages, each taking its work from durable state (the
/// journal and the log) and woken by a release. Returns the threads to join once the runtime
/// is gone.
async fn pipeline(
    st: &Arc<crate::station::Station>,
    mount_root: std::path::PathBuf,
    fatal: Fatal,
) -> anyhow::Result<Vec<std::thread::JoinHandle<()>>> {
    let signals = shutdown_signal()
        .map_err(|e| anyhow::anyhow!("cannot install the SIGTERM/SIGINT handlers: {e}"))?;
    let stop_signal = {
        let wake = fatal.wake.clone();
        async move {
            tokio::select! {
                _ = signals => {}
                _ = wake.notified() => {}
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
    let released = Arc::new(tokio::sync::Notify::new());
    eprintln!(
        "evidock dock: station {} watching {} ({} slot(s), {} at once); {}",
        st.id(),
        mount_root.display(),
        st.settings.dock.slots,
        st.settings.dock.max_cameras,
        match &st.settings.tsa {
            Some(t) => format!("trusted time from {}", t.url_for_display()),
            None => "no TSA configured — local time only".into(),
        }
    );
    let (stop_tx, stop_rx) = tokio::sync::watch::channel(false);
    let shutdown = Shutdown(stop_rx);
    let mut stages = tokio::task::JoinSet::new();
    // Time-stamp checkpoints; nothing waits for it.
    if let Some(client) = super::log::tsa_client(st)? {
        let log = st.log.clone();
        let released = released.clone();
        stages.spawn(stage("time-stamping", fatal.clone(), shutdown.clone(), released, None, 60, move || {
            let (log, client) = (log.clone(), client.clone());
            async move {
                match evidock_store::timestamping::timestamp_pending(&log, &client, 100).await {
                    Ok(run) => {
                        if let Some(e) = run.failure {
                            tracing::warn!(pending = run.pending.len(), error = %e, "TSA unreachable; checkpoints queued");
                        }
                    }
                    Err(e) => tracing::error!(error = %e, "time-stamping failed"),
                }
            }
        }));
    }
    // Cases: link new recordings; dispose of expired evidence only when `[retention]
    // auto_dispose` says so.
    let cases = Arc::new(st.cases()?);
    {
        let cases = cases.clone();
        let store = st.store.clone();
        let spools = Arc::new([st.spool.clone(), st.derivatives.clone()]);
        stages.spawn(stage(
            "case links",
            fatal.clone(),
            shutdown.clone(),
            released.clone(),
            None,
            60,
            move || {
                let (cases, store, spools) = (cases.clone(), store.clone(), spools.clone());
                async move {
                    let c = cases.clone();
                    let made =
                        tokio::task::spawn_blocking(move || super::case::auto_link(&c, true))
                            .await
                            .unwrap_or_default();
                    if !made.is_empty() {
                        tracing::info!(
                            links = made.len(),
                            review = made.iter().filter(|l| l.review).count(),
                            "recordings linked to cases"
                        );
                    }
                    if cases.retention.auto_dispose {
                        auto_dispose(&cases, &store, &spools).await;
                    }
                }
            },
        ));
    }
    // Upload with read-back: after every release, when derivatives are made, and every 30 s.
    // Legal holds follow each pass.
    let upload_wake = Arc::new(tokio::sync::Notify::new());
    {
        let uploader = st.uploader();
        let store = st.store.clone();
        let cases = cases.clone();
        // An upload cut off by the shutdown is queued in the journal and sent again at the next
        // start; its `uploaded` event is only written after the read-back.
        stages.spawn(stage(
            "upload",
            fatal.clone(),
            shutdown.clone(),
            released.clone(),
            Some(upload_wake.clone()),
            30,
            move || {
                let (uploader, store, cases) = (uploader.clone(), store.clone(), cases.clone());
                async move {
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
                }
            },
        ));
    }
    // Playback copies and thumbnails on their own thread at lower priority, after each release
    // and every 30 s. At shutdown a job stops between packets and is made again next start.
    if st.settings.transcode.enabled {
        let (wake_tx, wake_rx) = std::sync::mpsc::channel();
        let transcoder = st.transcoder();
        let transcode_stop = transcoder.stop.clone();
        threads.push(crate::transcode::spawn_worker(
            transcoder,
            wake_rx,
            std::time::Duration::from_secs(30),
            // notify_one keeps the wake-up if the uploader is busy with a pass.
            move || upload_wake.notify_one(),
        )?);
        let released = released.clone();
        let mut shutdown = shutdown.clone();
        stages.spawn(async move {
            loop {
                tokio::select! {
                    _ = shutdown.requested() => break,
                    _ = released.notified() => {}
                }
                if wake_tx.send(()).is_err() {
                    break;
                }
            }
            transcode_stop.store(true, std::sync::atomic::Ordering::Relaxed);
            // Dropping `wake_tx` ends the worker's wait.
            "transcode"
        });
    }
    let state = DockState::default();
    // The status page, API and metrics; and alerts, checked every 30 s. They only read.
    let mut readers = tokio::task::JoinSet::new();
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
    // Returns once a shutdown was asked for and every in-flight copy has finished.
    dock.run(rx, stop_signal).await;
    watch_stop.store(true, std::sync::atomic::Ordering::Relaxed);
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
    readers.abort_all();
    Ok(threads)
}

/// A background stage: one `pass` now, then again after every release (or `also`, when given)
/// and every `every_secs`, until the shutdown signal (which also cuts a pass short: each pass
/// takes its work from durable state, so the rest is done at the next start).
async fn stage<F, Fut>(
    name: &'static str,
    fatal: Fatal,
    mut shutdown: Shutdown,
    released: Arc<tokio::sync::Notify>,
    also: Option<Arc<tokio::sync::Notify>>,
    every_secs: u64,
    pass: F,
) -> &'static str
where
    F: Fn() -> Fut,
    Fut: std::future::Future<Output = ()> + Send + 'static,
{
    let also_notified = || async {
        match &also {
            Some(n) => n.notified().await,
            None => std::future::pending().await,
        }
    };
    loop {
        // Registered before the pass: a release while the pass runs (`notify_waiters` keeps no
        // permit) wakes the next pass at once instead of `every_secs` later.
        let woken = released.notified();
        tokio::pin!(woken);
        woken.as_mut().enable();
        // Each pass its own task: a panic in it is seen here (not swallowed with the task),
        // and stops the dock.
        let mut task = tokio::spawn(pass());
        tokio::select! {
            _ = shutdown.requested() => {
                task.abort();
                break;
            }
            done = &mut task => {
                if let Err(e) = done
                    && e.is_panic()
                {
                    tracing::error!(stage = name, error = %e, "stage panicked: the dock stops in order and exits non-zero, so that its service manager starts it again");
                    fatal.fail(name);
                    break;
                }
            }
        }
        tokio::select! {
            _ = shutdown.requested() => break,
            _ = &mut woken => {}
            _ = also_notified() => {}
            _ = tokio::time::sleep(std::time::Duration::from_secs(every_secs)) => {}
        }
    }
    name
}

/// Dispose of every item that is due, as the configuration asks; each is a custody event.
async fn auto_dispose(
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

/// SIGINT or SIGTERM. The handlers are installed when this is called, before the dock says it
/// is watching: a signal from then on stops it in order instead of killing it.
fn shutdown_signal() -> std::io::Result<impl std::future::Future<Output = ()>> {
    use tokio::signal::unix::{SignalKind, signal};
    let mut term = signal(SignalKind::terminate())?;
    let mut int = signal(SignalKind::interrupt())?;
    Ok(async move {
        tokio::select! {
            _ = term.recv() => {}
            _ = int.recv() => {}
        }
    })
}
