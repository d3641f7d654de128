//! `evidock-verify` under attack, as a defence expert or an adversary would try it: on a real
//! package and a real custody log (footage from the ffmpeg CLI, a real `openssl ts` TSA), every
//! forgery `package-forger` can build, every hostile file, every trick on the screen. Each run
//! is bounded (10 s, 256 MiB of address space): a hang or a blow-up fails the test. Each
//! attack must end with its own finding code, a non-zero exit, and no verdict line that claims
//! what the attack wanted; every report is kept as a snapshot (tests/snapshots/attacks/), so a
//! change to what a court reads is reviewed.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod fixture;
mod table;

use evidock_tests::attack::{self, check, copy_tree, flip_byte, overwrite, redact};
use evidock_tests::bins;
use fixture::{Fixture, fixture, forger};
use std::path::Path;
use table::*;

/// Build one attack, check it, and say what is wrong with the verdict; else its snapshot.
fn run_attack(f: &Fixture, i: usize, at: &Attack) -> Result<String, String> {
    let (src, name) = match at.source {
        Source::Pkg1 => (f.pkg1.clone(), "[PKG]"),
        Source::Pkg2 => (f.pkg2.clone(), "[PKG]"),
        Source::Log => (f.st.log_dir(), "[LOG]"),
        Source::ForgerLog => (f.forger.log_dir(), "[LOG]"),
    };
    let dir = f.work.path().join(format!("attack-{i}"));
    attack::copy_for_attack(&src, &dir);
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
    let mut wrong = Vec::new();
    if !all.contains(at.want) {
        wrong.push(format!("{all:?} lacks {}", at.want));
    }
    if got.code != at.exit {
        wrong.push(format!("exit {}, not {}", got.code, at.exit));
    }
    for claim in at.not.iter().filter(|c| got.claims(c)) {
        wrong.push(format!("claims {claim:?}"));
    }
    // Whatever the input held, the screen shows no raw control, bidi or invisible character.
    let raw: Vec<char> = got
        .human
        .chars()
        .filter(|c| *c != '\n' && evidock_verify::escape::needs_escape(*c))
        .collect();
    if !raw.is_empty() {
        wrong.push(format!("raw {raw:?} on screen"));
    }
    if got.spoofable() {
        wrong.push("a verdict word after a run of spaces".into());
    }
    if !wrong.is_empty() {
        return Err(format!(
            "{}: {}\n{}{}",
            at.name,
            wrong.join("; "),
            got.human,
            got.stderr
        ));
    }
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
    // Passed: its copy (and whatever it put beside it) is not needed any more.
    for e in std::fs::read_dir(f.work.path()).unwrap().flatten() {
        let name = e.file_name().to_string_lossy().into_owned();
        if name == format!("attack-{i}") || name.starts_with(&format!("attack-{i}.")) {
            let p = e.path();
            let _ = std::fs::remove_dir_all(&p).or_else(|_| std::fs::remove_file(&p));
        }
    }
    Ok(snap)
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
    let mut broken = Vec::new();
    for (i, at) in tamper_suite().iter().chain(hostile().iter()).enumerate() {
        let snap = match run_attack(f, i, at) {
            Ok(s) => s,
            Err(why) => {
                broken.push(why);
                continue;
            }
        };
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
        broken.is_empty(),
        "{} attack(s) not refused as they must be:\n\n{}",
        broken.len(),
        broken.join("\n\n")
    );
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
        let _ = std::fs::remove_file(dir.with_extension("same-bytes"));
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

/// A station publishes its log as one segment per upload run: years of them. The check opens
/// them one after another, so it needs only a few files open (the runs are limited to
/// [`attack::OPEN_FILES`]).
#[test]
fn a_published_log_of_many_segments_verifies_with_few_open_files() {
    let f = fixture();
    let log = f.st.log_dir();
    let published = f.work.path().join("published");
    for d in ["log/segments", "log/checkpoints", "log/timestamps"] {
        std::fs::create_dir_all(published.join(d)).unwrap();
    }
    std::fs::copy(log.join("station.pub"), published.join("log/station.pub")).unwrap();
    let events = std::fs::read_to_string(log.join("events.jsonl")).unwrap();
    let lines: Vec<&str> = events.lines().collect();
    assert!(
        lines.len() as u64 > attack::OPEN_FILES,
        "one segment per event: more than may be open"
    );
    for (i, line) in lines.iter().enumerate() {
        std::fs::write(
            published.join(format!("log/segments/{i:020}-{:020}.jsonl", i + 1)),
            format!("{line}\n"),
        )
        .unwrap();
    }
    for d in ["checkpoints", "timestamps"] {
        for e in std::fs::read_dir(log.join(d)).unwrap().flatten() {
            std::fs::copy(e.path(), published.join("log").join(d).join(e.file_name())).unwrap();
        }
    }
    let got = check(&published, &["--trust", f.trust_full.to_str().unwrap()]);
    assert_eq!(got.code, 0, "{}{}", got.human, got.stderr);
    assert_eq!(got.json["kind"], "published-custody-log");
}
