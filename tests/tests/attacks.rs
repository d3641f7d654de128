//! `evidock-verify` under attack, as a defence expert or an adversary would try it: on a real
//! package and a real custody log (footage from the ffmpeg CLI, a real `openssl ts` TSA), every
//! forgery `package-forger` can build, every hostile file, every trick on the screen. Each run
//! is bounded (10 s, 256 MiB of address space): a hang or a blow-up fails the test. Each
//! attack must end with its own finding code, a non-zero exit, and no verdict line that claims
//! what the attack wanted; every report is kept as a snapshot (tests/snapshots/attacks/), so a
//! change to what a court reads is reviewed.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use evidock_tests::attack::{self, Checked, check, copy_tree, flip_byte, overwrite, redact};
use evidock_tests::bins::{self, trust_file};
use evidock_tests::media::clip;
use evidock_tests::station::TestStation;
use evidock_tests::tsa::TsaRig;
use serde_json::Value;
use std::path::{Path, PathBuf};
use std::sync::OnceLock;

const CASE: &str = "晋应急罚〔2023〕102号";

/// What every attack starts from: a station with a TSA, a case, two packages of it (the second
/// exported after another docking), trust files as a receiver would write them.
struct Fixture {
    tsa: TsaRig,
    /// The forger's own TSA: a real `openssl ts`, a root nobody pinned.
    forger_tsa: TsaRig,
    st: TestStation,
    /// A station of the forger's that calls itself dock-01 too.
    forger: TestStation,
    pkg1: PathBuf,
    pkg2: PathBuf,
    /// The station's verifier key (note format).
    key: String,
    /// Station key and TSA root pinned.
    trust_full: PathBuf,
    /// The station key only, as an earlier VERIFY.md told courts to write.
    trust_station: PathBuf,
    work: tempfile::TempDir,
}

fn forger(args: &[&std::ffi::OsStr]) {
    let ran = bins::run(bins::cmd("package-forger").args(args));
    assert_eq!(ran.code, 0, "package-forger {args:?}: {}", ran.stderr);
}

fn ingest(st: &TestStation, serial: &str, clips: &[(&str, u32)]) {
    let card = st.dir.path().join(serial);
    std::fs::create_dir_all(card.join("DCIM")).unwrap();
    for (name, hue) in clips {
        clip(&card.join("DCIM").join(name), "320x240", 2, *hue);
    }
    let out = st.json(&["ingest", card.to_str().unwrap(), "--officer", "350500"]);
    assert_eq!(out["outcome"], "released", "{out}");
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

fn fixture() -> &'static Fixture {
    static F: OnceLock<Fixture> = OnceLock::new();
    F.get_or_init(|| {
        let tsa = TsaRig::start().unwrap();
        let forger_tsa = TsaRig::start().unwrap();
        let config = format!(
            "station_id = \"dock-01\"\nutc_offset = \"+08:00\"\n[digests]\nsm3 = true\n{}\n[[camera]]\nname = \"any\"\ndriver = \"mass-storage\"\nallow = [\"*\"]\n",
            tsa.station_config()
        );
        let st = TestStation::with_config(&config);
        ingest(&st, "ZFY0500", &[("ZFY0500_0001.MP4", 0), ("ZFY0500_0002.MP4", 120)]);
        st.import_case_now(CASE, "某矿业公司安全检查", "350500");
        let work = tempfile::tempdir().unwrap();
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
        let forger = TestStation::with_config(
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
    fn station_key(&self) -> PathBuf {
        self.st.data().join("station.key")
    }

    fn manifest(&self) -> Value {
        serde_json::from_slice(&std::fs::read(self.pkg1.join("MANIFEST.json")).unwrap()).unwrap()
    }

    /// The path of a role in package 1 made from the camera's first recording (evidence IDs
    /// differ from run to run; camera file names do not).
    fn first(&self, role: &str) -> String {
        match role {
            "original" | "derivative" | "thumbnail" => self.of("ZFY0500_0001", role),
            _ => self.of("", role),
        }
    }

    fn of(&self, recording: &str, role: &str) -> String {
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

    fn latest_note(&self, log: &Path) -> PathBuf {
        std::fs::read_dir(log.join("checkpoints"))
            .unwrap()
            .flatten()
            .map(|e| e.path())
            .max()
            .unwrap()
    }
}

/// What an attack is checked against.
#[derive(Clone, Copy)]
enum Source {
    Pkg1,
    Pkg2,
    Log,
    ForgerLog,
}

#[derive(Clone, Copy)]
enum Trusting {
    Full,
    Station,
    Nothing,
}

type Tamper = Box<dyn Fn(&Fixture, &Path) -> Vec<String>>;

struct Attack {
    name: &'static str,
    source: Source,
    tamper: Tamper,
    trust: Trusting,
    /// The finding code the attack must end with (any level).
    want: &'static str,
    exit: i32,
    /// Verdict lines that must not appear.
    not: &'static [&'static str],
}

const PROVEN: &str = "Integrity: PROVEN";
const ATTESTED: &str = "Time:      ATTESTED";
const BOTH: &[&str] = &[PROVEN, ATTESTED];

fn a(
    name: &'static str,
    source: Source,
    trust: Trusting,
    want: &'static str,
    exit: i32,
    not: &'static [&'static str],
    tamper: impl Fn(&Fixture, &Path) -> Vec<String> + 'static,
) -> Attack {
    Attack {
        name,
        source,
        tamper: Box::new(tamper),
        trust,
        want,
        exit,
        not,
    }
}

fn events_file(p: &Path) -> PathBuf {
    p.join("custody/events.jsonl")
}

fn lines_of(p: &Path) -> Vec<String> {
    std::fs::read_to_string(p)
        .unwrap()
        .lines()
        .map(String::from)
        .collect()
}

fn write_lines(p: &Path, lines: &[String]) {
    overwrite(p, (lines.join("\n") + "\n").as_bytes());
}

fn none(_: &Fixture, _: &Path) -> Vec<String> {
    Vec::new()
}

fn os(s: &Path) -> &std::ffi::OsStr {
    s.as_os_str()
}

/// The 13 of the tamper suite: what damage or a forger without the station key can do.
fn tamper_suite() -> Vec<Attack> {
    use Source::Pkg1;
    use Trusting::Full;
    vec![
        a(
            "flip a byte of an original",
            Pkg1,
            Full,
            "original.altered",
            1,
            BOTH,
            |f, p| {
                flip_byte(&p.join(f.first("original")), 0.5);
                vec![]
            },
        ),
        a(
            "flip a byte of a derivative",
            Pkg1,
            Full,
            "derivative.altered",
            1,
            BOTH,
            |f, p| {
                flip_byte(&p.join(f.first("derivative")), 0.5);
                vec![]
            },
        ),
        a(
            "change a manifest row",
            Pkg1,
            Full,
            "manifest.bad-signature",
            1,
            BOTH,
            |_, p| {
                let m = std::fs::read_to_string(p.join("MANIFEST.json")).unwrap();
                let i = m.find("\"size\":").unwrap() + 7;
                let mut b = m.into_bytes();
                b[i] = if b[i] == b'9' { b'1' } else { b[i] + 1 };
                overwrite(&p.join("MANIFEST.json"), &b);
                vec![]
            },
        ),
        a(
            "change a custody event",
            Pkg1,
            Full,
            "event.not-included",
            1,
            BOTH,
            |_, p| {
                let e = std::fs::read_to_string(events_file(p)).unwrap();
                let changed = e.replacen("\"officer\":\"350500\"", "\"officer\":\"350501\"", 1);
                assert_ne!(e, changed);
                overwrite(&events_file(p), changed.as_bytes());
                vec![]
            },
        ),
        a(
            "change a checkpoint's size",
            Pkg1,
            Full,
            "checkpoint.bad-signature",
            1,
            BOTH,
            |f, p| {
                let r = format!(
                    "custody/checkpoints/{}.note",
                    f.manifest()["custody"]["checkpoint"]
                );
                let mut lines = lines_of(&p.join(&r));
                lines[1] = format!("{}", lines[1].parse::<u64>().unwrap() + 1);
                write_lines(&p.join(&r), &lines);
                vec![]
            },
        ),
        a(
            "change a proof",
            Pkg1,
            Full,
            "proof.invalid",
            1,
            BOTH,
            |f, p| {
                let seq = f.manifest()["custody"]["events"][1].as_u64().unwrap();
                let r = p.join(format!("custody/proofs/{seq}.proof"));
                let t = std::fs::read_to_string(&r).unwrap();
                let mut lines: Vec<String> = t.split('\n').map(String::from).collect();
                let c = if lines[2].starts_with('A') { "B" } else { "A" };
                lines[2].replace_range(0..1, c);
                overwrite(&r, lines.join("\n").as_bytes());
                vec![]
            },
        ),
        a(
            "flip a byte of a token",
            Pkg1,
            Full,
            "timestamp.bad-signature",
            1,
            BOTH,
            |f, p| {
                flip_byte(&p.join(f.first("token")), 1.0);
                vec![]
            },
        ),
        a(
            "delete a file",
            Pkg1,
            Full,
            "file.missing",
            1,
            BOTH,
            |f, p| {
                std::fs::remove_file(p.join(f.first("derivative"))).unwrap();
                vec![]
            },
        ),
        a(
            "add a file",
            Pkg1,
            Full,
            "file.unlisted",
            1,
            BOTH,
            |_, p| {
                std::fs::write(p.join("originals/extra.MP4"), b"not evidence").unwrap();
                vec![]
            },
        ),
        a(
            "reorder events",
            Pkg1,
            Full,
            "custody.out-of-order",
            1,
            BOTH,
            |_, p| {
                let mut lines = lines_of(&events_file(p));
                lines.swap(1, 2);
                write_lines(&events_file(p), &lines);
                vec![]
            },
        ),
        a(
            "swap a derivative for another clip's",
            Pkg1,
            Full,
            "derivative.not-from-original",
            1,
            BOTH,
            |f, p| {
                let (a, b) = (
                    f.of("ZFY0500_0001", "derivative"),
                    f.of("ZFY0500_0002", "derivative"),
                );
                overwrite(&p.join(a), &std::fs::read(p.join(b)).unwrap());
                vec![]
            },
        ),
        a(
            "drop an event from the middle",
            Pkg1,
            Full,
            "custody.event-missing",
            1,
            BOTH,
            |_, p| {
                let mut lines = lines_of(&events_file(p));
                lines.remove(lines.len() / 2);
                write_lines(&events_file(p), &lines);
                vec![]
            },
        ),
        a(
            "re-sign everything with another key",
            Pkg1,
            Full,
            "key.untrusted",
            1,
            BOTH,
            |f, p| {
                forger(&[
                    os(Path::new("resign")),
                    os(p),
                    os(&f.forger.data().join("station.key")),
                ]);
                vec![]
            },
        ),
    ]
}

/// What issue 13 found: trust bought, files that hang or lead out, a lying screen, sums,
/// truncation, forks.
fn hostile() -> Vec<Attack> {
    use Source::*;
    use Trusting::*;
    vec![
        a(
            "a package checked without a trust file",
            Pkg1,
            Nothing,
            "trust.not-anchored",
            3,
            BOTH,
            none,
        ),
        a(
            "tokens from the forger's own TSA, station key pinned",
            Pkg1,
            Station,
            "timestamp.not-anchored",
            3,
            &[ATTESTED],
            |f, p| {
                forger(&[
                    os(Path::new("restamp")),
                    os(p),
                    os(&f.station_key()),
                    os(f.forger_tsa.dir.path()),
                ]);
                vec![]
            },
        ),
        a(
            "tokens from the forger's own TSA, TSA root pinned",
            Pkg1,
            Full,
            "timestamp.untrusted-root",
            1,
            BOTH,
            |f, p| {
                forger(&[
                    os(Path::new("restamp")),
                    os(p),
                    os(&f.station_key()),
                    os(f.forger_tsa.dir.path()),
                ]);
                vec![]
            },
        ),
        a(
            "an original replaced by a link to /dev/zero",
            Pkg1,
            Full,
            "file.not-regular",
            1,
            BOTH,
            |f, p| {
                let o = p.join(f.first("original"));
                std::fs::remove_file(&o).unwrap();
                std::os::unix::fs::symlink("/dev/zero", &o).unwrap();
                vec![]
            },
        ),
        a(
            "an original replaced by a FIFO",
            Pkg1,
            Full,
            "file.not-regular",
            1,
            BOTH,
            |f, p| {
                let o = p.join(f.first("original"));
                std::fs::remove_file(&o).unwrap();
                let st = std::process::Command::new("mkfifo")
                    .arg(&o)
                    .status()
                    .unwrap();
                assert!(st.success());
                vec![]
            },
        ),
        a(
            "an original replaced by a link to the same bytes outside",
            Pkg1,
            Full,
            "file.not-regular",
            1,
            BOTH,
            |f, p| {
                let o = p.join(f.first("original"));
                let outside = p.with_extension("outside.mp4");
                std::fs::copy(&o, &outside).unwrap();
                std::fs::remove_file(&o).unwrap();
                std::os::unix::fs::symlink(&outside, &o).unwrap();
                vec![]
            },
        ),
        a(
            "the originals folder replaced by a link",
            Pkg1,
            Full,
            "file.not-regular",
            1,
            BOTH,
            |_, p| {
                let outside = p.with_extension("originals");
                std::fs::rename(p.join("originals"), &outside).unwrap();
                std::os::unix::fs::symlink(&outside, p.join("originals")).unwrap();
                vec![]
            },
        ),
        a(
            "an original grown to a sparse terabyte",
            Pkg1,
            Full,
            "original.altered",
            1,
            BOTH,
            |f, p| {
                let o = p.join(f.first("original"));
                std::fs::OpenOptions::new()
                    .write(true)
                    .open(&o)
                    .unwrap()
                    .set_len(1 << 40)
                    .unwrap();
                vec![]
            },
        ),
        a(
            "a manifest padded past its cap",
            Pkg1,
            Full,
            "file.too-large",
            1,
            BOTH,
            |_, p| {
                let mut m = std::fs::read(p.join("MANIFEST.json")).unwrap();
                m.resize(m.len() + (65 << 20), b' ');
                overwrite(&p.join("MANIFEST.json"), &m);
                vec![]
            },
        ),
        a(
            "names that repaint the screen, sealed with the station key",
            Pkg1,
            Full,
            "manifest.bad-path",
            1,
            BOTH,
            |f, p| {
                forger(&[os(Path::new("evil-path")), os(p), os(&f.station_key())]);
                vec![]
            },
        ),
        a(
            "two values for one file in SHA256SUMS",
            Pkg1,
            Full,
            "sums.conflict",
            1,
            BOTH,
            |f, p| {
                let sums = p.join("SHA256SUMS");
                let mut t = std::fs::read_to_string(&sums).unwrap();
                t.push_str(&format!("{}  {}\n", "0".repeat(64), f.first("original")));
                overwrite(&sums, t.as_bytes());
                vec![]
            },
        ),
        a(
            "a repeated line in SM3SUMS",
            Pkg1,
            Full,
            "sums.mismatch",
            1,
            BOTH,
            |_, p| {
                let sums = p.join("SM3SUMS");
                let mut lines = lines_of(&sums);
                lines.push(lines[0].clone());
                write_lines(&sums, &lines);
                vec![]
            },
        ),
        a(
            "an earlier package shown to who holds a later one",
            Pkg1,
            Full,
            "expect.not-reached",
            1,
            BOTH,
            |f, _| {
                let n2 = serde_json::from_slice::<Value>(
                    &std::fs::read(f.pkg2.join("MANIFEST.json")).unwrap(),
                )
                .unwrap()["custody"]["checkpoint"]
                    .clone();
                vec![
                    "--expect-checkpoint".into(),
                    f.pkg2
                        .join(format!("custody/checkpoints/{n2}.note"))
                        .display()
                        .to_string(),
                ]
            },
        ),
        a(
            "a size the package has no proof for",
            Pkg2,
            Full,
            "checkpoint.unprovable",
            1,
            BOTH,
            |f, _| {
                let (size, root) = unproven_size(f);
                vec!["--expect".into(), format!("{size}:{root}")]
            },
        ),
        a(
            "a rotation to the pinned key with no hand-over",
            ForgerLog,
            Station,
            "key.untrusted",
            1,
            BOTH,
            |f, p| {
                forger(&[
                    os(Path::new("rotate-to")),
                    os(p),
                    std::ffi::OsStr::new(&f.key),
                ]);
                vec![]
            },
        ),
        a(
            "a rotation to the pinned key sealed by the old key alone",
            ForgerLog,
            Station,
            "key.handover-missing",
            1,
            BOTH,
            |f, p| {
                forger(&[
                    os(Path::new("rotate-to")),
                    os(p),
                    std::ffi::OsStr::new(&f.key),
                    os(Path::new("--seal")),
                    os(&f.forger.data().join("station.key")),
                ]);
                vec![]
            },
        ),
        a(
            "an event claiming seq 2^53 - 1",
            Log,
            Full,
            "event.out-of-order",
            1,
            BOTH,
            |_, p| {
                forger(&[
                    os(Path::new("seq")),
                    os(p),
                    os(Path::new("9007199254740991")),
                ]);
                vec![]
            },
        ),
        a(
            "the events file a link to /dev/zero",
            Log,
            Full,
            "file.not-regular",
            1,
            BOTH,
            |_, p| {
                std::fs::remove_file(p.join("events.jsonl")).unwrap();
                std::os::unix::fs::symlink("/dev/zero", p.join("events.jsonl")).unwrap();
                vec![]
            },
        ),
        a(
            "a checkpoint replaced by a FIFO",
            Log,
            Full,
            "file.not-regular",
            1,
            BOTH,
            |f, p| {
                let note = f.latest_note(p);
                std::fs::remove_file(&note).unwrap();
                assert!(
                    std::process::Command::new("mkfifo")
                        .arg(&note)
                        .status()
                        .unwrap()
                        .success()
                );
                vec![]
            },
        ),
        a(
            "a log cut back to an earlier checkpoint",
            Log,
            Full,
            "expect.not-reached",
            1,
            BOTH,
            |f, p| {
                let latest = f.latest_note(&f.st.log_dir());
                cut_back(p);
                vec!["--expect-checkpoint".into(), latest.display().to_string()]
            },
        ),
        a(
            "a second history signed with the station key",
            Log,
            Full,
            "log.forked",
            1,
            BOTH,
            |f, p| {
                let latest = f.latest_note(&f.st.log_dir());
                forger(&[os(Path::new("fork")), os(p), os(&f.station_key())]);
                vec!["--expect-checkpoint".into(), latest.display().to_string()]
            },
        ),
    ]
}

/// A tree size between the two packages' checkpoints that is no checkpoint of the station, and
/// the station's root at it.
fn unproven_size(f: &Fixture) -> (u64, String) {
    let cps: Vec<u64> = std::fs::read_dir(f.st.log_dir().join("checkpoints"))
        .unwrap()
        .flatten()
        .filter_map(|e| evidock_verify::layout::size_of_file(&e.file_name().to_string_lossy()))
        .collect();
    let size = (1..*cps.iter().max().unwrap())
        .rev()
        .find(|s| !cps.contains(s))
        .unwrap();
    let v = f.st.json(&["log", "prove", "--from", &size.to_string()]);
    (size, v["from_root"].as_str().unwrap().to_string())
}

/// Keep the events up to an earlier checkpoint, and only the checkpoints and tokens up to it.
fn cut_back(log: &Path) {
    let sizes: Vec<u64> = std::fs::read_dir(log.join("checkpoints"))
        .unwrap()
        .flatten()
        .filter_map(|e| evidock_verify::layout::size_of_file(&e.file_name().to_string_lossy()))
        .collect();
    let mut sorted = sizes.clone();
    sorted.sort();
    let keep = sorted[sorted.len() / 2];
    let lines = lines_of(&log.join("events.jsonl"));
    write_lines(&log.join("events.jsonl"), &lines[..keep as usize]);
    for dir in ["checkpoints", "timestamps"] {
        for e in std::fs::read_dir(log.join(dir)).unwrap().flatten() {
            if evidock_verify::layout::size_of_file(&e.file_name().to_string_lossy())
                .is_some_and(|s| s > keep)
            {
                std::fs::remove_file(e.path()).unwrap();
            }
        }
    }
}

fn run_attack(f: &Fixture, i: usize, at: &Attack) -> (String, Checked) {
    let (src, name) = match at.source {
        Source::Pkg1 => (f.pkg1.clone(), "[PKG]"),
        Source::Pkg2 => (f.pkg2.clone(), "[PKG]"),
        Source::Log => (f.st.log_dir(), "[LOG]"),
        Source::ForgerLog => (f.forger.log_dir(), "[LOG]"),
    };
    let dir = f.work.path().join(format!("attack-{i}"));
    copy_tree(&src, &dir);
    let mut args = (at.tamper)(f, &dir);
    match at.trust {
        Trusting::Full => args.extend(["--trust".into(), f.trust_full.display().to_string()]),
        Trusting::Station => args.extend(["--trust".into(), f.trust_station.display().to_string()]),
        Trusting::Nothing => {}
    }
    let refs: Vec<&str> = args.iter().map(String::as_str).collect();
    let got = check(&dir, &refs);
    let mut all = got.codes("error");
    all.extend(got.codes("warning"));
    assert!(
        all.contains(at.want),
        "{}: {all:?} lacks {}\n{}",
        at.name,
        at.want,
        got.human
    );
    assert_eq!(
        got.code, at.exit,
        "{}: exit {}\n{}",
        at.name, got.code, got.human
    );
    for claim in at.not {
        assert!(
            !got.claims(claim),
            "{}: claims {claim:?}\n{}",
            at.name,
            got.human
        );
    }
    // Whatever the input held, the screen shows no raw control, bidi or invisible character.
    let raw: Vec<char> = got
        .human
        .chars()
        .filter(|c| *c != '\n' && evidock_verify::escape::needs_escape(*c))
        .collect();
    assert!(
        raw.is_empty(),
        "{}: raw {raw:?} on screen\n{}",
        at.name,
        got.human
    );
    let dirs = [
        (dir.as_path(), name),
        (f.work.path(), "[WORK]"),
        (f.st.dir.path(), "[STATION]"),
    ];
    let snap = format!(
        "# {}\nexit {}\n\n## human\n{}\n## json\n{}\n",
        at.name,
        got.code,
        attack::sorted_runs(&redact(&got.human, &dirs)),
        serde_json::to_string_pretty(&attack::redact_json(&got.json, &dirs)).unwrap()
    );
    (snap, got)
}

fn slug(name: &str) -> String {
    name.chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() {
                c.to_ascii_lowercase()
            } else {
                '-'
            }
        })
        .collect::<String>()
        .split('-')
        .filter(|s| !s.is_empty())
        .collect::<Vec<_>>()
        .join("-")
}

#[test]
fn every_attack_is_refused_with_its_own_finding_bounded_in_time_and_memory() {
    if !evidock_tests::tsa::openssl_available() {
        panic!("openssl is needed (scripts/deps.sh test installs it)");
    }
    let f = fixture();
    // The genuine package, anchored: proven, attested, exit 0.
    let genuine = check(&f.pkg1, &["--trust", f.trust_full.to_str().unwrap()]);
    assert_eq!(genuine.code, 0, "{}", genuine.human);
    assert!(
        genuine.claims(PROVEN) && genuine.claims(ATTESTED),
        "{}",
        genuine.human
    );
    let snaps = Path::new(env!("CARGO_MANIFEST_DIR")).join("snapshots/attacks");
    let update = std::env::var("UPDATE_SNAPSHOTS").is_ok();
    let mut changed = Vec::new();
    for (i, at) in tamper_suite().iter().chain(hostile().iter()).enumerate() {
        let (snap, _) = run_attack(f, i, at);
        let file = snaps.join(format!("{}.txt", slug(at.name)));
        if update {
            std::fs::create_dir_all(&snaps).unwrap();
            std::fs::write(&file, &snap).unwrap();
        } else if std::fs::read_to_string(&file).unwrap_or_default() != snap {
            // The new report beside the target directory, to diff against the snapshot.
            let new = bins::target_dir()
                .join("snapshots-new")
                .join(file.file_name().unwrap());
            std::fs::create_dir_all(new.parent().unwrap()).unwrap();
            std::fs::write(&new, &snap).unwrap();
            changed.push(format!("{} (now: {})", file.display(), new.display()));
        }
    }
    assert!(
        changed.is_empty(),
        "what a court reads changed (UPDATE_SNAPSHOTS=1 to accept, then review the diff):\n{}",
        changed.join("\n")
    );
}

#[test]
fn a_package_is_held_to_what_the_receiver_already_holds() {
    let f = fixture();
    let trust = f.trust_full.to_str().unwrap();
    // The first package's collection record prints its checkpoint as SIZE:ROOT; the later
    // package proves itself an extension of it with the proofs it carries.
    let first = check(&f.pkg1, &["--trust", trust]);
    let held = first.json["checkpoint"].as_str().unwrap().to_string();
    let record = std::fs::read_to_string(f.pkg1.join("collection-record.html")).unwrap();
    assert!(
        record.contains(&held),
        "the collection record prints {held}"
    );
    let later = check(&f.pkg2, &["--trust", trust, "--expect", &held]);
    assert_eq!(later.code, 0, "{}", later.human);
    assert!(
        later.codes("info").contains("expect.held"),
        "{}",
        later.human
    );
    let n1 = held.split(':').next().unwrap();
    let note = f.pkg1.join(format!("custody/checkpoints/{n1}.note"));
    let later = check(
        &f.pkg2,
        &[
            "--trust",
            trust,
            "--expect-checkpoint",
            note.to_str().unwrap(),
        ],
    );
    assert_eq!(later.code, 0, "{}", later.human);
    // A size the package has no proof for: the station proves it on request.
    let (size, root) = unproven_size(f);
    let proof = f.work.path().join("extra.proof");
    let ran = f.st.run(&[
        "log",
        "prove",
        "--from",
        &size.to_string(),
        "--to",
        later.json["checkpoint"]
            .as_str()
            .unwrap()
            .split(':')
            .next()
            .unwrap(),
        "--out",
        proof.to_str().unwrap(),
    ]);
    assert_eq!(ran.code, 0, "{}", ran.stderr);
    let expect = format!("{size}:{root}");
    let with = check(
        &f.pkg2,
        &[
            "--trust",
            trust,
            "--expect",
            &expect,
            "--proof",
            proof.to_str().unwrap(),
        ],
    );
    assert_eq!(with.code, 0, "{}", with.human);
    assert!(with.codes("info").contains("expect.held"), "{}", with.human);
    // The log itself, held to the latest package's checkpoint.
    let log = check(
        &f.st.log_dir(),
        &[
            "--trust",
            trust,
            "--expect",
            later.json["checkpoint"].as_str().unwrap(),
        ],
    );
    assert_eq!(log.code, 0, "{}", log.human);
    assert!(log.codes("info").contains("expect.held"), "{}", log.human);
    let _ = &f.tsa;
}

/// Mutate a valid package at random — flip, truncate, extend, rename, replace with a link or a
/// FIFO, duplicate a sums line — and require exit 0 only when nothing changed.
#[test]
fn any_change_to_a_package_fails_it() {
    use proptest::prelude::*;
    let f = fixture();
    // The package without the verifier binary (tens of MiB in a debug build), resealed with the
    // station key: small enough to copy and check 256 times.
    let base = f.work.path().join("prop-base");
    copy_tree(&f.pkg1, &base);
    forger(&[
        os(Path::new("drop")),
        os(&base),
        os(&f.station_key()),
        os(Path::new("tools/evidock-verify")),
    ]);
    let trust = f.trust_full.to_str().unwrap().to_string();
    let ok = check(&base, &["--trust", &trust]);
    assert_eq!(ok.code, 0, "{}", ok.human);
    let files: Vec<String> = walk(&base);
    let n = std::sync::atomic::AtomicUsize::new(0);
    let config = ProptestConfig {
        cases: 256,
        max_shrink_iters: 16,
        failure_persistence: None,
        ..ProptestConfig::default()
    };
    proptest!(config, |(which in 0usize..7, file in 0usize..files.len(), at in 0.0f64..1.0, len in 1usize..64)| {
        let i = n.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        let dir = f.work.path().join(format!("prop-{i}"));
        copy_tree(&base, &dir);
        let rel = &files[file];
        let p = dir.join(rel);
        let size = std::fs::metadata(&p).unwrap().len();
        match which {
            0 if size > 0 => flip_byte(&p, at),
            1 if size > 0 => {
                let mut b = std::fs::read(&p).unwrap();
                b.truncate(((size as f64) * at) as usize);
                overwrite(&p, &b);
            }
            2 => {
                let mut b = std::fs::read(&p).unwrap();
                b.extend(std::iter::repeat_n(b'\n', len));
                overwrite(&p, &b);
            }
            3 => std::fs::rename(&p, dir.join(format!("{rel}.renamed"))).unwrap(),
            4 => {
                let outside = dir.with_extension("same-bytes");
                std::fs::copy(&p, &outside).unwrap();
                std::fs::remove_file(&p).unwrap();
                std::os::unix::fs::symlink(&outside, &p).unwrap();
            }
            5 => {
                std::fs::remove_file(&p).unwrap();
                assert!(std::process::Command::new("mkfifo").arg(&p).status().unwrap().success());
            }
            _ => {
                let sums = dir.join(if at < 0.5 { "SHA256SUMS" } else { "SM3SUMS" });
                let mut lines = lines_of(&sums);
                let k = (((lines.len() as f64) * at) as usize).min(lines.len() - 1);
                let mut line = lines[k].clone();
                if len % 2 == 1 {
                    // The same path with another value.
                    let c = if line.starts_with('0') { "1" } else { "0" };
                    line.replace_range(0..1, c);
                }
                lines.push(line);
                write_lines(&sums, &lines);
            }
        }
        let mut c = bins::cmd("evidock-verify");
        c.arg(&dir).args(["--trust", &trust, "--json"]);
        let ran = bins::run_for(&mut c, attack::TIME_LIMIT);
        prop_assert_ne!(ran.code, 0, "mutation {} of {} passed: {}", which, rel, ran.stdout);
        let _ = std::fs::remove_dir_all(&dir);
    });
}

/// Every regular file under `dir`, relative.
fn walk(dir: &Path) -> Vec<String> {
    let mut out = Vec::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        for e in std::fs::read_dir(&d).unwrap().flatten() {
            let p = e.path();
            if e.file_type().unwrap().is_dir() {
                stack.push(p);
            } else {
                out.push(p.strip_prefix(dir).unwrap().display().to_string());
            }
        }
    }
    out.sort();
    out
}
