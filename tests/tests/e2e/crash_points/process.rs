//! One run of the dock as a process: how it ended, how it is stopped (SIGTERM, and a kill
//! when dropped), and how it runs under another command (strace) whose child it then is.

use std::ffi::OsString;
use std::os::unix::process::ExitStatusExt as _;
use std::process::{Child, Command};
use std::time::{Duration, Instant};

pub enum Run {
    Done,
    Crashed,
    /// Aborted while it stopped (a crash point on the way out).
    Aborted,
    /// Killed by SIGKILL (under strace: the injected kill, at any moment of the run).
    Killed,
    Exited(String),
    Settled(String),
    Stuck(String),
}

impl std::fmt::Debug for Run {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Run::Done => f.write_str("done"),
            Run::Crashed => f.write_str("aborted at the crash point"),
            Run::Aborted => f.write_str("aborted while stopping"),
            Run::Killed => f.write_str("killed by SIGKILL"),
            Run::Exited(s) => write!(f, "the dock exited by itself: {s}"),
            Run::Settled(s) => write!(f, "settled: {s}"),
            Run::Stuck(s) => write!(f, "stuck: {s}"),
        }
    }
}

/// `cmd` (program, arguments, environment) run under `under`: `under… program arguments…`.
pub fn wrapped(under: &[OsString], cmd: &Command) -> Command {
    let mut c = Command::new(&under[0]);
    c.args(&under[1..])
        .arg(cmd.get_program())
        .args(cmd.get_args());
    for (k, v) in cmd.get_envs() {
        match v {
            Some(v) => c.env(k, v),
            None => c.env_remove(k),
        };
    }
    c
}

/// The child of `parent` (strace) that runs `program`: the dock. Not simply its first child:
/// strace forks short-lived children of its own first, to probe what ptrace can do.
pub fn child_of(parent: u32, program: &std::ffi::OsStr) -> u32 {
    let file = format!("/proc/{parent}/task/{parent}/children");
    for _ in 0..250 {
        let text = std::fs::read_to_string(&file).unwrap_or_default();
        for pid in text
            .split_whitespace()
            .filter_map(|p| p.parse::<u32>().ok())
        {
            let argv0 = std::fs::read(format!("/proc/{pid}/cmdline")).unwrap_or_default();
            let argv0 = argv0.split(|b| *b == 0).next().unwrap_or_default();
            if argv0 == std::os::unix::ffi::OsStrExt::as_bytes(program) {
                return pid;
            }
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    panic!("{parent} started no {program:?} within 5 s ({file})");
}

/// A running dock (or the strace it runs under, with the dock's pid); killed when dropped.
pub struct Guard(pub Option<Child>, pub Option<u32>);

impl Guard {
    /// SIGTERM to the dock, and wait for the shutdown (under strace: for strace's end, which
    /// follows the dock's).
    pub fn stop(&mut self) -> Run {
        let Some(mut child) = self.0.take() else {
            return Run::Done;
        };
        let status = match self.1 {
            None => evidock_tests::bins::terminate(&mut child, Duration::from_secs(30)),
            Some(dock) => {
                signal(dock, "TERM");
                let deadline = Instant::now() + Duration::from_secs(30);
                loop {
                    if let Ok(Some(s)) = child.try_wait() {
                        break Some(s);
                    }
                    if Instant::now() > deadline {
                        signal(dock, "KILL");
                        let _ = child.kill();
                        let _ = child.wait();
                        break None;
                    }
                    std::thread::sleep(Duration::from_millis(50));
                }
            }
        };
        match status {
            Some(s) if s.success() => Run::Done,
            Some(s) if s.signal() == Some(6) => Run::Aborted,
            Some(s) if s.signal() == Some(9) && self.1.is_some() => Run::Killed,
            Some(s) => Run::Exited(format!("after SIGTERM: {s}")),
            None => Run::Stuck("did not stop within 30 s of SIGTERM".into()),
        }
    }
}

impl Drop for Guard {
    fn drop(&mut self) {
        if let Some(mut c) = self.0.take() {
            // The dock first: strace killed alone would detach it and leave it running.
            if let Some(dock) = self.1 {
                signal(dock, "KILL");
            }
            let _ = c.kill();
            let _ = c.wait();
        }
    }
}

fn signal(pid: u32, sig: &str) {
    let _ = Command::new("kill")
        .arg(format!("-{sig}"))
        .arg(pid.to_string())
        .status();
}
