//! The background stages of the dock, each over its durable queue: time-stamping (checkpoints
//! without a token), case links (acquired items without a link decision; and disposals due),
//! upload (the journal's upload queue, with read-back; then legal holds) and transcode (the
//! journal's transcode backlog, on its own lower-priority thread).

use super::dispose;
use super::stage::{Pass, Stage, StageError};
use super::wake::Wake;
use crate::cases::Cases;
use std::sync::Arc;
use std::time::Duration;

/// How long a stage waits before trying an unreachable service again (its interval still
/// bounds it).
const RETRY_SERVICE: Duration = Duration::from_secs(30);

/// Checkpoints the TSA has not stamped yet.
pub struct Timestamping {
    pub log: evidock_store::log::SharedLog,
    pub client: evidock_store::tsa::TsaClient,
}

impl Stage for Timestamping {
    fn name(&self) -> &'static str {
        "time-stamping"
    }
    async fn pass(&mut self) -> Result<Pass, StageError> {
        let run = evidock_store::timestamping::timestamp_pending(&self.log, &self.client, 100)
            .await
            .map_err(|e| StageError::Local {
                what: format!("time-stamping: {e}"),
            })?;
        if let Some(e) = run.failure {
            return Err(StageError::Unavailable {
                what: format!(
                    "TSA unreachable, {} checkpoint(s) queued: {e}",
                    run.pending.len()
                ),
                retry_in: RETRY_SERVICE,
            });
        }
        Ok(Pass::did(run.stamped.len()))
    }
}

/// New recordings linked to cases; expired evidence disposed of when `[retention]
/// auto_dispose` says so.
pub struct CaseLinks {
    pub cases: Arc<Cases>,
    pub store: evidock_store::objects::EvidenceStore,
    pub spools: Arc<[crate::acquire::spool::Spool; 2]>,
}

impl Stage for CaseLinks {
    fn name(&self) -> &'static str {
        "case links"
    }
    async fn pass(&mut self) -> Result<Pass, StageError> {
        let c = self.cases.clone();
        let made = match tokio::task::spawn_blocking(move || c.auto_link()).await {
            Ok(r) => r.map_err(|e| StageError::Local {
                what: format!(
                    "automatic linking to cases failed (retried at the next acquisition): {e}"
                ),
            })?,
            Err(e) if e.is_panic() => std::panic::resume_unwind(e.into_panic()),
            Err(_) => return Ok(Pass::default()),
        };
        if !made.is_empty() {
            tracing::info!(
                links = made.len(),
                review = made.iter().filter(|l| l.review).count(),
                "recordings linked to cases"
            );
        }
        if self.cases.retention.auto_dispose {
            dispose::auto_dispose(&self.cases, &self.store, &self.spools).await;
        }
        Ok(Pass::did(made.len()))
    }
}

/// The upload queue, with read-back; then legal holds. An upload cut off by the shutdown stays
/// queued in the journal and is sent again at the next start; its `uploaded` event is written
/// only after the read-back.
pub struct Upload {
    pub uploader: crate::upload::Uploader,
    pub cases: Arc<Cases>,
    /// Bumped when an upload is acknowledged: a docked camera may now be wiped.
    pub acknowledged: Wake,
}

impl Stage for Upload {
    fn name(&self) -> &'static str {
        "upload"
    }
    async fn pass(&mut self) -> Result<Pass, StageError> {
        let run = self.uploader.run_once().await;
        if !run.uploaded.is_empty() {
            self.acknowledged.bump();
        }
        if !run.uploaded.is_empty() || !run.failed.is_empty() {
            tracing::info!(
                uploaded = run.uploaded.len(),
                retrying = run.retrying.len(),
                failed = run.failed.len(),
                "upload pass"
            );
        }
        if let Some(e) = &run.publish_error {
            tracing::warn!(error = %e, "custody log not published");
        }
        if let Err(e) = self.cases.sync_holds(&self.uploader.store).await {
            tracing::warn!(error = %e, "legal holds not applied to the store yet");
        }
        let retry_in = self
            .uploader
            .next_retry()
            .await
            .and_then(|at| (at - self.uploader.clock.now()).to_std().ok());
        // Held back for cameras being copied: the end of the copying wakes this stage, and the
        // hold ends by itself after `acquire.background_wait_s`.
        let due_in = match (retry_in, run.held_back) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        };
        Ok(Pass {
            done: run.uploaded.len(),
            due_in,
        })
    }
}

/// Playback copies and thumbnails. FFmpeg runs on one thread of its own at lower priority
/// (never on the async workers, never on the shared blocking pool whose threads acquisition
/// uses); a pass hands it the backlog and waits for the answer.
pub struct Transcode {
    jobs: std::sync::mpsc::Sender<tokio::sync::oneshot::Sender<Result<usize, String>>>,
    /// Bumped when derivatives were made: the uploader has objects to send.
    made: Wake,
    /// What the worker gives way to: a pass that held back comes again when the hold ends.
    give_way: crate::acquire::foreground::GiveWay,
}

impl Transcode {
    /// The worker thread (joined by the caller after the runtime is gone) and its stage.
    pub fn start(
        t: crate::transcode::Transcoder,
        made: Wake,
    ) -> std::io::Result<(Transcode, std::thread::JoinHandle<()>)> {
        let (jobs, rx) =
            std::sync::mpsc::channel::<tokio::sync::oneshot::Sender<Result<usize, String>>>();
        let give_way = t.give_way.clone();
        let thread = std::thread::Builder::new()
            .name("transcode".into())
            .spawn(move || {
                crate::transcode::lower_priority();
                crate::transcode::discard_partials(&t.derivatives);
                // Ends when the stage (the only sender) is dropped at shutdown.
                while let Ok(reply) = rx.recv() {
                    if t.stop.load(std::sync::atomic::Ordering::Relaxed) {
                        break;
                    }
                    let r = t.run_pending().map(|jobs| {
                        if !jobs.is_empty() {
                            tracing::info!(
                                jobs = jobs.len(),
                                failed = jobs.iter().filter(|j| j.error.is_some()).count(),
                                "transcode pass"
                            );
                        }
                        jobs.iter().filter(|j| !j.made.is_empty()).count()
                    });
                    let _ = reply.send(r);
                }
            })?;
        Ok((
            Transcode {
                jobs,
                made,
                give_way,
            },
            thread,
        ))
    }
}

impl Stage for Transcode {
    fn name(&self) -> &'static str {
        "transcode"
    }
    async fn pass(&mut self) -> Result<Pass, StageError> {
        let (tx, rx) = tokio::sync::oneshot::channel();
        if self.jobs.send(tx).is_err() {
            return Err(StageError::Local {
                what: "the transcode thread has stopped".into(),
            });
        }
        let made = rx
            .await
            .map_err(|_| StageError::Local {
                what: "the transcode thread stopped during a pass".into(),
            })?
            .map_err(|e| StageError::Local {
                what: format!("transcode backlog unreadable: {e}"),
            })?;
        if made > 0 {
            self.made.bump();
        }
        Ok(Pass {
            done: made,
            due_in: self.give_way.hold_back(),
        })
    }
}

/// Between the moments that seal the log (`evidock_store::checkpoints::Moment`): a checkpoint
/// when the policy's size or age limit is reached.
pub struct Checkpointer {
    pub log: evidock_store::log::SharedLog,
    pub policy: evidock_store::checkpoints::CheckpointPolicy,
    /// The last checkpoint seen with events after it, and since when they were seen.
    unsealed_since: Option<(u64, tokio::time::Instant)>,
}

impl Checkpointer {
    pub fn new(
        log: evidock_store::log::SharedLog,
        policy: evidock_store::checkpoints::CheckpointPolicy,
    ) -> Self {
        Checkpointer {
            log,
            policy,
            unsealed_since: None,
        }
    }
}

impl Stage for Checkpointer {
    fn name(&self) -> &'static str {
        "checkpoints"
    }
    async fn pass(&mut self) -> Result<Pass, StageError> {
        let (last, unsealed) = self.log.with(|l| {
            (
                l.last_checkpoint(),
                l.size().saturating_sub(l.last_checkpoint()),
            )
        });
        let now = tokio::time::Instant::now();
        let since = match self.unsealed_since {
            _ if unsealed == 0 => {
                self.unsealed_since = None;
                return Ok(Pass::default());
            }
            Some((seen, at)) if seen == last => at,
            _ => {
                self.unsealed_since = Some((last, now));
                now
            }
        };
        if !self.policy.due(unsealed, now - since) {
            return Ok(Pass {
                done: 0,
                due_in: Some(self.policy.every.saturating_sub(now - since)),
            });
        }
        let log = self.log.clone();
        // Signing writes and syncs a file: a blocking thread's work.
        let signed =
            tokio::task::spawn_blocking(move || log.seal(evidock_store::checkpoints::Moment::Due))
                .await;
        match signed {
            Ok(Ok(_)) => {
                self.unsealed_since = None;
                Ok(Pass::did(1))
            }
            Ok(Err(e)) => Err(StageError::Local {
                what: format!("could not sign a checkpoint: {e}"),
            }),
            Err(e) if e.is_panic() => std::panic::resume_unwind(e.into_panic()),
            Err(_) => Ok(Pass::default()),
        }
    }
}

impl std::fmt::Debug for Timestamping {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Timestamping").finish_non_exhaustive()
    }
}

impl std::fmt::Debug for CaseLinks {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("CaseLinks").finish_non_exhaustive()
    }
}

impl std::fmt::Debug for Upload {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Upload").finish_non_exhaustive()
    }
}

impl std::fmt::Debug for Transcode {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Transcode").finish_non_exhaustive()
    }
}

impl std::fmt::Debug for Checkpointer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Checkpointer").finish_non_exhaustive()
    }
}
