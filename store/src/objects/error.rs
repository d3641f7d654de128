//! The evidence store's errors, and how an `object_store` error becomes one.

use evidock_verify::id::Sha256;
use std::path::PathBuf;

/// An evidence store error: what, where, and whether trying again may help.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("evidence store {url}: configuration: {reason}")]
    Config { url: String, reason: String },
    /// No answer at all: refused or reset connection, DNS, timeout. The store may be down or
    /// the network cut; nothing about the credentials is known.
    #[error(
        "evidence store {url} does not answer ({op} {key}: {reason}); will retry — check that the store is up and reachable from this station"
    )]
    Unreachable {
        url: String,
        op: &'static str,
        key: String,
        reason: String,
    },
    #[error("evidence store {url}: {op} {key}: {reason} (will retry)")]
    Retriable {
        url: String,
        op: &'static str,
        key: String,
        reason: String,
    },
    #[error(
        "evidence store {url}: {op} {key}: access refused ({reason}); check the credentials — uploads wait until they work"
    )]
    Credentials {
        url: String,
        op: &'static str,
        key: String,
        reason: String,
    },
    #[error("evidence store {url}: {op} {key}: {reason}")]
    Permanent {
        url: String,
        op: &'static str,
        key: String,
        reason: String,
    },
    #[error(
        "evidence store {url}: {key} already holds other content (SHA-256 {found}, expected {expected}); refusing to overwrite — investigate"
    )]
    Conflict {
        url: String,
        key: String,
        found: Sha256,
        expected: Sha256,
    },
    #[error("evidence store {url}: {key} is missing")]
    NotFound { url: String, key: String },
    /// The store no longer knows a multipart upload (expired, or aborted): start it over.
    #[error(
        "evidence store {url}: {op} {key}: the multipart upload is gone from the store ({reason}); it starts over (will retry)"
    )]
    UploadGone {
        url: String,
        op: &'static str,
        key: String,
        reason: String,
    },
    #[error("local file {path}: {reason}")]
    Local { path: PathBuf, reason: String },
}

impl StoreError {
    /// Whether the same request may succeed later (network, server, credentials being fixed).
    pub fn is_retriable(&self) -> bool {
        matches!(
            self,
            StoreError::Retriable { .. }
                | StoreError::Unreachable { .. }
                | StoreError::Credentials { .. }
                | StoreError::UploadGone { .. }
        )
    }
}

/// Whether a request got no answer at all: the HTTP client's own error kind (connect,
/// timeout, request or interrupted) anywhere in the error's chain.
fn no_answer(e: &object_store::Error) -> bool {
    use object_store::client::{HttpError, HttpErrorKind};
    let mut next: Option<&(dyn std::error::Error + 'static)> = std::error::Error::source(e);
    while let Some(err) = next {
        if let Some(h) = err.downcast_ref::<HttpError>() {
            return matches!(
                h.kind(),
                HttpErrorKind::Connect
                    | HttpErrorKind::Timeout
                    | HttpErrorKind::Request
                    | HttpErrorKind::Interrupted
            );
        }
        next = err.source();
    }
    false
}

pub(crate) fn classify(
    url: &str,
    op: &'static str,
    key: &str,
    e: object_store::Error,
) -> StoreError {
    use object_store::Error as E;
    let reason = e.to_string();
    let url = url.to_string();
    let key = key.to_string();
    match e {
        E::NotFound { .. } => StoreError::NotFound { url, key },
        E::PermissionDenied { .. } | E::Unauthenticated { .. } => StoreError::Credentials {
            url,
            op,
            key,
            reason,
        },
        E::NotSupported { .. } | E::NotImplemented { .. } | E::InvalidPath { .. } => {
            StoreError::Permanent {
                url,
                op,
                key,
                reason,
            }
        }
        _ if no_answer(&e) => StoreError::Unreachable {
            url,
            op,
            key,
            reason,
        },
        _ => {
            // object_store reports HTTP statuses as Generic, its status type private: the
            // status is read from its own wording ("status code: 403 …"), never from any
            // "403" in the text (a request that took 403 ms is no refusal).
            if reason.contains("status code: 403")
                || reason.contains("AccessDenied")
                || reason.contains("InvalidAccessKeyId")
                || reason.contains("ExpiredToken")
                || reason.contains("SignatureDoesNotMatch")
            {
                StoreError::Credentials {
                    url,
                    op,
                    key,
                    reason,
                }
            } else if reason.contains("NoSuchUpload") {
                // S3's code for an upload ID it does not know (object_store has no type
                // for it): typed here, once, so that callers never read error text.
                StoreError::UploadGone {
                    url,
                    op,
                    key,
                    reason,
                }
            } else {
                StoreError::Retriable {
                    url,
                    op,
                    key,
                    reason,
                }
            }
        }
    }
}

/// An error of a request naming a multipart upload: S3 answers an upload ID it no longer
/// knows with 404 (`NoSuchUpload`), which object_store reports as `NotFound` — the upload
/// is gone (start over), not the object.
pub(crate) fn classify_upload(
    url: &str,
    op: &'static str,
    key: &str,
    e: object_store::Error,
) -> StoreError {
    match e {
        object_store::Error::NotFound { .. } => StoreError::UploadGone {
            url: url.to_string(),
            op,
            key: key.to_string(),
            reason: e.to_string(),
        },
        e => classify(url, op, key, e),
    }
}
