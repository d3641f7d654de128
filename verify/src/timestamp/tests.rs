//! Tests against real tokens: `openssl ts -reply` is a real RFC 3161 TSA, and `openssl cms -sign`
//! makes the tokens a well-behaved TSA would refuse to make (wrong EKU, no ESS, odd genTime).
//! All keys and certificates here are generated per test, in a temporary directory, and are
//! test-only. Without the `openssl` CLI these tests print a note and pass vacuously.

use super::asn1::{GenTime, SignedDataRaw, TstInfo};
use super::*;
use der::asn1::OctetStringRef;
use der::{Decode, Encode};
use std::path::PathBuf;
use std::process::Command;

const POLICY: &str = "1.3.6.1.4.1.99999.1.1";
const OTHER_POLICY: &str = "1.3.6.1.4.1.99999.1.2";

const TSA_EXT: &str = "basicConstraints = critical, CA:FALSE
keyUsage = critical, digitalSignature, nonRepudiation
extendedKeyUsage = critical, timeStamping
subjectKeyIdentifier = hash
authorityKeyIdentifier = keyid:always
";

const CA_EXT: &str = "basicConstraints = critical, CA:TRUE, pathlen:0
keyUsage = critical, keyCertSign, cRLSign
subjectKeyIdentifier = hash
authorityKeyIdentifier = keyid:always
";

/// A temporary PKI driven through the `openssl` CLI.
struct Pki {
    dir: tempfile::TempDir,
}

impl Pki {
    /// `None` (after a note) when `openssl` is not installed.
    fn new() -> Option<Pki> {
        let ok = Command::new("openssl")
            .arg("version")
            .output()
            .is_ok_and(|o| o.status.success());
        if !ok {
            eprintln!("note: `openssl` not found; skipping this RFC 3161 test");
            return None;
        }
        Some(Pki {
            dir: tempfile::tempdir().unwrap(),
        })
    }

    /// A root `ca`, a TSA certificate `tsa` under it and `tsa.cnf` answering with both.
    fn standard() -> Option<Pki> {
        let pki = Pki::new()?;
        pki.root("ca", "Evidence Test Root CA", "rsa:2048", &[]);
        pki.issue("tsa", "Evidence Test TSA", "rsa:2048", "ca", TSA_EXT, &[]);
        pki.tsa_cnf("tsa.cnf", "tsa", Some("ca.crt"), "sha256", &[]);
        Some(pki)
    }

    fn path(&self, name: &str) -> PathBuf {
        self.dir.path().join(name)
    }

    fn write(&self, name: &str, data: impl AsRef<[u8]>) {
        std::fs::write(self.path(name), data).unwrap();
    }

    fn read(&self, name: &str) -> Vec<u8> {
        std::fs::read(self.path(name)).unwrap()
    }

    fn openssl(&self, args: &[&str]) -> String {
        let out = Command::new("openssl")
            .args(args)
            .current_dir(self.dir.path())
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "openssl {args:?} failed: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8_lossy(&out.stdout).into_owned()
    }

    fn newkey_args(key: &str) -> Vec<&str> {
        match key {
            "ec:P-256" => vec!["-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256"],
            "ec:P-384" => vec!["-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-384"],
            rsa => vec!["-newkey", rsa],
        }
    }

    /// A self-signed root `{name}.crt` / `{name}.key`; `extra` are more `openssl req` options.
    fn root(&self, name: &str, cn: &str, key: &str, extra: &[&str]) {
        let (k, c, subj) = (
            format!("{name}.key"),
            format!("{name}.crt"),
            format!("/CN={cn}"),
        );
        let mut args = vec!["req", "-x509"];
        args.extend(Self::newkey_args(key));
        args.extend([
            "-nodes",
            "-keyout",
            &k,
            "-out",
            &c,
            "-days",
            "365",
            "-subj",
            &subj,
            "-addext",
            "basicConstraints=critical,CA:TRUE",
            "-addext",
            "keyUsage=critical,keyCertSign,cRLSign",
        ]);
        args.extend(extra);
        self.openssl(&args);
    }

    /// `{name}.crt` issued by `{issuer}` with the extensions in `ext`.
    fn issue(&self, name: &str, cn: &str, key: &str, issuer: &str, ext: &str, extra: &[&str]) {
        let (k, csr, c) = (
            format!("{name}.key"),
            format!("{name}.csr"),
            format!("{name}.crt"),
        );
        let subj = format!("/CN={cn}");
        let mut args = vec!["req", "-new"];
        args.extend(Self::newkey_args(key));
        args.extend(["-nodes", "-keyout", &k, "-out", &csr, "-subj", &subj]);
        self.openssl(&args);
        let extfile = format!("{name}.ext");
        self.write(&extfile, ext);
        let (ca, cakey) = (format!("{issuer}.crt"), format!("{issuer}.key"));
        let mut args = vec![
            "x509",
            "-req",
            "-in",
            &csr,
            "-CA",
            &ca,
            "-CAkey",
            &cakey,
            "-CAcreateserial",
            "-days",
            "365",
            "-sha256",
            "-extfile",
            &extfile,
            "-out",
            &c,
        ];
        args.extend(extra);
        self.openssl(&args);
    }

    /// A `openssl ts -reply` config signing with `{signer}`, carrying `certs` (a PEM file).
    fn tsa_cnf(&self, file: &str, signer: &str, certs: Option<&str>, digest: &str, extra: &[&str]) {
        let mut cnf = format!(
            "[ tsa ]\ndefault_tsa = tsa_config1\n\n[ tsa_config1 ]\ndir = .\n\
             serial = $dir/tsaserial\ncrypto_device = builtin\n\
             signer_cert = $dir/{signer}.crt\nsigner_key = $dir/{signer}.key\n\
             signer_digest = {digest}\ndefault_policy = {POLICY}\nother_policies = {OTHER_POLICY}\n\
             digests = sha256, sha384, sha512\naccuracy = secs:1, millisecs:0, microsecs:0\n\
             clock_precision_digits = 0\nordering = yes\ntsa_name = yes\n\
             ess_cert_id_chain = no\n"
        );
        if let Some(c) = certs {
            cnf.push_str(&format!("certs = $dir/{c}\n"));
        }
        let mut extra = extra.to_vec();
        if !extra.iter().any(|l| l.starts_with("ess_cert_id_alg")) {
            extra.push("ess_cert_id_alg = sha256");
        }
        for line in extra {
            cnf.push_str(line);
            cnf.push('\n');
        }
        self.write(file, cnf);
        if !self.path("tsaserial").exists() {
            self.write("tsaserial", "01\n");
        }
    }

    /// The DER of `{name}.crt`.
    fn der(&self, name: &str) -> Vec<u8> {
        let pem = self.read(&format!("{name}.crt"));
        crate::trust::pem_certificates(&pem).unwrap().remove(0)
    }

    fn sha(&self, name: &str) -> Sha256 {
        Sha256::digest(&self.der(name))
    }

    /// `openssl ts -query` for a SHA-256 imprint, no nonce, certReq.
    fn query(&self, imprint: &[u8]) -> Vec<u8> {
        let hex = hex::encode(imprint);
        self.openssl(&[
            "ts",
            "-query",
            "-digest",
            &hex,
            "-sha256",
            "-cert",
            "-no_nonce",
            "-out",
            "q.tsq",
        ]);
        self.read("q.tsq")
    }

    /// `openssl ts -reply` to the query bytes `q`, with the config `cnf`.
    fn reply_to(&self, q: &[u8], cnf: &str) -> Vec<u8> {
        self.write("q.tsq", q);
        self.openssl(&[
            "ts",
            "-reply",
            "-config",
            cnf,
            "-queryfile",
            "q.tsq",
            "-out",
            "r.tsr",
        ]);
        self.read("r.tsr")
    }

    fn reply(&self, imprint: &[u8]) -> Vec<u8> {
        let q = self.query(imprint);
        self.reply_to(&q, "tsa.cnf")
    }

    /// The bare token of the response `r.tsr`.
    fn token_of(&self, response: &[u8]) -> Vec<u8> {
        self.write("resp.tsr", response);
        self.openssl(&[
            "ts",
            "-reply",
            "-in",
            "resp.tsr",
            "-token_out",
            "-out",
            "token.der",
        ]);
        self.read("token.der")
    }

    /// A token for `tst_info` signed by `{signer}` with `openssl cms -sign`; `cades` adds ESS
    /// signing-certificate-v2. `certs` is the PEM file of extra certificates to carry.
    fn cms_token(&self, tst_info: &[u8], signer: &str, cades: bool, extra: &[&str]) -> Vec<u8> {
        self.write("tst.der", tst_info);
        let (c, k) = (format!("{signer}.crt"), format!("{signer}.key"));
        let mut args = vec![
            "cms",
            "-sign",
            "-binary",
            "-nodetach",
            "-in",
            "tst.der",
            "-econtent_type",
            "1.2.840.113549.1.9.16.1.4",
            "-signer",
            &c,
            "-inkey",
            &k,
            "-md",
            "sha256",
            "-nosmimecap",
            "-outform",
            "DER",
            "-out",
            "cms.der",
        ];
        if cades {
            args.push("-cades");
        }
        args.extend(extra);
        self.openssl(&args);
        self.read("cms.der")
    }
}

fn imprint(label: &str) -> [u8; 32] {
    Sha256::digest(label.as_bytes()).0
}

fn expect(imprint: &[u8]) -> Expectation<'_> {
    Expectation {
        algorithm: ImprintAlgorithm::Sha256,
        imprint,
        nonce: None,
        policy: None,
    }
}

fn pinned(pki: &Pki, name: &str) -> TsaTrust {
    TsaTrust {
        roots: vec![pki.der(name)],
        fingerprints: vec![],
    }
}

/// The code of a result, `ok` for success; the message goes into assertion failures.
fn code(r: &Result<TokenInfo, TimestampError>) -> String {
    match r {
        Ok(_) => "ok".into(),
        Err(e) => e.code().into(),
    }
}

fn assert_code(r: Result<TokenInfo, TimestampError>, want: &str) -> Option<TimestampError> {
    assert_eq!(code(&r), want, "{r:?}");
    r.err()
}

/// The TSTInfo bytes inside a response.
fn tst_info_of(token: &[u8]) -> Vec<u8> {
    let raw = SignedDataRaw::parse(token).unwrap();
    let encap = cms::signed_data::EncapsulatedContentInfo::from_der(raw.encap).unwrap();
    let econtent = encap.econtent.unwrap();
    econtent
        .decode_as::<OctetStringRef<'_>>()
        .unwrap()
        .as_bytes()
        .to_vec()
}

fn find(haystack: &[u8], needle: &[u8]) -> usize {
    haystack
        .windows(needle.len())
        .position(|w| w == needle)
        .expect("needle not found")
}

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
