//! The watch-folder source: a camera volume appearing under the mount root (mounted there by
//! udisks, a udev rule, or #4's USB source) is a docked camera; its going away (or its mount
//! point going empty) is an undock.
//!
//! `notify` wakes the scanner immediately; a rescan every second catches what inotify cannot
//! see (a mount on an existing directory creates no event in the parent).

use super::{Arrival, DockEvent};
use notify::Watcher as _;
use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

/// Volumes present and ready under `root`: non-hidden directories with at least one entry.
pub fn scan(root: &Path) -> BTreeSet<String> {
    let mut out = BTreeSet::new();
    let Ok(rd) = fs_err::read_dir(root) else {
        return out;
    };
    for e in rd.flatten() {
        let name = e.file_name().to_string_lossy().into_owned();
        if name.starts_with('.') {
            continue;
        }
        let p = e.path();
        let is_dir = fs_err::symlink_metadata(&p).is_ok_and(|m| m.is_dir());
        if is_dir && fs_err::read_dir(&p).is_ok_and(|mut d| d.next().is_some()) {
            out.insert(name);
        }
    }
    out
}

/// Watch `root` until `stop`; send arrivals and departures to `tx`.
pub fn run(
    root: PathBuf,
    tx: tokio::sync::mpsc::Sender<DockEvent>,
    stop: Arc<AtomicBool>,
) -> Result<std::thread::JoinHandle<()>, String> {
    fs_err::create_dir_all(&root)
        .map_err(|e| format!("cannot create the mount root {}: {e}", root.display()))?;
    let (wake_tx, wake_rx) = std::sync::mpsc::channel::<()>();
    let mut watcher = notify::recommended_watcher(move |res: notify::Result<notify::Event>| {
        // Only entries appearing, going or being renamed matter. Opening and reading (which the
        // scan itself does) must not wake the scan, or it wakes itself for ever.
        let relevant = res.is_ok_and(|ev| {
            matches!(
                ev.kind,
                notify::EventKind::Create(_)
                    | notify::EventKind::Remove(_)
                    | notify::EventKind::Modify(notify::event::ModifyKind::Name(_))
                    | notify::EventKind::Any
                    | notify::EventKind::Other
            )
        });
        if relevant {
            let _ = wake_tx.send(());
        }
    })
    .map_err(|e| format!("cannot watch {}: {e}", root.display()))?;
    watcher
        .watch(&root, notify::RecursiveMode::NonRecursive)
        .map_err(|e| format!("cannot watch {}: {e}", root.display()))?;
    std::thread::Builder::new()
        .name("watch-folder".into())
        .spawn(move || {
            let _watcher = watcher;
            let mut known: BTreeSet<String> = BTreeSet::new();
            while !stop.load(Ordering::Relaxed) {
                let now = scan(&root);
                for slot in now.difference(&known) {
                    let arrival = Arrival {
                        slot: slot.clone(),
                        volume: root.join(slot),
                        usb: None,
                    };
                    tracing::info!(slot = %slot, volume = %arrival.volume.display(), "volume appeared");
                    if tx.blocking_send(DockEvent::Arrived(arrival)).is_err() {
                        return;
                    }
                }
                for slot in known.difference(&now) {
                    tracing::info!(slot = %slot, "volume went away");
                    if tx.blocking_send(DockEvent::Departed { slot: slot.clone() }).is_err() {
                        return;
                    }
                }
                known = now;
                // Wake on a change or after a second, whichever is first; drain bursts.
                let _ = wake_rx.recv_timeout(Duration::from_secs(1));
                while wake_rx.try_recv().is_ok() {}
            }
        })
        .map_err(|e| format!("cannot start the watch-folder thread: {e}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn scan_sees_ready_volumes_only() {
        let tmp = tempfile::tempdir().unwrap();
        let r = tmp.path();
        fs_err::create_dir(r.join("empty-mountpoint")).unwrap();
        fs_err::create_dir(r.join("CAM1")).unwrap();
        fs_err::write(r.join("CAM1/x"), b"").unwrap();
        fs_err::create_dir(r.join(".staging")).unwrap();
        fs_err::write(r.join(".staging/x"), b"").unwrap();
        fs_err::write(r.join("file"), b"").unwrap();
        assert_eq!(
            scan(r).into_iter().collect::<Vec<_>>(),
            vec!["CAM1".to_string()]
        );
    }
}
