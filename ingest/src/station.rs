//! The station: its data directory, key, custody log and clock, opened once per command.
//!
//! ```text
//! <data dir>/
//!   station.key                 Ed25519 signing key, mode 0600 (created on first run)
//!   custody/<station ID>/       this station's custody log (docs/formats/custody-log.md)
//!   journal.db                  where acquisition stands (SQLite; station state, not evidence)
//!   spool/                      originals by SHA-256, and copies in progress
//!   dock/                       the default mount root: camera volumes appear here
//!   store/                      the default (local) evidence store
//!   derivatives/                playback copies and thumbnails by SHA-256
//!   index.db                    cases, links, retention: a cache of the custody logs
//! ```

use crate::acquire::session::Acquirer;
use crate::acquire::spool::Spool;
use crate::config::Settings;
use crate::journal::Journal;
use anyhow::Context as _;
use evidock_store::clock::{Clock, SystemClock};
use evidock_store::key::{self, StationKey};
use evidock_store::log::{CustodyLog, SharedLog};
use evidock_verify::id::StationId;
use std::path::{Path, PathBuf};
use std::sync::Arc;

pub struct Station {
    pub settings: Settings,
    pub data_dir: PathBuf,
    pub key: Arc<StationKey>,
    pub log: SharedLog,
    pub clock: Arc<dyn Clock>,
    pub journal: Arc<Journal>,
    pub spool: Spool,
    pub derivatives: Spool,
    pub store: evidock_store::objects::EvidenceStore,
    /// Whether this run created the station key.
    pub key_created: bool,
}

impl std::fmt::Debug for Station {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Station")
            .field("data_dir", &self.data_dir)
            .field("station", self.key.station())
            .finish()
    }
}

/// The station ID to use for a new key when none is configured: the host name.
pub fn default_station_id() -> anyhow::Result<StationId> {
    let from_host = std::fs::read_to_string("/proc/sys/kernel/hostname")
        .ok()
        .and_then(|h| key::station_id_from_hostname(&h));
    Ok(match from_host {
        Some(id) => id,
        None => StationId::new("station")?,
    })
}

impl Station {
    pub fn key_path(data_dir: &Path) -> PathBuf {
        data_dir.join("station.key")
    }

    pub fn log_dir(data_dir: &Path, station: &StationId) -> PathBuf {
        data_dir.join("custody").join(station.as_str())
    }

    /// Open the station in `data_dir`, creating its key and log on first use.
    pub fn open(data_dir: &Path, settings: Settings) -> anyhow::Result<Self> {
        evidock_store::fsutil::create_dir_all(data_dir)?;
        let key_path = Self::key_path(data_dir);
        let (key, key_created) = StationKey::load_or_create(
            &key_path,
            settings.station_id.as_ref(),
            &default_station_id()?,
        )?;
        if key_created {
            tracing::info!(station = %key.station(), key = %key_path.display(), "created a new station key");
        }
        let key = Arc::new(key);
        let clock: Arc<dyn Clock> = Arc::new(SystemClock {
            fixed_offset: settings.utc_offset,
        });
        let log_dir = Self::log_dir(data_dir, key.station());
        let (log, report) = CustodyLog::open(&log_dir, key.clone(), clock.clone())
            .with_context(|| format!("opening the custody log in {}", log_dir.display()))?;
        if let Some((bytes, kept)) = &report.repaired {
            tracing::warn!(
                bytes,
                kept = %kept.display(),
                "the custody log had a torn tail from an interrupted write; it was cut off and kept"
            );
        }
        let journal = Arc::new(Journal::open(&data_dir.join("journal.db"))?);
        let spool = Spool::open(&data_dir.join("spool"))?;
        let derivatives = Spool::open(&data_dir.join("derivatives"))?;
        let store_settings = match &settings.store {
            Some(s) => s.store.clone(),
            None => evidock_store::objects::StoreSettings {
                url: format!(
                    "file://{}",
                    std::path::absolute(data_dir.join("store"))?.display()
                ),
                ..Default::default()
            },
        };
        let store = evidock_store::objects::EvidenceStore::open(&store_settings)?;
        Ok(Station {
            settings,
            data_dir: data_dir.to_path_buf(),
            key,
            log: SharedLog::new(log),
            clock,
            journal,
            spool,
            derivatives,
            store,
            key_created,
        })
    }

    /// Acquisition with this station's log, journal, spool and digests.
    pub fn acquirer(&self) -> Acquirer {
        Acquirer {
            station: self.id().clone(),
            log: self.log.clone(),
            journal: self.journal.clone(),
            spool: self.spool.clone(),
            clock: self.clock.clone(),
            digests: self.settings.digests,
            tuning: self.settings.tuning,
        }
    }

    /// The uploader to this station's evidence store.
    pub fn uploader(&self) -> crate::upload::Uploader {
        crate::upload::Uploader::new(
            self.store.clone(),
            self.journal.clone(),
            self.log.clone(),
            self.id().clone(),
            self.clock.clone(),
            self.settings
                .store
                .as_ref()
                .map(|s| s.upload.clone())
                .unwrap_or_default(),
        )
    }

    /// Makes this station's playback copies and thumbnails.
    pub fn transcoder(&self) -> crate::transcode::Transcoder {
        crate::transcode::Transcoder {
            station: self.id().clone(),
            log: self.log.clone(),
            journal: self.journal.clone(),
            spool: self.spool.clone(),
            derivatives: self.derivatives.clone(),
            clock: self.clock.clone(),
            settings: self.settings.transcode.clone(),
            stop: Arc::default(),
        }
    }

    /// The case desk: case register, links, categories and retention, over the case index
    /// (`index.db`, a cache of the custody log).
    pub fn cases(&self) -> anyhow::Result<crate::cases::Cases> {
        let path = self.data_dir.join("index.db");
        let index = crate::cases::index::Index::open(&path)?;
        Ok(crate::cases::Cases {
            station: self.id().clone(),
            log: self.log.clone(),
            index: std::sync::Arc::new(index),
            clock: self.clock.clone(),
            settings: self.settings.cases.clone(),
            retention: self.settings.retention.clone(),
            offset: self.clock.stamp().1,
        })
    }

    /// Where camera volumes appear.
    pub fn mount_root(&self) -> PathBuf {
        self.settings
            .dock
            .mount_root
            .clone()
            .unwrap_or_else(|| self.data_dir.join("dock"))
    }

    pub fn id(&self) -> &StationId {
        self.key.station()
    }

    pub fn log_path(&self) -> PathBuf {
        Self::log_dir(&self.data_dir, self.id())
    }
}
