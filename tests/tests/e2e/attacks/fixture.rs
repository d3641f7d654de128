//! The station, packages and trust files every attack starts from.

use evidock_tests::bins::{self, trust_file};
use evidock_tests::station::TestStation;
use evidock_tests::tsa::TsaRig;
use serde_json::Value;
use std::path::{Path, PathBuf};
use std::sync::OnceLock;

pub const CASE: &str = "晋应急罚〔2023〕102号";

/// What every attack starts from: a station with a TSA, a case, two packages of it (the second
/// exported after another docking), trust files as a receiver would write them.
pub struct Fixture {
    pub tsa: TsaRig,
    /// The forger's own TSA: a real `openssl ts`, a root nobody pinned.
    pub forger_tsa: TsaRig,
    pub st: TestStation,
    /// A station of the forger's that calls itself dock-01 too.
    pub forger: TestStation,
    pub pkg1: PathBuf,
    pub pkg2: PathBuf,
    /// The station's verifier key (note format).
    pub key: String,
    /// Station key and TSA root pinned.
    pub trust_full: PathBuf,
    /// The station key only, as an earlier VERIFY.md told courts to write.
    pub trust_station: PathBuf,
    pub work: tempfile::TempDir,
}

pub fn forger(args: &[&std::ffi::OsStr]) {
    let ran = bins::run(bins::cmd("package-forger").args(args));
    assert_eq!(ran.code, 0, "package-forger {args:?}: {}", ran.stderr);
}

fn ingest(st: &TestStation, serial: &str, clips: &[(&str, u32)]) {
    st.ingest_clips(serial, "350500", 2, clips);
}

fn export(st: &TestStation, out: &Path) {
    let ran = st.run(&[
        "export",
        "--case",
        CASE,
        "--out",
        out.to_str().unwrap(),
        "--by",
        "法制员01",
    ]);
    assert_eq!(ran.code, 0, "{}\n{}", ran.stdout, ran.stderr);
}

/// Where this run's fixture lives: under the target directory, one folder per test process.
/// A fixture in a `static` is never dropped, so each run removes what earlier runs left.
fn work_root() -> PathBuf {
    let root = bins::target_dir().join("attacks-work");
    if let Ok(rd) = std::fs::read_dir(&root) {
        for e in rd.flatten() {
            let pid = e.file_name().to_string_lossy().into_owned();
            if !Path::new("/proc").join(&pid).exists() {
                let _ = std::fs::remove_dir_all(e.path());
            }
        }
    }
    let mine = root.join(std::process::id().to_string());
    std::fs::create_dir_all(&mine).unwrap();
    mine
}

pub fn fixture() -> &'static Fixture {
    static F: OnceLock<Fixture> = OnceLock::new();
    F.get_or_init(|| {
        let root = work_root();
        let tsa = TsaRig::start().unwrap();
        let forger_tsa = TsaRig::start().unwrap();
        let config = format!(
            "station_id = \"dock-01\"\nutc_offset = \"+08:00\"\n[digests]\nsm3 = true\n{}\n[[camera]]\nname = \"any\"\ndriver = \"mass-storage\"\nallow = [\"*\"]\n",
            tsa.station_config()
        );
        let st = TestStation::with_config_in(&root, &config);
        ingest(&st, "ZFY0500", &[("ZFY0500_0001.MP4", 0), ("ZFY0500_0002.MP4", 120)]);
        st.import_case_now(CASE, "某矿业公司安全检查", "350500");
        let work = tempfile::tempdir_in(&root).unwrap();
        let pkg1 = work.path().join("pkg1");
        export(&st, &pkg1);
        ingest(&st, "ZFY0501", &[("ZFY0501_0001.MP4", 240)]);
        let pkg2 = work.path().join("pkg2");
        export(&st, &pkg2);
        let key = st.json(&["station", "show"])["public_key"]
            .as_str()
            .unwrap()
            .to_string();
        let trust_full = trust_file(&work.path().join("full.toml"), &key, Some(&tsa.ca_pem));
        let trust_station = trust_file(&work.path().join("station.toml"), &key, None);
        let forger = TestStation::with_config_in(
            &root,
            "station_id = \"dock-01\"\n[[camera]]\nname = \"any\"\ndriver = \"mass-storage\"\nallow = [\"*\"]\n",
        );
        ingest(&forger, "ZFY0666", &[("ZFY0666_0001.MP4", 60)]);
        Fixture {
            tsa,
            forger_tsa,
            st,
            forger,
            pkg1,
            pkg2,
            key,
            trust_full,
            trust_station,
            work,
        }
    })
}

impl Fixture {
    pub fn station_key(&self) -> PathBuf {
        self.st.data().join("station.key")
    }

    pub fn manifest(&self) -> Value {
        serde_json::from_slice(&std::fs::read(self.pkg1.join("MANIFEST.json")).unwrap()).unwrap()
    }

    /// The path of a role in package 1 made from the camera's first recording (evidence IDs
    /// differ from run to run; camera file names do not).
    pub fn first(&self, role: &str) -> String {
        match role {
            "original" | "derivative" | "thumbnail" => self.of("ZFY0500_0001", role),
            _ => self.of("", role),
        }
    }

    pub fn of(&self, recording: &str, role: &str) -> String {
        self.manifest()["files"]
            .as_array()
            .unwrap()
            .iter()
            .filter(|f| f["role"] == role)
            .map(|f| f["path"].as_str().unwrap().to_string())
            .filter(|p| p.contains(recording))
            .min()
            .unwrap()
    }

    pub fn latest_note(&self, log: &Path) -> PathBuf {
        std::fs::read_dir(log.join("checkpoints"))
            .unwrap()
            .flatten()
            .map(|e| e.path())
            .max()
            .unwrap()
    }
}
