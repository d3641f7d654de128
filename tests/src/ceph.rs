//! A real S3 server for tests: a throwaway single-node Ceph cluster on 127.0.0.1 — one monitor,
//! one OSD keeping its data in memory (`memstore`), and radosgw (RGW) serving S3 — with cephx
//! auth off and one S3 user, [`ACCESS_KEY`] / [`SECRET_KEY`].
//!
//! The configuration is the worked example in /work/shared/s3-rig/ceph-rgw-up.sh, with what a
//! test suite needs on top: the monitor and RGW ports are chosen free at run time and each rig
//! has its own fsid and directory, so several test binaries (and several rigs in one) run side
//! by side. Starting takes about 20 s, so a test binary normally shares one rig between its
//! tests ([`CephRig::shared`]), each test in its own bucket.
//!
//! The daemons are stopped by their pid files on [`CephRig::stop`] or drop. A rig that is never
//! dropped (the shared one lives in a `static`) is cleaned up by a watchdog process: it waits
//! for the end of a pipe that only the test process holds, so when the test process exits, in
//! any way, the watchdog kills the daemons and removes the directory.
//!
//! The OSD keeps data only in memory: to test a server restart, restart radosgw alone
//! ([`CephRig::kill_rgw`], [`CephRig::start_rgw`]); the objects survive.

use anyhow::{Context as _, bail};
use std::fs;
use std::io::{Read as _, Write as _};
use std::net::{Ipv4Addr, SocketAddr, TcpListener, TcpStream};
use std::os::unix::process::CommandExt as _;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::{Mutex, OnceLock};
use std::time::{Duration, Instant};

/// The S3 access key of the rig's user.
pub const ACCESS_KEY: &str = "AKIATEST";
/// The S3 secret key of the rig's user (test-only).
pub const SECRET_KEY: &str = "SECRETTEST";
/// The region to sign for; RGW accepts it for its default zone group.
pub const REGION: &str = "us-east-1";
/// How the rig's Debian packages are installed.
pub const INSTALL_HINT: &str = "apt-get install -y --no-install-recommends radosgw ceph-mon \
                                ceph-osd uuid-runtime (what `scripts/deps.sh test` does)";

/// The OSD's in-memory capacity unless `MEMSTORE_BYTES` says otherwise: 3 GiB.
const DEFAULT_MEMSTORE_BYTES: u64 = 3 << 30;
/// Every program the rig runs, and the package it comes from.
const PROGRAMS: [(&str, &str); 7] = [
    ("ceph-mon", "ceph-mon"),
    ("ceph-osd", "ceph-osd"),
    ("radosgw", "radosgw"),
    ("radosgw-admin", "ceph-common, with radosgw"),
    ("ceph", "ceph-common, with ceph-mon"),
    ("monmaptool", "ceph-base, with ceph-mon"),
    ("uuidgen", "uuid-runtime"),
];
const MON: &str = "mon.a";
const OSD: &str = "osd.0";
const RGW: &str = "client.rgw.a";
/// How long RGW may take to answer after it is started (first start creates its pools).
const RGW_TIMEOUT: Duration = Duration::from_secs(120);
/// How long the `ceph` CLI waits for the monitor.
const CEPH_CONNECT_TIMEOUT: &str = "30";
/// How many times a `ceph` command is tried.
const CEPH_TRIES: u32 = 10;

/// A running single-node Ceph with RGW. Stops on [`CephRig::stop`] or drop.
#[derive(Debug)]
pub struct CephRig {
    dir: Option<tempfile::TempDir>,
    path: PathBuf,
    conf: PathBuf,
    mon_port: u16,
    rgw_port: u16,
    started_in: Duration,
    /// Holds the write end of the watchdog's stdin; taken on stop.
    watchdog: Mutex<Option<Child>>,
    /// Serialises [`CephRig::kill_rgw`] and [`CephRig::start_rgw`].
    rgw_lock: Mutex<()>,
    /// Tests of one binary share the rig and run in parallel: those that use the gateway hold
    /// it shared, the one that stops the gateway holds it alone, so no test sees it down.
    users: tokio::sync::RwLock<()>,
}

impl CephRig {
    /// Start a new cluster in a temporary directory (about 20 s). Panics, with the install
    /// command, if the Ceph programs are missing: skipping silently would hide the test.
    pub fn start() -> anyhow::Result<CephRig> {
        let missing: Vec<String> = PROGRAMS
            .iter()
            .filter(|(program, _)| !on_path(program))
            .map(|(program, package)| format!("{program} (package {package})"))
            .collect();
        if !missing.is_empty() {
            panic!(
                "the Ceph test rig needs {}; install with: {INSTALL_HINT}",
                missing.join(", ")
            );
        }
        let started = Instant::now();
        let memstore_bytes = match std::env::var("MEMSTORE_BYTES") {
            Ok(v) => v
                .trim()
                .parse::<u64>()
                .with_context(|| format!("MEMSTORE_BYTES={v:?} is not a number of bytes"))?,
            Err(_) => DEFAULT_MEMSTORE_BYTES,
        };
        let dir = tempfile::Builder::new()
            .prefix("evidock-ceph-")
            .tempdir()
            .context("creating the Ceph rig's directory")?;
        let path = dir.path().to_path_buf();
        let (mon_port, rgw_port) = two_free_ports()?;
        let mut rig = CephRig {
            conf: path.join("ceph.conf"),
            path,
            dir: Some(dir),
            mon_port,
            rgw_port,
            started_in: Duration::ZERO,
            watchdog: Mutex::new(None),
            rgw_lock: Mutex::new(()),
            users: tokio::sync::RwLock::new(()),
        };
        // From here on, an error drops `rig`, which stops whatever was started.
        rig.boot(memstore_bytes)
            .with_context(|| format!("starting the Ceph rig\n{}", rig.log_tails()))?;
        rig.started_in = started.elapsed();
        Ok(rig)
    }

    /// One rig for the whole test process, started by the first test that asks (the others
    /// wait for it). Each test should use its own bucket. Panics if the rig cannot start.
    pub fn shared() -> &'static CephRig {
        static RIG: OnceLock<Result<CephRig, String>> = OnceLock::new();
        match RIG.get_or_init(|| CephRig::start().map_err(|e| format!("{e:#}"))) {
            Ok(rig) => rig,
            Err(e) => panic!("the shared Ceph rig did not start: {e}"),
        }
    }

    /// The S3 endpoint, `http://127.0.0.1:PORT` (path-style addressing).
    pub fn endpoint(&self) -> String {
        format!("http://{}", self.rgw_addr())
    }

    /// RGW's address, e.g. to put a [`crate::faultproxy::FaultProxy`] in front of it.
    pub fn rgw_addr(&self) -> SocketAddr {
        SocketAddr::from((Ipv4Addr::LOCALHOST, self.rgw_port))
    }

    /// The monitor's port.
    pub fn mon_port(&self) -> u16 {
        self.mon_port
    }

    /// The evidence store of `bucket` (prefix `evidence`) through `endpoint` (the gateway, or
    /// a proxy in front of it), with the rig's keys.
    pub fn store_settings(
        &self,
        endpoint: &str,
        bucket: &str,
    ) -> evidock_store::objects::StoreSettings {
        evidock_store::objects::StoreSettings {
            url: format!("s3://{bucket}/evidence"),
            endpoint: Some(endpoint.to_string()),
            region: Some(self.region().to_string()),
            allow_http: true,
            path_style: true,
            access_key_id: Some(self.access_key().to_string()),
            secret_access_key: Some(self.secret_key().to_string()),
            max_retries: 2,
            ..Default::default()
        }
    }

    pub fn access_key(&self) -> &'static str {
        ACCESS_KEY
    }

    pub fn secret_key(&self) -> &'static str {
        SECRET_KEY
    }

    pub fn region(&self) -> &'static str {
        REGION
    }

    /// The rig's directory: `ceph.conf`, the daemons' data, pid files and `log/`.
    pub fn dir(&self) -> &Path {
        &self.path
    }

    /// How long [`CephRig::start`] took.
    pub fn started_in(&self) -> Duration {
        self.started_in
    }

    /// The gateway's users: a test that needs RGW up holds it for reading (`.read().await`,
    /// or `.blocking_read()` outside a runtime) for its whole length; the test that stops RGW
    /// holds it for writing.
    pub fn gateway(&self) -> &tokio::sync::RwLock<()> {
        &self.users
    }

    /// SIGKILL radosgw (only it: the OSD keeps the data) and wait until it is gone.
    pub fn kill_rgw(&self) -> anyhow::Result<()> {
        let _guard = self.rgw_lock.lock().unwrap_or_else(|p| p.into_inner());
        let Some(pid) = self.live_pid(RGW) else {
            bail!("radosgw is not running");
        };
        kill9(pid);
        wait_until(Duration::from_secs(10), || !self.is_ours(pid))
            .with_context(|| format!("radosgw (pid {pid}) still running after SIGKILL"))
    }

    /// Start radosgw again and wait until it answers HTTP. Does nothing if it is running.
    pub fn start_rgw(&self) -> anyhow::Result<()> {
        let _guard = self.rgw_lock.lock().unwrap_or_else(|p| p.into_inner());
        if self.live_pid(RGW).is_some() && http_answers(self.rgw_addr()) {
            return Ok(());
        }
        self.spawn_rgw()
            .with_context(|| format!("restarting radosgw\n{}", self.log_tails()))
    }

    /// Kill the three daemons by their pid files and remove the directory. Idempotent.
    pub fn stop(&mut self) {
        for name in [RGW, OSD, MON] {
            if let Some(pid) = self.live_pid(name) {
                kill9(pid);
            }
        }
        for name in [RGW, OSD, MON] {
            if let Some(pid) = read_pid(&self.pid_file(name)) {
                let _ = wait_until(Duration::from_secs(10), || !self.is_ours(pid));
            }
        }
        if let Some(dir) = self.dir.take() {
            // A daemon that outlived SIGKILL could still write here; nothing more to do then.
            let _ = dir.close();
        }
        let watchdog = self
            .watchdog
            .get_mut()
            .unwrap_or_else(|p| p.into_inner())
            .take();
        if let Some(mut child) = watchdog {
            // Closing its stdin lets it run: it finds nothing left to clean.
            drop(child.stdin.take());
            let _ = child.wait();
        }
    }

    fn boot(&mut self, memstore_bytes: u64) -> anyhow::Result<()> {
        let d = self.path.clone();
        for sub in [MON, OSD, "rgw", "log"] {
            fs::create_dir_all(d.join(sub))?;
        }
        let fsid = uuidgen()?;
        fs::write(
            &self.conf,
            ceph_conf(&d, &fsid, self.mon_port, self.rgw_port, memstore_bytes),
        )?;
        self.spawn_watchdog()?;

        let mon_addr = format!("v1:127.0.0.1:{}", self.mon_port);
        let monmap = d.join("monmap");
        run(Command::new("monmaptool")
            .args(["--create", "--add", "a", &mon_addr, "--fsid", &fsid])
            .arg(&monmap))?;
        run(self
            .ceph_cmd("ceph-mon")
            .args(["--mkfs", "-i", "a", "--monmap"])
            .arg(&monmap))?;
        self.spawn_daemon("ceph-mon", &["-i", "a"], MON)?;

        // The OSD's uuid must be the one the monitor registers, or the OSD refuses to boot
        // ("mon_cmd_maybe_osd_create fail: 'wrong fsid'").
        let osd_uuid = uuidgen()?;
        let id = self.ceph(&["osd", "create", &osd_uuid])?;
        if id.trim() != "0" {
            bail!("`ceph osd create` gave OSD id {:?}, expected 0", id.trim());
        }
        run(self
            .ceph_cmd("ceph-osd")
            .args(["-i", "0", "--mkfs", "--osd-uuid", &osd_uuid]))?;
        self.ceph(&["osd", "crush", "add-bucket", "localhost", "host"])?;
        self.ceph(&["osd", "crush", "move", "localhost", "root=default"])?;
        self.ceph(&["osd", "crush", "add", "osd.0", "1.0", "host=localhost"])?;
        // With auth off, a daemon's first command can reach the monitor before the daemon
        // has the monitor map, and is refused ("handle_command on fsid 00000000-… != …",
        // "mon_cmd_maybe_osd_create fail: 'wrong fsid'"): the OSD then exits. It only races,
        // so the daemons are started again when that happens.
        retry(5, || self.spawn_daemon("ceph-osd", &["-i", "0"], OSD))?;
        retry(3, || self.spawn_rgw())?;
        retry(5, || {
            let created = run(self.ceph_cmd("radosgw-admin").args([
                "user",
                "create",
                "--uid=test",
                "--display-name=test",
                &format!("--access-key={ACCESS_KEY}"),
                &format!("--secret={SECRET_KEY}"),
            ]));
            match created {
                // A try that failed late may have created the user.
                Err(e) => run(self
                    .ceph_cmd("radosgw-admin")
                    .args(["user", "info", "--uid=test"]))
                .map(drop)
                .map_err(|_| e),
                Ok(_) => Ok(()),
            }
        })?;
        Ok(())
    }

    /// Start radosgw and wait until it answers, watching that the daemons stay up.
    fn spawn_rgw(&self) -> anyhow::Result<()> {
        self.spawn_daemon("radosgw", &["-n", RGW], RGW)?;
        let deadline = Instant::now() + RGW_TIMEOUT;
        loop {
            if http_answers(self.rgw_addr()) {
                return Ok(());
            }
            for name in [MON, OSD, RGW] {
                if let Some(pid) = read_pid(&self.pid_file(name))
                    && !self.is_ours(pid)
                {
                    bail!("{name} (pid {pid}) died");
                }
            }
            if Instant::now() > deadline {
                bail!(
                    "radosgw did not answer on {} within {RGW_TIMEOUT:?}",
                    self.rgw_addr()
                );
            }
            std::thread::sleep(Duration::from_millis(200));
        }
    }

    /// A Ceph program with this rig's configuration.
    fn ceph_cmd(&self, program: &str) -> Command {
        let mut c = Command::new(program);
        c.arg("-c").arg(&self.conf);
        c
    }

    /// `ceph ARGS` against this rig's monitor; its stdout. Tried a few times: the monitor can
    /// refuse a command sent before the client has its map ("Error EPERM: problem getting
    /// command descriptions from mon."). Every command the rig sends is idempotent.
    fn ceph(&self, args: &[&str]) -> anyhow::Result<String> {
        retry(CEPH_TRIES, || {
            run(self
                .ceph_cmd("ceph")
                .args(["--connect-timeout", CEPH_CONNECT_TIMEOUT])
                .args(args))
        })
    }

    /// Start a daemon; it forks into the background and writes `NAME.pid`.
    fn spawn_daemon(&self, program: &str, args: &[&str], name: &str) -> anyhow::Result<()> {
        let stderr = fs::File::create(self.path.join("log").join(format!("{name}.stderr")))?;
        let status = self
            .ceph_cmd(program)
            .args(args)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(stderr)
            .status()
            .with_context(|| format!("running {program}"))?;
        if !status.success() {
            bail!("{program} {} failed: {status}", args.join(" "));
        }
        wait_until(Duration::from_secs(10), || self.live_pid(name).is_some())
            .with_context(|| format!("{program} did not stay up"))
    }

    /// A process that, once the test process is gone (its stdin pipe closes), kills the
    /// daemons and removes the directory. Its own process group: a Ctrl-C on the tests does
    /// not reach it before it has cleaned up.
    fn spawn_watchdog(&self) -> anyhow::Result<()> {
        const SCRIPT: &str = r#"trap '' INT TERM HUP
cat >/dev/null
for f in "$1"/*.pid; do
  [ -f "$f" ] || continue
  p=$(cat "$f")
  case "$p" in ''|*[!0-9]*) continue ;; esac
  if tr '\0' ' ' <"/proc/$p/cmdline" 2>/dev/null | grep -qF -- "$2"; then kill -9 "$p"; fi
done
sleep 1
rm -rf -- "$1"
"#;
        let child = Command::new("sh")
            .args(["-c", SCRIPT, "evidock-ceph-watchdog"])
            .arg(&self.path)
            .arg(&self.conf)
            .stdin(Stdio::piped())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .process_group(0)
            .spawn()
            .context("starting the rig's watchdog (sh)")?;
        *self.watchdog.lock().unwrap_or_else(|p| p.into_inner()) = Some(child);
        Ok(())
    }

    fn pid_file(&self, name: &str) -> PathBuf {
        self.path.join(format!("{name}.pid"))
    }

    /// The pid of daemon `name` if it is running (and is this rig's).
    fn live_pid(&self, name: &str) -> Option<u32> {
        read_pid(&self.pid_file(name)).filter(|&pid| self.is_ours(pid))
    }

    /// Whether `pid` is a live (not zombie) process started with this rig's configuration.
    fn is_ours(&self, pid: u32) -> bool {
        let proc = PathBuf::from(format!("/proc/{pid}"));
        let Ok(stat) = fs::read_to_string(proc.join("stat")) else {
            return false;
        };
        // The state follows the parenthesised command name.
        let state = stat
            .rsplit_once(')')
            .and_then(|(_, rest)| rest.split_whitespace().next())
            .unwrap_or("");
        if state == "Z" || state == "X" {
            return false;
        }
        let conf = self.conf.to_string_lossy();
        fs::read(proc.join("cmdline"))
            .map(|c| String::from_utf8_lossy(&c).contains(conf.as_ref()))
            .unwrap_or(false)
    }

    /// The last lines of each daemon's log, for error messages.
    fn log_tails(&self) -> String {
        let mut out = String::new();
        let Ok(entries) = fs::read_dir(self.path.join("log")) else {
            return out;
        };
        let mut files: Vec<PathBuf> = entries.flatten().map(|e| e.path()).collect();
        files.sort();
        for f in files {
            let text = fs::read_to_string(&f).unwrap_or_default();
            let lines: Vec<&str> = text.lines().collect();
            if lines.is_empty() {
                continue;
            }
            let tail = &lines[lines.len().saturating_sub(12)..];
            out.push_str(&format!("--- {} ---\n{}\n", f.display(), tail.join("\n")));
        }
        out
    }
}

impl Drop for CephRig {
    fn drop(&mut self) {
        self.stop();
    }
}

/// The worked example's configuration, with this rig's fsid, ports and directory.
fn ceph_conf(d: &Path, fsid: &str, mon_port: u16, rgw_port: u16, memstore_bytes: u64) -> String {
    let d = d.display();
    format!(
        "[global]
fsid = {fsid}
mon host = v1:127.0.0.1:{mon_port}
mon initial members = a
auth cluster required = none
auth service required = none
auth client required = none
ms bind msgr2 = false
public network = 127.0.0.0/8
osd pool default size = 1
osd pool default min size = 1
osd pool default pg num = 8
osd pool default pgp num = 8
mon allow pool size one = true
mon warn on pool no redundancy = false
osd crush chooseleaf type = 0
osd objectstore = memstore
memstore device bytes = {memstore_bytes}
run dir = {d}
admin socket = {d}/$name.asok
log file = {d}/log/$name.log
pid file = {d}/$name.pid
keyring = /dev/null
[mon.a]
mon data = {d}/mon.a
# The monitor's store is a few MiB in a temporary directory: a host disk that is 95 % full
# (a build cache) must not stop it (monitor data filesystem reached concerning levels of
# available storage space).
mon data avail crit = 0
mon data avail warn = 0
[osd.0]
osd data = {d}/osd.0
[client.rgw.a]
rgw frontends = beast endpoint=127.0.0.1:{rgw_port}
rgw data = {d}/rgw
rgw dns name = localhost
"
    )
}

/// Whether `program` is an executable file on `PATH`.
fn on_path(program: &str) -> bool {
    use std::os::unix::fs::PermissionsExt as _;
    std::env::var_os("PATH").is_some_and(|paths| {
        std::env::split_paths(&paths).any(|dir| {
            fs::metadata(dir.join(program))
                .is_ok_and(|m| m.is_file() && m.permissions().mode() & 0o111 != 0)
        })
    })
}

/// Two distinct ports free on 127.0.0.1 right now (both held until both are known).
fn two_free_ports() -> anyhow::Result<(u16, u16)> {
    let a = TcpListener::bind((Ipv4Addr::LOCALHOST, 0))?;
    let b = TcpListener::bind((Ipv4Addr::LOCALHOST, 0))?;
    Ok((a.local_addr()?.port(), b.local_addr()?.port()))
}

fn uuidgen() -> anyhow::Result<String> {
    let out = run(&mut Command::new("uuidgen"))?;
    let uuid = out.trim().to_string();
    if uuid.len() != 36 {
        bail!("uuidgen printed {uuid:?}");
    }
    Ok(uuid)
}

/// Run to completion; stdout, or an error with stderr.
fn run(cmd: &mut Command) -> anyhow::Result<String> {
    let shown = format!("{cmd:?}");
    let out = cmd
        .stdin(Stdio::null())
        .output()
        .with_context(|| format!("running {shown}"))?;
    if !out.status.success() {
        bail!(
            "{shown} failed ({}): {}",
            out.status,
            String::from_utf8_lossy(&out.stderr).trim()
        );
    }
    Ok(String::from_utf8_lossy(&out.stdout).into_owned())
}

/// `f` until it succeeds, at most `tries` times; the last error.
fn retry<T>(tries: u32, mut f: impl FnMut() -> anyhow::Result<T>) -> anyhow::Result<T> {
    let mut tried = 0;
    loop {
        tried += 1;
        match f() {
            Err(_) if tried < tries => std::thread::sleep(Duration::from_millis(500)),
            Err(e) => return Err(e.context(format!("failed {tried} times"))),
            Ok(v) => return Ok(v),
        }
    }
}

fn read_pid(path: &Path) -> Option<u32> {
    fs::read_to_string(path).ok()?.trim().parse().ok()
}

fn kill9(pid: u32) {
    // An error means the process is already gone.
    let _ = Command::new("kill")
        .args(["-KILL", &pid.to_string()])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status();
}

fn wait_until(timeout: Duration, mut done: impl FnMut() -> bool) -> anyhow::Result<()> {
    let deadline = Instant::now() + timeout;
    while !done() {
        if Instant::now() > deadline {
            bail!("timed out after {timeout:?}");
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    Ok(())
}

/// Whether an HTTP server answers `GET /` at `addr`.
fn http_answers(addr: SocketAddr) -> bool {
    let Ok(mut s) = TcpStream::connect_timeout(&addr, Duration::from_secs(1)) else {
        return false;
    };
    let _ = s.set_read_timeout(Some(Duration::from_secs(5)));
    let request = format!("GET / HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n\r\n");
    if s.write_all(request.as_bytes()).is_err() {
        return false;
    }
    let mut head = [0u8; 12];
    let mut got = 0;
    while got < head.len() {
        match s.read(&mut head[got..]) {
            Ok(0) | Err(_) => break,
            Ok(n) => got += n,
        }
    }
    head[..got].starts_with(b"HTTP/1.")
}
