//! Signed S3 requests for what `object_store` has no call for: a bucket created with Object
//! Lock, its default retention, the retention and legal hold of one object, the versions of a
//! bucket and deleting one version.
//!
//! The requests are ours; signing and credentials are object_store's. Each request is signed
//! with AWS Signature Version 4 by [`AwsAuthorizer`] (payload hash in `x-amz-content-sha256`,
//! the session token in `x-amz-security-token`) with a credential from an
//! [`AwsCredentialProvider`]: static keys ([`S3Control::new`]) or whatever object_store's chain
//! finds (the environment, a web identity, ECS, the instance metadata service:
//! [`S3Control::with_credentials`] with [`object_store::aws::AmazonS3::credentials`]), fetched
//! anew for each request so that temporary credentials are renewed. Requests go out through
//! object_store's HTTP client. Both path-style (`http://host/bucket/key`, what Ceph RGW and
//! MinIO want) and virtual-hosted (`https://bucket.host/key`) addressing are supported.
//!
//! The requests that carry a body (`PutObjectLockConfiguration`, `PutObjectRetention`,
//! `PutObjectLegalHold`, `PutObject`) also carry `Content-MD5`, which S3 requires for the first
//! three. Answers are read up to [`MAX_ANSWER_BYTES`] and parsed as typed XML ([`xml`]).
//!
//! Nothing here retries: every error says whether retrying later may help
//! ([`S3Error::is_retriable`]) and the caller decides. No error and no log line carries the
//! access key, the secret key or the session token.

use bytes::Bytes;
use futures::StreamExt as _;
use md5::{Digest as _, Md5};
use object_store::aws::{AwsAuthorizer, AwsCredential, AwsCredentialProvider};
use object_store::client::{
    HttpClient, HttpConnector as _, HttpRequest, HttpRequestBody, HttpResponseBody,
    ReqwestConnector,
};
use object_store::{ClientOptions, StaticCredentialProvider};
use std::fmt;
use std::sync::Arc;
use std::time::{Duration, Instant};

mod address;
mod calls;
mod error;
mod xml;

pub use error::S3Error;
pub(crate) use xml::ErrorBody;

/// The region used when none is given; what Ceph RGW and MinIO accept by default.
pub const DEFAULT_REGION: &str = "us-east-1";

/// The SigV4 service name of S3.
const SERVICE: &str = "s3";
const CONNECT_TIMEOUT: Duration = Duration::from_secs(10);
const REQUEST_TIMEOUT: Duration = Duration::from_secs(120);
/// The most of an answer that is read: a page of 1000 versions with 1024-byte keys is some
/// 2 MB; anything larger is refused unread, so a hostile or broken service cannot fill memory.
pub(crate) const MAX_ANSWER_BYTES: usize = 8 << 20;
/// Longest piece of a non-XML error body quoted in an error.
const MAX_QUOTED_BODY: usize = 200;

/// An Object Lock retention mode.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "UPPERCASE")]
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
    credentials: AwsCredentialProvider,
    path_style: bool,
    http: HttpClient,
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

/// A 2xx answer, read whole (at most [`MAX_ANSWER_BYTES`]).
struct Reply {
    headers: http::HeaderMap,
    body: Vec<u8>,
}

/// One request to make.
struct Call<'a> {
    op: &'static str,
    method: http::Method,
    key: Option<&'a str>,
    query: Vec<(&'a str, String)>,
    headers: Vec<(&'static str, String)>,
    body: Bytes,
}

impl<'a> Call<'a> {
    fn new(op: &'static str, method: http::Method, key: Option<&'a str>) -> Self {
        Call {
            op,
            method,
            key,
            query: Vec::new(),
            headers: Vec::new(),
            body: Bytes::new(),
        }
    }

    fn query(mut self, name: &'a str, value: impl Into<String>) -> Self {
        self.query.push((name, value.into()));
        self
    }

    fn header(mut self, name: &'static str, value: impl Into<String>) -> Self {
        self.headers.push((name, value.into()));
        self
    }

    /// The body, with its `Content-MD5`.
    fn body(mut self, body: impl Into<Bytes>) -> Self {
        use base64::Engine as _;
        let body = body.into();
        let md5 = base64::engine::general_purpose::STANDARD.encode(Md5::digest(&body));
        self.headers.push(("content-md5", md5));
        self.body = body;
        self
    }

    /// The XML body `xml` made (which cannot fail for our types; if it did, nothing is sent).
    fn xml_body(self, control: &S3Control, xml: Result<Vec<u8>, String>) -> Result<Self, S3Error> {
        match xml {
            Ok(body) => Ok(self.body(body)),
            Err(reason) => Err(control.invalid(self.op, self.key, &reason)),
        }
    }
}

/// What object_store's signer needs of a credential, checked before it is used: the signer
/// puts the key id and the token into headers, and would panic on a value a header cannot hold.
fn check_credential(c: &AwsCredential) -> Result<(), &'static str> {
    if c.key_id.is_empty() || !c.key_id.bytes().all(|b| b.is_ascii_graphic() && b != b'/') {
        return Err("the access key must be non-empty printable ASCII without '/'");
    }
    if c.secret_key.is_empty() {
        return Err("the secret key is empty");
    }
    if let Some(token) = &c.token
        && (token.is_empty() || !token.bytes().all(|b| b.is_ascii_graphic()))
    {
        return Err("the session token must be non-empty printable ASCII");
    }
    Ok(())
}

impl S3Control {
    /// A client for `bucket` at `endpoint` (`http[s]://host[:port][/path]`) with static
    /// credentials. `region` empty means [`DEFAULT_REGION`]. `path_style`: address the bucket
    /// in the path (Ceph RGW, MinIO) rather than in the host name.
    pub fn new(
        endpoint: &str,
        region: &str,
        bucket: &str,
        access_key: &str,
        secret_key: &str,
        session_token: Option<&str>,
        path_style: bool,
    ) -> Result<Self, S3Error> {
        let credential = AwsCredential {
            key_id: access_key.to_string(),
            secret_key: secret_key.to_string(),
            token: session_token.map(str::to_string),
        };
        check_credential(&credential).map_err(|reason| S3Error::Config {
            bucket: bucket.to_string(),
            reason: reason.to_string(),
        })?;
        let provider = Arc::new(StaticCredentialProvider::new(credential));
        Self::with_credentials(endpoint, region, bucket, provider, path_style)
    }

    /// A client whose credentials come from `credentials` for each request: typically
    /// [`object_store::aws::AmazonS3::credentials`] of the store for the same bucket, which
    /// follows object_store's chain (static keys, `AWS_*`, web identity, ECS, instance
    /// metadata).
    pub fn with_credentials(
        endpoint: &str,
        region: &str,
        bucket: &str,
        credentials: AwsCredentialProvider,
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
        address::check_bucket_name(bucket).map_err(|r| config(&r))?;
        if !path_style && host.parse::<std::net::IpAddr>().is_ok() {
            return Err(config(
                "virtual-hosted addressing needs a host name, not an IP address (use path style)",
            ));
        }
        let options = ClientOptions::new()
            .with_allow_http(url.scheme() == "http")
            .with_connect_timeout(CONNECT_TIMEOUT)
            .with_timeout(REQUEST_TIMEOUT);
        let http = ReqwestConnector::default()
            .connect(&options)
            .map_err(|e| config(&format!("HTTP client: {e}")))?;
        Ok(S3Control {
            scheme: url.scheme().to_string(),
            endpoint_host,
            base_path,
            region: region.to_string(),
            bucket: bucket.to_string(),
            credentials,
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
}

impl S3Control {
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

    /// The answer of a call, deserialised as the element `root`.
    async fn fetch<T: serde::de::DeserializeOwned>(
        &self,
        call: Call<'_>,
        root: &str,
    ) -> Result<T, S3Error> {
        let (op, key) = (call.op, call.key);
        let reply = self.send(call).await?;
        xml::parse(&reply.body, root).map_err(|reason| self.unexpected(op, key, &reason))
    }

    /// Sign and send; a 2xx reply, or the error.
    async fn send(&self, call: Call<'_>) -> Result<Reply, S3Error> {
        let op = call.op;
        let key = call.key;
        let no_credentials = |reason: String| S3Error::Credentials {
            op,
            bucket: self.bucket.clone(),
            reason,
        };
        let credential = self
            .credentials
            .get_credential()
            .await
            .map_err(|e| no_credentials(error_chain(&e)))?;
        // A credential the provider gave but that cannot be used (an empty secret in the unit
        // file) is a configuration fault: asking again gives the same, so it is not retriable.
        check_credential(&credential).map_err(|r| S3Error::Config {
            bucket: self.bucket.clone(),
            reason: format!("S3 {op}: the credentials found cannot sign: {r}"),
        })?;
        let scrub = |text: &str| scrub(text, &credential);
        let request = self.prepare(call, &credential)?;
        let transport = |reason: String| S3Error::Transport {
            op,
            bucket: self.bucket.clone(),
            key: key.map(str::to_string),
            reason: scrub(&reason),
        };
        let started = Instant::now();
        let response = self
            .http
            .execute(request)
            .await
            .map_err(|e| transport(error_chain(&e)))?;
        let (parts, body) = response.into_parts();
        let status = parts.status;
        let body = read_capped(&parts.headers, body, MAX_ANSWER_BYTES)
            .await
            .map_err(|e| transport(error_chain(&e)))?;
        tracing::debug!(
            op,
            bucket = %self.bucket,
            key = key.unwrap_or(""),
            status = status.as_u16(),
            ms = started.elapsed().as_millis() as u64,
            "s3 request"
        );
        if status.is_success() {
            let Some(body) = body else {
                return Err(self.unexpected(
                    op,
                    key,
                    &format!("an answer larger than {MAX_ANSWER_BYTES} bytes, not read"),
                ));
            };
            return Ok(Reply {
                headers: parts.headers,
                body,
            });
        }
        let error = body.as_deref().and_then(ErrorBody::parse);
        let reason = || {
            status
                .canonical_reason()
                .unwrap_or("no message")
                .to_string()
        };
        let message = match (&error, &body) {
            (
                Some(ErrorBody {
                    message: Some(m), ..
                }),
                _,
            ) if !m.trim().is_empty() => m.trim().to_string(),
            // An S3 error without a message (Ceph RGW sends many): the status says enough.
            (Some(_), _) => reason(),
            (None, Some(body)) if body.is_empty() => reason(),
            (None, Some(body)) => quote_body(body),
            (None, None) => format!(
                "{}; an error body larger than {MAX_ANSWER_BYTES} bytes",
                reason()
            ),
        };
        let error = error.unwrap_or_default();
        Err(S3Error::Service {
            op,
            bucket: self.bucket.clone(),
            key: key.map(Box::from),
            status: status.as_u16(),
            code: error
                .code
                .filter(|c| !c.is_empty())
                .map(|c| scrub(&c).into()),
            message: scrub(&message),
            request_id: error.request_id.map(|r| scrub(&r).into()),
        })
    }

    /// The request for `call`, signed with `credential`.
    fn prepare(&self, call: Call<'_>, credential: &AwsCredential) -> Result<HttpRequest, S3Error> {
        if let Some(key) = call.key {
            address::check_key(key).map_err(|r| self.invalid(call.op, Some(key), &r))?;
        }
        let host = if self.path_style {
            self.endpoint_host.clone()
        } else {
            format!("{}.{}", self.bucket, self.endpoint_host)
        };
        let mut path = self.base_path.clone();
        if self.path_style {
            path.push('/');
            path.push_str(&address::uri_encode(&self.bucket, true));
        }
        match call.key {
            Some(key) => {
                path.push('/');
                path.push_str(&address::uri_encode(key, false));
            }
            None if path.is_empty() => path.push('/'),
            None => {}
        }
        let query = address::query_string(&call.query);
        let url = if query.is_empty() {
            format!("{}://{host}{path}", self.scheme)
        } else {
            format!("{}://{host}{path}?{query}", self.scheme)
        };
        let mut request = http::Request::builder().method(call.method).uri(&url);
        for (name, value) in &call.headers {
            request = request.header(*name, value.as_str());
        }
        let mut request = request
            .body(HttpRequestBody::from(call.body))
            .map_err(|e| self.invalid(call.op, call.key, &format!("request: {e}")))?;
        AwsAuthorizer::new(credential, SERVICE, &self.region)
            .try_authorize(&mut request, None)
            .map_err(|e| self.invalid(call.op, call.key, &format!("signing: {e}")))?;
        Ok(request)
    }
}

/// Replace any credential in text that came from elsewhere (a server's error message).
fn scrub(text: &str, credential: &AwsCredential) -> String {
    let mut out = text.to_string();
    let secrets = [
        Some(credential.secret_key.as_str()),
        credential.token.as_deref(),
        Some(credential.key_id.as_str()),
    ];
    for secret in secrets.into_iter().flatten() {
        if !secret.is_empty() && out.contains(secret) {
            out = out.replace(secret, "[redacted]");
        }
    }
    out
}

/// The body, `None` if it is (or says it is) larger than `limit`: then it is left unread.
async fn read_capped(
    headers: &http::HeaderMap,
    body: HttpResponseBody,
    limit: usize,
) -> Result<Option<Vec<u8>>, object_store::client::HttpError> {
    let declared = headers
        .get(http::header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<u64>().ok());
    if declared.is_some_and(|n| n > limit as u64) {
        return Ok(None);
    }
    let mut stream = body.bytes_stream();
    let mut out = Vec::new();
    while let Some(chunk) = stream.next().await {
        let chunk = chunk?;
        if out.len() + chunk.len() > limit {
            return Ok(None);
        }
        out.extend_from_slice(&chunk);
    }
    Ok(Some(out))
}

/// An error and its causes, `: `-joined (the HTTP client hides the interesting part in the
/// sources).
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
fn quote_body(body: &[u8]) -> String {
    let text = String::from_utf8_lossy(body);
    let line: String = text
        .chars()
        .map(|c| if c.is_control() { ' ' } else { c })
        .take(MAX_QUOTED_BODY)
        .collect();
    format!("non-S3 error body: {:?}", line.trim())
}

#[cfg(test)]
mod tests;
