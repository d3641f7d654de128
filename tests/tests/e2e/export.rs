//! Disclosure packages end to end: real footage made by the ffmpeg CLI, a real RFC 3161 TSA
//! (`openssl ts -reply`), the real `evidock` and `evidock-verify` binaries; the package checked
//! with stock tools (`sha256sum -c`, `openssl ts -verify`, `case_validate`), then tampered with
//! in every way a court worries about, each caught with its own finding code.
// Test helpers panic on purpose: a failed expectation is a failed test.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use evidock_tests::bins::{self, trust_file, verify};
use evidock_tests::media::clip;
use evidock_tests::station::{TestStation, of_kind};
use evidock_tests::tsa::TsaRig;
use serde_json::Value;
use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::process::Command;

const CASE: &str = "晋应急罚〔2023〕102号";

fn codes(v: &Value, level: &str) -> BTreeSet<String> {
    v["report"]["findings"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|f| f["level"] == level)
        .map(|f| f["code"].as_str().unwrap().to_string())
        .collect()
}

fn flip_byte(p: &Path, at_fraction: f64) {
    use std::os::unix::fs::PermissionsExt as _;
    let mut b = std::fs::read(p).unwrap();
    let i = (((b.len() as f64) * at_fraction) as usize).min(b.len() - 1);
    b[i] ^= 0x01;
    let _ = std::fs::set_permissions(p, std::fs::Permissions::from_mode(0o644));
    std::fs::write(p, b).unwrap();
}

fn case_validate() -> Option<PathBuf> {
    if let Ok(p) = std::env::var("EVIDOCK_CASE_VALIDATE") {
        return Some(PathBuf::from(p));
    }
    let venv = Path::new(env!("CARGO_MANIFEST_DIR")).join("../target/caseenv/bin/case_validate");
    venv.exists().then_some(venv)
}

#[test]
fn a_case_exported_checked_with_stock_tools_and_every_tampering_caught() {
    let tsa = TsaRig::start().unwrap();
    let st = TestStation::with_config(&format!(
        "station_id = \"dock-01\"\nutc_offset = \"+08:00\"\n[digests]\nsm3 = true\n{}\n[[camera]]\nname = \"any\"\ndriver = \"mass-storage\"\nallow = [\"*\"]\n",
        tsa.station_config()
    ));
    let card = st.dir.path().join("ZFY0500");
    std::fs::create_dir_all(card.join("DCIM")).unwrap();
    clip(&card.join("DCIM/ZFY0500_0001.MP4"), "320x240", 2, 0);
    clip(&card.join("DCIM/ZFY0500_0002.MP4"), "320x240", 2, 120);
    let out = st.json(&[
        "ingest",
        card.to_str().unwrap(),
        "--serial",
        "ZFY0500",
        "--officer",
        "350500",
    ]);
    assert_eq!(out["outcome"], "released", "{out}");
    let imported = st.import_case_now(CASE, "某矿业公司安全检查", "350500");
    assert_eq!(
        imported["linked"].as_array().unwrap().len(),
        2,
        "{imported}"
    );

    let pkg = st.dir.path().join("移送-102");
    let ran = st.run(&[
        "export",
        "--case",
        CASE,
        "--out",
        pkg.to_str().unwrap(),
        "--zip",
        "--by",
        "法制员01",
        "--witness",
        "李四 350999",
        "--json",
    ]);
    assert_eq!(ran.code, 0, "{}\n{}", ran.stdout, ran.stderr);
    let exported = ran.json();
    assert_eq!(exported["originals"], 2, "{exported}");
    assert_eq!(
        exported["derivatives"], 6,
        "playback, poster, contact sheet each"
    );
    assert!(
        !exported["timestamps"].as_array().unwrap().is_empty(),
        "{exported}"
    );
    for dir in [
        "originals",
        "derivatives",
        "thumbnails",
        "custody/proofs",
        "custody/timestamps",
    ] {
        assert!(pkg.join(dir).is_dir(), "{dir}");
    }
    for f in [
        "evidence-list.csv",
        "evidence-list.html",
        "collection-record.html",
        "report.html",
        "VERIFY.md",
        "case.jsonld",
        "SHA256SUMS",
        "SM3SUMS",
        "MANIFEST.json",
        "MANIFEST.sig",
    ] {
        assert!(pkg.join(f).is_file(), "{f}");
    }
    // The originals are bit-exact.
    for name in ["ZFY0500_0001.MP4", "ZFY0500_0002.MP4"] {
        let inside = std::fs::read_dir(pkg.join("originals"))
            .unwrap()
            .flatten()
            .find(|e| e.file_name().to_string_lossy().ends_with(name))
            .unwrap()
            .path();
        assert_eq!(
            std::fs::read(inside).unwrap(),
            std::fs::read(card.join("DCIM").join(name)).unwrap()
        );
    }
    // The exported event names the manifest; it is in the station's log, not the package.
    let events = st.events();
    let ex = of_kind(&events, "exported");
    assert_eq!(ex.len(), 1);
    assert_eq!(
        ex[0]["payload"]["manifest_sha256"],
        evidock_tests::station::sha256_file(&pkg.join("MANIFEST.json"))
    );
    assert_eq!(ex[0]["actor"]["id"], "法制员01");
    let in_pkg = std::fs::read_to_string(pkg.join("custody/events.jsonl")).unwrap();
    assert!(!in_pkg.contains("\"exported\""));
    // Only this case's events: no other case, no station-wide events.
    assert!(!in_pkg.contains("\"timestamped\""));

    // Stock tools.
    let sums = Command::new("sha256sum")
        .args(["-c", "--quiet", "SHA256SUMS"])
        .current_dir(&pkg)
        .output()
        .unwrap();
    assert!(
        sums.status.success(),
        "{}",
        String::from_utf8_lossy(&sums.stdout)
    );
    let size = exported["timestamps"]
        .as_array()
        .unwrap()
        .last()
        .unwrap()
        .as_u64()
        .unwrap();
    let ts = Command::new("openssl")
        .args(["ts", "-verify", "-data"])
        .arg(format!("custody/checkpoints/{size}.note"))
        .arg("-in")
        .arg(format!("custody/timestamps/{size}.tsr"))
        // The receiver's own copy of the TSA root, never the package's.
        .arg("-CAfile")
        .arg(&tsa.ca_pem)
        .current_dir(&pkg)
        .output()
        .unwrap();
    assert!(
        String::from_utf8_lossy(&ts.stdout).contains("Verification: OK"),
        "{}{}",
        String::from_utf8_lossy(&ts.stdout),
        String::from_utf8_lossy(&ts.stderr)
    );
    match case_validate() {
        Some(cv) => {
            let v = Command::new(&cv)
                .arg(pkg.join("case.jsonld"))
                .output()
                .unwrap();
            assert!(
                v.status.success(),
                "case_validate:\n{}{}",
                String::from_utf8_lossy(&v.stdout),
                String::from_utf8_lossy(&v.stderr)
            );
        }
        None => panic!(
            "case_validate not installed: `make deps-test` installs case-utils into target/caseenv"
        ),
    }
    let zip = PathBuf::from(format!("{}.zip", pkg.display()));
    let z = Command::new("python3")
        .args(["-m", "zipfile", "-t"])
        .arg(&zip)
        .output()
        .unwrap();
    assert!(z.status.success(), "{}", String::from_utf8_lossy(&z.stderr));

    // evidock-verify: anchored by a trust file (the station key, the TSA root).
    let key = st.json(&["station", "show"])["public_key"]
        .as_str()
        .unwrap()
        .to_string();
    // The paper a receiver signs at hand-over carries what it must pin — the key fingerprint,
    // the TSA root, the checkpoint to hold later packages to — and VERIFY.md never fills the
    // trust file in from the package.
    let fingerprint = st.json(&["station", "show"])["fingerprint_sha256"]
        .as_str()
        .unwrap()
        .to_string();
    let record = std::fs::read_to_string(pkg.join("collection-record.html")).unwrap();
    assert!(
        record.contains(&fingerprint),
        "the collection record prints the fingerprint"
    );
    assert!(
        record.contains(&tsa.ca_sha256().unwrap().to_string()),
        "and the TSA root's"
    );
    // The card was a folder given to `evidock ingest`: the record says so, and claims no USB
    // read-only block device or mount the station never made (an officer signs this).
    assert!(
        record.contains("由操作人员指定的文件夹") && record.contains("evidock ingest"),
        "the record states the method used"
    );
    assert!(
        !record.contains("只读块设备")
            && !record.contains("块设备只读")
            && !record.contains("mounted it read-only"),
        "the record claims a method not used"
    );
    assert!(
        !record.contains(" 毫秒"),
        "clock offsets read as ±HH:MM:SS, not milliseconds"
    );
    // Read well in Chinese: named people, totals, page numbers, Chinese words for events and
    // states, byte counts grouped; and each document rendered on A4 by Chromium, kept as a
    // test artefact.
    assert!(
        record.contains("李四 350999") && record.contains("法制员01"),
        "提取人/见证人 printed"
    );
    assert!(
        record.contains("合计") && record.contains("counter(pages)"),
        "totals and 第 页 共 页"
    );
    let report = std::fs::read_to_string(pkg.join("report.html")).unwrap();
    assert!(
        report.contains("提取（复制并核对）") && report.contains("办理中"),
        "zh events and state"
    );
    let list = std::fs::read_to_string(pkg.join("evidence-list.html")).unwrap();
    assert!(
        list.contains("合计") && list.contains("本案证据"),
        "the list's totals and category"
    );
    assert!(
        regex_lite_grouped(&list),
        "byte counts with grouped digits in the list"
    );
    screenshots(&pkg);
    let verify_md = std::fs::read_to_string(pkg.join("VERIFY.md")).unwrap();
    assert!(
        !verify_md.contains(&key) && !verify_md.contains(&fingerprint),
        "{verify_md}"
    );
    assert!(verify_md.contains("-CAfile TSA-ROOT.pem"), "{verify_md}");
    assert!(!verify_md.contains("-CAfile custody/tsa"), "{verify_md}");
    let trust = trust_file(&st.dir.path().join("trust.toml"), &key, Some(&tsa.ca_pem));
    let (code, v) = verify(&pkg, Some(&trust));
    assert_eq!(code, 0, "{v:#}");
    assert_eq!(v["integrity_proven"], true);
    assert_eq!(v["time_attested"], true, "{v:#}");
    let checkpoint = v["checkpoint"].as_str().unwrap();
    assert!(
        record.contains(checkpoint),
        "the record prints {checkpoint}"
    );
    assert!(codes(&v, "warning").is_empty(), "{v:#}");
    assert!(
        v["files"]
            .as_array()
            .unwrap()
            .iter()
            .all(|f| f["integrity"] == true)
    );
    // Without a trust file: only consistent with the key the package brings, and says so.
    let v = bins::verify_unpinned(&pkg);
    assert!(codes(&v, "warning").contains("trust.not-anchored"), "{v:#}");
    assert_eq!(v["time_attested"], false, "{v:#}");

    // Every way to tamper with it, and every attack on the verifier: tests/tests/e2e/attacks/.
    let manifest: Value =
        serde_json::from_slice(&std::fs::read(pkg.join("MANIFEST.json")).unwrap()).unwrap();

    // The reviewer's side on the station: fetch to watch (logged), verify the store.
    let ev_id = exported_item(&manifest);
    let watch = st.dir.path().join("watch.mp4");
    let ran = st.run(&[
        "evidence",
        "get",
        &ev_id,
        "--out",
        watch.to_str().unwrap(),
        "--derivative",
        "--by",
        "法制员01",
        "--purpose",
        "法制审核",
    ]);
    assert_eq!(ran.code, 0, "{}", ran.stderr);
    let accessed = of_kind(&st.events(), "accessed")
        .into_iter()
        .cloned()
        .collect::<Vec<_>>();
    assert_eq!(accessed.len(), 1);
    assert_eq!(accessed[0]["payload"]["role"], "playback");
    assert_eq!(accessed[0]["payload"]["purpose"], "法制审核");
    assert_eq!(
        accessed[0]["payload"]["sha256"],
        evidock_tests::station::sha256_file(&watch)
    );
    let again = st.run(&[
        "evidence",
        "get",
        &ev_id,
        "--out",
        watch.to_str().unwrap(),
        "--by",
        "x",
    ]);
    assert_ne!(again.code, 0, "nothing is overwritten");

    let ran = st.run(&["verify", "--case", CASE, "--by", "法制员01", "--json"]);
    assert_eq!(ran.code, 0, "{}", ran.stdout);
    let v = ran.json();
    assert_ne!(v["result"], "failed", "{v:#}");
    assert_eq!(v["review"]["items"], 2);
    let verified = of_kind(&st.events(), "verified")
        .into_iter()
        .cloned()
        .collect::<Vec<_>>();
    assert_eq!(verified.len(), 1);
    assert_eq!(verified[0]["payload"]["scope"], format!("case {CASE}"));
    assert_eq!(verified[0]["actor"]["id"], "法制员01");
    // An original altered in the store is found, by name.
    let store_obj = std::fs::read_dir(st.data().join("store/originals/sha256"))
        .unwrap()
        .flatten()
        .flat_map(|d| std::fs::read_dir(d.path()).unwrap().flatten())
        .flat_map(|d| std::fs::read_dir(d.path()).unwrap().flatten())
        .map(|e| e.path())
        .next()
        .unwrap();
    flip_byte(&store_obj, 0.3);
    let ran = st.run(&["verify", "--by", "reviewer01", "--all", "--json"]);
    assert_eq!(ran.code, 1, "{}", ran.stdout);
    let v = ran.json();
    assert_eq!(v["result"], "failed");
    let found: Vec<&Value> = v["review"]["report"]["findings"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|f| f["code"] == "store.original-altered")
        .collect();
    assert_eq!(found.len(), 1, "{v:#}");
    assert!(
        found[0]["subject"]
            .as_str()
            .unwrap()
            .contains(store_obj.file_name().unwrap().to_str().unwrap())
    );
}

fn exported_item(manifest: &Value) -> String {
    manifest["files"]
        .as_array()
        .unwrap()
        .iter()
        .find(|f| f["role"] == "derivative")
        .unwrap()["evidence"]
        .as_str()
        .unwrap()
        .to_string()
}

/// What an export and a fetch write around `--out`: a `<out>.partial` they did not create is
/// never deleted nor written through (a link planted there must not redirect the copy), and a
/// long `--out` still gets its `exported` and `accessed` events.
#[test]
fn scratch_paths_of_others_are_never_touched_and_long_paths_are_logged() {
    let st = TestStation::with_config(
        "utc_offset = \"+08:00\"\n[[camera]]\nname = \"any\"\ndriver = \"mass-storage\"\nallow = [\"*\"]\n",
    );
    let card = st.dir.path().join("ZFY0510");
    std::fs::create_dir_all(card.join("DCIM")).unwrap();
    clip(&card.join("DCIM/ZFY0510_0001.MP4"), "160x120", 1, 0);
    let out = st.json(&[
        "ingest",
        card.to_str().unwrap(),
        "--serial",
        "ZFY0510",
        "--officer",
        "350510",
    ]);
    assert_eq!(out["outcome"], "released", "{out}");
    st.import_case_now(CASE, "某公司检查", "350510");

    // Someone's directory where the export would put its scratch copy.
    let pkg = st.dir.path().join("pkg");
    let theirs = st.dir.path().join("pkg.partial");
    std::fs::create_dir_all(&theirs).unwrap();
    std::fs::write(theirs.join("keep.txt"), b"not evidock's").unwrap();
    let export = |out: &Path| {
        st.run(&[
            "export",
            "--case",
            CASE,
            "--out",
            out.to_str().unwrap(),
            "--by",
            "法制员01",
        ])
    };
    let ran = export(&pkg);
    assert_eq!(ran.code, 0, "{}", ran.stderr);
    assert_eq!(
        std::fs::read(theirs.join("keep.txt")).unwrap(),
        b"not evidock's"
    );
    assert_eq!(
        std::fs::read_dir(&theirs).unwrap().count(),
        1,
        "nothing written into someone's directory"
    );

    // A long --out (the path is more than an event key may hold): exported, and logged.
    let mut long = st.dir.path().to_path_buf();
    for c in ['a', 'b', 'c'] {
        long.push(c.to_string().repeat(200));
    }
    std::fs::create_dir_all(&long).unwrap();
    let long_pkg = long.join("移送");
    let ran = export(&long_pkg);
    assert_eq!(ran.code, 0, "{}", ran.stderr);
    let events = st.events();
    let exported = of_kind(&events, "exported");
    assert_eq!(exported.len(), 2, "both exports are in the custody log");

    // A link planted where `evidence get` once wrote its scratch copy.
    let manifest: Value =
        serde_json::from_slice(&std::fs::read(long_pkg.join("MANIFEST.json")).unwrap()).unwrap();
    let ev_id = manifest["files"]
        .as_array()
        .unwrap()
        .iter()
        .find(|f| f["role"] == "original")
        .unwrap()["evidence"]
        .as_str()
        .unwrap()
        .to_string();
    let victim = st.dir.path().join("victim.txt");
    std::fs::write(&victim, b"precious").unwrap();
    let watch = st.dir.path().join("watch.mp4");
    std::os::unix::fs::symlink(&victim, st.dir.path().join("watch.mp4.partial")).unwrap();
    let ran = st.run(&[
        "evidence",
        "get",
        &ev_id,
        "--out",
        watch.to_str().unwrap(),
        "--by",
        "法制员01",
    ]);
    // The fetch no longer writes beside --out at all: the link is neither followed nor removed.
    assert_eq!(ran.code, 0, "{}", ran.stderr);
    assert_eq!(std::fs::read(&victim).unwrap(), b"precious");
    assert!(
        std::fs::symlink_metadata(st.dir.path().join("watch.mp4.partial"))
            .unwrap()
            .file_type()
            .is_symlink()
    );
    assert!(std::fs::symlink_metadata(&watch).unwrap().is_file());
    // And with a long --out, the fetch is logged.
    let long_watch = long.join("watch.mp4");
    let ran = st.run(&[
        "evidence",
        "get",
        &ev_id,
        "--out",
        long_watch.to_str().unwrap(),
        "--by",
        "法制员01",
    ]);
    assert_eq!(ran.code, 0, "{}", ran.stderr);
    assert!(!of_kind(&st.events(), "accessed").is_empty());
}

/// Whether a "1,234 字节" style grouped number is in the text.
fn regex_lite_grouped(text: &str) -> bool {
    text.split("字节").any(|before| {
        let tail: String = before
            .chars()
            .rev()
            .skip_while(|c| *c == ' ')
            .take_while(|c| c.is_ascii_digit() || *c == ',')
            .collect();
        tail.contains(',')
    })
}

/// Each document of the package on A4 in headless Chromium: a PNG per document in
/// target/test-artifacts/, for a person to look at.
fn screenshots(pkg: &Path) {
    let artifacts = Path::new(env!("CARGO_MANIFEST_DIR")).join("../target/test-artifacts");
    std::fs::create_dir_all(&artifacts).unwrap();
    for doc in ["collection-record", "evidence-list", "report"] {
        let shot = artifacts.join(format!("package-{doc}.png"));
        let _ = std::fs::remove_file(&shot);
        let profile = tempfile::tempdir().unwrap();
        // A4 at 96 dpi: 794 × 1123 (the evidence list is landscape).
        let size = if doc == "evidence-list" {
            "1123,794"
        } else {
            "794,1123"
        };
        let out = std::process::Command::new("chromium")
            .args([
                "--headless=new",
                "--no-sandbox",
                "--disable-gpu",
                "--disable-dev-shm-usage",
                "--no-first-run",
                "--hide-scrollbars",
            ])
            .arg(format!("--window-size={size}"))
            .arg(format!("--user-data-dir={}", profile.path().display()))
            .arg(format!("--screenshot={}", shot.display()))
            .arg(format!(
                "file://{}",
                pkg.join(format!("{doc}.html")).display()
            ))
            .output()
            .expect("chromium (scripts/deps.sh test installs it)");
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        assert!(
            std::fs::metadata(&shot).map(|m| m.len()).unwrap_or(0) > 10_000,
            "{doc}: no screenshot"
        );
    }
}
