//! The ZFY handshake that Chinese body-worn cameras share (vendor SDKs call these functions
//! 行标/国标): `ZFY_INFO` and its exact byte layout, and the device-time format.
//!
//! `ZFY_INFO` is five NUL-terminated GBK strings in fixed-width fields:
//!
//! | field | newer SDKs | older SDKs |
//! | --- | --- | --- |
//! | 产品序号 device serial (7 chars) | 8 | 7 |
//! | 警号 officer number (6 chars) | 7 | 6 |
//! | user name | 33 | 32 |
//! | 单位编号 unit number (12 chars) | 13 | 12 |
//! | 单位名称 unit name | 33 | 32 |
//! | total | 94 bytes | 89 bytes |
//!
//! Older layouts have no room for the terminating NUL in a full field, so a field is read up to
//! its first NUL or its width, whichever comes first.

use chrono::NaiveDateTime;
use evidock_verify::event::payload::CameraIdentity;
use evidock_verify::gbk;
use evidock_verify::id::{DeviceSerial, OfficerId};

/// Field widths of the newer layout.
pub const WIDTHS_NEW: [usize; 5] = [8, 7, 33, 13, 33];
/// Field widths of the older layout.
pub const WIDTHS_OLD: [usize; 5] = [7, 6, 32, 12, 32];
pub const LEN_NEW: usize = 94;
pub const LEN_OLD: usize = 89;
/// The admin password is six characters.
pub const PASSWORD_LEN: usize = 6;

/// The camera's device time as the SDKs exchange it: `YYYYMMDDhhmmss`, the camera's local time.
pub const TIME_FORMAT: &str = "%Y%m%d%H%M%S";

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ZfyError {
    #[error("ZFY_INFO is {0} bytes; expected {LEN_NEW} (newer SDKs) or {LEN_OLD} (older)")]
    Length(usize),
    #[error("ZFY_INFO field {field} is not valid GBK")]
    Encoding { field: &'static str },
    #[error("ZFY_INFO field {field}: {reason}")]
    Field { field: &'static str, reason: String },
    #[error("ZFY_INFO field {field} does not fit in {width} bytes as GBK")]
    TooLong { field: &'static str, width: usize },
    #[error("device time {0:?} is not YYYYMMDDhhmmss")]
    Time(String),
}

const NAMES: [&str; 5] = ["serial", "officer", "user_name", "unit_number", "unit_name"];

/// Decode a `ZFY_INFO` struct (either layout).
pub fn decode_info(bytes: &[u8]) -> Result<CameraIdentity, ZfyError> {
    let widths = match bytes.len() {
        LEN_NEW => WIDTHS_NEW,
        LEN_OLD => WIDTHS_OLD,
        n => return Err(ZfyError::Length(n)),
    };
    let mut fields: Vec<String> = Vec::with_capacity(5);
    let mut at = 0;
    for (i, w) in widths.iter().enumerate() {
        let raw = &bytes[at..at + w];
        at += w;
        let text = gbk::decode_strict(raw).ok_or(ZfyError::Encoding { field: NAMES[i] })?;
        fields.push(text.trim().to_string());
    }
    let opt = |s: &String| (!s.is_empty()).then(|| s.clone());
    let serial = DeviceSerial::new(fields[0].clone()).map_err(|e| ZfyError::Field {
        field: "serial",
        reason: e.to_string(),
    })?;
    let officer = match opt(&fields[1]) {
        Some(o) => Some(OfficerId::new(o).map_err(|e| ZfyError::Field {
            field: "officer",
            reason: e.to_string(),
        })?),
        None => None,
    };
    Ok(CameraIdentity {
        serial,
        officer,
        user_name: opt(&fields[2]),
        unit_number: opt(&fields[3]),
        unit_name: opt(&fields[4]),
    })
}

/// Encode a `ZFY_INFO` struct in the newer layout (94 bytes).
pub fn encode_info(id: &CameraIdentity) -> Result<Vec<u8>, ZfyError> {
    let values = [
        id.serial.as_str().to_string(),
        id.officer
            .as_ref()
            .map(|o| o.to_string())
            .unwrap_or_default(),
        id.user_name.clone().unwrap_or_default(),
        id.unit_number.clone().unwrap_or_default(),
        id.unit_name.clone().unwrap_or_default(),
    ];
    let mut out = Vec::with_capacity(LEN_NEW);
    for (i, (v, w)) in values.iter().zip(WIDTHS_NEW).enumerate() {
        let b = gbk::encode(v).ok_or(ZfyError::Encoding { field: NAMES[i] })?;
        // Newer layout: room for the NUL terminator is required.
        if b.len() >= w {
            return Err(ZfyError::TooLong {
                field: NAMES[i],
                width: w,
            });
        }
        out.extend_from_slice(&b);
        out.resize(out.len() + (w - b.len()), 0);
    }
    Ok(out)
}

/// Parse a device time (`YYYYMMDDhhmmss`).
pub fn parse_time(s: &str) -> Result<NaiveDateTime, ZfyError> {
    NaiveDateTime::parse_from_str(s.trim_end_matches('\0'), TIME_FORMAT)
        .map_err(|_| ZfyError::Time(s.to_string()))
}

pub fn format_time(t: NaiveDateTime) -> String {
    t.format(TIME_FORMAT).to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn identity() -> CameraIdentity {
        CameraIdentity {
            serial: DeviceSerial::new("ZFY0001").unwrap(),
            officer: Some(OfficerId::new("350201").unwrap()),
            user_name: Some("张三".into()),
            unit_number: Some("350500000001".into()),
            unit_name: Some("晋江市应急管理局".into()),
        }
    }

    #[test]
    fn newer_layout_round_trip_is_94_bytes_gbk() {
        let b = encode_info(&identity()).unwrap();
        assert_eq!(b.len(), LEN_NEW);
        assert_eq!(&b[..8], b"ZFY0001\0");
        assert_eq!(&b[8..15], b"350201\0");
        // 张三 in GBK.
        assert_eq!(&b[15..19], b"\xd5\xc5\xc8\xfd");
        assert_eq!(decode_info(&b).unwrap(), identity());
    }

    #[test]
    fn older_layout_without_terminators() {
        let mut b = Vec::new();
        b.extend_from_slice(b"ZFY0002");
        b.extend_from_slice(b"123456");
        let mut name = gbk::encode("李四").unwrap();
        name.resize(32, 0);
        b.extend_from_slice(&name);
        b.extend_from_slice(b"350500000002");
        let mut unit = gbk::encode("应急管理局").unwrap();
        unit.resize(32, 0);
        b.extend_from_slice(&unit);
        assert_eq!(b.len(), LEN_OLD);
        let id = decode_info(&b).unwrap();
        assert_eq!(id.serial.as_str(), "ZFY0002");
        assert_eq!(id.officer.unwrap().as_str(), "123456");
        assert_eq!(id.user_name.as_deref(), Some("李四"));
        assert_eq!(id.unit_number.as_deref(), Some("350500000002"));
    }

    #[test]
    fn bad_structs_are_errors() {
        assert_eq!(decode_info(&[0u8; 50]), Err(ZfyError::Length(50)));
        let mut b = encode_info(&identity()).unwrap();
        b[0] = 0; // empty serial
        assert!(matches!(
            decode_info(&b),
            Err(ZfyError::Field {
                field: "serial",
                ..
            })
        ));
        let mut b = encode_info(&identity()).unwrap();
        b[15] = 0xff;
        b[16] = 0xff;
        assert!(matches!(
            decode_info(&b),
            Err(ZfyError::Encoding { field: "user_name" })
        ));
        let mut long = identity();
        long.serial = DeviceSerial::new("ZFY00001").unwrap();
        assert!(matches!(
            encode_info(&long),
            Err(ZfyError::TooLong {
                field: "serial",
                ..
            })
        ));
    }

    #[test]
    fn device_time() {
        let t = parse_time("20000101000312").unwrap();
        assert_eq!(format_time(t), "20000101000312");
        assert!(parse_time("2000-01-01").is_err());
    }
}
