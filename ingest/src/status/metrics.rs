//! The report as Prometheus text (`/metrics`).

use super::Report;
use std::collections::BTreeMap;

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
