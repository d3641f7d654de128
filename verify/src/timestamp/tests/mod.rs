//! Tests against real tokens: `openssl ts -reply` is a real RFC 3161 TSA, and `openssl cms -sign`
//! makes the tokens a well-behaved TSA would refuse to make (wrong EKU, no ESS, odd genTime).
//! All keys and certificates here are generated per test, in a temporary directory, and are
//! test-only. Without the `openssl` CLI these tests print a note and pass vacuously.
//!
//! This file holds the test PKI and the helpers; the tests are in its children, by what they
//! change about a token.

use super::asn1::{GenTime, SignedDataRaw, TstInfo};
use super::*;
use der::asn1::OctetStringRef;
use der::{Decode, Encode};
use std::path::PathBuf;
use std::process::Command;

mod chains;
mod replies;
mod requests_and_codes;

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
