//! Every attack, as a row: what it starts from, how it tampers, what trust the receiver has,
//! and what the verifier must answer.

use super::fixture::{Fixture, forger};
use evidock_tests::attack::{flip_byte, overwrite};
use serde_json::Value;
use std::path::{Path, PathBuf};

/// What an attack is checked against.
#[derive(Clone, Copy)]
pub enum Source {
    Pkg1,
    Pkg2,
    Log,
    ForgerLog,
}

#[derive(Clone, Copy)]
pub enum Trusting {
    Full,
    Station,
    Nothing,
}

pub type Tamper = Box<dyn Fn(&Fixture, &Path) -> Vec<String>>;

pub struct Attack {
    pub name: &'static str,
    pub source: Source,
    pub tamper: Tamper,
    pub trust: Trusting,
    /// The finding code the attack must end with (any level).
    pub want: &'static str,
    pub exit: i32,
    /// Verdict lines that must not appear.
    pub not: &'static [&'static str],
}

pub const PROVEN: &str = "Integrity: PROVEN";
pub const ATTESTED: &str = "Time:      ATTESTED";
pub const BOTH: &[&str] = &[PROVEN, ATTESTED];

pub fn a(
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

pub fn events_file(p: &Path) -> PathBuf {
    p.join("custody/events.jsonl")
}

pub fn lines_of(p: &Path) -> Vec<String> {
    std::fs::read_to_string(p)
        .unwrap()
        .lines()
        .map(String::from)
        .collect()
}

pub fn write_lines(p: &Path, lines: &[String]) {
    overwrite(p, (lines.join("\n") + "\n").as_bytes());
}

/// Holding the station key, every token replaced by one from the forger's own TSA.
fn restamp(f: &Fixture, p: &Path) -> Vec<String> {
    forger(&[
        os(Path::new("restamp")),
        os(p),
        os(&f.station_key()),
        os(f.forger_tsa.dir.path()),
    ]);
    vec![]
}

pub fn none(_: &Fixture, _: &Path) -> Vec<String> {
    Vec::new()
}

pub fn os(s: &Path) -> &std::ffi::OsStr {
    s.as_os_str()
}

/// The 13 of the tamper suite: what damage or a forger without the station key can do.
pub fn tamper_suite() -> Vec<Attack> {
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
pub fn hostile() -> Vec<Attack> {
    use Source::*;
    use Trusting::*;
    vec![
        a(
            "a second signature line on the seal",
            Pkg1,
            Full,
            "manifest.bad-signature",
            1,
            BOTH,
            |f, p| {
                forger(&[
                    os(Path::new("cosign")),
                    os(p),
                    os(&f.forger.data().join("station.key")),
                ]);
                vec![]
            },
        ),
        a(
            "a name that is not UTF-8 beside a listed one it decodes to",
            Pkg1,
            Full,
            "file.unlisted",
            1,
            BOTH,
            |f, p| {
                forger(&[os(Path::new("fffd")), os(p), os(&f.station_key())]);
                vec![]
            },
        ),
        a(
            "an empty folder added",
            Pkg1,
            Full,
            "file.unlisted",
            1,
            BOTH,
            |_, p| {
                std::fs::create_dir(p.join("撤销 REVOKED")).unwrap();
                vec![]
            },
        ),
        a(
            "one event line repeated twenty thousand times, resealed",
            Pkg1,
            Full,
            "custody.out-of-order",
            1,
            BOTH,
            |f, p| {
                let mut lines = lines_of(&events_file(p));
                let first = lines[0].clone();
                lines.extend(std::iter::repeat_n(first, 20_000));
                write_lines(&events_file(p), &lines);
                forger(&[os(Path::new("reseal")), os(p), os(&f.station_key())]);
                vec![]
            },
        ),
        a(
            "a custody log with originals put beside it",
            Log,
            Full,
            "log.foreign-file",
            1,
            BOTH,
            |f, p| {
                std::fs::create_dir(p.join("originals")).unwrap();
                std::fs::copy(
                    f.pkg1.join(f.first("original")),
                    p.join("originals/ZFY0500_0001.MP4"),
                )
                .unwrap();
                std::fs::copy(f.pkg1.join("VERIFY.md"), p.join("VERIFY.md")).unwrap();
                vec![]
            },
        ),
        a(
            "two million empty lines in the events",
            Log,
            Full,
            "event.malformed",
            1,
            BOTH,
            |_, p| {
                let mut b = std::fs::read(p.join("events.jsonl")).unwrap();
                b.extend(std::iter::repeat_n(b'\n', 2_000_000));
                overwrite(&p.join("events.jsonl"), &b);
                vec![]
            },
        ),
        a(
            "an event of a later version, sealed by the station",
            Log,
            Full,
            "event.unknown-role",
            3,
            &[],
            |f, p| {
                forger(&[os(Path::new("future")), os(p), os(&f.station_key())]);
                vec![]
            },
        ),
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
            restamp,
        ),
        a(
            "tokens from the forger's own TSA, TSA root pinned",
            Pkg1,
            Full,
            "timestamp.untrusted-root",
            1,
            BOTH,
            restamp,
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
pub fn unproven_size(f: &Fixture) -> (u64, String) {
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
pub fn cut_back(log: &Path) {
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
