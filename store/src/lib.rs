//! # evidock-store
//!
//! Writes the formats that `evidock-verify` checks: the station key and its signatures, the
//! append-only custody log with its checkpoints, RFC 3161 time-stamps, and (later) the object
//! layout of the evidence store.

pub mod checkpoints;
pub mod clock;
pub mod crash;
pub mod fsutil;
pub mod key;
pub mod log;
pub mod objects;
pub mod redact;
pub mod s3control;
#[cfg(test)]
mod testhttp;
pub mod timestamping;
pub mod tsa;
