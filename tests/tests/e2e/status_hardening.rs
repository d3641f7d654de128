//! Attacks on the status server of `evidock dock` and on what the station shows: a HEAD that
//! must not carry a body, a token in the query string, a web page reaching the loopback server
//! by DNS rebinding (a foreign `Host`), idle connections that would take every file descriptor
//! of the process that reads cameras, and credentials in the TSA URL, the store's credentials
//! file and the status token that must never be printed or served.
// Test helpers panic on purpose: a failed expectation is a failed test.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use evidock_tests::http::{self, Answer, free_port, open_fds, request};
use evidock_tests::station::{self, TestStation};
use std::os::unix::fs::PermissionsExt as _;
use std::time::{Duration, Instant};

const TOKEN: &str = "s3cr3t-t0ken-for-the-status-page";

/// A dock serving its status page on `port` with this extra configuration.
fn dock_on(port: u16, extra: &str) -> (TestStation, station::DockProcess) {
    let st = TestStation::with_config(&format!("[status]\nlisten = \"127.0.0.1:{port}\"\n{extra}"));
    let dock = st.start_dock();
    st.wait_for(20, "the status server", || {
        request(port, "GET", "/", &[]).is_some()
    });
    (st, dock)
}

fn token_file(dir: &std::path::Path) -> std::path::PathBuf {
    let f = dir.join("token");
    std::fs::write(&f, format!("{TOKEN}\n")).unwrap();
    std::fs::set_permissions(&f, std::fs::Permissions::from_mode(0o600)).unwrap();
    f
}

#[test]
fn head_answers_with_the_headers_of_get_and_no_body() {
    let port = free_port();
    let (_st, dock) = dock_on(port, "");
    for path in ["/", "/api/status", "/metrics"] {
        let get = request(port, "GET", path, &[]).unwrap();
        assert_eq!(get.code(), 200, "GET {path}: {}", get.status_line);
        assert!(!get.body.is_empty(), "GET {path} has a body");
        let head = request(port, "HEAD", path, &[]).unwrap();
        assert_eq!(head.code(), 200, "HEAD {path}: {}", head.status_line);
        assert!(
            head.body.is_empty(),
            "HEAD {path} sent {} body bytes: {:?}",
            head.body.len(),
            String::from_utf8_lossy(&head.body[..head.body.len().min(80)])
        );
        assert_eq!(head.header("content-type"), get.header("content-type"));
        let length = head
            .header("content-length")
            .unwrap_or_else(|| panic!("HEAD {path} without Content-Length: {head:?}"));
        if path == "/" {
            // The page is the same bytes every time; the report changes with the clock.
            assert_eq!(length, get.body.len().to_string());
        } else {
            assert!(length.parse::<u64>().unwrap() > 0);
        }
    }
    for method in ["POST", "PUT", "DELETE", "PATCH"] {
        let a = request(port, method, "/api/status", &["Content-Length: 0"]).unwrap();
        assert_eq!(a.code(), 405, "{method}: {}", a.status_line);
    }
    station::stop(dock);
}

#[test]
fn the_token_comes_from_a_header_or_a_cookie_never_from_the_query() {
    let port = free_port();
    let dir = tempfile::tempdir().unwrap();
    let (st, dock) = dock_on(
        port,
        &format!("token_file = \"{}\"\n", token_file(dir.path()).display()),
    );
    let code = |path: &str, headers: &[&str]| request(port, "GET", path, headers).unwrap().code();
    // In the query string it leaks into logs, history and Referer: as if there were none.
    assert_eq!(code(&format!("/api/status?token={TOKEN}"), &[]), 401);
    assert_eq!(code(&format!("/?token={TOKEN}"), &[]), 401);
    assert_eq!(code(&format!("/metrics?token={TOKEN}"), &[]), 401);
    // The header and the cookie.
    let bearer = format!("Authorization: Bearer {TOKEN}");
    assert_eq!(code("/api/status", &[&bearer]), 200);
    assert_eq!(code("/metrics", &[&bearer]), 200);
    let cookie = format!("Cookie: lang=zh; evidock_status={TOKEN}");
    assert_eq!(code("/api/status", &[&cookie]), 200);
    assert_eq!(code("/", &[&cookie]), 200);
    assert_eq!(code("/api/status", &["Cookie: evidock_status=wrong"]), 401);
    assert_eq!(
        code("/api/status", &[&format!("Cookie: other={TOKEN}")]),
        401
    );
    assert_eq!(
        code("/api/status", &[&format!("Authorization: Basic {TOKEN}")]),
        401
    );
    // A browser gets the cookie by a login form (it cannot send the header when navigating).
    let page = request(port, "GET", "/", &["Accept: text/html"]).unwrap();
    assert_eq!(page.code(), 401);
    assert!(page.text().contains("<form"), "{}", page.text());
    let login = |token: &str| {
        let body = format!("token={token}");
        http::raw(
            port,
            &format!(
                "POST /login HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nContent-Type: application/x-www-form-urlencoded\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
                body.len()
            ),
        )
        .unwrap()
    };
    let wrong = login("wrong-token-wrong-token");
    assert_eq!(wrong.code(), 401, "{wrong:?}");
    assert!(wrong.header("set-cookie").is_none());
    let ok = login(TOKEN);
    assert_eq!(ok.code(), 303, "{ok:?}");
    let set = ok.header("set-cookie").unwrap();
    assert!(set.starts_with("evidock_status="), "{set}");
    assert!(
        set.contains("HttpOnly") && set.contains("SameSite=Strict"),
        "{set}"
    );
    let pair = set.split(';').next().unwrap();
    assert_eq!(code("/api/status", &[&format!("Cookie: {pair}")]), 200);

    station::stop(dock);
    assert!(!st.dock_log().contains(TOKEN), "{}", st.dock_log());
}

#[test]
fn a_foreign_host_is_refused_on_loopback() {
    let port = free_port();
    let (_st, dock) = dock_on(port, "");
    let with_host = |host: &str| {
        http::raw(
            port,
            &format!("GET /api/status HTTP/1.1\r\nHost: {host}\r\nConnection: close\r\n\r\n"),
        )
        .unwrap()
    };
    // A page of evil.example whose name now resolves to 127.0.0.1 sends its own name.
    for host in [
        "evil.example",
        &format!("evil.example:{port}"),
        "127.0.0.1.evil.example",
        "localhost.evil.example:8470",
    ] {
        let a = with_host(host);
        assert!(
            matches!(a.code(), 403 | 421),
            "Host {host}: {}",
            a.status_line
        );
        assert!(
            !a.text().contains("\"station\""),
            "Host {host}: {}",
            a.text()
        );
    }
    // The target's authority counts, not only the Host header.
    let a = http::raw(
        port,
        &format!(
            "GET http://evil.example/api/status HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nConnection: close\r\n\r\n"
        ),
    )
    .unwrap();
    assert!(matches!(a.code(), 403 | 421), "{}", a.status_line);
    for host in [
        format!("127.0.0.1:{port}"),
        format!("localhost:{port}"),
        "localhost".to_string(),
        "127.0.0.1".to_string(),
        format!("[::1]:{port}"),
        format!("LOCALHOST:{port}"),
    ] {
        let a = with_host(&host);
        assert_eq!(a.code(), 200, "Host {host}: {}", a.status_line);
    }
    station::stop(dock);
}

#[test]
fn idle_connections_cannot_take_the_docks_file_descriptors() {
    // The server's cap (ingest/src/status/http.rs) is 32 connections; a margin for the
    // files the dock itself opens and closes meanwhile (journal, log segments, inotify).
    const CAP: usize = 32;
    const MARGIN: usize = 24;
    const IDLE: usize = 400;
    let port = free_port();
    let (st, dock) = dock_on(port, "");
    let pid = dock.id();
    assert_eq!(
        request(port, "GET", "/api/status", &[]).unwrap().code(),
        200
    );
    let baseline = open_fds(pid);
    assert!(baseline > 0, "cannot read /proc/{pid}/fd");

    // Connections that send nothing at all.
    let idle: Vec<std::net::TcpStream> = (0..IDLE)
        .map(|_| std::net::TcpStream::connect(("127.0.0.1", port)).unwrap())
        .collect();
    for s in &idle {
        s.set_nonblocking(true).unwrap();
    }
    // Watch the dock's descriptors until the server has closed some of them for idling (it
    // accepted them, then gave up on their request head), and at least 3 s.
    let started = Instant::now();
    let mut most = 0;
    let mut closed_by_server = 0;
    while started.elapsed() < Duration::from_secs(120) {
        most = most.max(open_fds(pid));
        closed_by_server = idle
            .iter()
            .filter(|s| {
                // Closed (EOF or reset) or answered: anything but "nothing yet".
                let mut b = [0u8; 64];
                !matches!(std::io::Read::read(&mut &**s, &mut b),
                    Err(e) if e.kind() == std::io::ErrorKind::WouldBlock)
            })
            .count();
        if closed_by_server > 0 && started.elapsed() > Duration::from_secs(3) {
            break;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    assert!(
        most <= baseline + CAP + MARGIN,
        "the dock held {most} descriptors with {IDLE} idle connections (baseline {baseline}, cap {CAP})"
    );
    assert!(
        closed_by_server > 0,
        "no idle connection was closed by the server\n{}",
        st.dock_log()
    );
    assert!(
        most > baseline,
        "the server accepted none of the idle connections"
    );

    // Gone: the server serves again, and its descriptors come back down.
    drop(idle);
    st.wait_for(60, "a request served after the idle connections", || {
        request(port, "GET", "/api/status", &[]).is_some_and(|a: Answer| a.code() == 200)
    });
    st.wait_for(60, "the descriptors back to the baseline", || {
        open_fds(pid) <= baseline + MARGIN
    });
    station::stop(dock);
}

/// One TSA URL with a user, a password and a key in its query; the store's keys and the
/// status token: none of them may appear in anything the station shows.
#[test]
fn no_credential_is_ever_shown() {
    let st = TestStation::new();
    let dir = st.dir.path();
    let creds = dir.join("s3.toml");
    std::fs::write(
        &creds,
        "access_key_id = \"AKIDs3cr3tkeyid\"\nsecret_access_key = \"s3cr3t-secret-access-key\"\n",
    )
    .unwrap();
    std::fs::set_permissions(&creds, std::fs::Permissions::from_mode(0o600)).unwrap();
    let token = token_file(dir);
    let port = free_port();
    let secrets = [
        "tsa-user",
        "tsa-pa55word",
        "k3y-in-query",
        "AKIDs3cr3tkeyid",
        "s3cr3t-secret-access-key",
        TOKEN,
    ];
    let config = format!(
        "station_id = \"dock-09\"\n\
         [tsa]\nurl = \"https://tsa-user:tsa-pa55word@127.0.0.1:9/tsr?apikey=k3y-in-query\"\ntimeout_secs = 2\n\
         [status]\nlisten = \"127.0.0.1:{port}\"\ntoken_file = \"{}\"\n\
         [store]\nurl = \"s3://evidence/x\"\nendpoint = \"http://127.0.0.1:9\"\nregion = \"us-east-1\"\nallow_http = true\ncredentials_file = \"{}\"\n\
         [[camera]]\nname = \"sim\"\ndriver = \"zfy-sim\"\nallow = [\"*\"]\n",
        token.display(),
        creds.display()
    );
    let st = TestStation::with_config_in(dir, &config);
    let shown = |what: &str, text: &str| {
        for s in secrets {
            assert!(!text.contains(s), "{what} shows {s:?}:\n{text}");
        }
    };
    let cfg = st.config.clone().unwrap();
    let cfg = cfg.to_str().unwrap();

    let show = st.run(&["station", "show"]);
    assert_eq!(show.code, 0, "{}", show.stderr);
    assert!(show.stdout.contains("127.0.0.1:9/tsr"), "{}", show.stdout);
    shown("station show", &format!("{}{}", show.stdout, show.stderr));
    let show = st.run(&["station", "show", "--json"]);
    assert!(show.stdout.contains("127.0.0.1:9/tsr"), "{}", show.stdout);
    shown(
        "station show --json",
        &format!("{}{}", show.stdout, show.stderr),
    );
    for args in [
        &["config", "check", cfg][..],
        &["config", "check", cfg, "--json"][..],
    ] {
        let ran = st.run(args);
        assert_eq!(ran.code, 0, "{}", ran.stderr);
        shown(&args.join(" "), &format!("{}{}", ran.stdout, ran.stderr));
    }
    let check = st.run(&["config", "check", cfg]);
    assert!(check.stdout.contains("127.0.0.1:9/tsr"), "{}", check.stdout);
    // A TSA URL that is refused is not echoed whole either.
    let bad = dir.join("bad.toml");
    std::fs::write(
        &bad,
        "[tsa]\nurl = \"ftp://tsa-user:tsa-pa55word@127.0.0.1:9/tsr?apikey=k3y-in-query\"\n",
    )
    .unwrap();
    let ran = st.run(&["config", "check", bad.to_str().unwrap()]);
    assert_eq!(ran.code, 2, "{}", ran.stderr);
    assert!(ran.stderr.contains("`tsa.url`"), "{}", ran.stderr);
    shown("config check of a refused TSA URL", &ran.stderr);

    // Checkpoints that wait for a token from that TSA: an alert naming it.
    for (serial, seed) in [("ZFY0931", 31), ("ZFY0932", 32)] {
        let fw = station::firmware(serial, "350931");
        let files = station::recordings(&fw, 1, 20_000, seed);
        let card = station::camera(st.dir.path(), fw, files);
        let ran = st.run(&["ingest", card.to_str().unwrap(), "--no-upload"]);
        shown("ingest", &format!("{}{}", ran.stdout, ran.stderr));
    }
    let offline = st.run(&["status", "--json"]);
    shown("status --json", &offline.stdout);
    let r: serde_json::Value = serde_json::from_str(&offline.stdout).unwrap();
    assert!(
        r["alerts"]
            .as_array()
            .unwrap()
            .iter()
            .any(|a| a["code"] == "tsa.unreachable"),
        "no tsa.unreachable alert to check: {r:#}"
    );
    let text = st.run(&["status"]);
    assert!(text.stdout.contains("tsa.unreachable"), "{}", text.stdout);
    shown("status", &text.stdout);

    // The running dock: its page, API, metrics, `evidock status` through it, and its log.
    let dock = st.start_dock();
    let bearer = format!("Authorization: Bearer {TOKEN}");
    st.wait_for(20, "the status API", || {
        request(port, "GET", "/api/status", &[&bearer]).is_some_and(|a| a.code() == 200)
    });
    for path in ["/api/status", "/metrics", "/"] {
        let a = request(port, "GET", path, &[&bearer]).unwrap();
        assert_eq!(a.code(), 200, "{path}");
        shown(path, &a.text());
    }
    let api = request(port, "GET", "/api/status", &[&bearer])
        .unwrap()
        .text();
    assert!(api.contains("127.0.0.1:9/tsr"), "{api}");
    let live = st.run(&["status", "--json"]);
    assert!(live.stdout.contains("\"live\": true") || live.stdout.contains("\"live\":true"));
    shown("status --json of the running dock", &live.stdout);
    station::stop(dock);
    shown("the dock's log", &st.dock_log());
}
