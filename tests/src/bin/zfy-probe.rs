//! zfy-probe: a minimal host side of docs/formats/camera-protocol.md over libusb, to check the
//! emulated camera (zfy-gadget) in the USB test guest without the station.
//!
//! usage: zfy-probe [--vid 0x2fe3] [--pid 0x0c01] [--password 000000] [--wait SECS] COMMAND...
//! COMMAND: info | time | sync[=YYYYMMDDhhmmss] (default: now, UTC) | battery | msdc |
//!          raw=HEX (send these bytes as a frame)
//!
//! Prints `PROBE <command> status=<n> ...` per command, or `PROBE <command> error=<e>`.
// A test rig, not a product binary: failing loudly and printing its results are its job.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::print_stdout,
    clippy::print_stderr
)]

use evidock_ingest::device::zfy;
use rusb::UsbContext as _;
use std::time::{Duration, Instant};

const TIMEOUT: Duration = Duration::from_secs(2);

fn num(s: &str) -> u16 {
    match s.strip_prefix("0x") {
        Some(h) => u16::from_str_radix(h, 16).expect("hex number"),
        None => s.parse().expect("number"),
    }
}

fn frame(code: u8, password: &str, payload: &[u8]) -> Vec<u8> {
    let mut f = b"ZFY1".to_vec();
    f.push(code);
    f.extend_from_slice(password.as_bytes());
    f.extend_from_slice(&(payload.len() as u16).to_le_bytes());
    f.extend_from_slice(payload);
    f
}

/// The vendor interface (ff/5a/01) of the device's active configuration and its bulk endpoints,
/// or None while the device is not configured yet.
fn vendor_interface(dev: &rusb::Device<rusb::Context>) -> Option<(u8, u8, u8)> {
    let config = dev.active_config_descriptor().ok()?;
    for i in config.interfaces() {
        for alt in i.descriptors() {
            if (alt.class_code(), alt.sub_class_code(), alt.protocol_code()) != (0xFF, 0x5A, 0x01) {
                continue;
            }
            let (mut ep_out, mut ep_in) = (None, None);
            for ep in alt.endpoint_descriptors() {
                if ep.transfer_type() == rusb::TransferType::Bulk {
                    match ep.direction() {
                        rusb::Direction::Out => ep_out = Some(ep.address()),
                        rusb::Direction::In => ep_in = Some(ep.address()),
                    }
                }
            }
            return Some((alt.interface_number(), ep_out?, ep_in?));
        }
    }
    None
}

fn main() {
    let (mut vid, mut pid, mut password, mut wait) = (0x2fe3, 0x0c01, "000000".to_string(), 5u64);
    let mut commands = Vec::new();
    let mut it = std::env::args().skip(1);
    while let Some(a) = it.next() {
        match a.as_str() {
            "--vid" => vid = num(&it.next().expect("--vid value")),
            "--pid" => pid = num(&it.next().expect("--pid value")),
            "--password" => password = it.next().expect("--password value"),
            "--wait" => wait = it.next().expect("--wait value").parse().expect("seconds"),
            _ => commands.push(a),
        }
    }
    let ctx = rusb::Context::new().expect("libusb");
    let deadline = Instant::now() + Duration::from_secs(wait);
    // Right after a plug the device is listed before the kernel has set its configuration: until
    // then it has no active configuration, or not yet the vendor interface. Both are waited for,
    // as the station's USB watcher waits for them, rather than failed on.
    let (dev, intf, ep_out, ep_in) = loop {
        let found = ctx.devices().expect("list devices").iter().find_map(|d| {
            let dd = d.device_descriptor().ok()?;
            if (dd.vendor_id(), dd.product_id()) != (vid, pid) {
                return None;
            }
            let (intf, ep_out, ep_in) = vendor_interface(&d)?;
            Some((d, intf, ep_out, ep_in))
        });
        match found {
            Some(f) => break f,
            None if Instant::now() < deadline => std::thread::sleep(Duration::from_millis(50)),
            None => {
                println!(
                    "PROBE error=no configured device {vid:04x}:{pid:04x} with interface ff/5a/01"
                );
                std::process::exit(1);
            }
        }
    };
    println!(
        "PROBE device {vid:04x}:{pid:04x} bus={} addr={} interface={intf} out=0x{ep_out:02x} in=0x{ep_in:02x}",
        dev.bus_number(),
        dev.address()
    );
    // Opening and claiming can fail for a moment too (the device node not made yet, another
    // driver still probing): retried until the same deadline, then reported as a PROBE line.
    let h = loop {
        let attempt = dev.open().and_then(|h| {
            let _ = h.set_auto_detach_kernel_driver(true);
            h.claim_interface(intf).map(|()| h)
        });
        match attempt {
            Ok(h) => break h,
            Err(_) if Instant::now() < deadline => std::thread::sleep(Duration::from_millis(50)),
            Err(e) => {
                println!("PROBE error=open or claim interface {intf}: {e}");
                std::process::exit(1);
            }
        }
    };
    let mut failed = false;
    for c in &commands {
        let (name, arg) = c.split_once('=').unwrap_or((c.as_str(), ""));
        let out = match name {
            "info" => frame(1, &password, &[]),
            "time" => frame(2, &password, &[]),
            "sync" => {
                let t = if arg.is_empty() {
                    zfy::format_time(chrono::Utc::now().naive_utc())
                } else {
                    arg.to_string()
                };
                frame(3, &password, t.as_bytes())
            }
            "battery" => frame(4, &password, &[]),
            "msdc" => frame(5, &password, &[]),
            "raw" => hex::decode(arg).expect("raw=HEX"),
            other => panic!("unknown command {other}"),
        };
        if let Err(e) = h.write_bulk(ep_out, &out, TIMEOUT) {
            println!("PROBE {name} error=write: {e}");
            failed = true;
            continue;
        }
        let mut buf = [0u8; 1024];
        let n = match h.read_bulk(ep_in, &mut buf, TIMEOUT) {
            Ok(n) => n,
            Err(e) => {
                println!("PROBE {name} error=read: {e}");
                if e == rusb::Error::Pipe {
                    let _ = h.clear_halt(ep_in);
                }
                failed = true;
                continue;
            }
        };
        let r = &buf[..n];
        if n < 8 || &r[..4] != b"ZFY1" {
            println!("PROBE {name} error=bad response {}", hex::encode(r));
            failed = true;
            continue;
        }
        let len = usize::from(u16::from_le_bytes([r[6], r[7]]));
        let payload = &r[8..(8 + len).min(n)];
        let detail = match (name, r[5]) {
            ("info", 0) => match zfy::decode_info(payload) {
                Ok(id) => format!(
                    "serial={} officer={} user={} unit_number={} unit={}",
                    id.serial.as_str(),
                    id.officer.map(|o| o.to_string()).unwrap_or_default(),
                    id.user_name.unwrap_or_default(),
                    id.unit_number.unwrap_or_default(),
                    id.unit_name.unwrap_or_default()
                ),
                Err(e) => format!("bad ZFY_INFO ({} bytes): {e}", payload.len()),
            },
            ("time", 0) => format!("clock={}", String::from_utf8_lossy(payload)),
            ("battery", 0) => format!("battery={}", payload.first().copied().unwrap_or(0)),
            _ => format!("payload={}", hex::encode(payload)),
        };
        println!("PROBE {name} code=0x{:02x} status={} {detail}", r[4], r[5]);
    }
    let _ = h.release_interface(intf);
    std::process::exit(i32::from(failed));
}
