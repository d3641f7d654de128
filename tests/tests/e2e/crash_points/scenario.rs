//! The scenario the crash points are tried in: two simulated cameras whose cards share a
//! recording (identical content), a profile that wipes after upload and keeps important files,
//! the local store; then one camera docked again (its kept files are skipped, a new file is
//! acquired). Every case starts from a snapshot of the phase it crashes in, at the same absolute
//! path (the journal and the cards hold absolute paths). The same scenario serves the crash
//! build (abort at a named point) and the strace sweep over the normal binary (strace.rs: the
//! dock run under `strace`, killed before its Nth call of a syscall): [`Launch`] says which.

use super::Case;
use super::checks::{self, Instance, Report};
use super::process::{Guard, Run, child_of, wrapped};
use evidock_ingest::device::sim::{self, SimContent};
use evidock_tests::station;
use std::collections::BTreeMap;
use std::ffi::OsString;
use std::os::unix::process::ExitStatusExt as _;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

const CONFIG: &str = "utc_offset = \"+08:00\"\n[status]\nenabled = false\n[acquire]\nsync_every_mib = 1\nbuffer_kib = 64\n[[camera]]\nname = \"sim\"\ndriver = \"zfy-sim\"\nallow = [\"*\"]\nwipe = \"after-upload\"\n";

/// How long a phase may take before it counts as stuck.
const PHASE_LIMIT: Duration = Duration::from_secs(60);

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Phase {
    /// Both cameras docked: acquire, upload with read-back, wipe.
    Dock,
    /// Camera C docked, its card pulled out mid-file and put back: the copy resumes where it
    /// stopped.
    Unplug,
    /// Cameras A and C undocked; camera B docked again: its kept files are skipped, its new
    /// file acquired.
    Redock,
}

impl Phase {
    pub const ALL: [Phase; 3] = [Phase::Dock, Phase::Unplug, Phase::Redock];

    pub fn name(self) -> &'static str {
        match self {
            Phase::Dock => "dock",
            Phase::Unplug => "unplug",
            Phase::Redock => "redock",
        }
    }

    /// Whether the matrix tries `point` in this phase: the unplug phase only what the resume
    /// path does differently (acquisition and sessions); its uploads, transcodes and wipe are
    /// the dock phase's code, tried there. `CRASH_ALL=1` tries every point in every phase.
    pub fn tries(self, point: &str) -> bool {
        self != Phase::Unplug
            || point.starts_with("acquire.")
            || point.starts_with("session.")
            || std::env::var_os("CRASH_ALL").is_some()
    }

    pub fn named(s: &str) -> Option<Phase> {
        Phase::ALL.into_iter().find(|p| p.name() == s)
    }
}

/// How one run of the dock is started.
#[derive(Debug, Clone, Copy, Default)]
pub struct Launch<'a> {
    /// `EVIDOCK_CRASH_AT`: abort at this crash point (`point@n`; crash build only).
    pub crash_at: Option<&'a str>,
    /// `EVIDOCK_CRASH_TRACE`: record every crash point reached (crash build only).
    pub trace: Option<&'a Path>,
    /// Run the dock under this command (`strace -f … --`). The dock is its child: SIGTERM goes
    /// to the dock itself (strace blocks fatal signals when it writes to `-o FILE`), and a dock
    /// killed by SIGKILL is [`Run::Killed`].
    pub under: Option<&'a [OsString]>,
}

impl std::fmt::Display for Launch<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        if let Some(at) = self.crash_at {
            write!(f, "at {at}")?;
        }
        if let Some(under) = self.under {
            let words: Vec<_> = under.iter().map(|w| w.to_string_lossy()).collect();
            write!(f, "under {}", words.join(" "))?;
        }
        Ok(())
    }
}

pub const CAMERA_A: &str = "ZFYA001";
pub const CAMERA_B: &str = "ZFYB002";
pub const CAMERA_C: &str = "ZFYC003";
/// Every camera of the scenario.
pub const CAMERAS: [&str; 3] = [CAMERA_A, CAMERA_B, CAMERA_C];

/// Where camera C's card is in the unplug phase.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Pull {
    /// Docked, not pulled yet.
    Docked,
    /// Pulled out mid-file (since then).
    Out(Instant),
    /// Put back.
    Back,
}

pub struct Scenario {
    root: PathBuf,
    /// The station and its cameras; every case runs here.
    pub work: PathBuf,
    evidock: PathBuf,
    /// Every file instance a phase started with on a docked card.
    pub instances: std::cell::RefCell<Vec<Instance>>,
    /// The phase being run, and where C's card is in it.
    phase: std::cell::Cell<Phase>,
    pull: std::cell::Cell<Pull>,
    /// What each phase started with in the run without a crash (a case starting later
    /// replays the instances of the phases before it from here).
    started_with: std::cell::RefCell<BTreeMap<Phase, Vec<Instance>>>,
}

/// Where the scenarios run: under the crash build's own target directory.
pub fn base_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../target/crash/scenario")
}

/// Remove what earlier test runs left (a killed run leaves its directories); this process's
/// own (`<pid>-<worker>`) stay, another test of it may be using them.
pub fn remove_leftovers() {
    let mine = format!("{}-", std::process::id());
    for e in std::fs::read_dir(base_dir())
        .into_iter()
        .flatten()
        .flatten()
    {
        if !e.file_name().to_string_lossy().starts_with(&mine) {
            let _ = std::fs::remove_dir_all(e.path());
        }
    }
}

/// A one-second H.264/AAC clip (ffmpeg CLI), made once per test process.
fn clip() -> PathBuf {
    static CLIP: std::sync::OnceLock<PathBuf> = std::sync::OnceLock::new();
    CLIP.get_or_init(|| {
        let p = base_dir().join(format!("clip-{}.mp4", std::process::id()));
        std::fs::create_dir_all(base_dir()).unwrap();
        evidock_tests::media::clip(&p, "160x120", 1, 40);
        p
    })
    .clone()
}

/// Build `evidock` with the crash points into `target/crash/` (scripts/crash-build.sh; a no-op
/// when up to date), once per test process: the tests of this binary run at the same time.
pub fn crash_binary() -> PathBuf {
    static BUILT: std::sync::OnceLock<bool> = std::sync::OnceLock::new();
    let ws = Path::new(env!("CARGO_MANIFEST_DIR")).join("..");
    let built = *BUILT.get_or_init(|| {
        let mut c = Command::new(ws.join("scripts/crash-build.sh"));
        evidock_tests::bins::without_test_cargo_env(&mut c);
        c.status().map(|s| s.success()).unwrap_or(false)
    });
    assert!(built, "scripts/crash-build.sh failed");
    ws.join("target/crash/debug/evidock")
}

/// `evidock --data-dir WORK/data --config WORK/evidock.toml ARGS` with `evidock`, no crash
/// asked for and nothing taken from the test's environment.
pub fn station_cmd(evidock: &Path, work: &Path, args: &[&str]) -> Command {
    let mut c = Command::new(evidock);
    c.arg("--data-dir")
        .arg(work.join("data"))
        .arg("--config")
        .arg(work.join("evidock.toml"))
        .args(args)
        .env_remove("EVIDOCK_CRASH_AT")
        .env_remove("EVIDOCK_CRASH_TRACE")
        .env_remove("EVIDOCK_DATA_DIR")
        .env_remove("EVIDOCK_CONFIG")
        .env("EVIDOCK_LOG", "warn");
    c
}

impl Scenario {
    /// Worker `worker`'s scenario (each has its own directory; cases of one worker run one
    /// after the other), run with `evidock` (the crash-point build).
    pub fn new(evidock: &Path, worker: usize) -> Scenario {
        let root = base_dir().join(format!("{}-{worker}", std::process::id()));
        std::fs::create_dir_all(&root).unwrap();
        let root = std::fs::canonicalize(&root).unwrap();
        Scenario {
            work: root.join("work"),
            root,
            evidock: evidock.to_path_buf(),
            instances: Default::default(),
            phase: std::cell::Cell::new(Phase::Dock),
            pull: std::cell::Cell::new(Pull::Back),
            started_with: Default::default(),
        }
    }

    pub fn data(&self) -> PathBuf {
        self.work.join("data")
    }

    /// A file of this worker's own beside the station (not in its snapshots).
    pub fn scratch(&self, name: &str) -> PathBuf {
        self.root.join(name)
    }

    fn mount_root(&self) -> PathBuf {
        self.work.join("mnt")
    }

    /// A docked camera's card.
    pub fn card(&self, serial: &str) -> PathBuf {
        self.mount_root().join(serial)
    }

    /// `evidock --data-dir … --config … ARGS` of the crash-point build, no crash asked for.
    pub fn evidock(&self, args: &[&str]) -> Command {
        station_cmd(&self.evidock, &self.work, args)
    }

    /// The station before the first phase: a key, a log, two cameras docked.
    fn setup(&self) {
        let _ = std::fs::remove_dir_all(&self.work);
        std::fs::create_dir_all(self.mount_root()).unwrap();
        std::fs::write(self.work.join("evidock.toml"), CONFIG).unwrap();
        let ran = evidock_tests::bins::run(&mut self.evidock(&["station", "init", "--json"]));
        assert_eq!(ran.code, 0, "{}", ran.stderr);
        let cams = self.work.join("cams");
        let shared = SimContent::Generated {
            size: 96 * 1024,
            seed: 4242,
        };
        for (serial, officer) in [(CAMERA_A, "350901"), (CAMERA_B, "350902")] {
            let fw = station::firmware(serial, officer);
            let at = fw.clock_at(chrono::Utc::now()).unwrap();
            let name = |n: u32, important: bool| {
                let s = sim::recording_name(
                    serial,
                    officer,
                    at - chrono::Duration::minutes(i64::from(30 - n)),
                    n,
                    "MP4",
                );
                if important {
                    s.replace(".MP4", "_IMP.MP4")
                } else {
                    s
                }
                .into_bytes()
            };
            let seed = u64::from(serial.as_bytes()[3]);
            let files = if serial == CAMERA_A {
                vec![
                    (name(1, false), shared.clone()),
                    (
                        name(2, false),
                        SimContent::Generated {
                            size: 3 * 1024,
                            seed,
                        },
                    ),
                    (
                        name(3, false),
                        SimContent::Generated {
                            size: 1536 * 1024,
                            seed: seed + 1,
                        },
                    ),
                ]
            } else {
                // B keeps its important files; one holds the same bytes as a recording of A.
                vec![
                    (name(1, true), shared.clone()),
                    (
                        name(2, true),
                        SimContent::Generated {
                            size: 20 * 1024,
                            seed,
                        },
                    ),
                    // A real recording: its playback copy, poster and contact sheet are
                    // made, logged, queued and uploaded (the other files are not video).
                    (name(3, false), SimContent::CopyOf(clip())),
                ]
            };
            let card = station::camera(&cams, fw, files);
            station::dock(&card, &self.mount_root(), serial);
        }
    }

    /// What `phase` starts with, done once when a run enters it.
    fn prepare(&self, phase: Phase) {
        self.phase.set(phase);
        self.pull.set(Pull::Back);
        if phase == Phase::Unplug {
            // C reads slowly (2 MB/s): its 2 MiB recording is pulled out a quarter of the way.
            let mut fw = station::firmware(CAMERA_C, "350903");
            fw.read_bytes_per_sec = 2_000_000;
            let at = fw.clock_at(chrono::Utc::now()).unwrap();
            let files = vec![(
                sim::recording_name(CAMERA_C, "350903", at, 1, "MP4").into_bytes(),
                SimContent::Generated {
                    size: 2 << 20,
                    seed: 77,
                },
            )];
            let card = station::camera(&self.work.join("cams"), fw, files);
            station::dock(&card, &self.mount_root(), CAMERA_C);
            self.pull.set(Pull::Docked);
        }
        if phase == Phase::Redock {
            // A and C leave; B is docked again with one recording more.
            let a = self.card(CAMERA_A);
            std::fs::rename(&a, self.work.join("cams").join("A-undocked")).unwrap();
            let c = self.card(CAMERA_C);
            std::fs::rename(&c, self.work.join("cams").join("C-undocked")).unwrap();
            let fw = station::firmware(CAMERA_B, "350902");
            let at = fw.clock_at(chrono::Utc::now()).unwrap();
            let name = sim::recording_name(CAMERA_B, "350902", at, 4, "MP4");
            let p = self.card(CAMERA_B).join(name);
            std::fs::create_dir_all(p.parent().unwrap()).unwrap();
            std::fs::write(&p, vec![0x5a; 7 * 1024 + 3]).unwrap();
        }
        let mut inst = self.instances.borrow_mut();
        for serial in CAMERAS {
            let card = self.card(serial);
            if card.is_dir() {
                for i in checks::card_files(serial, &card) {
                    if !inst.contains(&i) {
                        inst.push(i);
                    }
                }
            }
        }
    }

    fn snapshot(&self, name: &str) {
        let to = self.root.join(format!("snap-{name}"));
        let _ = std::fs::remove_dir_all(&to);
        copy_tree(&self.work, &to);
    }

    fn restore(&self, name: &str) {
        let _ = std::fs::remove_dir_all(&self.work);
        copy_tree(&self.root.join(format!("snap-{name}")), &self.work);
    }

    /// The run without a crash; what each phase reached, and how often.
    pub fn baseline(&self) -> BTreeMap<Phase, BTreeMap<String, u64>> {
        let traces: BTreeMap<Phase, PathBuf> = Phase::ALL
            .into_iter()
            .map(|p| (p, self.root.join(format!("trace-{}", p.name()))))
            .collect();
        let mut out = BTreeMap::new();
        self.baseline_with(
            |phase| {
                let _ = std::fs::remove_file(&traces[&phase]);
                Launch {
                    trace: Some(&traces[&phase]),
                    ..Launch::default()
                }
            },
            |phase, pid| {
                let mut counts: BTreeMap<String, u64> = BTreeMap::new();
                let text = std::fs::read_to_string(&traces[&phase]).unwrap_or_default();
                for line in text.lines() {
                    if let Some((p, name)) = line.split_once(' ')
                        && p == pid.to_string()
                    {
                        *counts.entry(name.to_string()).or_default() += 1;
                    }
                }
                out.insert(phase, counts);
            },
        );
        out
    }

    /// The run without a crash, each phase started as `launch` says and read by `after` (with
    /// the dock's pid) once it is done; every phase's snapshot is taken on the way.
    pub fn baseline_with<'a>(
        &self,
        launch: impl Fn(Phase) -> Launch<'a>,
        mut after: impl FnMut(Phase, u32),
    ) {
        self.setup();
        for phase in Phase::ALL {
            self.snapshot(phase.name());
            self.prepare(phase);
            self.started_with
                .borrow_mut()
                .insert(phase, self.instances.borrow().clone());
            let (run, pid) = self.run_phase(launch(phase));
            assert!(
                matches!(run, Run::Done),
                "{} without a crash: {run:?}\n{}",
                phase.name(),
                self.dock_log()
            );
            if phase == Phase::Unplug {
                // The phase does what it says: C was pulled mid-file, and its copy resumed.
                let ev = checks::events(self);
                let resumed = ev.iter().any(|e| {
                    e["kind"] == "acquired"
                        && e["payload"]["device"] == CAMERA_C
                        && e["payload"]["resumed_at"].as_u64().unwrap_or(0) > 0
                });
                let interrupted = ev.iter().any(|e| {
                    e["kind"] == "undocked"
                        && e["payload"]["device"] == CAMERA_C
                        && e["payload"]["released"] == false
                });
                assert!(
                    resumed && interrupted,
                    "unplug phase: C interrupted {interrupted}, resumed {resumed}\n{}",
                    self.dock_log()
                );
            }
            after(phase, pid);
        }
        self.snapshot("end");
    }

    /// One case: from its phase's snapshot, abort at the point, restart, finish every phase.
    pub fn crash(&self, case: &Case) -> Report {
        let at = format!("{}@{}", case.point, case.occurrence);
        self.crash_run(
            case.phase,
            Launch {
                crash_at: Some(&at),
                ..Launch::default()
            },
        )
    }

    /// From `phase`'s snapshot, the dock started as `launch` says until it dies as meant (an
    /// abort at the crash point; under strace, a SIGKILL), then restarted without it, every
    /// phase finished, and the checks. A phase that finishes without dying is `unreached`.
    pub fn crash_run(&self, phase: Phase, launch: Launch<'_>) -> Report {
        self.restore(phase.name());
        self.instances.borrow_mut().clear();
        // The instances of the phases before come from the baseline's cards.
        for before in Phase::ALL {
            if before >= phase {
                break;
            }
            self.replay_instances(before);
        }
        let mut report = Report::default();
        for p in Phase::ALL.into_iter().filter(|p| *p >= phase) {
            self.prepare(p);
            if p == phase {
                match self.run_phase(launch).0 {
                    Run::Crashed => {}
                    Run::Killed if launch.under.is_some() => {}
                    Run::Done => {
                        report.unreached = true;
                        return report;
                    }
                    other => {
                        report
                            .stuck
                            .push(format!("the run meant to crash {launch}: {other:?}"));
                        return report;
                    }
                }
            }
            match self.run_phase(Launch::default()).0 {
                Run::Done => {}
                // Quiet but not done: the checks below say what is missing.
                Run::Settled(s) => report
                    .stuck
                    .push(format!("{} after the restart: {s}", p.name())),
                other => {
                    report.stuck.push(format!(
                        "{} after the restart: {other:?}\n{}",
                        p.name(),
                        tail(&self.dock_log(), 8)
                    ));
                    return report;
                }
            }
        }
        let found = checks::check(self);
        report.lost.extend(found.lost);
        report.duplicated.extend(found.duplicated);
        report.stuck.extend(found.stuck);
        report
    }

    /// From a fresh station, the dock phase with a panic (not an abort) at `at`: the dock's
    /// exit code (it must stop by itself) and what it logged.
    pub fn panic_in_dock(&self, at: &str) -> (Option<i32>, String) {
        self.setup();
        self.prepare(Phase::Dock);
        let mut c = self.evidock(&["dock", "--mount-root"]);
        c.arg(self.mount_root())
            .env("EVIDOCK_LOG", "info")
            .env("EVIDOCK_CRASH_AT", at)
            .env("EVIDOCK_CRASH_MODE", "panic")
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::from(
                std::fs::File::create(self.work.join("dock.log")).unwrap(),
            ));
        let mut child = Guard(Some(c.spawn().unwrap()), None);
        let start = Instant::now();
        let code = loop {
            if let Some(s) = child.0.as_mut().unwrap().try_wait().unwrap() {
                child.0 = None;
                break s.code();
            }
            if start.elapsed() > PHASE_LIMIT {
                child.stop();
                break None;
            }
            std::thread::sleep(Duration::from_millis(100));
        };
        (code, self.dock_log())
    }

    /// After [`Scenario::panic_in_dock`]: every phase run to its end, then the checks.
    pub fn finish_after_panic(&self) -> Report {
        let mut report = Report::default();
        for phase in Phase::ALL {
            if phase != Phase::Dock {
                self.prepare(phase);
            }
            match self.run_phase(Launch::default()).0 {
                Run::Done => {}
                other => {
                    report.stuck.push(format!("{}: {other:?}", phase.name()));
                    return report;
                }
            }
        }
        checks::check(self)
    }

    /// The instances a phase before the crashed one started with, as the baseline recorded them.
    fn replay_instances(&self, phase: Phase) {
        let recorded = self.started_with.borrow();
        let mut inst = self.instances.borrow_mut();
        for i in recorded.get(&phase).into_iter().flatten() {
            if !inst.contains(i) {
                inst.push(i.clone());
            }
        }
    }

    /// In the unplug phase: pull C's card once 512 KiB of its recording is in the spool, and put
    /// it back once the dock has seen it go (or after 5 s).
    fn pull_step(&self, run_log: &str) {
        match self.pull.get() {
            Pull::Docked => {
                // Partial copies sit one folder down (spool/partial/<session>/…).
                let copied = std::fs::read_dir(self.data().join("spool/partial"))
                    .into_iter()
                    .flatten()
                    .flatten()
                    .flat_map(|d| std::fs::read_dir(d.path()).into_iter().flatten().flatten())
                    .filter_map(|e| e.metadata().ok())
                    .any(|m| m.is_file() && m.len() >= 512 << 10);
                if copied {
                    std::fs::rename(self.card(CAMERA_C), self.work.join("cams/C-pulled")).unwrap();
                    self.pull.set(Pull::Out(Instant::now()));
                }
            }
            Pull::Out(at) => {
                if run_log.contains(&format!("volume went away slot={CAMERA_C}"))
                    || at.elapsed() > Duration::from_secs(5)
                {
                    self.put_back();
                }
            }
            Pull::Back => {}
        }
    }

    fn put_back(&self) {
        std::fs::rename(self.work.join("cams/C-pulled"), self.card(CAMERA_C)).unwrap();
        self.pull.set(Pull::Back);
    }

    pub fn dock_log(&self) -> String {
        std::fs::read_to_string(self.work.join("dock.log")).unwrap_or_default()
    }

    /// Run the dock until the phase is done (then SIGTERM), it aborts, or the limit passes;
    /// the dock's pid.
    fn run_phase(&self, launch: Launch<'_>) -> (Run, u32) {
        // A card left out by a run that died is put back first.
        if let Pull::Out(_) = self.pull.get() {
            self.put_back();
        }
        let mut c = self.evidock(&["dock", "--mount-root"]);
        c.arg(self.mount_root()).env("EVIDOCK_LOG", "info");
        if let Some(at) = launch.crash_at {
            c.env("EVIDOCK_CRASH_AT", at);
        }
        if let Some(t) = launch.trace {
            c.env("EVIDOCK_CRASH_TRACE", t);
        }
        let program = c.get_program().to_owned();
        if let Some(under) = launch.under {
            c = wrapped(under, &c);
        }
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(self.work.join("dock.log"))
            .unwrap();
        c.stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::from(log));
        let log_at = std::fs::metadata(self.work.join("dock.log")).map_or(0, |m| m.len());
        let mut child = Guard(Some(c.spawn().unwrap()), None);
        let mut pid = child.0.as_ref().map(Child::id).unwrap_or_default();
        if launch.under.is_some() {
            pid = child_of(pid, &program);
            child.1 = Some(pid);
        }
        let start = Instant::now();
        let mut quiet_since: Option<(u64, Instant)> = None;
        loop {
            std::thread::sleep(Duration::from_millis(100));
            if let Some(status) = child.0.as_mut().unwrap().try_wait().unwrap() {
                child.0 = None;
                return match status.signal() {
                    Some(6) => (Run::Crashed, pid),
                    // strace ends itself with the signal that ended the dock.
                    Some(9) if launch.under.is_some() => (Run::Killed, pid),
                    _ => (Run::Exited(format!("{status}")), pid),
                };
            }
            // Not before the dock is up (its signal handlers installed).
            let log = self.dock_log();
            let run_log = log.get(log_at as usize..).unwrap_or_default();
            if !run_log.contains("evidock dock: station") {
                continue;
            }
            self.pull_step(run_log);
            let state = checks::progress(self, run_log);
            if state.done {
                // The point may still be reached on the way out (the card was wiped, the event
                // is next): that is the crash asked for.
                return match child.stop() {
                    Run::Aborted if launch.crash_at.is_some() => (Run::Crashed, pid),
                    Run::Killed if launch.under.is_some() => (Run::Killed, pid),
                    other => (other, pid),
                };
            }
            // Settled without being done (nothing new for 4 s after every session released):
            // stop, and let the checks say what is missing.
            if state.released {
                match quiet_since {
                    Some((n, t)) if n == state.events => {
                        if t.elapsed() > Duration::from_secs(4) {
                            child.stop();
                            return (
                                Run::Settled(format!(
                                    "every camera finished with, but not done: {}",
                                    state.missing
                                )),
                                pid,
                            );
                        }
                    }
                    _ => quiet_since = Some((state.events, Instant::now())),
                }
            }
            if start.elapsed() > PHASE_LIMIT {
                child.stop();
                return (
                    Run::Stuck(format!("not done after {PHASE_LIMIT:?}: {}", state.missing)),
                    pid,
                );
            }
        }
    }
}

/// `cp -a FROM TO`: a snapshot of a station, or its restore.
/// The custody log of the station in `data` (its one `custody/<station>` folder), if made.
pub fn log_dir(data: &Path) -> Option<PathBuf> {
    std::fs::read_dir(data.join("custody"))
        .ok()?
        .flatten()
        .next()
        .map(|d| d.path())
}

pub fn copy_tree(from: &Path, to: &Path) {
    let ok = Command::new("cp")
        .arg("-a")
        .arg(from)
        .arg(to)
        .status()
        .is_ok_and(|s| s.success());
    assert!(ok, "cp -a {} {}", from.display(), to.display());
}

fn tail(s: &str, n: usize) -> String {
    let lines: Vec<String> = s.lines().map(|l| l.chars().take(240).collect()).collect();
    lines[lines.len().saturating_sub(n)..].join("\n")
}
