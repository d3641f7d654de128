//! The station clock, behind a trait so tests can set the time.

use chrono::{DateTime, Local, Offset as _, Utc};
use evidock_verify::event::{Timestamp, UtcOffset};
use std::sync::Mutex;

pub trait Clock: Send + Sync + std::fmt::Debug {
    /// Now, in UTC.
    fn now(&self) -> DateTime<Utc>;
    /// The station's UTC offset at `at` (its configured or system time zone).
    fn offset_at(&self, at: DateTime<Utc>) -> UtcOffset;

    /// Now, at event precision, with the offset then.
    fn stamp(&self) -> (Timestamp, UtcOffset) {
        let now = self.now();
        (Timestamp::from_datetime(now), self.offset_at(now))
    }
}

/// The system clock; the offset is the configured one, or the system time zone's.
#[derive(Debug, Clone, Default)]
pub struct SystemClock {
    pub fixed_offset: Option<UtcOffset>,
}

impl Clock for SystemClock {
    fn now(&self) -> DateTime<Utc> {
        Utc::now()
    }
    fn offset_at(&self, at: DateTime<Utc>) -> UtcOffset {
        self.fixed_offset
            .unwrap_or_else(|| UtcOffset(at.with_timezone(&Local).offset().fix()))
    }
}

/// A clock that only moves when told to (tests).
#[derive(Debug)]
pub struct ManualClock {
    now: Mutex<DateTime<Utc>>,
    offset: UtcOffset,
}

impl ManualClock {
    pub fn new(now: DateTime<Utc>, offset: UtcOffset) -> Self {
        ManualClock {
            now: Mutex::new(now),
            offset,
        }
    }

    pub fn advance(&self, by: chrono::Duration) {
        if let Ok(mut t) = self.now.lock() {
            *t += by;
        }
    }
}

impl Clock for ManualClock {
    fn now(&self) -> DateTime<Utc> {
        self.now
            .lock()
            .map(|t| *t)
            .unwrap_or_else(|p| *p.into_inner())
    }
    fn offset_at(&self, _at: DateTime<Utc>) -> UtcOffset {
        self.offset
    }
}
