//! The whole pipeline in the dock daemon: four throttled cameras at once through acquisition,
//! upload with read-back, playback copies, automatic case links and `evidock verify`; and the
//! daemon killed with SIGKILL twenty times while cameras copy and uploads run.
// Test helpers panic on purpose: a failed expectation is a failed test.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use evidock_ingest::device::sim::{self, SimContent};
use evidock_tests::bins;
use evidock_tests::media::clip;
use evidock_tests::station::{self, TestStation, of_kind};
use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

const CONFIG: &str = "utc_offset = \"+08:00\"\n[status]\nenabled = false\n[acquire]\nsync_every_mib = 1\nbuffer_kib = 256\n[[camera]]\nname = \"sim\"\ndriver = \"zfy-sim\"\nallow = [\"*\"]\nwipe = \"after-upload\"\n";

fn uploaded_originals(st: &TestStation) -> usize {
    of_kind(&st.events(), "uploaded")
        .iter()
        .filter(|e| e["payload"]["role"] == "original")
        .count()
}

/// Every original in the local store, by SHA-256 (its file name).
fn store_objects(st: &TestStation) -> Vec<String> {
    let mut out = Vec::new();
    let root = st.data().join("store/originals/sha256");
    for a in std::fs::read_dir(&root).into_iter().flatten().flatten() {
        for b in std::fs::read_dir(a.path()).into_iter().flatten().flatten() {
            for f in std::fs::read_dir(b.path()).into_iter().flatten().flatten() {
                out.push(f.file_name().to_string_lossy().into_owned());
            }
        }
    }
    out.sort();
    out
}

#[test]
fn four_cameras_at_once_land_in_the_store_linked_and_verified() {
    let st = TestStation::with_config(CONFIG);
    let work = tempfile::tempdir().unwrap();
    let now = chrono::Utc::now();
    let reg = work.path().join("cases.csv");
    std::fs::write(
        &reg,
        format!(
            "case_id,officers,window_start,window_end\n晋应急罚〔2026〕88号,350801;350802;350803;350804,{},{}\n",
            (now - chrono::Duration::hours(2)).to_rfc3339(),
            (now + chrono::Duration::hours(1)).to_rfc3339()
        ),
    )
    .unwrap();
    assert_eq!(
        st.run(&["case", "import", "--by", "admin01", reg.to_str().unwrap()])
            .code,
        0
    );
    let dock = st.start_dock();
    let mut cards = Vec::new();
    for i in 1..=4u32 {
        let serial = format!("ZFY080{i}");
        let mut fw = station::firmware(&serial, &format!("35080{i}"));
        fw.read_bytes_per_sec = 4_000_000;
        let at = fw.clock_at(now).unwrap();
        let files: Vec<(Vec<u8>, SimContent)> = (0..2u32)
            .map(|k| {
                let p = work.path().join(format!("c{i}-{k}.mp4"));
                clip(&p, "320x240", 1, 40 * i + 7 * k);
                (
                    sim::recording_name(
                        &serial,
                        &format!("35080{i}"),
                        at - chrono::Duration::minutes(i64::from(10 + k)),
                        k + 1,
                        "MP4",
                    )
                    .into_bytes(),
                    SimContent::CopyOf(p),
                )
            })
            .collect();
        cards.push((serial.clone(), station::camera(work.path(), fw, files)));
    }
    for (serial, card) in &cards {
        station::dock(card, &st.mount_root(), serial);
    }
    st.wait_for(
        120,
        "every original uploaded and every playback copy made",
        || {
            let ev = st.events();
            uploaded_originals(&st) >= 12
                && of_kind(&ev, "transcoded")
                    .iter()
                    .filter(|e| e["payload"]["role"] == "playback")
                    .count()
                    >= 8
                && of_kind(&ev, "linked").len() >= 8
        },
    );
    station::stop(dock);
    let events = st.events();
    // Eight recordings and four card markers, once each.
    assert_eq!(of_kind(&events, "acquired").len(), 12);
    assert_eq!(store_objects(&st).len(), 12);
    let case = st.json(&["case", "show", "晋应急罚〔2026〕88号"]);
    assert_eq!(case["evidence"].as_array().unwrap().len(), 8, "{case:#}");
    let ran = st.run(&["verify", "--by", "reviewer01", "--all", "--json"]);
    assert_eq!(ran.code, 0, "{}", ran.stdout);
}

/// A small deterministic generator, so a failure can be replayed from its seed.
struct Lcg(u64);
impl Lcg {
    fn next(&mut self, below: u64) -> u64 {
        self.0 = self
            .0
            .wrapping_mul(6364136223846793005)
            .wrapping_add(1442695040888963407);
        (self.0 >> 33) % below
    }
}

#[test]
fn kill_9_twenty_times_loses_and_duplicates_nothing() {
    let seed = std::env::var("KILL_SEED")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(|| chrono::Utc::now().timestamp_nanos_opt().unwrap_or(1) as u64);
    eprintln!("kill loop seed {seed} (KILL_SEED={seed} replays it)");
    let mut rng = Lcg(seed);
    let st = TestStation::with_config(CONFIG);
    let work = tempfile::tempdir().unwrap();
    let mut manifests: BTreeMap<String, BTreeMap<String, String>> = BTreeMap::new();
    let mut cards: Vec<(String, PathBuf)> = Vec::new();
    for i in 1..=2u32 {
        let serial = format!("ZFY090{i}");
        let mut fw = station::firmware(&serial, &format!("35090{i}"));
        fw.read_bytes_per_sec = 6_000_000;
        let files = station::recordings(&fw, 3, 5_000_000, u64::from(i) * 7);
        let card = station::camera(work.path(), fw, files);
        let mut m = BTreeMap::new();
        for e in walkdir(&card) {
            m.insert(
                e.strip_prefix(&card)
                    .unwrap()
                    .to_string_lossy()
                    .into_owned(),
                station::sha256_file(&e),
            );
        }
        manifests.insert(serial.clone(), m);
        cards.push((serial, card));
    }
    std::fs::create_dir_all(st.mount_root()).unwrap();
    for (serial, card) in &cards {
        station::dock(card, &st.mount_root(), serial);
    }
    for round in 0..20 {
        let mut dock = st.start_dock();
        let ms = 150 + rng.next(900);
        std::thread::sleep(std::time::Duration::from_millis(ms));
        dock.kill9();
        eprintln!("round {round}: killed after {ms} ms");
    }
    // The last run finishes everything.
    let dock = st.start_dock();
    st.wait_for(120, "all originals uploaded and the cameras wiped", || {
        uploaded_originals(&st) >= 8 && of_kind(&st.events(), "device-wiped").len() >= 2
    });
    station::stop(dock);

    let events = st.events();
    // Every file of both cards acquired exactly once, with the card's digest.
    let acquired = of_kind(&events, "acquired");
    let mut seen: BTreeSet<(String, String)> = BTreeSet::new();
    for e in &acquired {
        let p = &e["payload"];
        let dev = p["device"].as_str().unwrap().to_string();
        let path = p["path"].as_str().unwrap().to_string();
        assert!(
            seen.insert((dev.clone(), path.clone())),
            "acquired twice: {dev} {path}"
        );
        assert_eq!(
            manifests[&dev][&path],
            p["digests"]["sha256"].as_str().unwrap(),
            "{dev} {path}"
        );
    }
    let expected: usize = manifests.values().map(BTreeMap::len).sum();
    assert_eq!(acquired.len(), expected, "every file, once");
    // Every original in the store exactly once (content-addressed: one object per digest).
    let shas: BTreeSet<String> = acquired
        .iter()
        .map(|e| {
            e["payload"]["digests"]["sha256"]
                .as_str()
                .unwrap()
                .to_string()
        })
        .collect();
    assert_eq!(store_objects(&st), shas.into_iter().collect::<Vec<_>>());
    // No file was wiped from a camera before its verified upload was logged.
    let uploaded_at: BTreeMap<String, u64> = of_kind(&events, "uploaded")
        .iter()
        .filter(|e| e["payload"]["role"] == "original")
        .map(|e| {
            (
                e["subject"]["evidence"].as_str().unwrap().to_string(),
                e["seq"].as_u64().unwrap(),
            )
        })
        .collect();
    for w in of_kind(&events, "device-wiped") {
        for f in w["payload"]["files"].as_array().unwrap() {
            let ev = f["evidence"].as_str().unwrap();
            let up = uploaded_at
                .get(ev)
                .unwrap_or_else(|| panic!("{ev} wiped, never uploaded"));
            assert!(
                *up < w["seq"].as_u64().unwrap(),
                "{ev} wiped before its upload"
            );
        }
    }
    // The custody log is whole and consistent; the station's own check passes.
    bins::verify_unpinned(&st.log_dir());
    let ran = st.run(&["verify", "--by", "reviewer01", "--all", "--json"]);
    assert_eq!(ran.code, 0, "{}", ran.stdout);
}

fn walkdir(dir: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    for e in std::fs::read_dir(dir).unwrap().flatten() {
        let p = e.path();
        if p.is_dir() {
            out.extend(walkdir(&p));
        } else {
            out.push(p);
        }
    }
    out
}

/// One acquirer per station: a second `evidock dock`, or `evidock ingest` beside the dock,
/// would write the same partial copies. Each is refused, saying who acquires.
#[test]
fn a_second_acquirer_is_refused_with_who_holds_the_station() {
    let st = TestStation::with_config(CONFIG);
    let dock = st.start_dock();
    st.wait_for(30, "the dock to start", || {
        st.dock_log().contains("evidock dock: station")
    });
    let card = tempfile::tempdir().unwrap();
    std::fs::write(card.path().join("a.mp4"), b"x").unwrap();
    let ingest = st.run(&[
        "ingest",
        card.path().to_str().unwrap(),
        "--force",
        "--serial",
        "ZFY0999",
        "--quiet",
    ]);
    let holder = format!("evidock dock, pid {}", dock.id());
    assert_ne!(ingest.code, 0, "{}", ingest.stderr);
    assert!(
        ingest
            .stderr
            .contains("another evidock process is acquiring on this station")
            && ingest.stderr.contains(&holder),
        "{}",
        ingest.stderr
    );
    let second = st.run(&["dock", "--mount-root", st.mount_root().to_str().unwrap()]);
    assert_ne!(second.code, 0, "{}", second.stderr);
    assert!(second.stderr.contains(&holder), "{}", second.stderr);
    station::stop(dock);
    // Once the dock is gone, ingest may acquire.
    let ingest = st.run(&[
        "ingest",
        card.path().to_str().unwrap(),
        "--force",
        "--serial",
        "ZFY0999",
        "--quiet",
        "--no-upload",
        "--no-transcode",
    ]);
    assert_eq!(ingest.code, 0, "{}", ingest.stderr);
}
