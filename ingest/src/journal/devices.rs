//! The `clocks` and `assignments` tables: each camera's clock offsets and who carried it.

use super::{Journal, JournalError, Undecodable, parse_ts, ts};
use chrono::{DateTime, Utc};
use evidock_verify::id::{DeviceSerial, OfficerId};
use rusqlite::{OptionalExtension as _, params};

impl Journal {
    pub fn clock_history(
        &self,
        device: &DeviceSerial,
    ) -> Result<(Option<DateTime<Utc>>, Option<f64>), JournalError> {
        self.with(|db| {
            db.query_row(
                "SELECT synced_at, drift_ppm FROM clocks WHERE device = ?1",
                params![device.as_str()],
                |r| Ok((r.get::<_, Option<String>>(0)?, r.get::<_, Option<f64>>(1)?)),
            )
            .optional()
        })
        .map(|o| match o {
            Some((s, d)) => (s.as_deref().and_then(parse_ts), d),
            None => (None, None),
        })
    }

    pub fn record_clock(
        &self,
        device: &DeviceSerial,
        synced_at: Option<DateTime<Utc>>,
        drift_ppm: Option<f64>,
    ) -> Result<(), JournalError> {
        self.with(|db| {
            db.execute(
                "INSERT INTO clocks (device, synced_at, drift_ppm) VALUES (?1, ?2, ?3)
                 ON CONFLICT (device) DO UPDATE SET synced_at = COALESCE(?2, synced_at), drift_ppm = COALESCE(?3, drift_ppm)",
                params![device.as_str(), synced_at.map(ts), drift_ppm],
            )
            .map(|_| ())
        })
    }

    pub fn add_assignment(
        &self,
        device: &DeviceSerial,
        officer: &OfficerId,
        from: DateTime<Utc>,
    ) -> Result<(), JournalError> {
        self.with(|db| {
            db.execute(
                "INSERT OR REPLACE INTO assignments (device, officer, from_utc) VALUES (?1, ?2, ?3)",
                params![device.as_str(), officer.as_str(), ts(from)],
            )
            .map(|_| ())
        })
    }

    /// Who carried `device` at `at`: the latest assignment from at or before then.
    pub fn assigned_officer(
        &self,
        device: &DeviceSerial,
        at: DateTime<Utc>,
    ) -> Result<Option<OfficerId>, JournalError> {
        self.with(|db| {
            db.query_row(
                "SELECT officer FROM assignments WHERE device = ?1 AND from_utc <= ?2 ORDER BY from_utc DESC LIMIT 1",
                params![device.as_str(), ts(at)],
                |r| r.get::<_, String>(0),
            )
            .optional()
        })
        .and_then(|o| {
            o.map(|s| {
                OfficerId::new(s.clone()).map_err(|e| {
                    self.undecodable_err(Undecodable {
                        table: "assignments".into(),
                        row: format!("{device}/{s}"),
                        reason: e.to_string(),
                    })
                })
            })
            .transpose()
        })
    }
}
