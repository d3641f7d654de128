//! The `Host` check against DNS rebinding.
//!
//! A web page on `evil.example` can make its own name resolve to 127.0.0.1 and then read a
//! loopback server as if it were its own origin: the browser still sends `Host: evil.example`.
//! A server on a loopback address therefore answers only requests addressed to a loopback name
//! or to its own address (any port: an SSH tunnel moves the port, never the name).
//!
//! A server on another address is reached by names and addresses it cannot know (the station's
//! host name, its LAN address, a DNS alias), so there every `Host` is accepted: such a server
//! always has a token (`status.listen` refuses otherwise), and a rebinding page cannot present
//! it — the cookie belongs to the real origin, and the page cannot read or set the header.

use axum::extract::{Request, State};
use axum::http::{StatusCode, header};
use axum::middleware::Next;
use axum::response::{IntoResponse as _, Response};
use std::net::{IpAddr, SocketAddr};

/// Which `Host` a server on one address answers.
#[derive(Debug, Clone)]
pub struct AllowedHosts {
    /// `None`: any host (a server not on loopback).
    loopback: Option<IpAddr>,
}

impl AllowedHosts {
    /// The rule for a server listening on `listen` (see the module documentation).
    pub fn for_listen(listen: SocketAddr) -> Self {
        AllowedHosts {
            loopback: listen.ip().is_loopback().then_some(listen.ip()),
        }
    }

    /// Whether a request whose `Host` (or target authority) is `authority` is answered.
    pub fn allows(&self, authority: &str) -> bool {
        let Some(own) = self.loopback else {
            return true;
        };
        let Some(host) = host_of(authority) else {
            return false;
        };
        let host = host.to_ascii_lowercase();
        let host = host.strip_suffix('.').unwrap_or(&host);
        if host == "localhost" {
            return true;
        }
        let ip = host
            .strip_prefix('[')
            .and_then(|h| h.strip_suffix(']'))
            .unwrap_or(host);
        ip.parse::<IpAddr>().is_ok_and(|ip| {
            ip == own
                || ip == IpAddr::from([127, 0, 0, 1])
                || ip == IpAddr::from([0u16, 0, 0, 0, 0, 0, 0, 1])
        })
    }
}

/// The host of `host[:port]` (`[v6]` kept in brackets); `None` when the port is not a number.
fn host_of(authority: &str) -> Option<&str> {
    let (host, port) = if authority.starts_with('[') {
        let end = authority.find(']')? + 1;
        (&authority[..end], authority[end..].strip_prefix(':'))
    } else {
        match authority.rsplit_once(':') {
            Some((h, p)) => (h, Some(p)),
            None => (authority, None),
        }
    };
    let port_ok = port.is_none_or(|p| !p.is_empty() && p.bytes().all(|b| b.is_ascii_digit()));
    (port_ok && !host.is_empty()).then_some(host)
}

/// Middleware: refuse a request not addressed to this server (421 Misdirected Request). Both
/// the `Host` header and an absolute target's authority must pass; a request with neither is
/// refused on loopback (every browser sends `Host`).
pub async fn check_host(State(allowed): State<AllowedHosts>, req: Request, next: Next) -> Response {
    let target = req.uri().authority().map(|a| a.as_str());
    let host = req
        .headers()
        .get(header::HOST)
        .map(|h| h.to_str().unwrap_or("\u{0}"));
    let given: Vec<&str> = target.into_iter().chain(host).collect();
    let ok = if given.is_empty() {
        allowed.loopback.is_none()
    } else {
        given.iter().all(|a| allowed.allows(a))
    };
    if ok {
        next.run(req).await
    } else {
        (
            StatusCode::MISDIRECTED_REQUEST,
            "this server answers requests to localhost only\n",
        )
            .into_response()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn loopback_names_only_on_loopback() {
        let h = AllowedHosts::for_listen("127.0.0.1:8470".parse().unwrap());
        for ok in [
            "127.0.0.1:8470",
            "127.0.0.1",
            "localhost:8470",
            "LocalHost",
            "localhost.:9000",
            "[::1]:8470",
            "[::1]",
        ] {
            assert!(h.allows(ok), "{ok}");
        }
        for refused in [
            "evil.example",
            "evil.example:8470",
            "127.0.0.1.evil.example",
            "localhost.evil.example",
            "127.0.0.2:8470",
            "10.0.0.5:8470",
            "localhost:http",
            "localhost:",
            ":8470",
            "",
            "[::1",
        ] {
            assert!(!h.allows(refused), "{refused}");
        }
        let other = AllowedHosts::for_listen("127.0.0.5:8470".parse().unwrap());
        assert!(other.allows("127.0.0.5:8470") && other.allows("localhost"));
        let v6 = AllowedHosts::for_listen("[::1]:8470".parse().unwrap());
        assert!(v6.allows("[::1]:8470") && !v6.allows("evil.example"));
    }

    #[test]
    fn any_host_off_loopback() {
        let h = AllowedHosts::for_listen("0.0.0.0:8470".parse().unwrap());
        assert!(h.allows("dock-07.lan:8470") && h.allows("10.0.0.5"));
    }
}
