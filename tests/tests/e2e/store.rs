//! The evidence store: one conformance suite run against every backend (the local filesystem and
//! a real Ceph RGW started by the tests), then the faults a station meets: the S3 front end killed
//! mid-upload, 500s, slow answers and connection resets, wrong credentials, an altered object, a
//! full local disk.
// Test helpers panic on purpose: a failed expectation is a failed test.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use bytes::Bytes;
use evidock_store::objects::{EvidenceStore, StoreError, StoreSettings, layout};
use evidock_store::s3control::{LockMode, S3Control};
use evidock_tests::bins;
use evidock_tests::ceph::CephRig;
use evidock_tests::faultproxy::FaultProxy;
use evidock_tests::station::{self, TestStation, of_kind};
use evidock_verify::id::Sha256;
use std::path::Path;
use std::sync::atomic::{AtomicUsize, Ordering};

static BUCKETS: AtomicUsize = AtomicUsize::new(0);

/// A fresh bucket on the shared Ceph rig (optionally with Object Lock).
async fn bucket(endpoint: &str, lock: bool) -> String {
    let rig = CephRig::shared();
    let name = format!(
        "evidock-{}-{}",
        std::process::id(),
        BUCKETS.fetch_add(1, Ordering::SeqCst)
    );
    let c = S3Control::new(
        endpoint,
        rig.region(),
        &name,
        rig.access_key(),
        rig.secret_key(),
        None,
        true,
    )
    .unwrap();
    c.create_bucket(lock).await.unwrap();
    name
}

fn s3_settings(endpoint: &str, bucket: &str) -> StoreSettings {
    CephRig::shared().store_settings(endpoint, bucket)
}

fn data(n: usize, seed: u8) -> Bytes {
    Bytes::from(
        (0..n)
            .map(|i| (i as u8).wrapping_mul(31).wrapping_add(seed))
            .collect::<Vec<u8>>(),
    )
}

/// What every backend must do.
async fn conformance(settings: &StoreSettings) {
    let store = &EvidenceStore::open(settings).unwrap();
    // Write once, read back, same bytes again is success, other bytes a conflict.
    let small = data(70_000, 1);
    let sha = Sha256::digest(&small);
    let key = layout::original(&sha);
    assert_eq!(store.head(&key).await.unwrap(), None);
    store.put_once(&key, small.clone()).await.unwrap();
    store.put_once(&key, small.clone()).await.unwrap();
    assert_eq!(store.read_back(&key).await.unwrap(), (sha, 70_000));
    assert_eq!(store.head(&key).await.unwrap(), Some(70_000));
    match store.put_once(&key, data(10, 2)).await {
        Err(StoreError::Conflict {
            found, expected, ..
        }) => {
            assert_eq!(found, sha);
            assert_eq!(expected, Sha256::digest(&data(10, 2)));
        }
        other => panic!("{}: expected a conflict, got {other:?}", store.url()),
    }
    // Unicode keys (case IDs go into keys later) list back exactly.
    let ukey = "stations/dock-01/cases/晋应急罚〔2023〕102号.json";
    store
        .put_once(ukey, Bytes::from_static(b"{}"))
        .await
        .unwrap();
    let listed = store.list("stations/dock-01").await.unwrap();
    assert_eq!(listed, vec![ukey.to_string()], "{}", store.url());
    assert_eq!(
        store.get_bytes(ukey).await.unwrap(),
        Bytes::from_static(b"{}")
    );
    assert!(matches!(
        store.read_back("missing/object").await,
        Err(StoreError::NotFound { .. })
    ));

    // Multipart, resumed by a second client from the upload ID and the part ETags alone, as the
    // uploader does after a restart.
    if store.has_multipart() {
        let big = data(11 << 20, 3);
        let sha = Sha256::digest(&big);
        let key = layout::original(&sha);
        let id = store.create_multipart(&key).await.unwrap();
        let p0 = store
            .put_part(&key, &id, 0, big.slice(..5 << 20))
            .await
            .unwrap();
        let again = EvidenceStore::open(settings).unwrap();
        let p1 = again
            .put_part(&key, &id, 1, big.slice(5 << 20..10 << 20))
            .await
            .unwrap();
        let p2 = again
            .put_part(&key, &id, 2, big.slice(10 << 20..))
            .await
            .unwrap();
        again
            .complete_multipart(&key, &id, vec![p0, p1, p2])
            .await
            .unwrap();
        assert_eq!(again.read_back(&key).await.unwrap(), (sha, 11 << 20));
        // An abandoned upload is aborted.
        let k2 = layout::original(&Sha256::digest(b"abandoned"));
        let id2 = again.create_multipart(&k2).await.unwrap();
        again
            .put_part(&k2, &id2, 0, data(5 << 20, 4))
            .await
            .unwrap();
        again.abort_multipart(&k2, &id2).await.unwrap();
        assert_eq!(again.head(&k2).await.unwrap(), None);
    }
}

#[tokio::test(flavor = "current_thread")]
async fn conformance_local_filesystem() {
    let tmp = tempfile::tempdir().unwrap();
    conformance(&StoreSettings {
        url: format!("file://{}", tmp.path().display()),
        ..Default::default()
    })
    .await;
    // Local objects are fsynced and read-only.
    use std::os::unix::fs::PermissionsExt as _;
    let sha = Sha256::digest(&data(70_000, 1));
    let p = tmp.path().join(layout::original(&sha));
    assert_eq!(
        std::fs::metadata(p).unwrap().permissions().mode() & 0o777,
        0o440
    );
}

#[tokio::test(flavor = "current_thread")]
async fn conformance_ceph_rgw() {
    let rig = CephRig::shared();
    let _gateway = rig.gateway().read().await;
    let b = bucket(&rig.endpoint(), false).await;
    conformance(&s3_settings(&rig.endpoint(), &b)).await;
}

fn ceph_config(endpoint: &str, bucket: &str, extra: &str) -> String {
    format!(
        "[store]\nurl = \"s3://{bucket}/evidence\"\nendpoint = \"{endpoint}\"\nregion = \"us-east-1\"\nallow_http = true\npart_size_mib = 5\n{extra}\n[acquire]\nsync_every_mib = 8\n\n[[camera]]\nname = \"sim\"\ndriver = \"zfy-sim\"\nallow = [\"*\"]\n"
    )
}

fn with_keys(c: &mut std::process::Command) -> &mut std::process::Command {
    let rig = CephRig::shared();
    c.env("AWS_ACCESS_KEY_ID", rig.access_key())
        .env("AWS_SECRET_ACCESS_KEY", rig.secret_key())
}

/// Download a station's published directory from the store, for `evidock-verify`.
async fn download_station(store: &EvidenceStore, station: &str, to: &Path) {
    for key in store.list(&format!("stations/{station}")).await.unwrap() {
        let rel = key.strip_prefix(&format!("stations/{station}/")).unwrap();
        let p = to.join(rel);
        std::fs::create_dir_all(p.parent().unwrap()).unwrap();
        std::fs::write(&p, store.get_bytes(&key).await.unwrap()).unwrap();
    }
}

#[test]
fn object_lock_retention_and_a_verifiable_store_on_ceph() {
    let rig = CephRig::shared();
    let _gateway = rig.gateway().blocking_read();
    let rt = evidock_tests::runtime();
    let name = format!("evidock-lock-{}", std::process::id());
    let st = TestStation::with_config(&ceph_config(
        &rig.endpoint(),
        &name,
        "[store.retention]\nmode = \"compliance\"\ndays = 1\n",
    ));
    // `store init` creates the bucket with Object Lock and the default retention.
    let ran = bins::run(with_keys(&mut st.cmd(&["store", "init", "--json"])));
    assert_eq!(ran.code, 0, "{}", ran.stderr);
    assert_eq!(ran.json()["default_retention"]["mode"], "COMPLIANCE");

    let fw = station::firmware("ZFY0700", "350800");
    let files = station::recordings(&fw, 2, 12 << 20, 70);
    let card = station::camera(st.dir.path(), fw, files);
    let ran = bins::run(with_keys(&mut st.cmd(&[
        "ingest",
        card.to_str().unwrap(),
        "--json",
    ])));
    let out = ran.json();
    assert_eq!(out["outcome"], "released", "{}", ran.stderr);
    assert_eq!(
        out["uploads"]["uploaded"].as_array().unwrap().len(),
        3,
        "{out:#}"
    );
    let events = st.events();
    let uploaded = of_kind(&events, "uploaded");
    assert_eq!(uploaded.len(), 3);

    // Every original is locked: retention applied, deleting its version refused.
    let c = S3Control::new(
        &rig.endpoint(),
        rig.region(),
        &name,
        rig.access_key(),
        rig.secret_key(),
        None,
        true,
    )
    .unwrap();
    let key = uploaded[0]["payload"]["object"]
        .as_str()
        .unwrap()
        .to_string();
    let versions = rt.block_on(c.list_object_versions(&key)).unwrap();
    let (_, version) = versions.iter().find(|(k, _)| *k == key).unwrap();
    let ret = rt.block_on(c.object_retention(&key)).unwrap();
    assert!(matches!(ret, Some((LockMode::Compliance, _))), "{ret:?}");
    let del = rt.block_on(c.delete_object(&key, Some(version)));
    assert!(del.is_err(), "a locked original was deleted");

    // Legal hold (what an open case switches on): enforced by Object Lock, and released.
    let store = EvidenceStore::open(&s3_settings(&rig.endpoint(), &name)).unwrap();
    let rel = key.trim_start_matches("evidence/").to_string();
    assert!(rt.block_on(store.set_legal_hold(&rel, true)).unwrap());
    assert_eq!(rt.block_on(store.legal_hold(&rel)).unwrap(), Some(true));
    assert!(rt.block_on(store.set_legal_hold(&rel, false)).unwrap());
    assert_eq!(rt.block_on(store.legal_hold(&rel)).unwrap(), Some(false));
    // A local store cannot hold, and says so.
    let local = tempfile::tempdir().unwrap();
    let ls = EvidenceStore::open(&StoreSettings {
        url: format!("file://{}", local.path().display()),
        ..Default::default()
    })
    .unwrap();
    assert!(!rt.block_on(ls.set_legal_hold("x", true)).unwrap());

    // A case register links both recordings to an open case: their objects go on legal hold
    // in the store; closing the case releases them (they stay kept: linked evidence is
    // permanent).
    let now = chrono::Utc::now();
    let register = st.dir.path().join("cases.csv");
    let write_register = |status: &str| {
        std::fs::write(
            &register,
            format!(
                "case_id,officers,window_start,window_end,status\n晋应急罚〔2026〕9号,350800,{},{},{status}\n",
                (now - chrono::Duration::hours(1)).format("%Y-%m-%dT%H:%M:%SZ"),
                (now + chrono::Duration::hours(1)).format("%Y-%m-%dT%H:%M:%SZ"),
            ),
        )
        .unwrap()
    };
    write_register("open");
    let ran = bins::run(with_keys(&mut st.cmd(&[
        "case",
        "import",
        "--by",
        "admin01",
        register.to_str().unwrap(),
        "--json",
    ])));
    assert_eq!(ran.code, 0, "{}", ran.stderr);
    assert_eq!(
        ran.json()["linked"].as_array().unwrap().len(),
        2,
        "{}",
        ran.stdout
    );
    let events = st.events();
    let linked: Vec<&serde_json::Value> = of_kind(&events, "linked")
        .iter()
        .map(|e| &e["payload"]["evidence"])
        .collect();
    let originals: Vec<String> = uploaded
        .iter()
        .filter(|e| {
            e["payload"]["role"] == "original" && linked.contains(&&e["subject"]["evidence"])
        })
        .map(|e| {
            e["payload"]["object"]
                .as_str()
                .unwrap()
                .trim_start_matches("evidence/")
                .to_string()
        })
        .collect();
    assert_eq!(originals.len(), 2);
    for k in &originals {
        assert_eq!(rt.block_on(store.legal_hold(k)).unwrap(), Some(true), "{k}");
    }
    let ev = of_kind(&st.events(), "linked")[0]["payload"]["evidence"]
        .as_str()
        .unwrap()
        .to_string();
    let shown = st.json(&["evidence", "show", &ev]);
    assert_eq!(shown["objects"][0]["legal_hold"], "on", "{shown}");
    write_register("closed");
    let ran = bins::run(with_keys(&mut st.cmd(&[
        "case",
        "import",
        "--by",
        "admin01",
        register.to_str().unwrap(),
    ])));
    assert_eq!(ran.code, 0, "{}", ran.stderr);
    for k in &originals {
        assert_eq!(
            rt.block_on(store.legal_hold(k)).unwrap(),
            Some(false),
            "{k}"
        );
    }
    let shown = st.json(&["evidence", "show", &ev]);
    assert_eq!(shown["retention"]["legal_hold"], false);
    assert_eq!(shown["retention"]["retain_until"], serde_json::Value::Null);

    // The store alone verifies: the station's published custody log, downloaded.
    let station = st.json(&["station", "show"])["station"]
        .as_str()
        .unwrap()
        .to_string();
    let dl = tempfile::tempdir().unwrap();
    rt.block_on(download_station(&store, &station, dl.path()));
    bins::verify_unpinned(dl.path());
    // … and each record names its original, whose bytes read back to the recorded digest.
    for key in rt
        .block_on(store.list(&format!("stations/{station}/records")))
        .unwrap()
    {
        let rec: serde_json::Value =
            serde_json::from_slice(&rt.block_on(store.get_bytes(&key)).unwrap()).unwrap();
        let (sha, _) = rt
            .block_on(store.read_back(rec["original"].as_str().unwrap()))
            .unwrap();
        assert_eq!(rec["acquired"]["digests"]["sha256"], sha.to_hex());
    }
}

#[test]
fn radosgw_killed_mid_upload_resumes_without_duplicates() {
    let rig = CephRig::shared();
    // Other tests would see the gateway down: they wait while this one runs.
    let _gateway = rig.gateway().blocking_write();
    let rt = evidock_tests::runtime();
    let name = rt.block_on(bucket(&rig.endpoint(), false));
    // Slow the upload down so the kill lands mid-file: 4 MB/s for 40 MiB in 5 MiB parts.
    let st = TestStation::with_config(&ceph_config(
        &rig.endpoint(),
        &name,
        "bandwidth_bytes_per_sec = 4000000\nparallel = 1\n",
    ));
    let fw = station::firmware("ZFY0701", "350801");
    let files = station::recordings(&fw, 1, 40 << 20, 71);
    let card = station::camera(st.dir.path(), fw, files);
    assert_eq!(
        st.json(&["ingest", card.to_str().unwrap(), "--no-upload"])["outcome"],
        "released"
    );

    let mut child = with_keys(&mut st.cmd(&["upload"])).spawn().unwrap();
    let parts_before = || -> (Option<String>, usize) {
        let s = st.json(&["store", "status"]);
        let big = s
            .as_array()
            .unwrap()
            .iter()
            .find(|r| r["size"].as_u64() == Some(40 << 20))
            .cloned()
            .unwrap();
        (
            big["multipart"]["id"].as_str().map(str::to_string),
            big["multipart"]["parts"].as_array().map_or(0, Vec::len),
        )
    };
    st.wait_for(60, "two parts uploaded", || parts_before().1 >= 2);
    rig.kill_rgw().unwrap();
    let _ = child.wait();
    let (id_at_kill, done_at_kill) = parts_before();
    assert!((2..8).contains(&done_at_kill), "{done_at_kill}");
    rig.start_rgw().unwrap();
    // The admin changes the part size while the upload waits: the resume must cut the file at
    // the size the upload was started with (5 MiB), or it completes a wrong object under a
    // write-once key and the read-back fails it for good.
    let cfg = st.dir.path().join("evidock.toml");
    let text = std::fs::read_to_string(&cfg).unwrap();
    std::fs::write(&cfg, text.replace("part_size_mib = 5", "part_size_mib = 6")).unwrap();

    let ran = bins::run(with_keys(&mut st.cmd(&["upload", "--json"])));
    let out = ran.json();
    assert_eq!(out["failed"].as_array().unwrap().len(), 0, "{out:#}");
    let (id_after, parts_after) = parts_before();
    assert_eq!(
        id_after, id_at_kill,
        "the multipart upload was resumed, not restarted"
    );
    assert_eq!(parts_after, 8);
    let events = st.events();
    let up: Vec<_> = of_kind(&events, "uploaded")
        .into_iter()
        .filter(|e| e["payload"]["role"] == "original")
        .collect();
    assert_eq!(
        up.len(),
        2,
        "each original uploaded exactly once (40 MiB clip + marker)"
    );
    let store = EvidenceStore::open(&s3_settings(&rig.endpoint(), &name)).unwrap();
    for e in &up {
        let (sha, _) = rt
            .block_on(
                store.read_back(
                    e["payload"]["object"]
                        .as_str()
                        .unwrap()
                        .trim_start_matches("evidence/"),
                ),
            )
            .unwrap();
        assert_eq!(e["payload"]["sha256"], sha.to_hex());
    }
}

/// A 30 MiB original of `serial`'s camera ingested, its upload (5 MiB parts) killed once a
/// part is in the store: the station, the upload ID under way and the object's key.
fn killed_mid_multipart(
    rig: &CephRig,
    bucket: &str,
    serial: &str,
    seed: u64,
) -> (TestStation, String, String) {
    let st = TestStation::with_config(&ceph_config(
        &rig.endpoint(),
        bucket,
        "bandwidth_bytes_per_sec = 4000000\nparallel = 1\n",
    ));
    let fw = station::firmware(serial, "350803");
    let files = station::recordings(&fw, 1, 30 << 20, seed);
    let card = station::camera(st.dir.path(), fw, files);
    assert_eq!(
        st.json(&["ingest", card.to_str().unwrap(), "--no-upload"])["outcome"],
        "released"
    );
    let mut child = with_keys(&mut st.cmd(&["upload"])).spawn().unwrap();
    st.wait_for(60, "a part uploaded", || {
        big_row(&st)["multipart"]["parts"]
            .as_array()
            .is_some_and(|p| !p.is_empty())
    });
    let _ = child.kill();
    let _ = child.wait();
    let row = big_row(&st);
    let id = row["multipart"]["id"].as_str().unwrap().to_string();
    let key = row["key"].as_str().unwrap().to_string();
    (st, id, key)
}

/// An `evidock upload --json` pass with nothing failed and nothing left to retry.
fn settled(out: &serde_json::Value) -> bool {
    ["failed", "retrying"]
        .iter()
        .all(|k| out[k].as_array().is_some_and(Vec::is_empty))
}

/// The upload queue's row of the 30 MiB original.
fn big_row(st: &TestStation) -> serde_json::Value {
    st.json(&["store", "status"])
        .as_array()
        .unwrap()
        .iter()
        .find(|r| r["size"].as_u64() == Some(30 << 20))
        .cloned()
        .unwrap()
}

/// A part size raised past the file's size while its upload waits: the upload stays the
/// multipart upload it was (same ID, its parts), never sent again whole beside the parts
/// already in the store.
#[test]
fn an_upload_under_way_stays_multipart_when_the_part_size_grows_past_it() {
    let rig = CephRig::shared();
    let _gateway = rig.gateway().blocking_read();
    let rt = evidock_tests::runtime();
    let name = rt.block_on(bucket(&rig.endpoint(), false));
    let (st, id, _) = killed_mid_multipart(rig, &name, "ZFY0704", 74);
    let cfg = st.dir.path().join("evidock.toml");
    let text = std::fs::read_to_string(&cfg).unwrap();
    assert!(text.contains("part_size_mib = 5"), "{text}");
    std::fs::write(
        &cfg,
        text.replace("part_size_mib = 5", "part_size_mib = 64"),
    )
    .unwrap();
    let out = bins::run(with_keys(&mut st.cmd(&["upload", "--json"]))).json();
    assert!(settled(&out), "{out:#}");
    let row = big_row(&st);
    assert_eq!(row["state"], "uploaded", "{row:#}");
    assert_eq!(
        row["multipart"]["id"].as_str(),
        Some(id.as_str()),
        "resumed under its upload ID: {row:#}"
    );
    assert_eq!(row["multipart"]["parts"].as_array().map(Vec::len), Some(6));
}

/// S3 forgets multipart uploads (an abort by a lifecycle rule, an admin's cleanup): the upload
/// ID in the journal then names nothing, and every part sent to it is refused (404
/// `NoSuchUpload`). The upload must start over under a new ID, not retry the dead one forever.
#[test]
fn a_multipart_upload_the_store_forgot_is_started_over() {
    let rig = CephRig::shared();
    let _gateway = rig.gateway().blocking_read();
    let rt = evidock_tests::runtime();
    let name = rt.block_on(bucket(&rig.endpoint(), false));
    let (st, dead, key) = killed_mid_multipart(rig, &name, "ZFY0703", 73);
    let store = EvidenceStore::open(&s3_settings(&rig.endpoint(), &name)).unwrap();
    rt.block_on(store.abort_multipart(&key, &dead)).unwrap();

    // A pass may fail on the dead ID (recorded, visible); the next ones must get it done.
    let mut outs = Vec::new();
    for _ in 0..3 {
        let out = bins::run(with_keys(&mut st.cmd(&["upload", "--json"]))).json();
        let done = settled(&out);
        outs.push(out);
        if done {
            break;
        }
    }
    assert!(
        settled(outs.last().unwrap()),
        "the upload never got past the forgotten upload ID {dead}: {outs:#?}"
    );
    assert_ne!(
        big_row(&st)["multipart"]["id"].as_str(),
        Some(dead.as_str()),
        "started over under a new upload ID"
    );
    let events = st.events();
    let up: Vec<_> = of_kind(&events, "uploaded")
        .into_iter()
        .filter(|e| e["payload"]["role"] == "original")
        .collect();
    assert_eq!(
        up.len(),
        2,
        "the 30 MiB clip and the marker, once each: {outs:#?}\n{:#?}",
        st.json(&["store", "status"])
    );
    for e in &up {
        let object = e["payload"]["object"].as_str().unwrap();
        let (sha, _) = rt
            .block_on(store.read_back(object.trim_start_matches("evidence/")))
            .unwrap();
        assert_eq!(e["payload"]["sha256"], sha.to_hex());
    }
}

#[test]
fn faults_are_retried_and_nothing_is_lost() {
    let rig = CephRig::shared();
    let _gateway = rig.gateway().blocking_read();
    let rt = evidock_tests::runtime();
    let name = rt.block_on(bucket(&rig.endpoint(), false));
    let proxy = FaultProxy::start(rig.rgw_addr());
    let st = TestStation::with_config(&ceph_config(&proxy.endpoint(), &name, ""));
    let fw = station::firmware("ZFY0702", "350802");
    let files = station::recordings(&fw, 3, 6 << 20, 72);
    let card = station::camera(st.dir.path(), fw, files);
    assert_eq!(
        st.json(&["ingest", card.to_str().unwrap(), "--no-upload"])["outcome"],
        "released"
    );

    // 500s, then resets mid-body, then slow answers: each pass retries what failed.
    proxy.fail_next(4);
    let first = bins::run(with_keys(&mut st.cmd(&["upload", "--json"]))).json();
    proxy.reset_next(2, 1 << 20);
    let second = bins::run(with_keys(&mut st.cmd(&["upload", "--json"]))).json();
    proxy.set_delay(Some(std::time::Duration::from_millis(300)));
    let third = bins::run(with_keys(&mut st.cmd(&["upload", "--json"]))).json();
    proxy.set_delay(None);
    let fourth = bins::run(with_keys(&mut st.cmd(&["upload", "--json"]))).json();
    assert!(
        proxy.faults_injected() >= 6,
        "faults injected: {}",
        proxy.faults_injected()
    );
    for r in [&first, &second, &third, &fourth] {
        assert!(
            r["failed"].as_array().unwrap().is_empty(),
            "a transient fault became permanent: {r:#}"
        );
    }
    let status = st.json(&["store", "status"]);
    assert!(
        status
            .as_array()
            .unwrap()
            .iter()
            .all(|r| r["state"] == "uploaded"),
        "{status:#}"
    );
    let events = st.events();
    let up = of_kind(&events, "uploaded");
    let keys: std::collections::BTreeSet<_> =
        up.iter().map(|e| e["key"].as_str().unwrap()).collect();
    assert_eq!(
        keys.len(),
        up.len(),
        "an object was logged as uploaded twice"
    );
    assert_eq!(
        up.iter()
            .filter(|e| e["payload"]["role"] == "original")
            .count(),
        4
    );
}

#[test]
fn wrong_credentials_are_a_clear_error_and_the_queue_waits() {
    let rig = CephRig::shared();
    let _gateway = rig.gateway().blocking_read();
    let rt = evidock_tests::runtime();
    let name = rt.block_on(bucket(&rig.endpoint(), false));
    let st = TestStation::with_config(&ceph_config(&rig.endpoint(), &name, ""));
    let fw = station::firmware("ZFY0703", "350803");
    let files = station::recordings(&fw, 1, 100_000, 73);
    let card = station::camera(st.dir.path(), fw, files);
    assert_eq!(
        st.json(&["ingest", card.to_str().unwrap(), "--no-upload"])["outcome"],
        "released"
    );
    let ran = bins::run(
        st.cmd(&["upload"])
            .env("AWS_ACCESS_KEY_ID", rig.access_key())
            .env("AWS_SECRET_ACCESS_KEY", "EXPIRED-OR-WRONG"),
    );
    assert_eq!(ran.code, 3, "{}", ran.stderr);
    assert!(
        ran.stderr.contains("check the credentials"),
        "{}",
        ran.stderr
    );
    assert!(
        !ran.stderr.contains("EXPIRED-OR-WRONG"),
        "a secret leaked into the output"
    );
    let status = st.json(&["store", "status"]);
    assert!(
        status
            .as_array()
            .unwrap()
            .iter()
            .all(|r| r["state"] != "failed" && r["state"] != "uploaded")
    );
    // Fixed: everything goes up.
    let ran = bins::run(with_keys(&mut st.cmd(&["upload", "--json"])));
    assert_eq!(ran.code, 0, "{}", ran.stderr);
    assert_eq!(ran.json()["uploaded"].as_array().unwrap().len(), 2);
}

#[test]
fn an_object_altered_after_upload_is_detected_by_its_read_back() {
    let tmp = tempfile::tempdir().unwrap();
    let rt = evidock_tests::runtime();
    let store_dir = tmp.path().join("store");
    let st = TestStation::with_config(&format!(
        "[store]\nurl = \"file://{}\"\n\n[[camera]]\nname = \"sim\"\ndriver = \"zfy-sim\"\nallow = [\"*\"]\n",
        store_dir.display()
    ));
    let fw = station::firmware("ZFY0704", "350804");
    let files = station::recordings(&fw, 1, 200_000, 74);
    let card = station::camera(st.dir.path(), fw, files);
    assert_eq!(
        st.json(&["ingest", card.to_str().unwrap()])["outcome"],
        "released"
    );
    let up = of_kind(&st.events(), "uploaded")
        .into_iter()
        .find(|e| e["payload"]["size"] == 200_000)
        .cloned()
        .unwrap();
    let key = up["payload"]["object"].as_str().unwrap().to_string();
    let path = store_dir.join(&key);
    let mut bytes = std::fs::read(&path).unwrap();
    bytes[1000] ^= 1;
    std::fs::remove_file(&path).unwrap();
    std::fs::write(&path, bytes).unwrap();
    let store = EvidenceStore::open(&StoreSettings {
        url: format!("file://{}", store_dir.display()),
        ..Default::default()
    })
    .unwrap();
    let (sha, _) = rt.block_on(store.read_back(&key)).unwrap();
    assert_ne!(
        sha.to_hex(),
        up["payload"]["sha256"].as_str().unwrap(),
        "the alteration went unseen"
    );
}

#[test]
fn a_full_local_store_disk_is_a_clear_error_and_leaves_nothing_half_written() {
    let tmp = tempfile::tempdir().unwrap();
    let store_dir = tmp.path().join("store");
    let Some(_disk) = station::SmallDisk::mount(&store_dir, 4) else {
        eprintln!("SKIPPED: mounting a small tmpfs for the store needs root");
        return;
    };
    let st = TestStation::with_config(&format!(
        "[store]\nurl = \"file://{}\"\n\n[[camera]]\nname = \"sim\"\ndriver = \"zfy-sim\"\nallow = [\"*\"]\n",
        store_dir.display()
    ));
    let fw = station::firmware("ZFY0705", "350805");
    let files = station::recordings(&fw, 1, 8 << 20, 75);
    let card = station::camera(st.dir.path(), fw, files);
    let out = st.json(&["ingest", card.to_str().unwrap()]);
    assert_eq!(
        out["outcome"], "released",
        "acquisition does not depend on the store"
    );
    let uploads = &out["uploads"];
    let problems: Vec<String> = uploads["retrying"]
        .as_array()
        .unwrap()
        .iter()
        .chain(uploads["failed"].as_array().unwrap())
        .map(|r| r[2].as_str().unwrap().to_string())
        .collect();
    assert_eq!(problems.len(), 1, "{uploads:#}");
    assert!(
        problems[0].contains("No space") || problems[0].contains("space"),
        "the error says the disk is full: {problems:?}"
    );
    // No half-written object at the content address.
    let big = of_kind(&st.events(), "acquired")
        .into_iter()
        .find(|e| e["payload"]["size"] == 8 << 20)
        .cloned()
        .unwrap();
    let sha: Sha256 = big["payload"]["digests"]["sha256"]
        .as_str()
        .unwrap()
        .parse()
        .unwrap();
    assert!(!store_dir.join(layout::original(&sha)).exists());
    // The original is still safe in the spool.
    assert!(
        st.data()
            .join("spool")
            .join(layout::original(&sha).replacen("originals/", "", 1))
            .exists()
    );
}

/// An `uploaded` event already in the log under an item's key (a crash after it was logged, or
/// a forger holding the station key) is taken as the upload's record only if it names this
/// very object: another object, size or SHA-256 is an error, never a silent "uploaded".
#[test]
fn an_uploaded_event_already_logged_for_other_bytes_is_refused_not_taken() {
    use evidock_store::clock::SystemClock;
    use evidock_store::key::StationKey;
    use evidock_store::log::CustodyLog;
    use evidock_verify::event::payload::{ObjectRole, UploadedPayload};
    use evidock_verify::event::{Actor, NewEvent, Subject};
    use evidock_verify::id::{EvidenceId, StationId};
    use std::sync::Arc;

    let st = TestStation::with_config(
        "station_id = \"dock-09\"\n[[camera]]\nname = \"sim\"\ndriver = \"zfy-sim\"\nallow = [\"*\"]\n",
    );
    let fw = station::firmware("ZFY0709", "350809");
    let files = station::recordings(&fw, 1, 50_000, 79);
    let card = station::camera(st.dir.path(), fw, files);
    assert_eq!(
        st.json(&["ingest", card.to_str().unwrap(), "--no-upload"])["outcome"],
        "released"
    );
    let acquired = of_kind(&st.events(), "acquired")
        .into_iter()
        .find(|e| e["payload"]["size"] == 50_000)
        .cloned()
        .unwrap();
    let ev = EvidenceId::new(acquired["subject"]["evidence"].as_str().unwrap()).unwrap();

    let station = StationId::new("dock-09").unwrap();
    let (key, _) =
        StationKey::load_or_create(&st.data().join("station.key"), None, &station).unwrap();
    let (log, _) = CustodyLog::open(
        &st.data().join("custody/dock-09"),
        Arc::new(key),
        Arc::new(SystemClock::default()),
    )
    .unwrap();
    let log = evidock_store::log::SharedLog::new(log);
    let forged = UploadedPayload {
        role: ObjectRole::Original,
        object: "evidence/originals/elsewhere".into(),
        store: "file:///elsewhere".into(),
        size: 50_000,
        sha256: Sha256([9; 32]),
        retain_until: None,
    };
    log.append(
        NewEvent::new(
            Actor::station(&station),
            Subject::Evidence(ev.clone()),
            format!("uploaded/{ev}/original"),
            &forged,
        )
        .unwrap(),
    )
    .unwrap();
    log.with(|l| l.checkpoint()).unwrap();
    drop(log);

    let ran = bins::run(&mut st.cmd(&["upload", "--json"]));
    let out = ran.json();
    let failed = out["failed"].as_array().unwrap();
    let ours = failed
        .iter()
        .find(|f| f[0] == ev.as_str())
        .unwrap_or_else(|| panic!("the upload took the forged event as its own: {out:#}"));
    assert!(
        ours[2].as_str().unwrap().contains("already records"),
        "{ours}"
    );
    let rows = st.json(&["store", "status"]);
    let row = rows
        .as_array()
        .unwrap()
        .iter()
        .find(|r| r["evidence"] == ev.as_str() && r["role"] == "original")
        .unwrap();
    assert_ne!(row["state"], "uploaded", "{row}");
}
