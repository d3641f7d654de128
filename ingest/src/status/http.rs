//! The status server of `evidock dock`: `GET /` (the page), `GET /api/status` (JSON),
//! `GET /metrics` (Prometheus). Read-only, GET only, one short request per connection; a token
//! when configured. Small on purpose: nothing here is reachable from the internet, and it must
//! never slow acquisition down (the report is built on a blocking thread, at most every second).

use super::{Report, StatusSettings};
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::Mutex;

/// Builds the report (the caller closes over the station and the dock's slots).
pub type Source = Arc<dyn Fn() -> anyhow::Result<Report> + Send + Sync>;

/// The last report and when it was made: requests within a second share it.
struct Cache {
    at: Option<Instant>,
    report: Option<Report>,
}

/// Serve until the process ends. Binding failures are returned (the port is taken).
pub async fn serve(settings: StatusSettings, source: Source) -> anyhow::Result<()> {
    let listener = TcpListener::bind(settings.listen)
        .await
        .map_err(|e| anyhow::anyhow!("status page on {}: {e}", settings.listen))?;
    tracing::info!(listen = %settings.listen, "status page");
    let cache = Arc::new(Mutex::new(Cache {
        at: None,
        report: None,
    }));
    let token = settings.token.map(Arc::new);
    loop {
        let (sock, _) = match listener.accept().await {
            Ok(c) => c,
            Err(e) => {
                tracing::warn!(error = %e, "status page: accept failed");
                tokio::time::sleep(Duration::from_millis(100)).await;
                continue;
            }
        };
        let (source, cache, token) = (source.clone(), cache.clone(), token.clone());
        tokio::spawn(async move {
            let _ = tokio::time::timeout(
                Duration::from_secs(10),
                handle(sock, source, cache, token.as_deref().map(String::as_str)),
            )
            .await;
        });
    }
}

struct Request {
    method: String,
    path: String,
    query: String,
    bearer: Option<String>,
}

async fn read_request(sock: &mut TcpStream) -> Option<Request> {
    let mut buf = Vec::with_capacity(1024);
    let mut chunk = [0u8; 1024];
    while !buf.windows(4).any(|w| w == b"\r\n\r\n") {
        if buf.len() > 16 * 1024 {
            return None;
        }
        let n = sock.read(&mut chunk).await.ok()?;
        if n == 0 {
            return None;
        }
        buf.extend_from_slice(&chunk[..n]);
    }
    let head = String::from_utf8_lossy(&buf);
    let mut lines = head.split("\r\n");
    let mut first = lines.next()?.split(' ');
    let method = first.next()?.to_string();
    let target = first.next()?.to_string();
    let (path, query) = match target.split_once('?') {
        Some((p, q)) => (p.to_string(), q.to_string()),
        None => (target, String::new()),
    };
    let bearer = lines
        .filter_map(|l| l.split_once(':'))
        .find(|(k, _)| k.trim().eq_ignore_ascii_case("authorization"))
        .and_then(|(_, v)| {
            v.trim()
                .strip_prefix("Bearer ")
                .map(|t| t.trim().to_string())
        });
    Some(Request {
        method,
        path,
        query,
        bearer,
    })
}

fn query_param<'a>(query: &'a str, name: &str) -> Option<&'a str> {
    query
        .split('&')
        .filter_map(|kv| kv.split_once('='))
        .find(|(k, _)| *k == name)
        .map(|(_, v)| v)
}

/// Compare without stopping at the first difference.
fn same(a: &str, b: &str) -> bool {
    a.len() == b.len()
        && a.bytes()
            .zip(b.bytes())
            .fold(0u8, |acc, (x, y)| acc | (x ^ y))
            == 0
}

async fn respond(sock: &mut TcpStream, status: &str, ctype: &str, body: &[u8]) {
    let head = format!(
        "HTTP/1.1 {status}\r\nContent-Type: {ctype}\r\nContent-Length: {}\r\nCache-Control: no-store\r\nX-Content-Type-Options: nosniff\r\nContent-Security-Policy: default-src 'self'; script-src 'self' 'unsafe-inline'; style-src 'self' 'unsafe-inline'; img-src 'self' data:\r\nConnection: close\r\n\r\n",
        body.len()
    );
    let _ = sock.write_all(head.as_bytes()).await;
    let _ = sock.write_all(body).await;
    let _ = sock.shutdown().await;
}

async fn handle(
    mut sock: TcpStream,
    source: Source,
    cache: Arc<Mutex<Cache>>,
    token: Option<&str>,
) {
    let Some(req) = read_request(&mut sock).await else {
        return;
    };
    if req.method != "GET" && req.method != "HEAD" {
        return respond(
            &mut sock,
            "405 Method Not Allowed",
            "text/plain",
            b"read-only\n",
        )
        .await;
    }
    if let Some(t) = token {
        let given = req
            .bearer
            .clone()
            .or_else(|| query_param(&req.query, "token").map(str::to_string));
        if !given.as_deref().is_some_and(|g| same(g, t)) {
            return respond(
                &mut sock,
                "401 Unauthorized",
                "text/plain",
                b"token required\n",
            )
            .await;
        }
    }
    let report = |cache: Arc<Mutex<Cache>>, source: Source| async move {
        let mut c = cache.lock().await;
        if c.at.is_some_and(|t| t.elapsed() < Duration::from_secs(1))
            && let Some(r) = &c.report
        {
            return Ok(r.clone());
        }
        let r = tokio::task::spawn_blocking(move || source())
            .await
            .map_err(|e| anyhow::anyhow!("{e}"))??;
        c.at = Some(Instant::now());
        c.report = Some(r.clone());
        Ok::<_, anyhow::Error>(r)
    };
    match req.path.as_str() {
        "/" | "/index.html" => {
            respond(
                &mut sock,
                "200 OK",
                "text/html; charset=utf-8",
                super::page::HTML.as_bytes(),
            )
            .await
        }
        "/api/status" | "/metrics" => {
            let (ctype, body) = match report(cache, source).await {
                Ok(r) if req.path == "/metrics" => {
                    ("text/plain; version=0.0.4", super::metrics(&r).into_bytes())
                }
                Ok(r) => (
                    "application/json",
                    serde_json::to_vec(&r).unwrap_or_default(),
                ),
                Err(e) => {
                    let msg = format!("{e:#}\n");
                    return respond(
                        &mut sock,
                        "503 Service Unavailable",
                        "text/plain",
                        msg.as_bytes(),
                    )
                    .await;
                }
            };
            respond(&mut sock, "200 OK", ctype, &body).await
        }
        _ => respond(&mut sock, "404 Not Found", "text/plain", b"not found\n").await,
    }
}

/// `GET` a path from a running dock's status server (for `evidock status`).
pub fn fetch(settings: &StatusSettings, path: &str) -> anyhow::Result<String> {
    use std::io::{Read as _, Write as _};
    let mut s = std::net::TcpStream::connect_timeout(&settings.listen, Duration::from_secs(2))?;
    s.set_read_timeout(Some(Duration::from_secs(15)))?;
    let auth = settings
        .token
        .as_ref()
        .map(|t| format!("Authorization: Bearer {t}\r\n"))
        .unwrap_or_default();
    write!(
        s,
        "GET {path} HTTP/1.1\r\nHost: {}\r\n{auth}Connection: close\r\n\r\n",
        settings.listen
    )?;
    let mut out = Vec::new();
    s.read_to_end(&mut out)?;
    let text = String::from_utf8_lossy(&out).into_owned();
    let (head, body) = text
        .split_once("\r\n\r\n")
        .ok_or_else(|| anyhow::anyhow!("malformed answer from {}", settings.listen))?;
    if !head.starts_with("HTTP/1.1 200") {
        anyhow::bail!(
            "{}: {}",
            settings.listen,
            head.lines().next().unwrap_or_default()
        );
    }
    Ok(body.to_string())
}
