//! What can go wrong with an S3 control request, typed: the HTTP status and the S3 error code
//! are fields, so that no caller reads an error's text to tell a refusal from an outage.

/// Why an S3 request did not do what was asked. Each names the operation and the bucket (and the
/// key, for object operations); none carries a credential.
#[derive(Debug, thiserror::Error)]
pub enum S3Error {
    /// The client cannot be set up as given (endpoint, region, bucket name, credentials).
    #[error("S3 bucket {bucket:?}: configuration: {reason}")]
    Config { bucket: String, reason: String },
    /// The credential provider (the environment, a web identity, the instance metadata
    /// service) gave no usable credentials. Nothing was sent; a provider that was unreachable
    /// may answer later.
    #[error("S3 {op} on bucket {bucket:?}: no credentials to sign with: {reason}")]
    Credentials {
        op: &'static str,
        bucket: String,
        reason: String,
    },
    /// An argument that S3 would refuse or that cannot be addressed safely (an empty key, a
    /// key with a `.` or `..` segment, zero retention days). Nothing was sent.
    #[error("S3 {op} on {}: invalid argument: {reason}", at(bucket, key.as_deref()))]
    InvalidArgument {
        op: &'static str,
        bucket: String,
        key: Option<String>,
        reason: String,
    },
    /// No complete answer: connection refused or reset, DNS, TLS, timeout, a body cut short.
    #[error(
        "S3 {op} on {}: no answer from the service (retrying later may help): {reason}",
        at(bucket, key.as_deref())
    )]
    Transport {
        op: &'static str,
        bucket: String,
        key: Option<String>,
        reason: String,
    },
    /// The service answered with an error status; `code` and `message` are from its XML error
    /// body (`None` when it sent none, as for HEAD).
    #[error(
        "S3 {op} on {}: HTTP {status} {}: {message}{}{}",
        at(bucket, key.as_deref()),
        code.as_deref().unwrap_or("(no error code)"),
        request_id.as_deref().map(|r| format!(" (request id {r})")).unwrap_or_default(),
        if service_retriable(*status, code.as_deref()) { " (retrying later may help)" } else { "" }
    )]
    Service {
        op: &'static str,
        bucket: String,
        key: Option<Box<str>>,
        status: u16,
        code: Option<Box<str>>,
        message: String,
        request_id: Option<Box<str>>,
    },
    /// Object Lock was asked for a bucket that already exists without it: S3 can enable it
    /// only when a bucket is created (and Ceph RGW answers such a create with 200 regardless).
    #[error(
        "S3 {op} on bucket {bucket:?}: the bucket exists without Object Lock, which can only be \
         enabled when a bucket is created"
    )]
    ObjectLockMissing { op: &'static str, bucket: String },
    /// A success status with an answer that is not what S3 sends (not XML, another element,
    /// a missing field, larger than we read).
    #[error("S3 {op} on {}: unexpected answer: {reason}", at(bucket, key.as_deref()))]
    Response {
        op: &'static str,
        bucket: String,
        key: Option<String>,
        reason: String,
    },
}

fn at(bucket: &str, key: Option<&str>) -> String {
    match key {
        Some(k) => format!("bucket {bucket:?} key {k:?}"),
        None => format!("bucket {bucket:?}"),
    }
}

/// S3's codes for "the same request may work later", whatever the status they came with
/// (S3 sends some of them with 200).
const RETRIABLE_CODES: [&str; 5] = [
    "InternalError",
    "ServiceUnavailable",
    "SlowDown",
    "RequestTimeout",
    "OperationAborted",
];

fn service_retriable(status: u16, code: Option<&str>) -> bool {
    matches!(status, 408 | 429 | 500 | 502 | 503 | 504)
        || code.is_some_and(|c| RETRIABLE_CODES.contains(&c))
}

impl S3Error {
    /// Whether the same request may succeed later unchanged: the service was unreachable or
    /// answered with a server-side error (5xx, `SlowDown`, …), or the credential provider did
    /// not answer. A refusal (`AccessDenied`, a locked version, a missing bucket) is not.
    pub fn is_retriable(&self) -> bool {
        match self {
            S3Error::Transport { .. } | S3Error::Credentials { .. } => true,
            S3Error::Service { status, code, .. } => service_retriable(*status, code.as_deref()),
            S3Error::Config { .. }
            | S3Error::InvalidArgument { .. }
            | S3Error::ObjectLockMissing { .. }
            | S3Error::Response { .. } => false,
        }
    }

    /// The S3 error code (`AccessDenied`, `NoSuchBucket`, …) when the service sent one.
    pub fn code(&self) -> Option<&str> {
        match self {
            S3Error::Service { code, .. } => code.as_deref(),
            _ => None,
        }
    }

    /// The HTTP status when the service answered.
    pub fn status(&self) -> Option<u16> {
        match self {
            S3Error::Service { status, .. } => Some(*status),
            _ => None,
        }
    }

    /// Whether this is S3's way of saying "no Object Lock configuration / retention / legal
    /// hold here" (which the getters report as none). AWS says
    /// `ObjectLockConfigurationNotFoundError` for a bucket and `NoSuchObjectLockConfiguration`
    /// for an object; Ceph RGW says the former for both.
    pub(super) fn is_no_lock_configuration(&self) -> bool {
        matches!(
            self.code(),
            Some("ObjectLockConfigurationNotFoundError" | "NoSuchObjectLockConfiguration")
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn service(status: u16, code: Option<&str>) -> S3Error {
        S3Error::Service {
            op: "PutObject",
            bucket: "b".into(),
            key: Some("k".into()),
            status,
            code: code.map(Box::from),
            message: "m".into(),
            request_id: None,
        }
    }

    #[test]
    fn retriable_or_not() {
        assert!(service(500, Some("InternalError")).is_retriable());
        assert!(service(503, Some("SlowDown")).is_retriable());
        assert!(service(503, None).is_retriable());
        // S3 sends some server-side errors with 200.
        assert!(service(200, Some("InternalError")).is_retriable());
        assert!(!service(403, Some("AccessDenied")).is_retriable());
        assert!(!service(404, Some("NoSuchBucket")).is_retriable());
        assert_eq!(
            service(403, Some("AccessDenied")).code(),
            Some("AccessDenied")
        );
        assert_eq!(service(403, None).status(), Some(403));
        let shown = service(500, Some("InternalError")).to_string();
        assert!(
            shown.contains("\"b\"") && shown.contains("\"k\"") && shown.contains("InternalError"),
            "{shown}"
        );
        let transport = S3Error::Transport {
            op: "HeadBucket",
            bucket: "b".into(),
            key: None,
            reason: "connection reset".into(),
        };
        assert!(transport.is_retriable());
        assert_eq!(transport.code(), None);
        assert_eq!(transport.status(), None);
    }

    /// A code is a code: a message or a status that reads like one is not.
    #[test]
    fn classified_by_fields_not_by_text() {
        let e = S3Error::Service {
            op: "GetObjectRetention",
            bucket: "b".into(),
            key: Some("ObjectLockConfigurationNotFoundError".into()),
            status: 403,
            code: Some("AccessDenied".into()),
            message: "NoSuchObjectLockConfiguration took 500 ms, InternalError".into(),
            request_id: None,
        };
        assert!(!e.is_no_lock_configuration());
        assert!(!e.is_retriable(), "{e}");
        assert!(service(404, Some("NoSuchObjectLockConfiguration")).is_no_lock_configuration());
    }
}
