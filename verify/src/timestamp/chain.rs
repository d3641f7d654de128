//! The TSA certificate and its path to a root.
//!
//! Deliberately small: a TSA chain is two or three certificates, all carried in the token or
//! pinned by the reader. What RFC 3161 and RFC 5280 require and what this checks:
//! the TSA certificate has exactly one EKU, `id-kp-timeStamping`, marked critical (§2.3), a key
//! usage that allows signing, and was valid at `genTime`; each issuer verifies the signature on
//! the certificate below it, is a CA (basicConstraints, pathLen, keyCertSign) and was valid at
//! `genTime`; no certificate has a critical extension we do not understand. Validity is judged
//! at `genTime`, not now: a token stays valid after its TSA certificate expires, which is the
//! point of time-stamping. Revocation is not checked (offline verification has no CRLs).

use super::asn1::{self, oid};
use super::sig::{SigAlg, SigError};
use super::{Anchor, TimestampError};
use crate::id::Sha256;
use chrono::{DateTime, Utc};
use der::asn1::ObjectIdentifier;
use der::{Decode, Encode};
use x509_cert::Certificate;
use x509_cert::ext::Extension;
use x509_cert::ext::pkix::{BasicConstraints, ExtendedKeyUsage, KeyUsage, SubjectKeyIdentifier};

/// A path longer than this is not a TSA chain but an attempt to make us work.
const MAX_CHAIN: usize = 8;

/// Critical extensions whose meaning this module applies (or which do not restrict a TSA chain).
const UNDERSTOOD_CRITICAL: &[ObjectIdentifier] = &[
    oid::EXT_BASIC_CONSTRAINTS,
    oid::EXT_KEY_USAGE,
    oid::EXT_EXTENDED_KEY_USAGE,
    oid::EXT_SUBJECT_ALT_NAME,
    oid::EXT_SUBJECT_KEY_ID,
    oid::EXT_AUTHORITY_KEY_ID,
    oid::EXT_CERTIFICATE_POLICIES,
];

/// A certificate with the bytes its fingerprint, ESS hash and issuer signature are computed over.
#[derive(Debug, Clone)]
pub(crate) struct Cert {
    pub der: Vec<u8>,
    pub parsed: Certificate,
    pub sha256: Sha256,
    tbs: Vec<u8>,
    subject_der: Vec<u8>,
    issuer_der: Vec<u8>,
}

impl Cert {
    pub fn parse(der: &[u8]) -> Result<Self, String> {
        let parsed = Certificate::from_der(der).map_err(|e| e.to_string())?;
        let tbs = asn1::tbs_of(der).map_err(|e| e.to_string())?.to_vec();
        let subject_der = parsed
            .tbs_certificate
            .subject
            .to_der()
            .map_err(|e| e.to_string())?;
        let issuer_der = parsed
            .tbs_certificate
            .issuer
            .to_der()
            .map_err(|e| e.to_string())?;
        Ok(Cert {
            der: der.to_vec(),
            sha256: Sha256::digest(der),
            parsed,
            tbs,
            subject_der,
            issuer_der,
        })
    }

    pub fn subject(&self) -> String {
        self.parsed.tbs_certificate.subject.to_string()
    }

    pub fn issuer(&self) -> String {
        self.parsed.tbs_certificate.issuer.to_string()
    }

    /// The issuer Name's DER, to compare with other Names.
    pub fn issuer_der(&self) -> &[u8] {
        &self.issuer_der
    }

    /// Subject and issuer are the same name: the top of a chain (its self-signature is not
    /// checked: a root is trusted because it is pinned, not because it signed itself, and old
    /// roots are self-signed with SHA-1).
    pub fn is_self_issued(&self) -> bool {
        self.subject_der == self.issuer_der
    }

    pub fn serial(&self) -> &[u8] {
        self.parsed.tbs_certificate.serial_number.as_bytes()
    }

    pub fn spki(&self) -> &spki::SubjectPublicKeyInfoOwned {
        &self.parsed.tbs_certificate.subject_public_key_info
    }

    pub fn not_before(&self) -> Option<DateTime<Utc>> {
        to_chrono(self.parsed.tbs_certificate.validity.not_before)
    }

    pub fn not_after(&self) -> Option<DateTime<Utc>> {
        to_chrono(self.parsed.tbs_certificate.validity.not_after)
    }

    pub fn valid_at(&self, t: DateTime<Utc>) -> bool {
        matches!((self.not_before(), self.not_after()), (Some(a), Some(b)) if a <= t && t <= b)
    }

    fn validity_text(&self) -> (String, String) {
        let show = |t: Option<DateTime<Utc>>| t.map_or("(out of range)".into(), |t| t.to_rfc3339());
        (show(self.not_before()), show(self.not_after()))
    }

    /// The one extension with this OID; an error if it occurs twice (RFC 5280 §4.2).
    fn extension(&self, id: ObjectIdentifier) -> Result<Option<&Extension>, String> {
        let mut found = self
            .parsed
            .tbs_certificate
            .extensions
            .iter()
            .flatten()
            .filter(|e| e.extn_id == id);
        let first = found.next();
        if found.next().is_some() {
            return Err(format!("extension {id} occurs more than once"));
        }
        Ok(first)
    }

    fn decoded<'a, T: Decode<'a>>(
        &'a self,
        id: ObjectIdentifier,
    ) -> Result<Option<(bool, T)>, String> {
        match self.extension(id)? {
            None => Ok(None),
            Some(e) => T::from_der(e.extn_value.as_bytes())
                .map(|v| Some((e.critical, v)))
                .map_err(|err| format!("extension {id}: {err}")),
        }
    }

    pub fn subject_key_id(&self) -> Option<Vec<u8>> {
        self.decoded::<SubjectKeyIdentifier>(oid::EXT_SUBJECT_KEY_ID)
            .ok()
            .flatten()
            .map(|(_, ski)| ski.0.as_bytes().to_vec())
    }

    fn unknown_critical(&self) -> Option<ObjectIdentifier> {
        self.parsed
            .tbs_certificate
            .extensions
            .iter()
            .flatten()
            .find(|e| e.critical && !UNDERSTOOD_CRITICAL.contains(&e.extn_id))
            .map(|e| e.extn_id)
    }

    /// Whether `issuer`'s key verifies this certificate's signature.
    pub fn check_signed_by(&self, issuer: &Cert) -> Result<(), SigError> {
        if self.parsed.signature_algorithm != self.parsed.tbs_certificate.signature {
            return Err(SigError::Invalid(
                "signatureAlgorithm differs from the one inside tbsCertificate".into(),
            ));
        }
        let alg = SigAlg::from_x509(&self.parsed.signature_algorithm)?;
        let sig =
            self.parsed.signature.as_bytes().ok_or_else(|| {
                SigError::Invalid("signature bit string is not whole bytes".into())
            })?;
        alg.verify(issuer.spki(), &self.tbs, sig)
    }
}

fn to_chrono(t: x509_cert::time::Time) -> Option<DateTime<Utc>> {
    let d = t.to_unix_duration();
    DateTime::from_timestamp(i64::try_from(d.as_secs()).ok()?, d.subsec_nanos())
}

/// RFC 3161 §2.3 and RFC 5280 for the certificate that signed the token.
pub(crate) fn check_tsa_cert(cert: &Cert, gen_time: DateTime<Utc>) -> Result<(), TimestampError> {
    let subject = cert.subject();
    let eku = cert
        .decoded::<ExtendedKeyUsage>(oid::EXT_EXTENDED_KEY_USAGE)
        .map_err(TimestampError::Eku)?;
    match eku {
        None => {
            return Err(TimestampError::Eku(format!(
                "{subject} has no extendedKeyUsage extension (timeStamping required)"
            )));
        }
        Some((critical, ExtendedKeyUsage(purposes))) => {
            if purposes.as_slice() != [oid::KP_TIME_STAMPING] {
                let list: Vec<String> = purposes.iter().map(|p| p.to_string()).collect();
                return Err(TimestampError::Eku(format!(
                    "{subject} has purposes [{}]; exactly timeStamping ({}) is required",
                    list.join(", "),
                    oid::KP_TIME_STAMPING
                )));
            }
            if !critical {
                return Err(TimestampError::Eku(format!(
                    "{subject}: the extendedKeyUsage extension is not marked critical"
                )));
            }
        }
    }
    let ku = cert
        .decoded::<KeyUsage>(oid::EXT_KEY_USAGE)
        .map_err(TimestampError::KeyUsage)?;
    if let Some((_, ku)) = ku
        && !ku.digital_signature()
        && !ku.non_repudiation()
    {
        return Err(TimestampError::KeyUsage(format!(
            "{subject} allows neither digitalSignature nor nonRepudiation"
        )));
    }
    if let Some(oid) = cert.unknown_critical() {
        return Err(TimestampError::CriticalExtension {
            subject,
            oid: oid.to_string(),
        });
    }
    if !cert.valid_at(gen_time) {
        let (not_before, not_after) = cert.validity_text();
        return Err(TimestampError::CertNotValidAtGenTime {
            subject,
            gen_time: gen_time.to_rfc3339(),
            not_before,
            not_after,
        });
    }
    Ok(())
}

/// What an issuer must be: a CA allowed to sign certificates at `genTime`, with room in its
/// pathLenConstraint for the `intermediates` CA certificates already below it.
fn check_issuer(
    issuer: &Cert,
    intermediates: usize,
    gen_time: DateTime<Utc>,
) -> Result<(), TimestampError> {
    let subject = issuer.subject();
    let broken = |why: String| TimestampError::ChainBroken(format!("issuer {subject} {why}"));
    match issuer
        .decoded::<BasicConstraints>(oid::EXT_BASIC_CONSTRAINTS)
        .map_err(broken)?
    {
        Some((_, bc)) if bc.ca => {
            if let Some(max) = bc.path_len_constraint
                && intermediates > usize::from(max)
            {
                return Err(broken(format!(
                    "allows {max} intermediate CA(s) below it, the chain has {intermediates}"
                )));
            }
        }
        _ => {
            return Err(broken(
                "is not a CA (basicConstraints cA is not true)".into(),
            ));
        }
    }
    let ku = issuer
        .decoded::<KeyUsage>(oid::EXT_KEY_USAGE)
        .map_err(broken)?;
    if let Some((_, ku)) = ku
        && !ku.key_cert_sign()
    {
        return Err(broken("has a keyUsage without keyCertSign".into()));
    }
    if let Some(oid) = issuer.unknown_critical() {
        return Err(TimestampError::CriticalExtension {
            subject,
            oid: oid.to_string(),
        });
    }
    if !issuer.valid_at(gen_time) {
        let (a, b) = issuer.validity_text();
        return Err(broken(format!(
            "was not valid at genTime {} (valid {a} to {b})",
            gen_time.to_rfc3339()
        )));
    }
    Ok(())
}

/// Walk from the TSA certificate up to a root and say how it is anchored.
///
/// Issuers are looked for among the pinned roots first, then among the token's certificates, by
/// subject name; the first whose key verifies the signature is taken. With pins (`pinned` or
/// `fingerprints` non-empty) the walk must reach a pinned root: ending at another self-issued
/// root is `untrusted-root`, running out of issuers is `chain-broken`. Without pins it goes as
/// far as the token allows and reports [`Anchor::Unanchored`].
pub(crate) fn anchor(
    signer: &Cert,
    token: &[Cert],
    pinned: &[Cert],
    fingerprints: &[Sha256],
    gen_time: DateTime<Utc>,
) -> Result<Anchor, TimestampError> {
    let pinned_mode = !pinned.is_empty() || !fingerprints.is_empty();
    // A pinned root may be re-issued (same name and key, new DER): that is still the pinned key.
    let pinned_match = |c: &Cert| -> Option<Sha256> {
        if let Some(p) = pinned.iter().find(|p| p.sha256 == c.sha256) {
            return Some(p.sha256);
        }
        if c.is_self_issued() {
            if fingerprints.contains(&c.sha256) {
                return Some(c.sha256);
            }
            if let Some(p) = pinned
                .iter()
                .find(|p| p.subject_der == c.subject_der && p.spki() == c.spki())
            {
                return Some(p.sha256);
            }
        }
        None
    };

    let mut current = signer;
    let mut seen = vec![signer.sha256];
    let mut intermediates = 0usize;
    for _ in 0..MAX_CHAIN {
        if let Some(root_sha256) = pinned_match(current) {
            return Ok(Anchor::Pinned { root_sha256 });
        }
        if current.is_self_issued() {
            return if pinned_mode {
                Err(TimestampError::UntrustedRoot {
                    root_sha256: current.sha256,
                    subject: current.subject(),
                })
            } else {
                Ok(Anchor::Unanchored {
                    root_sha256: Some(current.sha256),
                })
            };
        }
        let mut failure: Option<(String, SigError)> = None;
        let mut issuer = None;
        for cand in pinned.iter().chain(token) {
            if cand.subject_der != current.issuer_der || seen.contains(&cand.sha256) {
                continue;
            }
            match current.check_signed_by(cand) {
                Ok(()) => {
                    issuer = Some(cand);
                    break;
                }
                Err(e) => failure = Some((cand.subject(), e)),
            }
        }
        let Some(issuer) = issuer else {
            return match failure {
                Some((_, e @ SigError::Unsupported { .. })) => Err(e.into_error("certificate")),
                Some((by, SigError::Invalid(why))) => Err(TimestampError::ChainBroken(format!(
                    "the signature on {} does not verify with the key of {by}: {why}",
                    current.subject()
                ))),
                None if pinned_mode => Err(TimestampError::ChainBroken(format!(
                    "the issuer {} of {} is neither in the token nor pinned",
                    current.issuer(),
                    current.subject()
                ))),
                None => Ok(Anchor::Unanchored { root_sha256: None }),
            };
        };
        check_issuer(issuer, intermediates, gen_time)?;
        if !issuer.is_self_issued() {
            intermediates += 1;
        }
        seen.push(issuer.sha256);
        current = issuer;
    }
    Err(TimestampError::ChainBroken(format!(
        "no root within {MAX_CHAIN} certificates"
    )))
}
