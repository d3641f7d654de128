//! The DER pieces of RFC 3161 / RFC 5652 / RFC 5035 that `x509-tsp` and `cms` do not give us in
//! the form verification needs.
//!
//! * Raw byte ranges ([`Tlv`], [`SignedDataRaw`]): a signature covers bytes, not values. `der`
//!   re-sorts a SET OF while decoding, so re-encoding a parsed structure may not reproduce what
//!   was signed; the signed attributes, the TSTInfo and each certificate are therefore taken from
//!   the token exactly as they are.
//! * [`TstInfo`] with [`GenTime`]: `der`'s `GeneralizedTime` refuses fractional seconds, which
//!   many production TSAs emit (`20240102030405.123Z`).
//! * [`StatusInfo`] read leniently, so a refusal with an odd statusString is still reported as a
//!   refusal and not as garbage.
//! * The ESS signing-certificate attributes, which no crate of this generation defines.

use chrono::{DateTime, NaiveDate, Utc};
use der::asn1::{AnyRef, BitStringRef, IntRef, ObjectIdentifier, OctetStringRef};
use der::{
    Decode, DecodeValue, EncodeValue, FixedTag, Header, Length, Reader, Sequence, Tag, Writer,
    asn1::SetOfVec,
};
use spki::AlgorithmIdentifierOwned;
use x509_cert::ext::Extensions;
use x509_cert::ext::pkix::name::GeneralName;
use x509_tsp::{Accuracy, MessageImprint};

/// OIDs this module needs (const-oid 0.9 lacks the TSP and some ESS ones).
pub(crate) mod oid {
    use der::asn1::ObjectIdentifier as Oid;

    /// id-ct-TSTInfo, RFC 3161.
    pub const TST_INFO: Oid = Oid::new_unwrap("1.2.840.113549.1.9.16.1.4");
    pub const SIGNED_DATA: Oid = Oid::new_unwrap("1.2.840.113549.1.7.2");
    pub const CONTENT_TYPE: Oid = Oid::new_unwrap("1.2.840.113549.1.9.3");
    pub const MESSAGE_DIGEST: Oid = Oid::new_unwrap("1.2.840.113549.1.9.4");
    /// ESS signing-certificate (RFC 2634): SHA-1 certificate hash.
    pub const SIGNING_CERTIFICATE: Oid = Oid::new_unwrap("1.2.840.113549.1.9.16.2.12");
    /// ESS signing-certificate-v2 (RFC 5035): any hash, SHA-256 by default.
    pub const SIGNING_CERTIFICATE_V2: Oid = Oid::new_unwrap("1.2.840.113549.1.9.16.2.47");
    pub const KP_TIME_STAMPING: Oid = Oid::new_unwrap("1.3.6.1.5.5.7.3.8");

    pub const SHA1: Oid = Oid::new_unwrap("1.3.14.3.2.26");
    pub const SHA256: Oid = Oid::new_unwrap("2.16.840.1.101.3.4.2.1");
    pub const SHA384: Oid = Oid::new_unwrap("2.16.840.1.101.3.4.2.2");
    pub const SHA512: Oid = Oid::new_unwrap("2.16.840.1.101.3.4.2.3");
    pub const SM3: Oid = Oid::new_unwrap("1.2.156.10197.1.401");

    pub const RSA_ENCRYPTION: Oid = Oid::new_unwrap("1.2.840.113549.1.1.1");
    pub const SHA1_WITH_RSA: Oid = Oid::new_unwrap("1.2.840.113549.1.1.5");
    pub const SHA256_WITH_RSA: Oid = Oid::new_unwrap("1.2.840.113549.1.1.11");
    pub const SHA384_WITH_RSA: Oid = Oid::new_unwrap("1.2.840.113549.1.1.12");
    pub const SHA512_WITH_RSA: Oid = Oid::new_unwrap("1.2.840.113549.1.1.13");
    pub const RSASSA_PSS: Oid = Oid::new_unwrap("1.2.840.113549.1.1.10");
    pub const MGF1: Oid = Oid::new_unwrap("1.2.840.113549.1.1.8");
    pub const EC_PUBLIC_KEY: Oid = Oid::new_unwrap("1.2.840.10045.2.1");
    pub const ECDSA_WITH_SHA256: Oid = Oid::new_unwrap("1.2.840.10045.4.3.2");
    pub const ECDSA_WITH_SHA384: Oid = Oid::new_unwrap("1.2.840.10045.4.3.3");
    pub const ECDSA_WITH_SHA512: Oid = Oid::new_unwrap("1.2.840.10045.4.3.4");
    pub const SECP256R1: Oid = Oid::new_unwrap("1.2.840.10045.3.1.7");
    pub const SECP384R1: Oid = Oid::new_unwrap("1.3.132.0.34");
    /// SM2 signature with SM3 (GB/T 35276), used by Chinese TSAs; recognised, not yet verified.
    pub const SM2_WITH_SM3: Oid = Oid::new_unwrap("1.2.156.10197.1.501");

    pub const EXT_SUBJECT_KEY_ID: Oid = Oid::new_unwrap("2.5.29.14");
    pub const EXT_KEY_USAGE: Oid = Oid::new_unwrap("2.5.29.15");
    pub const EXT_SUBJECT_ALT_NAME: Oid = Oid::new_unwrap("2.5.29.17");
    pub const EXT_BASIC_CONSTRAINTS: Oid = Oid::new_unwrap("2.5.29.19");
    pub const EXT_CERTIFICATE_POLICIES: Oid = Oid::new_unwrap("2.5.29.32");
    pub const EXT_AUTHORITY_KEY_ID: Oid = Oid::new_unwrap("2.5.29.35");
    pub const EXT_EXTENDED_KEY_USAGE: Oid = Oid::new_unwrap("2.5.29.37");
}

/// One DER element as it appears in the input: its tag, its content octets and its whole
/// encoding (tag, length and content).
#[derive(Debug, Clone, Copy)]
pub(crate) struct Tlv<'a> {
    pub tag: Tag,
    pub value: &'a [u8],
    pub raw: &'a [u8],
}

impl<'a> Tlv<'a> {
    /// Exactly one element filling `input`.
    pub fn parse(input: &'a [u8]) -> der::Result<Self> {
        let all = Self::parse_all(input)?;
        match all.as_slice() {
            [one] => Ok(*one),
            [] => Err(der::ErrorKind::Incomplete {
                expected_len: Length::ONE,
                actual_len: Length::ZERO,
            }
            .into()),
            [first, ..] => Err(der::ErrorKind::TrailingData {
                decoded: Length::try_from(first.raw.len())?,
                remaining: Length::try_from(input.len().saturating_sub(first.raw.len()))?,
            }
            .into()),
        }
    }

    /// The consecutive elements filling `input` (the content of a SEQUENCE or SET).
    pub fn parse_all(input: &'a [u8]) -> der::Result<Vec<Self>> {
        let mut reader = der::SliceReader::new(input)?;
        let mut out = Vec::new();
        while !reader.is_finished() {
            let start = usize::try_from(reader.position())?;
            let header = Header::decode(&mut reader)?;
            let value = reader.read_slice(header.length)?;
            let end = usize::try_from(reader.position())?;
            out.push(Tlv {
                tag: header.tag,
                value,
                raw: input.get(start..end).ok_or(der::ErrorKind::Incomplete {
                    expected_len: Length::try_from(end)?,
                    actual_len: Length::try_from(input.len())?,
                })?,
            });
        }
        Ok(out)
    }

    /// This element's content as elements, after checking its tag.
    pub fn children(&self, expected: Tag) -> der::Result<Vec<Tlv<'a>>> {
        self.tag.assert_eq(expected)?;
        Self::parse_all(self.value)
    }

    pub fn is_context(&self, number: u8, constructed: bool) -> bool {
        matches!(self.tag, Tag::ContextSpecific { constructed: c, number: n }
            if c == constructed && n.value() == number)
    }
}

/// The parts of a `ContentInfo { signedData }` that are signed or hashed, as raw bytes.
#[derive(Debug)]
pub(crate) struct SignedDataRaw<'a> {
    /// The ContentInfo's contentType.
    pub content_type: ObjectIdentifier,
    /// `EncapsulatedContentInfo`, whole.
    pub encap: &'a [u8],
    /// Every `Certificate` (SEQUENCE) in the `certificates` set, whole; other choices skipped.
    pub certificates: Vec<&'a [u8]>,
    /// Every `SignerInfo`, whole.
    pub signer_infos: Vec<&'a [u8]>,
}

impl<'a> SignedDataRaw<'a> {
    /// Walk a `ContentInfo`. If its content type is not signedData, only `content_type` is set.
    pub fn parse(content_info: &'a [u8]) -> der::Result<Self> {
        let ci = Tlv::parse(content_info)?.children(Tag::Sequence)?;
        let [ct, content] = ci.as_slice() else {
            return Err(Tag::Sequence.length_error());
        };
        ct.tag.assert_eq(Tag::ObjectIdentifier)?;
        let content_type = ObjectIdentifier::from_bytes(ct.value)?;
        let mut out = SignedDataRaw {
            content_type,
            encap: &[],
            certificates: Vec::new(),
            signer_infos: Vec::new(),
        };
        if content_type != oid::SIGNED_DATA {
            return Ok(out);
        }
        if !content.is_context(0, true) {
            return Err(content.tag.unexpected_error(None));
        }
        let sd = Tlv::parse(content.value)?.children(Tag::Sequence)?;
        // version, digestAlgorithms, encapContentInfo, [0] certificates?, [1] crls?, signerInfos
        let mut it = sd.iter();
        let (Some(version), Some(digest_algs), Some(encap)) = (it.next(), it.next(), it.next())
        else {
            return Err(Tag::Sequence.length_error());
        };
        version.tag.assert_eq(Tag::Integer)?;
        digest_algs.tag.assert_eq(Tag::Set)?;
        encap.tag.assert_eq(Tag::Sequence)?;
        out.encap = encap.raw;
        let mut next = it.next();
        if let Some(certs) = next.filter(|t| t.is_context(0, true)) {
            out.certificates = Tlv::parse_all(certs.value)?
                .into_iter()
                .filter(|c| c.tag == Tag::Sequence)
                .map(|c| c.raw)
                .collect();
            next = it.next();
        }
        if next.is_some_and(|t| t.is_context(1, true)) {
            next = it.next();
        }
        let Some(signers) = next else {
            return Err(Tag::Sequence.length_error());
        };
        out.signer_infos = signers
            .children(Tag::Set)?
            .into_iter()
            .map(|s| s.raw)
            .collect();
        if it.next().is_some() {
            return Err(Tag::Sequence.length_error());
        }
        Ok(out)
    }
}

/// The signed attributes of a `SignerInfo` exactly as encoded, re-tagged from `[0] IMPLICIT` to
/// `SET OF` (0x31): RFC 5652 §5.4 signs that encoding.
pub(crate) fn signed_attrs_for_signature(signer_info: &[u8]) -> der::Result<Option<Vec<u8>>> {
    let fields = Tlv::parse(signer_info)?.children(Tag::Sequence)?;
    // version, sid, digestAlgorithm, [0] signedAttrs?, ...
    let Some(attrs) = fields.get(3).filter(|t| t.is_context(0, true)) else {
        return Ok(None);
    };
    let mut bytes = attrs.raw.to_vec();
    if let Some(first) = bytes.first_mut() {
        *first = 0x31;
    }
    Ok(Some(bytes))
}

/// The `tbsCertificate` of a certificate exactly as encoded: what its issuer signed.
pub(crate) fn tbs_of(cert_der: &[u8]) -> der::Result<&[u8]> {
    let fields = Tlv::parse(cert_der)?.children(Tag::Sequence)?;
    let tbs = fields.first().ok_or(Tag::Sequence.length_error())?;
    tbs.tag.assert_eq(Tag::Sequence)?;
    Ok(tbs.raw)
}

/// `PKIStatusInfo` (RFC 4210), read leniently: statusString elements of any string type.
#[derive(Debug, Clone, Sequence)]
pub(crate) struct StatusInfo<'a> {
    pub status: IntRef<'a>,
    #[asn1(optional = "true")]
    pub status_string: Option<Vec<AnyRef<'a>>>,
    #[asn1(optional = "true")]
    pub fail_info: Option<BitStringRef<'a>>,
}

impl StatusInfo<'_> {
    /// The status as a number; `None` if negative or absurdly large.
    pub fn status_value(&self) -> Option<u32> {
        let b = self.status.as_bytes();
        if b.first().is_some_and(|x| x & 0x80 != 0) {
            return None;
        }
        let b = super::unsigned_trim(b);
        if b.len() > 4 {
            return None;
        }
        Some(b.iter().fold(0u32, |acc, &x| (acc << 8) | u32::from(x)))
    }

    pub fn status_name(status: u32) -> &'static str {
        match status {
            0 => "granted",
            1 => "grantedWithMods",
            2 => "rejection",
            3 => "waiting",
            4 => "revocationWarning",
            5 => "revocationNotification",
            _ => "unknown",
        }
    }

    /// The PKIFailureInfo bits set, by their RFC 3161 / RFC 4210 names.
    pub fn fail_info_names(&self) -> Vec<String> {
        const NAMES: &[(usize, &str)] = &[
            (0, "badAlg"),
            (1, "badMessageCheck"),
            (2, "badRequest"),
            (3, "badTime"),
            (4, "badCertId"),
            (5, "badDataFormat"),
            (14, "timeNotAvailable"),
            (15, "unacceptedPolicy"),
            (16, "unacceptedExtension"),
            (17, "addInfoNotAvailable"),
            (25, "systemFailure"),
        ];
        let Some(bits) = &self.fail_info else {
            return Vec::new();
        };
        let bytes = bits.raw_bytes();
        let set = |i: usize| bytes.get(i / 8).is_some_and(|b| b & (0x80 >> (i % 8)) != 0);
        (0..bytes.len() * 8)
            .filter(|&i| set(i))
            .map(|i| {
                NAMES
                    .iter()
                    .find(|(n, _)| *n == i)
                    .map(|(_, name)| (*name).to_string())
                    .unwrap_or_else(|| format!("bit{i}"))
            })
            .collect()
    }

    /// The statusString texts joined, control characters removed (they end up in reports).
    pub fn text(&self) -> String {
        self.status_string
            .iter()
            .flatten()
            .map(|s| {
                String::from_utf8_lossy(s.value())
                    .chars()
                    .filter(|c| !c.is_control())
                    .collect::<String>()
            })
            .collect::<Vec<_>>()
            .join("; ")
    }
}

/// `TimeStampResp`, with the token left raw (it is walked and hashed as bytes).
#[derive(Debug, Clone, Sequence)]
pub(crate) struct TimeStampResp<'a> {
    pub status: StatusInfo<'a>,
    #[asn1(optional = "true")]
    pub token: Option<AnyRef<'a>>,
}

/// `TSTInfo` (RFC 3161 §2.4.2), with a `genTime` that accepts fractional seconds.
#[derive(Debug, Clone, Sequence)]
pub(crate) struct TstInfo<'a> {
    pub version: u8,
    pub policy: ObjectIdentifier,
    pub message_imprint: MessageImprint,
    pub serial_number: IntRef<'a>,
    pub gen_time: GenTime,
    #[asn1(optional = "true")]
    pub accuracy: Option<Accuracy>,
    #[asn1(default = "Default::default")]
    pub ordering: bool,
    #[asn1(optional = "true")]
    pub nonce: Option<IntRef<'a>>,
    #[asn1(context_specific = "0", tag_mode = "EXPLICIT", optional = "true")]
    pub tsa: Option<GeneralName>,
    #[asn1(context_specific = "1", tag_mode = "IMPLICIT", optional = "true")]
    pub extensions: Option<Extensions>,
}

/// A `GeneralizedTime` of the form `YYYYMMDDHHMMSS[.f+]Z` (RFC 3161 §2.4.2 allows the fraction).
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct GenTime {
    pub time: DateTime<Utc>,
    raw: Vec<u8>,
}

impl GenTime {
    pub fn parse(raw: &[u8]) -> Option<DateTime<Utc>> {
        let s = std::str::from_utf8(raw).ok()?;
        let body = s.strip_suffix('Z')?;
        let (whole, frac) = match body.split_once('.') {
            Some((w, f)) => (w, Some(f)),
            None => (body, None),
        };
        if whole.len() != 14 || !whole.bytes().all(|b| b.is_ascii_digit()) {
            return None;
        }
        let num = |r: std::ops::Range<usize>| whole.get(r)?.parse::<u32>().ok();
        let nanos = match frac {
            None => 0,
            // DER: at least one digit and no trailing zero.
            Some(f)
                if f.is_empty() || f.ends_with('0') || !f.bytes().all(|b| b.is_ascii_digit()) =>
            {
                return None;
            }
            Some(f) => {
                let digits: String = f.chars().chain(std::iter::repeat('0')).take(9).collect();
                digits.parse::<u32>().ok()?
            }
        };
        let date =
            NaiveDate::from_ymd_opt(i32::try_from(num(0..4)?).ok()?, num(4..6)?, num(6..8)?)?;
        let (h, m, sec) = (num(8..10)?, num(10..12)?, num(12..14)?);
        if sec > 59 {
            return None;
        }
        Some(date.and_hms_nano_opt(h, m, sec, nanos)?.and_utc())
    }

    /// A whole-second `genTime` (for building test tokens).
    #[cfg(test)]
    pub fn from_datetime(t: DateTime<Utc>) -> Self {
        GenTime {
            time: t,
            raw: t.format("%Y%m%d%H%M%SZ").to_string().into_bytes(),
        }
    }
}

impl FixedTag for GenTime {
    const TAG: Tag = Tag::GeneralizedTime;
}

impl<'a> DecodeValue<'a> for GenTime {
    fn decode_value<R: Reader<'a>>(reader: &mut R, header: Header) -> der::Result<Self> {
        let raw = reader.read_vec(header.length)?;
        let time = GenTime::parse(&raw).ok_or(Tag::GeneralizedTime.value_error())?;
        Ok(GenTime { time, raw })
    }
}

impl EncodeValue for GenTime {
    fn value_len(&self) -> der::Result<Length> {
        Length::try_from(self.raw.len())
    }
    fn encode_value(&self, writer: &mut impl Writer) -> der::Result<()> {
        writer.write(&self.raw)
    }
}

/// `IssuerSerial` (RFC 5035): which certificate an ESS cert ID means, besides its hash.
#[derive(Debug, Clone, Sequence)]
pub(crate) struct IssuerSerial<'a> {
    pub issuer: Vec<GeneralName>,
    pub serial_number: IntRef<'a>,
}

/// `ESSCertID` (RFC 2634): SHA-1 of the signer certificate.
#[derive(Debug, Clone, Sequence)]
pub(crate) struct EssCertId<'a> {
    pub cert_hash: OctetStringRef<'a>,
    #[asn1(optional = "true")]
    pub issuer_serial: Option<IssuerSerial<'a>>,
}

/// `SigningCertificate` (RFC 2634); the first cert ID is the signer's.
#[derive(Debug, Clone, Sequence)]
pub(crate) struct SigningCertificate<'a> {
    pub certs: Vec<EssCertId<'a>>,
    #[asn1(optional = "true")]
    pub policies: Option<Vec<AnyRef<'a>>>,
}

/// `ESSCertIDv2` (RFC 5035): the hash algorithm defaults to SHA-256.
#[derive(Debug, Clone, Sequence)]
pub(crate) struct EssCertIdV2<'a> {
    #[asn1(optional = "true")]
    pub hash_algorithm: Option<AlgorithmIdentifierOwned>,
    pub cert_hash: OctetStringRef<'a>,
    #[asn1(optional = "true")]
    pub issuer_serial: Option<IssuerSerial<'a>>,
}

/// `SigningCertificateV2` (RFC 5035); the first cert ID is the signer's.
#[derive(Debug, Clone, Sequence)]
pub(crate) struct SigningCertificateV2<'a> {
    pub certs: Vec<EssCertIdV2<'a>>,
    #[asn1(optional = "true")]
    pub policies: Option<Vec<AnyRef<'a>>>,
}

/// The values of the one attribute with this OID; an error text if it occurs more than once.
pub(crate) fn single_attribute(
    attrs: &SetOfVec<x509_cert::attr::Attribute>,
    id: ObjectIdentifier,
) -> Result<Option<&x509_cert::attr::Attribute>, String> {
    let mut found = attrs.iter().filter(|a| a.oid == id);
    let first = found.next();
    if found.next().is_some() {
        return Err(format!("attribute {id} occurs more than once"));
    }
    Ok(first)
}
