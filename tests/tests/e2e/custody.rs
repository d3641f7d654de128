//! The custody log through the stand-alone verifier: trusted time from a real TSA, then every
//! kind of damage a log can suffer, each caught with its own finding code and the rest of the
//! log still reported.
// Test helpers panic on purpose: a failed expectation is a failed test.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use evidock_store::clock::SystemClock;
use evidock_store::key::{NoteSigner, StationKey};
use evidock_store::log::{CustodyLog, SharedLog};
use evidock_store::timestamping;
use evidock_store::tsa::{TsaClient, TsaConfig};
use evidock_tests::bins::{self, verify};
use evidock_tests::tsa::{Mode, TsaRig};
use evidock_verify::event::payload::CameraAssignedPayload;
use evidock_verify::event::{Actor, NewEvent, Role, Subject, Timestamp};
use evidock_verify::id::{DeviceSerial, OfficerId, StationId};
use serde_json::Value;
use std::path::{Path, PathBuf};
use std::sync::Arc;

fn event(i: u32) -> NewEvent {
    let dev = DeviceSerial::new(format!("ZFY{i:04}")).unwrap();
    NewEvent::new(
        Actor {
            role: Role::Admin,
            id: "admin01".into(),
        },
        Subject::Device(dev.clone()),
        format!("camera-assigned/{i}"),
        &CameraAssignedPayload {
            device: dev,
            officer: OfficerId::new("350201").unwrap(),
            from: Timestamp::now(),
        },
    )
    .unwrap()
}

/// A log of `n` events with a checkpoint every 4, in `dir/log`; returns the key.
fn make_log(dir: &Path, n: u32) -> (Arc<StationKey>, SharedLog) {
    let st = StationId::new("dock-07").unwrap();
    let (key, _) = StationKey::load_or_create(&dir.join("station.key"), None, &st).unwrap();
    let key = Arc::new(key);
    let (log, _) = CustodyLog::open(
        &dir.join("log"),
        key.clone(),
        Arc::new(SystemClock::default()),
    )
    .unwrap();
    let log = SharedLog::new(log);
    for i in 0..n {
        log.append(event(i)).unwrap();
        if i % 4 == 3 {
            log.with(|l| l.checkpoint()).unwrap();
        }
    }
    log.with(|l| l.checkpoint()).unwrap();
    (key, log)
}

fn codes(report: &Value) -> Vec<String> {
    report["findings"]["findings"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|f| f["level"] == "error")
        .map(|f| f["code"].as_str().unwrap().to_string())
        .collect()
}

fn trust_file(dir: &Path, key: &StationKey, tsa_root: Option<&Path>) -> PathBuf {
    bins::trust_file(
        &dir.join("trust.toml"),
        &key.verifier().to_string(),
        tsa_root,
    )
}

#[test]
fn checkpoints_time_stamped_by_a_real_tsa_verify_with_openssl_and_evidock() {
    let tmp = tempfile::tempdir().unwrap();
    let (key, log) = make_log(tmp.path(), 10);
    let rig = TsaRig::start().unwrap();
    let client = TsaClient::new(TsaConfig {
        url: rig.url.clone(),
        policy: None,
        timeout: std::time::Duration::from_secs(10),
        trust: rig.trust().unwrap(),
    })
    .unwrap();
    let rt = evidock_tests::runtime();

    // The TSA is down: nothing waits, every checkpoint stays queued.
    rig.set_mode(Mode::Close);
    let run = rt
        .block_on(timestamping::timestamp_pending(&log, &client, 100))
        .unwrap();
    assert!(run.stamped.is_empty());
    assert_eq!(run.pending, vec![4, 8, 10]);
    assert!(run.failure.unwrap().is_retriable());
    // It answers garbage: still queued, not stored.
    rig.set_mode(Mode::Garbage);
    let run = rt
        .block_on(timestamping::timestamp_pending(&log, &client, 100))
        .unwrap();
    assert!(run.stamped.is_empty() && !run.failure.unwrap().is_retriable());
    // Back: each checkpoint gets its token and a `timestamped` event.
    rig.set_mode(Mode::Normal);
    let run = rt
        .block_on(timestamping::timestamp_pending(&log, &client, 100))
        .unwrap();
    assert_eq!(run.stamped, vec![4, 8, 10]);
    assert!(run.pending.is_empty());
    // The three `timestamped` events were sealed by a checkpoint of their own, which needs no
    // token (it adds only records about time): nothing is left pending, no endless loop.
    assert_eq!(log.with(|l| l.last_checkpoint()), 13);
    let run = rt
        .block_on(timestamping::timestamp_pending(&log, &client, 100))
        .unwrap();
    assert!(run.stamped.is_empty() && run.pending.is_empty());
    let log_dir = tmp.path().join("log");

    // openssl alone accepts each token for its checkpoint file.
    for size in [4u64, 8, 10] {
        let name = format!("{size:020}");
        let out = std::process::Command::new("openssl")
            .args(["ts", "-verify", "-in"])
            .arg(log_dir.join(format!("timestamps/{name}.tsr")))
            .arg("-data")
            .arg(log_dir.join(format!("checkpoints/{name}.note")))
            .arg("-CAfile")
            .arg(&rig.ca_pem)
            .output()
            .unwrap();
        assert!(
            String::from_utf8_lossy(&out.stdout).contains("Verification: OK"),
            "{out:?}"
        );
    }

    // evidock-verify: without trust, consistent with the log's own key, nothing anchored, and
    // the tokens attest nothing (their root is not pinned either).
    let r = evidock_tests::bins::verify_unpinned(&log_dir);
    assert_eq!(r["anchored"], false);
    assert_eq!(r["time_attested"], false);
    // With the station key and the TSA root pinned: proven and time attested.
    let trust = trust_file(tmp.path(), &key, Some(&rig.ca_pem));
    let (code, r) = verify(&log_dir, Some(&trust));
    assert_eq!(code, 0, "{r:#}");
    assert_eq!(r["integrity_proven"], true);
    assert_eq!(r["time_attested"], true, "{r:#}");
    assert_eq!(r["errors"], 0);

    // A token swapped for another checkpoint's: caught, the rest still reported.
    let four = std::fs::read(log_dir.join(format!("timestamps/{:020}.tsr", 4))).unwrap();
    overwrite(&log_dir.join(format!("timestamps/{:020}.tsr", 8)), &four);
    let (code, r) = verify(&log_dir, Some(&trust));
    assert_eq!(code, 1);
    let c = codes(&r);
    assert!(
        c.contains(&"timestamp.imprint-mismatch".to_string()),
        "{c:?}"
    );
    assert_eq!(r["integrity_proven"], false);
}

/// Replace a (read-only, write-once) file's bytes, as an attacker with the disk would.
fn overwrite(p: &Path, bytes: &[u8]) {
    let tmp = p.with_extension("tamper");
    std::fs::write(&tmp, bytes).unwrap();
    std::fs::rename(&tmp, p).unwrap();
}

fn fresh(n: u32) -> (tempfile::TempDir, Arc<StationKey>, PathBuf) {
    let tmp = tempfile::tempdir().unwrap();
    let (key, log) = make_log(tmp.path(), n);
    drop(log);
    let dir = tmp.path().join("log");
    (tmp, key, dir)
}

#[test]
fn every_kind_of_damage_has_its_own_finding() {
    let lines = |dir: &Path| -> Vec<String> {
        std::fs::read_to_string(dir.join("events.jsonl"))
            .unwrap()
            .lines()
            .map(str::to_string)
            .collect()
    };
    let write_lines = |dir: &Path, l: &[String]| {
        overwrite(&dir.join("events.jsonl"), (l.join("\n") + "\n").as_bytes());
    };
    let expect = |dir: &Path, trust: Option<&Path>, want: &[&str]| {
        let (code, r) = verify(dir, trust);
        assert_eq!(code, 1, "{r:#}");
        let c = codes(&r);
        for w in want {
            assert!(c.iter().any(|x| x == w), "expected {w} in {c:?}");
        }
        // The rest of the log is still reported: the summary is always there.
        assert!(
            r["findings"]["findings"]
                .as_array()
                .unwrap()
                .iter()
                .any(|f| f["code"] == "log.summary")
        );
    };

    // A flipped byte inside an event's payload.
    let (_t, _k, dir) = fresh(9);
    let mut l = lines(&dir);
    l[2] = l[2].replace("350201", "350299");
    write_lines(&dir, &l);
    expect(&dir, None, &["checkpoint.root-mismatch"]);

    // An event re-encoded (same meaning, other bytes).
    let (_t, _k, dir) = fresh(9);
    let mut l = lines(&dir);
    l[3] = l[3].replacen("{\"actor\"", "{ \"actor\"", 1);
    write_lines(&dir, &l);
    expect(
        &dir,
        None,
        &["event.not-canonical", "checkpoint.root-mismatch"],
    );

    // Two events swapped.
    let (_t, _k, dir) = fresh(9);
    let mut l = lines(&dir);
    l.swap(1, 2);
    write_lines(&dir, &l);
    expect(
        &dir,
        None,
        &["event.out-of-order", "checkpoint.root-mismatch"],
    );

    // An event dropped from the middle.
    let (_t, _k, dir) = fresh(9);
    let mut l = lines(&dir);
    l.remove(5);
    write_lines(&dir, &l);
    expect(&dir, None, &["event.out-of-order", "checkpoint.beyond-log"]);

    // A truncated (garbled) event line.
    let (_t, _k, dir) = fresh(9);
    let mut l = lines(&dir);
    l[6].truncate(30);
    write_lines(&dir, &l);
    expect(&dir, None, &["event.malformed"]);

    // A checkpoint's bytes changed; another truncated.
    let (_t, _k, dir) = fresh(9);
    let cp8 = dir.join(format!("checkpoints/{:020}.note", 8));
    let text = std::fs::read_to_string(&cp8)
        .unwrap()
        .replacen("\n8\n", "\n7\n", 1);
    overwrite(&cp8, text.as_bytes());
    let cp4 = dir.join(format!("checkpoints/{:020}.note", 4));
    let b = std::fs::read(&cp4).unwrap();
    overwrite(&cp4, &b[..b.len() / 2]);
    expect(
        &dir,
        None,
        &["checkpoint.bad-signature", "checkpoint.malformed"],
    );

    // A garbage token.
    let (_t, _k, dir) = fresh(9);
    overwrite(
        &dir.join(format!("timestamps/{:020}.tsr", 9)),
        b"\x30\x03\x02\x01\x00garbage",
    );
    expect(&dir, None, &["timestamp.malformed"]);

    // The station key replaced and everything re-signed: caught against the trust file.
    let (t, key, dir) = fresh(9);
    let trust = trust_file(t.path(), &key, None);
    let other_dir = t.path().join("impostor");
    std::fs::create_dir_all(&other_dir).unwrap();
    let (impostor, _) = StationKey::load_or_create(
        &other_dir.join("station.key"),
        None,
        &StationId::new("dock-07").unwrap(),
    )
    .unwrap();
    overwrite(
        &dir.join("station.pub"),
        format!("{}\n", impostor.verifier()).as_bytes(),
    );
    for size in [4u64, 8, 9] {
        let p = dir.join(format!("checkpoints/{size:020}.note"));
        let note = evidock_verify::note::SignedNote::parse(&std::fs::read(&p).unwrap()).unwrap();
        overwrite(&p, &impostor.sign_note(&note.text).to_bytes());
    }
    // Without a trust file the forgery is self-consistent: the verifier can only show the
    // fingerprint it relied on, to compare with the collection record.
    let r = evidock_tests::bins::verify_unpinned(&dir);
    assert_eq!(r["anchored"], false);
    let relied: Vec<_> = r["findings"]["findings"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|f| f["code"] == "trust.relied-on")
        .collect();
    assert!(
        relied[0]["message"]
            .as_str()
            .unwrap()
            .contains(&impostor.verifier().fingerprint().to_string())
    );
    expect(
        &dir,
        Some(&trust),
        &["key.untrusted", "checkpoint.bad-signature"],
    );
}
