//! One acquirer per station: `evidock dock` and `evidock ingest` hold an exclusive lock on
//! `<data dir>/acquire.lock` while they acquire. Two of them would write the same partial copies
//! (`.part` files named by device and path) and resume each other's sessions.
//!
//! The lock is `flock(2)` on the file (released by the kernel when the process ends, however it
//! ends); the file says who holds it, for the message the second one prints.

use std::io::{Read as _, Seek as _, Write as _};
use std::path::{Path, PathBuf};

/// Held while this process acquires; dropped, the next acquirer may start.
#[derive(Debug)]
pub struct AcquireLock {
    _file: std::fs::File,
}

/// Another process is acquiring on this station.
#[derive(Debug, thiserror::Error)]
pub enum LockError {
    #[error(
        "another evidock process is acquiring on this station ({holder}; lock {path}): one acquirer per station — stop it first, or let it take this camera"
    )]
    Held { path: PathBuf, holder: String },
    #[error("cannot lock {path}: {source}")]
    Io {
        path: PathBuf,
        source: std::io::Error,
    },
}

impl AcquireLock {
    /// Take the station's acquisition lock for `command` (`dock`, `ingest`), or say who has it.
    pub fn take(data_dir: &Path, command: &str) -> Result<AcquireLock, LockError> {
        let path = data_dir.join("acquire.lock");
        let io = |source| LockError::Io {
            path: path.clone(),
            source,
        };
        let mut file = std::fs::OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(false)
            .open(&path)
            .map_err(io)?;
        match file.try_lock() {
            Ok(()) => {}
            Err(std::fs::TryLockError::WouldBlock) => {
                let mut holder = String::new();
                let _ = file.read_to_string(&mut holder);
                let holder = holder.trim();
                return Err(LockError::Held {
                    holder: if holder.is_empty() {
                        "a process that has not said who it is yet".into()
                    } else {
                        holder.chars().take(200).collect()
                    },
                    path,
                });
            }
            Err(std::fs::TryLockError::Error(e)) => return Err(io(e)),
        }
        // Who holds it, for the next one's message (not durable: it is only a message).
        file.set_len(0).map_err(io)?;
        file.rewind().map_err(io)?;
        let since = chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Secs, true);
        write!(
            file,
            "evidock {command}, pid {}, since {since}",
            std::process::id()
        )
        .map_err(io)?;
        Ok(AcquireLock { _file: file })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_second_acquirer_is_refused_and_told_who_acquires() {
        let tmp = tempfile::tempdir().unwrap();
        let first = AcquireLock::take(tmp.path(), "dock").unwrap();
        let second = AcquireLock::take(tmp.path(), "ingest").unwrap_err();
        let msg = second.to_string();
        assert!(matches!(second, LockError::Held { .. }), "{msg}");
        assert!(
            msg.contains(&format!("evidock dock, pid {}", std::process::id())),
            "{msg}"
        );
        drop(first);
        AcquireLock::take(tmp.path(), "ingest").expect("free once the first one is gone");
    }
}
