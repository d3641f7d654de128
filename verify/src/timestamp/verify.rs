//! The verification policy for RFC 3161 responses and tokens (see the module docs of
//! [`crate::timestamp`] for the list of checks and their order).
//!
//! The order is: structure, then the signature binding (content type, message digest, signer
//! certificate, ESS, signature), then the certificate and its chain, and only then what the
//! token says (imprint, nonce, policy). A forged token is thus reported as forged, not as a
//! token "for something else".

use super::asn1::{
    self, EssCertId, EssCertIdV2, SignedDataRaw, SigningCertificate, SigningCertificateV2,
    StatusInfo, TstInfo, oid,
};
use super::chain::{self, Cert};
use super::sig::{HashAlg, SigAlg};
use super::{Expectation, ImprintAlgorithm, MAX_DER_LEN, TimestampError, TokenInfo, TsaTrust};
use cms::signed_data::{EncapsulatedContentInfo, SignerIdentifier, SignerInfo};
use der::asn1::{ObjectIdentifier, OctetStringRef, SetOfVec};
use der::{Decode, Encode, Tagged as _};
use x509_cert::attr::Attribute;
use x509_cert::ext::pkix::name::GeneralName;

/// More certificates than this in one token is not a TSA chain; refusing bounds the work of
/// building a path (one signature check per candidate issuer).
const MAX_CERTS: usize = 64;

/// Verify a full `TimeStampResp` (what a TSA answers and what is stored as `.tsr`).
pub fn check_response(
    response_der: &[u8],
    expect: &Expectation<'_>,
    trust: &TsaTrust,
) -> Result<TokenInfo, TimestampError> {
    bound(response_der, "response")?;
    let resp = asn1::TimeStampResp::from_der(response_der)
        .map_err(|e| TimestampError::Malformed(format!("not a TimeStampResp: {e}")))?;
    let status = resp.status.status_value().ok_or_else(|| {
        TimestampError::Malformed("PKIStatus is not a small non-negative integer".into())
    })?;
    if status > 1 {
        return Err(TimestampError::Rejected {
            status,
            status_name: StatusInfo::status_name(status).to_string(),
            fail_info: resp.status.fail_info_names(),
            text: resp.status.text(),
        });
    }
    let token = resp.token.ok_or(TimestampError::NoToken)?;
    check_token(&token.to_der()?, expect, trust)
}

/// Verify a bare `TimeStampToken` (a CMS `ContentInfo`).
pub fn check_token(
    token_der: &[u8],
    expect: &Expectation<'_>,
    trust: &TsaTrust,
) -> Result<TokenInfo, TimestampError> {
    bound(token_der, "token")?;
    let malformed = |what: &str, e: der::Error| TimestampError::Malformed(format!("{what}: {e}"));
    let raw = SignedDataRaw::parse(token_der).map_err(|e| malformed("token", e))?;
    if raw.content_type != oid::SIGNED_DATA {
        return Err(TimestampError::NotSignedData(raw.content_type.to_string()));
    }

    // The TSTInfo, exactly as signed.
    let encap = EncapsulatedContentInfo::from_der(raw.encap)
        .map_err(|e| malformed("encapsulated content", e))?;
    if encap.econtent_type != oid::TST_INFO {
        return Err(TimestampError::NotTstInfo(encap.econtent_type.to_string()));
    }
    let econtent = encap.econtent.as_ref().ok_or_else(|| {
        TimestampError::Malformed("the TSTInfo is absent (detached content)".into())
    })?;
    let tst_bytes = econtent
        .decode_as::<OctetStringRef<'_>>()
        .map_err(|e| malformed("eContent", e))?
        .as_bytes();
    let tst = TstInfo::from_der(tst_bytes).map_err(|e| malformed("TSTInfo", e))?;
    if tst.version != 1 {
        return Err(TimestampError::Malformed(format!(
            "TSTInfo version {} (1 expected)",
            tst.version
        )));
    }
    let gen_time = tst.gen_time.time;

    // One signer, with signed attributes binding content type and digest.
    let [si_raw] = raw.signer_infos.as_slice() else {
        return Err(TimestampError::SignerCount(raw.signer_infos.len()));
    };
    let si = SignerInfo::from_der(si_raw).map_err(|e| malformed("SignerInfo", e))?;
    let attrs = si
        .signed_attrs
        .as_ref()
        .ok_or(TimestampError::NoSignedAttributes)?;
    let signed_bytes = asn1::signed_attrs_for_signature(si_raw)
        .map_err(|e| malformed("signed attributes", e))?
        .ok_or(TimestampError::NoSignedAttributes)?;
    check_content_type_attr(attrs)?;
    let digest_alg = HashAlg::for_signing(&si.digest_alg, "CMS digest")
        .map_err(|e| e.into_error("CMS digest"))?;
    check_message_digest_attr(attrs, digest_alg, tst_bytes)?;

    // The signer certificate: named by the sid, bound by ESS.
    if raw.certificates.len() > MAX_CERTS {
        return Err(TimestampError::Malformed(format!(
            "{} certificates in the token (at most {MAX_CERTS} accepted)",
            raw.certificates.len()
        )));
    }
    let mut certs = Vec::new();
    let mut unparsed = Vec::new();
    for der in &raw.certificates {
        match Cert::parse(der) {
            Ok(c) => certs.push(c),
            Err(e) => unparsed.push(e),
        }
    }
    let candidates: Vec<&Cert> = certs.iter().filter(|c| sid_matches(&si.sid, c)).collect();
    if candidates.is_empty() {
        let mut why = format!(
            "no certificate in the token matches the signer's {} ({} certificate(s) carried)",
            describe_sid(&si.sid),
            raw.certificates.len()
        );
        if !unparsed.is_empty() {
            why.push_str(&format!("; unreadable: {}", unparsed.join("; ")));
        }
        return Err(TimestampError::SignerNotFound(why));
    }
    let signer = ess_bound_signer(attrs, &candidates)?;

    // The signature over the signed attributes.
    let alg = SigAlg::from_cms(&si.signature_algorithm, digest_alg)
        .map_err(|e| e.into_error("TSA signature"))?;
    alg.verify(signer.spki(), &signed_bytes, si.signature.as_bytes())
        .map_err(|e| e.into_error("TSA signature"))?;

    // The certificate and its chain.
    chain::check_tsa_cert(signer, gen_time)?;
    let pinned = trust
        .roots
        .iter()
        .enumerate()
        .map(|(index, der)| {
            Cert::parse(der).map_err(|reason| TimestampError::BadTrustAnchor { index, reason })
        })
        .collect::<Result<Vec<_>, _>>()?;
    let anchor = chain::anchor(signer, &certs, &pinned, &trust.fingerprints, gen_time)?;

    // What the token says.
    check_expectation(&tst, expect)?;

    Ok(TokenInfo {
        gen_time,
        serial_hex: int_hex(tst.serial_number.as_bytes()),
        policy: tst.policy.to_string(),
        nonce_hex: tst.nonce.as_ref().map(|n| int_hex(n.as_bytes())),
        tsa_name: tst.tsa.as_ref().map(render_general_name),
        signer_subject: signer.subject(),
        signer_sha256: signer.sha256,
        anchor,
    })
}

fn bound(der: &[u8], what: &str) -> Result<(), TimestampError> {
    if der.is_empty() {
        return Err(TimestampError::Malformed(format!("empty {what}")));
    }
    if der.len() > MAX_DER_LEN {
        return Err(TimestampError::Malformed(format!(
            "{what} of {} bytes (at most {MAX_DER_LEN} accepted)",
            der.len()
        )));
    }
    Ok(())
}

/// The single value of the single attribute `id`, or `None` when the attribute is absent.
fn single_value(
    attrs: &SetOfVec<Attribute>,
    id: ObjectIdentifier,
) -> Result<Option<&der::Any>, String> {
    let Some(attr) = asn1::single_attribute(attrs, id)? else {
        return Ok(None);
    };
    let mut values = attr.values.iter();
    match (values.next(), values.next()) {
        (Some(v), None) => Ok(Some(v)),
        _ => Err(format!(
            "attribute {id} has {} values, exactly one is allowed",
            attr.values.len()
        )),
    }
}

/// RFC 5652 §11.1: the content-type attribute must name the signed content, id-ct-TSTInfo.
fn check_content_type_attr(attrs: &SetOfVec<Attribute>) -> Result<(), TimestampError> {
    let value = single_value(attrs, oid::CONTENT_TYPE)
        .map_err(TimestampError::ContentTypeAttribute)?
        .ok_or_else(|| TimestampError::ContentTypeAttribute("absent".into()))?;
    let ct: ObjectIdentifier = value
        .decode_as()
        .map_err(|e| TimestampError::ContentTypeAttribute(format!("not an OID: {e}")))?;
    if ct != oid::TST_INFO {
        return Err(TimestampError::ContentTypeAttribute(format!(
            "names {ct}, not id-ct-TSTInfo {}",
            oid::TST_INFO
        )));
    }
    Ok(())
}

/// RFC 5652 §11.2: the message-digest attribute must be the digest of the TSTInfo bytes; this is
/// what ties the signed TSTInfo to the signature.
fn check_message_digest_attr(
    attrs: &SetOfVec<Attribute>,
    alg: HashAlg,
    content: &[u8],
) -> Result<(), TimestampError> {
    let value = single_value(attrs, oid::MESSAGE_DIGEST)
        .map_err(TimestampError::MessageDigestAttribute)?
        .ok_or_else(|| TimestampError::MessageDigestAttribute("absent".into()))?;
    let claimed = value
        .decode_as::<OctetStringRef<'_>>()
        .map_err(|e| TimestampError::MessageDigestAttribute(format!("not an OCTET STRING: {e}")))?;
    let actual = alg.digest(content);
    if claimed.as_bytes() != actual.as_slice() {
        return Err(TimestampError::MessageDigestAttribute(format!(
            "the TSTInfo's {} is {}, the signed attribute says {}",
            alg.name(),
            hex::encode(&actual),
            hex::encode(claimed.as_bytes())
        )));
    }
    Ok(())
}

fn sid_matches(sid: &SignerIdentifier, cert: &Cert) -> bool {
    match sid {
        SignerIdentifier::IssuerAndSerialNumber(ias) => {
            ias.serial_number.as_bytes() == cert.serial()
                && ias.issuer.to_der().is_ok_and(|d| d == cert.issuer_der())
        }
        SignerIdentifier::SubjectKeyIdentifier(ski) => {
            cert.subject_key_id().as_deref() == Some(ski.0.as_bytes())
        }
    }
}

fn describe_sid(sid: &SignerIdentifier) -> String {
    match sid {
        SignerIdentifier::IssuerAndSerialNumber(ias) => format!(
            "issuer {} serial {}",
            ias.issuer,
            int_hex(ias.serial_number.as_bytes())
        ),
        SignerIdentifier::SubjectKeyIdentifier(ski) => {
            format!("subject key identifier {}", hex::encode(ski.0.as_bytes()))
        }
    }
}

/// The ESS cert IDs present, as (attribute name, hash algorithm, hash, issuerSerial).
type EssId<'a> = (
    &'static str,
    HashAlg,
    &'a [u8],
    Option<&'a asn1::IssuerSerial<'a>>,
);

/// RFC 3161 §2.4.1 / RFC 5816: the signer certificate must be named by an ESS
/// signing-certificate or signing-certificate-v2 attribute; its first cert ID is the signer's.
/// Without it the certificates in the (unsigned) certificate set could be swapped.
fn ess_bound_signer<'c>(
    attrs: &SetOfVec<Attribute>,
    candidates: &[&'c Cert],
) -> Result<&'c Cert, TimestampError> {
    let v1_value =
        single_value(attrs, oid::SIGNING_CERTIFICATE).map_err(TimestampError::EssMismatch)?;
    let v2_value =
        single_value(attrs, oid::SIGNING_CERTIFICATE_V2).map_err(TimestampError::EssMismatch)?;
    if v1_value.is_none() && v2_value.is_none() {
        return Err(TimestampError::EssMissing);
    }
    let bad = |what: &str, e: der::Error| TimestampError::EssMismatch(format!("{what}: {e}"));
    let v1: Option<SigningCertificate<'_>> = v1_value
        .map(|v| v.decode_as())
        .transpose()
        .map_err(|e| bad("signing-certificate is not a SigningCertificate", e))?;
    let v2: Option<SigningCertificateV2<'_>> = v2_value
        .map(|v| v.decode_as())
        .transpose()
        .map_err(|e| bad("signing-certificate-v2 is not a SigningCertificateV2", e))?;

    let mut ids: Vec<EssId<'_>> = Vec::new();
    if let Some(sc) = &v1 {
        let first: &EssCertId<'_> = sc.certs.first().ok_or_else(|| {
            TimestampError::EssMismatch("signing-certificate lists no certificate".into())
        })?;
        ids.push((
            "signing-certificate",
            HashAlg::Sha1,
            first.cert_hash.as_bytes(),
            first.issuer_serial.as_ref(),
        ));
    }
    if let Some(sc) = &v2 {
        let first: &EssCertIdV2<'_> = sc.certs.first().ok_or_else(|| {
            TimestampError::EssMismatch("signing-certificate-v2 lists no certificate".into())
        })?;
        let hash = match &first.hash_algorithm {
            None => HashAlg::Sha256,
            Some(a) => {
                HashAlg::from_oid(&a.oid).ok_or_else(|| TimestampError::UnsupportedAlgorithm {
                    what: "ESS certificate hash".into(),
                    oid: a.oid.to_string(),
                })?
            }
        };
        ids.push((
            "signing-certificate-v2",
            hash,
            first.cert_hash.as_bytes(),
            first.issuer_serial.as_ref(),
        ));
    }

    let signer = candidates
        .iter()
        .find(|c| ids.iter().all(|(_, h, want, _)| h.digest(&c.der) == *want))
        .ok_or_else(|| {
            let detail = match (ids.first(), candidates.first()) {
                (Some((name, h, want, _)), Some(c)) => format!(
                    "{name} names the certificate with {} {}; the signer's certificate {} has {}",
                    h.name(),
                    hex::encode(want),
                    c.subject(),
                    hex::encode(h.digest(&c.der))
                ),
                _ => "no certificate matches".into(),
            };
            TimestampError::EssMismatch(detail)
        })?;
    for (name, _, _, issuer_serial) in &ids {
        if let Some(is) = issuer_serial {
            let issuer_ok = is.issuer.iter().any(|g| match g {
                GeneralName::DirectoryName(n) => n.to_der().is_ok_and(|d| d == signer.issuer_der()),
                _ => false,
            });
            if !issuer_ok || is.serial_number.as_bytes() != signer.serial() {
                return Err(TimestampError::EssMismatch(format!(
                    "{name}: issuerSerial does not name {} serial {}",
                    signer.issuer(),
                    int_hex(signer.serial())
                )));
            }
        }
    }
    Ok(signer)
}

/// Imprint (algorithm and value), nonce and policy, against what was asked for.
fn check_expectation(tst: &TstInfo<'_>, expect: &Expectation<'_>) -> Result<(), TimestampError> {
    let mi = &tst.message_imprint;
    let found_oid = mi.hash_algorithm.oid.to_string();
    let found = ImprintAlgorithm::from_oid(&found_oid);
    let params_ok = mi
        .hash_algorithm
        .parameters
        .as_ref()
        .is_none_or(|p| p.tag() == der::Tag::Null && p.value().is_empty());
    if found != Some(expect.algorithm) || !params_ok {
        return Err(TimestampError::ImprintAlgorithm {
            expected: expect.algorithm.name().to_string(),
            found: match found {
                Some(a) if params_ok => a.name().to_string(),
                Some(a) => format!("{} with unexpected parameters", a.name()),
                None => found_oid,
            },
        });
    }
    if mi.hashed_message.as_bytes() != expect.imprint {
        return Err(TimestampError::ImprintMismatch {
            expected: hex::encode(expect.imprint),
            found: hex::encode(mi.hashed_message.as_bytes()),
        });
    }
    if let Some(want) = expect.nonce {
        let want = super::unsigned_trim(want);
        let got = tst.nonce.as_ref().map(|n| n.as_bytes());
        // A negative INTEGER (top bit set) can never equal an unsigned nonce.
        let equal = got.is_some_and(|g| {
            g.first().is_none_or(|b| b & 0x80 == 0) && super::unsigned_trim(g) == want
        });
        if !equal {
            return Err(TimestampError::NonceMismatch {
                expected: hex_or_zero(want),
                found: got.map(int_hex),
            });
        }
    }
    if let Some(want) = expect.policy {
        let got = tst.policy.to_string();
        if got != want {
            return Err(TimestampError::PolicyMismatch {
                expected: want.to_string(),
                found: got,
            });
        }
    }
    Ok(())
}

/// An INTEGER's content octets as lowercase hex of its value: sign octet dropped, `00` for zero.
fn int_hex(bytes: &[u8]) -> String {
    if bytes.first().is_some_and(|b| b & 0x80 != 0) {
        // Negative (not allowed for serials and nonces, shown as encoded so it can be found).
        return format!("(negative) {}", hex::encode(bytes));
    }
    hex_or_zero(super::unsigned_trim(bytes))
}

fn hex_or_zero(b: &[u8]) -> String {
    if b.is_empty() {
        "00".into()
    } else {
        hex::encode(b)
    }
}

/// The TSA name for people: a directory name as RFC 4514, other forms by their value.
fn render_general_name(g: &GeneralName) -> String {
    match g {
        GeneralName::DirectoryName(n) => n.to_string(),
        GeneralName::DnsName(s) => format!("DNS:{}", s.as_str()),
        GeneralName::Rfc822Name(s) => format!("email:{}", s.as_str()),
        GeneralName::UniformResourceIdentifier(s) => format!("URI:{}", s.as_str()),
        GeneralName::IpAddress(b) => format!("IP:{}", hex::encode(b.as_bytes())),
        GeneralName::RegisteredId(o) => format!("RID:{o}"),
        GeneralName::OtherName(o) => format!("otherName:{}", o.type_id),
        GeneralName::EdiPartyName(_) => "ediPartyName".into(),
    }
}
