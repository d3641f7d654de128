//! The station: its data directory, key, custody log and clock, opened once per command.
//!
//! ```text
//! <data dir>/
//!   station.key                 Ed25519 signing key, mode 0600 (made by `evidock station init`)
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
use evidock_store::log::{CustodyLog, LogError, OpenReport, SharedLog};
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
    /// The cameras being copied now: upload and transcode give way to them.
    pub acquiring: Arc<crate::acquire::foreground::Acquiring>,
    /// One runtime for the network calls of synchronous commands (export, verify), made at
    /// the first of them: never one per file.
    runtime: std::sync::OnceLock<tokio::runtime::Runtime>,
}

/// A data directory that is not (yet) a station, or is one already: what the user must change.
#[derive(Debug, thiserror::Error)]
pub enum StationError {
    #[error(
        "{dir} holds no station (no station.key): give the station's --data-dir, or create a station there with `evidock --data-dir {dir} station init`"
    )]
    NoStation { dir: PathBuf },
    #[error("{dir} is not a directory: --data-dir names the station's data directory")]
    NotADirectory { dir: PathBuf },
    #[error("{dir} is already station {station}: nothing was changed")]
    Exists { dir: PathBuf, station: StationId },
    #[error(
        "{dir} holds a station's data ({log}) but no station.key: restore the key from its backup; a new key would fork its custody log"
    )]
    KeyLost { dir: PathBuf, log: PathBuf },
    #[error(
        "{dir} belongs to another user: run evidock as that user (e.g. `sudo -u evidock evidock …`); files root made there would lock the station's own service out"
    )]
    NotOwner { dir: PathBuf },
}

/// Whether opening a data directory may make a new station there.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Create {
    /// Only open: a directory without a station is refused.
    No,
    /// Make the station if the directory has none (`station init`, `dock --init`).
    IfMissing,
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
    let from_host = fs_err::read_to_string("/proc/sys/kernel/hostname")
        .ok()
        .and_then(|h| key::station_id_from_hostname(&h));
    Ok(match from_host {
        Some(id) => id,
        None => StationId::new("station")?,
    })
}

/// The data directory, made 0750 when it is new: evidence is for the station's user and group
/// (reviewers in that group), not every local account.
fn create_private_dir(dir: &Path) -> anyhow::Result<()> {
    use std::os::unix::fs::DirBuilderExt as _;
    if dir.is_dir() {
        return Ok(());
    }
    if let Some(parent) = dir.parent().filter(|p| !p.as_os_str().is_empty()) {
        evidock_store::fsutil::create_dir_all(parent)?;
    }
    match std::fs::DirBuilder::new().mode(0o750).create(dir) {
        Ok(()) => {
            evidock_store::fsutil::sync_dir(evidock_store::fsutil::parent_dir(dir))?;
            Ok(())
        }
        Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => Ok(()),
        Err(e) => Err(anyhow::Error::new(e).context(format!("creating {}", dir.display()))),
    }
}

/// A custody log as [`CustodyLog::open`] returns it.
type OpenedLog = (CustodyLog, OpenReport);

/// Events a command logged are sealed by a checkpoint before it exits, whatever path it takes
/// out (the dock seals explicitly at shutdown; this is then a no-op).
impl Drop for Station {
    fn drop(&mut self) {
        if let Err(e) = self.log.with(|l| l.seal_own()) {
            tracing::error!(error = %e, "could not seal the events this command logged");
        }
    }
}

impl Station {
    pub fn key_path(data_dir: &Path) -> PathBuf {
        data_dir.join("station.key")
    }

    pub fn log_dir(data_dir: &Path, station: &StationId) -> PathBuf {
        data_dir.join("custody").join(station.as_str())
    }

    /// Open the station in `data_dir`. Without a station there this refuses (a mistyped
    /// --data-dir must not quietly become a second station with the same ID), unless `create`.
    pub fn open(data_dir: &Path, settings: Settings, create: Create) -> anyhow::Result<Self> {
        let key_path = Self::key_path(data_dir);
        match fs_err::metadata(data_dir) {
            Ok(m) if !m.is_dir() => Err(StationError::NotADirectory {
                dir: data_dir.to_path_buf(),
            })?,
            // Root on a station another user owns (`/var/lib/evidock` of the `evidock` user)
            // would leave root's files there — a key, the journal's WAL, log segments — that the
            // service then cannot read or write.
            Ok(m)
                if rustix::process::geteuid().is_root()
                    && std::os::unix::fs::MetadataExt::uid(&m) != 0 =>
            {
                Err(StationError::NotOwner {
                    dir: data_dir.to_path_buf(),
                })?
            }
            Err(e) if e.kind() != std::io::ErrorKind::NotFound => {
                Err(anyhow::Error::new(e).context(format!("reading {}", data_dir.display())))?
            }
            _ => {}
        }
        // `try_exists`: a key we may not read (another user's station) is an error to say,
        // never "no station here".
        let has_key = key_path
            .try_exists()
            .with_context(|| format!("reading {}", key_path.display()))?;
        if !has_key {
            // What only a station holds: a new key beside them would fork its log, or skip
            // what the journal says was acquired under the old one.
            for held in ["custody", "spool", "journal.db"] {
                let p = data_dir.join(held);
                let there = if held == "journal.db" {
                    p.try_exists()
                } else {
                    match fs_err::read_dir(&p) {
                        Ok(mut d) => Ok(d.next().is_some()),
                        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(false),
                        Err(e) => Err(e),
                    }
                }
                .with_context(|| format!("reading {}", p.display()))?;
                if there {
                    Err(StationError::KeyLost {
                        dir: data_dir.to_path_buf(),
                        log: p,
                    })?
                }
            }
            if create == Create::No {
                Err(StationError::NoStation {
                    dir: data_dir.to_path_buf(),
                })?
            }
        }
        create_private_dir(data_dir)?;
        let (key, key_created) = match create {
            // Load only: a key gone since the check above is no station, never a new one.
            Create::No => match StationKey::load_as(&key_path, settings.station_id.as_ref()) {
                Ok(k) => (k, false),
                Err(key::KeyError::Fs(e)) if e.source.kind() == std::io::ErrorKind::NotFound => {
                    Err(StationError::NoStation {
                        dir: data_dir.to_path_buf(),
                    })?
                }
                Err(e) => Err(e)?,
            },
            Create::IfMissing => StationKey::load_or_create(
                &key_path,
                settings.station_id.as_ref(),
                &default_station_id()?,
            )?,
        };
        if key_created {
            tracing::info!(station = %key.station(), key = %key_path.display(), "created a new station key");
        }
        let key = Arc::new(key);
        let clock: Arc<dyn Clock> = Arc::new(SystemClock {
            fixed_offset: settings.utc_offset,
        });
        let log_dir = Self::log_dir(data_dir, key.station());
        let (key, (log, report)) = match Self::finish_rotation(&key_path, &key, &log_dir, &clock)? {
            Some(done) => done,
            None => {
                let opened = CustodyLog::open(&log_dir, key.clone(), clock.clone())
                    .with_context(|| format!("opening the custody log in {}", log_dir.display()))?;
                (key, opened)
            }
        };
        if let Some((bytes, kept)) = &report.repaired {
            tracing::warn!(
                bytes,
                kept = %kept.display(),
                "the custody log had a torn tail from an interrupted write; it was cut off and kept"
            );
        }
        if let Some(r) = &report.reindexed {
            tracing::warn!(
                reason = %r.reason,
                kept = ?r.kept,
                "the custody log's index did not match events.jsonl; it was rebuilt from the file and the old index kept"
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
            acquiring: Arc::default(),
            runtime: std::sync::OnceLock::new(),
        })
    }

    /// Make a new station in `data_dir` (`evidock station init`): refuses one that is already.
    pub fn init(data_dir: &Path, settings: Settings) -> anyhow::Result<Self> {
        if let Ok(key) = StationKey::load(&Self::key_path(data_dir)) {
            Err(StationError::Exists {
                dir: data_dir.to_path_buf(),
                station: key.station().clone(),
            })?
        }
        let st = Self::open(data_dir, settings, Create::IfMissing)?;
        if !st.key_created {
            Err(StationError::Exists {
                dir: data_dir.to_path_buf(),
                station: st.id().clone(),
            })?
        }
        Ok(st)
    }

    /// A key rotation interrupted by a crash left the next key staged: the log says whether
    /// the rotation happened. If it did, the staged key is installed (and the hand-over sealed
    /// if the crash came before that); if not, the staged key is discarded.
    fn finish_rotation(
        key_path: &Path,
        old: &Arc<StationKey>,
        log_dir: &Path,
        clock: &Arc<dyn Clock>,
    ) -> anyhow::Result<Option<(Arc<StationKey>, OpenedLog)>> {
        let staged = StationKey::staged_path(key_path);
        if !staged.exists() {
            return Ok(None);
        }
        let next = Arc::new(StationKey::load(&staged)?);
        match CustodyLog::open(log_dir, next.clone(), clock.clone()) {
            Ok((mut log, report)) => {
                if log.seal_handover(old.as_ref())? {
                    tracing::warn!("sealed the hand-over of a key rotation interrupted by a crash");
                }
                drop(next);
                let installed = Arc::new(StationKey::load(&staged)?.install(key_path)?);
                tracing::warn!(key = %key_path.display(), "finished a key rotation interrupted by a crash: the new key is in place");
                Ok(Some((installed, (log, report))))
            }
            Err(LogError::KeyNotCurrent { .. }) => {
                fs_err::remove_file(&staged)
                    .with_context(|| format!("removing {}", staged.display()))?;
                tracing::warn!(staged = %staged.display(), "a key rotation was interrupted before it was logged: the staged key was discarded");
                Ok(None)
            }
            Err(e) => Err(anyhow::Error::new(e)
                .context(format!("opening the custody log in {}", log_dir.display()))),
        }
    }

    /// Rotate the station key (`evidock station rotate-key`): stage a new key, log the
    /// hand-over (signed by both keys), then install the new key. Returns the new key and the
    /// hand-over checkpoint's size. Other evidock processes of this station must be stopped
    /// first: the log refuses their old key from then on.
    pub fn rotate_key(
        &self,
        actor: evidock_verify::event::Actor,
        reason: &str,
    ) -> anyhow::Result<(evidock_verify::note::VerifierKey, u64)> {
        let next = Arc::new(self.key.stage_next()?);
        let handover = self
            .log
            .with(|l| l.rotate_key(next.clone(), actor, reason))
            .context(
                "logging the key rotation (the next start finishes it if the event was logged, \
                 or discards the staged key if not)",
            )?;
        let verifier = key::NoteSigner::verifier(next.as_ref()).clone();
        drop(next);
        let staged = StationKey::staged_path(self.key.path());
        StationKey::load(&staged)?.install(self.key.path())?;
        Ok((verifier, handover.checkpoint.size))
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
            acquiring: self.acquiring.clone(),
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
        .giving_way(self.give_way())
    }

    /// What upload and transcode give way to: this station's cameras being copied.
    pub fn give_way(&self) -> crate::acquire::foreground::GiveWay {
        crate::acquire::foreground::GiveWay {
            acquiring: self.acquiring.clone(),
            max: self.settings.tuning.background_wait,
        }
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
            give_way: self.give_way(),
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
            disposing: self.data_dir.join("disposing"),
            fetching: self.data_dir.join("fetching"),
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

    /// The current-thread runtime synchronous code drives the store's async calls on. Not
    /// for use inside another runtime (the dock's stages are async themselves).
    pub fn runtime(&self) -> std::io::Result<&tokio::runtime::Runtime> {
        if let Some(rt) = self.runtime.get() {
            return Ok(rt);
        }
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()?;
        // Two first callers at once: one runtime is kept, the other dropped unused.
        Ok(self.runtime.get_or_init(|| rt))
    }

    /// A TSA client from the configuration, or `None` when no TSA is configured.
    pub fn tsa_client(&self) -> anyhow::Result<Option<evidock_store::tsa::TsaClient>> {
        use evidock_store::tsa::{TsaClient, TsaConfig};
        use evidock_verify::timestamp::TsaTrust;
        let Some(t) = &self.settings.tsa else {
            return Ok(None);
        };
        let mut trust = TsaTrust::default();
        for r in &t.roots {
            let pem =
                fs_err::read(r).with_context(|| format!("reading TSA root {}", r.display()))?;
            trust.roots.extend(
                evidock_verify::trust::pem_certificates(&pem)
                    .map_err(|e| anyhow::anyhow!("TSA root {}: {e}", r.display()))?,
            );
        }
        Ok(Some(TsaClient::new(TsaConfig {
            url: t.url.clone(),
            policy: t.policy.clone(),
            timeout: t.timeout,
            trust,
        })?))
    }

    pub fn id(&self) -> &StationId {
        self.key.station()
    }

    pub fn log_path(&self) -> PathBuf {
        Self::log_dir(&self.data_dir, self.id())
    }
}
