//! zfy-gadget: the firmware of an emulated ZFY body camera, run INSIDE the USB test guest
//! (tests/usb/). It serves the vendor interface of docs/formats/camera-protocol.md through
//! FunctionFS and switches the gadget's mass-storage LUN to the card image on `SetMSDC`.
//!
//! usage: zfy-gadget --ffs DIR --lun LUN_FILE --image CARD --serial S [--officer O]
//!        [--user-name N] [--unit-number U] [--unit-name N] --password P
//!        [--clock YYYYMMDDhhmmss] [--drift-ppm PPM] [--battery PCT]
//!        [--stall-after N | --mute] [--unplug-after-msdc]
//!
//! - `--ffs`: the FunctionFS mount (ep0, then ep1 = bulk OUT, ep2 = bulk IN).
//! - `--lun`: the configfs `file` attribute of the mass-storage LUN (set up `ro=1`,
//!   `removable=1`); it is emptied (no medium) at start and when the cable is pulled.
//! - `--mute`: read commands, never answer. `--stall-after N`: answer N commands, then halt the
//!   IN endpoint instead of answering. `--unplug-after-msdc`: pull the cable (unbind the gadget
//!   from its UDC) right after answering `SetMSDC`, before the host can mount the card.
//!
//! Prints `ZFY_GADGET_READY` once the descriptors are written and one `ZFY_CMD` line per command.
// A test rig, not a product binary: failing loudly and printing its log are its job.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::print_stdout,
    clippy::print_stderr
)]

use chrono::NaiveDateTime;
use evidock_ingest::device::zfy;
use evidock_verify::event::payload::CameraIdentity;
use evidock_verify::id::{DeviceSerial, OfficerId};
use std::fs::{File, OpenOptions};
use std::io::{Read, Write};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

const MAGIC: &[u8; 4] = b"ZFY1";
const MAX_PAYLOAD: usize = 512;
const CMD_HEADER: usize = 13;

/// Status codes of a response frame.
const OK: u8 = 0;
const WRONG_PASSWORD: u8 = 1;
const UNKNOWN_COMMAND: u8 = 2;
const BAD_ARGUMENT: u8 = 3;
const BUSY: u8 = 4;

#[derive(Debug, Default)]
struct Args {
    ffs: PathBuf,
    lun: PathBuf,
    image: PathBuf,
    serial: String,
    officer: String,
    user_name: String,
    unit_number: String,
    unit_name: String,
    password: String,
    clock: String,
    drift_ppm: i64,
    battery: u8,
    stall_after: Option<u64>,
    mute: bool,
    unplug_after_msdc: bool,
}

fn parse_args() -> Args {
    let mut a = Args {
        clock: "20000101080000".into(),
        battery: 80,
        ..Args::default()
    };
    let mut it = std::env::args().skip(1);
    while let Some(flag) = it.next() {
        let mut val = || it.next().unwrap_or_else(|| panic!("{flag} needs a value"));
        match flag.as_str() {
            "--ffs" => a.ffs = val().into(),
            "--lun" => a.lun = val().into(),
            "--image" => a.image = val().into(),
            "--serial" => a.serial = val(),
            "--officer" => a.officer = val(),
            "--user-name" => a.user_name = val(),
            "--unit-number" => a.unit_number = val(),
            "--unit-name" => a.unit_name = val(),
            "--password" => a.password = val(),
            "--clock" => a.clock = val(),
            "--drift-ppm" => a.drift_ppm = val().parse().expect("--drift-ppm: integer"),
            "--battery" => a.battery = val().parse().expect("--battery: 0-100"),
            "--stall-after" => a.stall_after = Some(val().parse().expect("--stall-after: count")),
            "--mute" => a.mute = true,
            "--unplug-after-msdc" => a.unplug_after_msdc = true,
            other => panic!("unknown argument {other} (see the usage at the top of zfy-gadget.rs)"),
        }
    }
    assert!(
        !a.ffs.as_os_str().is_empty() && !a.lun.as_os_str().is_empty(),
        "--ffs and --lun are required"
    );
    assert!(
        a.password.len() == zfy::PASSWORD_LEN,
        "--password must be six characters"
    );
    a
}

/// The camera's clock: `base` at `set_at`, running `drift_ppm` fast (negative: slow).
#[derive(Debug)]
struct Clock {
    base: NaiveDateTime,
    set_at: Instant,
    drift_ppm: i64,
}

impl Clock {
    fn now(&self) -> NaiveDateTime {
        let elapsed = i64::try_from(self.set_at.elapsed().as_millis()).unwrap_or(i64::MAX);
        let drift = elapsed.saturating_mul(self.drift_ppm) / 1_000_000;
        self.base + chrono::Duration::milliseconds(elapsed + drift)
    }
}

#[derive(Debug)]
struct Camera {
    args: Args,
    info: Vec<u8>,
    clock: Mutex<Clock>,
}

impl Camera {
    /// The response to one command frame (one bulk OUT transfer): (code, status, payload).
    fn answer(&self, frame: &[u8]) -> (u8, u8, Vec<u8>, String) {
        let code = frame.get(4).copied().unwrap_or(0);
        if frame.len() < CMD_HEADER || &frame[..4] != MAGIC {
            return (
                code,
                BAD_ARGUMENT,
                vec![],
                "bad magic or short frame".into(),
            );
        }
        let n = usize::from(u16::from_le_bytes([frame[11], frame[12]]));
        if n > MAX_PAYLOAD || frame.len() < CMD_HEADER + n {
            return (
                code,
                BAD_ARGUMENT,
                vec![],
                format!("bad payload length {n}"),
            );
        }
        if &frame[5..11] != self.args.password.as_bytes() {
            let got = String::from_utf8_lossy(&frame[5..11]).into_owned();
            return (
                code,
                WRONG_PASSWORD,
                vec![],
                format!("password {got:?} refused"),
            );
        }
        let payload = &frame[CMD_HEADER..CMD_HEADER + n];
        match code {
            0x01 => (
                code,
                OK,
                self.info.clone(),
                format!("serial={}", self.args.serial),
            ),
            0x02 => {
                let t = zfy::format_time(self.clock.lock().unwrap().now());
                (code, OK, t.clone().into_bytes(), format!("clock={t}"))
            }
            0x03 => match std::str::from_utf8(payload).ok().map(zfy::parse_time) {
                Some(Ok(t)) if payload.len() == 14 => {
                    let mut c = self.clock.lock().unwrap();
                    c.base = t;
                    c.set_at = Instant::now();
                    (code, OK, vec![], format!("clock={}", zfy::format_time(t)))
                }
                _ => {
                    let got = String::from_utf8_lossy(payload).into_owned();
                    (code, BAD_ARGUMENT, vec![], format!("bad time {got:?}"))
                }
            },
            0x04 => (
                code,
                OK,
                vec![self.args.battery],
                format!("battery={}", self.args.battery),
            ),
            0x05 => match load_medium(&self.args.lun, &self.args.image) {
                Ok(()) => (
                    code,
                    OK,
                    vec![],
                    format!("medium={}", self.args.image.display()),
                ),
                Err(e) => (code, BUSY, vec![], format!("cannot load the card: {e}")),
            },
            _ => (code, UNKNOWN_COMMAND, vec![], "unknown command".into()),
        }
    }
}

fn command_name(code: u8) -> &'static str {
    match code {
        0x01 => "GetZFYInfo",
        0x02 => "GetDevTime",
        0x03 => "SyncDevTime",
        0x04 => "GetBattery",
        0x05 => "SetMSDC",
        _ => "?",
    }
}

/// Insert the card: the LUN reports a medium from now on (the host sees a media change).
fn load_medium(lun: &Path, image: &Path) -> std::io::Result<()> {
    let want = std::fs::canonicalize(image)?;
    let current = std::fs::read_to_string(lun).unwrap_or_default();
    if Path::new(current.trim()) == want {
        return Ok(());
    }
    std::fs::write(lun, format!("{}\n", want.display()))
}

/// Take the card out (no medium). The host may have locked it (PREVENT MEDIUM REMOVAL): then
/// force the eject, as pulling the cable does.
fn eject(lun: &Path) {
    if std::fs::read_to_string(lun)
        .map(|s| s.trim().is_empty())
        .unwrap_or(true)
    {
        return;
    }
    if let Err(e) = std::fs::write(lun, "\n") {
        let forced = lun.with_file_name("forced_eject");
        if let Err(e2) = std::fs::write(&forced, "1") {
            println!("ZFY_WARN cannot eject the card: {e}; forced_eject: {e2}");
            return;
        }
    }
    println!("ZFY_MEDIUM ejected");
}

/// FunctionFS descriptors (v2 format): one vendor interface 0xFF/0x5A/0x01 with bulk OUT (ep1)
/// and bulk IN (ep2), for full speed and high speed.
fn descriptors() -> Vec<u8> {
    let set = |mps: u16| {
        let mut d = vec![9, 4, 0, 0, 2, 0xFF, 0x5A, 0x01, 1];
        for addr in [0x01u8, 0x82] {
            d.extend_from_slice(&[7, 5, addr, 2]);
            d.extend_from_slice(&mps.to_le_bytes());
            d.push(0);
        }
        d
    };
    let mut body = Vec::new();
    body.extend_from_slice(&3u32.to_le_bytes()); // full-speed descriptor count
    body.extend_from_slice(&3u32.to_le_bytes()); // high-speed descriptor count
    body.extend(set(64));
    body.extend(set(512));
    let mut out = Vec::new();
    out.extend_from_slice(&3u32.to_le_bytes()); // FUNCTIONFS_DESCRIPTORS_MAGIC_V2
    out.extend_from_slice(&(12 + body.len() as u32).to_le_bytes());
    out.extend_from_slice(&(1u32 | 2).to_le_bytes()); // HAS_FS_DESC | HAS_HS_DESC
    out.extend(body);
    out
}

fn strings() -> Vec<u8> {
    let s = b"ZFY vendor interface\0";
    let mut out = Vec::new();
    out.extend_from_slice(&2u32.to_le_bytes()); // FUNCTIONFS_STRINGS_MAGIC
    out.extend_from_slice(&(16 + 2 + s.len() as u32).to_le_bytes());
    out.extend_from_slice(&1u32.to_le_bytes()); // strings
    out.extend_from_slice(&1u32.to_le_bytes()); // languages
    out.extend_from_slice(&0x0409u16.to_le_bytes());
    out.extend_from_slice(s);
    out
}

/// The gadget directory in configfs, from the LUN attribute path
/// (`<gadget>/functions/mass_storage.0/lun.0/file`).
fn gadget_dir(lun: &Path) -> Option<&Path> {
    lun.ancestors().nth(4)
}

/// Serve command frames from bulk OUT, answer on bulk IN. FunctionFS endpoint I/O blocks until
/// the host has configured the interface, and fails while it is not: after a failure wait and
/// go on (the cable may come back).
fn serve(cam: Arc<Camera>) {
    let ffs = &cam.args.ffs;
    let mut out = File::open(ffs.join("ep1")).expect("open ep1 (bulk OUT)");
    let mut inp = OpenOptions::new()
        .read(true)
        .write(true)
        .open(ffs.join("ep2"))
        .expect("open ep2 (bulk IN)");
    let mut buf = vec![0u8; 4096];
    let mut count: u64 = 0;
    let mut last_err = String::new();
    loop {
        let n = match out.read(&mut buf) {
            Ok(n) => n,
            Err(e) => {
                if e.to_string() != last_err {
                    println!("ZFY_IO bulk OUT: {e}");
                    last_err = e.to_string();
                }
                std::thread::sleep(Duration::from_millis(20));
                continue;
            }
        };
        last_err.clear();
        if n == 0 {
            continue;
        }
        count += 1;
        let frame = &buf[..n];
        let code = frame.get(4).copied().unwrap_or(0);
        let name = command_name(code);
        if cam.args.mute {
            println!("ZFY_CMD #{count} {name}(0x{code:02x}) mute: no answer");
            continue;
        }
        if cam.args.stall_after.is_some_and(|k| count > k) {
            // Reading from an IN endpoint file makes FunctionFS halt the endpoint.
            let r = inp.read(&mut [0u8; 1]);
            println!("ZFY_CMD #{count} {name}(0x{code:02x}) stall: IN endpoint halted ({r:?})");
            continue;
        }
        let (code, status, payload, detail) = cam.answer(frame);
        let mut resp = Vec::with_capacity(8 + payload.len());
        resp.extend_from_slice(MAGIC);
        resp.push(code);
        resp.push(status);
        resp.extend_from_slice(&(payload.len() as u16).to_le_bytes());
        resp.extend_from_slice(&payload);
        let sent = inp.write_all(&resp);
        println!(
            "ZFY_CMD #{count} {name}(0x{code:02x}) status={status} {detail}{}",
            match &sent {
                Ok(()) => String::new(),
                Err(e) => format!(" (response not delivered: {e})"),
            }
        );
        if code == 0x05 && status == OK && sent.is_ok() && cam.args.unplug_after_msdc {
            let udc = gadget_dir(&cam.args.lun).map(|g| g.join("UDC"));
            std::thread::spawn(move || {
                let r = udc.map(|u| std::fs::write(u, "\n"));
                println!("ZFY_UNPLUG after SetMSDC: {r:?}");
            });
        }
    }
}

fn main() {
    let args = parse_args();
    let opt = |s: &str| (!s.is_empty()).then(|| s.to_string());
    let identity = CameraIdentity {
        serial: DeviceSerial::new(args.serial.clone()).expect("--serial"),
        officer: opt(&args.officer).map(|o| OfficerId::new(o).expect("--officer")),
        user_name: opt(&args.user_name),
        unit_number: opt(&args.unit_number),
        unit_name: opt(&args.unit_name),
    };
    let info = zfy::encode_info(&identity).expect("ZFY_INFO");
    let base = zfy::parse_time(&args.clock).expect("--clock YYYYMMDDhhmmss");
    eject(&args.lun);

    let mut ep0 = OpenOptions::new()
        .read(true)
        .write(true)
        .open(args.ffs.join("ep0"))
        .expect("open ep0 (is FunctionFS mounted there?)");
    ep0.write_all(&descriptors()).expect("write descriptors");
    ep0.write_all(&strings()).expect("write strings");
    println!(
        "ZFY_GADGET_READY serial={} officer={} password={} clock={} drift_ppm={}{}{}",
        args.serial,
        args.officer,
        args.password,
        args.clock,
        args.drift_ppm,
        if args.mute { " mute" } else { "" },
        args.stall_after
            .map(|n| format!(" stall_after={n}"))
            .unwrap_or_default(),
    );

    let cam = Arc::new(Camera {
        clock: Mutex::new(Clock {
            base,
            set_at: Instant::now(),
            drift_ppm: args.drift_ppm,
        }),
        info,
        args,
    });
    let server = cam.clone();
    std::thread::spawn(move || serve(server));

    // ep0 events: struct usb_functionfs_event = 8-byte setup packet, type, 3 bytes padding.
    const NAMES: [&str; 7] = [
        "BIND", "UNBIND", "ENABLE", "DISABLE", "SETUP", "SUSPEND", "RESUME",
    ];
    let mut ev = [0u8; 48];
    loop {
        let n = match ep0.read(&mut ev) {
            Ok(0) => break,
            Ok(n) => n,
            Err(e) => {
                println!("ZFY_IO ep0: {e}");
                std::thread::sleep(Duration::from_millis(20));
                continue;
            }
        };
        for e in ev[..n].chunks_exact(12) {
            let kind = usize::from(e[8]);
            println!("ZFY_EP0 {}", NAMES.get(kind).unwrap_or(&"?"));
            match kind {
                // Cable out: the card goes with it (no medium until the next SetMSDC).
                1 => eject(&cam.args.lun),
                // No class or vendor control requests: stall them (an IN request is stalled
                // by reading ep0, an OUT request by writing it).
                4 => {
                    let r = if e[0] & 0x80 != 0 {
                        ep0.read(&mut [0u8; 1]).map(|_| ())
                    } else {
                        ep0.write(&[0u8]).map(|_| ())
                    };
                    println!(
                        "ZFY_EP0 setup bmRequestType=0x{:02x} bRequest=0x{:02x} stalled ({r:?})",
                        e[0], e[1]
                    );
                }
                _ => {}
            }
        }
    }
}
