//! A fault-injecting HTTP/1.1 proxy for tests, in front of a real service (e.g. radosgw).
//!
//! Clients talk to [`FaultProxy::addr`] as if it were the service. Each request is read (head,
//! then the body by its `Content-Length` or chunked framing) and forwarded on its own new
//! upstream connection; the answer is relayed back by its own framing, so client connections
//! stay alive across requests as the client and service agree. `Expect: 100-continue` is
//! honoured: the interim `100 Continue` from upstream is relayed before the body is sent on.
//!
//! Faults are switched at run time, from the test:
//! - [`FaultProxy::fail_next`]: answer the next N requests with HTTP 500 and a well-formed S3
//!   `InternalError` body, without forwarding them;
//! - [`FaultProxy::set_delay`]: hold each answer for a while before relaying it;
//! - [`FaultProxy::reset_next`]: forward the head and the first K bytes of the body of the next
//!   N requests, then drop both connections without an answer (an RST when the client is
//!   still sending, else a plain close);
//! - [`FaultProxy::pass_through`]: none of these.
//!
//! Threads and std only: an accept thread and one thread per client connection.

use std::io::{self, Read as _, Write as _};
use std::net::{Ipv4Addr, Shutdown, SocketAddr, TcpListener, TcpStream};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

/// How long a connection may sit idle (between requests, or mid-transfer) before it is closed.
const IDLE_TIMEOUT: Duration = Duration::from_secs(120);
const MAX_HEAD: usize = 64 * 1024;

/// The faults to inject into the next requests.
#[derive(Debug, Clone, Copy, Default)]
struct Faults {
    fail_next: usize,
    reset_next: usize,
    reset_after: u64,
    delay: Option<Duration>,
}

#[derive(Debug, Default)]
struct State {
    stop: AtomicBool,
    requests: AtomicUsize,
    injected: AtomicUsize,
    faults: Mutex<Faults>,
}

impl State {
    fn faults(&self) -> std::sync::MutexGuard<'_, Faults> {
        self.faults.lock().unwrap_or_else(|p| p.into_inner())
    }
}

/// A running proxy. Stops on [`FaultProxy::stop`] or drop.
#[derive(Debug)]
pub struct FaultProxy {
    addr: SocketAddr,
    upstream: SocketAddr,
    state: Arc<State>,
    thread: Option<JoinHandle<()>>,
}

impl FaultProxy {
    /// Listen on 127.0.0.1 (a free port) and pass everything through to `upstream`.
    pub fn start(upstream: SocketAddr) -> FaultProxy {
        let listener =
            TcpListener::bind((Ipv4Addr::LOCALHOST, 0)).expect("fault proxy: binding 127.0.0.1:0");
        listener
            .set_nonblocking(true)
            .expect("fault proxy: non-blocking listener");
        let addr = listener.local_addr().expect("fault proxy: local address");
        let state = Arc::new(State::default());
        let accept_state = state.clone();
        let thread = std::thread::Builder::new()
            .name("faultproxy-accept".into())
            .spawn(move || accept_loop(listener, upstream, accept_state))
            .expect("fault proxy: spawning the accept thread");
        FaultProxy {
            addr,
            upstream,
            state,
            thread: Some(thread),
        }
    }

    /// Where clients connect.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// `http://127.0.0.1:PORT`.
    pub fn endpoint(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// The service behind the proxy.
    pub fn upstream(&self) -> SocketAddr {
        self.upstream
    }

    /// No faults from now on: every request is forwarded and answered at once.
    pub fn pass_through(&self) {
        *self.state.faults() = Faults::default();
    }

    /// Answer the next `n` requests with HTTP 500 `InternalError` without forwarding them.
    pub fn fail_next(&self, n: usize) {
        self.state.faults().fail_next = n;
    }

    /// Hold each answer (relayed or injected) for `delay` before sending it; `None`: no delay.
    pub fn set_delay(&self, delay: Option<Duration>) {
        self.state.faults().delay = delay;
    }

    /// Cut the next `n` requests: forward the head and at most `after_body_bytes` bytes of the
    /// body (as sent, chunk framing included), then drop both connections without an answer.
    pub fn reset_next(&self, n: usize, after_body_bytes: u64) {
        let mut f = self.state.faults();
        f.reset_next = n;
        f.reset_after = after_body_bytes;
    }

    /// Requests seen so far (whole heads received), whatever was done with them.
    pub fn requests(&self) -> usize {
        self.state.requests.load(Ordering::SeqCst)
    }

    /// Requests answered with a 500 or cut so far.
    pub fn faults_injected(&self) -> usize {
        self.state.injected.load(Ordering::SeqCst)
    }

    /// Stop accepting; connections end at their next request. Idempotent.
    pub fn stop(&mut self) {
        self.state.stop.store(true, Ordering::SeqCst);
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

impl Drop for FaultProxy {
    fn drop(&mut self) {
        self.stop();
    }
}

fn accept_loop(listener: TcpListener, upstream: SocketAddr, state: Arc<State>) {
    while !state.stop.load(Ordering::SeqCst) {
        match listener.accept() {
            Ok((stream, _)) => {
                let state = state.clone();
                let spawned = std::thread::Builder::new()
                    .name("faultproxy-conn".into())
                    .spawn(move || {
                        // A connection that fails only ends itself.
                        let _ = serve(stream, upstream, &state);
                    });
                if spawned.is_err() {
                    std::thread::sleep(Duration::from_millis(50));
                }
            }
            Err(_) => std::thread::sleep(Duration::from_millis(5)),
        }
    }
}

/// How a message body is delimited.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Framing {
    Empty,
    Length(u64),
    Chunked,
    UntilClose,
}

/// What the proxy needs from a request head.
#[derive(Debug)]
struct RequestHead {
    raw: Vec<u8>,
    method: String,
    framing: Framing,
    expect_continue: bool,
    close: bool,
}

/// What the proxy needs from a response head.
#[derive(Debug)]
struct ResponseHead {
    raw: Vec<u8>,
    status: u16,
    content_length: Option<u64>,
    chunked: bool,
    close: bool,
}

/// A stream with a read buffer.
struct Conn {
    stream: TcpStream,
    buf: Vec<u8>,
}

impl Conn {
    fn new(stream: TcpStream) -> Self {
        Conn {
            stream,
            buf: Vec::new(),
        }
    }

    /// Read more into the buffer; 0 at end of stream.
    fn fill(&mut self) -> io::Result<usize> {
        let mut chunk = [0u8; 16 * 1024];
        let n = self.stream.read(&mut chunk)?;
        self.buf.extend_from_slice(&chunk[..n]);
        Ok(n)
    }

    /// Bytes up to and including the first `delim`; `None` at a clean end of stream (nothing
    /// buffered).
    fn read_until(&mut self, delim: &[u8], max: usize) -> io::Result<Option<Vec<u8>>> {
        let mut searched = 0;
        loop {
            if let Some(i) = find(&self.buf[searched..], delim) {
                let end = searched + i + delim.len();
                return Ok(Some(self.buf.drain(..end).collect()));
            }
            searched = self.buf.len().saturating_sub(delim.len() - 1);
            if self.buf.len() > max {
                return Err(io::Error::other("HTTP head or line too long"));
            }
            if self.fill()? == 0 {
                return if self.buf.is_empty() {
                    Ok(None)
                } else {
                    Err(io::ErrorKind::UnexpectedEof.into())
                };
            }
        }
    }

    /// Up to `max` bytes: buffered ones first, else one read. Empty at end of stream.
    fn read_some(&mut self, max: usize) -> io::Result<Vec<u8>> {
        if self.buf.is_empty() && self.fill()? == 0 {
            return Ok(Vec::new());
        }
        let n = self.buf.len().min(max);
        Ok(self.buf.drain(..n).collect())
    }
}

fn find(haystack: &[u8], needle: &[u8]) -> Option<usize> {
    haystack.windows(needle.len()).position(|w| w == needle)
}

/// `(name lowercased, value trimmed)` of each header line after the first line.
fn headers(raw: &[u8]) -> (String, Vec<(String, String)>) {
    let text = String::from_utf8_lossy(raw);
    let mut lines = text.split("\r\n");
    let first = lines.next().unwrap_or_default().to_string();
    let fields = lines
        .filter_map(|l| l.split_once(':'))
        .map(|(n, v)| (n.trim().to_ascii_lowercase(), v.trim().to_string()))
        .collect();
    (first, fields)
}

fn header_has(fields: &[(String, String)], name: &str, token: &str) -> bool {
    fields
        .iter()
        .any(|(n, v)| n == name && v.split(',').any(|t| t.trim().eq_ignore_ascii_case(token)))
}

fn content_length(fields: &[(String, String)]) -> io::Result<Option<u64>> {
    match fields.iter().find(|(n, _)| n == "content-length") {
        None => Ok(None),
        Some((_, v)) => v
            .parse()
            .map(Some)
            .map_err(|_| io::Error::other("bad Content-Length")),
    }
}

fn parse_request(raw: Vec<u8>) -> io::Result<RequestHead> {
    let (line, fields) = headers(&raw);
    let mut parts = line.split_whitespace();
    let method = parts.next().unwrap_or_default().to_string();
    let version = parts.nth(1).unwrap_or_default();
    let framing = if header_has(&fields, "transfer-encoding", "chunked") {
        Framing::Chunked
    } else {
        match content_length(&fields)? {
            Some(0) | None => Framing::Empty,
            Some(n) => Framing::Length(n),
        }
    };
    let close = header_has(&fields, "connection", "close")
        || (version == "HTTP/1.0" && !header_has(&fields, "connection", "keep-alive"));
    Ok(RequestHead {
        expect_continue: header_has(&fields, "expect", "100-continue"),
        raw,
        method,
        framing,
        close,
    })
}

fn parse_response(raw: Vec<u8>) -> io::Result<ResponseHead> {
    let (line, fields) = headers(&raw);
    let status = line
        .split_whitespace()
        .nth(1)
        .and_then(|s| s.parse().ok())
        .ok_or_else(|| io::Error::other("bad status line"))?;
    Ok(ResponseHead {
        status,
        content_length: content_length(&fields)?,
        chunked: header_has(&fields, "transfer-encoding", "chunked"),
        close: header_has(&fields, "connection", "close"),
        raw,
    })
}

/// Where a body goes.
enum Sink<'a> {
    Discard,
    To(&'a mut TcpStream),
}

impl Sink<'_> {
    fn put(&mut self, bytes: &[u8]) -> io::Result<()> {
        match self {
            Sink::Discard => Ok(()),
            Sink::To(s) => s.write_all(bytes),
        }
    }
}

/// Pass exactly `left` bytes of `src` to `put` in pieces; false as soon as `put` says stop.
fn copy_exactly(
    src: &mut Conn,
    mut left: u64,
    mut put: impl FnMut(&[u8]) -> io::Result<bool>,
) -> io::Result<bool> {
    while left > 0 {
        let piece = src.read_some(left.min(64 * 1024) as usize)?;
        if piece.is_empty() {
            return Err(io::ErrorKind::UnexpectedEof.into());
        }
        left -= piece.len() as u64;
        if !put(&piece)? {
            return Ok(false);
        }
    }
    Ok(true)
}

/// Copy a body as framed, bytes as they are (chunk framing included). With `limit`, stop after
/// that many bytes; true if the body was copied whole.
fn copy_body(
    src: &mut Conn,
    framing: Framing,
    sink: &mut Sink<'_>,
    limit: Option<u64>,
) -> io::Result<bool> {
    let mut budget = limit.unwrap_or(u64::MAX);
    // Copy `bytes` within the budget; false when the budget ran out.
    let mut put = |sink: &mut Sink<'_>, bytes: &[u8]| -> io::Result<bool> {
        let n = (bytes.len() as u64).min(budget) as usize;
        sink.put(&bytes[..n])?;
        budget -= n as u64;
        Ok(n == bytes.len())
    };
    match framing {
        Framing::Empty => Ok(true),
        Framing::Length(left) => copy_exactly(src, left, |b| put(sink, b)),
        Framing::UntilClose => loop {
            let piece = src.read_some(64 * 1024)?;
            if piece.is_empty() {
                return Ok(true);
            }
            if !put(sink, &piece)? {
                return Ok(false);
            }
        },
        Framing::Chunked => loop {
            let line = src
                .read_until(b"\r\n", 4096)?
                .ok_or(io::ErrorKind::UnexpectedEof)?;
            if !put(sink, &line)? {
                return Ok(false);
            }
            let size_text = String::from_utf8_lossy(&line);
            let size_hex = size_text.split(';').next().unwrap_or("").trim();
            let size = u64::from_str_radix(size_hex, 16)
                .map_err(|_| io::Error::other("bad chunk size"))?;
            if size == 0 {
                // Trailers, up to an empty line.
                loop {
                    let trailer = src
                        .read_until(b"\r\n", MAX_HEAD)?
                        .ok_or(io::ErrorKind::UnexpectedEof)?;
                    if !put(sink, &trailer)? {
                        return Ok(false);
                    }
                    if trailer == b"\r\n" {
                        return Ok(true);
                    }
                }
            }
            // The chunk's data and its CRLF.
            if !copy_exactly(src, size + 2, |b| put(sink, b))? {
                return Ok(false);
            }
        },
    }
}

/// What to do with one request.
enum Action {
    Forward,
    Fail,
    Reset(u64),
}

fn serve(client: TcpStream, upstream: SocketAddr, state: &State) -> io::Result<()> {
    client.set_nodelay(true)?;
    client.set_read_timeout(Some(IDLE_TIMEOUT))?;
    let mut out = client.try_clone()?;
    let mut conn = Conn::new(client);
    loop {
        if state.stop.load(Ordering::SeqCst) {
            return Ok(());
        }
        let Some(raw) = conn.read_until(b"\r\n\r\n", MAX_HEAD)? else {
            return Ok(()); // the client closed between requests
        };
        let request = parse_request(raw)?;
        let n = state.requests.fetch_add(1, Ordering::SeqCst) + 1;
        let (action, delay) = {
            let mut f = state.faults();
            let action = if f.fail_next > 0 {
                f.fail_next -= 1;
                Action::Fail
            } else if f.reset_next > 0 {
                f.reset_next -= 1;
                Action::Reset(f.reset_after)
            } else {
                Action::Forward
            };
            (action, f.delay)
        };
        let keep_alive = match action {
            Action::Fail => {
                state.injected.fetch_add(1, Ordering::SeqCst);
                fail(&mut conn, &mut out, &request, delay, n)?
            }
            Action::Reset(after) => {
                state.injected.fetch_add(1, Ordering::SeqCst);
                cut(conn, out, upstream, &request, after);
                return Ok(());
            }
            Action::Forward => forward(&mut conn, &mut out, upstream, &request, delay)?,
        };
        if !keep_alive {
            lingering_close(&mut out);
            return Ok(());
        }
    }
}

/// Answer 500 `InternalError` without forwarding. True if the connection can go on.
fn fail(
    conn: &mut Conn,
    out: &mut TcpStream,
    request: &RequestHead,
    delay: Option<Duration>,
    n: usize,
) -> io::Result<bool> {
    // A client waiting for 100 Continue sends no body: answer now and close. Otherwise read
    // the body away first, so that closing never resets an answer the client has not read.
    let skip_body = request.expect_continue && request.framing != Framing::Empty;
    if !skip_body {
        copy_body(conn, request.framing, &mut Sink::Discard, None)?;
    }
    let keep_alive = !skip_body && !request.close;
    let body = format!(
        "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<Error><Code>InternalError</Code>\
         <Message>We encountered an internal error. Please try again.</Message>\
         <RequestId>faultproxy-{n}</RequestId></Error>"
    );
    let head = format!(
        "HTTP/1.1 500 Internal Server Error\r\nContent-Type: application/xml\r\n\
         Content-Length: {}\r\nx-amz-request-id: faultproxy-{n}\r\nConnection: {}\r\n\r\n",
        body.len(),
        if keep_alive { "keep-alive" } else { "close" }
    );
    if let Some(d) = delay {
        std::thread::sleep(d);
    }
    out.write_all(head.as_bytes())?;
    if request.method != "HEAD" {
        out.write_all(body.as_bytes())?;
    }
    out.flush()?;
    Ok(keep_alive)
}

/// Forward the head and up to `after` body bytes, then drop both connections unanswered.
fn cut(mut conn: Conn, out: TcpStream, upstream: SocketAddr, request: &RequestHead, after: u64) {
    if let Ok(mut up) = TcpStream::connect_timeout(&upstream, Duration::from_secs(5)) {
        if up.write_all(&request.raw).is_ok() {
            let mut out = out.try_clone().ok();
            if request.expect_continue
                && request.framing != Framing::Empty
                && let Some(o) = out.as_mut()
            {
                // Let the client start its body, so that there is a body to cut.
                let _ = o.write_all(b"HTTP/1.1 100 Continue\r\n\r\n");
            }
            let _ = copy_body(
                &mut conn,
                request.framing,
                &mut Sink::To(&mut up),
                Some(after),
            );
        }
        let _ = up.shutdown(Shutdown::Both);
    }
    // Give the client's next bytes time to arrive unread: closing a socket with unread data
    // makes the kernel send RST rather than FIN.
    std::thread::sleep(Duration::from_millis(20));
    let _ = out.shutdown(Shutdown::Both);
    drop(conn);
    drop(out);
}

/// Forward one request on a new upstream connection and relay the answer. True if the client
/// connection can go on.
fn forward(
    conn: &mut Conn,
    out: &mut TcpStream,
    upstream: SocketAddr,
    request: &RequestHead,
    delay: Option<Duration>,
) -> io::Result<bool> {
    let up = match TcpStream::connect_timeout(&upstream, Duration::from_secs(5)) {
        Ok(s) => s,
        Err(_) => {
            // Like a gateway whose backend is down.
            let has_body = request.framing != Framing::Empty;
            if !(request.expect_continue && has_body) {
                copy_body(conn, request.framing, &mut Sink::Discard, None)?;
            }
            out.write_all(
                b"HTTP/1.1 502 Bad Gateway\r\nContent-Length: 0\r\nConnection: close\r\n\r\n",
            )?;
            return Ok(false);
        }
    };
    up.set_nodelay(true)?;
    up.set_read_timeout(Some(IDLE_TIMEOUT))?;
    let mut up_out = up.try_clone()?;
    let mut up_in = Conn::new(up);
    up_out.write_all(&request.raw)?;

    let has_body = request.framing != Framing::Empty;
    let mut body_sent = !has_body;
    let mut response = None;
    if request.expect_continue && has_body {
        let head = read_response_head(&mut up_in)?;
        if head.status == 100 {
            out.write_all(&head.raw)?;
        } else {
            // A final answer before the body: the client will not send it.
            response = Some(head);
        }
    }
    if response.is_none() && !body_sent {
        // If upstream stops reading (it answered early), its answer still gets relayed.
        match copy_body(conn, request.framing, &mut Sink::To(&mut up_out), None) {
            Ok(_) => body_sent = true,
            Err(e) if e.kind() == io::ErrorKind::UnexpectedEof => return Err(e),
            Err(_) => {}
        }
    }
    let response = match response {
        Some(r) => r,
        None => loop {
            let head = read_response_head(&mut up_in)?;
            if (100..200).contains(&head.status) && head.status != 101 {
                out.write_all(&head.raw)?;
                continue;
            }
            break head;
        },
    };
    if let Some(d) = delay {
        std::thread::sleep(d);
    }
    out.write_all(&response.raw)?;
    let framing = if request.method == "HEAD"
        || response.status == 204
        || response.status == 304
        || (100..200).contains(&response.status)
    {
        Framing::Empty
    } else if response.chunked {
        Framing::Chunked
    } else if let Some(n) = response.content_length {
        if n == 0 {
            Framing::Empty
        } else {
            Framing::Length(n)
        }
    } else {
        Framing::UntilClose
    };
    copy_body(&mut up_in, framing, &mut Sink::To(out), None)?;
    out.flush()?;
    Ok(body_sent && !request.close && !response.close && framing != Framing::UntilClose)
}

fn read_response_head(up: &mut Conn) -> io::Result<ResponseHead> {
    let raw = up
        .read_until(b"\r\n\r\n", MAX_HEAD)?
        .ok_or(io::ErrorKind::UnexpectedEof)?;
    parse_response(raw)
}

/// Close after an answer without resetting it: stop writing, read what the client still sends
/// for a moment, then close.
fn lingering_close(out: &mut TcpStream) {
    let _ = out.flush();
    let _ = out.shutdown(Shutdown::Write);
    let _ = out.set_read_timeout(Some(Duration::from_millis(100)));
    let deadline = Instant::now() + Duration::from_secs(2);
    let mut buf = [0u8; 4096];
    while Instant::now() < deadline {
        match out.read(&mut buf) {
            Ok(0) => break,
            Ok(_) => {}
            Err(e)
                if matches!(
                    e.kind(),
                    io::ErrorKind::WouldBlock | io::ErrorKind::TimedOut
                ) => {}
            Err(_) => break,
        }
    }
}
