//! Rotating the station key: one custody log that verifies with either key, packages that
//! verify after the rotation, a hand-over that cannot be dropped, and a rotation interrupted by
//! a crash finished (or discarded) at the next start.
// Test helpers panic on purpose: a failed expectation is a failed test.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use evidock_tests::bins::{trust_file, verify};
use evidock_tests::station::{TestStation, of_kind};
use evidock_tests::tsa::TsaRig;
use serde_json::Value;
use std::path::Path;

const CASE: &str = "晋应急罚〔2023〕102号";

fn codes(v: &Value) -> Vec<String> {
    v["findings"]["findings"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| f["code"].as_str().unwrap().to_string())
        .collect()
}

fn pin(dir: &Path, name: &str, key: &str, tsa_root: &Path) -> std::path::PathBuf {
    trust_file(&dir.join(name), key, Some(tsa_root))
}

fn rotate(st: &TestStation, reason: &str) -> Value {
    st.json(&[
        "station",
        "rotate-key",
        "--by",
        "admin01",
        "--reason",
        reason,
    ])
}

fn ingest(st: &TestStation, serial: &str, hue: u32) {
    st.ingest_clips(serial, "350500", 1, &[(&format!("{serial}_0001.MP4"), hue)]);
}

#[test]
fn a_rotated_key_keeps_one_log_that_verifies_with_either_key() {
    let tsa = TsaRig::start().unwrap();
    let st = TestStation::with_config(&format!(
        "station_id = \"dock-07\"\nutc_offset = \"+08:00\"\n{}\n[[camera]]\nname = \"any\"\ndriver = \"mass-storage\"\nallow = [\"*\"]\n",
        tsa.station_config()
    ));
    ingest(&st, "ZFY0701", 0);
    let old = st.json(&["station", "show"])["public_key"]
        .as_str()
        .unwrap()
        .to_string();

    // Refused without a reason; then rotated.
    assert_eq!(
        st.run(&["station", "rotate-key", "--by", "admin01", "--reason", " "])
            .code,
        2
    );
    let rotated = rotate(&st, "年度更换");
    assert_eq!(rotated["old_key"], old.as_str());
    let new = rotated["new_key"].as_str().unwrap().to_string();
    assert_ne!(new, old);
    assert_eq!(st.json(&["station", "show"])["public_key"], new.as_str());
    assert!(!st.data().join("station.key.new").exists());
    let events = st.events();
    let ev = of_kind(&events, "key-rotated");
    assert_eq!(ev.len(), 1);
    assert_eq!(ev[0]["payload"]["new_key"], new.as_str());
    assert_eq!(ev[0]["actor"]["id"], "admin01");
    assert_eq!(
        rotated["handover_checkpoint"],
        ev[0]["seq"].as_u64().unwrap() + 1
    );

    // The station goes on with the new key.
    ingest(&st, "ZFY0702", 120);
    st.import_case_now(CASE, "安全检查", "350500");

    // The log: whole, with either key pinned, and the rotation said.
    let log = st.log_dir();
    for (name, key) in [("old.toml", &old), ("new.toml", &new)] {
        let trust = pin(st.dir.path(), name, key, &tsa.ca_pem);
        let (code, v) = verify(&log, Some(&trust));
        assert_eq!(code, 0, "{name}: {v}");
        assert_eq!(v["integrity_proven"], true, "{name}: {v}");
        assert!(codes(&v).contains(&"key.rotated".to_string()), "{v}");
        assert!(!codes(&v).contains(&"key.untrusted".to_string()), "{v}");
    }
    // A key of the same name that is not in the chain anchors nothing.
    let impostor = TestStation::with_config("station_id = \"dock-07\"\n");
    let stranger = impostor.json(&["station", "show"])["public_key"]
        .as_str()
        .unwrap()
        .to_string();
    let trust = pin(st.dir.path(), "stranger.toml", &stranger, &tsa.ca_pem);
    let (code, v) = verify(&log, Some(&trust));
    assert_eq!(code, 1, "{v}");
    assert!(codes(&v).contains(&"key.untrusted".to_string()), "{v}");

    // A package made after the rotation: its earlier, time-stamped checkpoints were signed by
    // the old key; the rotation event it carries vouches for that key.
    let pkg = st.dir.path().join("pkg");
    let ran = st.run(&[
        "export",
        "--case",
        CASE,
        "--out",
        pkg.to_str().unwrap(),
        "--by",
        "法制员01",
    ]);
    assert_eq!(ran.code, 0, "{}\n{}", ran.stdout, ran.stderr);
    let trust = pin(st.dir.path(), "pkg.toml", &new, &tsa.ca_pem);
    let (code, v) = verify(&pkg, Some(&trust));
    assert_eq!(code, 0, "{v}");
    let in_pkg = std::fs::read_to_string(pkg.join("custody/events.jsonl")).unwrap();
    assert!(in_pkg.contains("\"key-rotated\""));
    let handover = rotated["handover_checkpoint"].as_u64().unwrap();
    let old_signed = std::fs::read_dir(pkg.join("custody/checkpoints"))
        .unwrap()
        .flatten()
        .filter_map(|e| {
            e.file_name()
                .to_string_lossy()
                .strip_suffix(".note")?
                .parse::<u64>()
                .ok()
        })
        .filter(|size| *size < handover)
        .count();
    assert!(
        old_signed > 0,
        "the package carries a checkpoint the old key signed"
    );

    // Without its hand-over checkpoint the rotation is not vouched for.
    let copy = st.dir.path().join("log-copy");
    copy_dir(&log, &copy);
    let note = copy.join(format!("checkpoints/{handover:020}.note"));
    std::fs::remove_file(&note).unwrap();
    let _ = std::fs::remove_file(copy.join(format!("timestamps/{handover:020}.tsr")));
    let (code, v) = verify(&copy, None);
    assert_eq!(code, 1, "{v}");
    assert!(
        codes(&v).contains(&"key.handover-missing".to_string()),
        "{v}"
    );
}

#[test]
fn a_rotation_interrupted_by_a_crash_is_finished_or_discarded_at_the_next_start() {
    let st = TestStation::with_config(
        "station_id = \"dock-08\"\n\n[[camera]]\nname = \"any\"\ndriver = \"mass-storage\"\nallow = [\"*\"]\n",
    );
    ingest(&st, "ZFY0801", 0);
    let key = st.data().join("station.key");
    let staged = st.data().join("station.key.new");
    let old_secret = std::fs::read(&key).unwrap();
    let old = st.json(&["station", "show"])["public_key"]
        .as_str()
        .unwrap()
        .to_string();

    // Crash before the rotation was logged: a staged key the log never heard of is discarded.
    let other_st = TestStation::with_config("station_id = \"dock-08\"\n");
    other_st.json(&["station", "show"]);
    std::fs::copy(other_st.data().join("station.key"), &staged).unwrap();
    assert_eq!(st.json(&["station", "show"])["public_key"], old.as_str());
    assert!(!staged.exists(), "the unlogged staged key is discarded");

    // Crash after the rotation was logged, before the new key replaced the old file.
    let rotated = rotate(&st, "test");
    let new = rotated["new_key"].as_str().unwrap().to_string();
    std::fs::rename(&key, &staged).unwrap();
    std::fs::write(&key, &old_secret).unwrap();
    use std::os::unix::fs::PermissionsExt as _;
    std::fs::set_permissions(&key, std::fs::Permissions::from_mode(0o600)).unwrap();
    assert_eq!(st.json(&["station", "show"])["public_key"], new.as_str());
    assert!(!staged.exists());
    ingest(&st, "ZFY0802", 60);
    evidock_tests::bins::verify_unpinned(&st.log_dir());
}

fn copy_dir(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).unwrap();
    for e in std::fs::read_dir(from).unwrap().flatten() {
        let p = e.path();
        if p.is_dir() {
            copy_dir(&p, &to.join(e.file_name()));
        } else {
            std::fs::copy(&p, to.join(e.file_name())).unwrap();
        }
    }
}
