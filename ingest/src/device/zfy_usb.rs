//! The `zfy-usb` driver: the ZFY handshake over evidock's reference protocol on a USB vendor
//! interface (docs/formats/camera-protocol.md).

use super::zfy;
use super::{CameraDriver, DeviceError};
use chrono::NaiveDateTime;
use evidock_verify::event::payload::CameraIdentity;
use std::time::Duration;

/// The vendor interface: class, subclass, protocol.
pub const INTERFACE: (u8, u8, u8) = (0xFF, 0x5A, 0x01);
pub const MAGIC: &[u8; 4] = b"ZFY1";
pub const MAX_PAYLOAD: usize = 512;
const TIMEOUT: Duration = Duration::from_secs(2);

/// Command codes.
pub mod cmd {
    pub const GET_INFO: u8 = 0x01;
    pub const GET_TIME: u8 = 0x02;
    pub const SYNC_TIME: u8 = 0x03;
    pub const GET_BATTERY: u8 = 0x04;
    pub const SET_MSDC: u8 = 0x05;
}

/// Response status codes.
pub mod status {
    pub const OK: u8 = 0;
    pub const WRONG_PASSWORD: u8 = 1;
    pub const UNKNOWN_COMMAND: u8 = 2;
    pub const BAD_ARGUMENT: u8 = 3;
    pub const BUSY: u8 = 4;
}

/// Encode a command frame.
pub fn command_frame(code: u8, password: &str, payload: &[u8]) -> Result<Vec<u8>, String> {
    if password.len() != zfy::PASSWORD_LEN || !password.is_ascii() {
        return Err("the admin password must be six ASCII characters".into());
    }
    if payload.len() > MAX_PAYLOAD {
        return Err(format!(
            "payload of {} bytes exceeds {MAX_PAYLOAD}",
            payload.len()
        ));
    }
    let mut f = Vec::with_capacity(13 + payload.len());
    f.extend_from_slice(MAGIC);
    f.push(code);
    f.extend_from_slice(password.as_bytes());
    f.extend_from_slice(&(payload.len() as u16).to_le_bytes());
    f.extend_from_slice(payload);
    Ok(f)
}

/// A parsed response frame: (command code, status, payload).
pub fn parse_response(frame: &[u8]) -> Result<(u8, u8, &[u8]), String> {
    if frame.len() < 8 {
        return Err(format!(
            "response of {} bytes is shorter than its header",
            frame.len()
        ));
    }
    if &frame[..4] != MAGIC {
        return Err("response does not start with ZFY1".into());
    }
    let len = u16::from_le_bytes([frame[6], frame[7]]) as usize;
    if len > MAX_PAYLOAD || frame.len() < 8 + len {
        return Err(format!(
            "response payload length {len} does not fit the frame"
        ));
    }
    Ok((frame[4], frame[5], &frame[8..8 + len]))
}

/// A ZFY camera on the USB bus.
pub struct ZfyUsbDriver {
    handle: rusb::DeviceHandle<rusb::Context>,
    interface: u8,
    ep_out: u8,
    ep_in: u8,
    /// How the camera is named in errors until it has identified itself.
    name: String,
}

impl std::fmt::Debug for ZfyUsbDriver {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ZfyUsbDriver")
            .field("device", &self.name)
            .field("interface", &self.interface)
            .finish()
    }
}

/// How long a newly arrived device may take to be configured by the kernel.
const CONFIGURED_WITHIN: std::time::Duration = std::time::Duration::from_secs(3);

impl ZfyUsbDriver {
    /// Find the vendor interface of `device`, open it and claim the interface.
    pub fn open(device: &rusb::Device<rusb::Context>, name: &str) -> Result<Self, DeviceError> {
        let failed = |op: &'static str, e: rusb::Error| DeviceError::Failed {
            device: name.to_string(),
            op,
            reason: e.to_string(),
            retriable: !matches!(e, rusb::Error::Access | rusb::Error::NotSupported),
        };
        // libusb announces a device on the kernel's `add` uevent, before usbcore has chosen
        // its configuration; until then there is no active configuration (NotFound). Wait
        // for it rather than turn a camera away for arriving quickly.
        let deadline = std::time::Instant::now() + CONFIGURED_WITHIN;
        let config = loop {
            match device.active_config_descriptor() {
                Err(rusb::Error::NotFound) if std::time::Instant::now() < deadline => {
                    std::thread::sleep(std::time::Duration::from_millis(50));
                }
                r => break r.map_err(|e| failed("read the configuration", e))?,
            }
        };
        let mut found = None;
        for iface in config.interfaces() {
            for alt in iface.descriptors() {
                if (alt.class_code(), alt.sub_class_code(), alt.protocol_code()) != INTERFACE {
                    continue;
                }
                let mut ep_in = None;
                let mut ep_out = None;
                for ep in alt.endpoint_descriptors() {
                    if ep.transfer_type() != rusb::TransferType::Bulk {
                        continue;
                    }
                    match ep.direction() {
                        rusb::Direction::In => ep_in = Some(ep.address()),
                        rusb::Direction::Out => ep_out = Some(ep.address()),
                    }
                }
                if let (Some(i), Some(o)) = (ep_in, ep_out) {
                    found = Some((alt.interface_number(), o, i));
                }
            }
        }
        let (interface, ep_out, ep_in) = found.ok_or_else(|| DeviceError::Protocol {
            device: name.to_string(),
            op: "find the vendor interface",
            reason: "no interface of class ff/5a/01 with a bulk IN and a bulk OUT endpoint".into(),
        })?;
        let handle = device.open().map_err(|e| failed("open", e))?;
        // No kernel driver binds a vendor interface, but be explicit if one did.
        let _ = handle.set_auto_detach_kernel_driver(true);
        handle
            .claim_interface(interface)
            .map_err(|e| failed("claim the vendor interface", e))?;
        Ok(ZfyUsbDriver {
            handle,
            interface,
            ep_out,
            ep_in,
            name: name.to_string(),
        })
    }

    /// One command and its response. A stalled endpoint is cleared and the command tried once
    /// more; a camera that does not answer within the timeout is reported (retriable).
    fn call(
        &mut self,
        code: u8,
        op: &'static str,
        password: &str,
        payload: &[u8],
    ) -> Result<Vec<u8>, DeviceError> {
        let frame =
            command_frame(code, password, payload).map_err(|reason| DeviceError::Protocol {
                device: self.name.clone(),
                op,
                reason,
            })?;
        let mut last = None;
        for attempt in 0..2 {
            match self.exchange(&frame) {
                Ok(resp) => return self.check(code, op, &resp),
                Err(rusb::Error::Pipe) if attempt == 0 => {
                    let _ = self.handle.clear_halt(self.ep_out);
                    let _ = self.handle.clear_halt(self.ep_in);
                    last = Some(rusb::Error::Pipe);
                }
                Err(e) => {
                    last = Some(e);
                    break;
                }
            }
        }
        let e = last.unwrap_or(rusb::Error::Other);
        Err(DeviceError::Failed {
            device: self.name.clone(),
            op,
            reason: match e {
                rusb::Error::Timeout => format!(
                    "the vendor interface did not answer within {} s",
                    TIMEOUT.as_secs()
                ),
                rusb::Error::Pipe => "the vendor interface stalled twice".into(),
                rusb::Error::NoDevice => "the camera was unplugged".into(),
                other => other.to_string(),
            },
            retriable: true,
        })
    }

    fn exchange(&mut self, frame: &[u8]) -> Result<Vec<u8>, rusb::Error> {
        let n = self.handle.write_bulk(self.ep_out, frame, TIMEOUT)?;
        if n != frame.len() {
            return Err(rusb::Error::Io);
        }
        let mut buf = vec![0u8; 8 + MAX_PAYLOAD];
        let n = self.handle.read_bulk(self.ep_in, &mut buf, TIMEOUT)?;
        buf.truncate(n);
        Ok(buf)
    }

    fn check(&self, code: u8, op: &'static str, resp: &[u8]) -> Result<Vec<u8>, DeviceError> {
        let protocol = |reason: String| DeviceError::Protocol {
            device: self.name.clone(),
            op,
            reason,
        };
        let (answered, st, payload) = parse_response(resp).map_err(protocol)?;
        if answered != code {
            return Err(protocol(format!(
                "answered command {answered:#04x}, not {code:#04x}"
            )));
        }
        match st {
            status::OK => Ok(payload.to_vec()),
            status::WRONG_PASSWORD => Err(DeviceError::WrongPassword {
                device: self.name.clone(),
            }),
            status::BUSY => Err(DeviceError::Failed {
                device: self.name.clone(),
                op,
                reason: "the camera is busy".into(),
                retriable: true,
            }),
            status::UNKNOWN_COMMAND => {
                Err(protocol("the camera does not know this command".into()))
            }
            status::BAD_ARGUMENT => Err(protocol("the camera refused the argument".into())),
            other => Err(protocol(format!("unknown status {other}"))),
        }
    }
}

impl Drop for ZfyUsbDriver {
    fn drop(&mut self) {
        let _ = self.handle.release_interface(self.interface);
    }
}

impl CameraDriver for ZfyUsbDriver {
    fn name(&self) -> &'static str {
        "zfy-usb"
    }

    fn identify(&mut self, password: &str) -> Result<CameraIdentity, DeviceError> {
        let b = self.call(cmd::GET_INFO, "GetZFYInfo", password, &[])?;
        let id = zfy::decode_info(&b).map_err(|e| DeviceError::Protocol {
            device: self.name.clone(),
            op: "GetZFYInfo",
            reason: e.to_string(),
        })?;
        self.name = id.serial.to_string();
        Ok(id)
    }

    fn read_clock(&mut self, password: &str) -> Result<Option<NaiveDateTime>, DeviceError> {
        let b = self.call(cmd::GET_TIME, "GetDevTime", password, &[])?;
        let text = String::from_utf8_lossy(&b);
        zfy::parse_time(&text)
            .map(Some)
            .map_err(|e| DeviceError::Protocol {
                device: self.name.clone(),
                op: "GetDevTime",
                reason: e.to_string(),
            })
    }

    fn sync_clock(&mut self, password: &str, local: NaiveDateTime) -> Result<bool, DeviceError> {
        self.call(
            cmd::SYNC_TIME,
            "SyncDevTime",
            password,
            zfy::format_time(local).as_bytes(),
        )?;
        Ok(true)
    }

    fn battery(&mut self, password: &str) -> Result<Option<u8>, DeviceError> {
        let b = self.call(cmd::GET_BATTERY, "GetBattery", password, &[])?;
        Ok(b.first().copied().filter(|p| *p <= 100))
    }

    fn set_mass_storage(&mut self, password: &str) -> Result<(), DeviceError> {
        self.call(cmd::SET_MSDC, "SetMSDC", password, &[])
            .map(|_| ())
    }
}

/// A libusb context for the USB source and drivers.
pub fn context() -> Result<rusb::Context, String> {
    rusb::Context::new().map_err(|e| format!("cannot start libusb: {e}"))
}

/// A device's bus/port path as a dock slot name, e.g. `usb-1-1.2`.
pub fn slot_name(device: &rusb::Device<rusb::Context>) -> String {
    let ports = device
        .port_numbers()
        .map(|p| p.iter().map(u8::to_string).collect::<Vec<_>>().join("."))
        .unwrap_or_default();
    if ports.is_empty() {
        format!("usb-{}-root", device.bus_number())
    } else {
        format!("usb-{}-{ports}", device.bus_number())
    }
}

/// The sysfs name of a device (`<bus>-<ports>`, e.g. `1-1.2`).
pub fn sysfs_name(device: &rusb::Device<rusb::Context>) -> String {
    slot_name(device).trim_start_matches("usb-").to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn frames_round_trip_and_reject_garbage() {
        let f = command_frame(cmd::SYNC_TIME, "000000", b"20261128080000").unwrap();
        assert_eq!(&f[..4], b"ZFY1");
        assert_eq!(f[4], 0x03);
        assert_eq!(&f[5..11], b"000000");
        assert_eq!(u16::from_le_bytes([f[11], f[12]]), 14);
        assert!(command_frame(1, "12345", b"").is_err());
        assert!(command_frame(1, "123456", &[0; 513]).is_err());

        let mut r = b"ZFY1".to_vec();
        r.extend_from_slice(&[0x04, 0, 1, 0, 77]);
        assert_eq!(parse_response(&r).unwrap(), (4, 0, &[77u8][..]));
        assert!(parse_response(b"ZFY1\x04\x00\x05\x00ab").is_err());
        assert!(parse_response(b"XXXX\x04\x00\x00\x00").is_err());
        assert!(parse_response(b"ZFY").is_err());
    }
}
