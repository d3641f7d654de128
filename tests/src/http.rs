//! Plain HTTP/1.1 over a TCP socket, written out byte for byte: the requests an attacker or an
//! old client sends (a HEAD, a foreign `Host`, a token in the query string) must reach the
//! server exactly as written, which a client library would tidy up.

use std::io::{Read as _, Write as _};
use std::net::TcpStream;
use std::time::Duration;

/// A port free on loopback now (the test then configures a server on it).
pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// What a server answered: the status line, the header lines, and every byte after the head.
#[derive(Debug, Clone)]
pub struct Answer {
    pub status_line: String,
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
}

impl Answer {
    /// The status code (0 when the status line does not have one).
    pub fn code(&self) -> u16 {
        self.status_line
            .split(' ')
            .nth(1)
            .and_then(|c| c.parse().ok())
            .unwrap_or(0)
    }

    /// The first header of this name (case-insensitive).
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }

    pub fn text(&self) -> String {
        String::from_utf8_lossy(&self.body).into_owned()
    }
}

/// Send `request` as it is to 127.0.0.1:`port` and read until the server closes (the servers
/// under test close after each answer). `None` when nothing came back in 30 s or the answer
/// has no head.
pub fn raw(port: u16, request: &str) -> Option<Answer> {
    let mut s = TcpStream::connect(("127.0.0.1", port)).ok()?;
    s.set_read_timeout(Some(Duration::from_secs(30))).ok()?;
    s.write_all(request.as_bytes()).ok()?;
    let mut out = Vec::new();
    s.read_to_end(&mut out).ok()?;
    let end = out.windows(4).position(|w| w == b"\r\n\r\n")?;
    let head = String::from_utf8_lossy(&out[..end]).into_owned();
    let mut lines = head.split("\r\n");
    let status_line = lines.next()?.to_string();
    let headers = lines
        .filter_map(|l| l.split_once(':'))
        .map(|(k, v)| (k.trim().to_string(), v.trim().to_string()))
        .collect();
    Some(Answer {
        status_line,
        headers,
        body: out[end + 4..].to_vec(),
    })
}

/// `METHOD path` with `Host: 127.0.0.1:port` and these extra header lines (each without CRLF).
pub fn request(port: u16, method: &str, path: &str, headers: &[&str]) -> Option<Answer> {
    let extra: String = headers.iter().map(|h| format!("{h}\r\n")).collect();
    raw(
        port,
        &format!(
            "{method} {path} HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\n{extra}Connection: close\r\n\r\n"
        ),
    )
}

/// The number of open file descriptors of process `pid` (Linux `/proc`).
pub fn open_fds(pid: u32) -> usize {
    std::fs::read_dir(format!("/proc/{pid}/fd"))
        .map(|d| d.count())
        .unwrap_or(0)
}
