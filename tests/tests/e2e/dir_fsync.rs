//! Every directory entry the station keeps is durable: after a file or directory is created,
//! renamed or linked into place, the directory holding it is fsynced before the process ends.
//! Without that, a power cut after "safe to undock" can lose a whole file whose bytes were
//! fsynced, because the name pointing at them was not.
//!
//! Read from the real binary with `strace -y` (each file descriptor shown with its path): every
//! entry that exists when the run ends and was made during it must be followed by an fsync of
//! its parent directory. Temporary names renamed away, and SQLite's `-shm` index (rebuilt from
//! the WAL by design), are not kept entries.
// Test helpers panic on purpose: a failed expectation is a failed test.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use evidock_tests::station::{self, TestStation};
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

/// What a traced run did to directory entries, in order.
#[derive(Debug)]
enum Op {
    /// An entry appeared (mkdir, a creating open, a rename or link target).
    Made(PathBuf),
    /// A directory was fsynced.
    Synced(PathBuf),
}

/// The path inside the first `"…"` after `from` (strace quotes paths; `-y` adds `<…>` to fds).
fn quoted(s: &str, nth: usize) -> Option<String> {
    let mut rest = s;
    for _ in 0..nth {
        let i = rest.find('"')?;
        let j = rest[i + 1..].find('"')?;
        rest = &rest[i + j + 2..];
    }
    let i = rest.find('"')?;
    let j = rest[i + 1..].find('"')?;
    Some(rest[i + 1..i + 1 + j].to_string())
}

/// The directory an `AT_FDCWD</x>` or `N</x>` argument names.
fn dirfd(arg: &str) -> Option<PathBuf> {
    let i = arg.find('<')?;
    let j = arg[i..].find('>')?;
    Some(PathBuf::from(&arg[i + 1..i + j]))
}

/// The entry's path with its folder resolved as the kernel names it (fds under `-y` are
/// canonical; paths passed as arguments may go through a symlinked TMPDIR).
fn absolute(dirfd: Option<PathBuf>, cwd: &Path, p: &str) -> PathBuf {
    let p = Path::new(p);
    let p = if p.is_absolute() {
        p.to_path_buf()
    } else {
        dirfd.unwrap_or_else(|| cwd.to_path_buf()).join(p)
    };
    match (p.parent().map(std::fs::canonicalize), p.file_name()) {
        (Some(Ok(dir)), Some(name)) => dir.join(name),
        _ => p,
    }
}

fn parse(trace: &str, cwd: &Path) -> Vec<Op> {
    let mut ops = Vec::new();
    for line in trace.lines() {
        // With -f and -o, each line starts with the thread's ID, padded to five columns.
        let line = match line.split_once(' ') {
            Some((pid, l)) if pid.bytes().all(|b| b.is_ascii_digit()) => l.trim_start(),
            _ => line,
        };
        let Some((call, rest)) = line.split_once('(') else {
            continue;
        };
        let first_arg = rest.split(',').next().unwrap_or("");
        match call {
            "mkdir" => ops.push(Op::Made(absolute(None, cwd, &quoted(rest, 0).unwrap()))),
            "mkdirat" => ops.push(Op::Made(absolute(
                dirfd(first_arg),
                cwd,
                &quoted(rest, 0).unwrap(),
            ))),
            "openat" if rest.contains("O_CREAT") => ops.push(Op::Made(absolute(
                dirfd(first_arg),
                cwd,
                &quoted(rest, 0).unwrap(),
            ))),
            "open" | "creat" if call == "creat" || rest.contains("O_CREAT") => {
                ops.push(Op::Made(absolute(None, cwd, &quoted(rest, 0).unwrap())))
            }
            "rename" | "link" => ops.push(Op::Made(absolute(None, cwd, &quoted(rest, 1).unwrap()))),
            "renameat" | "renameat2" | "linkat" => {
                // renameat(olddirfd, "old", newdirfd, "new"): the new dir fd is the third arg.
                let after_old = rest.splitn(3, ',').nth(2).unwrap_or("");
                ops.push(Op::Made(absolute(
                    dirfd(after_old.split(',').next().unwrap_or("")),
                    cwd,
                    &quoted(rest, 1).unwrap(),
                )))
            }
            "fsync" | "fdatasync" => {
                if let Some(p) = dirfd(first_arg)
                    && p.is_dir()
                {
                    ops.push(Op::Synced(p));
                }
            }
            _ => {}
        }
    }
    ops
}

/// Entries under `root` made during the run that still exist and whose directory was not
/// fsynced after they were made.
fn unsynced(ops: &[Op], root: &Path) -> Vec<PathBuf> {
    let mut last_made: BTreeMap<PathBuf, usize> = BTreeMap::new();
    let mut last_sync: BTreeMap<PathBuf, usize> = BTreeMap::new();
    for (i, op) in ops.iter().enumerate() {
        match op {
            Op::Made(p) => {
                last_made.insert(p.clone(), i);
            }
            Op::Synced(d) => {
                last_sync.insert(d.clone(), i);
            }
        }
    }
    last_made
        .into_iter()
        .filter(|(p, _)| p.starts_with(root))
        .filter(|(p, _)| std::fs::symlink_metadata(p).is_ok())
        .filter(|(p, _)| !p.to_string_lossy().ends_with("-shm"))
        .filter(|(p, made)| {
            let parent = p.parent().unwrap();
            last_sync.get(parent).is_none_or(|s| s < made)
        })
        .map(|(p, _)| p)
        .collect()
}

fn traced(st: &TestStation, args: &[&str]) -> Vec<Op> {
    let trace = st.dir.path().join(format!("strace-{}.txt", args[0]));
    let opts: Vec<&std::ffi::OsStr> = ["-f", "-qq", "-y", "-s", "4096", "-e", "status=successful", "-e",
        "trace=mkdir,mkdirat,open,openat,creat,rename,renameat,renameat2,link,linkat,fsync,fdatasync", "-o"]
        .iter()
        .map(std::ffi::OsStr::new)
        .chain([trace.as_os_str()])
        .collect();
    let out = st.cmd_under("strace", &opts, args).output().unwrap();
    assert!(
        out.status.success(),
        "{args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let text = std::fs::read_to_string(&trace).unwrap();
    let ops = parse(&text, &std::env::current_dir().unwrap());
    assert!(
        ops.iter().any(|o| matches!(o, Op::Made(_))),
        "{args:?}: no creation read from the trace; it begins:\n{}",
        text.lines().take(20).collect::<Vec<_>>().join("\n")
    );
    ops
}

#[test]
fn every_entry_the_station_keeps_has_its_directory_fsynced() {
    let st = TestStation::with_config(
        "[[camera]]\nname = \"sim\"\ndriver = \"zfy-sim\"\nallow = [\"*\"]\n",
    );
    let fw = station::firmware("ZFY0913", "350913");
    let files = station::recordings(&fw, 2, 30_000, 13);
    let card = station::camera(st.dir.path(), fw, files);
    // A fresh data directory: every entry in it is made by these runs (the spool's and the
    // store's content-addressed folders are several new levels deep).
    let root = std::fs::canonicalize(st.dir.path()).unwrap();
    let mut ops = traced(&st, &["ingest", card.to_str().unwrap()]);
    ops.extend(traced(&st, &["upload"]));
    let data = root.join("data");
    let made = ops
        .iter()
        .filter(|o| matches!(o, Op::Made(p) if p.starts_with(&data)))
        .count();
    assert!(
        made > 20,
        "the trace saw the run's creations in {} ({made})",
        data.display()
    );
    let bad = unsynced(&ops, &data);
    assert!(
        bad.is_empty(),
        "entries whose directory was never fsynced after they were made:\n{}",
        bad.iter()
            .map(|p| format!("  {}", p.display()))
            .collect::<Vec<_>>()
            .join("\n")
    );
}
