//! # evidock-verify
//!
//! The evidence formats of evidock and their checks: everything a court needs to verify a
//! disclosure package or a custody log offline, and nothing else. No FFmpeg, no USB, no object
//! store, no network, no async runtime (invariant 7).
//!
//! | module | what |
//! | --- | --- |
//! | [`id`] | typed identifiers: [`id::Sha256`], [`id::EvidenceId`], [`id::CaseId`], … |
//! | [`digest`] | SHA-256 / SM3 / MD5 in one pass over shared buffers |
//! | [`canonical`] | the canonical JSON encoding (RFC 8785, integers only) |
//! | [`event`] | custody events and their payloads |
//! | [`merkle`] | the RFC 9162 Merkle tree, inclusion and consistency proofs |
//! | [`note`], [`checkpoint`] | C2SP signed notes, checkpoints, offline proofs |
//! | [`timestamp`] | RFC 3161 time-stamp requests and token verification |
//! | [`trust`] | trust anchors supplied by the reader (`--trust FILE`) |
//! | [`logcheck`] | checking a custody log directory |
//! | [`finding`] | findings with stable codes, collected into a report |

pub mod beneath;
pub mod canonical;
pub mod case;
pub mod checkpoint;
pub mod digest;
pub mod escape;
pub mod event;
pub mod expect;
pub mod finding;
pub mod gbk;
pub mod id;
pub mod layout;
pub mod logcheck;
pub mod media;
pub mod merkle;
pub mod note;
pub mod package;
pub mod record;
pub mod timestamp;
pub mod trust;
pub mod verdict;
