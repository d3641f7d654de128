//! Building a `TimeStampReq` (RFC 3161 §2.4.1). Here, not in the client, so that tests and the
//! station encode requests the same way and the verifier knows exactly what was asked.

use super::{ImprintAlgorithm, TimestampError};
use der::Encode;
use der::asn1::{Any, Int, ObjectIdentifier, OctetString};
use spki::AlgorithmIdentifier;
use x509_tsp::{MessageImprint, TimeStampReq, TspVersion};

/// The DER of a `TimeStampReq` for `imprint` (a digest made with `algorithm`).
///
/// * `nonce`: big-endian unsigned bytes (at most 32, so 256 bits), sent as a positive INTEGER;
///   the TSA must echo it, which proves the reply is fresh.
/// * `cert_req`: ask the TSA to include its certificate, so the token verifies on its own.
/// * `policy`: a dotted OID, the TSA policy to issue under.
///
/// The hash AlgorithmIdentifier carries NULL parameters, as `openssl ts -query` sends them: the
/// encoding most TSAs have been tested with.
pub fn build_request(
    algorithm: ImprintAlgorithm,
    imprint: &[u8],
    nonce: Option<&[u8]>,
    cert_req: bool,
    policy: Option<&str>,
) -> Result<Vec<u8>, TimestampError> {
    let invalid = |why: String| TimestampError::InvalidRequest(why);
    if imprint.len() != algorithm.digest_len() {
        return Err(invalid(format!(
            "a {} imprint is {} bytes, got {}",
            algorithm.name(),
            algorithm.digest_len(),
            imprint.len()
        )));
    }
    let hash_oid = ObjectIdentifier::new(algorithm.oid()).map_err(|e| invalid(e.to_string()))?;
    let req_policy = policy
        .map(|p| {
            ObjectIdentifier::new(p)
                .map_err(|e| invalid(format!("policy {p:?} is not an OID: {e}")))
        })
        .transpose()?;
    let nonce = nonce
        .map(|n| {
            if n.len() > 32 {
                return Err(invalid(format!("nonce of {} bytes (at most 32)", n.len())));
            }
            Int::new(&positive_integer(n)).map_err(|e| invalid(format!("nonce: {e}")))
        })
        .transpose()?;
    let req = TimeStampReq {
        version: TspVersion::V1,
        message_imprint: MessageImprint {
            hash_algorithm: AlgorithmIdentifier {
                oid: hash_oid,
                parameters: Some(Any::null()),
            },
            hashed_message: OctetString::new(imprint).map_err(|e| invalid(e.to_string()))?,
        },
        req_policy,
        nonce,
        cert_req,
        extensions: None,
    };
    req.to_der().map_err(|e| invalid(e.to_string()))
}

/// The minimal two's-complement content octets of the unsigned value `b`: leading zeros
/// dropped, one `00` put back if the top bit is set (else it would read as negative).
fn positive_integer(b: &[u8]) -> Vec<u8> {
    let v = super::unsigned_trim(b);
    match v.first() {
        None => vec![0],
        Some(&first) if first & 0x80 != 0 => [&[0u8][..], v].concat(),
        Some(_) => v.to_vec(),
    }
}
