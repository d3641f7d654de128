//! The `published` table: how far each station's custody log is published in the store.

use super::{Journal, JournalError};
use rusqlite::{OptionalExtension as _, params};

impl Journal {
    /// How far this station's custody log is published in the store.
    pub fn published(&self, station: &str) -> Result<u64, JournalError> {
        self.with(|db| {
            db.query_row(
                "SELECT size FROM published WHERE station = ?1",
                params![station],
                |r| r.get::<_, i64>(0),
            )
            .optional()
        })
        .map(|o| o.unwrap_or(0) as u64)
    }

    pub fn set_published(&self, station: &str, size: u64) -> Result<(), JournalError> {
        self.with(|db| {
            db.execute(
                "INSERT INTO published (station, size) VALUES (?1, ?2)
                 ON CONFLICT (station) DO UPDATE SET size = MAX(size, ?2)",
                params![station, size as i64],
            )
            .map(|_| ())
        })
    }
}
