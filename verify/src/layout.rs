//! The files of a custody log directory, as a station writes it and `evidock-verify` reads it.
//!
//! ```text
//! <log dir>/
//!   station.pub                  the station's verifier key (C2SP note format), one line
//!   events.jsonl                 one canonical custody event per line, in seq order, append-only
//!   checkpoints/<size>.note      signed checkpoints, write-once; <size> zero-padded to 20 digits
//!   timestamps/<size>.tsr        RFC 3161 TimeStampResp over SHA-256 of the checkpoint note's bytes
//! ```
//!
//! Everything else in the directory (caches such as the station's `.index.sqlite`, locks, the
//! timestamp queue, `quarantine/`) is the station's and is not evidence: checks skip dotfiles.

pub const KEY_FILE: &str = "station.pub";
pub const EVENTS_FILE: &str = "events.jsonl";
pub const CHECKPOINTS_DIR: &str = "checkpoints";
pub const TIMESTAMPS_DIR: &str = "timestamps";

/// `checkpoints/<size>.note` file name.
pub fn checkpoint_file(size: u64) -> String {
    format!("{size:020}.note")
}

/// `timestamps/<size>.tsr` file name.
pub fn timestamp_file(size: u64) -> String {
    format!("{size:020}.tsr")
}

/// The tree size encoded in a checkpoint or timestamp file name.
pub fn size_of_file(name: &str) -> Option<u64> {
    let stem = name
        .strip_suffix(".note")
        .or_else(|| name.strip_suffix(".tsr"))?;
    if stem.len() != 20 || !stem.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    stem.parse().ok()
}
