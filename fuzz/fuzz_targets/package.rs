//! A whole disclosure package built from the fuzzer's input, checked end to end: findings,
//! never a panic, a hang, or a read outside the directory.
//!
//! The input is a list of entries, each `kind (1 byte) ‖ path length (1) ‖ path ‖ data
//! length (2, big-endian) ‖ data`: kind 0 a file, 1 a symbolic link to `data`, 2 a FIFO. The
//! paths are taken as given (after dropping `..` and absolute parts, so the fuzzer cannot write
//! outside its scratch directory); `MANIFEST.json` among them makes it a package.
#![no_main]
use evidock_verify::package;
use evidock_verify::trust::Trust;
use libfuzzer_sys::fuzz_target;
use std::path::{Component, Path, PathBuf};

fn scratch() -> PathBuf {
    static N: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);
    let n = N.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    std::env::temp_dir().join(format!("evidock-fuzz-{}-{n}", std::process::id()))
}

/// `rel` made safe to create beneath the scratch directory.
fn inside(rel: &str) -> Option<PathBuf> {
    let p: PathBuf = Path::new(rel)
        .components()
        .filter_map(|c| match c {
            Component::Normal(s) => Some(s),
            _ => None,
        })
        .collect();
    (!p.as_os_str().is_empty()).then_some(p)
}

/// `dir/rel` with every folder on the way created as a real directory, or `None` if one of
/// them is something else (a link, a file, a FIFO an earlier entry made).
fn real_dirs(dir: &Path, rel: &Path) -> Option<PathBuf> {
    let mut at = dir.to_path_buf();
    let parts: Vec<_> = rel.components().collect();
    for c in &parts[..parts.len().saturating_sub(1)] {
        at.push(c);
        match std::fs::symlink_metadata(&at) {
            Ok(m) if m.file_type().is_dir() => {}
            Ok(_) => return None,
            Err(_) => std::fs::create_dir(&at).ok()?,
        }
    }
    Some(dir.join(rel))
}

fuzz_target!(|data: &[u8]| {
    let dir = scratch();
    let _ = std::fs::create_dir_all(&dir);
    let mut rest = data;
    while rest.len() >= 4 {
        let kind = rest[0];
        let plen = rest[1] as usize;
        if rest.len() < 2 + plen + 2 {
            break;
        }
        let path = String::from_utf8_lossy(&rest[2..2 + plen]).into_owned();
        let dlen = u16::from_be_bytes([rest[2 + plen], rest[3 + plen]]) as usize;
        let start = 4 + plen;
        let body = &rest[start..(start + dlen).min(rest.len())];
        rest = &rest[(start + dlen).min(rest.len())..];
        let Some(rel) = inside(&path) else { continue };
        // Never through what an earlier entry made: a link would lead the harness itself out
        // of the scratch directory, a FIFO would block it.
        let Some(p) = real_dirs(&dir, &rel) else { continue };
        if std::fs::symlink_metadata(&p).is_ok() {
            continue;
        }
        match kind % 3 {
            0 => {
                let _ = std::fs::write(&p, body);
            }
            1 => {
                let _ = std::os::unix::fs::symlink(String::from_utf8_lossy(body).as_ref(), &p);
            }
            _ => {
                let _ = rustix::fs::mkfifoat(rustix::fs::CWD, &p, rustix::fs::Mode::RUSR);
            }
        }
    }
    let check = package::check_package(&dir, &Trust::none());
    // A package the fuzzer made is never proven: nothing it holds is pinned.
    assert!(!check.integrity_proven());
    let _ = std::fs::remove_dir_all(&dir);
});
