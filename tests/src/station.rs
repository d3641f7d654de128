//! A station under test: a data directory, the `evidock` binary run against it, and simulated
//! cameras to dock.

use crate::bins::{self, Ran};
use evidock_ingest::device::sim::{self, Firmware, SimContent, SimSpec};
use serde_json::Value;
use std::path::{Path, PathBuf};
use std::process::{Child, Command};
use std::time::{Duration, Instant};

#[derive(Debug)]
pub struct TestStation {
    pub dir: tempfile::TempDir,
    pub config: Option<PathBuf>,
}

impl Default for TestStation {
    fn default() -> Self {
        Self::new()
    }
}

impl TestStation {
    pub fn new() -> Self {
        TestStation {
            dir: tempfile::tempdir().unwrap(),
            config: None,
        }
    }

    /// A station with this configuration file content.
    pub fn with_config(toml: &str) -> Self {
        Self::with_config_at(Self::new(), toml)
    }

    /// [`Self::with_config`], its directory under `parent`.
    pub fn with_config_in(parent: &Path, toml: &str) -> Self {
        let s = TestStation {
            dir: tempfile::tempdir_in(parent).unwrap(),
            config: None,
        };
        Self::with_config_at(s, toml)
    }

    fn with_config_at(s: Self, toml: &str) -> Self {
        let p = s.dir.path().join("evidock.toml");
        std::fs::write(&p, toml).unwrap();
        TestStation {
            config: Some(p),
            ..s
        }
    }

    pub fn data(&self) -> PathBuf {
        self.dir.path().join("data")
    }

    pub fn mount_root(&self) -> PathBuf {
        self.dir.path().join("mnt")
    }

    /// `evidock --data-dir … [--config …] ARGS`, on a station: the first call makes it with
    /// `evidock station init` (only that command makes one), after the test wrote its
    /// configuration. [`Self::cmd_bare`] for a directory without a station.
    pub fn cmd(&self, args: &[&str]) -> Command {
        if !self.data().join("station.key").exists() && !args.starts_with(&["station", "init"]) {
            let ran = bins::run(&mut self.cmd_bare(&["station", "init"]));
            assert_eq!(ran.code, 0, "evidock station init: {}", ran.stderr);
        }
        self.cmd_bare(args)
    }

    /// [`Self::cmd`] run under another program (`strace -f … --`): `program ARGS… evidock …`,
    /// with the environment [`Self::cmd`] gives the station's command.
    pub fn cmd_under(&self, program: &str, args: &[&std::ffi::OsStr], station: &[&str]) -> Command {
        let inner = self.cmd(station);
        let mut c = Command::new(program);
        c.args(args).arg(inner.get_program()).args(inner.get_args());
        for (k, v) in inner.get_envs() {
            match v {
                Some(v) => c.env(k, v),
                None => c.env_remove(k),
            };
        }
        c
    }

    /// `evidock --data-dir … [--config …] ARGS` as it is, whether or not there is a station.
    pub fn cmd_bare(&self, args: &[&str]) -> Command {
        let mut c = bins::cmd("evidock");
        c.arg("--data-dir").arg(self.data());
        if let Some(cfg) = &self.config {
            c.arg("--config").arg(cfg);
        }
        c.args(args);
        c
    }

    pub fn run(&self, args: &[&str]) -> Ran {
        bins::run(&mut self.cmd(args))
    }

    /// Run with `--json` and parse the output.
    pub fn json(&self, args: &[&str]) -> Value {
        let mut a = args.to_vec();
        a.push("--json");
        self.run(&a).json()
    }

    /// Import one case whose window is the hour either side of now, for `officer`, with
    /// `evidock case import`; returns what the import printed.
    pub fn import_case_now(&self, case: &str, title: &str, officer: &str) -> Value {
        let now = chrono::Utc::now();
        let reg = self.dir.path().join("cases.csv");
        std::fs::write(
            &reg,
            format!(
                "case_id,case_type,title,officers,window_start,window_end,place\n{case},一般程序,{title},{officer},{},{},某镇\n",
                (now - chrono::Duration::hours(1)).to_rfc3339(),
                (now + chrono::Duration::hours(1)).to_rfc3339(),
            ),
        )
        .unwrap();
        self.json(&["case", "import", "--by", "admin01", reg.to_str().unwrap()])
    }

    /// A plain card folder `<dir>/<serial>/DCIM` of 320×240 clips of `secs` seconds (name,
    /// hue), ingested with `--serial` and `--officer`; it must be released.
    pub fn ingest_clips(&self, serial: &str, officer: &str, secs: u32, clips: &[(&str, u32)]) {
        let card = self.dir.path().join(serial);
        std::fs::create_dir_all(card.join("DCIM")).unwrap();
        for (name, hue) in clips {
            crate::media::clip(&card.join("DCIM").join(name), "320x240", secs, *hue);
        }
        let out = self.json(&[
            "ingest",
            card.to_str().unwrap(),
            "--serial",
            serial,
            "--officer",
            officer,
        ]);
        assert_eq!(out["outcome"], "released", "{out}");
    }

    /// Every custody event, parsed.
    pub fn events(&self) -> Vec<Value> {
        self.json(&["log", "show"])
            .as_array()
            .cloned()
            .unwrap_or_default()
    }

    pub fn log_dir(&self) -> PathBuf {
        let show = self.json(&["station", "show"]);
        PathBuf::from(show["custody_log"].as_str().unwrap())
    }

    /// Start `evidock dock` watching the mount root. Killed when the guard drops (a failing
    /// test must not leave a daemon behind).
    pub fn start_dock(&self) -> DockProcess {
        std::fs::create_dir_all(self.mount_root()).unwrap();
        let mut c = self.cmd(&["dock", "--mount-root"]);
        c.arg(self.mount_root());
        c.env("EVIDOCK_LOG", "info");
        c.stdin(std::process::Stdio::null());
        c.stdout(std::process::Stdio::null());
        c.stderr(std::process::Stdio::from(
            std::fs::File::create(self.dir.path().join("dock.log")).unwrap(),
        ));
        DockProcess(Some(c.spawn().unwrap()))
    }

    pub fn dock_log(&self) -> String {
        std::fs::read_to_string(self.dir.path().join("dock.log")).unwrap_or_default()
    }

    /// Poll until `f` says yes (panics with the dock log after `secs`).
    pub fn wait_for(&self, secs: u64, what: &str, mut f: impl FnMut() -> bool) {
        let deadline = Instant::now() + Duration::from_secs(secs);
        while Instant::now() < deadline {
            if f() {
                return;
            }
            std::thread::sleep(Duration::from_millis(150));
        }
        panic!(
            "timed out waiting for {what}\n--- dock log ---\n{}",
            self.dock_log()
        );
    }

    /// Sessions as `evidock sessions --json` shows them.
    pub fn sessions(&self) -> Vec<Value> {
        self.json(&["sessions"])
            .as_array()
            .cloned()
            .unwrap_or_default()
    }
}

/// A running `evidock dock`.
#[derive(Debug)]
pub struct DockProcess(Option<Child>);

impl DockProcess {
    pub fn id(&self) -> u32 {
        self.0.as_ref().map(Child::id).unwrap_or_default()
    }

    /// SIGKILL now (a crash, as a power cut looks to the process).
    pub fn kill9(&mut self) {
        if let Some(mut c) = self.0.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }
}

impl Drop for DockProcess {
    fn drop(&mut self) {
        self.kill9();
    }
}

/// Stop a dock gracefully (SIGTERM) and wait for it to finish its in-flight copies.
pub fn stop(mut dock: DockProcess) {
    let Some(mut child) = dock.0.take() else {
        return;
    };
    if bins::terminate(&mut child, Duration::from_secs(30)).is_none() {
        panic!("evidock dock did not stop within 30 s of SIGTERM");
    }
}

/// A simulated camera's firmware with these basics; the clock is now (station local time).
pub fn firmware(serial: &str, officer: &str) -> Firmware {
    let now = chrono::Utc::now();
    Firmware {
        serial: serial.into(),
        officer: officer.into(),
        user_name: "张三".into(),
        unit_number: "350500000001".into(),
        unit_name: "晋江市应急管理局".into(),
        password: "000000".into(),
        clock: now
            .with_timezone(&chrono::Local)
            .naive_local()
            .format("%Y%m%d%H%M%S")
            .to_string(),
        clock_set_at: now,
        drift_ppm: 0,
        battery: 80,
        read_bytes_per_sec: 0,
    }
}

/// `n` generated recordings of `size` bytes, named as the camera names them.
pub fn recordings(fw: &Firmware, n: u32, size: u64, seed: u64) -> Vec<(Vec<u8>, SimContent)> {
    let now = fw.clock_at(chrono::Utc::now()).unwrap();
    (0..n)
        .map(|i| {
            let at = now - chrono::Duration::minutes(10 * i64::from(n - i));
            (
                sim::recording_name(&fw.serial, &fw.officer, at, i + 1, "MP4").into_bytes(),
                SimContent::Generated {
                    size,
                    seed: seed * 1000 + u64::from(i),
                },
            )
        })
        .collect()
}

/// Create a simulated camera under `parent/<serial>/`; returns its card.
pub fn camera(parent: &Path, fw: Firmware, files: Vec<(Vec<u8>, SimContent)>) -> PathBuf {
    let dir = parent.join(format!("sim-{}", fw.serial));
    sim::create(
        &dir,
        &SimSpec {
            firmware: fw,
            files,
        },
    )
    .unwrap()
}

/// Dock a card: move it under the mount root as one rename (as a mount appears at once).
pub fn dock(card: &Path, mount_root: &Path, slot: &str) -> PathBuf {
    let to = mount_root.join(slot);
    std::fs::rename(card, &to).unwrap();
    to
}

/// SHA-256 of a file, hex.
pub fn sha256_file(p: &Path) -> String {
    let mut f = std::fs::File::open(p).unwrap();
    evidock_verify::digest::hash_reader(&mut f, Default::default())
        .unwrap()
        .0
        .sha256
        .to_hex()
}

/// Events of one kind.
pub fn of_kind<'a>(events: &'a [Value], kind: &str) -> Vec<&'a Value> {
    events.iter().filter(|e| e["kind"] == kind).collect()
}

/// A small tmpfs mounted for a test (a disk that fills up). `None` when this process may not
/// mount (not root): the caller says the test was skipped and why.
#[derive(Debug)]
pub struct SmallDisk {
    pub path: PathBuf,
}

impl SmallDisk {
    pub fn mount(path: &Path, mib: u64) -> Option<SmallDisk> {
        std::fs::create_dir_all(path).unwrap();
        let ok = Command::new("mount")
            .args(["-t", "tmpfs", "-o", &format!("size={mib}m"), "tmpfs"])
            .arg(path)
            .status()
            .is_ok_and(|s| s.success());
        ok.then(|| SmallDisk {
            path: path.to_path_buf(),
        })
    }
}

impl Drop for SmallDisk {
    fn drop(&mut self) {
        let _ = Command::new("umount").arg("-l").arg(&self.path).status();
    }
}
