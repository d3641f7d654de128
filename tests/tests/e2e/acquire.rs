//! Acquisition end to end: the real `evidock` binary, simulated ZFY cameras on real files.
// Test helpers panic on purpose: a failed expectation is a failed test.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use evidock_ingest::device::sim::{self, Firmware, SimContent};
use evidock_tests::bins;
use evidock_tests::station::{self, TestStation, of_kind, sha256_file};
use serde_json::Value;
use std::collections::{BTreeMap, BTreeSet};
use std::os::unix::ffi::OsStrExt as _;
use std::path::Path;
use std::process::Command;

fn evidence_by_path(st: &TestStation) -> BTreeMap<String, Value> {
    st.json(&["evidence", "list"])
        .as_array()
        .unwrap()
        .iter()
        .map(|e| (e["path"].as_str().unwrap().to_string(), e.clone()))
        .collect()
}

fn verify_log(st: &TestStation) -> Value {
    bins::verify_unpinned(&st.log_dir())
}

#[test]
fn simulated_camera_dock_identify_sync_acquire_release() {
    let st = TestStation::new();
    // The battery died: the camera's clock restarted at 2000-01-01 and drifts.
    let mut fw = station::firmware("ZFY0001", "350201");
    fw.clock = "20000101080000".into();
    fw.drift_ppm = 40;
    let mut files = station::recordings(&fw, 3, 2_500_000, 1);
    files.push((
        b"DCIM/100MEDIA/ZFY0001_350201_20000101073000_0009_IMP.MP4".to_vec(),
        SimContent::Generated {
            size: 700_000,
            seed: 9,
        },
    ));
    // A GBK short name (执法.JPG), a zero-byte log, and links out of the card.
    files.push((
        b"DCIM/\xd6\xb4\xb7\xa8.JPG".to_vec(),
        SimContent::Bytes(b"\xff\xd8 jpeg".to_vec()),
    ));
    files.push((b"LOG/EMPTY.LOG".to_vec(), SimContent::Bytes(vec![])));
    let card = station::camera(st.dir.path(), fw.clone(), files);
    std::os::unix::fs::symlink("../../../../etc/passwd", card.join("DCIM/up.MP4")).unwrap();
    std::os::unix::fs::symlink("/etc/passwd", card.join("DCIM/abs.MP4")).unwrap();

    let ran = st.run(&["ingest", card.to_str().unwrap(), "--json"]);
    let out = ran.json();
    assert_eq!(out["outcome"], "released", "{}\n{}", ran.stdout, ran.stderr);
    assert_eq!(out["failed"], 2, "the two links are recorded as failures");
    assert_eq!(ran.code, 1, "failures recorded → exit 1");

    // Every file on the card is an evidence item with the digest of its bytes.
    let ev = evidence_by_path(&st);
    for item in ev.values() {
        assert!(item["id"].as_str().unwrap().starts_with("ev-"));
        assert_eq!(item["device"], "ZFY0001");
    }
    for entry in [
        "DCIM/100MEDIA/ZFY0001_350201_20000101073000_0009_IMP.MP4",
        "LOG/EMPTY.LOG",
        "ZFYSIM.INI",
    ] {
        let item = &ev[entry];
        assert_eq!(item["sha256"], sha256_file(&card.join(entry)), "{entry}");
    }
    let gbk = &ev["DCIM/执法.JPG"];
    assert_eq!(
        gbk["sha256"],
        sha256_file(&card.join(std::ffi::OsStr::from_bytes(b"DCIM/\xd6\xb4\xb7\xa8.JPG")))
    );
    assert_eq!(ev["LOG/EMPTY.LOG"]["size"], 0);
    assert_eq!(
        ev["DCIM/100MEDIA/ZFY0001_350201_20000101073000_0009_IMP.MP4"]["important"],
        true
    );
    assert_eq!(ev.len(), 7, "3 recordings + IMP + JPG + log + marker");

    // Custody: docked → clock-synced → acquired… → released, the links as acquire-failed.
    let events = st.events();
    let kinds: Vec<&str> = events.iter().map(|e| e["kind"].as_str().unwrap()).collect();
    assert_eq!(kinds[0], "docked");
    assert_eq!(kinds[1], "clock-synced");
    // The camera is released before anything leaves the station: whatever follows the
    // release is the upload of what was acquired (the default store is local), and the
    // attempts at playback copies (the simulated recordings are not real video).
    let released = kinds.iter().position(|k| *k == "released").unwrap();
    assert!(
        kinds[..released]
            .iter()
            .all(|k| !matches!(*k, "uploaded" | "released")),
        "{kinds:?}"
    );
    assert!(
        kinds[released + 1..]
            .iter()
            .all(|k| matches!(*k, "uploaded" | "transcode-failed")),
        "{kinds:?}"
    );
    assert_eq!(of_kind(&events, "acquired").len(), 7);
    let failed = of_kind(&events, "acquire-failed");
    assert_eq!(failed.len(), 2);
    assert!(failed.iter().all(|e| {
        e["payload"]["error"]
            .as_str()
            .unwrap()
            .contains("symbolic link")
    }));
    let docked = &events[0]["payload"];
    assert_eq!(docked["identity"]["serial"], "ZFY0001");
    assert_eq!(docked["identity"]["officer"], "350201");
    assert_eq!(docked["identity"]["unit_name"], "晋江市应急管理局");
    let offset_ms = docked["clock_offset_ms"].as_i64().unwrap();
    assert!(offset_ms > 26 * 365 * 86_400_000, "offset {offset_ms}");
    // Recordings stamped by the reset clock take the docking offset: corrected to today.
    let today = chrono::Utc::now();
    for a in of_kind(&events, "acquired") {
        let p = &a["payload"];
        if let Some(rec) = p.get("recorded") {
            assert!(
                rec["raw"].as_str().unwrap().starts_with("2000-01-01")
                    || rec["raw"].as_str().unwrap().starts_with("1999-12-31")
            );
            assert_eq!(rec["rule"], "docking-offset");
            let corrected: chrono::DateTime<chrono::Utc> =
                rec["corrected"].as_str().unwrap().parse().unwrap();
            assert!((today - corrected).num_hours().abs() < 3, "{rec}");
        }
        assert_eq!(p["officer"], "350201");
        assert_eq!(p["officer_source"], "camera");
    }
    // The camera's clock was set to the station's time.
    let after = Firmware::load(&card.parent().unwrap().join("firmware.toml")).unwrap();
    let cam_now = after.clock_at(chrono::Utc::now()).unwrap();
    let local_now = chrono::Local::now().naive_local();
    assert!((cam_now - local_now).num_seconds().abs() < 5);

    let sessions = st.sessions();
    assert_eq!(sessions.len(), 1);
    assert_eq!(sessions[0]["state"], "released");
    verify_log(&st);

    // Re-docking the same card: nothing is read again, every skip is recorded.
    let again = st.json(&["ingest", card.to_str().unwrap()]);
    assert_eq!(again["outcome"], "released");
    assert_eq!(again["skipped"], 7);
    assert_eq!(again["files"], 0);
    let events = st.events();
    assert_eq!(of_kind(&events, "skipped").len(), 7);
    // With --full everything is read again: new evidence items, same content, stored once.
    let spool_objects = count_files(&st.data().join("spool/sha256"));
    let full = st.json(&["ingest", card.to_str().unwrap(), "--full"]);
    assert_eq!(full["files"], 7);
    assert_eq!(count_files(&st.data().join("spool/sha256")), spool_objects);
    assert_eq!(st.sessions().len(), 3);
    verify_log(&st);
}

fn count_files(dir: &Path) -> usize {
    let mut n = 0;
    for e in std::fs::read_dir(dir).unwrap().flatten() {
        if e.file_type().unwrap().is_dir() {
            n += count_files(&e.path());
        } else {
            n += 1;
        }
    }
    n
}

#[test]
fn kill_during_acquisition_then_resume_loses_and_duplicates_nothing() {
    let st = TestStation::with_config(
        "[acquire]\nbuffer_kib = 256\nsync_every_mib = 2\n\n[[camera]]\nname = \"sim\"\ndriver = \"zfy-sim\"\nallow = [\"*\"]\n",
    );
    let mut fw = station::firmware("ZFY0002", "350202");
    fw.read_bytes_per_sec = 20_000_000;
    let files = station::recordings(&fw, 3, 24 << 20, 2);
    let card = station::camera(st.dir.path(), fw, files);

    let mut child = st
        .cmd(&["ingest", card.to_str().unwrap(), "--quiet"])
        .spawn()
        .unwrap();
    // Wait until the copy is well under way, then kill -9.
    st.wait_for(30, "a partial copy on the spool", || {
        let partial = st.data().join("spool/partial");
        walk_sizes(&partial).into_iter().any(|s| s > 6 << 20)
    });
    child.kill().unwrap();
    child.wait().unwrap();
    let before = st.events();
    assert!(
        of_kind(&before, "released").is_empty(),
        "killed before release"
    );

    let out = st.json(&["ingest", card.to_str().unwrap()]);
    assert_eq!(out["outcome"], "released");
    let events = st.events();
    // One session, resumed: one docked event, one acquired per file, no key twice.
    assert_eq!(of_kind(&events, "docked").len(), 1);
    let acquired = of_kind(&events, "acquired");
    assert_eq!(acquired.len(), 4, "3 recordings + marker");
    let ids: BTreeSet<&str> = acquired
        .iter()
        .map(|e| e["subject"]["evidence"].as_str().unwrap())
        .collect();
    assert_eq!(ids.len(), 4);
    let keys: BTreeSet<&str> = events.iter().map(|e| e["key"].as_str().unwrap()).collect();
    assert_eq!(keys.len(), events.len());
    // The file in flight resumed from its durable offset (not read again from byte 0).
    assert!(
        acquired
            .iter()
            .any(|e| e["payload"]["resumed_at"].as_u64().unwrap_or(0) > 0),
        "no acquisition resumed: {acquired:#?}"
    );
    for (path, item) in evidence_by_path(&st) {
        assert_eq!(item["sha256"], sha256_file(&card.join(&path)), "{path}");
    }
    verify_log(&st);
}

fn walk_sizes(dir: &Path) -> Vec<u64> {
    let mut out = vec![];
    if let Ok(rd) = std::fs::read_dir(dir) {
        for e in rd.flatten() {
            let m = e.metadata().unwrap();
            if m.is_dir() {
                out.extend(walk_sizes(&e.path()));
            } else {
                out.push(m.len());
            }
        }
    }
    out
}

#[test]
fn four_cameras_at_once_each_progresses_while_the_others_copy() {
    let st = TestStation::with_config(
        "[dock]\nslots = 4\n\n[acquire]\nbuffer_kib = 256\nsync_every_mib = 4\n\n[[camera]]\nname = \"sim\"\ndriver = \"zfy-sim\"\nallow = [\"*\"]\n",
    );
    let dock = st.start_dock();
    let mut cards = vec![];
    for i in 0..4u64 {
        let serial = format!("ZFY010{i}");
        let mut fw = station::firmware(&serial, &format!("35030{i}"));
        // USB 2.0 speed.
        fw.read_bytes_per_sec = 40_000_000;
        let files = station::recordings(&fw, 3, 12 << 20, 10 + i);
        cards.push((serial, station::camera(st.dir.path(), fw, files)));
    }
    for (serial, card) in &cards {
        station::dock(card, &st.mount_root(), serial);
    }
    st.wait_for(120, "four released sessions", || {
        st.sessions()
            .iter()
            .filter(|s| s["state"] == "released")
            .count()
            == 4
    });
    // Order of events, not timings: every camera acquired a file before any other camera
    // was released — none waited for another to finish.
    let events = st.events();
    let mut first_acquired: BTreeMap<String, u64> = BTreeMap::new();
    let mut released: BTreeMap<String, u64> = BTreeMap::new();
    for e in &events {
        let seq = e["seq"].as_u64().unwrap();
        match e["kind"].as_str().unwrap() {
            "acquired" => {
                first_acquired
                    .entry(e["payload"]["device"].as_str().unwrap().to_string())
                    .or_insert(seq);
            }
            "released" => {
                let session = e["payload"]["session"].as_str().unwrap();
                let device = session.rsplit('-').next().unwrap().to_string();
                released.insert(device, seq);
            }
            _ => {}
        }
    }
    assert_eq!(first_acquired.len(), 4);
    assert_eq!(released.len(), 4);
    for (a, first) in &first_acquired {
        for (b, rel) in &released {
            if a != b {
                assert!(
                    first < rel,
                    "camera {a} started only after camera {b} was released"
                );
            }
        }
    }
    // Undocking a released camera is logged.
    std::fs::rename(st.mount_root().join("ZFY0100"), st.dir.path().join("away")).unwrap();
    st.wait_for(20, "the undocked event", || {
        !of_kind(&st.events(), "undocked").is_empty()
    });
    let undocked = of_kind(&st.events(), "undocked")[0].clone();
    assert_eq!(undocked["payload"]["released"], true);
    assert_eq!(undocked["payload"]["device"], "ZFY0100");
    station::stop(dock);
    verify_log(&st);
}

#[test]
fn camera_removed_mid_file_resumes_when_docked_again() {
    let st = TestStation::with_config(
        "[acquire]\nbuffer_kib = 256\nsync_every_mib = 2\n\n[[camera]]\nname = \"sim\"\ndriver = \"zfy-sim\"\nallow = [\"*\"]\n",
    );
    let dock = st.start_dock();
    let mut fw = station::firmware("ZFY0200", "350400");
    fw.read_bytes_per_sec = 10_000_000;
    let files = station::recordings(&fw, 1, 40 << 20, 20);
    let card = station::camera(st.dir.path(), fw, files);
    let clip = std::fs::read_dir(card.join("DCIM/100MEDIA"))
        .unwrap()
        .next()
        .unwrap()
        .unwrap()
        .path();
    let sha = sha256_file(&clip);
    let docked = station::dock(&card, &st.mount_root(), "slot-1");
    st.wait_for(30, "a partial copy", || {
        walk_sizes(&st.data().join("spool/partial"))
            .into_iter()
            .any(|s| s > 8 << 20)
    });
    // Pulled out mid-file.
    let away = st.dir.path().join("pulled");
    std::fs::rename(&docked, &away).unwrap();
    st.wait_for(20, "the undocked event", || {
        !of_kind(&st.events(), "undocked").is_empty()
    });
    let und = of_kind(&st.events(), "undocked")[0].clone();
    assert_eq!(und["payload"]["released"], false);
    assert!(st.sessions().iter().any(|s| s["state"] == "interrupted"));
    // Back in the dock: a new session that continues the copy where it stopped.
    std::fs::rename(&away, &docked).unwrap();
    st.wait_for(60, "release after re-docking", || {
        st.sessions().iter().any(|s| s["state"] == "released")
    });
    let events = st.events();
    let rec: Vec<_> = of_kind(&events, "acquired")
        .into_iter()
        .filter(|e| e["payload"]["path"].as_str().unwrap().ends_with(".MP4"))
        .collect();
    assert_eq!(rec.len(), 1);
    assert!(rec[0]["payload"]["resumed_at"].as_u64().unwrap() > 0);
    assert_eq!(rec[0]["payload"]["digests"]["sha256"], sha);
    station::stop(dock);
    verify_log(&st);
}

#[test]
fn unknown_cameras_and_wrong_passwords_are_never_read() {
    let st = TestStation::new();
    let dock = st.start_dock();
    // A plain disk: no profile accepts it in the embedded default.
    let stick = st.dir.path().join("stick");
    std::fs::create_dir_all(&stick).unwrap();
    std::fs::write(stick.join("secret.txt"), b"not evidence").unwrap();
    station::dock(&stick, &st.mount_root(), "usb-stick");
    // A camera whose admin password is not the profile's.
    let mut fw = station::firmware("ZFY0300", "350500");
    fw.password = "123456".into();
    let files = station::recordings(&fw, 1, 1000, 30);
    let card = station::camera(st.dir.path(), fw, files);
    station::dock(&card, &st.mount_root(), "ZFY0300");
    st.wait_for(30, "two refusals", || {
        let log = st.dock_log();
        log.matches("camera not read").count() >= 2
    });
    let log = st.dock_log();
    assert!(log.contains("not a known camera"), "{log}");
    assert!(log.contains("password was refused"), "{log}");
    station::stop(dock);
    // Nothing was acquired, nothing logged as custody of these devices.
    let events = st.events();
    assert!(of_kind(&events, "acquired").is_empty());
    assert!(of_kind(&events, "docked").is_empty());
    let sessions = st.sessions();
    for slot in ["ZFY0300", "usb-stick"] {
        assert!(
            sessions
                .iter()
                .any(|s| s["state"] == "refused" && s["slot"] == slot),
            "{slot}: {sessions:#?}"
        );
    }
    assert!(
        std::fs::read_dir(st.data().join("spool/sha256"))
            .unwrap()
            .next()
            .is_none()
    );
}

#[test]
fn camera_assignment_names_the_officer_when_the_camera_does_not() {
    let st = TestStation::new();
    let mut fw = station::firmware("ZFY0400", "");
    fw.officer = String::new();
    // Names without a 警号 field: the profile's pattern finds none.
    let now = fw.clock_at(chrono::Utc::now()).unwrap();
    let name = format!("DCIM/REC_{}.MP4", now.format("%Y%m%d%H%M%S"));
    let card = station::camera(
        st.dir.path(),
        fw,
        vec![(name.into_bytes(), SimContent::Bytes(vec![7; 1000]))],
    );
    let from = (chrono::Utc::now() - chrono::Duration::hours(8)).to_rfc3339();
    let ran = st.run(&[
        "camera",
        "assign",
        "ZFY0400",
        "执法证 3502-0099",
        "--from",
        &from,
        "--by",
        "admin01",
    ]);
    assert_eq!(ran.code, 0, "{}", ran.stderr);
    let out = st.json(&["ingest", card.to_str().unwrap()]);
    assert_eq!(out["outcome"], "released");
    let events = st.events();
    let assigned = of_kind(&events, "camera-assigned");
    assert_eq!(assigned.len(), 1);
    assert_eq!(assigned[0]["actor"]["id"], "admin01");
    let rec: Vec<_> = of_kind(&events, "acquired")
        .into_iter()
        .filter(|e| e["payload"]["path"].as_str().unwrap().ends_with(".MP4"))
        .collect();
    assert_eq!(rec[0]["payload"]["officer"], "执法证 3502-0099");
    assert_eq!(rec[0]["payload"]["officer_source"], "assignment");
}

#[test]
fn full_spool_disk_stops_that_camera_cleanly_and_the_others_go_on() {
    let st = TestStation::with_config(
        "[dock]\nslots = 2\n\n[acquire]\nmin_free_mib = 1\n\n[[camera]]\nname = \"sim\"\ndriver = \"zfy-sim\"\nallow = [\"*\"]\n",
    );
    let Some(_disk) = station::SmallDisk::mount(&st.data().join("spool"), 24) else {
        eprintln!("SKIPPED: mounting a small tmpfs for the spool needs root");
        return;
    };
    let dock = st.start_dock();
    // Camera A needs more than the spool can hold; camera B needs little.
    let mut a = station::firmware("ZFY0500", "350600");
    a.read_bytes_per_sec = 40_000_000;
    let card_a = station::camera(
        st.dir.path(),
        a.clone(),
        station::recordings(&a, 2, 14 << 20, 50),
    );
    let mut b = station::firmware("ZFY0501", "350601");
    b.read_bytes_per_sec = 8_000_000;
    let files_b = station::recordings(&b, 4, 1 << 20, 51);
    let card_b = station::camera(st.dir.path(), b, files_b);
    station::dock(&card_a, &st.mount_root(), "A");
    station::dock(&card_b, &st.mount_root(), "B");
    st.wait_for(60, "A failed and B released", || {
        let s = st.sessions();
        s.iter()
            .any(|x| x["device"] == "ZFY0500" && x["state"] == "failed")
            && s.iter()
                .any(|x| x["device"] == "ZFY0501" && x["state"] == "released")
    });
    station::stop(dock);
    let s = st.sessions();
    let failed = s.iter().find(|x| x["device"] == "ZFY0500").unwrap();
    assert!(
        failed["error"]
            .as_str()
            .unwrap()
            .contains("spool disk full"),
        "{failed}"
    );
    // Nothing half-recorded: A's first file is acquired whole, the second not at all, and no
    // partial copy is left taking space.
    let events = st.events();
    let a_acquired: Vec<_> = of_kind(&events, "acquired")
        .into_iter()
        .filter(|e| e["payload"]["device"] == "ZFY0500")
        .filter(|e| e["payload"]["path"].as_str().unwrap().ends_with(".MP4"))
        .collect();
    assert!(a_acquired.len() <= 1);
    for e in &a_acquired {
        assert_eq!(e["payload"]["size"], 14 << 20);
    }
    let b_acquired = of_kind(&events, "acquired")
        .into_iter()
        .filter(|e| e["payload"]["device"] == "ZFY0501")
        .count();
    assert_eq!(b_acquired, 5, "4 recordings + marker");
    assert!(
        walk_sizes(&st.data().join("spool/partial"))
            .iter()
            .all(|s| *s == 0)
    );
    verify_log(&st);
}

#[test]
fn a_disk_filling_mid_copy_is_a_clear_spool_error() {
    use evidock_ingest::acquire::copy::{self, CopyError};
    use evidock_ingest::device::volume::Volume;
    use evidock_verify::digest::{BufferPool, DigestSet, MultiHasher};
    let tmp = tempfile::tempdir().unwrap();
    let Some(disk) = station::SmallDisk::mount(&tmp.path().join("small"), 4) else {
        eprintln!("SKIPPED: mounting a small tmpfs needs root");
        return;
    };
    let src_dir = tmp.path().join("card");
    std::fs::create_dir_all(&src_dir).unwrap();
    std::fs::write(src_dir.join("big.MP4"), vec![5u8; 8 << 20]).unwrap();
    let vol = Volume::new(src_dir, None);
    let mut f = vol.open(b"big.MP4").unwrap();
    let meta = f.meta().unwrap();
    let pool = BufferPool::new(4, 1 << 20);
    let mut h = MultiHasher::new(DigestSet::default(), 4).unwrap();
    let part = disk.path.join("big.part");
    let err = copy::copy(
        &mut f,
        meta,
        copy::Target {
            part: &part,
            sync_every: 1 << 20,
            direct_write: true,
            direct_read: true,
            pool: &pool,
        },
        0,
        &mut h,
        &mut |_| Ok(()),
        &mut |_| {},
        &|| None,
    )
    .unwrap_err();
    assert!(err.is_disk_full(), "{err}");
    assert!(matches!(err, CopyError::Spool { .. }));
    assert!(
        err.to_string().contains("big.part"),
        "the error names the file: {err}"
    );
}

/// A hostile stick in the watch folder: its ID file, or the simulator's marker, is a link to
/// `/dev/zero`, or a FIFO. Read whole and through links, each would hang or fill the memory of
/// the dock for every slot. Each is refused with a named reason, and a camera docked beside
/// them is acquired.
#[test]
fn hostile_id_files_are_refused_and_the_other_cameras_go_on() {
    let st = TestStation::with_config(
        "[status]\nenabled = false\n[[camera]]\nname = \"sim\"\ndriver = \"zfy-sim\"\nallow = [\"*\"]\n[[camera]]\nname = \"any\"\ndriver = \"mass-storage\"\nallow = [\"*\"]\n",
    );
    std::fs::create_dir_all(st.mount_root()).unwrap();
    let sticks = st.dir.path().join("sticks");
    let mk = |name: &str| {
        let d = sticks.join(name);
        std::fs::create_dir_all(d.join("DCIM")).unwrap();
        std::fs::write(d.join("DCIM/a.mp4"), b"abc").unwrap();
        d
    };
    let zero_id = mk("zero-id");
    std::os::unix::fs::symlink("/dev/zero", zero_id.join("ZFYINFO.TXT")).unwrap();
    let fifo_id = mk("fifo-id");
    let ok = Command::new("mkfifo")
        .arg(fifo_id.join("ZFYINFO.TXT"))
        .status()
        .unwrap()
        .success();
    assert!(ok);
    let zero_marker = mk("zero-marker");
    std::os::unix::fs::symlink("/dev/zero", zero_marker.join(sim::MARKER)).unwrap();
    let big_id = mk("big-id");
    std::fs::write(big_id.join("ZFYINFO.TXT"), vec![b'x'; 8 << 20]).unwrap();
    let dock = st.start_dock();
    for (d, slot) in [
        (&zero_id, "zero-id"),
        (&fifo_id, "fifo-id"),
        (&zero_marker, "zero-marker"),
        (&big_id, "big-id"),
    ] {
        station::dock(d, &st.mount_root(), slot);
    }
    let fw = station::firmware("ZFY0310", "350510");
    let files = station::recordings(&fw, 1, 4000, 31);
    let card = station::camera(st.dir.path(), fw, files);
    station::dock(&card, &st.mount_root(), "ZFY0310");
    st.wait_for(60, "the camera beside the sticks acquired", || {
        !of_kind(&st.events(), "released").is_empty()
    });
    let slots = ["zero-id", "fifo-id", "zero-marker", "big-id"];
    let outcome = |log: &str, slot: &str| {
        log.lines()
            .find(|l| {
                l.contains(&format!("slot={slot} "))
                    && (l.contains("safe to undock")
                        || l.contains("camera not read")
                        || l.contains("camera stopped with an error"))
            })
            .map(str::to_string)
    };
    st.wait_for(30, "every stick finished with (none hangs)", || {
        let log = st.dock_log();
        slots.iter().all(|s| outcome(&log, s).is_some())
    });
    station::stop(dock);
    let log = st.dock_log();
    // The ID files are refused, saying why; the stick with a linked marker is no simulated
    // camera: the catch-all profile takes it, without reading the link.
    for slot in ["zero-id", "fifo-id", "big-id"] {
        let o = outcome(&log, slot).unwrap();
        assert!(
            o.contains("not a regular file") || o.contains("larger than"),
            "{slot}: {o}"
        );
    }
    let events = st.events();
    let acquired = of_kind(&events, "acquired");
    assert!(
        acquired.iter().any(|e| e["payload"]["device"] == "ZFY0310"),
        "the camera beside the sticks: {acquired:?}"
    );
    assert!(
        acquired
            .iter()
            .all(|e| e["payload"]["path"] != sim::MARKER || e["payload"]["device"] == "ZFY0310"),
        "a linked marker was read: {acquired:?}"
    );
}

/// Ctrl-C during `evidock ingest` stops it between files with exit 130, saying what was kept
/// and what resumes; SIGTERM likewise with 143; the next run acquires the rest, nothing twice.
#[test]
fn a_signal_stops_ingest_at_the_next_file_and_the_rest_resumes() {
    for (signal, code) in [("-INT", 130), ("-TERM", 143)] {
        let st = TestStation::new();
        let mut fw = station::firmware("ZFY0450", "350450");
        // 6 files of 1 MiB at 2 MiB/s: three seconds of copying.
        fw.read_bytes_per_sec = 2 << 20;
        let files = station::recordings(&fw, 6, 1 << 20, 45);
        let card = station::camera(st.dir.path(), fw, files);
        let mut c = st.cmd(&[
            "ingest",
            card.to_str().unwrap(),
            "--quiet",
            "--no-upload",
            "--no-transcode",
        ]);
        c.stderr(std::process::Stdio::piped())
            .stdout(std::process::Stdio::null());
        let child = c.spawn().unwrap();
        // Once the first file is in the spool, the signal.
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(30);
        let spool = st.data().join("spool");
        while walk_files(&spool) == 0 {
            assert!(std::time::Instant::now() < deadline, "no file acquired");
            std::thread::sleep(std::time::Duration::from_millis(20));
        }
        std::process::Command::new("kill")
            .arg(signal)
            .arg(child.id().to_string())
            .status()
            .unwrap();
        let out = child.wait_with_output().unwrap();
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(code), "{signal}: {stderr}");
        assert!(
            stderr.contains("stopped") && stderr.contains("again"),
            "{signal}: {stderr}"
        );
        let first = of_kind(&st.events(), "acquired").len();
        assert!(
            (1..6).contains(&first),
            "{signal}: {first} acquired before the stop"
        );
        let again = st.json(&[
            "ingest",
            card.to_str().unwrap(),
            "--no-upload",
            "--no-transcode",
        ]);
        assert_eq!(again["outcome"], "released", "{again}");
        let events = st.events();
        let acquired = of_kind(&events, "acquired");
        let paths: BTreeSet<String> = acquired
            .iter()
            .map(|e| e["payload"]["path"].to_string())
            .collect();
        assert_eq!(
            paths.len(),
            acquired.len(),
            "{signal}: a file acquired twice"
        );
        let on_card = walk_files(&card);
        assert_eq!(
            acquired.len(),
            on_card,
            "{signal}: every file of the card, once"
        );
    }
}

fn walk_files(dir: &Path) -> usize {
    let Ok(rd) = std::fs::read_dir(dir) else {
        return 0;
    };
    rd.flatten()
        .map(|e| {
            let p = e.path();
            if p.is_dir() {
                walk_files(&p)
            } else {
                usize::from(
                    !p.to_string_lossy().contains("partial")
                        && !p.to_string_lossy().contains("copying"),
                )
            }
        })
        .sum()
}
