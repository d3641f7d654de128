//! `evidock status`: what the dock is doing, in a terminal — from the running dock's API when
//! it answers, else from the station's own state (without the live slots).

use super::Ctx;
use crate::exit;
use crate::status::{self, Report};

pub fn run(ctx: &Ctx) -> anyhow::Result<u8> {
    let st = ctx.station()?;
    let live = if st.settings.status.enabled {
        status::http::fetch(&st.settings.status, "/api/status")
            .ok()
            .and_then(|body| serde_json::from_str::<Report>(&body).ok())
            // Another station's dock on the same address is not this one.
            .filter(|r| r.station == st.id().as_str())
    } else {
        None
    };
    let r = match live {
        Some(r) => r,
        None => status::report(&st, &st.settings.status, None)?,
    };
    if ctx.json {
        ctx.print_json(&r)?;
    } else {
        print(&r);
    }
    Ok(if r.alerts.iter().any(|a| a.level == "error") {
        exit::FINDINGS
    } else {
        exit::OK
    })
}

fn mib(b: u64) -> String {
    format!("{:.1} MiB", b as f64 / 1048576.0)
}

fn print(r: &Report) {
    println!(
        "station {} — {} — {}",
        r.station,
        r.time_source,
        if r.live {
            "dock running"
        } else {
            "dock not running (no live slots)"
        }
    );
    for a in &r.alerts {
        println!(
            "ALERT {:<7} {:<26} {}: {}",
            a.level, a.code, a.subject, a.message
        );
    }
    if r.live && r.slots.is_empty() {
        println!("no camera docked");
    }
    for s in &r.slots {
        let pct = (s.progress.bytes_done * 100)
            .checked_div(s.progress.bytes_total)
            .unwrap_or(0);
        println!(
            "slot {:<14} {:<10} {:<8} {:<16} {:>3}%  {}/{} files  {} / {}  {}/s  ETA {}{}",
            s.slot,
            s.progress.serial.as_deref().unwrap_or("?"),
            s.progress.officer.as_deref().unwrap_or("-"),
            if s.docked {
                serde_json::to_value(s.progress.state)
                    .ok()
                    .and_then(|v| v.as_str().map(str::to_string))
                    .unwrap_or_default()
            } else {
                "undocked".into()
            },
            pct,
            s.progress.files_done,
            s.progress.files_total,
            mib(s.progress.bytes_done),
            mib(s.progress.bytes_total),
            mib(s.progress.bytes_per_sec),
            s.progress
                .eta_secs
                .map(|e| format!("{e}s"))
                .unwrap_or("-".into()),
            s.progress
                .message
                .as_deref()
                .map(|m| format!("  {m}"))
                .unwrap_or_default()
        );
    }
    let q = &r.uploads;
    println!(
        "uploads: {} pending ({}), {} uploading, {} failed, {} uploaded; oldest waiting {}",
        q.pending,
        mib(q.bytes_waiting),
        q.uploading,
        q.failed,
        q.uploaded,
        q.oldest_waiting_secs
            .map(|s| format!("{s} s"))
            .unwrap_or("-".into())
    );
    println!(
        "transcode backlog: {}; checkpoints waiting for a token: {}",
        r.transcode_backlog, r.checkpoints_without_token
    );
    println!(
        "spool disk {}: {} free of {}",
        r.disk.path.display(),
        mib(r.disk.free_bytes),
        mib(r.disk.total_bytes)
    );
    for (e, h) in &r.waiting_over_24h {
        println!("not uploaded after 24 h: {e} ({h} h)");
    }
    for e in r.recent_events.iter().take(8) {
        println!(
            "  #{:<6} {}  {:<18} {} by {}",
            e.seq, e.time, e.kind, e.subject, e.actor
        );
    }
}
