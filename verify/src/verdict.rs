//! The verdict a check gives, in the receiver's terms: integrity and time, each only as far as
//! the anchors the receiver pinned carry it.
//!
//! - **Integrity** is [`Integrity::Proven`] only when nothing is an error and every signature
//!   that counts is by a station key the receiver pinned (directly, or joined to a pinned key
//!   by verified hand-overs). Without a pinned key the same bytes are only
//!   [`Integrity::Consistent`]: they agree with the key the input itself carries, which anyone
//!   could have made.
//! - **Time** is [`Time::Attested`] only when integrity is proven and RFC 3161 tokens whose
//!   chains end at a TSA root the receiver pinned cover what is checked. A token that verifies
//!   to a root nobody pinned attests nothing: anyone can make a TSA certificate.
//!
//! The exit status follows ([`Verdict::exit_status`]): 0 when every claim the input makes is
//! proven under the receiver's anchors; 1 on any error; 3 when nothing is an error but a claim
//! rests on an anchor the receiver did not pin (the station key, or a TSA root a token chains
//! to), or part of the input is of a later version this verifier cannot interpret. 2 is
//! reserved for a check that could not run.

use crate::finding::Report;
use crate::id::Sha256;
use serde::Serialize;
use std::collections::BTreeSet;

/// How far integrity is established.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Integrity {
    /// No errors, and every signature that counts is by a pinned station key.
    Proven,
    /// No errors, but the station key is not pinned: consistent with the key the input carries.
    Consistent,
    /// An error, or something left unsealed.
    NotProven,
}

/// Whether trusted time is established.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Time {
    Attested,
    NotAttested,
}

/// Exit statuses of `evidock-verify`.
pub mod exit {
    /// Every claim proven under the receiver's anchors.
    pub const PROVEN: u8 = 0;
    /// At least one error.
    pub const ERRORS: u8 = 1;
    /// The check could not run.
    pub const CANNOT_RUN: u8 = 2;
    /// No error, but a claim rests on an anchor the receiver did not pin.
    pub const NOT_ANCHORED: u8 = 3;
}

/// TSA roots met while checking tokens.
#[derive(Debug, Clone, Default, Serialize)]
pub struct TsaRoots {
    /// Pinned roots that anchored at least one token.
    pub pinned: BTreeSet<Sha256>,
    /// Roots of tokens that verify but end at a root the receiver did not pin: the SHA-256 of
    /// the root certificate's DER, or what is known when the token does not carry its root.
    pub unpinned: BTreeSet<String>,
}

/// The verdict of one check.
#[derive(Debug, Clone, Serialize)]
pub struct Verdict {
    pub integrity: Integrity,
    /// Why, in one sentence.
    pub integrity_reason: String,
    pub time: Time,
    pub time_reason: String,
    /// The station key the verdict rests on (fingerprint), and whether the receiver pinned it.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub station_key: Option<Sha256>,
    pub station_key_pinned: bool,
    pub tsa_roots: TsaRoots,
    /// Parts of a later version this verifier cannot interpret (events of unknown kinds, roles
    /// or subjects; unknown manifest fields or file roles): proven as bytes, but what they say
    /// is not judged.
    pub uninterpreted: usize,
}

/// How many parts of the input `report` says this verifier could not interpret: findings with
/// the codes of `later` (each checker lists its own codes of a later version, so that the
/// verdict depends on no checker).
pub(crate) fn uninterpreted(report: &Report, later: &[&[&str]]) -> usize {
    later
        .iter()
        .flat_map(|codes| codes.iter())
        .map(|c| report.count_code(c))
        .sum()
}

impl Verdict {
    /// The exit status: 0, 1 or 3 (see the module documentation).
    pub fn exit_status(&self, report: &Report) -> u8 {
        if report.has_errors() {
            exit::ERRORS
        } else if self.integrity == Integrity::Proven
            && self.tsa_roots.unpinned.is_empty()
            && self.uninterpreted == 0
        {
            exit::PROVEN
        } else {
            exit::NOT_ANCHORED
        }
    }
}

/// Why integrity is what it is, given the facts a check established.
pub(crate) fn integrity(
    report: &Report,
    complete: Result<(), String>,
    key: Option<Sha256>,
    key_pinned: bool,
) -> (Integrity, String) {
    if report.has_errors() {
        return (Integrity::NotProven, "see the errors above".into());
    }
    if let Err(why) = complete {
        return (Integrity::NotProven, why);
    }
    match (key, key_pinned) {
        (Some(_), true) => (Integrity::Proven, String::new()),
        (Some(fp), false) => (
            Integrity::Consistent,
            format!(
                "station key not pinned (fingerprint {fp}): compare it with the collection record (提取笔录), never with the package, and pin it with --trust"
            ),
        ),
        (None, _) => (Integrity::NotProven, "no station key".into()),
    }
}

/// Why time is what it is.
pub(crate) fn time(
    integrity: Integrity,
    covered: bool,
    any_token: bool,
    roots: &TsaRoots,
) -> (Time, String) {
    match integrity {
        Integrity::NotProven => {
            return (Time::NotAttested, "integrity not proven".into());
        }
        Integrity::Consistent => {
            return (
                Time::NotAttested,
                "station key not pinned: a token over checkpoints of an unpinned key proves nothing about this station".into(),
            );
        }
        Integrity::Proven => {}
    }
    if covered {
        return (Time::Attested, String::new());
    }
    if !roots.unpinned.is_empty() {
        return (
            Time::NotAttested,
            format!(
                "TSA root not pinned (SHA-256 {}): pin the root the TSA itself publishes, never one taken from the package",
                roots
                    .unpinned
                    .iter()
                    .cloned()
                    .collect::<Vec<_>>()
                    .join(", ")
            ),
        );
    }
    if any_token {
        return (
            Time::NotAttested,
            "the valid tokens do not cover everything checked (station time for the rest)".into(),
        );
    }
    (
        Time::NotAttested,
        "no RFC 3161 token (station time only)".into(),
    )
}
