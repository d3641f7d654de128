//! RFC 3161 time-stamp tokens: building requests and verifying replies, offline.
//!
//! A token proves that a TSA saw a digest at `genTime`. It is only worth that if every link holds,
//! so [`check_response`] / [`check_token`] check all of them and stop at the first that does not,
//! each failure with its own stable finding code ([`TimestampError::code`]):
//!
//! 1. the response status is granted (or granted with modifications), the DER is well formed and
//!    at most [`MAX_DER_LEN`] bytes;
//! 2. the token is a CMS `SignedData` whose eContentType is `id-ct-TSTInfo`, with exactly one
//!    `SignerInfo` carrying signed attributes;
//! 3. the content-type attribute is `id-ct-TSTInfo` and the message-digest attribute is the digest
//!    of the TSTInfo bytes;
//! 4. the signer certificate is in the token (found by the SignerInfo's sid) and bound to the
//!    signature by an ESS signing-certificate(-v2) attribute;
//! 5. the signature over the signed attributes verifies with that certificate's key;
//! 6. the certificate has only the `timeStamping` extended key usage, marked critical, and was
//!    valid at `genTime`;
//! 7. its chain verifies, issuer by issuer, up to a root the reader pinned ([`TsaTrust`]); with
//!    no pins at all the chain is still verified and the result says it is [`Anchor::Unanchored`];
//! 8. the TSTInfo names the expected imprint (algorithm and value), nonce and policy.
//!
//! The signature algorithms are in `sig`, the certificate path in `chain`; the DER structures
//! that `x509-tsp` does not cover (or covers too strictly: fractional `genTime`) in `asn1`.

mod asn1;
mod chain;
mod request;
mod sig;
mod verify;

#[cfg(test)]
mod tests;

use crate::id::Sha256;
use chrono::{DateTime, Utc};

pub use request::build_request;
pub use verify::{check_response, check_token};

/// The largest response or token accepted. Real tokens are a few KiB (a chain of three RSA
/// certificates is under 6 KiB); anything far larger is not a token and is refused before parsing.
pub const MAX_DER_LEN: usize = 1 << 20;

/// Trust anchors for TSA certificates, supplied by the reader, never taken from the token alone.
#[derive(Debug, Clone, Default)]
pub struct TsaTrust {
    /// Pinned root certificates (DER).
    pub roots: Vec<Vec<u8>>,
    /// Pinned SHA-256 fingerprints (of the DER) of roots the token itself carries.
    pub fingerprints: Vec<Sha256>,
}

impl TsaTrust {
    /// Whether the reader pinned anything: with no pins a valid token is only [`Anchor::Unanchored`].
    pub fn is_empty(&self) -> bool {
        self.roots.is_empty() && self.fingerprints.is_empty()
    }
}

/// The hash algorithm of a message imprint.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ImprintAlgorithm {
    Sha256,
    Sha384,
    Sha512,
    Sm3,
}

impl ImprintAlgorithm {
    /// The digest length in bytes: an imprint of any other length cannot be right.
    pub fn digest_len(self) -> usize {
        match self {
            ImprintAlgorithm::Sha256 | ImprintAlgorithm::Sm3 => 32,
            ImprintAlgorithm::Sha384 => 48,
            ImprintAlgorithm::Sha512 => 64,
        }
    }

    /// The algorithm's OID, dotted.
    pub fn oid(self) -> &'static str {
        match self {
            ImprintAlgorithm::Sha256 => "2.16.840.1.101.3.4.2.1",
            ImprintAlgorithm::Sha384 => "2.16.840.1.101.3.4.2.2",
            ImprintAlgorithm::Sha512 => "2.16.840.1.101.3.4.2.3",
            ImprintAlgorithm::Sm3 => "1.2.156.10197.1.401",
        }
    }

    /// The algorithm for a dotted OID, if it is one of ours.
    pub fn from_oid(oid: &str) -> Option<Self> {
        [Self::Sha256, Self::Sha384, Self::Sha512, Self::Sm3]
            .into_iter()
            .find(|a| a.oid() == oid)
    }

    pub fn name(self) -> &'static str {
        match self {
            ImprintAlgorithm::Sha256 => "SHA-256",
            ImprintAlgorithm::Sha384 => "SHA-384",
            ImprintAlgorithm::Sha512 => "SHA-512",
            ImprintAlgorithm::Sm3 => "SM3",
        }
    }
}

/// What the token must match.
#[derive(Debug, Clone)]
pub struct Expectation<'a> {
    pub algorithm: ImprintAlgorithm,
    /// The digest that was time-stamped.
    pub imprint: &'a [u8],
    /// The nonce sent, as big-endian unsigned integer bytes (leading zeros do not matter).
    pub nonce: Option<&'a [u8]>,
    /// The policy requested, as a dotted OID.
    pub policy: Option<&'a str>,
}

/// How the TSA certificate chain was anchored.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Anchor {
    /// The chain ends at a root the reader pinned (by certificate or by fingerprint).
    Pinned { root_sha256: Sha256 },
    /// Nothing was pinned: the chain verifies up to this self-signed root carried in the token
    /// (`None`: the token does not carry its root). The caller reports this as a warning.
    Unanchored { root_sha256: Option<Sha256> },
}

/// What a verified token says.
#[derive(Debug, Clone)]
pub struct TokenInfo {
    pub gen_time: DateTime<Utc>,
    /// The TSA's serial number of this token, lowercase hex.
    pub serial_hex: String,
    /// The TSA policy under which the token was issued, dotted OID.
    pub policy: String,
    /// The nonce echoed in the token, lowercase hex of its unsigned value.
    pub nonce_hex: Option<String>,
    /// The TSA name the token carries, e.g. `CN=Evidence Test TSA`.
    pub tsa_name: Option<String>,
    /// The subject of the certificate that signed the token.
    pub signer_subject: String,
    /// SHA-256 of the DER of that certificate.
    pub signer_sha256: Sha256,
    pub anchor: Anchor,
}

/// Why a token does not prove what it should. Every variant has its own stable [`code`].
///
/// [`code`]: TimestampError::code
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TimestampError {
    /// Not DER of the expected structure, truncated, or too large.
    #[error("malformed: {0}")]
    Malformed(String),
    /// The TSA answered with a status other than granted.
    #[error("the TSA refused: status {status} ({status_name}){}{}",
        if fail_info.is_empty() { String::new() } else { format!(", failure {}", fail_info.join(", ")) },
        if text.is_empty() { String::new() } else { format!(": {text}") })]
    Rejected {
        status: u32,
        status_name: String,
        /// PKIFailureInfo bits set, by name (e.g. `badAlg`).
        fail_info: Vec<String>,
        /// The statusString, joined.
        text: String,
    },
    /// Status granted but no token in the response.
    #[error("the response grants the request but carries no token")]
    NoToken,
    /// The token's ContentInfo is not SignedData.
    #[error("the token is not CMS SignedData but {0}")]
    NotSignedData(String),
    /// The SignedData does not encapsulate a TSTInfo.
    #[error("the signed content is not a TSTInfo but {0}")]
    NotTstInfo(String),
    #[error("expected exactly one signer, found {0}")]
    SignerCount(usize),
    /// No signed attributes: nothing binds the TSTInfo or the certificate to the signature.
    #[error("the signer has no signed attributes")]
    NoSignedAttributes,
    #[error("content-type attribute: {0}")]
    ContentTypeAttribute(String),
    #[error("message-digest attribute: {0}")]
    MessageDigestAttribute(String),
    #[error("signer certificate not found: {0}")]
    SignerNotFound(String),
    /// Neither ESS signing-certificate nor signing-certificate-v2 is present.
    #[error("no ESS signing-certificate(-v2) attribute binds the signer certificate")]
    EssMissing,
    #[error("ESS signing certificate does not match: {0}")]
    EssMismatch(String),
    #[error("signature does not verify: {0}")]
    BadSignature(String),
    #[error("unsupported {what} algorithm {oid}")]
    UnsupportedAlgorithm { what: String, oid: String },
    #[error("TSA certificate extended key usage: {0}")]
    Eku(String),
    #[error("TSA certificate key usage: {0}")]
    KeyUsage(String),
    #[error("certificate {subject} has an unsupported critical extension {oid}")]
    CriticalExtension { subject: String, oid: String },
    #[error(
        "TSA certificate {subject} was not valid at genTime {gen_time} (valid {not_before} to {not_after})"
    )]
    CertNotValidAtGenTime {
        subject: String,
        gen_time: String,
        not_before: String,
        not_after: String,
    },
    #[error("certificate chain: {0}")]
    ChainBroken(String),
    /// The chain verifies but does not end at a pinned root.
    #[error("the TSA chain ends at root {subject} (SHA-256 {root_sha256}), which is not pinned")]
    UntrustedRoot {
        /// SHA-256 of the self-issued root the chain reached.
        root_sha256: Sha256,
        /// The root's subject.
        subject: String,
    },
    /// A pinned root certificate cannot be parsed.
    #[error("pinned TSA root #{index} is not a certificate: {reason}")]
    BadTrustAnchor { index: usize, reason: String },
    #[error("imprint algorithm: expected {expected}, the token has {found}")]
    ImprintAlgorithm { expected: String, found: String },
    #[error("imprint mismatch: expected {expected}, the token has {found}")]
    ImprintMismatch { expected: String, found: String },
    #[error("nonce mismatch: expected {expected}, the token has {}", found.as_deref().unwrap_or("none"))]
    NonceMismatch {
        expected: String,
        found: Option<String>,
    },
    #[error("policy mismatch: expected {expected}, the token has {found}")]
    PolicyMismatch { expected: String, found: String },
    /// `build_request` was given something that cannot be sent.
    #[error("invalid time-stamp request: {0}")]
    InvalidRequest(String),
}

impl TimestampError {
    /// The stable finding code (documented in `docs/findings.md`; never renamed).
    pub fn code(&self) -> &'static str {
        match self {
            TimestampError::Malformed(_) => "timestamp.malformed",
            TimestampError::Rejected { .. } => "timestamp.rejected",
            TimestampError::NoToken => "timestamp.no-token",
            TimestampError::NotSignedData(_) => "timestamp.not-signed-data",
            TimestampError::NotTstInfo(_) => "timestamp.not-tstinfo",
            TimestampError::SignerCount(_) => "timestamp.signer-count",
            TimestampError::NoSignedAttributes => "timestamp.no-signed-attributes",
            TimestampError::ContentTypeAttribute(_) => "timestamp.content-type-attribute",
            TimestampError::MessageDigestAttribute(_) => "timestamp.message-digest-attribute",
            TimestampError::SignerNotFound(_) => "timestamp.signer-not-found",
            TimestampError::EssMissing => "timestamp.ess-missing",
            TimestampError::EssMismatch(_) => "timestamp.ess-mismatch",
            TimestampError::BadSignature(_) => "timestamp.bad-signature",
            TimestampError::UnsupportedAlgorithm { .. } => "timestamp.unsupported-algorithm",
            TimestampError::Eku(_) => "timestamp.eku",
            TimestampError::KeyUsage(_) => "timestamp.key-usage",
            TimestampError::CriticalExtension { .. } => "timestamp.critical-extension",
            TimestampError::CertNotValidAtGenTime { .. } => "timestamp.cert-not-valid-at-gen-time",
            TimestampError::ChainBroken(_) => "timestamp.chain-broken",
            TimestampError::UntrustedRoot { .. } => "timestamp.untrusted-root",
            TimestampError::BadTrustAnchor { .. } => "timestamp.bad-trust-anchor",
            TimestampError::ImprintAlgorithm { .. } => "timestamp.imprint-algorithm",
            TimestampError::ImprintMismatch { .. } => "timestamp.imprint-mismatch",
            TimestampError::NonceMismatch { .. } => "timestamp.nonce-mismatch",
            TimestampError::PolicyMismatch { .. } => "timestamp.policy-mismatch",
            TimestampError::InvalidRequest(_) => "timestamp.invalid-request",
        }
    }

    /// Whether asking the same TSA again later may succeed: it said it is busy or failing
    /// (status `waiting`, or failure `timeNotAvailable` / `systemFailure`). Everything else is a
    /// property of the request or of the token and will not change by retrying.
    pub fn is_transient(&self) -> bool {
        match self {
            TimestampError::Rejected {
                status, fail_info, ..
            } => {
                *status == 3
                    || fail_info
                        .iter()
                        .any(|f| f == "timeNotAvailable" || f == "systemFailure")
            }
            _ => false,
        }
    }

    /// Every code this module can return, for documentation and tests.
    pub const CODES: &'static [&'static str] = &[
        "timestamp.malformed",
        "timestamp.rejected",
        "timestamp.no-token",
        "timestamp.not-signed-data",
        "timestamp.not-tstinfo",
        "timestamp.signer-count",
        "timestamp.no-signed-attributes",
        "timestamp.content-type-attribute",
        "timestamp.message-digest-attribute",
        "timestamp.signer-not-found",
        "timestamp.ess-missing",
        "timestamp.ess-mismatch",
        "timestamp.bad-signature",
        "timestamp.unsupported-algorithm",
        "timestamp.eku",
        "timestamp.key-usage",
        "timestamp.critical-extension",
        "timestamp.cert-not-valid-at-gen-time",
        "timestamp.chain-broken",
        "timestamp.untrusted-root",
        "timestamp.bad-trust-anchor",
        "timestamp.imprint-algorithm",
        "timestamp.imprint-mismatch",
        "timestamp.nonce-mismatch",
        "timestamp.policy-mismatch",
        "timestamp.invalid-request",
    ];
}

impl From<der::Error> for TimestampError {
    fn from(e: der::Error) -> Self {
        TimestampError::Malformed(e.to_string())
    }
}

/// The unsigned value of a big-endian byte string without leading zeros (`[]` for zero), so that
/// `00 80` as sent and `00 80` as an ASN.1 INTEGER compare equal.
pub(crate) fn unsigned_trim(b: &[u8]) -> &[u8] {
    let start = b.iter().position(|&x| x != 0).unwrap_or(b.len());
    &b[start..]
}
