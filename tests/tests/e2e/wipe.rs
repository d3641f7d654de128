//! Wiping a camera only after the verified upload: through the real binary, a simulated camera
//! and the local evidence store.
// Test helpers panic on purpose: a failed expectation is a failed test.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use evidock_ingest::device::sim::SimContent;
use evidock_tests::station::{self, TestStation, of_kind};
use std::path::Path;

fn config(store: &Path, policy: &str) -> String {
    format!(
        "[store]\nurl = \"file://{}\"\n\n[[camera]]\nname = \"sim\"\ndriver = \"zfy-sim\"\nallow = [\"*\"]\nwipe = \"{policy}\"\n",
        store.display()
    )
}

fn card_files(card: &Path) -> Vec<String> {
    let mut out = vec![];
    for e in walkdir(card) {
        out.push(e.strip_prefix(card).unwrap().display().to_string());
    }
    out.sort();
    out
}

fn walkdir(d: &Path) -> Vec<std::path::PathBuf> {
    let mut v = vec![];
    for e in std::fs::read_dir(d).unwrap().flatten() {
        if e.file_type().unwrap().is_dir() {
            v.extend(walkdir(&e.path()));
        } else {
            v.push(e.path());
        }
    }
    v
}

#[test]
fn verified_uploads_are_wiped_important_files_and_failed_read_backs_are_kept() {
    let tmp = tempfile::tempdir().unwrap();
    let store = tmp.path().join("store");
    let st = TestStation::with_config(&config(&store, "after-upload"));
    let fw = station::firmware("ZFY0600", "350700");
    let mut files = station::recordings(&fw, 2, 300_000, 60);
    files.push((
        b"DCIM/100MEDIA/ZFY0600_350700_20261128070000_0009_IMP.MP4".to_vec(),
        SimContent::Bytes(vec![9; 5000]),
    ));
    // The Nashville failure: the store already holds *other* bytes where this recording's
    // content address is — the read-back cannot match, so this file must stay on the camera.
    let doomed = vec![7u8; 4096];
    files.push((
        b"DCIM/100MEDIA/ZFY0600_350700_20261128075000_0010.MP4".to_vec(),
        SimContent::Bytes(doomed.clone()),
    ));
    let sha = evidock_verify::id::Sha256::digest(&doomed);
    let planted = store.join(evidock_store::objects::layout::original(&sha));
    std::fs::create_dir_all(planted.parent().unwrap()).unwrap();
    std::fs::write(&planted, b"not the camera's bytes").unwrap();

    let card = station::camera(st.dir.path(), fw, files);
    let before = card_files(&card);
    let out = st.json(&["ingest", card.to_str().unwrap()]);
    assert_eq!(out["outcome"], "released", "{out:#}");
    let wiped = &out["wiped"];
    let deleted: Vec<&str> = wiped["deleted"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v.as_str().unwrap())
        .collect();
    // The two plain recordings were uploaded and read back: deleted. (The marker was too, and
    // was asked for, but the camera keeps its own identity file.)
    assert_eq!(deleted.len(), 2, "{wiped:#}");
    let after = card_files(&card);
    assert!(
        after.iter().any(|f| f.ends_with("_IMP.MP4")),
        "important file kept: {after:?}"
    );
    assert!(
        after.iter().any(|f| f.ends_with("_0010.MP4")),
        "failed read-back kept: {after:?}"
    );
    assert_eq!(after.len(), before.len() - 2);
    let kept: Vec<String> = wiped["kept"]
        .as_array()
        .unwrap()
        .iter()
        .map(|k| k[1].as_str().unwrap().to_string())
        .collect();
    assert!(kept.iter().any(|k| k.contains("upload failed")), "{kept:?}");
    assert!(kept.iter().any(|k| k.contains("important")), "{kept:?}");

    // Custody: the request before any delete (every file asked for, with its acquired
    // SHA-256), then one device-wiped event listing exactly the deleted files, naming the
    // request, each after its `uploaded` event.
    let events = st.events();
    let r = of_kind(&events, "wipe-requested");
    assert_eq!(r.len(), 1);
    assert_eq!(r[0]["payload"]["files"].as_array().unwrap().len(), 3);
    let w = of_kind(&events, "device-wiped");
    assert_eq!(w.len(), 1);
    assert_eq!(w[0]["payload"]["request"], r[0]["seq"]);
    let listed = w[0]["payload"]["files"].as_array().unwrap();
    assert_eq!(listed.len(), 2);
    let wipe_seq = w[0]["seq"].as_u64().unwrap();
    assert!(r[0]["seq"].as_u64().unwrap() < wipe_seq);
    for f in listed {
        let ev = f["evidence"].as_str().unwrap();
        let up = events
            .iter()
            .find(|e| e["kind"] == "uploaded" && e["subject"]["evidence"] == ev)
            .unwrap_or_else(|| panic!("{ev} wiped without an uploaded event"));
        assert!(up["seq"].as_u64().unwrap() < wipe_seq);
    }
    // The failed upload is visible with its reason.
    let status = st.json(&["store", "status"]);
    let failed: Vec<_> = status
        .as_array()
        .unwrap()
        .iter()
        .filter(|r| r["state"] == "failed")
        .collect();
    assert_eq!(failed.len(), 1);
    assert!(
        failed[0]["error"]
            .as_str()
            .unwrap()
            .contains("other content"),
        "{failed:#?}"
    );
}

/// A file changed on the camera in its middle — same size, same mtime, same first and last MiB,
/// so the re-dock recognises it — is read again in full before a wipe, and kept.
#[test]
fn a_file_changed_where_the_edges_do_not_look_is_read_in_full_and_kept() {
    let tmp = tempfile::tempdir().unwrap();
    let store = tmp.path().join("store");
    let st = TestStation::with_config(&config(&store, "never"));
    let fw = station::firmware("ZFY0601", "350701");
    let files = station::recordings(&fw, 1, 3 << 20, 61);
    let card = station::camera(st.dir.path(), fw, files);
    let out = st.json(&["ingest", card.to_str().unwrap()]);
    assert_eq!(out["outcome"], "released", "{out:#}");
    let rec = walkdir(&card)
        .into_iter()
        .find(|p| p.extension().is_some_and(|e| e == "MP4"))
        .unwrap();
    // One byte in the middle, the mtime put back.
    let mtime = std::fs::metadata(&rec).unwrap().modified().unwrap();
    let mut bytes = std::fs::read(&rec).unwrap();
    let mid = bytes.len() / 2;
    bytes[mid] ^= 0xff;
    std::fs::write(&rec, &bytes).unwrap();
    std::fs::File::options()
        .write(true)
        .open(&rec)
        .unwrap()
        .set_modified(mtime)
        .unwrap();
    std::fs::write(st.config.as_ref().unwrap(), config(&store, "after-upload")).unwrap();
    let out = st.json(&["ingest", card.to_str().unwrap()]);
    let kept = out["wiped"]["kept"].to_string();
    assert!(rec.is_file(), "deleted: {out:#}");
    assert!(kept.contains("read again in full"), "{kept}");
    let events = st.events();
    assert!(
        of_kind(&events, "wipe-requested")
            .iter()
            .all(|r| !r["payload"]["files"].to_string().contains("_0001.MP4")),
        "the changed file was requested for deletion"
    );
}

#[test]
fn no_store_no_wipe() {
    // An unreachable store: nothing is verified, so nothing is deleted.
    let st = TestStation::with_config(
        "[store]\nurl = \"s3://evidence\"\nendpoint = \"http://127.0.0.1:9\"\nallow_http = true\nregion = \"us-east-1\"\n\n[[camera]]\nname = \"sim\"\ndriver = \"zfy-sim\"\nallow = [\"*\"]\nwipe = \"after-upload-including-important\"\n",
    );
    let fw = station::firmware("ZFY0601", "350701");
    let files = station::recordings(&fw, 2, 1000, 61);
    let card = station::camera(st.dir.path(), fw, files);
    let before = card_files(&card);
    let ran = st
        .cmd(&["ingest", card.to_str().unwrap(), "--json"])
        .env("AWS_ACCESS_KEY_ID", "AKIATEST")
        .env("AWS_SECRET_ACCESS_KEY", "SECRETTEST")
        .output()
        .unwrap();
    let out: serde_json::Value = serde_json::from_slice(&ran.stdout).unwrap();
    assert_eq!(out["outcome"], "released", "{out:#}");
    assert!(out["uploads"]["uploaded"].as_array().unwrap().is_empty());
    assert!(!out["uploads"]["retrying"].as_array().unwrap().is_empty());
    assert!(out["wiped"]["deleted"].as_array().unwrap().is_empty());
    assert_eq!(card_files(&card), before);
    assert!(of_kind(&st.events(), "device-wiped").is_empty());
}

/// The wipe in the dock waits for the camera's uploads without holding its slot: a camera
/// undocked while it waits and docked again at once is acquired again (its files recognised),
/// not ignored as "still being acquired" — and once the uploads land while it is docked, it is
/// wiped with no one touching it.
#[test]
fn a_camera_undocked_while_it_waits_for_its_wipe_is_taken_again_at_once_and_wiped_later() {
    let tmp = tempfile::tempdir().unwrap();
    let store = tmp.path().join("store");
    // Uploads only in a minute-long window twelve hours from now: they wait.
    let later = chrono::Local::now() + chrono::Duration::hours(12);
    let window = format!(
        "{}-{}",
        later.format("%H:%M"),
        (later + chrono::Duration::minutes(1)).format("%H:%M")
    );
    let waiting = format!(
        "[store]\nurl = \"file://{}\"\nupload_windows = [\"{window}\"]\n\n[[camera]]\nname = \"sim\"\ndriver = \"zfy-sim\"\nallow = [\"*\"]\nwipe = \"after-upload\"\n",
        store.display()
    );
    let st = TestStation::with_config(&waiting);
    let fw = station::firmware("ZFY0602", "350702");
    let files = station::recordings(&fw, 2, 20_000, 62);
    let card = station::camera(st.dir.path(), fw, files);
    let before = card_files(&card);
    let released = |st: &TestStation| {
        st.sessions()
            .iter()
            .filter(|s| s["state"] == "released")
            .count()
    };
    let dock = st.start_dock();
    let docked = station::dock(&card, &st.mount_root(), "slot-1");
    st.wait_for(60, "the first docking released", || released(&st) == 1);

    // Undocked while it waits for its uploads, then docked again the moment the dock has seen
    // it go.
    let away = st.dir.path().join("away");
    std::fs::rename(&docked, &away).unwrap();
    st.wait_for(30, "the undock seen", || {
        !of_kind(&st.events(), "undocked").is_empty()
    });
    station::dock(&away, &st.mount_root(), "slot-1");
    st.wait_for(60, "the second docking acquired and released", || {
        released(&st) == 2
    });
    assert_eq!(
        card_files(&st.mount_root().join("slot-1")),
        before,
        "nothing wiped yet: nothing is uploaded"
    );
    station::stop(dock);

    // Uploads allowed: the dock, started again with the camera still docked, uploads and
    // then wipes it without a new docking.
    std::fs::write(
        st.dir.path().join("evidock.toml"),
        config(&store, "after-upload"),
    )
    .unwrap();
    let dock = st.start_dock();
    st.wait_for(60, "the camera wiped after its uploads", || {
        !of_kind(&st.events(), "device-wiped").is_empty()
    });
    station::stop(dock);
    let after = card_files(&st.mount_root().join("slot-1"));
    assert!(after.len() < before.len(), "wiped: {before:?} → {after:?}");
}
