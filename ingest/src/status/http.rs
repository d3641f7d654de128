//! The status server of `evidock dock`: `GET /` (the page), `GET /api/status` (JSON),
//! `GET /metrics` (Prometheus); `HEAD` of each; `POST /login` when a token is configured.
//! Read-only and small on purpose: nothing here is reachable from the internet, and it must
//! never slow acquisition down (the report is built on a blocking thread, at most every second)
//! nor take the descriptors camera reads need ([`LIMITS`]). The hardening is `crate::web`'s.

use super::Report;
use crate::config::StatusSettings;
use crate::web::{self, host::AllowedHosts, serve::Limits, token::TokenGuard};
use axum::Router;
use axum::extract::{DefaultBodyLimit, State};
use axum::http::{StatusCode, header};
use axum::response::{Html, IntoResponse, Response};
use axum::routing::{get, post};
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio::net::TcpListener;
use tokio::sync::Mutex;

/// Builds the report (the caller closes over the station and the dock's slots).
pub type Source = Arc<dyn Fn() -> anyhow::Result<Report> + Send + Sync>;

/// What the status server may take from the dock. 32 connections: its clients are a page or
/// two polling every 2 s, a Prometheus scraper and `evidock status`, each one short request
/// per connection, so 32 is ample, and 32 descriptors are little beside the default limit of
/// 1024 that camera reads, the journal and the custody log share. 5 s for a request head:
/// every real client sends it at once, on loopback or a LAN. 30 s in all: building the report
/// on a large journal can take seconds, and nothing else takes long.
pub const LIMITS: Limits = Limits {
    max_connections: 32,
    header_timeout: Duration::from_secs(5),
    connection_timeout: Duration::from_secs(30),
    max_head_bytes: 16 * 1024,
};

/// The page's inline script and style are its own (no internet assets); nothing else loads.
const CSP: &str = "default-src 'self'; script-src 'self' 'unsafe-inline'; style-src 'self' 'unsafe-inline'; img-src 'self' data:; form-action 'self'; frame-ancestors 'none'";

/// The name of the cookie the login form sets.
pub const COOKIE: &str = "evidock_status";

/// Serve until the process ends. Binding failures are returned (the port is taken).
pub async fn serve(settings: StatusSettings, source: Source) -> anyhow::Result<()> {
    let listener = TcpListener::bind(settings.listen)
        .await
        .map_err(|e| anyhow::anyhow!("status page on {}: {e}", settings.listen))?;
    tracing::info!(listen = %settings.listen, "status page");
    web::serve::serve(listener, router(&settings, source), LIMITS).await
}

/// The last report and when it was made: requests within a second share it.
struct Reports {
    source: Source,
    last: Mutex<Option<(Instant, Report)>>,
}

impl Reports {
    async fn get(&self) -> anyhow::Result<Report> {
        let mut last = self.last.lock().await;
        if let Some((at, r)) = &*last
            && at.elapsed() < Duration::from_secs(1)
        {
            return Ok(r.clone());
        }
        let source = self.source.clone();
        let r = tokio::task::spawn_blocking(move || source())
            .await
            .map_err(|e| anyhow::anyhow!("the status report failed: {e}"))??;
        *last = Some((Instant::now(), r.clone()));
        Ok(r)
    }
}

/// The routes and their layers. The `Host` check applies to every request on a loopback
/// listen address ([`AllowedHosts`] says why not elsewhere); the token, when configured, to
/// every route but the login form.
pub fn router(settings: &StatusSettings, source: Source) -> Router {
    let reports = Arc::new(Reports {
        source,
        last: Mutex::new(None),
    });
    let mut app = Router::new()
        .route("/", get(page))
        .route("/index.html", get(page))
        .route("/api/status", get(api_status))
        .route("/metrics", get(metrics))
        .with_state(reports);
    if let Some(token) = &settings.token {
        let guard = TokenGuard::new(token, COOKIE, "evidock · 采集站状态 · status");
        app = app
            .route_layer(axum::middleware::from_fn_with_state(
                guard.clone(),
                web::token::require_token,
            ))
            .merge(
                Router::new()
                    .route(web::token::LOGIN_PATH, post(web::token::login))
                    // A token, nothing more.
                    .layer(DefaultBodyLimit::max(4096))
                    .with_state(guard),
            );
    }
    app.fallback(not_found)
        .layer(axum::middleware::from_fn_with_state(
            AllowedHosts::for_listen(settings.listen),
            web::host::check_host,
        ))
        .layer(axum::middleware::map_response_with_state(
            CSP,
            web::security_headers,
        ))
}

async fn page() -> Html<&'static str> {
    Html(super::page::HTML)
}

async fn api_status(State(reports): State<Arc<Reports>>) -> Response {
    match reports.get().await {
        Ok(r) => axum::Json(r).into_response(),
        Err(e) => unavailable(e),
    }
}

async fn metrics(State(reports): State<Arc<Reports>>) -> Response {
    match reports.get().await {
        Ok(r) => (
            [(header::CONTENT_TYPE, "text/plain; version=0.0.4")],
            super::metrics(&r),
        )
            .into_response(),
        Err(e) => unavailable(e),
    }
}

fn unavailable(e: anyhow::Error) -> Response {
    (StatusCode::SERVICE_UNAVAILABLE, format!("{e:#}\n")).into_response()
}

async fn not_found() -> (StatusCode, &'static str) {
    (StatusCode::NOT_FOUND, "not found\n")
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

#[cfg(test)]
mod tests {
    use super::*;
    use axum::body::Body;
    use axum::http::Request;
    use tower::ServiceExt as _;

    fn app(token: Option<&str>) -> Router {
        let settings = StatusSettings {
            token: token.map(str::to_string),
            ..StatusSettings::default()
        };
        router(
            &settings,
            Arc::new(|| Err(anyhow::anyhow!("no station in this test"))),
        )
    }

    async fn call(app: Router, method: &str, uri: &str, headers: &[(&str, &str)]) -> Response {
        let mut req = Request::builder().method(method).uri(uri);
        for (k, v) in headers {
            req = req.header(*k, *v);
        }
        app.oneshot(req.body(Body::empty()).unwrap()).await.unwrap()
    }

    #[tokio::test]
    async fn routes_methods_and_headers() {
        let host = [("host", "127.0.0.1:8470")];
        let r = call(app(None), "GET", "/", &host).await;
        assert_eq!(r.status(), 200);
        assert_eq!(r.headers()["cache-control"], "no-store");
        assert!(
            r.headers()["content-security-policy"]
                .to_str()
                .unwrap()
                .contains("frame-ancestors 'none'")
        );
        let r = call(app(None), "HEAD", "/", &host).await;
        assert_eq!(r.status(), 200);
        assert_eq!(
            r.headers()["content-length"],
            super::super::page::HTML.len().to_string().as_str()
        );
        assert_eq!(call(app(None), "POST", "/", &host).await.status(), 405);
        assert_eq!(
            call(app(None), "GET", "/nowhere", &host).await.status(),
            404
        );
        // The report's failure is a 503, not a dropped connection.
        assert_eq!(
            call(app(None), "GET", "/metrics", &host).await.status(),
            503
        );
        let r = call(app(None), "GET", "/", &[("host", "evil.example")]).await;
        assert_eq!(r.status(), 421);
        assert_eq!(r.headers()["cache-control"], "no-store");
        assert_eq!(call(app(None), "GET", "/", &[]).await.status(), 421);
    }

    #[tokio::test]
    async fn the_token_guards_every_route_but_the_login() {
        let t = "0123456789abcdef";
        let host = ("host", "localhost:8470");
        let r = call(
            app(Some(t)),
            "GET",
            &format!("/api/status?token={t}"),
            &[host],
        )
        .await;
        assert_eq!(r.status(), 401);
        let r = call(app(Some(t)), "GET", "/", &[host, ("accept", "text/html")]).await;
        assert_eq!(r.status(), 401);
        let bearer = format!("Bearer {t}");
        let r = call(
            app(Some(t)),
            "GET",
            "/",
            &[host, ("authorization", &bearer)],
        )
        .await;
        assert_eq!(r.status(), 200);
        // Without a token there is no login form to post to.
        assert_eq!(
            call(app(None), "POST", "/login", &[("host", "localhost")])
                .await
                .status(),
            404
        );
    }
}
