//! Upload: originals (and later derivatives) from the spool to the evidence store, each read back
//! before it counts, and the custody log published beside them.
//!
//! The queue is durable (the journal's `uploads` table): a crash or restart resumes where it
//! stopped — a multipart upload keeps its upload ID and the ETags of the parts already sent, so
//! they are not sent again. Retriable failures (network, server, credentials) wait with
//! exponential backoff and jitter; permanent ones (a conflicting object, a read-back that does not
//! match) are marked failed with their reason and raised. Several uploads run at once (bounded),
//! under an optional bandwidth cap and upload windows.
//!
//! Only after the read-back matches is the `uploaded` custody event appended — and only that
//! event allows a camera to be wiped (see [`crate::wipe`]).

use crate::acquire::foreground::GiveWay;
use crate::journal::{Journal, Multipart, NewUpload, UploadRow};
use evidock_store::clock::Clock;
use evidock_store::log::SharedLog;
use evidock_store::objects::{EvidenceStore, StoreError, layout};
use evidock_verify::event::payload::{AcquiredPayload, ObjectRole, UploadedPayload};
use evidock_verify::event::{Actor, NewEvent, Subject, Timestamp};
use evidock_verify::id::{EvidenceId, Sha256, StationId};
use evidock_verify::layout as loglayout;
use evidock_verify::record::{EvidenceRecord, RECORD_VERSION};
use serde::Serialize;
use std::io::{Read as _, Seek as _};
use std::sync::{Arc, Mutex};
use std::time::Instant;

mod publish;
mod settings;

use settings::{RateLimiter, in_window};
pub use settings::{UploadSettings, parse_window};

/// What one pass did.
#[derive(Debug, Default, Serialize)]
pub struct UploadRun {
    /// (evidence, role) uploaded and read back.
    pub uploaded: Vec<(EvidenceId, String)>,
    /// (evidence, role, error) waiting to be retried.
    pub retrying: Vec<(EvidenceId, String, String)>,
    /// (evidence, role, error) that will not succeed without a person.
    pub failed: Vec<(EvidenceId, String, String)>,
    /// Outside the upload windows: nothing was sent.
    pub outside_window: bool,
    /// Cameras are being copied: uploads not yet begun were held back, this much longer at
    /// most (they stay queued; the end of the copying starts the next pass).
    pub held_back: Option<std::time::Duration>,
    /// The custody log is published up to this size.
    pub published: u64,
    /// Why the custody log could not be published, if it could not.
    pub publish_error: Option<String>,
}

/// The uploader of one station.
#[derive(Clone)]
pub struct Uploader {
    pub store: EvidenceStore,
    pub journal: Arc<Journal>,
    pub log: SharedLog,
    pub station: StationId,
    pub clock: Arc<dyn Clock>,
    pub settings: UploadSettings,
    limiter: Arc<RateLimiter>,
    give_way: GiveWay,
}

impl std::fmt::Debug for Uploader {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Uploader")
            .field("store", &self.store.url())
            .finish()
    }
}

/// Queue the originals an older station left acquired but unqueued (a crash between two steps
/// that are now one transaction); returns how many. This version cannot leave any, so the scan
/// (every acquired file: 1.9 s at a dock start for a million of them) runs once per journal.
pub fn queue_unqueued_originals(
    journal: &Journal,
    spool: &crate::acquire::spool::Spool,
    at: chrono::DateTime<chrono::Utc>,
) -> Result<usize, crate::journal::JournalError> {
    const REPAIR: &str = "queue-unqueued-originals";
    if journal.repair_done(REPAIR)? {
        return Ok(0);
    }
    let missing = journal.unqueued_originals()?;
    for (evidence, sha, size) in &missing {
        journal.enqueue_upload(
            &NewUpload::original(evidence, sha, *size, spool.object_path(sha)),
            at,
        )?;
    }
    journal.set_repair_done(REPAIR, at)?;
    Ok(missing.len())
}

impl Uploader {
    pub fn new(
        store: EvidenceStore,
        journal: Arc<Journal>,
        log: SharedLog,
        station: StationId,
        clock: Arc<dyn Clock>,
        settings: UploadSettings,
    ) -> Self {
        let limiter = Arc::new(RateLimiter {
            rate: settings.bandwidth.unwrap_or(0),
            next: Mutex::new(Instant::now()),
        });
        Uploader {
            store,
            journal,
            log,
            station,
            clock,
            settings,
            limiter,
            give_way: GiveWay::default(),
        }
    }

    /// Start no upload while `g` says cameras are being copied (an operator's `run_now` still
    /// does).
    pub fn giving_way(mut self, g: GiveWay) -> Self {
        self.give_way = g;
        self
    }

    /// Upload everything due, then publish the custody log.
    pub async fn run_once(&self) -> UploadRun {
        self.run(false).await
    }

    /// When the first upload that waits for its retry falls due, if any does.
    pub async fn next_retry(&self) -> Option<chrono::DateTime<chrono::Utc>> {
        self.in_journal(|j| j.next_retry_at()).await.ok().flatten()
    }

    /// Upload everything queued now, ignoring retry backoff (an operator asked for it).
    pub async fn run_now(&self) -> UploadRun {
        self.run(true).await
    }

    async fn run(&self, now_regardless: bool) -> UploadRun {
        let mut run = UploadRun::default();
        let now = self.clock.now();
        let local = now.with_timezone(&self.clock.offset_at(now).0).time();
        if !in_window(&self.settings.windows, local) {
            run.outside_window = true;
            return run;
        }
        // Held back: nothing is started, but the log is still sealed and published below.
        let held = self.give_way.hold_back().filter(|_| !now_regardless);
        if let Some(wait) = held {
            tracing::info!(
                cameras = self.give_way.acquiring.copying(),
                wait_s = wait.as_secs(),
                "uploads wait while cameras are copied"
            );
            run.held_back = Some(wait);
        }
        let horizon = if now_regardless {
            now + chrono::Duration::days(3650)
        } else {
            now
        };
        let due = match held {
            Some(_) => Ok(Vec::new()),
            None => {
                self.in_journal(move |j| j.due_uploads(horizon, 10_000))
                    .await
            }
        };
        let due = match due {
            Ok(d) => d,
            Err(e) => {
                run.publish_error = Some(e.to_string());
                return run;
            }
        };
        let sem = Arc::new(tokio::sync::Semaphore::new(self.settings.parallel.max(1)));
        let mut tasks = tokio::task::JoinSet::new();
        for row in due {
            let this = self.clone();
            let sem = sem.clone();
            tasks.spawn(async move {
                let _permit = sem.acquire_owned().await;
                // Checked again at each start: a camera docked while the pass runs.
                if let Some(wait) = this.give_way.hold_back().filter(|_| !now_regardless) {
                    return (row, Err(wait));
                }
                let r = this.upload_one(&row).await;
                (row, Ok(r))
            });
        }
        while let Some(done) = tasks.join_next().await {
            let (row, result) = match done {
                Ok(d) => d,
                // Not swallowed: the stage running this pass sees the panic and stops the dock.
                Err(e) if e.is_panic() => std::panic::resume_unwind(e.into_panic()),
                Err(_) => continue,
            };
            let result = match result {
                Ok(r) => r,
                Err(wait) => {
                    run.held_back = Some(run.held_back.map_or(wait, |w| w.min(wait)));
                    continue;
                }
            };
            match result {
                Ok(()) => run.uploaded.push((row.evidence.clone(), row.role.clone())),
                Err(e) => {
                    let msg = e.to_string();
                    if e.is_retriable() {
                        let next = self.clock.now() + backoff(row.attempts);
                        tracing::warn!(evidence = %row.evidence, role = %row.role, attempt = row.attempts + 1, error = %msg, "upload failed; will retry");
                        let (ev, role, m) = (row.evidence.clone(), row.role.clone(), msg.clone());
                        if let Err(e) = self
                            .in_journal(move |j| j.upload_failed(&ev, &role, &m, Some(next)))
                            .await
                        {
                            tracing::error!(evidence = %row.evidence, error = %e, "journal: the failed attempt was not recorded; retried at once");
                        }
                        run.retrying
                            .push((row.evidence.clone(), row.role.clone(), msg));
                    } else {
                        tracing::error!(evidence = %row.evidence, role = %row.role, error = %msg, "upload failed permanently; the camera copy is kept");
                        let (ev, role, m) = (row.evidence.clone(), row.role.clone(), msg.clone());
                        if let Err(e) = self
                            .in_journal(move |j| j.upload_failed(&ev, &role, &m, None))
                            .await
                        {
                            tracing::error!(evidence = %row.evidence, error = %e, "journal: the failure was not recorded; tried again");
                        }
                        run.failed
                            .push((row.evidence.clone(), row.role.clone(), msg));
                    }
                }
            }
        }
        // Seal what happened since the last checkpoint (the `uploaded` events, links, case
        // registrations…) so it is published with the rest.
        let log = self.log.clone();
        if let Ok(Err(e)) = tokio::task::spawn_blocking(move || {
            log.seal(evidock_store::checkpoints::Moment::Publish)
        })
        .await
        {
            tracing::error!(error = %e, "could not sign a checkpoint");
        }
        match self.publish_log().await {
            Ok(n) => run.published = n,
            Err(e) => run.publish_error = Some(e.to_string()),
        }
        run
    }

    /// Upload one object and read it back; log `uploaded` (and the record, for originals).
    async fn upload_one(&self, row: &UploadRow) -> Result<(), StoreError> {
        let key = &row.key;
        // Already there (another station's copy of the same content, or our own before a
        // crash)? Then only the read-back decides.
        let exists = self.store.head(key).await?;
        if exists.is_none() {
            self.send(row).await?;
            evidock_store::crash_point!("upload.sent");
        } else {
            // Put by an attempt that may have crashed before its fsync.
            self.store.make_durable(key).await?;
        }
        let (got, size) = self.store.read_back(key).await?;
        if got != row.sha256 || size != row.size {
            return Err(StoreError::Conflict {
                url: self.store.url().to_string(),
                key: self.store.full_key(key),
                found: got,
                expected: row.sha256,
            });
        }
        let role = match row.role.as_str() {
            "original" => ObjectRole::Original,
            "playback" => ObjectRole::Playback,
            "poster" => ObjectRole::Poster,
            "contact-sheet" => ObjectRole::ContactSheet,
            _ => ObjectRole::Record,
        };
        let seq = self
            .log_uploaded(&row.evidence, role, key, size, &got)
            .await?;
        evidock_store::crash_point!("upload.logged");
        if role == ObjectRole::Original {
            self.put_record(&row.evidence, key, &row.source).await?;
            evidock_store::crash_point!("upload.record");
        }
        let (ev, role, at) = (row.evidence.clone(), row.role.clone(), self.clock.now());
        self.in_journal(move |j| j.upload_done(&ev, &role, seq, at))
            .await
            .map_err(|e| self.local_err(e.to_string()))?;
        evidock_store::crash_point!("upload.done");
        tracing::info!(evidence = %row.evidence, role = %row.role, object = %self.store.full_key(key), size, "uploaded and read back");
        Ok(())
    }

    /// A journal call (SQLite with `synchronous=FULL`: an fsync per write) on a blocking thread,
    /// never on one of the dock's two async workers, where it would hold up every other stage.
    async fn in_journal<R: Send + 'static>(
        &self,
        f: impl FnOnce(&Journal) -> R + Send + 'static,
    ) -> R {
        let journal = self.journal.clone();
        match tokio::task::spawn_blocking(move || f(&journal)).await {
            Ok(r) => r,
            // Not swallowed: the stage running this pass sees the panic and stops the dock.
            Err(e) if e.is_panic() => std::panic::resume_unwind(e.into_panic()),
            // Cancelled: the runtime is shutting down, and this pass with it.
            Err(_) => std::future::pending().await,
        }
    }

    fn local_err(&self, reason: String) -> StoreError {
        StoreError::Local {
            path: std::path::PathBuf::from("journal"),
            reason,
        }
    }

    /// Send the bytes: one put for small files, resumable parts for large ones.
    async fn send(&self, row: &UploadRow) -> Result<(), StoreError> {
        let local = |e: std::io::Error| StoreError::Local {
            path: row.source.clone(),
            reason: e.to_string(),
        };
        let part = self.settings.part_size.max(5 << 20);
        // An upload under way stays one (with its part size), whatever the setting says now.
        let under_way = row
            .multipart
            .as_ref()
            .is_some_and(|m| m.part_size >= 5 << 20);
        if row.size <= part && !under_way {
            let data = tokio::fs::read(&row.source).await.map_err(local)?;
            self.limiter.take(data.len() as u64).await;
            return self.store.put_once(&row.key, data.into()).await;
        }
        if !self.store.has_multipart() {
            self.limiter.take(row.size).await;
            return self.store.put_file_streaming(&row.key, &row.source).await;
        }
        // Resumable multipart: the upload ID, its part size and finished parts are in the
        // journal. A resume cuts the file at the part size the upload was started with (a part
        // size changed in between would otherwise complete a wrong object under a write-once
        // key); an upload of a journal that did not record its part size starts over.
        let mut mp = match &row.multipart {
            Some(m) if m.part_size >= 5 << 20 => m.clone(),
            other => {
                if let Some(old) = other {
                    tracing::warn!(evidence = %row.evidence, role = %row.role, upload = %old.id, "multipart upload without a recorded part size: aborted, started over");
                    if let Err(e) = self.store.abort_multipart(&row.key, &old.id).await {
                        tracing::warn!(error = %e, "aborting the old multipart upload failed (the store expires it)");
                    }
                }
                let m = Multipart {
                    id: self.store.create_multipart(&row.key).await?,
                    part_size: part,
                    parts: Vec::new(),
                };
                self.progress(row, Some(&m)).await?;
                m
            }
        };
        let part = mp.part_size;
        let count = row.size.div_ceil(part) as usize;
        for idx in mp.parts.len()..count {
            let offset = idx as u64 * part;
            let len = part.min(row.size - offset) as usize;
            let path = row.source.clone();
            let data = tokio::task::spawn_blocking(move || -> std::io::Result<Vec<u8>> {
                let mut f = std::fs::File::open(&path)?;
                f.seek(std::io::SeekFrom::Start(offset))?;
                let mut buf = vec![0u8; len];
                f.read_exact(&mut buf)?;
                Ok(buf)
            })
            .await
            .map_err(|e| local(std::io::Error::other(e.to_string())))?
            .map_err(local)?;
            self.limiter.take(len as u64).await;
            match self
                .store
                .put_part(&row.key, &mp.id, idx, data.into())
                .await
            {
                Ok(etag) => {
                    mp.parts.push(etag);
                    self.progress(row, Some(&mp)).await?;
                }
                Err(e @ StoreError::UploadGone { .. }) => {
                    self.progress(row, None).await?;
                    return Err(e);
                }
                Err(e) => return Err(e),
            }
        }
        match self
            .store
            .complete_multipart(&row.key, &mp.id, mp.parts.clone())
            .await
        {
            Ok(()) => Ok(()),
            Err(e) => {
                // Completed by an earlier attempt whose answer was lost? The read-back decides.
                if self.store.head(&row.key).await?.is_some() {
                    return Ok(());
                }
                if matches!(e, StoreError::UploadGone { .. }) {
                    self.progress(row, None).await?;
                }
                Err(e)
            }
        }
    }

    async fn progress(&self, row: &UploadRow, mp: Option<&Multipart>) -> Result<(), StoreError> {
        let (ev, role, mp) = (row.evidence.clone(), row.role.clone(), mp.cloned());
        self.in_journal(move |j| j.upload_progress(&ev, &role, mp.as_ref()))
            .await
            .map_err(|e| self.local_err(e.to_string()))?;
        evidock_store::crash_point!("upload.progress");
        Ok(())
    }

    async fn log_uploaded(
        &self,
        evidence: &EvidenceId,
        role: ObjectRole,
        key: &str,
        size: u64,
        sha: &Sha256,
    ) -> Result<u64, StoreError> {
        let now = self.clock.now();
        let retain_until = self
            .settings
            .retention_days
            .map(|d| Timestamp::from_datetime(now + chrono::Duration::days(i64::from(d))));
        let role_name = serde_json::to_value(role)
            .ok()
            .and_then(|v| v.as_str().map(str::to_string))
            .unwrap_or_default();
        let ev = NewEvent::new(
            Actor::station(&self.station),
            Subject::Evidence(evidence.clone()),
            format!("uploaded/{evidence}/{role_name}"),
            &UploadedPayload {
                role,
                object: self.store.full_key(key),
                store: self.store.url().to_string(),
                size,
                sha256: *sha,
                retain_until,
            },
        )
        .map_err(|e| self.local_err(e.to_string()))?;
        let log = self.log.clone();
        let a = tokio::task::spawn_blocking(move || log.append_once(ev))
            .await
            .map_err(|e| self.local_err(e.to_string()))?
            .map_err(|e| self.local_err(format!("custody log: {e}")))?;
        if !a.new {
            // A replay (a crash after the event, before the journal knew): the logged event
            // stands — its retention was computed then — but it must be of this very object.
            let logged: UploadedPayload = a
                .event
                .payload()
                .map_err(|e| self.local_err(format!("custody log: seq {}: {e}", a.event.seq)))?;
            if logged.sha256 != *sha
                || logged.size != size
                || logged.object != self.store.full_key(key)
            {
                return Err(self.local_err(format!(
                    "custody log: seq {} already records uploaded/{evidence}/{role_name} as {} ({} bytes, SHA-256 {}), not {} ({size} bytes, SHA-256 {}); investigate",
                    a.event.seq,
                    logged.object,
                    logged.size,
                    logged.sha256.to_hex(),
                    self.store.full_key(key),
                    sha.to_hex()
                )));
            }
        }
        Ok(a.event.seq)
    }

    /// The write-once evidence record, read back.
    async fn put_record(
        &self,
        evidence: &EvidenceId,
        original_key: &str,
        source: &std::path::Path,
    ) -> Result<(), StoreError> {
        let ev = evidence.clone();
        let (payload, seq) = self
            .in_journal(move |j| j.acquired_of(&ev))
            .await
            .map_err(|e| self.local_err(e.to_string()))?
            .ok_or_else(|| self.local_err(format!("no acquired event recorded for {evidence}")))?;
        let acquired: AcquiredPayload =
            serde_json::from_str(&payload).map_err(|e| self.local_err(e.to_string()))?;
        let leaf = self
            .log
            .with(|l| l.index().leaf(seq))
            .map_err(|e| self.local_err(e.to_string()))?
            .ok_or_else(|| self.local_err(format!("event #{seq} is not in the custody log")))?;
        // The record is written once: its media metadata is read now, from the spool copy
        // (milliseconds: only the container's header and index are read).
        let media = {
            let (source, name) = (source.to_path_buf(), acquired.path.clone());
            tokio::task::spawn_blocking(move || crate::transcode::probe_original(&source, &name))
                .await
                .ok()
                .flatten()
        };
        let record = EvidenceRecord {
            v: RECORD_VERSION,
            evidence: evidence.clone(),
            station: self.station.clone(),
            acquired_seq: seq,
            acquired_leaf: leaf,
            acquired,
            original: original_key.to_string(),
            media,
        };
        let bytes = record
            .to_canonical()
            .map_err(|e| self.local_err(e.to_string()))?;
        let key = layout::record(&self.station, evidence);
        self.store.put_once(&key, bytes.clone().into()).await?;
        let (got, _) = self.store.read_back(&key).await?;
        if got != Sha256::digest(&bytes) {
            return Err(StoreError::Conflict {
                url: self.store.url().to_string(),
                key,
                found: got,
                expected: Sha256::digest(&bytes),
            });
        }
        Ok(())
    }
}

/// Exponential backoff with jitter: 2^attempts seconds (at most 5 minutes), ±50 %.
fn backoff(attempts: u64) -> chrono::Duration {
    let base = 2f64.powi(attempts.min(9) as i32).min(300.0);
    let mut r = [0u8; 2];
    let _ = getrandom::fill(&mut r);
    let jitter = 0.5 + f64::from(u16::from_le_bytes(r)) / f64::from(u16::MAX);
    chrono::Duration::milliseconds((base * jitter * 1000.0) as i64)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn windows_and_backoff() {
        let w = vec![parse_window("22:00-06:00").unwrap()];
        let t = |s: &str| chrono::NaiveTime::parse_from_str(s, "%H:%M").unwrap();
        assert!(in_window(&w, t("23:30")));
        assert!(in_window(&w, t("05:59")));
        assert!(!in_window(&w, t("12:00")));
        assert!(in_window(&[], t("12:00")));
        assert!(parse_window("22-06").is_err());
        for a in 0..20 {
            let b = backoff(a).num_milliseconds();
            assert!((400..=450_000).contains(&b), "{a}: {b}");
        }
    }
}
