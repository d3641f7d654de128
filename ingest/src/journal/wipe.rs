//! Wipe requests: opened before the `wipe-requested` event, settled after `device-wiped`, so a
//! request a crash or a pulled camera cut off is found (and settled) at the next docking.

use super::{Journal, JournalError};
use evidock_verify::id::{DeviceSerial, SessionId};
use rusqlite::params;

/// A wipe request not settled yet.
#[derive(Debug, Clone)]
pub struct OpenWipe {
    /// The `wipe-requested` event's key.
    pub key: String,
    pub session: SessionId,
    /// The request's payload (JSON), logged as it is.
    pub request: String,
}

impl Journal {
    /// Open a wipe request (before its event is logged and before anything is deleted).
    pub fn open_wipe(
        &self,
        key: &str,
        session: &SessionId,
        device: &DeviceSerial,
        request: &str,
    ) -> Result<(), JournalError> {
        self.with(|db| {
            db.execute(
                "INSERT OR IGNORE INTO wipes (key, session, device, request, settled_seq) VALUES (?1, ?2, ?3, ?4, NULL)",
                params![key, session.as_str(), device.as_str(), request],
            )
            .map(|_| ())
        })
    }

    /// The requests of this camera not settled yet, oldest first.
    pub fn open_wipes(&self, device: &DeviceSerial) -> Result<Vec<OpenWipe>, JournalError> {
        self.with(|db| {
            let mut st = db.prepare(
                "SELECT key, session, request FROM wipes WHERE device = ?1 AND settled_seq IS NULL ORDER BY rowid",
            )?;
            let rows = st.query_map(params![device.as_str()], |r| {
                let session: String = r.get(1)?;
                Ok(OpenWipe {
                    key: r.get(0)?,
                    session: SessionId::new(session).map_err(|e| {
                        rusqlite::Error::FromSqlConversionFailure(
                            1,
                            rusqlite::types::Type::Text,
                            Box::new(e),
                        )
                    })?,
                    request: r.get(2)?,
                })
            })?;
            rows.collect()
        })
    }

    /// A request whose event was never logged (nothing was deleted for it): forgotten.
    pub fn forget_wipe(&self, key: &str) -> Result<(), JournalError> {
        self.with(|db| {
            db.execute(
                "DELETE FROM wipes WHERE key = ?1 AND settled_seq IS NULL",
                params![key],
            )
            .map(|_| ())
        })
    }

    /// The request's `device-wiped` event is logged at `seq`.
    pub fn close_wipe(&self, key: &str, seq: u64) -> Result<(), JournalError> {
        self.with(|db| {
            db.execute(
                "UPDATE wipes SET settled_seq = ?2 WHERE key = ?1",
                params![key, seq as i64],
            )
            .map(|_| ())
        })
    }
}
