//! Signed S3 requests for what `object_store` has no call for: a bucket created with Object
//! Lock, its default retention, the retention and legal hold of one object, the versions of a
//! bucket and deleting one version.
//!
//! Requests are signed with AWS Signature Version 4 in the `Authorization` header, with the
//! payload hash in `x-amz-content-sha256` and, for temporary credentials, the session token in
//! `x-amz-security-token`. The signer is checked against AWS's published test vectors (see the
//! tests at the end of this file). Both path-style (`http://host/bucket/key`, what Ceph RGW and
//! MinIO want) and virtual-hosted (`https://bucket.host/key`) addressing are supported.
//!
//! The requests that carry a body (`PutObjectLockConfiguration`, `PutObjectRetention`,
//! `PutObjectLegalHold`, `PutObject`) also carry `Content-MD5`, which S3 requires for the first
//! three.
//!
//! Nothing here retries: every error says whether retrying later may help
//! ([`S3Error::is_retriable`]) and the caller decides. No error and no log line carries the
//! access key, the secret key or the session token.

use chrono::{DateTime, SecondsFormat, Utc};
use hmac::{Hmac, KeyInit, Mac};
use md5::Md5;
use sha2::{Digest, Sha256};
use std::fmt;
use std::time::{Duration, Instant};

/// The region used when none is given; what Ceph RGW and MinIO accept by default.
pub const DEFAULT_REGION: &str = "us-east-1";

/// The SigV4 service name of S3.
const SERVICE: &str = "s3";
/// SHA-256 of the empty string, the payload hash of a request without a body.
const EMPTY_SHA256: &str = "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855";
const XMLNS: &str = "http://s3.amazonaws.com/doc/2006-03-01/";
const CONNECT_TIMEOUT: Duration = Duration::from_secs(10);
const REQUEST_TIMEOUT: Duration = Duration::from_secs(120);
/// S3's limit on the length of a key, in bytes.
const MAX_KEY_BYTES: usize = 1024;
/// Longest piece of a non-XML error body quoted in an error.
const MAX_QUOTED_BODY: usize = 200;

/// An Object Lock retention mode.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum LockMode {
    /// Users with `s3:BypassGovernanceRetention` may shorten or remove the retention.
    Governance,
    /// Nobody, not even the root account, can delete the version before the date.
    Compliance,
}

impl LockMode {
    /// The name S3 uses: `GOVERNANCE` or `COMPLIANCE`.
    pub fn as_str(self) -> &'static str {
        match self {
            LockMode::Governance => "GOVERNANCE",
            LockMode::Compliance => "COMPLIANCE",
        }
    }

    fn parse(s: &str) -> Option<Self> {
        match s.trim() {
            "GOVERNANCE" => Some(LockMode::Governance),
            "COMPLIANCE" => Some(LockMode::Compliance),
            _ => None,
        }
    }
}

impl fmt::Display for LockMode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Why an S3 request did not do what was asked. Each names the operation and the bucket (and the
/// key, for object operations); none carries a credential.
#[derive(Debug, thiserror::Error)]
pub enum S3Error {
    /// The client cannot be set up as given (endpoint, region, bucket name, credentials).
    #[error("S3 bucket {bucket:?}: configuration: {reason}")]
    Config { bucket: String, reason: String },
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
    /// A success status with an answer that is not what S3 sends.
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

fn service_retriable(status: u16, code: Option<&str>) -> bool {
    matches!(status, 408 | 429 | 500 | 502 | 503 | 504)
        || matches!(
            code,
            Some(
                "InternalError"
                    | "ServiceUnavailable"
                    | "SlowDown"
                    | "RequestTimeout"
                    | "OperationAborted"
            )
        )
}

impl S3Error {
    /// Whether the same request may succeed later unchanged: the service was unreachable or
    /// answered with a server-side error (5xx, `SlowDown`, …). A refusal (`AccessDenied`, a
    /// locked version, a missing bucket) is not retriable.
    pub fn is_retriable(&self) -> bool {
        match self {
            S3Error::Transport { .. } => true,
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
}

#[derive(Clone)]
struct Credentials {
    access_key: String,
    secret_key: String,
    session_token: Option<String>,
}

impl fmt::Debug for Credentials {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Credentials { .. }")
    }
}

/// An S3 client for one bucket, for the control-plane calls `object_store` lacks.
#[derive(Clone)]
pub struct S3Control {
    /// `http` or `https`.
    scheme: String,
    /// `host[:port]` of the endpoint, as in a `Host` header (default port left out).
    endpoint_host: String,
    /// The endpoint's path, percent-encoded, without a trailing `/` (usually empty).
    base_path: String,
    region: String,
    bucket: String,
    creds: Credentials,
    path_style: bool,
    http: reqwest::Client,
}

impl fmt::Debug for S3Control {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("S3Control")
            .field(
                "endpoint",
                &format!("{}://{}{}", self.scheme, self.endpoint_host, self.base_path),
            )
            .field("region", &self.region)
            .field("bucket", &self.bucket)
            .field("path_style", &self.path_style)
            .finish_non_exhaustive()
    }
}

/// A request ready to send: everything that was signed.
#[derive(Debug)]
struct Prepared {
    url: String,
    /// Lowercase names, including `host` and `authorization`.
    headers: Vec<(String, String)>,
}

/// A 2xx answer.
struct Reply {
    headers: reqwest::header::HeaderMap,
    body: Vec<u8>,
}

impl Reply {
    fn text(&self) -> String {
        String::from_utf8_lossy(&self.body).into_owned()
    }

    fn header(&self, name: &str) -> Option<String> {
        self.headers
            .get(name)
            .and_then(|v| v.to_str().ok())
            .map(str::to_string)
    }
}

/// One request to make.
struct Call<'a> {
    op: &'static str,
    method: &'a str,
    key: Option<&'a str>,
    query: Vec<(&'a str, String)>,
    headers: Vec<(&'a str, String)>,
    body: Vec<u8>,
}

impl<'a> Call<'a> {
    fn new(op: &'static str, method: &'a str, key: Option<&'a str>) -> Self {
        Call {
            op,
            method,
            key,
            query: Vec::new(),
            headers: Vec::new(),
            body: Vec::new(),
        }
    }

    fn query(mut self, name: &'a str, value: impl Into<String>) -> Self {
        self.query.push((name, value.into()));
        self
    }

    fn header(mut self, name: &'a str, value: impl Into<String>) -> Self {
        self.headers.push((name, value.into()));
        self
    }

    /// The body, with its `Content-MD5`.
    fn body(mut self, body: Vec<u8>) -> Self {
        let md5 = Md5::digest(&body);
        self.headers.push(("content-md5", base64_encode(&md5)));
        self.body = body;
        self
    }
}

impl S3Control {
    /// A client for `bucket` at `endpoint` (`http[s]://host[:port][/path]`). `region` empty
    /// means [`DEFAULT_REGION`]. `path_style`: address the bucket in the path (Ceph RGW, MinIO)
    /// rather than in the host name.
    pub fn new(
        endpoint: &str,
        region: &str,
        bucket: &str,
        access_key: &str,
        secret_key: &str,
        session_token: Option<&str>,
        path_style: bool,
    ) -> Result<Self, S3Error> {
        let config = |reason: &str| S3Error::Config {
            bucket: bucket.to_string(),
            reason: reason.to_string(),
        };
        // The endpoint is never quoted in these errors: it may carry a password.
        let url = reqwest::Url::parse(endpoint)
            .map_err(|_| config("the endpoint is not an absolute http(s) URL"))?;
        if url.scheme() != "http" && url.scheme() != "https" {
            return Err(config("the endpoint must be an http:// or https:// URL"));
        }
        if !url.username().is_empty() || url.password().is_some() {
            return Err(config(
                "the endpoint must not carry user:password@ (give the credentials separately)",
            ));
        }
        if url.query().is_some() || url.fragment().is_some() {
            return Err(config("the endpoint must not have a query or a fragment"));
        }
        let host = url
            .host_str()
            .ok_or_else(|| config("the endpoint has no host"))?;
        let endpoint_host = match url.port() {
            Some(port) => format!("{host}:{port}"),
            None => host.to_string(),
        };
        let base_path = url.path().trim_end_matches('/').to_string();

        let region = if region.is_empty() {
            DEFAULT_REGION
        } else {
            region
        };
        if !region
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
        {
            return Err(config(
                "the region may hold only letters, digits, '-' and '_'",
            ));
        }
        check_bucket_name(bucket).map_err(|r| config(&r))?;
        if !path_style && host.parse::<std::net::IpAddr>().is_ok() {
            return Err(config(
                "virtual-hosted addressing needs a host name, not an IP address (use path style)",
            ));
        }
        if access_key.is_empty()
            || !access_key
                .bytes()
                .all(|b| b.is_ascii_graphic() && b != b'/')
        {
            return Err(config(
                "the access key must be non-empty printable ASCII without '/'",
            ));
        }
        if secret_key.is_empty() {
            return Err(config("the secret key is empty"));
        }
        if let Some(token) = session_token
            && (token.is_empty() || !token.bytes().all(|b| b.is_ascii_graphic()))
        {
            return Err(config(
                "the session token must be non-empty printable ASCII",
            ));
        }
        let http = reqwest::Client::builder()
            .connect_timeout(CONNECT_TIMEOUT)
            .timeout(REQUEST_TIMEOUT)
            .build()
            .map_err(|e| config(&format!("HTTP client: {e}")))?;
        Ok(S3Control {
            scheme: url.scheme().to_string(),
            endpoint_host,
            base_path,
            region: region.to_string(),
            bucket: bucket.to_string(),
            creds: Credentials {
                access_key: access_key.to_string(),
                secret_key: secret_key.to_string(),
                session_token: session_token.map(str::to_string),
            },
            path_style,
            http,
        })
    }

    /// The bucket this client is for.
    pub fn bucket(&self) -> &str {
        &self.bucket
    }

    /// The region requests are signed for.
    pub fn region(&self) -> &str {
        &self.region
    }

    /// Whether the bucket exists (HEAD bucket: 200 yes, 404 no). 403 is an error: the bucket
    /// may exist and belong to someone else.
    pub async fn bucket_exists(&self) -> Result<bool, S3Error> {
        match self.send(Call::new("HeadBucket", "HEAD", None)).await {
            Ok(_) => Ok(true),
            Err(S3Error::Service { status: 404, .. }) => Ok(false),
            Err(e) => Err(e),
        }
    }

    /// Create the bucket; with `object_lock`, with Object Lock enabled (which S3 allows only at
    /// creation, and which turns versioning on). A bucket that already exists and is ours
    /// counts as created; with `object_lock` it must then have Object Lock, checked after the
    /// create ([`S3Error::ObjectLockMissing`] if not: Ceph RGW answers 200 to a create with
    /// Object Lock of an existing bucket without it, and leaves it without).
    pub async fn create_bucket(&self, object_lock: bool) -> Result<(), S3Error> {
        let mut call = Call::new("CreateBucket", "PUT", None);
        if object_lock {
            call = call.header("x-amz-bucket-object-lock-enabled", "true");
        }
        if self.region != DEFAULT_REGION {
            call.body = format!(
                "<CreateBucketConfiguration xmlns=\"{XMLNS}\"><LocationConstraint>{}\
                 </LocationConstraint></CreateBucketConfiguration>",
                self.region
            )
            .into_bytes();
        }
        match self.send(call).await {
            Ok(_) => {}
            Err(e) if e.code() == Some("BucketAlreadyOwnedByYou") => {}
            Err(e) => return Err(e),
        }
        if object_lock && !self.object_lock_enabled().await? {
            return Err(S3Error::ObjectLockMissing {
                op: "CreateBucket",
                bucket: self.bucket.clone(),
            });
        }
        Ok(())
    }

    /// Whether Object Lock is enabled on the bucket (with or without a default rule).
    pub async fn object_lock_enabled(&self) -> Result<bool, S3Error> {
        let call = Call::new("GetObjectLockConfiguration", "GET", None).query("object-lock", "");
        match self.send(call).await {
            Ok(reply) => {
                Ok(first_text(&reply.text(), "ObjectLockEnabled").as_deref() == Some("Enabled"))
            }
            Err(e) if is_no_lock_configuration(&e) => Ok(false),
            Err(e) => Err(e),
        }
    }

    /// Whether versioning is enabled (not merely suspended, nor never set).
    pub async fn versioning_enabled(&self) -> Result<bool, S3Error> {
        let call = Call::new("GetBucketVersioning", "GET", None).query("versioning", "");
        let reply = self.send(call).await?;
        let xml = reply.text();
        if !xml.contains("VersioningConfiguration") {
            return Err(self.unexpected("GetBucketVersioning", None, "no VersioningConfiguration"));
        }
        Ok(first_text(&xml, "Status").as_deref() == Some("Enabled"))
    }

    /// The bucket's default retention: `None` when Object Lock is not enabled on the bucket or
    /// it has no default rule. A rule given in years is reported as 365 days a year (never more
    /// than the real period).
    pub async fn object_lock_configuration(&self) -> Result<Option<(LockMode, u32)>, S3Error> {
        const OP: &str = "GetObjectLockConfiguration";
        let call = Call::new(OP, "GET", None).query("object-lock", "");
        let reply = match self.send(call).await {
            Ok(r) => r,
            Err(e) if is_no_lock_configuration(&e) => return Ok(None),
            Err(e) => return Err(e),
        };
        let xml = reply.text();
        if !xml.contains("ObjectLockConfiguration") {
            return Err(self.unexpected(OP, None, "no ObjectLockConfiguration"));
        }
        if first_text(&xml, "ObjectLockEnabled").as_deref() != Some("Enabled") {
            return Ok(None);
        }
        let Some(retention) = first_inner(&xml, "DefaultRetention") else {
            return Ok(None);
        };
        let mode = first_text(retention, "Mode")
            .and_then(|m| LockMode::parse(&m))
            .ok_or_else(|| self.unexpected(OP, None, "DefaultRetention without a valid Mode"))?;
        let number = |name: &'static str| -> Result<Option<u32>, S3Error> {
            match first_text(retention, name) {
                None => Ok(None),
                Some(t) => t
                    .trim()
                    .parse::<u32>()
                    .map(Some)
                    .map_err(|_| self.unexpected(OP, None, &format!("{name} is not a number"))),
            }
        };
        let days = match (number("Days")?, number("Years")?) {
            (Some(d), _) => d,
            (None, Some(y)) => y.saturating_mul(365),
            (None, None) => {
                return Err(self.unexpected(OP, None, "DefaultRetention without Days or Years"));
            }
        };
        Ok(Some((mode, days)))
    }

    /// Set the bucket's default retention (PutObjectLockConfiguration): every new object
    /// version is locked in `mode` for `days` days. Object Lock must have been enabled at
    /// creation.
    pub async fn put_default_retention(&self, mode: LockMode, days: u32) -> Result<(), S3Error> {
        const OP: &str = "PutObjectLockConfiguration";
        if days == 0 {
            return Err(self.invalid(OP, None, "the default retention must be at least 1 day"));
        }
        let xml = format!(
            "<ObjectLockConfiguration xmlns=\"{XMLNS}\"><ObjectLockEnabled>Enabled\
             </ObjectLockEnabled><Rule><DefaultRetention><Mode>{mode}</Mode><Days>{days}</Days>\
             </DefaultRetention></Rule></ObjectLockConfiguration>"
        );
        let call = Call::new(OP, "PUT", None)
            .query("object-lock", "")
            .body(xml.into_bytes());
        self.send(call).await.map(drop)
    }

    /// Lock the current version of `key` in `mode` until `until` (PutObjectRetention).
    /// `bypass_governance` lets a GOVERNANCE retention be shortened or removed, for a user
    /// allowed to.
    pub async fn put_object_retention(
        &self,
        key: &str,
        mode: LockMode,
        until: DateTime<Utc>,
        bypass_governance: bool,
    ) -> Result<(), S3Error> {
        let xml = format!(
            "<Retention xmlns=\"{XMLNS}\"><Mode>{mode}</Mode><RetainUntilDate>{}\
             </RetainUntilDate></Retention>",
            until.to_rfc3339_opts(SecondsFormat::Millis, true)
        );
        let mut call = Call::new("PutObjectRetention", "PUT", Some(key))
            .query("retention", "")
            .body(xml.into_bytes());
        if bypass_governance {
            call = call.header("x-amz-bypass-governance-retention", "true");
        }
        self.send(call).await.map(drop)
    }

    /// The retention of the current version of `key`: `None` when it has none. In a bucket
    /// without Object Lock this is an error (RGW: 400 `InvalidRequest`, AWS: 400
    /// `InvalidRequest`), not `None`.
    pub async fn object_retention(
        &self,
        key: &str,
    ) -> Result<Option<(LockMode, DateTime<Utc>)>, S3Error> {
        const OP: &str = "GetObjectRetention";
        let call = Call::new(OP, "GET", Some(key)).query("retention", "");
        let reply = match self.send(call).await {
            Ok(r) => r,
            Err(e) if is_no_lock_configuration(&e) => return Ok(None),
            Err(e) => return Err(e),
        };
        let xml = reply.text();
        let Some(retention) = first_inner(&xml, "Retention") else {
            return Err(self.unexpected(OP, Some(key), "no Retention"));
        };
        let (Some(mode), Some(until)) = (
            first_text(retention, "Mode"),
            first_text(retention, "RetainUntilDate"),
        ) else {
            return Ok(None);
        };
        let mode = LockMode::parse(&mode)
            .ok_or_else(|| self.unexpected(OP, Some(key), &format!("unknown mode {mode:?}")))?;
        let until = DateTime::parse_from_rfc3339(until.trim())
            .map_err(|_| {
                self.unexpected(
                    OP,
                    Some(key),
                    &format!("RetainUntilDate {until:?} is not RFC 3339"),
                )
            })?
            .with_timezone(&Utc);
        Ok(Some((mode, until)))
    }

    /// Put the legal hold of the current version of `key` on or off (PutObjectLegalHold).
    pub async fn put_legal_hold(&self, key: &str, on: bool) -> Result<(), S3Error> {
        let xml = format!(
            "<LegalHold xmlns=\"{XMLNS}\"><Status>{}</Status></LegalHold>",
            if on { "ON" } else { "OFF" }
        );
        let call = Call::new("PutObjectLegalHold", "PUT", Some(key))
            .query("legal-hold", "")
            .body(xml.into_bytes());
        self.send(call).await.map(drop)
    }

    /// Whether the current version of `key` is under legal hold (never set counts as off).
    pub async fn legal_hold(&self, key: &str) -> Result<bool, S3Error> {
        const OP: &str = "GetObjectLegalHold";
        let call = Call::new(OP, "GET", Some(key)).query("legal-hold", "");
        let reply = match self.send(call).await {
            Ok(r) => r,
            Err(e) if is_no_lock_configuration(&e) => return Ok(false),
            Err(e) => return Err(e),
        };
        let xml = reply.text();
        match first_text(&xml, "Status").as_deref().map(str::trim) {
            Some("ON") => Ok(true),
            Some("OFF") => Ok(false),
            _ => Err(self.unexpected(OP, Some(key), "LegalHold without Status ON or OFF")),
        }
    }

    /// Store `body` under `key` (a plain signed PutObject, with Content-MD5); the new version's
    /// id when the bucket is versioned.
    pub async fn put_object(&self, key: &str, body: &[u8]) -> Result<Option<String>, S3Error> {
        let call = Call::new("PutObject", "PUT", Some(key)).body(body.to_vec());
        let reply = self.send(call).await?;
        Ok(reply.header("x-amz-version-id").filter(|v| !v.is_empty()))
    }

    /// Delete `key` (without `version_id`: a delete marker in a versioned bucket) or one version
    /// of it. A locked version is refused (`AccessDenied`).
    pub async fn delete_object(&self, key: &str, version_id: Option<&str>) -> Result<(), S3Error> {
        let mut call = Call::new("DeleteObject", "DELETE", Some(key));
        if let Some(v) = version_id {
            call = call.query("versionId", v);
        }
        self.send(call).await.map(drop)
    }

    /// Every version under `prefix`, as `(key, version id)`, delete markers included, all pages.
    pub async fn list_object_versions(
        &self,
        prefix: &str,
    ) -> Result<Vec<(String, String)>, S3Error> {
        const OP: &str = "ListObjectVersions";
        let mut out = Vec::new();
        let mut markers: Option<(String, String)> = None;
        loop {
            let mut call = Call::new(OP, "GET", None)
                .query("versions", "")
                .query("max-keys", "1000")
                .query("prefix", prefix);
            if let Some((key, version)) = &markers {
                call = call.query("key-marker", key.clone());
                if !version.is_empty() {
                    call = call.query("version-id-marker", version.clone());
                }
            }
            let xml = self.send(call).await?.text();
            if !xml.contains("ListVersionsResult") {
                return Err(self.unexpected(OP, None, "no ListVersionsResult"));
            }
            for (_, entry) in find_elements(&xml, &["Version", "DeleteMarker"]) {
                let (Some(key), Some(version)) =
                    (first_text(entry, "Key"), first_text(entry, "VersionId"))
                else {
                    return Err(self.unexpected(OP, None, "a version without Key or VersionId"));
                };
                out.push((key, version));
            }
            if first_text(&xml, "IsTruncated").as_deref().map(str::trim) != Some("true") {
                return Ok(out);
            }
            let next = (
                first_text(&xml, "NextKeyMarker").unwrap_or_default(),
                first_text(&xml, "NextVersionIdMarker").unwrap_or_default(),
            );
            if next.0.is_empty() || markers.as_ref() == Some(&next) {
                return Err(self.unexpected(OP, None, "a truncated listing without a new marker"));
            }
            markers = Some(next);
        }
    }

    fn invalid(&self, op: &'static str, key: Option<&str>, reason: &str) -> S3Error {
        S3Error::InvalidArgument {
            op,
            bucket: self.bucket.clone(),
            key: key.map(str::to_string),
            reason: reason.to_string(),
        }
    }

    fn unexpected(&self, op: &'static str, key: Option<&str>, reason: &str) -> S3Error {
        S3Error::Response {
            op,
            bucket: self.bucket.clone(),
            key: key.map(str::to_string),
            reason: reason.to_string(),
        }
    }

    /// Sign and send; a 2xx reply, or the error.
    async fn send(&self, call: Call<'_>) -> Result<Reply, S3Error> {
        let op = call.op;
        let key = call.key;
        let prepared = self.prepare(&call, Utc::now())?;
        let method = reqwest::Method::from_bytes(call.method.as_bytes())
            .map_err(|_| self.invalid(op, key, "bad HTTP method"))?;
        let mut request = self.http.request(method, &prepared.url);
        for (name, value) in &prepared.headers {
            request = request.header(name.as_str(), value.as_str());
        }
        if !call.body.is_empty() || matches!(call.method, "PUT" | "POST") {
            request = request.body(call.body);
        }
        let transport = |e: reqwest::Error| S3Error::Transport {
            op,
            bucket: self.bucket.clone(),
            key: key.map(str::to_string),
            reason: self.scrub(&error_chain(&e.without_url())),
        };
        let started = Instant::now();
        let response = request.send().await.map_err(transport)?;
        let status = response.status();
        let headers = response.headers().clone();
        let body = response.bytes().await.map_err(transport)?.to_vec();
        tracing::debug!(
            op,
            bucket = %self.bucket,
            key = key.unwrap_or(""),
            status = status.as_u16(),
            ms = started.elapsed().as_millis() as u64,
            "s3 request"
        );
        if status.is_success() {
            return Ok(Reply { headers, body });
        }
        let text = String::from_utf8_lossy(&body);
        let error = first_inner(&text, "Error");
        let code = error
            .and_then(|e| first_text(e, "Code"))
            .filter(|c| !c.is_empty());
        let request_id = error.and_then(|e| first_text(e, "RequestId"));
        let message = match error.and_then(|e| first_text(e, "Message")) {
            Some(m) if !m.trim().is_empty() => m.trim().to_string(),
            // An S3 error without a message (Ceph RGW sends many): the status says enough.
            _ if error.is_some() || body.is_empty() => status
                .canonical_reason()
                .unwrap_or("no message")
                .to_string(),
            _ => quote_body(&text),
        };
        Err(S3Error::Service {
            op,
            bucket: self.bucket.clone(),
            key: key.map(Box::from),
            status: status.as_u16(),
            code: code.map(|c| self.scrub(&c).into()),
            message: self.scrub(&message),
            request_id: request_id.map(Box::from),
        })
    }

    /// Replace any credential in text that came from elsewhere (a server's error message).
    fn scrub(&self, text: &str) -> String {
        let mut out = text.to_string();
        let secrets = [
            Some(self.creds.secret_key.as_str()),
            self.creds.session_token.as_deref(),
            Some(self.creds.access_key.as_str()),
        ];
        for secret in secrets.into_iter().flatten() {
            if !secret.is_empty() && out.contains(secret) {
                out = out.replace(secret, "[redacted]");
            }
        }
        out
    }

    /// The URL and the signed headers of `call` at time `now`.
    fn prepare(&self, call: &Call<'_>, now: DateTime<Utc>) -> Result<Prepared, S3Error> {
        if let Some(key) = call.key {
            check_key(key).map_err(|r| self.invalid(call.op, Some(key), &r))?;
        }
        let host = if self.path_style {
            self.endpoint_host.clone()
        } else {
            format!("{}.{}", self.bucket, self.endpoint_host)
        };
        let mut path = self.base_path.clone();
        if self.path_style {
            path.push('/');
            path.push_str(&uri_encode(&self.bucket, true));
        }
        match call.key {
            Some(key) => {
                path.push('/');
                path.push_str(&uri_encode(key, false));
            }
            None if path.is_empty() => path.push('/'),
            None => {}
        }
        let query = canonical_query(&call.query);

        let amz_date = now.format("%Y%m%dT%H%M%SZ").to_string();
        let payload_hash = if call.body.is_empty() {
            EMPTY_SHA256.to_string()
        } else {
            hex::encode(Sha256::digest(&call.body))
        };
        let mut headers: Vec<(String, String)> = vec![
            ("host".into(), host.clone()),
            ("x-amz-content-sha256".into(), payload_hash.clone()),
            ("x-amz-date".into(), amz_date.clone()),
        ];
        if let Some(token) = &self.creds.session_token {
            headers.push(("x-amz-security-token".into(), token.clone()));
        }
        for (name, value) in &call.headers {
            headers.push((name.to_ascii_lowercase(), value.clone()));
        }
        let signer = Signer {
            access_key: &self.creds.access_key,
            secret_key: &self.creds.secret_key,
            region: &self.region,
            service: SERVICE,
        };
        let pairs: Vec<(&str, &str)> = headers
            .iter()
            .map(|(n, v)| (n.as_str(), v.as_str()))
            .collect();
        let authorization = signer
            .authorization(&amz_date, call.method, &path, &query, &pairs, &payload_hash)
            .map_err(|_| self.invalid(call.op, call.key, "the secret key cannot key HMAC"))?;
        headers.push(("authorization".into(), authorization));
        let url = if query.is_empty() {
            format!("{}://{host}{path}", self.scheme)
        } else {
            format!("{}://{host}{path}?{query}", self.scheme)
        };
        Ok(Prepared { url, headers })
    }
}

/// Whether `e` is S3's way of saying "no Object Lock configuration / retention / legal hold
/// here" (which the getters report as none). AWS says `ObjectLockConfigurationNotFoundError`
/// for a bucket and `NoSuchObjectLockConfiguration` for an object; Ceph RGW says the former
/// for both.
fn is_no_lock_configuration(e: &S3Error) -> bool {
    matches!(
        e.code(),
        Some("ObjectLockConfigurationNotFoundError" | "NoSuchObjectLockConfiguration")
    )
}

/// S3's bucket naming rules: 3 to 63 characters, lowercase letters, digits, '.' and '-',
/// beginning and ending with a letter or digit.
fn check_bucket_name(bucket: &str) -> Result<(), String> {
    let ok_len = (3..=63).contains(&bucket.len());
    let ok_chars = bucket
        .bytes()
        .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'.' || b == b'-');
    let ok_ends = bucket
        .bytes()
        .next()
        .zip(bucket.bytes().last())
        .is_some_and(|(a, z)| a.is_ascii_alphanumeric() && z.is_ascii_alphanumeric());
    if ok_len && ok_chars && ok_ends && !bucket.contains("..") {
        Ok(())
    } else {
        Err(
            "the bucket name must be 3-63 lowercase letters, digits, '.' or '-', beginning and \
             ending with a letter or digit"
                .to_string(),
        )
    }
}

/// Keys this client can address exactly: not empty, at most 1024 bytes, no control
/// characters, and no `.` or `..` path segment (HTTP clients resolve those, so the request
/// would reach another key than the one signed).
fn check_key(key: &str) -> Result<(), String> {
    if key.is_empty() {
        return Err("the key is empty".into());
    }
    if key.len() > MAX_KEY_BYTES {
        return Err(format!("the key is longer than {MAX_KEY_BYTES} bytes"));
    }
    if key.chars().any(char::is_control) {
        return Err("the key contains a control character".into());
    }
    if key.split('/').any(|s| s == "." || s == "..") {
        return Err("the key has a '.' or '..' segment".into());
    }
    Ok(())
}

/// SigV4 URI encoding: every byte but the unreserved `A-Z a-z 0-9 - _ . ~` as `%XX`
/// (uppercase hex); `/` kept unless `encode_slash`. UTF-8 is encoded byte by byte.
fn uri_encode(s: &str, encode_slash: bool) -> String {
    let mut out = String::with_capacity(s.len());
    for b in s.bytes() {
        if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.' | b'~') {
            out.push(char::from(b));
        } else if b == b'/' && !encode_slash {
            out.push('/');
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

/// The canonical query string: names and values URI-encoded, sorted by name then value.
fn canonical_query<S: AsRef<str>>(pairs: &[(&str, S)]) -> String {
    let mut encoded: Vec<(String, String)> = pairs
        .iter()
        .map(|(n, v)| (uri_encode(n, true), uri_encode(v.as_ref(), true)))
        .collect();
    encoded.sort();
    encoded
        .iter()
        .map(|(n, v)| format!("{n}={v}"))
        .collect::<Vec<_>>()
        .join("&")
}

/// The SigV4 signer: credentials and scope.
struct Signer<'a> {
    access_key: &'a str,
    secret_key: &'a str,
    region: &'a str,
    service: &'a str,
}

/// HMAC-SHA256 can be keyed with any key; this is the error type its API still has.
#[derive(Debug)]
struct HmacKeyError;

fn hmac_sha256(key: &[u8], data: &[u8]) -> Result<[u8; 32], HmacKeyError> {
    let mut mac = <Hmac<Sha256> as KeyInit>::new_from_slice(key).map_err(|_| HmacKeyError)?;
    mac.update(data);
    Ok(mac.finalize().into_bytes().into())
}

impl Signer<'_> {
    /// The canonical request and the signed-header list. `canonical_uri` and `canonical_query`
    /// are already encoded; `headers` are `(name, value)` in any case and order, duplicates
    /// allowed (joined with `,`).
    fn canonical_request(
        method: &str,
        canonical_uri: &str,
        canonical_query: &str,
        headers: &[(&str, &str)],
        payload_hash: &str,
    ) -> (String, String) {
        let mut sorted: Vec<(String, String)> = Vec::new();
        let mut normalized: Vec<(String, String)> = headers
            .iter()
            .map(|(n, v)| {
                (
                    n.trim().to_ascii_lowercase(),
                    v.split_whitespace().collect::<Vec<_>>().join(" "),
                )
            })
            .collect();
        // Stable: values of one header keep their order.
        normalized.sort_by(|a, b| a.0.cmp(&b.0));
        for (name, value) in normalized {
            match sorted.last_mut() {
                Some((last, joined)) if *last == name => {
                    joined.push(',');
                    joined.push_str(&value);
                }
                _ => sorted.push((name, value)),
            }
        }
        let canonical_headers: String = sorted.iter().map(|(n, v)| format!("{n}:{v}\n")).collect();
        let signed_headers = sorted
            .iter()
            .map(|(n, _)| n.as_str())
            .collect::<Vec<_>>()
            .join(";");
        let canonical = format!(
            "{method}\n{canonical_uri}\n{canonical_query}\n{canonical_headers}\n{signed_headers}\n{payload_hash}"
        );
        (canonical, signed_headers)
    }

    /// The string to sign for a canonical request at `amz_date` (`YYYYMMDDTHHMMSSZ`).
    fn string_to_sign(&self, amz_date: &str, canonical_request: &str) -> String {
        format!(
            "AWS4-HMAC-SHA256\n{amz_date}\n{}\n{}",
            self.scope(amz_date),
            hex::encode(Sha256::digest(canonical_request.as_bytes()))
        )
    }

    fn scope(&self, amz_date: &str) -> String {
        let date = amz_date.get(..8).unwrap_or(amz_date);
        format!("{date}/{}/{}/aws4_request", self.region, self.service)
    }

    fn signature(&self, amz_date: &str, string_to_sign: &str) -> Result<String, HmacKeyError> {
        let date = amz_date.get(..8).unwrap_or(amz_date);
        let k_date = hmac_sha256(
            format!("AWS4{}", self.secret_key).as_bytes(),
            date.as_bytes(),
        )?;
        let k_region = hmac_sha256(&k_date, self.region.as_bytes())?;
        let k_service = hmac_sha256(&k_region, self.service.as_bytes())?;
        let k_signing = hmac_sha256(&k_service, b"aws4_request")?;
        Ok(hex::encode(hmac_sha256(
            &k_signing,
            string_to_sign.as_bytes(),
        )?))
    }

    /// The `Authorization` header value.
    fn authorization(
        &self,
        amz_date: &str,
        method: &str,
        canonical_uri: &str,
        canonical_query: &str,
        headers: &[(&str, &str)],
        payload_hash: &str,
    ) -> Result<String, HmacKeyError> {
        let (canonical, signed_headers) = Self::canonical_request(
            method,
            canonical_uri,
            canonical_query,
            headers,
            payload_hash,
        );
        let signature = self.signature(amz_date, &self.string_to_sign(amz_date, &canonical))?;
        Ok(format!(
            "AWS4-HMAC-SHA256 Credential={}/{}, SignedHeaders={signed_headers}, Signature={signature}",
            self.access_key,
            self.scope(amz_date)
        ))
    }
}

fn base64_encode(bytes: &[u8]) -> String {
    use base64::Engine as _;
    base64::engine::general_purpose::STANDARD.encode(bytes)
}

/// An error and its causes, `: `-joined (reqwest hides the interesting part in the sources).
fn error_chain(e: &dyn std::error::Error) -> String {
    let mut out = e.to_string();
    let mut source = e.source();
    while let Some(s) = source {
        let text = s.to_string();
        if !out.contains(&text) {
            out.push_str(": ");
            out.push_str(&text);
        }
        source = s.source();
    }
    out
}

/// The start of a non-XML error body, on one line.
fn quote_body(text: &str) -> String {
    let line: String = text
        .chars()
        .map(|c| if c.is_control() { ' ' } else { c })
        .take(MAX_QUOTED_BODY)
        .collect();
    format!("non-S3 error body: {:?}", line.trim())
}

/// The elements named one of `names`, in document order, as `(name, raw inner text)`. A small
/// scanner for S3's flat answers, not a general XML parser: an element is not expected to
/// contain another of the same name.
fn find_elements<'a>(xml: &'a str, names: &[&'static str]) -> Vec<(&'static str, &'a str)> {
    let mut out = Vec::new();
    let mut pos = 0;
    while let Some(rel) = xml.get(pos..).and_then(|rest| rest.find('<')) {
        let start = pos + rel;
        let rest = &xml[start + 1..];
        let name_end = rest
            .find(|c: char| c == '>' || c == '/' || c.is_whitespace())
            .unwrap_or(rest.len());
        let tag = &rest[..name_end];
        let Some(&name) = names.iter().find(|n| **n == tag) else {
            pos = start + 1;
            continue;
        };
        let Some(gt) = rest.find('>') else { break };
        let open_end = start + 1 + gt + 1;
        if rest[..gt].ends_with('/') {
            out.push((name, ""));
            pos = open_end;
            continue;
        }
        let close = format!("</{name}>");
        let Some(len) = xml[open_end..].find(&close) else {
            break;
        };
        out.push((name, &xml[open_end..open_end + len]));
        pos = open_end + len + close.len();
    }
    out
}

/// The raw inner text of the first element `name`.
fn first_inner<'a>(xml: &'a str, name: &'static str) -> Option<&'a str> {
    find_elements(xml, &[name]).first().map(|(_, inner)| *inner)
}

/// The text of the first element `name`, entities resolved.
fn first_text(xml: &str, name: &'static str) -> Option<String> {
    first_inner(xml, name).map(xml_unescape)
}

/// Resolve the five predefined entities and character references; leave anything else as is.
fn xml_unescape(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    let mut rest = s;
    while let Some(amp) = rest.find('&') {
        out.push_str(&rest[..amp]);
        let after = &rest[amp..];
        let Some(semi) = after.find(';').filter(|&i| i <= 10) else {
            out.push('&');
            rest = &after[1..];
            continue;
        };
        let entity = &after[1..semi];
        let resolved = match entity {
            "amp" => Some('&'),
            "lt" => Some('<'),
            "gt" => Some('>'),
            "quot" => Some('"'),
            "apos" => Some('\''),
            _ => entity
                .strip_prefix("#x")
                .or_else(|| entity.strip_prefix("#X"))
                .and_then(|h| u32::from_str_radix(h, 16).ok())
                .or_else(|| entity.strip_prefix('#').and_then(|d| d.parse().ok()))
                .and_then(char::from_u32),
        };
        match resolved {
            Some(c) => {
                out.push(c);
                rest = &after[semi + 1..];
            }
            None => {
                out.push('&');
                rest = &after[1..];
            }
        }
    }
    out.push_str(rest);
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    // The AWS SigV4 test suite (docs.aws.amazon.com/general/latest/gr/signature-v4-test-suite.html):
    // its credentials, time, region and service, and the published Authorization headers.
    const SUITE_AKID: &str = "AKIDEXAMPLE";
    const SUITE_SECRET: &str = "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY";
    const SUITE_DATE: &str = "20150830T123600Z";
    const SUITE_HOST: &str = "example.amazonaws.com";
    const SUITE_TOKEN: &str = "AQoDYXdzEPT//////////wEXAMPLEtc764bNrC9SAPBSM22wDOk4x4HIZ8j4FZTwd\
QWLWsKWHGBuFqwAeMicRXmxfpSPfIeoIYRqTflfKD8YUuwthAx7mSEI/qkPpKPi/kMcGdQrmGdeehM4IC1NtBmUpp2wUE8phUZ\
ampKsburEDy0KPkyQDYwT7WZ0wq5VSXDvp75YU9HFvlRd8Tx6q6fE8YQcHNVXAkiY9q6d+xo0rKwT38xVqr7ZD0u0iPPkUL6\
4lIZbqBAz+scqKmlzm8FDrypNC9Yjc8fPOLn9FX9KSYvKTr4rvx3iSIlTJabIQwj2ICCR/oLxBA==";

    fn suite_signer() -> Signer<'static> {
        Signer {
            access_key: SUITE_AKID,
            secret_key: SUITE_SECRET,
            region: "us-east-1",
            service: "service",
        }
    }

    fn suite_authorization(method: &str, uri: &str, query: &[(&str, &str)]) -> String {
        let headers = [("Host", SUITE_HOST), ("X-Amz-Date", SUITE_DATE)];
        suite_signer()
            .authorization(
                SUITE_DATE,
                method,
                uri,
                &canonical_query(query),
                &headers,
                EMPTY_SHA256,
            )
            .unwrap()
    }

    fn suite_expected(signed_headers: &str, signature: &str) -> String {
        format!(
            "AWS4-HMAC-SHA256 Credential=AKIDEXAMPLE/20150830/us-east-1/service/aws4_request, \
             SignedHeaders={signed_headers}, Signature={signature}"
        )
    }

    /// get-vanilla (and get-vanilla-query, the same request with an empty query): canonical
    /// request, its hash in the string to sign, and the Authorization header.
    #[test]
    fn sigv4_suite_get_vanilla() {
        let headers = [("Host", SUITE_HOST), ("X-Amz-Date", SUITE_DATE)];
        let (canonical, signed) = Signer::canonical_request("GET", "/", "", &headers, EMPTY_SHA256);
        assert_eq!(
            canonical,
            "GET\n/\n\nhost:example.amazonaws.com\nx-amz-date:20150830T123600Z\n\nhost;x-amz-date\n\
             e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"
        );
        assert_eq!(signed, "host;x-amz-date");
        assert_eq!(
            suite_signer().string_to_sign(SUITE_DATE, &canonical),
            "AWS4-HMAC-SHA256\n20150830T123600Z\n20150830/us-east-1/service/aws4_request\n\
             bb579772317eb040ac9ed261061d46c1f17a8133879d6129b6e1c25292927e63"
        );
        assert_eq!(
            suite_authorization("GET", "/", &[]),
            suite_expected(
                "host;x-amz-date",
                "5fa00fa31553b73ebf1942676e86291e8372ff2a2260956d9b8aae1d763fbf31"
            )
        );
    }

    /// get-vanilla-empty-query-key (`?Param1=value1`), get-vanilla-query-order-key-case
    /// (`?Param2=value2&Param1=value1`, sorted) and get-vanilla-utf8-query (`?ሴ=bar`).
    #[test]
    fn sigv4_suite_queries() {
        assert_eq!(
            suite_authorization("GET", "/", &[("Param1", "value1")]),
            suite_expected(
                "host;x-amz-date",
                "a67d582fa61cc504c4bae71f336f98b97f1ea3c7a6bfe1b6e45aec72011b9aeb"
            )
        );
        assert_eq!(
            suite_authorization("GET", "/", &[("Param2", "value2"), ("Param1", "value1")]),
            suite_expected(
                "host;x-amz-date",
                "b97d918cfa904a5beff61c982a1b6f458b799221646efd99d3219ec94cdf2500"
            )
        );
        assert_eq!(
            suite_authorization("GET", "/", &[("\u{1234}", "bar")]),
            suite_expected(
                "host;x-amz-date",
                "2cdec8eed098649ff3a119c94853b13c643bcf08f8b0a1d91e12c9027818dd04"
            )
        );
    }

    /// get-utf8: the path `/ሴ`, encoded once as S3 wants (`/%E1%88%B4`).
    #[test]
    fn sigv4_suite_utf8_path() {
        let uri = format!("/{}", uri_encode("\u{1234}", false));
        assert_eq!(uri, "/%E1%88%B4");
        assert_eq!(
            suite_authorization("GET", &uri, &[]),
            suite_expected(
                "host;x-amz-date",
                "8318018e0b0f223aa2bbf98705b62bb787dc9c0e678f255a891fd03141be5d85"
            )
        );
    }

    /// post-vanilla and post-sts-header-before (the session token is a signed header).
    #[test]
    fn sigv4_suite_post_and_session_token() {
        assert_eq!(
            suite_authorization("POST", "/", &[]),
            suite_expected(
                "host;x-amz-date",
                "5da7c1a2acd57cee7505fc6676e4e544621c30862966e37dddb68e92efbe5d6b"
            )
        );
        let headers = [
            ("Host", SUITE_HOST),
            ("X-Amz-Date", SUITE_DATE),
            ("X-Amz-Security-Token", SUITE_TOKEN),
        ];
        let got = suite_signer()
            .authorization(SUITE_DATE, "POST", "/", "", &headers, EMPTY_SHA256)
            .unwrap();
        assert_eq!(
            got,
            suite_expected(
                "host;x-amz-date;x-amz-security-token",
                "85d96828115b5dc0cfc3bd16ad9e210dd772bbebba041836c64533a82be05ead"
            )
        );
    }

    /// get-header-value-trim: values trimmed and inner runs of spaces collapsed.
    #[test]
    fn sigv4_suite_header_value_trim() {
        let headers = [
            ("Host", SUITE_HOST),
            ("My-Header1", " value1"),
            ("My-Header2", " \"a   b   c\""),
            ("X-Amz-Date", SUITE_DATE),
        ];
        let got = suite_signer()
            .authorization(SUITE_DATE, "GET", "/", "", &headers, EMPTY_SHA256)
            .unwrap();
        assert_eq!(
            got,
            suite_expected(
                "host;my-header1;my-header2;x-amz-date",
                "acc3ed3afb60bb290fc8d2dd0098b9911fcaa05412b367055dee359757a9c736"
            )
        );
    }

    // The worked examples of "Signature Calculations for the Authorization Header: Transferring
    // Payload in a Single Chunk" in the S3 API reference, through the whole request builder.
    const S3_DOC_AKID: &str = "AKIAIOSFODNN7EXAMPLE";
    const S3_DOC_SECRET: &str = "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY";

    fn s3_doc_client() -> S3Control {
        S3Control::new(
            "https://s3.amazonaws.com",
            "",
            "examplebucket",
            S3_DOC_AKID,
            S3_DOC_SECRET,
            None,
            false,
        )
        .unwrap()
    }

    fn s3_doc_time() -> DateTime<Utc> {
        DateTime::parse_from_rfc3339("2013-05-24T00:00:00Z")
            .unwrap()
            .with_timezone(&Utc)
    }

    fn header<'a>(p: &'a Prepared, name: &str) -> &'a str {
        p.headers
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, v)| v.as_str())
            .unwrap()
    }

    fn s3_doc_expected(signed_headers: &str, signature: &str) -> String {
        format!(
            "AWS4-HMAC-SHA256 Credential=AKIAIOSFODNN7EXAMPLE/20130524/us-east-1/s3/aws4_request, \
             SignedHeaders={signed_headers}, Signature={signature}"
        )
    }

    #[test]
    fn s3_doc_get_object() {
        let call = Call::new("GetObject", "GET", Some("test.txt")).header("Range", "bytes=0-9");
        let p = s3_doc_client().prepare(&call, s3_doc_time()).unwrap();
        assert_eq!(p.url, "https://examplebucket.s3.amazonaws.com/test.txt");
        assert_eq!(header(&p, "host"), "examplebucket.s3.amazonaws.com");
        assert_eq!(header(&p, "x-amz-content-sha256"), EMPTY_SHA256);
        assert_eq!(header(&p, "x-amz-date"), "20130524T000000Z");
        assert_eq!(
            header(&p, "authorization"),
            s3_doc_expected(
                "host;range;x-amz-content-sha256;x-amz-date",
                "f0e8bdb87c964420e857bd35b5d6ed310bd44f0170aba48dd91039c6036bdb41"
            )
        );
    }

    /// PUT Object: a `$` in the key (encoded `%24`), a body, extra signed headers. The doc's
    /// request has no Content-MD5, so the body goes in without [`Call::body`].
    #[test]
    fn s3_doc_put_object() {
        let mut call = Call::new("PutObject", "PUT", Some("test$file.text"))
            .header("Date", "Fri, 24 May 2013 00:00:00 GMT")
            .header("x-amz-storage-class", "REDUCED_REDUNDANCY");
        call.body = b"Welcome to Amazon S3.".to_vec();
        let p = s3_doc_client().prepare(&call, s3_doc_time()).unwrap();
        assert_eq!(
            p.url,
            "https://examplebucket.s3.amazonaws.com/test%24file.text"
        );
        assert_eq!(
            header(&p, "x-amz-content-sha256"),
            "44ce7dd67c959e0d3524ffac1771dfbba87d2b6b4b4e99e42034a8b803f8b072"
        );
        assert_eq!(
            header(&p, "authorization"),
            s3_doc_expected(
                "date;host;x-amz-content-sha256;x-amz-date;x-amz-storage-class",
                "98ad721746da40c64f1a55b78f14c238d841ea1380cd77a1b5971af0ece108bd"
            )
        );
    }

    /// GET Bucket Lifecycle (a sub-resource without value) and GET Bucket (List Objects)
    /// (`?max-keys=2&prefix=J`).
    #[test]
    fn s3_doc_bucket_queries() {
        let call = Call::new("GetBucketLifecycle", "GET", None).query("lifecycle", "");
        let p = s3_doc_client().prepare(&call, s3_doc_time()).unwrap();
        assert_eq!(p.url, "https://examplebucket.s3.amazonaws.com/?lifecycle=");
        assert_eq!(
            header(&p, "authorization"),
            s3_doc_expected(
                "host;x-amz-content-sha256;x-amz-date",
                "fea454ca298b7da1c68078a5d1bdbfbbe0d65c699e0f91ac7a200a0136783543"
            )
        );
        let call = Call::new("ListObjects", "GET", None)
            .query("prefix", "J")
            .query("max-keys", "2");
        let p = s3_doc_client().prepare(&call, s3_doc_time()).unwrap();
        assert_eq!(
            p.url,
            "https://examplebucket.s3.amazonaws.com/?max-keys=2&prefix=J"
        );
        assert_eq!(
            header(&p, "authorization"),
            s3_doc_expected(
                "host;x-amz-content-sha256;x-amz-date",
                "34b48302e7b5fa45bde8084f4b7868a86f0a534bc59db6670ed5711ef69dc6f7"
            )
        );
    }

    #[test]
    fn path_style_addressing_and_utf8_keys() {
        let c = S3Control::new(
            "http://127.0.0.1:7480/",
            "",
            "evidence",
            "AKIATEST",
            "SECRETTEST",
            Some("token"),
            true,
        )
        .unwrap();
        assert_eq!(c.region(), DEFAULT_REGION);
        let call = Call::new("GetObjectRetention", "GET", Some("cam 1/ファイル+a.mp4"))
            .query("retention", "");
        let p = c.prepare(&call, s3_doc_time()).unwrap();
        assert_eq!(
            p.url,
            "http://127.0.0.1:7480/evidence/cam%201/%E3%83%95%E3%82%A1%E3%82%A4%E3%83%AB%2Ba.mp4?retention="
        );
        assert_eq!(header(&p, "host"), "127.0.0.1:7480");
        assert_eq!(header(&p, "x-amz-security-token"), "token");
        assert!(
            header(&p, "authorization").contains(
                "SignedHeaders=host;x-amz-content-sha256;x-amz-date;x-amz-security-token,"
            )
        );
        let bucket_level = c
            .prepare(&Call::new("HeadBucket", "HEAD", None), s3_doc_time())
            .unwrap();
        assert_eq!(bucket_level.url, "http://127.0.0.1:7480/evidence");
        // reqwest's URL parser keeps the encoded path exactly as signed.
        let parsed = reqwest::Url::parse(&p.url).unwrap();
        assert_eq!(parsed.as_str(), p.url);
    }

    #[test]
    fn bodies_carry_content_md5() {
        let call = Call::new("PutObjectLegalHold", "PUT", Some("k"))
            .query("legal-hold", "")
            .body(b"<LegalHold><Status>ON</Status></LegalHold>".to_vec());
        let p = s3_doc_client().prepare(&call, s3_doc_time()).unwrap();
        let md5 = Md5::digest(b"<LegalHold><Status>ON</Status></LegalHold>");
        assert_eq!(header(&p, "content-md5"), base64_encode(&md5));
        assert!(header(&p, "authorization").contains("SignedHeaders=content-md5;host;"));
    }

    #[test]
    fn unaddressable_keys_are_refused_before_sending() {
        let c = s3_doc_client();
        for key in ["", "a/../b", "./a", "a/.", "a\nb", &"k".repeat(1025)] {
            let call = Call::new("DeleteObject", "DELETE", Some(key));
            let e = c.prepare(&call, s3_doc_time()).unwrap_err();
            assert!(matches!(e, S3Error::InvalidArgument { .. }), "{key:?}: {e}");
            assert!(!e.is_retriable());
        }
        assert!(
            c.prepare(
                &Call::new("DeleteObject", "DELETE", Some("a/.../b..c/.d")),
                s3_doc_time()
            )
            .is_ok()
        );
    }

    #[test]
    fn config_is_checked_and_never_shows_credentials() {
        let new = |endpoint: &str, bucket: &str, path_style| {
            S3Control::new(
                endpoint,
                "us-east-1",
                bucket,
                "AKIASECRETID",
                "s3cr3t",
                Some("t0ken"),
                path_style,
            )
        };
        for (endpoint, bucket, path_style) in [
            ("not a url", "bucket", true),
            ("ftp://host/", "bucket", true),
            ("http://user:pw@host/", "bucket", true),
            ("http://host/?x=1", "bucket", true),
            ("http://host/", "Bucket_Upper", true),
            ("http://host/", "ab", true),
            ("http://127.0.0.1:7480", "bucket", false),
        ] {
            let e = new(endpoint, bucket, path_style).unwrap_err();
            assert!(
                matches!(e, S3Error::Config { .. }),
                "{endpoint} {bucket}: {e}"
            );
            let shown = format!("{e} {e:?}");
            assert!(
                !shown.contains("pw") && !shown.contains("s3cr3t"),
                "{shown}"
            );
        }
        let c = new("https://s3.example", "bucket", false).unwrap();
        let shown = format!("{c:?}");
        assert!(
            !shown.contains("s3cr3t")
                && !shown.contains("t0ken")
                && !shown.contains("AKIASECRETID"),
            "{shown}"
        );
        assert_eq!(
            c.scrub("key AKIASECRETID secret s3cr3t token t0ken"),
            "key [redacted] secret [redacted] token [redacted]"
        );
    }

    #[test]
    fn retriable_or_not() {
        let service = |status, code: Option<&str>| S3Error::Service {
            op: "PutObject",
            bucket: "b".into(),
            key: Some("k".into()),
            status,
            code: code.map(Box::from),
            message: "m".into(),
            request_id: None,
        };
        assert!(service(500, Some("InternalError")).is_retriable());
        assert!(service(503, Some("SlowDown")).is_retriable());
        assert!(service(503, None).is_retriable());
        assert!(!service(403, Some("AccessDenied")).is_retriable());
        assert!(!service(404, Some("NoSuchBucket")).is_retriable());
        assert_eq!(
            service(403, Some("AccessDenied")).code(),
            Some("AccessDenied")
        );
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
    }

    #[test]
    fn xml_scanning() {
        let xml = "<?xml version=\"1.0\"?><ListVersionsResult xmlns=\"x\"><IsTruncated>false\
                   </IsTruncated><Version><Key>a &amp; b&#x20;&#233;</Key><VersionId>v1\
                   </VersionId></Version><DeleteMarker><Key>c</Key><VersionId>v2</VersionId>\
                   </DeleteMarker><Version><Key>d</Key><VersionId>v3</VersionId><IsLatest/>\
                   </Version></ListVersionsResult>";
        let found = find_elements(xml, &["Version", "DeleteMarker"]);
        let names: Vec<_> = found.iter().map(|(n, _)| *n).collect();
        assert_eq!(names, ["Version", "DeleteMarker", "Version"]);
        assert_eq!(first_text(found[0].1, "Key").unwrap(), "a & b é");
        assert_eq!(first_text(found[0].1, "VersionId").unwrap(), "v1");
        assert_eq!(first_text(found[2].1, "IsLatest").unwrap(), "");
        assert_eq!(xml_unescape("x &bogus; &lt;&#60;"), "x &bogus; <<");
        assert_eq!(first_text(xml, "Missing"), None);
    }
}
