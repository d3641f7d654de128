//! A stage: one pass over its durable queue at a time, run again when woken, when its queue
//! says work falls due, or at its interval, until the shutdown.
//!
//! Every stage takes its work from durable state (the journal, the custody log), so a pass cut
//! short by the shutdown — or by a crash — loses nothing: the next start takes it up again.

use super::wake::Waiter;
use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

/// What one pass did.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct Pass {
    /// Items the pass settled (uploaded, linked, stamped, wiped…); 0 when nothing was due.
    pub done: usize,
    /// When work the stage's queue holds falls due (an upload's retry-at), if it knows.
    pub due_in: Option<Duration>,
}

impl Pass {
    pub fn did(done: usize) -> Self {
        Pass { done, due_in: None }
    }
}

/// Why a pass failed, classified by what the stage does next.
#[derive(Debug, thiserror::Error)]
pub enum StageError {
    /// A service the stage needs (the store, the TSA) did not answer: the queue waits and is
    /// tried again after `retry_in`.
    #[error("{what} (retried in {} s)", retry_in.as_secs())]
    Unavailable { what: String, retry_in: Duration },
    /// The stage's own durable state could not be read or written (journal, log, index): an
    /// error on the status page and in the log, tried again at the next wake-up or interval.
    #[error("{what}")]
    Local { what: String },
}

/// A stage of the pipeline.
pub trait Stage: Send + 'static {
    /// As logs and the status page name it.
    fn name(&self) -> &'static str;
    /// One pass over the stage's durable queue.
    fn pass(&mut self) -> impl Future<Output = Result<Pass, StageError>> + Send;
}

/// A stage that panicked: the dock stops in order (copies finished, the log sealed) and exits
/// non-zero, so that its service manager starts it again.
#[derive(Clone, Default, Debug)]
pub struct Fatal {
    stage: Arc<std::sync::Mutex<Option<&'static str>>>,
    wake: Arc<tokio::sync::Notify>,
}

impl Fatal {
    pub fn fail(&self, stage: &'static str) {
        self.stage
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .get_or_insert(stage);
        // A permit is kept: the dock may not be waiting yet.
        self.wake.notify_one();
    }

    /// The first stage that panicked.
    pub fn failed(&self) -> Option<&'static str> {
        *self.stage.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Resolves once a stage has panicked.
    pub async fn happened(&self) {
        self.wake.notified().await
    }
}

/// The one shutdown signal every stage watches. Given once acquisition has stopped (in-flight
/// copies finished), so nothing a camera delivered is left unrecorded.
#[derive(Clone, Debug)]
pub struct Shutdown(tokio::sync::watch::Receiver<bool>);

impl Shutdown {
    pub fn new() -> (tokio::sync::watch::Sender<bool>, Shutdown) {
        let (tx, rx) = tokio::sync::watch::channel(false);
        (tx, Shutdown(rx))
    }

    pub async fn requested(&mut self) {
        let _ = self.0.wait_for(|stop| *stop).await;
    }
}

/// Run `stage`: a pass now, then again when `wake` was bumped, when the pass says work falls
/// due, or `every`, whichever comes first; until `shutdown`, which also cuts a pass short.
/// Each pass runs as its own task, so a panic in it is seen here (and stops the dock through
/// `fatal`) instead of vanishing with the task.
pub async fn run<S: Stage>(
    mut stage: S,
    mut wake: Waiter,
    every: Duration,
    mut shutdown: Shutdown,
    fatal: Fatal,
) -> &'static str {
    let name = stage.name();
    loop {
        // Before the pass: a bump from here on, even during the pass, starts another one.
        wake.seen();
        let mut task = tokio::spawn(async move {
            let r = stage.pass().await;
            (stage, r)
        });
        let result = tokio::select! {
            _ = shutdown.requested() => {
                task.abort();
                break;
            }
            done = &mut task => match done {
                Ok((s, r)) => {
                    stage = s;
                    r
                }
                Err(e) => {
                    if e.is_panic() {
                        tracing::error!(stage = name, error = %e, "stage panicked: the dock stops in order and exits non-zero, so that its service manager starts it again");
                        fatal.fail(name);
                    }
                    break;
                }
            }
        };
        let pause = match result {
            Ok(p) => p.due_in.map_or(every, |d| d.min(every)),
            Err(StageError::Unavailable { what, retry_in }) => {
                tracing::warn!(stage = name, error = %what, "service unavailable; the queue waits");
                retry_in.min(every)
            }
            Err(e @ StageError::Local { .. }) => {
                tracing::error!(stage = name, error = %e, "stage pass failed");
                every
            }
        };
        tokio::select! {
            _ = shutdown.requested() => break,
            _ = wake.bumped() => {}
            _ = tokio::time::sleep(pause) => {}
        }
    }
    name
}

#[cfg(test)]
mod tests {
    use super::super::wake::Wake;
    use super::*;
    use std::sync::atomic::{AtomicUsize, Ordering};
    use tokio::time::Instant;

    /// A stage that records when each pass starts, and can be made to take time, fail or panic.
    struct Probe {
        starts: Arc<std::sync::Mutex<Vec<Duration>>>,
        t0: Instant,
        took: Duration,
        /// The pass bumps this (a producer acting while the pass runs).
        bump_during: Option<Wake>,
        result: fn(usize) -> Result<Pass, StageError>,
        n: Arc<AtomicUsize>,
    }

    impl Stage for Probe {
        fn name(&self) -> &'static str {
            "probe"
        }
        async fn pass(&mut self) -> Result<Pass, StageError> {
            let n = self.n.fetch_add(1, Ordering::SeqCst);
            self.starts.lock().unwrap().push(Instant::now() - self.t0);
            if let Some(w) = self.bump_during.take() {
                w.bump();
            }
            tokio::time::sleep(self.took).await;
            (self.result)(n)
        }
    }

    fn probe(
        result: fn(usize) -> Result<Pass, StageError>,
    ) -> (Probe, Arc<std::sync::Mutex<Vec<Duration>>>) {
        let starts = Arc::new(std::sync::Mutex::new(Vec::new()));
        (
            Probe {
                starts: starts.clone(),
                t0: Instant::now(),
                took: Duration::from_secs(5),
                bump_during: None,
                result,
                n: Arc::default(),
            },
            starts,
        )
    }

    const EVERY: Duration = Duration::from_secs(60);

    #[tokio::test(start_paused = true)]
    async fn a_wake_up_during_a_pass_runs_the_next_pass_at_once() {
        let wake = Wake::default();
        let (mut p, starts) = probe(|_| Ok(Pass::did(1)));
        p.bump_during = Some(wake.clone());
        let (stop, shutdown) = Shutdown::new();
        let h = tokio::spawn(run(p, wake.waiter(), EVERY, shutdown, Fatal::default()));
        tokio::time::sleep(Duration::from_secs(30)).await;
        stop.send(true).unwrap();
        h.await.unwrap();
        let s = starts.lock().unwrap().clone();
        // The second pass starts when the first ends (5 s), not at the interval (65 s).
        assert_eq!(s[..2], [Duration::ZERO, Duration::from_secs(5)], "{s:?}");
    }

    #[tokio::test(start_paused = true)]
    async fn without_a_wake_up_the_interval_runs_the_next_pass() {
        let wake = Wake::default();
        let (p, starts) = probe(|_| Ok(Pass::did(0)));
        let (stop, shutdown) = Shutdown::new();
        let h = tokio::spawn(run(p, wake.waiter(), EVERY, shutdown, Fatal::default()));
        tokio::time::sleep(Duration::from_secs(100)).await;
        wake.bump();
        tokio::time::sleep(Duration::from_secs(1)).await;
        stop.send(true).unwrap();
        h.await.unwrap();
        let s = starts.lock().unwrap().clone();
        assert_eq!(
            s,
            [
                Duration::ZERO,
                Duration::from_secs(65),
                Duration::from_secs(100)
            ],
            "{s:?}"
        );
    }

    #[tokio::test(start_paused = true)]
    async fn a_queue_that_falls_due_sooner_is_taken_up_then() {
        let wake = Wake::default();
        let (p, starts) = probe(|n| {
            Ok(Pass {
                done: 0,
                due_in: (n == 0).then_some(Duration::from_secs(7)),
            })
        });
        let (stop, shutdown) = Shutdown::new();
        let h = tokio::spawn(run(p, wake.waiter(), EVERY, shutdown, Fatal::default()));
        tokio::time::sleep(Duration::from_secs(20)).await;
        stop.send(true).unwrap();
        h.await.unwrap();
        let s = starts.lock().unwrap().clone();
        assert_eq!(s, [Duration::ZERO, Duration::from_secs(12)], "{s:?}");
    }

    #[tokio::test(start_paused = true)]
    async fn an_unavailable_service_is_retried_at_its_retry_time() {
        let wake = Wake::default();
        let (p, starts) = probe(|_| {
            Err(StageError::Unavailable {
                what: "TSA http://tsa.invalid: connection refused".into(),
                retry_in: Duration::from_secs(10),
            })
        });
        let (stop, shutdown) = Shutdown::new();
        let h = tokio::spawn(run(p, wake.waiter(), EVERY, shutdown, Fatal::default()));
        tokio::time::sleep(Duration::from_secs(31)).await;
        stop.send(true).unwrap();
        h.await.unwrap();
        let s = starts.lock().unwrap().clone();
        assert_eq!(
            s,
            [
                Duration::ZERO,
                Duration::from_secs(15),
                Duration::from_secs(30)
            ],
            "{s:?}"
        );
    }

    #[tokio::test(start_paused = true)]
    async fn the_shutdown_cuts_a_pass_short_and_a_panic_stops_the_dock() {
        let wake = Wake::default();
        let (mut p, _) = probe(|_| Ok(Pass::did(1)));
        p.took = Duration::from_secs(3600);
        let (stop, shutdown) = Shutdown::new();
        let h = tokio::spawn(run(p, wake.waiter(), EVERY, shutdown, Fatal::default()));
        tokio::time::sleep(Duration::from_secs(1)).await;
        stop.send(true).unwrap();
        let started = Instant::now();
        h.await.unwrap();
        assert_eq!(Instant::now(), started, "the pass was not waited for");

        #[allow(clippy::panic)]
        fn boom(_: usize) -> Result<Pass, StageError> {
            panic!("a bug in a stage")
        }
        let (p, _) = probe(boom);
        let fatal = Fatal::default();
        let (_stop, shutdown) = Shutdown::new();
        let name = run(p, wake.waiter(), EVERY, shutdown, fatal.clone()).await;
        assert_eq!((name, fatal.failed()), ("probe", Some("probe")));
    }
}
