//! `evidock dock`: the long-running process that acquires every docked camera. It only wires:
//! the station opened, its acquisition lock taken, the log sealed before and after, and the
//! pipeline (`crate::pipeline`) run on a runtime of two workers until a signal.

use super::Ctx;
use crate::exit;
use crate::pipeline::Fatal;
use clap::Args;
use evidock_store::checkpoints::Moment;
use std::sync::Arc;

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
    seal(&st, Moment::Start, "left by the previous run");
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
    let threads = rt.block_on(async {
        let signals = shutdown_signal()
            .map_err(|e| anyhow::anyhow!("cannot install the SIGTERM/SIGINT handlers: {e}"))?;
        crate::pipeline::run(&st, mount_root, signals, fatal.clone()).await
    })?;
    // Dropping the runtime waits for blocking work a stage left running (a log append in
    // `spawn_blocking` finishes; it is never cut off mid-write).
    drop(rt);
    for t in threads {
        let _ = t.join();
    }
    // Last, when no stage can write any more: one checkpoint over everything, so the log a
    // reviewer copies from a stopped station is wholly sealed.
    seal(&st, Moment::Shutdown, "at shutdown");
    if let Some(stage) = fatal.failed() {
        eprintln!(
            "evidock dock: the {stage} stage panicked (see the log above); stopped in order, exiting non-zero to be started again"
        );
        return Ok(exit::FAILED);
    }
    Ok(exit::OK)
}

/// Sign a checkpoint over every event logged so far.
fn seal(st: &crate::station::Station, at: Moment, when: &str) {
    match st.log.seal(at) {
        Ok(Some(cp)) => tracing::info!(size = cp.checkpoint.size, "custody log sealed {when}"),
        Ok(None) => {}
        Err(e) => {
            tracing::error!(error = %e, "could not seal the custody log {when}");
            eprintln!("evidock dock: could not seal the custody log {when}: {e}");
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
