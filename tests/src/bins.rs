//! The workspace's built binaries, run as a user would run them.
//!
//! `CARGO_BIN_EXE_*` is only set inside the package that owns a binary, so the binaries are
//! found in the target directory beside the running test executable. `make test` builds them
//! first (`cargo build --workspace --bins`).

use std::path::{Path, PathBuf};
use std::process::Command;

/// The target profile directory (`target/debug`) of the running test.
pub fn target_dir() -> PathBuf {
    let exe = std::env::current_exe().unwrap_or_default();
    // target/debug/deps/<test>-<hash> → target/debug
    let mut dir = exe.parent().map(Path::to_path_buf).unwrap_or_default();
    if dir.ends_with("deps") {
        dir.pop();
    }
    dir
}

/// Build the workspace's binaries once per test process, so a test never runs a stale binary
/// (`cargo test -p evidock-tests` alone does not rebuild other packages' binaries).
fn ensure_built() {
    static BUILT: std::sync::OnceLock<()> = std::sync::OnceLock::new();
    BUILT.get_or_init(|| {
        let Ok(cargo) = std::env::var("CARGO") else {
            return;
        };
        let profile = target_dir()
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default();
        let mut c = Command::new(cargo);
        c.args(["build", "--quiet", "--workspace", "--bins"]);
        without_test_cargo_env(&mut c);
        if profile == "release" {
            c.arg("--release");
        }
        let status = c.status();
        assert!(
            status.as_ref().is_ok_and(|s| s.success()),
            "building the binaries failed: {status:?}"
        );
    });
}

/// Remove what `cargo test` gives a test process of the tests package (CARGO_MANIFEST_DIR,
/// CARGO_PKG_NAME, …) from a cargo build it starts: some build scripts (ring's) rerun when those
/// change, which would rebuild half the dependency tree there and again at the next plain
/// `cargo build`.
pub fn without_test_cargo_env(c: &mut Command) {
    for (k, _) in std::env::vars_os() {
        let k = k.to_string_lossy();
        if k.starts_with("CARGO_PKG_")
            || k.starts_with("CARGO_MANIFEST_")
            || k.starts_with("CARGO_CRATE_")
            || k.starts_with("CARGO_BIN_")
            || k.starts_with("CARGO_PRIMARY_")
            || k == "CARGO_TARGET_TMPDIR"
            || k == "OUT_DIR"
        {
            c.env_remove(k.as_ref());
        }
    }
}

/// SIGTERM to `child`, and its exit status once it stopped; `None` (and SIGKILL) if it still
/// ran after `limit`.
pub fn terminate(
    child: &mut std::process::Child,
    limit: std::time::Duration,
) -> Option<std::process::ExitStatus> {
    let _ = Command::new("kill")
        .arg("-TERM")
        .arg(child.id().to_string())
        .status();
    let deadline = std::time::Instant::now() + limit;
    while std::time::Instant::now() < deadline {
        if let Ok(Some(s)) = child.try_wait() {
            return Some(s);
        }
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
    let _ = child.kill();
    let _ = child.wait();
    None
}

/// Path of a workspace binary; panics with the fix if it was not built.
pub fn bin(name: &str) -> PathBuf {
    ensure_built();
    let p = target_dir().join(name);
    if !p.is_file() {
        panic!(
            "{} is not built: run `cargo build --workspace --bins` (make test does)",
            p.display()
        );
    }
    p
}

/// A command for `name` with a clean evidock environment.
pub fn cmd(name: &str) -> Command {
    let mut c = Command::new(bin(name));
    c.env_remove("EVIDOCK_DATA_DIR")
        .env_remove("EVIDOCK_CONFIG")
        .env("EVIDOCK_LOG", "warn");
    c
}

/// Run and capture; the exit code, stdout and stderr as text. A command still running after
/// five minutes is killed and the test fails (a hang is a failure, not a stuck CI job).
pub fn run(c: &mut Command) -> Ran {
    run_for(c, std::time::Duration::from_secs(300))
}

/// [`run`] with a time limit.
pub fn run_for(c: &mut Command, limit: std::time::Duration) -> Ran {
    let (ran, timed_out) = run_limited(c, limit);
    if timed_out {
        panic!(
            "{c:?} did not finish within {limit:?}\nstderr:\n{}",
            ran.stderr
        );
    }
    ran
}

/// Run and capture with a time limit; a command still running at the limit is killed, and
/// the second value says so (exit code -1).
pub fn run_limited(c: &mut Command, limit: std::time::Duration) -> (Ran, bool) {
    use std::io::Read as _;
    let mut child = c
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap_or_else(|e| panic!("cannot run {c:?}: {e}"));
    let mut out = child.stdout.take().unwrap();
    let mut err = child.stderr.take().unwrap();
    let t_out = std::thread::spawn(move || {
        let mut v = Vec::new();
        let _ = out.read_to_end(&mut v);
        v
    });
    let t_err = std::thread::spawn(move || {
        let mut v = Vec::new();
        let _ = err.read_to_end(&mut v);
        v
    });
    let deadline = std::time::Instant::now() + limit;
    let status = loop {
        if let Some(s) = child.try_wait().unwrap() {
            break Some(s);
        }
        if std::time::Instant::now() > deadline {
            let _ = child.kill();
            let _ = child.wait();
            break None;
        }
        std::thread::sleep(std::time::Duration::from_millis(10));
    };
    let stdout = t_out.join().unwrap_or_default();
    let stderr = t_err.join().unwrap_or_default();
    let ran = Ran {
        code: status.and_then(|s| s.code()).unwrap_or(-1),
        stdout: String::from_utf8_lossy(&stdout).into_owned(),
        stderr: String::from_utf8_lossy(&stderr).into_owned(),
    };
    (ran, status.is_none())
}

/// What a finished command did.
#[derive(Debug, Clone)]
pub struct Ran {
    pub code: i32,
    pub stdout: String,
    pub stderr: String,
}

impl Ran {
    /// Parse stdout as JSON.
    pub fn json(&self) -> serde_json::Value {
        serde_json::from_str(&self.stdout).unwrap_or_else(|e| {
            panic!(
                "stdout is not JSON ({e}):\n{}\nstderr:\n{}",
                self.stdout, self.stderr
            )
        })
    }
}

/// `evidock-verify PATH --json [--trust FILE]` (a package, a log directory or a published log):
/// its exit status and its JSON verdict.
pub fn verify(path: &Path, trust: Option<&Path>) -> (i32, serde_json::Value) {
    let mut c = cmd("evidock-verify");
    c.arg(path).arg("--json");
    if let Some(t) = trust {
        c.arg("--trust").arg(t);
    }
    let ran = run(&mut c);
    (ran.code, ran.json())
}

/// `evidock-verify PATH --json` with no trust file, on a log or package that must be sound: no
/// error, every event sealed, and — the station key not being pinned — integrity only
/// "consistent" with the key the input carries (exit status 3).
pub fn verify_unpinned(path: &Path) -> serde_json::Value {
    let (code, v) = verify(path, None);
    assert_eq!(code, 3, "{v:#}");
    assert_eq!(v["errors"], 0, "{v:#}");
    assert_eq!(v["integrity"], "consistent", "{v:#}");
    assert_eq!(v["integrity_proven"], false, "{v:#}");
    v
}

/// Write an `evidock-verify --trust` file at `path` pinning `station_key` (note format) and,
/// if given, a TSA root certificate.
pub fn trust_file(path: &Path, station_key: &str, tsa_root: Option<&Path>) -> PathBuf {
    let mut t = format!("[[station]]\nkey = \"{station_key}\"\n");
    if let Some(r) = tsa_root {
        t.push_str(&format!("[[tsa]]\nroot_file = \"{}\"\n", r.display()));
    }
    std::fs::write(path, t).unwrap();
    path.to_path_buf()
}
