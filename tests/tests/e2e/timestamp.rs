//! The RFC 3161 client against a real TSA (`openssl ts -reply` behind the test rig): a verified
//! round trip that openssl itself also accepts, then each way a TSA fails, classified as
//! retriable or not.
// Test helpers outside `#[test]` functions: a failure here is a failed test.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::print_stderr
)]

use evidock_store::tsa::{TsaClient, TsaConfig, TsaError};
use evidock_tests::tsa::{self, Mode, TsaRig};
use evidock_verify::id::Sha256;
use evidock_verify::timestamp::{Anchor, TimestampError, TsaTrust};
use std::process::Command;
use std::time::{Duration, Instant};

/// The rig, or `None` (with a note) when `openssl` is not installed.
fn rig() -> Option<TsaRig> {
    if !tsa::openssl_available() {
        eprintln!("note: `openssl` not found; skipping the RFC 3161 round trip");
        return None;
    }
    Some(TsaRig::start().expect("the test TSA starts"))
}

fn client(url: &str, trust: TsaTrust, policy: Option<&str>, timeout: Duration) -> TsaClient {
    TsaClient::new(TsaConfig {
        url: url.to_string(),
        policy: policy.map(str::to_string),
        timeout,
        trust,
    })
    .unwrap()
}

/// `openssl ts -verify` on a stored response: (success, stdout and stderr).
fn openssl_verify(rig: &TsaRig, tsr: &std::path::Path, digest: &Sha256) -> (bool, String) {
    let out = Command::new("openssl")
        .args(["ts", "-verify", "-in"])
        .arg(tsr)
        .args(["-digest", &digest.to_hex(), "-CAfile"])
        .arg(&rig.ca_pem)
        .output()
        .unwrap();
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    (
        out.status.success() && text.contains("Verification: OK"),
        text,
    )
}

#[tokio::test]
async fn round_trip_verified_here_and_by_openssl() {
    let Some(rig) = rig() else { return };
    let data = b"checkpoint note: evidock test log, size 42\n";
    let digest = Sha256::digest(data);
    let c = client(
        &rig.url,
        rig.trust().unwrap(),
        None,
        Duration::from_secs(20),
    );

    let before = chrono::Utc::now();
    let reply = c.timestamp(&digest).await.unwrap();
    let after = chrono::Utc::now();
    let info = &reply.info;
    // The rig reports whole seconds; allow a little either side.
    assert!(
        info.gen_time >= before - chrono::Duration::seconds(2),
        "{}",
        info.gen_time
    );
    assert!(
        info.gen_time <= after + chrono::Duration::seconds(2),
        "{}",
        info.gen_time
    );
    assert_eq!(info.policy, tsa::POLICY);
    assert_eq!(
        info.anchor,
        Anchor::Pinned {
            root_sha256: rig.ca_sha256().unwrap()
        }
    );
    assert_eq!(info.signer_subject, "CN=Evidence Test TSA");
    assert_eq!(
        info.signer_sha256,
        Sha256::digest(&tsa::pem_to_der(&rig.tsa_pem).unwrap())
    );
    let nonce = info.nonce_hex.as_deref().expect("the nonce is echoed");
    assert!(!nonce.is_empty() && nonce.len() <= 16, "{nonce}");
    assert_eq!(rig.requests(), 1);

    // What gets stored verifies with openssl too, and only for this digest.
    let tsr = rig.dir.path().join("stored.tsr");
    std::fs::write(&tsr, &reply.response_der).unwrap();
    let (ok, text) = openssl_verify(&rig, &tsr, &digest);
    assert!(ok, "openssl ts -verify: {text}");
    let (ok, text) = openssl_verify(&rig, &tsr, &Sha256::digest(b"other data"));
    assert!(!ok, "openssl accepted the token for another digest: {text}");

    // Each request carries a fresh nonce and gets its own serial.
    let again = c.timestamp(&digest).await.unwrap();
    assert_ne!(again.info.nonce_hex, reply.info.nonce_hex);
    assert_ne!(again.info.serial_hex, reply.info.serial_hex);

    // A requested policy is asked for and checked.
    let c2 = client(
        &rig.url,
        rig.trust().unwrap(),
        Some(tsa::OTHER_POLICY),
        Duration::from_secs(20),
    );
    assert_eq!(
        c2.timestamp(&digest).await.unwrap().info.policy,
        tsa::OTHER_POLICY
    );

    // No pins: accepted, and said to be unanchored.
    let open = client(&rig.url, TsaTrust::default(), None, Duration::from_secs(20));
    assert_eq!(
        open.timestamp(&digest).await.unwrap().info.anchor,
        Anchor::Unanchored {
            root_sha256: Some(rig.ca_sha256().unwrap())
        }
    );

    // Pinned to an unrelated CA: refused, and retrying would not help.
    let other = rig.unrelated_ca().unwrap();
    let wrong = client(&rig.url, other.trust(), None, Duration::from_secs(20));
    let e = wrong.timestamp(&digest).await.unwrap_err();
    match &e {
        TsaError::Invalid { source, .. } => {
            assert_eq!(source.code(), "timestamp.untrusted-root", "{e}")
        }
        other => panic!("expected Invalid, got {other:?}"),
    }
    assert!(!e.is_retriable());
}

#[tokio::test]
async fn each_failure_mode_is_classified() {
    let Some(rig) = rig() else { return };
    let digest = Sha256::digest(b"checkpoint under a failing TSA");
    // Credentials in the URL: sent as basic auth (the rig ignores them), never shown.
    let url = rig.url.replace("http://", "http://station:hunter2@");
    let c = client(&url, rig.trust().unwrap(), None, Duration::from_secs(2));
    let no_secret = |e: &TsaError| {
        let text = format!("{e} {e:?}");
        assert!(!text.contains("hunter2"), "credentials leaked: {text}");
        assert!(text.contains("127.0.0.1"), "the TSA is not named: {text}");
    };

    rig.set_mode(Mode::Garbage);
    let e = c.timestamp(&digest).await.unwrap_err();
    assert!(
        matches!(
            &e,
            TsaError::Invalid {
                source: TimestampError::Malformed(_),
                ..
            }
        ),
        "{e:?}"
    );
    assert!(!e.is_retriable());
    no_secret(&e);

    rig.set_mode(Mode::Reject);
    let e = c.timestamp(&digest).await.unwrap_err();
    match &e {
        TsaError::Rejected {
            source: TimestampError::Rejected {
                status, fail_info, ..
            },
            ..
        } => {
            assert_eq!(*status, 2, "{e}");
            assert_eq!(fail_info, &["badAlg".to_string()], "{e}");
        }
        other => panic!("expected Rejected, got {other:?}"),
    }
    assert!(!e.is_retriable());
    no_secret(&e);

    rig.set_mode(Mode::HttpError(500));
    let e = c.timestamp(&digest).await.unwrap_err();
    assert!(matches!(&e, TsaError::Http { status: 500, .. }), "{e:?}");
    assert!(e.is_retriable());
    no_secret(&e);

    rig.set_mode(Mode::HttpError(404));
    let e = c.timestamp(&digest).await.unwrap_err();
    assert!(matches!(&e, TsaError::Http { status: 404, .. }), "{e:?}");
    assert!(!e.is_retriable());

    rig.set_mode(Mode::Hang);
    let started = Instant::now();
    let e = c.timestamp(&digest).await.unwrap_err();
    assert!(matches!(&e, TsaError::Unreachable { .. }), "{e:?}");
    assert!(e.is_retriable());
    assert!(
        started.elapsed() < Duration::from_secs(10),
        "the timeout did not apply"
    );
    no_secret(&e);

    rig.set_mode(Mode::Close);
    let e = c.timestamp(&digest).await.unwrap_err();
    assert!(matches!(&e, TsaError::Unreachable { .. }), "{e:?}");
    assert!(e.is_retriable());
    no_secret(&e);

    // Back to normal: the same client gets a verified token.
    rig.set_mode(Mode::Normal);
    let reply = c.timestamp(&digest).await.unwrap();
    assert_eq!(
        reply.info.anchor,
        Anchor::Pinned {
            root_sha256: rig.ca_sha256().unwrap()
        }
    );
    assert_eq!(rig.requests(), 7);
}

#[tokio::test]
async fn a_stopped_tsa_is_unreachable() {
    let Some(mut rig) = rig() else { return };
    let c = client(&rig.url, rig.trust().unwrap(), None, Duration::from_secs(5));
    let digest = Sha256::digest(b"x");
    c.timestamp(&digest).await.unwrap();
    rig.stop();
    let e = c.timestamp(&digest).await.unwrap_err();
    assert!(matches!(&e, TsaError::Unreachable { .. }), "{e:?}");
    assert!(e.is_retriable());
}
