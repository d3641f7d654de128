//! S3's XML, through quick-xml's serde support: the answers we read, as typed structs, and the
//! bodies we send.
//!
//! An answer is checked for its root element first (quick-xml's deserializer takes any root),
//! then deserialised; whatever fails (not UTF-8, not XML, another element, a missing or
//! malformed field) is a reason string the client turns into [`super::S3Error::Response`].
//! Nothing here panics on input. Memory is bounded by the client's cap on the answer's size
//! and, for the interleaved lists of a version listing, by [`EVENT_BUFFER`]. quick-xml resolves
//! only the predefined entities and character references (no DTD entities: no expansion), and
//! skips unknown elements without recursion, so nesting depth costs no stack.
//!
//! quick-xml trims leading and trailing whitespace of text, as object_store's own listing does:
//! a key that begins or ends with whitespace is listed without it.

use super::LockMode;
use quick_xml::events::Event;
use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};
use std::num::NonZeroUsize;

/// The namespace of S3's elements.
const XMLNS: &str = "http://s3.amazonaws.com/doc/2006-03-01/";

/// Events quick-xml may hold back while it gathers the `Version` and `DeleteMarker` elements of
/// a listing, which S3 interleaves ("overlapped lists"): a full page of 1000 entries needs some
/// tens of thousands (test); past this the answer is refused rather than buffered.
const EVENT_BUFFER: usize = 200_000;

/// Deserialise `body` as the element `root`.
pub(super) fn parse<T: DeserializeOwned>(body: &[u8], root: &str) -> Result<T, String> {
    let xml = std::str::from_utf8(body).map_err(|_| "the answer is not UTF-8".to_string())?;
    match root_element(xml)? {
        Some(found) if found == root => {}
        Some(found) => return Err(format!("a <{}>, not a <{root}>", clip(&found))),
        None => return Err(format!("no <{root}> (no element at all)")),
    }
    let mut de = quick_xml::de::Deserializer::from_str(xml);
    de.event_buffer_size(NonZeroUsize::new(EVENT_BUFFER));
    T::deserialize(&mut de).map_err(|e| format!("not a valid <{root}>: {}", clip(&e.to_string())))
}

/// The local name of the first element, `None` if there is none.
fn root_element(xml: &str) -> Result<Option<String>, String> {
    let mut reader = quick_xml::Reader::from_str(xml);
    loop {
        match reader.read_event() {
            Ok(Event::Start(e) | Event::Empty(e)) => {
                return Ok(Some(
                    String::from_utf8_lossy(e.local_name().as_ref()).into_owned(),
                ));
            }
            Ok(Event::Eof) => return Ok(None),
            Ok(_) => {}
            Err(e) => return Err(format!("not XML: {}", clip(&e.to_string()))),
        }
    }
}

/// At most 200 characters of a message that may quote the answer.
fn clip(s: &str) -> String {
    let mut out: String = s
        .chars()
        .map(|c| if c.is_control() { ' ' } else { c })
        .take(200)
        .collect();
    if s.chars().count() > 200 {
        out.push('…');
    }
    out
}

// The answers. Only what the client reads; anything else in them is skipped.

/// GetBucketVersioning. `Status` is absent when versioning was never set.
#[derive(Debug, Deserialize)]
pub(super) struct VersioningConfiguration {
    #[serde(rename = "Status")]
    pub status: Option<String>,
}

/// GetObjectLockConfiguration.
#[derive(Debug, Deserialize)]
pub(super) struct ObjectLockConfiguration {
    #[serde(rename = "ObjectLockEnabled")]
    pub enabled: Option<String>,
    #[serde(rename = "Rule")]
    pub rule: Option<LockRule>,
}

#[derive(Debug, Deserialize)]
pub(super) struct LockRule {
    #[serde(rename = "DefaultRetention")]
    pub default_retention: Option<DefaultRetention>,
}

/// A default rule; S3 allows `Days` or `Years`, not both.
#[derive(Debug, Deserialize, Serialize)]
pub(super) struct DefaultRetention {
    #[serde(rename = "Mode")]
    pub mode: LockMode,
    #[serde(rename = "Days", skip_serializing_if = "Option::is_none")]
    pub days: Option<u32>,
    #[serde(rename = "Years", skip_serializing_if = "Option::is_none")]
    pub years: Option<u32>,
}

/// GetObjectRetention: both fields absent (or empty, as RGW may send) for no retention.
#[derive(Debug, Deserialize)]
pub(super) struct Retention {
    #[serde(rename = "Mode")]
    pub mode: Option<String>,
    #[serde(rename = "RetainUntilDate")]
    pub retain_until: Option<String>,
}

/// GetObjectLegalHold.
#[derive(Debug, Deserialize)]
pub(super) struct LegalHold {
    #[serde(rename = "Status")]
    pub status: Option<String>,
}

/// A page of ListObjectVersions.
#[derive(Debug, Deserialize)]
pub(super) struct ListVersionsResult {
    #[serde(rename = "IsTruncated", default)]
    pub is_truncated: bool,
    #[serde(rename = "NextKeyMarker")]
    pub next_key_marker: Option<String>,
    #[serde(rename = "NextVersionIdMarker")]
    pub next_version_id_marker: Option<String>,
    #[serde(rename = "Version", default)]
    pub versions: Vec<ListedVersion>,
    #[serde(rename = "DeleteMarker", default)]
    pub delete_markers: Vec<ListedVersion>,
}

/// A `Version` or a `DeleteMarker` of a listing.
#[derive(Debug, Deserialize)]
pub(super) struct ListedVersion {
    #[serde(rename = "Key")]
    pub key: String,
    #[serde(rename = "VersionId")]
    pub version_id: String,
}

/// S3's error body.
#[derive(Debug, Default, Deserialize)]
pub(crate) struct ErrorBody {
    #[serde(rename = "Code")]
    pub code: Option<String>,
    #[serde(rename = "Message")]
    pub message: Option<String>,
    #[serde(rename = "RequestId")]
    pub request_id: Option<String>,
}

impl ErrorBody {
    /// The error in `body`, `None` if it is not an S3 `<Error>`.
    pub(crate) fn parse(body: &[u8]) -> Option<ErrorBody> {
        parse(body, "Error").ok()
    }
}

// The bodies we send.

#[derive(Serialize)]
#[serde(rename = "CreateBucketConfiguration")]
struct CreateBucketConfiguration<'a> {
    #[serde(rename = "@xmlns")]
    xmlns: &'static str,
    #[serde(rename = "LocationConstraint")]
    location: &'a str,
}

#[derive(Serialize)]
#[serde(rename = "ObjectLockConfiguration")]
struct ObjectLockConfigurationBody {
    #[serde(rename = "@xmlns")]
    xmlns: &'static str,
    #[serde(rename = "ObjectLockEnabled")]
    enabled: &'static str,
    #[serde(rename = "Rule")]
    rule: RuleBody,
}

#[derive(Serialize)]
struct RuleBody {
    #[serde(rename = "DefaultRetention")]
    default_retention: DefaultRetention,
}

#[derive(Serialize)]
#[serde(rename = "Retention")]
struct RetentionBody {
    #[serde(rename = "@xmlns")]
    xmlns: &'static str,
    #[serde(rename = "Mode")]
    mode: LockMode,
    #[serde(rename = "RetainUntilDate")]
    retain_until: String,
}

#[derive(Serialize)]
#[serde(rename = "LegalHold")]
struct LegalHoldBody {
    #[serde(rename = "@xmlns")]
    xmlns: &'static str,
    #[serde(rename = "Status")]
    status: &'static str,
}

fn to_xml(value: &impl Serialize) -> Result<Vec<u8>, String> {
    quick_xml::se::to_string(value)
        .map(String::into_bytes)
        .map_err(|e| format!("XML body: {e}"))
}

pub(super) fn create_bucket_configuration(region: &str) -> Result<Vec<u8>, String> {
    to_xml(&CreateBucketConfiguration {
        xmlns: XMLNS,
        location: region,
    })
}

pub(super) fn object_lock_configuration(mode: LockMode, days: u32) -> Result<Vec<u8>, String> {
    to_xml(&ObjectLockConfigurationBody {
        xmlns: XMLNS,
        enabled: "Enabled",
        rule: RuleBody {
            default_retention: DefaultRetention {
                mode,
                days: Some(days),
                years: None,
            },
        },
    })
}

/// `retain_until` as S3 wants it: RFC 3339, UTC.
pub(super) fn retention(mode: LockMode, retain_until: String) -> Result<Vec<u8>, String> {
    to_xml(&RetentionBody {
        xmlns: XMLNS,
        mode,
        retain_until,
    })
}

pub(super) fn legal_hold(on: bool) -> Result<Vec<u8>, String> {
    to_xml(&LegalHoldBody {
        xmlns: XMLNS,
        status: if on { "ON" } else { "OFF" },
    })
}

#[cfg(test)]
mod tests {
    use super::super::MAX_ANSWER_BYTES;
    use super::*;

    fn text(v: Result<Vec<u8>, String>) -> String {
        String::from_utf8(v.unwrap()).unwrap()
    }

    #[test]
    fn bodies() {
        assert_eq!(
            text(create_bucket_configuration("eu-west-1")),
            "<CreateBucketConfiguration xmlns=\"http://s3.amazonaws.com/doc/2006-03-01/\">\
             <LocationConstraint>eu-west-1</LocationConstraint></CreateBucketConfiguration>"
        );
        assert_eq!(
            text(object_lock_configuration(LockMode::Compliance, 30)),
            "<ObjectLockConfiguration xmlns=\"http://s3.amazonaws.com/doc/2006-03-01/\">\
             <ObjectLockEnabled>Enabled</ObjectLockEnabled><Rule><DefaultRetention>\
             <Mode>COMPLIANCE</Mode><Days>30</Days></DefaultRetention></Rule>\
             </ObjectLockConfiguration>"
        );
        assert_eq!(
            text(retention(
                LockMode::Governance,
                "2030-01-01T00:00:00.000Z".into()
            )),
            "<Retention xmlns=\"http://s3.amazonaws.com/doc/2006-03-01/\"><Mode>GOVERNANCE</Mode>\
             <RetainUntilDate>2030-01-01T00:00:00.000Z</RetainUntilDate></Retention>"
        );
        assert_eq!(
            text(legal_hold(true)),
            "<LegalHold xmlns=\"http://s3.amazonaws.com/doc/2006-03-01/\"><Status>ON</Status>\
             </LegalHold>"
        );
    }

    // Answers as AWS documents them and as Ceph RGW sends them.

    #[test]
    fn versioning() {
        let v: VersioningConfiguration = parse(
            b"<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<VersioningConfiguration \
              xmlns=\"http://s3.amazonaws.com/doc/2006-03-01/\"><Status>Enabled</Status>\
              <MfaDelete>Disabled</MfaDelete></VersioningConfiguration>",
            "VersioningConfiguration",
        )
        .unwrap();
        assert_eq!(v.status.as_deref(), Some("Enabled"));
        let never: VersioningConfiguration = parse(
            b"<VersioningConfiguration xmlns=\"http://s3.amazonaws.com/doc/2006-03-01/\"/>",
            "VersioningConfiguration",
        )
        .unwrap();
        assert_eq!(never.status, None);
    }

    #[test]
    fn object_lock() {
        let c: ObjectLockConfiguration = parse(
            b"<ObjectLockConfiguration><ObjectLockEnabled>Enabled</ObjectLockEnabled><Rule>\
              <DefaultRetention><Mode>COMPLIANCE</Mode><Years> 2 </Years></DefaultRetention>\
              </Rule></ObjectLockConfiguration>",
            "ObjectLockConfiguration",
        )
        .unwrap();
        assert_eq!(c.enabled.as_deref(), Some("Enabled"));
        let r = c.rule.unwrap().default_retention.unwrap();
        assert_eq!(
            (r.mode, r.days, r.years),
            (LockMode::Compliance, None, Some(2))
        );
        let bare: ObjectLockConfiguration = parse(
            b"<ObjectLockConfiguration><ObjectLockEnabled>Enabled</ObjectLockEnabled>\
              </ObjectLockConfiguration>",
            "ObjectLockConfiguration",
        )
        .unwrap();
        assert!(bare.rule.is_none());
        for hostile in [
            &b"<ObjectLockConfiguration><Rule><DefaultRetention><Mode>FOREVER</Mode>\
               <Days>1</Days></DefaultRetention></Rule></ObjectLockConfiguration>"[..],
            b"<ObjectLockConfiguration><Rule><DefaultRetention><Mode>COMPLIANCE</Mode>\
               <Days>-1</Days></DefaultRetention></Rule></ObjectLockConfiguration>",
            b"<ObjectLockConfiguration><Rule><DefaultRetention><Mode>COMPLIANCE</Mode>\
               <Days>99999999999999999999</Days></DefaultRetention></Rule></ObjectLockConfiguration>",
            b"<ObjectLockConfiguration><Rule><DefaultRetention><Days>1</Days>\
               </DefaultRetention></Rule></ObjectLockConfiguration>",
        ] {
            let got = parse::<ObjectLockConfiguration>(hostile, "ObjectLockConfiguration");
            assert!(got.is_err(), "{got:?}");
        }
    }

    #[test]
    fn retention_and_legal_hold() {
        let r: Retention = parse(
            b"<Retention xmlns=\"http://s3.amazonaws.com/doc/2006-03-01/\"><Mode>GOVERNANCE\
              </Mode><RetainUntilDate>2030-01-01T00:00:00.000Z</RetainUntilDate></Retention>",
            "Retention",
        )
        .unwrap();
        assert_eq!(r.mode.as_deref(), Some("GOVERNANCE"));
        assert_eq!(r.retain_until.as_deref(), Some("2030-01-01T00:00:00.000Z"));
        let none: Retention = parse(b"<Retention></Retention>", "Retention").unwrap();
        assert!(none.mode.is_none() && none.retain_until.is_none());
        let h: LegalHold =
            parse(b"<LegalHold><Status>ON</Status></LegalHold>", "LegalHold").unwrap();
        assert_eq!(h.status.as_deref(), Some("ON"));
    }

    #[test]
    fn version_listing_interleaved_with_entities() {
        let page: ListVersionsResult = parse(
            b"<?xml version=\"1.0\"?><ListVersionsResult xmlns=\"x\"><Name>b</Name>\
              <Prefix></Prefix><KeyMarker></KeyMarker><MaxKeys>1000</MaxKeys>\
              <IsTruncated>true</IsTruncated><NextKeyMarker>d</NextKeyMarker>\
              <NextVersionIdMarker>v3</NextVersionIdMarker>\
              <Version><Key>a &amp; b&#x20;&#233;</Key><VersionId>v1</VersionId>\
              <IsLatest>true</IsLatest><Owner><ID>o</ID></Owner></Version>\
              <DeleteMarker><Key>c</Key><VersionId>v2</VersionId></DeleteMarker>\
              <Version><Key>d</Key><VersionId>v3</VersionId><IsLatest/></Version>\
              </ListVersionsResult>",
            "ListVersionsResult",
        )
        .unwrap();
        assert!(page.is_truncated);
        assert_eq!(page.next_key_marker.as_deref(), Some("d"));
        assert_eq!(page.next_version_id_marker.as_deref(), Some("v3"));
        let keys: Vec<_> = page.versions.iter().map(|v| v.key.as_str()).collect();
        assert_eq!(keys, ["a & b é", "d"]);
        assert_eq!(page.delete_markers[0].version_id, "v2");
        let empty: ListVersionsResult =
            parse(b"<ListVersionsResult/>", "ListVersionsResult").unwrap();
        assert!(!empty.is_truncated && empty.versions.is_empty());
    }

    /// A full page as RGW sends it, versions and delete markers alternating, every field there:
    /// within the event buffer.
    #[test]
    fn a_full_page_of_interleaved_versions() {
        let mut xml = String::from(
            "<ListVersionsResult xmlns=\"http://s3.amazonaws.com/doc/2006-03-01/\"><Name>b</Name>\
             <Prefix/><KeyMarker/><VersionIdMarker/><MaxKeys>1000</MaxKeys>\
             <IsTruncated>false</IsTruncated>",
        );
        for i in 0..1000 {
            let (tag, extra) = if i % 2 == 0 {
                (
                    "Version",
                    "<ETag>&quot;d41d8cd98f00b204e9800998ecf8427e&quot;</ETag><Size>1</Size>\
                     <StorageClass>STANDARD</StorageClass>",
                )
            } else {
                ("DeleteMarker", "")
            };
            xml.push_str(&format!(
                "<{tag}><Key>cam-7/{i:04}/{}</Key><VersionId>v{i}</VersionId>\
                 <IsLatest>true</IsLatest><LastModified>2025-06-01T00:00:00.000Z</LastModified>\
                 {extra}<Owner><ID>evidock</ID><DisplayName>evidock</DisplayName></Owner></{tag}>",
                "k".repeat(200)
            ));
        }
        xml.push_str("</ListVersionsResult>");
        let page: ListVersionsResult = parse(xml.as_bytes(), "ListVersionsResult").unwrap();
        assert_eq!((page.versions.len(), page.delete_markers.len()), (500, 500));
        assert_eq!(page.delete_markers[499].version_id, "v999");

        // No real page holds back this much: refused, not buffered.
        let mut hostile = String::from(
            "<ListVersionsResult><Version><Key>a</Key><VersionId>1\
                                        </VersionId></Version>",
        );
        hostile.push_str(
            &"<DeleteMarker><Key>b</Key><VersionId>2</VersionId></DeleteMarker>".repeat(40_000),
        );
        hostile.push_str(
            "<Version><Key>c</Key><VersionId>3</VersionId></Version></ListVersionsResult>",
        );
        assert!(hostile.len() < MAX_ANSWER_BYTES);
        let got = parse::<ListVersionsResult>(hostile.as_bytes(), "ListVersionsResult");
        let reason = got.map(|p| p.delete_markers.len()).unwrap_err();
        assert!(reason.contains("limit exceeded"), "{reason}");
    }

    #[test]
    fn errors() {
        let e = ErrorBody::parse(
            b"<?xml version=\"1.0\" encoding=\"UTF-8\"?><Error><Code>AccessDenied</Code>\
              <Message>Access Denied</Message><RequestId>tx1</RequestId><HostId>h</HostId>\
              </Error>",
        )
        .unwrap();
        assert_eq!(e.code.as_deref(), Some("AccessDenied"));
        assert_eq!(e.message.as_deref(), Some("Access Denied"));
        assert_eq!(e.request_id.as_deref(), Some("tx1"));
        // RGW's error without a message.
        let e =
            ErrorBody::parse(b"<Error><Code>NoSuchBucket</Code><BucketName>x</BucketName></Error>")
                .unwrap();
        assert_eq!((e.code.as_deref(), e.message), (Some("NoSuchBucket"), None));
        assert!(ErrorBody::parse(b"<html>Bad Gateway</html>").is_none());
        assert!(ErrorBody::parse(b"Service Unavailable").is_none());
        assert!(ErrorBody::parse(b"").is_none());
    }

    /// Hostile or broken answers: an error each, no panic, no expansion, no deep recursion.
    #[test]
    fn hostile_answers_are_refused_not_followed() {
        let root = "VersioningConfiguration";
        let refused = |body: &[u8]| -> String {
            match parse::<VersioningConfiguration>(body, root) {
                Err(reason) => reason,
                Ok(v) => panic!("accepted: {v:?}"),
            }
        };
        assert!(refused(b"").contains("no <VersioningConfiguration>"));
        assert!(refused(b"\xff\xfe<V/>").contains("UTF-8"));
        assert!(refused(b"<Error><Code>x</Code></Error>").contains("a <Error>"));
        assert!(refused(b"<VersioningConfiguration><Status>Enabled</Oops>").contains("not"));
        assert!(refused(b"<VersioningConfiguration><Status>Enabled").contains("not"));
        assert!(
            refused(b"<VersioningConfiguration><Status>&bogus;</Status></VersioningConfiguration>")
                .contains("not")
        );
        // A DTD's entities are not expanded (billion laughs).
        let laughs = b"<?xml version=\"1.0\"?><!DOCTYPE V [<!ENTITY a \"aaaaaaaaaa\">\
                       <!ENTITY b \"&a;&a;&a;&a;&a;&a;&a;&a;&a;&a;\">]>\
                       <VersioningConfiguration><Status>&b;</Status></VersioningConfiguration>";
        assert!(parse::<VersioningConfiguration>(laughs, root).is_err());
        // A very deep unknown subtree is skipped without recursion.
        let depth = 200_000;
        let mut deep = b"<VersioningConfiguration>".to_vec();
        deep.extend(b"<x>".repeat(depth));
        deep.extend(b"</x>".repeat(depth));
        deep.extend(b"<Status>Enabled</Status></VersioningConfiguration>");
        let got = parse::<VersioningConfiguration>(&deep, root).unwrap();
        assert_eq!(got.status.as_deref(), Some("Enabled"));
        // A long message is clipped.
        let long = format!("<{}/>", "E".repeat(10_000));
        assert!(refused(long.as_bytes()).chars().count() < 300);
        // A listing without the fields a version needs.
        let got = parse::<ListVersionsResult>(
            b"<ListVersionsResult><Version><Key>k</Key></Version></ListVersionsResult>",
            "ListVersionsResult",
        );
        assert!(got.is_err(), "{got:?}");
    }
}
