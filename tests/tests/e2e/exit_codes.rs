//! Every command given bad input, its exit status checked against the README's table: 2 for
//! what the user must change (nothing done), 3 only for what a retry may mend; broken pipes end
//! quietly; a directory without a station is never made into one; an `accessed` event only for
//! an access that happened.
// Test helpers panic on purpose: a failed expectation is a failed test.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use evidock_tests::bins::{self, Ran};
use evidock_tests::station::{self, TestStation, of_kind};
use std::path::Path;

const USAGE: i32 = 2;
const FAILED: i32 = 3;

/// The README's exit-status table: code → meaning, as the operator reads it.
fn readme_table() -> Vec<(i32, String)> {
    let readme =
        std::fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join("../README.md"))
            .unwrap();
    let start = readme
        .find("| exit |")
        .expect("README.md has an exit-status table (| exit | …)");
    readme[start..]
        .lines()
        .skip(2)
        .take_while(|l| l.starts_with('|'))
        .map(|l| {
            let cells: Vec<&str> = l.split('|').map(str::trim).collect();
            (cells[1].parse().unwrap(), cells[2].to_string())
        })
        .collect()
}

fn expect(ran: &Ran, code: i32, what: &str) {
    assert_eq!(
        ran.code, code,
        "{what}: exit {} (want {code})\nstdout: {}\nstderr: {}",
        ran.code, ran.stdout, ran.stderr
    );
    assert!(
        !ran.stderr.contains("panicked"),
        "{what}: panicked\n{}",
        ran.stderr
    );
    if code != 0 {
        assert!(
            ran.stderr.contains("error"),
            "{what}: exit {code} says what went wrong\n{}",
            ran.stderr
        );
    }
}

/// A station with one camera's recordings acquired and a case: the evidence ID.
fn station_with_evidence(st: &TestStation) -> String {
    let fw = station::firmware("ZFY0301", "350301");
    let files = station::recordings(&fw, 1, 4096, 31);
    let card = station::camera(st.dir.path(), fw, files);
    let out = st.json(&["ingest", card.to_str().unwrap(), "--no-transcode"]);
    assert_eq!(out["outcome"], "released", "{out}");
    st.json(&["evidence", "list"])[0]["id"]
        .as_str()
        .unwrap()
        .to_string()
}

#[test]
fn the_readme_table_says_what_the_codes_mean() {
    let table = readme_table();
    let codes: Vec<i32> = table.iter().map(|(c, _)| *c).collect();
    assert_eq!(codes, [0, 1, 2, 3, 130, 143], "{table:?}");
    assert!(table[2].1.contains("must change"), "{table:?}");
    assert!(table[3].1.contains("retry"), "{table:?}");
}

#[test]
fn a_directory_without_a_station_is_refused_and_left_as_it_was() {
    let st = TestStation::new();
    for args in [
        &["evidence", "list"][..],
        &["status"],
        &["log", "show"],
        &["case", "list"],
        &["sessions"],
        &["upload"],
    ] {
        let ran = bins::run(&mut st.cmd_bare(args));
        expect(&ran, USAGE, &format!("{args:?} on no station"));
        assert!(
            ran.stderr.contains(st.data().to_str().unwrap()) && ran.stderr.contains("station init"),
            "{args:?}: names the directory and how to make a station\n{}",
            ran.stderr
        );
        assert!(!st.data().exists(), "{args:?} made {}", st.data().display());
    }
    // A data directory that is a file.
    std::fs::write(st.data(), b"x").unwrap();
    expect(
        &bins::run(&mut st.cmd_bare(&["evidence", "list"])),
        USAGE,
        "a data dir that is a file",
    );
    std::fs::remove_file(st.data()).unwrap();

    // Only `station init` makes one, once.
    let init = st.json(&["station", "init"]);
    assert!(init["station"].is_string(), "{init}");
    assert!(st.data().join("station.key").exists());
    let mode = std::os::unix::fs::PermissionsExt::mode(
        &std::fs::metadata(st.data()).unwrap().permissions(),
    );
    assert_eq!(
        mode & 0o007,
        0,
        "the data directory is not for every local user: {mode:o}"
    );
    expect(
        &st.run(&["station", "init"]),
        USAGE,
        "a second station init",
    );
    // A directory that holds a station's data but lost its key is no place for a new key.
    let lost = TestStation::new();
    std::fs::create_dir_all(lost.data()).unwrap();
    std::fs::write(lost.data().join("journal.db"), b"").unwrap();
    let ran = bins::run(&mut lost.cmd_bare(&["station", "init"]));
    expect(&ran, USAGE, "station init beside a journal without its key");
    assert!(ran.stderr.contains("restore the key"), "{}", ran.stderr);
    assert!(!lost.data().join("station.key").exists());
    // The dock's first start with --init, on another directory.
    let other = TestStation::new();
    let ran = bins::run(&mut other.cmd_bare(&["dock", "--mount-root", "/nonexistent-evidock"]));
    expect(&ran, USAGE, "dock without --init on no station");
    assert!(!other.data().exists());
}

#[test]
fn bad_input_exits_2_and_only_a_retry_may_mend_exits_3() {
    let st = TestStation::with_config(
        "station_id = \"dock-31\"\n[[camera]]\nname = \"sim\"\ndriver = \"zfy-sim\"\nallow = [\"*\"]\n",
    );
    let ev = station_with_evidence(&st);
    let dir = st.dir.path();
    let existing = dir.join("exists");
    std::fs::write(&existing, b"x").unwrap();
    let out = |n: &str| dir.join(n).to_str().unwrap().to_string();
    st.import_case_now("晋应急罚〔2026〕1号", "检查", "350301");
    let cases: &[(&[&str], i32, &str)] = &[
        (
            &["case", "show", "晋应急罚〔2026〕999号"],
            USAGE,
            "an unknown case",
        ),
        (
            &["evidence", "show", "ev-0000000000000000"],
            USAGE,
            "an unknown evidence ID",
        ),
        (
            &["evidence", "show", "not an id"],
            USAGE,
            "a malformed evidence ID",
        ),
        (
            &[
                "evidence",
                "get",
                "ev-0000000000000000",
                "--out",
                &out("a"),
                "--by",
                "r1",
            ],
            USAGE,
            "get of an unknown evidence ID",
        ),
        (
            &[
                "evidence",
                "get",
                &ev,
                "--out",
                existing.to_str().unwrap(),
                "--by",
                "r1",
            ],
            USAGE,
            "get to an existing --out",
        ),
        (
            &[
                "evidence",
                "get",
                &ev,
                "--out",
                &out("no/such/folder/x"),
                "--by",
                "r1",
            ],
            USAGE,
            "get into a missing folder",
        ),
        (
            &["evidence", "get", &ev, "--out", &out("b"), "--by", ""],
            USAGE,
            "an empty --by",
        ),
        (
            &[
                "evidence",
                "get",
                &ev,
                "--out",
                &out("b"),
                "--by",
                "a\u{1b}[2Kb",
            ],
            USAGE,
            "a --by with control characters",
        ),
        (
            &[
                "evidence",
                "get",
                &ev,
                "--out",
                &out("b"),
                "--by",
                "a\u{202e}b",
            ],
            USAGE,
            "a --by with a bidi override",
        ),
        (
            &[
                "link",
                &ev,
                "晋应急罚〔2026〕1号",
                "--by",
                " ",
                "--reason",
                "x",
            ],
            USAGE,
            "link with a blank --by",
        ),
        (
            &[
                "export",
                "晋应急罚〔2026〕1号",
                "--out",
                existing.to_str().unwrap(),
                "--by",
                "r1",
            ],
            USAGE,
            "export to an existing --out",
        ),
        (
            &[
                "export",
                "晋应急罚〔2026〕999号",
                "--out",
                &out("pkg"),
                "--by",
                "r1",
            ],
            USAGE,
            "export of an unknown case",
        ),
        (
            &["case", "import", "cases.csv"],
            USAGE,
            "case import without --by",
        ),
        (
            &["camera", "assign", "ZFY0301", "350302"],
            USAGE,
            "camera assign without --by",
        ),
        (&["verify", "--all"], USAGE, "verify without --by"),
        (&["ingest", "/proc"], USAGE, "ingest of /proc"),
        (
            &["ingest", "/sys/kernel", "--force", "--serial", "ZFY9"],
            USAGE,
            "ingest of /sys even with --force",
        ),
        (&["no-such-command"], USAGE, "an unknown command"),
        (
            &[
                "unlink",
                &ev,
                "晋应急罚〔2026〕999号",
                "--by",
                "r1",
                "--reason",
                "x",
            ],
            USAGE,
            "unlink from an unknown case",
        ),
        (
            &[
                "retention",
                "dispose",
                "ev-00000000000000000000",
                "--by",
                "r1",
                "--reason",
                "x",
            ],
            USAGE,
            "dispose of an unknown item",
        ),
        (
            &[
                "evidence",
                "set-category",
                &ev,
                "没有的类别",
                "--by",
                "r1",
                "--reason",
                "x",
            ],
            USAGE,
            "an unknown category",
        ),
        (
            &["transcode", "ev-00000000000000000000"],
            USAGE,
            "transcode an unknown item",
        ),
        (
            &["log", "prove", "--from", "99999"],
            USAGE,
            "a proof from a size the log never had",
        ),
        (
            &["log", "timestamp"],
            USAGE,
            "time-stamping without a TSA configured",
        ),
        (
            &[
                "camera",
                "assign",
                "ZFY0301",
                "350302",
                "--by",
                "r1",
                "--from",
                "yesterday",
            ],
            USAGE,
            "an assignment from a time that is no time",
        ),
        (
            &["verify", "--by", "r1", "ev-00000000000000000000"],
            USAGE,
            "verify an unknown item",
        ),
        (
            &[
                "evidence",
                "get",
                &ev,
                "--out",
                &out("d"),
                "--derivative",
                "--by",
                "r1",
            ],
            USAGE,
            "the playback copy of an item that has none",
        ),
        (
            &["station", "rotate-key", "--by", "\u{200b}", "--reason", "x"],
            USAGE,
            "a key rotation by an invisible name",
        ),
    ];
    for (args, code, what) in cases {
        expect(&st.run(args), *code, what);
    }
    // No access happened, so none is recorded.
    assert!(
        of_kind(&st.events(), "accessed").is_empty(),
        "an accessed event for a failed get"
    );
    // And one that works is recorded, once.
    let ok = st.run(&["evidence", "get", &ev, "--out", &out("c"), "--by", "r1"]);
    expect(&ok, 0, "a get that works");
    assert_eq!(of_kind(&st.events(), "accessed").len(), 1);

    // A station ID that is not the key's: the configuration is wrong, not the moment.
    let wrong = dir.join("wrong.toml");
    std::fs::write(&wrong, "station_id = \"dock-99\"\n").unwrap();
    let ran = bins::run(
        st.cmd_bare(&["evidence", "list"])
            .arg("--config")
            .arg(&wrong),
    );
    expect(&ran, USAGE, "a station-ID mismatch");
}

#[test]
fn a_configuration_that_cannot_work_is_caught_by_config_check() {
    let dir = tempfile::tempdir().unwrap();
    let not_pem = dir.path().join("root.pem");
    std::fs::write(&not_pem, b"this is not a certificate\n").unwrap();
    let tsa = dir.path().join("tsa.toml");
    std::fs::write(
        &tsa,
        format!(
            "[tsa]\nurl = \"http://127.0.0.1:9/tsa\"\nroots = [\"{}\"]\n",
            not_pem.display()
        ),
    )
    .unwrap();
    let no_creds = dir.path().join("s3.toml");
    std::fs::write(
        &no_creds,
        "[store]\nurl = \"s3://evidence/x\"\nendpoint = \"http://127.0.0.1:9\"\nregion = \"us-east-1\"\nallow_http = true\n",
    )
    .unwrap();
    for (cfg, what) in [
        (&tsa, "a TSA root that is not PEM"),
        (&no_creds, "a store without credentials"),
    ] {
        let st = TestStation::new();
        let mut c = st.cmd_bare(&["config", "check", cfg.to_str().unwrap()]);
        c.env_remove("AWS_ACCESS_KEY_ID")
            .env_remove("AWS_SECRET_ACCESS_KEY");
        expect(&bins::run(&mut c), USAGE, &format!("config check: {what}"));
    }
}

#[test]
fn a_store_that_does_not_answer_is_not_called_a_credentials_problem() {
    let creds = tempfile::NamedTempFile::new().unwrap();
    std::fs::write(
        creds.path(),
        "access_key_id = \"x\"\nsecret_access_key = \"y\"\n",
    )
    .unwrap();
    use std::os::unix::fs::PermissionsExt as _;
    std::fs::set_permissions(creds.path(), std::fs::Permissions::from_mode(0o600)).unwrap();
    let st = TestStation::with_config(&format!(
        "station_id = \"dock-32\"\n[store]\nurl = \"s3://evidence/x\"\nendpoint = \"http://127.0.0.1:9\"\nregion = \"us-east-1\"\nallow_http = true\ncredentials_file = \"{}\"\n[[camera]]\nname = \"sim\"\ndriver = \"zfy-sim\"\nallow = [\"*\"]\n",
        creds.path().display()
    ));
    let ev = station_with_evidence(&st);
    std::fs::remove_dir_all(st.data().join("spool")).unwrap();
    let out = st.dir.path().join("got");
    let ran = st.run(&[
        "evidence",
        "get",
        &ev,
        "--out",
        out.to_str().unwrap(),
        "--by",
        "r1",
    ]);
    expect(&ran, FAILED, "get from a store that does not answer");
    assert!(
        !ran.stderr.contains("credentials") && ran.stderr.contains("not answer"),
        "{}",
        ran.stderr
    );
    assert!(of_kind(&st.events(), "accessed").is_empty());
}

#[test]
fn a_closed_pipe_ends_the_output_quietly() {
    let st = TestStation::with_config(
        "[[camera]]\nname = \"sim\"\ndriver = \"zfy-sim\"\nallow = [\"*\"]\n",
    );
    station_with_evidence(&st);
    for args in [
        &["log", "show"][..],
        &["evidence", "list"],
        &["log", "show", "--json"],
    ] {
        let mut c = st.cmd(args);
        c.stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::piped());
        let mut child = c.spawn().unwrap();
        // `| head -n 0`: the reader is gone before the command writes its first line (it opens
        // the station first, which takes far longer than this).
        drop(child.stdout.take());
        let out = child.wait_with_output().unwrap();
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(
            !stderr.contains("panicked") && !stderr.contains("Broken pipe"),
            "{args:?}: {stderr}"
        );
        assert_ne!(out.status.code(), Some(101), "{args:?}: {stderr}");
    }
}

/// A mount made for a test, undone when dropped (a failing test leaves none behind).
struct Unmount(std::path::PathBuf);

impl Drop for Unmount {
    fn drop(&mut self) {
        let _ = std::process::Command::new("umount").arg(&self.0).status();
    }
}

/// `mount ARGS AT`, or `None` (the test skips, saying so) where mounting is not permitted.
#[allow(clippy::print_stderr)]
fn mount(args: &[&str], at: &Path) -> Option<Unmount> {
    let mounted = std::process::Command::new("mount")
        .args(args)
        .arg(at)
        .status()
        .is_ok_and(|s| s.success());
    if !mounted {
        eprintln!("SKIP: `mount {}` is not permitted here", args.join(" "));
        return None;
    }
    Some(Unmount(at.to_path_buf()))
}

/// A kernel filesystem mounted inside a folder that is a camera card is not read: its files
/// (processes' memory maps, environments with credentials) never become evidence.
#[test]
fn a_kernel_filesystem_inside_a_card_is_not_read() {
    let st = TestStation::with_config(
        "[[camera]]\nname = \"sim\"\ndriver = \"zfy-sim\"\nallow = [\"*\"]\n",
    );
    let fw = station::firmware("ZFY0302", "350302");
    let files = station::recordings(&fw, 1, 4096, 32);
    let card = station::camera(st.dir.path(), fw, files);
    let inside = card.join("DCIM/proc");
    std::fs::create_dir_all(&inside).unwrap();
    let Some(_unmount) = mount(&["-t", "proc", "proc"], &inside) else {
        return;
    };
    let ran = st.run(&[
        "ingest",
        card.to_str().unwrap(),
        "--no-transcode",
        "--no-upload",
        "--json",
    ]);
    let out = ran.json();
    assert_eq!(out["outcome"], "released", "{}", ran.stderr);
    assert!(
        out["failed"].as_u64().unwrap() >= 1,
        "the mount is named as not read: {out}"
    );
    let events = st.events();
    let acquired = of_kind(&events, "acquired");
    assert!(
        acquired.iter().all(|e| !e["payload"]["path"]
            .as_str()
            .unwrap_or("")
            .contains("DCIM/proc")),
        "a file of /proc became evidence"
    );
}

/// A copy that cannot fit where --out points records no access: the room is taken before the
/// `accessed` event (a full stick, or a FAT one and a file of 4 GiB or more).
#[test]
fn a_get_onto_a_full_stick_records_no_access() {
    let st = TestStation::with_config(
        "[[camera]]\nname = \"sim\"\ndriver = \"zfy-sim\"\nallow = [\"*\"]\n",
    );
    let ev = station_with_evidence(&st);
    let stick = st.dir.path().join("stick");
    std::fs::create_dir_all(&stick).unwrap();
    let Some(_unmount) = mount(&["-t", "tmpfs", "-o", "size=4k", "tmpfs"], &stick) else {
        return;
    };
    // Fill it.
    let _ = std::fs::write(stick.join("fill"), vec![0u8; 4096]);
    let out = stick.join("copy.mp4");
    let ran = st.run(&[
        "evidence",
        "get",
        &ev,
        "--out",
        out.to_str().unwrap(),
        "--by",
        "r1",
    ]);
    assert_ne!(ran.code, 0, "{}", ran.stderr);
    assert!(ran.stderr.contains("no room"), "{}", ran.stderr);
    assert!(!out.exists(), "a partial copy left on the stick");
    assert!(
        of_kind(&st.events(), "accessed").is_empty(),
        "an accessed event for a copy that never arrived"
    );
}
