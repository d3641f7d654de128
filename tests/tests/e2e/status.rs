//! The dock's status page, JSON API, metrics and alerts: the real `evidock dock` with a
//! throttled simulated camera, read over HTTP, and the page rendered by headless Chromium
//! (Debian `chromium`) in both languages; a screenshot is kept in target/test-artifacts/.
// Test helpers panic on purpose: a failed expectation is a failed test.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use evidock_tests::station::{self, TestStation, of_kind};
use serde_json::Value;
use std::io::{Read as _, Write as _};
use std::path::Path;
use std::process::Command;

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// (status line, body) of `GET path`.
fn get(port: u16, path: &str, auth: Option<&str>) -> Option<(String, String)> {
    let mut s = std::net::TcpStream::connect(("127.0.0.1", port)).ok()?;
    let auth = auth
        .map(|t| format!("Authorization: Bearer {t}\r\n"))
        .unwrap_or_default();
    write!(
        s,
        "GET {path} HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\n{auth}Connection: close\r\n\r\n"
    )
    .ok()?;
    let mut out = String::new();
    s.read_to_string(&mut out).ok()?;
    let (head, body) = out.split_once("\r\n\r\n")?;
    Some((head.lines().next()?.to_string(), body.to_string()))
}

fn status(port: u16) -> Option<Value> {
    let (line, body) = get(port, "/api/status", None)?;
    line.contains("200")
        .then(|| serde_json::from_str(&body).ok())
        .flatten()
}

fn chromium() -> Option<&'static str> {
    ["chromium", "chromium-browser"].into_iter().find(|c| {
        Command::new(c)
            .arg("--version")
            .output()
            .is_ok_and(|o| o.status.success())
    })
}

fn render(browser: &str, url: &str, shot: Option<&Path>) -> String {
    let profile = tempfile::tempdir().unwrap();
    let mut c = Command::new(browser);
    c.args([
        "--headless=new",
        "--no-sandbox",
        "--disable-gpu",
        "--disable-dev-shm-usage",
        "--no-first-run",
        "--window-size=1280,900",
        "--virtual-time-budget=8000",
    ])
    .arg(format!("--user-data-dir={}", profile.path().display()));
    match shot {
        Some(p) => c.arg(format!("--screenshot={}", p.display())),
        None => c.arg("--dump-dom"),
    };
    let out = c.arg(url).output().unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

#[test]
fn status_page_api_metrics_and_alerts_follow_a_docked_camera() {
    let port = free_port();
    let dir = tempfile::tempdir().unwrap();
    let hook_out = dir.path().join("alerts.jsonl");
    let creds = dir.path().join("s3.toml");
    std::fs::write(&creds, "access_key_id = \"x\"\nsecret_access_key = \"y\"\n").unwrap();
    use std::os::unix::fs::PermissionsExt as _;
    std::fs::set_permissions(&creds, std::fs::Permissions::from_mode(0o600)).unwrap();
    // An evidence store nobody answers at: uploads retry, and the admin is alerted.
    let st = TestStation::with_config(&format!(
        "station_id = \"dock-07\"\n[status]\nlisten = \"127.0.0.1:{port}\"\n[alerts]\ninterval_secs = 1\nhook = [\"sh\", \"-c\", \"cat >> {}; echo >> {}\"]\n[store]\nurl = \"s3://evidence/x\"\nendpoint = \"http://127.0.0.1:9\"\nregion = \"us-east-1\"\nallow_http = true\ncredentials_file = \"{}\"\n[[camera]]\nname = \"sim\"\ndriver = \"zfy-sim\"\nallow = [\"*\"]\n",
        hook_out.display(),
        hook_out.display(),
        creds.display()
    ));
    let dock = st.start_dock();
    st.wait_for(20, "the status API", || status(port).is_some());
    let r = status(port).unwrap();
    assert_eq!(r["station"], "dock-07");
    assert_eq!(r["live"], true);
    assert!(
        r["time_source"]
            .as_str()
            .unwrap()
            .contains("local time only")
    );

    let mut fw = station::firmware("ZFY0907", "350907");
    fw.read_bytes_per_sec = 3_000_000;
    let files = station::recordings(&fw, 3, 3_000_000, 9);
    let card = station::camera(st.dir.path(), fw, files);
    station::dock(&card, &st.mount_root(), "slot-3");
    let mut last = Value::Null;
    let copying = |last: &mut Value| {
        let Some(r) = status(port) else { return false };
        *last = r.clone();
        r["slots"].as_array().unwrap().iter().any(|s| {
            s["serial"] == "ZFY0907"
                && s["state"] == "copying"
                && s["bytes_total"].as_u64().unwrap_or(0) >= 9_000_000
        })
    };
    let t0 = std::time::Instant::now();
    while !copying(&mut last) {
        assert!(
            t0.elapsed().as_secs() < 30,
            "no copying tile: {last:#}\n{}",
            st.dock_log()
        );
        std::thread::sleep(std::time::Duration::from_millis(100));
    }
    st.wait_for(60, "safe to undock", || {
        status(port).is_some_and(|r| {
            r["slots"]
                .as_array()
                .unwrap()
                .iter()
                .any(|s| s["serial"] == "ZFY0907" && s["state"] == "safe-to-undock")
        })
    });
    // The uploads cannot reach the store: queued, retried, alerted (through the hook too).
    st.wait_for(60, "the store alert", || {
        std::fs::read_to_string(&hook_out).is_ok_and(|t| t.contains("store.unreachable"))
    });
    let r = status(port).unwrap();
    assert!(r["uploads"]["pending"].as_u64().unwrap() >= 3, "{r:#}");
    assert!(
        r["recent_events"]
            .as_array()
            .unwrap()
            .iter()
            .any(|e| e["kind"] == "released")
    );

    let (line, metrics) = get(port, "/metrics", None).unwrap();
    assert!(line.contains("200"));
    assert!(
        metrics.contains("evidock_acquired_files_total 4"),
        "three recordings and the card marker: {metrics}"
    );
    assert!(metrics.contains("evidock_upload_queue{state=\"pending\"}"));
    st.wait_for(30, "the store alert in /metrics", || {
        get(port, "/metrics", None)
            .is_some_and(|(_, m)| m.contains("evidock_alerts{code=\"store.unreachable\"} 1"))
    });
    let (line, _) = get(port, "/nowhere", None).unwrap();
    assert!(line.contains("404"));

    // `evidock status` reads the running dock.
    let out = st.json(&["status"]);
    assert_eq!(out["live"], true);
    assert_eq!(out["slots"][0]["serial"], "ZFY0907");
    let text = st.run(&["status"]);
    assert!(text.stdout.contains("ZFY0907"), "{}", text.stdout);
    assert!(text.stdout.contains("store.unreachable"), "{}", text.stdout);

    // The page, in a real browser, in both languages.
    let Some(browser) = chromium() else {
        panic!("chromium not installed (scripts/deps.sh test installs it)");
    };
    let url = format!("http://127.0.0.1:{port}/");
    let en = render(browser, &format!("{url}?lang=en"), None);
    assert!(en.contains("Safe to undock"), "{en}");
    assert!(en.contains("ZFY0907"));
    assert!(en.contains("store.unreachable"));
    let zh = render(browser, &format!("{url}?lang=zh"), None);
    assert!(zh.contains("可以拔出"), "{zh}");
    let artifacts = Path::new(env!("CARGO_MANIFEST_DIR")).join("../target/test-artifacts");
    std::fs::create_dir_all(&artifacts).unwrap();
    let shot = artifacts.join("status-page.png");
    let _ = std::fs::remove_file(&shot);
    render(browser, &format!("{url}?lang=zh"), Some(&shot));
    assert!(
        std::fs::metadata(&shot).unwrap().len() > 10_000,
        "screenshot"
    );
    station::stop(dock);
}

#[test]
fn a_status_page_reachable_from_other_machines_needs_a_token() {
    let st = TestStation::new();
    let cfg = st.dir.path().join("open.toml");
    std::fs::write(&cfg, "[status]\nlisten = \"0.0.0.0:8470\"\n").unwrap();
    let ran = st.run(&["config", "check", cfg.to_str().unwrap()]);
    assert_eq!(ran.code, 2);
    assert!(ran.stderr.contains("`status.listen`"), "{}", ran.stderr);

    let port = free_port();
    let token = st.dir.path().join("token");
    std::fs::write(&token, "s3cr3t-t0ken-for-the-status-page\n").unwrap();
    use std::os::unix::fs::PermissionsExt as _;
    std::fs::set_permissions(&token, std::fs::Permissions::from_mode(0o600)).unwrap();
    let st = TestStation::with_config(&format!(
        "[status]\nlisten = \"127.0.0.1:{port}\"\ntoken_file = \"{}\"\n",
        token.display()
    ));
    let dock = st.start_dock();
    st.wait_for(20, "the status server", || get(port, "/", None).is_some());
    let (line, _) = get(port, "/api/status", None).unwrap();
    assert!(line.contains("401"), "{line}");
    let (line, _) = get(port, "/api/status", Some("wrong-token-wrong-token")).unwrap();
    assert!(line.contains("401"));
    let (line, body) = get(
        port,
        "/api/status",
        Some("s3cr3t-t0ken-for-the-status-page"),
    )
    .unwrap();
    assert!(line.contains("200"), "{line}");
    assert!(body.contains("\"live\":true"));
    // Not in the query string, where it leaks into logs, history and Referer: as if absent.
    let (line, _) = get(
        port,
        "/api/status?token=s3cr3t-t0ken-for-the-status-page",
        None,
    )
    .unwrap();
    assert!(line.contains("401"), "{line}");
    station::stop(dock);
}

#[test]
fn a_journal_row_that_does_not_decode_is_an_alert_and_the_other_uploads_go_on() {
    let st = TestStation::with_config(
        "[[camera]]\nname = \"sim\"\ndriver = \"zfy-sim\"\nallow = [\"*\"]\n",
    );
    let fw = station::firmware("ZFY0911", "350911");
    let files = station::recordings(&fw, 3, 20_000, 11);
    let card = station::camera(st.dir.path(), fw, files);
    assert_eq!(
        st.json(&["ingest", card.to_str().unwrap(), "--no-upload"])["outcome"],
        "released"
    );
    // Damage one queued upload (as a disk error or a newer evidock would): its digest.
    let db = rusqlite::Connection::open(st.data().join("journal.db")).unwrap();
    let damaged: String = db
        .query_row(
            "SELECT evidence FROM uploads WHERE role = 'original' ORDER BY evidence LIMIT 1",
            [],
            |r| r.get(0),
        )
        .unwrap();
    db.execute(
        "UPDATE uploads SET sha256 = 'zz' WHERE evidence = ?1 AND role = 'original'",
        [&damaged],
    )
    .unwrap();
    drop(db);

    let up = st.json(&["upload"]);
    assert_eq!(up["failed"].as_array().unwrap().len(), 0, "{up:#}");
    let uploaded: Vec<_> = of_kind(&st.events(), "uploaded")
        .into_iter()
        .filter(|e| e["payload"]["role"] == "original")
        .map(|e| {
            e["subject"]["evidence"]
                .as_str()
                .unwrap_or_default()
                .to_string()
        })
        .collect();
    assert_eq!(
        uploaded.len(),
        3,
        "the other two recordings and the card marker went on"
    );
    assert!(!uploaded.contains(&damaged));

    let r = st.json(&["status"]);
    let alert = r["alerts"]
        .as_array()
        .unwrap()
        .iter()
        .find(|a| a["code"] == "journal.undecodable")
        .unwrap_or_else(|| panic!("no journal.undecodable alert: {r:#}"));
    assert_eq!(alert["level"], "error");
    assert!(
        alert["message"].as_str().unwrap().contains(&damaged),
        "{alert:#}"
    );
    assert_eq!(r["journal_undecodable"][0]["table"], "uploads");
}

/// A disposal or an export that a crash cut off is an alert until a later run finishes it.
#[test]
fn work_a_cut_off_run_left_is_an_alert() {
    let st = TestStation::with_config(
        "[[camera]]\nname = \"sim\"\ndriver = \"zfy-sim\"\nallow = [\"*\"]\n",
    );
    let codes = || -> Vec<String> {
        st.json(&["status"])["alerts"]
            .as_array()
            .unwrap()
            .iter()
            .map(|a| a["code"].as_str().unwrap_or_default().to_string())
            .collect()
    };
    let before = codes();
    assert!(
        !before.iter().any(|c| c.ends_with(".unfinished")),
        "{before:?}"
    );
    // What disposal.rs and export/scratch.rs leave when they are killed mid-way.
    std::fs::create_dir_all(st.data().join("disposing")).unwrap();
    std::fs::write(
        st.data().join("disposing/ev-0123456789abcdef0123"),
        "ev-0123456789abcdef0123",
    )
    .unwrap();
    std::fs::create_dir_all(st.data().join("exports")).unwrap();
    std::fs::write(
        st.data()
            .join("exports/0123456789abcdef0123456789abcdef.scratch"),
        ".evidock-export-0123456789abcdef.partial",
    )
    .unwrap();
    let after = codes();
    for c in ["disposal.unfinished", "export.unfinished"] {
        assert!(after.iter().any(|a| a == c), "no {c}: {after:?}");
    }
}
