//! Running `evidock-verify` the way an attacked receiver would: on a hostile input, bounded in
//! time and memory, and reading what it printed as a court would read it.

use crate::bins;
use serde_json::Value;
use std::collections::BTreeSet;
use std::path::Path;
use std::process::Command;
use std::time::Duration;

/// No check may take longer: a hang is a failed test, not a stuck CI job.
pub const TIME_LIMIT: Duration = Duration::from_secs(10);
/// Nor use more address space (`RLIMIT_AS`): a blow-up is a failed test, not an OOM kill.
pub const MEMORY_LIMIT: u64 = 256 << 20;
/// Nor hold more files open at once: a station's years of log segments must not need as many.
pub const OPEN_FILES: u64 = 32;

/// What one check printed, for people and as JSON, and its exit status.
#[derive(Debug, Clone)]
pub struct Checked {
    /// The exit status (-1: killed at the time limit or by a signal; -2: the human and JSON
    /// runs disagreed).
    pub code: i32,
    pub human: String,
    pub json: Value,
    pub stderr: String,
}

impl Checked {
    /// The finding codes of one level.
    pub fn codes(&self, level: &str) -> BTreeSet<String> {
        codes(&self.json, level)
    }

    /// Whether the human report claims something it must not: a verdict line that reads as
    /// proven or attested, or any raw control character.
    pub fn claims(&self, what: &str) -> bool {
        self.human.lines().any(|l| l.starts_with(what))
    }

    /// Whether a verdict word appears after a run of spaces inside a line, where a terminal
    /// that wraps the line could show it at the start of one.
    pub fn spoofable(&self) -> bool {
        self.human.lines().any(|l| {
            ["  Integrity:", "  Time:"]
                .iter()
                .any(|w| l.trim_start().contains(w))
        })
    }
}

/// The finding codes of one level in a JSON report (package or log).
pub fn codes(v: &Value, level: &str) -> BTreeSet<String> {
    let findings = if v["report"].is_object() {
        &v["report"]["findings"]
    } else {
        &v["findings"]["findings"]
    };
    findings
        .as_array()
        .map(|a| {
            a.iter()
                .filter(|f| f["level"] == level)
                .filter_map(|f| f["code"].as_str().map(str::to_string))
                .collect()
        })
        .unwrap_or_default()
}

/// The verifier under attack: this build's, or the one `EVIDOCK_VERIFY_UNDER_TEST` names (to
/// run the attacks against another build, e.g. one handed over in a package, or an older one).
fn verifier() -> std::path::PathBuf {
    std::env::var_os("EVIDOCK_VERIFY_UNDER_TEST")
        .map(std::path::PathBuf::from)
        .unwrap_or_else(|| bins::bin("evidock-verify"))
}

fn verify_cmd(path: &Path, args: &[&str]) -> Command {
    // prlimit caps the verifier's address space; the time limit is bins::run_for's.
    let mut c = Command::new("prlimit");
    c.arg(format!("--as={MEMORY_LIMIT}"))
        .arg(format!("--nofile={OPEN_FILES}"))
        .arg("--")
        .arg(verifier())
        .arg(path)
        .args(args)
        .env("EVIDOCK_LOG", "warn");
    c
}

/// `evidock-verify PATH ARGS…`, once for people and once with `--json`, each under the time
/// and memory limits. The two runs must agree on the exit status.
pub fn check(path: &Path, args: &[&str]) -> Checked {
    let human = run_bounded(&mut verify_cmd(path, args));
    let mut with_json = args.to_vec();
    with_json.push("--json");
    let json = run_bounded(&mut verify_cmd(path, &with_json));
    let parsed = serde_json::from_str(&json.stdout).unwrap_or(Value::Null);
    Checked {
        code: if human.code == json.code {
            human.code
        } else {
            -2
        },
        human: human.stdout,
        json: parsed,
        stderr: format!("{}{}", human.stderr, json.stderr),
    }
}

/// Run with the time limit; a run still going at the limit is killed and reported as exit -1
/// (a hang is a finding about the verifier, not a stuck test).
fn run_bounded(c: &mut Command) -> bins::Ran {
    let (mut ran, timed_out) = bins::run_limited(c, TIME_LIMIT);
    if timed_out {
        ran.stderr = format!("killed after {TIME_LIMIT:?}\n{}", ran.stderr);
    }
    ran
}

/// A copy of the tree at `from` in `to` (which must not exist), every file its own copy but
/// those under `tools/`, which are hard-linked: no attack touches the verifier binary a package
/// carries, and a debug build of it is tens of MiB.
pub fn copy_for_attack(from: &Path, to: &Path) {
    let mut stack = vec![(from.to_path_buf(), to.to_path_buf())];
    while let Some((src, dst)) = stack.pop() {
        std::fs::create_dir(&dst).unwrap_or_else(|e| panic!("{}: {e}", dst.display()));
        for e in std::fs::read_dir(&src).unwrap_or_else(|e| panic!("{}: {e}", src.display())) {
            let e = e.unwrap_or_else(|e| panic!("{}: {e}", src.display()));
            let (s, d) = (e.path(), dst.join(e.file_name()));
            let t = e
                .file_type()
                .unwrap_or_else(|e| panic!("{}: {e}", s.display()));
            if t.is_dir() {
                stack.push((s, d));
            } else if t.is_symlink() {
                let target = std::fs::read_link(&s).unwrap_or_else(|e| panic!("{e}"));
                std::os::unix::fs::symlink(target, &d).unwrap_or_else(|e| panic!("{e}"));
            } else if s.strip_prefix(from).is_ok_and(|r| r.starts_with("tools")) {
                std::fs::hard_link(&s, &d).unwrap_or_else(|e| panic!("{}: {e}", d.display()));
            } else {
                std::fs::copy(&s, &d).unwrap_or_else(|e| panic!("{}: {e}", d.display()));
            }
        }
    }
}

/// `cp -a FROM TO`.
pub fn copy_tree(from: &Path, to: &Path) {
    let st = Command::new("cp")
        .arg("-a")
        .arg(from)
        .arg(to)
        .status()
        .unwrap_or_else(|e| panic!("cp: {e}"));
    assert!(st.success(), "cp -a {} {}", from.display(), to.display());
}

/// Flip the low bit of the byte at `at_fraction` of the file.
pub fn flip_byte(p: &Path, at_fraction: f64) {
    let mut b = std::fs::read(p).unwrap_or_else(|e| panic!("{}: {e}", p.display()));
    let i = (((b.len() as f64) * at_fraction) as usize).min(b.len() - 1);
    b[i] ^= 0x01;
    overwrite(p, &b);
}

/// Replace a file's bytes (breaking any hard link, ignoring a read-only mode).
pub fn overwrite(p: &Path, b: &[u8]) {
    let tmp = p.with_extension("tamper-tmp");
    std::fs::write(&tmp, b).unwrap_or_else(|e| panic!("{}: {e}", tmp.display()));
    std::fs::rename(&tmp, p).unwrap_or_else(|e| panic!("{}: {e}", p.display()));
}

/// What varies from run to run, replaced so a report can be kept as a snapshot: the
/// directories checked, keys, hashes, base64 roots, times, evidence IDs.
pub fn redact(text: &str, dirs: &[(&Path, &str)]) -> String {
    let mut s = text.to_string();
    for (d, name) in dirs {
        s = s.replace(&d.display().to_string(), name);
    }
    let rules: [(&str, &str); 9] = [
        // Tokens differ in length by a byte or two (DER integers), events by a digit or two.
        (r"\(\d+ bytes\)", "(N bytes)"),
        (
            r"\d+ bytes, the manifest says",
            "N bytes, the manifest says",
        ),
        (
            r"evidock\.station/[A-Za-z0-9._-]+\+[0-9a-f]{8}\+[A-Za-z0-9+/=]+",
            "[KEY]",
        ),
        (r"[0-9a-f]{64}", "[SHA256]"),
        (r"[A-Za-z0-9+/]{43}=", "[B64]"),
        (
            r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d+)?(Z|[+-]\d\d:\d\d)",
            "[TIME]",
        ),
        (r"\d{4}-\d\d-\d\d \d\d:\d\d:\d\d(\.\d+)? UTC", "[TIME]"),
        (r"ev-[0-9a-f]{20}", "ev-[ID]"),
        (r"serial [0-9a-f]+", "serial [N]"),
    ];
    for (pat, with) in rules {
        if let Ok(re) = regex::Regex::new(pat) {
            s = re.replace_all(&s, with).into_owned();
        }
    }
    s
}

/// [`redact`] every string of a JSON report, and sort its `files` and `findings` arrays by
/// what remains: their order follows evidence IDs, which differ from run to run.
pub fn redact_json(v: &Value, dirs: &[(&Path, &str)]) -> Value {
    match v {
        Value::String(s) => Value::String(redact(s, dirs)),
        Value::Array(a) => Value::Array(a.iter().map(|x| redact_json(x, dirs)).collect()),
        Value::Object(o) => Value::Object(
            o.iter()
                .map(|(k, x)| {
                    let mut x = redact_json(x, dirs);
                    if let (Value::Array(a), "files" | "findings") = (&mut x, k.as_str()) {
                        a.sort_by_key(|e| e.to_string());
                    }
                    (k.clone(), x)
                })
                .collect(),
        ),
        other => other.clone(),
    }
}

/// A human report with each run of indented lines (the file verdicts, the findings) sorted:
/// their order follows evidence IDs, which differ from run to run.
pub fn sorted_runs(text: &str) -> String {
    let mut out: Vec<String> = Vec::new();
    let mut run: Vec<&str> = Vec::new();
    let flush = |run: &mut Vec<&str>, out: &mut Vec<String>| {
        run.sort();
        out.extend(run.drain(..).map(String::from));
    };
    for line in text.lines() {
        let verdict_or_finding = ["OK ", "FAIL ", "CONSISTENT ", "info ", "warning ", "error "]
            .iter()
            .any(|w| line.strip_prefix("  ").is_some_and(|l| l.starts_with(w)));
        if verdict_or_finding {
            run.push(line);
        } else {
            flush(&mut run, &mut out);
            out.push(line.to_string());
        }
    }
    flush(&mut run, &mut out);
    out.join("\n") + "\n"
}
