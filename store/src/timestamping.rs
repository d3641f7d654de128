//! Trusted time for checkpoints: obtain RFC 3161 tokens for every checkpoint that lacks one.
//!
//! The queue is the log itself: a checkpoint is pending until a `timestamped` event for its size
//! is in the log. Nothing waits for this — least of all releasing a camera. While the TSA is
//! unreachable checkpoints simply stay pending; when it answers again each gets its own token,
//! and the `timestamped` event records the delay between signing and the TSA's time, so the gap
//! is visible in the log rather than hidden.

use crate::fsutil;
use crate::log::{LogError, SharedLog};
use crate::tsa::{TsaClient, TsaError};
use evidock_verify::checkpoint::SignedCheckpoint;
use evidock_verify::event::payload::TimestampedPayload;
use evidock_verify::event::{Actor, NewEvent, Subject, Timestamp};
use evidock_verify::id::Sha256;
use evidock_verify::layout;
use evidock_verify::timestamp::{self, Expectation, ImprintAlgorithm, TokenInfo};
use std::path::PathBuf;

#[derive(Debug, thiserror::Error)]
pub enum TimestampingError {
    #[error(transparent)]
    Log(#[from] LogError),
    #[error("checkpoint {path} is unreadable or malformed: {reason}")]
    Checkpoint { path: PathBuf, reason: String },
}

/// What one pass over the pending checkpoints did.
#[derive(Debug, Default)]
pub struct TimestampRun {
    /// Sizes of checkpoints that received a token in this pass.
    pub stamped: Vec<u64>,
    /// Sizes still pending afterwards.
    pub pending: Vec<u64>,
    /// The TSA error that ended the pass early, if any.
    pub failure: Option<TsaError>,
}

/// The idempotency key of the `timestamped` event of checkpoint `size`.
pub fn event_key(size: u64) -> String {
    format!("timestamped/{size}")
}

/// Checkpoint sizes that have no `timestamped` event yet — except checkpoints that add nothing
/// but `timestamped` events to the one before (time records need no time-stamp of their own).
pub fn pending(log: &SharedLog) -> Result<Vec<u64>, LogError> {
    log.with(|l| {
        let sizes = l.checkpoint_sizes()?;
        let mut out = Vec::new();
        let mut prev = 0;
        for s in sizes {
            if l.seq_of_key(&event_key(s))?.is_none() && !l.only_time_records(prev, s)? {
                out.push(s);
            }
            prev = s;
        }
        Ok(out)
    })
}

/// Time-stamp pending checkpoints, oldest first, at most `max` of them.
///
/// A TSA failure ends the pass (the rest stay pending) and is returned in
/// [`TimestampRun::failure`]; only log and file errors are `Err`.
pub async fn timestamp_pending(
    log: &SharedLog,
    client: &TsaClient,
    max: usize,
) -> Result<TimestampRun, TimestampingError> {
    let mut run = TimestampRun::default();
    let todo = pending(log)?;
    let (dir, station) = log.with(|l| (l.dir().to_path_buf(), l.station().clone()));
    for (i, size) in todo.iter().copied().enumerate() {
        if i >= max || run.failure.is_some() {
            run.pending.push(size);
            continue;
        }
        let note_path = dir
            .join(layout::CHECKPOINTS_DIR)
            .join(layout::checkpoint_file(size));
        let note = std::fs::read(&note_path).map_err(|e| TimestampingError::Checkpoint {
            path: note_path.clone(),
            reason: e.to_string(),
        })?;
        let signed = SignedCheckpoint::parse(&note).map_err(|e| TimestampingError::Checkpoint {
            path: note_path.clone(),
            reason: e.to_string(),
        })?;
        let imprint = Sha256::digest(&note);
        let tsr_path = dir
            .join(layout::TIMESTAMPS_DIR)
            .join(layout::timestamp_file(size));
        // A token stored by an earlier pass that stopped before logging its event is used as
        // it is (after checking it); otherwise ask the TSA.
        let (der, info) = match existing_token(&tsr_path, &imprint, client) {
            Some(found) => found,
            None => {
                let reply = match client.timestamp(&imprint).await {
                    Ok(r) => r,
                    Err(e) => {
                        tracing::warn!(checkpoint = size, error = %e, "time-stamp deferred");
                        run.failure = Some(e);
                        run.pending.push(size);
                        continue;
                    }
                };
                fsutil::write_once(&tsr_path, &reply.response_der, 0o440)
                    .map_err(LogError::from)?;
                (reply.response_der, reply.info)
            }
        };
        let checkpoint_time = signed
            .checkpoint
            .time
            .map(Timestamp::from_datetime)
            .unwrap_or_else(|| Timestamp::from_datetime(info.gen_time));
        let gen_time = Timestamp::from_datetime(info.gen_time);
        let payload = TimestampedPayload {
            checkpoint_size: size,
            checkpoint_sha256: imprint,
            checkpoint_time,
            gen_time,
            delay_seconds: (gen_time.0 - checkpoint_time.0).num_seconds(),
            tsa: client.url_for_display(),
            serial: info.serial_hex.clone(),
            token_sha256: Sha256::digest(&der),
        };
        let ev = NewEvent::new(
            Actor::station(&station),
            Subject::Station(station.clone()),
            event_key(size),
            &payload,
        )
        .map_err(|source| LogError::Event {
            dir: dir.clone(),
            source,
        })?;
        log.append(ev)?;
        run.stamped.push(size);
    }
    if !run.stamped.is_empty() {
        // Seal the new `timestamped` events; that checkpoint needs no token of its own.
        log.seal(crate::checkpoints::Moment::Stamped)?;
    }
    Ok(run)
}

/// A stored token for this checkpoint that verifies, if there is one.
fn existing_token(
    path: &std::path::Path,
    imprint: &Sha256,
    client: &TsaClient,
) -> Option<(Vec<u8>, TokenInfo)> {
    let der = std::fs::read(path).ok()?;
    let expect = Expectation {
        algorithm: ImprintAlgorithm::Sha256,
        imprint: &imprint.0,
        nonce: None,
        policy: client.policy(),
    };
    match timestamp::check_response(&der, &expect, client.trust()) {
        Ok(info) => Some((der, info)),
        Err(e) => {
            // Keep it for inspection, out of the way of a fresh token.
            let aside = path.with_extension(format!(
                "tsr.invalid-{}",
                chrono::Utc::now().format("%Y%m%dT%H%M%SZ")
            ));
            tracing::error!(token = %path.display(), moved_to = %aside.display(), error = %e, "a stored time-stamp token does not verify; asking the TSA again");
            let _ = std::fs::rename(path, &aside);
            None
        }
    }
}
