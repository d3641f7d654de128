//! A real RFC 3161 time-stamping authority for tests: `openssl ts -reply` behind a tiny HTTP
//! server on 127.0.0.1.
//!
//! No TSA server is packaged anywhere, but `openssl ts -reply` is one; this wraps it in the few
//! lines of HTTP that RFC 3161 §3.4 asks for (POST `application/timestamp-query`, answer
//! `application/timestamp-reply`). Requests are served one at a time on one thread, so the
//! openssl serial file is never raced. [`Mode`] switches the rig, at runtime, into the ways a
//! real TSA fails: garbage, a refusal, HTTP 500, hanging, dropping the connection.
//!
//! Everything it generates (keys, certificates) lives in a temporary directory and is for tests
//! only.

use anyhow::{Context as _, bail};
use evidock_verify::id::Sha256;
use evidock_verify::timestamp::TsaTrust;
use std::io::{Read, Write};
use std::net::{Shutdown, TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

/// The TSA's policy (`default_policy` in `tsa.cnf`).
pub const POLICY: &str = "1.3.6.1.4.1.99999.1.1";
/// The other policy the rig accepts on request.
pub const OTHER_POLICY: &str = "1.3.6.1.4.1.99999.1.2";

/// `openssl ts -reply` configuration, as in /work/shared/tsa-rig/tsa.cnf, plus a section that
/// refuses every request (it accepts only SHA-1 imprints, which no evidock client sends) so that
/// [`Mode::Reject`] answers with a real PKIStatus rejection from openssl.
const TSA_CNF: &str = "\
# Minimal config for `openssl ts -reply` (local RFC 3161 TSA). Test-only.
[ tsa ]
default_tsa = tsa_config1

[ tsa_config1 ]
dir               = .
serial            = $dir/tsaserial
crypto_device     = builtin
signer_cert       = $dir/tsa.crt
certs             = $dir/ca.crt
signer_key        = $dir/tsa.key
signer_digest     = sha256
default_policy    = 1.3.6.1.4.1.99999.1.1
other_policies    = 1.3.6.1.4.1.99999.1.2
digests           = sha256, sha384, sha512
accuracy          = secs:1, millisecs:0, microsecs:0
clock_precision_digits = 0
ordering          = yes
tsa_name          = yes
ess_cert_id_chain = no
ess_cert_id_alg   = sha256

[ tsa_reject ]
dir               = .
serial            = $dir/tsaserial
crypto_device     = builtin
signer_cert       = $dir/tsa.crt
certs             = $dir/ca.crt
signer_key        = $dir/tsa.key
signer_digest     = sha256
default_policy    = 1.3.6.1.4.1.99999.1.1
digests           = sha1
ess_cert_id_alg   = sha256
";

/// Extensions of the TSA certificate, as in /work/shared/tsa-rig/tsa.ext: RFC 3161 §2.3 wants
/// the extended key usage to be timeStamping only, and critical.
const TSA_EXT: &str = "\
basicConstraints       = critical, CA:FALSE
keyUsage               = critical, digitalSignature, nonRepudiation
extendedKeyUsage       = critical, timeStamping
subjectKeyIdentifier   = hash
authorityKeyIdentifier = keyid:always
";

/// Largest request the rig reads; a TimeStampReq is about 100 bytes.
const MAX_REQUEST: usize = 1 << 20;

/// How the rig answers the next requests.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    /// A real reply from `openssl ts -reply`.
    Normal,
    /// HTTP 200, the right content type, random bytes.
    Garbage,
    /// A well-formed TimeStampResp with status rejection (badAlg), made by openssl.
    Reject,
    /// This HTTP status, no token.
    HttpError(u16),
    /// Read the request, then say nothing until the client gives up (or the rig stops).
    Hang,
    /// Read the request, then close the connection without a word.
    Close,
}

/// A running test TSA. Stops on [`TsaRig::stop`] or drop.
#[derive(Debug)]
pub struct TsaRig {
    /// `http://127.0.0.1:PORT/tsa`.
    pub url: String,
    /// The test root CA certificate (PEM), to pin.
    pub ca_pem: PathBuf,
    /// The TSA certificate (PEM).
    pub tsa_pem: PathBuf,
    /// Keys, certificates, config and the last query and reply.
    pub dir: tempfile::TempDir,
    mode: Arc<Mutex<Mode>>,
    stop: Arc<AtomicBool>,
    requests: Arc<AtomicUsize>,
    thread: Option<JoinHandle<()>>,
}

/// A CA made by [`TsaRig::unrelated_ca`]: a root that has nothing to do with the rig's TSA.
#[derive(Debug, Clone)]
pub struct TestCa {
    pub cert_pem: PathBuf,
    pub cert_der: Vec<u8>,
}

impl TestCa {
    /// Trust that pins only this CA.
    pub fn trust(&self) -> TsaTrust {
        TsaTrust {
            roots: vec![self.cert_der.clone()],
            fingerprints: vec![],
        }
    }
}

/// Whether the `openssl` CLI can be run (the rig needs nothing else).
pub fn openssl_available() -> bool {
    Command::new("openssl")
        .arg("version")
        .output()
        .is_ok_and(|o| o.status.success())
}

/// Run `openssl args` in `dir`; its stdout, or an error with its stderr.
pub fn openssl(dir: &Path, args: &[&str]) -> anyhow::Result<String> {
    let out = Command::new("openssl")
        .args(args)
        .current_dir(dir)
        .output()
        .context("running openssl (is the openssl package installed?)")?;
    if !out.status.success() {
        bail!(
            "openssl {} failed: {}",
            args.join(" "),
            String::from_utf8_lossy(&out.stderr).trim()
        );
    }
    Ok(String::from_utf8_lossy(&out.stdout).into_owned())
}

/// The DER of the first certificate in a PEM file.
pub fn pem_to_der(pem: &Path) -> anyhow::Result<Vec<u8>> {
    let text = std::fs::read(pem).with_context(|| format!("reading {}", pem.display()))?;
    let mut certs = evidock_verify::trust::pem_certificates(&text)
        .map_err(|e| anyhow::anyhow!("{}: {e}", pem.display()))?;
    if certs.is_empty() {
        bail!("{}: no certificate", pem.display());
    }
    Ok(certs.swap_remove(0))
}

impl TsaRig {
    /// A station's `[tsa]` section that time-stamps with this rig.
    pub fn station_config(&self) -> String {
        format!(
            "[tsa]\nurl = \"{}\"\nroots = [\"{}\"]\n",
            self.url,
            self.ca_pem.display()
        )
    }

    /// Make a test root CA and a TSA certificate (the commands of
    /// /work/shared/tsa-rig/README.md) and start serving on 127.0.0.1.
    pub fn start() -> anyhow::Result<TsaRig> {
        let dir = tempfile::Builder::new()
            .prefix("evidock-tsa-rig")
            .tempdir()?;
        let d = dir.path();
        // Test-only keys and certificates: generated here, never used outside this directory.
        openssl(
            d,
            &[
                "req",
                "-x509",
                "-newkey",
                "rsa:3072",
                "-nodes",
                "-keyout",
                "ca.key",
                "-out",
                "ca.crt",
                "-days",
                "365",
                "-subj",
                "/CN=Evidence Test Root CA",
                "-addext",
                "basicConstraints=critical,CA:TRUE",
                "-addext",
                "keyUsage=critical,keyCertSign,cRLSign",
            ],
        )?;
        openssl(
            d,
            &[
                "req",
                "-new",
                "-newkey",
                "rsa:2048",
                "-nodes",
                "-keyout",
                "tsa.key",
                "-out",
                "tsa.csr",
                "-subj",
                "/CN=Evidence Test TSA",
            ],
        )?;
        std::fs::write(d.join("tsa.ext"), TSA_EXT)?;
        openssl(
            d,
            &[
                "x509",
                "-req",
                "-in",
                "tsa.csr",
                "-CA",
                "ca.crt",
                "-CAkey",
                "ca.key",
                "-CAcreateserial",
                "-days",
                "365",
                "-sha256",
                "-extfile",
                "tsa.ext",
                "-out",
                "tsa.crt",
            ],
        )?;
        std::fs::write(d.join("tsaserial"), "01\n")?;
        std::fs::write(d.join("tsa.cnf"), TSA_CNF)?;

        let listener = TcpListener::bind("127.0.0.1:0")?;
        listener.set_nonblocking(true)?;
        let url = format!("http://{}/tsa", listener.local_addr()?);
        let mode = Arc::new(Mutex::new(Mode::Normal));
        let stop = Arc::new(AtomicBool::new(false));
        let requests = Arc::new(AtomicUsize::new(0));
        let server = Server {
            dir: d.to_path_buf(),
            mode: mode.clone(),
            stop: stop.clone(),
            requests: requests.clone(),
        };
        let thread = std::thread::Builder::new()
            .name("tsa-rig".into())
            .spawn(move || server.run(listener))?;
        Ok(TsaRig {
            url,
            ca_pem: d.join("ca.crt"),
            tsa_pem: d.join("tsa.crt"),
            dir,
            mode,
            stop,
            requests,
            thread: Some(thread),
        })
    }

    /// Switch how the next requests are answered.
    pub fn set_mode(&self, mode: Mode) {
        *self.mode.lock().unwrap_or_else(|p| p.into_inner()) = mode;
    }

    /// Requests received so far (whatever the mode).
    pub fn requests(&self) -> usize {
        self.requests.load(Ordering::SeqCst)
    }

    /// The root CA certificate, DER.
    pub fn ca_der(&self) -> anyhow::Result<Vec<u8>> {
        pem_to_der(&self.ca_pem)
    }

    /// SHA-256 of the root CA certificate's DER: what `Anchor::Pinned` names.
    pub fn ca_sha256(&self) -> anyhow::Result<Sha256> {
        Ok(Sha256::digest(&self.ca_der()?))
    }

    /// Trust that pins the rig's root CA.
    pub fn trust(&self) -> anyhow::Result<TsaTrust> {
        Ok(TsaTrust {
            roots: vec![self.ca_der()?],
            fingerprints: vec![],
        })
    }

    /// A second root CA, unrelated to this TSA (for "wrong anchor" tests). Test-only key.
    pub fn unrelated_ca(&self) -> anyhow::Result<TestCa> {
        let d = self.dir.path();
        openssl(
            d,
            &[
                "req",
                "-x509",
                "-newkey",
                "rsa:2048",
                "-nodes",
                "-keyout",
                "other-ca.key",
                "-out",
                "other-ca.crt",
                "-days",
                "365",
                "-subj",
                "/CN=Unrelated Test Root CA",
                "-addext",
                "basicConstraints=critical,CA:TRUE",
                "-addext",
                "keyUsage=critical,keyCertSign,cRLSign",
            ],
        )?;
        let cert_pem = d.join("other-ca.crt");
        Ok(TestCa {
            cert_der: pem_to_der(&cert_pem)?,
            cert_pem,
        })
    }

    /// Stop serving and wait for the server thread. Idempotent.
    pub fn stop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
        if let Some(t) = self.thread.take() {
            // A panic in the server thread has already been printed; nothing more to do here.
            let _ = t.join();
        }
    }
}

impl Drop for TsaRig {
    fn drop(&mut self) {
        self.stop();
    }
}

/// The server thread's state.
struct Server {
    dir: PathBuf,
    mode: Arc<Mutex<Mode>>,
    stop: Arc<AtomicBool>,
    requests: Arc<AtomicUsize>,
}

/// One parsed request.
struct Request {
    method: String,
    body: Vec<u8>,
}

impl Server {
    /// Accept and answer connections one at a time until stopped. Polling (non-blocking accept)
    /// lets [`TsaRig::stop`] end the loop without a wake-up connection.
    fn run(self, listener: TcpListener) {
        while !self.stop.load(Ordering::SeqCst) {
            match listener.accept() {
                Ok((stream, _)) => {
                    // A client that misbehaves only loses its own connection.
                    let _ = self.handle(stream);
                }
                Err(_) => std::thread::sleep(Duration::from_millis(5)),
            }
        }
    }

    fn mode(&self) -> Mode {
        *self.mode.lock().unwrap_or_else(|p| p.into_inner())
    }

    fn handle(&self, mut stream: TcpStream) -> std::io::Result<()> {
        stream.set_nonblocking(false)?;
        stream.set_read_timeout(Some(Duration::from_secs(10)))?;
        let Some(req) = read_request(&mut stream)? else {
            return Ok(());
        };
        self.requests.fetch_add(1, Ordering::SeqCst);
        if req.method != "POST" {
            return respond(&mut stream, 405, "text/plain", b"POST a timestamp query\n");
        }
        match self.mode() {
            Mode::Normal => self.reply_with(&mut stream, &req.body, "tsa_config1"),
            Mode::Reject => self.reply_with(&mut stream, &req.body, "tsa_reject"),
            Mode::Garbage => respond(
                &mut stream,
                200,
                "application/timestamp-reply",
                &random_bytes(512),
            ),
            Mode::HttpError(status) => respond(
                &mut stream,
                status,
                "text/plain",
                b"the test TSA is told to fail\n",
            ),
            Mode::Close => stream.shutdown(Shutdown::Both),
            Mode::Hang => {
                self.hang(&mut stream);
                Ok(())
            }
        }
    }

    /// `openssl ts -reply` on the query, with the config section `section`.
    fn reply_with(
        &self,
        stream: &mut TcpStream,
        query: &[u8],
        section: &str,
    ) -> std::io::Result<()> {
        let q = self.dir.join("q.tsq");
        let r = self.dir.join("r.tsr");
        std::fs::write(&q, query)?;
        let _ = std::fs::remove_file(&r);
        let args = [
            "ts",
            "-reply",
            "-config",
            "tsa.cnf",
            "-section",
            section,
            "-queryfile",
            "q.tsq",
            "-out",
            "r.tsr",
        ];
        match openssl(&self.dir, &args).and_then(|_| Ok(std::fs::read(&r)?)) {
            Ok(reply) => respond(stream, 200, "application/timestamp-reply", &reply),
            Err(e) => respond(stream, 500, "text/plain", format!("{e:#}\n").as_bytes()),
        }
    }

    /// Keep the connection open without answering until the client closes it, the rig stops,
    /// or a minute passes.
    fn hang(&self, stream: &mut TcpStream) {
        let started = Instant::now();
        let _ = stream.set_read_timeout(Some(Duration::from_millis(20)));
        let mut buf = [0u8; 256];
        while !self.stop.load(Ordering::SeqCst) && started.elapsed() < Duration::from_secs(60) {
            match stream.read(&mut buf) {
                Ok(0) => return, // the client gave up
                Ok(_) => {}
                Err(e)
                    if matches!(
                        e.kind(),
                        std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut
                    ) => {}
                Err(_) => return,
            }
        }
    }
}

/// Read one HTTP/1.1 request: head up to the blank line, then `Content-Length` bytes.
/// `None` if the client closed before sending a whole head.
fn read_request(stream: &mut TcpStream) -> std::io::Result<Option<Request>> {
    let mut data = Vec::new();
    let mut buf = [0u8; 4096];
    let head_end = loop {
        if let Some(i) = data.windows(4).position(|w| w == b"\r\n\r\n") {
            break i + 4;
        }
        if data.len() > 64 * 1024 {
            return Err(std::io::Error::other("request head too large"));
        }
        let n = stream.read(&mut buf)?;
        if n == 0 {
            return Ok(None);
        }
        data.extend_from_slice(&buf[..n]);
    };
    let head = String::from_utf8_lossy(&data[..head_end]).into_owned();
    let method = head
        .split_whitespace()
        .next()
        .unwrap_or_default()
        .to_string();
    let length = head
        .lines()
        .filter_map(|l| l.split_once(':'))
        .find(|(k, _)| k.trim().eq_ignore_ascii_case("content-length"))
        .and_then(|(_, v)| v.trim().parse::<usize>().ok())
        .unwrap_or(0);
    if length > MAX_REQUEST {
        return Err(std::io::Error::other("request body too large"));
    }
    let mut body = data[head_end..].to_vec();
    while body.len() < length {
        let n = stream.read(&mut buf)?;
        if n == 0 {
            return Ok(None);
        }
        body.extend_from_slice(&buf[..n]);
    }
    body.truncate(length);
    Ok(Some(Request { method, body }))
}

fn respond(
    stream: &mut TcpStream,
    status: u16,
    content_type: &str,
    body: &[u8],
) -> std::io::Result<()> {
    let reason = match status {
        200 => "OK",
        405 => "Method Not Allowed",
        500 => "Internal Server Error",
        502 => "Bad Gateway",
        503 => "Service Unavailable",
        _ => "Status",
    };
    let head = format!(
        "HTTP/1.1 {status} {reason}\r\nContent-Type: {content_type}\r\nContent-Length: {}\r\n\
         Connection: close\r\n\r\n",
        body.len()
    );
    stream.write_all(head.as_bytes())?;
    stream.write_all(body)?;
    stream.flush()?;
    stream.shutdown(Shutdown::Write)
}

/// Bytes that are not DER (xorshift seeded from the clock: different every run, no dependency).
fn random_bytes(n: usize) -> Vec<u8> {
    let mut x = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_nanos() as u64)
        .unwrap_or(0x9e37_79b9_7f4a_7c15)
        | 1;
    (0..n)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            (x >> 24) as u8
        })
        .collect()
}
