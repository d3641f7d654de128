//! The S3 operations: each builds its request, sends it ([`S3Control::send`]) and reads the
//! typed answer ([`super::xml`]).

use super::xml::{self, ListVersionsResult};
use super::{Call, DEFAULT_REGION, LockMode, S3Control, S3Error};
use chrono::{DateTime, SecondsFormat, Utc};
use http::Method;

impl S3Control {
    /// Whether the bucket exists (HEAD bucket: 200 yes, 404 no). 403 is an error: the bucket
    /// may exist and belong to someone else.
    pub async fn bucket_exists(&self) -> Result<bool, S3Error> {
        match self.send(Call::new("HeadBucket", Method::HEAD, None)).await {
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
        let mut call = Call::new("CreateBucket", Method::PUT, None);
        if object_lock {
            call = call.header("x-amz-bucket-object-lock-enabled", "true");
        }
        if self.region != DEFAULT_REGION {
            // No Content-MD5: CreateBucket does not ask for one.
            call.body = xml::create_bucket_configuration(&self.region)
                .map_err(|r| self.invalid("CreateBucket", None, &r))?
                .into();
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
        Ok(self.lock_configuration().await?.is_some())
    }

    /// The bucket's Object Lock configuration when Object Lock is enabled, `None` when not.
    async fn lock_configuration(&self) -> Result<Option<xml::ObjectLockConfiguration>, S3Error> {
        const OP: &str = "GetObjectLockConfiguration";
        let call = Call::new(OP, Method::GET, None).query("object-lock", "");
        match self
            .fetch::<xml::ObjectLockConfiguration>(call, "ObjectLockConfiguration")
            .await
        {
            Ok(c) if c.enabled.as_deref() == Some("Enabled") => Ok(Some(c)),
            Ok(_) => Ok(None),
            Err(e) if e.is_no_lock_configuration() => Ok(None),
            Err(e) => Err(e),
        }
    }

    /// Whether versioning is enabled (not merely suspended, nor never set).
    pub async fn versioning_enabled(&self) -> Result<bool, S3Error> {
        let call = Call::new("GetBucketVersioning", Method::GET, None).query("versioning", "");
        let v: xml::VersioningConfiguration = self.fetch(call, "VersioningConfiguration").await?;
        Ok(v.status.as_deref() == Some("Enabled"))
    }

    /// The bucket's default retention: `None` when Object Lock is not enabled on the bucket or
    /// it has no default rule. A rule given in years is reported as 365 days a year (never more
    /// than the real period).
    pub async fn object_lock_configuration(&self) -> Result<Option<(LockMode, u32)>, S3Error> {
        let Some(config) = self.lock_configuration().await? else {
            return Ok(None);
        };
        let Some(rule) = config.rule.and_then(|r| r.default_retention) else {
            return Ok(None);
        };
        let days = match (rule.days, rule.years) {
            (Some(d), _) => d,
            (None, Some(y)) => y.saturating_mul(365),
            (None, None) => {
                return Err(self.unexpected(
                    "GetObjectLockConfiguration",
                    None,
                    "DefaultRetention without Days or Years",
                ));
            }
        };
        Ok(Some((rule.mode, days)))
    }

    /// Set the bucket's default retention (PutObjectLockConfiguration): every new object
    /// version is locked in `mode` for `days` days. Object Lock must have been enabled at
    /// creation.
    pub async fn put_default_retention(&self, mode: LockMode, days: u32) -> Result<(), S3Error> {
        const OP: &str = "PutObjectLockConfiguration";
        if days == 0 {
            return Err(self.invalid(OP, None, "the default retention must be at least 1 day"));
        }
        let call = Call::new(OP, Method::PUT, None)
            .query("object-lock", "")
            .xml_body(self, xml::object_lock_configuration(mode, days))?;
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
        let until = until.to_rfc3339_opts(SecondsFormat::Millis, true);
        let mut call = Call::new("PutObjectRetention", Method::PUT, Some(key))
            .query("retention", "")
            .xml_body(self, xml::retention(mode, until))?;
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
        let call = Call::new(OP, Method::GET, Some(key)).query("retention", "");
        let retention: xml::Retention = match self.fetch(call, "Retention").await {
            Ok(r) => r,
            Err(e) if e.is_no_lock_configuration() => return Ok(None),
            Err(e) => return Err(e),
        };
        let (Some(mode), Some(until)) = (
            retention.mode.filter(|m| !m.is_empty()),
            retention.retain_until.filter(|u| !u.is_empty()),
        ) else {
            return Ok(None);
        };
        let mode = LockMode::parse(&mode)
            .ok_or_else(|| self.unexpected(OP, Some(key), &format!("unknown mode {mode:?}")))?;
        let until = DateTime::parse_from_rfc3339(&until)
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
        let call = Call::new("PutObjectLegalHold", Method::PUT, Some(key))
            .query("legal-hold", "")
            .xml_body(self, xml::legal_hold(on))?;
        self.send(call).await.map(drop)
    }

    /// Whether the current version of `key` is under legal hold (never set counts as off).
    pub async fn legal_hold(&self, key: &str) -> Result<bool, S3Error> {
        const OP: &str = "GetObjectLegalHold";
        let call = Call::new(OP, Method::GET, Some(key)).query("legal-hold", "");
        let hold: xml::LegalHold = match self.fetch(call, "LegalHold").await {
            Ok(h) => h,
            Err(e) if e.is_no_lock_configuration() => return Ok(false),
            Err(e) => return Err(e),
        };
        match hold.status.as_deref() {
            Some("ON") => Ok(true),
            Some("OFF") => Ok(false),
            _ => Err(self.unexpected(OP, Some(key), "LegalHold without Status ON or OFF")),
        }
    }

    /// Store `body` under `key` (a plain signed PutObject, with Content-MD5); the new version's
    /// id when the bucket is versioned.
    pub async fn put_object(&self, key: &str, body: &[u8]) -> Result<Option<String>, S3Error> {
        let call = Call::new("PutObject", Method::PUT, Some(key))
            .body(bytes::Bytes::copy_from_slice(body));
        let reply = self.send(call).await?;
        Ok(reply
            .headers
            .get("x-amz-version-id")
            .and_then(|v| v.to_str().ok())
            .filter(|v| !v.is_empty())
            .map(str::to_string))
    }

    /// Delete `key` (without `version_id`: a delete marker in a versioned bucket) or one version
    /// of it. A locked version is refused (`AccessDenied`).
    pub async fn delete_object(&self, key: &str, version_id: Option<&str>) -> Result<(), S3Error> {
        let mut call = Call::new("DeleteObject", Method::DELETE, Some(key));
        if let Some(v) = version_id {
            call = call.query("versionId", v);
        }
        self.send(call).await.map(drop)
    }

    /// Every version under `prefix`, as `(key, version id)`, delete markers included, all
    /// pages. Within a page the versions come first, then the delete markers.
    pub async fn list_object_versions(
        &self,
        prefix: &str,
    ) -> Result<Vec<(String, String)>, S3Error> {
        const OP: &str = "ListObjectVersions";
        let mut out = Vec::new();
        let mut markers: Option<(String, String)> = None;
        loop {
            let mut call = Call::new(OP, Method::GET, None)
                .query("versions", "")
                .query("max-keys", "1000")
                .query("prefix", prefix);
            if let Some((key, version)) = &markers {
                call = call.query("key-marker", key.clone());
                if !version.is_empty() {
                    call = call.query("version-id-marker", version.clone());
                }
            }
            let page: ListVersionsResult = self.fetch(call, "ListVersionsResult").await?;
            let entries = page.versions.into_iter().chain(page.delete_markers);
            out.extend(entries.map(|v| (v.key, v.version_id)));
            if !page.is_truncated {
                return Ok(out);
            }
            let next = (
                page.next_key_marker.unwrap_or_default(),
                page.next_version_id_marker.unwrap_or_default(),
            );
            if next.0.is_empty() || markers.as_ref() == Some(&next) {
                return Err(self.unexpected(OP, None, "a truncated listing without a new marker"));
            }
            markers = Some(next);
        }
    }
}
