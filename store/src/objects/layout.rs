//! Object keys, relative to the store's prefix.

use super::*;

fn fanout(kind: &str, sha: &Sha256) -> String {
    let h = sha.to_hex();
    format!("{kind}/sha256/{}/{}/{h}", &h[0..2], &h[2..4])
}

/// An original, by the SHA-256 of its bytes.
pub fn original(sha: &Sha256) -> String {
    fanout("originals", sha)
}

/// A derivative (playback copy, thumbnail), by the SHA-256 of its bytes.
pub fn derivative(sha: &Sha256) -> String {
    fanout("derivatives", sha)
}

pub fn station(st: &StationId) -> String {
    format!("stations/{st}")
}

/// A station's verifier key, by its fingerprint (a rotated key adds a file).
pub fn station_key(st: &StationId, fingerprint: &Sha256) -> String {
    format!("stations/{st}/keys/{fingerprint}.pub")
}

/// The log's first key (`station.pub` of the log directory): later keys are named by the
/// log's `key-rotated` events.
pub fn log_key(st: &StationId) -> String {
    format!("stations/{st}/log/station.pub")
}

/// The write-once record of an evidence item.
pub fn record(st: &StationId, ev: &EvidenceId) -> String {
    format!("stations/{st}/records/{ev}.json")
}

/// Events `from..to` of a station's custody log, one canonical event per line.
pub fn log_segment(st: &StationId, from: u64, to: u64) -> String {
    format!("stations/{st}/log/segments/{from:020}-{to:020}.jsonl")
}

pub fn checkpoint(st: &StationId, size: u64) -> String {
    format!("stations/{st}/log/checkpoints/{size:020}.note")
}

pub fn timestamp(st: &StationId, size: u64) -> String {
    format!("stations/{st}/log/timestamps/{size:020}.tsr")
}

/// `(from, to)` of a segment key's file name.
pub fn segment_range(name: &str) -> Option<(u64, u64)> {
    let stem = name.rsplit('/').next()?.strip_suffix(".jsonl")?;
    let (a, b) = stem.split_once('-')?;
    Some((a.parse().ok()?, b.parse().ok()?))
}
