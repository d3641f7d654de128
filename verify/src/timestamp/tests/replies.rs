//! Tokens from a real TSA (`openssl ts -reply`): checked against the imprint, nonce, policy and
//! pinned roots, tampered with, replaced by garbage or a rejection. Apart from the chain tests
//! because each of these changes one thing about a well-made reply.

use super::*;

#[test]
fn verifies_a_real_reply_pinned_unpinned_and_by_fingerprint() {
    let Some(pki) = Pki::standard() else { return };
    let d = imprint("checkpoint 1");
    let resp = pki.reply(&d);
    let before = Utc::now();

    let info = check_response(&resp, &expect(&d), &pinned(&pki, "ca")).unwrap();
    assert_eq!(
        info.anchor,
        Anchor::Pinned {
            root_sha256: pki.sha("ca")
        }
    );
    assert_eq!(info.policy, POLICY);
    assert!(
        (before - info.gen_time).num_seconds().abs() < 300,
        "{}",
        info.gen_time
    );
    assert_eq!(info.signer_sha256, pki.sha("tsa"));
    assert_eq!(info.signer_subject, "CN=Evidence Test TSA");
    assert_eq!(info.tsa_name.as_deref(), Some("CN=Evidence Test TSA"));
    assert_eq!(info.nonce_hex, None);
    // Serial and time as openssl itself reads them from the reply.
    pki.write("shown.tsr", &resp);
    let text = pki.openssl(&["ts", "-reply", "-in", "shown.tsr", "-text"]);
    let field = |name: &str| {
        text.lines()
            .find_map(|l| l.strip_prefix(name))
            .map(|v| v.trim().to_string())
            .unwrap_or_else(|| panic!("no {name} in {text}"))
    };
    let serial = field("Serial number:");
    let serial = serial.trim_start_matches("0x").to_ascii_lowercase();
    assert_eq!(info.serial_hex, format!("{serial:0>2}"));
    let shown = info.gen_time.format("%b %e %H:%M:%S %Y GMT").to_string();
    assert_eq!(field("Time stamp:"), shown);

    let unpinned = check_response(&resp, &expect(&d), &TsaTrust::default()).unwrap();
    assert_eq!(
        unpinned.anchor,
        Anchor::Unanchored {
            root_sha256: Some(pki.sha("ca"))
        }
    );

    let by_fp = TsaTrust {
        roots: vec![],
        fingerprints: vec![pki.sha("ca")],
    };
    let info = check_response(&resp, &expect(&d), &by_fp).unwrap();
    assert_eq!(
        info.anchor,
        Anchor::Pinned {
            root_sha256: pki.sha("ca")
        }
    );

    // The bare token verifies the same way.
    let token = pki.token_of(&resp);
    let info = check_token(&token, &expect(&d), &pinned(&pki, "ca")).unwrap();
    assert_eq!(
        info.anchor,
        Anchor::Pinned {
            root_sha256: pki.sha("ca")
        }
    );
    // ... and a response is not a token, nor the other way round.
    assert_code(
        check_token(&resp, &expect(&d), &TsaTrust::default()),
        "timestamp.malformed",
    );
    assert_code(
        check_response(&token, &expect(&d), &TsaTrust::default()),
        "timestamp.malformed",
    );
}

#[test]
fn wrong_imprint_or_algorithm() {
    let Some(pki) = Pki::standard() else { return };
    let d = imprint("checkpoint 2");
    let resp = pki.reply(&d);
    let trust = pinned(&pki, "ca");
    let other = imprint("checkpoint 3");
    let e = assert_code(
        check_response(&resp, &expect(&other), &trust),
        "timestamp.imprint-mismatch",
    );
    assert!(e.unwrap().to_string().contains(&hex::encode(d)));
    let mut sha384 = expect(&d);
    sha384.algorithm = ImprintAlgorithm::Sha384;
    assert_code(
        check_response(&resp, &sha384, &trust),
        "timestamp.imprint-algorithm",
    );
}

#[test]
fn nonce_round_trip_and_mismatch() {
    let Some(pki) = Pki::standard() else { return };
    let d = imprint("checkpoint 4");
    // Top bit set: must be sent as a positive INTEGER (with a 00 octet) and still compare equal.
    let nonce = [0x80, 0x11, 0x22, 0x33, 0x44, 0x55, 0x66, 0x77];
    let q = build_request(ImprintAlgorithm::Sha256, &d, Some(&nonce), true, None).unwrap();
    let resp = pki.reply_to(&q, "tsa.cnf");
    let trust = pinned(&pki, "ca");

    let mut e = expect(&d);
    e.nonce = Some(&nonce);
    let info = check_response(&resp, &e, &trust).unwrap();
    assert_eq!(info.nonce_hex.as_deref(), Some("8011223344556677"));
    // Leading zeros are not part of the value.
    let padded = [&[0u8, 0][..], &nonce].concat();
    e.nonce = Some(&padded);
    check_response(&resp, &e, &trust).unwrap();

    let wrong = [0x80, 0x11, 0x22, 0x33, 0x44, 0x55, 0x66, 0x78];
    e.nonce = Some(&wrong);
    assert_code(
        check_response(&resp, &e, &trust),
        "timestamp.nonce-mismatch",
    );

    // Expected but absent.
    let no_nonce = pki.reply(&d);
    e.nonce = Some(&nonce);
    let err = assert_code(
        check_response(&no_nonce, &e, &trust),
        "timestamp.nonce-mismatch",
    );
    assert!(err.unwrap().to_string().contains("none"));
}

#[test]
fn policy_requested_and_mismatched() {
    let Some(pki) = Pki::standard() else { return };
    let d = imprint("checkpoint 5");
    let trust = pinned(&pki, "ca");
    let resp = pki.reply(&d);
    let mut e = expect(&d);
    e.policy = Some(OTHER_POLICY);
    assert_code(
        check_response(&resp, &e, &trust),
        "timestamp.policy-mismatch",
    );
    e.policy = Some(POLICY);
    check_response(&resp, &e, &trust).unwrap();

    let q = build_request(ImprintAlgorithm::Sha256, &d, None, true, Some(OTHER_POLICY)).unwrap();
    let resp = pki.reply_to(&q, "tsa.cnf");
    e.policy = Some(OTHER_POLICY);
    assert_eq!(
        check_response(&resp, &e, &trust).unwrap().policy,
        OTHER_POLICY
    );
}

#[test]
fn another_pinned_root_is_untrusted() {
    let Some(pki) = Pki::standard() else { return };
    pki.root("other", "Unrelated Root CA", "rsa:2048", &[]);
    let d = imprint("checkpoint 6");
    let resp = pki.reply(&d);
    let err = assert_code(
        check_response(&resp, &expect(&d), &pinned(&pki, "other")),
        "timestamp.untrusted-root",
    );
    assert_eq!(
        err,
        Some(TimestampError::UntrustedRoot {
            root_sha256: pki.sha("ca"),
            subject: "CN=Evidence Test Root CA".into()
        })
    );
    let by_fp = TsaTrust {
        roots: vec![],
        fingerprints: vec![pki.sha("other")],
    };
    assert_code(
        check_response(&resp, &expect(&d), &by_fp),
        "timestamp.untrusted-root",
    );
    // A fingerprint pins only a self-issued root, not the TSA certificate itself.
    let tsa_fp = TsaTrust {
        roots: vec![],
        fingerprints: vec![pki.sha("tsa")],
    };
    assert_code(
        check_response(&resp, &expect(&d), &tsa_fp),
        "timestamp.untrusted-root",
    );
}

#[test]
fn pinned_root_not_carried_by_the_token() {
    let Some(pki) = Pki::standard() else { return };
    pki.tsa_cnf("bare.cnf", "tsa", None, "sha256", &[]);
    let d = imprint("checkpoint 7");
    let q = pki.query(&d);
    let resp = pki.reply_to(&q, "bare.cnf");
    let info = check_response(&resp, &expect(&d), &pinned(&pki, "ca")).unwrap();
    assert_eq!(
        info.anchor,
        Anchor::Pinned {
            root_sha256: pki.sha("ca")
        }
    );
    let info = check_response(&resp, &expect(&d), &TsaTrust::default()).unwrap();
    assert_eq!(info.anchor, Anchor::Unanchored { root_sha256: None });
    // A fingerprint can only pin a root the token carries.
    let by_fp = TsaTrust {
        roots: vec![],
        fingerprints: vec![pki.sha("ca")],
    };
    assert_code(
        check_response(&resp, &expect(&d), &by_fp),
        "timestamp.chain-broken",
    );
}

#[test]
fn tampered_tst_info_fails_the_message_digest() {
    let Some(pki) = Pki::standard() else { return };
    let d = imprint("checkpoint 8");
    let mut resp = pki.reply(&d);
    let at = find(&resp, &d);
    resp[at + 31] ^= 0x01;
    let mut forged = d;
    forged[31] ^= 0x01;
    // Even when the reader expects the forged imprint, the signature binding catches it.
    assert_code(
        check_response(&resp, &expect(&forged), &pinned(&pki, "ca")),
        "timestamp.message-digest-attribute",
    );
}

#[test]
fn tampered_signature_fails() {
    let Some(pki) = Pki::standard() else { return };
    let d = imprint("checkpoint 9");
    let mut resp = pki.reply(&d);
    let token = pki.token_of(&resp);
    let raw = SignedDataRaw::parse(&token).unwrap();
    let si = cms::signed_data::SignerInfo::from_der(raw.signer_infos[0]).unwrap();
    let sig = si.signature.as_bytes().to_vec();
    let at = find(&resp, &sig);
    resp[at + sig.len() / 2] ^= 0x40;
    assert_code(
        check_response(&resp, &expect(&d), &pinned(&pki, "ca")),
        "timestamp.bad-signature",
    );
}

#[test]
fn garbage_is_malformed_never_a_panic() {
    let Some(pki) = Pki::standard() else { return };
    let d = imprint("checkpoint 10");
    let resp = pki.reply(&d);
    let trust = pinned(&pki, "ca");
    let e = expect(&d);
    assert_code(check_response(&[], &e, &trust), "timestamp.malformed");
    assert_code(check_token(&[], &e, &trust), "timestamp.malformed");
    for len in 0..resp.len() {
        assert_code(
            check_response(&resp[..len], &e, &trust),
            "timestamp.malformed",
        );
    }
    let mut extended = resp.clone();
    extended.push(0);
    assert_code(check_response(&extended, &e, &trust), "timestamp.malformed");
    let huge = [resp.clone(), vec![0u8; MAX_DER_LEN]].concat();
    assert_code(check_response(&huge, &e, &trust), "timestamp.malformed");
    // Pseudo-random bytes (xorshift; reproducible).
    let mut x: u64 = 0x9e37_79b9_7f4a_7c15;
    for round in 0..200 {
        let bytes: Vec<u8> = (0..(round * 7 + 1))
            .map(|_| {
                x ^= x << 13;
                x ^= x >> 7;
                x ^= x << 17;
                x as u8
            })
            .collect();
        assert_code(check_response(&bytes, &e, &trust), "timestamp.malformed");
        let mut seq = vec![0x30, 0x82, (bytes.len() >> 8) as u8, bytes.len() as u8];
        seq.extend(&bytes);
        assert!(check_response(&seq, &e, &trust).is_err());
        assert!(check_token(&seq, &e, &trust).is_err());
    }
    // Every single-byte change: an answer, never a panic; and never accepted where the byte is
    // covered by the signature (the TSTInfo and the signed attributes).
    let token = pki.token_of(&resp);
    let tst = tst_info_of(&token);
    let tst_at = find(&resp, &tst);
    for i in 0..resp.len() {
        let mut bad = resp.clone();
        bad[i] ^= 0x01;
        let r = check_response(&bad, &e, &trust);
        if (tst_at..tst_at + tst.len()).contains(&i) {
            assert!(
                r.is_err(),
                "flipping byte {i} inside the TSTInfo was accepted"
            );
        }
    }
}

#[test]
fn a_rejection_is_reported_with_its_reason() {
    let Some(pki) = Pki::standard() else { return };
    // The TSA accepts only SHA-2 imprints: a SHA-1 query gets a real rejection.
    let hex = hex::encode([7u8; 20]);
    pki.openssl(&[
        "ts",
        "-query",
        "-digest",
        &hex,
        "-sha1",
        "-no_nonce",
        "-out",
        "q1.tsq",
    ]);
    let q = pki.read("q1.tsq");
    let resp = pki.reply_to(&q, "tsa.cnf");
    let d = imprint("x");
    let err = assert_code(
        check_response(&resp, &expect(&d), &TsaTrust::default()),
        "timestamp.rejected",
    );
    match err {
        Some(TimestampError::Rejected {
            status,
            fail_info,
            text,
            ..
        }) => {
            assert_eq!(status, 2);
            assert_eq!(fail_info, vec!["badAlg".to_string()]);
            assert!(text.to_lowercase().contains("digest"), "{text}");
        }
        other => panic!("{other:?}"),
    }
    assert!(
        !check_response(&resp, &expect(&d), &TsaTrust::default())
            .unwrap_err()
            .is_transient()
    );
}

#[test]
fn fractional_gen_time_and_ess_v1() {
    let Some(pki) = Pki::standard() else { return };
    pki.tsa_cnf(
        "frac.cnf",
        "tsa",
        Some("ca.crt"),
        "sha512",
        &["ess_cert_id_alg = sha1", "clock_precision_digits = 3"],
    );
    let d = imprint("checkpoint 11");
    let q = pki.query(&d);
    // Try a few times: a genTime whose milliseconds end in 0 is written with fewer digits.
    let mut saw_fraction = false;
    for _ in 0..5 {
        let resp = pki.reply_to(&q, "frac.cnf");
        let info = check_response(&resp, &expect(&d), &pinned(&pki, "ca")).unwrap();
        assert!((Utc::now() - info.gen_time).num_seconds().abs() < 300);
        if info.gen_time.timestamp_subsec_nanos() != 0 {
            saw_fraction = true;
            break;
        }
        std::thread::sleep(std::time::Duration::from_millis(7));
    }
    assert!(saw_fraction, "openssl never produced a fractional genTime");
}

#[test]
fn a_bad_pinned_root_is_reported() {
    let Some(pki) = Pki::standard() else { return };
    let d = imprint("checkpoint 17");
    let resp = pki.reply(&d);
    let trust = TsaTrust {
        roots: vec![b"not a certificate".to_vec()],
        fingerprints: vec![],
    };
    assert_code(
        check_response(&resp, &expect(&d), &trust),
        "timestamp.bad-trust-anchor",
    );
}
