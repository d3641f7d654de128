//! What needs no TSA reply: the request this code builds (and openssl reads), refused request
//! inputs, the genTime forms accepted, and the error codes' stability. Apart as the small, fast
//! tests beside the token tests.

use super::*;

#[test]
fn build_request_is_what_openssl_reads() {
    let Some(pki) = Pki::new() else { return };
    let d = imprint("checkpoint 16");
    let q = build_request(
        ImprintAlgorithm::Sha256,
        &d,
        Some(&[0x01, 0x02, 0x03]),
        true,
        Some(OTHER_POLICY),
    )
    .unwrap();
    pki.write("mine.tsq", &q);
    let text = pki.openssl(&["ts", "-query", "-in", "mine.tsq", "-text"]);
    assert!(text.contains("sha256"), "{text}");
    assert!(text.contains("Nonce: 0x010203"), "{text}");
    assert!(text.contains(OTHER_POLICY), "{text}");
    assert!(text.contains("Certificate required: yes"), "{text}");
    // The imprint's hex dump, with offsets, spaces and dashes removed.
    assert!(
        text.replace(['-', ' ', '\n'], "")
            .contains(&hex::encode(&d[..8])),
        "{text}"
    );
}

#[test]
fn build_request_refuses_bad_input() {
    let d = imprint("x");
    for r in [
        build_request(ImprintAlgorithm::Sha384, &d, None, true, None),
        build_request(ImprintAlgorithm::Sha256, &d[..31], None, true, None),
        build_request(ImprintAlgorithm::Sha256, &d, None, true, Some("not an oid")),
        build_request(ImprintAlgorithm::Sha256, &d, Some(&[1u8; 33]), true, None),
    ] {
        assert_eq!(r.unwrap_err().code(), "timestamp.invalid-request");
    }
    let q = build_request(
        ImprintAlgorithm::Sha512,
        &[9u8; 64],
        Some(&[0, 0]),
        false,
        None,
    )
    .unwrap();
    let req = x509_tsp::TimeStampReq::from_der(&q).unwrap();
    assert_eq!(req.nonce.unwrap().as_bytes(), &[0]);
    assert!(!req.cert_req);
    assert_eq!(
        req.message_imprint.hash_algorithm.oid.to_string(),
        ImprintAlgorithm::Sha512.oid()
    );
}

#[test]
fn gen_time_forms() {
    let t = |s: &str| GenTime::parse(s.as_bytes()).map(|t| t.to_rfc3339());
    assert_eq!(
        t("20240102030405Z").as_deref(),
        Some("2024-01-02T03:04:05+00:00")
    );
    assert_eq!(
        t("20240102030405.5Z").as_deref(),
        Some("2024-01-02T03:04:05.500+00:00")
    );
    assert_eq!(
        t("20240102030405.123Z").as_deref(),
        Some("2024-01-02T03:04:05.123+00:00")
    );
    for bad in [
        "20240102030405",
        "20240102030405.Z",
        "20240102030405.10Z",
        "202401020304Z",
        "20241302030405Z",
        "20240102030460Z",
        "2024010203040+Z",
        "20240102030405+0100",
    ] {
        assert_eq!(t(bad), None, "{bad}");
    }
}

#[test]
fn codes_are_stable_and_distinct() {
    let sha = Sha256::digest(b"x");
    let all = vec![
        TimestampError::Malformed(String::new()),
        TimestampError::Rejected {
            status: 2,
            status_name: String::new(),
            fail_info: vec![],
            text: String::new(),
        },
        TimestampError::NoToken,
        TimestampError::NotSignedData(String::new()),
        TimestampError::NotTstInfo(String::new()),
        TimestampError::SignerCount(2),
        TimestampError::NoSignedAttributes,
        TimestampError::ContentTypeAttribute(String::new()),
        TimestampError::MessageDigestAttribute(String::new()),
        TimestampError::SignerNotFound(String::new()),
        TimestampError::EssMissing,
        TimestampError::EssMismatch(String::new()),
        TimestampError::BadSignature(String::new()),
        TimestampError::UnsupportedAlgorithm {
            what: String::new(),
            oid: String::new(),
        },
        TimestampError::Eku(String::new()),
        TimestampError::KeyUsage(String::new()),
        TimestampError::CriticalExtension {
            subject: String::new(),
            oid: String::new(),
        },
        TimestampError::CertNotValidAtGenTime {
            subject: String::new(),
            gen_time: String::new(),
            not_before: String::new(),
            not_after: String::new(),
        },
        TimestampError::ChainBroken(String::new()),
        TimestampError::UntrustedRoot {
            root_sha256: sha,
            subject: String::new(),
        },
        TimestampError::BadTrustAnchor {
            index: 0,
            reason: String::new(),
        },
        TimestampError::ImprintAlgorithm {
            expected: String::new(),
            found: String::new(),
        },
        TimestampError::ImprintMismatch {
            expected: String::new(),
            found: String::new(),
        },
        TimestampError::NonceMismatch {
            expected: String::new(),
            found: None,
        },
        TimestampError::PolicyMismatch {
            expected: String::new(),
            found: String::new(),
        },
        TimestampError::InvalidRequest(String::new()),
    ];
    let codes: Vec<&str> = all.iter().map(|e| e.code()).collect();
    assert_eq!(codes, TimestampError::CODES);
    let mut dedup = codes.clone();
    dedup.sort();
    dedup.dedup();
    assert_eq!(dedup.len(), codes.len());
    assert!(codes.iter().all(|c| c.starts_with("timestamp.")));
}
