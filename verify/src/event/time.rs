//! The two time fields of an event, each with exactly one written form: `time` (a UTC instant in
//! milliseconds) and `offset` (the station's UTC offset then). Apart from the envelope because
//! parsing and printing them strictly is a concern of its own.

use chrono::{DateTime, FixedOffset, SecondsFormat, Utc};
use serde::{Deserialize, Deserializer, Serialize, Serializer};
use std::fmt;

/// A UTC offset, written `+08:00`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct UtcOffset(pub FixedOffset);

impl UtcOffset {
    pub fn utc() -> Self {
        UtcOffset(FixedOffset::east_opt(0).unwrap_or_else(|| Utc.fix()))
    }
}

use chrono::Offset as _;

impl fmt::Display for UtcOffset {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let secs = self.0.local_minus_utc();
        let sign = if secs < 0 { '-' } else { '+' };
        let m = secs.unsigned_abs() / 60;
        write!(f, "{sign}{:02}:{:02}", m / 60, m % 60)
    }
}

impl std::str::FromStr for UtcOffset {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        let b = s.as_bytes();
        let ok = b.len() == 6
            && (b[0] == b'+' || b[0] == b'-')
            && b[3] == b':'
            && [1, 2, 4, 5].iter().all(|&i| b[i].is_ascii_digit());
        if !ok {
            return Err(format!("offset {s:?} is not ±HH:MM"));
        }
        let h: i32 = s[1..3].parse().map_err(|_| format!("bad hours in {s:?}"))?;
        let m: i32 = s[4..6]
            .parse()
            .map_err(|_| format!("bad minutes in {s:?}"))?;
        if h > 14 || m > 59 {
            return Err(format!("offset {s:?} out of range"));
        }
        let secs = (h * 3600 + m * 60) * if b[0] == b'-' { -1 } else { 1 };
        if secs == 0 && b[0] == b'-' {
            return Err("offset -00:00 is not allowed; write +00:00".into());
        }
        FixedOffset::east_opt(secs)
            .map(UtcOffset)
            .ok_or_else(|| format!("offset {s:?} out of range"))
    }
}

impl Serialize for UtcOffset {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

impl<'de> Deserialize<'de> for UtcOffset {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        String::deserialize(d)?
            .parse()
            .map_err(serde::de::Error::custom)
    }
}

/// A UTC instant with millisecond precision, written `2026-11-28T09:10:55.123Z` (one form only).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Timestamp(pub DateTime<Utc>);

impl Timestamp {
    /// Truncate to milliseconds, the precision events carry.
    pub fn from_datetime(t: DateTime<Utc>) -> Self {
        let ms = t.timestamp_millis();
        Timestamp(DateTime::from_timestamp_millis(ms).unwrap_or(t))
    }

    pub fn now() -> Self {
        Self::from_datetime(Utc::now())
    }

    /// In the given offset, e.g. for showing a Beijing time.
    pub fn local(&self, offset: UtcOffset) -> DateTime<FixedOffset> {
        self.0.with_timezone(&offset.0)
    }
}

impl fmt::Display for Timestamp {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0.to_rfc3339_opts(SecondsFormat::Millis, true))
    }
}

impl std::str::FromStr for Timestamp {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        let t = DateTime::parse_from_rfc3339(s)
            .map_err(|e| format!("time {s:?}: {e}"))?
            .with_timezone(&Utc);
        let ts = Timestamp(t);
        if ts.to_string() != s {
            return Err(format!(
                "time {s:?} is not in the form YYYY-MM-DDTHH:MM:SS.mmmZ"
            ));
        }
        Ok(ts)
    }
}

impl Serialize for Timestamp {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

impl<'de> Deserialize<'de> for Timestamp {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        String::deserialize(d)?
            .parse()
            .map_err(serde::de::Error::custom)
    }
}
