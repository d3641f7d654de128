//! The `transcodes` table: where each content's derivatives stand (the transcode queue's state).

use super::{Journal, JournalError, ts};
use chrono::{DateTime, Utc};
use evidock_verify::id::{EvidenceId, Sha256};
use rusqlite::params;

impl Journal {
    /// How many contents stand in `state` (the status page counts failures without loading
    /// every row).
    pub fn transcodes_in(&self, state: TranscodeState) -> Result<u64, JournalError> {
        self.with(|db| {
            db.query_row(
                "SELECT COUNT(*) FROM transcodes WHERE state = ?1",
                params![state.as_str()],
                |r| r.get::<_, i64>(0),
            )
        })
        .map(|n| u64::try_from(n).unwrap_or(0))
    }

    pub fn set_transcode(
        &self,
        sha256: &Sha256,
        evidence: &EvidenceId,
        state: TranscodeState,
        error: Option<&str>,
        at: DateTime<Utc>,
    ) -> Result<(), JournalError> {
        self.with(|db| {
            db.execute(
                "INSERT INTO transcodes (sha256, evidence, state, error, at) VALUES (?1, ?2, ?3, ?4, ?5)
                 ON CONFLICT(sha256) DO UPDATE SET evidence = ?2, state = ?3, error = ?4, at = ?5",
                params![sha256.to_hex(), evidence.as_str(), state.as_str(), error, ts(at)],
            )
            .map(|_| ())
        })
    }
}

/// Where a content's derivatives stand (journal `transcodes.state`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TranscodeState {
    Started,
    Done,
    Failed,
}

impl TranscodeState {
    pub fn as_str(self) -> &'static str {
        match self {
            TranscodeState::Started => "started",
            TranscodeState::Done => "done",
            TranscodeState::Failed => "failed",
        }
    }
    pub fn parse(s: &str) -> Option<Self> {
        match s {
            "started" => Some(TranscodeState::Started),
            "done" => Some(TranscodeState::Done),
            "failed" => Some(TranscodeState::Failed),
            _ => None,
        }
    }
}
