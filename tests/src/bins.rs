//! The workspace's built binaries, run as a user would run them.
//!
//! `CARGO_BIN_EXE_*` is only set inside the package that owns a binary, so the binaries are
//! found in the target directory beside the running test executable. `make test` builds them
//! first (`cargo build --workspace --bins`).

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

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

/// Path of a workspace binary; panics with the fix if it was not built.
pub fn bin(name: &str) -> PathBuf {
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

/// Run and capture; the exit code, stdout and stderr as text.
pub fn run(c: &mut Command) -> Ran {
    let out: Output = c
        .output()
        .unwrap_or_else(|e| panic!("cannot run {c:?}: {e}"));
    Ran {
        code: out.status.code().unwrap_or(-1),
        stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
    }
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
