//! Signature algorithms for TSA tokens and their certificate chains.
//!
//! One enum, [`SigAlg`], names what an AlgorithmIdentifier asks for; [`SigAlg::verify`] checks a
//! signature with a certificate's public key. Adding an algorithm (SM2 with SM3, for Chinese
//! TSAs, is the expected next one) means: map its OID in [`SigAlg::from_x509`] /
//! [`SigAlg::from_cms`], and give its variant a verifier function below. Until then such tokens
//! fail with `timestamp.unsupported-algorithm` naming the OID, never as a bad signature.
//!
//! SHA-1 is refused for signatures and message digests: chosen-prefix collisions are practical.
//! It is accepted only where RFC 2634 fixes it as a certificate identifier (ESS v1).

use super::asn1::{Tlv, oid};
use der::Tag;
use der::asn1::ObjectIdentifier;
use spki::{AlgorithmIdentifierOwned, SubjectPublicKeyInfoOwned};

/// A digest algorithm.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum HashAlg {
    Sha1,
    Sha256,
    Sha384,
    Sha512,
    Sm3,
}

impl HashAlg {
    pub fn from_oid(id: &ObjectIdentifier) -> Option<Self> {
        Some(match *id {
            oid::SHA1 => HashAlg::Sha1,
            oid::SHA256 => HashAlg::Sha256,
            oid::SHA384 => HashAlg::Sha384,
            oid::SHA512 => HashAlg::Sha512,
            oid::SM3 => HashAlg::Sm3,
            _ => return None,
        })
    }

    pub fn name(self) -> &'static str {
        match self {
            HashAlg::Sha1 => "SHA-1",
            HashAlg::Sha256 => "SHA-256",
            HashAlg::Sha384 => "SHA-384",
            HashAlg::Sha512 => "SHA-512",
            HashAlg::Sm3 => "SM3",
        }
    }

    pub fn digest(self, data: &[u8]) -> Vec<u8> {
        use sha2_10::Digest as _;
        match self {
            HashAlg::Sha1 => <sha1_10::Sha1 as sha1_10::Digest>::digest(data).to_vec(),
            HashAlg::Sha256 => sha2_10::Sha256::digest(data).to_vec(),
            HashAlg::Sha384 => sha2_10::Sha384::digest(data).to_vec(),
            HashAlg::Sha512 => sha2_10::Sha512::digest(data).to_vec(),
            HashAlg::Sm3 => <sm3::Sm3 as sm3::Digest>::digest(data).to_vec(),
        }
    }

    /// A digest algorithm named by an AlgorithmIdentifier, refusing SHA-1 (see module docs).
    pub fn for_signing(alg: &AlgorithmIdentifierOwned, what: &str) -> Result<Self, SigError> {
        match HashAlg::from_oid(&alg.oid) {
            Some(HashAlg::Sha1) | None => Err(SigError::unsupported(what, &alg.oid)),
            Some(h) => Ok(h),
        }
    }
}

/// A signature algorithm with its parameters.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum SigAlg {
    /// RSASSA-PKCS1-v1_5.
    RsaPkcs1v15(HashAlg),
    /// RSASSA-PSS with MGF1 over the same hash.
    RsaPss { hash: HashAlg, salt_len: usize },
    /// ECDSA over P-256 or P-384 (the curve comes from the key).
    Ecdsa(HashAlg),
    /// SM2 with SM3 (GB/T 32918, GM/T 0010): recognised so the error names it; the verifier is
    /// not written yet (it needs the `sm2` crate and the default signer ID).
    Sm2Sm3,
}

/// Why a signature did not verify.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum SigError {
    /// We cannot check this algorithm (or key type, or curve).
    Unsupported { what: String, oid: String },
    /// The signature, or the key it is checked with, is wrong.
    Invalid(String),
}

impl SigError {
    fn unsupported(what: &str, id: &ObjectIdentifier) -> Self {
        SigError::Unsupported {
            what: what.to_string(),
            oid: id.to_string(),
        }
    }

    /// As a token failure; `context` says which signature (e.g. "TSA signature").
    pub fn into_error(self, context: &str) -> super::TimestampError {
        match self {
            SigError::Unsupported { what, oid } => {
                super::TimestampError::UnsupportedAlgorithm { what, oid }
            }
            SigError::Invalid(reason) => {
                super::TimestampError::BadSignature(format!("{context}: {reason}"))
            }
        }
    }
}

impl SigAlg {
    /// The algorithm of a certificate signature (`signatureAlgorithm` of a Certificate).
    pub fn from_x509(alg: &AlgorithmIdentifierOwned) -> Result<Self, SigError> {
        let what = "certificate signature";
        Ok(match alg.oid {
            oid::SHA256_WITH_RSA => SigAlg::RsaPkcs1v15(HashAlg::Sha256),
            oid::SHA384_WITH_RSA => SigAlg::RsaPkcs1v15(HashAlg::Sha384),
            oid::SHA512_WITH_RSA => SigAlg::RsaPkcs1v15(HashAlg::Sha512),
            oid::ECDSA_WITH_SHA256 => SigAlg::Ecdsa(HashAlg::Sha256),
            oid::ECDSA_WITH_SHA384 => SigAlg::Ecdsa(HashAlg::Sha384),
            oid::ECDSA_WITH_SHA512 => SigAlg::Ecdsa(HashAlg::Sha512),
            oid::RSASSA_PSS => pss_params(alg)?,
            oid::SM2_WITH_SM3 => SigAlg::Sm2Sm3,
            oid::SHA1_WITH_RSA => {
                return Err(SigError::unsupported("SHA-1 (refused) signature", &alg.oid));
            }
            _ => return Err(SigError::unsupported(what, &alg.oid)),
        })
    }

    /// The algorithm of a CMS signature: `signatureAlgorithm` may name only the key type
    /// (`rsaEncryption`, `id-ecPublicKey`, as OpenSSL writes it), then the SignerInfo's
    /// `digestAlgorithm` gives the hash.
    pub fn from_cms(alg: &AlgorithmIdentifierOwned, digest: HashAlg) -> Result<Self, SigError> {
        match alg.oid {
            oid::RSA_ENCRYPTION => Ok(SigAlg::RsaPkcs1v15(digest)),
            oid::EC_PUBLIC_KEY => Ok(SigAlg::Ecdsa(digest)),
            _ => Self::from_x509(alg).map_err(|e| match e {
                SigError::Unsupported { oid, .. } => SigError::Unsupported {
                    what: "CMS signature".into(),
                    oid,
                },
                other => other,
            }),
        }
    }

    fn hash(self) -> HashAlg {
        match self {
            SigAlg::RsaPkcs1v15(h) | SigAlg::Ecdsa(h) | SigAlg::RsaPss { hash: h, .. } => h,
            SigAlg::Sm2Sm3 => HashAlg::Sm3,
        }
    }

    /// Check `signature` over `message` with the key of `spki`.
    pub fn verify(
        self,
        spki: &SubjectPublicKeyInfoOwned,
        message: &[u8],
        signature: &[u8],
    ) -> Result<(), SigError> {
        let hash = self.hash();
        if hash == HashAlg::Sha1 {
            return Err(SigError::unsupported("SHA-1 signature", &oid::SHA1));
        }
        let hashed = hash.digest(message);
        match self {
            SigAlg::RsaPkcs1v15(h) => verify_rsa_pkcs1(spki, h, &hashed, signature),
            SigAlg::RsaPss { hash, salt_len } => {
                verify_rsa_pss(spki, hash, salt_len, &hashed, signature)
            }
            SigAlg::Ecdsa(_) => verify_ecdsa(spki, &hashed, signature),
            SigAlg::Sm2Sm3 => Err(SigError::unsupported(
                "SM2-with-SM3 signature",
                &oid::SM2_WITH_SM3,
            )),
        }
    }
}

/// RSASSA-PSS parameters: hash, MGF1 over the same hash, salt length, trailer 0xbc.
fn pss_params(alg: &AlgorithmIdentifierOwned) -> Result<SigAlg, SigError> {
    let bad = |why: &str| SigError::Invalid(format!("RSASSA-PSS parameters: {why}"));
    let params = alg
        .parameters
        .as_ref()
        .ok_or_else(|| bad("absent (SHA-1 defaults are not accepted)"))?;
    let p: rsa::pkcs1::RsaPssParams<'_> = params.decode_as().map_err(|e| bad(&e.to_string()))?;
    let hash = match HashAlg::from_oid(&p.hash.oid) {
        Some(HashAlg::Sha1) | Some(HashAlg::Sm3) | None => {
            return Err(SigError::unsupported("RSASSA-PSS hash", &p.hash.oid));
        }
        Some(h) => h,
    };
    if p.mask_gen.oid != oid::MGF1 {
        return Err(SigError::unsupported(
            "RSASSA-PSS mask generation",
            &p.mask_gen.oid,
        ));
    }
    if p.mask_gen.parameters.map(|a| a.oid) != Some(p.hash.oid) {
        return Err(bad("MGF1 hash differs from the message hash"));
    }
    if p.trailer_field != rsa::pkcs1::TrailerField::BC {
        return Err(bad("trailer field is not 0xbc"));
    }
    Ok(SigAlg::RsaPss {
        hash,
        salt_len: usize::from(p.salt_len),
    })
}

fn rsa_key(spki: &SubjectPublicKeyInfoOwned) -> Result<rsa::RsaPublicKey, SigError> {
    use rsa::pkcs1::DecodeRsaPublicKey as _;
    if spki.algorithm.oid != oid::RSA_ENCRYPTION && spki.algorithm.oid != oid::RSASSA_PSS {
        return Err(SigError::Invalid(format!(
            "an RSA signature but a key of type {}",
            spki.algorithm.oid
        )));
    }
    let bits = spki
        .subject_public_key
        .as_bytes()
        .ok_or_else(|| SigError::Invalid("RSA key bit string is not whole bytes".into()))?;
    rsa::RsaPublicKey::from_pkcs1_der(bits)
        .map_err(|e| SigError::Invalid(format!("RSA public key: {e}")))
}

fn verify_rsa_pkcs1(
    spki: &SubjectPublicKeyInfoOwned,
    hash: HashAlg,
    hashed: &[u8],
    signature: &[u8],
) -> Result<(), SigError> {
    use rsa::Pkcs1v15Sign;
    let key = rsa_key(spki)?;
    let scheme = match hash {
        HashAlg::Sha256 => Pkcs1v15Sign::new::<sha2_10::Sha256>(),
        HashAlg::Sha384 => Pkcs1v15Sign::new::<sha2_10::Sha384>(),
        HashAlg::Sha512 => Pkcs1v15Sign::new::<sha2_10::Sha512>(),
        HashAlg::Sha1 | HashAlg::Sm3 => {
            return Err(SigError::unsupported(
                "RSA PKCS#1 v1.5 hash",
                &hash_oid(hash),
            ));
        }
    };
    key.verify(scheme, hashed, signature)
        .map_err(|e| SigError::Invalid(format!("RSA PKCS#1 v1.5 with {}: {e}", hash.name())))
}

fn verify_rsa_pss(
    spki: &SubjectPublicKeyInfoOwned,
    hash: HashAlg,
    salt_len: usize,
    hashed: &[u8],
    signature: &[u8],
) -> Result<(), SigError> {
    use rsa::Pss;
    let key = rsa_key(spki)?;
    let scheme = match hash {
        HashAlg::Sha256 => Pss::new_with_salt::<sha2_10::Sha256>(salt_len),
        HashAlg::Sha384 => Pss::new_with_salt::<sha2_10::Sha384>(salt_len),
        HashAlg::Sha512 => Pss::new_with_salt::<sha2_10::Sha512>(salt_len),
        HashAlg::Sha1 | HashAlg::Sm3 => {
            return Err(SigError::unsupported("RSASSA-PSS hash", &hash_oid(hash)));
        }
    };
    key.verify(scheme, hashed, signature)
        .map_err(|e| SigError::Invalid(format!("RSASSA-PSS with {}: {e}", hash.name())))
}

fn hash_oid(hash: HashAlg) -> ObjectIdentifier {
    match hash {
        HashAlg::Sha1 => oid::SHA1,
        HashAlg::Sha256 => oid::SHA256,
        HashAlg::Sha384 => oid::SHA384,
        HashAlg::Sha512 => oid::SHA512,
        HashAlg::Sm3 => oid::SM3,
    }
}

/// ECDSA over the curve named in the key, with the digest already computed (the curve and the
/// hash need not match in size: the digest is truncated or padded as FIPS 186 says).
fn verify_ecdsa(
    spki: &SubjectPublicKeyInfoOwned,
    hashed: &[u8],
    signature: &[u8],
) -> Result<(), SigError> {
    use p256::ecdsa::signature::hazmat::PrehashVerifier as _;
    if spki.algorithm.oid != oid::EC_PUBLIC_KEY {
        return Err(SigError::Invalid(format!(
            "an ECDSA signature but a key of type {}",
            spki.algorithm.oid
        )));
    }
    let curve: ObjectIdentifier = spki
        .algorithm
        .parameters
        .as_ref()
        .ok_or_else(|| SigError::Invalid("EC key without a named curve".into()))?
        .decode_as()
        .map_err(|e| SigError::Invalid(format!("EC key curve: {e}")))?;
    let point = spki
        .subject_public_key
        .as_bytes()
        .ok_or_else(|| SigError::Invalid("EC key bit string is not whole bytes".into()))?;
    let bad_key = |e: p256::ecdsa::Error| SigError::Invalid(format!("EC public key: {e}"));
    let bad_sig = |e: p256::ecdsa::Error| SigError::Invalid(format!("ECDSA: {e}"));
    match curve {
        oid::SECP256R1 => {
            let key = p256::ecdsa::VerifyingKey::from_sec1_bytes(point).map_err(bad_key)?;
            let sig = p256::ecdsa::Signature::from_slice(&ecdsa_fixed(signature, 32)?)
                .map_err(bad_sig)?;
            key.verify_prehash(hashed, &sig).map_err(bad_sig)
        }
        oid::SECP384R1 => {
            let key = p384::ecdsa::VerifyingKey::from_sec1_bytes(point).map_err(bad_key)?;
            let sig = p384::ecdsa::Signature::from_slice(&ecdsa_fixed(signature, 48)?)
                .map_err(bad_sig)?;
            key.verify_prehash(hashed, &sig).map_err(bad_sig)
        }
        other => Err(SigError::unsupported("elliptic curve", &other)),
    }
}

/// `ECDSA-Sig-Value ::= SEQUENCE { r INTEGER, s INTEGER }` to the fixed `r ‖ s` form.
fn ecdsa_fixed(der_sig: &[u8], field_len: usize) -> Result<Vec<u8>, SigError> {
    let bad = || SigError::Invalid("ECDSA signature is not a DER ECDSA-Sig-Value".into());
    let parts = Tlv::parse(der_sig)
        .and_then(|t| t.children(Tag::Sequence))
        .map_err(|_| bad())?;
    let [r, s] = parts.as_slice() else {
        return Err(bad());
    };
    let mut out = vec![0u8; 2 * field_len];
    for (i, n) in [r, s].into_iter().enumerate() {
        if n.tag != Tag::Integer || n.value.first().is_none_or(|b| b & 0x80 != 0) {
            return Err(bad());
        }
        let v = super::unsigned_trim(n.value);
        if v.len() > field_len {
            return Err(bad());
        }
        let end = (i + 1) * field_len;
        out[end - v.len()..end].copy_from_slice(v);
    }
    Ok(out)
}
