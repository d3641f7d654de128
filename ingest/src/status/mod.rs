//! What the station is doing, for the people around it: the status report behind the status
//! page, `/api/status`, `/metrics` and `evidock status`, and the alerts an admin must act on.
//!
//! Read-only: nothing here changes evidence or station state. The report is built from the
//! journal, the custody log, the spool disk and (in the dock) the live slots.

mod alerts;
pub mod http;
mod metrics;
pub mod page;

pub use alerts::notify;
pub use metrics::metrics;

use crate::config::StatusSettings;
use crate::dock::daemon::SlotView;
use crate::journal::UploadState;
use crate::station::Station;
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::path::PathBuf;

/// Something an admin must act on.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Alert {
    /// Stable: `disk.spool-low`, `store.unreachable`, `upload.failed`, `tsa.unreachable`,
    /// `evidence.not-uploaded-24h`, `camera.failing`.
    pub code: String,
    /// `warning` or `error`.
    pub level: String,
    /// What it is about (a disk, a camera serial, the store).
    pub subject: String,
    pub message: String,
}

#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct Queue {
    pub pending: u64,
    pub uploading: u64,
    pub failed: u64,
    pub uploaded: u64,
    pub bytes_waiting: u64,
    /// Seconds since the oldest item waiting to upload was queued.
    pub oldest_waiting_secs: Option<i64>,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct RecentEvent {
    pub seq: u64,
    pub time: String,
    pub kind: String,
    pub subject: String,
    pub actor: String,
}

#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct Disk {
    pub path: PathBuf,
    pub free_bytes: u64,
    pub total_bytes: u64,
}

/// Totals since the station was set up (for `/metrics`).
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct Totals {
    pub sessions: u64,
    pub files_acquired: u64,
    pub bytes_acquired: u64,
    pub files_failed: u64,
    pub sessions_failed: u64,
    pub sessions_refused: u64,
    pub uploaded_bytes: u64,
    pub transcode_failed: u64,
}

/// The whole status report.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Report {
    pub station: String,
    pub time: DateTime<Utc>,
    /// `trusted time from …` or `local time only`.
    pub time_source: String,
    /// Whether the live slots are included (the dock is running).
    pub live: bool,
    pub slots: Vec<SlotView>,
    pub uploads: Queue,
    pub transcode_backlog: u64,
    pub checkpoints_without_token: u64,
    pub recent_events: Vec<RecentEvent>,
    /// Evidence queued for upload for more than 24 hours: (evidence, hours).
    pub waiting_over_24h: Vec<(String, i64)>,
    pub disk: Disk,
    pub totals: Totals,
    pub alerts: Vec<Alert>,
    /// Journal rows that do not decode (left out of every listing until repaired).
    #[serde(default)]
    pub journal_undecodable: Vec<crate::journal::Undecodable>,
}

/// Build the report; `slots` are the dock's live slots (None outside the dock).
pub fn report(
    st: &Station,
    settings: &StatusSettings,
    slots: Option<Vec<SlotView>>,
) -> anyhow::Result<Report> {
    let now = st.clock.now();
    // Counted by the database, and only the queue read row by row: the page costs the same in
    // a station's tenth year as in its first.
    let uploads = st.journal.uploads_unfinished()?;
    let (uploaded, uploaded_bytes) = st.journal.uploaded_totals()?;
    let mut q = Queue {
        uploaded,
        ..Queue::default()
    };
    let mut waiting = Vec::new();
    let mut retrying: Option<String> = None;
    let mut failed_msgs = Vec::new();
    for u in &uploads {
        match u.state {
            UploadState::Uploaded => {}
            UploadState::Failed => {
                q.failed += 1;
                failed_msgs.push(format!(
                    "{} {}: {}",
                    u.evidence,
                    u.role,
                    u.error.clone().unwrap_or_default()
                ));
            }
            s => {
                if s == UploadState::Uploading {
                    q.uploading += 1;
                } else {
                    q.pending += 1;
                }
                q.bytes_waiting += u.size;
                if let Some(t) = u.queued_at {
                    let age = (now - t).num_seconds();
                    q.oldest_waiting_secs = Some(q.oldest_waiting_secs.map_or(age, |a| a.max(age)));
                    if age > 24 * 3600 && u.role == "original" {
                        waiting.push((u.evidence.to_string(), age / 3600));
                    }
                }
                if u.attempts > 0 && u.error.is_some() {
                    retrying = u.error.clone();
                }
            }
        }
    }
    let t = st
        .journal
        .session_totals(now - chrono::Duration::hours(24))?;
    let mut totals = Totals {
        sessions: t.sessions,
        files_acquired: t.files,
        bytes_acquired: t.bytes,
        files_failed: t.files_failed,
        sessions_failed: t.sessions_failed,
        sessions_refused: t.sessions_refused,
        uploaded_bytes,
        ..Totals::default()
    };
    let failing: BTreeMap<String, u64> = t.failing_since.into_iter().collect();

    // The custody log: the latest events, and checkpoints still waiting for a token.
    // A log that cannot be read to its end is an alert: the page would otherwise show an old
    // view as if it were current.
    let (size, cps, tokens_dir, log_error) = st.log.with(|l| {
        let refreshed = l.refresh().err().map(|e| e.to_string());
        let cps = l.checkpoint_sizes();
        (
            l.size(),
            cps.as_ref().map(Vec::clone).unwrap_or_default(),
            l.dir().join(evidock_verify::layout::TIMESTAMPS_DIR),
            refreshed.or_else(|| cps.err().map(|e| e.to_string())),
        )
    });
    let mut recent = Vec::new();
    st.log.with(|l| {
        l.for_each_event_from(size.saturating_sub(20), |e| {
            recent.push(RecentEvent {
                seq: e.seq,
                time: e.local_time().format("%Y-%m-%d %H:%M:%S").to_string(),
                kind: e.kind.to_string(),
                subject: e.subject.to_string(),
                actor: e.actor.id.clone(),
            });
        })
    })?;
    recent.reverse();
    let without_token = if st.settings.tsa.is_some() {
        cps.iter()
            .filter(|s| {
                !tokens_dir
                    .join(evidock_verify::layout::timestamp_file(**s))
                    .exists()
            })
            .count() as u64
    } else {
        0
    };
    // Every content whose derivatives could not be made, not only those among the recent events;
    // both counted by the journal's queries, not by loading every row the station holds.
    totals.transcode_failed = st
        .journal
        .transcodes_in(crate::transcode::TranscodeState::Failed)?;
    let transcode_backlog = if st.settings.transcode.enabled {
        st.journal
            .transcode_backlog()
            .map(|b| crate::transcode::queue(b).len() as u64)
            .unwrap_or(0)
    } else {
        0
    };
    let disk = match rustix::fs::statvfs(st.spool.root()) {
        Ok(s) => Disk {
            path: st.spool.root().to_path_buf(),
            free_bytes: s.f_bavail.saturating_mul(s.f_frsize),
            total_bytes: s.f_blocks.saturating_mul(s.f_frsize),
        },
        Err(_) => Disk {
            path: st.spool.root().to_path_buf(),
            ..Disk::default()
        },
    };

    // Alerts.
    let mut alerts = Vec::new();
    let mut alert = |code: &str, level: &str, subject: String, message: String| {
        alerts.push(Alert {
            code: code.into(),
            level: level.into(),
            subject,
            message,
        })
    };
    if let Some(pct) = disk
        .free_bytes
        .saturating_mul(100)
        .checked_div(disk.total_bytes)
    {
        let min = st.settings.tuning.min_free_bytes;
        if disk.free_bytes < min.saturating_mul(2) || pct < u64::from(settings.spool_free_percent) {
            alert(
                "disk.spool-low",
                if disk.free_bytes < min {
                    "error"
                } else {
                    "warning"
                },
                disk.path.display().to_string(),
                format!(
                    "{} MiB free ({pct}%): cameras stop being read below {} MiB; let uploads finish or add space",
                    disk.free_bytes >> 20,
                    min >> 20
                ),
            );
        }
    }
    if let Some(e) = log_error {
        alert(
            "log.unreadable",
            "error",
            st.log.with(|l| l.dir().display().to_string()),
            format!(
                "the custody log cannot be read to its end: {e}; the page shows what was read before"
            ),
        );
    }
    let journal_undecodable = st.journal.undecodable();
    if let Some(first) = journal_undecodable.first() {
        alert(
            "journal.undecodable",
            "error",
            st.journal.path().display().to_string(),
            format!(
                "{} journal row(s) do not decode and are left out of the queues, e.g. {first}; \
                 restore the journal from backup or run the version of evidock that wrote it",
                journal_undecodable.len()
            ),
        );
    }
    // What a run cut off left for the next one to finish (cases/disposal.rs,
    // export/scratch.rs); not while such a run holds its turn.
    let left = |dir: &str, ours: fn(&str) -> bool| -> usize {
        let dir = st.data_dir.join(dir);
        let running = std::fs::File::open(dir.join(".lock"))
            .is_ok_and(|f| matches!(f.try_lock(), Err(std::fs::TryLockError::WouldBlock)));
        if running {
            return 0;
        }
        fs_err::read_dir(&dir)
            .into_iter()
            .flatten()
            .flatten()
            .filter(|e| e.file_name().to_str().is_some_and(ours))
            .count()
    };
    let disposing = left("disposing", |n| !n.starts_with('.'));
    if disposing > 0 {
        alert(
            "disposal.unfinished",
            "warning",
            st.data_dir.join("disposing").display().to_string(),
            format!(
                "{disposing} disposal(s) cut off around their `disposed` event: copies may remain; \
                 `evidock retention dispose --all-due --by … --reason …` finishes them first"
            ),
        );
    }
    let exports = left("exports", |n| {
        n.ends_with(".scratch") || n.ends_with(".zip-scratch")
    });
    if exports > 0 {
        alert(
            "export.unfinished",
            "warning",
            st.data_dir.join("exports").display().to_string(),
            format!(
                "{exports} export(s) cut off before their package was released: export the same \
                 case to the same --out again (it is released if its `exported` event was logged)"
            ),
        );
    }
    if let Some(e) = retrying {
        alert(
            "store.unreachable",
            "warning",
            st.store.url().to_string(),
            format!("uploads are retrying: {e}"),
        );
    }
    if q.failed > 0 {
        alert(
            "upload.failed",
            "error",
            st.store.url().to_string(),
            format!(
                "{} upload(s) failed permanently, e.g. {}; fix the cause, then `evidock upload --retry-failed`",
                q.failed,
                failed_msgs.first().cloned().unwrap_or_default()
            ),
        );
    }
    if without_token > 1 {
        alert(
            "tsa.unreachable",
            "warning",
            st.settings
                .tsa
                .as_ref()
                .map(crate::config::TsaSettings::url_for_display)
                .unwrap_or_default(),
            format!("{without_token} checkpoint(s) wait for an RFC 3161 token"),
        );
    }
    if !waiting.is_empty() {
        alert(
            "evidence.not-uploaded-24h",
            "warning",
            format!("{} item(s)", waiting.len()),
            format!(
                "evidence waiting more than 24 h for upload (oldest {} h)",
                waiting.iter().map(|(_, h)| *h).max().unwrap_or(0)
            ),
        );
    }
    for (device, n) in failing.iter().filter(|(_, n)| **n >= 3) {
        alert(
            "camera.failing",
            "warning",
            device.clone(),
            format!("{n} failed sessions in 24 h: check the camera, its cable and dock slot"),
        );
    }
    Ok(Report {
        station: st.id().to_string(),
        time: now,
        time_source: match &st.settings.tsa {
            Some(t) => format!("trusted time from {}", t.url_for_display()),
            None => "local time only (no TSA configured)".into(),
        },
        live: slots.is_some(),
        slots: slots.unwrap_or_default(),
        uploads: q,
        transcode_backlog,
        checkpoints_without_token: without_token,
        recent_events: recent,
        waiting_over_24h: waiting,
        disk,
        totals,
        alerts,
        journal_undecodable,
    })
}
