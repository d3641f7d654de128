//! Evidence records: one write-once object per evidence item in the store
//! (`stations/<station>/records/<evidence ID>.json`), so a reviewer's laptop can list every item
//! from the store alone. A record repeats what the `acquired` custody event says and names that
//! event by its position and leaf hash; later facts (uploads, links, derivatives) are custody
//! events, never rewrites of the record.

use crate::event::payload::AcquiredPayload;
use crate::id::{EvidenceId, Sha256, StationId};
use serde::{Deserialize, Serialize};

pub const RECORD_VERSION: u32 = 1;

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct EvidenceRecord {
    pub v: u32,
    pub evidence: EvidenceId,
    pub station: StationId,
    /// Position of the `acquired` event in the station's custody log.
    pub acquired_seq: u64,
    /// Its Merkle leaf hash (SHA-256 of 0x00 ‖ the event's canonical bytes).
    pub acquired_leaf: Sha256,
    /// The `acquired` event's payload: camera, officer, path, size, digests, times.
    pub acquired: AcquiredPayload,
    /// The original's object key (relative to the store's prefix).
    pub original: String,
    /// What the original holds (duration, codecs, resolution…), when it is a media file that
    /// could be read when the record was written.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub media: Option<crate::media::MediaInfo>,
}

impl EvidenceRecord {
    /// Canonical bytes (RFC 8785), as stored.
    pub fn to_canonical(&self) -> Result<Vec<u8>, crate::canonical::CanonicalError> {
        crate::canonical::to_canonical(self)
    }
}
