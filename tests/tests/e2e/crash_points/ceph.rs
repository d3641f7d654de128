//! The evidence store's own steps against a real Ceph RGW (tests/src/ceph.rs), which the dock's
//! phases (a local store) never take: a multipart upload created, each part put and its ETag
//! recorded, the upload completed; a small original put once; the log published. A station
//! ingests a card with `--no-upload`; then `evidock upload` of the crash build is aborted at
//! each of these points (at every occurrence: there are few), run again until its queue settles, and
//! held to the promise: every original uploaded once under its key, the bucket holding exactly
//! the acquired bytes and nothing else under `originals/`, the queue empty, the log whole.
//! Each case uploads into a bucket of its own.

use super::scenario::{base_dir, station_cmd};
use evidock_ingest::device::sim::{self, SimContent};
use evidock_store::objects::{EvidenceStore, layout};
use evidock_store::s3control::S3Control;
use evidock_tests::ceph::CephRig;
use evidock_tests::station;
use evidock_verify::id::Sha256;
use serde_json::Value;
use std::collections::{BTreeMap, BTreeSet};
use std::os::unix::process::ExitStatusExt as _;
use std::path::{Path, PathBuf};
use std::process::Command;

/// The points only this matrix reaches (S3 multipart uploads): the dock's matrix leaves them
/// to it.
pub fn owns(point: &str) -> bool {
    matches!(
        point,
        "store.multipart-created" | "store.part" | "store.complete" | "upload.progress"
    )
}

/// Whether this matrix tries `point`: the store's and the upload's steps and the log's
/// publication into the bucket (the log's own appends are the dock matrix's).
fn tries(point: &str) -> bool {
    ["store.", "upload.", "publish."]
        .iter()
        .any(|p| point.starts_with(p))
}

/// Over one 5 MiB part: a multipart upload of two parts.
const BIG: u64 = (5 << 20) + 70_001;
const SMALL: u64 = 24 * 1024;

/// How `evidock upload` ended.
enum Outcome {
    Crashed,
    Done(Value),
    Failed(String),
}

/// One worker's station (cases of one worker run one after the other, each from the snapshot).
pub struct Matrix {
    root: PathBuf,
    work: PathBuf,
    evidock: PathBuf,
    /// How many originals the ingest acquired (the card's recordings and its other files).
    originals: std::sync::OnceLock<usize>,
}

fn config(endpoint: &str, bucket: &str) -> String {
    format!(
        "utc_offset = \"+08:00\"\n[status]\nenabled = false\n[store]\nurl = \"s3://{bucket}/evidence\"\nendpoint = \"{endpoint}\"\nregion = \"us-east-1\"\nallow_http = true\npart_size_mib = 5\nparallel = 2\n[acquire]\nsync_every_mib = 8\n[[camera]]\nname = \"sim\"\ndriver = \"zfy-sim\"\nallow = [\"*\"]\n"
    )
}

/// A fresh bucket on the shared rig.
fn bucket(rt: &tokio::runtime::Runtime, name: &str) {
    let rig = CephRig::shared();
    let c = S3Control::new(
        &rig.endpoint(),
        rig.region(),
        name,
        rig.access_key(),
        rig.secret_key(),
        None,
        true,
    )
    .unwrap();
    rt.block_on(c.create_bucket(false)).unwrap();
}

fn store_of(bucket: &str) -> EvidenceStore {
    let rig = CephRig::shared();
    EvidenceStore::open(&rig.store_settings(&rig.endpoint(), bucket)).unwrap()
}

impl Matrix {
    pub fn new(evidock: &Path, worker: usize) -> Matrix {
        let root = base_dir().join(format!("{}-ceph-{worker}", std::process::id()));
        let _ = std::fs::remove_dir_all(&root);
        std::fs::create_dir_all(&root).unwrap();
        let root = std::fs::canonicalize(&root).unwrap();
        Matrix {
            work: root.join("work"),
            root,
            evidock: evidock.to_path_buf(),
            originals: std::sync::OnceLock::new(),
        }
    }

    fn evidock(&self, args: &[&str]) -> Command {
        let rig = CephRig::shared();
        let mut c = station_cmd(&self.evidock, &self.work, args);
        c.env("AWS_ACCESS_KEY_ID", rig.access_key())
            .env("AWS_SECRET_ACCESS_KEY", rig.secret_key());
        c
    }

    /// The station with its card ingested, nothing uploaded: the snapshot every case starts
    /// from.
    pub fn setup(&self) {
        std::fs::create_dir_all(&self.work).unwrap();
        let rig = CephRig::shared();
        std::fs::write(
            self.work.join("evidock.toml"),
            config(&rig.endpoint(), "not-yet"),
        )
        .unwrap();
        let fw = station::firmware("ZFYS004", "350904");
        let at = fw.clock_at(chrono::Utc::now()).unwrap();
        let files = [(1, BIG, 91), (2, SMALL, 92)]
            .into_iter()
            .map(|(n, size, seed)| {
                let at = at - chrono::Duration::minutes(30 - n);
                (
                    sim::recording_name("ZFYS004", "350904", at, n as u32, "MP4").into_bytes(),
                    SimContent::Generated { size, seed },
                )
            })
            .collect();
        let card = station::camera(&self.work.join("cams"), fw, files);
        let init = evidock_tests::bins::run(&mut self.evidock(&["station", "init"]));
        assert_eq!(init.code, 0, "station init: {}", init.stderr);
        let out = self
            .evidock(&[
                "ingest",
                card.to_str().unwrap(),
                "--no-upload",
                "--no-transcode",
                "--json",
            ])
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "ingest: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        let events = self.json(&["log", "show", "--json"]);
        let n = events
            .as_array()
            .into_iter()
            .flatten()
            .filter(|e| e["kind"] == "acquired")
            .count();
        assert!(n >= 2, "the ingest acquired {n} file(s)");
        self.originals.set(n).unwrap();
        let snap = self.root.join("snap");
        let _ = std::fs::remove_dir_all(&snap);
        super::scenario::copy_tree(&self.work, &snap);
    }

    /// The snapshot back in place, uploading into the new bucket `name`.
    fn restore(&self, rt: &tokio::runtime::Runtime, name: &str) {
        let _ = std::fs::remove_dir_all(&self.work);
        super::scenario::copy_tree(&self.root.join("snap"), &self.work);
        bucket(rt, name);
        std::fs::write(
            self.work.join("evidock.toml"),
            config(&CephRig::shared().endpoint(), name),
        )
        .unwrap();
    }

    fn upload(&self, env: &[(&str, &str)]) -> Outcome {
        let mut c = self.evidock(&["upload", "--json"]);
        c.envs(env.iter().copied());
        let out = c.output().unwrap();
        match (out.status.signal(), out.status.code()) {
            (Some(6), _) => Outcome::Crashed,
            (_, Some(0)) => Outcome::Done(serde_json::from_slice(&out.stdout).unwrap_or_default()),
            _ => Outcome::Failed(format!(
                "upload: {}\n{}",
                out.status,
                String::from_utf8_lossy(&out.stderr)
            )),
        }
    }

    /// The points the upload reaches without a crash, and how often (in bucket `name`).
    pub fn baseline(&self, rt: &tokio::runtime::Runtime, name: &str) -> BTreeMap<String, u64> {
        self.restore(rt, name);
        let trace = self.root.join("trace");
        let _ = std::fs::remove_file(&trace);
        let t = trace.to_str().unwrap();
        match self.upload(&[("EVIDOCK_CRASH_TRACE", t)]) {
            Outcome::Done(v) if settled(&v) => {}
            Outcome::Done(v) => panic!("the upload without a crash did not settle: {v:#}"),
            Outcome::Crashed => panic!("the upload without a crash aborted"),
            Outcome::Failed(e) => panic!("the upload without a crash failed: {e}"),
        }
        let bad = self.check(rt, name);
        assert!(bad.is_empty(), "the upload without a crash: {bad:#?}");
        let mut counts = BTreeMap::new();
        for line in std::fs::read_to_string(&trace).unwrap_or_default().lines() {
            if let Some((_, point)) = line.split_once(' ') {
                *counts.entry(point.to_string()).or_default() += 1;
            }
        }
        counts.retain(|p: &String, _| tries(p));
        counts
    }

    /// Abort at `point@n`, then upload until settled: what broke a promise (empty: nothing),
    /// or None when the point was not reached that often.
    pub fn crash(&self, rt: &tokio::runtime::Runtime, name: &str, at: &str) -> Option<Vec<String>> {
        self.restore(rt, name);
        match self.upload(&[("EVIDOCK_CRASH_AT", at)]) {
            Outcome::Crashed => {}
            Outcome::Done(_) => return None,
            Outcome::Failed(e) => return Some(vec![format!("the crashing run failed: {e}")]),
        }
        // A crash may leave a row to retry (an upload the store no longer knows starts over):
        // a few passes, each of which must finish by itself.
        let mut last = Value::Null;
        for _ in 0..3 {
            match self.upload(&[]) {
                Outcome::Done(v) if settled(&v) => {
                    last = Value::Null;
                    break;
                }
                Outcome::Done(v) => last = v,
                Outcome::Crashed => return Some(vec!["a run after the crash aborted".into()]),
                Outcome::Failed(e) => return Some(vec![format!("a run after the crash: {e}")]),
            }
        }
        let mut bad = self.check(rt, name);
        if !last.is_null() {
            bad.push(format!("not settled after three passes: {last}"));
        }
        Some(bad)
    }

    fn json(&self, args: &[&str]) -> Value {
        let out = self.evidock(args).output().unwrap();
        assert!(
            out.status.success(),
            "{args:?}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        serde_json::from_slice(&out.stdout).unwrap()
    }

    /// Every promise, read from the custody log, the journal and the bucket itself.
    fn check(&self, rt: &tokio::runtime::Runtime, name: &str) -> Vec<String> {
        let mut bad = Vec::new();
        let events = self.json(&["log", "show", "--json"]);
        let events = events.as_array().cloned().unwrap_or_default();
        let of = |kind: &'static str| events.iter().filter(move |e| e["kind"] == kind);
        let acquired: BTreeMap<String, String> = of("acquired")
            .map(|e| {
                (
                    e["subject"]["evidence"]
                        .as_str()
                        .unwrap_or_default()
                        .to_string(),
                    e["payload"]["digests"]["sha256"]
                        .as_str()
                        .unwrap_or_default()
                        .to_string(),
                )
            })
            .collect();
        let want_n = self.originals.get().copied().unwrap_or(0);
        if acquired.len() != want_n {
            bad.push(format!(
                "{} acquired originals, not {want_n}",
                acquired.len()
            ));
        }
        let store = store_of(name);
        for (evidence, sha) in &acquired {
            let ups: Vec<&Value> = of("uploaded")
                .filter(|e| e["subject"]["evidence"] == evidence.as_str())
                .filter(|e| e["payload"]["role"] == "original")
                .collect();
            if ups.len() != 1 {
                bad.push(format!("{evidence}: uploaded {} times", ups.len()));
            }
            let key = layout::original(&sha.parse::<Sha256>().unwrap());
            match rt.block_on(store.read_back(&key)) {
                Ok((got, _)) if got.to_hex() == *sha => {}
                Ok((got, _)) => bad.push(format!("{evidence}: {key} holds {got}, not {sha}")),
                Err(e) => bad.push(format!("{evidence}: {key} not in the bucket: {e}")),
            }
            for up in ups {
                if up["payload"]["sha256"] != sha.as_str()
                    || !up["payload"]["object"]
                        .as_str()
                        .is_some_and(|o| o.ends_with(&key))
                {
                    bad.push(format!("{evidence}: its uploaded event names {up}"));
                }
            }
        }
        // Nothing else under originals/: no wrong object under a write-once key.
        let want: BTreeSet<String> = acquired
            .values()
            .map(|s| layout::original(&s.parse::<Sha256>().unwrap()))
            .collect();
        let have: BTreeSet<String> = rt
            .block_on(store.list("originals"))
            .unwrap_or_default()
            .into_iter()
            .collect();
        if have != want {
            bad.push(format!(
                "the bucket's originals are {have:?}, want {want:?}"
            ));
        }
        // The queue empty: every row uploaded, none under way or failed.
        for row in self
            .json(&["store", "status", "--json"])
            .as_array()
            .into_iter()
            .flatten()
        {
            if row["state"] != "uploaded" {
                bad.push(format!("queue row not uploaded: {row}"));
            }
        }
        // The log whole.
        let log_dir = super::scenario::log_dir(&self.work.join("data")).unwrap();
        let (_, v) = evidock_tests::bins::verify(&log_dir, None);
        if v["errors"] != 0 {
            bad.push(format!("the log does not verify: {v}"));
        }
        bad
    }
}

/// An `evidock upload --json` pass with nothing failed and nothing left to retry.
fn settled(out: &Value) -> bool {
    ["failed", "retrying"]
        .iter()
        .all(|k| out[k].as_array().is_some_and(Vec::is_empty))
}

/// The matrix: the points reached, the cases tried, and what broke (one line per case).
// Each case's outcome goes to stderr as it comes, as the other matrices' do.
#[allow(clippy::print_stderr)]
pub fn run_matrix(evidock: &Path) -> (BTreeMap<String, u64>, usize, Vec<String>) {
    let rt = evidock_tests::runtime();
    let rig = CephRig::shared();
    let _gateway = rt.block_on(rig.gateway().read());
    let names = std::sync::atomic::AtomicUsize::new(0);
    let next = || {
        format!(
            "crash-{}-{}",
            std::process::id(),
            names.fetch_add(1, std::sync::atomic::Ordering::SeqCst)
        )
    };
    let workers: Vec<Matrix> = (0..2).map(|w| Matrix::new(evidock, w)).collect();
    std::thread::scope(|s| {
        for m in &workers {
            s.spawn(|| m.setup());
        }
    });
    let baseline = workers[0].baseline(&rt, &next());
    let only = std::env::var("CRASH_CASE").ok();
    let mut cases = Vec::new();
    for (point, &n) in &baseline {
        // Every occurrence, not only the first and last: a resume after the first of two
        // parts is not the one after the last.
        for at in (1..=n).map(|i| format!("{point}@{i}")) {
            let wanted = only.as_ref().is_none_or(|o| *o == format!("ceph:{at}"));
            if wanted && !cases.contains(&at) {
                cases.push(at);
            }
        }
    }
    let queue = std::sync::Mutex::new(cases.clone());
    let failed = std::sync::Mutex::new(Vec::new());
    std::thread::scope(|s| {
        for m in &workers {
            let (queue, failed, rt, next) = (&queue, &failed, &rt, &next);
            s.spawn(move || {
                loop {
                    let Some(at) = queue.lock().unwrap().pop() else {
                        break;
                    };
                    match m.crash(rt, &next(), &at) {
                        None if at.ends_with("@1") => failed
                            .lock()
                            .unwrap()
                            .push(format!("ceph:{at}: not reached")),
                        None => eprintln!("crash at ceph:{at}: not reached"),
                        Some(bad) if bad.is_empty() => eprintln!("crash at ceph:{at}: recovered"),
                        Some(bad) => failed.lock().unwrap().push(format!(
                            "ceph:{at} (replay alone: CRASH_CASE='ceph:{at}'): {bad:#?}"
                        )),
                    }
                }
            });
        }
    });
    (baseline, cases.len(), failed.into_inner().unwrap())
}
