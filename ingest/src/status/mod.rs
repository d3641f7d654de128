//! What the station is doing, for the people around it: the status report behind the status
//! page, `/api/status`, `/metrics` and `evidock status`, and the alerts an admin must act on.
//!
//! Read-only: nothing here changes evidence or station state. The report is built from the
//! journal, the custody log, the spool disk and (in the dock) the live slots.

pub mod http;
pub mod page;

use crate::dock::daemon::SlotView;
use crate::journal::UploadState;
use crate::station::Station;
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::path::PathBuf;

/// `[status]`: the status page and API of `evidock dock`.
#[derive(Debug, Clone, serde::Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct StatusSection {
    #[serde(default = "default_true")]
    pub enabled: bool,
    /// Address to serve on. Anything but a loopback address needs `token_file`.
    #[serde(default = "default_listen")]
    pub listen: String,
    /// A file holding the access token (mode 0600), required as `Authorization: Bearer …` or
    /// `?token=…`.
    #[serde(default)]
    pub token_file: Option<PathBuf>,
}

impl Default for StatusSection {
    fn default() -> Self {
        StatusSection {
            enabled: true,
            listen: default_listen(),
            token_file: None,
        }
    }
}

fn default_true() -> bool {
    true
}
fn default_listen() -> String {
    "127.0.0.1:8470".into()
}

/// `[alerts]`: when to warn, and the command that carries alerts to people.
#[derive(Debug, Clone, serde::Serialize, Deserialize, Default)]
#[serde(deny_unknown_fields)]
pub struct AlertsSection {
    /// A command run once when an alert appears (argv; the alert as JSON on stdin and in
    /// EVIDOCK_ALERT_CODE / _LEVEL / _SUBJECT / _MESSAGE), e.g. the agency's SMS gateway client.
    #[serde(default)]
    pub hook: Vec<String>,
    /// Warn when the spool disk has less free space than this, percent (default 10).
    #[serde(default)]
    pub spool_free_percent: Option<u8>,
    /// How often the dock looks for alerts, seconds (default 30).
    #[serde(default)]
    pub interval_secs: Option<u64>,
}

/// Validated `[status]` and `[alerts]`.
#[derive(Debug, Clone)]
pub struct StatusSettings {
    pub enabled: bool,
    pub listen: SocketAddr,
    pub token: Option<String>,
    pub hook: Vec<String>,
    pub spool_free_percent: u8,
    pub alert_interval: std::time::Duration,
}

impl Default for StatusSettings {
    fn default() -> Self {
        StatusSettings {
            enabled: true,
            listen: SocketAddr::from(([127, 0, 0, 1], 8470)),
            token: None,
            hook: Vec::new(),
            spool_free_percent: 10,
            alert_interval: std::time::Duration::from_secs(30),
        }
    }
}

impl StatusSection {
    pub fn validate(
        self,
        alerts: AlertsSection,
        base: &std::path::Path,
    ) -> Result<StatusSettings, (String, String)> {
        let listen: SocketAddr = self.listen.parse().map_err(|e| {
            (
                "status.listen".to_string(),
                format!("{:?}: {e} (e.g. 127.0.0.1:8470)", self.listen),
            )
        })?;
        let token = match self.token_file {
            None => None,
            Some(f) => {
                let f = if f.is_absolute() { f } else { base.join(f) };
                use std::os::unix::fs::PermissionsExt as _;
                let meta = std::fs::metadata(&f).map_err(|e| {
                    (
                        "status.token_file".to_string(),
                        format!("{}: {e}", f.display()),
                    )
                })?;
                if meta.permissions().mode() & 0o077 != 0 {
                    return Err((
                        "status.token_file".into(),
                        format!("{} is readable by others: chmod 600 it", f.display()),
                    ));
                }
                let t = std::fs::read_to_string(&f)
                    .map_err(|e| {
                        (
                            "status.token_file".to_string(),
                            format!("{}: {e}", f.display()),
                        )
                    })?
                    .trim()
                    .to_string();
                if t.len() < 16 {
                    return Err((
                        "status.token_file".into(),
                        "the token must be at least 16 characters".into(),
                    ));
                }
                Some(t)
            }
        };
        if !listen.ip().is_loopback() && token.is_none() {
            return Err((
                "status.listen".into(),
                format!("{listen} is reachable from other machines: set status.token_file too"),
            ));
        }
        let spool_free_percent = alerts.spool_free_percent.unwrap_or(10);
        if spool_free_percent > 90 {
            return Err(("alerts.spool_free_percent".into(), "at most 90".into()));
        }
        let interval = alerts.interval_secs.unwrap_or(30);
        if interval == 0 {
            return Err(("alerts.interval_secs".into(), "at least 1".into()));
        }
        Ok(StatusSettings {
            enabled: self.enabled,
            listen,
            token,
            hook: alerts.hook,
            spool_free_percent,
            alert_interval: std::time::Duration::from_secs(interval),
        })
    }
}

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
    let uploads = st.journal.uploads()?;
    let mut q = Queue::default();
    let mut waiting = Vec::new();
    let mut retrying: Option<String> = None;
    let mut failed_msgs = Vec::new();
    for u in &uploads {
        match u.state {
            UploadState::Uploaded => q.uploaded += 1,
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
    let sessions = st.journal.sessions()?;
    let mut totals = Totals {
        sessions: sessions.len() as u64,
        ..Totals::default()
    };
    let mut failing: BTreeMap<String, u64> = BTreeMap::new();
    for s in &sessions {
        totals.files_acquired += s.files;
        totals.bytes_acquired += s.bytes;
        totals.files_failed += s.failed;
        match s.state {
            crate::journal::SessionState::Failed => {
                totals.sessions_failed += 1;
                if (now - s.docked_at).num_hours() < 24 {
                    *failing.entry(s.device.as_str().to_string()).or_default() += 1;
                }
            }
            crate::journal::SessionState::Refused => totals.sessions_refused += 1,
            _ => {}
        }
    }
    totals.uploaded_bytes = uploads
        .iter()
        .filter(|u| u.state == UploadState::Uploaded)
        .map(|u| u.size)
        .sum();

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
    // the same states give the backlog.
    let transcode_states = st.journal.transcode_states()?;
    totals.transcode_failed = transcode_states
        .values()
        .filter(|s| **s == crate::transcode::TranscodeState::Failed)
        .count() as u64;
    let transcode_backlog = if st.settings.transcode.enabled {
        st.journal
            .evidence()
            .map(|all| crate::transcode::backlog(all, &transcode_states).len() as u64)
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
        std::fs::read_dir(&dir)
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
                .map(|t| t.url.clone())
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
            Some(t) => format!("trusted time from {}", t.url),
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

/// The report in the Prometheus text format (version 0.0.4).
pub fn metrics(r: &Report) -> String {
    let mut m = String::new();
    let mut g = |name: &str, help: &str, kind: &str, samples: Vec<(String, f64)>| {
        m.push_str(&format!("# HELP {name} {help}\n# TYPE {name} {kind}\n"));
        for (labels, v) in samples {
            m.push_str(&format!("{name}{labels} {v}\n"));
        }
    };
    let t = &r.totals;
    g(
        "evidock_acquired_files_total",
        "Files acquired from cameras.",
        "counter",
        vec![(String::new(), t.files_acquired as f64)],
    );
    g(
        "evidock_acquired_bytes_total",
        "Bytes acquired from cameras.",
        "counter",
        vec![(String::new(), t.bytes_acquired as f64)],
    );
    g(
        "evidock_errors_total",
        "Failures by kind.",
        "counter",
        vec![
            ("{kind=\"file\"}".into(), t.files_failed as f64),
            ("{kind=\"session\"}".into(), t.sessions_failed as f64),
            ("{kind=\"refused\"}".into(), t.sessions_refused as f64),
            ("{kind=\"upload\"}".into(), r.uploads.failed as f64),
            ("{kind=\"transcode\"}".into(), t.transcode_failed as f64),
        ],
    );
    g(
        "evidock_upload_queue",
        "Objects in the upload queue by state.",
        "gauge",
        vec![
            ("{state=\"pending\"}".into(), r.uploads.pending as f64),
            ("{state=\"uploading\"}".into(), r.uploads.uploading as f64),
            ("{state=\"failed\"}".into(), r.uploads.failed as f64),
        ],
    );
    let mut by_table = std::collections::BTreeMap::<&str, u64>::new();
    for u in &r.journal_undecodable {
        *by_table.entry(&u.table).or_default() += 1;
    }
    g(
        "evidock_journal_undecodable_rows",
        "Journal rows that do not decode, by table (left out until repaired).",
        "gauge",
        if by_table.is_empty() {
            vec![("{table=\"uploads\"}".into(), 0.0)]
        } else {
            by_table
                .into_iter()
                .map(|(t, n)| (format!("{{table=\"{t}\"}}"), n as f64))
                .collect()
        },
    );
    g(
        "evidock_upload_waiting_bytes",
        "Bytes waiting to upload.",
        "gauge",
        vec![(String::new(), r.uploads.bytes_waiting as f64)],
    );
    g(
        "evidock_uploaded_bytes_total",
        "Bytes uploaded and read back.",
        "counter",
        vec![(String::new(), t.uploaded_bytes as f64)],
    );
    g(
        "evidock_oldest_unuploaded_seconds",
        "Age of the oldest object waiting to upload.",
        "gauge",
        vec![(
            String::new(),
            r.uploads.oldest_waiting_secs.unwrap_or(0) as f64,
        )],
    );
    g(
        "evidock_transcode_backlog",
        "Recordings waiting for playback copies.",
        "gauge",
        vec![(String::new(), r.transcode_backlog as f64)],
    );
    g(
        "evidock_checkpoints_without_token",
        "Checkpoints waiting for an RFC 3161 token.",
        "gauge",
        vec![(String::new(), r.checkpoints_without_token as f64)],
    );
    g(
        "evidock_spool_free_bytes",
        "Free space on the spool disk.",
        "gauge",
        vec![(String::new(), r.disk.free_bytes as f64)],
    );
    g(
        "evidock_docked_cameras",
        "Cameras in the dock now.",
        "gauge",
        vec![(
            String::new(),
            r.slots.iter().filter(|s| s.docked).count() as f64,
        )],
    );
    let mut by_code: BTreeMap<&str, u64> = BTreeMap::new();
    for a in &r.alerts {
        *by_code.entry(a.code.as_str()).or_default() += 1;
    }
    g(
        "evidock_alerts",
        "Alerts an admin must act on, by code.",
        "gauge",
        by_code
            .into_iter()
            .map(|(c, n)| (format!("{{code=\"{c}\"}}"), n as f64))
            .collect(),
    );
    m
}

/// Run the hook for each alert not seen in `seen`; forget alerts that went away.
pub fn notify(
    hook: &[String],
    alerts: &[Alert],
    seen: &mut std::collections::BTreeSet<(String, String)>,
) {
    let now: std::collections::BTreeSet<(String, String)> = alerts
        .iter()
        .map(|a| (a.code.clone(), a.subject.clone()))
        .collect();
    for a in alerts {
        let k = (a.code.clone(), a.subject.clone());
        if seen.contains(&k) {
            continue;
        }
        tracing::warn!(code = %a.code, subject = %a.subject, message = %a.message, "alert");
        if let Some((cmd, args)) = hook.split_first() {
            use std::io::Write as _;
            let child = std::process::Command::new(cmd)
                .args(args)
                .env("EVIDOCK_ALERT_CODE", &a.code)
                .env("EVIDOCK_ALERT_LEVEL", &a.level)
                .env("EVIDOCK_ALERT_SUBJECT", &a.subject)
                .env("EVIDOCK_ALERT_MESSAGE", &a.message)
                .stdin(std::process::Stdio::piped())
                .spawn();
            match child {
                Ok(mut c) => {
                    if let Some(mut i) = c.stdin.take() {
                        let _ =
                            i.write_all(serde_json::to_string(a).unwrap_or_default().as_bytes());
                    }
                    match c.wait() {
                        Ok(s) if s.success() => {}
                        Ok(s) => tracing::error!(hook = %cmd, status = %s, "alert hook failed"),
                        Err(e) => tracing::error!(hook = %cmd, error = %e, "alert hook failed"),
                    }
                }
                Err(e) => tracing::error!(hook = %cmd, error = %e, "alert hook cannot be started"),
            }
        }
    }
    *seen = now;
}
