//! Cases end to end: the real `evidock` binary, simulated cameras, a case register export.
//!
//! Import → automatic links by officer and corrected time → a person's unlink and link →
//! re-import; Unicode case IDs with full-width brackets; +08:00 and UTC windows in one file;
//! overlapping windows (a recording in two cases is flagged); a camera whose clock was reset
//! matches by corrected time; a file with one bad row changes nothing; categories, retention,
//! disposal; the index rebuilt from the log, and by a second station from the store.
// Test helpers panic on purpose: a failed expectation is a failed test.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use chrono::{DateTime, Duration, FixedOffset, NaiveDateTime, Utc};
use evidock_ingest::device::sim::{self, Firmware, SimContent};
use evidock_tests::station::{self, TestStation, of_kind};
use serde_json::Value;
use std::collections::BTreeMap;
use std::path::Path;

const CASE_A: &str = "晋应急罚〔2023〕102号";
const CASE_B: &str = "晋应急简〔2023〕7号";
const CASE_C: &str = "晋应急罚〔2023〕103号";

fn china() -> FixedOffset {
    FixedOffset::east_opt(8 * 3600).unwrap()
}

/// A camera whose clock reads `clock` (its local time) now.
fn firmware(serial: &str, officer: &str, clock: NaiveDateTime) -> Firmware {
    let mut fw = station::firmware(serial, officer);
    fw.clock = clock.format("%Y%m%d%H%M%S").to_string();
    fw.clock_set_at = Utc::now();
    fw
}

/// Recordings named at these camera times; each file's time is its start + 2 minutes (when
/// the camera closed it), in the camera's clock read as +08:00.
fn camera(dir: &Path, fw: Firmware, starts: &[NaiveDateTime]) -> std::path::PathBuf {
    let files: Vec<_> = starts
        .iter()
        .enumerate()
        .map(|(i, at)| {
            (
                sim::recording_name(&fw.serial, &fw.officer, *at, i as u32 + 1, "MP4").into_bytes(),
                SimContent::Generated {
                    size: 20_000 + i as u64,
                    seed: i as u64 + u64::from(fw.serial.as_bytes()[6]),
                },
            )
        })
        .collect();
    let card = station::camera(dir, fw.clone(), files);
    for (i, at) in starts.iter().enumerate() {
        let name = sim::recording_name(&fw.serial, &fw.officer, *at, i as u32 + 1, "MP4");
        let closed = (*at + Duration::minutes(2))
            .and_local_timezone(china())
            .unwrap();
        std::fs::File::options()
            .write(true)
            .open(card.join(name))
            .unwrap()
            .set_modified(std::time::SystemTime::from(closed))
            .unwrap();
    }
    card
}

fn china_time(t: DateTime<Utc>) -> String {
    t.with_timezone(&china())
        .format("%Y-%m-%dT%H:%M:%S+08:00")
        .to_string()
}

fn utc_time(t: DateTime<Utc>) -> String {
    t.format("%Y-%m-%dT%H:%M:%SZ").to_string()
}

/// evidence ID by file name's recording number and camera serial: "ZFY1001#3".
fn evidence_ids(st: &TestStation) -> BTreeMap<String, String> {
    st.json(&["evidence", "list"])
        .as_array()
        .unwrap()
        .iter()
        .filter(|e| e["path"].as_str().unwrap().ends_with(".MP4"))
        .map(|e| {
            let path = e["path"].as_str().unwrap();
            let name = path.rsplit('/').next().unwrap();
            let n: u32 = name.split(['_', '.']).nth(3).unwrap().parse().unwrap();
            (
                format!("{}#{n}", e["device"].as_str().unwrap()),
                e["id"].as_str().unwrap().to_string(),
            )
        })
        .collect()
}

fn linked(view: &Value) -> BTreeMap<String, (bool, bool)> {
    view["evidence"]
        .as_array()
        .unwrap()
        .iter()
        .map(|l| {
            (
                l["item"]["evidence"].as_str().unwrap().to_string(),
                (
                    l["link"]["automatic"].as_bool().unwrap(),
                    l["link"]["review"].as_bool().unwrap(),
                ),
            )
        })
        .collect()
}

const HEADER: &str = "case_id,case_type,title,unit,officers,window_start,window_end,place,status\n";

#[test]
fn import_auto_link_override_reimport_retention_and_rebuild() {
    let store_dir = tempfile::tempdir().unwrap();
    let config = format!(
        "utc_offset = \"+08:00\"\n[store]\nurl = \"file://{}\"\n\n[[camera]]\nname = \"sim\"\ndriver = \"zfy-sim\"\nallow = [\"*\"]\n",
        store_dir.path().display()
    );
    let st = TestStation::with_config(&config);
    let now = Utc::now();
    let t0 = now - Duration::seconds(now.timestamp() % 60);
    let local = |t: DateTime<Utc>| t.with_timezone(&china()).naive_local();

    // Camera 1: officer 140101, a correct clock. Five recordings; the last one long ago.
    let cam1 = camera(
        st.dir.path(),
        firmware("ZFY1001", "140101", local(now)),
        &[
            local(t0 - Duration::hours(3)),
            local(t0 - Duration::hours(2)),
            local(t0 - Duration::hours(1)),
            local(t0 - Duration::minutes(30)),
            local(t0 - Duration::hours(5)),
            NaiveDateTime::parse_from_str("2025-01-01 10:00:00", "%Y-%m-%d %H:%M:%S").unwrap(),
        ],
    );
    // Camera 2: officer 140102, its clock reset to 2000-01-01 08:00 (battery died) an hour
    // after the recording below started, by camera time 07:00: really t0 − 1 h.
    let reset = NaiveDateTime::parse_from_str("2000-01-01 08:00:00", "%Y-%m-%d %H:%M:%S").unwrap();
    let cam2 = camera(
        st.dir.path(),
        firmware("ZFY1002", "140102", reset + (now - t0)),
        &[reset - Duration::hours(1)],
    );
    for card in [&cam1, &cam2] {
        let out = st.json(&["ingest", card.to_str().unwrap(), "--no-transcode"]);
        assert_eq!(out["outcome"], "released", "{out}");
    }
    let ids = evidence_ids(&st);
    assert_eq!(ids.len(), 7, "{ids:?}");
    let id = |k: &str| ids[k].as_str();

    // The register: case A has two windows on two rows, one in China time and one in UTC;
    // case B overlaps A's second window for officer 140101; case C has no footage.
    let register = format!(
        "{HEADER}\
         {CASE_A},一般程序,某矿业公司安全检查,执法一中队,140101;140102,{},{},某镇,open\n\
         {CASE_A},,,,140102,{},{},,\n\
         {CASE_B},简易程序,某加油站检查,执法二中队,140101,{},{},,办理中\n\
         {CASE_C},一般程序,,,140109,{},{},,\n",
        china_time(t0 - Duration::hours(3) - Duration::minutes(2)),
        china_time(t0 - Duration::hours(2) + Duration::minutes(20)),
        utc_time(t0 - Duration::minutes(70)),
        utc_time(t0 - Duration::minutes(50)),
        china_time(t0 - Duration::minutes(65)),
        china_time(t0 - Duration::minutes(40)),
        china_time(t0 - Duration::hours(10)),
        china_time(t0 - Duration::hours(9)),
    );
    let reg = st.dir.path().join("register.csv");
    std::fs::write(&reg, &register).unwrap();
    let ran = st.run(&[
        "case",
        "import",
        reg.to_str().unwrap(),
        "--by",
        "admin01",
        "--json",
    ]);
    assert_eq!(ran.code, 0, "{}\n{}", ran.stdout, ran.stderr);
    let report = ran.json();
    assert_eq!(report["added"].as_array().unwrap().len(), 3, "{report}");

    let a = st.json(&["case", "show", CASE_A]);
    assert_eq!(
        a["record"]["case"], CASE_A,
        "the ID is kept as written: {a}"
    );
    assert_eq!(a["windows"].as_array().unwrap().len(), 2);
    let links_a = linked(&a);
    // Recordings 1 and 2 in the first window; 3 and the reset camera's in the second, which the
    // reset camera's raw time (year 2000) could never have matched.
    assert_eq!(
        links_a.keys().cloned().collect::<Vec<_>>().len(),
        4,
        "{links_a:?}"
    );
    for k in ["ZFY1001#1", "ZFY1001#2", "ZFY1001#3", "ZFY1002#1"] {
        assert!(links_a.contains_key(id(k)), "{k} not linked to A: {a}");
    }
    assert!(
        !links_a.contains_key(id("ZFY1001#4")),
        "30 min out: not linked"
    );
    assert_eq!(
        links_a[id("ZFY1001#3")],
        (true, true),
        "in two cases: review"
    );
    assert_eq!(links_a[id("ZFY1001#1")], (true, false));
    assert_eq!(a["gaps"], 0, "{a}");
    let b = st.json(&["case", "show", CASE_B]);
    assert_eq!(
        linked(&b).into_iter().collect::<Vec<_>>(),
        vec![(id("ZFY1001#3").to_string(), (true, true))]
    );
    let c = st.json(&["case", "show", CASE_C]);
    assert_eq!(c["gaps"], 1, "no footage in C's window: {c}");
    assert_eq!(c["windows"][0]["gap"], true);
    assert_eq!(c["windows"][0]["officers_without_footage"][0], "140109");

    let events = st.events();
    let reset_rec = of_kind(&events, "acquired")
        .into_iter()
        .find(|e| e["payload"]["device"] == "ZFY1002")
        .unwrap();
    assert!(
        reset_rec["payload"]["recorded"]["raw"]
            .as_str()
            .unwrap()
            .starts_with("2000-01-01")
    );
    let linked_events = of_kind(&events, "linked");
    assert_eq!(linked_events.len(), 5);
    assert!(
        linked_events
            .iter()
            .all(|e| e["payload"]["automatic"] == true && e["actor"]["role"] == "station")
    );
    assert_eq!(of_kind(&events, "case-registered").len(), 3);
    // Linked → permanent, and on legal hold while the case is open: a custody event each.
    let retention = of_kind(&events, "retention-changed");
    assert_eq!(retention.len(), 4, "one per linked item");
    assert!(retention.iter().all(|e| e["payload"]["legal_hold"] == true));

    // A look-alike ID with ASCII brackets is not the case, but is suggested.
    let ran = st.run(&["case", "show", "晋应急罚[2023]102号"]);
    assert_ne!(ran.code, 0);
    assert!(ran.stderr.contains(CASE_A), "{}", ran.stderr);

    // A reviewer's override: recording 3 is not case B's; recording 4 is case C's.
    let ran = st.run(&[
        "unlink",
        id("ZFY1001#3"),
        CASE_B,
        "--by",
        "法制员01",
        "--reason",
        "经核查，该录像属于102号案件现场",
    ]);
    assert_eq!(ran.code, 0, "{}", ran.stderr);
    let ran = st.run(&[
        "link",
        id("ZFY1001#4"),
        CASE_C,
        "--by",
        "法制员01",
        "--reason",
        "执法人员补充说明",
    ]);
    assert_eq!(ran.code, 0, "{}", ran.stderr);
    let ran = st.run(&["link", id("ZFY1001#4"), CASE_C, "--by", "x", "--reason", ""]);
    assert_ne!(ran.code, 0, "a link needs a reason");

    // Re-import: A's title corrected, B closed, C unchanged. Links made by people stay as they
    // are; the unlinked pair is not linked again.
    let register2 = register
        .replace("某矿业公司安全检查", "某矿业公司安全生产检查")
        .replace("办理中", "已结案");
    std::fs::write(&reg, &register2).unwrap();
    let report = st.json(&["case", "import", reg.to_str().unwrap(), "--by", "admin01"]);
    assert_eq!(report["updated"].as_array().unwrap().len(), 2, "{report}");
    assert_eq!(report["unchanged"], 1);
    assert_eq!(report["linked"].as_array().unwrap().len(), 0, "{report}");
    let b = st.json(&["case", "show", CASE_B]);
    assert_eq!(b["record"]["status"], "closed");
    assert!(linked(&b).is_empty());
    assert_eq!(b["unlinked"][0]["evidence"], id("ZFY1001#3"));
    let c = st.json(&["case", "show", CASE_C]);
    assert_eq!(linked(&c)[id("ZFY1001#4")], (false, false));
    let a2 = st.json(&["case", "show", CASE_A]);
    assert_eq!(a2["record"]["title"], "某矿业公司安全生产检查");
    assert_eq!(a2["registrations"], 2);
    assert_eq!(linked(&a2).len(), 4);

    // One bad row among good ones: nothing changes, every problem is reported by line.
    let before = st.events().len();
    let bad = format!(
        "{register2}晋应急罚〔2023〕200号,一般程序,,,140101,{},{},,\n\
         晋应急罚〔2023〕201号,一般程序,,,,{},{},,\n",
        china_time(t0),
        china_time(t0 - Duration::hours(1)),
        china_time(t0),
        china_time(t0 + Duration::hours(1)),
    );
    let bad_file = st.dir.path().join("bad.csv");
    std::fs::write(&bad_file, bad).unwrap();
    let ran = st.run(&[
        "case",
        "import",
        "--by",
        "admin01",
        bad_file.to_str().unwrap(),
        "--json",
    ]);
    assert_eq!(ran.code, 2, "{}", ran.stdout);
    let problems = ran.json()["problems"].clone();
    assert_eq!(problems[0]["line"], 6, "{problems}");
    assert_eq!(problems[0]["column"], "window_end");
    assert_eq!(problems[1]["line"], 7);
    assert_eq!(problems[1]["column"], "officers");
    assert_eq!(st.events().len(), before, "nothing was logged");
    assert_eq!(st.json(&["case", "list"]).as_array().unwrap().len(), 3);

    // Categories and retention: the old unlinked recording becomes routine footage (183 days
    // from 2025-01-01: long past), is due, and is disposed of; a linked one cannot be.
    let old = id("ZFY1001#6");
    assert!(
        st.json(&["retention", "due"])
            .as_array()
            .unwrap()
            .is_empty(),
        "未分类 never expires"
    );
    let ran = st.run(&[
        "evidence",
        "set-category",
        old,
        "日常执法",
        "--by",
        "admin01",
        "--reason",
        "巡查录像，无案件",
    ]);
    assert_eq!(ran.code, 0, "{}", ran.stderr);
    let due = st.json(&["retention", "due"]);
    assert_eq!(due.as_array().unwrap().len(), 1, "{due}");
    assert_eq!(due[0]["item"]["evidence"], old);
    let ran = st.run(&[
        "retention",
        "dispose",
        id("ZFY1001#1"),
        "--by",
        "admin01",
        "--reason",
        "x",
    ]);
    assert_ne!(ran.code, 0);
    assert!(ran.stderr.contains("linked to case"), "{}", ran.stderr);
    let shown = st.json(&["evidence", "show", old]);
    let object = shown["objects"][0]["key"].as_str().unwrap().to_string();
    assert!(store_dir.path().join(&object).exists());
    let ran = st.run(&[
        "retention",
        "dispose",
        old,
        "--by",
        "admin01",
        "--reason",
        "保存期满",
    ]);
    assert_eq!(ran.code, 0, "{}", ran.stderr);
    assert!(
        !store_dir.path().join(&object).exists(),
        "removed from the store"
    );
    let events = st.events();
    let changed = of_kind(&events, "retention-changed");
    let by_person = changed
        .iter()
        .find(|e| e["actor"]["id"] == "admin01")
        .unwrap();
    assert_eq!(by_person["payload"]["category_before"], "未分类");
    assert_eq!(by_person["payload"]["category"], "日常执法");
    assert_eq!(of_kind(&events, "disposed").len(), 1);

    // Evidence show: links, retention and the custody history of one item.
    let three = st.json(&["evidence", "show", id("ZFY1001#3")]);
    assert_eq!(three["retention"]["legal_hold"], true, "{three}");
    assert_eq!(three["retention"]["retain_until"], Value::Null);
    let kinds: Vec<&str> = three["custody"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["kind"].as_str().unwrap())
        .collect();
    for k in [
        "docked",
        "acquired",
        "uploaded",
        "linked",
        "unlinked",
        "retention-changed",
    ] {
        assert!(kinds.contains(&k), "{k} missing from {kinds:?}");
    }
    // Found through the case index, they are every event a scan of the whole log finds: about
    // the item or its session, or naming it in the payload.
    let three_id = id("ZFY1001#3").to_string();
    let session = three["item"]["session"].as_str().unwrap().to_string();
    let scanned: Vec<u64> = st
        .events()
        .iter()
        .filter(|e| {
            let subject = e["subject"].to_string();
            subject.contains(&three_id)
                || subject.contains(&session)
                || e["payload"].to_string().contains(&three_id)
        })
        .map(|e| e["seq"].as_u64().unwrap())
        .collect();
    let shown: Vec<u64> = three["custody"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["seq"].as_u64().unwrap())
        .collect();
    assert_eq!(shown, scanned);

    // Back and forth: every change of retention is its own event (a return to an earlier state
    // too), and the index follows.
    let four = id("ZFY1001#4").to_string();
    let count = |st: &TestStation| {
        of_kind(&st.events(), "retention-changed")
            .iter()
            .filter(|e| e["subject"]["evidence"] == four.as_str())
            .count()
    };
    let before = count(&st);
    for verb in ["unlink", "link", "unlink"] {
        let ran = st.run(&[verb, &four, CASE_C, "--by", "法制员02", "--reason", "复核"]);
        assert_eq!(ran.code, 0, "{verb}: {}", ran.stderr);
    }
    assert_eq!(count(&st), before + 3);
    let shown = st.json(&["evidence", "show", &four]);
    assert_eq!(shown["retention"]["legal_hold"], false, "{shown}");
    let ran = st.run(&[
        "link",
        &four,
        CASE_C,
        "--by",
        "法制员02",
        "--reason",
        "复核后确认",
    ]);
    assert_eq!(ran.code, 0);
    assert_eq!(
        st.json(&["evidence", "show", &four])["retention"]["legal_hold"],
        true
    );

    // The index is a cache: rebuilt from the log, it shows the same.
    std::fs::remove_file(st.data().join("index.db")).unwrap();
    assert_eq!(st.run(&["index", "rebuild"]).code, 0);
    assert_eq!(st.json(&["case", "show", CASE_A]), a2);
    assert_eq!(
        st.json(&["case", "show", CASE_B])["unlinked"],
        b["unlinked"]
    );

    // A second station (a reviewer's workstation) on the same store sees the same cases and
    // links once the first has published its log.
    assert_eq!(st.run(&["upload"]).code, 0);
    let other = TestStation::with_config(
        &config.replace("utc_offset", "station_id = \"review-01\"\nutc_offset"),
    );
    let ran = other.run(&["index", "rebuild", "--from-store"]);
    assert_eq!(ran.code, 0, "{}", ran.stderr);
    let seen = other.json(&["case", "show", CASE_A]);
    assert_eq!(linked(&seen), linked(&a2));
    assert_eq!(seen["record"], a2["record"]);
    assert!(linked(&other.json(&["case", "show", CASE_B])).is_empty());

    // The log with all of this still verifies.
    evidock_tests::bins::verify_unpinned(&st.log_dir());
}

#[test]
fn a_register_from_another_platform_maps_its_columns() {
    let st = TestStation::with_config(
        "utc_offset = \"+08:00\"\n[cases]\nregister_offset = \"+08:00\"\nignore_columns = [\"备注\"]\n[cases.columns]\ncase_id = \"案件编号\"\ntitle = \"案件名称\"\nofficers = \"执法人员\"\nwindow_start = \"开始时间\"\nwindow_end = \"结束时间\"\nstatus = \"状态\"\n",
    );
    let reg = st.dir.path().join("导出.csv");
    let text = "案件编号,案件名称,执法人员,开始时间,结束时间,状态,备注\n\
                晋应急罚〔2024〕1号,x,140101；140102,2024-03-01 09:00,2024-03-01 10:00,已结案,\n";
    // As a Chinese Windows platform exports it: GBK.
    std::fs::write(&reg, evidock_verify::gbk::encode(text).unwrap()).unwrap();
    let ran = st.run(&[
        "case",
        "import",
        "--by",
        "admin01",
        reg.to_str().unwrap(),
        "--json",
    ]);
    assert_eq!(ran.code, 0, "{}\n{}", ran.stdout, ran.stderr);
    let c = st.json(&["case", "show", "晋应急罚〔2024〕1号"]);
    assert_eq!(c["record"]["status"], "closed");
    assert_eq!(c["record"]["officers"].as_array().unwrap().len(), 2);
    // Local times without an offset, read in the configured register offset.
    assert_eq!(
        c["record"]["windows"][0]["start"],
        "2024-03-01T01:00:00.000Z"
    );
}

#[test]
fn the_documented_sample_register_imports() {
    let st = TestStation::new();
    let sample = Path::new(env!("CARGO_MANIFEST_DIR")).join("../docs/examples/case-register.csv");
    let ran = st.run(&[
        "case",
        "import",
        "--by",
        "admin01",
        sample.to_str().unwrap(),
        "--json",
    ]);
    assert_eq!(ran.code, 0, "{}\n{}", ran.stdout, ran.stderr);
    assert_eq!(ran.json()["added"].as_array().unwrap().len(), 3);
    let a = st.json(&["case", "show", CASE_A]);
    assert_eq!(a["windows"].as_array().unwrap().len(), 2);
    assert_eq!(a["gaps"], 2, "no footage on this station: {a}");
    // The same file again changes nothing.
    let again = st.json(&[
        "case",
        "import",
        "--by",
        "admin01",
        sample.to_str().unwrap(),
    ]);
    assert_eq!(again["unchanged"], 3, "{again}");
    assert_eq!(of_kind(&st.events(), "case-registered").len(), 3);
}

#[test]
fn the_dock_links_a_docked_camera_to_an_imported_case() {
    let st = TestStation::with_config(
        "utc_offset = \"+08:00\"\n[[camera]]\nname = \"sim\"\ndriver = \"zfy-sim\"\nallow = [\"*\"]\n",
    );
    let now = Utc::now();
    let reg = st.dir.path().join("cases.json");
    std::fs::write(
        &reg,
        serde_json::json!([{
            "case_id": "晋应急罚〔2026〕55号",
            "officers": ["350901"],
            "windows": [{"start": china_time(now - Duration::hours(2)), "end": utc_time(now + Duration::hours(1))}],
        }])
        .to_string(),
    )
    .unwrap();
    assert_eq!(
        st.run(&["case", "import", "--by", "admin01", reg.to_str().unwrap()])
            .code,
        0
    );
    let dock = st.start_dock();
    let local = |t: DateTime<Utc>| t.with_timezone(&china()).naive_local();
    let card = camera(
        st.dir.path(),
        firmware("ZFY1201", "350901", local(now)),
        &[
            local(now - Duration::minutes(20)),
            local(now - Duration::minutes(10)),
        ],
    );
    station::dock(&card, &st.mount_root(), "slot-1");
    st.wait_for(60, "both recordings linked", || {
        st.json(&["case", "show", "晋应急罚〔2026〕55号"])["evidence"]
            .as_array()
            .is_some_and(|e| e.len() == 2)
    });
    station::stop(dock);
    let events = st.events();
    assert!(
        of_kind(&events, "linked")
            .iter()
            .all(|e| e["payload"]["automatic"] == true)
    );
}

/// Disposal removes copies no other item needs — counting every item with the same bytes, not
/// only those uploaded: a recording of the same content acquired from another camera and still
/// waiting for its upload keeps the spool copy (and the store object) it will be uploaded from.
#[test]
fn disposal_keeps_the_bytes_an_item_not_yet_uploaded_still_needs() {
    let store_dir = tempfile::tempdir().unwrap();
    let config = format!(
        "utc_offset = \"+08:00\"\n[store]\nurl = \"file://{}\"\n\n[[camera]]\nname = \"sim\"\ndriver = \"zfy-sim\"\nallow = [\"*\"]\n",
        store_dir.path().display()
    );
    let st = TestStation::with_config(&config);
    let long_ago =
        NaiveDateTime::parse_from_str("2025-01-01 10:00:00", "%Y-%m-%d %H:%M:%S").unwrap();
    let local_now = Utc::now().with_timezone(&china()).naive_local();
    // Both cameras' recordings have the same bytes (same size and seed; the serials' 7th
    // characters are equal).
    let cam1 = camera(
        st.dir.path(),
        firmware("ZFY2001", "140201", local_now),
        &[long_ago],
    );
    let cam2 = camera(
        st.dir.path(),
        firmware("ZFY3001", "140202", local_now),
        &[long_ago],
    );
    let out = st.json(&["ingest", cam1.to_str().unwrap(), "--no-transcode"]);
    assert_eq!(out["outcome"], "released", "{out}");
    let out = st.json(&[
        "ingest",
        cam2.to_str().unwrap(),
        "--no-transcode",
        "--no-upload",
    ]);
    assert_eq!(out["outcome"], "released", "{out}");
    let events = st.events();
    let acquired = of_kind(&events, "acquired");
    let recording = |dev: &str| {
        acquired
            .iter()
            .find(|e| {
                e["payload"]["device"] == dev
                    && e["payload"]["path"].as_str().unwrap().ends_with(".MP4")
            })
            .unwrap()
            .to_owned()
            .clone()
    };
    let (first, second) = (recording("ZFY2001"), recording("ZFY3001"));
    assert_eq!(
        first["payload"]["digests"]["sha256"], second["payload"]["digests"]["sha256"],
        "the same bytes"
    );
    let old = first["subject"]["evidence"].as_str().unwrap();
    let ran = st.run(&[
        "evidence",
        "set-category",
        old,
        "日常执法",
        "--by",
        "admin01",
        "--reason",
        "巡查录像，无案件",
    ]);
    assert_eq!(ran.code, 0, "{}", ran.stderr);
    let ran = st.run(&[
        "retention",
        "dispose",
        old,
        "--by",
        "admin01",
        "--reason",
        "保存期满",
    ]);
    assert_eq!(ran.code, 0, "{}", ran.stderr);
    // The second recording's upload still has its source, and lands.
    let ran = st.run(&["upload"]);
    assert_eq!(ran.code, 0, "{}\n{}", ran.stdout, ran.stderr);
    let uploaded = of_kind(&st.events(), "uploaded")
        .iter()
        .any(|e| e["subject"]["evidence"] == second["subject"]["evidence"]);
    assert!(uploaded, "the item of the same bytes was never uploaded");
    let ran = st.run(&["verify", "--by", "reviewer01", "--all", "--json"]);
    assert_eq!(ran.code, 0, "{}", ran.stdout);
}

/// A register file that cannot be imported whole is imported not at all, said loudly: every
/// limit is checked before anything is recorded, an unknown column is named, line numbers are
/// right for CRLF files, and no input is echoed beyond a short excerpt.
#[test]
fn a_register_is_imported_all_or_nothing_and_its_problems_are_named() {
    let st = TestStation::new();
    let now = chrono::Utc::now();
    let (a, b) = (
        (now - Duration::hours(1)).to_rfc3339(),
        (now + Duration::hours(1)).to_rfc3339(),
    );
    let header = "case_id,case_type,title,officers,window_start,window_end,place\n";
    let row = |n: u32, title: &str| {
        format!("晋应急罚〔2026〕{n}号,一般程序,{title},140101,{a},{b},某镇\n")
    };
    let import = |name: &str, bytes: &[u8]| {
        let p = st.dir.path().join(name);
        std::fs::write(&p, bytes).unwrap();
        st.run(&["case", "import", "--by", "admin01", p.to_str().unwrap()])
    };
    let registered = || of_kind(&st.events(), "case-registered").len();
    let quiet = |ran: &evidock_tests::bins::Ran, what: &str| {
        assert!(
            ran.stderr.len() < 4096,
            "{what}: {} bytes of stderr",
            ran.stderr.len()
        );
    };

    // A field of 1.2 MiB on the third row: two good rows before it are not recorded.
    let huge = "某".repeat(400_000);
    let file = format!("{header}{}{}{}", row(1, "甲"), row(2, "乙"), row(3, &huge));
    let ran = import("huge.csv", file.as_bytes());
    assert_eq!(ran.code, 2, "{}", ran.stderr);
    assert!(ran.stderr.contains("line 4"), "{}", ran.stderr);
    quiet(&ran, "a huge field");
    assert_eq!(registered(), 0, "nothing of a refused register is recorded");

    // A case whose merged rows make one event too large for the log: refused before any is written.
    let mut many = String::from(header);
    many.push_str(&row(9, "丙"));
    for i in 0..20_000 {
        let start = (now - Duration::hours(1) + Duration::seconds(i)).to_rfc3339();
        many.push_str(&format!(
            "晋应急罚〔2026〕10号,一般程序,丁,140101,{start},{b},某镇\n"
        ));
    }
    let ran = import("many.csv", many.as_bytes());
    assert_eq!(ran.code, 2, "{}", ran.stderr);
    quiet(&ran, "an event too large");
    assert_eq!(registered(), 0);

    // A misspelled column.
    let typo = format!(
        "case_id,case_typ,title,officers,window_start,window_end,place\n{}",
        row(4, "戊")
    );
    let ran = import("typo.csv", typo.as_bytes());
    assert_eq!(ran.code, 2, "{}", ran.stderr);
    assert!(ran.stderr.contains("case_typ"), "{}", ran.stderr);
    assert_eq!(registered(), 0);

    // CRLF, as a Windows export: the bad row is line 3, not 2.
    let crlf = format!(
        "{header}{}晋应急罚〔2026〕5号,一般程序,己,,{a},{b},某镇\n",
        row(5, "庚")
    )
    .replace('\n', "\r\n");
    let ran = import("crlf.csv", crlf.as_bytes());
    assert_eq!(ran.code, 2, "{}", ran.stderr);
    assert!(ran.stderr.contains("line 3"), "{}", ran.stderr);

    // A 2 MB header without a newline is not echoed back.
    let ran = import("noline.csv", "x".repeat(2_000_000).as_bytes());
    assert_eq!(ran.code, 2, "{}", ran.stderr);
    quiet(&ran, "a header without newline");

    // An importer must be named.
    let ok = format!("{header}{}", row(6, "辛"));
    let p = st.dir.path().join("ok.csv");
    std::fs::write(&p, &ok).unwrap();
    for by in ["", "  ", "a\u{7}b"] {
        let ran = st.run(&["case", "import", "--by", by, p.to_str().unwrap()]);
        assert_eq!(ran.code, 2, "--by {by:?}: {}", ran.stderr);
    }
    assert_eq!(registered(), 0);
    assert_eq!(import("ok.csv", ok.as_bytes()).code, 0);
    assert_eq!(registered(), 1);
}
