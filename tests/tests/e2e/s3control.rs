//! The S3 control calls (`evidock_store::s3control`) against a real Ceph RGW: Object Lock on a
//! new bucket, default COMPLIANCE retention, per-object GOVERNANCE retention and legal hold, a
//! locked version refusing deletion; then the same client through the fault proxy, and across
//! an RGW restart.
//!
//! All tests share one rig ([`CephRig::shared`]), each in its own bucket. The restart test
//! holds [`CephRig::gateway`] for writing, the others for reading, so no test sees RGW go away
//! under it.
// Test helpers outside `#[test]` functions: a failure here is a failed test.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::print_stderr
)]

use chrono::{Duration as Days, Utc};
use evidock_store::s3control::{LockMode, S3Control, S3Error};
use evidock_tests::ceph::CephRig;
use evidock_tests::faultproxy::FaultProxy;
use std::time::{Duration, Instant};
use tokio::sync::{RwLockReadGuard, RwLockWriteGuard};

async fn shared_rig() -> (&'static CephRig, RwLockReadGuard<'static, ()>) {
    let rig = CephRig::shared();
    eprintln!(
        "ceph rig: {} (started in {:.1} s)",
        rig.endpoint(),
        rig.started_in().as_secs_f64()
    );
    (rig, rig.gateway().read().await)
}

async fn exclusive_rig() -> (&'static CephRig, RwLockWriteGuard<'static, ()>) {
    let rig = CephRig::shared();
    (rig, rig.gateway().write().await)
}

fn client(endpoint: &str, rig: &CephRig, bucket: &str) -> S3Control {
    S3Control::new(
        endpoint,
        rig.region(),
        bucket,
        rig.access_key(),
        rig.secret_key(),
        None,
        true,
    )
    .unwrap()
}

#[tokio::test]
async fn object_lock_bucket_retention_and_legal_hold() {
    let (rig, _use) = shared_rig().await;
    let s3 = client(&rig.endpoint(), rig, "evidence-lock");

    assert!(!s3.bucket_exists().await.unwrap());
    s3.create_bucket(true).await.unwrap();
    assert!(s3.bucket_exists().await.unwrap());
    // Creating it again is fine: it is ours.
    s3.create_bucket(true).await.unwrap();
    assert!(s3.object_lock_enabled().await.unwrap());
    assert!(
        s3.versioning_enabled().await.unwrap(),
        "Object Lock turns versioning on"
    );
    assert_eq!(
        s3.object_lock_configuration().await.unwrap(),
        None,
        "lock enabled, no default rule yet"
    );

    // Before any default rule: an object without retention, then GOVERNANCE and legal hold.
    let gov = "cam-7/2025-06-01/clip-governance.mp4";
    s3.put_object(gov, b"footage under governance")
        .await
        .unwrap();
    assert_eq!(s3.object_retention(gov).await.unwrap(), None);
    assert!(!s3.legal_hold(gov).await.unwrap(), "never set is off");
    let until = Utc::now() + Days::hours(2);
    s3.put_object_retention(gov, LockMode::Governance, until, false)
        .await
        .unwrap();
    let (mode, got) = s3.object_retention(gov).await.unwrap().expect("retention");
    assert_eq!(mode, LockMode::Governance);
    assert!(
        (got - until).num_milliseconds().abs() < 1000,
        "{got} vs {until}"
    );
    s3.put_legal_hold(gov, true).await.unwrap();
    assert!(s3.legal_hold(gov).await.unwrap());
    s3.put_legal_hold(gov, false).await.unwrap();
    assert!(!s3.legal_hold(gov).await.unwrap());

    // The default rule: COMPLIANCE, 1 day.
    s3.put_default_retention(LockMode::Compliance, 1)
        .await
        .unwrap();
    assert_eq!(
        s3.object_lock_configuration().await.unwrap(),
        Some((LockMode::Compliance, 1))
    );

    // A new object gets it. The key has a space and non-ASCII characters.
    let key = "cam-7/2025-06-01/Einsatz Müller ファイル.mp4";
    let before = Utc::now();
    let version = s3
        .put_object(key, b"footage under compliance")
        .await
        .unwrap()
        .expect("a versioned bucket names the version");
    let (mode, until) = s3.object_retention(key).await.unwrap().expect("retention");
    assert_eq!(mode, LockMode::Compliance);
    assert!(
        until > before + Days::hours(23) && until < Utc::now() + Days::hours(25),
        "retained until {until}"
    );

    // The locked version refuses deletion, and retrying will not change that.
    let e = s3.delete_object(key, Some(&version)).await.unwrap_err();
    eprintln!("deleting a COMPLIANCE-locked version: {e}");
    assert_eq!(e.code(), Some("AccessDenied"), "{e}");
    assert!(!e.is_retriable(), "{e}");
    assert!(e.to_string().contains("evidence-lock"), "{e}");
    assert!(!e.to_string().contains(rig.secret_key()), "{e}");

    // A COMPLIANCE retention cannot be shortened, not even with the governance bypass.
    let e = s3
        .put_object_retention(key, LockMode::Compliance, Utc::now() + Days::hours(1), true)
        .await
        .unwrap_err();
    eprintln!("shortening a COMPLIANCE retention: {e}");
    assert!(!e.is_retriable(), "{e}");
    let (_, still) = s3.object_retention(key).await.unwrap().expect("retention");
    assert_eq!(still, until);

    // Deleting without a version id only adds a delete marker; the version stays.
    s3.delete_object(key, None).await.unwrap();
    let versions = s3.list_object_versions("cam-7/").await.unwrap();
    assert!(
        versions.contains(&(key.to_string(), version.clone())),
        "{versions:?}"
    );
    assert_eq!(
        versions.iter().filter(|(k, _)| k == key).count(),
        2,
        "the version and the delete marker: {versions:?}"
    );
    assert_eq!(versions.iter().filter(|(k, _)| k == gov).count(), 1);
}

#[tokio::test]
async fn bucket_without_object_lock() {
    let (rig, _use) = shared_rig().await;
    let s3 = client(&rig.endpoint(), rig, "plain-bucket");
    s3.create_bucket(false).await.unwrap();
    assert!(!s3.versioning_enabled().await.unwrap());
    assert!(!s3.object_lock_enabled().await.unwrap());
    assert_eq!(s3.object_lock_configuration().await.unwrap(), None);
    // Object Lock cannot come later: RGW answers the create with 200, the client checks.
    let e = s3.create_bucket(true).await.unwrap_err();
    eprintln!("Object Lock asked for an existing plain bucket: {e}");
    assert!(matches!(e, S3Error::ObjectLockMissing { .. }), "{e}");
    assert!(!e.is_retriable());
    let e = s3
        .put_default_retention(LockMode::Compliance, 1)
        .await
        .unwrap_err();
    eprintln!("default retention without Object Lock: {e}");
    assert!(!e.is_retriable(), "{e}");
    s3.put_object("a/b", b"x").await.unwrap();
    let e = s3.object_retention("a/b").await.unwrap_err();
    eprintln!("retention in a bucket without Object Lock: {e}");
    assert_eq!(e.code(), Some("InvalidRequest"), "{e}");
    s3.delete_object("a/b", None).await.unwrap();
    assert!(
        s3.list_object_versions("a/").await.unwrap().is_empty(),
        "unversioned: deleted is gone"
    );

    // Wrong credentials: refused, not retriable, and the secret never shows.
    let wrong = S3Control::new(
        &rig.endpoint(),
        rig.region(),
        "plain-bucket",
        rig.access_key(),
        "not-the-secret",
        None,
        true,
    )
    .unwrap();
    let e = wrong.versioning_enabled().await.unwrap_err();
    eprintln!("wrong secret: {e}");
    assert_eq!(e.code(), Some("SignatureDoesNotMatch"), "{e}");
    assert!(!e.is_retriable());
    assert!(!format!("{e} {e:?}").contains("not-the-secret"));

    let missing = client(&rig.endpoint(), rig, "no-such-bucket");
    assert!(!missing.bucket_exists().await.unwrap());
    let e = missing.versioning_enabled().await.unwrap_err();
    assert_eq!(e.code(), Some("NoSuchBucket"), "{e}");
}

#[tokio::test]
async fn faults_through_the_proxy() {
    let (rig, _use) = shared_rig().await;
    let proxy = FaultProxy::start(rig.rgw_addr());
    let s3 = client(&proxy.endpoint(), rig, "via-proxy");

    // Pass-through.
    s3.create_bucket(true).await.unwrap();
    assert!(s3.versioning_enabled().await.unwrap());
    let body = vec![7u8; 256 * 1024];
    s3.put_object("big", &body).await.unwrap();
    let seen = proxy.requests();
    assert!(seen >= 3, "{seen}");

    // HTTP 500 with an S3 error body: retriable, with the code.
    proxy.fail_next(1);
    let e = s3.versioning_enabled().await.unwrap_err();
    eprintln!("injected 500: {e}");
    assert!(e.is_retriable(), "{e}");
    assert_eq!(e.code(), Some("InternalError"));
    assert!(matches!(e, S3Error::Service { status: 500, .. }), "{e}");
    // A 500 on a HEAD (no body) and on a PUT with a body.
    proxy.fail_next(2);
    let e = s3.bucket_exists().await.unwrap_err();
    assert!(e.is_retriable(), "{e}");
    let e = s3.put_object("big", &body).await.unwrap_err();
    assert!(e.is_retriable(), "{e}");
    assert!(s3.versioning_enabled().await.unwrap(), "back to normal");

    // The connection cut in the middle of an upload: retriable.
    proxy.reset_next(1, 10_000);
    let e = s3.put_object("big", &body).await.unwrap_err();
    eprintln!("connection cut after 10000 body bytes: {e}");
    assert!(matches!(e, S3Error::Transport { .. }), "{e}");
    assert!(e.is_retriable(), "{e}");
    // Cut before any body byte, on a GET.
    proxy.reset_next(1, 0);
    let e = s3.object_lock_configuration().await.unwrap_err();
    assert!(e.is_retriable(), "{e}");
    assert_eq!(proxy.faults_injected(), 5);

    // A slow answer still arrives.
    proxy.set_delay(Some(Duration::from_millis(300)));
    let started = Instant::now();
    assert!(s3.versioning_enabled().await.unwrap());
    assert!(started.elapsed() >= Duration::from_millis(300));
    proxy.pass_through();

    let version = s3.put_object("big", &body).await.unwrap();
    assert!(version.is_some());
    let versions = s3.list_object_versions("big").await.unwrap();
    assert_eq!(
        versions.len(),
        2,
        "the two uploads that got through: {versions:?}"
    );
    assert!(proxy.requests() > seen + 8);
}

#[tokio::test]
async fn rgw_restart_keeps_the_data() {
    let (rig, _exclusive) = exclusive_rig().await;
    let s3 = client(&rig.endpoint(), rig, "restart");
    s3.create_bucket(true).await.unwrap();
    s3.put_object("kept", b"survives a restart").await.unwrap();
    s3.put_legal_hold("kept", true).await.unwrap();

    rig.kill_rgw().unwrap();
    let e = s3.legal_hold("kept").await.unwrap_err();
    eprintln!("RGW down: {e}");
    assert!(e.is_retriable(), "{e}");
    assert!(matches!(e, S3Error::Transport { .. }), "{e}");

    let started = Instant::now();
    rig.start_rgw().unwrap();
    eprintln!("RGW restarted in {:.1} s", started.elapsed().as_secs_f64());
    assert!(s3.legal_hold("kept").await.unwrap());
    assert_eq!(s3.list_object_versions("").await.unwrap().len(), 1);
}
