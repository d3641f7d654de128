use super::*;

#[test]
fn keys() {
    let sha = Sha256::digest(b"x");
    let h = sha.to_hex();
    assert_eq!(
        layout::original(&sha),
        format!("originals/sha256/{}/{}/{h}", &h[..2], &h[2..4])
    );
    let st = StationId::new("dock-01").unwrap();
    assert_eq!(
        layout::log_segment(&st, 0, 12),
        "stations/dock-01/log/segments/00000000000000000000-00000000000000000012.jsonl"
    );
    assert_eq!(
        layout::segment_range(
            "stations/dock-01/log/segments/00000000000000000003-00000000000000000012.jsonl"
        ),
        Some((3, 12))
    );
}

/// The Object Lock calls sign with the store's own credential provider: here the static
/// keys of the settings, with their session token, for the settings' region.
#[tokio::test]
async fn object_lock_calls_sign_with_the_stores_credentials() {
    use crate::testhttp::{Canned, TestServer};
    let server = TestServer::start(vec![
        Canned::new(200, ""),
        Canned::new(200, "<LegalHold><Status>ON</Status></LegalHold>"),
    ]);
    let store = EvidenceStore::open(&StoreSettings {
        url: "s3://evidence/prefix".into(),
        endpoint: Some(server.endpoint()),
        region: Some("eu-test-1".into()),
        allow_http: true,
        path_style: true,
        access_key_id: Some("AKIASTORE".into()),
        secret_access_key: Some("secret".into()),
        session_token: Some("tok".into()),
        max_retries: 0,
    })
    .unwrap();
    assert!(store.set_legal_hold("cases/a.json", true).await.unwrap());
    assert_eq!(store.legal_hold("cases/a.json").await.unwrap(), Some(true));
    let seen = server.seen();
    assert_eq!(seen[0].target, "/evidence/prefix/cases/a.json?legal-hold=");
    let auth = seen[0].header("authorization").unwrap();
    assert!(
        auth.starts_with("AWS4-HMAC-SHA256 Credential=AKIASTORE/")
            && auth.contains("/eu-test-1/s3/aws4_request"),
        "{auth}"
    );
    assert_eq!(seen[1].header("x-amz-security-token"), Some("tok"));
}

#[test]
fn urls_lose_their_credentials() {
    assert_eq!(display_url("s3://bucket/prefix?x=1"), "s3://bucket/prefix");
    assert_eq!(display_url("https://user:pw@host/p"), "https://host/p");
    assert_eq!(
        display_url("file:///var/lib/evidock/store"),
        "file:///var/lib/evidock/store"
    );
}

/// A reviewer's read-back writes nothing: it works on a store mounted read-only (as a review
/// desk mounts the evidence store) or owned by another user. Needs CAP_SYS_ADMIN to mount.
#[tokio::test]
async fn a_read_back_works_on_a_read_only_store() {
    use rustix::mount::{MountFlags, UnmountFlags, mount_bind, mount_remount, unmount};
    let tmp = tempfile::tempdir().unwrap();
    let rw = tmp.path().join("rw");
    let ro = tmp.path().join("ro");
    std::fs::create_dir_all(&ro).unwrap();
    let writer = EvidenceStore::open(&StoreSettings {
        url: format!("file://{}", rw.display()),
        ..Default::default()
    })
    .unwrap();
    let data = Bytes::from_static(b"evidence bytes");
    let key = layout::original(&Sha256::digest(&data));
    writer.put_once(&key, data).await.unwrap();
    if let Err(e) = mount_bind(&rw, &ro) {
        assert_eq!(e, rustix::io::Errno::PERM, "{e}");
        eprintln!("skipped: mounting needs CAP_SYS_ADMIN");
        return;
    }
    mount_remount(&ro, MountFlags::BIND | MountFlags::RDONLY, "").unwrap();
    let reader = EvidenceStore::open(&StoreSettings {
        url: format!("file://{}", ro.display()),
        ..Default::default()
    })
    .unwrap();
    let got = reader.read_back(&key).await;
    unmount(&ro, UnmountFlags::DETACH).unwrap();
    assert_eq!(got.unwrap().1, 14);
}

#[tokio::test]
async fn local_store_put_once_read_back_conflict() {
    let tmp = tempfile::tempdir().unwrap();
    let s = EvidenceStore::open(&StoreSettings {
        url: format!("file://{}", tmp.path().display()),
        ..Default::default()
    })
    .unwrap();
    let data = Bytes::from_static(b"evidence bytes");
    let sha = Sha256::digest(&data);
    let key = layout::original(&sha);
    s.put_once(&key, data.clone()).await.unwrap();
    s.put_once(&key, data.clone()).await.unwrap();
    assert_eq!(s.read_back(&key).await.unwrap(), (sha, 14));
    assert_eq!(s.head(&key).await.unwrap(), Some(14));
    let e = s
        .put_once(&key, Bytes::from_static(b"other"))
        .await
        .unwrap_err();
    assert!(matches!(e, StoreError::Conflict { .. }), "{e}");
    assert_eq!(s.list("originals").await.unwrap(), vec![key.clone()]);
    let p = tmp.path().join(&key);
    use std::os::unix::fs::PermissionsExt as _;
    assert_eq!(
        std::fs::metadata(p).unwrap().permissions().mode() & 0o777,
        0o440
    );
    assert!(matches!(s.head("missing").await, Ok(None)));
}
