//! How uploads run (`[upload]`): parallelism, retries, the windows they may run in and the
//! bandwidth they may take.

use chrono::NaiveTime;
use std::sync::Mutex;
use std::time::{Duration, Instant};

/// How uploads run.
#[derive(Debug, Clone)]
pub struct UploadSettings {
    /// Files larger than this go up in parts of this size (resumable where the backend allows).
    pub part_size: u64,
    /// Uploads at the same time.
    pub parallel: usize,
    /// Bytes per second over all uploads; `None` = as fast as the uplink allows.
    pub bandwidth: Option<u64>,
    /// Local-time windows when uploads may run (empty = always).
    pub windows: Vec<(NaiveTime, NaiveTime)>,
    /// Retention to note in `uploaded` events (the store's default retention, in days).
    pub retention_days: Option<u32>,
}

impl Default for UploadSettings {
    fn default() -> Self {
        UploadSettings {
            part_size: 8 << 20,
            parallel: 4,
            bandwidth: None,
            windows: Vec::new(),
            retention_days: None,
        }
    }
}

/// Parse an upload window `HH:MM-HH:MM` (may wrap past midnight).
pub fn parse_window(s: &str) -> Result<(NaiveTime, NaiveTime), String> {
    let (a, b) = s
        .split_once('-')
        .ok_or_else(|| format!("{s:?} is not HH:MM-HH:MM"))?;
    let t = |x: &str| {
        NaiveTime::parse_from_str(x.trim(), "%H:%M")
            .map_err(|_| format!("{s:?} is not HH:MM-HH:MM"))
    };
    Ok((t(a)?, t(b)?))
}

/// Whether `now` (local time) is in one of the upload windows (none: always).
pub(super) fn in_window(windows: &[(NaiveTime, NaiveTime)], now: NaiveTime) -> bool {
    windows.is_empty()
        || windows.iter().any(|(a, b)| {
            if a <= b {
                *a <= now && now < *b
            } else {
                now >= *a || now < *b
            }
        })
}

/// A shared bandwidth cap: each caller reserves its bytes and waits its turn.
#[derive(Debug)]
pub(super) struct RateLimiter {
    pub(super) rate: u64,
    pub(super) next: Mutex<Instant>,
}

impl RateLimiter {
    pub(super) async fn take(&self, bytes: u64) {
        if self.rate == 0 {
            return;
        }
        let start = {
            let mut next = self.next.lock().unwrap_or_else(|p| p.into_inner());
            let now = Instant::now();
            let start = (*next).max(now);
            *next = start + Duration::from_secs_f64(bytes as f64 / self.rate as f64);
            start
        };
        tokio::time::sleep_until(tokio::time::Instant::from_std(start)).await;
    }
}
