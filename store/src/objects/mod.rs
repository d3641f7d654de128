//! The evidence store: evidence as objects, over `object_store`, in the layout of
//! docs/formats/store-layout.md.
//!
//! Originals and derivatives live at content addresses shared by every station; each station
//! writes its records, its custody log segments, checkpoints and tokens under its own ID, so many
//! stations share one bucket without coordination. Everything is written once: `PutMode::Create`
//! for single puts; an existing object with the same SHA-256 is success, one with other content
//! is an error. Nothing counts until it is read back.

use crate::s3control::{S3Control, S3Error};
use bytes::Bytes;
use evidock_verify::id::{EvidenceId, Sha256, StationId};
use futures::StreamExt as _;
use object_store::aws::{AmazonS3, AmazonS3Builder, AmazonS3ConfigKey};
use object_store::multipart::{MultipartStore, PartId};
use object_store::path::Path as ObjectPath;
use object_store::{ObjectStore, ObjectStoreExt as _, PutMode, PutOptions, PutPayload};
use std::path::{Path, PathBuf};
use std::sync::Arc;

mod error;
mod lock;

pub use error::StoreError;
use lock::s3_clients;
pub use lock::s3_control;

pub mod layout;

/// Where and how to reach the store. Its `Debug` shows no key, secret or credentials in a URL.
#[derive(Clone, Default)]
pub struct StoreSettings {
    /// `file:///path`, `s3://bucket/prefix`, `az://container/prefix`, `gs://bucket/prefix`.
    pub url: String,
    /// S3-compatible endpoint (Ceph RGW, MinIO, Alibaba OSS): `http://host:port`.
    pub endpoint: Option<String>,
    pub region: Option<String>,
    pub allow_http: bool,
    pub path_style: bool,
    pub access_key_id: Option<String>,
    pub secret_access_key: Option<String>,
    pub session_token: Option<String>,
    /// Retries object_store makes itself before an error reaches the upload queue.
    pub max_retries: usize,
}

impl std::fmt::Debug for StoreSettings {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let set = |v: &Option<String>| v.as_ref().map(|_| "[redacted]");
        f.debug_struct("StoreSettings")
            .field("url", &display_url(&self.url))
            .field(
                "endpoint",
                &self.endpoint.as_deref().map(crate::redact::url),
            )
            .field("region", &self.region)
            .field("allow_http", &self.allow_http)
            .field("path_style", &self.path_style)
            .field("access_key_id", &set(&self.access_key_id))
            .field("secret_access_key", &set(&self.secret_access_key))
            .field("session_token", &set(&self.session_token))
            .field("max_retries", &self.max_retries)
            .finish()
    }
}

/// Which kind of backend, for what object_store cannot do (fsync, Object Lock).
#[derive(Debug, Clone)]
pub enum Backend {
    Local { root: PathBuf },
    S3 { bucket: String },
    Other,
}

/// The evidence store.
#[derive(Clone)]
pub struct EvidenceStore {
    url: String,
    prefix: ObjectPath,
    backend: Backend,
    store: Arc<dyn ObjectStore>,
    multipart: Option<Arc<dyn MultipartStore>>,
    /// Signed requests for Object Lock (S3 only).
    control: Option<Arc<S3Control>>,
}

impl std::fmt::Debug for EvidenceStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("EvidenceStore")
            .field("url", &self.url)
            .finish()
    }
}

/// The URL without credentials or query, for messages and custody events
/// ([`crate::redact::url_without_query`]).
pub fn display_url(url: &str) -> String {
    crate::redact::url_without_query(url)
}

impl EvidenceStore {
    /// Open the store a URL names.
    pub fn open(s: &StoreSettings) -> Result<Self, StoreError> {
        let url = display_url(&s.url);
        let cfg = |reason: String| StoreError::Config {
            url: url.clone(),
            reason,
        };
        let parsed = reqwest::Url::parse(&s.url).map_err(|e| cfg(format!("not a URL: {e}")))?;
        match parsed.scheme() {
            "file" => {
                let root = PathBuf::from(parsed.path());
                crate::fsutil::create_dir_all(&root).map_err(|e| cfg(e.to_string()))?;
                let fs = object_store::local::LocalFileSystem::new_with_prefix(&root)
                    .map_err(|e| cfg(e.to_string()))?;
                Ok(EvidenceStore {
                    url,
                    prefix: ObjectPath::default(),
                    backend: Backend::Local { root },
                    store: Arc::new(fs),
                    multipart: None,
                    control: None,
                })
            }
            "s3" | "s3a" => {
                let bucket = parsed
                    .host_str()
                    .ok_or_else(|| cfg("s3:// URLs name a bucket: s3://bucket/prefix".into()))?
                    .to_string();
                let (s3, control) = s3_clients(s, &bucket).map_err(|e| cfg(e.to_string()))?;
                let s3 = Arc::new(s3);
                // A control client that cannot be made (a bucket name or endpoint it cannot
                // address) leaves legal hold reported as not enforced.
                let control = control.ok().map(Arc::new);
                Ok(EvidenceStore {
                    url,
                    prefix: ObjectPath::from(parsed.path().trim_matches('/')),
                    backend: Backend::S3 { bucket },
                    store: s3.clone(),
                    multipart: Some(s3),
                    control,
                })
            }
            "az" | "azure" | "abfs" | "gs" => {
                let (store, prefix) =
                    object_store::parse_url(&parsed).map_err(|e| cfg(e.to_string()))?;
                Ok(EvidenceStore {
                    url,
                    prefix,
                    backend: Backend::Other,
                    store: Arc::from(store),
                    multipart: None,
                    control: None,
                })
            }
            other => Err(cfg(format!(
                "unsupported scheme {other:?} (file, s3, az, gs)"
            ))),
        }
    }

    pub fn url(&self) -> &str {
        &self.url
    }

    pub fn backend(&self) -> &Backend {
        &self.backend
    }

    /// Whether resumable multipart uploads are available.
    pub fn has_multipart(&self) -> bool {
        self.multipart.is_some()
    }

    fn path(&self, key: &str) -> ObjectPath {
        let full = if self.prefix.as_ref().is_empty() {
            key.to_string()
        } else {
            format!("{}/{key}", self.prefix)
        };
        // Keys are stored as written (case IDs are Unicode); only a key object_store would
        // refuse is percent-encoded instead.
        ObjectPath::parse(&full).unwrap_or_else(|_| ObjectPath::from(full.as_str()))
    }

    /// The full object key (with the prefix), as it appears in the store.
    pub fn full_key(&self, key: &str) -> String {
        self.path(key).to_string()
    }

    /// A key as custody events name it (with the prefix) made relative to the store again.
    pub fn relative_key<'k>(&self, full: &'k str) -> &'k str {
        let prefix = self.prefix.as_ref();
        if prefix.is_empty() {
            return full;
        }
        full.strip_prefix(prefix)
            .and_then(|k| k.strip_prefix('/'))
            .unwrap_or(full)
    }

    fn err(&self, op: &'static str, key: &str, e: object_store::Error) -> StoreError {
        error::classify(&self.url, op, key, e)
    }

    /// An error of a request naming a multipart upload ([`error::classify_upload`]).
    fn upload_err(&self, op: &'static str, key: &str, e: object_store::Error) -> StoreError {
        error::classify_upload(&self.url, op, key, e)
    }

    /// Size of an object, or `None` if it does not exist.
    pub async fn head(&self, key: &str) -> Result<Option<u64>, StoreError> {
        match self.store.head(&self.path(key)).await {
            Ok(m) => Ok(Some(m.size)),
            Err(object_store::Error::NotFound { .. }) => Ok(None),
            Err(e) => Err(self.err("HEAD", key, e)),
        }
    }

    /// Delete an object: only for the explicit, logged disposal of expired evidence. A store
    /// with Object Lock refuses while the object's retention runs or it is on legal hold; that
    /// refusal is returned, not hidden. A missing object is not an error.
    pub async fn delete(&self, key: &str) -> Result<(), StoreError> {
        if let Backend::Local { root } = &self.backend {
            // Local objects are read-only files; their directory is not.
            let p = root.join(self.path(key).as_ref());
            return match std::fs::remove_file(&p) {
                // Durable: a disposal that says a copy is gone must not see it come back.
                Ok(()) => crate::fsutil::sync_dir(crate::fsutil::parent_dir(&p)).map_err(|e| {
                    StoreError::Local {
                        path: p.clone(),
                        reason: e.to_string(),
                    }
                }),
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
                Err(e) => Err(StoreError::Permanent {
                    url: self.url.clone(),
                    op: "DELETE",
                    key: key.to_string(),
                    reason: e.to_string(),
                }),
            };
        }
        match self.store.delete(&self.path(key)).await {
            Ok(()) | Err(object_store::Error::NotFound { .. }) => Ok(()),
            Err(e) => Err(self.err("DELETE", key, e)),
        }
    }

    /// Stream an object back and hash it: what the store really holds.
    pub async fn read_back(&self, key: &str) -> Result<(Sha256, u64), StoreError> {
        use sha2::Digest as _;
        if let Backend::Local { root } = &self.backend {
            // The bytes on the disk, not the page cache.
            let p = root.join(self.path(key).as_ref());
            let p2 = p.clone();
            let key = key.to_string();
            let url = self.url.clone();
            return tokio::task::spawn_blocking(move || {
                let mut f = std::fs::File::open(&p).map_err(|e| {
                    if e.kind() == std::io::ErrorKind::NotFound {
                        StoreError::NotFound {
                            url,
                            key: key.clone(),
                        }
                    } else {
                        StoreError::Local {
                            path: p.clone(),
                            reason: e.to_string(),
                        }
                    }
                })?;
                // Nothing is written here (a reviewer may read a store mounted read-only): the
                // writer made the object durable first ([`Self::make_durable`]). Its clean pages
                // are evicted, so the hash reads the disk.
                let _ = rustix::fs::fadvise(&f, 0, None, rustix::fs::Advice::DontNeed);
                let (d, n) = evidock_verify::digest::hash_stream(&mut f, Default::default())
                    .map_err(|e| StoreError::Local {
                        path: p.clone(),
                        reason: e.to_string(),
                    })?;
                Ok::<_, StoreError>((d.sha256, n))
            })
            .await
            .map_err(|e| StoreError::Local {
                path: p2,
                reason: format!("read-back stopped: {e}"),
            })?;
        }
        let got = self
            .store
            .get(&self.path(key))
            .await
            .map_err(|e| self.err("GET", key, e))?;
        let mut stream = got.into_stream();
        let mut h = sha2::Sha256::new();
        let mut n = 0u64;
        while let Some(chunk) = stream.next().await {
            let chunk = chunk.map_err(|e| self.err("GET", key, e))?;
            n += chunk.len() as u64;
            h.update(&chunk);
        }
        Ok((Sha256(h.finalize().into()), n))
    }

    /// A small object whole (records, notes, tokens).
    pub async fn get_bytes(&self, key: &str) -> Result<Bytes, StoreError> {
        let got = self
            .store
            .get(&self.path(key))
            .await
            .map_err(|e| self.err("GET", key, e))?;
        got.bytes().await.map_err(|e| self.err("GET", key, e))
    }

    /// Stream an object into a new local file (fsynced), for exports and reviewers' copies.
    pub async fn download_to(&self, key: &str, to: &Path) -> Result<u64, StoreError> {
        // A new file: what is at `to` already (a link planted there, someone's file) is
        // neither followed nor replaced.
        let mut f = std::fs::File::options()
            .write(true)
            .create_new(true)
            .open(to)
            .map_err(|e| StoreError::Local {
                path: to.to_path_buf(),
                reason: e.to_string(),
            })?;
        self.download_into(key, &mut f, to).await
    }

    /// Stream object `key` into `f` (a file the caller created, at `path`) and fsync it.
    pub async fn download_into(
        &self,
        key: &str,
        f: &mut std::fs::File,
        path: &Path,
    ) -> Result<u64, StoreError> {
        use std::io::Write as _;
        let local = |reason: String| StoreError::Local {
            path: path.to_path_buf(),
            reason,
        };
        let got = self
            .store
            .get(&self.path(key))
            .await
            .map_err(|e| self.err("GET", key, e))?;
        let mut stream = got.into_stream();
        let mut n = 0u64;
        while let Some(chunk) = stream.next().await {
            let chunk = chunk.map_err(|e| self.err("GET", key, e))?;
            f.write_all(&chunk).map_err(|e| local(e.to_string()))?;
            n += chunk.len() as u64;
        }
        f.sync_all().map_err(|e| local(e.to_string()))?;
        Ok(n)
    }

    /// Write-once put. If the object exists already, it is success only with the same bytes
    /// (compared by SHA-256); otherwise [`StoreError::Conflict`].
    pub async fn put_once(&self, key: &str, data: Bytes) -> Result<(), StoreError> {
        let want = Sha256::digest(&data);
        let opts = PutOptions {
            mode: PutMode::Create,
            ..Default::default()
        };
        match self
            .store
            .put_opts(&self.path(key), PutPayload::from_bytes(data), opts)
            .await
        {
            Ok(_) => {
                // Put, not yet fsynced nor read-only (an original's window, named apart).
                if key.starts_with("originals/") {
                    crate::crash_point!("store.put-original");
                } else {
                    crate::crash_point!("store.put");
                }
                self.make_durable(key).await
            }
            Err(object_store::Error::AlreadyExists { .. }) => {
                // Maybe put by a run that crashed before its fsync.
                self.make_durable(key).await?;
                let (found, _) = self.read_back(key).await?;
                if found == want {
                    Ok(())
                } else {
                    Err(StoreError::Conflict {
                        url: self.url.clone(),
                        key: key.to_string(),
                        found,
                        expected: want,
                    })
                }
            }
            Err(e) => Err(self.err("PUT", key, e)),
        }
    }

    /// Upload a local file with one streaming put (no resume; for backends without
    /// `MultipartStore`, and the local store). The caller reads it back.
    pub async fn put_file_streaming(&self, key: &str, file: &Path) -> Result<(), StoreError> {
        use tokio::io::AsyncReadExt as _;
        let local = |e: std::io::Error| StoreError::Local {
            path: file.to_path_buf(),
            reason: e.to_string(),
        };
        let mut f = tokio::fs::File::open(file).await.map_err(local)?;
        let mut up = self
            .store
            .put_multipart(&self.path(key))
            .await
            .map_err(|e| self.err("PUT", key, e))?;
        let mut buf = vec![0u8; 8 << 20];
        loop {
            let n = f.read(&mut buf).await.map_err(local)?;
            if n == 0 {
                break;
            }
            if let Err(e) = up.put_part(PutPayload::from(buf[..n].to_vec())).await {
                let _ = up.abort().await;
                return Err(self.err("PUT part", key, e));
            }
        }
        up.complete()
            .await
            .map_err(|e| self.err("PUT complete", key, e))?;
        self.make_durable(key).await
    }

    pub async fn create_multipart(&self, key: &str) -> Result<String, StoreError> {
        let mp = self.multipart_store(key)?;
        let id = mp
            .create_multipart(&self.path(key))
            .await
            .map_err(|e| self.err("create multipart upload", key, e))?;
        // The store holds an upload the journal does not know yet.
        crate::crash_point!("store.multipart-created");
        Ok(id)
    }

    pub async fn put_part(
        &self,
        key: &str,
        upload: &str,
        index: usize,
        data: Bytes,
    ) -> Result<String, StoreError> {
        let mp = self.multipart_store(key)?;
        let id = upload.to_string();
        let part = mp
            .put_part(&self.path(key), &id, index, PutPayload::from_bytes(data))
            .await
            .map_err(|e| self.upload_err("upload part", key, e))?;
        // The part is in the store, its ETag not yet in the journal.
        crate::crash_point!("store.part");
        Ok(part.content_id)
    }

    pub async fn complete_multipart(
        &self,
        key: &str,
        upload: &str,
        parts: Vec<String>,
    ) -> Result<(), StoreError> {
        let mp = self.multipart_store(key)?;
        let id = upload.to_string();
        let parts = parts
            .into_iter()
            .map(|content_id| PartId { content_id })
            .collect();
        mp.complete_multipart(&self.path(key), &id, parts)
            .await
            .map_err(|e| self.upload_err("complete multipart upload", key, e))?;
        // The object exists; the journal still holds the upload as under way.
        crate::crash_point!("store.complete");
        Ok(())
    }

    pub async fn abort_multipart(&self, key: &str, upload: &str) -> Result<(), StoreError> {
        let mp = self.multipart_store(key)?;
        let id = upload.to_string();
        mp.abort_multipart(&self.path(key), &id)
            .await
            .map_err(|e| self.err("abort multipart upload", key, e))
    }

    fn multipart_store(&self, key: &str) -> Result<&Arc<dyn MultipartStore>, StoreError> {
        self.multipart
            .as_ref()
            .ok_or_else(|| StoreError::Permanent {
                url: self.url.clone(),
                op: "multipart upload",
                key: key.to_string(),
                reason: "this backend has no resumable multipart uploads".into(),
            })
    }

    /// Keys under a prefix (relative to the store's prefix), sorted.
    pub async fn list(&self, prefix: &str) -> Result<Vec<String>, StoreError> {
        let base = self.path(prefix);
        let mut out = Vec::new();
        let mut s = self.store.list(Some(&base));
        let strip = if self.prefix.as_ref().is_empty() {
            String::new()
        } else {
            format!("{}/", self.prefix)
        };
        while let Some(m) = s.next().await {
            let m = m.map_err(|e| self.err("LIST", prefix, e))?;
            let k = m.location.to_string();
            out.push(k.strip_prefix(&strip).unwrap_or(&k).to_string());
        }
        out.sort();
        Ok(out)
    }

    /// Local store: fsync the object and its directory, and make it read-only. The local store
    /// cannot enforce retention beyond that (root can still delete): `evidock store init` says so.
    /// For the writer of an object of the local store: fsync it and its folders and make it
    /// read-only (a crash between a put and its fsync leaves an object a restart finds already
    /// there; it is made durable before its read-back counts). Other backends: nothing to do.
    pub async fn make_durable(&self, key: &str) -> Result<(), StoreError> {
        let Backend::Local { root } = &self.backend else {
            return Ok(());
        };
        let p = root.join(self.path(key).as_ref());
        let root = root.clone();
        tokio::task::spawn_blocking(move || {
            let err = |e: std::io::Error| StoreError::Local {
                path: p.clone(),
                reason: e.to_string(),
            };
            let f = std::fs::File::open(&p).map_err(err)?;
            f.sync_all().map_err(err)?;
            use std::os::unix::fs::PermissionsExt as _;
            std::fs::set_permissions(&p, std::fs::Permissions::from_mode(0o440)).map_err(err)?;
            // object_store made the key's folders as it needed them, without syncing them:
            // every level up to the store's root is synced, so no new folder's entry is lost.
            let mut dir = p.parent();
            while let Some(d) = dir {
                std::fs::File::open(d)
                    .and_then(|d| d.sync_all())
                    .map_err(err)?;
                if d == root.as_path() {
                    break;
                }
                dir = d.parent();
            }
            Ok(())
        })
        .await
        .map_err(|e| StoreError::Local {
            path: PathBuf::from(key),
            reason: e.to_string(),
        })?
    }
}

#[cfg(test)]
mod tests;
