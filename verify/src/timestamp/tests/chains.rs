//! Certificate chains and tokens a well-behaved TSA would not make (`openssl cms -sign`): key
//! types, an intermediate, an issuer that is no CA, EKU/ESS/validity, an impostor CA. Apart because
//! they are about who signed, not what was signed.

use super::*;

#[test]
fn ecdsa_tsas_verify() {
    let Some(pki) = Pki::standard() else { return };
    pki.issue("ec256", "EC P-256 TSA", "ec:P-256", "ca", TSA_EXT, &[]);
    pki.issue("ec384", "EC P-384 TSA", "ec:P-384", "ca", TSA_EXT, &[]);
    pki.tsa_cnf("ec256.cnf", "ec256", Some("ca.crt"), "sha256", &[]);
    pki.tsa_cnf("ec384.cnf", "ec384", Some("ca.crt"), "sha384", &[]);
    let d = imprint("checkpoint 12");
    let q = pki.query(&d);
    for (cnf, cert) in [("ec256.cnf", "ec256"), ("ec384.cnf", "ec384")] {
        let mut resp = pki.reply_to(&q, cnf);
        let info = check_response(&resp, &expect(&d), &pinned(&pki, "ca")).unwrap();
        assert_eq!(info.signer_sha256, pki.sha(cert));
        // And an ECDSA signature that is off by one bit fails.
        let token = pki.token_of(&resp);
        let raw = SignedDataRaw::parse(&token).unwrap();
        let si = cms::signed_data::SignerInfo::from_der(raw.signer_infos[0]).unwrap();
        let sig = si.signature.as_bytes().to_vec();
        let at = find(&resp, &sig);
        resp[at + sig.len() - 3] ^= 0x01;
        assert_code(
            check_response(&resp, &expect(&d), &pinned(&pki, "ca")),
            "timestamp.bad-signature",
        );
    }
}

#[test]
fn rsa_pss_chain_with_an_intermediate() {
    let Some(pki) = Pki::new() else { return };
    let pss: &[&str] = &[
        "-sigopt",
        "rsa_padding_mode:pss",
        "-sigopt",
        "rsa_pss_saltlen:32",
        "-sigopt",
        "rsa_mgf1_md:sha256",
    ];
    pki.root("ca", "PSS Root", "rsa:2048", pss);
    pki.issue("int", "Intermediate CA", "rsa:2048", "ca", CA_EXT, pss);
    pki.issue(
        "tsa",
        "TSA under an intermediate",
        "rsa:2048",
        "int",
        TSA_EXT,
        pss,
    );
    let chain = [pki.read("int.crt"), pki.read("ca.crt")].concat();
    pki.write("chain.pem", chain);
    pki.tsa_cnf("tsa.cnf", "tsa", Some("chain.pem"), "sha256", &[]);
    pki.tsa_cnf("noint.cnf", "tsa", Some("ca.crt"), "sha256", &[]);
    let d = imprint("checkpoint 13");
    let q = pki.query(&d);
    let resp = pki.reply_to(&q, "tsa.cnf");
    let info = check_response(&resp, &expect(&d), &pinned(&pki, "ca")).unwrap();
    assert_eq!(
        info.anchor,
        Anchor::Pinned {
            root_sha256: pki.sha("ca")
        }
    );
    assert_eq!(
        check_response(&resp, &expect(&d), &TsaTrust::default())
            .unwrap()
            .anchor,
        Anchor::Unanchored {
            root_sha256: Some(pki.sha("ca"))
        }
    );
    // Without the intermediate the chain cannot be built.
    let resp = pki.reply_to(&q, "noint.cnf");
    let err = assert_code(
        check_response(&resp, &expect(&d), &pinned(&pki, "ca")),
        "timestamp.chain-broken",
    );
    assert!(err.unwrap().to_string().contains("Intermediate CA"));
}

#[test]
fn an_issuer_that_is_not_a_ca_breaks_the_chain() {
    let Some(pki) = Pki::standard() else { return };
    let leaf_ext = "basicConstraints = critical, CA:FALSE\nkeyUsage = critical, digitalSignature, keyCertSign\n";
    pki.issue("leaf", "Not A CA", "rsa:2048", "ca", leaf_ext, &[]);
    pki.issue("tsa2", "TSA under a leaf", "rsa:2048", "leaf", TSA_EXT, &[]);
    let chain = [pki.read("leaf.crt"), pki.read("ca.crt")].concat();
    pki.write("chain.pem", chain);
    pki.tsa_cnf("tsa2.cnf", "tsa2", Some("chain.pem"), "sha256", &[]);
    let d = imprint("checkpoint 14");
    let q = pki.query(&d);
    let resp = pki.reply_to(&q, "tsa2.cnf");
    let err = assert_code(
        check_response(&resp, &expect(&d), &pinned(&pki, "ca")),
        "timestamp.chain-broken",
    );
    assert!(err.unwrap().to_string().contains("not a CA"));
}

/// Tokens signed with `openssl cms -sign`: first proof that such a token verifies when nothing is
/// wrong, so the failures below are caused by what each one changes.
#[test]
fn cms_signed_tokens_eku_ess_and_validity() {
    let Some(pki) = Pki::standard() else { return };
    // Every certificate first: the token's genTime must not precede their notBefore.
    let noncrit = TSA_EXT.replace("critical, timeStamping", "timeStamping");
    pki.issue(
        "noncrit",
        "TSA EKU not critical",
        "rsa:2048",
        "ca",
        &noncrit,
        &[],
    );
    let two = TSA_EXT.replace(
        "critical, timeStamping",
        "critical, timeStamping, codeSigning",
    );
    pki.issue("two", "TSA two purposes", "rsa:2048", "ca", &two, &[]);
    let none = TSA_EXT.replace("extendedKeyUsage = critical, timeStamping\n", "");
    pki.issue("none", "TSA no EKU", "rsa:2048", "ca", &none, &[]);
    pki.issue(
        "a",
        "TSA A",
        "rsa:2048",
        "ca",
        TSA_EXT,
        &["-set_serial", "4242"],
    );
    pki.issue(
        "b",
        "TSA B",
        "rsa:2048",
        "ca",
        TSA_EXT,
        &["-set_serial", "4242"],
    );
    std::thread::sleep(std::time::Duration::from_millis(1100));

    let d = imprint("checkpoint 15");
    let good = pki.token_of(&pki.reply(&d));
    let tst = tst_info_of(&good);
    let trust = pinned(&pki, "ca");
    let ca = ["-certfile", "ca.crt"];

    // The control: each variant below changes one thing from this, which verifies.
    for signer in ["tsa", "a", "b"] {
        let control = pki.cms_token(&tst, signer, true, &ca);
        let info = check_token(&control, &expect(&d), &trust).unwrap();
        assert_eq!(
            info.anchor,
            Anchor::Pinned {
                root_sha256: pki.sha("ca")
            }
        );
        assert_eq!(info.signer_sha256, pki.sha(signer));
    }

    // No ESS attribute: the signer certificate is not bound.
    let no_ess = pki.cms_token(&tst, "tsa", false, &ca);
    assert_code(
        check_token(&no_ess, &expect(&d), &trust),
        "timestamp.ess-missing",
    );

    // EKU not critical.
    let t = pki.cms_token(&tst, "noncrit", true, &ca);
    let err = assert_code(check_token(&t, &expect(&d), &trust), "timestamp.eku");
    assert!(err.unwrap().to_string().contains("critical"));

    // EKU with a second purpose.
    let t = pki.cms_token(&tst, "two", true, &ca);
    let err = assert_code(check_token(&t, &expect(&d), &trust), "timestamp.eku");
    assert!(err.unwrap().to_string().contains("exactly timeStamping"));

    // No EKU at all.
    let t = pki.cms_token(&tst, "none", true, &ca);
    let err = assert_code(check_token(&t, &expect(&d), &trust), "timestamp.eku");
    assert!(err.unwrap().to_string().contains("no extendedKeyUsage"));

    // genTime outside the certificate's validity.
    let mut info = TstInfo::from_der(&tst).unwrap();
    info.gen_time = GenTime::from_datetime(
        chrono::DateTime::parse_from_rfc3339("2001-02-03T04:05:06Z")
            .unwrap()
            .with_timezone(&Utc),
    );
    let old = info.to_der().unwrap();
    let t = pki.cms_token(&old, "tsa", true, &ca);
    assert_code(
        check_token(&t, &expect(&d), &trust),
        "timestamp.cert-not-valid-at-gen-time",
    );

    // A signer certificate swapped for another with the same issuer and serial: the sid still
    // finds it, the ESS hash does not match it.
    let t = pki.cms_token(&tst, "a", true, &["-nocerts", "-certfile", "b.crt"]);
    assert_code(
        check_token(&t, &expect(&d), &trust),
        "timestamp.ess-mismatch",
    );
    // With both carried, the ESS hash picks the right one.
    let both = [pki.read("b.crt"), pki.read("a.crt")].concat();
    pki.write("ab.pem", both);
    let t = pki.cms_token(&tst, "a", true, &["-nocerts", "-certfile", "ab.pem"]);
    assert_eq!(
        check_token(&t, &expect(&d), &trust).unwrap().signer_sha256,
        pki.sha("a")
    );

    // No signer certificate at all.
    let t = pki.cms_token(&tst, "tsa", true, &["-nocerts", "-certfile", "ca.crt"]);
    assert_code(
        check_token(&t, &expect(&d), &trust),
        "timestamp.signer-not-found",
    );

    // Signed content that is not a TSTInfo.
    pki.write("data.bin", b"not a tstinfo");
    pki.openssl(&[
        "cms",
        "-sign",
        "-binary",
        "-nodetach",
        "-in",
        "data.bin",
        "-signer",
        "tsa.crt",
        "-inkey",
        "tsa.key",
        "-md",
        "sha256",
        "-cades",
        "-outform",
        "DER",
        "-out",
        "data.der",
    ]);
    assert_code(
        check_token(&pki.read("data.der"), &expect(&d), &trust),
        "timestamp.not-tstinfo",
    );
}

/// An impostor CA with the pinned root's name but its own key: only the signature on the TSA
/// certificate tells them apart.
#[test]
fn an_impostor_ca_with_the_pinned_name_is_refused() {
    let Some(pki) = Pki::standard() else { return };
    let real = pki.der("ca");
    pki.root("ca", "Evidence Test Root CA", "rsa:2048", &[]);
    pki.issue("tsa", "Evidence Test TSA", "rsa:2048", "ca", TSA_EXT, &[]);
    assert_ne!(real, pki.der("ca"));
    let d = imprint("checkpoint 18");
    let trust = TsaTrust {
        roots: vec![real],
        fingerprints: vec![],
    };
    // Carrying the impostor: the chain ends at a root that is not the pinned one.
    let resp = pki.reply(&d);
    let err = assert_code(
        check_response(&resp, &expect(&d), &trust),
        "timestamp.untrusted-root",
    );
    assert!(err.unwrap().to_string().contains(&pki.sha("ca").to_hex()));
    // Not carrying it: the pinned root's key does not verify the TSA certificate.
    pki.tsa_cnf("bare.cnf", "tsa", None, "sha256", &[]);
    let q = pki.query(&d);
    let resp = pki.reply_to(&q, "bare.cnf");
    let err = assert_code(
        check_response(&resp, &expect(&d), &trust),
        "timestamp.chain-broken",
    );
    assert!(err.unwrap().to_string().contains("does not verify"));
}
