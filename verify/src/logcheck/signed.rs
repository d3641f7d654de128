//! Checking one signed checkpoint, and one RFC 3161 token over a checkpoint's bytes.

use super::code;
use crate::checkpoint::SignedCheckpoint;
use crate::finding::Report;
use crate::id::Sha256;
use crate::note::VerifierKey;
use crate::timestamp::{self, Anchor, Expectation, ImprintAlgorithm};
use crate::verdict::TsaRoots;

/// Parse a checkpoint and check its signature; findings go to `r`.
pub fn check_checkpoint(
    bytes: &[u8],
    key: Option<&VerifierKey>,
    subject: &str,
    r: &mut Report,
) -> Option<SignedCheckpoint> {
    let sc = match SignedCheckpoint::parse(bytes) {
        Ok(sc) => sc,
        Err(e) => {
            r.error(code::CHECKPOINT_MALFORMED, subject, e.to_string());
            return None;
        }
    };
    let Some(key) = key else {
        r.error(
            code::CHECKPOINT_BAD_SIGNATURE,
            subject,
            "no station key to verify the signature with",
        );
        return None;
    };
    if sc.checkpoint.origin != key.name {
        r.error(
            code::CHECKPOINT_WRONG_ORIGIN,
            subject,
            format!(
                "origin {:?} is not the station's {:?}",
                sc.checkpoint.origin, key.name
            ),
        );
        return None;
    }
    if !sc.verify(key) {
        r.error(
            code::CHECKPOINT_BAD_SIGNATURE,
            subject,
            format!("no valid signature by {} ({})", key.name, key.fingerprint()),
        );
        return None;
    }
    Some(sc)
}

/// A token over a checkpoint that verified, and whether it attests: only a chain ending at a
/// root the receiver pinned attests time.
#[derive(Debug, Clone)]
pub struct CheckedToken {
    pub info: timestamp::TokenInfo,
    pub attests: bool,
}

/// Check an RFC 3161 response over a checkpoint note's bytes (SHA-256 imprint). A chain that
/// verifies to a root the receiver did not pin is a warning and attests nothing (anyone can
/// make a TSA certificate); any failure is an error with its own code. Roots met go to `roots`.
pub fn check_checkpoint_token(
    der: &[u8],
    note: &[u8],
    tsa: &timestamp::TsaTrust,
    subject: &str,
    roots: &mut TsaRoots,
    r: &mut Report,
) -> Option<CheckedToken> {
    let imprint = Sha256::digest(note);
    let expect = Expectation {
        algorithm: ImprintAlgorithm::Sha256,
        imprint: &imprint.0,
        nonce: None,
        policy: None,
    };
    match timestamp::check_response(der, &expect, tsa) {
        Ok(info) => {
            let attests = match &info.anchor {
                Anchor::Pinned { root_sha256 } => {
                    roots.pinned.insert(*root_sha256);
                    true
                }
                Anchor::Unanchored { root_sha256 } => {
                    let root = match root_sha256 {
                        Some(s) => s.to_string(),
                        None => format!(
                            "not in the token; signer certificate {}",
                            info.signer_sha256
                        ),
                    };
                    r.warning(
                        code::TIMESTAMP_NOT_ANCHORED,
                        subject,
                        format!(
                            "the token's chain verifies to the TSA root {root}, which the receiver did not pin: it attests no time (pin the root the TSA publishes with --trust)"
                        ),
                    );
                    roots.unpinned.insert(root);
                    false
                }
            };
            Some(CheckedToken { info, attests })
        }
        Err(e) => {
            r.error(e.code(), subject, e.to_string());
            None
        }
    }
}
