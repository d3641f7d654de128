//! Ctrl-C and SIGTERM for the commands that work for a while (`ingest`, `upload`, `export`,
//! `verify`): the first asks the command to stop at its next safe point, a second Ctrl-C stops
//! the process at once (every durable step is crash-safe: what was finished is kept, the rest
//! resumes on the next run).

use crate::exit;
use std::sync::Arc;
use std::sync::atomic::{AtomicU8, Ordering};

/// The signals received so far, as the exit status they ask for (0: none).
#[derive(Debug, Clone, Default)]
pub struct Interrupt(Arc<AtomicU8>);

impl Interrupt {
    /// Watch SIGINT and SIGTERM from now on (a thread of its own; the signals are registered
    /// before this returns, so none is missed).
    pub fn watch(command: &'static str) -> anyhow::Result<Self> {
        use tokio::signal::unix::{SignalKind, signal};
        let got = Interrupt::default();
        let flag = got.clone();
        let (ready, registered) = std::sync::mpsc::channel();
        std::thread::Builder::new()
            .name("signals".into())
            .spawn(move || {
                let rt = match tokio::runtime::Builder::new_current_thread()
                    .enable_all()
                    .build()
                {
                    Ok(rt) => rt,
                    Err(e) => return drop(ready.send(Err(e))),
                };
                rt.block_on(async move {
                    let (mut int, mut term) =
                        match (signal(SignalKind::interrupt()), signal(SignalKind::terminate())) {
                            (Ok(i), Ok(t)) => (i, t),
                            (Err(e), _) | (_, Err(e)) => return drop(ready.send(Err(e))),
                        };
                    let _ = ready.send(Ok(()));
                    loop {
                        let code = tokio::select! {
                            _ = int.recv() => exit::INTERRUPTED,
                            _ = term.recv() => exit::TERMINATED,
                        };
                        if flag.0.swap(code, Ordering::SeqCst) != 0 {
                            eprintln!(
                                "\nevidock {command}: stopped at once; what was finished is kept, the rest resumes on the next run"
                            );
                            std::process::exit(i32::from(code));
                        }
                        eprintln!(
                            "\nevidock {command}: stopping at the next safe point (Ctrl-C again to stop at once)"
                        );
                    }
                });
            })?;
        registered.recv()??;
        Ok(got)
    }

    /// The exit status the signal asks for (130 SIGINT, 143 SIGTERM), once one came.
    pub fn code(&self) -> Option<u8> {
        match self.0.load(Ordering::SeqCst) {
            0 => None,
            c => Some(c),
        }
    }
}
