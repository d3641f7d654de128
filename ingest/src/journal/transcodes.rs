//! The `transcodes` table: where each content's derivatives stand (the transcode queue's state).

use super::{Journal, JournalError, Undecodable, ts};
use chrono::{DateTime, Utc};
use evidock_verify::id::{EvidenceId, Sha256};
use rusqlite::params;

impl Journal {
    /// Where the derivatives of every content stand, in one query (for the backlog and the
    /// status page).
    pub fn transcode_states(
        &self,
    ) -> Result<std::collections::HashMap<Sha256, TranscodeState>, JournalError> {
        self.with(|db| {
            let mut q = db.prepare("SELECT sha256, state FROM transcodes")?;
            let rows = q.query_map([], |r| Ok((r.get::<_, String>(0)?, r.get::<_, String>(1)?)))?;
            rows.collect::<rusqlite::Result<Vec<_>>>()
        })
        .map(|v| {
            v.into_iter()
                .filter_map(|(sha, st)| {
                    let decoded = sha.parse().ok().zip(TranscodeState::parse(&st));
                    if decoded.is_none() {
                        self.note_undecodable(Undecodable {
                            table: "transcodes".into(),
                            row: sha.clone(),
                            reason: format!("sha256 {sha:?}, state {st:?}"),
                        });
                    }
                    decoded
                })
                .collect()
        })
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
