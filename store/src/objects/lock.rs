//! S3 Object Lock beside object_store: legal holds on stored objects, and the control client
//! that signs those calls with the store's own configuration and credentials.

use super::*;

impl EvidenceStore {
    /// Put an object under legal hold (or release it): it cannot be deleted while held, whatever
    /// its retention. Returns whether the store enforces it (S3 Object Lock); other backends
    /// cannot, and say so by returning `false`.
    pub async fn set_legal_hold(&self, key: &str, on: bool) -> Result<bool, StoreError> {
        let Some(c) = &self.control else {
            return Ok(false);
        };
        let full = self.full_key(key);
        match c.put_legal_hold(&full, on).await {
            Ok(()) => Ok(true),
            Err(e) if e.is_retriable() => Err(StoreError::Retriable {
                url: self.url.clone(),
                op: "PUT legal hold",
                key: full,
                reason: e.to_string(),
            }),
            // A bucket without Object Lock cannot hold: not enforced, not an error.
            Err(e)
                if e.code() == Some("InvalidRequest")
                    || e.code() == Some("ObjectLockConfigurationNotFoundError") =>
            {
                Ok(false)
            }
            Err(e) => Err(StoreError::Permanent {
                url: self.url.clone(),
                op: "PUT legal hold",
                key: full,
                reason: e.to_string(),
            }),
        }
    }

    /// Whether an object is under legal hold (`None`: the backend has no legal hold).
    pub async fn legal_hold(&self, key: &str) -> Result<Option<bool>, StoreError> {
        let Some(c) = &self.control else {
            return Ok(None);
        };
        let full = self.full_key(key);
        c.legal_hold(&full)
            .await
            .map(Some)
            .map_err(|e| StoreError::Retriable {
                url: self.url.clone(),
                op: "GET legal hold",
                key: full,
                reason: e.to_string(),
            })
    }
}

/// object_store's S3 store for `bucket` and the control client for its Object Lock calls, with
/// the same configuration: `AWS_*` from the environment, the settings over them. The control
/// client signs with the store's own credential provider (object_store's chain: static keys,
/// `AWS_*`, web identity, ECS, instance metadata), so both always use the same credentials.
pub(super) fn s3_clients(
    s: &StoreSettings,
    bucket: &str,
) -> Result<(AmazonS3, Result<S3Control, S3Error>), object_store::Error> {
    let retry = object_store::RetryConfig {
        max_retries: s.max_retries,
        ..Default::default()
    };
    let mut b = AmazonS3Builder::from_env()
        .with_bucket_name(bucket)
        .with_retry(retry)
        .with_allow_http(s.allow_http)
        .with_virtual_hosted_style_request(!s.path_style);
    if let Some(e) = &s.endpoint {
        b = b.with_endpoint(e);
    }
    if let Some(r) = &s.region {
        b = b.with_region(r);
    }
    if let Some(k) = &s.access_key_id {
        b = b.with_access_key_id(k);
    }
    if let Some(k) = &s.secret_access_key {
        b = b.with_secret_access_key(k);
    }
    if let Some(t) = &s.session_token {
        b = b.with_token(t);
    }
    // Where object_store sends its requests: the region's AWS endpoint unless one is set,
    // `AWS_ENDPOINT_URL_S3` before the general one (as its build does).
    let region = b
        .get_config_value(&AmazonS3ConfigKey::Region)
        .unwrap_or_else(|| crate::s3control::DEFAULT_REGION.to_string());
    let endpoint = b
        .get_config_value(&AmazonS3ConfigKey::S3Endpoint)
        .or_else(|| b.get_config_value(&AmazonS3ConfigKey::Endpoint))
        .unwrap_or_else(|| format!("https://s3.{region}.amazonaws.com"));
    let s3 = b.build()?;
    let control = S3Control::with_credentials(
        &endpoint,
        &region,
        bucket,
        s3.credentials().clone(),
        s.path_style,
    );
    Ok((s3, control))
}

/// Signed S3 requests for what object_store cannot do (Object Lock, retention, legal hold), for
/// an `s3://` store; `None` for other backends. Credentials as the store finds them
/// ([`s3_clients`]); none found is an error of the first request
/// ([`crate::s3control::S3Error::Credentials`]), not of this call.
pub fn s3_control(s: &StoreSettings) -> Result<Option<S3Control>, StoreError> {
    let url = display_url(&s.url);
    let cfg = |reason: String| StoreError::Config {
        url: url.clone(),
        reason,
    };
    let parsed = reqwest::Url::parse(&s.url).map_err(|e| cfg(e.to_string()))?;
    if !matches!(parsed.scheme(), "s3" | "s3a") {
        return Ok(None);
    }
    let bucket = parsed
        .host_str()
        .ok_or_else(|| cfg("s3:// URLs name a bucket: s3://bucket/prefix".into()))?;
    let (_, control) = s3_clients(s, bucket).map_err(|e| cfg(e.to_string()))?;
    control.map(Some).map_err(|e| cfg(e.to_string()))
}
