//! The access token: from `Authorization: Bearer <token>` (scripts, Prometheus, `evidock
//! status`) or a cookie a browser got from the login form. Never from the query string: a URL
//! ends up in logs, shell and browser history and `Referer` headers, so `?token=` counts as no
//! token at all.
//!
//! Tokens are compared by their SHA-256 digests in constant time: neither the time taken nor a
//! length check says how much of a guess was right.

use axum::extract::{Request, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::middleware::Next;
use axum::response::{Html, IntoResponse, Response};
use sha2::{Digest as _, Sha256};
use std::sync::Arc;
use subtle::ConstantTimeEq as _;

/// The token a server requires, and the cookie that carries it in a browser.
#[derive(Clone)]
pub struct TokenGuard(Arc<Inner>);

struct Inner {
    digest: [u8; 32],
    cookie: &'static str,
    title: &'static str,
}

impl std::fmt::Debug for TokenGuard {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TokenGuard")
            .field("cookie", &self.0.cookie)
            .finish_non_exhaustive()
    }
}

/// Where the login form posts (`token=…`, form-encoded).
pub const LOGIN_PATH: &str = "/login";

impl TokenGuard {
    /// `cookie`: the cookie's name (one per server, e.g. `evidock_status`); `title`: what the
    /// login page says it opens.
    pub fn new(token: &str, cookie: &'static str, title: &'static str) -> Self {
        TokenGuard(Arc::new(Inner {
            digest: Sha256::digest(token.as_bytes()).into(),
            cookie,
            title,
        }))
    }

    fn matches(&self, given: &str) -> bool {
        let d: [u8; 32] = Sha256::digest(given.as_bytes()).into();
        bool::from(d.ct_eq(&self.0.digest))
    }

    /// Whether the request carries the token in its `Authorization` header or cookie.
    pub fn admits(&self, headers: &HeaderMap) -> bool {
        let bearer = headers
            .get_all(header::AUTHORIZATION)
            .iter()
            .filter_map(|v| v.to_str().ok())
            .filter_map(|v| v.strip_prefix("Bearer "));
        let cookies = headers
            .get_all(header::COOKIE)
            .iter()
            .filter_map(|v| v.to_str().ok())
            .flat_map(|v| v.split(';'))
            .filter_map(|c| c.trim().split_once('='))
            .filter(|(name, _)| *name == self.0.cookie)
            .map(|(_, value)| value);
        // Every candidate is compared (no early exit on the first that fails).
        bearer
            .chain(cookies)
            .fold(false, |ok, t| self.matches(t.trim()) | ok)
    }

    /// 401: the login form for a browser (it asked for HTML), a line of text for the rest.
    fn refused(&self, headers: &HeaderMap, wrong: bool) -> Response {
        let wants_html = headers
            .get(header::ACCEPT)
            .and_then(|v| v.to_str().ok())
            .is_some_and(|a| a.contains("text/html"));
        if wants_html || wrong {
            (
                StatusCode::UNAUTHORIZED,
                Html(login_page(self.0.title, wrong)),
            )
                .into_response()
        } else {
            (StatusCode::UNAUTHORIZED, "token required\n").into_response()
        }
    }
}

/// Middleware: pass requests that carry the token, refuse the rest with 401.
pub async fn require_token(State(guard): State<TokenGuard>, req: Request, next: Next) -> Response {
    if guard.admits(req.headers()) {
        next.run(req).await
    } else {
        guard.refused(req.headers(), false)
    }
}

/// The login form's fields.
#[derive(serde::Deserialize)]
pub struct Login {
    token: String,
}

impl std::fmt::Debug for Login {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Login").finish_non_exhaustive()
    }
}

/// `POST /login`: the right token sets the cookie (HttpOnly: no script reads it; SameSite=Strict:
/// no other site's page sends it; a session cookie: gone when the browser closes) and goes to
/// the page; a wrong one shows the form again.
pub async fn login(
    State(guard): State<TokenGuard>,
    headers: HeaderMap,
    axum::Form(form): axum::Form<Login>,
) -> Response {
    let token = form.token.trim();
    if !guard.matches(token) {
        return guard.refused(&headers, true);
    }
    // RFC 6265 cookie-octets only (no space, quote, comma, semicolon or backslash).
    let cookie_safe = token
        .bytes()
        .all(|b| matches!(b, 0x21 | 0x23..=0x2B | 0x2D..=0x3A | 0x3C..=0x5B | 0x5D..=0x7E));
    let cookie = format!(
        "{}={token}; Path=/; HttpOnly; SameSite=Strict",
        guard.0.cookie
    );
    match HeaderValue::from_str(&cookie) {
        Ok(cookie) if cookie_safe => (
            StatusCode::SEE_OTHER,
            [
                (header::SET_COOKIE, cookie),
                (header::LOCATION, HeaderValue::from_static("/")),
            ],
        )
            .into_response(),
        // A token with characters a cookie cannot hold: the header still works.
        _ => (
            StatusCode::BAD_REQUEST,
            "this token cannot be a cookie: use the Authorization header\n",
        )
            .into_response(),
    }
}

fn login_page(title: &str, wrong: bool) -> String {
    let note = if wrong {
        r#"<p class="err">令牌不对 · Wrong token</p>"#
    } else {
        ""
    };
    format!(
        r#"<!DOCTYPE html>
<html lang="zh-CN"><head><meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>{title}</title>
<style>
body {{ font-family: "Noto Sans CJK SC", "WenQuanYi Micro Hei", "Microsoft YaHei", "DejaVu Sans", sans-serif; background: #f3f4f6; margin: 0; }}
form {{ background: #fff; max-width: 360px; margin: 80px auto; padding: 20px; border-radius: 6px; }}
h1 {{ font-size: 18px; margin: 0 0 12px; }} input {{ width: 100%; box-sizing: border-box; padding: 6px; margin: 8px 0; }}
.err {{ color: #dc2626; }}
</style></head>
<body><form method="post" action="{LOGIN_PATH}">
<h1>{title}</h1>{note}
<label for="token">访问令牌 · Access token</label>
<input id="token" name="token" type="password" autocomplete="current-password" required autofocus>
<button type="submit">登录 · Sign in</button>
</form></body></html>
"#
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn headers(lines: &[(&str, &str)]) -> HeaderMap {
        let mut h = HeaderMap::new();
        for (k, v) in lines {
            h.append(
                axum::http::HeaderName::from_bytes(k.as_bytes()).unwrap(),
                HeaderValue::from_str(v).unwrap(),
            );
        }
        h
    }

    #[test]
    fn the_header_or_the_cookie_and_nothing_else() {
        let g = TokenGuard::new("0123456789abcdef", "evidock_status", "t");
        let admits = |l: &[(&str, &str)]| g.admits(&headers(l));
        assert!(admits(&[("authorization", "Bearer 0123456789abcdef")]));
        assert!(admits(&[(
            "cookie",
            "a=b; evidock_status=0123456789abcdef"
        )]));
        assert!(admits(&[
            ("cookie", "evidock_status=wrong"),
            ("cookie", "evidock_status=0123456789abcdef")
        ]));
        assert!(!admits(&[]));
        assert!(!admits(&[("authorization", "Bearer 0123456789abcde")]));
        assert!(!admits(&[("authorization", "Basic 0123456789abcdef")]));
        assert!(!admits(&[("cookie", "other=0123456789abcdef")]));
        assert!(!admits(&[("cookie", "xevidock_status=0123456789abcdef")]));
        assert!(!admits(&[("x-token", "0123456789abcdef")]));
        assert!(!format!("{g:?}").contains("0123"));
    }
}
