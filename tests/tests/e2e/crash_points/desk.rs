//! The desk's crash points: a case register imported, a disclosure package exported, an old
//! recording categorised and disposed of — each command aborted at every durable step it
//! reaches (first and last occurrence), run again, then held to what a receiver and an auditor
//! rely on: one package, released whole under its name, that verifies under the pinned station
//! key; one `exported` event, naming exactly that package; the case registered and its
//! evidence linked once; the disposed item's copies gone and the case's kept; no scratch
//! directory or record left.

use super::scenario::{base_dir, copy_tree, crash_binary};
use evidock_ingest::device::sim::{self, SimContent};
use evidock_tests::{bins, station};
use serde_json::Value;
use std::collections::BTreeMap;
use std::os::unix::process::ExitStatusExt as _;
use std::path::PathBuf;
use std::process::Command;

pub(super) const CASE: &str = "晋应急罚〔2026〕7号";
/// A second case of the register, of another officer: nothing linked to it.
const OTHER_CASE: &str = "晋应急罚〔2026〕8号";
const CONFIG: &str = "utc_offset = \"+08:00\"\n[status]\nenabled = false\n[[camera]]\nname = \"sim\"\ndriver = \"zfy-sim\"\nallow = [\"*\"]\n";
/// How the old recording's card path ends (the one disposed of: its second file).
const OLD_PATH: &str = "_0002.MP4";

/// Whether a crash point belongs to the desk's matrix (the dock's scenario never reaches it).
pub fn owns(point: &str) -> bool {
    ["export.", "index.", "dispose."]
        .iter()
        .any(|p| point.starts_with(p))
}

/// The desk's steps, in order; a case crashes one of them.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Step {
    Import,
    Export,
    Categorise,
    Dispose,
}

impl Step {
    const ALL: [Step; 4] = [Step::Import, Step::Export, Step::Categorise, Step::Dispose];

    fn name(self) -> &'static str {
        match self {
            Step::Import => "import",
            Step::Export => "export",
            Step::Categorise => "categorise",
            Step::Dispose => "dispose",
        }
    }
}

pub struct Desk {
    pub(super) root: PathBuf,
    pub(super) work: PathBuf,
    evidock: PathBuf,
}

/// What one command did.
pub(super) enum Outcome {
    Done,
    Crashed,
    Failed(String),
}

impl Desk {
    pub fn new() -> Desk {
        Desk::new_named("desk")
    }

    /// A desk in its own folder `<pid>-<name>` (tests of this binary run at once).
    pub fn new_named(name: &str) -> Desk {
        let root = base_dir().join(format!("{}-{name}", std::process::id()));
        let _ = std::fs::remove_dir_all(&root);
        std::fs::create_dir_all(&root).unwrap();
        let root = std::fs::canonicalize(&root).unwrap();
        Desk {
            work: root.join("work"),
            root,
            evidock: crash_binary(),
        }
    }

    pub(super) fn evidock(&self, args: &[&str]) -> Command {
        super::scenario::station_cmd(&self.evidock, &self.work, args)
    }

    pub(super) fn json(&self, args: &[&str]) -> Value {
        let mut all = args.to_vec();
        all.push("--json");
        bins::run(&mut self.evidock(&all)).json()
    }

    pub(super) fn package(&self) -> PathBuf {
        self.work.join("out").join("移送-7")
    }

    /// A station that acquired two recordings of officer 350701: a clip half an hour ago
    /// (in the case's window) and a small one from 2025 (routine footage, long expired); its
    /// register written: the snapshot every case starts from.
    pub fn setup(&self) {
        let _ = std::fs::remove_dir_all(&self.work);
        std::fs::create_dir_all(self.work.join("out")).unwrap();
        std::fs::write(
            self.work.join("evidock.toml"),
            format!(
                "{CONFIG}[store]\nurl = \"file://{}\"\n",
                self.work.join("store").display()
            ),
        )
        .unwrap();
        let clip = self.root.join("clip.mp4");
        evidock_tests::media::clip(&clip, "160x120", 1, 70);
        // The old recording a clip too: its playback copy, poster and contact sheet are
        // removed with it, so a disposal can be cut off between its copies.
        let old_clip = self.root.join("old.mp4");
        evidock_tests::media::clip(&old_clip, "160x120", 1, 200);
        let fw = station::firmware("ZFY0701", "350701");
        let now = fw.clock_at(chrono::Utc::now()).unwrap();
        let old = chrono::NaiveDate::from_ymd_opt(2025, 1, 1)
            .unwrap()
            .and_hms_opt(10, 0, 0)
            .unwrap();
        let files = vec![
            (
                sim::recording_name(
                    "ZFY0701",
                    "350701",
                    now - chrono::Duration::minutes(30),
                    1,
                    "MP4",
                )
                .into_bytes(),
                SimContent::CopyOf(clip),
            ),
            (
                sim::recording_name("ZFY0701", "350701", old, 2, "MP4").into_bytes(),
                SimContent::CopyOf(old_clip),
            ),
        ];
        let card = station::camera(&self.work.join("cams"), fw, files);
        self.json(&["station", "init"]);
        let out = self.json(&["ingest", card.to_str().unwrap()]);
        assert_eq!(out["outcome"], "released", "{out}");
        let now = chrono::Utc::now();
        std::fs::write(
            self.work.join("cases.csv"),
            format!(
                "case_id,case_type,title,officers,window_start,window_end,place\n{CASE},一般程序,某公司检查,350701,{},{},某镇\n{OTHER_CASE},一般程序,另一检查,350799,{},{},某镇\n",
                (now - chrono::Duration::hours(1)).to_rfc3339(),
                (now + chrono::Duration::hours(1)).to_rfc3339(),
                (now - chrono::Duration::hours(1)).to_rfc3339(),
                (now + chrono::Duration::hours(1)).to_rfc3339(),
            ),
        )
        .unwrap();
        let snap = self.root.join("snap");
        let _ = std::fs::remove_dir_all(&snap);
        copy_tree(&self.work, &snap);
    }

    pub(super) fn restore(&self) {
        let _ = std::fs::remove_dir_all(&self.work);
        copy_tree(&self.root.join("snap"), &self.work);
    }

    pub(super) fn run(&self, step: Step, env: &[(&str, &str)]) -> Outcome {
        let (csv, pkg) = (self.work.join("cases.csv"), self.package());
        let old = match step {
            Step::Categorise | Step::Dispose => self.old_item(),
            _ => String::new(),
        };
        let args: Vec<&str> = match step {
            Step::Import => vec!["case", "import", "--by", "admin01", csv.to_str().unwrap()],
            Step::Export => vec![
                "export",
                "--case",
                CASE,
                "--out",
                pkg.to_str().unwrap(),
                "--by",
                "法制员01",
                "--zip",
            ],
            Step::Categorise => vec![
                "evidence",
                "set-category",
                &old,
                "日常执法",
                "--by",
                "admin01",
                "--reason",
                "巡查录像，无案件",
            ],
            Step::Dispose => vec![
                "retention",
                "dispose",
                &old,
                "--by",
                "admin01",
                "--reason",
                "保存期满",
            ],
        };
        let mut c = self.evidock(&args);
        c.envs(env.iter().copied());
        let out = c.output().unwrap();
        let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
        match (out.status.signal(), out.status.code()) {
            (Some(6), _) => Outcome::Crashed,
            (_, Some(0)) => Outcome::Done,
            _ => Outcome::Failed(format!("{}: {}\n{stderr}", step.name(), out.status)),
        }
    }

    /// `evidock export --case CASE --out OUT`, run in the station's folder (OUT as given,
    /// relative or not): its exit code and stderr.
    fn export_as(&self, case: &str, out: &str, env: &[(&str, &str)]) -> (Option<i32>, String) {
        self.export_with(case, out, &[], env)
    }

    /// [`Self::export_as`] with `extra` arguments (`--zip`).
    pub(super) fn export_with(
        &self,
        case: &str,
        out: &str,
        extra: &[&str],
        env: &[(&str, &str)],
    ) -> (Option<i32>, String) {
        let mut c = self.evidock(&["export", "--case", case, "--out", out, "--by", "法制员01"]);
        c.args(extra)
            .current_dir(&self.work)
            .envs(env.iter().copied());
        let o = c.output().unwrap();
        (
            o.status.code(),
            String::from_utf8_lossy(&o.stderr).into_owned(),
        )
    }

    /// An export cut off after its `exported` event is released only as it was recorded:
    /// not under an export of another case, not over what appeared at `--out` meanwhile (not
    /// even an empty directory), and the same `--out` however it is spelled. What is wrong,
    /// one line each.
    pub fn leftovers(&self) -> Vec<String> {
        let mut bad = Vec::new();
        self.restore();
        if !matches!(self.run(Step::Import, &[]), Outcome::Done) {
            return vec!["import failed".into()];
        }
        let pkg = self.package();
        let rel = "./out/../out/移送-7";
        let (code, _) = self.export_as(CASE, rel, &[("EVIDOCK_CRASH_AT", "log.appended@1")]);
        if code.is_some() {
            return vec![format!("the export was not aborted at its event: {code:?}")];
        }
        // Another case to the same --out, spelled another way.
        let (code, err) = self.export_as(OTHER_CASE, pkg.to_str().unwrap(), &[]);
        if code == Some(0) || pkg.exists() {
            bad.push(format!(
                "an export of {OTHER_CASE} released the package of {CASE} cut off earlier ({code:?})"
            ));
        } else if !err.contains(CASE) || !err.contains(".evidock-export-") {
            bad.push(format!("the refusal names neither case nor scratch: {err}"));
        }
        // Something at --out meanwhile: an empty directory is not replaced.
        std::fs::create_dir(&pkg).unwrap();
        let (code, err) = self.export_as(CASE, "out/移送-7", &[]);
        let empty = std::fs::read_dir(&pkg)
            .map(|d| d.count() == 0)
            .unwrap_or(false);
        if code == Some(0) || !empty {
            bad.push(format!(
                "released over a directory that appeared at --out ({code:?}, still empty: {empty})"
            ));
        } else if !err.contains(".evidock-export-") {
            bad.push(format!(
                "the refusal does not say where the package is: {err}"
            ));
        }
        // Moved away, the same case to the same --out: released, one event.
        std::fs::remove_dir(&pkg).unwrap();
        let (code, err) = self.export_as(CASE, "out/移送-7", &[]);
        if code != Some(0) || !pkg.join("MANIFEST.json").is_file() {
            bad.push(format!("not released at last ({code:?}): {err}"));
        }
        let exported = self
            .events()
            .iter()
            .filter(|e| e["kind"] == "exported")
            .count();
        if exported != 1 {
            bad.push(format!("{exported} `exported` events, want 1"));
        }
        bad
    }

    /// The run without a crash: the crash points each step reaches, and how often.
    pub fn baseline(&self) -> BTreeMap<Step, BTreeMap<String, u64>> {
        self.restore();
        let mut out = BTreeMap::new();
        for step in Step::ALL {
            let trace = self.root.join(format!("trace-{}", step.name()));
            let _ = std::fs::remove_file(&trace);
            match self.run(step, &[("EVIDOCK_CRASH_TRACE", trace.to_str().unwrap())]) {
                Outcome::Done => {}
                Outcome::Crashed => panic!("{} crashed without being asked", step.name()),
                Outcome::Failed(e) => panic!("the run without a crash fails: {e}"),
            }
            let mut counts: BTreeMap<String, u64> = BTreeMap::new();
            for line in std::fs::read_to_string(&trace).unwrap_or_default().lines() {
                if let Some((_, name)) = line.split_once(' ') {
                    *counts.entry(name.to_string()).or_default() += 1;
                }
            }
            out.insert(step, counts);
        }
        let found = self.check();
        assert!(found.is_empty(), "the run without a crash: {found:#?}");
        out
    }

    /// One case: every step in order, `step` aborted at `at` (`point@n`) and run again. `None`
    /// when the step finished without reaching it.
    pub fn crash(&self, step: Step, at: &str) -> Option<Vec<String>> {
        self.restore();
        for s in Step::ALL {
            if s == step {
                match self.run(s, &[("EVIDOCK_CRASH_AT", at)]) {
                    Outcome::Crashed => {}
                    Outcome::Done => return None,
                    Outcome::Failed(e) => return Some(vec![format!("crashing run: {e}")]),
                }
            }
            match self.run(s, &[]) {
                Outcome::Done => {}
                // Done just before the abort: the package released (written once), the item
                // disposed of (the checks say whether its copies are gone).
                Outcome::Failed(e)
                    if s == step
                        && ((s == Step::Export
                            && e.contains("already exists")
                            && self.package().is_dir())
                            || (s == Step::Dispose && e.contains("already disposed of"))) => {}
                Outcome::Crashed => return Some(vec![format!("{}: crashed again", s.name())]),
                Outcome::Failed(e) => return Some(vec![format!("after the restart: {e}")]),
            }
        }
        Some(self.check())
    }

    /// The events of the log, parsed.
    fn events(&self) -> Vec<Value> {
        self.json(&["log", "show"])
            .as_array()
            .cloned()
            .unwrap_or_default()
    }

    /// The evidence ID of the old recording (the one disposed of).
    fn old_item(&self) -> String {
        self.events()
            .iter()
            .find(|e| {
                e["kind"] == "acquired"
                    && e["payload"]["path"]
                        .as_str()
                        .is_some_and(|p| p.ends_with(OLD_PATH))
            })
            .map(|e| {
                e["subject"]["evidence"]
                    .as_str()
                    .unwrap_or_default()
                    .to_string()
            })
            .expect("the old recording was acquired")
    }

    /// The store objects and spool copy of `evidence` (role, path), and whether each is there.
    fn copies(&self, evidence: &str) -> Vec<(String, bool)> {
        let shown = self.json(&["evidence", "show", evidence]);
        let mut out = Vec::new();
        for o in shown["objects"].as_array().into_iter().flatten() {
            if o["role"] == "record" {
                continue;
            }
            let key = o["key"].as_str().unwrap_or_default();
            let p = self.work.join("store").join(key);
            out.push((format!("{} {key}", o["role"]), p.exists()));
        }
        let sha = shown["sha256"].as_str().unwrap_or_default().to_string();
        if sha.len() == 64 {
            let p = self
                .work
                .join("data/spool/sha256")
                .join(&sha[..2])
                .join(&sha[2..4])
                .join(&sha);
            out.push((format!("spool {}", p.display()), p.exists()));
        }
        out
    }

    /// How many files a cut-off run left in `<data>/<dir>` (the turn's lock file stays: it
    /// holds nothing).
    fn left_in(&self, dir: &str) -> usize {
        std::fs::read_dir(self.work.join("data").join(dir))
            .into_iter()
            .flatten()
            .flatten()
            .filter(|e| e.file_name() != ".lock")
            .count()
    }

    /// What a receiver and an auditor rely on, broken: one line each.
    fn check(&self) -> Vec<String> {
        let mut bad = Vec::new();
        // The old recording disposed of once, every copy gone; the case's clip kept whole.
        let old = self.old_item();
        let disposed = self
            .events()
            .iter()
            .filter(|e| e["kind"] == "disposed")
            .count();
        if disposed != 1 {
            bad.push(format!("{disposed} `disposed` event(s), want 1"));
        }
        let old_copies = self.copies(&old);
        if old_copies
            .iter()
            .all(|(c, _)| !c.starts_with("\"original\""))
        {
            bad.push(format!("{old}: no original object listed: {old_copies:?}"));
        }
        for (what, there) in &old_copies {
            if *there {
                bad.push(format!("{old} disposed of, but its copy remains: {what}"));
            }
        }
        let kept: Vec<String> = self
            .events()
            .iter()
            .filter(|e| {
                e["kind"] == "acquired"
                    && e["payload"]["path"]
                        .as_str()
                        .is_some_and(|p| p.ends_with(".MP4") && !p.ends_with(OLD_PATH))
            })
            .map(|e| {
                e["subject"]["evidence"]
                    .as_str()
                    .unwrap_or_default()
                    .to_string()
            })
            .collect();
        if kept.is_empty() {
            bad.push("the case's clip was never acquired".into());
        }
        for k in &kept {
            let copies = self.copies(k);
            if !copies.iter().any(|(c, _)| c.starts_with("\"original\"")) {
                bad.push(format!("{k}: no original object listed: {copies:?}"));
            }
            for (what, there) in copies {
                if !there {
                    bad.push(format!("{k} (linked to the case) lost its copy {what}"));
                }
            }
        }
        let records = self.left_in("disposing");
        if records != 0 {
            bad.push(format!("{records} disposal mark(s) left in data/disposing"));
        }
        let pkg = self.package();
        let events: Vec<Value> = self
            .json(&["log", "show"])
            .as_array()
            .cloned()
            .unwrap_or_default();
        let of =
            |kind: &str| -> Vec<&Value> { events.iter().filter(|e| e["kind"] == kind).collect() };
        // One package, released whole, named by the one `exported` event.
        let manifest = std::fs::read(pkg.join("MANIFEST.json"));
        let exported = of("exported");
        match &manifest {
            Err(e) => bad.push(format!("no package at {}: {e}", pkg.display())),
            Ok(m) => {
                let sha = evidock_verify::id::Sha256::digest(m).to_hex();
                if exported.len() != 1 || exported[0]["payload"]["manifest_sha256"] != sha {
                    bad.push(format!(
                        "{} `exported` event(s); the released package's manifest is {sha}: {:?}",
                        exported.len(),
                        exported
                            .iter()
                            .map(|e| &e["payload"]["manifest_sha256"])
                            .collect::<Vec<_>>()
                    ));
                }
            }
        }
        if manifest.is_ok() {
            let key = self.json(&["station", "show"])["public_key"]
                .as_str()
                .unwrap_or_default()
                .to_string();
            let trust = bins::trust_file(&self.root.join("trust.toml"), &key, None);
            let (_, v) = bins::verify(&pkg, Some(&trust));
            if v["errors"] != 0 || v["integrity_proven"] != true {
                bad.push(format!(
                    "the package does not verify under the station key: {}",
                    v["findings"]
                ));
            }
        }
        // Its zip beside it, whole: every file of the package, the verifier executable.
        bad.extend(super::zip::problems(&pkg));
        // Nothing of the export's own left behind.
        let zip = PathBuf::from(format!("{}.zip", pkg.display()));
        for e in std::fs::read_dir(self.work.join("out")).unwrap().flatten() {
            if e.path() != pkg && e.path() != zip {
                bad.push(format!("left beside the package: {}", e.path().display()));
            }
        }
        let records = self.left_in("exports");
        if records != 0 {
            bad.push(format!("{records} scratch record(s) left in data/exports"));
        }
        // The case registered, and its evidence linked, once.
        let registered = events
            .iter()
            .filter(|e| e["kind"] != "linked" && e["subject"]["case"] == CASE)
            .filter(|e| e["kind"] != "exported")
            .count();
        let linked = of("linked");
        if registered != 1 || linked.len() != 1 {
            bad.push(format!(
                "case events {registered}, links {} (want one each)",
                linked.len()
            ));
        }
        let log = super::scenario::log_dir(&self.work.join("data"));
        match log {
            Some(dir) => {
                let (_, v) = bins::verify(&dir, None);
                if v["errors"] != 0 {
                    bad.push(format!("the custody log: {}", v["findings"]));
                }
            }
            None => bad.push("no custody log".into()),
        }
        bad
    }
}

/// Every durable step of the desk's import and export aborted, at its first and last
/// occurrence, then the step run again: the checks above, for each.
// Each case's outcome as it comes, like the dock's matrix (its test function may print).
#[allow(clippy::print_stderr)]
pub fn run_matrix() -> (Vec<String>, usize, BTreeMap<Step, BTreeMap<String, u64>>) {
    let desk = Desk::new();
    desk.setup();
    let baseline = desk.baseline();
    let mut failed = Vec::new();
    let mut cases = 0;
    for (step, counts) in &baseline {
        for (point, &n) in counts {
            let mut occurrences = vec![1, n];
            occurrences.dedup();
            for occurrence in occurrences {
                let at = format!("{point}@{occurrence}");
                cases += 1;
                match desk.crash(*step, &at) {
                    None => failed.push(format!("{}:{at}: not reached", step.name())),
                    Some(bad) if bad.is_empty() => {
                        eprintln!("desk crash at {}:{at}: recovered", step.name())
                    }
                    Some(bad) => failed.push(format!("{}:{at}: {bad:#?}", step.name())),
                }
            }
        }
    }
    (failed, cases, baseline)
}
