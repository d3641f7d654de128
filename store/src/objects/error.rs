//! The evidence store's errors, and how an `object_store` error becomes one.

use crate::s3control::ErrorBody;
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

/// S3's error codes for credentials that are wrong, expired or not allowed. AWS sends
/// `ExpiredToken` and `InvalidToken` with 400, which object_store reports as `Generic`.
const CREDENTIAL_CODES: [&str; 6] = [
    "AccessDenied",
    "InvalidAccessKeyId",
    "SignatureDoesNotMatch",
    "ExpiredToken",
    "InvalidToken",
    "TokenRefreshRequired",
];

/// An answer object_store turned into a `Generic` error: its status (`None` for a success
/// status with an S3 error in its body, which object_store treats as a server error) and the
/// S3 `<Error>` of its body, if it has one.
#[derive(Debug)]
struct Answer {
    status: Option<u16>,
    error: Option<ErrorBody>,
}

impl Answer {
    fn code(&self) -> Option<&str> {
        self.error.as_ref().and_then(|e| e.code.as_deref())
    }
}

/// The answer behind a `Generic` error.
///
/// This is the one place an error's text is read, because object_store 0.14 leaves no other
/// way: its retry layer keeps the status and body of a failed answer in
/// `client::retry::RequestError` inside `client::retry::RetryError`, and although both are
/// `pub`, their module is `pub(crate)`, so outside the crate they cannot be named, downcast to
/// or asked for `status()`; only their `Display` is reachable, through `source()`. So the
/// chain is walked to the link whose own text *begins* with `RequestError`'s fixed wording for
/// an answer (`Server returned non-2xx status code: 403 Forbidden: <body>`, or
/// `Server returned error response: <body>`): a key, a URL, a body or an elapsed time
/// ("in 403ms") elsewhere in the text cannot pass for a status. The body after it is parsed
/// as S3's XML `<Error>`, so an S3 code is its `<Code>` element, never a word in a message.
/// Should object_store word it differently, nothing is found and the error is retriable,
/// never a credentials or upload error by mistake (the unit tests below then fail).
fn answer(e: &object_store::Error) -> Option<Answer> {
    const STATUS: &str = "Server returned non-2xx status code: ";
    const ERROR_BODY: &str = "Server returned error response: ";
    let mut next: Option<&(dyn std::error::Error + 'static)> = std::error::Error::source(e);
    while let Some(link) = next {
        let text = link.to_string();
        if let Some(rest) = text.strip_prefix(STATUS) {
            let status = rest.get(..3).and_then(|s| s.parse::<u16>().ok())?;
            // "<status> <reason>: <body>"; no reason phrase holds ": ".
            let body = rest.split_once(": ").map_or("", |(_, body)| body);
            return Some(Answer {
                status: Some(status),
                error: ErrorBody::parse(body.as_bytes()),
            });
        }
        if let Some(body) = text.strip_prefix(ERROR_BODY) {
            return Some(Answer {
                status: None,
                error: ErrorBody::parse(body.as_bytes()),
            });
        }
        next = link.source();
    }
    None
}

/// What an object_store error means for the evidence store: by its variant; for `Generic`,
/// by the HTTP client's error kind or the answer's status and S3 code ([`answer`]).
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
    #[derive(Debug)]
    enum Kind {
        Credentials,
        Permanent,
        Unreachable,
        UploadGone,
        Retriable,
    }
    let kind = match &e {
        E::NotFound { .. } => return StoreError::NotFound { url, key },
        E::PermissionDenied { .. } | E::Unauthenticated { .. } => Kind::Credentials,
        E::NotSupported { .. } | E::NotImplemented { .. } | E::InvalidPath { .. } => {
            Kind::Permanent
        }
        _ if no_answer(&e) => Kind::Unreachable,
        _ => match answer(&e) {
            Some(a) if matches!(a.status, Some(401 | 403)) => Kind::Credentials,
            Some(a) if a.code().is_some_and(|c| CREDENTIAL_CODES.contains(&c)) => Kind::Credentials,
            // S3's code for an upload ID it does not know, here with another status than 404
            // (a 200 answering CompleteMultipartUpload).
            Some(a) if a.code() == Some("NoSuchUpload") => Kind::UploadGone,
            _ => Kind::Retriable,
        },
    };
    match kind {
        Kind::Credentials => StoreError::Credentials {
            url,
            op,
            key,
            reason,
        },
        Kind::Permanent => StoreError::Permanent {
            url,
            op,
            key,
            reason,
        },
        Kind::Unreachable => StoreError::Unreachable {
            url,
            op,
            key,
            reason,
        },
        Kind::UploadGone => StoreError::UploadGone {
            url,
            op,
            key,
            reason,
        },
        Kind::Retriable => StoreError::Retriable {
            url,
            op,
            key,
            reason,
        },
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
    let gone = match &e {
        object_store::Error::NotFound { .. } => true,
        // The recorded parts no longer make an upload S3 completes: start over (the key is
        // the content's digest and the object is read back, so a new upload is safe).
        _ => {
            answer(&e).is_some_and(|a| a.code().is_some_and(|c| UPLOAD_REFUSED_CODES.contains(&c)))
        }
    };
    if gone {
        return StoreError::UploadGone {
            url: url.to_string(),
            op,
            key: key.to_string(),
            reason: e.to_string(),
        };
    }
    classify(url, op, key, e)
}

/// S3's codes for parts it will not complete an upload from: an ETag it does not know, parts
/// out of order, a part below the minimum size.
const UPLOAD_REFUSED_CODES: &[&str] = &["InvalidPart", "InvalidPartOrder", "EntityTooSmall"];

#[cfg(test)]
mod tests {
    //! Real object_store errors, made by object_store's S3 client against canned answers, and
    //! what they are classified as. A refusal must not be told from text a server or a key put
    //! into the message: a 500 whose message says `AccessDenied`, a key named `NoSuchUpload…`,
    //! an answer that took 403 ms.
    use super::*;
    use crate::objects::{EvidenceStore, StoreSettings};
    use crate::testhttp::{Canned, TestServer};
    use bytes::Bytes;
    use std::time::Duration;

    fn store(server: &TestServer) -> EvidenceStore {
        EvidenceStore::open(&StoreSettings {
            url: "s3://evidence/prefix".into(),
            endpoint: Some(server.endpoint()),
            region: Some("us-east-1".into()),
            allow_http: true,
            path_style: true,
            access_key_id: Some("AKIATEST".into()),
            secret_access_key: Some("secret".into()),
            session_token: None,
            max_retries: 0,
        })
        .unwrap()
    }

    fn s3_error(code: &str, message: &str) -> String {
        format!(
            "<?xml version=\"1.0\" encoding=\"UTF-8\"?><Error><Code>{code}</Code>\
             <Message>{message}</Message><RequestId>r1</RequestId></Error>"
        )
    }

    /// What a GET of `key` answered with `answer` is classified as.
    async fn get(key: &str, answer: Canned) -> StoreError {
        let server = TestServer::start(vec![answer]);
        store(&server).get_bytes(key).await.unwrap_err()
    }

    /// What a listing answered with `answer` is classified as (object_store reports every
    /// listing failure as `Generic`, whatever the status).
    async fn list(answer: Canned) -> StoreError {
        let server = TestServer::start(vec![answer]);
        store(&server).list("cases").await.unwrap_err()
    }

    #[tokio::test]
    async fn a_server_error_is_retriable_whatever_its_text_says() {
        let e = get(
            "cases/a.json",
            Canned::new(
                500,
                s3_error(
                    "InternalError",
                    "backend took 403 ms: AccessDenied, ExpiredToken, status code: 403",
                ),
            ),
        )
        .await;
        assert!(matches!(e, StoreError::Retriable { .. }), "{e:?}");
        let e = list(Canned::new(
            503,
            s3_error("SlowDown", "SignatureDoesNotMatch InvalidAccessKeyId"),
        ))
        .await;
        assert!(matches!(e, StoreError::Retriable { .. }), "{e:?}");
    }

    #[tokio::test]
    async fn a_key_naming_an_s3_code_is_no_such_error() {
        for key in [
            "cases/NoSuchUpload.json",
            "cases/AccessDenied/status code: 403.json",
        ] {
            let e = get(key, Canned::new(503, "Slow Down")).await;
            assert!(matches!(e, StoreError::Retriable { .. }), "{key}: {e:?}");
        }
    }

    #[tokio::test]
    async fn an_answer_that_took_403_ms_is_no_refusal() {
        let slow = Canned::new(500, "took 403 ms").delay(Duration::from_millis(403));
        let e = list(slow).await;
        assert!(matches!(e, StoreError::Retriable { .. }), "{e:?}");
    }

    #[tokio::test]
    async fn refusals_by_status_whatever_the_body_says() {
        // A proxy's 403 page, a 403 whose S3 code is not about credentials, on a listing
        // (Generic) and on a GET (PermissionDenied).
        let proxy = "<html><body>Blocked (NoSuchUpload, took 500 ms)</body></html>";
        let e = list(Canned::new(403, proxy)).await;
        assert!(matches!(e, StoreError::Credentials { .. }), "{e:?}");
        let e = get(
            "cases/a.json",
            Canned::new(403, s3_error("SlowDown", "try later")),
        )
        .await;
        assert!(matches!(e, StoreError::Credentials { .. }), "{e:?}");
        let e = list(Canned::new(401, "")).await;
        assert!(matches!(e, StoreError::Credentials { .. }), "{e:?}");
    }

    #[tokio::test]
    async fn refusals_by_s3_code() {
        // AWS answers an expired session token with 400.
        let e = get(
            "cases/a.json",
            Canned::new(
                400,
                s3_error("ExpiredToken", "The provided token has expired."),
            ),
        )
        .await;
        assert!(matches!(e, StoreError::Credentials { .. }), "{e:?}");
        let e = list(Canned::new(
            400,
            s3_error("InvalidArgument", "AccessDenied"),
        ))
        .await;
        assert!(matches!(e, StoreError::Retriable { .. }), "{e:?}");
    }

    #[tokio::test]
    async fn an_upload_gone_by_its_404_not_by_a_word() {
        let server = TestServer::start(vec![
            // S3 may answer CompleteMultipartUpload with 200 and an error in the body, which
            // object_store reports as Generic.
            Canned::new(200, s3_error("InternalError", "NoSuchUpload? no: retry")),
            Canned::new(404, s3_error("NoSuchUpload", "gone")),
            Canned::new(404, s3_error("NoSuchUpload", "gone")),
        ]);
        let s = store(&server);
        let parts = || vec!["\"etag\"".to_string()];
        let e = s.complete_multipart("k", "u1", parts()).await.unwrap_err();
        assert!(matches!(e, StoreError::Retriable { .. }), "{e:?}");
        let e = s.complete_multipart("k", "u1", parts()).await.unwrap_err();
        assert!(matches!(e, StoreError::UploadGone { .. }), "{e:?}");
        let e = s
            .put_part("k", "u1", 0, Bytes::from_static(b"part"))
            .await
            .unwrap_err();
        assert!(matches!(e, StoreError::UploadGone { .. }), "{e:?}");
    }

    /// The parts recorded no longer make an upload S3 will complete (an ETag it does not know,
    /// parts out of order, a part too small): the upload starts over, as for one gone. Retried
    /// as it is, it would be refused forever and the original never stored.
    #[tokio::test]
    async fn parts_s3_refuses_to_complete_start_the_upload_over() {
        for code in ["InvalidPart", "InvalidPartOrder", "EntityTooSmall"] {
            let server = TestServer::start(vec![Canned::new(400, s3_error(code, "no"))]);
            let e = store(&server)
                .complete_multipart("k", "u1", vec!["\"etag\"".to_string()])
                .await
                .unwrap_err();
            assert!(matches!(e, StoreError::UploadGone { .. }), "{code}: {e:?}");
        }
        // The same codes on a plain GET are no upload's.
        let e = get("k", Canned::new(400, s3_error("InvalidPart", "no"))).await;
        assert!(!matches!(e, StoreError::UploadGone { .. }), "{e:?}");
    }

    #[tokio::test]
    async fn no_answer_is_unreachable() {
        // A port nobody listens on: the server took its one answer and closed.
        let server = TestServer::start(vec![]);
        std::thread::sleep(Duration::from_millis(50));
        let e = store(&server).list("cases").await.unwrap_err();
        assert!(matches!(e, StoreError::Unreachable { .. }), "{e:?}");
    }
}
